//! `losskit resample`: run a registered sampler on a CSV or .npz file and write the resampled set.
//!
//! Parse → build the sampler from the registry (`--set k=v`, checked) → read features and labels → call the library
//! → write the output atomically (temporary file in the destination's folder, then rename) → print the class counts
//! before and after. The numbers all come from the library; this module only moves rows and says what is wrong.

use std::fs;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use ndarray::{Array1, Array2, Ix1, Ix2};

use losskit::samplers::{Resampled, class_counts};

use crate::cli::{BadInput, bad};
use crate::npz::{self, AnyArray, NpzInput, NpzOutput};

const AFTER_HELP: &str = "\
Input (--input), told apart by its content (an .npz is a zip archive), whatever its name:
  .npz  arrays X [N, D] (float32/float64, or integers) and y [N] (int32/int64, or whole floats); nothing else
  CSV   a header row, then one row per sample: numbers only, comma-separated, no commas inside fields.
        The label column is --label COLUMN; without it a column named `y` or `label` is used (exactly one
        must exist). Labels are whole numbers; every other column is a feature.
Output (--output) has the input's format (an .npz or .csv extension that disagrees is an error):
  .npz  X (the input's float type; float64 for integer input), y (the input's integer type) and, where the
        method keeps original rows (random-over without shrinkage, random-under, near-miss, cleaners),
        sample_indices [M] (int64: the input row of each output row)
  CSV   the same header and column order as the input, the label column where it was; floats written in
        shortest round-trip form
Rows come out in imbalanced-learn's order. The class counts before and after are printed on stdout
(--quiet: nothing); a spinner shows on stderr while a large input (N·D ≥ 1,000,000) is resampled.
Every error is one line on stderr with exit code 2, and no output file is left behind.

Examples:
  losskit resample smote --input train.csv --output balanced.csv --label class --set k_neighbors=3
  losskit resample random-under --input train.npz --output under.npz --set sampling_strategy=0.5 --seed 7";

/// Arguments of `losskit resample`.
#[derive(clap::Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub struct ResampleArgs {
    /// The sampler, by its registered name (see `losskit list`)
    #[arg(value_name = "METHOD")]
    pub method: String,
    /// The data: an .npz with X and y, or a CSV file with a header
    #[arg(long, short, value_name = "IN.csv|IN.npz")]
    pub input: PathBuf,
    /// Where to write the resampled data (same format as the input)
    #[arg(long, short, value_name = "OUT.csv|OUT.npz")]
    pub output: PathBuf,
    /// CSV only: the label column (default: the column named y or label)
    #[arg(long, visible_alias = "label-column", value_name = "COLUMN")]
    pub label: Option<String>,
    /// Set a sampler parameter (repeatable; `losskit list` shows them)
    #[arg(long = "set", short = 's', value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub set: Vec<(String, String)>,
    /// Random seed (the output depends on it only, not on the thread count)
    #[arg(long, value_name = "S", default_value_t = 0)]
    pub seed: u64,
    /// Print nothing on success (no class counts, no spinner)
    #[arg(long, short)]
    pub quiet: bool,
    /// Print the seconds spent reading, resampling (the library call alone, `fit_resample_owned`), writing and in
    /// total, as one line `timing: read=… resample=… write=… total=…` on stderr
    #[arg(long)]
    pub timing: bool,
}

/// Splits `key=value` at the first `=`.
fn parse_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => Err(format!("expected key=value, got {s:?}")),
    }
}

/// Inputs of this size (N·D) or more get a spinner.
const LARGE: usize = 1_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Csv,
    Npz,
}

/// What the output needs to look like the input.
enum Layout {
    /// The CSV header and the label column's position in it.
    Csv { header: Vec<String>, label_at: usize },
    /// The dtypes of X and y.
    Npz { x_f32: bool, y_i32: bool },
}

struct Data {
    x: Array2<f64>,
    y: Array1<i64>,
    layout: Layout,
}

/// Runs `losskit resample`.
///
/// # Errors
/// Bad input (unknown sampler or parameter, unreadable or malformed file, a class too small for the method, a single
/// class, ...) as a [`BadInput`] or a [`losskit::Error`]; a failure to write the output otherwise.
pub fn run(args: &ResampleArgs) -> anyhow::Result<()> {
    let t_start = Instant::now();
    // Start rayon's worker threads now, so that they come up while the input is read rather than inside the
    // resampling call (the task itself does nothing).
    rayon::spawn(|| {});
    let entry = losskit::samplers::registry::find(&args.method)?;
    if !entry.kind.is_resampler() {
        let names: Vec<&str> = losskit::samplers::registry::resamplers().map(|e| e.name).collect();
        return Err(bad(format!(
            "{} is a {}, not a resampler; `losskit resample` runs one of: {}",
            entry.name,
            entry.kind.noun(),
            names.join(", ")
        )));
    }
    for (i, (k, _)) in args.set.iter().enumerate() {
        if args.set[..i].iter().any(|(prev, _)| prev == k) {
            return Err(bad(format!("--set {k} is given more than once")));
        }
    }
    let sampler = entry.build_with(&args.set)?;
    npz::check_output_path(&args.output)?;
    let format = if is_npz(&args.input)? { Format::Npz } else { Format::Csv };
    let ext = args.output.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let wanted = match ext.as_deref() {
        Some("npz") => Some(Format::Npz),
        Some("csv") => Some(Format::Csv),
        _ => None,
    };
    if wanted.is_some_and(|w| w != format) {
        let (is, ext) = if format == Format::Npz { (".npz", ".csv") } else { ("CSV", ".npz") };
        return Err(bad(format!(
            "--input {} is {is} but --output {} ends in {ext}; the output keeps the input's format",
            args.input.display(),
            args.output.display()
        )));
    }
    let data = match format {
        Format::Npz => {
            if args.label.is_some() {
                return Err(bad("--label applies to CSV input; an .npz holds its labels in the array `y`"));
            }
            read_npz(&args.input)?
        }
        Format::Csv => read_csv(&args.input, args.label.as_deref())?,
    };
    let t_read = t_start.elapsed();
    let (n, d) = data.x.dim();
    let spinner = if args.quiet || n.saturating_mul(d) < LARGE {
        indicatif::ProgressBar::hidden()
    } else {
        // indicatif draws nothing when stderr is not a terminal.
        let s = indicatif::ProgressBar::new_spinner();
        s.set_message(format!("{} on {n} × {d}", entry.name));
        s.enable_steady_tick(Duration::from_millis(120));
        s
    };
    let t0 = Instant::now();
    // The input is handed over: SMOTE-family samplers grow the output from its buffer instead of copying it.
    let result = sampler.fit_resample_owned(data.x, data.y.view(), args.seed);
    let t_resample = t0.elapsed();
    spinner.finish_and_clear();
    let out = result.with_context(|| format!("{} on {}", entry.name, args.input.display()))?;
    match &data.layout {
        Layout::Csv { header, label_at } => write_csv(&args.output, header, *label_at, &out)?,
        Layout::Npz { x_f32, y_i32 } => write_npz(&args.output, &out, *x_f32, *y_i32)?,
    }
    let t_write = t0.elapsed() - t_resample;
    if !args.quiet {
        let text = summary(&data.y, &out.y);
        std::io::stdout().lock().write_all(text.as_bytes()).context("writing to stdout")?;
    }
    if args.timing {
        let line = format!(
            "timing: read={:.4} resample={:.4} write={:.4} total={:.4}\n",
            t_read.as_secs_f64(),
            t_resample.as_secs_f64(),
            t_write.as_secs_f64(),
            t_start.elapsed().as_secs_f64()
        );
        std::io::stderr().lock().write_all(line.as_bytes()).context("writing to stderr")?;
    }
    Ok(())
}

/// The class counts before and after, one class per line, then the totals.
fn summary(before: &Array1<i64>, after: &Array1<i64>) -> String {
    let b = class_counts(before.view());
    let a = class_counts(after.view());
    let mut classes: Vec<i64> = b.keys().chain(a.keys()).copied().collect();
    classes.sort_unstable();
    classes.dedup();
    let mut rows = vec![("class".to_string(), "before".to_string(), "after".to_string())];
    for c in classes {
        let get = |m: &losskit::samplers::ClassCounts| m.get(&c).copied().unwrap_or(0).to_string();
        rows.push((c.to_string(), get(&b), get(&a)));
    }
    rows.push(("total".into(), before.len().to_string(), after.len().to_string()));
    let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let w1 = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
    let w2 = rows.iter().map(|r| r.2.len()).max().unwrap_or(0);
    rows.iter().map(|(c, x, y)| format!("{c:<w0$}  {x:>w1$}  {y:>w2$}\n")).collect()
}

/// Whether the file is an .npz (zip) archive: by its first bytes, whatever its name.
fn is_npz(path: &Path) -> anyhow::Result<bool> {
    let shown = path.display();
    let mut f = fs::File::open(path).map_err(|e| BadInput::with_source(format!("cannot open --input {shown}"), e))?;
    let mut head = [0u8; 2];
    let n = f.read(&mut head).map_err(|e| BadInput::with_source(format!("cannot read --input {shown}"), e))?;
    Ok(n == 2 && &head == b"PK")
}

/// The first non-finite value of a matrix, as (row, column, value).
fn first_non_finite(x: &Array2<f64>) -> Option<(usize, usize, f64)> {
    x.indexed_iter().find(|(_, v)| !v.is_finite()).map(|((r, c), &v)| (r, c, v))
}

fn read_npz(path: &Path) -> anyhow::Result<Data> {
    let mut input = NpzInput::open(path)?;
    let names = input.names().to_vec();
    if let Some(extra) = names.iter().find(|n| *n != "X" && *n != "y") {
        return Err(bad(format!(
            "losskit resample reads the arrays X and y only; {} also holds `{extra}`",
            path.display()
        )));
    }
    for need in ["X", "y"] {
        if !input.has(need) {
            return Err(bad(format!(
                "{} has no array `{need}`; resample needs X [N, D] and y [N]; found: {}",
                path.display(),
                if names.is_empty() { "nothing".to_string() } else { names.join(", ") }
            )));
        }
    }
    let (x, x_f32) = match input.read("X")? {
        AnyArray::F32(a) => (a.mapv(f64::from), true),
        AnyArray::F64(a) => (a, false),
        AnyArray::I32(a) => (a.mapv(f64::from), false),
        AnyArray::I64(a) => (a.mapv(|v| v as f64), false),
    };
    let shape = x.shape().to_vec();
    let x = x.into_dimensionality::<Ix2>().map_err(|_| bad(format!("`X` must have shape [N, D], got {shape:?}")))?;
    if let Some((r, c, v)) = first_non_finite(&x) {
        return Err(bad(format!("`X` holds {v} at row {r}, column {c}; every feature must be a finite number")));
    }
    let (y, y_i32) = match input.read("y")? {
        AnyArray::I32(a) => (a.mapv(i64::from), true),
        AnyArray::I64(a) => (a, false),
        AnyArray::F32(a) => (whole(a.mapv(f64::from))?, false),
        AnyArray::F64(a) => (whole(a)?, false),
    };
    let shape = y.shape().to_vec();
    let y = y.into_dimensionality::<Ix1>().map_err(|_| bad(format!("`y` must have shape [N], got {shape:?}")))?;
    if y.len() != x.nrows() {
        return Err(bad(format!("`y` has {} labels but `X` has {} rows", y.len(), x.nrows())));
    }
    Ok(Data { x, y, layout: Layout::Npz { x_f32, y_i32 } })
}

/// Float labels that are whole numbers, as integers.
fn whole(a: ndarray::ArrayD<f64>) -> anyhow::Result<ndarray::ArrayD<i64>> {
    if let Some((i, v)) = a.iter().enumerate().find(|&(_, &v)| !(v.is_finite() && v.fract() == 0.0)) {
        return Err(bad(format!("`y` must hold integer class labels, got {v} at index {i}")));
    }
    Ok(a.mapv(|v| v as i64))
}

fn read_csv(path: &Path, label: Option<&str>) -> anyhow::Result<Data> {
    let shown = path.display();
    let bytes = fs::read(path).map_err(|e| BadInput::with_source(format!("cannot open --input {shown}"), e))?;
    let text = String::from_utf8(bytes).map_err(|_| bad(format!("--input {shown} is not a UTF-8 text (CSV) file")))?;
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Err(bad(format!("--input {shown} is empty; expected a CSV header row such as f0,f1,y")));
    };
    let unquote = |s: &str| s.trim().trim_matches('"').trim().to_string();
    let header: Vec<String> = header.trim_start_matches('\u{feff}').split(',').map(unquote).collect();
    for (i, h) in header.iter().enumerate() {
        if h.is_empty() {
            return Err(bad(format!("{shown}: column {} of the header has no name", i + 1)));
        }
        if header[..i].contains(h) {
            return Err(bad(format!("{shown}: column `{h}` appears twice in the header")));
        }
    }
    let label_at = match label {
        Some(name) => header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| bad(format!("{shown}: no label column `{name}`; the columns are {}", header.join(", "))))?,
        None => {
            let found: Vec<usize> =
                header.iter().enumerate().filter(|(_, h)| *h == "y" || *h == "label").map(|p| p.0).collect();
            match found[..] {
                [i] => i,
                [] => {
                    return Err(bad(format!(
                        "{shown}: no column named y or label; name the label column with --label (columns: {})",
                        header.join(", ")
                    )));
                }
                _ => return Err(bad(format!("{shown}: both y and label columns exist; choose one with --label"))),
            }
        }
    };
    if header.len() < 2 {
        return Err(bad(format!(
            "{shown}: only the label column `{}`; at least one feature column is needed",
            header[label_at]
        )));
    }
    let d = header.len() - 1;
    let mut features: Vec<f64> = vec![];
    let mut labels: Vec<i64> = vec![];
    for (line_no, line) in lines {
        let line_no = line_no + 1;
        let fields: Vec<String> = line.split(',').map(unquote).collect();
        if fields.len() != header.len() {
            return Err(bad(format!(
                "{shown} line {line_no}: {} fields, but the header has {}",
                fields.len(),
                header.len()
            )));
        }
        for (j, (f, h)) in fields.iter().zip(&header).enumerate() {
            if j == label_at {
                let v = f.parse::<i64>().ok().or_else(|| {
                    f.parse::<f64>()
                        .ok()
                        .filter(|v| v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e15)
                        .map(|v| v as i64)
                });
                let v = v.ok_or_else(|| {
                    bad(format!("{shown} line {line_no}: label column `{h}` holds {f:?}, not an integer class label"))
                })?;
                labels.push(v);
            } else {
                let v: f64 = f
                    .parse()
                    .map_err(|_| bad(format!("{shown} line {line_no}: column `{h}` holds {f:?}, not a number")))?;
                if !v.is_finite() {
                    return Err(bad(format!(
                        "{shown} line {line_no}: column `{h}` holds {f}; every feature must be a finite number"
                    )));
                }
                features.push(v);
            }
        }
    }
    if labels.is_empty() {
        return Err(bad(format!("--input {shown} has a header but no rows")));
    }
    let n = labels.len();
    let x = Array2::from_shape_vec((n, d), features).context("assembling the feature matrix")?;
    Ok(Data { x, y: Array1::from(labels), layout: Layout::Csv { header, label_at } })
}

/// A temporary file beside `path`, renamed onto it by `persist`.
fn staged(path: &Path) -> anyhow::Result<tempfile::NamedTempFile> {
    let dir = npz::output_dir(path);
    tempfile::Builder::new()
        .prefix(".losskit-")
        .suffix(".csv.tmp")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))
}

fn write_csv(path: &Path, header: &[String], label_at: usize, out: &Resampled) -> anyhow::Result<()> {
    let shown = path.display().to_string();
    let tmp = staged(path)?;
    let mut w = BufWriter::new(tmp);
    let mut line = header.join(",");
    line.push('\n');
    w.write_all(line.as_bytes()).with_context(|| format!("writing {shown}"))?;
    for (row, label) in out.x.rows().into_iter().zip(out.y.iter()) {
        line.clear();
        let mut features = row.iter();
        for j in 0..header.len() {
            if j > 0 {
                line.push(',');
            }
            if j == label_at {
                line.push_str(&label.to_string());
            } else if let Some(v) = features.next() {
                line.push_str(&v.to_string()); // shortest representation that round-trips
            }
        }
        line.push('\n');
        w.write_all(line.as_bytes()).with_context(|| format!("writing {shown}"))?;
    }
    let tmp = w.into_inner().map_err(|e| e.into_error()).with_context(|| format!("writing {shown}"))?;
    tmp.as_file().sync_all().with_context(|| format!("writing {shown}"))?;
    tmp.persist(path).map_err(|e| e.error).with_context(|| format!("renaming the output to {shown}"))?;
    Ok(())
}

fn write_npz(path: &Path, out: &Resampled, x_f32: bool, y_i32: bool) -> anyhow::Result<()> {
    let mut file = NpzOutput::create(path)?;
    if x_f32 {
        file.add("X", &out.x.mapv(|v| v as f32))?;
    } else {
        file.add("X", &out.x)?;
    }
    if y_i32 {
        // The labels came in as int32 and samplers only copy them.
        file.add("y", &out.y.mapv(|v| v as i32))?;
    } else {
        file.add("y", &out.y)?;
    }
    if let Some(idx) = &out.sample_indices {
        let idx: Array1<i64> = idx.iter().map(|&i| i as i64).collect();
        file.add("sample_indices", &idx)?;
    }
    file.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn summary_lists_every_class_before_and_after() {
        let s = summary(&array![0, 0, 0, 1, 5], &array![0, 0, 0, 1, 1, 1]);
        assert_eq!(
            s,
            "class  before  after\n0           3      3\n1           1      3\n5           1      0\ntotal       5      6\n"
        );
    }

    #[test]
    fn tools_that_are_not_resamplers_are_refused_by_name() {
        for (method, noun) in [
            ("m-per-class", "batch sampler"),
            ("loss-reweighting", "sample reweighting"),
            ("cluster-likelihoods", "sample likelihoods"),
            ("sbcl-subclasses", "subclass assignment"),
        ] {
            let args = ResampleArgs {
                method: method.into(),
                input: PathBuf::from("does-not-exist.npz"),
                output: PathBuf::from("out.npz"),
                label: None,
                set: vec![],
                seed: 0,
                quiet: true,
                timing: false,
            };
            let e = run(&args).unwrap_err();
            assert!(e.chain().any(|c| c.is::<BadInput>()), "{e}");
            let text = e.to_string();
            assert!(text.starts_with(&format!("{method} is a {noun}, not a resampler;")), "{text}");
            assert!(text.contains("smote, ") && text.contains("rcal") && !text.contains("m-per-class,"), "{text}");
        }
    }

    #[test]
    fn pairs_split_at_the_first_equals_sign() {
        assert_eq!(parse_pair("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert!(parse_pair("=1").is_err());
        assert!(parse_pair("k").is_err());
    }
}
