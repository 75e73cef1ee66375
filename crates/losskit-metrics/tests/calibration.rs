//! Calibration error (torchmetrics), Brier score and log loss (scikit-learn) and the multi-label ranking metrics
//! (scikit-learn) against `fixtures/calibration.json` (`tools/fixtures/gen_metrics_calibration.py`); merging any split
//! equals one pass.

use losskit_metrics::{CalibrationError, CalibrationNorm, LabelRanking, MetricState, ProperScores};
use ndarray::{Array1, s};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

use crate::util::*;

const TOL: f64 = 1e-12;

#[test]
fn binary_calibration_matches_torchmetrics_and_sklearn() {
    let fx = fixture("calibration.json");
    for case in fx["binary"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let t = Array1::from(ints(&case["y_true"]));
        let p = Array1::from(nums(&case["y_prob"]));
        let mut ce = CalibrationError::new(case["n_bins"].as_u64().unwrap() as usize).unwrap();
        ce.update_binary(t.view(), p.view()).unwrap();
        let d = ce.reliability_diagram().unwrap();
        let bins = &case["bins"];
        // torchmetrics' bin edges to an ulp (then our repeated right edge of the bin of confidence 1).
        assert_all_close(&d.edges[..d.edges.len() - 1], &nums(&bins["edges"]), 2e-16, &format!("{name} edges"));
        assert_all_close(&d.accuracy, &nums(&bins["accuracy"]), TOL, &format!("{name} accuracy"));
        assert_all_close(&d.confidence, &nums(&bins["confidence"]), TOL, &format!("{name} confidence"));
        let n = t.len() as f64;
        let prop: Vec<f64> = d.count.iter().map(|&c| c as f64 / n).collect();
        assert_all_close(&prop, &nums(&bins["proportion"]), TOL, &format!("{name} proportion"));
        for (norm, key) in
            [(CalibrationNorm::L1, "ce_l1"), (CalibrationNorm::L2, "ce_l2"), (CalibrationNorm::Max, "ce_max")]
        {
            assert_close(ce.calibration_error(norm).unwrap(), num(&case[key]), TOL, &format!("{name} {key}"));
        }
        let mut ps = ProperScores::new();
        ps.update_binary(t.view(), p.view()).unwrap();
        assert_close(ps.brier_score().unwrap(), num(&case["brier"]), TOL, &format!("{name} brier"));
        assert_close(ps.log_loss().unwrap(), num(&case["log_loss"]), TOL, &format!("{name} log_loss"));
    }
}

#[test]
fn multiclass_calibration_matches_torchmetrics_and_sklearn() {
    let fx = fixture("calibration.json");
    for case in fx["multiclass"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let t = Array1::from(ints(&case["y_true"]));
        let p = matrix_f64(&case["y_prob"]);
        let mut ce = CalibrationError::new(case["n_bins"].as_u64().unwrap() as usize).unwrap();
        ce.update_multiclass(t.view(), p.view()).unwrap();
        for (norm, key) in
            [(CalibrationNorm::L1, "ce_l1"), (CalibrationNorm::L2, "ce_l2"), (CalibrationNorm::Max, "ce_max")]
        {
            let got = ce.calibration_error(norm).unwrap();
            // torchmetrics' own binning on the float64 confidences: exact.
            assert_close(got, num(&case[key]), TOL, &format!("{name} {key}"));
            // The public function casts the confidences to float32 first.
            assert_close(got, num(&case[format!("{key}_torchmetrics")]), 2e-6, &format!("{name} {key} (f32)"));
        }
        let mut ps = ProperScores::new();
        ps.update_multiclass(t.view(), p.view()).unwrap();
        assert_close(ps.brier_score().unwrap(), num(&case["brier"]), TOL, &format!("{name} brier"));
        assert_close(ps.log_loss().unwrap(), num(&case["log_loss"]), TOL, &format!("{name} log_loss"));
    }
}

#[test]
fn label_ranking_matches_sklearn() {
    let fx = fixture("calibration.json");
    for case in fx["label_ranking"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let t = matrix_i64(&case["y_true"]);
        let sc = matrix_f64(&case["y_score"]);
        let mut r = LabelRanking::new(t.ncols()).unwrap();
        r.update(t.view(), sc.view()).unwrap();
        assert_close(r.label_ranking_average_precision().unwrap(), num(&case["lrap"]), TOL, &format!("{name} lrap"));
        assert_close(r.coverage_error().unwrap(), num(&case["coverage_error"]), TOL, &format!("{name} coverage"));
        assert_close(r.label_ranking_loss().unwrap(), num(&case["ranking_loss"]), TOL, &format!("{name} loss"));
    }
}

#[test]
fn calibration_states_merge_to_the_one_pass_result() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(17);
    let n = 5000;
    let t: Array1<i64> = (0..n).map(|_| rng.random_range(0..3)).collect();
    let p = ndarray::Array2::from_shape_fn((n, 3), |_| rng.random_range(0.0..1.0));
    let p = &p / &p.sum_axis(ndarray::Axis(1)).insert_axis(ndarray::Axis(1));
    let tb = t.mapv(|v| (v == 1) as i64);
    let pb = p.column(1).to_owned();
    let mut one =
        (CalibrationError::new(15).unwrap(), ProperScores::new(), ProperScores::new(), LabelRanking::new(3).unwrap());
    one.0.update_multiclass(t.view(), p.view()).unwrap();
    one.1.update_multiclass(t.view(), p.view()).unwrap();
    one.2.update_binary(tb.view(), pb.view()).unwrap();
    let onehot = ndarray::Array2::from_shape_fn((n, 3), |(i, c)| (t[i] == c as i64) as i64);
    one.3.update(onehot.view(), p.view()).unwrap();
    for shards in [2usize, 7] {
        let mut cut: Vec<usize> = (0..shards - 1).map(|_| rng.random_range(0..=n)).collect();
        cut.extend([0, n]);
        cut.sort_unstable();
        let mut m = (
            CalibrationError::new(15).unwrap(),
            ProperScores::new(),
            ProperScores::new(),
            LabelRanking::new(3).unwrap(),
        );
        for w in cut.windows(2).rev() {
            let r = s![w[0]..w[1]];
            let mut part = (
                CalibrationError::new(15).unwrap(),
                ProperScores::new(),
                ProperScores::new(),
                LabelRanking::new(3).unwrap(),
            );
            part.0.update_multiclass(t.slice(r), p.slice(s![w[0]..w[1], ..])).unwrap();
            part.1.update_multiclass(t.slice(r), p.slice(s![w[0]..w[1], ..])).unwrap();
            part.2.update_binary(tb.slice(r), pb.slice(r)).unwrap();
            part.3.update(onehot.slice(s![w[0]..w[1], ..]), p.slice(s![w[0]..w[1], ..])).unwrap();
            m.0.merge(&part.0).unwrap();
            m.1.merge(&part.1).unwrap();
            m.2.merge(&part.2).unwrap();
            m.3.merge(&part.3).unwrap();
        }
        for norm in [CalibrationNorm::L1, CalibrationNorm::L2, CalibrationNorm::Max] {
            assert_close(m.0.calibration_error(norm).unwrap(), one.0.calibration_error(norm).unwrap(), 1e-12, "ce");
        }
        assert_eq!(m.0.reliability_diagram().unwrap().count, one.0.reliability_diagram().unwrap().count);
        let (a, b) = (m.1.compute().unwrap(), one.1.compute().unwrap());
        assert_close(a.0, b.0, 1e-12, "brier");
        assert_close(a.1, b.1, 1e-12, "log loss");
        let (a, b) = (m.2.compute().unwrap(), one.2.compute().unwrap());
        assert_close(a.0, b.0, 1e-12, "binary brier");
        assert_close(a.1, b.1, 1e-12, "binary log loss");
        let (a, b) = (m.3.compute().unwrap(), one.3.compute().unwrap());
        assert_close(a.0, b.0, 1e-12, "lrap");
        assert_eq!(a.1, b.1);
        assert_close(a.2, b.2, 1e-12, "ranking loss");
    }
    // Merging states of different configurations is refused.
    assert!(one.0.merge(&CalibrationError::new(10).unwrap()).is_err());
    assert!(one.1.merge(&one.2).is_err());
    assert!(one.3.merge(&LabelRanking::new(4).unwrap()).is_err());
}
