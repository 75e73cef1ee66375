//! Single-precision matrix product with AVX-512 (x86-64): packed panels and a 12 × 32 register tile.
//!
//! matrixmultiply's fastest single-precision kernel uses 256-bit FMA; on CPUs whose AVX-512 units are as wide as
//! their 512-bit registers that is half the machine. This is the classic blocked product (Goto's layout):
//!
//! * `k` is cut into blocks of [`KC`]; for each block the columns of `B` are packed into panels of [`NR`] = 32
//!   (`[k][32]`, two registers per row) and the rows of `A` into panels of [`MR`] = 12 (`[k][12]`);
//! * the 12 × 32 tile of `C` accumulates in 24 registers over the block, one broadcast of `A` feeding two FMAs;
//! * row blocks of [`MC`] rows of `A` (times groups of `B` panels, for products with few rows) run as rayon tasks;
//!   the blocks of `k` run in order, so every element of `C`
//!   is summed in the same order (`k` ascending, one FMA per term, blocks added to `C` in turn) whatever the
//!   number of threads.

use std::arch::x86_64::*;

use rayon::prelude::*;

/// Rows of the register tile.
const MR: usize = 12;
/// Columns of the register tile (two 16-lane registers).
const NR: usize = 32;
/// Depth of a packed block: a `B` panel (`KC × NR`, 32 KiB) stays in L1.
const KC: usize = 256;
/// Rows of `A` per task (a packed `A` block of `MC × KC`, 144 KiB, stays in L2).
const MC: usize = 144;
/// Columns of `B` packed at once (at most 4 MiB of packed `B`).
const NC: usize = 4096;
/// Parallel tasks per depth block, at least, where the shape allows.
const TASKS: usize = 8;

/// A strided matrix operand: element `(i, j)` at `ptr + i·rs + j·cs`.
#[derive(Clone, Copy)]
pub(crate) struct Strided<T> {
    pub ptr: T,
    pub rs: isize,
    pub cs: isize,
}

// SAFETY: the pointers are only dereferenced within `sgemm`, whose contract makes the addressed elements valid for
// the call; tasks write disjoint row blocks of C.
unsafe impl<T> Send for Strided<T> {}
unsafe impl<T> Sync for Strided<T> {}

/// Whether this CPU runs [`sgemm`].
pub(crate) fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

/// `C ← α·A·B + β·C` for `A` `[m, k]`, `B` `[k, n]`, `C` `[m, n]` (f32). With `β = 0`, `C` is not read.
///
/// # Safety
/// The CPU has AVX-512F ([`available`]); every element `(i, j)` of `A`, `B` (reads) and `C` (reads and writes)
/// within the shapes is valid at its strided address; `C` does not overlap `A` or `B`, and distinct `(i, j)` of
/// `C` are distinct addresses.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: Strided<*const f32>,
    b: Strided<*const f32>,
    beta: f32,
    c: Strided<*mut f32>,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        // SAFETY: the caller's contract on C.
        unsafe { scale_c(m, n, beta, c) };
        return;
    }
    let mut packed_b: Vec<f32> = Vec::new();
    for jc in (0..n).step_by(NC) {
        let nc = NC.min(n - jc);
        let b_panels = nc.div_ceil(NR);
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            packed_b.clear();
            packed_b.resize(b_panels * kc * NR, 0.0);
            packed_b.par_chunks_mut(kc * NR).enumerate().for_each(|(jp, panel)| {
                let j0 = jc + jp * NR;
                // SAFETY: rows pc..pc + kc and columns j0..j0 + cols of B are within its shape.
                unsafe { pack(panel, b, pc, kc, j0, NR.min(n - j0), NR, true) };
            });
            let first = pc == 0;
            let packed_b = &packed_b[..];
            // Tasks: row blocks × column groups, at least TASKS of them when the shape allows (a product with few
            // rows is split along its columns instead).
            let row_blocks = m.div_ceil(MC);
            let col_groups = TASKS.div_ceil(row_blocks).clamp(1, b_panels);
            let per_group = b_panels.div_ceil(col_groups);
            (0..row_blocks * col_groups).into_par_iter().for_each_init(Vec::new, |packed_a: &mut Vec<f32>, t| {
                let (ib, group) = (t / col_groups, t % col_groups);
                let panels = (group * per_group).min(b_panels)..((group + 1) * per_group).min(b_panels);
                let ic = ib * MC;
                let mc = MC.min(m - ic);
                let a_panels = mc.div_ceil(MR);
                packed_a.clear();
                packed_a.resize(a_panels * kc * MR, 0.0);
                for (ip, panel) in packed_a.chunks_mut(kc * MR).enumerate() {
                    let i0 = ic + ip * MR;
                    // SAFETY: rows i0..i0 + rows and columns pc..pc + kc of A (read transposed: A's columns are
                    // the packed depth) are within its shape.
                    unsafe { pack(panel, a, i0, MR.min(m - i0), pc, kc, MR, false) };
                }
                for (jp, bp) in packed_b.chunks(kc * NR).enumerate().take(panels.end).skip(panels.start) {
                    let j0 = jc + jp * NR;
                    let cols = NR.min(n - j0);
                    for (ip, ap) in packed_a.chunks(kc * MR).enumerate() {
                        let i0 = ic + ip * MR;
                        let rows = MR.min(m - i0);
                        // SAFETY: AVX-512F (the caller's contract); the panels hold kc rows of MR / NR values; the
                        // tile (i0.., j0..) of rows × cols lies within C, and this task alone writes rows ic..ic + mc.
                        unsafe {
                            let acc = tile(ap, bp, kc);
                            store(acc, c, i0, j0, rows, cols, alpha, if first { Some(beta) } else { None });
                        }
                    }
                }
            });
        }
    }
}

/// Packs a block of a matrix into a panel of `width` lanes per depth step, zero-padded.
///
/// With `by_rows` (a `B` panel) the panel is `B[r0 + p, c0 + l]` for depth `p < depth` (rows) and lane `l < lanes`
/// (columns). Otherwise (an `A` panel) it is `A[r0 + l, c0 + p]` for lane `l < lanes` (rows) and depth `p < depth`
/// (columns), with `lanes`, `depth` passed as (`rows`, `cols`) = (`lanes`, `depth`).
///
/// # Safety
/// The elements read are within the operand's shape.
#[allow(clippy::too_many_arguments)]
unsafe fn pack(
    panel: &mut [f32],
    x: Strided<*const f32>,
    r0: usize,
    rows: usize,
    c0: usize,
    cols: usize,
    width: usize,
    by_rows: bool,
) {
    // (depth, lanes, element address of (depth p, lane l))
    let (depth, lanes) = if by_rows { (rows, cols) } else { (cols, rows) };
    let at = |p: usize, l: usize| -> *const f32 {
        let (i, j) = if by_rows { (r0 + p, c0 + l) } else { (r0 + l, c0 + p) };
        x.ptr.wrapping_offset(i as isize * x.rs + j as isize * x.cs)
    };
    // Walk whichever index is contiguous in memory innermost.
    let lane_stride = if by_rows { x.cs } else { x.rs };
    // SAFETY: every (p, l) read is within the shape (the caller's contract).
    unsafe {
        if lane_stride == 1 {
            for p in 0..depth {
                let row = &mut panel[p * width..p * width + lanes];
                for (l, v) in row.iter_mut().enumerate() {
                    *v = *at(p, l);
                }
            }
        } else {
            for l in 0..lanes {
                for p in 0..depth {
                    panel[p * width + l] = *at(p, l);
                }
            }
        }
    }
}

/// The 12 × 32 products of an `A` panel and a `B` panel over `kc` depth steps.
///
/// # Safety
/// AVX-512F; `ap` holds `kc·MR` values, `bp` `kc·NR`.
#[target_feature(enable = "avx512f")]
unsafe fn tile(ap: &[f32], bp: &[f32], kc: usize) -> [[__m512; 2]; MR] {
    debug_assert!(ap.len() >= kc * MR && bp.len() >= kc * NR);
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    let (a, b) = (ap.as_ptr(), bp.as_ptr());
    for p in 0..kc {
        // SAFETY: p < kc, so the reads stay within the panels (the contract).
        unsafe {
            let b0 = _mm512_loadu_ps(b.add(p * NR));
            let b1 = _mm512_loadu_ps(b.add(p * NR + 16));
            for (i, row) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*a.add(p * MR + i));
                row[0] = _mm512_fmadd_ps(av, b0, row[0]);
                row[1] = _mm512_fmadd_ps(av, b1, row[1]);
            }
        }
    }
    acc
}

/// Adds `α·acc` (its first `rows × cols`) into `C` at `(i0, j0)`: `C = α·acc + β·C` for the first depth block
/// (`first = Some(β)`; `C` unread when β = 0), `C = α·acc + C` after.
///
/// # Safety
/// AVX-512F; the tile lies within `C` and no other thread writes it.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn store(
    acc: [[__m512; 2]; MR],
    c: Strided<*mut f32>,
    i0: usize,
    j0: usize,
    rows: usize,
    cols: usize,
    alpha: f32,
    first: Option<f32>,
) {
    let va = _mm512_set1_ps(alpha);
    for (i, row) in acc.iter().enumerate().take(rows) {
        let base = c.ptr.wrapping_offset((i0 + i) as isize * c.rs + j0 as isize * c.cs);
        if c.cs == 1 {
            for (h, &v) in row.iter().enumerate() {
                let lo = h * 16;
                if lo >= cols {
                    break;
                }
                let mask: __mmask16 = if cols - lo >= 16 { 0xffff } else { (1u16 << (cols - lo)) - 1 };
                // SAFETY: the masked lanes address columns j0 + lo + l < j0 + cols, within C's row (contract).
                unsafe {
                    let p = base.add(lo);
                    let new = match first {
                        Some(0.0) => _mm512_mul_ps(va, v),
                        Some(beta) => {
                            let old = _mm512_maskz_loadu_ps(mask, p);
                            _mm512_fmadd_ps(va, v, _mm512_mul_ps(_mm512_set1_ps(beta), old))
                        }
                        None => _mm512_fmadd_ps(va, v, _mm512_maskz_loadu_ps(mask, p)),
                    };
                    _mm512_mask_storeu_ps(p, mask, new);
                }
            }
        } else {
            let mut lanes = [0.0_f32; NR];
            // SAFETY: `lanes` holds 32 values.
            unsafe {
                _mm512_storeu_ps(lanes.as_mut_ptr(), row[0]);
                _mm512_storeu_ps(lanes.as_mut_ptr().add(16), row[1]);
            }
            for (j, &v) in lanes.iter().enumerate().take(cols) {
                // SAFETY: column j0 + j < j0 + cols of row i0 + i lies within C (contract).
                unsafe {
                    let p = base.wrapping_offset(j as isize * c.cs);
                    *p = match first {
                        Some(0.0) => alpha * v,
                        Some(beta) => alpha.mul_add(v, beta * *p),
                        None => alpha.mul_add(v, *p),
                    };
                }
            }
        }
    }
}

/// `C ← β·C` (zeros when β = 0, without reading `C`).
///
/// # Safety
/// As [`sgemm`] for `C`.
unsafe fn scale_c(m: usize, n: usize, beta: f32, c: Strided<*mut f32>) {
    for i in 0..m {
        for j in 0..n {
            // SAFETY: (i, j) is within C's shape.
            unsafe {
                let p = c.ptr.wrapping_offset(i as isize * c.rs + j as isize * c.cs);
                *p = if beta == 0.0 { 0.0 } else { beta * *p };
            }
        }
    }
}
