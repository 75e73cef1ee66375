//! The `losskit` binary: parse, run one subcommand, report an error as one line on stderr.
//!
//! Exit codes: 0 success (a closed stdout pipe, as in `losskit list | head`, counts as success), 2 bad input or
//! usage, 1 internal failure. Everything else lives in [`cli`].

mod arena;
mod cli;
mod list;
mod loss;
mod metrics;
mod npz;
mod resample;

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::run(std::env::args_os()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if cli::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // Nothing sensible is left to do if stderr itself is closed.
            let _ = writeln!(std::io::stderr(), "losskit: {}", cli::one_line(&e));
            ExitCode::from(cli::exit_code(&e))
        }
    }
}
