//! `cargo xtask test`: every check CI runs, in order, with a summary.
//!
//! The test binaries of the whole workspace are built once (one feature set, the `test` profile, `--keep-going` so one
//! broken crate does not hide the others), then each crate's binaries run as one step in dependency order. Clippy is
//! a second build and the doc tests a third; all three use the same features so nothing is compiled twice over.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::util::{self, Artifact, Package};

/// Features every build step enables: the gradcheck utilities that the crates' tests use, and the facade's CUDA
/// re-export (losskit-cuda is built anyway as a workspace member, so this costs only the facade and the CLI).
const FEATURES: &str = "losskit-tensor/testing,losskit/cuda";

/// The NVRTC wheel: CUDA 13.0, the version cudarc is built for (feature `cuda-13000`) and that driver 580 runs.
pub const NVRTC_WHEEL: &str = "nvidia-cuda-nvrtc==13.0.88";

struct Step {
    name: String,
    ok: bool,
    secs: f64,
    note: String,
}

pub fn run(args: &[String]) -> Result<bool> {
    if let Some(a) = args.first() {
        anyhow::bail!("cargo xtask test takes no arguments (got {a:?})");
    }
    let mut steps: Vec<Step> = Vec::new();
    let mut step = |name: &str, f: &mut dyn FnMut() -> Result<(bool, String)>| {
        println!("\n==> {name}");
        let t = Instant::now();
        let (ok, note) = f().unwrap_or_else(|e| (false, format!("{e:#}")));
        let secs = t.elapsed().as_secs_f64();
        println!("<== {name}: {} ({})", if ok { "ok" } else { "FAILED" }, util::duration(secs));
        steps.push(Step { name: name.to_string(), ok, secs, note });
    };

    step("fmt", &mut || Ok((util::status(util::cargo().args(["fmt", "--all", "--check"]))?, String::new())));
    step("clippy", &mut || {
        let mut cmd = util::cargo();
        cmd.args(["clippy", "--workspace", "--all-targets", "--features", FEATURES, "--", "-D", "warnings"]);
        Ok((util::status(&mut cmd)?, String::new()))
    });

    let packages = util::dependency_order(&util::workspace()?, &["normal", "build"])?;
    let mut artifacts: Vec<Artifact> = Vec::new();
    step("build tests", &mut || {
        let mut cmd = util::cargo();
        cmd.args(["build", "--profile", "test", "--workspace", "--lib", "--tests", "--keep-going"]);
        cmd.args(["--features", FEATURES]);
        let (ok, found) = util::build_artifacts(&mut cmd)?;
        artifacts = found.into_iter().filter(|a| a.test).collect();
        Ok((ok, if ok { String::new() } else { "some crates do not compile (see their steps)".into() }))
    });
    for pkg in &packages {
        let mine: Vec<&Artifact> = artifacts.iter().filter(|a| a.package_id == pkg.id).collect();
        step(&format!("test {}", pkg.name), &mut || run_package_tests(pkg, &mine));
    }
    step("nvrtc kernels", &mut || nvrtc_step(&packages, &artifacts));
    step("doc tests", &mut || {
        let mut cmd = util::cargo();
        cmd.args(["test", "--workspace", "--doc", "--no-fail-fast", "--features", FEATURES]);
        Ok((util::status(&mut cmd)?, String::new()))
    });
    // Broken intra-doc links and other rustdoc lints fail the run (libraries only: the `losskit` binary and the
    // facade library would otherwise collide on one output folder).
    step("docs", &mut || {
        let mut cmd = util::cargo();
        cmd.args(["doc", "--workspace", "--no-deps", "--lib", "--features", FEATURES]);
        cmd.env("RUSTDOCFLAGS", "-D warnings");
        Ok((util::status(&mut cmd)?, String::new()))
    });

    let passed = steps.iter().filter(|s| s.ok).count();
    let failed = steps.len() - passed;
    let total: f64 = steps.iter().map(|s| s.secs).sum();
    println!("\nxtask test summary ({} in all)", util::duration(total));
    for s in &steps {
        let note = if s.note.is_empty() { String::new() } else { format!("  ({})", s.note) };
        println!("  {:<8} {:<28} {:>12}{note}", if s.ok { "ok" } else { "FAILED" }, s.name, util::duration(s.secs));
    }
    println!("xtask test: {passed} passed, {failed} failed");
    Ok(failed == 0)
}

/// Runs a package's test executables (library first) from its folder, as `cargo test` would.
fn run_package_tests(pkg: &Package, artifacts: &[&Artifact]) -> Result<(bool, String)> {
    let missing: Vec<&str> = pkg
        .test_targets
        .iter()
        .filter(|(name, kind)| !artifacts.iter().any(|a| &a.target == name && &a.kind == kind))
        .map(|(name, _)| name.as_str())
        .collect();
    let mut ordered: Vec<&Artifact> = artifacts.to_vec();
    ordered.sort_by_key(|a| (a.kind != "lib", a.kind != "bin", a.target.clone()));
    let mut ok = true;
    let mut failures = Vec::new();
    for a in ordered {
        let mut cmd = test_command(pkg, &a.path);
        if !util::status(&mut cmd)? {
            ok = false;
            failures.push(format!("{} {} failed", a.kind, a.target));
        }
    }
    if !missing.is_empty() {
        ok = false;
        failures.push(format!("did not compile: {}", missing.join(", ")));
    }
    Ok((ok, failures.join("; ")))
}

fn test_command(pkg: &Package, exe: &Path) -> Command {
    let mut cmd = Command::new(exe);
    cmd.current_dir(&pkg.dir)
        .env("CARGO_MANIFEST_DIR", &pkg.dir)
        .env("CARGO_PKG_NAME", &pkg.name)
        .env("CARGO_PKG_VERSION", &pkg.version)
        .env("INSTA_UPDATE", "no");
    cmd
}

/// Ensures libnvrtc (PyPI wheel in the user cache), then runs the CUDA crate's NVRTC test with it required.
fn nvrtc_step(packages: &[Package], artifacts: &[Artifact]) -> Result<(bool, String)> {
    let pkg = packages.iter().find(|p| p.name == "losskit-cuda").context("no losskit-cuda package")?;
    let Some(exe) = artifacts.iter().find(|a| a.package_id == pkg.id && a.kind == "test" && a.target == "gpu") else {
        return Ok((false, "the losskit-cuda test binary `gpu` did not build".into()));
    };
    let lib = ensure_nvrtc()?;
    let mut cmd = test_command(pkg, &exe.path);
    cmd.args(["every_kernel_compiles_with_nvrtc", "--exact", "--nocapture"])
        .env("LD_LIBRARY_PATH", util::prepend_path("LD_LIBRARY_PATH", &lib))
        .env("LOSSKIT_REQUIRE_NVRTC", "1");
    println!("$ LD_LIBRARY_PATH={} LOSSKIT_REQUIRE_NVRTC=1 {}", lib.display(), util::show(&cmd));
    let out = cmd.output().context("running the NVRTC test")?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !stdout.contains("1 passed") {
        return Ok((false, "every_kernel_compiles_with_nvrtc did not pass".into()));
    }
    Ok((out.status.success(), String::new()))
}

/// The folder holding `libnvrtc.so.13`, installing the `nvidia-cuda-nvrtc` wheel into the cache when absent.
pub fn ensure_nvrtc() -> Result<PathBuf> {
    let target = util::cache_dir().join("losskit").join("nvrtc");
    let lib = target.join("nvidia").join("cu13").join("lib");
    if lib.join("libnvrtc.so.13").exists() {
        println!("NVRTC: using {}", lib.display());
        return Ok(lib);
    }
    std::fs::create_dir_all(&target).with_context(|| format!("creating {}", target.display()))?;
    let mut cmd = Command::new("python3");
    cmd.args(["-m", "pip", "install", "--quiet", "--no-deps", "--upgrade", "--target"]).arg(&target).arg(NVRTC_WHEEL);
    if !util::status(&mut cmd)? {
        anyhow::bail!("pip could not install {NVRTC_WHEEL} into {}", target.display());
    }
    if !lib.join("libnvrtc.so.13").exists() {
        anyhow::bail!("{NVRTC_WHEEL} installed, but {} has no libnvrtc.so.13", lib.display());
    }
    Ok(lib)
}
