//! Issues 4 and 6: the episodic losses of Mendez-Ruiz et al. (2023), Proto-Triplet and the ICNN loss/score.
//! Reference values and float64 autograd gradients from a torch restatement of the authors' code
//! (fixtures/episodic.json, written by tools/fixtures/gen_episodic.py from maumruiz/FSL-Loss
//! `algorithms/icnn_loss.py`), checked to 1e-9; f32 through the trait forms; central finite differences in f64;
//! a plain-loop Proto-Triplet oracle; degenerate sets; bad input; ±1e4-scale inputs.

use losskit_losses::{
    EmbeddingLoss, EpisodeOutput, Error, IcnnLoss, IcnnMode, ProtoTriplet, Prototypes, ProxyLoss, Reference, icnn_score,
};
use losskit_tensor::gradcheck;
use ndarray::{Array1, Array2, ArrayD, Ix2, array};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use serde_json::Value;

fn fixture() -> Value {
    gradcheck::load_json(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/episodic.json"))
}

fn mat(v: &Value) -> Array2<f64> {
    let rows: Vec<Vec<f64>> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect())
        .collect();
    let (n, d) = (rows.len(), rows[0].len());
    Array2::from_shape_vec((n, d), rows.into_iter().flatten().collect()).unwrap()
}

fn ints(v: &Value) -> Array1<i64> {
    v.as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

#[track_caller]
fn close(what: &str, got: &[f64], want: &[f64], rtol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let tol = rtol * (w.abs() + scale) + 1e-300;
        assert!((g - w).abs() <= tol, "{what}[{i}]: got {g:e}, want {w:e} (tol {tol:e})");
    }
}

#[track_caller]
fn rel(what: &str, got: f64, want: f64, rtol: f64) {
    assert!((got - want).abs() <= rtol * want.abs().max(1e-12), "{what}: got {got:e}, want {want:e}");
}

fn flat(a: &Option<Array2<f64>>) -> Vec<f64> {
    a.as_ref().expect("gradient present").iter().copied().collect()
}

#[track_caller]
fn check_icnn(name: &str, got: &EpisodeOutput<f64>, want: &Value, grads: &[&str]) {
    rel(&format!("{name} score"), got.score.unwrap(), num(&want["score"]), 1e-9);
    rel(&format!("{name} value"), got.value, num(&want["value"]), 1e-9);
    for &g in grads {
        let field = match g {
            "grad_support" => &got.grad_support,
            "grad_queries" => &got.grad_queries,
            _ => &got.grad_prototypes,
        };
        close(&format!("{name} {g}"), &flat(field), &floats(&want[g]), 1e-9);
    }
}

#[test]
fn episodes_match_the_reference_code() {
    let fx = fixture();
    let episodes = fx["episodes"].as_array().unwrap();
    assert!(episodes.len() >= 13);
    for e in episodes {
        let name = e["name"].as_str().unwrap();
        let (s, ys, q, yq) =
            (mat(&e["support"]), ints(&e["support_labels"]), mat(&e["queries"]), ints(&e["query_labels"]));
        let k = e["k"].as_u64().unwrap() as usize;

        // Proto-Triplet through the support means, and against the given prototypes.
        let pt = ProtoTriplet::new().margin(num(&e["margin"]));
        let want = &e["proto_triplet"];
        let got = pt.compute_episode(s.view(), ys.view(), q.view(), yq.view(), true).unwrap();
        rel(&format!("{name} proto-triplet"), got.value, num(&want["value"]), 1e-9);
        close(
            &format!("{name} per_sample"),
            got.per_sample.as_ref().unwrap().as_slice().unwrap(),
            &floats(&want["per_sample"]),
            1e-9,
        );
        for (g, field) in [
            ("grad_queries", &got.grad_queries),
            ("grad_prototypes", &got.grad_prototypes),
            ("grad_support", &got.grad_support),
        ] {
            close(&format!("{name} proto-triplet {g}"), &flat(field), &floats(&want[g]), 1e-9);
        }
        let protos = Prototypes::from_support(s.view(), ys.view()).unwrap();
        assert_eq!(protos.labels, ints(&e["prototype_labels"]));
        close(&format!("{name} prototypes"), protos.prototypes.as_slice().unwrap(), &floats(&e["prototypes"]), 1e-12);
        let direct = pt.compute(q.view(), yq.view(), protos.prototypes.view(), protos.labels.view(), true).unwrap();
        rel(&format!("{name} direct"), direct.value, got.value, 1e-12);
        close(
            &format!("{name} direct grad_prototypes"),
            &flat(&direct.grad_prototypes),
            &floats(&want["grad_prototypes"]),
            1e-9,
        );

        // ICNN in the four modes of get_icnn_loss.
        let icnn = IcnnLoss::new().k(k);
        let got = icnn.support(s.view(), ys.view(), true).unwrap();
        check_icnn(&format!("{name} support"), &got, &e["icnn_support"], &["grad_support"]);
        let got = icnn.query(q.view(), yq.view(), s.view(), ys.view(), true).unwrap();
        check_icnn(&format!("{name} query"), &got, &e["icnn_query"], &["grad_queries", "grad_support"]);
        let got = icnn.query_prototypes(s.view(), ys.view(), q.view(), yq.view(), true).unwrap();
        check_icnn(
            &format!("{name} query-prototypes"),
            &got,
            &e["icnn_query_prototypes"],
            &["grad_queries", "grad_prototypes", "grad_support"],
        );
        let got = icnn.full(s.view(), ys.view(), q.view(), yq.view(), true).unwrap();
        check_icnn(&format!("{name} full"), &got, &e["icnn_full"], &["grad_support", "grad_queries"]);
        // An explicit ipc equal to the inferred one changes nothing.
        let ipc = e["ipc_full"].as_u64().unwrap() as usize;
        let explicit = icnn.clone().ipc(Some(ipc)).full(s.view(), ys.view(), q.view(), yq.view(), false).unwrap();
        assert_eq!(explicit.value, got.value);
        // The dispatcher.
        for (mode, key) in [
            (IcnnMode::Support, "icnn_support"),
            (IcnnMode::Query, "icnn_query"),
            (IcnnMode::QueryPrototypes, "icnn_query_prototypes"),
            (IcnnMode::Full, "icnn_full"),
        ] {
            let got = icnn.compute_episode(mode, s.view(), ys.view(), q.view(), yq.view(), false).unwrap();
            rel(&format!("{name} {key} by mode"), got.value, num(&e[key]["value"]), 1e-9);
            assert!(got.grad_support.is_none() && got.grad_queries.is_none());
        }
    }
}

#[test]
fn scores_match_the_reference_code_including_edge_cases() {
    let fx = fixture();
    for c in fx["scores"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let (o, yo) = (mat(&c["origin"]), ints(&c["origin_labels"]));
        let k = c["k"].as_u64().unwrap() as usize;
        let ipc = c["ipc"].as_u64().map(|v| v as usize);
        let (t, yt) = match c.get("target") {
            Some(t) => (Some(mat(t)), Some(ints(&c["target_labels"]))),
            None => (None, None),
        };
        let target = t.as_ref().zip(yt.as_ref()).map(|(t, y)| Reference { embeddings: t.view(), labels: y.view() });
        let got = icnn_score(o.view(), yo.view(), target, k, ipc, true).unwrap();
        let score = num(&c["score"]);
        rel(&format!("{name} score"), got.score, score, 1e-9);
        // The fixture holds ∂(−ln score); ours is ∂score = −score · ∂(−ln score).
        let want: Vec<f64> = floats(&c["grad_origin"]).iter().map(|g| -g * score).collect();
        close(&format!("{name} grad_origin"), &flat(&got.grad_origin), &want, 1e-9);
        if let Some(gt) = c.get("grad_target") {
            let want: Vec<f64> = floats(gt).iter().map(|g| -g * score).collect();
            close(&format!("{name} grad_target"), &flat(&got.grad_target), &want, 1e-9);
        } else {
            assert!(got.grad_target.is_none());
        }
    }
}

#[test]
fn f32_through_the_trait_forms_matches_the_reference() {
    let fx = fixture();
    for e in fx["episodes"].as_array().unwrap().iter().take(6) {
        let name = e["name"].as_str().unwrap();
        let (s, ys, q, yq) =
            (mat(&e["support"]), ints(&e["support_labels"]), mat(&e["queries"]), ints(&e["query_labels"]));
        let (s32, q32) = (s.mapv(|v| v as f32), q.mapv(|v| v as f32));
        let protos = Prototypes::from_support(s32.view(), ys.view()).unwrap();
        // ProtoNet's prototype w has label w: the proxy form.
        assert_eq!(protos.labels, Array1::from_iter(0..protos.labels.len() as i64));
        let pt = ProtoTriplet::new().margin(num(&e["margin"]));
        let out = ProxyLoss::<f32>::compute(&pt, q32.view(), yq.view(), protos.prototypes.view(), true).unwrap();
        let want = &e["proto_triplet"];
        assert!((out.value as f64 - num(&want["value"])).abs() <= 1e-4 * (1.0 + num(&want["value"])), "{name}");
        let g: Vec<f64> = out.grad.unwrap().iter().map(|&v| v as f64).collect();
        close(&format!("{name} f32 grad"), &g, &floats(&want["grad_queries"]), 1e-4);
        let back = protos.backward(out.grad_proxies.unwrap().view()).unwrap();
        let g: Vec<f64> = back.iter().map(|&v| v as f64).collect();
        close(&format!("{name} f32 grad support"), &g, &floats(&want["grad_support"]), 1e-4);

        let icnn = IcnnLoss::new();
        let out = EmbeddingLoss::<f32>::compute(&icnn, s32.view(), ys.view(), None, true).unwrap();
        let want = &e["icnn_support"];
        assert!((out.value as f64 - num(&want["value"])).abs() <= 1e-4, "{name} f32 icnn");
        let g: Vec<f64> = out.grad.unwrap().iter().map(|&v| v as f64).collect();
        close(&format!("{name} f32 icnn grad"), &g, &floats(&want["grad_support"]), 1e-3);
        let reference = Reference { embeddings: s32.view(), labels: ys.view() };
        let out = EmbeddingLoss::<f32>::compute(&icnn, q32.view(), yq.view(), Some(reference), false).unwrap();
        assert!((out.value as f64 - num(&e["icnn_query"]["value"])).abs() <= 1e-4, "{name} f32 icnn query");
        assert!(out.per_sample.is_none());
    }
}

fn rng(seed: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(seed)
}

fn normal(r: &mut Xoshiro256PlusPlus) -> f64 {
    let u1: f64 = r.random_range(f64::MIN_POSITIVE..1.0);
    let u2: f64 = r.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A way-way episode with `shot` support and `query` queries per class, class centres `spread` apart.
fn episode(
    seed: u64,
    way: usize,
    shot: usize,
    query: usize,
    d: usize,
    spread: f64,
) -> (Array2<f64>, Array1<i64>, Array2<f64>, Array1<i64>) {
    let mut r = rng(seed);
    let centres = Array2::from_shape_simple_fn((way, d), || spread * normal(&mut r));
    let ys: Array1<i64> = (0..way * shot).map(|i| (i / shot) as i64).collect();
    let yq: Array1<i64> = (0..way * query).map(|i| (i / query) as i64).collect();
    let s = Array2::from_shape_fn((way * shot, d), |(i, j)| centres[[ys[i] as usize, j]] + normal(&mut r));
    let q = Array2::from_shape_fn((way * query, d), |(i, j)| centres[[yq[i] as usize, j]] + normal(&mut r));
    (s, ys, q, yq)
}

fn two(a: &ArrayD<f64>) -> Array2<f64> {
    a.clone().into_dimensionality::<Ix2>().unwrap()
}

#[track_caller]
fn gradcheck_ok(what: &str, f: impl FnMut(&ArrayD<f64>) -> f64, x: &Array2<f64>, g: &Array2<f64>) {
    if let Err(m) = gradcheck::check(f, &x.clone().into_dyn(), &g.clone().into_dyn(), gradcheck::Options::default()) {
        panic!("{what}: {m:?}");
    }
}

#[test]
fn gradients_match_finite_differences() {
    let mut proto_checked = 0;
    for seed in 0..4 {
        let shot = if seed % 2 == 0 { 1 } else { 3 };
        let (s, ys, q, yq) = episode(100 + seed, 4, shot, 3, 6, 1.0);
        // Proto-Triplet, away from the hinge: every query at least 1e-3 from it.
        let pt = ProtoTriplet::new();
        let out = pt.compute_episode(s.view(), ys.view(), q.view(), yq.view(), true).unwrap();
        let protos = Prototypes::from_support(s.view(), ys.view()).unwrap();
        let hinge = |q: &Array2<f64>| {
            (0..q.nrows())
                .map(|i| {
                    let d = |w: usize| ((&q.row(i) - &protos.prototypes.row(w)).mapv(|v| v * v).sum() + 1e-6).sqrt();
                    let own = d(yq[i] as usize);
                    let other =
                        (0..protos.labels.len()).filter(|&w| w != yq[i] as usize).map(d).fold(f64::INFINITY, f64::min);
                    (own - other + 0.5).abs()
                })
                .fold(f64::INFINITY, f64::min)
        };
        if hinge(&q) > 1e-3 {
            proto_checked += 1;
            gradcheck_ok(
                "proto-triplet queries",
                |x| pt.compute_episode(s.view(), ys.view(), two(x).view(), yq.view(), false).unwrap().value,
                &q,
                out.grad_queries.as_ref().unwrap(),
            );
            gradcheck_ok(
                "proto-triplet support",
                |x| pt.compute_episode(two(x).view(), ys.view(), q.view(), yq.view(), false).unwrap().value,
                &s,
                out.grad_support.as_ref().unwrap(),
            );
        }
        // ICNN in every mode (random points: every top-k set, min and max is strict at this step).
        let icnn = IcnnLoss::new();
        for mode in [IcnnMode::Support, IcnnMode::Query, IcnnMode::QueryPrototypes, IcnnMode::Full] {
            let out = icnn.compute_episode(mode, s.view(), ys.view(), q.view(), yq.view(), true).unwrap();
            if mode != IcnnMode::Support {
                gradcheck_ok(
                    &format!("icnn {mode:?} queries, seed {seed}"),
                    |x| icnn.compute_episode(mode, s.view(), ys.view(), two(x).view(), yq.view(), false).unwrap().value,
                    &q,
                    out.grad_queries.as_ref().unwrap(),
                );
            }
            gradcheck_ok(
                &format!("icnn {mode:?} support, seed {seed}"),
                |x| icnn.compute_episode(mode, two(x).view(), ys.view(), q.view(), yq.view(), false).unwrap().value,
                &s,
                out.grad_support.as_ref().unwrap(),
            );
        }
    }
    assert!(proto_checked >= 2, "only {proto_checked} Proto-Triplet gradchecks ran");
}

/// Proto-Triplet by plain loops over every (query, prototype) pair, bypassing the implementation's selection.
fn proto_triplet_oracle(q: &Array2<f64>, yq: &Array1<i64>, p: &Array2<f64>, yp: &Array1<i64>, m: f64) -> f64 {
    let mut total = 0.0;
    for i in 0..q.nrows() {
        let mut pos = f64::NEG_INFINITY;
        let mut neg = f64::INFINITY;
        for w in 0..p.nrows() {
            let mut sq = 0.0;
            for j in 0..q.ncols() {
                sq += (q[[i, j]] - p[[w, j]]).powi(2);
            }
            let d = (sq + 1e-6).sqrt();
            if yp[w] == yq[i] { pos = pos.max(d) } else { neg = neg.min(d) }
        }
        total += (pos - neg + m).max(0.0);
    }
    total / q.nrows() as f64
}

#[test]
fn proto_triplet_matches_a_loop_oracle_with_shared_labels_and_any_label_values() {
    let (_, _, q, _) = episode(7, 3, 1, 4, 5, 0.5);
    let p = episode(8, 5, 1, 1, 5, 1.0).0;
    // Two prototypes share label 40 (the positive is the farther one); labels need not be 0..W.
    let yp = array![40_i64, -3, 40, 9, 12];
    let yq = array![40_i64, -3, 9, 12, 40, 40, -3, 9, 12, 40, 40, -3];
    for m in [0.0, 0.5, 3.0] {
        let got = ProtoTriplet::new().margin(m).compute(q.view(), yq.view(), p.view(), yp.view(), false).unwrap();
        rel("oracle", got.value, proto_triplet_oracle(&q, &yq, &p, &yp, m), 1e-13);
    }
}

#[test]
fn hand_checkable_geometry() {
    // 1-D: prototypes at 0 (class 0) and 3 (class 1); the query at 2 of class 0: ℓ = √(4+ε) − √(1+ε) + 0.5.
    let p = array![[0.0_f64], [3.0]];
    let out = ProtoTriplet::new()
        .compute(array![[2.0]].view(), array![0_i64].view(), p.view(), array![0_i64, 1].view(), true)
        .unwrap();
    rel("value", out.value, (4.0_f64 + 1e-6).sqrt() - (1.0_f64 + 1e-6).sqrt() + 0.5, 1e-15);
    // ∂/∂q = 2/√(4+ε) − (−1)/√(1+ε) ≈ 2.
    rel(
        "grad",
        out.grad_queries.unwrap()[[0, 0]],
        2.0 / (4.0_f64 + 1e-6).sqrt() + 1.0 / (1.0_f64 + 1e-6).sqrt(),
        1e-12,
    );
    // A satisfied margin gives 0 and a zero gradient.
    let out = ProtoTriplet::new()
        .compute(array![[0.1]].view(), array![0_i64].view(), p.view(), array![0_i64, 1].view(), true)
        .unwrap();
    assert_eq!(out.value, 0.0);
    assert!(out.grad_queries.unwrap().iter().all(|&g| g == 0.0));
}

#[test]
fn a_single_class_scores_one_with_zero_gradient() {
    let (s, _, _, _) = episode(3, 1, 9, 1, 4, 1.0);
    let ys = Array1::<i64>::zeros(9);
    let out = IcnnLoss::new().support(s.view(), ys.view(), true).unwrap();
    assert_eq!(out.score, Some(1.0));
    assert_eq!(out.value, 0.0);
    assert!(out.grad_support.unwrap().iter().all(|&g| g == 0.0));
}

#[test]
fn the_embedding_form_is_the_support_and_query_modes() {
    let (s, ys, q, yq) = episode(11, 5, 2, 3, 8, 1.0);
    let icnn = IcnnLoss::new().k(3);
    let a = EmbeddingLoss::<f64>::compute(&icnn, s.view(), ys.view(), None, true).unwrap();
    let b = icnn.support(s.view(), ys.view(), true).unwrap();
    assert_eq!(a.value, b.value);
    assert_eq!(a.grad, b.grad_support);
    let r = Reference { embeddings: s.view(), labels: ys.view() };
    let a = EmbeddingLoss::<f64>::compute(&icnn, q.view(), yq.view(), Some(r), true).unwrap();
    let b = icnn.query(q.view(), yq.view(), s.view(), ys.view(), true).unwrap();
    assert_eq!(a.value, b.value);
    assert_eq!(a.grad_reference, b.grad_support);
}

#[test]
fn bad_input_gives_typed_errors() {
    let (s, ys, q, yq) = episode(5, 3, 2, 2, 4, 1.0);
    let pt = ProtoTriplet::new();
    let icnn = IcnnLoss::new();
    // Shapes.
    let q3 = Array2::<f64>::zeros((6, 3));
    assert!(matches!(
        pt.compute_episode(s.view(), ys.view(), q3.view(), yq.view(), false),
        Err(Error::Shape { arg: "queries", .. })
    ));
    assert!(matches!(
        icnn.full(s.view(), ys.view(), q3.view(), yq.view(), false),
        Err(Error::Shape { arg: "queries", .. })
    ));
    let short = array![0_i64, 1];
    assert!(matches!(icnn.support(s.view(), short.view(), false), Err(Error::Shape { arg: "support_labels", .. })));
    assert!(matches!(
        pt.compute(q.view(), short.view(), s.view(), ys.view(), false),
        Err(Error::Shape { arg: "query_labels", .. })
    ));
    let empty = Array2::<f64>::zeros((0, 4));
    assert!(matches!(
        icnn.support(empty.view(), Array1::<i64>::zeros(0).view(), false),
        Err(Error::Empty { arg: "support" })
    ));
    let no_dim = Array2::<f64>::zeros((4, 0));
    assert!(matches!(icnn.support(no_dim.view(), Array1::<i64>::zeros(4).view(), false), Err(Error::Shape { .. })));
    // Finiteness.
    let mut bad = q.clone();
    bad[[1, 2]] = f64::NAN;
    assert!(matches!(
        pt.compute_episode(s.view(), ys.view(), bad.view(), yq.view(), false),
        Err(Error::NonFinite { arg: "queries", index: 6, .. })
    ));
    assert!(matches!(
        icnn.query(bad.view(), yq.view(), s.view(), ys.view(), false),
        Err(Error::NonFinite { arg: "queries", .. })
    ));
    let mut bad = s.clone();
    bad[[0, 0]] = f64::INFINITY;
    assert!(matches!(icnn.support(bad.view(), ys.view(), false), Err(Error::NonFinite { arg: "support", .. })));
    // Labels: a query class with no prototype; prototypes of one class only; out of range in the proxy form.
    let yq_bad = array![0_i64, 0, 1, 1, 2, 7];
    assert!(matches!(
        pt.compute_episode(s.view(), ys.view(), q.view(), yq_bad.view(), false),
        Err(Error::Input { .. })
    ));
    let one = Array1::<i64>::zeros(6);
    assert!(matches!(
        pt.compute_episode(s.view(), one.view(), q.view(), one.view(), false),
        Err(Error::Degenerate { .. })
    ));
    let protos = Prototypes::from_support(s.view(), ys.view()).unwrap();
    assert!(matches!(
        ProxyLoss::<f64>::compute(&pt, q.view(), yq_bad.view(), protos.prototypes.view(), false),
        Err(Error::LabelOutOfRange { label: 7, .. })
    ));
    assert!(matches!(protos.backward(Array2::zeros((2, 4)).view()), Err(Error::Shape { arg: "grad_prototypes", .. })));
    // Too few rows, k = 0, ipc too large, margin.
    let two_rows = s.slice(ndarray::s![..2, ..]).to_owned();
    assert!(matches!(icnn.support(two_rows.view(), array![0_i64, 1].view(), false), Err(Error::Degenerate { .. })));
    assert!(matches!(icnn.clone().k(0).support(s.view(), ys.view(), false), Err(Error::Parameter { name: "k", .. })));
    assert!(matches!(
        icnn.clone().ipc(Some(6)).support(s.view(), ys.view(), false),
        Err(Error::Parameter { name: "ipc", .. })
    ));
    assert!(matches!(icnn_score(s.view(), ys.view(), None, 0, None, false), Err(Error::Parameter { name: "k", .. })));
    assert!(matches!(
        pt.clone().margin(f64::INFINITY).compute_episode(s.view(), ys.view(), q.view(), yq.view(), false),
        Err(Error::Parameter { name: "margin", .. })
    ));
    // Query-prototypes mode with 2 classes has 2 target rows: too few.
    let ys2 = array![0_i64, 0, 0, 1, 1, 1];
    assert!(matches!(
        icnn.query_prototypes(s.view(), ys2.view(), q.view(), ys2.view(), false),
        Err(Error::Degenerate { .. })
    ));
    assert!(IcnnMode::parse("both").is_err());
}

#[test]
fn large_scale_inputs_stay_finite() {
    let (s, ys, q, yq) = episode(9, 5, 2, 3, 16, 1.0);
    for scale in [1e4, -1e4, 1e-4] {
        let (s, q) = (s.mapv(|v| v * scale), q.mapv(|v| v * scale));
        let pt = ProtoTriplet::new().compute_episode(s.view(), ys.view(), q.view(), yq.view(), true).unwrap();
        assert!(pt.value.is_finite());
        assert!(pt.grad_support.unwrap().iter().chain(pt.grad_queries.unwrap().iter()).all(|v| v.is_finite()));
        for mode in [IcnnMode::Support, IcnnMode::Query, IcnnMode::QueryPrototypes, IcnnMode::Full] {
            let out = IcnnLoss::new().compute_episode(mode, s.view(), ys.view(), q.view(), yq.view(), true).unwrap();
            assert!(out.value.is_finite() && out.score.is_some_and(|v| v > 0.0 && v <= 1.0 + 1e-12), "{mode:?}");
            assert!(out.grad_support.unwrap().iter().all(|v| v.is_finite()), "{mode:?}");
        }
        let s32 = s.mapv(|v| v as f32);
        let out = IcnnLoss::new().support(s32.view(), ys.view(), true).unwrap();
        assert!(out.value.is_finite() && out.grad_support.unwrap().iter().all(|v| v.is_finite()));
    }
}
