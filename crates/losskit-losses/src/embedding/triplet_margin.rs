//! Triplet margin loss over all triplets, or with batch-hard or semi-hard mining (pytorch-metric-learning semantics).

use ndarray::{ArrayView1, ArrayView2};

use losskit_tensor::{Error, Real, Reduction, Result, check};

use super::driver::{self, Counts, Distance, Finish, PairKernel, Row, RowOut, Setup};
use super::multi_similarity::tile_param;
use crate::core::{EmbeddingLoss, EmbeddingOutput, Reference};
use crate::registry::{BuiltLoss, Family, LossEntry, MetricForms, ParamSpec, Params, Range, param};

/// Which triplets the loss sums over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TripletMining {
    /// Every (anchor, positive, negative) triplet (PML `triplets_per_anchor="all"`, no miner).
    All,
    /// One triplet per anchor: its farthest positive and its closest negative (PML `BatchHardMiner`).
    BatchHard,
    /// The semi-hard triplets of FaceNet, d_ap < d_an ≤ d_ap + m (PML `TripletMarginMiner(margin=m,
    /// type_of_triplets="semihard")` with the loss's margin).
    SemiHard,
}

impl TripletMining {
    /// Registry words.
    pub const NAMES: &'static [&'static str] = &["all", "batch-hard", "semi-hard"];

    fn parse(s: &str) -> Result<Self> {
        match s {
            "all" => Ok(TripletMining::All),
            "batch-hard" => Ok(TripletMining::BatchHard),
            "semi-hard" => Ok(TripletMining::SemiHard),
            _ => Err(Error::ParameterText {
                name: "mining".into(),
                value: s.into(),
                reason: format!("expected one of {}", Self::NAMES.join(", ")),
            }),
        }
    }
}

/// Triplet margin loss.
///
/// ```text
/// ℓ_apn = [d_ap − d_an + m]₊       (similarity: [s_an − s_ap + m]₊)
/// Mean = Σ ℓ_apn / #{ℓ_apn > 0}     (PML's AvgNonZeroReducer; 0 when no triplet violates the margin)
/// Sum = Σ ℓ_apn       None: ℓᵢ = Σ_{p,n} ℓ_ipn per anchor
/// ```
/// over the triplets chosen by [`TripletMining`]: all of them (p: same label, p ≠ a; n: other label), the
/// batch-hard one per anchor, or the semi-hard ones (0 < d_an − d_ap ≤ m). The all-triplet sum is computed per
/// anchor in O(R log R) by sorting the anchor's positive and negative distances, never listing the P·N triplets.
///
/// # Parameters
/// * `margin`: m, default 0.05 (PML `TripletMarginLoss(margin=0.05)`).
/// * `mining`: `all` (default), `batch-hard`, `semi-hard`.
/// * `distance`: default [`Distance::Euclidean`] of normalised rows (PML `LpDistance()`), or cosine.
/// * `tile`: rows per tile, 0 = automatic. * `reduction`: as above.
///
/// # Shapes
/// `embeddings` [N, D], `labels` `[N]`; optional reference set; gradient [N, D].
///
/// # Gradient
/// Each violating triplet adds +1 to ∂/∂d_ap and −1 to ∂/∂d_an (divided by the count under Mean); mining is a
/// constant selection.
///
/// # Errors
/// [`Error::Parameter`] for a non-finite margin; [`Error::Shape`], [`Error::Empty`], [`Error::NonFinite`].
///
/// # References
/// Weinberger, Saul (2009), *Distance Metric Learning for Large Margin Nearest Neighbor Classification*, JMLR;
/// Schroff, Kalenichenko, Philbin (2015), *FaceNet*, CVPR, arXiv:1503.03832 (semi-hard); Hermans, Beyer, Leibe
/// (2017), *In Defense of the Triplet Loss for Person Re-Identification*, arXiv:1703.07737 (batch-hard)
/// (docs/papers.md key `schroff2015facenet`); defaults of pytorch-metric-learning 2.x `TripletMarginLoss`.
#[derive(Clone, Debug, PartialEq)]
pub struct TripletMargin {
    /// m. Default 0.05.
    pub margin: f64,
    /// Default [`TripletMining::All`].
    pub mining: TripletMining,
    /// Default [`Distance::Euclidean`].
    pub distance: Distance,
    /// Rows per tile, 0 = automatic. Default 0.
    pub tile: usize,
    /// Default [`Reduction::Mean`].
    pub reduction: Reduction,
}

impl Default for TripletMargin {
    fn default() -> Self {
        Self {
            margin: 0.05,
            mining: TripletMining::All,
            distance: Distance::Euclidean,
            tile: 0,
            reduction: Reduction::Mean,
        }
    }
}

impl TripletMargin {
    /// PML's defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// m (default 0.05).
    pub fn margin(mut self, v: f64) -> Self {
        self.margin = v;
        self
    }
    /// Mining (default all triplets).
    pub fn mining(mut self, m: TripletMining) -> Self {
        self.mining = m;
        self
    }
    /// Distance (default Euclidean of normalised rows).
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
    /// [`Error::Parameter`] naming `margin`.
    pub fn check(&self) -> Result<()> {
        check::finite_param("margin", self.margin)
    }

    /// Builds the config from registry parameters (and checks it).
    ///
    /// # Errors
    /// As [`TripletMargin::check`].
    pub fn from_params(p: &Params) -> Result<Self> {
        let cfg = Self {
            margin: p.f64("margin")?,
            mining: TripletMining::parse(p.text("mining")?)?,
            distance: Distance::parse(p.text("distance")?)?,
            tile: tile_param(p)?,
            reduction: p.reduction(),
        };
        cfg.check()?;
        Ok(cfg)
    }
}

struct Kernel<F> {
    m: F,
    mining: TripletMining,
    mean: bool,
}

/// Sorted values with their columns and prefix sums (f64).
struct Sorted<F> {
    val: Vec<F>,
    col: Vec<usize>,
    prefix: Vec<f64>,
}

fn sorted<F: Real>(mut items: Vec<(F, usize)>) -> Sorted<F> {
    items.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    let mut prefix = Vec::with_capacity(items.len() + 1);
    prefix.push(0.0);
    let mut acc = 0.0;
    for &(v, _) in &items {
        acc += v.f64();
        prefix.push(acc);
    }
    Sorted { val: items.iter().map(|x| x.0).collect(), col: items.iter().map(|x| x.1).collect(), prefix }
}

impl<F: Real> Sorted<F> {
    /// Index range of the sorted values in the open interval (lo, hi), or (lo, +∞) without `hi`.
    fn range(&self, lo: F, hi: Option<F>) -> (usize, usize) {
        let a = self.val.partition_point(|&v| v <= lo);
        let b = match hi {
            Some(h) => self.val.partition_point(|&v| v < h).max(a),
            None => self.val.len(),
        };
        (a, b)
    }
}

impl<F: Real> PairKernel<F> for Kernel<F> {
    fn zero(&self, c: &Counts) -> bool {
        c.pos_pairs == 0 || c.neg_pairs == 0
    }

    fn row(&self, row: &Row<'_, F>, _stats: &[f64; 4], mut ds: Option<&mut [F]>) -> RowOut {
        // Violation of (p, n) = a_p + b_n + m with a_p = −u_ap, b_n = u_an (u = σ·v, larger = closer).
        let sg = row.sign;
        let r = row.v.len();
        let m = self.m;
        match self.mining {
            TripletMining::BatchHard => {
                let mut best_p: Option<(F, usize)> = None;
                let mut best_n: Option<(F, usize)> = None;
                for j in 0..r {
                    if row.is_pos(j) {
                        let a = -row.u(j);
                        if best_p.is_none_or(|(b, _)| a > b) {
                            best_p = Some((a, j));
                        }
                    } else if row.is_neg(j) {
                        let b = row.u(j);
                        if best_n.is_none_or(|(c, _)| b > c) {
                            best_n = Some((b, j));
                        }
                    }
                }
                let (Some((a, p)), Some((b, n))) = (best_p, best_n) else { return RowOut::default() };
                let x = a + b + m;
                if x <= F::zero() {
                    return RowOut::default();
                }
                if let Some(g) = ds {
                    g[p] = -sg;
                    g[n] = sg;
                }
                RowOut { loss: x.f64(), tally: [x.f64(), 1.0, 0.0, 0.0] }
            }
            TripletMining::All | TripletMining::SemiHard => {
                let mut ps = Vec::new();
                let mut ns = Vec::new();
                for j in 0..r {
                    if row.is_pos(j) {
                        ps.push((-row.u(j), j));
                    } else if row.is_neg(j) {
                        ns.push((row.u(j), j));
                    }
                }
                if ps.is_empty() || ns.is_empty() {
                    return RowOut::default();
                }
                let semi = self.mining == TripletMining::SemiHard;
                let (ps, ns) = (sorted(ps), sorted(ns));
                let (mut loss, mut count) = (0.0_f64, 0.0_f64);
                // For each positive: negatives with −m − a < b (violating) [and b < −a when semi-hard].
                for (k, &a) in ps.val.iter().enumerate() {
                    let (lo, hi) = ns.range(-m - a, semi.then_some(-a));
                    let c = (hi - lo) as f64;
                    loss += c * (a + m).f64() + (ns.prefix[hi] - ns.prefix[lo]);
                    count += c;
                    if let Some(g) = ds.as_deref_mut() {
                        g[ps.col[k]] = F::c(-c) * sg;
                    }
                }
                if let Some(g) = ds {
                    for (k, &b) in ns.val.iter().enumerate() {
                        let (lo, hi) = ps.range(-m - b, semi.then_some(-b));
                        g[ns.col[k]] = F::c((hi - lo) as f64) * sg;
                    }
                }
                RowOut { loss, tally: [loss, count, 0.0, 0.0] }
            }
        }
    }

    fn finish(&self, tally: &[f64; 4], _stats: &[f64; 4], _c: &Counts) -> Finish {
        if self.mean {
            if tally[1] > 0.0 {
                Finish { value: tally[0] / tally[1], grad_scale: 1.0 / tally[1], zero: false }
            } else {
                Finish { value: 0.0, grad_scale: 0.0, zero: false }
            }
        } else {
            Finish { value: tally[0], grad_scale: 1.0, zero: false }
        }
    }
}

impl<F: Real> EmbeddingLoss<F> for TripletMargin {
    fn compute(
        &self,
        embeddings: ArrayView2<'_, F>,
        labels: ArrayView1<'_, i64>,
        reference: Option<Reference<'_, F>>,
        grad: bool,
    ) -> Result<EmbeddingOutput<F>> {
        self.check()?;
        let k = Kernel { m: F::c(self.margin), mining: self.mining, mean: self.reduction == Reduction::Mean };
        driver::run(&k, Setup { distance: self.distance, tile: self.tile }, embeddings, labels, reference, grad)
    }
}

const PARAMS: &[ParamSpec] = &[
    param("margin", "0.05", Range::Any, "m: required gap between negative and positive distances (PML margin)"),
    param("mining", "all", Range::Choice(TripletMining::NAMES), "all triplets, batch-hard or semi-hard mining"),
    param("distance", "euclidean", Range::Choice(Distance::NAMES), "Euclidean distance (PML default) or cosine"),
    param("tile", "0", Range::IntAtLeast(0), "rows per tile of the pair matrix (0 = automatic)"),
];

fn build(p: &Params) -> Result<BuiltLoss> {
    TripletMargin::from_params(p).map(|_| BuiltLoss::default())
}

pub(crate) fn build_metric(p: &Params) -> Result<MetricForms> {
    Ok(MetricForms { embedding: Some(Box::new(TripletMargin::from_params(p)?)), proxy: None })
}

/// Registry entry.
pub(crate) const ENTRY: LossEntry = LossEntry {
    name: "triplet-margin",
    family: Family::Embedding,
    summary: "triplet margin loss over all triplets or with batch-hard / semi-hard mining (PML semantics)",
    paper: "schroff2015facenet",
    reference: "Schroff, Kalenichenko, Philbin (2015), FaceNet: A Unified Embedding for Face Recognition and \
                Clustering, CVPR, arXiv:1503.03832; Hermans, Beyer, Leibe (2017), In Defense of the Triplet Loss, \
                arXiv:1703.07737",
    params: PARAMS,
    build,
};

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// Plain loops over every triplet.
    fn brute(x: &ndarray::Array2<f64>, y: &[i64], m: f64, semi: bool) -> f64 {
        let n = y.len();
        let xh: Vec<Vec<f64>> = x
            .rows()
            .into_iter()
            .map(|r| {
                let norm = r.dot(&r).sqrt();
                r.iter().map(|v| v / norm).collect()
            })
            .collect();
        let d = |i: usize, j: usize| xh[i].iter().zip(&xh[j]).map(|(a, b)| (a - b) * (a - b)).sum::<f64>().sqrt();
        let (mut sum, mut cnt) = (0.0, 0.0);
        for a in 0..n {
            for p in 0..n {
                for q in 0..n {
                    if p == a || y[p] != y[a] || y[q] == y[a] {
                        continue;
                    }
                    let t = d(a, q) - d(a, p);
                    if semi && !(t > 0.0 && t <= m) {
                        continue;
                    }
                    let l = (d(a, p) - d(a, q) + m).max(0.0);
                    if l > 0.0 {
                        sum += l;
                        cnt += 1.0;
                    }
                }
            }
        }
        if cnt > 0.0 { sum / cnt } else { 0.0 }
    }

    #[test]
    fn sorted_sums_match_brute_force() {
        let x = array![[1.0_f64, 0.2], [0.3, 1.0], [-0.5, 0.9], [0.8, -0.7], [0.1, 0.1], [-1.0, -0.2], [0.4, 0.45]];
        let y = [0_i64, 1, 0, 1, 2, 0, 1];
        for (m, mining) in [(0.05, TripletMining::All), (0.8, TripletMining::All), (0.5, TripletMining::SemiHard)] {
            let out = TripletMargin::new()
                .margin(m)
                .mining(mining)
                .compute(x.view(), ndarray::ArrayView1::from(&y), None, false)
                .unwrap();
            let want = brute(&x, &y, m, mining == TripletMining::SemiHard);
            assert!((out.value - want).abs() < 1e-12, "{mining:?} m={m}: {} vs {want}", out.value);
        }
    }
}
