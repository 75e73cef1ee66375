//! Random under-sampling, as imbalanced-learn's `RandomUnderSampler`.

use ndarray::{ArrayView1, ArrayView2};

use crate::draw::{Draws, RngDraws, check_xy, class_members, counts_of, matrix, push_rows};
use crate::{Error, Resampled, Result, Sampler, SamplingKind, SamplingStrategy};

/// Random under-sampling: shrinks the targeted classes to a random subset of their rows.
///
/// For every class `c` in ascending label order: if [`SamplingStrategy::resolve`] targets it with `n_c` samples to
/// keep, `n_c` of its rows are drawn (without replacement by default, so a uniformly random subset in random order;
/// with `replacement`, independently and uniformly); otherwise all its rows are kept in input order.
///
/// # Output
/// Rows grouped by class in ascending label order (imbalanced-learn's order); `sample_indices` gives the input row of
/// each output row. Only input rows are returned (no synthetic data).
///
/// # Parameters
/// * `sampling_strategy`: default [`SamplingStrategy::Auto`] (= `not minority`: reduce every class except the
///   smallest to the minority count).
/// * `replacement`: draw with replacement, default `false`.
///
/// # Randomness
/// One `Xoshiro256PlusPlus` stream seeded from `seed`, consumed class by class; the output depends only on the seed.
/// NumPy's stream is not reproduced: the rows kept differ from imbalanced-learn's for the same seed, while counts,
/// ordering and the untouched classes are identical.
///
/// # Errors
/// [`Error::Parameter`] for a ratio outside (0, 1]; input errors ([`Error::Empty`], [`Error::Shape`],
/// [`Error::NonFinite`]); strategy errors as [`SamplingStrategy::resolve`] with [`SamplingKind::Under`] (a single
/// class is [`Error::Degenerate`]).
///
/// # Examples
/// ```
/// use losskit_samplers::{RandomUnderSampler, Sampler, SamplingStrategy, class_counts};
/// let x = ndarray::array![[0.0], [1.0], [2.0], [3.0], [4.0], [5.0]];
/// let y = ndarray::array![1_i64, 0, 1, 1, 0, 1];
/// let out = RandomUnderSampler::new().fit_resample(x.view(), y.view(), 7)?;
/// assert_eq!(class_counts(out.y.view()).into_iter().collect::<Vec<_>>(), vec![(0, 2), (1, 2)]);
/// assert_eq!(&out.sample_indices.as_deref().unwrap_or_default()[..2], &[1, 4]); // the minority, untouched
/// let half = RandomUnderSampler::new().sampling_strategy(SamplingStrategy::Ratio(0.5));
/// assert_eq!(half.fit_resample(x.view(), y.view(), 7)?.y.len(), 2 + 4);
/// # Ok::<(), losskit_samplers::Error>(())
/// ```
///
/// # References
/// imbalanced-learn 0.14 `RandomUnderSampler` (Lemaître, Nogueira, Aridas (2017), JMLR 18(17); docs/papers.md
/// `lemaitre2017imbalanced`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RandomUnderSampler {
    /// Which classes shrink, and to how many samples. Default `Auto`.
    pub sampling_strategy: SamplingStrategy,
    /// Draw with replacement (default `false`).
    pub replacement: bool,
}

impl RandomUnderSampler {
    /// The default sampler: `sampling_strategy = auto`, `replacement = false` (imbalanced-learn's defaults).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the sampling strategy (default `auto`).
    pub fn sampling_strategy(mut self, sampling_strategy: SamplingStrategy) -> Self {
        self.sampling_strategy = sampling_strategy;
        self
    }

    /// Draws with replacement when `true` (default `false`).
    pub fn replacement(mut self, replacement: bool) -> Self {
        self.replacement = replacement;
        self
    }

    /// Checks the parameters.
    ///
    /// # Errors
    /// [`Error::Parameter`] named `sampling_strategy` for a ratio outside (0, 1].
    pub fn check(&self) -> Result<()> {
        self.sampling_strategy.check()
    }

    /// The under-sampling itself, with the draws given (real or the parity-test stub).
    pub(crate) fn resample_with(
        &self,
        x: ArrayView2<'_, f64>,
        y: ArrayView1<'_, i64>,
        draws: &mut dyn Draws,
    ) -> Result<Resampled> {
        self.check()?;
        check_xy(x, y)?;
        let members = class_members(y);
        let targets = self.sampling_strategy.resolve(&counts_of(&members), SamplingKind::Under)?;
        let x = x.as_standard_layout();
        let d = x.ncols();
        let mut indices: Vec<usize> = Vec::new();
        let mut labels: Vec<i64> = Vec::new();
        for (class, rows) in members {
            let start = indices.len();
            match targets.get(&class) {
                Some(&keep) => {
                    if keep > rows.len() {
                        // resolve() never asks an under-sampler for more than present; keep the guarantee explicit.
                        return Err(Error::Degenerate {
                            what: format!("class {class} has {} samples, cannot keep {keep}", rows.len()),
                        });
                    }
                    indices.extend(draws.positions(rows.len(), keep, self.replacement).into_iter().map(|p| rows[p]));
                }
                None => indices.extend_from_slice(&rows),
            }
            labels.extend(std::iter::repeat_n(class, indices.len() - start));
        }
        let mut data = Vec::with_capacity(indices.len() * d);
        push_rows(&mut data, x.view(), &indices);
        Ok(Resampled { x: matrix(data, d)?, y: labels.into(), sample_indices: Some(indices) })
    }
}

impl Sampler for RandomUnderSampler {
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
        let cases = load_cases("random_under.json");
        assert_eq!(cases.len(), 10);
        for Case { name, x, y, params, x_res, y_res, sample_indices } in cases {
            let strategy: SamplingStrategy = params["sampling_strategy"].as_str().unwrap().parse().unwrap();
            let replacement = params["replacement"].as_bool().unwrap();
            let s = RandomUnderSampler::new().sampling_strategy(strategy).replacement(replacement);
            let got = s.resample_with(x.view(), y.view(), &mut Stub::default()).unwrap();
            assert_eq!(got.sample_indices.as_deref(), Some(&sample_indices[..]), "{name}: sample_indices");
            assert_eq!(got.y, y_res, "{name}: y");
            assert_eq!(got.x, x_res, "{name}: x rows are exact copies");
        }
    }

    #[test]
    fn ratio_out_of_range_is_rejected_before_the_data() {
        let s = RandomUnderSampler::new().sampling_strategy(SamplingStrategy::Ratio(0.0));
        assert!(matches!(s.check(), Err(Error::Parameter { name: "sampling_strategy", .. })));
    }
}
