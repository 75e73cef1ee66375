//! Losses with analytic gradients (layer 1, over `losskit-tensor`).
//!
//! A loss is a plain config struct implementing one input-family trait ([`ClassLoss`], [`BinaryLoss`], ...);
//! [`LOSSES`] lists every loss with its parameters and paper, and [`registry::find`] builds one by name.
//!
//! This crate must never depend on the samplers, metrics, models, CUDA or CLI crates, print, or read files.
#![doc(test(attr(deny(warnings))))]

mod core;
pub mod registry;

pub use crate::core::{BinaryLoss, ClassLoss, DynBinaryLoss, DynClassLoss, LossOutput, Targets};
pub use losskit_tensor::{Error, Real, Reduction, Result};
pub use registry::{BuiltLoss, Family, LossEntry, ParamSpec, Params, Range};

/// Every registered loss, in `losskit list` order.
pub static LOSSES: &[LossEntry] = &[];
