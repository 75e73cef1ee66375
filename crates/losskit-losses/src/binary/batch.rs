//! Plumbing shared by the batch-level losses (AnyLoss, the batch modes of Dice and Tversky, EnsLoss): input
//! validation into f64 buffers, order-free batch sums and the reductions.
//!
//! A batch-level loss couples the samples of a batch (a soft confusion matrix, a dice denominator summed over the
//! batch, a rank assignment), so it is not a sum of per-sample terms computed alone. These losses follow one
//! convention, stated in each loss's docs:
//!
//! ```text
//! w̃ᵢ = N·wᵢ / Σⱼ wⱼ                     (relative weights: the batch keeps N effective samples; w = 1 without weights)
//! ℓᵢ = the sample's share (for a loss that is one number per batch, ℓᵢ = L for every i)
//! Mean = Σᵢ wᵢ·ℓᵢ / Σᵢ wᵢ     Sum = None = Σᵢ wᵢ·ℓᵢ     per_sampleᵢ = wᵢ·ℓᵢ
//! ```
//! so Sum = (Σᵢ wᵢ)·Mean holds as for every other loss. Scaling all weights by one constant changes nothing under
//! Mean; the batch-level statistics use w̃, so a weight acts like a repeat count of the sample.
//!
//! Batch sums are taken over the values sorted by size ([`order_free_sum`]), so a permuted batch gives bit-identical
//! statistics and per-sample values, and the result never depends on the thread count.

use ndarray::{Array, Array1, ArrayView1, ArrayView2, Dimension};

use losskit_tensor::{Error, Real, Reduction, Result, check};

use crate::core::{LossOutput, Targets};

/// Σ of `v` independent of the order of `v` (the values are sorted first; `v` is reordered).
pub(crate) fn order_free_sum(v: &mut [f64]) -> f64 {
    v.sort_unstable_by(f64::total_cmp);
    v.iter().sum()
}

/// Σᵢ f(i) over `0..n`, independent of the order of the terms.
pub(crate) fn sum_by(n: usize, f: impl Fn(usize) -> f64) -> f64 {
    let mut v: Vec<f64> = (0..n).map(f).collect();
    order_free_sum(&mut v)
}

/// Validated binary inputs in f64.
pub(crate) struct BinaryBatch {
    /// Scores `[N]`.
    pub x: Vec<f64>,
    /// Targets `[N]` in [0, 1].
    pub t: Vec<f64>,
    /// Raw per-sample weights (1 when absent).
    pub w: Vec<f64>,
    /// Relative weights w̃ (`None` when the weights sum to 0).
    pub rel: Option<Vec<f64>>,
}

/// Validated multiclass inputs in f64 (hard labels only).
pub(crate) struct ClassBatch {
    /// Logits, row-major [N, C].
    pub z: Vec<f64>,
    /// Rows.
    pub n: usize,
    /// Classes.
    pub c: usize,
    /// Labels in `0..C`.
    pub y: Vec<usize>,
    /// Raw per-sample weights (1 when absent).
    pub w: Vec<f64>,
    /// Relative weights w̃ (`None` when the weights sum to 0).
    pub rel: Option<Vec<f64>>,
}

fn weights_f64<F: Real>(weights: Option<ArrayView1<'_, F>>, n: usize) -> Result<Vec<f64>> {
    match weights {
        Some(w) => {
            check::weights("weights", w, n)?;
            Ok(w.iter().map(|v| v.f64()).collect())
        }
        None => Ok(vec![1.0; n]),
    }
}

fn relative(w: &[f64]) -> Option<Vec<f64>> {
    let total: f64 = w.iter().sum();
    if total > 0.0 {
        let k = w.len() as f64 / total;
        Some(w.iter().map(|&v| v * k).collect())
    } else {
        None
    }
}

/// Validates binary inputs exactly like the binary driver (same errors, same order).
///
/// # Errors
/// [`Error::Empty`], [`Error::Shape`], [`Error::NonFinite`], [`Error::Degenerate`] (target outside [0, 1], negative
/// weight).
pub(crate) fn binary_inputs<F: Real>(
    scores: ArrayView1<'_, F>,
    targets: ArrayView1<'_, F>,
    weights: Option<ArrayView1<'_, F>>,
) -> Result<BinaryBatch> {
    let n = scores.len();
    check::non_empty("scores", n)?;
    check::shape("targets", targets.shape(), &[Some(n)])?;
    check::finite("scores", &scores)?;
    check::finite("targets", &targets)?;
    if let Some((index, v)) = targets.iter().enumerate().find(|(_, v)| !(**v >= F::zero() && **v <= F::one())) {
        return Err(Error::Degenerate { what: format!("targets: value {v} at index {index} is outside [0, 1]") });
    }
    let w = weights_f64(weights, n)?;
    let rel = relative(&w);
    Ok(BinaryBatch {
        x: scores.iter().map(|v| v.f64()).collect(),
        t: targets.iter().map(|v| v.f64()).collect(),
        w,
        rel,
    })
}

/// Validates multiclass inputs like the multiclass driver (same errors, same order); probability targets are an
/// [`Error::Input`] naming `loss`.
///
/// # Errors
/// [`Error::Empty`], [`Error::Shape`], [`Error::LabelOutOfRange`], [`Error::NonFinite`], [`Error::Degenerate`]
/// (negative weight), [`Error::Input`] (probability targets).
pub(crate) fn class_inputs<F: Real>(
    loss: &str,
    logits: ArrayView2<'_, F>,
    targets: Targets<'_, F>,
    weights: Option<ArrayView1<'_, F>>,
) -> Result<ClassBatch> {
    let (n, c) = logits.dim();
    check::non_empty("logits", n)?;
    if c == 0 {
        return Err(Error::Shape { arg: "logits", expected: "[N, C] with C ≥ 1".into(), got: vec![n, c] });
    }
    let Targets::Hard(t) = targets else {
        return Err(Error::Input { what: format!("{loss} takes class indices as targets, not probabilities") });
    };
    check::shape("targets", t.shape(), &[Some(n)])?;
    check::labels("targets", t, c, None)?;
    let w = weights_f64(weights, n)?;
    check::finite("logits", &logits)?;
    let rel = relative(&w);
    Ok(ClassBatch {
        z: logits.iter().map(|v| v.f64()).collect(),
        n,
        c,
        y: t.iter().map(|&v| v as usize).collect(), // ok: labels checked to lie in 0..C
        w,
        rel,
    })
}

/// Applies the batch-level reduction convention (module docs) and casts to `F`.
///
/// `share[i]` is ℓᵢ (unweighted), `grad_mean` the gradient of the Mean objective Σᵢ wᵢℓᵢ / Σᵢ wᵢ (of any shape).
/// With weights summing to 0, Mean is an error and Sum/None give 0 with a zero gradient.
///
/// # Errors
/// [`Error::Degenerate`] for a Mean over weights summing to 0.
pub(crate) fn finish<F: Real, D: Dimension>(
    reduction: Reduction,
    w: &[f64],
    share: &[f64],
    grad_mean: Option<Array<f64, D>>,
) -> Result<LossOutput<F, D>> {
    let total: f64 = w.iter().sum();
    let per_sample: Vec<f64> = w.iter().zip(share).map(|(&wi, &l)| wi * l).collect();
    let sum: f64 = per_sample.iter().sum();
    let (value, k) = match reduction {
        Reduction::Mean => {
            if total.is_nan() || total <= 0.0 {
                return Err(Error::Degenerate { what: "the mean is undefined: the sample weights sum to 0".into() });
            }
            (sum / total, 1.0)
        }
        Reduction::Sum | Reduction::None => (sum, total),
    };
    Ok(LossOutput {
        value: F::c(value),
        per_sample: Some(Array1::from_iter(per_sample.iter().map(|&v| F::c(v)))),
        grad: grad_mean.map(|g| g.mapv(|v| F::c(v * k))),
    })
}

/// σ(x) without overflow.
#[inline]
pub(crate) fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// Softmax of one row with 1 − p computed without cancellation: `p[j]`, `q[j] = 1 − p[j]`.
pub(crate) fn softmax_row(z: &[f64], p: &mut [f64], q: &mut [f64]) {
    let (mut am, mut m) = (0, f64::NEG_INFINITY);
    for (j, &v) in z.iter().enumerate() {
        if v > m {
            (am, m) = (j, v);
        }
    }
    let mut total = 0.0;
    for (pj, &v) in p.iter_mut().zip(z) {
        *pj = (v - m).exp();
        total += *pj;
    }
    // 1 − p of the arg-max straight from the other terms; for the others total − e ≥ e_max ≥ e, so the subtraction
    // loses at most one bit.
    let others: f64 = p.iter().enumerate().filter(|&(j, _)| j != am).map(|(_, &e)| e).sum();
    for j in 0..p.len() {
        q[j] = if j == am { others / total } else { (total - p[j]) / total };
        p[j] /= total;
    }
}

/// ∂/∂z of a row through the softmax: `g[k] ← p[k]·(g[k] − Σⱼ p[j]·g[j])` (g holds ∂/∂p on entry).
pub(crate) fn softmax_backward(p: &[f64], g: &mut [f64]) {
    let dot: f64 = p.iter().zip(g.iter()).map(|(a, b)| a * b).sum();
    for (gk, &pk) in g.iter_mut().zip(p) {
        *gk = pk * (*gk - dot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_free_sum_ignores_order() {
        let mut a = vec![1e16, 1.0, -1e16, 3.5, 1e-3];
        let mut b = vec![3.5, -1e16, 1e-3, 1.0, 1e16];
        assert_eq!(order_free_sum(&mut a).to_bits(), order_free_sum(&mut b).to_bits());
    }

    #[test]
    fn softmax_row_keeps_small_complements() {
        let z = [40.0, 0.0, -3.0];
        let (mut p, mut q) = ([0.0; 3], [0.0; 3]);
        softmax_row(&z, &mut p, &mut q);
        let want = ((-40.0_f64).exp() + (-43.0_f64).exp()) / (1.0 + (-40.0_f64).exp() + (-43.0_f64).exp());
        assert!((q[0] - want).abs() <= 1e-15 * want);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-15);
    }
}
