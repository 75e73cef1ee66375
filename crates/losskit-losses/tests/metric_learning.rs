//! Embedding and proxy losses (issue 4): pytorch-metric-learning fixtures (fixtures/metric_learning.json from
//! tools/fixtures/gen_metric_learning.py) in f64 and f32, the multi-similarity miner's pairs, a registry-wide suite
//! over the embedding and proxy families (gradcheck in f64, bad input, reductions, precision, thread counts),
//! plain-loop oracles, the spec's hand-computed values, invariances (rotation, row rescaling) and tiled == dense.

use losskit_losses::{
    ArcFace, Contrastive, CosFace, Distance, DynEmbeddingLoss, DynProxyLoss, EmbeddingLoss, EmbeddingOutput, Error,
    Family, LOSSES, LossEntry, MetricForms, MultiSimilarity, MultiSimilarityMiner, NormalizedSoftmax, ProxyLoss,
    ProxyOutput, Real, Reduction, Reference, Result, SupCon, TripletMargin, TripletMining, registry,
};
use losskit_tensor::gradcheck;
use ndarray::{Array1, Array2, ArrayD, ArrayView1, ArrayView2, Ix2, array};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use serde_json::Value;

// ---------------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------------

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

/// |got − want| ≤ rtol·(|want| + max|want|) elementwise.
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

/// Calls the trait objects in either precision.
trait Prec: Real {
    fn emb(
        l: &dyn DynEmbeddingLoss,
        x: ArrayView2<'_, Self>,
        y: ArrayView1<'_, i64>,
        r: Option<Reference<'_, Self>>,
        g: bool,
    ) -> Result<EmbeddingOutput<Self>>;
    fn proxy(
        l: &dyn DynProxyLoss,
        x: ArrayView2<'_, Self>,
        y: ArrayView1<'_, i64>,
        w: ArrayView2<'_, Self>,
        g: bool,
    ) -> Result<ProxyOutput<Self>>;
}

macro_rules! prec {
    ($t:ty) => {
        impl Prec for $t {
            fn emb(
                l: &dyn DynEmbeddingLoss,
                x: ArrayView2<'_, Self>,
                y: ArrayView1<'_, i64>,
                r: Option<Reference<'_, Self>>,
                g: bool,
            ) -> Result<EmbeddingOutput<Self>> {
                EmbeddingLoss::<$t>::compute(l, x, y, r, g)
            }
            fn proxy(
                l: &dyn DynProxyLoss,
                x: ArrayView2<'_, Self>,
                y: ArrayView1<'_, i64>,
                w: ArrayView2<'_, Self>,
                g: bool,
            ) -> Result<ProxyOutput<Self>> {
                ProxyLoss::<$t>::compute(l, x, y, w, g)
            }
        }
    };
}
prec!(f32);
prec!(f64);

fn build(entry: &LossEntry, pairs: &[(&str, &str)]) -> MetricForms {
    let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let p = entry.params(&pairs).unwrap_or_else(|e| panic!("{}: {e}", entry.name));
    (entry.build)(&p).unwrap_or_else(|e| panic!("{}: {e}", entry.name));
    entry.build_metric(&p).unwrap_or_else(|e| panic!("{}: {e}", entry.name))
}

fn metric_entries() -> Vec<&'static LossEntry> {
    LOSSES.iter().filter(|e| matches!(e.family, Family::Embedding | Family::Proxy)).collect()
}

/// Parameter variants exercised by the registry-wide suites, per loss.
fn variants(name: &str) -> Vec<Vec<(&'static str, &'static str)>> {
    match name {
        "contrastive" => vec![
            vec![],
            vec![("pos_margin", "0.2"), ("neg_margin", "1.5")],
            vec![("distance", "cosine"), ("pos_margin", "0.9"), ("neg_margin", "0.0")],
            vec![("distance", "euclidean-unnormalized"), ("neg_margin", "3")],
        ],
        "multi-similarity" => vec![
            vec![],
            vec![("miner", "true")],
            vec![("preset", "official")],
            vec![("distance", "euclidean"), ("base", "1.0")],
        ],
        "triplet-margin" => vec![
            vec![("margin", "0.3")],
            vec![("mining", "batch-hard"), ("margin", "0.3")],
            vec![("mining", "semi-hard"), ("margin", "0.5")],
            vec![("distance", "cosine"), ("margin", "0.2")],
        ],
        "supcon" => vec![vec![], vec![("temperature", "0.5")], vec![("distance", "euclidean")]],
        "arcface" => vec![vec![("scale", "4")], vec![("margin", "45"), ("scale", "2")]],
        "cosface" => vec![vec![("scale", "4")]],
        "proxy-anchor" => vec![vec![("alpha", "4")], vec![]],
        "unpg" => vec![vec![("scale", "4")], vec![("base", "arcface"), ("scale", "3"), ("whisker", "1")]],
        "sbcl" => vec![vec![], vec![("temperature", "0.5"), ("gamma", "1")]],
        "proto-triplet" => vec![vec![], vec![("margin", "2")]],
        "icnn" => vec![vec![], vec![("k", "2")], vec![("k", "3"), ("ipc", "4")]],
        "metrix" => vec![
            vec![("neg_margin", "0.9")],
            vec![("lambda", "0.3"), ("mode", "positive-negative"), ("neg_margin", "1.2")],
            vec![("lambda", "0.7"), ("mode", "anchor-negative")],
            vec![("base", "multi-similarity"), ("mode", "positive-negative"), ("ms_beta", "10")],
            vec![("base", "multi-similarity"), ("lambda", "0.6"), ("mode", "anchor-negative"), ("seed", "3")],
            vec![("base", "proxy-anchor"), ("pa_alpha", "4"), ("lambda", "0.4"), ("mode", "positive-negative")],
            vec![("base", "proxy-anchor"), ("pa_alpha", "4"), ("mode", "anchor-negative")],
        ],
        _ => vec![vec![], vec![("temperature", "0.5")]],
    }
}

/// Embedding losses without a reference-set form (a valid reference set is an `Error::Input`).
const NO_REFERENCE: &[&str] = &["sbcl", "metrix"];

/// Losses whose value is one set-level quantity with no per-sample values, so `reduction` is accepted and ignored
/// (ICNN: −ln of a score over the whole set's neighbourhoods).
const SET_LEVEL: &[&str] = &["icnn"];

/// Losses that need at least 3 rows (ICNN ranks each row's neighbours after dropping the first: fewer than 3
/// target rows is a documented `Error::Degenerate`, not a zero loss).
const MIN_THREE_ROWS: &[&str] = &["icnn"];

/// Losses on raw Euclidean distances, hence not invariant to rescaling rows (ICNN and Proto-Triplet use
/// d(a, b) = √(‖a − b‖² + ε) on the embeddings as given, as the authors' code does).
const RAW_EUCLIDEAN: &[&str] = &["icnn", "proto-triplet"];

/// Every (label, forms) of every embedding/proxy loss, in each variant and reduction.
fn each(mut f: impl FnMut(&str, &MetricForms)) {
    let entries = metric_entries();
    assert!(entries.len() >= 8, "expected the eight metric losses to be registered");
    for e in entries {
        for v in variants(e.name) {
            for red in ["mean", "sum", "none"] {
                let mut pairs = v.clone();
                pairs.push(("reduction", red));
                let forms = build(e, &pairs);
                assert!(forms.embedding.is_some() || forms.proxy.is_some(), "{} has a form", e.name);
                f(&format!("{} {pairs:?}", e.name), &forms);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// pytorch-metric-learning fixtures
// ---------------------------------------------------------------------------------------------------------------

fn fixtures() -> Value {
    gradcheck::load_json(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/metric_learning.json"))
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

fn run_fixture<F: Prec>(case: &Value, rtol: f64) {
    let name = case["name"].as_str().expect("name");
    let entry = registry::find(case["loss"].as_str().expect("loss")).expect("registered");
    let pairs: Vec<(String, String)> = case["params"]
        .as_object()
        .expect("params")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("text").to_string()))
        .collect();
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let forms = build(entry, &pairs);
    let x = matrix(&case["embeddings"]).mapv(F::c);
    let y = ints(&case["labels"]);
    let what = |part: &str| format!("{name} ({}) {part}", F::NAME);
    if let Some(w) = case.get("proxies") {
        let w = matrix(w).mapv(F::c);
        let loss = forms.proxy.as_deref().expect("proxy form");
        let out = F::proxy(loss, x.view(), y.view(), w.view(), true).unwrap_or_else(|e| panic!("{name}: {e}"));
        rel(&what("value"), out.value.f64(), case["value"].as_f64().expect("value"), rtol);
        close(&what("grad"), &flat(&out.grad.expect("grad")), &floats(&case["grad"]), rtol);
        close(&what("grad_proxies"), &flat(&out.grad_proxies.expect("grad")), &floats(&case["grad_proxies"]), rtol);
    } else {
        let loss = forms.embedding.as_deref().expect("embedding form");
        let r = case.get("reference_embeddings").map(|r| matrix(r).mapv(F::c));
        let rl = case.get("reference_labels").map(ints);
        let reference = r.as_ref().zip(rl.as_ref()).map(|(e, l)| Reference { embeddings: e.view(), labels: l.view() });
        let out = F::emb(loss, x.view(), y.view(), reference, true).unwrap_or_else(|e| panic!("{name}: {e}"));
        rel(&what("value"), out.value.f64(), case["value"].as_f64().expect("value"), rtol);
        close(&what("grad"), &flat(&out.grad.expect("grad")), &floats(&case["grad"]), rtol);
        if let Some(g) = case.get("grad_reference") {
            close(&what("grad_reference"), &flat(&out.grad_reference.expect("grad_reference")), &floats(g), rtol);
        }
    }
}

#[test]
fn pml_fixtures_f64() {
    let f = fixtures();
    let cases = f["cases"].as_array().expect("cases");
    assert!(cases.len() >= 28);
    for case in cases {
        run_fixture::<f64>(case, 1e-9);
    }
}

#[test]
fn pml_fixtures_f32() {
    for case in fixtures()["cases"].as_array().expect("cases") {
        run_fixture::<f32>(case, 2e-4);
    }
}

#[test]
fn every_metric_loss_has_a_fixture() {
    let f = fixtures();
    let covered: Vec<&str> = f["cases"].as_array().expect("cases").iter().filter_map(|c| c["loss"].as_str()).collect();
    for e in metric_entries() {
        assert!(covered.contains(&e.name), "{} has no PML fixture", e.name);
    }
}

#[test]
fn multi_similarity_miner_matches_pml_pairs() {
    for case in fixtures()["miner"].as_array().expect("miner") {
        let x = matrix(&case["embeddings"]);
        let y = ints(&case["labels"]);
        let miner = MultiSimilarityMiner::new().epsilon(case["epsilon"].as_f64().expect("epsilon"));
        let got = miner.mine(x.view(), y.view()).unwrap();
        let pairs = |v: &Value| -> Vec<(usize, usize)> {
            v.as_array()
                .expect("pairs")
                .iter()
                .map(|p| (p[0].as_u64().expect("a") as usize, p[1].as_u64().expect("b") as usize))
                .collect()
        };
        assert_eq!(got.positives, pairs(&case["positives"]));
        assert_eq!(got.negatives, pairs(&case["negatives"]));
        assert!(!got.positives.is_empty() && !got.negatives.is_empty());
        let got32 = miner.mine(x.mapv(|v| v as f32).view(), y.view()).unwrap();
        assert_eq!(got32, got, "f32 mines the same pairs on this batch");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Registry-wide suite over the embedding and proxy families
// ---------------------------------------------------------------------------------------------------------------

fn value_emb(
    l: &dyn DynEmbeddingLoss,
    x: &Array2<f64>,
    y: &Array1<i64>,
    r: Option<(&Array2<f64>, &Array1<i64>)>,
) -> f64 {
    let reference = r.map(|(e, l)| Reference { embeddings: e.view(), labels: l.view() });
    EmbeddingLoss::<f64>::compute(l, x.view(), y.view(), reference, false).expect("value").value
}

#[test]
fn gradients_match_finite_differences() {
    let opts = gradcheck::Options { step: 1e-6, rtol: 1e-5, atol: 1e-7 };
    each(|name, forms| {
        for (seed, n, d, c) in [(1, 9, 4, 3), (2, 6, 3, 2), (3, 12, 5, 4)] {
            let x = emb(seed, n, d);
            let y = labels(seed + 100, n, c);
            if let Some(l) = forms.embedding.as_deref() {
                let out = EmbeddingLoss::<f64>::compute(l, x.view(), y.view(), None, true).expect(name);
                let g = out.grad.expect("grad").into_dyn();
                let f = |v: &ArrayD<f64>| value_emb(l, &v.clone().into_dimensionality::<Ix2>().expect("2-D"), &y, None);
                if let Err(m) = gradcheck::check(f, &x.clone().into_dyn(), &g, opts) {
                    panic!("{name} seed {seed}: {m:?}");
                }
                // With a reference set: both gradients (SBCL and Metrix take none: an error, see bad inputs).
                if NO_REFERENCE.iter().any(|p| name.starts_with(p)) {
                    continue;
                }
                let (r, rl) = (emb(seed + 7, 5, d), labels(seed + 9, 5, c));
                let reference = Some(Reference { embeddings: r.view(), labels: rl.view() });
                let out = EmbeddingLoss::<f64>::compute(l, x.view(), y.view(), reference, true).expect(name);
                let (gq, gr) = (out.grad.expect("grad").into_dyn(), out.grad_reference.expect("ref grad").into_dyn());
                let f = |v: &ArrayD<f64>| {
                    value_emb(l, &v.clone().into_dimensionality::<Ix2>().expect("2-D"), &y, Some((&r, &rl)))
                };
                if let Err(m) = gradcheck::check(f, &x.clone().into_dyn(), &gq, opts) {
                    panic!("{name} seed {seed} (queries vs reference): {m:?}");
                }
                let f = |v: &ArrayD<f64>| {
                    value_emb(l, &x, &y, Some((&v.clone().into_dimensionality::<Ix2>().expect("2-D"), &rl)))
                };
                if let Err(m) = gradcheck::check(f, &r.clone().into_dyn(), &gr, opts) {
                    panic!("{name} seed {seed} (reference gradient): {m:?}");
                }
            }
            if let Some(l) = forms.proxy.as_deref() {
                let w = emb(seed + 50, c as usize, d);
                let out = ProxyLoss::<f64>::compute(l, x.view(), y.view(), w.view(), true).expect(name);
                let (gx, gw) = (out.grad.expect("grad").into_dyn(), out.grad_proxies.expect("grad").into_dyn());
                let val = |x: &Array2<f64>, w: &Array2<f64>| {
                    ProxyLoss::<f64>::compute(l, x.view(), y.view(), w.view(), false).expect("value").value
                };
                let to2 = |v: &ArrayD<f64>| v.clone().into_dimensionality::<Ix2>().expect("2-D");
                if let Err(m) = gradcheck::check(|v| val(&to2(v), &w), &x.clone().into_dyn(), &gx, opts) {
                    panic!("{name} seed {seed} (embeddings): {m:?}");
                }
                if let Err(m) = gradcheck::check(|v| val(&x, &to2(v)), &w.clone().into_dyn(), &gw, opts) {
                    panic!("{name} seed {seed} (proxies): {m:?}");
                }
            }
        }
    });
}

#[test]
fn bad_inputs_give_the_documented_errors() {
    each(|name, forms| {
        let x = emb(5, 6, 3);
        let y = array![0_i64, 1, 0, 1, 2, 2];
        let mut nan = x.clone();
        nan[[2, 1]] = f64::NAN;
        let short = array![0_i64, 1, 0];
        let empty = Array2::<f64>::zeros((0, 3));
        let no_dim = Array2::<f64>::zeros((6, 0));
        if let Some(l) = forms.embedding.as_deref() {
            let run =
                |x: &Array2<f64>, y: &Array1<i64>| EmbeddingLoss::<f64>::compute(l, x.view(), y.view(), None, true);
            let e = run(&nan, &y).expect_err(name);
            assert!(matches!(e, Error::NonFinite { arg: "embeddings", index: 7, .. }), "{name}: {e:?}");
            let e = run(&x, &short).expect_err(name);
            assert!(matches!(e, Error::Shape { arg: "labels", .. }), "{name}: {e:?}");
            let e = run(&empty, &Array1::zeros(0)).expect_err(name);
            assert!(matches!(e, Error::Empty { arg: "embeddings" }), "{name}: {e:?}");
            let e = run(&no_dim, &y).expect_err(name);
            assert!(matches!(e, Error::Shape { arg: "embeddings", .. }), "{name}: {e:?}");
            let r = emb(6, 4, 2);
            let rl = array![0_i64, 1, 2, 3];
            let reference = Some(Reference { embeddings: r.view(), labels: rl.view() });
            let e = EmbeddingLoss::<f64>::compute(l, x.view(), y.view(), reference, true).expect_err(name);
            assert!(matches!(e, Error::Shape { arg: "reference_embeddings", .. }), "{name}: {e:?}");
            let r = emb(6, 4, 3);
            let reference = Some(Reference { embeddings: r.view(), labels: short.view() });
            let e = EmbeddingLoss::<f64>::compute(l, x.view(), y.view(), reference, true).expect_err(name);
            assert!(matches!(e, Error::Shape { arg: "reference_labels", .. }), "{name}: {e:?}");
            if NO_REFERENCE.iter().any(|p| name.starts_with(p)) {
                let rl = array![0_i64, 1, 2, 3];
                let reference = Some(Reference { embeddings: r.view(), labels: rl.view() });
                let e = EmbeddingLoss::<f64>::compute(l, x.view(), y.view(), reference, true).expect_err(name);
                assert!(matches!(e, Error::Input { .. }), "{name}: {e:?}");
            }
            // Degenerate but valid batches: finite values and gradients (PML's zero-loss rules).
            for (what, yy) in [
                ("single class", array![3_i64, 3, 3, 3, 3, 3]),
                ("no positive pair", array![0_i64, 1, 2, 3, 4, 5]),
                ("one sample", array![0_i64]),
            ] {
                let xx = x.slice(ndarray::s![..yy.len(), ..]).to_owned();
                if yy.len() < 3 && MIN_THREE_ROWS.iter().any(|p| name.starts_with(p)) {
                    let e = run(&xx, &yy).expect_err(name);
                    assert!(matches!(e, Error::Degenerate { .. }), "{name} {what}: {e:?}");
                    continue;
                }
                let out = run(&xx, &yy).unwrap_or_else(|e| panic!("{name} {what}: {e}"));
                assert!(out.value.is_finite() && out.value >= 0.0, "{name} {what}: {}", out.value);
                assert!(out.grad.expect("grad").iter().all(|v| v.is_finite()), "{name} {what}");
            }
            let out = run(&x, &array![0_i64, 1, 2, 3, 4, 5]).expect(name);
            // PML: triplet and SupCon need positives; the miner mines nothing without them; the plain
            // multi-similarity and contrastive losses still count the negative side.
            let needs_pos = ["triplet", "supcon", "sbcl"].iter().any(|p| name.starts_with(p))
                || name.contains("miner")
                || name.contains("official");
            if needs_pos {
                assert_eq!(out.value, 0.0, "{name}: no positive pair gives 0");
            } else {
                assert!(out.value > 0.0, "{name}: the negative side still counts");
            }
            let mut zero_row = x.clone();
            zero_row.row_mut(3).fill(0.0);
            let out = run(&zero_row, &y).expect(name);
            assert!(out.value.is_finite() && out.grad.expect("grad").iter().all(|v| v.is_finite()), "{name}: zero row");
        }
        if let Some(l) = forms.proxy.as_deref() {
            let w = emb(7, 3, 3);
            let run = |x: &Array2<f64>, y: &Array1<i64>, w: &Array2<f64>| {
                ProxyLoss::<f64>::compute(l, x.view(), y.view(), w.view(), true)
            };
            let e = run(&nan, &y, &w).expect_err(name);
            assert!(matches!(e, Error::NonFinite { arg: "embeddings", index: 7, .. }), "{name}: {e:?}");
            let e = run(&x, &short, &w).expect_err(name);
            assert!(matches!(e, Error::Shape { arg: "labels", .. }), "{name}: {e:?}");
            let e = run(&x, &array![0_i64, 1, 0, 1, 3, 2], &w).expect_err(name);
            assert!(
                matches!(e, Error::LabelOutOfRange { arg: "labels", label: 3, classes: 3, index: 4 }),
                "{name}: {e:?}"
            );
            let e = run(&empty, &Array1::zeros(0), &w).expect_err(name);
            assert!(matches!(e, Error::Empty { arg: "embeddings" }), "{name}: {e:?}");
            let e = run(&x, &y, &emb(8, 3, 4)).expect_err(name);
            assert!(matches!(e, Error::Shape { arg: "proxies", .. }), "{name}: {e:?}");
            let mut wn = w.clone();
            wn[[1, 0]] = f64::INFINITY;
            let e = run(&x, &y, &wn).expect_err(name);
            assert!(matches!(e, Error::NonFinite { arg: "proxies", index: 3, .. }), "{name}: {e:?}");
            let e = run(&x, &y, &Array2::zeros((0, 3))).expect_err(name);
            assert!(matches!(e, Error::Empty { arg: "proxies" }), "{name}: {e:?}");
            for (what, yy) in [("single class", array![1_i64, 1, 1, 1, 1, 1]), ("one sample", array![2_i64])] {
                let xx = x.slice(ndarray::s![..yy.len(), ..]).to_owned();
                let out = run(&xx, &yy, &w).unwrap_or_else(|e| panic!("{name} {what}: {e}"));
                assert!(out.value.is_finite(), "{name} {what}");
                assert!(out.grad.expect("grad").iter().all(|v| v.is_finite()), "{name} {what}");
                assert!(out.grad_proxies.expect("grad").iter().all(|v| v.is_finite()), "{name} {what}");
            }
            let mut zero_row = x.clone();
            zero_row.row_mut(3).fill(0.0);
            let mut zero_proxy = w.clone();
            zero_proxy.row_mut(1).fill(0.0);
            let out = run(&zero_row, &y, &zero_proxy).expect(name);
            assert!(out.value.is_finite() && out.grad.expect("grad").iter().all(|v| v.is_finite()), "{name}: zero row");
        }
    });
}

#[test]
fn reductions_agree_and_per_sample_values_do_not_depend_on_them() {
    for e in metric_entries() {
        if SET_LEVEL.contains(&e.name) {
            continue;
        }
        for v in variants(e.name) {
            let with = |red: &'static str| {
                let mut p = v.clone();
                p.push(("reduction", red));
                build(e, &p)
            };
            let (sum, none, mean) = (with("sum"), with("none"), with("mean"));
            let x = emb(11, 10, 4);
            let y = labels(12, 10, 3);
            let w = emb(13, 3, 4);
            let (s, z, m) = match (&sum.embedding, &none.embedding, &mean.embedding) {
                (Some(s), Some(z), Some(m)) => {
                    let f = |l: &dyn DynEmbeddingLoss| EmbeddingLoss::<f64>::compute(l, x.view(), y.view(), None, true);
                    let (s, z, m) = (f(s.as_ref()).unwrap(), f(z.as_ref()).unwrap(), f(m.as_ref()).unwrap());
                    ((s.value, s.per_sample, s.grad), (z.value, z.per_sample, z.grad), (m.value, m.per_sample))
                }
                _ => {
                    let f = |l: &dyn DynProxyLoss| {
                        ProxyLoss::<f64>::compute(l, x.view(), y.view(), w.view(), true).unwrap()
                    };
                    let (s, z, m) = (
                        f(sum.proxy.as_deref().unwrap()),
                        f(none.proxy.as_deref().unwrap()),
                        f(mean.proxy.as_deref().unwrap()),
                    );
                    ((s.value, s.per_sample, s.grad), (z.value, z.per_sample, z.grad), (m.value, m.per_sample))
                }
            };
            let name = format!("{} {v:?}", e.name);
            let ps = s.1.expect("per-sample");
            rel(&format!("{name}: sum = Σ per_sample"), s.0, ps.sum(), 1e-12);
            assert_eq!(z.0, s.0, "{name}: none's value is the sum");
            assert_eq!(z.2, s.2, "{name}: none's gradient is the sum's");
            assert_eq!(Some(ps), z.1, "{name}: per-sample values");
            assert_eq!(m.1.map(|p| p.len()), z.1.as_ref().map(|p: &Array1<f64>| p.len()), "{name}: per-sample length");
            assert!(m.0.is_finite() && m.0 >= 0.0, "{name}: mean {}", m.0);
        }
    }
}

#[test]
fn f32_agrees_with_f64_and_thread_count_does_not_change_results() {
    let pool = |k| rayon::ThreadPoolBuilder::new().num_threads(k).build().expect("pool");
    let (one, two) = (pool(1), pool(2));
    each(|name, forms| {
        let x = emb(21, 40, 6);
        let y = labels(22, 40, 5);
        let w = emb(23, 5, 6);
        if let Some(l) = forms.embedding.as_deref() {
            let a = EmbeddingLoss::<f64>::compute(l, x.view(), y.view(), None, true).unwrap();
            let x32 = x.mapv(|v| v as f32);
            let b = EmbeddingLoss::<f32>::compute(l, x32.view(), y.view(), None, true).unwrap();
            rel(&format!("{name} f32 value"), b.value as f64, a.value, 5e-4);
            close(&format!("{name} f32 grad"), &flat(&b.grad.unwrap()), &flat(a.grad.as_ref().unwrap()), 5e-3);
            let r1 = one.install(|| EmbeddingLoss::<f64>::compute(l, x.view(), y.view(), None, true).unwrap());
            let r2 = two.install(|| EmbeddingLoss::<f64>::compute(l, x.view(), y.view(), None, true).unwrap());
            assert_eq!(r1, r2, "{name}: 1 vs 2 threads");
            assert_eq!(r1.value, a.value, "{name}: pool vs global");
        }
        if let Some(l) = forms.proxy.as_deref() {
            let a = ProxyLoss::<f64>::compute(l, x.view(), y.view(), w.view(), true).unwrap();
            let (x32, w32) = (x.mapv(|v| v as f32), w.mapv(|v| v as f32));
            let b = ProxyLoss::<f32>::compute(l, x32.view(), y.view(), w32.view(), true).unwrap();
            rel(&format!("{name} f32 value"), b.value as f64, a.value, 5e-4);
            close(&format!("{name} f32 grad"), &flat(&b.grad.unwrap()), &flat(a.grad.as_ref().unwrap()), 5e-3);
            let r1 = one.install(|| ProxyLoss::<f64>::compute(l, x.view(), y.view(), w.view(), true).unwrap());
            let r2 = two.install(|| ProxyLoss::<f64>::compute(l, x.view(), y.view(), w.view(), true).unwrap());
            assert_eq!(r1, r2, "{name}: 1 vs 2 threads");
        }
    });
}

// ---------------------------------------------------------------------------------------------------------------
// Tiled == dense
// ---------------------------------------------------------------------------------------------------------------

/// A loss config by tile size.
type MakeLoss = Box<dyn Fn(usize) -> Box<dyn DynEmbeddingLoss>>;

fn pair_losses() -> Vec<(&'static str, MakeLoss)> {
    vec![
        ("contrastive", Box::new(|t| Box::new(Contrastive::new().neg_margin(1.3).tile(t)))),
        (
            "contrastive cosine sum",
            Box::new(|t| {
                Box::new(
                    Contrastive::new().distance(Distance::Cosine).pos_margin(0.9).tile(t).reduction(Reduction::Sum),
                )
            }),
        ),
        ("multi-similarity", Box::new(|t| Box::new(MultiSimilarity::new().tile(t)))),
        ("multi-similarity miner", Box::new(|t| Box::new(MultiSimilarity::new().miner(true).tile(t)))),
        ("multi-similarity official", Box::new(|t| Box::new(MultiSimilarity::official().tile(t)))),
        ("triplet all", Box::new(|t| Box::new(TripletMargin::new().margin(0.3).tile(t)))),
        ("triplet batch-hard", Box::new(|t| Box::new(TripletMargin::new().mining(TripletMining::BatchHard).tile(t)))),
        (
            "triplet semi-hard",
            Box::new(|t| Box::new(TripletMargin::new().margin(0.4).mining(TripletMining::SemiHard).tile(t))),
        ),
        ("supcon", Box::new(|t| Box::new(SupCon::new().tile(t)))),
        ("supcon euclidean", Box::new(|t| Box::new(SupCon::new().distance(Distance::Euclidean).tile(t)))),
    ]
}

#[test]
fn tiled_equals_dense() {
    let x = emb(31, 37, 5);
    let y = labels(32, 37, 4);
    let r = emb(33, 11, 5);
    let rl = labels(34, 11, 4);
    for (name, make) in pair_losses() {
        for with_ref in [false, true] {
            let reference = with_ref.then(|| Reference { embeddings: r.view(), labels: rl.view() });
            let dense = EmbeddingLoss::<f64>::compute(make(0).as_ref(), x.view(), y.view(), reference, true).unwrap();
            assert_eq!(
                dense,
                EmbeddingLoss::<f64>::compute(make(37).as_ref(), x.view(), y.view(), reference, true).unwrap()
            );
            for tile in [1, 4, 10, 36] {
                let tiled =
                    EmbeddingLoss::<f64>::compute(make(tile).as_ref(), x.view(), y.view(), reference, true).unwrap();
                let what = format!("{name} ref={with_ref} tile={tile}");
                rel(&format!("{what} value"), tiled.value, dense.value, 1e-13);
                assert_eq!(tiled.per_sample, dense.per_sample, "{what}: per-sample values are row-local");
                close(
                    &format!("{what} grad"),
                    &flat(tiled.grad.as_ref().unwrap()),
                    &flat(dense.grad.as_ref().unwrap()),
                    1e-12,
                );
                if with_ref {
                    close(
                        &format!("{what} grad_reference"),
                        &flat(tiled.grad_reference.as_ref().unwrap()),
                        &flat(dense.grad_reference.as_ref().unwrap()),
                        1e-12,
                    );
                }
            }
            let x32 = x.mapv(|v| v as f32);
            let r32 = r.mapv(|v| v as f32);
            let reference = with_ref.then(|| Reference { embeddings: r32.view(), labels: rl.view() });
            let d32 = EmbeddingLoss::<f32>::compute(make(0).as_ref(), x32.view(), y.view(), reference, true).unwrap();
            let t32 = EmbeddingLoss::<f32>::compute(make(5).as_ref(), x32.view(), y.view(), reference, true).unwrap();
            rel(&format!("{name} f32 tiled value"), t32.value as f64, d32.value as f64, 1e-6);
            close(&format!("{name} f32 tiled grad"), &flat(&t32.grad.unwrap()), &flat(&d32.grad.unwrap()), 1e-5);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Invariances
// ---------------------------------------------------------------------------------------------------------------

/// A random orthogonal matrix (Gram–Schmidt on Gaussian columns).
fn orthogonal(seed: u64, d: usize) -> Array2<f64> {
    let mut q = emb(seed, d, d);
    for j in 0..d {
        for k in 0..j {
            let dot = q.column(j).dot(&q.column(k));
            let ck = q.column(k).to_owned();
            q.column_mut(j).scaled_add(-dot, &ck);
        }
        let n = q.column(j).dot(&q.column(j)).sqrt();
        q.column_mut(j).mapv_inplace(|v| v / n);
    }
    q
}

#[test]
fn rotating_every_embedding_rotates_the_gradient_and_keeps_the_value() {
    let q = orthogonal(41, 6);
    let x = emb(42, 20, 6);
    let y = labels(43, 20, 4);
    let w = emb(44, 4, 6);
    let (xr, wr) = (x.dot(&q), w.dot(&q));
    each(|name, forms| {
        if let Some(l) = forms.embedding.as_deref() {
            let a = EmbeddingLoss::<f64>::compute(l, x.view(), y.view(), None, true).unwrap();
            let b = EmbeddingLoss::<f64>::compute(l, xr.view(), y.view(), None, true).unwrap();
            rel(&format!("{name} rotated value"), b.value, a.value, 1e-10);
            close(&format!("{name} rotated grad"), &flat(&b.grad.unwrap()), &flat(&a.grad.unwrap().dot(&q)), 1e-9);
        }
        if let Some(l) = forms.proxy.as_deref() {
            let a = ProxyLoss::<f64>::compute(l, x.view(), y.view(), w.view(), true).unwrap();
            let b = ProxyLoss::<f64>::compute(l, xr.view(), y.view(), wr.view(), true).unwrap();
            rel(&format!("{name} rotated value"), b.value, a.value, 1e-10);
            close(&format!("{name} rotated grad"), &flat(&b.grad.unwrap()), &flat(&a.grad.unwrap().dot(&q)), 1e-9);
            close(
                &format!("{name} rotated proxy grad"),
                &flat(&b.grad_proxies.unwrap()),
                &flat(&a.grad_proxies.unwrap().dot(&q)),
                1e-9,
            );
        }
    });
}

#[test]
fn rescaling_rows_changes_nothing_under_normalised_distances() {
    let x = emb(51, 18, 5);
    let y = labels(52, 18, 3);
    let w = emb(53, 3, 5);
    let c: Array1<f64> = (0..18).map(|i| 0.25 + 0.5 * i as f64).collect();
    let xs = &x * &c.view().insert_axis(ndarray::Axis(1));
    each(|name, forms| {
        if name.contains("euclidean-unnormalized") || RAW_EUCLIDEAN.iter().any(|p| name.starts_with(p)) {
            return;
        }
        if let Some(l) = forms.embedding.as_deref() {
            let a = EmbeddingLoss::<f64>::compute(l, x.view(), y.view(), None, true).unwrap();
            let b = EmbeddingLoss::<f64>::compute(l, xs.view(), y.view(), None, true).unwrap();
            rel(&format!("{name} rescaled value"), b.value, a.value, 1e-10);
            // x̂ is unchanged, so ∂L/∂(cᵢxᵢ) = (∂L/∂xᵢ)/cᵢ.
            let want = a.grad.unwrap() / c.view().insert_axis(ndarray::Axis(1));
            close(&format!("{name} rescaled grad"), &flat(&b.grad.unwrap()), &flat(&want), 1e-9);
        }
        if let Some(l) = forms.proxy.as_deref() {
            let a = ProxyLoss::<f64>::compute(l, x.view(), y.view(), w.view(), false).unwrap();
            let b = ProxyLoss::<f64>::compute(l, xs.view(), y.view(), (&w * 3.5).view(), false).unwrap();
            rel(&format!("{name} rescaled value"), b.value, a.value, 1e-10);
        }
    });
}

// ---------------------------------------------------------------------------------------------------------------
// Oracles: the spec's hand-computed values and plain-loop transcriptions
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn spec_hand_computed_values() {
    // §1.4 multi-similarity.
    let x = array![[1.0_f64, 0.0], [0.6, 0.8], [0.0, 1.0]];
    let y = array![0_i64, 0, 1];
    let pml = MultiSimilarity::new().compute(x.view(), y.view(), None, false).unwrap();
    rel("ms pml", pml.value, 0.399380, 2e-6);
    let official = MultiSimilarity::official().compute(x.view(), y.view(), None, false).unwrap();
    rel("ms official", official.value, 0.199690, 2e-6);
    // Rotation and rescaling of the oracle (the spec's stated invariant).
    let q = array![[0.6_f64, -0.8], [0.8, 0.6]];
    let xr = x.dot(&q) * 7.0;
    rel("ms rotated", MultiSimilarity::new().compute(xr.view(), y.view(), None, false).unwrap().value, 0.399380, 2e-6);
    // §6.1 SupCon.
    let z = array![[1.0_f64, 0.0], [0.0, 1.0], [0.6, 0.8], [0.8, 0.6]];
    let out = SupCon::new().temperature(0.5).compute(z.view(), array![0_i64, 1, 0, 1].view(), None, false).unwrap();
    rel("supcon", out.value, 1.270714, 1e-6);
    let f = ndarray::Array3::from_shape_fn((2, 2, 2), |(b, v, k)| z[[v * 2 + b, k]]);
    let (rows, l) = losskit_losses::stack_views(f.view(), array![0_i64, 1].view()).unwrap();
    assert_eq!(rows, z);
    assert_eq!(SupCon::new().temperature(0.5).compute(rows.view(), l.view(), None, false).unwrap().value, out.value);
    // §3.1 normalised softmax: log(1 + (C − 1)e^{−1/τ}).
    let xe = array![[0.0_f64, 2.0, 0.0]];
    let w = array![[1.0_f64, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 1.0]];
    let ns =
        NormalizedSoftmax::new().temperature(0.5).compute(xe.view(), array![1_i64].view(), w.view(), false).unwrap();
    rel("normalized softmax", ns.value, (2.0 * (-2.0f64).exp()).ln_1p(), 1e-14);
    // §2.1/2.2 CosFace and ArcFace on one row: C = 2, cos θ_y = 0.6, cos θ_other = 0.
    let xc = array![[0.6_f64, 0.8]];
    let wc = array![[1.0_f64, 0.0], [-0.8, 0.6]];
    let yc = array![0_i64];
    let cf = CosFace::new().margin(0.2).scale(3.0).compute(xc.view(), yc.view(), wc.view(), false).unwrap();
    rel("cosface", cf.value, (3.0_f64 * (0.0 - 0.4)).exp().ln_1p(), 1e-14);
    let af = ArcFace::new().margin_radians(0.3).scale(3.0).compute(xc.view(), yc.view(), wc.view(), false).unwrap();
    let psi = (0.6f64.acos() + 0.3).cos();
    rel("arcface", af.value, (3.0 * (0.0 - psi)).exp().ln_1p(), 1e-12);
}

/// Plain loops over pairs for the multi-similarity, contrastive and SupCon values (f64, cosine / Euclidean).
fn loops(x: &Array2<f64>, y: &Array1<i64>) -> (f64, f64, f64) {
    let n = y.len();
    let xh: Vec<Vec<f64>> = x
        .rows()
        .into_iter()
        .map(|r| {
            let norm = r.dot(&r).sqrt();
            r.iter().map(|v| v / norm).collect()
        })
        .collect();
    let s = |i: usize, j: usize| xh[i].iter().zip(&xh[j]).map(|(a, b)| a * b).sum::<f64>();
    let d = |i: usize, j: usize| xh[i].iter().zip(&xh[j]).map(|(a, b)| (a - b) * (a - b)).sum::<f64>().sqrt();
    let (alpha, beta, base) = (2.0, 50.0, 0.5);
    let mut ms = 0.0;
    let (mut cp, mut cpn, mut cn, mut cnn) = (0.0, 0.0, 0.0, 0.0);
    let (mut sc, mut scn) = (0.0, 0.0);
    for i in 0..n {
        let (mut zp, mut zn, mut any_p, mut any_n) = (1.0, 1.0, false, false);
        let (mut denom, mut pos_sum, mut np) = (0.0, 0.0, 0.0);
        for j in 0..n {
            if j == i {
                continue;
            }
            denom += (s(i, j) / 0.1).exp();
            if y[j] == y[i] {
                zp += (-alpha * (s(i, j) - base)).exp();
                any_p = true;
                let t = d(i, j);
                if t > 0.0 {
                    cp += t;
                    cpn += 1.0;
                }
                pos_sum += s(i, j) / 0.1;
                np += 1.0;
            } else {
                zn += (beta * (s(i, j) - base)).exp();
                any_n = true;
                let t = 1.0 - d(i, j);
                if t > 0.0 {
                    cn += t;
                    cnn += 1.0;
                }
            }
        }
        ms += if any_p { zp.ln() / alpha } else { 0.0 } + if any_n { zn.ln() / beta } else { 0.0 };
        if np > 0.0 {
            let l = denom.ln() - pos_sum / np;
            if l > 0.0 {
                sc += l;
                scn += 1.0;
            }
        }
    }
    (ms / n as f64, cp / cpn + cn / cnn, sc / scn)
}

#[test]
fn plain_loop_oracles() {
    for seed in 0..4 {
        let x = emb(60 + seed, 15, 4);
        let y = labels(70 + seed, 15, 3);
        let (ms, con, sup) = loops(&x, &y);
        let got =
            |l: &dyn DynEmbeddingLoss| EmbeddingLoss::<f64>::compute(l, x.view(), y.view(), None, false).unwrap().value;
        rel("ms loop", got(&MultiSimilarity::new()), ms, 1e-12);
        rel("contrastive loop", got(&Contrastive::new()), con, 1e-12);
        rel("supcon loop", got(&SupCon::new()), sup, 1e-12);
    }
}

#[test]
fn large_batch_tiled_run_stays_finite_and_matches_dense() {
    // Enough rows that the automatic tile would still be dense; force tiles and compare on a bigger problem.
    let x = emb(81, 300, 16);
    let y = labels(82, 300, 10);
    for (name, make) in pair_losses() {
        let a = EmbeddingLoss::<f64>::compute(make(0).as_ref(), x.view(), y.view(), None, true).unwrap();
        let b = EmbeddingLoss::<f64>::compute(make(64).as_ref(), x.view(), y.view(), None, true).unwrap();
        rel(&format!("{name} 300 rows"), b.value, a.value, 1e-12);
        close(&format!("{name} 300 rows grad"), &flat(&b.grad.unwrap()), &flat(&a.grad.unwrap()), 1e-11);
    }
}
