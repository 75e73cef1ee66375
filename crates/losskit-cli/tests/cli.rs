//! End-to-end tests of the `losskit` binary: every bad input exits 2 with one stderr line and no output file; good
//! runs write the documented arrays with the values the library computes; `--repeat` prints one parsable line;
//! help and `list` are snapshot-tested (snapshots in `tests/snapshots/`, CI runs with `INSTA_UPDATE=no`).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use approx::assert_relative_eq;
use ndarray::{Array0, Array1, Array2, ArrayD, array};
use ndarray_npy::{NpzReader, NpzWriter, WritableElement};

use losskit::losses::{LossOutput, Targets, registry};

// ---------------------------------------------------------------------------------------------------------------
// Helpers

fn losskit() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_losskit"));
    cmd.env_remove("COLUMNS").env("NO_COLOR", "1");
    cmd
}

fn run(args: &[&str]) -> Output {
    losskit().args(args).output().expect("spawning losskit")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8 stdout")
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("utf-8 stderr")
}

/// An array of any dtype the tests write.
enum A {
    F32(ArrayD<f32>),
    F64(ArrayD<f64>),
    I32(ArrayD<i32>),
    I64(ArrayD<i64>),
    U8(ArrayD<u8>),
}

fn f64s<D: ndarray::Dimension>(a: ndarray::Array<f64, D>) -> A {
    A::F64(a.into_dyn())
}
fn f32s<D: ndarray::Dimension>(a: ndarray::Array<f64, D>) -> A {
    A::F32(a.mapv(|v| v as f32).into_dyn())
}
fn i64s(v: &[i64]) -> A {
    A::I64(Array1::from(v.to_vec()).into_dyn())
}
fn i32s(v: &[i64]) -> A {
    A::I32(Array1::from_iter(v.iter().map(|&x| x as i32)).into_dyn())
}

fn write_npz(path: &Path, arrays: Vec<(&str, A)>) {
    fn add<T: WritableElement>(w: &mut NpzWriter<File>, name: &str, a: &ArrayD<T>) {
        w.add_array(name, a).expect("writing test array");
    }
    let mut w = NpzWriter::new(File::create(path).expect("creating test npz"));
    for (name, a) in &arrays {
        match a {
            A::F32(a) => add(&mut w, name, a),
            A::F64(a) => add(&mut w, name, a),
            A::I32(a) => add(&mut w, name, a),
            A::I64(a) => add(&mut w, name, a),
            A::U8(a) => add(&mut w, name, a),
        }
    }
    w.finish().expect("finishing test npz");
}

fn read<T: ndarray_npy::ReadableElement, D: ndarray::Dimension>(path: &Path, name: &str) -> ndarray::Array<T, D> {
    let mut r = NpzReader::new(File::open(path).expect("opening output")).expect("output is an npz");
    r.by_name(name).unwrap_or_else(|e| panic!("reading `{name}` from the output: {e}"))
}

fn names(path: &Path) -> Vec<String> {
    let mut r = NpzReader::new(File::open(path).expect("opening output")).expect("output is an npz");
    let mut n = r.names().expect("listing output");
    n.sort();
    n
}

/// A 4 × 3 batch with distinct, unordered logits.
fn logits() -> Array2<f64> {
    array![[2.0, -1.0, 0.5], [0.1, 0.2, 0.3], [-3.0, 4.0, 1.0], [1.5, 1.5, -0.5]]
}
const LABELS: [i64; 4] = [0, 2, 1, 2];
fn soft() -> Array2<f64> {
    array![[0.7, 0.2, 0.1], [0.0, 0.5, 0.5], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]]
}
fn weights() -> Array1<f64> {
    array![1.0, 0.5, 2.0, 0.0]
}
fn scores() -> Array1<f64> {
    array![1.2, -0.7, 3.0, 0.0, -2.5]
}
fn binary_targets() -> Array1<f64> {
    array![1.0, 0.0, 1.0, 0.5, 0.0]
}

/// A scratch folder with `in.npz` written from `arrays`; `out` is where outputs go.
struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new(arrays: Vec<(&str, A)>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        write_npz(&dir.path().join("in.npz"), arrays);
        Case { dir }
    }
    fn input(&self) -> String {
        self.dir.path().join("in.npz").display().to_string()
    }
    fn out(&self) -> PathBuf {
        self.dir.path().join("out.npz")
    }
    fn out_str(&self) -> String {
        self.out().display().to_string()
    }
    /// Runs `losskit loss NAME --input in.npz --output out.npz EXTRA...`.
    fn loss(&self, name: &str, extra: &[&str]) -> Output {
        let (input, out) = (self.input(), self.out_str());
        let mut args = vec!["loss", name, "--input", &input, "--output", &out];
        args.extend_from_slice(extra);
        run(&args)
    }
    /// Files in the folder besides the input.
    fn leftovers(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.dir.path())
            .expect("listing tempdir")
            .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n != "in.npz")
            .collect();
        v.sort();
        v
    }
}

/// Asserts exit code 2, nothing on stdout, exactly one `losskit: ...` line on stderr; returns the message.
fn assert_bad_input(o: &Output, what: &str) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{what}: exit code; stderr: {err}");
    assert!(o.stdout.is_empty(), "{what}: stdout not empty: {}", stdout(o));
    assert!(err.ends_with('\n') && err.lines().count() == 1, "{what}: stderr is not one line: {err:?}");
    let line = err.trim_end().to_string();
    assert!(line.starts_with("losskit: "), "{what}: {line}");
    line
}

fn good(o: &Output, what: &str) {
    assert_eq!(o.status.code(), Some(0), "{what}: stderr: {}", stderr(o));
    assert!(o.stderr.is_empty(), "{what}: stderr: {}", stderr(o));
}

fn class_loss(name: &str, pairs: &[(&str, &str)]) -> Box<dyn losskit::losses::DynClassLoss> {
    build(name, pairs, |_| {}).class.expect("loss has a multiclass form")
}

fn build(
    name: &str,
    pairs: &[(&str, &str)],
    edit: impl FnOnce(&mut losskit::losses::Params),
) -> losskit::losses::BuiltLoss {
    let entry = registry::find(name).expect("registered loss");
    let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let mut params = entry.params(&pairs).expect("valid parameters");
    edit(&mut params);
    (entry.build)(&params).expect("loss builds")
}

fn assert_close_f64<D: ndarray::Dimension>(got: &ndarray::Array<f64, D>, want: &ndarray::Array<f64, D>) {
    assert_eq!(got.shape(), want.shape());
    for (g, w) in got.iter().zip(want) {
        assert_relative_eq!(*g, *w, max_relative = 1e-12, epsilon = 1e-15);
    }
}

fn assert_close_f32<D: ndarray::Dimension>(got: &ndarray::Array<f32, D>, want: &ndarray::Array<f32, D>) {
    assert_eq!(got.shape(), want.shape());
    for (g, w) in got.iter().zip(want) {
        assert_relative_eq!(*g, *w, max_relative = 1e-6, epsilon = 1e-7);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Bad input: exit 2, one line, no output file

/// Every bad-input class, each checked for the exit code, the one-line message, the absence of any output (no
/// file, no temporary left behind), and a word of the message; all messages are also snapshot together, with the
/// scratch folder's path replaced by `[DIR]`.
#[test]
fn every_bad_input_exits_2_with_one_line_and_no_output() {
    let good_class = || vec![("logits", f64s(logits())), ("targets", i64s(&LABELS))];
    let mut messages = Vec::new();
    let mut check = |what: &str, case: &Case, o: Output, expect: &[&str]| {
        let line = assert_bad_input(&o, what);
        for word in expect {
            assert!(line.contains(word), "{what}: expected {word:?} in: {line}");
        }
        assert!(case.leftovers().is_empty(), "{what}: files left behind: {:?}", case.leftovers());
        let dir = case.dir.path().display().to_string();
        messages.push(format!("{what}:\n  {}", line.replace(&dir, "[DIR]")));
    };

    // Files.
    let case = Case::new(good_class());
    std::fs::remove_file(case.dir.path().join("in.npz")).expect("removing input");
    let o = case.loss("cross-entropy", &[]);
    check("missing input file", &case, o, &["cannot open --input", "in.npz"]);

    let case = Case::new(vec![]);
    std::fs::write(case.dir.path().join("in.npz"), "logits,targets\n1,0\n").expect("writing text");
    let o = case.loss("cross-entropy", &[]);
    check("input is not an npz", &case, o, &["is not an .npz file"]);

    let case = Case::new(good_class());
    let path = case.dir.path().join("in.npz");
    let mut bytes = std::fs::read(&path).expect("reading input");
    let at = bytes.windows(6).position(|w| w == b"\x93NUMPY").expect("an npy header");
    bytes[at + 1..at + 6].copy_from_slice(b"XXXXX");
    std::fs::write(&path, bytes).expect("corrupting input");
    let o = case.loss("cross-entropy", &[]);
    check("corrupt array in the npz", &case, o, &["cannot read array `logits`"]);

    // Names.
    let case = Case::new(good_class());
    let o = case.loss("no-such-loss", &[]);
    check("unknown loss", &case, o, &["unknown loss", "no-such-loss", "losskit list"]);

    let case = Case::new(vec![("logits", f64s(logits()))]);
    let o = case.loss("cross-entropy", &[]);
    check("missing targets", &case, o, &["targets", "soft_targets", "found: logits"]);

    let case = Case::new(vec![("logit", f64s(logits())), ("targets", i64s(&LABELS))]);
    let o = case.loss("cross-entropy", &[]);
    check("wrong array name", &case, o, &["needs `logits`", "found: logit, targets"]);

    let case = Case::new(vec![("scores", f64s(scores())), ("targets", f64s(binary_targets()))]);
    let o = case.loss("cross-entropy", &[]);
    check("binary arrays for a multiclass-only loss", &case, o, &["needs `logits`", "found: scores, targets"]);

    let mut arrays = good_class();
    arrays.push(("weight", f64s(weights())));
    let case = Case::new(arrays);
    let o = case.loss("cross-entropy", &[]);
    check("misspelt optional array", &case, o, &["does not read an array named `weight`"]);

    let mut arrays = good_class();
    arrays.push(("scores", f64s(scores())));
    let case = Case::new(arrays);
    let o = case.loss("focal", &[]);
    check("both forms given", &case, o, &["either `logits` or `scores`"]);

    let mut arrays = good_class();
    arrays.push(("soft_targets", f64s(soft())));
    let case = Case::new(arrays);
    let o = case.loss("cross-entropy", &[]);
    check("hard and soft targets", &case, o, &["either `targets` or `soft_targets`"]);

    // Dtypes.
    let case = Case::new(vec![("logits", A::I64(logits().mapv(|v| v as i64).into_dyn())), ("targets", i64s(&LABELS))]);
    let o = case.loss("cross-entropy", &[]);
    check("integer logits", &case, o, &["`logits` has dtype int64", "float32 or float64"]);

    let case = Case::new(vec![("logits", f64s(logits())), ("targets", f64s(Array1::from(vec![0.0, 2.0, 1.0, 2.0])))]);
    let o = case.loss("cross-entropy", &[]);
    check("float class targets", &case, o, &["`targets` has dtype float64", "soft_targets"]);

    let case =
        Case::new(vec![("logits", f64s(logits())), ("targets", A::U8(Array1::from(vec![0_u8, 2, 1, 2]).into_dyn()))]);
    let o = case.loss("cross-entropy", &[]);
    check("uint8 targets", &case, o, &["`targets` has dtype uint8", "int32 or int64"]);

    let mut arrays = good_class();
    arrays.push(("weights", f32s(weights())));
    let case = Case::new(arrays);
    let o = case.loss("cross-entropy", &[]);
    check("mixed precision", &case, o, &["`weights` is float32 but `logits` is float64", "one precision"]);

    let case = Case::new(vec![("scores", f64s(scores())), ("targets", i64s(&[1, 0, 1, 0, 0]))]);
    let o = case.loss("binary-cross-entropy", &[]);
    check("integer binary targets", &case, o, &["`targets` has dtype int64", "float"]);

    // Shapes.
    let case = Case::new(vec![("logits", f64s(logits())), ("targets", i64s(&LABELS[..3]))]);
    let o = case.loss("cross-entropy", &[]);
    check("targets shorter than logits", &case, o, &["targets", "[3]"]);

    let case = Case::new(vec![("logits", f64s(scores())), ("targets", i64s(&LABELS))]);
    let o = case.loss("cross-entropy", &[]);
    check("1-D logits", &case, o, &["`logits` must be 2-D", "[5]"]);

    let mut arrays = good_class();
    arrays.push(("weights", f64s(array![1.0, 1.0])));
    let case = Case::new(arrays);
    let o = case.loss("cross-entropy", &[]);
    check("weights of the wrong length", &case, o, &["weights", "[2]"]);

    let case = Case::new(vec![("logits", f64s(logits())), ("soft_targets", f64s(array![[0.5, 0.5], [1.0, 0.0]]))]);
    let o = case.loss("cross-entropy", &[]);
    check("soft targets of the wrong shape", &case, o, &["soft_targets"]);

    let case = Case::new(vec![("scores", f64s(scores())), ("targets", f64s(array![1.0, 0.0]))]);
    let o = case.loss("binary-cross-entropy", &[]);
    check("binary targets of the wrong length", &case, o, &["targets", "[2]"]);

    // Values.
    let mut nan = logits();
    nan[[2, 1]] = f64::NAN;
    let case = Case::new(vec![("logits", f64s(nan)), ("targets", i64s(&LABELS))]);
    let o = case.loss("cross-entropy", &[]);
    check("NaN logit", &case, o, &["logits", "NaN"]);

    let case = Case::new(vec![("logits", f64s(logits())), ("targets", i64s(&[0, 3, 1, 2]))]);
    let o = case.loss("cross-entropy", &[]);
    check("label out of range", &case, o, &["label 3", "0..3"]);

    let case = Case::new(vec![("logits", f64s(logits())), ("targets", i64s(&[0, -1, 1, 2]))]);
    let o = case.loss("focal", &[]);
    check("negative label", &case, o, &["label -1"]);

    // Parameters.
    let case = Case::new(good_class());
    let o = case.loss("focal", &["--set", "bogus=1"]);
    check("unknown parameter", &case, o, &["unknown parameter", "bogus", "gamma"]);

    let o = case.loss("focal", &["--set", "gamma=-1"]);
    check("parameter out of range", &case, o, &["gamma", "-1"]);

    let o = case.loss("focal", &["--set", "gamma=fast"]);
    check("parameter not a number", &case, o, &["gamma", "fast"]);

    let o = case.loss("focal", &["--set", "gamma"]);
    check("malformed --set", &case, o, &["key=value", "losskit loss --help"]);

    let o = case.loss("focal", &["--set", "gamma=1", "--set", "gamma=2"]);
    check("parameter given twice", &case, o, &["gamma", "more than once"]);

    let o = case.loss("focal", &["--set", "reduction=avg"]);
    check("bad reduction", &case, o, &["reduction", "avg"]);

    let o = case.loss("focal", &["--reduction", "avg"]);
    check("bad --reduction", &case, o, &["avg", "--reduction"]);

    let o = case.loss("focal", &["--reduction", "sum", "--set", "reduction=sum"]);
    check("reduction given twice", &case, o, &["reduction", "once"]);

    let o = case.loss("focal", &["--repeat", "0"]);
    check("--repeat 0", &case, o, &["--repeat"]);

    let o = case.loss("focal", &["--set", "class_weights=1"]);
    check("vector parameter on the command line", &case, o, &["class_weights", "input file"]);

    // Output path.
    let missing = case.dir.path().join("no/such/folder/out.npz").display().to_string();
    let o = run(&["loss", "focal", "--input", &case.input(), "--output", &missing]);
    check("output folder missing", &case, o, &["does not exist"]);

    // Usage.
    let o = run(&["loss", "focal"]);
    check("missing --input", &case, o, &["--input"]);
    let o = run(&["frobnicate"]);
    check("unknown subcommand", &case, o, &["frobnicate", "losskit --help"]);

    insta::assert_snapshot!("bad_input_messages", messages.join("\n"));
}

#[test]
fn nan_in_weights_and_vector_parameters_is_rejected() {
    let mut w = weights();
    w[1] = f64::NAN;
    let case = Case::new(vec![("logits", f64s(logits())), ("targets", i64s(&LABELS)), ("weights", f64s(w))]);
    let line = assert_bad_input(&case.loss("cross-entropy", &[]), "NaN weight");
    assert!(line.contains("weights"), "{line}");
    assert!(!case.out().exists());

    let case = Case::new(vec![
        ("logits", f64s(logits())),
        ("targets", i64s(&LABELS)),
        ("class_weights", f64s(array![1.0, f64::INFINITY, 1.0])),
    ]);
    let line = assert_bad_input(&case.loss("cross-entropy", &[]), "infinite class weight");
    assert!(line.contains("class_weights"), "{line}");
    assert!(!case.out().exists());
}

// ---------------------------------------------------------------------------------------------------------------
// Good runs: arrays, shapes and values agree with the library

#[test]
fn cross_entropy_f64_writes_loss_and_gradient_matching_the_library() {
    let case = Case::new(vec![("logits", f64s(logits())), ("targets", i64s(&LABELS))]);
    good(&case.loss("cross-entropy", &[]), "cross-entropy");
    assert!(case.out().exists());
    assert_eq!(names(&case.out()), ["grad_logits", "loss"]);
    let loss: Array0<f64> = read(&case.out(), "loss");
    let grad: Array2<f64> = read(&case.out(), "grad_logits");

    let want: LossOutput<f64, _> =
        class_loss("cross-entropy", &[]).compute(logits().view(), Targets::hard(&LABELS), None, true).unwrap();
    assert_relative_eq!(loss.into_scalar(), want.value, max_relative = 1e-12);
    assert_close_f64(&grad, want.grad.as_ref().unwrap());
    // Only the output is left: the temporary file was renamed.
    assert_eq!(case.leftovers(), ["out.npz"]);
}

#[test]
fn f32_input_is_computed_and_written_in_f32() {
    let case = Case::new(vec![("logits", f32s(logits())), ("targets", i64s(&LABELS)), ("weights", f32s(weights()))]);
    good(&case.loss("focal", &["--set", "gamma=0.5"]), "focal f32");
    let loss: Array0<f32> = read(&case.out(), "loss");
    let grad: Array2<f32> = read(&case.out(), "grad_logits");

    let logits32 = logits().mapv(|v| v as f32);
    let w32 = weights().mapv(|v| v as f32);
    let want: LossOutput<f32, _> = class_loss("focal", &[("gamma", "0.5")])
        .compute(logits32.view(), Targets::hard(&LABELS), Some(w32.view()), true)
        .unwrap();
    assert_relative_eq!(loss.into_scalar(), want.value, max_relative = 1e-6);
    assert_close_f32(&grad, want.grad.as_ref().unwrap());
    // Reading them as f64 must fail: the dtype on disk is float32.
    let mut r = NpzReader::new(File::open(case.out()).unwrap()).unwrap();
    assert!(r.by_name::<ndarray::OwnedRepr<f64>, ndarray::Ix2>("grad_logits").is_err());
}

#[test]
fn int32_and_int64_targets_give_the_same_output() {
    let a = Case::new(vec![("logits", f64s(logits())), ("targets", i64s(&LABELS))]);
    let b = Case::new(vec![("logits", f64s(logits())), ("targets", i32s(&LABELS))]);
    good(&a.loss("focal", &[]), "int64");
    good(&b.loss("focal", &[]), "int32");
    let (la, lb): (Array0<f64>, Array0<f64>) = (read(&a.out(), "loss"), read(&b.out(), "loss"));
    assert_eq!(la, lb);
    let (ga, gb): (Array2<f64>, Array2<f64>) = (read(&a.out(), "grad_logits"), read(&b.out(), "grad_logits"));
    assert_eq!(ga, gb);
}

#[test]
fn reduction_none_writes_per_sample_values() {
    let case = Case::new(vec![("logits", f64s(logits())), ("targets", i64s(&LABELS)), ("weights", f64s(weights()))]);
    good(&case.loss("cross-entropy", &["--reduction", "none"]), "none");
    assert_eq!(names(&case.out()), ["grad_logits", "loss", "per_sample"]);
    let per: Array1<f64> = read(&case.out(), "per_sample");
    let loss: Array0<f64> = read(&case.out(), "loss");
    let grad: Array2<f64> = read(&case.out(), "grad_logits");
    assert_eq!(per.len(), 4);

    let want = build("cross-entropy", &[("reduction", "none")], |_| {})
        .class
        .unwrap()
        .compute(logits().view(), Targets::hard(&LABELS), Some(weights().view()), true)
        .unwrap();
    assert_close_f64(&per, want.per_sample.as_ref().unwrap());
    assert_relative_eq!(loss.into_scalar(), want.value, max_relative = 1e-12);
    assert_close_f64(&grad, want.grad.as_ref().unwrap());
    // The same reduction given through --set gives the same per-sample values.
    let case2 = Case::new(vec![("logits", f64s(logits())), ("targets", i64s(&LABELS)), ("weights", f64s(weights()))]);
    good(&case2.loss("cross-entropy", &["--set", "reduction=none"]), "--set reduction=none");
    let per2: Array1<f64> = read(&case2.out(), "per_sample");
    assert_eq!(per, per2);
}

#[test]
fn soft_targets_and_class_weights_are_read_from_the_file() {
    let cw = array![1.0, 2.0, 0.5];
    let case = Case::new(vec![
        ("logits", f64s(logits())),
        ("soft_targets", f64s(soft())),
        ("class_weights", f64s(cw.clone())),
    ]);
    good(&case.loss("cross-entropy", &["--reduction", "sum"]), "soft + class weights");
    let loss: Array0<f64> = read(&case.out(), "loss");
    let grad: Array2<f64> = read(&case.out(), "grad_logits");

    let built =
        build("cross-entropy", &[("reduction", "sum")], |p| p.set_vector("class_weights", cw.to_vec()).unwrap());
    let soft = soft();
    let want = built.class.unwrap().compute(logits().view(), Targets::soft(soft.view()), None, true).unwrap();
    assert_relative_eq!(loss.into_scalar(), want.value, max_relative = 1e-12);
    assert_close_f64(&grad, want.grad.as_ref().unwrap());

    // The class weights must change the result (otherwise this test would not show they were read).
    let plain = build("cross-entropy", &[("reduction", "sum")], |_| {}).class.unwrap();
    let unweighted: LossOutput<f64, _> =
        plain.compute(logits().view(), Targets::soft(soft.view()), None, true).unwrap();
    assert!((unweighted.value - want.value).abs() > 1e-6);
}

#[test]
fn focal_picks_the_binary_form_from_scores() {
    let case = Case::new(vec![("scores", f64s(scores())), ("targets", f64s(binary_targets()))]);
    good(&case.loss("focal", &["--set", "gamma=1.5"]), "binary focal");
    assert_eq!(names(&case.out()), ["grad_scores", "loss"]);
    let loss: Array0<f64> = read(&case.out(), "loss");
    let grad: Array1<f64> = read(&case.out(), "grad_scores");
    let want: LossOutput<f64, _> = build("focal", &[("gamma", "1.5")], |_| {})
        .binary
        .expect("focal has a binary form")
        .compute(scores().view(), binary_targets().view(), None, true)
        .unwrap();
    assert_relative_eq!(loss.into_scalar(), want.value, max_relative = 1e-12);
    assert_close_f64(&grad, want.grad.as_ref().unwrap());
}

#[test]
fn binary_cross_entropy_f32_matches_the_library() {
    let case = Case::new(vec![("scores", f32s(scores())), ("targets", f32s(binary_targets()))]);
    good(&case.loss("binary-cross-entropy", &[]), "bce f32");
    let loss: Array0<f32> = read(&case.out(), "loss");
    let grad: Array1<f32> = read(&case.out(), "grad_scores");
    let (s, t) = (scores().mapv(|v| v as f32), binary_targets().mapv(|v| v as f32));
    let want: LossOutput<f32, _> = build("binary-cross-entropy", &[], |_| {})
        .binary
        .expect("binary form")
        .compute(s.view(), t.view(), None, true)
        .unwrap();
    assert_relative_eq!(loss.into_scalar(), want.value, max_relative = 1e-6);
    assert_close_f32(&grad, want.grad.as_ref().unwrap());
}

#[test]
fn without_output_the_loss_value_is_printed() {
    let case = Case::new(vec![("logits", f64s(logits())), ("targets", i64s(&LABELS))]);
    let o = run(&["loss", "cross-entropy", "--input", &case.input(), "--set", "label_smoothing=0.1"]);
    good(&o, "print");
    let text = stdout(&o);
    assert_eq!(text.lines().count(), 1, "{text}");
    let printed: f64 = text.trim().parse().expect("a number");
    let want: LossOutput<f64, _> = class_loss("cross-entropy", &[("label_smoothing", "0.1")])
        .compute(logits().view(), Targets::hard(&LABELS), None, true)
        .unwrap();
    // Printed with Rust's shortest round-trip formatting, so it parses back to the same f64.
    assert_eq!(printed, want.value);
    assert!(case.leftovers().is_empty());
}

#[test]
fn repeat_prints_exactly_one_timing_line() {
    let case = Case::new(vec![("logits", f64s(logits())), ("targets", i64s(&LABELS))]);
    for with_output in [false, true] {
        let input = case.input();
        let out = case.out_str();
        let mut args = vec!["loss", "focal", "--input", &input, "--repeat", "7"];
        if with_output {
            args.extend(["--output", &out]);
        }
        let o = run(&args);
        good(&o, "repeat");
        let text = stdout(&o);
        assert!(text.ends_with('\n') && text.lines().count() == 1, "{text:?}");
        let line = text.trim_end();
        let (median, min) = parse_timing(line).unwrap_or_else(|| panic!("unparsable timing line {line:?}"));
        assert!(min >= 0.0 && median >= min && median.is_finite(), "{line}");
        assert_eq!(case.out().exists(), with_output);
    }
}

/// Parses `median_ms=<f> min_ms=<f>` strictly (the format a benchmark script relies on).
fn parse_timing(line: &str) -> Option<(f64, f64)> {
    let (a, b) = line.split_once(' ')?;
    let num = |s: &str, key: &str| -> Option<f64> {
        let v = s.strip_prefix(key)?;
        let (int, frac) = v.split_once('.')?;
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit());
        (digits(int) && digits(frac)).then(|| v.parse().ok()).flatten()
    };
    Some((num(a, "median_ms=")?, num(b, "min_ms=")?))
}

#[test]
fn output_may_be_a_bare_file_name_in_the_working_directory() {
    let case = Case::new(vec![("logits", f64s(logits())), ("targets", i64s(&LABELS))]);
    let o = losskit()
        .current_dir(case.dir.path())
        .args(["loss", "cross-entropy", "-i", "in.npz", "-o", "result.npz"])
        .output()
        .unwrap();
    good(&o, "relative output");
    assert_eq!(case.leftovers(), ["result.npz"]);
}

#[test]
fn an_existing_output_is_replaced_whole() {
    let case = Case::new(vec![("logits", f64s(logits())), ("targets", i64s(&LABELS))]);
    std::fs::write(case.out(), "old contents").unwrap();
    good(&case.loss("cross-entropy", &[]), "overwrite");
    assert_eq!(names(&case.out()), ["grad_logits", "loss"]);
    // And a failing run leaves the previous output untouched.
    let before = std::fs::read(case.out()).unwrap();
    assert_bad_input(&case.loss("cross-entropy", &["--set", "label_smoothing=2"]), "bad smoothing");
    assert_eq!(std::fs::read(case.out()).unwrap(), before);
}

// ---------------------------------------------------------------------------------------------------------------
// list, help, process behaviour

#[test]
fn list_text_snapshot() {
    let o = run(&["list"]);
    good(&o, "list");
    let text = stdout(&o);
    for e in losskit::losses::LOSSES {
        assert!(text.contains(&format!("\n{}  [{}]\n", e.name, e.family)), "loss {} missing", e.name);
    }
    for e in losskit::samplers::SAMPLERS {
        assert!(text.contains(&format!("\n{}  [{}]\n", e.name, e.kind.noun())), "sampler {} missing", e.name);
    }
    for e in losskit::metrics::METRICS {
        assert!(
            text.contains(&format!("\n{}\n    {}", e.name, e.summary.split(' ').next().unwrap())),
            "metric {}",
            e.name
        );
    }
    assert!(text.lines().all(|l| l.chars().count() <= 100 && !l.ends_with(' ')), "a line is too long or padded");
    insta::assert_snapshot!("list", text);
}

#[test]
fn list_json_snapshot() {
    let o = run(&["list", "--json"]);
    good(&o, "list --json");
    let text = stdout(&o);
    let v: serde_json::Value = serde_json::from_str(&text).expect("list --json is JSON");
    let losses = v["losses"].as_array().expect("losses array");
    assert_eq!(losses.len(), losskit::losses::LOSSES.len());
    for (j, e) in losses.iter().zip(losskit::losses::LOSSES) {
        assert_eq!(j["name"], e.name);
        assert_eq!(j["family"], e.family.as_str());
        assert_eq!(j["params"].as_array().map(Vec::len), Some(e.params.len()));
        for (jp, p) in j["params"].as_array().unwrap().iter().zip(e.params) {
            assert_eq!(jp["name"], p.name);
            assert_eq!(jp["default"], p.default);
            assert_eq!(jp["range"], p.range.describe());
        }
    }
    let samplers = v["samplers"].as_array().expect("samplers array");
    let names: Vec<&str> = samplers.iter().map(|j| j["name"].as_str().unwrap()).collect();
    let want: Vec<&str> = losskit::samplers::SAMPLERS.iter().map(|e| e.name).collect();
    assert_eq!(names, want);
    let metrics = v["metrics"].as_array().expect("metrics array");
    let names: Vec<&str> = metrics.iter().map(|j| j["name"].as_str().unwrap()).collect();
    let want: Vec<&str> = losskit::metrics::METRICS.iter().map(|e| e.name).collect();
    assert_eq!(names, want);
    insta::assert_snapshot!("list_json", text);
}

#[test]
fn help_snapshots() {
    for (name, args) in
        [("help", &["--help"][..]), ("help_loss", &["loss", "--help"]), ("help_list", &["list", "--help"])]
    {
        let o = run(args);
        good(&o, name);
        insta::assert_snapshot!(name, stdout(&o));
    }
    let o = run(&["--version"]);
    good(&o, "--version");
    assert_eq!(stdout(&o).trim(), format!("losskit {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn a_closed_stdout_pipe_exits_0() {
    for args in [&["list"][..], &["list", "--json"], &["--help"]] {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader); // every write to stdout now fails with EPIPE
        let o = losskit().args(args).stdout(Stdio::from(writer)).stderr(Stdio::piped()).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{args:?}: stderr: {}", stderr(&o));
        assert!(o.stderr.is_empty(), "{args:?}: stderr: {}", stderr(&o));
    }
}

// ---------------------------------------------------------------------------------------------------------------
// arena --device

/// `--device cuda` in a build without the `cuda` feature, or without a usable GPU, is one line on stderr, exit code 2,
/// nothing on stdout and no output folder; on a GPU machine (a `cuda` build) the same command trains and writes both
/// tables.
#[test]
fn arena_device_cuda_fails_cleanly_without_the_feature_or_a_gpu() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    let args =
        ["arena", "--device", "cuda", "--losses", "cross-entropy", "--seeds", "1", "--epochs", "2", "-q", "--out"];
    let o = losskit().args(args).arg(&out).output().unwrap();
    #[cfg(feature = "cuda")]
    if losskit::cuda::Gpu::new(0).is_ok() {
        good(&o, "arena --device cuda");
        assert!(stdout(&o).contains("Trained on cuda:0"), "{}", stdout(&o));
        assert!(out.join("arena.csv").exists() && out.join("arena.md").exists());
        return;
    }
    assert_eq!(o.status.code(), Some(2), "stderr: {}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    #[cfg(not(feature = "cuda"))]
    assert_eq!(
        err,
        "losskit: --device cuda: this losskit was built without CUDA support; rebuild it with \
         `cargo build --release -p losskit-cli --features cuda`\n"
    );
    #[cfg(feature = "cuda")]
    assert!(err.starts_with("losskit: --device cuda: cannot open GPU 0: device: "), "{err}");
    assert!(o.stdout.is_empty(), "{}", stdout(&o));
    assert!(!out.exists(), "no output folder");
}

#[test]
fn arena_device_cpu_is_the_default_and_other_devices_are_usage_errors() {
    let args = ["arena", "--losses", "cross-entropy", "--seeds", "1", "--epochs", "2", "--quiet"];
    let plain = run(&args);
    good(&plain, "arena");
    let cpu = losskit().args(args).args(["--device", "cpu"]).output().unwrap();
    good(&cpu, "arena --device cpu");
    assert_eq!(stdout(&plain), stdout(&cpu));
    assert!(!stdout(&cpu).contains("Trained on"), "the CPU caption is unchanged");
    let o = run(&["arena", "--device", "tpu"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("'tpu'") && err.contains("cpu, cuda") && err.lines().count() == 1, "{err}");
}
