//! AnyLoss, Dice, Tversky and EnsLoss: frozen references from torch transcriptions of the official code
//! (fixtures/classification_b.json, written by tools/fixtures/gen_classification_b.py), finite-difference gradients
//! of the non-default options, and the identities and limits of each loss.

use losskit_losses::{
    AnyLoss, AnyMetric, BinaryLoss, ClassLoss, Dice, EnsLoss, EnsLossState, OverlapMode, Reduction, Targets, Tversky,
    registry,
};
use losskit_tensor::gradcheck;
use ndarray::{Array1, Array2, ArrayD, IxDyn};
use serde_json::Value;

use crate::common::{Prec, assert_close, assert_rel, normal, rng};

fn fixtures() -> Value {
    losskit_tensor::gradcheck::load_json(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/classification_b.json"))
}

fn floats(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(a) => a.iter().flat_map(floats).collect(),
        Value::Number(x) => vec![x.as_f64().expect("number")],
        other => panic!("not a number: {other}"),
    }
}

fn shape(v: &Value) -> Vec<usize> {
    match v {
        Value::Array(a) => {
            let mut s = vec![a.len()];
            if let Some(first) = a.first().filter(|f| f.is_array()) {
                s.extend(shape(first));
            }
            s
        }
        _ => vec![],
    }
}

/// Runs one fixture case in precision `F`: (value, gradient) of the Mean reduction.
fn run_case<F: Prec>(case: &Value) -> (f64, Vec<f64>) {
    let name = case["name"].as_str().expect("name");
    let loss = case["loss"].as_str().expect("loss");
    let entry = registry::find(loss).expect("registered");
    let pairs: Vec<(String, String)> = case["params"]
        .as_object()
        .expect("params")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("text").to_string()))
        .collect();
    let params = entry.params(&pairs).unwrap_or_else(|e| panic!("{name}: {e}"));
    let x = floats(&case["x"]);
    let dims = shape(&case["x"]);
    match case["form"].as_str() {
        Some("class") => {
            let built = (entry.build)(&params).unwrap_or_else(|e| panic!("{name}: {e}"));
            let labels: Vec<i64> =
                case["targets"].as_array().expect("labels").iter().map(|v| v.as_i64().expect("int")).collect();
            let z = Array2::from_shape_vec((dims[0], dims[1]), x.iter().map(|&v| F::c(v)).collect()).expect("2-D");
            let l = built.class.as_deref().expect("class form");
            let o = F::class(l, z.view(), Targets::hard(&labels), None, true).unwrap_or_else(|e| panic!("{name}: {e}"));
            (o.value.f64(), o.grad.expect("grad").iter().map(|v| v.f64()).collect())
        }
        _ => {
            let s: Array1<F> = x.iter().map(|&v| F::c(v)).collect();
            let t: Array1<F> = floats(&case["targets"]).into_iter().map(F::c).collect();
            if loss == "ensloss" {
                let cfg = EnsLoss::from_params(&params).unwrap_or_else(|e| panic!("{name}: {e}"));
                let draws = floats(&case["draws"]);
                let o = cfg.compute_with_draws(s.view(), t.view(), None, &draws, true).expect(name);
                (o.value.f64(), o.grad.expect("grad").iter().map(|v| v.f64()).collect())
            } else {
                let built = (entry.build)(&params).unwrap_or_else(|e| panic!("{name}: {e}"));
                let l = built.binary.as_deref().expect("binary form");
                let o = F::binary(l, s.view(), t.view(), None, true).unwrap_or_else(|e| panic!("{name}: {e}"));
                (o.value.f64(), o.grad.expect("grad").iter().map(|v| v.f64()).collect())
            }
        }
    }
}

#[test]
fn matches_the_official_code_in_f64() {
    let fx = fixtures();
    let cases = fx["cases"].as_array().expect("cases");
    assert!(cases.len() >= 150);
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let (value, grad) = run_case::<f64>(case);
        assert_rel(&format!("{name}: value"), value, case["value"].as_f64().expect("value"), 1e-10);
        assert_close(&format!("{name}: grad"), &grad, &floats(&case["grad"]), 1e-9);
    }
}

#[test]
fn matches_the_official_code_in_f32() {
    let fx = fixtures();
    for case in fx["cases"].as_array().expect("cases") {
        let name = case["name"].as_str().expect("name");
        // An f32 rounding of a score may swap two ranks or cross the tail at z = 1; EnsLoss is checked in f64.
        if case["loss"] == "ensloss" {
            continue;
        }
        let (value, grad) = run_case::<f32>(case);
        assert_rel(&format!("{name}: f32 value"), value, case["value"].as_f64().expect("value"), 2e-5);
        assert_close(&format!("{name}: f32 grad"), &grad, &floats(&case["grad"]), 2e-5);
    }
}

fn random(seed: u64, n: usize, scale: f64) -> Vec<f64> {
    let mut r = rng(seed);
    (0..n).map(|_| scale * normal(&mut r)).collect()
}

fn binary_problem(seed: u64, n: usize) -> (ArrayD<f64>, Array1<f64>) {
    let x = ArrayD::from_shape_vec(IxDyn(&[n]), random(seed, n, 2.0)).expect("1-D");
    let t = Array1::from_iter((0..n).map(|i| if (i * 7 + seed as usize).is_multiple_of(3) { 1.0 } else { 0.0 }));
    (x, t)
}

fn class_problem(seed: u64, n: usize, c: usize) -> (ArrayD<f64>, Vec<i64>) {
    let x = ArrayD::from_shape_vec(IxDyn(&[n, c]), random(seed, n * c, 2.0)).expect("2-D");
    let y = (0..n).map(|i| ((i * 5 + seed as usize) % c) as i64).collect();
    (x, y)
}

const OPTS: gradcheck::Options = gradcheck::Options { step: 1e-6, rtol: 1e-6, atol: 1e-8 };

#[track_caller]
fn gradcheck_binary<L: BinaryLoss<f64>>(what: &str, loss: &L, seed: u64, n: usize, weights: bool) {
    let (x, t) = binary_problem(seed, n);
    let w = weights.then(|| Array1::from_iter((0..n).map(|i| 0.5 + (i % 3) as f64)));
    let f = |x: &ArrayD<f64>| {
        let x = x.view().into_dimensionality().expect("1-D");
        loss.compute(x, t.view(), w.as_ref().map(|w| w.view()), false).expect(what).value
    };
    let xv = x.view().into_dimensionality().expect("1-D");
    let g = loss.compute(xv, t.view(), w.as_ref().map(|w| w.view()), true).expect(what).grad.expect("grad");
    if let Err(m) = gradcheck::check(f, &x, &g.into_dyn(), OPTS) {
        panic!("{what}: {m:?}");
    }
}

#[track_caller]
fn gradcheck_class<L: ClassLoss<f64>>(what: &str, loss: &L, seed: u64, n: usize, c: usize, weights: bool) {
    let (x, y) = class_problem(seed, n, c);
    let w = weights.then(|| Array1::from_iter((0..n).map(|i| 0.5 + (i % 3) as f64)));
    let f = |x: &ArrayD<f64>| {
        let x = x.view().into_dimensionality().expect("2-D");
        loss.compute(x, Targets::hard(&y), w.as_ref().map(|w| w.view()), false).expect(what).value
    };
    let xv = x.view().into_dimensionality().expect("2-D");
    let g = loss.compute(xv, Targets::hard(&y), w.as_ref().map(|w| w.view()), true).expect(what).grad.expect("grad");
    if let Err(m) = gradcheck::check(f, &x, &g.into_dyn(), OPTS) {
        panic!("{what}: {m:?}");
    }
}

#[test]
fn every_option_passes_the_finite_difference_check() {
    let metrics = [AnyMetric::Accuracy, AnyMetric::FBeta, AnyMetric::GMean, AnyMetric::BalancedAccuracy];
    for (k, m) in metrics.into_iter().enumerate() {
        for red in [Reduction::Mean, Reduction::Sum] {
            let a = AnyLoss::new().metric(m).amplifier(4.0).beta(1.5).reduction(red);
            gradcheck_binary(&format!("anyloss {m:?} binary"), &a, 10 + k as u64, 9, true);
            gradcheck_class(&format!("anyloss {m:?} class"), &a, 20 + k as u64, 8, 3, true);
        }
    }
    let modes = [OverlapMode::Official, OverlapMode::Instance, OverlapMode::Column, OverlapMode::Batch];
    for (k, mode) in modes.into_iter().enumerate() {
        for square in [false, true] {
            for alpha in [0.0, 0.3, 1.0, 2.0] {
                let d = Dice::new().mode(mode).square_denominator(square).alpha(alpha).smooth(0.5);
                let what = format!("dice {mode:?} square={square} alpha={alpha}");
                gradcheck_binary(&what, &d, 30 + k as u64, 7, true);
                gradcheck_class(&what, &d, 40 + k as u64, 6, 4, true);
            }
        }
        let t = Tversky::new().alpha(0.3).beta(0.8).smooth(0.2).mode(mode).reduction(Reduction::Sum);
        gradcheck_binary(&format!("tversky {mode:?}"), &t, 50 + k as u64, 7, true);
        gradcheck_class(&format!("tversky {mode:?}"), &t, 60 + k as u64, 6, 4, true);
    }
    for (anchor, tail, lam) in [(true, true, 0.0), (false, false, 0.5), (true, false, -0.4)] {
        let e = EnsLoss::new().anchor(anchor).tail(tail).lam(lam).seed(3);
        gradcheck_binary(&format!("ensloss anchor={anchor} tail={tail}"), &e, 70, 11, true);
    }
}

#[test]
fn official_mode_is_the_named_mode() {
    let (x, t) = binary_problem(5, 12);
    let x = x.into_dimensionality().expect("1-D");
    let (z, y) = class_problem(6, 9, 4);
    let z = z.into_dimensionality().expect("2-D");
    let bin = |d: &Dice| BinaryLoss::<f64>::compute(d, x.view(), t.view(), None, true).expect("dice");
    let cls = |d: &Dice| ClassLoss::<f64>::compute(d, z.view(), Targets::hard(&y), None, true).expect("dice");
    for square in [false, true] {
        let official = Dice::new().square_denominator(square).alpha(0.2);
        assert_eq!(bin(&official), bin(&official.clone().mode(OverlapMode::Batch)), "binary official = batch");
        let named = if square { OverlapMode::Instance } else { OverlapMode::Column };
        assert_eq!(cls(&official), cls(&official.clone().mode(named)), "class official, square = {square}");
    }
}

#[test]
fn integer_weights_act_as_repeated_samples() {
    // AnyLoss accuracy (no smoothing term) and set-level dice with s = 0 are ratios of batch sums, so a weight of 2
    // is the sample taken twice.
    let (x, t) = binary_problem(8, 7);
    let x: Array1<f64> = x.into_dimensionality().expect("1-D");
    let w = Array1::from(vec![2.0, 1.0, 1.0, 3.0, 1.0, 1.0, 2.0]);
    let idx: Vec<usize> = (0..7).flat_map(|i| std::iter::repeat_n(i, w[i] as usize)).collect();
    let xr = Array1::from_iter(idx.iter().map(|&i| x[i]));
    let tr = Array1::from_iter(idx.iter().map(|&i| t[i]));
    let acc = AnyLoss::new().metric(AnyMetric::Accuracy).amplifier(9.0);
    let dice = Dice::new().mode(OverlapMode::Batch).smooth(0.0).square_denominator(true).alpha(0.5);
    let pairs: [(&str, &dyn losskit_losses::DynBinaryLoss); 2] = [("anyloss accuracy", &acc), ("dice batch", &dice)];
    for (what, loss) in pairs {
        let a = BinaryLoss::<f64>::compute(loss, x.view(), t.view(), Some(w.view()), true).expect(what);
        let b = BinaryLoss::<f64>::compute(loss, xr.view(), tr.view(), None, true).expect(what);
        assert_rel(what, a.value, b.value, 1e-12);
        // The repeated copies' gradients add up to the weighted sample's.
        let gb = b.grad.expect("grad");
        let mut summed = vec![0.0; 7];
        for (k, &i) in idx.iter().enumerate() {
            summed[i] += gb[k];
        }
        assert_close(what, &a.grad.expect("grad").to_vec(), &summed, 1e-12);
    }
}

#[test]
fn anyloss_limits() {
    // Perfect, confident predictions: ŷ ≈ y, every metric ≈ 1.
    let x = Array1::from(vec![30.0, -30.0, 30.0, -30.0, -30.0]);
    let t = Array1::from(vec![1.0, 0.0, 1.0, 0.0, 0.0]);
    for m in [AnyMetric::Accuracy, AnyMetric::FBeta, AnyMetric::GMean, AnyMetric::BalancedAccuracy] {
        let out = BinaryLoss::<f64>::compute(&AnyLoss::new().metric(m), x.view(), t.view(), None, true).expect("ok");
        assert!(out.value < 1e-5, "{m:?}: {}", out.value);
        assert!(out.grad.expect("grad").iter().all(|g| g.abs() < 1e-12));
    }
    // Batch-level: the per-sample values are the batch loss, weighted.
    let w = Array1::from(vec![1.0, 2.0, 0.5, 1.0, 1.0]);
    let x = Array1::from(vec![0.3, -1.0, 2.0, 0.1, -0.2]);
    let cfg = AnyLoss::new().reduction(Reduction::None);
    let out = BinaryLoss::<f64>::compute(&cfg, x.view(), t.view(), Some(w.view()), false).expect("ok");
    let mean = BinaryLoss::<f64>::compute(&AnyLoss::new(), x.view(), t.view(), Some(w.view()), false).expect("ok");
    let ps = out.per_sample.expect("per-sample");
    for i in 0..5 {
        assert_rel("per-sample share", ps[i], w[i] * mean.value, 1e-14);
    }
}

#[test]
fn dice_limits() {
    // Square, α = 0, y = 1, p → 1: loss 0 per instance; y = 0: 1 − s/(p² + s) (spec §6.2 oracles).
    let d = Dice::new().square_denominator(true).mode(OverlapMode::Instance).reduction(Reduction::None);
    let x = Array1::from(vec![40.0, 0.5]);
    let t = Array1::from(vec![1.0, 0.0]);
    let ps = BinaryLoss::<f64>::compute(&d, x.view(), t.view(), None, false).expect("ok").per_sample.expect("ps");
    assert!(ps[0].abs() < 1e-15);
    let p = 1.0 / (1.0 + (-0.5_f64).exp());
    assert_rel("easy negative", ps[1], 1.0 - 1e-4 / (p * p + 1e-4), 1e-13);
    // The self-adjusting factor keeps a finite gradient as p → 1 for α < 1.
    for alpha in [0.01, 0.5] {
        let d = Dice::new().alpha(alpha).mode(OverlapMode::Instance);
        let x = Array1::from(vec![60.0, -60.0]);
        let g = BinaryLoss::<f64>::compute(&d, x.view(), t.view(), None, true).expect("ok").grad.expect("g");
        assert!(g.iter().all(|v| v.is_finite()), "alpha {alpha}: {g:?}");
    }
}

#[test]
fn tversky_half_half_is_instance_dice() {
    let (z, y) = class_problem(12, 7, 5);
    let z: Array2<f64> = z.into_dimensionality().expect("2-D");
    let t = Tversky::new().smooth(0.25);
    let d = Dice::new().smooth(0.5).mode(OverlapMode::Instance);
    let a = ClassLoss::<f64>::compute(&t, z.view(), Targets::hard(&y), None, true).expect("tversky");
    let b = ClassLoss::<f64>::compute(&d, z.view(), Targets::hard(&y), None, true).expect("dice");
    assert_rel("value", a.value, b.value, 1e-13);
    assert_close(
        "grad",
        &a.grad.expect("g").into_raw_vec_and_offset().0,
        &b.grad.expect("g").into_raw_vec_and_offset().0,
        1e-13,
    );
}

#[test]
fn ensloss_derivatives_are_calibrated_and_monotone() {
    let n = 40;
    let (x, t) = binary_problem(13, n);
    let x: Array1<f64> = x.into_dimensionality().expect("1-D");
    for lam in [0.0, 0.5, -0.5, 2.0] {
        for seed in 0..5 {
            let cfg = EnsLoss::new().lam(lam).seed(seed).tail(false).reduction(Reduction::Sum);
            let g = BinaryLoss::<f64>::compute(&cfg, x.view(), t.view(), None, true).expect("ok").grad.expect("g");
            // ∂ℓ/∂z = g·(2y − 1) under Sum.
            let mut dz: Vec<(f64, f64)> =
                (0..n).map(|i| ((2.0 * t[i] - 1.0) * x[i], g[i] * (2.0 * t[i] - 1.0))).collect();
            assert!(dz.iter().all(|&(_, d)| (-1.0 - 1e-6..0.0).contains(&d)), "lam {lam}: {dz:?}");
            dz.sort_by(|a, b| a.0.total_cmp(&b.0));
            assert!(dz.windows(2).all(|w| w[0].1 <= w[1].1), "lam {lam} seed {seed}: not monotone");
        }
    }
    // The tail divides by the margin above 1 and keeps the sign.
    let cfg = EnsLoss::new().seed(1).reduction(Reduction::Sum);
    let plain = EnsLoss::new().seed(1).tail(false).reduction(Reduction::Sum);
    let a = BinaryLoss::<f64>::compute(&cfg, x.view(), t.view(), None, true).expect("ok").grad.expect("g");
    let b = BinaryLoss::<f64>::compute(&plain, x.view(), t.view(), None, true).expect("ok").grad.expect("g");
    for i in 0..n {
        let z = (2.0 * t[i] - 1.0) * x[i];
        let want = if z > 1.0 { (b[i] + 1e-6 * (2.0 * t[i] - 1.0)) / z - 1e-6 * (2.0 * t[i] - 1.0) } else { b[i] };
        assert_rel("tail", a[i], want, 1e-12);
    }
}

#[test]
fn ensloss_state_draws_a_new_loss_per_batch_and_replays_by_seed() {
    let (x, t) = binary_problem(14, 16);
    let x: Array1<f64> = x.into_dimensionality().expect("1-D");
    let mut s1 = EnsLossState::new(EnsLoss::new().seed(9));
    let mut s2 = EnsLossState::new(EnsLoss::new().seed(9));
    let a1 = s1.compute(x.view(), t.view(), None, true).expect("ok");
    let a2 = s1.compute(x.view(), t.view(), None, true).expect("ok");
    assert_ne!(a1.grad, a2.grad, "a new derivative per batch");
    assert_eq!(a1, s2.compute(x.view(), t.view(), None, true).expect("ok"), "same seed, same sequence");
    let first = BinaryLoss::<f64>::compute(&EnsLoss::new().seed(9), x.view(), t.view(), None, true).expect("ok");
    assert_eq!(first, a1, "the config's compute is the state's first batch");
}
