//! Criterion benches of the samplers (f64, the default thread pool): SMOTE on 100 000 × 32 with a 2% minority (the
//! issue's small workload: it generates 96 000 points), the exact k = 5 neighbour self-search that SMOTE runs on
//! that minority (2 000 × 32), and the two neighbourhood cleaners on 20 000 × 16 (a tenth of the peer workload, so
//! that criterion's samples stay short). Ids: `smote/f64/100000x32`, `knn-self/f64/2000x32`, ….
//! The peer comparison at full size (imbalanced-learn, same threads) is `benches/peers/samplers.py`; the one-shot
//! timings at a million rows are the example `cargo run --release -p losskit-samplers --example smote_timing`.
//!
//! ```text
//! cargo bench -p losskit-benches --bench samplers
//! ```

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use losskit::samplers::{EditedNearestNeighbours, Sampler, Smote, TomekLinks, knn};
use ndarray::{Array1, Array2};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

/// Features [n, d] (uniform in [−1, 1], minority rows shifted by +0.5 so that the classes overlap) and labels with
/// a `minority` share of class 1, from `seed`.
fn imbalanced(n: usize, d: usize, minority: f64, seed: u64) -> (Array2<f64>, Array1<i64>) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let y: Array1<i64> = (0..n).map(|_| i64::from(rng.random::<f64>() < minority)).collect();
    let mut x = Array2::from_shape_simple_fn((n, d), || rng.random_range(-1.0..1.0));
    for (mut row, &label) in x.rows_mut().into_iter().zip(&y) {
        if label == 1 {
            row += 0.5;
        }
    }
    (x, y)
}

fn samplers(c: &mut Criterion) {
    let (samples, warm_up, measurement) = losskit_benches::settings();
    let mut g = c.benchmark_group("smote");
    g.sample_size(samples.min(10)).warm_up_time(warm_up).measurement_time(measurement);
    let (x, y) = imbalanced(100_000, 32, 0.02, 3);
    g.throughput(Throughput::Elements(x.nrows() as u64));
    g.bench_function(BenchmarkId::new("f64", "100000x32"), |b| {
        b.iter(|| Smote::new().fit_resample(black_box(x.view()), black_box(y.view()), 0))
    });
    g.finish();

    let mut g = c.benchmark_group("knn-self");
    g.sample_size(samples).warm_up_time(warm_up).measurement_time(measurement);
    let (x, _) = imbalanced(2_000, 32, 0.0, 5);
    g.throughput(Throughput::Elements(x.nrows() as u64));
    g.bench_function(BenchmarkId::new("f64", "2000x32"), |b| b.iter(|| knn::kneighbors_self(black_box(x.view()), 5)));
    g.finish();

    let (x, y) = imbalanced(20_000, 16, 0.10, 7);
    for (name, sampler) in [
        ("edited-nearest-neighbours", Box::new(EditedNearestNeighbours::new()) as Box<dyn Sampler>),
        ("tomek-links", Box::new(TomekLinks::new())),
    ] {
        let mut g = c.benchmark_group(name);
        g.sample_size(samples.min(10)).warm_up_time(warm_up).measurement_time(measurement);
        g.throughput(Throughput::Elements(x.nrows() as u64));
        g.bench_function(BenchmarkId::new("f64", "20000x16"), |b| {
            b.iter(|| sampler.fit_resample(black_box(x.view()), black_box(y.view()), 0))
        });
        g.finish();
    }
}

criterion_group!(benches, samplers);
criterion_main!(benches);
