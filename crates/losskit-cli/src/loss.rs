//! `losskit loss`: compute a registered loss and its gradient on named arrays from an .npz file.
//!
//! Parse → resolve through the registry (`--set k=v` → [`Params`] → build, which checks the parameters) → read the
//! arrays of the form the file provides → call the library → write `loss`, `per_sample` and `grad_<input>`. The
//! numbers all come from the library; this module only moves arrays and reports what is wrong with them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use ndarray::{Array, Array1, Array2, ArrayD, ArrayView1, ArrayView2, Dimension, Ix1, Ix2, arr0};
use ndarray_npy::WritableElement;

use losskit::Real;
use losskit::losses::{DynBinaryLoss, DynClassLoss, LossEntry, LossOutput, Params, Range, Reduction, Targets};
use losskit::losses::{DynEmbeddingLoss, DynProxyLoss, EmbeddingLoss, Family, ProxyLoss, Reference};

use crate::cli::bad;
use crate::npz::{self, AnyArray, NpzInput, NpzOutput};

const AFTER_HELP: &str = "\
Arrays read from --input, by name:
  classification  logits [N, C] with targets [N] (int32/int64 class indices) or soft_targets [N, C]
  binary          scores [N] with targets [N] (floats in [0, 1])
  both            optional weights [N] (per sample); a vector parameter such as class_weights [C] is read from
                  the array of the same name
Floats are float32 or float64, all the same; the loss is computed in that precision. A loss with several forms
picks it from the arrays given (focal: logits -> multiclass form, scores -> binary form).

Arrays written to --output: loss (0-d), per_sample [N] (with --reduction none), grad_logits [N, C]
or grad_scores [N]. Without --output the loss value is printed (for --reduction none, the sum of the
per-sample values). With --repeat K the only line printed is `median_ms=<f> min_ms=<f>`, timing
compute alone (file I/O excluded) after --warmup W untimed runs (default 3).

Examples:
  losskit loss focal --input batch.npz --set gamma=2 --output out.npz
  losskit loss cross-entropy --input batch.npz --set label_smoothing=0.1 --repeat 100";

/// Arguments of `losskit loss`.
#[derive(clap::Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub struct LossArgs {
    /// The loss, by its registered name (see `losskit list`)
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The .npz file holding the input arrays
    #[arg(long, short, value_name = "IN.npz")]
    pub input: PathBuf,
    /// Write loss, per_sample and grad_<input> to this .npz (default: print the loss)
    #[arg(long, short, value_name = "OUT.npz")]
    pub output: Option<PathBuf>,
    /// Set a loss parameter (repeatable; `losskit list` shows them)
    #[arg(long = "set", short = 's', value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub set: Vec<(String, String)>,
    /// mean (Σ wᵢℓᵢ / Σ wᵢ, the default), sum or none
    #[arg(long, value_name = "HOW", value_parser = ["mean", "sum", "none"], hide_possible_values = true)]
    pub reduction: Option<String>,
    /// Time K forward+backward passes after a warm-up; print their median and minimum
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: Option<u32>,
    /// With --repeat: untimed warm-up runs before the timed ones (the result's own run is the first)
    #[arg(long, value_name = "W", default_value_t = 3, requires = "repeat")]
    pub warmup: u32,
}

/// Splits `key=value` at the first `=`.
fn parse_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => Err(format!("expected key=value, got {s:?}")),
    }
}

/// The two forms a loss can take on the command line, each with its differentiable input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    /// `logits` `[N, C]` + hard or soft targets.
    Class,
    /// `scores` `[N]` + float targets `[N]`.
    Binary,
}

impl Form {
    /// The differentiable input array.
    fn input(self) -> &'static str {
        match self {
            Form::Class => "logits",
            Form::Binary => "scores",
        }
    }

    /// The arrays this form reads besides the loss's vector parameters.
    fn arrays(self) -> &'static [&'static str] {
        match self {
            Form::Class => &["logits", "targets", "soft_targets", "weights"],
            Form::Binary => &["scores", "targets", "weights"],
        }
    }

    /// What the form needs, in words, for error messages.
    fn needs(self) -> &'static str {
        match self {
            Form::Class => "`logits` [N, C] with `targets` [N] (int32/int64) or `soft_targets` [N, C]",
            Form::Binary => "`scores` [N] with `targets` [N] (float)",
        }
    }
}

/// A float precision the CLI computes in: reads its arrays, calls the loss through the trait object.
trait Float: Real + WritableElement {
    /// numpy's name of the dtype.
    const DTYPE: &'static str;
    /// The array, if it has this dtype; the array back otherwise.
    fn take(a: AnyArray) -> Result<ArrayD<Self>, AnyArray>;
    /// [`ClassLoss::compute`](losskit::losses::ClassLoss::compute) in this precision.
    fn class(
        loss: &dyn DynClassLoss,
        logits: ArrayView2<'_, Self>,
        targets: Targets<'_, Self>,
        weights: Option<ArrayView1<'_, Self>>,
    ) -> losskit::Result<LossOutput<Self, Ix2>>;
    /// [`BinaryLoss::compute`](losskit::losses::BinaryLoss::compute) in this precision.
    fn binary(
        loss: &dyn DynBinaryLoss,
        scores: ArrayView1<'_, Self>,
        targets: ArrayView1<'_, Self>,
        weights: Option<ArrayView1<'_, Self>>,
    ) -> losskit::Result<LossOutput<Self, Ix1>>;
}

macro_rules! impl_float {
    ($t:ty, $variant:ident, $dtype:literal) => {
        impl Float for $t {
            const DTYPE: &'static str = $dtype;
            fn take(a: AnyArray) -> Result<ArrayD<Self>, AnyArray> {
                match a {
                    AnyArray::$variant(a) => Ok(a),
                    other => Err(other),
                }
            }
            fn class(
                loss: &dyn DynClassLoss,
                logits: ArrayView2<'_, Self>,
                targets: Targets<'_, Self>,
                weights: Option<ArrayView1<'_, Self>>,
            ) -> losskit::Result<LossOutput<Self, Ix2>> {
                losskit::losses::ClassLoss::<$t>::compute(loss, logits, targets, weights, true)
            }
            fn binary(
                loss: &dyn DynBinaryLoss,
                scores: ArrayView1<'_, Self>,
                targets: ArrayView1<'_, Self>,
                weights: Option<ArrayView1<'_, Self>>,
            ) -> losskit::Result<LossOutput<Self, Ix1>> {
                losskit::losses::BinaryLoss::<$t>::compute(loss, scores, targets, weights, true)
            }
        }
    };
}
impl_float!(f32, F32, "float32");
impl_float!(f64, F64, "float64");

/// Runs `losskit loss`.
///
/// # Errors
/// Bad input (unknown loss or parameter, unreadable file, missing or ill-typed array, shapes, NaN, labels, ...) as
/// a [`BadInput`](crate::cli::BadInput) or a [`losskit::Error`]; a failure to write the output otherwise.
pub fn run(args: &LossArgs) -> anyhow::Result<()> {
    let entry = losskit::losses::registry::find(&args.name)?;
    let mut params = resolve_params(entry, args)?;
    if let Some(out) = &args.output {
        npz::check_output_path(out)?;
    }
    let mut input = NpzInput::open(&args.input)?;
    if matches!(entry.family, Family::Embedding | Family::Proxy) {
        return run_metric(entry, &params, &mut input, args);
    }
    // Building once with the scalar parameters validates them and tells which forms the loss has; it is built
    // again below once the vector parameters (arrays in the file, whose precision is not known yet) are set.
    let forms = (entry.build)(&params).with_context(|| format!("building {}", entry.name))?;
    let form = choose_form(entry, forms.class.is_some(), forms.binary.is_some(), &input)?;
    let primary = input.read(form.input())?;
    match primary {
        AnyArray::F32(a) => compute::<f32>(entry, &mut params, form, a, &mut input, args),
        AnyArray::F64(a) => compute::<f64>(entry, &mut params, form, a, &mut input, args),
        other => Err(bad(format!("array `{}` has dtype {}; expected float32 or float64", form.input(), other.dtype()))),
    }
}

/// `--set` pairs and `--reduction` → validated parameters.
fn resolve_params(entry: &'static LossEntry, args: &LossArgs) -> anyhow::Result<Params> {
    for (i, (k, _)) in args.set.iter().enumerate() {
        if args.set[..i].iter().any(|(prev, _)| prev == k) {
            return Err(bad(format!("--set {k} is given more than once")));
        }
    }
    if args.reduction.is_some() && args.set.iter().any(|(k, _)| k == "reduction") {
        return Err(bad("the reduction is given twice (--reduction and --set reduction=...); give it once"));
    }
    let mut params = entry.params(&args.set)?;
    if let Some(r) = &args.reduction {
        params.set_reduction(r.parse::<Reduction>()?);
    }
    Ok(params)
}

/// Picks the form from the arrays present and rejects arrays the loss would not read (a misspelt `weight` must
/// not be silently ignored).
fn choose_form(entry: &LossEntry, has_class: bool, has_binary: bool, input: &NpzInput) -> anyhow::Result<Form> {
    let forms: Vec<Form> = [(Form::Class, has_class), (Form::Binary, has_binary)]
        .into_iter()
        .filter_map(|(f, has)| has.then_some(f))
        .collect();
    if forms.is_empty() {
        return Err(bad(format!(
            "{} ({} family) cannot be computed from the command line yet: only classification and binary forms are",
            entry.name, entry.family
        )));
    }
    let vectors: Vec<&str> = entry.params.iter().filter(|p| p.range == Range::Vector).map(|p| p.name).collect();
    let found = if input.names().is_empty() { "no arrays".to_string() } else { input.names().join(", ") };
    let needs = || {
        let forms_text: Vec<&str> = forms.iter().map(|f| f.needs()).collect();
        let optional: Vec<&str> = ["weights"].into_iter().chain(vectors.iter().copied()).collect();
        format!("{} needs {}; optional: {}", entry.name, forms_text.join(", or "), optional.join(", "))
    };
    let present: Vec<Form> = forms.iter().copied().filter(|f| input.has(f.input())).collect();
    let form = match present[..] {
        [f] => f,
        [] => return Err(bad(format!("{}; found: {found}", needs()))),
        _ => return Err(bad(format!("{}: give either `logits` or `scores`, not both; found: {found}", entry.name))),
    };
    let missing_targets = match form {
        Form::Class => !input.has("targets") && !input.has("soft_targets"),
        Form::Binary => !input.has("targets"),
    };
    if missing_targets {
        return Err(bad(format!("{}; found: {found}", needs())));
    }
    if form == Form::Class && input.has("targets") && input.has("soft_targets") {
        return Err(bad(format!("{}: give either `targets` or `soft_targets`, not both", entry.name)));
    }
    let known = |n: &str| form.arrays().contains(&n) || vectors.contains(&n);
    if let Some(extra) = input.names().iter().find(|n| !known(n)) {
        let mut reads: Vec<&str> = form.arrays().to_vec();
        reads.extend(&vectors);
        return Err(bad(format!(
            "{} does not read an array named `{extra}` (it reads {}); found: {found}",
            entry.name,
            reads.join(", ")
        )));
    }
    Ok(form)
}

/// Reads a float array of precision `F`, with a clear message when its dtype differs from the primary input's.
fn read_float<F: Float>(input: &mut NpzInput, name: &str, primary: &str) -> anyhow::Result<ArrayD<F>> {
    F::take(input.read(name)?).map_err(|other| match other {
        AnyArray::F32(_) | AnyArray::F64(_) => bad(format!(
            "array `{name}` is {} but `{primary}` is {}: all float arrays must share one precision",
            other.dtype(),
            F::DTYPE
        )),
        _ => bad(format!("array `{name}` has dtype {}; expected {} (as `{primary}`)", other.dtype(), F::DTYPE)),
    })
}

/// Checks the number of dimensions and converts.
fn dims<T, D: Dimension>(name: &str, a: ArrayD<T>, want: &str) -> anyhow::Result<Array<T, D>> {
    let shape = a.shape().to_vec();
    a.into_dimensionality::<D>().map_err(|_| bad(format!("array `{name}` must be {want}, got shape {shape:?}")))
}

/// Reads integer class labels (int32 or int64).
fn read_labels(input: &mut NpzInput, name: &str) -> anyhow::Result<Array1<i64>> {
    let labels = match input.read(name)? {
        AnyArray::I64(a) => a,
        AnyArray::I32(a) => a.mapv(i64::from),
        other => {
            return Err(bad(format!(
                "array `{name}` has dtype {}; classification targets are class indices (int32 or int64); give \
                 class probabilities as `soft_targets`",
                other.dtype()
            )));
        }
    };
    dims(name, labels, "1-D [N]")
}

fn compute<F: Float>(
    entry: &LossEntry,
    params: &mut Params,
    form: Form,
    primary: ArrayD<F>,
    input: &mut NpzInput,
    args: &LossArgs,
) -> anyhow::Result<()> {
    for spec in entry.params.iter().filter(|p| p.range == Range::Vector) {
        if input.has(spec.name) {
            let v: Array1<F> = dims(spec.name, read_float::<F>(input, spec.name, form.input())?, "1-D")?;
            params.set_vector(spec.name, v.iter().map(|x| x.f64()).collect())?;
        }
    }
    let built = (entry.build)(params).with_context(|| format!("building {}", entry.name))?;
    let weights: Option<Array1<F>> = match input.has("weights") {
        true => Some(dims("weights", read_float::<F>(input, "weights", form.input())?, "1-D [N]")?),
        false => None,
    };
    let weights = weights.as_ref().map(|w| w.view());
    let reduction = params.reduction();
    match form {
        Form::Class => {
            let loss = built.class.as_deref().context("the registry built no multiclass form")?; // checked by choose_form
            let logits: Array2<F> = dims("logits", primary, "2-D [N, C]")?;
            let hard;
            let soft: Array2<F>;
            let targets = if input.has("targets") {
                hard = read_labels(input, "targets")?;
                Targets::Hard(hard.view())
            } else {
                soft = dims("soft_targets", read_float::<F>(input, "soft_targets", "logits")?, "2-D [N, C]")?;
                Targets::Soft(soft.view())
            };
            let run = || F::class(loss, logits.view(), targets, weights);
            finish(run, "grad_logits", reduction, args)
        }
        Form::Binary => {
            let loss = built.binary.as_deref().context("the registry built no binary form")?; // checked by choose_form
            let scores: Array1<F> = dims("scores", primary, "1-D [N]")?;
            let targets = match F::take(input.read("targets")?) {
                Ok(t) => t,
                Err(other) => {
                    return Err(bad(format!(
                        "array `targets` has dtype {}; binary targets are floats in [0, 1] of the same precision as \
                         `scores` ({})",
                        other.dtype(),
                        F::DTYPE
                    )));
                }
            };
            let targets: Array1<F> = dims("targets", targets, "1-D [N]")?;
            let run = || F::binary(loss, scores.view(), targets.view(), weights);
            finish(run, "grad_scores", reduction, args)
        }
    }
}

/// Computes once, times `--repeat` more runs, then writes or prints.
fn finish<F: Float, D: Dimension>(
    run: impl Fn() -> losskit::Result<LossOutput<F, D>>,
    grad_name: &str,
    reduction: Reduction,
    args: &LossArgs,
) -> anyhow::Result<()> {
    // The first run is both the result and the warm-up of the timed runs.
    let out = run()?;
    let timing = args.repeat.map(|k| time_runs(&run, args.warmup, k)).transpose()?;
    if let Some(path) = &args.output {
        write_output(path, &out, grad_name, reduction)?;
    }
    let mut stdout = std::io::stdout().lock();
    match timing {
        Some((median, min)) => writeln!(stdout, "median_ms={median:.6} min_ms={min:.6}"),
        None if args.output.is_none() => writeln!(stdout, "{}", out.value),
        None => Ok(()),
    }
    .context("writing to stdout")?;
    Ok(())
}

/// Runs `warmup − 1` untimed runs (the caller's first run is the first warm-up), then `k` timed ones; returns the
/// median and minimum wall time of the timed runs in milliseconds.
fn time_runs<T>(run: &impl Fn() -> losskit::Result<T>, warmup: u32, k: u32) -> losskit::Result<(f64, f64)> {
    for _ in 1..warmup {
        std::hint::black_box(run()?);
    }
    let mut ms = Vec::with_capacity(k as usize);
    for _ in 0..k {
        let start = Instant::now();
        std::hint::black_box(run()?);
        ms.push(start.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    let n = ms.len();
    // k ≥ 1 (clap enforces it), so the indices below are in range.
    let median = if n % 2 == 1 { ms[n / 2] } else { 0.5 * (ms[n / 2 - 1] + ms[n / 2]) };
    Ok((median, ms[0]))
}

fn write_output<F: Float, D: Dimension>(
    path: &Path,
    out: &LossOutput<F, D>,
    grad_name: &str,
    reduction: Reduction,
) -> anyhow::Result<()> {
    let grad = out.grad.as_ref().context("the loss returned no gradient")?;
    let mut file = NpzOutput::create(path)?;
    file.add("loss", &arr0(out.value))?;
    if reduction == Reduction::None
        && let Some(per_sample) = &out.per_sample
    {
        file.add("per_sample", per_sample)?;
    }
    file.add(grad_name, grad)?;
    file.finish()
}

// ---- Embedding and proxy losses -------------------------------------------------------------------------------

/// What an embedding or proxy loss run gives back, whatever its family: the value, the per-sample (per-anchor or
/// per-proxy) values and each differentiable input's gradient by output name.
struct MetricOut<F> {
    value: F,
    per_sample: Option<Array1<F>>,
    grads: Vec<(&'static str, Array2<F>)>,
}

/// The float precisions for the embedding and proxy families.
trait MetricFloat: Float {
    fn embedding(
        loss: &dyn DynEmbeddingLoss,
        x: ArrayView2<'_, Self>,
        labels: ArrayView1<'_, i64>,
        reference: Option<Reference<'_, Self>>,
    ) -> losskit::Result<MetricOut<Self>>;
    fn proxy(
        loss: &dyn DynProxyLoss,
        x: ArrayView2<'_, Self>,
        labels: ArrayView1<'_, i64>,
        proxies: ArrayView2<'_, Self>,
    ) -> losskit::Result<MetricOut<Self>>;
}

macro_rules! impl_metric_float {
    ($t:ty) => {
        impl MetricFloat for $t {
            fn embedding(
                loss: &dyn DynEmbeddingLoss,
                x: ArrayView2<'_, Self>,
                labels: ArrayView1<'_, i64>,
                reference: Option<Reference<'_, Self>>,
            ) -> losskit::Result<MetricOut<Self>> {
                let out = EmbeddingLoss::<$t>::compute(loss, x, labels, reference, true)?;
                let mut grads: Vec<(&'static str, Array2<Self>)> =
                    out.grad.into_iter().map(|g| ("grad_embeddings", g)).collect();
                grads.extend(out.grad_reference.map(|g| ("grad_reference_embeddings", g)));
                Ok(MetricOut { value: out.value, per_sample: out.per_sample, grads })
            }
            fn proxy(
                loss: &dyn DynProxyLoss,
                x: ArrayView2<'_, Self>,
                labels: ArrayView1<'_, i64>,
                proxies: ArrayView2<'_, Self>,
            ) -> losskit::Result<MetricOut<Self>> {
                let out = ProxyLoss::<$t>::compute(loss, x, labels, proxies, true)?;
                let mut grads: Vec<(&'static str, Array2<Self>)> =
                    out.grad.into_iter().map(|g| ("grad_embeddings", g)).collect();
                grads.extend(out.grad_proxies.map(|g| ("grad_proxies", g)));
                Ok(MetricOut { value: out.value, per_sample: out.per_sample, grads })
            }
        }
    };
}
impl_metric_float!(f32);
impl_metric_float!(f64);

/// `losskit loss` for the embedding family (`embeddings` [N, D] + `labels` `[N]`, optional `reference_embeddings`
/// [R, D] + `reference_labels` `[R]`) and the proxy family (adds `proxies` [C, D]).
fn run_metric(entry: &LossEntry, params: &Params, input: &mut NpzInput, args: &LossArgs) -> anyhow::Result<()> {
    // Vector parameters (sbcl's `subclass_labels`, `class_temperature`) come from arrays of the same name.
    let vectors: Vec<&str> = entry.params.iter().filter(|p| p.range == Range::Vector).map(|p| p.name).collect();
    let mut params = params.clone();
    for name in &vectors {
        if input.has(name) {
            let v = read_vector(input, name)?;
            params.set_vector(name, v)?;
        }
    }
    let params = &params;
    let forms = entry.build_metric(params).with_context(|| format!("building {}", entry.name))?;
    let proxy = forms.proxy.is_some();
    let (needs, base_reads): (&str, &[&str]) = if proxy {
        (
            "`embeddings` [N, D], `labels` [N] (int32/int64, in 0..C) and `proxies` [C, D]",
            &["embeddings", "labels", "proxies"],
        )
    } else {
        (
            "`embeddings` [N, D] with `labels` [N] (int32/int64); optional `reference_embeddings` [R, D] with \
             `reference_labels` [R]",
            &["embeddings", "labels", "reference_embeddings", "reference_labels"],
        )
    };
    let reads: Vec<&str> = base_reads.iter().copied().chain(vectors.iter().copied()).collect();
    let found = if input.names().is_empty() { "no arrays".to_string() } else { input.names().join(", ") };
    if let Some(extra) = input.names().iter().find(|n| !reads.contains(&n.as_str())) {
        return Err(bad(format!(
            "{} does not read an array named `{extra}` (it reads {}); found: {found}",
            entry.name,
            reads.join(", ")
        )));
    }
    let required: &[&str] = if proxy { &["embeddings", "labels", "proxies"] } else { &["embeddings", "labels"] };
    if required.iter().any(|n| !input.has(n)) || (input.has("reference_embeddings") != input.has("reference_labels")) {
        return Err(bad(format!("{} needs {needs}; found: {found}", entry.name)));
    }
    match input.read("embeddings")? {
        AnyArray::F32(a) => compute_metric::<f32>(&forms, a, input, params.reduction(), args),
        AnyArray::F64(a) => compute_metric::<f64>(&forms, a, input, params.reduction(), args),
        other => Err(bad(format!("array `embeddings` has dtype {}; expected float32 or float64", other.dtype()))),
    }
}

/// A 1-D array of any numeric dtype as f64 (a vector parameter of a metric loss, e.g. integer subclass ids).
fn read_vector(input: &mut NpzInput, name: &str) -> anyhow::Result<Vec<f64>> {
    let a: ArrayD<f64> = match input.read(name)? {
        AnyArray::F64(a) => a,
        AnyArray::F32(a) => a.mapv(f64::from),
        AnyArray::I64(a) => a.mapv(|v| v as f64),
        AnyArray::I32(a) => a.mapv(f64::from),
    };
    let v: Array1<f64> = dims(name, a, "1-D")?;
    Ok(v.to_vec())
}

fn compute_metric<F: MetricFloat>(
    forms: &losskit::losses::MetricForms,
    embeddings: ArrayD<F>,
    input: &mut NpzInput,
    reduction: Reduction,
    args: &LossArgs,
) -> anyhow::Result<()> {
    let x: Array2<F> = dims("embeddings", embeddings, "2-D [N, D]")?;
    let labels = read_labels(input, "labels")?;
    let (out, timing) = if let Some(loss) = forms.proxy.as_deref() {
        let w: Array2<F> = dims("proxies", read_float::<F>(input, "proxies", "embeddings")?, "2-D [C, D]")?;
        let run = || F::proxy(loss, x.view(), labels.view(), w.view());
        (run()?, args.repeat.map(|k| time_runs(&run, args.warmup, k)).transpose()?)
    } else {
        let loss = forms.embedding.as_deref().context("the registry built no embedding form")?;
        let reference = if input.has("reference_embeddings") {
            let r: Array2<F> = dims(
                "reference_embeddings",
                read_float::<F>(input, "reference_embeddings", "embeddings")?,
                "2-D [R, D]",
            )?;
            Some((r, read_labels(input, "reference_labels")?))
        } else {
            None
        };
        let run = || {
            let r = reference.as_ref().map(|(e, l)| Reference { embeddings: e.view(), labels: l.view() });
            F::embedding(loss, x.view(), labels.view(), r)
        };
        (run()?, args.repeat.map(|k| time_runs(&run, args.warmup, k)).transpose()?)
    };
    if let Some(path) = &args.output {
        let mut file = NpzOutput::create(path)?;
        file.add("loss", &arr0(out.value))?;
        if reduction == Reduction::None
            && let Some(per_sample) = &out.per_sample
        {
            file.add("per_sample", per_sample)?;
        }
        for (name, g) in &out.grads {
            file.add(name, g)?;
        }
        file.finish()?;
    }
    let mut stdout = std::io::stdout().lock();
    match timing {
        Some((median, min)) => writeln!(stdout, "median_ms={median:.6} min_ms={min:.6}"),
        None if args.output.is_none() => writeln!(stdout, "{}", out.value),
        None => Ok(()),
    }
    .context("writing to stdout")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_split_at_the_first_equals_sign() {
        assert_eq!(parse_pair("gamma=2").unwrap(), ("gamma".into(), "2".into()));
        assert_eq!(parse_pair("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert_eq!(parse_pair(" alpha = 0.25 ").unwrap(), ("alpha".into(), "0.25".into()));
        assert!(parse_pair("gamma").is_err());
        assert!(parse_pair("=2").is_err());
    }

    #[test]
    fn timing_reports_median_and_minimum() {
        let calls = std::cell::Cell::new(0);
        let counting = || {
            calls.set(calls.get() + 1);
            Ok::<_, losskit::Error>(())
        };
        let (median, min) = time_runs(&counting, 3, 5).unwrap();
        assert_eq!(calls.get(), 2 + 5, "two more warm-up runs (the caller ran the first), then five timed");
        assert!(min >= 0.0 && median >= min);
        let calls = std::cell::Cell::new(0);
        let failing = || {
            calls.set(calls.get() + 1);
            Err::<(), _>(losskit::Error::Empty { arg: "logits" })
        };
        assert!(time_runs(&failing, 1, 3).is_err());
        assert_eq!(calls.get(), 1);
    }
}
