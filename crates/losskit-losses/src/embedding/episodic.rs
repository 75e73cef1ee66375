//! Episodic (few-shot) losses of Mendez-Ruiz et al. (2023), *SuSana Distancia is all you need*: the Proto-Triplet
//! loss on ProtoNet prototypes and the ICNN loss, −log of the ICNN neighbourhood score.
//!
//! The definitions follow the authors' code (maumruiz/FSL-Loss, `algorithms/icnn_loss.py`: `nearest_neighbors`,
//! `modified_score`, `proto_triplet_loss`, `get_icnn_loss`; `models/protonet.py`: prototypes are per-class means of
//! the support set), including its constants and quirks, each listed where it applies. They supersede
//! §5 of spec/metric-learning-samplers-metrics.md, which was written from memory (squared distances, a sum over
//! every wrong prototype, `1 − mean(score)`) and does not match the code.
//!
//! Every computation runs in f64 whatever `F` is (an episode is small: tens of rows), and the outputs are cast back.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, concatenate};

use losskit_tensor::{Error, Real, Reduction, Result, check};

use crate::core::{EmbeddingLoss, EmbeddingOutput, ProxyLoss, ProxyOutput, Reference};
use crate::registry::{BuiltLoss, Family, LossEntry, MetricForms, ParamSpec, Params, Range, param};

/// ε added to a squared Euclidean distance before its square root, d(a, b) = √(‖a − b‖² + ε), as the reference's
/// `nearest_neighbors` (it keeps the gradient finite at a = b; the distance of a row to itself is 1e-3).
pub const EPISODIC_SQRT_EPS: f64 = 1e-6;

/// ε added to every denominator of the ICNN score (the reference's `eps = 0.0000001` in `modified_score`).
pub const ICNN_EPS: f64 = 1e-7;

/// What an episodic loss returns. Which gradients are present depends on the method (each says so); a gradient is
/// of [`value`](Self::value) with respect to that input.
#[derive(Clone, Debug, PartialEq)]
pub struct EpisodeOutput<F> {
    /// The loss.
    pub value: F,
    /// The ICNN score in (0, 1] (ICNN methods only; `value` = −ln `score`).
    pub score: Option<F>,
    /// Per-query losses (Proto-Triplet only; `value` is their mean).
    pub per_sample: Option<Array1<F>>,
    /// ∂value/∂support [S, D].
    pub grad_support: Option<Array2<F>>,
    /// ∂value/∂queries [Q, D].
    pub grad_queries: Option<Array2<F>>,
    /// ∂value/∂prototypes [W, D].
    pub grad_prototypes: Option<Array2<F>>,
}

impl<F> EpisodeOutput<F> {
    fn new(value: F) -> Self {
        Self { value, score: None, per_sample: None, grad_support: None, grad_queries: None, grad_prototypes: None }
    }
}

fn to_f64<F: Real>(x: ArrayView2<'_, F>) -> Array2<f64> {
    x.mapv(|v| v.f64())
}

fn from_f64<F: Real>(x: Array2<f64>) -> Array2<F> {
    x.mapv(F::c)
}

/// Validates one embedding set and its labels: non-empty, D ≥ 1 (or = `dim`), finite, one label per row.
fn check_set<F: Real>(
    arg: &'static str,
    x: ArrayView2<'_, F>,
    labels_arg: &'static str,
    labels: ArrayView1<'_, i64>,
    dim: Option<usize>,
) -> Result<()> {
    check::non_empty(arg, x.nrows())?;
    match dim {
        Some(d) => check::shape(arg, x.shape(), &[None, Some(d)])?,
        None if x.ncols() == 0 => {
            return Err(Error::Shape { arg, expected: "[N, D] with D ≥ 1".into(), got: x.shape().to_vec() });
        }
        None => {}
    }
    check::finite(arg, &x)?;
    check::shape(labels_arg, labels.shape(), &[Some(x.nrows())])
}

/// d(a, b) = √(‖a − b‖² + 1e-6), the difference taken row against row (no GEMM: no cancellation).
fn distance(a: ArrayView1<'_, f64>, b: ArrayView1<'_, f64>) -> f64 {
    (a.iter().zip(b.iter()).map(|(x, y)| (x - y) * (x - y)).sum::<f64>() + EPISODIC_SQRT_EPS).sqrt()
}

/// Adds g·∂d(a, b)/∂a = g·(a − b)/d to `ga` and its negative to `gb`.
fn chain_distance(
    g: f64,
    d: f64,
    a: ArrayView1<'_, f64>,
    b: ArrayView1<'_, f64>,
    mut ga: ndarray::ArrayViewMut1<'_, f64>,
    mut gb: ndarray::ArrayViewMut1<'_, f64>,
) {
    let s = g / d;
    for (((x, y), u), v) in a.iter().zip(b.iter()).zip(ga.iter_mut()).zip(gb.iter_mut()) {
        let t = s * (x - y);
        *u += t;
        *v -= t;
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Prototypes

/// ProtoNet class prototypes: the mean of the support embeddings of each class, classes in ascending label order.
///
/// ```text
/// c_w = (1 / |S_w|) Σ_{i ∈ S_w} sᵢ          S_w = { i : labelᵢ = w }
/// ```
/// The reference (`ProtoNet.compute_prototypes`) reshapes a support set laid out class by class, [W·S, D] →
/// [W, S, D], and averages over the shots; for that layout with labels 0..W this is the same, and it also accepts
/// any order and unequal shots.
///
/// # Errors
/// [`Error::Empty`], [`Error::Shape`] (D = 0, or labels not `[S]`), [`Error::NonFinite`].
///
/// # References
/// Snell, Swersky, Zemel (2017), *Prototypical Networks for Few-shot Learning*, NeurIPS, arXiv:1703.05175
/// (docs/papers.md key `mendezruiz2023susana`, which uses them).
#[derive(Clone, Debug, PartialEq)]
pub struct Prototypes<F> {
    /// The prototypes [W, D], one per distinct support label.
    pub prototypes: Array2<F>,
    /// The label of each prototype `[W]`, ascending.
    pub labels: Array1<i64>,
    /// How many support rows each prototype averages `[W]`.
    pub counts: Array1<usize>,
    /// Prototype index of each support row.
    assignment: Vec<usize>,
}

impl<F: Real> Prototypes<F> {
    /// The class means of `support` [S, D] with `labels` `[S]`.
    ///
    /// # Errors
    /// See the type.
    pub fn from_support(support: ArrayView2<'_, F>, labels: ArrayView1<'_, i64>) -> Result<Self> {
        check_set("support", support, "support_labels", labels, None)?;
        let (p, l, c, a) = prototypes_f64(&to_f64(support), labels);
        Ok(Self { prototypes: from_f64(p), labels: Array1::from(l), counts: Array1::from(c), assignment: a })
    }

    /// Chains a gradient with respect to the prototypes [W, D] back to the support rows [S, D]:
    /// ∂L/∂sᵢ = ∂L/∂c_{w(i)} / |S_{w(i)}|.
    ///
    /// # Errors
    /// [`Error::Shape`] when `grad_prototypes` is not [W, D]; [`Error::NonFinite`].
    pub fn backward(&self, grad_prototypes: ArrayView2<'_, F>) -> Result<Array2<F>> {
        check::shape(
            "grad_prototypes",
            grad_prototypes.shape(),
            &[Some(self.prototypes.nrows()), Some(self.prototypes.ncols())],
        )?;
        check::finite("grad_prototypes", &grad_prototypes)?;
        let counts: Vec<usize> = self.counts.to_vec();
        Ok(from_f64(prototypes_backward(&to_f64(grad_prototypes), &self.assignment, &counts)))
    }
}

/// (prototypes, labels ascending, counts, assignment) in f64; inputs already validated.
fn prototypes_f64(
    support: &Array2<f64>,
    labels: ArrayView1<'_, i64>,
) -> (Array2<f64>, Vec<i64>, Vec<usize>, Vec<usize>) {
    let mut classes: Vec<i64> = labels.to_vec();
    classes.sort_unstable();
    classes.dedup();
    let assignment: Vec<usize> = labels.iter().map(|l| classes.partition_point(|c| c < l)).collect();
    let mut sums = Array2::<f64>::zeros((classes.len(), support.ncols()));
    let mut counts = vec![0usize; classes.len()];
    for (row, &w) in support.rows().into_iter().zip(&assignment) {
        sums.row_mut(w).zip_mut_with(&row, |s, &x| *s += x);
        counts[w] += 1;
    }
    for (mut row, &c) in sums.rows_mut().into_iter().zip(&counts) {
        row.mapv_inplace(|s| s / c as f64);
    }
    (sums, classes, counts, assignment)
}

fn prototypes_backward(grad: &Array2<f64>, assignment: &[usize], counts: &[usize]) -> Array2<f64> {
    let mut out = Array2::<f64>::zeros((assignment.len(), grad.ncols()));
    for (mut row, &w) in out.rows_mut().into_iter().zip(assignment) {
        let c = counts[w] as f64;
        row.zip_mut_with(&grad.row(w), |o, &g| *o = g / c);
    }
    out
}

// ---------------------------------------------------------------------------------------------------------------
// Proto-Triplet

/// Proto-Triplet loss: a triplet loss whose anchor is a query, whose positive is the prototype of its class and
/// whose negative is the nearest prototype of another class.
///
/// ```text
/// ℓ_q = max(0, d(q, c_{y_q}) − min_{w : y_w ≠ y_q} d(q, c_w) + m)        L = (1/Q) Σ_q ℓ_q
/// d(a, b) = √(‖a − b‖² + 1e-6)
/// ```
/// where c_w are the prototypes (the support class means of [`Prototypes`], or any given set) with labels y_w.
/// When several prototypes share the query's label, the positive is the farthest of them (the reference takes the
/// max over same-class prototypes); with one prototype per class, as in ProtoNet, it is the class's own.
/// The ε = 1e-6 of [`EPISODIC_SQRT_EPS`] is the reference's. Every prototype is ranked (the reference's
/// `nearest_neighbors(queries, protos, k=way)` with `way` = the number of prototypes).
///
/// # Parameters
/// * `margin`: m, default 0.5 (the reference's `proto_triplet_loss(..., margin=0.5)`); any finite value.
///
/// # Shapes
/// `queries` [Q, D], `query_labels` `[Q]`, `prototypes` [W, D], `prototype_labels` `[W]` (any integers: only
/// equality matters); or a support set [S, D] with labels `[S]` through [`compute_episode`](Self::compute_episode).
///
/// # Gradient
/// Of the active piece: an active query (ℓ_q > 0) adds +1/Q to ∂L/∂d(q, positive) and −1/Q to ∂L/∂d(q, negative);
/// ∂d/∂q = (q − c)/d. A query exactly on the hinge (ℓ_q = 0) gets the subgradient 0. Ties in the min (or the max)
/// pick the first prototype in index order. Through [`compute_episode`](Self::compute_episode) the prototype
/// gradient is chained to the support rows by [`Prototypes::backward`].
///
/// # Errors
/// [`Error::Parameter`] for a non-finite margin; [`Error::Empty`], [`Error::Shape`], [`Error::NonFinite`];
/// [`Error::Input`] when a query's label has no prototype; [`Error::Degenerate`] when a query has no prototype of
/// another class.
///
/// # Examples
/// ```
/// use losskit_losses::ProtoTriplet;
/// let support = ndarray::array![[0.0_f64, 0.0], [0.2, 0.0], [3.0, 0.0], [3.2, 0.0]];
/// let queries = ndarray::array![[2.0_f64, 0.0], [3.0, 0.1]];
/// let (ys, yq) = (ndarray::array![0_i64, 0, 1, 1], ndarray::array![0_i64, 1]);
/// let out = ProtoTriplet::new().compute_episode(support.view(), ys.view(), queries.view(), yq.view(), true)?;
/// // Query 0 is closer to the other prototype (1.1) than to its own (1.9): ℓ ≈ 1.9 − 1.1 + 0.5.
/// assert!((out.value - (1.9 - 1.1 + 0.5) / 2.0).abs() < 1e-5);
/// assert!(out.grad_support.is_some());
/// # Ok::<(), losskit_losses::Error>(())
/// ```
///
/// # References
/// Mendez-Ruiz, Gonzalez-Zapata, Reyes-Amezcua, Flores-Araiza, Lopez-Tiro, Mendez-Vazquez, Ochoa-Ruiz (2023), *SuSana Distancia is all
/// you need: Enforcing class separability in metric learning via two novel distance-based loss functions for
/// few-shot image classification*, arXiv:2305.09062 (docs/papers.md key `mendezruiz2023susana`); semantics of the
/// authors' code, maumruiz/FSL-Loss `algorithms/icnn_loss.py` `proto_triplet_loss`.
#[derive(Clone, Debug, PartialEq)]
pub struct ProtoTriplet {
    /// m. Default 0.5.
    pub margin: f64,
    /// How the per-query losses are combined. Default [`Reduction::Mean`] (the reference's `torch.mean`);
    /// [`Reduction::Sum`] and [`Reduction::None`] give their sum.
    pub reduction: Reduction,
}

impl Default for ProtoTriplet {
    fn default() -> Self {
        Self { margin: 0.5, reduction: Reduction::Mean }
    }
}

impl ProtoTriplet {
    /// The reference's defaults (margin 0.5).
    pub fn new() -> Self {
        Self::default()
    }
    /// m (default 0.5).
    pub fn margin(mut self, v: f64) -> Self {
        self.margin = v;
        self
    }
    /// Reduction of the per-query losses (default [`Reduction::Mean`]).
    pub fn reduction(mut self, r: Reduction) -> Self {
        self.reduction = r;
        self
    }

    /// Validates the parameters.
    ///
    /// # Errors
    /// [`Error::Parameter`] naming `margin`.
    pub fn check(&self) -> Result<()> {
        check::finite_param("margin", self.margin)
    }

    /// The loss of `queries` against given `prototypes`; fills `per_sample`, `grad_queries` and `grad_prototypes`.
    ///
    /// # Errors
    /// See the type.
    pub fn compute<F: Real>(
        &self,
        queries: ArrayView2<'_, F>,
        query_labels: ArrayView1<'_, i64>,
        prototypes: ArrayView2<'_, F>,
        prototype_labels: ArrayView1<'_, i64>,
        grad: bool,
    ) -> Result<EpisodeOutput<F>> {
        self.check()?;
        check_set("prototypes", prototypes, "prototype_labels", prototype_labels, None)?;
        check_set("queries", queries, "query_labels", query_labels, Some(prototypes.ncols()))?;
        let (value, per, g) = proto_triplet_f64(
            &to_f64(queries),
            query_labels,
            &to_f64(prototypes),
            prototype_labels,
            self.margin,
            self.reduction,
            grad,
        )?;
        let mut out = EpisodeOutput::new(F::c(value));
        out.per_sample = Some(per.mapv(F::c));
        if let Some((gq, gp)) = g {
            out.grad_queries = Some(from_f64(gq));
            out.grad_prototypes = Some(from_f64(gp));
        }
        Ok(out)
    }

    /// The loss of `queries` against the prototypes of `support` (class means, [`Prototypes`]); fills
    /// `per_sample`, `grad_queries`, `grad_prototypes` and `grad_support` (the prototype gradient chained through the
    /// means).
    ///
    /// # Errors
    /// See the type.
    pub fn compute_episode<F: Real>(
        &self,
        support: ArrayView2<'_, F>,
        support_labels: ArrayView1<'_, i64>,
        queries: ArrayView2<'_, F>,
        query_labels: ArrayView1<'_, i64>,
        grad: bool,
    ) -> Result<EpisodeOutput<F>> {
        self.check()?;
        check_set("support", support, "support_labels", support_labels, None)?;
        check_set("queries", queries, "query_labels", query_labels, Some(support.ncols()))?;
        let (protos, labels, counts, assignment) = prototypes_f64(&to_f64(support), support_labels);
        let (value, per, g) = proto_triplet_f64(
            &to_f64(queries),
            query_labels,
            &protos,
            ArrayView1::from(&labels),
            self.margin,
            self.reduction,
            grad,
        )?;
        let mut out = EpisodeOutput::new(F::c(value));
        out.per_sample = Some(per.mapv(F::c));
        if let Some((gq, gp)) = g {
            out.grad_support = Some(from_f64(prototypes_backward(&gp, &assignment, &counts)));
            out.grad_queries = Some(from_f64(gq));
            out.grad_prototypes = Some(from_f64(gp));
        }
        Ok(out)
    }
}

/// The proxy form: `proxies` [C, D] are the prototypes, prototype w has label w, and `labels` must lie in `0..C`
/// (ProtoNet's `proto_labels = arange(way)`). Errors name `embeddings`, `labels` and `proxies`.
impl<F: Real> ProxyLoss<F> for ProtoTriplet {
    fn compute(
        &self,
        embeddings: ArrayView2<'_, F>,
        labels: ArrayView1<'_, i64>,
        proxies: ArrayView2<'_, F>,
        grad: bool,
    ) -> Result<ProxyOutput<F>> {
        // Validate under the proxy family's argument names (the episode methods name queries and prototypes).
        self.check()?;
        check_set("embeddings", embeddings, "labels", labels, None)?;
        check::non_empty("proxies", proxies.nrows())?;
        check::shape("proxies", proxies.shape(), &[None, Some(embeddings.ncols())])?;
        check::finite("proxies", &proxies)?;
        check::labels("labels", labels, proxies.nrows(), None)?;
        let proxy_labels: Array1<i64> = (0..proxies.nrows() as i64).collect();
        let out = ProtoTriplet::compute(self, embeddings, labels, proxies, proxy_labels.view(), grad)?;
        Ok(ProxyOutput {
            value: out.value,
            per_sample: out.per_sample,
            grad: out.grad_queries,
            grad_proxies: out.grad_prototypes,
        })
    }
}

type Grads2 = Option<(Array2<f64>, Array2<f64>)>;

/// Proto-Triplet in f64 on validated inputs: (mean loss, per-query losses, (∂/∂queries, ∂/∂prototypes)).
fn proto_triplet_f64(
    q: &Array2<f64>,
    yq: ArrayView1<'_, i64>,
    p: &Array2<f64>,
    yp: ArrayView1<'_, i64>,
    margin: f64,
    reduction: Reduction,
    grad: bool,
) -> Result<(f64, Array1<f64>, Grads2)> {
    let nq = q.nrows();
    let mut per = Array1::<f64>::zeros(nq);
    let mut g = grad.then(|| (Array2::<f64>::zeros(q.raw_dim()), Array2::<f64>::zeros(p.raw_dim())));
    let scale = match reduction {
        Reduction::Mean => 1.0 / nq as f64,
        _ => 1.0,
    };
    for (i, (qi, &y)) in q.rows().into_iter().zip(yq.iter()).enumerate() {
        let d: Vec<f64> = p.rows().into_iter().map(|c| distance(qi, c)).collect();
        // Positive: the farthest same-label prototype; negative: the nearest other-label one (first on ties).
        let (mut pos, mut neg): (Option<usize>, Option<usize>) = (None, None);
        for (w, (&dw, &lw)) in d.iter().zip(yp.iter()).enumerate() {
            if lw == y {
                if pos.is_none_or(|b| dw > d[b]) {
                    pos = Some(w);
                }
            } else if neg.is_none_or(|b| dw < d[b]) {
                neg = Some(w);
            }
        }
        let Some(pos) = pos else {
            return Err(Error::Input { what: format!("query_labels: label {y} at index {i} has no prototype") });
        };
        let Some(neg) = neg else {
            return Err(Error::Degenerate {
                what: format!("prototype_labels: every prototype has label {y} (query {i}); another class is needed"),
            });
        };
        let h = d[pos] - d[neg] + margin;
        if h > 0.0 {
            per[i] = h;
            if let Some((gq, gp)) = g.as_mut() {
                chain_distance(scale, d[pos], qi, p.row(pos), gq.row_mut(i), gp.row_mut(pos));
                chain_distance(-scale, d[neg], qi, p.row(neg), gq.row_mut(i), gp.row_mut(neg));
            }
        }
    }
    let value = per.sum() * scale;
    Ok((value, per, g))
}

// ---------------------------------------------------------------------------------------------------------------
// ICNN score

/// The ICNN score of a set and, when asked, its gradient (of the score itself, not of −log).
#[derive(Clone, Debug, PartialEq)]
pub struct IcnnScore<F> {
    /// The score, in (0, 1]; higher is better separated.
    pub score: F,
    /// ∂score/∂origin [N, D] (with no separate target, the origin is also the target and both paths are summed).
    pub grad_origin: Option<Array2<F>>,
    /// ∂score/∂target [M, D] when a separate target was given.
    pub grad_target: Option<Array2<F>>,
}

/// The modified ICNN score of Mendez-Ruiz et al. (2023) (the reference's `modified_score(origin, y_orig, target,
/// y_targ, k, ipc)`), with its gradient.
///
/// ```text
/// k ← M − 2 if k + 2 ≥ M          ipc ← k + 1 when not given          M = number of target rows
/// for each origin row i: its ipc + 1 nearest target rows by d(a, b) = √(‖a − b‖² + 1e-6), nearest first; the
///   first is dropped (the row itself when target = origin), leaving d_i1 ≤ … ≤ d_i,ipc with same-class flags s_ij
/// n_i  = min{ d_ij : j ≤ ipc, s_ij = 0 }            (+∞ when every one of the ipc is of the row's class)
/// r_ij = (d_ij / (n_i + ε)) / max(1, max_{j≤k} d_ij / (n_i + ε))        for j ≤ k
/// λ_s  = 1 − Σ_i (Σ_{j≤k} s_ij r_ij / (Σ_{j≤k} s_ij + ε)) / (#{i : Σ_{j≤k} s_ij > 0} + ε)
/// G    = max_{i, j≤k} (1 − s_ij) d_ij                                  (a global max, over every row)
/// λ_d  = | Σ_i (Σ_{j≤k} (1 − s_ij) d_ij / (G + ε) / (Σ_{j≤k} (1 − s_ij) + ε)) / (#{i : Σ_{j≤k} (1 − s_ij) > 0} + ε)
///          − [no different-class pair at all in the first k columns] |
/// γ    = (1/N) Σ_i Σ_{j≤k} s_ij / k   if k + 2 < M, else 1
/// score = ((λ_s + λ_d) / 2 + γ) / 2              ε = 1e-7
/// ```
/// Quirks kept from the reference: the first neighbour column is dropped even when the target is another set (then
/// it is the nearest target row, not the row itself); a row with no different-class neighbour has n_i = +∞ and so
/// r_ij = 0 (the reference's "zero to +∞" trick on the masked distances); rows normalise by max(1, row max); the
/// different-class distances are normalised by their global max G; with no different-class pair λ_d = |0 − 1| = 1;
/// a row with no same-class neighbour adds 0 to λ_s; when ipc < k the slices stop at ipc but γ still divides by k.
/// Ties in the neighbour ranking are broken by the lower target index (with target = origin, a row's own copy
/// comes first among equal distances).
///
/// # Parameters
/// * `k`: neighbours scored, ≥ 1, default 4 in [`IcnnLoss`] (reference default); clamped to M − 2 as above.
/// * `ipc`: neighbours searched ("instances per class"), ≥ 1 and ≤ M − 1; `None` = k + 1.
///
/// # Shapes
/// `origin` [N, D] with `origin_labels` `[N]`; optional `target` [M, D] with labels `[M]` (default: the origin).
///
/// # Gradient
/// The score is piecewise smooth: the neighbour sets, the nearest different-class neighbour, the row maxima, the
/// max(1, ·) and the global max G are fixed at the point, and the gradient is that of the active piece (what
/// autograd gives on the reference), chained through ∂d/∂a = (a − b)/d. γ and the counts are piecewise constant.
///
/// # Errors
/// [`Error::Parameter`] for k = 0 or ipc outside 1..=M − 1; [`Error::Empty`], [`Error::Shape`],
/// [`Error::NonFinite`]; [`Error::Degenerate`] for fewer than 3 target rows.
///
/// # References
/// Mendez-Ruiz et al. (2023), arXiv:2305.09062 (docs/papers.md key `mendezruiz2023susana`), maumruiz/FSL-Loss
/// `algorithms/icnn_loss.py` `modified_score`; the original ICNN score: García Ramírez et al., *Supervised feature
/// space reduction for multi-label classification*.
pub fn icnn_score<F: Real>(
    origin: ArrayView2<'_, F>,
    origin_labels: ArrayView1<'_, i64>,
    target: Option<Reference<'_, F>>,
    k: usize,
    ipc: Option<usize>,
    grad: bool,
) -> Result<IcnnScore<F>> {
    check_set("origin", origin, "origin_labels", origin_labels, None)?;
    let o = to_f64(origin);
    let (score, g) = match target {
        None => {
            let (s, g) = icnn_f64(&o, origin_labels, None, k, ipc, grad)?;
            (s, g.map(|(go, gt)| (go + &gt, None)))
        }
        Some(t) => {
            check_set("target", t.embeddings, "target_labels", t.labels, Some(origin.ncols()))?;
            let tt = to_f64(t.embeddings);
            let (s, g) = icnn_f64(&o, origin_labels, Some((&tt, t.labels)), k, ipc, grad)?;
            (s, g.map(|(go, gt)| (go, Some(gt))))
        }
    };
    let (grad_origin, grad_target) = match g {
        Some((go, gt)) => (Some(from_f64(go)), gt.map(from_f64)),
        None => (None, None),
    };
    Ok(IcnnScore { score: F::c(score), grad_origin, grad_target })
}

/// The ICNN score in f64 on validated inputs; the gradient is (∂/∂origin, ∂/∂target) with the target paths kept
/// apart even when the target is the origin (`target = None`).
fn icnn_f64(
    o: &Array2<f64>,
    yo: ArrayView1<'_, i64>,
    target: Option<(&Array2<f64>, ArrayView1<'_, i64>)>,
    k: usize,
    ipc: Option<usize>,
    grad: bool,
) -> Result<(f64, Grads2)> {
    let same_set = target.is_none();
    let (t, yt) = target.unwrap_or((o, yo));
    let (n, m) = (o.nrows(), t.nrows());
    if k == 0 {
        return Err(Error::Parameter { name: "k", value: 0.0, reason: "must be ≥ 1" });
    }
    if m < 3 {
        return Err(Error::Degenerate {
            what: format!("icnn score needs at least 3 target rows (k is clamped to rows − 2 ≥ 1), got {m}"),
        });
    }
    let k = if k + 2 >= m { m - 2 } else { k };
    let ipc = ipc.unwrap_or(k + 1);
    if ipc == 0 || ipc + 1 > m {
        return Err(Error::Parameter {
            name: "ipc",
            value: ipc as f64,
            reason: "must be ≥ 1 and at most the number of target rows minus 1",
        });
    }
    let kk = k.min(ipc);

    // The ipc + 1 nearest target rows of each origin row, the first dropped.
    let mut nb_idx = vec![0usize; n * ipc];
    let mut nb_d = vec![0.0f64; n * ipc];
    let mut cand: Vec<(f64, bool, usize)> = Vec::with_capacity(m);
    for (i, oi) in o.rows().into_iter().enumerate() {
        cand.clear();
        cand.extend(t.rows().into_iter().enumerate().map(|(j, tj)| (distance(oi, tj), same_set && j != i, j)));
        let key = |a: &(f64, bool, usize), b: &(f64, bool, usize)| {
            a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2))
        };
        if ipc + 1 < m {
            cand.select_nth_unstable_by(ipc, key);
            cand.truncate(ipc + 1);
        }
        cand.sort_unstable_by(key);
        for (j, c) in cand.iter().skip(1).enumerate() {
            nb_idx[i * ipc + j] = c.2;
            nb_d[i * ipc + j] = c.0;
        }
    }
    let same: Vec<bool> = nb_idx.iter().enumerate().map(|(f, &j)| yt[j] == yo[f / ipc]).collect();

    // Per row: the nearest different-class neighbour among the ipc, the ratios r_ij (j < kk) and their row max.
    struct Row {
        near: Option<usize>,
        argmax: Option<usize>,
        norm: f64,
        sc_count: usize,
        sc_sum: f64,
        dc_count: usize,
        dc_sum: f64,
    }
    let mut rows = Vec::with_capacity(n);
    let (mut g_max, mut g_arg) = (0.0f64, None::<usize>);
    for i in 0..n {
        let d = &nb_d[i * ipc..(i + 1) * ipc];
        let s = &same[i * ipc..(i + 1) * ipc];
        // Sorted ascending, so the first different-class column is the minimum.
        let near = s.iter().position(|&x| !x);
        let den = near.map_or(f64::INFINITY, |j| d[j] + ICNN_EPS);
        let (mut rmax, mut argmax) = (f64::NEG_INFINITY, None);
        for (j, &dj) in d.iter().enumerate().take(kk) {
            let r = dj / den;
            if r > rmax {
                rmax = r;
                argmax = Some(j);
            }
        }
        // max(1, row max): the 1 wins ties, so the row max carries a gradient only above 1.
        let (norm, argmax) = if rmax > 1.0 { (rmax, argmax) } else { (1.0, None) };
        let (mut sc_count, mut sc_sum, mut dc_count, mut dc_sum) = (0, 0.0, 0, 0.0);
        for j in 0..kk {
            if s[j] {
                sc_count += 1;
                sc_sum += d[j] / den / norm;
            } else {
                dc_count += 1;
                dc_sum += d[j];
                if d[j] > g_max {
                    g_max = d[j];
                    g_arg = Some(i * ipc + j);
                }
            }
        }
        rows.push(Row { near, argmax, norm, sc_count, sc_sum, dc_count, dc_sum });
    }
    let nz_sc = rows.iter().filter(|r| r.sc_count > 0).count() as f64;
    let nz_dc = rows.iter().filter(|r| r.dc_count > 0).count() as f64;
    let lambda_same =
        1.0 - rows.iter().map(|r| r.sc_sum / (r.sc_count as f64 + ICNN_EPS)).sum::<f64>() / (nz_sc + ICNN_EPS);
    let gden = g_max + ICNN_EPS;
    let other_raw =
        rows.iter().map(|r| r.dc_sum / gden / (r.dc_count as f64 + ICNN_EPS)).sum::<f64>() / (nz_dc + ICNN_EPS);
    let offset = if nz_dc > 0.0 { 0.0 } else { -1.0 };
    let lambda_other = (other_raw + offset).abs();
    let gamma = if k + 2 < m { rows.iter().map(|r| r.sc_count as f64 / k as f64).sum::<f64>() / n as f64 } else { 1.0 };
    let score = ((lambda_same + lambda_other) / 2.0 + gamma) / 2.0;
    if !grad {
        return Ok((score, None));
    }

    // ∂score/∂d_ij, then through the distances.
    let mut gd = vec![0.0f64; n * ipc];
    let g_same_row = -0.25 / (nz_sc + ICNN_EPS);
    // d|x|/dx, 0 at 0 as torch's abs; x < 0 only when no different-class pair exists, and then no gradient flows.
    let sign = if other_raw + offset > 0.0 { 1.0 } else { 0.0 };
    let g_other_row = if offset == 0.0 { 0.25 * sign / (nz_dc + ICNN_EPS) } else { 0.0 };
    let mut g_gmax = 0.0;
    for (i, r) in rows.iter().enumerate() {
        let d = &nb_d[i * ipc..(i + 1) * ipc];
        let s = &same[i * ipc..(i + 1) * ipc];
        let gi = &mut gd[i * ipc..(i + 1) * ipc];
        if let (Some(nj), true) = (r.near, r.sc_count > 0) {
            // λ_s path: r_ij = (d_ij / den) / norm, den = d_i,near + ε, norm = max(1, max_j d_ij / den).
            let den = d[nj] + ICNN_EPS;
            let c = g_same_row / (r.sc_count as f64 + ICNN_EPS);
            let mut g_ratio = vec![0.0f64; kk]; // ∂/∂(d_ij / den)
            for j in 0..kk {
                if s[j] {
                    g_ratio[j] += c / r.norm;
                }
            }
            if let Some(a) = r.argmax {
                // ∂/∂norm of Σ_j s_ij (d_ij/den)/norm = −sc_sum / norm.
                g_ratio[a] += -c * r.sc_sum / r.norm;
            }
            let mut g_den = 0.0;
            for j in 0..kk {
                gi[j] += g_ratio[j] / den;
                g_den -= g_ratio[j] * d[j] / (den * den);
            }
            gi[nj] += g_den;
        }
        if r.dc_count > 0 && g_other_row != 0.0 {
            let e = g_other_row / (r.dc_count as f64 + ICNN_EPS);
            for j in 0..kk {
                if !s[j] {
                    gi[j] += e / gden;
                }
            }
            g_gmax -= e * r.dc_sum / (gden * gden);
        }
    }
    if let Some(f) = g_arg {
        gd[f] += g_gmax;
    }
    let mut go = Array2::<f64>::zeros(o.raw_dim());
    let mut gt = Array2::<f64>::zeros(t.raw_dim());
    for (f, &g) in gd.iter().enumerate() {
        if g != 0.0 {
            let (i, j) = (f / ipc, nb_idx[f]);
            chain_distance(g, nb_d[f], o.row(i), t.row(j), go.row_mut(i), gt.row_mut(j));
        }
    }
    Ok((score, Some((go, gt))))
}

// ---------------------------------------------------------------------------------------------------------------
// ICNN loss

/// Which sets the ICNN loss scores, as the reference's `get_icnn_loss` options.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IcnnMode {
    /// `suppicnn`: the support set against itself.
    Support,
    /// `queryicnn`: the queries against the support set.
    Query,
    /// `queryicnn` with `query_protos`: the queries against the support prototypes (class means).
    QueryPrototypes,
    /// `fullicnn`: support and queries together, ipc = shot + query (the samples per class).
    Full,
}

impl IcnnMode {
    /// Registry words, in variant order.
    pub const NAMES: &'static [&'static str] = &["support", "query", "query-prototypes", "full"];

    /// Parses a registry word.
    ///
    /// # Errors
    /// [`Error::ParameterText`] naming `mode`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "support" => Ok(IcnnMode::Support),
            "query" => Ok(IcnnMode::Query),
            "query-prototypes" => Ok(IcnnMode::QueryPrototypes),
            "full" => Ok(IcnnMode::Full),
            _ => Err(Error::ParameterText {
                name: "mode".into(),
                value: s.into(),
                reason: format!("expected one of {}", Self::NAMES.join(", ")),
            }),
        }
    }
}

/// ICNN loss: −log of the ICNN neighbourhood score ([`icnn_score`]) of an episode's embeddings.
///
/// ```text
/// L = −ln score(origin, target; k, ipc)
/// support:           origin = target = support                      ipc = k + 1
/// query:             origin = queries, target = support             ipc = k + 1
/// query-prototypes:  origin = queries, target = prototypes (means)  ipc = k + 1
/// full:              origin = target = [support; queries]           ipc = shot + query
/// ```
/// as the reference's `get_icnn_loss` computes `suppicnn`, `queryicnn` (with or without `query_protos`) and
/// `fullicnn`. In the query modes the first neighbour column is still dropped (the reference's quirk): the nearest
/// support row or prototype is not scored. With 5 prototypes k is clamped to 3 and γ = 1.
///
/// # Parameters
/// * `k`: neighbours scored, default 4 (the reference's `modified_score(..., k=4)`), ≥ 1; clamped to M − 2.
/// * `ipc`: neighbours searched; default `None` = k + 1, or in `full` mode the number of samples of the most
///   frequent class of the episode (shot + query for a balanced episode, the reference's `args.shot + args.query`).
///
/// # Shapes
/// `support` [S, D] with `support_labels` `[S]`, `queries` [Q, D] with `query_labels` `[Q]` (any integer labels).
///
/// # Gradient
/// That of the active piece (see [`icnn_score`]), times −1/score; chained through the class means in
/// `query-prototypes` mode.
///
/// # Errors
/// [`Error::Parameter`] for k = 0 or a bad ipc; shape, emptiness and finiteness errors naming the argument;
/// [`Error::Degenerate`] when the scored target set has fewer than 3 rows.
///
/// # Examples
/// ```
/// use losskit_losses::{IcnnLoss, IcnnMode};
/// let support = ndarray::array![[0.0_f64, 0.0], [0.1, 0.3], [0.2, 0.1], [5.0, 5.0], [5.3, 5.1], [5.1, 4.8]];
/// let labels = ndarray::array![0_i64, 0, 0, 1, 1, 1];
/// let out = IcnnLoss::new().k(2).compute_episode(
///     IcnnMode::Support, support.view(), labels.view(), support.view(), labels.view(), true)?;
/// let score = out.score.unwrap_or(0.0);
/// assert!(score > 0.5 && (out.value + score.ln()).abs() < 1e-12);
/// # Ok::<(), losskit_losses::Error>(())
/// ```
///
/// # References
/// Mendez-Ruiz et al. (2023), arXiv:2305.09062 (docs/papers.md key `mendezruiz2023susana`), maumruiz/FSL-Loss
/// `algorithms/icnn_loss.py` `get_icnn_loss`, `modified_score`.
#[derive(Clone, Debug, PartialEq)]
pub struct IcnnLoss {
    /// k. Default 4.
    pub k: usize,
    /// ipc. Default `None` (k + 1; in `full` mode the samples per class).
    pub ipc: Option<usize>,
}

impl Default for IcnnLoss {
    fn default() -> Self {
        Self { k: 4, ipc: None }
    }
}

impl IcnnLoss {
    /// The reference's defaults (k = 4, ipc automatic).
    pub fn new() -> Self {
        Self::default()
    }
    /// k (default 4).
    pub fn k(mut self, k: usize) -> Self {
        self.k = k;
        self
    }
    /// ipc (default `None`: automatic).
    pub fn ipc(mut self, ipc: Option<usize>) -> Self {
        self.ipc = ipc;
        self
    }

    /// Validates the parameters (the bounds that depend on the set size are checked at compute time).
    ///
    /// # Errors
    /// [`Error::Parameter`] naming `k` (0) or `ipc` (0).
    pub fn check(&self) -> Result<()> {
        if self.k == 0 {
            return Err(Error::Parameter { name: "k", value: 0.0, reason: "must be ≥ 1" });
        }
        if self.ipc == Some(0) {
            return Err(Error::Parameter { name: "ipc", value: 0.0, reason: "must be ≥ 1" });
        }
        Ok(())
    }

    /// The loss of the support set scored against itself (`suppicnn`); fills `score` and `grad_support`.
    ///
    /// # Errors
    /// See the type.
    pub fn support<F: Real>(
        &self,
        support: ArrayView2<'_, F>,
        support_labels: ArrayView1<'_, i64>,
        grad: bool,
    ) -> Result<EpisodeOutput<F>> {
        self.check()?;
        check_set("support", support, "support_labels", support_labels, None)?;
        let (score, g) = icnn_f64(&to_f64(support), support_labels, None, self.k, self.ipc, grad)?;
        let mut out = loss_output(score)?;
        if let Some((go, gt)) = g {
            out.grad_support = Some(from_f64(log_grad(go + &gt, score)));
        }
        Ok(out)
    }

    /// The loss of the queries scored against `reference` (the support set, or given prototypes: `queryicnn`);
    /// fills `score`, `grad_queries` and `grad_support` (the gradient of the reference rows, whatever they are).
    ///
    /// # Errors
    /// See the type.
    pub fn query<F: Real>(
        &self,
        queries: ArrayView2<'_, F>,
        query_labels: ArrayView1<'_, i64>,
        reference: ArrayView2<'_, F>,
        reference_labels: ArrayView1<'_, i64>,
        grad: bool,
    ) -> Result<EpisodeOutput<F>> {
        self.check()?;
        check_set("support", reference, "support_labels", reference_labels, None)?;
        check_set("queries", queries, "query_labels", query_labels, Some(reference.ncols()))?;
        let t = to_f64(reference);
        let (score, g) =
            icnn_f64(&to_f64(queries), query_labels, Some((&t, reference_labels)), self.k, self.ipc, grad)?;
        let mut out = loss_output(score)?;
        if let Some((go, gt)) = g {
            out.grad_queries = Some(from_f64(log_grad(go, score)));
            out.grad_support = Some(from_f64(log_grad(gt, score)));
        }
        Ok(out)
    }

    /// The loss of the queries scored against the prototypes of `support` (`queryicnn` with `query_protos`); fills
    /// `score`, `grad_queries`, `grad_prototypes` and `grad_support` (through the class means).
    ///
    /// # Errors
    /// See the type.
    pub fn query_prototypes<F: Real>(
        &self,
        support: ArrayView2<'_, F>,
        support_labels: ArrayView1<'_, i64>,
        queries: ArrayView2<'_, F>,
        query_labels: ArrayView1<'_, i64>,
        grad: bool,
    ) -> Result<EpisodeOutput<F>> {
        self.check()?;
        check_set("support", support, "support_labels", support_labels, None)?;
        check_set("queries", queries, "query_labels", query_labels, Some(support.ncols()))?;
        let (protos, labels, counts, assignment) = prototypes_f64(&to_f64(support), support_labels);
        let (score, g) = icnn_f64(
            &to_f64(queries),
            query_labels,
            Some((&protos, ArrayView1::from(&labels))),
            self.k,
            self.ipc,
            grad,
        )?;
        let mut out = loss_output(score)?;
        if let Some((go, gt)) = g {
            let gp = log_grad(gt, score);
            out.grad_support = Some(from_f64(prototypes_backward(&gp, &assignment, &counts)));
            out.grad_queries = Some(from_f64(log_grad(go, score)));
            out.grad_prototypes = Some(from_f64(gp));
        }
        Ok(out)
    }

    /// The loss of support and queries scored together (`fullicnn`); fills `score`, `grad_support` and
    /// `grad_queries`.
    ///
    /// # Errors
    /// See the type.
    pub fn full<F: Real>(
        &self,
        support: ArrayView2<'_, F>,
        support_labels: ArrayView1<'_, i64>,
        queries: ArrayView2<'_, F>,
        query_labels: ArrayView1<'_, i64>,
        grad: bool,
    ) -> Result<EpisodeOutput<F>> {
        self.check()?;
        check_set("support", support, "support_labels", support_labels, None)?;
        check_set("queries", queries, "query_labels", query_labels, Some(support.ncols()))?;
        let both = concatenate(Axis(0), &[to_f64(support).view(), to_f64(queries).view()])
            .map_err(|_| Error::Input { what: "support and queries cannot be stacked".into() })?;
        let labels: Array1<i64> = support_labels.iter().chain(query_labels.iter()).copied().collect();
        let ipc = self.ipc.unwrap_or_else(|| {
            let mut sorted = labels.to_vec();
            sorted.sort_unstable();
            sorted.chunk_by(|a, b| a == b).map(<[i64]>::len).max().unwrap_or(1)
        });
        let (score, g) = icnn_f64(&both, labels.view(), None, self.k, Some(ipc), grad)?;
        let mut out = loss_output(score)?;
        if let Some((go, gt)) = g {
            let g = log_grad(go + &gt, score);
            let ns = support.nrows();
            out.grad_support = Some(from_f64(g.slice(ndarray::s![..ns, ..]).to_owned()));
            out.grad_queries = Some(from_f64(g.slice(ndarray::s![ns.., ..]).to_owned()));
        }
        Ok(out)
    }

    /// Dispatches on `mode` (for the command line): `support` ignores the queries.
    ///
    /// # Errors
    /// Those of the mode's method.
    pub fn compute_episode<F: Real>(
        &self,
        mode: IcnnMode,
        support: ArrayView2<'_, F>,
        support_labels: ArrayView1<'_, i64>,
        queries: ArrayView2<'_, F>,
        query_labels: ArrayView1<'_, i64>,
        grad: bool,
    ) -> Result<EpisodeOutput<F>> {
        match mode {
            IcnnMode::Support => self.support(support, support_labels, grad),
            IcnnMode::Query => self.query(queries, query_labels, support, support_labels, grad),
            IcnnMode::QueryPrototypes => self.query_prototypes(support, support_labels, queries, query_labels, grad),
            IcnnMode::Full => self.full(support, support_labels, queries, query_labels, grad),
        }
    }
}

/// The embedding form: without a reference the embeddings are scored against themselves (`support` mode, ipc
/// default k + 1), with one the embeddings are the queries and the reference the support set (`query` mode).
/// `per_sample` is `None` and the registry's `reduction` is ignored (the score is a set-level quantity). Errors
/// name `embeddings`, `labels`, `reference_embeddings` and `reference_labels`; a set of fewer than 3 rows is
/// [`Error::Degenerate`].
impl<F: Real> EmbeddingLoss<F> for IcnnLoss {
    fn compute(
        &self,
        embeddings: ArrayView2<'_, F>,
        labels: ArrayView1<'_, i64>,
        reference: Option<Reference<'_, F>>,
        grad: bool,
    ) -> Result<EmbeddingOutput<F>> {
        // Validate under the embedding family's argument names (the episode methods name support and queries).
        self.check()?;
        check_set("embeddings", embeddings, "labels", labels, None)?;
        if let Some(r) = reference {
            check_set("reference_embeddings", r.embeddings, "reference_labels", r.labels, Some(embeddings.ncols()))?;
        }
        match reference {
            None => {
                let out = self.support(embeddings, labels, grad)?;
                Ok(EmbeddingOutput { value: out.value, per_sample: None, grad: out.grad_support, grad_reference: None })
            }
            Some(r) => {
                let out = self.query(embeddings, labels, r.embeddings, r.labels, grad)?;
                Ok(EmbeddingOutput {
                    value: out.value,
                    per_sample: None,
                    grad: out.grad_queries,
                    grad_reference: out.grad_support,
                })
            }
        }
    }
}

fn loss_output<F: Real>(score: f64) -> Result<EpisodeOutput<F>> {
    // The score is > 0 by construction (λ_s = 1 when no row has a same-class neighbour, λ_d = 1 when none has a
    // different-class one); guard anyway so that −ln never returns +∞ silently.
    if score.is_nan() || score <= 0.0 {
        return Err(Error::Degenerate { what: format!("icnn score is {score}; −ln(score) is undefined") });
    }
    let mut out = EpisodeOutput::new(F::c(-score.ln()));
    out.score = Some(F::c(score));
    Ok(out)
}

/// ∂(−ln s)/∂x = −(∂s/∂x) / s.
fn log_grad(g: Array2<f64>, score: f64) -> Array2<f64> {
    g.mapv(|v| -v / score)
}

// ---------------------------------------------------------------------------------------------------------------
// Registry

const REFERENCE: &str = "Mendez-Ruiz, Gonzalez-Zapata, Reyes-Amezcua, Flores-Araiza, Lopez-Tiro, Mendez-Vazquez, Ochoa-Ruiz (2023), SuSana \
                         Distancia is all you need: Enforcing class separability in metric learning via two novel \
                         distance-based loss functions for few-shot image classification, arXiv:2305.09062";

impl ProtoTriplet {
    /// Builds the config from registry parameters (`margin`) and checks it.
    ///
    /// # Errors
    /// As [`ProtoTriplet::check`]; [`Error::UnknownParameter`] for a name the registry entry does not list.
    pub fn from_params(p: &Params) -> Result<Self> {
        let cfg = Self { margin: p.f64("margin")?, reduction: p.reduction() };
        cfg.check()?;
        Ok(cfg)
    }
}

impl IcnnLoss {
    /// Builds the config from registry parameters (`k`; `ipc`, where 0 means automatic) and checks it.
    ///
    /// # Errors
    /// As [`IcnnLoss::check`]; [`Error::Parameter`] for a `k` or `ipc` that is not a non-negative integer.
    pub fn from_params(p: &Params) -> Result<Self> {
        let int = |name: &'static str, v: f64| {
            if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= u32::MAX as f64 {
                Ok(v as usize)
            } else {
                Err(Error::Parameter { name, value: v, reason: "must be an integer ≥ 0" })
            }
        };
        let k = int("k", p.f64("k")?)?;
        let ipc = int("ipc", p.f64("ipc")?)?;
        let cfg = Self { k, ipc: (ipc > 0).then_some(ipc) };
        cfg.check()?;
        Ok(cfg)
    }
}

const PROTO_TRIPLET_PARAMS: &[ParamSpec] =
    &[param("margin", "0.5", Range::Any, "m: hinge margin on raw Euclidean distances (reference margin=0.5)")];

const ICNN_PARAMS: &[ParamSpec] = &[
    param("k", "4", Range::IntAtLeast(1), "neighbours scored (reference k=4); clamped to M − 2"),
    param("ipc", "0", Range::IntAtLeast(0), "neighbours searched; 0 = automatic (k + 1)"),
];

fn build_proto_triplet(p: &Params) -> Result<BuiltLoss> {
    ProtoTriplet::from_params(p).map(|_| BuiltLoss::default())
}

pub(crate) fn build_metric_proto_triplet(p: &Params) -> Result<MetricForms> {
    Ok(MetricForms { embedding: None, proxy: Some(Box::new(ProtoTriplet::from_params(p)?)) })
}

fn build_icnn(p: &Params) -> Result<BuiltLoss> {
    IcnnLoss::from_params(p).map(|_| BuiltLoss::default())
}

pub(crate) fn build_metric_icnn(p: &Params) -> Result<MetricForms> {
    Ok(MetricForms { embedding: Some(Box::new(IcnnLoss::from_params(p)?)), proxy: None })
}

/// Registry entry of [`ProtoTriplet`] (proxy form: the proxies are the prototypes, proxy c has label c).
pub(crate) const PROTO_TRIPLET_ENTRY: LossEntry = LossEntry {
    name: "proto-triplet",
    family: Family::Proxy,
    summary: "Proto-Triplet: hinge on (farthest own prototype − nearest other prototype + m), raw Euclidean",
    paper: "mendezruiz2023susana",
    reference: REFERENCE,
    params: PROTO_TRIPLET_PARAMS,
    build: build_proto_triplet,
};

/// Registry entry of [`IcnnLoss`] (embedding form: scored against themselves, or as queries against a reference).
pub(crate) const ICNN_ENTRY: LossEntry = LossEntry {
    name: "icnn",
    family: Family::Embedding,
    summary: "ICNN loss: −ln of the ICNN neighbourhood score (intra-class compactness, inter-class separation)",
    paper: "mendezruiz2023susana",
    reference: REFERENCE,
    params: ICNN_PARAMS,
    build: build_icnn,
};

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn non_finite_margin_is_rejected() {
        assert!(matches!(ProtoTriplet::new().margin(f64::NAN).check(), Err(Error::Parameter { name: "margin", .. })));
    }

    #[test]
    fn zero_k_and_zero_ipc_are_rejected() {
        assert!(matches!(IcnnLoss::new().k(0).check(), Err(Error::Parameter { name: "k", .. })));
        assert!(matches!(IcnnLoss::new().ipc(Some(0)).check(), Err(Error::Parameter { name: "ipc", .. })));
    }

    #[test]
    fn prototypes_are_class_means_in_label_order() {
        let s = array![[1.0_f64, 0.0], [3.0, 2.0], [10.0, 10.0]];
        let p = Prototypes::from_support(s.view(), array![7_i64, 2, 7].view()).unwrap();
        assert_eq!(p.labels, array![2, 7]);
        assert_eq!(p.prototypes, array![[3.0, 2.0], [5.5, 5.0]]);
        let g = p.backward(array![[1.0, 1.0], [2.0, 4.0]].view()).unwrap();
        assert_eq!(g, array![[1.0, 2.0], [1.0, 1.0], [1.0, 2.0]]);
    }

    #[test]
    fn mode_words_round_trip() {
        for (i, w) in IcnnMode::NAMES.iter().enumerate() {
            let m = IcnnMode::parse(w).unwrap();
            assert_eq!(IcnnMode::NAMES[i], *w);
            assert!(matches!(m, IcnnMode::Support | IcnnMode::Query | IcnnMode::QueryPrototypes | IcnnMode::Full));
        }
        assert!(IcnnMode::parse("both").is_err());
    }

    #[test]
    fn registry_parameters_build_the_configs() {
        let p = Params::parse("icnn", ICNN_PARAMS, &[("k".into(), "3".into()), ("ipc".into(), "5".into())]).unwrap();
        assert_eq!(IcnnLoss::from_params(&p).unwrap(), IcnnLoss::new().k(3).ipc(Some(5)));
        let p = Params::defaults("icnn", ICNN_PARAMS);
        assert_eq!(IcnnLoss::from_params(&p).unwrap(), IcnnLoss::new());
        assert!(Params::parse("icnn", ICNN_PARAMS, &[("k".into(), "0".into())]).is_err());
        let p = Params::parse("proto-triplet", PROTO_TRIPLET_PARAMS, &[("margin".into(), "0.2".into())]).unwrap();
        assert_eq!(ProtoTriplet::from_params(&p).unwrap(), ProtoTriplet::new().margin(0.2));
    }
}
