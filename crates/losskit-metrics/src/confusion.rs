//! The multiclass confusion matrix.

use ndarray::{Array2, ArrayView1};

use losskit_tensor::{Error, Result, check};

/// Counts `C[t, p]` of samples with true class t predicted as p (rows: truth, columns: prediction, as
/// scikit-learn's `confusion_matrix`).
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

    /// Number of classes.
    pub fn n_classes(&self) -> usize {
        self.counts.nrows()
    }

    /// Adds one batch.
    ///
    /// # Errors
    /// [`Error::Shape`] for different lengths, [`Error::LabelOutOfRange`] for labels outside `0..n_classes`.
    pub fn update(&mut self, y_true: ArrayView1<'_, i64>, y_pred: ArrayView1<'_, i64>) -> Result<()> {
        check::shape("y_pred", y_pred.shape(), &[Some(y_true.len())])?;
        let c = self.n_classes();
        check::labels("y_true", y_true, c, None)?;
        check::labels("y_pred", y_pred, c, None)?;
        for (&t, &p) in y_true.iter().zip(y_pred) {
            self.counts[[t as usize, p as usize]] += 1;
        }
        Ok(())
    }

    /// Adds another state's counts.
    ///
    /// # Errors
    /// [`Error::Shape`] when the class counts differ.
    pub fn merge(&mut self, other: &Self) -> Result<()> {
        check::shape("other", other.counts.shape(), &[Some(self.n_classes()), Some(self.n_classes())])?;
        self.counts += &other.counts;
        Ok(())
    }

    /// The counts [C, C].
    pub fn counts(&self) -> &Array2<u64> {
        &self.counts
    }

    /// Total number of samples seen.
    pub fn total(&self) -> u64 {
        self.counts.sum()
    }
}
