//! Training on the GPU (feature `cuda`): [`CudaBackend`], a [`TrainBackend`] for
//! [`Trainer::fit_on`](crate::models::Trainer::fit_on), and [`CudaArena`], an [`ArenaBackend`] for
//! [`arena::run_on`] (what `losskit arena --device cuda` uses).
//!
//! What runs where. The host (losskit-models, f64) does what decides what is trained, exactly as on the CPU: data
//! loading, the stratified split, standardisation, the sampler, class weights, the seeded initial weights and the
//! seeded minibatch order; afterwards it predicts the held-out rows and scores them. The GPU
//! ([`cuda::DeviceTrainer`], f32) does every training step: the training rows, the parameters and the optimiser state
//! are uploaded once and stay on the device; each step gathers its batch, runs the forward products (cuBLAS SGEMM,
//! bias and activation kernel), the fused loss kernel of losskit-cuda (value and logits gradient in one launch), the
//! backward products (cuBLAS) and the SGD / Adam update kernel. Per epoch the host uploads the row order and reads
//! the batch losses back once; the trained parameters come back at the end.
//!
//! Losses: those of [`cuda::TrainLoss::NAMES`]; any other (and a custom loss object) is an [`Error::Input`] naming
//! it and listing these. Sample reweighting (`Trainer::fit_reweighted`) stays on the CPU.
//!
//! ```no_run
//! use losskit::cuda_train::CudaArena;
//! use losskit::models::{arena, datasets};
//!
//! let cfg = arena::ArenaConfig::new(datasets::wine_quality()?).seeds(vec![0]);
//! let gpu = CudaArena::new(0)?; // Error::Device without a driver or device
//! let report = arena::run_on(&cfg, &gpu, &mut |_, _| {})?;
//! println!("{report}");
//! # Ok::<(), losskit::Error>(())
//! ```

use std::sync::Arc;

use losskit_cuda::{DeviceTrainer, Gpu, NetActivation, NetSpec, TrainLoss, TrainOptimizer, TrainSetup};
use losskit_models::arena::{self, ArenaBackend, LossChoice};
use losskit_models::{Activation, Minibatches, Model, ModelSpec, OptimizerConfig, TrainBackend, TrainSet, Trainer};
use losskit_tensor::{Error, Result};

use crate::cuda;

/// A [`TrainBackend`] that runs every step of a training on one GPU (see the [module docs](self)).
///
/// It trains the architecture of the trainer's [`ModelSpec`]; the model handed to the trainer must come from
/// [`Trainer::build_model`] (its sizes and parameter count are checked).
#[derive(Debug)]
pub struct CudaBackend {
    gpu: Arc<Gpu>,
    loss: TrainLoss,
    trainer: Option<DeviceTrainer>,
}

impl CudaBackend {
    /// A backend training with `loss` on `gpu`.
    pub fn new(gpu: Arc<Gpu>, loss: TrainLoss) -> Self {
        Self { gpu, loss, trainer: None }
    }

    /// A backend training with the registered loss `name` and `key=value` parameters (as `losskit list` shows).
    ///
    /// # Errors
    /// [`Error::UnknownName`] for an unknown loss, [`Error::Input`] for one without a GPU kernel
    /// ([`cuda::TrainLoss::NAMES`] lists those that have one), and the parameters' errors.
    pub fn registered(gpu: Arc<Gpu>, name: &str, params: &[(String, String)]) -> Result<Self> {
        let parsed = losskit_losses::registry::find(name)?.params(params)?;
        Ok(Self::new(gpu, TrainLoss::registered(name, &parsed)?))
    }
}

/// The device model of a [`ModelSpec`] for `d` features and `c` classes.
fn net(spec: ModelSpec, d: usize, c: usize) -> NetSpec {
    let hidden = match spec {
        ModelSpec::Linear => None,
        ModelSpec::Mlp { hidden, activation } => Some((
            hidden,
            match activation {
                Activation::Relu => NetActivation::Relu,
                Activation::Tanh => NetActivation::Tanh,
            },
        )),
    };
    NetSpec { n_features: d, hidden, n_classes: c }
}

fn optimizer(cfg: OptimizerConfig) -> TrainOptimizer {
    match cfg {
        OptimizerConfig::Sgd(s) => TrainOptimizer::Sgd {
            lr: s.lr,
            momentum: s.momentum,
            dampening: s.dampening,
            nesterov: s.nesterov,
            weight_decay: s.weight_decay,
        },
        OptimizerConfig::Adam(a) => TrainOptimizer::Adam {
            lr: a.lr,
            beta1: a.beta1,
            beta2: a.beta2,
            eps: a.eps,
            weight_decay: a.weight_decay,
            decoupled_weight_decay: a.decoupled_weight_decay,
        },
    }
}

impl TrainBackend for CudaBackend {
    fn name(&self) -> String {
        format!("cuda:{}", self.gpu.ordinal())
    }

    fn check(&self) -> Result<()> {
        Ok(())
    }

    fn start(&mut self, model: &dyn Model, data: &TrainSet<'_>, trainer: &Trainer) -> Result<()> {
        let net = net(trainer.model, model.n_features(), model.n_classes());
        if net.n_params() != model.params().len() {
            return Err(Error::Input {
                what: format!(
                    "the model has {} parameters but the trainer's model {} has {}: build it with Trainer::build_model",
                    model.params().len(),
                    trainer.model,
                    net.n_params()
                ),
            });
        }
        let params = model.params().to_vec();
        let setup = TrainSetup {
            net,
            loss: self.loss.clone(),
            optimizer: optimizer(trainer.optimizer),
            params: &params,
            x: data.x,
            y: data.y,
            sample_weights: data.sample_weights,
            max_batch: trainer.batch_size.min(data.x.nrows()).max(1),
        };
        self.trainer = Some(DeviceTrainer::new(&self.gpu, setup)?);
        Ok(())
    }

    fn epoch(
        &mut self,
        _model: &mut dyn Model,
        _data: &TrainSet<'_>,
        batches: &Minibatches,
        _epoch: usize,
    ) -> Result<Vec<f64>> {
        let trainer = self.trainer.as_mut().ok_or_else(not_started)?;
        let batches: Vec<&[usize]> = batches.iter().collect();
        trainer.epoch(&batches)
    }

    fn finish(&mut self, model: &mut dyn Model) -> Result<()> {
        let trainer = self.trainer.take().ok_or_else(not_started)?;
        let params = trainer.params()?;
        let mut theta = model.params_mut();
        if theta.len() != params.len() {
            return Err(Error::Input { what: "the model changed size during training".into() });
        }
        theta.iter_mut().zip(params).for_each(|(t, p)| *t = p);
        Ok(())
    }
}

fn not_started() -> Error {
    Error::Input { what: "CudaBackend used before TrainBackend::start".into() }
}

/// An [`ArenaBackend`] that trains every run of the arena on one GPU, one training after another.
#[derive(Debug, Clone)]
pub struct CudaArena {
    gpu: Arc<Gpu>,
    name: String,
}

impl CudaArena {
    /// Opens GPU `ordinal` (0 is the first).
    ///
    /// # Errors
    /// [`Error::Device`] when there is no driver, no such device, or no context can be created.
    pub fn new(ordinal: usize) -> Result<Self> {
        Ok(Self::with_gpu(Arc::new(Gpu::new(ordinal)?)))
    }

    /// Uses an opened GPU.
    pub fn with_gpu(gpu: Arc<Gpu>) -> Self {
        let name = match gpu.name() {
            Ok(n) => format!("cuda:{} ({n})", gpu.ordinal()),
            Err(_) => format!("cuda:{}", gpu.ordinal()),
        };
        Self { gpu, name }
    }

    /// The GPU.
    pub fn gpu(&self) -> &Arc<Gpu> {
        &self.gpu
    }
}

impl ArenaBackend for CudaArena {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn parallel(&self) -> bool {
        false
    }

    fn backend(&self, loss: &LossChoice, class_counts: &[usize]) -> Result<Box<dyn TrainBackend>> {
        let loss = match arena::loss_params(loss, Some(class_counts))? {
            Some((name, params)) => TrainLoss::registered(name, &params)?,
            None => {
                return Err(Error::Input {
                    what: format!(
                        "a custom loss object cannot train on the GPU; use a registered loss: {}",
                        cuda::TrainLoss::NAMES.join(", ")
                    ),
                });
            }
        };
        Ok(Box::new(CudaBackend::new(Arc::clone(&self.gpu), loss)))
    }
}
