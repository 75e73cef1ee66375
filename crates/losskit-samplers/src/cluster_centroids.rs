//! Cluster centroids under-sampling (Yen & Lee 2009 style prototype generation), as imbalanced-learn's
//! `ClusterCentroids`.

use std::str::FromStr;

use ndarray::{ArrayView1, ArrayView2};

use crate::draw::{check_xy, class_members, counts_of, gather, matrix, push_rows};
use crate::knn::{KnnIndex, Queries};
use crate::{Error, KMeans, Resampled, Result, Sampler, SamplingKind, SamplingStrategy};

/// How the kept samples of a class are formed from its k-means centroids (imbalanced-learn's `voting`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Voting {
    /// `soft` for dense data, which losskit always has: imbalanced-learn's default.
    Auto,
    /// The centroids themselves (synthetic rows).
    Soft,
    /// The row of the class nearest to each centroid (ties: the lower row index).
    Hard,
}

impl FromStr for Voting {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "auto" => Ok(Voting::Auto),
            "soft" => Ok(Voting::Soft),
            "hard" => Ok(Voting::Hard),
            other => Err(Error::ParameterText {
                name: "voting".into(),
                value: other.into(),
                reason: "expected auto, soft or hard".into(),
            }),
        }
    }
}

/// ClusterCentroids: under-samples each targeted class to `n` rows by k-means with `n` clusters, keeping the
/// centroids (`soft`) or the rows nearest to them (`hard`).
///
/// For each class in ascending label order: a class that [`SamplingStrategy::resolve`] targets (with
/// [`SamplingKind::Under`]) with `n` samples to keep is clustered by [`KMeans`] with `n_clusters = n` (k-means++,
/// Lloyd, `max_iter = 300`, `tol = 1e−4`, seeded from `seed` and the class's position), and replaced by
///
/// ```text
/// soft:  the n centroids μ_1 … μ_n  (μ_j = mean of the rows of cluster j)
/// hard:  for each centroid, the nearest row of the class (Euclidean; ties by lower index)
/// ```
/// Classes not targeted keep all their rows, in input order.
///
/// # Output
/// Class by class in ascending label order (imbalanced-learn's order: **not** the input order). `sample_indices` is
/// `Some` with `hard` voting (every output row copies an input row; a row nearest to two centroids appears twice,
/// as in imbalanced-learn), `None` with `soft`.
///
/// # Differences from imbalanced-learn
/// k-means uses losskit's random stream, so on data with several k-means optima the centroids can differ from
/// scikit-learn's `KMeans(random_state=…)`; where the clustering is unambiguous they agree (tested on separated
/// blobs, compared as sets: the order of the centroids follows the random initialisation).
///
/// # Parameters
/// * `sampling_strategy`: default [`SamplingStrategy::Auto`] (= `not minority`).
/// * `voting`: default [`Voting::Auto`] (= `soft`).
///
/// # Errors
/// [`Error::Degenerate`] for a class whose target is 0 rows (k-means needs a cluster); strategy and input errors as
/// [`crate::RandomUnderSampler`].
///
/// # Examples
/// ```
/// use losskit_samplers::{ClusterCentroids, Sampler, class_counts};
/// let x = ndarray::array![[0.0, 0.0], [0.0, 0.2], [10.0, 0.0], [10.0, 0.2], [5.0, 5.0], [5.0, 6.0]];
/// let y = ndarray::array![0_i64, 0, 0, 0, 1, 1];
/// let out = ClusterCentroids::new().fit_resample(x.view(), y.view(), 0)?;
/// assert_eq!(class_counts(out.y.view())[&0], 2);
/// let mut firsts: Vec<f64> = (0..2).map(|i| out.x[[i, 0]]).collect();
/// firsts.sort_by(f64::total_cmp);
/// assert_eq!(firsts, vec![0.0, 10.0]); // the two blob centres (second coordinate 0.1)
/// # Ok::<(), losskit_samplers::Error>(())
/// ```
///
/// # References
/// Lemaître, Nogueira, Aridas (2017), *Imbalanced-learn*, JMLR 18(17), `ClusterCentroids` (docs/papers.md
/// `yen2009cluster`, `lemaitre2017imbalanced`); Yen, Lee (2009), *Cluster-based under-sampling approaches for imbalanced data
/// distributions*, Expert Systems with Applications 36(3).
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterCentroids {
    /// Which classes shrink, and to how many samples. Default `Auto`.
    pub sampling_strategy: SamplingStrategy,
    /// Centroids or nearest rows. Default `Auto` (= soft).
    pub voting: Voting,
}

impl Default for ClusterCentroids {
    fn default() -> Self {
        ClusterCentroids { sampling_strategy: SamplingStrategy::Auto, voting: Voting::Auto }
    }
}

impl ClusterCentroids {
    /// imbalanced-learn's defaults: `auto`, `voting = auto`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the sampling strategy (default `auto`).
    pub fn sampling_strategy(mut self, sampling_strategy: SamplingStrategy) -> Self {
        self.sampling_strategy = sampling_strategy;
        self
    }

    /// Sets the voting (default `auto`).
    pub fn voting(mut self, voting: Voting) -> Self {
        self.voting = voting;
        self
    }

    /// Checks the parameters.
    ///
    /// # Errors
    /// [`Error::Parameter`] named `sampling_strategy` for a ratio outside (0, 1].
    pub fn check(&self) -> Result<()> {
        self.sampling_strategy.check()
    }
}

impl Sampler for ClusterCentroids {
    fn fit_resample(&self, x: ArrayView2<'_, f64>, y: ArrayView1<'_, i64>, seed: u64) -> Result<Resampled> {
        self.check()?;
        check_xy(x, y)?;
        let members = class_members(y);
        let targets = self.sampling_strategy.resolve(&counts_of(&members), SamplingKind::Under)?;
        let hard = self.voting == Voting::Hard;
        let x = x.as_standard_layout();
        let d = x.ncols();
        let mut data = Vec::new();
        let mut labels = Vec::new();
        let mut indices = Vec::new();
        for (pos, (&class, rows)) in members.iter().enumerate() {
            let Some(&n) = targets.get(&class) else {
                push_rows(&mut data, x.view(), rows);
                labels.extend(std::iter::repeat_n(class, rows.len()));
                indices.extend_from_slice(rows);
                continue;
            };
            if n == 0 {
                return Err(Error::Degenerate {
                    what: format!("cluster-centroids: class {class} has a target of 0 samples; k-means needs n ≥ 1"),
                });
            }
            let xc = gather(x.view(), rows)?;
            let class_seed = seed.wrapping_add((pos as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let clustering = KMeans::new().n_clusters(n).fit(xc.view(), class_seed)?;
            if hard {
                let nn = KnnIndex::new(xc.view(), Some(clustering.centers.view()))
                    .search(&Queries::External(clustering.centers.view()), 1)?;
                let picked: Vec<usize> = nn.indices.column(0).iter().map(|&p| rows[p]).collect();
                push_rows(&mut data, x.view(), &picked);
                indices.extend_from_slice(&picked);
            } else {
                data.extend(clustering.centers.iter().copied());
            }
            labels.extend(std::iter::repeat_n(class, n));
        }
        Ok(Resampled { x: matrix(data, d)?, y: labels.into(), sample_indices: hard.then_some(indices) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{fixture, floats_matrix, ints};

    fn sorted_rows(x: &ndarray::Array2<f64>, y: &[i64], class: i64) -> Vec<Vec<f64>> {
        let mut r: Vec<Vec<f64>> =
            x.rows().into_iter().zip(y).filter(|(_, l)| **l == class).map(|(r, _)| r.to_vec()).collect();
        r.sort_by(|a, b| {
            a.iter().zip(b).map(|(p, q)| p.total_cmp(q)).find(|o| o.is_ne()).unwrap_or(std::cmp::Ordering::Equal)
        });
        r
    }

    #[test]
    fn matches_imbalanced_learn_on_separated_blobs() {
        let root = fixture("smote_nc.json");
        let cases = root["cluster_centroids"].as_array().unwrap();
        assert!(cases.len() >= 4);
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let x = floats_matrix(&case["x"]);
            let y = ndarray::Array1::from(ints(&case["y"]));
            let strategy: SamplingStrategy = case["params"]["sampling_strategy"].as_str().unwrap().parse().unwrap();
            let voting: Voting = case["params"]["voting"].as_str().unwrap().parse().unwrap();
            let s = ClusterCentroids::new().sampling_strategy(strategy).voting(voting);
            for seed in [0, 1, 2] {
                let got = s.fit_resample(x.view(), y.view(), seed).unwrap();
                let want_y = ints(&case["y_res"]);
                assert_eq!(got.y.to_vec(), want_y, "{name}: y");
                let want_x = floats_matrix(&case["x_res"]);
                for class in crate::class_counts(got.y.view()).keys() {
                    let (g, w) = (sorted_rows(&got.x, &want_y, *class), sorted_rows(&want_x, &want_y, *class));
                    for (a, b) in g.iter().zip(&w) {
                        for (p, q) in a.iter().zip(b) {
                            assert!((p - q).abs() <= 1e-9 * (1.0 + q.abs()), "{name} seed {seed}: {a:?} vs {b:?}");
                        }
                    }
                }
                match voting {
                    Voting::Hard => {
                        let idx = got.sample_indices.as_ref().unwrap();
                        for (r, &i) in got.x.rows().into_iter().zip(idx) {
                            assert_eq!(r, x.row(i));
                        }
                    }
                    _ => assert!(got.sample_indices.is_none()),
                }
            }
        }
    }

    #[test]
    fn hard_rows_are_the_rows_nearest_to_the_soft_centroids() {
        // same seed, same clustering: each hard row is the class row nearest to the matching soft centroid
        let mut rows = Vec::new();
        for i in 0..60 {
            let t = i as f64;
            rows.push([(t * 0.37).sin() * 3.0, (t * 0.91).cos() * 2.0]);
        }
        let x = ndarray::Array2::from_shape_fn((60, 2), |(i, j)| rows[i][j]);
        let y: ndarray::Array1<i64> = (0..60).map(|i| i64::from(i % 4 == 0)).collect();
        let soft = ClusterCentroids::new().fit_resample(x.view(), y.view(), 5).unwrap();
        let hard = ClusterCentroids::new().voting(Voting::Hard).fit_resample(x.view(), y.view(), 5).unwrap();
        assert_eq!(soft.y, hard.y);
        assert_eq!(crate::class_counts(soft.y.view()).into_iter().collect::<Vec<_>>(), vec![(0, 15), (1, 15)]);
        let zeros: Vec<usize> = (0..60).filter(|&i| y[i] == 0).collect();
        for (c, &pick) in soft.x.rows().into_iter().zip(hard.sample_indices.as_ref().unwrap()).take(15) {
            let d = |i: usize| x.row(i).iter().zip(c.iter()).map(|(p, q)| (p - q) * (p - q)).sum::<f64>();
            let best = zeros.iter().copied().min_by(|&a, &b| d(a).total_cmp(&d(b)).then(a.cmp(&b))).unwrap();
            assert_eq!(pick, best);
        }
        // the minority class is kept as is, in input order
        let ones: Vec<usize> = (0..60).filter(|&i| y[i] == 1).collect();
        assert_eq!(hard.sample_indices.unwrap()[15..], ones[..]);
        // deterministic for a seed
        assert_eq!(soft, ClusterCentroids::new().fit_resample(x.view(), y.view(), 5).unwrap());
    }

    #[test]
    fn bad_input() {
        assert!(matches!("median".parse::<Voting>(), Err(Error::ParameterText { .. })));
        let x = ndarray::array![[0.0], [1.0], [2.0], [3.0]];
        let y = ndarray::array![0_i64, 0, 1, 1];
        let zero = SamplingStrategy::PerClass([(0, 0)].into_iter().collect());
        assert!(ClusterCentroids::new().sampling_strategy(zero).fit_resample(x.view(), y.view(), 0).is_err());
        let single = ndarray::array![0_i64, 0, 0, 0];
        assert!(matches!(
            ClusterCentroids::new().fit_resample(x.view(), single.view(), 0),
            Err(Error::Degenerate { .. })
        ));
    }
}
