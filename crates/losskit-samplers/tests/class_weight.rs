//! Class weights against scikit-learn's `compute_class_weight('balanced')` and Cui et al.'s reference expression
//! (fixture `class_weight.json`).

use losskit_samplers::{
    Error, compute_class_weight_balanced, compute_class_weight_balanced_weighted, effective_number_weights,
};
use ndarray::Array1;
use serde_json::Value;

use crate::common::fixture;

fn ints(v: &Value) -> Vec<i64> {
    v.as_array().unwrap().iter().map(|e| e.as_i64().unwrap()).collect()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|e| e.as_f64().unwrap()).collect()
}

#[test]
fn balanced_matches_scikit_learn() {
    let root = fixture("class_weight.json");
    let cases = root["balanced"].as_array().unwrap();
    assert_eq!(cases.len(), 11);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let y = Array1::from(ints(&case["y"]));
        let classes = ints(&case["classes"]);
        let got = match &case["sample_weight"] {
            Value::Null => compute_class_weight_balanced(y.view(), &classes),
            sw => compute_class_weight_balanced_weighted(y.view(), &classes, Array1::from(floats(sw)).view()),
        };
        match case["error"].as_str() {
            None => {
                let want = floats(&case["weights"]);
                let got = got.unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(got.len(), want.len(), "{name}");
                for (a, b) in got.iter().zip(&want) {
                    assert!((a - b).abs() <= 1e-14 * b.abs(), "{name}: {a} vs {b}");
                }
            }
            Some("label_not_in_classes") => assert!(matches!(got, Err(Error::Input { .. })), "{name}: {got:?}"),
            Some("class_not_in_y") => assert!(matches!(got, Err(Error::Degenerate { .. })), "{name}: {got:?}"),
            Some(other) => panic!("{name}: unknown error kind {other}"),
        }
    }
}

#[test]
fn effective_number_matches_reference_and_high_precision() {
    let root = fixture("class_weight.json");
    let cases = root["effective_number"].as_array().unwrap();
    assert_eq!(cases.len(), 11);
    for case in cases {
        let counts: Vec<usize> =
            case["counts"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        let beta = case["beta"].as_f64().unwrap();
        let got = effective_number_weights(&counts, beta).unwrap();
        // 60-digit mpmath values: losskit's expm1 form is accurate to a few ulps everywhere.
        for (a, b) in got.iter().zip(floats(&case["weights"])) {
            assert!((a - b).abs() <= 1e-13 * b.abs(), "{counts:?} β={beta}: {a} vs {b}");
        }
        // Cui et al.'s NumPy expression, which loses digits to cancellation when β is near 1.
        for (a, b) in got.iter().zip(floats(&case["weights_numpy"])) {
            assert!((a - b).abs() <= 2e-9 * b.abs(), "{counts:?} β={beta}: {a} vs numpy {b}");
        }
        assert!((got.sum() - counts.len() as f64).abs() <= 1e-12 * counts.len() as f64);
    }
}
