//! Numerically stable row log-sum-exp, softmax and log-softmax.
//!
//! Every function subtracts the row maximum before exponentiating, so logits of ±1e4 (or any finite value) give
//! finite results; the exponentials use [`Real::fast_exp`], whose loops vectorise.

use ndarray::{Array1, Array2, ArrayView2, Axis, Zip};

use crate::{Error, Real, Result};

/// Maximum of a non-empty slice (−∞ for an empty one).
#[inline]
pub fn max<F: Real>(row: &[F]) -> F {
    row.iter().fold(F::neg_infinity(), |m, &v| if v > m { v } else { m })
}

/// Writes `out[j] = exp(row[j] − shift)` and returns `Σⱼ out[j]`. One vectorised sweep.
#[inline]
pub fn exp_shifted<F: Real>(row: &[F], shift: F, out: &mut [F]) -> F {
    debug_assert_eq!(row.len(), out.len());
    let mut sum = F::zero();
    for (o, &v) in out.iter_mut().zip(row) {
        let e = (v - shift).fast_exp();
        *o = e;
        sum += e;
    }
    sum
}

/// In-place eˣ over a slice (vectorised [`Real::fast_exp`]).
pub fn exp_inplace<F: Real>(xs: &mut [F]) {
    for v in xs.iter_mut() {
        *v = v.fast_exp();
    }
}

/// `Σⱼ exp(row[j] − shift)`, without storing the exponentials.
#[inline]
pub fn sum_exp_shifted<F: Real>(row: &[F], shift: F) -> F {
    let mut sum = F::zero();
    for &v in row {
        sum += (v - shift).fast_exp();
    }
    sum
}

/// `log Σⱼ exp(row[j])` computed as `m + log Σⱼ exp(row[j] − m)`, `m = maxⱼ row[j]`. −∞ for an empty row.
#[inline]
pub fn log_sum_exp<F: Real>(row: &[F]) -> F {
    let m = max(row);
    if !m.is_finite() {
        return m;
    }
    m + sum_exp_shifted(row, m).ln()
}

fn rows_ok<F: Real>(x: &ArrayView2<'_, F>, arg: &'static str) -> Result<()> {
    if x.ncols() == 0 {
        return Err(Error::Shape { arg, expected: "[N, C] with C ≥ 1".into(), got: x.shape().to_vec() });
    }
    Ok(())
}

/// Row-wise log-sum-exp of an [N, C] array.
///
/// # Errors
/// [`Error::Shape`] when C = 0.
pub fn log_sum_exp_rows<F: Real>(x: ArrayView2<'_, F>) -> Result<Array1<F>> {
    rows_ok(&x, "x")?;
    let mut out = Array1::zeros(x.nrows());
    Zip::from(&mut out).and(x.rows()).par_for_each(|o, row| {
        let owned;
        let s = match row.as_slice() {
            Some(s) => s,
            None => {
                owned = row.to_vec();
                &owned
            }
        };
        *o = log_sum_exp(s);
    });
    Ok(out)
}

/// Row-wise softmax pᵢⱼ = exp(xᵢⱼ − mᵢ) / Σₖ exp(xᵢₖ − mᵢ).
///
/// # Errors
/// [`Error::Shape`] when C = 0.
pub fn softmax_rows<F: Real>(x: ArrayView2<'_, F>) -> Result<Array2<F>> {
    rows_ok(&x, "x")?;
    let mut out = x.to_owned();
    out.axis_iter_mut(Axis(0)).for_each(|mut row| {
        if let Some(s) = row.as_slice_mut() {
            let m = max(s);
            let mut sum = F::zero();
            for v in s.iter_mut() {
                *v = (*v - m).fast_exp();
                sum += *v;
            }
            let inv = F::one() / sum;
            s.iter_mut().for_each(|v| *v *= inv);
        }
    });
    Ok(out)
}

/// Row-wise log-softmax xᵢⱼ − log Σₖ exp(xᵢₖ).
///
/// # Errors
/// [`Error::Shape`] when C = 0.
pub fn log_softmax_rows<F: Real>(x: ArrayView2<'_, F>) -> Result<Array2<F>> {
    let lse = log_sum_exp_rows(x)?;
    let mut out = x.to_owned();
    Zip::from(out.rows_mut()).and(&lse).for_each(|mut row, &l| row.mapv_inplace(|v| v - l));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;
    use ndarray::array;

    #[test]
    fn log_sum_exp_is_exact_and_stable() {
        let row = [1.0_f64, 2.0, 3.0];
        let want = (1.0_f64.exp() + 2.0_f64.exp() + 3.0_f64.exp()).ln();
        assert_relative_eq!(log_sum_exp(&row), want, max_relative = 1e-15);
        assert_relative_eq!(log_sum_exp(&[1e4_f64, 1e4]), 1e4 + 2.0_f64.ln(), max_relative = 1e-15);
        assert_relative_eq!(log_sum_exp(&[-1e4_f32, 0.0]), 0.0, epsilon = 1e-7);
        assert_eq!(log_sum_exp::<f64>(&[]), f64::NEG_INFINITY);
    }

    #[test]
    fn softmax_rows_sum_to_one_and_shift_invariant() {
        let x = array![[1.0_f64, -2.0, 0.5], [1e4, -1e4, 0.0]];
        let p = softmax_rows(x.view()).unwrap();
        for r in p.rows() {
            assert_relative_eq!(r.sum(), 1.0, max_relative = 1e-14);
        }
        let shifted = &x + 123.0;
        let q = softmax_rows(shifted.view()).unwrap();
        for (a, b) in p.iter().zip(q.iter()) {
            assert_relative_eq!(*a, *b, max_relative = 1e-12, epsilon = 1e-300);
        }
        let lp = log_softmax_rows(x.view()).unwrap();
        assert_relative_eq!(lp[[0, 0]], p[[0, 0]].ln(), max_relative = 1e-14);
        assert!(lp.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn zero_columns_is_a_shape_error() {
        let x = Array2::<f64>::zeros((3, 0));
        assert!(matches!(softmax_rows(x.view()), Err(Error::Shape { .. })));
    }
}
