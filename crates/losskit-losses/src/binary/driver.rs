//! The shared driver of the binary losses: validation, parallel chunks, weights, reduction, gradient scaling.
//!
//! A loss supplies an [`ElemKernel`] returning (ℓᵢ, ∂ℓᵢ/∂xᵢ) for one score. Elements are cut into fixed chunks that
//! depend on N only, each chunk sums in order (in f64) and the chunk sums are added in chunk order, so the value is
//! the same bit for bit whatever the number of threads.

use ndarray::{Array1, ArrayView1, Ix1};
use rayon::prelude::*;

use losskit_tensor::{Error, Real, Reduction, Result, check};

use crate::classification::driver::{contiguous, standard};
use crate::core::LossOutput;

/// Elements per parallel task.
const TASK_ELEMS: usize = 8 * 1024;

/// One binary loss, element by element. The driver guarantees a finite `x` and a `t` in [0, 1].
pub(crate) trait ElemKernel<F: Real>: Sync {
    /// (ℓ, ∂ℓ/∂x).
    fn elem(&self, x: F, t: F) -> (F, F);
}

/// Runs `kernel` over every score.
///
/// ```text
/// per_sampleᵢ = sᵢ·ℓᵢ     Mean = Σᵢ sᵢ·ℓᵢ / Σᵢ sᵢ     Sum = None = Σᵢ sᵢ·ℓᵢ      (sᵢ = 1 without weights)
/// ```
///
/// # Errors
/// [`Error::Empty`], [`Error::Shape`], [`Error::NonFinite`] (scores, targets, weights), [`Error::Degenerate`]
/// (a target outside [0, 1], a negative weight, a Mean over weights summing to 0).
pub(crate) fn run<F: Real, K: ElemKernel<F>>(
    kernel: &K,
    reduction: Reduction,
    scores: ArrayView1<'_, F>,
    targets: ArrayView1<'_, F>,
    weights: Option<ArrayView1<'_, F>>,
    grad: bool,
) -> Result<LossOutput<F, Ix1>> {
    let n = scores.len();
    check::non_empty("scores", n)?;
    check::shape("targets", targets.shape(), &[Some(n)])?;
    check::finite("scores", &scores)?;
    check::finite("targets", &targets)?;
    if let Some((index, v)) = targets.iter().enumerate().find(|(_, v)| !(**v >= F::zero() && **v <= F::one())) {
        return Err(Error::Degenerate { what: format!("targets: value {v} at index {index} is outside [0, 1]") });
    }
    if let Some(w) = weights {
        check::weights("weights", w, n)?;
    }
    let inv_denominator = match reduction {
        Reduction::Mean => {
            let d: f64 = weights.map_or(n as f64, |w| w.iter().map(|v| v.f64()).sum());
            if d.is_nan() || d <= 0.0 {
                return Err(Error::Degenerate { what: "the mean is undefined: the sample weights sum to 0".into() });
            }
            1.0 / d
        }
        Reduction::Sum | Reduction::None => 1.0,
    };
    let (x, t, w) = (standard(scores), standard(targets), weights.map(standard));
    let (x, t) = (contiguous(&x), contiguous(&t));
    let w = w.as_ref().map(contiguous);

    let mut per_sample = vec![F::zero(); n];
    let mut grad_buf: Option<Vec<F>> = grad.then(|| vec![F::zero(); n]);
    let grad_chunks: Vec<Option<&mut [F]>> = match grad_buf.as_mut() {
        Some(g) => g.chunks_mut(TASK_ELEMS).map(Some).collect(),
        None => (0..n.div_ceil(TASK_ELEMS)).map(|_| None).collect(),
    };
    let task = |(k, (ps, g)): (usize, (&mut [F], Option<&mut [F]>))| -> f64 {
        let first = k * TASK_ELEMS;
        let mut g = g;
        let mut sum = 0.0;
        for (r, out) in ps.iter_mut().enumerate() {
            let i = first + r;
            let s = w.map_or(F::one(), |w| w[i]);
            let (loss, d) = kernel.elem(x[i], t[i]);
            *out = s * loss;
            sum += out.f64();
            if let Some(g) = g.as_deref_mut() {
                g[r] = F::c(s.f64() * inv_denominator) * d;
            }
        }
        sum
    };
    let jobs = per_sample.chunks_mut(TASK_ELEMS).zip(grad_chunks);
    let partials: Vec<f64> = if n <= TASK_ELEMS {
        jobs.enumerate().map(task).collect()
    } else {
        let jobs: Vec<_> = jobs.collect();
        jobs.into_par_iter().enumerate().map(task).collect()
    };
    let total: f64 = partials.iter().sum();
    let value = match reduction {
        Reduction::Mean => total * inv_denominator,
        Reduction::Sum | Reduction::None => total,
    };
    Ok(LossOutput {
        value: F::c(value),
        per_sample: Some(Array1::from_vec(per_sample)),
        grad: grad_buf.map(Array1::from_vec),
    })
}

/// log(1 + eˣ) = max(x, 0) + log1p(e^−|x|), finite for every finite x.
#[inline]
pub(crate) fn softplus<F: Real>(x: F) -> F {
    x.max(F::zero()) + (-x.abs()).exp().ln_1p()
}

/// σ(x) = 1 / (1 + e^−x), written so that the exponential never overflows.
#[inline]
pub(crate) fn sigmoid<F: Real>(x: F) -> F {
    if x >= F::zero() {
        F::one() / (F::one() + (-x).exp())
    } else {
        let e = x.exp();
        e / (F::one() + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softplus_and_sigmoid_are_stable() {
        assert_eq!(softplus(1e4_f64), 1e4);
        assert_eq!(softplus(-1e4_f64), 0.0);
        assert!((softplus(0.0_f64) - std::f64::consts::LN_2).abs() < 1e-16);
        assert!((softplus(-40.0_f64) - (-40.0_f64).exp()).abs() < 1e-30);
        assert_eq!(sigmoid(-1e4_f32), 0.0);
        assert_eq!(sigmoid(1e4_f32), 1.0);
        assert!((sigmoid(-40.0_f64) - (-40.0_f64).exp()).abs() < 1e-30);
    }
}
