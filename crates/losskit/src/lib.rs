//! losskit: losses, samplers and metrics for imbalanced, noisy-label and metric learning, with analytic gradients
//! (the facade over every layer).
//!
//! Each layer is re-exported under a module: [`tensor`] (numerics, errors), [`losses`] (every loss and the
//! registry), [`samplers`], [`metrics`], [`models`] (small models, trainer, datasets) and, with feature `cuda`,
//! `cuda` (the GPU backend). [`prelude`] brings the everyday names into scope.
//!
//! This crate holds no logic of its own beyond `cuda_train` (which translates the models' configs for the GPU
//! trainer of `losskit-cuda`, as neither of those crates may know the other) and must never depend on the CLI.
//!
//! # Features
//! * `cuda`: the CUDA backend (`losskit-cuda`); builds without a CUDA toolkit, needs a driver at run time. Among
//!   others `cuda::Gpu::linear_cross_entropy` (fused linear + cross-entropy, `cuda::LinearCrossEntropy`, whose
//!   `compute_cpu` is the CPU reference) and `cuda::Gpu::anyloss` / `anyloss_multiclass`. Also `cuda_train`:
//!   training on the GPU (`cuda_train::CudaBackend` for `models::Trainer::fit_on`, `cuda_train::CudaArena` for
//!   `models::arena::run_on`, behind `losskit arena --device cuda`).
#![doc(test(attr(deny(warnings))))]

pub use losskit_losses as losses;
pub use losskit_metrics as metrics;
pub use losskit_models as models;
pub use losskit_samplers as samplers;
pub use losskit_tensor as tensor;

#[cfg(feature = "cuda")]
pub use losskit_cuda as cuda;
#[cfg(feature = "cuda")]
pub mod cuda_train;

pub use losskit_tensor::{Error, Real, Reduction, Result};

/// The everyday names: loss traits and targets, the error type, reduction.
pub mod prelude {
    pub use losskit_losses::{BinaryLoss, ClassLoss, LossOutput, Targets};
    pub use losskit_samplers::Sampler;
    pub use losskit_tensor::{Error, Real, Reduction, Result};
}

/// The README's Rust example, compiled and run as a doc test.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The guide's Rust example, compiled and run as a doc test.
#[doc = include_str!("../../../docs/guide.md")]
#[cfg(doctest)]
pub struct GuideDoctests;
