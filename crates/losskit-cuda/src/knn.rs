//! Exact k-nearest neighbours on the GPU (`kernels/knn.cu`) and SMOTE on top of it, with results identical to the CPU
//! search of losskit-samplers ([`losskit_samplers::knn`]): same neighbour sets, same order (exact distance, then the
//! smaller index), same distances.
//!
//! Strategy (the CPU's, split between the devices): the data are scaled by a power of two and centred, stored in
//! f32; cuBLAS computes GEMM tiles of query·data products and a per-query selection kernel keeps the K = k + 16
//! smallest approximate squared distances ‖q‖² + ‖x‖² − 2q·x. The host re-ranks those candidates by the exact f64
//! distance and checks, with a bound on the f32 rounding (c·(‖q‖² + ‖x‖²), c = (4D + 128)·2⁻²⁴), that every row
//! outside the list is farther than the k-th candidate; a query for which that cannot be proven (many rows within
//! the rounding error of its k-th distance) is searched exactly on the CPU. [`KnnStats`] counts those.

use losskit_samplers::knn::Neighbors;
use losskit_samplers::{Resampled, Smote};
use losskit_tensor::{Error, Result, check};
use ndarray::{Array2, ArrayView1, ArrayView2};

use crate::device::Gpu;
use crate::pairwise::{CudaExec, Exec, Gemm, f32_bytes, f32_from, i32_bytes, i32_from};

/// Candidates kept per query beyond k.
const MARGIN: usize = 16;
/// The largest k the selection kernel takes.
pub const MAX_K: usize = 64;
/// Queries per tile.
const QUERY_TILE: usize = 65_536;
/// f32 entries of the product tile (256 MiB).
const WORKSPACE: usize = 1 << 26;
const ABS_SLACK: f64 = 1e-30;

/// How a GPU search went: candidates re-ranked on the host and queries searched on the CPU because the error bound
/// could not exclude every row outside their candidate list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KnnStats {
    /// Queries searched.
    pub queries: usize,
    /// Candidates per query (k + margin, at most the number of rows).
    pub candidates: usize,
    /// Queries searched exactly on the CPU instead.
    pub fallback_queries: usize,
}

impl Gpu {
    /// The `k` nearest rows of `data` [N, D] to each row of `data` itself, excluding the row's own index (as
    /// [`losskit_samplers::knn::kneighbors_self`], with the same result).
    ///
    /// # Errors
    /// As the CPU search ([`Error::Empty`], [`Error::Shape`], [`Error::NonFinite`], [`Error::Parameter`] for k = 0,
    /// [`Error::Degenerate`] for k ≥ N); [`Error::Parameter`] for k > 64; [`Error::Device`] on a device failure.
    pub fn kneighbors_self(&self, data: ArrayView2<'_, f64>, k: usize) -> Result<(Neighbors, KnnStats)> {
        check_data("data", data)?;
        check_k(k, data.nrows(), true)?;
        search(&CudaExec::new(self)?, data, None, k)
    }

    /// The `k` nearest rows of `data` [N, D] to each row of `queries` [M, D] (as
    /// [`losskit_samplers::knn::kneighbors`], with the same result).
    ///
    /// # Errors
    /// As [`Gpu::kneighbors_self`]; [`Error::Shape`] when the feature counts differ.
    pub fn kneighbors(
        &self,
        data: ArrayView2<'_, f64>,
        queries: ArrayView2<'_, f64>,
        k: usize,
    ) -> Result<(Neighbors, KnnStats)> {
        check_data("data", data)?;
        check_data("queries", queries)?;
        if queries.ncols() != data.ncols() {
            return Err(Error::Shape {
                arg: "queries",
                expected: format!("[M, D] with D = {} features, as data", data.ncols()),
                got: queries.shape().to_vec(),
            });
        }
        check_k(k, data.nrows(), false)?;
        search(&CudaExec::new(self)?, data, Some(queries), k)
    }

    /// SMOTE with the nearest-neighbour search on this GPU: the output equals
    /// `smote.fit_resample(x, y, seed)` of losskit-samplers exactly (same neighbours, same seeded draws, same
    /// interpolation), so the GPU only pays off for large classes.
    ///
    /// # Errors
    /// As [`Smote::fit_resample`](losskit_samplers::Sampler::fit_resample); [`Error::Parameter`] for
    /// `k_neighbors` > 64; [`Error::Device`] on a device failure.
    pub fn smote(&self, smote: &Smote, x: ArrayView2<'_, f64>, y: ArrayView1<'_, i64>, seed: u64) -> Result<Resampled> {
        smote_with_neighbors(smote, x, y, seed, |xc, k| self.kneighbors_self(xc, k).map(|(nn, _)| nn))
    }
}

fn check_data(arg: &'static str, x: ArrayView2<'_, f64>) -> Result<()> {
    let (n, d) = x.dim();
    check::non_empty(arg, n)?;
    if d == 0 {
        return Err(Error::Shape { arg, expected: "[N, D] with D ≥ 1 features".into(), got: vec![n, d] });
    }
    check::finite(arg, &x)
}

/// The CPU search's k checks, then the GPU's k ≤ 64.
fn check_k(k: usize, n: usize, exclude: bool) -> Result<()> {
    losskit_samplers::knn::check_k(k, n, exclude)?;
    if k > MAX_K {
        return Err(Error::Parameter { name: "k", value: k as f64, reason: "the GPU search takes k ≤ 64" });
    }
    if n > i32::MAX as usize {
        return Err(Error::Degenerate {
            what: format!("nearest neighbours: {n} samples exceed 2³¹ − 1 on the GPU")
        });
    }
    Ok(())
}

/// A power of two s with max_abs·s ≤ 1 (losskit_samplers::knn's scaling, so the distances come out identical).
fn power_of_two_scale(max_abs: f64) -> f64 {
    if max_abs == 0.0 || !max_abs.is_finite() {
        return 1.0;
    }
    let e = max_abs.log2().ceil().clamp(-1000.0, 1100.0) as i32;
    let half = -e / 2;
    let mut s = 2.0_f64.powi(half) * 2.0_f64.powi(-e - half);
    while max_abs * s > 1.0 {
        s *= 0.5;
    }
    s
}

/// Centred, scaled f32 rows and their squared norms (f64 of the f32 values).
fn centred(x: ArrayView2<'_, f64>, scale: f64, mean: &[f64]) -> (Vec<f32>, Vec<f64>) {
    let mut out = Vec::with_capacity(x.len());
    let mut norms = Vec::with_capacity(x.nrows());
    for row in x.rows() {
        let mut acc = 0.0;
        for (v, m) in row.iter().zip(mean) {
            let c = (v * scale - m) as f32;
            out.push(c);
            acc += f64::from(c) * f64::from(c);
        }
        norms.push(acc);
    }
    (out, norms)
}

/// The search on an executor (inputs already checked): GPU candidates, host re-ranking and proof.
pub(crate) fn search<E: Exec>(
    ex: &E,
    data: ArrayView2<'_, f64>,
    queries: Option<ArrayView2<'_, f64>>,
    k: usize,
) -> Result<(Neighbors, KnnStats)> {
    let (n, d) = data.dim();
    let exclude = queries.is_none();
    let qv = queries.unwrap_or(data);
    let m = qv.nrows();
    let mut max_abs = data.iter().fold(0.0_f64, |a, v| a.max(v.abs()));
    if let Some(q) = queries {
        max_abs = q.iter().fold(max_abs, |a, v| a.max(v.abs()));
    }
    let scale = power_of_two_scale(max_abs);
    let mut mean = vec![0.0; d];
    for row in data.rows() {
        for (mu, v) in mean.iter_mut().zip(row) {
            *mu += v * scale;
        }
    }
    mean.iter_mut().for_each(|mu| *mu *= 1.0 / n as f64);
    let (xc, bn) = centred(data, scale, &mean);
    let (qc, qn) = match queries {
        Some(q) => centred(q, scale, &mean),
        None => (Vec::new(), bn.clone()),
    };
    let kk = (k + MARGIN).min(n - usize::from(exclude));

    let xb = ex.upload(&f32_bytes(&xc))?;
    let qb = if exclude { None } else { Some(ex.upload(&f32_bytes(&qc))?) };
    let qbuf = qb.as_ref().unwrap_or(&xb);
    let to32 = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    let bnb = ex.upload(&f32_bytes(&to32(&bn)))?;
    let qnb = if exclude { None } else { Some(ex.upload(&f32_bytes(&to32(&qn)))?) };
    let qnbuf = qnb.as_ref().unwrap_or(&bnb);
    let vals = ex.upload(&f32_bytes(&vec![f32::INFINITY; kk * m]))?;
    let idx = ex.upload(&i32_bytes(&vec![-1; kk * m]))?;
    let own = if exclude { Some(ex.upload(&i32_bytes(&(0..m as i32).collect::<Vec<_>>()))?) } else { None };

    let t_max = m.min(QUERY_TILE);
    let nb_max = (WORKSPACE / t_max).clamp(1, n);
    let g = ex.alloc(4 * t_max * nb_max)?;
    let block = ex.block().min(128);
    for q0 in (0..m).step_by(t_max) {
        let t = t_max.min(m - q0);
        for j0 in (0..n).step_by(nb_max) {
            let nb = nb_max.min(n - j0);
            let gm = Gemm { ta: false, tb: true, m: nb, n: t, k: d, alpha: 1.0, lda: d, ldb: d, beta: 0.0, ldc: t };
            ex.gemm(gm, (&xb, j0 * d), (qbuf, q0 * d), (&g, 0))?;
            let ints = [q0 as i32, t as i32, j0 as i32, nb as i32, kk as i32, m as i32, 0, 0];
            ex.launch(
                "knn",
                "knn_select",
                t.div_ceil(block as usize) as u32,
                block,
                &[Some(&g), Some(qnbuf), Some(&bnb), Some(&vals), Some(&idx), own.as_ref()],
                [0.0; 8],
                ints,
            )?;
        }
    }
    let vals = f32_from(&ex.download(&vals)?);
    let idx = i32_from(&ex.download(&idx)?);

    let c = (4.0 * d as f64 + 128.0) * f64::from(f32::EPSILON) * 0.5;
    let bn_max = bn.iter().fold(0.0_f64, |a, &b| a.max(b));
    let mut indices = Array2::<usize>::zeros((m, k));
    let mut distances = Array2::<f64>::zeros((m, k));
    let mut stats = KnnStats { queries: m, candidates: kk, fallback_queries: 0 };
    let exact = |q: usize, j: usize| -> f64 {
        qv.row(q).iter().zip(data.row(j).iter()).map(|(x, y)| (x * scale - y * scale).powi(2)).sum::<f64>()
    };
    for q in 0..m {
        let cand: Vec<(f32, usize)> =
            (0..kk).filter_map(|s| usize::try_from(idx[s * m + q]).ok().map(|j| (vals[s * m + q], j))).collect();
        let all_rows = kk == n - usize::from(exclude) && cand.len() == kk;
        let proven = all_rows || {
            let mut upper: Vec<f64> =
                cand.iter().map(|&(a, j)| f64::from(a) + c * (qn[q] + bn[j]) + ABS_SLACK).collect();
            upper.sort_by(f64::total_cmp);
            let a_last = cand.last().map_or(f64::NEG_INFINITY, |&(a, _)| f64::from(a));
            cand.len() == kk && upper.len() >= k && a_last - c * (qn[q] + bn_max) - ABS_SLACK > upper[k - 1]
        };
        let mut ranked: Vec<(f64, usize)> = if proven {
            cand.iter().map(|&(_, j)| (exact(q, j), j)).collect()
        } else {
            stats.fallback_queries += 1;
            (0..n).filter(|&j| !(exclude && j == q)).map(|j| (exact(q, j), j)).collect()
        };
        ranked.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for (s, &(e, j)) in ranked.iter().take(k).enumerate() {
            indices[[q, s]] = j;
            distances[[q, s]] = e.sqrt() / scale;
        }
    }
    Ok((Neighbors { indices, distances }, stats))
}

/// SMOTE (losskit-samplers' [`Smote`], imbalanced-learn's semantics) with the neighbour search supplied by `knn`
/// (called once per class to oversample, on that class's rows, with `k_neighbors`; it must return the rows' k nearest
/// other rows as [`losskit_samplers::knn::kneighbors_self`] does). With that search the output equals
/// `smote.fit_resample(x, y, seed)` exactly: this is [`Smote::fit_resample_with_search`], whose draws and
/// interpolation are the CPU's.
///
/// # Errors
/// As `Smote::fit_resample`, plus what `knn` returns.
pub fn smote_with_neighbors(
    smote: &Smote,
    x: ArrayView2<'_, f64>,
    y: ArrayView1<'_, i64>,
    seed: u64,
    mut knn: impl FnMut(ArrayView2<'_, f64>, usize) -> Result<Neighbors>,
) -> Result<Resampled> {
    smote.fit_resample_with_search(x, y, seed, &mut knn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pairwise::emu::emulator;
    use losskit_samplers::knn::{kneighbors, kneighbors_self};
    use losskit_samplers::{Sampler, SamplingStrategy};
    use rand::rngs::Xoshiro256PlusPlus;
    use rand::{RngExt, SeedableRng};

    fn data(n: usize, d: usize, seed: u64, grid: bool) -> Array2<f64> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        // A coarse integer grid makes many exact distance ties (and duplicate rows).
        Array2::from_shape_fn((n, d), |_| {
            if grid { f64::from(rng.random_range(0..3_i32)) } else { rng.random_range(-5.0..5.0) }
        })
    }

    #[test]
    fn emulated_gpu_knn_equals_the_cpu_search() {
        let Some(mut ex) = emulator() else { return };
        for (n, d, k, grid, seed, block) in
            [(40, 3, 5, false, 1, 32), (57, 5, 7, true, 2, 32), (30, 2, 29, false, 3, 64), (33, 4, 3, true, 4, 32)]
        {
            ex.block = block;
            let x = data(n, d, seed, grid);
            let (got, stats) = search(&ex, x.view(), None, k).unwrap();
            let want = kneighbors_self(x.view(), k).unwrap();
            assert_eq!(got.indices, want.indices, "self n={n} d={d} k={k} grid={grid}");
            assert_eq!(got.distances, want.distances, "self n={n} d={d} k={k} grid={grid}");
            assert_eq!(stats.queries, n);
            let q = data(11, d, seed + 100, grid);
            let kq = k.min(n);
            let (got, _) = search(&ex, x.view(), Some(q.view()), kq).unwrap();
            let want = kneighbors(x.view(), q.view(), kq).unwrap();
            assert_eq!(got.indices, want.indices, "external n={n} d={d} k={kq}");
            assert_eq!(got.distances, want.distances);
            println!("ok   emulated knn n={n} d={d} k={k} grid={grid}: {} fallback queries", stats.fallback_queries);
        }
        // Identical rows: every distance ties at 0, the bound cannot exclude any row, every query falls back to the
        // exact CPU scan, and the answer is still the CPU's (ties to the smaller index).
        let x = Array2::from_elem((25, 3), 1.5);
        let (got, stats) = search(&ex, x.view(), None, 3).unwrap();
        assert_eq!(stats.fallback_queries, 25);
        let want = kneighbors_self(x.view(), 3).unwrap();
        assert_eq!(got.indices, want.indices);
        assert_eq!(got.distances, want.distances);
    }

    #[test]
    fn k_is_checked_like_the_cpu() {
        let x = data(5, 2, 1, false);
        let cpu = kneighbors_self(x.view(), 5).unwrap_err();
        assert_eq!(check_k(5, 5, true).unwrap_err().to_string(), cpu.to_string());
        let cpu = kneighbors_self(x.view(), 0).unwrap_err();
        assert_eq!(check_k(0, 5, true).unwrap_err().to_string(), cpu.to_string());
        assert!(matches!(check_k(65, 1000, true), Err(Error::Parameter { name: "k", .. })));
        assert!(check_data("data", Array2::<f64>::zeros((0, 2)).view()).is_err());
        assert_eq!(power_of_two_scale(3.0), 0.25);
    }

    #[test]
    fn smote_glue_reproduces_cpu_smote() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
        let x = Array2::from_shape_fn((60, 3), |_| rng.random_range(-2.0..2.0));
        let y = ndarray::Array1::from_shape_fn(60, |i| {
            if i % 5 == 0 {
                1_i64
            } else if i % 7 == 0 {
                2
            } else {
                0
            }
        });
        for (smote, seed) in [
            (Smote::new(), 0_u64),
            (Smote::new().k_neighbors(3), 42),
            (Smote::new().sampling_strategy(SamplingStrategy::Ratio(0.5)), 7),
        ] {
            let want = smote.fit_resample(x.view(), y.view(), seed);
            let got = smote_with_neighbors(&smote, x.view(), y.view(), seed, |xc, k| kneighbors_self(xc, k));
            match (got, want) {
                (Ok(g), Ok(w)) => {
                    assert_eq!(g.x, w.x, "{smote:?} seed {seed}");
                    assert_eq!(g.y, w.y);
                    assert_eq!(g.sample_indices, w.sample_indices);
                }
                (Err(g), Err(w)) => assert_eq!(g.to_string(), w.to_string()),
                (g, w) => panic!("{smote:?}: {g:?} vs {w:?}"),
            }
        }
        // With the emulated GPU search as well.
        if let Some(ex) = emulator() {
            let smote = Smote::new();
            let want = smote.fit_resample(x.view(), y.view(), 3).unwrap();
            let got =
                smote_with_neighbors(&smote, x.view(), y.view(), 3, |xc, k| search(&ex, xc, None, k).map(|r| r.0))
                    .unwrap();
            assert_eq!(got.x, want.x);
        }
        // Too few members is the CPU's error.
        let y2 = ndarray::Array1::from_shape_fn(60, |i| i64::from(i < 3));
        let want = Smote::new().fit_resample(x.view(), y2.view(), 0).unwrap_err();
        let got =
            smote_with_neighbors(&Smote::new(), x.view(), y2.view(), 0, |xc, k| kneighbors_self(xc, k)).unwrap_err();
        assert_eq!(got.to_string(), want.to_string());
    }
}
