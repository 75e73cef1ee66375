//! KMeans-SMOTE (Douzas, Bacao, Last 2018), as imbalanced-learn's `KMeansSMOTE`.

use ndarray::{ArrayView1, ArrayView2};
use rayon::prelude::*;

use crate::draw::{Draws, RngDraws, check_xy, class_counts, class_members, counts_of};
use crate::smote::{Growing, check_neighbors, class_neighbors, numpy_sum};
use crate::{Error, KMeans, Resampled, Result, Sampler, SamplingKind, SamplingStrategy};

/// KMeans-SMOTE: cluster the whole data set with k-means, then run SMOTE inside the clusters where the class is
/// frequent enough, giving sparser clusters more new samples.
///
/// The rows are clustered once with [`KMeans`] (`n_clusters`, seeded from `seed`). For each class `c` targeted by
/// [`SamplingStrategy::resolve`] (ascending label order) with `n_c > 0` new samples, `T = Σ` of all targeted counts and
/// `k` = `k_neighbors`, in cluster order:
///
/// ```text
/// share(C)    = #{rows of class c in C} / |C|                 (empty clusters are skipped)
/// threshold   = cluster_balance_threshold, or n_c / T / 2 when none ("auto"); −∞ when n_clusters = 1
/// C is valid  ⇔ share(C) ≥ threshold and share(C)·|C| ≥ k + 1
/// sparsity(C) = mean_dist(C_c)^e / m,   m = #{rows of class c in C},  mean_dist = mean Euclidean distance over
///               the m² − m ordered pairs of distinct class-c rows of C,  e = density_exponent or
///               0.16 · (log_1.6 m)^1.8 when none ("auto")
/// w(C)        = sparsity(C) / Σ_valid sparsity
/// n(C)        = ⌈n_c · w(C)⌉ new samples made by SMOTE among the class-c rows of C (as [`crate::Smote`]: k
///               nearest same-cluster class-c neighbours, t ~ U{0..m·k−1}, u ~ U[0, 1))
/// ```
/// As in imbalanced-learn, the `⌈·⌉` can make a class a few samples larger than its target, and the density
/// exponent uses the number of rows `m` (imbalanced-learn's code; the paper's formula uses the number of features).
///
/// # Output
/// The input rows first, then the new rows class by class and cluster by cluster; no `sample_indices`.
///
/// # Differences from imbalanced-learn
/// imbalanced-learn clusters with `MiniBatchKMeans` (default 8 clusters) and NumPy's random stream; losskit uses its
/// full-batch [`KMeans`] (k-means++, Lloyd), so clusters can differ for the same data. Given the same clusters and
/// draws, everything else is identical (tested against imbalanced-learn with the clustering fixed and stub draws).
///
/// # Parameters
/// * `sampling_strategy`: default [`SamplingStrategy::Auto`].
/// * `k_neighbors`: `k ≥ 1`, default 2 (imbalanced-learn's).
/// * `n_clusters`: ≥ 1, default 8 (scikit-learn's `MiniBatchKMeans`); at most the number of rows.
/// * `cluster_balance_threshold`: `None` (auto, default) or a share in \[0, 1\].
/// * `density_exponent`: `None` (auto, default) or a finite exponent ≥ 0.
///
/// # Errors
/// [`Error::Parameter`] for `k_neighbors = 0`, `n_clusters = 0`, a threshold outside \[0, 1\] or a negative /
/// non-finite exponent; [`Error::Degenerate`] when no cluster qualifies for a class (imbalanced-learn: "No clusters
/// found with sufficient samples of class c") or `n_clusters` exceeds the rows; input and strategy errors as
/// [`crate::Smote`].
///
/// # Examples
/// ```
/// use losskit_samplers::{KMeansSmote, Sampler, class_counts};
/// let mut rows = Vec::new();
/// for i in 0..40 { rows.push([(i % 8) as f64 * 0.3, (i / 8) as f64 * 0.2]); }          // class 0
/// for i in 0..10 { rows.push([5.0 + (i % 5) as f64 * 0.1, 5.0 + (i / 5) as f64 * 0.1]); } // class 1
/// let x = ndarray::Array2::from_shape_fn((50, 2), |(i, j)| rows[i][j]);
/// let y: ndarray::Array1<i64> = (0..50).map(|i| i64::from(i >= 40)).collect();
/// let out = KMeansSmote::new().n_clusters(2).fit_resample(x.view(), y.view(), 0)?;
/// assert!(class_counts(out.y.view())[&1] >= 40);
/// assert!(out.x.rows().into_iter().skip(50).all(|r| r[0] >= 5.0 && r[0] <= 5.4));
/// # Ok::<(), losskit_samplers::Error>(())
/// ```
///
/// # References
/// Douzas, Bacao, Last (2018), *Improving imbalanced learning through a heuristic oversampling method based on
/// k-means and SMOTE*, Information Sciences 465, arXiv:1711.00837 (docs/papers.md `douzas2018improving`);
/// imbalanced-learn 0.14 `KMeansSMOTE`.
#[derive(Clone, Debug, PartialEq)]
pub struct KMeansSmote {
    /// Which classes grow, and to how many samples. Default `Auto`.
    pub sampling_strategy: SamplingStrategy,
    /// Nearest same-class neighbours within a cluster. Default 2.
    pub k_neighbors: usize,
    /// Number of k-means clusters. Default 8.
    pub n_clusters: usize,
    /// Minimum class share for a cluster to be over-sampled; `None` = auto. Default `None`.
    pub cluster_balance_threshold: Option<f64>,
    /// Exponent of the mean distance in the sparsity; `None` = auto. Default `None`.
    pub density_exponent: Option<f64>,
}

impl Default for KMeansSmote {
    fn default() -> Self {
        KMeansSmote {
            sampling_strategy: SamplingStrategy::Auto,
            k_neighbors: 2,
            n_clusters: 8,
            cluster_balance_threshold: None,
            density_exponent: None,
        }
    }
}

impl KMeansSmote {
    /// imbalanced-learn's defaults: `auto`, `k_neighbors = 2`, 8 clusters, automatic threshold and exponent.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the sampling strategy (default `auto`).
    pub fn sampling_strategy(mut self, sampling_strategy: SamplingStrategy) -> Self {
        self.sampling_strategy = sampling_strategy;
        self
    }

    /// Sets `k ≥ 1` (default 2).
    pub fn k_neighbors(mut self, k_neighbors: usize) -> Self {
        self.k_neighbors = k_neighbors;
        self
    }

    /// Sets the number of clusters (default 8).
    pub fn n_clusters(mut self, n_clusters: usize) -> Self {
        self.n_clusters = n_clusters;
        self
    }

    /// Sets the balance threshold (`None` = auto, the default).
    pub fn cluster_balance_threshold(mut self, threshold: impl Into<Option<f64>>) -> Self {
        self.cluster_balance_threshold = threshold.into();
        self
    }

    /// Sets the density exponent (`None` = auto, the default).
    pub fn density_exponent(mut self, exponent: impl Into<Option<f64>>) -> Self {
        self.density_exponent = exponent.into();
        self
    }

    /// Checks the parameters.
    ///
    /// # Errors
    /// As the type's docs ([`Error::Parameter`] naming the field).
    pub fn check(&self) -> Result<()> {
        check_neighbors("k_neighbors", self.k_neighbors)?;
        if self.n_clusters == 0 {
            return Err(Error::Parameter { name: "n_clusters", value: 0.0, reason: "must be ≥ 1" });
        }
        if let Some(t) = self.cluster_balance_threshold {
            losskit_tensor::check::closed("cluster_balance_threshold", t, 0.0, 1.0)?;
        }
        if let Some(e) = self.density_exponent {
            losskit_tensor::check::at_least("density_exponent", e, 0.0)?;
        }
        self.sampling_strategy.check()
    }

    /// The over-sampling given the cluster of every row (`labels[i] < n_clusters`) and the draws.
    pub(crate) fn resample_clustered(
        &self,
        x: ArrayView2<'_, f64>,
        y: ArrayView1<'_, i64>,
        labels: &[usize],
        draws: &mut dyn Draws,
    ) -> Result<Resampled> {
        let members = class_members(y);
        let targets = self.sampling_strategy.resolve(&counts_of(&members), SamplingKind::Over)?;
        let total: usize = targets.values().sum();
        let k = self.k_neighbors;
        let mut clusters: Vec<Vec<usize>> = vec![Vec::new(); self.n_clusters];
        for (i, &c) in labels.iter().enumerate() {
            if let Some(rows) = clusters.get_mut(c) {
                rows.push(i);
            }
        }
        // plan: per class, per valid cluster, the class rows and the number of new samples
        let mut plan: Vec<(i64, Vec<usize>, usize)> = Vec::new();
        for (&class, &n_new) in &targets {
            if n_new == 0 {
                continue;
            }
            let threshold = match (self.n_clusters, self.cluster_balance_threshold) {
                (1, _) => f64::NEG_INFINITY,
                (_, Some(t)) => t,
                (_, None) => n_new as f64 / total as f64 / 2.0,
            };
            let mut valid: Vec<Vec<usize>> = Vec::new();
            let mut sparsities = Vec::new();
            for rows in clusters.iter().filter(|r| !r.is_empty()) {
                let in_class: Vec<usize> = rows.iter().copied().filter(|&i| y[i] == class).collect();
                let share = in_class.len() as f64 / rows.len() as f64;
                if share < threshold || share * (rows.len() as f64) < (k + 1) as f64 {
                    continue;
                }
                sparsities.push(self.sparsity(x, &in_class));
                valid.push(in_class);
            }
            if valid.is_empty() {
                return Err(Error::Degenerate {
                    what: format!(
                        "kmeans-smote: no clusters found with sufficient samples of class {class}; lower \
                         cluster_balance_threshold or raise n_clusters"
                    ),
                });
            }
            let sum = numpy_sum(&sparsities);
            if !(sum > 0.0 && sum.is_finite()) {
                return Err(Error::Degenerate {
                    what: format!("kmeans-smote: every valid cluster of class {class} has zero (or infinite) sparsity"),
                });
            }
            for (rows, s) in valid.into_iter().zip(&sparsities) {
                let n_c = (n_new as f64 * (s / sum)).ceil() as usize;
                plan.push((class, rows, n_c));
            }
        }
        let extra = plan.iter().try_fold(0usize, |a, p| a.checked_add(p.2));
        let x = x.as_standard_layout();
        let mut out = Growing::new(x.view(), y, extra)?;
        for (class, rows, n_c) in plan {
            let nn = class_neighbors("kmeans-smote", "k_neighbors", x.view(), &rows, class, k)?;
            let t = draws.integers(rows.len() * k, n_c);
            let steps = draws.uniform(0.0, 1.0, n_c);
            out.push_pairs(class, |i| (rows[t[i] / k], rows[nn.indices[[t[i] / k, t[i] % k]]]), &steps, None);
        }
        out.finish()
    }

    /// `mean_dist^e / m` over the rows `rows` (m ≥ 2).
    pub(crate) fn sparsity(&self, x: ArrayView2<'_, f64>, rows: &[usize]) -> f64 {
        let m = rows.len();
        let sum: f64 = rows
            .par_iter()
            .enumerate()
            .map(|(a, &i)| {
                rows.iter()
                    .enumerate()
                    .filter(|&(b, _)| b != a)
                    .map(|(_, &j)| x.row(i).iter().zip(x.row(j)).map(|(p, q)| (p - q) * (p - q)).sum::<f64>().sqrt())
                    .sum::<f64>()
            })
            .sum();
        let mean = sum / (m * m - m) as f64;
        let e = self.density_exponent.unwrap_or_else(|| ((m as f64).ln() / 1.6f64.ln()).powf(1.8) * 0.16);
        mean.powf(e) / m as f64
    }
}

impl Sampler for KMeansSmote {
    fn fit_resample(&self, x: ArrayView2<'_, f64>, y: ArrayView1<'_, i64>, seed: u64) -> Result<Resampled> {
        self.check()?;
        check_xy(x, y)?;
        // resolve first, so a single class reports the strategy error before any clustering
        self.sampling_strategy.resolve(&class_counts(y), SamplingKind::Over)?;
        let clustering = KMeans::new().n_clusters(self.n_clusters).fit(x, seed)?;
        let mut draws = RngDraws::new(seed ^ 0x9E37_79B9_7F4A_7C15);
        self.resample_clustered(x, y, clustering.labels.as_slice().unwrap_or(&[]), &mut draws)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::draw::Stub;
    use crate::testutil::{fixture, floats, floats_matrix, ints};

    fn sampler(case: &serde_json::Value) -> KMeansSmote {
        let p = &case["params"];
        KMeansSmote::new()
            .sampling_strategy(p["sampling_strategy"].as_str().unwrap().parse().unwrap())
            .k_neighbors(p["k_neighbors"].as_u64().unwrap() as usize)
            .n_clusters(p["n_clusters"].as_u64().unwrap() as usize)
            .cluster_balance_threshold(p["cluster_balance_threshold"].as_f64())
            .density_exponent(p["density_exponent"].as_f64())
    }

    #[test]
    fn matches_imbalanced_learn_given_the_clusters() {
        let root = fixture("smote_nc.json");
        let cases = root["kmeans_smote"].as_array().unwrap();
        assert!(cases.len() >= 4);
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let x = floats_matrix(&case["x"]);
            let y = ndarray::Array1::from(ints(&case["y"]));
            let labels: Vec<usize> = ints(&case["clusters"]).into_iter().map(|v| v as usize).collect();
            let s = sampler(case);
            if let Some(err) = case["error"].as_str() {
                let got = s.resample_clustered(x.view(), y.view(), &labels, &mut Stub::default()).unwrap_err();
                assert!(matches!(&got, Error::Degenerate { what } if what.contains(err)), "{name}: {got}");
                continue;
            }
            let got = s.resample_clustered(x.view(), y.view(), &labels, &mut Stub::default()).unwrap();
            assert_eq!(got.y.to_vec(), ints(&case["y_res"]), "{name}: y");
            assert_eq!(got.x, floats_matrix(&case["x_res"]), "{name}: x");
            // the sparsities of the valid clusters of the first targeted class
            let sp = &case["sparsities"];
            let class = sp["class"].as_i64().unwrap();
            let want = floats(&sp["values"]);
            let got: Vec<f64> = sp["clusters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    let rows: Vec<usize> = (0..x.nrows())
                        .filter(|&i| labels[i] == c.as_u64().unwrap() as usize && y[i] == class)
                        .collect();
                    s.sparsity(x.view(), &rows)
                })
                .collect();
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-10 * w.abs(), "{name}: sparsity {g} vs {w}");
            }
        }
    }

    #[test]
    fn real_clustering_invariants() {
        let root = fixture("smote_nc.json");
        let case = &root["kmeans_smote"][0];
        let x = floats_matrix(&case["x"]);
        let y = ndarray::Array1::from(ints(&case["y"]));
        let s = sampler(case);
        let out = s.fit_resample(x.view(), y.view(), 9).unwrap();
        assert_eq!(out, s.fit_resample(x.view(), y.view(), 9).unwrap());
        let n = x.nrows();
        assert_eq!(out.x.slice(ndarray::s![..n, ..]), x);
        let before = class_members(y.view());
        let after = crate::class_counts(out.y.view());
        let target = before.values().map(Vec::len).max().unwrap();
        for (c, rows) in &before {
            // ⌈·⌉ per cluster: at least the target, at most one extra per cluster
            if rows.len() < target {
                assert!(after[c] >= target && after[c] <= target + s.n_clusters, "class {c}: {}", after[c]);
            }
        }
        // every new point lies on a segment between two rows of its class
        for (row, &label) in out.x.rows().into_iter().zip(out.y.iter()).skip(n) {
            let same = &before[&label];
            let ok = same.iter().any(|&a| {
                same.iter().any(|&b| {
                    let (p, q) = (x.row(a), x.row(b));
                    let t = (row[0] - p[0]) / (q[0] - p[0]);
                    (-1e-9..=1.0 + 1e-9).contains(&t)
                        && row
                            .iter()
                            .zip(p.iter().zip(q.iter()))
                            .all(|(&r, (&p, &q))| (p + t * (q - p) - r).abs() < 1e-9)
                })
            });
            assert!(ok, "new row off every same-class segment");
        }
    }

    #[test]
    fn bad_parameters() {
        assert!(matches!(KMeansSmote::new().k_neighbors(0).check(), Err(Error::Parameter { name: "k_neighbors", .. })));
        assert!(matches!(KMeansSmote::new().n_clusters(0).check(), Err(Error::Parameter { name: "n_clusters", .. })));
        assert!(matches!(
            KMeansSmote::new().cluster_balance_threshold(1.5).check(),
            Err(Error::Parameter { name: "cluster_balance_threshold", .. })
        ));
        assert!(matches!(
            KMeansSmote::new().density_exponent(-1.0).check(),
            Err(Error::Parameter { name: "density_exponent", .. })
        ));
        let x = ndarray::array![[0.0], [1.0], [2.0], [3.0], [5.0]];
        let y = ndarray::array![0_i64, 0, 0, 1, 1];
        // more clusters than rows
        assert!(matches!(KMeansSmote::new().fit_resample(x.view(), y.view(), 0), Err(Error::Degenerate { .. })));
    }
}
