//! Row L2-normalisation and its backward.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, Zip};

use crate::{Error, Real, Result};

/// Rows below this norm are treated as zero vectors: they normalise to 0 and pass no gradient, as
/// `torch.nn.functional.normalize(eps=1e-12)` does in practice (it divides by max(‖x‖, eps)).
pub const NORM_EPS: f64 = 1e-12;

/// Normalises each row: x̂ᵢ = xᵢ / max(‖xᵢ‖₂, ε), ε = [`NORM_EPS`]. Returns (x̂, norms) with the unclamped norms.
///
/// A zero row stays zero (finite), as in `torch.nn.functional.normalize`.
pub fn l2_normalize_rows<F: Real>(x: ArrayView2<'_, F>) -> (Array2<F>, Array1<F>) {
    let eps = F::c(NORM_EPS);
    let norms: Array1<F> = x.map_axis(Axis(1), |r| r.dot(&r).sqrt());
    let mut out = x.to_owned();
    Zip::from(out.rows_mut()).and(&norms).par_for_each(|mut row, &n| {
        let inv = F::one() / n.max(eps);
        row.mapv_inplace(|v| v * inv);
    });
    (out, norms)
}

/// Backward of [`l2_normalize_rows`]: given ∂L/∂x̂ (`grad_out`), the normalised rows x̂ and the norms, returns ∂L/∂x.
///
/// ```text
/// ∂L/∂xᵢ = (gᵢ − (gᵢ·x̂ᵢ) x̂ᵢ) / ‖xᵢ‖      for ‖xᵢ‖ ≥ ε;   gᵢ / ε otherwise (the clamped branch is linear)
/// ```
///
/// # Errors
/// [`Error::Shape`] when the three shapes disagree.
pub fn l2_normalize_backward<F: Real>(
    grad_out: ArrayView2<'_, F>,
    normalized: ArrayView2<'_, F>,
    norms: ArrayView1<'_, F>,
) -> Result<Array2<F>> {
    if grad_out.dim() != normalized.dim() || norms.len() != normalized.nrows() {
        return Err(Error::Shape {
            arg: "grad_out",
            expected: format!("{:?} with {} norms", normalized.shape(), normalized.nrows()),
            got: grad_out.shape().to_vec(),
        });
    }
    let eps = F::c(NORM_EPS);
    let mut gx = grad_out.to_owned();
    Zip::from(gx.rows_mut()).and(normalized.rows()).and(&norms).par_for_each(|mut g, xh, &n| {
        if n >= eps {
            let d = g.dot(&xh);
            let inv = F::one() / n;
            Zip::from(&mut g).and(&xh).for_each(|gj, &xj| *gj = (*gj - d * xj) * inv);
        } else {
            let inv = F::one() / eps;
            g.mapv_inplace(|v| v * inv);
        }
    });
    Ok(gx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;
    use ndarray::array;

    #[test]
    fn rows_have_unit_norm_and_zero_rows_stay_zero() {
        let x = array![[3.0_f64, 4.0], [0.0, 0.0]];
        let (xh, n) = l2_normalize_rows(x.view());
        assert_relative_eq!(xh[[0, 0]], 0.6);
        assert_relative_eq!(xh[[0, 1]], 0.8);
        assert_eq!(n[0], 5.0);
        assert_eq!(xh.row(1).sum(), 0.0);
    }

    #[test]
    fn backward_matches_finite_differences() {
        // L = Σ c ⊙ x̂ for a fixed c; compare with central differences.
        let x = array![[0.3_f64, -1.2, 2.0], [1.5, 0.1, -0.4]];
        let c = array![[0.7_f64, -0.2, 0.9], [-1.1, 0.4, 0.25]];
        let (xh, n) = l2_normalize_rows(x.view());
        let g = l2_normalize_backward(c.view(), xh.view(), n.view()).unwrap();
        let h = 1e-6;
        for i in 0..2 {
            for j in 0..3 {
                let mut xp = x.clone();
                xp[[i, j]] += h;
                let mut xm = x.clone();
                xm[[i, j]] -= h;
                let fp = (&l2_normalize_rows(xp.view()).0 * &c).sum();
                let fm = (&l2_normalize_rows(xm.view()).0 * &c).sum();
                assert_relative_eq!(g[[i, j]], (fp - fm) / (2.0 * h), max_relative = 1e-7);
            }
        }
    }
}
