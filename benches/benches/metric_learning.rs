//! Criterion benches of the pair-based embedding losses, forward + backward, f32, on B×D = 512×128 and 2048×512
//! (labels: B/4 classes, so each anchor has about three positives). Ids: `multi-similarity/f32/512x128`, ….
//! The peer comparison (pytorch-metric-learning on CPU, same threads) is `benches/peers/metric_learning.py`.
//!
//! ```text
//! cargo bench -p losskit-benches --bench metric_learning
//! ```

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use losskit::losses::{Contrastive, EmbeddingLoss, MultiSimilarity, SupCon};
use losskit_benches::{class_batch, settings};
use ndarray::{Array1, Array2};

/// (B, D) of the embedding benches.
const SHAPES: &[(usize, usize)] = &[(512, 128), (2048, 512)];

/// Standard normal embeddings [B, D] and labels in `0..B/4` (a P×K-sampled batch: K ≈ 4 per class).
fn batch(b: usize, d: usize) -> (Array2<f32>, Array1<i64>) {
    let (x, _) = class_batch::<f32>(b, d, 11);
    let labels = (0..b as i64).map(|i| (i * 7919) % (b as i64 / 4)).collect();
    (x, labels)
}

fn group(c: &mut Criterion, name: &str, loss: &dyn EmbeddingLoss<f32>) {
    let (samples, warm_up, measurement) = settings();
    let mut g = c.benchmark_group(name);
    g.sample_size(samples.min(10)).warm_up_time(warm_up).measurement_time(measurement);
    for &(b, d) in SHAPES {
        let (x, y) = batch(b, d);
        g.throughput(Throughput::Elements((b * b) as u64));
        g.bench_function(BenchmarkId::new("f32", format!("{b}x{d}")), |bench| {
            bench.iter(|| loss.compute(black_box(x.view()), black_box(y.view()), None, true))
        });
    }
    g.finish();
}

fn multi_similarity(c: &mut Criterion) {
    group(c, "multi-similarity", &MultiSimilarity::new());
}

fn contrastive(c: &mut Criterion) {
    group(c, "contrastive", &Contrastive::new());
}

fn supcon(c: &mut Criterion) {
    group(c, "supcon", &SupCon::new());
}

criterion_group!(benches, multi_similarity, contrastive, supcon);
criterion_main!(benches);
