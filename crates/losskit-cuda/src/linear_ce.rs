//! Fused linear + cross-entropy on the GPU: the loss of the logits H·Wᵀ (+ a logit adjustment) and the gradients
//! with respect to H and W, computed one row tile at a time with cuBLAS tensor-core GEMMs (`blas.rs`) and one
//! elementwise kernel (`kernels/linear_ce.cu`) so that the N × C logits never exist in memory, plus the CPU reference
//! that composes the losskit-losses configs.

use cudarc::driver::{CudaSlice, DevicePtr, DeviceRepr, LaunchConfig, PushKernelArg};
use losskit_losses::{ClassLoss, CrossEntropy, Focal, Targets};
use losskit_tensor::{Error, Reduction, Result, check};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

use crate::blas::{Blas, CUBLAS_WORKSPACE_BYTES, Elem, RawGemm};
use crate::device::{Gpu, device_error, guard};
use crate::dtype::{GpuFloat, GpuLabel};

/// Elements of the largest f32 logits tile a plan holds (2²⁷: 512 MiB); the rows of a tile are capped to fit.
pub const MAX_TILE_ELEMENTS: usize = 1 << 27;

/// Cross-entropy (or focal loss) of a linear classifier's logits, fused with the classifier so that the logits are
/// only ever held one tile of r rows × all C classes at a time (the memory saving of Liger-Kernel's
/// `FusedLinearCrossEntropy` and Apple's Cut Cross-Entropy), with class weights, label smoothing, an ignore index,
/// focal γ and logit adjustment.
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
/// # Algorithm (three GEMMs, as many as the unfused matmul + cross-entropy)
/// For each tile of r rows (H_r = rows row0 … row0 + r of H):
/// ```text
/// Z_r  = H_r·Wᵀ                  cuBLAS, f32 output into the tile [r, C]   (in class slices of ≤ chunk_classes)
/// G_r  = ∂ℓ/∂Z_r (unscaled)      lce_rows: one block per row, loss + G in the input type, in place over Z_r
/// dH_r = s·G_r·W                 cuBLAS, K = C: complete, written once in the input type
/// dW  += s·G_rᵀ·H_r              cuBLAS, β = 0 for the first tile, 1 after (accumulates in dW's own type)
/// ```
/// with s the reduction's scale (1 / the Mean's denominator, or 1) applied as the GEMMs' α, so that G itself (which
/// carries the sample weights) stays far from the f16 subnormals. r = min(`chunk_rows`, N, ⌊2²⁷ / C⌋ rounded down to
/// a multiple of 64, at least 1): the f32 tile never exceeds 512 MiB ([`MAX_TILE_ELEMENTS`]).
///
/// # Memory
/// Beyond the inputs and outputs: the f32 tile (4·r·C bytes), cuBLAS's 32 MiB workspace and 4·N bytes of per-row
/// losses ([`LinearCePlan::workspace_bytes`]); at N = 8192, d = 4096, C = 131072 that is r = 1024 and 544 MiB, where
/// the materialised bf16 logits alone would be 2 GiB.
///
/// # Precision
/// The logits come out of cuBLAS in f32 (bf16/f16 products are exact in f32; the tensor cores accumulate in f32), so
/// the loss and per-row losses keep f32 accuracy for every input type. The gradients: f32 inputs use FP32 SGEMM (no
/// TF32) and agree with the f64 reference to f32 rounding. For bf16 / f16 inputs G is rounded to the input type
/// before the tensor-core GEMMs (as PyTorch's unfused backward does), which adds up to u·Σⱼ|Gᵢⱼ||Wⱼₖ| to dHᵢₖ
/// (u = 2⁻⁸ for bf16, 2⁻¹¹ for f16, plus the f16 subnormal spacing 2⁻²⁴ per G entry, times s); dH is then rounded
/// once. dW is accumulated over the ⌈N/r⌉ row tiles in its own type (cuBLAS adds each tile's f32 partial sum to the
/// stored dW and rounds), so its error bound is (1 + ⌈N/r⌉)·u·Σᵢ|Gᵢⱼ||Hᵢₖ| instead of u·(that) — an f32 accumulator
/// of C × d would cost 2 GiB at the target shape. Results are bitwise reproducible for a given GPU, cuBLAS version
/// and chunking (cuBLAS is deterministic on one stream with a fixed workspace).
///
/// # Parameters
/// * `class_weights`: cw `[C]`, non-negative, default none (all 1).
/// * `ignore_index`: default −100.
/// * `label_smoothing`: ε ∈ [0, 1), default 0.
/// * `gamma`: focal γ ≥ 0, default 0 (cross-entropy); γ > 0 with ε > 0 is rejected.
/// * `tau`, `class_prior`: logit adjustment τ·log π (Menon et al.), default τ = 1 with no prior (off); π `[C]` > 0.
/// * `reduction`: default `Mean`.
/// * `chunk_rows`: the most rows of a tile, default 8192 (the tile is also capped at 2²⁷ elements, see above).
/// * `chunk_classes`: the most classes of one forward GEMM call, default 65536 (bounds a single cuBLAS call; the
///   result does not depend on it).
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
/// ICLR, arXiv:2411.09009; Hsu et al. (2024), *Liger Kernel*, arXiv:2410.10989 (its fused linear cross-entropy also
/// accumulates dW over row chunks in the weight's type by default); Menon, Jayasumana, Rawat, Jain, Veit, Kumar
/// (2021), *Long-tail learning via logit adjustment*, ICLR, arXiv:2007.07314; Lin et al. (2017), focal loss,
/// arXiv:1708.02002; NVIDIA cuBLAS documentation, `cublasGemmEx` (CUBLAS_COMPUTE_32F) and `cublasSetWorkspace`.
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
    /// The most rows of a tile. Default 8192 (capped further so that the f32 tile holds at most 2²⁷ elements).
    pub chunk_rows: usize,
    /// The most classes of one forward GEMM call. Default 65536.
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
            chunk_rows: 8192,
            chunk_classes: 65536,
        }
    }
}

impl LinearCrossEntropy {
    /// The defaults (plain cross-entropy, Mean, tiles of at most 8192 rows, forward GEMMs of at most 65536 classes).
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
    /// The most rows of a tile and classes of a forward GEMM (default 8192 × 65536).
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
        let cap = MAX_TILE_ELEMENTS / c;
        let cap = if cap >= 64 { cap / 64 * 64 } else { cap.max(1) };
        let r = self.chunk_rows.min(n).min(cap);
        let cc = self.chunk_classes.min(c);
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
            ws_cols: c,
            grad_ld: c * 4 / std::mem::size_of::<T>(),
            steps: steps::<T, L>(n, c, d, r, cc, grad, gscale as f32),
        })
    }
}

/// The step sequence for tiles of `r` rows (and forward GEMMs of at most `cc` classes): per tile, the logits GEMM(s),
/// `lce_rows`, then with `grad` the dH and dW GEMMs (see [`LinearCrossEntropy`]'s algorithm).
fn steps<T: GpuFloat, L: GpuLabel>(
    n: usize,
    c: usize,
    d: usize,
    r: usize,
    cc: usize,
    grad: bool,
    gscale: f32,
) -> Vec<LceStep> {
    let ldg = c * 4 / std::mem::size_of::<T>();
    let op = |buffer: LceBuffer, offset: usize, ld: usize| GemmOperand { buffer, offset, ld };
    let mut out = Vec::new();
    for row0 in (0..n).step_by(r) {
        let rows = r.min(n - row0);
        // Row-major Z_r [rows, C] is column-major Z_rᵀ (C × rows, ld C) = W[col slice] (d × cols, op T) · H_rᵀ.
        for col0 in (0..c).step_by(cc) {
            let cols = cc.min(c - col0);
            out.push(LceStep::Gemm(GemmCall {
                trans_a: true,
                trans_b: false,
                m: cols,
                n: rows,
                k: d,
                a: op(LceBuffer::Weight, col0 * d, d),
                b: op(LceBuffer::Hidden, row0 * d, d),
                c: op(LceBuffer::Logits, col0, c),
                alpha: 1.0,
                beta: 0.0,
            }));
        }
        out.push(LceStep::Kernel(KernelLaunch {
            kernel: format!("lce_rows_{}_{}", T::NAME, L::NAME),
            grid: rows as u32,
            block: 256,
            row0: row0 as i32,
            rows: rows as i32,
            col0: 0,
            cols: c as i32,
        }));
        if grad {
            // dH_rᵀ (d × rows, ld d) = Wᵀ (d × C) · G_rᵀ (C × rows, ld ldg).
            out.push(LceStep::Gemm(GemmCall {
                trans_a: false,
                trans_b: false,
                m: d,
                n: rows,
                k: c,
                a: op(LceBuffer::Weight, 0, d),
                b: op(LceBuffer::Grad, 0, ldg),
                c: op(LceBuffer::GradHidden, row0 * d, d),
                alpha: gscale,
                beta: 0.0,
            }));
            // dWᵀ (d × C, ld d) (+)= H_rᵀ (d × rows) · G_r (rows × C: the column-major C × rows of ld ldg, op T).
            out.push(LceStep::Gemm(GemmCall {
                trans_a: false,
                trans_b: true,
                m: d,
                n: c,
                k: rows,
                a: op(LceBuffer::Hidden, row0 * d, d),
                b: op(LceBuffer::Grad, 0, ldg),
                c: op(LceBuffer::GradWeight, 0, d),
                alpha: gscale,
                beta: if row0 == 0 { 0.0 } else { 1.0 },
            }));
        }
    }
    out
}

/// One kernel launch of a plan ([`LinearCePlan`], [`AnyLossPlan`](crate::AnyLossPlan)): the kernel, its grid (blocks of `block` threads)
/// and the chunk it covers (row and class ranges; unused by kernels that take none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelLaunch {
    /// Kernel name in the plan's kernel file.
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

/// A device buffer of the fused linear + cross-entropy, as a GEMM operand. Element types: the input type T for all
/// but [`LceBuffer::Logits`] (f32).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LceBuffer {
    /// H `[N, d]`.
    Hidden,
    /// W `[C, d]`.
    Weight,
    /// The tile `[ws_rows, C]` as f32 logits (leading dimension C).
    Logits,
    /// The same tile as G in T (leading dimension [`LinearCePlan::grad_ld`]).
    Grad,
    /// dH `[N, d]`.
    GradHidden,
    /// dW `[C, d]`.
    GradWeight,
}

/// A GEMM operand: buffer, first element and leading dimension (in elements of the buffer's type).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmOperand {
    /// The buffer.
    pub buffer: LceBuffer,
    /// Offset of the operand's first element.
    pub offset: usize,
    /// Leading dimension (column-major).
    pub ld: usize,
}

/// One cuBLAS GEMM in cuBLAS's column-major convention: C = α·op(A)·op(B) + β·C with op(A) m × k, op(B) k × n and
/// C m × n; f32 operands run as FP32 SGEMM, bf16 / f16 operands as `cublasGemmEx` with f32 accumulation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GemmCall {
    /// op(A) = Aᵀ.
    pub trans_a: bool,
    /// op(B) = Bᵀ.
    pub trans_b: bool,
    /// Rows of C.
    pub m: usize,
    /// Columns of C.
    pub n: usize,
    /// The summed dimension.
    pub k: usize,
    /// A.
    pub a: GemmOperand,
    /// B.
    pub b: GemmOperand,
    /// C.
    pub c: GemmOperand,
    /// α.
    pub alpha: f32,
    /// β (0: C is overwritten, never read).
    pub beta: f32,
}

/// One step of a [`LinearCePlan`].
#[derive(Clone, Debug, PartialEq)]
pub enum LceStep {
    /// A kernel of `kernels/linear_ce.cu`.
    Kernel(KernelLaunch),
    /// A cuBLAS GEMM.
    Gemm(GemmCall),
}

/// A validated fused linear + cross-entropy problem: sizes, the kernel's scalars and the step sequence.
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
    /// Gradient scale (1 / the Mean's denominator, or 1): the α of the gradient GEMMs.
    pub gscale: f32,
    /// Focal γ.
    pub gamma: f32,
    /// Multiplier of Σ per-row losses giving the value.
    pub value_scale: f64,
    /// Class weights `[C]`.
    pub class_weights: Option<Vec<f32>>,
    /// Logit adjustment τ·log π `[C]`.
    pub adjust: Option<Vec<f32>>,
    /// Rows r of the tile.
    pub ws_rows: usize,
    /// Columns of the tile (C).
    pub ws_cols: usize,
    /// Leading dimension of G in the tile, in elements of the input type (C for f32, 2·C for 16-bit types).
    pub grad_ld: usize,
    /// The steps, in order.
    pub steps: Vec<LceStep>,
}

impl LinearCePlan {
    /// Bytes of device memory beyond the inputs and outputs: the f32 tile, cuBLAS's workspace and the per-row losses
    /// (the same with and without gradients: G lives in the tile and the GEMMs write dH and dW in place).
    pub fn workspace_bytes(&self, _grad: bool) -> usize {
        4 * self.ws_rows * self.ws_cols + CUBLAS_WORKSPACE_BYTES + 4 * self.n
    }

    /// The kernel launches of the plan, in order.
    pub fn launches(&self) -> impl Iterator<Item = &KernelLaunch> {
        self.steps.iter().filter_map(|s| if let LceStep::Kernel(k) = s { Some(k) } else { None })
    }

    /// Elements of `buffer` (in its own type).
    pub fn buffer_len(&self, buffer: LceBuffer) -> usize {
        match buffer {
            LceBuffer::Hidden | LceBuffer::GradHidden => self.n * self.d,
            LceBuffer::Weight | LceBuffer::GradWeight => self.c * self.d,
            LceBuffer::Logits => self.ws_rows * self.ws_cols,
            LceBuffer::Grad => self.ws_rows * self.grad_ld,
        }
    }

    /// Whether every element operand `o` of a GEMM reaches (`rows` × `cols` column-major with its leading dimension)
    /// lies inside its buffer.
    fn fits(&self, o: &GemmOperand, rows: usize, cols: usize) -> bool {
        rows <= o.ld
            && (rows == 0
                || cols == 0
                || o.offset.checked_add((cols - 1) * o.ld + rows).is_some_and(|end| end <= self.buffer_len(o.buffer)))
    }

    /// Checks that every GEMM stays inside its buffers (a guard in front of the unsafe cuBLAS calls).
    fn gemms_fit(&self) -> bool {
        self.steps.iter().all(|s| match s {
            LceStep::Kernel(_) => true,
            LceStep::Gemm(g) => {
                let (ar, ac) = if g.trans_a { (g.k, g.m) } else { (g.m, g.k) };
                let (br, bc) = if g.trans_b { (g.n, g.k) } else { (g.k, g.n) };
                self.fits(&g.a, ar, ac) && self.fits(&g.b, br, bc) && self.fits(&g.c, g.m, g.n)
            }
        })
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
    y: u64,
    cw: u64,
    sw: u64,
    adj: u64,
    ws: u64,
    loss: u64,
    ignore_index: i64,
    c: i32,
    row0: i32,
    rows: i32,
    grad: i32,
    has_ignore: i32,
    eps: f32,
    wsum: f32,
    gamma: f32,
}

// SAFETY: plain old data with the C layout of LkLceArgs (8-byte fields first, no padding: 7·8 + 5·4 + 3·4 bytes).
unsafe impl DeviceRepr for LceArgs {}
const _: () = assert!(std::mem::size_of::<LceArgs>() == 88);

impl Gpu {
    /// The fused linear + cross-entropy [`LinearCrossEntropy`] of hidden states `hidden` H `[N, d]` and classifier
    /// `weight` W `[C, d]` against class indices `targets` `[N]`, with optional per-sample `weights` `[N]`: value,
    /// per-row losses and (with `grad`) dH and dW, holding one tile of r × C f32 logits at a time.
    ///
    /// H and W are `f32`, `half::bf16` or `half::f16` (the gradients have their type), targets `i64` or `i32`. The
    /// GEMMs run in cuBLAS (FP32 for f32, tensor cores with f32 accumulation for 16-bit types), the rest in f32 (the
    /// value's sum in f64 on the host); the precision section of [`LinearCrossEntropy`] bounds the difference from
    /// [`LinearCrossEntropy::compute_cpu`].
    ///
    /// # Errors
    /// As [`LinearCrossEntropy::plan`]; [`Error::Device`] when cuBLAS cannot be loaded or a driver call, GEMM or
    /// kernel fails.
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

    /// As [`Gpu::linear_cross_entropy`], also returning the milliseconds the steps took (CUDA events around the
    /// GEMMs and kernels: no transfers, no allocation, no cuBLAS handle creation), which is what the bench reports.
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
        if !plan.gemms_fit() {
            return Err(Error::Device { what: "linear cross-entropy: a planned GEMM leaves its buffers".into() });
        }
        let mut kernels = Vec::new();
        for l in plan.launches() {
            kernels.push(self.function("linear_ce", &l.kernel)?);
        }
        let blas = Blas::new(self)?;
        let elem = Elem::of(T::NAME);
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
            let rows = stream.alloc_zeros::<f32>(n).map_err(dev)?;
            let (dh, dw): (Option<CudaSlice<T>>, Option<CudaSlice<T>>) = if grad {
                (Some(stream.alloc_zeros::<T>(n * d).map_err(dev)?), Some(stream.alloc_zeros::<T>(c * d).map_err(dev)?))
            } else {
                (None, None)
            };
            // One stream does everything (cuBLAS included), so the pointers need no cross-stream synchronisation.
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
                y: ptr!(y),
                cw: opt!(cw),
                sw: opt!(sw),
                adj: opt!(adj),
                ws: ptr!(ws),
                loss: ptr!(rows),
                ignore_index: plan.ignore_index,
                c: c as i32,
                grad: i32::from(grad),
                has_ignore: 1,
                eps: plan.eps,
                wsum: plan.wsum,
                gamma: plan.gamma,
                ..LceArgs::default()
            };
            let (hp, wp, wsp, dhp, dwp) = (ptr!(h), ptr!(w), ptr!(ws), opt!(dh), opt!(dw));
            let address = |o: &GemmOperand| -> (u64, Elem) {
                let (p, e) = match o.buffer {
                    LceBuffer::Hidden => (hp, elem),
                    LceBuffer::Weight => (wp, elem),
                    LceBuffer::Logits => (wsp, Elem::F32),
                    LceBuffer::Grad => (wsp, elem),
                    LceBuffer::GradHidden => (dhp, elem),
                    LceBuffer::GradWeight => (dwp, elem),
                };
                (p + (o.offset * e.bytes()) as u64, e)
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
            let mut kernel = kernels.iter();
            for step in &plan.steps {
                match step {
                    LceStep::Kernel(l) => {
                        let f = kernel.next().ok_or_else(|| Error::Device { what: "kernel list too short".into() })?;
                        let args = LceArgs { row0: l.row0, rows: l.rows, ..base };
                        let mut b = stream.launch_builder(f);
                        b.arg(&args);
                        let config =
                            LaunchConfig { grid_dim: (l.grid, 1, 1), block_dim: (l.block, 1, 1), shared_mem_bytes: 0 };
                        // SAFETY: every kernel of linear_ce.cu takes one LkLceArgs by value, which LceArgs mirrors;
                        // the buffers behind its pointers are allocated above with the sizes the kernel indexes (N
                        // labels, weights and losses, C class weights and adjustments, ws_rows × C tile).
                        unsafe { b.launch(config) }.map_err(dev)?;
                    }
                    LceStep::Gemm(g) => {
                        let ((a, ab), (b, _), (cp, c_type)) = (address(&g.a), address(&g.b), address(&g.c));
                        let raw = RawGemm {
                            trans_a: g.trans_a,
                            trans_b: g.trans_b,
                            m: g.m,
                            n: g.n,
                            k: g.k,
                            a,
                            lda: g.a.ld,
                            b,
                            ldb: g.b.ld,
                            c: cp,
                            ldc: g.c.ld,
                            ab,
                            c_type,
                            alpha: g.alpha,
                            beta: g.beta,
                        };
                        // SAFETY: `gemms_fit` checked above that every operand lies inside its buffer (all
                        // allocated here with `buffer_len` elements, dH / dW only with gradients, when the plan
                        // has gradient GEMMs); C never overlaps A or B (the logits GEMM reads H, W and writes the
                        // tile; the gradient GEMMs read the tile, H, W and write dH, dW); all on `stream`.
                        unsafe { blas.gemm(&raw) }?;
                    }
                }
            }
            let ms = match events {
                Some((start, end)) => {
                    end.record(stream).map_err(dev)?;
                    Some(start.elapsed_ms(&end).map_err(dev)?)
                }
                None => None,
            };
            let per_row: Vec<f32> = stream.clone_dtoh(&rows).map_err(dev)?;
            let gh = dh.map(|g| stream.clone_dtoh(&g)).transpose().map_err(dev)?;
            let gw = dw.map(|g| stream.clone_dtoh(&g)).transpose().map_err(dev)?;
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
        assert!(matches!(l.clone().chunks(4, 0).check(), Err(Error::Parameter { name: "chunk_classes", .. })));
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
    fn plan_walks_every_tile() {
        let h = Array2::<f32>::zeros((5, 3));
        let w = Array2::<f32>::zeros((7, 3));
        let t = array![0_i32, 1, 2, 3, 6];
        let p = LinearCrossEntropy::new().chunks(2, 3).plan(&h.view(), &w.view(), &t.view(), None, true).unwrap();
        assert_eq!((p.ws_rows, p.ws_cols, p.grad_ld, p.value_scale), (2, 7, 7, 0.2));
        // 3 row tiles × (3 logits GEMMs + lce_rows + dH + dW).
        assert_eq!(p.steps.len(), 3 * 6);
        assert!(p.gemms_fit());
        let LceStep::Gemm(first) = &p.steps[0] else { panic!("{:?}", p.steps[0]) };
        assert_eq!((first.m, first.n, first.k, first.c.buffer, first.c.ld), (3, 2, 3, LceBuffer::Logits, 7));
        let LceStep::Kernel(k) = &p.steps[3] else { panic!("{:?}", p.steps[3]) };
        assert_eq!((k.kernel.as_str(), k.grid, k.row0, k.rows), ("lce_rows_f32_i32", 2, 0, 2));
        let LceStep::Gemm(last) = p.steps.last().unwrap() else { panic!() };
        assert_eq!((last.c.buffer, last.k, last.beta), (LceBuffer::GradWeight, 1, 1.0));
        let LceStep::Gemm(first_dw) = &p.steps[5] else { panic!() };
        assert_eq!((first_dw.beta, first_dw.alpha), (0.0, 0.2));
        let no_grad = LinearCrossEntropy::new().plan(&h.view(), &w.view(), &t.view(), None, false).unwrap();
        assert_eq!(no_grad.steps.len(), 2);
        assert_eq!(no_grad.workspace_bytes(false), 4 * (5 * 7 + 5) + CUBLAS_WORKSPACE_BYTES);
        // 16-bit G sits in the f32 tile with twice the leading dimension.
        let hb = h.mapv(half::bf16::from_f32);
        let wb = w.mapv(half::bf16::from_f32);
        let pb = LinearCrossEntropy::new().plan(&hb.view(), &wb.view(), &t.view(), None, true).unwrap();
        assert_eq!((pb.ws_rows, pb.grad_ld), (5, 14));
        assert!(pb.gemms_fit());
    }

    #[test]
    fn the_tile_is_capped_at_the_target_shape() {
        // N = 8192, C = 131072: 1024 rows, a 512 MiB f32 tile, 544 MiB in all (sizes only: the plan of a shape this
        // large is cheap, but its inputs are not, so check the arithmetic the plan uses).
        let c = 131_072;
        let cap = MAX_TILE_ELEMENTS / c;
        assert_eq!(cap / 64 * 64, 1024);
        assert_eq!(4 * 1024 * c + CUBLAS_WORKSPACE_BYTES + 4 * 8192, (544 << 20) + 32768);
    }
}
