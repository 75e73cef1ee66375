//! Times MAP@R (with precision@1, R-precision, MAP, MRR, NDCG, Recall@K) on N embeddings of dimension D searched
//! against themselves, to compare with pytorch-metric-learning's `AccuracyCalculator(k="max_bin_count")` on the
//! same sizes and threads.
//!
//! ```text
//! cargo run --release -p losskit-metrics --example retrieval_timing -- [N=20000] [D=128] [CLASSES=100] [REPEATS=3]
//! ```
//! Embeddings: class centres plus noise from a seeded SplitMix64 (uniform), labels `i % CLASSES`; prints the median
//! and minimum time in ms (exact kNN with k = max bin count − 1, then the metrics) and the values. Correctness
//! against PML is the job of the fixture tests; this only times.

use std::time::Instant;

use losskit_metrics::{RetrievalConfig, retrieval_metrics};
use ndarray::{Array1, Array2};

fn splitmix(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default);
    let (n, d, classes, repeats) = (arg(0, 20_000), arg(1, 128), arg(2, 100).max(1), arg(3, 3).max(1));
    let mut state = 7;
    let centres = Array2::from_shape_fn((classes, d), |_| splitmix(&mut state) * 2.0 - 1.0);
    let labels: Array1<i64> = (0..n).map(|i| (i % classes) as i64).collect();
    let x = Array2::from_shape_fn((n, d), |(i, j)| centres[[i % classes, j]] + 1.5 * (splitmix(&mut state) - 0.5));
    let cfg = RetrievalConfig::new();
    let mut times = vec![];
    let mut report = None;
    for _ in 0..repeats {
        let t = Instant::now();
        report = Some(retrieval_metrics(x.view(), labels.view(), None, &cfg)?);
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "retrieval N={n} D={d} classes={classes} threads={}: median_ms={:.1} min_ms={:.1}",
        rayon::current_num_threads(),
        times[times.len() / 2],
        times[0]
    );
    if let Some(r) = report {
        for (k, v) in r.to_pairs() {
            println!("  {k} = {v}");
        }
    }
    Ok(())
}
