//! Class weights for re-weighting instead of re-sampling: scikit-learn's `balanced` heuristic and Cui et al.'s
//! effective number of samples.

use std::collections::BTreeMap;

use ndarray::{Array1, ArrayView1};

use crate::{Error, Result};

/// scikit-learn's `compute_class_weight("balanced", classes=classes, y=y)`: one weight per entry of `classes`,
///
/// ```text
/// w_c = N / (K · n_c)
/// ```
/// where `N = len(y)`, `K` the number of distinct labels in `y` and `n_c` the count of class `c`. A class twice as
/// rare weighs twice as much; a balanced `y` gives all ones; Σ_c n_c·w_c = N.
///
/// # Shapes
/// `y` `[N]` (any `i64` labels); `classes` `[C]` (any order, as scikit-learn's `classes` argument, usually
/// `np.unique(y)`); output `[C]`, aligned with `classes`.
///
/// # Errors
/// [`Error::Empty`] for an empty `y` or `classes`; [`Error::Input`] when a label of `y` is not in `classes`
/// (scikit-learn: "classes should include all valid labels that can be in y"); [`Error::Degenerate`] when a class in
/// `classes` does not occur in `y` (scikit-learn: "classes should have valid labels that are in y").
///
/// # Examples
/// ```
/// let w = losskit_samplers::compute_class_weight_balanced(ndarray::array![1_i64, 1, 1, 1, 0, 0].view(), &[0, 1])?;
/// assert_eq!(w.to_vec(), vec![1.5, 0.75]); // scikit-learn's docstring example
/// # Ok::<(), losskit_samplers::Error>(())
/// ```
///
/// # References
/// scikit-learn 1.9 `sklearn.utils.class_weight.compute_class_weight` (Pedregosa et al. (2011), JMLR 12;
/// docs/papers.md `pedregosa2011scikit`); the heuristic follows King, Zeng (2001), *Logistic Regression in Rare
/// Events Data*, Political Analysis 9(2).
pub fn compute_class_weight_balanced(y: ArrayView1<'_, i64>, classes: &[i64]) -> Result<Array1<f64>> {
    balanced(y, classes, None)
}

/// scikit-learn's `compute_class_weight("balanced", classes=classes, y=y, sample_weight=sample_weight)`: as
/// [`compute_class_weight_balanced`] with counts replaced by summed sample weights,
///
/// ```text
/// w_c = (Σᵢ sᵢ) / (K · Σ_{i: yᵢ = c} sᵢ)
/// ```
///
/// # Shapes
/// `y` `[N]`, `sample_weight` `[N]`, `classes` `[C]`; output `[C]`.
///
/// # Errors
/// As [`compute_class_weight_balanced`], plus [`Error::Shape`], [`Error::NonFinite`] or [`Error::Degenerate`] for a
/// `sample_weight` of the wrong length, non-finite or negative (scikit-learn accepts negative weights; losskit does
/// not), and [`Error::Degenerate`] when a class's weights sum to 0 (scikit-learn would return an infinite weight).
pub fn compute_class_weight_balanced_weighted(
    y: ArrayView1<'_, i64>,
    classes: &[i64],
    sample_weight: ArrayView1<'_, f64>,
) -> Result<Array1<f64>> {
    losskit_tensor::check::weights("sample_weight", sample_weight, y.len())?;
    balanced(y, classes, Some(sample_weight))
}

fn balanced(
    y: ArrayView1<'_, i64>,
    classes: &[i64],
    sample_weight: Option<ArrayView1<'_, f64>>,
) -> Result<Array1<f64>> {
    losskit_tensor::check::non_empty("y", y.len())?;
    losskit_tensor::check::non_empty("classes", classes.len())?;
    // Per-class (weighted) counts, accumulated in row order as NumPy's bincount.
    let mut totals: BTreeMap<i64, f64> = BTreeMap::new();
    for (i, &label) in y.iter().enumerate() {
        if !classes.contains(&label) {
            return Err(Error::Input { what: format!("y: label {label} at index {i} is not in classes {classes:?}") });
        }
        *totals.entry(label).or_insert(0.0) += sample_weight.map_or(1.0, |w| w[i]);
    }
    if let Some(c) = classes.iter().find(|c| !totals.contains_key(c)) {
        return Err(Error::Degenerate {
            what: format!("classes: class {c} does not occur in y, so its balanced weight is undefined"),
        });
    }
    if let Some((c, _)) = totals.iter().find(|(_, t)| **t <= 0.0) {
        return Err(Error::Degenerate {
            what: format!("sample_weight: the weights of class {c} sum to 0, so its balanced weight is infinite"),
        });
    }
    let k = totals.len() as f64;
    let sum: f64 = totals.values().sum();
    Ok(classes.iter().map(|c| sum / (k * totals.get(c).copied().unwrap_or(f64::NAN))).collect()) // ok: every class checked present
}

/// Class-balanced weights from the effective number of samples (Cui et al. 2019):
///
/// ```text
/// E_c = (1 − β^{n_c}) / (1 − β),      w_c = C · (1 / E_c) / Σ_j (1 / E_j)
/// ```
/// so `Σ_c w_c = C` (the number of classes). β = 0 gives uniform weights; β → 1 gives `w_c ∝ 1 / n_c`. The paper
/// uses β ∈ {0.9, 0.99, 0.999, 0.9999}.
///
/// Computed as `1 − β^n = −expm1(n · ln β)`, which keeps full precision where the
/// reference code's `1.0 − np.power(beta, n)` cancels (β near 1 with n ≲ 1/(1 − β)).
///
/// # Shapes
/// `counts` `[C]`, samples per class (each ≥ 1); output `[C]`.
///
/// # Errors
/// [`Error::Empty`] for no classes; [`Error::Degenerate`] for a class with 0 samples (its effective number is 0);
/// [`Error::Parameter`] named `beta` unless `0 ≤ β < 1`.
///
/// # Examples
/// ```
/// let w = losskit_samplers::effective_number_weights(&[10, 4, 2], 0.9)?;
/// assert!((w.sum() - 3.0).abs() < 1e-12 && w[0] < w[1] && w[1] < w[2]);
/// # Ok::<(), losskit_samplers::Error>(())
/// ```
///
/// # References
/// Cui, Jia, Lin, Song, Belongie (2019), *Class-Balanced Loss Based on Effective Number of Samples*, CVPR,
/// arXiv:1901.05555 (reference code `class_balanced_loss.py`); docs/papers.md `cui2019class`.
pub fn effective_number_weights(counts: &[usize], beta: f64) -> Result<Array1<f64>> {
    losskit_tensor::check::non_empty("counts", counts.len())?;
    losskit_tensor::check::closed_open("beta", beta, 0.0, 1.0)?;
    if let Some(c) = counts.iter().position(|&n| n == 0) {
        return Err(Error::Degenerate {
            what: format!("counts: class {c} has no samples, so its effective number is 0 and its weight infinite"),
        });
    }
    // ln β is accurate to an ulp of itself even for β near 1 (β is exact); expm1 then avoids the cancellation.
    let ln_beta = beta.ln();
    // The common factor (1 − β) cancels in the normalisation: w_c ∝ 1 / (1 − β^{n_c}).
    let inv: Vec<f64> = counts.iter().map(|&n| 1.0 / -(n as f64 * ln_beta).exp_m1()).collect();
    let sum: f64 = inv.iter().sum();
    let c = counts.len() as f64;
    Ok(inv.into_iter().map(|v| v / sum * c).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn balanced_by_hand() {
        // N = 16, K = 3: 16 / (3·10), 16 / (3·4), 16 / (3·2)
        let y = Array1::from_iter([0_i64; 10].into_iter().chain([1; 4]).chain([2; 2]));
        let w = compute_class_weight_balanced(y.view(), &[2, 0, 1]).unwrap();
        let want = [16.0 / 6.0, 16.0 / 30.0, 16.0 / 12.0];
        for (a, b) in w.iter().zip(want) {
            assert!((a - b).abs() < 1e-15);
        }
    }

    #[test]
    fn balanced_errors() {
        let y = array![0_i64, 1, 2];
        assert!(matches!(compute_class_weight_balanced(y.view(), &[0, 1]), Err(Error::Input { .. })));
        assert!(matches!(compute_class_weight_balanced(y.view(), &[0, 1, 2, 3]), Err(Error::Degenerate { .. })));
        assert!(matches!(
            compute_class_weight_balanced(y.slice(ndarray::s![..0]), &[0]),
            Err(Error::Empty { arg: "y" })
        ));
        assert!(matches!(compute_class_weight_balanced(y.view(), &[]), Err(Error::Empty { arg: "classes" })));
        let sw = array![1.0, 0.0, 2.0];
        assert!(matches!(
            compute_class_weight_balanced_weighted(y.view(), &[0, 1, 2], sw.view()),
            Err(Error::Degenerate { .. })
        ));
        let sw = array![1.0, -1.0, 2.0];
        assert!(compute_class_weight_balanced_weighted(y.view(), &[0, 1, 2], sw.view()).is_err());
        let sw = array![1.0, 2.0];
        assert!(matches!(
            compute_class_weight_balanced_weighted(y.view(), &[0, 1, 2], sw.view()),
            Err(Error::Shape { .. })
        ));
    }

    #[test]
    fn effective_number_limits() {
        // β = 0: uniform
        assert_eq!(effective_number_weights(&[100, 3, 1], 0.0).unwrap().to_vec(), vec![1.0, 1.0, 1.0]);
        // β → 1: ∝ 1/n (β = 1 − 1e-12, n ≪ 1e12)
        let w = effective_number_weights(&[100, 10, 1], 1.0 - 1e-12).unwrap();
        let inv = [0.01, 0.1, 1.0];
        let s: f64 = inv.iter().sum();
        for (a, b) in w.iter().zip(inv) {
            assert!((a - b / s * 3.0).abs() < 1e-9, "{a}");
        }
        // equal counts: all ones whatever β
        for beta in [0.3, 0.9, 0.999_999] {
            let w = effective_number_weights(&[7, 7], beta).unwrap();
            assert!(w.iter().all(|v| (v - 1.0).abs() < 1e-15));
        }
    }

    #[test]
    fn effective_number_errors() {
        assert!(matches!(effective_number_weights(&[], 0.9), Err(Error::Empty { arg: "counts" })));
        assert!(matches!(effective_number_weights(&[3, 0], 0.9), Err(Error::Degenerate { .. })));
        for beta in [1.0, -0.1, f64::NAN, 2.0] {
            assert!(matches!(effective_number_weights(&[3, 1], beta), Err(Error::Parameter { name: "beta", .. })));
        }
    }
}
