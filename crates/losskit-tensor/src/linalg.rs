//! Matrix products on rayon's thread pool.
//!
//! ndarray's `general_mat_mul` (matrixmultiply) can run its own threads, but those are a second pool beside
//! rayon's: on a machine with as many threads as cores the two pools take turns (yielding rayon workers against
//! matrixmultiply's), and the thread count the user set for rayon (`RAYON_NUM_THREADS`, or a pool's `install`) would
//! not bound the products. losskit builds matrixmultiply without threads and runs its products here instead: a large
//! product is cut into blocks of rows (or of columns) of `C`, each block one single-threaded `general_mat_mul` on a
//! rayon task.
//!
//! Every element of `C` is computed by the same kernel over the same `k` blocks however the product is cut, so the
//! result does not depend on the number of threads (the cut depends on the shape only).

use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayBase, Axis, Data, DataMut, Ix2, LinalgScalar};
use rayon::prelude::*;

#[cfg(target_arch = "x86_64")]
mod avx512;

/// From this many multiply-adds, a single-precision product on a CPU with AVX-512 runs [`avx512::sgemm`].
#[cfg(target_arch = "x86_64")]
const AVX512_MIN: usize = 1 << 15;

/// Below this many multiply-adds a product runs on the calling thread (about 20 µs of work).
const PARALLEL_MIN: usize = 1 << 19;

/// Rows (or columns) of `C` per task, at least: a multiple of every micro-kernel's tile height.
const BLOCK_MIN: usize = 32;

/// `C ← α·A·B + β·C` (`A` `[m, k]`, `B` `[k, n]`, `C` `[m, n]`), as ndarray's `general_mat_mul`, on rayon's pool.
///
/// # Panics
/// When the shapes do not agree, as `general_mat_mul` does: callers build the operands with matching shapes.
pub fn gemm<F, S1, S2, S3>(
    alpha: F,
    a: &ArrayBase<S1, Ix2>,
    b: &ArrayBase<S2, Ix2>,
    beta: F,
    c: &mut ArrayBase<S3, Ix2>,
) where
    F: LinalgScalar + Send + Sync,
    S1: Data<Elem = F> + Sync,
    S2: Data<Elem = F> + Sync,
    S3: DataMut<Elem = F>,
{
    let ((m, k), n) = (a.dim(), b.ncols());
    let work = m.saturating_mul(k).saturating_mul(n);
    #[cfg(target_arch = "x86_64")]
    if std::any::TypeId::of::<F>() == std::any::TypeId::of::<f32>() && work >= AVX512_MIN && avx512::available() {
        assert!(
            b.nrows() == k && c.dim() == (m, n),
            "gemm: shapes [{m}, {k}] · [{}, {n}] → {:?} do not agree",
            b.nrows(),
            c.dim()
        );
        let operand = |p: *const F, s: &[isize]| avx512::Strided { ptr: p.cast::<f32>(), rs: s[0], cs: s[1] };
        let (sa, sb) = (operand(a.as_ptr(), a.strides()), operand(b.as_ptr(), b.strides()));
        let cs = c.strides().to_vec();
        let sc = avx512::Strided { ptr: c.as_mut_ptr().cast::<f32>(), rs: cs[0], cs: cs[1] };
        // SAFETY: F is f32 (same TypeId), so the casts of the pointers and scalars are identities; the shapes agree
        // (asserted), so every strided element addressed lies within its array; C is borrowed uniquely, so it
        // overlaps neither A nor B and its elements are distinct; the CPU has AVX-512F (checked).
        unsafe {
            let scalar = |v: F| *(&v as *const F).cast::<f32>();
            avx512::sgemm(m, k, n, scalar(alpha), sa, sb, scalar(beta), sc);
        }
        return;
    }
    if work < PARALLEL_MIN || m.max(n) < 2 * BLOCK_MIN {
        general_mat_mul(alpha, a, b, beta, c);
        return;
    }
    // About 16 blocks along the longer side of C, whatever the thread count (so the cut, and the result, depend on
    // the shape only), each at least BLOCK_MIN wide and a multiple of 8.
    let along = |len: usize| (len.div_ceil(16)).max(BLOCK_MIN).next_multiple_of(8);
    let mut c = c.view_mut();
    if m >= n {
        let rows = along(m);
        c.axis_chunks_iter_mut(Axis(0), rows)
            .into_par_iter()
            .zip(a.axis_chunks_iter(Axis(0), rows))
            .for_each(|(mut cb, ab)| general_mat_mul(alpha, &ab, b, beta, &mut cb));
    } else {
        let cols = along(n);
        c.axis_chunks_iter_mut(Axis(1), cols)
            .into_par_iter()
            .zip(b.axis_chunks_iter(Axis(1), cols))
            .for_each(|(mut cb, bb)| general_mat_mul(alpha, a, &bb, beta, &mut cb));
    }
}

/// `A·B` as a new matrix, computed by [`gemm`] (the parallel form of ndarray's `a.dot(&b)` for two matrices).
pub fn matmul<F, S1, S2>(a: &ArrayBase<S1, Ix2>, b: &ArrayBase<S2, Ix2>) -> ndarray::Array2<F>
where
    F: LinalgScalar + Send + Sync,
    S1: Data<Elem = F> + Sync,
    S2: Data<Elem = F> + Sync,
{
    let mut c = ndarray::Array2::zeros((a.nrows(), b.ncols()));
    gemm(F::one(), a, b, F::zero(), &mut c);
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, s};

    fn filled(m: usize, n: usize, seed: u64) -> Array2<f64> {
        Array2::from_shape_fn((m, n), |(i, j)| (((i * 131 + j * 71) as u64 ^ seed) as f64 * 0.173).sin())
    }

    #[test]
    fn equals_general_mat_mul_bit_for_bit_for_every_shape_and_thread_count() {
        for (m, k, n) in [(3, 4, 5), (64, 64, 64), (700, 33, 90), (90, 33, 700), (257, 129, 255), (1, 4096, 300)] {
            let (a, b) = (filled(m, k, 1), filled(k, n, 2));
            let c0 = filled(m, n, 3);
            let mut want = c0.clone();
            general_mat_mul(0.5, &a, &b, 2.0, &mut want);
            for threads in [1, 2, 3] {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                let mut got = c0.clone();
                pool.install(|| gemm(0.5, &a, &b, 2.0, &mut got));
                assert_eq!(got, want, "{m}×{k}×{n}, {threads} threads");
            }
            // Transposed and sliced operands.
            let at = a.t().to_owned();
            let mut got = c0.clone();
            gemm(0.5, &at.t(), &b, 2.0, &mut got.view_mut());
            assert_eq!(got, want);
            assert_eq!(matmul(&a, &b), a.dot(&b));
        }
        let big = filled(300, 200, 4);
        let mut c = Array2::<f64>::zeros((150, 150));
        gemm(1.0, &big.slice(s![..150, ..]), &big.slice(s![150.., ..]).t(), 0.0, &mut c);
        assert_eq!(c, big.slice(s![..150, ..]).dot(&big.slice(s![150.., ..]).t()));
    }

    /// `α·A·B + β·C` in f64 from f32 operands: the oracle for single-precision products.
    fn oracle(alpha: f32, a: &Array2<f32>, b: &Array2<f32>, beta: f32, c: &Array2<f32>) -> Array2<f64> {
        let (a, b, c) = (a.mapv(f64::from), b.mapv(f64::from), c.mapv(f64::from));
        a.dot(&b) * f64::from(alpha) + c * f64::from(beta)
    }

    #[test]
    fn single_precision_matches_the_f64_product_and_ignores_the_thread_count() {
        let f32s = |m: usize, n: usize, seed: u64| filled(m, n, seed).mapv(|v| v as f32);
        // Shapes around the 12 × 32 tile, the 256 depth block and the 144-row task block; one very thin.
        for (m, k, n) in [(13, 7, 33), (144, 256, 64), (145, 257, 95), (300, 600, 130), (40, 1000, 2000), (3, 5, 700)] {
            let (a, b) = (f32s(m, k, 5), f32s(k, n, 6));
            let c0 = f32s(m, n, 7);
            for (alpha, beta) in [(1.0_f32, 0.0_f32), (0.5, 2.0), (-1.5, 1.0)] {
                let want = oracle(alpha, &a, &b, beta, &c0);
                let mut first: Option<Array2<f32>> = None;
                for threads in [1, 2, 3] {
                    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                    // β = 0 must not read C: start from NaN there.
                    let mut got = if beta == 0.0 { Array2::from_elem((m, n), f32::NAN) } else { c0.clone() };
                    pool.install(|| gemm(alpha, &a, &b, beta, &mut got));
                    let scale = (k as f64).sqrt() * 4.0 + 4.0;
                    for ((g, w), i) in got.iter().zip(&want).zip(0..) {
                        assert!((f64::from(*g) - w).abs() <= 1e-6 * scale, "{m}×{k}×{n} α={alpha} β={beta} at {i}");
                    }
                    match &first {
                        None => first = Some(got),
                        Some(f) => assert_eq!(&got, f, "{m}×{k}×{n}: {threads} threads differ from 1"),
                    }
                }
            }
        }
        // Transposed, reversed and column-major operands, and a column-major C.
        let (a, b) = (f32s(90, 70, 8), f32s(70, 110, 9));
        let want = oracle(1.0, &a, &b, 0.0, &Array2::zeros((90, 110)));
        let at = a.t().to_owned();
        let mut got = Array2::<f32>::zeros((110, 90)).reversed_axes();
        gemm(1.0, &at.t(), &b, 0.0, &mut got);
        assert!(got.iter().zip(&want).all(|(g, w)| (f64::from(*g) - w).abs() < 1e-4));
        let mut rev_a = a.clone();
        rev_a.invert_axis(ndarray::Axis(1));
        let mut rev_b = b.clone();
        rev_b.invert_axis(ndarray::Axis(0));
        let mut got = Array2::<f32>::zeros((90, 110));
        gemm(1.0, &rev_a, &rev_b, 0.0, &mut got);
        assert!(got.iter().zip(&want).all(|(g, w)| (f64::from(*g) - w).abs() < 1e-4));
        // k = 0: C ← β·C.
        let mut c = Array2::<f32>::from_elem((40, 40), 3.0);
        gemm(1.0, &Array2::<f32>::zeros((40, 0)), &Array2::<f32>::zeros((0, 40)), 0.5, &mut c);
        assert!(c.iter().all(|&v| v == 1.5));
    }
}
