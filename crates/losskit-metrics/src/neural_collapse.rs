//! Neural-collapse metrics (Papyan, Han & Donoho 2020) and the imbalanced-geometry measures of Dang et al. (2023):
//! [`NeuralCollapse`] (NC1, NC2, NC3 and the orthogonality / norm-ratio measures, one pass over the features) and
//! [`NccMismatch`] (NC4, a second pass once the class means are known).

use losskit_tensor::linalg::matmul;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};

use losskit_tensor::{Error, Result, check};

use crate::MetricState;

/// Which global mean centres the class means.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GlobalMean {
    /// The mean over samples, μ_G = (1/N) Σᵢ hᵢ (Papyan et al.'s code). The default. On imbalanced data the centred
    /// means then span C dimensions, not C − 1.
    #[default]
    Samples,
    /// The mean of the class means, (1/C) Σ_c μ_c (equal to the above on balanced data).
    ClassMeans,
}

/// Options of [`NeuralCollapse::report`].
#[derive(Clone, Debug, PartialEq)]
pub struct NeuralCollapseConfig {
    /// Relative cut-off of the pseudo-inverse Σ_B⁺: eigenvalues of Σ_B below `rcond · λ_max` are dropped (numpy's
    /// `pinv(Σ_B, rcond)`). Default 1e-6.
    pub rcond: f64,
    /// Default [`GlobalMean::Samples`].
    pub global_mean: GlobalMean,
}

impl Default for NeuralCollapseConfig {
    fn default() -> Self {
        Self { rcond: 1e-6, global_mean: GlobalMean::Samples }
    }
}

impl NeuralCollapseConfig {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the pseudo-inverse cut-off (default 1e-6).
    pub fn rcond(mut self, rcond: f64) -> Self {
        self.rcond = rcond;
        self
    }
    /// Sets the global mean (default over samples).
    pub fn global_mean(mut self, global_mean: GlobalMean) -> Self {
        self.global_mean = global_mean;
        self
    }
    /// Validates the options.
    ///
    /// # Errors
    /// [`Error::Parameter`] when `rcond` is not in \[0, 1).
    pub fn check(&self) -> Result<()> {
        check::closed_open("rcond", self.rcond, 0.0, 1.0)
    }
}

/// The neural-collapse measures over the classes present (C of them; absent classes are left out).
#[derive(Clone, Debug, PartialEq)]
pub struct NeuralCollapseReport {
    /// The classes present, in increasing order (the rows of the per-class vectors below).
    pub classes: Vec<usize>,
    /// Samples per class present.
    pub counts: Vec<u64>,
    /// NC1 = tr(Σ_W Σ_B⁺) / C (→ 0 at collapse).
    pub nc1: f64,
    /// NC2, equinorm: std_c ‖μ̃_c‖ / mean_c ‖μ̃_c‖ of the centred means (population std).
    pub equinorm: f64,
    /// NC2, equiangularity: std of cos(μ̃_c, μ̃_c') over the pairs c < c' (population std; 0 when C = 2).
    pub equiangularity: f64,
    /// NC2, max-angle: mean over pairs of |cos(μ̃_c, μ̃_c') + 1/(C − 1)|.
    pub max_angle: f64,
    /// NC2, distance to a simplex ETF: ‖G/‖G‖_F − (I − 𝟙𝟙ᵀ/C)/√(C − 1)‖_F with G = M̃ᵀM̃.
    pub etf_distance: f64,
    /// NC3, self-duality ‖Wᵀ/‖W‖_F − M̃/‖M̃‖_F‖²_F (rows of W of the classes present); `None` without a classifier.
    pub self_duality: Option<f64>,
    /// Dang et al.: max over c ≠ c' of |cos(μ_c, μ_c')| on the *uncentred* means (0 = mutually orthogonal).
    pub orthogonality: f64,
    /// Dang et al.: the same over the classifier rows; `None` without a classifier.
    pub classifier_orthogonality: Option<f64>,
    /// ‖μ_c‖ of the uncentred means, per class present.
    pub mean_norms: Vec<f64>,
    /// ‖w_c‖ per class present; `None` without a classifier.
    pub classifier_norms: Option<Vec<f64>>,
    /// Dang et al.: ‖μ_a‖ / ‖μ_b‖ for a the largest class and b the smallest (first in class order on ties).
    pub norm_ratio: f64,
    /// n_a / n_b for the same two classes, to compare with `norm_ratio`.
    pub count_ratio: f64,
}

impl NeuralCollapseReport {
    /// Ordered `(key, value)` pairs: `nc1`, `nc2_equinorm`, `nc2_equiangularity`, `nc2_max_angle`,
    /// `nc2_etf_distance`, (`nc3_self_duality`), `orthogonality`, (`classifier_orthogonality`), `norm_ratio`,
    /// `count_ratio`, `n_classes`.
    pub fn to_pairs(&self) -> Vec<(String, f64)> {
        let mut out = vec![
            ("nc1".to_string(), self.nc1),
            ("nc2_equinorm".to_string(), self.equinorm),
            ("nc2_equiangularity".to_string(), self.equiangularity),
            ("nc2_max_angle".to_string(), self.max_angle),
            ("nc2_etf_distance".to_string(), self.etf_distance),
        ];
        if let Some(v) = self.self_duality {
            out.push(("nc3_self_duality".into(), v));
        }
        out.push(("orthogonality".into(), self.orthogonality));
        if let Some(v) = self.classifier_orthogonality {
            out.push(("classifier_orthogonality".into(), v));
        }
        out.push(("norm_ratio".into(), self.norm_ratio));
        out.push(("count_ratio".into(), self.count_ratio));
        out.push(("n_classes".into(), self.classes.len() as f64));
        out
    }
}

/// Mergeable state of the neural-collapse metrics: per class the count and the running mean, and one D × D
/// within-class scatter Σ_c Σ_{i∈c} (hᵢ − μ_c)(hᵢ − μ_c)ᵀ, combined across batches and shards by Chan et al.'s
/// pairwise update (W = W_a + W_b + Σ_c n_a n_b / n · δ_c δ_cᵀ), so no large sums of squares cancel.
///
/// ```text
/// Σ_W = (1/N) Σ_c Σ_{i∈c} (hᵢ − μ_c)(hᵢ − μ_c)ᵀ      Σ_B = (1/C) Σ_c (μ_c − μ_G)(μ_c − μ_G)ᵀ
/// NC1 = tr(Σ_W Σ_B⁺) / C
/// ```
/// Σ_B has rank ≤ C, so its pseudo-inverse is taken in the span of the centred means: with M̃ the C × D matrix of
/// centred means and G = M̃M̃ᵀ = V diag(g) Vᵀ (a C × C Jacobi eigen-decomposition), Σ_B⁺ = C M̃ᵀ G⁺² M̃ and
/// NC1 = Σ_{g_k > rcond·g_max} v_kᵀ (M̃ Σ_W M̃ᵀ) v_k / g_k², which is numpy's `pinv(Σ_B, rcond)` without a D × D
/// decomposition. Memory O(C·D + D²); an update costs O(B·D²).
///
/// # Examples
/// ```
/// use losskit_metrics::{MetricState, NeuralCollapse};
/// // Features equal to their class means: within-class spread 0, so NC1 = 0; two opposite means are an ETF.
/// let h = ndarray::array![[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [-1.0, 0.0]];
/// let mut nc = NeuralCollapse::new(2, 2)?;
/// nc.update(h.view(), ndarray::array![0_i64, 0, 1, 1].view())?;
/// let r = nc.compute()?;
/// assert_eq!((r.nc1, r.equinorm, r.max_angle), (0.0, 0.0, 0.0));
/// assert!(r.etf_distance < 1e-15);
/// # Ok::<(), losskit_metrics::Error>(())
/// ```
///
/// # References
/// Papyan, Han, Donoho (2020), *Prevalence of neural collapse during the terminal phase of deep learning training*,
/// PNAS 117(40). Dang, Tran, Osher, Tran-The, Ho, Nguyen (2023), *Neural collapse in deep linear networks: from
/// balanced to imbalanced data*, ICML, arXiv:2301.00437.
#[derive(Clone, Debug, PartialEq)]
pub struct NeuralCollapse {
    counts: Vec<u64>,
    means: Array2<f64>,
    scatter: Array2<f64>,
}

impl NeuralCollapse {
    /// An empty state for `n_classes` classes and features of dimension `dim`.
    ///
    /// # Errors
    /// [`Error::Parameter`] when `n_classes` < 2 or `dim` = 0.
    pub fn new(n_classes: usize, dim: usize) -> Result<Self> {
        if n_classes < 2 {
            return Err(Error::Parameter { name: "n_classes", value: n_classes as f64, reason: "must be ≥ 2" });
        }
        if dim == 0 {
            return Err(Error::Parameter { name: "dim", value: 0.0, reason: "must be ≥ 1" });
        }
        Ok(Self {
            counts: vec![0; n_classes],
            means: Array2::zeros((n_classes, dim)),
            scatter: Array2::zeros((dim, dim)),
        })
    }

    /// Number of classes.
    pub fn n_classes(&self) -> usize {
        self.counts.len()
    }

    /// Feature dimension D.
    pub fn dim(&self) -> usize {
        self.means.ncols()
    }

    /// Samples seen per class.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// Class means \[n_classes, D\] (a row of zeros for a class not seen).
    pub fn class_means(&self) -> ArrayView2<'_, f64> {
        self.means.view()
    }

    /// The within-class covariance Σ_W \[D, D\] (scatter / N).
    pub fn within_covariance(&self) -> Array2<f64> {
        let n: u64 = self.counts.iter().sum();
        &self.scatter / (n.max(1) as f64)
    }

    /// Adds a batch: `features` \[B, D\] (penultimate-layer activations) and `labels` \[B\] in 0..n_classes.
    ///
    /// # Errors
    /// [`Error::Shape`] for mismatched shapes, [`Error::NonFinite`], [`Error::LabelOutOfRange`].
    pub fn update(&mut self, features: ArrayView2<'_, f64>, labels: ArrayView1<'_, i64>) -> Result<()> {
        check::shape("features", features.shape(), &[Some(labels.len()), Some(self.dim())])?;
        check::finite("features", &features)?;
        check::labels("labels", labels, self.n_classes(), None)?;
        let (c, d) = (self.n_classes(), self.dim());
        let mut counts = vec![0u64; c];
        let mut means = Array2::<f64>::zeros((c, d));
        for (row, &y) in features.rows().into_iter().zip(labels.iter()) {
            counts[y as usize] += 1;
            means.row_mut(y as usize).scaled_add(1.0, &row);
        }
        for (mut m, &n) in means.rows_mut().into_iter().zip(&counts) {
            if n > 0 {
                m /= n as f64;
            }
        }
        let mut centred = features.to_owned();
        for (mut row, &y) in centred.rows_mut().into_iter().zip(labels.iter()) {
            row -= &means.row(y as usize);
        }
        let scatter = matmul(&centred.t(), &centred);
        self.combine(&counts, &means, &scatter);
        Ok(())
    }

    /// Chan et al.'s pairwise combination of (counts, means, scatter).
    fn combine(&mut self, counts: &[u64], means: &Array2<f64>, scatter: &Array2<f64>) {
        let d = self.dim();
        self.scatter += scatter;
        let mut delta = Array2::<f64>::zeros((counts.len(), d));
        for (c, &nb) in counts.iter().enumerate() {
            let na = self.counts[c];
            if nb == 0 {
                continue;
            }
            let n = (na + nb) as f64;
            let diff = &means.row(c) - &self.means.row(c);
            if na > 0 {
                delta.row_mut(c).assign(&(&diff * ((na as f64) * (nb as f64) / n).sqrt()));
            }
            self.means.row_mut(c).scaled_add(nb as f64 / n, &diff);
            self.counts[c] = na + nb;
        }
        self.scatter += &matmul(&delta.t(), &delta);
    }

    /// The measures over the classes seen, with an optional classifier `weight` \[n_classes, D\] for NC3 and the
    /// classifier's orthogonality and norms.
    ///
    /// # Errors
    /// [`Error::Parameter`] for a bad config; [`Error::Shape`] / [`Error::NonFinite`] for a bad `weight`;
    /// [`Error::Degenerate`] when fewer than two classes were seen.
    pub fn report(
        &self,
        config: &NeuralCollapseConfig,
        weight: Option<ArrayView2<'_, f64>>,
    ) -> Result<NeuralCollapseReport> {
        config.check()?;
        if let Some(w) = weight {
            check::shape("weight", w.shape(), &[Some(self.n_classes()), Some(self.dim())])?;
            check::finite("weight", &w)?;
        }
        let classes: Vec<usize> = (0..self.n_classes()).filter(|&c| self.counts[c] > 0).collect();
        let c = classes.len();
        if c < 2 {
            return Err(Error::Degenerate {
                what: format!("neural collapse needs at least two classes with samples, got {c}"),
            });
        }
        let counts: Vec<u64> = classes.iter().map(|&k| self.counts[k]).collect();
        let n: u64 = counts.iter().sum();
        let means = self.means.select(Axis(0), &classes);
        let global: Array1<f64> = match config.global_mean {
            GlobalMean::Samples => {
                let mut g = Array1::<f64>::zeros(self.dim());
                for (m, &k) in means.rows().into_iter().zip(&counts) {
                    g.scaled_add(k as f64 / n as f64, &m);
                }
                g
            }
            GlobalMean::ClassMeans => means.mean_axis(Axis(0)).unwrap_or_else(|| Array1::zeros(self.dim())),
        };
        let centred = &means - &global;
        let gram = matmul(&centred, &centred.t());

        // NC1 in the span of the centred means.
        let sigma_w = &self.scatter / n as f64;
        let a = centred.dot(&sigma_w).dot(&centred.t());
        let (evals, evecs) = symmetric_eigen(gram.clone());
        let gmax = evals.iter().copied().fold(0.0_f64, f64::max);
        let mut nc1 = 0.0;
        for (k, &g) in evals.iter().enumerate() {
            if g > config.rcond * gmax && g > 0.0 {
                let v = evecs.column(k);
                nc1 += v.dot(&a.dot(&v)) / (g * g);
            }
        }

        // NC2.
        let norms: Vec<f64> = (0..c).map(|i| gram[[i, i]].max(0.0).sqrt()).collect();
        let equinorm = std(&norms) / mean(&norms);
        let mut cosines = Vec::with_capacity(c * (c - 1) / 2);
        for i in 0..c {
            for j in i + 1..c {
                cosines.push(gram[[i, j]] / (norms[i] * norms[j]));
            }
        }
        let equiangularity = std(&cosines);
        let shift = 1.0 / (c as f64 - 1.0);
        let max_angle = mean(&cosines.iter().map(|x| (x + shift).abs()).collect::<Vec<_>>());
        let gnorm = frobenius(gram.view());
        let target = 1.0 / (c as f64 - 1.0).sqrt();
        let mut etf = 0.0;
        for i in 0..c {
            for j in 0..c {
                let e = ((i == j) as u8 as f64 - 1.0 / c as f64) * target;
                let x = gram[[i, j]] / gnorm - e;
                etf += x * x;
            }
        }
        let etf_distance = etf.sqrt();

        // Dang et al. on the uncentred means.
        let (orthogonality, mean_norms) = max_abs_cosine(means.view());
        let (big, small) = extremes(&counts);
        let norm_ratio = mean_norms[big] / mean_norms[small];
        let count_ratio = counts[big] as f64 / counts[small] as f64;

        let (self_duality, classifier_orthogonality, classifier_norms) = match weight {
            Some(w) => {
                let w = w.select(Axis(0), &classes);
                let (wn, mn) = (frobenius(w.view()), frobenius(centred.view()));
                let nc3 = (&w / wn - &centred / mn).mapv(|x| x * x).sum();
                let (o, norms) = max_abs_cosine(w.view());
                (Some(nc3), Some(o), Some(norms))
            }
            None => (None, None, None),
        };
        Ok(NeuralCollapseReport {
            classes,
            counts,
            nc1,
            equinorm,
            equiangularity,
            max_angle,
            etf_distance,
            self_duality,
            orthogonality,
            classifier_orthogonality,
            mean_norms,
            classifier_norms,
            norm_ratio,
            count_ratio,
        })
    }

    /// The NC4 state for a second pass: nearest class centre (the class means seen so far) against the classifier
    /// `weight` \[n_classes, D\] and optional `bias` \[n_classes\].
    ///
    /// # Errors
    /// As [`NccMismatch::new`].
    pub fn ncc(&self, weight: ArrayView2<'_, f64>, bias: Option<ArrayView1<'_, f64>>) -> Result<NccMismatch> {
        let present: Vec<bool> = self.counts.iter().map(|&k| k > 0).collect();
        NccMismatch::with_present(self.means.view(), present, weight, bias)
    }
}

impl MetricState for NeuralCollapse {
    type Output = NeuralCollapseReport;

    fn merge(&mut self, other: &Self) -> Result<()> {
        if other.n_classes() != self.n_classes() || other.dim() != self.dim() {
            return Err(Error::Shape {
                arg: "other",
                expected: format!("a state with {} classes and dimension {}", self.n_classes(), self.dim()),
                got: vec![other.n_classes(), other.dim()],
            });
        }
        self.combine(&other.counts, &other.means, &other.scatter);
        Ok(())
    }

    /// The report with the default config and no classifier.
    fn compute(&self) -> Result<NeuralCollapseReport> {
        self.report(&NeuralCollapseConfig::default(), None)
    }

    fn reset(&mut self) {
        self.counts.iter_mut().for_each(|k| *k = 0);
        self.means.fill(0.0);
        self.scatter.fill(0.0);
    }
}

/// NC4 (Papyan et al.): the fraction of samples whose classifier prediction argmax_c (w_c·h + b_c) differs from the
/// nearest class centre argmin_c ‖h − μ_c‖ (→ 0 at collapse). A mergeable count, built from the class means of a
/// first pass ([`NeuralCollapse::ncc`]). Ties go to the smaller class index on both sides; class centres of classes
/// without samples are never nearest.
///
/// # Examples
/// ```
/// use losskit_metrics::{MetricState, NccMismatch};
/// let means = ndarray::array![[1.0, 0.0], [-1.0, 0.0]];
/// let w = ndarray::array![[0.0, 1.0], [0.0, -1.0]]; // a classifier that looks at the other axis
/// let mut nc4 = NccMismatch::new(means.view(), w.view(), None)?;
/// nc4.update(ndarray::array![[0.9, 0.1], [0.8, -0.1]].view())?;
/// assert_eq!(nc4.compute()?, 0.5);
/// # Ok::<(), losskit_metrics::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct NccMismatch {
    means: Array2<f64>,
    present: Vec<bool>,
    weight: Array2<f64>,
    bias: Array1<f64>,
    n: u64,
    mismatches: u64,
}

impl NccMismatch {
    /// A state comparing the class centres `means` \[C, D\] with the classifier `weight` \[C, D\] and `bias` \[C\]
    /// (zero when `None`).
    ///
    /// # Errors
    /// [`Error::Shape`] for mismatched shapes, [`Error::NonFinite`], [`Error::Parameter`] when C < 2.
    pub fn new(
        means: ArrayView2<'_, f64>,
        weight: ArrayView2<'_, f64>,
        bias: Option<ArrayView1<'_, f64>>,
    ) -> Result<Self> {
        Self::with_present(means, vec![true; means.nrows()], weight, bias)
    }

    fn with_present(
        means: ArrayView2<'_, f64>,
        present: Vec<bool>,
        weight: ArrayView2<'_, f64>,
        bias: Option<ArrayView1<'_, f64>>,
    ) -> Result<Self> {
        let (c, d) = means.dim();
        if c < 2 {
            return Err(Error::Parameter { name: "n_classes", value: c as f64, reason: "must be ≥ 2" });
        }
        check::finite("means", &means)?;
        check::shape("weight", weight.shape(), &[Some(c), Some(d)])?;
        check::finite("weight", &weight)?;
        let bias = match bias {
            Some(b) => {
                check::shape("bias", b.shape(), &[Some(c)])?;
                check::finite("bias", &b)?;
                b.to_owned()
            }
            None => Array1::zeros(c),
        };
        Ok(Self { means: means.to_owned(), present, weight: weight.to_owned(), bias, n: 0, mismatches: 0 })
    }

    /// Adds a batch of `features` \[B, D\].
    ///
    /// # Errors
    /// [`Error::Shape`], [`Error::NonFinite`].
    pub fn update(&mut self, features: ArrayView2<'_, f64>) -> Result<()> {
        check::shape("features", features.shape(), &[None, Some(self.means.ncols())])?;
        check::finite("features", &features)?;
        for h in features.rows() {
            let mut best = (f64::NEG_INFINITY, 0usize);
            for (c, w) in self.weight.rows().into_iter().enumerate() {
                let s = w.dot(&h) + self.bias[c];
                if s > best.0 {
                    best = (s, c);
                }
            }
            let mut near = (f64::INFINITY, usize::MAX);
            for (c, m) in self.means.rows().into_iter().enumerate() {
                if !self.present[c] {
                    continue;
                }
                let d: f64 = m.iter().zip(h.iter()).map(|(a, b)| (a - b) * (a - b)).sum();
                if d < near.0 {
                    near = (d, c);
                }
            }
            self.n += 1;
            self.mismatches += (best.1 != near.1) as u64;
        }
        Ok(())
    }

    /// Samples seen and mismatches.
    pub fn counts(&self) -> (u64, u64) {
        (self.n, self.mismatches)
    }
}

impl MetricState for NccMismatch {
    type Output = f64;

    fn merge(&mut self, other: &Self) -> Result<()> {
        if other.means != self.means || other.weight != self.weight || other.bias != self.bias {
            return Err(Error::Input { what: "NC4 states built from different class means or classifiers".into() });
        }
        self.n += other.n;
        self.mismatches += other.mismatches;
        Ok(())
    }

    fn compute(&self) -> Result<f64> {
        if self.n == 0 {
            return Err(Error::Empty { arg: "features" });
        }
        Ok(self.mismatches as f64 / self.n as f64)
    }

    fn reset(&mut self) {
        self.n = 0;
        self.mismatches = 0;
    }
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

/// Population standard deviation (numpy's default ddof = 0).
fn std(x: &[f64]) -> f64 {
    let m = mean(x);
    (x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / x.len() as f64).sqrt()
}

fn frobenius(a: ArrayView2<'_, f64>) -> f64 {
    a.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// max_{i≠j} |cos(rᵢ, rⱼ)| over the rows, and the row norms.
fn max_abs_cosine(rows: ArrayView2<'_, f64>) -> (f64, Vec<f64>) {
    let gram = matmul(&rows, &rows.t());
    let c = gram.nrows();
    let norms: Vec<f64> = (0..c).map(|i| gram[[i, i]].max(0.0).sqrt()).collect();
    let mut worst = 0.0_f64;
    for i in 0..c {
        for j in i + 1..c {
            let v = (gram[[i, j]] / (norms[i] * norms[j])).abs();
            worst = if v.is_nan() { f64::NAN } else { worst.max(v) };
        }
    }
    (worst, norms)
}

/// Indices of the largest and the smallest count (first on ties).
fn extremes(counts: &[u64]) -> (usize, usize) {
    let (mut big, mut small) = (0, 0);
    for (i, &k) in counts.iter().enumerate() {
        if k > counts[big] {
            big = i;
        }
        if k < counts[small] {
            small = i;
        }
    }
    (big, small)
}

/// Eigen-decomposition of a symmetric matrix by cyclic Jacobi rotations: (eigenvalues, eigenvectors as columns).
/// Converges quadratically; C × C with C up to a few hundred.
pub(crate) fn symmetric_eigen(mut a: Array2<f64>) -> (Vec<f64>, Array2<f64>) {
    let n = a.nrows();
    let mut v = Array2::<f64>::eye(n);
    let total: f64 = a.iter().map(|x| x * x).sum();
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[[i, j]] * a[[i, j]])
            .sum();
        if off <= 1e-30 * total || off == 0.0 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[[p, q]];
                if apq == 0.0 {
                    continue;
                }
                let theta = (a[[q, q]] - a[[p, p]]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let cs = 1.0 / (t * t + 1.0).sqrt();
                let sn = t * cs;
                for k in 0..n {
                    let (akp, akq) = (a[[k, p]], a[[k, q]]);
                    a[[k, p]] = cs * akp - sn * akq;
                    a[[k, q]] = sn * akp + cs * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[[p, k]], a[[q, k]]);
                    a[[p, k]] = cs * apk - sn * aqk;
                    a[[q, k]] = sn * apk + cs * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[[k, p]], v[[k, q]]);
                    v[[k, p]] = cs * vkp - sn * vkq;
                    v[[k, q]] = sn * vkp + cs * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| a[[i, i]]).collect(), v)
}

use crate::registry::{MetricEntry, MetricParam};

const RCOND: MetricParam = MetricParam {
    name: "rcond",
    default: "1e-6",
    values: "[0, 1)",
    summary: "relative cut-off of the pseudo-inverse of Σ_B (numpy's pinv rcond)",
};
const GLOBAL_MEAN: MetricParam = MetricParam {
    name: "global_mean",
    default: "samples",
    values: "samples | class_means",
    summary: "centre the class means by the mean over samples (Papyan et al.) or the mean of the class means",
};
const NC_INPUTS: &str = "features [N, D], labels [N] in 0..n_classes, optional classifier weight [n_classes, D]";
const NUMPY: &str = "numpy.linalg.pinv (oracle from the definitions; no library has these metrics)";

/// The registry entries of this module, in `losskit list` order.
pub(crate) const ENTRIES: [MetricEntry; 5] = [
    MetricEntry {
        name: "neural-collapse-nc1",
        summary: "NC1 = tr(Σ_W Σ_B⁺)/C, within-class variability against between-class spread (Papyan et al. 2020)",
        reference: NUMPY,
        inputs: NC_INPUTS,
        api: "NeuralCollapse::update / merge / report (nc1)",
        params: &[RCOND, GLOBAL_MEAN],
    },
    MetricEntry {
        name: "neural-collapse-nc2",
        summary: "NC2: equinorm, equiangularity, max-angle and distance to a simplex ETF of the centred class means",
        reference: NUMPY,
        inputs: NC_INPUTS,
        api: "NeuralCollapse::report (equinorm, equiangularity, max_angle, etf_distance)",
        params: &[GLOBAL_MEAN],
    },
    MetricEntry {
        name: "neural-collapse-nc3",
        summary: "NC3 self-duality ‖Wᵀ/‖W‖ − M̃/‖M̃‖‖²_F between classifier rows and centred class means",
        reference: NUMPY,
        inputs: NC_INPUTS,
        api: "NeuralCollapse::report (self_duality)",
        params: &[GLOBAL_MEAN],
    },
    MetricEntry {
        name: "neural-collapse-nc4",
        summary: "NC4: fraction of samples where the classifier and the nearest class centre disagree",
        reference: NUMPY,
        inputs: "features [N, D], class means [C, D] (first pass), weight [C, D], optional bias [C]",
        api: "NeuralCollapse::ncc → NccMismatch::update / merge / compute",
        params: &[],
    },
    MetricEntry {
        name: "imbalanced-geometry",
        summary: "Dang et al. 2023: max |cos| between uncentred class means (and classifier rows), norm vs size ratios",
        reference: NUMPY,
        inputs: NC_INPUTS,
        api: "NeuralCollapse::report (orthogonality, classifier_orthogonality, norm_ratio, count_ratio)",
        params: &[],
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn jacobi_reconstructs_a_symmetric_matrix() {
        let a = array![[4.0, 1.0, -2.0], [1.0, 3.0, 0.5], [-2.0, 0.5, 1.0]];
        let (e, v) = symmetric_eigen(a.clone());
        let back = v.dot(&Array2::from_diag(&Array1::from(e))).dot(&v.t());
        for (x, y) in back.iter().zip(a.iter()) {
            assert!((x - y).abs() < 1e-12, "{back} vs {a}");
        }
        let ortho = v.t().dot(&v);
        for (x, y) in ortho.iter().zip(Array2::<f64>::eye(3).iter()) {
            assert!((x - y).abs() < 1e-12);
        }
    }

    #[test]
    fn rcond_outside_range_is_rejected() {
        assert!(matches!(NeuralCollapseConfig::new().rcond(1.0).check(), Err(Error::Parameter { name: "rcond", .. })));
        assert!(matches!(
            NeuralCollapseConfig::new().rcond(-1e-3).check(),
            Err(Error::Parameter { name: "rcond", .. })
        ));
    }

    #[test]
    fn one_class_is_degenerate() {
        let mut nc = NeuralCollapse::new(3, 2).unwrap();
        nc.update(array![[1.0, 2.0]].view(), array![1_i64].view()).unwrap();
        assert!(matches!(nc.compute(), Err(Error::Degenerate { .. })));
    }
}
