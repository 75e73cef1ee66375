//! Ranking metrics: ROC curve, ROC-AUC (with scikit-learn's `max_fpr` partial AUC and McClish correction),
//! precision-recall curve and average precision, for binary scores ([`BinaryRanking`]) and multiclass score
//! matrices ([`MulticlassRanking`], one-vs-rest and one-vs-one), reproducing scikit-learn's `sklearn.metrics`
//! functions including its handling of tied scores; and a bounded-memory binned variant ([`BinnedRanking`]) with
//! fixed thresholds as torchmetrics' `thresholds=` mode.
//!
//! The exact states keep every (score, label, weight) and sort at compute time: merging is concatenation and the
//! result does not depend on how the data was split (bit for bit without weights; with weights, sums of tied
//! weights may be added in another order, 1e-15 relative). Scores are sorted as 64-bit integer keys that follow
//! the order of the floats (−0.0 and 0.0 are one value, as numpy's `diff` sees them), on the rayon pool for large
//! inputs.
//!
//! scikit-learn's curve (`confusion_matrix_at_thresholds`): scores sorted descending, one point per distinct score
//! s with `tps(s) = Σ_{score ≥ s} w·[y = 1]` and `fps(s) = Σ_{score ≥ s} w·[y = 0]`; zero-weight samples are dropped.
//! ```text
//! ROC-AUC = Σ_i (fpr_i − fpr_{i−1}) (tpr_i + tpr_{i−1}) / 2       (trapezoids, from (0, 0))
//! AP      = Σ_i (recall_i − recall_{i−1}) · precision_i              (no interpolation)
//! ```

use ndarray::{ArrayView1, ArrayView2};
use rayon::prelude::*;

use losskit_tensor::{Error, Result, check};

use crate::{Average, MetricState, Score};

/// Inputs at least this long are sorted on the rayon pool.
const PAR_SORT_MIN: usize = 1 << 16;

/// A 64-bit key whose unsigned order is the order of the (finite) float, with −0.0 mapped to 0.0.
#[inline]
fn key(x: f64) -> u64 {
    let b = (x + 0.0).to_bits();
    if b >> 63 == 1 { !b } else { b | (1 << 63) }
}

/// The float of a [`key`].
#[inline]
fn unkey(k: u64) -> f64 {
    f64::from_bits(if k >> 63 == 1 { k & !(1 << 63) } else { !k })
}

/// A sortable sample: its key and weight.
trait Item: Copy + Send + Sync {
    fn key(self) -> u64;
    fn weight(self) -> f64;
}

impl Item for u64 {
    #[inline]
    fn key(self) -> u64 {
        self
    }
    #[inline]
    fn weight(self) -> f64 {
        1.0
    }
}

impl Item for (u64, f64) {
    #[inline]
    fn key(self) -> u64 {
        self.0
    }
    #[inline]
    fn weight(self) -> f64 {
        self.1
    }
}

fn sort_desc<T: Item>(v: &mut [T]) {
    if v.len() >= PAR_SORT_MIN {
        v.par_sort_unstable_by(|a, b| b.key().cmp(&a.key()));
    } else {
        v.sort_unstable_by_key(|a| std::cmp::Reverse(a.key()));
    }
}

/// Sorts keys descending: an LSD radix sort (6 passes of 11 bits, skipping a pass whose digit is the same for every
/// key) for long inputs, pdqsort for short ones.
fn radix_sort_desc(v: &mut Vec<u64>) {
    const BITS: usize = 11;
    const BUCKETS: usize = 1 << BITS;
    const PASSES: usize = 64_usize.div_ceil(BITS);
    let n = v.len();
    if n < 1 << 12 {
        v.sort_unstable_by(|a, b| b.cmp(a));
        return;
    }
    // Sort the complements ascending.
    v.iter_mut().for_each(|x| *x = !*x);
    let mut hist = vec![0usize; PASSES * BUCKETS];
    for &x in v.iter() {
        for p in 0..PASSES {
            hist[p * BUCKETS + ((x >> (p * BITS)) as usize & (BUCKETS - 1))] += 1;
        }
    }
    let mut buf = vec![0u64; n];
    for p in 0..PASSES {
        let h = &mut hist[p * BUCKETS..(p + 1) * BUCKETS];
        if h.contains(&n) {
            continue;
        }
        let mut sum = 0;
        for c in h.iter_mut() {
            let t = *c;
            *c = sum;
            sum += t;
        }
        for &x in v.iter() {
            let d = (x >> (p * BITS)) as usize & (BUCKETS - 1);
            buf[h[d]] = x;
            h[d] += 1;
        }
        std::mem::swap(v, &mut buf);
    }
    v.iter_mut().for_each(|x| *x = !*x);
}

/// Calls `f(fps, tps, key)` at each distinct score, from the highest; `pos`, `neg` sorted descending.
fn walk<T: Item>(pos: &[T], neg: &[T], mut f: impl FnMut(f64, f64, u64)) {
    let (mut i, mut j, mut tp, mut fp) = (0, 0, 0.0, 0.0);
    loop {
        let k = match (pos.get(i), neg.get(j)) {
            (Some(a), Some(b)) => a.key().max(b.key()),
            (Some(a), None) => a.key(),
            (None, Some(b)) => b.key(),
            (None, None) => return,
        };
        while let Some(a) = pos.get(i).filter(|a| a.key() == k) {
            tp += a.weight();
            i += 1;
        }
        while let Some(b) = neg.get(j).filter(|b| b.key() == k) {
            fp += b.weight();
            j += 1;
        }
        f(fp, tp, k);
    }
}

/// The points of scikit-learn's `confusion_matrix_at_thresholds` (formerly `_binary_clf_curve`): for each distinct
/// score, descending, the (weighted) false and true positives at or above it.
#[derive(Clone, Debug, PartialEq)]
pub struct ClfCurve {
    /// False positives with score ≥ threshold.
    pub fps: Vec<f64>,
    /// True positives with score ≥ threshold.
    pub tps: Vec<f64>,
    /// The distinct scores, descending.
    pub thresholds: Vec<f64>,
}

/// scikit-learn's `roc_curve` output: false and true positive rates at decreasing thresholds, starting at (0, 0)
/// with threshold +∞.
#[derive(Clone, Debug, PartialEq)]
pub struct RocCurve {
    /// False positive rate, increasing.
    pub fpr: Vec<f64>,
    /// True positive rate, increasing.
    pub tpr: Vec<f64>,
    /// Thresholds, decreasing; the first is +∞.
    pub thresholds: Vec<f64>,
}

/// scikit-learn's `precision_recall_curve` output: precision and recall at increasing thresholds, with a last point
/// (precision 1, recall 0) that has no threshold.
#[derive(Clone, Debug, PartialEq)]
pub struct PrCurve {
    /// Precision; one longer than `thresholds`, ends with 1.
    pub precision: Vec<f64>,
    /// Recall, decreasing; ends with 0.
    pub recall: Vec<f64>,
    /// Thresholds, increasing.
    pub thresholds: Vec<f64>,
}

/// Sorted keys of one binary problem, weighted or not.
enum Sorted {
    Plain { pos: Vec<u64>, neg: Vec<u64> },
    Weighted { pos: Vec<(u64, f64)>, neg: Vec<(u64, f64)> },
}

impl Sorted {
    fn walk(&self, f: impl FnMut(f64, f64, u64)) {
        match self {
            Sorted::Plain { pos, neg } => walk(pos, neg, f),
            Sorted::Weighted { pos, neg } => walk(pos, neg, f),
        }
    }

    /// (Σ positive weights, Σ negative weights).
    fn totals(&self) -> (f64, f64) {
        match self {
            Sorted::Plain { pos, neg } => (pos.len() as f64, neg.len() as f64),
            Sorted::Weighted { pos, neg } => {
                (pos.iter().map(|p| p.1).sum::<f64>(), neg.iter().map(|p| p.1).sum::<f64>())
            }
        }
    }

    fn plain(mut pos: Vec<u64>, mut neg: Vec<u64>) -> Self {
        rayon::join(|| radix_sort_desc(&mut pos), || radix_sort_desc(&mut neg));
        Sorted::Plain { pos, neg }
    }

    fn clf_curve(&self) -> ClfCurve {
        let (mut fps, mut tps, mut thresholds) = (vec![], vec![], vec![]);
        self.walk(|fp, tp, k| {
            fps.push(fp);
            tps.push(tp);
            thresholds.push(unkey(k));
        });
        ClfCurve { fps, tps, thresholds }
    }

    /// Needs at least one positive and one negative.
    fn check_two_classes(&self, what: &str) -> Result<(f64, f64)> {
        let (p, n) = self.totals();
        if p <= 0.0 || n <= 0.0 {
            return Err(Error::Degenerate {
                what: format!(
                    "{what} needs both classes in y_true, got {} positive and {} negative samples (weight)",
                    p, n
                ),
            });
        }
        Ok((p, n))
    }

    fn roc_auc(&self, max_fpr: Option<f64>) -> Result<f64> {
        let (p, n) = self.check_two_classes("roc_auc")?;
        match max_fpr {
            Some(m) if m != 1.0 => {
                if !(m > 0.0 && m <= 1.0) {
                    return Err(Error::Parameter { name: "max_fpr", value: m, reason: "must be in (0, 1]" });
                }
                let roc = roc_from_curve(&self.clf_curve(), true);
                Ok(partial_auc(&roc.fpr, &roc.tpr, m))
            }
            _ => {
                // Trapezoids on the (fps, tps) steps, scaled once.
                let (mut area, mut fp0, mut tp0) = (0.0, 0.0, 0.0);
                self.walk(|fp, tp, _| {
                    area += (fp / n - fp0 / n) * (tp / p + tp0 / p) / 2.0;
                    fp0 = fp;
                    tp0 = tp;
                });
                Ok(area)
            }
        }
    }

    fn average_precision(&self) -> Result<f64> {
        let (p, _) = self.totals();
        if p <= 0.0 {
            return Err(Error::Degenerate {
                what: "average_precision needs at least one positive sample in y_true (recall is undefined)".into(),
            });
        }
        let (mut ap, mut r0) = (0.0, 0.0);
        self.walk(|fp, tp, _| {
            let r = tp / p;
            ap += (r - r0) * (tp / (tp + fp));
            r0 = r;
        });
        Ok(ap.max(0.0))
    }
}

/// scikit-learn's `roc_curve` from the clf curve.
fn roc_from_curve(c: &ClfCurve, drop_intermediate: bool) -> RocCurve {
    let m = c.fps.len();
    let keep: Vec<usize> = if drop_intermediate && m > 2 {
        (0..m)
            .filter(|&i| {
                i == 0 || i == m - 1 || {
                    let d2 = |v: &[f64]| v[i + 1] - v[i] - (v[i] - v[i - 1]);
                    d2(&c.fps) != 0.0 || d2(&c.tps) != 0.0
                }
            })
            .collect()
    } else {
        (0..m).collect()
    };
    let mut fps = vec![0.0];
    let mut tps = vec![0.0];
    let mut thresholds = vec![f64::INFINITY];
    for &i in &keep {
        fps.push(c.fps[i]);
        tps.push(c.tps[i]);
        thresholds.push(c.thresholds[i]);
    }
    let rate = |v: Vec<f64>| {
        let last = v.last().copied().unwrap_or(0.0);
        if last <= 0.0 { vec![f64::NAN; v.len()] } else { v.iter().map(|x| x / last).collect() }
    };
    RocCurve { fpr: rate(fps), tpr: rate(tps), thresholds }
}

/// Trapezoidal area under (x, y), x increasing (scikit-learn's `auc`).
fn trapezoid(x: &[f64], y: &[f64]) -> f64 {
    x.windows(2).zip(y.windows(2)).map(|(dx, yy)| (dx[1] - dx[0]) * (yy[1] + yy[0]) / 2.0).sum()
}

/// scikit-learn's partial AUC up to `max_fpr` with McClish correction.
fn partial_auc(fpr: &[f64], tpr: &[f64], max_fpr: f64) -> f64 {
    // searchsorted(fpr, max_fpr, 'right'): the first index with fpr > max_fpr; fpr ends at 1 > max_fpr.
    let stop = fpr.partition_point(|&f| f <= max_fpr).clamp(1, fpr.len() - 1);
    let (x0, x1, y0, y1) = (fpr[stop - 1], fpr[stop], tpr[stop - 1], tpr[stop]);
    // np.interp
    let y = if x1 == x0 { y0 } else { (y1 - y0) / (x1 - x0) * (max_fpr - x0) + y0 };
    let mut x: Vec<f64> = fpr[..stop].to_vec();
    let mut yv: Vec<f64> = tpr[..stop].to_vec();
    x.push(max_fpr);
    yv.push(y);
    let pauc = trapezoid(&x, &yv);
    let min_area = 0.5 * max_fpr * max_fpr;
    0.5 * (1.0 + (pauc - min_area) / (max_fpr - min_area))
}

/// scikit-learn's `precision_recall_curve` from the clf curve.
fn pr_from_curve(c: &ClfCurve, drop_intermediate: bool) -> PrCurve {
    let m = c.tps.len();
    let keep: Vec<usize> = if drop_intermediate && m > 2 {
        (0..m).filter(|&i| i == 0 || i == m - 1 || c.tps[i] != c.tps[i - 1] || c.tps[i + 1] != c.tps[i]).collect()
    } else {
        (0..m).collect()
    };
    let last = c.tps.last().copied().unwrap_or(0.0);
    let mut precision: Vec<f64> = keep
        .iter()
        .rev()
        .map(|&i| {
            let ps = c.tps[i] + c.fps[i];
            if ps != 0.0 { c.tps[i] / ps } else { 0.0 }
        })
        .collect();
    let mut recall: Vec<f64> = keep.iter().rev().map(|&i| if last == 0.0 { 1.0 } else { c.tps[i] / last }).collect();
    precision.push(1.0);
    recall.push(0.0);
    PrCurve { precision, recall, thresholds: keep.iter().rev().map(|&i| c.thresholds[i]).collect() }
}

/// Validates a binary batch: lengths, finite scores, 0/1 labels, weights.
fn check_binary(
    y_true: ArrayView1<'_, i64>,
    y_score: ArrayView1<'_, f64>,
    w: Option<ArrayView1<'_, f64>>,
) -> Result<()> {
    check::shape("y_score", y_score.shape(), &[Some(y_true.len())])?;
    check::finite("y_score", &y_score)?;
    check::labels("y_true", y_true, 2, None)?;
    if let Some(w) = w {
        check::weights("sample_weight", w, y_true.len())?;
    }
    Ok(())
}

/// Exact mergeable state of the binary ranking metrics: every (score, label, weight) seen.
///
/// Labels are 0 (negative) or 1 (positive, scikit-learn's `pos_label=1`); scores any finite values (higher means more
/// positive); weights optional, finite and ≥ 0 (zero-weight samples are ignored, as scikit-learn does).
///
/// # Examples
/// ```
/// use losskit_metrics::BinaryRanking;
/// let mut r = BinaryRanking::new();
/// r.update(ndarray::array![0_i64, 0, 1, 1].view(), ndarray::array![0.1, 0.4, 0.35, 0.8].view(), None)?;
/// assert_eq!(r.roc_auc(None)?, 0.75);
/// assert!((r.average_precision()? - 0.8333333333333333).abs() < 1e-15);
/// # Ok::<(), losskit_metrics::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BinaryRanking {
    scores: Vec<f64>,
    positive: Vec<bool>,
    /// Empty while every weight is 1.
    weights: Vec<f64>,
}

impl BinaryRanking {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of samples stored.
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    /// Whether no sample has been stored.
    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    /// Adds a batch: labels `y_true` \[N\] in {0, 1}, scores `y_score` \[N\], optional `sample_weight` \[N\].
    /// All-or-nothing.
    ///
    /// # Errors
    /// [`Error::Shape`] for different lengths, [`Error::NonFinite`] for a NaN or infinite score or weight,
    /// [`Error::LabelOutOfRange`] (classes 2) for a label other than 0 or 1, [`Error::Parameter`]-like errors of
    /// `check::weights` for negative weights.
    pub fn update(
        &mut self,
        y_true: ArrayView1<'_, i64>,
        y_score: ArrayView1<'_, f64>,
        sample_weight: Option<ArrayView1<'_, f64>>,
    ) -> Result<()> {
        check_binary(y_true, y_score, sample_weight)?;
        match sample_weight {
            Some(w) => {
                if self.weights.len() < self.scores.len() {
                    self.weights.resize(self.scores.len(), 1.0);
                }
                self.weights.extend(w.iter());
            }
            None if !self.weights.is_empty() => self.weights.extend(std::iter::repeat_n(1.0, y_true.len())),
            None => {}
        }
        self.scores.extend(y_score.iter());
        self.positive.extend(y_true.iter().map(|&t| t == 1));
        Ok(())
    }

    /// Appends another state's samples.
    pub fn merge(&mut self, other: &Self) {
        if !other.weights.is_empty() && self.weights.len() < self.scores.len() {
            self.weights.resize(self.scores.len(), 1.0);
        }
        if other.weights.is_empty() && !self.weights.is_empty() {
            self.weights.extend(std::iter::repeat_n(1.0, other.len()));
        } else {
            self.weights.extend_from_slice(&other.weights);
        }
        self.scores.extend_from_slice(&other.scores);
        self.positive.extend_from_slice(&other.positive);
    }

    /// Forgets every sample.
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    fn sorted(&self) -> Sorted {
        if self.weights.is_empty() {
            let n_pos = self.positive.iter().filter(|&&p| p).count();
            // Branch-free split: write every key to both buffers, advance the one it belongs to.
            let mut pos = vec![0u64; n_pos + 1];
            let mut neg = vec![0u64; self.len() - n_pos + 1];
            let (mut i, mut j) = (0usize, 0usize);
            for (&s, &p) in self.scores.iter().zip(&self.positive) {
                let k = key(s);
                pos[i] = k;
                neg[j] = k;
                i += p as usize;
                j += !p as usize;
            }
            pos.truncate(n_pos);
            neg.truncate(self.len() - n_pos);
            Sorted::plain(pos, neg)
        } else {
            let (mut pos, mut neg) = (vec![], vec![]);
            for ((&s, &p), &w) in self.scores.iter().zip(&self.positive).zip(&self.weights) {
                if w != 0.0 {
                    if p { pos.push((key(s), w)) } else { neg.push((key(s), w)) }
                }
            }
            rayon::join(|| sort_desc(&mut pos), || sort_desc(&mut neg));
            Sorted::Weighted { pos, neg }
        }
    }

    fn non_empty(&self) -> Result<()> {
        if self.is_empty() { Err(Error::Empty { arg: "y_true" }) } else { Ok(()) }
    }

    /// The (fps, tps, thresholds) points of scikit-learn's `confusion_matrix_at_thresholds`.
    ///
    /// # Errors
    /// [`Error::Empty`] when no sample has been seen.
    pub fn clf_curve(&self) -> Result<ClfCurve> {
        self.non_empty()?;
        Ok(self.sorted().clf_curve())
    }

    /// scikit-learn's `roc_curve(y_true, y_score, sample_weight=…, drop_intermediate=…)`: rates NaN when a class is
    /// missing (scikit-learn warns).
    ///
    /// # Errors
    /// [`Error::Empty`] when no sample has been seen.
    pub fn roc_curve(&self, drop_intermediate: bool) -> Result<RocCurve> {
        Ok(roc_from_curve(&self.clf_curve()?, drop_intermediate))
    }

    /// scikit-learn's `precision_recall_curve(y_true, y_score, sample_weight=…, drop_intermediate=…)` (recall 1
    /// everywhere when there is no positive, as scikit-learn).
    ///
    /// # Errors
    /// [`Error::Empty`] when no sample has been seen.
    pub fn precision_recall_curve(&self, drop_intermediate: bool) -> Result<PrCurve> {
        Ok(pr_from_curve(&self.clf_curve()?, drop_intermediate))
    }

    /// Area under the ROC curve (scikit-learn's `roc_auc_score` for binary `y_true`); with `max_fpr = Some(m)`,
    /// m < 1, the McClish-standardised partial AUC over fpr ∈ [0, m]:
    /// ```text
    /// 0.5 · (1 + (pAUC − m²/2) / (m − m²/2))
    /// ```
    ///
    /// # Errors
    /// [`Error::Empty`] when no sample has been seen; [`Error::Degenerate`] when `y_true` holds one class only
    /// (scikit-learn warns and returns NaN); [`Error::Parameter`] for `max_fpr` outside (0, 1].
    pub fn roc_auc(&self, max_fpr: Option<f64>) -> Result<f64> {
        self.non_empty()?;
        self.sorted().roc_auc(max_fpr)
    }

    /// Average precision, `Σ_i (R_i − R_{i−1}) P_i` over the thresholds (scikit-learn's `average_precision_score`).
    ///
    /// # Errors
    /// [`Error::Empty`] when no sample has been seen; [`Error::Degenerate`] when `y_true` has no positive sample
    /// (scikit-learn warns and returns 0).
    pub fn average_precision(&self) -> Result<f64> {
        self.non_empty()?;
        self.sorted().average_precision()
    }
}

/// `compute` gives (ROC-AUC, average precision).
impl MetricState for BinaryRanking {
    type Output = (f64, f64);

    fn merge(&mut self, other: &Self) -> Result<()> {
        BinaryRanking::merge(self, other);
        Ok(())
    }

    fn compute(&self) -> Result<(f64, f64)> {
        let s = {
            self.non_empty()?;
            self.sorted()
        };
        Ok((s.roc_auc(None)?, s.average_precision()?))
    }

    fn reset(&mut self) {
        BinaryRanking::reset(self);
    }
}

/// Binary ROC-AUC in one call: `roc_auc_score(y_true, y_score, sample_weight=…, max_fpr=…)`.
///
/// # Errors
/// As [`BinaryRanking::update`] and [`BinaryRanking::roc_auc`].
pub fn roc_auc_score(
    y_true: ArrayView1<'_, i64>,
    y_score: ArrayView1<'_, f64>,
    sample_weight: Option<ArrayView1<'_, f64>>,
    max_fpr: Option<f64>,
) -> Result<f64> {
    let mut r = BinaryRanking::new();
    r.update(y_true, y_score, sample_weight)?;
    r.roc_auc(max_fpr)
}

/// Binary average precision in one call: `average_precision_score(y_true, y_score, sample_weight=…)`.
///
/// # Errors
/// As [`BinaryRanking::update`] and [`BinaryRanking::average_precision`].
pub fn average_precision_score(
    y_true: ArrayView1<'_, i64>,
    y_score: ArrayView1<'_, f64>,
    sample_weight: Option<ArrayView1<'_, f64>>,
) -> Result<f64> {
    let mut r = BinaryRanking::new();
    r.update(y_true, y_score, sample_weight)?;
    r.average_precision()
}

/// Exact mergeable state of multiclass ranking metrics: labels in `0..n_classes` and a score row per sample.
///
/// One-vs-rest metrics treat class c as positive with scores `y_score[:, c]`; one-vs-one metrics (Hand & Till 2001)
/// average, over class pairs (a, b), the AUCs of a against b on the samples of a or b. As scikit-learn with
/// `labels=None`, every class must occur in `y_true` (it counts the classes from the data).
///
/// # Examples
/// ```
/// use losskit_metrics::{Average, MulticlassRanking};
/// let mut r = MulticlassRanking::new(3)?;
/// let s = ndarray::array![[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.1, 0.3, 0.6], [0.3, 0.4, 0.3]];
/// r.update(ndarray::array![0_i64, 1, 2, 0].view(), s.view())?;
/// assert!(r.roc_auc_ovr(Average::Macro)?.scalar().is_some_and(|auc| auc > 0.8));
/// # Ok::<(), losskit_metrics::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct MulticlassRanking {
    n_classes: usize,
    labels: Vec<u32>,
    /// Row-major [N, C].
    scores: Vec<f64>,
}

impl MulticlassRanking {
    /// An empty state for `n_classes` ≥ 2 classes.
    ///
    /// # Errors
    /// [`Error::Parameter`] when `n_classes` < 2 or ≥ 2³².
    pub fn new(n_classes: usize) -> Result<Self> {
        if n_classes < 2 || n_classes > u32::MAX as usize {
            return Err(Error::Parameter { name: "n_classes", value: n_classes as f64, reason: "must be in 2..2^32" });
        }
        Ok(Self { n_classes, labels: vec![], scores: vec![] })
    }

    /// Number of classes.
    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    /// Number of samples stored.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether no sample has been stored.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Adds a batch: `y_true` \[N\] in `0..n_classes`, `y_score` \[N, n_classes\] finite. All-or-nothing.
    ///
    /// # Errors
    /// [`Error::Shape`], [`Error::NonFinite`], [`Error::LabelOutOfRange`].
    pub fn update(&mut self, y_true: ArrayView1<'_, i64>, y_score: ArrayView2<'_, f64>) -> Result<()> {
        check::shape("y_score", y_score.shape(), &[Some(y_true.len()), Some(self.n_classes)])?;
        check::finite("y_score", &y_score)?;
        check::labels("y_true", y_true, self.n_classes, None)?;
        self.labels.extend(y_true.iter().map(|&t| t as u32));
        self.scores.extend(y_score.iter());
        Ok(())
    }

    /// Appends another state's samples.
    ///
    /// # Errors
    /// [`Error::Shape`] when the class counts differ.
    pub fn merge(&mut self, other: &Self) -> Result<()> {
        if other.n_classes != self.n_classes {
            return Err(Error::Shape {
                arg: "other",
                expected: format!("{} classes", self.n_classes),
                got: vec![other.n_classes],
            });
        }
        self.labels.extend_from_slice(&other.labels);
        self.scores.extend_from_slice(&other.scores);
        Ok(())
    }

    /// Forgets every sample.
    pub fn reset(&mut self) {
        self.labels.clear();
        self.scores.clear();
    }

    /// Support per class.
    pub fn support(&self) -> Vec<u64> {
        let mut s = vec![0u64; self.n_classes];
        for &l in &self.labels {
            s[l as usize] += 1;
        }
        s
    }

    fn check_all_classes(&self) -> Result<Vec<u64>> {
        if self.is_empty() {
            return Err(Error::Empty { arg: "y_true" });
        }
        let support = self.support();
        let missing: Vec<usize> = (0..self.n_classes).filter(|&c| support[c] == 0).collect();
        if !missing.is_empty() {
            return Err(Error::Degenerate {
                what: format!(
                    "number of classes in y_true ({}) not equal to the number of columns in y_score ({}): \
                     classes {missing:?} never occur",
                    self.n_classes - missing.len(),
                    self.n_classes
                ),
            });
        }
        Ok(support)
    }

    /// scikit-learn's check that multiclass ROC-AUC scores are probabilities: rows sum to 1 (`np.allclose`).
    fn check_probabilities(&self) -> Result<()> {
        for (i, row) in self.scores.chunks(self.n_classes).enumerate() {
            let s: f64 = row.iter().sum();
            if (1.0 - s).abs() > 1e-8 + 1e-5 * s.abs() {
                return Err(Error::Input {
                    what: format!(
                        "y_score: rows must be probabilities summing to 1 for multiclass roc_auc; row {i} sums to {s}"
                    ),
                });
            }
        }
        Ok(())
    }

    /// Sorted one-vs-rest problem of class c.
    fn ovr(&self, c: usize) -> Sorted {
        let (mut pos, mut neg) = (vec![], vec![]);
        let k = self.n_classes;
        for (i, &l) in self.labels.iter().enumerate() {
            let s = key(self.scores[i * k + c]);
            if l as usize == c { pos.push(s) } else { neg.push(s) }
        }
        Sorted::plain(pos, neg)
    }

    /// Micro average: every (sample, class) entry as one binary problem.
    fn micro(&self) -> Sorted {
        let k = self.n_classes;
        let (mut pos, mut neg) = (Vec::with_capacity(self.len()), Vec::with_capacity(self.len() * (k - 1)));
        for (i, &l) in self.labels.iter().enumerate() {
            for c in 0..k {
                let s = key(self.scores[i * k + c]);
                if l as usize == c { pos.push(s) } else { neg.push(s) }
            }
        }
        Sorted::plain(pos, neg)
    }

    fn ovr_average(&self, average: Average, metric: impl Fn(&Sorted) -> Result<f64> + Sync) -> Result<Score> {
        let support = self.check_all_classes()?;
        let per_class =
            || -> Result<Vec<f64>> { (0..self.n_classes).into_par_iter().map(|c| metric(&self.ovr(c))).collect() };
        Ok(match average {
            Average::None => Score::PerClass { labels: (0..self.n_classes).collect(), values: per_class()? },
            Average::Macro => Score::Scalar(crate::agreement::np_average(&per_class()?, None)),
            Average::Weighted => {
                let w: Vec<f64> = support.iter().map(|&s| s as f64).collect();
                Score::Scalar(crate::agreement::np_average(&per_class()?, Some(&w)))
            }
            Average::Micro => Score::Scalar(metric(&self.micro())?),
            other => {
                return Err(Error::ParameterText {
                    name: "average".into(),
                    value: other.to_string(),
                    reason: "expected none | micro | macro | weighted for multiclass ranking metrics".into(),
                });
            }
        })
    }

    /// One-vs-rest ROC-AUC (scikit-learn's `roc_auc_score(multi_class='ovr', average=…)`), average none, micro,
    /// macro or weighted (by support). Rows of scores must sum to 1, as scikit-learn requires.
    ///
    /// # Errors
    /// [`Error::Empty`]; [`Error::Degenerate`] when a class never occurs in `y_true`; [`Error::Input`] when a row of
    /// scores does not sum to 1; [`Error::ParameterText`] for another average.
    pub fn roc_auc_ovr(&self, average: Average) -> Result<Score> {
        self.check_probabilities()?;
        self.ovr_average(average, |s| s.roc_auc(None))
    }

    /// One-vs-one ROC-AUC (Hand & Till; scikit-learn's `roc_auc_score(multi_class='ovo', average=…)`): the mean over
    /// class pairs a < b of (AUC(a vs b on scores[:, a]) + AUC(b vs a on scores[:, b])) / 2, plain (macro) or
    /// weighted by the fraction of samples in the pair (weighted).
    ///
    /// # Errors
    /// As [`roc_auc_ovr`](Self::roc_auc_ovr); averages other than macro and weighted are refused.
    pub fn roc_auc_ovo(&self, average: Average) -> Result<f64> {
        self.check_probabilities()?;
        self.check_all_classes()?;
        if !matches!(average, Average::Macro | Average::Weighted) {
            return Err(Error::ParameterText {
                name: "average".into(),
                value: average.to_string(),
                reason: "expected macro | weighted for one-vs-one roc_auc".into(),
            });
        }
        let k = self.n_classes;
        let pairs: Vec<(usize, usize)> = (0..k).flat_map(|a| (a + 1..k).map(move |b| (a, b))).collect();
        let n = self.len() as f64;
        let results: Vec<(f64, f64)> = pairs
            .par_iter()
            .map(|&(a, b)| -> Result<(f64, f64)> {
                let side = |c: usize| {
                    let (mut pos, mut neg) = (vec![], vec![]);
                    for (i, &l) in self.labels.iter().enumerate() {
                        let l = l as usize;
                        if l == a || l == b {
                            let s = key(self.scores[i * k + c]);
                            if l == c { pos.push(s) } else { neg.push(s) }
                        }
                    }
                    Sorted::plain(pos, neg)
                };
                let sa = side(a);
                let count = sa.totals();
                let auc = (sa.roc_auc(None)? + side(b).roc_auc(None)?) / 2.0;
                Ok((auc, (count.0 + count.1) / n))
            })
            .collect::<Result<_>>()?;
        let (scores, prevalence): (Vec<f64>, Vec<f64>) = results.into_iter().unzip();
        Ok(match average {
            Average::Weighted => crate::agreement::np_average(&scores, Some(&prevalence)),
            _ => crate::agreement::np_average(&scores, None),
        })
    }

    /// One-vs-rest average precision (scikit-learn's `average_precision_score` on multiclass `y_true`), average
    /// none, micro, macro or weighted. No probability check.
    ///
    /// # Errors
    /// [`Error::Empty`]; [`Error::Degenerate`] when a class never occurs in `y_true`; [`Error::ParameterText`] for
    /// another average.
    pub fn average_precision(&self, average: Average) -> Result<Score> {
        self.ovr_average(average, Sorted::average_precision)
    }
}

/// Bounded-memory ranking state with fixed thresholds, as torchmetrics' `BinaryROC` / `BinaryAUROC` /
/// `BinaryPrecisionRecallCurve` / `BinaryAveragePrecision` with `thresholds=`: for each threshold t, the counts of
/// positives and negatives with score ≥ t. Memory O(T) whatever the stream length; merging adds integer counts, so
/// any split gives exactly the same state. The curves are those of torchmetrics (thresholds as given, no extra
/// (0, 0) point); the values approximate the exact ones as the threshold grid gets finer.
///
/// torchmetrics applies a sigmoid to a batch with scores outside [0, 1]; this state does not (map scores first).
///
/// # Examples
/// ```
/// use losskit_metrics::BinnedRanking;
/// let mut r = BinnedRanking::linspace(5)?; // thresholds 0, 0.25, 0.5, 0.75, 1
/// r.update(ndarray::array![0_i64, 0, 1, 1].view(), ndarray::array![0.1, 0.4, 0.35, 0.8].view())?;
/// // 0.35 and 0.4 fall between the same thresholds, so the binned curve sees them tied: 0.875, not the exact 0.75.
/// assert_eq!(r.roc_auc()?, 0.875);
/// # Ok::<(), losskit_metrics::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct BinnedRanking {
    thresholds: Vec<f64>,
    /// hist[b]: samples with exactly b thresholds ≤ score.
    pos: Vec<u64>,
    neg: Vec<u64>,
}

impl BinnedRanking {
    /// A state with the given thresholds (strictly increasing, finite, at least 2).
    ///
    /// # Errors
    /// [`Error::Shape`] for fewer than 2 thresholds; [`Error::NonFinite`]; [`Error::Input`] when not increasing.
    pub fn new(thresholds: Vec<f64>) -> Result<Self> {
        if thresholds.len() < 2 {
            return Err(Error::Shape {
                arg: "thresholds",
                expected: "[T] with T ≥ 2".into(),
                got: vec![thresholds.len()],
            });
        }
        check::finite("thresholds", &ndarray::ArrayView1::from(&thresholds))?;
        if thresholds.windows(2).any(|w| w[1] <= w[0]) {
            return Err(Error::Input { what: "thresholds: must be strictly increasing".into() });
        }
        let t = thresholds.len();
        Ok(Self { thresholds, pos: vec![0; t + 1], neg: vec![0; t + 1] })
    }

    /// `n` evenly spaced thresholds from 0 to 1 (torchmetrics' `thresholds=n`, `torch.linspace(0, 1, n)`).
    ///
    /// # Errors
    /// As [`new`](Self::new) for `n` < 2.
    pub fn linspace(n: usize) -> Result<Self> {
        let step = 1.0 / (n.max(2) - 1) as f64;
        Self::new((0..n).map(|i| if i + 1 == n { 1.0 } else { i as f64 * step }).collect())
    }

    /// The thresholds.
    pub fn thresholds(&self) -> &[f64] {
        &self.thresholds
    }

    /// Adds a batch (labels 0/1, finite scores). All-or-nothing.
    ///
    /// # Errors
    /// As [`BinaryRanking::update`] (no weights).
    pub fn update(&mut self, y_true: ArrayView1<'_, i64>, y_score: ArrayView1<'_, f64>) -> Result<()> {
        check_binary(y_true, y_score, None)?;
        for (&t, &s) in y_true.iter().zip(y_score.iter()) {
            let b = self.thresholds.partition_point(|&th| th <= s);
            if t == 1 { self.pos[b] += 1 } else { self.neg[b] += 1 }
        }
        Ok(())
    }

    /// Adds another state's counts.
    ///
    /// # Errors
    /// [`Error::Input`] when the thresholds differ.
    pub fn merge(&mut self, other: &Self) -> Result<()> {
        if other.thresholds != self.thresholds {
            return Err(Error::Input {
                what: "binned ranking states with different thresholds cannot be merged".into(),
            });
        }
        self.pos.iter_mut().zip(&other.pos).for_each(|(a, b)| *a += b);
        self.neg.iter_mut().zip(&other.neg).for_each(|(a, b)| *a += b);
        Ok(())
    }

    /// Sets the counts to zero.
    pub fn reset(&mut self) {
        self.pos.fill(0);
        self.neg.fill(0);
    }

    /// (tp, fp, P, N) per threshold, ascending thresholds.
    fn counts(&self) -> Result<(Vec<f64>, Vec<f64>, f64, f64)> {
        let (p, n): (u64, u64) = (self.pos.iter().sum(), self.neg.iter().sum());
        if p + n == 0 {
            return Err(Error::Empty { arg: "y_true" });
        }
        let t = self.thresholds.len();
        let (mut tp, mut fp) = (vec![0.0; t], vec![0.0; t]);
        let (mut ctp, mut cfp) = (0u64, 0u64);
        // At threshold j the predicted positives are the samples with more than j thresholds ≤ score.
        for j in (0..t).rev() {
            ctp += self.pos[j + 1];
            cfp += self.neg[j + 1];
            tp[j] = ctp as f64;
            fp[j] = cfp as f64;
        }
        Ok((tp, fp, p as f64, n as f64))
    }

    /// torchmetrics' binned ROC: (fpr, tpr, thresholds) at decreasing thresholds, 0/0 rates as 0.
    ///
    /// # Errors
    /// [`Error::Empty`] when no sample has been seen.
    pub fn roc_curve(&self) -> Result<RocCurve> {
        let (tp, fp, p, n) = self.counts()?;
        let div = |a: f64, b: f64| if b != 0.0 { a / b } else { 0.0 };
        Ok(RocCurve {
            fpr: fp.iter().rev().map(|&f| div(f, n)).collect(),
            tpr: tp.iter().rev().map(|&t| div(t, p)).collect(),
            thresholds: self.thresholds.iter().rev().copied().collect(),
        })
    }

    /// Trapezoidal area under the binned ROC curve (torchmetrics' `binary_auroc(thresholds=…)`).
    ///
    /// # Errors
    /// [`Error::Empty`]; [`Error::Degenerate`] when one class is missing.
    pub fn roc_auc(&self) -> Result<f64> {
        let (_, _, p, n) = self.counts()?;
        if p == 0.0 || n == 0.0 {
            return Err(Error::Degenerate {
                what: format!("roc_auc needs both classes, got {p} positive and {n} negative samples"),
            });
        }
        let roc = self.roc_curve()?;
        Ok(trapezoid(&roc.fpr, &roc.tpr))
    }

    /// torchmetrics' binned precision-recall curve: precision and recall at increasing thresholds (0/0 as NaN), then
    /// the point (1, 0).
    ///
    /// # Errors
    /// [`Error::Empty`] when no sample has been seen.
    pub fn precision_recall_curve(&self) -> Result<PrCurve> {
        let (tp, fp, p, _) = self.counts()?;
        let div = |a: f64, b: f64| if b != 0.0 { a / b } else { f64::NAN };
        let mut precision: Vec<f64> = tp.iter().zip(&fp).map(|(&t, &f)| div(t, t + f)).collect();
        let mut recall: Vec<f64> = tp.iter().map(|&t| div(t, p)).collect();
        precision.push(1.0);
        recall.push(0.0);
        Ok(PrCurve { precision, recall, thresholds: self.thresholds.clone() })
    }

    /// Average precision on the binned curve (torchmetrics' `binary_average_precision(thresholds=…)`):
    /// `−Σ (R_{j+1} − R_j) P_j` with NaN values taken as 0.
    ///
    /// # Errors
    /// [`Error::Empty`]; [`Error::Degenerate`] without a positive sample.
    pub fn average_precision(&self) -> Result<f64> {
        let (_, _, p, _) = self.counts()?;
        if p == 0.0 {
            return Err(Error::Degenerate { what: "average_precision needs at least one positive sample".into() });
        }
        let c = self.precision_recall_curve()?;
        let z = |v: f64| if v.is_nan() { 0.0 } else { v };
        Ok(-(0..c.recall.len() - 1).map(|j| (z(c.recall[j + 1]) - z(c.recall[j])) * z(c.precision[j])).sum::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn radix_sort_matches_the_standard_sort() {
        let mut st = 7u64;
        for n in [0usize, 5, 5000, 70_000] {
            let mut v: Vec<u64> = (0..n)
                .map(|i| {
                    st = st.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    if i % 3 == 0 { key((st >> 40) as f64 / 7.0 - 1000.0) } else { st }
                })
                .collect();
            let mut w = v.clone();
            radix_sort_desc(&mut v);
            w.sort_unstable_by(|a, b| b.cmp(a));
            assert_eq!(v, w, "n {n}");
        }
    }

    #[test]
    fn keys_follow_the_float_order() {
        let xs = [-1e300, -2.0, -1e-300, -0.0, 0.0, 1e-300, 0.5, 3.0, 1e300];
        for w in xs.windows(2) {
            assert!(key(w[0]) <= key(w[1]), "{w:?}");
            assert_eq!(unkey(key(w[1])), w[1]);
        }
        assert_eq!(key(-0.0), key(0.0));
    }

    #[test]
    fn hand_checked_auc_with_ties() {
        // Positive and negative tied at 0.5: half a pair. Pairs: (0.9 vs 0.5) 1, (0.9 vs 0.1) 1, (0.5 vs 0.5) ½,
        // (0.5 vs 0.1) 1 → 3.5 / 4.
        let auc = roc_auc_score(array![1, 1, 0, 0].view(), array![0.9, 0.5, 0.5, 0.1].view(), None, None).unwrap();
        assert_eq!(auc, 0.875);
    }

    #[test]
    fn bad_input_and_single_class() {
        let mut r = BinaryRanking::new();
        assert!(matches!(r.update(array![0, 1].view(), array![0.1].view(), None), Err(Error::Shape { .. })));
        assert!(matches!(
            r.update(array![0, 1].view(), array![0.1, f64::NAN].view(), None),
            Err(Error::NonFinite { arg: "y_score", index: 1, .. })
        ));
        assert!(matches!(
            r.update(array![0, 2].view(), array![0.1, 0.2].view(), None),
            Err(Error::LabelOutOfRange { arg: "y_true", label: 2, .. })
        ));
        assert!(r.is_empty());
        assert_eq!(r.roc_auc(None), Err(Error::Empty { arg: "y_true" }));
        r.update(array![1, 1].view(), array![0.1, 0.2].view(), None).unwrap();
        assert!(matches!(r.roc_auc(None), Err(Error::Degenerate { .. })));
        r.update(array![0].view(), array![0.3].view(), None).unwrap();
        assert!(matches!(r.roc_auc(Some(0.0)), Err(Error::Parameter { name: "max_fpr", .. })));
        assert_eq!(r.roc_auc(None).unwrap(), 0.0);
    }

    #[test]
    fn binned_with_every_score_on_its_own_bin_is_exact() {
        let (t, s) = (array![0, 1, 1, 0, 1], array![0.05, 0.95, 0.45, 0.55, 0.75]);
        let mut b = BinnedRanking::linspace(101).unwrap();
        b.update(t.view(), s.view()).unwrap();
        let exact = roc_auc_score(t.view(), s.view(), None, None).unwrap();
        assert!((b.roc_auc().unwrap() - exact).abs() < 1e-12);
    }
}
