//! Fused linear + cross-entropy on the GPU (`kernels/linear_ce.cu`): the loss of the logits H·Wᵀ (+ a logit
//! adjustment) and the gradients with respect to H and W, computed chunk by chunk so that the N × C logits never exist
//! in memory, plus the CPU reference that composes the losskit-losses configs.

use cudarc::driver::{DevicePtr, DeviceRepr, LaunchConfig, PushKernelArg};
use losskit_losses::{ClassLoss, CrossEntropy, Focal, Targets};
use losskit_tensor::{Error, Reduction, Result, check};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

use crate::device::{Gpu, device_error, guard};
use crate::dtype::{GpuFloat, GpuLabel};

/// Cross-entropy (or focal loss) of a linear classifier's logits, fused with the classifier so that the logits are
/// only ever held one `chunk_rows` × `chunk_classes` tile at a time (what Liger-Kernel's `FusedLinearCrossEntropy`
/// and Apple's Cut Cross-Entropy do), with class weights, label smoothing, an ignore index, focal γ and logit
/// adjustment.
///
/// ```text
/// zᵢⱼ = hᵢ·wⱼ + τ·log πⱼ                                  (logit adjustment; τ = 0 or no prior: none)
/// γ = 0:  ℓᵢ = (1 − ε)·cw_y·(lseᵢ − zᵢy) + (ε/C)·Σⱼ cwⱼ·(lseᵢ − zᵢⱼ)     (PyTorch's CrossEntropyLoss)
/// γ > 0:  ℓᵢ = −cw_y·(1 − pᵢy)^γ·log pᵢy                  (focal; ε must be 0)
/// Mean = Σᵢ sᵢ·ℓᵢ / Σᵢ sᵢ·cw_yᵢ     Sum = Σᵢ sᵢ·ℓᵢ     None: (sᵢ·ℓᵢ)ᵢ, value = Σ
/// ```
/// where p = softmax(zᵢ), lse = log Σⱼ exp zᵢⱼ, sᵢ the per-sample weights, cw the class weights (1 when absent); rows
/// whose target is `ignore_index` count for nothing.
///
/// # Parameters
/// * `class_weights`: cw `[C]`, non-negative, default none (all 1).
/// * `ignore_index`: default −100.
/// * `label_smoothing`: ε ∈ [0, 1), default 0.
/// * `gamma`: focal γ ≥ 0, default 0 (cross-entropy); γ > 0 with ε > 0 is rejected.
/// * `tau`, `class_prior`: logit adjustment τ·log π (Menon et al.), default τ = 1 with no prior (off); π `[C]` > 0.
/// * `reduction`: default `Mean`.
/// * `chunk_rows`, `chunk_classes`: the tile of logits held at once, default 2048 × 8192 (64 MiB of f32);
///   their product must stay below 2³¹.
///
/// # Shapes
/// `hidden` H `[N, d]`, `weight` W `[C, d]`, targets `[N]`, optional sample weights `[N]`; gradients `[N, d]` and
/// `[C, d]`.
///
/// # Gradient
/// ```text
/// G = ∂value/∂Z (the softmax-family gradient of the chosen loss, reduction applied),  dH = G·W,  dW = Gᵀ·H
/// ```
///
/// # Errors
/// The CPU configs' [`Error::Parameter`] (ε, γ, class weights), [`Error::Parameter`] for chunk sizes or the prior,
/// [`Error::Input`] for γ > 0 with ε > 0, and the shape, label, weight and finiteness errors of the inputs.
///
/// # References
/// Wijmans, Huval, Hertzberg, Koltun, Krähenbühl (2025), *Cut Your Losses in Large-Vocabulary Language Models*,
/// ICLR, arXiv:2411.09009; Hsu et al. (2024), *Liger Kernel*, arXiv:2410.10989; Menon, Jayasumana, Rawat, Jain,
/// Veit, Kumar (2021), *Long-tail learning via logit adjustment*, ICLR, arXiv:2007.07314; Lin et al. (2017), focal
/// loss, arXiv:1708.02002.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearCrossEntropy {
    /// Per-class weights `[C]`. Default none.
    pub class_weights: Option<Vec<f64>>,
    /// Label that is skipped. Default −100.
    pub ignore_index: i64,
    /// ε ∈ [0, 1). Default 0.
    pub label_smoothing: f64,
    /// Focal γ ≥ 0. Default 0.
    pub gamma: f64,
    /// Logit-adjustment strength τ. Default 1 (used only with a prior).
    pub tau: f64,
    /// Class prior π `[C]` (positive) of the logit adjustment. Default none.
    pub class_prior: Option<Vec<f64>>,
    /// Default [`Reduction::Mean`].
    pub reduction: Reduction,
    /// Rows per chunk. Default 2048.
    pub chunk_rows: usize,
    /// Classes per chunk. Default 8192.
    pub chunk_classes: usize,
}

impl Default for LinearCrossEntropy {
    fn default() -> Self {
        Self {
            class_weights: None,
            ignore_index: -100,
            label_smoothing: 0.0,
            gamma: 0.0,
            tau: 1.0,
            class_prior: None,
            reduction: Reduction::Mean,
            chunk_rows: 2048,
            chunk_classes: 8192,
        }
    }
}

impl LinearCrossEntropy {
    /// The defaults (plain cross-entropy, Mean, 2048 × 8192 chunks).
    pub fn new() -> Self {
        Self::default()
    }
    /// Per-class weights (default none).
    pub fn class_weights(mut self, w: Vec<f64>) -> Self {
        self.class_weights = Some(w);
        self
    }
    /// Ignore index (default −100).
    pub fn ignore_index(mut self, i: i64) -> Self {
        self.ignore_index = i;
        self
    }
    /// Label smoothing ε (default 0).
    pub fn label_smoothing(mut self, eps: f64) -> Self {
        self.label_smoothing = eps;
        self
    }
    /// Focal γ (default 0).
    pub fn gamma(mut self, gamma: f64) -> Self {
        self.gamma = gamma;
        self
    }
    /// Logit adjustment τ·log π (default off).
    pub fn logit_adjustment(mut self, tau: f64, prior: Vec<f64>) -> Self {
        self.tau = tau;
        self.class_prior = Some(prior);
        self
    }
    /// Reduction (default [`Reduction::Mean`]).
    pub fn reduction(mut self, r: Reduction) -> Self {
        self.reduction = r;
        self
    }
    /// Chunk sizes (default 2048 rows × 8192 classes).
    pub fn chunks(mut self, rows: usize, classes: usize) -> Self {
        self.chunk_rows = rows;
        self.chunk_classes = classes;
        self
    }

    fn ce(&self) -> CrossEntropy {
        CrossEntropy {
            class_weights: self.class_weights.clone(),
            ignore_index: self.ignore_index,
            label_smoothing: self.label_smoothing,
            reduction: self.reduction,
            ..CrossEntropy::default()
        }
    }

    fn focal(&self) -> Focal {
        Focal {
            gamma: self.gamma,
            class_weights: self.class_weights.clone(),
            ignore_index: self.ignore_index,
            reduction: self.reduction,
        }
    }

    /// Validates the parameters.
    ///
    /// # Errors
    /// [`Error::Parameter`] naming `label_smoothing`, `gamma`, `class_weights`, `tau`, `chunk_rows` or
    /// `chunk_classes`; [`Error::Input`] for γ > 0 together with ε > 0.
    pub fn check(&self) -> Result<()> {
        self.ce().check()?;
        self.focal().check()?;
        if self.gamma > 0.0 && self.label_smoothing > 0.0 {
            return Err(Error::Input {
                what: format!(
                    "linear cross-entropy: focal gamma = {} with label_smoothing = {} is not defined (use one)",
                    self.gamma, self.label_smoothing
                ),
            });
        }
        check::finite_param("tau", self.tau)?;
        for (name, v) in [("chunk_rows", self.chunk_rows), ("chunk_classes", self.chunk_classes)] {
            if v == 0 {
                return Err(Error::Parameter { name, value: 0.0, reason: "must be at least 1" });
            }
        }
        if self.chunk_rows.saturating_mul(self.chunk_classes) > i32::MAX as usize {
            return Err(Error::Parameter {
                name: "chunk_classes",
                value: self.chunk_classes as f64,
                reason: "chunk_rows × chunk_classes must stay below 2^31",
            });
        }
        Ok(())
    }

    /// τ·log πⱼ for each class, when a prior is set (validated against `c` classes).
    fn adjustment(&self, c: usize) -> Result<Option<Vec<f64>>> {
        let Some(prior) = self.class_prior.as_ref() else { return Ok(None) };
        check::shape("class_prior", &[prior.len()], &[Some(c)])?;
        if let Some(&v) = prior.iter().find(|v| !(v.is_finite() && **v > 0.0)) {
            return Err(Error::Parameter { name: "class_prior", value: v, reason: "entries must be finite and > 0" });
        }
        Ok(Some(prior.iter().map(|p| self.tau * p.ln()).collect()))
    }

    /// The CPU reference in f64: the logits Z = H·Wᵀ + τ·log π, the losskit-losses [`CrossEntropy`] (γ = 0) or
    /// [`Focal`] (γ > 0) of the same config on Z, and the chain rule dH = G·W, dW = Gᵀ·H.
    ///
    /// # Errors
    /// As [`LinearCrossEntropy`], from the same checks as the GPU path.
    pub fn compute_cpu(
        &self,
        hidden: ArrayView2<'_, f64>,
        weight: ArrayView2<'_, f64>,
        targets: ArrayView1<'_, i64>,
        weights: Option<ArrayView1<'_, f64>>,
        grad: bool,
    ) -> Result<LinearCeOutput<f64>> {
        self.check()?;
        let (n, d) = hidden.dim();
        check::non_empty("hidden", n)?;
        check::shape("weight", weight.shape(), &[None, Some(d)])?;
        let c = weight.nrows();
        check::non_empty("weight", c)?;
        let adj = self.adjustment(c)?;
        check::finite("hidden", &hidden)?;
        check::finite("weight", &weight)?;
        let mut z = hidden.dot(&weight.t());
        if let Some(adj) = adj {
            for mut row in z.rows_mut() {
                row.iter_mut().zip(&adj).for_each(|(v, a)| *v += a);
            }
        }
        let t = Targets::Hard(targets);
        let out = if self.gamma > 0.0 {
            self.focal().compute(z.view(), t, weights, grad)?
        } else {
            self.ce().compute(z.view(), t, weights, grad)?
        };
        let (gh, gw) = match out.grad {
            Some(g) => (Some(g.dot(&weight)), Some(g.t().dot(&hidden))),
            None => (None, None),
        };
        Ok(LinearCeOutput {
            value: out.value,
            per_sample: out.per_sample.unwrap_or_else(|| Array1::zeros(n)),
            grad_hidden: gh,
            grad_weight: gw,
        })
    }

    /// Validates the inputs (config, shapes, class weights and prior, labels, sample weights, the Mean's
    /// denominator, finite inputs) and lays out the launch sequence for element type `T` and labels `L`.
    ///
    /// [`Gpu::linear_cross_entropy`] runs this plan; it is public so that the CPU emulation of the kernels
    /// (tests/emu/linear_ce.cpp) replays exactly the same launches.
    ///
    /// # Errors
    /// As [`Gpu::linear_cross_entropy`], except device errors.
    pub fn plan<T: GpuFloat, L: GpuLabel>(
        &self,
        hidden: &ArrayView2<'_, T>,
        weight: &ArrayView2<'_, T>,
        targets: &ArrayView1<'_, L>,
        weights: Option<&ArrayView1<'_, f32>>,
        grad: bool,
    ) -> Result<LinearCePlan> {
        self.check()?;
        let (n, d) = hidden.dim();
        check::non_empty("hidden", n)?;
        if d == 0 {
            return Err(Error::Shape { arg: "hidden", expected: "[N, d] with d ≥ 1".into(), got: vec![n, d] });
        }
        check::shape("weight", weight.shape(), &[None, Some(d)])?;
        let c = weight.nrows();
        check::non_empty("weight", c)?;
        if let Some(cw) = self.class_weights.as_ref() {
            check::shape("class_weights", &[cw.len()], &[Some(c)])?;
        }
        let adjust = self.adjustment(c)?.map(|a| a.iter().map(|&v| v as f32).collect::<Vec<f32>>());
        check::shape("targets", targets.shape(), &[Some(n)])?;
        let labels: Array1<i64> = targets.iter().map(|l| l.to_i64()).collect();
        check::labels("targets", labels.view(), c, Some(self.ignore_index))?;
        if let Some(w) = weights {
            check::weights("weights", w.view(), n)?;
        }
        let class_weights: Option<Vec<f32>> =
            self.class_weights.as_ref().map(|w| w.iter().map(|&v| v as f32).collect());
        let (gscale, value_scale) = match self.reduction {
            Reduction::Mean => {
                let mut den = 0.0_f64;
                for (i, &y) in labels.iter().enumerate() {
                    if y == self.ignore_index {
                        continue;
                    }
                    let cw = class_weights.as_ref().map_or(1.0, |cw| f64::from(cw[y as usize])); // ok: y in 0..c
                    den += weights.map_or(1.0, |w| f64::from(w[i])) * cw;
                }
                if den.is_nan() || den <= 0.0 {
                    return Err(Error::Degenerate {
                        what: "the mean is undefined: every target is ignored or has zero (sample × class) weight"
                            .into(),
                    });
                }
                (1.0 / den, 1.0 / den)
            }
            Reduction::Sum | Reduction::None => (1.0, 1.0),
        };
        for (arg, a) in [("hidden", hidden), ("weight", weight)] {
            if let Some((index, v)) = a.iter().enumerate().find(|(_, v)| !v.to_f32().is_finite()) {
                return Err(Error::NonFinite { arg, index, value: f64::from(v.to_f32()) });
            }
        }
        let limit = i32::MAX as usize;
        if n > limit || c > limit || d > limit {
            return Err(Error::Input {
                what: format!(
                    "linear cross-entropy: the GPU kernels take at most 2^31 − 1 rows, classes and features, got N = {n}, C = {c}, d = {d}"
                ),
            });
        }
        let wsum = class_weights.as_ref().map_or(c as f64, |cw| cw.iter().map(|&v| f64::from(v)).sum());
        let (r, cc) = (self.chunk_rows.min(n), self.chunk_classes.min(c));
        Ok(LinearCePlan {
            n,
            c,
            d,
            ignore_index: self.ignore_index,
            eps: self.label_smoothing as f32,
            wsum: wsum as f32,
            gscale: gscale as f32,
            gamma: self.gamma as f32,
            value_scale,
            class_weights,
            adjust,
            ws_rows: r,
            ws_cols: cc,
            launches: launches::<T, L>(n, c, d, r, cc, grad),
        })
    }
}

/// The launch sequence of the kernels of `linear_ce.cu` for chunks of `r` rows and `cc` classes (see the file's
/// header): pass 1 row chunks × class chunks, the per-row finish, then (with `grad`) class chunks × row chunks.
fn launches<T: GpuFloat, L: GpuLabel>(
    n: usize,
    c: usize,
    d: usize,
    r: usize,
    cc: usize,
    grad: bool,
) -> Vec<KernelLaunch> {
    let tiles = |a: usize, b: usize| (a.div_ceil(64) * b.div_ceil(64)) as u32;
    let stride_grid = |count: usize| count.div_ceil(256).clamp(1, 1 << 16) as u32;
    let step = |kernel: String, grid: u32, row0: usize, rows: usize, col0: usize, cols: usize| KernelLaunch {
        kernel,
        grid,
        block: 256,
        row0: row0 as i32,
        rows: rows as i32,
        col0: col0 as i32,
        cols: cols as i32,
    };
    let (t, l) = (T::NAME, L::NAME);
    let mut out = Vec::new();
    for row0 in (0..n).step_by(r) {
        let rows = r.min(n - row0);
        for col0 in (0..c).step_by(cc) {
            let cols = cc.min(c - col0);
            out.push(step(format!("lce_logits_{t}"), tiles(rows, cols), row0, rows, col0, cols));
            out.push(step(format!("lce_stats_{l}"), rows.div_ceil(8) as u32, row0, rows, col0, cols));
        }
    }
    out.push(step(format!("lce_finish_{l}"), n.div_ceil(256) as u32, 0, n, 0, c));
    if grad {
        for col0 in (0..c).step_by(cc) {
            let cols = cc.min(c - col0);
            for row0 in (0..n).step_by(r) {
                let rows = r.min(n - row0);
                out.push(step(format!("lce_logits_{t}"), tiles(rows, cols), row0, rows, col0, cols));
                out.push(step(format!("lce_grad_{l}"), stride_grid(rows * cols), row0, rows, col0, cols));
                out.push(step(format!("lce_dh_{t}"), tiles(rows, d), row0, rows, col0, cols));
                out.push(step(format!("lce_dw_{t}"), tiles(cols, d), row0, rows, col0, cols));
            }
            out.push(step(format!("lce_cast_dw_{t}"), stride_grid(cols * d), 0, n, col0, cols));
        }
        out.push(step(format!("lce_cast_dh_{t}"), stride_grid(n * d), 0, n, 0, c));
    }
    out
}

/// One kernel launch of a plan ([`LinearCePlan`], [`AnyLossPlan`](crate::AnyLossPlan)): the kernel, its grid (blocks of `block` threads)
/// and the chunk it covers (row and class ranges; unused by kernels that take none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelLaunch {
    /// Kernel name in `linear_ce.cu`.
    pub kernel: String,
    /// Blocks.
    pub grid: u32,
    /// Threads per block.
    pub block: u32,
    /// First row of the chunk.
    pub row0: i32,
    /// Rows of the chunk.
    pub rows: i32,
    /// First class of the chunk.
    pub col0: i32,
    /// Classes of the chunk.
    pub cols: i32,
}

/// A validated fused linear + cross-entropy problem: sizes, the kernels' scalars and the launch sequence.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearCePlan {
    /// Rows N.
    pub n: usize,
    /// Classes C.
    pub c: usize,
    /// Features d.
    pub d: usize,
    /// The ignore index.
    pub ignore_index: i64,
    /// Label smoothing ε.
    pub eps: f32,
    /// Σ class weights (C without them).
    pub wsum: f32,
    /// Gradient scale (1 / the Mean's denominator, or 1).
    pub gscale: f32,
    /// Focal γ.
    pub gamma: f32,
    /// Multiplier of Σ per-row losses giving the value.
    pub value_scale: f64,
    /// Class weights `[C]`.
    pub class_weights: Option<Vec<f32>>,
    /// Logit adjustment τ·log π `[C]`.
    pub adjust: Option<Vec<f32>>,
    /// Rows of the logits workspace.
    pub ws_rows: usize,
    /// Columns of the logits workspace (and rows of the dW chunk accumulator).
    pub ws_cols: usize,
    /// The launches, in order.
    pub launches: Vec<KernelLaunch>,
}

impl LinearCePlan {
    /// Bytes of device memory beyond the inputs and outputs: the logits tile, the dW chunk accumulator, the f32 dH
    /// accumulator (with gradients) and 13 floats of per-row state.
    pub fn workspace_bytes(&self, grad: bool) -> usize {
        let tile = self.ws_rows * self.ws_cols;
        let acc = if grad { self.ws_cols * self.d + self.n * self.d } else { 0 };
        4 * (tile + acc + 13 * self.n)
    }
}

/// Value, per-sample losses and the gradients of a [`LinearCrossEntropy`].
#[derive(Clone, Debug, PartialEq)]
pub struct LinearCeOutput<T> {
    /// The reduced loss.
    pub value: f64,
    /// sᵢ·ℓᵢ per row `[N]`.
    pub per_sample: Array1<f64>,
    /// ∂value/∂H `[N, d]`, when asked for.
    pub grad_hidden: Option<Array2<T>>,
    /// ∂value/∂W `[C, d]`, when asked for.
    pub grad_weight: Option<Array2<T>>,
}

/// The argument struct of every kernel in `linear_ce.cu` (`LkLceArgs`), field for field.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct LceArgs {
    h: u64,
    w: u64,
    y: u64,
    cw: u64,
    sw: u64,
    adj: u64,
    ws: u64,
    st: u64,
    co: u64,
    loss: u64,
    dh: u64,
    dw: u64,
    dh_out: u64,
    dw_out: u64,
    ignore_index: i64,
    n: i32,
    c: i32,
    d: i32,
    row0: i32,
    rows: i32,
    col0: i32,
    cols: i32,
    has_ignore: i32,
    eps: f32,
    wsum: f32,
    gscale: f32,
    gamma: f32,
}

// SAFETY: plain old data with the C layout of LkLceArgs (8-byte fields first, no padding: 14·8 + 8 + 8·4 + 4·4 bytes).
unsafe impl DeviceRepr for LceArgs {}
const _: () = assert!(std::mem::size_of::<LceArgs>() == 168);

impl Gpu {
    /// The fused linear + cross-entropy [`LinearCrossEntropy`] of hidden states `hidden` H `[N, d]` and classifier
    /// `weight` W `[C, d]` against class indices `targets` `[N]`, with optional per-sample `weights` `[N]`: value,
    /// per-row losses and (with `grad`) dH and dW, holding at most one `chunk_rows` × `chunk_classes` tile of logits.
    ///
    /// H and W are `f32`, `half::bf16` or `half::f16` (the gradients have their type), targets `i64` or `i32`; all
    /// arithmetic is f32 (the value's sum f64 on the host). Results agree with
    /// [`LinearCrossEntropy::compute_cpu`] up to f32 rounding and are bitwise reproducible.
    ///
    /// # Errors
    /// As [`LinearCrossEntropy::plan`]; [`Error::Device`] when a driver call or kernel fails.
    pub fn linear_cross_entropy<T: GpuFloat, L: GpuLabel>(
        &self,
        loss: &LinearCrossEntropy,
        hidden: ArrayView2<'_, T>,
        weight: ArrayView2<'_, T>,
        targets: ArrayView1<'_, L>,
        weights: Option<ArrayView1<'_, f32>>,
        grad: bool,
    ) -> Result<LinearCeOutput<T>> {
        self.linear_ce_run(loss, hidden, weight, targets, weights, grad, false).map(|(out, _)| out)
    }

    /// As [`Gpu::linear_cross_entropy`], also returning the milliseconds the kernels took (CUDA events around the
    /// launch sequence: no transfers, no allocation), which is what the bench reports.
    ///
    /// # Errors
    /// As [`Gpu::linear_cross_entropy`].
    pub fn linear_cross_entropy_timed<T: GpuFloat, L: GpuLabel>(
        &self,
        loss: &LinearCrossEntropy,
        hidden: ArrayView2<'_, T>,
        weight: ArrayView2<'_, T>,
        targets: ArrayView1<'_, L>,
        weights: Option<ArrayView1<'_, f32>>,
        grad: bool,
    ) -> Result<(LinearCeOutput<T>, f32)> {
        self.linear_ce_run(loss, hidden, weight, targets, weights, grad, true).map(|(out, ms)| (out, ms.unwrap_or(0.0)))
    }

    #[allow(clippy::too_many_arguments)]
    fn linear_ce_run<T: GpuFloat, L: GpuLabel>(
        &self,
        loss: &LinearCrossEntropy,
        hidden: ArrayView2<'_, T>,
        weight: ArrayView2<'_, T>,
        targets: ArrayView1<'_, L>,
        weights: Option<ArrayView1<'_, f32>>,
        grad: bool,
        timed: bool,
    ) -> Result<(LinearCeOutput<T>, Option<f32>)> {
        let plan = loss.plan(&hidden, &weight, &targets, weights.as_ref(), grad)?;
        let mut kernels = Vec::with_capacity(plan.launches.len());
        for l in &plan.launches {
            kernels.push(self.function("linear_ce", &l.kernel)?);
        }
        guard("running linear cross-entropy", || {
            let dev = |e| device_error("running linear cross-entropy", e);
            let stream = self.stream();
            let (n, c, d) = (plan.n, plan.c, plan.d);
            let h = hidden.as_standard_layout();
            let h = h.as_slice().ok_or_else(|| Error::Input { what: "hidden: not contiguous".into() })?;
            let w = weight.as_standard_layout();
            let w = w.as_slice().ok_or_else(|| Error::Input { what: "weight: not contiguous".into() })?;
            let h = stream.clone_htod(h).map_err(dev)?;
            let w = stream.clone_htod(w).map_err(dev)?;
            let y = stream.clone_htod(&targets.to_vec()).map_err(dev)?;
            let cw = plan.class_weights.as_ref().map(|v| stream.clone_htod(v.as_slice())).transpose().map_err(dev)?;
            let sw = weights.map(|v| stream.clone_htod(&v.to_vec())).transpose().map_err(dev)?;
            let adj = plan.adjust.as_ref().map(|v| stream.clone_htod(v.as_slice())).transpose().map_err(dev)?;
            let ws = stream.alloc_zeros::<f32>(plan.ws_rows * plan.ws_cols).map_err(dev)?;
            let st = stream.alloc_zeros::<f32>(8 * n).map_err(dev)?;
            let co = stream.alloc_zeros::<f32>(4 * n).map_err(dev)?;
            let rows = stream.alloc_zeros::<f32>(n).map_err(dev)?;
            let (dh, dw, dh_out, dw_out) = if grad {
                (
                    Some(stream.alloc_zeros::<f32>(n * d).map_err(dev)?),
                    Some(stream.alloc_zeros::<f32>(plan.ws_cols * d).map_err(dev)?),
                    Some(stream.alloc_zeros::<T>(n * d).map_err(dev)?),
                    Some(stream.alloc_zeros::<T>(c * d).map_err(dev)?),
                )
            } else {
                (None, None, None, None)
            };
            // One stream does everything, so the pointers need no cross-stream synchronisation.
            macro_rules! ptr {
                ($s:expr) => {
                    $s.device_ptr(stream).0
                };
            }
            macro_rules! opt {
                ($s:expr) => {
                    $s.as_ref().map_or(0, |s| s.device_ptr(stream).0)
                };
            }
            let base = LceArgs {
                h: ptr!(h),
                w: ptr!(w),
                y: ptr!(y),
                cw: opt!(cw),
                sw: opt!(sw),
                adj: opt!(adj),
                ws: ptr!(ws),
                st: ptr!(st),
                co: ptr!(co),
                loss: ptr!(rows),
                dh: opt!(dh),
                dw: opt!(dw),
                dh_out: opt!(dh_out),
                dw_out: opt!(dw_out),
                ignore_index: plan.ignore_index,
                n: n as i32,
                c: c as i32,
                d: d as i32,
                has_ignore: 1,
                eps: plan.eps,
                wsum: plan.wsum,
                gscale: plan.gscale,
                gamma: plan.gamma,
                ..LceArgs::default()
            };
            let events = if timed {
                let flags = Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT);
                let ctx = self.context();
                let (start, end) = (ctx.new_event(flags).map_err(dev)?, ctx.new_event(flags).map_err(dev)?);
                start.record(stream).map_err(dev)?;
                Some((start, end))
            } else {
                None
            };
            for (l, kernel) in plan.launches.iter().zip(&kernels) {
                let args = LceArgs { row0: l.row0, rows: l.rows, col0: l.col0, cols: l.cols, ..base };
                let mut b = stream.launch_builder(kernel);
                b.arg(&args);
                let config = LaunchConfig { grid_dim: (l.grid, 1, 1), block_dim: (l.block, 1, 1), shared_mem_bytes: 0 };
                // SAFETY: every kernel of linear_ce.cu takes one LkLceArgs by value, which LceArgs mirrors; the
                // buffers behind its pointers are allocated above with the sizes the kernels index (N·d, C·d, N,
                // 8·N, 4·N, ws_rows·ws_cols, ws_cols·d), and the unused ones (no gradient) are never dereferenced.
                unsafe { b.launch(config) }.map_err(dev)?;
            }
            let ms = match events {
                Some((start, end)) => {
                    end.record(stream).map_err(dev)?;
                    Some(start.elapsed_ms(&end).map_err(dev)?)
                }
                None => None,
            };
            let per_row: Vec<f32> = stream.clone_dtoh(&rows).map_err(dev)?;
            let gh = dh_out.map(|g| stream.clone_dtoh(&g)).transpose().map_err(dev)?;
            let gw = dw_out.map(|g| stream.clone_dtoh(&g)).transpose().map_err(dev)?;
            stream.synchronize().map_err(dev)?;
            let shape = |v: Vec<T>, r: usize| {
                Array2::from_shape_vec((r, d), v).map_err(|e| device_error("shaping a gradient", e))
            };
            let per_sample: Array1<f64> = per_row.iter().map(|&v| f64::from(v)).collect();
            let out = LinearCeOutput {
                value: per_sample.iter().sum::<f64>() * plan.value_scale,
                per_sample,
                grad_hidden: gh.map(|g| shape(g, n)).transpose()?,
                grad_weight: gw.map(|g| shape(g, c)).transpose()?,
            };
            Ok((out, ms))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn bad_configs_are_rejected() {
        let l = LinearCrossEntropy::new();
        assert!(l.check().is_ok());
        assert!(matches!(l.clone().gamma(-1.0).check(), Err(Error::Parameter { name: "gamma", .. })));
        assert!(matches!(
            l.clone().label_smoothing(1.0).check(),
            Err(Error::Parameter { name: "label_smoothing", .. })
        ));
        assert!(matches!(l.clone().gamma(2.0).label_smoothing(0.1).check(), Err(Error::Input { .. })));
        assert!(matches!(l.clone().chunks(0, 4).check(), Err(Error::Parameter { name: "chunk_rows", .. })));
        assert!(matches!(l.clone().chunks(1 << 16, 1 << 16).check(), Err(Error::Parameter { .. })));
        let h = Array2::<f32>::zeros((3, 2));
        let w = Array2::<f32>::zeros((4, 2));
        let t = array![0_i64, 3, -100];
        let p =
            l.clone().logit_adjustment(1.0, vec![0.5, 0.5, 0.0, 1.0]).plan(&h.view(), &w.view(), &t.view(), None, true);
        assert!(matches!(p, Err(Error::Parameter { name: "class_prior", .. })), "{p:?}");
        let p = l.clone().logit_adjustment(1.0, vec![1.0; 3]).plan(&h.view(), &w.view(), &t.view(), None, true);
        assert!(matches!(p, Err(Error::Shape { arg: "class_prior", .. })), "{p:?}");
        let w3 = Array2::<f32>::zeros((4, 3));
        assert!(matches!(
            l.plan(&h.view(), &w3.view(), &t.view(), None, true),
            Err(Error::Shape { arg: "weight", .. })
        ));
        let bad = array![0_i64, 4, 1];
        assert!(matches!(l.plan(&h.view(), &w.view(), &bad.view(), None, true), Err(Error::LabelOutOfRange { .. })));
        let mut nan = w.clone();
        nan[[1, 1]] = f32::NAN;
        assert!(matches!(
            l.plan(&h.view(), &nan.view(), &t.view(), None, true),
            Err(Error::NonFinite { arg: "weight", index: 3, .. })
        ));
        let all_ignored = array![-100_i64, -100, -100];
        assert!(matches!(l.plan(&h.view(), &w.view(), &all_ignored.view(), None, true), Err(Error::Degenerate { .. })));
    }

    #[test]
    fn plan_walks_every_chunk() {
        let h = Array2::<f32>::zeros((5, 3));
        let w = Array2::<f32>::zeros((7, 3));
        let t = array![0_i32, 1, 2, 3, 6];
        let p = LinearCrossEntropy::new().chunks(2, 3).plan(&h.view(), &w.view(), &t.view(), None, true).unwrap();
        assert_eq!((p.ws_rows, p.ws_cols, p.value_scale), (2, 3, 0.2));
        // Pass 1: 3 row chunks × 3 class chunks × 2 kernels, finish; pass 2: 3 × (3 × 4 + 1), final cast.
        assert_eq!(p.launches.len(), 18 + 1 + 39 + 1);
        assert_eq!(p.launches[0].kernel, "lce_logits_f32");
        assert_eq!(p.launches[1].kernel, "lce_stats_i32");
        let last_stats = &p.launches[17];
        assert_eq!((last_stats.row0, last_stats.rows, last_stats.col0, last_stats.cols), (4, 1, 6, 1));
        assert_eq!(p.launches.last().unwrap().kernel, "lce_cast_dh_f32");
        let no_grad = LinearCrossEntropy::new().plan(&h.view(), &w.view(), &t.view(), None, false).unwrap();
        assert_eq!(no_grad.launches.len(), 3);
        assert_eq!(no_grad.workspace_bytes(false), 4 * (5 * 7 + 13 * 5));
    }
}
