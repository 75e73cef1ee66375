//! Binary losses on logits on the GPU (binary cross-entropy with `pos_weight`, sigmoid focal): per-element losses and
//! the gradient from one elementwise launch (`kernels/binary.cu`) plus the deterministic reduction of cross-entropy,
//! with the semantics and the validation of the CPU configs; and the batch-level AnyLoss, binary and one-vs-rest
//! multiclass (`kernels/anyloss.cu`: a column reduction of the soft confusion matrix, then the gradient).

use cudarc::driver::{DevicePtr, DeviceRepr, LaunchConfig, PushKernelArg};
use losskit_losses::{AnyLoss, AnyMetric, BinaryCrossEntropy, LossOutput, SigmoidFocal};
use losskit_tensor::{Error, Reduction, Result, check};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Ix1, Ix2};

use crate::device::{Gpu, device_error, guard};
use crate::dtype::{GpuFloat, GpuLabel};
use crate::linear_ce::KernelLaunch;

/// The kernel's view of one binary loss config.
#[derive(Clone, Debug, PartialEq)]
pub struct BinarySpec {
    /// Kernel-name prefix in `binary.cu` (`bce`, `sfocal`).
    pub mode: &'static str,
    /// p0, p1, p2 of the kernel (see the file's header).
    pub params: [f32; 3],
    /// The reduction.
    pub reduction: Reduction,
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for losskit_losses::BinaryCrossEntropy {}
    impl Sealed for losskit_losses::SigmoidFocal {}
}

/// A CPU binary loss config that [`Gpu::binary_loss`] runs on the GPU: [`BinaryCrossEntropy`] and [`SigmoidFocal`].
pub trait GpuBinaryLoss: sealed::Sealed {
    /// Validates the config like its CPU `check()` and describes it to the kernel.
    ///
    /// # Errors
    /// The CPU config's [`Error::Parameter`].
    fn binary_spec(&self) -> Result<BinarySpec>;
}

impl GpuBinaryLoss for BinaryCrossEntropy {
    fn binary_spec(&self) -> Result<BinarySpec> {
        self.check()?;
        Ok(BinarySpec { mode: "bce", params: [self.pos_weight as f32, 0.0, 0.0], reduction: self.reduction })
    }
}

impl GpuBinaryLoss for SigmoidFocal {
    fn binary_spec(&self) -> Result<BinarySpec> {
        self.check()?;
        let has_alpha = self.alpha >= 0.0;
        Ok(BinarySpec {
            mode: "sfocal",
            params: [self.gamma as f32, self.alpha as f32, if has_alpha { 1.0 } else { 0.0 }],
            reduction: self.reduction,
        })
    }
}

/// Validates like the CPU binary driver (same checks, order and errors) and returns (grad scale, value scale).
pub(crate) fn plan_binary<T: GpuFloat>(
    spec: &BinarySpec,
    scores: &ArrayView1<'_, T>,
    targets: &ArrayView1<'_, T>,
    weights: Option<&ArrayView1<'_, f32>>,
) -> Result<(f32, f64)> {
    let n = scores.len();
    check::non_empty("scores", n)?;
    check::shape("targets", targets.shape(), &[Some(n)])?;
    if let Some((index, v)) = scores.iter().enumerate().find(|(_, v)| !v.to_f32().is_finite()) {
        return Err(Error::NonFinite { arg: "scores", index, value: f64::from(v.to_f32()) });
    }
    if let Some((index, v)) = targets.iter().enumerate().find(|(_, v)| !v.to_f32().is_finite()) {
        return Err(Error::NonFinite { arg: "targets", index, value: f64::from(v.to_f32()) });
    }
    if let Some((index, v)) = targets.iter().enumerate().find(|(_, v)| !(0.0..=1.0).contains(&v.to_f32())) {
        return Err(Error::Degenerate {
            what: format!("targets: value {} at index {index} is outside [0, 1]", f64::from(v.to_f32())),
        });
    }
    if let Some(w) = weights {
        check::weights("weights", w.view(), n)?;
    }
    if n > i32::MAX as usize {
        return Err(Error::Input {
            what: format!("scores: the GPU kernel takes at most 2^31 − 1 elements, got {n}")
        });
    }
    Ok(match spec.reduction {
        Reduction::Mean => {
            let d: f64 = weights.map_or(n as f64, |w| w.iter().map(|&v| f64::from(v)).sum());
            if d.is_nan() || d <= 0.0 {
                return Err(Error::Degenerate { what: "the mean is undefined: the sample weights sum to 0".into() });
            }
            ((1.0 / d) as f32, 1.0 / d)
        }
        Reduction::Sum | Reduction::None => (1.0, 1.0),
    })
}

impl Gpu {
    /// A binary loss of `scores` `[N]` (logits) against `targets` `[N]` in [0, 1], with optional per-sample `weights`
    /// `[N]`, computed on this GPU with the semantics of the CPU path (`loss.compute(...)` of the same config).
    ///
    /// `loss` is a [`BinaryCrossEntropy`] or a [`SigmoidFocal`] (see [`GpuBinaryLoss`]). Scores and targets are
    /// `f32`, `half::bf16` or `half::f16` (the gradient has their type); arithmetic is f32, the value's sum f64.
    ///
    /// # Errors
    /// The CPU path's errors for bad configs or input, [`Error::Device`] when a driver call or kernel fails.
    pub fn binary_loss<T: GpuFloat, K: GpuBinaryLoss>(
        &self,
        loss: &K,
        scores: ArrayView1<'_, T>,
        targets: ArrayView1<'_, T>,
        weights: Option<ArrayView1<'_, f32>>,
        grad: bool,
    ) -> Result<LossOutput<T, Ix1>> {
        let spec = loss.binary_spec()?;
        let (gscale, value_scale) = plan_binary(&spec, &scores, &targets, weights.as_ref())?;
        let n = scores.len();
        let kernel = self.function("binary", &format!("{}_{}", spec.mode, T::NAME))?;
        let reduce = self.function("cross_entropy", "ce_reduce")?;
        guard("running a binary loss", || {
            let dev = |e| device_error("running a binary loss", e);
            let stream = self.stream();
            let x = stream.clone_htod(&scores.to_vec()).map_err(dev)?;
            let y = stream.clone_htod(&targets.to_vec()).map_err(dev)?;
            let sw = weights.map(|w| stream.clone_htod(&w.to_vec())).transpose().map_err(dev)?;
            let mut g = if grad { Some(stream.alloc_zeros::<T>(n).map_err(dev)?) } else { None };
            let mut rows = stream.alloc_zeros::<f32>(n).map_err(dev)?;
            let mut total = stream.alloc_zeros::<f64>(1).map_err(dev)?;
            let null: u64 = 0;
            let n32 = n as i32;
            let [p0, p1, p2] = spec.params;
            let mut b = stream.launch_builder(&kernel);
            b.arg(&x);
            b.arg(&y);
            match &sw {
                Some(sw) => b.arg(sw),
                None => b.arg(&null),
            };
            match &mut g {
                Some(g) => b.arg(g),
                None => b.arg(&null),
            };
            b.arg(&mut rows);
            b.arg(&n32);
            b.arg(&p0);
            b.arg(&p1);
            b.arg(&p2);
            b.arg(&gscale);
            let blocks = n.div_ceil(256).min(65_535) as u32;
            let config = LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 };
            // SAFETY: the arguments match LK_BIN_KERNEL's parameter list in kernels/binary.cu one for one (pointers
            // as device addresses or 0, then int, float × 4); every buffer holds the N elements the kernel indexes.
            unsafe { b.launch(config) }.map_err(dev)?;
            let mut r = stream.launch_builder(&reduce);
            r.arg(&rows);
            r.arg(&n32);
            r.arg(&value_scale);
            r.arg(&mut total);
            let one_block = LaunchConfig { grid_dim: (1, 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 };
            // SAFETY: ce_reduce(const float* rows /* N */, int n, double scale, double* out /* 1 */), 256 threads.
            unsafe { r.launch(one_block) }.map_err(dev)?;
            let rows: Vec<f32> = stream.clone_dtoh(&rows).map_err(dev)?;
            let total: Vec<f64> = stream.clone_dtoh(&total).map_err(dev)?;
            let grad = g.map(|g| stream.clone_dtoh(&g)).transpose().map_err(dev)?;
            stream.synchronize().map_err(dev)?;
            Ok(LossOutput {
                value: T::from_f64(total.first().copied().unwrap_or(f64::NAN)),
                per_sample: Some(rows.iter().map(|&v| T::from_f32(v)).collect()),
                grad: grad.map(Array1::from_vec),
            })
        })
    }
}

// ---- AnyLoss (kernels/anyloss.cu): a batch-level loss, so a column reduction first, then the gradient.

/// The argument struct of every kernel in `anyloss.cu` (`LkAnyArgs`), field for field.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct AnyArgs {
    x: u64,
    t: u64,
    rel: u64,
    rowst: u64,
    coef: u64,
    closs: u64,
    g: u64,
    n: i32,
    c: i32,
    metric: i32,
    amp: f32,
    beta2: f32,
    gscale: f32,
}

// SAFETY: plain old data with the C layout of LkAnyArgs (7 pointers, then 3 ints and 3 floats: 80 bytes, no padding).
unsafe impl DeviceRepr for AnyArgs {}
const _: () = assert!(std::mem::size_of::<AnyArgs>() == 80);

/// A validated AnyLoss problem on the GPU: sizes, the kernels' scalars, the relative weights and the launches.
///
/// [`Gpu::anyloss`] and [`Gpu::anyloss_multiclass`] run it; it is public so that the CPU emulation of the kernels
/// (tests/emu/anyloss.cpp) replays the same launches.
#[derive(Clone, Debug, PartialEq)]
pub struct AnyLossPlan {
    /// Rows N.
    pub n: usize,
    /// Columns: 1 for the binary form, C for the multiclass form.
    pub c: usize,
    /// 0 accuracy, 1 F-β, 2 G-mean, 3 balanced accuracy.
    pub metric: i32,
    /// Amplifier L.
    pub amp: f32,
    /// β².
    pub beta2: f32,
    /// Gradient scale: 1 under Mean, Σ wᵢ under Sum / None.
    pub gscale: f32,
    /// Raw per-sample weights (1 without weights), for the per-sample shares.
    pub weights: Vec<f64>,
    /// Relative weights N·wᵢ/Σw (`None` without weights: all 1).
    pub rel: Option<Vec<f32>>,
    /// Σ wᵢ = 0: nothing to launch (Sum / None give zeros, as on the CPU).
    pub zero_weight: bool,
    /// The reduction.
    pub reduction: Reduction,
    /// The launches, in order (with or without the gradient).
    pub launches: Vec<KernelLaunch>,
}

fn launch(kernel: String, grid: usize) -> KernelLaunch {
    KernelLaunch { kernel, grid: grid.max(1) as u32, block: 256, row0: 0, rows: 0, col0: 0, cols: 0 }
}

fn any_plan(loss: &AnyLoss, n: usize, c: usize, weights: Option<&ArrayView1<'_, f32>>) -> Result<AnyLossPlan> {
    let w: Vec<f64> = weights.map_or_else(|| vec![1.0; n], |w| w.iter().map(|&v| f64::from(v)).collect());
    let total: f64 = w.iter().sum();
    let zero_weight = total.is_nan() || total <= 0.0;
    if zero_weight && loss.reduction == Reduction::Mean {
        return Err(Error::Degenerate { what: "the mean is undefined: the sample weights sum to 0".into() });
    }
    if n > i32::MAX as usize || c > i32::MAX as usize {
        return Err(Error::Input {
            what: format!("anyloss: the GPU kernels take at most 2^31 − 1 rows and classes, got [{n}, {c}]"),
        });
    }
    let rel = weights.map(|_| {
        let k = n as f64 / total;
        w.iter().map(|&v| (v * k) as f32).collect()
    });
    let metric = match loss.metric {
        AnyMetric::Accuracy => 0,
        AnyMetric::FBeta => 1,
        AnyMetric::GMean => 2,
        AnyMetric::BalancedAccuracy => 3,
    };
    let gscale = if loss.reduction == Reduction::Mean { 1.0 } else { total as f32 };
    Ok(AnyLossPlan {
        n,
        c,
        metric,
        amp: loss.amplifier as f32,
        beta2: (loss.beta * loss.beta) as f32,
        gscale,
        weights: w,
        rel,
        zero_weight,
        reduction: loss.reduction,
        launches: Vec::new(),
    })
}

impl AnyLossPlan {
    /// Validates binary inputs like the CPU `AnyLoss` (scores and targets in [0, 1] of type `T`) and lays out the
    /// launches: column statistics, then the elementwise gradient.
    ///
    /// # Errors
    /// The CPU path's errors (config, shapes, non-finite values, targets outside [0, 1], weights, a Mean over zero
    /// weights).
    pub fn binary<T: GpuFloat>(
        loss: &AnyLoss,
        scores: &ArrayView1<'_, T>,
        targets: &ArrayView1<'_, T>,
        weights: Option<&ArrayView1<'_, f32>>,
        grad: bool,
    ) -> Result<AnyLossPlan> {
        loss.check()?;
        let spec = BinarySpec { mode: "anyloss", params: [0.0; 3], reduction: Reduction::Sum };
        plan_binary(&spec, scores, targets, weights)?;
        let n = scores.len();
        let mut plan = any_plan(loss, n, 1, weights)?;
        plan.launches.push(launch(format!("any_cols_bin_{}", T::NAME), 1));
        if grad {
            plan.launches.push(launch(format!("any_grad_bin_{}", T::NAME), n.div_ceil(256).min(1 << 16)));
        }
        Ok(plan)
    }

    /// Validates multiclass inputs like the CPU `AnyLoss` (hard labels, no ignore index) and lays out the launches:
    /// row softmax statistics, one block per class column, then the gradient (one warp per row).
    ///
    /// # Errors
    /// As [`AnyLossPlan::binary`], with the label errors of the multiclass form.
    pub fn multiclass<T: GpuFloat, L: GpuLabel>(
        loss: &AnyLoss,
        logits: &ArrayView2<'_, T>,
        targets: &ArrayView1<'_, L>,
        weights: Option<&ArrayView1<'_, f32>>,
        grad: bool,
    ) -> Result<AnyLossPlan> {
        loss.check()?;
        let (n, c) = logits.dim();
        check::non_empty("logits", n)?;
        if c == 0 {
            return Err(Error::Shape { arg: "logits", expected: "[N, C] with C ≥ 1".into(), got: vec![n, c] });
        }
        check::shape("targets", targets.shape(), &[Some(n)])?;
        let labels: Array1<i64> = targets.iter().map(|l| l.to_i64()).collect();
        check::labels("targets", labels.view(), c, None)?;
        if let Some(w) = weights {
            check::weights("weights", w.view(), n)?;
        }
        if let Some((index, v)) = logits.iter().enumerate().find(|(_, v)| !v.to_f32().is_finite()) {
            return Err(Error::NonFinite { arg: "logits", index, value: f64::from(v.to_f32()) });
        }
        let mut plan = any_plan(loss, n, c, weights)?;
        let (t, l) = (T::NAME, L::NAME);
        plan.launches.push(launch(format!("any_rows_{t}"), n.div_ceil(8)));
        plan.launches.push(launch(format!("any_cols_{t}_{l}"), c));
        if grad {
            plan.launches.push(launch(format!("any_grad_{t}_{l}"), n.div_ceil(8)));
        }
        Ok(plan)
    }

    /// The value and per-sample shares from the column losses 1 − M_k (CPU convention: Mean = L, Sum = None =
    /// Σ wᵢ·L, per_sampleᵢ = wᵢ·L with L the mean over columns).
    pub fn finish(&self, column_losses: &[f64]) -> (f64, Vec<f64>) {
        if self.zero_weight {
            return (0.0, vec![0.0; self.n]);
        }
        let l = column_losses.iter().sum::<f64>() / self.c as f64;
        let per_sample: Vec<f64> = self.weights.iter().map(|&w| w * l).collect();
        let total: f64 = self.weights.iter().sum();
        let value = if self.reduction == Reduction::Mean { l } else { total * l };
        (value, per_sample)
    }
}

impl Gpu {
    /// Runs an [`AnyLossPlan`] on inputs `x` (`[N]` or `[N, C]`, type `T`) and targets `t`; returns the value, the
    /// per-sample shares and the gradient (as a flat vector).
    fn run_anyloss<T: GpuFloat, U: DeviceRepr>(
        &self,
        plan: &AnyLossPlan,
        x: &[T],
        t: &[U],
        grad: bool,
    ) -> Result<(f64, Vec<f64>, Option<Vec<T>>)> {
        if plan.zero_weight {
            let (value, per_sample) = plan.finish(&[]);
            return Ok((value, per_sample, grad.then(|| vec![T::from_f32(0.0); x.len()])));
        }
        let mut kernels = Vec::with_capacity(plan.launches.len());
        for l in &plan.launches {
            kernels.push(self.function("anyloss", &l.kernel)?);
        }
        guard("running anyloss", || {
            let dev = |e| device_error("running anyloss", e);
            let stream = self.stream();
            let xd = stream.clone_htod(x).map_err(dev)?;
            let td = stream.clone_htod(t).map_err(dev)?;
            let rel = plan.rel.as_ref().map(|r| stream.clone_htod(r.as_slice())).transpose().map_err(dev)?;
            let rowst = stream.alloc_zeros::<f32>(2 * plan.n).map_err(dev)?;
            let coef = stream.alloc_zeros::<f32>(2 * plan.c).map_err(dev)?;
            let closs = stream.alloc_zeros::<f64>(plan.c).map_err(dev)?;
            let g = if grad { Some(stream.alloc_zeros::<T>(x.len()).map_err(dev)?) } else { None };
            // One stream does everything, so the pointers need no cross-stream synchronisation.
            let args = AnyArgs {
                x: xd.device_ptr(stream).0,
                t: td.device_ptr(stream).0,
                rel: rel.as_ref().map_or(0, |r| r.device_ptr(stream).0),
                rowst: rowst.device_ptr(stream).0,
                coef: coef.device_ptr(stream).0,
                closs: closs.device_ptr(stream).0,
                g: g.as_ref().map_or(0, |g| g.device_ptr(stream).0),
                n: plan.n as i32,
                c: plan.c as i32,
                metric: plan.metric,
                amp: plan.amp,
                beta2: plan.beta2,
                gscale: plan.gscale,
            };
            for (l, kernel) in plan.launches.iter().zip(&kernels) {
                let mut b = stream.launch_builder(kernel);
                b.arg(&args);
                let config = LaunchConfig { grid_dim: (l.grid, 1, 1), block_dim: (l.block, 1, 1), shared_mem_bytes: 0 };
                // SAFETY: every kernel of anyloss.cu takes one LkAnyArgs by value, which AnyArgs mirrors; the buffers
                // hold the N·C, N, 2·N, 2·C and C elements the kernels index, and g is only written when present.
                unsafe { b.launch(config) }.map_err(dev)?;
            }
            let closs: Vec<f64> = stream.clone_dtoh(&closs).map_err(dev)?;
            let g = g.map(|g| stream.clone_dtoh(&g)).transpose().map_err(dev)?;
            stream.synchronize().map_err(dev)?;
            let (value, per_sample) = plan.finish(&closs);
            Ok((value, per_sample, g))
        })
    }

    /// [`AnyLoss`] (binary form) of `scores` `[N]` against `targets` `[N]` in [0, 1], with optional per-sample `weights`
    /// `[N]`, on this GPU with the semantics of the CPU `BinaryLoss` implementation: one block reduces the soft
    /// confusion matrix (f64 sums in a fixed order), a second launch writes the gradient.
    ///
    /// # Errors
    /// The CPU path's errors for bad configs or input, [`Error::Device`] when a driver call or kernel fails.
    pub fn anyloss<T: GpuFloat>(
        &self,
        loss: &AnyLoss,
        scores: ArrayView1<'_, T>,
        targets: ArrayView1<'_, T>,
        weights: Option<ArrayView1<'_, f32>>,
        grad: bool,
    ) -> Result<LossOutput<T, Ix1>> {
        let plan = AnyLossPlan::binary(loss, &scores, &targets, weights.as_ref(), grad)?;
        let (value, per_sample, g) = self.run_anyloss(&plan, &scores.to_vec(), &targets.to_vec(), grad)?;
        Ok(LossOutput {
            value: T::from_f64(value),
            per_sample: Some(per_sample.iter().map(|&v| T::from_f64(v)).collect()),
            grad: g.map(Array1::from_vec),
        })
    }

    /// [`AnyLoss`] in its one-vs-rest macro multiclass form, of `logits` `[N, C]` against class indices `targets` `[N]`,
    /// on this GPU with the semantics of the CPU `ClassLoss` implementation: row softmax statistics, one block per
    /// class column for the soft confusion matrices, then the gradient through the softmax.
    ///
    /// # Errors
    /// The CPU path's errors for bad configs or input, [`Error::Device`] when a driver call or kernel fails.
    pub fn anyloss_multiclass<T: GpuFloat, L: GpuLabel>(
        &self,
        loss: &AnyLoss,
        logits: ArrayView2<'_, T>,
        targets: ArrayView1<'_, L>,
        weights: Option<ArrayView1<'_, f32>>,
        grad: bool,
    ) -> Result<LossOutput<T, Ix2>> {
        let plan = AnyLossPlan::multiclass(loss, &logits, &targets, weights.as_ref(), grad)?;
        let x = logits.as_standard_layout();
        let x = x.as_slice().ok_or_else(|| Error::Input { what: "logits: not contiguous".into() })?;
        let (value, per_sample, g) = self.run_anyloss(&plan, x, &targets.to_vec(), grad)?;
        let grad = g
            .map(|g| Array2::from_shape_vec(logits.dim(), g).map_err(|e| device_error("shaping the gradient", e)))
            .transpose()?;
        Ok(LossOutput {
            value: T::from_f64(value),
            per_sample: Some(per_sample.iter().map(|&v| T::from_f64(v)).collect()),
            grad,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use losskit_losses::BinaryLoss;
    use ndarray::array;

    #[test]
    fn plan_rejects_bad_input_exactly_like_the_cpu_path() {
        type Case = (&'static str, Vec<f32>, Vec<f32>, Option<Vec<f32>>);
        let cases: Vec<Case> = vec![
            ("empty", vec![], vec![], None),
            ("short targets", vec![0.0, 1.0], vec![1.0], None),
            ("nan score", vec![0.0, f32::NAN], vec![1.0, 0.0], None),
            ("inf target", vec![0.0, 1.0], vec![1.0, f32::INFINITY], None),
            ("target above 1", vec![0.0, 1.0], vec![1.0, 1.5], None),
            ("negative weight", vec![0.0, 1.0], vec![1.0, 0.0], Some(vec![1.0, -1.0])),
            ("zero weights", vec![0.0, 1.0], vec![1.0, 0.0], Some(vec![0.0, 0.0])),
            ("fine", vec![0.0, 1.0], vec![1.0, 0.5], None),
        ];
        fn both<K: GpuBinaryLoss + BinaryLoss<f64>>(k: &K, what: &str, x: &[f32], t: &[f32], w: Option<&[f32]>) {
            let (x, t) = (Array1::from(x.to_vec()), Array1::from(t.to_vec()));
            let w = w.map(|w| Array1::from(w.to_vec()));
            let (x64, t64, w64) = (x.mapv(f64::from), t.mapv(f64::from), w.as_ref().map(|w| w.mapv(f64::from)));
            let cpu = k.compute(x64.view(), t64.view(), w64.as_ref().map(|w| w.view()), true);
            let gpu = k
                .binary_spec()
                .and_then(|s| plan_binary(&s, &x.view(), &t.view(), w.as_ref().map(|w| w.view()).as_ref()));
            match (cpu, gpu) {
                (Err(c), Err(g)) => assert_eq!(g.to_string(), c.to_string(), "{what}"),
                (Ok(_), Ok(_)) => {}
                (c, g) => panic!("{what}: cpu {:?}, gpu {:?}", c.err(), g.err()),
            }
        }
        for (what, x, t, w) in &cases {
            both(&BinaryCrossEntropy::new(), what, x, t, w.as_deref());
            both(&BinaryCrossEntropy::new().pos_weight(-1.0), what, x, t, w.as_deref());
            both(&SigmoidFocal::new(), what, x, t, w.as_deref());
            both(&SigmoidFocal::new().alpha(2.0), what, x, t, w.as_deref());
        }
        let s = SigmoidFocal::new().alpha(-1.0).binary_spec().unwrap();
        assert_eq!(s.params, [2.0, -1.0, 0.0]);
        let p = plan_binary(
            &BinaryCrossEntropy::new().binary_spec().unwrap(),
            &array![0.0_f32, 1.0].view(),
            &array![0.0_f32, 1.0].view(),
            Some(&array![1.0_f32, 3.0].view()),
        );
        assert_eq!(p.unwrap(), (0.25, 0.25));
    }
}
