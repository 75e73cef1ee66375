//! Class-balanced loss (Cui et al. 2019): a base loss weighted by the inverse effective number of samples of the
//! label's class.

use ndarray::{ArrayView1, ArrayView2, Ix2};

use losskit_tensor::{Error, Real, Reduction, Result, check};

use super::driver::{self, RowKernel, Setup};
use super::rowmath;
use crate::core::{ClassLoss, LossOutput, Targets};
use crate::registry::{BuiltLoss, Family, LossEntry, ParamSpec, Params, Range, param};

/// The base loss a [`ClassBalanced`] loss weights.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CbBase {
    /// Softmax cross-entropy, −log p_y.
    CrossEntropy,
    /// Sigmoid focal loss summed over the one-hot columns, as the paper's CB focal loss and the authors' code:
    /// Σ_c (1 − p_t,c)^γ·BCE(z_c, 1[c = y]) with p = σ(z).
    Focal {
        /// γ ≥ 0.
        gamma: f64,
    },
    /// Sigmoid (binary) cross-entropy summed over the one-hot columns: Σ_c BCE(z_c, 1[c = y]).
    BinaryCrossEntropy,
}

/// The class-balanced weights: w_c = (1 − β)/(1 − β^{n_c}), normalised so that Σ_c w_c = C.
///
/// `1 − β^n` is computed as −expm1(n·ln β), which keeps its digits for β near 1. β = 0 gives all ones; β → 1 gives
/// w ∝ 1/n. (Computed here rather than taken from `losskit-samplers`, which this crate must not depend on; the
/// samplers crate's `effective_number_weights` is the same formula.)
///
/// # Errors
/// [`Error::Parameter`] for β ∉ [0, 1) or a count that is not finite and > 0.
pub fn class_balanced_weights(beta: f64, samples_per_class: &[f64]) -> Result<Vec<f64>> {
    check::closed_open("beta", beta, 0.0, 1.0)?;
    check_counts(samples_per_class)?;
    let ln_beta = beta.ln(); // −∞ at β = 0: −expm1(−∞) = 1, so every weight is 1 − β = 1
    let raw: Vec<f64> = samples_per_class.iter().map(|&n| (1.0 - beta) / -(n * ln_beta).exp_m1()).collect();
    let total: f64 = raw.iter().sum();
    let c = raw.len() as f64;
    Ok(raw.iter().map(|w| w * c / total).collect())
}

fn check_counts(counts: &[f64]) -> Result<()> {
    if let Some(&v) = counts.iter().find(|v| !(v.is_finite() && **v > 0.0)) {
        return Err(Error::Parameter {
            name: "samples_per_class",
            value: v,
            reason: "every class count must be finite and > 0",
        });
    }
    Ok(())
}

/// Class-balanced loss: the base loss of each sample weighted by its class's inverse effective number.
///
/// ```text
/// ℓᵢ = w_y·base(zᵢ, y),   w_c = (1 − β)/(1 − β^{n_c}) normalised to Σ_c w_c = C
/// base = cross-entropy:         −log softmax(z)_y
///        focal (γ):             Σ_c (1 − p_t,c)^γ·BCE(z_c, 1[c = y]),  p = σ(z), p_t,c = p_c if c = y else 1 − p_c
///        binary-cross-entropy:  Σ_c BCE(z_c, 1[c = y])
/// Mean = Σᵢ sᵢ·ℓᵢ / Σᵢ sᵢ     Sum = Σᵢ sᵢ·ℓᵢ     None: (sᵢ·ℓᵢ)ᵢ
/// ```
/// The Mean divides by the (sample-weighted) batch size, not by Σ w_y: the authors' code sums the weighted losses and
/// divides by the number of labels. (This differs from [`CrossEntropy`](crate::CrossEntropy) with `class_weights`,
/// whose Mean is PyTorch's Σ w_y·ℓ / Σ w_y.) Without `samples_per_class` every weight is 1 and the loss is the plain
/// base loss.
///
/// # Parameters
/// * `beta`: β ∈ [0, 1), default 0.9999 (the value the paper uses most; it tunes β ∈ {0.9, 0.99, 0.999, 0.9999}).
/// * `samples_per_class`: n ∈ (0, ∞)^C, the training-set class counts; default none (uniform weights).
/// * `base`: `cross-entropy` (default), `focal` or `binary-cross-entropy`.
/// * `gamma`: γ ≥ 0 of the focal base, default 2 (Lin et al.'s; the paper tunes γ ∈ {0.5, 1, 2}).
/// * `reduction`: `Mean` (default), `Sum` or `None`.
///
/// # Shapes
/// `logits` [N, C], hard targets `[N]` in `0..C`, optional `weights` `[N]`, `samples_per_class` `[C]`; gradient
/// [N, C].
///
/// # Gradient
/// ```text
/// cross-entropy:          w_y·(softmax(z) − e_y)
/// binary-cross-entropy:   w_y·(σ(z) − e_y)
/// focal:                  w_y·[(σ(z_c) − t_c)·(1 − p_t)^γ + γ·BCE·(1 − p_t)^γ·(1 − 2t_c)·σ(z_c)σ(−z_c)/(1 − p_t)]
/// ```
///
/// # Errors
/// [`Error::Parameter`] for β ∉ [0, 1), γ < 0 or a bad count; [`Error::Shape`] when `samples_per_class` does not have
/// C entries; [`Error::Input`] for probability targets; input errors from the driver.
///
/// # References
/// Cui, Jia, Lin, Song, Belongie (2019), *Class-Balanced Loss Based on Effective Number of Samples*, CVPR,
/// arXiv:1901.05555 (docs/papers.md key `cui2019class`); the sigmoid focal form and the reduction follow the authors'
/// released code (richardaecn/class-balanced-loss).
#[derive(Clone, Debug, PartialEq)]
pub struct ClassBalanced {
    /// β ∈ [0, 1). Default 0.9999.
    pub beta: f64,
    /// Class counts `[C]`; `None` = uniform weights. Default `None`.
    pub samples_per_class: Option<Vec<f64>>,
    /// The base loss. Default cross-entropy.
    pub base: CbBase,
    /// Default [`Reduction::Mean`].
    pub reduction: Reduction,
}

impl Default for ClassBalanced {
    fn default() -> Self {
        Self { beta: 0.9999, samples_per_class: None, base: CbBase::CrossEntropy, reduction: Reduction::Mean }
    }
}

impl ClassBalanced {
    /// The defaults (β = 0.9999, cross-entropy base, no counts).
    pub fn new() -> Self {
        Self::default()
    }
    /// β ∈ [0, 1) (default 0.9999).
    pub fn beta(mut self, beta: f64) -> Self {
        self.beta = beta;
        self
    }
    /// Class counts `[C]` (default none).
    pub fn samples_per_class(mut self, n: impl Into<Vec<f64>>) -> Self {
        self.samples_per_class = Some(n.into());
        self
    }
    /// The base loss (default cross-entropy).
    pub fn base(mut self, base: CbBase) -> Self {
        self.base = base;
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
    /// [`Error::Parameter`] naming `beta`, `gamma` or `samples_per_class`.
    pub fn check(&self) -> Result<()> {
        check::closed_open("beta", self.beta, 0.0, 1.0)?;
        if let CbBase::Focal { gamma } = self.base {
            check::at_least("gamma", gamma, 0.0)?;
        }
        self.samples_per_class.as_deref().map_or(Ok(()), check_counts)
    }
}

struct Kernel<'a, F> {
    w: Option<&'a [F]>,
    base: CbBase,
    gamma: F,
}

#[inline(always)]
fn softplus<F: Real>(x: F) -> F {
    x.max(F::zero()) + (-x.abs()).exp().ln_1p()
}

#[inline(always)]
fn sigmoid<F: Real>(x: F) -> F {
    F::one() / (F::one() + (-x).exp())
}

impl<F: Real> RowKernel<F> for Kernel<'_, F> {
    #[inline(always)]
    fn label_weight(&self, _label: usize) -> F {
        F::one()
    }

    fn hard(&self, z: &[F], max: F, y: usize, scale: F, mut grad: Option<&mut [F]>) -> F {
        let wy = self.w.map_or(F::one(), |w| w[y]);
        let cs = scale * wy;
        match self.base {
            CbBase::CrossEntropy => {
                let sp = rowmath::split_exp_sum(z, max, F::one(), y, grad.as_deref_mut());
                if let Some(g) = grad {
                    let a = cs / sp.total;
                    for (j, v) in g.iter_mut().enumerate() {
                        if j != y {
                            *v *= a;
                        }
                    }
                    g[y] = -cs * sp.one_minus_py();
                }
                -wy * sp.log_py
            }
            CbBase::BinaryCrossEntropy | CbBase::Focal { .. } => {
                let focal = matches!(self.base, CbBase::Focal { .. });
                let gamma = self.gamma;
                let mut sum = F::zero();
                for (j, &x) in z.iter().enumerate() {
                    let pos = j == y;
                    // BCE(x, t) = softplus(x) − t·x; 1 − p_t = σ(−x) if t = 1 else σ(x).
                    let bce = if pos { softplus(-x) } else { softplus(x) };
                    let (sx, snx) = (sigmoid(x), sigmoid(-x));
                    let one_m_pt = if pos { snx } else { sx };
                    let t = if pos { F::one() } else { F::zero() };
                    let (l, d) = if focal {
                        let m = one_m_pt.powf(gamma); // 0⁰ = 1: γ = 0 is BCE
                        let extra = if gamma > F::zero() && one_m_pt > F::zero() {
                            gamma * bce * m * (F::one() - t - t) * sx * snx / one_m_pt
                        } else {
                            F::zero()
                        };
                        (m * bce, (sx - t) * m + extra)
                    } else {
                        (bce, sx - t)
                    };
                    sum += l;
                    if let Some(g) = grad.as_deref_mut() {
                        g[j] = cs * d;
                    }
                }
                wy * sum
            }
        }
    }

    fn soft(&self, _z: &[F], _max: F, _t: &[F], _scale: F, _grad: Option<&mut [F]>) -> F {
        // Never called: probability targets are rejected before the driver runs.
        F::nan()
    }
}

impl<F: Real> ClassLoss<F> for ClassBalanced {
    fn compute(
        &self,
        logits: ArrayView2<'_, F>,
        targets: Targets<'_, F>,
        weights: Option<ArrayView1<'_, F>>,
        grad: bool,
    ) -> Result<LossOutput<F, Ix2>> {
        self.check()?;
        if let Targets::Soft(_) = targets {
            return Err(Error::Input {
                what: "class-balanced takes class indices as targets, not probabilities".into(),
            });
        }
        let w = match self.samples_per_class.as_deref() {
            Some(n) => {
                check::shape("samples_per_class", &[n.len()], &[Some(logits.ncols())])?;
                Some(class_balanced_weights(self.beta, n)?.into_iter().map(F::c).collect::<Vec<F>>())
            }
            None => None,
        };
        let gamma = if let CbBase::Focal { gamma } = self.base { gamma } else { 0.0 };
        let kernel = Kernel { w: w.as_deref(), base: self.base, gamma: F::c(gamma) };
        driver::run(&kernel, Setup { ignore_index: None, reduction: self.reduction }, logits, targets, weights, grad)
    }
}

const PARAMS: &[ParamSpec] = &[
    param("beta", "0.9999", Range::ClosedOpen(0.0, 1.0), "β: 0 = uniform weights, → 1 = inverse class frequency"),
    param("samples_per_class", "none", Range::Vector, "training-set count of each class [C] (none = uniform)"),
    param(
        "base",
        "cross-entropy",
        Range::Choice(&["cross-entropy", "focal", "binary-cross-entropy"]),
        "the weighted loss: softmax CE, sigmoid focal or sigmoid CE over one-hot columns",
    ),
    param("gamma", "2", Range::NonNegative, "γ of the focal base"),
];

fn build(p: &Params) -> Result<BuiltLoss> {
    let gamma = p.f64("gamma")?;
    let base = match p.text("base")? {
        "cross-entropy" => CbBase::CrossEntropy,
        "focal" => CbBase::Focal { gamma },
        "binary-cross-entropy" => CbBase::BinaryCrossEntropy,
        other => {
            return Err(Error::ParameterText {
                name: "base".into(),
                value: other.into(),
                reason: "expected cross-entropy, focal or binary-cross-entropy".into(),
            });
        }
    };
    check::at_least("gamma", gamma, 0.0)?;
    let cfg = ClassBalanced {
        beta: p.f64("beta")?,
        samples_per_class: p.vector("samples_per_class")?.map(<[f64]>::to_vec),
        base,
        reduction: p.reduction(),
    };
    cfg.check()?;
    Ok(BuiltLoss { class: Some(Box::new(cfg)), binary: None })
}

/// Registry entry.
pub(crate) const ENTRY: LossEntry = LossEntry {
    name: "class-balanced",
    family: Family::Classification,
    summary: "class-balanced loss: CE, sigmoid focal or sigmoid CE weighted by inverse effective class size",
    paper: "cui2019class",
    reference: "Cui, Jia, Lin, Song, Belongie (2019), Class-Balanced Loss Based on Effective Number of Samples, \
                CVPR, arXiv:1901.05555",
    params: PARAMS,
    build,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_limits() {
        let w = class_balanced_weights(0.0, &[10.0, 100.0, 1000.0]).unwrap();
        assert!(w.iter().all(|v| (v - 1.0).abs() < 1e-15));
        let w = class_balanced_weights(1.0 - 1e-12, &[10.0, 100.0]).unwrap();
        assert!((w[0] / w[1] - 10.0).abs() < 1e-6);
        assert!((w.iter().sum::<f64>() - 2.0).abs() < 1e-12);
        assert!(matches!(class_balanced_weights(0.5, &[1.0, 0.0]), Err(Error::Parameter { .. })));
        assert!(matches!(class_balanced_weights(1.0, &[1.0]), Err(Error::Parameter { name: "beta", .. })));
    }

    #[test]
    fn wrong_count_length_is_a_shape_error() {
        let z = ndarray::array![[0.0_f64, 1.0, 2.0]];
        let r =
            ClassBalanced::new().samples_per_class(vec![1.0, 2.0]).compute(z.view(), Targets::hard(&[0]), None, false);
        assert!(matches!(r, Err(Error::Shape { arg: "samples_per_class", .. })));
    }
}
