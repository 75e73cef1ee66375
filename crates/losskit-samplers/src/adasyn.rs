//! ADASYN (He, Bai, Garcia, Li 2008), as imbalanced-learn's `ADASYN`.

use std::collections::BTreeMap;

use ndarray::{ArrayView1, ArrayView2};

use crate::draw::{Draws, RngDraws, check_xy, class_members, counts_of};
use crate::knn::{KnnIndex, Queries};
use crate::smote::{Growing, check_neighbors, class_neighbors, numpy_sum, too_few};
use crate::{Error, Resampled, Result, Sampler, SamplingKind, SamplingStrategy};

/// ADASYN: adaptive synthetic sampling, more new samples near the samples that are hard to learn.
///
/// For each targeted class `c` with `n_c > 0` samples to generate (ascending label order), with `k` = `n_neighbors`:
///
/// ```text
/// r_i   = #{ j ∈ N_all(i) : y[j] ≠ c } / k      N_all(i): the k nearest other samples of i over all of x
/// r̂_i   = r_i / Σ r                              (an error when Σ r = 0)
/// g_i   = rint(r̂_i · n_c)                        (round half to even, NumPy's rint; Σ g may differ from n_c)
/// ```
/// Sample `i` is then the base of `g_i` new points (bases in class order, each repeated `g_i` times): for each,
/// `col ~ U{0, …, k − 1}`, `u ~ U[0, 1)` (all `col` drawn first, then all `u`),
/// `x_new = x_i + u·(x_{N_c(i)[col]} − x_i)`
/// with `N_c(i)` the k nearest other samples of class `c`. Sums are NumPy's pairwise sums, so `g` is exactly
/// imbalanced-learn's.
///
/// # Output
/// The input rows, then the new rows class by class; `Σ g_i` rows per class (not always `n_c`); no
/// `sample_indices`.
///
/// # Parameters
/// * `sampling_strategy`: default [`SamplingStrategy::Auto`] (= `not majority`).
/// * `n_neighbors`: `k ≥ 1`, default 5.
///
/// # Randomness
/// As [`Smote`](crate::Smote).
///
/// # Errors
/// [`Error::Parameter`] for `n_neighbors = 0`; [`Error::Degenerate`] when there are at most `k` samples in all or in
/// a targeted class, when no neighbour of a targeted class belongs to another class (imbalanced-learn: "Not any
/// neigbours belong to the majority class"), or when the rounding leaves nothing to generate; input and strategy
/// errors as [`Smote`](crate::Smote).
///
/// # Examples
/// ```
/// use losskit_samplers::{Adasyn, Sampler};
/// let x = ndarray::array![[0.0], [0.2], [0.4], [0.6], [0.8], [1.0], [0.5], [0.9], [3.0], [3.3]];
/// let y = ndarray::array![0_i64, 0, 0, 0, 0, 0, 1, 1, 1, 1];
/// let a = Adasyn::new().n_neighbors(2);
/// // rows 6 and 7 sit among class 0 (r = 1 each), rows 8 and 9 do not (r = 0): all 2 new points come from 6 and 7
/// assert_eq!(a.generation_counts(x.view(), y.view())?.get(&1), Some(&vec![1, 1, 0, 0]));
/// assert_eq!(a.fit_resample(x.view(), y.view(), 0)?.y.len(), 12);
/// # Ok::<(), losskit_samplers::Error>(())
/// ```
///
/// # References
/// He, Bai, Garcia, Li (2008), *ADASYN: Adaptive Synthetic Sampling Approach for Imbalanced Learning*, IJCNN,
/// doi:10.1109/IJCNN.2008.4633969 (docs/papers.md `he2008adasyn`); imbalanced-learn 0.14 `ADASYN`.
#[derive(Clone, Debug, PartialEq)]
pub struct Adasyn {
    /// Which classes grow, and to how many samples. Default `Auto`.
    pub sampling_strategy: SamplingStrategy,
    /// Neighbourhood size. Default 5.
    pub n_neighbors: usize,
}

impl Default for Adasyn {
    fn default() -> Self {
        Adasyn { sampling_strategy: SamplingStrategy::Auto, n_neighbors: 5 }
    }
}

impl Adasyn {
    /// The default sampler: `auto`, `n_neighbors = 5` (imbalanced-learn's).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the sampling strategy (default `auto`).
    pub fn sampling_strategy(mut self, sampling_strategy: SamplingStrategy) -> Self {
        self.sampling_strategy = sampling_strategy;
        self
    }

    /// Sets `k ≥ 1` (default 5).
    pub fn n_neighbors(mut self, n_neighbors: usize) -> Self {
        self.n_neighbors = n_neighbors;
        self
    }

    /// Checks the parameters.
    ///
    /// # Errors
    /// [`Error::Parameter`] named `n_neighbors` when 0, or `sampling_strategy` for a bad ratio.
    pub fn check(&self) -> Result<()> {
        check_neighbors("n_neighbors", self.n_neighbors)?;
        self.sampling_strategy.check()
    }

    /// The per-sample counts `g_i` of each class with samples to generate, in the class's row order.
    ///
    /// # Errors
    /// As [`Sampler::fit_resample`] (except the class-size check of the second neighbour search).
    pub fn generation_counts(
        &self,
        x: ArrayView2<'_, f64>,
        y: ArrayView1<'_, i64>,
    ) -> Result<BTreeMap<i64, Vec<usize>>> {
        self.check()?;
        check_xy(x, y)?;
        let members = class_members(y);
        let targets = self.sampling_strategy.resolve(&counts_of(&members), SamplingKind::Over)?;
        let x = x.as_standard_layout();
        let index = KnnIndex::new(x.view(), None);
        let mut out = BTreeMap::new();
        for (&class, &n_new) in &targets {
            if n_new > 0 {
                let rows = members.get(&class).map_or(&[][..], Vec::as_slice);
                out.insert(class, self.counts(&index, y, class, rows, n_new)?);
            }
        }
        Ok(out)
    }

    fn counts(
        &self,
        index: &KnnIndex<'_>,
        y: ArrayView1<'_, i64>,
        class: i64,
        rows: &[usize],
        n_new: usize,
    ) -> Result<Vec<usize>> {
        let k = self.n_neighbors;
        if y.len() < k + 1 {
            return Err(too_few("adasyn", "n_neighbors", "the data have", y.len(), k, k + 1));
        }
        let nn = index.search(&Queries::Rows { rows, exclude_self: true }, k)?;
        let mut ratio: Vec<f64> = nn
            .indices
            .rows()
            .into_iter()
            .map(|r| r.iter().filter(|&&j| y[j] != class).count() as f64 / k as f64)
            .collect();
        let total = numpy_sum(&ratio);
        if total == 0.0 {
            return Err(Error::Degenerate {
                what: format!(
                    "adasyn: no neighbour of any class-{class} sample belongs to another class, so the \
                     generation weights are undefined (0 / 0); use smote for this data"
                ),
            });
        }
        ratio.iter_mut().for_each(|r| *r /= total);
        let g: Vec<usize> = ratio.iter().map(|r| (r * n_new as f64).round_ties_even() as usize).collect();
        if g.iter().sum::<usize>() == 0 {
            return Err(Error::Degenerate {
                what: format!(
                    "adasyn: no samples will be generated for class {class}: every weight times {n_new} rounds to 0"
                ),
            });
        }
        Ok(g)
    }

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
        let k = self.n_neighbors;
        let index = KnnIndex::new(x.view(), None);
        // Σ g_i can exceed n_c by rounding (at most by half the class size): reserve for the worst case.
        let reserve = targets
            .iter()
            .try_fold(0usize, |a, (c, &n)| a.checked_add(n)?.checked_add(members.get(c).map_or(0, Vec::len)));
        let mut out = Growing::new(x.view(), y, reserve)?;
        for (&class, &n_new) in &targets {
            if n_new == 0 {
                continue;
            }
            let rows = members.get(&class).map_or(&[][..], Vec::as_slice);
            let g = self.counts(&index, y, class, rows, n_new)?;
            let nn = class_neighbors("adasyn", "n_neighbors", x.view(), rows, class, k)?;
            let pos: Vec<usize> = g.iter().enumerate().flat_map(|(i, &gi)| std::iter::repeat_n(i, gi)).collect();
            let cols = draws.positions(k, pos.len(), true);
            let steps = draws.uniform(0.0, 1.0, pos.len());
            let base: Vec<usize> = pos.iter().map(|&p| rows[p]).collect();
            let nbr: Vec<usize> = pos.iter().zip(&cols).map(|(&p, &c)| rows[nn.indices[[p, c]]]).collect();
            out.push_synthetic(class, &base, &nbr, &steps, None);
        }
        out.finish()
    }
}

impl Sampler for Adasyn {
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
    fn matches_imbalanced_learn_with_stub_draws() {
        let root = fixture("smote.json");
        let cases = root["adasyn"].as_array().unwrap();
        assert_eq!(cases.len(), 5);
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let p = &case["params"];
            let x = floats_matrix(&case["x"]);
            let y = ndarray::Array1::from(ints(&case["y"]));
            let s = Adasyn::new()
                .sampling_strategy(p["sampling_strategy"].as_str().unwrap().parse().unwrap())
                .n_neighbors(p["n_neighbors"].as_u64().unwrap() as usize);
            let want: BTreeMap<i64, Vec<usize>> = case["counts"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(c, g)| (c.parse().unwrap(), ints(g).into_iter().map(|v| v as usize).collect()))
                .collect();
            assert_eq!(s.generation_counts(x.view(), y.view()).unwrap(), want, "{name}: g");
            let got = s.resample_with(x.view(), y.view(), &mut Stub::default()).unwrap();
            assert_eq!(got.y.to_vec(), ints(&case["y_res"]), "{name}: y");
            assert_eq!(got.x, floats_matrix(&case["x_res"]), "{name}: x");
        }
    }
}
