//! Binary losses on scores (logits) `[N]` with targets `[N]` in [0, 1]: each loss is an element kernel (one score in,
//! its loss and derivative out); [`driver`] validates, runs it in parallel, weights and reduces.

pub(crate) mod driver;

pub(crate) mod anyloss;
pub(crate) mod batch;
pub(crate) mod binary_cross_entropy;
pub(crate) mod ensloss;

pub use anyloss::{AnyLoss, AnyMetric};
pub use binary_cross_entropy::BinaryCrossEntropy;
pub use ensloss::{EnsLoss, EnsLossState};
