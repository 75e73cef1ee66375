//! Softmax cross-entropy with PyTorch's semantics (`torch.nn.functional.cross_entropy`).

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut2, Ix2};

use losskit_tensor::{Error, Real, Reduction, Result, check};

use super::driver::{self, GradDest, RowKernel, Setup};
use super::rowmath;
use crate::core::{ClassLoss, LossOutput, Targets};
use crate::registry::{BuiltLoss, Family, LossEntry, ParamSpec, Params, Range, param};

/// Softmax cross-entropy, exactly `torch.nn.functional.cross_entropy` (class weights, `ignore_index`, label
/// smoothing, hard or probability targets), plus a temperature.
///
/// ```text
/// hard label y:   ℓᵢ = (1 − ε)·w_y·(−log p_y) + (ε/C)·Σ_c w_c·(−log p_c)        (0 when y = ignore_index)
/// probabilities:  ℓᵢ = −Σ_c w_c·t'_c·log p_c,     t'_c = (1 − ε)·t_c + ε/C
/// where p = softmax(zᵢ / T), w_c = class weight (1 when absent), ε = label_smoothing, T = temperature
///
/// Mean = Σᵢ sᵢ·ℓᵢ / Σᵢ sᵢ·dᵢ     Sum = Σᵢ sᵢ·ℓᵢ     None: (sᵢ·ℓᵢ)ᵢ
/// where sᵢ = per-sample weight (1 when absent), dᵢ = w_yᵢ (hard label), 0 (ignored), 1 (probability target)
/// ```
/// With no per-sample weights this is PyTorch's reduction exactly: the hard-label Mean divides by the summed class
/// weights of the non-ignored targets, the probability-target Mean by N. Per-sample weights multiply both the
/// numerator and the denominator terms, so uniform weights change nothing under Mean; PyTorch has no per-sample
/// weight here, the equivalent is `reduction='none'`, times sᵢ, divided by Σᵢ sᵢ·dᵢ.
///
/// # Parameters
/// * `class_weights`: w ∈ [0, ∞)^C, default none (all 1); PyTorch's `weight`. It also weights the smoothing term.
/// * `ignore_index`: a hard label to skip (zero loss, zero gradient, not counted by Mean), default −100.
/// * `label_smoothing`: ε ∈ [0, 1), default 0.
/// * `temperature`: T > 0, default 1; the logits are divided by T (temperature-scaled cross-entropy). T = 1 is
///   PyTorch's loss.
/// * `reduction`: `Mean` (default), `Sum` or `None`.
///
/// # Shapes
/// `logits` [N, C] (C ≥ 1), hard targets `[N]` in `0..C` or `ignore_index`, probability targets [N, C] (non-negative;
/// rows need not sum to 1, as in PyTorch), optional per-sample `weights` `[N]`, `class_weights` `[C]`; gradient [N, C].
///
/// # Gradient
/// ```text
/// hard:  ∂ℓᵢ/∂z_j = (1/T)·[((1 − ε)·w_y + ε·W/C)·p_j − (1 − ε)·w_y·δ_jy − (ε/C)·w_j],   W = Σ_c w_c
/// soft:  ∂ℓᵢ/∂z_j = (1/T)·[(Σ_c w_c·t'_c)·p_j − w_j·t'_j]
/// ```
/// computed in the same sweep as the value; 1 − p_y is summed directly over j ≠ y so it keeps its digits when the
/// prediction is confident. Logits of any finite magnitude (±1e4) give a finite value and gradient.
///
/// # Errors
/// [`Error::Parameter`] for ε ∉ [0, 1), T ≤ 0 or a negative or non-finite class weight; [`Error::Shape`],
/// [`Error::Empty`], [`Error::LabelOutOfRange`], [`Error::NonFinite`] for bad inputs; [`Error::Degenerate`] for a
/// negative sample weight or probability, and for a Mean whose denominator is 0 (every target ignored, or all
/// weights 0), where PyTorch returns NaN.
///
/// # Examples
/// ```
/// use losskit_losses::{ClassLoss, CrossEntropy, Targets};
/// let logits = ndarray::array![[2.0_f64, 0.5, -1.0], [0.1, 0.2, 0.3]];
/// let out = CrossEntropy::new().label_smoothing(0.1).compute(logits.view(), Targets::hard(&[0, 2]), None, true)?;
/// assert!(out.value > 0.0);
/// // softmax gradients sum to 0 over a row
/// assert!(out.grad.is_some_and(|g| g.row(0).sum().abs() < 1e-12));
/// # Ok::<(), losskit_losses::Error>(())
/// ```
///
/// # References
/// Paszke et al. (2019), *PyTorch: An Imperative Style, High-Performance Deep Learning Library*, NeurIPS,
/// arXiv:1912.01703 (docs/papers.md key `pytorch`): `torch.nn.functional.cross_entropy`, whose defaults these are.
/// Label smoothing: Szegedy et al. (2016), *Rethinking the Inception Architecture for Computer Vision*, CVPR.
#[derive(Clone, Debug, PartialEq)]
pub struct CrossEntropy {
    /// Per-class weights w `[C]`; `None` = all 1. Default `None`.
    pub class_weights: Option<Vec<f64>>,
    /// Hard label that is skipped. Default −100.
    pub ignore_index: i64,
    /// ε ∈ [0, 1). Default 0.
    pub label_smoothing: f64,
    /// T > 0. Default 1.
    pub temperature: f64,
    /// Default [`Reduction::Mean`].
    pub reduction: Reduction,
}

impl Default for CrossEntropy {
    fn default() -> Self {
        Self {
            class_weights: None,
            ignore_index: -100,
            label_smoothing: 0.0,
            temperature: 1.0,
            reduction: Reduction::Mean,
        }
    }
}

impl CrossEntropy {
    /// The defaults (PyTorch's).
    pub fn new() -> Self {
        Self::default()
    }
    /// Per-class weights `[C]` (default none: all 1).
    pub fn class_weights(mut self, w: impl Into<Vec<f64>>) -> Self {
        self.class_weights = Some(w.into());
        self
    }
    /// The hard label to skip (default −100).
    pub fn ignore_index(mut self, index: i64) -> Self {
        self.ignore_index = index;
        self
    }
    /// Label smoothing ε ∈ [0, 1) (default 0).
    pub fn label_smoothing(mut self, eps: f64) -> Self {
        self.label_smoothing = eps;
        self
    }
    /// Temperature T > 0 dividing the logits (default 1).
    pub fn temperature(mut self, t: f64) -> Self {
        self.temperature = t;
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
    /// [`Error::Parameter`] naming `label_smoothing`, `temperature` or `class_weights`.
    pub fn check(&self) -> Result<()> {
        check::closed_open("label_smoothing", self.label_smoothing, 0.0, 1.0)?;
        check::greater_than("temperature", self.temperature, 0.0)?;
        driver::check_class_weights(self.class_weights.as_deref())
    }

    /// Builds the config from registry parameters (and checks it).
    ///
    /// # Errors
    /// As [`CrossEntropy::check`]; [`Error::Parameter`] for a non-integer `ignore_index`.
    pub fn from_params(p: &Params) -> Result<Self> {
        let cfg = Self {
            class_weights: p.vector("class_weights")?.map(<[f64]>::to_vec),
            ignore_index: integer_param("ignore_index", p.f64("ignore_index")?)?,
            label_smoothing: p.f64("label_smoothing")?,
            temperature: p.f64("temperature")?,
            reduction: p.reduction(),
        };
        cfg.check()?;
        Ok(cfg)
    }
}

/// An integer-valued registry parameter stored as f64.
pub(crate) fn integer_param(name: &'static str, v: f64) -> Result<i64> {
    if v.is_finite() && v.fract() == 0.0 && v.abs() <= 9.007_199_254_740_992e15 {
        Ok(v as i64)
    } else {
        Err(Error::Parameter { name, value: v, reason: "must be an integer" })
    }
}

/// The row kernel, with the config converted to `F`.
struct Kernel<'a, F> {
    w: Option<&'a [F]>,
    /// W = Σ_c w_c (C without weights).
    w_sum: F,
    eps: F,
    /// ε / C.
    spread: F,
    /// 1 / T.
    inv_t: F,
}

impl<F: Real> RowKernel<F> for Kernel<'_, F> {
    // split_exp_sum writes every column but y, scale_shift rewrites them, and column y is set last.
    const WRITES_HARD_ROW: bool = true;

    #[inline(always)]
    fn label_weight(&self, label: usize) -> F {
        self.w.map_or(F::one(), |w| w[label])
    }

    #[inline(always)]
    fn hard(&self, z: &[F], max: F, y: usize, scale: F, mut grad: Option<&mut [F]>) -> F {
        let s = self.inv_t;
        let wy = self.label_weight(y);
        let keep = F::one() - self.eps;
        let sp = rowmath::split_exp_sum(z, max, s, y, grad.as_deref_mut());
        let nll = -sp.log_py;
        let loss = if self.eps > F::zero() {
            // Σ_c w_c·(−log p_c) = W·ln S − Σ_c w_c·(z_c − m)/T: both terms ≥ 0.
            let smooth = self.w_sum * sp.ln_total - rowmath::shifted_dot(z, self.w, max, s);
            keep * wy * nll + self.spread * smooth
        } else {
            wy * nll
        };
        if let Some(g) = grad {
            let cs = scale * s;
            let a = cs * (keep * wy + self.spread * self.w_sum) / sp.total;
            let b = cs * self.spread;
            let (gl, gr) = g.split_at_mut(y);
            let (gy, gr) = gr.split_at_mut(1);
            rowmath::scale_shift(gl, a, b, self.w.map(|w| &w[..y]));
            rowmath::scale_shift(gr, a, b, self.w.map(|w| &w[y + 1..]));
            // (1 − ε)·w_y·(p_y − 1) written with 1 − p_y summed directly.
            gy[0] = cs * (self.spread * (self.w_sum * sp.py() - wy) - keep * wy * sp.one_minus_py());
        }
        loss
    }

    #[inline(always)]
    fn soft(&self, z: &[F], max: F, t: &[F], scale: F, mut grad: Option<&mut [F]>) -> F {
        let s = self.inv_t;
        let keep = F::one() - self.eps;
        let total = rowmath::exp_sum(z, max, s, grad.as_deref_mut());
        let (tw, dz) = rowmath::target_sums(z, t, self.w, max, s, keep, self.spread);
        // −Σ w_c·t'_c·((z_c − m)/T − ln S) = (Σ w_c·t'_c)·ln S − Σ w_c·t'_c·(z_c − m)/T: both terms ≥ 0.
        let loss = tw * total.ln() - dz;
        if let Some(g) = grad {
            let cs = scale * s;
            rowmath::scale_shift_target(g, cs * tw / total, cs, t, self.w, keep, self.spread);
        }
        loss
    }
}

impl CrossEntropy {
    fn run<F: Real>(
        &self,
        logits: ArrayView2<'_, F>,
        targets: Targets<'_, F>,
        weights: Option<ArrayView1<'_, F>>,
        dest: GradDest<'_, F>,
    ) -> Result<LossOutput<F, Ix2>> {
        self.check()?;
        let c = logits.ncols();
        let w = driver::class_weights::<F>(self.class_weights.as_deref(), c)?;
        let eps = F::c(self.label_smoothing);
        let kernel = Kernel {
            w_sum: w.as_ref().map_or(F::from_usize_lossy(c), |w| w.iter().copied().sum()),
            w: w.as_deref(),
            eps,
            spread: eps / F::from_usize_lossy(c.max(1)),
            inv_t: F::c(1.0 / self.temperature),
        };
        let setup = Setup { ignore_index: Some(self.ignore_index), reduction: self.reduction };
        driver::run_to(&kernel, setup, logits, targets, weights, dest)
    }
}

impl<F: Real> ClassLoss<F> for CrossEntropy {
    fn compute(
        &self,
        logits: ArrayView2<'_, F>,
        targets: Targets<'_, F>,
        weights: Option<ArrayView1<'_, F>>,
        grad: bool,
    ) -> Result<LossOutput<F, Ix2>> {
        self.run(logits, targets, weights, if grad { GradDest::Alloc } else { GradDest::Skip })
    }

    fn value_and_grad_into(
        &self,
        logits: ArrayView2<'_, F>,
        targets: Targets<'_, F>,
        weights: Option<ArrayView1<'_, F>>,
        grad: ArrayViewMut2<'_, F>,
    ) -> Result<LossOutput<F, Ix2>> {
        self.run(logits, targets, weights, GradDest::Into(grad))
    }
}

const PARAMS: &[ParamSpec] = &[
    param("class_weights", "none", Range::Vector, "per-class weights [C] (PyTorch's `weight`); also weight smoothing"),
    param("ignore_index", "-100", Range::Any, "an integer hard label to skip (zero loss, not counted by the mean)"),
    param("label_smoothing", "0", Range::ClosedOpen(0.0, 1.0), "ε: mix the target with the uniform distribution"),
    param("temperature", "1", Range::Positive, "T: divide the logits by T (1 = PyTorch's loss)"),
];

fn build(p: &Params) -> Result<BuiltLoss> {
    Ok(BuiltLoss { class: Some(Box::new(CrossEntropy::from_params(p)?)), binary: None })
}

/// Registry entry.
pub(crate) const ENTRY: LossEntry = LossEntry {
    name: "cross-entropy",
    family: Family::Classification,
    summary: "softmax cross-entropy as torch.nn.functional.cross_entropy (class weights, ignore_index, label \
              smoothing, probability targets) with a temperature",
    paper: "pytorch",
    reference: "Paszke et al. (2019), PyTorch: An Imperative Style, High-Performance Deep Learning Library, NeurIPS, \
                arXiv:1912.01703 — semantics of torch.nn.functional.cross_entropy",
    params: PARAMS,
    build,
};

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn each_bad_parameter_is_named() {
        let bad = |c: CrossEntropy, name: &str| {
            assert!(matches!(c.check(), Err(Error::Parameter { name: n, .. }) if n == name))
        };
        bad(CrossEntropy::new().label_smoothing(1.0), "label_smoothing");
        bad(CrossEntropy::new().label_smoothing(-0.1), "label_smoothing");
        bad(CrossEntropy::new().temperature(0.0), "temperature");
        bad(CrossEntropy::new().temperature(f64::NAN), "temperature");
        bad(CrossEntropy::new().class_weights(vec![1.0, -1.0]), "class_weights");
        bad(CrossEntropy::new().class_weights(vec![f64::INFINITY]), "class_weights");
        assert!(CrossEntropy::new().check().is_ok());
    }

    #[test]
    fn two_classes_at_zero_give_log_two() {
        let z = array![[0.0_f64, 0.0]];
        let out = CrossEntropy::new().compute(z.view(), Targets::hard(&[1]), None, true).unwrap();
        assert!((out.value - std::f64::consts::LN_2).abs() < 1e-15);
        let g = out.grad.unwrap();
        assert!((g[[0, 0]] - 0.5).abs() < 1e-15 && (g[[0, 1]] + 0.5).abs() < 1e-15);
    }

    #[test]
    fn wrong_class_weight_count_is_a_shape_error() {
        let z = array![[0.0_f64, 1.0, 2.0]];
        let r = CrossEntropy::new().class_weights(vec![1.0, 2.0]).compute(z.view(), Targets::hard(&[0]), None, false);
        assert!(matches!(r, Err(Error::Shape { arg: "class_weights", .. })));
    }

    #[test]
    fn all_ignored_mean_is_degenerate_and_sum_is_zero() {
        let z = array![[0.0_f64, 1.0], [2.0, 3.0]];
        let r = CrossEntropy::new().compute(z.view(), Targets::hard(&[-100, -100]), None, true);
        assert!(matches!(r, Err(Error::Degenerate { .. })));
        let out = CrossEntropy::new()
            .reduction(Reduction::Sum)
            .compute(z.view(), Targets::hard(&[-100, -100]), None, true)
            .unwrap();
        assert_eq!(out.value, 0.0);
        assert!(out.grad.unwrap().iter().all(|&v| v == 0.0));
    }

    /// Logits [N, C] with a spread of magnitudes, from a small LCG (no RNG dependency in unit tests).
    fn logits<F: Real>(n: usize, c: usize, seed: u64) -> ndarray::Array2<F> {
        let mut s = seed;
        ndarray::Array2::from_shape_simple_fn((n, c), || {
            s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            F::c(((s >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 12.0)
        })
    }

    fn assert_into_matches<F: Real>(
        name: &str,
        compute: impl Fn(ndarray::ArrayView2<'_, F>) -> Result<LossOutput<F, Ix2>>,
        into: impl Fn(ndarray::ArrayView2<'_, F>, ArrayViewMut2<'_, F>) -> Result<LossOutput<F, Ix2>>,
        z: &ndarray::Array2<F>,
    ) {
        let want = compute(z.view()).unwrap();
        // A buffer full of garbage: every element must be overwritten.
        let mut g = ndarray::Array2::from_elem(z.dim(), F::nan());
        let got = into(z.view(), g.view_mut()).unwrap();
        assert!(got.grad.is_none(), "{name}");
        assert_eq!(got.value.to_f64().map(f64::to_bits), want.value.to_f64().map(f64::to_bits), "{name}: value");
        assert_eq!(got.per_sample, want.per_sample, "{name}: per-sample");
        let wg = want.grad.unwrap();
        assert!(g.iter().zip(&wg).all(|(a, b)| a.to_f64().map(f64::to_bits) == b.to_f64().map(f64::to_bits)), "{name}");
    }

    #[test]
    fn value_and_grad_into_equals_compute_bit_for_bit() {
        use crate::{Focal, GeneralizedCrossEntropy, Mae, SumExponential};
        // 600 × 37: two parallel tasks, rows not a multiple of the SIMD width, labels split the rows anywhere.
        // 1200 × 1000: a fresh gradient of 4.8 MB (f32) / 9.6 MB (f64), which `compute` streams row by row.
        for (n, c) in [(600, 37), (1200, 1000)] {
            let labels: Vec<i64> = (0..n as i64).map(|i| if i % 29 == 3 { -100 } else { (i * 7) % c as i64 }).collect();
            let kept: Vec<i64> = labels.iter().map(|&y| y.max(0)).collect();
            let w: ndarray::Array1<f64> = (0..n).map(|i| 0.5 + (i % 5) as f64 * 0.25).collect();
            let z32 = logits::<f32>(n, c, 1);
            let z64 = logits::<f64>(n, c, 2);
            let ce = CrossEntropy::new()
                .label_smoothing(0.1)
                .class_weights((0..c).map(|k| 1.0 + k as f64 / 10.0).collect::<Vec<_>>());
            for (name, t) in [("ignored rows", &labels), ("all rows", &kept)] {
                assert_into_matches::<f32>(
                    name,
                    |x| ce.compute(x, Targets::hard(t), None, true),
                    |x, g| ce.value_and_grad_into(x, Targets::hard(t), None, g),
                    &z32,
                );
                let wv = Some(w.view());
                assert_into_matches::<f64>(
                    name,
                    |x| ce.compute(x, Targets::hard(t), wv, true),
                    |x, g| ce.value_and_grad_into(x, Targets::hard(t), wv, g),
                    &z64,
                );
            }
            let f = Focal::new();
            assert_into_matches::<f32>(
                "focal",
                |x| f.compute(x, Targets::hard(&kept), None, true),
                |x, g| f.value_and_grad_into(x, Targets::hard(&kept), None, g),
                &z32,
            );
            let q = GeneralizedCrossEntropy::new();
            assert_into_matches::<f32>(
                "gce",
                |x| q.compute(x, Targets::hard(&kept), None, true),
                |x, g| q.value_and_grad_into(x, Targets::hard(&kept), None, g),
                &z32,
            );
            let m = Mae::new();
            assert_into_matches::<f64>(
                "mae",
                |x| m.compute(x, Targets::hard(&kept), None, true),
                |x, g| m.value_and_grad_into(x, Targets::hard(&kept), None, g),
                &z64,
            );
            let e = SumExponential::new();
            assert_into_matches::<f32>(
                "sum-exp",
                |x| e.compute(x, Targets::hard(&kept), None, true),
                |x, g| e.value_and_grad_into(x, Targets::hard(&kept), None, g),
                &z32,
            );
            // Probability targets: the driver clears every row of the caller's buffer first.
            let soft = z64.mapv(|v| v.abs());
            let st = Targets::Soft(soft.view());
            let plain = CrossEntropy::new();
            assert_into_matches::<f64>(
                "soft",
                |x| plain.compute(x, st, None, true),
                |x, g| plain.value_and_grad_into(x, st, None, g),
                &z64,
            );
        }
    }

    #[test]
    fn the_default_value_and_grad_into_copies_the_computed_gradient() {
        use crate::{WestonWatkins, ZLoss};
        // Losses without a fused into-path: the trait's default computes, then copies into the caller's buffer.
        let (n, c) = (300, 11);
        let labels: Vec<i64> = (0..n as i64).map(|i| (i * 5) % c as i64).collect();
        let z = logits::<f64>(n, c, 4);
        let zl = ZLoss::new(0.5, 3.0);
        assert_into_matches::<f64>(
            "z-loss",
            |x| zl.compute(x, Targets::hard(&labels), None, true),
            |x, g| zl.value_and_grad_into(x, Targets::hard(&labels), None, g),
            &z,
        );
        let ww = WestonWatkins::new();
        let z32 = logits::<f32>(n, c, 5);
        assert_into_matches::<f32>(
            "weston-watkins",
            |x| ww.compute(x, Targets::hard(&labels), None, true),
            |x, g| ww.value_and_grad_into(x, Targets::hard(&labels), None, g),
            &z32,
        );
        // The same buffer checks as the fused path, before any work.
        let mut small = ndarray::Array2::<f64>::zeros((n, c - 1));
        let r = zl.value_and_grad_into(z.view(), Targets::hard(&labels), None, small.view_mut());
        assert!(matches!(r, Err(Error::Shape { arg: "grad", .. })));
        let mut wide = ndarray::Array2::<f64>::zeros((c, n));
        let r = zl.value_and_grad_into(z.view(), Targets::hard(&labels), None, wide.view_mut().reversed_axes());
        assert!(matches!(r, Err(Error::Shape { arg: "grad", .. })));
    }

    #[test]
    fn value_and_grad_into_checks_the_buffer() {
        let z = logits::<f64>(4, 3, 3);
        let t = Targets::hard(&[0, 1, 2, 0]);
        let mut small = ndarray::Array2::<f64>::zeros((4, 2));
        let r = CrossEntropy::new().value_and_grad_into(z.view(), t, None, small.view_mut());
        assert!(matches!(r, Err(Error::Shape { arg: "grad", .. })));
        // A transposed (column-major) view of the right shape is not row-major.
        let mut wide = ndarray::Array2::<f64>::zeros((3, 4));
        let r = CrossEntropy::new().value_and_grad_into(z.view(), t, None, wide.view_mut().reversed_axes());
        assert!(matches!(r, Err(Error::Shape { arg: "grad", .. })));
        // Non-finite logits are still reported.
        let mut bad = z.clone();
        bad[[2, 1]] = f64::NAN;
        let mut g = ndarray::Array2::<f64>::zeros((4, 3));
        let r = CrossEntropy::new().value_and_grad_into(bad.view(), t, None, g.view_mut());
        assert!(matches!(r, Err(Error::NonFinite { arg: "logits", index: 7, .. })));
    }

    #[test]
    fn ignore_index_parameter_must_be_an_integer() {
        let p = ENTRY.params(&[("ignore_index".into(), "1.5".into())]).unwrap();
        assert!(matches!(CrossEntropy::from_params(&p), Err(Error::Parameter { name: "ignore_index", .. })));
        let p = ENTRY.params(&[("ignore_index".into(), "-1".into())]).unwrap();
        assert_eq!(CrossEntropy::from_params(&p).unwrap().ignore_index, -1);
    }
}
