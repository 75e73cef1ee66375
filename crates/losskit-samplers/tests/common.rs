//! Shared helpers: fixture loading and seeded random data.

use std::collections::BTreeMap;

use losskit_samplers::{ClassCounts, SamplingStrategy};
use ndarray::{Array1, Array2};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use serde_json::Value;

pub fn fixture(name: &str) -> Value {
    losskit_tensor::gradcheck::load_json(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR")))
}

pub fn pairs(v: &Value) -> Vec<(i64, usize)> {
    v.as_array().unwrap().iter().map(|p| (p[0].as_i64().unwrap(), p[1].as_u64().unwrap() as usize)).collect()
}

pub fn counts_of(v: &Value) -> ClassCounts {
    pairs(v).into_iter().collect()
}

/// Labels with the given counts, shuffled with `seed`, and features [N, d] that identify each row uniquely.
pub fn data(counts: &[(i64, usize)], d: usize, seed: u64) -> (Array2<f64>, Array1<i64>) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut y: Vec<i64> = counts.iter().flat_map(|&(c, n)| std::iter::repeat_n(c, n)).collect();
    for i in (1..y.len()).rev() {
        let j = rng.random_range(0..=i);
        y.swap(i, j);
    }
    let n = y.len();
    let x = Array2::from_shape_fn((n, d), |(i, j)| i as f64 + 0.001 * j as f64 + rng.random_range(-1e-4..1e-4));
    (x, y.into())
}

/// A random label distribution: 2..=6 classes with labels in -5..20 and counts 1..=60.
pub fn random_counts(rng: &mut Xoshiro256PlusPlus) -> Vec<(i64, usize)> {
    let k = rng.random_range(2..=6);
    let mut m = BTreeMap::new();
    while m.len() < k {
        m.insert(rng.random_range(-5..20_i64), rng.random_range(1..=60_usize));
    }
    m.into_iter().collect()
}

/// The string strategies.
pub fn word_strategies() -> Vec<SamplingStrategy> {
    vec![
        SamplingStrategy::Auto,
        SamplingStrategy::Minority,
        SamplingStrategy::Majority,
        SamplingStrategy::NotMinority,
        SamplingStrategy::NotMajority,
        SamplingStrategy::All,
    ]
}
