//! Exact k-nearest neighbours (Euclidean) by blocked brute force: GEMM candidates, exact re-ranking.
//!
//! Every sampler that looks at neighbourhoods (SMOTE and its variants, ADASYN, Tomek links, ENN, NearMiss) asks this
//! module. The search is exact and deterministic:
//!
//! 1. The data are scaled by a power of two (exact) so that every coordinate lies in [−1, 1], centred on their mean
//!    (which leaves distances unchanged and keeps the norms small), and stored in `f32`.
//! 2. Query rows are taken in tiles of 256 rows and the data in blocks; for each tile × block one GEMM
//!    (ndarray's `general_mat_mul`) gives `q·b`, so `‖q − b‖² ≈ ‖q‖² + ‖b‖² − 2 q·b` for a whole block at once.
//!    Memory is bounded by tile × block, never queries × data.
//! 3. That fast value carries a rounding error of at most `c·(‖q‖² + ‖b‖²)` with `c = (4D + 64)·2⁻²⁴` (a
//!    conservative bound on the `f32` GEMM, the centring and the conversion). Each query keeps every data row whose
//!    *lower* bound is at most the k-th smallest *upper* bound seen so far, so no row that can be among the true k
//!    nearest is ever dropped. The k smallest upper bounds are kept sorted at the front of the candidate list, so the
//!    bound tightens at every offer that improves it; rows beyond it are dropped in batches (the list stays about k
//!    rows long unless many rows are within the rounding error of the k-th distance).
//!    On x86-64 with AVX2 and FMA the tile × block product and the candidate filter are fused in one kernel
//!    (`KnnIndex::sweep_fused`): the data are stored once in panels of 16 rows (`[D][16]`), six queries at a time
//!    accumulate their 6 × 16 dot products in registers over the D features and compare them with each query's
//!    pre-filter threshold at once, so no tile × block matrix is written or read back. With AVX-512 a panel is one
//!    register and twelve queries run at a time. A self-search over all rows computes each pair once and offers it
//!    to both rows. The rounding bound of step 3
//!    holds for any summation order (with or without FMA), so the candidate sets keep their guarantee; the GEMM path
//!    remains for other CPUs and both are tested against the same oracle.
//! 4. The candidates are re-ranked by the squared distance computed directly in `f64`, `Σ (qⱼ − bⱼ)²`, and sorted by
//!    (distance, row index): **ties are broken by the lower data index**, as scikit-learn's brute-force search does
//!    with its stable argsort. The returned distances are these direct ones.
//!
//! The result depends only on the data, never on the tiling or the number of rayon threads (tiles run in parallel;
//! each query's answer is a function of exact distances and indices only).
//!
//! # Self-exclusion
//! [`kneighbors_self`] (and the samplers) exclude each query's **own row index**, not the first column of a `k + 1`
//! search as imbalanced-learn does (`kneighbors(X)[:, 1:]`). The two agree unless the data hold exact duplicate rows:
//! then scikit-learn may list the duplicate first and keep the point itself as a neighbour, while losskit always keeps
//! the duplicate (at distance 0) and drops the point itself.
//!
//! # Parity with scikit-learn
//! `NearestNeighbors` is exact too, so on data without distance ties the neighbour sets and their order are identical
//! (tested against fixtures). On ties, scikit-learn's order depends on the algorithm it picks (`kd_tree` for D ≤ 15,
//! brute force otherwise) and on GEMM rounding; losskit's is always (exact distance, index).

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2, s};
use rayon::prelude::*;

use crate::{Error, Result};

/// Query rows per tile (the unit of parallel work).
pub(crate) const QUERY_TILE: usize = 256;

/// The k nearest neighbours of each query row.
#[derive(Clone, Debug, PartialEq)]
pub struct Neighbors {
    /// `[M, k]`: row `i` lists the data rows nearest to query `i`, nearest first; ties by lower index.
    pub indices: Array2<usize>,
    /// `[M, k]`: the Euclidean distances matching `indices` (computed directly, not from the GEMM identity).
    pub distances: Array2<f64>,
}

/// The `k` nearest rows of `data` `[N, D]` to each row of `queries` `[M, D]` (Euclidean), as scikit-learn's
/// `NearestNeighbors(n_neighbors=k).fit(data).kneighbors(queries)`.
///
/// A query that is also a data row finds itself at distance 0 (nothing is excluded); use [`kneighbors_self`] for the
/// neighbours of the data rows among the others.
///
/// # Errors
/// [`Error::Parameter`] for `k = 0`; [`Error::Degenerate`] when `k > N`; [`Error::Empty`] / [`Error::Shape`] /
/// [`Error::NonFinite`] for empty data, `D = 0`, feature counts that differ, or NaN / infinite values.
///
/// # Examples
/// ```
/// let data = ndarray::array![[0.0], [1.0], [3.0], [7.0]];
/// let queries = ndarray::array![[2.9], [-5.0]];
/// let nn = losskit_samplers::knn::kneighbors(data.view(), queries.view(), 2)?;
/// assert_eq!(nn.indices, ndarray::array![[2, 1], [0, 1]]);
/// assert!((nn.distances[[0, 0]] - 0.1).abs() < 1e-12);
/// # Ok::<(), losskit_samplers::Error>(())
/// ```
pub fn kneighbors(data: ArrayView2<'_, f64>, queries: ArrayView2<'_, f64>, k: usize) -> Result<Neighbors> {
    check_data("data", data)?;
    check_data("queries", queries)?;
    if queries.ncols() != data.ncols() {
        return Err(Error::Shape {
            arg: "queries",
            expected: format!("[M, D] with D = {} features, as data", data.ncols()),
            got: queries.shape().to_vec(),
        });
    }
    let index = KnnIndex::new(data, Some(queries));
    index.search(&Queries::External(queries), k)
}

/// The `k` nearest **other** rows of `data` `[N, D]` to each of its rows (each row's own index is excluded), as
/// scikit-learn's `NearestNeighbors(n_neighbors=k).fit(data).kneighbors()` with no argument.
///
/// # Errors
/// [`Error::Parameter`] for `k = 0`; [`Error::Degenerate`] when `k ≥ N`; [`Error::Empty`] / [`Error::Shape`] /
/// [`Error::NonFinite`] for empty data, `D = 0` or NaN / infinite values.
///
/// # Examples
/// ```
/// let data = ndarray::array![[0.0, 0.0], [0.0, 1.0], [5.0, 5.0], [0.0, 2.5]];
/// let nn = losskit_samplers::knn::kneighbors_self(data.view(), 1)?;
/// assert_eq!(nn.indices.column(0).to_vec(), vec![1, 0, 3, 1]);
/// # Ok::<(), losskit_samplers::Error>(())
/// ```
pub fn kneighbors_self(data: ArrayView2<'_, f64>, k: usize) -> Result<Neighbors> {
    check_data("data", data)?;
    let index = KnnIndex::new(data, None);
    let rows: Vec<usize> = (0..data.nrows()).collect();
    index.search(&Queries::Rows { rows: &rows, exclude_self: true }, k)
}

fn check_data(arg: &'static str, x: ArrayView2<'_, f64>) -> Result<()> {
    let (n, d) = x.dim();
    losskit_tensor::check::non_empty(arg, n)?;
    if d == 0 {
        return Err(Error::Shape { arg, expected: "[N, D] with D ≥ 1 features".into(), got: vec![n, d] });
    }
    losskit_tensor::check::finite(arg, &x)
}

/// The queries of a search: rows of the indexed data (optionally excluding each row itself), or other points.
pub(crate) enum Queries<'q> {
    /// Rows of the indexed data, by index.
    Rows { rows: &'q [usize], exclude_self: bool },
    /// Points that are not (necessarily) in the data.
    External(ArrayView2<'q, f64>),
}

impl Queries<'_> {
    fn len(&self) -> usize {
        match self {
            Queries::Rows { rows, .. } => rows.len(),
            Queries::External(q) => q.nrows(),
        }
    }
}

/// A searchable copy of the data: scaled, centred, `f32`, with squared norms. Callers have validated `raw`.
pub(crate) struct KnnIndex<'a> {
    raw: ArrayView2<'a, f64>,
    /// Power of two with `max |x|·scale ≤ 1`.
    scale: f64,
    /// Mean of the scaled rows.
    mean: Vec<f64>,
    /// `(raw·scale − mean)` as `f32`, `[N, D]`, standard layout.
    centered: Array2<f32>,
    /// `‖centered row‖²` in f64.
    norms: Vec<f64>,
    /// `norms · (1 − 2c)` in f32, for the fast pre-filter.
    lower_norms: Vec<f32>,
    /// The relative error bound `c`.
    c: f64,
    /// The kernel: a fused one ([`KnnIndex::sweep_fused`], x86-64 with AVX2 and FMA, or AVX-512) or the GEMM path.
    kernel: Kernel,
    /// `centered` in panels of [`PANEL`] rows, `[⌈N/16⌉][D][16]` (rows past N are zeros); empty unless `fused`.
    panels: Vec<f32>,
    /// `lower_norms` padded to a whole panel with NaN (never passes the `≤` filter); empty unless `fused`.
    panel_ln: Vec<f32>,
}

/// The search state of one tile of rows in [`KnnIndex::search_all_pairs`].
struct Tile {
    states: Vec<RowState>,
    /// `states[r].thr`, padded to [`QUERY_TILE`] with −∞ (rows past N never take candidates).
    thr: Vec<f32>,
}

impl Tile {
    /// Copies the thresholds after offers made through `states` directly.
    fn sync(&mut self) {
        for (t, st) in self.thr.iter_mut().zip(&self.states) {
            *t = st.thr;
        }
    }
}

/// Assembles flat `[m·k]` results.
fn neighbors(indices: Vec<usize>, distances: Vec<f64>, m: usize, k: usize) -> Result<Neighbors> {
    let shape = (m, k);
    let indices = Array2::from_shape_vec(shape, indices)
        .map_err(|e| Error::Degenerate { what: format!("internal shape error: {e}") })?;
    let distances = Array2::from_shape_vec(shape, distances)
        .map_err(|e| Error::Degenerate { what: format!("internal shape error: {e}") })?;
    Ok(Neighbors { indices, distances })
}

/// Data rows per panel of the fused kernel (two AVX registers).
const PANEL: usize = 16;

/// Queries per call of the AVX-512 kernel: 12 accumulators, 1 panel register and the broadcasts, of 32 registers.
const GROUP_512: usize = 12;

/// Queries per call of the fused kernel: 6 × 2 accumulators + 2 panel registers + 1 broadcast = 15 of the 16 AVX
/// registers.
const GROUP: usize = 6;

/// The checks of `k` every neighbour search makes, on this CPU search or another backend's: `k ≥ 1`
/// ([`Error::Parameter`]) and at least `k` data rows to choose from, `k + 1` when each query excludes itself
/// ([`Error::Degenerate`]).
///
/// # Errors
/// As above.
pub fn check_k(k: usize, n: usize, exclude: bool) -> Result<()> {
    if k == 0 {
        return Err(Error::Parameter { name: "k", value: 0.0, reason: "the number of neighbours must be ≥ 1" });
    }
    if k + usize::from(exclude) > n {
        return Err(Error::Degenerate {
            what: format!(
                "{k} nearest neighbours{} need at least {} samples, got {n}",
                if exclude { " (excluding the sample itself)" } else { "" },
                k + usize::from(exclude)
            ),
        });
    }
    Ok(())
}

/// Which kernel computes the dot products and the candidate filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// A GEMM per tile × block, then a scan of the products (any CPU).
    Gemm,
    /// The fused AVX2 + FMA kernel: six queries × one panel of 16 rows in registers.
    Avx2,
    /// The fused AVX-512 kernel: twelve queries × one panel in registers, the filter as one mask compare.
    Avx512,
}

impl Kernel {
    /// The fastest kernel this CPU runs.
    pub(crate) fn best() -> Kernel {
        [Kernel::Avx512, Kernel::Avx2].into_iter().find(|k| k.available()).unwrap_or(Kernel::Gemm)
    }

    /// Whether this CPU runs the kernel.
    pub(crate) fn available(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            match self {
                Kernel::Gemm => true,
                Kernel::Avx2 => has!("avx2") && has!("fma"),
                Kernel::Avx512 => has!("avx512f") && has!("avx2") && has!("fma"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self == Kernel::Gemm
        }
    }

    fn fused(self) -> bool {
        self != Kernel::Gemm
    }
}

/// The candidate of one query: a data row with bounds on its squared distance (scaled units).
#[derive(Clone, Copy)]
struct Cand {
    /// Lower bound, rounded down to f32.
    lower: f32,
    /// Upper bound, rounded up to f32.
    upper: f32,
    idx: u32,
}

/// An f32 at or below `v`, within a few f32 ulps of it, branch-free: `v` is moved down by 2⁻²³ of its magnitude and
/// by 10⁻³⁸, then rounded to nearest, which moves it back up by at most half an ulp (2⁻²⁴ of the moved value's
/// magnitude, or half the subnormal spacing 2⁻¹⁵⁰ below f32's normal range). For v = a > 0 the result is at most
/// a·(1 − 2⁻²⁴), for v = −a at most −a·(1 + 2⁻²⁴ − 2⁻⁴⁷), so never above `v` (the f64 arithmetic's own rounding,
/// 2⁻⁵² of |v|, is far inside those margins). Cheaper than exact rounding toward −∞ (a conversion back, a compare
/// and a bit step per bound, the largest part of an offer), and a bound looser by an ulp or two changes no result:
/// the surviving candidates are re-ranked exactly. Beyond f32's range the result is ±`f32::MAX` or −∞ (still at or
/// below `v`).
fn down(v: f64) -> f32 {
    ((v - v.abs() * f64::from(f32::EPSILON) - 1e-38) as f32).min(f32::MAX)
}

/// An f32 at or above `v`, within a few f32 ulps of it (the mirror of [`down`]).
fn up(v: f64) -> f32 {
    ((v + v.abs() * f64::from(f32::EPSILON) + 1e-38) as f32).max(-f32::MAX)
}

/// Per-query search state within a tile.
struct RowState {
    cand: Vec<Cand>,
    /// k-th smallest upper bound among the candidates (∞ until there are k).
    bound: f64,
    cap: usize,
    /// Query squared norm (scaled, centred units).
    qn: f64,
    /// The pre-filter threshold on `lower_norm_j − 2 q·b_j`, in f32.
    thr: f32,
    /// The query's own data row, when it must be excluded.
    skip: Option<usize>,
}

impl RowState {
    fn new(qn: f64, skip: Option<usize>, k: usize) -> Self {
        // Exactly `cap` slots (and exactly the doubled cap in `prune`): the all-pairs search keeps every row's state
        // alive at once, so Vec's own doubling would cost memory there.
        let cap = 2 * k + 8;
        RowState { cand: Vec::with_capacity(cap), bound: f64::INFINITY, cap, qn, thr: f32::INFINITY, skip }
    }
}

/// Absolute slack for underflow in the f32 products (scaled data lie in [−2, 2]).
const ABS_SLACK: f64 = 1e-30;

impl<'a> KnnIndex<'a> {
    /// Builds the index over `raw` `[N, D]`; the scale also covers `extra` (external queries) so that no scaled
    /// value exceeds 1 in magnitude.
    pub(crate) fn new(raw: ArrayView2<'a, f64>, extra: Option<ArrayView2<'_, f64>>) -> Self {
        Self::build(raw, extra, Kernel::best())
    }

    /// [`KnnIndex::new`] choosing the kernel; one this CPU lacks falls back to the best it has.
    pub(crate) fn build(raw: ArrayView2<'a, f64>, extra: Option<ArrayView2<'_, f64>>, kernel: Kernel) -> Self {
        let kernel = if kernel.available() { kernel } else { Kernel::best() };
        let fused = kernel.fused();
        let (n, d) = raw.dim();
        let mut max_abs = raw.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        if let Some(e) = extra {
            max_abs = e.iter().fold(max_abs, |m, v| m.max(v.abs()));
        }
        let scale = power_of_two_scale(max_abs);
        let mut mean = vec![0.0; d];
        for row in raw.rows() {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += v * scale;
            }
        }
        let inv = 1.0 / n.max(1) as f64;
        mean.iter_mut().for_each(|m| *m *= inv);
        let mut centered = Array2::<f32>::zeros((n, d));
        let mut norms = vec![0.0; n];
        centered.axis_iter_mut(ndarray::Axis(0)).into_par_iter().zip(norms.par_iter_mut()).enumerate().for_each(
            |(i, (mut out, norm))| {
                let mut acc = 0.0;
                for ((o, v), m) in out.iter_mut().zip(raw.row(i)).zip(&mean) {
                    let c = (v * scale - m) as f32;
                    *o = c;
                    acc += f64::from(c) * f64::from(c);
                }
                *norm = acc;
            },
        );
        // Error of ‖q‖² + ‖b‖² − 2q·b (f32 GEMM over D terms, f32 conversion, centring, the f32 pre-filter) and of
        // the direct f64 distance, relative to ‖q‖² + ‖b‖²: conservatively (4D + 64)·u with u = 2⁻²⁴.
        let c = (4.0 * d as f64 + 64.0) * f64::from(f32::EPSILON) * 0.5;
        let lower_norms: Vec<f32> = norms.iter().map(|&b| (b * (1.0 - 2.0 * c)) as f32).collect();
        let (mut panels, mut panel_ln) = (Vec::new(), Vec::new());
        if fused && d > 0 {
            let n_panels = n.div_ceil(PANEL);
            panels = vec![0.0_f32; n_panels * d * PANEL];
            panels.par_chunks_mut(d * PANEL).enumerate().for_each(|(p, panel)| {
                for l in 0..PANEL.min(n - p * PANEL) {
                    for (t, &v) in centered.row(p * PANEL + l).iter().enumerate() {
                        panel[t * PANEL + l] = v;
                    }
                }
            });
            panel_ln = lower_norms.clone();
            panel_ln.resize(n_panels * PANEL, f32::NAN);
        }
        KnnIndex { raw, scale, mean, centered, norms, lower_norms, c, kernel, panels, panel_ln }
    }

    fn n(&self) -> usize {
        self.raw.nrows()
    }

    /// The `k` nearest data rows of each query.
    ///
    /// # Errors
    /// [`Error::Parameter`] for `k = 0`, [`Error::Degenerate`] when there are fewer than `k` data rows to choose
    /// from (`k + 1` when excluding self).
    pub(crate) fn search(&self, queries: &Queries<'_>, k: usize) -> Result<Neighbors> {
        losskit_tensor::pool::on_worker(|| {
            let n = self.n();
            let exclude = matches!(queries, Queries::Rows { exclude_self: true, .. });
            check_k(k, n, exclude)?;
            if n > u32::MAX as usize {
                return Err(Error::Degenerate { what: format!("nearest neighbours: {n} samples exceed 2³² − 1") });
            }
            let m = queries.len();
            #[cfg(target_arch = "x86_64")]
            if let Queries::Rows { rows, exclude_self: true } = queries
                && self.kernel.fused()
                && m == n
                && m > QUERY_TILE
                && rows.iter().enumerate().all(|(i, &r)| i == r)
            {
                // SAFETY: a fused kernel is chosen only when the CPU has AVX2 and FMA (and AVX-512F for its own).
                let (indices, distances) = unsafe { self.search_all_pairs(queries, k) };
                return neighbors(indices, distances, m, k);
            }
            let mut indices = vec![0usize; m * k];
            let mut distances = vec![0.0f64; m * k];
            indices.par_chunks_mut(QUERY_TILE * k).zip(distances.par_chunks_mut(QUERY_TILE * k)).enumerate().for_each(
                |(t, (idx, dist))| {
                    let q0 = t * QUERY_TILE;
                    let q1 = (q0 + QUERY_TILE).min(m);
                    self.tile(queries, q0, q1, k, idx, dist);
                },
            );
            neighbors(indices, distances, m, k)
        })
    }

    /// Every row against every other (`Queries::Rows` over all rows, own row excluded), each pair computed once.
    ///
    /// The rows are cut into tiles of [`QUERY_TILE`]; tile pairs (a, b), a < b, run in rounds of a round-robin
    /// schedule, so the pairs of one round touch disjoint tiles and run in parallel. Each pair's 6 × 16 dot products
    /// are offered both ways: to row i's candidates (data row j) and to row j's (data row i), each through its own
    /// threshold; a tile against itself runs as the one-way sweep. Offers arrive in another order than in
    /// [`KnnIndex::sweep_fused`], which changes only how fast the thresholds tighten, never the (exact) result.
    ///
    /// # Safety
    /// The CPU must support the fused kernel (`self.kernel`).
    #[cfg(target_arch = "x86_64")]
    unsafe fn search_all_pairs(&self, queries: &Queries<'_>, k: usize) -> (Vec<usize>, Vec<f64>) {
        use std::sync::Mutex;
        let n = self.n();
        let d = self.centered.ncols();
        let n_tiles = n.div_ceil(QUERY_TILE);
        let flat = self.centered.as_slice().unwrap_or(&[]);
        debug_assert_eq!(flat.len(), n * d);
        let tiles: Vec<Mutex<Tile>> = (0..n_tiles)
            .map(|t| {
                let rows = (t * QUERY_TILE)..((t + 1) * QUERY_TILE).min(n);
                let states: Vec<RowState> = rows.clone().map(|i| RowState::new(self.norms[i], Some(i), k)).collect();
                let mut thr = vec![f32::NEG_INFINITY; QUERY_TILE];
                thr[..states.len()].fill(f32::INFINITY);
                Mutex::new(Tile { states, thr })
            })
            .collect();
        let panels_per_tile = QUERY_TILE / PANEL;
        let n_panels = self.panel_ln.len() / PANEL;
        let lock = |t: usize| tiles[t].lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Each tile against itself: the one-way sweep over its own panels.
        (0..n_tiles).into_par_iter().for_each(|a| {
            let mut ta = lock(a);
            let (i0, tq) = (a * QUERY_TILE, ta.states.len());
            let q = &flat[i0 * d..(i0 + tq) * d];
            let (p0, p1) = (a * panels_per_tile, ((a + 1) * panels_per_tile).min(n_panels));
            // SAFETY: the fused kernel's CPU features (this function's contract); `q` holds the tile's rows.
            unsafe { self.one_way(q, &mut ta.states, p0, p1, k) };
            ta.sync();
        });
        // Round-robin (circle method) over an even number of slots; slot n_tiles is a bye when n_tiles is odd.
        let slots = n_tiles + n_tiles % 2;
        for round in 0..slots - 1 {
            let pairs: Vec<(usize, usize)> = (0..slots / 2)
                .map(|s| {
                    let at = |pos: usize| if pos == 0 { slots - 1 } else { (round + pos - 1) % (slots - 1) };
                    let (x, y) = (at(s), at(slots - 1 - s));
                    (x.min(y), x.max(y))
                })
                .filter(|&(_, b)| b < n_tiles)
                .collect();
            pairs.into_par_iter().for_each(|(a, b)| {
                let (mut ta, mut tb) = (lock(a), lock(b));
                let (i0, tq) = (a * QUERY_TILE, ta.states.len());
                let q = &flat[i0 * d..(i0 + tq) * d];
                let (p0, p1) = (b * panels_per_tile, ((b + 1) * panels_per_tile).min(n_panels));
                // SAFETY: the fused kernel's CPU features; `q` holds tile a's rows; panels p0..p1 are tile b's.
                unsafe { self.two_way(q, i0, &mut ta.states, &mut tb, p0, p1, k) };
                ta.sync();
            });
        }
        let mut indices = vec![0usize; n * k];
        let mut distances = vec![0.0f64; n * k];
        let tiles: Vec<Tile> =
            tiles.into_iter().map(|t| t.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner)).collect();
        indices
            .par_chunks_mut(QUERY_TILE * k)
            .zip(distances.par_chunks_mut(QUERY_TILE * k))
            .zip(tiles)
            .enumerate()
            .for_each(|(t, ((idx, dist), mut tile))| {
                for (r, st) in tile.states.iter_mut().enumerate() {
                    let (ix, ds) = (&mut idx[r * k..(r + 1) * k], &mut dist[r * k..(r + 1) * k]);
                    self.finish(queries, t * QUERY_TILE + r, st, k, ix, ds);
                }
            });
        (indices, distances)
    }

    /// `R` rows of tile a (rows `r0..r0 + R` of `q`, global index `i0 + r0 + r`) against tile b's panels `p0..p1`:
    /// as [`KnnIndex::kernel`] for the rows of a, and the same dot products offered the other way to tile b's rows
    /// (`lower_norm_i − 2 q_i·b_j ≤ thr_j`, with b's thresholds kept in `tb.thr`).
    ///
    /// # Safety
    /// AVX2 and FMA; `q` holds at least `r0 + R` rows of `D`; `states.len() == R`; panels `p0..p1` are tile b's.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn kernel_pair<const R: usize>(
        &self,
        q: &[f32],
        r0: usize,
        i0: usize,
        states: &mut [RowState],
        tb: &mut Tile,
        p0: usize,
        p1: usize,
        k: usize,
    ) {
        use std::arch::x86_64::*;
        let d = self.centered.ncols();
        debug_assert!(q.len() >= (r0 + R) * d && states.len() == R && p1 * PANEL <= self.panel_ln.len());
        let qp = q.as_ptr();
        let two = _mm256_set1_ps(2.0);
        for p in p0..p1 {
            let local = (p - p0) * PANEL;
            // SAFETY: as `kernel`; tb.thr has QUERY_TILE ≥ local + 16 entries.
            unsafe {
                let base = self.panels.as_ptr().add(p * d * PANEL);
                let mut acc = [[_mm256_setzero_ps(); 2]; R];
                for t in 0..d {
                    let b0 = _mm256_loadu_ps(base.add(t * PANEL));
                    let b1 = _mm256_loadu_ps(base.add(t * PANEL + 8));
                    for (r, a) in acc.iter_mut().enumerate() {
                        let qv = _mm256_broadcast_ss(&*qp.add((r0 + r) * d + t));
                        a[0] = _mm256_fmadd_ps(qv, b0, a[0]);
                        a[1] = _mm256_fmadd_ps(qv, b1, a[1]);
                    }
                }
                let ln0 = _mm256_loadu_ps(self.panel_ln.as_ptr().add(p * PANEL));
                let ln1 = _mm256_loadu_ps(self.panel_ln.as_ptr().add(p * PANEL + 8));
                for (r, (a, st)) in acc.iter().zip(states.iter_mut()).enumerate() {
                    let i = i0 + r0 + r;
                    // Row i's candidates among tile b's rows.
                    let thr = _mm256_set1_ps(st.thr);
                    let m0 = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_LE_OQ>(_mm256_fnmadd_ps(two, a[0], ln0), thr));
                    let m1 = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_LE_OQ>(_mm256_fnmadd_ps(two, a[1], ln1), thr));
                    let row_bits = (m0 as u32) | ((m1 as u32) << 8);
                    // Tile b's rows' candidates: row i, against each one's threshold.
                    let li = _mm256_set1_ps(self.lower_norms[i]);
                    let t0 = _mm256_loadu_ps(tb.thr.as_ptr().add(local));
                    let t1 = _mm256_loadu_ps(tb.thr.as_ptr().add(local + 8));
                    let c0 = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_LE_OQ>(_mm256_fnmadd_ps(two, a[0], li), t0));
                    let c1 = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_LE_OQ>(_mm256_fnmadd_ps(two, a[1], li), t1));
                    let col_bits = (c0 as u32) | ((c1 as u32) << 8);
                    if (row_bits | col_bits) != 0 {
                        let mut g = [0.0_f32; PANEL];
                        _mm256_storeu_ps(g.as_mut_ptr(), a[0]);
                        _mm256_storeu_ps(g.as_mut_ptr().add(8), a[1]);
                        self.offer_bits(st, row_bits, p * PANEL, &g, k);
                        self.offer_back(tb, col_bits, local, i, &g, k);
                    }
                }
            }
        }
    }

    /// Data columns per GEMM block: keeps each GEMM small enough for matrixmultiply to run it on the calling thread
    /// (rayon already parallelises over tiles), and at least 256 wide.
    fn block(&self) -> usize {
        let d = self.centered.ncols().max(1);
        (32_000 / d).saturating_sub(QUERY_TILE).clamp(256, 4096)
    }

    fn tile(&self, queries: &Queries<'_>, q0: usize, q1: usize, k: usize, out_idx: &mut [usize], out_dist: &mut [f64]) {
        let n = self.n();
        let d = self.centered.ncols();
        let tq = q1 - q0;
        // The tile's queries, centred and scaled like the data.
        let mut qb = Array2::<f32>::zeros((tq, d));
        let mut states: Vec<RowState> = Vec::with_capacity(tq);
        for r in 0..tq {
            let mut qn = 0.0;
            let skip = match queries {
                Queries::Rows { rows, exclude_self } => {
                    let i = rows[q0 + r];
                    qb.row_mut(r).assign(&self.centered.row(i));
                    qn = self.norms[i];
                    exclude_self.then_some(i)
                }
                Queries::External(q) => {
                    for ((o, v), mu) in qb.row_mut(r).iter_mut().zip(q.row(q0 + r)).zip(&self.mean) {
                        let c = (v * self.scale - mu) as f32;
                        *o = c;
                        qn += f64::from(c) * f64::from(c);
                    }
                    None
                }
            };
            states.push(RowState::new(qn, skip, k));
        }
        #[cfg(target_arch = "x86_64")]
        if self.kernel.fused()
            && let Some(q) = qb.as_slice()
        {
            // SAFETY: a fused kernel is chosen only when the CPU has AVX2 and FMA (and AVX-512F for its own); `q`
            // holds the tile's `tq` rows of `d`.
            unsafe { self.sweep_fused(q, &mut states, k) };
            for (r, st) in states.iter_mut().enumerate() {
                let (idx, dist) = (&mut out_idx[r * k..(r + 1) * k], &mut out_dist[r * k..(r + 1) * k]);
                self.finish(queries, q0 + r, st, k, idx, dist);
            }
            return;
        }
        let block = self.block().min(n);
        let mut g = Array2::<f32>::zeros((tq, block));
        let mut j0 = 0;
        while j0 < n {
            let j1 = (j0 + block).min(n);
            let mut gv = g.slice_mut(s![.., ..j1 - j0]);
            general_mat_mul(1.0_f32, &qb, &self.centered.slice(s![j0..j1, ..]).t(), 0.0_f32, &mut gv);
            for (r, st) in states.iter_mut().enumerate() {
                let row = gv.row(r);
                match row.as_slice() {
                    Some(gr) => self.scan(st, gr, j0, k),
                    None => {
                        let owned: Vec<f32> = row.to_vec(); // ok: rows of a column slice are contiguous; fallback
                        self.scan(st, &owned, j0, k);
                    }
                }
            }
            j0 = j1;
        }
        for (r, st) in states.iter_mut().enumerate() {
            self.finish(queries, q0 + r, st, k, &mut out_idx[r * k..(r + 1) * k], &mut out_dist[r * k..(r + 1) * k]);
        }
    }

    /// The fused candidate sweep over all data for the tile's queries `q` (`[tq, D]`, row-major): the data are taken
    /// in blocks of panels that stay in L2, and within a block six queries at a time.
    ///
    /// # Safety
    /// The CPU must support the fused kernel (`self.kernel`), and `q.len()` must be `states.len() · D`.
    #[cfg(target_arch = "x86_64")]
    unsafe fn sweep_fused(&self, q: &[f32], states: &mut [RowState], k: usize) {
        let d = self.centered.ncols();
        let n_panels = self.panel_ln.len() / PANEL;
        let tq = states.len();
        debug_assert_eq!(q.len(), tq * d);
        // About 128 KiB of panels per block.
        let block = (32_768 / (PANEL * d)).max(1);
        let mut p0 = 0;
        while p0 < n_panels {
            let p1 = (p0 + block).min(n_panels);
            // SAFETY: as this function's contract.
            unsafe { self.one_way(q, states, p0, p1, k) };
            p0 = p1;
        }
    }

    /// `R` queries (rows `r0..r0 + R` of `q`) against panels `p0..p1`: dot products in registers, then the
    /// pre-filter `lower_norm_j − 2 q·b_j ≤ thr` on 16 rows at once; rows that pass are offered (rechecked one by
    /// one against the threshold as it tightens, exactly as the GEMM path's scan does).
    ///
    /// # Safety
    /// AVX2 and FMA; `q` holds at least `r0 + R` rows of `D`; `states.len() == R`; `p1 ≤` the number of panels.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn kernel<const R: usize>(
        &self,
        q: &[f32],
        r0: usize,
        states: &mut [RowState],
        p0: usize,
        p1: usize,
        k: usize,
    ) {
        use std::arch::x86_64::*;
        let d = self.centered.ncols();
        debug_assert!(q.len() >= (r0 + R) * d && states.len() == R && p1 * PANEL <= self.panel_ln.len());
        let qp = q.as_ptr();
        let two = _mm256_set1_ps(2.0);
        for p in p0..p1 {
            // SAFETY: panel p spans panels[p·D·16 .. (p + 1)·D·16] and p < the number of panels; the query reads
            // stay within rows r0..r0 + R of q (checked by the caller's contract).
            unsafe {
                let base = self.panels.as_ptr().add(p * d * PANEL);
                let mut acc = [[_mm256_setzero_ps(); 2]; R];
                for t in 0..d {
                    let b0 = _mm256_loadu_ps(base.add(t * PANEL));
                    let b1 = _mm256_loadu_ps(base.add(t * PANEL + 8));
                    for (r, a) in acc.iter_mut().enumerate() {
                        let qv = _mm256_broadcast_ss(&*qp.add((r0 + r) * d + t));
                        a[0] = _mm256_fmadd_ps(qv, b0, a[0]);
                        a[1] = _mm256_fmadd_ps(qv, b1, a[1]);
                    }
                }
                let ln0 = _mm256_loadu_ps(self.panel_ln.as_ptr().add(p * PANEL));
                let ln1 = _mm256_loadu_ps(self.panel_ln.as_ptr().add(p * PANEL + 8));
                for (a, st) in acc.iter().zip(states.iter_mut()) {
                    let thr = _mm256_set1_ps(st.thr);
                    // ln − 2g: 2g is exact, so one rounding, as the scalar recheck below.
                    let m0 = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_LE_OQ>(_mm256_fnmadd_ps(two, a[0], ln0), thr));
                    let m1 = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_LE_OQ>(_mm256_fnmadd_ps(two, a[1], ln1), thr));
                    let bits = (m0 as u32) | ((m1 as u32) << 8);
                    if bits != 0 {
                        let mut g = [0.0_f32; PANEL];
                        _mm256_storeu_ps(g.as_mut_ptr(), a[0]);
                        _mm256_storeu_ps(g.as_mut_ptr().add(8), a[1]);
                        self.offer_bits(st, bits, p * PANEL, &g, k);
                    }
                }
            }
        }
    }

    /// All rows of `q` (`states.len()` queries) against panels `p0..p1`, one way (each query's own candidates), in
    /// register groups of the chosen kernel.
    ///
    /// # Safety
    /// The CPU must support `self.kernel` (a fused one); `q` holds `states.len()` rows of `D`; `p1 ≤` the number of
    /// panels.
    #[cfg(target_arch = "x86_64")]
    unsafe fn one_way(&self, q: &[f32], states: &mut [RowState], p0: usize, p1: usize, k: usize) {
        let tq = states.len();
        let mut r0 = 0;
        while r0 < tq {
            let left = tq - r0;
            // SAFETY: the CPU features of the kernel called (this function's contract); rows r0..r0 + r exist.
            let r = unsafe {
                match self.kernel {
                    Kernel::Avx512 if left >= GROUP_512 => {
                        self.kernel512::<GROUP_512>(q, r0, &mut states[r0..r0 + GROUP_512], p0, p1, k);
                        GROUP_512
                    }
                    Kernel::Avx512 if left >= 4 => {
                        self.kernel512::<4>(q, r0, &mut states[r0..r0 + 4], p0, p1, k);
                        4
                    }
                    Kernel::Avx512 => {
                        self.kernel512::<1>(q, r0, &mut states[r0..r0 + 1], p0, p1, k);
                        1
                    }
                    _ if left >= GROUP => {
                        self.kernel::<GROUP>(q, r0, &mut states[r0..r0 + GROUP], p0, p1, k);
                        GROUP
                    }
                    _ => {
                        self.kernel::<1>(q, r0, &mut states[r0..r0 + 1], p0, p1, k);
                        1
                    }
                }
            };
            r0 += r;
        }
    }

    /// All rows of tile a (`q`, global index of its first row `i0`) against tile b's panels `p0..p1`, both ways (see
    /// [`KnnIndex::kernel_pair`]), in register groups of the chosen kernel.
    ///
    /// # Safety
    /// As [`KnnIndex::one_way`]; panels `p0..p1` are tile b's.
    #[cfg(target_arch = "x86_64")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn two_way(
        &self,
        q: &[f32],
        i0: usize,
        states: &mut [RowState],
        tb: &mut Tile,
        p0: usize,
        p1: usize,
        k: usize,
    ) {
        let tq = states.len();
        let mut r0 = 0;
        while r0 < tq {
            let left = tq - r0;
            // SAFETY: as `one_way`.
            let r = unsafe {
                match self.kernel {
                    Kernel::Avx512 if left >= GROUP_512 => {
                        self.kernel_pair512::<GROUP_512>(q, r0, i0, &mut states[r0..r0 + GROUP_512], tb, p0, p1, k);
                        GROUP_512
                    }
                    Kernel::Avx512 if left >= 4 => {
                        self.kernel_pair512::<4>(q, r0, i0, &mut states[r0..r0 + 4], tb, p0, p1, k);
                        4
                    }
                    Kernel::Avx512 => {
                        self.kernel_pair512::<1>(q, r0, i0, &mut states[r0..r0 + 1], tb, p0, p1, k);
                        1
                    }
                    _ if left >= GROUP => {
                        self.kernel_pair::<GROUP>(q, r0, i0, &mut states[r0..r0 + GROUP], tb, p0, p1, k);
                        GROUP
                    }
                    _ => {
                        self.kernel_pair::<1>(q, r0, i0, &mut states[r0..r0 + 1], tb, p0, p1, k);
                        1
                    }
                }
            };
            r0 += r;
        }
    }

    /// [`KnnIndex::kernel`] with AVX-512: one panel of 16 rows is one register, so `R` queries need `R`
    /// accumulators (up to [`GROUP_512`] of the 32 registers) and the filter is one masked compare per query. The
    /// dot products are summed in the same order as the AVX2 kernel's.
    ///
    /// # Safety
    /// AVX-512F; as [`KnnIndex::kernel`] otherwise.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn kernel512<const R: usize>(
        &self,
        q: &[f32],
        r0: usize,
        states: &mut [RowState],
        p0: usize,
        p1: usize,
        k: usize,
    ) {
        use std::arch::x86_64::*;
        let d = self.centered.ncols();
        debug_assert!(q.len() >= (r0 + R) * d && states.len() == R && p1 * PANEL <= self.panel_ln.len());
        let qp = q.as_ptr();
        let two = _mm512_set1_ps(2.0);
        for p in p0..p1 {
            // SAFETY: as `kernel`: panel p and rows r0..r0 + R of q are in bounds.
            unsafe {
                let acc = self.dots512::<R>(qp.add(r0 * d), d, p);
                let ln = _mm512_loadu_ps(self.panel_ln.as_ptr().add(p * PANEL));
                for (a, st) in acc.iter().zip(states.iter_mut()) {
                    let thr = _mm512_set1_ps(st.thr);
                    let bits = _mm512_cmp_ps_mask::<_CMP_LE_OQ>(_mm512_fnmadd_ps(two, *a, ln), thr) as u32;
                    if bits != 0 {
                        let mut g = [0.0_f32; PANEL];
                        _mm512_storeu_ps(g.as_mut_ptr(), *a);
                        self.offer_bits(st, bits, p * PANEL, &g, k);
                    }
                }
            }
        }
    }

    /// [`KnnIndex::kernel_pair`] with AVX-512 (see [`KnnIndex::kernel512`]).
    ///
    /// # Safety
    /// AVX-512F; as [`KnnIndex::kernel_pair`] otherwise.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    unsafe fn kernel_pair512<const R: usize>(
        &self,
        q: &[f32],
        r0: usize,
        i0: usize,
        states: &mut [RowState],
        tb: &mut Tile,
        p0: usize,
        p1: usize,
        k: usize,
    ) {
        use std::arch::x86_64::*;
        let d = self.centered.ncols();
        debug_assert!(q.len() >= (r0 + R) * d && states.len() == R && p1 * PANEL <= self.panel_ln.len());
        let qp = q.as_ptr();
        let two = _mm512_set1_ps(2.0);
        for p in p0..p1 {
            let local = (p - p0) * PANEL;
            // SAFETY: as `kernel_pair`; tb.thr has QUERY_TILE ≥ local + 16 entries.
            unsafe {
                let acc = self.dots512::<R>(qp.add(r0 * d), d, p);
                let ln = _mm512_loadu_ps(self.panel_ln.as_ptr().add(p * PANEL));
                for (r, (a, st)) in acc.iter().zip(states.iter_mut()).enumerate() {
                    let i = i0 + r0 + r;
                    let thr = _mm512_set1_ps(st.thr);
                    let row_bits = _mm512_cmp_ps_mask::<_CMP_LE_OQ>(_mm512_fnmadd_ps(two, *a, ln), thr) as u32;
                    let li = _mm512_set1_ps(self.lower_norms[i]);
                    let tj = _mm512_loadu_ps(tb.thr.as_ptr().add(local));
                    let col_bits = _mm512_cmp_ps_mask::<_CMP_LE_OQ>(_mm512_fnmadd_ps(two, *a, li), tj) as u32;
                    if (row_bits | col_bits) != 0 {
                        let mut g = [0.0_f32; PANEL];
                        _mm512_storeu_ps(g.as_mut_ptr(), *a);
                        self.offer_bits(st, row_bits, p * PANEL, &g, k);
                        self.offer_back(tb, col_bits, local, i, &g, k);
                    }
                }
            }
        }
    }

    /// The `R × 16` dot products of `R` query rows (at `qp`, `D` apart) with panel `p`, summed over the features in
    /// order.
    ///
    /// # Safety
    /// AVX-512F; `qp` points at `R` rows of `D` floats; `p` is a panel.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn dots512<const R: usize>(&self, qp: *const f32, d: usize, p: usize) -> [std::arch::x86_64::__m512; R] {
        use std::arch::x86_64::*;
        // SAFETY: the caller's contract.
        unsafe {
            let base = self.panels.as_ptr().add(p * d * PANEL);
            let mut acc = [_mm512_setzero_ps(); R];
            for t in 0..d {
                let b = _mm512_loadu_ps(base.add(t * PANEL));
                for (r, a) in acc.iter_mut().enumerate() {
                    *a = _mm512_fmadd_ps(_mm512_set1_ps(*qp.add(r * d + t)), b, *a);
                }
            }
            acc
        }
    }

    /// Offers the panel rows `j0 + l` for the set bits `l` of `bits` to one query (its dot products in `g`),
    /// each rechecked against the query's threshold as it tightens.
    #[inline]
    fn offer_bits(&self, st: &mut RowState, mut bits: u32, j0: usize, g: &[f32; PANEL], k: usize) {
        while bits != 0 {
            let l = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let j = j0 + l;
            if self.panel_ln[j] - 2.0 * g[l] <= st.thr {
                self.offer(st, j, g[l], k);
            }
        }
    }

    /// Offers row `i` to tile b's rows `local + l` for the set bits `l` of `bits` (dot products in `g`), each
    /// rechecked against that row's threshold, which `tb.thr` then mirrors.
    #[inline]
    fn offer_back(&self, tb: &mut Tile, mut bits: u32, local: usize, i: usize, g: &[f32; PANEL], k: usize) {
        while bits != 0 {
            let l = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let sj = &mut tb.states[local + l];
            if self.lower_norms[i] - 2.0 * g[l] <= sj.thr {
                self.offer(sj, i, g[l], k);
                tb.thr[local + l] = sj.thr;
            }
        }
    }

    /// Scans one query's GEMM row over the data block starting at `j0` (with AVX2 where the CPU has it: the filter
    /// is most of the work besides the GEMM, and the crate is built for baseline x86-64).
    fn scan(&self, st: &mut RowState, g: &[f32], j0: usize, k: usize) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above); `scan_avx2` only enables it for `scan_body`.
            unsafe { self.scan_avx2(st, g, j0, k) };
            return;
        }
        self.scan_body(st, g, j0, k);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn scan_avx2(&self, st: &mut RowState, g: &[f32], j0: usize, k: usize) {
        self.scan_body(st, g, j0, k);
    }

    #[inline(always)]
    fn scan_body(&self, st: &mut RowState, g: &[f32], j0: usize, k: usize) {
        let ln = &self.lower_norms[j0..j0 + g.len()];
        const W: usize = 32;
        let mut start = 0;
        for (gc, lc) in g.chunks(W).zip(ln.chunks(W)) {
            // Branch-free test of a chunk (vectorises); most chunks hold no candidate once the bound is set.
            let thr = st.thr;
            let hit = gc.iter().zip(lc).fold(false, |h, (&gj, &lj)| h | (lj - 2.0 * gj <= thr));
            if hit {
                for (t, &gj) in gc.iter().enumerate() {
                    if ln[start + t] - 2.0 * gj <= st.thr {
                        self.offer(st, j0 + start + t, gj, k);
                    }
                }
            }
            start += gc.len();
        }
    }

    /// Adds data row `j` (with GEMM value `gj`) to the query's candidates when its lower bound allows.
    ///
    /// The first `min(k, len)` candidates are kept sorted by upper bound and are the `k` smallest upper bounds seen,
    /// so the bound (the k-th smallest) and the pre-filter threshold tighten at every offer that improves them, not
    /// only when the list is pruned: fewer rows pass the filter afterwards.
    fn offer(&self, st: &mut RowState, j: usize, gj: f32, k: usize) {
        if st.skip == Some(j) {
            return;
        }
        let bn = self.norms[j];
        let approx = st.qn + bn - 2.0 * f64::from(gj);
        let delta = self.c * (st.qn + bn) + ABS_SLACK;
        let lower = down(approx - delta);
        if f64::from(lower) > st.bound {
            return;
        }
        let cand = Cand { lower, upper: up(approx + delta), idx: j as u32 };
        let len = st.cand.len();
        // Insertion into the sorted front by hand: k is small, and a library insert costs a memmove call.
        let sorted_insert = |front: &mut [Cand], mut i: usize| {
            while i > 0 && front[i - 1].upper > cand.upper {
                front[i] = front[i - 1];
                i -= 1;
            }
            front[i] = cand;
        };
        if len < k {
            st.cand.push(cand);
            sorted_insert(&mut st.cand, len);
            if len + 1 == k {
                self.tighten(st, k);
            }
        } else if cand.upper < st.cand[k - 1].upper {
            let evicted = st.cand[k - 1];
            sorted_insert(&mut st.cand[..k], k - 1);
            st.cand.push(evicted);
            self.tighten(st, k);
        } else {
            st.cand.push(cand);
        }
        if st.cand.len() >= st.cap {
            self.prune(st, k);
        }
    }

    /// Sets the bound to the k-th smallest upper bound (`cand[k − 1]`, see [`KnnIndex::offer`]) and the pre-filter
    /// threshold from it.
    fn tighten(&self, st: &mut RowState, k: usize) {
        let bound = f64::from(st.cand[k - 1].upper);
        st.bound = bound;
        // Pre-filter threshold on ln_j − 2g = bn(1 − 2c) − 2g: looser than `lower ≤ bound` by c(qn + bn), which
        // covers its own f32 rounding.
        st.thr = (bound - st.qn * (1.0 - 2.0 * self.c) + ABS_SLACK) as f32;
    }

    /// Drops the candidates whose lower bound exceeds the bound (the k-th smallest upper bound); the sorted first
    /// `k` always stay, in order.
    fn prune(&self, st: &mut RowState, k: usize) {
        if st.cand.len() >= k {
            let bound = st.bound;
            st.cand.retain(|c| f64::from(c.lower) <= bound);
            if st.cand.len() * 2 > st.cap {
                st.cap *= 2;
                st.cand.reserve_exact(st.cap - st.cand.len());
            }
        }
    }

    /// Re-ranks the candidates by their direct distance and writes the k nearest.
    fn finish(
        &self,
        queries: &Queries<'_>,
        q: usize,
        st: &mut RowState,
        k: usize,
        idx: &mut [usize],
        dist: &mut [f64],
    ) {
        self.prune(st, k);
        let scale = self.scale;
        let exact = |j: usize| -> f64 {
            let b = self.raw.row(j);
            let sq = |qv: ndarray::ArrayView1<'_, f64>| {
                qv.iter().zip(b.iter()).map(|(x, y)| (x * scale - y * scale).powi(2)).sum::<f64>()
            };
            match queries {
                Queries::Rows { rows, .. } => sq(self.raw.row(rows[q])),
                Queries::External(qs) => sq(qs.row(q)),
            }
        };
        let mut ranked: Vec<(f64, usize)> = st.cand.iter().map(|c| (exact(c.idx as usize), c.idx as usize)).collect();
        ranked.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for (t, &(e, j)) in ranked.iter().take(k).enumerate() {
            idx[t] = j;
            dist[t] = e.sqrt() / scale;
        }
    }
}

/// The power of two `2⁻ᵉ` with `max_abs · 2⁻ᵉ ≤ 1` (1 for all-zero data); exact to apply.
fn power_of_two_scale(max_abs: f64) -> f64 {
    if max_abs == 0.0 || !max_abs.is_finite() {
        return 1.0;
    }
    let e = max_abs.log2().ceil().clamp(-1000.0, 1100.0) as i32;
    // Two factors, each within the normal range, so that 2⁻¹⁰²⁴ (subnormal) comes out exact.
    let half = -e / 2;
    let mut s = 2.0_f64.powi(half) * 2.0_f64.powi(-e - half);
    // log2 may round: make sure the bound holds.
    while max_abs * s > 1.0 {
        s *= 0.5;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;
    use rand::rngs::Xoshiro256PlusPlus;
    use rand::{RngExt, SeedableRng};

    /// Plain O(N·M) oracle: direct distances, sorted by (distance, index).
    fn oracle(data: &Array2<f64>, queries: &Array2<f64>, k: usize, exclude: bool) -> Vec<Vec<usize>> {
        (0..queries.nrows())
            .map(|i| {
                let mut all: Vec<(f64, usize)> = (0..data.nrows())
                    .filter(|&j| !(exclude && j == i))
                    .map(|j| {
                        let d2: f64 = queries.row(i).iter().zip(data.row(j)).map(|(a, b)| (a - b) * (a - b)).sum();
                        (d2, j)
                    })
                    .collect();
                all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                all.into_iter().take(k).map(|p| p.1).collect()
            })
            .collect()
    }

    fn random(n: usize, d: usize, seed: u64, offset: f64, spread: f64) -> Array2<f64> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        Array2::from_shape_fn((n, d), |_| offset + spread * rng.random_range(-1.0..1.0))
    }

    fn rows(nn: &Neighbors) -> Vec<Vec<usize>> {
        nn.indices.rows().into_iter().map(|r| r.to_vec()).collect()
    }

    #[test]
    fn matches_the_oracle_on_random_data_across_blocks() {
        for (n, d, k) in [(700, 3, 5), (1500, 40, 7), (300, 1, 3), (2100, 2, 1)] {
            let x = random(n, d, n as u64, 0.0, 1.0);
            let got = kneighbors_self(x.view(), k).unwrap();
            assert_eq!(rows(&got), oracle(&x, &x, k, true), "n={n} d={d} k={k}");
            let q = random(150, d, 7, 0.1, 1.2);
            let got = kneighbors(x.view(), q.view(), k).unwrap();
            assert_eq!(rows(&got), oracle(&x, &q, k, false), "external n={n} d={d}");
            for (i, r) in got.indices.rows().into_iter().enumerate() {
                for (t, &j) in r.iter().enumerate() {
                    let want: f64 = q.row(i).iter().zip(x.row(j)).map(|(a, b)| (a - b) * (a - b)).sum::<f64>().sqrt();
                    assert!((got.distances[[i, t]] - want).abs() <= 1e-14 * (1.0 + want));
                }
            }
        }
    }

    #[test]
    fn fused_and_gemm_paths_give_the_oracle() {
        // Both paths of the same index against the plain oracle: data sizes around the panel (16) and group (6)
        // boundaries, several dimensions, self and external queries.
        for (n, d, k, m) in [(17, 3, 2, 5), (33, 16, 5, 7), (250, 32, 6, 13), (531, 9, 4, 7), (1000, 5, 3, 256 + 6 + 1)]
        {
            let x = random(n, d, (n * d) as u64, 0.5, 2.0);
            let q = random(m, d, 99, 0.0, 2.5);
            let all: Vec<usize> = (0..n).collect();
            for fused in [Kernel::Gemm, Kernel::Avx2, Kernel::Avx512] {
                let own = KnnIndex::build(x.view(), None, fused)
                    .search(&Queries::Rows { rows: &all, exclude_self: true }, k)
                    .unwrap();
                assert_eq!(rows(&own), oracle(&x, &x, k, true), "self n={n} d={d} kernel={fused:?}");
                let ext = KnnIndex::build(x.view(), Some(q.view()), fused).search(&Queries::External(q.view()), k);
                let ext = ext.unwrap();
                assert_eq!(rows(&ext), oracle(&x, &q, k, false), "external n={n} d={d} kernel={fused:?}");
            }
        }
        // Exact ties on a grid, through both paths.
        let grid = Array2::from_shape_fn((81, 2), |(i, j)| if j == 0 { (i / 9) as f64 } else { (i % 9) as f64 });
        let all: Vec<usize> = (0..81).collect();
        for fused in [Kernel::Gemm, Kernel::Avx2, Kernel::Avx512] {
            let got = KnnIndex::build(grid.view(), None, fused)
                .search(&Queries::Rows { rows: &all, exclude_self: true }, 8)
                .unwrap();
            assert_eq!(rows(&got), oracle(&grid, &grid, 8, true), "grid kernel={fused:?}");
        }
    }

    #[test]
    fn ties_are_broken_by_index() {
        // A 2-D integer grid: many exact ties; duplicates too.
        let mut pts = Vec::new();
        for a in 0..12 {
            for b in 0..12 {
                pts.extend_from_slice(&[a as f64, b as f64]);
            }
        }
        pts.extend_from_slice(&[3.0, 3.0, 3.0, 3.0, 7.0, 2.0]);
        let x = Array2::from_shape_vec((pts.len() / 2, 2), pts).unwrap();
        for k in [1, 4, 9, 20] {
            assert_eq!(rows(&kneighbors_self(x.view(), k).unwrap()), oracle(&x, &x, k, true), "k={k}");
        }
    }

    #[test]
    fn far_from_the_origin_and_tiny_spreads() {
        // Offsets of 1e6 with spreads of 1e-3: centring keeps the candidate sets exact.
        let x = random(600, 4, 3, 1e6, 1e-3);
        assert_eq!(rows(&kneighbors_self(x.view(), 6).unwrap()), oracle(&x, &x, 6, true));
        // Huge and tiny magnitudes: the power-of-two scaling keeps squares finite.
        for mag in [1e300, 1e-300] {
            let y = x.mapv(|v| (v - 1e6) * mag);
            assert_eq!(
                rows(&kneighbors_self(y.view(), 3).unwrap()),
                oracle(&(x.mapv(|v| v - 1e6)), &x.mapv(|v| v - 1e6), 3, true)
            );
            assert!(kneighbors_self(y.view(), 3).unwrap().distances.iter().all(|v| v.is_finite()));
        }
    }

    #[test]
    fn near_ties_within_f32_rounding_are_resolved_exactly() {
        // Points on a circle of radius 1 around the query, perturbed by 1e-12: f32 cannot separate them, the
        // re-ranking in f64 must.
        let m = 400;
        let mut data = Array2::<f64>::zeros((m, 2));
        for i in 0..m {
            let t = i as f64 * 0.7;
            let r = 1.0 + 1e-12 * ((i * 37) % 101) as f64;
            data[[i, 0]] = r * t.cos();
            data[[i, 1]] = r * t.sin();
        }
        let q = array![[0.0, 0.0]];
        let got = kneighbors(data.view(), q.view(), 10).unwrap();
        assert_eq!(rows(&got), oracle(&data, &q.to_owned(), 10, false));
    }

    #[test]
    fn same_answer_with_one_and_two_threads() {
        let x = random(1000, 6, 11, 0.0, 1.0);
        let run = |t| {
            rayon::ThreadPoolBuilder::new().num_threads(t).build().unwrap().install(|| kneighbors_self(x.view(), 5))
        };
        assert_eq!(run(1).unwrap(), run(2).unwrap());
    }

    #[test]
    fn bad_input() {
        let x = array![[0.0, 1.0], [1.0, 1.0]];
        assert!(matches!(kneighbors_self(x.view(), 0), Err(Error::Parameter { name: "k", .. })));
        assert!(matches!(kneighbors_self(x.view(), 2), Err(Error::Degenerate { .. })));
        assert!(kneighbors_self(x.view(), 1).is_ok());
        assert!(kneighbors(x.view(), x.view(), 2).is_ok());
        assert!(matches!(kneighbors(x.view(), x.view(), 3), Err(Error::Degenerate { .. })));
        assert!(matches!(kneighbors(x.view(), array![[1.0]].view(), 1), Err(Error::Shape { arg: "queries", .. })));
        assert!(matches!(kneighbors(x.view(), array![[f64::NAN, 0.0]].view(), 1), Err(Error::NonFinite { .. })));
        assert!(matches!(kneighbors_self(Array2::zeros((0, 2)).view(), 1), Err(Error::Empty { arg: "data" })));
        assert!(matches!(kneighbors_self(Array2::zeros((3, 0)).view(), 1), Err(Error::Shape { .. })));
    }

    #[test]
    fn outward_bounds_enclose_their_value_within_a_few_ulps() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            state
        };
        let mut values = vec![0.0, -0.0, 1e-40, -1e-40, 1e-38, -1e-38, 1.0, -1.0, 0.1, -0.1, 3.0e38, -3.0e38];
        // Beyond f32's range the bounds saturate, still on the right side.
        for v in [1e39, -1e39, f64::MAX, -f64::MAX] {
            assert!(f64::from(down(v)) <= v && v <= f64::from(up(v)), "{v:e}");
        }
        for _ in 0..200_000 {
            // Mantissa and sign at random, exponents from 2⁻¹⁴⁰ to 2¹²⁰: values exactly on f32s, just beside them
            // and in the subnormal range.
            let r = next();
            let mant = 1.0 + (r >> 11) as f64 / (1u64 << 53) as f64;
            let exp = (r % 261) as i32 - 140;
            let v = mant * 2f64.powi(exp) * if r & (1 << 10) == 0 { 1.0 } else { -1.0 };
            values.push(v);
            values.push(f64::from(v as f32));
        }
        for v in values {
            let (lo, hi) = (f64::from(down(v)), f64::from(up(v)));
            assert!(lo <= v && v <= hi, "{v:e}: [{lo:e}, {hi:e}]");
            // Within 4 f32 ulps of v (relative 2⁻²¹), or 2·10⁻³⁸ absolutely for tiny values.
            let slack = (v.abs() * 2f64.powi(-21)).max(2e-38);
            assert!(v - lo <= slack && hi - v <= slack, "{v:e}: [{lo:e}, {hi:e}]");
        }
    }

    #[test]
    fn scale_is_a_bounding_power_of_two() {
        for v in [1.0, 0.75, 3.0, 1e300, f64::MAX, 1e-310, 5e-324] {
            let s = power_of_two_scale(v);
            assert!(v * s <= 1.0 && s.is_finite() && s > 0.0, "{v}: {s}");
            assert_eq!(s.log2().fract(), 0.0);
        }
    }
}
