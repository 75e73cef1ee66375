//! The input-family traits, targets and outputs shared by every loss.

use std::fmt::Debug;

use ndarray::{Array, Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2, Dimension, Ix1, Ix2};

use losskit_tensor::{Error, Real, Result};

/// Class targets of a classification loss.
#[derive(Clone, Copy, Debug)]
pub enum Targets<'a, F> {
    /// Integer class indices `[N]` in `0..C` (a loss with an `ignore_index` also accepts that value).
    Hard(ArrayView1<'a, i64>),
    /// Class probabilities [N, C] (each row non-negative; PyTorch does not require rows to sum to 1, nor do we).
    Soft(ArrayView2<'a, F>),
}

impl<'a, F> Targets<'a, F> {
    /// Hard targets from a slice of class indices.
    pub fn hard(labels: &'a [i64]) -> Self {
        Targets::Hard(ArrayView1::from(labels))
    }
    /// Soft (probability) targets.
    pub fn soft(probs: ArrayView2<'a, F>) -> Self {
        Targets::Soft(probs)
    }
    /// Number of rows (samples).
    pub fn len(&self) -> usize {
        match self {
            Targets::Hard(t) => t.len(),
            Targets::Soft(t) => t.nrows(),
        }
    }
    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a loss returns: the reduced value, the per-sample values and, when asked, the gradient with respect to the
/// differentiable input (of the same shape as that input).
#[derive(Clone, Debug, PartialEq)]
pub struct LossOutput<F, D: Dimension> {
    /// The reduced loss (for [`Reduction::None`](losskit_tensor::Reduction::None), the sum of `per_sample`).
    pub value: F,
    /// Per-sample losses after per-sample and class weighting (before reduction), when the loss has them.
    pub per_sample: Option<Array1<F>>,
    /// ∂value/∂input when `grad` was requested. Under `Reduction::None` it is the gradient of Σᵢ per_sampleᵢ.
    pub grad: Option<Array<F, D>>,
}

/// A multiclass loss on logits [N, C].
pub trait ClassLoss<F: Real> {
    /// Computes the loss of `logits` [N, C] against `targets`, with optional non-negative per-sample `weights` `[N]`.
    ///
    /// # Errors
    /// Shape, finiteness, label-range and parameter errors, each naming the argument.
    fn compute(
        &self,
        logits: ArrayView2<'_, F>,
        targets: Targets<'_, F>,
        weights: Option<ArrayView1<'_, F>>,
        grad: bool,
    ) -> Result<LossOutput<F, Ix2>>;

    /// [`ClassLoss::compute`] with the gradient written into the caller's `grad` [N, C] (row-major, contiguous; any
    /// contents on entry, all overwritten) instead of a fresh array. The returned [`LossOutput::grad`] is `None`;
    /// value, per-sample losses and gradient are bit-for-bit those of `compute`.
    ///
    /// The softmax-family losses (cross-entropy, focal, GCE, MAE, sum-exponential, comp-sum) write the gradient in
    /// the same sweep that reads the logits, so a training loop that reuses one buffer pays no allocation and no
    /// page faults; every other loss gets this default, which computes a fresh gradient and copies it.
    ///
    /// # Errors
    /// As [`ClassLoss::compute`]; [`Error::Shape`] naming `grad` when it is not a row-major array of the logits'
    /// shape. After an error `grad` holds unspecified values.
    fn value_and_grad_into(
        &self,
        logits: ArrayView2<'_, F>,
        targets: Targets<'_, F>,
        weights: Option<ArrayView1<'_, F>>,
        mut grad: ArrayViewMut2<'_, F>,
    ) -> Result<LossOutput<F, Ix2>> {
        check_grad_buffer(logits.dim(), &grad)?;
        let mut out = self.compute(logits, targets, weights, true)?;
        let g = out.grad.take().ok_or_else(|| Error::Degenerate { what: "the loss returned no gradient".into() })?;
        grad.assign(&g);
        Ok(out)
    }
}

/// The caller's gradient buffer of [`ClassLoss::value_and_grad_into`] must be a row-major, contiguous array of the
/// logits' shape `dim`.
///
/// # Errors
/// [`Error::Shape`] naming `grad`.
pub(crate) fn check_grad_buffer<F>(dim: (usize, usize), grad: &ArrayViewMut2<'_, F>) -> Result<()> {
    if grad.dim() != dim || !grad.is_standard_layout() {
        return Err(Error::Shape {
            arg: "grad",
            expected: format!("[{}, {}] (the logits' shape), row-major and contiguous", dim.0, dim.1),
            got: grad.shape().to_vec(),
        });
    }
    Ok(())
}

/// A binary loss on scores (logits) `[N]` with targets `[N]` in [0, 1].
pub trait BinaryLoss<F: Real> {
    /// Computes the loss of `scores` `[N]` against `targets` `[N]`, with optional per-sample `weights` `[N]`.
    ///
    /// # Errors
    /// Shape, finiteness, target-range and parameter errors, each naming the argument.
    fn compute(
        &self,
        scores: ArrayView1<'_, F>,
        targets: ArrayView1<'_, F>,
        weights: Option<ArrayView1<'_, F>>,
        grad: bool,
    ) -> Result<LossOutput<F, Ix1>>;
}

/// A classification loss usable in both precisions behind a trait object (what the registry builds).
pub trait DynClassLoss: ClassLoss<f32> + ClassLoss<f64> + Debug + Send + Sync {}
impl<T: ClassLoss<f32> + ClassLoss<f64> + Debug + Send + Sync> DynClassLoss for T {}

/// A binary loss usable in both precisions behind a trait object.
pub trait DynBinaryLoss: BinaryLoss<f32> + BinaryLoss<f64> + Debug + Send + Sync {}
impl<T: BinaryLoss<f32> + BinaryLoss<f64> + Debug + Send + Sync> DynBinaryLoss for T {}

/// A reference set for an embedding loss: pairs are formed between each query row and every reference row (no
/// self-pair is excluded), as pytorch-metric-learning's `ref_emb` / `ref_labels`.
#[derive(Clone, Copy, Debug)]
pub struct Reference<'a, F> {
    /// Reference embeddings [R, D] (same D as the queries).
    pub embeddings: ArrayView2<'a, F>,
    /// Reference labels `[R]`.
    pub labels: ArrayView1<'a, i64>,
}

/// What an embedding loss returns.
#[derive(Clone, Debug, PartialEq)]
pub struct EmbeddingOutput<F> {
    /// The reduced loss (for [`Reduction::None`](losskit_tensor::Reduction::None), the sum of `per_sample`).
    pub value: F,
    /// Per-anchor values ℓᵢ (the sum of the terms whose anchor is row i), or per-proxy values for proxy-anchor.
    pub per_sample: Option<Array1<F>>,
    /// ∂value/∂embeddings [N, D] when `grad` was requested.
    pub grad: Option<Array2<F>>,
    /// ∂value/∂reference embeddings [R, D] when a reference set was given and `grad` was requested.
    pub grad_reference: Option<Array2<F>>,
}

/// A deep-metric-learning loss on embeddings [N, D] with integer labels `[N]` (any integer values: only equality
/// matters), optionally against a separate reference set.
pub trait EmbeddingLoss<F: Real> {
    /// Computes the loss and, when `grad`, its gradient with respect to the embeddings (and the reference set).
    ///
    /// # Errors
    /// Shape, emptiness, finiteness and parameter errors, each naming the argument.
    fn compute(
        &self,
        embeddings: ArrayView2<'_, F>,
        labels: ArrayView1<'_, i64>,
        reference: Option<Reference<'_, F>>,
        grad: bool,
    ) -> Result<EmbeddingOutput<F>>;
}

/// What a proxy (classifier-weight) loss returns.
#[derive(Clone, Debug, PartialEq)]
pub struct ProxyOutput<F> {
    /// The reduced loss.
    pub value: F,
    /// Per-sample values (per-proxy values for proxy-anchor, whose terms belong to proxies).
    pub per_sample: Option<Array1<F>>,
    /// ∂value/∂embeddings [N, D] when `grad` was requested.
    pub grad: Option<Array2<F>>,
    /// ∂value/∂proxies [C, D] when `grad` was requested.
    pub grad_proxies: Option<Array2<F>>,
}

/// A proxy loss: embeddings [N, D], labels `[N]` in `0..C` and one learnable proxy (class weight) per class [C, D].
pub trait ProxyLoss<F: Real> {
    /// Computes the loss and, when `grad`, its gradients with respect to the embeddings and the proxies.
    ///
    /// # Errors
    /// Shape, emptiness, finiteness, label-range and parameter errors, each naming the argument.
    fn compute(
        &self,
        embeddings: ArrayView2<'_, F>,
        labels: ArrayView1<'_, i64>,
        proxies: ArrayView2<'_, F>,
        grad: bool,
    ) -> Result<ProxyOutput<F>>;
}

/// An embedding loss usable in both precisions behind a trait object (what the registry builds).
pub trait DynEmbeddingLoss: EmbeddingLoss<f32> + EmbeddingLoss<f64> + Debug + Send + Sync {}
impl<T: EmbeddingLoss<f32> + EmbeddingLoss<f64> + Debug + Send + Sync> DynEmbeddingLoss for T {}

/// A proxy loss usable in both precisions behind a trait object.
pub trait DynProxyLoss: ProxyLoss<f32> + ProxyLoss<f64> + Debug + Send + Sync {}
impl<T: ProxyLoss<f32> + ProxyLoss<f64> + Debug + Send + Sync> DynProxyLoss for T {}
