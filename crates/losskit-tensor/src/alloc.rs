//! Large zeroed buffers that fault in cheaply.
//!
//! A fresh large allocation costs one page fault per 4 KiB page at its first write. On Linux, [`zeroed`] advises
//! buffers of 8 MiB or more to be backed by transparent huge pages (one fault per 2 MiB), as PyTorch does for its CPU
//! tensors. The advice changes only how the kernel backs the pages (still zeroed); where THP is disabled or set to
//! `never` it is a no-op, and on other systems nothing is done.

/// A vector of `len` zeros (`vec![T::zero(); len]`, which the allocator serves from fresh zeroed pages for large
/// sizes, so no memset runs here) advised to use transparent huge pages when it is large.
pub fn zeroed<T: Clone + num_traits::Zero>(len: usize) -> Vec<T> {
    let v = vec![T::zero(); len];
    advise_huge_pages(&v);
    v
}

/// Advises the kernel to back the 2 MiB-aligned part of `v` with transparent huge pages when `v` spans 8 MiB or more
/// (Linux; elsewhere a no-op). Contents are unchanged; failure is ignored (the advice is only a hint).
pub fn advise_huge_pages<T>(v: &[T]) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        const MADV_HUGEPAGE: core::ffi::c_int = 14;
        unsafe extern "C" {
            fn madvise(addr: *mut core::ffi::c_void, len: usize, advice: core::ffi::c_int) -> core::ffi::c_int;
        }
        let bytes = std::mem::size_of_val(v);
        if bytes < 4 * HUGE {
            return;
        }
        let start = v.as_ptr() as usize;
        let lo = start.next_multiple_of(HUGE);
        let hi = (start + bytes) / HUGE * HUGE;
        if hi > lo {
            // SAFETY: [lo, hi) is page-aligned and lies inside the live allocation behind `v`; MADV_HUGEPAGE neither
            // reads nor writes memory and keeps its contents, and its failure (THP unavailable) is harmless, so the
            // result is ignored.
            let _ = unsafe { madvise(lo as *mut core::ffi::c_void, hi - lo, MADV_HUGEPAGE) };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = v;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroed_is_zero_at_every_size() {
        for len in [0, 1, 1000, (9 << 20) / 8 + 3] {
            let v: Vec<f64> = zeroed(len);
            assert_eq!(v.len(), len);
            assert!(v.iter().all(|&x| x == 0.0));
        }
        let mut v: Vec<f32> = zeroed(5 << 20);
        v[12345] = 1.0;
        advise_huge_pages(&v);
        assert_eq!(v.iter().filter(|&&x| x != 0.0).count(), 1);
    }
}
