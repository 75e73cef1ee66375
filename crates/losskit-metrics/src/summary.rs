//! One-call metric reports for the `losskit metrics` command: ordered `(key, value)` pairs whose keys are named
//! after scikit-learn's functions and averaging (`accuracy`, `f1_macro`, `roc_auc`, `roc_auc_ovr_macro`,
//! `average_precision`, `matthews_corrcoef`, `ece`, `map_at_r`, …).

use ndarray::{Array1, ArrayView1, ArrayView2};

use losskit_tensor::{Error, Result, check};

use crate::{
    Average, BinaryRanking, CalibrationError, ConfusionMatrix, Distance, KappaConfig, LabelRanking, Labels,
    MulticlassRanking, MultilabelConfusion, PrfConfig, ProperScores, RetrievalConfig, Score, TopKAccuracy,
};

type Pairs = Vec<(String, f64)>;

fn scalar(s: Score) -> f64 {
    s.scalar().unwrap_or(f64::NAN)
}

fn push(out: &mut Pairs, key: &str, value: f64) {
    out.push((key.to_string(), value));
}

/// Report for binary classification: labels `y_true` \[N\] in {0, 1}, and scores `y_score` \[N\] (higher = positive)
/// and/or hard predictions `y_pred` \[N\] in {0, 1}; without `y_pred`, the prediction is `y_score ≥ threshold`.
///
/// Keys, in order: `accuracy`, `balanced_accuracy`, `precision`, `recall`, `f1`, `specificity`,
/// `geometric_mean`, `matthews_corrcoef`, `cohen_kappa`, `jaccard` (positive class 1, scikit-learn's
/// `average='binary'`), then with scores `roc_auc`, `average_precision`.
///
/// # Errors
/// [`Error::Input`] when neither `y_score` nor `y_pred` is given; the errors of the metrics (mismatched lengths,
/// non-finite scores, labels outside {0, 1}, a single class for `roc_auc`).
pub fn binary_report(
    y_true: ArrayView1<'_, i64>,
    y_score: Option<ArrayView1<'_, f64>>,
    y_pred: Option<ArrayView1<'_, i64>>,
    threshold: f64,
) -> Result<Pairs> {
    let pred: Array1<i64> = match (y_pred, y_score) {
        (Some(p), _) => p.to_owned(),
        (None, Some(s)) => {
            check::shape("y_score", s.shape(), &[Some(y_true.len())])?;
            check::finite("y_score", &s)?;
            s.mapv(|v| (v >= threshold) as i64)
        }
        (None, None) => return Err(Error::Input { what: "binary report needs y_score or y_pred".into() }),
    };
    let cm = ConfusionMatrix::from_labels(2, y_true, pred.view())?;
    let bin = PrfConfig::new().average(Average::Binary { pos: 1 });
    let prf = cm.precision_recall_fscore_support(&bin)?;
    let mut out = Pairs::new();
    push(&mut out, "accuracy", cm.accuracy()?);
    push(&mut out, "balanced_accuracy", cm.balanced_accuracy()?);
    push(&mut out, "precision", scalar(prf.precision));
    push(&mut out, "recall", scalar(prf.recall));
    push(&mut out, "f1", scalar(prf.f_score));
    push(&mut out, "specificity", scalar(cm.specificity_score(&bin)?));
    push(&mut out, "geometric_mean", scalar(cm.geometric_mean_score_averaged(&bin)?));
    push(&mut out, "matthews_corrcoef", cm.matthews_corrcoef()?);
    push(&mut out, "cohen_kappa", cm.cohen_kappa_score(&KappaConfig::new())?);
    push(&mut out, "jaccard", scalar(cm.jaccard_score(&bin)?));
    if let Some(s) = y_score {
        let mut r = BinaryRanking::new();
        r.update(y_true, s, None)?;
        push(&mut out, "roc_auc", r.roc_auc(None)?);
        push(&mut out, "average_precision", r.average_precision()?);
    }
    Ok(out)
}

/// Report for multiclass classification over `n_classes` classes: `y_true` \[N\], and scores `y_score`
/// \[N, n_classes\] and/or predictions `y_pred` \[N\]; without `y_pred`, the prediction is the arg-max score (first
/// maximum).
///
/// Keys, in order: `accuracy`, `balanced_accuracy`, `precision_macro`, `recall_macro`, `f1_macro`,
/// `precision_micro`, `recall_micro`, `f1_micro`, `precision_weighted`, `recall_weighted`, `f1_weighted`,
/// `matthews_corrcoef`, `cohen_kappa`, `jaccard_macro`, `geometric_mean`, then with scores `top_2_accuracy` (when
/// n_classes > 2), `average_precision_macro`, and when the rows are probabilities (sum to 1)
/// `roc_auc_ovr_macro`, `roc_auc_ovr_weighted`, `roc_auc_ovo_macro`, `roc_auc_ovo_weighted`.
///
/// # Errors
/// [`Error::Input`] when neither `y_score` nor `y_pred` is given; the metrics' errors (including a class absent from
/// `y_true` when scores are given: multiclass ROC-AUC and AP need every class).
pub fn multiclass_report(
    n_classes: usize,
    y_true: ArrayView1<'_, i64>,
    y_score: Option<ArrayView2<'_, f64>>,
    y_pred: Option<ArrayView1<'_, i64>>,
) -> Result<Pairs> {
    let pred: Array1<i64> = match (y_pred, y_score) {
        (Some(p), _) => p.to_owned(),
        (None, Some(s)) => {
            check::shape("y_score", s.shape(), &[Some(y_true.len()), Some(n_classes)])?;
            check::finite("y_score", &s)?;
            s.rows()
                .into_iter()
                .map(|r| {
                    let mut best = 0;
                    for (j, &v) in r.iter().enumerate() {
                        if v > r[best] {
                            best = j;
                        }
                    }
                    best as i64
                })
                .collect()
        }
        (None, None) => return Err(Error::Input { what: "multiclass report needs y_score or y_pred".into() }),
    };
    let cm = ConfusionMatrix::from_labels(n_classes, y_true, pred.view())?;
    let mut out = Pairs::new();
    push(&mut out, "accuracy", cm.accuracy()?);
    push(&mut out, "balanced_accuracy", cm.balanced_accuracy()?);
    for (name, avg) in [("macro", Average::Macro), ("micro", Average::Micro), ("weighted", Average::Weighted)] {
        let prf = cm.precision_recall_fscore_support(&PrfConfig::new().average(avg))?;
        push(&mut out, &format!("precision_{name}"), scalar(prf.precision));
        push(&mut out, &format!("recall_{name}"), scalar(prf.recall));
        push(&mut out, &format!("f1_{name}"), scalar(prf.f_score));
    }
    push(&mut out, "matthews_corrcoef", cm.matthews_corrcoef()?);
    push(&mut out, "cohen_kappa", cm.cohen_kappa_score(&KappaConfig::new())?);
    push(&mut out, "jaccard_macro", scalar(cm.jaccard_score(&PrfConfig::new())?));
    push(&mut out, "geometric_mean", cm.geometric_mean_score(&Labels::Present, 0.0)?);
    if let Some(s) = y_score {
        if n_classes > 2 {
            let mut top = TopKAccuracy::new(2, n_classes)?;
            top.update(y_true, s)?;
            push(&mut out, "top_2_accuracy", top.accuracy()?);
        }
        let mut r = MulticlassRanking::new(n_classes)?;
        r.update(y_true, s)?;
        push(&mut out, "average_precision_macro", scalar(r.average_precision(Average::Macro)?));
        match r.roc_auc_ovr(Average::Macro) {
            Ok(v) => {
                push(&mut out, "roc_auc_ovr_macro", scalar(v));
                push(&mut out, "roc_auc_ovr_weighted", scalar(r.roc_auc_ovr(Average::Weighted)?));
                push(&mut out, "roc_auc_ovo_macro", r.roc_auc_ovo(Average::Macro)?);
                push(&mut out, "roc_auc_ovo_weighted", r.roc_auc_ovo(Average::Weighted)?);
            }
            // Scores that are not probabilities: no ROC-AUC (scikit-learn refuses them).
            Err(Error::Input { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Report for multi-label classification from indicator matrices `y_true`, `y_pred` \[N, L\] of 0/1.
///
/// Keys, in order: `subset_accuracy`, `hamming_loss`, then `precision_A`, `recall_A`, `f1_A` and `jaccard_A` for A
/// in `micro`, `macro`, `weighted`, `samples`.
///
/// # Errors
/// The errors of [`MultilabelConfusion::update`] and its metrics.
pub fn multilabel_report(y_true: ArrayView2<'_, i64>, y_pred: ArrayView2<'_, i64>) -> Result<Pairs> {
    let mut m = MultilabelConfusion::new(y_true.ncols())?;
    m.update(y_true, y_pred)?;
    let mut out = Pairs::new();
    push(&mut out, "subset_accuracy", m.subset_accuracy()?);
    push(&mut out, "hamming_loss", m.hamming_loss()?);
    for (name, avg) in [
        ("micro", Average::Micro),
        ("macro", Average::Macro),
        ("weighted", Average::Weighted),
        ("samples", Average::Samples),
    ] {
        let cfg = PrfConfig::new().average(avg);
        let prf = m.precision_recall_fscore_support(&cfg)?;
        push(&mut out, &format!("precision_{name}"), scalar(prf.precision));
        push(&mut out, &format!("recall_{name}"), scalar(prf.recall));
        push(&mut out, &format!("f1_{name}"), scalar(prf.f_score));
        push(&mut out, &format!("jaccard_{name}"), scalar(m.jaccard_score(&cfg)?));
    }
    Ok(out)
}

/// Calibration keys for binary probabilities of class 1 `y_prob` \[N\] in \[0, 1\]: `brier_score_loss`, `log_loss`,
/// `ece`, `mce` (15 bins, torchmetrics' binary convention).
///
/// # Errors
/// The errors of [`ProperScores::update_binary`] and [`CalibrationError::update_binary`] (a value outside \[0, 1\]
/// included).
pub fn binary_calibration_report(y_true: ArrayView1<'_, i64>, y_prob: ArrayView1<'_, f64>) -> Result<Pairs> {
    let mut ps = ProperScores::new();
    ps.update_binary(y_true, y_prob)?;
    let mut ce = CalibrationError::new(15)?;
    ce.update_binary(y_true, y_prob)?;
    calibration_pairs(&ps, &ce)
}

/// Calibration keys for multiclass probabilities `y_prob` \[N, C\] in \[0, 1\]: `brier_score_loss`, `log_loss`,
/// `ece`, `mce` (15 bins on the top-1 confidence).
///
/// # Errors
/// The errors of [`ProperScores::update_multiclass`] and [`CalibrationError::update_multiclass`].
pub fn multiclass_calibration_report(y_true: ArrayView1<'_, i64>, y_prob: ArrayView2<'_, f64>) -> Result<Pairs> {
    let mut ps = ProperScores::new();
    ps.update_multiclass(y_true, y_prob)?;
    let mut ce = CalibrationError::new(15)?;
    ce.update_multiclass(y_true, y_prob)?;
    calibration_pairs(&ps, &ce)
}

fn calibration_pairs(ps: &ProperScores, ce: &CalibrationError) -> Result<Pairs> {
    let mut out = Pairs::new();
    push(&mut out, "brier_score_loss", ps.brier_score()?);
    push(&mut out, "log_loss", ps.log_loss()?);
    push(&mut out, "ece", ce.expected()?);
    push(&mut out, "mce", ce.maximum()?);
    Ok(out)
}

/// Multi-label ranking keys from indicators `y_true` and scores `y_score` \[N, L\]:
/// `label_ranking_average_precision_score`, `coverage_error`, `label_ranking_loss`.
///
/// # Errors
/// The errors of [`LabelRanking::update`].
pub fn multilabel_ranking_report(y_true: ArrayView2<'_, i64>, y_score: ArrayView2<'_, f64>) -> Result<Pairs> {
    let mut r = LabelRanking::new(y_true.ncols())?;
    r.update(y_true, y_score)?;
    let mut out = Pairs::new();
    push(&mut out, "label_ranking_average_precision_score", r.label_ranking_average_precision()?);
    push(&mut out, "coverage_error", r.coverage_error()?);
    push(&mut out, "label_ranking_loss", r.label_ranking_loss()?);
    Ok(out)
}

/// k of the `icnn_score` key of [`retrieval_report`] (the authors' `modified_score` default; ipc automatic, k + 1).
pub const REPORT_ICNN_K: usize = 4;

/// Retrieval keys ([`RetrievalReport::to_pairs`](crate::RetrievalReport::to_pairs): `precision_at_1`,
/// `r_precision`, `map_at_r`, …) of `query` rows against `reference` rows, or against themselves without a reference,
/// then `icnn_score`: [`icnn_score`](crate::icnn_score) with k = [`REPORT_ICNN_K`] on raw Euclidean distances
/// (whatever `cfg`'s distance), NaN when there are fewer than 3 reference rows.
///
/// # Errors
/// The errors of [`retrieval_metrics`](crate::retrieval_metrics).
pub fn retrieval_report(
    query: ArrayView2<'_, f64>,
    query_labels: ArrayView1<'_, i64>,
    reference: Option<(ArrayView2<'_, f64>, ArrayView1<'_, i64>)>,
    cfg: &RetrievalConfig,
) -> Result<Pairs> {
    let same = reference.is_none();
    let (t, yt) = reference.unwrap_or((query, query_labels));
    // Under Euclidean distance the retrieval search already ranks the neighbours the score needs (its first ipc, or
    // ipc + 1 against a separate reference, the first of which the score drops): keep them instead of searching again.
    let plan =
        crate::icnn::clamp_k_ipc(REPORT_ICNN_K, None, t.nrows()).ok().filter(|_| cfg.distance == Distance::Euclidean);
    let need = plan.map_or(0, |(_, ipc)| ipc + usize::from(!same));
    let (report, kept) = crate::retrieval::retrieval_metrics_keeping(query, query_labels, reference, cfg, need)?;
    let mut out = report.to_pairs();
    let icnn = match (plan, kept) {
        (Some((k, ipc)), Some(kept)) => {
            let skip = usize::from(!same);
            crate::icnn::from_neighbors(query, query_labels, t, yt, k, ipc, |i| &kept[i * need + skip..(i + 1) * need])
        }
        // The score ranks each row's neighbours after dropping the first: under 3 reference rows it does not exist.
        _ => match crate::icnn_score(query, query_labels, reference, REPORT_ICNN_K, None) {
            Ok(v) => v,
            Err(Error::Degenerate { .. }) => f64::NAN,
            Err(e) => return Err(e),
        },
    };
    push(&mut out, "icnn_score", icnn);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, array};

    #[test]
    fn report_icnn_score_from_the_retrieval_search_equals_the_direct_score() {
        // A deterministic scatter with a few exact duplicates (ties) and 7 classes; the report reuses the retrieval
        // neighbours under Euclidean distance and searches again under cosine: both must equal `icnn_score`.
        let n = 300;
        let x = Array2::from_shape_fn((n, 6), |(i, j)| (((i * 7919 + j * 104_729) % 1009) as f64 / 97.0).sin() * 3.0);
        let mut x = x;
        for i in (0..n).step_by(37) {
            let r = x.row((i + 5) % n).to_owned();
            x.row_mut(i).assign(&r);
        }
        let y = Array1::from_shape_fn(n, |i| ((i * 31) % 7) as i64);
        let value = |pairs: &Pairs| pairs.iter().find(|(k, _)| k == "icnn_score").map(|(_, v)| *v).unwrap();
        for distance in [Distance::Euclidean, Distance::Cosine] {
            let cfg = RetrievalConfig::new().distance(distance);
            let same = retrieval_report(x.view(), y.view(), None, &cfg).unwrap();
            let direct = crate::icnn_score(x.view(), y.view(), None, REPORT_ICNN_K, None).unwrap();
            assert!((value(&same) - direct).abs() <= 1e-12, "{distance:?}: {} vs {direct}", value(&same));
            let (q, r) = (x.slice(ndarray::s![..100, ..]), x.slice(ndarray::s![100.., ..]));
            let (yq, yr) = (y.slice(ndarray::s![..100]), y.slice(ndarray::s![100..]));
            let sep = retrieval_report(q, yq, Some((r, yr)), &cfg).unwrap();
            let direct = crate::icnn_score(q, yq, Some((r, yr)), REPORT_ICNN_K, None).unwrap();
            assert!((value(&sep) - direct).abs() <= 1e-12, "{distance:?} reference: {} vs {direct}", value(&sep));
        }
    }

    #[test]
    fn binary_report_keys_and_values() {
        let t = array![0, 0, 1, 1];
        let s = array![0.1, 0.4, 0.35, 0.8];
        let r = binary_report(t.view(), Some(s.view()), None, 0.5).unwrap();
        let keys: Vec<&str> = r.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys[0], "accuracy");
        assert_eq!(keys[keys.len() - 2..], ["roc_auc", "average_precision"]);
        // Predictions [0, 0, 0, 1]: accuracy 3/4, recall 1/2.
        assert_eq!(r[0].1, 0.75);
        assert_eq!(r.iter().find(|(k, _)| k == "recall").unwrap().1, 0.5);
        assert_eq!(r.iter().find(|(k, _)| k == "roc_auc").unwrap().1, 0.75);
        assert!(binary_report(t.view(), None, None, 0.5).is_err());
    }

    #[test]
    fn multiclass_report_skips_roc_auc_for_non_probabilities() {
        let t = array![0, 1, 2, 2];
        let s = array![[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 1.0, 2.0], [1.0, 0.0, 0.5]];
        let r = multiclass_report(3, t.view(), Some(s.view()), None).unwrap();
        assert!(r.iter().all(|(k, _)| !k.starts_with("roc_auc")));
        assert_eq!(r[0], ("accuracy".to_string(), 0.75));
        let p = s.mapv(f64::exp);
        let p = &p / &p.sum_axis(ndarray::Axis(1)).insert_axis(ndarray::Axis(1));
        let r = multiclass_report(3, t.view(), Some(p.view()), None).unwrap();
        assert_eq!(r.last().unwrap().0, "roc_auc_ovo_weighted");
    }

    #[test]
    fn calibration_and_ranking_keys() {
        let r = binary_calibration_report(array![0, 1].view(), array![0.25, 1.0].view()).unwrap();
        let keys: Vec<&str> = r.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["brier_score_loss", "log_loss", "ece", "mce"]);
        assert_eq!(r[0].1, 0.03125);
        assert!(binary_calibration_report(array![0].view(), array![1.5].view()).is_err());
        let r =
            multilabel_ranking_report(array![[1, 0], [0, 1]].view(), array![[0.9, 0.1], [0.8, 0.2]].view()).unwrap();
        assert_eq!(r[0], ("label_ranking_average_precision_score".to_string(), 0.75));
        assert_eq!(r[2], ("label_ranking_loss".to_string(), 0.5));
    }

    #[test]
    fn multilabel_report_keys() {
        let r = multilabel_report(array![[1, 0], [0, 1]].view(), array![[1, 0], [1, 1]].view()).unwrap();
        assert_eq!(r[0], ("subset_accuracy".to_string(), 0.5));
        assert_eq!(r[1], ("hamming_loss".to_string(), 0.25));
        assert_eq!(r.len(), 2 + 4 * 4);
    }
}
