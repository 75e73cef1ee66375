//! Where the trainer's steps run: the [`TrainBackend`] hook and its CPU implementation, [`CpuBackend`].
//!
//! [`Trainer::fit_on`](crate::Trainer::fit_on) does everything that decides *what* is trained (validation, the
//! sampler, class weights, the seeded shuffling into [`Minibatches`], the epoch losses and the divergence check) and
//! hands each epoch's batches to a backend, which decides *where* each step (forward, loss and logits gradient,
//! backward, optimiser update) runs. [`CpuBackend`] is the trainer's own f64 loop; the facade crate `losskit`
//! provides a CUDA backend under its feature `cuda`. Same seed, same batches, whatever the backend.

use ndarray::{Array1, ArrayView1, ArrayView2, Axis};

use losskit_losses::{ClassLoss, DynClassLoss, Targets};
use losskit_samplers::LossReweight;
use losskit_tensor::{Error, Result};

use crate::model::Model;
use crate::optim::Optimizer;
use crate::prep::Minibatches;
use crate::trainer::Trainer;

/// The rows a backend trains on: after the sampler, with class weights spread over the rows.
#[derive(Clone, Copy, Debug)]
pub struct TrainSet<'a> {
    /// Features `[N, D]`, finite.
    pub x: ArrayView2<'a, f64>,
    /// Labels `[N]` in `0..C`.
    pub y: ArrayView1<'a, i64>,
    /// Per-sample weights wᵢ = w_{yᵢ} `[N]` when the training uses class weights.
    pub sample_weights: Option<ArrayView1<'a, f64>>,
}

/// Runs the steps of a training that [`Trainer::fit_on`](crate::Trainer::fit_on) drives.
///
/// The trainer calls [`check`](TrainBackend::check) once after validating its own configuration,
/// [`start`](TrainBackend::start) once with the prepared rows and the freshly initialised model, then
/// [`epoch`](TrainBackend::epoch) once per epoch and [`finish`](TrainBackend::finish) once at the end, after which
/// `model` must hold the trained parameters.
pub trait TrainBackend: Send {
    /// Short name for reports (`cpu`, `cuda:0`).
    fn name(&self) -> String;

    /// Validates the backend's own settings (the loss it will run, options it does not support).
    ///
    /// # Errors
    /// The backend's configuration errors.
    fn check(&self) -> Result<()>;

    /// Prepares the training of `model` on `data` under `trainer` (its optimiser, fresh; its batch size; its
    /// [`ModelSpec`](crate::ModelSpec), which a backend with its own model code may rely on: `model` is then expected
    /// to come from [`Trainer::build_model`]).
    ///
    /// # Errors
    /// The backend's errors (a model it cannot run, a device failure, ...).
    fn start(&mut self, model: &dyn Model, data: &TrainSet<'_>, trainer: &Trainer) -> Result<()>;

    /// One epoch: one optimiser step per batch of `batches`, in order. Returns each batch's loss value (the loss's
    /// reduction over the batch at the parameters before that step), in batch order.
    ///
    /// A backend may stop at the first non-finite batch loss (the trainer then reports divergence) or return it.
    ///
    /// # Errors
    /// The loss's errors; [`Error::Degenerate`] for a diverging loss; device errors.
    fn epoch(
        &mut self,
        model: &mut dyn Model,
        data: &TrainSet<'_>,
        batches: &Minibatches,
        epoch: usize,
    ) -> Result<Vec<f64>>;

    /// Leaves the trained parameters in `model`.
    ///
    /// # Errors
    /// Device errors.
    fn finish(&mut self, model: &mut dyn Model) -> Result<()>;
}

/// The CPU backend: every step in f64 on the host with the [`Model`]'s own forward and backward, the loss's
/// `compute` and the [`Optimizer`] built from the config — exactly the loop [`Trainer::fit`](crate::Trainer::fit)
/// has always run, optionally with loss-based sample reweighting.
#[derive(Debug)]
pub struct CpuBackend<'l> {
    loss: &'l dyn DynClassLoss,
    reweighting: Option<&'l LossReweight>,
    optimizer: Option<Box<dyn Optimizer>>,
}

impl<'l> CpuBackend<'l> {
    /// Trains with `loss`.
    pub fn new(loss: &'l dyn DynClassLoss) -> Self {
        Self { loss, reweighting: None, optimizer: None }
    }

    /// Trains with `loss` and, when given, loss-based sample reweighting at every step
    /// (see [`Trainer::fit_reweighted`](crate::Trainer::fit_reweighted)).
    pub fn reweighted(loss: &'l dyn DynClassLoss, reweighting: Option<&'l LossReweight>) -> Self {
        Self { loss, reweighting, optimizer: None }
    }
}

impl TrainBackend for CpuBackend<'_> {
    fn name(&self) -> String {
        "cpu".into()
    }

    fn check(&self) -> Result<()> {
        self.reweighting.map_or(Ok(()), LossReweight::check)
    }

    fn start(&mut self, model: &dyn Model, _data: &TrainSet<'_>, trainer: &Trainer) -> Result<()> {
        self.optimizer = Some(trainer.optimizer.build(model.params().len())?);
        Ok(())
    }

    fn epoch(
        &mut self,
        model: &mut dyn Model,
        data: &TrainSet<'_>,
        batches: &Minibatches,
        epoch: usize,
    ) -> Result<Vec<f64>> {
        let opt = self
            .optimizer
            .as_mut()
            .ok_or_else(|| Error::Input { what: "CpuBackend::epoch called before CpuBackend::start".into() })?;
        let (x, y) = (data.x, data.y);
        let mut values = Vec::with_capacity(batches.len());
        for idx in batches {
            let xb = x.select(Axis(0), idx);
            let yb: Array1<i64> = idx.iter().map(|&i| y[i]).collect();
            let mut wb: Option<Array1<f64>> = data.sample_weights.map(|w| idx.iter().map(|&i| w[i]).collect());
            let logits = model.forward(xb.view())?;
            if let Some(rw) = self.reweighting {
                let w = step_weights(self.loss, rw, logits.view(), yb.view(), epoch)?;
                wb = Some(match wb {
                    Some(c) => c * &w,
                    None => w,
                });
            }
            let out = <dyn DynClassLoss as ClassLoss<f64>>::compute(
                self.loss,
                logits.view(),
                Targets::Hard(yb.view()),
                wb.as_ref().map(|w| w.view()),
                true,
            )?;
            if !out.value.is_finite() {
                return Err(diverged(epoch, out.value));
            }
            let dlogits = out
                .grad
                .ok_or_else(|| Error::Input { what: "loss returned no gradient although one was requested".into() })?;
            let g = model.backward(xb.view(), dlogits.view())?;
            opt.step(model.params_mut(), g.params.view())?;
            values.push(out.value);
        }
        Ok(values)
    }

    fn finish(&mut self, _model: &mut dyn Model) -> Result<()> {
        Ok(())
    }
}

/// The reweighting of one step: per-sample losses (no class weights, no gradient) → [`LossReweight::batch_weights`].
fn step_weights(
    loss: &dyn DynClassLoss,
    rw: &LossReweight,
    logits: ArrayView2<'_, f64>,
    yb: ArrayView1<'_, i64>,
    epoch: usize,
) -> Result<Array1<f64>> {
    let out = <dyn DynClassLoss as ClassLoss<f64>>::compute(loss, logits, Targets::Hard(yb), None, false)?;
    let per_sample = out.per_sample.ok_or_else(|| Error::Input {
        what: format!("sample reweighting needs per-sample losses, and the loss {loss:?} reports none"),
    })?;
    if let Some(&bad) = per_sample.iter().find(|v| !v.is_finite()) {
        return Err(diverged(epoch, bad));
    }
    rw.batch_weights(per_sample.view())
}

/// The error for a non-finite training loss in `epoch` (0-based).
pub(crate) fn diverged(epoch: usize, value: f64) -> Error {
    Error::Degenerate {
        what: format!("training diverged: loss = {value} in epoch {}; lower the learning rate", epoch + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelSpec;
    use crate::optim::{OptimizerConfig, Sgd};
    use crate::trainer::tests::{DoubleRarest, TinyCe, blobs};
    use crate::trainer::{ClassWeights, History};

    /// Wraps the CPU backend and records what the trainer hands over: the rows, weights and every epoch's batches.
    #[derive(Debug)]
    struct Recording<'l> {
        inner: CpuBackend<'l>,
        rows: usize,
        weights: Option<Vec<f64>>,
        batches: Vec<Vec<Vec<usize>>>,
        finished: bool,
    }

    impl<'l> Recording<'l> {
        fn new(loss: &'l dyn DynClassLoss) -> Self {
            Self { inner: CpuBackend::new(loss), rows: 0, weights: None, batches: Vec::new(), finished: false }
        }
    }

    impl TrainBackend for Recording<'_> {
        fn name(&self) -> String {
            "recording".into()
        }
        fn check(&self) -> Result<()> {
            self.inner.check()
        }
        fn start(&mut self, model: &dyn Model, data: &TrainSet<'_>, trainer: &Trainer) -> Result<()> {
            self.rows = data.x.nrows();
            self.weights = data.sample_weights.map(|w| w.to_vec());
            self.inner.start(model, data, trainer)
        }
        fn epoch(
            &mut self,
            model: &mut dyn Model,
            data: &TrainSet<'_>,
            batches: &Minibatches,
            epoch: usize,
        ) -> Result<Vec<f64>> {
            self.batches.push(batches.iter().map(<[usize]>::to_vec).collect());
            self.inner.epoch(model, data, batches, epoch)
        }
        fn finish(&mut self, model: &mut dyn Model) -> Result<()> {
            self.finished = true;
            self.inner.finish(model)
        }
    }

    fn fit_recorded(t: &Trainer, cw: Option<&ClassWeights>) -> (Vec<f64>, History, Recording<'static>) {
        let (x, y) = blobs(&[20, 9, 13], 21);
        let mut m = t.build_model(2, 3).unwrap();
        let mut rec = Recording::new(&TinyCe);
        let h = t.fit_on(m.as_mut(), x.view(), y.view(), Some(&DoubleRarest), cw, &mut rec).unwrap();
        (m.params().to_vec(), h, rec)
    }

    #[test]
    fn the_cpu_backend_through_fit_on_is_fit_bit_for_bit() {
        let (x, y) = blobs(&[20, 9, 13], 21);
        let t = Trainer::new().epochs(5).batch_size(8).seed(7);
        for cw in [None, Some(&ClassWeights::Balanced)] {
            let mut m = t.build_model(2, 3).unwrap();
            let h = t.fit(m.as_mut(), x.view(), y.view(), &TinyCe, Some(&DoubleRarest), cw).unwrap();
            let (params, h2, rec) = fit_recorded(&t, cw);
            assert_eq!((m.params().to_vec(), h), (params, h2));
            assert!(rec.finished);
            // The backend sees the sampler's output (the rarest class doubled: 42 + 9 rows) and, with class
            // weights, one weight per row.
            assert_eq!(rec.rows, 51);
            assert_eq!(rec.weights.as_ref().map(Vec::len), cw.map(|_| 51));
        }
    }

    #[test]
    fn same_seed_same_batches_whatever_the_backend_sees() {
        let t = Trainer::new().epochs(3).batch_size(10).seed(11);
        let (_, _, a) = fit_recorded(&t, None);
        let (_, _, b) = fit_recorded(&t, None);
        assert_eq!(a.batches, b.batches);
        assert_eq!(a.batches.len(), 3);
        for epoch in &a.batches {
            // Each epoch is a permutation of the 51 rows in batches of 10 (the last one shorter).
            let mut all: Vec<usize> = epoch.concat();
            all.sort_unstable();
            assert_eq!(all, (0..51).collect::<Vec<_>>());
            assert_eq!(epoch.iter().map(Vec::len).collect::<Vec<_>>(), [10, 10, 10, 10, 10, 1]);
        }
        assert_ne!(a.batches[0], a.batches[1], "a fresh order every epoch");
        let (_, _, c) = fit_recorded(&t.seed(12), None);
        assert_ne!(a.batches, c.batches);
    }

    /// A backend that returns fixed batch losses and leaves the model alone.
    #[derive(Debug)]
    struct Fixed(Vec<f64>);

    impl TrainBackend for Fixed {
        fn name(&self) -> String {
            "fixed".into()
        }
        fn check(&self) -> Result<()> {
            Ok(())
        }
        fn start(&mut self, _: &dyn Model, _: &TrainSet<'_>, _: &Trainer) -> Result<()> {
            Ok(())
        }
        fn epoch(&mut self, _: &mut dyn Model, _: &TrainSet<'_>, _: &Minibatches, _: usize) -> Result<Vec<f64>> {
            Ok(self.0.clone())
        }
        fn finish(&mut self, _: &mut dyn Model) -> Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_trainer_weighs_batch_losses_and_catches_divergence_and_miscounts() {
        let (x, y) = blobs(&[4, 3, 3], 2);
        let t = Trainer::new().epochs(2).batch_size(4).model(ModelSpec::Linear);
        let fit = |values: Vec<f64>| {
            let mut m = t.build_model(2, 3).unwrap();
            t.fit_on(m.as_mut(), x.view(), y.view(), None, None, &mut Fixed(values))
        };
        // Batches of 4, 4 and 2 rows: (4·1 + 4·2 + 2·4) / 10 = 2.
        assert_eq!(fit(vec![1.0, 2.0, 4.0]).unwrap().epoch_loss, [2.0, 2.0]);
        let e = fit(vec![1.0, f64::NAN, 4.0]).unwrap_err();
        assert!(e.to_string().starts_with("training diverged: loss = NaN in epoch 1"), "{e}");
        let e = fit(vec![1.0]).unwrap_err();
        assert!(e.to_string().contains("backend fixed returned 1 batch losses for 3 batches"), "{e}");
        // The trainer's own validation comes first, whatever the backend.
        let sgd = Trainer::new().optimizer(OptimizerConfig::Sgd(Sgd::new().lr(-1.0)));
        let mut m = sgd.build_model(2, 3).unwrap();
        let e = sgd.fit_on(m.as_mut(), x.view(), y.view(), None, None, &mut Fixed(vec![])).unwrap_err();
        assert!(matches!(e, Error::Parameter { name: "lr", .. }), "{e}");
    }
}
