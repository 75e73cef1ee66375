//! Every confusion-matrix metric against scikit-learn's values, frozen in `fixtures/classification.json` by
//! `tools/fixtures/gen_metrics.py` (scikit-learn 1.9). Tolerance 1e-12; NaN must match NaN and ±∞ the same infinity.

use losskit_metrics::{
    Average, ClassificationReport, ConfusionMatrix, Error, Labels, PrfConfig, ReportConfig, Score, ZeroDivision,
};
use ndarray::Array1;
use serde_json::Value;

fn fixture() -> Value {
    losskit_tensor::gradcheck::load_json(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/classification.json"))
}

/// A float from the fixture: a number, or "nan" / "inf" / "-inf".
fn num(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().expect("finite number"),
        Value::String(s) if s == "nan" => f64::NAN,
        Value::String(s) if s == "inf" => f64::INFINITY,
        Value::String(s) if s == "-inf" => f64::NEG_INFINITY,
        other => panic!("not a float: {other}"),
    }
}

fn nums(v: &Value) -> Vec<f64> {
    v.as_array().expect("array").iter().map(num).collect()
}

fn ints(v: &Value) -> Vec<i64> {
    v.as_array().expect("array").iter().map(|x| x.as_i64().expect("integer")).collect()
}

fn same(got: f64, want: f64) -> bool {
    (got.is_nan() && want.is_nan()) || got == want || (got - want).abs() <= 1e-12
}

#[track_caller]
fn assert_same(got: f64, want: f64, what: &str) {
    assert!(same(got, want), "{what}: got {got:?}, scikit-learn {want:?}");
}

#[track_caller]
fn assert_all_same(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert_same(g, w, &format!("{what}[{i}]"));
    }
}

fn matrix(case: &Value) -> ConfusionMatrix {
    let c = case["n_classes"].as_u64().expect("n_classes") as usize;
    let t = Array1::from(ints(&case["y_true"]));
    let p = Array1::from(ints(&case["y_pred"]));
    ConfusionMatrix::from_labels(c, t.view(), p.view()).expect("fixture labels are valid")
}

fn zero_division(v: &Value) -> ZeroDivision {
    v.as_str().expect("zero_division").parse().expect("known zero_division")
}

fn labels(v: &Value, n_classes: usize) -> (Labels, Option<Vec<usize>>) {
    match v {
        Value::String(s) if s == "present" => (Labels::Present, None),
        Value::String(s) if s == "all" => (Labels::All, Some((0..n_classes).collect())),
        Value::Array(_) => {
            let l: Vec<usize> = ints(v).into_iter().map(|x| x as usize).collect();
            (Labels::Given(l.clone()), Some(l))
        }
        other => panic!("labels {other}"),
    }
}

#[test]
fn counts_accuracy_and_balanced_accuracy_match_sklearn() {
    let fx = fixture();
    let cases = fx["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 11);
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let cm = matrix(case);
        let want: Vec<Vec<i64>> = case["confusion_matrix"].as_array().expect("cm").iter().map(ints).collect();
        for (t, row) in want.iter().enumerate() {
            for (p, &v) in row.iter().enumerate() {
                assert_eq!(cm.counts()[[t, p]] as i64, v, "{name}: C[{t}, {p}]");
            }
        }
        let present: Vec<usize> = ints(&case["labels_present"]).into_iter().map(|x| x as usize).collect();
        assert_eq!(cm.labels_present(), present, "{name}");
        assert_same(cm.accuracy().unwrap(), num(&case["accuracy"]), &format!("{name}: accuracy"));
        assert_same(cm.balanced_accuracy().unwrap(), num(&case["balanced_accuracy"]), &format!("{name}: balanced"));
        assert_same(
            cm.balanced_accuracy_adjusted().unwrap(),
            num(&case["balanced_accuracy_adjusted"]),
            &format!("{name}: balanced adjusted"),
        );
        assert_eq!(
            !cm.labels_predicted_not_true().is_empty(),
            case["balanced_accuracy_warned"].as_bool().expect("bool"),
            "{name}: balanced accuracy warning"
        );
    }
}

#[test]
fn precision_recall_fscore_support_match_sklearn_for_every_option() {
    let fx = fixture();
    let (mut compared, mut errors, mut warned) = (0usize, 0usize, 0usize);
    for case in fx["cases"].as_array().expect("cases") {
        let name = case["name"].as_str().expect("name");
        let cm = matrix(case);
        let n_classes = cm.n_classes();
        for e in case["prfs"].as_array().expect("prfs") {
            let (labels, expected_labels) = labels(&e["labels"], n_classes);
            let average = match &e["average"] {
                Value::Null => Average::None,
                Value::String(s) if s == "binary" => {
                    Average::Binary { pos: e["pos_label"].as_u64().expect("pos_label") as usize }
                }
                Value::String(s) => s.parse().expect("average"),
                other => panic!("average {other}"),
            };
            let zd = zero_division(&e["zero_division"]);
            let cfg = PrfConfig::new().average(average).labels(labels).zero_division(zd);
            let what = format!("{name}: {average} labels={} zero_division={zd}", e["labels"]);
            if e.get("error").is_some() {
                // scikit-learn: "pos_label=0 is not a valid label. It should be one of [1 3]".
                let err = cm.precision_recall_fscore_support(&cfg).unwrap_err();
                assert!(matches!(err, Error::Degenerate { .. }), "{what}: {err:?}");
                assert!(err.to_string().contains("pos_label"), "{what}: {err}");
                errors += 1;
                continue;
            }
            let sk_warned = e["warned"].as_array().expect("warned");
            for f in e["f"].as_array().expect("f") {
                let beta = num(&f["beta"]);
                let what = format!("{what} beta={beta}");
                let out = cm.precision_recall_fscore_support(&cfg.clone().beta(beta)).unwrap();
                match average {
                    Average::None => {
                        assert_all_same(out.precision.values(), &nums(&e["precision"]), &format!("{what} precision"));
                        assert_all_same(out.recall.values(), &nums(&e["recall"]), &format!("{what} recall"));
                        assert_all_same(out.f_score.values(), &nums(&f["f_score"]), &format!("{what} f"));
                        let support: Vec<i64> = out.support.clone().unwrap().into_iter().map(|s| s as i64).collect();
                        assert_eq!(support, ints(&e["support"]), "{what} support");
                        let want_labels = expected_labels.clone().unwrap_or_else(|| cm.labels_present());
                        assert_eq!(out.labels, want_labels, "{what} labels");
                        let Score::PerClass { labels, .. } = &out.precision else { panic!("{what}: scalar") };
                        assert_eq!(labels, &want_labels);
                    }
                    _ => {
                        assert_same(
                            out.precision.scalar().unwrap(),
                            num(&e["precision"]),
                            &format!("{what} precision"),
                        );
                        assert_same(out.recall.scalar().unwrap(), num(&e["recall"]), &format!("{what} recall"));
                        assert_same(out.f_score.scalar().unwrap(), num(&f["f_score"]), &format!("{what} f"));
                        assert_eq!(out.support, None);
                    }
                }
                // scikit-learn warns (zero_division="warn" only) exactly where a denominator was zero.
                let is_warn = zd == ZeroDivision::Warn;
                let f_proper = beta > 0.0 && beta.is_finite();
                assert_eq!(sk_warned[0].as_bool().unwrap(), is_warn && !out.undefined.precision.is_empty(), "{what}");
                assert_eq!(sk_warned[1].as_bool().unwrap(), is_warn && !out.undefined.recall.is_empty(), "{what}");
                assert_eq!(
                    f["warned"].as_bool().unwrap(),
                    is_warn && f_proper && !out.undefined.f_score.is_empty(),
                    "{what} f warning"
                );
                warned += usize::from(f["warned"].as_bool().unwrap() || sk_warned[0].as_bool().unwrap());
                compared += 1;
            }
        }
    }
    // Guards against a fixture that silently lost its entries.
    assert!(compared > 1000, "only {compared} comparisons");
    assert_eq!(errors, 4);
    assert!(warned > 50, "only {warned} warning cases");
}

#[test]
fn averaged_score_methods_agree_with_the_fixture() {
    // The `*_score` shortcuts and the per-class helpers read the same values as precision_recall_fscore_support.
    let fx = fixture();
    let mut compared = 0;
    for case in fx["cases"].as_array().expect("cases") {
        let cm = matrix(case);
        for e in case["prfs"].as_array().expect("prfs") {
            if e["labels"] != "all" || e["average"] != Value::Null {
                continue;
            }
            let zd = zero_division(&e["zero_division"]);
            assert_all_same(&cm.precision(zd).unwrap(), &nums(&e["precision"]), "precision");
            assert_all_same(&cm.recall(zd).unwrap(), &nums(&e["recall"]), "recall");
            for f in e["f"].as_array().unwrap() {
                let beta = num(&f["beta"]);
                assert_all_same(&cm.f_beta(beta, zd).unwrap(), &nums(&f["f_score"]), "f_beta");
                if beta == 1.0 {
                    assert_all_same(&cm.f1(zd).unwrap(), &nums(&f["f_score"]), "f1");
                }
            }
            let support: Vec<i64> = cm.support().into_iter().map(|s| s as i64).collect();
            assert_eq!(support, ints(&e["support"]));
            compared += 1;
        }
        for e in case["prfs"].as_array().expect("prfs") {
            if e["labels"] != "present" || e["average"] != "macro" {
                continue;
            }
            let cfg = PrfConfig::new().zero_division(zero_division(&e["zero_division"]));
            assert_same(cm.precision_score(&cfg).unwrap().scalar().unwrap(), num(&e["precision"]), "precision_score");
            assert_same(cm.recall_score(&cfg).unwrap().scalar().unwrap(), num(&e["recall"]), "recall_score");
            for f in e["f"].as_array().unwrap() {
                let beta = num(&f["beta"]);
                let got = cm.fbeta_score(&cfg.clone().beta(beta)).unwrap().scalar().unwrap();
                assert_same(got, num(&f["f_score"]), "fbeta_score");
                if beta == 1.0 {
                    // f1_score ignores cfg.beta.
                    let got = cm.f1_score(&cfg.clone().beta(3.0)).unwrap().scalar().unwrap();
                    assert_same(got, num(&f["f_score"]), "f1_score");
                }
            }
            compared += 1;
        }
    }
    assert_eq!(compared, 11 * 4 * 2);
}

#[test]
fn classification_report_matches_sklearn() {
    let fx = fixture();
    let mut compared = 0;
    for case in fx["cases"].as_array().expect("cases") {
        let name = case["name"].as_str().expect("name");
        let cm = matrix(case);
        for r in case["reports"].as_array().expect("reports") {
            let (labels, _) = labels(&r["labels"], cm.n_classes());
            let zd = zero_division(&r["zero_division"]);
            let ours = ClassificationReport::new(&cm, &ReportConfig::new().labels(labels).zero_division(zd)).unwrap();
            let sk = r["report"].as_object().expect("report");
            let what = format!("{name}: report labels={} zero_division={zd}", r["labels"]);
            // Same rows.
            let mut sk_rows: Vec<usize> =
                sk.keys().filter_map(|k| k.split_once('/').and_then(|(row, _)| row.parse::<usize>().ok())).collect();
            sk_rows.dedup();
            assert_eq!(ours.labels, sk_rows, "{what}");
            for (i, c) in ours.labels.iter().enumerate() {
                assert_same(ours.precision[i], num(&sk[&format!("{c}/precision")]), &what);
                assert_same(ours.recall[i], num(&sk[&format!("{c}/recall")]), &what);
                assert_same(ours.f1[i], num(&sk[&format!("{c}/f1-score")]), &what);
                assert_same(ours.support[i] as f64, num(&sk[&format!("{c}/support")]), &what);
            }
            assert_same(ours.accuracy, num(&sk["accuracy"]), &what);
            assert_same(ours.precision_macro, num(&sk["macro avg/precision"]), &what);
            assert_same(ours.recall_macro, num(&sk["macro avg/recall"]), &what);
            assert_same(ours.f1_macro, num(&sk["macro avg/f1-score"]), &what);
            assert_same(ours.precision_weighted, num(&sk["weighted avg/precision"]), &what);
            assert_same(ours.recall_weighted, num(&sk["weighted avg/recall"]), &what);
            assert_same(ours.f1_weighted, num(&sk["weighted avg/f1-score"]), &what);
            assert_same(ours.n_samples as f64, num(&sk["macro avg/support"]), &what);
            // With every present label selected, micro = accuracy (scikit-learn prints it as "accuracy").
            assert_same(ours.f1_micro, ours.accuracy, &what);
            assert_same(ours.balanced_accuracy, num(&case["balanced_accuracy"]), &what);
            compared += 1;
        }
    }
    assert_eq!(compared, 11 * 4);
}

#[test]
fn report_pairs_use_the_documented_keys() {
    let fx = fixture();
    let cm = matrix(&fx["cases"][0]);
    let r = ClassificationReport::new(&cm, &ReportConfig::new()).unwrap();
    let pairs = r.to_pairs();
    let get = |k: &str| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| *v).expect(k);
    for key in ["accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro", "f1_micro"] {
        assert!(get(key).is_finite());
    }
    assert_eq!(get("f1_weighted"), r.f1_weighted);
    assert_eq!(get("precision_weighted"), r.precision_weighted);
    assert_eq!(get("recall_weighted"), r.recall_weighted);
    assert_eq!(get("support_class_5"), 23.0);
    assert_eq!(get("n_samples"), 300.0);
}
