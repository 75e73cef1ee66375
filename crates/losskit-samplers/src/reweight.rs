//! Dynamic loss-based sample reweighting (Sow et al. 2025): per-sample losses in, per-sample weights out.

use std::fmt;
use std::str::FromStr;

use ndarray::{Array1, ArrayView1};

use crate::{Error, Result};

/// Smallest loss range used as the normaliser (the reference code's clamp), so equal losses give ℓ̂ = 0.
const RANGE_FLOOR: f64 = 1e-6;

/// The score a [`LossReweight`] strategy gives a normalised loss ℓ̂ ∈ [−δ, δ].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReweightStrategy {
    /// `f = min(ℓ̂ + δ, δ)`: down-weights low-loss samples, caps the high-loss ones (the paper's recommendation).
    #[default]
    LinUpper,
    /// `f = 1 − ℓ̂²/δ²`: favours medium losses.
    Quadratic,
    /// `f = |ℓ̂|`: up-weights both extremes.
    Extremes,
    /// `f = ℓ̂` (named "uniform" in the dataflex reimplementation; it is linear in the loss, not uniform).
    Linear,
    /// `w = 1/B` whatever the losses (true uniform weighting, the baseline).
    Uniform,
}

impl ReweightStrategy {
    /// The registry / command-line name (`lin-upper`, `quadratic`, `extremes`, `linear`, `uniform`).
    pub fn name(self) -> &'static str {
        match self {
            ReweightStrategy::LinUpper => "lin-upper",
            ReweightStrategy::Quadratic => "quadratic",
            ReweightStrategy::Extremes => "extremes",
            ReweightStrategy::Linear => "linear",
            ReweightStrategy::Uniform => "uniform",
        }
    }

    /// The score `f(ℓ̂)` for a normalised loss `l` and half-width `delta`.
    fn score(self, l: f64, delta: f64) -> f64 {
        match self {
            ReweightStrategy::LinUpper => (l + delta).min(delta),
            ReweightStrategy::Quadratic => 1.0 - l * l / (delta * delta),
            ReweightStrategy::Extremes => l.abs(),
            ReweightStrategy::Linear => l,
            ReweightStrategy::Uniform => 0.0,
        }
    }
}

impl fmt::Display for ReweightStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ReweightStrategy {
    type Err = Error;

    /// Parses a name; `linupper`, `lin_upper` and any letter case are accepted too.
    fn from_str(s: &str) -> Result<Self> {
        let key: String = s.trim().chars().filter(|c| !matches!(c, '-' | '_')).collect::<String>().to_lowercase();
        match key.as_str() {
            "linupper" => Ok(ReweightStrategy::LinUpper),
            "quadratic" => Ok(ReweightStrategy::Quadratic),
            "extremes" => Ok(ReweightStrategy::Extremes),
            "linear" => Ok(ReweightStrategy::Linear),
            "uniform" => Ok(ReweightStrategy::Uniform),
            _ => Err(Error::ParameterText {
                name: "strategy".into(),
                value: s.into(),
                reason: "expected lin-upper, quadratic, extremes, linear or uniform".into(),
            }),
        }
    }
}

/// Dynamic loss-based sample reweighting: turns a batch's per-sample losses into weights that sum to 1.
///
/// ```text
/// ℓ̂ᵢ = δ · (2ℓᵢ − ℓ_max − ℓ_min) / max(ℓ_max − ℓ_min, 1e-6)      (min–max normalisation to [−δ, δ])
/// fᵢ = f(ℓ̂ᵢ)                                                       (the strategy's score)
/// wᵢ = exp((fᵢ − max f)/r) / Σⱼ exp((fⱼ − max f)/r)                (softmax with temperature r)
/// ```
/// The weighted objective is `L = Σᵢ wᵢ ℓᵢ`; the weights are constants (no gradient flows through them), so
/// `∂L/∂θ = Σᵢ wᵢ ∂ℓᵢ/∂θ`. For data-parallel training gather the losses of the global batch first.
///
/// # Parameters
/// * `strategy`: [`ReweightStrategy`], default `LinUpper` (the paper's recommendation).
/// * `temperature`: r > 0, default 1 (the reimplementation's and the paper's figure); larger r gives flatter weights.
/// * `delta`: δ > 0, default 1, the half-width of the normalised range.
///
/// # Shapes
/// `losses` `[B]`, weights `[B]`.
///
/// # Errors
/// [`Error::Parameter`] for r ≤ 0 or δ ≤ 0 (or non-finite); [`Error::Empty`] for an empty batch;
/// [`Error::NonFinite`] for a NaN or infinite loss.
///
/// # Examples
/// ```
/// use losskit_samplers::{ReweightStrategy, reweight};
/// let w = reweight(ndarray::array![0.0, 1.0, 2.0].view(), ReweightStrategy::LinUpper, 1.0)?;
/// // ℓ̂ = [−1, 0, 1] → f = [0, 1, 1]: the loss at ℓ_max weighs e times the one at ℓ_min.
/// assert!((w[2] / w[0] - std::f64::consts::E).abs() < 1e-12 && (w[1] - w[2]).abs() < 1e-15);
/// # Ok::<(), losskit_samplers::Error>(())
/// ```
///
/// # References
/// Sow, Lin, Liang, Chi (2025), *Dynamic Loss-Based Sample Reweighting for Improved Large Language Model
/// Pretraining*, ICLR, arXiv:2502.06733 (formulas as in the dataflex `LossWeighter`, which mirrors the reference
/// code; spec `classification-losses.md` §12).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossReweight {
    /// The score function. Default `LinUpper`.
    pub strategy: ReweightStrategy,
    /// Softmax temperature r > 0. Default 1.
    pub temperature: f64,
    /// Half-width δ > 0 of the normalised loss range. Default 1.
    pub delta: f64,
}

impl Default for LossReweight {
    fn default() -> Self {
        LossReweight { strategy: ReweightStrategy::LinUpper, temperature: 1.0, delta: 1.0 }
    }
}

impl LossReweight {
    /// The defaults: LinUpper, r = 1, δ = 1.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the strategy (default `LinUpper`).
    pub fn strategy(mut self, strategy: ReweightStrategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Sets the temperature r (default 1).
    pub fn temperature(mut self, temperature: f64) -> Self {
        self.temperature = temperature;
        self
    }

    /// Sets δ (default 1).
    pub fn delta(mut self, delta: f64) -> Self {
        self.delta = delta;
        self
    }

    /// Checks the parameters.
    ///
    /// # Errors
    /// [`Error::Parameter`] for r ≤ 0 or δ ≤ 0 or a non-finite value.
    pub fn check(&self) -> Result<()> {
        losskit_tensor::check::greater_than("temperature", self.temperature, 0.0)?;
        losskit_tensor::check::greater_than("delta", self.delta, 0.0)
    }

    /// The normalised losses ℓ̂ ∈ [−δ, δ].
    ///
    /// # Errors
    /// As [`LossReweight::weights`].
    pub fn normalized(&self, losses: ArrayView1<'_, f64>) -> Result<Array1<f64>> {
        self.check()?;
        losskit_tensor::check::non_empty("losses", losses.len())?;
        losskit_tensor::check::finite("losses", &losses)?;
        let (lo, hi) = losses.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        // Numerator and denominator both halved, (2ℓ − ℓ_max − ℓ_min)/2 as (ℓ/2 − ℓ_max/2) + (ℓ/2 − ℓ_min/2) (terms of
        // opposite signs): the same ratio, with no overflow for losses of opposite signs near f64::MAX.
        let half_range = (0.5 * hi - 0.5 * lo).max(0.5 * RANGE_FLOOR);
        let delta = self.delta;
        Ok(losses.mapv(|l| delta * (((0.5 * l - 0.5 * hi) + (0.5 * l - 0.5 * lo)) / half_range)))
    }

    /// The weights `w` `[B]` (non-negative, summing to 1).
    ///
    /// # Errors
    /// [`Error::Parameter`] for r ≤ 0 or δ ≤ 0; [`Error::Empty`] for no losses; [`Error::NonFinite`] for a NaN or
    /// infinite loss.
    pub fn weights(&self, losses: ArrayView1<'_, f64>) -> Result<Array1<f64>> {
        let normalized = self.normalized(losses)?;
        let scores = normalized.mapv(|l| self.strategy.score(l, self.delta));
        let max = scores.fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        let r = self.temperature;
        let mut w = scores.mapv(|f| ((f - max) / r).exp());
        let sum = w.sum(); // ≥ 1: the maximum contributes exp(0)
        w /= sum;
        Ok(w)
    }

    /// The weights rescaled to mean 1, `B·wᵢ` `[B]`, for a loss that takes per-sample weights.
    ///
    /// ```text
    /// eᵢ = exp((fᵢ − max f)/r)        w̃ᵢ = eᵢ / (Σⱼ eⱼ / B)  = B·wᵢ
    /// ```
    /// With a weighted-mean reduction (`Σ w̃ᵢℓᵢ / Σ w̃ᵢ`) the objective is the paper's `Σ wᵢℓᵢ`; with a sum reduction it
    /// is `B · Σ wᵢℓᵢ`, on the scale of the unweighted sum. The uniform strategy (and equal losses) gives exactly 1.0
    /// for every sample (`eᵢ = 1`, `Σ eⱼ = B` exactly), so a trainer using these weights reproduces the unweighted
    /// objective bit for bit.
    ///
    /// # Errors
    /// As [`LossReweight::weights`].
    pub fn batch_weights(&self, losses: ArrayView1<'_, f64>) -> Result<Array1<f64>> {
        let normalized = self.normalized(losses)?;
        let scores = normalized.mapv(|l| self.strategy.score(l, self.delta));
        let max = scores.fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        let r = self.temperature;
        let mut w = scores.mapv(|f| ((f - max) / r).exp());
        let mean = w.sum() / w.len() as f64; // ≥ 1/B: the maximum contributes exp(0)
        w /= mean;
        Ok(w)
    }
}

/// The weights of [`LossReweight`] with δ = 1: `softmax(f(ℓ̂)/r)` for the given strategy and temperature `r`.
///
/// This is the hook for a trainer: compute per-sample losses, call `reweight`, and use `Σ wᵢ ℓᵢ` (weights detached)
/// as the batch objective, i.e. per-sample weights `wᵢ` with a sum reduction.
///
/// # Errors
/// As [`LossReweight::weights`].
pub fn reweight(losses: ArrayView1<'_, f64>, strategy: ReweightStrategy, r: f64) -> Result<Array1<f64>> {
    LossReweight::new().strategy(strategy).temperature(r).weights(losses)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn equal_losses_give_uniform_weights() {
        for s in [
            ReweightStrategy::LinUpper,
            ReweightStrategy::Quadratic,
            ReweightStrategy::Extremes,
            ReweightStrategy::Linear,
            ReweightStrategy::Uniform,
        ] {
            let w = reweight(array![3.0, 3.0, 3.0, 3.0].view(), s, 0.5).unwrap();
            for v in w {
                assert!((v - 0.25).abs() < 1e-15, "{s}: {v}");
            }
        }
    }

    #[test]
    fn lin_upper_oracle_from_the_spec() {
        // ℓ̂ = [−1, −0.5, 0.5, 1] → f = [0, 0.5, 1, 1]; top half share one weight, ℓ_max / ℓ_min = e.
        let w = reweight(array![1.0, 2.0, 4.0, 5.0].view(), ReweightStrategy::LinUpper, 1.0).unwrap();
        let z = 1.0 + 0.5_f64.exp() + 2.0 * 1.0_f64.exp();
        let want = [1.0 / z, 0.5_f64.exp() / z, 1.0_f64.exp() / z, 1.0_f64.exp() / z];
        for (g, w) in w.iter().zip(want) {
            assert!((g - w).abs() < 1e-15, "{g} vs {w}");
        }
    }

    #[test]
    fn temperature_flattens_and_uniform_ignores_losses() {
        let l = array![0.1, 0.7, 3.0, 0.2];
        let sharp = reweight(l.view(), ReweightStrategy::Extremes, 0.1).unwrap();
        let flat = reweight(l.view(), ReweightStrategy::Extremes, 100.0).unwrap();
        let spread = |w: &Array1<f64>| w.fold(0.0_f64, |m, &v| m.max(v)) - w.fold(1.0_f64, |m, &v| m.min(v));
        assert!(spread(&flat) < spread(&sharp));
        assert!(flat.iter().all(|v| (v - 0.25).abs() < 1e-2));
        let u = reweight(l.view(), ReweightStrategy::Uniform, 1.0).unwrap();
        assert!(u.iter().all(|v| (v - 0.25).abs() < 1e-15));
    }

    #[test]
    fn batch_weights_are_b_times_the_weights_and_exactly_one_when_uniform() {
        let l = array![0.3, 2.0, 0.9, 0.1, 5.0];
        for s in [ReweightStrategy::LinUpper, ReweightStrategy::Quadratic, ReweightStrategy::Extremes] {
            let rw = LossReweight::new().strategy(s).temperature(0.7);
            let w = rw.weights(l.view()).unwrap();
            let b = rw.batch_weights(l.view()).unwrap();
            for (wi, bi) in w.iter().zip(&b) {
                assert!((5.0 * wi - bi).abs() < 1e-14, "{s}: {wi} {bi}");
            }
        }
        let u = LossReweight::new().strategy(ReweightStrategy::Uniform).batch_weights(l.view()).unwrap();
        assert!(u.iter().all(|&v| v == 1.0));
        let same = LossReweight::new().batch_weights(Array1::from_elem(7, 0.4).view()).unwrap();
        assert!(same.iter().all(|&v| v == 1.0));
    }

    #[test]
    fn extreme_losses_stay_finite() {
        let w = reweight(array![-1e308, 1e308, 0.0].view(), ReweightStrategy::Quadratic, 1e-3).unwrap();
        assert!(w.iter().all(|v| v.is_finite()));
        assert!((w.sum() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn bad_input_is_rejected() {
        let l = array![1.0, 2.0];
        assert!(matches!(
            reweight(l.view(), ReweightStrategy::LinUpper, 0.0),
            Err(Error::Parameter { name: "temperature", .. })
        ));
        assert!(matches!(
            LossReweight::new().delta(-1.0).weights(l.view()),
            Err(Error::Parameter { name: "delta", .. })
        ));
        assert!(matches!(
            reweight(array![1.0, f64::NAN].view(), ReweightStrategy::LinUpper, 1.0),
            Err(Error::NonFinite { arg: "losses", index: 1, .. })
        ));
        let empty: Array1<f64> = array![];
        assert!(matches!(reweight(empty.view(), ReweightStrategy::LinUpper, 1.0), Err(Error::Empty { arg: "losses" })));
        assert_eq!("LinUpper".parse::<ReweightStrategy>().unwrap(), ReweightStrategy::LinUpper);
        assert_eq!("lin_upper".parse::<ReweightStrategy>().unwrap(), ReweightStrategy::LinUpper);
        assert!(matches!("cubic".parse::<ReweightStrategy>(), Err(Error::ParameterText { .. })));
    }
}
