//! Specificity, G-mean, MCC, Cohen's kappa, Jaccard, top-k accuracy and the multi-label metrics against
//! scikit-learn / imbalanced-learn values frozen in `fixtures/classification_extra.json` by
//! `tools/fixtures/gen_metrics_extra.py`. Tolerance 1e-12.

use losskit_metrics::{
    Average, ConfusionMatrix, KappaConfig, KappaWeights, Labels, MetricState, MultilabelConfusion, PrfConfig,
    TopKAccuracy, ZeroDivision,
};
use ndarray::{Array1, s};
use serde_json::Value;

use crate::util::*;

const TOL: f64 = 1e-12;

fn average(v: &Value) -> Average {
    match v {
        Value::Null => Average::None,
        Value::String(s) => s.parse().expect("average"),
        other => panic!("average {other}"),
    }
}

fn cm(case: &Value) -> ConfusionMatrix {
    let c = case["n_classes"].as_u64().unwrap() as usize;
    let t = Array1::from(ints(&case["y_true"]));
    let p = Array1::from(ints(&case["y_pred"]));
    ConfusionMatrix::from_labels(c, t.view(), p.view()).unwrap()
}

fn labels(v: &Value) -> Labels {
    match v {
        Value::Array(_) => Labels::Given(ints(v).into_iter().map(|x| x as usize).collect()),
        Value::String(s) => s.parse().unwrap(),
        _ => Labels::Present,
    }
}

fn cfg(e: &Value) -> PrfConfig {
    let mut avg = average(&e["average"]);
    if let (Average::Binary { .. }, Some(pos)) = (avg, e["pos_label"].as_u64()) {
        avg = Average::Binary { pos: pos as usize };
    }
    let zd: ZeroDivision = e["zero_division"].as_str().unwrap_or("warn").parse().unwrap();
    PrfConfig::new().average(avg).labels(labels(&e["labels"])).zero_division(zd)
}

#[test]
fn mcc_kappa_specificity_gmean_jaccard_match_sklearn_and_imblearn() {
    let fx = fixture("classification_extra.json");
    for case in fx["multiclass"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let m = cm(case);
        assert_close(m.matthews_corrcoef().unwrap(), num(&case["matthews_corrcoef"]), TOL, &format!("{name} mcc"));
        for e in case["cohen_kappa"].as_array().unwrap() {
            let w: KappaWeights = e["weights"].as_str().unwrap().parse().unwrap();
            let k = KappaConfig::new().weights(w).labels(labels(&e["labels"]));
            assert_close(m.cohen_kappa_score(&k).unwrap(), num(&e["value"]), TOL, &format!("{name} kappa {e}"));
        }
        for e in case["specificity"].as_array().unwrap() {
            let c = cfg(e);
            let what = format!("{name} {e}");
            assert_all_close(m.specificity_score(&c).unwrap().values(), &nums(&e["specificity"]), TOL, &what);
            let g = m.geometric_mean_score_averaged(&c).unwrap();
            assert_all_close(g.values(), &nums(&e["gmean"]), TOL, &what);
        }
        assert_close(
            m.geometric_mean_score(&Labels::Present, 0.0).unwrap(),
            num(&case["gmean_multiclass"]),
            TOL,
            &format!("{name} gmean"),
        );
        assert_close(
            m.geometric_mean_score(&Labels::Present, 0.001).unwrap(),
            num(&case["gmean_multiclass_corrected"]),
            TOL,
            &format!("{name} gmean corrected"),
        );
        for e in case["jaccard"].as_array().unwrap() {
            let got = m.jaccard_score(&cfg(e)).unwrap();
            assert_all_close(got.values(), &nums(&e["value"]), TOL, &format!("{name} jaccard {e}"));
        }
    }
}

#[test]
fn top_k_accuracy_matches_sklearn_with_ties_and_merges() {
    let fx = fixture("classification_extra.json");
    for case in fx["topk"].as_array().unwrap() {
        let c = case["n_classes"].as_u64().unwrap() as usize;
        let t = Array1::from(ints(&case["y_true"]));
        let sc = matrix_f64(&case["y_score"]);
        for (k, want) in case["k"].as_object().unwrap() {
            let k: usize = k.parse().unwrap();
            let mut a = TopKAccuracy::new(k, c).unwrap();
            a.update(t.view(), sc.view()).unwrap();
            assert_close(a.accuracy().unwrap(), num(want), TOL, &format!("{} k={k}", case["name"]));
            // Two shards merge to the same count.
            let h = t.len() / 3;
            let mut x = TopKAccuracy::new(k, c).unwrap();
            x.update(t.slice(s![..h]), sc.slice(s![..h, ..])).unwrap();
            let mut y = TopKAccuracy::new(k, c).unwrap();
            y.update(t.slice(s![h..]), sc.slice(s![h.., ..])).unwrap();
            MetricState::merge(&mut x, &y).unwrap();
            assert_eq!(x, a);
        }
    }
}

#[test]
fn multilabel_metrics_match_sklearn_and_merge_exactly() {
    let fx = fixture("classification_extra.json");
    for case in fx["multilabel"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let t = matrix_i64(&case["y_true"]);
        let p = matrix_i64(&case["y_pred"]);
        let mut m = MultilabelConfusion::new(t.ncols()).unwrap();
        m.update(t.view(), p.view()).unwrap();
        let mcm: Vec<i64> = m.multilabel_confusion_matrix().iter().map(|&v| v as i64).collect();
        let want: Vec<i64> =
            case["mcm"].as_array().unwrap().iter().flat_map(|a| a.as_array().unwrap()).flat_map(ints).collect();
        assert_eq!(mcm, want, "{name} mcm");
        assert_close(m.hamming_loss().unwrap(), num(&case["hamming_loss"]), TOL, name);
        assert_close(m.subset_accuracy().unwrap(), num(&case["subset_accuracy"]), TOL, name);
        for e in case["entries"].as_array().unwrap() {
            let c = cfg(e);
            let what = format!("{name} {e}");
            if e.get("jaccard").is_some() {
                assert_all_close(m.jaccard_score(&c).unwrap().values(), &nums(&e["jaccard"]), TOL, &what);
                continue;
            }
            let c = c.beta(e["beta"].as_f64().unwrap());
            let out = m.precision_recall_fscore_support(&c).unwrap();
            assert_all_close(out.precision.values(), &nums(&e["precision"]), TOL, &what);
            assert_all_close(out.recall.values(), &nums(&e["recall"]), TOL, &what);
            assert_all_close(out.f_score.values(), &nums(&e["f_score"]), TOL, &what);
            if let Some(sup) = e.get("support") {
                let want: Vec<u64> = ints(sup).into_iter().map(|v| v as u64).collect();
                assert_eq!(out.support.unwrap(), want, "{what}");
            }
        }
        // Merge-equals-one-pass, exactly (integer state).
        for cut in [0, 1, t.nrows() / 2, t.nrows()] {
            let mut a = MultilabelConfusion::new(t.ncols()).unwrap();
            a.update(t.slice(s![..cut, ..]), p.slice(s![..cut, ..])).unwrap();
            let mut b = MultilabelConfusion::new(t.ncols()).unwrap();
            b.update(t.slice(s![cut.., ..]), p.slice(s![cut.., ..])).unwrap();
            MetricState::merge(&mut b, &a).unwrap();
            assert_eq!(b, m, "{name} cut {cut}");
        }
    }
}

#[test]
fn samples_average_is_refused_for_multiclass_and_binary_for_multilabel() {
    let m = ConfusionMatrix::from_labels(3, ndarray::array![0, 1].view(), ndarray::array![0, 2].view()).unwrap();
    assert!(m.f1_score(&PrfConfig::new().average(Average::Samples)).is_err());
    let mut ml = MultilabelConfusion::new(2).unwrap();
    ml.update(ndarray::array![[1, 0]].view(), ndarray::array![[1, 1]].view()).unwrap();
    assert!(ml.jaccard_score(&PrfConfig::new().average(Average::Binary { pos: 1 })).is_err());
    let given = PrfConfig::new().average(Average::Samples).labels(Labels::Given(vec![0]));
    assert!(ml.precision_recall_fscore_support(&given).is_err());
}
