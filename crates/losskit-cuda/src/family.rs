//! The softmax family beside cross-entropy on the GPU (focal, GCE, MAE, sum-exponential, comp-sum, LDR-KL, Z-loss):
//! value, per-sample losses and the logits gradient from one fused launch (`kernels/softmax_family.cu`) plus the
//! deterministic reduction of cross-entropy, with the semantics and the validation of the CPU configs.

use cudarc::driver::{LaunchConfig, PushKernelArg};
use losskit_losses::{
    CompSum, Focal, GeneralizedCrossEntropy, LdrKl, LossOutput, Mae, Psi, SUM_EXP_LINEAR_ABOVE, ScoreNorm,
    SumExponential, ZLoss,
};
use losskit_tensor::{Error, Reduction, Result, check};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Ix2};

use crate::cross_entropy::launch_shape;
use crate::device::{Gpu, device_error, guard};
use crate::dtype::{GpuFloat, GpuLabel};

/// The kernel's view of one loss config: which kernel, its scalar parameters, class weights and ignore index.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelSpec {
    /// Kernel-name prefix in `softmax_family.cu` (`focal`, `gce`, ...).
    pub mode: &'static str,
    /// p0, p1, p2 of the kernel (see the file's header).
    pub params: [f32; 3],
    /// Per-class weights `[C]` (focal only).
    pub class_weights: Option<Vec<f64>>,
    /// A label to skip (focal only).
    pub ignore_index: Option<i64>,
    /// The reduction.
    pub reduction: Reduction,
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for losskit_losses::Focal {}
    impl Sealed for losskit_losses::GeneralizedCrossEntropy {}
    impl Sealed for losskit_losses::Mae {}
    impl Sealed for losskit_losses::SumExponential {}
    impl Sealed for losskit_losses::CompSum {}
    impl Sealed for losskit_losses::LdrKl {}
    impl Sealed for losskit_losses::ZLoss {}
}

/// A CPU loss config of the softmax family that [`Gpu::class_loss`] runs on the GPU: [`Focal`],
/// [`GeneralizedCrossEntropy`], [`Mae`], [`SumExponential`], [`CompSum`] (every Ψ), [`LdrKl`] (every `score_norm`)
/// and [`ZLoss`]. Cross-entropy (with temperature, smoothing, weights) has its own [`Gpu::cross_entropy`].
pub trait GpuClassLoss: sealed::Sealed {
    /// Validates the config like its CPU `check()` and describes it to the kernel.
    ///
    /// # Errors
    /// The CPU config's [`Error::Parameter`]; [`Error::Input`] for an option the GPU does not support.
    fn kernel_spec(&self) -> Result<KernelSpec>;
}

fn spec(mode: &'static str, params: [f64; 3], reduction: Reduction) -> KernelSpec {
    KernelSpec { mode, params: params.map(|v| v as f32), class_weights: None, ignore_index: None, reduction }
}

impl GpuClassLoss for Focal {
    fn kernel_spec(&self) -> Result<KernelSpec> {
        self.check()?;
        Ok(KernelSpec {
            class_weights: self.class_weights.clone(),
            ignore_index: Some(self.ignore_index),
            ..spec("focal", [self.gamma, 0.0, 0.0], self.reduction)
        })
    }
}

impl GpuClassLoss for GeneralizedCrossEntropy {
    fn kernel_spec(&self) -> Result<KernelSpec> {
        self.check()?;
        Ok(spec("gce", [self.q, 0.0, 0.0], self.reduction))
    }
}

impl GpuClassLoss for Mae {
    fn kernel_spec(&self) -> Result<KernelSpec> {
        Ok(spec("mae", [0.0; 3], self.reduction))
    }
}

impl GpuClassLoss for SumExponential {
    fn kernel_spec(&self) -> Result<KernelSpec> {
        Ok(spec("sumexp", [0.0; 3], self.reduction))
    }
}

impl GpuClassLoss for CompSum {
    fn kernel_spec(&self) -> Result<KernelSpec> {
        self.check()?;
        Ok(match self.psi {
            Psi::CrossEntropy => spec("cepsi", [0.0; 3], self.reduction),
            Psi::Gce { q } => spec("gce", [q, 0.0, 0.0], self.reduction),
            Psi::Mae => spec("mae", [0.0; 3], self.reduction),
            Psi::SumExponential => spec("sumexp", [0.0; 3], self.reduction),
        })
    }
}

impl GpuClassLoss for LdrKl {
    fn kernel_spec(&self) -> Result<KernelSpec> {
        self.check()?;
        let mode = match self.score_norm {
            ScoreNorm::None => "ldrkl",
            ScoreNorm::SoftplusMean => "ldrklsp",
            ScoreNorm::L1Mean => "ldrkll1",
        };
        Ok(spec(mode, [self.lambda, self.margin, 0.0], self.reduction))
    }
}

impl GpuClassLoss for ZLoss {
    fn kernel_spec(&self) -> Result<KernelSpec> {
        self.check()?;
        Ok(spec("zloss", [self.a, self.b, 0.0], self.reduction))
    }
}

// The kernel hard-codes the CPU's linear tail above 50.
const _: () = assert!(SUM_EXP_LINEAR_ABOVE == 50.0);

/// The validated problem: sizes, the kernel's scalars and the Mean's scaling.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct FamilyPlan {
    pub n: usize,
    pub c: usize,
    pub spec: KernelSpec,
    pub class_weights: Option<Vec<f32>>,
    pub grad_scale: f32,
    pub value_scale: f64,
}

/// Validates the inputs in the CPU driver's order (config, class weights, shapes, labels, weights, the Mean's
/// denominator, finite logits) with the same errors, and derives the kernel's scalars.
pub(crate) fn plan_family<T: GpuFloat, L: GpuLabel>(
    spec: KernelSpec,
    logits: &ArrayView2<'_, T>,
    targets: &ArrayView1<'_, L>,
    weights: Option<&ArrayView1<'_, f32>>,
) -> Result<FamilyPlan> {
    let (n, c) = logits.dim();
    if let Some(cw) = spec.class_weights.as_ref() {
        check::shape("class_weights", &[cw.len()], &[Some(c)])?;
    }
    check::non_empty("logits", n)?;
    if c == 0 {
        return Err(Error::Shape { arg: "logits", expected: "[N, C] with C ≥ 1".into(), got: vec![n, c] });
    }
    check::shape("targets", targets.shape(), &[Some(n)])?;
    let labels: Array1<i64> = targets.iter().map(|l| l.to_i64()).collect();
    check::labels("targets", labels.view(), c, spec.ignore_index)?;
    if let Some(w) = weights {
        check::weights("weights", w.view(), n)?;
    }
    let class_weights: Option<Vec<f32>> = spec.class_weights.as_ref().map(|w| w.iter().map(|&v| v as f32).collect());
    let (grad_scale, value_scale) = match spec.reduction {
        Reduction::Mean => {
            let mut d = 0.0_f64;
            for (i, &y) in labels.iter().enumerate() {
                if Some(y) == spec.ignore_index {
                    continue;
                }
                let cw = class_weights.as_ref().map_or(1.0, |cw| f64::from(cw[y as usize])); // ok: y checked in 0..c
                d += weights.map_or(1.0, |w| f64::from(w[i])) * cw;
            }
            if d.is_nan() || d <= 0.0 {
                return Err(Error::Degenerate {
                    what: "the mean is undefined: every target is ignored or has zero (sample × class) weight".into(),
                });
            }
            (1.0 / d, 1.0 / d)
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
    Ok(FamilyPlan { n, c, spec, class_weights, grad_scale: grad_scale as f32, value_scale })
}

/// The kernel that runs `mode` for element type `T`, labels `L` and rows of `c` classes, and its launch shape.
pub(crate) fn kernel_name<T: GpuFloat, L: GpuLabel>(mode: &str, n: usize, c: usize) -> (String, LaunchConfig) {
    let (warp, config) = launch_shape(n, c);
    (format!("{mode}_{}_{}_{}", T::NAME, L::NAME, if warp { "warp" } else { "block" }), config)
}

impl Gpu {
    /// A softmax-family loss of `logits` `[N, C]` against class indices `targets` `[N]`, with optional per-sample
    /// `weights` `[N]`, computed on this GPU with the semantics of the CPU path (`loss.compute(...)` of the same
    /// config): same value, per-sample losses and gradient up to f32 rounding, same validation errors.
    ///
    /// `loss` is a [`Focal`], [`GeneralizedCrossEntropy`], [`Mae`], [`SumExponential`], [`CompSum`], [`LdrKl`]
    /// (every `score_norm`) or [`ZLoss`] (see [`GpuClassLoss`]). Logits may be `f32`, `half::bf16` or `half::f16`
    /// (the gradient has their type), targets `i64` or `i32`; arithmetic is f32, the value's final sum f64.
    ///
    /// # Errors
    /// The CPU path's errors for bad configs or input, [`Error::Device`] when a driver call or kernel fails.
    pub fn class_loss<T: GpuFloat, L: GpuLabel, K: GpuClassLoss>(
        &self,
        loss: &K,
        logits: ArrayView2<'_, T>,
        targets: ArrayView1<'_, L>,
        weights: Option<ArrayView1<'_, f32>>,
        grad: bool,
    ) -> Result<LossOutput<T, Ix2>> {
        let plan = plan_family(loss.kernel_spec()?, &logits, &targets, weights.as_ref())?;
        let (name, config) = kernel_name::<T, L>(plan.spec.mode, plan.n, plan.c);
        let kernel = self.function("softmax_family", &name)?;
        let reduce = self.function("cross_entropy", "ce_reduce")?;
        guard("running a softmax-family loss", || {
            let dev = |e| device_error("running a softmax-family loss", e);
            let stream = self.stream();
            let logits = logits.as_standard_layout();
            let logits = logits.as_slice().ok_or_else(|| Error::Input { what: "logits: not contiguous".into() })?;
            let x = stream.clone_htod(logits).map_err(dev)?;
            let y = stream.clone_htod(&targets.to_vec()).map_err(dev)?;
            let cw = plan.class_weights.as_ref().map(|cw| stream.clone_htod(cw.as_slice())).transpose().map_err(dev)?;
            let sw = weights.map(|w| stream.clone_htod(&w.to_vec())).transpose().map_err(dev)?;
            let mut g = if grad { Some(stream.alloc_zeros::<T>(plan.n * plan.c).map_err(dev)?) } else { None };
            let mut rows = stream.alloc_zeros::<f32>(plan.n).map_err(dev)?;
            let mut total = stream.alloc_zeros::<f64>(1).map_err(dev)?;
            let null: u64 = 0;
            let (n, c) = (plan.n as i32, plan.c as i32);
            let ignore_index = plan.spec.ignore_index.unwrap_or(0);
            let has_ignore = i32::from(plan.spec.ignore_index.is_some());
            let [p0, p1, p2] = plan.spec.params;
            let gscale = plan.grad_scale;
            let mut b = stream.launch_builder(&kernel);
            b.arg(&x);
            b.arg(&y);
            match &cw {
                Some(cw) => b.arg(cw),
                None => b.arg(&null),
            };
            match &sw {
                Some(sw) => b.arg(sw),
                None => b.arg(&null),
            };
            match &mut g {
                Some(g) => b.arg(g),
                None => b.arg(&null),
            };
            b.arg(&mut rows);
            b.arg(&n);
            b.arg(&c);
            b.arg(&ignore_index);
            b.arg(&has_ignore);
            b.arg(&p0);
            b.arg(&p1);
            b.arg(&p2);
            b.arg(&gscale);
            // SAFETY: the arguments match LK_SM_KERNEL's parameter list in kernels/softmax_family.cu one for one
            // (pointers as device addresses or 0, then int, int, long long, int, float × 4); the buffers hold the
            // N·C, N or C elements the kernel indexes.
            unsafe { b.launch(config) }.map_err(dev)?;
            let value_scale = plan.value_scale;
            let mut r = stream.launch_builder(&reduce);
            r.arg(&rows);
            r.arg(&n);
            r.arg(&value_scale);
            r.arg(&mut total);
            let one_block = LaunchConfig { grid_dim: (1, 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 };
            // SAFETY: ce_reduce(const float* rows /* N */, int n, double scale, double* out /* 1 */), 256 threads.
            unsafe { r.launch(one_block) }.map_err(dev)?;
            let rows: Vec<f32> = stream.clone_dtoh(&rows).map_err(dev)?;
            let total: Vec<f64> = stream.clone_dtoh(&total).map_err(dev)?;
            let grad = g.map(|g| stream.clone_dtoh(&g)).transpose().map_err(dev)?;
            stream.synchronize().map_err(dev)?;
            let grad = grad
                .map(|g| {
                    Array2::from_shape_vec((plan.n, plan.c), g).map_err(|e| device_error("shaping the gradient", e))
                })
                .transpose()?;
            Ok(LossOutput {
                value: T::from_f64(total.first().copied().unwrap_or(f64::NAN)),
                per_sample: Some(rows.iter().map(|&v| T::from_f32(v)).collect()),
                grad,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use losskit_losses::{ClassLoss, Targets};
    use ndarray::array;

    /// Every bad input gives the CPU path's error, for each config.
    #[test]
    fn plan_rejects_bad_input_exactly_like_the_cpu_path() {
        let ok = Array2::<f32>::zeros((3, 4));
        let mut nan = ok.clone();
        nan[[1, 2]] = f32::NAN;
        let empty = Array2::<f32>::zeros((0, 4));
        type Case<'a> = (&'a str, &'a Array2<f32>, Vec<i64>, Option<Vec<f32>>);
        let cases: Vec<Case<'_>> = vec![
            ("label out of range", &ok, vec![0, 4, 1], None),
            ("ignored label", &ok, vec![0, -100, 1], None),
            ("short targets", &ok, vec![0, 1], None),
            ("nan logit", &nan, vec![0, 1, 2], None),
            ("empty", &empty, vec![], None),
            ("negative weight", &ok, vec![0, 1, 2], Some(vec![1.0, -1.0, 1.0])),
            ("zero weights mean", &ok, vec![0, 1, 2], Some(vec![0.0; 3])),
        ];
        fn both<K: GpuClassLoss + ClassLoss<f64>>(k: &K, what: &str, x: &Array2<f32>, t: &[i64], w: Option<&[f32]>) {
            let t = Array1::from(t.to_vec());
            let w = w.map(|w| Array1::from(w.to_vec()));
            let x64 = x.mapv(f64::from);
            let w64 = w.as_ref().map(|w| w.mapv(f64::from));
            let cpu = k.compute(x64.view(), Targets::Hard(t.view()), w64.as_ref().map(|w| w.view()), true);
            let gpu = k
                .kernel_spec()
                .and_then(|s| plan_family(s, &x.view(), &t.view(), w.as_ref().map(|w| w.view()).as_ref()));
            match (cpu, gpu) {
                (Err(c), Err(g)) => assert_eq!(g.to_string(), c.to_string(), "{what}"),
                (Ok(_), Ok(_)) => {}
                (c, g) => panic!("{what}: cpu {:?}, gpu {:?}", c.err(), g.err()),
            }
        }
        for (what, x, t, w) in &cases {
            let w = w.as_deref();
            both(&Focal::new(), what, x, t, w);
            both(&Focal::new().class_weights(vec![1.0, 2.0]), what, x, t, w);
            both(&Focal::new().gamma(-1.0), what, x, t, w);
            both(&GeneralizedCrossEntropy::new(), what, x, t, w);
            both(&GeneralizedCrossEntropy::new().q(0.0), what, x, t, w);
            both(&Mae::new(), what, x, t, w);
            both(&SumExponential::new().reduction(Reduction::Sum), what, x, t, w);
            both(&CompSum::new().psi(Psi::CrossEntropy), what, x, t, w);
            both(&LdrKl::new().score_norm(ScoreNorm::None), what, x, t, w);
            both(&LdrKl::new().score_norm(ScoreNorm::None).lambda(0.0), what, x, t, w);
            both(&LdrKl::new(), what, x, t, w);
            both(&LdrKl::new().score_norm(ScoreNorm::L1Mean).margin(-1.0), what, x, t, w);
            both(&ZLoss::new(0.1, 10.0), what, x, t, w);
            both(&ZLoss::new(-1.0, 10.0), what, x, t, w);
        }
        assert_eq!(LdrKl::new().kernel_spec().unwrap().mode, "ldrklsp");
        assert_eq!(LdrKl::new().score_norm(ScoreNorm::L1Mean).kernel_spec().unwrap().mode, "ldrkll1");
    }

    #[test]
    fn specs_and_kernel_names() {
        let s = Focal::new().gamma(1.5).class_weights(vec![1.0, 3.0]).kernel_spec().unwrap();
        assert_eq!((s.mode, s.params[0], s.ignore_index), ("focal", 1.5, Some(-100)));
        assert_eq!(CompSum::new().psi(Psi::Gce { q: 0.5 }).kernel_spec().unwrap().mode, "gce");
        assert_eq!(ZLoss::new(0.5, 2.0).kernel_spec().unwrap().params, [0.5, 2.0, 0.0]);
        assert_eq!(kernel_name::<half::bf16, i32>("zloss", 10, 100).0, "zloss_bf16_i32_warp");
        assert_eq!(kernel_name::<f32, i64>("gce", 10, 5000).0, "gce_f32_i64_block");
        // Focal's Mean divides by Σ s_i·cw[y_i] over non-ignored rows.
        let logits = Array2::<f32>::zeros((3, 2));
        let p = plan_family(
            Focal::new().class_weights(vec![1.0, 3.0]).kernel_spec().unwrap(),
            &logits.view(),
            &array![0_i64, 1, -100].view(),
            Some(&array![2.0_f32, 1.0, 5.0].view()),
        )
        .unwrap();
        assert_eq!(p.value_scale, 1.0 / 5.0);
    }
}
