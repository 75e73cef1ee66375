//! The proxy driver: validation, the cosine matrix between normalised embeddings and normalised proxies (one GEMM),
//! a kernel over it, and the chain rule back through the GEMM and both normalisations.
//!
//! Two kernel shapes: [`RowSoftmax`] (a margin softmax over each embedding's row of C cosines: normalised softmax,
//! CosFace, ArcFace) and the proxy-anchor loss, which works on the columns (per proxy, over the batch) and drives
//! [`run_matrix`] itself.

use losskit_tensor::linalg::gemm;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, Zip};
use rayon::prelude::*;

use losskit_tensor::norm::{l2_normalize_backward, l2_normalize_rows};
use losskit_tensor::{Real, Reduction, Result, check};

use crate::core::ProxyOutput;

/// Validated, normalised inputs and the cosine matrix [N, C].
pub(crate) struct Prepared<F> {
    pub xh: Array2<F>,
    pub xn: Array1<F>,
    pub wh: Array2<F>,
    pub wn: Array1<F>,
    pub cos: Array2<F>,
    pub labels: Vec<usize>,
}

/// Checks embeddings [N, D], labels `[N]` in `0..C`, proxies [C, D]; normalises; computes cos = X̂·Ŵᵀ.
///
/// # Errors
/// [`Error::Empty`], [`Error::Shape`], [`Error::LabelOutOfRange`], [`Error::NonFinite`].
pub(crate) fn prepare<F: Real>(
    x: ArrayView2<'_, F>,
    labels: ArrayView1<'_, i64>,
    proxies: ArrayView2<'_, F>,
) -> Result<Prepared<F>> {
    crate::embedding::driver::check_embeddings("embeddings", "labels", &x, &labels)?;
    let (c, d) = proxies.dim();
    check::non_empty("proxies", c)?;
    check::shape("proxies", proxies.shape(), &[None, Some(x.ncols())])?;
    check::labels("labels", labels, c, None)?;
    check::finite("proxies", &proxies)?;
    debug_assert_eq!(d, x.ncols());
    let (xh, xn) = l2_normalize_rows(x);
    let (wh, wn) = l2_normalize_rows(proxies);
    let mut cos = Array2::zeros((x.nrows(), c));
    gemm(F::one(), &xh, &wh.t(), F::zero(), &mut cos);
    Ok(Prepared { xh, xn, wh, wn, cos, labels: labels.iter().map(|&l| l as usize).collect() })
}

/// Finishes from ∂L/∂cos [N, C] (already reduced): gradients for embeddings and proxies.
///
/// # Errors
/// Only internal shape errors.
pub(crate) fn backward<F: Real>(p: &Prepared<F>, dcos: &Array2<F>) -> Result<(Array2<F>, Array2<F>)> {
    let mut gx = Array2::zeros(p.xh.dim());
    gemm(F::one(), dcos, &p.wh, F::zero(), &mut gx);
    let mut gw = Array2::zeros(p.wh.dim());
    gemm(F::one(), &dcos.t(), &p.xh, F::zero(), &mut gw);
    let gx = l2_normalize_backward(gx.view(), p.xh.view(), p.xn.view())?;
    let gw = l2_normalize_backward(gw.view(), p.wh.view(), p.wn.view())?;
    Ok((gx, gw))
}

/// A margin softmax over one row of cosines: non-target logits s·c, target logit s·ψ(c_y).
pub(crate) trait RowSoftmax<F: Real>: Sync {
    /// The scale s.
    fn scale(&self) -> F;
    /// ψ(c) and ψ'(c) for the target cosine.
    fn target(&self, c: F) -> (F, F);
}

/// Mean cross-entropy of the margin softmax over rows (PML's MeanReducer), with its gradients.
///
/// # Errors
/// As [`prepare`].
pub(crate) fn run_softmax<F: Real, K: RowSoftmax<F>>(
    k: &K,
    reduction: Reduction,
    x: ArrayView2<'_, F>,
    labels: ArrayView1<'_, i64>,
    proxies: ArrayView2<'_, F>,
    grad: bool,
) -> Result<ProxyOutput<F>> {
    losskit_tensor::pool::on_worker(|| {
        let p = prepare(x, labels, proxies)?;
        let n = p.cos.nrows();
        let scale = match reduction {
            Reduction::Mean => 1.0 / n as f64,
            Reduction::Sum | Reduction::None => 1.0,
        };
        let s = k.scale();
        let mut dcos = p.cos.clone();
        let losses: Vec<f64> = dcos
            .axis_iter_mut(Axis(0))
            .into_par_iter()
            .zip(p.labels.par_iter())
            .map(|(mut row, &y)| {
                let (t, dt) = k.target(row[y]);
                // Logits z_j = s·c_j (j ≠ y), z_y = s·ψ(c_y); ℓ = LSE(z) − z_y.
                let zy = s * t;
                let (mut m, mut arg) = (zy, y);
                for (j, &c) in row.iter().enumerate() {
                    if j != y && s * c > m {
                        (m, arg) = (s * c, j);
                    }
                }
                // ℓ = (m − z_y) + log(1 + Σ_{j≠argmax} e^{z_j − m}): log1p keeps the digits of a confident row.
                let mut rest = F::zero();
                for (j, c) in row.iter_mut().enumerate() {
                    let z = if j == y { zy } else { s * *c };
                    let e = if j == arg { F::one() } else { (z - m).fast_exp() };
                    if j != arg {
                        rest += e;
                    }
                    *c = e;
                }
                let total = F::one() + rest;
                let loss = (m - zy).f64() + rest.f64().ln_1p();
                if grad {
                    let g = F::c(scale) * s / total;
                    let one_minus_py: F =
                        row.iter().enumerate().filter(|&(j, _)| j != y).map(|(_, &e)| e).sum::<F>() / total;
                    for (j, c) in row.iter_mut().enumerate() {
                        *c = if j == y { -F::c(scale) * s * one_minus_py * dt } else { *c * g };
                    }
                }
                loss
            })
            .collect();
        let total: f64 = losses.iter().sum();
        let (gx, gw) = if grad {
            let (a, b) = backward(&p, &dcos)?;
            (Some(a), Some(b))
        } else {
            (None, None)
        };
        Ok(ProxyOutput {
            value: F::c(total * scale),
            per_sample: Some(losses.iter().map(|&v| F::c(v)).collect()),
            grad: gx,
            grad_proxies: gw,
        })
    })
}

/// Common parameter check of the margin losses.
pub(crate) fn positive(name: &'static str, v: f64) -> Result<()> {
    check::greater_than(name, v, 0.0)
}

/// Column pass helper: applies `f` to each column of `m` (as a contiguous copy), writing the results back.
pub(crate) fn map_columns<F: Real, R: Send>(
    m: &mut Array2<F>,
    f: impl Fn(usize, &mut [F]) -> R + Sync + Send,
) -> Vec<R> {
    let mut t = m.t().as_standard_layout().into_owned();
    let c = t.ncols();
    let out: Vec<R> = t
        .as_slice_mut()
        .unwrap_or(&mut []) // ok: fresh standard-layout array
        .par_chunks_mut(c.max(1))
        .enumerate()
        .map(|(j, col)| f(j, col))
        .collect();
    Zip::from(m).and(&t.t()).for_each(|a, &b| *a = b);
    out
}
