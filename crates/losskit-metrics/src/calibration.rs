//! Calibration: expected / maximum / RMS calibration error with torchmetrics' binning and the reliability-diagram
//! data ([`CalibrationError`]); Brier score and log loss as scikit-learn computes them ([`ProperScores`]).

use std::fmt;
use std::str::FromStr;

use ndarray::{ArrayView1, ArrayView2};

use losskit_tensor::{Error, Result, check};

use crate::MetricState;

/// Checks that every entry of `a` is a probability in \[0, 1\] (after the finiteness check).
fn probabilities<'a>(arg: &'static str, a: impl IntoIterator<Item = &'a f64>) -> Result<()> {
    for (i, &v) in a.into_iter().enumerate() {
        if !(0.0..=1.0).contains(&v) {
            return Err(Error::Input {
                what: format!("{arg}: value {v} at flat index {i} is not a probability in [0, 1]"),
            });
        }
    }
    Ok(())
}

/// torch's `linspace(start, end, steps)` in f64 as its scalar CPU kernel computes it (the first half forward from
/// `start`, the second half back from `end`). torch's vectorised kernel (used for 16 or more steps on AVX-512) adds
/// the step to the first element of each SIMD chunk instead, so an edge may differ from torchmetrics' by one ulp;
/// only a confidence exactly equal to such an edge can then fall into the neighbouring bin.
fn torch_linspace(start: f64, end: f64, steps: usize) -> Vec<f64> {
    if steps == 1 {
        return vec![start];
    }
    let step = (end - start) / (steps - 1) as f64;
    let half = steps / 2;
    (0..steps).map(|i| if i < half { start + step * i as f64 } else { end - step * (steps - i - 1) as f64 }).collect()
}

/// The norm of [`CalibrationError::calibration_error`] (torchmetrics' `norm`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CalibrationNorm {
    /// Σ_b (n_b / N) |acc_b − conf_b|: the expected calibration error (ECE). The default.
    #[default]
    L1,
    /// √(Σ_b (n_b / N) (acc_b − conf_b)²): the RMS calibration error (torchmetrics' `l2`, without debiasing).
    L2,
    /// max_b |acc_b − conf_b|: the maximum calibration error (MCE); empty bins count as 0.
    Max,
}

impl FromStr for CalibrationNorm {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "l1" => Ok(Self::L1),
            "l2" => Ok(Self::L2),
            "max" => Ok(Self::Max),
            other => Err(Error::ParameterText {
                name: "norm".into(),
                value: other.into(),
                reason: "expected l1 | l2 | max".into(),
            }),
        }
    }
}

impl fmt::Display for CalibrationNorm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::L1 => "l1",
            Self::L2 => "l2",
            Self::Max => "max",
        })
    }
}

/// The reliability diagram: per bin its edges, the mean confidence, the accuracy (fraction correct) and the count.
///
/// Bin b covers `[edges[b], edges[b + 1])`; as in torchmetrics there is one more bin than `n_bins`, holding only the
/// confidences equal to 1 (its right edge is repeated as 1). Empty bins have confidence and accuracy 0 (torchmetrics'
/// `nan_to_num`).
#[derive(Clone, Debug, PartialEq)]
pub struct ReliabilityDiagram {
    /// `n_bins + 2` edges: torch's `linspace(0, 1, n_bins + 1)`, then 1 again for the bin of confidence 1.
    pub edges: Vec<f64>,
    /// Mean confidence per bin (`n_bins + 1` values).
    pub confidence: Vec<f64>,
    /// Fraction of correct predictions per bin.
    pub accuracy: Vec<f64>,
    /// Number of samples per bin.
    pub count: Vec<u64>,
}

/// Binned calibration state, as torchmetrics' `BinaryCalibrationError` / `MulticlassCalibrationError`.
///
/// Each sample gives a confidence c ∈ \[0, 1\] and whether the prediction is correct: for binary data
/// ([`update_binary`](Self::update_binary)) c is the probability of class 1 and "correct" is the label (torchmetrics'
/// binary convention, not max(p, 1 − p)); for multiclass data ([`update_multiclass`](Self::update_multiclass)) c is
/// the largest probability of the row and "correct" whether its class (the first maximum) is the label. Bin edges are
/// `linspace(0, 1, n_bins + 1)`; the bin of c is the number of edges ≤ c minus one (`torch.bucketize(right=True) − 1`),
/// so c = 1 falls in an extra bin of its own.
/// ```text
/// ECE = Σ_b (n_b / N) |acc_b − conf_b|      MCE = max_b |acc_b − conf_b|      RMSCE = √(Σ_b (n_b / N)(acc_b − conf_b)²)
/// ```
/// The state keeps per bin the count, the number correct and the sum of confidences: O(n_bins) memory; merging adds
/// them (counts exactly, confidence sums to 1e-15 relative).
///
/// torchmetrics casts multiclass confidences to float32 before binning; this state stays in f64 (values agree to
/// ~1e-7; a confidence within float32 rounding of a bin edge may land in the neighbouring bin). Scores outside
/// \[0, 1\] are refused rather than passed through a sigmoid / softmax as torchmetrics does.
///
/// # Examples
/// ```
/// use losskit_metrics::CalibrationError;
/// // torchmetrics' docstring example: binary_calibration_error(preds, target, n_bins=2) = 0.29.
/// let mut ce = CalibrationError::new(2)?;
/// ce.update_binary(ndarray::array![0_i64, 0, 1, 1, 1].view(), ndarray::array![0.25, 0.25, 0.55, 0.75, 0.75].view())?;
/// assert!((ce.expected()? - 0.29).abs() < 1e-12);
/// assert!((ce.maximum()? - 0.95 / 3.0).abs() < 1e-12);
/// # Ok::<(), losskit_metrics::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct CalibrationError {
    edges: Vec<f64>,
    count: Vec<u64>,
    correct: Vec<u64>,
    confidence: Vec<f64>,
}

impl CalibrationError {
    /// An empty state with `n_bins` equal-width bins (torchmetrics' default is 15).
    ///
    /// # Errors
    /// [`Error::Parameter`] when `n_bins` is 0.
    pub fn new(n_bins: usize) -> Result<Self> {
        if n_bins == 0 {
            return Err(Error::Parameter { name: "n_bins", value: 0.0, reason: "must be ≥ 1" });
        }
        Ok(Self {
            edges: torch_linspace(0.0, 1.0, n_bins + 1),
            count: vec![0; n_bins + 1],
            correct: vec![0; n_bins + 1],
            confidence: vec![0.0; n_bins + 1],
        })
    }

    /// Number of bins (without the extra bin of confidence 1).
    pub fn n_bins(&self) -> usize {
        self.edges.len() - 1
    }

    /// Number of samples seen.
    pub fn total(&self) -> u64 {
        self.count.iter().sum()
    }

    fn add(&mut self, c: f64, correct: bool) {
        let b = self.edges.partition_point(|&e| e <= c).saturating_sub(1);
        self.count[b] += 1;
        self.correct[b] += correct as u64;
        self.confidence[b] += c;
    }

    /// Adds (confidence, correct) pairs directly: `confidence` \[N\] in \[0, 1\], `correct` \[N\].
    ///
    /// # Errors
    /// [`Error::Shape`], [`Error::NonFinite`], [`Error::Input`] for a confidence outside \[0, 1\].
    pub fn update(&mut self, confidence: ArrayView1<'_, f64>, correct: ArrayView1<'_, bool>) -> Result<()> {
        check::shape("correct", correct.shape(), &[Some(confidence.len())])?;
        check::finite("confidence", &confidence)?;
        probabilities("confidence", confidence.iter())?;
        for (&c, &ok) in confidence.iter().zip(correct.iter()) {
            self.add(c, ok);
        }
        Ok(())
    }

    /// Adds a binary batch: labels `y_true` \[N\] in {0, 1}, probabilities of class 1 `y_prob` \[N\] in \[0, 1\].
    /// All-or-nothing.
    ///
    /// # Errors
    /// [`Error::Shape`], [`Error::NonFinite`], [`Error::LabelOutOfRange`], [`Error::Input`] for a value outside
    /// \[0, 1\].
    pub fn update_binary(&mut self, y_true: ArrayView1<'_, i64>, y_prob: ArrayView1<'_, f64>) -> Result<()> {
        check::shape("y_prob", y_prob.shape(), &[Some(y_true.len())])?;
        check::finite("y_prob", &y_prob)?;
        check::labels("y_true", y_true, 2, None)?;
        probabilities("y_prob", y_prob.iter())?;
        for (&t, &p) in y_true.iter().zip(y_prob.iter()) {
            self.add(p, t == 1);
        }
        Ok(())
    }

    /// Adds a multiclass batch: labels `y_true` \[N\] in `0..C`, probabilities `y_prob` \[N, C\] in \[0, 1\] (rows
    /// are not required to sum to 1). All-or-nothing.
    ///
    /// # Errors
    /// [`Error::Shape`] (also for C = 0), [`Error::NonFinite`], [`Error::LabelOutOfRange`], [`Error::Input`] for a
    /// value outside \[0, 1\].
    pub fn update_multiclass(&mut self, y_true: ArrayView1<'_, i64>, y_prob: ArrayView2<'_, f64>) -> Result<()> {
        check::shape("y_prob", y_prob.shape(), &[Some(y_true.len()), None])?;
        let c = y_prob.ncols();
        if c == 0 {
            return Err(Error::Shape {
                arg: "y_prob",
                expected: "[N, C] with C ≥ 1".into(),
                got: y_prob.shape().to_vec(),
            });
        }
        check::finite("y_prob", &y_prob)?;
        check::labels("y_true", y_true, c, None)?;
        probabilities("y_prob", y_prob.iter())?;
        for (row, &t) in y_prob.rows().into_iter().zip(y_true.iter()) {
            let (mut best, mut conf) = (0, row[0]);
            for (j, &v) in row.iter().enumerate() {
                if v > conf {
                    best = j;
                    conf = v;
                }
            }
            self.add(conf, best as i64 == t);
        }
        Ok(())
    }

    /// (accuracy, mean confidence, proportion) per bin; errors when empty.
    fn bins(&self) -> Result<(Vec<f64>, Vec<f64>, Vec<f64>)> {
        let n = self.total();
        if n == 0 {
            return Err(Error::Empty { arg: "y_true" });
        }
        let div = |a: f64, b: u64| if b == 0 { 0.0 } else { a / b as f64 };
        let acc = self.correct.iter().zip(&self.count).map(|(&k, &m)| div(k as f64, m)).collect();
        let conf = self.confidence.iter().zip(&self.count).map(|(&s, &m)| div(s, m)).collect();
        let prop = self.count.iter().map(|&m| m as f64 / n as f64).collect();
        Ok((acc, conf, prop))
    }

    /// The calibration error under `norm` (torchmetrics' `calibration_error(norm=…)`, `debias=False`).
    ///
    /// # Errors
    /// [`Error::Empty`] when no sample has been seen.
    pub fn calibration_error(&self, norm: CalibrationNorm) -> Result<f64> {
        let (acc, conf, prop) = self.bins()?;
        let gaps = acc.iter().zip(&conf).map(|(a, c)| (a - c).abs());
        Ok(match norm {
            CalibrationNorm::L1 => gaps.zip(&prop).map(|(g, p)| g * p).sum(),
            CalibrationNorm::Max => gaps.fold(0.0, f64::max),
            CalibrationNorm::L2 => {
                let s: f64 = gaps.zip(&prop).map(|(g, p)| g * g * p).sum();
                if s > 0.0 { s.sqrt() } else { 0.0 }
            }
        })
    }

    /// Expected calibration error (norm l1).
    ///
    /// # Errors
    /// [`Error::Empty`] when no sample has been seen.
    pub fn expected(&self) -> Result<f64> {
        self.calibration_error(CalibrationNorm::L1)
    }

    /// Maximum calibration error (norm max).
    ///
    /// # Errors
    /// [`Error::Empty`] when no sample has been seen.
    pub fn maximum(&self) -> Result<f64> {
        self.calibration_error(CalibrationNorm::Max)
    }

    /// The reliability-diagram data.
    ///
    /// # Errors
    /// [`Error::Empty`] when no sample has been seen.
    pub fn reliability_diagram(&self) -> Result<ReliabilityDiagram> {
        let (accuracy, confidence, _) = self.bins()?;
        let mut edges = self.edges.clone();
        edges.push(1.0);
        Ok(ReliabilityDiagram { edges, confidence, accuracy, count: self.count.clone() })
    }
}

impl MetricState for CalibrationError {
    /// The expected calibration error.
    type Output = f64;

    /// # Errors
    /// [`Error::Parameter`] when the bin counts differ.
    fn merge(&mut self, other: &Self) -> Result<()> {
        if other.edges != self.edges {
            return Err(Error::Parameter {
                name: "n_bins",
                value: other.n_bins() as f64,
                reason: "calibration states with different bins cannot be merged",
            });
        }
        for b in 0..self.count.len() {
            self.count[b] += other.count[b];
            self.correct[b] += other.correct[b];
            self.confidence[b] += other.confidence[b];
        }
        Ok(())
    }

    fn compute(&self) -> Result<f64> {
        self.expected()
    }

    fn reset(&mut self) {
        self.count.fill(0);
        self.correct.fill(0);
        self.confidence.fill(0.0);
    }
}

/// Brier score and log loss (the two common proper scoring rules) as a mergeable sum, reproducing scikit-learn's
/// `brier_score_loss` and `log_loss`.
///
/// ```text
/// binary      Brier = (1/N) Σᵢ (yᵢ − pᵢ)²           log loss = −(1/N) Σᵢ [yᵢ log p̃ᵢ + (1 − yᵢ) log(1 − p̃ᵢ)]
/// multiclass  Brier = (1/N) Σᵢ Σ_c (𝟙[yᵢ = c] − pᵢ_c)² (halved when C = 2)      log loss = −(1/N) Σᵢ log p̃ᵢ_{yᵢ}
/// ```
/// where p̃ = clip(p, ε, 1 − ε) with ε = f64::EPSILON (scikit-learn ≥ 1.5 clips to the dtype's machine epsilon and no
/// longer renormalises rows; in the binary case 1 − p is formed before clipping). scikit-learn's multiclass Brier
/// score sums over classes without dividing by C and halves it when there are fewer than 3 columns
/// (`scale_by_half="auto"`), so a two-column matrix gives the binary value. The class columns are `0..C`
/// (scikit-learn's `labels=range(C)`); a class absent from the batch is allowed.
///
/// # Examples
/// ```
/// use losskit_metrics::ProperScores;
/// let mut s = ProperScores::new();
/// s.update_binary(ndarray::array![0_i64, 1, 1, 0].view(), ndarray::array![0.1, 0.9, 0.8, 0.3].view())?;
/// assert!((s.brier_score()? - 0.0375).abs() < 1e-15); // sklearn.metrics.brier_score_loss
/// assert!((s.log_loss()? - 0.19763488164214868).abs() < 1e-15); // sklearn.metrics.log_loss
/// # Ok::<(), losskit_metrics::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProperScores {
    /// None until the first batch; then `Some(0)` for binary vectors or `Some(C)` for matrices.
    columns: Option<usize>,
    brier: f64,
    log: f64,
    n: u64,
}

impl ProperScores {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of samples seen.
    pub fn total(&self) -> u64 {
        self.n
    }

    fn set_columns(&mut self, c: usize) -> Result<()> {
        match self.columns {
            Some(prev) if prev != c => Err(Error::Input {
                what: format!(
                    "y_prob: this state holds {} and cannot take {}",
                    if prev == 0 { "binary probabilities [N]".to_string() } else { format!("[N, {prev}] rows") },
                    if c == 0 { "binary probabilities [N]".to_string() } else { format!("[N, {c}] rows") }
                ),
            }),
            _ => {
                self.columns = Some(c);
                Ok(())
            }
        }
    }

    /// Adds a binary batch: labels `y_true` \[N\] in {0, 1}, probabilities of class 1 `y_prob` \[N\] in \[0, 1\].
    ///
    /// # Errors
    /// [`Error::Shape`], [`Error::NonFinite`], [`Error::LabelOutOfRange`], [`Error::Input`] for a value outside
    /// \[0, 1\] or when the state already holds multiclass rows.
    pub fn update_binary(&mut self, y_true: ArrayView1<'_, i64>, y_prob: ArrayView1<'_, f64>) -> Result<()> {
        check::shape("y_prob", y_prob.shape(), &[Some(y_true.len())])?;
        check::finite("y_prob", &y_prob)?;
        check::labels("y_true", y_true, 2, None)?;
        probabilities("y_prob", y_prob.iter())?;
        self.set_columns(0)?;
        let eps = f64::EPSILON;
        for (&t, &p) in y_true.iter().zip(y_prob.iter()) {
            let y = t as f64;
            self.brier += (y - p) * (y - p);
            let q = if t == 1 { p } else { 1.0 - p };
            self.log -= q.clamp(eps, 1.0 - eps).ln();
        }
        self.n += y_true.len() as u64;
        Ok(())
    }

    /// Adds a multiclass batch: labels `y_true` \[N\] in `0..C`, probabilities `y_prob` \[N, C\] in \[0, 1\], C ≥ 2.
    ///
    /// # Errors
    /// [`Error::Shape`] (also for C < 2), [`Error::NonFinite`], [`Error::LabelOutOfRange`], [`Error::Input`] for a
    /// value outside \[0, 1\] or a state holding another column count.
    pub fn update_multiclass(&mut self, y_true: ArrayView1<'_, i64>, y_prob: ArrayView2<'_, f64>) -> Result<()> {
        check::shape("y_prob", y_prob.shape(), &[Some(y_true.len()), None])?;
        let c = y_prob.ncols();
        if c < 2 {
            return Err(Error::Shape {
                arg: "y_prob",
                expected: "[N, C] with C ≥ 2".into(),
                got: y_prob.shape().to_vec(),
            });
        }
        check::finite("y_prob", &y_prob)?;
        check::labels("y_true", y_true, c, None)?;
        probabilities("y_prob", y_prob.iter())?;
        self.set_columns(c)?;
        let eps = f64::EPSILON;
        for (row, &t) in y_prob.rows().into_iter().zip(y_true.iter()) {
            let t = t as usize;
            self.brier += row
                .iter()
                .enumerate()
                .map(|(j, &p)| {
                    let d = (j == t) as u8 as f64 - p;
                    d * d
                })
                .sum::<f64>();
            self.log -= row[t].clamp(eps, 1.0 - eps).ln();
        }
        self.n += y_true.len() as u64;
        Ok(())
    }

    /// scikit-learn's `brier_score_loss` (`scale_by_half="auto"`).
    ///
    /// # Errors
    /// [`Error::Empty`] when no sample has been seen.
    pub fn brier_score(&self) -> Result<f64> {
        match self.columns {
            _ if self.n == 0 => Err(Error::Empty { arg: "y_true" }),
            Some(2) => Ok(0.5 * self.brier / self.n as f64),
            _ => Ok(self.brier / self.n as f64),
        }
    }

    /// scikit-learn's `log_loss` (natural log, mean over samples).
    ///
    /// # Errors
    /// [`Error::Empty`] when no sample has been seen.
    pub fn log_loss(&self) -> Result<f64> {
        if self.n == 0 {
            return Err(Error::Empty { arg: "y_true" });
        }
        Ok(self.log / self.n as f64)
    }
}

impl MetricState for ProperScores {
    /// (Brier score, log loss).
    type Output = (f64, f64);

    /// # Errors
    /// [`Error::Input`] when the states hold different kinds of probabilities.
    fn merge(&mut self, other: &Self) -> Result<()> {
        if let Some(c) = other.columns {
            self.set_columns(c)?;
        }
        self.brier += other.brier;
        self.log += other.log;
        self.n += other.n;
        Ok(())
    }

    fn compute(&self) -> Result<(f64, f64)> {
        Ok((self.brier_score()?, self.log_loss()?))
    }

    fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn linspace_is_symmetric_and_exact_at_the_ends() {
        let e = torch_linspace(0.0, 1.0, 16);
        assert_eq!((e[0], e[15], e.len()), (0.0, 1.0, 16));
        assert!(e.windows(2).all(|w| w[1] > w[0]));
    }

    #[test]
    fn confidence_one_has_its_own_bin_and_zero_the_first() {
        let mut ce = CalibrationError::new(4).unwrap();
        ce.update_binary(array![1, 0, 1].view(), array![1.0, 0.0, 0.25].view()).unwrap();
        let d = ce.reliability_diagram().unwrap();
        assert_eq!(d.count, vec![1, 1, 0, 0, 1]);
        assert_eq!(d.edges.len(), 6);
        assert_eq!(d.accuracy, vec![0.0, 1.0, 0.0, 0.0, 1.0]);
        // Every bin is perfectly calibrated except [0.25, 0.5): confidence 0.25, accuracy 1.
        assert_eq!(ce.expected().unwrap(), 0.75 / 3.0);
        assert_eq!(ce.maximum().unwrap(), 0.75);
    }

    #[test]
    fn bad_input_leaves_the_state_unchanged() {
        let mut ce = CalibrationError::new(3).unwrap();
        assert!(matches!(ce.update_binary(array![0].view(), array![1.5].view()), Err(Error::Input { .. })));
        assert!(matches!(ce.update_binary(array![2].view(), array![0.5].view()), Err(Error::LabelOutOfRange { .. })));
        assert!(matches!(ce.update_binary(array![0].view(), array![f64::NAN].view()), Err(Error::NonFinite { .. })));
        assert_eq!(ce.expected(), Err(Error::Empty { arg: "y_true" }));
        assert!(CalibrationError::new(0).is_err());
        let mut s = ProperScores::new();
        s.update_binary(array![0].view(), array![0.5].view()).unwrap();
        assert!(matches!(s.update_multiclass(array![0].view(), array![[0.5, 0.5]].view()), Err(Error::Input { .. })));
        assert_eq!(s.total(), 1);
        assert!("l3".parse::<CalibrationNorm>().is_err());
    }

    #[test]
    fn log_loss_clips_certain_mistakes() {
        let mut s = ProperScores::new();
        s.update_binary(array![1].view(), array![0.0].view()).unwrap();
        assert_eq!(s.log_loss().unwrap(), -(f64::EPSILON.ln()));
        assert_eq!(s.brier_score().unwrap(), 1.0);
    }
}
