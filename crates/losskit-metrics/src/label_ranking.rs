//! Multi-label ranking metrics: label ranking average precision, coverage error and ranking loss (scikit-learn).

use ndarray::{ArrayView2, Axis};
use rayon::prelude::*;

use losskit_tensor::{Error, Result, check};

use crate::MetricState;

/// Rows at least this many are scored on the rayon pool.
const PAR_MIN_ROWS: usize = 256;

/// Mergeable sums of scikit-learn's three multi-label ranking metrics over samples with indicator labels `y_true`
/// \[N, L\] (0/1) and scores `y_score` \[N, L\] (higher = more relevant).
///
/// For sample i with relevant set Yᵢ (|Yᵢ| = nᵢ) and rank(j) = #{k : s_k ≥ s_j} (ties share the worst rank):
/// ```text
/// LRAP_i     = (1/nᵢ) Σ_{j∈Yᵢ} #{k ∈ Yᵢ : s_k ≥ s_j} / rank(j)        (1 when nᵢ = 0 or nᵢ = L)
/// coverage_i = #{k : s_k ≥ min_{j∈Yᵢ} s_j}                            (0 when nᵢ = 0)
/// loss_i     = #{(j, k) : j ∈ Yᵢ, k ∉ Yᵢ, s_j ≤ s_k} / (nᵢ (L − nᵢ))   (0 when nᵢ = 0 or nᵢ = L)
/// ```
/// and each metric is the mean over samples, as `label_ranking_average_precision_score`, `coverage_error` and
/// `label_ranking_loss` (ties count as mis-ordered pairs, as there). Each row is sorted once (O(L log L)); rows are
/// scored in parallel and summed in order, so the result does not depend on the thread count; merged shards agree
/// with one pass to 1e-15 relative (sums in another order).
///
/// # Examples
/// ```
/// use losskit_metrics::LabelRanking;
/// // scikit-learn's docstring example.
/// let mut r = LabelRanking::new(3)?;
/// r.update(ndarray::array![[1_i64, 0, 0], [0, 0, 1]].view(), ndarray::array![[0.75, 0.5, 1.0], [1.0, 0.2, 0.1]].view())?;
/// assert!((r.label_ranking_average_precision()? - 0.41666666666666663).abs() < 1e-15);
/// assert_eq!(r.coverage_error()?, 2.5);
/// assert_eq!(r.label_ranking_loss()?, 0.75);
/// # Ok::<(), losskit_metrics::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct LabelRanking {
    n_labels: usize,
    lrap: f64,
    coverage: u64,
    loss: f64,
    n: u64,
}

/// (LRAP, coverage, ranking loss) of one row.
fn row_metrics(truth: &[bool], scores: &[f64]) -> (f64, u64, f64) {
    let l = truth.len();
    let n_rel = truth.iter().filter(|&&t| t).count();
    let mut order: Vec<usize> = (0..l).collect();
    // Descending by score; `total_cmp` on finite values (−0.0 and 0.0 are merged below by `==`).
    order.sort_unstable_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut lrap, mut coverage, mut loss) = (0.0, 0u64, 0.0);
    let (mut cum_all, mut cum_rel) = (0usize, 0usize);
    let mut g = 0;
    while g < l {
        let s = scores[order[g]];
        let mut end = g;
        let mut rel = 0usize;
        while end < l && scores[order[end]] == s {
            rel += truth[order[end]] as usize;
            end += 1;
        }
        cum_all += end - g;
        cum_rel += rel;
        if rel > 0 {
            // Every relevant label of this tie group has rank cum_all and cum_rel relevant labels at or above it.
            lrap += rel as f64 * cum_rel as f64 / cum_all as f64;
            coverage = cum_all as u64;
            // Pairs (relevant here, irrelevant with score ≥ s).
            loss += rel as f64 * (cum_all - cum_rel) as f64;
        }
        g = end;
    }
    if n_rel == 0 || n_rel == l {
        return (1.0, coverage, 0.0);
    }
    (lrap / n_rel as f64, coverage, loss / (n_rel * (l - n_rel)) as f64)
}

impl LabelRanking {
    /// An empty state for `n_labels` labels.
    ///
    /// # Errors
    /// [`Error::Parameter`] when `n_labels` is 0.
    pub fn new(n_labels: usize) -> Result<Self> {
        if n_labels == 0 {
            return Err(Error::Parameter { name: "n_labels", value: 0.0, reason: "must be ≥ 1" });
        }
        Ok(Self { n_labels, lrap: 0.0, coverage: 0, loss: 0.0, n: 0 })
    }

    /// Number of samples seen.
    pub fn total(&self) -> u64 {
        self.n
    }

    /// Adds a batch: `y_true` \[N, L\] of 0/1 and finite `y_score` \[N, L\]. All-or-nothing.
    ///
    /// # Errors
    /// [`Error::Shape`] for shapes other than \[N, L\] with the state's L, [`Error::NonFinite`],
    /// [`Error::LabelOutOfRange`] (classes 2, flat index) for an entry of `y_true` other than 0 or 1.
    pub fn update(&mut self, y_true: ArrayView2<'_, i64>, y_score: ArrayView2<'_, f64>) -> Result<()> {
        let l = self.n_labels;
        check::shape("y_true", y_true.shape(), &[None, Some(l)])?;
        check::shape("y_score", y_score.shape(), &[Some(y_true.nrows()), Some(l)])?;
        check::finite("y_score", &y_score)?;
        if let Some((i, &v)) = y_true.iter().enumerate().find(|&(_, &v)| v != 0 && v != 1) {
            return Err(Error::LabelOutOfRange { arg: "y_true", label: v, classes: 2, index: i });
        }
        let one = |(t, s): (ndarray::ArrayView1<'_, i64>, ndarray::ArrayView1<'_, f64>)| {
            let truth: Vec<bool> = t.iter().map(|&v| v == 1).collect();
            let scores: Vec<f64> = s.to_vec();
            row_metrics(&truth, &scores)
        };
        let rows: Vec<(f64, u64, f64)> = if y_true.nrows() >= PAR_MIN_ROWS {
            y_true.axis_iter(Axis(0)).into_par_iter().zip(y_score.axis_iter(Axis(0)).into_par_iter()).map(one).collect()
        } else {
            y_true.rows().into_iter().zip(y_score.rows()).map(one).collect()
        };
        for (a, c, b) in rows {
            self.lrap += a;
            self.coverage += c;
            self.loss += b;
        }
        self.n += y_true.nrows() as u64;
        Ok(())
    }

    fn mean(&self, sum: f64) -> Result<f64> {
        if self.n == 0 {
            return Err(Error::Empty { arg: "y_true" });
        }
        Ok(sum / self.n as f64)
    }

    /// scikit-learn's `label_ranking_average_precision_score`.
    ///
    /// # Errors
    /// [`Error::Empty`] when no sample has been seen.
    pub fn label_ranking_average_precision(&self) -> Result<f64> {
        self.mean(self.lrap)
    }

    /// scikit-learn's `coverage_error`.
    ///
    /// # Errors
    /// [`Error::Empty`] when no sample has been seen.
    pub fn coverage_error(&self) -> Result<f64> {
        self.mean(self.coverage as f64)
    }

    /// scikit-learn's `label_ranking_loss`.
    ///
    /// # Errors
    /// [`Error::Empty`] when no sample has been seen.
    pub fn label_ranking_loss(&self) -> Result<f64> {
        self.mean(self.loss)
    }
}

impl MetricState for LabelRanking {
    /// (label ranking average precision, coverage error, label ranking loss).
    type Output = (f64, f64, f64);

    /// # Errors
    /// [`Error::Parameter`] when the label counts differ.
    fn merge(&mut self, other: &Self) -> Result<()> {
        if other.n_labels != self.n_labels {
            return Err(Error::Parameter {
                name: "n_labels",
                value: other.n_labels as f64,
                reason: "label ranking states with different label counts cannot be merged",
            });
        }
        self.lrap += other.lrap;
        self.coverage += other.coverage;
        self.loss += other.loss;
        self.n += other.n;
        Ok(())
    }

    fn compute(&self) -> Result<(f64, f64, f64)> {
        Ok((self.label_ranking_average_precision()?, self.coverage_error()?, self.label_ranking_loss()?))
    }

    fn reset(&mut self) {
        *self = Self { n_labels: self.n_labels, lrap: 0.0, coverage: 0, loss: 0.0, n: 0 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plain O(L²) transcription of the definitions.
    fn naive(t: &[bool], s: &[f64]) -> (f64, u64, f64) {
        let l = t.len();
        let rel: Vec<usize> = (0..l).filter(|&j| t[j]).collect();
        let n = rel.len();
        let rank = |j: usize| (0..l).filter(|&k| s[k] >= s[j]).count() as f64;
        let lrap = if n == 0 || n == l {
            1.0
        } else {
            rel.iter().map(|&j| rel.iter().filter(|&&k| s[k] >= s[j]).count() as f64 / rank(j)).sum::<f64>() / n as f64
        };
        let cov = rel.iter().map(|&j| s[j]).fold(f64::INFINITY, f64::min);
        let coverage = if n == 0 { 0 } else { (0..l).filter(|&k| s[k] >= cov).count() as u64 };
        let loss = if n == 0 || n == l {
            0.0
        } else {
            let bad = rel.iter().map(|&j| (0..l).filter(|&k| !t[k] && s[j] <= s[k]).count()).sum::<usize>();
            bad as f64 / (n * (l - n)) as f64
        };
        (lrap, coverage, loss)
    }

    #[test]
    fn sorted_walk_matches_the_quadratic_definition_with_ties() {
        let mut st = 5u64;
        for l in 1..9 {
            for _ in 0..50 {
                let mut next = || {
                    st = st.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    st >> 33
                };
                let t: Vec<bool> = (0..l).map(|_| next() % 2 == 0).collect();
                let s: Vec<f64> = (0..l).map(|_| (next() % 4) as f64 / 4.0).collect();
                let (a, b, c) = row_metrics(&t, &s);
                let (x, y, z) = naive(&t, &s);
                assert!((a - x).abs() < 1e-15 && b == y && (c - z).abs() < 1e-15, "{t:?} {s:?}");
            }
        }
    }
}
