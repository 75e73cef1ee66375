//! Edited nearest neighbours (Wilson 1972), as imbalanced-learn's `EditedNearestNeighbours`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use ndarray::{ArrayView1, ArrayView2};

use crate::draw::{check_xy, class_members, counts_of, gather};
use crate::knn::{KnnIndex, Queries};
use crate::smote::{check_neighbors, too_few};
use crate::{Error, Resampled, Result, Sampler, SamplingKind, SamplingStrategy};

/// How ENN decides that a sample agrees with its neighbourhood (imbalanced-learn's `kind_sel`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KindSel {
    /// Keep a sample only if **all** its neighbours share its class (the default; removes more).
    #[default]
    All,
    /// Keep a sample if the most frequent class among its neighbours is its own (ties: the smallest label, as
    /// `scipy.stats.mode`).
    Mode,
}

impl FromStr for KindSel {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "all" => Ok(KindSel::All),
            "mode" => Ok(KindSel::Mode),
            other => Err(Error::ParameterText {
                name: "kind_sel".into(),
                value: other.into(),
                reason: "expected all or mode".into(),
            }),
        }
    }
}

impl fmt::Display for KindSel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KindSel::All => "all",
            KindSel::Mode => "mode",
        })
    }
}

/// Edited nearest neighbours: removes the samples of the targeted classes that disagree with their neighbourhood.
///
/// ```text
/// N(i)    = the k nearest other samples of i (exact Euclidean over all of x, see knn), k = n_neighbors
/// all:    keep i ⇔ every j ∈ N(i) has y[j] = y[i]
/// mode:   keep i ⇔ mode{ y[j] : j ∈ N(i) } = y[i]      (ties: the smallest label)
/// ```
/// Samples of classes the strategy does not target are all kept.
///
/// # Output
/// Rows grouped by class in ascending label order, each class in input order (imbalanced-learn's order), with
/// `sample_indices`.
///
/// # Parameters
/// * `sampling_strategy`: the classes to clean, default [`SamplingStrategy::Auto`] (= `not minority`).
/// * `n_neighbors`: `k ≥ 1`, default 3; needs at least `k + 1` samples in all.
/// * `kind_sel`: [`KindSel::All`] (default) or [`KindSel::Mode`].
///
/// # Errors
/// [`Error::Parameter`] for `n_neighbors = 0`; [`Error::Degenerate`] when there are at most `n_neighbors` samples
/// or a single class; input and strategy errors as [`TomekLinks`](crate::TomekLinks).
///
/// # Examples
/// ```
/// use losskit_samplers::{EditedNearestNeighbours, Sampler};
/// let x = ndarray::array![[0.0], [0.1], [0.2], [0.25], [0.3], [5.0], [5.1], [5.2]];
/// let y = ndarray::array![0_i64, 0, 0, 1, 0, 1, 1, 1];
/// let out = EditedNearestNeighbours::new().n_neighbors(2).fit_resample(x.view(), y.view(), 0)?;
/// // 4 samples each: the minority is the first label, 0, so `auto` (not minority) cleans class 1, whose row 3 sits
/// // among class 0
/// assert_eq!(out.sample_indices, Some(vec![0, 1, 2, 4, 5, 6, 7]));
/// # Ok::<(), losskit_samplers::Error>(())
/// ```
///
/// # References
/// Wilson (1972), *Asymptotic Properties of Nearest Neighbor Rules Using Edited Data*, IEEE Transactions on Systems,
/// Man, and Cybernetics 2(3) (docs/papers.md `wilson1972asymptotic`); imbalanced-learn 0.14
/// `EditedNearestNeighbours`.
#[derive(Clone, Debug, PartialEq)]
pub struct EditedNearestNeighbours {
    /// The classes to clean. Default `Auto` (= not minority).
    pub sampling_strategy: SamplingStrategy,
    /// Size of the neighbourhood. Default 3.
    pub n_neighbors: usize,
    /// The agreement rule. Default [`KindSel::All`].
    pub kind_sel: KindSel,
}

impl Default for EditedNearestNeighbours {
    fn default() -> Self {
        EditedNearestNeighbours { sampling_strategy: SamplingStrategy::Auto, n_neighbors: 3, kind_sel: KindSel::All }
    }
}

impl EditedNearestNeighbours {
    /// The default cleaner: `sampling_strategy = auto`, `n_neighbors = 3`, `kind_sel = all` (imbalanced-learn's).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the classes to clean (default `auto`).
    pub fn sampling_strategy(mut self, sampling_strategy: SamplingStrategy) -> Self {
        self.sampling_strategy = sampling_strategy;
        self
    }

    /// Sets the neighbourhood size `k ≥ 1` (default 3).
    pub fn n_neighbors(mut self, n_neighbors: usize) -> Self {
        self.n_neighbors = n_neighbors;
        self
    }

    /// Sets the agreement rule (default `all`).
    pub fn kind_sel(mut self, kind_sel: KindSel) -> Self {
        self.kind_sel = kind_sel;
        self
    }

    /// Checks the parameters.
    ///
    /// # Errors
    /// [`Error::Parameter`] named `n_neighbors` when it is 0, or named `sampling_strategy` for a bad ratio.
    pub fn check(&self) -> Result<()> {
        check_neighbors("n_neighbors", self.n_neighbors)?;
        self.sampling_strategy.check()
    }

    /// The kept input rows (imbalanced-learn's `sample_indices_`).
    fn keep(&self, x: ArrayView2<'_, f64>, y: ArrayView1<'_, i64>) -> Result<Vec<usize>> {
        self.check()?;
        check_xy(x, y)?;
        let members = class_members(y);
        let targets = self.sampling_strategy.resolve(&counts_of(&members), SamplingKind::Clean)?;
        let k = self.n_neighbors;
        let n = x.nrows();
        if n < k + 1 {
            return Err(too_few("edited-nearest-neighbours", "n_neighbors", "the data have", n, k, k + 1));
        }
        let index = KnnIndex::new(x, None);
        let mut keep = Vec::with_capacity(n);
        for (class, rows) in &members {
            if !targets.contains_key(class) {
                keep.extend_from_slice(rows);
                continue;
            }
            let nn = index.search(&Queries::Rows { rows, exclude_self: true }, k)?;
            for (&i, nbrs) in rows.iter().zip(nn.indices.rows()) {
                let agrees = match self.kind_sel {
                    KindSel::All => nbrs.iter().all(|&j| y[j] == *class),
                    KindSel::Mode => mode(nbrs.iter().map(|&j| y[j])) == Some(*class),
                };
                if agrees {
                    keep.push(i);
                }
            }
        }
        Ok(keep)
    }
}

/// The most frequent label, ties to the smallest (`scipy.stats.mode`).
pub(crate) fn mode(labels: impl Iterator<Item = i64>) -> Option<i64> {
    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
    for l in labels {
        *counts.entry(l).or_default() += 1;
    }
    // ascending labels: the first label with the largest count wins
    counts
        .into_iter()
        .fold(None, |best: Option<(i64, usize)>, (l, c)| match best {
            Some((_, bc)) if bc >= c => best,
            _ => Some((l, c)),
        })
        .map(|(l, _)| l)
}

impl Sampler for EditedNearestNeighbours {
    fn fit_resample(&self, x: ArrayView2<'_, f64>, y: ArrayView1<'_, i64>, _seed: u64) -> Result<Resampled> {
        let x = x.as_standard_layout();
        let keep = self.keep(x.view(), y)?;
        Ok(Resampled {
            x: gather(x.view(), &keep)?,
            y: keep.iter().map(|&i| y[i]).collect(),
            sample_indices: Some(keep),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_ties_go_to_the_smallest_label() {
        assert_eq!(mode([3, 1, 3, 1, 2].into_iter()), Some(1));
        assert_eq!(mode([5, 5, -2].into_iter()), Some(5));
        assert_eq!(mode(std::iter::empty()), None);
    }

    #[test]
    fn kind_sel_parses_and_rejects() {
        assert_eq!("mode".parse::<KindSel>().unwrap(), KindSel::Mode);
        assert_eq!(KindSel::All.to_string().parse::<KindSel>().unwrap(), KindSel::All);
        assert!(matches!("most".parse::<KindSel>(), Err(Error::ParameterText { .. })));
    }
}
