//! `losskit metrics`: a report of classification, multi-label, calibration or retrieval metrics from predictions in
//! a CSV or .npz file.
//!
//! Parse → read the columns or arrays → infer the task (unless `--task`) → call the report functions of
//! `losskit::metrics::summary` → print text or one JSON object. The numbers all come from the library; this module only moves arrays and says what is wrong with them.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use ndarray::{Array1, Array2, ArrayD, Axis, Ix1, Ix2};

use losskit::metrics::summary;
use losskit::metrics::{Distance, RetrievalConfig, RetrievalK};

use crate::cli::bad;
use crate::npz::{AnyArray, NpzInput};

const AFTER_HELP: &str = "\
Input (--input): an .npz file, or a CSV file with a header row.
  .npz arrays   y_true [N] (int, or [N, L] 0/1 for multi-label), y_score [N] or [N, C] (float) and/or
                y_pred [N] (or [N, L]); retrieval: embeddings [N, D] + labels [N], or query [Nq, D],
                query_labels [Nq], reference [Nr, D], reference_labels [Nr]
  CSV columns   y_true, y_score (binary) or y_score_0 .. y_score_<C-1> (one per class), y_pred;
                multi-label: y_true_0 .. y_true_<L-1> with y_pred_<l> and/or y_score_<l>
Task inferred when --task is not given, in this order: retrieval when `embeddings` or `query` is present;
multilabel when y_true is a matrix; multiclass when y_score is a matrix or a label is above 1; binary
otherwise. Without y_pred the prediction is y_score >= --threshold (binary, multi-label) or the arg-max
score (multiclass). Calibration keys (brier_score_loss, log_loss, ece, mce) are added when the scores are
probabilities (in [0, 1]; multiclass rows summing to 1).

Output: one `key value` line per metric (keys named after scikit-learn's functions and averaging), or with
--json one object {\"task\": ..., \"n_samples\": ..., <key>: <value>, ...} (NaN written as null).

Examples:
  losskit metrics --input predictions.csv
  losskit metrics --input scores.npz --task multiclass --json
  losskit metrics --input embeddings.npz --k max_bin_count --distance cosine
  losskit metrics --input scores.npz --plot plots/

--plot DIR (binary and multiclass with y_score) writes roc.png/.svg, pr.png/.svg and, when the scores are
probabilities, reliability.png/.svg (one-vs-rest curves per class for multiclass). Text is drawn with the
font in $LOSSKIT_FONT, else DejaVu Sans or Liberation Sans from /usr/share/fonts; without one the charts are
drawn without text.";

/// Arguments of `losskit metrics`.
#[derive(clap::Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub struct MetricsArgs {
    /// The predictions: a .npz file or a CSV file with a header
    #[arg(long, short, value_name = "FILE")]
    pub input: PathBuf,
    /// binary, multiclass, multilabel or retrieval (default: inferred from the data)
    #[arg(long, value_name = "TASK", value_parser = ["binary", "multiclass", "multilabel", "retrieval"], hide_possible_values = true)]
    pub task: Option<String>,
    /// Print one JSON object instead of text
    #[arg(long)]
    pub json: bool,
    /// Score at or above which a binary or multi-label prediction is positive (when y_pred is absent)
    #[arg(long, value_name = "T", default_value_t = 0.5, allow_negative_numbers = true)]
    pub threshold: f64,
    /// Retrieval: neighbours examined: all, max_bin_count or an integer
    #[arg(long, value_name = "K", default_value = "max_bin_count")]
    pub k: String,
    /// Retrieval: euclidean or cosine
    #[arg(long, value_name = "DIST", default_value = "euclidean")]
    pub distance: String,
    /// Write ROC, precision-recall and reliability diagrams (PNG and SVG) into this folder (binary, multiclass)
    #[arg(long, value_name = "DIR")]
    pub plot: Option<PathBuf>,
}

/// The tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Task {
    Binary,
    Multiclass,
    Multilabel,
    Retrieval,
}

impl Task {
    fn name(self) -> &'static str {
        match self {
            Task::Binary => "binary",
            Task::Multiclass => "multiclass",
            Task::Multilabel => "multilabel",
            Task::Retrieval => "retrieval",
        }
    }
}

/// An array read from the input, as f64 (labels are checked to be whole numbers when converted).
#[derive(Debug, Clone)]
struct Arr {
    name: String,
    data: ArrayD<f64>,
}

impl Arr {
    fn ndim(&self) -> usize {
        self.data.ndim()
    }

    fn floats1(&self) -> anyhow::Result<Array1<f64>> {
        self.data.clone().into_dimensionality::<Ix1>().map_err(|_| self.shape_error("[N]"))
    }

    fn floats2(&self) -> anyhow::Result<Array2<f64>> {
        self.data.clone().into_dimensionality::<Ix2>().map_err(|_| self.shape_error("[N, C]"))
    }

    fn shape_error(&self, want: &str) -> anyhow::Error {
        bad(format!("`{}` must have shape {want}, got {:?}", self.name, self.data.shape()))
    }

    /// Whole numbers as i64; a fractional or non-finite value is bad input.
    fn ints(&self) -> anyhow::Result<ArrayD<i64>> {
        if let Some((i, v)) = self.data.iter().enumerate().find(|&(_, &v)| !(v.is_finite() && v.fract() == 0.0)) {
            return Err(bad(format!("`{}` must hold integer labels, got {v} at flat index {i}", self.name)));
        }
        Ok(self.data.mapv(|v| v as i64))
    }

    fn ints1(&self) -> anyhow::Result<Array1<i64>> {
        self.ints()?.into_dimensionality::<Ix1>().map_err(|_| self.shape_error("[N]"))
    }

    fn ints2(&self) -> anyhow::Result<Array2<i64>> {
        self.ints()?.into_dimensionality::<Ix2>().map_err(|_| self.shape_error("[N, L]"))
    }
}

/// Every array the command reads, by name.
#[derive(Debug, Default)]
struct Inputs {
    arrays: Vec<Arr>,
}

const KNOWN: [&str; 9] =
    ["y_true", "y_score", "y_pred", "embeddings", "labels", "query", "query_labels", "reference", "reference_labels"];

impl Inputs {
    fn get(&self, name: &str) -> Option<&Arr> {
        self.arrays.iter().find(|a| a.name == name)
    }

    fn need(&self, name: &str, task: Task) -> anyhow::Result<&Arr> {
        self.get(name)
            .ok_or_else(|| bad(format!("the {} task needs an array `{name}`; found: {}", task.name(), self.found())))
    }

    fn found(&self) -> String {
        if self.arrays.is_empty() {
            "nothing".into()
        } else {
            self.arrays.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", ")
        }
    }
}

/// Reads an .npz input: every array must be one the command knows.
fn read_npz(path: &Path) -> anyhow::Result<Inputs> {
    let mut input = NpzInput::open(path)?;
    let names = input.names().to_vec();
    if let Some(extra) = names.iter().find(|n| !KNOWN.contains(&n.as_str())) {
        return Err(bad(format!(
            "losskit metrics does not read an array named `{extra}` (it reads {}); found: {}",
            KNOWN.join(", "),
            names.join(", ")
        )));
    }
    let mut arrays = vec![];
    for name in names {
        let data = match input.read(&name)? {
            AnyArray::F32(a) => a.mapv(f64::from),
            AnyArray::F64(a) => a,
            AnyArray::I32(a) => a.mapv(f64::from),
            // Labels beyond 2^53 are not labels anyone uses; the integer check catches what rounding would hide.
            AnyArray::I64(a) => a.mapv(|v| v as f64),
        };
        arrays.push(Arr { name, data });
    }
    Ok(Inputs { arrays })
}

/// Reads a CSV input with a header row: `y_true`, `y_score` / `y_score_<c>`, `y_pred` / `y_pred_<l>`,
/// `y_true_<l>`. Numbers only; fields may be quoted; blank lines are skipped.
fn read_csv(path: &Path) -> anyhow::Result<Inputs> {
    let shown = path.display();
    let bytes =
        fs::read(path).map_err(|e| crate::cli::BadInput::with_source(format!("cannot open --input {shown}"), e))?;
    let text = String::from_utf8(bytes).map_err(|_| bad(format!("--input {shown} is not a UTF-8 text (CSV) file")))?;
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Err(bad(format!("--input {shown} is empty; expected a CSV header such as y_true,y_score")));
    };
    let unquote = |s: &str| s.trim().trim_matches('"').trim().to_string();
    let header: Vec<String> = header.trim_start_matches('\u{feff}').split(',').map(unquote).collect();
    // Column → (array name, position in the matrix or None for a vector).
    let mut columns: Vec<(String, Option<usize>)> = vec![];
    for (i, h) in header.iter().enumerate() {
        if header[..i].contains(h) {
            return Err(bad(format!("{shown}: column `{h}` appears twice")));
        }
        let parsed = ["y_true", "y_score", "y_pred"].iter().find_map(|base| {
            if h == base {
                Some((base.to_string(), None))
            } else {
                h.strip_prefix(base)
                    .and_then(|rest| rest.strip_prefix('_'))
                    .and_then(|c| c.parse::<usize>().ok())
                    .map(|c| (base.to_string(), Some(c)))
            }
        });
        match parsed {
            Some(p) => columns.push(p),
            None => {
                return Err(bad(format!(
                    "{shown}: unknown column `{h}`; expected y_true, y_score or y_score_<class>, y_pred (multi-label: \
                     y_true_<l>, y_pred_<l>, y_score_<l>)"
                )));
            }
        }
    }
    let mut rows: Vec<Vec<f64>> = vec![];
    for (line_no, line) in lines {
        let fields: Vec<String> = line.split(',').map(unquote).collect();
        if fields.len() != header.len() {
            return Err(bad(format!(
                "{shown} line {}: {} fields, but the header has {}",
                line_no + 1,
                fields.len(),
                header.len()
            )));
        }
        let mut row = Vec::with_capacity(fields.len());
        for (f, h) in fields.iter().zip(&header) {
            let v: f64 = f
                .parse()
                .map_err(|_| bad(format!("{shown} line {}: column `{h}` holds {f:?}, not a number", line_no + 1)))?;
            row.push(v);
        }
        rows.push(row);
    }
    let n = rows.len();
    let mut arrays = vec![];
    for base in ["y_true", "y_score", "y_pred"] {
        let plain = columns.iter().position(|(b, c)| b == base && c.is_none());
        let mut indexed: Vec<(usize, usize)> = columns
            .iter()
            .enumerate()
            .filter_map(|(i, (b, c))| (b == base).then_some(()).and(c.map(|c| (c, i))))
            .collect();
        indexed.sort_unstable();
        match (plain, indexed.is_empty()) {
            (Some(_), false) => {
                return Err(bad(format!("{shown}: give either `{base}` or `{base}_<c>` columns, not both")));
            }
            (Some(i), true) => {
                arrays.push(Arr { name: base.into(), data: Array1::from_iter(rows.iter().map(|r| r[i])).into_dyn() })
            }
            (None, false) => {
                if let Some((pos, (c, _))) = indexed.iter().enumerate().find(|(pos, (c, _))| pos != c) {
                    let _ = c;
                    return Err(bad(format!(
                        "{shown}: `{base}_<c>` columns must be numbered 0, 1, 2, ...; missing {base}_{pos}"
                    )));
                }
                let cols: Vec<usize> = indexed.iter().map(|&(_, i)| i).collect();
                let data = Array2::from_shape_fn((n, cols.len()), |(r, c)| rows[r][cols[c]]);
                arrays.push(Arr { name: base.into(), data: data.into_dyn() });
            }
            (None, true) => {}
        }
    }
    Ok(Inputs { arrays })
}

/// Whether the file is an .npz (zip) archive: by its first bytes, whatever its name.
fn is_npz(path: &Path) -> anyhow::Result<bool> {
    let shown = path.display();
    let mut head = [0u8; 2];
    let mut f = fs::File::open(path)
        .map_err(|e| crate::cli::BadInput::with_source(format!("cannot open --input {shown}"), e))?;
    use std::io::Read;
    let n =
        f.read(&mut head).map_err(|e| crate::cli::BadInput::with_source(format!("cannot read --input {shown}"), e))?;
    Ok(n == 2 && &head == b"PK")
}

/// The task from the arrays (see the help text for the rule).
fn infer(inputs: &Inputs) -> anyhow::Result<Task> {
    if inputs.get("embeddings").is_some() || inputs.get("query").is_some() {
        return Ok(Task::Retrieval);
    }
    let y_true = inputs.get("y_true").ok_or_else(|| {
        bad(format!(
            "no `y_true`: give y_true with y_score and/or y_pred, or embeddings + labels for retrieval; found: {}",
            inputs.found()
        ))
    })?;
    if y_true.ndim() == 2 {
        return Ok(Task::Multilabel);
    }
    if inputs.get("y_score").is_some_and(|s| s.ndim() == 2) {
        return Ok(Task::Multiclass);
    }
    let above_one = |a: Option<&Arr>| a.is_some_and(|a| a.data.iter().any(|&v| v > 1.0));
    if above_one(Some(y_true)) || above_one(inputs.get("y_pred")) {
        return Ok(Task::Multiclass);
    }
    Ok(Task::Binary)
}

/// Whether every value is in [0, 1] (and, for matrices, rows sum to 1 within 1e-6).
fn probabilities(a: &ArrayD<f64>) -> bool {
    let in_range = a.iter().all(|v| (0.0..=1.0).contains(v));
    in_range && (a.ndim() != 2 || a.axis_iter(Axis(0)).all(|r| (r.sum() - 1.0).abs() <= 1e-6))
}

/// What a run produced.
struct Outcome {
    task: Task,
    n_samples: usize,
    pairs: Vec<(String, f64)>,
}

fn allow_only(inputs: &Inputs, task: Task, allowed: &[&str]) -> anyhow::Result<()> {
    if let Some(extra) = inputs.arrays.iter().find(|a| !allowed.contains(&a.name.as_str())) {
        return Err(bad(format!(
            "the {} task does not read `{}` (it reads {}); found: {}",
            task.name(),
            extra.name,
            allowed.join(", "),
            inputs.found()
        )));
    }
    Ok(())
}

fn evaluate(inputs: &Inputs, task: Task, args: &MetricsArgs) -> anyhow::Result<Outcome> {
    match task {
        Task::Binary => {
            allow_only(inputs, task, &["y_true", "y_score", "y_pred"])?;
            let t = inputs.need("y_true", task)?.ints1()?;
            let s = inputs.get("y_score").map(Arr::floats1).transpose()?;
            let p = inputs.get("y_pred").map(Arr::ints1).transpose()?;
            if s.is_none() && p.is_none() {
                return Err(bad(format!("the binary task needs `y_score` and/or `y_pred`; found: {}", inputs.found())));
            }
            let mut pairs = summary::binary_report(
                t.view(),
                s.as_ref().map(|s| s.view()),
                p.as_ref().map(|p| p.view()),
                args.threshold,
            )?;
            if let Some(s) = &s
                && probabilities(&s.clone().into_dyn())
            {
                pairs.extend(summary::binary_calibration_report(t.view(), s.view())?);
            }
            Ok(Outcome { task, n_samples: t.len(), pairs })
        }
        Task::Multiclass => {
            allow_only(inputs, task, &["y_true", "y_score", "y_pred"])?;
            let t = inputs.need("y_true", task)?.ints1()?;
            let s = inputs.get("y_score").map(Arr::floats2).transpose()?;
            let p = inputs.get("y_pred").map(Arr::ints1).transpose()?;
            if s.is_none() && p.is_none() {
                return Err(bad(format!(
                    "the multiclass task needs `y_score` and/or `y_pred`; found: {}",
                    inputs.found()
                )));
            }
            let n_classes = match &s {
                Some(s) => s.ncols(),
                None => {
                    let max = t.iter().chain(p.iter().flatten()).copied().max().unwrap_or(0);
                    usize::try_from(max).unwrap_or(0) + 1
                }
            };
            let mut pairs = summary::multiclass_report(
                n_classes,
                t.view(),
                s.as_ref().map(|s| s.view()),
                p.as_ref().map(|p| p.view()),
            )?;
            if let Some(s) = &s
                && probabilities(&s.clone().into_dyn())
            {
                pairs.extend(summary::multiclass_calibration_report(t.view(), s.view())?);
            }
            Ok(Outcome { task, n_samples: t.len(), pairs })
        }
        Task::Multilabel => {
            allow_only(inputs, task, &["y_true", "y_score", "y_pred"])?;
            let t = inputs.need("y_true", task)?.ints2()?;
            let s = inputs.get("y_score").map(Arr::floats2).transpose()?;
            let p = match (inputs.get("y_pred"), &s) {
                (Some(p), _) => p.ints2()?,
                (None, Some(s)) => {
                    if let Some((i, v)) = s.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                        return Err(bad(format!("y_score: non-finite value {v} at flat index {i}")));
                    }
                    s.mapv(|v| (v >= args.threshold) as i64)
                }
                (None, None) => {
                    return Err(bad(format!(
                        "the multilabel task needs `y_score` and/or `y_pred`; found: {}",
                        inputs.found()
                    )));
                }
            };
            let mut pairs = summary::multilabel_report(t.view(), p.view())?;
            if let Some(s) = &s {
                pairs.extend(summary::multilabel_ranking_report(t.view(), s.view())?);
            }
            Ok(Outcome { task, n_samples: t.nrows(), pairs })
        }
        Task::Retrieval => {
            let k: RetrievalK = args.k.parse()?;
            let distance: Distance = args.distance.parse()?;
            let cfg = RetrievalConfig::new().k(k).distance(distance);
            if inputs.get("embeddings").is_some() {
                allow_only(inputs, task, &["embeddings", "labels"])?;
                let e = inputs.need("embeddings", task)?.floats2()?;
                let l = inputs.need("labels", task)?.ints1()?;
                let pairs = summary::retrieval_report(e.view(), l.view(), None, &cfg)?;
                Ok(Outcome { task, n_samples: e.nrows(), pairs })
            } else {
                allow_only(inputs, task, &["query", "query_labels", "reference", "reference_labels"])?;
                let q = inputs.need("query", task)?.floats2()?;
                let ql = inputs.need("query_labels", task)?.ints1()?;
                let r = inputs.need("reference", task)?.floats2()?;
                let rl = inputs.need("reference_labels", task)?.ints1()?;
                let pairs = summary::retrieval_report(q.view(), ql.view(), Some((r.view(), rl.view())), &cfg)?;
                Ok(Outcome { task, n_samples: q.nrows(), pairs })
            }
        }
    }
}

/// A number for the text report: integers as integers, others with 6 decimals, NaN as `nan`.
fn text_value(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.6}")
    }
}

fn render_text(o: &Outcome) -> String {
    let width = o.pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0).max("n_samples".len());
    let mut out = format!("task{:pad$} {}\n", "", o.task.name(), pad = width - 4);
    out.push_str(&format!("{:width$} {}\n", "n_samples", o.n_samples));
    for (k, v) in &o.pairs {
        out.push_str(&format!("{k:width$} {}\n", text_value(*v)));
    }
    out
}

fn render_json(o: &Outcome) -> String {
    let mut body = vec![format!("\"task\":\"{}\"", o.task.name()), format!("\"n_samples\":{}", o.n_samples)];
    for (k, v) in &o.pairs {
        // Keys are ASCII identifiers from the library; serde_json quotes them all the same.
        let key = serde_json::to_string(k).unwrap_or_default(); // ok: strings always serialise
        body.push(if v.is_finite() { format!("{key}:{v}") } else { format!("{key}:null") });
    }
    format!("{{{}}}\n", body.join(","))
}

/// Runs `losskit metrics`.
///
/// # Errors
/// Bad input (unreadable or malformed file, missing or unknown arrays or columns, shapes, non-integer labels, NaN
/// scores, a task the data cannot serve, ...) as a [`BadInput`](crate::cli::BadInput) or a [`losskit::Error`];
/// a failure to write otherwise.
pub fn run(args: &MetricsArgs) -> anyhow::Result<()> {
    if !args.threshold.is_finite() {
        return Err(bad(format!("--threshold must be a finite number, got {}", args.threshold)));
    }
    let inputs = if is_npz(&args.input)? { read_npz(&args.input)? } else { read_csv(&args.input)? };
    let task = match args.task.as_deref() {
        Some("binary") => Task::Binary,
        Some("multiclass") => Task::Multiclass,
        Some("multilabel") => Task::Multilabel,
        Some("retrieval") => Task::Retrieval,
        _ => infer(&inputs)?,
    };
    let outcome = evaluate(&inputs, task, args).with_context(|| format!("{} metrics", task.name()))?;
    if let Some(dir) = &args.plot {
        plot::write_all(&inputs, task, dir).with_context(|| format!("--plot {}", dir.display()))?;
    }
    let text = if args.json { render_json(&outcome) } else { render_text(&outcome) };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()).context("writing to stdout")
}

/// `--plot`: ROC, PR and reliability diagrams with plotters (bitmap + SVG backends, text by ab_glyph).
mod plot {
    use std::path::Path;
    use std::sync::OnceLock;

    use plotters::coord::Shift;
    use plotters::prelude::*;

    use losskit::metrics::{BinaryRanking, CalibrationError};

    use super::{Arr, Inputs, Task, bad, probabilities};

    const SIZE: (u32, u32) = (640, 480);
    const FONTS: &[&str] = &[
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
        "/usr/share/fonts/liberation/LiberationSans-Regular.ttf",
    ];

    /// Registers a TrueType font as "sans-serif" once; false when none could be read.
    fn font() -> bool {
        static FONT: OnceLock<bool> = OnceLock::new();
        *FONT.get_or_init(|| {
            let env = std::env::var_os("LOSSKIT_FONT");
            let candidates = env.iter().map(std::path::PathBuf::from).chain(FONTS.iter().map(|p| p.into()));
            for path in candidates {
                if let Ok(bytes) = std::fs::read(&path) {
                    // The font lives as long as the process: plotters keeps a &'static reference to it.
                    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                    if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                        return true;
                    }
                }
            }
            false
        })
    }

    /// One chart: named polylines in the unit square, optionally the chance diagonal.
    struct Chart {
        file: &'static str,
        title: String,
        x: &'static str,
        y: &'static str,
        diagonal: bool,
        series: Vec<(String, Vec<(f64, f64)>)>,
    }

    fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, c: &Chart, text: bool) -> anyhow::Result<()>
    where
        DB::ErrorType: 'static,
    {
        let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow::anyhow!("drawing {}: {e}", c.file);
        root.fill(&WHITE).map_err(err)?;
        let mut builder = ChartBuilder::on(&root);
        builder.margin(12);
        if text {
            builder.caption(&c.title, ("sans-serif", 20)).x_label_area_size(40).y_label_area_size(50);
        }
        let mut chart = builder.build_cartesian_2d(0.0..1.0, 0.0..1.0).map_err(err)?;
        let mut mesh = chart.configure_mesh();
        if text {
            mesh.x_desc(c.x).y_desc(c.y).label_style(("sans-serif", 13));
        } else {
            mesh.x_labels(0).y_labels(0);
        }
        mesh.draw().map_err(err)?;
        if c.diagonal {
            chart
                .draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.4).stroke_width(1)))
                .map_err(err)?;
        }
        for (i, (name, points)) in c.series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let drawn =
                chart.draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2))).map_err(err)?;
            if text {
                drawn
                    .label(name.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
            }
        }
        if text && !c.series.is_empty() {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.3))
                .label_font(("sans-serif", 13))
                .draw()
                .map_err(err)?;
        }
        root.present().map_err(err)?;
        Ok(())
    }

    fn save(dir: &Path, c: &Chart) -> anyhow::Result<()> {
        let text = font();
        let png = dir.join(format!("{}.png", c.file));
        draw(BitMapBackend::new(&png, SIZE).into_drawing_area(), c, text)?;
        let svg = dir.join(format!("{}.svg", c.file));
        draw(SVGBackend::new(&svg, SIZE).into_drawing_area(), c, text)?;
        Ok(())
    }

    /// ROC and PR charts of the binary problems `(name, y_true ∈ {0, 1}, score)`.
    fn curves(problems: &[(String, Vec<i64>, Vec<f64>)]) -> anyhow::Result<(Chart, Chart)> {
        let (mut roc, mut pr) = (Vec::new(), Vec::new());
        for (name, t, s) in problems {
            let mut r = BinaryRanking::new();
            r.update(ndarray::ArrayView1::from(t), ndarray::ArrayView1::from(s), None)?;
            let c = r.roc_curve(true)?;
            let auc = r.roc_auc(None)?;
            roc.push((format!("{name} (AUC {auc:.3})"), c.fpr.iter().copied().zip(c.tpr.iter().copied()).collect()));
            let p = r.precision_recall_curve(true)?;
            let ap = r.average_precision()?;
            pr.push((
                format!("{name} (AP {ap:.3})"),
                p.recall.iter().copied().zip(p.precision.iter().copied()).collect(),
            ));
        }
        let roc = Chart {
            file: "roc",
            title: "ROC curve".into(),
            x: "false positive rate",
            y: "true positive rate",
            diagonal: true,
            series: roc,
        };
        let pr = Chart {
            file: "pr",
            title: "Precision-recall curve".into(),
            x: "recall",
            y: "precision",
            diagonal: false,
            series: pr,
        };
        Ok((roc, pr))
    }

    fn reliability(cal: &CalibrationError) -> anyhow::Result<Chart> {
        let d = cal.reliability_diagram()?;
        let points: Vec<(f64, f64)> = d
            .confidence
            .iter()
            .zip(&d.accuracy)
            .zip(&d.count)
            .filter(|(_, n)| **n > 0)
            .map(|((&c, &a), _)| (c, a))
            .collect();
        let ece = cal.expected()?;
        Ok(Chart {
            file: "reliability",
            title: "Reliability diagram".into(),
            x: "mean confidence",
            y: "accuracy",
            diagonal: true,
            series: vec![(format!("model (ECE {ece:.3})"), points)],
        })
    }

    /// Writes the charts of `inputs` into `dir` (created if missing).
    pub(super) fn write_all(inputs: &Inputs, task: Task, dir: &Path) -> anyhow::Result<()> {
        let mut charts = Vec::new();
        match task {
            Task::Binary => {
                let t = inputs.need("y_true", task)?.ints1()?;
                let s = inputs
                    .get("y_score")
                    .map(Arr::floats1)
                    .transpose()?
                    .ok_or_else(|| bad("--plot needs `y_score`".to_string()))?;
                let (roc, pr) = curves(&[("positive class".into(), t.to_vec(), s.to_vec())])?;
                charts.extend([roc, pr]);
                if probabilities(&s.clone().into_dyn()) {
                    let mut cal = CalibrationError::new(15)?;
                    cal.update_binary(t.view(), s.view())?;
                    charts.push(reliability(&cal)?);
                }
            }
            Task::Multiclass => {
                let t = inputs.need("y_true", task)?.ints1()?;
                let s = inputs
                    .get("y_score")
                    .map(Arr::floats2)
                    .transpose()?
                    .ok_or_else(|| bad("--plot needs `y_score`".to_string()))?;
                let problems: Vec<(String, Vec<i64>, Vec<f64>)> = (0..s.ncols())
                    .map(|c| {
                        let y = t.iter().map(|&v| (v == c as i64) as i64).collect();
                        (format!("class {c}"), y, s.column(c).to_vec())
                    })
                    .collect();
                let (roc, pr) = curves(&problems)?;
                charts.extend([roc, pr]);
                if probabilities(&s.clone().into_dyn()) {
                    let mut cal = CalibrationError::new(15)?;
                    cal.update_multiclass(t.view(), s.view())?;
                    charts.push(reliability(&cal)?);
                }
            }
            other => {
                return Err(bad(format!("--plot draws binary and multiclass scores, not the {} task", other.name())));
            }
        }
        std::fs::create_dir_all(dir)?;
        for c in &charts {
            save(dir, c)?;
        }
        Ok(())
    }
}
