//! Multiclass hinge losses: [`CrammerSinger`] (the largest margin violation) and [`WestonWatkins`] (the sum of the
//! violations, with `torch.nn.MultiMarginLoss` semantics).

use ndarray::{ArrayView1, ArrayView2, Ix2};

use losskit_tensor::{Error, Real, Reduction, Result, check};

use super::driver::{self, RowKernel, Setup};
use crate::core::{ClassLoss, LossOutput, Targets};
use crate::registry::{BuiltLoss, Family, LossEntry, ParamSpec, Params, Range, param};

fn reject_soft<F>(targets: &Targets<'_, F>, what: &str) -> Result<()> {
    match targets {
        Targets::Soft(_) => {
            Err(Error::Input { what: format!("{what} takes class indices as targets, not probabilities") })
        }
        Targets::Hard(_) => Ok(()),
    }
}

/// Crammer–Singer multiclass hinge: the largest margin violation of any wrong class.
///
/// ```text
/// ℓᵢ = max(0, m + max_{j≠y} z_j − z_y)
/// Mean = Σᵢ sᵢ·ℓᵢ / Σᵢ sᵢ     Sum = Σᵢ sᵢ·ℓᵢ     None: (sᵢ·ℓᵢ)ᵢ
/// ```
/// The LDR-KL paper's released `CSLoss` computes the same (mean over the batch). LDR-KL tends to this loss as λ → 0.
///
/// # Parameters
/// * `margin`: m ≥ 0, default 1.
/// * `reduction`: `Mean` (default), `Sum` or `None`.
///
/// # Shapes
/// `logits` [N, C], hard targets `[N]` in `0..C`, optional `weights` `[N]`; gradient [N, C]. With C = 1 the loss is 0.
///
/// # Gradient
/// A subgradient: when ℓ > 0, +1 at j* (the first index attaining max_{j≠y} z_j) and −1 at y; 0 otherwise. At the
/// kinks (ℓ = 0 exactly, or ties for the maximum) this is one element of the subdifferential: ℓ = 0 takes the zero
/// side, a tie takes the lowest index.
///
/// # Errors
/// [`Error::Parameter`] for m < 0; [`Error::Input`] for probability targets; input errors from the driver.
///
/// # References
/// Crammer, Singer (2001), *On the Algorithmic Implementation of Multiclass Kernel-based Vector Machines*, JMLR 2
/// (docs/papers.md key `crammer2001algorithmic`).
#[derive(Clone, Debug, PartialEq)]
pub struct CrammerSinger {
    /// m ≥ 0. Default 1.
    pub margin: f64,
    /// Default [`Reduction::Mean`].
    pub reduction: Reduction,
}

impl Default for CrammerSinger {
    fn default() -> Self {
        Self { margin: 1.0, reduction: Reduction::Mean }
    }
}

impl CrammerSinger {
    /// The defaults (m = 1).
    pub fn new() -> Self {
        Self::default()
    }
    /// Margin m ≥ 0 (default 1).
    pub fn margin(mut self, m: f64) -> Self {
        self.margin = m;
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
    /// [`Error::Parameter`] naming `margin`.
    pub fn check(&self) -> Result<()> {
        check::at_least("margin", self.margin, 0.0)
    }
}

struct CsKernel<F> {
    margin: F,
}

impl<F: Real> RowKernel<F> for CsKernel<F> {
    #[inline(always)]
    fn label_weight(&self, _label: usize) -> F {
        F::one()
    }

    fn hard(&self, z: &[F], _max: F, y: usize, scale: F, grad: Option<&mut [F]>) -> F {
        let mut best: Option<(usize, F)> = None;
        for (j, &v) in z.iter().enumerate() {
            if j != y && best.is_none_or(|(_, b)| v > b) {
                best = Some((j, v));
            }
        }
        let Some((j, v)) = best else { return F::zero() };
        let loss = (self.margin + v - z[y]).max(F::zero());
        if let Some(g) = grad
            && loss > F::zero()
        {
            g[j] = scale;
            g[y] = -scale;
        }
        loss
    }

    fn soft(&self, _z: &[F], _max: F, _t: &[F], _scale: F, _grad: Option<&mut [F]>) -> F {
        // Never called: probability targets are rejected before the driver runs.
        F::nan()
    }
}

impl<F: Real> ClassLoss<F> for CrammerSinger {
    fn compute(
        &self,
        logits: ArrayView2<'_, F>,
        targets: Targets<'_, F>,
        weights: Option<ArrayView1<'_, F>>,
        grad: bool,
    ) -> Result<LossOutput<F, Ix2>> {
        self.check()?;
        reject_soft(&targets, "crammer-singer")?;
        let kernel = CsKernel { margin: F::c(self.margin) };
        driver::run(&kernel, Setup { ignore_index: None, reduction: self.reduction }, logits, targets, weights, grad)
    }
}

/// Weston–Watkins multiclass hinge with `torch.nn.MultiMarginLoss` semantics: the (powered) margin violations of
/// every wrong class, averaged over the classes.
///
/// ```text
/// ℓᵢ = (w_y / C)·Σ_{j≠y} max(0, m − z_y + z_j)^p
/// Mean = Σᵢ sᵢ·ℓᵢ / Σᵢ sᵢ     Sum = Σᵢ sᵢ·ℓᵢ     None: (sᵢ·ℓᵢ)ᵢ
/// ```
/// exactly `torch.nn.functional.multi_margin_loss(z, y, p, margin, weight)`: the class weight w_y multiplies the
/// row but is not part of the Mean's denominator (torch divides by N), and the row is divided by C, not C − 1.
///
/// # Parameters
/// * `p`: 1 (default) or 2, torch's `p`.
/// * `margin`: m ≥ 0, default 1 (torch's).
/// * `class_weights`: w ∈ [0, ∞)^C, default none (all 1); torch's `weight`.
/// * `reduction`: `Mean` (default), `Sum` or `None`.
///
/// # Shapes
/// `logits` [N, C], hard targets `[N]` in `0..C`, optional `weights` `[N]`, `class_weights` `[C]`; gradient [N, C].
///
/// # Gradient
/// With v_j = m − z_y + z_j and the active set A = {j ≠ y : v_j > 0}:
/// ```text
/// p = 1:  ∂ℓ/∂z_j = w_y/C (j ∈ A),       ∂ℓ/∂z_y = −|A|·w_y/C
/// p = 2:  ∂ℓ/∂z_j = 2·w_y·v_j/C (j ∈ A),  ∂ℓ/∂z_y = −Σ_{j∈A} 2·w_y·v_j/C
/// ```
/// At a kink (v_j = 0 exactly) j is taken as inactive, as torch does; for p = 2 the loss is differentiable there.
///
/// # Errors
/// [`Error::Parameter`] for p ∉ {1, 2}, m < 0 or a bad class weight; [`Error::Shape`] for class weights of the wrong
/// length; [`Error::Input`] for probability targets; input errors from the driver.
///
/// # References
/// Weston, Watkins (1999), *Support Vector Machines for Multi-Class Pattern Recognition*, ESANN
/// (docs/papers.md key `weston1999support`); semantics of `torch.nn.MultiMarginLoss` (Paszke et al. 2019).
#[derive(Clone, Debug, PartialEq)]
pub struct WestonWatkins {
    /// 1 or 2. Default 1.
    pub p: u8,
    /// m ≥ 0. Default 1.
    pub margin: f64,
    /// Per-class weights `[C]`; `None` = all 1. Default `None`.
    pub class_weights: Option<Vec<f64>>,
    /// Default [`Reduction::Mean`].
    pub reduction: Reduction,
}

impl Default for WestonWatkins {
    fn default() -> Self {
        Self { p: 1, margin: 1.0, class_weights: None, reduction: Reduction::Mean }
    }
}

impl WestonWatkins {
    /// The defaults (torch's: p = 1, m = 1, no class weights).
    pub fn new() -> Self {
        Self::default()
    }
    /// The power p ∈ {1, 2} (default 1).
    pub fn p(mut self, p: u8) -> Self {
        self.p = p;
        self
    }
    /// Margin m ≥ 0 (default 1).
    pub fn margin(mut self, m: f64) -> Self {
        self.margin = m;
        self
    }
    /// Per-class weights `[C]` (default none: all 1).
    pub fn class_weights(mut self, w: impl Into<Vec<f64>>) -> Self {
        self.class_weights = Some(w.into());
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
    /// [`Error::Parameter`] naming `p`, `margin` or `class_weights`.
    pub fn check(&self) -> Result<()> {
        if self.p != 1 && self.p != 2 {
            return Err(Error::Parameter { name: "p", value: self.p.into(), reason: "must be 1 or 2" });
        }
        check::at_least("margin", self.margin, 0.0)?;
        driver::check_class_weights(self.class_weights.as_deref())
    }
}

struct WwKernel<'a, F> {
    squared: bool,
    margin: F,
    w: Option<&'a [F]>,
}

impl<F: Real> RowKernel<F> for WwKernel<'_, F> {
    #[inline(always)]
    fn label_weight(&self, _label: usize) -> F {
        F::one()
    }

    fn hard(&self, z: &[F], _max: F, y: usize, scale: F, grad: Option<&mut [F]>) -> F {
        let c = F::from_usize_lossy(z.len());
        let f = self.w.map_or(F::one(), |w| w[y]) / c;
        let base = self.margin - z[y];
        let mut sum = F::zero();
        match grad {
            Some(g) => {
                let mut gy = F::zero();
                for (j, (&v, gj)) in z.iter().zip(g.iter_mut()).enumerate() {
                    let t = base + v;
                    if j == y || t <= F::zero() {
                        continue;
                    }
                    let (l, d) = if self.squared { (t * t, (t + t) * f * scale) } else { (t, f * scale) };
                    sum += l;
                    *gj = d;
                    gy -= d;
                }
                g[y] = gy;
            }
            None => {
                for (j, &v) in z.iter().enumerate() {
                    let t = base + v;
                    if j != y && t > F::zero() {
                        sum += if self.squared { t * t } else { t };
                    }
                }
            }
        }
        f * sum
    }

    fn soft(&self, _z: &[F], _max: F, _t: &[F], _scale: F, _grad: Option<&mut [F]>) -> F {
        // Never called: probability targets are rejected before the driver runs.
        F::nan()
    }
}

impl<F: Real> ClassLoss<F> for WestonWatkins {
    fn compute(
        &self,
        logits: ArrayView2<'_, F>,
        targets: Targets<'_, F>,
        weights: Option<ArrayView1<'_, F>>,
        grad: bool,
    ) -> Result<LossOutput<F, Ix2>> {
        self.check()?;
        reject_soft(&targets, "weston-watkins")?;
        let w = driver::class_weights::<F>(self.class_weights.as_deref(), logits.ncols())?;
        let kernel = WwKernel { squared: self.p == 2, margin: F::c(self.margin), w: w.as_deref() };
        driver::run(&kernel, Setup { ignore_index: None, reduction: self.reduction }, logits, targets, weights, grad)
    }
}

const CS_PARAMS: &[ParamSpec] = &[param("margin", "1", Range::NonNegative, "m: the required score gap")];

fn build_cs(p: &Params) -> Result<BuiltLoss> {
    let cfg = CrammerSinger { margin: p.f64("margin")?, reduction: p.reduction() };
    cfg.check()?;
    Ok(BuiltLoss { class: Some(Box::new(cfg)), binary: None })
}

/// Registry entry of the Crammer–Singer hinge.
pub(crate) const CS_ENTRY: LossEntry = LossEntry {
    name: "crammer-singer",
    family: Family::Classification,
    summary: "Crammer–Singer multiclass hinge: max(0, m + max_{j≠y} z_j − z_y)",
    paper: "crammer2001algorithmic",
    reference: "Crammer, Singer (2001), On the Algorithmic Implementation of Multiclass Kernel-based Vector \
                Machines, JMLR 2",
    params: CS_PARAMS,
    build: build_cs,
};

const WW_PARAMS: &[ParamSpec] = &[
    param("p", "1", Range::Closed(1.0, 2.0), "power of each violation: 1 or 2 (torch's p)"),
    param("margin", "1", Range::NonNegative, "m: the required score gap (torch's margin)"),
    param("class_weights", "none", Range::Vector, "per-class weights [C] (torch's weight), multiplying row y"),
];

fn build_ww(p: &Params) -> Result<BuiltLoss> {
    let pv = p.f64("p")?;
    if pv != 1.0 && pv != 2.0 {
        return Err(Error::Parameter { name: "p", value: pv, reason: "must be 1 or 2" });
    }
    let cfg = WestonWatkins {
        p: pv as u8,
        margin: p.f64("margin")?,
        class_weights: p.vector("class_weights")?.map(<[f64]>::to_vec),
        reduction: p.reduction(),
    };
    cfg.check()?;
    Ok(BuiltLoss { class: Some(Box::new(cfg)), binary: None })
}

/// Registry entry of the Weston–Watkins hinge.
pub(crate) const WW_ENTRY: LossEntry = LossEntry {
    name: "weston-watkins",
    family: Family::Classification,
    summary: "Weston–Watkins multiclass hinge as torch.nn.MultiMarginLoss (p, margin, class weights)",
    paper: "weston1999support",
    reference: "Weston, Watkins (1999), Support Vector Machines for Multi-Class Pattern Recognition, ESANN",
    params: WW_PARAMS,
    build: build_ww,
};

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn hand_checked_rows() {
        let z = array![[1.0_f64, 0.5, -0.2]];
        let cs = CrammerSinger::new().compute(z.view(), Targets::hard(&[0]), None, true).unwrap();
        assert!((cs.value - 0.5).abs() < 1e-15);
        assert_eq!(cs.grad.unwrap().row(0).to_vec(), vec![-1.0, 1.0, 0.0]);
        let ww = WestonWatkins::new().compute(z.view(), Targets::hard(&[0]), None, true).unwrap();
        // (0.5 + 0) / 3: the violation of class 1 is 0.5, class 2 has 1 − 1 − 0.2 < 0.
        assert!((ww.value - 0.5 / 3.0).abs() < 1e-15);
        let g = ww.grad.unwrap();
        assert!((g[[0, 1]] - 1.0 / 3.0).abs() < 1e-15 && (g[[0, 0]] + 1.0 / 3.0).abs() < 1e-15 && g[[0, 2]] == 0.0);
    }

    #[test]
    fn bad_parameters_are_named() {
        assert!(matches!(WestonWatkins::new().p(3).check(), Err(Error::Parameter { name: "p", .. })));
        assert!(matches!(CrammerSinger::new().margin(-1.0).check(), Err(Error::Parameter { name: "margin", .. })));
        let p = WW_ENTRY.params(&[("p".into(), "1.5".into())]).unwrap();
        assert!(matches!(build_ww(&p), Err(Error::Parameter { name: "p", .. })));
    }
}
