//! Precision, recall, F-β and support from a [`ConfusionMatrix`], exactly as scikit-learn's
//! `precision_recall_fscore_support` (and `precision_score`, `recall_score`, `fbeta_score`, `f1_score`).
//!
//! ```text
//! precision_c = tp_c / predicted_c        recall_c = tp_c / support_c
//! F_β,c = (1 + β²) · tp_c / (β² · support_c + predicted_c)        (β = 0: precision; β = ∞: recall)
//! ```
//! where `tp_c = C[c, c]`, `support_c` = row sum, `predicted_c` = column sum. A zero denominator gives the
//! [`ZeroDivision`] value. Averages over the selected labels ([`Labels`]):
//! ```text
//! micro:    the formulas above on Σ_c tp_c, Σ_c predicted_c, Σ_c support_c
//! macro:    mean of the per-class values, NaN values left out (all NaN → NaN)
//! weighted: Σ_c support_c · v_c / Σ_c support_c over non-NaN v_c (all weights 0 → the plain mean)
//! binary:   the value of the positive class alone
//! ```

use std::fmt;
use std::str::FromStr;

use losskit_tensor::{Error, Result};

use crate::ConfusionMatrix;

/// How per-class values are combined (scikit-learn's `average` argument).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Average {
    /// No averaging: one value per selected label (scikit-learn `average=None`).
    None,
    /// Global counts: the metric of Σ tp, Σ predicted, Σ support over the selected labels (`average='micro'`).
    /// With every present label selected, micro precision = micro recall = micro F = accuracy.
    Micro,
    /// Unweighted mean over the selected labels, NaN values left out (`average='macro'`). The default here
    /// (scikit-learn's default is `'binary'` for the `*_score` functions and `None` for
    /// `precision_recall_fscore_support`).
    #[default]
    Macro,
    /// Mean weighted by support (the number of true samples) over the selected labels (`average='weighted'`).
    Weighted,
    /// The value of one positive class (`average='binary', pos_label=pos`). Ignores [`Labels`] (scikit-learn
    /// replaces `labels` by `[pos_label]`) and, like scikit-learn, requires binary data: at most two classes occur
    /// in `y_true` ∪ `y_pred`, and when two do, `pos` is one of them.
    Binary {
        /// The positive class, in `0..n_classes` (scikit-learn's default `pos_label` is 1).
        pos: usize,
    },
    /// Per-sample values averaged over the samples (`average='samples'`): multi-label data only
    /// ([`MultilabelConfusion`](crate::MultilabelConfusion)); a [`ConfusionMatrix`] refuses it, as scikit-learn does
    /// for multiclass data.
    Samples,
}

impl Average {
    /// The scikit-learn spelling: `none`, `micro`, `macro`, `weighted`, `binary`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Average::None => "none",
            Average::Micro => "micro",
            Average::Macro => "macro",
            Average::Weighted => "weighted",
            Average::Binary { .. } => "binary",
            Average::Samples => "samples",
        }
    }
}

impl fmt::Display for Average {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Average::Binary { pos } => write!(f, "binary(pos_label={pos})"),
            other => f.write_str(other.as_str()),
        }
    }
}

impl FromStr for Average {
    type Err = Error;

    /// Parses `none`, `micro`, `macro`, `weighted`, `samples` or `binary` (positive class 1, scikit-learn's default
    /// `pos_label`), case-insensitively.
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Ok(Average::None),
            "micro" => Ok(Average::Micro),
            "macro" => Ok(Average::Macro),
            "weighted" => Ok(Average::Weighted),
            "binary" => Ok(Average::Binary { pos: 1 }),
            "samples" => Ok(Average::Samples),
            _ => Err(Error::ParameterText {
                name: "average".into(),
                value: s.into(),
                reason: "expected none | micro | macro | weighted | binary | samples".into(),
            }),
        }
    }
}

/// The value of a metric whose denominator is zero (scikit-learn's `zero_division`).
///
/// Precision divides by zero for a selected class never predicted, recall for a class with no true sample, F-β
/// (0 < β < ∞) only for a class neither true nor predicted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ZeroDivision {
    /// 0, scikit-learn's default `"warn"`; scikit-learn also warns (`UndefinedMetricWarning`). This library never
    /// prints: [`PrfScores::undefined`] lists the labels concerned so a caller can warn.
    #[default]
    Warn,
    /// 0 (`zero_division=0`).
    Zero,
    /// 1 (`zero_division=1`).
    One,
    /// NaN (`zero_division=np.nan`); NaN values are then left out of macro and weighted averages.
    Nan,
}

impl ZeroDivision {
    /// The value that replaces a division by zero.
    pub fn value(self) -> f64 {
        match self {
            ZeroDivision::Warn | ZeroDivision::Zero => 0.0,
            ZeroDivision::One => 1.0,
            ZeroDivision::Nan => f64::NAN,
        }
    }

    /// The scikit-learn spelling: `warn`, `0`, `1`, `nan`.
    pub fn as_str(self) -> &'static str {
        match self {
            ZeroDivision::Warn => "warn",
            ZeroDivision::Zero => "0",
            ZeroDivision::One => "1",
            ZeroDivision::Nan => "nan",
        }
    }
}

impl fmt::Display for ZeroDivision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ZeroDivision {
    type Err = Error;

    /// Parses `warn`, `0`, `1`, `nan` (also `0.0`, `1.0`), case-insensitively.
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "warn" => Ok(ZeroDivision::Warn),
            "0" | "0.0" => Ok(ZeroDivision::Zero),
            "1" | "1.0" => Ok(ZeroDivision::One),
            "nan" => Ok(ZeroDivision::Nan),
            _ => Err(Error::ParameterText {
                name: "zero_division".into(),
                value: s.into(),
                reason: "expected warn | 0 | 1 | nan".into(),
            }),
        }
    }
}

/// Which classes the per-class values cover and the averages run over (scikit-learn's `labels` argument).
///
/// A [`ConfusionMatrix`] has a fixed number of classes, while scikit-learn only knows the labels it sees. The
/// modes differ only for macro averages (and per-class output): a class absent from both `y_true` and `y_pred`
/// has 0/0 precision, recall and F, so under [`All`](Labels::All) it adds a zero-division value to the macro mean,
/// while under [`Present`](Labels::Present) it is not there at all. Micro and weighted averages are the same in both
/// modes (an absent class adds nothing to the sums and has weight 0).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Labels {
    /// The classes that occur in `y_true` or `y_pred`, ascending ([`ConfusionMatrix::labels_present`]): scikit-learn's
    /// default `labels=None` on the data seen. The default.
    #[default]
    Present,
    /// Every class `0..n_classes`, present or not: scikit-learn's `labels=range(n_classes)` (torchmetrics'
    /// `num_classes` behaviour for macro averages).
    All,
    /// These classes, in this order (scikit-learn's `labels=[...]`): per-class output follows the order, averages run
    /// over these classes only (micro included). Must be non-empty, each in `0..n_classes`; a repeated class counts
    /// once per occurrence, as in scikit-learn.
    Given(Vec<usize>),
}

impl FromStr for Labels {
    type Err = Error;

    /// Parses `present`, `all` (case-insensitive) or a comma-separated list of class indices such as `3,0,5`.
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "present" => Ok(Labels::Present),
            "all" => Ok(Labels::All),
            list => list
                .split(',')
                .map(|t| t.trim().parse::<usize>())
                .collect::<std::result::Result<Vec<_>, _>>()
                .map(Labels::Given)
                .map_err(|_| Error::ParameterText {
                    name: "labels".into(),
                    value: s.into(),
                    reason: "expected present | all | a comma-separated list of class indices".into(),
                }),
        }
    }
}

/// Options of [`ConfusionMatrix::precision_recall_fscore_support`] and the `*_score` methods.
///
/// The defaults are `beta = 1`, [`Average::Macro`], [`Labels::Present`], [`ZeroDivision::Warn`].
#[derive(Clone, Debug, PartialEq)]
pub struct PrfConfig {
    /// β ≥ 0 (∞ allowed) of F-β: recall is β times as important as precision. β = 0 gives precision, β = ∞ recall.
    /// Default 1 (F1). scikit-learn keyword `beta`.
    pub beta: f64,
    /// How per-class values are combined. Default [`Average::Macro`]. scikit-learn keyword `average`.
    pub average: Average,
    /// Which classes count. Default [`Labels::Present`]. scikit-learn keyword `labels`.
    pub labels: Labels,
    /// The value of 0/0. Default [`ZeroDivision::Warn`]. scikit-learn keyword `zero_division`.
    pub zero_division: ZeroDivision,
}

impl Default for PrfConfig {
    fn default() -> Self {
        Self { beta: 1.0, average: Average::Macro, labels: Labels::Present, zero_division: ZeroDivision::Warn }
    }
}

impl PrfConfig {
    /// The defaults (F1, macro average, labels present, `zero_division="warn"`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets β (default 1).
    pub fn beta(mut self, beta: f64) -> Self {
        self.beta = beta;
        self
    }

    /// Sets the averaging (default [`Average::Macro`]).
    pub fn average(mut self, average: Average) -> Self {
        self.average = average;
        self
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

    /// Checks the parameters that do not depend on the data.
    ///
    /// # Errors
    /// [`Error::Parameter`] for β < 0 or NaN (β = +∞ is allowed, as in scikit-learn).
    pub fn check(&self) -> Result<()> {
        if self.beta.is_nan() || self.beta < 0.0 {
            return Err(Error::Parameter { name: "beta", value: self.beta, reason: "must be ≥ 0 (inf allowed)" });
        }
        Ok(())
    }
}

/// A metric value: one number, or one number per label.
#[derive(Clone, Debug, PartialEq)]
pub enum Score {
    /// An averaged value (micro, macro, weighted or binary).
    Scalar(f64),
    /// One value per label (`Average::None`), `values[i]` for class `labels[i]`.
    PerClass {
        /// The classes, in output order.
        labels: Vec<usize>,
        /// The value of each class.
        values: Vec<f64>,
    },
}

impl Score {
    /// The averaged value, or `None` for per-class output.
    pub fn scalar(&self) -> Option<f64> {
        match self {
            Score::Scalar(v) => Some(*v),
            Score::PerClass { .. } => None,
        }
    }

    /// The values: one for a scalar, one per label otherwise.
    pub fn values(&self) -> &[f64] {
        match self {
            Score::Scalar(v) => std::slice::from_ref(v),
            Score::PerClass { values, .. } => values,
        }
    }
}

/// The labels whose metric divided by zero (given the [`ZeroDivision`] value), in the order of
/// [`PrfScores::labels`]; for a micro average, all the selected labels when the summed denominator is 0.
///
/// With [`ZeroDivision::Warn`], scikit-learn raises an `UndefinedMetricWarning` for precision, recall or F-score
/// exactly when the corresponding list is non-empty (for F-score only when 0 < β < ∞: at β = 0 and ∞ the F-score
/// is precision or recall, and its list copies theirs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Undefined {
    /// Labels never predicted (predicted_c = 0).
    pub precision: Vec<usize>,
    /// Labels with no true sample (support_c = 0).
    pub recall: Vec<usize>,
    /// Labels with β²·support_c + predicted_c = 0.
    pub f_score: Vec<usize>,
}

/// The output of [`ConfusionMatrix::precision_recall_fscore_support`].
#[derive(Clone, Debug, PartialEq)]
pub struct PrfScores {
    /// Precision.
    pub precision: Score,
    /// Recall.
    pub recall: Score,
    /// F-β with the configured β.
    pub f_score: Score,
    /// Support per label for [`Average::None`], `None` otherwise (as scikit-learn).
    pub support: Option<Vec<u64>>,
    /// The labels evaluated, in output order (`[pos]` for [`Average::Binary`]).
    pub labels: Vec<usize>,
    /// Where a denominator was zero.
    pub undefined: Undefined,
}

/// `num / den` element-wise with `zd` where `den = 0` (scikit-learn's `_prf_divide`), and the positions concerned.
pub(crate) fn prf_divide(num: &[f64], den: &[f64], zd: ZeroDivision) -> (Vec<f64>, Vec<usize>) {
    let mut undefined = Vec::new();
    let values = num
        .iter()
        .zip(den)
        .enumerate()
        .map(|(i, (&n, &d))| {
            if d == 0.0 {
                undefined.push(i);
                zd.value()
            } else {
                n / d
            }
        })
        .collect();
    (values, undefined)
}

/// scikit-learn's `_nanaverage`: the (weighted) mean of the non-NaN values; NaN when all are NaN; the plain mean when
/// the remaining weights sum to 0.
pub(crate) fn nan_average(values: &[f64], weights: Option<&[f64]>) -> f64 {
    let keep = || values.iter().enumerate().filter(|(_, v)| !v.is_nan());
    let count = keep().count();
    if count == 0 {
        return f64::NAN;
    }
    let plain = || keep().map(|(_, v)| v).sum::<f64>() / count as f64;
    match weights {
        None => plain(),
        Some(w) => {
            let scale: f64 = keep().map(|(i, _)| w[i]).sum();
            if scale == 0.0 { plain() } else { keep().map(|(i, v)| v * w[i]).sum::<f64>() / scale }
        }
    }
}

impl ConfusionMatrix {
    /// The labels a configuration evaluates (checked against the data).
    pub(crate) fn selected_labels(&self, average: Average, labels: &Labels) -> Result<Vec<usize>> {
        let c = self.n_classes();
        match (average, labels) {
            (Average::Binary { pos }, _) => {
                if pos >= c {
                    return Err(Error::LabelOutOfRange { arg: "pos_label", label: pos as i64, classes: c, index: 0 });
                }
                // scikit-learn's _check_set_wise_labels: the data must be binary, and pos_label one of its labels
                // when it has two.
                let present = self.labels_present();
                if present.len() > 2 {
                    return Err(Error::Degenerate {
                        what: format!(
                            "average=binary needs binary data, but {} classes occur in y_true and y_pred: {present:?}",
                            present.len()
                        ),
                    });
                }
                if present.len() == 2 && !present.contains(&pos) {
                    return Err(Error::Degenerate {
                        what: format!("pos_label={pos} is not a valid label: it should be one of {present:?}"),
                    });
                }
                Ok(vec![pos])
            }
            (Average::Samples, _) => Err(Error::Input {
                what: "average=samples is only meaningful for multi-label data (use MultilabelConfusion)".into(),
            }),
            (_, Labels::Present) => Ok(self.labels_present()),
            (_, Labels::All) => Ok((0..c).collect()),
            (_, Labels::Given(given)) => {
                if given.is_empty() {
                    return Err(Error::Empty { arg: "labels" });
                }
                if let Some((index, &label)) = given.iter().enumerate().find(|(_, l)| **l >= c) {
                    return Err(Error::LabelOutOfRange { arg: "labels", label: label as i64, classes: c, index });
                }
                Ok(given.clone())
            }
        }
    }

    /// Precision, recall, F-β and support, as scikit-learn's `precision_recall_fscore_support(y_true, y_pred,
    /// beta=cfg.beta, labels=…, average=…, zero_division=…)` on the samples this matrix has seen (module docs give the
    /// formulas; values agree with scikit-learn 1.9 to 1e-12).
    ///
    /// # Errors
    /// [`Error::Parameter`] for an invalid β; [`Error::Empty`] when no sample has been seen or `Labels::Given` is
    /// empty; [`Error::LabelOutOfRange`] for a given label or `pos_label` outside `0..n_classes`;
    /// [`Error::Degenerate`] for [`Average::Binary`] on data that is not binary, or whose two labels do not include
    /// `pos` (scikit-learn's `ValueError`s).
    pub fn precision_recall_fscore_support(&self, cfg: &PrfConfig) -> Result<PrfScores> {
        cfg.check()?;
        self.check_non_empty()?;
        let labels = self.selected_labels(cfg.average, &cfg.labels)?;
        let (support_all, predicted_all) = (self.support(), self.predicted());
        let mut tp: Vec<f64> = labels.iter().map(|&l| self.counts()[[l, l]] as f64).collect();
        let mut pred: Vec<f64> = labels.iter().map(|&l| predicted_all[l] as f64).collect();
        let mut true_: Vec<f64> = labels.iter().map(|&l| support_all[l] as f64).collect();
        if cfg.average == Average::Micro {
            // Counts below 2^53 sum exactly in f64.
            tp = vec![tp.iter().sum()];
            pred = vec![pred.iter().sum()];
            true_ = vec![true_.iter().sum()];
        }
        let zd = cfg.zero_division;
        let (precision, p_undef) = prf_divide(&tp, &pred, zd);
        let (recall, r_undef) = prf_divide(&tp, &true_, zd);
        let beta = cfg.beta;
        let (f_score, f_undef) = if beta.is_infinite() {
            (recall.clone(), r_undef.clone())
        } else if beta == 0.0 {
            (precision.clone(), p_undef.clone())
        } else {
            // F = (1 + β²)·tp / (β²·support + predicted), the form scikit-learn computes (not from P and R).
            let b2 = beta * beta;
            let num: Vec<f64> = tp.iter().map(|&t| (1.0 + b2) * t).collect();
            let den: Vec<f64> = true_.iter().zip(&pred).map(|(&t, &p)| b2 * t + p).collect();
            prf_divide(&num, &den, zd)
        };
        // Positions → labels; for the micro average the one position stands for every selected label.
        let expand = |u: Vec<usize>| match cfg.average {
            Average::Micro if !u.is_empty() => labels.clone(),
            _ => u.into_iter().map(|i| labels[i]).collect(),
        };
        let undefined = Undefined { precision: expand(p_undef), recall: expand(r_undef), f_score: expand(f_undef) };
        let weights = (cfg.average == Average::Weighted).then_some(true_.as_slice());
        let reduce = |v: Vec<f64>| match cfg.average {
            Average::None => Score::PerClass { labels: labels.clone(), values: v },
            _ => Score::Scalar(nan_average(&v, weights)),
        };
        let support = (cfg.average == Average::None).then(|| labels.iter().map(|&l| support_all[l]).collect());
        Ok(PrfScores {
            precision: reduce(precision),
            recall: reduce(recall),
            f_score: reduce(f_score),
            support,
            labels,
            undefined,
        })
    }

    /// Precision, as scikit-learn's `precision_score` with `cfg`'s `average`, `labels` and `zero_division`
    /// (β ignored):
    /// ```text
    /// precision_c = tp_c / predicted_c
    /// ```
    ///
    /// # Errors
    /// As [`precision_recall_fscore_support`](Self::precision_recall_fscore_support).
    pub fn precision_score(&self, cfg: &PrfConfig) -> Result<Score> {
        Ok(self.precision_recall_fscore_support(&cfg.clone().beta(1.0))?.precision)
    }

    /// Recall, as scikit-learn's `recall_score` with `cfg`'s `average`, `labels` and `zero_division` (β ignored):
    /// ```text
    /// recall_c = tp_c / support_c
    /// ```
    /// Macro recall under [`Labels::Present`] with no class predicted-but-never-true equals
    /// [`balanced_accuracy`](Self::balanced_accuracy).
    ///
    /// # Errors
    /// As [`precision_recall_fscore_support`](Self::precision_recall_fscore_support).
    pub fn recall_score(&self, cfg: &PrfConfig) -> Result<Score> {
        Ok(self.precision_recall_fscore_support(&cfg.clone().beta(1.0))?.recall)
    }

    /// F-β with `cfg.beta`, as scikit-learn's `fbeta_score`:
    /// ```text
    /// F_β,c = (1 + β²) · tp_c / (β² · support_c + predicted_c)
    /// ```
    ///
    /// # Errors
    /// As [`precision_recall_fscore_support`](Self::precision_recall_fscore_support).
    pub fn fbeta_score(&self, cfg: &PrfConfig) -> Result<Score> {
        Ok(self.precision_recall_fscore_support(cfg)?.f_score)
    }

    /// F1 (β = 1 whatever `cfg.beta`), as scikit-learn's `f1_score`:
    /// ```text
    /// F1_c = 2 · tp_c / (support_c + predicted_c)
    /// ```
    ///
    /// # Errors
    /// As [`precision_recall_fscore_support`](Self::precision_recall_fscore_support).
    pub fn f1_score(&self, cfg: &PrfConfig) -> Result<Score> {
        Ok(self.precision_recall_fscore_support(&cfg.clone().beta(1.0))?.f_score)
    }

    /// Per-class values over every class `0..n_classes` (scikit-learn's `labels=range(C), average=None`).
    fn per_class(&self, beta: f64, zero_division: ZeroDivision) -> Result<PrfScores> {
        let cfg = PrfConfig { beta, average: Average::None, labels: Labels::All, zero_division };
        self.precision_recall_fscore_support(&cfg)
    }

    /// Precision of every class `0..n_classes`, `tp_c / predicted_c` (`zero_division` for a class never predicted):
    /// scikit-learn's `precision_score(labels=range(C), average=None)`.
    ///
    /// # Errors
    /// [`Error::Empty`] when no sample has been seen.
    pub fn precision(&self, zero_division: ZeroDivision) -> Result<Vec<f64>> {
        Ok(self.per_class(1.0, zero_division)?.precision.values().to_vec())
    }

    /// Recall of every class `0..n_classes`, `tp_c / support_c` (`zero_division` for a class with no true sample):
    /// scikit-learn's `recall_score(labels=range(C), average=None)`.
    ///
    /// # Errors
    /// [`Error::Empty`] when no sample has been seen.
    pub fn recall(&self, zero_division: ZeroDivision) -> Result<Vec<f64>> {
        Ok(self.per_class(1.0, zero_division)?.recall.values().to_vec())
    }

    /// F-β of every class `0..n_classes`, `(1 + β²)·tp_c / (β²·support_c + predicted_c)`: scikit-learn's
    /// `fbeta_score(beta=β, labels=range(C), average=None)`.
    ///
    /// # Errors
    /// [`Error::Parameter`] for β < 0 or NaN; [`Error::Empty`] when no sample has been seen.
    pub fn f_beta(&self, beta: f64, zero_division: ZeroDivision) -> Result<Vec<f64>> {
        Ok(self.per_class(beta, zero_division)?.f_score.values().to_vec())
    }

    /// F1 of every class `0..n_classes`, `2·tp_c / (support_c + predicted_c)`: scikit-learn's
    /// `f1_score(labels=range(C), average=None)`.
    ///
    /// # Errors
    /// [`Error::Empty`] when no sample has been seen.
    pub fn f1(&self, zero_division: ZeroDivision) -> Result<Vec<f64>> {
        self.f_beta(1.0, zero_division)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn cm() -> ConfusionMatrix {
        // classes 0..4; class 3 absent; class 2 never true.
        ConfusionMatrix::from_labels(4, array![0, 0, 0, 1, 1].view(), array![0, 0, 1, 1, 2].view()).unwrap()
    }

    #[test]
    fn hand_checked_per_class_values() {
        let cm = cm();
        // tp = [2, 1, 0, 0], predicted = [2, 2, 1, 0], support = [3, 2, 0, 0]
        assert_eq!(cm.precision(ZeroDivision::Nan).unwrap()[..3], [1.0, 0.5, 0.0]);
        assert!(cm.precision(ZeroDivision::Nan).unwrap()[3].is_nan());
        assert_eq!(cm.recall(ZeroDivision::One).unwrap(), vec![2.0 / 3.0, 0.5, 1.0, 1.0]);
        // F1 = 2tp / (support + predicted): 4/5, 2/4, 0/1, 0/0.
        assert_eq!(cm.f1(ZeroDivision::Zero).unwrap(), vec![0.8, 0.5, 0.0, 0.0]);
        // β = 2: 5tp / (4 support + predicted): 10/14, 5/10, 0/1.
        assert_eq!(cm.f_beta(2.0, ZeroDivision::Zero).unwrap()[..3], [10.0 / 14.0, 0.5, 0.0]);
        assert_eq!(cm.f_beta(0.0, ZeroDivision::Zero).unwrap(), cm.precision(ZeroDivision::Zero).unwrap());
        assert_eq!(cm.f_beta(f64::INFINITY, ZeroDivision::Zero).unwrap(), cm.recall(ZeroDivision::Zero).unwrap());
    }

    #[test]
    fn label_modes_change_only_the_macro_average() {
        let cm = cm();
        let present = PrfConfig::new();
        let all = PrfConfig::new().labels(Labels::All);
        // Present = {0, 1, 2}: macro precision (1 + 0.5 + 0) / 3; All adds class 3 with 0/0 → 0.
        assert_eq!(cm.precision_score(&present).unwrap(), Score::Scalar(0.5));
        assert_eq!(cm.precision_score(&all).unwrap(), Score::Scalar(1.5 / 4.0));
        for avg in [Average::Micro, Average::Weighted] {
            assert_eq!(
                cm.f1_score(&present.clone().average(avg)).unwrap(),
                cm.f1_score(&all.clone().average(avg)).unwrap()
            );
        }
        // Micro F1 over every present label = accuracy.
        assert_eq!(cm.f1_score(&present.clone().average(Average::Micro)).unwrap().scalar(), Some(0.6));
    }

    #[test]
    fn undefined_lists_follow_the_denominators() {
        let cm = cm();
        let out = cm.precision_recall_fscore_support(&PrfConfig::new().labels(Labels::All)).unwrap();
        assert_eq!(out.undefined.precision, vec![3]);
        assert_eq!(out.undefined.recall, vec![2, 3]);
        assert_eq!(out.undefined.f_score, vec![3]);
        let micro = cm
            .precision_recall_fscore_support(
                &PrfConfig::new().average(Average::Micro).labels(Labels::Given(vec![3, 2])),
            )
            .unwrap();
        // Σ predicted over {3, 2} = 1, Σ support = 0.
        assert!(micro.undefined.precision.is_empty());
        assert_eq!(micro.undefined.recall, vec![3, 2]);
    }

    #[test]
    fn weighted_average_with_zero_weights_falls_back_to_the_mean() {
        let cm = cm();
        // Classes 2 and 3 have support 0: weights all zero → plain mean of precisions (0 and 0/0 → 1).
        let cfg = PrfConfig::new()
            .average(Average::Weighted)
            .labels(Labels::Given(vec![2, 3]))
            .zero_division(ZeroDivision::One);
        assert_eq!(cm.precision_score(&cfg).unwrap(), Score::Scalar(0.5));
        assert!(nan_average(&[f64::NAN, f64::NAN], None).is_nan());
        assert_eq!(nan_average(&[f64::NAN, 2.0, 4.0], Some(&[5.0, 1.0, 3.0])), 14.0 / 4.0);
    }

    #[test]
    fn bad_configurations_are_refused() {
        let cm = cm();
        for beta in [-1.0, f64::NAN, f64::NEG_INFINITY] {
            assert!(matches!(cm.fbeta_score(&PrfConfig::new().beta(beta)), Err(Error::Parameter { name: "beta", .. })));
        }
        assert_eq!(cm.f1_score(&PrfConfig::new().labels(Labels::Given(vec![]))), Err(Error::Empty { arg: "labels" }));
        assert_eq!(
            cm.f1_score(&PrfConfig::new().labels(Labels::Given(vec![0, 4]))),
            Err(Error::LabelOutOfRange { arg: "labels", label: 4, classes: 4, index: 1 })
        );
        // Three classes present: not binary.
        assert!(matches!(
            cm.f1_score(&PrfConfig::new().average(Average::Binary { pos: 1 })),
            Err(Error::Degenerate { .. })
        ));
        assert!(matches!(
            cm.f1_score(&PrfConfig::new().average(Average::Binary { pos: 9 })),
            Err(Error::LabelOutOfRange { arg: "pos_label", .. })
        ));
        assert_eq!(ConfusionMatrix::new(3).unwrap().f1(ZeroDivision::Warn), Err(Error::Empty { arg: "y_true" }));
    }

    #[test]
    fn repeated_given_labels_count_twice_as_in_sklearn() {
        // precision_recall_fscore_support([0, 0, 1, 2, 2, 1], [0, 1, 1, 2, 0, 1], labels=[0, 0, 2], average=...)
        // with scikit-learn 1.9: macro (0.6666666666666666, 0.5, 0.5555555555555555), micro (0.6, 0.5,
        // 0.5454545454545454).
        let cm =
            ConfusionMatrix::from_labels(3, array![0, 0, 1, 2, 2, 1].view(), array![0, 1, 1, 2, 0, 1].view()).unwrap();
        let cfg = PrfConfig::new().labels(Labels::Given(vec![0, 0, 2]));
        let macro_ = cm.precision_recall_fscore_support(&cfg).unwrap();
        let got = [macro_.precision.scalar(), macro_.recall.scalar(), macro_.f_score.scalar()];
        let want = [0.6666666666666666, 0.5, 0.5555555555555555];
        for (g, w) in got.iter().zip(want) {
            assert!((g.unwrap() - w).abs() < 1e-12, "{g:?} vs {w}");
        }
        let micro = cm.precision_recall_fscore_support(&cfg.average(Average::Micro)).unwrap();
        let got = [micro.precision.scalar(), micro.recall.scalar(), micro.f_score.scalar()];
        for (g, w) in got.iter().zip([0.6, 0.5, 0.5454545454545454]) {
            assert!((g.unwrap() - w).abs() < 1e-12, "{g:?} vs {w}");
        }
    }

    #[test]
    fn parse_and_display() {
        assert_eq!("Macro".parse::<Average>().unwrap(), Average::Macro);
        assert_eq!("binary".parse::<Average>().unwrap(), Average::Binary { pos: 1 });
        assert!(matches!("mean".parse::<Average>(), Err(Error::ParameterText { .. })));
        assert_eq!("nan".parse::<ZeroDivision>().unwrap(), ZeroDivision::Nan);
        assert_eq!("1.0".parse::<ZeroDivision>().unwrap(), ZeroDivision::One);
        assert!("2".parse::<ZeroDivision>().is_err());
        assert_eq!(Average::Binary { pos: 0 }.to_string(), "binary(pos_label=0)");
        assert_eq!(ZeroDivision::Warn.to_string(), "warn");
        assert_eq!("ALL".parse::<Labels>().unwrap(), Labels::All);
        assert_eq!("3, 0,5".parse::<Labels>().unwrap(), Labels::Given(vec![3, 0, 5]));
        assert!(matches!("1,-2".parse::<Labels>(), Err(Error::ParameterText { .. })));
        assert!("".parse::<Labels>().is_err());
    }
}
