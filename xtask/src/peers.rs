//! `cargo xtask peers`: runs the peer-comparison scripts (`benches/peers/*.py`) against the release `losskit` binary
//! and prepends the dated run to `docs/benchmarks.md` (older runs are kept below it).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::util;

/// Python modules the scripts import, with the pip package that provides each.
const PEERS: &[(&str, &str)] = &[
    ("torch", "torch"),
    ("torchvision", "torchvision"),
    ("sklearn", "scikit-learn"),
    ("imblearn", "imbalanced-learn"),
    ("pytorch_metric_learning", "pytorch-metric-learning"),
    ("faiss", "faiss-cpu"),
    ("numpy", "numpy"),
    ("scipy", "scipy"),
];

/// Heading under which runs accumulate, newest first.
const RUNS: &str = "## Runs";

const HEADER: &str = "# Benchmarks

Measured numbers for losskit. Peer comparisons come from `cargo xtask peers`, which runs each script in
`benches/peers/` against the release `losskit` binary; every run is kept, newest first, with its date, machine,
thread count and commit.

";

pub fn run(args: &[String]) -> Result<bool> {
    let threads = match args {
        [] => std::thread::available_parallelism().map_or(1, |n| n.get()),
        [flag, n] if flag == "--threads" => n.parse().with_context(|| format!("--threads {n:?}"))?,
        _ => bail!("usage: cargo xtask peers [--threads N]"),
    };
    let root = util::root();
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(root.join("benches/peers"))
        .map(|rd| rd.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "py")).collect())
        .unwrap_or_default();
    scripts.sort();
    if scripts.is_empty() {
        bail!("no peer scripts in benches/peers/*.py");
    }
    let python = python()?;
    ensure_peers(&python)?;

    let mut cmd = util::cargo();
    cmd.args(["build", "--release", "-p", "losskit-cli", "--bin", "losskit"]);
    let (ok, artifacts) = util::build_artifacts(&mut cmd)?;
    let bin = artifacts.iter().find(|a| a.target == "losskit" && a.kind == "bin").map(|a| a.path.clone());
    let Some(bin) = bin.filter(|_| ok) else { bail!("building the release losskit binary failed") };

    let mut sections = String::new();
    let mut all_ok = true;
    for script in &scripts {
        let name = script.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        println!("==> {name}");
        let out = Command::new(&python)
            .arg(script)
            .current_dir(&root)
            .env("LOSSKIT_BIN", &bin)
            .env("LOSSKIT_THREADS", threads.to_string())
            .env("RAYON_NUM_THREADS", threads.to_string())
            .env("OMP_NUM_THREADS", threads.to_string())
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("running {}", script.display()))?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() {
            println!("{text}");
            sections.push_str(&text);
        } else {
            all_ok = false;
            eprintln!("{name} failed ({})", out.status);
            sections.push_str(&format!("#### {name}\n\nThe script failed ({}); no numbers from this run.", out.status));
        }
        sections.push_str("\n\n");
    }

    let (cpu, cpus) = util::cpu_model();
    let date = util::utc_now();
    let run = format!(
        "### {date}: {cpu}, {threads} threads\n\n- Date: {date}\n- Machine: {cpu} ({cpus} logical CPUs)\n- Threads: \
         {threads}\n- Commit: {}\n\n{}",
        util::git_commit(),
        demote(&sections)
    );
    let path = root.join("docs/benchmarks.md");
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    std::fs::create_dir_all(root.join("docs"))?;
    write_atomic(&path, &prepend_run(&old, &run))?;
    println!("wrote {} ({} script(s), newest run first)", path.display(), scripts.len());
    Ok(all_ok)
}

/// Adds `run` at the top of the Runs list of `old` (creating the file's header and the list when missing).
pub fn prepend_run(old: &str, run: &str) -> String {
    let run = format!("{}\n\n", run.trim_end());
    if old.trim().is_empty() {
        return format!("{HEADER}{RUNS}\n\n{run}");
    }
    match old.find(&format!("\n{RUNS}\n")) {
        Some(at) => {
            let (head, tail) = old.split_at(at + RUNS.len() + 2);
            format!("{head}\n{run}{}", tail.trim_start_matches('\n'))
        }
        // An existing file without a Runs list keeps its text above the new list.
        None => format!("{}\n\n{RUNS}\n\n{run}", old.trim_end()),
    }
}

/// Shifts a script section's Markdown headings so that its top heading sits just below the run's `###` (level 4);
/// lines inside code fences are left alone.
fn demote(text: &str) -> String {
    let level = |line: &str| line.chars().take_while(|&c| c == '#').count();
    let mut fenced = false;
    let mut top = usize::MAX;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            top = top.min(level(line));
        }
    }
    let shift = 4_usize.saturating_sub(top);
    let mut out = String::new();
    fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        if !fenced && line.starts_with('#') {
            let l = level(line);
            out.push_str(&"#".repeat((l + shift).min(6)));
            out.push_str(&line[l..]);
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("md.tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}

/// `$LOSSKIT_PEERS_PYTHON` when set, else the venv in the cache (created when missing).
fn python() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("LOSSKIT_PEERS_PYTHON").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let venv = util::cache_dir().join("losskit").join("peers-venv");
    let python = venv.join("bin").join("python");
    if !python.exists() {
        let mut cmd = Command::new("python3");
        cmd.args(["-m", "venv"]).arg(&venv);
        if !util::status(&mut cmd)? {
            bail!("python3 -m venv {} failed", venv.display());
        }
    }
    Ok(python)
}

/// Installs the peer packages whose modules do not import.
fn ensure_peers(python: &Path) -> Result<()> {
    let mut missing = Vec::new();
    for (module, package) in PEERS {
        let ok = Command::new(python)
            .args(["-c", &format!("import {module}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            missing.push(*package);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let mut cmd = Command::new(python);
    cmd.args(["-m", "pip", "install", "--quiet"]).args(&missing);
    if !util::status(&mut cmd)? {
        bail!("pip could not install {}", missing.join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_accumulate_newest_first() {
        let first = prepend_run("", "### run 1\n\nnumbers 1");
        assert!(first.starts_with("# Benchmarks"));
        let second = prepend_run(&first, "### run 2\n\nnumbers 2\n");
        let (a, b) = (second.find("### run 2").unwrap(), second.find("### run 1").unwrap());
        assert!(a < b, "{second}");
        assert_eq!(second.matches(RUNS).count(), 1);
        assert!(second.contains("numbers 1") && second.contains("numbers 2"));
        let other = prepend_run("# Notes\n\nhand-written text\n", "### run 3\n");
        assert!(other.starts_with("# Notes") && other.contains("hand-written text") && other.contains("### run 3"));
    }

    #[test]
    fn section_headings_go_below_the_run() {
        assert_eq!(
            demote("## Focal\n```\n# not a heading\n```\ntext"),
            "#### Focal\n```\n# not a heading\n```\ntext\n"
        );
        assert_eq!(demote("# Top\n## Sub"), "#### Top\n##### Sub\n");
        assert_eq!(demote("### CE\ntext"), "#### CE\ntext\n");
        assert_eq!(demote("##### Deep"), "##### Deep\n");
    }
}
