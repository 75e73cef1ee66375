//! Metrix (Venkataramanan et al. 2022): mixup for deep metric learning at the embedding level, on the contrastive,
//! multi-similarity and proxy-anchor losses.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, s};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{Rng, RngExt, SeedableRng};
use rand_distr::{Beta, Distribution};
use rayon::prelude::*;

use losskit_tensor::norm::{l2_normalize_backward, l2_normalize_rows};
use losskit_tensor::{Error, Real, Reduction, Result, check};

use super::contrastive::Contrastive;
use super::driver::{self, Distance};
use super::multi_similarity::MultiSimilarity;
use crate::core::{EmbeddingLoss, EmbeddingOutput, ProxyLoss, ProxyOutput, Reference};
use crate::proxy::ProxyAnchor;
use crate::registry::{BuiltLoss, Family, LossEntry, MetricForms, ParamSpec, Params, Range, param};

/// The loss Metrix mixes into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetrixBase {
    /// [`Contrastive`] on normalised Euclidean distances, exactly as the official code (spec §4.3).
    Contrastive,
    /// [`MultiSimilarity`] on cosine similarities, the paper's mixed form \[paper\].
    MultiSimilarity,
    /// [`ProxyAnchor`] (proxies are the anchors), the paper's mixed form \[paper\].
    ProxyAnchor,
}

impl MetrixBase {
    /// The registry words, in order: `contrastive`, `multi-similarity`, `proxy-anchor`.
    pub const NAMES: &'static [&'static str] = &["contrastive", "multi-similarity", "proxy-anchor"];

    /// Parses a registry word.
    ///
    /// # Errors
    /// [`Error::ParameterText`] naming `base`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "contrastive" => Ok(MetrixBase::Contrastive),
            "multi-similarity" => Ok(MetrixBase::MultiSimilarity),
            "proxy-anchor" => Ok(MetrixBase::ProxyAnchor),
            _ => Err(Error::ParameterText {
                name: "base".into(),
                value: s.into(),
                reason: format!("expected one of {}", Self::NAMES.join(", ")),
            }),
        }
    }
}

/// Which pairs Metrix mixes in one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetrixMode {
    /// Positive–negative mixing: for an anchor with positives, v = λ·p + (1 − λ)·n, target λ.
    PositiveNegative,
    /// Anchor–negative mixing: for an anchor without positives, v = λ·a + (1 − λ)·n, target λ.
    AnchorNegative,
}

impl MetrixMode {
    /// The registry words of the `mode` parameter: `random`, `positive-negative`, `anchor-negative`.
    pub const NAMES: &'static [&'static str] = &["random", "positive-negative", "anchor-negative"];

    /// Parses a registry word (`random` is `None`).
    ///
    /// # Errors
    /// [`Error::ParameterText`] naming `mode`.
    pub fn parse(s: &str) -> Result<Option<Self>> {
        match s {
            "random" => Ok(None),
            "positive-negative" => Ok(Some(MetrixMode::PositiveNegative)),
            "anchor-negative" => Ok(Some(MetrixMode::AnchorNegative)),
            _ => Err(Error::ParameterText {
                name: "mode".into(),
                value: s.into(),
                reason: format!("expected one of {}", Self::NAMES.join(", ")),
            }),
        }
    }
}

/// One iteration's random choices: the mixing factor λ and the mixing mode.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MetrixDraw {
    /// λ ∈ [0, 1].
    pub lambda: f64,
    /// The mixing mode.
    pub mode: MetrixMode,
}

/// Metrix: embedding-level mixup for deep metric learning. Mixed embeddings, interpolations of two clean ones, act
/// as soft positives (target λ) of an anchor; their loss is added to the clean loss.
///
/// Rows are L2-normalised first (x̂ᵢ = xᵢ/‖xᵢ‖, as the official model's `l2_norm` head does), then mixed and
/// normalised again before the distance or similarity (v̂ = v/‖v‖, as PML's `LpDistance` / `CosineSimilarity` do):
/// ```text
/// total = ℓ(X) + w·ℓ̃(M)                 λ ~ Beta(α, α), one λ and one mode per call
/// positive–negative mode (w = weight):   anchors a with positives, v = λ·x̂_p + (1 − λ)·x̂_n,  p ∈ P(a), n ∈ N(a)
/// anchor–negative mode (w = anchor_weight): anchors a without positives, v = λ·x̂_a + (1 − λ)·x̂_n,  n ∈ N(a)
/// ```
/// Per base, with M(a) the mixed embeddings of anchor a:
/// ```text
/// contrastive [code]:  d = ‖x̂_a − v̂‖,  ℓ̃ = AvgNZ{ λ·[d − m⁺]₊ } + AvgNZ{ (1 − λ)·[m⁻ − d]₊ }
/// multi-similarity [paper]:  s = x̂_a·v̂,
///     ℓ̃ = (1/N)·Σ_a (1/α)·log(1 + λ·Σ_{v∈M(a)} e^{−α(s − b)}) + (1/β)·log(1 + (1 − λ)·Σ_{v∈M(a)} e^{β(s − b)})
/// proxy-anchor [paper]:  anchors are the proxies c, s = ŵ_c·v̂,
///     ℓ̃ = (1/|P̃|)·Σ_c log(1 + λ·Σ_{v∈M(c)} e^{−α(s − δ)}) + (1/C)·Σ_c log(1 + (1 − λ)·Σ_{v∈M(c)} e^{α(s + δ)})
/// ```
/// where AvgNZ is PML's `AvgNonZeroReducer` (the mean of the strictly positive terms, 0 when none), P̃ the proxies
/// with at least one mixed embedding, and the clean ℓ(X) is [`Contrastive`] (m⁺, m⁻, normalised Euclidean),
/// [`MultiSimilarity`] (α, β, b, cosine, no miner) or [`ProxyAnchor`] (α, δ) with the same reduction.
///
/// * Contrastive follows the official code (`embed_metrix_contrastive`, `embed_posneg_pair_mixup_for_pos_anchor`,
///   `embed_neg_pair_mixup_without_posanchor`, `loss_posneg_mixup`): each ordered positive pair (a, p) of
///   `get_all_pairs_indices` contributes one mixed pair per negative n of a, but mixed with a's *first* positive
///   p₁(a) (the code's `pos[index_pos][0]`), so each (a, p₁(a), n) counts |P(a)| times in the averages.
/// * Multi-similarity and proxy-anchor follow the paper's generic mixed loss (spec §4.1–4.2) \[paper\]: every
///   (p, n) ∈ P(a) × N(a) is mixed once. For proxy-anchor, P(c) = the samples of class c; in anchor–negative mode
///   the anchors are the proxies without a sample in the batch, mixed with every sample (v = λ·ŵ_c + (1 − λ)·x̂_n).
///   The official code's multi-similarity routine differs (it merges clean and mixed sums inside one logarithm) and
///   is not reproduced.
///
/// A mode with no pair to mix (no positive pair, or every anchor has a positive) adds 0; the official code fails
/// there. With unit-norm inputs (the official `--l2_norm 1` model) the contrastive form is exactly the official
/// computation; for other inputs the first normalisation makes every form scale-invariant, like the other losses.
///
/// # Parameters
/// * `base`: [`MetrixBase`], default contrastive (the released code's loss).
/// * `mix_alpha`: α > 0 of Beta(α, α), default 2 (official `--alpha 2.0`).
/// * `lambda`: a fixed λ ∈ [0, 1] instead of a draw, default none.
/// * `mode`: a fixed [`MetrixMode`], default none = drawn (official `random.randint(0, 1)`).
/// * `seed`: seed of the Xoshiro256++ generator behind the draws of [`EmbeddingLoss::compute`] /
///   [`ProxyLoss::compute`], default 0. Each call reseeds it, so a call is a pure function of its inputs; to draw
///   anew each iteration call [`Metrix::draw`] with your own generator and [`Metrix::compute_embedding_at`] /
///   [`Metrix::compute_proxy_at`].
/// * `weight`: w ≥ 0 of positive–negative mixing, default 0.4 (official).
/// * `anchor_weight`: w ≥ 0 of anchor–negative mixing, default 0.3 (official embedding-level code).
/// * `pos_margin`, `neg_margin`: contrastive m⁺ (default 0) and m⁻ (default 0.5, official), clean and mixed.
/// * `ms_alpha`, `ms_beta`, `ms_base`: multi-similarity α > 0 (2), β > 0 (50), b (0.5), PML's defaults.
/// * `pa_alpha`, `pa_margin`: proxy-anchor α > 0 (32), δ (0.1), PML's defaults.
/// * `reduction`: `Mean` as above; `Sum` = the plain sums of every clean and mixed term; `None` = per-anchor (per
///   proxy for proxy-anchor) sums ℓᵢ + w·ℓ̃ᵢ. The contrastive per-anchor values count each term with its
///   multiplicity.
///
/// # Shapes
/// `embeddings` [N, D], `labels` `[N]` (in `0..C` for proxy-anchor), `proxies` [C, D]; gradients [N, D], [C, D].
///
/// # Gradient
/// The clean part is its loss's gradient. For each mixed v: ∂ℓ̃/∂v̂ from the base's term (contrastive
/// ∓(x̂_a − v̂)/d per side, 0 at d = 0; multi-similarity and proxy-anchor the soft-max weights times x̂_a or ŵ_c),
/// then ∂v = (I − v̂v̂ᵀ)∂v̂/‖v‖, chained to the two sources with factors λ and 1 − λ, and to the anchor through
/// s or d; finally through the first normalisation. λ, the mode and the pair sets are constants.
///
/// # Errors
/// [`Error::Parameter`] naming the parameter out of range; the base loss's input errors ([`Error::Shape`],
/// [`Error::Empty`], [`Error::NonFinite`], [`Error::LabelOutOfRange`]); [`Error::Input`] when the embedding form is
/// called on the proxy-anchor base (or the proxy form on another base), or with a reference set.
///
/// # Examples
/// ```
/// use losskit_losses::{EmbeddingLoss, Metrix, MetrixDraw, MetrixMode};
/// let x = ndarray::array![[1.0_f64, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]];
/// let y = ndarray::array![0_i64, 0, 1, 1];
/// let m = Metrix::new(); // contrastive, seeded draws
/// let out = m.compute(x.view(), y.view(), None, true)?;
/// let draw = MetrixDraw { lambda: 0.5, mode: MetrixMode::PositiveNegative };
/// let fixed = m.compute_embedding_at(draw, x.view(), y.view(), true)?;
/// assert!(out.value.is_finite() && fixed.value > 0.0);
/// # Ok::<(), losskit_losses::Error>(())
/// ```
///
/// # References
/// Venkataramanan, Psomas, Kijak, Amsaleg, Karantzalos, Avrithis (2022), *It Takes Two to Tango: Mixup for Deep
/// Metric Learning*, ICLR, arXiv:2106.04990 (docs/papers.md key `venkataramanan2022metrix`); official code
/// `billpsomas/Metrix_ICLR22` (commit 7ce730c), `train.py`, `mixup/utils.py`, `mixup/losses.py`, `main.py`.
#[derive(Clone, Debug, PartialEq)]
pub struct Metrix {
    /// Default [`MetrixBase::Contrastive`].
    pub base: MetrixBase,
    /// α > 0 of Beta(α, α). Default 2.
    pub mix_alpha: f64,
    /// A fixed λ ∈ [0, 1]. Default `None` (drawn).
    pub lambda: Option<f64>,
    /// A fixed mode. Default `None` (drawn).
    pub mode: Option<MetrixMode>,
    /// Seed of the trait methods' generator. Default 0.
    pub seed: u64,
    /// w of positive–negative mixing. Default 0.4.
    pub weight: f64,
    /// w of anchor–negative mixing. Default 0.3.
    pub anchor_weight: f64,
    /// Contrastive m⁺. Default 0.
    pub pos_margin: f64,
    /// Contrastive m⁻. Default 0.5.
    pub neg_margin: f64,
    /// Multi-similarity α. Default 2.
    pub ms_alpha: f64,
    /// Multi-similarity β. Default 50.
    pub ms_beta: f64,
    /// Multi-similarity threshold b (PML `base`). Default 0.5.
    pub ms_base: f64,
    /// Proxy-anchor α. Default 32.
    pub pa_alpha: f64,
    /// Proxy-anchor δ. Default 0.1.
    pub pa_margin: f64,
    /// Default [`Reduction::Mean`].
    pub reduction: Reduction,
}

impl Default for Metrix {
    fn default() -> Self {
        Self {
            base: MetrixBase::Contrastive,
            mix_alpha: 2.0,
            lambda: None,
            mode: None,
            seed: 0,
            weight: 0.4,
            anchor_weight: 0.3,
            pos_margin: 0.0,
            neg_margin: 0.5,
            ms_alpha: 2.0,
            ms_beta: 50.0,
            ms_base: 0.5,
            pa_alpha: 32.0,
            pa_margin: 0.1,
            reduction: Reduction::Mean,
        }
    }
}

/// Clamp of the mixed vectors' norms, as `F.normalize` (1e-12).
const EPS: f64 = 1e-12;

impl Metrix {
    /// The official contrastive configuration: m⁺ = 0, m⁻ = 0.5, λ ~ Beta(2, 2), random mode, w = 0.4 / 0.3.
    pub fn new() -> Self {
        Self::default()
    }
    /// The base loss (default contrastive).
    pub fn base(mut self, b: MetrixBase) -> Self {
        self.base = b;
        self
    }
    /// α of Beta(α, α) (default 2).
    pub fn mix_alpha(mut self, v: f64) -> Self {
        self.mix_alpha = v;
        self
    }
    /// A fixed λ (default drawn).
    pub fn lambda(mut self, v: Option<f64>) -> Self {
        self.lambda = v;
        self
    }
    /// A fixed mode (default drawn).
    pub fn mode(mut self, m: Option<MetrixMode>) -> Self {
        self.mode = m;
        self
    }
    /// The trait methods' seed (default 0).
    pub fn seed(mut self, v: u64) -> Self {
        self.seed = v;
        self
    }
    /// w of positive–negative mixing (default 0.4).
    pub fn weight(mut self, v: f64) -> Self {
        self.weight = v;
        self
    }
    /// w of anchor–negative mixing (default 0.3).
    pub fn anchor_weight(mut self, v: f64) -> Self {
        self.anchor_weight = v;
        self
    }
    /// Contrastive m⁺ (default 0).
    pub fn pos_margin(mut self, v: f64) -> Self {
        self.pos_margin = v;
        self
    }
    /// Contrastive m⁻ (default 0.5).
    pub fn neg_margin(mut self, v: f64) -> Self {
        self.neg_margin = v;
        self
    }
    /// Multi-similarity α, β, b (defaults 2, 50, 0.5).
    pub fn multi_similarity(mut self, alpha: f64, beta: f64, base: f64) -> Self {
        (self.ms_alpha, self.ms_beta, self.ms_base) = (alpha, beta, base);
        self
    }
    /// Proxy-anchor α and δ (defaults 32, 0.1).
    pub fn proxy_anchor(mut self, alpha: f64, margin: f64) -> Self {
        (self.pa_alpha, self.pa_margin) = (alpha, margin);
        self
    }
    /// Reduction (default mean).
    pub fn reduction(mut self, r: Reduction) -> Self {
        self.reduction = r;
        self
    }

    /// Validates the parameters.
    ///
    /// # Errors
    /// [`Error::Parameter`] naming the parameter.
    pub fn check(&self) -> Result<()> {
        check::greater_than("mix_alpha", self.mix_alpha, 0.0)?;
        if !self.mix_alpha.is_finite() {
            return Err(Error::Parameter { name: "mix_alpha", value: self.mix_alpha, reason: "must be finite" });
        }
        if let Some(l) = self.lambda {
            check::closed("lambda", l, 0.0, 1.0)?;
        }
        check::at_least("weight", self.weight, 0.0)?;
        check::finite_param("weight", self.weight)?;
        check::at_least("anchor_weight", self.anchor_weight, 0.0)?;
        check::finite_param("anchor_weight", self.anchor_weight)?;
        check::finite_param("pos_margin", self.pos_margin)?;
        check::finite_param("neg_margin", self.neg_margin)?;
        check::greater_than("ms_alpha", self.ms_alpha, 0.0)?;
        check::greater_than("ms_beta", self.ms_beta, 0.0)?;
        check::finite_param("ms_base", self.ms_base)?;
        check::greater_than("pa_alpha", self.pa_alpha, 0.0)?;
        check::finite_param("pa_margin", self.pa_margin)
    }

    /// Builds the config from registry parameters (and checks it).
    ///
    /// # Errors
    /// As [`Metrix::check`]; [`Error::ParameterText`] for a bad `base`, `mode` or `seed`.
    pub fn from_params(p: &Params) -> Result<Self> {
        let seed = p.f64("seed")?;
        if !(seed.is_finite() && seed >= 0.0 && seed.fract() == 0.0 && seed <= u64::MAX as f64) {
            return Err(Error::Parameter { name: "seed", value: seed, reason: "must be an integer ≥ 0" });
        }
        let cfg = Self {
            base: MetrixBase::parse(p.text("base")?)?,
            mix_alpha: p.f64("mix_alpha")?,
            lambda: p.opt_f64("lambda")?,
            mode: MetrixMode::parse(p.text("mode")?)?,
            seed: seed as u64,
            weight: p.f64("weight")?,
            anchor_weight: p.f64("anchor_weight")?,
            pos_margin: p.f64("pos_margin")?,
            neg_margin: p.f64("neg_margin")?,
            ms_alpha: p.f64("ms_alpha")?,
            ms_beta: p.f64("ms_beta")?,
            ms_base: p.f64("ms_base")?,
            pa_alpha: p.f64("pa_alpha")?,
            pa_margin: p.f64("pa_margin")?,
            reduction: p.reduction(),
        };
        cfg.check()?;
        Ok(cfg)
    }

    /// One iteration's draws from `rng`: the mode (unless fixed; one fair coin, as `random.randint(0, 1)`), then λ
    /// (unless fixed) from Beta(α, α).
    ///
    /// # Errors
    /// As [`Metrix::check`].
    pub fn draw<R: Rng + ?Sized>(&self, rng: &mut R) -> Result<MetrixDraw> {
        self.check()?;
        let mode = match self.mode {
            Some(m) => m,
            None if rng.random_bool(0.5) => MetrixMode::AnchorNegative,
            None => MetrixMode::PositiveNegative,
        };
        let lambda = match self.lambda {
            Some(l) => l,
            None => {
                let beta = Beta::new(self.mix_alpha, self.mix_alpha).map_err(|_| Error::Parameter {
                    name: "mix_alpha",
                    value: self.mix_alpha,
                    reason: "must be a finite number > 0",
                })?;
                beta.sample(rng).clamp(0.0, 1.0)
            }
        };
        Ok(MetrixDraw { lambda, mode })
    }

    /// The draw the trait methods use: [`Metrix::draw`] from Xoshiro256++ seeded with `seed`.
    ///
    /// # Errors
    /// As [`Metrix::check`].
    pub fn seeded_draw(&self) -> Result<MetrixDraw> {
        self.draw(&mut Xoshiro256PlusPlus::seed_from_u64(self.seed))
    }

    fn check_draw(d: MetrixDraw) -> Result<()> {
        check::closed("lambda", d.lambda, 0.0, 1.0)
    }

    fn mix_weight(&self, mode: MetrixMode) -> f64 {
        match mode {
            MetrixMode::PositiveNegative => self.weight,
            MetrixMode::AnchorNegative => self.anchor_weight,
        }
    }

    /// The deterministic core of the embedding form (contrastive or multi-similarity base) for a given draw.
    ///
    /// # Errors
    /// As documented on [`Metrix`].
    pub fn compute_embedding_at<F: Real>(
        &self,
        draw: MetrixDraw,
        embeddings: ArrayView2<'_, F>,
        labels: ArrayView1<'_, i64>,
        grad: bool,
    ) -> Result<EmbeddingOutput<F>> {
        self.check()?;
        Self::check_draw(draw)?;
        let clean = match self.base {
            MetrixBase::Contrastive => {
                let c = Contrastive {
                    pos_margin: self.pos_margin,
                    neg_margin: self.neg_margin,
                    distance: Distance::Euclidean,
                    tile: 0,
                    reduction: self.reduction,
                };
                EmbeddingLoss::<F>::compute(&c, embeddings, labels, None, grad)?
            }
            MetrixBase::MultiSimilarity => {
                let m = MultiSimilarity::new()
                    .alpha(self.ms_alpha)
                    .beta(self.ms_beta)
                    .base(self.ms_base)
                    .reduction(self.reduction);
                EmbeddingLoss::<F>::compute(&m, embeddings, labels, None, grad)?
            }
            MetrixBase::ProxyAnchor => {
                return Err(Error::Input {
                    what: "metrix with base proxy-anchor needs proxies: use its proxy form".into(),
                });
            }
        };
        let x = embeddings.mapv(|v| v.f64());
        let (h, norms) = l2_normalize_rows(x.view());
        let y: Vec<i64> = labels.iter().copied().collect();
        let sets = anchor_sets(&y, None, self.base, draw.mode);
        let mixed = self.mixed(&h, &sets, draw.lambda, y.len(), 0, grad)?;
        let w = self.mix_weight(draw.mode);
        let per = combine_per(clean.per_sample.as_ref(), &mixed.per_anchor, w);
        let g = match (clean.grad, mixed.grad) {
            (Some(gc), Some(gm)) => {
                let gx = l2_normalize_backward(gm.view(), h.view(), norms.view())?;
                Some(add_scaled(gc, &gx, w))
            }
            (g, _) => g,
        };
        Ok(EmbeddingOutput {
            value: F::c(clean.value.f64() + w * mixed.value),
            per_sample: per,
            grad: g,
            grad_reference: None,
        })
    }

    /// The deterministic core of the proxy form (proxy-anchor base) for a given draw.
    ///
    /// # Errors
    /// As documented on [`Metrix`].
    pub fn compute_proxy_at<F: Real>(
        &self,
        draw: MetrixDraw,
        embeddings: ArrayView2<'_, F>,
        labels: ArrayView1<'_, i64>,
        proxies: ArrayView2<'_, F>,
        grad: bool,
    ) -> Result<ProxyOutput<F>> {
        self.check()?;
        Self::check_draw(draw)?;
        if self.base != MetrixBase::ProxyAnchor {
            return Err(Error::Input {
                what: "metrix has a proxy form only with base proxy-anchor: use its embedding form".into(),
            });
        }
        let pa = ProxyAnchor { margin: self.pa_margin, alpha: self.pa_alpha, reduction: self.reduction };
        let clean = ProxyLoss::<F>::compute(&pa, embeddings, labels, proxies, grad)?;
        let (n, c) = (embeddings.nrows(), proxies.nrows());
        // One matrix of normalised rows: the N embeddings, then the C proxies (anchors and mixing sources).
        let mut both = Array2::<f64>::zeros((n + c, embeddings.ncols()));
        both.slice_mut(s![..n, ..]).assign(&embeddings.mapv(|v| v.f64()));
        both.slice_mut(s![n.., ..]).assign(&proxies.mapv(|v| v.f64()));
        let (h, norms) = l2_normalize_rows(both.view());
        let y: Vec<i64> = labels.iter().copied().collect();
        let sets = anchor_sets(&y, Some(c), self.base, draw.mode);
        let mixed = self.mixed(&h, &sets, draw.lambda, c, n, grad)?;
        let w = self.mix_weight(draw.mode);
        let per = combine_per(clean.per_sample.as_ref(), &mixed.per_anchor, w);
        let (gx, gw) = match (clean.grad, clean.grad_proxies, mixed.grad) {
            (Some(gx), Some(gw), Some(gm)) => {
                let g = l2_normalize_backward(gm.view(), h.view(), norms.view())?;
                let gx = add_scaled(gx, &g.slice(s![..n, ..]).to_owned(), w);
                let gw = add_scaled(gw, &g.slice(s![n.., ..]).to_owned(), w);
                (Some(gx), Some(gw))
            }
            (gx, gw, _) => (gx, gw),
        };
        Ok(ProxyOutput {
            value: F::c(clean.value.f64() + w * mixed.value),
            per_sample: per,
            grad: gx,
            grad_proxies: gw,
        })
    }

    /// The mixed loss ℓ̃ over the anchor sets, on the normalised rows `h` (anchors are rows `offset + k`).
    fn mixed(
        &self,
        h: &Array2<f64>,
        sets: &[Vec<Mix>],
        lambda: f64,
        anchors: usize,
        offset: usize,
        grad: bool,
    ) -> Result<Mixed> {
        let d = h.ncols();
        let (pm, nm) = (self.pos_margin, self.neg_margin);
        let mean = self.reduction == Reduction::Mean;
        // Pass 1: the distance or similarity of every mixed pair (anchors in parallel; each value on its own).
        let vals: Vec<Vec<f64>> = sets
            .par_iter()
            .enumerate()
            .map_init(Vec::new, |vh, (k, set)| {
                let a = h.row(offset + k);
                set.iter()
                    .map(|m| {
                        mixed_unit_into(h, m, lambda, vh);
                        match self.base {
                            MetrixBase::Contrastive => {
                                a.iter().zip(vh.iter()).map(|(x, v)| (x - v) * (x - v)).sum::<f64>().sqrt()
                            }
                            _ => a.iter().zip(vh.iter()).map(|(x, v)| x * v).sum(),
                        }
                    })
                    .collect()
            })
            .collect();
        // Per-anchor values and ∂ℓ̃/∂(d or s) for every pair, then the reduction.
        let mut per_anchor = vec![0.0; anchors];
        let mut dvals: Vec<Vec<f64>> = vals.iter().map(|v| vec![0.0; v.len()]).collect();
        let value = match self.base {
            MetrixBase::Contrastive => {
                let (pos_t, neg_t) = (|dd: f64| lambda * (dd - pm).max(0.0), |dd: f64| (1.0 - lambda) * (nm - dd));
                let (mut sp, mut cp, mut sn, mut cn) = (0.0, 0.0, 0.0, 0.0);
                for (k, set) in sets.iter().enumerate() {
                    for (m, &dd) in set.iter().zip(&vals[k]) {
                        let (tp, tn) = (pos_t(dd), neg_t(dd).max(0.0));
                        if tp > 0.0 {
                            (sp, cp) = (sp + m.mult * tp, cp + m.mult);
                        }
                        if tn > 0.0 {
                            (sn, cn) = (sn + m.mult * tn, cn + m.mult);
                        }
                        per_anchor[k] += m.mult * (tp + tn);
                    }
                }
                let (fp, fn_) = if mean {
                    (if cp > 0.0 { 1.0 / cp } else { 0.0 }, if cn > 0.0 { 1.0 / cn } else { 0.0 })
                } else {
                    (1.0, 1.0)
                };
                for (k, set) in sets.iter().enumerate() {
                    for (j, (m, &dd)) in set.iter().zip(&vals[k]).enumerate() {
                        let gp = if pos_t(dd) > 0.0 { lambda * fp } else { 0.0 };
                        let gn = if neg_t(dd) > 0.0 { -(1.0 - lambda) * fn_ } else { 0.0 };
                        dvals[k][j] = m.mult * (gp + gn);
                    }
                }
                sp * fp + sn * fn_
            }
            MetrixBase::MultiSimilarity | MetrixBase::ProxyAnchor => {
                let pa = self.base == MetrixBase::ProxyAnchor;
                let (a, b, base_p, base_n) = if pa {
                    (self.pa_alpha, self.pa_alpha, self.pa_margin, -self.pa_margin)
                } else {
                    (self.ms_alpha, self.ms_beta, self.ms_base, self.ms_base)
                };
                let with_mix = sets.iter().filter(|s| !s.is_empty()).count();
                let (sp, sn) = match (self.reduction, pa) {
                    (Reduction::Mean, false) => (1.0 / anchors.max(1) as f64, 1.0 / anchors.max(1) as f64),
                    (Reduction::Mean, true) => {
                        (if with_mix > 0 { 1.0 / with_mix as f64 } else { 0.0 }, 1.0 / anchors.max(1) as f64)
                    }
                    _ => (1.0, 1.0),
                };
                // Proxy-anchor's sides are log(1 + Σ) with the scale α inside; multi-similarity's are (1/α)·log.
                let (kp, kn) = if pa { (1.0, 1.0) } else { (1.0 / a, 1.0 / b) };
                let mut total = 0.0;
                for (k, s_k) in vals.iter().enumerate() {
                    if s_k.is_empty() {
                        continue;
                    }
                    let wp: Vec<f64> = s_k.iter().map(|&s| -a * (s - base_p)).collect();
                    let wn: Vec<f64> = s_k.iter().map(|&s| b * (s - base_n)).collect();
                    let (lp, pp) = lse1_scaled(&wp, lambda);
                    let (ln, pn) = lse1_scaled(&wn, 1.0 - lambda);
                    per_anchor[k] = kp * lp + kn * ln;
                    total += sp * kp * lp + sn * kn * ln;
                    // ∂/∂s: −α·pₜ·(1/α) and β·pₜ·(1/β) for multi-similarity; −α·pₜ and α·pₜ for proxy-anchor.
                    for j in 0..s_k.len() {
                        dvals[k][j] = -sp * kp * a * pp[j] + sn * kn * b * pn[j];
                    }
                }
                total
            }
        };
        let grad = if grad {
            // Anchors in GRAD_CHUNKS fixed runs, each accumulating into its own gradient, the runs then added in
            // order: the sum does not depend on the thread count.
            let run = sets.len().div_ceil(GRAD_CHUNKS).max(1);
            let chunks = sets.len().div_ceil(run).max(1);
            let (rows, size) = (h.nrows(), h.len());
            // One buffer for all the runs, allocated here (worker threads' own malloc arenas would map and unmap
            // their large buffers at every call).
            let mut all = vec![0.0_f64; chunks * size];
            all.par_chunks_mut(size.max(1)).enumerate().for_each(|(c, g)| {
                let (mut vh, mut gv) = (Vec::new(), vec![0.0; d]);
                for k in c * run..((c + 1) * run).min(sets.len()) {
                    let (set, v, dv) = (&sets[k], &vals[k], &dvals[k]);
                    self.mixed_grad_anchor(h, set, v, dv, offset + k, lambda, &mut vh, &mut gv, g);
                }
            });
            let (first, rest) = all.split_at_mut(size);
            for part in rest.chunks(size.max(1)) {
                first.iter_mut().zip(part).for_each(|(a, b)| *a += b);
            }
            all.truncate(size);
            let g = Array2::from_shape_vec((rows, d), all)
                .map_err(|e| Error::Degenerate { what: format!("internal shape error: {e}") })?;
            Some(g)
        } else {
            None
        };
        Ok(Mixed { value, per_anchor, grad })
    }

    /// Adds anchor `ai`'s mixed terms to `g` (row-major, rows of `h`): ∂ℓ̃/∂(d or s) of each of its mixed pairs (`dv`, values `vals`)
    /// through d = ‖x̂_a − v̂‖ or s = x̂_a·v̂, then v̂ = v/‖v‖ and v = λ·h[first] + (1 − λ)·h[second].
    #[allow(clippy::too_many_arguments)]
    fn mixed_grad_anchor(
        &self,
        h: &Array2<f64>,
        set: &[Mix],
        vals: &[f64],
        dv: &[f64],
        ai: usize,
        lambda: f64,
        vh: &mut Vec<f64>,
        gv: &mut [f64],
        g: &mut [f64],
    ) {
        let d = h.ncols();
        for (j, m) in set.iter().enumerate() {
            let gk = dv[j];
            if gk == 0.0 {
                continue;
            }
            let vn = mixed_unit_into(h, m, lambda, vh);
            match self.base {
                MetrixBase::Contrastive => {
                    let dd = vals[j];
                    if dd <= 0.0 {
                        continue;
                    }
                    for t in 0..d {
                        let diff = (h[[ai, t]] - vh[t]) / dd;
                        g[ai * d + t] += gk * diff;
                        gv[t] = -gk * diff;
                    }
                }
                _ => {
                    for t in 0..d {
                        g[ai * d + t] += gk * vh[t];
                        gv[t] = gk * h[[ai, t]];
                    }
                }
            }
            let dot: f64 = gv.iter().zip(vh.iter()).map(|(a, b)| a * b).sum();
            let inv = 1.0 / vn.max(EPS);
            for t in 0..d {
                let gvt = if vn >= EPS { (gv[t] - dot * vh[t]) * inv } else { gv[t] * inv };
                g[m.first * d + t] += lambda * gvt;
                g[m.second * d + t] += (1.0 - lambda) * gvt;
            }
        }
    }
}

/// One mixed embedding of an anchor: v = λ·h[first] + (1 − λ)·h[second], counted `mult` times.
#[derive(Clone, Copy, Debug)]
struct Mix {
    first: usize,
    second: usize,
    mult: f64,
}

struct Mixed {
    value: f64,
    per_anchor: Vec<f64>,
    grad: Option<Array2<f64>>,
}

/// v̂ of a mixed embedding into `out` (resized to D); returns ‖v‖.
fn mixed_unit_into(h: &Array2<f64>, m: &Mix, lambda: f64, out: &mut Vec<f64>) -> f64 {
    out.clear();
    out.extend(h.row(m.first).iter().zip(h.row(m.second).iter()).map(|(p, n)| lambda * p + (1.0 - lambda) * n));
    let norm = out.iter().map(|x| x * x).sum::<f64>().sqrt();
    let inv = 1.0 / norm.max(EPS);
    out.iter_mut().for_each(|x| *x *= inv);
    norm
}

/// Fixed runs of anchors whose mixed gradients are computed in parallel (see [`Metrix`]'s mixed part).
const GRAD_CHUNKS: usize = 8;

/// log(1 + c·Σₜ e^{wₜ}) and its derivative shares c·e^{wₜ}/(1 + c·Σ e^{w}) (stable; 0 and no shares when c = 0).
fn lse1_scaled(w: &[f64], c: f64) -> (f64, Vec<f64>) {
    if c <= 0.0 || w.is_empty() {
        return (0.0, vec![0.0; w.len()]);
    }
    let lc = c.ln();
    let m = w.iter().fold(0.0_f64, |m, &x| m.max(x + lc));
    let e: Vec<f64> = w.iter().map(|&x| (x + lc - m).exp()).collect();
    let z = (-m).exp() + e.iter().sum::<f64>();
    (m + z.ln(), e.iter().map(|x| x / z).collect())
}

/// The mixed embeddings of each anchor (rows of the embeddings, or proxies `0..C` when `proxies` is given, whose
/// rows follow the N embeddings).
fn anchor_sets(y: &[i64], proxies: Option<usize>, base: MetrixBase, mode: MetrixMode) -> Vec<Vec<Mix>> {
    let n = y.len();
    let one = |first, second| Mix { first, second, mult: 1.0 };
    match proxies {
        None => (0..n)
            .map(|a| {
                let pos: Vec<usize> = (0..n).filter(|&j| j != a && y[j] == y[a]).collect();
                let neg: Vec<usize> = (0..n).filter(|&j| y[j] != y[a]).collect();
                match (mode, base) {
                    (MetrixMode::PositiveNegative, _) if pos.is_empty() => vec![],
                    // Official quirk: every positive pair of a mixes a's first positive (`pos[index_pos][0]`).
                    (MetrixMode::PositiveNegative, MetrixBase::Contrastive) => {
                        neg.iter().map(|&q| Mix { first: pos[0], second: q, mult: pos.len() as f64 }).collect()
                    }
                    (MetrixMode::PositiveNegative, _) => {
                        pos.iter().flat_map(|&p| neg.iter().map(move |&q| one(p, q))).collect()
                    }
                    (MetrixMode::AnchorNegative, _) if !pos.is_empty() => vec![],
                    (MetrixMode::AnchorNegative, _) => neg.iter().map(|&q| one(a, q)).collect(),
                }
            })
            .collect(),
        Some(c) => (0..c)
            .map(|cls| {
                let pos: Vec<usize> = (0..n).filter(|&j| y[j] == cls as i64).collect();
                let neg: Vec<usize> = (0..n).filter(|&j| y[j] != cls as i64).collect();
                match mode {
                    MetrixMode::PositiveNegative => {
                        pos.iter().flat_map(|&p| neg.iter().map(move |&q| one(p, q))).collect()
                    }
                    MetrixMode::AnchorNegative if !pos.is_empty() => vec![],
                    MetrixMode::AnchorNegative => neg.iter().map(|&q| one(n + cls, q)).collect(),
                }
            })
            .collect(),
    }
}

/// Clean per-sample values + w·mixed per-anchor values.
fn combine_per<F: Real>(clean: Option<&Array1<F>>, mixed: &[f64], w: f64) -> Option<Array1<F>> {
    clean.map(|p| p.iter().zip(mixed).map(|(&c, &m)| F::c(c.f64() + w * m)).collect())
}

/// g + w·extra, cast to F.
fn add_scaled<F: Real>(mut g: Array2<F>, extra: &Array2<f64>, w: f64) -> Array2<F> {
    g.zip_mut_with(extra, |a, &b| *a = F::c(a.f64() + w * b));
    g
}

/// Checks a reference set's shapes (the errors every embedding loss gives) and refuses it.
pub(crate) fn refuse_reference<F: Real>(
    name: &str,
    embeddings: &ArrayView2<'_, F>,
    labels: &ArrayView1<'_, i64>,
    r: &Reference<'_, F>,
) -> Result<()> {
    driver::check_embeddings("embeddings", "labels", embeddings, labels)?;
    check::non_empty("reference_embeddings", r.embeddings.nrows())?;
    check::shape("reference_embeddings", r.embeddings.shape(), &[None, Some(embeddings.ncols())])?;
    check::shape("reference_labels", r.labels.shape(), &[Some(r.embeddings.nrows())])?;
    Err(Error::Input { what: format!("{name} takes no reference set (reference_embeddings, reference_labels)") })
}

impl<F: Real> EmbeddingLoss<F> for Metrix {
    fn compute(
        &self,
        embeddings: ArrayView2<'_, F>,
        labels: ArrayView1<'_, i64>,
        reference: Option<Reference<'_, F>>,
        grad: bool,
    ) -> Result<EmbeddingOutput<F>> {
        if let Some(r) = &reference {
            refuse_reference("metrix", &embeddings, &labels, r)?;
        }
        self.compute_embedding_at(self.seeded_draw()?, embeddings, labels, grad)
    }
}

impl<F: Real> ProxyLoss<F> for Metrix {
    fn compute(
        &self,
        embeddings: ArrayView2<'_, F>,
        labels: ArrayView1<'_, i64>,
        proxies: ArrayView2<'_, F>,
        grad: bool,
    ) -> Result<ProxyOutput<F>> {
        self.compute_proxy_at(self.seeded_draw()?, embeddings, labels, proxies, grad)
    }
}

const PARAMS: &[ParamSpec] = &[
    param("base", "contrastive", Range::Choice(MetrixBase::NAMES), "the loss mixed into (official code: contrastive)"),
    param("mix_alpha", "2", Range::Positive, "α of λ ~ Beta(α, α) (official --alpha)"),
    param("lambda", "none", Range::Closed(0.0, 1.0), "a fixed mixing factor λ instead of a draw"),
    param("mode", "random", Range::Choice(MetrixMode::NAMES), "which pairs to mix (random: one coin per call)"),
    param("seed", "0", Range::IntAtLeast(0), "seed of the draws (each call reseeds: same inputs, same draw)"),
    param("weight", "0.4", Range::NonNegative, "w of positive–negative mixing (official 0.4)"),
    param("anchor_weight", "0.3", Range::NonNegative, "w of anchor–negative mixing (official embedding code 0.3)"),
    param("pos_margin", "0", Range::Any, "contrastive m⁺ (PML pos_margin)"),
    param("neg_margin", "0.5", Range::Any, "contrastive m⁻ (official 0.5)"),
    param("ms_alpha", "2", Range::Positive, "multi-similarity α (PML alpha)"),
    param("ms_beta", "50", Range::Positive, "multi-similarity β (PML beta)"),
    param("ms_base", "0.5", Range::Any, "multi-similarity threshold (PML base)"),
    param("pa_alpha", "32", Range::Positive, "proxy-anchor α (PML alpha)"),
    param("pa_margin", "0.1", Range::Any, "proxy-anchor δ (PML margin)"),
];

fn build(p: &Params) -> Result<BuiltLoss> {
    Metrix::from_params(p).map(|_| BuiltLoss::default())
}

pub(crate) fn build_metric(p: &Params) -> Result<MetricForms> {
    let m = Metrix::from_params(p)?;
    Ok(match m.base {
        MetrixBase::ProxyAnchor => MetricForms { embedding: None, proxy: Some(Box::new(m)) },
        _ => MetricForms { embedding: Some(Box::new(m)), proxy: None },
    })
}

/// Registry entry.
pub(crate) const ENTRY: LossEntry = LossEntry {
    name: "metrix",
    family: Family::Embedding,
    summary: "Metrix embedding mixup (λ ~ Beta(α, α)) on contrastive, multi-similarity or proxy-anchor",
    paper: "venkataramanan2022metrix",
    reference: "Venkataramanan, Psomas, Kijak, Amsaleg, Karantzalos, Avrithis (2022), It Takes Two to Tango: \
                Mixup for Deep Metric Learning, ICLR, arXiv:2106.04990",
    params: PARAMS,
    build,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_parameters_are_named() {
        let named = |m: Metrix, want: &str| {
            assert!(matches!(m.check(), Err(Error::Parameter { name, .. }) if name == want), "{want}");
        };
        named(Metrix::new().mix_alpha(0.0), "mix_alpha");
        named(Metrix::new().lambda(Some(1.5)), "lambda");
        named(Metrix::new().weight(-0.1), "weight");
        named(Metrix::new().anchor_weight(f64::NAN), "anchor_weight");
        named(Metrix::new().neg_margin(f64::INFINITY), "neg_margin");
        named(Metrix::new().multi_similarity(0.0, 50.0, 0.5), "ms_alpha");
        named(Metrix::new().proxy_anchor(-1.0, 0.1), "pa_alpha");
    }

    #[test]
    fn scaled_log_sum_exp() {
        let (v, p) = lse1_scaled(&[0.3, -1.0], 0.25);
        let z = 1.0 + 0.25 * (0.3f64.exp() + (-1.0f64).exp());
        assert!((v - z.ln()).abs() < 1e-15);
        assert!((p[0] - 0.25 * 0.3f64.exp() / z).abs() < 1e-15);
        assert_eq!(lse1_scaled(&[5.0], 0.0), (0.0, vec![0.0]));
    }

    #[test]
    fn official_pairing_repeats_the_first_positive() {
        let y = [0, 0, 0, 1, 2];
        let sets = anchor_sets(&y, None, MetrixBase::Contrastive, MetrixMode::PositiveNegative);
        assert_eq!(sets[0].len(), 2);
        assert!(sets[0].iter().all(|m| m.first == 1 && m.mult == 2.0));
        assert!(sets[1].iter().all(|m| m.first == 0));
        assert!(sets[3].is_empty());
        let ms = anchor_sets(&y, None, MetrixBase::MultiSimilarity, MetrixMode::PositiveNegative);
        assert_eq!(ms[0].len(), 4);
        let an = anchor_sets(&y, None, MetrixBase::Contrastive, MetrixMode::AnchorNegative);
        assert!(an[0].is_empty());
        assert_eq!(an[3].iter().map(|m| (m.first, m.second)).collect::<Vec<_>>(), [(3, 0), (3, 1), (3, 2), (3, 4)]);
    }
}
