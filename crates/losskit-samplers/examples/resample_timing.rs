//! Times the random samplers on a synthetic imbalanced set (N rows, D features, 1:9 imbalance).
//!
//! `cargo run --release -p losskit-samplers --example resample_timing -- [N] [D]` (defaults 1 000 000 × 32);
//! prints the median and minimum over 7 runs, in milliseconds.

use std::time::Instant;

use losskit_samplers::{RandomOverSampler, RandomUnderSampler, Sampler};
use ndarray::{Array1, Array2};

fn main() -> Result<(), losskit_samplers::Error> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>().ok());
    let n = args.next().flatten().unwrap_or(1_000_000);
    let d = args.next().flatten().unwrap_or(32);
    let x = Array2::from_shape_fn((n, d), |(i, j)| ((i * 31 + j * 17) % 1000) as f64 * 1e-3);
    let y = Array1::from_shape_fn(n, |i| i64::from(i % 10 == 0));
    let samplers: Vec<(&str, Box<dyn Sampler>)> = vec![
        ("random-over", Box::new(RandomOverSampler::new())),
        ("random-over shrinkage=1", Box::new(RandomOverSampler::new().shrinkage(1.0))),
        ("random-under", Box::new(RandomUnderSampler::new())),
    ];
    for (name, s) in samplers {
        let mut times = Vec::new();
        let mut rows = 0;
        for seed in 0..7 {
            let t = Instant::now();
            let out = s.fit_resample(x.view(), y.view(), seed)?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
            rows = out.y.len();
        }
        times.sort_by(f64::total_cmp);
        println!("{name:<26} {n}x{d} -> {rows} rows: median {:.1} ms, min {:.1} ms", times[3], times[0]);
    }
    Ok(())
}
