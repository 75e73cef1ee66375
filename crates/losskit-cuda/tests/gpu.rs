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
    Error, Gpu, GpuBinaryLoss, GpuClassLoss, GpuFloat, GpuLabel, compile_cubin, compile_ptx, driver_available,
    kernel_sources, nvrtc_available,
};
use losskit_losses::{BinaryLoss, ClassLoss, CrossEntropy, LossOutput, Reduction, Targets};
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
            let kernels = source.lines().filter_map(|l| {
                [
                    "LK_CE_KERNEL(",
                    "LK_SM_KERNEL(",
                    "LK_BIN_KERNEL(",
                    "LK_LCE_KERNEL(",
                    "LK_ANY_KERNEL(",
                    "LK_TRAIN_KERNEL(",
                ]
                .iter()
                .find_map(|p| l.strip_prefix(p))?
                .split(',')
                .next()
            });
            let extra = match *name {
                "cross_entropy" => vec!["ce_reduce"],
                "pairwise" => pairwise_knn::PAIRWISE_KERNELS.to_vec(),
                "knn" => vec!["knn_select"],
                _ => vec![],
            };
            let mut count = 0;
            for kernel in kernels.chain(extra) {
                count += 1;
                assert!(text.contains(&format!(".entry {kernel}(")), "{name}: no entry {kernel} in the PTX");
            }
            assert!(count >= 6 || *name == "knn", "{name}: only {count} kernels found");
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
    std::fs::write(dir.join("kernel.cu"), emulable_source("cross_entropy")).unwrap();
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

/// Kernel file `name` without its PTX-only LkF16 struct, which the emulator's shim.h replaces.
fn emulable_source(name: &str) -> String {
    let source = kernel_sources().iter().find(|(n, _)| *n == name).unwrap().1;
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
    kept.join("\n")
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
    close_with_floor(what, got, want, rel, abs_frac, 0.0);
}

/// As [`close`], plus an absolute floor (the spacing of subnormals of a 16-bit output type).
fn close_with_floor(what: &str, got: &[f64], want: &[f64], rel: f64, abs_frac: f64, floor: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let tol = rel * w.abs() + abs_frac * scale + floor;
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

// ---------------------------------------------------------------------------------------------------------------
// The softmax family (kernels/softmax_family.cu): emulated on the CPU and on a GPU, both against losskit-losses.

/// Raw little-endian bytes of one element (f32, or the 16 bits of a bf16 / f16).
fn elem_bytes<T: GpuFloat>(v: T) -> Vec<u8> {
    let f = v.to_f32();
    match T::NAME {
        "f32" => f.to_le_bytes().to_vec(),
        "bf16" => bf16::from_f32(f).to_bits().to_le_bytes().to_vec(),
        _ => f16::from_f32(f).to_bits().to_le_bytes().to_vec(),
    }
}

fn elem_from_bytes<T: GpuFloat>(b: &[u8]) -> f64 {
    match T::NAME {
        "f32" => f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        "bf16" => f64::from(bf16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32()),
        _ => f64::from(f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32()),
    }
}

/// The emulator of tests/emu/family.cpp around kernel file `file`, built once per test process (`None` when it cannot
/// be built here).
fn family_emulator() -> Option<&'static Path> {
    static EXE: OnceLock<Option<std::path::PathBuf>> = OnceLock::new();
    EXE.get_or_init(|| build_emulator("softmax_family")).as_deref()
}

fn binary_emulator() -> Option<&'static Path> {
    static EXE: OnceLock<Option<std::path::PathBuf>> = OnceLock::new();
    EXE.get_or_init(|| build_emulator("binary")).as_deref()
}

fn build_emulator(file: &str) -> Option<std::path::PathBuf> {
    {
        let emu = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/emu");
        if !emu.join("family.cpp").exists() {
            println!("skipped: emulator sources not present (a copied test binary)");
            return None;
        }
        let cxx = std::env::var("CXX").unwrap_or_else(|_| "g++".into());
        if Command::new(&cxx).arg("--version").output().is_err() {
            println!("skipped: no C++ compiler ({cxx})");
            return None;
        }
        let dir = std::env::temp_dir().join(format!("losskit-{file}-emu-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("kernel.cu"), emulable_source(file)).unwrap();
        std::fs::copy(emu.join("shim.h"), dir.join("shim.h")).unwrap();
        let exe = dir.join("family_emu");
        let out = Command::new(&cxx)
            .args(["-std=c++20", "-O1", "-pthread", "-I"])
            .arg(&dir)
            .arg("-o")
            .arg(&exe)
            .arg(emu.join("family.cpp"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{cxx} failed:\n{}", String::from_utf8_lossy(&out.stderr));
        Some(exe)
    }
}

/// One problem of the softmax family: inputs, the loss config and what to compare.
struct FamilyCase {
    n: usize,
    c: usize,
    spread: f32,
    sample_weights: bool,
    ignore_every: usize,
    misalign: bool,
    grad: bool,
    seed: u64,
}

impl FamilyCase {
    fn new(n: usize, c: usize, seed: u64) -> Self {
        FamilyCase { n, c, spread: 3.0, sample_weights: false, ignore_every: 0, misalign: false, grad: true, seed }
    }
    fn spread(mut self, s: f32) -> Self {
        self.spread = s;
        self
    }
    fn weighted(mut self) -> Self {
        self.sample_weights = true;
        self
    }
    fn ignore(mut self, every: usize) -> Self {
        self.ignore_every = every;
        self
    }
    fn misaligned(mut self) -> Self {
        self.misalign = true;
        self
    }
    fn no_grad(mut self) -> Self {
        self.grad = false;
        self
    }
}

/// Outputs of one run (GPU or emulated), widened to f64.
struct FamilyOut {
    value: f64,
    per_sample: Vec<f64>,
    grad: Option<Vec<f64>>,
}

/// Compares `got` with the CPU implementation of `loss` in f64 on the same (rounded) inputs.
/// Losses come back in the input's type, as PyTorch's do: one beyond its range (f16 tops out at 65504) is ±∞ there.
/// Checks that the GPU gave exactly that ∞ wherever the CPU value overflows T, and sets those entries to 0 on both
/// sides so that the tolerance comparison that follows covers the rest.
fn set_aside_overflow<T: GpuFloat>(what: &str, got: &mut [f64], want: &mut [f64]) {
    for (i, (g, w)) in got.iter_mut().zip(want.iter_mut()).enumerate() {
        let in_type = f64::from(T::from_f64(*w).to_f32());
        if in_type.is_infinite() {
            assert_eq!(*g, in_type, "{what}[{i}]: cpu {w:e} overflows {}", T::NAME);
            (*g, *w) = (0.0, 0.0);
        }
    }
}

fn compare_family<T: GpuFloat, K: ClassLoss<f64>>(
    what: &str,
    loss: &K,
    x: &Array2<T>,
    t: &Array1<i64>,
    w: Option<&Array1<f32>>,
    got: &FamilyOut,
) {
    let x64 = x.mapv(|v| f64::from(v.to_f32()));
    let w64 = w.map(|w| w.mapv(f64::from));
    let cpu = loss.compute(x64.view(), Targets::Hard(t.view()), w64.as_ref().map(|w| w.view()), true).unwrap();
    let (rel, abs_frac) = tolerance::<T>();
    // Per-row losses and value come from f32 arithmetic whatever the input type, and are returned in the input's
    // type (as PyTorch does): one rounding of a 16-bit type on top.
    let lrel = if T::NAME == "f32" { 2e-5 } else { rel };
    let mut ps = cpu.per_sample.clone().unwrap().to_vec();
    let mut got_ps = got.per_sample.clone();
    set_aside_overflow::<T>(&format!("{what} per_sample"), &mut got_ps, &mut ps);
    let pmax = ps.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    let per_sample_floor = if T::NAME == "f32" { 1e-6 } else { 1e-5 };
    close(&format!("{what} per_sample"), &got_ps, &ps, lrel, per_sample_floor * pmax.max(1e-3) / pmax.max(1e-300));
    // A value that is a difference of O(1) terms (LDR-KL, for one) carries their f32 rounding: a few ε absolute.
    let (mut gv, mut cv) = ([got.value], [cpu.value]);
    set_aside_overflow::<T>(&format!("{what} value"), &mut gv, &mut cv);
    close_with_floor(&format!("{what} value"), &gv, &cv, lrel, 0.0, 2f64.powi(-21));
    if let Some(g) = &got.grad {
        let want: Vec<f64> = cpu.grad.unwrap().iter().copied().collect();
        // f16 holds values below 2^-14 as subnormals spaced 2^-24 apart.
        let floor = if T::NAME == "f16" { 2f64.powi(-25) } else { 0.0 };
        close_with_floor(&format!("{what} grad"), g, &want, rel.max(2e-5), abs_frac.max(1e-6), floor);
    }
}

fn family_inputs<T: GpuFloat>(
    spec_ignore: Option<i64>,
    case: &FamilyCase,
) -> (Array2<T>, Array1<i64>, Option<Array1<f32>>) {
    let x = logits::<T>(case.n, case.c, case.spread, case.seed);
    let mut t = labels(case.n, case.c, case.ignore_every, case.seed);
    if let Some(ignore) = spec_ignore {
        t.mapv_inplace(|v| if v == -100 { ignore } else { v });
    } else {
        t.mapv_inplace(|v| if v == -100 { 0 } else { v });
    }
    let w = case.sample_weights.then(|| sample_weights(case.n, case.seed));
    (x, t, w)
}

/// Runs `loss` on `case` in the emulator and compares with the CPU. Returns the report line.
fn emulate_family<T: GpuFloat, L: GpuLabel + TryFrom<i64>, K: GpuClassLoss + ClassLoss<f64>>(
    exe: &Path,
    loss: &K,
    case: &FamilyCase,
) -> String
where
    <L as TryFrom<i64>>::Error: std::fmt::Debug,
{
    let spec = loss.kernel_spec().unwrap();
    let (x, t, w) = family_inputs::<T>(spec.ignore_index, case);
    let (n, c) = (case.n, case.c);
    let warp = c <= 1024;
    let (grid, block) = if warp { (n.div_ceil(8), 256) } else { (n, if c >= 4096 { 512 } else { 256 }) };
    let name = format!("{}_{}_{}_{}", spec.mode, T::NAME, L::NAME, if warp { "warp" } else { "block" });
    let cw: Option<Vec<f32>> = spec.class_weights.as_ref().map(|v| v.iter().map(|&v| v as f32).collect());
    let mut denom = 0.0_f64;
    for (i, &y) in t.iter().enumerate() {
        if Some(y) != spec.ignore_index {
            denom +=
                w.as_ref().map_or(1.0, |w| f64::from(w[i])) * cw.as_ref().map_or(1.0, |cw| f64::from(cw[y as usize]));
        }
    }
    let scale = if spec.reduction == Reduction::Mean { 1.0 / denom } else { 1.0 };

    let mut buf = Vec::new();
    buf.extend((name.len() as u32).to_le_bytes());
    buf.extend(name.as_bytes());
    let elem = if T::NAME == "f32" { 4 } else { 2 };
    let lsize = if L::NAME == "i64" { 8 } else { 4 };
    let header = [
        n as i32,
        c as i32,
        elem,
        lsize,
        i32::from(cw.is_some()),
        i32::from(w.is_some()),
        i32::from(spec.ignore_index.is_some()),
        i32::from(case.grad),
        grid as i32,
        block,
        i32::from(case.misalign),
    ];
    header.iter().for_each(|h| buf.extend(h.to_le_bytes()));
    buf.extend(spec.ignore_index.unwrap_or(0).to_le_bytes());
    for p in [spec.params[0], spec.params[1], spec.params[2], scale as f32] {
        buf.extend(p.to_le_bytes());
    }
    x.iter().for_each(|&v| buf.extend(elem_bytes(v)));
    for &y in &t {
        if lsize == 8 { buf.extend(y.to_le_bytes()) } else { buf.extend((y as i32).to_le_bytes()) }
    }
    cw.iter().flatten().for_each(|v| buf.extend(v.to_le_bytes()));
    w.iter().flatten().for_each(|v| buf.extend(v.to_le_bytes()));
    let dir = exe.parent().unwrap();
    let tag = format!("{name}-{}-{}", case.seed, std::thread::current().name().unwrap_or("t").replace("::", "_"));
    let (inp, outp) = (dir.join(format!("{tag}.in")), dir.join(format!("{tag}.out")));
    std::fs::write(&inp, &buf).unwrap();
    let run = Command::new(exe).arg(&inp).arg(&outp).output().unwrap();
    assert!(run.status.success(), "{name}: emulator failed: {}", String::from_utf8_lossy(&run.stderr));
    let out = std::fs::read(&outp).unwrap();
    let _ = std::fs::remove_file(&inp);
    let _ = std::fs::remove_file(&outp);
    let expected_len = 4 * n + if case.grad { n * c * elem as usize } else { 0 } + 1;
    assert_eq!(out.len(), expected_len, "{name}: output size");
    let per_sample: Vec<f64> =
        out[..4 * n].chunks_exact(4).map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))).collect();
    let grad = case.grad.then(|| {
        out[4 * n..4 * n + n * c * elem as usize].chunks_exact(elem as usize).map(elem_from_bytes::<T>).collect()
    });
    assert_eq!(out[expected_len - 1], 0, "{name}: wrote outside its buffers");
    let value = per_sample.iter().sum::<f64>() * scale;
    let what = format!("emulated {name} n={n} c={c} seed={}", case.seed);
    compare_family(&what, loss, &x, &t, w.as_ref(), &FamilyOut { value, per_sample, grad });
    let _ = L::try_from(0).unwrap();
    format!("ok   {what} (misalign={}, grad={}, weights={})", case.misalign, case.grad, case.sample_weights)
}

/// Every mode of softmax_family.cu, both layouts, vector and scalar paths, every element and label type, against the
/// CPU configs of losskit-losses.
#[test]
fn softmax_family_matches_cpu_under_cpu_emulation() {
    use losskit_losses::{CompSum, Focal, GeneralizedCrossEntropy, LdrKl, Mae, Psi, ScoreNorm, SumExponential, ZLoss};
    let Some(exe) = family_emulator() else { return };
    let mut lines = Vec::new();
    let cw = class_weights(1000, 21);
    let cw5k = class_weights(5000, 22);
    // Focal: class weights, ignore index, gamma 0 (= CE), both layouts.
    lines.push(emulate_family::<f32, i64, _>(exe, &Focal::new(), &FamilyCase::new(20, 10, 1)));
    lines.push(emulate_family::<f32, i32, _>(exe, &Focal::new().gamma(0.0), &FamilyCase::new(9, 33, 2).weighted()));
    let f = Focal::new().gamma(1.5).class_weights(cw.clone());
    lines.push(emulate_family::<f32, i64, _>(exe, &f, &FamilyCase::new(12, 1000, 3).ignore(3).weighted()));
    let f = Focal::new().class_weights(cw5k.clone()).reduction(Reduction::Sum);
    lines.push(emulate_family::<f32, i64, _>(exe, &f, &FamilyCase::new(3, 5000, 4).ignore(2)));
    lines.push(emulate_family::<bf16, i64, _>(exe, &Focal::new(), &FamilyCase::new(4, 4096, 5)));
    lines.push(emulate_family::<f16, i32, _>(exe, &Focal::new(), &FamilyCase::new(10, 64, 6).spread(2.0)));
    lines.push(emulate_family::<f32, i64, _>(exe, &Focal::new(), &FamilyCase::new(8, 40, 7).spread(300.0)));
    lines.push(emulate_family::<f32, i64, _>(exe, &Focal::new(), &FamilyCase::new(8, 1, 8)));
    // GCE, MAE, comp-sum CE.
    let g = GeneralizedCrossEntropy::new();
    lines.push(emulate_family::<f32, i64, _>(exe, &g, &FamilyCase::new(20, 100, 9).weighted()));
    lines.push(emulate_family::<f32, i64, _>(exe, &g.clone().q(0.3), &FamilyCase::new(3, 2051, 10).misaligned()));
    lines.push(emulate_family::<bf16, i32, _>(exe, &g, &FamilyCase::new(16, 1000, 11)));
    lines.push(emulate_family::<f32, i64, _>(exe, &Mae::new(), &FamilyCase::new(16, 24, 12).spread(1.0)));
    lines.push(emulate_family::<f16, i64, _>(exe, &Mae::new(), &FamilyCase::new(3, 4096, 13).spread(1.0)));
    let ce = CompSum::new().psi(Psi::CrossEntropy);
    lines.push(emulate_family::<f32, i64, _>(exe, &ce, &FamilyCase::new(10, 200, 14).weighted()));
    lines.push(emulate_family::<f32, i64, _>(exe, &ce, &FamilyCase::new(10, 200, 15).no_grad()));
    // Sum-exponential: the linear tail above 50 is reached with a wide spread.
    let se = SumExponential::new();
    lines.push(emulate_family::<f32, i64, _>(exe, &se, &FamilyCase::new(12, 30, 16).spread(2.0)));
    lines.push(emulate_family::<f32, i64, _>(
        exe,
        &se.clone().reduction(Reduction::Sum),
        &FamilyCase::new(6, 50, 17).spread(40.0),
    ));
    lines.push(emulate_family::<bf16, i64, _>(exe, &se, &FamilyCase::new(2, 2048, 18).spread(1.0)));
    // LDR-KL (score_norm none).
    let ldr = LdrKl::new().score_norm(ScoreNorm::None);
    lines.push(emulate_family::<f32, i64, _>(exe, &ldr, &FamilyCase::new(16, 100, 19)));
    lines.push(emulate_family::<f32, i32, _>(
        exe,
        &ldr.clone().lambda(0.5).margin(1.0),
        &FamilyCase::new(3, 5000, 20).weighted(),
    ));
    lines.push(emulate_family::<f16, i64, _>(exe, &ldr, &FamilyCase::new(9, 40, 21).spread(1.0)));
    // Z-loss.
    let z = ZLoss::new(0.1, 10.0);
    lines.push(emulate_family::<f32, i64, _>(exe, &z, &FamilyCase::new(16, 100, 22)));
    lines.push(emulate_family::<f32, i64, _>(exe, &ZLoss::new(2.0, 1.0), &FamilyCase::new(3, 5003, 23).weighted()));
    lines.push(emulate_family::<bf16, i64, _>(exe, &ZLoss::new(1.0, 0.5), &FamilyCase::new(9, 1000, 24)));
    lines.push(emulate_family::<f32, i64, _>(exe, &ZLoss::new(1.0, 0.5), &FamilyCase::new(4, 1, 25)));
    for l in &lines {
        println!("{l}");
    }
    assert_eq!(lines.len(), 25);
}

/// Runs `loss` on the GPU and compares with the CPU.
fn check_family_on_gpu<T: GpuFloat, L: GpuLabel + TryFrom<i64>, K: GpuClassLoss + ClassLoss<f64>>(
    gpu: &Gpu,
    loss: &K,
    case: &FamilyCase,
) where
    <L as TryFrom<i64>>::Error: std::fmt::Debug,
{
    let spec = loss.kernel_spec().unwrap();
    let (x, t, w) = family_inputs::<T>(spec.ignore_index, case);
    let tl: Array1<L> = t.mapv(|v| L::try_from(v).unwrap());
    let out = gpu.class_loss(loss, x.view(), tl.view(), w.as_ref().map(|w| w.view()), case.grad).unwrap();
    let got = FamilyOut {
        value: f64::from(out.value.to_f32()),
        per_sample: out.per_sample.unwrap().iter().map(|v| f64::from(v.to_f32())).collect(),
        grad: out.grad.map(|g| g.iter().map(|v| f64::from(v.to_f32())).collect()),
    };
    assert_eq!(got.grad.is_some(), case.grad);
    let what = format!("gpu {} {} n={} c={}", spec.mode, T::NAME, case.n, case.c);
    compare_family(&what, loss, &x, &t, w.as_ref(), &got);
}

fn family_on_gpu<T: GpuFloat>(gpu: &Gpu) {
    use losskit_losses::{CompSum, Focal, GeneralizedCrossEntropy, LdrKl, Mae, Psi, ScoreNorm, SumExponential, ZLoss};
    for (n, c) in [(64, 10), (50, 1000), (5, 50_257), (4, 131_072)] {
        let base = FamilyCase::new(n, c, (n * c) as u64);
        let f = Focal::new().gamma(2.0).class_weights(class_weights(c, 3));
        check_family_on_gpu::<T, i64, _>(gpu, &f, &FamilyCase { ignore_every: 3, sample_weights: true, ..base });
        check_family_on_gpu::<T, i32, _>(gpu, &GeneralizedCrossEntropy::new(), &base);
        check_family_on_gpu::<T, i64, _>(
            gpu,
            &Mae::new().reduction(Reduction::Sum),
            &FamilyCase { spread: 1.0, ..base },
        );
        check_family_on_gpu::<T, i64, _>(gpu, &CompSum::new().psi(Psi::CrossEntropy), &base);
        check_family_on_gpu::<T, i64, _>(gpu, &SumExponential::new(), &FamilyCase { spread: 1.0, ..base });
        check_family_on_gpu::<T, i64, _>(gpu, &LdrKl::new().score_norm(ScoreNorm::None), &base);
        check_family_on_gpu::<T, i64, _>(gpu, &LdrKl::new(), &FamilyCase { sample_weights: true, ..base });
        check_family_on_gpu::<T, i32, _>(gpu, &LdrKl::new().score_norm(ScoreNorm::L1Mean).lambda(1.0), &base);
        check_family_on_gpu::<T, i64, _>(gpu, &ZLoss::new(0.1, 10.0), &FamilyCase { grad: false, ..base });
        check_family_on_gpu::<T, i64, _>(gpu, &ZLoss::new(1.0, 1.0), &base);
    }
}

#[test]
fn softmax_family_f32_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    family_on_gpu::<f32>(gpu);
}

#[test]
fn softmax_family_bf16_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    family_on_gpu::<bf16>(gpu);
}

#[test]
fn softmax_family_f16_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    family_on_gpu::<f16>(gpu);
}

#[test]
fn softmax_family_reports_unsupported_options_and_bad_input() {
    use losskit_losses::{Focal, LdrKl};
    let Some(gpu) = gpu() else { return };
    let x = logits::<f32>(4, 5, 1.0, 30);
    let err = gpu.class_loss(&LdrKl::new().lambda(0.0), x.view(), labels(4, 5, 0, 30).view(), None, true).unwrap_err();
    assert!(matches!(err, Error::Parameter { name: "lambda", .. }), "{err:?}");
    let bad = Array1::from(vec![0_i64, 1, 5, 2]);
    let err = gpu.class_loss(&Focal::new(), x.view(), bad.view(), None, true).unwrap_err();
    assert!(matches!(err, Error::LabelOutOfRange { label: 5, index: 2, .. }), "{err:?}");
}

// ---------------------------------------------------------------------------------------------------------------
// Binary losses (kernels/binary.cu): emulated on the CPU and on a GPU, both against losskit-losses.

fn binary_inputs<T: GpuFloat>(n: usize, spread: f32, soft: bool, seed: u64) -> (Array1<T>, Array1<T>, Array1<f32>) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let x = Array1::from_shape_fn(n, |_| T::from_f32(rng.random_range(-spread..spread)));
    let t = Array1::from_shape_fn(n, |_| {
        T::from_f32(if soft {
            rng.random_range(0.0_f32..1.0)
        } else {
            f32::from(u8::from(rng.random_range(0..2) == 1))
        })
    });
    (x, t, sample_weights(n, seed))
}

fn compare_binary<T: GpuFloat, K: BinaryLoss<f64>>(
    what: &str,
    loss: &K,
    x: &Array1<T>,
    t: &Array1<T>,
    w: Option<&Array1<f32>>,
    got: &FamilyOut,
) {
    let w64 = w.map(|w| w.mapv(f64::from));
    let (x64, t64) = (x.mapv(|v| f64::from(v.to_f32())), t.mapv(|v| f64::from(v.to_f32())));
    let cpu = loss.compute(x64.view(), t64.view(), w64.as_ref().map(|w| w.view()), true).unwrap();
    let (rel, abs_frac) = tolerance::<T>();
    let mut ps = cpu.per_sample.clone().unwrap().to_vec();
    let mut got_ps = got.per_sample.clone();
    set_aside_overflow::<T>(&format!("{what} per_sample"), &mut got_ps, &mut ps);
    // Per-sample losses come back in the input's type (as PyTorch's reduction='none'): one rounding of it.
    close(&format!("{what} per_sample"), &got_ps, &ps, rel.max(2e-5), 1e-6);
    let (mut gv, mut cv) = ([got.value], [cpu.value]);
    set_aside_overflow::<T>(&format!("{what} value"), &mut gv, &mut cv);
    close_with_floor(&format!("{what} value"), &gv, &cv, rel.max(2e-5), 0.0, 2f64.powi(-21));
    if let Some(g) = &got.grad {
        // An absolute floor: the subnormal spacing of f16, else f32's ε (a gradient that is exactly 0 in f64 can
        // come out as a few ε of f32 cancellation, e.g. AnyLoss on one sample).
        let floor = if T::NAME == "f16" { 2f64.powi(-25) } else { 2f64.powi(-23) };
        let want = cpu.grad.unwrap().to_vec();
        close_with_floor(&format!("{what} grad"), g, &want, rel.max(2e-5), abs_frac.max(1e-6), floor);
    }
}

/// Runs a binary loss in the emulator (blocks of 256 threads, `grid` blocks: fewer than N / 256 exercises the
/// grid-stride loop) and compares with the CPU.
#[allow(clippy::too_many_arguments)]
fn emulate_binary<T: GpuFloat, K: GpuBinaryLoss + BinaryLoss<f64>>(
    exe: &Path,
    loss: &K,
    n: usize,
    spread: f32,
    soft: bool,
    weighted: bool,
    grid: usize,
    seed: u64,
) -> String {
    let spec = loss.binary_spec().unwrap();
    let (x, t, w) = binary_inputs::<T>(n, spread, soft, seed);
    let w = weighted.then_some(w);
    let denom = w.as_ref().map_or(n as f64, |w| w.iter().map(|&v| f64::from(v)).sum());
    let scale = if spec.reduction == Reduction::Mean { 1.0 / denom } else { 1.0 };
    let name = format!("{}_{}", spec.mode, T::NAME);
    let elem: i32 = if T::NAME == "f32" { 4 } else { 2 };
    let mut buf = Vec::new();
    buf.extend((name.len() as u32).to_le_bytes());
    buf.extend(name.as_bytes());
    let header = [n as i32, 1, elem, 0, 0, i32::from(w.is_some()), 0, 1, grid as i32, 256, 0];
    header.iter().for_each(|h| buf.extend(h.to_le_bytes()));
    buf.extend(0_i64.to_le_bytes());
    for p in [spec.params[0], spec.params[1], spec.params[2], scale as f32] {
        buf.extend(p.to_le_bytes());
    }
    x.iter().for_each(|&v| buf.extend(elem_bytes(v)));
    t.iter().for_each(|&v| buf.extend(elem_bytes(v)));
    w.iter().flatten().for_each(|v| buf.extend(v.to_le_bytes()));
    let dir = exe.parent().unwrap();
    let (inp, outp) = (dir.join(format!("{name}-{seed}.in")), dir.join(format!("{name}-{seed}.out")));
    std::fs::write(&inp, &buf).unwrap();
    let run = Command::new(exe).arg(&inp).arg(&outp).output().unwrap();
    assert!(run.status.success(), "{name}: emulator failed: {}", String::from_utf8_lossy(&run.stderr));
    let out = std::fs::read(&outp).unwrap();
    let _ = std::fs::remove_file(&inp);
    let _ = std::fs::remove_file(&outp);
    assert_eq!(out.len(), 4 * n + n * elem as usize + 1, "{name}: output size");
    let per_sample: Vec<f64> =
        out[..4 * n].chunks_exact(4).map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))).collect();
    let grad: Vec<f64> =
        out[4 * n..4 * n + n * elem as usize].chunks_exact(elem as usize).map(elem_from_bytes::<T>).collect();
    assert_eq!(out[out.len() - 1], 0, "{name}: wrote outside its buffers");
    let value = per_sample.iter().sum::<f64>() * scale;
    let what = format!("emulated {name} n={n} seed={seed}");
    compare_binary(&what, loss, &x, &t, w.as_ref(), &FamilyOut { value, per_sample, grad: Some(grad) });
    format!("ok   {what}")
}

#[test]
fn binary_losses_match_cpu_under_cpu_emulation() {
    use losskit_losses::{BinaryCrossEntropy, SigmoidFocal};
    let Some(exe) = binary_emulator() else { return };
    let bce = BinaryCrossEntropy::new();
    let lines = [
        emulate_binary::<f32, _>(exe, &bce, 1000, 5.0, false, false, 4, 1),
        emulate_binary::<f32, _>(exe, &bce.clone().pos_weight(3.0), 700, 30.0, true, true, 1, 2),
        emulate_binary::<bf16, _>(exe, &bce.clone().reduction(Reduction::Sum), 300, 4.0, true, false, 2, 3),
        emulate_binary::<f16, _>(exe, &bce, 300, 4.0, false, true, 2, 4),
        emulate_binary::<f32, _>(exe, &SigmoidFocal::new(), 900, 6.0, false, true, 2, 5),
        emulate_binary::<f32, _>(exe, &SigmoidFocal::new().alpha(-1.0).gamma(0.5), 500, 3.0, true, false, 2, 6),
        emulate_binary::<f32, _>(exe, &SigmoidFocal::new().gamma(0.0), 257, 3.0, false, false, 2, 7),
        emulate_binary::<bf16, _>(exe, &SigmoidFocal::new(), 300, 4.0, true, false, 1, 8),
        emulate_binary::<f16, _>(exe, &SigmoidFocal::new().reduction(Reduction::None), 300, 4.0, false, false, 2, 9),
    ];
    lines.iter().for_each(|l| println!("{l}"));
}

fn binary_on_gpu<T: GpuFloat>(gpu: &Gpu) {
    use losskit_losses::{BinaryCrossEntropy, SigmoidFocal};
    fn one<T: GpuFloat, K: GpuBinaryLoss + BinaryLoss<f64>>(gpu: &Gpu, loss: &K, n: usize, soft: bool, seed: u64) {
        let (x, t, w) = binary_inputs::<T>(n, 6.0, soft, seed);
        for weights in [None, Some(&w)] {
            let out = gpu.binary_loss(loss, x.view(), t.view(), weights.map(|w| w.view()), true).unwrap();
            let got = FamilyOut {
                value: f64::from(out.value.to_f32()),
                per_sample: out.per_sample.unwrap().iter().map(|v| f64::from(v.to_f32())).collect(),
                grad: out.grad.map(|g| g.iter().map(|v| f64::from(v.to_f32())).collect()),
            };
            compare_binary(&format!("gpu {} n={n}", T::NAME), loss, &x, &t, weights, &got);
        }
    }
    for n in [1, 1000, 1 << 20] {
        one::<T, _>(gpu, &BinaryCrossEntropy::new().pos_weight(2.5), n, false, n as u64);
        one::<T, _>(gpu, &BinaryCrossEntropy::new().reduction(Reduction::Sum), n, true, n as u64 + 1);
        one::<T, _>(gpu, &SigmoidFocal::new(), n, false, n as u64 + 2);
        one::<T, _>(gpu, &SigmoidFocal::new().alpha(-1.0).gamma(1.0), n, true, n as u64 + 3);
    }
}

#[test]
fn binary_losses_f32_match_cpu() {
    let Some(gpu) = gpu() else { return };
    binary_on_gpu::<f32>(gpu);
}

#[test]
fn binary_losses_bf16_and_f16_match_cpu() {
    let Some(gpu) = gpu() else { return };
    binary_on_gpu::<bf16>(gpu);
    binary_on_gpu::<f16>(gpu);
}

// ---------------------------------------------------------------------------------------------------------------
// Fused linear + cross-entropy (cuBLAS GEMMs + kernels/linear_ce.cu): the plan's steps emulated on the CPU and run on a
// GPU, both against LinearCrossEntropy::compute_cpu (losskit-losses CrossEntropy / Focal on H·Wᵀ in f64).

fn linear_ce_emulator() -> Option<&'static Path> {
    static EXE: OnceLock<Option<std::path::PathBuf>> = OnceLock::new();
    EXE.get_or_init(|| {
        let emu = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/emu");
        if !emu.join("linear_ce.cpp").exists() {
            println!("skipped: emulator sources not present (a copied test binary)");
            return None;
        }
        let cxx = std::env::var("CXX").unwrap_or_else(|_| "g++".into());
        if Command::new(&cxx).arg("--version").output().is_err() {
            println!("skipped: no C++ compiler ({cxx})");
            return None;
        }
        let dir = std::env::temp_dir().join(format!("losskit-linear-ce-emu-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("kernel.cu"), emulable_source("linear_ce")).unwrap();
        std::fs::copy(emu.join("shim.h"), dir.join("shim.h")).unwrap();
        let exe = dir.join("linear_ce_emu");
        let out = Command::new(&cxx)
            .args(["-std=c++20", "-O1", "-pthread", "-I"])
            .arg(&dir)
            .arg("-o")
            .arg(&exe)
            .arg(emu.join("linear_ce.cpp"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{cxx} failed:\n{}", String::from_utf8_lossy(&out.stderr));
        Some(exe)
    })
    .as_deref()
}

/// One fused linear + cross-entropy problem.
#[derive(Clone, Copy)]
struct LceCase {
    n: usize,
    c: usize,
    d: usize,
    weighted: bool,
    ignore_every: usize,
    grad: bool,
    seed: u64,
}

impl LceCase {
    fn new(n: usize, c: usize, d: usize, seed: u64) -> Self {
        LceCase { n, c, d, weighted: false, ignore_every: 0, grad: true, seed }
    }
}

/// H [N, d], W [C, d] (entries scaled so that the logits spread over a few units), labels with `ignore` for every
/// `ignore_every`-th row, sample weights.
fn lce_inputs<T: GpuFloat>(
    loss: &losskit_cuda::LinearCrossEntropy,
    case: &LceCase,
) -> (Array2<T>, Array2<T>, Array1<i64>, Option<Array1<f32>>) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(case.seed);
    let s = 3.0 / (case.d as f32).sqrt();
    let h = Array2::from_shape_fn((case.n, case.d), |_| T::from_f32(rng.random_range(-1.0_f32..1.0)));
    let w = Array2::from_shape_fn((case.c, case.d), |_| T::from_f32(rng.random_range(-s..s)));
    let t =
        labels(case.n, case.c, case.ignore_every, case.seed).mapv(|v| if v == -100 { loss.ignore_index } else { v });
    let sw = case.weighted.then(|| sample_weights(case.n, case.seed));
    (h, w, t, sw)
}

/// Compares a run (GPU or emulated) with the CPU reference on the same (rounded) inputs.
///
/// The loss and per-row losses come from f32 logits whatever the input type: 1e-5 relative (plus a 1e-6 floor for
/// losses near 0). f32 gradients: 1e-5 relative plus 1e-6 of the largest entry (FP32 GEMMs). 16-bit gradients: the
/// bound of `LinearCrossEntropy`'s precision section, element by element, with u the type's unit roundoff (2⁻⁸ bf16,
/// 2⁻¹¹ f16) and G the exact ∂value/∂Z from the CPU:
///   |ΔdHᵢₖ| ≤ u·|dHᵢₖ| + u·Σⱼ(|Gᵢⱼ| + e)·|Wⱼₖ|                (G rounded to T; dH rounded once)
///   |ΔdWⱼₖ| ≤ u·|dWⱼₖ| + (1 + tiles)·u·Σᵢ(|Gᵢⱼ| + e)·|Hᵢₖ|    (G rounded; dW re-rounded after each row tile)
/// with e = gscale·2⁻²⁵ for f16 (half the subnormal spacing, scaled like G) and 0 for bf16, plus 1e-6 of the
/// largest entry for the f32 accumulation and, for f16, 2⁻²⁵ for a subnormal output.
#[allow(clippy::too_many_arguments)]
fn compare_linear_ce<T: GpuFloat>(
    what: &str,
    loss: &losskit_cuda::LinearCrossEntropy,
    h: &Array2<T>,
    w: &Array2<T>,
    t: &Array1<i64>,
    sw: Option<&Array1<f32>>,
    got: &FamilyOut,
    grads: Option<(&[f64], &[f64])>,
) {
    let h64 = h.mapv(|v| f64::from(v.to_f32()));
    let w64 = w.mapv(|v| f64::from(v.to_f32()));
    let sw64 = sw.map(|s| s.mapv(f64::from));
    let cpu = loss.compute_cpu(h64.view(), w64.view(), t.view(), sw64.as_ref().map(|s| s.view()), true).unwrap();
    let ps = cpu.per_sample.to_vec();
    let pmax = ps.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    close(&format!("{what} per_sample"), &got.per_sample, &ps, 1e-5, 1e-6 * pmax.max(1e-3) / pmax.max(1e-300));
    close(&format!("{what} value"), &[got.value], &[cpu.value], 1e-5, 0.0);
    let Some((dh, dw)) = grads else { return };
    let want_h: Vec<f64> = cpu.grad_hidden.unwrap().iter().copied().collect();
    let want_w: Vec<f64> = cpu.grad_weight.unwrap().iter().copied().collect();
    if T::NAME == "f32" {
        close(&format!("{what} dH"), dh, &want_h, 1e-5, 1e-6);
        close(&format!("{what} dW"), dw, &want_w, 1e-5, 1e-6);
        return;
    }
    let plan = loss.plan(&h.view(), &w.view(), &t.view(), sw.map(|s| s.view()).as_ref(), true).unwrap();
    let tiles = plan.n.div_ceil(plan.ws_rows) as f64;
    let (u, e, floor) = if T::NAME == "bf16" {
        (2f64.powi(-8), 0.0, 0.0)
    } else {
        (2f64.powi(-11), f64::from(plan.gscale) * 2f64.powi(-25), 2f64.powi(-25))
    };
    // G = ∂value/∂Z from the CPU reference: with H' = I and W' = (H·Wᵀ)ᵀ the logits are the same, and dW' = Gᵀ.
    let n = h.nrows();
    let eye = Array2::<f64>::eye(n);
    let zt = w64.dot(&h64.t());
    let g = loss.compute_cpu(eye.view(), zt.view(), t.view(), sw64.as_ref().map(|s| s.view()), true).unwrap();
    let ga = g.grad_weight.unwrap().t().mapv(|v| v.abs() + e);
    let bound_h = ga.dot(&w64.mapv(f64::abs));
    let bound_w = ga.t().dot(&h64.mapv(f64::abs));
    let check = |name: &str, got: &[f64], want: &[f64], bound: &Array2<f64>, k: f64| {
        let scale = want.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        for (i, ((g, w), b)) in got.iter().zip(want).zip(bound.iter()).enumerate() {
            let tol = u * w.abs() + k * u * b + 1e-6 * scale + floor;
            assert!((g - w).abs() <= tol, "{what} {name}[{i}]: got {g:e}, cpu {w:e} (tolerance {tol:e})");
        }
    };
    assert_eq!((dh.len(), dw.len()), (bound_h.len(), bound_w.len()), "{what}: gradient sizes");
    check("dH", dh, &want_h, &bound_h, 1.0);
    check("dW", dw, &want_w, &bound_w, 1.0 + tiles);
}

/// Replays `loss.plan(...)` in the emulator of tests/emu/linear_ce.cpp and compares with the CPU.
fn emulate_linear_ce<T: GpuFloat, L: GpuLabel + TryFrom<i64>>(
    exe: &Path,
    loss: &losskit_cuda::LinearCrossEntropy,
    case: &LceCase,
) -> String
where
    <L as TryFrom<i64>>::Error: std::fmt::Debug,
{
    use losskit_cuda::{LceBuffer, LceStep};
    let (h, w, t, sw) = lce_inputs::<T>(loss, case);
    let tl: Array1<L> = t.mapv(|v| L::try_from(v).unwrap());
    let plan = loss.plan(&h.view(), &w.view(), &tl.view(), sw.as_ref().map(|s| s.view()).as_ref(), case.grad).unwrap();
    let (n, c, d) = (case.n, case.c, case.d);
    let (elem, type_code) = match T::NAME {
        "f32" => (4, 0),
        "bf16" => (2, 1),
        _ => (2, 2),
    };
    let lsize = if L::NAME == "i64" { 8 } else { 4 };
    let mut buf = Vec::new();
    let header = [
        n as i32,
        c as i32,
        d as i32,
        type_code,
        lsize,
        i32::from(plan.class_weights.is_some()),
        i32::from(sw.is_some()),
        i32::from(plan.adjust.is_some()),
        i32::from(case.grad),
        plan.ws_rows as i32,
        plan.grad_ld as i32,
        plan.steps.len() as i32,
    ];
    header.iter().for_each(|v| buf.extend(v.to_le_bytes()));
    buf.extend(plan.ignore_index.to_le_bytes());
    for p in [plan.eps, plan.wsum, plan.gamma] {
        buf.extend(p.to_le_bytes());
    }
    h.iter().for_each(|&v| buf.extend(elem_bytes(v)));
    w.iter().for_each(|&v| buf.extend(elem_bytes(v)));
    for &y in &t {
        if lsize == 8 { buf.extend(y.to_le_bytes()) } else { buf.extend((y as i32).to_le_bytes()) }
    }
    for v in [&plan.class_weights, &sw.as_ref().map(|s| s.to_vec()), &plan.adjust].into_iter().flatten() {
        v.iter().for_each(|x| buf.extend(x.to_le_bytes()));
    }
    let (mut kernels, mut gemms) = (0, 0);
    for step in &plan.steps {
        match step {
            LceStep::Kernel(l) => {
                kernels += 1;
                buf.extend((l.kernel.len() as u32).to_le_bytes());
                buf.extend(l.kernel.as_bytes());
                for v in [l.grid as i32, l.block as i32, l.row0, l.rows, l.col0, l.cols] {
                    buf.extend(v.to_le_bytes());
                }
            }
            LceStep::Gemm(g) => {
                gemms += 1;
                buf.extend(4_u32.to_le_bytes());
                buf.extend(b"gemm");
                for v in [i32::from(g.trans_a), i32::from(g.trans_b), g.m as i32, g.n as i32, g.k as i32] {
                    buf.extend(v.to_le_bytes());
                }
                for o in [&g.a, &g.b, &g.c] {
                    let id: i32 = match o.buffer {
                        LceBuffer::Hidden => 0,
                        LceBuffer::Weight => 1,
                        LceBuffer::Logits => 2,
                        LceBuffer::Grad => 3,
                        LceBuffer::GradHidden => 4,
                        LceBuffer::GradWeight => 5,
                    };
                    buf.extend(id.to_le_bytes());
                    buf.extend((o.offset as i64).to_le_bytes());
                    buf.extend((o.ld as i32).to_le_bytes());
                }
                buf.extend(g.alpha.to_le_bytes());
                buf.extend(g.beta.to_le_bytes());
            }
        }
    }
    let dir = exe.parent().unwrap();
    let tag = format!("lce-{}-{}-{}", T::NAME, L::NAME, case.seed);
    let (inp, outp) = (dir.join(format!("{tag}.in")), dir.join(format!("{tag}.out")));
    std::fs::write(&inp, &buf).unwrap();
    let run = Command::new(exe).arg(&inp).arg(&outp).output().unwrap();
    assert!(run.status.success(), "{tag}: emulator failed: {}", String::from_utf8_lossy(&run.stderr));
    let out = std::fs::read(&outp).unwrap();
    let _ = std::fs::remove_file(&inp);
    let _ = std::fs::remove_file(&outp);
    let e = elem as usize;
    let expected = 4 * n + if case.grad { (n + c) * d * e } else { 0 } + 1;
    assert_eq!(out.len(), expected, "{tag}: output size");
    assert_eq!(out[expected - 1], 0, "{tag}: a kernel or GEMM reached outside its buffers");
    let per_sample: Vec<f64> =
        out[..4 * n].chunks_exact(4).map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))).collect();
    let value = per_sample.iter().sum::<f64>() * plan.value_scale;
    let grads = case.grad.then(|| {
        let dh: Vec<f64> = out[4 * n..4 * n + n * d * e].chunks_exact(e).map(elem_from_bytes::<T>).collect();
        let dw: Vec<f64> = out[4 * n + n * d * e..expected - 1].chunks_exact(e).map(elem_from_bytes::<T>).collect();
        (dh, dw)
    });
    let what = format!("emulated {tag} n={n} c={c} d={d} tile {}x{}", plan.ws_rows, plan.ws_cols);
    let got = FamilyOut { value, per_sample, grad: None };
    compare_linear_ce(&what, loss, &h, &w, &t, sw.as_ref(), &got, grads.as_ref().map(|(a, b)| (&a[..], &b[..])));
    format!("ok   {what} ({kernels} kernels, {gemms} GEMMs)")
}

/// Every option of the fused linear + cross-entropy, partial and whole chunks, f32 / bf16 / f16, i64 / i32 labels.
#[test]
fn linear_cross_entropy_matches_cpu_under_cpu_emulation() {
    use losskit_cuda::LinearCrossEntropy;
    let Some(exe) = linear_ce_emulator() else { return };
    let base = LinearCrossEntropy::new();
    let prior = |c: usize| (0..c).map(|j| 1.0 / (1.0 + j as f64)).collect::<Vec<f64>>();
    let lines = [
        // Several row tiles and forward-GEMM class slices, the last of each partial.
        emulate_linear_ce::<f32, i64>(exe, &base.clone().chunks(16, 64), &LceCase::new(37, 150, 40, 1)),
        // Class and sample weights, smoothing, ignored rows, i32 labels.
        emulate_linear_ce::<f32, i32>(
            exe,
            &base.clone().class_weights(class_weights(90, 2)).label_smoothing(0.1).chunks(64, 50),
            &LceCase { weighted: true, ignore_every: 4, ..LceCase::new(21, 90, 33, 2) },
        ),
        // Focal with class weights and logit adjustment, Sum.
        emulate_linear_ce::<f32, i64>(
            exe,
            &base
                .clone()
                .gamma(2.0)
                .class_weights(class_weights(70, 3))
                .logit_adjustment(1.0, prior(70))
                .reduction(Reduction::Sum)
                .chunks(10, 33),
            &LceCase { ignore_every: 5, ..LceCase::new(23, 70, 24, 3) },
        ),
        // d not a multiple of 16; one tile.
        emulate_linear_ce::<f32, i64>(exe, &base.clone().ignore_index(7), &LceCase::new(9, 20, 130, 4)),
        // One class.
        emulate_linear_ce::<f32, i64>(exe, &base.clone().label_smoothing(0.2), &LceCase::new(5, 1, 8, 5)),
        // No gradient.
        emulate_linear_ce::<f32, i64>(
            exe,
            &base.clone().chunks(7, 16),
            &LceCase { grad: false, weighted: true, ..LceCase::new(19, 40, 16, 6) },
        ),
        emulate_linear_ce::<bf16, i64>(
            exe,
            &base.clone().label_smoothing(0.05).chunks(8, 32),
            &LceCase::new(20, 70, 24, 7),
        ),
        emulate_linear_ce::<f16, i32>(
            exe,
            &base.clone().gamma(1.0).logit_adjustment(0.5, prior(40)).chunks(5, 16),
            &LceCase { weighted: true, ..LceCase::new(12, 40, 16, 8) },
        ),
        // 16-bit G written in place over rows of more than one 2048-element segment (C = 4500 and 2100), with class
        // weights, smoothing, ignored rows and sample weights.
        emulate_linear_ce::<bf16, i64>(
            exe,
            &base.clone().class_weights(class_weights(4500, 9)).label_smoothing(0.1).chunks(4, 1000),
            &LceCase { weighted: true, ignore_every: 3, ..LceCase::new(7, 4500, 12, 9) },
        ),
        emulate_linear_ce::<f16, i64>(exe, &base.clone().chunks(3, 4096), &LceCase::new(5, 2100, 8, 10)),
    ];
    lines.iter().for_each(|l| println!("{l}"));
}

/// Runs the fused kernel on the GPU and compares with the CPU.
fn check_linear_ce_on_gpu<T: GpuFloat, L: GpuLabel + TryFrom<i64>>(
    gpu: &Gpu,
    loss: &losskit_cuda::LinearCrossEntropy,
    case: &LceCase,
) where
    <L as TryFrom<i64>>::Error: std::fmt::Debug,
{
    let (h, w, t, sw) = lce_inputs::<T>(loss, case);
    let tl: Array1<L> = t.mapv(|v| L::try_from(v).unwrap());
    let out = gpu.linear_cross_entropy(loss, h.view(), w.view(), tl.view(), sw.as_ref().map(|s| s.view()), case.grad);
    let out = out.unwrap();
    assert_eq!(out.grad_hidden.is_some(), case.grad);
    let widen = |g: &Array2<T>| g.iter().map(|v| f64::from(v.to_f32())).collect::<Vec<f64>>();
    let dh = out.grad_hidden.as_ref().map(widen);
    let dw = out.grad_weight.as_ref().map(widen);
    let got = FamilyOut { value: out.value, per_sample: out.per_sample.to_vec(), grad: None };
    let what = format!("gpu linear-ce {} n={} c={} d={}", T::NAME, case.n, case.c, case.d);
    let grads = dh.as_deref().zip(dw.as_deref());
    compare_linear_ce(&what, loss, &h, &w, &t, sw.as_ref(), &got, grads);
}

fn linear_ce_on_gpu<T: GpuFloat>(gpu: &Gpu) {
    use losskit_cuda::LinearCrossEntropy;
    let base = LinearCrossEntropy::new();
    let c = 5000;
    let prior: Vec<f64> = (0..c).map(|j| 1.0 / (1.0 + j as f64)).collect();
    let case = LceCase::new(300, c, 256, 11);
    check_linear_ce_on_gpu::<T, i64>(gpu, &base.clone().chunks(128, 1024), &case);
    check_linear_ce_on_gpu::<T, i32>(gpu, &base, &LceCase { weighted: true, ignore_every: 7, ..case });
    let opts = base.clone().class_weights(class_weights(c, 12)).label_smoothing(0.1).chunks(100, 999);
    check_linear_ce_on_gpu::<T, i64>(gpu, &opts, &LceCase { weighted: true, ignore_every: 3, ..case });
    let focal = base.clone().gamma(2.0).logit_adjustment(1.0, prior).reduction(Reduction::Sum).chunks(64, 4096);
    check_linear_ce_on_gpu::<T, i64>(gpu, &focal, &case);
    check_linear_ce_on_gpu::<T, i64>(gpu, &base, &LceCase { grad: false, ..case });
}

#[test]
fn linear_cross_entropy_f32_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    linear_ce_on_gpu::<f32>(gpu);
}

#[test]
fn linear_cross_entropy_bf16_and_f16_match_cpu() {
    let Some(gpu) = gpu() else { return };
    linear_ce_on_gpu::<bf16>(gpu);
    linear_ce_on_gpu::<f16>(gpu);
}

#[test]
fn linear_cross_entropy_is_reproducible_and_chunk_independent() {
    use losskit_cuda::LinearCrossEntropy;
    let Some(gpu) = gpu() else { return };
    let case = LceCase::new(257, 3001, 96, 13);
    let loss = LinearCrossEntropy::new();
    let (h, w, t, _) = lce_inputs::<f32>(&loss, &case);
    let run = |l: &LinearCrossEntropy| gpu.linear_cross_entropy(l, h.view(), w.view(), t.view(), None, true).unwrap();
    let a = run(&loss.clone().chunks(64, 512));
    let b = run(&loss.clone().chunks(64, 512));
    assert_eq!(a, b, "two runs differ");
    let whole = run(&loss.clone().chunks(4096, 4096));
    close("chunked vs whole value", &[a.value], &[whole.value], 1e-5, 0.0);
    let err = gpu.linear_cross_entropy(&loss, h.view(), h.view(), t.view(), None, true).unwrap_err();
    assert!(matches!(err, Error::LabelOutOfRange { .. } | Error::Shape { .. }), "{err:?}");
}

// Pairwise metric-learning losses and the exact kNN / SMOTE on a GPU (their emulation tests are unit tests).
#[path = "emu/gpu_pairwise_knn.rs"]
mod pairwise_knn;

/// LDR-KL with the score normalisations (softplus-mean, l1-mean) of softmax_family.cu, both layouts, vector, scalar
/// and misaligned paths, against the CPU `LdrKl`.
#[test]
fn ldr_kl_score_norms_match_cpu_under_cpu_emulation() {
    use losskit_losses::{LdrKl, ScoreNorm};
    let Some(exe) = family_emulator() else { return };
    let sp = LdrKl::new();
    let l1 = LdrKl::new().score_norm(ScoreNorm::L1Mean);
    let lines = [
        emulate_family::<f32, i64, _>(exe, &sp, &FamilyCase::new(16, 100, 41)),
        emulate_family::<f32, i32, _>(
            exe,
            &sp.clone().lambda(0.5).margin(1.0),
            &FamilyCase::new(3, 5000, 42).weighted(),
        ),
        emulate_family::<f32, i64, _>(exe, &sp.clone().lambda(1.0), &FamilyCase::new(3, 2051, 43).misaligned()),
        emulate_family::<bf16, i64, _>(exe, &sp, &FamilyCase::new(2, 2048, 44).spread(2.0)),
        emulate_family::<f32, i64, _>(exe, &sp.clone().reduction(Reduction::Sum), &FamilyCase::new(4, 1, 45)),
        emulate_family::<f32, i64, _>(exe, &l1, &FamilyCase::new(16, 100, 46).weighted()),
        emulate_family::<f32, i32, _>(exe, &l1.clone().lambda(0.3), &FamilyCase::new(3, 4096, 47)),
        emulate_family::<f16, i64, _>(exe, &l1, &FamilyCase::new(9, 40, 48).spread(1.0)),
        emulate_family::<f32, i64, _>(exe, &l1.clone().lambda(1.0), &FamilyCase::new(10, 200, 49).no_grad()),
    ];
    lines.iter().for_each(|l| println!("{l}"));
}

// ---------------------------------------------------------------------------------------------------------------
// AnyLoss (kernels/anyloss.cu), binary and one-vs-rest multiclass: the plan's launches emulated on the CPU and run on
// a GPU, both against losskit_losses::AnyLoss.

fn anyloss_emulator() -> Option<&'static Path> {
    static EXE: OnceLock<Option<std::path::PathBuf>> = OnceLock::new();
    EXE.get_or_init(|| {
        let emu = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/emu");
        if !emu.join("anyloss.cpp").exists() {
            println!("skipped: emulator sources not present (a copied test binary)");
            return None;
        }
        let cxx = std::env::var("CXX").unwrap_or_else(|_| "g++".into());
        if Command::new(&cxx).arg("--version").output().is_err() {
            println!("skipped: no C++ compiler ({cxx})");
            return None;
        }
        let dir = std::env::temp_dir().join(format!("losskit-anyloss-emu-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("kernel.cu"), emulable_source("anyloss")).unwrap();
        std::fs::copy(emu.join("shim.h"), dir.join("shim.h")).unwrap();
        let exe = dir.join("anyloss_emu");
        let out = Command::new(&cxx)
            .args(["-std=c++20", "-O1", "-pthread", "-I"])
            .arg(&dir)
            .arg("-o")
            .arg(&exe)
            .arg(emu.join("anyloss.cpp"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{cxx} failed:\n{}", String::from_utf8_lossy(&out.stderr));
        Some(exe)
    })
    .as_deref()
}

/// Runs `plan` in the emulator on raw inputs `x` and targets `t`; returns (value, per_sample, raw gradient).
fn run_anyloss_emulator(
    exe: &Path,
    plan: &losskit_cuda::AnyLossPlan,
    elem: i32,
    tsize: i32,
    x: &[u8],
    t: &[u8],
    tag: &str,
) -> FamilyOut {
    let mut buf = Vec::new();
    let header = [
        plan.n as i32,
        plan.c as i32,
        elem,
        tsize,
        i32::from(plan.rel.is_some()),
        i32::from(plan.launches.len() > if plan.c == 1 { 1 } else { 2 }),
        plan.metric,
        plan.launches.len() as i32,
    ];
    header.iter().for_each(|v| buf.extend(v.to_le_bytes()));
    for p in [plan.amp, plan.beta2, plan.gscale] {
        buf.extend(p.to_le_bytes());
    }
    buf.extend(x);
    buf.extend(t);
    plan.rel.iter().flatten().for_each(|v| buf.extend(v.to_le_bytes()));
    for l in &plan.launches {
        buf.extend((l.kernel.len() as u32).to_le_bytes());
        buf.extend(l.kernel.as_bytes());
        buf.extend((l.grid as i32).to_le_bytes());
        buf.extend((l.block as i32).to_le_bytes());
    }
    let dir = exe.parent().unwrap();
    let (inp, outp) = (dir.join(format!("{tag}.in")), dir.join(format!("{tag}.out")));
    std::fs::write(&inp, &buf).unwrap();
    let run = Command::new(exe).arg(&inp).arg(&outp).output().unwrap();
    assert!(run.status.success(), "{tag}: emulator failed: {}", String::from_utf8_lossy(&run.stderr));
    let out = std::fs::read(&outp).unwrap();
    let _ = std::fs::remove_file(&inp);
    let _ = std::fs::remove_file(&outp);
    let grad = header[5] == 1;
    let glen = if grad { plan.n * plan.c * elem as usize } else { 0 };
    assert_eq!(out.len(), 8 * plan.c + glen + 1, "{tag}: output size");
    assert_eq!(out[out.len() - 1], 0, "{tag}: a kernel wrote outside its buffers");
    let closs: Vec<f64> =
        out[..8 * plan.c].chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap())).collect();
    let (value, per_sample) = plan.finish(&closs);
    let gbytes = &out[8 * plan.c..8 * plan.c + glen];
    let grad = grad.then(|| {
        gbytes
            .chunks_exact(elem as usize)
            .map(|b| match elem {
                4 => f64::from(f32::from_le_bytes(b.try_into().unwrap())),
                _ => f64::from(u16::from_le_bytes(b.try_into().unwrap())), // widened by the caller
            })
            .collect()
    });
    FamilyOut { value, per_sample, grad }
}

fn widen_raw<T: GpuFloat>(raw: Vec<f64>) -> Vec<f64> {
    if T::NAME == "f32" {
        return raw;
    }
    raw.iter().map(|&b| elem_from_bytes::<T>(&(b as u16).to_le_bytes())).collect()
}

fn emulate_anyloss_binary<T: GpuFloat>(
    exe: &Path,
    loss: &losskit_losses::AnyLoss,
    n: usize,
    soft: bool,
    weighted: bool,
    seed: u64,
) -> String {
    let (x, t, w) = binary_inputs::<T>(n, 4.0, soft, seed);
    let w = weighted.then_some(w);
    let plan =
        losskit_cuda::AnyLossPlan::binary(loss, &x.view(), &t.view(), w.as_ref().map(|w| w.view()).as_ref(), true)
            .unwrap();
    let elem = if T::NAME == "f32" { 4 } else { 2 };
    let xb: Vec<u8> = x.iter().flat_map(|&v| elem_bytes(v)).collect();
    let tb: Vec<u8> = t.iter().flat_map(|&v| elem_bytes(v)).collect();
    let tag = format!("anyloss-bin-{}-{seed}", T::NAME);
    let mut got = run_anyloss_emulator(exe, &plan, elem, elem, &xb, &tb, &tag);
    got.grad = got.grad.map(widen_raw::<T>);
    let what = format!("emulated {tag} n={n} metric={:?}", loss.metric);
    compare_binary(&what, loss, &x, &t, w.as_ref(), &got);
    format!("ok   {what}")
}

fn emulate_anyloss_class<T: GpuFloat, L: GpuLabel + TryFrom<i64>>(
    exe: &Path,
    loss: &losskit_losses::AnyLoss,
    case: &FamilyCase,
) -> String
where
    <L as TryFrom<i64>>::Error: std::fmt::Debug,
{
    let (x, t, w) = family_inputs::<T>(None, case);
    let tl: Array1<L> = t.mapv(|v| L::try_from(v).unwrap());
    let plan = losskit_cuda::AnyLossPlan::multiclass(
        loss,
        &x.view(),
        &tl.view(),
        w.as_ref().map(|w| w.view()).as_ref(),
        case.grad,
    )
    .unwrap();
    let elem = if T::NAME == "f32" { 4 } else { 2 };
    let lsize = if L::NAME == "i64" { 8 } else { 4 };
    let xb: Vec<u8> = x.iter().flat_map(|&v| elem_bytes(v)).collect();
    let tb: Vec<u8> = t
        .iter()
        .flat_map(|&y| if lsize == 8 { y.to_le_bytes().to_vec() } else { (y as i32).to_le_bytes().to_vec() })
        .collect();
    let tag = format!("anyloss-{}-{}-{}", T::NAME, L::NAME, case.seed);
    let mut got = run_anyloss_emulator(exe, &plan, elem, lsize, &xb, &tb, &tag);
    got.grad = got.grad.map(widen_raw::<T>);
    let what = format!("emulated {tag} n={} c={} metric={:?}", case.n, case.c, loss.metric);
    compare_family(&what, loss, &x, &t, w.as_ref(), &got);
    format!("ok   {what}")
}

/// Every metric, binary and multiclass, weights, soft targets, Sum, f32 / bf16 / f16, against the CPU `AnyLoss`.
#[test]
fn anyloss_matches_cpu_under_cpu_emulation() {
    use losskit_losses::{AnyLoss, AnyMetric};
    let Some(exe) = anyloss_emulator() else { return };
    let f1 = AnyLoss::new();
    let acc = AnyLoss::new().metric(AnyMetric::Accuracy).amplifier(10.0);
    let gm = AnyLoss::new().metric(AnyMetric::GMean).amplifier(20.0);
    let ba = AnyLoss::new().metric(AnyMetric::BalancedAccuracy).amplifier(5.0).reduction(Reduction::Sum);
    let f2 = AnyLoss::new().beta(2.0).amplifier(8.0);
    let lines = [
        emulate_anyloss_binary::<f32>(exe, &f1, 700, false, false, 1),
        emulate_anyloss_binary::<f32>(exe, &acc, 300, true, true, 2),
        emulate_anyloss_binary::<f32>(exe, &gm, 513, false, true, 3),
        emulate_anyloss_binary::<f32>(exe, &ba, 100, true, true, 4),
        emulate_anyloss_binary::<bf16>(exe, &f2, 300, false, false, 5),
        emulate_anyloss_binary::<f16>(exe, &gm, 200, true, false, 6),
        emulate_anyloss_class::<f32, i64>(exe, &f1.clone().amplifier(6.0), &FamilyCase::new(40, 5, 7).spread(2.0)),
        emulate_anyloss_class::<f32, i32>(exe, &acc, &FamilyCase::new(33, 40, 8).weighted()),
        emulate_anyloss_class::<f32, i64>(exe, &gm, &FamilyCase::new(50, 3, 9).weighted()),
        emulate_anyloss_class::<f32, i64>(exe, &ba, &FamilyCase::new(20, 7, 10)),
        emulate_anyloss_class::<f32, i64>(exe, &f2, &FamilyCase::new(20, 7, 11).no_grad()),
        emulate_anyloss_class::<bf16, i64>(exe, &f2, &FamilyCase::new(24, 10, 12).spread(2.0)),
        emulate_anyloss_class::<f16, i32>(exe, &acc, &FamilyCase::new(16, 12, 13).spread(1.0)),
    ];
    lines.iter().for_each(|l| println!("{l}"));
}

fn anyloss_on_gpu<T: GpuFloat>(gpu: &Gpu) {
    use losskit_losses::{AnyLoss, AnyMetric};
    let metrics = [AnyMetric::FBeta, AnyMetric::Accuracy, AnyMetric::GMean, AnyMetric::BalancedAccuracy];
    for (k, metric) in metrics.into_iter().enumerate() {
        let loss = AnyLoss::new().metric(metric).amplifier(8.0);
        for n in [1, 1000, 1 << 18] {
            let (x, t, w) = binary_inputs::<T>(n, 4.0, k % 2 == 1, n as u64 + k as u64);
            for weights in [None, Some(&w)] {
                let out = gpu.anyloss(&loss, x.view(), t.view(), weights.map(|w| w.view()), true).unwrap();
                let got = FamilyOut {
                    value: f64::from(out.value.to_f32()),
                    per_sample: out.per_sample.unwrap().iter().map(|v| f64::from(v.to_f32())).collect(),
                    grad: out.grad.map(|g| g.iter().map(|v| f64::from(v.to_f32())).collect()),
                };
                compare_binary(&format!("gpu anyloss {} n={n}", T::NAME), &loss, &x, &t, weights, &got);
            }
        }
        for (n, c) in [(64, 10), (4096, 100), (500, 2000)] {
            let case = FamilyCase { sample_weights: k % 2 == 0, ..FamilyCase::new(n, c, (n * c + k) as u64) };
            let (x, t, w) = family_inputs::<T>(None, &case);
            let out = gpu.anyloss_multiclass(&loss, x.view(), t.view(), w.as_ref().map(|w| w.view()), true).unwrap();
            let got = FamilyOut {
                value: f64::from(out.value.to_f32()),
                per_sample: out.per_sample.unwrap().iter().map(|v| f64::from(v.to_f32())).collect(),
                grad: out.grad.map(|g| g.iter().map(|v| f64::from(v.to_f32())).collect()),
            };
            compare_family(&format!("gpu anyloss {} n={n} c={c}", T::NAME), &loss, &x, &t, w.as_ref(), &got);
        }
    }
}

#[test]
fn anyloss_f32_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    anyloss_on_gpu::<f32>(gpu);
}

#[test]
fn anyloss_bf16_and_f16_match_cpu() {
    let Some(gpu) = gpu() else { return };
    anyloss_on_gpu::<bf16>(gpu);
    anyloss_on_gpu::<f16>(gpu);
}
