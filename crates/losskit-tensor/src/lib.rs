//! Numerics at the bottom of losskit (layer 0): everything the loss, sampler, metric and model crates share.
//!
//! - [`Error`] and [`Result`]: the one error type of the whole stack; every variant names the offending argument and
//!   the value it received.
//! - [`Reduction`]: how per-sample values become one number (`Mean` = Σwᵢℓᵢ / Σwᵢ everywhere).
//! - [`Real`]: the float bound (f32 and f64) every numeric function takes.
//! - [`softmax`]: numerically stable row log-sum-exp, softmax and log-softmax, and an exp that vectorises.
//! - [`norm`]: row L2-normalisation and its backward.
//! - [`pairwise`]: cosine-similarity and squared-distance matrices through GEMM.
//! - [`check`]: validation helpers (shape, finiteness, label range, non-empty, parameter ranges).
//! - `gradcheck` (feature `testing`): the central finite-difference gradient checker every crate's tests use.
//!
//! This crate must never depend on any other losskit crate, print, read files or parse arguments.
//!
//! ```
//! use losskit_tensor::softmax;
//! let logits = ndarray::array![[1.0_f64, 2.0, 3.0], [1e4, 0.0, -1e4]];
//! let p = softmax::softmax_rows(logits.view())?;
//! assert!((p.row(0).sum() - 1.0).abs() < 1e-12);
//! assert!(p.iter().all(|v| v.is_finite()));
//! # Ok::<(), losskit_tensor::Error>(())
//! ```
//!
//! # Features
//! * `testing`: finite-difference gradient checker (`gradcheck`) and fixture helpers for tests.
#![doc(test(attr(deny(warnings))))]

pub mod alloc;
pub mod check;
mod error;
#[cfg(feature = "testing")]
pub mod gradcheck;
pub mod linalg;
pub mod norm;
pub mod pairwise;
pub mod pool;
mod real;
mod reduction;
pub mod softmax;

pub use error::{Error, Result};
pub use real::Real;
pub use reduction::Reduction;
