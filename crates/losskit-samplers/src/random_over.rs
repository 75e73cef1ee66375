//! Random over-sampling (bootstrap, or smoothed bootstrap / ROSE), as imbalanced-learn's `RandomOverSampler`.

use ndarray::{ArrayView1, ArrayView2};

use crate::draw::{Draws, RngDraws, check_xy, class_members, counts_of, matrix, push_rows};
use crate::{Error, Resampled, Result, Sampler, SamplingKind, SamplingStrategy};

/// Random over-sampling: grows the targeted classes by drawing their rows with replacement, optionally adding
/// Gaussian noise (a *smoothed bootstrap*, ROSE).
///
/// For each class `c` that [`SamplingStrategy::resolve`] targets with `k_c` samples to generate (ascending label
/// order), it draws `k_c` rows of class `c` uniformly with replacement. With `shrinkage = h`, each drawn row `xᵢ`
/// becomes
///
/// ```text
/// x_new = xᵢ + z ⊙ (h · κ · σ_c),      κ = (4 / ((D + 2) · N))^(1 / (D + 4)),      z ~ N(0, I_D)
/// ```
/// where `σ_c` is the per-feature population standard deviation (ddof 0) of class `c`'s rows, `N` the number of
/// rows of the **whole** input and `D` the number of features. `κ` is the normal-reference (Silverman) bandwidth
/// factor; imbalanced-learn computes it with the total `N`, not the class size, and so does losskit.
///
/// # Output
/// The input rows first, in input order, then the new rows class by class in ascending label order (imbalanced-learn's
/// order). `sample_indices` = `0..N` followed by the source row of each new row (also with shrinkage, where the new
/// row is its source plus noise, as imbalanced-learn's `sample_indices_`).
///
/// # Parameters
/// * `sampling_strategy`: default [`SamplingStrategy::Auto`] (= `not majority`: raise every class to the majority
///   count).
/// * `shrinkage`: `h ≥ 0`, default `None` (plain bootstrap, copies of input rows). `Some(0.0)` adds zero noise but
///   still consumes the noise draws (as imbalanced-learn does), so with several targeted classes the later classes
///   draw other rows than with `None`. imbalanced-learn's per-class shrinkage dict is not supported.
///
/// # Randomness
/// One `Xoshiro256PlusPlus` stream seeded from `seed`, consumed class by class (the row choices of a class, then its
/// noise row-major); the output depends only on the seed. NumPy's stream is not reproduced, so the rows drawn differ
/// from imbalanced-learn's for the same seed; counts, ordering and the noise scale are identical.
///
/// # Errors
/// [`Error::Parameter`](crate::Error::Parameter) for a negative or non-finite `shrinkage` or a ratio outside (0, 1];
/// input errors ([`Error::Empty`](crate::Error::Empty), [`Error::Shape`](crate::Error::Shape),
/// [`Error::NonFinite`](crate::Error::NonFinite)); strategy errors as [`SamplingStrategy::resolve`] with
/// [`SamplingKind::Over`] (a single class is [`Error::Degenerate`](crate::Error::Degenerate)).
///
/// # Examples
/// ```
/// use losskit_samplers::{RandomOverSampler, Sampler, class_counts};
/// let x = ndarray::array![[0.0, 1.0], [1.0, 1.0], [2.0, 0.0], [3.0, 5.0], [4.0, 4.0]];
/// let y = ndarray::array![0_i64, 0, 0, 1, 1];
/// let out = RandomOverSampler::new().shrinkage(0.5).fit_resample(x.view(), y.view(), 42)?;
/// assert_eq!(class_counts(out.y.view()).into_iter().collect::<Vec<_>>(), vec![(0, 3), (1, 3)]);
/// assert_eq!(&out.sample_indices.as_deref().unwrap_or_default()[..5], &[0, 1, 2, 3, 4]);
/// # Ok::<(), losskit_samplers::Error>(())
/// ```
///
/// # References
/// imbalanced-learn 0.14 `RandomOverSampler` (Lemaître, Nogueira, Aridas (2017), JMLR 18(17); docs/papers.md
/// `lemaitre2017imbalanced`); smoothed bootstrap: Menardi, Torelli (2014), *Training and assessing classification
/// rules with imbalanced data*, Data Mining and Knowledge Discovery 28(1).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RandomOverSampler {
    /// Which classes grow, and to how many samples. Default `Auto`.
    pub sampling_strategy: SamplingStrategy,
    /// Smoothed-bootstrap shrinkage `h ≥ 0`; `None` (default) for a plain bootstrap.
    pub shrinkage: Option<f64>,
}

impl RandomOverSampler {
    /// The default sampler: `sampling_strategy = auto`, no shrinkage (imbalanced-learn's defaults).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the sampling strategy (default `auto`).
    pub fn sampling_strategy(mut self, sampling_strategy: SamplingStrategy) -> Self {
        self.sampling_strategy = sampling_strategy;
        self
    }

    /// Sets the shrinkage (`0.5` or `Some(0.5)`; `None`, the default, for a plain bootstrap).
    pub fn shrinkage(mut self, shrinkage: impl Into<Option<f64>>) -> Self {
        self.shrinkage = shrinkage.into();
        self
    }

    /// Checks the parameters.
    ///
    /// # Errors
    /// [`Error::Parameter`](crate::Error::Parameter) named `shrinkage` when it is negative or not finite, or named
    /// `sampling_strategy` for a ratio outside (0, 1].
    pub fn check(&self) -> Result<()> {
        if let Some(h) = self.shrinkage {
            losskit_tensor::check::at_least("shrinkage", h, 0.0)?;
        }
        self.sampling_strategy.check()
    }

    /// The smoothing factor `κ = (4 / ((D + 2) · N))^(1 / (D + 4))` that scales the class standard deviations.
    pub fn smoothing_constant(n_samples: usize, n_features: usize) -> f64 {
        (4.0 / ((n_features + 2) as f64 * n_samples as f64)).powf(1.0 / (n_features + 4) as f64)
    }

    /// The over-sampling itself, with the draws given (real or the parity-test stub).
    pub(crate) fn resample_with(
        &self,
        x: ArrayView2<'_, f64>,
        y: ArrayView1<'_, i64>,
        draws: &mut dyn Draws,
    ) -> Result<Resampled> {
        self.check()?;
        check_xy(x, y)?;
        let members = class_members(y);
        let targets = self.sampling_strategy.resolve(&counts_of(&members), SamplingKind::Over)?;
        let x = x.as_standard_layout();
        let (n, d) = x.dim();
        // Per-class counts are caller input: refuse an output whose size does not fit in memory's address space
        // rather than panic on a capacity overflow.
        let total = targets.values().try_fold(n, |acc, &k| acc.checked_add(k));
        let Some((total, len)) =
            total.and_then(|t| Some((t, t.checked_mul(d)?))).filter(|&(_, len)| len <= isize::MAX as usize / 8)
        else {
            return Err(Error::Degenerate {
                what: format!(
                    "sampling_strategy: the resampled set ({targets:?} new rows of {d} features) is too large"
                ),
            });
        };

        let mut data = Vec::with_capacity(len);
        match x.as_slice() {
            Some(flat) => data.extend_from_slice(flat),
            None => data.extend(x.iter().copied()), // ok: unreachable after as_standard_layout, kept for safety
        }
        let mut labels: Vec<i64> = Vec::with_capacity(total);
        labels.extend(y.iter().copied());
        let mut indices: Vec<usize> = (0..n).collect();
        indices.reserve(total - n);

        let kappa = Self::smoothing_constant(n, d);
        for (&class, &k) in &targets {
            let Some(rows) = members.get(&class) else { continue }; // ok: resolve only returns present classes
            let chosen: Vec<usize> = draws.positions(rows.len(), k, true).into_iter().map(|p| rows[p]).collect();
            let start = data.len();
            push_rows(&mut data, x.view(), &chosen);
            if let Some(h) = self.shrinkage {
                // imbalanced-learn: diag(h · κ · std(X_c, axis=0)), noise = randn(k, D) · that diagonal.
                let scale: Vec<f64> = class_std(x.view(), rows).into_iter().map(|s| h * kappa * s).collect();
                for row in data[start..].chunks_exact_mut(d) {
                    for (v, s) in row.iter_mut().zip(&scale) {
                        *v += draws.normal() * s;
                    }
                }
            }
            labels.extend(std::iter::repeat_n(class, k));
            indices.extend_from_slice(&chosen);
        }
        Ok(Resampled { x: matrix(data, d)?, y: labels.into(), sample_indices: Some(indices) })
    }
}

/// Per-feature population standard deviation (ddof 0, two passes) of the rows `rows` of `x`.
fn class_std(x: ArrayView2<'_, f64>, rows: &[usize]) -> Vec<f64> {
    let d = x.ncols();
    let m = rows.len().max(1) as f64;
    let mut mean = vec![0.0; d];
    for &i in rows {
        for (acc, v) in mean.iter_mut().zip(x.row(i)) {
            *acc += v;
        }
    }
    mean.iter_mut().for_each(|v| *v /= m);
    let mut var = vec![0.0; d];
    for &i in rows {
        for ((acc, v), mu) in var.iter_mut().zip(x.row(i)).zip(&mean) {
            *acc += (v - mu) * (v - mu);
        }
    }
    var.into_iter().map(|v| (v / m).sqrt()).collect()
}

impl Sampler for RandomOverSampler {
    fn fit_resample(&self, x: ArrayView2<'_, f64>, y: ArrayView1<'_, i64>, seed: u64) -> Result<Resampled> {
        self.resample_with(x, y, &mut RngDraws::new(seed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::draw::Stub;
    use crate::testutil::{Case, load_cases};

    #[test]
    fn matches_imbalanced_learn_with_stub_draws() {
        let cases = load_cases("random_over.json");
        assert_eq!(cases.len(), 10);
        for Case { name, x, y, params, x_res, y_res, sample_indices } in cases {
            let strategy: SamplingStrategy = params["sampling_strategy"].as_str().unwrap().parse().unwrap();
            let shrinkage = params["shrinkage"].as_f64();
            let s = RandomOverSampler::new().sampling_strategy(strategy).shrinkage(shrinkage);
            let got = s.resample_with(x.view(), y.view(), &mut Stub::default()).unwrap();
            assert_eq!(got.sample_indices.as_deref(), Some(&sample_indices[..]), "{name}: sample_indices");
            assert_eq!(got.y, y_res, "{name}: y");
            assert_eq!(got.x.dim(), x_res.dim(), "{name}: x shape");
            for (a, b) in got.x.iter().zip(x_res.iter()) {
                assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()), "{name}: x {a} vs {b}");
            }
            if shrinkage.is_none_or(|h| h == 0.0) {
                assert_eq!(got.x, x_res, "{name}: plain bootstrap copies rows exactly");
            }
        }
    }

    #[test]
    fn smoothing_constant_by_hand() {
        // N = 100, D = 2: (4 / 400)^(1/6) = 0.01^(1/6)
        let k = RandomOverSampler::smoothing_constant(100, 2);
        assert!((k - 0.01_f64.powf(1.0 / 6.0)).abs() < 1e-15);
    }

    #[test]
    fn class_std_is_population_std() {
        let x = ndarray::array![[1.0, 5.0], [3.0, 5.0], [100.0, 0.0], [5.0, 5.0]];
        let s = class_std(x.view(), &[0, 1, 3]);
        assert!((s[0] - (8.0_f64 / 3.0).sqrt()).abs() < 1e-15 && s[1] == 0.0, "{s:?}");
    }

    #[test]
    fn absurd_counts_are_an_error_not_a_panic() {
        let x = ndarray::array![[0.0], [1.0], [2.0]];
        let y = ndarray::array![0_i64, 0, 1];
        let s = RandomOverSampler::new()
            .sampling_strategy(SamplingStrategy::PerClass([(1, usize::MAX)].into_iter().collect()));
        assert!(matches!(s.fit_resample(x.view(), y.view(), 0), Err(Error::Degenerate { .. })));
        let s = RandomOverSampler::new()
            .sampling_strategy(SamplingStrategy::PerClass([(1, usize::MAX / 4)].into_iter().collect()));
        assert!(matches!(s.fit_resample(x.view(), y.view(), 0), Err(Error::Degenerate { .. })));
    }

    #[test]
    fn bad_shrinkage_is_rejected() {
        for h in [-0.1, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                RandomOverSampler::new().shrinkage(h).check(),
                Err(Error::Parameter { name: "shrinkage", .. })
            ));
        }
        assert!(RandomOverSampler::new().shrinkage(0.0).check().is_ok());
    }
}
