//! Normalised softmax (Zhai & Wu 2018) with pytorch-metric-learning's semantics.

use ndarray::{ArrayView1, ArrayView2};

use losskit_tensor::{Real, Reduction, Result};

use super::driver::{self, RowSoftmax};
use crate::core::{ProxyLoss, ProxyOutput};
use crate::registry::{BuiltLoss, Family, LossEntry, MetricForms, ParamSpec, Params, Range, param};

/// Normalised softmax: cross-entropy over cosines to L2-normalised class proxies, divided by a temperature.
///
/// ```text
/// ℓᵢ = −log softmax_c( x̂ᵢ·p̂_c / τ )[yᵢ]        Mean = (1/N)·Σᵢ ℓᵢ
/// ```
/// This is also the hyperspherical-embedding training loss (Pereira et al. 2021): embeddings and class weights on
/// the unit sphere; novel classes are then classified by cosine to class means.
///
/// # Parameters
/// * `temperature`: τ > 0, default 0.05 (PML `NormalizedSoftmaxLoss(temperature=0.05)`, the paper's).
/// * `reduction`: `Mean`, `Sum`, `None` (per-sample ℓᵢ).
///
/// # Shapes
/// `embeddings` [N, D], `labels` `[N]` in `0..C`, `proxies` [C, D] (PML stores them transposed, `W` [D, C]);
/// gradients [N, D] and [C, D].
///
/// # Gradient
/// ∂ℓᵢ/∂s_ic = (p_ic − [c = yᵢ])/τ, then through the GEMM and both normalisations.
///
/// # Errors
/// [`Error::Parameter`](losskit_tensor::Error::Parameter) for τ ≤ 0; [`Error::Shape`](losskit_tensor::Error::Shape), [`Error::Empty`](losskit_tensor::Error::Empty), [`Error::LabelOutOfRange`](losskit_tensor::Error::LabelOutOfRange),
/// [`Error::NonFinite`](losskit_tensor::Error::NonFinite).
///
/// # References
/// Zhai, Wu (2019), *Classification is a Strong Baseline for Deep Metric Learning*, BMVC, arXiv:1811.12649
/// (docs/papers.md key `zhai2018classification`); pytorch-metric-learning 2.x `NormalizedSoftmaxLoss`.
#[derive(Clone, Debug, PartialEq)]
pub struct NormalizedSoftmax {
    /// τ > 0. Default 0.05.
    pub temperature: f64,
    /// Default [`Reduction::Mean`].
    pub reduction: Reduction,
}

impl Default for NormalizedSoftmax {
    fn default() -> Self {
        Self { temperature: 0.05, reduction: Reduction::Mean }
    }
}

impl NormalizedSoftmax {
    /// PML's defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// τ (default 0.05).
    pub fn temperature(mut self, v: f64) -> Self {
        self.temperature = v;
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
    /// [`Error::Parameter`](losskit_tensor::Error::Parameter) naming `temperature`.
    pub fn check(&self) -> Result<()> {
        driver::positive("temperature", self.temperature)
    }
    /// Builds the config from registry parameters (and checks it).
    ///
    /// # Errors
    /// As [`NormalizedSoftmax::check`].
    pub fn from_params(p: &Params) -> Result<Self> {
        let cfg = Self { temperature: p.f64("temperature")?, reduction: p.reduction() };
        cfg.check()?;
        Ok(cfg)
    }
}

struct Kernel<F>(F);

impl<F: Real> RowSoftmax<F> for Kernel<F> {
    fn scale(&self) -> F {
        self.0
    }
    fn target(&self, c: F) -> (F, F) {
        (c, F::one())
    }
}

impl<F: Real> ProxyLoss<F> for NormalizedSoftmax {
    fn compute(
        &self,
        embeddings: ArrayView2<'_, F>,
        labels: ArrayView1<'_, i64>,
        proxies: ArrayView2<'_, F>,
        grad: bool,
    ) -> Result<ProxyOutput<F>> {
        self.check()?;
        let k = Kernel(F::c(1.0 / self.temperature));
        driver::run_softmax(&k, self.reduction, embeddings, labels, proxies, grad)
    }
}

const PARAMS: &[ParamSpec] =
    &[param("temperature", "0.05", Range::Positive, "τ: divides the cosines (PML temperature)")];

fn build(p: &Params) -> Result<BuiltLoss> {
    NormalizedSoftmax::from_params(p).map(|_| BuiltLoss::default())
}

pub(crate) fn build_metric(p: &Params) -> Result<MetricForms> {
    Ok(MetricForms { embedding: None, proxy: Some(Box::new(NormalizedSoftmax::from_params(p)?)) })
}

/// Registry entry.
pub(crate) const ENTRY: LossEntry = LossEntry {
    name: "normalized-softmax",
    family: Family::Proxy,
    summary: "normalised softmax: cross-entropy over cosines to normalised proxies / temperature (PML semantics)",
    paper: "zhai2018classification",
    reference: "Zhai, Wu (2019), Classification is a Strong Baseline for Deep Metric Learning, BMVC, \
                arXiv:1811.12649",
    params: PARAMS,
    build,
};

#[cfg(test)]
mod tests {
    use super::*;
    use losskit_tensor::Error;
    use ndarray::array;

    #[test]
    fn spec_oracle_two_orthogonal_proxies() {
        // Spec §3.1: x̂ = p̂_y, the other proxy orthogonal: ℓ = log(1 + e^{−1/τ}) = log(1 + e^{−20}).
        let x = array![[3.0_f64, 0.0]];
        let w = array![[1.0_f64, 0.0], [0.0, 2.0]];
        let out = NormalizedSoftmax::new().compute(x.view(), array![0_i64].view(), w.view(), true).unwrap();
        assert!((out.value - (-20f64).exp().ln_1p()).abs() < 1e-18, "{}", out.value);
        assert!(matches!(NormalizedSoftmax::new().temperature(-1.0).check(), Err(Error::Parameter { .. })));
    }
}
