//! Self-adjusting dice loss (Li et al. 2020) with the official code's semantics, and the overlap-index engine that
//! [`Tversky`](crate::Tversky) shares.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Ix1, Ix2};

use losskit_tensor::{Error, Real, Reduction, Result, check};

use crate::binary::batch::{self, sigmoid, softmax_backward, softmax_row, sum_by};
use crate::core::{BinaryLoss, ClassLoss, LossOutput, Targets};
use crate::registry::{BuiltLoss, Family, LossEntry, ParamSpec, Params, Range, param};

/// Where the sums of an overlap index run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverlapMode {
    /// The official code's choice: multiclass with `square_denominator` → [`Instance`](Self::Instance), multiclass
    /// without it → [`Column`](Self::Column) (the per-batch denominator quirk), binary → [`Batch`](Self::Batch).
    Official,
    /// Numerator and denominator per element (the paper's per-instance DSC / Tversky index).
    Instance,
    /// Numerator per element, denominator summed over the batch column (the official multiclass non-square path).
    Column,
    /// Numerator and denominator summed over the batch column (set-level dice; the official binary path).
    Batch,
}

impl OverlapMode {
    /// Parses a registry word (`official`, `instance`, `column`, `batch`).
    ///
    /// # Errors
    /// [`Error::ParameterText`] naming `mode`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "official" => Ok(OverlapMode::Official),
            "instance" => Ok(OverlapMode::Instance),
            "column" => Ok(OverlapMode::Column),
            "batch" => Ok(OverlapMode::Batch),
            _ => Err(Error::ParameterText {
                name: "mode".into(),
                value: s.into(),
                reason: "expected one of official, instance, column, batch".into(),
            }),
        }
    }
}

pub(crate) const MODES: &[&str] = &["official", "instance", "column", "batch"];

/// One element's overlap terms: (numerator, denominator, ∂numerator/∂p, ∂denominator/∂p), smoothing excluded.
pub(crate) trait Overlap {
    fn terms(&self, p: f64, q: f64, y: f64) -> (f64, f64, f64, f64);
}

/// Resolved (non-official) mode.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sums {
    Instance,
    Column,
    Batch,
}

/// The engine: columns of probabilities `p` (n×m, row-major), complements `q`, targets `y`, relative weights `w`.
/// Returns the per-sample shares ℓᵢ and, when asked, ∂(Mean objective)/∂p (n×m), where the Mean objective is
/// (1/N)·Σᵢ w̃ᵢℓᵢ and ℓᵢ = Σⱼ ℓᵢⱼ (for [`Sums::Batch`], ℓᵢ = Σⱼ Lⱼ for every i).
#[allow(clippy::too_many_arguments)]
pub(crate) fn overlap<O: Overlap>(
    o: &O,
    sums: Sums,
    smooth: f64,
    n: usize,
    m: usize,
    p: &[f64],
    q: &[f64],
    y: &[f64],
    w: &[f64],
    grad: bool,
) -> (Vec<f64>, Option<Vec<f64>>) {
    let nf = n as f64;
    let t: Vec<(f64, f64, f64, f64)> = (0..n * m).map(|k| o.terms(p[k], q[k], y[k])).collect();
    let mut share = vec![0.0; n];
    let mut g = grad.then(|| vec![0.0; n * m]);
    match sums {
        Sums::Instance => {
            for i in 0..n {
                let mut l = 0.0;
                for j in 0..m {
                    let (num, den, dn, dd) = t[i * m + j];
                    let (a, d) = (num + smooth, den + smooth);
                    l += 1.0 - a / d;
                    if let Some(g) = g.as_mut() {
                        g[i * m + j] = -(w[i] / nf) * (dn * d - a * dd) / (d * d);
                    }
                }
                share[i] = l;
            }
        }
        Sums::Column | Sums::Batch => {
            let mut total = 0.0;
            for j in 0..m {
                let d = sum_by(n, |i| w[i] * t[i * m + j].1) + smooth;
                if sums == Sums::Column {
                    // Σᵢ w̃ᵢ(numᵢⱼ + s): the column's share in ∂/∂D.
                    let a_sum = sum_by(n, |i| w[i] * (t[i * m + j].0 + smooth));
                    for i in 0..n {
                        let (num, _, dn, dd) = t[i * m + j];
                        share[i] += 1.0 - (num + smooth) / d;
                        if let Some(g) = g.as_mut() {
                            g[i * m + j] = (w[i] / nf) * (-dn / d + a_sum * dd / (d * d));
                        }
                    }
                } else {
                    let a = sum_by(n, |i| w[i] * t[i * m + j].0) + smooth;
                    total += 1.0 - a / d;
                    if let Some(g) = g.as_mut() {
                        for i in 0..n {
                            let (_, _, dn, dd) = t[i * m + j];
                            g[i * m + j] = -w[i] * (dn * d - a * dd) / (d * d);
                        }
                    }
                }
            }
            if sums == Sums::Batch {
                share.fill(total);
            }
        }
    }
    (share, g)
}

/// Runs an overlap loss on binary scores: p = σ(x), one column.
pub(crate) fn run_binary<F: Real, O: Overlap>(
    o: &O,
    sums: Sums,
    smooth: f64,
    reduction: Reduction,
    scores: ArrayView1<'_, F>,
    targets: ArrayView1<'_, F>,
    weights: Option<ArrayView1<'_, F>>,
    grad: bool,
) -> Result<LossOutput<F, Ix1>> {
    let b = batch::binary_inputs(scores, targets, weights)?;
    let n = b.x.len();
    let Some(rel) = b.rel.as_deref() else {
        // Weights summing to 0: nothing contributes (Mean is an error in `finish`).
        return batch::finish(reduction, &b.w, &vec![0.0; n], grad.then(|| Array1::zeros(n)));
    };
    let p: Vec<f64> = b.x.iter().map(|&x| sigmoid(x)).collect();
    let q: Vec<f64> = b.x.iter().map(|&x| sigmoid(-x)).collect();
    let (share, g) = overlap(o, sums, smooth, n, 1, &p, &q, &b.t, rel, grad);
    let g = g.map(|mut g| {
        for i in 0..n {
            g[i] *= p[i] * q[i];
        }
        Array1::from_vec(g)
    });
    batch::finish(reduction, &b.w, &share, g)
}

/// Runs an overlap loss on logits: p = softmax(z), one column per class, targets one-hot.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_class<F: Real, O: Overlap>(
    o: &O,
    name: &str,
    sums: Sums,
    smooth: f64,
    reduction: Reduction,
    logits: ArrayView2<'_, F>,
    targets: Targets<'_, F>,
    weights: Option<ArrayView1<'_, F>>,
    grad: bool,
) -> Result<LossOutput<F, Ix2>> {
    let b = batch::class_inputs(name, logits, targets, weights)?;
    let (n, c) = (b.n, b.c);
    let Some(rel) = b.rel.as_deref() else {
        return batch::finish(reduction, &b.w, &vec![0.0; n], grad.then(|| Array2::zeros((n, c))));
    };
    let (mut p, mut q) = (vec![0.0; n * c], vec![0.0; n * c]);
    let mut y = vec![0.0; n * c];
    for i in 0..n {
        let r = i * c..(i + 1) * c;
        softmax_row(&b.z[r.clone()], &mut p[r.clone()], &mut q[r]);
        y[i * c + b.y[i]] = 1.0;
    }
    let (share, g) = overlap(o, sums, smooth, n, c, &p, &q, &y, rel, grad);
    let g = match g {
        Some(mut g) => {
            for i in 0..n {
                let r = i * c..(i + 1) * c;
                softmax_backward(&p[r.clone()], &mut g[r]);
            }
            Some(Array2::from_shape_vec((n, c), g).map_err(|e| Error::Degenerate { what: format!("{e}") })?)
        }
        None => None,
    };
    batch::finish(reduction, &b.w, &share, g)
}

/// Self-adjusting dice loss with the semantics of the official `DiceLoss` (ShannonAI/dice_loss_for_NLP).
///
/// ```text
/// ãᵢⱼ = (1 − pᵢⱼ)^α·pᵢⱼ                      (self-adjusting factor; α = 0 is plain dice)
/// numᵢⱼ = 2·ãᵢⱼ·yᵢⱼ     denᵢⱼ = ãᵢⱼ + yᵢⱼ  or, with square_denominator, ãᵢⱼ² + yᵢⱼ²
/// instance:  ℓᵢ = Σⱼ [1 − (numᵢⱼ + s)/(denᵢⱼ + s)]
/// column:    ℓᵢ = Σⱼ [1 − (numᵢⱼ + s)/(Σₙ w̃ₙ·denₙⱼ + s)]                (the official per-batch denominator quirk)
/// batch:     ℓᵢ = Σⱼ [1 − (Σₙ w̃ₙ·numₙⱼ + s)/(Σₙ w̃ₙ·denₙⱼ + s)]        (the same for every i)
/// Mean = Σᵢ wᵢℓᵢ / Σᵢ wᵢ     Sum = None = Σᵢ wᵢℓᵢ     w̃ₙ = N·wₙ/Σw (1 without weights)
/// ```
/// Multiclass: p = softmax(zᵢ), y one-hot, j over all C classes (the official code sums the per-class losses, then
/// averages over instances). Binary: p = σ(x), one column (the positive class only), y the target.
///
/// `mode = official` reproduces the official code: multiclass non-square → column (its numerator is per instance
/// but `flat_input.sum()` runs over the whole batch column, a quirk of the code, not the paper's formula),
/// multiclass square → instance, binary → batch (`_binary_class` computes one set-level dice over all elements).
/// `instance` is the paper's per-instance DSC; `batch` the set-level dice. In the column and batch modes the loss
/// couples the batch (see the batch-level convention in the crate docs: per-sample weights act as repeat counts
/// inside the batch sums). OHEM (`ohem_ratio`) and the padding mask of the official code are not implemented.
///
/// # Parameters
/// * `smooth`: s ≥ 0, default 1e-4 (the official class and parser default; every run script passes 1).
/// * `square_denominator`: default false (the class default; every run script passes `--dice_square`).
/// * `alpha`: α ≥ 0, default 0 (the class default; the parser default and every script use 0.01; the paper's
///   headline self-adjusting form is α = 1).
/// * `mode`: official | instance | column | batch, default official.
/// * `reduction`: `Mean` (default), `Sum` or `None`.
///
/// # Shapes
/// Multiclass: `logits` [N, C], hard targets `[N]`; gradient [N, C]. Binary: `scores` `[N]`, `targets` `[N]` in
/// [0, 1]; gradient `[N]`. Optional `weights` `[N]`.
///
/// # Gradient
/// ```text
/// ∂ã/∂p = (1 − p)^α − α·p·(1 − p)^(α−1)        (1 − p clamped at 1e-12 when α < 1)
/// instance: ∂ℓ/∂ã = −(∂num·D − A·∂den)/D²,  A = num + s, D = den + s
/// column:   ∂/∂ãₙⱼ (Mean) = (w̃ₙ/N)·[−∂numₙⱼ/Dⱼ + (Σᵢ w̃ᵢ(numᵢⱼ + s))·∂denₙⱼ/Dⱼ²]
/// ```
/// then the softmax (or sigmoid) Jacobian; 1 − p is computed from the logits without cancellation.
///
/// # Errors
/// [`Error::Parameter`] for s < 0 or α < 0; [`Error::ParameterText`] for an unknown mode; input errors as
/// [`AnyLoss`](crate::AnyLoss).
///
/// # Examples
/// ```
/// use losskit_losses::{ClassLoss, Dice, Targets};
/// let logits = ndarray::array![[3.0_f64, 0.0], [0.0, 3.0]];
/// let dice = Dice::new().square_denominator(true).smooth(1.0);
/// let out = dice.compute(logits.view(), Targets::hard(&[0, 1]), None, true)?;
/// assert!(out.value < 0.2);
/// # Ok::<(), losskit_losses::Error>(())
/// ```
///
/// # References
/// Li, Sun, Meng, Liang, Wu, Li (2020), *Dice Loss for Data-imbalanced NLP Tasks*, ACL, arXiv:1911.02855
/// (docs/papers.md key `li2020dice`); semantics and defaults of `loss/dice_loss.py` in ShannonAI/dice_loss_for_NLP.
#[derive(Clone, Debug, PartialEq)]
pub struct Dice {
    /// Smoothing s ≥ 0. Default 1e-4.
    pub smooth: f64,
    /// Squares in the denominator. Default false.
    pub square_denominator: bool,
    /// Self-adjusting exponent α ≥ 0. Default 0.
    pub alpha: f64,
    /// Where the sums run. Default [`OverlapMode::Official`].
    pub mode: OverlapMode,
    /// Default [`Reduction::Mean`].
    pub reduction: Reduction,
}

impl Default for Dice {
    fn default() -> Self {
        Self {
            smooth: 1e-4,
            square_denominator: false,
            alpha: 0.0,
            mode: OverlapMode::Official,
            reduction: Reduction::Mean,
        }
    }
}

impl Dice {
    /// The official class defaults (s = 1e-4, no square, α = 0, official mode).
    pub fn new() -> Self {
        Self::default()
    }
    /// Smoothing s ≥ 0 (default 1e-4).
    pub fn smooth(mut self, s: f64) -> Self {
        self.smooth = s;
        self
    }
    /// Squares in the denominator (default false).
    pub fn square_denominator(mut self, on: bool) -> Self {
        self.square_denominator = on;
        self
    }
    /// Self-adjusting exponent α ≥ 0 (default 0).
    pub fn alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
    }
    /// Where the sums run (default official).
    pub fn mode(mut self, mode: OverlapMode) -> Self {
        self.mode = mode;
        self
    }
    /// Reduction (default [`Reduction::Mean`]).
    pub fn reduction(mut self, r: Reduction) -> Self {
        self.reduction = r;
        self
    }

    /// Validates the parameters.
    ///
    /// # Errors
    /// [`Error::Parameter`] naming `smooth` or `alpha`.
    pub fn check(&self) -> Result<()> {
        check::at_least("smooth", self.smooth, 0.0)?;
        check::at_least("alpha", self.alpha, 0.0)?;
        for (name, v) in [("smooth", self.smooth), ("alpha", self.alpha)] {
            if !v.is_finite() {
                return Err(Error::Parameter { name, value: v, reason: "must be finite" });
            }
        }
        Ok(())
    }

    /// Builds the config from registry parameters (and checks it).
    ///
    /// # Errors
    /// As [`Dice::check`]; [`Error::ParameterText`] for an unknown mode.
    pub fn from_params(p: &Params) -> Result<Self> {
        let cfg = Self {
            smooth: p.f64("smooth")?,
            square_denominator: p.bool("square_denominator")?,
            alpha: p.f64("alpha")?,
            mode: OverlapMode::parse(p.text("mode")?)?,
            reduction: p.reduction(),
        };
        cfg.check()?;
        Ok(cfg)
    }

    fn sums(&self, binary: bool) -> Sums {
        match self.mode {
            OverlapMode::Instance => Sums::Instance,
            OverlapMode::Column => Sums::Column,
            OverlapMode::Batch => Sums::Batch,
            OverlapMode::Official if binary => Sums::Batch,
            OverlapMode::Official if self.square_denominator => Sums::Instance,
            OverlapMode::Official => Sums::Column,
        }
    }
}

impl Overlap for Dice {
    #[inline]
    fn terms(&self, p: f64, q: f64, y: f64) -> (f64, f64, f64, f64) {
        let (a, da) = if self.alpha == 0.0 {
            (p, 1.0)
        } else {
            let qc = if self.alpha < 1.0 { q.max(1e-12) } else { q };
            (q.powf(self.alpha) * p, q.powf(self.alpha) - self.alpha * p * qc.powf(self.alpha - 1.0))
        };
        if self.square_denominator {
            (2.0 * a * y, a * a + y * y, 2.0 * y * da, 2.0 * a * da)
        } else {
            (2.0 * a * y, a + y, 2.0 * y * da, da)
        }
    }
}

impl<F: Real> ClassLoss<F> for Dice {
    fn compute(
        &self,
        logits: ArrayView2<'_, F>,
        targets: Targets<'_, F>,
        weights: Option<ArrayView1<'_, F>>,
        grad: bool,
    ) -> Result<LossOutput<F, Ix2>> {
        self.check()?;
        run_class(self, "dice", self.sums(false), self.smooth, self.reduction, logits, targets, weights, grad)
    }
}

impl<F: Real> BinaryLoss<F> for Dice {
    fn compute(
        &self,
        scores: ArrayView1<'_, F>,
        targets: ArrayView1<'_, F>,
        weights: Option<ArrayView1<'_, F>>,
        grad: bool,
    ) -> Result<LossOutput<F, Ix1>> {
        self.check()?;
        run_binary(self, self.sums(true), self.smooth, self.reduction, scores, targets, weights, grad)
    }
}

const PARAMS: &[ParamSpec] = &[
    param("smooth", "0.0001", Range::NonNegative, "smoothing s in numerator and denominator (official default 1e-4)"),
    param("square_denominator", "false", Range::Bool, "squares in the denominator (the official scripts' setting)"),
    param("alpha", "0", Range::NonNegative, "self-adjusting exponent α of (1 − p)^α·p (official scripts: 0.01)"),
    param("mode", "official", Range::Choice(MODES), "where the sums run: official | instance | column | batch"),
];

fn build(p: &Params) -> Result<BuiltLoss> {
    let cfg = Dice::from_params(p)?;
    Ok(BuiltLoss { class: Some(Box::new(cfg.clone())), binary: Some(Box::new(cfg)) })
}

/// Registry entry: multiclass (softmax) and binary (sigmoid) forms.
pub(crate) const ENTRY: LossEntry = LossEntry {
    name: "dice",
    family: Family::Classification,
    summary: "self-adjusting dice loss as ShannonAI/dice_loss_for_NLP (α, smoothing, squared denominator; the \
              official per-batch denominator or per-instance / set-level sums)",
    paper: "li2020dice",
    reference: "Li, Sun, Meng, Liang, Wu, Li (2020), Dice Loss for Data-imbalanced NLP Tasks, ACL, arXiv:1911.02855",
    params: PARAMS,
    build,
};

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn bad_parameters_are_rejected() {
        assert!(matches!(Dice::new().smooth(-1.0).check(), Err(Error::Parameter { name: "smooth", .. })));
        assert!(matches!(Dice::new().alpha(-0.1).check(), Err(Error::Parameter { name: "alpha", .. })));
        assert!(matches!(OverlapMode::parse("rows"), Err(Error::ParameterText { .. })));
    }

    #[test]
    fn perfect_square_instance_is_zero_and_negatives_cost_almost_one() {
        // Square mode, α = 0, y = 1, p = 1: loss 0. y = 0: 1 − s/(p² + s).
        let d = Dice::new().square_denominator(true).mode(OverlapMode::Instance).smooth(1e-4);
        let x = array![1e4_f64, 2.0];
        let y = array![1.0_f64, 0.0];
        let d = d.reduction(Reduction::None);
        let out = BinaryLoss::<f64>::compute(&d, x.view(), y.view(), None, true).unwrap();
        let ps = out.per_sample.unwrap();
        assert!(ps[0].abs() < 1e-15);
        let p = 1.0 / (1.0 + (-2.0_f64).exp());
        assert!((ps[1] - (1.0 - 1e-4 / (p * p + 1e-4))).abs() < 1e-14);
    }
}
