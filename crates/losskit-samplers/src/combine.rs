//! SMOTE followed by a cleaner (Batista et al. 2004): `SmoteTomek` and `SmoteEnn`, as imbalanced-learn's
//! `SMOTETomek` and `SMOTEENN`.

use ndarray::{ArrayView1, ArrayView2};

use crate::draw::{Draws, RngDraws};
use crate::{EditedNearestNeighbours, Resampled, Result, Sampler, SamplingStrategy, Smote, TomekLinks};

/// SMOTE, then Tomek links on the over-sampled set (synthetic rows included).
///
/// `x → Smote(sampling_strategy, k_neighbors) → TomekLinks(sampling_strategy = all)`: the cleaning step removes
/// both members of every Tomek link, whatever their class (imbalanced-learn's default
/// `TomekLinks(sampling_strategy='all')`).
///
/// # Output
/// The rows SMOTE returns (input rows, then synthetic rows class by class) that survive the cleaning, in that order.
/// No `sample_indices` (imbalanced-learn has none for the combinations).
///
/// # Parameters
/// * `smote`: the over-sampler, default [`Smote::new`] (`auto`, `k_neighbors = 5`);
///   [`SmoteTomek::sampling_strategy`] and [`SmoteTomek::k_neighbors`] set its fields.
/// * `tomek`: the cleaner, default `TomekLinks` with `sampling_strategy = all`.
///
/// # Randomness
/// As [`Smote`] (the cleaning is deterministic).
///
/// # Errors
/// Those of [`Smote`] and [`TomekLinks`].
///
/// # Examples
/// ```
/// use losskit_samplers::{Sampler, SmoteTomek};
/// let x = ndarray::array![[0.0], [0.5], [1.0], [1.5], [2.0], [2.2], [2.5], [9.0], [9.5], [10.0]];
/// let y = ndarray::array![0_i64, 0, 0, 0, 0, 1, 0, 1, 1, 1];
/// let out = SmoteTomek::new().k_neighbors(2).fit_resample(x.view(), y.view(), 1)?;
/// assert!(out.y.len() <= 12 && out.sample_indices.is_none());
/// # Ok::<(), losskit_samplers::Error>(())
/// ```
///
/// # References
/// Batista, Prati, Monard (2004), *A Study of the Behavior of Several Methods for Balancing Machine Learning
/// Training Data*, SIGKDD Explorations 6(1) (docs/papers.md `batista2004study`); imbalanced-learn 0.14 `SMOTETomek`.
#[derive(Clone, Debug, PartialEq)]
pub struct SmoteTomek {
    /// The over-sampling step. Default [`Smote::new`].
    pub smote: Smote,
    /// The cleaning step. Default `TomekLinks` with `sampling_strategy = all`.
    pub tomek: TomekLinks,
}

impl Default for SmoteTomek {
    fn default() -> Self {
        SmoteTomek { smote: Smote::new(), tomek: TomekLinks::new().sampling_strategy(SamplingStrategy::All) }
    }
}

impl SmoteTomek {
    /// The default combination (imbalanced-learn's).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets SMOTE's sampling strategy (default `auto`).
    pub fn sampling_strategy(mut self, sampling_strategy: SamplingStrategy) -> Self {
        self.smote.sampling_strategy = sampling_strategy;
        self
    }

    /// Sets SMOTE's `k_neighbors` (default 5).
    pub fn k_neighbors(mut self, k_neighbors: usize) -> Self {
        self.smote.k_neighbors = k_neighbors;
        self
    }

    /// Checks both steps.
    ///
    /// # Errors
    /// As [`Smote::check`] and [`TomekLinks::check`].
    pub fn check(&self) -> Result<()> {
        self.smote.check()?;
        self.tomek.check()
    }

    pub(crate) fn resample_with(
        &self,
        x: ArrayView2<'_, f64>,
        y: ArrayView1<'_, i64>,
        draws: &mut dyn Draws,
    ) -> Result<Resampled> {
        self.check()?;
        let over = self.smote.resample_with(x, y, draws)?;
        let mut out = self.tomek.fit_resample(over.x.view(), over.y.view(), 0)?;
        out.sample_indices = None;
        Ok(out)
    }
}

impl Sampler for SmoteTomek {
    fn fit_resample(&self, x: ArrayView2<'_, f64>, y: ArrayView1<'_, i64>, seed: u64) -> Result<Resampled> {
        self.resample_with(x, y, &mut RngDraws::new(seed))
    }
}

/// SMOTE, then edited nearest neighbours on the over-sampled set (synthetic rows included).
///
/// `x → Smote(sampling_strategy, k_neighbors) → EditedNearestNeighbours(sampling_strategy = all, n_neighbors = 3,
/// kind_sel = all)` (imbalanced-learn's defaults for `SMOTEENN`).
///
/// # Output
/// The rows SMOTE returns that ENN keeps, grouped by class in ascending label order (ENN's order). No
/// `sample_indices`.
///
/// # Parameters
/// * `smote`: the over-sampler, default [`Smote::new`].
/// * `enn`: the cleaner, default `EditedNearestNeighbours` with `sampling_strategy = all`.
///
/// # Randomness
/// As [`Smote`].
///
/// # Errors
/// Those of [`Smote`] and [`EditedNearestNeighbours`].
///
/// # Examples
/// ```
/// use losskit_samplers::{Sampler, SmoteEnn};
/// let x = ndarray::array![[0.0], [0.5], [1.0], [1.5], [2.0], [2.2], [2.5], [9.0], [9.5], [10.0]];
/// let y = ndarray::array![0_i64, 0, 0, 0, 0, 1, 0, 1, 1, 1];
/// let out = SmoteEnn::new().k_neighbors(2).fit_resample(x.view(), y.view(), 1)?;
/// assert!(out.y.len() < 12); // row 5 (class 1 among class 0) is edited out
/// # Ok::<(), losskit_samplers::Error>(())
/// ```
///
/// # References
/// Batista, Prati, Monard (2004), SIGKDD Explorations 6(1) (docs/papers.md `batista2004study`); imbalanced-learn 0.14
/// `SMOTEENN`.
#[derive(Clone, Debug, PartialEq)]
pub struct SmoteEnn {
    /// The over-sampling step. Default [`Smote::new`].
    pub smote: Smote,
    /// The cleaning step. Default `EditedNearestNeighbours` with `sampling_strategy = all`.
    pub enn: EditedNearestNeighbours,
}

impl Default for SmoteEnn {
    fn default() -> Self {
        SmoteEnn { smote: Smote::new(), enn: EditedNearestNeighbours::new().sampling_strategy(SamplingStrategy::All) }
    }
}

impl SmoteEnn {
    /// The default combination (imbalanced-learn's).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets SMOTE's sampling strategy (default `auto`).
    pub fn sampling_strategy(mut self, sampling_strategy: SamplingStrategy) -> Self {
        self.smote.sampling_strategy = sampling_strategy;
        self
    }

    /// Sets SMOTE's `k_neighbors` (default 5).
    pub fn k_neighbors(mut self, k_neighbors: usize) -> Self {
        self.smote.k_neighbors = k_neighbors;
        self
    }

    /// Checks both steps.
    ///
    /// # Errors
    /// As [`Smote::check`] and [`EditedNearestNeighbours::check`].
    pub fn check(&self) -> Result<()> {
        self.smote.check()?;
        self.enn.check()
    }

    pub(crate) fn resample_with(
        &self,
        x: ArrayView2<'_, f64>,
        y: ArrayView1<'_, i64>,
        draws: &mut dyn Draws,
    ) -> Result<Resampled> {
        self.check()?;
        let over = self.smote.resample_with(x, y, draws)?;
        let mut out = self.enn.fit_resample(over.x.view(), over.y.view(), 0)?;
        out.sample_indices = None;
        Ok(out)
    }
}

impl Sampler for SmoteEnn {
    fn fit_resample(&self, x: ArrayView2<'_, f64>, y: ArrayView1<'_, i64>, seed: u64) -> Result<Resampled> {
        self.resample_with(x, y, &mut RngDraws::new(seed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::draw::Stub;
    use crate::testutil::{fixture, floats_matrix, ints};

    #[test]
    fn match_imbalanced_learn_with_stub_draws() {
        let root = fixture("smote.json");
        for (section, want_cases) in [("smote_tomek", 3), ("smote_enn", 3)] {
            let cases = root[section].as_array().unwrap();
            assert_eq!(cases.len(), want_cases);
            for case in cases {
                let name = case["name"].as_str().unwrap();
                let x = floats_matrix(&case["x"]);
                let y = ndarray::Array1::from(ints(&case["y"]));
                let strategy: SamplingStrategy = case["params"]["sampling_strategy"].as_str().unwrap().parse().unwrap();
                let got = if section == "smote_tomek" {
                    SmoteTomek::new().sampling_strategy(strategy).resample_with(
                        x.view(),
                        y.view(),
                        &mut Stub::default(),
                    )
                } else {
                    SmoteEnn::new().sampling_strategy(strategy).resample_with(x.view(), y.view(), &mut Stub::default())
                }
                .unwrap();
                assert_eq!(got.y.to_vec(), ints(&case["y_res"]), "{section} {name}: y");
                assert_eq!(got.x, floats_matrix(&case["x_res"]), "{section} {name}: x");
            }
        }
    }
}
