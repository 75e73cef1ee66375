//! Binary cross-entropy on logits with PyTorch's semantics (`binary_cross_entropy_with_logits`).

use ndarray::{ArrayView1, Ix1};

use losskit_tensor::{Real, Reduction, Result, check};

use super::driver::{self, ElemKernel, sigmoid, softplus};
use crate::core::{BinaryLoss, LossOutput};
use crate::registry::{BuiltLoss, Family, LossEntry, ParamSpec, Params, Range, param};

/// Binary cross-entropy on logits, `torch.nn.functional.binary_cross_entropy_with_logits` with a scalar
/// `pos_weight`; targets may be soft (any value in [0, 1]).
///
/// ```text
/// ℓᵢ = −[pw·y·log σ(x) + (1 − y)·log(1 − σ(x))]
///    = (1 − y)·softplus(x) + pw·y·softplus(−x)
/// where x = score, y = target ∈ [0, 1], pw = pos_weight, softplus(x) = max(x, 0) + log1p(e^−|x|)
///
/// Mean = Σᵢ sᵢ·ℓᵢ / Σᵢ sᵢ     Sum = Σᵢ sᵢ·ℓᵢ     None: (sᵢ·ℓᵢ)ᵢ      (sᵢ = per-sample weight, 1 when absent)
/// ```
/// This is PyTorch's stable form `(1 − y)·x + (1 + (pw − 1)·y)·(log1p(e^−|x|) + max(−x, 0))` rewritten without the
/// cancellation between (1 − y)·x and the softplus term (for y = 0 and x ≪ 0 PyTorch's form subtracts two numbers
/// near |x|); the two agree to rounding. Without per-sample weights the reductions are PyTorch's; with weights,
/// PyTorch's `weight` multiplies ℓᵢ but its Mean still divides by N, while ours divides by Σᵢ sᵢ (Sum agrees).
///
/// # Parameters
/// * `pos_weight`: pw ≥ 0, default 1; PyTorch's `pos_weight` for one output (a scalar).
/// * `reduction`: `Mean` (default), `Sum` or `None`.
///
/// # Shapes
/// `scores` `[N]`, `targets` `[N]` in [0, 1], optional `weights` `[N]`; gradient `[N]`.
///
/// # Gradient
/// ```text
/// ∂ℓᵢ/∂x = (1 − y)·σ(x) − pw·y·σ(−x)          (pw = 1: σ(x) − y)
/// ```
///
/// # Errors
/// [`Error::Parameter`](crate::Error::Parameter) for pw < 0 or non-finite; [`Error::Shape`](crate::Error::Shape),
/// [`Error::Empty`](crate::Error::Empty), [`Error::NonFinite`](crate::Error::NonFinite) for bad inputs;
/// [`Error::Degenerate`](crate::Error::Degenerate) for a target outside [0, 1], a negative weight or a Mean over
/// weights that sum to 0.
///
/// # Examples
/// ```
/// use losskit_losses::{BinaryCrossEntropy, BinaryLoss};
/// let scores = ndarray::array![0.0_f64, 2.0];
/// let targets = ndarray::array![1.0_f64, 0.0];
/// let out = BinaryCrossEntropy::new().pos_weight(2.0).compute(scores.view(), targets.view(), None, true)?;
/// let want = (2.0 * 2.0_f64.ln() + (1.0 + 2.0_f64.exp()).ln()) / 2.0;
/// assert!((out.value - want).abs() < 1e-12);
/// # Ok::<(), losskit_losses::Error>(())
/// ```
///
/// # References
/// Paszke et al. (2019), *PyTorch: An Imperative Style, High-Performance Deep Learning Library*, NeurIPS,
/// arXiv:1912.01703 (docs/papers.md key `pytorch`): `torch.nn.functional.binary_cross_entropy_with_logits`.
#[derive(Clone, Debug, PartialEq)]
pub struct BinaryCrossEntropy {
    /// pw ≥ 0. Default 1.
    pub pos_weight: f64,
    /// Default [`Reduction::Mean`].
    pub reduction: Reduction,
}

impl Default for BinaryCrossEntropy {
    fn default() -> Self {
        Self { pos_weight: 1.0, reduction: Reduction::Mean }
    }
}

impl BinaryCrossEntropy {
    /// The defaults (PyTorch's).
    pub fn new() -> Self {
        Self::default()
    }
    /// Weight of the positive term, pw ≥ 0 (default 1).
    pub fn pos_weight(mut self, pw: f64) -> Self {
        self.pos_weight = pw;
        self
    }
    /// Reduction (default [`Reduction::Mean`]).
    pub fn reduction(mut self, r: Reduction) -> Self {
        self.reduction = r;
        self
    }

    /// Validates the parameters.
    ///
    /// # Errors
    /// [`Error::Parameter`](crate::Error::Parameter) naming `pos_weight`.
    pub fn check(&self) -> Result<()> {
        check::at_least("pos_weight", self.pos_weight, 0.0)
    }

    /// Builds the config from registry parameters (and checks it).
    ///
    /// # Errors
    /// As [`BinaryCrossEntropy::check`].
    pub fn from_params(p: &Params) -> Result<Self> {
        let cfg = Self { pos_weight: p.f64("pos_weight")?, reduction: p.reduction() };
        cfg.check()?;
        Ok(cfg)
    }
}

struct Kernel<F> {
    pos_weight: F,
}

impl<F: Real> ElemKernel<F> for Kernel<F> {
    #[inline]
    fn elem(&self, x: F, y: F) -> (F, F) {
        let neg = F::one() - y;
        let pwy = self.pos_weight * y;
        let loss = neg * softplus(x) + pwy * softplus(-x);
        let d = neg * sigmoid(x) - pwy * sigmoid(-x);
        (loss, d)
    }
}

impl<F: Real> BinaryLoss<F> for BinaryCrossEntropy {
    fn compute(
        &self,
        scores: ArrayView1<'_, F>,
        targets: ArrayView1<'_, F>,
        weights: Option<ArrayView1<'_, F>>,
        grad: bool,
    ) -> Result<LossOutput<F, Ix1>> {
        self.check()?;
        let kernel = Kernel { pos_weight: F::c(self.pos_weight) };
        driver::run(&kernel, self.reduction, scores, targets, weights, grad)
    }
}

const PARAMS: &[ParamSpec] =
    &[param("pos_weight", "1", Range::NonNegative, "weight of the positive term (PyTorch's pos_weight, scalar)")];

fn build(p: &Params) -> Result<BuiltLoss> {
    Ok(BuiltLoss { class: None, binary: Some(Box::new(BinaryCrossEntropy::from_params(p)?)) })
}

/// Registry entry.
pub(crate) const ENTRY: LossEntry = LossEntry {
    name: "binary-cross-entropy",
    family: Family::Binary,
    summary: "binary cross-entropy on logits as torch.nn.functional.binary_cross_entropy_with_logits (pos_weight, \
              soft targets)",
    paper: "pytorch",
    reference: "Paszke et al. (2019), PyTorch: An Imperative Style, High-Performance Deep Learning Library, NeurIPS, \
                arXiv:1912.01703 — semantics of torch.nn.functional.binary_cross_entropy_with_logits",
    params: PARAMS,
    build,
};

#[cfg(test)]
mod tests {
    use super::*;
    use losskit_tensor::Error;
    use ndarray::array;

    #[test]
    fn negative_pos_weight_is_rejected() {
        assert!(matches!(
            BinaryCrossEntropy::new().pos_weight(-1.0).check(),
            Err(Error::Parameter { name: "pos_weight", .. })
        ));
    }

    #[test]
    fn extreme_scores_stay_finite_and_exact() {
        let x = array![1e4_f32, -1e4, 1e4, -1e4];
        let y = array![1.0_f32, 0.0, 0.0, 1.0];
        let out = BinaryCrossEntropy::new().reduction(Reduction::None).compute(x.view(), y.view(), None, true).unwrap();
        assert_eq!(out.per_sample.unwrap().to_vec(), vec![0.0, 0.0, 1e4, 1e4]);
        assert_eq!(out.grad.unwrap().to_vec(), vec![0.0, 0.0, 1.0, -1.0]);
    }

    #[test]
    fn target_outside_unit_interval_is_rejected() {
        let x = array![0.0_f64];
        let r = BinaryCrossEntropy::new().compute(x.view(), array![1.5_f64].view(), None, false);
        assert!(matches!(r, Err(Error::Degenerate { .. })));
    }
}
