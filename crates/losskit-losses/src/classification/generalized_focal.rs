//! DatasetEquity's generalized focal loss (Shrivastava et al. 2023): a per-sample loss weighted by how rare the
//! sample's appearance cluster is, w(p) = (η + (1 − p)^γ)/(η + 1).

use ndarray::{Array1, ArrayView1, ArrayView2, Ix2};

use losskit_tensor::{Error, Real, Reduction, Result, check};

use super::indexed::{self, IndexedKernel};
use super::rowmath;
use crate::core::{ClassLoss, LossOutput, Targets};
use crate::registry::{BuiltLoss, Family, LossEntry, ParamSpec, Params, Range, param};

/// The DatasetEquity weight w(p) = (η + (1 − p)^γ)/(η + 1) of a sample likelihood p ∈ [0, 1].
///
/// w ∈ [η/(η + 1), 1]: the most common samples (p = 1) get η/(η + 1), rare ones (p → 0) get 1. η = 0, γ = 1 gives
/// 1 − p; γ = 0 gives 1 for every p (0⁰ = 1).
pub fn dequity_weight(p: f64, eta: f64, gamma: f64) -> f64 {
    (eta + (1.0 - p).powf(gamma)) / (eta + 1.0)
}

/// The DatasetEquity weights of a batch of likelihoods, to multiply into any per-sample loss.
///
/// To weight a loss other than cross-entropy, multiply these into its per-sample `weights` and use
/// [`Reduction::Sum`], dividing by N (or Σ sᵢ) yourself for the paper's mean: the losses' own Mean divides by the
/// summed weights, which would undo the overall down-weighting.
///
/// # Errors
/// [`Error::Parameter`] for η < 0 or γ < 0; [`Error::NonFinite`] or [`Error::Degenerate`] for a likelihood that is
/// not in [0, 1].
pub fn dequity_weights<F: Real>(likelihoods: ArrayView1<'_, F>, eta: f64, gamma: f64) -> Result<Array1<F>> {
    check_params(eta, gamma)?;
    check::finite("likelihoods", &likelihoods)?;
    check_likelihoods(likelihoods.iter().map(|v| v.f64()))?;
    Ok(likelihoods.mapv(|p| F::c(dequity_weight(p.f64(), eta, gamma))))
}

fn check_params(eta: f64, gamma: f64) -> Result<()> {
    check::at_least("eta", eta, 0.0)?;
    check::at_least("gamma", gamma, 0.0)
}

fn check_likelihoods(p: impl Iterator<Item = f64>) -> Result<()> {
    for v in p {
        if !(0.0..=1.0).contains(&v) {
            return Err(Error::Parameter {
                name: "likelihoods",
                value: v,
                reason: "every likelihood must be in [0, 1]",
            });
        }
    }
    Ok(())
}

/// Generalized focal loss (DatasetEquity): softmax cross-entropy weighted per sample by the DatasetEquity weight of
/// the sample's likelihood.
///
/// ```text
/// ℓᵢ = w(pᵢ)·(−log softmax(zᵢ)_y),   w(p) = (η + (1 − p)^γ)/(η + 1)
/// Mean = Σᵢ sᵢ·ℓᵢ / Σᵢ sᵢ     Sum = Σᵢ sᵢ·ℓᵢ     None: (sᵢ·ℓᵢ)ᵢ
/// ```
/// pᵢ is the sample's scaled likelihood (its appearance cluster's size over the largest cluster's, computed offline;
/// the paper uses ResNet-101 features, 3-D t-SNE and DBSCAN), a constant for the gradient. The Mean divides by Σᵢ sᵢ,
/// not by Σᵢ sᵢ·w(pᵢ), as the paper multiplies the weight into the loss. Without `likelihoods` every w is 1 and
/// the loss is cross-entropy. For another per-sample loss, see [`dequity_weights`].
///
/// # Parameters
/// * `eta`: η ≥ 0, default 1 (the official `dequity_loss_weight` default; the BEVFormer configs use 0.5).
/// * `gamma`: γ ≥ 0, default 5 (the official default).
/// * `likelihoods`: p ∈ [0, 1]^N, one per row of the batch; default none (w ≡ 1).
/// * `reduction`: `Mean` (default), `Sum` or `None`.
///
/// # Shapes
/// `logits` [N, C], hard targets `[N]`, `likelihoods` `[N]`, optional `weights` `[N]`; gradient [N, C].
///
/// # Gradient
/// `∂ℓᵢ/∂zᵢ = w(pᵢ)·(softmax(zᵢ) − e_y)`.
///
/// # Errors
/// [`Error::Parameter`] for η < 0, γ < 0 or a likelihood outside [0, 1]; [`Error::Shape`] when `likelihoods` does not
/// have N entries; [`Error::Input`] for probability targets; input errors as the other classification losses.
///
/// # References
/// Shrivastava, Rozenberszki, Li, Dubey, Lele (2023), *DatasetEquity: Are All Samples Created Equal? In The Quest
/// For Equity Within Datasets*, arXiv:2308.09878 (docs/papers.md key `shrivastava2023datasetequity`); defaults from
/// the authors' released `dequity_loss_weight`.
#[derive(Clone, Debug, PartialEq)]
pub struct GeneralizedFocal {
    /// η ≥ 0. Default 1.
    pub eta: f64,
    /// γ ≥ 0. Default 5.
    pub gamma: f64,
    /// Per-sample likelihoods `[N]`; `None` = all weights 1. Default `None`.
    pub likelihoods: Option<Vec<f64>>,
    /// Default [`Reduction::Mean`].
    pub reduction: Reduction,
}

impl Default for GeneralizedFocal {
    fn default() -> Self {
        Self { eta: 1.0, gamma: 5.0, likelihoods: None, reduction: Reduction::Mean }
    }
}

impl GeneralizedFocal {
    /// The defaults (η = 1, γ = 5, no likelihoods).
    pub fn new() -> Self {
        Self::default()
    }
    /// η ≥ 0 (default 1).
    pub fn eta(mut self, eta: f64) -> Self {
        self.eta = eta;
        self
    }
    /// γ ≥ 0 (default 5).
    pub fn gamma(mut self, gamma: f64) -> Self {
        self.gamma = gamma;
        self
    }
    /// The batch's likelihoods `[N]` (default none).
    pub fn likelihoods(mut self, p: impl Into<Vec<f64>>) -> Self {
        self.likelihoods = Some(p.into());
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
    /// [`Error::Parameter`] naming `eta`, `gamma` or `likelihoods`.
    pub fn check(&self) -> Result<()> {
        check_params(self.eta, self.gamma)?;
        self.likelihoods.as_deref().map_or(Ok(()), |p| check_likelihoods(p.iter().copied()))
    }
}

struct Kernel<F> {
    w: Option<Vec<F>>,
}

impl<F: Real> IndexedKernel<F> for Kernel<F> {
    fn row(&self, i: usize, z: &[F], max: F, y: usize, scale: F, mut grad: Option<&mut [F]>) -> F {
        let wi = self.w.as_ref().map_or(F::one(), |w| w[i]);
        let sp = rowmath::split_exp_sum(z, max, F::one(), y, grad.as_deref_mut());
        if let Some(g) = grad {
            let c = scale * wi;
            let a = c / sp.total;
            for (j, v) in g.iter_mut().enumerate() {
                if j != y {
                    *v *= a;
                }
            }
            g[y] = -c * sp.one_minus_py();
        }
        -wi * sp.log_py
    }
}

impl<F: Real> ClassLoss<F> for GeneralizedFocal {
    fn compute(
        &self,
        logits: ArrayView2<'_, F>,
        targets: Targets<'_, F>,
        weights: Option<ArrayView1<'_, F>>,
        grad: bool,
    ) -> Result<LossOutput<F, Ix2>> {
        self.check()?;
        let w = match self.likelihoods.as_deref() {
            Some(p) => {
                check::shape("likelihoods", &[p.len()], &[Some(logits.nrows())])?;
                Some(p.iter().map(|&v| F::c(dequity_weight(v, self.eta, self.gamma))).collect())
            }
            None => None,
        };
        indexed::run(&Kernel { w }, "generalized-focal", self.reduction, logits, targets, weights, grad)
    }
}

const PARAMS: &[ParamSpec] = &[
    param("eta", "1", Range::NonNegative, "η: the floor η/(η + 1) of the weight of the most common samples"),
    param("gamma", "5", Range::NonNegative, "γ: how fast the weight falls as the likelihood grows"),
    param("likelihoods", "none", Range::Vector, "per-sample likelihoods [N] in [0, 1] (none = weight 1)"),
];

fn build(p: &Params) -> Result<BuiltLoss> {
    let cfg = GeneralizedFocal {
        eta: p.f64("eta")?,
        gamma: p.f64("gamma")?,
        likelihoods: p.vector("likelihoods")?.map(<[f64]>::to_vec),
        reduction: p.reduction(),
    };
    cfg.check()?;
    Ok(BuiltLoss { class: Some(Box::new(cfg)), binary: None })
}

/// Registry entry.
pub(crate) const ENTRY: LossEntry = LossEntry {
    name: "generalized-focal",
    family: Family::Classification,
    summary: "DatasetEquity generalized focal loss: cross-entropy weighted by (η + (1 − p)^γ)/(η + 1) of each \
              sample's likelihood",
    paper: "shrivastava2023datasetequity",
    reference: "Shrivastava, Rozenberszki, Li, Dubey, Lele (2023), DatasetEquity: Are All Samples Created Equal? In \
                The Quest For Equity Within Datasets, arXiv:2308.09878",
    params: PARAMS,
    build,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_oracles() {
        assert!((dequity_weight(0.3, 0.0, 1.0) - 0.7).abs() < 1e-15);
        assert!((dequity_weight(1.0, 0.5, 5.0) - 0.5 / 1.5).abs() < 1e-15);
        assert!((dequity_weight(0.0, 3.0, 2.0) - 1.0).abs() < 1e-15);
        assert_eq!(dequity_weight(0.4, 1.0, 0.0), 1.0);
        let p = ndarray::array![0.5_f64, 1.5];
        assert!(matches!(dequity_weights(p.view(), 1.0, 5.0), Err(Error::Parameter { name: "likelihoods", .. })));
    }

    #[test]
    fn likelihood_count_must_match_the_batch() {
        let z = ndarray::array![[0.0_f64, 1.0], [1.0, 0.0]];
        let r = GeneralizedFocal::new().likelihoods(vec![0.5]).compute(z.view(), Targets::hard(&[0, 1]), None, false);
        assert!(matches!(r, Err(Error::Shape { arg: "likelihoods", .. })));
    }
}
