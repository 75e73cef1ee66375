//! ArcFace / additive angular margin loss (Deng et al. 2019) with pytorch-metric-learning's semantics.

use ndarray::{ArrayView1, ArrayView2};

use losskit_tensor::{Real, Reduction, Result, check};

use super::driver::{self, RowSoftmax};
use crate::core::{ProxyLoss, ProxyOutput};
use crate::registry::{BuiltLoss, Family, LossEntry, MetricForms, ParamSpec, Params, Range, param};

/// ArcFace: softmax over scaled cosines with an additive angular margin on the target class, made monotonic.
///
/// ```text
/// ℓᵢ = −log( e^{s·ψ(θ_iy)} / (e^{s·ψ(θ_iy)} + Σ_{j≠y} e^{s cos θ_ij}) )      Mean = (1/N)·Σᵢ ℓᵢ
/// ψ(θ) = cos(θ + m)            if θ ≤ π − m
///        cos θ − m·sin m       otherwise (the monotonic fallback: cos(θ + m) would rise again past π)
/// where θ_ij = arccos(x̂ᵢ·ŵⱼ)
/// ```
/// # Parameters
/// * `margin`: m in **degrees**, [0, 90], default 28.6 (PML `ArcFaceLoss(margin=28.6)`, its keyword and unit;
///   28.6° = 0.4992 rad, the paper's m = 0.5 rad is 28.648°).
/// * `scale`: s > 0, default 64 (PML `scale`).
/// * `reduction`: `Mean`, `Sum`, `None` (per-sample ℓᵢ).
///
/// # Shapes
/// `embeddings` [N, D], `labels` `[N]` in `0..C`, `proxies` (class weights) [C, D]; gradients [N, D] and [C, D].
///
/// # Gradient
/// ```text
/// ∂ψ/∂c = sin(θ + m)/sin θ = cos m + sin m · c/√(1 − c²)      (c = cos θ, first branch);   1 in the fallback
/// ```
/// with √(1 − c²) floored at 1e-7 so a target cosine of exactly ±1 gives a finite gradient; the rest as CosFace.
///
/// # Errors
/// [`Error::Parameter`](losskit_tensor::Error::Parameter) for m ∉ [0°, 90°] or s ≤ 0; [`Error::Shape`](losskit_tensor::Error::Shape), [`Error::Empty`](losskit_tensor::Error::Empty),
/// [`Error::LabelOutOfRange`](losskit_tensor::Error::LabelOutOfRange), [`Error::NonFinite`](losskit_tensor::Error::NonFinite).
///
/// # References
/// Deng, Guo, Xue, Zafeiriou (2019), *ArcFace: Additive Angular Margin Loss for Deep Face Recognition*, CVPR,
/// arXiv:1801.07698 (docs/papers.md key `deng2019arcface`); pytorch-metric-learning 2.x `ArcFaceLoss`.
#[derive(Clone, Debug, PartialEq)]
pub struct ArcFace {
    /// m in degrees, [0, 90]. Default 28.6.
    pub margin: f64,
    /// s > 0. Default 64.
    pub scale: f64,
    /// Default [`Reduction::Mean`].
    pub reduction: Reduction,
}

impl Default for ArcFace {
    fn default() -> Self {
        Self { margin: 28.6, scale: 64.0, reduction: Reduction::Mean }
    }
}

impl ArcFace {
    /// PML's defaults (m = 28.6°, s = 64).
    pub fn new() -> Self {
        Self::default()
    }
    /// m in degrees (default 28.6).
    pub fn margin(mut self, degrees: f64) -> Self {
        self.margin = degrees;
        self
    }
    /// m in radians (the paper's unit: 0.5).
    pub fn margin_radians(mut self, rad: f64) -> Self {
        self.margin = rad.to_degrees();
        self
    }
    /// s (default 64).
    pub fn scale(mut self, v: f64) -> Self {
        self.scale = v;
        self
    }
    /// Reduction (default mean).
    pub fn reduction(mut self, r: Reduction) -> Self {
        self.reduction = r;
        self
    }
    /// Validates the parameters.
    ///
    /// # Errors
    /// [`Error::Parameter`](losskit_tensor::Error::Parameter) naming `margin` or `scale`.
    pub fn check(&self) -> Result<()> {
        check::closed("margin", self.margin, 0.0, 90.0)?;
        check::greater_than("scale", self.scale, 0.0)
    }
    /// Builds the config from registry parameters (and checks it).
    ///
    /// # Errors
    /// As [`ArcFace::check`].
    pub fn from_params(p: &Params) -> Result<Self> {
        let cfg = Self { margin: p.f64("margin")?, scale: p.f64("scale")?, reduction: p.reduction() };
        cfg.check()?;
        Ok(cfg)
    }
}

struct Kernel<F> {
    s: F,
    m: F,
    cos_m: F,
    sin_m: F,
    /// π − m.
    limit: F,
}

impl<F: Real> RowSoftmax<F> for Kernel<F> {
    fn scale(&self) -> F {
        self.s
    }
    fn target(&self, c: F) -> (F, F) {
        let c = c.max(-F::one()).min(F::one());
        let theta = c.acos();
        if theta <= self.limit {
            let sin_t = (F::one() - c * c).max(F::zero()).sqrt();
            let psi = c * self.cos_m - sin_t * self.sin_m;
            (psi, self.cos_m + self.sin_m * c / sin_t.max(F::c(1e-7)))
        } else {
            (c - self.m * self.sin_m, F::one())
        }
    }
}

impl<F: Real> ProxyLoss<F> for ArcFace {
    fn compute(
        &self,
        embeddings: ArrayView2<'_, F>,
        labels: ArrayView1<'_, i64>,
        proxies: ArrayView2<'_, F>,
        grad: bool,
    ) -> Result<ProxyOutput<F>> {
        self.check()?;
        let m = self.margin.to_radians();
        let k = Kernel {
            s: F::c(self.scale),
            m: F::c(m),
            cos_m: F::c(m.cos()),
            sin_m: F::c(m.sin()),
            limit: F::c(std::f64::consts::PI - m),
        };
        driver::run_softmax(&k, self.reduction, embeddings, labels, proxies, grad)
    }
}

const PARAMS: &[ParamSpec] = &[
    param("margin", "28.6", Range::Closed(0.0, 90.0), "m: angular margin in degrees (PML margin; 28.6° ≈ 0.5 rad)"),
    param("scale", "64", Range::Positive, "s: multiplies every logit (PML scale)"),
];

fn build(p: &Params) -> Result<BuiltLoss> {
    ArcFace::from_params(p).map(|_| BuiltLoss::default())
}

pub(crate) fn build_metric(p: &Params) -> Result<MetricForms> {
    Ok(MetricForms { embedding: None, proxy: Some(Box::new(ArcFace::from_params(p)?)) })
}

/// Registry entry.
pub(crate) const ENTRY: LossEntry = LossEntry {
    name: "arcface",
    family: Family::Proxy,
    summary: "ArcFace additive angular margin loss with the monotonic fallback past π − m (PML semantics)",
    paper: "deng2019arcface",
    reference: "Deng, Guo, Xue, Zafeiriou (2019), ArcFace: Additive Angular Margin Loss for Deep Face Recognition, \
                CVPR, arXiv:1801.07698",
    params: PARAMS,
    build,
};

#[cfg(test)]
mod tests {
    use super::*;
    use losskit_tensor::Error;

    #[test]
    fn target_is_continuous_and_monotonic() {
        let k =
            Kernel { s: 1.0_f64, m: 0.5, cos_m: 0.5f64.cos(), sin_m: 0.5f64.sin(), limit: std::f64::consts::PI - 0.5 };
        let mut prev = f64::INFINITY;
        for i in 0..=2000 {
            let c = 1.0 - i as f64 * 1e-3;
            let (psi, d) = k.target(c);
            assert!(psi <= prev + 1e-12 && d.is_finite(), "c = {c}");
            prev = psi;
        }
        assert!(matches!(ArcFace::new().margin(91.0).check(), Err(Error::Parameter { name: "margin", .. })));
    }
}
