//! Times binary ROC-AUC and average precision over N samples (state update + sort + curve walk), to compare with
//! `sklearn.metrics.roc_auc_score` / `average_precision_score` on the same sizes.
//!
//! ```text
//! cargo run --release -p losskit-metrics --example ranking_timing -- [N=1000000] [REPEATS=5]
//! ```
//! Labels and scores come from a seeded SplitMix64 (balanced labels, scores = 0.3·label + uniform, rounded to 1e-6
//! so there are ties); prints the median and minimum time in ms of each metric and the values. Correctness against
//! scikit-learn is the job of the fixture tests; this only times.

use std::time::Instant;

use losskit_metrics::BinaryRanking;
use ndarray::Array1;

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default);
    let (n, repeats) = (arg(0, 1_000_000), arg(1, 5).max(1));
    let mut state = 42;
    let y: Array1<i64> = (0..n).map(|_| (splitmix(&mut state) & 1) as i64).collect();
    let s: Array1<f64> = y
        .iter()
        .map(|&t| {
            let u = (splitmix(&mut state) >> 11) as f64 / (1u64 << 53) as f64;
            ((0.3 * t as f64 + u) * 1e6).round() / 1e6
        })
        .collect();
    for metric in ["roc_auc", "average_precision"] {
        let mut times = Vec::with_capacity(repeats);
        let mut value = 0.0;
        for _ in 0..repeats {
            let start = Instant::now();
            let mut r = BinaryRanking::new();
            r.update(y.view(), s.view(), None)?;
            value = if metric == "roc_auc" { r.roc_auc(None)? } else { r.average_precision()? };
            times.push(start.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{metric} N={n} threads={}: median {:.1} ms, min {:.1} ms, value {value:.12}",
            rayon::current_num_threads(),
            times[times.len() / 2],
            times[0]
        );
    }
    Ok(())
}
