//! More confusion-matrix metrics: specificity and G-mean (imbalanced-learn), Matthews correlation, Cohen's kappa and
//! Jaccard (scikit-learn), all read from the counts of a [`ConfusionMatrix`].
//!
//! With `tp_c = C[c, c]`, `support_c` (row sum), `predicted_c` (column sum) and `N` samples, the one-vs-rest counts of
//! class c are
//! ```text
//! fp_c = predicted_c − tp_c      fn_c = support_c − tp_c      tn_c = N − support_c − predicted_c + tp_c
//! ```

use std::fmt;
use std::str::FromStr;

use ndarray::Array3;

use losskit_tensor::{Error, Result};

use crate::prf::prf_divide;
use crate::{Average, ConfusionMatrix, Labels, PrfConfig, Score};

/// numpy's `np.average`: the (weighted) mean, NaN propagating; `None` weights give the plain mean. The caller makes
/// sure weights do not sum to zero.
pub(crate) fn np_average(values: &[f64], weights: Option<&[f64]>) -> f64 {
    match weights {
        None => values.iter().sum::<f64>() / values.len() as f64,
        Some(w) => {
            let scale: f64 = w.iter().sum();
            values.iter().zip(w).map(|(v, w)| v * w).sum::<f64>() / scale
        }
    }
}

/// The weights of Cohen's kappa (scikit-learn's `weights` keyword): how much a disagreement between the i-th and
/// j-th label (positions in the label list) counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum KappaWeights {
    /// 1 off the diagonal, 0 on it (`weights=None`): plain Cohen's kappa. The default.
    #[default]
    None,
    /// `|i − j|` (`weights='linear'`).
    Linear,
    /// `(i − j)²` (`weights='quadratic'`).
    Quadratic,
}

impl fmt::Display for KappaWeights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KappaWeights::None => "none",
            KappaWeights::Linear => "linear",
            KappaWeights::Quadratic => "quadratic",
        })
    }
}

impl FromStr for KappaWeights {
    type Err = Error;

    /// Parses `none`, `linear` or `quadratic` (case-insensitive).
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Ok(KappaWeights::None),
            "linear" => Ok(KappaWeights::Linear),
            "quadratic" => Ok(KappaWeights::Quadratic),
            _ => Err(Error::ParameterText {
                name: "weights".into(),
                value: s.into(),
                reason: "expected none | linear | quadratic".into(),
            }),
        }
    }
}

/// Options of [`ConfusionMatrix::cohen_kappa_score`] (scikit-learn's keywords `weights`, `labels`,
/// `replace_undefined_by`).
#[derive(Clone, Debug, PartialEq)]
pub struct KappaConfig {
    /// Disagreement weights. Default [`KappaWeights::None`].
    pub weights: KappaWeights,
    /// The labels of the matrix, in order (the order matters for linear and quadratic weights, which use positions in
    /// this list). Default [`Labels::Present`] (scikit-learn's `labels=None`).
    pub labels: Labels,
    /// The value returned when kappa is 0/0. Default NaN (scikit-learn's default `np.nan`).
    pub replace_undefined_by: f64,
}

impl Default for KappaConfig {
    fn default() -> Self {
        Self { weights: KappaWeights::None, labels: Labels::Present, replace_undefined_by: f64::NAN }
    }
}

impl KappaConfig {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the weights (default [`KappaWeights::None`]).
    pub fn weights(mut self, weights: KappaWeights) -> Self {
        self.weights = weights;
        self
    }

    /// Sets the labels (default [`Labels::Present`]).
    pub fn labels(mut self, labels: Labels) -> Self {
        self.labels = labels;
        self
    }

    /// Sets the value of an undefined kappa (default NaN).
    pub fn replace_undefined_by(mut self, value: f64) -> Self {
        self.replace_undefined_by = value;
        self
    }

    /// Checks the parameters.
    ///
    /// # Errors
    /// [`Error::Parameter`] when `replace_undefined_by` is outside [−1, 1] (NaN allowed).
    pub fn check(&self) -> Result<()> {
        let v = self.replace_undefined_by;
        if !v.is_nan() && !(-1.0..=1.0).contains(&v) {
            return Err(Error::Parameter {
                name: "replace_undefined_by",
                value: v,
                reason: "must be in [-1, 1] or NaN",
            });
        }
        Ok(())
    }
}

impl ConfusionMatrix {
    /// The one-vs-rest 2×2 matrix of every class, `[C, 2, 2]` with `[[tn, fp], [fn, tp]]` per class: scikit-learn's
    /// `multilabel_confusion_matrix(y_true, y_pred, labels=range(C))`.
    pub fn one_vs_rest(&self) -> Array3<u64> {
        let c = self.n_classes();
        let (support, predicted, n) = (self.support(), self.predicted(), self.total());
        let mut out = Array3::zeros((c, 2, 2));
        for k in 0..c {
            let tp = self.counts()[[k, k]];
            out[[k, 1, 1]] = tp;
            out[[k, 0, 1]] = predicted[k] - tp;
            out[[k, 1, 0]] = support[k] - tp;
            out[[k, 0, 0]] = n + tp - support[k] - predicted[k];
        }
        out
    }

    /// (tp, predicted, support, tn) as f64 for the selected labels, summed to one entry for the micro average.
    fn ovr_sums(&self, labels: &[usize], average: Average) -> [Vec<f64>; 4] {
        let (support, predicted, n) = (self.support(), self.predicted(), self.total());
        let mut tp: Vec<f64> = labels.iter().map(|&l| self.counts()[[l, l]] as f64).collect();
        let mut pred: Vec<f64> = labels.iter().map(|&l| predicted[l] as f64).collect();
        let mut true_: Vec<f64> = labels.iter().map(|&l| support[l] as f64).collect();
        let mut tn: Vec<f64> =
            labels.iter().map(|&l| (n + self.counts()[[l, l]] - support[l] - predicted[l]) as f64).collect();
        if average == Average::Micro {
            for v in [&mut tp, &mut pred, &mut true_, &mut tn] {
                *v = vec![v.iter().sum()];
            }
        }
        [tp, pred, true_, tn]
    }

    /// Sensitivity (recall) and specificity per selected label with imbalanced-learn's rules, or `None` when
    /// imbalanced-learn returns (0, 0) without computing (binary average with `pos` absent from a one-class batch,
    /// weighted average with zero total support).
    fn sensitivity_specificity(&self, cfg: &PrfConfig) -> Result<Option<(Score, Score)>> {
        cfg.check()?;
        self.check_non_empty()?;
        if let Average::Binary { pos } = cfg.average {
            let present = self.labels_present();
            if pos < self.n_classes() && present.len() < 2 && !present.contains(&pos) {
                return Ok(None);
            }
        }
        let labels = self.selected_labels(cfg.average, &cfg.labels)?;
        let [tp, pred, true_, tn] = self.ovr_sums(&labels, cfg.average);
        let zd = cfg.zero_division;
        let fp_tn: Vec<f64> = tn.iter().zip(&pred).zip(&tp).map(|((&n, &p), &t)| n + p - t).collect();
        let (spec, _) = prf_divide(&tn, &fp_tn, zd);
        let (sens, _) = prf_divide(&tp, &true_, zd);
        let weights = match cfg.average {
            Average::Weighted => {
                if true_.iter().sum::<f64>() == 0.0 {
                    return Ok(None);
                }
                Some(true_.as_slice())
            }
            _ => None,
        };
        let reduce = |v: Vec<f64>| match cfg.average {
            Average::None => Score::PerClass { labels: labels.clone(), values: v },
            _ => Score::Scalar(np_average(&v, weights)),
        };
        Ok(Some((reduce(sens), reduce(spec))))
    }

    /// Specificity, the recall of the negative class, `tn_c / (tn_c + fp_c)` per class, averaged as
    /// imbalanced-learn's `specificity_score(y_true, y_pred, labels=…, pos_label=…, average=…)` (β ignored):
    /// ```text
    /// specificity_c = tn_c / (N − support_c)
    /// ```
    /// A zero denominator gives `cfg.zero_division`'s value (imbalanced-learn: 0). Averages are numpy means (NaN
    /// propagates); the weighted average uses the supports and is 0 when they sum to 0; the binary average is 0 when
    /// the batch holds one class and it is not `pos` (imbalanced-learn's conventions).
    ///
    /// # Errors
    /// As [`precision_recall_fscore_support`](Self::precision_recall_fscore_support).
    pub fn specificity_score(&self, cfg: &PrfConfig) -> Result<Score> {
        Ok(self.sensitivity_specificity(cfg)?.map_or(Score::Scalar(0.0), |(_, s)| s))
    }

    /// The geometric mean of sensitivity and specificity, `sqrt(sensitivity · specificity)`, per class or of the
    /// averages: imbalanced-learn's `geometric_mean_score(average=…)` for averages other than `'multiclass'` (for
    /// that default see [`geometric_mean_score`](Self::geometric_mean_score)).
    ///
    /// # Errors
    /// As [`precision_recall_fscore_support`](Self::precision_recall_fscore_support).
    pub fn geometric_mean_score_averaged(&self, cfg: &PrfConfig) -> Result<Score> {
        Ok(match self.sensitivity_specificity(cfg)? {
            None => Score::Scalar(0.0),
            Some((Score::PerClass { labels, values }, spec)) => Score::PerClass {
                labels,
                values: values.iter().zip(spec.values()).map(|(a, b)| (a * b).sqrt()).collect(),
            },
            Some((sens, spec)) => Score::Scalar((sens.values()[0] * spec.values()[0]).sqrt()),
        })
    }

    /// G-mean, the geometric mean of the per-class recalls (imbalanced-learn's `geometric_mean_score` with its
    /// default `average='multiclass'`):
    /// ```text
    /// G = (Π_{c∈L} r_c)^(1/|L|)        r_c = tp_c / support_c, 0 when support_c = 0, then 0 replaced by `correction`
    /// ```
    /// over the labels L ([`Labels::Present`]: those in `y_true` ∪ `y_pred`). Any zero recall (without correction)
    /// makes G = 0.
    ///
    /// # Errors
    /// [`Error::Empty`] when no sample has been seen; [`Error::Parameter`] for a negative or non-finite
    /// `correction`; label errors as [`precision_recall_fscore_support`](Self::precision_recall_fscore_support).
    pub fn geometric_mean_score(&self, labels: &Labels, correction: f64) -> Result<f64> {
        if !correction.is_finite() || correction < 0.0 {
            return Err(Error::Parameter { name: "correction", value: correction, reason: "must be finite and ≥ 0" });
        }
        self.check_non_empty()?;
        let labels = self.selected_labels(Average::Macro, labels)?;
        let support = self.support();
        // scipy.stats.gmean: exp(mean(log r)).
        let mut log_sum = 0.0;
        for &l in &labels {
            let r = if support[l] == 0 { 0.0 } else { self.counts()[[l, l]] as f64 / support[l] as f64 };
            let r = if r == 0.0 { correction } else { r };
            log_sum += r.ln();
        }
        Ok((log_sum / labels.len() as f64).exp())
    }

    /// The Matthews correlation coefficient (scikit-learn's `matthews_corrcoef`, multiclass form of Gorodkin 2004):
    /// ```text
    /// MCC = (c·s − Σ_k p_k t_k) / sqrt((s² − Σ_k p_k²) · (s² − Σ_k t_k²))
    /// ```
    /// with c = Σ tp, s = N, t_k = support, p_k = predicted; 0 when the denominator is 0 (a constant `y_true` or
    /// `y_pred`), as scikit-learn.
    ///
    /// # Errors
    /// [`Error::Empty`] when no sample has been seen.
    pub fn matthews_corrcoef(&self) -> Result<f64> {
        self.check_non_empty()?;
        let t: Vec<f64> = self.support().iter().map(|&v| v as f64).collect();
        let p: Vec<f64> = self.predicted().iter().map(|&v| v as f64).collect();
        let n_correct = self.counts().diag().sum() as f64;
        let n = p.iter().sum::<f64>();
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        let cov_ytyp = n_correct * n - dot(&t, &p);
        let cov_ypyp = n * n - dot(&p, &p);
        let cov_ytyt = n * n - dot(&t, &t);
        let den = cov_ypyp * cov_ytyt;
        Ok(if den == 0.0 { 0.0 } else { cov_ytyp / den.sqrt() })
    }

    /// Cohen's kappa between `y_true` and `y_pred` (scikit-learn's `cohen_kappa_score(y1=y_true, y2=y_pred)`):
    /// ```text
    /// κ = 1 − Σ_ij w_ij M_ij / Σ_ij w_ij E_ij        E_ij = (Σ_k M_ki)(Σ_k M_jk) / Σ M
    /// ```
    /// where M is the confusion matrix restricted to the labels of `cfg.labels` (in that order) and w the weights
    /// ([`KappaWeights`]). When Σ M = 0 or the weighted expectation is 0, the result is `cfg.replace_undefined_by`.
    ///
    /// # Errors
    /// [`Error::Parameter`] for a bad `replace_undefined_by`; [`Error::Empty`] when no sample has been seen or
    /// `Labels::Given` is empty; [`Error::LabelOutOfRange`] for a given label outside `0..n_classes`;
    /// [`Error::Degenerate`] when no given label occurs in `y_true` (scikit-learn's `ValueError`).
    pub fn cohen_kappa_score(&self, cfg: &KappaConfig) -> Result<f64> {
        cfg.check()?;
        self.check_non_empty()?;
        let labels = self.selected_labels(Average::Macro, &cfg.labels)?;
        let support = self.support();
        if labels.iter().all(|&l| support[l] == 0) {
            return Err(Error::Degenerate { what: format!("cohen kappa: no label of {labels:?} occurs in y_true") });
        }
        let k = labels.len();
        let m = |i: usize, j: usize| self.counts()[[labels[i], labels[j]]] as f64;
        let sum0: Vec<f64> = (0..k).map(|j| (0..k).map(|i| m(i, j)).sum()).collect();
        let sum1: Vec<f64> = (0..k).map(|i| (0..k).map(|j| m(i, j)).sum()).collect();
        let total: f64 = sum0.iter().sum();
        if total == 0.0 {
            return Ok(cfg.replace_undefined_by);
        }
        let w = |i: usize, j: usize| {
            let d = i.abs_diff(j) as f64;
            match cfg.weights {
                KappaWeights::None => (i != j) as u8 as f64,
                KappaWeights::Linear => d,
                KappaWeights::Quadratic => d * d,
            }
        };
        let (mut num, mut den) = (0.0, 0.0);
        for i in 0..k {
            for j in 0..k {
                num += w(i, j) * m(i, j);
                den += w(i, j) * (sum0[i] * sum1[j] / total);
            }
        }
        if den == 0.0 {
            return Ok(cfg.replace_undefined_by);
        }
        Ok(1.0 - num / den)
    }

    /// The Jaccard index (intersection over union) per class, averaged as scikit-learn's `jaccard_score` (β
    /// ignored):
    /// ```text
    /// J_c = tp_c / (tp_c + fp_c + fn_c) = tp_c / (support_c + predicted_c − tp_c)
    /// ```
    /// A zero denominator (class neither true nor predicted) gives `cfg.zero_division`'s value. Unlike precision and
    /// recall, the averages are numpy means in which NaN propagates (scikit-learn's `_average`); the weighted
    /// average uses the supports, or the plain mean when they are all 0.
    ///
    /// # Errors
    /// As [`precision_recall_fscore_support`](Self::precision_recall_fscore_support).
    pub fn jaccard_score(&self, cfg: &PrfConfig) -> Result<Score> {
        cfg.check()?;
        self.check_non_empty()?;
        let labels = self.selected_labels(cfg.average, &cfg.labels)?;
        let [tp, pred, true_, _] = self.ovr_sums(&labels, cfg.average);
        let den: Vec<f64> = tp.iter().zip(&pred).zip(&true_).map(|((&t, &p), &s)| s + p - t).collect();
        let (values, _) = prf_divide(&tp, &den, cfg.zero_division);
        Ok(match cfg.average {
            Average::None => Score::PerClass { labels, values },
            Average::Weighted if true_.iter().any(|&w| w != 0.0) => Score::Scalar(np_average(&values, Some(&true_))),
            _ => Score::Scalar(np_average(&values, None)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn cm() -> ConfusionMatrix {
        // rows truth, columns prediction
        ConfusionMatrix::from_counts(array![[5_u64, 1, 0], [2, 3, 1], [0, 2, 4]]).unwrap()
    }

    #[test]
    fn one_vs_rest_counts_add_up() {
        let m = cm().one_vs_rest();
        for k in 0..3 {
            assert_eq!(m.slice(ndarray::s![k, .., ..]).sum(), 18);
        }
        // class 0: tp 5, fp 2, fn 1, tn 10
        assert_eq!(m.slice(ndarray::s![0, .., ..]), array![[10, 2], [1, 5]]);
    }

    #[test]
    fn hand_checked_mcc_and_kappa() {
        // Binary: tp 3, fn 1, fp 2, tn 4 → MCC = (3·4 − 2·1)/sqrt(5·5·4·6)
        let b = ConfusionMatrix::from_counts(array![[4_u64, 2], [1, 3]]).unwrap();
        let want = (12.0 - 2.0) / (5.0_f64 * 5.0 * 4.0 * 6.0).sqrt();
        assert!((b.matthews_corrcoef().unwrap() - want).abs() < 1e-15);
        // kappa: po = 0.7, pe = (6·5 + 4·5)/100 = 0.5 → κ = 0.4
        assert!((b.cohen_kappa_score(&KappaConfig::new()).unwrap() - 0.4).abs() < 1e-15);
        // Constant prediction: MCC 0 as scikit-learn.
        let c = ConfusionMatrix::from_counts(array![[0_u64, 3], [0, 5]]).unwrap();
        assert_eq!(c.matthews_corrcoef().unwrap(), 0.0);
    }

    #[test]
    fn jaccard_and_specificity_by_hand() {
        let m = cm();
        let j = m.jaccard_score(&PrfConfig::new().average(Average::None)).unwrap();
        // class 0: 5 / (6 + 7 − 5) = 5/8; class 1: 3/(6 + 6 − 3) = 1/3; class 2: 4/(6 + 5 − 4) = 4/7
        assert_eq!(j.values(), &[5.0 / 8.0, 3.0 / 9.0, 4.0 / 7.0]);
        let s = m.specificity_score(&PrfConfig::new().average(Average::None)).unwrap();
        // class 0: tn 10 / 12
        assert_eq!(s.values()[0], 10.0 / 12.0);
        let g = m.geometric_mean_score(&Labels::Present, 0.0).unwrap();
        let want = (5.0_f64 / 6.0 * 0.5 * 4.0 / 6.0).powf(1.0 / 3.0);
        assert!((g - want).abs() < 1e-15);
    }

    #[test]
    fn config_checks() {
        assert!(matches!(
            KappaConfig::new().replace_undefined_by(2.0).check(),
            Err(Error::Parameter { name: "replace_undefined_by", .. })
        ));
        assert!(cm().geometric_mean_score(&Labels::Present, -1.0).is_err());
        assert_eq!("Quadratic".parse::<KappaWeights>().unwrap(), KappaWeights::Quadratic);
        assert!("cubic".parse::<KappaWeights>().is_err());
        assert!(matches!(cm().jaccard_score(&PrfConfig::new().average(Average::Samples)), Err(Error::Input { .. })));
    }
}
