//! The metric registry: every metric once, with its parameters and the scikit-learn function it reproduces.
//!
//! `losskit list` and `losskit metrics` read [`METRICS`]; a new metric is its state plus one entry here.

use losskit_tensor::{Error, Result};

/// A parameter of a metric, described for `losskit list`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricParam {
    /// snake_case name, scikit-learn's keyword.
    pub name: &'static str,
    /// Default, as text.
    pub default: &'static str,
    /// Accepted values, in words.
    pub values: &'static str,
    /// What it does.
    pub summary: &'static str,
}

/// One registered metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricEntry {
    /// kebab-case name (`balanced-accuracy`).
    pub name: &'static str,
    /// One line.
    pub summary: &'static str,
    /// The reference implementation the values match, a scikit-learn function (`sklearn.metrics.f1_score`).
    pub reference: &'static str,
    /// The inputs, with shapes.
    pub inputs: &'static str,
    /// The Rust entry point.
    pub api: &'static str,
    /// Parameters.
    pub params: &'static [MetricParam],
}

const AVERAGE: MetricParam = MetricParam {
    name: "average",
    default: "macro",
    values: "none | micro | macro | weighted | binary",
    summary: "how per-class values are combined (scikit-learn's default is binary for *_score)",
};
const POS_LABEL: MetricParam = MetricParam {
    name: "pos_label",
    default: "1",
    values: "a class in 0..n_classes",
    summary: "the positive class of average=binary",
};
const LABELS: MetricParam = MetricParam {
    name: "labels",
    default: "present",
    values: "present | all | comma-separated class indices",
    summary: "classes evaluated: present in y_true or y_pred (scikit-learn's labels=None), all 0..n_classes, or a list",
};
const ZERO_DIVISION: MetricParam = MetricParam {
    name: "zero_division",
    default: "warn",
    values: "warn | 0 | 1 | nan",
    summary: "value of 0/0 (warn acts as 0); nan values are left out of averages",
};
const BETA: MetricParam = MetricParam {
    name: "beta",
    default: "1",
    values: "≥ 0 or inf",
    summary: "weight of recall against precision (0: precision, inf: recall)",
};
const ADJUSTED: MetricParam = MetricParam {
    name: "adjusted",
    default: "false",
    values: "true | false",
    summary: "rescale so that chance scores 0 and perfect prediction 1",
};

const LABEL_INPUTS: &str = "y_true [N] int, y_pred [N] int, both in 0..n_classes";

/// Every metric, in `losskit list` order.
pub static METRICS: &[MetricEntry] = &[
    MetricEntry {
        name: "confusion-matrix",
        summary: "counts C[t, p] of samples of true class t predicted as p; the mergeable state of all metrics below",
        reference: "sklearn.metrics.confusion_matrix",
        inputs: LABEL_INPUTS,
        api: "ConfusionMatrix::update / merge / counts",
        params: &[],
    },
    MetricEntry {
        name: "accuracy",
        summary: "fraction of samples predicted correctly",
        reference: "sklearn.metrics.accuracy_score",
        inputs: LABEL_INPUTS,
        api: "ConfusionMatrix::accuracy",
        params: &[],
    },
    MetricEntry {
        name: "balanced-accuracy",
        summary: "mean recall over the classes present in y_true",
        reference: "sklearn.metrics.balanced_accuracy_score",
        inputs: LABEL_INPUTS,
        api: "ConfusionMatrix::balanced_accuracy / balanced_accuracy_adjusted",
        params: &[ADJUSTED],
    },
    MetricEntry {
        name: "precision",
        summary: "tp / predicted per class, averaged",
        reference: "sklearn.metrics.precision_score",
        inputs: LABEL_INPUTS,
        api: "ConfusionMatrix::precision_score / precision",
        params: &[AVERAGE, POS_LABEL, LABELS, ZERO_DIVISION],
    },
    MetricEntry {
        name: "recall",
        summary: "tp / support per class, averaged",
        reference: "sklearn.metrics.recall_score",
        inputs: LABEL_INPUTS,
        api: "ConfusionMatrix::recall_score / recall",
        params: &[AVERAGE, POS_LABEL, LABELS, ZERO_DIVISION],
    },
    MetricEntry {
        name: "f1",
        summary: "harmonic mean of precision and recall, 2 tp / (support + predicted) per class, averaged",
        reference: "sklearn.metrics.f1_score",
        inputs: LABEL_INPUTS,
        api: "ConfusionMatrix::f1_score / f1",
        params: &[AVERAGE, POS_LABEL, LABELS, ZERO_DIVISION],
    },
    MetricEntry {
        name: "fbeta",
        summary: "(1 + β²) tp / (β² support + predicted) per class, averaged",
        reference: "sklearn.metrics.fbeta_score",
        inputs: LABEL_INPUTS,
        api: "ConfusionMatrix::fbeta_score / f_beta",
        params: &[BETA, AVERAGE, POS_LABEL, LABELS, ZERO_DIVISION],
    },
    MetricEntry {
        name: "precision-recall-fscore-support",
        summary: "precision, recall, F-β and support together, with the labels whose denominator is zero",
        reference: "sklearn.metrics.precision_recall_fscore_support",
        inputs: LABEL_INPUTS,
        api: "ConfusionMatrix::precision_recall_fscore_support",
        params: &[BETA, AVERAGE, POS_LABEL, LABELS, ZERO_DIVISION],
    },
    MetricEntry {
        name: "classification-report",
        summary: "accuracy, balanced accuracy, precision/recall/F1 macro, micro, weighted and per class",
        reference: "sklearn.metrics.classification_report",
        inputs: LABEL_INPUTS,
        api: "ClassificationReport::new",
        params: &[LABELS, ZERO_DIVISION],
    },
];

/// The entry named `name`.
///
/// # Errors
/// [`Error::UnknownName`] (kind `metric`) when no metric has that name.
pub fn find(name: &str) -> Result<&'static MetricEntry> {
    METRICS.iter().find(|e| e.name == name).ok_or_else(|| Error::UnknownName { kind: "metric", name: name.into() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn kebab(s: &str) -> bool {
        !s.is_empty()
            && s.split('-').all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
    }

    #[test]
    fn names_unique_kebab_params_snake_references_sklearn() {
        let mut seen = HashSet::new();
        for e in METRICS {
            assert!(kebab(e.name), "{}", e.name);
            assert!(seen.insert(e.name), "duplicate {}", e.name);
            assert!(e.reference.starts_with("sklearn.metrics."), "{}", e.reference);
            assert!(!e.summary.is_empty() && !e.api.is_empty());
            let mut params = HashSet::new();
            for p in e.params {
                assert!(p.name.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{}", p.name);
                assert!(params.insert(p.name), "duplicate parameter {} in {}", p.name, e.name);
            }
        }
    }

    #[test]
    fn parameter_defaults_parse_with_the_library_parsers() {
        use crate::{Average, Labels, ZeroDivision};
        for p in METRICS.iter().flat_map(|e| e.params) {
            let ok = match p.name {
                "average" => p.default.parse::<Average>().is_ok(),
                "labels" => p.default.parse::<Labels>().is_ok(),
                "zero_division" => p.default.parse::<ZeroDivision>().is_ok(),
                "beta" | "pos_label" => p.default.parse::<f64>().is_ok(),
                "adjusted" => p.default.parse::<bool>().is_ok(),
                other => panic!("parameter {other} has no parser test"),
            };
            assert!(ok, "{} default {:?}", p.name, p.default);
        }
    }

    #[test]
    fn find_by_name() {
        assert_eq!(find("f1").unwrap().reference, "sklearn.metrics.f1_score");
        assert_eq!(find("f2"), Err(Error::UnknownName { kind: "metric", name: "f2".into() }));
    }
}
