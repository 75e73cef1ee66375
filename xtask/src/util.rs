//! Shared helpers: the workspace root, `cargo metadata`, running commands, build artifacts, dates.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// The workspace root (the folder above `xtask/`).
pub fn root() -> PathBuf {
    let xtask = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask.parent().map_or_else(|| xtask.to_path_buf(), Path::to_path_buf)
}

/// `cargo` as Cargo itself was invoked (the `CARGO` variable), run in the workspace root.
pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

/// Shell-like rendering of a command, for logs.
pub fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` with inherited output; Ok(true) on exit status 0.
pub fn status(cmd: &mut Command) -> Result<bool> {
    println!("$ {}", show(cmd));
    let st = cmd.status().with_context(|| format!("running {}", show(cmd)))?;
    Ok(st.success())
}

/// `cargo bench -p losskit-benches ARGS`.
pub fn bench(args: &[String]) -> Result<bool> {
    status(cargo().args(["bench", "-p", "losskit-benches"]).args(args))
}

/// One workspace package, from `cargo metadata --no-deps`.
#[derive(Clone, Debug)]
pub struct Package {
    pub name: String,
    pub id: String,
    pub version: String,
    pub dir: PathBuf,
    pub description: Option<String>,
    pub license: Option<String>,
    pub license_file: Option<String>,
    pub repository: Option<String>,
    /// `publish = false` in the manifest.
    pub unpublished: bool,
    /// (dependency name, kind: "normal", "dev" or "build").
    pub deps: Vec<(String, String)>,
    /// Targets built as test harnesses by `cargo build --lib --tests`: (name, kind).
    pub test_targets: Vec<(String, String)>,
}

/// Workspace members in the order of the root manifest's `members` list.
pub fn workspace() -> Result<Vec<Package>> {
    let out = cargo()
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!("cargo metadata failed");
    }
    let meta: Value = serde_json::from_slice(&out.stdout).context("parsing cargo metadata")?;
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let mut by_id = HashMap::new();
    for p in meta["packages"].as_array().into_iter().flatten() {
        let manifest = PathBuf::from(text(p, "manifest_path").unwrap_or_default());
        let deps = p["dependencies"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|d| (text(d, "name").unwrap_or_default(), text(d, "kind").unwrap_or_else(|| "normal".into())))
            .collect();
        let test_targets = p["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["test"].as_bool() == Some(true))
            .filter_map(|t| {
                let kind = t["kind"].as_array()?.first()?.as_str()?.to_string();
                let kind = if kind == "rlib" || kind == "proc-macro" { "lib".to_string() } else { kind };
                ["lib", "bin", "test"].contains(&kind.as_str()).then(|| (text(t, "name").unwrap_or_default(), kind))
            })
            .collect();
        let pkg = Package {
            name: text(p, "name").unwrap_or_default(),
            id: text(p, "id").unwrap_or_default(),
            version: text(p, "version").unwrap_or_default(),
            dir: manifest.parent().map(Path::to_path_buf).unwrap_or_default(),
            description: text(p, "description"),
            license: text(p, "license"),
            license_file: text(p, "license_file"),
            repository: text(p, "repository"),
            unpublished: p["publish"].as_array().is_some_and(|a| a.is_empty()),
            deps,
            test_targets,
        };
        by_id.insert(pkg.id.clone(), pkg);
    }
    let members = meta["workspace_members"].as_array().context("cargo metadata: no workspace_members")?;
    Ok(members.iter().filter_map(Value::as_str).filter_map(|id| by_id.remove(id)).collect())
}

/// Packages in dependency order (each after the workspace packages it depends on), ties kept in manifest order.
/// Dependencies of the kinds in `kinds` count; a cycle through them is an error.
pub fn dependency_order(packages: &[Package], kinds: &[&str]) -> Result<Vec<Package>> {
    let names: Vec<&str> = packages.iter().map(|p| p.name.as_str()).collect();
    let mut placed: Vec<Package> = Vec::new();
    let mut left: Vec<&Package> = packages.iter().collect();
    while !left.is_empty() {
        let ready = left.iter().position(|p| {
            p.deps.iter().all(|(d, k)| {
                !kinds.contains(&k.as_str())
                    || d == &p.name
                    || !names.contains(&d.as_str())
                    || placed.iter().any(|q| &q.name == d)
            })
        });
        match ready {
            Some(i) => placed.push(left.remove(i).clone()),
            None => {
                bail!("dependency cycle among {}", left.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", "))
            }
        }
    }
    Ok(placed)
}

/// An executable that a cargo build produced.
#[derive(Clone, Debug)]
pub struct Artifact {
    pub package_id: String,
    pub target: String,
    pub kind: String,
    pub test: bool,
    pub path: PathBuf,
}

/// Runs a cargo build command with `--message-format=json-render-diagnostics` (diagnostics go to stderr as usual)
/// and returns whether it succeeded and every executable it produced.
pub fn build_artifacts(cmd: &mut Command) -> Result<(bool, Vec<Artifact>)> {
    cmd.arg("--message-format=json-render-diagnostics").stdout(Stdio::piped()).stderr(Stdio::inherit());
    println!("$ {}", show(cmd));
    let out = cmd.output().with_context(|| format!("running {}", show(cmd)))?;
    let mut artifacts = Vec::new();
    for line in out.stdout.split(|&b| b == b'\n') {
        let Ok(msg) = serde_json::from_slice::<Value>(line) else { continue };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let Some(exe) = msg["executable"].as_str() else { continue };
        artifacts.push(Artifact {
            package_id: msg["package_id"].as_str().unwrap_or_default().to_string(),
            target: msg["target"]["name"].as_str().unwrap_or_default().to_string(),
            kind: msg["target"]["kind"][0].as_str().unwrap_or_default().to_string(),
            test: msg["profile"]["test"].as_bool().unwrap_or(false),
            path: PathBuf::from(exe),
        });
    }
    Ok((out.status.success(), artifacts))
}

/// The user cache folder: `$XDG_CACHE_HOME`, else `~/.cache`.
pub fn cache_dir() -> PathBuf {
    match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| ".".into())).join(".cache"),
    }
}

/// Prepends `dir` to a `PATH`-like variable's current value.
pub fn prepend_path(var: &str, dir: &Path) -> String {
    match std::env::var(var) {
        Ok(old) if !old.is_empty() => format!("{}:{old}", dir.display()),
        _ => dir.display().to_string(),
    }
}

/// UTC date and time now as `YYYY-MM-DD HH:MM UTC`.
pub fn utc_now() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", rem / 3600, rem % 3600 / 60)
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's `civil_from_days`).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The CPU model from /proc/cpuinfo and the number of logical CPUs.
pub fn cpu_model() -> (String, usize) {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or_else(|| "unknown CPU".to_string(), |(_, v)| v.trim().to_string());
    let count = info.lines().filter(|l| l.starts_with("processor")).count();
    (model, count.max(1))
}

/// `git rev-parse --short HEAD`, with `-dirty` when the tree has changes (read-only git commands).
pub fn git_commit() -> String {
    let run = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(root())
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let Some(head) = run(&["rev-parse", "--short", "HEAD"]) else { return "unknown".into() };
    let dirty = run(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    if dirty { format!("{head}-dirty") } else { head }
}

/// Seconds as `12.3 s` or `4 min 05 s`.
pub fn duration(secs: f64) -> String {
    if secs < 60.0 { format!("{secs:.1} s") } else { format!("{} min {:02} s", (secs / 60.0) as u64, secs as u64 % 60) }
}

/// Total size of the files under `dir`, in bytes.
pub fn tree_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_are_right() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    fn pkg(name: &str, deps: &[(&str, &str)]) -> Package {
        Package {
            name: name.into(),
            id: name.into(),
            version: "0.1.0".into(),
            dir: PathBuf::new(),
            description: None,
            license: None,
            license_file: None,
            repository: None,
            unpublished: false,
            deps: deps.iter().map(|(d, k)| (d.to_string(), k.to_string())).collect(),
            test_targets: vec![],
        }
    }

    #[test]
    fn dependency_order_puts_dependencies_first_and_keeps_ties() {
        let ps = vec![
            pkg("cli", &[("facade", "normal")]),
            pkg("tensor", &[("ndarray", "normal")]),
            pkg("facade", &[("tensor", "normal"), ("cli", "dev")]),
        ];
        let names = |v: Vec<Package>| v.into_iter().map(|p| p.name).collect::<Vec<_>>();
        assert_eq!(names(dependency_order(&ps, &["normal"]).unwrap()), ["tensor", "facade", "cli"]);
        assert!(dependency_order(&ps, &["normal", "dev"]).is_err());
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(3.25), "3.2 s");
        assert_eq!(duration(125.0), "2 min 05 s");
    }
}
