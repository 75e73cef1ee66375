//! Embedding (pair-based) losses on embeddings [N, D] with integer labels `[N]`: each loss is a [`driver`] kernel
//! over one anchor's row of similarities or distances; the driver forms the rows through GEMM (whole, or in row
//! tiles that never hold the N × N matrix), reduces, and chains the gradient back through the GEMM and the row
//! normalisation. Semantics and defaults are pytorch-metric-learning 2.x's (distances, reducers, miners).

pub(crate) mod driver;

pub(crate) mod contrastive;
pub(crate) mod episodic;
pub(crate) mod hyperspherical;
pub(crate) mod memory;
pub(crate) mod metrix;
pub(crate) mod multi_similarity;
pub(crate) mod sbcl;
pub(crate) mod supcon;
pub(crate) mod triplet_margin;

pub use contrastive::Contrastive;
pub use driver::Distance;
pub use episodic::{
    EPISODIC_SQRT_EPS, EpisodeOutput, ICNN_EPS, IcnnLoss, IcnnMode, IcnnScore, ProtoTriplet, Prototypes, icnn_score,
};
pub use hyperspherical::CosineNcm;
pub use memory::CrossBatchMemory;
pub use metrix::{Metrix, MetrixBase, MetrixDraw, MetrixMode};
pub use multi_similarity::{MinedPairs, MultiSimilarity, MultiSimilarityMiner};
pub use sbcl::Sbcl;
pub use supcon::{SupCon, stack_views};
pub use triplet_margin::{TripletMargin, TripletMining};

use losskit_tensor::Result;

use crate::registry::{MetricForms, Params};

type BuildMetric = fn(&Params) -> Result<MetricForms>;

/// The embedding and proxy forms, by registry name.
const BUILDERS: &[(&str, BuildMetric)] = &[
    ("contrastive", contrastive::build_metric),
    ("multi-similarity", multi_similarity::build_metric),
    ("triplet-margin", triplet_margin::build_metric),
    ("supcon", supcon::build_metric),
    ("proxy-anchor", crate::proxy::proxy_anchor::build_metric),
    ("normalized-softmax", crate::proxy::normalized_softmax::build_metric),
    ("cosface", crate::proxy::cosface::build_metric),
    ("arcface", crate::proxy::arcface::build_metric),
    ("unpg", crate::proxy::unpg::build_metric),
    ("sbcl", sbcl::build_metric),
    ("metrix", metrix::build_metric),
    ("proto-triplet", episodic::build_metric_proto_triplet),
    ("icnn", episodic::build_metric_icnn),
];

/// Builds the embedding or proxy form of the loss `name` (empty forms for a loss of another family).
pub(crate) fn build_metric(name: &str, params: &Params) -> Result<MetricForms> {
    match BUILDERS.iter().find(|(n, _)| *n == name) {
        Some((_, build)) => build(params),
        None => Ok(MetricForms::default()),
    }
}
