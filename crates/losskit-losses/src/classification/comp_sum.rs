//! The comp-sum family (Mao, Mohri, Zhong 2023): losses Ψ(u) of u = Σ_{j≠y} exp(z_j − z_y), with the Ψ choices
//! cross-entropy, generalized cross-entropy, mean absolute error and sum-exponential. [`CompSum`] is the generic
//! loss with a Ψ parameter; [`GeneralizedCrossEntropy`], [`Mae`] and [`SumExponential`] are its named members (each
//! its own registry entry). All run on the shared multiclass driver, value and gradient in one fused sweep.

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut2, Ix2};

use losskit_tensor::{Error, Real, Reduction, Result, check};

use super::driver::{self, GradDest, RowKernel, Setup};
use super::rowmath;
use crate::core::{ClassLoss, LossOutput, Targets};
use crate::registry::{BuiltLoss, Family, LossEntry, ParamSpec, Params, Range, param};

/// The function Ψ of a comp-sum loss ℓ = Ψ(u), u = Σ_{j≠y} exp(z_j − z_y) = (1 − p_y)/p_y.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Psi {
    /// Ψ(u) = log(1 + u) = −log p_y (logistic loss, cross-entropy).
    CrossEntropy,
    /// Ψ(u) = (1 − (1 + u)^(−q))/q = (1 − p_y^q)/q, q ∈ (0, 1] (generalized cross-entropy).
    Gce {
        /// q ∈ (0, 1].
        q: f64,
    },
    /// Ψ(u) = 1 − 1/(1 + u) = 1 − p_y (mean absolute error, as in Mao et al.; ‖p − e_y‖₁ is twice this).
    Mae,
    /// Ψ(u) = u = (1 − p_y)/p_y (sum-exponential).
    SumExponential,
}

impl Psi {
    fn check(&self) -> Result<()> {
        match *self {
            Psi::Gce { q } => check::open_closed("q", q, 0.0, 1.0),
            _ => Ok(()),
        }
    }
}

/// The exponent above which the sum-exponential loss continues each exp(x) by its tangent line, so that any finite
/// logits give a finite loss in f32 and f64 alike (e^50 · 2·10⁴ · 32000 ≪ f32::MAX).
pub const SUM_EXP_LINEAR_ABOVE: f64 = 50.0;

/// A comp-sum loss (Mao, Mohri, Zhong 2023) with the Ψ of your choice.
///
/// ```text
/// ℓᵢ = Ψ(uᵢ),   uᵢ = Σ_{j≠y} exp(z_j − z_y) = (1 − p_y)/p_y,   p = softmax(zᵢ), y = the label
///
///   Ψ = ce:       log(1 + u)            = −log p_y
///   Ψ = gce (q):  (1 − (1 + u)^(−q))/q  = (1 − p_y^q)/q
///   Ψ = mae:      1 − 1/(1 + u)         = 1 − p_y
///   Ψ = sum-exp:  u                     = (1 − p_y)/p_y
///
/// Mean = Σᵢ sᵢ·ℓᵢ / Σᵢ sᵢ     Sum = Σᵢ sᵢ·ℓᵢ     None: (sᵢ·ℓᵢ)ᵢ       (sᵢ = per-sample weight, 1 when absent)
/// ```
/// GCE tends to cross-entropy as q → 0 (relative error O(q)) and equals MAE at q = 1. Mao et al. define MAE as
/// 1 − p_y; the ‖p − e_y‖₁ form of Ghosh et al. and Zhang & Sabuncu is 2(1 − p_y). For the sum-exponential loss,
/// each exp(x) with x = z_j − z_y above [`SUM_EXP_LINEAR_ABOVE`] continues along its tangent
/// e^τ·(1 + x − τ) (continuous value and gradient), so the loss of any finite logits is finite; below it the loss is
/// exact.
///
/// # Parameters
/// * `psi`: Ψ, default GCE.
/// * `q`: GCE's q ∈ (0, 1], default 0.7 (Zhang & Sabuncu 2018's choice, also the default of the LDR-KL paper's
///   released GCE baseline).
/// * `reduction`: `Mean` (default), `Sum` or `None`.
///
/// # Shapes
/// `logits` [N, C], hard targets `[N]` in `0..C` (no ignore index; probability targets are rejected), optional
/// `weights` `[N]`; gradient [N, C].
///
/// # Gradient
/// ```text
/// ∂ℓ/∂z_j = Ψ'(u)·e^{z_j − z_y} (j ≠ y),   ∂ℓ/∂z_y = −Ψ'(u)·u;   with p = softmax(z):
///   ce: p − e_y     gce: p_y^q·(p − e_y)     mae: p_y·(p − e_y)     sum-exp: g_j = e^{z_j − z_y}, g_y = −u
/// ```
/// Every row of the gradient sums to 0 (shift invariance). 1 − p_y is summed directly over j ≠ y, so the loss keeps
/// its digits for confident predictions; logits of ±1e4 stay finite.
///
/// # Errors
/// [`Error::Parameter`] for q ∉ (0, 1]; [`Error::Input`] for probability targets; [`Error::Shape`],
/// [`Error::Empty`], [`Error::LabelOutOfRange`], [`Error::NonFinite`] for bad inputs; [`Error::Degenerate`] for a
/// negative sample weight or a Mean over weights summing to 0.
///
/// # Examples
/// ```
/// use losskit_losses::{ClassLoss, CompSum, Psi, Targets};
/// let z = ndarray::array![[0.0_f64, 0.0]];
/// let out = CompSum::new().psi(Psi::Gce { q: 0.5 }).compute(z.view(), Targets::hard(&[0]), None, true)?;
/// assert!((out.value - 2.0 * (1.0 - 0.5_f64.sqrt())).abs() < 1e-15);
/// # Ok::<(), losskit_losses::Error>(())
/// ```
///
/// # References
/// Mao, Mohri, Zhong (2023), *Cross-Entropy Loss Functions: Theoretical Analysis and Applications*, ICML,
/// arXiv:2304.07288 (docs/papers.md key `mao2023cross`). GCE: Zhang, Sabuncu (2018), *Generalized Cross Entropy Loss
/// for Training Deep Neural Networks with Noisy Labels*, NeurIPS, arXiv:1805.07836.
#[derive(Clone, Debug, PartialEq)]
pub struct CompSum {
    /// Ψ. Default GCE with q = 0.7.
    pub psi: Psi,
    /// Default [`Reduction::Mean`].
    pub reduction: Reduction,
}

impl Default for CompSum {
    fn default() -> Self {
        Self { psi: Psi::Gce { q: 0.7 }, reduction: Reduction::Mean }
    }
}

impl CompSum {
    /// The defaults (GCE with q = 0.7).
    pub fn new() -> Self {
        Self::default()
    }
    /// Ψ (default GCE, q = 0.7).
    pub fn psi(mut self, psi: Psi) -> Self {
        self.psi = psi;
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
    /// [`Error::Parameter`] naming `q`.
    pub fn check(&self) -> Result<()> {
        self.psi.check()
    }
    /// Builds the config from registry parameters (and checks it).
    ///
    /// # Errors
    /// As [`CompSum::check`]; [`Error::ParameterText`] for an unknown `psi`.
    pub fn from_params(p: &Params) -> Result<Self> {
        let q = p.f64("q")?;
        let psi = match p.text("psi")? {
            "ce" => Psi::CrossEntropy,
            "gce" => Psi::Gce { q },
            "mae" => Psi::Mae,
            "sum-exp" => Psi::SumExponential,
            other => {
                return Err(Error::ParameterText {
                    name: "psi".into(),
                    value: other.into(),
                    reason: "expected one of ce, gce, mae, sum-exp".into(),
                });
            }
        };
        // q is validated even when Ψ does not use it, so that a bad value is never silently accepted.
        check::open_closed("q", q, 0.0, 1.0)?;
        let cfg = Self { psi, reduction: p.reduction() };
        cfg.check()?;
        Ok(cfg)
    }
}

/// Runs a comp-sum loss through the driver (shared by the named members).
pub(crate) fn run<F: Real>(
    psi: Psi,
    reduction: Reduction,
    logits: ArrayView2<'_, F>,
    targets: Targets<'_, F>,
    weights: Option<ArrayView1<'_, F>>,
    grad: bool,
) -> Result<LossOutput<F, Ix2>> {
    run_to(psi, reduction, logits, targets, weights, if grad { GradDest::Alloc } else { GradDest::Skip })
}

/// [`run`] with the gradient's destination chosen by the caller.
fn run_to<F: Real>(
    psi: Psi,
    reduction: Reduction,
    logits: ArrayView2<'_, F>,
    targets: Targets<'_, F>,
    weights: Option<ArrayView1<'_, F>>,
    dest: GradDest<'_, F>,
) -> Result<LossOutput<F, Ix2>> {
    psi.check()?;
    if let Targets::Soft(_) = targets {
        return Err(Error::Input { what: "comp-sum losses take class indices as targets, not probabilities".into() });
    }
    let kernel = Kernel { psi, q: F::c(if let Psi::Gce { q } = psi { q } else { 1.0 }) };
    driver::run_to(&kernel, Setup { ignore_index: None, reduction }, logits, targets, weights, dest)
}

impl<F: Real> ClassLoss<F> for CompSum {
    fn compute(
        &self,
        logits: ArrayView2<'_, F>,
        targets: Targets<'_, F>,
        weights: Option<ArrayView1<'_, F>>,
        grad: bool,
    ) -> Result<LossOutput<F, Ix2>> {
        self.check()?;
        run(self.psi, self.reduction, logits, targets, weights, grad)
    }

    fn value_and_grad_into(
        &self,
        logits: ArrayView2<'_, F>,
        targets: Targets<'_, F>,
        weights: Option<ArrayView1<'_, F>>,
        grad: ArrayViewMut2<'_, F>,
    ) -> Result<LossOutput<F, Ix2>> {
        self.check()?;
        run_to(self.psi, self.reduction, logits, targets, weights, GradDest::Into(grad))
    }
}

struct Kernel<F> {
    psi: Psi,
    q: F,
}

/// exp(x) for x ≤ τ, its tangent e^τ·(1 + x − τ) above; returns (value, derivative). Branch-free.
#[inline(always)]
fn exp_linear<F: Real>(x: F, tau: F) -> (F, F) {
    let e = x.min(tau).fast_exp();
    let over = (x - tau).max(F::zero());
    (e * (F::one() + over), e)
}

/// Σ_{j} ext(z_j − zy) over a slice, writing scale·ext'(z_j − zy) into `out` when given.
#[inline(always)]
fn sum_exp_linear<F: Real>(z: &[F], zy: F, tau: F, scale: F, out: Option<&mut [F]>) -> F {
    const L: usize = rowmath::LANES;
    let mut acc = [F::zero(); L];
    match out {
        Some(out) => {
            let mut zc = z.chunks_exact(L);
            let mut oc = out.chunks_exact_mut(L);
            for (zs, os) in (&mut zc).zip(&mut oc) {
                for k in 0..L {
                    let (v, d) = exp_linear(zs[k] - zy, tau);
                    acc[k] += v;
                    os[k] = scale * d;
                }
            }
            for (k, (&zj, o)) in zc.remainder().iter().zip(oc.into_remainder()).enumerate() {
                let (v, d) = exp_linear(zj - zy, tau);
                acc[k] += v;
                *o = scale * d;
            }
        }
        None => {
            let mut zc = z.chunks_exact(L);
            for zs in &mut zc {
                for k in 0..L {
                    acc[k] += exp_linear(zs[k] - zy, tau).0;
                }
            }
            for (k, &zj) in zc.remainder().iter().enumerate() {
                acc[k] += exp_linear(zj - zy, tau).0;
            }
        }
    }
    let mut width = L / 2;
    while width > 0 {
        for k in 0..width {
            acc[k] += acc[k + width];
        }
        width /= 2;
    }
    acc[0]
}

impl<F: Real> RowKernel<F> for Kernel<F> {
    // Sum-exponential writes every column but y and then y; the others let split_exp_sum write every column but y,
    // rewrite them with scale_shift and set y last.
    const WRITES_HARD_ROW: bool = true;

    #[inline(always)]
    fn label_weight(&self, _label: usize) -> F {
        F::one()
    }

    #[inline(always)]
    fn hard(&self, z: &[F], max: F, y: usize, scale: F, mut grad: Option<&mut [F]>) -> F {
        if let Psi::SumExponential = self.psi {
            let tau = F::c(SUM_EXP_LINEAR_ABOVE);
            let zy = z[y];
            return match grad {
                Some(g) => {
                    let (gl, gr) = g.split_at_mut(y);
                    let (gy, gr) = gr.split_at_mut(1);
                    let u = sum_exp_linear(&z[..y], zy, tau, scale, Some(gl))
                        + sum_exp_linear(&z[y + 1..], zy, tau, scale, Some(gr));
                    gy[0] = -(rowmath::sum(gl) + rowmath::sum(gr));
                    u
                }
                None => {
                    sum_exp_linear(&z[..y], zy, tau, scale, None) + sum_exp_linear(&z[y + 1..], zy, tau, scale, None)
                }
            };
        }
        let sp = rowmath::split_exp_sum(z, max, F::one(), y, grad.as_deref_mut());
        // ℓ and the factor f of ∂ℓ/∂z = f·(p − e_y).
        let (loss, f) = match self.psi {
            Psi::CrossEntropy => (-sp.log_py, F::one()),
            Psi::Mae => (sp.one_minus_py(), sp.py()),
            // (1 − p_y^q)/q = −expm1(q·log p_y)/q keeps its digits when p_y ≈ 1 and as q → 0; the factor p_y^q is
            // 1 + expm1(·), within an ulp of exp(·), so one transcendental per row serves both.
            Psi::Gce { .. } => {
                let em1 = (self.q * sp.log_py).exp_m1();
                (-em1 / self.q, F::one() + em1)
            }
            Psi::SumExponential => (F::zero(), F::zero()), // handled above
        };
        if let Some(g) = grad {
            let c = scale * f;
            let (gl, gr) = g.split_at_mut(y);
            let (gy, gr) = gr.split_at_mut(1);
            let a = c / sp.total;
            rowmath::scale_shift(gl, a, F::zero(), None);
            rowmath::scale_shift(gr, a, F::zero(), None);
            gy[0] = -c * sp.one_minus_py();
        }
        loss
    }

    fn soft(&self, _z: &[F], _max: F, _t: &[F], _scale: F, _grad: Option<&mut [F]>) -> F {
        // Never called: `run` rejects probability targets before the driver runs.
        F::nan()
    }
}

/// Generalized cross-entropy (Zhang & Sabuncu 2018): ℓ = (1 − p_y^q)/q, the comp-sum loss with Ψ = GCE.
///
/// ```text
/// ℓᵢ = (1 − p_y^q)/q,   p = softmax(zᵢ);   Mean = Σᵢ sᵢ·ℓᵢ / Σᵢ sᵢ
/// ```
/// q → 0 gives cross-entropy, q = 1 gives [`Mae`] (1 − p_y). See [`CompSum`] for the family, shapes and errors.
///
/// # Parameters
/// * `q`: q ∈ (0, 1], default 0.7 (Zhang & Sabuncu's recommended value).
/// * `reduction`: `Mean` (default), `Sum` or `None`.
///
/// # Gradient
/// `∂ℓ/∂z = p_y^q·(p − e_y)`.
///
/// # Errors
/// As [`CompSum`]: [`Error::Parameter`] for q ∉ (0, 1], input errors from the driver.
///
/// # References
/// Zhang, Sabuncu (2018), *Generalized Cross Entropy Loss for Training Deep Neural Networks with Noisy Labels*,
/// NeurIPS, arXiv:1805.07836; as a comp-sum loss: Mao, Mohri, Zhong (2023), ICML, arXiv:2304.07288
/// (docs/papers.md key `mao2023cross`).
#[derive(Clone, Debug, PartialEq)]
pub struct GeneralizedCrossEntropy {
    /// q ∈ (0, 1]. Default 0.7.
    pub q: f64,
    /// Default [`Reduction::Mean`].
    pub reduction: Reduction,
}

impl Default for GeneralizedCrossEntropy {
    fn default() -> Self {
        Self { q: 0.7, reduction: Reduction::Mean }
    }
}

impl GeneralizedCrossEntropy {
    /// The defaults (q = 0.7).
    pub fn new() -> Self {
        Self::default()
    }
    /// q ∈ (0, 1] (default 0.7).
    pub fn q(mut self, q: f64) -> Self {
        self.q = q;
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
    /// [`Error::Parameter`] naming `q`.
    pub fn check(&self) -> Result<()> {
        check::open_closed("q", self.q, 0.0, 1.0)
    }
}

impl<F: Real> ClassLoss<F> for GeneralizedCrossEntropy {
    fn compute(
        &self,
        logits: ArrayView2<'_, F>,
        targets: Targets<'_, F>,
        weights: Option<ArrayView1<'_, F>>,
        grad: bool,
    ) -> Result<LossOutput<F, Ix2>> {
        self.check()?;
        run(Psi::Gce { q: self.q }, self.reduction, logits, targets, weights, grad)
    }

    fn value_and_grad_into(
        &self,
        logits: ArrayView2<'_, F>,
        targets: Targets<'_, F>,
        weights: Option<ArrayView1<'_, F>>,
        grad: ArrayViewMut2<'_, F>,
    ) -> Result<LossOutput<F, Ix2>> {
        self.check()?;
        run_to(Psi::Gce { q: self.q }, self.reduction, logits, targets, weights, GradDest::Into(grad))
    }
}

/// Mean absolute error on softmax probabilities in Mao et al.'s scaling: ℓ = 1 − p_y (the comp-sum loss with
/// Ψ(u) = 1 − 1/(1 + u)).
///
/// ```text
/// ℓᵢ = 1 − p_y,   p = softmax(zᵢ);   Mean = Σᵢ sᵢ·ℓᵢ / Σᵢ sᵢ
/// ```
/// Equal to [`GeneralizedCrossEntropy`] with q = 1, and half the ‖p − e_y‖₁ form of Ghosh et al. (2017); the LDR-KL
/// paper's released `MAELoss` computes Σ_k (e_y − p)_k = 1 − p_y too. Bounded in [0, 1), robust to label noise.
///
/// # Parameters
/// * `reduction`: `Mean` (default), `Sum` or `None`.
///
/// # Gradient
/// `∂ℓ/∂z = p_y·(p − e_y)`.
///
/// # Errors
/// As [`CompSum`].
///
/// # References
/// Mao, Mohri, Zhong (2023), ICML, arXiv:2304.07288 (docs/papers.md key `mao2023cross`); Ghosh, Kumar, Sastry (2017),
/// *Robust Loss Functions under Label Noise for Deep Neural Networks*, AAAI.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Mae {
    /// Default [`Reduction::Mean`].
    pub reduction: Reduction,
}

impl Mae {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Reduction (default [`Reduction::Mean`]).
    pub fn reduction(mut self, r: Reduction) -> Self {
        self.reduction = r;
        self
    }
}

impl<F: Real> ClassLoss<F> for Mae {
    fn compute(
        &self,
        logits: ArrayView2<'_, F>,
        targets: Targets<'_, F>,
        weights: Option<ArrayView1<'_, F>>,
        grad: bool,
    ) -> Result<LossOutput<F, Ix2>> {
        run(Psi::Mae, self.reduction, logits, targets, weights, grad)
    }

    fn value_and_grad_into(
        &self,
        logits: ArrayView2<'_, F>,
        targets: Targets<'_, F>,
        weights: Option<ArrayView1<'_, F>>,
        grad: ArrayViewMut2<'_, F>,
    ) -> Result<LossOutput<F, Ix2>> {
        run_to(Psi::Mae, self.reduction, logits, targets, weights, GradDest::Into(grad))
    }
}

/// Sum-exponential loss: ℓ = Σ_{j≠y} exp(z_j − z_y) = (1 − p_y)/p_y (the comp-sum loss with Ψ(u) = u).
///
/// ```text
/// ℓᵢ = Σ_{j≠y} ext(z_j − z_y),   ext(x) = eˣ (x ≤ 50), e⁵⁰·(1 + x − 50) (x > 50);   Mean = Σᵢ sᵢ·ℓᵢ / Σᵢ sᵢ
/// ```
/// The tangent continuation above [`SUM_EXP_LINEAR_ABOVE`] keeps the loss finite for any finite logits (the exact
/// loss overflows f64 once a margin exceeds ≈ 709); it does not touch any row whose margins are all below 50.
///
/// # Parameters
/// * `reduction`: `Mean` (default), `Sum` or `None`.
///
/// # Gradient
/// `∂ℓ/∂z_j = ext'(z_j − z_y)` (j ≠ y), `∂ℓ/∂z_y = −Σ_{j≠y} ext'(z_j − z_y)`.
///
/// # Errors
/// As [`CompSum`].
///
/// # References
/// Mao, Mohri, Zhong (2023), ICML, arXiv:2304.07288 (docs/papers.md key `mao2023cross`).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct SumExponential {
    /// Default [`Reduction::Mean`].
    pub reduction: Reduction,
}

impl SumExponential {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Reduction (default [`Reduction::Mean`]).
    pub fn reduction(mut self, r: Reduction) -> Self {
        self.reduction = r;
        self
    }
}

impl<F: Real> ClassLoss<F> for SumExponential {
    fn compute(
        &self,
        logits: ArrayView2<'_, F>,
        targets: Targets<'_, F>,
        weights: Option<ArrayView1<'_, F>>,
        grad: bool,
    ) -> Result<LossOutput<F, Ix2>> {
        run(Psi::SumExponential, self.reduction, logits, targets, weights, grad)
    }

    fn value_and_grad_into(
        &self,
        logits: ArrayView2<'_, F>,
        targets: Targets<'_, F>,
        weights: Option<ArrayView1<'_, F>>,
        grad: ArrayViewMut2<'_, F>,
    ) -> Result<LossOutput<F, Ix2>> {
        run_to(Psi::SumExponential, self.reduction, logits, targets, weights, GradDest::Into(grad))
    }
}

const REFERENCE: &str = "Mao, Mohri, Zhong (2023), Cross-Entropy Loss Functions: Theoretical Analysis and \
                         Applications, ICML, arXiv:2304.07288";

const COMP_SUM_PARAMS: &[ParamSpec] = &[
    param("psi", "gce", Range::Choice(&["ce", "gce", "mae", "sum-exp"]), "Ψ: the comp-sum member"),
    param("q", "0.7", Range::OpenClosed(0.0, 1.0), "q of Ψ = gce (validated whatever Ψ)"),
];

fn build_comp_sum(p: &Params) -> Result<BuiltLoss> {
    Ok(BuiltLoss { class: Some(Box::new(CompSum::from_params(p)?)), binary: None })
}

/// Registry entry of the generic comp-sum loss.
pub(crate) const COMP_SUM_ENTRY: LossEntry = LossEntry {
    name: "comp-sum",
    family: Family::Classification,
    summary: "comp-sum loss Ψ(Σ_{j≠y} exp(z_j − z_y)) with Ψ = ce, gce, mae or sum-exp",
    paper: "mao2023cross",
    reference: REFERENCE,
    params: COMP_SUM_PARAMS,
    build: build_comp_sum,
};

const GCE_PARAMS: &[ParamSpec] = &[param("q", "0.7", Range::OpenClosed(0.0, 1.0), "q: 1 = mae, → 0 = cross-entropy")];

fn build_gce(p: &Params) -> Result<BuiltLoss> {
    let cfg = GeneralizedCrossEntropy { q: p.f64("q")?, reduction: p.reduction() };
    cfg.check()?;
    Ok(BuiltLoss { class: Some(Box::new(cfg)), binary: None })
}

/// Registry entry of GCE.
pub(crate) const GCE_ENTRY: LossEntry = LossEntry {
    name: "generalized-cross-entropy",
    family: Family::Classification,
    summary: "generalized cross-entropy (1 − p_y^q)/q, robust to label noise",
    paper: "zhang2018generalized",
    reference: "Zhang, Sabuncu (2018), Generalized Cross Entropy Loss for Training Deep Neural Networks with Noisy \
                Labels, NeurIPS, arXiv:1805.07836",
    params: GCE_PARAMS,
    build: build_gce,
};

fn build_mae(p: &Params) -> Result<BuiltLoss> {
    Ok(BuiltLoss { class: Some(Box::new(Mae { reduction: p.reduction() })), binary: None })
}

/// Registry entry of MAE.
pub(crate) const MAE_ENTRY: LossEntry = LossEntry {
    name: "mae",
    family: Family::Classification,
    summary: "mean absolute error on softmax probabilities, 1 − p_y (comp-sum with Ψ = mae)",
    paper: "mao2023cross",
    reference: REFERENCE,
    params: &[],
    build: build_mae,
};

fn build_sum_exp(p: &Params) -> Result<BuiltLoss> {
    Ok(BuiltLoss { class: Some(Box::new(SumExponential { reduction: p.reduction() })), binary: None })
}

/// Registry entry of the sum-exponential loss.
pub(crate) const SUM_EXP_ENTRY: LossEntry = LossEntry {
    name: "sum-exponential",
    family: Family::Classification,
    summary: "sum-exponential loss Σ_{j≠y} exp(z_j − z_y) (comp-sum with Ψ(u) = u)",
    paper: "mao2023cross",
    reference: REFERENCE,
    params: &[],
    build: build_sum_exp,
};

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn value(psi: Psi, z: &ndarray::Array2<f64>, y: &[i64]) -> f64 {
        CompSum::new().psi(psi).compute(z.view(), Targets::hard(y), None, false).unwrap().value
    }

    #[test]
    fn spec_oracle_two_classes_at_zero() {
        let z = array![[0.0_f64, 0.0]];
        assert!((value(Psi::CrossEntropy, &z, &[0]) - std::f64::consts::LN_2).abs() < 1e-15);
        assert!((value(Psi::SumExponential, &z, &[0]) - 1.0).abs() < 1e-15);
        assert!((value(Psi::Gce { q: 0.5 }, &z, &[0]) - 0.585_786_437_626_904_9).abs() < 1e-15);
        assert!((value(Psi::Mae, &z, &[0]) - 0.5).abs() < 1e-15);
    }

    #[test]
    fn bad_q_is_named() {
        assert!(matches!(GeneralizedCrossEntropy::new().q(0.0).check(), Err(Error::Parameter { name: "q", .. })));
        assert!(matches!(GeneralizedCrossEntropy::new().q(1.5).check(), Err(Error::Parameter { name: "q", .. })));
        assert!(matches!(CompSum::new().psi(Psi::Gce { q: -1.0 }).check(), Err(Error::Parameter { name: "q", .. })));
        let p = COMP_SUM_ENTRY.params(&[("psi".into(), "mae".into())]).unwrap();
        assert_eq!(CompSum::from_params(&p).unwrap().psi, Psi::Mae);
    }

    #[test]
    fn sum_exp_is_linear_beyond_the_threshold() {
        let z = array![[0.0_f64, 60.0]];
        let out = SumExponential::new().compute(z.view(), Targets::hard(&[0]), None, true).unwrap();
        assert!((out.value - 50.0_f64.exp() * 11.0).abs() < 1e-6 * out.value);
        let g = out.grad.unwrap();
        assert!((g[[0, 1]] - 50.0_f64.exp()).abs() < 1e-6 * g[[0, 1]] && (g[[0, 0]] + g[[0, 1]]).abs() == 0.0);
    }

    #[test]
    fn probability_targets_are_rejected() {
        let z = array![[0.0_f64, 1.0]];
        let t = array![[0.5_f64, 0.5]];
        assert!(matches!(Mae::new().compute(z.view(), Targets::soft(t.view()), None, false), Err(Error::Input { .. })));
    }
}
