//! Top-k accuracy (scikit-learn's `top_k_accuracy_score` for multiclass scores).

use ndarray::{ArrayView1, ArrayView2, Axis};
use rayon::prelude::*;

use losskit_tensor::{Error, Result, check};

use crate::MetricState;

/// The fraction of samples whose true class is among the `k` highest scores, as a mergeable count.
///
/// Ties are broken as scikit-learn's `top_k_accuracy_score` breaks them (a stable ascending argsort, reversed):
/// among equal scores the class with the larger index ranks first. So the true class t is a hit when
/// ```text
/// #{ j : s_j > s_t  or  (s_j = s_t and j > t) } < k
/// ```
/// With `k ≥ n_classes` every sample is a hit (scikit-learn warns; this does not).
///
/// # Examples
/// ```
/// use losskit_metrics::TopKAccuracy;
/// let mut acc = TopKAccuracy::new(2, 3)?;
/// acc.update(ndarray::array![0_i64, 2].view(), ndarray::array![[0.5, 0.3, 0.2], [0.6, 0.3, 0.1]].view())?;
/// assert_eq!(acc.accuracy()?, 0.5);
/// # Ok::<(), losskit_metrics::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopKAccuracy {
    k: usize,
    n_classes: usize,
    hits: u64,
    total: u64,
}

impl TopKAccuracy {
    /// An empty state counting hits among the `k` best of `n_classes` scores (scikit-learn's default k is 2).
    ///
    /// # Errors
    /// [`Error::Parameter`] when `k` or `n_classes` is 0.
    pub fn new(k: usize, n_classes: usize) -> Result<Self> {
        if k == 0 {
            return Err(Error::Parameter { name: "k", value: 0.0, reason: "must be ≥ 1" });
        }
        if n_classes == 0 {
            return Err(Error::Parameter { name: "n_classes", value: 0.0, reason: "must be ≥ 1" });
        }
        Ok(Self { k, n_classes, hits: 0, total: 0 })
    }

    /// Adds a batch: true classes `y_true` \[N\] in `0..n_classes`, scores `y_score` \[N, n_classes\] (finite).
    /// All-or-nothing.
    ///
    /// # Errors
    /// [`Error::Shape`] for mismatched shapes, [`Error::NonFinite`] for a NaN or infinite score,
    /// [`Error::LabelOutOfRange`] for a label outside `0..n_classes`.
    pub fn update(&mut self, y_true: ArrayView1<'_, i64>, y_score: ArrayView2<'_, f64>) -> Result<()> {
        check::shape("y_score", y_score.shape(), &[Some(y_true.len()), Some(self.n_classes)])?;
        check::finite("y_score", &y_score)?;
        check::labels("y_true", y_true, self.n_classes, None)?;
        let k = self.k;
        let hit = |t: i64, row: ArrayView1<'_, f64>| {
            let t = t as usize;
            let st = row[t];
            let above = row.iter().enumerate().filter(|&(j, &s)| s > st || (s == st && j > t)).count();
            (above < k) as u64
        };
        let hits: u64 = if y_true.len() >= 1 << 14 {
            y_score
                .axis_iter(Axis(0))
                .into_par_iter()
                .zip(y_true.axis_iter(Axis(0)).into_par_iter())
                .map(|(row, t)| hit(t[()], row))
                .sum()
        } else {
            y_score.rows().into_iter().zip(y_true.iter()).map(|(row, &t)| hit(t, row)).sum()
        };
        self.hits += hits;
        self.total += y_true.len() as u64;
        Ok(())
    }

    /// Number of hits so far.
    pub fn hits(&self) -> u64 {
        self.hits
    }

    /// Number of samples so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// hits / samples (scikit-learn's `top_k_accuracy_score(k=k, labels=range(n_classes))`).
    ///
    /// # Errors
    /// [`Error::Empty`] when no sample has been seen.
    pub fn accuracy(&self) -> Result<f64> {
        if self.total == 0 {
            return Err(Error::Empty { arg: "y_true" });
        }
        Ok(self.hits as f64 / self.total as f64)
    }
}

impl MetricState for TopKAccuracy {
    type Output = f64;

    /// # Errors
    /// [`Error::Parameter`] when k or the class count differ.
    fn merge(&mut self, other: &Self) -> Result<()> {
        if other.k != self.k || other.n_classes != self.n_classes {
            return Err(Error::Parameter {
                name: "k",
                value: other.k as f64,
                reason: "states with different k or class counts cannot be merged",
            });
        }
        self.hits += other.hits;
        self.total += other.total;
        Ok(())
    }

    fn compute(&self) -> Result<f64> {
        self.accuracy()
    }

    fn reset(&mut self) {
        self.hits = 0;
        self.total = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn ties_favour_the_larger_class_index() {
        let s = array![[0.2, 0.2, 0.2, 0.4]];
        // Ranking: 3, then 2, 1, 0 among the ties.
        for (t, k, hit) in [(2, 2, 1), (1, 2, 0), (1, 3, 1), (0, 3, 0), (0, 4, 1)] {
            let mut a = TopKAccuracy::new(k, 4).unwrap();
            a.update(array![t].view(), s.view()).unwrap();
            assert_eq!(a.hits(), hit, "t {t} k {k}");
        }
    }

    #[test]
    fn bad_input() {
        let mut a = TopKAccuracy::new(1, 2).unwrap();
        assert!(matches!(a.update(array![0].view(), array![[f64::NAN, 0.0]].view()), Err(Error::NonFinite { .. })));
        assert!(matches!(a.update(array![2].view(), array![[0.0, 0.0]].view()), Err(Error::LabelOutOfRange { .. })));
        assert!(matches!(a.update(array![0, 1].view(), array![[0.0, 0.0]].view()), Err(Error::Shape { .. })));
        assert_eq!(a.accuracy(), Err(Error::Empty { arg: "y_true" }));
        assert!(TopKAccuracy::new(0, 2).is_err());
    }
}
