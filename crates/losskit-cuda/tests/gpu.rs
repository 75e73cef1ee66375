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
                ["LK_CE_KERNEL(", "LK_SM_KERNEL(", "LK_BIN_KERNEL("]
                    .iter()
                    .find_map(|p| l.strip_prefix(p))?
                    .split(',')
                    .next()
            });
            let extra = if *name == "cross_entropy" { vec!["ce_reduce"] } else { vec![] };
            let mut count = 0;
            for kernel in kernels.chain(extra) {
                count += 1;
                assert!(text.contains(&format!(".entry {kernel}(")), "{name}: no entry {kernel} in the PTX");
            }
            assert!(count >= 6, "{name}: only {count} kernels found");
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
    // Per-row losses and value come from f32 arithmetic whatever the input type.
    let lrel = 2e-5;
    let ps = cpu.per_sample.clone().unwrap().to_vec();
    let pmax = ps.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    let per_sample_floor = if T::NAME == "f32" { 1e-6 } else { 1e-5 };
    close(
        &format!("{what} per_sample"),
        &got.per_sample,
        &ps,
        lrel,
        per_sample_floor * pmax.max(1e-3) / pmax.max(1e-300),
    );
    close(&format!("{what} value"), &[got.value], &[cpu.value], lrel, 0.0);
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
    let err = gpu.class_loss(&LdrKl::new(), x.view(), labels(4, 5, 0, 30).view(), None, true).unwrap_err();
    assert!(matches!(err, Error::Input { .. }), "{err:?}");
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
    let ps = cpu.per_sample.clone().unwrap().to_vec();
    close(&format!("{what} per_sample"), &got.per_sample, &ps, 2e-5, 1e-6);
    close(&format!("{what} value"), &[got.value], &[cpu.value], 2e-5, 0.0);
    if let Some(g) = &got.grad {
        let floor = if T::NAME == "f16" { 2f64.powi(-25) } else { 0.0 };
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
