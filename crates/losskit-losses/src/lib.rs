//! Losses with analytic gradients (layer 1, over `losskit-tensor`).
//!
//! A loss is a plain config struct implementing one input-family trait: [`CrossEntropy`] and [`Focal`] are
//! [`ClassLoss`]es on logits [N, C], [`BinaryCrossEntropy`] and [`SigmoidFocal`] are [`BinaryLoss`]es on scores `[N]`.
//! Every `compute` returns a [`LossOutput`]: the reduced value, the per-sample values and, when asked, the gradient
//! with respect to the logits or scores. [`LOSSES`] lists every loss with its parameters and paper, and
//! [`registry::find`] builds one by name (what the `losskit loss` command and the shared test suites use).
//!
//! The multiclass losses run on one shared driver: a loss is a row kernel that computes a row's loss and gradient in
//! one fused sweep (maximum, then exponentials and their sum, then the gradient); the driver validates the inputs,
//! runs the rows in parallel with rayon in fixed chunks (so the value is the same bit for bit for any number of
//! threads), applies per-sample weights and the [`Reduction`], and writes the gradient once, already scaled.
//!
//! ```
//! use losskit_losses::{ClassLoss, CrossEntropy, Focal, Reduction, Targets};
//! let logits = ndarray::array![[2.0_f64, 0.5, -1.0], [0.1, 0.2, 0.3], [1.0, 1.0, 1.0]];
//! let labels = [0, 2, -100]; // -100 is ignored, as in PyTorch
//! let ce = CrossEntropy::new().label_smoothing(0.1).compute(logits.view(), Targets::hard(&labels), None, true)?;
//! assert!(ce.grad.is_some_and(|g| g.row(2).iter().all(|&v| v == 0.0)));
//!
//! // Focal loss with γ = 0 is cross-entropy.
//! let plain = CrossEntropy::new().compute(logits.view(), Targets::hard(&labels), None, false)?;
//! let focal = Focal::new().gamma(0.0).compute(logits.view(), Targets::hard(&labels), None, false)?;
//! assert!((plain.value - focal.value).abs() < 1e-12);
//!
//! // The same loss by name, as the command line builds it.
//! let entry = losskit_losses::registry::find("cross-entropy")?;
//! let mut params = entry.params(&[("label_smoothing".into(), "0.1".into())])?;
//! params.set_reduction(Reduction::Mean);
//! let built = (entry.build)(&params)?;
//! let loss = built.class.ok_or(losskit_losses::Error::Input { what: "no multiclass form".into() })?;
//! let by_name = ClassLoss::<f64>::compute(loss.as_ref(), logits.view(), Targets::hard(&labels), None, false)?;
//! assert_eq!(by_name.value, ce.value);
//! # Ok::<(), losskit_losses::Error>(())
//! ```
//!
//! # Features
//! None: the crate is CPU-only; `losskit-cuda` offers the same configs on the GPU.
//!
//! This crate must never depend on the samplers, metrics, models, CUDA or CLI crates, print, or read files.
#![doc(test(attr(deny(warnings))))]

mod binary;
mod classification;
mod core;
mod embedding;
mod isa;
mod proxy;
pub mod registry;

pub use crate::binary::BinaryCrossEntropy;
pub use crate::binary::{AnyLoss, AnyMetric, EnsLoss, EnsLossState};
pub use crate::classification::{
    AdversarialOutput, AldrKl, AldrKlState, CbBase, ClassBalanced, CompSum, CrammerSinger, GeneralizedCrossEntropy,
    GeneralizedFocal, LdrKl, LdrKlTopK, Mae, Psi, SUM_EXP_LINEAR_ABOVE, ScoreNorm, SmoothAdversarialCompSum,
    SumExponential, WestonWatkins, Z_LOSS_VARIANCE_EPS, ZLoss, class_balanced_weights, dequity_weight, dequity_weights,
};
pub use crate::classification::{CrossEntropy, Focal, SigmoidFocal};
pub use crate::classification::{Dice, OverlapMode, Tversky};
pub use crate::core::{BinaryLoss, ClassLoss, DynBinaryLoss, DynClassLoss, LossOutput, Targets};
pub use crate::core::{
    DynEmbeddingLoss, DynProxyLoss, EmbeddingLoss, EmbeddingOutput, ProxyLoss, ProxyOutput, Reference,
};
pub use crate::embedding::{
    Contrastive, Distance, MinedPairs, MultiSimilarity, MultiSimilarityMiner, SupCon, TripletMargin, TripletMining,
    stack_views,
};
pub use crate::embedding::{CosineNcm, CrossBatchMemory, Sbcl};
pub use crate::embedding::{
    EPISODIC_SQRT_EPS, EpisodeOutput, ICNN_EPS, IcnnLoss, IcnnMode, IcnnScore, ProtoTriplet, Prototypes, icnn_score,
};
pub use crate::embedding::{Metrix, MetrixBase, MetrixDraw, MetrixMode};
pub use crate::proxy::{ArcFace, CosFace, NormalizedSoftmax, ProxyAnchor};
pub use crate::proxy::{Unpg, UnpgBase, box_and_whisker};
pub use losskit_tensor::{Error, Real, Reduction, Result};
pub use registry::MetricForms;
pub use registry::{BuiltLoss, Family, LossEntry, ParamSpec, Params, Range};

/// Every registered loss, in `losskit list` order.
pub static LOSSES: &[LossEntry] = &[
    classification::cross_entropy::ENTRY,
    binary::binary_cross_entropy::ENTRY,
    classification::focal::ENTRY,
    classification::comp_sum::GCE_ENTRY,
    classification::comp_sum::MAE_ENTRY,
    classification::comp_sum::SUM_EXP_ENTRY,
    classification::comp_sum::COMP_SUM_ENTRY,
    classification::z_loss::ENTRY,
    classification::ldr::LDR_ENTRY,
    classification::ldr::ALDR_ENTRY,
    classification::ldr::TOP_K_ENTRY,
    classification::hinge::CS_ENTRY,
    classification::hinge::WW_ENTRY,
    classification::class_balanced::ENTRY,
    classification::generalized_focal::ENTRY,
    binary::anyloss::ENTRY,
    classification::dice::ENTRY,
    classification::tversky::ENTRY,
    binary::ensloss::ENTRY,
    embedding::contrastive::ENTRY,
    embedding::multi_similarity::ENTRY,
    embedding::triplet_margin::ENTRY,
    embedding::supcon::ENTRY,
    proxy::proxy_anchor::ENTRY,
    proxy::normalized_softmax::ENTRY,
    proxy::cosface::ENTRY,
    proxy::arcface::ENTRY,
    proxy::unpg::ENTRY,
    embedding::sbcl::ENTRY,
    embedding::metrix::ENTRY,
    embedding::episodic::PROTO_TRIPLET_ENTRY,
    embedding::episodic::ICNN_ENTRY,
];
