//! GPU checks of the pairwise losses (kernels/pairwise.cu + cuBLAS tiles) and of the exact kNN / SMOTE
//! (kernels/knn.cu), each against the CPU implementation of the same config. Included by tests/gpu.rs; every test
//! prints `skipped: no CUDA device` and passes without one (unless `LOSSKIT_REQUIRE_GPU=1`).

use super::gpu;
use half::{bf16, f16};
use losskit_cuda::{GpuFloat, GpuPairLoss};
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
fn pair_on_gpu<T: GpuFloat, L: GpuPairLoss + EmbeddingLoss<f64>>(
    what: &str,
    loss: &L,
    x: &Array2<f64>,
    y: &Array1<i64>,
) {
    let Some(gpu) = gpu() else { return };
    let xt = x.mapv(T::from_f64);
    let xr = xt.mapv(|v| f64::from(v.to_f32()));
    let cpu = loss.compute(xr.view(), y.view(), None, true).unwrap();
    let got = gpu.pair_loss(loss, xt.view(), y.view(), true).unwrap();
    let rel = 1e-5;
    assert!((got.value - cpu.value).abs() <= rel * cpu.value.abs().max(1e-6), "{what}: {} vs {}", got.value, cpu.value);
    let ps = cpu.per_sample.unwrap();
    let ps_scale = ps.iter().fold(1e-6_f64, |m, v| m.max(v.abs()));
    for (i, (&g, &c)) in got.per_sample.iter().zip(ps.iter()).enumerate() {
        assert!((f64::from(g) - c).abs() <= rel * c.abs().max(ps_scale), "{what}: per_sample[{i}] {g} vs {c}");
    }
    let cg = cpu.grad.unwrap();
    let gg = got.grad.unwrap();
    let scale = cg.iter().fold(1e-9_f64, |m, v| m.max(v.abs()));
    let g_rel = match T::NAME {
        "f32" => 1e-4,
        "bf16" => 1e-2,
        _ => 2e-3,
    };
    for ((i, j), &c) in cg.indexed_iter() {
        let g = f64::from(gg[[i, j]].to_f32());
        assert!((g - c).abs() <= g_rel * scale, "{what}: grad[{i},{j}] {g} vs {c}");
    }
    println!("ok   gpu {what}: {:.6} (cpu {:.6})", got.value, cpu.value);
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
