//! Proxy-anchor loss (Kim et al. 2020) with pytorch-metric-learning's semantics.

use ndarray::{ArrayView1, ArrayView2};

use losskit_tensor::{Real, Reduction, Result, check};

use super::driver;
use crate::core::{ProxyLoss, ProxyOutput};
use crate::registry::{BuiltLoss, Family, LossEntry, MetricForms, ParamSpec, Params, Range, param};

/// Proxy-anchor loss: each proxy is an anchor; it pulls the batch samples of its class and pushes the others.
///
/// ```text
/// L = (1/|P⁺|)·Σ_{c∈P⁺} log(1 + Σ_{i: yᵢ=c} e^{−α(s_ic − δ)})  +  (1/C)·Σ_c log(1 + Σ_{i: yᵢ≠c} e^{α(s_ic + δ)})
/// where s_ic = x̂ᵢ·p̂_c (cosine), P⁺ = proxies with at least one sample of their class in the batch
/// ```
/// (PML's `DivisorReducer`: each sum is divided by its divisor, 0 when the divisor is 0.)
///
/// # Parameters
/// * `margin`: δ, default 0.1 (PML `margin`). * `alpha`: α > 0, default 32 (PML `alpha`).
/// * `reduction`: `Mean` as above; `Sum` = the plain sum of both terms over proxies; `None` = per-proxy values
///   (positive + negative term of proxy c), of length C.
///
/// # Shapes
/// `embeddings` [N, D], `labels` `[N]` in `0..C`, `proxies` [C, D]; gradients [N, D] and [C, D].
///
/// # Gradient
/// ∂/∂s_ic = −α·w⁺_ic/|P⁺| for yᵢ = c and +α·w⁻_ic/C otherwise, w the soft-max shares of each log(1 + Σ e), then
/// ∂/∂x̂ᵢ = Σ_c g_ic p̂_c, ∂/∂p̂_c = Σᵢ g_ic x̂ᵢ and both normalisations.
///
/// # Errors
/// [`Error::Parameter`](losskit_tensor::Error::Parameter) for α ≤ 0 or a non-finite δ; [`Error::Shape`](losskit_tensor::Error::Shape), [`Error::Empty`](losskit_tensor::Error::Empty),
/// [`Error::LabelOutOfRange`](losskit_tensor::Error::LabelOutOfRange), [`Error::NonFinite`](losskit_tensor::Error::NonFinite).
///
/// # References
/// Kim, Kim, Cho, Kwak (2020), *Proxy Anchor Loss for Deep Metric Learning*, CVPR, arXiv:2003.13911
/// (docs/papers.md key `kim2020proxy`); pytorch-metric-learning 2.x `ProxyAnchorLoss`.
#[derive(Clone, Debug, PartialEq)]
pub struct ProxyAnchor {
    /// δ. Default 0.1.
    pub margin: f64,
    /// α > 0. Default 32.
    pub alpha: f64,
    /// Default [`Reduction::Mean`].
    pub reduction: Reduction,
}

impl Default for ProxyAnchor {
    fn default() -> Self {
        Self { margin: 0.1, alpha: 32.0, reduction: Reduction::Mean }
    }
}

impl ProxyAnchor {
    /// PML's defaults (the paper's).
    pub fn new() -> Self {
        Self::default()
    }
    /// δ (default 0.1).
    pub fn margin(mut self, v: f64) -> Self {
        self.margin = v;
        self
    }
    /// α (default 32).
    pub fn alpha(mut self, v: f64) -> Self {
        self.alpha = v;
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
    /// [`Error::Parameter`](losskit_tensor::Error::Parameter) naming `margin` or `alpha`.
    pub fn check(&self) -> Result<()> {
        check::finite_param("margin", self.margin)?;
        check::greater_than("alpha", self.alpha, 0.0)
    }

    /// Builds the config from registry parameters (and checks it).
    ///
    /// # Errors
    /// As [`ProxyAnchor::check`].
    pub fn from_params(p: &Params) -> Result<Self> {
        let cfg = Self { margin: p.f64("margin")?, alpha: p.f64("alpha")?, reduction: p.reduction() };
        cfg.check()?;
        Ok(cfg)
    }
}

impl<F: Real> ProxyLoss<F> for ProxyAnchor {
    fn compute(
        &self,
        embeddings: ArrayView2<'_, F>,
        labels: ArrayView1<'_, i64>,
        proxies: ArrayView2<'_, F>,
        grad: bool,
    ) -> Result<ProxyOutput<F>> {
        losskit_tensor::pool::on_worker(|| {
            self.check()?;
            let p = driver::prepare(embeddings, labels, proxies)?;
            let c = p.cos.ncols();
            let with_pos = {
                let mut seen = vec![false; c];
                p.labels.iter().for_each(|&y| seen[y] = true);
                seen.iter().filter(|&&s| s).count()
            };
            let (sp, sn) = match self.reduction {
                Reduction::Mean => (if with_pos > 0 { 1.0 / with_pos as f64 } else { 0.0 }, 1.0 / c as f64),
                Reduction::Sum | Reduction::None => (1.0, 1.0),
            };
            let (alpha, delta) = (F::c(self.alpha), F::c(self.margin));
            let labels = &p.labels;
            let mut g = p.cos.clone();
            let terms: Vec<(f64, f64)> = driver::map_columns(&mut g, |cls, col| {
                let n = col.len();
                let pos = |i: usize| labels[i] == cls;
                let neg = |i: usize| labels[i] != cls;
                let s: Vec<F> = col.to_vec();
                let mut wp = vec![F::zero(); n];
                let mut wn = vec![F::zero(); n];
                let (lp, _) = crate::embedding::driver::lse1_masked(|i| -alpha * (s[i] - delta), pos, n, Some(&mut wp));
                let (ln, _) = crate::embedding::driver::lse1_masked(|i| alpha * (s[i] + delta), neg, n, Some(&mut wn));
                for i in 0..n {
                    col[i] = if pos(i) { -alpha * wp[i] * F::c(sp) } else { alpha * wn[i] * F::c(sn) };
                }
                (lp, ln)
            });
            let value: f64 = terms.iter().map(|(lp, ln)| lp * sp + ln * sn).sum();
            let per: Vec<F> = terms.iter().map(|(lp, ln)| F::c(lp + ln)).collect();
            let (gx, gw) = if grad {
                let (a, b) = driver::backward(&p, &g)?;
                (Some(a), Some(b))
            } else {
                (None, None)
            };
            Ok(ProxyOutput { value: F::c(value), per_sample: Some(per.into()), grad: gx, grad_proxies: gw })
        })
    }
}

const PARAMS: &[ParamSpec] = &[
    param("margin", "0.1", Range::Any, "δ: margin added to both exponents (PML margin)"),
    param("alpha", "32", Range::Positive, "α: scale of the exponents (PML alpha)"),
];

fn build(p: &Params) -> Result<BuiltLoss> {
    ProxyAnchor::from_params(p).map(|_| BuiltLoss::default())
}

pub(crate) fn build_metric(p: &Params) -> Result<MetricForms> {
    Ok(MetricForms { embedding: None, proxy: Some(Box::new(ProxyAnchor::from_params(p)?)) })
}

/// Registry entry.
pub(crate) const ENTRY: LossEntry = LossEntry {
    name: "proxy-anchor",
    family: Family::Proxy,
    summary: "proxy-anchor loss: proxies as anchors over the batch (PML semantics)",
    paper: "kim2020proxy",
    reference: "Kim, Kim, Cho, Kwak (2020), Proxy Anchor Loss for Deep Metric Learning, CVPR, arXiv:2003.13911",
    params: PARAMS,
    build,
};

#[cfg(test)]
mod tests {
    use super::*;
    use losskit_tensor::Error;

    #[test]
    fn bad_parameters_are_named() {
        assert!(matches!(ProxyAnchor::new().alpha(0.0).check(), Err(Error::Parameter { name: "alpha", .. })));
        assert!(matches!(ProxyAnchor::new().margin(f64::NAN).check(), Err(Error::Parameter { name: "margin", .. })));
    }
}
