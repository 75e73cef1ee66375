//! `sampling_strategy` against imbalanced-learn's `check_sampling_strategy` and the real samplers' class counts
//! (fixture `sampling_strategy.json`).

use losskit_samplers::{
    Error, RandomOverSampler, RandomUnderSampler, Sampler, SamplingKind, SamplingStrategy, check_sampling_strategy,
    class_counts,
};
use serde_json::Value;

use crate::common::{counts_of, data, fixture, pairs};

/// Does `err` correspond to the imbalanced-learn error kind `kind` (classified from imbalanced-learn's message by
/// the fixture script)?
fn is_kind(err: &Error, kind: &str) -> bool {
    let text = |needle: &str| matches!(err, Error::ParameterText { name, reason, .. } if name == "sampling_strategy" && reason.contains(needle));
    match kind {
        "fewer_than_two_classes" => matches!(err, Error::Degenerate { what } if what.contains("at least 2 classes")),
        "strategy_not_for_kind" => text("cannot be used with"),
        "invalid_string" => text("expected auto, minority"),
        "ratio_out_of_range" => matches!(err, Error::Parameter { name: "sampling_strategy", .. }),
        "ratio_not_binary" => text("needs a binary target"),
        "ratio_removes_samples" => text("remove samples from the minority class"),
        "ratio_adds_samples" => text("add samples to the majority class"),
        "ratio_for_cleaning" => text("do not take a ratio"),
        "class_not_present" => text("is not present in y"),
        "negative_count" => text("cannot be negative"),
        "over_dict_below_count" => text("over-sampler cannot ask for fewer"),
        "under_dict_above_count" => text("under-sampler cannot ask for more"),
        "dict_for_cleaning" => text("not per-class counts"),
        "list_not_for_cleaning" => text("only for cleaning methods"),
        other => panic!("unknown error kind {other} in the fixture"),
    }
}

fn kind_of(s: &str) -> SamplingKind {
    match s {
        "over" => SamplingKind::Over,
        "under" => SamplingKind::Under,
        "clean" => SamplingKind::Clean,
        other => panic!("unknown sampling kind {other}"),
    }
}

#[test]
fn resolve_matches_check_sampling_strategy() {
    let root = fixture("sampling_strategy.json");
    let cases = root["cases"].as_array().unwrap();
    assert!(cases.len() >= 800, "{}", cases.len());
    let (mut ok, mut errors, mut parse_errors) = (0, 0, 0);
    for case in cases {
        let dist = case["distribution"].as_str().unwrap();
        let counts = counts_of(&root["distributions"][dist]);
        let text = case["strategy"].as_str().unwrap();
        let kind = kind_of(case["kind"].as_str().unwrap());
        let label = format!("{dist} / {text:?} / {kind}");
        let parsed = text.parse::<SamplingStrategy>();
        let got = parsed.clone().and_then(|s| s.resolve(&counts, kind));
        match (&case["result"], case["error"].as_str()) {
            (Value::Array(_), None) => {
                let want = pairs(&case["result"]);
                let got =
                    got.unwrap_or_else(|e| panic!("{label}: imbalanced-learn gives {want:?}, losskit fails: {e}"));
                assert_eq!(got.into_iter().collect::<Vec<_>>(), want, "{label}");
                ok += 1;
            }
            (_, Some(expected)) => {
                let err = got.expect_err(&label);
                match parsed {
                    Ok(_) => {
                        assert!(is_kind(&err, expected), "{label}: expected {expected}, got {err}");
                        errors += 1;
                    }
                    Err(_) => {
                        // Values that cannot even be represented (negative counts, unknown words, ratios outside
                        // (0, 1]) fail at parse time, before the class count that imbalanced-learn checks first.
                        let parse_kinds = ["invalid_string", "negative_count", "ratio_out_of_range"];
                        assert!(parse_kinds.iter().any(|k| is_kind(&err, k)), "{label}: {err}");
                        assert!(is_kind(&err, expected) || expected == "fewer_than_two_classes", "{label}: {err}");
                        parse_errors += 1;
                    }
                }
            }
            _ => panic!("{label}: case has neither result nor error"),
        }
    }
    assert!(ok > 200 && errors > 300 && parse_errors > 50, "{ok} {errors} {parse_errors}");
}

#[test]
fn out_of_range_ratio_follows_imbalanced_learns_check_order() {
    // Built directly (not parsed), an out-of-range ratio is checked after the class count, as imbalanced-learn does.
    let one = [(4_i64, 6_usize)].into_iter().collect();
    let two = [(0_i64, 6_usize), (1, 2)].into_iter().collect();
    let three = [(0_i64, 6_usize), (1, 2), (2, 3)].into_iter().collect();
    for r in [0.0, -0.5, 1.5, f64::NAN] {
        let s = SamplingStrategy::Ratio(r);
        assert!(is_kind(&s.resolve(&one, SamplingKind::Over).unwrap_err(), "fewer_than_two_classes"));
        assert!(is_kind(&s.resolve(&two, SamplingKind::Under).unwrap_err(), "ratio_out_of_range"));
        // range before the binary check
        assert!(is_kind(&s.resolve(&three, SamplingKind::Clean).unwrap_err(), "ratio_out_of_range"));
    }
    // binary check before "cleaners take no ratio"
    assert!(is_kind(
        &SamplingStrategy::Ratio(0.5).resolve(&three, SamplingKind::Clean).unwrap_err(),
        "ratio_not_binary"
    ));
}

#[test]
fn samplers_produce_imbalanced_learns_class_counts() {
    let root = fixture("sampling_strategy.json");
    let mut checked = 0;
    for case in root["cases"].as_array().unwrap() {
        let Some(expected) = case.get("sampler_counts") else { continue };
        let dist = case["distribution"].as_str().unwrap();
        let counts = pairs(&root["distributions"][dist]);
        let text = case["strategy"].as_str().unwrap();
        let (x, y) = data(&counts, 2, 17);
        let run = |seed| -> Result<_, Error> {
            let strategy: SamplingStrategy = text.parse()?;
            match case["kind"].as_str().unwrap() {
                "over" => RandomOverSampler::new().sampling_strategy(strategy).fit_resample(x.view(), y.view(), seed),
                _ => RandomUnderSampler::new().sampling_strategy(strategy).fit_resample(x.view(), y.view(), seed),
            }
        };
        let label = format!("{dist} / {text:?} / {}", case["kind"]);
        match expected.get("counts") {
            Some(want) => {
                let out = run(3).unwrap_or_else(|e| panic!("{label}: {e}"));
                assert_eq!(class_counts(out.y.view()).into_iter().collect::<Vec<_>>(), pairs(want), "{label}");
            }
            None => assert!(run(3).is_err(), "{label}: imbalanced-learn fails with {}", expected["error"]),
        }
        checked += 1;
    }
    assert_eq!(checked, 540);
}

#[test]
fn check_sampling_strategy_counts_the_labels() {
    let y = ndarray::array![3_i64, 3, 9, 3, 9, -1];
    let got = check_sampling_strategy(&SamplingStrategy::All, y.view(), SamplingKind::Over).unwrap();
    assert_eq!(got.into_iter().collect::<Vec<_>>(), vec![(-1, 2), (3, 0), (9, 1)]);
    let empty = ndarray::Array1::<i64>::zeros(0);
    assert!(matches!(
        check_sampling_strategy(&SamplingStrategy::All, empty.view(), SamplingKind::Over),
        Err(Error::Empty { arg: "y" })
    ));
}
