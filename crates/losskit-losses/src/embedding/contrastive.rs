//! Contrastive (pair margin) loss with pytorch-metric-learning's semantics.

use ndarray::{ArrayView1, ArrayView2};

use losskit_tensor::{Real, Reduction, Result, check};

use super::driver::{self, Counts, Distance, Finish, PairKernel, Row, RowOut, Setup};
use super::multi_similarity::tile_param;
use crate::core::{EmbeddingLoss, EmbeddingOutput, Reference};
use crate::registry::{BuiltLoss, Family, LossEntry, MetricForms, ParamSpec, Params, Range, param};

/// Contrastive loss: pull positive pairs within `pos_margin`, push negative pairs beyond `neg_margin`.
///
/// ```text
/// distance d:     ℓ⁺_ik = [d_ik − m⁺]₊ (k ∈ Pᵢ)        ℓ⁻_ik = [m⁻ − d_ik]₊ (k ∈ Nᵢ)
/// similarity s:   ℓ⁺_ik = [m⁺ − s_ik]₊                  ℓ⁻_ik = [s_ik − m⁻]₊
/// Mean = Σ ℓ⁺ / #{ℓ⁺ > 0} + Σ ℓ⁻ / #{ℓ⁻ > 0}            (PML's AvgNonZeroReducer on each side; 0 when none)
/// Sum = Σ ℓ⁺ + Σ ℓ⁻        None: ℓᵢ = Σₖ ℓ⁺_ik + Σₖ ℓ⁻_ik per anchor
/// ```
/// where Pᵢ = same label (k ≠ i), Nᵢ = other label, over every ordered pair (each unordered pair twice, as PML).
///
/// # Parameters
/// * `pos_margin`: m⁺, default 0 (PML `pos_margin`).
/// * `neg_margin`: m⁻, default 1 (PML `neg_margin`).
/// * `distance`: default [`Distance::Euclidean`] of L2-normalised rows (PML's `LpDistance()`), or cosine.
/// * `tile`: rows per tile, 0 = automatic. * `reduction`: as above.
///
/// PML returns 0 when there is at most one positive and one negative pair; so do we.
///
/// # Shapes
/// `embeddings` [N, D], `labels` `[N]`; optional reference set; gradient [N, D].
///
/// # Gradient
/// ∂ℓ⁺/∂d = 1 and ∂ℓ⁻/∂d = −1 where the term is positive (0 otherwise, as ReLU at 0), divided by the side's
/// non-zero count under Mean; ∂d/∂a = (a − b)/d (0 at d = 0), then through the normalisation. Mean needs the two
/// counts before any gradient is written: a statistics pass (in tiled mode it recomputes each tile's GEMM).
///
/// # Errors
/// [`Error::Parameter`](losskit_tensor::Error::Parameter) for a non-finite margin; [`Error::Shape`](losskit_tensor::Error::Shape), [`Error::Empty`](losskit_tensor::Error::Empty), [`Error::NonFinite`](losskit_tensor::Error::NonFinite).
///
/// # References
/// Hadsell, Chopra, LeCun (2006), *Dimensionality Reduction by Learning an Invariant Mapping*, CVPR
/// (docs/papers.md key `hadsell2006dimensionality`); defaults and reducer of pytorch-metric-learning 2.x
/// `ContrastiveLoss`.
#[derive(Clone, Debug, PartialEq)]
pub struct Contrastive {
    /// m⁺. Default 0.
    pub pos_margin: f64,
    /// m⁻. Default 1.
    pub neg_margin: f64,
    /// Default [`Distance::Euclidean`].
    pub distance: Distance,
    /// Rows per tile, 0 = automatic. Default 0.
    pub tile: usize,
    /// Default [`Reduction::Mean`].
    pub reduction: Reduction,
}

impl Default for Contrastive {
    fn default() -> Self {
        Self { pos_margin: 0.0, neg_margin: 1.0, distance: Distance::Euclidean, tile: 0, reduction: Reduction::Mean }
    }
}

impl Contrastive {
    /// PML's defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// m⁺ (default 0).
    pub fn pos_margin(mut self, v: f64) -> Self {
        self.pos_margin = v;
        self
    }
    /// m⁻ (default 1).
    pub fn neg_margin(mut self, v: f64) -> Self {
        self.neg_margin = v;
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
    /// [`Error::Parameter`](losskit_tensor::Error::Parameter) naming `pos_margin` or `neg_margin`.
    pub fn check(&self) -> Result<()> {
        check::finite_param("pos_margin", self.pos_margin)?;
        check::finite_param("neg_margin", self.neg_margin)
    }

    /// Builds the config from registry parameters (and checks it).
    ///
    /// # Errors
    /// As [`Contrastive::check`].
    pub fn from_params(p: &Params) -> Result<Self> {
        let cfg = Self {
            pos_margin: p.f64("pos_margin")?,
            neg_margin: p.f64("neg_margin")?,
            distance: Distance::parse(p.text("distance")?)?,
            tile: tile_param(p)?,
            reduction: p.reduction(),
        };
        cfg.check()?;
        Ok(cfg)
    }
}

struct Kernel<F> {
    pm: F,
    nm: F,
    mean: bool,
}

impl<F: Real> Kernel<F> {
    /// Term of column j (0 for the anchor itself): (value, ∂/∂v, is positive side).
    #[inline(always)]
    fn term(&self, row: &Row<'_, F>, j: usize) -> Option<(F, F, bool)> {
        let sg = row.sign;
        if row.is_pos(j) {
            // PML: relu(margin(v, m⁺)) = relu(σ·(m⁺ − v)).
            let t = sg * (self.pm - row.v[j]);
            Some((t, -sg, true))
        } else if row.is_neg(j) {
            let t = sg * (row.v[j] - self.nm);
            Some((t, sg, false))
        } else {
            None
        }
    }
}

impl<F: Real> PairKernel<F> for Kernel<F> {
    fn needs_stats(&self) -> bool {
        self.mean
    }

    // Inlined so that the driver's SIMD-dispatched row passes compile this body for their instruction set.
    #[inline(always)]
    fn stats(&self, row: &Row<'_, F>, out: &mut [f64; 4]) {
        // Positives: the few same-label columns (scalar); negatives: the runs between them (vectorised).
        let same = driver::same_label_cols(row);
        for &j in &same {
            if let Some((t, _, true)) = self.term(row, j)
                && t > F::zero()
            {
                out[0] += 1.0;
            }
        }
        let (sg, nm) = (row.sign, self.nm);
        for (j0, j1) in driver::runs_between(&same, row.v.len()) {
            out[1] += row.v[j0..j1].iter().filter(|&&vj| sg * (vj - nm) > F::zero()).count() as f64;
        }
    }

    fn zero(&self, c: &Counts) -> bool {
        c.at_most_one_pair_each()
    }

    // Inlined so that the driver's SIMD-dispatched row passes compile this body for their instruction set.
    #[inline(always)]
    fn row(&self, row: &Row<'_, F>, stats: &[f64; 4], mut ds: Option<&mut [F]>) -> RowOut {
        let inv = |k: usize| if self.mean && stats[k] > 0.0 { F::c(1.0 / stats[k]) } else { F::one() };
        let (sp, sn) = (inv(0), inv(1));
        let same = driver::same_label_cols(row);
        let mut lp = 0.0_f64;
        for &j in &same {
            if let Some((t, dt, true)) = self.term(row, j)
                && t > F::zero()
            {
                lp += t.f64();
                if let Some(g) = ds.as_deref_mut() {
                    g[j] = dt * sp;
                }
            }
        }
        // Negatives: relu(σ·(v − m⁻)) over the runs between the same-label columns, branch-free.
        let (sg, nm) = (row.sign, self.nm);
        let t = |vj: F| sg * (vj - nm);
        let gn = sg * sn;
        let mut ln = 0.0_f64;
        for (j0, j1) in driver::runs_between(&same, row.v.len()) {
            let v = &row.v[j0..j1];
            ln += driver::lanes_sum_f64(v, |vj| {
                let x = t(vj);
                if x > F::zero() { x.f64() } else { 0.0 }
            });
            if let Some(g) = ds.as_deref_mut() {
                for (gj, &vj) in g[j0..j1].iter_mut().zip(v) {
                    *gj = if t(vj) > F::zero() { gn } else { F::zero() };
                }
            }
        }
        RowOut { loss: lp + ln, tally: [lp, ln, 0.0, 0.0] }
    }

    fn finish(&self, tally: &[f64; 4], stats: &[f64; 4], _c: &Counts) -> Finish {
        if !self.mean {
            return Finish { value: tally[0] + tally[1], grad_scale: 1.0, zero: false };
        }
        let avg = |sum: f64, count: f64| if count > 0.0 { sum / count } else { 0.0 };
        Finish { value: avg(tally[0], stats[0]) + avg(tally[1], stats[1]), grad_scale: 1.0, zero: false }
    }
}

impl<F: Real> EmbeddingLoss<F> for Contrastive {
    fn compute(
        &self,
        embeddings: ArrayView2<'_, F>,
        labels: ArrayView1<'_, i64>,
        reference: Option<Reference<'_, F>>,
        grad: bool,
    ) -> Result<EmbeddingOutput<F>> {
        self.check()?;
        let k =
            Kernel { pm: F::c(self.pos_margin), nm: F::c(self.neg_margin), mean: self.reduction == Reduction::Mean };
        driver::run(&k, Setup { distance: self.distance, tile: self.tile }, embeddings, labels, reference, grad)
    }
}

const PARAMS: &[ParamSpec] = &[
    param("pos_margin", "0", Range::Any, "m⁺: positive pairs closer than this cost nothing (PML pos_margin)"),
    param("neg_margin", "1", Range::Any, "m⁻: negative pairs farther than this cost nothing (PML neg_margin)"),
    param("distance", "euclidean", Range::Choice(Distance::NAMES), "Euclidean distance (PML default) or cosine"),
    param("tile", "0", Range::IntAtLeast(0), "rows per tile of the pair matrix (0 = automatic)"),
];

fn build(p: &Params) -> Result<BuiltLoss> {
    Contrastive::from_params(p).map(|_| BuiltLoss::default())
}

pub(crate) fn build_metric(p: &Params) -> Result<MetricForms> {
    Ok(MetricForms { embedding: Some(Box::new(Contrastive::from_params(p)?)), proxy: None })
}

/// Registry entry.
pub(crate) const ENTRY: LossEntry = LossEntry {
    name: "contrastive",
    family: Family::Embedding,
    summary: "contrastive pair-margin loss (PML semantics: normalised Euclidean distance, non-zero averaging)",
    paper: "hadsell2006dimensionality",
    reference: "Hadsell, Chopra, LeCun (2006), Dimensionality Reduction by Learning an Invariant Mapping, CVPR",
    params: PARAMS,
    build,
};

#[cfg(test)]
mod tests {
    use super::*;
    use losskit_tensor::Error;
    use ndarray::array;

    #[test]
    fn margins_must_be_finite() {
        let r = Contrastive::new().neg_margin(f64::INFINITY).check();
        assert!(matches!(r, Err(Error::Parameter { name: "neg_margin", .. })));
        let r = Contrastive::new().pos_margin(f64::NAN).check();
        assert!(matches!(r, Err(Error::Parameter { name: "pos_margin", .. })));
    }

    #[test]
    fn few_active_pairs_take_the_sparse_gradient_and_agree_with_tiles() {
        // 200 rows in 100 pairs, margin 0.8: only the 200 positive pairs (1/200 of all) are active, so the dense
        // self-referenced path forms its gradient by row gathers; the tiled path runs GEMMs over the same terms.
        let x = ndarray::Array2::from_shape_fn((200, 16), |(i, k)| ((i * 16 + k) as f64 * 0.618).sin());
        let y = ndarray::Array1::from_shape_fn(200, |i| (i % 100) as i64);
        for distance in [Distance::Euclidean, Distance::Cosine] {
            let c =
                Contrastive::new().neg_margin(if distance == Distance::Cosine { 0.99 } else { 0.8 }).distance(distance);
            let dense = c.compute(x.view(), y.view(), None, true).unwrap();
            let tiled = c.clone().tile(7).compute(x.view(), y.view(), None, true).unwrap();
            assert_eq!(dense.per_sample, tiled.per_sample);
            assert!((dense.value - tiled.value).abs() <= 1e-13 * dense.value.abs());
            let (g, t) = (dense.grad.unwrap(), tiled.grad.unwrap());
            let scale = t.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
            assert!(scale > 0.0);
            for (a, b) in g.iter().zip(t.iter()) {
                assert!((a - b).abs() <= 1e-12 * scale, "{distance:?}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn hand_computed_points() {
        // Unit points at 0°, 60°, 90°: d01 = 1, d02 = √2, d12 = √(2 − √3).
        let x = array![[1.0_f64, 0.0], [0.5, 3f64.sqrt() / 2.0], [0.0, 1.0]];
        let y = array![0_i64, 0, 1];
        let c = Contrastive::new().pos_margin(0.25).neg_margin(1.0);
        let out = c.compute(x.view(), y.view(), None, false).unwrap();
        // Positives (0,1),(1,0): 1 − 0.25 each → mean 0.75. Negatives: d02 = √2 > 1 → 0; d12 = 0.5176 → 0.4824, twice.
        let d12 = (2.0 - 3f64.sqrt()).sqrt();
        assert!((out.value - (0.75 + (1.0 - d12))).abs() < 1e-12, "{}", out.value);
    }
}
