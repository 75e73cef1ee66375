//! First-order optimisers with PyTorch's update rules: SGD (momentum, Nesterov, dampening, L2 weight decay) and
//! Adam (L2 or decoupled weight decay).
//!
//! A config ([`Sgd`], [`Adam`]) is plain data; [`OptimizerConfig::build`] (or `Sgd::init` / `Adam::init`) creates
//! the state for a parameter vector of a given length, and [`Optimizer::step`] applies one update in place.

use std::fmt;

use ndarray::{Array1, ArrayView1, ArrayViewMut1, Zip};

use losskit_tensor::{Error, Result, check};

/// One optimiser with its state (momentum buffers, moment estimates, step count).
pub trait Optimizer: fmt::Debug + Send {
    /// Updates `params` in place from `grads` (same length, the model's flat layout).
    ///
    /// # Errors
    /// [`Error::Shape`] when the lengths differ from the length the state was built for.
    fn step(&mut self, params: ArrayViewMut1<'_, f64>, grads: ArrayView1<'_, f64>) -> Result<()>;
}

fn check_lengths(n: usize, params: &ArrayViewMut1<'_, f64>, grads: &ArrayView1<'_, f64>) -> Result<()> {
    check::shape("params", params.shape(), &[Some(n)])?;
    check::shape("grads", grads.shape(), &[Some(n)])
}

/// Stochastic gradient descent as `torch.optim.SGD` (maximize = false).
///
/// ```text
/// g_t = ∇θ + λ·θ                                   (λ = weight_decay, L2 added to the gradient)
/// b_1 = g_1,   b_t = μ·b_{t−1} + (1 − τ)·g_t       (μ = momentum, τ = dampening; only when μ ≠ 0)
/// d_t = g_t + μ·b_t  if nesterov,  b_t  if μ ≠ 0,  g_t otherwise
/// θ_t = θ_{t−1} − η·d_t                            (η = lr)
/// ```
/// # Parameters
/// * `lr`: η > 0, default 1e-3 (PyTorch's default since 2.2).
/// * `momentum`: μ ≥ 0, default 0.
/// * `dampening`: τ ∈ [0, 1], default 0.
/// * `nesterov`: default false; needs μ > 0 and τ = 0 (PyTorch raises otherwise, so do we).
/// * `weight_decay`: λ ≥ 0, default 0.
///
/// # References
/// PyTorch documentation, `torch.optim.SGD` (the algorithm box); Sutskever, Martens, Dahl, Hinton (2013), *On the
/// importance of initialization and momentum in deep learning*, ICML (Nesterov momentum in this form).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sgd {
    /// Learning rate η.
    pub lr: f64,
    /// Momentum μ.
    pub momentum: f64,
    /// Dampening τ of the momentum.
    pub dampening: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// L2 penalty λ added to the gradient.
    pub weight_decay: f64,
}

impl Default for Sgd {
    fn default() -> Self {
        Self { lr: 1e-3, momentum: 0.0, dampening: 0.0, nesterov: false, weight_decay: 0.0 }
    }
}

impl Sgd {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the learning rate (default 1e-3).
    pub fn lr(mut self, lr: f64) -> Self {
        self.lr = lr;
        self
    }
    /// Sets the momentum (default 0).
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }
    /// Sets the dampening (default 0).
    pub fn dampening(mut self, dampening: f64) -> Self {
        self.dampening = dampening;
        self
    }
    /// Turns Nesterov momentum on or off (default off).
    pub fn nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
        self
    }
    /// Sets the L2 weight decay (default 0).
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// Validates the parameters.
    ///
    /// # Errors
    /// [`Error::Parameter`] naming the offending field.
    pub fn check(&self) -> Result<()> {
        check::greater_than("lr", self.lr, 0.0)?;
        check::at_least("momentum", self.momentum, 0.0)?;
        check::closed("dampening", self.dampening, 0.0, 1.0)?;
        check::at_least("weight_decay", self.weight_decay, 0.0)?;
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(Error::Parameter {
                name: "nesterov",
                value: 1.0,
                reason: "Nesterov momentum requires momentum > 0 and dampening = 0",
            });
        }
        Ok(())
    }

    /// The state for `n` parameters.
    ///
    /// # Errors
    /// As [`Sgd::check`].
    pub fn init(&self, n: usize) -> Result<SgdState> {
        self.check()?;
        Ok(SgdState { cfg: *self, n, buf: None })
    }
}

/// The running state of [`Sgd`].
#[derive(Clone, Debug, PartialEq)]
pub struct SgdState {
    cfg: Sgd,
    n: usize,
    buf: Option<Array1<f64>>,
}

impl Optimizer for SgdState {
    fn step(&mut self, mut params: ArrayViewMut1<'_, f64>, grads: ArrayView1<'_, f64>) -> Result<()> {
        check_lengths(self.n, &params, &grads)?;
        let Sgd { lr, momentum: mu, dampening, nesterov, weight_decay: wd } = self.cfg;
        if mu == 0.0 {
            Zip::from(&mut params).and(&grads).for_each(|p, &g| *p -= lr * (g + wd * *p));
            return Ok(());
        }
        match &mut self.buf {
            None => {
                // First step: the buffer is the (decayed) gradient itself, undampened (PyTorch's `clone`).
                let mut buf = Array1::zeros(self.n);
                Zip::from(&mut params).and(&grads).and(&mut buf).for_each(|p, &g, b| {
                    let g = g + wd * *p;
                    *b = g;
                    *p -= lr * if nesterov { g + mu * g } else { g };
                });
                self.buf = Some(buf);
            }
            Some(buf) => {
                Zip::from(&mut params).and(&grads).and(buf).for_each(|p, &g, b| {
                    let g = g + wd * *p;
                    *b = mu * *b + (1.0 - dampening) * g;
                    *p -= lr * if nesterov { g + mu * *b } else { *b };
                });
            }
        }
        Ok(())
    }
}

/// Adam as `torch.optim.Adam` (amsgrad = false, maximize = false).
///
/// ```text
/// g_t = ∇θ + λ·θ_{t−1}                     (L2 weight decay; with `decoupled_weight_decay`, instead
///                                            θ_{t−1} ← θ_{t−1}·(1 − η·λ) first and g_t = ∇θ, i.e. AdamW)
/// m_t = β₁·m_{t−1} + (1 − β₁)·g_t,   v_t = β₂·v_{t−1} + (1 − β₂)·g_t²        (m₀ = v₀ = 0)
/// θ_t = θ_{t−1} − (η / (1 − β₁ᵗ)) · m_t / (√v_t / √(1 − β₂ᵗ) + ε)
/// ```
/// The last line is PyTorch's arrangement of m̂_t / (√v̂_t + ε) (ε is added after the bias correction of v).
///
/// # Parameters
/// * `lr`: η > 0, default 1e-3.
/// * `beta1`, `beta2`: β ∈ [0, 1), defaults 0.9 and 0.999 (PyTorch's `betas`).
/// * `eps`: ε ≥ 0, default 1e-8.
/// * `weight_decay`: λ ≥ 0, default 0.
/// * `decoupled_weight_decay`: default false (PyTorch's keyword of the same name; true gives AdamW).
///
/// # References
/// Kingma & Ba (2015), *Adam: A Method for Stochastic Optimization*, ICLR, arXiv:1412.6980; Loshchilov & Hutter
/// (2019), *Decoupled Weight Decay Regularization*, ICLR, arXiv:1711.05101; PyTorch documentation, `torch.optim.Adam`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adam {
    /// Learning rate η.
    pub lr: f64,
    /// Decay of the first moment β₁.
    pub beta1: f64,
    /// Decay of the second moment β₂.
    pub beta2: f64,
    /// Denominator term ε.
    pub eps: f64,
    /// Weight decay λ.
    pub weight_decay: f64,
    /// Decoupled (AdamW) rather than L2 weight decay.
    pub decoupled_weight_decay: bool,
}

impl Default for Adam {
    fn default() -> Self {
        Self { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0, decoupled_weight_decay: false }
    }
}

impl Adam {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the learning rate (default 1e-3).
    pub fn lr(mut self, lr: f64) -> Self {
        self.lr = lr;
        self
    }
    /// Sets β₁ (default 0.9).
    pub fn beta1(mut self, beta1: f64) -> Self {
        self.beta1 = beta1;
        self
    }
    /// Sets β₂ (default 0.999).
    pub fn beta2(mut self, beta2: f64) -> Self {
        self.beta2 = beta2;
        self
    }
    /// Sets ε (default 1e-8).
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }
    /// Sets the weight decay λ (default 0).
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }
    /// Decoupled (AdamW) weight decay (default false).
    pub fn decoupled_weight_decay(mut self, decoupled: bool) -> Self {
        self.decoupled_weight_decay = decoupled;
        self
    }

    /// Validates the parameters.
    ///
    /// # Errors
    /// [`Error::Parameter`] naming the offending field.
    pub fn check(&self) -> Result<()> {
        check::greater_than("lr", self.lr, 0.0)?;
        check::closed_open("beta1", self.beta1, 0.0, 1.0)?;
        check::closed_open("beta2", self.beta2, 0.0, 1.0)?;
        check::at_least("eps", self.eps, 0.0)?;
        check::at_least("weight_decay", self.weight_decay, 0.0)
    }

    /// The state for `n` parameters.
    ///
    /// # Errors
    /// As [`Adam::check`].
    pub fn init(&self, n: usize) -> Result<AdamState> {
        self.check()?;
        Ok(AdamState { cfg: *self, t: 0, m: Array1::zeros(n), v: Array1::zeros(n) })
    }
}

/// The running state of [`Adam`].
#[derive(Clone, Debug, PartialEq)]
pub struct AdamState {
    cfg: Adam,
    t: u64,
    m: Array1<f64>,
    v: Array1<f64>,
}

impl AdamState {
    /// Number of steps taken.
    pub fn steps(&self) -> u64 {
        self.t
    }
}

impl Optimizer for AdamState {
    fn step(&mut self, mut params: ArrayViewMut1<'_, f64>, grads: ArrayView1<'_, f64>) -> Result<()> {
        check_lengths(self.m.len(), &params, &grads)?;
        let Adam { lr, beta1: b1, beta2: b2, eps, weight_decay: wd, decoupled_weight_decay } = self.cfg;
        self.t += 1;
        let t = self.t as f64;
        let step_size = lr / (1.0 - b1.powf(t));
        let bc2_sqrt = (1.0 - b2.powf(t)).sqrt();
        let (l2, decay) = if decoupled_weight_decay { (0.0, 1.0 - lr * wd) } else { (wd, 1.0) };
        Zip::from(&mut params).and(&grads).and(&mut self.m).and(&mut self.v).for_each(|p, &g, m, v| {
            *p *= decay;
            let g = g + l2 * *p;
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            *p -= step_size * *m / (v.sqrt() / bc2_sqrt + eps);
        });
        Ok(())
    }
}

/// Either optimiser, as trainer and arena configs carry it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OptimizerConfig {
    /// [`Sgd`].
    Sgd(Sgd),
    /// [`Adam`].
    Adam(Adam),
}

impl Default for OptimizerConfig {
    /// Adam with lr = 1e-2 (what the arena uses on small tabular data).
    fn default() -> Self {
        OptimizerConfig::Adam(Adam::new().lr(1e-2))
    }
}

impl fmt::Display for OptimizerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptimizerConfig::Sgd(s) => {
                write!(f, "sgd(lr={}", s.lr)?;
                if s.momentum != 0.0 {
                    write!(f, ", momentum={}", s.momentum)?;
                }
                if s.nesterov {
                    f.write_str(", nesterov")?;
                }
                if s.weight_decay != 0.0 {
                    write!(f, ", weight_decay={}", s.weight_decay)?;
                }
                f.write_str(")")
            }
            OptimizerConfig::Adam(a) => {
                write!(f, "adam(lr={}", a.lr)?;
                if a.weight_decay != 0.0 {
                    let kind = if a.decoupled_weight_decay { "decoupled " } else { "" };
                    write!(f, ", {kind}weight_decay={}", a.weight_decay)?;
                }
                f.write_str(")")
            }
        }
    }
}

impl OptimizerConfig {
    /// Validates the wrapped config.
    ///
    /// # Errors
    /// As [`Sgd::check`] / [`Adam::check`].
    pub fn check(&self) -> Result<()> {
        match self {
            OptimizerConfig::Sgd(s) => s.check(),
            OptimizerConfig::Adam(a) => a.check(),
        }
    }

    /// The state for `n` parameters.
    ///
    /// # Errors
    /// As [`OptimizerConfig::check`].
    pub fn build(&self, n: usize) -> Result<Box<dyn Optimizer>> {
        Ok(match self {
            OptimizerConfig::Sgd(s) => Box::new(s.init(n)?),
            OptimizerConfig::Adam(a) => Box::new(a.init(n)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::assert_all_close;
    use approx::assert_abs_diff_eq;
    use ndarray::array;

    fn run(opt: &mut dyn Optimizer, p: &mut Array1<f64>, grads: &[Array1<f64>]) {
        for g in grads {
            opt.step(p.view_mut(), g.view()).unwrap();
        }
    }

    #[test]
    fn plain_sgd_step_by_hand() {
        let mut p = array![1.0, -2.0];
        let mut s = Sgd::new().lr(0.1).weight_decay(0.5).init(2).unwrap();
        run(&mut s, &mut p, &[array![0.4, 1.0]]);
        // g = [0.4 + 0.5·1, 1 + 0.5·(−2)] = [0.9, 0]; θ = [1 − 0.09, −2 − 0].
        assert_all_close(&p, &array![0.91, -2.0], 1e-15);
    }

    #[test]
    fn momentum_sgd_two_steps_by_hand() {
        let mut p = array![1.0];
        let mut s = Sgd::new().lr(0.1).momentum(0.9).dampening(0.5).init(1).unwrap();
        run(&mut s, &mut p, &[array![1.0], array![2.0]]);
        // Step 1: b = 1 (undampened), θ = 1 − 0.1 = 0.9.  Step 2: b = 0.9·1 + 0.5·2 = 1.9, θ = 0.9 − 0.19 = 0.71.
        assert_abs_diff_eq!(p[0], 0.71, epsilon = 1e-15);
    }

    #[test]
    fn nesterov_sgd_two_steps_by_hand() {
        let mut p = array![1.0];
        let mut s = Sgd::new().lr(0.1).momentum(0.9).nesterov(true).init(1).unwrap();
        run(&mut s, &mut p, &[array![1.0], array![2.0]]);
        // Step 1: b = 1, d = 1 + 0.9·1 = 1.9, θ = 0.81.  Step 2: b = 0.9 + 2 = 2.9, d = 2 + 2.61 = 4.61, θ = 0.349.
        assert_abs_diff_eq!(p[0], 0.349, epsilon = 1e-14);
    }

    #[test]
    fn adam_two_steps_by_hand() {
        let mut p = array![1.0, 0.5];
        let mut a = Adam::new().lr(0.1).init(2).unwrap();
        run(&mut a, &mut p, &[array![0.2, -1.0]]);
        // Step 1: m̂ = g, v̂ = g², so θ −= η·g/(|g| + ε) ≈ η·sign(g).
        assert_all_close(&p, &array![1.0 - 0.1 * 0.2 / (0.2 + 1e-8), 0.5 + 0.1 * 1.0 / (1.0 + 1e-8)], 1e-15);
        run(&mut a, &mut p, &[array![0.4, 1.0]]);
        // Step 2, element 0: m = 0.9·0.02 + 0.1·0.4 = 0.058; v = 0.999·4e-5 + 0.001·0.16 = 1.9996e-4;
        // m̂ = 0.058/0.19 = 0.30526…; v̂ = 1.9996e-4/0.001999 = 0.100030…; Δ = 0.1·m̂/(√v̂ + 1e-8).
        let m_hat: f64 = 0.058 / (1.0 - 0.81);
        let v_hat: f64 = 1.9996e-4 / (1.0 - 0.998001);
        let want0 = (1.0 - 0.1 * 0.2 / (0.2 + 1e-8)) - 0.1 * m_hat / (v_hat.sqrt() + 1e-8);
        assert_abs_diff_eq!(p[0], want0, epsilon = 1e-12);
        assert_abs_diff_eq!(p[0], 0.8034817, epsilon = 1e-6);
        assert_eq!(a.steps(), 2);
    }

    #[test]
    fn adam_weight_decay_l2_and_decoupled_by_hand() {
        let mut p = array![2.0];
        let mut a = Adam::new().lr(0.1).weight_decay(0.5).init(1).unwrap();
        run(&mut a, &mut p, &[array![-0.5]]);
        // L2: g = −0.5 + 1 = 0.5 > 0, so θ = 2 − 0.1·0.5/(0.5 + 1e-8).
        assert_abs_diff_eq!(p[0], 2.0 - 0.1 * 0.5 / (0.5 + 1e-8), epsilon = 1e-15);
        let mut p = array![2.0];
        let mut a = Adam::new().lr(0.1).weight_decay(0.5).decoupled_weight_decay(true).init(1).unwrap();
        run(&mut a, &mut p, &[array![-0.5]]);
        // AdamW: θ = 2·(1 − 0.05) = 1.9, then g = −0.5 moves it up by 0.1·0.5/(0.5 + 1e-8).
        assert_abs_diff_eq!(p[0], 1.9 + 0.1 * 0.5 / (0.5 + 1e-8), epsilon = 1e-15);
    }

    #[test]
    fn trajectories_match_frozen_pytorch() {
        // tests/fixtures/optim.json: torch.optim.SGD / Adam in float64, 6 steps on fixed gradients
        // (tests/fixtures/gen/gen_fixtures.py).
        let fx =
            losskit_tensor::gradcheck::load_json(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/optim.json"));
        let vec = |v: &serde_json::Value| -> Array1<f64> {
            v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
        };
        let cases = fx["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 9);
        for case in cases {
            let c = &case["config"];
            let get = |k: &str, d: f64| c.get(k).and_then(serde_json::Value::as_f64).unwrap_or(d);
            let n = vec(&case["theta0"]).len();
            let mut opt: Box<dyn Optimizer> = match case["optimizer"].as_str().unwrap() {
                "sgd" => Box::new(
                    Sgd::new()
                        .lr(get("lr", 1e-3))
                        .momentum(get("momentum", 0.0))
                        .dampening(get("dampening", 0.0))
                        .nesterov(c.get("nesterov").and_then(serde_json::Value::as_bool).unwrap_or(false))
                        .weight_decay(get("weight_decay", 0.0))
                        .init(n)
                        .unwrap(),
                ),
                _ => Box::new(
                    Adam::new()
                        .lr(get("lr", 1e-3))
                        .beta1(get("beta1", 0.9))
                        .beta2(get("beta2", 0.999))
                        .eps(get("eps", 1e-8))
                        .weight_decay(get("weight_decay", 0.0))
                        .decoupled_weight_decay(
                            c.get("decoupled_weight_decay").and_then(serde_json::Value::as_bool).unwrap_or(false),
                        )
                        .init(n)
                        .unwrap(),
                ),
            };
            let mut p = vec(&case["theta0"]);
            let grads = case["grads"].as_array().unwrap();
            let traj = case["trajectory"].as_array().unwrap();
            for (g, want) in grads.iter().zip(traj) {
                opt.step(p.view_mut(), vec(g).view()).unwrap();
                assert_all_close(&p, &vec(want), 1e-13);
            }
        }
    }

    #[test]
    fn invalid_configs_and_lengths_are_errors() {
        assert!(matches!(Sgd::new().lr(0.0).check(), Err(Error::Parameter { name: "lr", .. })));
        assert!(matches!(Sgd::new().nesterov(true).check(), Err(Error::Parameter { name: "nesterov", .. })));
        assert!(matches!(
            Sgd::new().momentum(0.9).dampening(0.1).nesterov(true).check(),
            Err(Error::Parameter { name: "nesterov", .. })
        ));
        assert!(matches!(Sgd::new().dampening(1.5).check(), Err(Error::Parameter { name: "dampening", .. })));
        assert!(matches!(Adam::new().beta1(1.0).check(), Err(Error::Parameter { name: "beta1", .. })));
        assert!(matches!(Adam::new().beta2(f64::NAN).check(), Err(Error::Parameter { name: "beta2", .. })));
        assert!(matches!(Adam::new().eps(-1.0).check(), Err(Error::Parameter { name: "eps", .. })));
        assert!(matches!(Adam::new().weight_decay(-1.0).init(1), Err(Error::Parameter { name: "weight_decay", .. })));
        let mut a = Adam::new().init(2).unwrap();
        let mut p = array![1.0, 2.0, 3.0];
        assert!(matches!(a.step(p.view_mut(), array![1.0, 2.0, 3.0].view()), Err(Error::Shape { arg: "params", .. })));
        let mut p = array![1.0, 2.0];
        assert!(matches!(a.step(p.view_mut(), array![1.0].view()), Err(Error::Shape { arg: "grads", .. })));
    }

    #[test]
    fn display_names_the_settings() {
        assert_eq!(OptimizerConfig::default().to_string(), "adam(lr=0.01)");
        let s = OptimizerConfig::Sgd(Sgd::new().lr(0.1).momentum(0.9).nesterov(true));
        assert_eq!(s.to_string(), "sgd(lr=0.1, momentum=0.9, nesterov)");
    }
}
