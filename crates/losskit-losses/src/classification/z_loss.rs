//! The Z-loss (de Brébisson & Vincent 2016): a softplus of the target's z-score, invariant to shifting and
//! scaling the outputs.

use ndarray::{ArrayView1, ArrayView2, Ix2};

use losskit_tensor::{Error, Real, Reduction, Result, check};

use super::driver::{self, RowKernel, Setup};
use super::rowmath::LANES;
use crate::core::{ClassLoss, LossOutput, Targets};
use crate::registry::{BuiltLoss, Family, LossEntry, ParamSpec, Params, Range, param};

/// Added to the variance before the square root, so that a row of equal outputs (σ = 0) gives z = 0, a finite loss
/// and a zero gradient instead of 0/0.
pub const Z_LOSS_VARIANCE_EPS: f64 = 1e-12;

/// The Z-loss: a softplus of the standardized target output.
///
/// ```text
/// ℓᵢ = (1/a)·softplus(a·(b − z_y)),   z_k = (o_k − μ)/σ,   μ = (1/D)·Σ_k o_k,   σ = √((1/D)·Σ_k (o_k − μ)² + ε)
/// Mean = Σᵢ sᵢ·ℓᵢ / Σᵢ sᵢ     Sum = Σᵢ sᵢ·ℓᵢ     None: (sᵢ·ℓᵢ)ᵢ
/// ```
/// with ε = [`Z_LOSS_VARIANCE_EPS`] (a row of equal outputs has σ = 0). ℓ(α·o + β) = ℓ(o) for α > 0 (up to ε): the
/// loss sees only the ranks and relative spread of the outputs. It is a spherical loss: it depends on o only through
/// Σ_k o_k, Σ_k o_k² and o_y.
///
/// # Parameters
/// * `a`: sharpness a > 0. Required by [`ZLoss::new`]: the paper treats a and b as hyperparameters tuned per task
///   (it defines ℓ = (1/a)·softplus(a·(b − z_y)) with "a > 0 (sharpness) and b ∈ ℝ (location)" and searches them on
///   validation data), and states no default. The registry's a = 0.1 is provisional: checked 2026-11 against the
///   stored descriptions of arXiv:1604.08859 (arxiv/alphaxiv overview and emergentmind's "Z-loss" and "SSIL" topic
///   pages, which agree with the formula above) but the values the paper's Penn Treebank / One Billion Word runs
///   selected could not be read from any stored source, and no official code repository holds them (the authors'
///   factored-output Theano repository ships only an example). It is kept, marked provisional, until the paper's
///   table can be read.
/// * `b`: location b (any finite number); registry default 10, provisional for the same reason. With z-scores of
///   order 1, b = 10 keeps the softplus in its near-linear regime for every row, so the loss behaves like
///   −z_y + const until a row's target z-score approaches b.
/// * `reduction`: `Mean` (default), `Sum` or `None`.
///
/// # Shapes
/// `logits` [N, D] (the pre-activations o), hard targets `[N]` in `0..D`, optional `weights` `[N]`; gradient [N, D].
///
/// # Gradient
/// ```text
/// ∂ℓ/∂o_k = −(t/σ)·(δ_ky − 1/D − z_y·z_k/D),   t = sigmoid(a·(b − z_y))
/// ```
/// (exact also with ε, since σ enters only through z). Each gradient row sums to 0 (shift invariance) and
/// Σ_k (o_k − μ)·∂ℓ/∂o_k = 0 (scale invariance, up to ε). μ and σ are computed in two passes (mean, then squared
/// deviations), so no cancellation from Σ o² − D·μ².
///
/// # Errors
/// [`Error::Parameter`] for a ≤ 0 or a non-finite b; [`Error::Input`] for probability targets; input errors from
/// the driver ([`Error::Shape`], [`Error::Empty`], [`Error::LabelOutOfRange`], [`Error::NonFinite`],
/// [`Error::Degenerate`]).
///
/// # Examples
/// ```
/// use losskit_losses::{ClassLoss, Targets, ZLoss};
/// // D = 2, o = (1, −1), target 0: μ = 0, σ = 1, z_0 = 1, so ℓ = softplus(a(b − 1))/a.
/// let o = ndarray::array![[1.0_f64, -1.0]];
/// let out = ZLoss::new(0.5, 3.0).compute(o.view(), Targets::hard(&[0]), None, false)?;
/// assert!((out.value - (1.0 + 1.0_f64.exp()).ln() / 0.5).abs() < 1e-12);
/// # Ok::<(), losskit_losses::Error>(())
/// ```
///
/// # References
/// de Brébisson, Vincent (2016), *The Z-loss: a shift and scale invariant classification loss belonging to the
/// Spherical Family*, arXiv:1604.08859 (docs/papers.md key `debrebisson2016z`).
#[derive(Clone, Debug, PartialEq)]
pub struct ZLoss {
    /// Sharpness a > 0.
    pub a: f64,
    /// Location b.
    pub b: f64,
    /// Default [`Reduction::Mean`].
    pub reduction: Reduction,
}

impl ZLoss {
    /// A Z-loss with sharpness `a` and location `b` (no defaults: the paper tunes both per task).
    pub fn new(a: f64, b: f64) -> Self {
        Self { a, b, reduction: Reduction::Mean }
    }
    /// Sharpness a > 0.
    pub fn a(mut self, a: f64) -> Self {
        self.a = a;
        self
    }
    /// Location b.
    pub fn b(mut self, b: f64) -> Self {
        self.b = b;
        self
    }
    /// Reduction (default [`Reduction::Mean`]).
    pub fn reduction(mut self, r: Reduction) -> Self {
        self.reduction = r;
        self
    }
    /// Validates the parameters.
    ///
    /// # Errors
    /// [`Error::Parameter`] naming `a` or `b`.
    pub fn check(&self) -> Result<()> {
        check::greater_than("a", self.a, 0.0)?;
        check::finite_param("b", self.b)
    }
}

struct Kernel<F> {
    a: F,
    b: F,
    eps: F,
}

#[inline(always)]
fn reduce_lanes<F: Real>(mut acc: [F; LANES]) -> F {
    let mut width = LANES / 2;
    while width > 0 {
        for k in 0..width {
            acc[k] += acc[k + width];
        }
        width /= 2;
    }
    acc[0]
}

/// Σ_k (z_k − shift)^power for power 1 or 2, in lanes.
#[inline(always)]
fn moment<F: Real>(z: &[F], shift: F, square: bool) -> F {
    let mut acc = [F::zero(); LANES];
    let mut zc = z.chunks_exact(LANES);
    for zs in &mut zc {
        for k in 0..LANES {
            let d = zs[k] - shift;
            acc[k] += if square { d * d } else { d };
        }
    }
    for (k, &v) in zc.remainder().iter().enumerate() {
        let d = v - shift;
        acc[k] += if square { d * d } else { d };
    }
    reduce_lanes(acc)
}

impl<F: Real> RowKernel<F> for Kernel<F> {
    #[inline(always)]
    fn label_weight(&self, _label: usize) -> F {
        F::one()
    }

    #[inline(always)]
    fn hard(&self, z: &[F], max: F, y: usize, scale: F, grad: Option<&mut [F]>) -> F {
        let d = F::from_usize_lossy(z.len());
        let inv_d = F::one() / d;
        // Mean as max + mean(o − max): every term ≤ 0 and the shift keeps the magnitudes small.
        let mu = max + moment(z, max, false) * inv_d;
        let var = moment(z, mu, true) * inv_d;
        let sigma = (var.max(F::zero()) + self.eps).sqrt();
        let zy = (z[y] - mu) / sigma;
        let x = self.a * (self.b - zy);
        // softplus(x) = max(x, 0) + log1p(exp(−|x|)).
        let loss = (x.max(F::zero()) + (-x.abs()).exp().ln_1p()) / self.a;
        if let Some(g) = grad {
            let t = F::one() / (F::one() + (-x).exp());
            let c = -scale * t / sigma;
            let k1 = c * inv_d; // coefficient of −1/D
            let k2 = c * zy * inv_d / sigma; // of −z_y·(o_k − μ)/(σ·D)
            for (gk, &ok) in g.iter_mut().zip(z) {
                *gk = -k1 - k2 * (ok - mu);
            }
            g[y] += c;
        }
        loss
    }

    fn soft(&self, _z: &[F], _max: F, _t: &[F], _scale: F, _grad: Option<&mut [F]>) -> F {
        // Never called: probability targets are rejected before the driver runs.
        F::nan()
    }
}

impl<F: Real> ClassLoss<F> for ZLoss {
    fn compute(
        &self,
        logits: ArrayView2<'_, F>,
        targets: Targets<'_, F>,
        weights: Option<ArrayView1<'_, F>>,
        grad: bool,
    ) -> Result<LossOutput<F, Ix2>> {
        self.check()?;
        if let Targets::Soft(_) = targets {
            return Err(Error::Input { what: "z-loss takes class indices as targets, not probabilities".into() });
        }
        let kernel = Kernel { a: F::c(self.a), b: F::c(self.b), eps: F::c(Z_LOSS_VARIANCE_EPS) };
        driver::run(&kernel, Setup { ignore_index: None, reduction: self.reduction }, logits, targets, weights, grad)
    }
}

const PARAMS: &[ParamSpec] = &[
    param("a", "0.1", Range::Positive, "sharpness a (provisional default: the paper tunes a per task, states none)"),
    param("b", "10", Range::Any, "location b (provisional default: the paper tunes b per task, states none)"),
];

fn build(p: &Params) -> Result<BuiltLoss> {
    let cfg = ZLoss { a: p.f64("a")?, b: p.f64("b")?, reduction: p.reduction() };
    cfg.check()?;
    Ok(BuiltLoss { class: Some(Box::new(cfg)), binary: None })
}

/// Registry entry.
pub(crate) const ENTRY: LossEntry = LossEntry {
    name: "z-loss",
    family: Family::Classification,
    summary: "Z-loss: softplus of the target's z-score, shift and scale invariant (spherical family)",
    paper: "debrebisson2016z",
    reference: "de Brébisson, Vincent (2016), The Z-loss: a shift and scale invariant classification loss belonging \
                to the Spherical Family, arXiv:1604.08859",
    params: PARAMS,
    build,
};

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn spec_oracle_and_invariances() {
        let o = array![[1.0_f64, -1.0]];
        let (a, b) = (0.3, 4.0);
        let out = ZLoss::new(a, b).compute(o.view(), Targets::hard(&[0]), None, true).unwrap();
        let want = (1.0 + (a * (b - 1.0_f64)).exp()).ln() / a;
        assert!((out.value - want).abs() < 1e-12);
        let o = array![[0.3_f64, -1.2, 2.5, 0.7]];
        let out = ZLoss::new(a, b).compute(o.view(), Targets::hard(&[2]), None, true).unwrap();
        let g = out.grad.unwrap();
        assert!(g.sum().abs() < 1e-14);
        let mu = o.mean().unwrap();
        let dot: f64 = o.iter().zip(g.iter()).map(|(v, gv)| (v - mu) * gv).sum();
        assert!(dot.abs() < 1e-12);
        let moved = o.mapv(|v| 3.7 * v - 12.0);
        let out2 = ZLoss::new(a, b).compute(moved.view(), Targets::hard(&[2]), None, false).unwrap();
        assert!((out2.value - out.value).abs() < 1e-12);
    }

    #[test]
    fn equal_outputs_are_finite() {
        let o = array![[2.0_f64, 2.0, 2.0]];
        let out = ZLoss::new(1.0, 1.0).compute(o.view(), Targets::hard(&[1]), None, true).unwrap();
        assert!((out.value - (1.0 + 1.0_f64.exp()).ln()).abs() < 1e-12);
        assert!(out.grad.unwrap().iter().all(|v| v.is_finite()));
    }

    #[test]
    fn bad_parameters_are_named() {
        assert!(matches!(ZLoss::new(0.0, 1.0).check(), Err(Error::Parameter { name: "a", .. })));
        assert!(matches!(ZLoss::new(1.0, f64::NAN).check(), Err(Error::Parameter { name: "b", .. })));
    }
}
