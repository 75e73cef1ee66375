//! Binary losses on logits on the GPU (binary cross-entropy with `pos_weight`, sigmoid focal): per-element losses and
//! the gradient from one elementwise launch (`kernels/binary.cu`) plus the deterministic reduction of cross-entropy,
//! with the semantics and the validation of the CPU configs.

use cudarc::driver::{LaunchConfig, PushKernelArg};
use losskit_losses::{BinaryCrossEntropy, LossOutput, SigmoidFocal};
use losskit_tensor::{Error, Reduction, Result, check};
use ndarray::{Array1, ArrayView1, Ix1};

use crate::device::{Gpu, device_error, guard};
use crate::dtype::GpuFloat;

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
    /// A binary loss of `scores` [N] (logits) against `targets` [N] in [0, 1], with optional per-sample `weights`
    /// [N], computed on this GPU with the semantics of the CPU path (`loss.compute(...)` of the same config).
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
