//! Times macro-F1 over N labelled samples (confusion-matrix update + `f1_score`), to compare with
//! `sklearn.metrics.f1_score(y_true, y_pred, average="macro")` on the same sizes.
//!
//! ```text
//! cargo run --release -p losskit-metrics --example macro_f1_timing -- [N=1000000] [C=10] [REPEATS=21]
//! ```
//! Labels come from a seeded SplitMix64 (uniform classes, 60 % correct predictions); prints the median and minimum
//! time in ms and the value. Correctness against scikit-learn is the job of the fixture tests; this only times.

use std::time::Instant;

use losskit_metrics::{ConfusionMatrix, PrfConfig};
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
    let (n, c, repeats) = (arg(0, 1_000_000), arg(1, 10), arg(2, 21).max(1));
    let mut state = 42;
    let y_true: Array1<i64> = (0..n).map(|_| (splitmix(&mut state) % c as u64) as i64).collect();
    let y_pred: Array1<i64> = y_true
        .iter()
        .map(|&y| if splitmix(&mut state) % 10 < 6 { y } else { (splitmix(&mut state) % c as u64) as i64 })
        .collect();
    let cfg = PrfConfig::new();
    let mut times = Vec::with_capacity(repeats);
    let mut value = 0.0;
    for _ in 0..repeats {
        let start = Instant::now();
        let cm = ConfusionMatrix::from_labels(c, y_true.view(), y_pred.view())?;
        value = cm.f1_score(&cfg)?.scalar().unwrap_or(f64::NAN);
        times.push(start.elapsed().as_secs_f64() * 1e3);
        std::hint::black_box(&cm);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "macro-F1 N={n} C={c} threads={}: median {:.3} ms, min {:.3} ms, value {value:.12}",
        rayon::current_num_threads(),
        times[times.len() / 2],
        times[0]
    );
    Ok(())
}
