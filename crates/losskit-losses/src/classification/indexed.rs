//! A row driver for the multiclass losses whose row kernel needs the row's index (per-sample data such as
//! DatasetEquity likelihoods or ALDR-KL's per-sample λ), which the shared [`driver`](super::driver) does not pass.
//!
//! Same contract as the shared driver: validation in the same order with the same errors, rows in parallel in fixed
//! tasks that depend on the shape only, task sums (f64, in row order) added in task order, so the value is the same
//! bit for bit for any number of threads; the gradient row is written once, already scaled.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Ix2};
use rayon::prelude::*;

use losskit_tensor::{Error, Real, Reduction, Result, check};

use super::driver::{contiguous, standard};
use super::rowmath;
use crate::core::{LossOutput, Targets};

const TASK_ELEMS: usize = 16 * 1024;

/// One multiclass loss whose rows know their index. The runner guarantees: `z` finite and non-empty, `max` its
/// maximum, `label < z.len()`, `grad.len() == z.len()` and zeros on entry.
pub(crate) trait IndexedKernel<F: Real>: Sync {
    /// ℓᵢ of row `i`; writes `scale`·∂ℓᵢ/∂z into `grad` when given.
    fn row(&self, i: usize, z: &[F], max: F, label: usize, scale: F, grad: Option<&mut [F]>) -> F;
}

/// Runs `kernel` over every row; per_sampleᵢ = sᵢ·ℓᵢ, Mean = Σᵢ sᵢ·ℓᵢ / Σᵢ sᵢ, Sum = None = Σᵢ sᵢ·ℓᵢ.
///
/// # Errors
/// As the shared driver: [`Error::Empty`], [`Error::Shape`], [`Error::LabelOutOfRange`], [`Error::NonFinite`],
/// [`Error::Degenerate`]; [`Error::Input`] for probability targets.
pub(crate) fn run<F: Real, K: IndexedKernel<F>>(
    kernel: &K,
    what: &str,
    reduction: Reduction,
    logits: ArrayView2<'_, F>,
    targets: Targets<'_, F>,
    weights: Option<ArrayView1<'_, F>>,
    grad: bool,
) -> Result<LossOutput<F, Ix2>> {
    let (n, c) = logits.dim();
    check::non_empty("logits", n)?;
    if c == 0 {
        return Err(Error::Shape { arg: "logits", expected: "[N, C] with C ≥ 1".into(), got: vec![n, c] });
    }
    let Targets::Hard(t) = targets else {
        return Err(Error::Input { what: format!("{what} takes class indices as targets, not probabilities") });
    };
    check::shape("targets", t.shape(), &[Some(n)])?;
    check::labels("targets", t, c, None)?;
    let labels_cow = standard(t);
    let labels = contiguous(&labels_cow);
    let weights_cow = match weights {
        Some(w) => {
            check::weights("weights", w, n)?;
            Some(standard(w))
        }
        None => None,
    };
    let w: Option<&[F]> = weights_cow.as_ref().map(|w| contiguous(w));
    let inv_denominator = match reduction {
        Reduction::Mean => {
            let d: f64 = w.map_or(n as f64, |w| w.iter().map(|v| v.f64()).sum());
            if d.is_nan() || d <= 0.0 {
                return Err(Error::Degenerate { what: "the mean is undefined: all sample weights are 0".into() });
            }
            1.0 / d
        }
        Reduction::Sum | Reduction::None => 1.0,
    };
    let logits_cow = standard(logits);
    let z_all: &[F] = contiguous(&logits_cow);
    check::finite("logits", &logits_cow)?;

    let rows_per_task = (TASK_ELEMS / c).clamp(1, n);
    let mut per_sample = vec![F::zero(); n];
    let mut grad_buf: Option<Vec<F>> = grad.then(|| vec![F::zero(); n * c]);
    let grad_chunks: Vec<Option<&mut [F]>> = match grad_buf.as_mut() {
        Some(g) => g.chunks_mut(rows_per_task * c).map(Some).collect(),
        None => (0..n.div_ceil(rows_per_task)).map(|_| None).collect(),
    };
    let task = |(t, (out, mut g)): (usize, (&mut [F], Option<&mut [F]>))| -> f64 {
        let first = t * rows_per_task;
        let mut sum = 0.0_f64;
        for (r, o) in out.iter_mut().enumerate() {
            let i = first + r;
            let z = &z_all[i * c..(i + 1) * c];
            let (max, _) = rowmath::max_and_finite(z);
            let s = w.map_or(F::one(), |w| w[i]);
            let scale = F::c(s.f64() * inv_denominator);
            let g_row = g.as_deref_mut().map(|g| &mut g[r * c..(r + 1) * c]);
            *o = s * kernel.row(i, z, max, labels[i] as usize, scale, g_row);
            sum += o.f64();
        }
        sum
    };
    let jobs = per_sample.chunks_mut(rows_per_task).zip(grad_chunks);
    let sums: Vec<f64> = if n * c <= TASK_ELEMS {
        jobs.enumerate().map(task).collect()
    } else {
        let jobs: Vec<_> = jobs.collect();
        jobs.into_par_iter().enumerate().map(task).collect()
    };
    let total: f64 = sums.iter().sum();
    let value = match reduction {
        Reduction::Mean => total * inv_denominator,
        Reduction::Sum | Reduction::None => total,
    };
    let grad = match grad_buf {
        Some(g) => Some(Array2::from_shape_vec((n, c), g).map_err(|e| Error::Degenerate { what: e.to_string() })?),
        None => None,
    };
    Ok(LossOutput { value: F::c(value), per_sample: Some(Array1::from_vec(per_sample)), grad })
}
