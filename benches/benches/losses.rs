//! Criterion benches of the softmax-family losses on the shapes in `CLASS_SHAPES`: forward + backward (what a training
//! step pays) and forward alone. Ids: `cross-entropy/f32/4096x1000`, `cross-entropy/f32-forward/4096x1000`, …
//! `f32` times `ClassLoss::compute`, which allocates the gradient; for the losses that offer it, `f32-into` times
//! `value_and_grad_into` writing into one reused gradient buffer, as a training loop does (no allocation, no page
//! faults).
//!
//! ```text
//! cargo bench -p losskit-benches --bench losses
//! ```

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use losskit::losses::{
    BinaryCrossEntropy, BinaryLoss, ClassLoss, CrossEntropy, Focal, GeneralizedCrossEntropy, LdrKl, Mae, ScoreNorm,
    SumExponential, Targets, ZLoss,
};
use losskit_benches::{CLASS_SHAPES, binary_batch, class_batch, settings};

/// `value_and_grad_into` of a loss, as a plain function (the losses share no trait for it).
type IntoFn = fn(ndarray::ArrayView2<'_, f32>, &[i64], ndarray::ArrayViewMut2<'_, f32>) -> f32;

fn class_group(c: &mut Criterion, name: &str, loss: &dyn ClassLoss<f32>) {
    class_group_into(c, name, loss, None);
}

fn class_group_into(c: &mut Criterion, name: &str, loss: &dyn ClassLoss<f32>, into: Option<IntoFn>) {
    let (samples, warm_up, measurement) = settings();
    let mut group = c.benchmark_group(name);
    group.sample_size(samples).warm_up_time(warm_up).measurement_time(measurement);
    for &(n, k) in CLASS_SHAPES {
        let (logits, labels) = class_batch::<f32>(n, k, 7);
        group.throughput(Throughput::Elements((n * k) as u64));
        let shape = format!("{n}x{k}");
        group.bench_function(BenchmarkId::new("f32", &shape), |b| {
            b.iter(|| loss.compute(black_box(logits.view()), Targets::hard(black_box(&labels)), None, true))
        });
        group.bench_function(BenchmarkId::new("f32-forward", &shape), |b| {
            b.iter(|| loss.compute(black_box(logits.view()), Targets::hard(black_box(&labels)), None, false))
        });
        if let Some(into) = into {
            let mut grad = ndarray::Array2::<f32>::zeros((n, k));
            group.bench_function(BenchmarkId::new("f32-into", &shape), |b| {
                b.iter(|| into(black_box(logits.view()), black_box(&labels), grad.view_mut()))
            });
        }
    }
    group.finish();
}

// The loss value (NaN on an error, which the benches' inputs never raise), so the work is not optimised away.
fn cross_entropy(c: &mut Criterion) {
    let into: IntoFn =
        |x, y, g| CrossEntropy::new().value_and_grad_into(x, Targets::hard(y), None, g).map_or(f32::NAN, |o| o.value);
    class_group_into(c, "cross-entropy", &CrossEntropy::new(), Some(into));
}

fn focal(c: &mut Criterion) {
    let into: IntoFn =
        |x, y, g| Focal::new().value_and_grad_into(x, Targets::hard(y), None, g).map_or(f32::NAN, |o| o.value);
    class_group_into(c, "focal", &Focal::new(), Some(into));
}

fn generalized_cross_entropy(c: &mut Criterion) {
    let into: IntoFn = |x, y, g| {
        GeneralizedCrossEntropy::new().value_and_grad_into(x, Targets::hard(y), None, g).map_or(f32::NAN, |o| o.value)
    };
    class_group_into(c, "generalized-cross-entropy", &GeneralizedCrossEntropy::new(), Some(into));
}

fn mae(c: &mut Criterion) {
    let into: IntoFn =
        |x, y, g| Mae::new().value_and_grad_into(x, Targets::hard(y), None, g).map_or(f32::NAN, |o| o.value);
    class_group_into(c, "mae", &Mae::new(), Some(into));
}

fn sum_exponential(c: &mut Criterion) {
    let into: IntoFn =
        |x, y, g| SumExponential::new().value_and_grad_into(x, Targets::hard(y), None, g).map_or(f32::NAN, |o| o.value);
    class_group_into(c, "sum-exponential", &SumExponential::new(), Some(into));
}

fn ldr_kl(c: &mut Criterion) {
    class_group(c, "ldr-kl", &LdrKl::new());
    class_group(c, "ldr-kl-plain-scores", &LdrKl::new().score_norm(ScoreNorm::None));
}

fn z_loss(c: &mut Criterion) {
    class_group(c, "z-loss", &ZLoss::new(0.1, 10.0));
}

fn binary_cross_entropy(c: &mut Criterion) {
    let (samples, warm_up, measurement) = settings();
    let mut group = c.benchmark_group("binary-cross-entropy");
    group.sample_size(samples).warm_up_time(warm_up).measurement_time(measurement);
    let n = 1 << 20;
    let (scores, targets) = binary_batch::<f32>(n, 7);
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function(BenchmarkId::new("f32", n), |b| {
        b.iter(|| BinaryCrossEntropy::new().compute(black_box(scores.view()), black_box(targets.view()), None, true))
    });
    group.finish();
}

criterion_group!(
    benches,
    cross_entropy,
    focal,
    generalized_cross_entropy,
    mae,
    sum_exponential,
    ldr_kl,
    z_loss,
    binary_cross_entropy
);
criterion_main!(benches);
