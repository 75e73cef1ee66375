//! Re-sampling and re-weighting for imbalanced data, with imbalanced-learn's semantics (layer 1, over
//! `losskit-tensor`).
//!
//! Every over-, under- or combined sampler implements [`Sampler`]: it takes features `[N, D]` and integer class
//! labels `[N]` and returns a [`Resampled`] set (with `sample_indices` where the method keeps original rows).
//! [`SamplingStrategy`] is imbalanced-learn's `sampling_strategy` (which classes, how many samples), resolved by
//! [`SamplingStrategy::resolve`] / [`check_sampling_strategy`] exactly as imbalanced-learn does, errors included.
//! The samplers are the over-samplers [`RandomOverSampler`] (bootstrap or smoothed bootstrap), [`Smote`],
//! [`BorderlineSmote`] and [`Adasyn`]; the under-samplers [`RandomUnderSampler`] and [`NearMiss`]; the cleaners
//! [`TomekLinks`] and [`EditedNearestNeighbours`]; and the combinations [`SmoteTomek`] and [`SmoteEnn`]. Every
//! neighbourhood comes from [`knn`], an exact, deterministic, parallel k-nearest-neighbour search (blocked GEMM
//! candidates re-ranked by direct distances; ties by index) with scikit-learn's neighbour sets.
//! [`compute_class_weight_balanced`] and [`effective_number_weights`] give class weights for re-weighting instead.
//! [`SAMPLERS`] lists every sampler with its parameters and paper, and [`registry::find`] builds one by name.
//!
//! ```
//! use losskit_samplers::{RandomOverSampler, Sampler, SamplingStrategy, class_counts};
//! let x = ndarray::array![[0.0, 0.0], [0.1, 0.2], [0.2, 0.1], [0.3, 0.3], [5.0, 5.0]];
//! let y = ndarray::array![0_i64, 0, 0, 0, 1];
//! // Grow class 1 to half the majority: int(0.5 · 4 − 1) = 1 new sample.
//! let ros = RandomOverSampler::new().sampling_strategy(SamplingStrategy::Ratio(0.5));
//! let out = ros.fit_resample(x.view(), y.view(), 42)?;
//! assert_eq!(class_counts(out.y.view()).into_iter().collect::<Vec<_>>(), vec![(0, 4), (1, 2)]);
//! assert_eq!(out.sample_indices, Some(vec![0, 1, 2, 3, 4, 4])); // originals first, then copies of row 4
//! // The same sampler by name, as the CLI builds it:
//! let by_name = losskit_samplers::registry::find("random-over")?
//!     .build_with(&[("sampling_strategy".to_string(), "0.5".to_string())])?;
//! assert_eq!(by_name.fit_resample(x.view(), y.view(), 42)?, out);
//! # Ok::<(), losskit_samplers::Error>(())
//! ```
//!
//! Randomness comes from a `Xoshiro256PlusPlus` seeded with the `seed` argument, drawn serially (points are then
//! computed in parallel); outputs depend on the seed only, never on the thread count. NumPy's random stream is not
//! reproduced, so which rows are drawn differs from imbalanced-learn for the same seed; class counts, output order
//! and every deterministic choice are identical (tested against fixtures from `tools/fixtures/gen_samplers.py` and
//! `tools/fixtures/gen_smote.py`, which drive imbalanced-learn with stub draws so that SMOTE, Borderline-SMOTE,
//! ADASYN and the combinations are compared bit for bit).
//!
//! This crate must never depend on the losses, metrics, models, CUDA or CLI crates, print, or read files.
//!
//! # Features
//! None.
#![doc(test(attr(deny(warnings))))]

mod adasyn;
mod batch;
mod borderline_smote;
mod class_weight;
mod cluster_centroids;
mod clustering;
mod combine;
mod draw;
mod edited_nearest_neighbours;
mod kmeans_smote;
pub mod knn;
mod near_miss;
mod random_over;
mod random_under;
mod rcal;
pub mod registry;
mod reweight;
mod smote;
mod smote_nc;
mod smoten;
mod strategy;
#[cfg(test)]
mod testutil;
mod tomek_links;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

pub use adasyn::Adasyn;
pub use batch::{ClassBalanced, DualSampler, MPerClass, batches};
pub use borderline_smote::{BorderlineKind, BorderlineSmote};
pub use class_weight::{
    compute_class_weight_balanced, compute_class_weight_balanced_weighted, effective_number_weights,
};
pub use cluster_centroids::{ClusterCentroids, Voting};
pub use clustering::{Clustering, Dbscan, KMeans, Subclasses, cluster_likelihoods, sbcl_subclasses};
pub use combine::{SmoteEnn, SmoteTomek};
pub use edited_nearest_neighbours::{EditedNearestNeighbours, KindSel};
pub use kmeans_smote::KMeansSmote;
pub use losskit_tensor::{Error, Result};
pub use near_miss::NearMiss;
pub use random_over::RandomOverSampler;
pub use random_under::RandomUnderSampler;
pub use rcal::{ClassGaussian, Rcal};
pub use registry::{BuildSampler, SAMPLERS, SamplerEntry, SamplerKind, SamplerParam};
pub use reweight::{LossReweight, ReweightStrategy, reweight};
pub use smote::Smote;
pub use smote_nc::SmoteNc;
pub use smoten::Smoten;
pub use strategy::{ClassCounts, SamplingKind, SamplingStrategy, check_sampling_strategy, class_counts};
pub use tomek_links::TomekLinks;

/// The output of a sampler.
#[derive(Clone, Debug, PartialEq)]
pub struct Resampled {
    /// Features of the resampled set `[M, D]`.
    pub x: Array2<f64>,
    /// Labels of the resampled set `[M]`.
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

    /// [`Sampler::fit_resample`] on an `x` the caller hands over: a sampler whose output begins with the input rows
    /// (the SMOTE family) may build the output in `x`'s own buffer instead of copying it, which saves the copy and
    /// the memory of a second `x`. The result is the same as `fit_resample(x.view(), y, seed)`, bit for bit; the
    /// default does exactly that.
    ///
    /// # Errors
    /// As [`Sampler::fit_resample`].
    fn fit_resample_owned(&self, x: Array2<f64>, y: ArrayView1<'_, i64>, seed: u64) -> Result<Resampled> {
        self.fit_resample(x.view(), y, seed)
    }
}
