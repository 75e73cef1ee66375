//! Multi-label classification from indicator matrices: per-label 2×2 confusion counts, precision / recall / F-β /
//! Jaccard with every averaging including `samples`, Hamming loss and subset accuracy (scikit-learn).

use std::collections::BTreeMap;

use ndarray::{Array3, ArrayView2};

use losskit_tensor::{Error, Result};

use crate::agreement::np_average;
use crate::prf::{nan_average, prf_divide};
use crate::{Average, Labels, MetricState, PrfConfig, PrfScores, Score, Undefined};

/// Mergeable counts for multi-label classification with `n_labels` labels: per label the true positives, false
/// positives and false negatives, the number of samples, and a histogram of per-sample `(tp, n_true, n_pred)`
/// triples from which every sample-wise (`average='samples'`) metric follows exactly, for any β and `zero_division`.
///
/// Inputs are indicator matrices `y_true`, `y_pred` \[N, L\] of 0/1 (scikit-learn's multilabel-indicator format).
/// All counts are integers, so any split of the data merges to exactly the same state.
///
/// # Examples
/// ```
/// use losskit_metrics::{Average, MultilabelConfusion, PrfConfig};
/// let mut m = MultilabelConfusion::new(3)?;
/// m.update(ndarray::array![[1_i64, 0, 1], [0, 1, 0]].view(), ndarray::array![[1_i64, 1, 0], [0, 1, 0]].view())?;
/// assert_eq!(m.hamming_loss()?, 2.0 / 6.0);
/// assert_eq!(m.subset_accuracy()?, 0.5);
/// let f1 = m.precision_recall_fscore_support(&PrfConfig::new().average(Average::Samples))?.f_score;
/// assert_eq!(f1.scalar(), Some((0.5 + 1.0) / 2.0));
/// # Ok::<(), losskit_metrics::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultilabelConfusion {
    tp: Vec<u64>,
    fp: Vec<u64>,
    fn_: Vec<u64>,
    n_samples: u64,
    /// (tp, n_true, n_pred) of a sample → number of samples.
    samples: BTreeMap<(u32, u32, u32), u64>,
}

impl MultilabelConfusion {
    /// An empty state for `n_labels` labels.
    ///
    /// # Errors
    /// [`Error::Parameter`] when `n_labels` is 0 or above 2³² − 1.
    pub fn new(n_labels: usize) -> Result<Self> {
        if n_labels == 0 || n_labels > u32::MAX as usize {
            return Err(Error::Parameter { name: "n_labels", value: n_labels as f64, reason: "must be in 1..2^32" });
        }
        Ok(Self {
            tp: vec![0; n_labels],
            fp: vec![0; n_labels],
            fn_: vec![0; n_labels],
            n_samples: 0,
            samples: BTreeMap::new(),
        })
    }

    /// Number of labels L.
    pub fn n_labels(&self) -> usize {
        self.tp.len()
    }

    /// Number of samples seen.
    pub fn n_samples(&self) -> u64 {
        self.n_samples
    }

    /// Adds a batch of indicator matrices `y_true`, `y_pred` \[N, L\] (entries 0 or 1). All-or-nothing.
    ///
    /// # Errors
    /// [`Error::Shape`] when a matrix is not \[N, L\] with the state's L or the two differ;
    /// [`Error::LabelOutOfRange`] (with `classes` = 2 and the flat row-major index) for an entry other than 0 or 1.
    pub fn update(&mut self, y_true: ArrayView2<'_, i64>, y_pred: ArrayView2<'_, i64>) -> Result<()> {
        let l = self.n_labels();
        let want = format!("[N, {l}]");
        for (arg, a) in [("y_true", &y_true), ("y_pred", &y_pred)] {
            if a.ncols() != l {
                return Err(Error::Shape { arg, expected: want.clone(), got: a.shape().to_vec() });
            }
        }
        if y_pred.nrows() != y_true.nrows() {
            return Err(Error::Shape {
                arg: "y_pred",
                expected: format!("[{}, {l}]", y_true.nrows()),
                got: y_pred.shape().to_vec(),
            });
        }
        for (arg, a) in [("y_true", &y_true), ("y_pred", &y_pred)] {
            if let Some((index, &label)) = a.iter().enumerate().find(|(_, v)| **v != 0 && **v != 1) {
                return Err(Error::LabelOutOfRange { arg, label, classes: 2, index });
            }
        }
        for (t, p) in y_true.rows().into_iter().zip(y_pred.rows()) {
            let (mut tp, mut nt, mut np) = (0u32, 0u32, 0u32);
            for (j, (&a, &b)) in t.iter().zip(&p).enumerate() {
                let (a, b) = (a == 1, b == 1);
                self.tp[j] += (a && b) as u64;
                self.fp[j] += (!a && b) as u64;
                self.fn_[j] += (a && !b) as u64;
                tp += (a && b) as u32;
                nt += a as u32;
                np += b as u32;
            }
            *self.samples.entry((tp, nt, np)).or_insert(0) += 1;
        }
        self.n_samples += y_true.nrows() as u64;
        Ok(())
    }

    /// Adds another state's counts.
    ///
    /// # Errors
    /// [`Error::Shape`] when the label counts differ.
    pub fn merge(&mut self, other: &Self) -> Result<()> {
        if other.n_labels() != self.n_labels() {
            return Err(Error::Shape {
                arg: "other",
                expected: format!("{} labels", self.n_labels()),
                got: vec![other.n_labels()],
            });
        }
        for (a, b) in [(&mut self.tp, &other.tp), (&mut self.fp, &other.fp), (&mut self.fn_, &other.fn_)] {
            a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        }
        self.n_samples += other.n_samples;
        for (k, v) in &other.samples {
            *self.samples.entry(*k).or_insert(0) += v;
        }
        Ok(())
    }

    /// Back to the empty state.
    pub fn reset(&mut self) {
        let l = self.n_labels();
        self.tp = vec![0; l];
        self.fp = vec![0; l];
        self.fn_ = vec![0; l];
        self.n_samples = 0;
        self.samples.clear();
    }

    fn check_non_empty(&self) -> Result<()> {
        if self.n_samples == 0 { Err(Error::Empty { arg: "y_true" }) } else { Ok(()) }
    }

    /// The per-label 2×2 matrices `[L, 2, 2]`, `[[tn, fp], [fn, tp]]`: scikit-learn's `multilabel_confusion_matrix`.
    pub fn multilabel_confusion_matrix(&self) -> Array3<u64> {
        let l = self.n_labels();
        let mut out = Array3::zeros((l, 2, 2));
        for j in 0..l {
            out[[j, 1, 1]] = self.tp[j];
            out[[j, 0, 1]] = self.fp[j];
            out[[j, 1, 0]] = self.fn_[j];
            out[[j, 0, 0]] = self.n_samples - self.tp[j] - self.fp[j] - self.fn_[j];
        }
        out
    }

    /// Hamming loss, the fraction of wrong label entries (scikit-learn's `hamming_loss`):
    /// `Σ_j (fp_j + fn_j) / (N · L)`.
    ///
    /// # Errors
    /// [`Error::Empty`] when no sample has been seen.
    pub fn hamming_loss(&self) -> Result<f64> {
        self.check_non_empty()?;
        let wrong: u64 = self.fp.iter().chain(&self.fn_).sum();
        Ok(wrong as f64 / (self.n_samples as f64 * self.n_labels() as f64))
    }

    /// Subset accuracy, the fraction of samples whose whole label set is right (scikit-learn's `accuracy_score` on
    /// multi-label data).
    ///
    /// # Errors
    /// [`Error::Empty`] when no sample has been seen.
    pub fn subset_accuracy(&self) -> Result<f64> {
        self.check_non_empty()?;
        let exact: u64 = self.samples.iter().filter(|((tp, nt, np), _)| tp == nt && tp == np).map(|(_, c)| c).sum();
        Ok(exact as f64 / self.n_samples as f64)
    }

    /// The labels evaluated: every label for `Present` and `All` (scikit-learn takes all L columns of an indicator
    /// matrix), the given ones otherwise.
    fn selected(&self, average: Average, labels: &Labels) -> Result<Vec<usize>> {
        let l = self.n_labels();
        match (average, labels) {
            (Average::Binary { .. }, _) => Err(Error::Input {
                what: "average=binary is not defined for multi-label data; use micro, macro, weighted or samples"
                    .into(),
            }),
            (Average::Samples, Labels::Given(_)) => Err(Error::Input {
                what: "average=samples is computed over every label; labels must be present or all".into(),
            }),
            (_, Labels::Present | Labels::All) => Ok((0..l).collect()),
            (_, Labels::Given(given)) => {
                if given.is_empty() {
                    return Err(Error::Empty { arg: "labels" });
                }
                if let Some((index, &label)) = given.iter().enumerate().find(|(_, g)| **g >= l) {
                    return Err(Error::LabelOutOfRange { arg: "labels", label: label as i64, classes: l, index });
                }
                Ok(given.clone())
            }
        }
    }

    /// (tp, predicted, support) per selected label as f64, summed for micro.
    fn sums(&self, labels: &[usize], average: Average) -> [Vec<f64>; 3] {
        let mut tp: Vec<f64> = labels.iter().map(|&j| self.tp[j] as f64).collect();
        let mut pred: Vec<f64> = labels.iter().map(|&j| (self.tp[j] + self.fp[j]) as f64).collect();
        let mut true_: Vec<f64> = labels.iter().map(|&j| (self.tp[j] + self.fn_[j]) as f64).collect();
        if average == Average::Micro {
            for v in [&mut tp, &mut pred, &mut true_] {
                *v = vec![v.iter().sum()];
            }
        }
        [tp, pred, true_]
    }

    /// Precision, recall, F-β and support as scikit-learn's `precision_recall_fscore_support` on indicator matrices
    /// (formulas in [`ConfusionMatrix::precision_recall_fscore_support`](crate::ConfusionMatrix::precision_recall_fscore_support)),
    /// with [`Average::Samples`]: the metrics of each sample's label set (tp, n_true, n_pred), zero-division values
    /// included, averaged over the samples leaving NaN out. For `Samples`, [`PrfScores::undefined`] is left empty
    /// (it would list samples, not labels) and `labels` lists every label.
    ///
    /// # Errors
    /// [`Error::Parameter`] for an invalid β; [`Error::Empty`] when no sample has been seen; [`Error::Input`] for
    /// [`Average::Binary`] or `Samples` with given labels; label errors as for a [`ConfusionMatrix`](crate::ConfusionMatrix).
    pub fn precision_recall_fscore_support(&self, cfg: &PrfConfig) -> Result<PrfScores> {
        cfg.check()?;
        self.check_non_empty()?;
        let labels = self.selected(cfg.average, &cfg.labels)?;
        let zd = cfg.zero_division;
        let beta = cfg.beta;
        let b2 = beta * beta;
        let f_of = |tp: &[f64], true_: &[f64], pred: &[f64], p: &(Vec<f64>, Vec<usize>), r: &(Vec<f64>, Vec<usize>)| {
            if beta.is_infinite() {
                r.clone()
            } else if beta == 0.0 {
                p.clone()
            } else {
                let num: Vec<f64> = tp.iter().map(|&t| (1.0 + b2) * t).collect();
                let den: Vec<f64> = true_.iter().zip(pred).map(|(&t, &p)| b2 * t + p).collect();
                prf_divide(&num, &den, zd)
            }
        };
        if cfg.average == Average::Samples {
            let (mut tp, mut pred, mut true_, mut counts) = (vec![], vec![], vec![], vec![]);
            for (&(t, nt, np), &c) in &self.samples {
                tp.push(t as f64);
                true_.push(nt as f64);
                pred.push(np as f64);
                counts.push(c as f64);
            }
            let p = prf_divide(&tp, &pred, zd);
            let r = prf_divide(&tp, &true_, zd);
            let f = f_of(&tp, &true_, &pred, &p, &r);
            let avg = |v: &[f64]| Score::Scalar(nan_average(v, Some(&counts)));
            return Ok(PrfScores {
                precision: avg(&p.0),
                recall: avg(&r.0),
                f_score: avg(&f.0),
                support: None,
                labels,
                undefined: Undefined::default(),
            });
        }
        let [tp, pred, true_] = self.sums(&labels, cfg.average);
        let p = prf_divide(&tp, &pred, zd);
        let r = prf_divide(&tp, &true_, zd);
        let f = f_of(&tp, &true_, &pred, &p, &r);
        let expand = |u: &Vec<usize>| match cfg.average {
            Average::Micro if !u.is_empty() => labels.clone(),
            _ => u.iter().map(|&i| labels[i]).collect(),
        };
        let undefined = Undefined { precision: expand(&p.1), recall: expand(&r.1), f_score: expand(&f.1) };
        let weights = (cfg.average == Average::Weighted).then_some(true_.as_slice());
        let reduce = |v: Vec<f64>| match cfg.average {
            Average::None => Score::PerClass { labels: labels.clone(), values: v },
            _ => Score::Scalar(nan_average(&v, weights)),
        };
        let support =
            (cfg.average == Average::None).then(|| labels.iter().map(|&j| self.tp[j] + self.fn_[j]).collect());
        Ok(PrfScores { precision: reduce(p.0), recall: reduce(r.0), f_score: reduce(f.0), support, labels, undefined })
    }

    /// The Jaccard index per label or sample as scikit-learn's `jaccard_score` on indicator matrices:
    /// `tp / (tp + fp + fn)`, zero-division value when the denominator is 0, numpy means (NaN propagates), the
    /// weighted mean falling back to the plain mean when every support is 0.
    ///
    /// # Errors
    /// As [`precision_recall_fscore_support`](Self::precision_recall_fscore_support).
    pub fn jaccard_score(&self, cfg: &PrfConfig) -> Result<Score> {
        cfg.check()?;
        self.check_non_empty()?;
        let labels = self.selected(cfg.average, &cfg.labels)?;
        if cfg.average == Average::Samples {
            let (mut num, mut den, mut counts) = (vec![], vec![], vec![]);
            for (&(t, nt, np), &c) in &self.samples {
                num.push(t as f64);
                den.push((nt + np - t) as f64);
                counts.push(c as f64);
            }
            let (v, _) = prf_divide(&num, &den, cfg.zero_division);
            return Ok(Score::Scalar(np_average(&v, Some(&counts))));
        }
        let [tp, pred, true_] = self.sums(&labels, cfg.average);
        let den: Vec<f64> = tp.iter().zip(&pred).zip(&true_).map(|((&t, &p), &s)| s + p - t).collect();
        let (values, _) = prf_divide(&tp, &den, cfg.zero_division);
        Ok(match cfg.average {
            Average::None => Score::PerClass { labels, values },
            Average::Weighted if true_.iter().any(|&w| w != 0.0) => Score::Scalar(np_average(&values, Some(&true_))),
            _ => Score::Scalar(np_average(&values, None)),
        })
    }
}

/// `compute` gives (Hamming loss, subset accuracy).
impl MetricState for MultilabelConfusion {
    type Output = (f64, f64);

    fn merge(&mut self, other: &Self) -> Result<()> {
        MultilabelConfusion::merge(self, other)
    }

    fn compute(&self) -> Result<(f64, f64)> {
        Ok((self.hamming_loss()?, self.subset_accuracy()?))
    }

    fn reset(&mut self) {
        MultilabelConfusion::reset(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn counts_and_bad_input() {
        let mut m = MultilabelConfusion::new(2).unwrap();
        m.update(array![[1, 0], [1, 1]].view(), array![[1, 1], [0, 1]].view()).unwrap();
        assert_eq!(m.multilabel_confusion_matrix(), array![[[0, 0], [1, 1]], [[0, 1], [0, 1]]]);
        let before = m.clone();
        let err = m.update(array![[1, 2]].view(), array![[0, 0]].view()).unwrap_err();
        assert_eq!(err, Error::LabelOutOfRange { arg: "y_true", label: 2, classes: 2, index: 1 });
        assert!(matches!(m.update(array![[1, 0, 1]].view(), array![[1, 0, 1]].view()), Err(Error::Shape { .. })));
        assert!(matches!(m.update(array![[1, 0]].view(), array![[1, 0], [0, 0]].view()), Err(Error::Shape { .. })));
        assert_eq!(m, before);
        assert!(MultilabelConfusion::new(0).is_err());
        assert_eq!(MultilabelConfusion::new(2).unwrap().hamming_loss(), Err(Error::Empty { arg: "y_true" }));
        assert!(m.precision_recall_fscore_support(&PrfConfig::new().average(Average::Binary { pos: 1 })).is_err());
    }
}
