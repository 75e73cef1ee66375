//! ROC / PR curves, ROC-AUC and average precision against scikit-learn (1e-12) and torchmetrics' binned variant
//! (1e-6: torchmetrics divides counts in float32), from `fixtures/ranking.json` (`tools/fixtures/gen_metrics_ranking.py`);
//! and the merge-equals-one-pass property.

use losskit_metrics::{Average, BinaryRanking, BinnedRanking, MetricState, MulticlassRanking};
use ndarray::{Array1, s};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use serde_json::Value;

use crate::util::*;

const TOL: f64 = 1e-12;

fn binary(case: &Value) -> (Array1<i64>, Array1<f64>, Option<Array1<f64>>) {
    let w = case.get("sample_weight").map(|w| Array1::from(nums(w)));
    (Array1::from(ints(&case["y_true"])), Array1::from(nums(&case["y_score"])), w)
}

#[test]
fn binary_curves_and_scores_match_sklearn() {
    let fx = fixture("ranking.json");
    for case in fx["binary"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (t, sc, w) = binary(case);
        let mut r = BinaryRanking::new();
        r.update(t.view(), sc.view(), w.as_ref().map(|w| w.view())).unwrap();
        let c = r.clf_curve().unwrap();
        let want = &case["clf_curve"];
        assert_all_close(&c.fps, &nums(&want["fps"]), TOL, &format!("{name} fps"));
        assert_all_close(&c.tps, &nums(&want["tps"]), TOL, &format!("{name} tps"));
        assert_all_close(&c.thresholds, &nums(&want["thresholds"]), 0.0, &format!("{name} thresholds"));
        for drop in [true, false] {
            let roc = r.roc_curve(drop).unwrap();
            let want = &case[format!("roc_curve_{drop}")];
            assert_all_close(&roc.fpr, &nums(&want["fpr"]), TOL, &format!("{name} fpr {drop}"));
            assert_all_close(&roc.tpr, &nums(&want["tpr"]), TOL, &format!("{name} tpr {drop}"));
            assert_all_close(&roc.thresholds, &nums(&want["thresholds"]), 0.0, &format!("{name} roc thr {drop}"));
            let pr = r.precision_recall_curve(drop).unwrap();
            let want = &case[format!("pr_curve_{drop}")];
            assert_all_close(&pr.precision, &nums(&want["precision"]), TOL, &format!("{name} precision {drop}"));
            assert_all_close(&pr.recall, &nums(&want["recall"]), TOL, &format!("{name} recall {drop}"));
            assert_all_close(&pr.thresholds, &nums(&want["thresholds"]), 0.0, &format!("{name} pr thr {drop}"));
        }
        if let Some(auc) = case.get("roc_auc") {
            assert_close(r.roc_auc(None).unwrap(), num(auc), TOL, &format!("{name} auc"));
            assert_close(r.roc_auc(Some(1.0)).unwrap(), num(auc), TOL, &format!("{name} auc max_fpr 1"));
            for pair in case["roc_auc_max_fpr"].as_array().unwrap() {
                let m = pair[0].as_f64().unwrap();
                assert_close(r.roc_auc(Some(m)).unwrap(), num(&pair[1]), TOL, &format!("{name} pauc {m}"));
            }
            assert_close(r.average_precision().unwrap(), num(&case["average_precision"]), TOL, &format!("{name} ap"));
        } else {
            assert!(r.roc_auc(None).is_err() && r.average_precision().is_err(), "{name}: one class must be an error");
        }
        if let Some(b) = case.get("binned") {
            let mut br = BinnedRanking::new(nums(&b["thresholds"])).unwrap();
            br.update(t.view(), sc.view()).unwrap();
            let roc = br.roc_curve().unwrap();
            assert_all_close(&roc.fpr, &nums(&b["fpr"]), 1e-6, &format!("{name} binned fpr"));
            assert_all_close(&roc.tpr, &nums(&b["tpr"]), 1e-6, &format!("{name} binned tpr"));
            let pr = br.precision_recall_curve().unwrap();
            assert_all_close(&pr.precision, &nums(&b["precision"]), 1e-6, &format!("{name} binned precision"));
            assert_all_close(&pr.recall, &nums(&b["recall"]), 1e-6, &format!("{name} binned recall"));
            assert_close(br.roc_auc().unwrap(), num(&b["auroc"]), 1e-6, &format!("{name} binned auroc"));
            assert_close(
                br.average_precision().unwrap(),
                num(&b["average_precision"]),
                1e-6,
                &format!("{name} binned ap"),
            );
        }
    }
}

#[test]
fn multiclass_ovr_ovo_and_ap_match_sklearn() {
    let fx = fixture("ranking.json");
    for case in fx["multiclass"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let c = case["n_classes"].as_u64().unwrap() as usize;
        let t = Array1::from(ints(&case["y_true"]));
        let sc = matrix_f64(&case["y_score"]);
        let mut r = MulticlassRanking::new(c).unwrap();
        r.update(t.view(), sc.view()).unwrap();
        let v = &case["values"];
        for (key, avg) in [
            ("macro", Average::Macro),
            ("weighted", Average::Weighted),
            ("micro", Average::Micro),
            ("None", Average::None),
        ] {
            let what = format!("{name} {key}");
            assert_all_close(r.roc_auc_ovr(avg).unwrap().values(), &nums(&v[format!("ovr_{key}")]), TOL, &what);
            assert_all_close(r.average_precision(avg).unwrap().values(), &nums(&v[format!("ap_{key}")]), TOL, &what);
        }
        assert_close(r.roc_auc_ovo(Average::Macro).unwrap(), num(&v["ovo_macro"]), TOL, name);
        assert_close(r.roc_auc_ovo(Average::Weighted).unwrap(), num(&v["ovo_weighted"]), TOL, name);
    }
}

#[test]
fn ranking_states_merge_to_one_pass() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
    // Crosses the parallel sort threshold (2^16).
    for &n in &[10usize, 1000, 150_000] {
        let t: Array1<i64> = (0..n).map(|_| rng.random_range(0..2)).collect();
        let sc: Array1<f64> =
            t.iter().map(|&y| ((y as f64 * 0.3 + rng.random_range(0.0..1.0)) * 50.0).round() / 50.0).collect();
        let w: Array1<f64> = (0..n).map(|_| rng.random_range(0..4) as f64 * 0.5).collect();
        let mut one = BinaryRanking::new();
        one.update(t.view(), sc.view(), None).unwrap();
        let mut one_w = BinaryRanking::new();
        one_w.update(t.view(), sc.view(), Some(w.view())).unwrap();
        let mut binned_one = BinnedRanking::linspace(33).unwrap();
        binned_one.update(t.view(), sc.view()).unwrap();
        let cut = [0, n / 3, n / 2, n];
        let (mut merged, mut merged_w) = (BinaryRanking::new(), BinaryRanking::new());
        let mut binned = BinnedRanking::linspace(33).unwrap();
        for win in cut.windows(2).rev() {
            let (a, b) = (win[0], win[1]);
            let mut part = BinaryRanking::new();
            part.update(t.slice(s![a..b]), sc.slice(s![a..b]), None).unwrap();
            MetricState::merge(&mut merged, &part).unwrap();
            let mut part_w = BinaryRanking::new();
            part_w.update(t.slice(s![a..b]), sc.slice(s![a..b]), Some(w.slice(s![a..b]))).unwrap();
            MetricState::merge(&mut merged_w, &part_w).unwrap();
            let mut pb = BinnedRanking::linspace(33).unwrap();
            pb.update(t.slice(s![a..b]), sc.slice(s![a..b])).unwrap();
            binned.merge(&pb).unwrap();
        }
        // Unweighted: exact equality.
        assert_eq!(merged.compute().unwrap(), one.compute().unwrap(), "n {n}");
        assert_eq!(binned, binned_one);
        let (a, b) = (merged_w.compute().unwrap(), one_w.compute().unwrap());
        assert_close(a.0, b.0, TOL, "weighted auc");
        assert_close(a.1, b.1, TOL, "weighted ap");
        // Against a quadratic pair-counting oracle for the AUC (ties count ½).
        if n <= 1000 {
            let (mut num, mut den) = (0.0, 0.0);
            for i in 0..n {
                for j in 0..n {
                    if t[i] == 1 && t[j] == 0 {
                        den += 1.0;
                        num += if sc[i] > sc[j] {
                            1.0
                        } else if sc[i] == sc[j] {
                            0.5
                        } else {
                            0.0
                        };
                    }
                }
            }
            assert_close(one.roc_auc(None).unwrap(), num / den, TOL, "pair oracle");
        }
    }
}

#[test]
fn mixing_weighted_and_unweighted_batches_treats_missing_weights_as_one() {
    let t = Array1::from(vec![0_i64, 1, 1, 0, 1]);
    let sc = Array1::from(vec![0.1, 0.7, 0.3, 0.4, 0.2]);
    let ones = Array1::from(vec![1.0; 5]);
    let mut a = BinaryRanking::new();
    a.update(t.slice(s![..2]), sc.slice(s![..2]), None).unwrap();
    a.update(t.slice(s![2..]), sc.slice(s![2..]), Some(ones.slice(s![2..]))).unwrap();
    let mut b = BinaryRanking::new();
    b.update(t.view(), sc.view(), None).unwrap();
    assert_eq!(a.roc_auc(None).unwrap(), b.roc_auc(None).unwrap());
    assert_eq!(a.average_precision().unwrap(), b.average_precision().unwrap());
}

#[test]
fn multiclass_bad_input() {
    let mut r = MulticlassRanking::new(3).unwrap();
    let s = ndarray::array![[0.5, 0.5, 0.0], [0.2, 0.2, 0.6]];
    r.update(ndarray::array![0, 2].view(), s.view()).unwrap();
    // Class 1 never occurs.
    assert!(matches!(r.roc_auc_ovr(Average::Macro), Err(losskit_metrics::Error::Degenerate { .. })));
    let mut r = MulticlassRanking::new(2).unwrap();
    r.update(ndarray::array![0, 1].view(), ndarray::array![[0.9, 0.3], [0.2, 0.8]].view()).unwrap();
    assert!(matches!(r.roc_auc_ovr(Average::Macro), Err(losskit_metrics::Error::Input { .. })));
    assert!(r.average_precision(Average::Macro).is_ok());
    assert!(r.roc_auc_ovo(Average::Micro).is_err());
    assert!(MulticlassRanking::new(1).is_err());
    assert!(matches!(
        r.update(ndarray::array![0].view(), ndarray::array![[f64::INFINITY, 0.0]].view()),
        Err(losskit_metrics::Error::NonFinite { .. })
    ));
}
