//! EnsLoss (Dai 2024): a random calibrated loss derivative drawn per batch.

use ndarray::{Array1, ArrayView1, Ix1};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

use losskit_tensor::{Error, Real, Reduction, Result};

use super::batch;
use crate::core::{BinaryLoss, LossOutput};
use crate::registry::{BuiltLoss, Family, LossEntry, ParamSpec, Params, Range, param};

/// Subtracted from every derivative so that it stays strictly negative (calibration needs φ'(0) < 0), as the
/// official code.
const SHIFT: f64 = 1e-6;

/// EnsLoss: per batch, a random non-increasing convex margin loss, given by its derivative at each sample's rank.
///
/// ```text
/// zᵢ = (2yᵢ − 1)·xᵢ                                        (margins)
/// εₖ ~ N(0, 1), k = 1..B'                                  (B' = N, or N + 1 with `anchor`: a dummy margin 0)
/// dₖ = max(−BC⁻¹_λ(εₖ), −1), sorted ascending               BC⁻¹_λ(ε) = max(1 + λε, 0)^(1/λ), exp(ε) at λ = 0
/// rᵢ = d at the rank of zᵢ among the margins (smallest margin ↦ most negative d)
/// tail:  gᵢ = rᵢ·φ'(zᵢ) − 1e-6,   φ(z) = z (z ≤ 1), 1 + ln z (z > 1)        (the official r/z for z > 1)
/// ℓᵢ = rᵢ·φ(zᵢ) − 1e-6·zᵢ        so that ∂ℓᵢ/∂zᵢ = gᵢ
/// Mean = Σᵢ wᵢℓᵢ / Σᵢ wᵢ     Sum = None = Σᵢ wᵢℓᵢ
/// ```
/// The gradient ∂ℓᵢ/∂xᵢ = gᵢ·(2yᵢ − 1) is the official code's (its `loss = mean(g·z)` with g detached). The official
/// *value* mean(g·z) is a surrogate whose number means nothing and does not match its own gradient on the tail;
/// ours is the integral of the drawn derivative (the rank, hence rᵢ, held fixed), so value and gradient agree and a
/// finite-difference check passes away from ties. Do not compare values across batches: each batch has its own loss.
///
/// **Randomness.** The draws come from `Xoshiro256PlusPlus::seed_from_u64(seed)` and standard normals by
/// Box–Muller, so [`BinaryLoss::compute`] on the config is deterministic: the same seed gives the same derivative
/// sequence on every call. For a fresh loss per batch, as in training, use [`EnsLossState`] (one generator advanced
/// per batch) or vary `seed`. The official code draws per forward call; its unused `period = 10` is not modelled.
///
/// # Parameters
/// * `lam`: Box–Cox λ (any finite number), default 0 (the official `self.lam = 0.0`: d = −exp(N(0, 1))).
/// * `seed`: integer ≥ 0, default 0.
/// * `anchor`: default false (the current `losses.py` draws N values; true reproduces the earlier version that
///   appends a dummy margin 0 to the ranking and draws N + 1).
/// * `tail`: default true (the superlinear tail rᵢ/zᵢ for zᵢ > 1, always on in the official code).
/// * `reduction`: `Mean` (default, the official `.mean()`), `Sum` or `None`.
///
/// # Shapes
/// `scores` `[N]`, `targets` `[N]` in [0, 1] (2y − 1 is used as is for soft targets), optional `weights` `[N]`;
/// gradient `[N]`.
///
/// # Errors
/// [`Error::Parameter`] for a non-finite λ; input errors as the binary driver; [`Error::Input`] when explicit draws
/// have the wrong length.
///
/// # Examples
/// ```
/// use losskit_losses::{BinaryLoss, EnsLoss};
/// let x = ndarray::array![2.0_f64, -1.0, 0.5];
/// let y = ndarray::array![1.0_f64, 1.0, 0.0];
/// let out = EnsLoss::new().seed(7).compute(x.view(), y.view(), None, true)?;
/// assert!(out.grad.is_some_and(|g| g[1] < 0.0 && g[2] > 0.0)); // every margin is pushed up
/// # Ok::<(), losskit_losses::Error>(())
/// ```
///
/// # References
/// Dai (2024), *EnsLoss: Stochastic Calibrated Loss Ensembles for Preventing Overfitting in Classification*,
/// arXiv:2409.00908 (docs/papers.md key `dai2024ensloss`); the class `ensLoss` in `losses.py` of statmlben/ensLoss.
#[derive(Clone, Debug, PartialEq)]
pub struct EnsLoss {
    /// Box–Cox λ. Default 0.
    pub lam: f64,
    /// Seed of the draws. Default 0.
    pub seed: u64,
    /// Append a dummy margin 0 to the ranking. Default false.
    pub anchor: bool,
    /// Superlinear tail for margins above 1. Default true.
    pub tail: bool,
    /// Default [`Reduction::Mean`].
    pub reduction: Reduction,
}

impl Default for EnsLoss {
    fn default() -> Self {
        Self { lam: 0.0, seed: 0, anchor: false, tail: true, reduction: Reduction::Mean }
    }
}

/// A standard normal from two uniforms (Box–Muller, cosine branch).
fn normal(rng: &mut Xoshiro256PlusPlus) -> f64 {
    let u1: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

impl EnsLoss {
    /// The official defaults (λ = 0, N draws, tail on), seed 0.
    pub fn new() -> Self {
        Self::default()
    }
    /// Box–Cox λ (default 0).
    pub fn lam(mut self, lam: f64) -> Self {
        self.lam = lam;
        self
    }
    /// Seed of the draws (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Dummy margin 0 in the ranking (default false).
    pub fn anchor(mut self, on: bool) -> Self {
        self.anchor = on;
        self
    }
    /// Superlinear tail (default true).
    pub fn tail(mut self, on: bool) -> Self {
        self.tail = on;
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
    /// [`Error::Parameter`] naming `lam`.
    pub fn check(&self) -> Result<()> {
        losskit_tensor::check::finite_param("lam", self.lam)
    }

    /// Builds the config from registry parameters (and checks it).
    ///
    /// # Errors
    /// As [`EnsLoss::check`].
    pub fn from_params(p: &Params) -> Result<Self> {
        let cfg = Self {
            lam: p.f64("lam")?,
            seed: p.i64("seed")?.max(0) as u64, // ok: the registry range is an integer ≥ 0
            anchor: p.bool("anchor")?,
            tail: p.bool("tail")?,
            reduction: p.reduction(),
        };
        cfg.check()?;
        Ok(cfg)
    }

    /// Number of normal draws for a batch of `n` (n, or n + 1 with `anchor`).
    pub fn draws_needed(&self, n: usize) -> usize {
        n + usize::from(self.anchor)
    }

    /// The inverse Box–Cox transform BC⁻¹_λ(ε).
    pub fn bc_inverse(&self, e: f64) -> f64 {
        if self.lam == 0.0 { e.exp() } else { (1.0 + self.lam * e).max(0.0).powf(1.0 / self.lam) }
    }

    /// The loss with explicit standard-normal draws (length [`EnsLoss::draws_needed`]), e.g. to replay the draws of
    /// another implementation; [`BinaryLoss::compute`] draws them from `seed`.
    ///
    /// # Errors
    /// As [`BinaryLoss::compute`]; [`Error::Input`] when `draws` has the wrong length or a non-finite entry.
    pub fn compute_with_draws<F: Real>(
        &self,
        scores: ArrayView1<'_, F>,
        targets: ArrayView1<'_, F>,
        weights: Option<ArrayView1<'_, F>>,
        draws: &[f64],
        grad: bool,
    ) -> Result<LossOutput<F, Ix1>> {
        self.check()?;
        let b = batch::binary_inputs(scores, targets, weights)?;
        let n = b.x.len();
        if draws.len() != self.draws_needed(n) || draws.iter().any(|v| !v.is_finite()) {
            return Err(Error::Input {
                what: format!("ensloss: expected {} finite draws, got {}", self.draws_needed(n), draws.len()),
            });
        }
        // Sorted derivatives, most negative first, clipped at −1.
        let mut d: Vec<f64> = draws.iter().map(|&e| -self.bc_inverse(e)).collect();
        d.sort_unstable_by(f64::total_cmp);
        for v in &mut d {
            *v = v.max(-1.0);
        }
        // Rank the margins (the anchor, if any, is the extra index n with margin 0); ties keep input order.
        let z: Vec<f64> = (0..n).map(|i| (2.0 * b.t[i] - 1.0) * b.x[i]).collect();
        let margin = |k: usize| if k < n { z[k] } else { 0.0 };
        let mut order: Vec<usize> = (0..d.len()).collect();
        order.sort_by(|&a, &c| margin(a).total_cmp(&margin(c)).then(a.cmp(&c)));
        let mut r = vec![0.0; d.len()];
        for (rank, &k) in order.iter().enumerate() {
            r[k] = d[rank];
        }
        let mut share = vec![0.0; n];
        let mut g = vec![0.0; n];
        for i in 0..n {
            let zi = z[i];
            let (phi, dphi) = if self.tail && zi > 1.0 { (1.0 + zi.ln(), 1.0 / zi) } else { (zi, 1.0) };
            share[i] = r[i] * phi - SHIFT * zi;
            g[i] = r[i] * dphi - SHIFT;
        }
        let total: f64 = b.w.iter().sum();
        let grad_mean = grad.then(|| {
            // ∂(Σ wℓ / Σ w)/∂xᵢ; with weights summing to 0 `finish` rejects Mean and scales Sum by 0.
            let k = if total > 0.0 { 1.0 / total } else { 0.0 };
            Array1::from_iter((0..n).map(|i| k * b.w[i] * g[i] * (2.0 * b.t[i] - 1.0)))
        });
        batch::finish(self.reduction, &b.w, &share, grad_mean)
    }

    /// The standard-normal draws for a batch of `n` ([`EnsLoss::draws_needed`] of them), taken from `rng`.
    pub fn draw(&self, rng: &mut Xoshiro256PlusPlus, n: usize) -> Vec<f64> {
        (0..self.draws_needed(n)).map(|_| normal(rng)).collect()
    }
}

impl<F: Real> BinaryLoss<F> for EnsLoss {
    fn compute(
        &self,
        scores: ArrayView1<'_, F>,
        targets: ArrayView1<'_, F>,
        weights: Option<ArrayView1<'_, F>>,
        grad: bool,
    ) -> Result<LossOutput<F, Ix1>> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(self.seed);
        let draws = self.draw(&mut rng, scores.len());
        self.compute_with_draws(scores, targets, weights, &draws, grad)
    }
}

/// EnsLoss with a generator advanced per batch: each [`EnsLossState::compute`] draws a new loss derivative, and the
/// sequence is fixed by the seed.
#[derive(Clone, Debug)]
pub struct EnsLossState {
    /// The configuration (its `seed` seeds the generator).
    pub config: EnsLoss,
    rng: Xoshiro256PlusPlus,
}

impl EnsLossState {
    /// A generator seeded with `config.seed`.
    pub fn new(config: EnsLoss) -> Self {
        let rng = Xoshiro256PlusPlus::seed_from_u64(config.seed);
        Self { config, rng }
    }

    /// The next batch's loss.
    ///
    /// # Errors
    /// As [`EnsLoss::compute_with_draws`].
    pub fn compute<F: Real>(
        &mut self,
        scores: ArrayView1<'_, F>,
        targets: ArrayView1<'_, F>,
        weights: Option<ArrayView1<'_, F>>,
        grad: bool,
    ) -> Result<LossOutput<F, Ix1>> {
        let draws = self.config.draw(&mut self.rng, scores.len());
        self.config.compute_with_draws(scores, targets, weights, &draws, grad)
    }
}

const PARAMS: &[ParamSpec] = &[
    param("lam", "0", Range::Any, "Box–Cox λ of the random derivative −BC⁻¹_λ(N(0, 1)) (0: −exp)"),
    param("seed", "0", Range::IntAtLeast(0), "seed of the draws (the same seed gives the same loss)"),
    param("anchor", "false", Range::Bool, "rank against a dummy margin 0 (the earlier official version)"),
    param("tail", "true", Range::Bool, "superlinear tail: derivative r/z for margins z > 1"),
];

fn build(p: &Params) -> Result<BuiltLoss> {
    Ok(BuiltLoss { class: None, binary: Some(Box::new(EnsLoss::from_params(p)?)) })
}

/// Registry entry.
pub(crate) const ENTRY: LossEntry = LossEntry {
    name: "ensloss",
    family: Family::Binary,
    summary: "EnsLoss: a random calibrated convex margin loss per batch (inverse Box–Cox draws assigned by margin \
              rank, superlinear tail), seeded",
    paper: "dai2024ensloss",
    reference: "Dai (2024), EnsLoss: Stochastic Calibrated Loss Ensembles for Preventing Overfitting in \
                Classification, arXiv:2409.00908",
    params: PARAMS,
    build,
};

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn non_finite_lambda_is_rejected() {
        assert!(matches!(EnsLoss::new().lam(f64::NAN).check(), Err(Error::Parameter { name: "lam", .. })));
    }

    #[test]
    fn wrong_number_of_draws_is_an_input_error() {
        let x = array![0.0_f64, 1.0];
        let r = EnsLoss::new().anchor(true).compute_with_draws(x.view(), x.view(), None, &[0.0, 0.0], false);
        assert!(matches!(r, Err(Error::Input { .. })));
    }
}
