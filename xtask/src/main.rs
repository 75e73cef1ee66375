//! Project tasks for losskit, run as `cargo xtask <command>` (alias in `.cargo/config.toml`):
//!
//! * `test`: formatting, clippy, every crate's tests in dependency order, the NVRTC compile of every CUDA kernel,
//!   doc tests; prints a summary and fails if any step failed.
//! * `bench [ARGS]`: the criterion benches (`cargo bench -p losskit-benches ARGS`).
//! * `peers [--threads N]`: runs `benches/peers/*.py` against the release `losskit` binary and prepends a dated run to
//!   `docs/benchmarks.md`.
//! * `gpu-bundle`: builds the CUDA test and bench executables into `gpu-bundle/` with a `run.sh` for a GPU machine.
//! * `publish-plan`: the crates in publish order, with manifest checks.

mod bundle;
mod peers;
mod publish;
mod test;
mod util;

use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  test                 fmt, clippy, each crate's tests in dependency order, NVRTC kernel compile, doc tests
  bench [ARGS]         cargo bench -p losskit-benches ARGS
  peers [--threads N]  peer comparisons (benches/peers/*.py) -> docs/benchmarks.md
  gpu-bundle           build gpu-bundle/ (CUDA test + bench executables, run.sh) for a GPU machine
  publish-plan         crates in publish order with manifest checks";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or(&[]);
    let result = match args.first().map(String::as_str) {
        Some("test") => test::run(rest),
        Some("bench") => util::bench(rest),
        Some("peers") => peers::run(rest),
        Some("gpu-bundle") => bundle::run(rest),
        Some("publish-plan") => publish::run(rest),
        Some("help" | "-h" | "--help") | None => {
            println!("{USAGE}");
            Ok(true)
        }
        Some(other) => Err(anyhow::anyhow!("unknown command {other:?}\n\n{USAGE}")),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::from(2)
        }
    }
}
