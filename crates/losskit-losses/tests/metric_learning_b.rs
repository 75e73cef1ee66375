//! Issue 4 part 2: UNPG on CosFace/ArcFace and SBCL. Reference values and gradients from transcriptions of the
//! official code (fixtures/metric_learning_b.json, written by tools/fixtures/gen_metric_learning_b.py) in f64 and
//! f32, f64 gradchecks, the no-negative-pair fallback, the spec's oracles and bad input.

use losskit_losses::{
    ArcFace, CosFace, CosineNcm, CrossBatchMemory, EmbeddingLoss, Error, MultiSimilarity, ProxyLoss, Real, Reduction,
    Sbcl, SupCon, Unpg, UnpgBase, box_and_whisker,
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

fn fixtures() -> Value {
    gradcheck::load_json(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/metric_learning_b.json"))
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().expect("floats").iter().map(|x| x.as_f64().expect("float")).collect()
}

fn matrix(v: &Value) -> Array2<f64> {
    let rows: Vec<Vec<f64>> = v.as_array().expect("rows").iter().map(floats).collect();
    let (n, d) = (rows.len(), rows.first().map_or(0, Vec::len));
    Array2::from_shape_vec((n, d), rows.concat()).expect("matrix")
}

fn ints(v: &Value) -> Array1<i64> {
    v.as_array().expect("ints").iter().map(|x| x.as_i64().expect("int")).collect()
}

fn to2(v: &ArrayD<f64>) -> Array2<f64> {
    v.clone().into_dimensionality::<Ix2>().expect("2-D")
}

const OPTS: gradcheck::Options = gradcheck::Options { step: 1e-6, rtol: 1e-5, atol: 1e-7 };

// ---------------------------------------------------------------------------------------------------------------
// UNPG
// ---------------------------------------------------------------------------------------------------------------

fn unpg_of(case: &Value) -> Unpg {
    let base = match case["base"].as_str().expect("base") {
        "cosface" => UnpgBase::CosFace,
        _ => UnpgBase::ArcFace,
    };
    Unpg::new()
        .base(base)
        .margin(case["margin"].as_f64().expect("margin"))
        .scale(case["scale"].as_f64().expect("scale"))
        .whisker(case["whisker"].as_f64().expect("whisker"))
}

fn unpg_fixture<F: Real>(rtol: f64) {
    let f = fixtures();
    let cases = f["unpg"].as_array().expect("unpg");
    assert_eq!(cases.len(), 6);
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let loss = unpg_of(case);
        let x = matrix(&case["embeddings"]).mapv(F::c);
        let w = matrix(&case["proxies"]).mapv(F::c);
        let y = ints(&case["labels"]);
        let out = ProxyLoss::<F>::compute(&loss, x.view(), y.view(), w.view(), true).expect(name);
        rel(&format!("{name} value"), out.value.f64(), case["value"].as_f64().expect("value"), rtol);
        close(&format!("{name} grad"), &flat(&out.grad.expect("grad")), &floats(&case["grad"]), rtol);
        close(
            &format!("{name} grad_proxies"),
            &flat(&out.grad_proxies.expect("g")),
            &floats(&case["grad_proxies"]),
            rtol,
        );
        let kept = loss.kept_pairs(x.view(), y.view()).expect(name);
        assert_eq!(kept.len() as u64, case["kept"].as_u64().expect("kept"), "{name}: kept pairs");
    }
}

#[test]
fn unpg_matches_the_official_code_f64() {
    unpg_fixture::<f64>(1e-9);
}

#[test]
fn unpg_matches_the_official_code_f32() {
    unpg_fixture::<f32>(3e-4);
}

#[test]
fn unpg_gradients_match_finite_differences() {
    for loss in [
        Unpg::new().scale(4.0),
        Unpg::new().scale(6.0).whisker(0.0).reduction(Reduction::Sum),
        Unpg::arcface().scale(3.0),
        Unpg::arcface().margin(40.0).scale(2.0).whisker(1.0).reduction(Reduction::None),
    ] {
        for (seed, n, d, c) in [(1_u64, 9, 4, 3), (2, 12, 5, 4), (3, 7, 3, 2)] {
            let x = emb(seed, n, d);
            let w = emb(seed + 50, c as usize, d);
            let y = labels(seed + 100, n, c);
            assert!(!loss.kept_pairs(x.view(), y.view()).expect("pairs").is_empty());
            let out = ProxyLoss::<f64>::compute(&loss, x.view(), y.view(), w.view(), true).expect("unpg");
            let val = |x: &Array2<f64>, w: &Array2<f64>| {
                ProxyLoss::<f64>::compute(&loss, x.view(), y.view(), w.view(), false).expect("value").value
            };
            let (gx, gw) = (out.grad.expect("grad").into_dyn(), out.grad_proxies.expect("grad").into_dyn());
            if let Err(m) = gradcheck::check(|v| val(&to2(v), &w), &x.clone().into_dyn(), &gx, OPTS) {
                panic!("{loss:?} seed {seed} (embeddings): {m:?}");
            }
            if let Err(m) = gradcheck::check(|v| val(&x, &to2(v)), &w.clone().into_dyn(), &gw, OPTS) {
                panic!("{loss:?} seed {seed} (proxies): {m:?}");
            }
        }
    }
}

#[test]
fn unpg_without_negative_pairs_is_the_base_loss_exactly() {
    let x = emb(4, 6, 3);
    let w = emb(5, 3, 3);
    let y = array![2_i64, 2, 2, 2, 2, 2];
    let u = ProxyLoss::<f64>::compute(&Unpg::new(), x.view(), y.view(), w.view(), true).expect("unpg");
    let b = ProxyLoss::<f64>::compute(&CosFace::new(), x.view(), y.view(), w.view(), true).expect("cosface");
    assert_eq!(u, b);
    let u = ProxyLoss::<f64>::compute(&Unpg::arcface(), x.view(), y.view(), w.view(), true).expect("unpg");
    let b = ProxyLoss::<f64>::compute(&ArcFace::new(), x.view(), y.view(), w.view(), true).expect("arcface");
    assert_eq!(u, b);
    // With negatives, the extra logits only add mass to the denominator: every row's loss grows.
    let y = array![0_i64, 1, 2, 0, 1, 2];
    let u = ProxyLoss::<f64>::compute(&Unpg::new().scale(4.0), x.view(), y.view(), w.view(), false).expect("u");
    let b = ProxyLoss::<f64>::compute(&CosFace::new().scale(4.0), x.view(), y.view(), w.view(), false).expect("b");
    for (a, c) in u.per_sample.expect("per").iter().zip(b.per_sample.expect("per").iter()) {
        assert!(a > c, "{a} > {c}");
    }
}

#[test]
fn unpg_hand_computed_row() {
    // Two samples of different classes at 90°, proxies on the axes: cos = I, one negative pair of similarity 0
    // (kept). CosFace m = 0.35, s = 2: ℓ = −log(e^{2·0.65} / (e^{2·0.65} + e^{0} + e^{0})) per row.
    let x = array![[1.0_f64, 0.0], [0.0, 1.0]];
    let w = array![[1.0_f64, 0.0], [0.0, 1.0]];
    let y = array![0_i64, 1];
    let out = ProxyLoss::<f64>::compute(&Unpg::new().scale(2.0), x.view(), y.view(), w.view(), false).expect("u");
    let want = -(1.3_f64.exp() / (1.3_f64.exp() + 2.0)).ln();
    rel("hand", out.value, want, 1e-13);
}

#[test]
fn whisker_filter_matches_the_spec_oracle() {
    let s = [0.2, -0.9, 0.05, -0.2, 0.95, -0.1, 0.0, 0.1];
    let kept: Vec<f64> = box_and_whisker(&s, 1.5).into_iter().map(|i| s[i]).collect();
    assert_eq!(kept, vec![-0.2, -0.1, 0.0, 0.05, 0.1, 0.2]);
    let all: Vec<f64> = box_and_whisker(&s, 10.0).into_iter().map(|i| s[i]).collect();
    assert_eq!(all.len(), 8);
}

#[test]
fn unpg_bad_input_is_named() {
    let x = emb(5, 6, 3);
    let w = emb(7, 3, 3);
    let y = array![0_i64, 1, 0, 1, 2, 2];
    let run = |x: &Array2<f64>, y: &Array1<i64>, w: &Array2<f64>| {
        ProxyLoss::<f64>::compute(&Unpg::new(), x.view(), y.view(), w.view(), true)
    };
    let mut nan = x.clone();
    nan[[2, 1]] = f64::NAN;
    assert!(matches!(run(&nan, &y, &w), Err(Error::NonFinite { arg: "embeddings", index: 7, .. })));
    assert!(matches!(run(&x, &array![0_i64, 1], &w), Err(Error::Shape { arg: "labels", .. })));
    assert!(matches!(run(&x, &array![0_i64, 1, 0, 1, 3, 2], &w), Err(Error::LabelOutOfRange { label: 3, .. })));
    assert!(matches!(run(&x, &y, &emb(8, 3, 4)), Err(Error::Shape { arg: "proxies", .. })));
    assert!(matches!(run(&Array2::zeros((0, 3)), &Array1::zeros(0), &w), Err(Error::Empty { arg: "embeddings" })));
    let bad = ProxyLoss::<f64>::compute(&Unpg::new().whisker(f64::NAN), x.view(), y.view(), w.view(), false);
    assert!(matches!(bad, Err(Error::Parameter { name: "whisker", .. })));
    // A zero-norm embedding and a zero proxy stay finite.
    let mut z = x.clone();
    z.row_mut(3).fill(0.0);
    let mut wz = w.clone();
    wz.row_mut(1).fill(0.0);
    let out = run(&z, &y, &wz).expect("zero rows");
    assert!(out.value.is_finite() && out.grad.expect("g").iter().all(|v| v.is_finite()));
    // Extreme scale: finite.
    let out = ProxyLoss::<f64>::compute(&Unpg::new().scale(1e4), x.view(), y.view(), w.view(), true).expect("big");
    assert!(out.value.is_finite() && out.grad.expect("g").iter().all(|v| v.is_finite()));
}

// ---------------------------------------------------------------------------------------------------------------
// SBCL
// ---------------------------------------------------------------------------------------------------------------

fn sbcl_fixture<F: Real>(rtol: f64) {
    let f = fixtures();
    let cases = f["sbcl"].as_array().expect("sbcl");
    assert_eq!(cases.len(), 4);
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let loss = Sbcl::new()
            .temperature(case["temperature"].as_f64().expect("t"))
            .base_temperature(case["base_temperature"].as_f64().expect("tb"))
            .gamma(case["gamma"].as_f64().expect("g"));
        let x = matrix(&case["embeddings"]).mapv(F::c);
        let y = ints(&case["labels"]);
        let sub = ints(&case["subclass_labels"]);
        let t2 = case["class_temperature"].as_array().map(|_| Array1::from(floats(&case["class_temperature"])));
        let out = loss.compute(x.view(), y.view(), sub.view(), t2.as_ref().map(|t| t.view()), true).expect(name);
        rel(&format!("{name} value"), out.value.f64(), case["value"].as_f64().expect("value"), rtol);
        let per: Vec<f64> = out.per_sample.expect("per").iter().map(|v| v.f64()).collect();
        close(&format!("{name} per_sample"), &per, &floats(&case["per_sample"]), rtol);
        close(&format!("{name} grad"), &flat(&out.grad.expect("grad")), &floats(&case["grad"]), rtol);
    }
}

#[test]
fn sbcl_matches_the_official_code_f64() {
    sbcl_fixture::<f64>(1e-9);
}

#[test]
fn sbcl_matches_the_official_code_f32() {
    sbcl_fixture::<f32>(3e-4);
}

#[test]
fn sbcl_gradients_match_finite_differences() {
    for (loss, views) in [
        (Sbcl::new().temperature(0.5).base_temperature(0.4), 2),
        (Sbcl::new().temperature(0.3).gamma(1.0).reduction(Reduction::Sum), 3),
        (Sbcl::new().temperature(0.6).reduction(Reduction::None), 1),
    ] {
        for (seed, b, d, c) in [(1_u64, 6, 4, 2), (2, 9, 3, 3)] {
            let x = emb(seed, b * views, d);
            let y = labels(seed + 10, b, c);
            let sub = Array1::from_shape_fn(b, |i| y[i] * 2 + (i as i64 % 2));
            let t2 = Array1::from_shape_fn(c as usize, |k| 0.4 + 0.2 * k as f64);
            let run = |x: &Array2<f64>, g| loss.compute(x.view(), y.view(), sub.view(), Some(t2.view()), g);
            let g = run(&x, true).expect("sbcl").grad.expect("grad").into_dyn();
            if let Err(m) = gradcheck::check(|v| run(&to2(v), false).expect("v").value, &x.clone().into_dyn(), &g, OPTS)
            {
                panic!("{loss:?} views {views} seed {seed}: {m:?}");
            }
        }
    }
}

#[test]
fn sbcl_with_one_subclass_per_class_and_no_ranking_term_is_scaled_supcon() {
    // Spec §6.3 oracle: subclass = class, γ = 0 → (τ₁/τ_b)·SupCon (every anchor has its other view as positive,
    // so PML's non-zero average is the plain mean).
    let b = 8;
    let x = emb(11, 2 * b, 5);
    let y = labels(12, b, 3);
    let out = Sbcl::new().temperature(0.2).base_temperature(0.1).gamma(0.0).compute(
        x.view(),
        y.view(),
        y.view(),
        None,
        false,
    );
    let yy = ndarray::concatenate![ndarray::Axis(0), y, y];
    let sc =
        EmbeddingLoss::<f64>::compute(&SupCon::new().temperature(0.2), x.view(), yy.view(), None, false).expect("s");
    rel("sbcl vs supcon", out.expect("sbcl").value, 2.0 * sc.value, 1e-12);
    // The spec's SupCon oracle through SBCL (τ₁ = τ_b = 0.5, γ = 0).
    let z = array![[1.0_f64, 0.0], [0.0, 1.0], [0.6, 0.8], [0.8, 0.6]];
    let y = array![0_i64, 1];
    let out = Sbcl::new().temperature(0.5).base_temperature(0.5).gamma(0.0).compute(
        z.view(),
        y.view(),
        y.view(),
        None,
        false,
    );
    rel("spec §6.1", out.expect("sbcl").value, 1.270714, 1e-6);
}

#[test]
fn sbcl_bad_input_is_named() {
    let x = emb(3, 8, 3);
    let y = array![0_i64, 1, 0, 1];
    let sub = array![0_i64, 1, 2, 1];
    let l = Sbcl::new();
    assert!(matches!(
        l.compute(x.view(), array![0_i64, 1, 0].view(), sub.view(), None, true),
        Err(Error::Shape { arg: "labels", .. })
    ));
    assert!(matches!(
        l.compute(x.view(), y.view(), array![0_i64, 1].view(), None, true),
        Err(Error::Shape { arg: "subclass_labels", .. })
    ));
    assert!(matches!(
        l.compute(x.view(), y.view(), array![0_i64, 0, 2, 1].view(), None, true),
        Err(Error::Input { .. })
    ));
    let t2 = array![0.1, 0.2];
    assert!(matches!(
        l.compute(x.view(), array![0_i64, 1, 2, 1].view(), array![0_i64, 1, 2, 1].view(), Some(t2.view()), true),
        Err(Error::LabelOutOfRange { arg: "labels", label: 2, .. })
    ));
    let t2 = array![0.1, 0.0];
    assert!(matches!(
        l.compute(x.view(), y.view(), sub.view(), Some(t2.view()), true),
        Err(Error::Parameter { name: "class_temperature", .. })
    ));
    let mut nan = x.clone();
    nan[[1, 2]] = f64::NAN;
    assert!(matches!(
        l.compute(nan.view(), y.view(), sub.view(), None, true),
        Err(Error::NonFinite { arg: "embeddings", index: 5, .. })
    ));
    assert!(matches!(
        l.compute(Array2::<f64>::zeros((0, 3)).view(), y.view(), sub.view(), None, true),
        Err(Error::Empty { arg: "embeddings" })
    ));
    // Degenerate but valid: a single class, one view, a zero-norm row: finite.
    for (xx, yy, ss) in [
        (x.clone(), array![1_i64, 1, 1, 1], array![0_i64, 0, 1, 1]),
        (emb(4, 4, 3), array![0_i64, 1, 2, 3], array![0_i64, 1, 2, 3]),
    ] {
        let out = l.compute(xx.view(), yy.view(), ss.view(), None, true).expect("degenerate");
        assert!(out.value.is_finite() && out.grad.expect("g").iter().all(|v| v.is_finite()));
    }
    let mut z = x.clone();
    z.row_mut(2).fill(0.0);
    let out = l.compute(z.view(), y.view(), sub.view(), None, true).expect("zero row");
    assert!(out.value.is_finite() && out.grad.expect("g").iter().all(|v| v.is_finite()));
}

#[test]
fn sbcl_f32_agrees_with_f64_and_rescaling_rows_changes_nothing() {
    let x = emb(21, 12, 4);
    let y = labels(22, 6, 2);
    let sub = Array1::from_shape_fn(6, |i| y[i] * 3 + (i as i64 % 3));
    let l = Sbcl::new().temperature(0.3);
    let a = l.compute(x.view(), y.view(), sub.view(), None, true).expect("f64");
    let b = l.compute(x.mapv(|v| v as f32).view(), y.view(), sub.view(), None, true).expect("f32");
    rel("f32", b.value as f64, a.value, 1e-5);
    let mut scaled = x.clone();
    for (i, mut r) in scaled.rows_mut().into_iter().enumerate() {
        r *= 0.5 + i as f64;
    }
    let c = l.compute(scaled.view(), y.view(), sub.view(), None, false).expect("scaled");
    rel("rescaled", c.value, a.value, 1e-12);
}

// ---------------------------------------------------------------------------------------------------------------
// Cross-batch memory
// ---------------------------------------------------------------------------------------------------------------

/// A reference set as a loss received it.
type Seen = Option<(Array2<f64>, Vec<i64>)>;

/// A loss that records the reference set it receives and returns the number of reference rows as its value.
#[derive(Debug, Default)]
struct Recorder {
    seen: std::sync::Mutex<Vec<Seen>>,
}

impl EmbeddingLoss<f64> for Recorder {
    fn compute(
        &self,
        embeddings: ndarray::ArrayView2<'_, f64>,
        _labels: ndarray::ArrayView1<'_, i64>,
        reference: Option<losskit_losses::Reference<'_, f64>>,
        _grad: bool,
    ) -> losskit_losses::Result<losskit_losses::EmbeddingOutput<f64>> {
        let r = reference.map(|r| (r.embeddings.to_owned(), r.labels.to_vec()));
        let value = r.as_ref().map_or(0.0, |r| r.0.nrows() as f64);
        self.seen.lock().expect("lock").push(r);
        Ok(losskit_losses::EmbeddingOutput {
            value,
            per_sample: None,
            grad: Some(Array2::zeros(embeddings.dim())),
            grad_reference: None,
        })
    }
}

#[test]
fn memory_reference_set_is_the_queue_of_earlier_batches() {
    let mut m = CrossBatchMemory::new(Recorder::default(), 7, 1.0).expect("memory");
    let batches: Vec<(Array2<f64>, Array1<i64>)> = (0..4).map(|k| (emb(30 + k, 3, 2), labels(40 + k, 3, 4))).collect();
    for (x, y) in &batches {
        m.compute(x.view(), y.view(), true).expect("step");
    }
    let seen = m.loss.seen.lock().expect("lock").clone();
    // Each step: the in-batch call (no reference) then, once the memory is non-empty, the memory call.
    assert_eq!(seen.len(), 1 + 3 * 2);
    assert_eq!(seen.iter().filter(|s| s.is_none()).count(), 4);
    let refs: Vec<&(Array2<f64>, Vec<i64>)> = seen.iter().flatten().collect();
    assert_eq!(refs.len(), 3);
    // Step k sees the last min(3k, 7) rows of the earlier batches, oldest first.
    for (k, (e, l)) in refs.iter().enumerate() {
        let k = k + 1;
        let all_x =
            ndarray::concatenate(ndarray::Axis(0), &batches[..k].iter().map(|b| b.0.view()).collect::<Vec<_>>())
                .expect("cat");
        let all_y: Vec<i64> = batches[..k].iter().flat_map(|b| b.1.to_vec()).collect();
        let start = all_x.nrows().saturating_sub(7);
        assert_eq!(e, &all_x.slice(ndarray::s![start.., ..]).to_owned(), "step {k}");
        assert_eq!(l, &all_y[start..].to_vec(), "step {k}");
    }
    assert_eq!(m.len(), 7);
    let (e, l) = m.memory();
    assert_eq!(e.row(6), batches[3].0.row(2));
    assert_eq!(l[6], batches[3].1[2]);
    // A batch larger than the capacity keeps its last rows; a different width is an error that leaves the memory.
    let big = emb(50, 9, 2);
    m.enqueue(big.view(), labels(51, 9, 3).view()).expect("enqueue");
    assert_eq!(m.memory().0, big.slice(ndarray::s![2.., ..]).to_owned());
    let before = m.memory();
    let wide = emb(52, 2, 3);
    assert!(matches!(
        m.compute(wide.view(), array![0_i64, 1].view(), false),
        Err(Error::Shape { arg: "embeddings", .. })
    ));
    assert_eq!(m.memory(), before);
    m.clear();
    assert!(m.is_empty());
    assert!(matches!(
        CrossBatchMemory::<Recorder, f64>::new(Recorder::default(), 0, 1.0),
        Err(Error::Parameter { name: "capacity", .. })
    ));
    assert!(matches!(
        CrossBatchMemory::<Recorder, f64>::new(Recorder::default(), 3, -1.0),
        Err(Error::Parameter { name: "weight", .. })
    ));
}

#[test]
fn memory_value_and_gradient_are_the_in_batch_plus_weighted_reference_terms() {
    for loss in [MultiSimilarity::new(), MultiSimilarity::new().alpha(1.0).beta(5.0)] {
        let mut m = CrossBatchMemory::new(loss.clone(), 10, 0.5).expect("memory");
        let (x0, y0) = (emb(60, 6, 4), labels(61, 6, 3));
        m.compute(x0.view(), y0.view(), false).expect("first");
        let (x, y) = (emb(62, 6, 4), labels(63, 6, 3));
        let out = m.compute_with_memory(x.view(), y.view(), true).expect("with memory");
        let plain = EmbeddingLoss::<f64>::compute(&loss, x.view(), y.view(), None, true).expect("plain");
        let reference = losskit_losses::Reference { embeddings: x0.view(), labels: y0.view() };
        let cross = EmbeddingLoss::<f64>::compute(&loss, x.view(), y.view(), Some(reference), true).expect("cross");
        rel("value", out.value, plain.value + 0.5 * cross.value, 1e-13);
        let g = out.grad.clone().expect("grad");
        let want = plain.grad.expect("g") + cross.grad.expect("g") * 0.5;
        close("grad", &flat(&g), &flat(&want), 1e-13);
        let f = |v: &ArrayD<f64>| m.compute_with_memory(to2(v).view(), y.view(), false).expect("v").value;
        if let Err(e) = gradcheck::check(f, &x.clone().into_dyn(), &g.into_dyn(), OPTS) {
            panic!("{loss:?}: {e:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Cosine nearest-class-mean (hyperspherical evaluation)
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn cosine_ncm_classifies_by_direction() {
    // Class means along the axes (given with different norms); queries at any norm go to the nearest direction.
    let ncm = CosineNcm::fit(array![[2.0_f64, 0.0], [0.0, 0.5], [-3.0, -3.0]].view()).expect("fit");
    let q = array![[10.0_f64, 1.0], [0.1, 0.3], [-1.0, -0.9], [1.0, 1.0]];
    // [1, 1] is at 45° from classes 0 and 1: the tie goes to class 0.
    assert_eq!(ncm.predict(q.view()).expect("predict").to_vec(), vec![0, 1, 2, 0]);
    let s = ncm.scores(q.view()).expect("scores");
    rel("cosine", s[[1, 1]], 0.3 / (0.1_f64.powi(2) + 0.09).sqrt(), 1e-14);
    // From embeddings: means of the normalised rows, so a long row does not dominate.
    let x = array![[100.0_f64, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.1]];
    let y = array![0_i64, 0, 1, 1];
    let ncm = CosineNcm::from_embeddings(x.view(), y.view(), 2).expect("fit");
    let m = ncm.means();
    rel("mean 0 is at 45°", m[[0, 0]], std::f64::consts::FRAC_1_SQRT_2, 1e-14);
    let f32_ncm = CosineNcm::from_embeddings(x.mapv(|v| v as f32).view(), y.view(), 2).expect("f32");
    assert_eq!(f32_ncm.predict(q.mapv(|v| v as f32).view()).expect("p"), ncm.predict(q.view()).expect("p"));
    // Bad input.
    assert!(matches!(CosineNcm::fit(array![[0.0_f64, 0.0], [1.0, 0.0]].view()), Err(Error::Degenerate { .. })));
    assert!(matches!(CosineNcm::<f64>::fit(Array2::zeros((0, 2)).view()), Err(Error::Empty { arg: "means" })));
    assert!(matches!(CosineNcm::from_embeddings(x.view(), y.view(), 3), Err(Error::Degenerate { .. })));
    assert!(matches!(
        CosineNcm::from_embeddings(x.view(), array![0_i64, 0, 2, 1].view(), 2),
        Err(Error::LabelOutOfRange { arg: "labels", .. })
    ));
    assert!(matches!(ncm.predict(array![[1.0_f64, 2.0, 3.0]].view()), Err(Error::Shape { arg: "queries", .. })));
    assert!(matches!(ncm.predict(array![[f64::NAN, 2.0]].view()), Err(Error::NonFinite { arg: "queries", .. })));
}
