//! Pairwise similarity and distance matrices through GEMM.

use crate::linalg::matmul;
use ndarray::{Array2, ArrayView2, Axis, Zip};

use crate::norm::l2_normalize_rows;
use crate::{Error, Real, Result};

fn same_dim<F: Real>(a: &ArrayView2<'_, F>, b: &ArrayView2<'_, F>) -> Result<()> {
    if a.ncols() != b.ncols() {
        return Err(Error::Shape {
            arg: "b",
            expected: format!("[M, {}] (same embedding dimension as a)", a.ncols()),
            got: b.shape().to_vec(),
        });
    }
    Ok(())
}

/// Dot-product matrix A·Bᵀ ([N, D] × [M, D] → [N, M]) through GEMM.
///
/// # Errors
/// [`Error::Shape`] when the embedding dimensions differ.
pub fn dot_matrix<F: Real>(a: ArrayView2<'_, F>, b: ArrayView2<'_, F>) -> Result<Array2<F>> {
    same_dim(&a, &b)?;
    Ok(matmul(&a, &b.t()))
}

/// Cosine-similarity matrix: Sᵢⱼ = x̂ᵢ · ŷⱼ with rows L2-normalised (zero rows give similarity 0).
///
/// # Errors
/// [`Error::Shape`] when the embedding dimensions differ.
pub fn cosine_similarity<F: Real>(a: ArrayView2<'_, F>, b: ArrayView2<'_, F>) -> Result<Array2<F>> {
    same_dim(&a, &b)?;
    let (an, _) = l2_normalize_rows(a);
    let (bn, _) = l2_normalize_rows(b);
    Ok(matmul(&an, &bn.t()))
}

/// Squared Euclidean distances Dᵢⱼ = ‖aᵢ‖² + ‖bⱼ‖² − 2 aᵢ·bⱼ through GEMM, clamped at 0 (rounding can make the
/// expansion slightly negative).
///
/// # Errors
/// [`Error::Shape`] when the embedding dimensions differ.
pub fn squared_distances<F: Real>(a: ArrayView2<'_, F>, b: ArrayView2<'_, F>) -> Result<Array2<F>> {
    same_dim(&a, &b)?;
    let na = a.map_axis(Axis(1), |r| r.dot(&r));
    let nb = b.map_axis(Axis(1), |r| r.dot(&r));
    let mut d = matmul(&a, &b.t());
    let two = F::c(2.0);
    Zip::from(d.rows_mut()).and(&na).par_for_each(|mut row, &ai| {
        Zip::from(&mut row).and(&nb).for_each(|v, &bj| *v = (ai + bj - two * *v).max(F::zero()));
    });
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;
    use ndarray::array;

    #[test]
    fn matches_naive_loops() {
        let a = array![[1.0_f64, 2.0, 0.5], [-0.3, 0.0, 1.0]];
        let b = array![[0.5_f64, -1.0, 2.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]];
        let d = squared_distances(a.view(), b.view()).unwrap();
        let s = cosine_similarity(a.view(), b.view()).unwrap();
        for i in 0..2 {
            for j in 0..3 {
                let diff: f64 = (0..3).map(|k| (a[[i, k]] - b[[j, k]]).powi(2)).sum();
                assert_relative_eq!(d[[i, j]], diff, max_relative = 1e-12);
                let dot: f64 = (0..3).map(|k| a[[i, k]] * b[[j, k]]).sum();
                let na: f64 = (0..3).map(|k| a[[i, k]].powi(2)).sum::<f64>().sqrt();
                let nb: f64 = (0..3).map(|k| b[[j, k]].powi(2)).sum::<f64>().sqrt();
                let want = if nb == 0.0 { 0.0 } else { dot / (na * nb) };
                assert_relative_eq!(s[[i, j]], want, max_relative = 1e-12, epsilon = 1e-15);
            }
        }
        let bad = array![[1.0_f64, 2.0]];
        assert!(matches!(squared_distances(a.view(), bad.view()), Err(Error::Shape { arg: "b", .. })));
    }
}
