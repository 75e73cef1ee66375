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
    /// The reference implementation the values match: a scikit-learn function (`sklearn.metrics.f1_score`), or an
    /// imbalanced-learn, torchmetrics, pytorch-metric-learning or scipy one where scikit-learn has none, or the
    /// authors' code (`maumruiz/FSL-Loss:…`) where no library has the metric.
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
    values: "none | micro | macro | weighted | binary | samples",
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
const MULTILABEL_INPUTS: &str = "y_true [N, L] 0/1, y_pred [N, L] 0/1";
const BINARY_SCORE_INPUTS: &str = "y_true [N] in {0, 1}, y_score [N] finite, optional sample_weight [N] ≥ 0";
const MULTICLASS_SCORE_INPUTS: &str = "y_true [N] in 0..n_classes (every class present), y_score [N, n_classes]";
const KAPPA_WEIGHTS: MetricParam = MetricParam {
    name: "weights",
    default: "none",
    values: "none | linear | quadratic",
    summary: "disagreement weights between the i-th and j-th label",
};
const CORRECTION: MetricParam = MetricParam {
    name: "correction",
    default: "0",
    values: "≥ 0",
    summary: "value replacing a zero recall before the geometric mean",
};
const K: MetricParam = MetricParam {
    name: "k",
    default: "2",
    values: "≥ 1",
    summary: "number of best-scored classes that count as a hit",
};
const MAX_FPR: MetricParam = MetricParam {
    name: "max_fpr",
    default: "1",
    values: "(0, 1]",
    summary: "partial AUC over fpr ≤ max_fpr, McClish-standardised (binary only)",
};
const RANK_AVERAGE: MetricParam = MetricParam {
    name: "average",
    default: "macro",
    values: "none | micro | macro | weighted",
    summary: "how per-class one-vs-rest values are combined (multiclass)",
};
const MULTI_CLASS: MetricParam = MetricParam {
    name: "multi_class",
    default: "ovr",
    values: "ovr | ovo",
    summary: "one-vs-rest or one-vs-one (Hand & Till) for multiclass scores",
};
const DROP_INTERMEDIATE: MetricParam = MetricParam {
    name: "drop_intermediate",
    default: "true",
    values: "true | false",
    summary: "drop curve points that do not change the plotted curve",
};
const THRESHOLDS: MetricParam = MetricParam {
    name: "thresholds",
    default: "100",
    values: "≥ 2",
    summary: "number of evenly spaced thresholds in [0, 1] (or an increasing list through the Rust API)",
};

const N_BINS: MetricParam = MetricParam {
    name: "n_bins",
    default: "15",
    values: "≥ 1",
    summary: "equal-width confidence bins over [0, 1] (plus one for confidence 1, as torchmetrics)",
};
const NORM: MetricParam = MetricParam {
    name: "norm",
    default: "l1",
    values: "l1 | l2 | max",
    summary: "l1: expected calibration error, l2: RMS calibration error, max: maximum calibration error",
};
const RETRIEVAL_K: MetricParam = MetricParam {
    name: "k",
    default: "max_bin_count",
    values: "all | max_bin_count | an integer ≥ 1",
    summary: "neighbours examined (AccuracyCalculator's k; max_bin_count keeps MAP@R and R-precision exact)",
};
const DISTANCE: MetricParam = MetricParam {
    name: "distance",
    default: "euclidean",
    values: "euclidean | cosine",
    summary: "distance of the exact nearest-neighbour search",
};
const AVG_OF_AVGS: MetricParam = MetricParam {
    name: "avg_of_avgs",
    default: "false",
    values: "true | false",
    summary: "average per class first, then over classes",
};
const ICNN_K: MetricParam = MetricParam {
    name: "k",
    default: "4",
    values: "≥ 1",
    summary: "neighbours scored (the authors' modified_score default 4); clamped to M − 2",
};
const ICNN_IPC: MetricParam = MetricParam {
    name: "ipc",
    default: "0",
    values: "0 (automatic: k + 1) | an integer ≥ 1",
    summary: "neighbours searched per row (the authors' instances per class)",
};
const CALIBRATION_INPUTS: &str = "binary: y_true [N] in {0, 1}, y_prob [N] in [0, 1]; multiclass: y_prob [N, C]";
const LABEL_RANKING_INPUTS: &str = "y_true [N, L] 0/1, y_score [N, L] finite";
const RETRIEVAL_INPUTS: &str =
    "embeddings [N, D] + labels [N], or query [Nq, D] + query_labels, reference [Nr, D] + reference_labels";
const ACCURACY_CALCULATOR: &str = "pytorch_metric_learning.utils.accuracy_calculator.AccuracyCalculator";

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
    MetricEntry {
        name: "specificity",
        summary: "tn / (tn + fp) per class (recall of the negative class), averaged",
        reference: "imblearn.metrics.specificity_score",
        inputs: LABEL_INPUTS,
        api: "ConfusionMatrix::specificity_score",
        params: &[AVERAGE, POS_LABEL, LABELS, ZERO_DIVISION],
    },
    MetricEntry {
        name: "geometric-mean",
        summary: "geometric mean of per-class recalls (multiclass) or sqrt(sensitivity · specificity)",
        reference: "imblearn.metrics.geometric_mean_score",
        inputs: LABEL_INPUTS,
        api: "ConfusionMatrix::geometric_mean_score / geometric_mean_score_averaged",
        params: &[AVERAGE, LABELS, CORRECTION],
    },
    MetricEntry {
        name: "matthews-corrcoef",
        summary: "Matthews correlation coefficient (multiclass R_K), 0 when undefined",
        reference: "sklearn.metrics.matthews_corrcoef",
        inputs: LABEL_INPUTS,
        api: "ConfusionMatrix::matthews_corrcoef",
        params: &[],
    },
    MetricEntry {
        name: "cohen-kappa",
        summary: "agreement between y_true and y_pred corrected for chance, optionally weighted",
        reference: "sklearn.metrics.cohen_kappa_score",
        inputs: LABEL_INPUTS,
        api: "ConfusionMatrix::cohen_kappa_score",
        params: &[KAPPA_WEIGHTS, LABELS],
    },
    MetricEntry {
        name: "jaccard",
        summary: "tp / (tp + fp + fn) per class or sample, averaged",
        reference: "sklearn.metrics.jaccard_score",
        inputs: LABEL_INPUTS,
        api: "ConfusionMatrix::jaccard_score / MultilabelConfusion::jaccard_score",
        params: &[AVERAGE, POS_LABEL, LABELS, ZERO_DIVISION],
    },
    MetricEntry {
        name: "top-k-accuracy",
        summary: "fraction of samples whose true class is among the k best scores (ties as scikit-learn)",
        reference: "sklearn.metrics.top_k_accuracy_score",
        inputs: "y_true [N] in 0..n_classes, y_score [N, n_classes]",
        api: "TopKAccuracy::update / accuracy",
        params: &[K],
    },
    MetricEntry {
        name: "multilabel-confusion-matrix",
        summary: "per-label 2×2 counts [[tn, fp], [fn, tp]] and per-sample (tp, n_true, n_pred) histogram",
        reference: "sklearn.metrics.multilabel_confusion_matrix",
        inputs: MULTILABEL_INPUTS,
        api: "MultilabelConfusion::update / merge / multilabel_confusion_matrix / precision_recall_fscore_support",
        params: &[AVERAGE, LABELS, ZERO_DIVISION, BETA],
    },
    MetricEntry {
        name: "hamming-loss",
        summary: "fraction of wrong label entries",
        reference: "sklearn.metrics.hamming_loss",
        inputs: MULTILABEL_INPUTS,
        api: "MultilabelConfusion::hamming_loss",
        params: &[],
    },
    MetricEntry {
        name: "subset-accuracy",
        summary: "fraction of samples whose whole label set is predicted exactly",
        reference: "sklearn.metrics.accuracy_score",
        inputs: MULTILABEL_INPUTS,
        api: "MultilabelConfusion::subset_accuracy",
        params: &[],
    },
    MetricEntry {
        name: "roc-curve",
        summary: "false and true positive rates at each distinct score (ties as scikit-learn)",
        reference: "sklearn.metrics.roc_curve",
        inputs: BINARY_SCORE_INPUTS,
        api: "BinaryRanking::roc_curve",
        params: &[DROP_INTERMEDIATE],
    },
    MetricEntry {
        name: "roc-auc",
        summary: "area under the ROC curve; binary with partial AUC, multiclass one-vs-rest or one-vs-one",
        reference: "sklearn.metrics.roc_auc_score",
        inputs: "binary: y_true [N] in {0, 1}, y_score [N]; multiclass: y_score [N, C] rows summing to 1",
        api: "BinaryRanking::roc_auc / MulticlassRanking::roc_auc_ovr / roc_auc_ovo / roc_auc_score",
        params: &[MAX_FPR, MULTI_CLASS, RANK_AVERAGE],
    },
    MetricEntry {
        name: "precision-recall-curve",
        summary: "precision and recall at each distinct score",
        reference: "sklearn.metrics.precision_recall_curve",
        inputs: BINARY_SCORE_INPUTS,
        api: "BinaryRanking::precision_recall_curve",
        params: &[DROP_INTERMEDIATE],
    },
    MetricEntry {
        name: "average-precision",
        summary: "Σ (R_i − R_{i−1}) P_i over the thresholds, binary or one-vs-rest",
        reference: "sklearn.metrics.average_precision_score",
        inputs: MULTICLASS_SCORE_INPUTS,
        api: "BinaryRanking::average_precision / MulticlassRanking::average_precision / average_precision_score",
        params: &[RANK_AVERAGE],
    },
    MetricEntry {
        name: "binned-roc-auc",
        summary: "bounded-memory ROC, ROC-AUC, PR curve and AP over fixed thresholds (streams)",
        reference: "torchmetrics.functional.classification.binary_auroc",
        inputs: "y_true [N] in {0, 1}, y_score [N] (thresholds in the score range)",
        api: "BinnedRanking::update / merge / roc_auc / average_precision",
        params: &[THRESHOLDS],
    },
    MetricEntry {
        name: "calibration-error",
        summary: "expected (l1), RMS (l2) or maximum (max) gap between confidence and accuracy over confidence bins",
        reference: "torchmetrics.functional.classification.binary_calibration_error",
        inputs: CALIBRATION_INPUTS,
        api: "CalibrationError::update_binary / update_multiclass / expected / maximum / calibration_error",
        params: &[N_BINS, NORM],
    },
    MetricEntry {
        name: "reliability-diagram",
        summary: "per confidence bin: edges, mean confidence, accuracy and count",
        reference: "torchmetrics.functional.classification.binary_calibration_error",
        inputs: CALIBRATION_INPUTS,
        api: "CalibrationError::reliability_diagram",
        params: &[N_BINS],
    },
    MetricEntry {
        name: "brier-score",
        summary: "mean squared difference between the probabilities and the one-hot labels (halved for 2 columns)",
        reference: "sklearn.metrics.brier_score_loss",
        inputs: CALIBRATION_INPUTS,
        api: "ProperScores::update_binary / update_multiclass / brier_score",
        params: &[],
    },
    MetricEntry {
        name: "log-loss",
        summary: "mean negative log-probability of the true class, probabilities clipped to [eps, 1 - eps]",
        reference: "sklearn.metrics.log_loss",
        inputs: CALIBRATION_INPUTS,
        api: "ProperScores::update_binary / update_multiclass / log_loss",
        params: &[],
    },
    MetricEntry {
        name: "label-ranking-average-precision",
        summary: "mean over relevant labels of the fraction of relevant labels ranked at or above them",
        reference: "sklearn.metrics.label_ranking_average_precision_score",
        inputs: LABEL_RANKING_INPUTS,
        api: "LabelRanking::update / label_ranking_average_precision",
        params: &[],
    },
    MetricEntry {
        name: "coverage-error",
        summary: "how far down the ranking one must go to cover every relevant label",
        reference: "sklearn.metrics.coverage_error",
        inputs: LABEL_RANKING_INPUTS,
        api: "LabelRanking::update / coverage_error",
        params: &[],
    },
    MetricEntry {
        name: "label-ranking-loss",
        summary: "fraction of (relevant, irrelevant) label pairs ranked wrongly (ties count as wrong)",
        reference: "sklearn.metrics.label_ranking_loss",
        inputs: LABEL_RANKING_INPUTS,
        api: "LabelRanking::update / label_ranking_loss",
        params: &[],
    },
    MetricEntry {
        name: "precision-at-1",
        summary: "fraction of queries whose nearest reference embedding shares their label",
        reference: ACCURACY_CALCULATOR,
        inputs: RETRIEVAL_INPUTS,
        api: "retrieval_metrics / RetrievalState (precision_at_1)",
        params: &[DISTANCE, AVG_OF_AVGS],
    },
    MetricEntry {
        name: "r-precision",
        summary: "relevant rows among the R nearest / R, R = reference rows sharing the query's label",
        reference: ACCURACY_CALCULATOR,
        inputs: RETRIEVAL_INPUTS,
        api: "retrieval_metrics / RetrievalState (r_precision)",
        params: &[RETRIEVAL_K, DISTANCE, AVG_OF_AVGS],
    },
    MetricEntry {
        name: "map-at-r",
        summary: "mean average precision at R (Musgrave et al. 2020)",
        reference: ACCURACY_CALCULATOR,
        inputs: RETRIEVAL_INPUTS,
        api: "retrieval_metrics / RetrievalState (map_at_r)",
        params: &[RETRIEVAL_K, DISTANCE, AVG_OF_AVGS],
    },
    MetricEntry {
        name: "retrieval-mean-average-precision",
        summary: "precision summed at each hit within the k nearest, divided by R; and mean reciprocal rank",
        reference: ACCURACY_CALCULATOR,
        inputs: RETRIEVAL_INPUTS,
        api: "retrieval_metrics / RetrievalState (mean_average_precision, mean_reciprocal_rank)",
        params: &[RETRIEVAL_K, DISTANCE, AVG_OF_AVGS],
    },
    MetricEntry {
        name: "recall-at-k",
        summary: "fraction of queries with a reference row of their label among the K nearest; and precision@K",
        reference: "pytorch_metric_learning.utils.accuracy_calculator.precision_at_k",
        inputs: RETRIEVAL_INPUTS,
        api: "retrieval_metrics / RetrievalState (recall_at, precision_at)",
        params: &[RETRIEVAL_K, DISTANCE, AVG_OF_AVGS],
    },
    MetricEntry {
        name: "retrieval-ndcg",
        summary: "NDCG over the k nearest with binary relevance (same label)",
        reference: "sklearn.metrics.ndcg_score",
        inputs: RETRIEVAL_INPUTS,
        api: "retrieval_metrics / RetrievalState (ndcg)",
        params: &[RETRIEVAL_K, DISTANCE, AVG_OF_AVGS],
    },
    MetricEntry {
        name: "knn",
        summary: "exact k nearest neighbours by blocked GEMM (ties by index, self excluded on request)",
        reference: "pytorch_metric_learning.utils.inference.CustomKNN",
        inputs: "query [Nq, D], reference [Nr, D]",
        api: "knn",
        params: &[DISTANCE],
    },
    MetricEntry {
        name: "utilization",
        summary: "Metrix: mean Euclidean distance from each test embedding to its nearest training embedding",
        reference: "scipy.spatial.distance.cdist",
        inputs: "test [Nq, D], train [Nr, D]",
        api: "utilization",
        params: &[],
    },
    MetricEntry {
        name: "icnn-score",
        summary: "ICNN neighbourhood score in (0, 1], higher is better separated (Mendez-Ruiz et al. 2023)",
        reference: "maumruiz/FSL-Loss:algorithms/icnn_loss.py:modified_score",
        inputs: "embeddings [N, D] + labels [N], optional reference [M, D] + reference_labels [M] (raw Euclidean)",
        api: "icnn_score / IcnnState",
        params: &[ICNN_K, ICNN_IPC],
    },
    crate::neural_collapse::ENTRIES[0],
    crate::neural_collapse::ENTRIES[1],
    crate::neural_collapse::ENTRIES[2],
    crate::neural_collapse::ENTRIES[3],
    crate::neural_collapse::ENTRIES[4],
    crate::inductive_bias::ENTRY,
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
            assert!(
                [
                    "sklearn.metrics.",
                    "imblearn.metrics.",
                    "torchmetrics.",
                    "pytorch_metric_learning.",
                    "scipy.",
                    "numpy.",
                    // Authors' code, where no library has the metric (ICNN score).
                    "maumruiz/FSL-Loss:",
                ]
                .iter()
                .any(|p| e.reference.starts_with(p)),
                "{}",
                e.reference
            );
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
                "adjusted" | "drop_intermediate" => p.default.parse::<bool>().is_ok(),
                "weights" => p.default.parse::<crate::KappaWeights>().is_ok(),
                "correction" | "max_fpr" => p.default.parse::<f64>().is_ok(),
                "k" => p.default.parse::<usize>().is_ok() || p.default.parse::<crate::RetrievalK>().is_ok(),
                "thresholds" | "n_bins" | "ipc" => p.default.parse::<usize>().is_ok(),
                "norm" => p.default.parse::<crate::CalibrationNorm>().is_ok(),
                "distance" => p.default.parse::<crate::Distance>().is_ok(),
                "avg_of_avgs" => p.default.parse::<bool>().is_ok(),
                "multi_class" => ["ovr", "ovo"].contains(&p.default),
                "rcond" => p.default.parse::<f64>().is_ok(),
                "global_mean" => ["samples", "class_means"].contains(&p.default),
                "target_error" => p.default == "required",
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
