//! Training on the GPU against training on the CPU (feature `cuda`): the same seeds give the same batches, so the
//! f32 GPU run must follow the f64 CPU run's loss curve closely and reach the same accuracy within noise.
//!
//! Every test prints `skipped: no CUDA device` and passes when `Gpu::new(0)` fails, unless `LOSSKIT_REQUIRE_GPU=1`
//! (set by the GPU bundle's run.sh). `cargo xtask gpu-bundle` carries this binary to the GPU machine.
#![cfg(feature = "cuda")]

use std::sync::{Arc, OnceLock};

use losskit::cuda::{Gpu, TrainLoss};
use losskit::cuda_train::{CudaArena, CudaBackend};
use losskit::losses::registry;
use losskit::models::arena::{self, ArenaConfig, RunSpec};
use losskit::models::datasets::Dataset;
use losskit::models::{Activation, Adam, History, Model, ModelSpec, OptimizerConfig, Sgd, Trainer};
use ndarray::{Array1, Array2};

/// The shared device, or `None` (after printing the skip line) when there is none.
fn gpu() -> Option<Arc<Gpu>> {
    static GPU: OnceLock<Result<Arc<Gpu>, losskit::Error>> = OnceLock::new();
    match GPU.get_or_init(|| Gpu::new(0).map(Arc::new)) {
        Ok(gpu) => Some(Arc::clone(gpu)),
        Err(e) => {
            assert!(
                std::env::var("LOSSKIT_REQUIRE_GPU").as_deref() != Ok("1"),
                "LOSSKIT_REQUIRE_GPU=1 but no usable CUDA device: {e}"
            );
            println!("skipped: no CUDA device ({e})");
            None
        }
    }
}

/// Three overlapping classes in 4-D (60 / 30 / 12 rows), deterministic: a smooth pseudo-random spread around centres.
fn blobs() -> (Array2<f64>, Array1<i64>) {
    let centres = [[0.0, 1.0, 0.5, -0.5], [1.0, -0.5, 0.0, 0.5], [-1.0, -0.5, -0.5, 0.0]];
    let (mut x, mut y) = (Vec::new(), Vec::new());
    let mut t = 0.0_f64;
    for (k, n) in [60, 30, 12].into_iter().enumerate() {
        for _ in 0..n {
            for (j, c) in centres[k].iter().enumerate() {
                t += 1.0;
                x.push(c + 0.9 * (t * (1.3 + j as f64 * 0.7)).sin());
            }
            y.push(k as i64);
        }
    }
    (Array2::from_shape_vec((y.len(), 4), x).unwrap(), Array1::from(y))
}

fn accuracy(model: &dyn Model, x: &Array2<f64>, y: &Array1<i64>) -> f64 {
    let p = model.predict(x.view()).unwrap();
    p.iter().zip(y).filter(|(a, b)| a == b).count() as f64 / y.len() as f64
}

/// One training's history, final parameters and training-set accuracy.
type Trained = (History, Vec<f64>, f64);

/// Trains `name` (registry parameters `params`) on the CPU and on the GPU from the same initial model.
fn both(gpu: &Arc<Gpu>, t: &Trainer, name: &str, params: &[(&str, &str)], balanced: bool) -> (Trained, Trained) {
    let (x, y) = blobs();
    let pairs: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let entry = registry::find(name).unwrap();
    let cpu_loss = (entry.build)(&entry.params(&pairs).unwrap()).unwrap().class.unwrap();
    let cw = balanced.then_some(losskit::models::ClassWeights::Balanced);
    let mut m_cpu = t.build_model(4, 3).unwrap();
    let h_cpu = t.fit(m_cpu.as_mut(), x.view(), y.view(), cpu_loss.as_ref(), None, cw.as_ref()).unwrap();
    let mut m_gpu = t.build_model(4, 3).unwrap();
    let mut backend = CudaBackend::registered(Arc::clone(gpu), name, &pairs).unwrap();
    let h_gpu = t.fit_on(m_gpu.as_mut(), x.view(), y.view(), None, cw.as_ref(), &mut backend).unwrap();
    let acc = (accuracy(m_cpu.as_ref(), &x, &y), accuracy(m_gpu.as_ref(), &x, &y));
    ((h_cpu, m_cpu.params().to_vec(), acc.0), (h_gpu, m_gpu.params().to_vec(), acc.1))
}

#[test]
fn one_full_batch_sgd_step_matches_the_cpu_step() {
    let Some(gpu) = gpu() else { return };
    // One step from the same weights: the products, the loss gradient and the update in f32 against f64.
    for model in [ModelSpec::Linear, ModelSpec::Mlp { hidden: 8, activation: Activation::Tanh }] {
        let t = Trainer::new()
            .epochs(1)
            .batch_size(1000)
            .model(model)
            .optimizer(OptimizerConfig::Sgd(Sgd::new().lr(0.5).momentum(0.9).weight_decay(0.01)));
        let ((hc, pc, _), (hg, pg, _)) = both(&gpu, &t, "cross-entropy", &[("label_smoothing", "0.1")], true);
        assert!((hc.epoch_loss[0] - hg.epoch_loss[0]).abs() < 1e-5, "{model}: {hc:?} vs {hg:?}");
        for (a, b) in pc.iter().zip(&pg) {
            assert!((a - b).abs() < 1e-5 * (1.0 + a.abs()), "{model}: cpu {a} vs gpu {b}");
        }
    }
}

#[test]
fn every_gpu_loss_follows_the_cpu_loss_curve() {
    let Some(gpu) = gpu() else { return };
    let t = Trainer::new()
        .epochs(5)
        .batch_size(16)
        .seed(3)
        .model(ModelSpec::Mlp { hidden: 16, activation: Activation::Relu })
        .optimizer(OptimizerConfig::Adam(Adam::new().lr(1e-2).weight_decay(1e-2)));
    let cases: &[(&str, &[(&str, &str)])] = &[
        ("cross-entropy", &[]),
        ("focal", &[("gamma", "2")]),
        ("generalized-cross-entropy", &[]),
        ("mae", &[]),
        ("sum-exponential", &[]),
        ("comp-sum", &[("psi", "ce")]),
        ("ldr-kl", &[]),
        ("z-loss", &[]),
    ];
    assert_eq!(cases.len(), TrainLoss::NAMES.len());
    for &(name, params) in cases {
        for balanced in [false, true] {
            let ((hc, _, _), (hg, _, _)) = both(&gpu, &t, name, params, balanced);
            for (e, (a, b)) in hc.epoch_loss.iter().zip(&hg.epoch_loss).enumerate() {
                // f32 against f64, Adam amplifying rounding over 35 steps: loose, but far below a training mistake.
                assert!((a - b).abs() <= 2e-3 * (1.0 + a.abs()), "{name} balanced={balanced} epoch {e}: {a} vs {b}");
            }
            assert_eq!(
                (hc.n_train, hc.class_counts, hc.class_weights),
                (hg.n_train, hg.class_counts, hg.class_weights)
            );
        }
    }
}

#[test]
fn a_longer_training_reaches_the_cpu_accuracy() {
    let Some(gpu) = gpu() else { return };
    let t = Trainer::new()
        .epochs(40)
        .batch_size(16)
        .seed(5)
        .model(ModelSpec::Mlp { hidden: 16, activation: Activation::Relu });
    let ((hc, _, acc_c), (hg, _, acc_g)) = both(&gpu, &t, "focal", &[("gamma", "2")], true);
    println!("cpu: accuracy {acc_c:.4}, loss {:?}", hc.epoch_loss.last());
    println!("gpu: accuracy {acc_g:.4}, loss {:?}", hg.epoch_loss.last());
    assert!((acc_c - acc_g).abs() <= 0.05, "cpu {acc_c} vs gpu {acc_g}");
    let (lc, lg) = (hc.epoch_loss[39], hg.epoch_loss[39]);
    assert!((lc - lg).abs() <= 0.05 * lc.abs().max(0.05), "final loss cpu {lc} vs gpu {lg}");
    assert!(lg < 0.5 * hg.epoch_loss[0], "the GPU run learns: {:?}", hg.epoch_loss);
}

fn dataset() -> Dataset {
    let (x, y) = blobs();
    let features = (0..4).map(|j| format!("f{j}")).collect();
    Dataset::new("blobs", x, y, features, vec!["a".into(), "b".into(), "c".into()]).unwrap()
}

#[test]
fn the_arena_on_the_gpu_scores_as_the_arena_on_the_cpu() {
    let Some(gpu) = gpu() else { return };
    let cfg = ArenaConfig::new(dataset())
        .runs(vec![
            RunSpec::loss("cross-entropy"),
            RunSpec::loss("cross-entropy").balanced(),
            RunSpec::loss("cross-entropy").sampler("random-over", Vec::new()),
            RunSpec::loss("ldr-kl").balanced(),
        ])
        .seeds(vec![0, 1, 2])
        .epochs(30)
        .batch_size(16);
    let cpu = arena::run(&cfg, &mut |_, _| {}).unwrap();
    let device = CudaArena::with_gpu(gpu);
    let on = arena::run_on(&cfg, &device, &mut |_, _| {}).unwrap();
    println!("{cpu}\n{on}");
    assert!(on.device.starts_with("cuda:0"), "{}", on.device);
    assert_eq!((on.n_train, on.n_test, &on.minority), (cpu.n_train, cpu.n_test, &cpu.minority));
    for (c, g) in cpu.rows.iter().zip(&on.rows) {
        assert_eq!(c.label, g.label);
        // Mean over 3 seeds of 31 held-out rows: one or two rows may flip between f32 and f64.
        assert!((c.mean.accuracy - g.mean.accuracy).abs() <= 0.05, "{}: {:?} vs {:?}", c.label, c.mean, g.mean);
        assert!((c.mean.balanced_accuracy - g.mean.balanced_accuracy).abs() <= 0.08, "{}", c.label);
    }
}

#[test]
fn losses_without_a_gpu_kernel_are_refused_by_name() {
    let Some(gpu) = gpu() else { return };
    let cfg =
        ArenaConfig::new(dataset()).runs(vec![RunSpec::loss("cross-entropy"), RunSpec::loss("dice")]).seeds(vec![0]);
    let mut calls = 0;
    let e = arena::run_on(&cfg, &CudaArena::with_gpu(gpu), &mut |_, _| calls += 1).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, losskit::Error::Input { .. }), "{e:?}");
    assert!(text.starts_with("loss \"dice\" has no GPU training kernel"), "{text}");
    assert!(text.contains("cross-entropy, focal, generalized-cross-entropy, mae"), "{text}");
    assert_eq!(calls, 0, "refused before any training");
}
