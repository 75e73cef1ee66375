//! Multiclass losses on logits [N, C]: each loss is a row kernel (one logit row in, the row's loss and its
//! gradient out, in one fused sweep); [`driver`] validates the inputs, runs the kernel over rows in parallel,
//! applies per-sample weights and the reduction, and scales the gradient.

pub(crate) mod driver;
pub(crate) mod rowmath;
#[cfg(target_arch = "x86_64")]
pub(crate) mod simd;

pub(crate) mod adversarial_comp_sum;
pub(crate) mod class_balanced;
pub(crate) mod comp_sum;
pub(crate) mod cross_entropy;
pub(crate) mod dice;
pub(crate) mod focal;
pub(crate) mod generalized_focal;
pub(crate) mod hinge;
pub(crate) mod indexed;
pub(crate) mod ldr;
pub(crate) mod tversky;
pub(crate) mod z_loss;

pub use adversarial_comp_sum::{AdversarialOutput, SmoothAdversarialCompSum};
pub use class_balanced::{CbBase, ClassBalanced, class_balanced_weights};
pub use comp_sum::{CompSum, GeneralizedCrossEntropy, Mae, Psi, SUM_EXP_LINEAR_ABOVE, SumExponential};
pub use cross_entropy::CrossEntropy;
pub use dice::{Dice, OverlapMode};
pub use focal::{Focal, SigmoidFocal};
pub use generalized_focal::{GeneralizedFocal, dequity_weight, dequity_weights};
pub use hinge::{CrammerSinger, WestonWatkins};
pub use ldr::{AldrKl, AldrKlState, LdrKl, LdrKlTopK, ScoreNorm};
pub use tversky::Tversky;
pub use z_loss::{Z_LOSS_VARIANCE_EPS, ZLoss};
