//! The smooth adversarial comp-sum loss (Mao, Mohri, Zhong 2023): a comp-sum loss on the clean logits plus a
//! penalty on how much the vector of logit gaps moves under an adversarial perturbation of the input.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

use losskit_tensor::{Error, Real, Reduction, Result, check};

use super::comp_sum::{self, Psi};
use crate::core::Targets;

/// What [`SmoothAdversarialCompSum::compute`] returns: the value, per-sample values and the gradients with respect
/// to both logit arrays.
#[derive(Clone, Debug, PartialEq)]
pub struct AdversarialOutput<F> {
    /// The reduced loss.
    pub value: F,
    /// sᵢ·ℓ̃ᵢ per sample.
    pub per_sample: Array1<F>,
    /// ∂value/∂clean [N, C], when asked.
    pub grad_clean: Option<Array2<F>>,
    /// ∂value/∂perturbed [N, C], when asked.
    pub grad_perturbed: Option<Array2<F>>,
}

/// Smooth adversarial comp-sum loss: a comp-sum loss on the clean logits h plus ν times the distance between the
/// logit-gap vectors at the clean and the perturbed input.
///
/// ```text
/// ℓ̃ᵢ = Ψ-loss(hᵢ, y) + ν·‖dᵢ‖₂,   dᵢ = (h'ᵢ − h'ᵢ,y·1) − (hᵢ − hᵢ,y·1)
/// Mean = Σᵢ sᵢ·ℓ̃ᵢ / Σᵢ sᵢ     Sum = Σᵢ sᵢ·ℓ̃ᵢ     None: (sᵢ·ℓ̃ᵢ)ᵢ
/// ```
/// The library cannot compute the paper's sup over ‖x' − x‖_p ≤ γ: the training loop finds the perturbed input x'
/// (for example by PGD on this penalty) and passes both logit arrays, h = h(x) and h' = h(x'). h' = h gives the plain
/// comp-sum loss; adding a constant to a row of h' changes nothing.
///
/// Status: the structure follows the paper; the paper's ρ-margin form of the comp-sum part and its regularised
/// objective are not reproduced, and ν has no verified default (it is a required argument).
///
/// # Parameters
/// * `psi`: Ψ of the comp-sum part (see [`CompSum`](crate::CompSum)).
/// * `nu`: ν ≥ 0, the penalty weight (required).
/// * `reduction`: `Mean` (default), `Sum` or `None`.
///
/// # Shapes
/// `clean` and `perturbed` [N, C], hard targets `[N]` in `0..C`, optional `weights` `[N]`; both gradients [N, C].
///
/// # Gradient
/// ```text
/// ∂‖d‖/∂h' = (d − (Σ_k d_k)·e_y)/‖d‖,   ∂‖d‖/∂h = −∂‖d‖/∂h'
/// ```
/// plus the comp-sum gradient on h. At d = 0 the subgradient 0 is used.
///
/// # Errors
/// [`Error::Parameter`] for ν < 0 or a bad Ψ parameter; [`Error::Shape`] when `perturbed` does not match `clean`;
/// [`Error::NonFinite`] for a non-finite perturbed logit; the comp-sum loss's input errors.
///
/// # References
/// Mao, Mohri, Zhong (2023), *Cross-Entropy Loss Functions: Theoretical Analysis and Applications*, ICML,
/// arXiv:2304.07288 (docs/papers.md key `mao2023cross`).
#[derive(Clone, Debug, PartialEq)]
pub struct SmoothAdversarialCompSum {
    /// Ψ of the comp-sum part.
    pub psi: Psi,
    /// ν ≥ 0.
    pub nu: f64,
    /// Default [`Reduction::Mean`].
    pub reduction: Reduction,
}

impl SmoothAdversarialCompSum {
    /// A loss with comp-sum part Ψ and penalty weight ν (no default ν: it is a tuned hyperparameter).
    pub fn new(psi: Psi, nu: f64) -> Self {
        Self { psi, nu, reduction: Reduction::Mean }
    }
    /// Reduction (default [`Reduction::Mean`]).
    pub fn reduction(mut self, r: Reduction) -> Self {
        self.reduction = r;
        self
    }
    /// Validates the parameters.
    ///
    /// # Errors
    /// [`Error::Parameter`] naming `nu` or `q`.
    pub fn check(&self) -> Result<()> {
        check::at_least("nu", self.nu, 0.0)?;
        crate::CompSum::new().psi(self.psi).check()
    }

    /// Computes the loss of the clean logits `clean` and the perturbed logits `perturbed` against hard `targets`.
    ///
    /// # Errors
    /// See [`SmoothAdversarialCompSum`].
    pub fn compute<F: Real>(
        &self,
        clean: ArrayView2<'_, F>,
        perturbed: ArrayView2<'_, F>,
        targets: ArrayView1<'_, i64>,
        weights: Option<ArrayView1<'_, F>>,
        grad: bool,
    ) -> Result<AdversarialOutput<F>> {
        self.check()?;
        let (n, c) = clean.dim();
        let base = comp_sum::run(self.psi, Reduction::None, clean, Targets::Hard(targets), weights, grad)?;
        check::shape("perturbed", perturbed.shape(), &[Some(n), Some(c)])?;
        check::finite("perturbed", &perturbed)?;
        let mut per_sample = base.per_sample.unwrap_or_else(|| Array1::zeros(n));
        let mut grad_clean = base.grad;
        let mut grad_pert: Option<Array2<F>> = grad.then(|| Array2::zeros((n, c)));
        let nu = F::c(self.nu);
        let mut d = vec![F::zero(); c];
        let mut total_weight = 0.0_f64;
        for i in 0..n {
            let y = targets[i] as usize; // in range: checked by the comp-sum driver above
            let s = weights.map_or(F::one(), |w| w[i]);
            total_weight += s.f64();
            let (h, hp) = (clean.row(i), perturbed.row(i));
            let (hy, hpy) = (h[y], hp[y]);
            let mut sq = F::zero();
            for k in 0..c {
                d[k] = (hp[k] - hpy) - (h[k] - hy);
                sq += d[k] * d[k];
            }
            let r = sq.sqrt();
            per_sample[i] += s * nu * r;
            if let (Some(gc), Some(gp)) = (grad_clean.as_mut(), grad_pert.as_mut())
                && r > F::zero()
            {
                let sum_d: F = d.iter().copied().sum();
                let f = s * nu / r;
                for k in 0..c {
                    let v = f * (d[k] - if k == y { sum_d } else { F::zero() });
                    gp[[i, k]] += v;
                    gc[[i, k]] -= v;
                }
            }
        }
        let total: f64 = per_sample.iter().map(|v| v.f64()).sum();
        let value = match self.reduction {
            Reduction::Mean => {
                if total_weight.is_nan() || total_weight <= 0.0 {
                    return Err(Error::Degenerate { what: "the mean is undefined: all sample weights are 0".into() });
                }
                let inv = F::c(1.0 / total_weight);
                for g in [grad_clean.as_mut(), grad_pert.as_mut()].into_iter().flatten() {
                    g.mapv_inplace(|v| v * inv);
                }
                total / total_weight
            }
            Reduction::Sum | Reduction::None => total,
        };
        Ok(AdversarialOutput { value: F::c(value), per_sample, grad_clean, grad_perturbed: grad_pert })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ClassLoss, CompSum};
    use ndarray::array;

    #[test]
    fn equal_logits_give_the_comp_sum_loss_and_shifts_do_not_matter() {
        let h = array![[0.2_f64, -1.0, 0.7], [1.5, 0.1, -0.3]];
        let y = array![2_i64, 0];
        let loss = SmoothAdversarialCompSum::new(Psi::CrossEntropy, 0.5);
        let a = loss.compute(h.view(), h.view(), y.view(), None, true).unwrap();
        let b = CompSum::new().psi(Psi::CrossEntropy).compute(h.view(), Targets::Hard(y.view()), None, true).unwrap();
        assert!((a.value - b.value).abs() < 1e-15);
        let mut hp = h.clone();
        hp[[0, 1]] += 0.4;
        let c = loss.compute(h.view(), hp.view(), y.view(), None, true).unwrap();
        assert!((c.value - (b.value + 0.5 * 0.4 / 2.0)).abs() < 1e-14);
        let shifted = hp.mapv(|v| v + 3.0);
        let d = loss.compute(h.view(), shifted.view(), y.view(), None, false).unwrap();
        assert!((d.value - c.value).abs() < 1e-14);
        assert!(matches!(
            SmoothAdversarialCompSum::new(Psi::Mae, -1.0).check(),
            Err(Error::Parameter { name: "nu", .. })
        ));
    }
}
