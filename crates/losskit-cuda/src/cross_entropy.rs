//! Fused softmax cross-entropy on the GPU: value, per-sample losses and the logits gradient from one kernel launch
//! (plus a tiny deterministic reduction), with exactly the semantics of the CPU [`CrossEntropy`] config.

use std::mem::size_of;

use cudarc::driver::{CudaFunction, CudaSlice, LaunchConfig, PushKernelArg};
use losskit_losses::{CrossEntropy, LossOutput};
use losskit_tensor::{Error, Reduction, Result, check};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Ix2};

use crate::device::{Gpu, device_error, guard};
use crate::dtype::{GpuFloat, GpuLabel};

/// Widest row handled by one warp; wider rows get a whole block.
const WARP_MAX_CLASSES: usize = 1024;
/// Rows per 256-thread block in warp mode.
const ROWS_PER_BLOCK: usize = 8;
/// Rows at least this long (bytes) take the shared-memory row cache (`ce_*_cached`) when a gradient is asked for:
/// below it, the rows that the SMs hold at once fit in L2 and the second pass re-reads them from there anyway.
const CACHE_MIN_ROW_BYTES: usize = 64 << 10;
/// Threads of a `ce_*_cached` block (one block per SM: its shared memory is all the row cache).
const CACHED_THREADS: u32 = 1024;

/// The scalars the kernel needs, derived on the host from the config and the (validated) inputs.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Plan {
    pub n: usize,
    pub c: usize,
    pub ignore_index: i64,
    pub label_smoothing: f32,
    /// 1 / temperature.
    pub inv_temperature: f32,
    /// Σ_c cw_c (C without class weights).
    pub weight_sum: f32,
    /// Multiplier of every gradient row: 1 / (mean's denominator) under `Mean`, else 1.
    pub grad_scale: f32,
    /// Multiplier of Σ per-row losses giving the value.
    pub value_scale: f64,
    pub class_weights: Option<Vec<f32>>,
}

/// Validates the inputs exactly as the CPU path does (same checks, same order, same errors) and derives the
/// kernel's scalars, among them the Mean's denominator Σᵢ sᵢ·cw[yᵢ] over the rows whose target is not ignored.
pub(crate) fn plan<T: GpuFloat, L: GpuLabel>(
    loss: &CrossEntropy,
    logits: &ArrayView2<'_, T>,
    targets: &ArrayView1<'_, L>,
    weights: Option<&ArrayView1<'_, f32>>,
) -> Result<Plan> {
    loss.check()?;
    let (n, c) = logits.dim();
    if let Some(cw) = loss.class_weights.as_ref() {
        check::shape("class_weights", &[cw.len()], &[Some(c)])?;
    }
    check::non_empty("logits", n)?;
    if c == 0 {
        return Err(Error::Shape { arg: "logits", expected: "[N, C] with C ≥ 1".into(), got: vec![n, c] });
    }
    check::shape("targets", targets.shape(), &[Some(n)])?;
    let labels: Array1<i64> = targets.iter().map(|l| l.to_i64()).collect();
    check::labels("targets", labels.view(), c, Some(loss.ignore_index))?;
    if let Some(w) = weights {
        check::weights("weights", w.view(), n)?;
    }
    let class_weights: Option<Vec<f32>> = loss.class_weights.as_ref().map(|w| w.iter().map(|&v| v as f32).collect());

    // Σ sᵢ·cw[yᵢ] over non-ignored rows, in f64 and row order (deterministic).
    let mut denominator = 0.0_f64;
    for (i, &y) in labels.iter().enumerate() {
        if y == loss.ignore_index {
            continue;
        }
        let cw = class_weights.as_ref().map_or(1.0, |cw| f64::from(cw[y as usize])); // ok: y checked in 0..c
        let s = weights.map_or(1.0, |w| f64::from(w[i]));
        denominator += s * cw;
    }
    let (grad_scale, value_scale) = match loss.reduction {
        Reduction::Mean => {
            if denominator.is_nan() || denominator <= 0.0 {
                return Err(Error::Degenerate {
                    what: "the mean is undefined: every target is ignored or has zero (sample × class) weight".into(),
                });
            }
            (1.0 / denominator, 1.0 / denominator)
        }
        Reduction::Sum | Reduction::None => (1.0, 1.0),
    };
    if let Some((index, v)) = logits.iter().enumerate().find(|(_, v)| !v.to_f32().is_finite()) {
        return Err(Error::NonFinite { arg: "logits", index, value: f64::from(v.to_f32()) });
    }
    if n > i32::MAX as usize || c > i32::MAX as usize {
        return Err(Error::Input {
            what: format!("logits: the GPU kernel takes at most 2^31 − 1 rows and classes, got [{n}, {c}]"),
        });
    }
    let weight_sum = class_weights.as_ref().map_or(c as f64, |cw| cw.iter().map(|&v| f64::from(v)).sum());
    Ok(Plan {
        n,
        c,
        ignore_index: loss.ignore_index,
        label_smoothing: loss.label_smoothing as f32,
        inv_temperature: (1.0 / loss.temperature) as f32,
        weight_sum: weight_sum as f32,
        grad_scale: grad_scale as f32,
        value_scale,
        class_weights,
    })
}

/// Whether rows of `c` classes go one per warp (else one per block), and the launch shape.
pub(crate) fn launch_shape(n: usize, c: usize) -> (bool, LaunchConfig) {
    if c <= WARP_MAX_CLASSES {
        let blocks = n.div_ceil(ROWS_PER_BLOCK) as u32;
        (
            true,
            LaunchConfig {
                grid_dim: (blocks, 1, 1),
                block_dim: (32 * ROWS_PER_BLOCK as u32, 1, 1),
                shared_mem_bytes: 0,
            },
        )
    } else {
        // Long rows get 512 threads (two blocks per SM under the kernel's __launch_bounds__(512, 2)), shorter
        // ones 256 so that each thread still has a few 16-byte vectors to stream.
        let threads = if c >= 4096 { 512 } else { 256 };
        (false, LaunchConfig { grid_dim: (n as u32, 1, 1), block_dim: (threads, 1, 1), shared_mem_bytes: 0 })
    }
}

/// The gradient launch of long rows: `ce_*_cached` with `cap` elements of each row kept in dynamic shared memory
/// between the kernel's two passes, so that they are read from device memory once.
#[derive(Debug)]
struct RowCache {
    kernel: CudaFunction,
    config: LaunchConfig,
    cap: i32,
}

/// Sets up the row cache for rows of `c` elements of `elem` bytes: as much of the row as the device's opt-in shared
/// memory per block holds beside the kernel's static shared memory, or `None` when that is under 16 KiB.
fn row_cache(gpu: &Gpu, name: &str, n: usize, c: usize, elem: usize) -> Result<Option<RowCache>> {
    use cudarc::driver::sys::{CUdevice_attribute, CUfunction_attribute};
    let kernel = gpu.function("cross_entropy", name)?;
    guard("configuring the cross-entropy row cache", || {
        let attr = |e| device_error("configuring the cross-entropy row cache", e);
        let optin = gpu
            .context()
            .attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)
            .map_err(attr)?;
        let fixed = kernel.get_attribute(CUfunction_attribute::CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES).map_err(attr)?;
        let avail = (optin.max(0) as usize).saturating_sub(fixed.max(0) as usize) / 16 * 16;
        let bytes = avail.min((c * elem).div_ceil(16) * 16);
        if bytes < 16 << 10 {
            return Ok(None);
        }
        kernel
            .set_attribute(CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes as i32)
            .map_err(attr)?;
        let config = LaunchConfig {
            grid_dim: (n as u32, 1, 1),
            block_dim: (CACHED_THREADS, 1, 1),
            shared_mem_bytes: bytes as u32,
        };
        Ok(Some(RowCache { kernel, config, cap: (bytes / elem) as i32 }))
    })
}

/// A cross-entropy problem resident on the device: inputs uploaded once, outputs allocated once, so that it can be
/// launched (and timed) repeatedly. [`Gpu::cross_entropy`] is upload + [`launch`](Self::launch) +
/// [`output`](Self::output).
#[derive(Debug)]
pub struct CrossEntropyBatch<'g, T: GpuFloat, L: GpuLabel> {
    gpu: &'g Gpu,
    plan: Plan,
    logits: CudaSlice<T>,
    targets: CudaSlice<L>,
    class_weights: Option<CudaSlice<f32>>,
    weights: Option<CudaSlice<f32>>,
    grad: Option<CudaSlice<T>>,
    rows: CudaSlice<f32>,
    total: CudaSlice<f64>,
    kernel: CudaFunction,
    reduce: CudaFunction,
    config: LaunchConfig,
    /// The gradient launch for long rows (see [`CACHE_MIN_ROW_BYTES`]).
    cached: Option<RowCache>,
    /// Whether the last launch wrote the gradient.
    wrote_grad: bool,
    launched: bool,
}

impl Gpu {
    /// Cross-entropy of `logits` [N, C] against class indices `targets` `[N]`, with optional per-sample `weights` `[N]`,
    /// computed on this GPU with the semantics of the CPU path (`loss.compute(...)`): same value, per-sample losses
    /// and gradient up to f32 rounding, same validation errors.
    ///
    /// Logits may be `f32`, `half::bf16` or `half::f16`; the gradient has the logits' type; targets may be `i64` or
    /// `i32`. Accumulation is f32 (the value's final sum f64); results are bitwise reproducible.
    ///
    /// # Errors
    /// The CPU path's errors ([`Error::Parameter`], [`Error::Shape`], [`Error::NonFinite`],
    /// [`Error::LabelOutOfRange`], ...) for bad input, [`Error::Device`] when a driver call or kernel fails.
    pub fn cross_entropy<T: GpuFloat, L: GpuLabel>(
        &self,
        loss: &CrossEntropy,
        logits: ArrayView2<'_, T>,
        targets: ArrayView1<'_, L>,
        weights: Option<ArrayView1<'_, f32>>,
        grad: bool,
    ) -> Result<LossOutput<T, Ix2>> {
        let mut batch = self.cross_entropy_batch(loss, logits, targets, weights)?;
        batch.launch(grad)?;
        batch.output()
    }

    /// Validates the inputs and uploads them, ready for [`CrossEntropyBatch::launch`].
    ///
    /// # Errors
    /// As [`Gpu::cross_entropy`].
    pub fn cross_entropy_batch<'g, T: GpuFloat, L: GpuLabel>(
        &'g self,
        loss: &CrossEntropy,
        logits: ArrayView2<'_, T>,
        targets: ArrayView1<'_, L>,
        weights: Option<ArrayView1<'_, f32>>,
    ) -> Result<CrossEntropyBatch<'g, T, L>> {
        let plan = plan(loss, &logits, &targets, weights.as_ref())?;
        let (warp, config) = launch_shape(plan.n, plan.c);
        let name = format!("ce_{}_{}_{}", T::NAME, L::NAME, if warp { "warp" } else { "block" });
        let kernel = self.function("cross_entropy", &name)?;
        let reduce = self.function("cross_entropy", "ce_reduce")?;
        let elem = size_of::<T>();
        let cached = if !warp && plan.c * elem >= CACHE_MIN_ROW_BYTES {
            row_cache(self, &format!("ce_{}_{}_cached", T::NAME, L::NAME), plan.n, plan.c, elem)?
        } else {
            None
        };
        guard("uploading cross-entropy inputs", || {
            let up = |e| device_error("uploading cross-entropy inputs", e);
            let stream = self.stream();
            let logits = logits.as_standard_layout();
            let logits = logits.as_slice().ok_or_else(|| Error::Input { what: "logits: not contiguous".into() })?;
            let logits = stream.clone_htod(logits).map_err(up)?;
            let targets = targets.to_vec();
            let targets = stream.clone_htod(&targets).map_err(up)?;
            let class_weights =
                plan.class_weights.as_ref().map(|cw| stream.clone_htod(cw.as_slice())).transpose().map_err(up)?;
            let weights = weights.map(|w| stream.clone_htod(&w.to_vec())).transpose().map_err(up)?;
            let rows = stream.alloc_zeros::<f32>(plan.n).map_err(up)?;
            let total = stream.alloc_zeros::<f64>(1).map_err(up)?;
            Ok(CrossEntropyBatch {
                gpu: self,
                plan,
                logits,
                targets,
                class_weights,
                weights,
                grad: None,
                rows,
                total,
                kernel,
                reduce,
                config,
                cached,
                wrote_grad: false,
                launched: false,
            })
        })
    }
}

impl Gpu {
    /// The device's measured copy bandwidth in GB/s (10⁹ bytes per second, bytes read plus bytes written): the median
    /// of `reps` device-to-device copies of `bytes` bytes, timed with CUDA events after two warm-up copies. The
    /// ceiling that a memory-bound kernel such as the fused cross-entropy is measured against.
    ///
    /// # Errors
    /// [`Error::Parameter`] for `bytes` or `reps` of 0; [`Error::Device`] when an allocation, copy or event fails.
    pub fn copy_bandwidth(&self, bytes: usize, reps: usize) -> Result<f64> {
        if bytes == 0 {
            return Err(Error::Parameter { name: "bytes", value: 0.0, reason: "must be at least 1" });
        }
        if reps == 0 {
            return Err(Error::Parameter { name: "reps", value: 0.0, reason: "must be at least 1" });
        }
        guard("measuring the copy bandwidth", || {
            let dev = |e| device_error("measuring the copy bandwidth", e);
            let stream = self.stream();
            let src = stream.alloc_zeros::<u8>(bytes).map_err(dev)?;
            let mut dst = stream.alloc_zeros::<u8>(bytes).map_err(dev)?;
            let flags = Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT);
            let mut times = Vec::with_capacity(reps);
            for i in 0..reps + 2 {
                let start = self.context().new_event(flags).map_err(dev)?;
                let end = self.context().new_event(flags).map_err(dev)?;
                start.record(stream).map_err(dev)?;
                stream.memcpy_dtod(&src, &mut dst).map_err(dev)?;
                end.record(stream).map_err(dev)?;
                let ms = start.elapsed_ms(&end).map_err(dev)?;
                if i >= 2 {
                    times.push(ms);
                }
            }
            times.sort_by(f32::total_cmp);
            let ms = f64::from(times[times.len() / 2]);
            Ok(2.0 * bytes as f64 / (ms * 1e-3) / 1e9)
        })
    }
}

impl<T: GpuFloat, L: GpuLabel> CrossEntropyBatch<'_, T, L> {
    /// Rows N.
    pub fn rows(&self) -> usize {
        self.plan.n
    }

    /// Classes C.
    pub fn classes(&self) -> usize {
        self.plan.c
    }

    /// Queues the fused kernel and the reduction on the GPU's stream and returns without waiting. With `grad`, the
    /// gradient buffer (allocated on the first such call) is written too.
    ///
    /// # Errors
    /// [`Error::Device`] when an allocation or launch fails.
    pub fn launch(&mut self, grad: bool) -> Result<()> {
        guard("launching cross-entropy", || {
            let launch_err = |e| device_error("launching the cross-entropy kernel", e);
            let stream = self.gpu.stream().clone();
            if grad && self.grad.is_none() {
                self.grad = Some(stream.alloc_zeros::<T>(self.plan.n * self.plan.c).map_err(launch_err)?);
            }
            let null: u64 = 0;
            let n = self.plan.n as i32;
            let c = self.plan.c as i32;
            let ignore_index = self.plan.ignore_index;
            let has_ignore = 1_i32;
            let eps = self.plan.label_smoothing;
            let wsum = self.plan.weight_sum;
            let gscale = self.plan.grad_scale;
            let inv_t = self.plan.inv_temperature;
            let (kernel, config, cap) = match (&self.cached, grad) {
                (Some(rc), true) => (&rc.kernel, rc.config, rc.cap),
                _ => (&self.kernel, self.config, 0_i32),
            };
            let mut b = stream.launch_builder(kernel);
            b.arg(&self.logits);
            b.arg(&self.targets);
            match &self.class_weights {
                Some(cw) => b.arg(cw),
                None => b.arg(&null),
            };
            match &self.weights {
                Some(w) => b.arg(w),
                None => b.arg(&null),
            };
            match (&mut self.grad, grad) {
                (Some(g), true) => b.arg(g),
                _ => b.arg(&null),
            };
            b.arg(&mut self.rows);
            b.arg(&n);
            b.arg(&c);
            b.arg(&ignore_index);
            b.arg(&has_ignore);
            b.arg(&eps);
            b.arg(&wsum);
            b.arg(&gscale);
            b.arg(&inv_t);
            b.arg(&cap);
            // SAFETY: the arguments match the kernel's parameter list in kernels/cross_entropy.cu one for one
            // (pointers as device addresses or 0, then int, int, long long, int, float, float, float, float, int);
            // every buffer holds the N·C, N or C elements the kernel indexes, as built by `cross_entropy_batch`; a
            // cached launch's dynamic shared memory holds `cap` elements (`row_cache`).
            unsafe { b.launch(config) }.map_err(launch_err)?;

            let value_scale = self.plan.value_scale;
            let mut r = stream.launch_builder(&self.reduce);
            r.arg(&self.rows);
            r.arg(&n);
            r.arg(&value_scale);
            r.arg(&mut self.total);
            let one_block = LaunchConfig { grid_dim: (1, 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 };
            // SAFETY: ce_reduce(const float* rows /* N */, int n, double scale, double* out /* 1 */), 256 threads.
            unsafe { r.launch(one_block) }.map_err(launch_err)?;
            self.wrote_grad = grad;
            self.launched = true;
            Ok(())
        })
    }

    /// Runs `warmup` untimed launches, then times `reps` launches one by one with CUDA events, returning each
    /// launch's milliseconds (kernel + reduction, no transfers).
    ///
    /// # Errors
    /// [`Error::Device`] when a launch or event fails.
    pub fn time(&mut self, grad: bool, warmup: usize, reps: usize) -> Result<Vec<f32>> {
        for _ in 0..warmup {
            self.launch(grad)?;
        }
        let mut times = Vec::with_capacity(reps);
        for _ in 0..reps {
            let (start, end) = guard("creating timing events", || {
                let ctx = self.gpu.context();
                let flags = Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT);
                let ev = |e| device_error("creating a timing event", e);
                Ok((ctx.new_event(flags).map_err(ev)?, ctx.new_event(flags).map_err(ev)?))
            })?;
            guard("recording an event", || start.record(self.gpu.stream()).map_err(|e| device_error("recording", e)))?;
            self.launch(grad)?;
            guard("timing", || {
                end.record(self.gpu.stream()).map_err(|e| device_error("recording", e))?;
                times.push(start.elapsed_ms(&end).map_err(|e| device_error("reading an event", e))?);
                Ok(())
            })?;
        }
        Ok(times)
    }

    /// Bytes the fused kernel must move at least: the logits read once, the gradient written once (with `grad`),
    /// targets, per-sample weights and per-row losses.
    pub fn bytes_moved(&self, grad: bool) -> u64 {
        let (n, c) = (self.plan.n as u64, self.plan.c as u64);
        let elem = size_of::<T>() as u64;
        let per_row = size_of::<L>() as u64 + 4 + if self.weights.is_some() { 4 } else { 0 };
        n * c * elem * if grad { 2 } else { 1 } + n * per_row
    }

    /// Waits for the last launch and downloads its results.
    ///
    /// # Errors
    /// [`Error::Input`] before any launch; [`Error::Device`] when the kernel failed or a copy fails.
    pub fn output(&self) -> Result<LossOutput<T, Ix2>> {
        if !self.launched {
            return Err(Error::Input { what: "cross-entropy batch: output requested before any launch".into() });
        }
        guard("downloading cross-entropy outputs", || {
            let down = |e| device_error("downloading cross-entropy outputs", e);
            let stream = self.gpu.stream();
            let rows: Vec<f32> = stream.clone_dtoh(&self.rows).map_err(down)?;
            let total: Vec<f64> = stream.clone_dtoh(&self.total).map_err(down)?;
            let grad = match (&self.grad, self.wrote_grad) {
                (Some(g), true) => Some(stream.clone_dtoh(g).map_err(down)?),
                _ => None,
            };
            stream.synchronize().map_err(down)?;
            let value = T::from_f64(total.first().copied().unwrap_or(f64::NAN));
            let per_sample = Array1::from_iter(rows.iter().map(|&v| T::from_f32(v)));
            let grad = grad
                .map(|g| {
                    Array2::from_shape_vec((self.plan.n, self.plan.c), g)
                        .map_err(|e| device_error("shaping the gradient", e))
                })
                .transpose()?;
            Ok(LossOutput { value, per_sample: Some(per_sample), grad })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use losskit_losses::{ClassLoss, Targets};
    use ndarray::array;

    #[test]
    fn plan_scales_mean_by_weighted_count() {
        let logits = Array2::<f32>::zeros((4, 3));
        let targets = array![0_i64, 2, -100, 1];
        let loss = CrossEntropy::new().class_weights(vec![1.0, 2.0, 4.0]);
        let p = plan(&loss, &logits.view(), &targets.view(), None).unwrap();
        // Rows 0, 1, 3 count with class weights 1, 4, 2; row 2 is ignored.
        assert_eq!(p.value_scale, 1.0 / 7.0);
        assert_eq!(p.grad_scale, (1.0 / 7.0) as f32);
        assert_eq!(p.weight_sum, 7.0);
        let w = array![0.5_f32, 1.0, 3.0, 2.0];
        let p = plan(&loss, &logits.view(), &targets.view(), Some(&w.view())).unwrap();
        assert_eq!(p.value_scale, 1.0 / (0.5 + 4.0 + 4.0));
        let sum = CrossEntropy::new().reduction(Reduction::Sum).temperature(2.0);
        let p = plan(&sum, &logits.view(), &targets.view(), None).unwrap();
        assert_eq!((p.value_scale, p.grad_scale, p.weight_sum, p.inv_temperature), (1.0, 1.0, 3.0, 0.5));
    }

    /// Each bad input gives the CPU path's error, checked by running both on the same f32 arrays.
    #[test]
    fn plan_rejects_bad_input_exactly_like_the_cpu_path() {
        let ok = Array2::<f32>::zeros((3, 4));
        let mut nan = ok.clone();
        nan[[1, 2]] = f32::NAN;
        let empty = Array2::<f32>::zeros((0, 4));
        let no_classes = Array2::<f32>::zeros((3, 0));
        let good_t = vec![0_i64, 3, -100];
        type Case<'a> = (&'a str, CrossEntropy, &'a Array2<f32>, Vec<i64>, Option<Vec<f32>>);
        let cases: Vec<Case<'_>> = vec![
            ("label out of range", CrossEntropy::new(), &ok, vec![0, 4, 1], None),
            ("negative label", CrossEntropy::new(), &ok, vec![0, -1, 1], None),
            ("short targets", CrossEntropy::new(), &ok, vec![0, 1], None),
            ("nan logit", CrossEntropy::new(), &nan, good_t.clone(), None),
            ("nan logit and bad label", CrossEntropy::new(), &nan, vec![9, 9, 9], None),
            ("empty", CrossEntropy::new(), &empty, vec![], None),
            ("no classes", CrossEntropy::new(), &no_classes, vec![0, 0, 0], None),
            ("negative weight", CrossEntropy::new(), &ok, good_t.clone(), Some(vec![1.0, -1.0, 1.0])),
            ("short weights", CrossEntropy::new(), &ok, good_t.clone(), Some(vec![1.0])),
            ("nan weight", CrossEntropy::new(), &ok, good_t.clone(), Some(vec![1.0, f32::NAN, 1.0])),
            ("class weights length", CrossEntropy::new().class_weights(vec![1.0; 3]), &ok, good_t.clone(), None),
            (
                "negative class weight",
                CrossEntropy::new().class_weights(vec![1.0, -1.0, 1.0, 1.0]),
                &ok,
                good_t.clone(),
                None,
            ),
            ("smoothing 1", CrossEntropy::new().label_smoothing(1.0), &ok, good_t.clone(), None),
            ("temperature 0", CrossEntropy::new().temperature(0.0), &ok, good_t.clone(), None),
            ("all ignored mean", CrossEntropy::new(), &ok, vec![-100; 3], None),
            ("zero weights mean", CrossEntropy::new(), &ok, good_t.clone(), Some(vec![0.0; 3])),
            ("other ignore index", CrossEntropy::new().ignore_index(3), &ok, good_t.clone(), None),
        ];
        for (what, loss, logits, t, w) in cases {
            let t = Array1::from(t);
            let w = w.map(Array1::from);
            let cpu = loss.compute(logits.view(), Targets::Hard(t.view()), w.as_ref().map(|w| w.view()), true);
            let gpu = plan(&loss, &logits.view(), &t.view(), w.as_ref().map(|w| w.view()).as_ref());
            let cpu_err = cpu.expect_err(what);
            let gpu_err = gpu.expect_err(what);
            // NaN payloads compare unequal, so compare the messages (they carry every field).
            assert_eq!(gpu_err.to_string(), cpu_err.to_string(), "{what}");
            assert_eq!(std::mem::discriminant(&gpu_err), std::mem::discriminant(&cpu_err), "{what}");
        }
        // And valid input is accepted by both; i32 labels validate like i64.
        let t32 = array![0_i32, 3, -100];
        assert!(plan(&CrossEntropy::new(), &ok.view(), &t32.view(), None).is_ok());
        let bad32 = array![0_i32, 4, 1];
        assert!(matches!(
            plan(&CrossEntropy::new(), &ok.view(), &bad32.view(), None),
            Err(Error::LabelOutOfRange { label: 4, index: 1, .. })
        ));
        let bf = Array2::from_elem((2, 3), half::bf16::INFINITY);
        assert!(matches!(
            plan(&CrossEntropy::new(), &bf.view(), &array![0_i64, 1].view(), None),
            Err(Error::NonFinite { arg: "logits", index: 0, .. })
        ));
    }

    #[test]
    fn launch_shape_picks_warp_rows_for_narrow_rows() {
        let (warp, cfg) = launch_shape(17, 1000);
        assert!(warp);
        assert_eq!((cfg.grid_dim.0, cfg.block_dim.0), (3, 256));
        let (warp, cfg) = launch_shape(5, 131_072);
        assert!(!warp);
        assert_eq!((cfg.grid_dim.0, cfg.block_dim.0), (5, 512));
        assert_eq!(launch_shape(5, 1025).1.block_dim.0, 256);
        assert_eq!(launch_shape(5, 4096).1.block_dim.0, 512);
    }
}
