//! Evaluation metrics as mergeable states (layer 1, over `losskit-tensor`).
//!
//! Every metric is a state with `update` (one batch), `merge` (another state, so shards on many workers reduce to
//! one result) and `compute`/accessors ([`MetricState`]); merging any split of the data gives the same result as one
//! pass.
//!
//! The confusion-matrix family: a [`ConfusionMatrix`] counts (true, predicted) label pairs; from it come
//! [`accuracy`](ConfusionMatrix::accuracy), [`balanced_accuracy`](ConfusionMatrix::balanced_accuracy) (and its
//! adjusted form), and precision, recall, F-β and support
//! ([`precision_recall_fscore_support`](ConfusionMatrix::precision_recall_fscore_support) with a [`PrfConfig`]:
//! [`Average`], [`Labels`], [`ZeroDivision`], β), per class or averaged, reproducing scikit-learn's
//! `sklearn.metrics` functions of the same names to 1e-12, including their zero-division and label-selection
//! rules. A [`ClassificationReport`] gathers them all, with ordered key/value pairs and JSON. The same matrix gives
//! specificity and G-mean (imbalanced-learn), Matthews correlation, Cohen's kappa ([`KappaConfig`]) and Jaccard;
//! [`MultilabelConfusion`] does multi-label data (with `samples` averaging, Hamming loss, subset accuracy) and
//! [`TopKAccuracy`] top-k accuracy.
//!
//! Ranking: [`BinaryRanking`] (ROC curve, ROC-AUC with partial AUC, PR curve, average precision, exact, ties as
//! scikit-learn), [`MulticlassRanking`] (one-vs-rest / one-vs-one) and the bounded-memory [`BinnedRanking`]
//! (torchmetrics' fixed thresholds).
//!
//! Calibration: [`CalibrationError`] (expected / RMS / maximum calibration error with torchmetrics' binning, and the
//! [`ReliabilityDiagram`]) and [`ProperScores`] (scikit-learn's Brier score and log loss). Multi-label ranking:
//! [`LabelRanking`] (label ranking average precision, coverage error, ranking loss). Retrieval: exact [`knn`] by
//! blocked GEMM, [`retrieval_metrics`] / [`RetrievalState`] (precision@1, R-precision, MAP@R, MAP, MRR as
//! pytorch-metric-learning's `AccuracyCalculator`, plus Recall@K, Precision@K, NDCG), Metrix's [`utilization`] and
//! the ICNN neighbourhood score of Mendez-Ruiz et al. (2023) ([`icnn_score`], [`IcnnState`]).
//!
//! [`summary`] builds the reports of `losskit metrics`. [`registry::METRICS`]
//! lists every metric with its parameters and reference implementation.
//!
//! ```
//! use losskit_metrics::{Average, ConfusionMatrix, Labels, MetricState, PrfConfig, Score, ZeroDivision};
//! use ndarray::array;
//!
//! // Two shards, e.g. two workers; class 3 never occurs.
//! let mut cm = ConfusionMatrix::new(4)?;
//! cm.update(array![0_i64, 0, 1, 2].view(), array![0_i64, 1, 1, 2].view())?;
//! let mut other = ConfusionMatrix::new(4)?;
//! other.update(array![2_i64, 1].view(), array![0_i64, 1].view())?;
//! MetricState::merge(&mut cm, &other)?;
//!
//! assert_eq!(cm.accuracy()?, 4.0 / 6.0);
//! // scikit-learn's default: macro over the labels present (0, 1, 2).
//! let f1 = cm.f1_score(&PrfConfig::new())?;
//! assert_eq!(f1, Score::Scalar((0.5 + 0.8 + 2.0 / 3.0) / 3.0));
//! // Counting every class: the absent class 3 adds F1 = 0/0 → NaN, left out of the mean.
//! let all = PrfConfig::new().labels(Labels::All).zero_division(ZeroDivision::Nan);
//! assert_eq!(cm.f1_score(&all)?, f1);
//! // Per class, and the report.
//! let per_class = cm.recall_score(&PrfConfig::new().average(Average::None))?;
//! assert_eq!(per_class.values(), &[0.5, 1.0, 0.5]);
//! assert_eq!(cm.compute()?.to_pairs()[0], ("accuracy".to_string(), 4.0 / 6.0));
//! # Ok::<(), losskit_metrics::Error>(())
//! ```
//!
//! This crate must never depend on the losses, samplers, models, CUDA or CLI crates, print, or read files.
//!
//! # Features
//! None: the crate has no optional features.
#![doc(test(attr(deny(warnings))))]

mod agreement;
mod calibration;
mod confusion;
mod icnn;
mod inductive_bias;
mod label_ranking;
mod multilabel;
mod neural_collapse;
mod prf;
mod ranking;
pub mod registry;
mod report;
mod retrieval;
mod state;
pub mod summary;
mod topk;

pub use agreement::{KappaConfig, KappaWeights};
pub use calibration::{CalibrationError, CalibrationNorm, ProperScores, ReliabilityDiagram};
pub use confusion::ConfusionMatrix;
pub use icnn::{IcnnState, icnn_score};
pub use inductive_bias::{InductiveBias, InductiveBiasState, NoncentralChi2, inductive_bias};
pub use label_ranking::LabelRanking;
pub use losskit_tensor::{Error, Result};
pub use multilabel::MultilabelConfusion;
pub use neural_collapse::{GlobalMean, NccMismatch, NeuralCollapse, NeuralCollapseConfig, NeuralCollapseReport};
pub use prf::{Average, Labels, PrfConfig, PrfScores, Score, Undefined, ZeroDivision};
pub use ranking::{
    BinaryRanking, BinnedRanking, ClfCurve, MulticlassRanking, PrCurve, RocCurve, average_precision_score,
    roc_auc_score,
};
pub use registry::{METRICS, MetricEntry, MetricParam};
pub use report::{ClassificationReport, ReportConfig};
pub use retrieval::{
    Distance, Neighbors, RetrievalConfig, RetrievalK, RetrievalReport, RetrievalState, knn, retrieval_metrics,
    utilization,
};
pub use state::MetricState;
pub use topk::TopKAccuracy;
