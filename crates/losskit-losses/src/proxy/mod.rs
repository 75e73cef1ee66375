//! Proxy losses: embeddings [N, D] with labels in `0..C` against one learnable proxy (class weight) per class
//! [C, D]. Both sides are L2-normalised, [`driver`] computes their cosine matrix with one GEMM, a loss is a kernel
//! over it (row-wise margin softmax, or proxy-wise for proxy-anchor), and the driver chains the gradient back to
//! the embeddings and the proxies.

pub(crate) mod driver;

pub(crate) mod arcface;
pub(crate) mod cosface;
pub(crate) mod normalized_softmax;
pub(crate) mod proxy_anchor;
pub(crate) mod unpg;

pub use arcface::ArcFace;
pub use cosface::CosFace;
pub use normalized_softmax::NormalizedSoftmax;
pub use proxy_anchor::ProxyAnchor;
pub use unpg::{Unpg, UnpgBase, box_and_whisker};
