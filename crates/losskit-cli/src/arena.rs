//! `losskit arena`: train the same model with several losses (and a sampler, and class weights) over seeds and print
//! a comparison table.
//!
//! Parse → build an [`ArenaConfig`] (dataset from `--dataset` or `--data`, runs from `--losses`, `--sampler`,
//! `--class-weighted`) → [`arena::run`] with a progress bar → print the text table; with `--out DIR` also write
//! `arena.csv` and `arena.md` (each to a temporary file in DIR, then renamed). All numerics live in
//! `losskit::models::arena`; with `--device cuda` the trainings run through `losskit::cuda_train` (feature `cuda`).

use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

use losskit::models::arena::{self, ArenaConfig, ArenaReport, RunSpec};
use losskit::models::datasets;

use crate::cli::{BadInput, bad};

const AFTER_HELP: &str = "\
Runs (what is compared):
  no --losses, --sampler or --class-weighted: the default six, cross-entropy; focal (gamma=2);
    cross-entropy with balanced class weights; cross-entropy after random-over; ldr-kl with
    balanced class weights; focal (gamma=2) with balanced class weights
  otherwise: one run per --losses item (default cross-entropy), plus, with --class-weighted, the
    first loss with balanced class weights, plus, with --sampler, the first loss after that sampler
Each item is a registered name, optionally with parameters: focal:gamma=1.5:alpha=0.25.

For each seed the data is split once (stratified, --test-fraction held out) and standardised on the
training rows; every run trains the same freshly initialised model on it (an MLP with 16 ReLU
units, Adam with lr=0.01 and weight decay 0.01, batch 64) and is scored on the held-out rows. The
table shows mean ± sample standard deviation over seeds of accuracy, balanced accuracy, macro-F1
and the recall of the class rarest in the training set.

Devices (--device):
  cpu (default): every training step in f64 on the CPU, trainings in parallel
  cuda: every training step on the first GPU, in f32, one training after another: the training
    rows, parameters and optimiser state stay on the GPU; the forward and backward products run
    in cuBLAS, the loss value and logits gradient in losskit's fused loss kernels, the SGD/Adam
    update in a kernel. Splits, standardisation, sampler, class weights, initial weights and
    minibatch order are those of the CPU run (same seeds), and scoring the held-out rows runs on
    the CPU. GPU losses: cross-entropy, focal, generalized-cross-entropy, mae, sum-exponential,
    comp-sum, ldr-kl, z-loss. Needs a build with `--features cuda`, an NVIDIA driver, and NVRTC
    and cuBLAS (CUDA 13) on the library path.

Examples:
  losskit arena
  losskit arena --device cuda --seeds 1
  losskit arena --losses cross-entropy,focal:gamma=1 --sampler random-under --seeds 5 --out results
  losskit arena --data my.csv --label y --epochs 100";

/// Arguments of `losskit arena`.
#[derive(clap::Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub struct ArenaArgs {
    /// A CSV file with a header row: one label column (--label) and numeric feature columns
    #[arg(long, value_name = "FILE.csv", requires = "label", conflicts_with = "dataset")]
    pub data: Option<PathBuf>,
    /// The label column of --data
    #[arg(long, value_name = "COLUMN", requires = "data")]
    pub label: Option<String>,
    /// An embedded dataset: wine-quality (see docs/datasets.md)
    #[arg(long, value_name = "NAME", default_value = "wine-quality")]
    pub dataset: String,
    /// Losses to compare, comma-separated registered names, each optionally NAME:KEY=VALUE:...
    #[arg(long, value_name = "A,B,..", value_delimiter = ',')]
    pub losses: Vec<String>,
    /// Add a run of the first loss after this sampler (NAME or NAME:KEY=VALUE:...)
    #[arg(long, value_name = "NAME")]
    pub sampler: Option<String>,
    /// Add a run of the first loss with balanced class weights (n / (K·n_k))
    #[arg(long)]
    pub class_weighted: bool,
    /// Number of seeds (0, 1, .., N-1): one split and one training per run for each
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub seeds: u64,
    /// Training epochs [default: 40]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub epochs: Option<u64>,
    /// Held-out fraction of each split, in (0, 1) [default: 0.3]
    #[arg(long, value_name = "F")]
    pub test_fraction: Option<f64>,
    /// Also write arena.csv and arena.md into this folder (created if missing)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Where the models train: cpu, or cuda (the first GPU; see Devices below)
    #[arg(long, value_name = "DEVICE", value_enum, default_value_t = Device::Cpu)]
    pub device: Device,
    /// No progress bar or notes on stderr
    #[arg(long, short)]
    pub quiet: bool,
}

/// The values of `--device`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    /// Every training step on the CPU, in f64.
    Cpu,
    /// Every training step on the first CUDA GPU, in f32 (needs a build with `--features cuda`).
    Cuda,
}

/// An opened training device.
enum Opened {
    Cpu,
    #[cfg(feature = "cuda")]
    Cuda(losskit::cuda_train::CudaArena),
}

/// The message for `--device cuda` in a build without the `cuda` feature.
#[cfg(not(feature = "cuda"))]
const NO_CUDA_BUILD: &str = "--device cuda: this losskit was built without CUDA support; rebuild it with \
                                 `cargo build --release -p losskit-cli --features cuda`";

/// Opens `--device` before any data is read or output written, so that a missing GPU fails at once.
fn open(device: Device) -> anyhow::Result<Opened> {
    match device {
        Device::Cpu => Ok(Opened::Cpu),
        #[cfg(feature = "cuda")]
        Device::Cuda => {
            let gpu = losskit::cuda_train::CudaArena::new(0).context("--device cuda: cannot open GPU 0")?;
            Ok(Opened::Cuda(gpu))
        }
        #[cfg(not(feature = "cuda"))]
        Device::Cuda => Err(bad(NO_CUDA_BUILD)),
    }
}

/// Runs `losskit arena`.
///
/// # Errors
/// A [`BadInput`] or a library error (exit code 2) for an unreadable or malformed --data file, an unknown dataset,
/// loss or sampler, bad parameters or a split impossible on the data, `--device cuda` without the `cuda` feature,
/// without a usable GPU or with a loss the GPU does not train; an I/O error when writing the outputs.
pub fn run(args: &ArenaArgs) -> anyhow::Result<()> {
    let device = open(args.device)?;
    let cfg = config(args)?;
    let report = train(&cfg, args.quiet, &device)?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(report.to_text().as_bytes()).context("writing the table to stdout")?;
    stdout.flush().context("writing the table to stdout")?;
    if let Some(dir) = &args.out {
        write_outputs(dir, &report)?;
        if !args.quiet {
            eprintln!("wrote {} and {}", dir.join("arena.csv").display(), dir.join("arena.md").display());
        }
    }
    Ok(())
}

/// The arena configuration the arguments describe.
fn config(args: &ArenaArgs) -> anyhow::Result<ArenaConfig> {
    let dataset = match (&args.data, &args.label) {
        (Some(path), Some(label)) => load(path, label)?,
        (Some(_), None) => return Err(bad("--data needs --label COLUMN")),
        _ => {
            // The library's UnknownName message points at `losskit list`, which lists losses, samplers and metrics;
            // name the embedded datasets here instead.
            if !datasets::DATASETS.iter().any(|d| d.name == args.dataset) {
                let known: Vec<&str> = datasets::DATASETS.iter().map(|d| d.name).collect();
                return Err(bad(format!("unknown --dataset {:?}; embedded: {}", args.dataset, known.join(", "))));
            }
            datasets::by_name(&args.dataset).with_context(|| format!("loading --dataset {}", args.dataset))?
        }
    };
    let mut cfg = ArenaConfig::new(dataset).seeds((0..args.seeds).collect());
    if let Some(e) = args.epochs {
        cfg = cfg.epochs(e as usize);
    }
    if let Some(f) = args.test_fraction {
        cfg = cfg.test_fraction(f);
    }
    if !args.losses.is_empty() || args.sampler.is_some() || args.class_weighted {
        cfg = cfg.runs(runs(args)?);
    }
    Ok(cfg)
}

fn runs(args: &ArenaArgs) -> anyhow::Result<Vec<RunSpec>> {
    let items: Vec<&str> = args.losses.iter().map(|s| s.trim()).filter(|s| !s.is_empty()).collect();
    let items = if items.is_empty() { vec!["cross-entropy"] } else { items };
    let mut losses = Vec::with_capacity(items.len());
    for item in &items {
        let (name, params) = arena::parse_spec(item).with_context(|| format!("--losses item {item:?}"))?;
        losses.push((name, params));
    }
    let mut runs: Vec<RunSpec> = losses.iter().map(|(n, p)| RunSpec::loss_with(n, p.clone())).collect();
    let (first, first_params) = &losses[0];
    if args.class_weighted {
        runs.push(RunSpec::loss_with(first, first_params.clone()).balanced());
    }
    if let Some(s) = &args.sampler {
        let (name, params) = arena::parse_spec(s).with_context(|| format!("--sampler {s:?}"))?;
        runs.push(RunSpec::loss_with(first, first_params.clone()).sampler(&name, params));
    }
    Ok(runs)
}

fn load(path: &Path, label: &str) -> anyhow::Result<datasets::Dataset> {
    let shown = path.display();
    let file = File::open(path).map_err(|e| BadInput::with_source(format!("cannot open --data {shown}"), e))?;
    let mut ds = datasets::load_csv(BufReader::new(file), label).with_context(|| format!("reading --data {shown}"))?;
    ds.name = path.file_name().map_or_else(|| shown.to_string(), |n| n.to_string_lossy().into_owned());
    Ok(ds)
}

/// Runs the arena on `device` with a progress bar on stderr (hidden with --quiet, and by indicatif when stderr is no
/// terminal).
fn train(cfg: &ArenaConfig, quiet: bool, device: &Opened) -> anyhow::Result<ArenaReport> {
    let bar = if quiet { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new(0) };
    if let Ok(style) = indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} trainings, {elapsed}") {
        bar.set_style(style.progress_chars("=> "));
    }
    let mut progress = |done: usize, total: usize| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    let report = match device {
        Opened::Cpu => {
            bar.set_message(format!("arena on {}", cfg.dataset.name));
            arena::run(cfg, &mut progress)
        }
        #[cfg(feature = "cuda")]
        Opened::Cuda(gpu) => {
            use losskit::models::arena::ArenaBackend;
            if !quiet {
                eprintln!("training on {}", gpu.name());
            }
            bar.set_message(format!("arena on {} ({})", cfg.dataset.name, gpu.name()));
            arena::run_on(cfg, gpu, &mut progress)
        }
    };
    bar.finish_and_clear();
    report.with_context(|| format!("arena on {}", cfg.dataset.name))
}

/// Writes `arena.csv` and `arena.md` into `dir`: both to temporary files first, then renamed, so an interrupted run
/// leaves no half-written table.
fn write_outputs(dir: &Path, report: &ArenaReport) -> anyhow::Result<()> {
    let shown = dir.display();
    std::fs::create_dir_all(dir).map_err(|e| BadInput::with_source(format!("cannot create --out {shown}"), e))?;
    let mut staged = Vec::new();
    let mut builder = tempfile::Builder::new();
    builder.prefix(".arena-").suffix(".tmp");
    // A temporary file is private (0600); the tables are ordinary outputs, so ask for 0666 less the umask, the
    // mode `std::fs::write` would give.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    for (name, text) in [("arena.csv", report.to_csv()), ("arena.md", report.to_markdown())] {
        let mut tmp = builder
            .tempfile_in(dir)
            .map_err(|e| BadInput::with_source(format!("cannot write into --out {shown}"), e))?;
        tmp.write_all(text.as_bytes()).and_then(|()| tmp.flush()).with_context(|| format!("writing {name}"))?;
        staged.push((tmp, dir.join(name)));
    }
    for (tmp, target) in staged {
        tmp.persist(&target).map_err(|e| e.error).with_context(|| format!("renaming to {}", target.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Wrap {
        #[command(flatten)]
        args: ArenaArgs,
    }

    fn parse(argv: &[&str]) -> Result<ArenaArgs, clap::Error> {
        Wrap::try_parse_from(std::iter::once("arena").chain(argv.iter().copied())).map(|w| w.args)
    }

    fn labels(argv: &[&str]) -> Vec<String> {
        config(&parse(argv).unwrap()).unwrap().runs.into_iter().map(|r| r.label).collect()
    }

    #[test]
    fn runs_follow_the_documented_rules() {
        assert_eq!(labels(&[]), ArenaConfig::default_runs().into_iter().map(|r| r.label).collect::<Vec<_>>());
        assert_eq!(labels(&["--losses", "cross-entropy,focal:gamma=1"]), ["cross-entropy", "focal (gamma=1)"]);
        assert_eq!(labels(&["--sampler", "random-under"]), ["cross-entropy", "cross-entropy + random-under"]);
        assert_eq!(
            labels(&["--losses", "focal", "--class-weighted", "--sampler", "random-over:shrinkage=0.5"]),
            ["focal", "focal + balanced weights", "focal + random-over"]
        );
        let cfg = config(&parse(&["--seeds", "5", "--epochs", "7", "--test-fraction", "0.3"]).unwrap()).unwrap();
        assert_eq!((cfg.seeds, cfg.epochs, cfg.test_fraction), (vec![0, 1, 2, 3, 4], 7, 0.3));
        assert_eq!(cfg.dataset.name, "wine-quality");
    }

    #[test]
    fn bad_arguments_are_errors_with_exit_code_2() {
        assert!(parse(&["--data", "x.csv"]).is_err(), "--data requires --label");
        assert!(parse(&["--label", "y"]).is_err(), "--label requires --data");
        assert!(parse(&["--seeds", "0"]).is_err());
        let e = config(&parse(&["--dataset", "nope"]).unwrap()).unwrap_err();
        assert_eq!(crate::cli::exit_code(&e), 2);
        assert_eq!(format!("{e:#}"), "unknown --dataset \"nope\"; embedded: wine-quality");
        let e = config(&parse(&["--losses", "focal:gamma"]).unwrap()).unwrap_err();
        assert_eq!(crate::cli::exit_code(&e), 2);
        let e = config(&parse(&["--data", "/nonexistent/x.csv", "--label", "y"]).unwrap()).unwrap_err();
        assert_eq!(crate::cli::exit_code(&e), 2);
        assert!(format!("{e:#}").starts_with("cannot open --data /nonexistent/x.csv"), "{e:#}");
    }

    #[test]
    fn csv_data_runs_end_to_end_and_writes_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("toy.csv");
        let mut text = String::from("f1,f2,y\n");
        for i in 0..60 {
            let (k, s) = (i % 3, i as f64 * 0.01);
            text.push_str(&format!("{},{},{}\n", k as f64 * 3.0 + s, (k as f64 - 1.0) * 2.0 - s, ["a", "b", "c"][k]));
        }
        std::fs::write(&csv, text).unwrap();
        let out = dir.path().join("results/nested");
        let args = parse(&[
            "--data",
            csv.to_str().unwrap(),
            "--label",
            "y",
            "--losses",
            "cross-entropy",
            "--seeds",
            "2",
            "--epochs",
            "5",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ])
        .unwrap();
        let cfg = config(&args).unwrap();
        assert_eq!(cfg.dataset.name, "toy.csv");
        assert_eq!(cfg.dataset.class_names, ["a", "b", "c"]);
        let report = train(&cfg, true, &Opened::Cpu).unwrap();
        write_outputs(&out, &report).unwrap();
        let csv_out = std::fs::read_to_string(out.join("arena.csv")).unwrap();
        assert_eq!(csv_out, report.to_csv());
        assert!(std::fs::read_to_string(out.join("arena.md")).unwrap().starts_with("| run |"));
        let leftovers: Vec<_> = std::fs::read_dir(&out).unwrap().filter_map(|e| e.ok()).collect();
        assert_eq!(leftovers.len(), 2, "no temporary file is left behind");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            // Same mode as a file written plainly under the same umask (not tempfile's private 0600).
            std::fs::write(out.join("plain"), "x").unwrap();
            assert_eq!(mode(&out.join("arena.csv")), mode(&out.join("plain")));
            assert_eq!(mode(&out.join("arena.md")), mode(&out.join("plain")));
        }
    }
}
