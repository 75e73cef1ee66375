//! Clustering of embeddings for sample likelihoods (DatasetEquity) and subclass labels (SBCL): k-means with
//! k-means++ initialisation, DBSCAN, cosine k-means, and the two recipes built on them.

use std::collections::BTreeMap;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use rayon::prelude::*;

use crate::{Error, Result};

fn check_x(arg: &'static str, x: ArrayView2<'_, f64>) -> Result<()> {
    losskit_tensor::check::non_empty(arg, x.nrows())?;
    if x.ncols() == 0 {
        return Err(Error::Shape { arg, expected: "[N, D] with D ≥ 1".into(), got: x.shape().to_vec() });
    }
    losskit_tensor::check::finite(arg, &x)
}

fn sq_dist(a: ArrayView1<'_, f64>, b: ArrayView1<'_, f64>) -> f64 {
    a.iter().zip(b.iter()).map(|(p, q)| (p - q) * (p - q)).sum()
}

/// The nearest centre of each row (ties: lower centre index) and its squared distance.
fn assign(x: ArrayView2<'_, f64>, centers: &Array2<f64>) -> (Vec<usize>, Vec<f64>) {
    (0..x.nrows())
        .into_par_iter()
        .map(|i| {
            let row = x.row(i);
            let mut best = (0, f64::INFINITY);
            for (c, center) in centers.axis_iter(Axis(0)).enumerate() {
                let d = sq_dist(row, center);
                if d < best.1 {
                    best = (c, d);
                }
            }
            best
        })
        .unzip()
}

/// The result of a k-means run.
#[derive(Clone, Debug, PartialEq)]
pub struct Clustering {
    /// Cluster of each row `[N]`, in `0..k`.
    pub labels: Array1<usize>,
    /// Centres `[k, D]`.
    pub centers: Array2<f64>,
    /// Sum of squared distances of the rows to their centres (scikit-learn's `inertia_`).
    pub inertia: f64,
    /// Lloyd iterations run.
    pub n_iter: usize,
}

/// k-means (Lloyd) with greedy k-means++ initialisation, as scikit-learn's `KMeans(init="k-means++", n_init=1,
/// algorithm="lloyd")`.
///
/// Initialisation: the first centre is a uniformly drawn row; each next one is the best (lowest resulting inertia)
/// of `2 + ⌊ln k⌋` candidates drawn with probability ∝ D(x)², the squared distance to the nearest chosen centre.
/// Iterations: assign every row to its nearest centre (ties to the lower index), move each centre to its rows' mean
/// (an empty cluster takes the row farthest from its centre), stop when the sum of squared centre moves is at most
/// `tol · mean_j var(X[:, j])` or after `max_iter`; labels are finally recomputed against the final centres.
///
/// NumPy's random stream is not reproduced, so the clustering may differ from scikit-learn's for the same seed on
/// data with several local optima; it is deterministic for a seed whatever the thread count.
///
/// # Parameters
/// * `n_clusters`: k ≥ 1, default 8 (scikit-learn's).
/// * `max_iter`: ≥ 1, default 300. `tol` ≥ 0, default 1e-4.
///
/// # Errors
/// [`Error::Parameter`] for `n_clusters = 0`, `max_iter = 0`, a negative or non-finite `tol`; [`Error::Degenerate`]
/// when k exceeds the number of rows; [`Error::Empty`] / [`Error::Shape`] / [`Error::NonFinite`] for bad data.
///
/// # Examples
/// ```
/// use losskit_samplers::KMeans;
/// let x = ndarray::array![[0.0, 0.0], [0.1, 0.0], [10.0, 10.0], [10.1, 10.0]];
/// let c = KMeans::new().n_clusters(2).fit(x.view(), 0)?;
/// assert_eq!(c.labels[0], c.labels[1]);
/// assert_ne!(c.labels[0], c.labels[2]);
/// assert!((c.inertia - 0.01).abs() < 1e-12);
/// # Ok::<(), losskit_samplers::Error>(())
/// ```
///
/// # References
/// Arthur, Vassilvitskii (2007), *k-means++: The Advantages of Careful Seeding*, SODA; scikit-learn `KMeans`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KMeans {
    /// Number of clusters k. Default 8.
    pub n_clusters: usize,
    /// Maximum Lloyd iterations. Default 300.
    pub max_iter: usize,
    /// Relative tolerance on the centre moves. Default 1e-4.
    pub tol: f64,
}

impl Default for KMeans {
    fn default() -> Self {
        KMeans { n_clusters: 8, max_iter: 300, tol: 1e-4 }
    }
}

impl KMeans {
    /// scikit-learn's defaults: k = 8, 300 iterations, tol 1e-4.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets k (default 8).
    pub fn n_clusters(mut self, n_clusters: usize) -> Self {
        self.n_clusters = n_clusters;
        self
    }

    /// Sets the iteration limit (default 300).
    pub fn max_iter(mut self, max_iter: usize) -> Self {
        self.max_iter = max_iter;
        self
    }

    /// Sets the tolerance (default 1e-4).
    pub fn tol(mut self, tol: f64) -> Self {
        self.tol = tol;
        self
    }

    /// Checks the parameters.
    ///
    /// # Errors
    /// [`Error::Parameter`] for k = 0, `max_iter` = 0, or `tol` < 0 / non-finite.
    pub fn check(&self) -> Result<()> {
        if self.n_clusters == 0 {
            return Err(Error::Parameter { name: "n_clusters", value: 0.0, reason: "must be ≥ 1" });
        }
        if self.max_iter == 0 {
            return Err(Error::Parameter { name: "max_iter", value: 0.0, reason: "must be ≥ 1" });
        }
        losskit_tensor::check::at_least("tol", self.tol, 0.0)
    }

    /// Clusters the rows of `x` `[N, D]`.
    ///
    /// # Errors
    /// As the type's docs.
    pub fn fit(&self, x: ArrayView2<'_, f64>, seed: u64) -> Result<Clustering> {
        losskit_tensor::pool::on_worker(|| {
            self.check()?;
            check_x("x", x)?;
            let (n, d) = x.dim();
            let k = self.n_clusters;
            if k > n {
                return Err(Error::Degenerate { what: format!("n_clusters = {k} exceeds the number of rows {n}") });
            }
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
            let mut centers = kmeans_plus_plus(x, k, &mut rng);
            let mean_var = x.var_axis(Axis(0), 0.0).mean().unwrap_or(0.0); // ok: D ≥ 1
            let tol = self.tol * mean_var;
            let mut n_iter = 0;
            for _ in 0..self.max_iter {
                n_iter += 1;
                let (labels, dists) = assign(x, &centers);
                let mut sums = Array2::<f64>::zeros((k, d));
                let mut counts = vec![0usize; k];
                for (i, &c) in labels.iter().enumerate() {
                    sums.row_mut(c).scaled_add(1.0, &x.row(i));
                    counts[c] += 1;
                }
                // Empty clusters take the rows farthest from their centres (scikit-learn's relocation), farthest first.
                let mut far: Vec<usize> = (0..n).collect();
                far.sort_by(|&a, &b| dists[b].total_cmp(&dists[a]).then(a.cmp(&b)));
                let mut far = far.into_iter();
                let mut new = Array2::<f64>::zeros((k, d));
                for c in 0..k {
                    if counts[c] > 0 {
                        new.row_mut(c).assign(&(&sums.row(c) / counts[c] as f64));
                    } else if let Some(i) = far.next() {
                        new.row_mut(c).assign(&x.row(i));
                    }
                }
                let shift: f64 = (&new - &centers).mapv(|v| v * v).sum();
                centers = new;
                if shift <= tol {
                    break;
                }
            }
            let (labels, dists) = assign(x, &centers);
            Ok(Clustering { labels: Array1::from(labels), centers, inertia: dists.iter().sum(), n_iter })
        })
    }
}

/// Greedy k-means++ (scikit-learn's `_kmeans_plusplus` with `n_local_trials = 2 + ⌊ln k⌋`).
fn kmeans_plus_plus(x: ArrayView2<'_, f64>, k: usize, rng: &mut Xoshiro256PlusPlus) -> Array2<f64> {
    let n = x.nrows();
    let trials = 2 + (k as f64).ln().floor() as usize;
    let mut centers = Array2::<f64>::zeros((k, x.ncols()));
    let first = rng.random_range(0..n);
    centers.row_mut(0).assign(&x.row(first));
    let mut closest: Vec<f64> = (0..n).into_par_iter().map(|i| sq_dist(x.row(i), x.row(first))).collect();
    for c in 1..k {
        let total: f64 = closest.iter().sum();
        let candidates: Vec<usize> = (0..trials)
            .map(|_| {
                if total <= 0.0 {
                    return rng.random_range(0..n); // every row sits on a centre: any row will do
                }
                let target = rng.random_range(0.0..1.0) * total;
                let mut acc = 0.0;
                for (i, &v) in closest.iter().enumerate() {
                    acc += v;
                    if acc > target {
                        return i;
                    }
                }
                n - 1
            })
            .collect();
        // The candidate leaving the smallest potential wins (ties: the first drawn).
        let mut best: Option<(f64, usize, Vec<f64>)> = None;
        for &cand in &candidates {
            let updated: Vec<f64> =
                (0..n).into_par_iter().map(|i| closest[i].min(sq_dist(x.row(i), x.row(cand)))).collect();
            let pot: f64 = updated.iter().sum();
            if best.as_ref().is_none_or(|b| pot < b.0) {
                best = Some((pot, cand, updated));
            }
        }
        if let Some((_, cand, updated)) = best {
            centers.row_mut(c).assign(&x.row(cand));
            closest = updated;
        }
    }
    centers
}

/// DBSCAN, as scikit-learn's `DBSCAN(eps, min_samples, metric="euclidean")`: labels exactly equal to scikit-learn's.
///
/// A row is a core row when at least `min_samples` rows (itself included) lie within distance ≤ `eps`. Clusters are
/// numbered in the order of their lowest-index core row; each grows through the neighbourhoods of its core rows, and
/// a border row joins the first cluster that reaches it. Rows reached by no cluster are noise, label −1.
/// Neighbourhoods are found by an exact parallel scan (O(N²) distance evaluations, memory O(total neighbours)).
///
/// # Parameters
/// * `eps` > 0, default 0.5; `min_samples` ≥ 1, default 5 (scikit-learn's). DatasetEquity uses eps = 1,
///   min_samples = 10 on 3-d t-SNE embeddings.
///
/// # Errors
/// [`Error::Parameter`] for `eps` ≤ 0 or `min_samples` = 0; [`Error::Empty`] / [`Error::Shape`] /
/// [`Error::NonFinite`] for bad data.
///
/// # Examples
/// ```
/// use losskit_samplers::Dbscan;
/// let x = ndarray::array![[0.0], [0.5], [1.0], [10.0], [10.4], [30.0]];
/// let labels = Dbscan::new().eps(0.6).min_samples(2).fit(x.view())?;
/// assert_eq!(labels.to_vec(), vec![0, 0, 0, 1, 1, -1]);
/// # Ok::<(), losskit_samplers::Error>(())
/// ```
///
/// # References
/// Ester, Kriegel, Sander, Xu (1996), *A Density-Based Algorithm for Discovering Clusters in Large Spatial
/// Databases with Noise*, KDD; scikit-learn `DBSCAN`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dbscan {
    /// Neighbourhood radius. Default 0.5.
    pub eps: f64,
    /// Rows (self included) a core row needs within `eps`. Default 5.
    pub min_samples: usize,
}

impl Default for Dbscan {
    fn default() -> Self {
        Dbscan { eps: 0.5, min_samples: 5 }
    }
}

impl Dbscan {
    /// scikit-learn's defaults: eps 0.5, min_samples 5.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets eps (default 0.5).
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// Sets min_samples (default 5).
    pub fn min_samples(mut self, min_samples: usize) -> Self {
        self.min_samples = min_samples;
        self
    }

    /// Checks the parameters.
    ///
    /// # Errors
    /// [`Error::Parameter`] for eps ≤ 0 or min_samples = 0.
    pub fn check(&self) -> Result<()> {
        losskit_tensor::check::greater_than("eps", self.eps, 0.0)?;
        if self.min_samples == 0 {
            return Err(Error::Parameter { name: "min_samples", value: 0.0, reason: "must be ≥ 1" });
        }
        Ok(())
    }

    /// Cluster labels `[N]` (`0..`, noise −1).
    ///
    /// # Errors
    /// As the type's docs.
    pub fn fit(&self, x: ArrayView2<'_, f64>) -> Result<Array1<i64>> {
        losskit_tensor::pool::on_worker(|| {
            self.check()?;
            check_x("x", x)?;
            let n = x.nrows();
            let eps2 = self.eps * self.eps;
            let neighborhoods: Vec<Vec<usize>> = (0..n)
                .into_par_iter()
                .map(|i| (0..n).filter(|&j| sq_dist(x.row(i), x.row(j)) <= eps2).collect())
                .collect();
            let core: Vec<bool> = neighborhoods.iter().map(|nb| nb.len() >= self.min_samples).collect();
            let mut labels = vec![-1_i64; n];
            let mut next = 0_i64;
            let mut stack = vec![];
            // scikit-learn's dbscan_inner: depth-first from each unlabelled core row, in index order.
            for start in 0..n {
                if labels[start] != -1 || !core[start] {
                    continue;
                }
                stack.push(start);
                while let Some(i) = stack.pop() {
                    if labels[i] != -1 {
                        continue;
                    }
                    labels[i] = next;
                    if core[i] {
                        stack.extend(neighborhoods[i].iter().copied().filter(|&v| labels[v] == -1));
                    }
                }
                next += 1;
            }
            Ok(Array1::from(labels))
        })
    }
}

/// DatasetEquity's scaled likelihoods: `pᵢ = n_{c(i)} / n_max`, the size of row i's cluster over the largest
/// cluster's size, in (0, 1] (the largest cluster has p = 1).
///
/// Every label counts as a cluster, DBSCAN's noise label −1 included: the DatasetEquity notebook treats noise as one
/// more cluster, and this follows it.
///
/// # Errors
/// [`Error::Empty`] for no labels.
///
/// # Examples
/// ```
/// let p = losskit_samplers::cluster_likelihoods(ndarray::array![0_i64, 0, 0, 0, 1, 1, -1].view())?;
/// assert_eq!(p.to_vec(), vec![1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.25]);
/// # Ok::<(), losskit_samplers::Error>(())
/// ```
///
/// # References
/// Shrivastava, Rasouli, Shah, Simchowitz, Lan, Sasaki, ... (2023), *DatasetEquity: Are All Samples Created Equal?
/// In The Quest For Equity Within Datasets*, ICCV Workshops, arXiv:2308.09878 (spec `classification-losses.md` §7.1).
pub fn cluster_likelihoods(labels: ArrayView1<'_, i64>) -> Result<Array1<f64>> {
    losskit_tensor::check::non_empty("labels", labels.len())?;
    let mut sizes: BTreeMap<i64, usize> = BTreeMap::new();
    for &c in labels {
        *sizes.entry(c).or_default() += 1;
    }
    let max = sizes.values().copied().max().unwrap_or(1) as f64; // ok: non-empty
    Ok(labels.mapv(|c| sizes.get(&c).map_or(0.0, |&s| s as f64 / max)))
}

/// Cosine k-means as `kmeans_pytorch.kmeans(distance="cosine")`, used by SBCL: k distinct rows drawn uniformly as
/// initial centres; each row goes to the centre of largest cosine similarity (ties: lower index); each centre moves
/// to the plain (unnormalised) mean of its rows, an empty cluster to a uniformly drawn row; stop when
/// `(Σ_c ‖Δcentre_c‖)² < tol` or after `max_iter` iterations. Returns the labels of the last assignment.
fn cosine_kmeans(
    x: ArrayView2<'_, f64>,
    k: usize,
    tol: f64,
    max_iter: usize,
    rng: &mut Xoshiro256PlusPlus,
) -> Vec<usize> {
    let n = x.nrows();
    let unit = |v: ArrayView1<'_, f64>| -> Array1<f64> {
        let norm = v.dot(&v).sqrt();
        if norm > 0.0 { &v / norm } else { v.to_owned() }
    };
    let xn = Array2::from_shape_fn(x.dim(), |(i, j)| {
        let norm = x.row(i).dot(&x.row(i)).sqrt();
        if norm > 0.0 { x[[i, j]] / norm } else { 0.0 }
    });
    // Partial Fisher–Yates: k distinct rows.
    let mut pos: Vec<usize> = (0..n).collect();
    for i in 0..k {
        let j = rng.random_range(i..n);
        pos.swap(i, j);
    }
    let mut centers = Array2::from_shape_fn((k, x.ncols()), |(c, j)| x[[pos[c], j]]);
    let mut labels = vec![0; n];
    for _ in 0..max_iter {
        let cn: Vec<Array1<f64>> = centers.axis_iter(Axis(0)).map(unit).collect();
        labels = (0..n)
            .into_par_iter()
            .map(|i| {
                let mut best = (0, f64::NEG_INFINITY);
                for (c, center) in cn.iter().enumerate() {
                    let s = xn.row(i).dot(center);
                    if s > best.1 {
                        best = (c, s);
                    }
                }
                best.0
            })
            .collect();
        let old = centers.clone();
        for c in 0..k {
            let rows: Vec<usize> = (0..n).filter(|&i| labels[i] == c).collect();
            if rows.is_empty() {
                let r = rng.random_range(0..n);
                centers.row_mut(c).assign(&x.row(r));
            } else {
                let mut mean = Array1::<f64>::zeros(x.ncols());
                for &i in &rows {
                    mean += &x.row(i);
                }
                centers.row_mut(c).assign(&(mean / rows.len() as f64));
            }
        }
        let shift: f64 = (&centers - &old).axis_iter(Axis(0)).map(|r| r.dot(&r).sqrt()).sum();
        if shift * shift < tol {
            break;
        }
    }
    labels
}

/// SBCL subclass labels: every class is split into `K_c` subclasses by cosine k-means.
#[derive(Clone, Debug, PartialEq)]
pub struct Subclasses {
    /// Global subclass id of each row `[N]`: local id + Σ of `K` over the classes with smaller labels.
    pub ids: Array1<usize>,
    /// `(class, K_c)` in ascending label order.
    pub per_class: Vec<(i64, usize)>,
}

/// Subclass assignment of SBCL (Hou et al. 2023): `K_c = ⌊n_c / max(n_min, M)⌋` (at least 1) subclasses for class
/// c, found by cosine k-means on that class's features; classes with `K_c = 1` are subclass 0 of themselves.
///
/// The cosine k-means follows `kmeans_pytorch` (the reference's `kmeans(distance="cosine", tol=1e-3)`): random
/// distinct rows as initial centres, unnormalised mean updates, `(Σ‖Δcentre‖)² < tol` to stop (plus a limit of
/// `max_iter = 300` iterations, which kmeans_pytorch lacks). One seeded stream is consumed class by class in
/// ascending label order. A subclass id can go unused when k-means leaves a cluster empty (as in the reference).
///
/// # Parameters
/// * `m`: M ≥ 1, the smallest subclass size aimed at (10 in SBCL's CIFAR script, 20 on ImageNet-LT).
/// * `tol`: ≥ 0, 1e-3 in the reference.
///
/// # Shapes
/// `features` `[N, D]`, `labels` `[N]`.
///
/// # Errors
/// [`Error::Parameter`] for `m = 0` or `tol` < 0; [`Error::Shape`] for mismatched lengths or D = 0;
/// [`Error::Empty`] / [`Error::NonFinite`] for bad data.
///
/// # Examples
/// ```
/// let f = ndarray::array![[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [-1.0, 0.0]];
/// let y = ndarray::array![0_i64, 0, 0, 0, 1];
/// let s = losskit_samplers::sbcl_subclasses(f.view(), y.view(), 2, 1e-3, 0)?;
/// assert_eq!(s.per_class, vec![(0, 2), (1, 1)]); // K_0 = ⌊4 / max(1, 2)⌋ = 2
/// assert!(s.ids[0] == s.ids[1] && s.ids[2] == s.ids[3] && s.ids[0] != s.ids[2] && s.ids[4] == 2);
/// # Ok::<(), losskit_samplers::Error>(())
/// ```
///
/// # References
/// Hou, Zhang, Zhou, Xu, Du (2023), *Subclass-balancing Contrastive Learning for Long-tailed Recognition*, ICCV,
/// arXiv:2306.15925 (code `JackHck/SBCL`; spec `metric-learning-samplers-metrics.md` §6.2).
pub fn sbcl_subclasses(
    features: ArrayView2<'_, f64>,
    labels: ArrayView1<'_, i64>,
    m: usize,
    tol: f64,
    seed: u64,
) -> Result<Subclasses> {
    if m == 0 {
        return Err(Error::Parameter { name: "m", value: 0.0, reason: "must be ≥ 1" });
    }
    losskit_tensor::check::at_least("tol", tol, 0.0)?;
    check_x("features", features)?;
    if labels.len() != features.nrows() {
        return Err(Error::Shape {
            arg: "labels",
            expected: format!("[N] with N = {} rows of features", features.nrows()),
            got: vec![labels.len()],
        });
    }
    let mut members: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, &c) in labels.iter().enumerate() {
        members.entry(c).or_default().push(i);
    }
    let n_min = members.values().map(Vec::len).min().unwrap_or(1); // ok: non-empty
    let size = n_min.max(m);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut ids = Array1::<usize>::zeros(labels.len());
    let mut per_class = vec![];
    let mut offset = 0;
    for (&c, rows) in &members {
        let k = (rows.len() / size).max(1);
        if k > 1 {
            let sub = features.select(Axis(0), rows);
            let local = cosine_kmeans(sub.view(), k, tol, 300, &mut rng);
            for (&i, l) in rows.iter().zip(local) {
                ids[i] = offset + l;
            }
        } else {
            for &i in rows {
                ids[i] = offset;
            }
        }
        per_class.push((c, k));
        offset += k;
    }
    Ok(Subclasses { ids, per_class })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn parameters_are_checked() {
        assert!(matches!(KMeans::new().n_clusters(0).check(), Err(Error::Parameter { name: "n_clusters", .. })));
        assert!(matches!(KMeans::new().tol(-1.0).check(), Err(Error::Parameter { name: "tol", .. })));
        let x = array![[0.0], [1.0]];
        assert!(matches!(KMeans::new().n_clusters(3).fit(x.view(), 0), Err(Error::Degenerate { .. })));
        assert!(matches!(Dbscan::new().eps(0.0).check(), Err(Error::Parameter { name: "eps", .. })));
        assert!(matches!(Dbscan::new().min_samples(0).check(), Err(Error::Parameter { .. })));
        let bad = array![[0.0], [f64::NAN]];
        assert!(matches!(Dbscan::new().fit(bad.view()), Err(Error::NonFinite { arg: "x", index: 1, .. })));
        assert!(matches!(
            sbcl_subclasses(x.view(), array![0_i64].view(), 2, 1e-3, 0),
            Err(Error::Shape { arg: "labels", .. })
        ));
        assert!(matches!(
            sbcl_subclasses(x.view(), array![0_i64, 1].view(), 0, 1e-3, 0),
            Err(Error::Parameter { name: "m", .. })
        ));
        let empty: Array1<i64> = array![];
        assert!(matches!(cluster_likelihoods(empty.view()), Err(Error::Empty { .. })));
    }

    #[test]
    fn kmeans_with_k_equal_n_puts_each_row_alone() {
        let x = array![[0.0, 1.0], [3.0, 1.0], [7.0, -2.0]];
        let c = KMeans::new().n_clusters(3).fit(x.view(), 5).unwrap();
        let mut l = c.labels.to_vec();
        l.sort_unstable();
        assert_eq!(l, vec![0, 1, 2]);
        assert_eq!(c.inertia, 0.0);
    }

    #[test]
    fn duplicated_rows_do_not_break_the_seeding() {
        let x = array![[1.0], [1.0], [1.0], [1.0]];
        let c = KMeans::new().n_clusters(2).fit(x.view(), 1).unwrap();
        assert_eq!(c.inertia, 0.0);
        assert!(c.centers.iter().all(|&v| v == 1.0));
    }
}
