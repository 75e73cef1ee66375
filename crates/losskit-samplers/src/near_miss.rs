//! NearMiss (Mani & Zhang 2003), versions 1 to 3, as imbalanced-learn's `NearMiss`.

use ndarray::{ArrayView1, ArrayView2};

use crate::draw::{check_xy, class_members, counts_of, gather};
use crate::knn::{KnnIndex, Queries};
use crate::smote::{check_neighbors, numpy_sum, too_few};
use crate::{Error, Resampled, Result, Sampler, SamplingKind, SamplingStrategy};

/// NearMiss: under-sampling that keeps the samples of the targeted classes by their distances to the minority class.
///
/// With `min` the minority class (the smallest count; on a tie the class that appears **first in `y`**, as
/// imbalanced-learn's `Counter`), `k` = `n_neighbors`, and `n_keep` the count [`SamplingStrategy::resolve`] gives
/// (under-sampling), each targeted class `c` (ascending label order) keeps:
///
/// ```text
/// version 1: the n_keep samples with the smallest  s_i = Σ of the distances to their k nearest min samples
/// version 2: the n_keep samples with the smallest  s_i = Σ of the distances to their k farthest min samples
/// version 3: S = ∪ over min samples of their k₃ nearest samples of c (k₃ = n_neighbors_ver3), in row order;
///            the n_keep samples of S with the largest s_i of version 1 (fewer if |S| < n_keep)
/// ```
/// Sorting is stable (ties keep row order) and the sums are NumPy's, so selections equal imbalanced-learn's. Distances
/// are Euclidean (see [`knn`](crate::knn)); a min sample is its own nearest min sample (distance 0) when `c = min`.
///
/// # Output
/// Rows grouped by class in ascending label order; a targeted class in selection order (by `s_i`), the others in
/// input order; with `sample_indices`.
///
/// # Parameters
/// * `sampling_strategy`: default [`SamplingStrategy::Auto`] (= `not minority`).
/// * `version`: 1 (default), 2 or 3.
/// * `n_neighbors`: `k ≥ 1`, default 3; the minority class needs at least `k` samples.
/// * `n_neighbors_ver3`: `k₃ ≥ 1`, default 3 (version 3 only); each targeted class needs at least `k₃` samples.
///
/// # Errors
/// [`Error::Parameter`] for a version outside 1..=3 or a neighbour count of 0; [`Error::Degenerate`] when the
/// minority class has fewer than `n_neighbors` samples (version 3: a targeted class fewer than `n_neighbors_ver3`);
/// input and strategy errors as [`RandomUnderSampler`](crate::RandomUnderSampler).
///
/// # Examples
/// ```
/// use losskit_samplers::{NearMiss, Sampler};
/// let x = ndarray::array![[0.0], [1.0], [2.0], [3.0], [10.0], [11.0]];
/// let y = ndarray::array![0_i64, 0, 0, 0, 1, 1];
/// let out = NearMiss::new().n_neighbors(2).fit_resample(x.view(), y.view(), 0)?;
/// // class 0 keeps its 2 rows closest to class 1, nearest first
/// assert_eq!(out.sample_indices, Some(vec![3, 2, 4, 5]));
/// # Ok::<(), losskit_samplers::Error>(())
/// ```
///
/// # References
/// Mani, Zhang (2003), *kNN Approach to Unbalanced Data Distributions: A Case Study Involving Information
/// Extraction*, ICML Workshop on Learning from Imbalanced Datasets (docs/papers.md `mani2003knn`); imbalanced-learn
/// 0.14 `NearMiss`.
#[derive(Clone, Debug, PartialEq)]
pub struct NearMiss {
    /// Which classes shrink, and to how many samples. Default `Auto`.
    pub sampling_strategy: SamplingStrategy,
    /// 1, 2 or 3. Default 1.
    pub version: u8,
    /// Neighbours among the minority class. Default 3.
    pub n_neighbors: usize,
    /// Neighbours of version 3's pre-selection. Default 3.
    pub n_neighbors_ver3: usize,
}

impl Default for NearMiss {
    fn default() -> Self {
        NearMiss { sampling_strategy: SamplingStrategy::Auto, version: 1, n_neighbors: 3, n_neighbors_ver3: 3 }
    }
}

impl NearMiss {
    /// The default sampler: `auto`, version 1, `n_neighbors = 3`, `n_neighbors_ver3 = 3` (imbalanced-learn's).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the sampling strategy (default `auto`).
    pub fn sampling_strategy(mut self, sampling_strategy: SamplingStrategy) -> Self {
        self.sampling_strategy = sampling_strategy;
        self
    }

    /// Sets the version, 1 to 3 (default 1).
    pub fn version(mut self, version: u8) -> Self {
        self.version = version;
        self
    }

    /// Sets `k ≥ 1` (default 3).
    pub fn n_neighbors(mut self, n_neighbors: usize) -> Self {
        self.n_neighbors = n_neighbors;
        self
    }

    /// Sets `k₃ ≥ 1` (default 3).
    pub fn n_neighbors_ver3(mut self, n_neighbors_ver3: usize) -> Self {
        self.n_neighbors_ver3 = n_neighbors_ver3;
        self
    }

    /// Checks the parameters.
    ///
    /// # Errors
    /// [`Error::Parameter`] named `version`, `n_neighbors`, `n_neighbors_ver3` or `sampling_strategy`.
    pub fn check(&self) -> Result<()> {
        if !(1..=3).contains(&self.version) {
            return Err(Error::Parameter {
                name: "version",
                value: f64::from(self.version),
                reason: "NearMiss has versions 1, 2 and 3",
            });
        }
        check_neighbors("n_neighbors", self.n_neighbors)?;
        check_neighbors("n_neighbors_ver3", self.n_neighbors_ver3)?;
        self.sampling_strategy.check()
    }

    fn select(&self, x: ArrayView2<'_, f64>, y: ArrayView1<'_, i64>) -> Result<Vec<usize>> {
        self.check()?;
        check_xy(x, y)?;
        let members = class_members(y);
        let counts = counts_of(&members);
        let targets = self.sampling_strategy.resolve(&counts, SamplingKind::Under)?;
        // imbalanced-learn: min(Counter(y), key=...) — the first class in order of appearance with the least samples.
        let n_min = counts.values().copied().min().unwrap_or(0);
        let Some(&minority) = y.iter().find(|c| counts.get(c) == Some(&n_min)) else {
            return Ok(Vec::new()); // ok: y is non-empty (checked), so a class with n_min samples exists
        };
        let min_rows = members.get(&minority).map_or(&[][..], Vec::as_slice);
        let k = self.n_neighbors;
        if min_rows.len() < k {
            let who = format!("the minority class {minority} has");
            return Err(too_few("near-miss", "n_neighbors", &who, min_rows.len(), k, k));
        }
        let x_min = gather(x, min_rows)?;
        let index_min = KnnIndex::new(x_min.view(), Some(x));
        let mut keep = Vec::new();
        for (class, rows) in &members {
            let Some(&n_keep) = targets.get(class) else {
                keep.extend_from_slice(rows);
                continue;
            };
            let xc = gather(x, rows)?;
            // Positions within the class, candidates for selection, and their scores.
            let (cands, scores): (Vec<usize>, Vec<f64>) = match self.version {
                1 | 2 => {
                    let kk = if self.version == 1 { k } else { min_rows.len() };
                    let nn = index_min.search(&Queries::External(xc.view()), kk)?;
                    let s = nn.distances.rows().into_iter().map(|r| numpy_sum(&r.to_vec()[kk - k..])).collect();
                    ((0..rows.len()).collect(), s)
                }
                _ => {
                    let k3 = self.n_neighbors_ver3;
                    if rows.len() < k3 {
                        let who = format!("class {class} has");
                        return Err(too_few("near-miss", "n_neighbors_ver3", &who, rows.len(), k3, k3));
                    }
                    let nn3 = KnnIndex::new(xc.view(), Some(x)).search(&Queries::External(x_min.view()), k3)?;
                    let mut sel: Vec<usize> = nn3.indices.iter().copied().collect();
                    sel.sort_unstable();
                    sel.dedup();
                    let xs = gather(xc.view(), &sel)?;
                    let nn = index_min.search(&Queries::External(xs.view()), k)?;
                    (sel, nn.distances.rows().into_iter().map(|r| numpy_sum(&r.to_vec())).collect())
                }
            };
            let mut order: Vec<usize> = (0..cands.len()).collect();
            if self.version == 3 {
                order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a])); // stable: ties keep row order
            } else {
                order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
            }
            keep.extend(order.into_iter().take(n_keep).map(|o| rows[cands[o]]));
        }
        Ok(keep)
    }
}

impl Sampler for NearMiss {
    fn fit_resample(&self, x: ArrayView2<'_, f64>, y: ArrayView1<'_, i64>, _seed: u64) -> Result<Resampled> {
        let x = x.as_standard_layout();
        let keep = self.select(x.view(), y)?;
        Ok(Resampled {
            x: gather(x.view(), &keep)?,
            y: keep.iter().map(|&i| y[i]).collect(),
            sample_indices: Some(keep),
        })
    }
}
