//! Supervised contrastive loss (Khosla et al. 2020) with pytorch-metric-learning's semantics, multi-view.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayView3};

use losskit_tensor::{Real, Reduction, Result, check};

use super::driver::{self, Counts, Distance, Finish, PairKernel, Row, RowOut, Setup};
use super::multi_similarity::tile_param;
use crate::core::{EmbeddingLoss, EmbeddingOutput, Reference};
use crate::registry::{BuiltLoss, Family, LossEntry, MetricForms, ParamSpec, Params, Range, param};

/// Supervised contrastive loss (SupCon).
///
/// ```text
/// ℓᵢ = −(1/|Pᵢ|)·Σ_{p∈Pᵢ} log( e^{s_ip/τ} / Σ_{a∈Aᵢ} e^{s_ia/τ} )        (0 when Pᵢ is empty)
/// Mean = Σᵢ ℓᵢ / #{ℓᵢ > 0}          (PML's AvgNonZeroReducer: anchors without positives do not count)
/// where s = cosine similarity, Pᵢ = same label (k ≠ i), Aᵢ = every k ≠ i (Pᵢ ∪ Nᵢ)
/// ```
/// Multi-view batches (V augmented views of B samples, [B, V, D]) are stacked into N = V·B rows with repeated labels
/// by [`stack_views`] (view-major, the order of the official code's `cat(unbind(features, 1))`), so each anchor's
/// other views are among its positives. With a distance instead of a similarity, −d replaces s.
///
/// The official code scales ℓᵢ by τ/τ_base and averages over every anchor; with τ_base = τ and every anchor having
/// a positive (always true with V ≥ 2 views) the two agree.
///
/// # Parameters
/// * `temperature`: τ > 0, default 0.1 (PML `SupConLoss(temperature=0.1)`).
/// * `distance`: default [`Distance::Cosine`]. * `tile`: rows per tile, 0 = automatic.
/// * `reduction`: `Mean` as above, `Sum` = Σᵢ ℓᵢ, `None` = (ℓᵢ)ᵢ.
///
/// PML returns 0 when the batch has no positive or no negative pair, or at most one of each; so do we.
///
/// # Shapes
/// `embeddings` [N, D], `labels` `[N]`; optional reference set; gradient [N, D].
///
/// # Gradient
/// ```text
/// ∂ℓᵢ/∂s_ia = (1/τ)·(q_ia − [a ∈ Pᵢ]/|Pᵢ|),     q_ia = softmax_{a∈Aᵢ}(s_ia/τ)
/// ```
/// to both ends of each pair, then through the normalisation.
///
/// # Errors
/// [`Error::Parameter`](losskit_tensor::Error::Parameter) for τ ≤ 0; [`Error::Shape`](losskit_tensor::Error::Shape), [`Error::Empty`](losskit_tensor::Error::Empty), [`Error::NonFinite`](losskit_tensor::Error::NonFinite).
///
/// # Examples
/// ```
/// use losskit_losses::{EmbeddingLoss, SupCon};
/// // Spec §6.1: two samples, two views each, τ = 0.5.
/// let z = ndarray::array![[1.0_f64, 0.0], [0.0, 1.0], [0.6, 0.8], [0.8, 0.6]];
/// let y = ndarray::array![0_i64, 1, 0, 1];
/// let out = SupCon::new().temperature(0.5).compute(z.view(), y.view(), None, false)?;
/// assert!((out.value - 1.270714).abs() < 1e-6);
/// # Ok::<(), losskit_losses::Error>(())
/// ```
///
/// # References
/// Khosla, Teterwak, Wang, Sarna, Tian, Isola, Maschinot, Liu, Krishnan (2020), *Supervised Contrastive Learning*,
/// NeurIPS, arXiv:2004.11362 (docs/papers.md key `khosla2020supervised`); defaults and reducer of
/// pytorch-metric-learning 2.x `SupConLoss`.
#[derive(Clone, Debug, PartialEq)]
pub struct SupCon {
    /// τ > 0. Default 0.1.
    pub temperature: f64,
    /// Default [`Distance::Cosine`].
    pub distance: Distance,
    /// Rows per tile, 0 = automatic. Default 0.
    pub tile: usize,
    /// Default [`Reduction::Mean`].
    pub reduction: Reduction,
}

impl Default for SupCon {
    fn default() -> Self {
        Self { temperature: 0.1, distance: Distance::Cosine, tile: 0, reduction: Reduction::Mean }
    }
}

impl SupCon {
    /// PML's defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// τ (default 0.1).
    pub fn temperature(mut self, v: f64) -> Self {
        self.temperature = v;
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
    /// [`Error::Parameter`](losskit_tensor::Error::Parameter) naming `temperature`.
    pub fn check(&self) -> Result<()> {
        check::greater_than("temperature", self.temperature, 0.0)
    }

    /// Builds the config from registry parameters (and checks it).
    ///
    /// # Errors
    /// As [`SupCon::check`].
    pub fn from_params(p: &Params) -> Result<Self> {
        let cfg = Self {
            temperature: p.f64("temperature")?,
            distance: Distance::parse(p.text("distance")?)?,
            tile: tile_param(p)?,
            reduction: p.reduction(),
        };
        cfg.check()?;
        Ok(cfg)
    }
}

/// Stacks multi-view features [B, V, D] into rows [V·B, D] (all first views, then all second views, …) with the
/// labels `[B]` repeated V times.
///
/// # Errors
/// [`Error::Shape`](losskit_tensor::Error::Shape) when `labels` is not `[B]`; [`Error::Empty`](losskit_tensor::Error::Empty) for B = 0 or V = 0.
pub fn stack_views<F: Real>(
    features: ArrayView3<'_, F>,
    labels: ArrayView1<'_, i64>,
) -> Result<(Array2<F>, Array1<i64>)> {
    let (b, v, d) = features.dim();
    check::non_empty("features", b * v)?;
    check::shape("labels", labels.shape(), &[Some(b)])?;
    let rows = Array2::from_shape_fn((v * b, d), |(r, k)| features[[r % b, r / b, k]]);
    let l = Array1::from_shape_fn(v * b, |r| labels[r % b]);
    Ok((rows, l))
}

struct Kernel<F> {
    inv_t: F,
    mean: bool,
}

impl<F: Real> PairKernel<F> for Kernel<F> {
    fn zero(&self, c: &Counts) -> bool {
        c.at_most_one_pair_each() || c.pos_pairs == 0 || c.neg_pairs == 0
    }

    // Inlined so that the driver's SIMD-dispatched row passes compile this body for their instruction set.
    #[inline(always)]
    fn row(&self, row: &Row<'_, F>, _stats: &[f64; 4], ds: Option<&mut [F]>) -> RowOut {
        let r = row.v.len();
        let v = row.v;
        let k = row.sign * self.inv_t;
        let w = |vj: F| row.sign * vj * self.inv_t;
        // Positives: the few same-label columns but the anchor (scalar); the softmax runs over every column but the
        // anchor's, swept as the (at most two) runs around it with branch-free, vectorised loops.
        let pos: Vec<usize> = driver::same_label_cols(row).into_iter().filter(|&j| Some(j) != row.self_col).collect();
        let np = pos.len();
        if np == 0 {
            return RowOut::default();
        }
        let sum_pos: f64 = pos.iter().map(|&j| w(v[j]).f64()).sum();
        let cuts: &[usize] = match &row.self_col {
            Some(c) => std::slice::from_ref(c),
            None => &[],
        };
        let runs: Vec<(usize, usize)> = driver::runs_between(cuts, r).collect();
        let mut m = F::neg_infinity();
        for &(j0, j1) in &runs {
            m = driver::lanes_max(&v[j0..j1], m, w);
        }
        let e = |vj: F| (w(vj) - m).fast_exp();
        let mut z = F::zero();
        match ds {
            Some(g) => {
                for &(j0, j1) in &runs {
                    for (gj, &vj) in g[j0..j1].iter_mut().zip(&v[j0..j1]) {
                        *gj = e(vj);
                    }
                    z += driver::lanes_sum(&g[j0..j1], |x| x);
                }
                // ∂ℓ/∂v = (σ/τ)·(q − [pos]/|P|).
                let (inv_z, inv_p) = (F::one() / z, F::c(1.0 / np as f64));
                for &(j0, j1) in &runs {
                    g[j0..j1].iter_mut().for_each(|x| *x = k * (*x * inv_z));
                }
                for &j in &pos {
                    g[j] -= k * inv_p;
                }
            }
            None => {
                for &(j0, j1) in &runs {
                    z += driver::lanes_sum(&v[j0..j1], e);
                }
            }
        }
        let lse = m.f64() + z.f64().ln();
        let loss = lse - sum_pos / np as f64;
        RowOut { loss, tally: [loss, if loss > 0.0 { 1.0 } else { 0.0 }, 0.0, 0.0] }
    }

    fn finish(&self, tally: &[f64; 4], _stats: &[f64; 4], _c: &Counts) -> Finish {
        if !self.mean {
            return Finish { value: tally[0], grad_scale: 1.0, zero: false };
        }
        if tally[1] > 0.0 {
            Finish { value: tally[0] / tally[1], grad_scale: 1.0 / tally[1], zero: false }
        } else {
            Finish::zero()
        }
    }
}

impl<F: Real> EmbeddingLoss<F> for SupCon {
    fn compute(
        &self,
        embeddings: ArrayView2<'_, F>,
        labels: ArrayView1<'_, i64>,
        reference: Option<Reference<'_, F>>,
        grad: bool,
    ) -> Result<EmbeddingOutput<F>> {
        self.check()?;
        let k = Kernel { inv_t: F::c(1.0 / self.temperature), mean: self.reduction == Reduction::Mean };
        driver::run(&k, Setup { distance: self.distance, tile: self.tile }, embeddings, labels, reference, grad)
    }
}

const PARAMS: &[ParamSpec] = &[
    param("temperature", "0.1", Range::Positive, "τ: softmax temperature (PML temperature)"),
    param("distance", "cosine", Range::Choice(Distance::NAMES), "cosine similarity (PML default) or Euclidean"),
    param("tile", "0", Range::IntAtLeast(0), "rows per tile of the pair matrix (0 = automatic)"),
];

fn build(p: &Params) -> Result<BuiltLoss> {
    SupCon::from_params(p).map(|_| BuiltLoss::default())
}

pub(crate) fn build_metric(p: &Params) -> Result<MetricForms> {
    Ok(MetricForms { embedding: Some(Box::new(SupCon::from_params(p)?)), proxy: None })
}

/// Registry entry.
pub(crate) const ENTRY: LossEntry = LossEntry {
    name: "supcon",
    family: Family::Embedding,
    summary: "supervised contrastive loss, multi-view via stacked rows (PML semantics: non-zero anchor averaging)",
    paper: "khosla2020supervised",
    reference: "Khosla et al. (2020), Supervised Contrastive Learning, NeurIPS, arXiv:2004.11362",
    params: PARAMS,
    build,
};

#[cfg(test)]
mod tests {
    use super::*;
    use losskit_tensor::Error;
    use ndarray::{Array3, array};

    #[test]
    fn temperature_must_be_positive() {
        assert!(matches!(SupCon::new().temperature(0.0).check(), Err(Error::Parameter { name: "temperature", .. })));
    }

    #[test]
    fn spec_oracle_per_anchor() {
        let z = array![[1.0_f64, 0.0], [0.0, 1.0], [0.6, 0.8], [0.8, 0.6]];
        let y = array![0_i64, 1, 0, 1];
        let out = SupCon::new().temperature(0.5).compute(z.view(), y.view(), None, false).unwrap();
        let want = [1.027123, 1.027123, 1.514304, 1.514304];
        for (g, w) in out.per_sample.unwrap().iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{g} vs {w}");
        }
    }

    #[test]
    fn views_stack_view_major() {
        let f = Array3::from_shape_fn((2, 2, 1), |(b, v, _)| (10 * b + v) as f64);
        let (rows, l) = stack_views(f.view(), array![7_i64, 9].view()).unwrap();
        assert_eq!(rows.column(0).to_vec(), vec![0.0, 10.0, 1.0, 11.0]);
        assert_eq!(l.to_vec(), vec![7, 9, 7, 9]);
    }
}
