//! A D-class linear output layer trained with the Z-loss at a per-example cost independent of D: the exact
//! factored update of the spherical family (Vincent, de Brébisson, Bouthillier 2015; de Brébisson, Vincent 2016).

use std::collections::BTreeMap;

use losskit_tensor::linalg::matmul;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};

use losskit_losses::{ClassLoss, Reduction, Targets, Z_LOSS_VARIANCE_EPS, ZLoss};
use losskit_tensor::{Error, Result, check};

/// What one training step returns.
#[derive(Clone, Debug, PartialEq)]
pub struct StepOutput {
    /// Mean Z-loss of the minibatch, before the update.
    pub loss: f64,
    /// ∂loss/∂h [m, d] at the weights before the update (to backpropagate into the layer below).
    pub grad_h: Array2<f64>,
}

/// The Z-loss of one example from the spherical statistics q = Σₖ oₖ², s = Σₖ oₖ and the target output o_c, with
/// its partial derivatives (ℓ, ∂ℓ/∂q, ∂ℓ/∂s, ∂ℓ/∂o_c).
///
/// ```text
/// μ = s/D,  σ = √(max(q/D − μ², 0) + ε),  z = (o_c − μ)/σ,  ℓ = softplus(a·(b − z))/a,  t = sigmoid(a·(b − z))
/// ∂ℓ/∂q = t·z/(2Dσ²),   ∂ℓ/∂s = t·(1/(Dσ) − z·μ/(Dσ²)),   ∂ℓ/∂o_c = −t/σ
/// ```
/// ε = [`Z_LOSS_VARIANCE_EPS`], as [`ZLoss`]; the variance comes from q and s (one pass), so it loses digits when
/// the outputs' spread is tiny against their mean, the price of never forming o.
pub fn z_loss_spherical(a: f64, b: f64, d_out: usize, q: f64, s: f64, oc: f64) -> (f64, f64, f64, f64) {
    let dn = d_out as f64;
    let mu = s / dn;
    let var = (q / dn - mu * mu).max(0.0) + Z_LOSS_VARIANCE_EPS;
    let sigma = var.sqrt();
    let z = (oc - mu) / sigma;
    let u = a * (b - z);
    let loss = (u.max(0.0) + (-u.abs()).exp().ln_1p()) / a;
    let t = if u >= 0.0 { 1.0 / (1.0 + (-u).exp()) } else { u.exp() / (1.0 + u.exp()) };
    let lq = t * z / (2.0 * dn * var);
    let ls = t * (1.0 / (dn * sigma) - z * mu / (dn * var));
    (loss, lq, ls, -t / sigma)
}

/// A D-class linear output o = W·h trained by SGD on the Z-loss, in O(m·d² + d³)-free time per minibatch of m:
/// the cost does not depend on D.
///
/// ```text
/// W = V·U + 1·mᵀ        (V: D×d, U: d×d with U⁻¹ kept, m: d — the all-ones rank-one term)
/// Q = WᵀW,  w̄ = Wᵀ1     (kept exactly)
/// forward, per example:  q = hᵀQh,  s = w̄ᵀh,  o_c = (V_c·U + mᵀ)·h                       O(d²)
/// SGD step η on the minibatch mean (L_q, L_s, L_c the partials of z_loss_spherical, divided by m):
///   W ← W·M + 1·bᵀ + Σ_c e_c·A_cᵀ,   M = I − 2η·Σᵢ L_q,ᵢ·hᵢhᵢᵀ,   b = −η·Σᵢ L_s,ᵢ·hᵢ,   A_c = −η·Σ_{i: cᵢ=c} L_c,ᵢ·hᵢ
///   U ← U·M,  U⁻¹ ← M⁻¹·U⁻¹ (Woodbury, an m×m solve),  m ← M·m + b,  V_c ← V_c + A_cᵀ·U⁻¹ (new U)
///   Q ← MQM + M·w̄·bᵀ + b·w̄ᵀ·M + D·bbᵀ + Σ_c (M·W_cᵀA_cᵀ + A_c·W_c·M) + (ΣA)bᵀ + b(ΣA)ᵀ + Σ_c A_cA_cᵀ
///   w̄ ← M·w̄ + D·b + Σ_c A_c                               (W_c: the rows before the step)
/// ```
/// This is exactly the SGD step of the dense layer ([`DenseZOutput`]); the all-ones term extends the original
/// sparse-target update to the Z-loss's dependence on Σₖ oₖ, as the spec's §2.2 derives. U drifts from
/// orthogonality and conditioning suffers over many steps, so every `renorm_every` steps (default 1000) the layer
/// folds U and m into V (V ← V·U + 1·mᵀ, U ← I, m ← 0) and recomputes Q and w̄ from W, an O(D·d²) pass.
///
/// All in f64. The step is exact, not approximate: after k steps the materialised W ([`SphericalZOutput::weights`])
/// equals the dense layer's to rounding (the tests check 1e-9 in f64).
///
/// # Errors
/// [`Error::Parameter`] for a bad learning rate or Z-loss parameter; [`Error::Shape`], [`Error::NonFinite`],
/// [`Error::LabelOutOfRange`], [`Error::Empty`] for bad inputs; [`Error::Degenerate`] when M is singular (a step so
/// large that it flattens W).
///
/// # References
/// Vincent, de Brébisson, Bouthillier (2015), *Efficient Exact Gradient Update for training Deep Networks with Very
/// Large Sparse Targets*, NeurIPS, arXiv:1412.7091 (docs/papers.md key `vincent2015efficient`); de Brébisson,
/// Vincent (2016), *The Z-loss*, arXiv:1604.08859 (key `debrebisson2016z`).
#[derive(Clone, Debug)]
pub struct SphericalZOutput {
    loss: ZLoss,
    lr: f64,
    renorm_every: usize,
    steps: usize,
    v: Array2<f64>,
    u: Array2<f64>,
    u_inv: Array2<f64>,
    m: Array1<f64>,
    q: Array2<f64>,
    wbar: Array1<f64>,
}

fn check_config(loss: &ZLoss, lr: f64) -> Result<()> {
    loss.check()?;
    check::greater_than("lr", lr, 0.0)?;
    if !lr.is_finite() {
        return Err(Error::Parameter { name: "lr", value: lr, reason: "must be finite" });
    }
    Ok(())
}

fn check_batch(h: ArrayView2<'_, f64>, targets: &[usize], d_in: usize, d_out: usize) -> Result<()> {
    check::non_empty("h", h.nrows())?;
    check::shape("h", h.shape(), &[None, Some(d_in)])?;
    check::shape("targets", &[targets.len()], &[Some(h.nrows())])?;
    check::finite("h", &h)?;
    if let Some((index, &c)) = targets.iter().enumerate().find(|(_, c)| **c >= d_out) {
        return Err(Error::LabelOutOfRange { arg: "targets", label: c as i64, classes: d_out, index });
    }
    Ok(())
}

/// Solves K·X = R for a small square K (Gaussian elimination, partial pivoting).
fn solve(mut k: Array2<f64>, mut r: Array2<f64>) -> Result<Array2<f64>> {
    let n = k.nrows();
    for col in 0..n {
        let piv = (col..n).max_by(|&i, &j| k[[i, col]].abs().total_cmp(&k[[j, col]].abs())).unwrap_or(col);
        let pivot = k[[piv, col]].abs();
        if pivot.is_nan() || pivot <= 1e-300 {
            return Err(Error::Degenerate {
                what: "spherical output: the multiplicative update I − 2η·Σ L_q·hhᵀ is singular (learning rate too \
                       large)"
                    .into(),
            });
        }
        if piv != col {
            for j in 0..n {
                k.swap([piv, j], [col, j]);
            }
            for j in 0..r.ncols() {
                r.swap([piv, j], [col, j]);
            }
        }
        for i in 0..n {
            if i != col {
                let f = k[[i, col]] / k[[col, col]];
                if f != 0.0 {
                    for j in col..n {
                        k[[i, j]] -= f * k[[col, j]];
                    }
                    for j in 0..r.ncols() {
                        r[[i, j]] -= f * r[[col, j]];
                    }
                }
            }
        }
    }
    for i in 0..n {
        let p = k[[i, i]];
        r.row_mut(i).mapv_inplace(|v| v / p);
    }
    Ok(r)
}

impl SphericalZOutput {
    /// A layer starting from the weights `w0` [D, d] (O(D·d²) once, to form Q), trained by SGD with step `lr`.
    ///
    /// # Errors
    /// [`Error::Parameter`] for lr ≤ 0 or bad Z-loss parameters; [`Error::Empty`] / [`Error::NonFinite`] for `w0`.
    pub fn new(w0: ArrayView2<'_, f64>, loss: ZLoss, lr: f64) -> Result<Self> {
        check_config(&loss, lr)?;
        check::non_empty("w0", w0.len())?;
        check::finite("w0", &w0)?;
        let d = w0.ncols();
        let mut layer = Self {
            loss,
            lr,
            renorm_every: 1000,
            steps: 0,
            v: w0.to_owned(),
            u: Array2::eye(d),
            u_inv: Array2::eye(d),
            m: Array1::zeros(d),
            q: Array2::zeros((d, d)),
            wbar: Array1::zeros(d),
        };
        layer.renormalize();
        Ok(layer)
    }

    /// Re-orthogonalise every `k` steps (default 1000; 0 = never).
    pub fn renorm_every(mut self, k: usize) -> Self {
        self.renorm_every = k;
        self
    }

    /// Number of classes D.
    pub fn d_out(&self) -> usize {
        self.v.nrows()
    }

    /// Input width d.
    pub fn d_in(&self) -> usize {
        self.v.ncols()
    }

    /// Folds U and the all-ones term into V and recomputes Q = WᵀW and w̄ = Wᵀ1 exactly: O(D·d²).
    pub fn renormalize(&mut self) {
        let mut w = self.v.dot(&self.u);
        for mut row in w.rows_mut() {
            row += &self.m;
        }
        let d = self.d_in();
        self.q = w.t().dot(&w);
        self.wbar = w.sum_axis(Axis(0));
        self.v = w;
        self.u = Array2::eye(d);
        self.u_inv = Array2::eye(d);
        self.m = Array1::zeros(d);
    }

    /// The weights W [D, d], materialised (O(D·d²)).
    pub fn weights(&self) -> Array2<f64> {
        let mut w = self.v.dot(&self.u);
        for mut row in w.rows_mut() {
            row += &self.m;
        }
        w
    }

    /// Row c of W (O(d²)).
    fn row(&self, c: usize) -> Array1<f64> {
        self.v.row(c).dot(&self.u) + &self.m
    }

    /// Per example: (ℓ, L_q, L_s, L_c, W_c) at the current weights.
    fn forward(&self, h: ArrayView1<'_, f64>, c: usize) -> (f64, f64, f64, f64, Array1<f64>) {
        let wc = self.row(c);
        let q = h.dot(&self.q.dot(&h));
        let s = self.wbar.dot(&h);
        let oc = wc.dot(&h);
        let (l, lq, ls, lc) = z_loss_spherical(self.loss.a, self.loss.b, self.d_out(), q, s, oc);
        (l, lq, ls, lc, wc)
    }

    /// Mean Z-loss of `h` [m, d] against `targets` without updating (O(m·d²)).
    ///
    /// # Errors
    /// As [`SphericalZOutput::step`].
    pub fn loss(&self, h: ArrayView2<'_, f64>, targets: &[usize]) -> Result<f64> {
        check_batch(h, targets, self.d_in(), self.d_out())?;
        let total: f64 = h.rows().into_iter().zip(targets).map(|(hi, &c)| self.forward(hi, c).0).sum();
        Ok(total / h.nrows() as f64)
    }

    /// One SGD step on the minibatch mean Z-loss of `h` [m, d] with targets `[m]` in `0..D`: O(m·d² + m²·d + m³),
    /// independent of D (plus O(D·d²) every `renorm_every` steps).
    ///
    /// # Errors
    /// [`Error::Empty`], [`Error::Shape`], [`Error::NonFinite`], [`Error::LabelOutOfRange`] for bad inputs;
    /// [`Error::Degenerate`] when the multiplicative update is singular.
    pub fn step(&mut self, h: ArrayView2<'_, f64>, targets: &[usize]) -> Result<StepOutput> {
        check_batch(h, targets, self.d_in(), self.d_out())?;
        let (mb, d) = h.dim();
        let dn = self.d_out() as f64;
        let inv_m = 1.0 / mb as f64;
        let eta = self.lr;
        let mut loss = 0.0;
        let mut grad_h = Array2::zeros((mb, d));
        let mut kappa = Array1::zeros(mb); // M = I − Σᵢ κᵢ·hᵢhᵢᵀ
        let mut b = Array1::<f64>::zeros(d);
        // Per distinct target class: (old row W_c, A_c).
        let mut rows: BTreeMap<usize, (Array1<f64>, Array1<f64>)> = BTreeMap::new();
        for (i, (hi, &c)) in h.rows().into_iter().zip(targets).enumerate() {
            let (l, lq, ls, lc, wc) = self.forward(hi, c);
            loss += l;
            let (lq, ls, lc) = (lq * inv_m, ls * inv_m, lc * inv_m);
            // ∂ℓ/∂h = 2L_q·Q·h + L_s·w̄ + L_c·W_cᵀ.
            let gh = self.q.dot(&hi) * (2.0 * lq) + &self.wbar * ls + &wc * lc;
            grad_h.row_mut(i).assign(&gh);
            kappa[i] = 2.0 * eta * lq;
            b.scaled_add(-eta * ls, &hi);
            let entry = rows.entry(c).or_insert_with(|| (wc, Array1::zeros(d)));
            entry.1.scaled_add(-eta * lc, &hi);
        }
        // M = I + H·C·Hᵀ with H = hᵀ (d×m), C = diag(−κ).
        let ht = h.t(); // d×m
        let hc = &ht * &(-&kappa); // H·C, d×m (column i scaled by −κᵢ)
        let apply_m_left = |x: &Array2<f64>| -> Array2<f64> { x + &hc.dot(&ht.t().dot(x)) }; // M·X (M symmetric)
        let apply_m_right = |x: &Array2<f64>| -> Array2<f64> { x + &x.dot(&hc).dot(&ht.t()) }; // X·M
        let apply_m_vec = |x: &Array1<f64>| -> Array1<f64> { x + &hc.dot(&ht.t().dot(x)) };
        // Woodbury: M⁻¹ = I − H·C·(I + HᵀH·C)⁻¹·Hᵀ.
        let kmat = Array2::eye(mb) + &ht.t().dot(&hc);
        let new_u_inv = {
            let rhs = ht.t().dot(&self.u_inv); // Hᵀ·U⁻¹, m×d
            let x = solve(kmat, rhs)?;
            &self.u_inv - &hc.dot(&x)
        };
        let new_u = apply_m_right(&self.u);
        // Q and w̄ from the old state.
        let mw = apply_m_vec(&self.wbar);
        let mut q = apply_m_right(&apply_m_left(&self.q));
        let outer = |x: &Array1<f64>, y: &Array1<f64>| -> Array2<f64> {
            x.view().insert_axis(Axis(1)).dot(&y.view().insert_axis(Axis(0)))
        };
        q += &outer(&mw, &b);
        q += &outer(&b, &mw);
        q.scaled_add(dn, &outer(&b, &b));
        let mut a_sum = Array1::<f64>::zeros(d);
        for (wc, ac) in rows.values() {
            let mwc = apply_m_vec(wc);
            q += &outer(&mwc, ac);
            q += &outer(ac, &mwc);
            q += &outer(ac, ac);
            a_sum += ac;
        }
        q += &outer(&a_sum, &b);
        q += &outer(&b, &a_sum);
        self.q = (&q + &q.t()) * 0.5;
        self.wbar = mw + &b * dn + &a_sum;
        self.m = apply_m_vec(&self.m) + &b;
        self.u = new_u;
        self.u_inv = new_u_inv;
        for (&c, (_, ac)) in &rows {
            let delta = ac.dot(&self.u_inv);
            let mut vc = self.v.row_mut(c);
            vc += &delta;
        }
        self.steps += 1;
        if self.renorm_every > 0 && self.steps.is_multiple_of(self.renorm_every) {
            self.renormalize();
        }
        Ok(StepOutput { loss: loss * inv_m, grad_h })
    }
}

/// The dense reference of [`SphericalZOutput`]: W [D, d] stored as is, o = W·h formed, the Z-loss taken by
/// [`ZLoss`] on the rows of o, and W updated by SGD. O(m·D·d) per step.
#[derive(Clone, Debug)]
pub struct DenseZOutput {
    loss: ZLoss,
    lr: f64,
    w: Array2<f64>,
}

impl DenseZOutput {
    /// A dense layer starting from `w0` [D, d].
    ///
    /// # Errors
    /// As [`SphericalZOutput::new`].
    pub fn new(w0: ArrayView2<'_, f64>, loss: ZLoss, lr: f64) -> Result<Self> {
        check_config(&loss, lr)?;
        check::non_empty("w0", w0.len())?;
        check::finite("w0", &w0)?;
        Ok(Self { loss: loss.reduction(Reduction::Mean), lr, w: w0.to_owned() })
    }

    /// The weights W [D, d].
    pub fn weights(&self) -> &Array2<f64> {
        &self.w
    }

    /// One SGD step on the minibatch mean Z-loss.
    ///
    /// # Errors
    /// As [`SphericalZOutput::step`].
    pub fn step(&mut self, h: ArrayView2<'_, f64>, targets: &[usize]) -> Result<StepOutput> {
        check_batch(h, targets, self.w.ncols(), self.w.nrows())?;
        let o = matmul(&h, &self.w.t()); // m×D
        let labels: Vec<i64> = targets.iter().map(|&c| c as i64).collect();
        let out = ClassLoss::<f64>::compute(&self.loss, o.view(), Targets::hard(&labels), None, true)?;
        let g = out.grad.ok_or_else(|| Error::Degenerate { what: "z-loss returned no gradient".into() })?;
        let grad_h = matmul(&g, &self.w);
        self.w.scaled_add(-self.lr, &matmul(&g.t(), &h));
        Ok(StepOutput { loss: out.value, grad_h })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::Xoshiro256PlusPlus;
    use rand::{RngExt, SeedableRng};

    fn normal(r: &mut Xoshiro256PlusPlus) -> f64 {
        let u1: f64 = r.random_range(f64::MIN_POSITIVE..1.0);
        let u2: f64 = r.random();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    fn rel_max(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
        let scale = b.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        a.iter().zip(b).fold(0.0_f64, |m, (x, y)| m.max((x - y).abs())) / scale
    }

    /// k steps of both layers on the same random minibatches: same losses, same h-gradients, same W.
    fn compare(d_out: usize, d_in: usize, mb: usize, steps: usize, renorm: usize, seed: u64) {
        let mut r = Xoshiro256PlusPlus::seed_from_u64(seed);
        let w0 = Array2::from_shape_simple_fn((d_out, d_in), || 0.3 * normal(&mut r));
        let z = ZLoss::new(0.5, 2.0);
        let mut sph = SphericalZOutput::new(w0.view(), z.clone(), 0.05).unwrap().renorm_every(renorm);
        let mut dense = DenseZOutput::new(w0.view(), z, 0.05).unwrap();
        for step in 0..steps {
            let h = Array2::from_shape_simple_fn((mb, d_in), || normal(&mut r));
            // Repeated classes in a batch exercise the grouped row update.
            let mut t: Vec<usize> = (0..mb).map(|_| r.random_range(0..d_out)).collect();
            if mb > 1 {
                t[0] = t[1];
            }
            let a = sph.step(h.view(), &t).unwrap();
            let b = dense.step(h.view(), &t).unwrap();
            assert!((a.loss - b.loss).abs() <= 1e-9 * b.loss.abs(), "step {step}: {} vs {}", a.loss, b.loss);
            assert!(rel_max(&a.grad_h, &b.grad_h) < 1e-9, "step {step}: grad_h");
        }
        let err = rel_max(&sph.weights(), dense.weights());
        assert!(err < 1e-9, "W differs by {err:e} (relative to max |W|)");
    }

    #[test]
    fn factored_steps_equal_dense_steps() {
        compare(50, 8, 4, 40, 0, 1);
        compare(200, 6, 1, 60, 0, 2);
    }

    #[test]
    fn renormalisation_keeps_the_layer_exact() {
        compare(60, 5, 3, 50, 7, 3);
    }

    #[test]
    fn spherical_loss_matches_the_z_loss_and_its_derivative() {
        let mut r = Xoshiro256PlusPlus::seed_from_u64(4);
        let o = Array1::from_shape_simple_fn(9, || 2.0 * normal(&mut r));
        let z = ZLoss::new(0.7, 1.5);
        let want =
            ClassLoss::<f64>::compute(&z, o.view().insert_axis(Axis(0)), Targets::hard(&[3]), None, true).unwrap();
        let (l, lq, ls, lc) = z_loss_spherical(0.7, 1.5, 9, o.dot(&o), o.sum(), o[3]);
        assert!((l - want.value).abs() < 1e-12);
        let g = want.grad.unwrap();
        for k in 0..9 {
            let mine = 2.0 * lq * o[k] + ls + if k == 3 { lc } else { 0.0 };
            assert!((mine - g[[0, k]]).abs() < 1e-12, "k = {k}");
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        let w0 = Array2::from_elem((4, 2), 0.1);
        let z = ZLoss::new(0.5, 2.0);
        assert!(matches!(SphericalZOutput::new(w0.view(), z.clone(), 0.0), Err(Error::Parameter { name: "lr", .. })));
        let mut l = SphericalZOutput::new(w0.view(), z, 0.1).unwrap();
        let h = Array2::from_elem((1, 2), 1.0);
        assert!(matches!(l.step(h.view(), &[4]), Err(Error::LabelOutOfRange { label: 4, .. })));
        assert!(matches!(l.step(h.view(), &[0, 1]), Err(Error::Shape { arg: "targets", .. })));
        let h3 = Array2::from_elem((1, 3), 1.0);
        assert!(matches!(l.step(h3.view(), &[0]), Err(Error::Shape { arg: "h", .. })));
    }
}
