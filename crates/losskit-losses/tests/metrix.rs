//! Issue 4: Metrix (embedding mixup) against fixtures/metrix.json from tools/fixtures/gen_metrix.py (the official
//! contrastive code, the paper's multi-similarity and proxy-anchor forms) in f64 and f32, f64 gradchecks of every
//! base × mode × reduction, seeded determinism and the Beta(α, α) draws, identities and bad input; and the registry
//! forms of UNPG and SBCL (vector parameters, views) against their direct APIs.

use losskit_losses::{
    EmbeddingLoss, Error, Metrix, MetrixBase, MetrixDraw, MetrixMode, ProxyLoss, Real, Reduction, Reference, Sbcl,
    Unpg, UnpgBase, registry,
};
use losskit_tensor::gradcheck;
use ndarray::{Array1, Array2, ArrayD, Ix2, array};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use serde_json::Value;

fn rng(seed: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(seed)
}

fn normal(r: &mut Xoshiro256PlusPlus) -> f64 {
    let u1: f64 = r.random_range(f64::MIN_POSITIVE..1.0);
    let u2: f64 = r.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn emb(seed: u64, n: usize, d: usize) -> Array2<f64> {
    let mut r = rng(seed);
    Array2::from_shape_simple_fn((n, d), || normal(&mut r))
}

fn labels(seed: u64, n: usize, c: i64) -> Array1<i64> {
    let mut r = rng(seed);
    Array1::from_shape_simple_fn(n, || r.random_range(0..c))
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
    assert!((got - want).abs() <= rtol * want.abs().max(1e-300), "{what}: got {got:e}, want {want:e}");
}

fn flat<F: Real>(a: &Array2<F>) -> Vec<f64> {
    a.iter().map(|v| v.f64()).collect()
}

fn floats(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(a) => a.iter().flat_map(floats).collect(),
        Value::Number(x) => vec![x.as_f64().expect("number")],
        other => panic!("not a number: {other}"),
    }
}

fn matrix(v: &Value) -> Array2<f64> {
    let rows = v.as_array().expect("matrix");
    let c = rows.first().and_then(Value::as_array).map_or(0, Vec::len);
    Array2::from_shape_vec((rows.len(), c), floats(v)).expect("rectangular")
}

fn ints(v: &Value) -> Array1<i64> {
    v.as_array().expect("ints").iter().map(|x| x.as_i64().expect("int")).collect()
}

fn to2(v: &ArrayD<f64>) -> Array2<f64> {
    v.clone().into_dimensionality::<Ix2>().expect("2-D")
}

fn load(name: &str) -> Value {
    gradcheck::load_json(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR")))
}

const OPTS: gradcheck::Options = gradcheck::Options { step: 1e-6, rtol: 1e-5, atol: 1e-7 };

/// The registry's metrix built from `pairs` (parameters as the command line gives them).
fn from_registry(pairs: &[(String, String)]) -> Metrix {
    let e = registry::find("metrix").expect("registered");
    let p = e.params(pairs).expect("params");
    Metrix::from_params(&p).expect("build")
}

// ---------------------------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------------------------

fn metrix_fixture<F: Real>(rtol: f64) {
    let f = load("metrix.json");
    let cases = f["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 13);
    let mut seen = std::collections::BTreeSet::new();
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let mut pairs: Vec<(String, String)> = case["params"]
            .as_object()
            .expect("params")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().expect("text").to_string()))
            .collect();
        pairs.push(("reduction".into(), case["reduction"].as_str().expect("reduction").into()));
        let m = from_registry(&pairs);
        let draw = m.seeded_draw().expect("draw");
        assert_eq!(Some(draw.lambda), m.lambda, "{name}: a fixed λ is the draw");
        seen.insert((format!("{:?}", m.base), format!("{:?}", draw.mode), format!("{:?}", m.reduction)));
        let x = matrix(&case["embeddings"]).mapv(F::c);
        let y = ints(&case["labels"]);
        let what = |p: &str| format!("{name} ({}) {p}", F::NAME);
        let (value, per, grad) = if let Some(w) = case.get("proxies") {
            let w = matrix(w).mapv(F::c);
            let out = ProxyLoss::<F>::compute(&m, x.view(), y.view(), w.view(), true).expect(name);
            let at = m.compute_proxy_at(draw, x.view(), y.view(), w.view(), true).expect(name);
            assert_eq!(out, at, "{name}: the trait method is the core at the seeded draw");
            close(&what("grad_proxies"), &flat(&out.grad_proxies.expect("g")), &floats(&case["grad_proxies"]), rtol);
            (out.value, out.per_sample, out.grad)
        } else {
            let out = EmbeddingLoss::<F>::compute(&m, x.view(), y.view(), None, true).expect(name);
            let at = m.compute_embedding_at(draw, x.view(), y.view(), true).expect(name);
            assert_eq!(out, at, "{name}: the trait method is the core at the seeded draw");
            (out.value, out.per_sample, out.grad)
        };
        rel(&what("value"), value.f64(), case["value"].as_f64().expect("value"), rtol);
        close(&what("grad"), &flat(&grad.expect("grad")), &floats(&case["grad"]), rtol);
        if let Some(p) = case.get("per_sample") {
            let per: Vec<f64> = per.expect("per-sample").iter().map(|v| v.f64()).collect();
            close(&what("per_sample"), &per, &floats(p), rtol);
        }
    }
    assert_eq!(seen.len(), 12, "twelve of the base × mode × reduction combinations");
}

#[test]
fn metrix_matches_the_official_code_and_the_paper_forms_f64() {
    metrix_fixture::<f64>(1e-9);
}

#[test]
fn metrix_matches_the_official_code_and_the_paper_forms_f32() {
    metrix_fixture::<f32>(3e-4);
}

// ---------------------------------------------------------------------------------------------------------------
// Gradients
// ---------------------------------------------------------------------------------------------------------------

fn configs() -> Vec<Metrix> {
    let mut v = Vec::new();
    for base in [MetrixBase::Contrastive, MetrixBase::MultiSimilarity, MetrixBase::ProxyAnchor] {
        for mode in [MetrixMode::PositiveNegative, MetrixMode::AnchorNegative] {
            for red in [Reduction::Mean, Reduction::Sum, Reduction::None] {
                v.push(
                    Metrix::new()
                        .base(base)
                        .mode(Some(mode))
                        .multi_similarity(2.0, 10.0, 0.5)
                        .proxy_anchor(4.0, 0.1)
                        .neg_margin(0.9)
                        .reduction(red),
                );
            }
        }
    }
    v
}

#[test]
fn metrix_gradients_match_finite_differences() {
    for m in configs() {
        // Seeded draws of λ; labels with singletons so that both modes have pairs to mix.
        for (seed, n, d, c) in [(1_u64, 9, 4, 5), (2, 12, 5, 7), (3, 7, 3, 4)] {
            let m = m.clone().seed(seed);
            let x = emb(seed, n, d);
            let y = labels(seed + 100, n, c);
            let check = |name: &str, f: &dyn Fn(&ArrayD<f64>) -> f64, at: &Array2<f64>, g: Array2<f64>| {
                if let Err(e) = gradcheck::check(f, &at.clone().into_dyn(), &g.into_dyn(), OPTS) {
                    panic!("{m:?} seed {seed} {name}: {e:?}");
                }
            };
            if m.base == MetrixBase::ProxyAnchor {
                let w = emb(seed + 50, c as usize, d);
                let out = ProxyLoss::<f64>::compute(&m, x.view(), y.view(), w.view(), true).expect("metrix");
                let val = |x: &Array2<f64>, w: &Array2<f64>| {
                    ProxyLoss::<f64>::compute(&m, x.view(), y.view(), w.view(), false).expect("value").value
                };
                check("embeddings", &|v| val(&to2(v), &w), &x, out.grad.expect("g"));
                check("proxies", &|v| val(&x, &to2(v)), &w, out.grad_proxies.expect("g"));
            } else {
                let out = EmbeddingLoss::<f64>::compute(&m, x.view(), y.view(), None, true).expect("metrix");
                let val = |v: &ArrayD<f64>| {
                    EmbeddingLoss::<f64>::compute(&m, to2(v).view(), y.view(), None, false).expect("value").value
                };
                check("embeddings", &val, &x, out.grad.expect("g"));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Draws and determinism
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn every_form_gives_the_same_bits_on_any_thread_count() {
    // 70 anchors: the mixed part's gradient runs in fixed runs of anchors, computed in parallel.
    let x = emb(8, 70, 6);
    let y = labels(9, 70, 9);
    let proxies = emb(10, 9, 6);
    let pool = |k: usize| rayon::ThreadPoolBuilder::new().num_threads(k).build().expect("pool");
    for m in configs() {
        let m = m.lambda(Some(0.3));
        if m.base == MetrixBase::ProxyAnchor {
            let run = |k| {
                pool(k).install(|| ProxyLoss::<f64>::compute(&m, x.view(), y.view(), proxies.view(), true)).expect("p")
            };
            assert_eq!(run(1), run(3), "{m:?}");
        } else {
            let run =
                |k| pool(k).install(|| EmbeddingLoss::<f64>::compute(&m, x.view(), y.view(), None, true)).expect("e");
            assert_eq!(run(1), run(3), "{m:?}");
        }
    }
}

#[test]
fn seeded_draws_are_deterministic_and_follow_beta() {
    let m = Metrix::new();
    let x = emb(5, 10, 4);
    let y = labels(6, 10, 4);
    let a = EmbeddingLoss::<f64>::compute(&m, x.view(), y.view(), None, true).expect("a");
    let b = EmbeddingLoss::<f64>::compute(&m, x.view(), y.view(), None, true).expect("b");
    assert_eq!(a, b, "same seed, same result");
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("pool");
    assert_eq!(pool.install(|| EmbeddingLoss::<f64>::compute(&m, x.view(), y.view(), None, true)).expect("1"), a);
    // The seed decides the draw; different seeds give different draws.
    let draws: Vec<MetrixDraw> = (0..20).map(|s| m.clone().seed(s).seeded_draw().expect("draw")).collect();
    assert!(draws.windows(2).any(|w| w[0].lambda != w[1].lambda));
    assert!(draws.iter().any(|d| d.mode == MetrixMode::PositiveNegative));
    assert!(draws.iter().any(|d| d.mode == MetrixMode::AnchorNegative));
    // One generator across iterations: λ ~ Beta(2, 2) (mean 1/2, variance 1/20), a fair coin for the mode.
    let mut r = rng(77);
    let many: Vec<MetrixDraw> = (0..20_000).map(|_| m.draw(&mut r).expect("draw")).collect();
    let mean = many.iter().map(|d| d.lambda).sum::<f64>() / many.len() as f64;
    let var = many.iter().map(|d| (d.lambda - mean).powi(2)).sum::<f64>() / many.len() as f64;
    assert!((mean - 0.5).abs() < 0.01, "mean {mean}");
    assert!((var - 0.05).abs() < 0.003, "variance {var}");
    let an = many.iter().filter(|d| d.mode == MetrixMode::AnchorNegative).count() as f64 / many.len() as f64;
    assert!((an - 0.5).abs() < 0.02, "mode frequency {an}");
    let skewed: f64 = {
        let m = Metrix::new().mix_alpha(0.2);
        (0..4000).map(|_| m.draw(&mut r).expect("d").lambda).filter(|l| *l < 0.1 || *l > 0.9).count() as f64 / 4000.0
    };
    assert!(skewed > 0.5, "Beta(0.2, 0.2) puts most mass near 0 and 1: {skewed}");
    // Fixed λ and mode are returned as given.
    let fixed = Metrix::new().lambda(Some(0.25)).mode(Some(MetrixMode::AnchorNegative));
    assert_eq!(fixed.draw(&mut r).expect("d"), MetrixDraw { lambda: 0.25, mode: MetrixMode::AnchorNegative });
}

// ---------------------------------------------------------------------------------------------------------------
// Identities
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn zero_weight_or_nothing_to_mix_is_the_clean_loss() {
    use losskit_losses::{Contrastive, MultiSimilarity, ProxyAnchor};
    let x = emb(8, 10, 4);
    let y = labels(9, 10, 6);
    let w = emb(10, 6, 4);
    let draw = MetrixDraw { lambda: 0.4, mode: MetrixMode::PositiveNegative };
    let m = Metrix::new().weight(0.0);
    let clean = EmbeddingLoss::<f64>::compute(&Contrastive::new().neg_margin(0.5), x.view(), y.view(), None, true);
    let got = m.compute_embedding_at(draw, x.view(), y.view(), true).expect("m");
    let clean = clean.expect("c");
    assert_eq!(got.value, clean.value);
    close("w = 0 grad", &flat(&got.grad.expect("g")), &flat(&clean.grad.expect("g")), 1e-15);
    let ms = m.clone().base(MetrixBase::MultiSimilarity);
    let got = ms.compute_embedding_at(draw, x.view(), y.view(), false).expect("ms");
    let want = EmbeddingLoss::<f64>::compute(&MultiSimilarity::new(), x.view(), y.view(), None, false).expect("c");
    assert_eq!(got.value, want.value);
    // Anchor–negative mixing in a batch where every anchor has a positive adds nothing.
    let yy = array![0_i64, 0, 1, 1, 2, 2, 0, 1, 2, 2];
    let an = MetrixDraw { lambda: 0.7, mode: MetrixMode::AnchorNegative };
    let got = Metrix::new().compute_embedding_at(an, x.view(), yy.view(), false).expect("m");
    let want = EmbeddingLoss::<f64>::compute(&Contrastive::new().neg_margin(0.5), x.view(), yy.view(), None, false);
    assert_eq!(got.value, want.expect("c").value);
    let pa = Metrix::new().base(MetrixBase::ProxyAnchor).anchor_weight(0.3);
    let got = pa.compute_proxy_at(an, x.view(), yy.view(), w.slice(ndarray::s![..3, ..]), false).expect("pa");
    let want =
        ProxyLoss::<f64>::compute(&ProxyAnchor::new(), x.view(), yy.view(), w.slice(ndarray::s![..3, ..]), false);
    assert_eq!(got.value, want.expect("c").value);
}

#[test]
fn hand_computed_anchor_negative_contrastive() {
    // Two unit points of different classes at 90°: no positive pair, one mixed pair per anchor.
    // v = λ·a + (1 − λ)·n, d = ‖a − v̂‖ = √(2 − 2λ/√(λ² + (1 − λ)²)); λ = 0.5 → d = √(2 − √2).
    let x = array![[1.0_f64, 0.0], [0.0, 1.0]];
    let y = array![0_i64, 1];
    let draw = MetrixDraw { lambda: 0.5, mode: MetrixMode::AnchorNegative };
    let out = Metrix::new().anchor_weight(1.0).compute_embedding_at(draw, x.view(), y.view(), false).expect("m");
    let d = (2.0 - 2f64.sqrt()).sqrt();
    // Clean: two ordered negative pairs at distance √2 > m⁻ = 0.5 cost 0. Mixed: pos terms 0.5·d (averaged: 0.5·d),
    // neg terms 0.5·(0.5 − d)₊ = 0 since d ≈ 0.765; total = 1·(0.5·d).
    rel("hand", out.value, 0.5 * d, 1e-14);
}

// ---------------------------------------------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn metrix_bad_input_is_named() {
    let x = emb(3, 6, 3);
    let y = array![0_i64, 1, 0, 1, 2, 2];
    let w = emb(4, 3, 3);
    let m = Metrix::new();
    let draw = MetrixDraw { lambda: 0.5, mode: MetrixMode::PositiveNegative };
    let bad = MetrixDraw { lambda: 1.5, ..draw };
    assert!(matches!(
        m.compute_embedding_at(bad, x.view(), y.view(), true),
        Err(Error::Parameter { name: "lambda", .. })
    ));
    let pa = Metrix::new().base(MetrixBase::ProxyAnchor);
    assert!(matches!(pa.compute_embedding_at(draw, x.view(), y.view(), true), Err(Error::Input { .. })));
    assert!(matches!(m.compute_proxy_at(draw, x.view(), y.view(), w.view(), true), Err(Error::Input { .. })));
    let r = emb(5, 4, 3);
    let rl = array![0_i64, 1, 2, 3];
    let reference = Some(Reference { embeddings: r.view(), labels: rl.view() });
    assert!(matches!(EmbeddingLoss::<f64>::compute(&m, x.view(), y.view(), reference, true), Err(Error::Input { .. })));
    let mut nan = x.clone();
    nan[[2, 1]] = f64::NAN;
    assert!(matches!(
        m.compute_embedding_at(draw, nan.view(), y.view(), true),
        Err(Error::NonFinite { arg: "embeddings", index: 7, .. })
    ));
    assert!(matches!(
        pa.compute_proxy_at(draw, x.view(), array![0_i64, 1, 0, 1, 3, 2].view(), w.view(), true),
        Err(Error::LabelOutOfRange { label: 3, .. })
    ));
    assert!(matches!(
        m.compute_embedding_at(draw, x.view(), array![0_i64, 1].view(), true),
        Err(Error::Shape { arg: "labels", .. })
    ));
    for (k, v) in [("mix_alpha", "0"), ("lambda", "1.5"), ("mode", "both"), ("base", "triplet"), ("seed", "-1")] {
        let e = registry::find("metrix").expect("metrix");
        let err = e.params(&[(k.into(), v.into())]).and_then(|p| Metrix::from_params(&p)).expect_err(k);
        let named = match &err {
            Error::Parameter { name, .. } => *name == k,
            Error::ParameterText { name, .. } => name == k,
            _ => false,
        };
        assert!(named, "{k}={v}: {err:?}");
    }
    // Degenerate but valid: one sample, one class, a zero row: finite.
    for (xx, yy) in
        [(x.slice(ndarray::s![..1, ..]).to_owned(), array![0_i64]), (x.clone(), Array1::from_elem(6, 1_i64))]
    {
        for mode in [MetrixMode::PositiveNegative, MetrixMode::AnchorNegative] {
            let out = m.compute_embedding_at(MetrixDraw { lambda: 0.3, mode }, xx.view(), yy.view(), true).expect("ok");
            assert!(out.value.is_finite() && out.grad.expect("g").iter().all(|v| v.is_finite()));
        }
    }
    let mut z = x.clone();
    z.row_mut(2).fill(0.0);
    let out = m.compute_embedding_at(draw, z.view(), y.view(), true).expect("zero row");
    assert!(out.value.is_finite() && out.grad.expect("g").iter().all(|v| v.is_finite()));
}

// ---------------------------------------------------------------------------------------------------------------
// UNPG and SBCL through the registry
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn unpg_registry_form_is_the_direct_loss() {
    let e = registry::find("unpg").expect("unpg");
    let x = emb(11, 9, 4);
    let y = labels(12, 9, 3);
    let w = emb(13, 3, 4);
    for (pairs, direct) in [
        (vec![], Unpg::new()),
        (vec![("base", "arcface"), ("scale", "8")], Unpg::arcface().scale(8.0)),
        (vec![("margin", "0.2"), ("whisker", "0"), ("scale", "4")], Unpg::new().margin(0.2).whisker(0.0).scale(4.0)),
        (vec![("base", "arcface"), ("margin", "40")], Unpg::new().base(UnpgBase::ArcFace).margin(40.0)),
    ] {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let forms = e.build_metric(&e.params(&pairs).expect("params")).expect("build");
        let l = forms.proxy.expect("proxy form");
        let got = ProxyLoss::<f64>::compute(l.as_ref(), x.view(), y.view(), w.view(), true).expect("registry");
        let want = ProxyLoss::<f64>::compute(&direct, x.view(), y.view(), w.view(), true).expect("direct");
        assert_eq!(got, want, "{pairs:?}");
    }
    let err = e.params(&[("base".into(), "arcface".into()), ("margin".into(), "95".into())]).expect("parse");
    assert!(matches!((e.build)(&err), Err(Error::Parameter { name: "margin", .. })));
}

#[test]
fn sbcl_registry_form_matches_the_official_fixtures() {
    let e = registry::find("sbcl").expect("sbcl");
    let f = load("metric_learning_b.json");
    for case in f["sbcl"].as_array().expect("sbcl") {
        let name = case["name"].as_str().expect("name");
        let x = matrix(&case["embeddings"]);
        let y = ints(&case["labels"]);
        let sub = ints(&case["subclass_labels"]);
        let rows = |v: &Array1<i64>| ndarray::concatenate![ndarray::Axis(0), *v, *v];
        let pairs: Vec<(String, String)> = [
            ("temperature", case["temperature"].to_string()),
            ("base_temperature", case["base_temperature"].to_string()),
            ("gamma", case["gamma"].to_string()),
            ("views", "2".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let mut p = e.params(&pairs).expect("params");
        p.set_vector("subclass_labels", rows(&sub).iter().map(|&s| s as f64).collect()).expect("vector");
        if let Some(t) = case["class_temperature"].as_array() {
            p.set_vector("class_temperature", t.iter().map(|v| v.as_f64().expect("t")).collect()).expect("vector");
        }
        let forms = e.build_metric(&p).expect("build");
        let l = forms.embedding.expect("embedding form");
        let out = EmbeddingLoss::<f64>::compute(l.as_ref(), x.view(), rows(&y).view(), None, true).expect(name);
        rel(&format!("{name} value"), out.value, case["value"].as_f64().expect("value"), 1e-9);
        close(&format!("{name} grad"), &flat(&out.grad.expect("g")), &floats(&case["grad"]), 1e-9);
        // Labels that differ between the views of one sample are an error.
        let mut yy = rows(&y);
        yy[y.len()] += 1;
        assert!(matches!(
            EmbeddingLoss::<f64>::compute(l.as_ref(), x.view(), yy.view(), None, false),
            Err(Error::Input { .. })
        ));
        // Subclass labels of the wrong length.
        let mut q = e.params(&pairs).expect("params");
        q.set_vector("subclass_labels", vec![0.0; 3]).expect("vector");
        let l = e.build_metric(&q).expect("build").embedding.expect("form");
        assert!(matches!(
            EmbeddingLoss::<f64>::compute(l.as_ref(), x.view(), rows(&y).view(), None, false),
            Err(Error::Shape { arg: "subclass_labels", .. })
        ));
    }
    // Without subclass labels every class is one subclass: the direct loss with subclass = class.
    let x = emb(20, 12, 4);
    let y = labels(21, 6, 3);
    let yy = ndarray::concatenate![ndarray::Axis(0), y, y];
    let p = e.params(&[("views".into(), "2".into())]).expect("params");
    let l = e.build_metric(&p).expect("build").embedding.expect("form");
    let got = EmbeddingLoss::<f64>::compute(l.as_ref(), x.view(), yy.view(), None, true).expect("registry");
    let want = Sbcl::new().compute(x.view(), y.view(), y.view(), None, true).expect("direct");
    assert_eq!(got, want);
    // Rows not a multiple of the views; a non-integer subclass id.
    let p = e.params(&[("views".into(), "5".into())]).expect("params");
    let l = e.build_metric(&p).expect("build").embedding.expect("form");
    assert!(matches!(
        EmbeddingLoss::<f64>::compute(l.as_ref(), x.view(), yy.view(), None, false),
        Err(Error::Shape { arg: "embeddings", .. })
    ));
    let mut p = e.params(&[]).expect("params");
    p.set_vector("subclass_labels", vec![0.5; 12]).expect("vector");
    assert!(matches!((e.build)(&p), Err(Error::Parameter { name: "subclass_labels", .. })));
}
