//! Small models, optimisers, the training loop, datasets and the arena (layer 2, over the losses, samplers and
//! metrics).
//!
//! - Models ([`Model`]): [`Linear`] softmax regression and a one-hidden-layer [`Mlp`] (ReLU or tanh), with
//!   hand-written backpropagation checked against finite differences; seeded Xavier/He initialisation.
//! - Optimisers ([`Optimizer`]): [`Sgd`] (momentum, Nesterov, weight decay) and [`Adam`] (L2 or decoupled weight
//!   decay) with PyTorch's update rules.
//! - Data preparation: [`Standardizer`], [`stratified_split`] (scikit-learn's `train_test_split(stratify=y)`),
//!   seeded [`Minibatches`].
//! - [`Trainer`]: minibatch training of any model with any registered classification loss, an optional
//!   [`Sampler`](losskit_samplers::Sampler) applied once before training and optional [`ClassWeights`]; the steps
//!   run on a [`TrainBackend`] ([`CpuBackend`] by default; the facade `losskit` has a CUDA one under feature `cuda`).
//! - [`datasets`]: the embedded UCI red wine quality data ([`datasets::wine_quality`], CC BY 4.0, Cortez et al.
//!   2009) and a CSV loader ([`datasets::load_csv`], from any `std::io::Read`).
//! - [`arena`]: trains the same model with several losses, samplers and class weightings over seeds and reports
//!   accuracy, balanced accuracy, macro-F1 and minority-class recall (mean ± std) as Markdown, CSV or text.
//!
//! ```
//! use losskit_losses::CrossEntropy;
//! use losskit_models::datasets::Dataset;
//! use losskit_models::{Linear, Model, OptimizerConfig, Sgd, Trainer};
//!
//! // Two separable points per class.
//! let x = ndarray::array![[0.0, 1.0], [0.2, 0.9], [1.0, 0.0], [0.9, 0.1]];
//! let y = ndarray::array![0_i64, 0, 1, 1];
//! let ds = Dataset::new("toy", x, y, vec!["a".into(), "b".into()], vec!["left".into(), "right".into()])?;
//! let mut model = Linear::new(2, 2, 0)?;
//! let trainer = Trainer::new().epochs(50).batch_size(2).optimizer(OptimizerConfig::Sgd(Sgd::new().lr(0.5)));
//! let history = trainer.fit(&mut model, ds.x.view(), ds.y.view(), &CrossEntropy::new(), None, None)?;
//! assert!(history.epoch_loss[49] < history.epoch_loss[0]);
//! assert_eq!(model.predict(ds.x.view())?, ds.y);
//! # Ok::<(), losskit_tensor::Error>(())
//! ```
//!
//! Everything random takes a seed (`Xoshiro256PlusPlus`); results do not depend on the thread count.
//! This crate never prints, reads files or parses arguments.
//!
//! # Features
//! None.
#![doc(test(attr(deny(warnings))))]

pub mod arena;
mod backend;
pub mod datasets;
mod model;
mod optim;
mod prep;
mod spherical;
#[cfg(test)]
mod testutil;
mod trainer;

pub use backend::{CpuBackend, TrainBackend, TrainSet};
pub use losskit_tensor::{Error, Result};
pub use model::{Activation, Gradients, Linear, Mlp, Model, ModelSpec};
pub use optim::{Adam, AdamState, Optimizer, OptimizerConfig, Sgd, SgdState};
pub use prep::{Minibatches, Split, Standardizer, derive_seed, shuffle, stratified_split};
pub use spherical::{DenseZOutput, SphericalZOutput, StepOutput, z_loss_spherical};
pub use trainer::{ClassWeights, History, Trainer, balanced_class_weights};
