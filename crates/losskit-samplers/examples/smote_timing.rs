//! Times `smote` (and the neighbourhood cleaners) on large synthetic sets, for comparison with imbalanced-learn.
//!
//! `cargo run --release -p losskit-samplers --example smote_timing -- [CASE ...]` with CASE among `smote1m`
//! (1 000 000 × 32, 10 % minority: generates ≈ 800 000 points), `smote100k` (100 000 × 32, 2 % minority),
//! `enn` and `tomek` (200 000 × 16, 10 % minority); all by default. `knnN` times the exact k = 5 self-search alone on
//! N × 32 rows (`knn2000`: SMOTE 100k's minority class). Set `RAYON_NUM_THREADS` for the thread count.
//! Prints the median and minimum of `RUNS` runs (default 3), in seconds.
//!
//! The data: features i.i.d. N(0, 1), each row minority with probability `p`, minority rows shifted by +0.5 in every
//! feature (seeded Xoshiro256PlusPlus). The peer side, on data drawn the same way with NumPy (run by hand, same
//! thread count through threadpoolctl / OMP_NUM_THREADS):
//!
//! ```text
//! import numpy as np, time; from threadpoolctl import threadpool_limits
//! from imblearn.over_sampling import SMOTE
//! rng = np.random.default_rng(0); X = rng.standard_normal((n, d)); y = (rng.random(n) < p).astype(np.int64)
//! X[y == 1] += 0.5
//! with threadpool_limits(THREADS):
//!     t = time.perf_counter(); SMOTE(random_state=0).fit_resample(X, y); print(time.perf_counter() - t)
//! ```

use std::time::Instant;

use losskit_samplers::{EditedNearestNeighbours, Sampler, Smote, TomekLinks};
use ndarray::{Array1, Array2};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;

fn data(n: usize, d: usize, p: f64, seed: u64) -> (Array2<f64>, Array1<i64>) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let y = Array1::from_shape_fn(n, |_| i64::from(rng.random::<f64>() < p));
    let mut x = Array2::from_shape_fn((n, d), |_| rng.sample::<f64, _>(StandardNormal));
    for (mut row, &label) in x.rows_mut().into_iter().zip(&y) {
        if label == 1 {
            row += 0.5;
        }
    }
    (x, y)
}

fn main() -> Result<(), losskit_samplers::Error> {
    let mut cases: Vec<String> = std::env::args().skip(1).collect();
    if cases.is_empty() {
        cases = ["smote1m", "smote100k", "enn", "tomek"].map(String::from).to_vec();
    }
    let runs: usize = std::env::var("RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    for case in cases {
        if let Some(rows) = case.strip_prefix("knn") {
            // `knnN`: the exact self-search alone on N × 32 rows (k = 5), as SMOTE runs it on a minority class.
            let n: usize = rows.parse().unwrap_or(2000);
            let (x, _) = data(n, 32, 0.0, 0);
            let mut times = Vec::new();
            for _ in 0..runs.max(1) {
                let t = Instant::now();
                std::hint::black_box(losskit_samplers::knn::kneighbors_self(x.view(), 5)?);
                times.push(t.elapsed().as_secs_f64());
            }
            times.sort_by(f64::total_cmp);
            println!(
                "{case:<10} {n}x32 k=5, threads {}: median {:.3} ms, min {:.3} ms",
                rayon::current_num_threads(),
                times[times.len() / 2] * 1e3,
                times[0] * 1e3
            );
            continue;
        }
        let (n, d, p, sampler): (usize, usize, f64, Box<dyn Sampler>) = match case.as_str() {
            "smote1m" => (1_000_000, 32, 0.10, Box::new(Smote::new())),
            "smote100k" => (100_000, 32, 0.02, Box::new(Smote::new())),
            "smote300k" => (300_000, 32, 0.10, Box::new(Smote::new())),
            "enn" => (200_000, 16, 0.10, Box::new(EditedNearestNeighbours::new())),
            "tomek" => (200_000, 16, 0.10, Box::new(TomekLinks::new())),
            "tomek50k" => (50_000, 16, 0.10, Box::new(TomekLinks::new())),
            other => {
                eprintln!("unknown case {other}");
                continue;
            }
        };
        let (x, y) = data(n, d, p, 0);
        let mut times = Vec::new();
        let mut rows = 0;
        for seed in 0..runs as u64 {
            let t = Instant::now();
            let out = sampler.fit_resample(x.view(), y.view(), seed)?;
            times.push(t.elapsed().as_secs_f64());
            rows = out.y.len();
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{case:<10} {n}x{d} -> {rows} rows, threads {}: median {:.4} s, min {:.4} s",
            rayon::current_num_threads(),
            times[times.len() / 2],
            times[0]
        );
    }
    Ok(())
}
