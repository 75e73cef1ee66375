//! Central finite-difference gradient checker (feature `testing`), used by the test suites of every crate.

use ndarray::{ArrayD, IxDyn};

/// Result of a failed [`check`]: the worst element and its two gradients.
#[derive(Debug, Clone)]
pub struct Mismatch {
    /// Flat index of the worst element.
    pub index: usize,
    /// Analytic gradient there.
    pub analytic: f64,
    /// Finite-difference estimate there.
    pub numeric: f64,
    /// Error measure |a − n| / max(atol / rtol, |a|, |n|).
    pub error: f64,
}

/// Options of [`check`].
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Step h of the central difference (f(x+h) − f(x−h)) / 2h. Default 1e-6.
    pub step: f64,
    /// Relative tolerance. Default 1e-5.
    pub rtol: f64,
    /// Absolute tolerance. Default 1e-7.
    pub atol: f64,
}

impl Default for Options {
    fn default() -> Self {
        Self { step: 1e-6, rtol: 1e-5, atol: 1e-7 }
    }
}

/// Numerical gradient of `f` at `x` by central differences (f64).
pub fn numeric_gradient(mut f: impl FnMut(&ArrayD<f64>) -> f64, x: &ArrayD<f64>, step: f64) -> ArrayD<f64> {
    let mut g = ArrayD::zeros(IxDyn(x.shape()));
    let mut xp = x.clone();
    for i in 0..x.len() {
        let orig = xp.as_slice_memory_order().map_or(0.0, |s| s[i]);
        set(&mut xp, i, orig + step);
        let fp = f(&xp);
        set(&mut xp, i, orig - step);
        let fm = f(&xp);
        set(&mut xp, i, orig);
        if let Some(s) = g.as_slice_memory_order_mut() {
            s[i] = (fp - fm) / (2.0 * step);
        }
    }
    g
}

fn set(x: &mut ArrayD<f64>, i: usize, v: f64) {
    if let Some(s) = x.as_slice_memory_order_mut() {
        s[i] = v;
    }
}

/// Compares `analytic` with the central finite-difference gradient of `f` at `x`; every element must satisfy
/// |a − n| ≤ atol + rtol·max(|a|, |n|).
///
/// # Errors
/// The worst [`Mismatch`] when some element fails.
pub fn check(
    f: impl FnMut(&ArrayD<f64>) -> f64,
    x: &ArrayD<f64>,
    analytic: &ArrayD<f64>,
    opts: Options,
) -> Result<(), Mismatch> {
    assert_eq!(x.shape(), analytic.shape(), "gradcheck: analytic gradient shape differs from x");
    let x = x.as_standard_layout().to_owned();
    let analytic = analytic.as_standard_layout().to_owned();
    let num = numeric_gradient(f, &x, opts.step);
    let mut worst: Option<Mismatch> = None;
    for (index, (&a, &n)) in analytic.iter().zip(num.iter()).enumerate() {
        let tol = opts.atol + opts.rtol * a.abs().max(n.abs());
        let diff = (a - n).abs();
        if diff.is_nan() || diff > tol {
            let error = diff / tol;
            if worst.as_ref().is_none_or(|w| error > w.error) {
                worst = Some(Mismatch { index, analytic: a, numeric: n, error });
            }
        }
    }
    worst.map_or(Ok(()), Err)
}

/// Loads a JSON fixture file (test helper); panics with the path on failure, since a missing fixture is a broken
/// checkout, not user input.
#[track_caller]
pub fn load_json(path: impl AsRef<std::path::Path>) -> serde_json::Value {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display())); // ok: test helper
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display())) // ok: test helper
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_right_gradient_and_rejects_a_wrong_one() {
        let x = ArrayD::from_shape_vec(IxDyn(&[3]), vec![0.5, -1.0, 2.0]).unwrap();
        let f = |x: &ArrayD<f64>| x.iter().map(|v| v.powi(3)).sum::<f64>();
        let good = x.mapv(|v| 3.0 * v * v);
        assert!(check(f, &x, &good, Options::default()).is_ok());
        let mut bad = good.clone();
        bad[[1]] += 1e-3;
        let err = check(f, &x, &bad, Options::default()).unwrap_err();
        assert_eq!(err.index, 1);
    }
}
