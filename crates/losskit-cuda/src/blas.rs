//! cuBLAS GEMMs for the fused linear + cross-entropy: one handle on the [`Gpu`]'s stream with a workspace of its own
//! (so that its memory is known), FP32 SGEMM for f32 operands (no TF32) and `cublasGemmEx` with bf16 / f16 operands,
//! f32 accumulation (`CUBLAS_COMPUTE_32F`, tensor cores) and an f32 or 16-bit output. Every call is wrapped so that a
//! cuBLAS failure, or a panic of cudarc's loader, becomes [`Error::Device`].

use cudarc::cublas::sys::{self as cublas, cublasOperation_t, cudaDataType_t};
use cudarc::cublas::{CudaBlas, result};
use cudarc::driver::{CudaSlice, DevicePtr};
use losskit_tensor::{Error, Result};

use crate::device::{Gpu, device_error, guard};

/// Bytes of the workspace given to cuBLAS (`cublasSetWorkspace`): NVIDIA's recommendation for Hopper (32 MiB).
pub(crate) const CUBLAS_WORKSPACE_BYTES: usize = 32 << 20;

/// A cuBLAS handle on `gpu`'s stream in the default math mode: plain FP32 for f32 operands (no TF32, so products round
/// as an f32 CPU GEMM would, which the kNN's exactness bound and the 1e-5 agreement with the CPU assume), tensor cores
/// with f32 accumulation for 16-bit operands. Used by the pairwise losses, the kNN, the trainer and [`Blas`].
///
/// # Errors
/// [`Error::Device`] when libcublas cannot be loaded (checked first, so cudarc's loader never panics) or a cuBLAS
/// call fails.
pub(crate) fn fp32_handle(gpu: &Gpu) -> Result<CudaBlas> {
    // SAFETY: only tries to dlopen the candidate cuBLAS library names.
    let present = std::panic::catch_unwind(|| unsafe { cublas::is_culib_present() }).unwrap_or(false);
    if !present {
        return Err(Error::Device {
            what: "cuBLAS library not found (libcublas.so.13): put the CUDA toolkit's lib64 folder (or the \
                   nvidia-cublas wheel's lib folder) on LD_LIBRARY_PATH"
                .into(),
        });
    }
    guard("creating a cuBLAS handle", || {
        let blas = CudaBlas::new(gpu.stream().clone()).map_err(|e| device_error("creating a cuBLAS handle", e))?;
        // SAFETY: a valid handle from CudaBlas::new.
        unsafe { cublas::cublasSetMathMode(*blas.handle(), cublas::cublasMath_t::CUBLAS_DEFAULT_MATH) }
            .result()
            .map_err(|e| device_error("setting the cuBLAS math mode", e))?;
        Ok(blas)
    })
}

/// Element type of a GEMM operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Elem {
    F32,
    Bf16,
    F16,
}

impl Elem {
    /// The type named by a [`GpuFloat::NAME`](crate::GpuFloat::NAME).
    pub(crate) fn of(name: &str) -> Elem {
        match name {
            "bf16" => Elem::Bf16,
            "f16" => Elem::F16,
            _ => Elem::F32,
        }
    }

    pub(crate) fn bytes(self) -> usize {
        if self == Elem::F32 { 4 } else { 2 }
    }

    fn cuda(self) -> cudaDataType_t {
        match self {
            Elem::F32 => cudaDataType_t::CUDA_R_32F,
            Elem::Bf16 => cudaDataType_t::CUDA_R_16BF,
            Elem::F16 => cudaDataType_t::CUDA_R_16F,
        }
    }
}

/// One column-major GEMM C = α·op(A)·op(B) + β·C on raw device addresses (cuBLAS's convention: op(A) is m × k,
/// op(B) k × n, C m × n); A and B share one element type, C may be f32 or that type.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawGemm {
    pub trans_a: bool,
    pub trans_b: bool,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a: u64,
    pub lda: usize,
    pub b: u64,
    pub ldb: usize,
    pub c: u64,
    pub ldc: usize,
    pub ab: Elem,
    pub c_type: Elem,
    pub alpha: f32,
    pub beta: f32,
}

/// A cuBLAS handle bound to a [`Gpu`]'s stream, with its workspace.
pub(crate) struct Blas {
    blas: CudaBlas,
    _workspace: CudaSlice<u8>,
}

impl Blas {
    /// Creates the handle, sets the default (FP32, no TF32) math mode and a [`CUBLAS_WORKSPACE_BYTES`] workspace.
    ///
    /// # Errors
    /// [`Error::Device`] when libcublas cannot be loaded or a cuBLAS call fails.
    pub(crate) fn new(gpu: &Gpu) -> Result<Blas> {
        let blas = fp32_handle(gpu)?;
        guard("setting up the cuBLAS workspace", || {
            let stream = gpu.stream();
            let workspace = stream
                .alloc_zeros::<u8>(CUBLAS_WORKSPACE_BYTES)
                .map_err(|e| device_error("allocating the cuBLAS workspace", e))?;
            {
                let (ptr, _record) = workspace.device_ptr(stream);
                // SAFETY: a valid handle from CudaBlas::new and a live device allocation of the stated size, kept
                // alive as long as the handle (both are fields of the returned Blas; the handle is dropped first).
                unsafe {
                    cublas::cublasSetWorkspace_v2(*blas.handle(), ptr as *mut _, CUBLAS_WORKSPACE_BYTES)
                        .result()
                        .map_err(|e| device_error("setting the cuBLAS workspace", e))?;
                }
            }
            Ok(Blas { blas, _workspace: workspace })
        })
    }

    /// Enqueues one GEMM on the stream.
    ///
    /// # Safety
    /// `g.a`, `g.b` and `g.c` must address live device memory on this handle's stream holding the elements that the
    /// sizes and leading dimensions reach, and C must not overlap A or B.
    ///
    /// # Errors
    /// [`Error::Input`] for a dimension beyond 2³¹ − 1, [`Error::Device`] when cuBLAS fails.
    pub(crate) unsafe fn gemm(&self, g: &RawGemm) -> Result<()> {
        let int = |v: usize| i32::try_from(v).map_err(|_| Error::Input { what: format!("GEMM dimension {v} > 2^31") });
        let (m, n, k, lda, ldb, ldc) = (int(g.m)?, int(g.n)?, int(g.k)?, int(g.lda)?, int(g.ldb)?, int(g.ldc)?);
        let op = |t: bool| if t { cublasOperation_t::CUBLAS_OP_T } else { cublasOperation_t::CUBLAS_OP_N };
        let handle = *self.blas.handle();
        guard("cuBLAS GEMM", || {
            if g.ab == Elem::F32 && g.c_type == Elem::F32 {
                // SAFETY: the caller's contract; α and β are host scalars (the default pointer mode).
                unsafe {
                    result::sgemm(
                        handle,
                        op(g.trans_a),
                        op(g.trans_b),
                        m,
                        n,
                        k,
                        &g.alpha,
                        g.a as *const f32,
                        lda,
                        g.b as *const f32,
                        ldb,
                        &g.beta,
                        g.c as *mut f32,
                        ldc,
                    )
                }
                .map_err(|e| device_error("cublasSgemm", e))
            } else {
                // SAFETY: as above; with CUBLAS_COMPUTE_32F, α and β are f32.
                unsafe {
                    result::gemm_ex(
                        handle,
                        op(g.trans_a),
                        op(g.trans_b),
                        m,
                        n,
                        k,
                        (&g.alpha as *const f32).cast(),
                        g.a as *const _,
                        g.ab.cuda(),
                        lda,
                        g.b as *const _,
                        g.ab.cuda(),
                        ldb,
                        (&g.beta as *const f32).cast(),
                        g.c as *mut _,
                        g.c_type.cuda(),
                        ldc,
                        cublas::cublasComputeType_t::CUBLAS_COMPUTE_32F,
                        cublas::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
                    )
                }
                .map_err(|e| device_error("cublasGemmEx", e))
            }
        })
    }
}
