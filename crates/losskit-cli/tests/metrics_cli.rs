//! End-to-end tests of `losskit metrics`: each task from .npz and CSV, values equal to the library's report
//! functions (which the metrics crate checks against scikit-learn, torchmetrics and pytorch-metric-learning), task
//! inference, JSON shape, and every bad input exiting 2 with one stderr line.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ndarray::{Array1, Array2, ArrayD, array};
use ndarray_npy::{NpzWriter, WritableElement};
use serde_json::Value;

use losskit::metrics::{RetrievalConfig, summary};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_losskit")).args(args).env_remove("COLUMNS").output().expect("spawning losskit")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8 stdout")
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("utf-8 stderr")
}

enum A {
    F64(ArrayD<f64>),
    F32(ArrayD<f32>),
    I64(ArrayD<i64>),
    I32(ArrayD<i32>),
}

fn write_npz(path: &Path, arrays: Vec<(&str, A)>) {
    fn add<T: WritableElement>(w: &mut NpzWriter<File>, name: &str, a: &ArrayD<T>) {
        w.add_array(name, a).expect("writing test array");
    }
    let mut w = NpzWriter::new(File::create(path).expect("creating test npz"));
    for (name, a) in &arrays {
        match a {
            A::F64(a) => add(&mut w, name, a),
            A::F32(a) => add(&mut w, name, a),
            A::I64(a) => add(&mut w, name, a),
            A::I32(a) => add(&mut w, name, a),
        }
    }
    w.finish().expect("finishing test npz");
}

/// A scratch folder; every input written gets a fresh name.
struct Case {
    dir: tempfile::TempDir,
    count: std::cell::Cell<usize>,
}

impl Case {
    fn new() -> Self {
        Case { dir: tempfile::tempdir().expect("tempdir"), count: std::cell::Cell::new(0) }
    }
    fn path(&self, ext: &str) -> PathBuf {
        self.count.set(self.count.get() + 1);
        self.dir.path().join(format!("in{}.{ext}", self.count.get()))
    }
    fn npz(&self, arrays: Vec<(&str, A)>) -> String {
        let p = self.path("npz");
        write_npz(&p, arrays);
        p.display().to_string()
    }
    fn csv(&self, text: &str) -> String {
        let p = self.path("csv");
        std::fs::write(&p, text).expect("writing csv");
        p.display().to_string()
    }
}

fn json(o: &Output) -> Value {
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(o));
    let text = stdout(o);
    assert_eq!(text.lines().count(), 1, "{text}");
    serde_json::from_str(&text).expect("one JSON object")
}

/// Every library pair appears in the JSON with the same value (NaN as null; 1e-15 relative for the decimal round
/// trip through JSON), and nothing else besides task and n_samples.
fn assert_same(v: &Value, pairs: &[(String, f64)]) {
    let obj = v.as_object().expect("object");
    let keys: Vec<&String> = obj.keys().collect();
    assert_eq!(keys.len(), pairs.len() + 2, "{keys:?}");
    for (k, want) in pairs {
        let got = &obj[k];
        if want.is_finite() {
            let g = got.as_f64().unwrap_or(f64::NAN);
            assert!((g - want).abs() <= 1e-15 * want.abs().max(1.0), "{k}: {g} vs {want}");
        } else {
            assert!(got.is_null(), "{k}: {got}");
        }
    }
}

fn y_true() -> Array1<i64> {
    array![0, 1, 1, 0, 1, 0, 1, 1]
}
fn y_score() -> Array1<f64> {
    array![0.1, 0.8, 0.35, 0.4, 0.9, 0.65, 0.5, 0.7]
}

#[test]
fn binary_npz_matches_the_library_report_with_calibration() {
    let c = Case::new();
    let input = c.npz(vec![("y_true", A::I64(y_true().into_dyn())), ("y_score", A::F64(y_score().into_dyn()))]);
    let v = json(&run(&["metrics", "--input", &input, "--json"]));
    assert_eq!(v["task"], "binary");
    assert_eq!(v["n_samples"], 8);
    let mut want = summary::binary_report(y_true().view(), Some(y_score().view()), None, 0.5).unwrap();
    want.extend(summary::binary_calibration_report(y_true().view(), y_score().view()).unwrap());
    assert_same(&v, &want);
    assert!(v["ece"].as_f64().is_some() && v["roc_auc"].as_f64().is_some());
    // --threshold moves the predictions, not the ranking metrics.
    let v2 = json(&run(&["metrics", "--input", &input, "--json", "--threshold", "0.6"]));
    assert_eq!(v2["roc_auc"], v["roc_auc"]);
    let want = summary::binary_report(y_true().view(), Some(y_score().view()), None, 0.6).unwrap();
    assert_eq!(v2["accuracy"].as_f64(), Some(want[0].1));
}

#[test]
fn binary_csv_gives_the_npz_numbers_and_a_text_report() {
    let c = Case::new();
    let mut text = String::from("y_true,y_score\n");
    for (t, s) in y_true().iter().zip(y_score().iter()) {
        text.push_str(&format!("{t},{s}\n"));
    }
    let input = c.csv(&text);
    let from_csv = json(&run(&["metrics", "--input", &input, "--json"]));
    let npz = c.npz(vec![
        ("y_true", A::I32(y_true().mapv(|v| v as i32).into_dyn())),
        ("y_score", A::F32(y_score().mapv(|v| v as f32).into_dyn())),
    ]);
    let from_npz = json(&run(&["metrics", "--input", &npz, "--json"]));
    assert_eq!(from_csv["roc_auc"], from_npz["roc_auc"]);
    assert_eq!(from_csv["accuracy"], from_npz["accuracy"]);
    let o = run(&["metrics", "--input", &input]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(out.starts_with("task"), "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("roc_auc ")
            && l.trim_end().ends_with(&format!("{:.6}", from_csv["roc_auc"].as_f64().unwrap()))),
        "{out}"
    );
    assert!(out.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["n_samples", "8"]), "{out}");
}

#[test]
fn multiclass_from_score_columns_and_from_labels_only() {
    let c = Case::new();
    let t = array![0_i64, 1, 2, 2, 1, 0];
    let p =
        array![[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.1, 0.3, 0.6], [0.3, 0.4, 0.3], [0.25, 0.5, 0.25], [0.6, 0.1, 0.3]];
    let mut text = String::from("y_true,y_score_0,y_score_1,y_score_2\n");
    for (i, r) in p.rows().into_iter().enumerate() {
        text.push_str(&format!("{},{},{},{}\n", t[i], r[0], r[1], r[2]));
    }
    let v = json(&run(&["metrics", "--input", &c.csv(&text), "--json"]));
    assert_eq!(v["task"], "multiclass");
    let mut want = summary::multiclass_report(3, t.view(), Some(p.view()), None).unwrap();
    want.extend(summary::multiclass_calibration_report(t.view(), p.view()).unwrap());
    assert_same(&v, &want);
    assert!(v["roc_auc_ovr_macro"].as_f64().is_some() && v["log_loss"].as_f64().is_some());
    // Labels only: a label above 1 makes it multiclass.
    let pred = array![0_i64, 1, 2, 1, 1, 0];
    let input = c.npz(vec![("y_true", A::I64(t.clone().into_dyn())), ("y_pred", A::I64(pred.clone().into_dyn()))]);
    let v = json(&run(&["metrics", "--input", &input, "--json"]));
    assert_eq!(v["task"], "multiclass");
    assert_same(&v, &summary::multiclass_report(3, t.view(), None, Some(pred.view())).unwrap());
}

#[test]
fn multilabel_with_scores_adds_the_ranking_metrics() {
    let c = Case::new();
    let t = array![[1_i64, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]];
    let s = array![[0.9, 0.2, 0.4], [0.3, 0.6, 0.7], [0.8, 0.4, 0.1], [0.2, 0.1, 0.95]];
    let input = c.npz(vec![("y_true", A::I64(t.clone().into_dyn())), ("y_score", A::F64(s.clone().into_dyn()))]);
    let v = json(&run(&["metrics", "--input", &input, "--json"]));
    assert_eq!(v["task"], "multilabel");
    let pred = s.mapv(|x| (x >= 0.5) as i64);
    let mut want = summary::multilabel_report(t.view(), pred.view()).unwrap();
    want.extend(summary::multilabel_ranking_report(t.view(), s.view()).unwrap());
    assert_same(&v, &want);
    assert!(v["coverage_error"].as_f64().is_some());
}

#[test]
fn retrieval_from_embeddings_and_from_query_reference_pairs() {
    let c = Case::new();
    let e = Array2::from_shape_fn((30, 3), |(i, j)| ((i % 3) as f64) * 2.0 + ((i * 7 + j * 13) % 10) as f64 * 0.1);
    let l: Array1<i64> = (0..30).map(|i| (i % 3) as i64).collect();
    let input = c.npz(vec![("embeddings", A::F64(e.clone().into_dyn())), ("labels", A::I64(l.clone().into_dyn()))]);
    let v = json(&run(&["metrics", "--input", &input, "--json"]));
    assert_eq!(v["task"], "retrieval");
    assert_same(&v, &summary::retrieval_report(e.view(), l.view(), None, &RetrievalConfig::new()).unwrap());
    assert!(v["map_at_r"].as_f64().is_some() && v["precision_at_1"].as_f64().is_some());
    let v = json(&run(&["metrics", "--input", &input, "--json", "--k", "3", "--distance", "cosine"]));
    assert_eq!(v["k"], 3.0);
    let (q, r) = (e.slice(ndarray::s![..10, ..]).to_owned(), e.slice(ndarray::s![10.., ..]).to_owned());
    let (ql, rl) = (l.slice(ndarray::s![..10]).to_owned(), l.slice(ndarray::s![10..]).to_owned());
    let input = c.npz(vec![
        ("query", A::F64(q.clone().into_dyn())),
        ("query_labels", A::I64(ql.clone().into_dyn())),
        ("reference", A::F64(r.clone().into_dyn())),
        ("reference_labels", A::I64(rl.clone().into_dyn())),
    ]);
    let v = json(&run(&["metrics", "--input", &input, "--json"]));
    let want =
        summary::retrieval_report(q.view(), ql.view(), Some((r.view(), rl.view())), &RetrievalConfig::new()).unwrap();
    assert_same(&v, &want);
    // The ICNN score (k = 4, raw Euclidean) is the library's, with the reference set as the ranked rows.
    let icnn = losskit::metrics::icnn_score(q.view(), ql.view(), Some((r.view(), rl.view())), 4, None).unwrap();
    assert_eq!(v["icnn_score"].as_f64(), Some(icnn));
}

#[test]
fn retrieval_report_has_the_icnn_score() {
    let c = Case::new();
    // Three tight, well-separated clusters of 6: the k + 1 = 5 neighbours searched are all of the row's class, so
    // γ = λ_s = λ_d = 1 and the score is 1 up to its ε.
    let e = Array2::from_shape_fn((18, 2), |(i, j)| ((i % 3) * 10) as f64 + ((i * 5 + j * 3) % 7) as f64 * 0.01);
    let l: Array1<i64> = (0..18).map(|i| (i % 3) as i64).collect();
    let input = c.npz(vec![("embeddings", A::F64(e.clone().into_dyn())), ("labels", A::I64(l.clone().into_dyn()))]);
    let v = json(&run(&["metrics", "--input", &input, "--task", "retrieval", "--json"]));
    let want = losskit::metrics::icnn_score(e.view(), l.view(), None, 4, None).unwrap();
    assert_eq!(v["icnn_score"].as_f64(), Some(want));
    assert!((want - 1.0).abs() < 1e-6, "{want}");
    // Mixing the labels lowers it.
    let mixed: Array1<i64> = (0..18).map(|i| (i % 2) as i64).collect();
    let input = c.npz(vec![("embeddings", A::F64(e.clone().into_dyn())), ("labels", A::I64(mixed.into_dyn()))]);
    let v = json(&run(&["metrics", "--input", &input, "--task", "retrieval", "--json"]));
    assert!(v["icnn_score"].as_f64().is_some_and(|s| s < want), "{v}");
    // The text report names it too.
    let out = run(&["metrics", "--input", &input, "--task", "retrieval"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("icnn_score"));
}

#[test]
fn every_bad_input_exits_2_with_one_line() {
    let c = Case::new();
    let f64s = |v: Vec<f64>| A::F64(Array1::from(v).into_dyn());
    let i64s = |v: Vec<i64>| A::I64(Array1::from(v).into_dyn());
    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        ("missing file", vec!["--input".into(), c.dir.path().join("nope.csv").display().to_string()], "cannot open"),
        (
            "mismatched lengths",
            vec!["--input".into(), c.npz(vec![("y_true", i64s(vec![0, 1, 1])), ("y_score", f64s(vec![0.1, 0.2]))])],
            "y_score",
        ),
        (
            "nan score",
            vec!["--input".into(), c.npz(vec![("y_true", i64s(vec![0, 1])), ("y_score", f64s(vec![0.1, f64::NAN]))])],
            "non-finite",
        ),
        (
            "label out of range",
            vec![
                "--input".into(),
                c.npz(vec![("y_true", i64s(vec![0, 1])), ("y_score", f64s(vec![0.1, 0.2]))]),
                "--task".into(),
                "multilabel".into(),
            ],
            "shape",
        ),
        (
            "single class for auc",
            vec!["--input".into(), c.npz(vec![("y_true", i64s(vec![1, 1])), ("y_score", f64s(vec![0.1, 0.7]))])],
            "both classes",
        ),
        (
            "fractional label",
            vec!["--input".into(), c.npz(vec![("y_true", f64s(vec![0.5, 1.0])), ("y_pred", i64s(vec![0, 1]))])],
            "integer labels",
        ),
        (
            "unknown array",
            vec!["--input".into(), c.npz(vec![("y_true", i64s(vec![0, 1])), ("scores", f64s(vec![0.1, 0.2]))])],
            "`scores`",
        ),
        ("no predictions", vec!["--input".into(), c.npz(vec![("y_true", i64s(vec![0, 1]))])], "y_score"),
        ("no y_true", vec!["--input".into(), c.npz(vec![("y_score", f64s(vec![0.1, 0.2]))])], "y_true"),
        ("bad csv column", vec!["--input".into(), c.csv("y_true,score\n0,0.1\n")], "unknown column `score`"),
        ("ragged csv", vec!["--input".into(), c.csv("y_true,y_score\n0,0.1\n1\n")], "line 3"),
        ("csv text value", vec!["--input".into(), c.csv("y_true,y_score\n0,abc\n")], "not a number"),
        ("empty csv", vec!["--input".into(), c.csv("")], "empty"),
        (
            "bad task",
            vec!["--input".into(), c.csv("y_true,y_score\n0,0.1\n"), "--task".into(), "ranking".into()],
            "--task",
        ),
        (
            "bad k",
            vec![
                "--input".into(),
                c.npz(vec![
                    ("embeddings", A::F64(Array2::<f64>::zeros((3, 2)).into_dyn())),
                    ("labels", i64s(vec![0, 0, 1])),
                ]),
                "--k".into(),
                "zero".into(),
            ],
            "parameter k",
        ),
        (
            "retrieval without labels",
            vec!["--input".into(), c.npz(vec![("embeddings", A::F64(Array2::<f64>::zeros((3, 2)).into_dyn()))])],
            "`labels`",
        ),
        (
            "nan threshold",
            vec!["--input".into(), c.csv("y_true,y_score\n0,0.1\n"), "--threshold".into(), "nan".into()],
            "--threshold",
        ),
    ];
    for (what, args, needle) in cases {
        let mut all = vec!["metrics".to_string()];
        all.extend(args);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        let o = run(&refs);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{what}: {err}");
        assert!(stdout(&o).is_empty(), "{what}: stdout {}", stdout(&o));
        assert_eq!(err.lines().count(), 1, "{what}: {err}");
        assert!(err.starts_with("losskit: ") && err.contains(needle), "{what}: {err}");
    }
}

/// PNG width and height from the IHDR chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let be = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    (be(16), be(20))
}

#[test]
fn plot_writes_roc_pr_and_reliability_as_png_and_svg() {
    let c = Case::new();
    let input = c.npz(vec![("y_true", A::I64(y_true().into_dyn())), ("y_score", A::F64(y_score().into_dyn()))]);
    let out = c.dir.path().join("plots");
    let plain = json(&run(&["metrics", "--input", &input, "--json"]));
    let o = run(&["metrics", "--input", &input, "--json", "--plot", &out.display().to_string()]);
    assert_eq!(json(&o), plain, "--plot must not change the report");
    for name in ["roc", "pr", "reliability"] {
        let png = std::fs::read(out.join(format!("{name}.png"))).expect("png written");
        assert_eq!(png_size(&png), (640, 480), "{name}");
        let svg = std::fs::read_to_string(out.join(format!("{name}.svg"))).expect("svg written");
        assert!(svg.starts_with("<svg") && svg.contains("<polyline"), "{name}: {}", &svg[..svg.len().min(200)]);
    }
    // With a system font the legend carries the library's AUC (0.8 on these data: 12 of 15 pairs ordered).
    let auc = summary::binary_report(y_true().view(), Some(y_score().view()), None, 0.5).unwrap();
    let auc = auc.iter().find(|(k, _)| k == "roc_auc").unwrap().1;
    let svg = std::fs::read_to_string(out.join("roc.svg")).unwrap();
    if Path::new("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf").exists() {
        assert!(svg.contains(&format!("AUC {auc:.3}")), "legend missing");
    }

    // Multiclass probabilities: one curve per class.
    let t = array![0_i64, 1, 2, 2, 1, 0];
    let s =
        array![[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4], [0.6, 0.3, 0.1], [0.5, 0.4, 0.1]];
    let input = c.npz(vec![("y_true", A::I64(t.into_dyn())), ("y_score", A::F64(s.into_dyn()))]);
    let out = c.dir.path().join("mc");
    let o = run(&["metrics", "--input", &input, "--plot", &out.display().to_string()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let svg = std::fs::read_to_string(out.join("pr.svg")).unwrap();
    assert!(svg.matches("<polyline").count() >= 3, "three classes");
    assert!(out.join("reliability.png").exists());

    // Retrieval has no such charts: a clear error, exit 2.
    let e = array![[0.0, 1.0], [0.0, 1.1], [1.0, 0.0], [1.1, 0.0]];
    let input =
        c.npz(vec![("embeddings", A::F64(e.into_dyn())), ("labels", A::I64(array![0_i64, 0, 1, 1].into_dyn()))]);
    let o = run(&["metrics", "--input", &input, "--plot", &c.dir.path().join("r").display().to_string()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--plot"), "{}", stderr(&o));
}
