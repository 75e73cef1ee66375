//! Pairwise metric-learning losses on the GPU ([`MultiSimilarity`], [`Contrastive`], [`SupCon`]) over cuBLAS
//! similarity tiles (`kernels/pairwise.cu`), with the semantics of the CPU pair driver of losskit-losses in its tiled
//! mode: the workspace never holds more than one tile (rows × B) of the B × B similarity matrix.
//!
//! The host side runs over a small executor interface ([`Exec`]: buffers, a row-major GEMM, a kernel launch), so that
//! the very same orchestration drives cuBLAS and the NVRTC kernels on a GPU and, in the unit tests, a CPU emulation
//! of the same kernel source (tests/emu/generic.cpp).
//!
//! Per call on the GPU: no cuBLAS handle is created (one per [`Gpu`], made at first use) and no device memory is
//! allocated besides the outputs (the scratch lives in one workspace per [`Gpu`], grown when a call needs more and
//! kept for the next one; [`Gpu::free_pair_workspace`] gives it back). Embeddings and labels may already be on the
//! device ([`Gpu::pair_loss_device`]); the host-array [`Gpu::pair_loss`] uploads, calls it and downloads. The only
//! host round trip of a call is one 128-byte download of batch-wide sums before the last kernel (the loss value and
//! the gradient scale of the reduction).

use std::cell::Cell;
use std::sync::{Mutex, MutexGuard};

use cudarc::driver::{CudaSlice, DevicePtr, DevicePtrMut, DeviceRepr, LaunchConfig, PushKernelArg};
use losskit_losses::{Contrastive, Distance, MultiSimilarity, Reduction, SupCon};
use losskit_tensor::{Error, Result, check};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayView3};

use crate::device::{Gpu, device_error, guard};
use crate::dtype::GpuFloat;

/// `F.normalize`'s ε (losskit_tensor::norm::NORM_EPS).
const NORM_EPS: f32 = 1e-12;
/// f32 entries of one similarity tile when the config's `tile` is 0: 2²⁴ (64 MiB). A batch of up to 4096 is one
/// tile; larger batches take 2²⁴ / B rows per tile, so that each of the three GEMMs per tile stays large
/// (at B = 8192: 2048 × 8192 × D) while the workspace stays O(B · tile).
const TILE_ELEMS: usize = 1 << 24;
/// Alignment of the buffers carved out of the workspace.
const ALIGN: usize = 256;
/// f64 slots of the sums buffer: [0..4] tallies of the loss pass, [4..8] contrastive statistics, [8..12] counts.
const SUMS: usize = 16;

/// The argument block every kernel of `pairwise.cu` and `knn.cu` takes by value: device pointers, floats, ints.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LkArgs {
    pub p: [u64; 8],
    pub f: [f32; 8],
    pub i: [i32; 8],
}

// SAFETY: a plain `#[repr(C)]` struct of integers and floats, laid out as `struct LkArgs` in the kernel files.
unsafe impl DeviceRepr for LkArgs {}

/// A row-major GEMM: C[m×n] (leading dimension ldc) = α·op(A)·op(B) + β·C, op(X) = Xᵀ when its flag is set; offsets
/// are in f32 elements.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Gemm {
    pub ta: bool,
    pub tb: bool,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub alpha: f32,
    pub lda: usize,
    pub ldb: usize,
    pub beta: f32,
    pub ldc: usize,
}

/// What the pairwise and kNN hosts need from a device.
pub(crate) trait Exec {
    type Buf;
    /// Threads per block of the row kernels (a power of two, at least 32).
    fn block(&self) -> u32;
    /// A zeroed buffer of `bytes` bytes.
    fn alloc(&self, bytes: usize) -> Result<Self::Buf>;
    /// A buffer of `bytes` bytes whose contents are unspecified (the caller writes all of it before reading).
    fn scratch(&self, bytes: usize) -> Result<Self::Buf> {
        self.alloc(bytes)
    }
    /// Sets every byte of `buf` to 0.
    fn zero(&self, buf: &Self::Buf) -> Result<()>;
    fn upload(&self, bytes: &[u8]) -> Result<Self::Buf>;
    fn download(&self, buf: &Self::Buf) -> Result<Vec<u8>>;
    /// C = α·op(A)·op(B) + β·C on f32 buffers (`c` may not alias `a` or `b`).
    fn gemm(&self, g: Gemm, a: (&Self::Buf, usize), b: (&Self::Buf, usize), c: (&Self::Buf, usize)) -> Result<()>;
    /// Launches `kernel` of kernel file `file` with `bufs` as p[0..] (None = null), `f` and `i`.
    #[allow(clippy::too_many_arguments)]
    fn launch(
        &self,
        file: &'static str,
        kernel: &str,
        grid: u32,
        block: u32,
        bufs: &[Option<&Self::Buf>],
        f: [f32; 8],
        i: [i32; 8],
    ) -> Result<()>;
}

/// What one [`Gpu`] keeps for the pairwise losses and the kNN between calls: the cuBLAS handle (bound to the `Gpu`'s
/// stream, plain FP32 math) and the pairwise workspace. Both are made at first use.
#[derive(Default)]
pub(crate) struct PairCache {
    blas: Mutex<Option<cudarc::cublas::CudaBlas>>,
    workspace: Mutex<Option<CudaSlice<u8>>>,
}

impl std::fmt::Debug for PairCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ws = self.workspace.lock().ok().and_then(|w| w.as_ref().map(|s| s.len())).unwrap_or(0);
        f.debug_struct("PairCache").field("workspace_bytes", &ws).finish_non_exhaustive()
    }
}

fn poisoned() -> Error {
    Error::Device { what: "pairwise cache lock poisoned by an earlier panic".into() }
}

/// A device buffer of a [`CudaExec`]: a pointer and a size, owning its memory (`owned`) or borrowing it (a slice of
/// the workspace, or a caller's buffer, which outlives the executor).
pub(crate) struct DevBuf {
    ptr: u64,
    bytes: usize,
    _owned: Option<CudaSlice<u8>>,
}

/// The carved-up workspace of one call (its lock is held while the call enqueues its work; launches of one [`Gpu`]
/// run in order on its stream, so the next call may reuse the memory as soon as the lock is released).
struct Arena<'g> {
    _lock: MutexGuard<'g, Option<CudaSlice<u8>>>,
    base: u64,
    cap: usize,
    used: Cell<usize>,
}

/// The GPU executor: buffers on the device, cuBLAS SGEMM, NVRTC kernels.
pub(crate) struct CudaExec<'g> {
    gpu: &'g Gpu,
    arena: Option<Arena<'g>>,
}

impl<'g> CudaExec<'g> {
    /// An executor whose buffers are separate allocations (the kNN).
    pub(crate) fn new(gpu: &'g Gpu) -> Result<Self> {
        let ex = CudaExec { gpu, arena: None };
        ex.with_blas(|_| Ok(()))?;
        Ok(ex)
    }

    /// An executor carving its buffers out of the [`Gpu`]'s workspace, grown to at least `bytes` first.
    pub(crate) fn with_workspace(gpu: &'g Gpu, bytes: usize) -> Result<Self> {
        let mut ex = CudaExec::new(gpu)?;
        let mut lock = gpu.pair_cache().workspace.lock().map_err(|_| poisoned())?;
        if lock.as_ref().is_none_or(|w| w.len() < bytes) {
            // Give the old one back first, so that the peak is the new size only.
            *lock = None;
            let ws = guard("allocating the pairwise workspace", || {
                // SAFETY: scratch memory; every buffer carved out of it is written before it is read, or zeroed.
                unsafe { gpu.stream().alloc::<u8>(bytes.max(ALIGN)) }
                    .map_err(|e| device_error(&format!("allocating a {bytes}-byte pairwise workspace"), e))
            })?;
            *lock = Some(ws);
        }
        let (base, cap) = match lock.as_ref() {
            Some(ws) => {
                let (ptr, _rec) = ws.device_ptr(gpu.stream());
                (ptr, ws.len())
            }
            None => return Err(Error::Device { what: "pairwise workspace missing".into() }),
        };
        ex.arena = Some(Arena { _lock: lock, base, cap, used: Cell::new(0) });
        Ok(ex)
    }

    /// A borrowed view of `bytes` bytes at `ptr` (a caller's device buffer that outlives this executor).
    pub(crate) fn view(&self, ptr: u64, bytes: usize) -> DevBuf {
        DevBuf { ptr, bytes, _owned: None }
    }

    /// The `Gpu`'s cuBLAS handle, created at first use; held locked while `f` runs.
    fn with_blas<R>(&self, f: impl FnOnce(&cudarc::cublas::CudaBlas) -> Result<R>) -> Result<R> {
        let mut lock = self.gpu.pair_cache().blas.lock().map_err(|_| poisoned())?;
        if lock.is_none() {
            *lock = Some(crate::blas::fp32_handle(self.gpu)?);
        }
        match lock.as_ref() {
            Some(b) => f(b),
            None => Err(Error::Device { what: "cuBLAS handle missing".into() }),
        }
    }

    fn memset(&self, buf: &DevBuf) -> Result<()> {
        guard("zeroing", || {
            // SAFETY: `buf` spans `bytes` bytes of live device memory of this context.
            unsafe { cudarc::driver::result::memset_d8_async(buf.ptr, 0, buf.bytes, self.gpu.stream().cu_stream()) }
                .map_err(|e| device_error("zeroing device memory", e))
        })
    }
}

impl Exec for CudaExec<'_> {
    type Buf = DevBuf;

    fn block(&self) -> u32 {
        256
    }

    fn alloc(&self, bytes: usize) -> Result<Self::Buf> {
        let buf = self.scratch(bytes)?;
        self.memset(&buf)?;
        Ok(buf)
    }

    fn scratch(&self, bytes: usize) -> Result<Self::Buf> {
        if let Some(a) = &self.arena {
            let at = a.used.get();
            let size = bytes.max(1).div_ceil(ALIGN) * ALIGN;
            if at + size <= a.cap {
                a.used.set(at + size);
                return Ok(DevBuf { ptr: a.base + at as u64, bytes, _owned: None });
            }
        }
        guard("allocating", || {
            // SAFETY: callers of `scratch` write before they read; `alloc` zeroes.
            let s = unsafe { self.gpu.stream().alloc::<u8>(bytes.max(1)) }
                .map_err(|e| device_error("allocating device memory", e))?;
            let ptr = {
                let (ptr, _rec) = s.device_ptr(self.gpu.stream());
                ptr
            };
            Ok(DevBuf { ptr, bytes, _owned: Some(s) })
        })
    }

    fn zero(&self, buf: &Self::Buf) -> Result<()> {
        self.memset(buf)
    }

    fn upload(&self, bytes: &[u8]) -> Result<Self::Buf> {
        let buf = self.scratch(bytes.len())?;
        if !bytes.is_empty() {
            guard("uploading", || {
                // SAFETY: `buf` holds `bytes.len()` bytes; a copy from pageable memory has left `bytes` when it
                // returns.
                unsafe { cudarc::driver::result::memcpy_htod_async(buf.ptr, bytes, self.gpu.stream().cu_stream()) }
                    .map_err(|e| device_error("uploading", e))
            })?;
        }
        Ok(buf)
    }

    fn download(&self, buf: &Self::Buf) -> Result<Vec<u8>> {
        let mut out = vec![0_u8; buf.bytes];
        guard("downloading", || {
            let stream = self.gpu.stream();
            // SAFETY: `buf` spans `out.len()` bytes; the synchronisation below completes the copy before `out` is
            // used.
            unsafe { cudarc::driver::result::memcpy_dtoh_async(&mut out, buf.ptr, stream.cu_stream()) }
                .map_err(|e| device_error("downloading", e))?;
            stream.synchronize().map_err(|e| device_error("downloading", e))
        })?;
        Ok(out)
    }

    fn gemm(&self, g: Gemm, a: (&Self::Buf, usize), b: (&Self::Buf, usize), c: (&Self::Buf, usize)) -> Result<()> {
        use cudarc::cublas::sys::cublasOperation_t::{CUBLAS_OP_N, CUBLAS_OP_T};
        let op = |t: bool| if t { CUBLAS_OP_T } else { CUBLAS_OP_N };
        let int = |v: usize| i32::try_from(v).map_err(|_| Error::Input { what: format!("GEMM dimension {v} > 2^31") });
        let (m, n, k, lda, ldb, ldc) = (int(g.m)?, int(g.n)?, int(g.k)?, int(g.lda)?, int(g.ldb)?, int(g.ldc)?);
        let (pa, pb, pc) = (a.0.ptr + 4 * a.1 as u64, b.0.ptr + 4 * b.1 as u64, c.0.ptr + 4 * c.1 as u64);
        self.with_blas(|blas| {
            guard("sgemm", || {
                // Row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: swap the operands and m, n.
                // SAFETY: the callers size every buffer for the rows, columns and leading dimensions passed here.
                unsafe {
                    cudarc::cublas::result::sgemm(
                        *blas.handle(),
                        op(g.tb),
                        op(g.ta),
                        n,
                        m,
                        k,
                        &g.alpha,
                        pb as *const f32,
                        ldb,
                        pa as *const f32,
                        lda,
                        &g.beta,
                        pc as *mut f32,
                        ldc,
                    )
                }
                .map_err(|e| device_error("cublasSgemm", e))
            })
        })
    }

    fn launch(
        &self,
        file: &'static str,
        kernel: &str,
        grid: u32,
        block: u32,
        bufs: &[Option<&Self::Buf>],
        f: [f32; 8],
        i: [i32; 8],
    ) -> Result<()> {
        let func = self.gpu.function(file, kernel)?;
        guard("launching", || {
            let stream = self.gpu.stream();
            let mut args = LkArgs { f, i, ..LkArgs::default() };
            for (slot, b) in args.p.iter_mut().zip(bufs) {
                *slot = b.map_or(0, |b| b.ptr);
            }
            let mut lb = stream.launch_builder(&func);
            lb.arg(&args);
            let cfg = LaunchConfig { grid_dim: (grid.max(1), 1, 1), block_dim: (block, 1, 1), shared_mem_bytes: 0 };
            // SAFETY: every kernel of pairwise.cu / knn.cu takes one `LkArgs` by value; the host code of this crate
            // passes the buffers each kernel's header comment lists, sized as it indexes them.
            unsafe { lb.launch(cfg) }.map_err(|e| device_error(&format!("launching {kernel}"), e))?;
            Ok(())
        })
    }
}

/// Bytes of a slice of f32 / i64 / i32 values (little-endian, as the device and the emulator read them).
pub(crate) fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
#[cfg(test)]
pub(crate) fn i64_bytes(v: &[i64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
pub(crate) fn i32_bytes(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
pub(crate) fn f32_from(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}
pub(crate) fn i32_from(b: &[u8]) -> Vec<i32> {
    b.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}
fn f64_from(b: &[u8]) -> Vec<f64> {
    b.chunks_exact(8).map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])).collect()
}

/// Raw bytes of GPU floats (16-bit types as their bits).
#[cfg(test)]
pub(crate) fn elem_bytes<T: GpuFloat>(v: impl Iterator<Item = T>) -> Vec<u8> {
    let mut out = Vec::new();
    for x in v {
        let f = x.to_f32();
        match T::NAME {
            "f32" => out.extend(f.to_le_bytes()),
            // Exact: f is the value of a bf16 / f16, so rounding it back changes nothing.
            "bf16" => out.extend(half::bf16::from_f32(f).to_bits().to_le_bytes()),
            _ => out.extend(half::f16::from_f32(f).to_bits().to_le_bytes()),
        }
    }
    out
}

pub(crate) fn elems_from<T: GpuFloat>(b: &[u8]) -> Vec<T> {
    match T::NAME {
        "f32" => f32_from(b).into_iter().map(T::from_f32).collect(),
        "bf16" => b
            .chunks_exact(2)
            .map(|c| T::from_f32(half::bf16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32()))
            .collect(),
        _ => b
            .chunks_exact(2)
            .map(|c| T::from_f32(half::f16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32()))
            .collect(),
    }
}

/// Which loss a [`PairSpec`] runs, with its scalars.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Kind {
    MultiSimilarity { alpha: f32, beta: f32, base: f32, epsilon: Option<f32>, skip: bool },
    Contrastive { pos_margin: f32, neg_margin: f32 },
    SupCon { inv_temperature: f32 },
}

/// A pair-loss config as the GPU runs it (built by [`GpuPairLoss::pair_spec`]).
#[derive(Clone, Debug, PartialEq)]
pub struct PairSpec {
    pub(crate) kind: Kind,
    pub(crate) distance: Distance,
    pub(crate) tile: usize,
    pub(crate) reduction: Reduction,
}

impl PairSpec {
    /// The registry name of the loss (`multi-similarity`, `contrastive`, `supcon`).
    pub fn name(&self) -> &'static str {
        match self.kind {
            Kind::MultiSimilarity { .. } => "multi-similarity",
            Kind::Contrastive { .. } => "contrastive",
            Kind::SupCon { .. } => "supcon",
        }
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for losskit_losses::MultiSimilarity {}
    impl Sealed for losskit_losses::Contrastive {}
    impl Sealed for losskit_losses::SupCon {}
}

/// A CPU pair-loss config that [`Gpu::pair_loss`] runs on the GPU: [`MultiSimilarity`] (miner on or off, anchor
/// skipping), [`Contrastive`] and [`SupCon`], every [`Distance`], without a reference set.
pub trait GpuPairLoss: sealed::Sealed {
    /// Validates the config like its CPU `check()` and describes it to the kernels.
    ///
    /// # Errors
    /// The CPU config's [`Error::Parameter`].
    fn pair_spec(&self) -> Result<PairSpec>;
}

impl GpuPairLoss for MultiSimilarity {
    fn pair_spec(&self) -> Result<PairSpec> {
        self.check()?;
        Ok(PairSpec {
            kind: Kind::MultiSimilarity {
                alpha: self.alpha as f32,
                beta: self.beta as f32,
                base: self.base as f32,
                epsilon: self.miner.then_some(self.epsilon as f32),
                skip: self.skip_anchors,
            },
            distance: self.distance,
            tile: self.tile,
            reduction: self.reduction,
        })
    }
}

impl GpuPairLoss for Contrastive {
    fn pair_spec(&self) -> Result<PairSpec> {
        self.check()?;
        Ok(PairSpec {
            kind: Kind::Contrastive { pos_margin: self.pos_margin as f32, neg_margin: self.neg_margin as f32 },
            distance: self.distance,
            tile: self.tile,
            reduction: self.reduction,
        })
    }
}

impl GpuPairLoss for SupCon {
    fn pair_spec(&self) -> Result<PairSpec> {
        self.check()?;
        Ok(PairSpec {
            kind: Kind::SupCon { inv_temperature: (1.0 / self.temperature) as f32 },
            distance: self.distance,
            tile: self.tile,
            reduction: self.reduction,
        })
    }
}

/// The result of a pair loss on the GPU.
#[derive(Clone, Debug, PartialEq)]
pub struct PairOutput<T> {
    /// The reduced loss (f64 sum of the f32 per-anchor values, scaled).
    pub value: f64,
    /// Per-anchor values ℓᵢ.
    pub per_sample: Array1<f32>,
    /// ∂value/∂embeddings [N, D] in the input's type, when asked for.
    pub grad: Option<Array2<T>>,
}

/// The result of [`Gpu::pair_loss_device`]: the value on the host, per-anchor values and the gradient on the device.
#[derive(Debug)]
pub struct PairDeviceOutput<T> {
    /// The reduced loss (f64 sum of the f32 per-anchor values, scaled). Known when the call returns.
    pub value: f64,
    /// Per-anchor values ℓᵢ, f32 `[N]` on the device (zeros where the CPU loss returns zero by rule).
    pub per_sample: CudaSlice<f32>,
    /// ∂value/∂embeddings, row-major [N, D] in the input's type on the device, when asked for. Written by the last
    /// kernel the call enqueues on the [`Gpu`]'s stream: work enqueued on that stream after the call sees it, the
    /// host after [`Gpu::synchronize`] (or a download through the same stream).
    pub grad: Option<CudaSlice<T>>,
}

/// The labels of [`Gpu::pair_loss_device`]: `i64` `[N]` on the host (uploaded, 8·N bytes) or already on the device.
#[derive(Clone, Copy, Debug)]
pub enum PairLabels<'a> {
    /// Labels in host memory.
    Host(ArrayView1<'a, i64>),
    /// Labels in device memory of the same CUDA context as the [`Gpu`].
    Device(&'a CudaSlice<i64>),
}

impl<'a> From<ArrayView1<'a, i64>> for PairLabels<'a> {
    fn from(v: ArrayView1<'a, i64>) -> Self {
        PairLabels::Host(v)
    }
}

impl<'a> From<&'a [i64]> for PairLabels<'a> {
    fn from(v: &'a [i64]) -> Self {
        PairLabels::Host(ArrayView1::from(v))
    }
}

impl<'a> From<&'a CudaSlice<i64>> for PairLabels<'a> {
    fn from(v: &'a CudaSlice<i64>) -> Self {
        PairLabels::Device(v)
    }
}

impl Gpu {
    /// A pair loss of embeddings [N, D] (`f32`, `bf16` or `f16`) with integer labels `[N]`, computed on this GPU with
    /// the semantics of the CPU config's `compute(embeddings, labels, None, grad)`: same value, per-anchor values and
    /// gradient up to f32 rounding (accumulation is f32), same validation errors.
    ///
    /// A thin wrapper over [`Gpu::pair_loss_device`]: checks the inputs on the host as the CPU does, uploads them,
    /// calls it and downloads the per-anchor values and the gradient (the host copies cost about 2·N·D·size(T) bytes
    /// over PCIe; keep the embeddings on the device to avoid them).
    ///
    /// ```text
    /// for each tile of rows r0..r1:  S = Ĥ[r0..r1]·Ĥᵀ (cuBLAS)  →  kernel: ℓᵢ, ∂ℓ/∂S in place  →  dĤ += ∂S·Ĥ, dĤ += ∂Sᵀ·Ĥ[r0..r1]
    /// ```
    /// Memory and tiling as [`Gpu::pair_loss_device`].
    ///
    /// # Errors
    /// [`Error::Parameter`] (the config), [`Error::Empty`], [`Error::Shape`], [`Error::NonFinite`] for bad inputs;
    /// [`Error::Device`] when cuBLAS is missing or a launch fails.
    pub fn pair_loss<T: GpuFloat, L: GpuPairLoss>(
        &self,
        loss: &L,
        embeddings: ArrayView2<'_, T>,
        labels: ArrayView1<'_, i64>,
        grad: bool,
    ) -> Result<PairOutput<T>> {
        loss.pair_spec()?;
        check_inputs(&embeddings, &labels)?;
        let (n, d) = embeddings.dim();
        let x = embeddings.as_standard_layout();
        let host = x.as_slice().ok_or_else(|| Error::Input { what: "embeddings: not contiguous".into() })?;
        let xd = guard("uploading", || self.stream().clone_htod(host).map_err(|e| device_error("uploading", e)))?;
        let out = self.pair_loss_device(loss, &xd, d, labels, grad)?;
        guard("downloading", || {
            let stream = self.stream();
            let ps = stream.clone_dtoh(&out.per_sample).map_err(|e| device_error("downloading", e))?;
            let g = match &out.grad {
                None => None,
                Some(g) => {
                    let v = stream.clone_dtoh(g).map_err(|e| device_error("downloading", e))?;
                    Some(
                        Array2::from_shape_vec((n, d), v)
                            .map_err(|e| Error::Input { what: format!("internal shape error: {e}") })?,
                    )
                }
            };
            Ok(PairOutput { value: out.value, per_sample: Array1::from_vec(ps), grad: g })
        })
    }

    /// [`Gpu::pair_loss`] on embeddings already on the device: `embeddings` is row-major [N, D] with `dim` = D
    /// columns (N = `embeddings.len() / dim`), `labels` `i64` `[N]` on the host or on the device ([`PairLabels`]).
    /// Returns the value on the host and the per-anchor values and gradient on the device ([`PairDeviceOutput`]).
    ///
    /// ```text
    /// Ĥ = normalize(X)  (per row; a copy for EuclideanUnnormalized)
    /// for each tile of rows r0..r1 (t rows):
    ///     S = Ĥ[r0..r1]·Ĥᵀ                          (cuBLAS SGEMM, t × N, plain FP32)
    ///     kernel: ℓᵢ and ∂ℓ/∂S in place, one block per row
    ///     dĤ[r0..r1] += ∂S·Ĥ;  dĤ += ∂Sᵀ·Ĥ[r0..r1]  (two SGEMMs)
    /// sums of the row tallies → value and gradient scale (one 128-byte download)
    /// dX = scale · (dĤ back through the normalisation)   (in T)
    /// ```
    /// The contrastive loss under `Mean` first runs a statistics pass over every tile (its gradient scale is a
    /// batch-wide count; the scale stays on the device).
    ///
    /// # Parameters
    /// * `loss`: a [`GpuPairLoss`] config; its `tile` (rows per similarity tile) at 0 picks 2²⁴ / N rows (the whole
    ///   matrix up to N = 4096), else the given number of rows.
    /// * `grad`: whether to compute the gradient.
    ///
    /// # Memory
    /// Besides the outputs (4·N bytes, plus N·D·size(T) with `grad`), one workspace per [`Gpu`] of about
    /// 4·t·N (similarity tile) + 4·N·D (normalised rows) + 4·N·D (f32 gradient, with `grad`) + 48·N bytes, which is
    /// kept for the next call (see [`Gpu::free_pair_workspace`]); never the N × N matrix unless t = N. At N = 8192,
    /// D = 512 with the default tile: 64 + 16 + 16 MiB.
    ///
    /// # Synchronisation
    /// Work runs in order on this `Gpu`'s stream (a buffer written on another stream of the same context is waited
    /// for through cudarc's events). The call waits once, for the batch-wide sums before the gradient kernel, so the
    /// value is known on return; the gradient may still be in flight (see [`PairDeviceOutput::grad`]). Host labels
    /// are copied from pageable memory, which CUDA performs after the stream's earlier work.
    ///
    /// # Errors
    /// [`Error::Parameter`] (the config); [`Error::Empty`] for N = 0; [`Error::Shape`] for `dim` = 0, a length that
    /// is not a multiple of `dim`, or labels not of length N; [`Error::NonFinite`] when a row holds a non-finite
    /// value (found through the row norms: a finite row whose norm overflows f32 gives [`Error::Input`]);
    /// [`Error::Device`] for buffers of another CUDA context, a missing cuBLAS or a failed launch.
    pub fn pair_loss_device<'a, T: GpuFloat, L: GpuPairLoss>(
        &self,
        loss: &L,
        embeddings: &CudaSlice<T>,
        dim: usize,
        labels: impl Into<PairLabels<'a>>,
        grad: bool,
    ) -> Result<PairDeviceOutput<T>> {
        let spec = loss.pair_spec()?;
        let labels = labels.into();
        let n = device_rows(embeddings.len(), dim)?;
        let n_labels = match labels {
            PairLabels::Host(l) => l.len(),
            PairLabels::Device(l) => l.len(),
        };
        check::shape("labels", &[n_labels], &[Some(n)])?;
        let same_ctx = |c: &std::sync::Arc<cudarc::driver::CudaContext>| std::sync::Arc::ptr_eq(c, self.context());
        let foreign =
            !same_ctx(embeddings.context()) || matches!(labels, PairLabels::Device(l) if !same_ctx(l.context()));
        if foreign {
            return Err(Error::Device { what: "pair loss: buffers of another CUDA context than this Gpu's".into() });
        }
        let d = dim;
        let stream = self.stream();
        let ex = CudaExec::with_workspace(self, workspace_bytes(&spec, n, d, grad))?;
        let (mut per_sample, mut gout) = guard("allocating", || {
            let ps = stream.alloc_zeros::<f32>(n).map_err(|e| device_error("allocating device memory", e))?;
            let g = if grad {
                Some(stream.alloc_zeros::<T>(n * d).map_err(|e| device_error("allocating device memory", e))?)
            } else {
                None
            };
            Ok((ps, g))
        })?;
        let elem = std::mem::size_of::<T>();
        let value = {
            let (xp, _xr) = embeddings.device_ptr(stream);
            let x = ex.view(xp, elem * n * d);
            let (lab, _lr) = match labels {
                PairLabels::Host(l) => {
                    let l = l.as_standard_layout();
                    let host = l.as_slice().ok_or_else(|| Error::Input { what: "labels: not contiguous".into() })?;
                    let buf = ex.scratch(8 * n)?;
                    guard("uploading", || {
                        // SAFETY: `buf` holds 8·n bytes; a pageable copy has read `host` when it returns.
                        unsafe { cudarc::driver::result::memcpy_htod_async(buf.ptr, host, stream.cu_stream()) }
                            .map_err(|e| device_error("uploading labels", e))
                    })?;
                    (buf, None)
                }
                PairLabels::Device(l) => {
                    let (lp, rec) = l.device_ptr(stream);
                    (ex.view(lp, 8 * n), Some(rec))
                }
            };
            let (pp, _pr) = per_sample.device_ptr_mut(stream);
            let ps = ex.view(pp, 4 * n);
            let mut g_rec = None;
            let gbuf = match gout.as_mut() {
                Some(g) => {
                    let (gp, rec) = g.device_ptr_mut(stream);
                    g_rec = Some(rec);
                    Some(ex.view(gp, elem * n * d))
                }
                None => None,
            };
            let v =
                run_on::<_, T>(&ex, &spec, PairIo { x: &x, labels: &lab, n, d, per_sample: &ps, grad: gbuf.as_ref() });
            drop(g_rec);
            v?
        };
        Ok(PairDeviceOutput { value, per_sample, grad: gout })
    }

    /// Copies `values` into a new buffer on this `Gpu` (its context and stream), e.g. embeddings for
    /// [`Gpu::pair_loss_device`] (row-major [N, D] as one slice) or labels.
    ///
    /// # Errors
    /// [`Error::Device`] when the allocation or the copy fails.
    pub fn to_device<T: DeviceRepr>(&self, values: &[T]) -> Result<CudaSlice<T>> {
        guard("uploading", || self.stream().clone_htod(values).map_err(|e| device_error("uploading", e)))
    }

    /// Copies a device buffer of this `Gpu` to the host, after the work already enqueued on its stream.
    ///
    /// # Errors
    /// [`Error::Device`] when the copy (or an earlier launch) fails.
    pub fn to_host<T: DeviceRepr>(&self, buf: &CudaSlice<T>) -> Result<Vec<T>> {
        guard("downloading", || self.stream().clone_dtoh(buf).map_err(|e| device_error("downloading", e)))
    }

    /// (free, total) device memory in bytes, as the driver reports it (`cuMemGetInfo`).
    ///
    /// # Errors
    /// [`Error::Device`] when the driver call fails.
    pub fn memory_info(&self) -> Result<(usize, usize)> {
        guard("reading memory info", || {
            self.context().mem_get_info().map_err(|e| device_error("reading memory info", e))
        })
    }

    /// Gives back the pairwise workspace this `Gpu` keeps between [`Gpu::pair_loss_device`] calls (the next call
    /// allocates it again). Returns its size in bytes (0 when there was none).
    ///
    /// # Errors
    /// [`Error::Device`] when the workspace lock was poisoned by a panic.
    pub fn free_pair_workspace(&self) -> Result<usize> {
        let mut lock = self.pair_cache().workspace.lock().map_err(|_| poisoned())?;
        Ok(lock.take().map_or(0, |w| w.len()))
    }

    /// SupCon of V augmented views of B samples, `features` [B, V, D], stacked view-major into N = V·B rows (as the
    /// CPU's [`losskit_losses::stack_views`]); the gradient is for the stacked rows [V·B, D].
    ///
    /// # Errors
    /// As [`Gpu::pair_loss`]; [`Error::Shape`] when `labels` is not `[B]`.
    pub fn supcon_views<T: GpuFloat>(
        &self,
        loss: &SupCon,
        features: ArrayView3<'_, T>,
        labels: ArrayView1<'_, i64>,
        grad: bool,
    ) -> Result<PairOutput<T>> {
        let (rows, l) = stack_views(features, labels)?;
        self.pair_loss(loss, rows.view(), l.view(), grad)
    }
}

/// Rows of a device buffer of `len` elements with `dim` columns.
fn device_rows(len: usize, dim: usize) -> Result<usize> {
    if dim == 0 {
        return Err(Error::Shape { arg: "embeddings", expected: "[N, D] with D ≥ 1".into(), got: vec![len, dim] });
    }
    check::non_empty("embeddings", len / dim)?;
    if !len.is_multiple_of(dim) {
        return Err(Error::Shape {
            arg: "embeddings",
            expected: format!("a row-major [N, {dim}] buffer (length a multiple of {dim})"),
            got: vec![len],
        });
    }
    let n = len / dim;
    if n > i32::MAX as usize || dim > i32::MAX as usize {
        return Err(Error::Input {
            what: format!("embeddings: the GPU takes at most 2^31 − 1 rows and columns, got [{n}, {dim}]"),
        });
    }
    Ok(n)
}

/// View-major stacking of [B, V, D] into [V·B, D] with repeated labels (row r = view r / B of sample r % B).
pub(crate) fn stack_views<T: GpuFloat>(
    features: ArrayView3<'_, T>,
    labels: ArrayView1<'_, i64>,
) -> Result<(Array2<T>, Array1<i64>)> {
    let (b, v, d) = features.dim();
    check::non_empty("features", b * v)?;
    check::shape("labels", labels.shape(), &[Some(b)])?;
    let rows = Array2::from_shape_fn((v * b, d), |(r, k)| features[[r % b, r / b, k]]);
    let l = Array1::from_shape_fn(v * b, |r| labels[r % b]);
    Ok((rows, l))
}

/// The CPU driver's input checks, in its order.
pub(crate) fn check_inputs<T: GpuFloat>(x: &ArrayView2<'_, T>, labels: &ArrayView1<'_, i64>) -> Result<()> {
    let (n, d) = x.dim();
    check::non_empty("embeddings", n)?;
    if d == 0 {
        return Err(Error::Shape { arg: "embeddings", expected: "[N, D] with D ≥ 1".into(), got: vec![n, d] });
    }
    check::shape("labels", labels.shape(), &[Some(n)])?;
    if let Some((index, v)) = x.iter().enumerate().find(|(_, v)| !v.to_f32().is_finite()) {
        return Err(Error::NonFinite { arg: "embeddings", index, value: f64::from(v.to_f32()) });
    }
    if n > i32::MAX as usize || d > i32::MAX as usize {
        return Err(Error::Input {
            what: format!("embeddings: the GPU takes at most 2^31 − 1 rows and columns, got [{n}, {d}]"),
        });
    }
    Ok(())
}

/// Rows per tile: the config's `tile`, or at 0 as many rows as fit [`TILE_ELEMS`] entries.
pub(crate) fn tile_rows(tile: usize, n: usize) -> usize {
    let t = if tile == 0 { TILE_ELEMS / n.max(1) } else { tile };
    t.clamp(1, n.max(1))
}

/// Bytes of the workspace [`run_on`] carves out on an executor with one (every buffer rounded up to [`ALIGN`]).
pub(crate) fn workspace_bytes(spec: &PairSpec, n: usize, d: usize, grad: bool) -> usize {
    let t = tile_rows(spec.tile, n);
    let euclid = spec.distance != Distance::Cosine;
    let sizes = [
        4 * n * d,                              // Ĥ
        4 * n,                                  // norms
        4 * n,                                  // squared norms
        4 * t * n,                              // similarity / coefficient tile
        16 * n,                                 // tallies
        16 * n,                                 // counts
        8 * SUMS,                               // sums
        8 * n,                                  // uploaded labels
        if grad { 4 * n * d } else { 0 },       // dĤ
        if grad && euclid { 4 * n } else { 0 }, // column sums
    ];
    sizes.iter().map(|&s| s.max(1).div_ceil(ALIGN) * ALIGN).sum()
}

/// The buffers of one call on an executor: embeddings (raw T, row-major [n, d]) and labels (i64 [n]) in, per-anchor
/// values (f32 [n]) and gradient (raw T [n, d]) out, both zeroed by the caller.
pub(crate) struct PairIo<'a, B> {
    pub x: &'a B,
    pub labels: &'a B,
    pub n: usize,
    pub d: usize,
    pub per_sample: &'a B,
    pub grad: Option<&'a B>,
}

/// The whole pair loss on an executor; returns the value. The zero rules of the CPU driver (no pairs, a single
/// pair, ...) are applied after the passes, from pair counts taken on the device, so that nothing waits for the host
/// before the similarity passes.
pub(crate) fn run_on<E: Exec, T: GpuFloat>(ex: &E, spec: &PairSpec, io: PairIo<'_, E::Buf>) -> Result<f64> {
    let PairIo { x: xs, labels: lab, n, d, per_sample: rowloss, grad: gout } = io;
    let grad = gout.is_some();
    let normalize = spec.distance != Distance::EuclideanUnnormalized;
    let euclid = spec.distance != Distance::Cosine;
    let block = ex.block();
    let (ni, di) = (n as i32, d as i32);

    let h = ex.scratch(4 * n * d)?;
    let norms = ex.scratch(4 * n)?;
    let sq = ex.scratch(4 * n)?;
    ex.launch(
        "pairwise",
        &format!("pw_normalize_{}", T::NAME),
        n as u32,
        block,
        &[Some(xs), Some(&h), Some(&norms), Some(&sq)],
        [NORM_EPS, 0., 0., 0., 0., 0., 0., 0.],
        [ni, di, i32::from(normalize), 0, 0, 0, 0, 0],
    )?;

    let t = tile_rows(spec.tile, n);
    let tiles: Vec<(usize, usize)> = (0..n).step_by(t).map(|r0| (r0, (r0 + t).min(n))).collect();
    let s = ex.scratch(4 * t * n)?;
    let tally = ex.scratch(16 * n)?;
    let counts = ex.scratch(16 * n)?;
    let sums = ex.scratch(8 * SUMS)?;
    let reduce = |table: &E::Buf, at: i32| {
        ex.launch("pairwise", "pw_reduce", 1, block, &[Some(table), Some(&sums)], [0.0; 8], [ni, at, 0, 0, 0, 0, 0, 0])
    };
    ex.launch(
        "pairwise",
        "pw_label_counts",
        n as u32,
        block,
        &[Some(lab), Some(&norms), Some(&counts)],
        [0.0; 8],
        [ni, 0, 0, 0, 0, 0, 0, 0],
    )?;
    reduce(&counts, 8)?;

    let sim = |r0: usize, r1: usize| {
        let g = Gemm { ta: false, tb: true, m: r1 - r0, n, k: d, alpha: 1.0, lda: d, ldb: d, beta: 0.0, ldc: n };
        ex.gemm(g, (&h, r0 * d), (&h, 0), (&s, 0))
    };
    let row_ints = |r0: usize, r1: usize, g: bool, extra: [i32; 3]| {
        [r0 as i32, (r1 - r0) as i32, ni, i32::from(euclid), i32::from(g), extra[0], extra[1], extra[2]]
    };
    let row_bufs = [Some(&s), Some(lab), Some(&sq), Some(rowloss), Some(&tally), Some(&sums)];

    let mean = spec.reduction == Reduction::Mean;
    let (kernel, floats, extra) = match spec.kind {
        Kind::MultiSimilarity { alpha, beta, base, epsilon, skip } => (
            "pw_multi_similarity",
            [alpha, beta, base, epsilon.unwrap_or(0.0), 0., 0., 0., 0.],
            [i32::from(epsilon.is_some()), i32::from(skip), 0],
        ),
        Kind::Contrastive { pos_margin, neg_margin } => {
            if mean {
                // The numbers of non-zero terms of each side, over the whole batch, before any gradient: summed on
                // the device into sums[4..6], which pw_contrastive reads (i5 = 1).
                for &(r0, r1) in &tiles {
                    sim(r0, r1)?;
                    let f = [pos_margin, neg_margin, 0., 0., 0., 0., 0., 0.];
                    let ints = row_ints(r0, r1, false, [0; 3]);
                    ex.launch("pairwise", "pw_contrastive_stats", (r1 - r0) as u32, block, &row_bufs, f, ints)?;
                }
                reduce(&tally, 4)?;
            }
            ("pw_contrastive", [pos_margin, neg_margin, 1., 1., 0., 0., 0., 0.], [i32::from(mean), 0, 0])
        }
        Kind::SupCon { inv_temperature } => ("pw_supcon", [inv_temperature, 0., 0., 0., 0., 0., 0., 0.], [0; 3]),
    };

    let gbuf = if grad { Some(ex.alloc(4 * n * d)?) } else { None };
    let col = if grad && euclid { Some(ex.alloc(4 * n)?) } else { None };
    for &(r0, r1) in &tiles {
        sim(r0, r1)?;
        let rows = r1 - r0;
        ex.launch("pairwise", kernel, rows as u32, block, &row_bufs, floats, row_ints(r0, r1, grad, extra))?;
        if let Some(g) = &gbuf {
            if let Some(col) = &col {
                let i = [r0 as i32, rows as i32, ni, 0, 0, 0, 0, 0];
                ex.launch(
                    "pairwise",
                    "pw_colsum",
                    n.div_ceil(block as usize) as u32,
                    block,
                    &[Some(&s), Some(col)],
                    [0.0; 8],
                    i,
                )?;
            }
            // dĤ[r0..r1] += ∂S·Ĥ and dĤ += ∂Sᵀ·Ĥ[r0..r1] (each pair (i, j) feeds both ends).
            let g1 = Gemm { ta: false, tb: false, m: rows, n: d, k: n, alpha: 1.0, lda: n, ldb: d, beta: 1.0, ldc: d };
            ex.gemm(g1, (&s, 0), (&h, 0), (g, r0 * d))?;
            let g2 = Gemm { ta: true, tb: false, m: n, n: d, k: rows, alpha: 1.0, lda: n, ldb: d, beta: 1.0, ldc: d };
            ex.gemm(g2, (&s, 0), (&h, r0 * d), (g, 0))?;
        }
    }
    reduce(&tally, 0)?;

    // The one host round trip: the batch-wide sums.
    let all = f64_from(&ex.download(&sums)?);
    let sums = [all[0], all[1], all[2]];
    let stats = [all[4], all[5]];
    let (pos, neg, norm_sum) = (all[8], all[9], all[10]);
    if !norm_sum.is_finite() {
        return Err(non_finite_input::<E, T>(ex, xs, &norms, n, d));
    }
    // The CPU driver's zero rules from the pair counts (PML's: no pairs of a needed kind, or at most one of each).
    let at_most_one = pos <= 1.0 && neg <= 1.0;
    let zero_by_counts = match spec.kind {
        Kind::MultiSimilarity { epsilon, skip, .. } => {
            !skip && (at_most_one || (epsilon.is_some() && (pos == 0.0 || neg == 0.0)))
        }
        Kind::Contrastive { .. } => at_most_one,
        Kind::SupCon { .. } => at_most_one || pos == 0.0 || neg == 0.0,
    };
    // The reduction (each kernel's `finish`): (value, gradient scale), or None for a loss that is zero by rule.
    let finish: Option<(f64, f64)> = match spec.kind {
        _ if zero_by_counts => None,
        Kind::MultiSimilarity { epsilon, skip, .. } => {
            if epsilon.is_some() && !skip && sums[1] <= 1.0 && sums[2] <= 1.0 {
                None
            } else if mean {
                Some((sums[0] / n as f64, 1.0 / n as f64))
            } else {
                Some((sums[0], 1.0))
            }
        }
        Kind::Contrastive { .. } => {
            if mean {
                let avg = |s: f64, c: f64| if c > 0.0 { s / c } else { 0.0 };
                Some((avg(sums[0], stats[0]) + avg(sums[1], stats[1]), 1.0))
            } else {
                Some((sums[0] + sums[1], 1.0))
            }
        }
        Kind::SupCon { .. } => {
            if !mean {
                Some((sums[0], 1.0))
            } else if sums[1] > 0.0 {
                Some((sums[0] / sums[1], 1.0 / sums[1]))
            } else {
                None
            }
        }
    };
    let Some((value, scale)) = finish else {
        // Zero by rule: zero per-anchor values; the caller's gradient buffer is zero already.
        ex.zero(rowloss)?;
        return Ok(0.0);
    };
    if let (Some(g), Some(out)) = (&gbuf, gout) {
        ex.launch(
            "pairwise",
            &format!("pw_finish_{}", T::NAME),
            n as u32,
            block,
            &[Some(g), Some(&h), Some(&norms), Some(&tally), col.as_ref(), Some(out)],
            [scale as f32, NORM_EPS, 0., 0., 0., 0., 0., 0.],
            [ni, di, i32::from(normalize), i32::from(euclid), 0, 0, 0, 0],
        )?;
    }
    Ok(value)
}

/// The error for embeddings with a non-finite row norm: the CPU's [`Error::NonFinite`] at the first non-finite
/// element (found by downloading the embeddings, on this error path only), or [`Error::Input`] when every element is
/// finite but a row's norm overflows f32.
fn non_finite_input<E: Exec, T: GpuFloat>(ex: &E, xs: &E::Buf, norms: &E::Buf, n: usize, d: usize) -> Error {
    let found = ex.download(xs).map(|b| {
        let v = elems_from::<T>(&b);
        v.iter().take(n * d).position(|x| !x.to_f32().is_finite()).map(|i| (i, f64::from(v[i].to_f32())))
    });
    match found {
        Err(e) => e,
        Ok(Some((index, value))) => Error::NonFinite { arg: "embeddings", index, value },
        Ok(None) => {
            let row = ex.download(norms).ok().and_then(|b| f32_from(&b).iter().position(|v| !v.is_finite()));
            Error::Input { what: format!("embeddings: the norm of row {} overflows f32", row.map_or(-1, |r| r as i64)) }
        }
    }
}

/// The whole pair loss of host arrays on an executor (inputs already checked): upload, [`run_on`], download.
#[cfg(test)]
pub(crate) fn run<E: Exec, T: GpuFloat>(
    ex: &E,
    spec: &PairSpec,
    x: ArrayView2<'_, T>,
    labels: ArrayView1<'_, i64>,
    grad: bool,
) -> Result<PairOutput<T>> {
    let (n, d) = x.dim();
    let labels: Vec<i64> = labels.iter().copied().collect();
    let xs = ex.upload(&elem_bytes(x.iter().copied()))?;
    let lab = ex.upload(&i64_bytes(&labels))?;
    let elem = std::mem::size_of::<T>();
    let per_sample = ex.alloc(4 * n)?;
    let g = if grad { Some(ex.alloc(elem * n * d)?) } else { None };
    let io = PairIo { x: &xs, labels: &lab, n, d, per_sample: &per_sample, grad: g.as_ref() };
    let value = run_on::<E, T>(ex, spec, io)?;
    let per_sample = Array1::from_vec(f32_from(&ex.download(&per_sample)?));
    let grad = match &g {
        None => None,
        Some(g) => Some(
            Array2::from_shape_vec((n, d), elems_from::<T>(&ex.download(g)?))
                .map_err(|e| Error::Input { what: format!("internal shape error: {e}") })?,
        ),
    };
    Ok(PairOutput { value, per_sample, grad })
}

/// The CPU emulation of the kernel files (tests/emu/generic.cpp), for the unit tests of this module and of `knn`.
#[cfg(test)]
pub(crate) mod emu {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::sync::OnceLock;

    /// Buffers on the host; GEMMs in plain loops (f32 products, f64 sums); kernels by the emulator executable.
    pub(crate) struct EmuExec {
        exes: HashMap<&'static str, PathBuf>,
        pub block: u32,
    }

    fn kernel_names(source: &str) -> Vec<String> {
        let mut names = Vec::new();
        for line in source.lines() {
            if let Some(rest) = line.strip_prefix("extern \"C\" __global__ void ")
                && let Some(name) = rest.split('(').next()
            {
                names.push(name.trim().to_string());
            }
            if let Some(rest) = line.strip_prefix("PW_TYPED(") {
                let suffix = rest.split(',').nth(1).unwrap_or("").trim().trim_end_matches(')').to_string();
                names.push(format!("pw_normalize_{suffix}"));
                names.push(format!("pw_finish_{suffix}"));
            }
        }
        names
    }

    fn build(file: &'static str) -> Option<PathBuf> {
        let emu = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/emu");
        let cxx = std::env::var("CXX").unwrap_or_else(|_| "g++".into());
        if Command::new(&cxx).arg("--version").output().is_err() {
            println!("skipped: no C++ compiler ({cxx})");
            return None;
        }
        let source = crate::kernels::source(file)?;
        let dir = std::env::temp_dir().join(format!("losskit-{file}-generic-emu-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let mut src = String::from(source);
        src.push('\n');
        for name in kernel_names(source) {
            src.push_str(&format!("LK_REGISTER({name})\n"));
        }
        std::fs::write(dir.join("kernel.cu"), src).ok()?;
        std::fs::copy(emu.join("shim.h"), dir.join("shim.h")).ok()?;
        let exe = dir.join("generic_emu");
        let out = Command::new(&cxx)
            .args(["-std=c++20", "-O1", "-pthread", "-I"])
            .arg(&dir)
            .arg("-o")
            .arg(&exe)
            .arg(emu.join("generic.cpp"))
            .output()
            .ok()?;
        assert!(out.status.success(), "{cxx} failed:\n{}", String::from_utf8_lossy(&out.stderr));
        Some(exe)
    }

    /// The emulator of both kernel files, built once per test process (None without a C++ compiler).
    pub(crate) fn emulator() -> Option<EmuExec> {
        static EXES: OnceLock<Option<HashMap<&'static str, PathBuf>>> = OnceLock::new();
        let exes = EXES
            .get_or_init(|| {
                let mut m = HashMap::new();
                for f in ["pairwise", "knn"] {
                    m.insert(f, build(f)?);
                }
                Some(m)
            })
            .clone()?;
        Some(EmuExec { exes, block: 32 })
    }

    impl Exec for EmuExec {
        type Buf = RefCell<Vec<u8>>;

        fn block(&self) -> u32 {
            self.block
        }
        fn alloc(&self, bytes: usize) -> Result<Self::Buf> {
            Ok(RefCell::new(vec![0; bytes]))
        }
        fn zero(&self, buf: &Self::Buf) -> Result<()> {
            buf.borrow_mut().fill(0);
            Ok(())
        }
        fn upload(&self, bytes: &[u8]) -> Result<Self::Buf> {
            Ok(RefCell::new(bytes.to_vec()))
        }
        fn download(&self, buf: &Self::Buf) -> Result<Vec<u8>> {
            Ok(buf.borrow().clone())
        }
        fn gemm(&self, g: Gemm, a: (&Self::Buf, usize), b: (&Self::Buf, usize), c: (&Self::Buf, usize)) -> Result<()> {
            let av = f32_from(&a.0.borrow());
            let bv = f32_from(&b.0.borrow());
            let mut cv = f32_from(&c.0.borrow());
            for i in 0..g.m {
                for j in 0..g.n {
                    let mut acc = 0.0_f64;
                    for k in 0..g.k {
                        let x = if g.ta { av[a.1 + k * g.lda + i] } else { av[a.1 + i * g.lda + k] };
                        let y = if g.tb { bv[b.1 + j * g.ldb + k] } else { bv[b.1 + k * g.ldb + j] };
                        acc += f64::from(x * y);
                    }
                    let o = &mut cv[c.1 + i * g.ldc + j];
                    *o = g.alpha * acc as f32 + if g.beta == 0.0 { 0.0 } else { g.beta * *o };
                }
            }
            *c.0.borrow_mut() = f32_bytes(&cv);
            Ok(())
        }
        fn launch(
            &self,
            file: &'static str,
            kernel: &str,
            grid: u32,
            block: u32,
            bufs: &[Option<&Self::Buf>],
            f: [f32; 8],
            i: [i32; 8],
        ) -> Result<()> {
            let exe = &self.exes[file];
            let mut input = Vec::new();
            input.extend((kernel.len() as u32).to_le_bytes());
            input.extend(kernel.as_bytes());
            input.extend(grid.to_le_bytes());
            input.extend(block.to_le_bytes());
            input.extend((bufs.len() as u32).to_le_bytes());
            for b in bufs {
                let data = b.map(|b| b.borrow().clone()).unwrap_or_default();
                input.extend((data.len() as u64).to_le_bytes());
                input.extend(data);
            }
            input.extend(f32_bytes(&f));
            input.extend(i32_bytes(&i));
            static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let tag = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let dir = exe.parent().unwrap_or(Path::new("."));
            let (inp, outp) = (dir.join(format!("{kernel}-{tag}.in")), dir.join(format!("{kernel}-{tag}.out")));
            std::fs::write(&inp, &input).map_err(|e| Error::Input { what: e.to_string() })?;
            let run =
                Command::new(exe).arg(&inp).arg(&outp).output().map_err(|e| Error::Input { what: e.to_string() })?;
            let _ = std::fs::remove_file(&inp);
            if !run.status.success() {
                return Err(Error::Device {
                    what: format!("emulated {kernel}: {}", String::from_utf8_lossy(&run.stderr)),
                });
            }
            let out = std::fs::read(&outp).map_err(|e| Error::Input { what: e.to_string() })?;
            let _ = std::fs::remove_file(&outp);
            let mut at = 0;
            for b in bufs.iter().flatten() {
                let len = b.borrow().len();
                b.borrow_mut().copy_from_slice(&out[at..at + len]);
                at += len;
            }
            if out.get(at) != Some(&0) {
                return Err(Error::Device { what: format!("emulated {kernel} wrote outside its buffers") });
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::emu::emulator;
    use super::*;
    use half::{bf16, f16};
    use losskit_losses::EmbeddingLoss;
    use rand::rngs::Xoshiro256PlusPlus;
    use rand::{RngExt, SeedableRng};

    fn batch(n: usize, d: usize, classes: i64, seed: u64) -> (Array2<f64>, Array1<i64>) {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let x = Array2::from_shape_fn((n, d), |_| rng.random_range(-1.0..1.0));
        let y = Array1::from_shape_fn(n, |_| rng.random_range(0..classes));
        (x, y)
    }

    /// Runs `loss` in the emulator on `x` rounded to T and compares with the CPU loss in f64 on the same values.
    fn compare<T: GpuFloat, L: GpuPairLoss + EmbeddingLoss<f64>>(
        ex: &emu::EmuExec,
        what: &str,
        loss: &L,
        x: &Array2<f64>,
        y: &Array1<i64>,
        rel: f64,
    ) {
        let xt = x.mapv(|v| T::from_f64(v));
        let xr = xt.mapv(|v| f64::from(v.to_f32()));
        let cpu = loss.compute(xr.view(), y.view(), None, true).unwrap();
        let gpu = run(ex, &loss.pair_spec().unwrap(), xt.view(), y.view(), true).unwrap();
        let close = |a: f64, b: f64, scale: f64| (a - b).abs() <= rel * b.abs().max(scale);
        assert!(close(gpu.value, cpu.value, 1e-6), "{what}: value {} vs cpu {}", gpu.value, cpu.value);
        let ps = cpu.per_sample.unwrap();
        let ps_scale = ps.iter().fold(0.0_f64, |m, v| m.max(v.abs())).max(1e-6);
        for (i, (&g, &c)) in gpu.per_sample.iter().zip(ps.iter()).enumerate() {
            assert!(close(f64::from(g), c, ps_scale), "{what}: per_sample[{i}] {g} vs {c}");
        }
        let cg = cpu.grad.unwrap();
        let gg = gpu.grad.unwrap();
        let g_scale = cg.iter().fold(0.0_f64, |m, v| m.max(v.abs())).max(1e-9);
        // 16-bit gradients carry their own rounding (2⁻⁸ / 2⁻¹¹ relative).
        let g_rel = match T::NAME {
            "f32" => rel * 10.0,
            "bf16" => 1e-2,
            _ => 2e-3,
        };
        for ((i, j), &c) in cg.indexed_iter() {
            let g = f64::from(gg[[i, j]].to_f32());
            assert!((g - c).abs() <= g_rel * g_scale, "{what}: grad[{i},{j}] {g} vs cpu {c} (scale {g_scale})");
        }
        println!("ok   emulated {what}: value {:.6} (cpu {:.6})", gpu.value, cpu.value);
    }

    #[test]
    fn pair_losses_match_cpu_under_emulation() {
        let Some(ex) = emulator() else { return };
        let (x, y) = batch(24, 7, 4, 1);
        // A class with a single member: rows without positives.
        let mut y1 = y.clone();
        y1[5] = 99;
        y1[17] = 98;
        let rel = 1e-5;
        for (tile, tag) in [(0, "dense"), (5, "tiled")] {
            for dist in [Distance::Cosine, Distance::Euclidean, Distance::EuclideanUnnormalized] {
                let w = format!("{tag} {}", dist.as_str());
                let ms = MultiSimilarity::new().distance(dist).tile(tile);
                compare::<f32, _>(&ex, &format!("ms {w}"), &ms, &x, &y1, rel);
                compare::<f32, _>(&ex, &format!("ms miner {w}"), &ms.clone().miner(true), &x, &y1, rel);
                let official = MultiSimilarity::official().distance(dist).tile(tile);
                compare::<f32, _>(&ex, &format!("ms official {w}"), &official, &x, &y1, rel);
                let c = Contrastive::new().pos_margin(0.2).neg_margin(0.9).distance(dist).tile(tile);
                compare::<f32, _>(&ex, &format!("contrastive {w}"), &c, &x, &y1, rel);
                let c = c.reduction(Reduction::Sum);
                compare::<f32, _>(&ex, &format!("contrastive sum {w}"), &c, &x, &y1, rel);
                let s = SupCon::new().temperature(0.5).distance(dist).tile(tile);
                compare::<f32, _>(&ex, &format!("supcon {w}"), &s, &x, &y1, rel);
            }
        }
        let c = Contrastive::new().distance(Distance::Cosine).pos_margin(0.9).neg_margin(0.1);
        compare::<f32, _>(&ex, "contrastive cosine margins", &c, &x, &y, rel);
        let s = SupCon::new().reduction(Reduction::None).tile(7);
        compare::<f32, _>(&ex, "supcon none", &s, &x, &y, rel);
        compare::<bf16, _>(&ex, "ms bf16", &MultiSimilarity::new(), &x, &y, 1e-5);
        compare::<f16, _>(&ex, "supcon f16", &SupCon::new(), &x, &y, 1e-5);
        compare::<f16, _>(&ex, "contrastive f16", &Contrastive::new().tile(9), &x, &y, 1e-5);
    }

    #[test]
    fn degenerate_batches_match_the_cpu() {
        let Some(ex) = emulator() else { return };
        let x = Array2::from_shape_fn((3, 4), |(i, j)| ((i * 4 + j) as f64 * 0.7).sin());
        // No positive pair, no negative pair (PML's zero rules), and one sample.
        for y in [ndarray::array![0_i64, 1, 2], ndarray::array![5_i64, 5, 5]] {
            compare::<f32, _>(&ex, &format!("ms {y}"), &MultiSimilarity::new(), &x, &y, 1e-5);
            compare::<f32, _>(&ex, &format!("ms miner {y}"), &MultiSimilarity::new().miner(true), &x, &y, 1e-5);
            compare::<f32, _>(&ex, &format!("supcon {y}"), &SupCon::new(), &x, &y, 1e-5);
            compare::<f32, _>(&ex, &format!("contrastive {y}"), &Contrastive::new(), &x, &y, 1e-5);
        }
        let one = Array2::from_elem((1, 3), 1.0_f32);
        for spec in [MultiSimilarity::new().pair_spec(), SupCon::new().pair_spec(), Contrastive::new().pair_spec()] {
            let out = run(&ex, &spec.unwrap(), one.view(), ndarray::array![0_i64].view(), true).unwrap();
            assert_eq!(out.value, 0.0);
            assert!(out.grad.unwrap().iter().all(|&g| g == 0.0));
        }
    }

    #[test]
    fn bad_input_is_rejected_like_the_cpu() {
        let x = Array2::<f32>::zeros((0, 3));
        assert!(matches!(check_inputs(&x.view(), &Array1::<i64>::zeros(0).view()), Err(Error::Empty { .. })));
        let x = Array2::<f32>::zeros((2, 0));
        assert!(matches!(check_inputs(&x.view(), &Array1::<i64>::zeros(2).view()), Err(Error::Shape { .. })));
        let x = Array2::from_elem((2, 2), f32::NAN);
        assert!(matches!(check_inputs(&x.view(), &Array1::<i64>::zeros(2).view()), Err(Error::NonFinite { .. })));
        let x = Array2::<f32>::zeros((2, 2));
        assert!(matches!(check_inputs(&x.view(), &Array1::<i64>::zeros(3).view()), Err(Error::Shape { .. })));
        assert!(matches!(MultiSimilarity::new().alpha(0.0).pair_spec(), Err(Error::Parameter { name: "alpha", .. })));
        assert!(matches!(SupCon::new().temperature(-1.0).pair_spec(), Err(Error::Parameter { .. })));
        assert_eq!(tile_rows(0, 10), 10);
        assert_eq!(tile_rows(0, 1 << 13), 2048);
        assert_eq!(tile_rows(0, 4096), 4096);
        assert_eq!(tile_rows(3, 10), 3);
        assert!(matches!(device_rows(0, 3), Err(Error::Empty { .. })));
        assert!(matches!(device_rows(12, 0), Err(Error::Shape { .. })));
        assert!(matches!(device_rows(12, 5), Err(Error::Shape { .. })));
        assert_eq!(device_rows(12, 4).unwrap(), 3);
        // The default tile keeps the workspace O(N · tile): 64 MiB of tile + 2 × 16 MiB at N = 8192, D = 512.
        let ws = workspace_bytes(&MultiSimilarity::new().pair_spec().unwrap(), 8192, 512, true);
        assert!(ws < 100 << 20, "{ws}");
    }

    #[test]
    fn views_stack_like_the_cpu() {
        let f = ndarray::Array3::from_shape_fn((2, 3, 2), |(b, v, k)| (100 * b + 10 * v + k) as f32);
        let (rows, l) = stack_views(f.view(), ndarray::array![7_i64, 9].view()).unwrap();
        let (cpu_rows, cpu_l) =
            losskit_losses::stack_views(f.mapv(f64::from).view(), ndarray::array![7_i64, 9].view()).unwrap();
        assert_eq!(rows.mapv(f64::from), cpu_rows);
        assert_eq!(l, cpu_l);
    }
}
