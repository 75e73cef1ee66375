//! The pair driver shared by every embedding loss: validation, the similarity or distance matrix through GEMM (whole
//! or in row tiles), the per-row kernels, the reduction, and the chain rule back through the GEMM and the row
//! normalisation.
//!
//! A loss supplies a [`PairKernel`]: for one anchor row it reads the row vᵢ = (v_i1, …, v_iR) of similarities
//! (cosine) or distances (Euclidean) to the reference set, returns the row's loss ℓᵢ and writes ∂ℓ/∂vᵢ. The driver
//! never stores more than one tile of rows of the N × R matrix (and one tile of its gradient), so memory is
//! O(tile·R + (N + R)·D); with `tile = 0` it picks the whole matrix when it is small (≤ 2²⁴ entries) and tiles of
//! about 2²² entries otherwise. Dense and tiled runs compute the same values (the row kernels see the same rows) and
//! the same gradient up to the order in which the tiles' GEMM contributions are summed.
//!
//! Losses whose gradient scale depends on global counts that only the matrix can tell (the contrastive loss averages
//! its positive and its negative terms over their own numbers of non-zero terms) ask for a statistics pass first;
//! in tiled mode that pass recomputes each tile's GEMM. Losses whose reduction has one global scale (a mean over
//! anchors, over non-zero anchors, over non-zero triplets) return it from [`PairKernel::finish`] and the driver
//! scales the accumulated gradient once at the end.
//!
//! Rows are independent tasks (rayon); their values are summed in row order in f64, so the value does not depend on
//! the number of threads.
//!
//! The common case, a batch against itself in one tile, has its own path ([`dense_self`]): the GEMM runs only on the
//! blocks on and above the diagonal of the symmetric N × N matrix (the rest is mirrored, bit for bit the same
//! entries), each row's derivative overwrites its own row of the matrix, G + Gᵀ is formed in place, and the gradient
//! is one product (G + Gᵀ)·X̂ (the Euclidean diagonal term folded into its diagonal, the reduction's scale into its
//! α) through GEMM, or through row gathers when fewer than 1/32 of the pairs are active (hinge losses such as the
//! contrastive loss). The row passes are compiled for AVX2 and AVX-512 too and picked at run time.

use std::collections::HashMap;

use losskit_tensor::linalg::gemm;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, Zip, s};
use rayon::prelude::*;

use losskit_tensor::norm::{l2_normalize_backward, l2_normalize_rows};
use losskit_tensor::{Error, Real, Result, check};

use crate::core::{EmbeddingOutput, Reference};
use crate::isa::Isa;

/// How two embeddings are compared (pytorch-metric-learning's `distance=` objects).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Distance {
    /// Cosine similarity x̂ᵢ·x̂ⱼ of L2-normalised rows (PML `CosineSimilarity()`); larger means closer.
    Cosine,
    /// Euclidean distance ‖x̂ᵢ − x̂ⱼ‖₂ of L2-normalised rows (PML `LpDistance()`, its default
    /// `normalize_embeddings=True, p=2, power=1`); smaller means closer.
    Euclidean,
    /// Euclidean distance ‖xᵢ − xⱼ‖₂ of the raw rows (PML `LpDistance(normalize_embeddings=False)`).
    EuclideanUnnormalized,
}

impl Distance {
    /// The registry words, in order: `cosine`, `euclidean`, `euclidean-unnormalized`.
    pub const NAMES: &'static [&'static str] = &["cosine", "euclidean", "euclidean-unnormalized"];

    /// The registry word.
    pub fn as_str(self) -> &'static str {
        match self {
            Distance::Cosine => "cosine",
            Distance::Euclidean => "euclidean",
            Distance::EuclideanUnnormalized => "euclidean-unnormalized",
        }
    }

    /// Parses a registry word.
    ///
    /// # Errors
    /// [`Error::ParameterText`] naming `distance`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "cosine" => Ok(Distance::Cosine),
            "euclidean" => Ok(Distance::Euclidean),
            "euclidean-unnormalized" => Ok(Distance::EuclideanUnnormalized),
            _ => Err(Error::ParameterText {
                name: "distance".into(),
                value: s.into(),
                reason: format!("expected one of {}", Self::NAMES.join(", ")),
            }),
        }
    }

    /// +1 for a similarity (larger = closer), −1 for a distance: closeness uᵢⱼ = σ·vᵢⱼ.
    pub(crate) fn sign<F: Real>(self) -> F {
        match self {
            Distance::Cosine => F::one(),
            Distance::Euclidean | Distance::EuclideanUnnormalized => -F::one(),
        }
    }

    fn normalizes(self) -> bool {
        self != Distance::EuclideanUnnormalized
    }

    fn is_euclidean(self) -> bool {
        self != Distance::Cosine
    }
}

/// Entries of the matrix kept whole when `tile = 0`.
const DENSE_MAX: usize = 1 << 24;
/// Entries per tile when `tile = 0` and the matrix is larger than [`DENSE_MAX`].
const TILE_ELEMS: usize = 1 << 22;

/// Rows per tile for a `tile` parameter (0 = automatic).
pub(crate) fn tile_rows(tile: usize, n: usize, r: usize) -> usize {
    let t = if tile == 0 { if n.saturating_mul(r) <= DENSE_MAX { n } else { TILE_ELEMS / r.max(1) } } else { tile };
    t.clamp(1, n.max(1))
}

/// One anchor row as a kernel sees it.
pub(crate) struct Row<'a, F> {
    /// Similarities (cosine) or distances (Euclidean) to each reference row.
    pub v: &'a [F],
    /// The anchor's label.
    pub label: i64,
    /// The reference labels (the batch's own labels without a reference set).
    pub ref_labels: &'a [i64],
    /// The anchor's own column (without a reference set), which is neither a positive nor a negative.
    pub self_col: Option<usize>,
    /// σ: +1 for a similarity, −1 for a distance.
    pub sign: F,
}

impl<F: Real> Row<'_, F> {
    /// Whether column j is a positive (same label, not the anchor itself).
    #[inline(always)]
    pub fn is_pos(&self, j: usize) -> bool {
        self.ref_labels[j] == self.label && Some(j) != self.self_col
    }
    /// Whether column j is a negative (different label).
    #[inline(always)]
    pub fn is_neg(&self, j: usize) -> bool {
        self.ref_labels[j] != self.label
    }
    /// Closeness uⱼ = σ·vⱼ (larger = closer, whatever the distance).
    #[inline(always)]
    pub fn u(&self, j: usize) -> F {
        self.sign * self.v[j]
    }
}

/// Label-level pair counts of the whole batch (no matrix needed).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Counts {
    /// Anchors N.
    pub rows: usize,
    /// Positive pairs (ordered, self excluded).
    pub pos_pairs: u64,
    /// Negative pairs (ordered).
    pub neg_pairs: u64,
}

impl Counts {
    /// pytorch-metric-learning's `GenericPairLoss` returns zero when there is at most one pair of each kind.
    pub fn at_most_one_pair_each(&self) -> bool {
        self.pos_pairs <= 1 && self.neg_pairs <= 1
    }
}

/// What one row returns: its loss ℓᵢ (f64) and up to four tallies summed over rows for [`PairKernel::finish`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RowOut {
    pub loss: f64,
    pub tally: [f64; 4],
}

/// The reduction a kernel decides once every row is done.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Finish {
    /// The reduced value.
    pub value: f64,
    /// Scale applied to the accumulated gradient (the rows wrote unscaled derivatives).
    pub grad_scale: f64,
    /// The loss is zero by rule (per-sample values are zeroed too).
    pub zero: bool,
}

impl Finish {
    pub fn zero() -> Self {
        Finish { value: 0.0, grad_scale: 0.0, zero: true }
    }
}

/// One pair loss, row by row. The driver guarantees `v.len() == ref_labels.len() == ds.len()` and `ds` zero on entry.
pub(crate) trait PairKernel<F: Real>: Sync {
    /// Whether [`PairKernel::stats`] must run over every row before the main pass.
    fn needs_stats(&self) -> bool {
        false
    }
    /// Adds this row's statistics to `out` (only called when [`PairKernel::needs_stats`]).
    fn stats(&self, _row: &Row<'_, F>, _out: &mut [f64; 4]) {}
    /// Whether the loss is zero from the label counts alone (nothing is computed then).
    fn zero(&self, counts: &Counts) -> bool;
    /// ℓᵢ of one row; writes ∂ℓ/∂vᵢ (before the final [`Finish::grad_scale`]) into `ds` when given.
    fn row(&self, row: &Row<'_, F>, stats: &[f64; 4], ds: Option<&mut [F]>) -> RowOut;
    /// The reduced value and the gradient scale from the summed tallies.
    fn finish(&self, tally: &[f64; 4], stats: &[f64; 4], counts: &Counts) -> Finish;
}

/// Driver options besides the kernel.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Setup {
    pub distance: Distance,
    /// Rows per tile; 0 = automatic.
    pub tile: usize,
}

/// Checks embeddings [N, D] (N ≥ 1, D ≥ 1, finite) and labels `[N]`.
pub(crate) fn check_embeddings<F: Real>(
    arg: &'static str,
    labels_arg: &'static str,
    x: &ArrayView2<'_, F>,
    labels: &ArrayView1<'_, i64>,
) -> Result<()> {
    let (n, d) = x.dim();
    check::non_empty(arg, n)?;
    if d == 0 {
        return Err(Error::Shape { arg, expected: "[N, D] with D ≥ 1".into(), got: vec![n, d] });
    }
    check::shape(labels_arg, labels.shape(), &[Some(n)])?;
    check::finite(arg, x)
}

/// Normalised (or copied) rows, their norms when normalised, and squared norms for Euclidean distances.
struct Side<F> {
    h: Array2<F>,
    norms: Option<Array1<F>>,
    sq: Vec<F>,
}

fn side<F: Real>(x: ArrayView2<'_, F>, distance: Distance) -> Side<F> {
    let (h, norms) = if distance.normalizes() {
        let (h, n) = l2_normalize_rows(x);
        (h, Some(n))
    } else {
        (x.to_owned(), None)
    };
    let sq = if distance.is_euclidean() { h.rows().into_iter().map(|r| r.dot(&r)).collect() } else { vec![] };
    Side { h, norms, sq }
}

/// The values of rows `r0..r1` against every reference row: similarities, or distances from the GEMM expansion
/// ‖a‖² + ‖b‖² − 2a·b (clamped at 0, as `torch.cdist` does on its matrix-product path).
fn tile_values<F: Real>(q: &Side<F>, r: &Side<F>, distance: Distance, r0: usize, r1: usize) -> Array2<F> {
    let mut v = Array2::zeros((r1 - r0, r.h.nrows()));
    gemm(F::one(), &q.h.slice(s![r0..r1, ..]), &r.h.t(), F::zero(), &mut v);
    if distance.is_euclidean() {
        let two = F::c(2.0);
        let sq_r = &r.sq;
        Zip::indexed(v.rows_mut()).par_for_each(|i, mut row| {
            let a = q.sq[r0 + i];
            for (x, &b) in row.iter_mut().zip(sq_r) {
                *x = (a + b - two * *x).max(F::zero()).sqrt();
            }
        });
    }
    v
}

/// Rows per block of the self-similarity GEMM: the product is computed block row by block row from the diagonal
/// block rightwards, so the flops are (1 + 1/blocks)/2 of the full product; about eight blocks balance that saving
/// against the efficiency of narrower GEMMs.
fn self_block(n: usize) -> usize {
    (n / 8).next_multiple_of(64).clamp(64, 512)
}

/// The matrix v = sim(X̂, X̂) of the dense, self-referenced case (similarities, or distances from the GEMM expansion
/// as in [`tile_values`]). Only the blocks on and above the diagonal go through GEMM; the rest is their mirror image.
/// Every entry has the same bits as the full product's (and as [`tile_values`]'s): the GEMM kernel sums each
/// entry's D products in the same order whatever the block, a·b = b·a exactly, and the distance expansion is
/// symmetric.
fn self_values<F: Real>(q: &Side<F>, distance: Distance, isa: Isa) -> Array2<F> {
    let n = q.h.nrows();
    let bs = self_block(n);
    let mut v = zeroed_square::<F>(n);
    for i0 in (0..n).step_by(bs) {
        let i1 = (i0 + bs).min(n);
        let a = q.h.slice(s![i0..i1, ..]);
        let b = q.h.slice(s![i0.., ..]);
        gemm(F::one(), &a, &b.t(), F::zero(), &mut v.slice_mut(s![i0..i1, i0..]));
    }
    let Some(vs) = v.as_slice_mut() else { return v }; // ok: a fresh standard-layout array
    if distance.is_euclidean() {
        let two = F::c(2.0);
        let sq = &q.sq;
        vs.par_chunks_mut(n).enumerate().for_each(|(i, row)| {
            let j0 = i / bs * bs;
            let a = sq[i];
            isa.run(DistanceRow { row: &mut row[j0..], sq: &sq[j0..], a, two });
        });
    }
    mirror_blocks(vs, n, bs);
    v
}

/// Fills the part of a square row-major matrix left of each row's diagonal block from the blocks above the diagonal:
/// aᵢⱼ = aⱼᵢ for j < ⌊i/bs⌋·bs. Block rows are done in turn (each reads only rows above it), their rows in
/// parallel strips.
fn mirror_blocks<F: Real>(a: &mut [F], n: usize, bs: usize) {
    const STRIP: usize = 16;
    for i0 in (bs..n).step_by(bs) {
        let i1 = (i0 + bs).min(n);
        let (top, rest) = a.split_at_mut(i0 * n);
        let top = &*top;
        rest[..(i1 - i0) * n].par_chunks_mut(STRIP * n).enumerate().for_each(|(c, rows)| {
            let r0 = i0 + c * STRIP;
            let m = rows.len() / n;
            for j in 0..i0 {
                for (k, &x) in top[j * n + r0..j * n + r0 + m].iter().enumerate() {
                    rows[k * n + j] = x;
                }
            }
        });
    }
}

/// A raw pointer shared by the tasks of [`symmetrize_in_place`], which touch disjoint entries.
struct SharedMut<T>(*mut T);

// SAFETY: the pointer is only dereferenced by `symmetrize_in_place`, whose tasks access disjoint entries of one live
// allocation (see there); `T: Send` values may be written from other threads.
unsafe impl<T: Send> Send for SharedMut<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for SharedMut<T> {}

impl<T> SharedMut<T> {
    fn get(&self) -> *mut T {
        self.0
    }
}

/// a ← a + aᵀ in place for a square row-major matrix (n × n); returns the number of non-zero entries of the result.
/// Tasks take one block row of 32 × 32 tiles on and right of the diagonal each, with the mirrored tiles below it,
/// so every pair (i, j), (j, i) is summed once and the result is symmetric bit for bit. Each tile pair is copied to
/// local buffers by rows first: walking a column of a with its power-of-two row stride would map every access to one
/// cache set.
fn symmetrize_in_place<F: Real>(a: &mut [F], n: usize) -> usize {
    const BS: usize = 32;
    if a.len() != n * n {
        debug_assert!(false, "symmetrize_in_place: {} entries for n = {n}", a.len());
        return 0;
    }
    let p = SharedMut(a.as_mut_ptr());
    (0..n.div_ceil(BS))
        .into_par_iter()
        .map(|bi| {
            let base = p.get();
            let (i0, i1) = (bi * BS, ((bi + 1) * BS).min(n));
            let mi = i1 - i0;
            let mut upper = [F::zero(); BS * BS];
            let mut lower = [F::zero(); BS * BS];
            let mut nnz = 0usize;
            for j0 in (i0..n).step_by(BS) {
                let j1 = (j0 + BS).min(n);
                let mj = j1 - j0;
                // SAFETY: every offset below is (r, c) with r, c < n, inside the n × n allocation, which outlives the
                // tasks. This task touches only the tiles (I, J) and (J, I) for its own block row I and J ≥ I; tile
                // (I, J) with J ≥ I belongs to block row I alone and tile (J, I) to block column I alone, so no two
                // tasks touch one entry, and no reference to the buffer exists while they run.
                unsafe {
                    for r in 0..mi {
                        std::ptr::copy_nonoverlapping(base.add((i0 + r) * n + j0), upper.as_mut_ptr().add(r * BS), mj);
                    }
                    for r in 0..mj {
                        std::ptr::copy_nonoverlapping(base.add((j0 + r) * n + i0), lower.as_mut_ptr().add(r * BS), mi);
                    }
                }
                for r in 0..mi {
                    for c in 0..mj {
                        let t = upper[r * BS + c] + lower[c * BS + r];
                        upper[r * BS + c] = t;
                        // Off the diagonal tile each entry stands for itself and its mirror image.
                        if t != F::zero() {
                            nnz += if j0 != i0 { 2 } else { 1 };
                        }
                    }
                }
                for c in 0..mj {
                    for r in 0..mi {
                        lower[c * BS + r] = upper[r * BS + c];
                    }
                }
                // SAFETY: as above.
                unsafe {
                    for r in 0..mi {
                        std::ptr::copy_nonoverlapping(upper.as_ptr().add(r * BS), base.add((i0 + r) * n + j0), mj);
                    }
                    for r in 0..mj {
                        std::ptr::copy_nonoverlapping(lower.as_ptr().add(r * BS), base.add((j0 + r) * n + i0), mi);
                    }
                }
            }
            nnz
        })
        .sum()
}

/// Below this fraction of non-zero entries in G + Gᵀ the gradient product gathers rows instead of running a GEMM
/// (hinge losses such as the contrastive loss leave most pairs inactive).
const SPARSE_MAX_DENSITY: usize = 32;

/// out = scale · (A·H) for a square row-major A (n × n) with few non-zero entries, row by row (each output row sums its
/// terms in column order, so the result does not depend on the number of threads). With `diag_from_rows`, A's diagonal
/// is replaced by aᵢᵢ − Σⱼ aᵢⱼ first (the Euclidean chain rule's diagonal term).
fn sparse_product<F: Real>(a: &[F], h: &[F], n: usize, d: usize, scale: F, diag_from_rows: bool, out: &mut [F]) {
    const CHUNK: usize = 16;
    out.par_chunks_mut(d).zip(a.par_chunks(n)).enumerate().for_each_init(Vec::new, |cols, (i, (o, arow))| {
        cols.clear();
        for (c, chunk) in arow.chunks(CHUNK).enumerate() {
            // Branch-free test of the whole chunk first: most chunks are all zero.
            if chunk.iter().fold(false, |any, &x| any | (x != F::zero())) {
                for (k, &x) in chunk.iter().enumerate() {
                    if x != F::zero() {
                        cols.push(c * CHUNK + k);
                    }
                }
            }
        }
        let diag = if diag_from_rows { arow[i] - lanes_sum(arow, |x| x) } else { arow[i] };
        let mut axpy = |c: F, j: usize| {
            for (oj, &hj) in o.iter_mut().zip(&h[j * d..(j + 1) * d]) {
                *oj += c * hj;
            }
        };
        for &j in cols.iter().filter(|&&j| j != i) {
            axpy(scale * arow[j], j);
        }
        if diag != F::zero() {
            axpy(scale * diag, i);
        }
    });
}

/// The dense, self-referenced case (no reference set, one tile): the whole matrix v is built once, with the GEMM
/// run on the blocks above the diagonal only ([`self_values`]); each row's kernel writes ∂ℓ/∂v over its own row of v
/// (the row is copied to a scratch buffer first), G + Gᵀ is formed in place, and the gradient is one product
/// (G + Gᵀ)·X̂, through GEMM, or row gathers when G + Gᵀ is sparse. The row passes run with the widest SIMD
/// instruction set the CPU has.
fn dense_self<F: Real, K: PairKernel<F>>(
    kernel: &K,
    q: &Side<F>,
    labels: &[i64],
    distance: Distance,
    counts: &Counts,
    grad: bool,
) -> Result<EmbeddingOutput<F>> {
    let (n, d) = q.h.dim();
    let sign = distance.sign::<F>();
    let euclid = distance.is_euclidean();
    let isa = Isa::detect();
    let mut v = self_values(q, distance, isa);
    fn self_row<'a, F>(labels: &'a [i64], i: usize, v: &'a [F], sign: F) -> Row<'a, F> {
        Row { v, label: labels[i], ref_labels: labels, self_col: Some(i), sign }
    }

    let mut stats = [0.0_f64; 4];
    if kernel.needs_stats() {
        let vs = v.as_slice().unwrap_or(&[]); // ok: a fresh standard-layout array
        let parts: Vec<[f64; 4]> = vs
            .par_chunks(n)
            .enumerate()
            .map(|(i, vrow)| {
                let mut out = [0.0; 4];
                isa.run(StatsRow { kernel, row: self_row(labels, i, vrow, sign), out: &mut out });
                out
            })
            .collect();
        for p in parts {
            for (s, x) in stats.iter_mut().zip(p) {
                *s += x;
            }
        }
    }

    let vs = v.as_slice_mut().unwrap_or(&mut []); // ok: a fresh standard-layout array
    let outs: Vec<RowOut> = if grad {
        vs.par_chunks_mut(n)
            .enumerate()
            .map_init(Vec::new, |scratch: &mut Vec<F>, (i, g)| {
                scratch.clear();
                scratch.extend_from_slice(g);
                g.fill(F::zero());
                let vrow = scratch.as_slice();
                isa.run(KernelRow { kernel, row: self_row(labels, i, vrow, sign), stats: &stats, g: Some(g), euclid })
            })
            .collect()
    } else {
        vs.par_chunks(n)
            .enumerate()
            .map(|(i, vrow)| {
                isa.run(KernelRow { kernel, row: self_row(labels, i, vrow, sign), stats: &stats, g: None, euclid })
            })
            .collect()
    };
    let mut tally = [0.0_f64; 4];
    let mut per_sample = Vec::with_capacity(n);
    for o in &outs {
        per_sample.push(F::c(o.loss));
        for (s, x) in tally.iter_mut().zip(o.tally) {
            *s += x;
        }
    }
    let fin = kernel.finish(&tally, &stats, counts);
    if fin.zero {
        return Ok(EmbeddingOutput {
            value: F::zero(),
            per_sample: Some(Array1::zeros(n)),
            grad: grad.then(|| Array2::zeros((n, d))),
            grad_reference: None,
        });
    }
    let grad = if grad {
        // ∂/∂X̂ = (G + Gᵀ)·X̂ (+ the Euclidean diagonal term), scaled once by the reduction's factor.
        let nnz = symmetrize_in_place(vs, n);
        let scale = F::c(fin.grad_scale);
        let mut gq = Array2::zeros((n, d));
        let h = q.h.as_slice().unwrap_or(&[]); // ok: rows built by `side` are standard-layout
        let out = gq.as_slice_mut().unwrap_or(&mut []); // ok: a fresh standard-layout array
        if nnz.saturating_mul(SPARSE_MAX_DENSITY) <= n * n {
            sparse_product(vs, h, n, d, scale, euclid, out);
        } else {
            if euclid {
                // Column sums of W enter as a diagonal: (G + Gᵀ)ᵢᵢ − Σⱼ (G + Gᵀ)ᵢⱼ (G = −W, wᵢᵢ = 0).
                vs.par_chunks_mut(n).enumerate().for_each(|(i, row)| {
                    let sum = lanes_sum(row, |x| x);
                    row[i] -= sum;
                });
            }
            gemm(scale, &v, &q.h, F::zero(), &mut gq);
        }
        match &q.norms {
            Some(norms) => Some(l2_normalize_backward(gq.view(), q.h.view(), norms.view())?),
            None => Some(gq),
        }
    } else {
        None
    };
    Ok(EmbeddingOutput {
        value: F::c(fin.value),
        per_sample: Some(Array1::from_vec(per_sample)),
        grad,
        grad_reference: None,
    })
}

/// A zeroed n × n matrix. A fresh large buffer costs one page fault per 4 KiB page on first write; on Linux a buffer
/// of 8 MiB or more is advised to be backed by transparent huge pages (one fault per 2 MiB), as PyTorch does for its
/// CPU tensors. The advice changes only how the kernel backs the pages; where THP is disabled it is a no-op.
fn zeroed_square<F: Real>(n: usize) -> Array2<F> {
    let v = losskit_tensor::alloc::zeroed(n * n);
    Array2::from_shape_vec((n, n), v).unwrap_or_else(|_| Array2::zeros((n, n))) // ok: n·n entries for [n, n]
}

// Dispatch on [`Isa`]: every path computes the same operations in the same order (Rust never contracts a·b + c into
// an FMA on its own, and the reductions use fixed lanes), so results are bit-identical across paths.
impl Isa {
    /// Runs `task` compiled for this instruction set (the task and everything it inlines).
    #[inline(always)]
    fn run<T: IsaTask>(self, task: T) -> T::Out {
        match self {
            Isa::Baseline => task.call(),
            // SAFETY: `detect` returned this variant only after checking that the CPU has these features.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { with_avx2(task) },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unsafe { with_avx512(task) },
        }
    }
}

/// A piece of work for [`Isa::run`]. `call` is `#[inline(always)]` in every implementation, so that its body (and
/// the kernel code it inlines in turn) is compiled into each instruction set's wrapper; a closure's body would be
/// compiled once, for the baseline.
trait IsaTask {
    type Out;
    fn call(self) -> Self::Out;
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn with_avx2<T: IsaTask>(task: T) -> T::Out {
    task.call()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2")]
fn with_avx512<T: IsaTask>(task: T) -> T::Out {
    task.call()
}

/// Distances dⱼ = √max(a + bⱼ − 2vⱼ, 0) over a row, in place (the GEMM expansion of [`tile_values`]).
struct DistanceRow<'a, F> {
    row: &'a mut [F],
    sq: &'a [F],
    a: F,
    two: F,
}

impl<F: Real> IsaTask for DistanceRow<'_, F> {
    type Out = ();
    #[inline(always)]
    fn call(self) {
        let (a, two) = (self.a, self.two);
        for (x, &b) in self.row.iter_mut().zip(self.sq) {
            *x = (a + b - two * *x).max(F::zero()).sqrt();
        }
    }
}

/// A kernel's statistics of one row.
struct StatsRow<'a, 'r, F, K> {
    kernel: &'a K,
    row: Row<'r, F>,
    out: &'a mut [f64; 4],
}

impl<F: Real, K: PairKernel<F>> IsaTask for StatsRow<'_, '_, F, K> {
    type Out = ();
    #[inline(always)]
    fn call(self) {
        self.kernel.stats(&self.row, self.out);
    }
}

/// A kernel's value (and, with `g`, derivative) of one row; for a Euclidean distance the derivative is turned into
/// −wᵢⱼ = −gᵢⱼ/dᵢⱼ, the coefficient of the chain rule through ∂d/∂a = (a − b)/d (0 at d = 0, as torch.cdist's
/// gradient).
struct KernelRow<'a, 'r, F, K> {
    kernel: &'a K,
    row: Row<'r, F>,
    stats: &'a [f64; 4],
    g: Option<&'a mut [F]>,
    euclid: bool,
}

impl<F: Real, K: PairKernel<F>> IsaTask for KernelRow<'_, '_, F, K> {
    type Out = RowOut;
    #[inline(always)]
    fn call(self) -> RowOut {
        match self.g {
            None => self.kernel.row(&self.row, self.stats, None),
            Some(g) => {
                let out = self.kernel.row(&self.row, self.stats, Some(&mut *g));
                if self.euclid {
                    for (gj, &dj) in g.iter_mut().zip(self.row.v) {
                        let w = if dj > F::zero() { *gj / dj } else { F::zero() };
                        *gj = -w;
                    }
                }
                out
            }
        }
    }
}

/// Runs `kernel` over every anchor row.
///
/// # Errors
/// [`Error::Empty`], [`Error::Shape`] (D = 0, labels or reference of the wrong shape), [`Error::NonFinite`].
pub(crate) fn run<F: Real, K: PairKernel<F>>(
    kernel: &K,
    setup: Setup,
    embeddings: ArrayView2<'_, F>,
    labels: ArrayView1<'_, i64>,
    reference: Option<Reference<'_, F>>,
    grad: bool,
) -> Result<EmbeddingOutput<F>> {
    losskit_tensor::pool::on_worker(|| run_here(kernel, setup, embeddings, labels, reference, grad))
}

/// [`run`] on the calling thread.
fn run_here<F: Real, K: PairKernel<F>>(
    kernel: &K,
    setup: Setup,
    embeddings: ArrayView2<'_, F>,
    labels: ArrayView1<'_, i64>,
    reference: Option<Reference<'_, F>>,
    grad: bool,
) -> Result<EmbeddingOutput<F>> {
    check_embeddings("embeddings", "labels", &embeddings, &labels)?;
    let (n, d) = embeddings.dim();
    if let Some(r) = &reference {
        check::non_empty("reference_embeddings", r.embeddings.nrows())?;
        check::shape("reference_embeddings", r.embeddings.shape(), &[None, Some(d)])?;
        check::shape("reference_labels", r.labels.shape(), &[Some(r.embeddings.nrows())])?;
        check::finite("reference_embeddings", &r.embeddings)?;
    }
    let distance = setup.distance;
    let labels: Vec<i64> = labels.iter().copied().collect();
    let q = side(embeddings, distance);
    let ref_side = reference.as_ref().map(|r| side(r.embeddings, distance));
    let ref_labels: Vec<i64> = reference.as_ref().map(|r| r.labels.iter().copied().collect()).unwrap_or_default();
    let symmetric = reference.is_none();
    let (rs, rl): (&Side<F>, &[i64]) = match &ref_side {
        Some(r) => (r, &ref_labels),
        None => (&q, &labels),
    };
    let nr = rs.h.nrows();
    let counts = pair_counts(&labels, rl, symmetric);
    let zero_out = |with_ref: bool| EmbeddingOutput {
        value: F::zero(),
        per_sample: Some(Array1::zeros(n)),
        grad: grad.then(|| Array2::zeros((n, d))),
        grad_reference: (grad && with_ref).then(|| Array2::zeros((nr, d))),
    };
    if kernel.zero(&counts) {
        return Ok(zero_out(!symmetric));
    }
    let sign = distance.sign::<F>();
    let t = tile_rows(setup.tile, n, nr);
    let tiles: Vec<(usize, usize)> = (0..n).step_by(t).map(|r0| (r0, (r0 + t).min(n))).collect();
    if symmetric && tiles.len() == 1 {
        return dense_self(kernel, &q, &labels, distance, &counts, grad);
    }
    let make_row = |i: usize| -> (i64, Option<usize>) { (labels[i], symmetric.then_some(i)) };

    // Statistics pass (only for kernels that need global counts before writing their gradient).
    let mut stats = [0.0_f64; 4];
    let mut cached: Option<Array2<F>> = None;
    if kernel.needs_stats() {
        for &(r0, r1) in &tiles {
            let v = tile_values(&q, rs, distance, r0, r1);
            let parts: Vec<[f64; 4]> = v
                .axis_iter(Axis(0))
                .into_par_iter()
                .enumerate()
                .map(|(k, vrow)| {
                    let vrow = vrow.to_slice().unwrap_or(&[]); // ok: rows of a fresh standard-layout array
                    let (label, self_col) = make_row(r0 + k);
                    let row = Row { v: vrow, label, ref_labels: rl, self_col, sign };
                    let mut out = [0.0; 4];
                    kernel.stats(&row, &mut out);
                    out
                })
                .collect();
            for p in parts {
                for (s, x) in stats.iter_mut().zip(p) {
                    *s += x;
                }
            }
            if tiles.len() == 1 {
                cached = Some(v);
            }
        }
    }

    let mut gq: Option<Array2<F>> = grad.then(|| Array2::zeros((n, d)));
    let mut gr: Option<Array2<F>> = (grad && !symmetric).then(|| Array2::zeros((nr, d)));
    let mut per_sample = vec![F::zero(); n];
    let mut tally = [0.0_f64; 4];
    let euclid = distance.is_euclidean();
    for &(r0, r1) in &tiles {
        let v = match cached.take() {
            Some(v) => v,
            None => tile_values(&q, rs, distance, r0, r1),
        };
        let rows = r1 - r0;
        let mut ds: Option<Array2<F>> = grad.then(|| Array2::zeros((rows, nr)));
        // (row output, Σⱼ wᵢⱼ for the Euclidean chain rule)
        let run_row = |k: usize, vrow: &[F], dsrow: Option<&mut [F]>| -> (RowOut, F) {
            let (label, self_col) = make_row(r0 + k);
            let row = Row { v: vrow, label, ref_labels: rl, self_col, sign };
            match dsrow {
                None => (kernel.row(&row, &stats, None), F::zero()),
                Some(g) => {
                    let out = kernel.row(&row, &stats, Some(&mut *g));
                    let mut wsum = F::zero();
                    if euclid {
                        // ∂d/∂a = (a − b)/d: write −wᵢⱼ = −gᵢⱼ/dᵢⱼ (0 at d = 0, as torch.cdist's gradient).
                        for (gj, &dj) in g.iter_mut().zip(vrow) {
                            let w = if dj > F::zero() { *gj / dj } else { F::zero() };
                            wsum += w;
                            *gj = -w;
                        }
                    }
                    (out, wsum)
                }
            }
        };
        let v_slice = v.as_slice().unwrap_or(&[]); // ok: fresh standard-layout array
        let outs: Vec<(RowOut, F)> = match ds.as_mut() {
            Some(ds) => {
                let ds_slice = ds.as_slice_mut().unwrap_or(&mut []); // ok: fresh standard-layout array
                v_slice
                    .par_chunks(nr)
                    .zip(ds_slice.par_chunks_mut(nr))
                    .enumerate()
                    .map(|(k, (vrow, g))| run_row(k, vrow, Some(g)))
                    .collect()
            }
            None => v_slice.par_chunks(nr).enumerate().map(|(k, vrow)| run_row(k, vrow, None)).collect(),
        };
        drop(v);
        for (k, (o, _)) in outs.iter().enumerate() {
            per_sample[r0 + k] = F::c(o.loss);
            for (s, x) in tally.iter_mut().zip(o.tally) {
                *s += x;
            }
        }
        if let (Some(ds), Some(gq)) = (ds, gq.as_mut()) {
            let q_tile = q.h.slice(s![r0..r1, ..]);
            // Euclidean: column sums cⱼ = Σᵢ wᵢⱼ = −Σᵢ dsᵢⱼ, for the reference side's diagonal term.
            let col = euclid.then(|| ds.sum_axis(Axis(0)).mapv(|x| -x));
            gemm(F::one(), &ds, &rs.h, F::one(), &mut gq.slice_mut(s![r0..r1, ..]));
            let target = match gr.as_mut() {
                Some(gr) => gr,
                None => &mut *gq,
            };
            gemm(F::one(), &ds.t(), &q_tile, F::one(), target);
            if let Some(col) = col {
                for (k, (_, wsum)) in outs.iter().enumerate() {
                    let i = r0 + k;
                    let row_h = q.h.row(i);
                    gq.row_mut(i).scaled_add(*wsum, &row_h);
                }
                let target = match gr.as_mut() {
                    Some(gr) => gr,
                    None => &mut *gq,
                };
                Zip::from(target.rows_mut()).and(rs.h.rows()).and(&col).par_for_each(|mut g, h, &c| {
                    g.scaled_add(c, &h);
                });
            }
        }
    }

    let fin = kernel.finish(&tally, &stats, &counts);
    if fin.zero {
        return Ok(zero_out(!symmetric));
    }
    let scale = F::c(fin.grad_scale);
    let back = |g: Option<Array2<F>>, s: &Side<F>| -> Result<Option<Array2<F>>> {
        match g {
            None => Ok(None),
            Some(mut g) => {
                if scale != F::one() {
                    g.par_mapv_inplace(|x| x * scale);
                }
                match &s.norms {
                    Some(norms) => l2_normalize_backward(g.view(), s.h.view(), norms.view()).map(Some),
                    None => Ok(Some(g)),
                }
            }
        }
    };
    let grad_q = back(gq, &q)?;
    let grad_r = match &ref_side {
        Some(r) => back(gr, r)?,
        None => None,
    };
    Ok(EmbeddingOutput {
        value: F::c(fin.value),
        per_sample: Some(Array1::from_vec(per_sample)),
        grad: grad_q,
        grad_reference: grad_r,
    })
}

/// Positive and negative pair counts from the labels alone.
pub(crate) fn pair_counts(labels: &[i64], ref_labels: &[i64], symmetric: bool) -> Counts {
    let mut freq: HashMap<i64, u64> = HashMap::new();
    for &l in ref_labels {
        *freq.entry(l).or_default() += 1;
    }
    let r = ref_labels.len() as u64;
    let mut c = Counts { rows: labels.len(), ..Counts::default() };
    for &l in labels {
        let same = freq.get(&l).copied().unwrap_or(0);
        c.pos_pairs += same - u64::from(symmetric && same > 0);
        c.neg_pairs += r - same;
    }
    c
}

/// log(1 + Σₖ e^{wₖ}) over the masked entries of a row, with its softmax written into `p` (0 off the mask).
/// Returns (value, Σ mask): the value is 0 when the mask is empty, as PML's masked `logsumexp(add_one=True)`.
#[inline(always)]
pub(crate) fn lse1_masked<F: Real>(
    w: impl Fn(usize) -> F,
    mask: impl Fn(usize) -> bool,
    len: usize,
    p: Option<&mut [F]>,
) -> (f64, usize) {
    let mut m = F::zero();
    let mut count = 0usize;
    for j in 0..len {
        if mask(j) {
            count += 1;
            let x = w(j);
            if x > m {
                m = x;
            }
        }
    }
    if count == 0 {
        return (0.0, 0);
    }
    let mut z = (-m).fast_exp();
    match p {
        Some(p) => {
            for j in 0..len {
                if mask(j) {
                    let e = (w(j) - m).fast_exp();
                    z += e;
                    p[j] = e;
                }
            }
            let inv = F::one() / z;
            for j in 0..len {
                if mask(j) {
                    p[j] *= inv;
                }
            }
        }
        None => {
            for j in 0..len {
                if mask(j) {
                    z += (w(j) - m).fast_exp();
                }
            }
        }
    }
    (m.f64() + z.f64().ln(), count)
}

/// The columns of a row whose reference label equals the anchor's (the anchor's own column included, in order).
/// Pair losses see few of them (a P×K batch has K − 1 positives per anchor): the other columns form contiguous runs
/// of negatives that the kernels sweep with branch-free, vectorised loops.
pub(crate) fn same_label_cols<F: Real>(row: &Row<'_, F>) -> Vec<usize> {
    let mut out = Vec::new();
    for (j, &l) in row.ref_labels.iter().enumerate() {
        if l == row.label {
            out.push(j);
        }
    }
    out
}

/// The half-open column ranges between the sorted columns `cuts` in a row of length `r`.
pub(crate) fn runs_between(cuts: &[usize], r: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
    let starts = std::iter::once(0).chain(cuts.iter().map(|&c| c + 1));
    let ends = cuts.iter().copied().chain(std::iter::once(r));
    starts.zip(ends).filter(|(a, b)| a < b)
}

/// Lanes of the vectorised reductions (independent accumulators, combined in a fixed order: deterministic).
const LANES: usize = 8;

/// max(init, maxⱼ f(xⱼ)) in [`LANES`] independent lanes (branch-free selects, so the loop vectorises).
#[inline(always)]
pub(crate) fn lanes_max<F: Real>(x: &[F], init: F, f: impl Fn(F) -> F) -> F {
    let mut acc = [init; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, &xj) in acc.iter_mut().zip(c) {
            let y = f(xj);
            *a = if y > *a { y } else { *a };
        }
    }
    for &xj in tail {
        let y = f(xj);
        acc[0] = if y > acc[0] { y } else { acc[0] };
    }
    acc.iter().fold(init, |m, &a| if a > m { a } else { m })
}

/// Σⱼ f(xⱼ) in [`LANES`] independent lanes, combined pairwise in a fixed order.
#[inline(always)]
pub(crate) fn lanes_sum<F: Real>(x: &[F], f: impl Fn(F) -> F) -> F {
    let mut acc = [F::zero(); LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, &xj) in acc.iter_mut().zip(c) {
            *a += f(xj);
        }
    }
    for &xj in tail {
        acc[0] += f(xj);
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

/// Σⱼ f(xⱼ) in f64, in [`LANES`] independent lanes combined in a fixed order.
#[inline(always)]
pub(crate) fn lanes_sum_f64<F: Real>(x: &[F], f: impl Fn(F) -> f64) -> f64 {
    let mut acc = [0.0_f64; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, &xj) in acc.iter_mut().zip(c) {
            *a += f(xj);
        }
    }
    for &xj in tail {
        acc[0] += f(xj);
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn symmetrize_adds_the_transpose_in_place() {
        for n in [1, 31, 32, 33, 130] {
            let a: Vec<f64> = (0..n * n).map(|k| if k % 7 == 3 { 0.0 } else { (k as f64 * 0.37).sin() }).collect();
            let mut b = a.clone();
            let nnz = symmetrize_in_place(&mut b, n);
            let mut want_nnz = 0;
            for i in 0..n {
                for j in 0..n {
                    assert_eq!(b[i * n + j], a[i * n + j] + a[j * n + i], "n = {n}, ({i}, {j})");
                    want_nnz += usize::from(b[i * n + j] != 0.0);
                }
            }
            assert_eq!(nnz, want_nnz, "n = {n}");
        }
    }

    #[test]
    fn self_values_equal_the_full_product_bit_for_bit() {
        // More rows than one block (64), not a multiple of it, so mirrored blocks and a ragged edge are exercised.
        let x = Array2::from_shape_fn((203, 9), |(i, k)| ((i * 9 + k) as f64 * 0.713).sin());
        for distance in [Distance::Cosine, Distance::Euclidean, Distance::EuclideanUnnormalized] {
            let q = side(x.view(), distance);
            let full = tile_values(&q, &q, distance, 0, 203);
            for isa in [Isa::Baseline, Isa::detect()] {
                assert_eq!(self_values(&q, distance, isa), full, "{distance:?} {isa:?}");
            }
        }
    }

    #[test]
    fn sparse_product_matches_the_gemm() {
        let (n, d) = (70, 5);
        let a: Vec<f64> = (0..n * n).map(|k| if k % 13 == 0 { (k as f64 * 0.31).cos() } else { 0.0 }).collect();
        let h = Array2::from_shape_fn((n, d), |(i, k)| ((i * d + k) as f64 * 0.29).sin());
        for diag in [false, true] {
            let mut am = Array2::from_shape_vec((n, n), a.clone()).unwrap();
            if diag {
                for i in 0..n {
                    let sum: f64 = am.row(i).sum();
                    am[[i, i]] -= sum;
                }
            }
            let want = am.dot(&h) * 0.5;
            let mut got = vec![0.0; n * d];
            sparse_product(&a, h.as_slice().unwrap(), n, d, 0.5, diag, &mut got);
            for (g, w) in got.iter().zip(want.iter()) {
                assert!((g - w).abs() <= 1e-12 * (1.0 + w.abs()), "{g} vs {w}");
            }
        }
    }

    #[test]
    fn runs_and_lanes() {
        let runs: Vec<_> = runs_between(&[0, 3, 4, 9], 10).collect();
        assert_eq!(runs, vec![(1, 3), (5, 9)]);
        assert_eq!(runs_between(&[], 5).collect::<Vec<_>>(), vec![(0, 5)]);
        let x: Vec<f64> = (0..21).map(|k| ((k * 7) % 11) as f64 - 3.0).collect();
        assert_eq!(lanes_max(&x, f64::NEG_INFINITY, |v| v), 7.0);
        assert_eq!(lanes_max(&x[..3], 100.0, |v| v), 100.0);
        assert_eq!(lanes_sum(&x, |v| 2.0 * v), 2.0 * x.iter().sum::<f64>());
        let row = Row { v: &[0.0_f64; 4], label: 2, ref_labels: &[2, 1, 2, 3], self_col: Some(0), sign: 1.0 };
        assert_eq!(same_label_cols(&row), vec![0, 2]);
    }

    #[test]
    fn pair_counts_exclude_self_only_without_reference() {
        let c = pair_counts(&[0, 0, 1], &[0, 0, 1], true);
        assert_eq!((c.pos_pairs, c.neg_pairs), (2, 4));
        let c = pair_counts(&[0, 5], &[0, 0, 1], false);
        assert_eq!((c.pos_pairs, c.neg_pairs), (2, 4));
    }

    #[test]
    fn tiles_cover_the_rows() {
        assert_eq!(tile_rows(0, 10, 10), 10);
        assert_eq!(tile_rows(3, 10, 10), 3);
        assert_eq!(tile_rows(30, 10, 10), 10);
        assert_eq!(tile_rows(0, 1 << 15, 1 << 15), 128);
    }

    #[test]
    fn distance_words_round_trip() {
        for w in Distance::NAMES {
            assert_eq!(Distance::parse(w).unwrap().as_str(), *w);
        }
        assert!(matches!(Distance::parse("manhattan"), Err(Error::ParameterText { .. })));
        let x = array![[1.0_f64, 0.0]];
        let y = ndarray::Array1::from(vec![0_i64]);
        assert!(check_embeddings("embeddings", "labels", &x.view(), &y.view()).is_ok());
    }
}
