//! UNPG, unified negative pair generation (Jung et al. 2022), on top of CosFace or ArcFace.

use losskit_tensor::linalg::gemm;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};
use rayon::prelude::*;

use losskit_tensor::norm::l2_normalize_backward;
use losskit_tensor::{Real, Reduction, Result, check};

use super::driver;
use crate::core::{ProxyLoss, ProxyOutput};
use crate::proxy::{ArcFace, CosFace};
use crate::registry::{BuiltLoss, Family, LossEntry, MetricForms, ParamSpec, Params, Range, param};

/// The margin softmax UNPG extends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnpgBase {
    /// CosFace: target logit s·(cos θ − m), `margin` is the cosine margin m.
    CosFace,
    /// ArcFace with PML's monotonic fallback: target logit s·cos(θ + m), `margin` in degrees.
    ArcFace,
}

/// UNPG: a CosFace/ArcFace softmax whose every row also carries the batch's negative-pair similarities, filtered
/// by a box-and-whisker rule, as extra non-target logits.
///
/// ```text
/// S = X̂X̂ᵀ;  s_n = { S_ab : a < b, y_a ≠ y_b }  sorted ascending, l = |s_n|
/// q1 = s_n[⌊0.25·l⌋],  q3 = s_n[⌊0.75·l⌋],  s'_n = { s ∈ s_n : q1 − k(q3 − q1) ≤ s ≤ q3 + k(q3 − q1) }
/// ℓᵢ = −log( e^{s·ψ(c_iy)} / ( e^{s·ψ(c_iy)} + Σ_{j≠yᵢ} e^{s·c_ij} + Σ_{t} e^{s·s'_t} ) )      Mean = (1/N)·Σᵢ ℓᵢ
/// ```
/// with c_ij = x̂ᵢ·ŵⱼ and ψ the base's target function (CosFace ψ(c) = c − m; ArcFace ψ(c) = cos(arccos c + m),
/// and c − m·sin m past θ = π − m, as [`ArcFace`]). When the batch has no negative pair (l = 0) the loss is the
/// base loss exactly (the official code would fail on an empty index there).
///
/// # Parameters
/// * `base`: [`UnpgBase::CosFace`] (default) or [`UnpgBase::ArcFace`].
/// * `margin`: the base's margin: CosFace m ≥ 0 (default 0.35, PML's CosFace); ArcFace m in degrees in [0, 90].
/// * `scale`: s > 0, default 64 (the official `head.zoo.yaml` and PML).
/// * `whisker`: k ≥ 0, default 1.5 (the official config key `unpg: wisk: 1.5`).
/// * `reduction`: `Mean`, `Sum`, `None` (per-sample ℓᵢ).
///
/// # Shapes
/// `embeddings` [N, D], `labels` `[N]` in `0..C`, `proxies` [C, D]; gradients [N, D] and [C, D].
///
/// # Gradient
/// With p the softmax over a row's C + l' logits: ∂ℓᵢ/∂c_ij as in the base loss, and
/// ∂L/∂s'_t = s·r·Σᵢ p_{i,C+t} (r the reduction's scale), routed to the pair (a, b) that gave s'_t: x̂_b to x̂_a
/// and x̂_a to x̂_b, then through the normalisation. The filter is a constant mask (no gradient through q1, q3),
/// as in PyTorch. The l' shared extra columns cost O(l') once per batch, not per row: each row only needs
/// Σ_t e^{s·s'_t − M} for the common maximum M.
///
/// # Errors
/// [`Error::Parameter`] naming `margin`, `scale` or `whisker`; [`Error::Shape`], [`Error::Empty`],
/// [`Error::LabelOutOfRange`], [`Error::NonFinite`].
///
/// # References
/// Jung, Chi, Jung, Chung, Ko, Kim (2022), *Unified Negative Pair Generation toward Well-discriminative Feature Space
/// for Face Recognition*, BMVC, arXiv:2203.11593 (docs/papers.md key `jung2022unpg`); official code
/// `Jung-Jun-Uk/UNPG` (commit 8dde701), `recognition/models/build.py` (`box_and_whisker_algorithm`,
/// `convert_label_to_similarity`) and `head.py` (`UNPG`). The official ArcFace head has no monotonic fallback; this
/// one keeps PML's (identical while θ_iy ≤ π − m).
///
/// [`Error::Parameter`]: losskit_tensor::Error::Parameter
/// [`Error::Shape`]: losskit_tensor::Error::Shape
/// [`Error::Empty`]: losskit_tensor::Error::Empty
/// [`Error::LabelOutOfRange`]: losskit_tensor::Error::LabelOutOfRange
/// [`Error::NonFinite`]: losskit_tensor::Error::NonFinite
#[derive(Clone, Debug, PartialEq)]
pub struct Unpg {
    /// Default [`UnpgBase::CosFace`].
    pub base: UnpgBase,
    /// The base's margin (CosFace: cosine margin; ArcFace: degrees). Default 0.35.
    pub margin: f64,
    /// s > 0. Default 64.
    pub scale: f64,
    /// k ≥ 0. Default 1.5.
    pub whisker: f64,
    /// Default [`Reduction::Mean`].
    pub reduction: Reduction,
}

impl Default for Unpg {
    fn default() -> Self {
        Self { base: UnpgBase::CosFace, margin: 0.35, scale: 64.0, whisker: 1.5, reduction: Reduction::Mean }
    }
}

/// Box-and-whisker filter of a list of values (returned: the indices kept, in ascending value order), as the official `box_and_whisker_algorithm`: sorts
/// ascending (ties by pair index, so the order is deterministic), q1 = v[⌊l/4⌋], q3 = v[⌊3l/4⌋], keeps the values
/// in [q1 − k·IQR, q3 + k·IQR] (inclusive).
pub fn box_and_whisker(values: &[f64], whisker: f64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&i, &j| values[i].total_cmp(&values[j]).then(i.cmp(&j)));
    let l = order.len();
    if l == 0 {
        return order;
    }
    let q1 = values[order[(0.25 * l as f64) as usize]];
    let q3 = values[order[((0.75 * l as f64) as usize).min(l - 1)]];
    let iqr = q3 - q1;
    let (lo, hi) = (q1 - whisker * iqr, q3 + whisker * iqr);
    order.into_iter().filter(|&i| values[i] >= lo && values[i] <= hi).collect()
}

impl Unpg {
    /// CosFace base, m = 0.35, s = 64, k = 1.5.
    pub fn new() -> Self {
        Self::default()
    }
    /// On ArcFace with PML's margin 28.6° (s = 64, k = 1.5).
    pub fn arcface() -> Self {
        Self { base: UnpgBase::ArcFace, margin: 28.6, ..Self::default() }
    }
    /// The base margin softmax.
    pub fn base(mut self, b: UnpgBase) -> Self {
        self.base = b;
        self
    }
    /// The base's margin (CosFace cosine margin, ArcFace degrees).
    pub fn margin(mut self, v: f64) -> Self {
        self.margin = v;
        self
    }
    /// s (default 64).
    pub fn scale(mut self, v: f64) -> Self {
        self.scale = v;
        self
    }
    /// Whisker k (default 1.5).
    pub fn whisker(mut self, v: f64) -> Self {
        self.whisker = v;
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
    /// [`losskit_tensor::Error::Parameter`] naming `margin`, `scale` or `whisker`.
    pub fn check(&self) -> Result<()> {
        match self.base {
            UnpgBase::CosFace => check::at_least("margin", self.margin, 0.0)?,
            UnpgBase::ArcFace => check::closed("margin", self.margin, 0.0, 90.0)?,
        }
        check::greater_than("scale", self.scale, 0.0)?;
        check::at_least("whisker", self.whisker, 0.0)
    }

    /// ψ(c) and ψ'(c) of the base's target logit (before the scale).
    fn target(&self, c: f64) -> (f64, f64) {
        match self.base {
            UnpgBase::CosFace => (c - self.margin, 1.0),
            UnpgBase::ArcFace => {
                let m = self.margin.to_radians();
                let c = c.clamp(-1.0, 1.0);
                if c.acos() <= std::f64::consts::PI - m {
                    let sin_t = (1.0 - c * c).max(0.0).sqrt();
                    (c * m.cos() - sin_t * m.sin(), m.cos() + m.sin() * c / sin_t.max(1e-7))
                } else {
                    (c - m * m.sin(), 1.0)
                }
            }
        }
    }

    /// The base loss with the same margin, scale and reduction.
    fn base_loss<F: Real>(
        &self,
        x: ArrayView2<'_, F>,
        labels: ArrayView1<'_, i64>,
        proxies: ArrayView2<'_, F>,
        grad: bool,
    ) -> Result<ProxyOutput<F>> {
        match self.base {
            UnpgBase::CosFace => {
                let b = CosFace { margin: self.margin, scale: self.scale, reduction: self.reduction };
                ProxyLoss::<F>::compute(&b, x, labels, proxies, grad)
            }
            UnpgBase::ArcFace => {
                let b = ArcFace { margin: self.margin, scale: self.scale, reduction: self.reduction };
                ProxyLoss::<F>::compute(&b, x, labels, proxies, grad)
            }
        }
    }

    /// The negative pairs kept for `embeddings` and `labels`: (similarity, a, b) with a < b, ascending similarity.
    ///
    /// # Errors
    /// As [`ProxyLoss::compute`] for the embeddings and labels.
    pub fn kept_pairs<F: Real>(
        &self,
        embeddings: ArrayView2<'_, F>,
        labels: ArrayView1<'_, i64>,
    ) -> Result<Vec<(f64, usize, usize)>> {
        self.check()?;
        crate::embedding::driver::check_embeddings("embeddings", "labels", &embeddings, &labels)?;
        let (xh, _) = losskit_tensor::norm::l2_normalize_rows(embeddings);
        Ok(self.negatives(&xh, labels))
    }

    fn negatives<F: Real>(&self, xh: &Array2<F>, labels: ArrayView1<'_, i64>) -> Vec<(f64, usize, usize)> {
        let n = xh.nrows();
        let mut sim = Array2::<F>::zeros((n, n));
        gemm(F::one(), xh, &xh.t(), F::zero(), &mut sim);
        let mut pairs = Vec::new();
        let mut vals = Vec::new();
        for a in 0..n {
            for b in a + 1..n {
                if labels[a] != labels[b] {
                    pairs.push((a, b));
                    vals.push(sim[[a, b]].f64());
                }
            }
        }
        box_and_whisker(&vals, self.whisker)
            .into_iter()
            .map(|i| {
                let (a, b) = pairs[i];
                (vals[i], a, b)
            })
            .collect()
    }
}

impl<F: Real> ProxyLoss<F> for Unpg {
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
            let kept = self.negatives(&p.xh, labels);
            if kept.is_empty() {
                return self.base_loss(embeddings, labels, proxies, grad);
            }
            let n = p.cos.nrows();
            let red = match self.reduction {
                Reduction::Mean => 1.0 / n as f64,
                Reduction::Sum | Reduction::None => 1.0,
            };
            let s = self.scale;
            // The shared extra logits s·s'_t: their maximum M and the sum of e^{s·s'_t − M} without the argmax term.
            let (mut big, mut arg_t) = (f64::NEG_INFINITY, 0);
            for (t, &(v, _, _)) in kept.iter().enumerate() {
                if s * v > big {
                    (big, arg_t) = (s * v, t);
                }
            }
            let extra_e: Vec<f64> = kept.iter().map(|&(v, _, _)| (s * v - big).exp()).collect();
            let extra_rest: f64 = extra_e.iter().enumerate().filter(|&(t, _)| t != arg_t).map(|(_, e)| e).sum();
            // Per row: loss, e^{M − mᵢ}/totalᵢ (the factor of the extras' probabilities), and ∂/∂c row.
            let mut dcos = Array2::<F>::zeros(p.cos.dim());
            let rows: Vec<(f64, f64)> = dcos
                .axis_iter_mut(Axis(0))
                .into_par_iter()
                .zip(p.cos.axis_iter(Axis(0)).into_par_iter())
                .zip(p.labels.par_iter())
                .map(|((mut drow, crow), &y)| {
                    let (t, dt) = self.target(crow[y].f64());
                    let zy = s * t;
                    let z = |j: usize| if j == y { zy } else { s * crow[j].f64() };
                    // The row's maximum over class and extra logits; the argmax term is counted as exactly 1.
                    let (mut m, mut arg) = (big, None);
                    for j in 0..crow.len() {
                        if z(j) > m {
                            (m, arg) = (z(j), Some(j));
                        }
                    }
                    let shift = (big - m).exp();
                    let mut rest = if arg.is_none() { extra_rest } else { shift * (1.0 + extra_rest) };
                    let mut e = vec![0.0; crow.len()];
                    for (j, ej) in e.iter_mut().enumerate() {
                        *ej = if Some(j) == arg { 1.0 } else { (z(j) - m).exp() };
                        if Some(j) != arg {
                            rest += *ej;
                        }
                    }
                    let total = 1.0 + rest;
                    let loss = (m - zy) + rest.ln_1p();
                    if grad {
                        let g = red * s / total;
                        let one_minus_py = (total - e[y]) / total;
                        for (j, d) in drow.iter_mut().enumerate() {
                            *d = F::c(if j == y { -red * s * one_minus_py * dt } else { e[j] * g });
                        }
                    }
                    (loss, shift / total)
                })
                .collect();
            let total: f64 = rows.iter().map(|r| r.0).sum();
            let (gx, gw) = if grad {
                // ∂L/∂s'_t = s·r·e^{s·s'_t − M}·Σᵢ e^{M − mᵢ}/totalᵢ.
                let common: f64 = red * s * rows.iter().map(|r| r.1).sum::<f64>();
                let mut gxh = Array2::<F>::zeros(p.xh.dim());
                gemm(F::one(), &dcos, &p.wh, F::zero(), &mut gxh);
                for (&(_, a, b), &e) in kept.iter().zip(&extra_e) {
                    let g = F::c(common * e);
                    for k in 0..p.xh.ncols() {
                        let (xa, xb) = (p.xh[[a, k]], p.xh[[b, k]]);
                        gxh[[a, k]] += g * xb;
                        gxh[[b, k]] += g * xa;
                    }
                }
                let mut gwh = Array2::<F>::zeros(p.wh.dim());
                gemm(F::one(), &dcos.t(), &p.xh, F::zero(), &mut gwh);
                let gx = l2_normalize_backward(gxh.view(), p.xh.view(), p.xn.view())?;
                let gw = l2_normalize_backward(gwh.view(), p.wh.view(), p.wn.view())?;
                (Some(gx), Some(gw))
            } else {
                (None, None)
            };
            Ok(ProxyOutput {
                value: F::c(total * red),
                per_sample: Some(rows.iter().map(|r| F::c(r.0)).collect::<Array1<F>>()),
                grad: gx,
                grad_proxies: gw,
            })
        })
    }
}

impl Unpg {
    /// Builds the config from registry parameters (and checks it); `margin = none` is the base's default (CosFace
    /// 0.35, ArcFace 28.6°).
    ///
    /// # Errors
    /// As [`Unpg::check`]; [`losskit_tensor::Error::ParameterText`] for an unknown `base`.
    pub fn from_params(p: &Params) -> Result<Self> {
        let base = match p.text("base")? {
            "cosface" => UnpgBase::CosFace,
            "arcface" => UnpgBase::ArcFace,
            other => {
                return Err(losskit_tensor::Error::ParameterText {
                    name: "base".into(),
                    value: other.into(),
                    reason: "expected one of cosface, arcface".into(),
                });
            }
        };
        let default = match base {
            UnpgBase::CosFace => 0.35,
            UnpgBase::ArcFace => 28.6,
        };
        let cfg = Self {
            base,
            margin: p.opt_f64("margin")?.unwrap_or(default),
            scale: p.f64("scale")?,
            whisker: p.f64("whisker")?,
            reduction: p.reduction(),
        };
        cfg.check()?;
        Ok(cfg)
    }
}

const PARAMS: &[ParamSpec] = &[
    param(
        "base",
        "cosface",
        Range::Choice(&["cosface", "arcface"]),
        "the margin softmax extended (CosFace or ArcFace)",
    ),
    param(
        "margin",
        "none",
        Range::NonNegative,
        "the base's margin: CosFace cosine margin (0.35), ArcFace degrees (28.6)",
    ),
    param("scale", "64", Range::Positive, "s: logit scale (official head.zoo.yaml, PML)"),
    param(
        "whisker",
        "1.5",
        Range::NonNegative,
        "k: box-and-whisker factor of the negative-pair filter (official wisk)",
    ),
];

fn build(p: &Params) -> Result<BuiltLoss> {
    Unpg::from_params(p).map(|_| BuiltLoss::default())
}

pub(crate) fn build_metric(p: &Params) -> Result<MetricForms> {
    Ok(MetricForms { embedding: None, proxy: Some(Box::new(Unpg::from_params(p)?)) })
}

/// Registry entry.
pub(crate) const ENTRY: LossEntry = LossEntry {
    name: "unpg",
    family: Family::Proxy,
    summary: "UNPG: CosFace/ArcFace softmax plus the batch's filtered negative-pair similarities (official code)",
    paper: "jung2022unpg",
    reference: "Jung, Chi, Jung, Chung, Ko, Kim (2022), Unified Negative Pair Generation toward Well-discriminative \
                Feature Space for Face Recognition, BMVC, arXiv:2203.11593",
    params: PARAMS,
    build,
};

#[cfg(test)]
mod tests {
    use super::*;
    use losskit_tensor::Error;

    #[test]
    fn spec_whisker_oracle() {
        let s = [-0.9, -0.2, -0.1, 0.0, 0.05, 0.1, 0.2, 0.95];
        let kept: Vec<f64> = box_and_whisker(&s, 1.5).into_iter().map(|i| s[i]).collect();
        assert_eq!(kept, vec![-0.2, -0.1, 0.0, 0.05, 0.1, 0.2]);
        assert!(box_and_whisker(&[], 1.5).is_empty());
    }

    #[test]
    fn bad_parameters_are_named() {
        assert!(matches!(Unpg::new().whisker(-1.0).check(), Err(Error::Parameter { name: "whisker", .. })));
        assert!(matches!(Unpg::new().scale(0.0).check(), Err(Error::Parameter { name: "scale", .. })));
        assert!(matches!(Unpg::arcface().margin(95.0).check(), Err(Error::Parameter { name: "margin", .. })));
        assert!(matches!(Unpg::new().margin(-0.1).check(), Err(Error::Parameter { name: "margin", .. })));
    }
}
