//! Tversky loss (Li et al. 2020, §3.4 of the dice-for-NLP paper), on the overlap engine of [`Dice`](crate::Dice).

use ndarray::{ArrayView1, ArrayView2, Ix1, Ix2};

use losskit_tensor::{Error, Real, Reduction, Result, check};

use super::dice::{MODES, Overlap, OverlapMode, Sums, run_binary, run_class};
use crate::core::{BinaryLoss, ClassLoss, LossOutput, Targets};
use crate::registry::{BuiltLoss, Family, LossEntry, ParamSpec, Params, Range, param};

/// Tversky loss: one minus the Tversky index, which weighs false positives by α and false negatives by β.
///
/// ```text
/// TIᵢⱼ = (pᵢⱼyᵢⱼ + s) / (pᵢⱼyᵢⱼ + α·pᵢⱼ(1 − yᵢⱼ) + β·(1 − pᵢⱼ)yᵢⱼ + s)
/// instance (default): ℓᵢ = Σⱼ (1 − TIᵢⱼ)
/// column:             the denominator summed over the batch column (Σₙ w̃ₙ·(…)ₙⱼ + s), numerator per element
/// batch:              ℓᵢ = Σⱼ [1 − (TPⱼ + s)/(TPⱼ + α·FPⱼ + β·FNⱼ + s)] with TPⱼ = Σₙ w̃ₙpₙⱼyₙⱼ, … (same for every i)
/// Mean = Σᵢ wᵢℓᵢ / Σᵢ wᵢ     Sum = None = Σᵢ wᵢℓᵢ     w̃ₙ = N·wₙ/Σw
/// ```
/// Multiclass: p = softmax(zᵢ), y one-hot, j over all C classes (summed, as the dice loss). Binary: p = σ(x), one
/// column. α = β = 0.5 gives the instance DSC (2py + 2s)/(p + y + 2s). The paper's per-instance index is the
/// default mode (`official` is an alias of `instance`: the official repository ships no Tversky code). 1 − p comes
/// from the logits without cancellation.
///
/// # Parameters
/// * `alpha`: α ≥ 0, weight of false positives, default 0.5 (the paper tunes α, β per dataset and gives no default;
///   0.5 / 0.5 reduces to dice).
/// * `beta`: β ≥ 0, weight of false negatives, default 0.5.
/// * `smooth`: s ≥ 0, default 1 (the dice smoothing the official run scripts pass).
/// * `mode`: official | instance | column | batch, default official (= instance).
/// * `reduction`: `Mean` (default), `Sum` or `None`.
///
/// # Shapes
/// As [`Dice`](crate::Dice).
///
/// # Gradient
/// ```text
/// ∂num/∂p = y,   ∂den/∂p = y + α(1 − y) − β·y,   ∂(1 − TI)/∂p = −(∂num·D − A·∂den)/D²
/// ```
/// then the softmax (or sigmoid) Jacobian; the column and batch modes add the batch-sum terms as in [`Dice`](crate::Dice).
///
/// # Errors
/// [`Error::Parameter`] for a negative or non-finite α, β or s; input errors as [`Dice`](crate::Dice).
///
/// # Examples
/// ```
/// use losskit_losses::{BinaryLoss, Tversky};
/// let x = ndarray::array![2.0_f64, -2.0];
/// let y = ndarray::array![1.0_f64, 0.0];
/// let fn_heavy = Tversky::new().alpha(0.3).beta(0.7).compute(x.view(), y.view(), None, false)?;
/// assert!(fn_heavy.value > 0.0 && fn_heavy.value < 1.0);
/// # Ok::<(), losskit_losses::Error>(())
/// ```
///
/// # References
/// Li, Sun, Meng, Liang, Wu, Li (2020), *Dice Loss for Data-imbalanced NLP Tasks*, ACL, arXiv:1911.02855
/// (docs/papers.md key `li2020dice`), after Salehi, Erdogmus, Gholipour (2017), *Tversky loss function for image
/// segmentation using 3D fully convolutional deep networks*, arXiv:1706.05721.
#[derive(Clone, Debug, PartialEq)]
pub struct Tversky {
    /// α ≥ 0 (false positives). Default 0.5.
    pub alpha: f64,
    /// β ≥ 0 (false negatives). Default 0.5.
    pub beta: f64,
    /// Smoothing s ≥ 0. Default 1.
    pub smooth: f64,
    /// Where the sums run. Default [`OverlapMode::Official`] (= instance).
    pub mode: OverlapMode,
    /// Default [`Reduction::Mean`].
    pub reduction: Reduction,
}

impl Default for Tversky {
    fn default() -> Self {
        Self { alpha: 0.5, beta: 0.5, smooth: 1.0, mode: OverlapMode::Official, reduction: Reduction::Mean }
    }
}

impl Tversky {
    /// The defaults (α = β = 0.5, s = 1, per instance).
    pub fn new() -> Self {
        Self::default()
    }
    /// Weight α ≥ 0 of false positives (default 0.5).
    pub fn alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
    }
    /// Weight β ≥ 0 of false negatives (default 0.5).
    pub fn beta(mut self, beta: f64) -> Self {
        self.beta = beta;
        self
    }
    /// Smoothing s ≥ 0 (default 1).
    pub fn smooth(mut self, s: f64) -> Self {
        self.smooth = s;
        self
    }
    /// Where the sums run (default official = instance).
    pub fn mode(mut self, mode: OverlapMode) -> Self {
        self.mode = mode;
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
    /// [`Error::Parameter`] naming `alpha`, `beta` or `smooth`.
    pub fn check(&self) -> Result<()> {
        for (name, v) in [("alpha", self.alpha), ("beta", self.beta), ("smooth", self.smooth)] {
            check::at_least(name, v, 0.0)?;
            if !v.is_finite() {
                return Err(Error::Parameter { name, value: v, reason: "must be finite" });
            }
        }
        Ok(())
    }

    /// Builds the config from registry parameters (and checks it).
    ///
    /// # Errors
    /// As [`Tversky::check`]; [`Error::ParameterText`] for an unknown mode.
    pub fn from_params(p: &Params) -> Result<Self> {
        let cfg = Self {
            alpha: p.f64("alpha")?,
            beta: p.f64("beta")?,
            smooth: p.f64("smooth")?,
            mode: OverlapMode::parse(p.text("mode")?)?,
            reduction: p.reduction(),
        };
        cfg.check()?;
        Ok(cfg)
    }

    fn sums(&self) -> Sums {
        match self.mode {
            OverlapMode::Official | OverlapMode::Instance => Sums::Instance,
            OverlapMode::Column => Sums::Column,
            OverlapMode::Batch => Sums::Batch,
        }
    }
}

impl Overlap for Tversky {
    #[inline]
    fn terms(&self, p: f64, q: f64, y: f64) -> (f64, f64, f64, f64) {
        let num = p * y;
        let den = num + self.alpha * p * (1.0 - y) + self.beta * q * y;
        (num, den, y, y + self.alpha * (1.0 - y) - self.beta * y)
    }
}

impl<F: Real> ClassLoss<F> for Tversky {
    fn compute(
        &self,
        logits: ArrayView2<'_, F>,
        targets: Targets<'_, F>,
        weights: Option<ArrayView1<'_, F>>,
        grad: bool,
    ) -> Result<LossOutput<F, Ix2>> {
        self.check()?;
        run_class(self, "tversky", self.sums(), self.smooth, self.reduction, logits, targets, weights, grad)
    }
}

impl<F: Real> BinaryLoss<F> for Tversky {
    fn compute(
        &self,
        scores: ArrayView1<'_, F>,
        targets: ArrayView1<'_, F>,
        weights: Option<ArrayView1<'_, F>>,
        grad: bool,
    ) -> Result<LossOutput<F, Ix1>> {
        self.check()?;
        run_binary(self, self.sums(), self.smooth, self.reduction, scores, targets, weights, grad)
    }
}

const PARAMS: &[ParamSpec] = &[
    param("alpha", "0.5", Range::NonNegative, "weight α of false positives"),
    param("beta", "0.5", Range::NonNegative, "weight β of false negatives"),
    param("smooth", "1", Range::NonNegative, "smoothing s in numerator and denominator"),
    param(
        "mode",
        "official",
        Range::Choice(MODES),
        "where the sums run: official (= instance) | instance | column | batch",
    ),
];

fn build(p: &Params) -> Result<BuiltLoss> {
    let cfg = Tversky::from_params(p)?;
    Ok(BuiltLoss { class: Some(Box::new(cfg.clone())), binary: Some(Box::new(cfg)) })
}

/// Registry entry: multiclass (softmax) and binary (sigmoid) forms.
pub(crate) const ENTRY: LossEntry = LossEntry {
    name: "tversky",
    family: Family::Classification,
    summary: "Tversky loss: 1 − (TP + s)/(TP + α·FP + β·FN + s) per instance (or over the batch)",
    paper: "li2020dice",
    reference: "Li, Sun, Meng, Liang, Wu, Li (2020), Dice Loss for Data-imbalanced NLP Tasks, ACL, arXiv:1911.02855",
    params: PARAMS,
    build,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Dice;
    use ndarray::array;

    #[test]
    fn negative_weights_are_rejected() {
        assert!(matches!(Tversky::new().beta(-1.0).check(), Err(Error::Parameter { name: "beta", .. })));
    }

    #[test]
    fn half_half_is_dice_with_doubled_smoothing() {
        let x = array![1.5_f64, -0.3, 0.7];
        let y = array![1.0_f64, 0.0, 1.0];
        let t = Tversky::new().smooth(0.5).mode(OverlapMode::Instance);
        let d = Dice::new().smooth(1.0).mode(OverlapMode::Instance);
        let a = BinaryLoss::<f64>::compute(&t, x.view(), y.view(), None, true).unwrap();
        let b = BinaryLoss::<f64>::compute(&d, x.view(), y.view(), None, true).unwrap();
        assert!((a.value - b.value).abs() < 1e-14);
    }
}
