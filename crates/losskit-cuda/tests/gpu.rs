//! Integration tests of losskit-cuda, one binary so that `cargo xtask gpu-bundle` can carry it to a GPU machine:
//!
//! * NVRTC compiles every kernel (needs libnvrtc, no GPU; skipped with a message when NVRTC is absent unless
//!   `LOSSKIT_REQUIRE_NVRTC=1`).
//! * The kernels' logic matches an f64 oracle under a CPU emulation of CUDA (tests/emu; needs a C++20 compiler).
//! * On a GPU, every result matches the CPU `CrossEntropy` of losskit-losses on the same config (each test prints
//!   `skipped: no CUDA device` and passes without one, unless `LOSSKIT_REQUIRE_GPU=1`).

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use half::{bf16, f16};
use losskit_cuda::{
    Error, Gpu, GpuFloat, GpuLabel, compile_cubin, compile_ptx, driver_available, kernel_sources, nvrtc_available,
};
use losskit_losses::{ClassLoss, CrossEntropy, LossOutput, Reduction, Targets};
use ndarray::{Array1, Array2, Ix2};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

fn required(var: &str) -> bool {
    std::env::var(var).as_deref() == Ok("1")
}

/// The shared device, or `None` (after printing the skip line) when there is none.
fn gpu() -> Option<&'static Gpu> {
    static GPU: OnceLock<Result<Gpu, Error>> = OnceLock::new();
    match GPU.get_or_init(|| Gpu::new(0)) {
        Ok(gpu) => Some(gpu),
        Err(e) => {
            assert!(!required("LOSSKIT_REQUIRE_GPU"), "LOSSKIT_REQUIRE_GPU=1 but no usable CUDA device: {e}");
            println!("skipped: no CUDA device ({e})");
            None
        }
    }
}

#[test]
fn every_kernel_compiles_with_nvrtc() {
    if !nvrtc_available() {
        assert!(
            !required("LOSSKIT_REQUIRE_NVRTC"),
            "LOSSKIT_REQUIRE_NVRTC=1 but libnvrtc cannot be loaded (LD_LIBRARY_PATH={:?})",
            std::env::var("LD_LIBRARY_PATH").unwrap_or_default()
        );
        println!("skipped: NVRTC not found");
        return;
    }
    assert!(!kernel_sources().is_empty());
    for (name, source) in kernel_sources() {
        for arch in [None, Some("compute_80"), Some("compute_90")] {
            let ptx = compile_ptx(name, source, arch).unwrap_or_else(|e| panic!("{name} for {arch:?}: {e}"));
            let text = ptx.to_src();
            // Every kernel the host launches must be a PTX entry point.
            let kernels = source.lines().filter_map(|l| l.strip_prefix("LK_CE_KERNEL(")?.split(',').next());
            for kernel in kernels.chain(["ce_reduce"]) {
                assert!(text.contains(&format!(".entry {kernel}(")), "{name}: no entry {kernel} in the PTX");
            }
        }
        // Machine code, which is what a Gpu loads first (sm_80: A100, sm_90: H100/H200).
        for arch in ["sm_80", "sm_90"] {
            let cubin = compile_cubin(name, source, arch).unwrap_or_else(|e| panic!("{name} for {arch}: {e}"));
            assert!(cubin.starts_with(b"\x7fELF") && cubin.len() > 1024, "{name} for {arch}: not an ELF cubin");
        }
    }
    assert!(matches!(compile_cubin("x", "extern \"C\" __global__ void k() {}", "sm_1"), Err(Error::Device { .. })));
    // A kernel that does not compile is a device error carrying NVRTC's log.
    let broken = compile_ptx("broken", "extern \"C\" __global__ void k() { undeclared(); }", None);
    assert!(matches!(broken, Err(Error::Device { ref what }) if what.contains("undeclared")), "{broken:?}");
}

#[test]
fn gpu_new_reports_absence_as_an_error() {
    // With a driver and a device, ordinal 0 must open; with less, it must be an Err, never a panic.
    let has_device = driver_available() && Gpu::device_count().is_ok_and(|n| n > 0);
    match Gpu::new(0) {
        Ok(gpu) => assert!(has_device, "Gpu::new(0) succeeded without a device ({:?})", gpu.name()),
        Err(e) => {
            assert!(!has_device, "a device is present but Gpu::new(0) failed: {e}");
            assert!(matches!(e, Error::Device { .. }), "{e:?}");
        }
    }
    assert!(matches!(Gpu::new(usize::MAX), Err(Error::Device { .. })));
}

/// Builds tests/emu/cross_entropy.cpp with the kernel source and runs it: every case must match the f64 oracle.
#[test]
fn kernels_match_an_f64_oracle_under_cpu_emulation() {
    let emu = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/emu");
    if !emu.join("cross_entropy.cpp").exists() {
        println!("skipped: emulator sources not present (a copied test binary)");
        return;
    }
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "g++".into());
    if Command::new(&cxx).arg("--version").output().is_err() {
        println!("skipped: no C++ compiler ({cxx})");
        return;
    }
    let dir = std::env::temp_dir().join(format!("losskit-emu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let source = kernel_sources().iter().find(|(n, _)| *n == "cross_entropy").unwrap().1;
    // The PTX-only LkF16 struct is replaced by shim.h's.
    let mut kept = Vec::new();
    let mut skipping = false;
    for line in source.lines() {
        if line.starts_with("struct LkF16 {") {
            skipping = true;
        }
        if !skipping {
            kept.push(line);
        }
        if skipping && line == "};" {
            skipping = false;
        }
    }
    std::fs::write(dir.join("kernel.cu"), kept.join("\n")).unwrap();
    let exe = dir.join("cross_entropy_emu");
    let out = Command::new(&cxx)
        .args(["-std=c++20", "-O2", "-pthread", "-I"])
        .arg(&dir)
        .arg("-o")
        .arg(&exe)
        .arg(emu.join("cross_entropy.cpp"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{cxx} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let run = Command::new(&exe).output().unwrap();
    let report = String::from_utf8_lossy(&run.stdout);
    println!("{report}");
    let _ = std::fs::remove_dir_all(&dir);
    let all_ok = report.lines().any(|l| l.starts_with("0 of "));
    assert!(run.status.success() && all_ok, "emulated kernels disagree with the oracle");
}

// ---------------------------------------------------------------------------------------------------------------
// GPU against CPU.

fn logits<T: GpuFloat>(n: usize, c: usize, spread: f32, seed: u64) -> Array2<T> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    Array2::from_shape_fn((n, c), |(i, _)| T::from_f32(rng.random_range(-spread..spread) + 0.25 * i as f32))
}

fn labels(n: usize, c: usize, ignore_every: usize, seed: u64) -> Array1<i64> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x5eed);
    Array1::from_shape_fn(n, |i| {
        if ignore_every > 0 && i % ignore_every == 1 { -100 } else { rng.random_range(0..c as i64) }
    })
}

fn sample_weights(n: usize, seed: u64) -> Array1<f32> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x3e1);
    Array1::from_shape_fn(n, |_| rng.random_range(0.0..2.0))
}

fn class_weights(c: usize, seed: u64) -> Vec<f64> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0xc1a55);
    (0..c).map(|_| f64::from(rng.random_range(0.25_f32..3.0))).collect()
}

/// Tolerances of one element type: relative, and absolute as a fraction of the largest reference value.
fn tolerance<T: GpuFloat>() -> (f64, f64) {
    match T::NAME {
        "f32" => (1e-5, 1e-7),
        "bf16" => (1.0 / 128.0, 1e-6), // one bf16 rounding (2^-9) on top of f32 arithmetic
        _ => (1.0 / 512.0, 1e-5),      // f16, whose subnormals hold tiny gradients coarsely
    }
}

fn close(what: &str, got: &[f64], want: &[f64], rel: f64, abs_frac: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let tol = rel * w.abs() + abs_frac * scale;
        assert!((g - w).abs() <= tol, "{what}[{i}]: gpu {g:e}, cpu {w:e} (tolerance {tol:e})");
    }
}

/// Runs the GPU and the CPU (f64, on the same values) and compares value, per-sample losses and gradient.
fn check_against_cpu<T: GpuFloat, L: GpuLabel + Into<i64>>(
    gpu: &Gpu,
    loss: &CrossEntropy,
    x: &Array2<T>,
    t: &Array1<L>,
    w: Option<&Array1<f32>>,
) -> LossOutput<T, Ix2> {
    let out = gpu.cross_entropy(loss, x.view(), t.view(), w.map(|w| w.view()), true).unwrap();
    let x64 = x.mapv(|v| f64::from(v.to_f32()));
    let t64 = t.mapv(Into::into);
    let w64 = w.map(|w| w.mapv(f64::from));
    let cpu = loss.compute(x64.view(), Targets::Hard(t64.view()), w64.as_ref().map(|w| w.view()), true).unwrap();
    let (rel, abs_frac) = tolerance::<T>();
    let shape = format!("{} {}x{}", T::NAME, x.nrows(), x.ncols());
    close(&format!("{shape} value"), &[f64::from(out.value.to_f32())], &[cpu.value], rel, 0.0);
    let to64 = |a: &Array1<T>| a.iter().map(|v| f64::from(v.to_f32())).collect::<Vec<_>>();
    let ps = out.per_sample.as_ref().expect("per-sample losses");
    close(&format!("{shape} per_sample"), &to64(ps), &cpu.per_sample.clone().unwrap().to_vec(), rel, 1e-7);
    let g = out.grad.as_ref().expect("gradient");
    assert_eq!(g.dim(), x.dim());
    let g64: Vec<f64> = g.iter().map(|v| f64::from(v.to_f32())).collect();
    close(&format!("{shape} grad"), &g64, &cpu.grad.unwrap().iter().copied().collect::<Vec<_>>(), rel, abs_frac);
    out
}

#[test]
fn f32_matches_cpu_on_narrow_rows() {
    let Some(gpu) = gpu() else { return };
    // One warp per row: C = 10 and 33 (scalar path), 1000 (vector path).
    check_against_cpu(gpu, &CrossEntropy::new(), &logits::<f32>(64, 10, 3.0, 1), &labels(64, 10, 0, 1), None);
    let loss = CrossEntropy::new().label_smoothing(0.1).class_weights(class_weights(1000, 2)).reduction(Reduction::Sum);
    check_against_cpu(gpu, &loss, &logits::<f32>(200, 1000, 4.0, 2), &labels(200, 1000, 3, 2), None);
    let loss = CrossEntropy::new().temperature(0.5).label_smoothing(0.2);
    let t32 = labels(37, 33, 4, 3).mapv(|v| v as i32);
    check_against_cpu(gpu, &loss, &logits::<f32>(37, 33, 2.0, 3), &t32, Some(&sample_weights(37, 3)));
}

#[test]
fn f32_matches_cpu_on_wide_rows() {
    let Some(gpu) = gpu() else { return };
    // One block per row: C = 50257 (odd: scalar path), 4096 and 131072 (vector path).
    let loss = CrossEntropy::new().label_smoothing(0.1).reduction(Reduction::None);
    check_against_cpu(gpu, &loss, &logits::<f32>(5, 50_257, 5.0, 4), &labels(5, 50_257, 2, 4), None);
    let loss = CrossEntropy::new().class_weights(class_weights(4096, 5)).temperature(2.0);
    check_against_cpu(gpu, &loss, &logits::<f32>(9, 4096, 3.0, 5), &labels(9, 4096, 0, 5), Some(&sample_weights(9, 5)));
    check_against_cpu(gpu, &CrossEntropy::new(), &logits::<f32>(3, 131_072, 3.0, 6), &labels(3, 131_072, 0, 6), None);
}

#[test]
fn bf16_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    check_against_cpu(gpu, &CrossEntropy::new(), &logits::<bf16>(64, 1000, 3.0, 7), &labels(64, 1000, 0, 7), None);
    let loss = CrossEntropy::new().label_smoothing(0.1);
    check_against_cpu(gpu, &loss, &logits::<bf16>(8, 32_003, 3.0, 8), &labels(8, 32_003, 3, 8), None);
    let loss = CrossEntropy::new().class_weights(class_weights(131_072, 9)).label_smoothing(0.05);
    check_against_cpu(gpu, &loss, &logits::<bf16>(4, 131_072, 3.0, 9), &labels(4, 131_072, 0, 9), None);
}

#[test]
fn f16_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    let loss = CrossEntropy::new().label_smoothing(0.1).class_weights(class_weights(77, 10));
    check_against_cpu(gpu, &loss, &logits::<f16>(16, 77, 2.0, 10), &labels(16, 77, 5, 10), None);
    check_against_cpu(gpu, &CrossEntropy::new(), &logits::<f16>(6, 2048, 2.0, 11), &labels(6, 2048, 0, 11), None);
}

#[test]
fn extreme_logits_stay_finite_and_match() {
    let Some(gpu) = gpu() else { return };
    let mut x = logits::<f32>(16, 40, 1.0, 12);
    for i in 0..16 {
        x[[i, i % 40]] = if i % 2 == 0 { 1e4 } else { -1e4 };
        x[[i, (i + 7) % 40]] += 5e3;
    }
    let out = check_against_cpu(gpu, &CrossEntropy::new().label_smoothing(0.1), &x, &labels(16, 40, 0, 12), None);
    assert!(out.value.is_finite() && out.grad.unwrap().iter().all(|v| v.is_finite()));
}

#[test]
fn one_class_rows_have_zero_loss_and_gradient() {
    let Some(gpu) = gpu() else { return };
    let x = logits::<f32>(9, 1, 3.0, 13);
    let out = gpu.cross_entropy(
        &CrossEntropy::new().label_smoothing(0.3),
        x.view(),
        Array1::<i64>::zeros(9).view(),
        None,
        true,
    );
    let out = out.unwrap();
    assert_eq!(out.value, 0.0);
    assert!(out.grad.unwrap().iter().all(|&g| g == 0.0));
}

#[test]
fn without_grad_the_value_is_the_same_and_no_gradient_is_returned() {
    let Some(gpu) = gpu() else { return };
    let (x, t) = (logits::<bf16>(50, 3000, 3.0, 14), labels(50, 3000, 4, 14));
    let loss = CrossEntropy::new().label_smoothing(0.1);
    let with = gpu.cross_entropy(&loss, x.view(), t.view(), None, true).unwrap();
    let without = gpu.cross_entropy(&loss, x.view(), t.view(), None, false).unwrap();
    assert!(without.grad.is_none() && with.grad.is_some());
    assert_eq!(with.value.to_bits(), without.value.to_bits());
    assert_eq!(with.per_sample, without.per_sample);
}

#[test]
fn results_are_bitwise_reproducible() {
    let Some(gpu) = gpu() else { return };
    let (x, t) = (logits::<f32>(300, 20_000, 3.0, 15), labels(300, 20_000, 7, 15));
    let loss = CrossEntropy::new().label_smoothing(0.1);
    let a = gpu.cross_entropy(&loss, x.view(), t.view(), None, true).unwrap();
    let mut batch = gpu.cross_entropy_batch(&loss, x.view(), t.view(), None).unwrap();
    for _ in 0..3 {
        batch.launch(true).unwrap();
    }
    let b = batch.output().unwrap();
    assert_eq!(a.value.to_bits(), b.value.to_bits());
    assert_eq!(a.per_sample, b.per_sample);
    assert_eq!(a.grad, b.grad);
}

#[test]
fn batch_reports_misuse_and_bad_input_as_errors() {
    let Some(gpu) = gpu() else { return };
    let x = logits::<f32>(4, 5, 1.0, 16);
    let t = labels(4, 5, 0, 16);
    let batch = gpu.cross_entropy_batch(&CrossEntropy::new(), x.view(), t.view(), None).unwrap();
    assert!(matches!(batch.output(), Err(Error::Input { .. })));
    assert_eq!(batch.bytes_moved(true), 4 * 5 * 4 * 2 + 4 * (8 + 4));
    let bad = Array1::from(vec![0_i64, 1, 5, 2]);
    let err = gpu.cross_entropy(&CrossEntropy::new(), x.view(), bad.view(), None, true).unwrap_err();
    assert!(matches!(err, Error::LabelOutOfRange { label: 5, index: 2, .. }), "{err:?}");
}

#[test]
fn timing_reports_one_positive_time_per_launch() {
    let Some(gpu) = gpu() else { return };
    let (x, t) = (logits::<bf16>(256, 4096, 3.0, 17), labels(256, 4096, 0, 17));
    let mut batch = gpu.cross_entropy_batch(&CrossEntropy::new(), x.view(), t.view(), None).unwrap();
    let times = batch.time(true, 1, 5).unwrap();
    assert_eq!(times.len(), 5);
    assert!(times.iter().all(|&ms| ms > 0.0 && ms.is_finite()), "{times:?}");
}
