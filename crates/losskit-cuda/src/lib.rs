//! CUDA backend of losskit (beside layer 1, over `losskit-losses` and `losskit-tensor`): fused loss kernels through
//! cudarc, compiled by NVRTC at first use.
//!
//! [`Gpu`] is one device (context, stream, kernel cache). [`Gpu::new`] returns [`Error::Device`] (never panics) when
//! no driver or device is present, so code can fall back to the CPU. Losses take the same config structs as the CPU
//! crate: [`Gpu::cross_entropy`] computes value, per-sample losses and logits gradient of a
//! [`losskit_losses::CrossEntropy`] in one fused kernel, for `f32`, `bf16` and `f16` logits ([`GpuFloat`]) and
//! `i64`/`i32` targets ([`GpuLabel`]); [`CrossEntropyBatch`] keeps a problem on the device to launch and time it
//! repeatedly. [`Gpu::class_loss`] runs the rest of the softmax family (focal, GCE, MAE, sum-exponential, comp-sum,
//! LDR-KL with every `score_norm`, Z-loss; [`GpuClassLoss`]) and [`Gpu::binary_loss`] binary cross-entropy with logits
//! and sigmoid focal ([`GpuBinaryLoss`]) in the same fused style; [`Gpu::anyloss`] and [`Gpu::anyloss_multiclass`]
//! the batch-level AnyLoss; [`Gpu::linear_cross_entropy`] the fused linear + cross-entropy
//! ([`LinearCrossEntropy`]: the N × C logits never exist). [`Gpu::pair_loss`] runs the pairwise metric-learning
//! losses (multi-similarity, contrastive, SupCon; [`GpuPairLoss`]) on cuBLAS similarity tiles
//! ([`Gpu::pair_loss_device`] on embeddings already on the device), and
//! [`Gpu::kneighbors_self`] / [`Gpu::smote`] the exact kNN and SMOTE, identical to the CPU's. [`kernel_sources`],
//! [`compile_ptx`] and
//! [`compile_cubin`] expose the CUDA C so that it can be checked with NVRTC on a machine without a GPU.
//!
//! ```
//! use losskit_cuda::Gpu;
//! use losskit_losses::CrossEntropy;
//! match Gpu::new(0) {
//!     Ok(gpu) => {
//!         let logits = ndarray::array![[2.0_f32, 0.5, -1.0], [0.1, 0.2, 0.3]];
//!         let targets = ndarray::array![0_i64, 2];
//!         let out = gpu.cross_entropy(&CrossEntropy::default(), logits.view(), targets.view(), None, true)?;
//!         assert!(out.value > 0.0 && out.grad.is_some());
//!     }
//!     Err(e) => println!("no GPU: {e}"),
//! }
//! # Ok::<(), losskit_cuda::Error>(())
//! ```
//!
//! # Requirements
//! Nothing CUDA is needed to build: cudarc loads `libcuda.so` and `libnvrtc.so.13` at run time (CUDA 13 API).
//! Running needs an NVIDIA driver and NVRTC (from the CUDA toolkit or the `nvidia-cuda-nvrtc` PyPI wheel) on the
//! loader path.
#![doc(test(attr(deny(warnings))))]

mod binary;
mod blas;
mod cross_entropy;
mod device;
mod dtype;
mod family;
mod kernels;
mod knn;
mod linear_ce;
mod pairwise;
mod train;

pub use binary::{AnyLossPlan, BinarySpec, GpuBinaryLoss};
pub use cross_entropy::CrossEntropyBatch;
pub use device::{Gpu, compile_cubin, compile_ptx, driver_available, nvrtc_available};
pub use dtype::{GpuFloat, GpuLabel};
pub use family::{GpuClassLoss, KernelSpec};
pub use kernels::kernel_sources;
pub use knn::{KnnStats, MAX_K, smote_with_neighbors};
pub use linear_ce::{
    GemmCall, GemmOperand, KernelLaunch, LceBuffer, LceStep, LinearCeOutput, LinearCePlan, LinearCrossEntropy,
    MAX_TILE_ELEMENTS,
};
pub use losskit_tensor::{Error, Result};
pub use pairwise::{GpuPairLoss, PairDeviceOutput, PairLabels, PairOutput, PairSpec};
pub use train::{DeviceTrainer, NetActivation, NetSpec, TrainLoss, TrainOptimizer, TrainSetup, unsupported_loss};
