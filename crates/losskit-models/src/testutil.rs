//! Test helpers.

use ndarray::{ArrayBase, Data, Dimension};

/// Asserts equal shapes and |aᵢ − bᵢ| ≤ eps everywhere (ndarray's `approx` feature is not enabled).
#[track_caller]
pub(crate) fn assert_all_close<S1, S2, D>(a: &ArrayBase<S1, D>, b: &ArrayBase<S2, D>, eps: f64)
where
    S1: Data<Elem = f64>,
    S2: Data<Elem = f64>,
    D: Dimension,
{
    assert_eq!(a.shape(), b.shape(), "shapes differ");
    for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
        assert!((x - y).abs() <= eps, "element {i}: {x} vs {y} (eps {eps})\nleft:  {a}\nright: {b}");
    }
}
