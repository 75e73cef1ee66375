//! `losskit loss` on the embedding and proxy families: the arrays written equal the library's results (f64 and f32,
//! with a reference set, per-sample values), `--repeat` prints one timing line, and every bad input exits 2 with one
//! stderr line and no output file.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ndarray::{Array0, Array1, Array2, ArrayD};
use ndarray_npy::{NpzReader, NpzWriter, WritableElement};

use losskit::losses::{
    CosFace, EmbeddingLoss, MultiSimilarity, ProxyLoss, Reduction, Reference, SupCon, TripletMargin, TripletMining,
};

fn losskit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_losskit"))
        .env_remove("COLUMNS")
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .expect("spawning losskit")
}

enum A {
    F64(ArrayD<f64>),
    F32(ArrayD<f32>),
    I64(ArrayD<i64>),
    I32(ArrayD<i32>),
}

fn write_npz(path: &Path, arrays: Vec<(&str, A)>) {
    fn add<T: WritableElement>(w: &mut NpzWriter<File>, name: &str, a: &ArrayD<T>) {
        w.add_array(name, a).expect("npz add");
    }
    let mut w = NpzWriter::new(File::create(path).expect("create npz"));
    for (name, a) in &arrays {
        match a {
            A::F64(a) => add(&mut w, name, a),
            A::F32(a) => add(&mut w, name, a),
            A::I64(a) => add(&mut w, name, a),
            A::I32(a) => add(&mut w, name, a),
        }
    }
    w.finish().expect("npz finish");
}

fn read<T: ndarray_npy::ReadableElement, D: ndarray::Dimension>(path: &Path, name: &str) -> ndarray::Array<T, D> {
    let mut r = NpzReader::new(File::open(path).expect("open output")).expect("npz");
    r.by_name(name).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn names(path: &Path) -> Vec<String> {
    let mut r = NpzReader::new(File::open(path).expect("open output")).expect("npz");
    let mut v: Vec<String> = r.names().expect("names").into_iter().map(|n| n.trim_end_matches(".npy").into()).collect();
    v.sort();
    v
}

fn embeddings(n: usize, d: usize) -> Array2<f64> {
    Array2::from_shape_fn((n, d), |(i, j)| ((i * 7 + j * 3) as f64 * 0.61).sin() + 0.1 * j as f64)
}

fn labels(n: usize, c: i64) -> Array1<i64> {
    Array1::from_shape_fn(n, |i| (i as i64 * 5 + 1) % c)
}

struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    fn new() -> Self {
        Dir { dir: tempfile::tempdir().expect("tempdir") }
    }
    fn input(&self, arrays: Vec<(&str, A)>) -> PathBuf {
        let p = self.dir.path().join("in.npz");
        write_npz(&p, arrays);
        p
    }
    fn out(&self) -> PathBuf {
        self.dir.path().join("out.npz")
    }
    fn run(&self, name: &str, input: &Path, extra: &[&str]) -> Output {
        let (i, o) = (input.to_string_lossy().into_owned(), self.out().to_string_lossy().into_owned());
        let mut args = vec!["loss", name, "--input", i.as_str(), "--output", o.as_str()];
        args.extend_from_slice(extra);
        losskit(&args)
    }
}

#[track_caller]
fn good(o: &Output) {
    assert_eq!(o.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&o.stderr));
}

#[track_caller]
fn bad(o: &Output, out: &Path, what: &str) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{what}: {err}");
    assert!(o.stdout.is_empty(), "{what}");
    assert_eq!(err.lines().count(), 1, "{what}: {err}");
    assert!(err.starts_with("losskit: "), "{what}: {err}");
    assert!(!out.exists(), "{what}: no output file");
    err
}

#[track_caller]
fn close<D: ndarray::Dimension>(got: &ndarray::Array<f64, D>, want: &ndarray::Array<f64, D>, tol: f64) {
    assert_eq!(got.shape(), want.shape());
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= tol * (1.0 + w.abs()), "{g} vs {w}");
    }
}

#[test]
fn multi_similarity_f64_matches_the_library() {
    let d = Dir::new();
    let (x, y) = (embeddings(12, 5), labels(12, 3));
    let input = d.input(vec![("embeddings", A::F64(x.clone().into_dyn())), ("labels", A::I64(y.clone().into_dyn()))]);
    good(&d.run("multi-similarity", &input, &["--set", "beta=40", "--set", "miner=true"]));
    let want = MultiSimilarity::new().beta(40.0).miner(true).compute(x.view(), y.view(), None, true).unwrap();
    assert_eq!(names(&d.out()), ["grad_embeddings", "loss"]);
    let loss: Array0<f64> = read(&d.out(), "loss");
    assert_eq!(loss.into_scalar(), want.value);
    close(&read::<f64, _>(&d.out(), "grad_embeddings"), &want.grad.unwrap(), 1e-15);
}

#[test]
fn supcon_f32_with_a_reference_set_and_per_sample_values() {
    let d = Dir::new();
    let (x, y) = (embeddings(10, 4).mapv(|v| v as f32), labels(10, 3));
    let (r, rl) = (embeddings(6, 4).mapv(|v| (v * 0.5) as f32), labels(6, 2));
    let to_i32 = |a: &Array1<i64>| a.mapv(|v| v as i32).into_dyn();
    let input = d.input(vec![
        ("embeddings", A::F32(x.clone().into_dyn())),
        ("labels", A::I32(to_i32(&y))),
        ("reference_embeddings", A::F32(r.clone().into_dyn())),
        ("reference_labels", A::I32(to_i32(&rl))),
    ]);
    good(&d.run("supcon", &input, &["--reduction", "none", "--set", "temperature=0.3"]));
    let reference = Some(Reference { embeddings: r.view(), labels: rl.view() });
    let want =
        SupCon::new().temperature(0.3).reduction(Reduction::None).compute(x.view(), y.view(), reference, true).unwrap();
    assert_eq!(names(&d.out()), ["grad_embeddings", "grad_reference_embeddings", "loss", "per_sample"]);
    let got: Array2<f32> = read(&d.out(), "grad_reference_embeddings");
    assert_eq!(got, want.grad_reference.unwrap());
    let ps: Array1<f32> = read(&d.out(), "per_sample");
    assert_eq!(ps, want.per_sample.unwrap());
}

#[test]
fn cosface_writes_both_gradients() {
    let d = Dir::new();
    let (x, y, w) = (embeddings(9, 4), labels(9, 3), embeddings(3, 4).mapv(|v| v - 0.2));
    let input = d.input(vec![
        ("embeddings", A::F64(x.clone().into_dyn())),
        ("labels", A::I64(y.clone().into_dyn())),
        ("proxies", A::F64(w.clone().into_dyn())),
    ]);
    good(&d.run("cosface", &input, &["--set", "scale=8"]));
    let want = CosFace::new().scale(8.0).compute(x.view(), y.view(), w.view(), true).unwrap();
    assert_eq!(names(&d.out()), ["grad_embeddings", "grad_proxies", "loss"]);
    close(&read::<f64, _>(&d.out(), "grad_proxies"), &want.grad_proxies.unwrap(), 1e-15);
    close(&read::<f64, _>(&d.out(), "grad_embeddings"), &want.grad.unwrap(), 1e-15);
}

#[test]
fn unpg_sbcl_and_metrix_match_the_library() {
    use losskit::losses::{Metrix, MetrixBase, MetrixMode, Sbcl, Unpg};
    let d = Dir::new();
    // UNPG (proxy form).
    let (x, y, w) = (embeddings(10, 4), labels(10, 3), embeddings(3, 4).mapv(|v| v - 0.2));
    let input = d.input(vec![
        ("embeddings", A::F64(x.clone().into_dyn())),
        ("labels", A::I64(y.clone().into_dyn())),
        ("proxies", A::F64(w.clone().into_dyn())),
    ]);
    good(&d.run("unpg", &input, &["--set", "scale=8", "--set", "base=arcface"]));
    let want = Unpg::arcface().scale(8.0).compute(x.view(), y.view(), w.view(), true).unwrap();
    assert_eq!(names(&d.out()), ["grad_embeddings", "grad_proxies", "loss"]);
    assert_eq!(read::<f64, ndarray::Ix0>(&d.out(), "loss").into_scalar(), want.value);
    close(&read::<f64, _>(&d.out(), "grad_proxies"), &want.grad_proxies.unwrap(), 1e-15);
    // Metrix on proxy-anchor (proxy form), fixed λ and mode.
    let d = Dir::new();
    let input = d.input(vec![
        ("embeddings", A::F64(x.clone().into_dyn())),
        ("labels", A::I64(y.clone().into_dyn())),
        ("proxies", A::F64(w.clone().into_dyn())),
    ]);
    good(&d.run(
        "metrix",
        &input,
        &["--set", "base=proxy-anchor", "--set", "lambda=0.3", "--set", "mode=positive-negative"],
    ));
    let m = Metrix::new().base(MetrixBase::ProxyAnchor).lambda(Some(0.3)).mode(Some(MetrixMode::PositiveNegative));
    let want = ProxyLoss::<f64>::compute(&m, x.view(), y.view(), w.view(), true).unwrap();
    assert_eq!(read::<f64, ndarray::Ix0>(&d.out(), "loss").into_scalar(), want.value);
    close(&read::<f64, _>(&d.out(), "grad_embeddings"), &want.grad.unwrap(), 1e-15);
    // Metrix on contrastive (embedding form), seeded draw.
    let d = Dir::new();
    let input = d.input(vec![("embeddings", A::F64(x.clone().into_dyn())), ("labels", A::I64(y.clone().into_dyn()))]);
    good(&d.run("metrix", &input, &["--set", "seed=7"]));
    let want = EmbeddingLoss::<f64>::compute(&Metrix::new().seed(7), x.view(), y.view(), None, true).unwrap();
    assert_eq!(read::<f64, ndarray::Ix0>(&d.out(), "loss").into_scalar(), want.value);
    close(&read::<f64, _>(&d.out(), "grad_embeddings"), &want.grad.unwrap(), 1e-15);
    // SBCL: two views of 6 samples, subclass ids per row (int32) and class temperatures from the file.
    let d = Dir::new();
    let (x, yb) = (embeddings(12, 4), labels(6, 2));
    let sub = Array1::from_shape_fn(6, |i| yb[i] * 2 + (i as i64 % 2));
    let rows = |v: &Array1<i64>| ndarray::concatenate![ndarray::Axis(0), *v, *v];
    let t2 = ndarray::array![0.2_f64, 0.3];
    let input = d.input(vec![
        ("embeddings", A::F64(x.clone().into_dyn())),
        ("labels", A::I64(rows(&yb).into_dyn())),
        ("subclass_labels", A::I32(rows(&sub).mapv(|v| v as i32).into_dyn())),
        ("class_temperature", A::F64(t2.clone().into_dyn())),
    ]);
    good(&d.run("sbcl", &input, &["--set", "views=2", "--set", "temperature=0.2"]));
    let want = Sbcl::new().temperature(0.2).compute(x.view(), yb.view(), sub.view(), Some(t2.view()), true).unwrap();
    assert_eq!(read::<f64, ndarray::Ix0>(&d.out(), "loss").into_scalar(), want.value);
    close(&read::<f64, _>(&d.out(), "grad_embeddings"), &want.grad.unwrap(), 1e-15);
    // A negative subclass id is bad input (exit 2, one line).
    let d = Dir::new();
    let input = d.input(vec![
        ("embeddings", A::F64(x.clone().into_dyn())),
        ("labels", A::I64(rows(&yb).into_dyn())),
        ("subclass_labels", A::I64(Array1::from_elem(12, -1_i64).into_dyn())),
    ]);
    let err = bad(&d.run("sbcl", &input, &["--set", "views=2"]), &d.out(), "negative subclass id");
    assert!(err.contains("subclass_labels"), "{err}");
}

/// The registry-format cases of the losses crate's fixtures (`tools/fixtures/gen_metric_learning.py`) run through
/// the binary for these losses: the written loss and gradients equal the torch restatement of the authors' code.
const FIXTURE_LOSSES: &[&str] = &["proto-triplet", "icnn"];

fn fixture_matrix(v: &serde_json::Value) -> Array2<f64> {
    let rows: Vec<Vec<f64>> = v
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r.as_array().expect("row").iter().map(|x| x.as_f64().expect("number")).collect())
        .collect();
    let c = rows.first().map_or(0, Vec::len);
    Array2::from_shape_vec((rows.len(), c), rows.concat()).expect("rectangular")
}

fn fixture_labels(v: &serde_json::Value) -> Array1<i64> {
    v.as_array().expect("labels").iter().map(|x| x.as_i64().expect("int")).collect()
}

#[test]
fn proto_triplet_and_icnn_fixture_cases_run_through_the_cli() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../losskit-losses/tests/fixtures/metric_learning.json");
    let text = std::fs::read_to_string(&path).expect("reading the metric-learning fixtures");
    let fx: serde_json::Value = serde_json::from_str(&text).expect("parsing the metric-learning fixtures");
    let mut seen = Vec::new();
    for case in fx["cases"].as_array().expect("cases") {
        let loss = case["loss"].as_str().expect("loss");
        if !FIXTURE_LOSSES.contains(&loss) {
            continue;
        }
        let name = case["name"].as_str().expect("name");
        seen.push(loss);
        let d = Dir::new();
        let mut arrays = vec![
            ("embeddings", A::F64(fixture_matrix(&case["embeddings"]).into_dyn())),
            ("labels", A::I64(fixture_labels(&case["labels"]).into_dyn())),
        ];
        let mut grads = vec![("grad_embeddings", "grad")];
        if let Some(w) = case.get("proxies") {
            arrays.push(("proxies", A::F64(fixture_matrix(w).into_dyn())));
            grads.push(("grad_proxies", "grad_proxies"));
        }
        if let Some(r) = case.get("reference_embeddings") {
            arrays.push(("reference_embeddings", A::F64(fixture_matrix(r).into_dyn())));
            arrays.push(("reference_labels", A::I64(fixture_labels(&case["reference_labels"]).into_dyn())));
            grads.push(("grad_reference_embeddings", "grad_reference"));
        }
        let input = d.input(arrays);
        let sets: Vec<String> = case["params"]
            .as_object()
            .expect("params")
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().expect("text")))
            .collect();
        let extra: Vec<&str> = sets.iter().flat_map(|s| ["--set", s.as_str()]).collect();
        let o = d.run(loss, &input, &extra);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", String::from_utf8_lossy(&o.stderr));
        let value = read::<f64, ndarray::Ix0>(&d.out(), "loss").into_scalar();
        let want = case["value"].as_f64().expect("value");
        assert!((value - want).abs() <= 1e-9 * (1.0 + want.abs()), "{name}: {value} vs {want}");
        for (output, key) in grads {
            let got: Array2<f64> = read(&d.out(), output);
            close(&got, &fixture_matrix(&case[key]), 1e-9);
        }
    }
    for loss in FIXTURE_LOSSES {
        assert!(seen.contains(loss), "{loss} has no fixture case");
    }
}

#[test]
fn repeat_prints_one_timing_line_and_no_output_prints_the_value() {
    let d = Dir::new();
    let (x, y) = (embeddings(16, 4), labels(16, 4));
    let input = d.input(vec![("embeddings", A::F64(x.clone().into_dyn())), ("labels", A::I64(y.clone().into_dyn()))]);
    let i = input.to_string_lossy().into_owned();
    let o = losskit(&["loss", "triplet-margin", "--input", &i, "--set", "mining=batch-hard", "--repeat", "3"]);
    good(&o);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(text.starts_with("median_ms=") && text.contains(" min_ms=") && text.lines().count() == 1, "{text}");
    let o = losskit(&["loss", "triplet-margin", "--input", &i, "--set", "mining=batch-hard"]);
    good(&o);
    let want = TripletMargin::new().mining(TripletMining::BatchHard).compute(x.view(), y.view(), None, false).unwrap();
    let got: f64 = String::from_utf8_lossy(&o.stdout).trim().parse().expect("a number");
    assert_eq!(got, want.value);
}

#[test]
fn bad_inputs_exit_2_with_one_line() {
    let d = Dir::new();
    let (x, y) = (embeddings(6, 3), labels(6, 2));
    let e = |a: &Array2<f64>| A::F64(a.clone().into_dyn());
    let l = |a: &Array1<i64>| A::I64(a.clone().into_dyn());
    let out = d.out();
    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, A)>, &'a str);
    let cases: Vec<Case> = vec![
        ("no labels", "contrastive", vec![("embeddings", e(&x))], "needs `embeddings`"),
        ("misspelt array", "contrastive", vec![("embeddings", e(&x)), ("label", l(&y))], "`label`"),
        ("label count", "supcon", vec![("embeddings", e(&x)), ("labels", l(&labels(4, 2)))], "labels"),
        (
            "nan",
            "multi-similarity",
            vec![("embeddings", e(&x.mapv(|v| if v > 0.5 { f64::NAN } else { v }))), ("labels", l(&y))],
            "non-finite",
        ),
        (
            "float labels",
            "supcon",
            vec![("embeddings", e(&x)), ("labels", A::F64(y.mapv(|v| v as f64).into_dyn()))],
            "labels",
        ),
        (
            "1-D embeddings",
            "supcon",
            vec![("embeddings", A::F64(Array1::zeros(6).into_dyn())), ("labels", l(&y))],
            "2-D",
        ),
        ("missing proxies", "proxy-anchor", vec![("embeddings", e(&x)), ("labels", l(&y))], "`proxies`"),
        (
            "reference without labels",
            "supcon",
            vec![("embeddings", e(&x)), ("labels", l(&y)), ("reference_embeddings", e(&x))],
            "reference_labels",
        ),
        (
            "proxies on an embedding loss",
            "supcon",
            vec![("embeddings", e(&x)), ("labels", l(&y)), ("proxies", e(&x))],
            "`proxies`",
        ),
        (
            "label out of range",
            "arcface",
            vec![
                ("embeddings", e(&x)),
                ("labels", l(&ndarray::array![0_i64, 1, 0, 1, 4, 0])),
                ("proxies", e(&embeddings(2, 3))),
            ],
            "out of range",
        ),
        (
            "mixed precision",
            "cosface",
            vec![
                ("embeddings", e(&x)),
                ("labels", l(&y)),
                ("proxies", A::F32(embeddings(2, 3).mapv(|v| v as f32).into_dyn())),
            ],
            "precision",
        ),
    ];
    for (what, loss, arrays, needle) in cases {
        let input = d.input(arrays);
        let err = bad(&d.run(loss, &input, &[]), &out, what);
        assert!(err.contains(needle), "{what}: {err}");
    }
    let input = d.input(vec![("embeddings", e(&x)), ("labels", l(&y))]);
    let err = bad(&d.run("supcon", &input, &["--set", "temperature=0"]), &out, "bad parameter");
    assert!(err.contains("temperature"), "{err}");
}
