//! Bad input gives the documented error variant, naming the argument and value, and never panics or changes state.

use losskit_metrics::{
    Average, ClassificationReport, ConfusionMatrix, Error, Labels, MetricState, PrfConfig, ReportConfig,
};
use ndarray::{Array2, array};

fn cm() -> ConfusionMatrix {
    ConfusionMatrix::from_labels(3, array![0, 1, 2, 2].view(), array![0, 2, 2, 1].view()).unwrap()
}

#[test]
fn mismatched_lengths() {
    let mut m = cm();
    let err = m.update(array![0, 1, 2].view(), array![0, 1].view()).unwrap_err();
    assert!(matches!(&err, Error::Shape { arg: "y_pred", got, .. } if got == &vec![2]), "{err:?}");
    assert!(err.to_string().starts_with("y_pred: expected shape"));
    assert_eq!(m, cm());
}

#[test]
fn labels_out_of_range() {
    let mut m = cm();
    let err = m.update(array![0, 3].view(), array![0, 0].view()).unwrap_err();
    assert_eq!(err, Error::LabelOutOfRange { arg: "y_true", label: 3, classes: 3, index: 1 });
    assert_eq!(err.to_string(), "y_true: label 3 at index 1 is out of range 0..3");
    let err = m.update(array![0, 1, 2].view(), array![0, 1, -7].view()).unwrap_err();
    assert_eq!(err, Error::LabelOutOfRange { arg: "y_pred", label: -7, classes: 3, index: 2 });
    let err = m.update(array![i64::MIN].view(), array![i64::MAX].view()).unwrap_err();
    assert!(matches!(err, Error::LabelOutOfRange { arg: "y_true", label: i64::MIN, .. }));
    assert_eq!(m, cm());
}

#[test]
fn empty_batches_are_no_ops_and_empty_states_have_no_metrics() {
    let mut m = cm();
    m.update(array![].view(), array![].view()).unwrap();
    assert_eq!(m, cm());
    let empty = ConfusionMatrix::new(3).unwrap();
    let want = Err(Error::Empty { arg: "y_true" });
    assert_eq!(empty.accuracy(), want);
    assert_eq!(empty.balanced_accuracy(), want);
    assert_eq!(empty.balanced_accuracy_adjusted(), want);
    assert_eq!(empty.f1_score(&PrfConfig::new()).map(|_| ()), want.map(|_: f64| ()));
    assert_eq!(empty.compute().map(|_| ()), Err(Error::Empty { arg: "y_true" }));
    assert_eq!(
        ClassificationReport::new(&empty, &ReportConfig::new()).map(|_| ()),
        Err(Error::Empty { arg: "y_true" })
    );
    assert_eq!(Error::Empty { arg: "y_true" }.to_string(), "y_true: must not be empty");
}

#[test]
fn invalid_construction_and_merge() {
    assert_eq!(ConfusionMatrix::new(0), Err(Error::Parameter { name: "n_classes", value: 0.0, reason: "must be ≥ 1" }));
    assert!(matches!(ConfusionMatrix::from_counts(Array2::zeros((3, 2))), Err(Error::Shape { arg: "counts", .. })));
    let mut m = cm();
    let err = m.merge(&ConfusionMatrix::new(4).unwrap()).unwrap_err();
    assert!(matches!(err, Error::Shape { arg: "other", .. }));
    assert_eq!(m, cm());
}

#[test]
fn invalid_metric_options() {
    let m = cm();
    let err = m.fbeta_score(&PrfConfig::new().beta(-0.5)).unwrap_err();
    assert_eq!(err.to_string(), "parameter beta = -0.5 is invalid: must be ≥ 0 (inf allowed)");
    assert!(m.f_beta(f64::NAN, Default::default()).is_err());
    let err = m.f1_score(&PrfConfig::new().labels(Labels::Given(vec![1, 3]))).unwrap_err();
    assert_eq!(err, Error::LabelOutOfRange { arg: "labels", label: 3, classes: 3, index: 1 });
    assert_eq!(m.f1_score(&PrfConfig::new().labels(Labels::Given(vec![]))), Err(Error::Empty { arg: "labels" }));
    // Three classes occur: average=binary is refused as scikit-learn refuses it.
    let err = m.f1_score(&PrfConfig::new().average(Average::Binary { pos: 1 })).unwrap_err();
    assert!(matches!(&err, Error::Degenerate { what } if what.contains("binary")), "{err:?}");
    let err = m.f1_score(&PrfConfig::new().average(Average::Binary { pos: 3 })).unwrap_err();
    assert_eq!(err, Error::LabelOutOfRange { arg: "pos_label", label: 3, classes: 3, index: 0 });
    let err = ClassificationReport::new(&m, &ReportConfig::new().labels(Labels::Given(vec![5]))).unwrap_err();
    assert!(matches!(err, Error::LabelOutOfRange { arg: "labels", label: 5, .. }));
}

#[test]
fn option_parsers_name_the_parameter() {
    let err = "average".parse::<Average>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "parameter average = \"average\" is invalid: expected none | micro | macro | weighted | binary | samples"
    );
    let err = "2".parse::<losskit_metrics::ZeroDivision>().unwrap_err();
    assert!(err.to_string().starts_with("parameter zero_division = \"2\""));
    let err = "1,x".parse::<Labels>().unwrap_err();
    assert!(err.to_string().starts_with("parameter labels = \"1,x\""));
}
