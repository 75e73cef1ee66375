//! Criterion bench of the spherical (factored) Z-loss output layer against a dense one: one SGD step on a minibatch
//! of m = 32 at d = 128 as the number of classes D grows. The spherical step costs O(m·d² + d³) whatever D, the dense
//! one O(D·d·m), so the spherical times stay flat from D = 10⁴ to 10⁶ while the dense ones grow with D (run to 10⁵
//! only, to keep the bench under a minute). Ids: `spherical-z-output/spherical/1000000`, `…/dense/100000`.
//!
//! ```text
//! cargo bench -p losskit-benches --bench spherical
//! ```

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};
use losskit::losses::ZLoss;
use losskit::models::{DenseZOutput, SphericalZOutput};
use ndarray::Array2;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

const D_IN: usize = 128;
const BATCH: usize = 32;
const CLASSES: &[usize] = &[10_000, 100_000, 1_000_000];
const DENSE_UP_TO: usize = 100_000;
/// Minibatches cycled through by the steps.
const BATCHES: usize = 8;

/// Hidden activations [m, d] and their target classes.
type Batch = (Array2<f64>, Vec<usize>);

fn data(classes: usize, seed: u64) -> (Array2<f64>, Vec<Batch>) {
    let mut r = Xoshiro256PlusPlus::seed_from_u64(seed);
    let w0 = Array2::from_shape_simple_fn((classes, D_IN), || r.random_range(-0.05..0.05));
    let batches = (0..BATCHES)
        .map(|_| {
            let h = Array2::from_shape_simple_fn((BATCH, D_IN), || r.random_range(-1.0..1.0));
            (h, (0..BATCH).map(|_| r.random_range(0..classes)).collect())
        })
        .collect();
    (w0, batches)
}

fn spherical(c: &mut Criterion) {
    let mut group = c.benchmark_group("spherical-z-output");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_secs(1));
    let loss = ZLoss::new(0.1, 10.0);
    for &classes in CLASSES {
        let (w0, batches) = data(classes, 1);
        let mut layer = SphericalZOutput::new(w0.view(), loss.clone(), 0.01).expect("valid layer").renorm_every(0);
        let mut i = 0;
        group.bench_function(BenchmarkId::new("spherical", classes), |b| {
            b.iter(|| {
                let (h, t) = &batches[i % BATCHES];
                i += 1;
                black_box(layer.step(black_box(h.view()), t).expect("valid step"))
            })
        });
        drop(layer);
        if classes <= DENSE_UP_TO {
            let mut dense = DenseZOutput::new(w0.view(), loss.clone(), 0.01).expect("valid layer");
            let mut i = 0;
            group.bench_function(BenchmarkId::new("dense", classes), |b| {
                b.iter(|| {
                    let (h, t) = &batches[i % BATCHES];
                    i += 1;
                    black_box(dense.step(black_box(h.view()), t).expect("valid step"))
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, spherical);
criterion_main!(benches);
