//! Validation helpers: every library entry point calls these before computing, so bad input becomes a typed
//! [`Error`] that names the argument and the value, never a panic or a silently wrong number.

use ndarray::{ArrayBase, ArrayView1, Data, Dimension};
use rayon::prelude::*;

use crate::{Error, Real, Result};

/// Fails with [`Error::Empty`] when `len == 0`.
pub fn non_empty(arg: &'static str, len: usize) -> Result<()> {
    if len == 0 { Err(Error::Empty { arg }) } else { Ok(()) }
}

/// Checks that `shape` equals `expected` (a `None` entry matches any extent).
pub fn shape(arg: &'static str, shape: &[usize], expected: &[Option<usize>]) -> Result<()> {
    let ok = shape.len() == expected.len() && shape.iter().zip(expected).all(|(&s, e)| e.is_none_or(|e| e == s));
    if ok {
        return Ok(());
    }
    let words: Vec<String> = expected.iter().map(|e| e.map_or("_".to_string(), |v| v.to_string())).collect();
    Err(Error::Shape { arg, expected: format!("[{}]", words.join(", ")), got: shape.to_vec() })
}

/// Fails with [`Error::NonFinite`] at the first NaN or infinity (flat, row-major index).
///
/// The common all-finite case is one vectorised pass (in parallel over blocks for large contiguous arrays); only
/// when it fails is the array scanned again for the first offending element.
pub fn finite<F: Real, S: Data<Elem = F>, D: Dimension>(arg: &'static str, a: &ArrayBase<S, D>) -> Result<()> {
    let clean = match a.as_slice_memory_order() {
        Some(flat) if flat.len() >= 2 * FINITE_BLOCK => flat.par_chunks(FINITE_BLOCK).all(all_finite),
        Some(flat) => all_finite(flat),
        None => a.iter().fold(F::zero(), |acc, &v| acc + v * F::zero()) == F::zero(),
    };
    if clean {
        return Ok(());
    }
    match a.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        Some((index, v)) => Err(Error::NonFinite { arg, index, value: v.f64() }),
        None => Ok(()),
    }
}

/// Elements per parallel block of [`finite`] (512 KiB of f64).
const FINITE_BLOCK: usize = 1 << 16;

/// Whether every element is finite: the sum of `x·0` is ±0 exactly when no element is NaN or infinite. Eight
/// independent sums, so that the loop vectorises.
fn all_finite<F: Real>(s: &[F]) -> bool {
    let mut acc = [F::zero(); 8];
    let chunks = s.chunks_exact(8);
    let mut tail = F::zero();
    for &v in chunks.remainder() {
        tail += v * F::zero();
    }
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += v * F::zero();
        }
    }
    acc.iter().fold(tail, |t, &a| t + a) == F::zero()
}

/// Checks integer class labels: each in `0..classes`, or equal to `ignore` when given.
pub fn labels(arg: &'static str, labels: ArrayView1<'_, i64>, classes: usize, ignore: Option<i64>) -> Result<()> {
    for (index, &label) in labels.iter().enumerate() {
        if Some(label) == ignore {
            continue;
        }
        if label < 0 || label as u64 >= classes as u64 {
            return Err(Error::LabelOutOfRange { arg, label, classes, index });
        }
    }
    Ok(())
}

/// Per-sample weights: length `n`, finite, non-negative.
pub fn weights<F: Real>(arg: &'static str, w: ArrayView1<'_, F>, n: usize) -> Result<()> {
    shape(arg, w.shape(), &[Some(n)])?;
    finite(arg, &w)?;
    if let Some((index, v)) = w.iter().enumerate().find(|(_, v)| **v < F::zero()) {
        return Err(Error::Degenerate { what: format!("{arg}: negative weight {v} at index {index}") });
    }
    Ok(())
}

fn param(name: &'static str, value: f64, ok: bool, reason: &'static str) -> Result<()> {
    if ok && !value.is_nan() { Ok(()) } else { Err(Error::Parameter { name, value, reason }) }
}

/// `value` must be finite.
pub fn finite_param(name: &'static str, value: f64) -> Result<()> {
    param(name, value, value.is_finite(), "must be finite")
}

/// `value ≥ lo` (and finite).
pub fn at_least(name: &'static str, value: f64, lo: f64) -> Result<()> {
    param(name, value, value.is_finite() && value >= lo, if lo == 0.0 { "must be ≥ 0" } else { "below its minimum" })
}

/// `value > lo` (and finite).
pub fn greater_than(name: &'static str, value: f64, lo: f64) -> Result<()> {
    param(
        name,
        value,
        value.is_finite() && value > lo,
        if lo == 0.0 { "must be > 0" } else { "at or below its minimum" },
    )
}

/// `lo ≤ value ≤ hi`.
pub fn closed(name: &'static str, value: f64, lo: f64, hi: f64) -> Result<()> {
    param(name, value, value >= lo && value <= hi, "outside its closed range")
}

/// `lo ≤ value < hi`.
pub fn closed_open(name: &'static str, value: f64, lo: f64, hi: f64) -> Result<()> {
    param(name, value, value >= lo && value < hi, "outside its half-open range [lo, hi)")
}

/// `lo < value ≤ hi`.
pub fn open_closed(name: &'static str, value: f64, lo: f64, hi: f64) -> Result<()> {
    param(name, value, value > lo && value <= hi, "outside its half-open range (lo, hi]")
}

/// `lo < value < hi`.
pub fn open(name: &'static str, value: f64, lo: f64, hi: f64) -> Result<()> {
    param(name, value, value > lo && value < hi, "outside its open range")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{ShapeBuilder, array};

    #[test]
    fn each_check_names_its_argument() {
        assert_eq!(non_empty("logits", 0), Err(Error::Empty { arg: "logits" }));
        assert!(shape("logits", &[2, 3], &[Some(2), None]).is_ok());
        assert!(matches!(shape("logits", &[2, 3], &[Some(4), None]), Err(Error::Shape { arg: "logits", .. })));
        let x = array![[1.0_f64, f64::NAN], [0.0, 1.0]];
        assert!(matches!(finite("logits", &x), Err(Error::NonFinite { arg: "logits", index: 1, .. })));
        assert!(finite("logits", &array![1.0_f32, 2.0]).is_ok());
        let y = array![0_i64, 2, -100, 3];
        assert!(labels("targets", y.view(), 4, Some(-100)).is_ok());
        assert!(matches!(
            labels("targets", y.view(), 3, Some(-100)),
            Err(Error::LabelOutOfRange { label: 3, index: 3, .. })
        ));
        assert!(matches!(at_least("gamma", -1.0, 0.0), Err(Error::Parameter { name: "gamma", .. })));
        assert!(closed("alpha", f64::NAN, 0.0, 1.0).is_err());
        assert!(closed_open("label_smoothing", 1.0, 0.0, 1.0).is_err());
        assert!(weights("weights", array![1.0_f64, -0.5].view(), 2).is_err());
    }

    #[test]
    fn finite_finds_the_first_bad_element_at_any_size_and_layout() {
        // Sizes around the 8-wide chunks and the parallel block; every bad value at a few positions.
        for len in [1, 7, 8, 9, 63, 2 * FINITE_BLOCK - 1, 2 * FINITE_BLOCK + 5, 5 * FINITE_BLOCK + 3] {
            let clean = ndarray::Array1::from_shape_fn(len, |i| (i as f64 * 0.37).sin() * 1e300);
            assert!(finite("x", &clean).is_ok(), "len {len}");
            for pos in [0, len / 2, len - 1] {
                for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                    let mut a = clean.clone();
                    a[pos] = bad;
                    match finite("x", &a) {
                        Err(Error::NonFinite { arg: "x", index, .. }) => assert_eq!(index, pos, "len {len}"),
                        other => panic!("len {len} pos {pos}: {other:?}"),
                    }
                }
            }
        }
        // Column-major memory: the index is still the row-major one.
        let mut m = ndarray::Array2::<f32>::zeros((3, 4).f());
        m[[2, 1]] = f32::NAN;
        assert!(matches!(finite("m", &m), Err(Error::NonFinite { index: 9, .. })));
        assert!(matches!(finite("m", &m.t()), Err(Error::NonFinite { index: 5, .. })));
    }
}
