//! The shared driver of the multiclass losses: validation, parallel rows, weights, reduction, gradient scaling.
//!
//! A loss supplies a [`RowKernel`]: for one logit row it returns the row loss ℓᵢ and writes c·∂ℓᵢ/∂zᵢ for a scale c
//! the driver chooses. Because the Mean denominator is known before any row is computed (it depends on the
//! targets and weights only), the kernel writes the final, reduced gradient in the same sweep that reads the row;
//! there is no second pass over the gradient.
//!
//! Rows are cut into tasks of a fixed number of rows that depends on the shape only, each task sums its rows in
//! order (in f64), and the task sums are added in task order, so the value is bit-for-bit the same whatever the
//! number of threads.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2, Ix2};
use rayon::prelude::*;

use losskit_tensor::{Error, Real, Reduction, Result, check};

use super::rowmath;
use crate::core::{LossOutput, Targets};
use crate::isa::Isa;

/// A fresh gradient of at least this many bytes is written with non-temporal stores (about twice a core's L2)...
const STREAM_MIN_BYTES: usize = 4 << 20;
/// ... when its rows are at most this long, so that the row buffer stays in L1 (wider rows, 1024×32000 for one, were
/// measured 5–10% slower streamed: the buffer then round-trips through L2).
const STREAM_MAX_ROW: usize = 16 << 10;

/// About this many logits per parallel task: large enough to amortise scheduling, small enough to balance two
/// threads on small batches and keep a task's rows in L2.
const TASK_ELEMS: usize = 16 * 1024;

/// One multiclass loss, row by row. The driver guarantees: `z` is finite and non-empty, `max` is its maximum,
/// `label < z.len()`, `target.len() == z.len()`, `grad.len() == z.len()` and holds zeros on entry, except for
/// [`RowKernel::hard`] of a kernel that sets [`RowKernel::WRITES_HARD_ROW`], whose `grad` may hold anything.
pub(crate) trait RowKernel<F: Real>: Sync {
    /// True when [`RowKernel::hard`] writes every element of `grad` (never reads it or leaves one untouched), so
    /// that the driver need not clear a caller's gradient buffer first. Default false.
    const WRITES_HARD_ROW: bool = false;
    /// The row's share of the Mean denominator for a (non-ignored) hard label: its class weight, or 1.
    fn label_weight(&self, label: usize) -> F;
    /// ℓᵢ of a row with a hard label; writes `scale`·∂ℓᵢ/∂z into `grad` when given.
    fn hard(&self, z: &[F], max: F, label: usize, scale: F, grad: Option<&mut [F]>) -> F;
    /// [`RowKernel::hard`] with a scratch buffer that the driver keeps per parallel task (its contents on entry are
    /// unspecified), for kernels that need a temporary row: the driver calls this one, so such a kernel allocates
    /// once per task instead of once per row. The default ignores the buffer.
    #[inline(always)]
    fn hard_with_scratch(
        &self,
        z: &[F],
        max: F,
        label: usize,
        scale: F,
        grad: Option<&mut [F]>,
        scratch: &mut Vec<F>,
    ) -> F {
        let _ = scratch;
        self.hard(z, max, label, scale, grad)
    }
    /// ℓᵢ of a row with a probability target; writes `scale`·∂ℓᵢ/∂z into `grad` when given.
    fn soft(&self, z: &[F], max: F, target: &[F], scale: F, grad: Option<&mut [F]>) -> F;
}

/// What the driver needs to know besides the kernel.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Setup {
    /// Hard labels equal to this are skipped: zero loss, zero gradient, no share of the Mean denominator.
    pub ignore_index: Option<i64>,
    /// How per-sample values are reduced.
    pub reduction: Reduction,
}

#[derive(Clone, Copy)]
enum Rows<'a, F> {
    Hard(&'a [i64]),
    Soft(&'a [F]),
}

/// Where the gradient goes.
pub(crate) enum GradDest<'a, F> {
    /// No gradient.
    Skip,
    /// A freshly allocated [N, C] array, returned in [`LossOutput::grad`].
    Alloc,
    /// The caller's [N, C] array (any contents on entry), overwritten; [`LossOutput::grad`] is `None`.
    Into(ArrayViewMut2<'a, F>),
}

/// Everything a task reads.
struct Ctx<'a, F, K> {
    kernel: &'a K,
    rows: Rows<'a, F>,
    z_all: &'a [F],
    c: usize,
    weights: Option<&'a [F]>,
    inv_denominator: f64,
    ignore_index: Option<i64>,
    clear: Clear,
}

/// Which gradient rows a task zeroes before the kernel sees them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Clear {
    /// The buffer is zeroed already.
    Never,
    /// Only rows that the kernel does not compute (ignored, non-finite): it overwrites the others whole.
    SkippedRows,
    /// Every row.
    EveryRow,
}

struct Partial {
    sum: f64,
    bad_row: Option<usize>,
}

/// Runs `kernel` over every row of `logits`.
///
/// Reduction with per-sample weights sᵢ (1 when absent) and per-row denominators dᵢ (0 for an ignored label, the
/// kernel's [`RowKernel::label_weight`] for a hard label, 1 for a soft target):
/// ```text
/// per_sampleᵢ = sᵢ·ℓᵢ     Mean = Σᵢ sᵢ·ℓᵢ / Σᵢ sᵢ·dᵢ     Sum = None = Σᵢ sᵢ·ℓᵢ
/// ```
///
/// # Errors
/// [`Error::Empty`] (N = 0), [`Error::Shape`] (C = 0, targets or weights of the wrong shape),
/// [`Error::LabelOutOfRange`], [`Error::NonFinite`] (logits, soft targets, weights), [`Error::Degenerate`]
/// (negative weight or probability; a Mean whose denominator is 0).
pub(crate) fn run<F: Real, K: RowKernel<F>>(
    kernel: &K,
    setup: Setup,
    logits: ArrayView2<'_, F>,
    targets: Targets<'_, F>,
    weights: Option<ArrayView1<'_, F>>,
    grad: bool,
) -> Result<LossOutput<F, Ix2>> {
    run_to(kernel, setup, logits, targets, weights, if grad { GradDest::Alloc } else { GradDest::Skip })
}

/// [`run`] with the gradient's destination chosen by the caller.
///
/// # Errors
/// As [`run`]; [`Error::Shape`] naming `grad` for a caller's gradient that is not a row-major contiguous [N, C]
/// array. On an error the caller's gradient holds unspecified values.
pub(crate) fn run_to<F: Real, K: RowKernel<F>>(
    kernel: &K,
    setup: Setup,
    logits: ArrayView2<'_, F>,
    targets: Targets<'_, F>,
    weights: Option<ArrayView1<'_, F>>,
    dest: GradDest<'_, F>,
) -> Result<LossOutput<F, Ix2>> {
    let (n, c) = logits.dim();
    check::non_empty("logits", n)?;
    if c == 0 {
        return Err(Error::Shape { arg: "logits", expected: "[N, C] with C ≥ 1".into(), got: vec![n, c] });
    }
    let labels_cow;
    let soft_cow;
    let rows = match targets {
        Targets::Hard(t) => {
            check::shape("targets", t.shape(), &[Some(n)])?;
            check::labels("targets", t, c, setup.ignore_index)?;
            labels_cow = standard(t);
            Rows::Hard(contiguous(&labels_cow))
        }
        Targets::Soft(t) => {
            check::shape("soft_targets", t.shape(), &[Some(n), Some(c)])?;
            check::finite("soft_targets", &t)?;
            if let Some((index, v)) = t.iter().enumerate().find(|(_, v)| **v < F::zero()) {
                return Err(Error::Degenerate {
                    what: format!("soft_targets: negative probability {v} at flat index {index}"),
                });
            }
            soft_cow = standard(t);
            Rows::Soft(contiguous(&soft_cow))
        }
    };
    let weights_cow = match weights {
        Some(w) => {
            check::weights("weights", w, n)?;
            Some(standard(w))
        }
        None => None,
    };
    let w: Option<&[F]> = weights_cow.as_ref().map(|w| contiguous(w));
    let sample_weight = |i: usize| w.map_or(F::one(), |w| w[i]);

    // The Mean denominator, known before any row is computed, so each row's gradient is final when written.
    let inv_denominator = match setup.reduction {
        Reduction::Mean => {
            let mut d = 0.0_f64;
            for i in 0..n {
                let di = match rows {
                    Rows::Hard(y) if Some(y[i]) == setup.ignore_index => continue,
                    Rows::Hard(y) => kernel.label_weight(y[i] as usize),
                    Rows::Soft(_) => F::one(),
                };
                d += (sample_weight(i) * di).f64();
            }
            if d.is_nan() || d <= 0.0 {
                return Err(Error::Degenerate {
                    what: "the mean is undefined: every target is ignored or has zero (sample × class) weight".into(),
                });
            }
            1.0 / d
        }
        Reduction::Sum | Reduction::None => 1.0,
    };

    let logits_cow = standard(logits);
    let z_all: &[F] = contiguous(&logits_cow);
    let rows_per_task = (TASK_ELEMS / c).clamp(1, n);
    let mut per_sample = vec![F::zero(); n];
    // A fresh gradient is allocated uninitialised and each task zeroes its own block just before filling it (in
    // parallel, and while the block is in cache, rather than one `calloc` clearing the whole buffer on the calling
    // thread); a caller's buffer holds anything, so the tasks clear each row the kernel does not overwrite whole, in
    // the same sweep.
    let mut fresh: Option<Vec<F>> = None;
    let mut caller: Option<ArrayViewMut2<'_, F>> = None;
    // What a task clears in a buffer that holds anything (a caller's gradient, or the streamed row buffer).
    let dirty_clear =
        if K::WRITES_HARD_ROW && matches!(rows, Rows::Hard(_)) { Clear::SkippedRows } else { Clear::EveryRow };
    let clear = match &dest {
        GradDest::Skip | GradDest::Alloc => Clear::Never,
        GradDest::Into(_) => dirty_clear,
    };
    let row_bytes = c * std::mem::size_of::<F>();
    let stream = matches!(dest, GradDest::Alloc) && n * row_bytes >= STREAM_MIN_BYTES && row_bytes <= STREAM_MAX_ROW;
    let buffer: Option<GradBlock<'_, F>> = match dest {
        GradDest::Skip => None,
        GradDest::Alloc => {
            let v = fresh.insert(Vec::with_capacity(n * c));
            losskit_tensor::alloc::advise_huge_pages(v.spare_capacity_mut());
            Some(GradBlock::Uninit(&mut v.spare_capacity_mut()[..n * c]))
        }
        GradDest::Into(g) => {
            crate::core::check_grad_buffer((n, c), &g)?;
            Some(GradBlock::Init(caller.insert(g).as_slice_mut().ok_or_else(|| internal(&"grad is not contiguous"))?))
        }
    };
    let grad_chunks: Vec<Option<GradBlock<'_, F>>> = match buffer {
        Some(GradBlock::Init(g)) => g.chunks_mut(rows_per_task * c).map(|b| Some(GradBlock::Init(b))).collect(),
        Some(GradBlock::Uninit(g)) => g.chunks_mut(rows_per_task * c).map(|b| Some(GradBlock::Uninit(b))).collect(),
        None => (0..n.div_ceil(rows_per_task)).map(|_| None).collect(),
    };

    let ctx = Ctx { kernel, rows, z_all, c, weights: w, inv_denominator, ignore_index: setup.ignore_index, clear };
    // A large fresh gradient is streamed: each row is computed into a row buffer that stays in L1, then copied to
    // the gradient with non-temporal stores, so the gradient's memory is written once and never read (zeroing it
    // first would read every line in, then write it back).
    let row_ctx = Ctx { clear: dirty_clear, ..ctx };
    let isa = Isa::detect();
    let task = |(scratch, row): &mut (Vec<F>, Vec<F>),
                (t, (ps, g)): (usize, (&mut [F], Option<GradBlock<'_, F>>))|
     -> Partial {
        let first = t * rows_per_task;
        match g {
            Some(GradBlock::Uninit(block)) if stream => {
                row.resize(c, F::zero());
                let mut total = Partial { sum: 0.0, bad_row: None };
                for (r, (o, out)) in ps.chunks_mut(1).zip(block.chunks_mut(c)).enumerate() {
                    // Adds this row's ℓᵢ to the task's sum in row order, as one call over the block would.
                    let p = isa.run_task(&row_ctx, first + r, o, Some(&mut row[..]), scratch);
                    losskit_tensor::alloc::stream_copy(row, out);
                    total.sum += p.sum;
                    total.bad_row = total.bad_row.or(p.bad_row);
                }
                losskit_tensor::alloc::stream_fence();
                total
            }
            g => isa.run_task(&ctx, first, ps, g.map(GradBlock::zeroed), scratch),
        }
    };

    let jobs = per_sample.chunks_mut(rows_per_task).zip(grad_chunks);
    let partials: Vec<Partial> = if n * c <= TASK_ELEMS {
        let mut buffers = (Vec::new(), Vec::new());
        jobs.enumerate().map(|job| task(&mut buffers, job)).collect()
    } else {
        // One scratch row (and row buffer) per rayon split, not per task: kernels that need a temporary row reuse it.
        let jobs: Vec<_> = jobs.collect();
        jobs.into_par_iter().enumerate().map_init(|| (Vec::new(), Vec::new()), task).collect()
    };

    if let Some(row) = partials.iter().find_map(|p| p.bad_row) {
        let z = &z_all[row * c..(row + 1) * c];
        if let Some((j, v)) = z.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(Error::NonFinite { arg: "logits", index: row * c + j, value: v.f64() });
        }
    }
    let total: f64 = partials.iter().map(|p| p.sum).sum();
    let value = match setup.reduction {
        Reduction::Mean => total * inv_denominator,
        Reduction::Sum | Reduction::None => total,
    };
    let grad = match fresh {
        Some(mut g) => {
            // SAFETY: the blocks handed to the tasks cover the first n·C values of the capacity, and every task ran
            // (a panic would have unwound past this point) and wrote its whole block: zeros first (`zeroed`), or
            // each row copied whole from the row buffer.
            unsafe { g.set_len(n * c) };
            Some(Array2::from_shape_vec((n, c), g).map_err(|e| internal(&e))?)
        }
        None => None,
    };
    Ok(LossOutput { value: F::c(value), per_sample: Some(Array1::from_vec(per_sample)), grad })
}

/// Rows `first..first + out.len()`: per-sample values into `out`, gradient rows into `grad`; the task's sum (f64, in
/// row order) and its first row holding a non-finite logit.
#[inline(always)]
fn task<F: Real, K: RowKernel<F>>(
    ctx: &Ctx<'_, F, K>,
    first: usize,
    out: &mut [F],
    mut grad: Option<&mut [F]>,
    scratch: &mut Vec<F>,
) -> Partial {
    let c = ctx.c;
    let mut partial = Partial { sum: 0.0, bad_row: None };
    for (r, o) in out.iter_mut().enumerate() {
        let i = first + r;
        let z = &ctx.z_all[i * c..(i + 1) * c];
        let (max, finite) = rowmath::max_and_finite(z);
        let ignored = matches!(ctx.rows, Rows::Hard(y) if Some(y[i]) == ctx.ignore_index);
        let g_row = grad.as_deref_mut().map(|g| {
            let row = &mut g[r * c..(r + 1) * c];
            let skipped = !finite || ignored;
            if ctx.clear == Clear::EveryRow || (ctx.clear == Clear::SkippedRows && skipped) {
                row.fill(F::zero());
            }
            row
        });
        if !finite {
            partial.bad_row.get_or_insert(i);
            continue;
        }
        if ignored {
            continue;
        }
        let s = ctx.weights.map_or(F::one(), |w| w[i]);
        let scale = F::c(s.f64() * ctx.inv_denominator);
        let loss = match ctx.rows {
            Rows::Hard(y) => ctx.kernel.hard_with_scratch(z, max, y[i] as usize, scale, g_row, scratch),
            Rows::Soft(t) => ctx.kernel.soft(z, max, &t[i * c..(i + 1) * c], scale, g_row),
        };
        *o = s * loss;
        partial.sum += o.f64();
    }
    partial
}

// Dispatch of the row tasks on [`Isa`]. The paths compute the same operations in the same order (Rust never
// contracts a·b + c into an FMA on its own), except the AVX-512 f32 exponential sweep (`simd::exp_sum`), which fuses
// multiply-adds (within 1 ulp per exponential).
impl Isa {
    #[inline(always)]
    fn run_task<F: Real, K: RowKernel<F>>(
        self,
        ctx: &Ctx<'_, F, K>,
        first: usize,
        out: &mut [F],
        grad: Option<&mut [F]>,
        scratch: &mut Vec<F>,
    ) -> Partial {
        match self {
            Isa::Baseline => task(ctx, first, out, grad, scratch),
            // SAFETY: `detect` returned this variant only after checking that the CPU has these features.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { task_avx2(ctx, first, out, grad, scratch) },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unsafe { task_avx512(ctx, first, out, grad, scratch) },
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn task_avx2<F: Real, K: RowKernel<F>>(
    ctx: &Ctx<'_, F, K>,
    first: usize,
    out: &mut [F],
    grad: Option<&mut [F]>,
    scratch: &mut Vec<F>,
) -> Partial {
    task(ctx, first, out, grad, scratch)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2")]
fn task_avx512<F: Real, K: RowKernel<F>>(
    ctx: &Ctx<'_, F, K>,
    first: usize,
    out: &mut [F],
    grad: Option<&mut [F]>,
    scratch: &mut Vec<F>,
) -> Partial {
    task(ctx, first, out, grad, scratch)
}

/// One task's block of the gradient: the caller's values, or fresh memory not written yet.
enum GradBlock<'a, F> {
    Init(&'a mut [F]),
    Uninit(&'a mut [std::mem::MaybeUninit<F>]),
}

impl<'a, F: Real> GradBlock<'a, F> {
    /// The block as values: a caller's as it is, a fresh one after writing zeros over it (what the kernels expect
    /// of a fresh gradient). The zeros are written by the task that fills the block next, so the clearing runs in
    /// parallel and leaves the block in cache for the kernel's writes.
    fn zeroed(self) -> &'a mut [F] {
        match self {
            GradBlock::Init(g) => g,
            GradBlock::Uninit(g) => {
                for v in g.iter_mut() {
                    v.write(F::zero());
                }
                let len = g.len();
                // SAFETY: every element was written just above; MaybeUninit<F> has F's layout.
                unsafe { std::slice::from_raw_parts_mut(g.as_mut_ptr().cast::<F>(), len) }
            }
        }
    }
}

/// The view itself when it is in standard (row-major, contiguous) layout, else a standard-layout copy.
pub(crate) fn standard<'a, T: Clone, D: ndarray::Dimension>(
    v: ndarray::ArrayView<'a, T, D>,
) -> ndarray::CowArray<'a, T, D> {
    if v.is_standard_layout() {
        ndarray::CowArray::from(v)
    } else {
        ndarray::CowArray::from(v.as_standard_layout().into_owned())
    }
}

/// The slice of a standard-layout array (always present: callers pass the result of `as_standard_layout`).
pub(crate) fn contiguous<'a, T, D: ndarray::Dimension>(a: &'a ndarray::CowArray<'_, T, D>) -> &'a [T] {
    debug_assert!(a.as_slice().is_some());
    a.as_slice().unwrap_or(&[])
}

fn internal(e: &dyn std::fmt::Display) -> Error {
    Error::Degenerate { what: format!("internal error: {e}") }
}

/// Converts config class weights (f64) to `F`, checking their count against C.
pub(crate) fn class_weights<F: Real>(w: Option<&[f64]>, c: usize) -> Result<Option<Vec<F>>> {
    match w {
        None => Ok(None),
        Some(w) => {
            check::shape("class_weights", &[w.len()], &[Some(c)])?;
            Ok(Some(w.iter().map(|&v| F::c(v)).collect()))
        }
    }
}

/// Checks a class-weight vector parameter: every entry finite and ≥ 0.
pub(crate) fn check_class_weights(w: Option<&[f64]>) -> Result<()> {
    if let Some(&v) = w.and_then(|w| w.iter().find(|v| !(v.is_finite() && **v >= 0.0))) {
        return Err(Error::Parameter {
            name: "class_weights",
            value: v,
            reason: "every class weight must be finite and ≥ 0",
        });
    }
    Ok(())
}
