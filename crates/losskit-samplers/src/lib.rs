//! Re-sampling and re-weighting for imbalanced data (layer 1, over `losskit-tensor`).
//!
//! Every over-, under- or combined sampler implements [`Sampler`]: it takes features [N, D] and integer class
//! labels [N] and returns a [`Resampled`] set (with `sample_indices` where the method keeps original rows).
//!
//! This crate must never depend on the losses, metrics, models, CUDA or CLI crates, print, or read files.
#![doc(test(attr(deny(warnings))))]

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

pub use losskit_tensor::{Error, Result};

/// The output of a sampler.
#[derive(Clone, Debug, PartialEq)]
pub struct Resampled {
    /// Features of the resampled set [M, D].
    pub x: Array2<f64>,
    /// Labels of the resampled set [M].
    pub y: Array1<i64>,
    /// For each output row, the input row it copies, where the method has them (imbalanced-learn's
    /// `sample_indices_`); `None` for methods that synthesise rows.
    pub sample_indices: Option<Vec<usize>>,
}

/// A sampler: a pure function of its config, the data and the seed.
pub trait Sampler: std::fmt::Debug + Send + Sync {
    /// Resamples (`x`, `y`). The same seed gives the same output, whatever the thread count.
    ///
    /// # Errors
    /// Shape, finiteness, strategy and parameter errors, each naming the argument.
    fn fit_resample(&self, x: ArrayView2<'_, f64>, y: ArrayView1<'_, i64>, seed: u64) -> Result<Resampled>;
}
