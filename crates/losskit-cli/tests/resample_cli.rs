//! End-to-end tests of `losskit resample`: CSV and .npz round trips against the library's own samplers (which the
//! samplers crate checks against imbalanced-learn), the class-count summary, and every bad input exiting 2 with one
//! stderr line and no output file.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ndarray::{Array1, Array2};
use ndarray_npy::{NpzReader, NpzWriter};

use losskit::samplers::{RandomUnderSampler, Sampler, Smote};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_losskit")).args(args).env_remove("COLUMNS").output().expect("spawning losskit")
}

fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).expect("utf-8")
}

/// 12 rows: class 0 × 8, class 1 × 4, two features; row i is (i, i²/10) perturbed per class.
fn data() -> (Array2<f64>, Array1<i64>) {
    let y = Array1::from(vec![0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0_i64]);
    let x = Array2::from_shape_fn((12, 2), |(i, j)| if j == 0 { i as f64 + 0.25 } else { (i * i) as f64 / 10.0 - 1.5 });
    (x, y)
}

fn write_csv(path: &Path, x: &Array2<f64>, y: &Array1<i64>, header: &str, label_first: bool) {
    let mut s = format!("{header}\n");
    for (row, label) in x.rows().into_iter().zip(y) {
        if label_first {
            s.push_str(&format!("{label},{},{}\n", row[0], row[1]));
        } else {
            s.push_str(&format!("{},{label},{}\n", row[0], row[1]));
        }
    }
    std::fs::write(path, s).unwrap();
}

fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<f64>>) {
    let t = std::fs::read_to_string(path).unwrap();
    let mut lines = t.lines();
    let header = lines.next().unwrap().split(',').map(str::to_string).collect();
    let rows = lines.map(|l| l.split(',').map(|f| f.parse().unwrap()).collect()).collect();
    (header, rows)
}

struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new() -> Self {
        Case { dir: tempfile::tempdir().unwrap() }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn s(&self, name: &str) -> String {
        self.path(name).to_string_lossy().into_owned()
    }
}

#[test]
fn csv_smote_keeps_header_order_and_matches_the_library() {
    let c = Case::new();
    let (x, y) = data();
    write_csv(&c.path("in.csv"), &x, &y, "f0,class,f1", false);
    let o = run(&[
        "resample",
        "smote",
        "-i",
        &c.s("in.csv"),
        "-o",
        &c.s("out.csv"),
        "--label",
        "class",
        "--set",
        "k_neighbors=3",
        "--seed",
        "9",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stdout),
        "class  before  after\n0           8      8\n1           4      8\ntotal      12     16\n"
    );
    assert!(o.stderr.is_empty());
    let (header, rows) = read_csv(&c.path("out.csv"));
    assert_eq!(header, ["f0", "class", "f1"]);
    let want = Smote::new().k_neighbors(3).fit_resample(x.view(), y.view(), 9).unwrap();
    assert_eq!(rows.len(), want.y.len());
    for (r, (xr, yr)) in rows.iter().zip(want.x.rows().into_iter().zip(&want.y)) {
        assert_eq!(r[1], *yr as f64);
        assert_eq!([r[0], r[2]], [xr[0], xr[1]]); // shortest round-trip text: exact
    }
}

#[test]
fn csv_label_defaults_to_y_or_label() {
    let c = Case::new();
    let (x, y) = data();
    write_csv(&c.path("in.csv"), &x, &y, "label,a,b", true);
    let o = run(&["resample", "random-under", "-i", &c.s("in.csv"), "-o", &c.s("out.csv"), "-q"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(o.stdout.is_empty());
    let (header, rows) = read_csv(&c.path("out.csv"));
    assert_eq!(header, ["label", "a", "b"]);
    assert_eq!(rows.iter().filter(|r| r[0] == 0.0).count(), 4);
    assert_eq!(rows.iter().filter(|r| r[0] == 1.0).count(), 4);
}

fn write_npz(path: &Path, x: &Array2<f64>, y: &Array1<i64>) {
    let mut w = NpzWriter::new(File::create(path).unwrap());
    w.add_array("X", x).unwrap();
    w.add_array("y", y).unwrap();
    w.finish().unwrap();
}

#[test]
fn npz_random_under_writes_sample_indices() {
    let c = Case::new();
    let (x, y) = data();
    write_npz(&c.path("in.npz"), &x, &y);
    let o = run(&["resample", "random-under", "-i", &c.s("in.npz"), "-o", &c.s("out.npz"), "--seed", "4"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let mut r = NpzReader::new(File::open(c.path("out.npz")).unwrap()).unwrap();
    let xo: Array2<f64> = r.by_name("X").unwrap();
    let yo: Array1<i64> = r.by_name("y").unwrap();
    let idx: Array1<i64> = r.by_name("sample_indices").unwrap();
    let want = RandomUnderSampler::new().fit_resample(x.view(), y.view(), 4).unwrap();
    assert_eq!(xo, want.x);
    assert_eq!(yo, want.y);
    assert_eq!(idx.iter().map(|&i| i as usize).collect::<Vec<_>>(), want.sample_indices.unwrap());
    // SMOTE has no sample_indices.
    let o = run(&["resample", "smote", "-i", &c.s("in.npz"), "-o", &c.s("s.npz"), "-s", "k_neighbors=2"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let mut r = NpzReader::new(File::open(c.path("s.npz")).unwrap()).unwrap();
    assert_eq!(r.names().unwrap(), ["X", "y"]);
}

/// Runs a command that must fail: exit 2, one stderr line containing `needle`, no output file.
fn fails(c: &Case, args: &[&str], needle: &str) {
    let o = run(args);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("losskit: ") && err.contains(needle), "{args:?}: {err}");
    assert!(!c.path("out.csv").exists() && !c.path("out.npz").exists());
    assert_eq!(
        std::fs::read_dir(c.dir.path())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with(".losskit-"))
            .count(),
        0
    );
}

#[test]
fn bad_input_exits_2_with_one_line_and_no_output() {
    let c = Case::new();
    let (x, y) = data();
    write_csv(&c.path("in.csv"), &x, &y, "f0,y,f1", false);
    let inp = c.s("in.csv");
    let out = c.s("out.csv");
    // Too few minority samples for k (4 in class 1, k_neighbors = 5 needs 6).
    fails(&c, &["resample", "smote", "-i", &inp, "-o", &out], "k_neighbors");
    fails(&c, &["resample", "smote-magic", "-i", &inp, "-o", &out], "unknown sampler \"smote-magic\"");
    fails(&c, &["resample", "smote", "-i", &inp, "-o", &out, "--set", "k=3"], "unknown parameter \"k\"");
    fails(&c, &["resample", "smote", "-i", &inp, "-o", &out, "--set", "k_neighbors=x"], "k_neighbors");
    fails(&c, &["resample", "smote", "-i", &inp, "-o", &out, "--label", "target"], "no label column `target`");
    // A single class.
    std::fs::write(c.path("one.csv"), "a,y\n1,0\n2,0\n3,0\n").unwrap();
    fails(&c, &["resample", "random-over", "-i", &c.s("one.csv"), "-o", &out], "class");
    // Non-numeric cell, NaN, ragged row, fractional label, no label column, empty file.
    std::fs::write(c.path("txt.csv"), "a,y\n1,0\nred,1\n").unwrap();
    fails(
        &c,
        &["resample", "random-over", "-i", &c.s("txt.csv"), "-o", &out],
        "line 3: column `a` holds \"red\", not a number",
    );
    std::fs::write(c.path("nan.csv"), "a,y\n1,0\nNaN,1\n").unwrap();
    fails(&c, &["resample", "random-over", "-i", &c.s("nan.csv"), "-o", &out], "line 3: column `a` holds NaN");
    std::fs::write(c.path("rag.csv"), "a,b,y\n1,2,0\n3,1\n").unwrap();
    fails(
        &c,
        &["resample", "random-over", "-i", &c.s("rag.csv"), "-o", &out],
        "line 3: 2 fields, but the header has 3",
    );
    std::fs::write(c.path("frac.csv"), "a,y\n1,0\n2,0.5\n").unwrap();
    fails(&c, &["resample", "random-over", "-i", &c.s("frac.csv"), "-o", &out], "not an integer class label");
    std::fs::write(c.path("nolabel.csv"), "a,b\n1,0\n").unwrap();
    fails(&c, &["resample", "random-over", "-i", &c.s("nolabel.csv"), "-o", &out], "no column named y or label");
    std::fs::write(c.path("empty.csv"), "").unwrap();
    fails(&c, &["resample", "random-over", "-i", &c.s("empty.csv"), "-o", &out], "is empty");
    // Format mismatch, missing input, missing output folder, usage.
    fails(&c, &["resample", "random-over", "-i", &inp, "-o", &c.s("out.npz")], "keeps the input's format");
    fails(&c, &["resample", "random-over", "-i", &c.s("missing.csv"), "-o", &out], "cannot open --input");
    fails(&c, &["resample", "random-over", "-i", &inp, "-o", &c.s("nope/out.csv")], "does not exist");
    fails(&c, &["resample", "random-over", "-i", &inp], "--output");
    // .npz: NaN in X, extra array, missing y, wrong length.
    let mut bad_x = x.clone();
    bad_x[[3, 1]] = f64::NAN;
    write_npz(&c.path("nan.npz"), &bad_x, &y);
    fails(
        &c,
        &["resample", "random-over", "-i", &c.s("nan.npz"), "-o", &c.s("out.npz")],
        "`X` holds NaN at row 3, column 1",
    );
    let mut w = NpzWriter::new(File::create(c.path("extra.npz")).unwrap());
    w.add_array("X", &x).unwrap();
    w.add_array("y", &y).unwrap();
    w.add_array("w", &y).unwrap();
    w.finish().unwrap();
    fails(&c, &["resample", "random-over", "-i", &c.s("extra.npz"), "-o", &c.s("out.npz")], "also holds `w`");
    let mut w = NpzWriter::new(File::create(c.path("noy.npz")).unwrap());
    w.add_array("X", &x).unwrap();
    w.finish().unwrap();
    fails(&c, &["resample", "random-over", "-i", &c.s("noy.npz"), "-o", &c.s("out.npz")], "no array `y`");
    let mut w = NpzWriter::new(File::create(c.path("short.npz")).unwrap());
    w.add_array("X", &x).unwrap();
    w.add_array("y", &Array1::from(vec![0_i64, 1])).unwrap();
    w.finish().unwrap();
    fails(
        &c,
        &["resample", "random-over", "-i", &c.s("short.npz"), "-o", &c.s("out.npz")],
        "`y` has 2 labels but `X` has 12 rows",
    );
}
