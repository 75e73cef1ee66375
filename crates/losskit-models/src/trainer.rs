//! The minibatch training loop: any [`Model`], any registered classification loss, an optional sampler, optional
//! class weights and optional loss-based sample reweighting.

use ndarray::{Array1, ArrayView1, ArrayView2};
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;

use losskit_losses::DynClassLoss;
use losskit_samplers::{LossReweight, Sampler};
use losskit_tensor::{Error, Result, check};

use crate::backend::{CpuBackend, TrainBackend, TrainSet, diverged};
use crate::model::{Model, ModelSpec};
use crate::optim::OptimizerConfig;
use crate::prep::{Minibatches, derive_seed};

/// Seed streams (see [`derive_seed`]): the arena's split uses 0.
pub(crate) const STREAM_SPLIT: u64 = 0;
const STREAM_SAMPLER: u64 = 1;
const STREAM_INIT: u64 = 2;
const STREAM_SHUFFLE: u64 = 3;

/// Per-class weights of the loss.
#[derive(Clone, Debug, PartialEq)]
pub enum ClassWeights {
    /// scikit-learn's `class_weight="balanced"`: w_k = n / (K · n_k) over the K classes present in the training labels
    /// the model sees (after the sampler, as in an imbalanced-learn pipeline); 0 for a class with no training row.
    Balanced,
    /// Given weights `[C]`, finite and ≥ 0.
    Given(Array1<f64>),
}

/// sklearn's `compute_class_weight("balanced", classes=present, y=y)` spread over `0..n_classes`:
///
/// ```text
/// w_k = n / (K · n_k)  for each class k with n_k > 0 (K = the number of such classes),   w_k = 0 otherwise
/// ```
/// (computed by [`losskit_samplers::compute_class_weight_balanced`] on the classes present).
///
/// # Errors
/// [`Error::LabelOutOfRange`] for a label outside `0..n_classes`; [`Error::Empty`] for empty `y`.
pub fn balanced_class_weights(y: ArrayView1<'_, i64>, n_classes: usize) -> Result<Array1<f64>> {
    check::labels("y", y, n_classes, None)?;
    let counts = class_counts(y, n_classes);
    let present: Vec<i64> = (0..n_classes).filter(|&k| counts[k] > 0).map(|k| k as i64).collect();
    let w = losskit_samplers::compute_class_weight_balanced(y, &present)?;
    let mut out = Array1::zeros(n_classes);
    for (&k, &wk) in present.iter().zip(&w) {
        out[k as usize] = wk;
    }
    Ok(out)
}

/// Number of rows of each class `0..n_classes` (labels must already be in range).
pub(crate) fn class_counts(y: ArrayView1<'_, i64>, n_classes: usize) -> Vec<usize> {
    let mut counts = vec![0; n_classes];
    for &label in y {
        if let Some(c) = usize::try_from(label).ok().and_then(|l| counts.get_mut(l)) {
            *c += 1;
        }
    }
    counts
}

/// What [`Trainer::fit`] reports.
#[derive(Clone, Debug, PartialEq)]
pub struct History {
    /// Training loss per epoch: the mean of the minibatch losses weighted by minibatch size.
    pub epoch_loss: Vec<f64>,
    /// Rows trained on (after the sampler).
    pub n_train: usize,
    /// Rows per class trained on (after the sampler).
    pub class_counts: Vec<usize>,
    /// The class weights used, if any.
    pub class_weights: Option<Array1<f64>>,
}

/// Minibatch training configuration and loop.
///
/// Each epoch visits the training rows in a fresh seeded order, in batches of `batch_size` (the last one shorter),
/// and takes one optimiser step per batch on the batch loss (its reduction, normally the weighted mean).
/// Everything random (sampler, initialisation, shuffling) is drawn from streams derived from `seed`, and the loop is
/// sequential, so a seed gives bit-identical results whatever the thread count.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Trainer {
    /// Passes over the training set (default 100).
    pub epochs: usize,
    /// Rows per minibatch (default 64).
    pub batch_size: usize,
    /// Optimiser (default Adam with lr = 1e-2).
    pub optimizer: OptimizerConfig,
    /// Seed of every random step (default 0).
    pub seed: u64,
    /// Model that [`Trainer::build_model`] creates (default an MLP with 32 ReLU units).
    pub model: ModelSpec,
}

impl Default for Trainer {
    fn default() -> Self {
        Self {
            epochs: 100,
            batch_size: 64,
            optimizer: OptimizerConfig::default(),
            seed: 0,
            model: ModelSpec::default(),
        }
    }
}

impl Trainer {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the number of epochs (default 100).
    pub fn epochs(mut self, epochs: usize) -> Self {
        self.epochs = epochs;
        self
    }
    /// Sets the minibatch size (default 64).
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }
    /// Sets the optimiser (default Adam, lr = 1e-2).
    pub fn optimizer(mut self, optimizer: OptimizerConfig) -> Self {
        self.optimizer = optimizer;
        self
    }
    /// Sets the seed (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Sets the model built by [`Trainer::build_model`] (default `mlp(32, relu)`).
    pub fn model(mut self, model: ModelSpec) -> Self {
        self.model = model;
        self
    }

    /// Validates the configuration.
    ///
    /// # Errors
    /// [`Error::Parameter`] for 0 epochs, batch size 0, a hidden width of 0 or an invalid optimiser.
    pub fn check(&self) -> Result<()> {
        if self.epochs == 0 {
            return Err(Error::Parameter { name: "epochs", value: 0.0, reason: "must be ≥ 1" });
        }
        if self.batch_size == 0 {
            return Err(Error::Parameter { name: "batch_size", value: 0.0, reason: "must be ≥ 1" });
        }
        if let ModelSpec::Mlp { hidden: 0, .. } = self.model {
            return Err(Error::Parameter { name: "hidden", value: 0.0, reason: "must be ≥ 1" });
        }
        self.optimizer.check()
    }

    /// Builds [`Trainer::model`] for `n_features` inputs and `n_classes` classes, initialised from a stream of
    /// `seed`.
    ///
    /// # Errors
    /// As [`ModelSpec::build`].
    pub fn build_model(&self, n_features: usize, n_classes: usize) -> Result<Box<dyn Model>> {
        self.model.build(n_features, n_classes, derive_seed(self.seed, STREAM_INIT))
    }

    /// Trains `model` on `x` `[N, D]` with labels `y` `[N]` in `0..C` (C = `model.n_classes()`).
    ///
    /// The `sampler`, when given, resamples the training set once before training (as an imbalanced-learn
    /// pipeline does at `fit`); `class_weights` become per-sample weights wᵢ = w_{yᵢ} passed to the loss, so with the
    /// mean reduction each batch loss is Σᵢ wᵢℓᵢ / Σᵢ wᵢ (PyTorch's `CrossEntropyLoss(weight=…)`).
    ///
    /// # Errors
    /// [`Error::Shape`], [`Error::Empty`], [`Error::NonFinite`], [`Error::LabelOutOfRange`] for bad data;
    /// configuration errors as [`Trainer::check`]; the loss's and sampler's own errors; [`Error::Degenerate`] when the
    /// training loss becomes NaN or infinite (diverging learning rate).
    pub fn fit(
        &self,
        model: &mut dyn Model,
        x: ArrayView2<'_, f64>,
        y: ArrayView1<'_, i64>,
        loss: &dyn DynClassLoss,
        sampler: Option<&dyn Sampler>,
        class_weights: Option<&ClassWeights>,
    ) -> Result<History> {
        self.fit_reweighted(model, x, y, loss, sampler, class_weights, None)
    }

    /// [`Trainer::fit`] with optional dynamic loss-based sample reweighting (Sow et al. 2025) at every step.
    ///
    /// With `sample_reweighting = Some(rw)`, each step computes the batch's per-sample losses ℓᵢ (the loss's
    /// `per_sample`, without class weights) at the current parameters, turns them into weights with the chosen
    /// strategy, temperature and δ, and trains on the loss with per-sample weights cᵢ·w̃ᵢ:
    ///
    /// ```text
    /// w̃ = B · softmax(f(ℓ̂)/r)       (LossReweight::batch_weights: mean 1 over the batch of B rows)
    /// L = Σᵢ cᵢw̃ᵢℓᵢ / Σᵢ cᵢw̃ᵢdᵢ      (the loss's Mean reduction; without class weights = Σᵢ wᵢℓᵢ, the paper's)
    /// ∂L/∂θ = Σᵢ (∂L/∂ℓᵢ)·∂ℓᵢ/∂θ     with w̃ held constant
    /// ```
    /// where cᵢ = the class weight of row i (1 without `class_weights`) and dᵢ the loss's own denominator weight.
    /// As in the paper, **the weights are treated as constants**: no gradient flows through w̃ (they are recomputed
    /// from the losses at each step). The uniform strategy gives w̃ᵢ = 1.0 exactly, so it trains exactly as
    /// [`Trainer::fit`]. `None` is [`Trainer::fit`].
    ///
    /// Cost: one extra loss evaluation (without gradient) per step, for the per-sample losses.
    ///
    /// # Errors
    /// As [`Trainer::fit`]; the reweighting's parameter errors ([`LossReweight::check`]); [`Error::Input`] when the
    /// loss reports no per-sample losses.
    ///
    /// # References
    /// Sow, Lin, Liang, Chi (2025), *Dynamic Loss-Based Sample Reweighting for Improved Large Language Model
    /// Pretraining*, ICLR, arXiv:2502.06733.
    pub fn fit_reweighted(
        &self,
        model: &mut dyn Model,
        x: ArrayView2<'_, f64>,
        y: ArrayView1<'_, i64>,
        loss: &dyn DynClassLoss,
        sampler: Option<&dyn Sampler>,
        class_weights: Option<&ClassWeights>,
        sample_reweighting: Option<&LossReweight>,
    ) -> Result<History> {
        let mut backend = CpuBackend::reweighted(loss, sample_reweighting);
        self.fit_on(model, x, y, sampler, class_weights, &mut backend)
    }

    /// [`Trainer::fit`] with the steps run by `backend` ([`CpuBackend`] is [`Trainer::fit`] itself; the facade
    /// crate `losskit` has a CUDA backend under feature `cuda`). The loss is the backend's.
    ///
    /// Everything that decides what is trained happens here, identically for every backend: validation, the
    /// sampler, class weights (as per-sample weights), the seeded order of the minibatches, the epoch losses
    /// (each the mean of the batch losses weighted by batch size) and the divergence check. So a seed gives the same
    /// resampled rows and the same batches on every backend.
    ///
    /// # Errors
    /// As [`Trainer::fit`]; the backend's own errors ([`TrainBackend::check`], [`TrainBackend::start`], ...).
    pub fn fit_on(
        &self,
        model: &mut dyn Model,
        x: ArrayView2<'_, f64>,
        y: ArrayView1<'_, i64>,
        sampler: Option<&dyn Sampler>,
        class_weights: Option<&ClassWeights>,
        backend: &mut dyn TrainBackend,
    ) -> Result<History> {
        losskit_tensor::pool::on_worker(|| {
            self.check()?;
            backend.check()?;
            let (d, c) = (model.n_features(), model.n_classes());
            check::non_empty("x", x.nrows())?;
            check::shape("x", x.shape(), &[None, Some(d)])?;
            check::shape("y", y.shape(), &[Some(x.nrows())])?;
            check::finite("x", &x)?;
            check::labels("y", y, c, None)?;

            let resampled = match sampler {
                Some(s) => {
                    let r = s.fit_resample(x, y, derive_seed(self.seed, STREAM_SAMPLER))?;
                    check::non_empty("resampled x", r.x.nrows())?;
                    check::shape("resampled x", r.x.shape(), &[None, Some(d)])?;
                    check::shape("resampled y", r.y.shape(), &[Some(r.x.nrows())])?;
                    check::finite("resampled x", &r.x)?;
                    check::labels("resampled y", r.y.view(), c, None)?;
                    Some(r)
                }
                None => None,
            };
            let (x, y) = match &resampled {
                Some(r) => (r.x.view(), r.y.view()),
                None => (x, y),
            };

            let cw = match class_weights {
                None => None,
                Some(ClassWeights::Balanced) => Some(balanced_class_weights(y, c)?),
                Some(ClassWeights::Given(w)) => {
                    check::weights("class_weights", w.view(), c)?;
                    Some(w.clone())
                }
            };
            let sample_w: Option<Array1<f64>> = cw.as_ref().map(|w| y.iter().map(|&k| w[k as usize]).collect());

            let n = x.nrows();
            let data = TrainSet { x, y, sample_weights: sample_w.as_ref().map(|w| w.view()) };
            backend.start(model, &data, self)?;
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(derive_seed(self.seed, STREAM_SHUFFLE));
            let mut epoch_loss = Vec::with_capacity(self.epochs);
            for epoch in 0..self.epochs {
                let batches = Minibatches::new(n, self.batch_size, Some(&mut rng))?;
                let values = backend.epoch(model, &data, &batches, epoch)?;
                if values.len() != batches.len() {
                    return Err(Error::Input {
                        what: format!(
                            "backend {} returned {} batch losses for {} batches",
                            backend.name(),
                            values.len(),
                            batches.len()
                        ),
                    });
                }
                let mut total = 0.0;
                for (idx, &value) in batches.iter().zip(&values) {
                    if !value.is_finite() {
                        return Err(diverged(epoch, value));
                    }
                    total += value * idx.len() as f64;
                }
                epoch_loss.push(total / n as f64);
            }
            backend.finish(model)?;
            if let Some((index, &value)) = model.params().iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(Error::NonFinite { arg: "model parameters", index, value });
            }
            Ok(History { epoch_loss, n_train: n, class_counts: class_counts(y, c), class_weights: cw })
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::Linear;
    use crate::optim::{Adam, Sgd};
    use crate::testutil::assert_all_close;
    use losskit_losses::LossOutput;
    use losskit_losses::{ClassLoss, Targets};
    use losskit_samplers::Resampled;
    use losskit_tensor::Real;
    use ndarray::Axis;
    use ndarray::{Array2, Ix2, array};
    use rand::RngExt;

    /// Softmax cross-entropy with per-sample weights and the mean reduction Σwℓ/Σw: the tests' own loss, so the
    /// trainer is tested independently of losskit-losses.
    #[derive(Debug, Clone, Copy, Default)]
    pub(crate) struct TinyCe;

    impl<F: Real> ClassLoss<F> for TinyCe {
        fn compute(
            &self,
            logits: ArrayView2<'_, F>,
            targets: Targets<'_, F>,
            weights: Option<ArrayView1<'_, F>>,
            grad: bool,
        ) -> Result<LossOutput<F, Ix2>> {
            let Targets::Hard(y) = targets else {
                return Err(Error::Input { what: "hard targets only".into() });
            };
            let (n, c) = logits.dim();
            let w: Vec<f64> = (0..n).map(|i| weights.map_or(1.0, |w| w[i].f64())).collect();
            let wsum: f64 = w.iter().sum();
            let mut value = 0.0;
            let mut per_sample = Array1::<F>::zeros(n);
            let mut g = Array2::<F>::zeros((n, c));
            for i in 0..n {
                let row: Vec<f64> = logits.row(i).iter().map(|v| v.f64()).collect();
                let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
                let t = y[i] as usize;
                value += w[i] * (lse - row[t]);
                per_sample[i] = F::c(w[i] * (lse - row[t]));
                for j in 0..c {
                    let p = (row[j] - lse).exp();
                    g[[i, j]] = F::c(w[i] * (p - if j == t { 1.0 } else { 0.0 }) / wsum);
                }
            }
            Ok(LossOutput { value: F::c(value / wsum), per_sample: Some(per_sample), grad: grad.then_some(g) })
        }
    }

    /// Duplicates every row of the rarest class (a trivial deterministic over-sampler for the tests).
    #[derive(Debug)]
    pub(crate) struct DoubleRarest;

    impl Sampler for DoubleRarest {
        fn fit_resample(&self, x: ArrayView2<'_, f64>, y: ArrayView1<'_, i64>, _seed: u64) -> Result<Resampled> {
            let k = y.iter().copied().max().unwrap_or(0) as usize + 1;
            let counts = class_counts(y, k);
            let rare = (0..k).filter(|&c| counts[c] > 0).min_by_key(|&c| counts[c]).unwrap_or(0) as i64;
            let mut idx: Vec<usize> = (0..y.len()).collect();
            idx.extend((0..y.len()).filter(|&i| y[i] == rare));
            Ok(Resampled {
                x: x.select(Axis(0), &idx),
                y: idx.iter().map(|&i| y[i]).collect(),
                sample_indices: Some(idx),
            })
        }
    }

    /// Three Gaussian blobs in 2-D, well separated.
    pub(crate) fn blobs(n_per: &[usize], seed: u64) -> (Array2<f64>, Array1<i64>) {
        let centres = [[0.0, 4.0], [4.0, -2.0], [-4.0, -2.0]];
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut x = Vec::new();
        let mut y = Vec::new();
        for (k, &n) in n_per.iter().enumerate() {
            for _ in 0..n {
                x.push(centres[k][0] + rng.random_range(-1.0..1.0));
                x.push(centres[k][1] + rng.random_range(-1.0..1.0));
                y.push(k as i64);
            }
        }
        (Array2::from_shape_vec((y.len(), 2), x).unwrap(), Array1::from(y))
    }

    fn accuracy(model: &dyn Model, x: &Array2<f64>, y: &Array1<i64>) -> f64 {
        let p = model.predict(x.view()).unwrap();
        p.iter().zip(y).filter(|(a, b)| a == b).count() as f64 / y.len() as f64
    }

    #[test]
    fn learns_a_separable_problem_with_each_model_and_optimiser() {
        let (x, y) = blobs(&[40, 40, 40], 1);
        let configs = [
            (ModelSpec::Linear, OptimizerConfig::Sgd(Sgd::new().lr(0.1).momentum(0.9))),
            (ModelSpec::default(), OptimizerConfig::Adam(Adam::new().lr(0.01))),
        ];
        for (spec, opt) in configs {
            let t = Trainer::new().epochs(30).batch_size(16).optimizer(opt).model(spec).seed(4);
            let mut m = t.build_model(2, 3).unwrap();
            assert!(accuracy(m.as_ref(), &x, &y) < 0.9, "untrained model should not already separate the blobs");
            let h = t.fit(m.as_mut(), x.view(), y.view(), &TinyCe, None, None).unwrap();
            assert_eq!(accuracy(m.as_ref(), &x, &y), 1.0, "{spec}");
            assert_eq!(h.epoch_loss.len(), 30);
            assert!(h.epoch_loss[29] < 0.2 * h.epoch_loss[0], "{:?}", h.epoch_loss);
            assert_eq!((h.n_train, h.class_counts.clone()), (120, vec![40, 40, 40]));
        }
    }

    #[test]
    fn same_seed_same_model_different_seed_different_model() {
        let (x, y) = blobs(&[20, 20, 20], 2);
        let fit = |seed| {
            let t = Trainer::new().epochs(3).batch_size(7).seed(seed);
            let mut m = t.build_model(2, 3).unwrap();
            let h = t.fit(m.as_mut(), x.view(), y.view(), &TinyCe, Some(&DoubleRarest), None).unwrap();
            (m.params().to_owned(), h)
        };
        let (a, ha) = fit(9);
        let (b, hb) = fit(9);
        let (c, _) = fit(10);
        assert_eq!(a, b);
        assert_eq!(ha, hb);
        assert_ne!(a, c);
    }

    #[test]
    fn one_full_batch_sgd_epoch_is_one_gradient_step() {
        // With batch = N and plain SGD, one epoch is θ ← θ − η∇L(θ) on the whole set: check it by hand.
        let x = array![[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]];
        let y = array![0_i64, 1, 1];
        let mut m = Linear::from_weights(Array2::zeros((2, 2)).view(), array![0.0, 0.0].view()).unwrap();
        let t = Trainer::new().epochs(1).batch_size(3).optimizer(OptimizerConfig::Sgd(Sgd::new().lr(1.0)));
        let h = t.fit(&mut m, x.view(), y.view(), &TinyCe, None, None).unwrap();
        // At θ = 0 every p = 1/2: L = ln 2 and G = (P − Y)/3 = [[−½, ½], [½, −½], [½, −½]]/3.
        // ∂W = Gᵀ·X: row 0 = (−½·[1,0] + ½·[0,1] + ½·[1,1])/3 = [0, 1/3], row 1 = [0, −1/3]; ∂b = [½, −½]/3.
        // With η = 1: W = [[0, −1/3], [0, 1/3]], b = [−1/6, 1/6] (class 1, the majority, gains).
        assert!((h.epoch_loss[0] - std::f64::consts::LN_2).abs() < 1e-15);
        let third = 1.0 / 3.0;
        assert_all_close(&m.weight(), &array![[0.0, -third], [0.0, third]], 1e-15);
        assert_all_close(&m.bias(), &array![-0.5 * third, 0.5 * third], 1e-15);
    }

    #[test]
    fn balanced_weights_follow_sklearn_formula() {
        // n = 6, K = 2 present classes of 3 classes: w = 6/(2·4), 0, 6/(2·2).
        let y = array![0_i64, 0, 0, 0, 2, 2];
        let w = balanced_class_weights(y.view(), 3).unwrap();
        assert_eq!(w, array![0.75, 0.0, 1.5]);
        assert!(matches!(balanced_class_weights(y.view(), 2), Err(Error::LabelOutOfRange { label: 2, .. })));
    }

    #[test]
    fn class_weights_raise_rare_class_predictions() {
        // One informative feature, overlapping classes, 60:6 imbalance: class 0 has x₀ ∈ [−1, 1], class 1 x₀ ∈ [0, 2].
        // Plain CE puts the boundary deep inside class 1's range; balanced weights (0.55, 5.5) move it towards class 0.
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let n = [60, 6];
        let mut rows = Vec::new();
        let mut y = Vec::new();
        for (k, &count) in n.iter().enumerate() {
            for _ in 0..count {
                rows.push(rng.random_range(-1.0..1.0) + k as f64);
                rows.push(rng.random_range(-1.0..1.0));
                y.push(k as i64);
            }
        }
        let x = Array2::from_shape_vec((66, 2), rows).unwrap();
        let y = Array1::from(y);
        let grid = Array2::from_shape_fn((41, 2), |(i, j)| if j == 0 { -1.0 + 0.075 * i as f64 } else { 0.0 });
        let count_rare = |cw: Option<&ClassWeights>| {
            let t = Trainer::new().epochs(100).batch_size(66).model(ModelSpec::Linear);
            let mut m = t.build_model(2, 2).unwrap();
            let h = t.fit(m.as_mut(), x.view(), y.view(), &TinyCe, None, cw).unwrap();
            (m.predict(grid.view()).unwrap().iter().filter(|&&p| p == 1).count(), h)
        };
        let (plain, _) = count_rare(None);
        let (weighted, h) = count_rare(Some(&ClassWeights::Balanced));
        assert!(weighted >= plain + 5, "weighted {weighted} vs plain {plain} grid points predicted rare");
        assert_eq!(h.class_weights.unwrap(), array![66.0 / 120.0, 66.0 / 12.0]);
        let given = ClassWeights::Given(array![1.0, -1.0]);
        let t = Trainer::new().epochs(1);
        let mut m = t.build_model(2, 2).unwrap();
        let e = t.fit(m.as_mut(), x.view(), y.view(), &TinyCe, None, Some(&given)).unwrap_err();
        assert!(e.to_string().contains("class_weights"), "{e}");
    }

    fn reweighted(
        t: &Trainer,
        x: &Array2<f64>,
        y: &Array1<i64>,
        loss: &dyn DynClassLoss,
        cw: Option<&ClassWeights>,
        rw: Option<&LossReweight>,
    ) -> (Array1<f64>, History) {
        let mut m = t.build_model(x.ncols(), 3).unwrap();
        let h = t.fit_reweighted(m.as_mut(), x.view(), y.view(), loss, Some(&DoubleRarest), cw, rw).unwrap();
        (m.params().to_owned(), h)
    }

    #[test]
    fn uniform_reweighting_trains_exactly_as_the_plain_trainer() {
        use losskit_samplers::ReweightStrategy;
        let (x, y) = blobs(&[30, 8, 14], 12);
        let t = Trainer::new().epochs(4).batch_size(9).seed(3);
        let uniform = LossReweight::new().strategy(ReweightStrategy::Uniform).temperature(0.3);
        let ce = losskit_losses::CrossEntropy::new();
        for loss in [&TinyCe as &dyn DynClassLoss, &ce] {
            for cw in [None, Some(&ClassWeights::Balanced)] {
                let plain = reweighted(&t, &x, &y, loss, cw, None);
                let mut m = t.build_model(2, 3).unwrap();
                let h = t.fit(m.as_mut(), x.view(), y.view(), loss, Some(&DoubleRarest), cw).unwrap();
                assert_eq!((m.params().to_owned(), h), plain, "fit_reweighted(None) is fit");
                // Bit for bit: the uniform weights are exactly 1.0.
                assert_eq!(reweighted(&t, &x, &y, loss, cw, Some(&uniform)), plain, "{loss:?} {cw:?}");
            }
        }
    }

    #[test]
    fn a_strategy_changes_training_deterministically() {
        use losskit_samplers::ReweightStrategy;
        let (x, y) = blobs(&[30, 8, 14], 13);
        let t = Trainer::new().epochs(3).batch_size(10).seed(5);
        let (plain, _) = reweighted(&t, &x, &y, &TinyCe, None, None);
        let mut seen = vec![plain];
        for s in [ReweightStrategy::LinUpper, ReweightStrategy::Quadratic, ReweightStrategy::Extremes] {
            let rw = LossReweight::new().strategy(s).temperature(0.5);
            let run = |threads| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap()
                    .install(|| reweighted(&t, &x, &y, &TinyCe, None, Some(&rw)))
            };
            let (a, ha) = run(1);
            let (b, hb) = run(2);
            assert_eq!((&a, &ha), (&b, &hb), "{s}: same seed, same result whatever the thread count");
            assert!(a.iter().all(|v| v.is_finite()));
            assert!(seen.iter().all(|p| *p != a), "{s} trains differently from the others");
            seen.push(a);
        }
        let bad = LossReweight::new().temperature(0.0);
        let mut m = t.build_model(2, 3).unwrap();
        let e = t.fit_reweighted(m.as_mut(), x.view(), y.view(), &TinyCe, None, None, Some(&bad)).unwrap_err();
        assert!(matches!(e, Error::Parameter { name: "temperature", .. }), "{e}");
    }

    #[test]
    fn reweighted_step_is_the_gradient_of_the_weighted_objective_with_constant_weights() {
        // Full batch, plain SGD, one epoch: θ₁ = θ₀ − η ∇J(θ₀), J(θ) = Σᵢ w̃ᵢℓᵢ(θ) / Σᵢ w̃ᵢ with w̃ frozen at θ₀ (the
        // paper treats the weights as constants). ∇J by central differences in f64.
        use losskit_samplers::ReweightStrategy;
        use losskit_tensor::gradcheck::numeric_gradient;
        let (x, y) = blobs(&[12, 5, 7], 14);
        let eta = 0.5;
        for s in [ReweightStrategy::LinUpper, ReweightStrategy::Extremes] {
            let rw = LossReweight::new().strategy(s).temperature(0.25);
            let t = Trainer::new()
                .epochs(1)
                .batch_size(24)
                .model(ModelSpec::Linear)
                .optimizer(OptimizerConfig::Sgd(Sgd::new().lr(eta)));
            let mut m = t.build_model(2, 3).unwrap();
            let theta0 = m.params().to_owned();
            let l0 = <TinyCe as ClassLoss<f64>>::compute(
                &TinyCe,
                m.forward(x.view()).unwrap().view(),
                Targets::Hard(y.view()),
                None,
                false,
            )
            .unwrap();
            let w = rw.batch_weights(l0.per_sample.unwrap().view()).unwrap();
            assert!(w.iter().any(|&v| (v - 1.0).abs() > 0.05), "{s}: the weights are not trivial");
            let mut probe = t.build_model(2, 3).unwrap();
            let objective = |theta: &ndarray::ArrayD<f64>| {
                probe.params_mut().assign(&theta.view().into_dimensionality::<ndarray::Ix1>().unwrap());
                let logits = probe.forward(x.view()).unwrap();
                let out = <TinyCe as ClassLoss<f64>>::compute(
                    &TinyCe,
                    logits.view(),
                    Targets::Hard(y.view()),
                    Some(w.view()),
                    false,
                );
                out.unwrap().value
            };
            let g = numeric_gradient(objective, &theta0.clone().into_dyn(), 1e-6);
            t.fit_reweighted(m.as_mut(), x.view(), y.view(), &TinyCe, None, None, Some(&rw)).unwrap();
            let step = (&theta0 - &m.params()) / eta;
            for (a, b) in step.iter().zip(g.iter()) {
                assert!((a - b).abs() <= 1e-8 + 1e-6 * b.abs(), "{s}: analytic {a} vs numeric {b}");
            }
        }
    }

    #[test]
    fn sampler_runs_once_before_training() {
        let (x, y) = blobs(&[10, 4, 6], 5);
        let t = Trainer::new().epochs(2);
        let mut m = t.build_model(2, 3).unwrap();
        let h = t.fit(m.as_mut(), x.view(), y.view(), &TinyCe, Some(&DoubleRarest), None).unwrap();
        assert_eq!((h.n_train, h.class_counts), (24, vec![10, 8, 6]));
    }

    #[test]
    fn bad_inputs_are_errors() {
        let (x, y) = blobs(&[5, 5, 5], 6);
        let t = Trainer::new().epochs(1);
        let mut m = t.build_model(2, 3).unwrap();
        let mut m2 = t.build_model(3, 3).unwrap();
        let fit = |m: &mut dyn Model, x: ArrayView2<'_, f64>, y: ArrayView1<'_, i64>| {
            t.fit(m, x, y, &TinyCe, None, None).unwrap_err()
        };
        assert!(matches!(fit(m2.as_mut(), x.view(), y.view()), Error::Shape { arg: "x", .. }));
        assert!(matches!(fit(m.as_mut(), x.view(), y.slice(ndarray::s![..4])), Error::Shape { arg: "y", .. }));
        let mut bad = x.clone();
        bad[[3, 1]] = f64::INFINITY;
        assert!(matches!(fit(m.as_mut(), bad.view(), y.view()), Error::NonFinite { arg: "x", index: 7, .. }));
        let mut yb = y.clone();
        yb[2] = 3;
        assert!(matches!(fit(m.as_mut(), x.view(), yb.view()), Error::LabelOutOfRange { label: 3, index: 2, .. }));
        let empty = Array2::zeros((0, 2));
        assert!(matches!(fit(m.as_mut(), empty.view(), Array1::zeros(0).view()), Error::Empty { .. }));
        assert!(matches!(Trainer::new().epochs(0).check(), Err(Error::Parameter { name: "epochs", .. })));
        assert!(matches!(Trainer::new().batch_size(0).check(), Err(Error::Parameter { name: "batch_size", .. })));
        let huge = Trainer::new().epochs(5).optimizer(OptimizerConfig::Sgd(Sgd::new().lr(1e300)));
        let mut m = huge.build_model(2, 3).unwrap();
        let e = huge.fit(m.as_mut(), (&x * 1e5).view(), y.view(), &TinyCe, None, None).unwrap_err();
        assert!(matches!(e, Error::Degenerate { .. } | Error::NonFinite { .. }), "{e}");
    }
}
