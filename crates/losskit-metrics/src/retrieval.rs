//! Retrieval and embedding quality: exact k-nearest neighbours by blocked GEMM ([`knn`]), the retrieval metrics of
//! pytorch-metric-learning's `AccuracyCalculator` plus Recall@K, Precision@K and NDCG ([`retrieval_metrics`],
//! [`RetrievalState`]), and Metrix's utilization ([`utilization`]).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use ndarray::{Array2, ArrayView1, ArrayView2, Axis, s};
use rayon::prelude::*;

use losskit_tensor::{Error, Result, check};

use crate::MetricState;

/// Query rows per GEMM block: a block holds `BLOCK × n_reference` distances.
const BLOCK: usize = 128;

/// The distance of [`knn`] and the retrieval metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Distance {
    /// ‖q − r‖₂ (pytorch-metric-learning's `AccuracyCalculator` default, faiss `IndexFlatL2`). The default.
    #[default]
    Euclidean,
    /// 1 − cos(q, r), rows normalised with norm floored at 1e-12 as torch's `F.normalize` (PML's
    /// `CosineSimilarity`): a zero row has similarity 0 to everything.
    Cosine,
}

impl FromStr for Distance {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "euclidean" | "l2" => Ok(Self::Euclidean),
            "cosine" => Ok(Self::Cosine),
            other => Err(Error::ParameterText {
                name: "distance".into(),
                value: other.into(),
                reason: "expected euclidean | cosine".into(),
            }),
        }
    }
}

impl fmt::Display for Distance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Euclidean => "euclidean",
            Self::Cosine => "cosine",
        })
    }
}

/// The k nearest reference rows of each query row, nearest first.
#[derive(Clone, Debug, PartialEq)]
pub struct Neighbors {
    /// Reference indices \[Nq, k\].
    pub indices: Array2<usize>,
    /// Their distances \[Nq, k\] (Euclidean, or 1 − cosine), recomputed exactly from the rows.
    pub distances: Array2<f64>,
}

/// Validated inputs of a search: the reference, its squared norms (Euclidean) or inverse norms (cosine).
struct Index<'a> {
    reference: ArrayView2<'a, f64>,
    norms: Vec<f64>,
    distance: Distance,
}

fn row_norm(r: ArrayView1<'_, f64>) -> f64 {
    r.dot(&r).sqrt()
}

impl<'a> Index<'a> {
    fn new(reference: ArrayView2<'a, f64>, distance: Distance) -> Self {
        let norms = reference
            .rows()
            .into_iter()
            .map(|r| match distance {
                Distance::Euclidean => r.dot(&r),
                Distance::Cosine => 1.0 / row_norm(r).max(1e-12),
            })
            .collect();
        Index { reference, norms, distance }
    }

    fn exact(&self, q: ArrayView1<'_, f64>, j: usize) -> f64 {
        let r = self.reference.row(j);
        match self.distance {
            Distance::Euclidean => q.iter().zip(r.iter()).map(|(a, b)| (a - b) * (a - b)).sum::<f64>().sqrt(),
            Distance::Cosine => 1.0 - q.dot(&r) / row_norm(q).max(1e-12) * self.norms[j],
        }
    }

    /// The k nearest of every row of `block` (query rows `start..start + block.nrows()`), as (index, distance) rows.
    /// Selection uses the GEMM form (‖q‖² + ‖r‖² − 2 q·r, or −q·r/‖r‖), ties broken by the smaller index; the
    /// returned distances are recomputed exactly. With `exclude_self`, reference index `start + i` is skipped for
    /// query row i.
    fn search(&self, block: ArrayView2<'_, f64>, start: usize, k: usize, exclude_self: bool) -> Vec<Vec<(usize, f64)>> {
        let g = block.dot(&self.reference.t());
        let mut keys: Vec<(f64, usize)> = Vec::with_capacity(self.reference.nrows());
        g.axis_iter(Axis(0))
            .zip(block.rows())
            .enumerate()
            .map(|(i, (gr, q))| {
                keys.clear();
                let qn = q.dot(&q);
                for (j, (&dot, &n)) in gr.iter().zip(&self.norms).enumerate() {
                    if exclude_self && j == start + i {
                        continue;
                    }
                    let key = match self.distance {
                        Distance::Euclidean => (qn + n - 2.0 * dot).max(0.0),
                        Distance::Cosine => -dot * n,
                    };
                    keys.push((key, j));
                }
                let cmp = |a: &(f64, usize), b: &(f64, usize)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
                if k < keys.len() {
                    keys.select_nth_unstable_by(k, cmp);
                    keys.truncate(k);
                }
                keys.sort_unstable_by(cmp);
                keys.iter().map(|&(_, j)| (j, self.exact(q, j))).collect()
            })
            .collect()
    }
}

fn check_embeddings(query: ArrayView2<'_, f64>, reference: ArrayView2<'_, f64>) -> Result<()> {
    check::non_empty("reference", reference.nrows())?;
    check::shape("query", query.shape(), &[None, Some(reference.ncols())])?;
    check::finite("query", &query)?;
    check::finite("reference", &reference)?;
    Ok(())
}

/// Calls `f(start, rows)` for consecutive query blocks, blocks computed on the rayon pool and handed to `f` in order.
fn blocks(
    index: &Index<'_>,
    query: ArrayView2<'_, f64>,
    k: usize,
    exclude_self: bool,
    mut f: impl FnMut(usize, Vec<Vec<(usize, f64)>>) -> Result<()>,
) -> Result<()> {
    let n = query.nrows();
    // A wave of blocks at a time keeps memory at (threads × BLOCK × n_reference) distances.
    let wave = BLOCK * rayon::current_num_threads().max(1) * 2;
    let mut start = 0;
    while start < n {
        let end = (start + wave).min(n);
        let starts: Vec<usize> = (start..end).step_by(BLOCK).collect();
        let results: Vec<Vec<Vec<(usize, f64)>>> = starts
            .par_iter()
            .map(|&b| index.search(query.slice(s![b..(b + BLOCK).min(end), ..]), b, k, exclude_self))
            .collect();
        for (b, rows) in starts.into_iter().zip(results) {
            f(b, rows)?;
        }
        start = end;
    }
    Ok(())
}

/// Exact k-nearest-neighbour search of every `query` row \[Nq, D\] among the `reference` rows \[Nr, D\].
///
/// Distances come from one GEMM per block of 128 query rows (O(128 · Nr) memory per block, blocks on the rayon
/// pool); each row keeps its k smallest by a partial selection, ties broken by the smaller reference index, so the
/// result is deterministic whatever the thread count. With `exclude_self` the query set is the start of the
/// reference set (query row i is reference row i, as pytorch-metric-learning's `ref_includes_query`) and reference
/// row i is never a neighbour of query row i.
///
/// # Errors
/// [`Error::Empty`] for an empty reference; [`Error::Shape`] when D differs (or, with `exclude_self`, Nq > Nr);
/// [`Error::NonFinite`]; [`Error::Parameter`] when k is 0 or more than the candidates (Nr, or Nr − 1 with
/// `exclude_self`).
///
/// # Examples
/// ```
/// use losskit_metrics::{Distance, knn};
/// let x = ndarray::array![[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]];
/// let nn = knn(x.view(), x.view(), 2, Distance::Euclidean, true)?;
/// assert_eq!(nn.indices, ndarray::array![[1, 2], [0, 2], [1, 0]]);
/// assert_eq!(nn.distances.row(2).to_vec(), vec![2.0, 3.0]);
/// # Ok::<(), losskit_metrics::Error>(())
/// ```
pub fn knn(
    query: ArrayView2<'_, f64>,
    reference: ArrayView2<'_, f64>,
    k: usize,
    distance: Distance,
    exclude_self: bool,
) -> Result<Neighbors> {
    check_embeddings(query, reference)?;
    check_k(k, query.nrows(), reference.nrows(), exclude_self)?;
    let index = Index::new(reference, distance);
    let n = query.nrows();
    let mut indices = Array2::zeros((n, k));
    let mut distances = Array2::zeros((n, k));
    blocks(&index, query, k, exclude_self, |b, rows| {
        for (i, row) in rows.into_iter().enumerate() {
            for (c, (j, d)) in row.into_iter().enumerate() {
                indices[[b + i, c]] = j;
                distances[[b + i, c]] = d;
            }
        }
        Ok(())
    })?;
    Ok(Neighbors { indices, distances })
}

fn check_k(k: usize, nq: usize, nr: usize, exclude_self: bool) -> Result<()> {
    if exclude_self && nq > nr {
        return Err(Error::Shape {
            arg: "query",
            expected: format!("at most {nr} rows (the query set is the start of the reference set)"),
            got: vec![nq],
        });
    }
    let candidates = nr - exclude_self as usize;
    if k == 0 || k > candidates {
        return Err(Error::Parameter {
            name: "k",
            value: k as f64,
            reason: "must be ≥ 1 and at most the number of reference rows (minus the query itself)",
        });
    }
    Ok(())
}

/// Metrix's utilization (Venkataramanan et al., ICLR 2022): the mean over `test` rows of the Euclidean distance to
/// the nearest `train` row.
/// ```text
/// u = (1/|Q|) Σ_{q ∈ Q} min_{x ∈ X_train} ‖q − x‖₂
/// ```
/// Smaller means the test embeddings fall closer to the region the training set covers; a test set equal to the
/// training set gives 0.
///
/// # Errors
/// As [`knn`] with k = 1, and [`Error::Empty`] for an empty test set.
///
/// # References
/// Venkataramanan, Psomas, Kijak, Amsaleg, Karantzalos, Avrithis (2022), *It Takes Two to Tango: Mixup for Deep
/// Metric Learning*, ICLR, arXiv:2106.04990.
pub fn utilization(test: ArrayView2<'_, f64>, train: ArrayView2<'_, f64>) -> Result<f64> {
    check::non_empty("test", test.nrows())?;
    let nn = knn(test, train, 1, Distance::Euclidean, false)?;
    Ok(nn.distances.sum() / test.nrows() as f64)
}

/// How many neighbours the retrieval metrics look at (pytorch-metric-learning's `AccuracyCalculator(k=…)`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RetrievalK {
    /// Every reference row (minus the query itself): `k=None`. Exact MAP@R and R-precision; O(Nq · Nr) sorting.
    All,
    /// The largest number of reference rows sharing a query label (minus the query itself): `k="max_bin_count"`.
    /// Exact MAP@R and R-precision at a fraction of the cost. The default.
    #[default]
    MaxBinCount,
    /// A fixed k (MAP@R and R-precision are then truncated at k, as in PML).
    Fixed(usize),
}

impl FromStr for RetrievalK {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "all" | "none" => Ok(Self::All),
            "max_bin_count" => Ok(Self::MaxBinCount),
            other => match other.parse::<usize>() {
                Ok(k) if k > 0 => Ok(Self::Fixed(k)),
                _ => Err(Error::ParameterText {
                    name: "k".into(),
                    value: other.into(),
                    reason: "expected all | max_bin_count | an integer ≥ 1".into(),
                }),
            },
        }
    }
}

/// Options of [`retrieval_metrics`].
#[derive(Clone, Debug, PartialEq)]
pub struct RetrievalConfig {
    /// Neighbours examined. Default [`RetrievalK::MaxBinCount`].
    pub k: RetrievalK,
    /// Default [`Distance::Euclidean`].
    pub distance: Distance,
    /// Average per class first, then over classes (PML's `avg_of_avgs`). Default false.
    pub avg_of_avgs: bool,
    /// The K of Recall@K and Precision@K, each ≤ k. Default \[1, 2, 4, 8\] (those above k are dropped by
    /// [`retrieval_metrics`]).
    pub ks: Vec<usize>,
}

impl Default for RetrievalConfig {
    fn default() -> Self {
        Self { k: RetrievalK::MaxBinCount, distance: Distance::Euclidean, avg_of_avgs: false, ks: vec![1, 2, 4, 8] }
    }
}

impl RetrievalConfig {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets k (default max_bin_count).
    pub fn k(mut self, k: RetrievalK) -> Self {
        self.k = k;
        self
    }
    /// Sets the distance (default Euclidean).
    pub fn distance(mut self, distance: Distance) -> Self {
        self.distance = distance;
        self
    }
    /// Sets class averaging (default false).
    pub fn avg_of_avgs(mut self, avg_of_avgs: bool) -> Self {
        self.avg_of_avgs = avg_of_avgs;
        self
    }
    /// Sets the K values of Recall@K / Precision@K (default 1, 2, 4, 8).
    pub fn ks(mut self, ks: Vec<usize>) -> Self {
        self.ks = ks;
        self
    }
}

/// The retrieval metrics over the non-lone queries.
#[derive(Clone, Debug, PartialEq)]
pub struct RetrievalReport {
    /// The k used.
    pub k: usize,
    /// Queries evaluated (those with at least one relevant reference row).
    pub n_queries: u64,
    /// Queries left out because no other reference row has their label (PML's "lone" queries).
    pub n_lone: u64,
    /// PML `precision_at_1`.
    pub precision_at_1: f64,
    /// PML `r_precision`: hits among the first min(R, k) neighbours / min(R, k), R = relevant reference rows.
    pub r_precision: f64,
    /// PML `mean_average_precision_at_r`.
    pub map_at_r: f64,
    /// PML `mean_average_precision`: precision summed at each hit within k, divided by R.
    pub mean_average_precision: f64,
    /// PML `mean_reciprocal_rank` (0 for a query with no hit within k).
    pub mean_reciprocal_rank: f64,
    /// NDCG@k with binary relevance: Σ_{i<k} hitᵢ / log₂(i + 2) over its ideal value Σ_{i<min(R,k)} 1 / log₂(i + 2)
    /// (scikit-learn's `ndcg_score(k=k)` on relevance rows, without ties).
    pub ndcg: f64,
    /// (K, Recall@K): the fraction of queries with at least one relevant row among their K nearest.
    pub recall_at: Vec<(usize, f64)>,
    /// (K, Precision@K): the mean fraction of relevant rows among the K nearest (PML's `precision_at_k`).
    pub precision_at: Vec<(usize, f64)>,
}

impl RetrievalReport {
    /// Ordered `(key, value)` pairs: `precision_at_1`, `r_precision`, `map_at_r`, `mean_average_precision`,
    /// `mean_reciprocal_rank`, `ndcg`, `recall_at_K`…, `precision_at_K`… (K > 1), `k`, `n_queries`, `n_lone`.
    pub fn to_pairs(&self) -> Vec<(String, f64)> {
        let mut out: Vec<(String, f64)> = [
            ("precision_at_1", self.precision_at_1),
            ("r_precision", self.r_precision),
            ("map_at_r", self.map_at_r),
            ("mean_average_precision", self.mean_average_precision),
            ("mean_reciprocal_rank", self.mean_reciprocal_rank),
            ("ndcg", self.ndcg),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        out.extend(self.recall_at.iter().map(|&(k, v)| (format!("recall_at_{k}"), v)));
        // Precision@1 is `precision_at_1` above (the same value): not repeated.
        out.extend(self.precision_at.iter().filter(|p| p.0 != 1).map(|&(k, v)| (format!("precision_at_{k}"), v)));
        out.push(("k".into(), self.k as f64));
        out.push(("n_queries".into(), self.n_queries as f64));
        out.push(("n_lone".into(), self.n_lone as f64));
        out
    }
}

/// Per-class sums of the per-query metrics.
#[derive(Clone, Debug, Default, PartialEq)]
struct Sums {
    n: u64,
    /// p@1, R-precision, MAP@R, MAP, MRR, NDCG, then Recall@K and Precision@K for each K.
    values: Vec<f64>,
}

const FIXED: usize = 6;

/// Mergeable state of the retrieval metrics: per query label, the number of queries and the sums of their
/// per-query metrics, from which both the plain mean and PML's `avg_of_avgs` follow.
///
/// Each [`update`](Self::update) takes the labels of a block of queries, the labels of their k nearest reference
/// rows (nearest first, from [`knn`] or any search) and the number R of relevant reference rows of each query (0
/// for a lone query, which is counted and left out, as PML leaves it out). Shards of queries searched against the
/// same reference merge to the one-pass result (sums in another order: 1e-15 relative).
///
/// # Examples
/// ```
/// use losskit_metrics::RetrievalState;
/// let mut st = RetrievalState::new(2, vec![1])?;
/// // Query of class 0 with 2 relevant rows: neighbours 0, 1 → hit, miss.
/// st.update(ndarray::array![0_i64].view(), ndarray::array![[0_i64, 1]].view(), ndarray::array![2_usize].view())?;
/// let r = st.report(false)?;
/// assert_eq!((r.precision_at_1, r.r_precision, r.map_at_r), (1.0, 0.5, 0.5));
/// # Ok::<(), losskit_metrics::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RetrievalState {
    k: usize,
    ks: Vec<usize>,
    classes: BTreeMap<i64, Sums>,
    lone: u64,
    /// Discounts 1 / log₂(i + 2), i < k.
    discount: Vec<f64>,
}

impl RetrievalState {
    /// An empty state for neighbour lists of length `k` and the K values `ks` of Recall@K / Precision@K.
    ///
    /// # Errors
    /// [`Error::Parameter`] when k is 0 or a K is 0 or above k.
    pub fn new(k: usize, ks: Vec<usize>) -> Result<Self> {
        if k == 0 {
            return Err(Error::Parameter { name: "k", value: 0.0, reason: "must be ≥ 1" });
        }
        if let Some(&bad) = ks.iter().find(|&&x| x == 0 || x > k) {
            return Err(Error::Parameter { name: "ks", value: bad as f64, reason: "each K must be in 1..=k" });
        }
        let discount = (0..k).map(|i| 1.0 / ((i + 2) as f64).log2()).collect();
        Ok(Self { k, ks, classes: BTreeMap::new(), lone: 0, discount })
    }

    /// Per-query metrics of one neighbour-label row.
    fn query(&self, label: i64, neighbours: ArrayView1<'_, i64>, r: usize) -> Vec<f64> {
        let k = self.k;
        let rk = r.min(k);
        let (mut cum, mut sum_at_r, mut sum_all, mut first, mut dcg) = (0usize, 0.0, 0.0, None, 0.0);
        let mut hits_at_r = 0usize;
        let mut cum_at = vec![0usize; k + 1];
        for (i, &l) in neighbours.iter().enumerate() {
            let hit = l == label;
            if hit {
                cum += 1;
                let p = cum as f64 / (i + 1) as f64;
                sum_all += p;
                if i < rk {
                    sum_at_r += p;
                    hits_at_r += 1;
                }
                first.get_or_insert(i);
                dcg += self.discount[i];
            }
            cum_at[i + 1] = cum;
        }
        let idcg: f64 = self.discount[..rk].iter().sum();
        let mut v = vec![
            (neighbours[0] == label) as u8 as f64,
            hits_at_r as f64 / rk as f64,
            sum_at_r / r as f64,
            sum_all / r as f64,
            first.map_or(0.0, |i| 1.0 / (i + 1) as f64),
            dcg / idcg,
        ];
        v.extend(self.ks.iter().map(|&kk| (cum_at[kk] > 0) as u8 as f64));
        v.extend(self.ks.iter().map(|&kk| cum_at[kk] as f64 / kk as f64));
        v
    }

    /// Adds a block of queries: `query_labels` \[B\], `neighbor_labels` \[B, k\] (nearest first), `relevant` \[B\]
    /// (R per query, 0 for a lone query).
    ///
    /// # Errors
    /// [`Error::Shape`] for mismatched shapes (k columns required).
    pub fn update(
        &mut self,
        query_labels: ArrayView1<'_, i64>,
        neighbor_labels: ArrayView2<'_, i64>,
        relevant: ArrayView1<'_, usize>,
    ) -> Result<()> {
        let b = query_labels.len();
        check::shape("neighbor_labels", neighbor_labels.shape(), &[Some(b), Some(self.k)])?;
        check::shape("relevant", relevant.shape(), &[Some(b)])?;
        let width = FIXED + 2 * self.ks.len();
        for ((&label, row), &r) in query_labels.iter().zip(neighbor_labels.rows()).zip(relevant.iter()) {
            if r == 0 {
                self.lone += 1;
                continue;
            }
            let v = self.query(label, row, r);
            let sums = self.classes.entry(label).or_insert_with(|| Sums { n: 0, values: vec![0.0; width] });
            sums.n += 1;
            sums.values.iter_mut().zip(&v).for_each(|(s, x)| *s += x);
        }
        Ok(())
    }

    /// The metrics: means over queries, or with `avg_of_avgs` means over labels of the per-label means.
    ///
    /// # Errors
    /// [`Error::Degenerate`] when every query was lone (PML returns NaN).
    pub fn report(&self, avg_of_avgs: bool) -> Result<RetrievalReport> {
        let n: u64 = self.classes.values().map(|s| s.n).sum();
        if n == 0 {
            return Err(Error::Degenerate {
                what: format!(
                    "no query has a relevant reference row ({} lone queries): retrieval metrics are undefined",
                    self.lone
                ),
            });
        }
        let width = FIXED + 2 * self.ks.len();
        let mean: Vec<f64> = (0..width)
            .map(|m| {
                if avg_of_avgs {
                    self.classes.values().map(|s| s.values[m] / s.n as f64).sum::<f64>() / self.classes.len() as f64
                } else {
                    self.classes.values().map(|s| s.values[m]).sum::<f64>() / n as f64
                }
            })
            .collect();
        let nk = self.ks.len();
        Ok(RetrievalReport {
            k: self.k,
            n_queries: n,
            n_lone: self.lone,
            precision_at_1: mean[0],
            r_precision: mean[1],
            map_at_r: mean[2],
            mean_average_precision: mean[3],
            mean_reciprocal_rank: mean[4],
            ndcg: mean[5],
            recall_at: self.ks.iter().copied().zip(mean[FIXED..FIXED + nk].iter().copied()).collect(),
            precision_at: self.ks.iter().copied().zip(mean[FIXED + nk..].iter().copied()).collect(),
        })
    }
}

impl MetricState for RetrievalState {
    type Output = RetrievalReport;

    /// # Errors
    /// [`Error::Parameter`] when k or the K values differ.
    fn merge(&mut self, other: &Self) -> Result<()> {
        if other.k != self.k || other.ks != self.ks {
            return Err(Error::Parameter {
                name: "k",
                value: other.k as f64,
                reason: "retrieval states with different k or K values cannot be merged",
            });
        }
        for (&label, s) in &other.classes {
            let mine = self.classes.entry(label).or_insert_with(|| Sums { n: 0, values: vec![0.0; s.values.len()] });
            mine.n += s.n;
            mine.values.iter_mut().zip(&s.values).for_each(|(a, b)| *a += b);
        }
        self.lone += other.lone;
        Ok(())
    }

    /// The plain means (`avg_of_avgs = false`).
    fn compute(&self) -> Result<RetrievalReport> {
        self.report(false)
    }

    fn reset(&mut self) {
        self.classes.clear();
        self.lone = 0;
    }
}

/// Retrieval metrics exactly as pytorch-metric-learning's `AccuracyCalculator.get_accuracy` computes them, with
/// exact neighbours instead of faiss.
///
/// Without `reference` the query set is searched against itself and each query is excluded from its own neighbours
/// (`ref_includes_query=True`). For each query, R = the number of reference rows with its label (minus itself); a
/// query with R = 0 is "lone" and left out of every metric. k follows [`RetrievalConfig::k`]: all reference rows
/// (minus one when searching the set against itself), the largest R + self over the query labels (`max_bin_count`),
/// or fixed. Queries are searched block by block ([`knn`]'s GEMM blocks) and each block is reduced into a
/// [`RetrievalState`] at once, so memory stays O(threads · 128 · Nr) whatever k.
///
/// # Errors
/// As [`knn`] (k above the candidates included); [`Error::Shape`] when labels and rows differ in length;
/// [`Error::Parameter`] for a K of `ks` that is 0; [`Error::Degenerate`] when every query is lone.
///
/// # Examples
/// ```
/// use losskit_metrics::{RetrievalConfig, retrieval_metrics};
/// let x = ndarray::array![[0.0], [0.1], [1.0], [1.2], [5.0]];
/// let y = ndarray::array![0_i64, 0, 1, 1, 2];
/// let r = retrieval_metrics(x.view(), y.view(), None, &RetrievalConfig::new())?;
/// assert_eq!((r.n_queries, r.n_lone, r.precision_at_1, r.map_at_r), (4, 1, 1.0, 1.0));
/// # Ok::<(), losskit_metrics::Error>(())
/// ```
///
/// # References
/// Musgrave, Belongie, Lim (2020), *A Metric Learning Reality Check*, ECCV, arXiv:2003.08505 (MAP@R).
pub fn retrieval_metrics(
    query: ArrayView2<'_, f64>,
    query_labels: ArrayView1<'_, i64>,
    reference: Option<(ArrayView2<'_, f64>, ArrayView1<'_, i64>)>,
    cfg: &RetrievalConfig,
) -> Result<RetrievalReport> {
    let same = reference.is_none();
    let (reference, reference_labels) = reference.unwrap_or((query, query_labels));
    check::shape("query_labels", query_labels.shape(), &[Some(query.nrows())])?;
    check::shape("reference_labels", reference_labels.shape(), &[Some(reference.nrows())])?;
    check::non_empty("query", query.nrows())?;
    check_embeddings(query, reference)?;
    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
    for &l in reference_labels {
        *counts.entry(l).or_default() += 1;
    }
    let self_count = same as usize;
    let relevant: Vec<usize> =
        query_labels.iter().map(|l| counts.get(l).copied().unwrap_or(0).saturating_sub(self_count)).collect();
    let k = match cfg.k {
        RetrievalK::All => reference.nrows() - self_count,
        RetrievalK::MaxBinCount => query_labels
            .iter()
            .map(|l| counts.get(l).copied().unwrap_or(0))
            .max()
            .unwrap_or(0)
            .saturating_sub(self_count),
        RetrievalK::Fixed(k) => k,
    };
    check_k(k, query.nrows(), reference.nrows(), same)?;
    if let Some(&bad) = cfg.ks.iter().find(|&&x| x == 0) {
        return Err(Error::Parameter { name: "ks", value: bad as f64, reason: "each K must be ≥ 1" });
    }
    let ks: Vec<usize> = cfg.ks.iter().copied().filter(|&x| x <= k).collect();
    let mut state = RetrievalState::new(k, ks)?;
    let index = Index::new(reference, cfg.distance);
    blocks(&index, query, k, same, |b, rows| {
        let n = rows.len();
        let labels = Array2::from_shape_fn((n, k), |(i, c)| reference_labels[rows[i][c].0]);
        state.update(query_labels.slice(s![b..b + n]), labels.view(), ArrayView1::from(&relevant[b..b + n]))
    })?;
    state.report(cfg.avg_of_avgs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn ties_go_to_the_smaller_index_and_self_is_skipped() {
        let x = array![[0.0], [1.0], [-1.0], [1.0]];
        let nn = knn(x.view(), x.view(), 3, Distance::Euclidean, true).unwrap();
        assert_eq!(nn.indices.row(0).to_vec(), vec![1, 2, 3]);
        assert_eq!(nn.indices.row(1).to_vec(), vec![3, 0, 2]);
        assert_eq!(nn.indices.row(3).to_vec(), vec![1, 0, 2]);
        let c = knn(x.view(), x.view(), 1, Distance::Cosine, false).unwrap();
        // Row 0 is zero: similarity 0 to every row, so distance 1 and the first index wins.
        assert_eq!((c.indices[[0, 0]], c.distances[[0, 0]]), (0, 1.0));
        assert_eq!(c.indices[[2, 0]], 2);
    }

    #[test]
    fn bad_k_and_shapes() {
        let x = array![[0.0], [1.0]];
        assert!(matches!(knn(x.view(), x.view(), 2, Distance::Euclidean, true), Err(Error::Parameter { .. })));
        assert!(matches!(knn(x.view(), x.view(), 0, Distance::Euclidean, false), Err(Error::Parameter { .. })));
        let q = array![[0.0, 1.0]];
        assert!(matches!(knn(q.view(), x.view(), 1, Distance::Euclidean, false), Err(Error::Shape { .. })));
        let nan = array![[f64::NAN]];
        assert!(matches!(knn(nan.view(), x.view(), 1, Distance::Euclidean, false), Err(Error::NonFinite { .. })));
        assert_eq!(utilization(x.view(), x.view()).unwrap(), 0.0);
        assert!("3".parse::<RetrievalK>().is_ok() && "0".parse::<RetrievalK>().is_err());
    }

    #[test]
    fn all_lone_is_degenerate() {
        let x = array![[0.0], [1.0]];
        let r = retrieval_metrics(x.view(), array![0, 1].view(), None, &RetrievalConfig::new().k(RetrievalK::Fixed(1)));
        assert!(matches!(r, Err(Error::Degenerate { .. })));
    }
}
