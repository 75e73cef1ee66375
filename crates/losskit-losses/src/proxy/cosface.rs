//! CosFace / large margin cosine loss (Wang et al. 2018) with pytorch-metric-learning's semantics.

use ndarray::{ArrayView1, ArrayView2};

use losskit_tensor::{Real, Reduction, Result, check};

use super::driver::{self, RowSoftmax};
use crate::core::{ProxyLoss, ProxyOutput};
use crate::registry::{BuiltLoss, Family, LossEntry, MetricForms, ParamSpec, Params, Range, param};

/// CosFace: softmax over scaled cosines with an additive cosine margin on the target class.
///
/// ```text
/// ℓᵢ = −log( e^{s(cos θ_iy − m)} / (e^{s(cos θ_iy − m)} + Σ_{j≠y} e^{s cos θ_ij}) )      Mean = (1/N)·Σᵢ ℓᵢ
/// where cos θ_ij = x̂ᵢ·ŵⱼ
/// ```
/// # Parameters
/// * `margin`: m ≥ 0, default 0.35 (PML `CosFaceLoss(margin=0.35)`, the paper's).
/// * `scale`: s > 0, default 64 (PML `scale`).
/// * `reduction`: `Mean`, `Sum`, `None` (per-sample ℓᵢ).
///
/// # Shapes
/// `embeddings` [N, D], `labels` `[N]` in `0..C`, `proxies` (class weights) [C, D]; gradients [N, D] and [C, D].
///
/// # Gradient
/// ∂ℓᵢ/∂cos θ_ij = s·(p_ij − [j = yᵢ]) (the margin shifts the value, not the derivative), then through the GEMM
/// and both normalisations.
///
/// # Errors
/// [`Error::Parameter`](losskit_tensor::Error::Parameter) for m < 0 or s ≤ 0; [`Error::Shape`](losskit_tensor::Error::Shape), [`Error::Empty`](losskit_tensor::Error::Empty), [`Error::LabelOutOfRange`](losskit_tensor::Error::LabelOutOfRange),
/// [`Error::NonFinite`](losskit_tensor::Error::NonFinite).
///
/// # References
/// Wang, Wang, Zhou, Ji, Gong, Zhou, Li, Liu (2018), *CosFace: Large Margin Cosine Loss for Deep Face Recognition*,
/// CVPR, arXiv:1801.09414 (docs/papers.md key `wang2018cosface`); pytorch-metric-learning 2.x `CosFaceLoss`.
#[derive(Clone, Debug, PartialEq)]
pub struct CosFace {
    /// m ≥ 0. Default 0.35.
    pub margin: f64,
    /// s > 0. Default 64.
    pub scale: f64,
    /// Default [`Reduction::Mean`].
    pub reduction: Reduction,
}

impl Default for CosFace {
    fn default() -> Self {
        Self { margin: 0.35, scale: 64.0, reduction: Reduction::Mean }
    }
}

impl CosFace {
    /// PML's defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// m (default 0.35).
    pub fn margin(mut self, v: f64) -> Self {
        self.margin = v;
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
        check::at_least("margin", self.margin, 0.0)?;
        check::greater_than("scale", self.scale, 0.0)
    }
    /// Builds the config from registry parameters (and checks it).
    ///
    /// # Errors
    /// As [`CosFace::check`].
    pub fn from_params(p: &Params) -> Result<Self> {
        let cfg = Self { margin: p.f64("margin")?, scale: p.f64("scale")?, reduction: p.reduction() };
        cfg.check()?;
        Ok(cfg)
    }
}

struct Kernel<F> {
    s: F,
    m: F,
}

impl<F: Real> RowSoftmax<F> for Kernel<F> {
    fn scale(&self) -> F {
        self.s
    }
    fn target(&self, c: F) -> (F, F) {
        (c - self.m, F::one())
    }
}

impl<F: Real> ProxyLoss<F> for CosFace {
    fn compute(
        &self,
        embeddings: ArrayView2<'_, F>,
        labels: ArrayView1<'_, i64>,
        proxies: ArrayView2<'_, F>,
        grad: bool,
    ) -> Result<ProxyOutput<F>> {
        self.check()?;
        let k = Kernel { s: F::c(self.scale), m: F::c(self.margin) };
        driver::run_softmax(&k, self.reduction, embeddings, labels, proxies, grad)
    }
}

const PARAMS: &[ParamSpec] = &[
    param("margin", "0.35", Range::NonNegative, "m: subtracted from the target cosine (PML margin)"),
    param("scale", "64", Range::Positive, "s: multiplies every cosine (PML scale)"),
];

fn build(p: &Params) -> Result<BuiltLoss> {
    CosFace::from_params(p).map(|_| BuiltLoss::default())
}

pub(crate) fn build_metric(p: &Params) -> Result<MetricForms> {
    Ok(MetricForms { embedding: None, proxy: Some(Box::new(CosFace::from_params(p)?)) })
}

/// Registry entry.
pub(crate) const ENTRY: LossEntry = LossEntry {
    name: "cosface",
    family: Family::Proxy,
    summary: "CosFace large margin cosine loss: additive cosine margin on the target class (PML semantics)",
    paper: "wang2018cosface",
    reference: "Wang et al. (2018), CosFace: Large Margin Cosine Loss for Deep Face Recognition, CVPR, \
                arXiv:1801.09414",
    params: PARAMS,
    build,
};

#[cfg(test)]
mod tests {
    use super::*;
    use losskit_tensor::Error;

    #[test]
    fn bad_parameters_are_named() {
        assert!(matches!(CosFace::new().margin(-0.1).check(), Err(Error::Parameter { name: "margin", .. })));
        assert!(matches!(CosFace::new().scale(0.0).check(), Err(Error::Parameter { name: "scale", .. })));
    }
}
