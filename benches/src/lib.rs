//! Shared data builders and settings for the criterion benches: every input comes from a named, seeded PRNG, so a
//! bench measures the same numbers on every run and machine.

use std::time::Duration;

use losskit::Real;
use ndarray::{Array1, Array2};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

/// Benchmark shapes of the multiclass losses, (N, C): a vision-sized batch and a language-model vocabulary.
pub const CLASS_SHAPES: &[(usize, usize)] = &[(4096, 1000), (1024, 32000)];

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut Xoshiro256PlusPlus) -> f64 {
    let u1: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Standard normal logits [N, C] and uniform labels `[N]` in `0..C`, from `seed`.
pub fn class_batch<F: Real>(n: usize, c: usize, seed: u64) -> (Array2<F>, Vec<i64>) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let logits = Array2::from_shape_simple_fn((n, c), || F::c(normal(&mut rng)));
    let labels = (0..n).map(|_| rng.random_range(0..c as i64)).collect();
    (logits, labels)
}

/// Normal scores (spread 3) `[N]` and 0/1 targets `[N]`, from `seed`.
pub fn binary_batch<F: Real>(n: usize, seed: u64) -> (Array1<F>, Array1<F>) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let scores = (0..n).map(|_| F::c(3.0 * normal(&mut rng))).collect();
    let targets = (0..n).map(|_| if rng.random_bool(0.5) { F::one() } else { F::zero() }).collect();
    (scores, targets)
}

/// Criterion settings shared by every group: (sample size, warm-up, measurement time). Kept short so that the
/// whole suite runs in minutes on a 2-core machine.
pub fn settings() -> (usize, Duration, Duration) {
    (20, Duration::from_millis(500), Duration::from_secs(3))
}
