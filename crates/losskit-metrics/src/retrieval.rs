//! Retrieval and embedding quality: exact k-nearest neighbours (f32 GEMM candidates, exact f64 ordering, [`knn`]),
//! the retrieval metrics of pytorch-metric-learning's `AccuracyCalculator` plus Recall@K, Precision@K and NDCG
//! ([`retrieval_metrics`], [`RetrievalState`]), and Metrix's utilization ([`utilization`]).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use ndarray::{Array2, ArrayView1, ArrayView2, Axis, s};
use rayon::prelude::*;

use losskit_tensor::{Error, Result, check};

use crate::MetricState;

/// Query rows per tile at most, the unit of parallel work: one rayon task runs a tile's GEMMs, selection and
/// re-ranking.
const TILE: usize = 128;
/// GEMM values a tile holds at most (tile rows × reference rows; 16 MiB of f32).
const TILE_VALUES: usize = 1 << 22;
/// Query rows × reference rows of one register block of the f32 GEMM ([`gemm_panel`]).
const MR: usize = 4;
const NR: usize = 16;
// `gemm_panel` names its MR query rows one by one.
const _: () = assert!(MR == 4);

/// `MR` query rows (`qs`, `[MR, w]` flat) times one packed panel of `NR` reference rows: the `MR × NR` dot products,
/// accumulated over the features in f32 (the accumulators stay in registers; with `FMA` as fused multiply-adds).
#[inline(always)]
fn gemm_panel<const FMA: bool>(qs: &[f32], panel: &[f32], w: usize) -> [[f32; NR]; MR] {
    let mut acc = [[0.0_f32; NR]; MR];
    let (q0, q1, q2, q3) = (&qs[..w], &qs[w..2 * w], &qs[2 * w..3 * w], &qs[3 * w..4 * w]);
    for (d, r) in panel.chunks_exact(NR).enumerate() {
        let qv = [q0[d], q1[d], q2[d], q3[d]];
        for (a, &x) in acc.iter_mut().zip(&qv) {
            for (al, &rl) in a.iter_mut().zip(r) {
                *al = if FMA { x.mul_add(rl, *al) } else { *al + x * rl };
            }
        }
    }
    acc
}

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

/// A searchable copy of the reference (inputs validated): the f32 rows of the candidate GEMM with their norms, and
/// the f64 rows of the exact keys.
///
/// Each distance is handled as a *key* that orders like it: Euclidean, the squared distance of the rows scaled by a
/// power of two `s` (exact), Σ (s·qᵢ − s·rᵢ)²; cosine, 2·(1 − q·r / max(‖q‖, 1e-12) / max(‖r‖, 1e-12)). The GEMM
/// estimates a key as ‖q̃‖² + ‖r̃‖² − 2 q̃·r̃ over f32 rows q̃, r̃ (Euclidean: scaled, centred on the reference mean;
/// cosine: normalised, ‖q̃‖² and ‖r̃‖² taken as 1) within `c·(‖q̃‖² + ‖r̃‖²) + c₂·(‖q̃‖ + ‖r̃‖) + a`, with
/// `c = (4D + 64)·2⁻²⁴` (a conservative bound on the f32 conversion, the f32 GEMM over D terms and the f32
/// pre-filter), `c₂ = 2⁻⁴⁹·√D` (the absolute rounding of the centring in f64) and `a` for underflow.
struct Index {
    distance: Distance,
    /// Row length of `exact` and `fast`: D, or 1 (a zero column) when D = 0.
    width: usize,
    /// Euclidean: the power of two with every |value|·scale ≤ 1 (query and reference); cosine: 1.
    scale: f64,
    /// Euclidean: mean of the scaled reference rows (empty for cosine).
    mean: Vec<f64>,
    /// Rows of the exact keys, `[Nr, width]` flat: scaled (Euclidean) or as given (cosine).
    exact: Vec<f64>,
    /// Cosine: 1 / max(‖r‖, 1e-12) per reference row.
    inv_norms: Vec<f64>,
    /// Reference rows.
    n: usize,
    /// The f32 rows of the GEMM packed for [`gemm_panel`]: panel p holds rows `NR·p .. NR·p + NR` (zero rows past
    /// the end) feature by feature, `packed[(p·width + d)·NR + l] = r̃[NR·p + l][d]`.
    packed: Vec<f32>,
    /// ‖r̃‖² in f64 (1 for cosine).
    norms: Vec<f64>,
    /// ‖r̃‖ (1 for cosine).
    roots: Vec<f64>,
    /// `‖r̃‖²·(1 − 2c) − c₂·‖r̃‖` in f32, for the pre-filter.
    lower_norms: Vec<f32>,
    /// The largest of `norms` and of `roots`.
    max_norm: f64,
    max_root: f64,
    c: f64,
    c2: f64,
    /// Absolute slack for underflow in the f32 products and the centring.
    abs: f64,
}

/// A candidate neighbour of one query: a reference row with bounds on its key.
#[derive(Clone, Copy)]
struct Cand {
    /// Lower bound, rounded down to f32.
    lower: f32,
    /// Upper bound, rounded up to f32.
    upper: f32,
    idx: usize,
}

/// Per-query search state within a tile.
struct RowState {
    cand: Vec<Cand>,
    /// ‖q̃‖² (1 for cosine).
    qn: f64,
    /// ‖q̃‖ (1 for cosine).
    root: f64,
    /// The reference row to skip (the query itself, with `exclude_self`).
    skip: Option<usize>,
}

/// `v` rounded toward −∞ to f32.
fn down(v: f64) -> f32 {
    let f = v as f32;
    if f64::from(f) > v { f.next_down() } else { f }
}

/// `v` rounded toward +∞ to f32.
fn up(v: f64) -> f32 {
    let f = v as f32;
    if f64::from(f) < v { f.next_up() } else { f }
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
    while max_abs * s > 1.0 {
        s *= 0.5;
    }
    s
}

fn row_norm(r: ArrayView1<'_, f64>) -> f64 {
    r.dot(&r).sqrt()
}

/// Σ (aᵢ − bᵢ)² in a fixed order (eight running sums, so that it vectorises; the same bits on every machine).
#[inline(always)]
fn sum_sq_diff(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0_f64; 8];
    let (mut ca, mut cb) = (a.chunks_exact(8), b.chunks_exact(8));
    for (x, y) in (&mut ca).zip(&mut cb) {
        for l in 0..8 {
            let t = x[l] - y[l];
            acc[l] += t * t;
        }
    }
    let tail: f64 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| (x - y) * (x - y)).sum();
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// Σ aᵢ·bᵢ in a fixed order (as [`sum_sq_diff`]).
#[inline(always)]
fn dot_fixed(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0_f64; 8];
    let (mut ca, mut cb) = (a.chunks_exact(8), b.chunks_exact(8));
    for (x, y) in (&mut ca).zip(&mut cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let tail: f64 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

impl Index {
    /// Builds the index of `reference`; the Euclidean scale also covers `query`.
    fn new(reference: ArrayView2<'_, f64>, query: ArrayView2<'_, f64>, distance: Distance) -> Self {
        let (n, d) = reference.dim();
        let width = d.max(1);
        let max_abs = |x: ArrayView2<'_, f64>| x.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        let scale = match distance {
            Distance::Euclidean => power_of_two_scale(max_abs(reference).max(max_abs(query))),
            Distance::Cosine => 1.0,
        };
        let mut mean = Vec::new();
        if distance == Distance::Euclidean {
            mean = vec![0.0; d];
            for row in reference.rows() {
                mean.iter_mut().zip(row).for_each(|(m, v)| *m += v * scale);
            }
            let inv = 1.0 / n.max(1) as f64;
            mean.iter_mut().for_each(|m| *m *= inv);
        }
        let c = (4.0 * d as f64 + 64.0) * f64::from(f32::EPSILON) * 0.5;
        let c2 = 2.0_f64.powi(-49) * (d as f64).sqrt();
        let abs = 1e-30 + d as f64 * 2.0_f64.powi(-96);
        let mut index = Index {
            distance,
            width,
            scale,
            mean,
            exact: vec![0.0; n * width],
            inv_norms: Vec::new(),
            n,
            packed: Vec::new(),
            norms: Vec::new(),
            roots: Vec::new(),
            lower_norms: Vec::new(),
            max_norm: 0.0,
            max_root: 0.0,
            c,
            c2,
            abs,
        };
        let mut exact = std::mem::take(&mut index.exact);
        let mut fast = vec![0.0_f32; n * width];
        let prepared: Vec<(f64, f64)> = exact
            .par_chunks_mut(width)
            .zip(fast.par_chunks_mut(width))
            .zip(reference.axis_iter(Axis(0)).into_par_iter())
            .map(|((e, f), row)| index.prepare(row, e, f))
            .collect();
        index.exact = exact;
        let panels = n.div_ceil(NR);
        let mut packed = vec![0.0_f32; panels * width * NR];
        packed.par_chunks_mut(width * NR).enumerate().for_each(|(p, panel)| {
            for l in 0..NR.min(n - p * NR) {
                let row = &fast[(p * NR + l) * width..(p * NR + l + 1) * width];
                for (d, &v) in row.iter().enumerate() {
                    panel[d * NR + l] = v;
                }
            }
        });
        index.packed = packed;
        index.norms = prepared.iter().map(|p| p.0).collect();
        index.roots = index.norms.iter().map(|v| v.sqrt()).collect();
        index.max_norm = index.norms.iter().fold(0.0, |m, &v| m.max(v));
        index.max_root = index.max_norm.sqrt();
        index.inv_norms = prepared.iter().map(|p| 1.0 / p.1).collect();
        index.lower_norms =
            index.norms.iter().zip(&index.roots).map(|(&b, &r)| (b * (1.0 - 2.0 * c) - c2 * r) as f32).collect();
        index
    }

    /// Writes the exact and f32 copies of one row; returns (‖row̃‖² or 1, max(‖row‖, 1e-12) for cosine).
    fn prepare(&self, row: ArrayView1<'_, f64>, exact: &mut [f64], fast: &mut [f32]) -> (f64, f64) {
        match self.distance {
            Distance::Euclidean => {
                let mut acc = 0.0;
                for (((e, f), &v), &m) in exact.iter_mut().zip(fast.iter_mut()).zip(row).zip(&self.mean) {
                    *e = v * self.scale;
                    let t = (*e - m) as f32;
                    *f = t;
                    acc += f64::from(t) * f64::from(t);
                }
                (acc, 1.0)
            }
            Distance::Cosine => {
                let den = row_norm(row).max(1e-12);
                for ((e, f), &v) in exact.iter_mut().zip(fast.iter_mut()).zip(row) {
                    *e = v;
                    *f = (v / den) as f32;
                }
                (1.0, den)
            }
        }
    }

    /// The exact key of reference row `j` for a query (its exact row and, for cosine, max(‖q‖, 1e-12)).
    #[inline(always)]
    fn key(&self, q: &[f64], den: f64, j: usize) -> f64 {
        let r = &self.exact[j * self.width..(j + 1) * self.width];
        match self.distance {
            Distance::Euclidean => sum_sq_diff(q, r),
            Distance::Cosine => 2.0 * (1.0 - dot_fixed(q, r) / den * self.inv_norms[j]),
        }
    }

    /// The distance of a key.
    fn distance_of(&self, key: f64) -> f64 {
        match self.distance {
            Distance::Euclidean => key.sqrt() / self.scale,
            Distance::Cosine => 0.5 * key,
        }
    }

    /// The bounds (lower, upper) of the key of reference row `j` from its GEMM value `gj`, rounded outward to f32.
    #[inline(always)]
    fn bounds(&self, st: &RowState, j: usize, gj: f32) -> (f32, f32) {
        let bn = self.norms[j];
        let approx = st.qn + bn - 2.0 * f64::from(gj);
        let delta = self.c * (st.qn + bn) + self.c2 * (st.root + self.roots[j]) + self.abs;
        (down(approx - delta), up(approx + delta))
    }

    /// The k nearest of every row of `block` (query rows `job.start..job.start + block.nrows()`), as (index,
    /// distance) rows, nearest first, ordered by (exact key, index); the distances are NaN unless `job.distances`.
    fn search(&self, block: ArrayView2<'_, f64>, job: &Job) -> Vec<Vec<(usize, f64)>> {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                // SAFETY: the CPU supports AVX2 and FMA (checked just above); `search_fma` only enables them.
                return unsafe { self.search_fma(block, job) };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2 (checked just above); `search_avx2` only enables it.
                return unsafe { self.search_avx2(block, job) };
            }
        }
        self.search_body::<false>(block, job)
    }

    /// [`Self::search_body`] compiled for AVX2 and FMA. FMA serves only the f32 GEMM (through `mul_add`): Rust never
    /// fuses a separate multiply and add, so the exact keys keep the same bits on every machine.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn search_fma(&self, block: ArrayView2<'_, f64>, job: &Job) -> Vec<Vec<(usize, f64)>> {
        self.search_body::<true>(block, job)
    }

    /// [`Self::search_body`] compiled for AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn search_avx2(&self, block: ArrayView2<'_, f64>, job: &Job) -> Vec<Vec<(usize, f64)>> {
        self.search_body::<false>(block, job)
    }

    #[inline(always)]
    fn search_body<const FMA: bool>(&self, block: ArrayView2<'_, f64>, job: &Job) -> Vec<Vec<(usize, f64)>> {
        let tq = block.nrows();
        let (n, w) = (self.n, self.width);
        // Query rows padded with zero rows to a multiple of MR.
        let tq_pad = tq.div_ceil(MR) * MR;
        let mut q_exact = vec![0.0; tq * w];
        let mut q_fast = vec![0.0_f32; tq_pad * w];
        let mut dens = Vec::with_capacity(tq);
        let mut states = Vec::with_capacity(tq);
        for (i, (row, (e, f))) in
            block.rows().into_iter().zip(q_exact.chunks_mut(w).zip(q_fast.chunks_mut(w))).enumerate()
        {
            let (qn, den) = self.prepare(row, e, f);
            dens.push(den);
            states.push(RowState {
                cand: Vec::new(),
                qn,
                root: qn.sqrt(),
                skip: job.exclude_self.then_some(job.start + i),
            });
        }
        // The tile's GEMM values against every reference row, `[tq_pad, n]`: panel by panel (it stays in L1 while
        // the tile's query rows, in L2, pass over it).
        let mut g = vec![0.0_f32; tq_pad * n];
        for (p, panel) in self.packed.chunks_exact(w * NR).enumerate() {
            let j0 = p * NR;
            let cols = NR.min(n - j0);
            for (i0, qs) in q_fast.chunks_exact(MR * w).enumerate() {
                let acc = gemm_panel::<FMA>(qs, panel, w);
                for (i, a) in acc.iter().enumerate() {
                    let at = (i0 * MR + i) * n + j0;
                    g[at..at + cols].copy_from_slice(&a[..cols]);
                }
            }
        }
        let mut out = Vec::with_capacity(tq);
        for ((st, gr), (q, &den)) in states.iter_mut().zip(g.chunks_exact(n)).zip(q_exact.chunks(w).zip(&dens)) {
            self.select(st, gr, job.k);
            out.push(self.rank(st, q, den, job));
        }
        out
    }

    /// Collects the candidates of one query from its GEMM row `g`: every reference row whose key may be among the
    /// k smallest (lower bound at most the k-th smallest upper bound), and only about k of them.
    ///
    /// A threshold B comes from a sample of the row (the upper bound ranked where about 1.5k + 16 rows of the whole
    /// row would fall); one pass keeps the rows with lower bound ≤ B (a branch-free f32 pre-filter per chunk first).
    /// When at least k of them have upper bound ≤ B, the k-th smallest upper bound is ≤ B and nothing that can be
    /// among the k nearest was left out; otherwise (a poor sample) the pass is repeated with B = ∞.
    #[inline(always)]
    fn select(&self, st: &mut RowState, g: &[f32], k: usize) {
        // Every upper bound is at most ‖q̃‖² + p + slack, p = lower_norms[j] − 2g its pre-filter value (in f32).
        let slack = 4.0 * self.c * (st.qn + self.max_norm) + self.c2 * (st.root + 2.0 * self.max_root) + 2.0 * self.abs;
        let mut attempt = 0;
        loop {
            let bound = match attempt {
                0 => self.sample_bound(st, g, k, slack),
                1 => self.full_bound(st, g, k, slack),
                _ => Some(f64::INFINITY),
            };
            attempt += 1;
            let Some(bound) = bound else { continue };
            st.cand.clear();
            // Pre-filter on lower_norms[j] − 2g: looser than `lower ≤ bound` by c·(‖q̃‖² + ‖r̃‖²), which covers its
            // own f32 rounding.
            let thr = (bound - st.qn * (1.0 - 2.0 * self.c) + self.c2 * st.root + self.abs) as f32;
            let mut within = 0usize;
            const W: usize = 8;
            let mut at = 0;
            for (gc, lc) in g.chunks(W).zip(self.lower_norms.chunks(W)) {
                let hit = gc.iter().zip(lc).fold(false, |h, (&gj, &lj)| h | (lj - 2.0 * gj <= thr));
                if hit {
                    for (t, (&gj, &lj)) in gc.iter().zip(lc).enumerate() {
                        let j = at + t;
                        if lj - 2.0 * gj <= thr && st.skip != Some(j) {
                            let (lower, upper) = self.bounds(st, j, gj);
                            if f64::from(lower) <= bound {
                                within += usize::from(f64::from(upper) <= bound);
                                st.cand.push(Cand { lower, upper, idx: j });
                            }
                        }
                    }
                }
                at += gc.len();
            }
            if within >= k || bound == f64::INFINITY {
                break;
            }
        }
        // Only the candidates whose lower bound is at most the k-th smallest upper bound can be among the k nearest.
        if st.cand.len() > k {
            st.cand.select_nth_unstable_by(k - 1, |a, b| a.upper.total_cmp(&b.upper));
            let kth = st.cand[k - 1].upper;
            st.cand.retain(|c| c.lower <= kth);
        }
    }

    /// A threshold from a sample of the row: the pre-filter value ranked where about 1.5k + 16 rows of the whole
    /// row would fall, plus the slack (None when the row is too short for a sample to pay).
    #[inline(always)]
    fn sample_bound(&self, st: &RowState, g: &[f32], k: usize, slack: f64) -> Option<f64> {
        let n = g.len();
        let budget = k + k / 2 + 16;
        if 2 * budget >= n {
            return None;
        }
        let m = (32 * n / budget).min(n / 4).max(256).min(n);
        let stride = n / m;
        let mut sample: Vec<f32> = Vec::with_capacity(m);
        for t in 0..m {
            // A jittered stride, so that data sorted by label are still sampled across labels.
            let j = t * stride + (t.wrapping_mul(2_654_435_761) >> 7) % stride;
            if st.skip != Some(j) {
                sample.push(self.lower_norms[j] - 2.0 * g[j]);
            }
        }
        let r = (budget * m).div_ceil(n).max(1);
        if r > sample.len() {
            return None;
        }
        sample.select_nth_unstable_by(r - 1, f32::total_cmp);
        Some(st.qn + f64::from(sample[r - 1]) + slack)
    }

    /// A threshold that at least k rows meet: the k-th smallest pre-filter value of the row, plus the slack.
    #[inline(always)]
    fn full_bound(&self, st: &RowState, g: &[f32], k: usize, slack: f64) -> Option<f64> {
        let mut all: Vec<f32> = Vec::with_capacity(g.len());
        for (j, (&gj, &lj)) in g.iter().zip(&self.lower_norms).enumerate() {
            if st.skip != Some(j) {
                all.push(lj - 2.0 * gj);
            }
        }
        if k == 0 || k > all.len() {
            return None;
        }
        all.select_nth_unstable_by(k - 1, f32::total_cmp);
        Some(st.qn + f64::from(all[k - 1]) + slack)
    }

    /// The k nearest among the candidates, by (exact key, index). Sorted by lower bound, the candidates fall in
    /// clusters of overlapping bounds; a cluster of one is in place without its exact key, a larger one is ordered
    /// by exact keys. Exact keys (and distances) of the k returned rows are computed when `job.distances`.
    #[inline(always)]
    fn rank(&self, st: &mut RowState, q: &[f64], den: f64, job: &Job) -> Vec<(usize, f64)> {
        let k = job.k;
        let cand = &mut st.cand;
        cand.sort_unstable_by(|a, b| a.lower.total_cmp(&b.lower).then(a.idx.cmp(&b.idx)));
        let mut out: Vec<(f64, usize)> = Vec::with_capacity(k + 8);
        let mut cluster: Vec<(f64, usize)> = Vec::new();
        let mut i = 0;
        while i < cand.len() && out.len() < k {
            let mut hi = cand[i].upper;
            let mut e = i + 1;
            while e < cand.len() && cand[e].lower <= hi {
                hi = hi.max(cand[e].upper);
                e += 1;
            }
            if e == i + 1 {
                let j = cand[i].idx;
                out.push((if job.distances { self.key(q, den, j) } else { f64::NAN }, j));
            } else {
                cluster.clear();
                for c in &cand[i..e] {
                    cluster.push((self.key(q, den, c.idx), c.idx));
                }
                cluster.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                out.extend_from_slice(&cluster);
            }
            i = e;
        }
        out.truncate(k);
        let mut rows = Vec::with_capacity(k);
        for (key, j) in out {
            rows.push((j, if job.distances { self.distance_of(key) } else { f64::NAN }));
        }
        rows
    }
}

/// One search: queries start at `start`, k neighbours each, whether each query skips reference row `start + i`,
/// whether the distances are wanted.
struct Job {
    start: usize,
    k: usize,
    exclude_self: bool,
    distances: bool,
}

fn check_embeddings(query: ArrayView2<'_, f64>, reference: ArrayView2<'_, f64>) -> Result<()> {
    check::non_empty("reference", reference.nrows())?;
    check::shape("query", query.shape(), &[None, Some(reference.ncols())])?;
    check::finite("query", &query)?;
    check::finite("reference", &reference)?;
    Ok(())
}

/// Calls `f(start, rows)` for consecutive query tiles, tiles searched on the rayon pool and handed to `f` in order;
/// the distances are NaN unless `distances`.
fn blocks(
    index: &Index,
    query: ArrayView2<'_, f64>,
    k: usize,
    exclude_self: bool,
    distances: bool,
    mut f: impl FnMut(usize, Vec<Vec<(usize, f64)>>) -> Result<()>,
) -> Result<()> {
    let n = query.nrows();
    // A tile holds its GEMM rows against the whole reference: at most TILE_VALUES values, 8 to TILE rows.
    let tile = (TILE_VALUES / index.n.max(1)).clamp(8, TILE);
    // A wave of tiles at a time keeps memory at O(threads × tile × (Nr + k)).
    let wave = tile * rayon::current_num_threads().max(1) * 4;
    let mut start = 0;
    while start < n {
        let end = (start + wave).min(n);
        let starts: Vec<usize> = (start..end).step_by(tile).collect();
        let results: Vec<Vec<Vec<(usize, f64)>>> = starts
            .par_iter()
            .map(|&b| {
                let job = Job { start: b, k, exclude_self, distances };
                index.search(query.slice(s![b..(b + tile).min(end), ..]), &job)
            })
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
/// Neighbours are ordered by their exact distance computed in f64 (Euclidean: the direct Σ (qᵢ − rᵢ)², not the GEMM
/// identity; cosine: 1 − q·r / (max(‖q‖, 1e-12) · max(‖r‖, 1e-12))), ties broken by the smaller reference index, so
/// the result depends only on the data, never on the tiling or the thread count. The search is fast and still
/// exact:
///
/// 1. Query rows are taken in tiles of up to 128 (one rayon task each, memory O(tile · Nr)); an f32 GEMM (a
///    register-blocked kernel over the reference packed once, FMA where the CPU has it) estimates every key of the
///    tile (Euclidean on rows scaled by a power of two and centred; cosine on normalised rows) within a proven
///    rounding bound `c·(‖q‖² + ‖r‖²)`, c = (4D + 64)·2⁻²⁴, plus the centring's absolute error.
/// 2. For each query a threshold from a sample of its row (checked: at least k rows must have an upper bound below
///    it, else an exact k-th value, else none) keeps only the rows whose lower bound is at most the k-th smallest
///    upper bound: about 1.5k rows, never one of the true k nearest less.
/// 3. The candidates sorted by lower bound fall in clusters of overlapping bounds; only clusters of more than one
///    need exact f64 keys to be ordered, and the distances of the k returned rows are recomputed exactly.
///
/// With `exclude_self` the query set is the start of the reference set (query row i is reference row i, as
/// pytorch-metric-learning's `ref_includes_query`) and reference row i is never a neighbour of query row i.
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
    losskit_tensor::pool::on_worker(|| {
        check_embeddings(query, reference)?;
        check_k(k, query.nrows(), reference.nrows(), exclude_self)?;
        let index = Index::new(reference, query, distance);
        let n = query.nrows();
        let mut indices = Array2::zeros((n, k));
        let mut distances = Array2::zeros((n, k));
        blocks(&index, query, k, exclude_self, true, |b, rows| {
            for (i, row) in rows.into_iter().enumerate() {
                for (c, (j, d)) in row.into_iter().enumerate() {
                    indices[[b + i, c]] = j;
                    distances[[b + i, c]] = d;
                }
            }
            Ok(())
        })?;
        Ok(Neighbors { indices, distances })
    })
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
/// or fixed. Queries are searched tile by tile ([`knn`]'s search, without computing distances the metrics do not
/// need) and each tile is reduced into a [`RetrievalState`] at once, so memory stays O(threads · 128 · (Nr + k))
/// whatever k.
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
    Ok(retrieval_metrics_keeping(query, query_labels, reference, cfg, 0)?.0)
}

/// [`retrieval_metrics`], also returning the first `keep` neighbour indices of every query (row-major [Nq, keep],
/// nearest first, ties to the smaller index) when `keep` is between 1 and the search's k; `None` otherwise.
pub(crate) fn retrieval_metrics_keeping(
    query: ArrayView2<'_, f64>,
    query_labels: ArrayView1<'_, i64>,
    reference: Option<(ArrayView2<'_, f64>, ArrayView1<'_, i64>)>,
    cfg: &RetrievalConfig,
    keep: usize,
) -> Result<(RetrievalReport, Option<Vec<usize>>)> {
    losskit_tensor::pool::on_worker(|| {
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
        let index = Index::new(reference, query, cfg.distance);
        let keep = if (1..=k).contains(&keep) { keep } else { 0 };
        let mut kept = Vec::with_capacity(query.nrows() * keep);
        blocks(&index, query, k, same, false, |b, rows| {
            let n = rows.len();
            let labels = Array2::from_shape_fn((n, k), |(i, c)| reference_labels[rows[i][c].0]);
            kept.extend(rows.iter().flat_map(|r| r[..keep].iter().map(|&(j, _)| j)));
            state.update(query_labels.slice(s![b..b + n]), labels.view(), ArrayView1::from(&relevant[b..b + n]))
        })?;
        Ok((state.report(cfg.avg_of_avgs)?, (keep > 0).then_some(kept)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array1, array};

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

    /// Brute force over exact f64 distances, sorted by (distance, index).
    fn oracle(q: &Array2<f64>, r: &Array2<f64>, k: usize, distance: Distance, exclude: bool) -> Vec<Vec<usize>> {
        (0..q.nrows())
            .map(|i| {
                let a = q.row(i);
                let mut all: Vec<(f64, usize)> = (0..r.nrows())
                    .filter(|&j| !(exclude && i == j))
                    .map(|j| {
                        let b = r.row(j);
                        let v = match distance {
                            Distance::Euclidean => a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>(),
                            Distance::Cosine => 1.0 - a.dot(&b) / (row_norm(a).max(1e-12) * row_norm(b).max(1e-12)),
                        };
                        (v, j)
                    })
                    .collect();
                all.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
                all.into_iter().take(k).map(|p| p.1).collect()
            })
            .collect()
    }

    fn rows(nn: &Neighbors) -> Vec<Vec<usize>> {
        nn.indices.rows().into_iter().map(|r| r.to_vec()).collect()
    }

    fn splitmix(state: &mut u64) -> f64 {
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    #[test]
    fn sampled_thresholds_stay_exact_on_clustered_data_sorted_by_label() {
        // Rows in label order (the sample must not lose classmates), several k around the sampling cut-off.
        let (n, d, classes) = (1500, 9, 30);
        let mut st = 3;
        let centres = Array2::from_shape_fn((classes, d), |_| splitmix(&mut st) * 4.0 - 2.0);
        let x = Array2::from_shape_fn((n, d), |(i, j)| centres[[i * classes / n, j]] + splitmix(&mut st) - 0.5);
        for distance in [Distance::Euclidean, Distance::Cosine] {
            for k in [1, 7, 49, 300, n - 1] {
                let got = knn(x.view(), x.view(), k, distance, true).unwrap();
                assert_eq!(rows(&got), oracle(&x, &x, k, distance, true), "{distance} k={k}");
            }
        }
    }

    #[test]
    fn near_ties_below_f32_resolution_are_ordered_exactly() {
        // Points on a circle around the query, radii differing by 1e-12: f32 cannot tell them apart.
        let m = 700;
        let mut data = Array2::<f64>::zeros((m, 2));
        for i in 0..m {
            let t = i as f64 * 0.7;
            let r = 1.0 + 1e-12 * ((i * 37) % 101) as f64;
            data[[i, 0]] = r * t.cos();
            data[[i, 1]] = r * t.sin();
        }
        let q = array![[0.0, 0.0], [1e-13, 0.0]];
        for k in [1, 10, 150] {
            let got = knn(q.view(), data.view(), k, Distance::Euclidean, false).unwrap();
            assert_eq!(rows(&got), oracle(&q, &data, k, Distance::Euclidean, false), "k={k}");
        }
        // Cosine: distinct directions 1e-5 rad apart (1 − cos ≤ 2.5e-5: below f32's resolution near 1, well above
        // f64's), shuffled, lengths all different.
        let mut dirs = Array2::<f64>::zeros((m, 3));
        for i in 0..m {
            let t = 1e-5 * ((i * 53) % m) as f64;
            let len = 0.5 + i as f64;
            dirs.row_mut(i).assign(&array![len * t.cos(), len * t.sin(), 0.0]);
        }
        let q = array![[1.0, 0.0, 0.0]];
        let got = knn(q.view(), dirs.view(), 40, Distance::Cosine, false).unwrap();
        assert_eq!(rows(&got), oracle(&q, &dirs, 40, Distance::Cosine, false));
    }

    #[test]
    fn far_from_the_origin_duplicates_and_extreme_magnitudes() {
        let mut st = 11;
        // Offset 1e6, spread 1e-3: centring keeps the candidates exact.
        let x = Array2::from_shape_fn((900, 5), |_| 1e6 + 1e-3 * splitmix(&mut st));
        assert_eq!(
            rows(&knn(x.view(), x.view(), 12, Distance::Euclidean, true).unwrap()),
            oracle(&x, &x, 12, Distance::Euclidean, true)
        );
        // Many exact duplicates: ties go to the smaller index, the query's own row is skipped.
        let y = Array2::from_shape_fn((800, 3), |(i, j)| ((i % 7) * (j + 1)) as f64);
        for k in [3, 120, 250] {
            let got = knn(y.view(), y.view(), k, Distance::Euclidean, true).unwrap();
            assert_eq!(rows(&got), oracle(&y, &y, k, Distance::Euclidean, true), "k={k}");
        }
        // Huge and tiny magnitudes: the power-of-two scaling keeps the squares finite, distances scale back.
        let base = Array2::from_shape_fn((400, 4), |_| splitmix(&mut st) - 0.5);
        let want = knn(base.view(), base.view(), 5, Distance::Euclidean, true).unwrap();
        for mag in [1e300, 1e-300] {
            let z = base.mapv(|v| v * mag);
            let got = knn(z.view(), z.view(), 5, Distance::Euclidean, true).unwrap();
            assert_eq!(got.indices, want.indices, "{mag}");
            for (g, w) in got.distances.iter().zip(&want.distances) {
                assert!((g / mag - w).abs() <= 1e-14 * w, "{mag}: {g} vs {w}");
            }
        }
    }

    #[test]
    fn distances_are_the_direct_ones_and_metrics_match_the_neighbour_lists() {
        let mut st = 5;
        let labels: Array1<i64> = (0..600).map(|i| (i % 13) as i64).collect();
        let x = Array2::from_shape_fn((600, 17), |(i, _)| (i % 13) as f64 * 0.05 + splitmix(&mut st));
        let nn = knn(x.view(), x.view(), 45, Distance::Euclidean, true).unwrap();
        for (i, (r, dr)) in nn.indices.rows().into_iter().zip(nn.distances.rows()).enumerate() {
            for (&j, &d) in r.iter().zip(dr) {
                let want = x.row(i).iter().zip(x.row(j)).map(|(a, b)| (a - b) * (a - b)).sum::<f64>().sqrt();
                assert!((d - want).abs() <= 1e-14 * want, "{i} {j}");
            }
        }
        // retrieval_metrics (no distances) sees the same neighbour lists.
        let one = retrieval_metrics(x.view(), labels.view(), None, &RetrievalConfig::new()).unwrap();
        let k = one.k;
        let nn = knn(x.view(), x.view(), k, Distance::Euclidean, true).unwrap();
        let mut state = RetrievalState::new(k, vec![1, 2, 4, 8]).unwrap();
        // 600 = 13·46 + 2: labels 0 and 1 have 47 rows, the others 46; R = count − 1.
        let relevant = Array1::from_shape_fn(600, |i| if i % 13 < 2 { 46 } else { 45 });
        state.update(labels.view(), nn.indices.mapv(|j| labels[j]).view(), relevant.view()).unwrap();
        assert_eq!(state.compute().unwrap(), one);
    }

    #[test]
    fn all_lone_is_degenerate() {
        let x = array![[0.0], [1.0]];
        let r = retrieval_metrics(x.view(), array![0, 1].view(), None, &RetrievalConfig::new().k(RetrievalK::Fixed(1)));
        assert!(matches!(r, Err(Error::Degenerate { .. })));
    }
}
