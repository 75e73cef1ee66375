//! Tomek links (Tomek 1976), as imbalanced-learn's `TomekLinks`.

use std::collections::BTreeSet;

use ndarray::{ArrayView1, ArrayView2};

use crate::draw::{check_xy, class_counts, gather};
use crate::knn::{KnnIndex, Queries};
use crate::{Resampled, Result, Sampler, SamplingKind, SamplingStrategy};

/// Tomek links: removes the samples of the targeted classes that form a *Tomek link*, a pair of samples of different
/// classes that are each other's nearest neighbour.
///
/// ```text
/// nn(i)      = the nearest other sample of i (exact Euclidean over all of x, see knn)
/// link(i)    ⇔ y[nn(i)] ≠ y[i]  and  nn(nn(i)) = i
/// removed(i) ⇔ link(i) and y[i] is a targeted class
/// ```
/// With the default strategy (`auto` = `not minority`), only the non-minority member of a link is removed; with
/// `all`, both members are.
///
/// # Output
/// The kept rows in input order (imbalanced-learn's order for this method), with `sample_indices`.
///
/// # Parameters
/// * `sampling_strategy`: the classes to clean, default [`SamplingStrategy::Auto`] (= `not minority`); takes the
///   words (`majority`, `not minority`, `not majority`, `all`) and a class list `[0,2]`, not counts or ratios.
///
/// # Errors
/// Input errors ([`Error::Empty`](crate::Error::Empty), [`Error::Shape`](crate::Error::Shape),
/// [`Error::NonFinite`](crate::Error::NonFinite)); strategy errors as [`SamplingStrategy::resolve`] with
/// [`SamplingKind::Clean`] (a single class is [`Error::Degenerate`](crate::Error::Degenerate)).
///
/// # Examples
/// ```
/// use losskit_samplers::{Sampler, TomekLinks};
/// let x = ndarray::array![[0.0], [0.3], [1.0], [1.1], [5.0], [5.2], [5.3]];
/// let y = ndarray::array![0_i64, 0, 0, 1, 1, 1, 0];
/// // Rows 2 (class 0) and 3 (class 1) are mutual nearest neighbours of different classes; so are 5 and 6.
/// let out = TomekLinks::new().fit_resample(x.view(), y.view(), 0)?;
/// // `auto` cleans the majority (class 0, 4 samples) only: rows 2 and 6 go.
/// assert_eq!(out.sample_indices, Some(vec![0, 1, 3, 4, 5]));
/// # Ok::<(), losskit_samplers::Error>(())
/// ```
///
/// # References
/// Tomek (1976), *Two Modifications of CNN*, IEEE Transactions on Systems, Man, and Cybernetics 6(11)
/// (docs/papers.md `tomek1976two`); imbalanced-learn 0.14 `TomekLinks`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TomekLinks {
    /// The classes to clean. Default `Auto` (= not minority).
    pub sampling_strategy: SamplingStrategy,
}

impl TomekLinks {
    /// The default cleaner: `sampling_strategy = auto` (imbalanced-learn's default).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the classes to clean (default `auto`).
    pub fn sampling_strategy(mut self, sampling_strategy: SamplingStrategy) -> Self {
        self.sampling_strategy = sampling_strategy;
        self
    }

    /// Checks the parameters.
    ///
    /// # Errors
    /// [`Error::Parameter`](crate::Error::Parameter) for a ratio outside (0, 1] (a ratio is refused later anyway).
    pub fn check(&self) -> Result<()> {
        self.sampling_strategy.check()
    }

    /// For every row, whether it is a member of a Tomek link that belongs to a targeted class (the rows this cleaner
    /// removes; imbalanced-learn's `is_tomek`).
    ///
    /// # Errors
    /// As [`Sampler::fit_resample`].
    pub fn links(&self, x: ArrayView2<'_, f64>, y: ArrayView1<'_, i64>) -> Result<Vec<bool>> {
        self.check()?;
        check_xy(x, y)?;
        let targets = self.sampling_strategy.resolve(&class_counts(y), SamplingKind::Clean)?;
        let targeted: BTreeSet<i64> = targets.keys().copied().collect();
        let x = x.as_standard_layout();
        let n = x.nrows();
        let all: Vec<usize> = (0..n).collect();
        let nn = KnnIndex::new(x.view(), None).search(&Queries::Rows { rows: &all, exclude_self: true }, 1)?;
        let nn = nn.indices.column(0).to_vec();
        Ok((0..n).map(|i| targeted.contains(&y[i]) && y[nn[i]] != y[i] && nn[nn[i]] == i).collect())
    }
}

impl Sampler for TomekLinks {
    fn fit_resample(&self, x: ArrayView2<'_, f64>, y: ArrayView1<'_, i64>, _seed: u64) -> Result<Resampled> {
        let links = self.links(x, y)?;
        let keep: Vec<usize> = links.iter().enumerate().filter(|(_, l)| !**l).map(|(i, _)| i).collect();
        let x = x.as_standard_layout();
        Ok(Resampled {
            x: gather(x.view(), &keep)?,
            y: keep.iter().map(|&i| y[i]).collect(),
            sample_indices: Some(keep),
        })
    }
}
