//! A classification report: every confusion-matrix metric at once, as scikit-learn's `classification_report` plus
//! accuracy, balanced accuracy and the micro averages.

use std::fmt;

use losskit_tensor::Result;

use crate::{Average, ConfusionMatrix, Labels, MetricState, PrfConfig, ZeroDivision};

/// Options of [`ClassificationReport::new`]: scikit-learn's `labels` and `zero_division` keywords.
///
/// The defaults ([`Labels::Present`], [`ZeroDivision::Warn`]) are scikit-learn's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReportConfig {
    /// Which classes get a row and count in the averages. Default [`Labels::Present`].
    pub labels: Labels,
    /// The value of 0/0. Default [`ZeroDivision::Warn`] (0).
    pub zero_division: ZeroDivision,
}

impl ReportConfig {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the label selection (default [`Labels::Present`]).
    pub fn labels(mut self, labels: Labels) -> Self {
        self.labels = labels;
        self
    }

    /// Sets the value of 0/0 (default [`ZeroDivision::Warn`]).
    pub fn zero_division(mut self, zero_division: ZeroDivision) -> Self {
        self.zero_division = zero_division;
        self
    }

    fn prf(&self, average: Average) -> PrfConfig {
        PrfConfig::new().average(average).labels(self.labels.clone()).zero_division(self.zero_division)
    }
}

/// Accuracy, balanced accuracy, precision / recall / F1 (macro, micro, weighted) and per-class precision, recall,
/// F1 and support, all from one [`ConfusionMatrix`].
///
/// Per-class values and the macro, weighted averages equal scikit-learn's
/// `classification_report(y_true, y_pred, labels=…, zero_division=…, output_dict=True)`; micro averages are
/// `precision_recall_fscore_support(average='micro')` over the same labels; `accuracy`, `balanced_accuracy` and
/// `balanced_accuracy_adjusted` do not depend on the labels mode (see [`ConfusionMatrix::accuracy`] and
/// [`ConfusionMatrix::balanced_accuracy`]).
///
/// # Examples
/// ```
/// use losskit_metrics::{ClassificationReport, ConfusionMatrix, ReportConfig};
/// let cm = ConfusionMatrix::from_labels(3, ndarray::array![0_i64, 1, 2, 2].view(), ndarray::array![0_i64, 2, 2, 2].view())?;
/// let report = ClassificationReport::new(&cm, &ReportConfig::new())?;
/// assert_eq!(report.accuracy, 0.75);
/// assert_eq!(report.recall, vec![1.0, 0.0, 1.0]);
/// assert_eq!(report.to_pairs()[0], ("accuracy".to_string(), 0.75));
/// # Ok::<(), losskit_metrics::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ClassificationReport {
    /// Number of samples seen.
    pub n_samples: u64,
    /// `accuracy_score`.
    pub accuracy: f64,
    /// `balanced_accuracy_score`.
    pub balanced_accuracy: f64,
    /// `balanced_accuracy_score(adjusted=True)` (NaN or −∞ with a single true class, as scikit-learn).
    pub balanced_accuracy_adjusted: f64,
    /// `precision_score(average='macro')`.
    pub precision_macro: f64,
    /// `recall_score(average='macro')`.
    pub recall_macro: f64,
    /// `f1_score(average='macro')`.
    pub f1_macro: f64,
    /// `precision_score(average='micro')`.
    pub precision_micro: f64,
    /// `recall_score(average='micro')`.
    pub recall_micro: f64,
    /// `f1_score(average='micro')`.
    pub f1_micro: f64,
    /// `precision_score(average='weighted')`.
    pub precision_weighted: f64,
    /// `recall_score(average='weighted')`.
    pub recall_weighted: f64,
    /// `f1_score(average='weighted')`.
    pub f1_weighted: f64,
    /// The classes of the per-class vectors, in order.
    pub labels: Vec<usize>,
    /// Precision per class of `labels`.
    pub precision: Vec<f64>,
    /// Recall per class of `labels`.
    pub recall: Vec<f64>,
    /// F1 per class of `labels`.
    pub f1: Vec<f64>,
    /// Support (true samples) per class of `labels`.
    pub support: Vec<u64>,
}

impl ClassificationReport {
    /// Computes the report from `matrix`.
    ///
    /// # Errors
    /// [`Error::Empty`](crate::Error::Empty) when the matrix has seen no sample (or `Labels::Given` is empty);
    /// [`Error::LabelOutOfRange`](crate::Error::LabelOutOfRange) for a given label outside `0..n_classes`.
    pub fn new(matrix: &ConfusionMatrix, cfg: &ReportConfig) -> Result<Self> {
        let per_class = matrix.precision_recall_fscore_support(&cfg.prf(Average::None))?;
        let avg = |average| -> Result<[f64; 3]> {
            let s = matrix.precision_recall_fscore_support(&cfg.prf(average))?;
            // An average other than None always gives scalars.
            let v = |score: &crate::Score| score.scalar().unwrap_or(f64::NAN);
            Ok([v(&s.precision), v(&s.recall), v(&s.f_score)])
        };
        let [precision_macro, recall_macro, f1_macro] = avg(Average::Macro)?;
        let [precision_micro, recall_micro, f1_micro] = avg(Average::Micro)?;
        let [precision_weighted, recall_weighted, f1_weighted] = avg(Average::Weighted)?;
        Ok(Self {
            n_samples: matrix.total(),
            accuracy: matrix.accuracy()?,
            balanced_accuracy: matrix.balanced_accuracy()?,
            balanced_accuracy_adjusted: matrix.balanced_accuracy_adjusted()?,
            precision_macro,
            recall_macro,
            f1_macro,
            precision_micro,
            recall_micro,
            f1_micro,
            precision_weighted,
            recall_weighted,
            f1_weighted,
            precision: per_class.precision.values().to_vec(),
            recall: per_class.recall.values().to_vec(),
            f1: per_class.f_score.values().to_vec(),
            support: per_class.support.unwrap_or_default(),
            labels: per_class.labels,
        })
    }

    /// (label, precision, recall, F1, support) per class (rows stop at the shortest vector if a caller made the
    /// public vectors disagree in length).
    fn rows(&self) -> impl Iterator<Item = (usize, f64, f64, f64, u64)> + '_ {
        self.labels
            .iter()
            .zip(&self.precision)
            .zip(&self.recall)
            .zip(&self.f1)
            .zip(&self.support)
            .map(|((((&c, &p), &r), &f1), &s)| (c, p, r, f1, s))
    }

    /// The report as ordered `(key, value)` pairs with scikit-learn-style keys: `accuracy`, `balanced_accuracy`,
    /// `balanced_accuracy_adjusted`, `precision_macro`, `recall_macro`, `f1_macro`, `precision_micro`,
    /// `recall_micro`, `f1_micro`, `precision_weighted`, `recall_weighted`, `f1_weighted`, `n_samples`, then for each
    /// class c of `labels`: `precision_class_c`, `recall_class_c`, `f1_class_c`, `support_class_c`.
    pub fn to_pairs(&self) -> Vec<(String, f64)> {
        let mut out: Vec<(String, f64)> = [
            ("accuracy", self.accuracy),
            ("balanced_accuracy", self.balanced_accuracy),
            ("balanced_accuracy_adjusted", self.balanced_accuracy_adjusted),
            ("precision_macro", self.precision_macro),
            ("recall_macro", self.recall_macro),
            ("f1_macro", self.f1_macro),
            ("precision_micro", self.precision_micro),
            ("recall_micro", self.recall_micro),
            ("f1_micro", self.f1_micro),
            ("precision_weighted", self.precision_weighted),
            ("recall_weighted", self.recall_weighted),
            ("f1_weighted", self.f1_weighted),
            ("n_samples", self.n_samples as f64),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (c, p, r, f1, s) in self.rows() {
            out.push((format!("precision_class_{c}"), p));
            out.push((format!("recall_class_{c}"), r));
            out.push((format!("f1_class_{c}"), f1));
            out.push((format!("support_class_{c}"), s as f64));
        }
        out
    }

    /// [`to_pairs`](Self::to_pairs) as one JSON object on one line, keys in that order, numbers in Rust's shortest
    /// round-trip form; NaN and ±∞ (which JSON cannot hold) are written as `null`.
    pub fn to_json(&self) -> String {
        let body: Vec<String> = self
            .to_pairs()
            .iter()
            .map(|(k, v)| if v.is_finite() { format!("\"{k}\":{v}") } else { format!("\"{k}\":null") })
            .collect();
        format!("{{{}}}", body.join(","))
    }
}

/// The text table of scikit-learn's `classification_report` (4 digits), followed by the micro averages and the
/// balanced accuracy.
impl fmt::Display for ClassificationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.labels.iter().map(|c| c.to_string().len()).max().unwrap_or(0).max("balanced accuracy".len());
        writeln!(f, "{:>width$} {:>9} {:>9} {:>9} {:>9}", "", "precision", "recall", "f1-score", "support")?;
        writeln!(f)?;
        for (c, p, r, f1, s) in self.rows() {
            writeln!(f, "{c:>width$} {p:>9.4} {r:>9.4} {f1:>9.4} {s:>9}")?;
        }
        writeln!(f)?;
        let n = self.n_samples;
        writeln!(f, "{:>width$} {:>9} {:>9} {:>9.4} {:>9}", "accuracy", "", "", self.accuracy, n)?;
        for (name, p, r, f1) in [
            ("macro avg", self.precision_macro, self.recall_macro, self.f1_macro),
            ("weighted avg", self.precision_weighted, self.recall_weighted, self.f1_weighted),
            ("micro avg", self.precision_micro, self.recall_micro, self.f1_micro),
        ] {
            writeln!(f, "{name:>width$} {p:>9.4} {r:>9.4} {f1:>9.4} {n:>9}")?;
        }
        write!(f, "{:>width$} {:>9} {:>9.4} {:>9} {:>9}", "balanced accuracy", "", self.balanced_accuracy, "", n)
    }
}

/// The confusion matrix as a [`MetricState`]: `compute` gives the [`ClassificationReport`] with the default
/// [`ReportConfig`] (labels present, `zero_division="warn"`), scikit-learn's defaults. For other options call
/// [`ClassificationReport::new`].
impl MetricState for ConfusionMatrix {
    type Output = ClassificationReport;

    fn merge(&mut self, other: &Self) -> Result<()> {
        ConfusionMatrix::merge(self, other)
    }

    fn compute(&self) -> Result<ClassificationReport> {
        ClassificationReport::new(self, &ReportConfig::default())
    }

    fn reset(&mut self) {
        ConfusionMatrix::reset(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn report() -> ClassificationReport {
        let cm = ConfusionMatrix::from_labels(4, array![0, 0, 2, 2, 2].view(), array![0, 2, 2, 2, 3].view()).unwrap();
        ClassificationReport::new(&cm, &ReportConfig::new()).unwrap()
    }

    #[test]
    fn hand_checked_values_and_key_order() {
        let r = report();
        // Present labels {0, 2, 3}; tp = [1, 2, 0], predicted = [1, 3, 1], support = [2, 3, 0].
        assert_eq!(r.labels, vec![0, 2, 3]);
        assert_eq!(r.precision, vec![1.0, 2.0 / 3.0, 0.0]);
        assert_eq!(r.recall, vec![0.5, 2.0 / 3.0, 0.0]);
        assert_eq!(r.support, vec![2, 3, 0]);
        assert_eq!(r.accuracy, 0.6);
        assert_eq!(r.f1_micro, 0.6);
        let keys: Vec<String> = r.to_pairs().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys[..4], ["accuracy", "balanced_accuracy", "balanced_accuracy_adjusted", "precision_macro"]);
        assert_eq!(keys.len(), 13 + 4 * 3);
        assert_eq!(keys[13..17], ["precision_class_0", "recall_class_0", "f1_class_0", "support_class_0"]);
    }

    #[test]
    fn json_is_one_object_with_null_for_non_finite() {
        let cm = ConfusionMatrix::from_labels(2, array![1, 1].view(), array![1, 1].view()).unwrap();
        let r = ClassificationReport::new(&cm, &ReportConfig::new()).unwrap();
        assert!(r.balanced_accuracy_adjusted.is_nan());
        let json = r.to_json();
        assert!(json.starts_with("{\"accuracy\":1,\"balanced_accuracy\":1,\"balanced_accuracy_adjusted\":null,"));
        assert!(json.ends_with("\"support_class_1\":2}"));
        assert_eq!(json.matches(':').count(), 13 + 4);
    }

    #[test]
    fn display_has_one_row_per_label_and_the_summaries() {
        let text = report().to_string();
        assert_eq!(text.lines().count(), 2 + 3 + 1 + 5);
        assert!(text.lines().any(|l| l.trim_start().starts_with("macro avg") && l.ends_with(" 5")));
        assert!(text.contains("0.6667"));
    }

    #[test]
    fn metric_state_compute_uses_the_defaults() {
        let cm = ConfusionMatrix::from_labels(4, array![0, 0, 2, 2, 2].view(), array![0, 2, 2, 2, 3].view()).unwrap();
        assert_eq!(cm.compute().unwrap(), report());
        let mut empty = cm.clone();
        MetricState::reset(&mut empty);
        assert_eq!(empty.compute(), Err(crate::Error::Empty { arg: "y_true" }));
    }
}
