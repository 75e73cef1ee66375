//! Multiclass losses on logits [N, C]: each loss is a row kernel (one logit row in, the row's loss and its
//! gradient out, in one fused sweep); [`driver`] validates the inputs, runs the kernel over rows in parallel,
//! applies per-sample weights and the reduction, and scales the gradient.

pub(crate) mod driver;
pub(crate) mod rowmath;

pub(crate) mod cross_entropy;
pub(crate) mod focal;

pub use cross_entropy::CrossEntropy;
pub use focal::{Focal, SigmoidFocal};
