//! GPU checks of the pairwise losses (kernels/pairwise.cu + cuBLAS tiles) and of the exact kNN / SMOTE
//! (kernels/knn.cu), each against the CPU implementation of the same config. Included by tests/gpu.rs; every test
//! prints `skipped: no CUDA device` and passes without one (unless `LOSSKIT_REQUIRE_GPU=1`).

use super::gpu;
use half::{bf16, f16};
use losskit_cuda::{Error, GpuFloat, GpuPairLoss, PairLabels};
use losskit_losses::{Contrastive, Distance, EmbeddingLoss, MultiSimilarity, Reduction, SupCon};
use losskit_samplers::knn::{kneighbors, kneighbors_self};
use losskit_samplers::{Sampler, Smote};
use ndarray::{Array1, Array2};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

/// Every kernel of pairwise.cu the host launches.
pub const PAIRWISE_KERNELS: &[&str] = &[
    "pw_multi_similarity",
    "pw_contrastive_stats",
    "pw_contrastive",
    "pw_supcon",
    "pw_colsum",
    "pw_label_counts",
    "pw_reduce",
    "pw_normalize_f32",
    "pw_normalize_bf16",
    "pw_normalize_f16",
    "pw_finish_f32",
    "pw_finish_bf16",
    "pw_finish_f16",
];

fn batch(n: usize, d: usize, classes: i64, seed: u64) -> (Array2<f64>, Array1<i64>) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let x = Array2::from_shape_fn((n, d), |_| rng.random_range(-1.0..1.0));
    let y = Array1::from_shape_fn(n, |_| rng.random_range(0..classes));
    (x, y)
}

/// GPU against the CPU loss in f64 on the same (rounded) inputs: f32 to 1e-5 relative (value, per-anchor values;
/// the gradient to 1e-4 of its largest entry), 16-bit gradients to their precision.
fn pair_on_gpu<T: GpuFloat, L: GpuPairLoss + EmbeddingLoss<f64> + EmbeddingLoss<f32>>(
    what: &str,
    loss: &L,
    x: &Array2<f64>,
    y: &Array1<i64>,
) {
    let Some(gpu) = gpu() else { return };
    let xt = x.mapv(T::from_f64);
    let got = gpu.pair_loss(loss, xt.view(), y.view(), true).unwrap();
    let grad = got.grad.unwrap();
    assert_like_cpu::<T, L>(what, loss, x, y, got.value, got.per_sample.as_slice().unwrap(), grad.as_slice().unwrap());
}

/// Value, per-anchor values and gradient (row-major) of a GPU run against the CPU loss on `x` rounded to T.
///
/// Each gradient element may differ from the f64 reference by `g_rel` of the largest entry plus twice the error that
/// the CPU's own f32 path makes on that element: Euclidean distances formed from similarities (d² = 2 − 2s) lose
/// digits for near pairs in any f32 implementation (at 4500 × 16, 40 classes, the contrastive gradient's scale is
/// 3e-5 and the CPU f32 path is off by 4% of it), and the GPU is held to what f32 can give there.
fn assert_like_cpu<T: GpuFloat, L: EmbeddingLoss<f64> + EmbeddingLoss<f32>>(
    what: &str,
    loss: &L,
    x: &Array2<f64>,
    y: &Array1<i64>,
    value: f64,
    per_sample: &[f32],
    grad: &[T],
) {
    let xr = x.mapv(|v| f64::from(T::from_f64(v).to_f32()));
    let cpu = EmbeddingLoss::<f64>::compute(loss, xr.view(), y.view(), None, true).unwrap();
    let xr32 = xr.mapv(|v| v as f32);
    let cpu32 = EmbeddingLoss::<f32>::compute(loss, xr32.view(), y.view(), None, true).unwrap().grad.unwrap();
    let rel = 1e-5;
    assert!((value - cpu.value).abs() <= rel * cpu.value.abs().max(1e-6), "{what}: {} vs {}", value, cpu.value);
    let ps = cpu.per_sample.unwrap();
    let ps_scale = ps.iter().fold(1e-6_f64, |m, v| m.max(v.abs()));
    assert_eq!(per_sample.len(), ps.len(), "{what}: per-sample length");
    for (i, (&g, &c)) in per_sample.iter().zip(ps.iter()).enumerate() {
        assert!((f64::from(g) - c).abs() <= rel * c.abs().max(ps_scale), "{what}: per_sample[{i}] {g} vs {c}");
    }
    let cg = cpu.grad.unwrap();
    assert_eq!(grad.len(), cg.len(), "{what}: gradient length");
    let scale = cg.iter().fold(1e-9_f64, |m, v| m.max(v.abs()));
    let g_rel = match T::NAME {
        "f32" => 1e-4,
        "bf16" => 1e-2,
        _ => 2e-3,
    };
    let d = cg.ncols();
    for ((i, j), &c) in cg.indexed_iter() {
        let g = f64::from(grad[i * d + j].to_f32());
        let f32_error = (f64::from(cpu32[[i, j]]) - c).abs();
        assert!(
            (g - c).abs() <= g_rel * scale + 2.0 * f32_error,
            "{what}: grad[{i},{j}] {g} vs {c} (CPU f32 {})",
            cpu32[[i, j]]
        );
    }
    println!("ok   gpu {what}: {value:.6} (cpu {:.6})", cpu.value);
}

/// The device-resident API on one input: equal to the host-array API (bit for bit: the same kernels in the same
/// order), with device and host labels, and like the CPU.
fn device_api_on_gpu<T: GpuFloat, L: GpuPairLoss + EmbeddingLoss<f64> + EmbeddingLoss<f32>>(
    what: &str,
    loss: &L,
    x: &Array2<f64>,
    y: &Array1<i64>,
) {
    let Some(gpu) = gpu() else { return };
    let xt = x.mapv(T::from_f64);
    let d = x.ncols();
    let host = gpu.pair_loss(loss, xt.view(), y.view(), true).unwrap();
    let xd = gpu.to_device(xt.as_slice().unwrap()).unwrap();
    let yd = gpu.to_device(y.as_slice().unwrap()).unwrap();
    for labels in [PairLabels::Device(&yd), PairLabels::Host(y.view())] {
        let dev = gpu.pair_loss_device(loss, &xd, d, labels, true).unwrap();
        let ps = gpu.to_host(&dev.per_sample).unwrap();
        let g = gpu.to_host(dev.grad.as_ref().unwrap()).unwrap();
        assert_eq!(
            dev.value.to_bits(),
            host.value.to_bits(),
            "{what}: device value {} vs host {}",
            dev.value,
            host.value
        );
        assert_eq!(ps.as_slice(), host.per_sample.as_slice().unwrap(), "{what}: per-sample values");
        let hg = host.grad.as_ref().unwrap();
        assert!(
            g.iter().zip(hg.iter()).all(|(a, b)| a.to_f32().to_bits() == b.to_f32().to_bits()),
            "{what}: device gradient differs from the host-array one"
        );
        assert_like_cpu::<T, L>(&format!("device {what}"), loss, x, y, dev.value, &ps, &g);
        // Without the gradient: the same value, no gradient buffer.
        let nog = gpu.pair_loss_device(loss, &xd, d, labels, false).unwrap();
        assert_eq!(nog.value.to_bits(), dev.value.to_bits(), "{what}: value without gradient");
        assert!(nog.grad.is_none());
    }
}

#[test]
fn device_api_matches_host_api_and_cpu_on_gpu() {
    let Some(gpu) = gpu() else { return };
    let (x, y) = batch(300, 48, 12, 2);
    let mut y1 = y.clone();
    y1[3] = 1000; // an anchor without positives
    for dist in [Distance::Cosine, Distance::Euclidean, Distance::EuclideanUnnormalized] {
        let w = dist.as_str();
        device_api_on_gpu::<f32, _>(&format!("ms {w}"), &MultiSimilarity::new().distance(dist), &x, &y1);
        device_api_on_gpu::<f32, _>(
            &format!("ms miner {w}"),
            &MultiSimilarity::new().miner(true).distance(dist),
            &x,
            &y1,
        );
        let c = Contrastive::new().pos_margin(0.1).neg_margin(0.8).distance(dist).tile(64);
        device_api_on_gpu::<f32, _>(&format!("contrastive tile=64 {w}"), &c, &x, &y1);
        device_api_on_gpu::<f32, _>(&format!("supcon {w}"), &SupCon::new().distance(dist), &x, &y1);
    }
    device_api_on_gpu::<bf16, _>("ms bf16", &MultiSimilarity::new(), &x, &y);
    device_api_on_gpu::<f16, _>("supcon f16", &SupCon::new(), &x, &y);
    // The default tile at N > 4096: several tiles of 2²⁴ / N rows.
    let (xb, yb) = batch(4500, 16, 40, 3);
    device_api_on_gpu::<f32, _>("ms 4500 rows (2 tiles)", &MultiSimilarity::new(), &xb, &yb);
    device_api_on_gpu::<f32, _>("contrastive 4500 rows (2 tiles)", &Contrastive::new(), &xb, &yb);
    // Zero by rule (a single class: no negative pair): zero value, per-anchor values and gradient.
    let one = Array1::from_elem(300, 4_i64);
    let xd = gpu.to_device(x.mapv(|v| v as f32).as_slice().unwrap()).unwrap();
    let out = gpu.pair_loss_device(&SupCon::new(), &xd, 48, one.view(), true).unwrap();
    assert_eq!(out.value, 0.0);
    assert!(gpu.to_host(&out.per_sample).unwrap().iter().all(|&v| v == 0.0));
    assert!(gpu.to_host(out.grad.as_ref().unwrap()).unwrap().iter().all(|&v| v == 0.0));
    assert!(gpu.free_pair_workspace().unwrap() > 0);
    assert_eq!(gpu.free_pair_workspace().unwrap(), 0);
}

#[test]
fn device_api_rejects_bad_input_on_gpu() {
    let Some(gpu) = gpu() else { return };
    let ms = MultiSimilarity::new();
    let x = gpu.to_device(&[0.5_f32; 12]).unwrap();
    let y = gpu.to_device(&[0_i64, 1, 0, 1]).unwrap();
    assert!(matches!(gpu.pair_loss_device(&ms, &x, 0, &y, true), Err(Error::Shape { .. })));
    assert!(matches!(gpu.pair_loss_device(&ms, &x, 5, &y, true), Err(Error::Shape { .. })));
    assert!(matches!(gpu.pair_loss_device(&ms, &x, 4, &y, true), Err(Error::Shape { arg: "labels", .. })));
    assert!(gpu.pair_loss_device(&ms, &x, 3, &y, true).is_ok());
    assert!(matches!(
        gpu.pair_loss_device(&MultiSimilarity::new().alpha(0.0), &x, 3, &y, true),
        Err(Error::Parameter { name: "alpha", .. })
    ));
    let mut bad = vec![0.5_f32; 12];
    bad[7] = f32::NAN;
    let xb = gpu.to_device(&bad).unwrap();
    match gpu.pair_loss_device(&ms, &xb, 3, &y, true) {
        Err(Error::NonFinite { arg: "embeddings", index: 7, .. }) => {}
        other => panic!("NaN input: {other:?}"),
    }
    // The GPU still works after an error.
    assert!(gpu.pair_loss_device(&ms, &x, 3, &y, true).is_ok());
}

#[test]
fn pair_losses_match_cpu_on_gpu() {
    if gpu().is_none() {
        return;
    }
    let (x, y) = batch(300, 48, 12, 1);
    let mut y1 = y.clone();
    y1[7] = 1000; // an anchor without positives
    for tile in [0, 64] {
        for dist in [Distance::Cosine, Distance::Euclidean, Distance::EuclideanUnnormalized] {
            let w = format!("tile={tile} {}", dist.as_str());
            let ms = MultiSimilarity::new().distance(dist).tile(tile);
            pair_on_gpu::<f32, _>(&format!("ms {w}"), &ms, &x, &y1);
            pair_on_gpu::<f32, _>(&format!("ms miner {w}"), &ms.clone().miner(true), &x, &y1);
            pair_on_gpu::<f32, _>(
                &format!("ms official {w}"),
                &MultiSimilarity::official().distance(dist).tile(tile),
                &x,
                &y1,
            );
            let c = Contrastive::new().pos_margin(0.1).neg_margin(0.8).distance(dist).tile(tile);
            pair_on_gpu::<f32, _>(&format!("contrastive {w}"), &c, &x, &y1);
            pair_on_gpu::<f32, _>(&format!("contrastive sum {w}"), &c.clone().reduction(Reduction::Sum), &x, &y1);
            pair_on_gpu::<f32, _>(&format!("supcon {w}"), &SupCon::new().distance(dist).tile(tile), &x, &y1);
        }
    }
    pair_on_gpu::<bf16, _>("ms bf16", &MultiSimilarity::new(), &x, &y);
    pair_on_gpu::<f16, _>("ms f16", &MultiSimilarity::new().tile(50), &x, &y);
    pair_on_gpu::<bf16, _>("supcon bf16", &SupCon::new(), &x, &y);
    pair_on_gpu::<f16, _>("contrastive f16", &Contrastive::new(), &x, &y);
}

#[test]
fn supcon_views_match_cpu_on_gpu() {
    let Some(gpu) = gpu() else { return };
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
    let f = ndarray::Array3::from_shape_fn((64, 2, 32), |_| rng.random_range(-1.0_f32..1.0));
    let y = Array1::from_shape_fn(64, |i| (i % 10) as i64);
    let got = gpu.supcon_views(&SupCon::new(), f.view(), y.view(), true).unwrap();
    let (rows, l) = losskit_losses::stack_views(f.mapv(f64::from).view(), y.view()).unwrap();
    let cpu = SupCon::new().compute(rows.view(), l.view(), None, true).unwrap();
    assert!((got.value - cpu.value).abs() <= 1e-5 * cpu.value.abs(), "{} vs {}", got.value, cpu.value);
}

#[test]
fn knn_and_smote_equal_the_cpu_on_gpu() {
    let Some(gpu) = gpu() else { return };
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
    for (n, d, k, grid) in [(5000, 32, 5, false), (3000, 8, 64, false), (2000, 4, 10, true)] {
        let x = Array2::from_shape_fn((n, d), |_| {
            if grid { f64::from(rng.random_range(0..3_i32)) } else { rng.random_range(-3.0..3.0) }
        });
        let (got, stats) = gpu.kneighbors_self(x.view(), k).unwrap();
        let want = kneighbors_self(x.view(), k).unwrap();
        assert_eq!(got.indices, want.indices, "n={n} d={d} k={k}");
        assert_eq!(got.distances, want.distances, "n={n} d={d} k={k}");
        let q = x.slice(ndarray::s![..100, ..]).mapv(|v| v + 0.25);
        let (got, _) = gpu.kneighbors(x.view(), q.view(), k).unwrap();
        assert_eq!(got.indices, kneighbors(x.view(), q.view(), k).unwrap().indices);
        println!(
            "ok   gpu knn n={n} d={d} k={k} grid={grid}: {} of {} queries fell back to the CPU",
            stats.fallback_queries, stats.queries
        );
    }
    let x = Array2::from_shape_fn((4000, 16), |_| rng.random_range(-1.0..1.0));
    let y = Array1::from_shape_fn(4000, |i| i64::from(i % 9 == 0));
    for seed in [0, 17] {
        let want = Smote::new().fit_resample(x.view(), y.view(), seed).unwrap();
        let got = gpu.smote(&Smote::new(), x.view(), y.view(), seed).unwrap();
        assert_eq!(got.x, want.x, "seed {seed}");
        assert_eq!(got.y, want.y);
    }
}
