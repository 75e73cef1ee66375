//! SBCL, subclass-balancing contrastive learning (Hou et al. 2023): a subclass-level SupCon term plus a class-level
//! ranking term with a class-dependent temperature.

use losskit_tensor::linalg::gemm;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};
use rayon::prelude::*;

use losskit_tensor::norm::{l2_normalize_backward, l2_normalize_rows};
use losskit_tensor::{Error, Real, Reduction, Result, check};

use crate::core::{EmbeddingLoss, EmbeddingOutput, Reference};
use crate::registry::{BuiltLoss, Family, LossEntry, MetricForms, ParamSpec, Params, Range, param};

/// Subclass-balancing contrastive loss (the official code's `SupConLoss_rank`).
///
/// Rows are V views of B samples stacked view-major ([`stack_views`](crate::stack_views) order: row r is view
/// ⌊r/B⌋ of sample r mod B); `labels` and `subclass_labels` are per sample `[B]`. With z the L2-normalised rows,
/// s_ia = zᵢ·z_a, and for anchor i (every row is an anchor):
/// ```text
/// ℓᵢ = −(τ₁/τ_b)·(1/|P_sub|)·Σ_{p∈P_sub} log( e^{s_ip/τ₁} / Σ_{a≠i} e^{s_ia/τ₁} )
///      − γ·(1/|P_cls|)·Σ_{p∈P_cls} log( e^{s_ip/τ₂(yᵢ)} / Σ_{a∈A} e^{s_ia/τ₂(yᵢ)} )
/// P_sub = { a ≠ i : same subclass }               (contains i's other views)
/// A     = { a : other subclass } ∪ { i's other views }
/// P_cls = { a : same class, other subclass } ∪ { i's other views }
/// Mean = (1/(V·B))·Σᵢ ℓᵢ
/// ```
/// A term whose positive set is empty (only possible with V = 1) contributes 0 (the official code gives NaN).
/// Subclass ids are global (unique across classes), as the official clustering produces them: equality of ids
/// decides "same subclass", so an id shared by two classes is an error.
///
/// # Parameters
/// * `temperature`: τ₁ > 0, default 0.1 (official `temperature=0.1`).
/// * `base_temperature`: τ_b > 0, default 0.07 (official `base_temperature=0.07`).
/// * `gamma`: γ ≥ 0, default 0.25 (official `grama=0.25`).
/// * `reduction`: `Mean` as above, `Sum` = Σᵢ ℓᵢ, `None` = (ℓᵢ)ᵢ.
/// * τ₂ per class is an input of [`Sbcl::compute`] (`class_temperature` `[C]`, indexed by label; `None` = τ₁ for
///   every class). The official code recomputes it from class densities at each re-clustering (spec §6.3).
///
/// # Shapes
/// `embeddings` [V·B, D]; `labels`, `subclass_labels` `[B]`; `class_temperature` `[C]` with labels in `0..C`;
/// gradient [V·B, D].
///
/// # Gradient
/// ```text
/// ∂ℓᵢ/∂s_ia = (1/τ_b)·(q_ia − [a∈P_sub]/|P_sub|) + (γ/τ₂)·([a∈A]·r_ia − [a∈P_cls]/|P_cls|)
/// ```
/// with q = softmax over a ≠ i at τ₁ and r = softmax over A at τ₂; each s_ia sends zᵢ and z_a the other's row, then
/// the chain rule through the normalisation.
///
/// # Errors
/// [`Error::Parameter`] naming `temperature`, `base_temperature` or `gamma`; [`Error::Shape`] for `labels` (rows not
/// a multiple of B), `subclass_labels` or `class_temperature`; [`Error::LabelOutOfRange`] when `class_temperature`
/// is given and a label is outside `0..C`; [`Error::NonFinite`] for `embeddings` or `class_temperature`;
/// [`Error::Parameter`] `class_temperature` for a non-positive entry; [`Error::Input`] for a subclass id used by two
/// classes; [`Error::Empty`].
///
/// # References
/// Hou, Yu, Ding, Tao, Chen, Zhou, Wu (2023), *Subclass-balancing Contrastive Learning for Long-tailed Recognition*,
/// ICCV, arXiv:2306.15925 (docs/papers.md key `hou2023sbcl`); official code `JackHck/SBCL`, `SimCLR/loss.py`
/// (commit fbffb8d), class `SupConLoss_rank`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sbcl {
    /// τ₁ > 0. Default 0.1.
    pub temperature: f64,
    /// τ_b > 0. Default 0.07.
    pub base_temperature: f64,
    /// γ ≥ 0. Default 0.25.
    pub gamma: f64,
    /// Default [`Reduction::Mean`].
    pub reduction: Reduction,
}

impl Default for Sbcl {
    fn default() -> Self {
        Self { temperature: 0.1, base_temperature: 0.07, gamma: 0.25, reduction: Reduction::Mean }
    }
}

impl Sbcl {
    /// The official defaults (τ₁ = 0.1, τ_b = 0.07, γ = 0.25).
    pub fn new() -> Self {
        Self::default()
    }
    /// τ₁ (default 0.1).
    pub fn temperature(mut self, v: f64) -> Self {
        self.temperature = v;
        self
    }
    /// τ_b (default 0.07).
    pub fn base_temperature(mut self, v: f64) -> Self {
        self.base_temperature = v;
        self
    }
    /// γ (default 0.25).
    pub fn gamma(mut self, v: f64) -> Self {
        self.gamma = v;
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
    /// [`Error::Parameter`] naming `temperature`, `base_temperature` or `gamma`.
    pub fn check(&self) -> Result<()> {
        check::greater_than("temperature", self.temperature, 0.0)?;
        check::greater_than("base_temperature", self.base_temperature, 0.0)?;
        check::at_least("gamma", self.gamma, 0.0)
    }

    /// Computes the loss (and its gradient with respect to `embeddings` when `grad`).
    ///
    /// # Errors
    /// As documented on [`Sbcl`].
    pub fn compute<F: Real>(
        &self,
        embeddings: ArrayView2<'_, F>,
        labels: ArrayView1<'_, i64>,
        subclass_labels: ArrayView1<'_, i64>,
        class_temperature: Option<ArrayView1<'_, f64>>,
        grad: bool,
    ) -> Result<EmbeddingOutput<F>> {
        losskit_tensor::pool::on_worker(|| {
            self.check()?;
            let (n, d) = embeddings.dim();
            check::non_empty("embeddings", n)?;
            if d == 0 {
                return Err(Error::Shape {
                    arg: "embeddings",
                    expected: "[V·B, D] with D ≥ 1".into(),
                    got: vec![n, d],
                });
            }
            let b = labels.len();
            check::non_empty("labels", b)?;
            if n % b != 0 {
                return Err(Error::Shape {
                    arg: "labels",
                    expected: format!("[B] with B dividing the {n} embedding rows (V views of B samples)"),
                    got: vec![b],
                });
            }
            check::shape("subclass_labels", subclass_labels.shape(), &[Some(b)])?;
            check::finite("embeddings", &embeddings)?;
            let tau2: Vec<f64> = match class_temperature {
                Some(t) => {
                    check::non_empty("class_temperature", t.len())?;
                    check::finite("class_temperature", &t)?;
                    for &v in t.iter() {
                        if v <= 0.0 {
                            return Err(Error::Parameter {
                                name: "class_temperature",
                                value: v,
                                reason: "every class temperature must be > 0",
                            });
                        }
                    }
                    check::labels("labels", labels, t.len(), None)?;
                    labels.iter().map(|&y| t[y as usize]).collect()
                }
                None => vec![self.temperature; b],
            };
            for i in 0..b {
                for j in i + 1..b {
                    if subclass_labels[i] == subclass_labels[j] && labels[i] != labels[j] {
                        return Err(Error::Input {
                            what: format!(
                                "subclass_labels: subclass {} is used by classes {} and {} (ids must be global)",
                                subclass_labels[i], labels[i], labels[j]
                            ),
                        });
                    }
                }
            }
            let (z, norms) = l2_normalize_rows(embeddings);
            let mut sim = Array2::<F>::zeros((n, n));
            gemm(F::one(), &z, &z.t(), F::zero(), &mut sim);
            let red = match self.reduction {
                Reduction::Mean => 1.0 / n as f64,
                Reduction::Sum | Reduction::None => 1.0,
            };
            let (t1, tb, gamma) = (self.temperature, self.base_temperature, self.gamma);
            // One row of ∂L/∂s per anchor, and its loss.
            let mut gs = Array2::<F>::zeros((n, n));
            let losses: Vec<f64> = gs
                .axis_iter_mut(Axis(0))
                .into_par_iter()
                .enumerate()
                .map(|(i, mut grow)| {
                    let srow: Vec<f64> = sim.row(i).iter().map(|v| v.f64()).collect();
                    let (si, yi, t2) = (subclass_labels[i % b], labels[i % b], tau2[i % b]);
                    let other_view = |a: usize| a != i && a % b == i % b;
                    let p_sub = |a: usize| a != i && subclass_labels[a % b] == si;
                    let in_a = |a: usize| a != i && (subclass_labels[a % b] != si || other_view(a));
                    let p_cls =
                        |a: usize| other_view(a) || (a != i && labels[a % b] == yi && subclass_labels[a % b] != si);
                    let mut g = vec![0.0; n];
                    let mut loss = 0.0;
                    // Term 1: SupCon over subclasses at τ₁, denominator every a ≠ i.
                    let np = (0..n).filter(|&a| p_sub(a)).count();
                    if np > 0 {
                        let m = (0..n).filter(|&a| a != i).map(|a| srow[a] / t1).fold(f64::NEG_INFINITY, f64::max);
                        let sum: f64 = (0..n).filter(|&a| a != i).map(|a| (srow[a] / t1 - m).exp()).sum();
                        let lse = m + sum.ln();
                        let mean_pos: f64 =
                            (0..n).filter(|&a| p_sub(a)).map(|a| srow[a] / t1 - lse).sum::<f64>() / np as f64;
                        loss -= (t1 / tb) * mean_pos;
                        for a in (0..n).filter(|&a| a != i) {
                            let q = (srow[a] / t1 - m).exp() / sum;
                            g[a] += (q - if p_sub(a) { 1.0 / np as f64 } else { 0.0 }) / tb;
                        }
                    }
                    // Term 2: class-level ranking at τ₂(yᵢ) over A.
                    let nc = (0..n).filter(|&a| p_cls(a)).count();
                    if nc > 0 && gamma > 0.0 {
                        let m = (0..n).filter(|&a| in_a(a)).map(|a| srow[a] / t2).fold(f64::NEG_INFINITY, f64::max);
                        let sum: f64 = (0..n).filter(|&a| in_a(a)).map(|a| (srow[a] / t2 - m).exp()).sum();
                        let lse = m + sum.ln();
                        let mean_pos: f64 =
                            (0..n).filter(|&a| p_cls(a)).map(|a| srow[a] / t2 - lse).sum::<f64>() / nc as f64;
                        loss -= gamma * mean_pos;
                        for a in (0..n).filter(|&a| in_a(a)) {
                            let r = (srow[a] / t2 - m).exp() / sum;
                            g[a] += gamma / t2 * (r - if p_cls(a) { 1.0 / nc as f64 } else { 0.0 });
                        }
                    }
                    if grad {
                        for (o, v) in grow.iter_mut().zip(&g) {
                            *o = F::c(red * v);
                        }
                    }
                    loss
                })
                .collect();
            let total: f64 = losses.iter().sum();
            let g = if grad {
                // s_ia = zᵢ·z_a: ∂/∂z = G·z + Gᵀ·z.
                let mut gz = Array2::<F>::zeros((n, d));
                gemm(F::one(), &gs, &z, F::zero(), &mut gz);
                gemm(F::one(), &gs.t(), &z, F::one(), &mut gz);
                Some(l2_normalize_backward(gz.view(), z.view(), norms.view())?)
            } else {
                None
            };
            Ok(EmbeddingOutput {
                value: F::c(total * red),
                per_sample: Some(losses.iter().map(|&v| F::c(v)).collect::<Array1<F>>()),
                grad: g,
                grad_reference: None,
            })
        })
    }
}

/// SBCL as the registry builds it: an [`EmbeddingLoss`] on rows with per-row labels `[N]`, the N = V·B rows being V
/// views of B samples stacked view-major ([`stack_views`](crate::stack_views) order), so row r's labels must equal
/// row (r mod B)'s. Subclass ids and class temperatures are the vector parameters `subclass_labels` `[N]` (per row,
/// global non-negative integer ids) and `class_temperature` `[C]`. Without `subclass_labels` every class is one
/// subclass (subclass = class: the clustering's K_c = 1 for every class, spec §6.2), so the first term is
/// (τ₁/τ_b)·SupCon over the classes and the ranking term only pulls each anchor's other views. No reference set.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SbclRows {
    loss: Sbcl,
    views: usize,
    subclass_labels: Option<Vec<i64>>,
    class_temperature: Option<Vec<f64>>,
}

impl SbclRows {
    fn from_params(p: &Params) -> Result<Self> {
        let loss = Sbcl {
            temperature: p.f64("temperature")?,
            base_temperature: p.f64("base_temperature")?,
            gamma: p.f64("gamma")?,
            reduction: p.reduction(),
        };
        loss.check()?;
        let views = p.f64("views")?;
        if !(views.is_finite() && views >= 1.0 && views.fract() == 0.0 && views <= u32::MAX as f64) {
            return Err(Error::Parameter { name: "views", value: views, reason: "must be an integer ≥ 1" });
        }
        let subclass_labels = match p.vector("subclass_labels")? {
            Some(v) => {
                if let Some(&bad) = v.iter().find(|&&s| s < 0.0 || s.fract() != 0.0 || s > i64::MAX as f64) {
                    return Err(Error::Parameter {
                        name: "subclass_labels",
                        value: bad,
                        reason: "subclass ids must be integers ≥ 0",
                    });
                }
                Some(v.iter().map(|&s| s as i64).collect())
            }
            None => None,
        };
        let class_temperature = match p.vector("class_temperature")? {
            Some(v) => {
                if let Some(&bad) = v.iter().find(|&&t| t <= 0.0) {
                    return Err(Error::Parameter {
                        name: "class_temperature",
                        value: bad,
                        reason: "every class temperature must be > 0",
                    });
                }
                Some(v.to_vec())
            }
            None => None,
        };
        Ok(Self { loss, views: views as usize, subclass_labels, class_temperature })
    }
}

impl<F: Real> EmbeddingLoss<F> for SbclRows {
    fn compute(
        &self,
        embeddings: ArrayView2<'_, F>,
        labels: ArrayView1<'_, i64>,
        reference: Option<Reference<'_, F>>,
        grad: bool,
    ) -> Result<EmbeddingOutput<F>> {
        if let Some(r) = &reference {
            super::metrix::refuse_reference("sbcl", &embeddings, &labels, r)?;
        }
        super::driver::check_embeddings("embeddings", "labels", &embeddings, &labels)?;
        let n = embeddings.nrows();
        if !n.is_multiple_of(self.views) {
            return Err(Error::Shape {
                arg: "embeddings",
                expected: format!("[V·B, D] with V = {} views", self.views),
                got: embeddings.shape().to_vec(),
            });
        }
        let b = n / self.views;
        let sub: Vec<i64> = match &self.subclass_labels {
            Some(s) => {
                check::shape("subclass_labels", &[s.len()], &[Some(n)])?;
                s.clone()
            }
            None => labels.to_vec(),
        };
        for r in b..n {
            if labels[r] != labels[r % b] || sub[r] != sub[r % b] {
                return Err(Error::Input {
                    what: format!(
                        "labels/subclass_labels: row {r} (view {} of sample {}) differs from row {} ({} views)",
                        r / b,
                        r % b,
                        r % b,
                        self.views
                    ),
                });
            }
        }
        let t2 = self.class_temperature.as_ref().map(|t| ArrayView1::from(t.as_slice()));
        self.loss.compute(embeddings, labels.slice(ndarray::s![..b]), ArrayView1::from(&sub[..b]), t2, grad)
    }
}

const PARAMS: &[ParamSpec] = &[
    param("temperature", "0.1", Range::Positive, "τ₁: instance/subclass temperature (official temperature)"),
    param("base_temperature", "0.07", Range::Positive, "τ_b (official base_temperature)"),
    param("gamma", "0.25", Range::NonNegative, "γ: weight of the class-level ranking term (official grama)"),
    param("views", "1", Range::IntAtLeast(1), "V: the rows are V views of B samples, stacked view-major"),
    param("subclass_labels", "none", Range::Vector, "global subclass id per row [N] (none: subclass = class)"),
    param("class_temperature", "none", Range::Vector, "τ₂ per class [C] (none: τ₁ for every class)"),
];

fn build(p: &Params) -> Result<BuiltLoss> {
    SbclRows::from_params(p).map(|_| BuiltLoss::default())
}

pub(crate) fn build_metric(p: &Params) -> Result<MetricForms> {
    Ok(MetricForms { embedding: Some(Box::new(SbclRows::from_params(p)?)), proxy: None })
}

/// Registry entry.
pub(crate) const ENTRY: LossEntry = LossEntry {
    name: "sbcl",
    family: Family::Embedding,
    summary: "subclass-balancing contrastive loss: subclass SupCon + class-level ranking (official SupConLoss_rank)",
    paper: "hou2023sbcl",
    reference: "Hou, Yu, Ding, Tao, Chen, Zhou, Wu (2023), Subclass-balancing Contrastive Learning for Long-tailed \
                Recognition, ICCV, arXiv:2306.15925",
    params: PARAMS,
    build,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_parameters_are_named() {
        assert!(matches!(Sbcl::new().temperature(0.0).check(), Err(Error::Parameter { name: "temperature", .. })));
        assert!(matches!(
            Sbcl::new().base_temperature(-1.0).check(),
            Err(Error::Parameter { name: "base_temperature", .. })
        ));
        assert!(matches!(Sbcl::new().gamma(-0.1).check(), Err(Error::Parameter { name: "gamma", .. })));
    }
}
