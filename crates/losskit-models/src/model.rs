//! Classifiers with manual backpropagation: a linear softmax model and a one-hidden-layer MLP.
//!
//! Every model keeps its parameters in one flat `f64` vector (see each type for the layout), so optimisers, weight
//! decay and gradient checks work on a single array.

use std::fmt;

use losskit_tensor::linalg::matmul;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut1, Axis, Zip};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

use losskit_tensor::{Error, Result, check};

/// Gradients of a scalar objective with respect to a model's parameters, in the model's flat layout.
#[derive(Clone, Debug, PartialEq)]
pub struct Gradients {
    /// ∂L/∂θ, same length and layout as [`Model::params`].
    pub params: Array1<f64>,
}

/// A differentiable classifier mapping features `[N, D]` to logits `[N, C]`.
///
/// `backward` is given the same `x` as `forward` and the gradient of the objective with respect to the logits, and
/// returns the gradient with respect to the parameters (the chain rule through the model; the model keeps no cache,
/// so it recomputes the hidden layer).
pub trait Model: fmt::Debug + Send + Sync {
    /// Number of input features D.
    fn n_features(&self) -> usize;
    /// Number of classes C (columns of the logits).
    fn n_classes(&self) -> usize;
    /// The parameters θ as one flat vector.
    fn params(&self) -> ArrayView1<'_, f64>;
    /// Mutable access to θ (what an optimiser updates).
    fn params_mut(&mut self) -> ArrayViewMut1<'_, f64>;
    /// Logits `[N, C]` of `x` `[N, D]`.
    ///
    /// # Errors
    /// [`Error::Shape`] when `x` does not have D columns.
    fn forward(&self, x: ArrayView2<'_, f64>) -> Result<Array2<f64>>;
    /// ∂L/∂θ given `x` `[N, D]` and `dlogits` = ∂L/∂logits `[N, C]`.
    ///
    /// # Errors
    /// [`Error::Shape`] for mismatched shapes.
    fn backward(&self, x: ArrayView2<'_, f64>, dlogits: ArrayView2<'_, f64>) -> Result<Gradients>;

    /// Predicted class per row: the arg-max of the logits (the first maximum on ties, as NumPy's `argmax`).
    ///
    /// # Errors
    /// As [`Model::forward`].
    fn predict(&self, x: ArrayView2<'_, f64>) -> Result<Array1<i64>> {
        let logits = self.forward(x)?;
        Ok(logits.rows().into_iter().map(|r| argmax(r) as i64).collect())
    }
}

/// Index of the first maximum (NaN never wins; 0 for an all-NaN or empty row).
pub(crate) fn argmax(row: ArrayView1<'_, f64>) -> usize {
    let mut best = 0;
    let mut best_v = f64::NEG_INFINITY;
    for (j, &v) in row.iter().enumerate() {
        if v > best_v {
            best_v = v;
            best = j;
        }
    }
    best
}

/// The non-linearity of the [`Mlp`] hidden layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Activation {
    /// max(0, a); derivative 1 for a > 0 and 0 otherwise (PyTorch's convention at 0). He initialisation.
    #[default]
    Relu,
    /// tanh(a); derivative 1 − tanh²(a). Xavier (Glorot) initialisation.
    Tanh,
}

impl Activation {
    /// `relu` or `tanh`.
    pub fn as_str(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Tanh => "tanh",
        }
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Activation {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "relu" => Ok(Activation::Relu),
            "tanh" => Ok(Activation::Tanh),
            _ => Err(Error::ParameterText {
                name: "activation".into(),
                value: s.into(),
                reason: "expected relu or tanh".into(),
            }),
        }
    }
}

/// Which model to build: what the trainer and the arena configs carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ModelSpec {
    /// [`Linear`] softmax regression.
    Linear,
    /// [`Mlp`] with one hidden layer of `hidden` units.
    Mlp {
        /// Hidden width (≥ 1).
        hidden: usize,
        /// Hidden non-linearity.
        activation: Activation,
    },
}

impl Default for ModelSpec {
    /// An MLP with 32 ReLU hidden units.
    fn default() -> Self {
        ModelSpec::Mlp { hidden: 32, activation: Activation::Relu }
    }
}

impl fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelSpec::Linear => f.write_str("linear"),
            ModelSpec::Mlp { hidden, activation } => write!(f, "mlp({hidden}, {activation})"),
        }
    }
}

impl ModelSpec {
    /// Builds the model for `n_features` inputs and `n_classes` outputs, initialised from `seed`.
    ///
    /// # Errors
    /// [`Error::Parameter`] when a size is 0.
    pub fn build(&self, n_features: usize, n_classes: usize, seed: u64) -> Result<Box<dyn Model>> {
        Ok(match *self {
            ModelSpec::Linear => Box::new(Linear::new(n_features, n_classes, seed)?),
            ModelSpec::Mlp { hidden, activation } => {
                Box::new(Mlp::new(n_features, hidden, n_classes, activation, seed)?)
            }
        })
    }
}

fn positive_size(name: &'static str, n: usize) -> Result<()> {
    if n == 0 { Err(Error::Parameter { name, value: 0.0, reason: "must be ≥ 1" }) } else { Ok(()) }
}

/// Fills `w` with U(−a, a), the uniform initialisations of Glorot & Bengio (2010) and He et al. (2015).
fn uniform_init(w: &mut [f64], bound: f64, rng: &mut Xoshiro256PlusPlus) {
    for v in w {
        *v = rng.random_range(-bound..bound);
    }
}

/// Xavier/Glorot uniform bound a = √(6 / (fan_in + fan_out)) (PyTorch's `xavier_uniform_`, gain 1).
fn xavier_bound(fan_in: usize, fan_out: usize) -> f64 {
    (6.0 / (fan_in + fan_out) as f64).sqrt()
}

/// He/Kaiming uniform bound a = √(6 / fan_in) (PyTorch's `kaiming_uniform_` with `nonlinearity="relu"`, gain √2).
fn he_bound(fan_in: usize) -> f64 {
    (6.0 / fan_in as f64).sqrt()
}

/// `a` `[N, K]` · `w`ᵀ + `b`, for `w` `[M, K]` and `b` `[M]`: one GEMM then a broadcast add.
fn affine(a: ArrayView2<'_, f64>, w: ArrayView2<'_, f64>, b: ArrayView1<'_, f64>) -> Array2<f64> {
    let mut out = matmul(&a, &w.t());
    out += &b;
    out
}

fn view2(flat: &[f64], rows: usize, cols: usize) -> ArrayView2<'_, f64> {
    ArrayView2::from_shape((rows, cols), flat).expect("rows·cols elements") // ok: callers slice exactly rows·cols
}

fn check_input(x: &ArrayView2<'_, f64>, d: usize) -> Result<()> {
    check::shape("x", x.shape(), &[None, Some(d)])
}

fn check_dlogits(dl: &ArrayView2<'_, f64>, n: usize, c: usize) -> Result<()> {
    check::shape("dlogits", dl.shape(), &[Some(n), Some(c)])
}

/// Linear softmax classifier (multinomial logistic regression before the loss).
///
/// ```text
/// logits = X·Wᵀ + b        W ∈ ℝ^{C×D}, b ∈ ℝ^C
/// ∂L/∂W = Gᵀ·X,  ∂L/∂b = Σᵢ Gᵢ          where G = ∂L/∂logits ∈ ℝ^{N×C}
/// ```
/// Flat parameter layout: `W` row-major (C·D values), then `b` (C values).
///
/// Initialisation: W ~ U(−a, a) with the Xavier bound a = √(6 / (D + C)) (Glorot & Bengio 2010), b = 0.
#[derive(Clone, Debug, PartialEq)]
pub struct Linear {
    d: usize,
    c: usize,
    theta: Vec<f64>,
}

impl Linear {
    /// A seeded model for `n_features` inputs and `n_classes` classes.
    ///
    /// # Errors
    /// [`Error::Parameter`] when either size is 0.
    pub fn new(n_features: usize, n_classes: usize, seed: u64) -> Result<Self> {
        positive_size("n_features", n_features)?;
        positive_size("n_classes", n_classes)?;
        let (d, c) = (n_features, n_classes);
        let mut theta = vec![0.0; c * d + c];
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        uniform_init(&mut theta[..c * d], xavier_bound(d, c), &mut rng);
        Ok(Self { d, c, theta })
    }

    /// A model with the given weights `w` `[C, D]` and bias `b` `[C]`.
    ///
    /// # Errors
    /// [`Error::Shape`] when `b` does not have C entries, [`Error::Parameter`] for an empty `w`.
    pub fn from_weights(w: ArrayView2<'_, f64>, b: ArrayView1<'_, f64>) -> Result<Self> {
        let (c, d) = w.dim();
        positive_size("n_features", d)?;
        positive_size("n_classes", c)?;
        check::shape("b", b.shape(), &[Some(c)])?;
        let theta: Vec<f64> = w.iter().chain(b.iter()).copied().collect();
        Ok(Self { d, c, theta })
    }

    /// The weights W `[C, D]`.
    pub fn weight(&self) -> ArrayView2<'_, f64> {
        view2(&self.theta[..self.c * self.d], self.c, self.d)
    }

    /// The bias b `[C]`.
    pub fn bias(&self) -> ArrayView1<'_, f64> {
        ArrayView1::from(&self.theta[self.c * self.d..])
    }
}

impl Model for Linear {
    fn n_features(&self) -> usize {
        self.d
    }
    fn n_classes(&self) -> usize {
        self.c
    }
    fn params(&self) -> ArrayView1<'_, f64> {
        ArrayView1::from(&self.theta[..])
    }
    fn params_mut(&mut self) -> ArrayViewMut1<'_, f64> {
        ArrayViewMut1::from(&mut self.theta[..])
    }
    fn forward(&self, x: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        check_input(&x, self.d)?;
        Ok(affine(x, self.weight(), self.bias()))
    }
    fn backward(&self, x: ArrayView2<'_, f64>, dlogits: ArrayView2<'_, f64>) -> Result<Gradients> {
        check_input(&x, self.d)?;
        check_dlogits(&dlogits, x.nrows(), self.c)?;
        let (c, d) = (self.c, self.d);
        let dw = matmul(&dlogits.t(), &x); // [C, D]
        let db = dlogits.sum_axis(Axis(0));
        let mut g = Vec::with_capacity(c * d + c);
        g.extend(dw.iter().chain(db.iter()));
        Ok(Gradients { params: Array1::from(g) })
    }
}

/// Multilayer perceptron with one hidden layer.
///
/// ```text
/// A = X·W₁ᵀ + b₁,   H = φ(A),   logits = H·W₂ᵀ + b₂        W₁ ∈ ℝ^{K×D}, W₂ ∈ ℝ^{C×K}
/// ∂L/∂W₂ = Gᵀ·H,   ∂L/∂b₂ = Σᵢ Gᵢ,   ∂L/∂A = (G·W₂) ⊙ φ′(A),   ∂L/∂W₁ = (∂L/∂A)ᵀ·X,   ∂L/∂b₁ = Σᵢ (∂L/∂A)ᵢ
/// ```
/// where G = ∂L/∂logits, K the hidden width and φ the [`Activation`].
///
/// Flat parameter layout: `W₁` row-major (K·D), `b₁` (K), `W₂` row-major (C·K), `b₂` (C).
///
/// Initialisation (biases 0): ReLU uses He uniform for W₁ (a = √(6/D), He et al. 2015) and Xavier for W₂; tanh uses
/// Xavier uniform for both (a = √(6/(fan_in + fan_out)), Glorot & Bengio 2010).
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    d: usize,
    k: usize,
    c: usize,
    activation: Activation,
    theta: Vec<f64>,
}

impl Mlp {
    /// A seeded MLP with `n_features` inputs, `hidden` units and `n_classes` outputs.
    ///
    /// # Errors
    /// [`Error::Parameter`] when a size is 0.
    pub fn new(n_features: usize, hidden: usize, n_classes: usize, activation: Activation, seed: u64) -> Result<Self> {
        positive_size("n_features", n_features)?;
        positive_size("hidden", hidden)?;
        positive_size("n_classes", n_classes)?;
        let (d, k, c) = (n_features, hidden, n_classes);
        let mut m = Self { d, k, c, activation, theta: vec![0.0; k * d + k + c * k + c] };
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let a1 = match activation {
            Activation::Relu => he_bound(d),
            Activation::Tanh => xavier_bound(d, k),
        };
        let a2 = xavier_bound(k, c);
        let (o_w2, _) = m.offsets();
        uniform_init(&mut m.theta[..k * d], a1, &mut rng);
        uniform_init(&mut m.theta[o_w2..o_w2 + c * k], a2, &mut rng);
        Ok(m)
    }

    /// Hidden width K.
    pub fn hidden(&self) -> usize {
        self.k
    }

    /// The hidden non-linearity.
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// Offsets of W₂ and b₂ in the flat vector (W₁ starts at 0, b₁ at K·D).
    fn offsets(&self) -> (usize, usize) {
        let o_w2 = self.k * self.d + self.k;
        (o_w2, o_w2 + self.c * self.k)
    }

    fn parts(&self) -> (ArrayView2<'_, f64>, ArrayView1<'_, f64>, ArrayView2<'_, f64>, ArrayView1<'_, f64>) {
        let (d, k, c) = (self.d, self.k, self.c);
        let (o_w2, o_b2) = self.offsets();
        let s = &self.theta[..];
        (
            view2(&s[..k * d], k, d),
            ArrayView1::from(&s[k * d..o_w2]),
            view2(&s[o_w2..o_b2], c, k),
            ArrayView1::from(&s[o_b2..]),
        )
    }

    /// Pre-activations A and activations H = φ(A) of the hidden layer.
    fn hidden_layer(&self, x: ArrayView2<'_, f64>) -> (Array2<f64>, Array2<f64>) {
        let (w1, b1, _, _) = self.parts();
        let a = affine(x, w1, b1);
        let h = match self.activation {
            Activation::Relu => a.mapv(|v| v.max(0.0)),
            Activation::Tanh => a.mapv(f64::tanh),
        };
        (a, h)
    }
}

impl Model for Mlp {
    fn n_features(&self) -> usize {
        self.d
    }
    fn n_classes(&self) -> usize {
        self.c
    }
    fn params(&self) -> ArrayView1<'_, f64> {
        ArrayView1::from(&self.theta[..])
    }
    fn params_mut(&mut self) -> ArrayViewMut1<'_, f64> {
        ArrayViewMut1::from(&mut self.theta[..])
    }
    fn forward(&self, x: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        check_input(&x, self.d)?;
        let (_, h) = self.hidden_layer(x);
        let (_, _, w2, b2) = self.parts();
        Ok(affine(h.view(), w2, b2))
    }
    fn backward(&self, x: ArrayView2<'_, f64>, dlogits: ArrayView2<'_, f64>) -> Result<Gradients> {
        check_input(&x, self.d)?;
        check_dlogits(&dlogits, x.nrows(), self.c)?;
        let (a, h) = self.hidden_layer(x);
        let (_, _, w2, _) = self.parts();
        let dw2 = matmul(&dlogits.t(), &h); // [C, K]
        let db2 = dlogits.sum_axis(Axis(0));
        let mut da = matmul(&dlogits, &w2); // [N, K] = ∂L/∂H
        match self.activation {
            Activation::Relu => Zip::from(&mut da).and(&a).for_each(|g, &av| {
                if av <= 0.0 {
                    *g = 0.0;
                }
            }),
            Activation::Tanh => Zip::from(&mut da).and(&h).for_each(|g, &hv| *g *= 1.0 - hv * hv),
        }
        let dw1 = matmul(&da.t(), &x); // [K, D]
        let db1 = da.sum_axis(Axis(0));
        let (d, k) = (self.d, self.k);
        let (o_w2, o_b2) = self.offsets();
        debug_assert_eq!((k * d + k, o_b2), (o_w2, o_w2 + self.c * k));
        let mut g = Vec::with_capacity(self.theta.len());
        g.extend(dw1.iter().chain(db1.iter()).chain(dw2.iter()).chain(db2.iter()));
        Ok(Gradients { params: Array1::from(g) })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::testutil::assert_all_close;
    use losskit_tensor::gradcheck;
    use ndarray::{ArrayD, array};

    /// Softmax cross-entropy (mean over rows) and its gradient w.r.t. the logits: the test's own tiny loss.
    pub(crate) fn softmax_ce(logits: &Array2<f64>, y: &[i64]) -> (f64, Array2<f64>) {
        let n = logits.nrows() as f64;
        let mut grad = Array2::zeros(logits.raw_dim());
        let mut total = 0.0;
        for (i, row) in logits.rows().into_iter().enumerate() {
            let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = row.iter().map(|v| (v - m).exp()).sum();
            let lse = m + z.ln();
            total += lse - row[y[i] as usize];
            for j in 0..row.len() {
                grad[[i, j]] = ((row[j] - lse).exp() - if j as i64 == y[i] { 1.0 } else { 0.0 }) / n;
            }
        }
        (total / n, grad)
    }

    fn data(n: usize, d: usize, seed: u64) -> Array2<f64> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        Array2::from_shape_fn((n, d), |_| rng.random_range(-2.0..2.0))
    }

    fn gradcheck_model<M: Model + Clone>(model: &M, x: &Array2<f64>, y: &[i64]) {
        let logits = model.forward(x.view()).unwrap();
        let (_, dl) = softmax_ce(&logits, y);
        let g = model.backward(x.view(), dl.view()).unwrap().params;
        let theta = model.params().to_owned().into_dyn();
        let f = |p: &ArrayD<f64>| {
            let mut m = model.clone();
            m.params_mut().assign(&p.view().into_dimensionality::<ndarray::Ix1>().unwrap());
            softmax_ce(&m.forward(x.view()).unwrap(), y).0
        };
        let res = gradcheck::check(f, &theta, &g.into_dyn(), gradcheck::Options::default());
        assert!(res.is_ok(), "{res:?}");
    }

    #[test]
    fn linear_gradient_matches_finite_differences() {
        let x = data(7, 4, 1);
        let m = Linear::new(4, 3, 11).unwrap();
        // Non-zero bias so the bias gradient path is exercised away from the init.
        let mut m2 = m.clone();
        m2.params_mut().iter_mut().rev().take(3).enumerate().for_each(|(i, b)| *b = 0.3 * i as f64 - 0.2);
        gradcheck_model(&m2, &x, &[0, 1, 2, 2, 1, 0, 1]);
    }

    #[test]
    fn mlp_gradients_match_finite_differences_for_both_activations() {
        let x = data(9, 5, 2);
        let y = [0, 1, 2, 3, 0, 1, 2, 3, 1];
        for act in [Activation::Relu, Activation::Tanh] {
            let mut m = Mlp::new(5, 6, 4, act, 3).unwrap();
            // Random non-zero biases: no pre-activation sits exactly at the ReLU kink for these inputs.
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
            let n = m.params().len();
            m.params_mut().iter_mut().enumerate().for_each(|(i, v)| {
                if *v == 0.0 && i < n {
                    *v = rng.random_range(-0.5..0.5);
                }
            });
            gradcheck_model(&m, &x, &y);
        }
    }

    #[test]
    fn linear_forward_is_x_w_transpose_plus_b_by_hand() {
        let w = array![[1.0, 2.0], [-1.0, 0.5], [0.0, 3.0]];
        let b = array![0.1, 0.2, -0.3];
        let m = Linear::from_weights(w.view(), b.view()).unwrap();
        let x = array![[1.0, -1.0], [2.0, 0.5]];
        let out = m.forward(x.view()).unwrap();
        // Row 0: [1−2+0.1, −1−0.5+0.2, 0−3−0.3]; row 1: [2+1+0.1, −2+0.25+0.2, 0+1.5−0.3].
        let want = array![[-0.9, -1.3, -3.3], [3.1, -1.55, 1.2]];
        assert_all_close(&out, &want, 1e-12);
        assert_eq!(m.predict(x.view()).unwrap(), array![0, 0]);
        assert_eq!(m.weight(), w);
        assert_eq!(m.bias(), b);
    }

    #[test]
    fn init_is_seeded_and_within_the_documented_bounds() {
        let a = Mlp::new(11, 32, 6, Activation::Relu, 7).unwrap();
        let b = Mlp::new(11, 32, 6, Activation::Relu, 7).unwrap();
        let c = Mlp::new(11, 32, 6, Activation::Relu, 8).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let p = a.params();
        let he = (6.0_f64 / 11.0).sqrt();
        assert!(p.slice(ndarray::s![..32 * 11]).iter().all(|v| v.abs() < he));
        assert!(p.slice(ndarray::s![32 * 11..32 * 11 + 32]).iter().all(|&v| v == 0.0));
        let xav = (6.0_f64 / 38.0).sqrt();
        let (o_w2, o_b2) = a.offsets();
        assert!(p.slice(ndarray::s![o_w2..o_b2]).iter().all(|v| v.abs() < xav));
        // A U(−a, a) sample of 352 values has a spread close to the bound: the init is not all zeros.
        let max = p.slice(ndarray::s![..32 * 11]).iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        assert!(max > 0.9 * he);
        let l = Linear::new(11, 6, 1).unwrap();
        assert!(l.weight().iter().all(|v| v.abs() < (6.0_f64 / 17.0).sqrt()));
    }

    #[test]
    fn bad_shapes_and_sizes_are_errors() {
        assert!(matches!(Linear::new(0, 3, 0), Err(Error::Parameter { name: "n_features", .. })));
        assert!(matches!(Mlp::new(3, 0, 3, Activation::Relu, 0), Err(Error::Parameter { name: "hidden", .. })));
        let m = Mlp::new(3, 4, 2, Activation::Tanh, 0).unwrap();
        let x = Array2::zeros((5, 2));
        assert!(matches!(m.forward(x.view()), Err(Error::Shape { arg: "x", .. })));
        let x = Array2::zeros((5, 3));
        let dl = Array2::zeros((4, 2));
        assert!(matches!(m.backward(x.view(), dl.view()), Err(Error::Shape { arg: "dlogits", .. })));
        let w = Array2::zeros((2, 3));
        assert!(matches!(Linear::from_weights(w.view(), array![1.0].view()), Err(Error::Shape { arg: "b", .. })));
    }

    #[test]
    fn argmax_takes_the_first_maximum() {
        assert_eq!(argmax(array![1.0, 3.0, 3.0, 2.0].view()), 1);
        assert_eq!(argmax(array![f64::NAN, -1.0].view()), 1);
    }

    #[test]
    fn spec_builds_the_described_model() {
        let m = ModelSpec::Mlp { hidden: 8, activation: Activation::Tanh }.build(3, 4, 0).unwrap();
        assert_eq!((m.n_features(), m.n_classes(), m.params().len()), (3, 4, 8 * 3 + 8 + 4 * 8 + 4));
        assert_eq!(ModelSpec::Linear.build(3, 4, 0).unwrap().params().len(), 16);
        assert_eq!(ModelSpec::default().to_string(), "mlp(32, relu)");
    }
}
