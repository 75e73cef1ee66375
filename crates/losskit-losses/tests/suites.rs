//! What every registered loss must satisfy, in each of its forms. The suites iterate over `LOSSES`, so a loss added
//! to the registry is tested here without a line of its own.

use losskit_losses::{ClassLoss, Error, LOSSES, Range, Targets};
use losskit_tensor::gradcheck;
use ndarray::{Array1, Array2, ArrayD, Axis};

use crate::common::{Form, Out, Problem, all, assert_close, assert_rel, flat, problem, run};

const REDUCTIONS: [&str; 3] = ["mean", "sum", "none"];

/// Every (label, form) of every registered loss with `pairs`, kept alive by the returned builds.
fn for_each_form(pairs: &[(&str, &str)], mut f: impl FnMut(&str, Form<'_>)) {
    for b in all(pairs) {
        for (name, form) in b.forms() {
            f(&name, form);
        }
    }
}

fn value(form: Form<'_>, p: &Problem, x: &ArrayD<f64>) -> f64 {
    let q = Problem { x: x.clone(), ..p.clone() };
    run::<f64>(form, &q, false).unwrap_or_else(|e| panic!("{e}")).value
}

#[test]
fn gradients_match_finite_differences() {
    for red in REDUCTIONS {
        for_each_form(&[("reduction", red)], |name, form| {
            for (seed, n, c, weights) in [(1, 5, 4, false), (2, 3, 7, true), (3, 1, 3, false), (4, 6, 2, true)] {
                let p = problem(form, seed, n, c, 2.0, weights);
                let out = run::<f64>(form, &p, true).unwrap_or_else(|e| panic!("{name}: {e}"));
                let g = out.grad.expect("gradient requested");
                let opts = gradcheck::Options { step: 1e-6, rtol: 1e-6, atol: 1e-8 };
                if let Err(m) = gradcheck::check(|x| value(form, &p, x), &p.x, &g, opts) {
                    panic!("{name} {red} seed {seed}: {m:?}");
                }
            }
        });
    }
}

fn class_error(form: Form<'_>, x: Array2<f64>, labels: &[i64], w: Option<Vec<f64>>) -> Error {
    let p = Problem { x: x.into_dyn(), labels: labels.to_vec(), targets: vec![], weights: w };
    run::<f64>(form, &p, true).expect_err("bad input must be an error")
}

fn binary_error(form: Form<'_>, x: Vec<f64>, targets: Vec<f64>, w: Option<Vec<f64>>) -> Error {
    let p = Problem { x: Array1::from(x).into_dyn(), labels: vec![], targets, weights: w };
    run::<f64>(form, &p, true).expect_err("bad input must be an error")
}

#[test]
fn bad_inputs_give_the_documented_errors() {
    for_each_form(&[], |name, form| match form {
        Form::Class(_) => {
            let x = || Array2::from_shape_fn((3, 4), |(i, j)| (i * 4 + j) as f64 * 0.1);
            let mut nan = x();
            nan[[1, 2]] = f64::NAN;
            let e = class_error(form, nan, &[0, 1, 2], None);
            assert!(matches!(e, Error::NonFinite { arg: "logits", index: 6, .. }), "{name}: {e:?}");
            let mut inf = x();
            inf[[2, 0]] = f64::NEG_INFINITY;
            let e = class_error(form, inf, &[0, 1, 2], None);
            assert!(matches!(e, Error::NonFinite { arg: "logits", index: 8, .. }), "{name}: {e:?}");
            let e = class_error(form, x(), &[0, 1], None);
            assert!(matches!(e, Error::Shape { arg: "targets", .. }), "{name}: {e:?}");
            let e = class_error(form, x(), &[0, 4, 1], None);
            assert!(matches!(e, Error::LabelOutOfRange { label: 4, classes: 4, index: 1, .. }), "{name}: {e:?}");
            let e = class_error(form, x(), &[0, -1, 1], None);
            assert!(matches!(e, Error::LabelOutOfRange { label: -1, .. }), "{name}: {e:?}");
            let e = class_error(form, Array2::zeros((0, 4)), &[], None);
            assert!(matches!(e, Error::Empty { arg: "logits" }), "{name}: {e:?}");
            let e = class_error(form, Array2::zeros((2, 0)), &[0, 0], None);
            assert!(matches!(e, Error::Shape { arg: "logits", .. }), "{name}: {e:?}");
            let e = class_error(form, x(), &[0, 1, 2], Some(vec![1.0, -0.5, 1.0]));
            assert!(matches!(e, Error::Degenerate { .. }), "{name}: {e:?}");
            let e = class_error(form, x(), &[0, 1, 2], Some(vec![1.0, 1.0]));
            assert!(matches!(e, Error::Shape { arg: "weights", .. }), "{name}: {e:?}");
            let e = class_error(form, x(), &[0, 1, 2], Some(vec![1.0, f64::NAN, 1.0]));
            assert!(matches!(e, Error::NonFinite { arg: "weights", index: 1, .. }), "{name}: {e:?}");
            let e = class_error(form, x(), &[0, 1, 2], Some(vec![0.0, 0.0, 0.0]));
            assert!(matches!(e, Error::Degenerate { .. }), "{name}: zero total weight under mean: {e:?}");
        }
        Form::Binary(_) => {
            let e = binary_error(form, vec![0.0, f64::NAN], vec![0.0, 1.0], None);
            assert!(matches!(e, Error::NonFinite { arg: "scores", index: 1, .. }), "{name}: {e:?}");
            let e = binary_error(form, vec![0.0, 1.0], vec![0.0], None);
            assert!(matches!(e, Error::Shape { arg: "targets", .. }), "{name}: {e:?}");
            let e = binary_error(form, vec![0.0, 1.0], vec![0.0, 2.0], None);
            assert!(matches!(e, Error::Degenerate { .. }), "{name}: {e:?}");
            let e = binary_error(form, vec![0.0, 1.0], vec![0.0, f64::NAN], None);
            assert!(matches!(e, Error::NonFinite { arg: "targets", .. }), "{name}: {e:?}");
            let e = binary_error(form, vec![], vec![], None);
            assert!(matches!(e, Error::Empty { arg: "scores" }), "{name}: {e:?}");
            let e = binary_error(form, vec![0.0, 1.0], vec![0.0, 1.0], Some(vec![-1.0, 1.0]));
            assert!(matches!(e, Error::Degenerate { .. }), "{name}: {e:?}");
            let e = binary_error(form, vec![0.0, 1.0], vec![0.0, 1.0], Some(vec![1.0]));
            assert!(matches!(e, Error::Shape { arg: "weights", .. }), "{name}: {e:?}");
        }
    });
}

/// Values outside each parameter's range (as command-line text).
fn bad_values(range: Range) -> Vec<String> {
    let mut v = vec!["abc".to_string()];
    match range {
        Range::Any => v.extend(["nan".into(), "inf".into()]),
        Range::Positive => v.extend(["0".into(), "-1".into(), "nan".into()]),
        Range::NonNegative => v.extend(["-1".into(), "-1e-9".into(), "inf".into()]),
        Range::Closed(a, b) => v.extend([format!("{}", a - 1.0), format!("{}", b + 1.0)]),
        Range::ClosedOpen(a, b) => v.extend([format!("{}", a - 1.0), format!("{b}")]),
        Range::OpenClosed(a, b) => v.extend([format!("{a}"), format!("{}", b + 1.0)]),
        Range::Open(a, b) => v.extend([format!("{a}"), format!("{b}")]),
        Range::IntAtLeast(a) => v.extend([format!("{}", a - 1), format!("{a}.5")]),
        Range::Bool => v.push("maybe".into()),
        Range::Choice(_) => v.push("no-such-choice".into()),
        Range::Vector => v = vec!["1".into()],
    }
    v
}

#[test]
fn bad_parameters_are_errors_that_name_them() {
    for e in LOSSES {
        for spec in e.params {
            for bad in bad_values(spec.range) {
                let pairs = [(spec.name.to_string(), bad.clone())];
                let result = e.params(&pairs).and_then(|p| (e.build)(&p));
                match result {
                    Err(Error::Parameter { name, .. }) => assert_eq!(name, spec.name, "{}: {bad}", e.name),
                    Err(Error::ParameterText { name, .. }) => assert_eq!(name, spec.name, "{}: {bad}", e.name),
                    Err(other) => panic!("{} {}={bad}: unexpected {other:?}", e.name, spec.name),
                    Ok(_) => panic!("{} {}={bad} was accepted", e.name, spec.name),
                }
            }
            if spec.range == Range::Vector {
                let mut p = e.params(&[]).expect("defaults");
                let err = p.set_vector(spec.name, vec![1.0, f64::NAN]).expect_err("NaN vector");
                assert!(matches!(err, Error::NonFinite { .. }), "{}: {err:?}", e.name);
                p.set_vector(spec.name, vec![1.0, -1.0]).expect("finite vector");
                let err = (e.build)(&p).expect_err("negative class weight");
                assert!(matches!(err, Error::Parameter { name, .. } if name == spec.name), "{}: {err:?}", e.name);
            }
        }
        let unknown = e.params(&[("no_such_parameter".into(), "1".into())]).expect_err("unknown parameter");
        assert!(matches!(unknown, Error::UnknownParameter { .. }), "{}: {unknown:?}", e.name);
        let red = e.params(&[("reduction".into(), "avg".into())]).expect_err("bad reduction");
        assert!(matches!(red, Error::ParameterText { .. }), "{}: {red:?}", e.name);
    }
    let focal = losskit_losses::registry::find("focal").expect("focal");
    let err = focal.params(&[("gamma".into(), "-1".into())]).expect_err("gamma = -1");
    assert!(matches!(err, Error::Parameter { name: "gamma", value, .. } if value == -1.0));
}

fn assert_finite(what: &str, o: &Out) {
    assert!(o.value.is_finite(), "{what}: value {}", o.value);
    assert!(o.per_sample.iter().all(|v| v.is_finite()), "{what}: per-sample");
    assert!(o.grad.as_ref().is_some_and(|g| g.iter().all(|v| v.is_finite())), "{what}: gradient");
}

#[test]
fn extreme_inputs_give_finite_values_and_gradients() {
    for red in REDUCTIONS {
        for_each_form(&[("reduction", red)], |name, form| {
            for seed in 0..4 {
                let mut p = problem(form, 50 + seed, 6, 5, 1.0, seed % 2 == 1);
                p.x.mapv_inplace(|v| if v > 0.0 { 1e4 } else { -1e4 });
                if let Some(first) = p.x.iter_mut().next() {
                    *first = 3e3; // a row that is not all ±1e4
                }
                assert_finite(&format!("{name} {red} f64"), &run::<f64>(form, &p, true).expect(name));
                assert_finite(&format!("{name} {red} f32"), &run::<f32>(form, &p, true).expect(name));
            }
        });
    }
}

#[test]
fn reductions_agree() {
    let builds = [all(&[("reduction", "mean")]), all(&[("reduction", "sum")]), all(&[("reduction", "none")])];
    for i in 0..builds[0].len() {
        let forms: Vec<_> = builds.iter().map(|b| b[i].forms()).collect();
        for k in 0..forms[0].len() {
            let (name, mean) = (&forms[0][k].0, forms[0][k].1);
            let (sum, none) = (forms[1][k].1, forms[2][k].1);
            let p = problem(mean, 77, 9, 4, 2.0, false);
            let (m, s, z) = (run::<f64>(mean, &p, true), run::<f64>(sum, &p, true), run::<f64>(none, &p, true));
            let (m, s, z) = (m.expect(name), s.expect(name), z.expect(name));
            let n = p.n() as f64;
            assert_rel(&format!("{name}: sum = N·mean"), s.value, n * m.value, 1e-12);
            assert_rel(&format!("{name}: none sums to sum"), z.per_sample.iter().sum(), s.value, 1e-12);
            assert_eq!(z.value, s.value, "{name}: none's value is the sum");
            let (gm, gs, gz) = (m.grad.expect(name), s.grad.expect(name), z.grad.expect(name));
            assert_close(&format!("{name}: grad sum = N·grad mean"), &flat(&gs), &flat(&(gm * n)), 1e-12);
            assert_eq!(gs, gz, "{name}: none's gradient is the sum's");
            assert_eq!(m.per_sample, s.per_sample, "{name}: per-sample values do not depend on the reduction");
        }
    }
}

#[test]
fn uniform_weights_change_nothing() {
    for red in REDUCTIONS {
        for_each_form(&[("reduction", red)], |name, form| {
            let p = problem(form, 88, 7, 5, 2.0, false);
            let base = run::<f64>(form, &p, true).expect(name);
            let ones = run::<f64>(form, &Problem { weights: Some(vec![1.0; p.n()]), ..p.clone() }, true).expect(name);
            assert_eq!(ones.value, base.value, "{name} {red}: unit weights");
            assert_eq!(ones.grad, base.grad, "{name} {red}: unit weights");
            if red == "mean" {
                let w = Some(vec![2.5; p.n()]);
                let scaled = run::<f64>(form, &Problem { weights: w, ..p.clone() }, true).expect(name);
                assert_rel(&format!("{name}: uniform weights under mean"), scaled.value, base.value, 1e-13);
                let (a, b) = (flat(&scaled.grad.expect(name)), flat(&base.grad.expect(name)));
                assert_close(&format!("{name}: uniform weights under mean"), &a, &b, 1e-13);
            }
        });
    }
}

#[test]
fn permuting_the_batch_permutes_the_outputs() {
    for_each_form(&[], |name, form| {
        let p = problem(form, 99, 8, 5, 2.0, true);
        let perm = [3, 0, 7, 5, 1, 6, 2, 4];
        let q = Problem {
            x: p.x.select(Axis(0), &perm),
            labels: perm.iter().filter_map(|&i| p.labels.get(i).copied()).collect(),
            targets: perm.iter().filter_map(|&i| p.targets.get(i).copied()).collect(),
            weights: p.weights.as_ref().map(|w| perm.iter().map(|&i| w[i]).collect()),
        };
        let (a, b) = (run::<f64>(form, &p, true).expect(name), run::<f64>(form, &q, true).expect(name));
        assert_rel(&format!("{name}: permuted mean"), b.value, a.value, 1e-13);
        let permuted: Vec<f64> = perm.iter().map(|&i| a.per_sample[i]).collect();
        assert_eq!(b.per_sample, permuted, "{name}: per-sample values follow their rows");
        let (ga, gb) = (a.grad.expect(name), b.grad.expect(name));
        assert_close(&format!("{name}: permuted gradient"), &flat(&gb), &flat(&ga.select(Axis(0), &perm)), 1e-13);
    });
}

#[test]
fn f32_agrees_with_f64() {
    for red in REDUCTIONS {
        for_each_form(&[("reduction", red)], |name, form| {
            for (seed, n, c) in [(5, 7, 6), (6, 40, 300), (7, 3, 1)] {
                let p = problem(form, seed, n, c, 3.0, seed % 2 == 0);
                let (a, b) = (run::<f64>(form, &p, true).expect(name), run::<f32>(form, &p, true).expect(name));
                assert_rel(&format!("{name} {red} f32 value"), b.value, a.value, 1e-5);
                assert_close(&format!("{name} {red} f32 per-sample"), &b.per_sample, &a.per_sample, 1e-5);
                let (ga, gb) = (flat(&a.grad.expect(name)), flat(&b.grad.expect(name)));
                assert_close(&format!("{name} {red} f32 gradient"), &gb, &ga, 1e-5);
            }
        });
    }
}

#[test]
fn thread_count_does_not_change_a_bit() {
    let pool = |k: usize| rayon::ThreadPoolBuilder::new().num_threads(k).build().expect("thread pool");
    let (one, two, three) = (pool(1), pool(2), pool(3));
    for_each_form(&[], |name, form| {
        // Large enough that the drivers split the work into many parallel tasks.
        let p = match form {
            Form::Class(_) => problem(form, 123, 700, 97, 2.0, true),
            Form::Binary(_) => problem(form, 123, 50_000, 1, 2.0, true),
        };
        let a = one.install(|| run::<f32>(form, &p, true)).expect(name);
        for pool in [&two, &three] {
            let b = pool.install(|| run::<f32>(form, &p, true)).expect(name);
            assert_eq!(a.value.to_bits(), b.value.to_bits(), "{name}: value depends on the thread count");
            assert_eq!(a.per_sample, b.per_sample, "{name}");
            assert_eq!(a.grad, b.grad, "{name}");
        }
        let a = one.install(|| run::<f64>(form, &p, false)).expect(name);
        let b = two.install(|| run::<f64>(form, &p, false)).expect(name);
        assert_eq!(a.value.to_bits(), b.value.to_bits(), "{name}: f64 value depends on the thread count");
    });
}

#[test]
fn gradient_is_absent_unless_asked_and_value_does_not_depend_on_it() {
    for_each_form(&[], |name, form| {
        let p = problem(form, 31, 5, 4, 2.0, true);
        let (a, b) = (run::<f64>(form, &p, false).expect(name), run::<f64>(form, &p, true).expect(name));
        assert!(a.grad.is_none(), "{name}");
        assert_eq!(a.value, b.value, "{name}");
        assert_eq!(a.per_sample, b.per_sample, "{name}");
    });
}

#[test]
fn strided_inputs_equal_contiguous_ones() {
    for_each_form(&[], |name, form| {
        let p = problem(form, 41, 6, 5, 2.0, true);
        let Form::Class(loss) = form else { return };
        let x: Array2<f64> = p.x.clone().into_dimensionality().expect("2-D");
        let xt = x.t().to_owned();
        let strided = xt.t(); // same values, column-major
        let w = Array1::from(p.weights.clone().expect("weights"));
        let a = ClassLoss::<f64>::compute(loss, x.view(), Targets::hard(&p.labels), Some(w.view()), true);
        let b = ClassLoss::<f64>::compute(loss, strided, Targets::hard(&p.labels), Some(w.view()), true);
        let (a, b) = (a.expect(name), b.expect(name));
        assert_eq!(a.value, b.value, "{name}");
        assert_eq!(a.grad, b.grad, "{name}");
    });
}
