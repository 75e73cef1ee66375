//! Loss-specific identities and hand-checkable values.

use losskit_losses::{
    BinaryCrossEntropy, BinaryLoss, ClassLoss, CrossEntropy, Error, Focal, Reduction, SigmoidFocal, Targets,
};
use losskit_tensor::gradcheck;
use ndarray::{Array1, Array2, ArrayD, array};
use rand::RngExt;

use crate::common::{assert_close, assert_rel, normal, rng};

fn logits(seed: u64, n: usize, c: usize, scale: f64) -> Array2<f64> {
    let mut r = rng(seed);
    Array2::from_shape_simple_fn((n, c), || scale * normal(&mut r))
}

fn labels(seed: u64, n: usize, c: usize) -> Vec<i64> {
    let mut r = rng(seed);
    (0..n).map(|_| r.random_range(0..c as i64)).collect()
}

fn configs() -> Vec<CrossEntropy> {
    vec![
        CrossEntropy::new(),
        CrossEntropy::new().label_smoothing(0.2),
        CrossEntropy::new().class_weights(vec![0.5, 2.0, 1.0, 0.1, 3.0]).label_smoothing(0.1),
        CrossEntropy::new().temperature(0.3).reduction(Reduction::Sum),
        CrossEntropy::new().class_weights(vec![1.0, 1.0, 0.0, 2.0, 1.0]).temperature(4.0).reduction(Reduction::None),
    ]
}

#[test]
fn cross_entropy_is_invariant_to_shifting_a_row() {
    let x = logits(1, 9, 5, 3.0);
    let y = labels(2, 9, 5);
    let shift = Array1::from_iter((0..9).map(|i| (i as f64 - 4.0) * 37.5));
    let xs = &x + &shift.view().insert_axis(ndarray::Axis(1));
    let t = logits(3, 9, 5, 1.0).mapv(f64::abs);
    for ce in configs() {
        for soft in [false, true] {
            let targets = if soft { Targets::soft(t.view()) } else { Targets::hard(&y) };
            let a = ce.compute(x.view(), targets, None, true).unwrap();
            let b = ce.compute(xs.view(), targets, None, true).unwrap();
            assert_rel(&format!("{ce:?} soft={soft}"), b.value, a.value, 1e-12);
            let (ga, gb) = (a.grad.unwrap(), b.grad.unwrap());
            assert_close(
                &format!("{ce:?} soft={soft}"),
                &gb.iter().copied().collect::<Vec<_>>(),
                &ga.iter().copied().collect::<Vec<_>>(),
                1e-11,
            );
        }
    }
}

#[test]
fn cross_entropy_gradient_rows_sum_to_zero() {
    let x = logits(4, 12, 5, 3.0);
    let y = labels(5, 12, 5);
    let t = logits(6, 12, 5, 1.0).mapv(f64::abs);
    for ce in configs() {
        for soft in [false, true] {
            let targets = if soft { Targets::soft(t.view()) } else { Targets::hard(&y) };
            let g = ce.compute(x.view(), targets, None, true).unwrap().grad.unwrap();
            // Σ_j ∂ℓ/∂z_j = 0 for every configuration (shift invariance), probability targets included.
            let scale = g.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
            for row in g.rows() {
                assert!(row.sum().abs() <= 1e-14 * scale.max(1.0), "{ce:?}: row sums to {}", row.sum());
            }
        }
    }
}

#[test]
fn focal_with_gamma_zero_is_cross_entropy() {
    let x = logits(7, 10, 5, 3.0);
    let mut y = labels(8, 10, 5);
    y[3] = -100;
    let w = Array1::from_iter((0..10).map(|i| 0.5 + i as f64 / 10.0));
    let cw = vec![1.0, 0.3, 2.0, 1.5, 0.0];
    for red in [Reduction::Mean, Reduction::Sum, Reduction::None] {
        for class_weights in [None, Some(cw.clone())] {
            let mut ce = CrossEntropy::new().reduction(red);
            ce.class_weights = class_weights.clone();
            let mut focal = Focal::new().gamma(0.0).reduction(red);
            focal.class_weights = class_weights;
            let a = ce.compute(x.view(), Targets::hard(&y), Some(w.view()), true).unwrap();
            let b = focal.compute(x.view(), Targets::hard(&y), Some(w.view()), true).unwrap();
            assert_rel(&format!("{red}"), b.value, a.value, 1e-14);
            let (ga, gb) = (a.grad.unwrap(), b.grad.unwrap());
            assert_close(
                &format!("{red}"),
                &gb.iter().copied().collect::<Vec<_>>(),
                &ga.iter().copied().collect::<Vec<_>>(),
                1e-14,
            );
        }
    }
}

#[test]
fn focal_is_between_zero_and_cross_entropy() {
    let x = logits(9, 20, 6, 4.0);
    let y = labels(10, 20, 6);
    let ce = CrossEntropy::new().reduction(Reduction::None).compute(x.view(), Targets::hard(&y), None, false).unwrap();
    for gamma in [0.5, 1.0, 2.0, 5.0] {
        let f = Focal::new().gamma(gamma).reduction(Reduction::None);
        let f = f.compute(x.view(), Targets::hard(&y), None, false).unwrap();
        for (a, b) in f.per_sample.unwrap().iter().zip(ce.per_sample.as_ref().unwrap()) {
            assert!(*a >= 0.0 && *a <= *b, "γ = {gamma}: focal {a} vs CE {b}");
        }
    }
}

#[test]
fn hand_checkable_values() {
    let z = array![[0.0_f64, 0.0]];
    let f = Focal::new().compute(z.view(), Targets::hard(&[0]), None, false).unwrap();
    assert_rel("focal at a tie", f.value, 0.25 * std::f64::consts::LN_2, 1e-15);
    let z3 = array![[1.0_f64, 2.0, 3.0]];
    let ce = CrossEntropy::new().compute(z3.view(), Targets::hard(&[2]), None, false).unwrap();
    let want = (1.0_f64.exp() + 2.0_f64.exp() + 3.0_f64.exp()).ln() - 3.0;
    assert_rel("cross-entropy", ce.value, want, 1e-15);
    let smooth = CrossEntropy::new().label_smoothing(0.3).compute(z3.view(), Targets::hard(&[2]), None, false);
    let lse = want + 3.0;
    let want_smooth = 0.7 * want + 0.1 * ((lse - 1.0) + (lse - 2.0) + (lse - 3.0));
    assert_rel("smoothed cross-entropy", smooth.unwrap().value, want_smooth, 1e-15);
    let b = BinaryCrossEntropy::new().compute(array![0.0_f64].view(), array![0.5_f64].view(), None, true).unwrap();
    assert_rel("BCE at 0", b.value, std::f64::consts::LN_2, 1e-15);
    assert_eq!(b.grad.unwrap()[0], 0.0);
}

#[test]
fn one_class_gives_zero_loss_and_gradient() {
    let x = logits(11, 4, 1, 5.0);
    let y = [0, 0, 0, 0];
    for out in [
        CrossEntropy::new().compute(x.view(), Targets::hard(&y), None, true).unwrap(),
        CrossEntropy::new().label_smoothing(0.5).compute(x.view(), Targets::hard(&y), None, true).unwrap(),
        Focal::new().gamma(0.5).compute(x.view(), Targets::hard(&y), None, true).unwrap(),
    ] {
        assert_eq!(out.value, 0.0);
        assert!(out.grad.unwrap().iter().all(|&g| g == 0.0));
    }
}

#[test]
fn a_single_sample_is_fine() {
    let x = logits(12, 1, 4, 2.0);
    let out = Focal::new().compute(x.view(), Targets::hard(&[2]), None, true).unwrap();
    assert!(out.value > 0.0 && out.grad.unwrap().iter().all(|g| g.is_finite()));
}

#[test]
fn all_ignored_is_degenerate_under_mean_and_zero_under_sum() {
    let x = logits(13, 3, 4, 2.0);
    let y = [-100, -100, -100];
    for mean in [
        CrossEntropy::new().compute(x.view(), Targets::hard(&y), None, true),
        Focal::new().compute(x.view(), Targets::hard(&y), None, true),
    ] {
        let err = mean.unwrap_err();
        assert!(matches!(err, Error::Degenerate { .. }), "{err:?}");
        assert!(err.to_string().contains("ignored"), "{err}");
    }
    let sum = Focal::new().reduction(Reduction::Sum).compute(x.view(), Targets::hard(&y), None, true).unwrap();
    assert_eq!(sum.value, 0.0);
    assert!(sum.grad.unwrap().iter().all(|&g| g == 0.0));
    // Zero class weight on every label present is the same situation.
    let ce = CrossEntropy::new().class_weights(vec![0.0, 1.0, 1.0, 1.0]);
    assert!(matches!(ce.compute(x.view(), Targets::hard(&[0, 0, -100]), None, true), Err(Error::Degenerate { .. })));
}

#[test]
fn one_hot_probability_targets_equal_hard_labels() {
    let x = logits(14, 8, 5, 3.0);
    let y = labels(15, 8, 5);
    let onehot = Array2::from_shape_fn((8, 5), |(i, j)| if y[i] == j as i64 { 1.0 } else { 0.0 });
    for ce in [
        CrossEntropy::new(),
        CrossEntropy::new().label_smoothing(0.25).temperature(1.7),
        CrossEntropy::new().class_weights(vec![0.5, 2.0, 1.0, 0.1, 3.0]).label_smoothing(0.1).reduction(Reduction::Sum),
    ] {
        let a = ce.compute(x.view(), Targets::hard(&y), None, true).unwrap();
        let b = ce.compute(x.view(), Targets::soft(onehot.view()), None, true).unwrap();
        assert_rel(&format!("{ce:?}"), b.value, a.value, 1e-13);
        let (ga, gb) = (a.grad.unwrap(), b.grad.unwrap());
        assert_close(
            &format!("{ce:?}"),
            &gb.iter().copied().collect::<Vec<_>>(),
            &ga.iter().copied().collect::<Vec<_>>(),
            1e-13,
        );
    }
}

#[test]
fn temperature_divides_the_logits() {
    let x = logits(16, 6, 4, 3.0);
    let y = labels(17, 6, 4);
    let t = 2.5;
    let a = CrossEntropy::new().temperature(t).compute(x.view(), Targets::hard(&y), None, true).unwrap();
    let xs = x.mapv(|v| v / t);
    let b = CrossEntropy::new().compute(xs.view(), Targets::hard(&y), None, true).unwrap();
    assert_rel("value", a.value, b.value, 1e-14);
    let gb: Vec<f64> = b.grad.unwrap().iter().map(|g| g / t).collect();
    assert_close("gradient", &a.grad.unwrap().iter().copied().collect::<Vec<_>>(), &gb, 1e-14);
}

#[test]
fn sigmoid_focal_without_focus_or_alpha_is_bce() {
    let mut r = rng(18);
    let x: Array1<f64> = (0..30).map(|_| 5.0 * normal(&mut r)).collect();
    let t: Array1<f64> = (0..30).map(|i| if i % 3 == 0 { r.random_range(0.0..1.0) } else { (i % 2) as f64 }).collect();
    let a = BinaryCrossEntropy::new().compute(x.view(), t.view(), None, true).unwrap();
    let b = SigmoidFocal::new().gamma(0.0).alpha(-1.0).compute(x.view(), t.view(), None, true).unwrap();
    assert_rel("value", b.value, a.value, 1e-14);
    assert_close("gradient", &b.grad.unwrap().to_vec(), &a.grad.unwrap().to_vec(), 1e-14);
}

/// Gradcheck of non-default configurations (the registry suites check the defaults).
#[test]
fn configured_losses_match_finite_differences() {
    let x = logits(19, 5, 4, 2.0);
    let y = [0, 3, -100, 1, 2];
    let t = logits(20, 5, 4, 1.0).mapv(f64::abs);
    let w = array![0.5, 1.5, 1.0, 2.0, 0.7];
    let opts = gradcheck::Options { step: 1e-6, rtol: 1e-6, atol: 1e-8 };
    let class: Vec<(String, Box<dyn losskit_losses::DynClassLoss>)> = vec![
        (
            "ce smoothing+weights+T".into(),
            Box::new(CrossEntropy::new().label_smoothing(0.3).class_weights(vec![0.2, 1.0, 3.0, 0.5]).temperature(0.6)),
        ),
        ("ce ignore=1 sum".into(), Box::new(CrossEntropy::new().ignore_index(1).reduction(Reduction::Sum))),
        ("focal γ=0.5 weighted".into(), Box::new(Focal::new().gamma(0.5).class_weights(vec![0.2, 1.0, 3.0, 0.5]))),
        ("focal γ=3".into(), Box::new(Focal::new().gamma(3.0).reduction(Reduction::None))),
    ];
    for (name, loss) in &class {
        for soft in [false, true] {
            if soft && name.starts_with("focal") {
                continue;
            }
            let y: Vec<i64> = if name.contains("ignore=1") { vec![0, 3, 1, 1, 2] } else { y.to_vec() };
            let targets = if soft { Targets::soft(t.view()) } else { Targets::hard(&y) };
            let g = ClassLoss::<f64>::compute(loss.as_ref(), x.view(), targets, Some(w.view()), true).unwrap();
            let f = |xd: &ArrayD<f64>| {
                let x2: Array2<f64> = xd.clone().into_dimensionality().unwrap();
                ClassLoss::<f64>::compute(loss.as_ref(), x2.view(), targets, Some(w.view()), false).unwrap().value
            };
            let r = gradcheck::check(f, &x.clone().into_dyn(), &g.grad.unwrap().into_dyn(), opts);
            assert!(r.is_ok(), "{name} soft={soft}: {r:?}");
        }
    }
    let s = array![-3.0, -0.5, 0.0, 0.7, 2.0, 6.0];
    let bt = array![0.0, 1.0, 0.3, 1.0, 0.0, 0.9];
    let bw = array![1.0, 0.5, 2.0, 1.0, 1.5, 0.2];
    let binary: Vec<(String, Box<dyn losskit_losses::DynBinaryLoss>)> = vec![
        ("bce pw=3".into(), Box::new(BinaryCrossEntropy::new().pos_weight(3.0))),
        ("bce pw=0 sum".into(), Box::new(BinaryCrossEntropy::new().pos_weight(0.0).reduction(Reduction::Sum))),
        ("sigmoid focal γ=0.5 α=0.8".into(), Box::new(SigmoidFocal::new().gamma(0.5).alpha(0.8))),
        ("sigmoid focal γ=3 α=-1".into(), Box::new(SigmoidFocal::new().gamma(3.0).alpha(-1.0))),
    ];
    for (name, loss) in &binary {
        let g = BinaryLoss::<f64>::compute(loss.as_ref(), s.view(), bt.view(), Some(bw.view()), true).unwrap();
        let f = |xd: &ArrayD<f64>| {
            let x1: Array1<f64> = xd.clone().into_dimensionality().unwrap();
            BinaryLoss::<f64>::compute(loss.as_ref(), x1.view(), bt.view(), Some(bw.view()), false).unwrap().value
        };
        let r = gradcheck::check(f, &s.clone().into_dyn(), &g.grad.unwrap().into_dyn(), opts);
        assert!(r.is_ok(), "{name}: {r:?}");
    }
}
