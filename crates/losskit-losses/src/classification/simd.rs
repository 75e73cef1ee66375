//! AVX-512 forms of the two hottest f32 row sweeps of [`rowmath`](super::rowmath): the row maximum with the
//! finiteness check, and the sum of exponentials.
//!
//! The portable loops in `rowmath` vectorise only as well as the compiler's loop and SLP vectorisers manage, and
//! that proved fragile: an unrelated change in the driver turned the maximum sweep into scalar code (3× slower),
//! and the accumulators of the exponential sweep lived on the stack. These forms state the vector code directly.
//!
//! They keep the portable loops' order: 16 lanes, lane k takes the elements j ≡ k (mod 16) of full chunks and the
//! remainder's element k, and the same final lane reduction. The maximum sweep is therefore bit-identical to the
//! portable one. The exponential is [`Real::fast_exp`](losskit_tensor::Real::fast_exp)'s algorithm with fused
//! multiply-adds, which the portable code cannot use (without FMA hardware, `mul_add` is a slow library call): each
//! exponential is within 1 ulp of the portable one, so an f32 loss on an AVX-512 CPU can differ from the same loss
//! on an AVX2-only CPU in the last bits. On one machine the path is fixed, and results are bit-identical whatever
//! the number of threads.

// The AVX-512 intrinsics and target features are stable since Rust 1.89, the workspace MSRV.

use std::arch::x86_64::*;

use losskit_tensor::Real;

/// The slice as `&[f32]` when `F` is f32.
#[inline(always)]
pub(crate) fn as_f32<F: Real>(z: &[F]) -> Option<&[f32]> {
    if std::any::TypeId::of::<F>() == std::any::TypeId::of::<f32>() {
        // SAFETY: F is f32, so the slice is a slice of f32.
        Some(unsafe { std::slice::from_raw_parts(z.as_ptr().cast::<f32>(), z.len()) })
    } else {
        None
    }
}

/// The slice as `&mut [f32]` when `F` is f32.
#[inline(always)]
pub(crate) fn as_f32_mut<F: Real>(z: &mut [F]) -> Option<&mut [f32]> {
    if std::any::TypeId::of::<F>() == std::any::TypeId::of::<f32>() {
        // SAFETY: F is f32, so the slice is a slice of f32.
        Some(unsafe { std::slice::from_raw_parts_mut(z.as_mut_ptr().cast::<f32>(), z.len()) })
    } else {
        None
    }
}

/// Whether the CPU runs the AVX-512 forms (std caches the detection; this is one load and a test).
#[inline(always)]
pub(crate) fn avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

/// Mask of the first `rem` lanes (rem < 16).
#[inline(always)]
fn tail_mask(rem: usize) -> __mmask16 {
    ((1u32 << rem) - 1) as __mmask16
}

/// `(max, finite)` of a non-empty row, as `rowmath::max_and_finite`.
#[target_feature(enable = "avx512f")]
pub(crate) fn max_and_finite(z: &[f32]) -> (f32, bool) {
    let big = _mm512_set1_ps(f32::MAX);
    let abs_mask = _mm512_set1_epi32(0x7fff_ffff);
    let mut mx = _mm512_set1_ps(f32::NEG_INFINITY);
    let mut ok: __mmask16 = 0xffff;
    let mut chunks = z.chunks_exact(16);
    for ch in &mut chunks {
        // SAFETY: the chunk holds 16 f32.
        let v = unsafe { _mm512_loadu_ps(ch.as_ptr()) };
        // max2(mx, v) = if v > mx { v } else { mx } = vmaxps(v, mx)
        mx = _mm512_max_ps(v, mx);
        let a = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), abs_mask));
        ok &= _mm512_cmp_ps_mask::<_CMP_LE_OQ>(a, big);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let m = tail_mask(rest.len());
        // SAFETY: the masked load reads only the first rest.len() elements.
        let v = unsafe { _mm512_maskz_loadu_ps(m, rest.as_ptr()) };
        mx = _mm512_mask_max_ps(mx, m, v, mx);
        let a = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), abs_mask));
        ok &= _mm512_mask_cmp_ps_mask::<_CMP_LE_OQ>(m, a, big) | !m;
    }
    let mut lanes = [0.0_f32; 16];
    // SAFETY: `lanes` holds 16 f32.
    unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), mx) };
    let mut best = lanes[0];
    for &v in &lanes[1..] {
        best = if v > best { v } else { best };
    }
    (best, ok == 0xffff)
}

/// `Real::fast_exp` for f32 on 16 lanes: the same range reduction, polynomial and reconstruction, with fused
/// multiply-adds (within 1 ulp of the portable form, usually equal).
#[target_feature(enable = "avx512f")]
#[inline]
fn exp16(arg: __m512) -> __m512 {
    const LO: f32 = -87.336_54;
    const HI: f32 = 88.37;
    const MAGIC: f32 = 12_582_912.0;
    // Clamped above only, NaN kept (vminps returns the second operand when one is NaN). Below LO the portable form
    // clamps and then returns 0; here those lanes compute a meaningless value that the final mask replaces by 0,
    // which saves the lower clamp.
    let x = _mm512_min_ps(_mm512_set1_ps(HI), arg);
    let magic = _mm512_set1_ps(MAGIC);
    // Fused multiply-adds where the portable form has a multiply then an add: one rounding instead of two, and 8
    // fewer operations per vector (the sweep's cost; 25% off a 4096×1000 cross-entropy).
    let t = _mm512_fmadd_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E), magic);
    let n = _mm512_sub_ps(t, magic);
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.121_944_4e-4), _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_359_4), x));
    let mut p = _mm512_set1_ps(1.987_569_1e-4);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.398_199_9e-3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.333_452e-3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.166_579_6e-2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.666_666_5e-1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5));
    let y = _mm512_add_ps(_mm512_fmadd_ps(_mm512_mul_ps(p, r), r, r), _mm512_set1_ps(1.0));
    // y·2ⁿ in one `vscalefps` (n is an integer-valued float) where the portable form builds 2ⁿ's bits and
    // multiplies: both are exact for the normal results that arguments in [LO, HI] give, so the values agree. Lanes
    // below LO are zeroed by the mask.
    let keep = _mm512_cmp_ps_mask::<_CMP_NLT_UQ>(arg, _mm512_set1_ps(LO));
    _mm512_maskz_scalef_ps(keep, y, n)
}

/// Σⱼ exp((z[j] − m)·s), writing each exponential into `out` when given, as `rowmath::exp_sum`; returns the 16
/// lane sums.
#[target_feature(enable = "avx512f")]
pub(crate) fn exp_sum(z: &[f32], m: f32, s: f32, out: Option<&mut [f32]>) -> [f32; 16] {
    // (z − m)·1 = z − m exactly, so the common unit scale skips the multiply (one of the sweep's 12 per vector).
    if s == 1.0 { exp_sum_scaled::<false>(z, m, s, out) } else { exp_sum_scaled::<true>(z, m, s, out) }
}

/// (z − m)·s, or z − m when `SCALED` is false (the caller checked s = 1).
#[target_feature(enable = "avx512f")]
#[inline]
fn shifted<const SCALED: bool>(v: __m512, vm: __m512, vs: __m512) -> __m512 {
    if SCALED { _mm512_mul_ps(_mm512_sub_ps(v, vm), vs) } else { _mm512_sub_ps(v, vm) }
}

#[target_feature(enable = "avx512f")]
#[inline]
fn exp_sum_scaled<const SCALED: bool>(z: &[f32], m: f32, s: f32, out: Option<&mut [f32]>) -> [f32; 16] {
    let vm = _mm512_set1_ps(m);
    let vs = _mm512_set1_ps(s);
    let mut acc = _mm512_setzero_ps();
    let full = z.len() / 16 * 16;
    let rem = z.len() - full;
    match out {
        Some(out) => {
            debug_assert_eq!(z.len(), out.len());
            let n = z.len().min(out.len());
            let full = n / 16 * 16;
            let mut j = 0;
            while j < full {
                // SAFETY: j + 16 ≤ full ≤ len of both slices.
                let v = unsafe { _mm512_loadu_ps(z.as_ptr().add(j)) };
                let e = exp16(shifted::<SCALED>(v, vm, vs));
                unsafe { _mm512_storeu_ps(out.as_mut_ptr().add(j), e) };
                acc = _mm512_add_ps(acc, e);
                j += 16;
            }
            if n > full {
                let k = tail_mask(n - full);
                // SAFETY: the masked load and store touch only the n − full elements left in both slices.
                let v = unsafe { _mm512_maskz_loadu_ps(k, z.as_ptr().add(full)) };
                let e = exp16(shifted::<SCALED>(v, vm, vs));
                unsafe { _mm512_mask_storeu_ps(out.as_mut_ptr().add(full), k, e) };
                acc = _mm512_mask_add_ps(acc, k, acc, e);
            }
        }
        None => {
            let mut j = 0;
            while j < full {
                // SAFETY: j + 16 ≤ full ≤ z.len().
                let v = unsafe { _mm512_loadu_ps(z.as_ptr().add(j)) };
                acc = _mm512_add_ps(acc, exp16(shifted::<SCALED>(v, vm, vs)));
                j += 16;
            }
            if rem > 0 {
                let k = tail_mask(rem);
                // SAFETY: the masked load reads only the rem elements left.
                let v = unsafe { _mm512_maskz_loadu_ps(k, z.as_ptr().add(full)) };
                acc = _mm512_mask_add_ps(acc, k, acc, exp16(shifted::<SCALED>(v, vm, vs)));
            }
        }
    }
    let mut lanes = [0.0_f32; 16];
    // SAFETY: `lanes` holds 16 f32.
    unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), acc) };
    lanes
}

#[cfg(test)]
mod tests {
    use super::super::rowmath;
    use super::*;

    /// A reproducible row: standard-normal-ish values scaled by `spread`, from a small LCG.
    fn row(len: usize, seed: u64, spread: f32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (0..len)
            .map(|_| {
                s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * spread
            })
            .collect()
    }

    /// |a − b| ≤ tol·|b| (or both zero).
    fn close(a: f32, b: f32, tol: f32) -> bool {
        (a - b).abs() <= tol * b.abs()
    }

    #[test]
    fn avx512_forms_agree_with_the_portable_loops() {
        if !avx512() {
            return; // nothing to compare on this CPU
        }
        for len in [1, 2, 15, 16, 17, 31, 32, 33, 100, 1000, 1001] {
            for (seed, spread) in [(1, 4.0_f32), (2, 200.0), (3, 2.0e4), (4, 1.0e-3)] {
                let z = row(len, seed + len as u64, spread);
                // SAFETY: AVX-512F checked above.
                let (m, ok) = unsafe { max_and_finite(&z) };
                let (mp, okp) = rowmath::max_and_finite_portable(&z);
                assert_eq!((m.to_bits(), ok), (mp.to_bits(), okp), "max, len {len}");
                for s in [1.0_f32, 0.5, 3.0] {
                    let (mut out, mut outp) = (vec![f32::NAN; len], vec![f32::NAN; len]);
                    let got = rowmath::exp_sum(&z, m, s, Some(&mut out));
                    let want = rowmath::exp_sum_portable(&z, m, s, Some(&mut outp));
                    // Each exponential within 1 ulp (FMA), so the sums within a few ulp.
                    assert!(close(got, want, 4.0 * f32::EPSILON), "exp_sum, len {len}, s {s}: {got} vs {want}");
                    assert!(out.iter().zip(&outp).all(|(a, b)| close(*a, *b, 1.5 * f32::EPSILON)), "len {len}");
                    let again = rowmath::exp_sum(&z, m, s, None);
                    assert_eq!(again.to_bits(), got.to_bits(), "exp_sum without output, len {len}");
                }
            }
        }
    }

    #[test]
    fn avx512_finiteness_check_finds_every_bad_value() {
        if !avx512() {
            return;
        }
        for len in [1, 16, 17, 40] {
            for at in [0, len / 2, len - 1] {
                for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                    let mut z = row(len, 9, 3.0);
                    z[at] = bad;
                    // SAFETY: AVX-512F checked above.
                    let (_, ok) = unsafe { max_and_finite(&z) };
                    assert!(!ok, "{bad} at {at} of {len}");
                    assert!(!rowmath::max_and_finite_portable(&z).1);
                }
            }
            // f32::MAX is finite.
            let mut z = row(len, 9, 3.0);
            z[len - 1] = f32::MAX;
            // SAFETY: AVX-512F checked above.
            assert_eq!(unsafe { max_and_finite(&z) }, (f32::MAX, true));
        }
    }

    #[test]
    fn avx512_exponential_is_within_one_ulp_of_fast_exp_over_its_range() {
        if !avx512() {
            return;
        }
        // Arguments from −100 (below the underflow cut) to +90 (above the overflow clamp), 16 at a time.
        let args: Vec<f32> = (0..16 * 1200).map(|i| -100.0 + i as f32 * (190.0 / (16.0 * 1200.0))).collect();
        let mut out = vec![0.0_f32; args.len()];
        // exp((x − 0)·1) = exp(x)
        // SAFETY: AVX-512F checked above.
        let _ = unsafe { exp_sum(&args, 0.0, 1.0, Some(&mut out)) };
        for (x, e) in args.iter().zip(&out) {
            let want = x.fast_exp();
            if want < f32::MIN_POSITIVE {
                assert_eq!(*e, 0.0, "exp({x}) underflows to 0 in both");
            } else {
                assert!(close(*e, want, 1.5 * f32::EPSILON), "exp({x}): {e} vs {want}");
                if *x <= 88.0 {
                    // Above 88.37 both clamp (a large finite value instead of ∞).
                    assert!(close(*e, f64::from(*x).exp() as f32, 3.0 * f32::EPSILON), "exp({x}) vs std");
                }
            }
        }
    }
}
