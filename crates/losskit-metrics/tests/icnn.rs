//! The ICNN score (Mendez-Ruiz et al. 2023) as a metric: values from a torch restatement of the authors'
//! `modified_score` (fixtures/icnn.json, written by tools/fixtures/gen_episodic.py) to 1e-9, including the edge cases
//! (k clamped on tiny sets, a class inside another, a single class, same-class neighbourhoods, ipc < k, a separate
//! reference set); merged states equal one pass; bad input.

use crate::util::{fixture, ints, matrix_f64, num};
use losskit_metrics::{Error, IcnnState, MetricState, icnn_score};
use ndarray::{Array1, Array2, array, s};

#[test]
fn scores_match_the_reference_code() {
    let fx = fixture("icnn.json");
    let cases = fx["cases"].as_array().expect("cases");
    assert!(cases.len() >= 20);
    for c in cases {
        let name = c["name"].as_str().expect("name");
        let x = matrix_f64(&c["origin"]);
        let y = Array1::from(ints(&c["origin_labels"]));
        let k = c["k"].as_u64().expect("k") as usize;
        let ipc = c["ipc"].as_u64().map(|v| v as usize);
        let reference = c.get("target").map(|t| (matrix_f64(t), Array1::from(ints(&c["target_labels"]))));
        let got = icnn_score(x.view(), y.view(), reference.as_ref().map(|(r, l)| (r.view(), l.view())), k, ipc)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let want = num(&c["score"]);
        assert!((got - want).abs() <= 1e-9 * want.abs(), "{name}: got {got:e}, want {want:e}");

        // The state, fed in two batches (and the reference in two), gives the same value.
        let mut a = IcnnState::new(k, ipc).expect("state");
        let mut b = IcnnState::new(k, ipc).expect("state");
        let half = x.nrows() / 2;
        a.update(x.slice(s![..half, ..]), y.slice(s![..half])).expect("update");
        b.update(x.slice(s![half.., ..]), y.slice(s![half..])).expect("update");
        if let Some((r, l)) = &reference {
            let h = r.nrows() / 2;
            a.update_reference(r.slice(s![..h, ..]), l.slice(s![..h])).expect("reference");
            b.update_reference(r.slice(s![h.., ..]), l.slice(s![h..])).expect("reference");
        }
        a.merge(&b).expect("merge");
        let merged = a.compute().expect("compute");
        assert!((merged - want).abs() <= 1e-9 * want.abs(), "{name} merged: got {merged:e}, want {want:e}");
        a.reset();
        assert!(matches!(a.compute(), Err(Error::Empty { .. })));
    }
}

#[test]
fn degenerate_sets_and_identities() {
    // One class: no different-class neighbour anywhere, λ_s = λ_d = γ = 1.
    let x = Array2::from_shape_fn((7, 3), |(i, j)| (i * 3 + j) as f64 * 0.37 % 1.3);
    assert_eq!(icnn_score(x.view(), Array1::<i64>::zeros(7).view(), None, 4, None).expect("score"), 1.0);
    // Three rows: k is clamped to 1 and γ = 1, so the score is at least 1/2.
    let x = array![[0.0_f64, 0.0], [1.0, 0.0], [0.0, 2.0]];
    let v = icnn_score(x.view(), array![0_i64, 1, 0].view(), None, 4, None).expect("score");
    assert!((0.5..=1.0).contains(&v));
    // Relabelling classes (any integers) changes nothing.
    let w = icnn_score(x.view(), array![-5_i64, 70, -5].view(), None, 4, None).expect("score");
    assert_eq!(v, w);
}

#[test]
fn bad_input_gives_typed_errors() {
    let x = array![[0.0_f64, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 3.0]];
    let y = array![0_i64, 1, 0, 1];
    assert!(matches!(icnn_score(x.view(), y.view(), None, 0, None), Err(Error::Parameter { name: "k", .. })));
    assert!(matches!(icnn_score(x.view(), y.view(), None, 2, Some(4)), Err(Error::Parameter { name: "ipc", .. })));
    assert!(matches!(icnn_score(x.slice(s![..2, ..]), y.slice(s![..2]), None, 2, None), Err(Error::Degenerate { .. })));
    assert!(matches!(icnn_score(x.view(), y.slice(s![..3]), None, 2, None), Err(Error::Shape { arg: "labels", .. })));
    let mut bad = x.clone();
    bad[[2, 1]] = f64::NAN;
    assert!(matches!(
        icnn_score(bad.view(), y.view(), None, 2, None),
        Err(Error::NonFinite { arg: "embeddings", index: 5, .. })
    ));
    let r = Array2::<f64>::zeros((4, 3));
    assert!(matches!(
        icnn_score(x.view(), y.view(), Some((r.view(), y.view())), 2, None),
        Err(Error::Shape { arg: "reference", .. })
    ));
    let empty = Array2::<f64>::zeros((0, 2));
    assert!(matches!(
        icnn_score(empty.view(), Array1::<i64>::zeros(0).view(), None, 2, None),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(IcnnState::new(0, None), Err(Error::Parameter { name: "k", .. })));
    let mut st = IcnnState::new(2, None).expect("state");
    st.update(x.view(), y.view()).expect("update");
    assert!(matches!(st.update(r.view(), y.view()), Err(Error::Shape { arg: "embeddings", .. })));
    let other = IcnnState::new(3, None).expect("state");
    assert!(matches!(st.merge(&other), Err(Error::Parameter { name: "k", .. })));
}
