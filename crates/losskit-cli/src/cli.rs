//! Argument parsing, dispatch to one module per subcommand, and the error policy (exit codes, one-line messages).
//!
//! Bad input is any [`losskit::Error`] (the library's typed errors), a clap usage error, or a [`BadInput`] that the
//! subcommands raise for what they check themselves (unreadable input file, missing array, wrong dtype, ...): all
//! exit with code 2. Anything else is an internal failure and exits with 1.

use std::error::Error as StdError;
use std::ffi::OsString;
use std::fmt;
use std::io;

use clap::{Parser, Subcommand};

use crate::{arena, list, loss, metrics, resample};

/// Losses with analytic gradients, samplers and metrics for imbalanced, noisy and metric learning.
///
/// `losskit list` shows every loss, sampler and metric with its parameters; `losskit loss NAME`
/// computes a loss and its gradient on arrays from an .npz file; `losskit arena` compares losses
/// by training the same model with each.
///
/// Errors are one line on stderr. Exit codes: 0 success, 2 bad input or usage, 1 internal failure.
// (verbatim: clap is built without `wrap_help`, so these lines are broken by hand to fit 100 columns)
#[derive(Parser, Debug)]
#[command(name = "losskit", version, propagate_version = true, verbatim_doc_comment)]
pub struct Cli {
    /// The subcommand to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train the same model with each loss (and sampler) and compare them over seeds.
    Arena(arena::ArenaArgs),
    /// Compute a loss and its gradient on arrays read from an .npz file (optionally timing it).
    Loss(loss::LossArgs),
    /// List every loss, sampler and metric with its parameters, defaults, ranges and paper.
    List(list::ListArgs),
    /// Report classification, calibration and retrieval metrics from a CSV or .npz file.
    Metrics(metrics::MetricsArgs),
    /// Over- or under-sample a CSV or .npz data set with a registered sampler.
    Resample(resample::ResampleArgs),
}

/// Parses `args` (the first being the program name) and runs the subcommand.
///
/// `--help` and `--version` print to stdout and return `Ok`.
///
/// # Errors
/// A usage error ([`BadInput`]), or whatever the subcommand returns.
pub fn run<I, T>(args: I) -> anyhow::Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help / --version: clap renders them; a closed pipe here is not an error worth reporting.
            return match e.print() {
                Err(io) if io.kind() != io::ErrorKind::BrokenPipe => Err(io.into()),
                _ => Ok(()),
            };
        }
        Err(e) => return Err(usage_error(&e, subcommand(&args)).into()),
    };
    match &cli.command {
        Command::Arena(args) => arena::run(args),
        Command::Loss(args) => loss::run(args),
        Command::List(args) => list::run(args),
        Command::Metrics(args) => metrics::run(args),
        Command::Resample(args) => resample::run(args),
    }
}

/// Turns clap's multi-line usage error into one line: its first paragraph (the message, with any list of missing
/// arguments) without clap's `error: ` prefix, and a pointer to the right help.
fn usage_error(e: &clap::Error, subcommand: Option<String>) -> BadInput {
    let text = e.to_string();
    let message: Vec<&str> =
        text.lines().map(str::trim).skip_while(|l| l.is_empty()).take_while(|l| !l.is_empty()).collect();
    let message = message.join(" ");
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    // Keep clap's suggestion ("tip: a similar argument exists: '--input'"), drop its usage block.
    let tips: Vec<&str> = text.lines().map(str::trim).filter(|l| l.starts_with("tip: ")).collect();
    let message = if tips.is_empty() { message.to_string() } else { format!("{message}; {}", tips.join("; ")) };
    let command = subcommand.map_or_else(|| "losskit".to_string(), |s| format!("losskit {s}"));
    BadInput::new(format!("{message} (see `{command} --help`)"))
}

/// The subcommand named in `args`, if any (the first argument equal to a subcommand's name).
fn subcommand(args: &[OsString]) -> Option<String> {
    use clap::CommandFactory;
    let cmd = Cli::command();
    let names: Vec<&str> = cmd.get_subcommands().map(|c| c.get_name()).filter(|n| *n != "help").collect();
    args.iter().skip(1).filter_map(|a| a.to_str()).find(|a| names.contains(a)).map(str::to_string)
}

/// An error in what the user gave (a file, an array, an argument) found by the CLI itself; exit code 2.
#[derive(Debug)]
pub struct BadInput {
    message: String,
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl BadInput {
    /// A bad-input error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        BadInput { message: message.into(), source: None }
    }

    /// A bad-input error with this message, caused by `source` (printed after it, separated by ": ").
    pub fn with_source(message: impl Into<String>, source: impl StdError + Send + Sync + 'static) -> Self {
        BadInput { message: message.into(), source: Some(Box::new(source)) }
    }
}

impl fmt::Display for BadInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for BadInput {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn StdError + 'static))
    }
}

/// A [`BadInput`] as an `anyhow::Error`, for `return Err(bad(..))`.
pub fn bad(message: impl Into<String>) -> anyhow::Error {
    BadInput::new(message).into()
}

/// The exit code for an error: 2 for bad input or usage, 1 for an internal failure.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    let is_bad = e.chain().any(|c| c.is::<BadInput>() || c.is::<losskit::Error>() || c.is::<clap::Error>());
    if is_bad { 2 } else { 1 }
}

/// Whether the error is a write to a closed pipe (`losskit list | head`), which counts as success.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe))
}

/// The whole error chain on one line, each cause after ": " (no message of ours or the library's spans lines, but a
/// system or zip message might).
pub fn one_line(e: &anyhow::Error) -> String {
    let text = format!("{e:#}");
    text.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_errors_and_bad_input_exit_2_others_exit_1() {
        let lib: anyhow::Error = losskit::Error::Empty { arg: "logits" }.into();
        assert_eq!(exit_code(&lib), 2);
        assert_eq!(exit_code(&lib.context("computing focal")), 2);
        assert_eq!(exit_code(&bad("no such array").context("reading in.npz")), 2);
        let internal: anyhow::Error = io::Error::other("disk on fire").into();
        assert_eq!(exit_code(&internal), 1);
    }

    #[test]
    fn broken_pipe_is_recognised_through_context() {
        let e = anyhow::Error::from(io::Error::from(io::ErrorKind::BrokenPipe)).context("writing to stdout");
        assert!(is_broken_pipe(&e));
        assert!(!is_broken_pipe(&bad("x")));
    }

    #[test]
    fn one_line_joins_the_chain_and_removes_line_breaks() {
        let e = anyhow::Error::from(BadInput::with_source("reading in.npz", io::Error::other("bad\nthing")));
        assert_eq!(one_line(&e), "reading in.npz: bad thing");
    }

    #[test]
    fn usage_errors_are_one_line_and_exit_2() {
        let e = run(["losskit", "loss"]).unwrap_err();
        assert_eq!(exit_code(&e), 2);
        let line = one_line(&e);
        assert!(!line.contains('\n') && !line.starts_with("error:"), "{line}");
        assert!(line.contains("--input") && line.contains("<NAME>"), "{line}");
        assert!(line.ends_with("(see `losskit loss --help`)"), "{line}");
        let e = run(["losskit", "loss", "focal", "-i", "x.npz", "--set", "gamma"]).unwrap_err();
        assert_eq!(exit_code(&e), 2);
        assert!(one_line(&e).ends_with("(see `losskit loss --help`)"), "{}", one_line(&e));
        let e = run(["losskit", "frobnicate"]).unwrap_err();
        assert!(one_line(&e).ends_with("(see `losskit --help`)"), "{}", one_line(&e));
        let e = run(["losskit", "loss", "focal", "--inptu", "x.npz"]).unwrap_err();
        let line = one_line(&e);
        assert!(line.contains("'--inptu'") && line.contains("tip: ") && line.contains("'--input'"), "{line}");
    }

    #[test]
    fn the_command_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
