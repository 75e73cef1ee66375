//! RCAL's distributional representation calibration (Zhang et al., ICCV 2023): robust per-class Gaussians, tail
//! classes calibrated from their nearest head classes, and synthetic representations sampled from them.

use std::collections::BTreeMap;

use losskit_tensor::linalg::matmul;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2};
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use crate::draw::{check_xy, class_members, gather, matrix, output_size};
use crate::knn::{KnnIndex, Queries};
use crate::{Error, Resampled, Result, Sampler};

/// The calibrated Gaussian of one class.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassGaussian {
    /// The class label.
    pub class: i64,
    /// Rows of the class kept after outlier removal (indices into the input).
    pub inliers: Vec<usize>,
    /// Calibrated mean `[D]`.
    pub mean: Array1<f64>,
    /// Calibrated covariance `[D, D]`.
    pub cov: Array2<f64>,
    /// The head classes that calibrated this (tail) class, nearest mean first; empty for a head class.
    pub borrowed_from: Vec<i64>,
}

/// RCAL distribution calibration over representations (e.g. contrastive embeddings) with noisy, long-tailed labels.
///
/// What the paper states (Zhang, Zhao, Yao, Yuan, Huang 2023, §3.2, checked against its text; no official code was
/// found in the searchable index, so the closed forms below follow distribution calibration, Yang et al. 2021, as the
/// paper cites it, and are documented as such):
///
/// ```text
/// 1. robust estimate: per class c, drop the rows the Local Outlier Factor flags (LOF > 1.5, scikit-learn's
///    LocalOutlierFactor with n_neighbors = min(lof_neighbors, m_c − 1), contamination "auto");
///    μ_c = mean of the inliers, Σ_c = their sample covariance (ddof 1; 0 with one inlier)
/// 2. tail calibration: a class with fewer than head_min_count inliers is a tail class; its q head classes H with the
///    closest means (Euclidean; ties by label) give
///    μ'_t = (μ_t + Σ_{h∈H} μ_h) / (|H| + 1),   Σ'_t = (Σ_t + Σ_{h∈H} Σ_h) / (|H| + 1) + α I
///    (head classes keep μ_c, Σ_c; with no head class at all the tail keeps its own estimate + α I)
/// 3. sampling: z ~ N(μ'_c, Σ'_c) via the Cholesky factor of Σ'_c + εI (ε = 1e−6, multiplied by 10 up to 10 times
///    until the factorisation succeeds)
/// ```
/// As a [`Sampler`], `fit_resample` returns the input rows, then for each class in ascending label order
/// `n_max − n_c` draws from its calibrated Gaussian (`n_max` = the largest class count), balancing the classes.
/// [`Rcal::fit`] and [`Rcal::sample`] expose the two steps.
///
/// # Parameters (no defaults: the paper does not publish them)
/// * `q ≥ 1`: head classes borrowed per tail class.
/// * `alpha ≥ 0`: the spread added to a calibrated tail covariance.
/// * `head_min_count ≥ 1`: inliers a class needs to count as a head class.
/// * `lof_neighbors ≥ 1`: LOF neighbourhood (scikit-learn's default is 20).
///
/// # Errors
/// [`Error::Parameter`] for `q = 0`, `lof_neighbors = 0`, `head_min_count = 0` or a negative / non-finite `alpha`;
/// [`Error::Degenerate`] when a covariance cannot be factorised; input errors as the other samplers.
///
/// # Examples
/// ```
/// use losskit_samplers::{Rcal, Sampler, class_counts};
/// let mut rows = Vec::new();
/// for i in 0..40 { let t = i as f64; rows.push([(t * 0.7).sin(), (t * 1.3).cos()]); }          // head class 0
/// for i in 0..4 { let t = i as f64; rows.push([3.0 + 0.1 * t, 3.0 - 0.1 * t]); }                // tail class 1
/// let z = ndarray::Array2::from_shape_fn((44, 2), |(i, j)| rows[i][j]);
/// let y: ndarray::Array1<i64> = (0..44).map(|i| i64::from(i >= 40)).collect();
/// let rcal = Rcal::new(1, 0.01, 10, 20);
/// let fitted = rcal.fit(z.view(), y.view())?;
/// assert_eq!(fitted[1].borrowed_from, vec![0]);
/// let out = rcal.fit_resample(z.view(), y.view(), 0)?;
/// assert_eq!(class_counts(out.y.view())[&1], 40);
/// # Ok::<(), losskit_samplers::Error>(())
/// ```
///
/// # References
/// Zhang, Zhao, Yao, Yuan, Huang (2023), *When Noisy Labels Meet Long Tail Dilemmas: A Representation Calibration
/// Method*, ICCV, arXiv:2211.10955 (docs/papers.md `zhang2023noisy`); Yang, Liu, Xu (2021), *Free Lunch for
/// Few-shot Learning: Distribution Calibration*, ICLR; Breunig, Kriegel, Ng, Sander (2000), *LOF*, SIGMOD.
#[derive(Clone, Debug, PartialEq)]
pub struct Rcal {
    /// Head classes borrowed per tail class.
    pub q: usize,
    /// Spread added to a calibrated tail covariance.
    pub alpha: f64,
    /// Inliers a class needs to be a head class.
    pub head_min_count: usize,
    /// LOF neighbourhood size.
    pub lof_neighbors: usize,
}

impl Rcal {
    /// A calibrator with every parameter given (the paper publishes no defaults).
    pub fn new(q: usize, alpha: f64, head_min_count: usize, lof_neighbors: usize) -> Self {
        Rcal { q, alpha, head_min_count, lof_neighbors }
    }

    /// Checks the parameters.
    ///
    /// # Errors
    /// As the type's docs.
    pub fn check(&self) -> Result<()> {
        for (name, v) in [("q", self.q), ("head_min_count", self.head_min_count), ("lof_neighbors", self.lof_neighbors)]
        {
            if v == 0 {
                return Err(Error::Parameter { name, value: 0.0, reason: "must be ≥ 1" });
            }
        }
        losskit_tensor::check::at_least("alpha", self.alpha, 0.0)
    }

    /// Steps 1 and 2: the calibrated Gaussian of every class, in ascending label order.
    ///
    /// # Errors
    /// As the type's docs.
    pub fn fit(&self, z: ArrayView2<'_, f64>, y: ArrayView1<'_, i64>) -> Result<Vec<ClassGaussian>> {
        self.check()?;
        check_xy(z, y)?;
        let d = z.ncols();
        let members = class_members(y);
        let mut est: Vec<ClassGaussian> = Vec::with_capacity(members.len());
        for (&class, rows) in &members {
            let xc = gather(z, rows)?;
            let keep: Vec<usize> = if rows.len() > 2 {
                let lof = lof_scores(xc.view(), self.lof_neighbors.min(rows.len() - 1))?;
                (0..rows.len()).filter(|&i| lof[i] <= 1.5).collect()
            } else {
                (0..rows.len()).collect()
            };
            let inliers: Vec<usize> = keep.iter().map(|&i| rows[i]).collect();
            let (mean, cov) = mean_cov(z, &inliers, d);
            est.push(ClassGaussian { class, inliers, mean, cov, borrowed_from: Vec::new() });
        }
        let heads: Vec<usize> = (0..est.len()).filter(|&i| est[i].inliers.len() >= self.head_min_count).collect();
        let mut out = est.clone();
        for (t, g) in out.iter_mut().enumerate() {
            if g.inliers.len() >= self.head_min_count {
                continue;
            }
            let mut near: Vec<(f64, usize)> = heads
                .iter()
                .map(|&h| {
                    let dist: f64 = est[h].mean.iter().zip(&est[t].mean).map(|(a, b)| (a - b) * (a - b)).sum();
                    (dist, h)
                })
                .collect();
            near.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            near.truncate(self.q);
            let w = (near.len() + 1) as f64;
            let mut mean = est[t].mean.clone();
            let mut cov = est[t].cov.clone();
            for &(_, h) in &near {
                mean += &est[h].mean;
                cov += &est[h].cov;
            }
            mean /= w;
            cov /= w;
            for i in 0..d {
                cov[[i, i]] += self.alpha;
            }
            g.mean = mean;
            g.cov = cov;
            g.borrowed_from = near.iter().map(|&(_, h)| est[h].class).collect();
        }
        Ok(out)
    }

    /// Step 3: `counts[c]` draws from each class's Gaussian (classes absent from `counts` get none), class by class
    /// in ascending label order; returns the rows and their labels.
    ///
    /// # Errors
    /// [`Error::Degenerate`] when a covariance cannot be factorised or the output is too large.
    pub fn sample(
        &self,
        gaussians: &[ClassGaussian],
        counts: &BTreeMap<i64, usize>,
        seed: u64,
    ) -> Result<(Array2<f64>, Array1<i64>)> {
        let d = gaussians.first().map_or(0, |g| g.mean.len());
        let total = counts.values().try_fold(0usize, |a, &b| a.checked_add(b));
        let (_, len) = output_size(0, total.unwrap_or(usize::MAX), d)?;
        let mut data = Vec::with_capacity(len);
        let mut labels = Vec::new();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        for g in gaussians {
            let n = counts.get(&g.class).copied().unwrap_or(0);
            if n == 0 {
                continue;
            }
            let l = cholesky_jittered(&g.cov).ok_or_else(|| Error::Degenerate {
                what: format!("rcal: the covariance of class {} cannot be factorised", g.class),
            })?;
            // standard normals drawn serially (thread-count independent), then transformed in parallel
            let eps: Vec<f64> = (0..n * d).map(|_| StandardNormal.sample(&mut rng)).collect();
            let start = data.len();
            data.resize(start + n * d, 0.0);
            data[start..].par_chunks_mut(d).zip(eps.par_chunks(d)).for_each(|(out, e)| {
                for (i, o) in out.iter_mut().enumerate() {
                    let mut s = g.mean[i];
                    for (j, &ej) in e.iter().enumerate().take(i + 1) {
                        s += l[[i, j]] * ej;
                    }
                    *o = s;
                }
            });
            labels.extend(std::iter::repeat_n(g.class, n));
        }
        Ok((matrix(data, d.max(1))?, labels.into()))
    }
}

impl Sampler for Rcal {
    fn fit_resample(&self, x: ArrayView2<'_, f64>, y: ArrayView1<'_, i64>, seed: u64) -> Result<Resampled> {
        let gaussians = self.fit(x, y)?;
        let members = class_members(y);
        if members.len() < 2 {
            return Err(Error::Degenerate { what: format!("rcal: needs at least 2 classes, got {}", members.len()) });
        }
        let n_max = members.values().map(Vec::len).max().unwrap_or(0);
        let counts: BTreeMap<i64, usize> = members.iter().map(|(&c, r)| (c, n_max - r.len())).collect();
        let (xs, ys) = self.sample(&gaussians, &counts, seed)?;
        let d = x.ncols();
        let mut data: Vec<f64> = x.iter().copied().collect();
        data.extend(xs.iter().copied());
        let mut labels = y.to_vec();
        labels.extend(ys.iter().copied());
        Ok(Resampled { x: matrix(data, d)?, y: labels.into(), sample_indices: None })
    }
}

/// Mean and sample covariance (ddof 1; zeros for fewer than two rows) of the rows `rows` of `z`.
fn mean_cov(z: ArrayView2<'_, f64>, rows: &[usize], d: usize) -> (Array1<f64>, Array2<f64>) {
    let m = rows.len();
    let mut mean = Array1::<f64>::zeros(d);
    for &r in rows {
        mean += &z.row(r);
    }
    if m > 0 {
        mean /= m as f64;
    }
    let mut cov = Array2::<f64>::zeros((d, d));
    if m > 1 {
        let mut c = Array2::<f64>::zeros((m, d));
        for (i, &r) in rows.iter().enumerate() {
            c.row_mut(i).assign(&(&z.row(r) - &mean));
        }
        cov = matmul(&c.t(), &c) / (m - 1) as f64;
    }
    (mean, cov)
}

/// Local Outlier Factor of every row of `x` with `k` neighbours (scikit-learn's `LocalOutlierFactor`:
/// `lrd(p) = 1 / (mean_o reach(p, o) + 1e−10)`, `reach(p, o) = max(k-dist(o), d(p, o))`, `LOF(p) = mean_o lrd(o) /
/// lrd(p)`), `1 ≤ k < rows`.
pub(crate) fn lof_scores(x: ArrayView2<'_, f64>, k: usize) -> Result<Vec<f64>> {
    let m = x.nrows();
    let all: Vec<usize> = (0..m).collect();
    let nn = KnnIndex::new(x, None).search(&Queries::Rows { rows: &all, exclude_self: true }, k)?;
    let kdist: Vec<f64> = (0..m).map(|i| nn.distances[[i, k - 1]]).collect();
    let lrd: Vec<f64> = (0..m)
        .map(|i| {
            let s: f64 = (0..k).map(|j| kdist[nn.indices[[i, j]]].max(nn.distances[[i, j]])).sum();
            1.0 / (s / k as f64 + 1e-10)
        })
        .collect();
    Ok((0..m).map(|i| (0..k).map(|j| lrd[nn.indices[[i, j]]]).sum::<f64>() / k as f64 / lrd[i]).collect())
}

/// The lower Cholesky factor of `a + εI`, ε = 1e−6 · 10^j for the first j in 0..10 that succeeds.
fn cholesky_jittered(a: &Array2<f64>) -> Option<Array2<f64>> {
    let mut eps = 1e-6;
    for _ in 0..10 {
        if let Some(l) = cholesky(a, eps) {
            return Some(l);
        }
        eps *= 10.0;
    }
    None
}

fn cholesky(a: &Array2<f64>, eps: f64) -> Option<Array2<f64>> {
    let d = a.nrows();
    let mut l = Array2::<f64>::zeros((d, d));
    for i in 0..d {
        for j in 0..=i {
            let mut s = a[[i, j]] + if i == j { eps } else { 0.0 };
            for p in 0..j {
                s -= l[[i, p]] * l[[j, p]];
            }
            if i == j {
                if !(s > 0.0 && s.is_finite()) {
                    return None;
                }
                l[[i, i]] = s.sqrt();
            } else {
                l[[i, j]] = s / l[[j, j]];
            }
        }
    }
    Some(l)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{fixture, floats, floats_matrix};

    #[test]
    fn lof_matches_scikit_learn() {
        let root = fixture("smote_nc.json");
        let cases = root["lof"].as_array().unwrap();
        assert!(!cases.is_empty());
        for case in cases {
            let x = floats_matrix(&case["x"]);
            let k = case["n_neighbors"].as_u64().unwrap() as usize;
            let want = floats(&case["lof"]);
            let got = lof_scores(x.view(), k).unwrap();
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-9 * w.abs(), "{}: {g} vs {w}", case["name"]);
            }
        }
    }

    fn two_classes() -> (Array2<f64>, Array1<i64>) {
        let mut rows = Vec::new();
        for i in 0..60 {
            let t = i as f64;
            rows.push([(t * 0.7).sin(), (t * 1.3).cos(), (t * 0.4).sin() * 0.5]);
        }
        for i in 0..50 {
            let t = i as f64;
            rows.push([8.0 + (t * 0.9).sin(), (t * 0.6).cos(), (t * 1.1).sin()]);
        }
        for i in 0..12 {
            let t = i as f64;
            rows.push([2.4 + 0.3 * (t * 1.7).sin(), 0.8 + 0.3 * (t * 2.3).cos(), 0.1 + 0.3 * (t * 0.9).sin()]);
        }
        rows.push([2.3, 40.0, -30.0]); // a mislabelled outlier of the tail class
        let z = Array2::from_shape_fn((rows.len(), 3), |(i, j)| rows[i][j]);
        let y: Array1<i64> = (0..rows.len())
            .map(|i| {
                if i < 60 {
                    0
                } else if i < 110 {
                    1
                } else {
                    2
                }
            })
            .collect();
        (z, y)
    }

    #[test]
    fn tail_classes_borrow_from_their_nearest_heads() {
        let (z, y) = two_classes();
        let rcal = Rcal::new(1, 0.1, 20, 5);
        let g = rcal.fit(z.view(), y.view()).unwrap();
        assert!(g[0].borrowed_from.is_empty() && g[1].borrowed_from.is_empty());
        assert_eq!(g[2].borrowed_from, vec![0]); // class 0 (mean ≈ 0) is nearer to the tail (mean ≈ (2.4, 0.8, 0.1))
        // the outlier was dropped by LOF
        assert!(!g[2].inliers.contains(&122) && g[2].inliers.len() >= 10, "{:?}", g[2].inliers);
        // closed form: μ' = (μ_t + μ_0) / 2, Σ' = (Σ_t + Σ_0) / 2 + α I
        let (m0, c0) = mean_cov(z.view(), &g[0].inliers, 3);
        let (mt, ct) = mean_cov(z.view(), &g[2].inliers, 3);
        let want_mean = (&m0 + &mt) / 2.0;
        let want_cov = (&c0 + &ct) / 2.0 + Array2::<f64>::eye(3) * 0.1;
        assert!(g[2].mean.iter().zip(&want_mean).all(|(a, b)| (a - b).abs() < 1e-12));
        assert!(g[2].cov.iter().zip(&want_cov).all(|(a, b)| (a - b).abs() < 1e-12));
        // q = 2 borrows both heads, nearest first
        let g2 = Rcal::new(2, 0.0, 20, 5).fit(z.view(), y.view()).unwrap();
        assert_eq!(g2[2].borrowed_from, vec![0, 1]);
    }

    #[test]
    fn samples_follow_the_calibrated_gaussian() {
        let mean = ndarray::array![1.0, -2.0];
        let cov = ndarray::array![[2.0, 0.6], [0.6, 0.5]];
        let g =
            ClassGaussian { class: 3, inliers: vec![], mean: mean.clone(), cov: cov.clone(), borrowed_from: vec![] };
        let rcal = Rcal::new(1, 0.0, 1, 1);
        let counts: BTreeMap<i64, usize> = [(3, 100_000)].into_iter().collect();
        let (xs, ys) = rcal.sample(std::slice::from_ref(&g), &counts, 7).unwrap();
        assert!(ys.iter().all(|&c| c == 3));
        let rows: Vec<usize> = (0..xs.nrows()).collect();
        let (m, c) = mean_cov(xs.view(), &rows, 2);
        assert!(m.iter().zip(&mean).all(|(a, b)| (a - b).abs() < 0.02), "{m}");
        assert!(c.iter().zip(&cov).all(|(a, b)| (a - b).abs() < 0.03), "{c}");
        assert_eq!(rcal.sample(std::slice::from_ref(&g), &counts, 7).unwrap().0, xs);
    }

    #[test]
    fn resample_balances_and_checks_parameters() {
        let (z, y) = two_classes();
        let rcal = Rcal::new(1, 0.1, 20, 5);
        let out = rcal.fit_resample(z.view(), y.view(), 1).unwrap();
        let counts = crate::class_counts(out.y.view());
        assert_eq!(counts.into_iter().collect::<Vec<_>>(), vec![(0, 60), (1, 60), (2, 60)]);
        assert_eq!(out.x.slice(ndarray::s![..z.nrows(), ..]), z);
        assert!(out.x.iter().all(|v| v.is_finite()));
        assert!(matches!(Rcal::new(0, 0.1, 5, 5).check(), Err(Error::Parameter { name: "q", .. })));
        assert!(matches!(Rcal::new(1, -0.1, 5, 5).check(), Err(Error::Parameter { name: "alpha", .. })));
        assert!(matches!(Rcal::new(1, 0.1, 0, 5).check(), Err(Error::Parameter { name: "head_min_count", .. })));
        assert!(matches!(Rcal::new(1, 0.1, 5, 0).check(), Err(Error::Parameter { name: "lof_neighbors", .. })));
        let single = Array1::<i64>::zeros(z.nrows());
        assert!(matches!(rcal.fit_resample(z.view(), single.view(), 0), Err(Error::Degenerate { .. })));
        let mut bad = z.clone();
        bad[[0, 0]] = f64::INFINITY;
        assert!(matches!(rcal.fit(bad.view(), y.view()), Err(Error::NonFinite { .. })));
    }

    #[test]
    fn cholesky_jitters_a_singular_covariance() {
        let a = ndarray::array![[1.0, 1.0], [1.0, 1.0]];
        let l = cholesky_jittered(&a).unwrap();
        let back = l.dot(&l.t());
        assert!(back.iter().zip(&a).all(|(p, q)| (p - q).abs() < 1e-5));
        assert!(cholesky_jittered(&ndarray::array![[-1e6]]).is_none()); // beyond the largest jitter (1e3)
    }
}
