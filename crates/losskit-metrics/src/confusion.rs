//! The multiclass confusion matrix: the one state behind accuracy, balanced accuracy, precision, recall and F-β.

use ndarray::{Array2, ArrayView1, Axis};
use rayon::prelude::*;

use losskit_tensor::{Error, Result, check};

/// Batches at least this long are counted on several threads (when the class count is small enough, see
/// [`ConfusionMatrix::update`]).
const PAR_MIN_LEN: usize = 1 << 18;
/// Samples per parallel chunk.
const PAR_CHUNK: usize = 1 << 15;

/// Counts `C[t, p]` of samples with true class t predicted as p (rows: truth, columns: prediction, as
/// scikit-learn's `confusion_matrix(y_true, y_pred, labels=range(n_classes))`).
///
/// A mergeable state: [`update`](Self::update) adds a batch, [`merge`](Self::merge) adds another state, and any split
/// of the data into batches and shards gives exactly the same counts (integer sums), so every metric computed from
/// the matrix is the same whatever the split or the thread count.
///
/// Metrics read from the counts ([`accuracy`](Self::accuracy), [`balanced_accuracy`](Self::balanced_accuracy),
/// precision, recall and F-β through [`precision_recall_fscore_support`](Self::precision_recall_fscore_support)):
/// ```text
/// tp_c = C[c, c]      support_c = Σ_p C[c, p] (row sum)      predicted_c = Σ_t C[t, c] (column sum)
/// ```
///
/// # Examples
/// ```
/// use losskit_metrics::ConfusionMatrix;
/// let mut cm = ConfusionMatrix::new(3)?;
/// cm.update(ndarray::array![0_i64, 1, 2, 2].view(), ndarray::array![0_i64, 2, 2, 1].view())?;
/// assert_eq!(cm.counts()[[2, 1]], 1);
/// assert_eq!(cm.accuracy()?, 0.5);
/// # Ok::<(), losskit_metrics::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfusionMatrix {
    counts: Array2<u64>,
}

impl ConfusionMatrix {
    /// An empty matrix for `n_classes` classes (labels `0..n_classes`).
    ///
    /// # Errors
    /// [`Error::Parameter`] when `n_classes` is 0.
    pub fn new(n_classes: usize) -> Result<Self> {
        if n_classes == 0 {
            return Err(Error::Parameter { name: "n_classes", value: 0.0, reason: "must be ≥ 1" });
        }
        Ok(Self { counts: Array2::zeros((n_classes, n_classes)) })
    }

    /// A matrix holding given counts `[C, C]` (rows: truth, columns: prediction), e.g. one computed elsewhere.
    ///
    /// # Errors
    /// [`Error::Shape`] when `counts` is not square or has no rows.
    pub fn from_counts(counts: Array2<u64>) -> Result<Self> {
        let c = counts.nrows();
        if c == 0 || counts.ncols() != c {
            return Err(Error::Shape {
                arg: "counts",
                expected: "[C, C] with C ≥ 1".into(),
                got: counts.shape().to_vec(),
            });
        }
        // Own a standard-layout copy so `update` can count into a flat slice.
        Ok(Self { counts: counts.as_standard_layout().into_owned() })
    }

    /// A matrix for `n_classes` classes holding one batch: `new(n_classes)` then `update(y_true, y_pred)`.
    ///
    /// # Errors
    /// As [`new`](Self::new) and [`update`](Self::update).
    pub fn from_labels(n_classes: usize, y_true: ArrayView1<'_, i64>, y_pred: ArrayView1<'_, i64>) -> Result<Self> {
        let mut cm = Self::new(n_classes)?;
        cm.update(y_true, y_pred)?;
        Ok(cm)
    }

    /// Number of classes.
    pub fn n_classes(&self) -> usize {
        self.counts.nrows()
    }

    /// Adds one batch of true labels `y_true` \[N\] and predicted labels `y_pred` \[N\], both in `0..n_classes`.
    ///
    /// An empty batch (N = 0) is accepted and changes nothing, so an empty last shard merges cleanly; the metrics
    /// refuse a matrix that has seen no sample at all ([`Error::Empty`]), as scikit-learn refuses empty inputs.
    /// The update is all-or-nothing: on error the counts are unchanged.
    ///
    /// One pass over contiguous inputs; batches of 2¹⁸ samples or more with at most `N / 8` matrix cells are counted
    /// on the rayon pool in chunks of 2¹⁵ samples whose partial matrices are summed (integer sums, so the result is
    /// the same for every thread count).
    ///
    /// # Errors
    /// [`Error::Shape`] for different lengths, [`Error::LabelOutOfRange`] for labels outside `0..n_classes`
    /// (`y_true` is checked before `y_pred`; the error names the first offending index).
    pub fn update(&mut self, y_true: ArrayView1<'_, i64>, y_pred: ArrayView1<'_, i64>) -> Result<()> {
        check::shape("y_pred", y_pred.shape(), &[Some(y_true.len())])?;
        let c = self.n_classes();
        let n = y_true.len();
        if n == 0 {
            return Ok(());
        }
        let ok = match (y_true.as_slice(), y_pred.as_slice(), self.counts.as_slice_mut()) {
            (Some(t), Some(p), Some(counts)) => {
                if n >= PAR_MIN_LEN && n / 8 >= c * c {
                    count_parallel(counts, t, p, c)
                } else {
                    count_serial(counts, t, p, c)
                }
            }
            _ => count_strided(&mut self.counts, y_true, y_pred),
        };
        if ok {
            return Ok(());
        }
        // The counts were left unchanged; name the first bad label the way the validation helpers do.
        check::labels("y_true", y_true, c, None)?;
        check::labels("y_pred", y_pred, c, None)?;
        Err(Error::Degenerate { what: "confusion matrix: label check disagrees with the counting loop".into() })
    }

    /// Adds another state's counts (the states must have the same number of classes).
    ///
    /// # Errors
    /// [`Error::Shape`] when the class counts differ.
    pub fn merge(&mut self, other: &Self) -> Result<()> {
        check::shape("other", other.counts.shape(), &[Some(self.n_classes()), Some(self.n_classes())])?;
        self.counts += &other.counts;
        Ok(())
    }

    /// Sets every count back to zero (the state of [`new`](Self::new)).
    pub fn reset(&mut self) {
        self.counts.fill(0);
    }

    /// The counts [C, C].
    pub fn counts(&self) -> &Array2<u64> {
        &self.counts
    }

    /// Total number of samples seen.
    pub fn total(&self) -> u64 {
        self.counts.sum()
    }

    /// True positives per class, `tp_c = C[c, c]` \[C\].
    pub fn true_positives(&self) -> Vec<u64> {
        self.counts.diag().to_vec()
    }

    /// Support per class: the number of true samples of each class, `support_c = Σ_p C[c, p]` (row sums) \[C\]
    /// (scikit-learn's `support` from `precision_recall_fscore_support(labels=range(C), average=None)`).
    pub fn support(&self) -> Vec<u64> {
        self.counts.sum_axis(Axis(1)).to_vec()
    }

    /// Number of predictions of each class, `predicted_c = Σ_t C[t, c]` (column sums) \[C\].
    pub fn predicted(&self) -> Vec<u64> {
        self.counts.sum_axis(Axis(0)).to_vec()
    }

    /// The classes that occur in `y_true` or `y_pred`, ascending: scikit-learn's `unique_labels(y_true, y_pred)`,
    /// the label set its metrics use when `labels=None` (see [`Labels::Present`](crate::Labels::Present)).
    pub fn labels_present(&self) -> Vec<usize> {
        let (support, predicted) = (self.support(), self.predicted());
        (0..self.n_classes()).filter(|&c| support[c] > 0 || predicted[c] > 0).collect()
    }

    /// The classes that are predicted but never true: those for which scikit-learn's `balanced_accuracy_score`
    /// warns "y_pred contains classes not in y_true" and which it leaves out of the mean.
    pub fn labels_predicted_not_true(&self) -> Vec<usize> {
        let (support, predicted) = (self.support(), self.predicted());
        (0..self.n_classes()).filter(|&c| support[c] == 0 && predicted[c] > 0).collect()
    }

    /// [`Error::Empty`] when no sample has been seen.
    pub(crate) fn check_non_empty(&self) -> Result<()> {
        if self.total() == 0 { Err(Error::Empty { arg: "y_true" }) } else { Ok(()) }
    }

    /// Accuracy, the fraction of samples on the diagonal (scikit-learn's `accuracy_score`):
    ///
    /// ```text
    /// accuracy = Σ_c C[c, c] / Σ_{t,p} C[t, p]
    /// ```
    ///
    /// # Errors
    /// [`Error::Empty`] when no sample has been seen.
    pub fn accuracy(&self) -> Result<f64> {
        self.check_non_empty()?;
        let tp: u64 = self.counts.diag().sum();
        Ok(tp as f64 / self.total() as f64)
    }

    /// Balanced accuracy, the mean recall over the classes that occur in `y_true` (scikit-learn's
    /// `balanced_accuracy_score(adjusted=False)`):
    ///
    /// ```text
    /// balanced_accuracy = (1/|K|) Σ_{c∈K} C[c, c] / support_c        where K = {c : support_c > 0}
    /// ```
    ///
    /// Classes that are predicted but never true have no recall; scikit-learn leaves them out of the mean with the
    /// warning "y_pred contains classes not in y_true" ([`labels_predicted_not_true`](Self::labels_predicted_not_true)
    /// lists them), and so does this. The result does not depend on the [`Labels`](crate::Labels) mode.
    ///
    /// # Errors
    /// [`Error::Empty`] when no sample has been seen.
    pub fn balanced_accuracy(&self) -> Result<f64> {
        Ok(self.balanced_accuracy_parts()?.0)
    }

    /// Balanced accuracy adjusted for chance (scikit-learn's `balanced_accuracy_score(adjusted=True)`), so that
    /// random guessing scores 0 and perfect prediction 1:
    ///
    /// ```text
    /// adjusted = (balanced_accuracy − 1/|K|) / (1 − 1/|K|)        K = classes present in y_true
    /// ```
    ///
    /// As in scikit-learn, a single true class (|K| = 1) divides by zero: the result is NaN when that class is
    /// always predicted correctly and −∞ otherwise (no error).
    ///
    /// # Errors
    /// [`Error::Empty`] when no sample has been seen.
    pub fn balanced_accuracy_adjusted(&self) -> Result<f64> {
        let (score, k) = self.balanced_accuracy_parts()?;
        // Same operation order as scikit-learn: score -= chance; score /= 1 - chance.
        let chance = 1.0 / k as f64;
        Ok((score - chance) / (1.0 - chance))
    }

    /// (balanced accuracy, number of classes present in `y_true`).
    fn balanced_accuracy_parts(&self) -> Result<(f64, usize)> {
        self.check_non_empty()?;
        let support = self.support();
        let (mut sum, mut k) = (0.0, 0usize);
        for (c, &s) in support.iter().enumerate() {
            if s > 0 {
                sum += self.counts[[c, c]] as f64 / s as f64;
                k += 1;
            }
        }
        // k ≥ 1 because the matrix is not empty and every sample has a true class.
        Ok((sum / k as f64, k))
    }
}

/// Counts contiguous labels into the flat row-major `counts` [c·c]. Returns false, with `counts` unchanged, when a
/// label is outside `0..c`.
fn count_serial(counts: &mut [u64], t: &[i64], p: &[i64], c: usize) -> bool {
    let cu = c as u64;
    for (i, (&a, &b)) in t.iter().zip(p).enumerate() {
        // A negative label wraps to a huge u64, so one unsigned compare checks both ends of the range.
        let (a, b) = (a as u64, b as u64);
        if a >= cu || b >= cu {
            // Roll back the prefix already counted: the update is all-or-nothing.
            for (&a, &b) in t[..i].iter().zip(&p[..i]) {
                counts[(a as u64 * cu + b as u64) as usize] -= 1;
            }
            return false;
        }
        counts[(a * cu + b) as usize] += 1;
    }
    true
}

/// Counts into per-chunk matrices on the rayon pool, then adds their (integer) sum to `counts`; `counts` is only
/// touched when every label is valid.
fn count_parallel(counts: &mut [u64], t: &[i64], p: &[i64], c: usize) -> bool {
    let cells = c * c;
    let partial = t
        .par_chunks(PAR_CHUNK)
        .zip(p.par_chunks(PAR_CHUNK))
        .try_fold(
            || vec![0u64; cells],
            |mut acc, (tc, pc)| if count_serial(&mut acc, tc, pc, c) { Some(acc) } else { None },
        )
        .try_reduce(
            || vec![0u64; cells],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                Some(a)
            },
        );
    match partial {
        Some(sum) => {
            counts.iter_mut().zip(&sum).for_each(|(x, y)| *x += y);
            true
        }
        None => false,
    }
}

/// Counts non-contiguous views (validating first, so a failure leaves `counts` unchanged).
fn count_strided(counts: &mut Array2<u64>, t: ArrayView1<'_, i64>, p: ArrayView1<'_, i64>) -> bool {
    let cu = counts.nrows() as u64;
    if t.iter().chain(p.iter()).any(|&v| v as u64 >= cu) {
        return false;
    }
    for (&a, &b) in t.iter().zip(p) {
        counts[[a as usize, b as usize]] += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array1, array, s};

    /// Plain-loop oracle: the counts from scratch.
    fn naive(c: usize, t: &[i64], p: &[i64]) -> Array2<u64> {
        let mut m = Array2::zeros((c, c));
        for (&a, &b) in t.iter().zip(p) {
            m[[a as usize, b as usize]] += 1;
        }
        m
    }

    /// Deterministic pseudo-random labels (SplitMix64), no rand dependency in unit tests.
    fn labels(n: usize, c: usize, seed: u64) -> Vec<i64> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = s;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                ((z ^ (z >> 31)) % c as u64) as i64
            })
            .collect()
    }

    #[test]
    fn hand_counts_and_accessors() {
        let cm = ConfusionMatrix::from_labels(3, array![0, 1, 2, 2, 0].view(), array![0, 2, 2, 1, 0].view()).unwrap();
        assert_eq!(cm.counts(), &array![[2, 0, 0], [0, 0, 1], [0, 1, 1]]);
        assert_eq!(cm.total(), 5);
        assert_eq!(cm.true_positives(), vec![2, 0, 1]);
        assert_eq!(cm.support(), vec![2, 1, 2]);
        assert_eq!(cm.predicted(), vec![2, 1, 2]);
        assert_eq!(cm.accuracy().unwrap(), 3.0 / 5.0);
        // recalls 1, 0, 1/2 → mean 1/2; adjusted (1/2 − 1/3) / (2/3) = 1/4.
        assert_eq!(cm.balanced_accuracy().unwrap(), 0.5);
        assert!((cm.balanced_accuracy_adjusted().unwrap() - 0.25).abs() < 1e-15);
    }

    #[test]
    fn parallel_serial_and_strided_paths_agree_with_the_oracle() {
        for &(n, c) in &[(1usize, 1usize), (1000, 3), (PAR_MIN_LEN + 12_345, 7), (PAR_MIN_LEN * 2 + 1, 150)] {
            let t = labels(n, c, 1);
            let p = labels(n, c, 2);
            let want = naive(c, &t, &p);
            let cm = ConfusionMatrix::from_labels(c, Array1::from(t.clone()).view(), Array1::from(p.clone()).view())
                .unwrap();
            assert_eq!(cm.counts(), &want, "n = {n}, c = {c}");
            // Strided views (every other element) take the generic path.
            let (t2, p2) = (Array1::from(t.clone()), Array1::from(p.clone()));
            let cm2 = ConfusionMatrix::from_labels(c, t2.slice(s![..;2]), p2.slice(s![..;2])).unwrap();
            let ts: Vec<i64> = t.iter().step_by(2).copied().collect();
            let ps: Vec<i64> = p.iter().step_by(2).copied().collect();
            assert_eq!(cm2.counts(), &naive(c, &ts, &ps));
        }
    }

    #[test]
    fn failed_update_leaves_counts_unchanged_on_every_path() {
        for &n in &[10usize, PAR_MIN_LEN + 5] {
            let mut t = labels(n, 4, 3);
            let p = labels(n, 4, 4);
            t[n - 2] = 4; // out of range near the end: most of the batch was counted before it
            let mut cm = ConfusionMatrix::from_labels(4, array![1, 2].view(), array![3, 0].view()).unwrap();
            let before = cm.clone();
            let err = cm.update(Array1::from(t.clone()).view(), Array1::from(p.clone()).view()).unwrap_err();
            assert_eq!(err, Error::LabelOutOfRange { arg: "y_true", label: 4, classes: 4, index: n - 2 });
            assert_eq!(cm, before);
            let strided = Array1::from(t.clone());
            let p_arr = Array1::from(p.clone());
            let err = cm.update(strided.slice(s![..;-1]), p_arr.slice(s![..;-1])).unwrap_err();
            assert_eq!(err, Error::LabelOutOfRange { arg: "y_true", label: 4, classes: 4, index: 1 });
            assert_eq!(cm, before);
        }
    }

    #[test]
    fn y_true_is_reported_before_y_pred_and_negative_labels_are_caught() {
        let mut cm = ConfusionMatrix::new(3).unwrap();
        let err = cm.update(array![0, 1, 5].view(), array![-1, 0, 0].view()).unwrap_err();
        assert_eq!(err, Error::LabelOutOfRange { arg: "y_true", label: 5, classes: 3, index: 2 });
        let err = cm.update(array![0, 1, 2].view(), array![0, -1, 0].view()).unwrap_err();
        assert_eq!(err, Error::LabelOutOfRange { arg: "y_pred", label: -1, classes: 3, index: 1 });
        assert_eq!(cm.total(), 0);
    }

    #[test]
    fn from_counts_validates_and_reset_clears() {
        assert!(matches!(ConfusionMatrix::from_counts(Array2::zeros((2, 3))), Err(Error::Shape { arg: "counts", .. })));
        assert!(matches!(ConfusionMatrix::from_counts(Array2::zeros((0, 0))), Err(Error::Shape { .. })));
        // A transposed (column-major) input is copied to standard layout and still updates correctly.
        let m = array![[1_u64, 2], [3, 4]];
        let mut cm = ConfusionMatrix::from_counts(m.t().to_owned()).unwrap();
        cm.update(array![0].view(), array![1].view()).unwrap();
        assert_eq!(cm.counts(), &array![[1, 4], [2, 4]]);
        cm.reset();
        assert_eq!(cm.total(), 0);
        assert_eq!(cm, ConfusionMatrix::new(2).unwrap());
    }

    #[test]
    fn labels_present_and_predicted_not_true() {
        let cm = ConfusionMatrix::from_labels(5, array![0, 0, 2].view(), array![0, 3, 2].view()).unwrap();
        assert_eq!(cm.labels_present(), vec![0, 2, 3]);
        assert_eq!(cm.labels_predicted_not_true(), vec![3]);
    }
}
