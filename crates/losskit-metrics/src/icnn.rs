//! The ICNN score of Mendez-Ruiz et al. (2023) as an embedding-quality metric ([`icnn_score`], [`IcnnState`]).
//!
//! A value-only restatement of the score that `losskit_losses::icnn_score` differentiates (this crate must not depend
//! on the losses crate); both follow the authors' `modified_score` and are tested against the same torch fixtures.

use ndarray::{ArrayView1, ArrayView2};
use rayon::prelude::*;

use losskit_tensor::{Error, Result, check};

use crate::MetricState;

/// ε inside the square root of every distance, √(‖a − b‖² + ε) (the reference's `nearest_neighbors`).
const SQRT_EPS: f64 = 1e-6;
/// ε of every denominator of the score (the reference's `modified_score`).
const EPS: f64 = 1e-7;

/// What one origin row contributes.
#[derive(Clone, Copy, Default)]
struct RowSums {
    sc_count: usize,
    /// Σ over same-class neighbours of the normalised ratio r_ij.
    sc_sum: f64,
    dc_count: usize,
    /// Σ over different-class neighbours of the raw distance.
    dc_sum: f64,
    /// The largest different-class distance of the row (0 when none).
    dc_max: f64,
}

/// The modified ICNN score (Mendez-Ruiz et al. 2023, the authors' `modified_score`) of `embeddings` with `labels`
/// against a `reference` set (default: the embeddings themselves).
///
/// ```text
/// k ← M − 2 if k + 2 ≥ M          ipc ← k + 1 when not given          M = number of reference rows
/// for each row i: its ipc + 1 nearest reference rows by d(a, b) = √(‖a − b‖² + 1e-6), the first dropped
///   (the row itself without a reference set), leaving d_i1 ≤ … ≤ d_i,ipc with same-class flags s_ij
/// n_i  = min{ d_ij : s_ij = 0 } (+∞ if none)     r_ij = (d_ij / (n_i + ε)) / max(1, max_{j≤k} d_ij / (n_i + ε))
/// λ_s  = 1 − Σ_i (Σ_{j≤k} s_ij r_ij / (Σ_{j≤k} s_ij + ε)) / (#{i : Σ_{j≤k} s_ij > 0} + ε)
/// λ_d  = | Σ_i (Σ_{j≤k} (1 − s_ij) d_ij / (G + ε) / (Σ_{j≤k} (1 − s_ij) + ε)) / (#{i : Σ_{j≤k} (1 − s_ij) > 0} + ε)
///          − [no different-class pair in the first k columns] |,   G = max_{i, j≤k} (1 − s_ij) d_ij
/// γ    = (1/N) Σ_i Σ_{j≤k} s_ij / k if k + 2 < M, else 1
/// score = ((λ_s + λ_d) / 2 + γ) / 2 ∈ (0, 1]          ε = 1e-7
/// ```
/// Higher is better: neighbours of the same class (γ), close relative to the nearest other class (λ_s), other
/// classes far (λ_d). The reference's quirks are kept: with a separate reference set the first (nearest) reference
/// row is still dropped; when ipc < k the columns stop at ipc but γ divides by k. Ties in the ranking go to the lower
/// reference index (without a reference set, a row itself comes first). Cost O(N · M · D), rows in parallel.
///
/// # Parameters
/// * `k`: neighbours scored, ≥ 1 (the reference's default is 4); clamped to M − 2.
/// * `ipc`: neighbours searched, 1..=M − 1; `None` = k + 1.
///
/// # Errors
/// [`Error::Parameter`] for k = 0 or a bad ipc; [`Error::Empty`], [`Error::Shape`], [`Error::NonFinite`];
/// [`Error::Degenerate`] for fewer than 3 reference rows.
///
/// # Examples
/// ```
/// let x = ndarray::array![[0.0_f64, 0.0], [0.1, 0.3], [0.2, 0.1], [5.0, 5.0], [5.3, 5.1], [5.1, 4.8]];
/// let y = ndarray::array![0_i64, 0, 0, 1, 1, 1];
/// let score = losskit_metrics::icnn_score(x.view(), y.view(), None, 2, None)?;
/// assert!(score > 0.5 && score <= 1.0);
/// # Ok::<(), losskit_metrics::Error>(())
/// ```
///
/// # References
/// Mendez-Ruiz, Gonzalez-Zapata, Reyes-Amezcua, Flores-Araiza, Lopez-Tiro, Mendez-Vazquez, Ochoa-Ruiz (2023), *SuSana Distancia is all
/// you need*, arXiv:2305.09062 (docs/papers.md key `mendezruiz2023susana`); maumruiz/FSL-Loss
/// `algorithms/icnn_loss.py` `modified_score`. It supersedes the from-memory §5.2 of
/// spec/metric-learning-samplers-metrics.md.
pub fn icnn_score(
    embeddings: ArrayView2<'_, f64>,
    labels: ArrayView1<'_, i64>,
    reference: Option<(ArrayView2<'_, f64>, ArrayView1<'_, i64>)>,
    k: usize,
    ipc: Option<usize>,
) -> Result<f64> {
    check::non_empty("embeddings", embeddings.nrows())?;
    if embeddings.ncols() == 0 {
        return Err(Error::Shape {
            arg: "embeddings",
            expected: "[N, D] with D ≥ 1".into(),
            got: vec![embeddings.nrows(), 0],
        });
    }
    check::finite("embeddings", &embeddings)?;
    check::shape("labels", labels.shape(), &[Some(embeddings.nrows())])?;
    if let Some((r, rl)) = reference {
        check::non_empty("reference", r.nrows())?;
        check::shape("reference", r.shape(), &[None, Some(embeddings.ncols())])?;
        check::finite("reference", &r)?;
        check::shape("reference_labels", rl.shape(), &[Some(r.nrows())])?;
    }
    score_unchecked(embeddings, labels, reference, k, ipc)
}

fn score_unchecked(
    o: ArrayView2<'_, f64>,
    yo: ArrayView1<'_, i64>,
    reference: Option<(ArrayView2<'_, f64>, ArrayView1<'_, i64>)>,
    k: usize,
    ipc: Option<usize>,
) -> Result<f64> {
    let same_set = reference.is_none();
    let (t, yt) = reference.unwrap_or((o, yo));
    let (n, m) = (o.nrows(), t.nrows());
    let (k, ipc) = clamp_k_ipc(k, ipc, m)?;
    // The ipc + 1 nearest reference rows of each row with the first dropped: with the set itself as reference the
    // first is the row itself (distance 0, first among ties), so the exact search excluding self gives the rest; with
    // a separate reference the nearest reference row is dropped, as in the authors' code. Ties: smaller index first.
    let nn = if same_set {
        crate::knn(o, t, ipc, crate::Distance::Euclidean, true)?
    } else {
        crate::knn(o, t, ipc + 1, crate::Distance::Euclidean, false)?
    };
    let skip = usize::from(!same_set);
    let cols = nn.indices.ncols();
    // `knn` builds its matrices in standard layout, so the flat view exists (empty otherwise, caught below).
    let flat = nn.indices.as_slice().unwrap_or(&[]);
    if flat.len() != n * cols {
        return Err(Error::Degenerate { what: "icnn score: internal neighbour layout".into() });
    }
    Ok(from_neighbors(o, yo, t, yt, k, ipc, |i| &flat[i * cols + skip..(i + 1) * cols]))
}

/// The clamped k and the effective ipc of a score over `m` reference rows.
pub(crate) fn clamp_k_ipc(k: usize, ipc: Option<usize>, m: usize) -> Result<(usize, usize)> {
    if k == 0 {
        return Err(Error::Parameter { name: "k", value: 0.0, reason: "must be ≥ 1" });
    }
    if m < 3 {
        return Err(Error::Degenerate {
            what: format!("icnn score needs at least 3 reference rows (k is clamped to rows − 2 ≥ 1), got {m}"),
        });
    }
    let k = if k + 2 >= m { m - 2 } else { k };
    let ipc = ipc.unwrap_or(k + 1);
    if ipc == 0 || ipc + 1 > m {
        return Err(Error::Parameter {
            name: "ipc",
            value: ipc as f64,
            reason: "must be ≥ 1 and at most the number of reference rows minus 1",
        });
    }
    Ok((k, ipc))
}

/// The score from each row's `ipc` scored neighbours (reference row indices, nearest first, the dropped first one
/// already removed), with the distances √(‖a − b‖² + 1e-6) recomputed here in f64; `k` and `ipc` as returned by
/// [`clamp_k_ipc`].
pub(crate) fn from_neighbors<'n>(
    o: ArrayView2<'_, f64>,
    yo: ArrayView1<'_, i64>,
    t: ArrayView2<'_, f64>,
    yt: ArrayView1<'_, i64>,
    k: usize,
    ipc: usize,
    neighbors: impl Fn(usize) -> &'n [usize] + Sync,
) -> f64 {
    let (n, m) = (o.nrows(), t.nrows());
    let kk = k.min(ipc);
    let distance = |a: ArrayView1<'_, f64>, b: ArrayView1<'_, f64>| {
        (a.iter().zip(b.iter()).map(|(x, y)| (x - y) * (x - y)).sum::<f64>() + SQRT_EPS).sqrt()
    };
    let rows: Vec<RowSums> = (0..n)
        .into_par_iter()
        .map(|i| {
            let oi = o.row(i);
            let nb: Vec<(f64, usize)> = neighbors(i).iter().map(|&j| (distance(oi, t.row(j)), j)).collect();
            let y = yo[i];
            // Sorted ascending: the first different-class neighbour is the nearest one.
            let den = nb.iter().find(|c| yt[c.1] != y).map_or(f64::INFINITY, |c| c.0 + EPS);
            let rmax = nb.iter().take(kk).map(|c| c.0 / den).fold(f64::NEG_INFINITY, f64::max);
            let norm = rmax.max(1.0);
            let mut s = RowSums::default();
            for c in nb.iter().take(kk) {
                if yt[c.1] == y {
                    s.sc_count += 1;
                    s.sc_sum += c.0 / den / norm;
                } else {
                    s.dc_count += 1;
                    s.dc_sum += c.0;
                    s.dc_max = s.dc_max.max(c.0);
                }
            }
            s
        })
        .collect();
    let nz_sc = rows.iter().filter(|r| r.sc_count > 0).count() as f64;
    let nz_dc = rows.iter().filter(|r| r.dc_count > 0).count() as f64;
    let lambda_same = 1.0 - rows.iter().map(|r| r.sc_sum / (r.sc_count as f64 + EPS)).sum::<f64>() / (nz_sc + EPS);
    let gden = rows.iter().map(|r| r.dc_max).fold(0.0, f64::max) + EPS;
    let other = rows.iter().map(|r| r.dc_sum / gden / (r.dc_count as f64 + EPS)).sum::<f64>() / (nz_dc + EPS);
    let lambda_other = (other + if nz_dc > 0.0 { 0.0 } else { -1.0 }).abs();
    let gamma = if k + 2 < m { rows.iter().map(|r| r.sc_count as f64 / k as f64).sum::<f64>() / n as f64 } else { 1.0 };
    ((lambda_same + lambda_other) / 2.0 + gamma) / 2.0
}

/// The ICNN score as a mergeable state: it keeps every embedding it is given (the score needs all the
/// neighbourhoods at once) and computes [`icnn_score`] at the end. Merging appends the other state's rows, so the
/// result is that of one pass over all the batches (up to the order of floating-point sums and, for exactly tied
/// distances, the tie-break by index).
///
/// # Examples
/// ```
/// use losskit_metrics::{IcnnState, MetricState};
/// let mut a = IcnnState::new(4, None)?;
/// a.update(ndarray::array![[0.0_f64], [0.1], [0.2]].view(), ndarray::array![0_i64, 0, 0].view())?;
/// let mut b = IcnnState::new(4, None)?;
/// b.update(ndarray::array![[5.0_f64], [5.1], [5.3]].view(), ndarray::array![1_i64, 1, 1].view())?;
/// a.merge(&b)?;
/// assert!(a.compute()? > 0.9);
/// # Ok::<(), losskit_metrics::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct IcnnState {
    k: usize,
    ipc: Option<usize>,
    dim: Option<usize>,
    embeddings: Vec<f64>,
    labels: Vec<i64>,
    reference: Vec<f64>,
    reference_labels: Vec<i64>,
}

impl IcnnState {
    /// An empty state scoring k neighbours (the reference's default is 4) out of `ipc` searched (`None` = k + 1).
    ///
    /// # Errors
    /// [`Error::Parameter`] for k = 0 or ipc = 0.
    pub fn new(k: usize, ipc: Option<usize>) -> Result<Self> {
        if k == 0 {
            return Err(Error::Parameter { name: "k", value: 0.0, reason: "must be ≥ 1" });
        }
        if ipc == Some(0) {
            return Err(Error::Parameter { name: "ipc", value: 0.0, reason: "must be ≥ 1" });
        }
        Ok(Self {
            k,
            ipc,
            dim: None,
            embeddings: Vec::new(),
            labels: Vec::new(),
            reference: Vec::new(),
            reference_labels: Vec::new(),
        })
    }

    fn check_batch(
        &self,
        arg: &'static str,
        x: ArrayView2<'_, f64>,
        labels_arg: &'static str,
        labels: ArrayView1<'_, i64>,
    ) -> Result<usize> {
        let d = self.dim.unwrap_or(x.ncols());
        if d == 0 {
            return Err(Error::Shape { arg, expected: "[N, D] with D ≥ 1".into(), got: x.shape().to_vec() });
        }
        check::shape(arg, x.shape(), &[None, Some(d)])?;
        check::finite(arg, &x)?;
        check::shape(labels_arg, labels.shape(), &[Some(x.nrows())])?;
        Ok(d)
    }

    /// Adds a batch of scored rows `embeddings` [B, D] with `labels` `[B]` (D fixed by the first batch).
    ///
    /// # Errors
    /// [`Error::Shape`] for another D or mismatched labels; [`Error::NonFinite`].
    pub fn update(&mut self, embeddings: ArrayView2<'_, f64>, labels: ArrayView1<'_, i64>) -> Result<()> {
        self.dim = Some(self.check_batch("embeddings", embeddings, "labels", labels)?);
        self.embeddings.extend(embeddings.iter());
        self.labels.extend(labels.iter());
        Ok(())
    }

    /// Adds rows to a separate reference set (the rows the scored ones are ranked against); while it stays empty the
    /// scored rows are ranked against themselves.
    ///
    /// # Errors
    /// As [`update`](Self::update).
    pub fn update_reference(&mut self, embeddings: ArrayView2<'_, f64>, labels: ArrayView1<'_, i64>) -> Result<()> {
        self.dim = Some(self.check_batch("reference", embeddings, "reference_labels", labels)?);
        self.reference.extend(embeddings.iter());
        self.reference_labels.extend(labels.iter());
        Ok(())
    }
}

impl MetricState for IcnnState {
    type Output = f64;

    /// # Errors
    /// [`Error::Parameter`] when k or ipc differ; [`Error::Shape`] when D differs.
    fn merge(&mut self, other: &Self) -> Result<()> {
        if other.k != self.k || other.ipc != self.ipc {
            return Err(Error::Parameter {
                name: "k",
                value: other.k as f64,
                reason: "icnn states with different k or ipc cannot be merged",
            });
        }
        if let (Some(a), Some(b)) = (self.dim, other.dim)
            && a != b
        {
            return Err(Error::Shape { arg: "embeddings", expected: format!("[_, {a}]"), got: vec![0, b] });
        }
        self.dim = self.dim.or(other.dim);
        self.embeddings.extend_from_slice(&other.embeddings);
        self.labels.extend_from_slice(&other.labels);
        self.reference.extend_from_slice(&other.reference);
        self.reference_labels.extend_from_slice(&other.reference_labels);
        Ok(())
    }

    /// The score of every row seen.
    ///
    /// # Errors
    /// [`Error::Empty`] before any row; those of [`icnn_score`].
    fn compute(&self) -> Result<f64> {
        let d = self.dim.unwrap_or(0);
        check::non_empty("embeddings", self.labels.len())?;
        let x = ArrayView2::from_shape((self.labels.len(), d), &self.embeddings)
            .map_err(|_| Error::Input { what: "icnn state: stored rows do not form a matrix".into() })?;
        let y = ArrayView1::from(&self.labels);
        let reference = if self.reference_labels.is_empty() {
            None
        } else {
            let r = ArrayView2::from_shape((self.reference_labels.len(), d), &self.reference)
                .map_err(|_| Error::Input { what: "icnn state: stored reference rows do not form a matrix".into() })?;
            Some((r, ArrayView1::from(&self.reference_labels)))
        };
        score_unchecked(x, y, reference, self.k, self.ipc)
    }

    fn reset(&mut self) {
        self.dim = None;
        self.embeddings.clear();
        self.labels.clear();
        self.reference.clear();
        self.reference_labels.clear();
    }
}
