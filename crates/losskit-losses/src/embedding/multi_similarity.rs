//! Multi-similarity loss and miner (Wang et al. 2019) with pytorch-metric-learning's semantics, plus the official
//! code's preset.

use ndarray::{ArrayView1, ArrayView2};

use losskit_tensor::{Error, Real, Reduction, Result, check};

use super::driver::{self, Counts, Distance, Finish, PairKernel, Row, RowOut, Setup};
use crate::core::{EmbeddingLoss, EmbeddingOutput, Reference};
use crate::registry::{BuiltLoss, Family, LossEntry, MetricForms, ParamSpec, Params, Range, param};

/// Multi-similarity loss: a soft, self-weighted pair loss in the general pair weighting (GPW) view.
///
/// ```text
/// ℓᵢ = (1/α)·log(1 + Σ_{k∈Pᵢ} e^{−α(S_ik − λ)}) + (1/β)·log(1 + Σ_{k∈Nᵢ} e^{β(S_ik − λ)})
/// Mean = (1/N)·Σᵢ ℓᵢ           (PML's MeanReducer: every anchor counts, an empty side contributes 0)
/// where S_ik = x̂ᵢ·x̂ₖ (cosine), Pᵢ = same label (k ≠ i), Nᵢ = other label;
///       with the miner, Pᵢ = {p : S_ip − ε < max_{n} S_in}, Nᵢ = {n : S_in + ε > min_{p} S_ip}
/// ```
/// With a distance instead of a similarity (`distance = euclidean`) PML flips each exponent: e^{α(d − λ)} for
/// positives and e^{β(λ − d)} for negatives, and the miner compares −d. In the GPW view each pair's weight is its
/// share of the soft-max: w⁺_ik = e^{−α(S_ik−λ)} / (1 + Σ_{l∈Pᵢ} e^{−α(S_il−λ)}) and likewise for negatives.
///
/// The official preset ([`MultiSimilarity::official`]) follows the authors' code: β = 40, the miner on, and
/// *anchor skipping*: an anchor whose mined positive or negative set is empty contributes 0, and the Mean still
/// divides by N. (The official code drops the self-pair by the threshold S ≥ 1 − 1e-5, which also drops exact
/// duplicates; here the self-pair is dropped by index.)
///
/// # Parameters
/// * `alpha`: α > 0, positive scale, default 2 (PML `alpha`).
/// * `beta`: β > 0, negative scale, default 50 (PML `beta`; the official code uses 40).
/// * `base`: λ, the similarity threshold, default 0.5 (PML `base`).
/// * `miner`: mine pairs with [`MultiSimilarityMiner`] first, default false (PML: pass the miner's pairs).
/// * `epsilon`: ε ≥ 0, the miner's margin, default 0.1 (PML `MultiSimilarityMiner(epsilon)`).
/// * `skip_anchors`: the official anchor-skipping rule, default false.
/// * `distance`: [`Distance::Cosine`] (default, PML's), or a Euclidean distance.
/// * `tile`: rows per tile of the N × R matrix, 0 = automatic (see the driver).
/// * `reduction`: `Mean` as above, `Sum` = Σᵢ ℓᵢ, `None` = (ℓᵢ)ᵢ.
///
/// PML returns 0 when there is at most one positive and one negative pair (after mining); so do we, and with the
/// miner also when the batch has no positive or no negative pair. The official preset has no such rule.
///
/// # Shapes
/// `embeddings` [N, D], `labels` `[N]` (any integers); optional reference set [R, D] + `[R]`; gradient [N, D].
///
/// # Gradient
/// ```text
/// ∂ℓᵢ/∂S_ik = −w⁺_ik (k ∈ Pᵢ),  +w⁻_ik (k ∈ Nᵢ)
/// ```
/// to both ends of each pair, then through the normalisation (x̂ = x/‖x‖). The mined sets are constants.
///
/// # Errors
/// [`Error::Parameter`] for α ≤ 0, β ≤ 0, a non-finite λ or ε < 0; [`Error::Shape`], [`Error::Empty`],
/// [`Error::NonFinite`] for bad inputs.
///
/// # Examples
/// ```
/// use losskit_losses::{EmbeddingLoss, MultiSimilarity};
/// let x = ndarray::array![[1.0_f64, 0.0], [0.6, 0.8], [0.0, 1.0]];
/// let y = ndarray::array![0_i64, 0, 1];
/// let out = MultiSimilarity::new().compute(x.view(), y.view(), None, true)?;
/// assert!((out.value - 0.399380).abs() < 1e-6); // spec §1.4
/// # Ok::<(), losskit_losses::Error>(())
/// ```
///
/// # References
/// Wang, Han, Huang, Dong, Scott (2019), *Multi-Similarity Loss with General Pair Weighting for Deep Metric
/// Learning*, CVPR, arXiv:1904.06627 (docs/papers.md key `wang2019multi`); defaults and reduction of
/// pytorch-metric-learning 2.x `MultiSimilarityLoss` / `MultiSimilarityMiner`.
#[derive(Clone, Debug, PartialEq)]
pub struct MultiSimilarity {
    /// α > 0. Default 2.
    pub alpha: f64,
    /// β > 0. Default 50.
    pub beta: f64,
    /// λ. Default 0.5.
    pub base: f64,
    /// Mine pairs first. Default false.
    pub miner: bool,
    /// ε ≥ 0. Default 0.1.
    pub epsilon: f64,
    /// Official anchor skipping. Default false.
    pub skip_anchors: bool,
    /// Default [`Distance::Cosine`].
    pub distance: Distance,
    /// Rows per tile, 0 = automatic. Default 0.
    pub tile: usize,
    /// Default [`Reduction::Mean`].
    pub reduction: Reduction,
}

impl Default for MultiSimilarity {
    fn default() -> Self {
        Self {
            alpha: 2.0,
            beta: 50.0,
            base: 0.5,
            miner: false,
            epsilon: 0.1,
            skip_anchors: false,
            distance: Distance::Cosine,
            tile: 0,
            reduction: Reduction::Mean,
        }
    }
}

impl MultiSimilarity {
    /// PML's defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// The official code's settings: α = 2, β = 40, λ = 0.5, the miner with ε = 0.1, anchor skipping.
    pub fn official() -> Self {
        Self { beta: 40.0, miner: true, skip_anchors: true, ..Self::default() }
    }
    /// α (default 2).
    pub fn alpha(mut self, v: f64) -> Self {
        self.alpha = v;
        self
    }
    /// β (default 50).
    pub fn beta(mut self, v: f64) -> Self {
        self.beta = v;
        self
    }
    /// λ (default 0.5).
    pub fn base(mut self, v: f64) -> Self {
        self.base = v;
        self
    }
    /// Mine pairs first (default false).
    pub fn miner(mut self, on: bool) -> Self {
        self.miner = on;
        self
    }
    /// The miner's ε (default 0.1).
    pub fn epsilon(mut self, v: f64) -> Self {
        self.epsilon = v;
        self
    }
    /// Official anchor skipping (default false).
    pub fn skip_anchors(mut self, on: bool) -> Self {
        self.skip_anchors = on;
        self
    }
    /// Distance (default cosine).
    pub fn distance(mut self, d: Distance) -> Self {
        self.distance = d;
        self
    }
    /// Rows per tile, 0 = automatic (default 0).
    pub fn tile(mut self, rows: usize) -> Self {
        self.tile = rows;
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
    /// [`Error::Parameter`] naming `alpha`, `beta`, `base` or `epsilon`.
    pub fn check(&self) -> Result<()> {
        check::greater_than("alpha", self.alpha, 0.0)?;
        check::greater_than("beta", self.beta, 0.0)?;
        check::finite_param("base", self.base)?;
        check::at_least("epsilon", self.epsilon, 0.0)
    }

    /// Builds the config from registry parameters (and checks it).
    ///
    /// # Errors
    /// As [`MultiSimilarity::check`].
    pub fn from_params(p: &Params) -> Result<Self> {
        let mut cfg = Self {
            alpha: p.f64("alpha")?,
            beta: p.f64("beta")?,
            base: p.f64("base")?,
            miner: p.bool("miner")?,
            epsilon: p.f64("epsilon")?,
            skip_anchors: p.bool("skip_anchors")?,
            distance: Distance::parse(p.text("distance")?)?,
            tile: tile_param(p)?,
            reduction: p.reduction(),
        };
        if p.text("preset")? == "official" {
            cfg = Self { beta: 40.0, miner: true, skip_anchors: true, ..cfg };
        }
        cfg.check()?;
        Ok(cfg)
    }
}

/// The `tile` registry parameter.
pub(crate) fn tile_param(p: &Params) -> Result<usize> {
    let v = p.f64("tile")?;
    if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= u32::MAX as f64 {
        Ok(v as usize)
    } else {
        Err(Error::Parameter { name: "tile", value: v, reason: "must be an integer ≥ 0" })
    }
}

/// The multi-similarity miner's rule for one anchor row: (min over positives, max over negatives) of the closeness.
#[inline(always)]
pub(crate) fn ms_bounds<F: Real>(row: &Row<'_, F>) -> (F, F) {
    let mut min_pos = F::infinity();
    let mut max_neg = F::neg_infinity();
    for j in 0..row.v.len() {
        let u = row.u(j);
        if row.is_pos(j) && u < min_pos {
            min_pos = u;
        }
        if row.is_neg(j) && u > max_neg {
            max_neg = u;
        }
    }
    (min_pos, max_neg)
}

struct Kernel<F> {
    alpha: F,
    beta: F,
    base: F,
    eps: Option<F>,
    skip: bool,
    reduction: Reduction,
}

impl<F: Real> PairKernel<F> for Kernel<F> {
    fn zero(&self, c: &Counts) -> bool {
        if self.skip {
            return false;
        }
        c.at_most_one_pair_each() || (self.eps.is_some() && (c.pos_pairs == 0 || c.neg_pairs == 0))
    }

    // Inlined so that the driver's SIMD-dispatched row passes compile this body for their instruction set.
    #[inline(always)]
    fn row(&self, row: &Row<'_, F>, _stats: &[f64; 4], ds: Option<&mut [F]>) -> RowOut {
        let r = row.v.len();
        let sg = row.sign;
        let (min_pos, max_neg) = match self.eps {
            Some(_) => ms_bounds(row),
            None => (F::zero(), F::zero()),
        };
        // Without the miner ε = 0 and the thresholds are ±∞: every same-label column but the anchor is a positive,
        // every other column a negative.
        let eps = self.eps.unwrap_or(F::zero());
        let (max_neg, min_pos) =
            if self.eps.is_some() { (max_neg, min_pos) } else { (F::infinity(), F::neg_infinity()) };
        let v = row.v;
        // Positives are the few same-label columns (scalar); negatives are the runs between them (vectorised).
        let same = driver::same_label_cols(row);
        let pos: Vec<usize> =
            same.iter().copied().filter(|&j| Some(j) != row.self_col && sg * v[j] - eps < max_neg).collect();
        let runs: Vec<(usize, usize)> = driver::runs_between(&same, r).collect();
        let keep_neg = |vj: F| sg * vj + eps > min_pos;
        // Exponents α·σ(λ − v) and β·σ(v − λ) (PML's `distance.margin`).
        let (a, b, base) = (self.alpha * sg, self.beta * sg, self.base);
        let ninf = F::neg_infinity();
        let xn = |vj: F| if keep_neg(vj) { b * (vj - base) } else { ninf };
        // The largest exponent on each side (the "1 +" term makes the shift at least 0), and the counts.
        let mp = pos.iter().fold(F::zero(), |m, &j| {
            let x = a * (base - v[j]);
            if x > m { x } else { m }
        });
        let mut mn = F::zero();
        let mut nn = 0usize;
        for &(j0, j1) in &runs {
            mn = driver::lanes_max(&v[j0..j1], mn, xn);
            nn += if self.eps.is_some() { v[j0..j1].iter().filter(|&&vj| keep_neg(vj)).count() } else { j1 - j0 };
        }
        let np = pos.len();
        if self.skip && (np == 0 || nn == 0) {
            if let Some(g) = ds {
                g.iter_mut().for_each(|x| *x = F::zero());
            }
            return RowOut { loss: 0.0, tally: [0.0, np as f64, nn as f64, 0.0] };
        }
        let lse = |m: F, z: F, count: usize| if count == 0 { 0.0 } else { m.f64() + z.f64().ln() };
        let en = |vj: F| (xn(vj) - mn).fast_exp();
        let mut zp = (-mp).fast_exp();
        let mut zn = (-mn).fast_exp();
        let (lp, ln) = match ds {
            Some(g) => {
                for &j in &pos {
                    let e = (a * (base - v[j]) - mp).fast_exp();
                    zp += e;
                    g[j] = e;
                }
                for &(j0, j1) in &runs {
                    for (gj, &vj) in g[j0..j1].iter_mut().zip(&v[j0..j1]) {
                        *gj = en(vj);
                    }
                    zn += driver::lanes_sum(&g[j0..j1], |e| e);
                }
                // ∂/∂v of (1/α)·LSE₁: softmax · (−σ) for positives, softmax · σ for negatives; 0 elsewhere.
                let (cp, cn) = (-sg / zp, sg / zn);
                for &(j0, j1) in &runs {
                    g[j0..j1].iter_mut().for_each(|x| *x *= cn);
                }
                for &j in &pos {
                    g[j] *= cp;
                }
                (lse(mp, zp, np), lse(mn, zn, nn))
            }
            None => {
                for &j in &pos {
                    zp += (a * (base - v[j]) - mp).fast_exp();
                }
                for &(j0, j1) in &runs {
                    zn += driver::lanes_sum(&v[j0..j1], en);
                }
                (lse(mp, zp, np), lse(mn, zn, nn))
            }
        };
        let loss = lp / self.alpha.f64() + ln / self.beta.f64();
        RowOut { loss, tally: [loss, np as f64, nn as f64, 0.0] }
    }

    fn finish(&self, tally: &[f64; 4], _stats: &[f64; 4], c: &Counts) -> Finish {
        if self.eps.is_some() && !self.skip && tally[1] <= 1.0 && tally[2] <= 1.0 {
            return Finish::zero();
        }
        match self.reduction {
            Reduction::Mean => {
                let inv = 1.0 / c.rows as f64;
                Finish { value: tally[0] * inv, grad_scale: inv, zero: false }
            }
            Reduction::Sum | Reduction::None => Finish { value: tally[0], grad_scale: 1.0, zero: false },
        }
    }
}

impl<F: Real> EmbeddingLoss<F> for MultiSimilarity {
    fn compute(
        &self,
        embeddings: ArrayView2<'_, F>,
        labels: ArrayView1<'_, i64>,
        reference: Option<Reference<'_, F>>,
        grad: bool,
    ) -> Result<EmbeddingOutput<F>> {
        self.check()?;
        let k = Kernel {
            alpha: F::c(self.alpha),
            beta: F::c(self.beta),
            base: F::c(self.base),
            eps: self.miner.then(|| F::c(self.epsilon)),
            skip: self.skip_anchors,
            reduction: self.reduction,
        };
        driver::run(&k, Setup { distance: self.distance, tile: self.tile }, embeddings, labels, reference, grad)
    }
}

/// Pairs chosen by a miner: (anchor, positive) and (anchor, negative) index pairs, sorted by anchor then index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MinedPairs {
    /// (anchor, positive) pairs.
    pub positives: Vec<(usize, usize)>,
    /// (anchor, negative) pairs.
    pub negatives: Vec<(usize, usize)>,
}

/// The multi-similarity miner (pytorch-metric-learning `MultiSimilarityMiner`): keeps the positive pairs less
/// similar than the anchor's most similar negative plus ε, and the negative pairs more similar than its least
/// similar positive minus ε.
///
/// ```text
/// keep (i, p) ⇔ S_ip − ε < max_{n∈Nᵢ} S_in        keep (i, n) ⇔ S_in + ε > min_{p∈Pᵢ} S_ip
/// ```
/// (for a distance, compare −d). An anchor with no negative keeps no positive and vice versa; a batch without any
/// positive or any negative pair yields nothing. The loss applies the same rule on the fly (`miner = true`).
///
/// # Parameters
/// * `epsilon`: ε ≥ 0, default 0.1. * `distance`: default cosine.
///
/// # Errors
/// [`Error::Parameter`] for ε < 0; [`Error::Shape`], [`Error::Empty`], [`Error::NonFinite`] for bad inputs.
///
/// # References
/// Wang et al. (2019), CVPR (`wang2019multi`), Sec. 3.3; PML 2.x `MultiSimilarityMiner`.
#[derive(Clone, Debug, PartialEq)]
pub struct MultiSimilarityMiner {
    /// ε ≥ 0. Default 0.1.
    pub epsilon: f64,
    /// Default [`Distance::Cosine`].
    pub distance: Distance,
}

impl Default for MultiSimilarityMiner {
    fn default() -> Self {
        Self { epsilon: 0.1, distance: Distance::Cosine }
    }
}

impl MultiSimilarityMiner {
    /// PML's defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// ε (default 0.1).
    pub fn epsilon(mut self, v: f64) -> Self {
        self.epsilon = v;
        self
    }
    /// Distance (default cosine).
    pub fn distance(mut self, d: Distance) -> Self {
        self.distance = d;
        self
    }

    /// Mines the pairs of a batch (the similarity matrix is computed whole: N² entries).
    ///
    /// # Errors
    /// As the type's docs.
    pub fn mine<F: Real>(&self, embeddings: ArrayView2<'_, F>, labels: ArrayView1<'_, i64>) -> Result<MinedPairs> {
        check::at_least("epsilon", self.epsilon, 0.0)?;
        driver::check_embeddings("embeddings", "labels", &embeddings, &labels)?;
        let labels: Vec<i64> = labels.iter().copied().collect();
        let c = driver::pair_counts(&labels, &labels, true);
        let mut out = MinedPairs::default();
        if c.pos_pairs == 0 || c.neg_pairs == 0 {
            return Ok(out);
        }
        let v = match self.distance {
            Distance::Cosine => losskit_tensor::pairwise::cosine_similarity(embeddings, embeddings)?,
            d => {
                let x = match d {
                    Distance::Euclidean => losskit_tensor::norm::l2_normalize_rows(embeddings).0,
                    _ => embeddings.to_owned(),
                };
                losskit_tensor::pairwise::squared_distances(x.view(), x.view())?.mapv(|v| v.sqrt())
            }
        };
        let eps = F::c(self.epsilon);
        for (i, vrow) in v.rows().into_iter().enumerate() {
            let vrow: Vec<F> = vrow.to_vec();
            let row =
                Row { v: &vrow, label: labels[i], ref_labels: &labels, self_col: Some(i), sign: self.distance.sign() };
            let (min_pos, max_neg) = ms_bounds(&row);
            for j in 0..vrow.len() {
                if row.is_pos(j) && row.u(j) - eps < max_neg {
                    out.positives.push((i, j));
                }
                if row.is_neg(j) && row.u(j) + eps > min_pos {
                    out.negatives.push((i, j));
                }
            }
        }
        Ok(out)
    }
}

const PARAMS: &[ParamSpec] = &[
    param("alpha", "2", Range::Positive, "α: scale of the positive-pair exponent (PML alpha)"),
    param("beta", "50", Range::Positive, "β: scale of the negative-pair exponent (PML beta; official code 40)"),
    param("base", "0.5", Range::Any, "λ: similarity threshold of both exponents (PML base)"),
    param("miner", "false", Range::Bool, "mine pairs with the multi-similarity miner first"),
    param("epsilon", "0.1", Range::NonNegative, "ε: margin of the multi-similarity miner"),
    param("skip_anchors", "false", Range::Bool, "official rule: anchors without a mined positive or negative count 0"),
    param("preset", "pml", Range::Choice(&["pml", "official"]), "official = beta 40, miner on, anchor skipping"),
    param("distance", "cosine", Range::Choice(Distance::NAMES), "cosine similarity or Euclidean distance"),
    param("tile", "0", Range::IntAtLeast(0), "rows per tile of the pair matrix (0 = automatic)"),
];

fn build(p: &Params) -> Result<BuiltLoss> {
    MultiSimilarity::from_params(p).map(|_| BuiltLoss::default())
}

pub(crate) fn build_metric(p: &Params) -> Result<MetricForms> {
    Ok(MetricForms { embedding: Some(Box::new(MultiSimilarity::from_params(p)?)), proxy: None })
}

/// Registry entry.
pub(crate) const ENTRY: LossEntry = LossEntry {
    name: "multi-similarity",
    family: Family::Embedding,
    summary: "multi-similarity pair loss (PML semantics; preset=official for the authors' β = 40 and anchor \
              skipping), with the multi-similarity miner",
    paper: "wang2019multi",
    reference: "Wang, Han, Huang, Dong, Scott (2019), Multi-Similarity Loss with General Pair Weighting for Deep \
                Metric Learning, CVPR, arXiv:1904.06627",
    params: PARAMS,
    build,
};

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn each_bad_parameter_is_named() {
        let bad = |c: MultiSimilarity, name: &str| {
            assert!(matches!(c.check(), Err(Error::Parameter { name: n, .. }) if n == name), "{name}")
        };
        bad(MultiSimilarity::new().alpha(0.0), "alpha");
        bad(MultiSimilarity::new().beta(-1.0), "beta");
        bad(MultiSimilarity::new().base(f64::NAN), "base");
        bad(MultiSimilarity::new().epsilon(-0.1), "epsilon");
        assert!(MultiSimilarity::official().check().is_ok());
    }

    #[test]
    fn spec_oracle_pml_and_official() {
        // Spec §1.4: X = [(1,0), (0.6,0.8), (0,1)], y = [0, 0, 1].
        let x = array![[1.0_f64, 0.0], [0.6, 0.8], [0.0, 1.0]];
        let y = array![0_i64, 0, 1];
        let out = MultiSimilarity::new().compute(x.view(), y.view(), None, false).unwrap();
        let ps = out.per_sample.unwrap();
        for (got, want) in ps.iter().zip([0.299069, 0.599069, 0.300000]) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
        assert!((out.value - 0.399380).abs() < 1e-6);
        let off = MultiSimilarity::official().compute(x.view(), y.view(), None, false).unwrap();
        assert!((off.value - 0.199690).abs() < 1e-6, "{}", off.value);
    }

    #[test]
    fn preset_official_overrides_three_parameters() {
        let p = ENTRY.params(&[("preset".into(), "official".into())]).unwrap();
        let c = MultiSimilarity::from_params(&p).unwrap();
        assert_eq!((c.beta, c.miner, c.skip_anchors), (40.0, true, true));
    }
}
