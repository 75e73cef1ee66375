//! Shared test utilities: every form of every registered loss, random problems, running a problem in either
//! precision through the registry's trait objects, and tolerance checks.

use losskit_losses::{
    BinaryLoss, BuiltLoss, ClassLoss, DynBinaryLoss, DynClassLoss, LOSSES, LossEntry, LossOutput, Real, Result, Targets,
};
use ndarray::{Array1, Array2, ArrayD, ArrayView1, ArrayView2, Dimension, Ix1, Ix2, IxDyn};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

/// One form of a registered loss.
#[derive(Clone, Copy)]
pub enum Form<'a> {
    /// Multiclass: logits [N, C] and hard labels.
    Class(&'a dyn DynClassLoss),
    /// Binary: scores [N] and targets in [0, 1].
    Binary(&'a dyn DynBinaryLoss),
}

/// A built loss with the entry it came from.
pub struct Built {
    pub entry: &'static LossEntry,
    pub loss: BuiltLoss,
}

impl Built {
    /// Its forms, each labelled `name/class` or `name/binary`.
    pub fn forms(&self) -> Vec<(String, Form<'_>)> {
        let mut v = Vec::new();
        if let Some(c) = self.loss.class.as_deref() {
            v.push((format!("{}/class", self.entry.name), Form::Class(c)));
        }
        if let Some(b) = self.loss.binary.as_deref() {
            v.push((format!("{}/binary", self.entry.name), Form::Binary(b)));
        }
        v
    }
}

/// Builds `entry` with `key=value` pairs.
pub fn build(entry: &'static LossEntry, pairs: &[(&str, &str)]) -> Result<Built> {
    let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let params = entry.params(&pairs)?;
    Ok(Built { entry, loss: (entry.build)(&params)? })
}

/// Every registered loss built with its defaults plus `pairs` (e.g. a reduction).
pub fn all(pairs: &[(&str, &str)]) -> Vec<Built> {
    LOSSES.iter().map(|e| build(e, pairs).unwrap_or_else(|err| panic!("{}: {err}", e.name))).collect()
}

/// A problem in f64: `x` is logits [N, C] (class) or scores [N] (binary).
#[derive(Clone, Debug)]
pub struct Problem {
    pub x: ArrayD<f64>,
    /// Hard labels (class form).
    pub labels: Vec<i64>,
    /// Targets in [0, 1] (binary form).
    pub targets: Vec<f64>,
    /// Per-sample weights.
    pub weights: Option<Vec<f64>>,
}

impl Problem {
    pub fn n(&self) -> usize {
        self.x.shape()[0]
    }
}

pub fn rng(seed: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(seed)
}

/// A standard normal draw (Box–Muller).
pub fn normal(rng: &mut Xoshiro256PlusPlus) -> f64 {
    let u1: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A random problem for `form`: N rows, C classes (ignored by the binary form), logits of spread `scale`.
pub fn problem(form: Form<'_>, seed: u64, n: usize, c: usize, scale: f64, weights: bool) -> Problem {
    let mut r = rng(seed);
    let weights = weights.then(|| (0..n).map(|_| r.random_range(0.2..2.0)).collect());
    match form {
        Form::Class(_) => {
            let x = ArrayD::from_shape_simple_fn(IxDyn(&[n, c]), || scale * normal(&mut r));
            let labels = (0..n).map(|_| r.random_range(0..c as i64)).collect();
            Problem { x, labels, targets: vec![], weights }
        }
        Form::Binary(_) => {
            let x = ArrayD::from_shape_simple_fn(IxDyn(&[n]), || scale * normal(&mut r));
            let targets = (0..n).map(|_| if r.random_bool(0.5) { 1.0 } else { 0.0 }).collect();
            Problem { x, labels: vec![], targets, weights }
        }
    }
}

/// A loss output in f64, whatever precision computed it.
#[derive(Clone, Debug)]
pub struct Out {
    pub value: f64,
    pub per_sample: Vec<f64>,
    pub grad: Option<ArrayD<f64>>,
}

fn to_out<F: Real, D: Dimension>(o: LossOutput<F, D>) -> Out {
    Out {
        value: o.value.f64(),
        per_sample: o.per_sample.map(|p| p.iter().map(|v| v.f64()).collect()).unwrap_or_default(),
        grad: o.grad.map(|g| g.mapv(|v| v.f64()).into_dyn()),
    }
}

/// A precision the trait objects can be called in.
pub trait Prec: Real {
    fn class(
        l: &dyn DynClassLoss,
        x: ArrayView2<'_, Self>,
        t: Targets<'_, Self>,
        w: Option<ArrayView1<'_, Self>>,
        g: bool,
    ) -> Result<LossOutput<Self, Ix2>>;
    fn binary(
        l: &dyn DynBinaryLoss,
        x: ArrayView1<'_, Self>,
        t: ArrayView1<'_, Self>,
        w: Option<ArrayView1<'_, Self>>,
        g: bool,
    ) -> Result<LossOutput<Self, Ix1>>;
}

macro_rules! prec {
    ($t:ty) => {
        impl Prec for $t {
            fn class(
                l: &dyn DynClassLoss,
                x: ArrayView2<'_, Self>,
                t: Targets<'_, Self>,
                w: Option<ArrayView1<'_, Self>>,
                g: bool,
            ) -> Result<LossOutput<Self, Ix2>> {
                ClassLoss::<$t>::compute(l, x, t, w, g)
            }
            fn binary(
                l: &dyn DynBinaryLoss,
                x: ArrayView1<'_, Self>,
                t: ArrayView1<'_, Self>,
                w: Option<ArrayView1<'_, Self>>,
                g: bool,
            ) -> Result<LossOutput<Self, Ix1>> {
                BinaryLoss::<$t>::compute(l, x, t, w, g)
            }
        }
    };
}
prec!(f32);
prec!(f64);

/// Runs `p` through `form` in precision `F` (inputs cast from f64).
pub fn run<F: Prec>(form: Form<'_>, p: &Problem, grad: bool) -> Result<Out> {
    let w: Option<Array1<F>> = p.weights.as_ref().map(|w| w.iter().map(|&v| F::c(v)).collect());
    let wv = w.as_ref().map(|w| w.view());
    match form {
        Form::Class(l) => {
            let x: Array2<F> = p.x.mapv(F::c).into_dimensionality().expect("class problem is 2-D");
            F::class(l, x.view(), Targets::hard(&p.labels), wv, grad).map(to_out)
        }
        Form::Binary(l) => {
            let x: Array1<F> = p.x.mapv(F::c).into_dimensionality().expect("binary problem is 1-D");
            let t: Array1<F> = p.targets.iter().map(|&v| F::c(v)).collect();
            F::binary(l, x.view(), t.view(), wv, grad).map(to_out)
        }
    }
}

/// |got − want| ≤ rtol·(|want| + scale) for each element, where scale is the largest |want| of the set: relative
/// for the large elements, absolute (relative to the set) for those near 0.
#[track_caller]
pub fn assert_close(what: &str, got: &[f64], want: &[f64], rtol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let scale = want.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let tol = rtol * (w.abs() + scale);
        assert!((g - w).abs() <= tol, "{what}[{i}]: got {g:e}, want {w:e} (tolerance {tol:e})");
    }
}

/// Relative closeness of two scalars.
#[track_caller]
pub fn assert_rel(what: &str, got: f64, want: f64, rtol: f64) {
    assert!((got - want).abs() <= rtol * want.abs().max(f64::MIN_POSITIVE), "{what}: got {got:e}, want {want:e}");
}

/// Flat f64 values of an array.
pub fn flat(a: &ArrayD<f64>) -> Vec<f64> {
    a.iter().copied().collect()
}
