//! Focal loss (Lin et al. 2017): the softmax form [`Focal`] for multiclass logits and the sigmoid form
//! [`SigmoidFocal`] for binary scores (`torchvision.ops.sigmoid_focal_loss`). The registry entry `focal` builds both;
//! the caller picks the form from its arrays (`logits` → softmax, `scores` → sigmoid).

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut2, Ix1, Ix2};

use losskit_tensor::{Error, Real, Reduction, Result, check};

use super::cross_entropy::integer_param;
use super::driver::{self, GradDest, RowKernel, Setup};
use super::rowmath;
use crate::binary::driver::{self as binary_driver, ElemKernel, sigmoid, softplus};
use crate::core::{BinaryLoss, ClassLoss, LossOutput, Targets};
use crate::registry::{BuiltLoss, Family, LossEntry, ParamSpec, Params, Range, param};

/// Focal loss, softmax form: cross-entropy that down-weights the examples the model already classifies well.
///
/// ```text
/// ℓᵢ = −α_y·(1 − p_y)^γ·log p_y          (0 when y = ignore_index)
/// where p = softmax(zᵢ), y = the label, α_c = class weight of class c (1 when absent)
///
/// Mean = Σᵢ sᵢ·ℓᵢ / Σᵢ sᵢ·α_yᵢ (non-ignored rows)     Sum = Σᵢ sᵢ·ℓᵢ     None: (sᵢ·ℓᵢ)ᵢ
/// ```
/// The per-class α is the paper's α-balancing carried to C classes (α_t = α of the true class); a single scalar α
/// would only rescale the loss, so the softmax form has none: the registry's scalar `alpha` belongs to the sigmoid
/// form ([`SigmoidFocal`]). The Mean divides by the class-weighted count of non-ignored rows, exactly like
/// [`CrossEntropy`](crate::CrossEntropy), so γ = 0 gives the class-weighted cross-entropy (same `ignore_index`).
///
/// # Parameters
/// * `gamma`: γ ≥ 0, default 2 (the paper's); γ = 0 is cross-entropy.
/// * `class_weights`: α ∈ [0, ∞)^C, default none (all 1).
/// * `ignore_index`: a label to skip, default −100 (as cross-entropy).
/// * `reduction`: `Mean` (default), `Sum` or `None`.
///
/// # Shapes
/// `logits` [N, C], hard targets `[N]` in `0..C` or `ignore_index` (probability targets are rejected), optional
/// `weights` `[N]`, `class_weights` `[C]`; gradient [N, C].
///
/// # Gradient
/// ```text
/// ∂ℓᵢ/∂z_k = α_y·[γ·(1 − p_y)^(γ−1)·p_y·log p_y − (1 − p_y)^γ]·(δ_ky − p_k)
/// ```
/// 1 − p_y is summed directly over k ≠ y and log p_y comes from log-softmax, so logits of ±1e4 stay finite. For
/// γ < 1 the factor (1 − p_y)^(γ−1) diverges as p_y → 1 but its product with log p_y ≈ −(1 − p_y) does not: the
/// kernel computes (1 − p_y)^γ·(log p_y / (1 − p_y)) and takes the limit 0 when 1 − p_y underflows.
///
/// # Errors
/// [`Error::Parameter`] for γ < 0 or a bad class weight; [`Error::Input`] for probability targets;
/// [`Error::Shape`], [`Error::Empty`], [`Error::LabelOutOfRange`], [`Error::NonFinite`] for bad inputs;
/// [`Error::Degenerate`] for a negative sample weight or a Mean whose denominator is 0.
///
/// # Examples
/// ```
/// use losskit_losses::{ClassLoss, Focal, Targets};
/// let logits = ndarray::array![[2.0_f64, 0.5, -1.0], [0.1, 0.2, 0.3]];
/// let out = Focal::new().gamma(2.0).compute(logits.view(), Targets::hard(&[0, 2]), None, true)?;
/// assert!(out.value > 0.0 && out.grad.is_some());
/// # Ok::<(), losskit_losses::Error>(())
/// ```
///
/// # References
/// Lin, Goyal, Girshick, He, Dollár (2017), *Focal Loss for Dense Object Detection*, ICCV, arXiv:1708.02002
/// (docs/papers.md key `lin2017focal`).
#[derive(Clone, Debug, PartialEq)]
pub struct Focal {
    /// γ ≥ 0. Default 2.
    pub gamma: f64,
    /// Per-class α `[C]`; `None` = all 1. Default `None`.
    pub class_weights: Option<Vec<f64>>,
    /// Label that is skipped. Default −100.
    pub ignore_index: i64,
    /// Default [`Reduction::Mean`].
    pub reduction: Reduction,
}

impl Default for Focal {
    fn default() -> Self {
        Self { gamma: 2.0, class_weights: None, ignore_index: -100, reduction: Reduction::Mean }
    }
}

impl Focal {
    /// The defaults (γ = 2, no class weights).
    pub fn new() -> Self {
        Self::default()
    }
    /// Focusing parameter γ ≥ 0 (default 2).
    pub fn gamma(mut self, gamma: f64) -> Self {
        self.gamma = gamma;
        self
    }
    /// Per-class α `[C]` (default none: all 1).
    pub fn class_weights(mut self, w: impl Into<Vec<f64>>) -> Self {
        self.class_weights = Some(w.into());
        self
    }
    /// The label to skip (default −100).
    pub fn ignore_index(mut self, index: i64) -> Self {
        self.ignore_index = index;
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
    /// [`Error::Parameter`] naming `gamma` or `class_weights`.
    pub fn check(&self) -> Result<()> {
        check::at_least("gamma", self.gamma, 0.0)?;
        driver::check_class_weights(self.class_weights.as_deref())
    }

    /// Builds the softmax form from registry parameters (and checks it).
    ///
    /// # Errors
    /// As [`Focal::check`]; [`Error::Parameter`] for a non-integer `ignore_index`.
    pub fn from_params(p: &Params) -> Result<Self> {
        let cfg = Self {
            gamma: p.f64("gamma")?,
            class_weights: p.vector("class_weights")?.map(<[f64]>::to_vec),
            ignore_index: integer_param("ignore_index", p.f64("ignore_index")?)?,
            reduction: p.reduction(),
        };
        cfg.check()?;
        Ok(cfg)
    }
}

struct Kernel<'a, F> {
    w: Option<&'a [F]>,
    gamma: F,
}

impl<F: Real> RowKernel<F> for Kernel<'_, F> {
    // split_exp_sum writes every column but y, scale_shift rewrites them, and column y is set last.
    const WRITES_HARD_ROW: bool = true;

    #[inline(always)]
    fn label_weight(&self, label: usize) -> F {
        self.w.map_or(F::one(), |w| w[label])
    }

    #[inline(always)]
    fn hard(&self, z: &[F], max: F, y: usize, scale: F, mut grad: Option<&mut [F]>) -> F {
        let zero = F::zero();
        let wy = self.label_weight(y);
        let sp = rowmath::split_exp_sum(z, max, F::one(), y, grad.as_deref_mut());
        let u = sp.one_minus_py();
        let lp = sp.log_py;
        let ug = u.powf(self.gamma); // 0⁰ = 1: γ = 0 is cross-entropy
        let loss = -(wy * ug * lp);
        if let Some(g) = grad {
            // γ·u^(γ−1)·p_y·log p_y = γ·u^γ·p_y·(log p_y / u); log p_y / u → −1 as u → 0, so the term → 0 there.
            let focus = if self.gamma > zero && u > zero { self.gamma * ug * sp.py() * (lp / u) } else { zero };
            let coef = scale * wy * (focus - ug);
            let (gl, gr) = g.split_at_mut(y);
            let (gy, gr) = gr.split_at_mut(1);
            let a = -coef / sp.total;
            rowmath::scale_shift(gl, a, zero, None);
            rowmath::scale_shift(gr, a, zero, None);
            gy[0] = coef * u;
        }
        loss
    }

    fn soft(&self, _z: &[F], _max: F, _t: &[F], _scale: F, _grad: Option<&mut [F]>) -> F {
        // Never called: `Focal::compute` rejects probability targets before the driver runs.
        F::nan()
    }
}

impl Focal {
    fn run<F: Real>(
        &self,
        logits: ArrayView2<'_, F>,
        targets: Targets<'_, F>,
        weights: Option<ArrayView1<'_, F>>,
        dest: GradDest<'_, F>,
    ) -> Result<LossOutput<F, Ix2>> {
        self.check()?;
        if let Targets::Soft(_) = targets {
            return Err(Error::Input {
                what: "focal (softmax form) takes class indices as targets, not probabilities".into(),
            });
        }
        let w = driver::class_weights::<F>(self.class_weights.as_deref(), logits.ncols())?;
        let kernel = Kernel { w: w.as_deref(), gamma: F::c(self.gamma) };
        let setup = Setup { ignore_index: Some(self.ignore_index), reduction: self.reduction };
        driver::run_to(&kernel, setup, logits, targets, weights, dest)
    }
}

impl<F: Real> ClassLoss<F> for Focal {
    fn compute(
        &self,
        logits: ArrayView2<'_, F>,
        targets: Targets<'_, F>,
        weights: Option<ArrayView1<'_, F>>,
        grad: bool,
    ) -> Result<LossOutput<F, Ix2>> {
        self.run(logits, targets, weights, if grad { GradDest::Alloc } else { GradDest::Skip })
    }

    fn value_and_grad_into(
        &self,
        logits: ArrayView2<'_, F>,
        targets: Targets<'_, F>,
        weights: Option<ArrayView1<'_, F>>,
        grad: ArrayViewMut2<'_, F>,
    ) -> Result<LossOutput<F, Ix2>> {
        self.run(logits, targets, weights, GradDest::Into(grad))
    }
}

/// Focal loss, sigmoid form: `torchvision.ops.sigmoid_focal_loss` with our reductions.
///
/// ```text
/// ℓᵢ = α_t·BCE(x, y)·(1 − p_t)^γ
/// where p = σ(x), 1 − p_t = y·σ(−x) + (1 − y)·σ(x), α_t = α·y + (1 − α)·(1 − y) (α_t = 1 when α < 0),
///       BCE(x, y) = (1 − y)·softplus(x) + y·softplus(−x)
///
/// Mean = Σᵢ sᵢ·ℓᵢ / Σᵢ sᵢ     Sum = Σᵢ sᵢ·ℓᵢ     None: (sᵢ·ℓᵢ)ᵢ
/// ```
/// Targets may be soft (any value in [0, 1]), as in torchvision. torchvision's default reduction is `'none'`;
/// ours is Mean (the same as its `'mean'` without per-sample weights). 1 − p_t is computed from σ(±x) directly,
/// not as 1 − p_t, so it keeps its digits for confident predictions.
///
/// # Parameters
/// * `gamma`: γ ≥ 0, default 2 (torchvision's and the paper's).
/// * `alpha`: α ≤ 1, default 0.25 (torchvision's and the paper's); any α < 0 turns the weighting off (torchvision's
///   convention; the registry accepts [−1, 1]).
/// * `reduction`: `Mean` (default), `Sum` or `None`.
///
/// # Shapes
/// `scores` `[N]`, `targets` `[N]` in [0, 1], optional `weights` `[N]`; gradient `[N]`.
///
/// # Gradient
/// ```text
/// ∂ℓᵢ/∂x = α_t·[(σ(x) − y)·(1 − p_t)^γ + γ·BCE·(1 − p_t)^γ·(1 − 2y)·σ(x)·σ(−x) / (1 − p_t)]
/// ```
/// σ(x)·σ(−x) / (1 − p_t) ≤ 1, so the second term stays finite for γ < 1; it is taken as 0 where 1 − p_t underflows.
///
/// # Errors
/// [`Error::Parameter`] for γ < 0 or α > 1; [`Error::Shape`], [`Error::Empty`], [`Error::NonFinite`] for bad inputs;
/// [`Error::Degenerate`] for a target outside [0, 1], a negative weight or a Mean over weights summing to 0.
///
/// # Examples
/// ```
/// use losskit_losses::{BinaryLoss, SigmoidFocal};
/// let scores = ndarray::array![3.0_f64, -1.0];
/// let targets = ndarray::array![1.0_f64, 1.0];
/// let out = SigmoidFocal::new().compute(scores.view(), targets.view(), None, true)?;
/// // the badly classified example pulls harder
/// assert!(out.grad.is_some_and(|g| g[0] < 0.0 && g[1] < g[0]));
/// # Ok::<(), losskit_losses::Error>(())
/// ```
///
/// # References
/// Lin, Goyal, Girshick, He, Dollár (2017), *Focal Loss for Dense Object Detection*, ICCV, arXiv:1708.02002
/// (docs/papers.md key `lin2017focal`); defaults and α convention of `torchvision.ops.sigmoid_focal_loss`.
#[derive(Clone, Debug, PartialEq)]
pub struct SigmoidFocal {
    /// γ ≥ 0. Default 2.
    pub gamma: f64,
    /// α ≤ 1; negative = no α weighting. Default 0.25.
    pub alpha: f64,
    /// Default [`Reduction::Mean`].
    pub reduction: Reduction,
}

impl Default for SigmoidFocal {
    fn default() -> Self {
        Self { gamma: 2.0, alpha: 0.25, reduction: Reduction::Mean }
    }
}

impl SigmoidFocal {
    /// The defaults (γ = 2, α = 0.25, as torchvision).
    pub fn new() -> Self {
        Self::default()
    }
    /// Focusing parameter γ ≥ 0 (default 2).
    pub fn gamma(mut self, gamma: f64) -> Self {
        self.gamma = gamma;
        self
    }
    /// Balance α ≤ 1 of the positive class; negative turns weighting off (default 0.25).
    pub fn alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
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
    /// [`Error::Parameter`] naming `gamma` or `alpha`.
    pub fn check(&self) -> Result<()> {
        check::at_least("gamma", self.gamma, 0.0)?;
        if !(self.alpha.is_finite() && self.alpha <= 1.0) {
            return Err(Error::Parameter {
                name: "alpha",
                value: self.alpha,
                reason: "must be ≤ 1 (a negative value turns the weighting off)",
            });
        }
        Ok(())
    }

    /// Builds the sigmoid form from registry parameters (and checks it).
    ///
    /// # Errors
    /// As [`SigmoidFocal::check`].
    pub fn from_params(p: &Params) -> Result<Self> {
        let cfg = Self { gamma: p.f64("gamma")?, alpha: p.f64("alpha")?, reduction: p.reduction() };
        cfg.check()?;
        Ok(cfg)
    }
}

struct SigmoidKernel<F> {
    gamma: F,
    alpha: Option<F>,
}

impl<F: Real> ElemKernel<F> for SigmoidKernel<F> {
    #[inline]
    fn elem(&self, x: F, y: F) -> (F, F) {
        let (zero, one) = (F::zero(), F::one());
        let (p, q) = (sigmoid(x), sigmoid(-x));
        let neg = one - y;
        let ce = neg * softplus(x) + y * softplus(-x);
        let u = y * q + neg * p; // 1 − p_t
        let ug = u.powf(self.gamma);
        let at = self.alpha.map_or(one, |a| a * y + (one - a) * neg);
        let dce = neg * p - y * q; // σ(x) − y without cancellation
        let focus = if self.gamma > zero && u > zero { ce * self.gamma * ug * (neg - y) * (p * q / u) } else { zero };
        (at * ce * ug, at * (dce * ug + focus))
    }
}

impl<F: Real> BinaryLoss<F> for SigmoidFocal {
    fn compute(
        &self,
        scores: ArrayView1<'_, F>,
        targets: ArrayView1<'_, F>,
        weights: Option<ArrayView1<'_, F>>,
        grad: bool,
    ) -> Result<LossOutput<F, Ix1>> {
        self.check()?;
        let kernel = SigmoidKernel { gamma: F::c(self.gamma), alpha: (self.alpha >= 0.0).then(|| F::c(self.alpha)) };
        binary_driver::run(&kernel, self.reduction, scores, targets, weights, grad)
    }
}

const PARAMS: &[ParamSpec] = &[
    param("gamma", "2", Range::NonNegative, "focusing parameter γ (both forms)"),
    param(
        "alpha",
        "0.25",
        Range::Closed(-1.0, 1.0),
        "sigmoid form only: weight α of positives, 1 − α of negatives (negative: none), as torchvision",
    ),
    param("class_weights", "none", Range::Vector, "softmax form only: per-class α [C]"),
    param("ignore_index", "-100", Range::Any, "softmax form only: an integer label to skip"),
];

fn build(p: &Params) -> Result<BuiltLoss> {
    Ok(BuiltLoss {
        class: Some(Box::new(Focal::from_params(p)?)),
        binary: Some(Box::new(SigmoidFocal::from_params(p)?)),
    })
}

/// Registry entry: builds both forms.
pub(crate) const ENTRY: LossEntry = LossEntry {
    name: "focal",
    family: Family::Classification,
    summary: "focal loss: softmax form on logits (per-class α, ignore_index) or sigmoid form on scores \
              (torchvision.ops.sigmoid_focal_loss)",
    paper: "lin2017focal",
    reference: "Lin, Goyal, Girshick, He, Dollár (2017), Focal Loss for Dense Object Detection, ICCV, \
                arXiv:1708.02002",
    params: PARAMS,
    build,
};

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn negative_gamma_is_rejected() {
        assert!(matches!(Focal::new().gamma(-1.0).check(), Err(Error::Parameter { name: "gamma", .. })));
        assert!(matches!(SigmoidFocal::new().gamma(-1.0).check(), Err(Error::Parameter { name: "gamma", .. })));
        assert!(matches!(SigmoidFocal::new().alpha(1.5).check(), Err(Error::Parameter { name: "alpha", .. })));
        assert!(SigmoidFocal::new().alpha(-1.0).check().is_ok());
    }

    #[test]
    fn probability_targets_are_an_input_error() {
        let z = array![[0.0_f64, 1.0]];
        let t = array![[0.5_f64, 0.5]];
        assert!(matches!(
            Focal::new().compute(z.view(), Targets::soft(t.view()), None, true),
            Err(Error::Input { .. })
        ));
    }

    #[test]
    fn small_gamma_gradient_is_finite_when_confident() {
        let z = array![[1e4_f64, 0.0, -1e4], [40.0, 0.0, 0.0]];
        for gamma in [0.0, 0.3, 1.0, 2.5] {
            let out = Focal::new().gamma(gamma).compute(z.view(), Targets::hard(&[0, 0]), None, true).unwrap();
            assert!(out.value.is_finite());
            assert!(out.grad.unwrap().iter().all(|v| v.is_finite()), "gamma {gamma}");
        }
    }
}
