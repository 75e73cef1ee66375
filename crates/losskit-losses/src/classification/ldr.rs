//! Label-distributionally robust losses (Zhu, Ying, Yang 2023): [`LdrKl`], its top-k form [`LdrKlTopK`] and the
//! adaptive [`AldrKl`] with a per-sample λ table ([`AldrKlState`]).

use ndarray::{ArrayView1, ArrayView2, Ix2};

use losskit_tensor::{Error, Real, Reduction, Result, check};

use super::driver::{self, RowKernel, Setup};
use super::indexed::{self, IndexedKernel};
use super::rowmath;
use crate::core::{ClassLoss, LossOutput, Targets};
use crate::registry::{BuiltLoss, Family, LossEntry, ParamSpec, Params, Range, param};

/// How the LDR losses transform the raw logits z into the scores s they use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScoreNorm {
    /// s = z (the paper's generic form).
    None,
    /// s = K·softplus(z) / Σ_k softplus(z_k): positive scores with mean 1 (the official `LDRLoss_V1`).
    SoftplusMean,
    /// s = K·z / Σ_k |z_k|: scores with mean absolute value 1 (the official `ALDRLoss_V1` without its softplus).
    L1Mean,
}

impl ScoreNorm {
    fn parse(v: &str) -> Result<Self> {
        match v {
            "none" => Ok(Self::None),
            "softplus-mean" => Ok(Self::SoftplusMean),
            "l1-mean" => Ok(Self::L1Mean),
            other => Err(Error::ParameterText {
                name: "score_norm".into(),
                value: other.into(),
                reason: "expected one of none, softplus-mean, l1-mean".into(),
            }),
        }
    }
}

const NORMS: &[&str] = &["none", "softplus-mean", "l1-mean"];

/// Denominators below this are clamped, so an all-zero row (or softplus underflowing everywhere) stays finite.
const NORM_EPS: f64 = 1e-12;

/// Writes the normalized scores of `z` into `s` and returns the clamped denominator (Σ softplus or Σ |z|).
#[inline(always)]
fn normalize<F: Real>(norm: ScoreNorm, z: &[F], s: &mut [F]) -> F {
    let k = F::from_usize_lossy(z.len());
    let eps = F::c(NORM_EPS);
    match norm {
        ScoreNorm::None => {
            s.copy_from_slice(z);
            F::one()
        }
        ScoreNorm::SoftplusMean => {
            let total = rowmath::softplus_sum(z, s);
            let d = total.max(eps);
            let f = k / d;
            s.iter_mut().for_each(|v| *v *= f);
            d
        }
        ScoreNorm::L1Mean => {
            let total = rowmath::abs_sum(z);
            let d = total.max(eps);
            let f = k / d;
            for (sj, &zj) in s.iter_mut().zip(z) {
                *sj = zj * f;
            }
            d
        }
    }
}

/// Turns g = ∂ℓ/∂s (in `g`) into scale·∂ℓ/∂z, given the scores s and the denominator d of [`normalize`].
#[inline(always)]
fn normalize_backward<F: Real>(norm: ScoreNorm, z: &[F], s: &[F], d: F, scale: F, g: &mut [F]) {
    let k = F::from_usize_lossy(z.len());
    match norm {
        ScoreNorm::None => g.iter_mut().for_each(|v| *v *= scale),
        ScoreNorm::SoftplusMean => {
            // s = K·u/U:  ∂ℓ/∂u_j = (K/U)·(g_j − (g·s)/K),  ∂u_j/∂z_j = sigmoid(z_j).
            let gs = rowmath::dot(g, s);
            let f = scale * k / d;
            let mean = gs / k;
            for (gj, &zj) in g.iter_mut().zip(z) {
                *gj = f * rowmath::sigmoid(zj) * (*gj - mean);
            }
        }
        ScoreNorm::L1Mean => {
            // s = K·z/A, A = Σ|z|:  ∂ℓ/∂z_j = (K/A)·g_j − sign(z_j)·(g·s)/A.
            let gs = rowmath::dot(g, s);
            let f = scale * k / d;
            let h = scale * gs / d;
            for (gj, &zj) in g.iter_mut().zip(z) {
                let sign = if zj > F::zero() {
                    F::one()
                } else if zj < F::zero() {
                    -F::one()
                } else {
                    F::zero()
                };
                *gj = f * *gj - sign * h;
            }
        }
    }
}

/// The LDR-KL value of one score row, λ·log((1/K)·Σ_k exp(a_k/λ)) with a_k = c·1[k≠y] + s_k − s_y; writes ∂ℓ/∂s
/// = p* − e_y into `out` when given (p* = softmax(a/λ)).
#[inline(always)]
fn ldr_row<F: Real>(s: &[F], y: usize, lambda: F, margin: F, out: Option<&mut [F]>) -> F {
    let k = s.len();
    let (ml, _) = rowmath::max_and_finite(&s[..y]);
    let (mr, _) = rowmath::max_and_finite(&s[y + 1..]);
    let sy = s[y];
    // The largest a_k: a_y = 0, the others c + s_j − s_y.
    let top = (ml.max(mr) - sy + margin).max(F::zero());
    let shift = top + sy - margin; // exp((s_j − shift)/λ) = exp((a_j − top)/λ) for j ≠ y
    let inv = F::one() / lambda;
    let (rest, ey) = match out {
        Some(out) => {
            let (ol, or) = out.split_at_mut(y);
            let rest = rowmath::exp_sum(&s[..y], shift, inv, Some(ol))
                + rowmath::exp_sum(&s[y + 1..], shift, inv, Some(&mut or[1..]));
            let ey = (-top * inv).fast_exp();
            let total = rest + ey;
            let r = F::one() / total;
            out.iter_mut().for_each(|v| *v *= r);
            out[y] = -rest * r;
            (rest, ey)
        }
        None => {
            let rest = rowmath::exp_sum(&s[..y], shift, inv, None) + rowmath::exp_sum(&s[y + 1..], shift, inv, None);
            (rest, (-top * inv).fast_exp())
        }
    };
    lambda * ((rest + ey).ln() - F::from_usize_lossy(k).ln()) + top
}

/// LDR-KL loss: the worst case over label distributions p of the margin-augmented score gap, regularised by
/// λ·KL(p ‖ uniform).
///
/// ```text
/// ℓᵢ = max_{p∈Δ_K} Σ_k p_k·a_k − λ·KL(p ‖ 1/K) = λ·log((1/K)·Σ_k exp(a_k/λ)),   a_k = c·1[k≠y] + s_k − s_y
/// Mean = Σᵢ sᵢ·ℓᵢ / Σᵢ sᵢ     Sum = Σᵢ sᵢ·ℓᵢ     None: (sᵢ·ℓᵢ)ᵢ      (sᵢ = per-sample weight)
/// ```
/// where the scores s are the logits z transformed by `score_norm`: `none` (s = z, the paper's form),
/// `softplus-mean` (s = K·softplus(z)/Σ softplus(z), the official code's `LDRLoss_V1`, the default) or `l1-mean`
/// (s = K·z/Σ|z|, the official `ALDRLoss_V1`). With c = 0 and `none`, ℓ = λ·CE(z/λ) − λ·log K. λ → 0 gives the
/// Crammer–Singer hinge, λ → ∞ the mean margin. ℓ can be negative (its minimum is −λ·log K).
///
/// # Parameters
/// * `lambda`: λ > 0, default 10 (the official experiment script's `parameter_set=[10]`; its comment tunes over
///   {0.1, 1, 10}).
/// * `margin`: c ≥ 0, default 0.1 (the official script's `--margin`).
/// * `score_norm`: default `softplus-mean` (the official `LDRLoss_V1`).
/// * `reduction`: `Mean` (default), `Sum` or `None`.
///
/// # Shapes
/// `logits` [N, K], hard targets `[N]` in `0..K`, optional `weights` `[N]`; gradient [N, K].
///
/// # Gradient
/// ```text
/// ∂ℓ/∂s = p* − e_y,   p* = softmax(a/λ)       (Danskin; λ cancels)
/// ```
/// then through the score normalisation: softplus-mean `∂ℓ/∂z_j = sigmoid(z_j)·(K/U)·(g_j − (g·s)/K)`, U = Σ
/// softplus(z); l1-mean `∂ℓ/∂z_j = (K/A)·g_j − sign(z_j)·(g·s)/A`, A = Σ|z| (sign(0) = 0, a subgradient).
/// Denominators are clamped at 1e-12.
///
/// # Errors
/// [`Error::Parameter`] for λ ≤ 0 or c < 0; [`Error::Input`] for probability targets; input errors from the driver.
///
/// # Examples
/// ```
/// use losskit_losses::{ClassLoss, LdrKl, ScoreNorm, Targets};
/// // K = 3, s = 0, c > 0: ℓ = λ·log((1 + 2·e^{c/λ})/3).
/// let z = ndarray::array![[0.0_f64, 0.0, 0.0]];
/// let out = LdrKl::new().score_norm(ScoreNorm::None).compute(z.view(), Targets::hard(&[1]), None, false)?;
/// assert!((out.value - 10.0 * ((1.0 + 2.0 * 0.01_f64.exp()) / 3.0).ln()).abs() < 1e-12);
/// # Ok::<(), losskit_losses::Error>(())
/// ```
///
/// # References
/// Zhu, Ying, Yang (2023), *Label Distributionally Robust Losses for Multi-class Classification: Consistency,
/// Robustness and Adaptivity*, ICML, arXiv:2112.14869 (docs/papers.md key `zhu2023label`); defaults and the score
/// normalisation from the authors' released `LDRLoss_V1` and experiment script.
#[derive(Clone, Debug, PartialEq)]
pub struct LdrKl {
    /// λ > 0. Default 10.
    pub lambda: f64,
    /// Margin c ≥ 0. Default 0.1.
    pub margin: f64,
    /// Default [`ScoreNorm::SoftplusMean`].
    pub score_norm: ScoreNorm,
    /// Default [`Reduction::Mean`].
    pub reduction: Reduction,
}

impl Default for LdrKl {
    fn default() -> Self {
        Self { lambda: 10.0, margin: 0.1, score_norm: ScoreNorm::SoftplusMean, reduction: Reduction::Mean }
    }
}

impl LdrKl {
    /// The defaults (λ = 10, c = 0.1, softplus-mean scores).
    pub fn new() -> Self {
        Self::default()
    }
    /// λ > 0 (default 10).
    pub fn lambda(mut self, lambda: f64) -> Self {
        self.lambda = lambda;
        self
    }
    /// Margin c ≥ 0 (default 0.1).
    pub fn margin(mut self, c: f64) -> Self {
        self.margin = c;
        self
    }
    /// Score normalisation (default softplus-mean).
    pub fn score_norm(mut self, n: ScoreNorm) -> Self {
        self.score_norm = n;
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
    /// [`Error::Parameter`] naming `lambda` or `margin`.
    pub fn check(&self) -> Result<()> {
        check::greater_than("lambda", self.lambda, 0.0)?;
        check::at_least("margin", self.margin, 0.0)
    }
}

struct LdrKernel<F> {
    lambda: F,
    margin: F,
    norm: ScoreNorm,
    /// 0 for LDR-KL; the cap k of the top-k form otherwise.
    top_k: usize,
}

impl<F: Real> LdrKernel<F> {
    #[inline(always)]
    fn scores_row(&self, s: &[F], y: usize, out: Option<&mut [F]>) -> F {
        if self.top_k == 0 { ldr_row(s, y, self.lambda, self.margin, out) } else { top_k_row(s, y, self, out) }
    }

    /// A row through the score normalisation (or the top-k solver): scores into the scratch row first (reused
    /// across the rows of a parallel task, so no row allocates).
    #[inline(always)]
    fn row(&self, z: &[F], y: usize, scale: F, grad: Option<&mut [F]>, scratch: &mut Vec<F>) -> F {
        scratch.clear();
        scratch.resize(z.len(), F::zero());
        let s = &mut scratch[..];
        let d = normalize(self.norm, z, s);
        match grad {
            Some(g) => {
                let loss = self.scores_row(s, y, Some(&mut *g));
                normalize_backward(self.norm, z, s, d, scale, g);
                loss
            }
            None => self.scores_row(s, y, None),
        }
    }
}

impl<F: Real> RowKernel<F> for LdrKernel<F> {
    #[inline(always)]
    fn label_weight(&self, _label: usize) -> F {
        F::one()
    }

    #[inline(always)]
    fn hard(&self, z: &[F], max: F, y: usize, scale: F, grad: Option<&mut [F]>) -> F {
        self.hard_with_scratch(z, max, y, scale, grad, &mut Vec::new())
    }

    #[inline(always)]
    fn hard_with_scratch(
        &self,
        z: &[F],
        _max: F,
        y: usize,
        scale: F,
        grad: Option<&mut [F]>,
        scratch: &mut Vec<F>,
    ) -> F {
        if self.norm == ScoreNorm::None && self.top_k == 0 {
            return match grad {
                Some(g) => {
                    let loss = ldr_row(z, y, self.lambda, self.margin, Some(&mut *g));
                    g.iter_mut().for_each(|v| *v *= scale);
                    loss
                }
                None => ldr_row(z, y, self.lambda, self.margin, None),
            };
        }
        self.row(z, y, scale, grad, scratch)
    }

    fn soft(&self, _z: &[F], _max: F, _t: &[F], _scale: F, _grad: Option<&mut [F]>) -> F {
        // Never called: probability targets are rejected before the driver runs.
        F::nan()
    }
}

fn reject_soft<F>(targets: &Targets<'_, F>, what: &str) -> Result<()> {
    match targets {
        Targets::Soft(_) => {
            Err(Error::Input { what: format!("{what} takes class indices as targets, not probabilities") })
        }
        Targets::Hard(_) => Ok(()),
    }
}

impl<F: Real> ClassLoss<F> for LdrKl {
    fn compute(
        &self,
        logits: ArrayView2<'_, F>,
        targets: Targets<'_, F>,
        weights: Option<ArrayView1<'_, F>>,
        grad: bool,
    ) -> Result<LossOutput<F, Ix2>> {
        self.check()?;
        reject_soft(&targets, "ldr-kl")?;
        let kernel =
            LdrKernel { lambda: F::c(self.lambda), margin: F::c(self.margin), norm: self.score_norm, top_k: 0 };
        driver::run(&kernel, Setup { ignore_index: None, reduction: self.reduction }, logits, targets, weights, grad)
    }
}

/// The top-k LDR-KL value of one score row: the adversarial p restricted to the capped simplex p_j ≤ 1/k.
fn top_k_row<F: Real>(s: &[F], y: usize, kern: &LdrKernel<F>, out: Option<&mut [F]>) -> F {
    let kk = s.len();
    let cap_k = kern.top_k.min(kk);
    let (lambda, margin) = (kern.lambda, kern.margin);
    let sy = s[y];
    let a = |j: usize| if j == y { F::zero() } else { margin + s[j] - sy };
    let mut order: Vec<usize> = (0..kk).collect();
    // Finite scores: partial_cmp never fails; ties keep index order.
    order.sort_by(|&i, &j| a(j).partial_cmp(&a(i)).unwrap_or(std::cmp::Ordering::Equal).then(i.cmp(&j)));
    let inv = F::one() / lambda;
    let kf = F::from_usize_lossy(cap_k);
    // The number m of capped entries: the first m (in descending a) such that the (m+1)-th is below the cap once
    // the remaining mass 1 − m/k is spread over the rest in proportion to exp(a/λ), i.e. T_m ≥ k − m.
    let mut m = 0;
    let mut t_m = F::one();
    while m < cap_k {
        let am = a(order[m]);
        t_m = order[m..].iter().map(|&j| ((a(j) - am) * inv).fast_exp()).sum();
        if t_m >= kf - F::from_usize_lossy(m) {
            break;
        }
        m += 1;
    }
    let m = m.min(cap_k - 1);
    let am = a(order[m]);
    let mass = F::one() - F::from_usize_lossy(m) / kf;
    let ln_k = F::from_usize_lossy(kk).ln();
    let ln_cap = ln_k - kf.ln();
    let ln_rest = ln_k + mass.ln() - t_m.ln();
    let mut value = F::zero();
    let mut out = out;
    for (rank, &j) in order.iter().enumerate() {
        let aj = a(j);
        let (pj, ln_kp) = if rank < m {
            (F::one() / kf, ln_cap)
        } else {
            let e = (aj - am) * inv;
            (mass * e.fast_exp() / t_m, ln_rest + e)
        };
        value += pj * (aj - lambda * ln_kp);
        if let Some(o) = out.as_deref_mut() {
            o[j] = pj;
        }
    }
    if let Some(o) = out {
        o[y] -= F::one();
    }
    value
}

/// Top-k LDR-KL: [`LdrKl`] with the adversarial label distribution restricted to the capped simplex
/// Ω_k = {p ∈ Δ_K : p_j ≤ 1/k}, which makes the loss top-k consistent.
///
/// ```text
/// ℓᵢ = max_{p∈Ω_k} Σ_j p_j·a_j − λ·Σ_j p_j·log(K·p_j),   a_j = c·1[j≠y] + s_j − s_y
/// p_j = min(1/k, exp((a_j − ν)/λ)) with ν such that Σ_j p_j = 1
/// ```
/// ν is found exactly by sorting a (O(K log K) per row) and finding how many entries are capped. k = 1 is
/// [`LdrKl`]; λ → 0 gives the mean of the k largest margins (top-k SVM style). A k above K is taken as K (then p
/// is uniform and ℓ the mean margin). Scores s come from `score_norm` as in [`LdrKl`].
///
/// Status: the paper's top-k loss is recalled from the paper, not checked against released code (the official
/// repository's `SVMkLoss`/`CEkLoss` are referenced but absent); the closed-form solution is derived here and
/// checked against an independent bisection solver in the fixtures.
///
/// # Parameters
/// * `k`: integer k ≥ 1, default 5 (losskit's choice: the usual top-5 metric).
/// * `lambda`, `margin`, `score_norm`: as [`LdrKl`] (defaults 10, 0.1, softplus-mean).
/// * `reduction`: `Mean` (default), `Sum` or `None`.
///
/// # Shapes
/// As [`LdrKl`].
///
/// # Gradient
/// `∂ℓ/∂s = p − e_y` (Danskin: the maximiser is unique since the objective is strictly concave), then through the
/// score normalisation as [`LdrKl`].
///
/// # Errors
/// [`Error::Parameter`] for λ ≤ 0, c < 0 or k < 1; input errors as [`LdrKl`].
///
/// # References
/// Zhu, Ying, Yang (2023), ICML, arXiv:2112.14869 (docs/papers.md key `zhu2023label`).
#[derive(Clone, Debug, PartialEq)]
pub struct LdrKlTopK {
    /// k ≥ 1. Default 5.
    pub k: usize,
    /// λ > 0. Default 10.
    pub lambda: f64,
    /// Margin c ≥ 0. Default 0.1.
    pub margin: f64,
    /// Default [`ScoreNorm::SoftplusMean`].
    pub score_norm: ScoreNorm,
    /// Default [`Reduction::Mean`].
    pub reduction: Reduction,
}

impl Default for LdrKlTopK {
    fn default() -> Self {
        Self { k: 5, lambda: 10.0, margin: 0.1, score_norm: ScoreNorm::SoftplusMean, reduction: Reduction::Mean }
    }
}

impl LdrKlTopK {
    /// The defaults (k = 5, λ = 10, c = 0.1, softplus-mean scores).
    pub fn new() -> Self {
        Self::default()
    }
    /// k ≥ 1 (default 5).
    pub fn k(mut self, k: usize) -> Self {
        self.k = k;
        self
    }
    /// λ > 0 (default 10).
    pub fn lambda(mut self, lambda: f64) -> Self {
        self.lambda = lambda;
        self
    }
    /// Margin c ≥ 0 (default 0.1).
    pub fn margin(mut self, c: f64) -> Self {
        self.margin = c;
        self
    }
    /// Score normalisation (default softplus-mean).
    pub fn score_norm(mut self, n: ScoreNorm) -> Self {
        self.score_norm = n;
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
    /// [`Error::Parameter`] naming `k`, `lambda` or `margin`.
    pub fn check(&self) -> Result<()> {
        if self.k == 0 {
            return Err(Error::Parameter { name: "k", value: 0.0, reason: "must be an integer ≥ 1" });
        }
        LdrKl { lambda: self.lambda, margin: self.margin, score_norm: self.score_norm, reduction: self.reduction }
            .check()
    }
}

impl<F: Real> ClassLoss<F> for LdrKlTopK {
    fn compute(
        &self,
        logits: ArrayView2<'_, F>,
        targets: Targets<'_, F>,
        weights: Option<ArrayView1<'_, F>>,
        grad: bool,
    ) -> Result<LossOutput<F, Ix2>> {
        self.check()?;
        reject_soft(&targets, "ldr-kl-top-k")?;
        let kernel =
            LdrKernel { lambda: F::c(self.lambda), margin: F::c(self.margin), norm: self.score_norm, top_k: self.k };
        driver::run(&kernel, Setup { ignore_index: None, reduction: self.reduction }, logits, targets, weights, grad)
    }
}

/// The per-sample λ table of [`AldrKl`], indexed by sample id (0..N over the whole data set).
#[derive(Clone, Debug, PartialEq)]
pub struct AldrKlState {
    /// λᵢ of each sample, initialised to λ₀.
    pub lambdas: Vec<f64>,
}

impl AldrKlState {
    /// A table of `n_samples` entries, all λ₀ (what the official code does at construction).
    pub fn new(n_samples: usize, lambda0: f64) -> Self {
        Self { lambdas: vec![lambda0; n_samples] }
    }
}

/// ALDR-KL: LDR-KL with a per-sample λ adapted from how peaked the sample's (normalised) scores are.
///
/// Per batch, for each row i with sample id idᵢ and the stored `λᵢ⁰ = Λ[idᵢ]`:
/// ```text
/// π = softmax(s/λᵢ⁰) + 10⁻⁵, renormalised;   kl = Σ_k π_k·log(K·π_k) ∈ [0, log K]
/// λᵢ = λ₀·(1 − kl/(α·log K)) ∈ [λ₀·(1 − 1/α), λ₀];   Λ[idᵢ] ← λᵢ      (λᵢ is a constant for the gradient)
/// ℓᵢ = λᵢ·log((1/K)·Σ_k exp(a_k/λᵢ)) − (α·log K/(2λ₀))·(λᵢ − λ₀)²,   a_k = c·1[k≠y] + s_k − s_y
/// Mean = Σᵢ sᵢ·ℓᵢ / Σᵢ sᵢ
/// ```
/// This is the official `ALDRLoss_V1` update: π uses the stored (previous) λ, a one-step-lagged fixed point of the
/// paper's min over λ. With K = 1, λᵢ = λ₀. When a batch holds an id twice, every row reads the table as it was
/// before the batch and the later row's update wins.
///
/// [`ClassLoss::compute`] is the stateless form (the registry's `aldr-kl`): every row starts from λᵢ⁰ = λ₀, as on
/// a sample's first visit. [`AldrKl::compute_with_state`] reads and updates an [`AldrKlState`].
///
/// # Parameters
/// * `lambda`: λ₀ > 0, default 10 (the official README/demo).
/// * `alpha`: α > 1, default 2 (the official README/demo; the code comment requires α > 1, which keeps λᵢ > 0).
/// * `margin`: c ≥ 0, default 0.1.
/// * `score_norm`: default `l1-mean` (the official code: s = z/(‖z‖₁/K), softplus first only when enabled, which it
///   is for CIFAR-100 only; choose `softplus-mean` for that).
/// * `reduction`: `Mean` (default), `Sum` or `None`.
///
/// # Shapes
/// `logits` [N, K], hard targets `[N]`, `ids` `[N]` in `0..state.lambdas.len()`, optional `weights` `[N]`;
/// gradient [N, K].
///
/// # Gradient
/// [`AldrKl::compute_with_state`]: the official code's, `∂ℓ/∂s = p* − e_y` with p* = softmax(a/λᵢ) (λᵢ and the
/// extra term treated as constants), then through the score normalisation as [`LdrKl`]. The stateless
/// [`ClassLoss::compute`] returns the derivative of its value instead: the same term plus (∂ℓ/∂λᵢ)·(∂λᵢ/∂s) through
/// the KL of π (so it passes finite-difference checks; the two agree when λᵢ is at its fixed point).
///
/// # Errors
/// [`Error::Parameter`] for λ₀ ≤ 0, α ≤ 1 or c < 0; [`Error::Shape`] for `ids` of the wrong length;
/// [`Error::LabelOutOfRange`] (argument `ids`) for an id outside the table; input errors as [`LdrKl`].
///
/// # References
/// Zhu, Ying, Yang (2023), ICML, arXiv:2112.14869 (docs/papers.md key `zhu2023label`); update, bounds and defaults
/// from the authors' released `ALDRLoss_V1`.
#[derive(Clone, Debug, PartialEq)]
pub struct AldrKl {
    /// λ₀ > 0. Default 10.
    pub lambda: f64,
    /// α > 1. Default 2.
    pub alpha: f64,
    /// Margin c ≥ 0. Default 0.1.
    pub margin: f64,
    /// Default [`ScoreNorm::L1Mean`].
    pub score_norm: ScoreNorm,
    /// Default [`Reduction::Mean`].
    pub reduction: Reduction,
}

impl Default for AldrKl {
    fn default() -> Self {
        Self { lambda: 10.0, alpha: 2.0, margin: 0.1, score_norm: ScoreNorm::L1Mean, reduction: Reduction::Mean }
    }
}

impl AldrKl {
    /// The defaults (λ₀ = 10, α = 2, c = 0.1, l1-mean scores).
    pub fn new() -> Self {
        Self::default()
    }
    /// λ₀ > 0 (default 10).
    pub fn lambda(mut self, lambda: f64) -> Self {
        self.lambda = lambda;
        self
    }
    /// α > 1 (default 2).
    pub fn alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
    }
    /// Margin c ≥ 0 (default 0.1).
    pub fn margin(mut self, c: f64) -> Self {
        self.margin = c;
        self
    }
    /// Score normalisation (default l1-mean).
    pub fn score_norm(mut self, n: ScoreNorm) -> Self {
        self.score_norm = n;
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
    /// [`Error::Parameter`] naming `lambda`, `alpha` or `margin`.
    pub fn check(&self) -> Result<()> {
        check::greater_than("alpha", self.alpha, 1.0)?;
        LdrKl { lambda: self.lambda, margin: self.margin, score_norm: self.score_norm, reduction: self.reduction }
            .check()
    }

    /// ALDR-KL with the per-sample λ table `state`, updated in place for the ids of this batch.
    ///
    /// # Errors
    /// See [`AldrKl`].
    pub fn compute_with_state<F: Real>(
        &self,
        state: &mut AldrKlState,
        logits: ArrayView2<'_, F>,
        targets: Targets<'_, F>,
        ids: ArrayView1<'_, i64>,
        weights: Option<ArrayView1<'_, F>>,
        grad: bool,
    ) -> Result<LossOutput<F, Ix2>> {
        self.check()?;
        let n = logits.nrows();
        check::shape("ids", ids.shape(), &[Some(n)])?;
        check::labels("ids", ids, state.lambdas.len(), None)?;
        let old: Vec<F> = ids.iter().map(|&id| F::c(state.lambdas[id as usize])).collect();
        let (out, new) = self.run(logits, targets, weights, grad, Some(&old))?;
        for (&id, l) in ids.iter().zip(new) {
            state.lambdas[id as usize] = l.f64();
        }
        Ok(out)
    }

    fn run<F: Real>(
        &self,
        logits: ArrayView2<'_, F>,
        targets: Targets<'_, F>,
        weights: Option<ArrayView1<'_, F>>,
        grad: bool,
        old: Option<&[F]>,
    ) -> Result<(LossOutput<F, Ix2>, Vec<F>)> {
        let n = logits.nrows();
        let kernel = AldrKernel {
            lambda0: F::c(self.lambda),
            alpha: F::c(self.alpha),
            margin: F::c(self.margin),
            norm: self.score_norm,
            old,
            exact: old.is_none(),
            new: (0..n).map(|_| std::sync::atomic::AtomicU64::new(0)).collect(),
        };
        let out = indexed::run(&kernel, "aldr-kl", self.reduction, logits, targets, weights, grad)?;
        let new =
            kernel.new.iter().map(|v| F::c(f64::from_bits(v.load(std::sync::atomic::Ordering::Relaxed)))).collect();
        Ok((out, new))
    }
}

struct AldrKernel<'a, F> {
    lambda0: F,
    alpha: F,
    margin: F,
    norm: ScoreNorm,
    old: Option<&'a [F]>,
    /// Differentiate through λᵢ (the stateless form) instead of treating it as a constant (the official code).
    exact: bool,
    /// The updated λᵢ of each row (f64 bits; each row writes only its own slot).
    new: Vec<std::sync::atomic::AtomicU64>,
}

impl<F: Real> AldrKernel<'_, F> {
    /// λᵢ from the scores and the stored λᵢ⁰ (official `ALDRLoss_V1` update).
    fn adapt(&self, s: &[F], lambda_old: F) -> F {
        let k = s.len();
        if k < 2 {
            return self.lambda0;
        }
        let kf = F::from_usize_lossy(k);
        let (mx, _) = rowmath::max_and_finite(s);
        let inv = F::one() / lambda_old;
        let total = rowmath::exp_sum(s, mx, inv, None);
        let floor = F::c(1e-5);
        let renorm = F::one() + kf * floor;
        let mut kl = F::zero();
        for &v in s {
            let pi = (((v - mx) * inv).fast_exp() / total + floor) / renorm;
            kl += pi * (kf * pi).ln();
        }
        let ln_k = kf.ln();
        self.lambda0 - self.lambda0 * kl / (self.alpha * ln_k)
    }
}

impl<F: Real> AldrKernel<'_, F> {
    /// Adds (∂ℓ/∂λᵢ)·(∂λᵢ/∂s) to g = ∂ℓ/∂s = p* − e_y, so that the stateless form's gradient is the derivative of
    /// its value. `g` holds p* − e_y on entry, `loss` is the LDR-KL part G(λᵢ).
    fn add_lambda_path(&self, s: &[F], y: usize, lambda_old: F, lambda: F, loss: F, g: &mut [F]) {
        let k = s.len();
        let kf = F::from_usize_lossy(k);
        let ln_k = kf.ln();
        // Σ_j p*_j·a_j with p* = g + e_y and a_j = c·1[j≠y] + s_j − s_y (a_y = 0).
        let pa: F = (0..k).filter(|&j| j != y).map(|j| g[j] * (self.margin + s[j] - s[y])).sum();
        // dG/dλ = (G − Σ p*·a)/λ (G = λ·log-mean-exp(a/λ)); d extra/dλ = −(α·log K/λ₀)·(λ − λ₀).
        let dl = (loss - pa) / lambda - self.alpha * ln_k / self.lambda0 * (lambda - self.lambda0);
        // λ = λ₀ − λ₀·kl/(α·log K):  ∂λ/∂s = −(λ₀/(α·log K))·∂kl/∂s.
        let coef = -dl * self.lambda0 / (self.alpha * ln_k);
        // kl = Σ π·log(Kπ), π = (q + ε)/(1 + Kε), q = softmax(s/λ_old):
        // ∂kl/∂s_j = q_j·(h_j − Σ_k q_k·h_k)/(λ_old·(1 + Kε)), h = log(Kπ) (the +1 of d(π log π) cancels).
        let (mx, _) = rowmath::max_and_finite(s);
        let inv = F::one() / lambda_old;
        let total = rowmath::exp_sum(s, mx, inv, None);
        let floor = F::c(1e-5);
        let renorm = F::one() + kf * floor;
        let q: Vec<F> = s.iter().map(|&v| ((v - mx) * inv).fast_exp() / total).collect();
        let h: Vec<F> = q.iter().map(|&qj| (kf * (qj + floor) / renorm).ln()).collect();
        let qh: F = q.iter().zip(&h).map(|(&a, &b)| a * b).sum();
        let f = coef / (lambda_old * renorm);
        for ((gj, &qj), &hj) in g.iter_mut().zip(&q).zip(&h) {
            *gj += f * qj * (hj - qh);
        }
    }
}

impl<F: Real> IndexedKernel<F> for AldrKernel<'_, F> {
    fn row(&self, i: usize, z: &[F], _max: F, y: usize, scale: F, grad: Option<&mut [F]>) -> F {
        let mut s = vec![F::zero(); z.len()];
        let d = normalize(self.norm, z, &mut s);
        let lambda_old = self.old.map_or(self.lambda0, |o| o[i]);
        let lambda = self.adapt(&s, lambda_old);
        self.new[i].store(lambda.f64().to_bits(), std::sync::atomic::Ordering::Relaxed);
        let ln_k = F::from_usize_lossy(z.len()).ln();
        let dl = lambda - self.lambda0;
        let extra = -F::c(0.5) * self.alpha * ln_k / self.lambda0 * dl * dl;
        let loss = match grad {
            Some(g) => {
                let loss = ldr_row(&s, y, lambda, self.margin, Some(&mut *g));
                if self.exact && z.len() >= 2 {
                    self.add_lambda_path(&s, y, lambda_old, lambda, loss, g);
                }
                normalize_backward(self.norm, z, &s, d, scale, g);
                loss
            }
            None => ldr_row(&s, y, lambda, self.margin, None),
        };
        loss + extra
    }
}

impl<F: Real> ClassLoss<F> for AldrKl {
    fn compute(
        &self,
        logits: ArrayView2<'_, F>,
        targets: Targets<'_, F>,
        weights: Option<ArrayView1<'_, F>>,
        grad: bool,
    ) -> Result<LossOutput<F, Ix2>> {
        self.check()?;
        Ok(self.run(logits, targets, weights, grad, None)?.0)
    }
}

const LAMBDA_HELP: &str = "λ: the KL regularisation strength (official default 10)";
const MARGIN_HELP: &str = "c: margin added to every wrong class (official default 0.1)";

const LDR_PARAMS: &[ParamSpec] = &[
    param("lambda", "10", Range::Positive, LAMBDA_HELP),
    param("margin", "0.1", Range::NonNegative, MARGIN_HELP),
    param("score_norm", "softplus-mean", Range::Choice(NORMS), "how logits become scores (official: softplus-mean)"),
];

fn build_ldr(p: &Params) -> Result<BuiltLoss> {
    let cfg = LdrKl {
        lambda: p.f64("lambda")?,
        margin: p.f64("margin")?,
        score_norm: ScoreNorm::parse(p.text("score_norm")?)?,
        reduction: p.reduction(),
    };
    cfg.check()?;
    Ok(BuiltLoss { class: Some(Box::new(cfg)), binary: None })
}

const REFERENCE: &str = "Zhu, Ying, Yang (2023), Label Distributionally Robust Losses for Multi-class \
                         Classification: Consistency, Robustness and Adaptivity, ICML, arXiv:2112.14869";

/// Registry entry of LDR-KL.
pub(crate) const LDR_ENTRY: LossEntry = LossEntry {
    name: "ldr-kl",
    family: Family::Classification,
    summary: "label-distributionally robust loss with KL regularisation: λ·log-mean-exp of margin-augmented gaps",
    paper: "zhu2023label",
    reference: REFERENCE,
    params: LDR_PARAMS,
    build: build_ldr,
};

const TOP_K_PARAMS: &[ParamSpec] = &[
    param("k", "5", Range::IntAtLeast(1), "k: cap 1/k on the adversarial label distribution (k > K acts as K)"),
    param("lambda", "10", Range::Positive, LAMBDA_HELP),
    param("margin", "0.1", Range::NonNegative, MARGIN_HELP),
    param("score_norm", "softplus-mean", Range::Choice(NORMS), "how logits become scores (official: softplus-mean)"),
];

fn build_top_k(p: &Params) -> Result<BuiltLoss> {
    let k = p.f64("k")?;
    let cfg = LdrKlTopK {
        k: if k.is_finite() && k >= 1.0 && k.fract() == 0.0 && k <= u32::MAX as f64 {
            k as usize
        } else {
            return Err(Error::Parameter { name: "k", value: k, reason: "must be an integer ≥ 1" });
        },
        lambda: p.f64("lambda")?,
        margin: p.f64("margin")?,
        score_norm: ScoreNorm::parse(p.text("score_norm")?)?,
        reduction: p.reduction(),
    };
    cfg.check()?;
    Ok(BuiltLoss { class: Some(Box::new(cfg)), binary: None })
}

/// Registry entry of the top-k LDR-KL loss.
pub(crate) const TOP_K_ENTRY: LossEntry = LossEntry {
    name: "ldr-kl-top-k",
    family: Family::Classification,
    summary: "top-k LDR-KL: the adversarial label distribution capped at 1/k (top-k consistent)",
    paper: "zhu2023label",
    reference: REFERENCE,
    params: TOP_K_PARAMS,
    build: build_top_k,
};

const ALDR_PARAMS: &[ParamSpec] = &[
    param("lambda", "10", Range::Positive, "λ₀: the reference (largest) λ (official default 10)"),
    param("alpha", "2", Range::Positive, "α > 1: how far λ may adapt down, to λ₀(1 − 1/α) (official default 2)"),
    param("margin", "0.1", Range::NonNegative, MARGIN_HELP),
    param("score_norm", "l1-mean", Range::Choice(NORMS), "how logits become scores (official: l1-mean)"),
];

fn build_aldr(p: &Params) -> Result<BuiltLoss> {
    let cfg = AldrKl {
        lambda: p.f64("lambda")?,
        alpha: p.f64("alpha")?,
        margin: p.f64("margin")?,
        score_norm: ScoreNorm::parse(p.text("score_norm")?)?,
        reduction: p.reduction(),
    };
    cfg.check()?;
    Ok(BuiltLoss { class: Some(Box::new(cfg)), binary: None })
}

/// Registry entry of ALDR-KL (stateless form: every sample at its first visit).
pub(crate) const ALDR_ENTRY: LossEntry = LossEntry {
    name: "aldr-kl",
    family: Family::Classification,
    summary: "adaptive LDR-KL: per-sample λ from the peakedness of the scores (stateless form: first visit)",
    paper: "zhu2023label",
    reference: REFERENCE,
    params: ALDR_PARAMS,
    build: build_aldr,
};

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn spec_oracles() {
        let z = array![[0.0_f64, 0.0, 0.0]];
        let zero = LdrKl::new().margin(0.0).score_norm(ScoreNorm::None);
        for lambda in [0.1, 1.0, 10.0] {
            let v = zero.clone().lambda(lambda).compute(z.view(), Targets::hard(&[0]), None, false).unwrap().value;
            assert!(v.abs() < 1e-14);
        }
        // k = 1 is LDR-KL.
        let z = array![[0.3_f64, -1.0, 2.0, 0.5]];
        let a = LdrKl::new().lambda(0.7).compute(z.view(), Targets::hard(&[1]), None, true).unwrap();
        let b = LdrKlTopK::new().k(1).lambda(0.7).compute(z.view(), Targets::hard(&[1]), None, true).unwrap();
        assert!((a.value - b.value).abs() < 1e-12);
        for (x, y) in a.grad.unwrap().iter().zip(b.grad.unwrap().iter()) {
            assert!((x - y).abs() < 1e-12);
        }
    }

    #[test]
    fn top_k_at_k_equals_classes_is_the_mean_margin() {
        let z = array![[0.3_f64, -1.0, 2.0]];
        let out = LdrKlTopK::new().k(3).score_norm(ScoreNorm::None).margin(0.2);
        let v = out.compute(z.view(), Targets::hard(&[0]), None, false).unwrap().value;
        let want = ((0.2 - 1.0 - 0.3) + (0.2 + 2.0 - 0.3)) / 3.0;
        assert!((v - want).abs() < 1e-12, "{v} {want}");
    }

    #[test]
    fn aldr_bounds_and_state() {
        let z = array![[30.0_f64, -1.0, 0.0], [0.0, 0.0, 0.0]];
        let cfg = AldrKl::new().score_norm(ScoreNorm::None).lambda(1.0);
        let mut st = AldrKlState::new(5, 1.0);
        let ids = array![3_i64, 0];
        cfg.compute_with_state(&mut st, z.view(), Targets::hard(&[0, 1]), ids.view(), None, true).unwrap();
        // Peaked row: λ near λ₀(1 − 1/α) = 0.5; uniform row: λ = λ₀ up to the 1e-5 floor.
        assert!(st.lambdas[3] > 0.5 && st.lambdas[3] < 0.51, "{}", st.lambdas[3]);
        assert!((st.lambdas[0] - 1.0).abs() < 1e-9);
        assert_eq!(st.lambdas[1], 1.0);
        let bad = array![5_i64, 0];
        let r = cfg.compute_with_state(&mut st, z.view(), Targets::hard(&[0, 1]), bad.view(), None, false);
        assert!(matches!(r, Err(Error::LabelOutOfRange { arg: "ids", .. })));
    }

    #[test]
    fn bad_parameters_are_named() {
        assert!(matches!(LdrKl::new().lambda(0.0).check(), Err(Error::Parameter { name: "lambda", .. })));
        assert!(matches!(LdrKl::new().margin(-1.0).check(), Err(Error::Parameter { name: "margin", .. })));
        assert!(matches!(AldrKl::new().alpha(1.0).check(), Err(Error::Parameter { name: "alpha", .. })));
        assert!(matches!(LdrKlTopK::new().k(0).check(), Err(Error::Parameter { name: "k", .. })));
    }
}
