//! Evaluation metrics as mergeable states (layer 1, over `losskit-tensor`).
//!
//! Every metric is a state with `update` (one batch), `merge` (another state, so shards on many workers reduce to
//! one result) and `compute`/accessors; merging any split of the data gives the same result as one pass.
//!
//! This crate must never depend on the losses, samplers, models, CUDA or CLI crates, print, or read files.
#![doc(test(attr(deny(warnings))))]

mod confusion;

pub use confusion::ConfusionMatrix;
pub use losskit_tensor::{Error, Result};
