//! `cargo xtask gpu-bundle`: builds the CUDA crate's test and bench executables, the facade's GPU-training test
//! (`test-gpu_train`) and the `losskit` CLI built with `--features cuda` into `gpu-bundle/` (git-ignored) with a
//! `run.sh` that runs them on a GPU machine (among others `losskit arena --device cuda` beside `--device cpu`) and
//! writes `report.md` (and copies it into `$OUT` when set).
//!
//! The executables load `libcuda` and `libnvrtc` at run time, so the bundle needs no Rust and no CUDA toolkit to be
//! built; the GPU machine supplies the driver and NVRTC (its CUDA toolkit, or the wheel that PyTorch pulls in).

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::util;

/// The bundle must stay well under the 64 MiB that can be carried to the GPU machine.
const MAX_BYTES: u64 = 48 << 20;

const RUN_SH: &str = include_str!("gpu_run.sh");

pub fn run(args: &[String]) -> Result<bool> {
    if let Some(a) = args.first() {
        bail!("cargo xtask gpu-bundle takes no arguments (got {a:?})");
    }
    let root = util::root();
    let bundle = root.join("gpu-bundle");
    if bundle.exists() {
        std::fs::remove_dir_all(&bundle).with_context(|| format!("removing {}", bundle.display()))?;
    }
    std::fs::create_dir_all(&bundle)?;

    let mut cmd = util::cargo();
    cmd.args(["test", "-p", "losskit-cuda", "--release", "--no-run"]);
    let (ok, artifacts) = util::build_artifacts(&mut cmd)?;
    if !ok {
        bail!("building the losskit-cuda tests failed");
    }
    let tests: Vec<_> = artifacts.iter().filter(|a| a.test && a.kind == "test").collect();
    if tests.is_empty() {
        bail!("no losskit-cuda integration-test executable was built");
    }
    for t in &tests {
        copy_exe(&t.path, &bundle.join(format!("test-{}", t.target)))?;
    }

    let mut cmd = util::cargo();
    cmd.args(["build", "-p", "losskit-cuda", "--release", "--example", "ce_bench"]);
    let (ok, artifacts) = util::build_artifacts(&mut cmd)?;
    let bench = artifacts.iter().find(|a| a.target == "ce_bench").filter(|_| ok);
    let Some(bench) = bench else { bail!("building the ce_bench example failed") };
    copy_exe(&bench.path, &bundle.join("ce_bench"))?;

    let mut cmd = util::cargo();
    cmd.args(["build", "-p", "losskit-cuda", "--release", "--example", "linear_ce_bench"]);
    let (ok, artifacts) = util::build_artifacts(&mut cmd)?;
    let bench = artifacts.iter().find(|a| a.target == "linear_ce_bench").filter(|_| ok);
    let Some(bench) = bench else { bail!("building the linear_ce_bench example failed") };
    copy_exe(&bench.path, &bundle.join("linear_ce_bench"))?;
    let torch = root.join("crates/losskit-cuda/examples/linear_ce_torch.py");
    std::fs::copy(&torch, bundle.join("linear_ce_torch.py")).with_context(|| format!("copying {}", torch.display()))?;

    let torch = root.join("crates/losskit-cuda/examples/ce_torch.py");
    std::fs::copy(&torch, bundle.join("ce_torch.py")).with_context(|| format!("copying {}", torch.display()))?;

    let mut cmd = util::cargo();
    cmd.args(["build", "-p", "losskit-cuda", "--release", "--example", "pairwise_bench"]);
    let (ok, artifacts) = util::build_artifacts(&mut cmd)?;
    let bench = artifacts.iter().find(|a| a.target == "pairwise_bench").filter(|_| ok);
    let Some(bench) = bench else { bail!("building the pairwise_bench example failed") };
    copy_exe(&bench.path, &bundle.join("pairwise_bench"))?;
    let pml = root.join("crates/losskit-cuda/examples/pairwise_torch.py");
    std::fs::copy(&pml, bundle.join("pairwise_torch.py")).with_context(|| format!("copying {}", pml.display()))?;

    // The facade's GPU-training tests (crates/losskit/tests/gpu_train.rs, feature cuda).
    let mut cmd = util::cargo();
    cmd.args(["test", "-p", "losskit", "--release", "--features", "cuda", "--no-run"]);
    let (ok, artifacts) = util::build_artifacts(&mut cmd)?;
    let train = artifacts.iter().find(|a| a.test && a.kind == "test" && a.target == "gpu_train").filter(|_| ok);
    let Some(train) = train else { bail!("building the losskit gpu_train test failed") };
    copy_exe(&train.path, &bundle.join("test-gpu_train"))?;

    // The CLI with CUDA, for `losskit arena --device cuda` (fully stripped: only its size matters here).
    let mut cmd = util::cargo();
    cmd.args(["build", "-p", "losskit-cli", "--release", "--features", "cuda", "--bin", "losskit"]);
    let (ok, artifacts) = util::build_artifacts(&mut cmd)?;
    let cli = artifacts.iter().find(|a| a.target == "losskit" && a.kind == "bin").filter(|_| ok);
    let Some(cli) = cli else { bail!("building the losskit CLI with --features cuda failed") };
    let to = bundle.join("losskit");
    std::fs::copy(&cli.path, &to).with_context(|| format!("copying {} to {}", cli.path.display(), to.display()))?;
    let _ = Command::new("strip").arg("--strip-all").arg(&to).status();
    make_executable(&to)?;

    let run_sh = bundle.join("run.sh");
    std::fs::write(&run_sh, RUN_SH)?;
    make_executable(&run_sh)?;
    std::fs::write(
        bundle.join("README.txt"),
        format!(
            "losskit GPU bundle, built {} from commit {}.\nRun ./run.sh on the GPU machine; it writes report.md \
             here and into $OUT when set.\n",
            util::utc_now(),
            util::git_commit()
        ),
    )?;

    let size = util::tree_size(&bundle);
    println!("\ngpu-bundle: {} ({:.1} MiB)", bundle.display(), size as f64 / (1 << 20) as f64);
    for e in std::fs::read_dir(&bundle)?.flatten() {
        let len = e.metadata().map_or(0, |m| m.len());
        println!("  {:<24} {:>8.1} MiB", e.file_name().to_string_lossy(), len as f64 / (1 << 20) as f64);
    }
    if size > MAX_BYTES {
        bail!("the bundle is {size} bytes, over the {MAX_BYTES}-byte budget");
    }
    Ok(true)
}

/// Copies an executable, stripping its symbols when `strip` exists (a smaller bundle; panics keep their messages).
fn copy_exe(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    let _ = Command::new("strip").arg("--strip-debug").arg(to).status();
    make_executable(to)
}

fn make_executable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("chmod {}", path.display()))
}
