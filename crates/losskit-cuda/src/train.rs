//! Minibatch training of a small classifier with everything on the device: the training rows, the parameters, the
//! optimiser state and every intermediate live in GPU memory from the first step to the last, and the host only
//! sends each epoch's row order and reads each epoch's step losses back.
//!
//! One step ([`DeviceTrainer::epoch`] runs one per batch) is, on the GPU's stream:
//!
//! ```text
//! gather        xb = x[idx], yb = y[idx], wb = w[idx]                                  kernels/train.cu
//! forward       a = xb·W₁ᵀ + b₁, h = φ(a), logits = h·W₂ᵀ + b₂  (linear: xb·Wᵀ + b)   cuBLAS SGEMM + train.cu
//! loss          per-row losses and G = ∂L/∂logits                                      cross_entropy.cu or
//!                                                                                      softmax_family.cu (fused)
//! value         L = Σ rows · (1 / the Mean's denominator)                              ce_reduce
//! backward      ∂W₂ = Gᵀ·h, ∂b₂ = Σ G, dh = G·W₂, da = dh ⊙ φ′(a), ∂W₁ = daᵀ·xb, ∂b₁ = Σ da
//!                                                                                      cuBLAS SGEMM + train.cu
//! update        θ ← SGD / Adam step on the flat θ                                       train.cu
//! ```
//! The maths is that of losskit-models' `Linear` / `Mlp` (same flat parameter layout), its `Sgd` / `Adam` and the
//! CPU loss configs, in f32 (cuBLAS in plain FP32, no TF32) instead of f64. The Mean's denominator Σᵢ sᵢ·cw[yᵢ] of
//! each batch is computed on the host from the labels and weights it keeps a copy of, so nothing is read back
//! within an epoch.

use std::sync::Arc;

use cudarc::driver::{CudaFunction, CudaSlice, DevicePtr, DeviceRepr, LaunchConfig, PushKernelArg};
use losskit_losses::{
    CompSum, CrossEntropy, Focal, GeneralizedCrossEntropy, LdrKl, Mae, Params, ScoreNorm, SumExponential, ZLoss,
};
use losskit_tensor::{Error, Reduction, Result, check};
use ndarray::{ArrayView1, ArrayView2};

use crate::device::{Gpu, device_error, guard};
use crate::family::{GpuClassLoss, KernelSpec};

/// `cap` argument of the cross-entropy kernels: no row cache (the warp and block kernels ignore it).
const NO_ROW_CACHE: i32 = 0;

/// Threads per block of the kernels of `train.cu`.
const BLOCK: u32 = 256;

/// The argument block of every kernel of `train.cu`: device pointers, floats, ints.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct TrainArgs {
    p: [u64; 8],
    f: [f32; 8],
    i: [i32; 8],
}

// SAFETY: a plain `#[repr(C)]` struct of integers and floats, laid out as `struct LkTrainArgs` in kernels/train.cu.
unsafe impl DeviceRepr for TrainArgs {}

/// The hidden non-linearity of a [`NetSpec`] with a hidden layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetActivation {
    /// max(0, a); derivative 0 where a ≤ 0.
    Relu,
    /// tanh(a); derivative 1 − tanh²(a).
    Tanh,
}

/// The model trained on the device: linear softmax regression (`hidden: None`) or a one-hidden-layer MLP.
///
/// Flat parameter layout, as losskit-models' `Linear` and `Mlp`: linear `W` `[C, D]` row-major then `b` `[C]`; MLP
/// `W₁` `[K, D]`, `b₁` `[K]`, `W₂` `[C, K]`, `b₂` `[C]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetSpec {
    /// Input features D.
    pub n_features: usize,
    /// Hidden width K and non-linearity, or `None` for the linear model.
    pub hidden: Option<(usize, NetActivation)>,
    /// Classes C.
    pub n_classes: usize,
}

impl NetSpec {
    /// Number of parameters: C·D + C (linear) or K·D + K + C·K + C (MLP).
    pub fn n_params(&self) -> usize {
        let (d, c) = (self.n_features, self.n_classes);
        match self.hidden {
            None => c * d + c,
            Some((k, _)) => k * d + k + c * k + c,
        }
    }
}

/// The optimiser of a [`DeviceTrainer`], with the update rules of `torch.optim.SGD` and `torch.optim.Adam` (those of
/// losskit-models' `Sgd` and `Adam`; see there for the formulas).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TrainOptimizer {
    /// SGD with momentum μ, dampening τ, Nesterov momentum and L2 weight decay λ.
    Sgd {
        /// Learning rate η.
        lr: f64,
        /// Momentum μ.
        momentum: f64,
        /// Dampening τ.
        dampening: f64,
        /// Nesterov momentum.
        nesterov: bool,
        /// L2 weight decay λ.
        weight_decay: f64,
    },
    /// Adam (AdamW with `decoupled_weight_decay`).
    Adam {
        /// Learning rate η.
        lr: f64,
        /// β₁.
        beta1: f64,
        /// β₂.
        beta2: f64,
        /// ε.
        eps: f64,
        /// Weight decay λ.
        weight_decay: f64,
        /// Decoupled (AdamW) rather than L2 weight decay.
        decoupled_weight_decay: bool,
    },
}

/// The loss of a [`DeviceTrainer`]: [`CrossEntropy`] (through `cross_entropy.cu`) or a softmax-family config of
/// [`GpuClassLoss`] (through `softmax_family.cu`).
#[derive(Clone, Debug, PartialEq)]
pub enum TrainLoss {
    /// Cross-entropy with class weights, label smoothing, temperature and ignore index.
    CrossEntropy(CrossEntropy),
    /// Focal, GCE, MAE, sum-exponential, comp-sum, LDR-KL or Z-loss, as its kernel description.
    Family(KernelSpec),
}

impl TrainLoss {
    /// The registered losses (`losskit list` names) that train on the GPU.
    pub const NAMES: &'static [&'static str] = &[
        "cross-entropy",
        "focal",
        "generalized-cross-entropy",
        "mae",
        "sum-exponential",
        "comp-sum",
        "ldr-kl",
        "z-loss",
    ];

    /// A softmax-family config (validated like its CPU `check()`).
    ///
    /// # Errors
    /// The config's [`Error::Parameter`].
    pub fn family<K: GpuClassLoss>(loss: &K) -> Result<Self> {
        Ok(TrainLoss::Family(loss.kernel_spec()?))
    }

    /// The GPU form of the registered loss `name` with parsed parameters `params` (from
    /// `losskit_losses::registry::find(name)?.params(..)`), built exactly as the registry builds the CPU config.
    ///
    /// # Errors
    /// [`Error::Input`] naming the loss and listing [`TrainLoss::NAMES`] when the loss has no GPU training kernel;
    /// the config's own parameter errors.
    pub fn registered(name: &str, params: &Params) -> Result<Self> {
        let r = params.reduction();
        match name {
            "cross-entropy" => {
                let cfg = CrossEntropy::from_params(params)?;
                cfg.check()?;
                Ok(TrainLoss::CrossEntropy(cfg))
            }
            "focal" => Self::family(&Focal::from_params(params)?),
            "generalized-cross-entropy" => Self::family(&GeneralizedCrossEntropy { q: params.f64("q")?, reduction: r }),
            "mae" => Self::family(&Mae { reduction: r }),
            "sum-exponential" => Self::family(&SumExponential { reduction: r }),
            "comp-sum" => Self::family(&CompSum::from_params(params)?),
            "ldr-kl" => Self::family(&LdrKl {
                lambda: params.f64("lambda")?,
                margin: params.f64("margin")?,
                score_norm: score_norm(params.text("score_norm")?)?,
                reduction: r,
            }),
            "z-loss" => Self::family(&ZLoss { a: params.f64("a")?, b: params.f64("b")?, reduction: r }),
            other => Err(unsupported_loss(other)),
        }
    }
}

/// LDR-KL's `score_norm` word (the registry's choices).
fn score_norm(v: &str) -> Result<ScoreNorm> {
    match v {
        "none" => Ok(ScoreNorm::None),
        "softplus-mean" => Ok(ScoreNorm::SoftplusMean),
        "l1-mean" => Ok(ScoreNorm::L1Mean),
        other => Err(Error::ParameterText {
            name: "score_norm".into(),
            value: other.into(),
            reason: "expected one of none, softplus-mean, l1-mean".into(),
        }),
    }
}

/// The error for a loss without a GPU training kernel: names it and lists the ones that have one.
pub fn unsupported_loss(name: &str) -> Error {
    Error::Input {
        what: format!(
            "loss {name:?} has no GPU training kernel; on the GPU the arena and trainer support: {}",
            TrainLoss::NAMES.join(", ")
        ),
    }
}

/// Everything a [`DeviceTrainer`] starts from.
#[derive(Clone, Debug)]
pub struct TrainSetup<'a> {
    /// The model.
    pub net: NetSpec,
    /// The loss.
    pub loss: TrainLoss,
    /// The optimiser (its state starts at zero, as a freshly built CPU optimiser).
    pub optimizer: TrainOptimizer,
    /// Initial parameters θ in the flat layout of [`NetSpec`] (rounded to f32).
    pub params: &'a [f64],
    /// Training rows `[N, D]` (rounded to f32).
    pub x: ArrayView2<'a, f64>,
    /// Labels `[N]` in `0..C`.
    pub y: ArrayView1<'a, i64>,
    /// Optional per-sample weights `[N]`, finite and ≥ 0 (class weights already spread over the rows).
    pub sample_weights: Option<ArrayView1<'a, f64>>,
    /// The largest batch any epoch will use.
    pub max_batch: usize,
}

/// How the loss kernel is called.
#[derive(Debug)]
enum LossKernel {
    /// `ce_*` of cross_entropy.cu: ε, Σcw, 1/T.
    Ce { eps: f32, wsum: f32, inv_t: f32 },
    /// `<mode>_*` of softmax_family.cu: p0, p1, p2.
    Family { p: [f32; 3] },
}

/// A training problem resident on one GPU: training rows, parameters and optimiser state stay on the device; each
/// step gathers its batch, runs the products on cuBLAS (FP32), the fused loss kernel and the optimiser update there.
///
/// Build it with [`DeviceTrainer::new`], call [`DeviceTrainer::epoch`] once per epoch with that epoch's batches, and
/// read the trained parameters with [`DeviceTrainer::params`].
#[derive(Debug)]
pub struct DeviceTrainer {
    gpu: Arc<Gpu>,
    blas: cudarc::cublas::CudaBlas,
    net: NetSpec,
    optimizer: TrainOptimizer,
    reduction: Reduction,
    ignore_index: Option<i64>,
    loss_kernel: LossKernel,
    loss_fn: CudaFunction,
    reduce_fn: CudaFunction,
    gather_fn: CudaFunction,
    bias_act_fn: CudaFunction,
    act_grad_fn: CudaFunction,
    colsum_fn: CudaFunction,
    update_fn: CudaFunction,
    // Host copies for the Mean's denominators.
    y_host: Vec<i64>,
    w_host: Option<Vec<f32>>,
    cw_host: Option<Vec<f32>>,
    n: usize,
    max_batch: usize,
    steps: u64,
    // Device buffers: owners (kept alive) and their addresses.
    bufs: Vec<CudaSlice<u8>>,
    /// Which of `bufs` holds θ.
    theta_index: usize,
    order: Option<(CudaSlice<i32>, usize)>,
    losses: Option<(CudaSlice<f64>, usize)>,
    ptr: Ptrs,
}

/// Device addresses of the buffers (0 = absent).
#[derive(Clone, Copy, Debug, Default)]
struct Ptrs {
    x: u64,
    y: u64,
    w: u64,
    cw: u64,
    theta: u64,
    grad: u64,
    state1: u64,
    state2: u64,
    xb: u64,
    yb: u64,
    wb: u64,
    a: u64,
    h: u64,
    dh: u64,
    logits: u64,
    g: u64,
    rows: u64,
}

fn bytes_of<T: Copy>(v: &[T]) -> Vec<u8> {
    // SAFETY: T is a plain number type (f32 / i64 here); its bytes are what the device reads.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) }.to_vec()
}

/// Copies `bytes` into a new device buffer kept in `bufs` and returns its address.
fn upload(stream: &Arc<cudarc::driver::CudaStream>, bufs: &mut Vec<CudaSlice<u8>>, bytes: Vec<u8>) -> Result<u64> {
    guard("uploading the training problem", || {
        let buf = stream.clone_htod(&bytes).map_err(|e| device_error("uploading the training problem", e))?;
        let addr = buf.device_ptr(stream).0;
        bufs.push(buf);
        Ok(addr)
    })
}

fn int(name: &'static str, v: usize) -> Result<i32> {
    i32::try_from(v)
        .map_err(|_| Error::Input { what: format!("{name} = {v}: the GPU trainer takes at most 2^31 − 1") })
}

impl DeviceTrainer {
    /// Validates `setup`, compiles (first use) and loads the kernels, and uploads the data and parameters.
    ///
    /// # Errors
    /// [`Error::Parameter`] for a zero size or a bad loss or optimiser parameter; [`Error::Shape`] when `params`,
    /// `y`, the weights or the class weights do not fit the model and `x`; [`Error::Empty`], [`Error::NonFinite`],
    /// [`Error::LabelOutOfRange`] for bad data; [`Error::Device`] when cuBLAS is missing or a driver call fails.
    pub fn new(gpu: &Arc<Gpu>, setup: TrainSetup<'_>) -> Result<Self> {
        let TrainSetup { net, loss, optimizer, params, x, y, sample_weights, max_batch } = setup;
        let (d, c) = (net.n_features, net.n_classes);
        for (name, v) in [("n_features", d), ("n_classes", c), ("hidden", net.hidden.map_or(1, |h| h.0))] {
            if v == 0 {
                return Err(Error::Parameter { name, value: 0.0, reason: "must be ≥ 1" });
            }
        }
        if max_batch == 0 {
            return Err(Error::Parameter { name: "batch_size", value: 0.0, reason: "must be ≥ 1" });
        }
        check_optimizer(&optimizer)?;
        check::shape("params", &[params.len()], &[Some(net.n_params())])?;
        check::non_empty("x", x.nrows())?;
        check::shape("x", x.shape(), &[None, Some(d)])?;
        check::shape("y", y.shape(), &[Some(x.nrows())])?;
        check::finite("x", &x)?;
        check::labels("y", y, c, None)?;
        if let Some(w) = &sample_weights {
            check::weights("sample_weights", w.view(), x.nrows())?;
        }
        let n = x.nrows();
        let k = net.hidden.map_or(0, |h| h.0);
        for (name, v) in [("rows", n), ("features", d), ("classes", c), ("hidden", k), ("parameters", params.len())] {
            int(name, v)?;
        }
        int("rows × features", n * d)?;
        int("batch × width", max_batch * d.max(k).max(c))?;

        let (reduction, ignore_index, class_weights, loss_kernel, mode) = match &loss {
            TrainLoss::CrossEntropy(ce) => {
                ce.check()?;
                let cw = ce.class_weights.clone();
                let wsum = cw.as_ref().map_or(c as f64, |w| w.iter().sum());
                let kernel = LossKernel::Ce {
                    eps: ce.label_smoothing as f32,
                    wsum: wsum as f32,
                    inv_t: (1.0 / ce.temperature) as f32,
                };
                (ce.reduction, Some(ce.ignore_index), cw, kernel, "ce")
            }
            TrainLoss::Family(spec) => {
                let kernel = LossKernel::Family { p: spec.params };
                (spec.reduction, spec.ignore_index, spec.class_weights.clone(), kernel, spec.mode)
            }
        };
        if let Some(cw) = &class_weights {
            check::shape("class_weights", &[cw.len()], &[Some(c)])?;
        }
        let (warp, _) = crate::cross_entropy::launch_shape(1, c);
        let loss_name = format!("{mode}_f32_i64_{}", if warp { "warp" } else { "block" });
        let file = if matches!(loss_kernel, LossKernel::Ce { .. }) { "cross_entropy" } else { "softmax_family" };
        let loss_fn = gpu.function(file, &loss_name)?;
        let reduce_fn = gpu.function("cross_entropy", "ce_reduce")?;
        let gather_fn = gpu.function("train", "train_gather")?;
        let bias_act_fn = gpu.function("train", "train_bias_act")?;
        let act_grad_fn = gpu.function("train", "train_act_grad")?;
        let colsum_fn = gpu.function("train", "train_colsum")?;
        let update_fn = gpu.function(
            "train",
            match optimizer {
                TrainOptimizer::Sgd { .. } => "train_sgd",
                TrainOptimizer::Adam { .. } => "train_adam",
            },
        )?;
        let blas = crate::blas::fp32_handle(gpu)?;

        let y_host: Vec<i64> = y.to_vec();
        let w_host: Option<Vec<f32>> = sample_weights.map(|w| w.iter().map(|&v| v as f32).collect());
        let cw_host: Option<Vec<f32>> = class_weights.map(|w| w.iter().map(|&v| v as f32).collect());
        let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect(); // row-major: `iter` walks in logical order
        let theta: Vec<f32> = params.iter().map(|&v| v as f32).collect();
        let p = params.len();
        let b = max_batch;

        let mut bufs = Vec::new();
        let mut ptr = Ptrs::default();
        let stream = gpu.stream();
        let mut up = |bytes: Vec<u8>| upload(stream, &mut bufs, bytes);
        let zeros = |len: usize| vec![0_u8; len.max(1)];
        ptr.x = up(bytes_of(&x32))?;
        ptr.y = up(bytes_of(&y_host))?;
        ptr.w = w_host.as_ref().map(|w| up(bytes_of(w))).transpose()?.unwrap_or(0);
        ptr.cw = cw_host.as_ref().map(|w| up(bytes_of(w))).transpose()?.unwrap_or(0);
        ptr.grad = up(zeros(4 * p))?;
        ptr.state1 = up(zeros(4 * p))?;
        ptr.state2 = up(zeros(4 * p))?;
        ptr.xb = up(zeros(4 * b * d))?;
        ptr.yb = up(zeros(8 * b))?;
        ptr.wb = up(zeros(4 * b))?;
        ptr.a = up(zeros(4 * b * k))?;
        ptr.h = up(zeros(4 * b * k))?;
        ptr.dh = up(zeros(4 * b * k))?;
        ptr.logits = up(zeros(4 * b * c))?;
        ptr.g = up(zeros(4 * b * c))?;
        ptr.rows = up(zeros(4 * b))?;
        // θ last, so that `params` finds it.
        ptr.theta = up(bytes_of(&theta))?;
        let theta_index = bufs.len() - 1;
        Ok(DeviceTrainer {
            gpu: Arc::clone(gpu),
            blas,
            net,
            optimizer,
            reduction,
            ignore_index,
            loss_kernel,
            loss_fn,
            reduce_fn,
            gather_fn,
            bias_act_fn,
            act_grad_fn,
            colsum_fn,
            update_fn,
            y_host,
            w_host,
            cw_host,
            n,
            max_batch,
            steps: 0,
            bufs,
            theta_index,
            order: None,
            losses: None,
            ptr,
        })
    }

    /// The model.
    pub fn net(&self) -> NetSpec {
        self.net
    }

    /// Optimiser steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// One epoch: one step (forward, loss, backward, update) per batch of row indices, in order, then one read-back
    /// of the batch losses (each the loss's reduction over its batch, as the CPU loss's `value`).
    ///
    /// # Errors
    /// [`Error::Input`] for an empty batch, a batch larger than `max_batch` or a row index out of range;
    /// [`Error::Degenerate`] when a batch's Mean is undefined (zero total weight); [`Error::Device`] when a launch
    /// fails.
    pub fn epoch(&mut self, batches: &[&[usize]]) -> Result<Vec<f64>> {
        let mut order: Vec<i32> = Vec::new();
        let mut plan = Vec::with_capacity(batches.len());
        for (s, batch) in batches.iter().enumerate() {
            if batch.is_empty() || batch.len() > self.max_batch {
                return Err(Error::Input {
                    what: format!("batch {s} has {} rows; expected 1 to {}", batch.len(), self.max_batch),
                });
            }
            let (gscale, vscale) = self.scales(batch)?;
            plan.push((order.len(), batch.len(), gscale, vscale));
            for &i in batch.iter() {
                if i >= self.n {
                    return Err(Error::Input { what: format!("batch {s}: row {i} out of range 0..{}", self.n) });
                }
                order.push(i as i32); // ok: n ≤ i32::MAX, checked in new
            }
        }
        if batches.is_empty() {
            return Ok(Vec::new());
        }
        let stream = Arc::clone(self.gpu.stream());
        let dev = |e| device_error("running a training epoch", e);
        let order_ptr = guard("uploading the epoch's row order", || {
            if self.order.as_ref().is_none_or(|(_, len)| *len < order.len()) {
                self.order = Some((stream.alloc_zeros::<i32>(order.len()).map_err(dev)?, order.len()));
            }
            let Some((buf, _)) = self.order.as_mut() else { unreachable!("allocated above") };
            stream.memcpy_htod(&order, buf).map_err(dev)?;
            Ok(buf.device_ptr(&stream).0)
        })?;
        let losses_ptr = guard("allocating the step losses", || {
            if self.losses.as_ref().is_none_or(|(_, len)| *len < batches.len()) {
                self.losses = Some((stream.alloc_zeros::<f64>(batches.len()).map_err(dev)?, batches.len()));
            }
            let Some((buf, _)) = self.losses.as_ref() else { unreachable!("allocated above") };
            Ok(buf.device_ptr(&stream).0)
        })?;
        for (s, &(offset, b, gscale, vscale)) in plan.iter().enumerate() {
            self.step(order_ptr + 4 * offset as u64, b, gscale, vscale, losses_ptr + 8 * s as u64)?;
        }
        guard("reading the step losses", || {
            let Some((buf, _)) = self.losses.as_ref() else { unreachable!("allocated above") };
            let values = stream.clone_dtoh(&buf.slice(0..batches.len())).map_err(dev)?;
            stream.synchronize().map_err(dev)?;
            Ok(values)
        })
    }

    /// The current parameters θ (widened to f64), in the flat layout of [`NetSpec`].
    ///
    /// # Errors
    /// [`Error::Device`] when the copy fails.
    pub fn params(&self) -> Result<Vec<f64>> {
        let p = self.net.n_params();
        guard("reading the parameters", || {
            let stream = self.gpu.stream();
            let dev = |e| device_error("reading the parameters", e);
            let theta =
                self.bufs.get(self.theta_index).ok_or_else(|| Error::Device { what: "no parameter buffer".into() })?;
            let bytes = stream.clone_dtoh(&theta.slice(0..4 * p)).map_err(dev)?;
            stream.synchronize().map_err(dev)?;
            Ok(bytes.chunks_exact(4).map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))).collect())
        })
    }

    /// (gradient scale, value scale) of a batch: 1 / Σᵢ sᵢ·cw[yᵢ] over its non-ignored rows under `Mean` (the CPU
    /// driver's denominator), 1 otherwise.
    fn scales(&self, batch: &[usize]) -> Result<(f32, f64)> {
        if self.reduction != Reduction::Mean {
            return Ok((1.0, 1.0));
        }
        let mut d = 0.0_f64;
        for &i in batch {
            let Some(&y) = self.y_host.get(i) else { continue };
            if Some(y) == self.ignore_index {
                continue;
            }
            let cw = self.cw_host.as_ref().and_then(|cw| cw.get(y as usize)).map_or(1.0, |&v| f64::from(v));
            let s = self.w_host.as_ref().and_then(|w| w.get(i)).map_or(1.0, |&v| f64::from(v));
            d += s * cw;
        }
        if d.is_nan() || d <= 0.0 {
            return Err(Error::Degenerate {
                what: "the mean is undefined: every target is ignored or has zero (sample × class) weight".into(),
            });
        }
        Ok(((1.0 / d) as f32, 1.0 / d))
    }

    /// Queues one step on the rows whose indices start at device address `idx` (`b` of them).
    fn step(&mut self, idx: u64, b: usize, gscale: f32, vscale: f64, loss_slot: u64) -> Result<()> {
        let NetSpec { n_features: d, n_classes: c, hidden } = self.net;
        let p = self.ptr;
        let (bi, di, ci) = (b as i32, d as i32, c as i32); // ok: checked against i32 in new
        let w = if self.w_host.is_some() { p.w } else { 0 };
        let wb = if self.w_host.is_some() { p.wb } else { 0 };
        self.launch(&self.gather_fn, b * d, [p.x, p.y, w, idx, p.xb, p.yb, wb, 0], [0.0; 8], [bi, di, 0, 0])?;
        // Forward.
        let (o_b1, o_w2, o_b2) = match hidden {
            None => (0, 0, c * d),
            Some((k, _)) => (k * d, k * d + k, k * d + k + c * k),
        };
        let at = |o: usize| p.theta + 4 * o as u64;
        let ag = |o: usize| p.grad + 4 * o as u64;
        match hidden {
            None => {
                self.gemm(false, true, (b, c, d), (p.xb, d), (p.theta, d), (p.logits, c))?;
            }
            Some((k, act)) => {
                let ki = k as i32; // ok: checked in new
                self.gemm(false, true, (b, k, d), (p.xb, d), (p.theta, d), (p.a, k))?;
                let act = activation_code(act);
                self.launch(&self.bias_act_fn, b * k, [p.a, at(o_b1), p.h, 0, 0, 0, 0, 0], [0.0; 8], [bi, ki, act, 0])?;
                self.gemm(false, true, (b, c, k), (p.h, k), (at(o_w2), k), (p.logits, c))?;
            }
        }
        self.launch(&self.bias_act_fn, b * c, [p.logits, at(o_b2), 0, 0, 0, 0, 0, 0], [0.0; 8], [bi, ci, 0, 0])?;
        // Loss value and ∂L/∂logits, fused.
        self.launch_loss(b, c, wb, gscale)?;
        self.launch_reduce(b, vscale, loss_slot)?;
        // Backward.
        match hidden {
            None => {
                self.gemm(true, false, (c, d, b), (p.g, c), (p.xb, d), (p.grad, d))?;
                self.launch(&self.colsum_fn, c, [p.g, ag(o_b2), 0, 0, 0, 0, 0, 0], [0.0; 8], [bi, ci, 0, 0])?;
            }
            Some((k, act)) => {
                let ki = k as i32; // ok: checked in new
                self.gemm(true, false, (c, k, b), (p.g, c), (p.h, k), (ag(o_w2), k))?;
                self.launch(&self.colsum_fn, c, [p.g, ag(o_b2), 0, 0, 0, 0, 0, 0], [0.0; 8], [bi, ci, 0, 0])?;
                self.gemm(false, false, (b, k, c), (p.g, c), (at(o_w2), k), (p.dh, k))?;
                let act = activation_code(act);
                let bk = (b * k) as i32; // ok: checked in new
                self.launch(&self.act_grad_fn, b * k, [p.dh, p.a, p.h, 0, 0, 0, 0, 0], [0.0; 8], [bk, act, 0, 0])?;
                self.gemm(true, false, (k, d, b), (p.dh, k), (p.xb, d), (p.grad, d))?;
                self.launch(&self.colsum_fn, k, [p.dh, ag(o_b1), 0, 0, 0, 0, 0, 0], [0.0; 8], [bi, ki, 0, 0])?;
            }
        }
        // Update.
        let n_params = self.net.n_params();
        let pi = n_params as i32; // ok: checked in new
        let first = i32::from(self.steps == 0);
        self.steps += 1;
        match self.optimizer {
            TrainOptimizer::Sgd { lr, momentum, dampening, nesterov, weight_decay } => {
                let f = [lr as f32, momentum as f32, dampening as f32, weight_decay as f32, 0.0, 0.0, 0.0, 0.0];
                let ptrs = [p.theta, p.grad, p.state1, 0, 0, 0, 0, 0];
                self.launch(&self.update_fn, n_params, ptrs, f, [pi, i32::from(nesterov), first, 0])?;
            }
            TrainOptimizer::Adam { lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay } => {
                let t = self.steps as f64;
                let step_size = lr / (1.0 - beta1.powf(t));
                let bc2 = (1.0 - beta2.powf(t)).sqrt();
                let (l2, decay) =
                    if decoupled_weight_decay { (0.0, 1.0 - lr * weight_decay) } else { (weight_decay, 1.0) };
                let f = [beta1, beta2, eps, l2, decay, step_size, bc2, 0.0].map(|v| v as f32);
                let ptrs = [p.theta, p.grad, p.state1, p.state2, 0, 0, 0, 0];
                self.launch(&self.update_fn, n_params, ptrs, f, [pi, 0, 0, 0])?;
            }
        }
        Ok(())
    }

    /// Launches a `train.cu` kernel over `elems` elements.
    fn launch(&self, f: &CudaFunction, elems: usize, p: [u64; 8], fl: [f32; 8], i: [i32; 4]) -> Result<()> {
        let args = TrainArgs { p, f: fl, i: [i[0], i[1], i[2], i[3], 0, 0, 0, 0] };
        let blocks = elems.div_ceil(BLOCK as usize).clamp(1, 65_535) as u32;
        guard("launching a training kernel", || {
            let stream = self.gpu.stream();
            let mut lb = stream.launch_builder(f);
            lb.arg(&args);
            let cfg = LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (BLOCK, 1, 1), shared_mem_bytes: 0 };
            // SAFETY: every kernel of train.cu takes one LkTrainArgs by value; `step` passes the buffers each
            // kernel's header comment lists, allocated in `new` for `max_batch` rows, and the kernels loop over
            // exactly the element counts passed in `i`.
            unsafe { lb.launch(cfg) }.map_err(|e| device_error("launching a training kernel", e))?;
            Ok(())
        })
    }

    /// The fused loss kernel on the batch's logits: per-row losses into `rows`, ∂L/∂logits into `g`.
    fn launch_loss(&self, b: usize, c: usize, wb: u64, gscale: f32) -> Result<()> {
        let (_, config) = crate::cross_entropy::launch_shape(b, c);
        let p = self.ptr;
        let (n, c) = (b as i32, c as i32); // ok: checked in new
        let ignore_index = self.ignore_index.unwrap_or(0);
        let has_ignore = i32::from(self.ignore_index.is_some());
        guard("launching the loss kernel", || {
            let stream = self.gpu.stream();
            let mut lb = stream.launch_builder(&self.loss_fn);
            lb.arg(&p.logits);
            lb.arg(&p.yb);
            lb.arg(&p.cw);
            lb.arg(&wb);
            lb.arg(&p.g);
            lb.arg(&p.rows);
            lb.arg(&n);
            lb.arg(&c);
            lb.arg(&ignore_index);
            lb.arg(&has_ignore);
            let (f0, f1, f2) = match self.loss_kernel {
                LossKernel::Ce { eps, wsum, inv_t } => (eps, wsum, inv_t),
                LossKernel::Family { p: [p0, p1, p2] } => (p0, p1, p2),
            };
            // cross_entropy.cu: ..., eps, wsum, gscale, inv_t, cap; softmax_family.cu: ..., p0, p1, p2, gscale.
            match self.loss_kernel {
                LossKernel::Ce { .. } => {
                    lb.arg(&f0);
                    lb.arg(&f1);
                    lb.arg(&gscale);
                    lb.arg(&f2);
                    // `cap`, the row-cache length of the *_cached kernels; the warp and block kernels ignore it.
                    lb.arg(&NO_ROW_CACHE);
                }
                LossKernel::Family { .. } => {
                    lb.arg(&f0);
                    lb.arg(&f1);
                    lb.arg(&f2);
                    lb.arg(&gscale);
                }
            }
            // SAFETY: the arguments match LK_CE_KERNEL's / LK_SM_KERNEL's parameter lists one for one (device
            // addresses or 0, then int n, int c, long long ignore_index, int has_ignore, four floats, and for
            // cross-entropy int cap); logits and g
            // hold b·C f32, yb b labels (i64), wb b weights, rows b floats, cw C weights.
            unsafe { lb.launch(config) }.map_err(|e| device_error("launching the loss kernel", e))?;
            Ok(())
        })
    }

    /// `ce_reduce`: the batch loss, Σ rows · `scale`, into the f64 at `out`.
    fn launch_reduce(&self, b: usize, scale: f64, out: u64) -> Result<()> {
        let n = b as i32; // ok: checked in new
        let rows = self.ptr.rows;
        guard("launching the loss reduction", || {
            let stream = self.gpu.stream();
            let mut lb = stream.launch_builder(&self.reduce_fn);
            lb.arg(&rows);
            lb.arg(&n);
            lb.arg(&scale);
            lb.arg(&out);
            let one_block = LaunchConfig { grid_dim: (1, 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 };
            // SAFETY: ce_reduce(const float* rows /* n */, int n, double scale, double* out /* 1 */), 256 threads;
            // `out` is a slot of the epoch's step-loss buffer.
            unsafe { lb.launch(one_block) }.map_err(|e| device_error("launching the loss reduction", e))?;
            Ok(())
        })
    }

    /// Row-major C[m×n] = op(A)·op(B) (β = 0) on device addresses with leading dimensions; `dims` = (m, n, k).
    fn gemm(
        &self,
        ta: bool,
        tb: bool,
        dims: (usize, usize, usize),
        a: (u64, usize),
        b: (u64, usize),
        c: (u64, usize),
    ) -> Result<()> {
        use cudarc::cublas::sys::cublasOperation_t::{CUBLAS_OP_N, CUBLAS_OP_T};
        let op = |t: bool| if t { CUBLAS_OP_T } else { CUBLAS_OP_N };
        let (m, n, k) = (int("m", dims.0)?, int("n", dims.1)?, int("k", dims.2)?);
        let (lda, ldb, ldc) = (int("lda", a.1)?, int("ldb", b.1)?, int("ldc", c.1)?);
        let (alpha, beta) = (1.0_f32, 0.0_f32);
        guard("sgemm", || {
            // Row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: swap the operands and m, n.
            // SAFETY: `new` sized every buffer for `max_batch` rows and the model's widths; `step` passes each
            // product's true shapes and leading dimensions.
            unsafe {
                cudarc::cublas::result::sgemm(
                    *self.blas.handle(),
                    op(tb),
                    op(ta),
                    n,
                    m,
                    k,
                    &alpha,
                    b.0 as *const f32,
                    ldb,
                    a.0 as *const f32,
                    lda,
                    &beta,
                    c.0 as *mut f32,
                    ldc,
                )
            }
            .map_err(|e| device_error("cublasSgemm", e))
        })
    }
}

fn activation_code(act: NetActivation) -> i32 {
    match act {
        NetActivation::Relu => 1,
        NetActivation::Tanh => 2,
    }
}

/// The optimiser checks of losskit-models' `Sgd::check` / `Adam::check`.
fn check_optimizer(opt: &TrainOptimizer) -> Result<()> {
    match *opt {
        TrainOptimizer::Sgd { lr, momentum, dampening, nesterov, weight_decay } => {
            check::greater_than("lr", lr, 0.0)?;
            check::at_least("momentum", momentum, 0.0)?;
            check::closed("dampening", dampening, 0.0, 1.0)?;
            check::at_least("weight_decay", weight_decay, 0.0)?;
            if nesterov && (momentum <= 0.0 || dampening != 0.0) {
                return Err(Error::Parameter {
                    name: "nesterov",
                    value: 1.0,
                    reason: "Nesterov momentum requires momentum > 0 and dampening = 0",
                });
            }
            Ok(())
        }
        TrainOptimizer::Adam { lr, beta1, beta2, eps, weight_decay, .. } => {
            check::greater_than("lr", lr, 0.0)?;
            check::closed_open("beta1", beta1, 0.0, 1.0)?;
            check::closed_open("beta2", beta2, 0.0, 1.0)?;
            check::at_least("eps", eps, 0.0)?;
            check::at_least("weight_decay", weight_decay, 0.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use losskit_losses::registry;

    fn params(name: &str, kv: &[(&str, &str)]) -> Params {
        let pairs: Vec<(String, String)> = kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        registry::find(name).unwrap().params(&pairs).unwrap()
    }

    #[test]
    fn every_gpu_loss_name_builds_and_others_are_refused_by_name() {
        for name in TrainLoss::NAMES {
            let built = TrainLoss::registered(name, &params(name, &[]));
            assert!(built.is_ok(), "{name}: {built:?}");
        }
        let TrainLoss::Family(spec) = TrainLoss::registered("focal", &params("focal", &[("gamma", "1.5")])).unwrap()
        else {
            panic!("focal is a family loss")
        };
        assert_eq!((spec.mode, spec.params[0]), ("focal", 1.5));
        let ldr = TrainLoss::registered("ldr-kl", &params("ldr-kl", &[("score_norm", "none")])).unwrap();
        assert!(matches!(ldr, TrainLoss::Family(KernelSpec { mode: "ldrkl", .. })));
        let e = TrainLoss::registered("dice", &params("dice", &[])).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, Error::Input { .. }), "{e:?}");
        assert!(text.starts_with("loss \"dice\" has no GPU training kernel"), "{text}");
        assert!(text.contains("cross-entropy, focal, generalized-cross-entropy"), "{text}");
        // A bad parameter is the config's own error.
        let bad = TrainLoss::family(&Focal::new().gamma(-1.0));
        assert!(matches!(bad, Err(Error::Parameter { name: "gamma", .. })), "{bad:?}");
    }

    #[test]
    fn parameter_counts_follow_the_cpu_layouts() {
        let lin = NetSpec { n_features: 11, hidden: None, n_classes: 6 };
        assert_eq!(lin.n_params(), 6 * 11 + 6);
        let mlp = NetSpec { n_features: 11, hidden: Some((16, NetActivation::Relu)), n_classes: 6 };
        assert_eq!(mlp.n_params(), 16 * 11 + 16 + 6 * 16 + 6);
    }

    #[test]
    fn optimizer_checks_match_the_cpu_ones() {
        let sgd =
            |lr, momentum, nesterov| TrainOptimizer::Sgd { lr, momentum, dampening: 0.0, nesterov, weight_decay: 0.0 };
        assert!(check_optimizer(&sgd(0.1, 0.9, true)).is_ok());
        assert!(matches!(check_optimizer(&sgd(0.0, 0.0, false)), Err(Error::Parameter { name: "lr", .. })));
        assert!(matches!(check_optimizer(&sgd(0.1, 0.0, true)), Err(Error::Parameter { name: "nesterov", .. })));
        let adam = TrainOptimizer::Adam {
            lr: 0.01,
            beta1: 1.0,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled_weight_decay: false,
        };
        assert!(matches!(check_optimizer(&adam), Err(Error::Parameter { name: "beta1", .. })));
    }
}
