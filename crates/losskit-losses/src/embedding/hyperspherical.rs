//! The hyperspherical-embedding evaluation of Pereira et al. (2021): novel classes classified by the cosine to
//! their class means on the unit sphere.

use losskit_tensor::linalg::gemm;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};

use losskit_tensor::norm::l2_normalize_rows;
use losskit_tensor::{Error, Real, Result, check};

/// A cosine nearest-class-mean classifier: each class is the direction of its mean, a query goes to the class of
/// highest cosine.
///
/// ```text
/// μ_c = mean_{i: yᵢ = c} x̂ᵢ  (from_embeddings) or given (fit);   μ̂_c = μ_c/‖μ_c‖
/// predict(q) = argmax_c  q̂·μ̂_c                 (ties: the lowest class index)
/// ```
/// Pair it with a normalised representation trained by [`NormalizedSoftmax`](crate::NormalizedSoftmax) (the
/// paper's loss, whose embedding lives on the sphere) and fit it on the novel classes' few labelled examples.
///
/// # Errors
/// [`Error::Empty`], [`Error::Shape`], [`Error::NonFinite`]; [`Error::Degenerate`] naming the class whose mean has
/// zero norm; [`Error::LabelOutOfRange`] for labels outside `0..classes`.
///
/// # References
/// Pereira et al. (2021), *Hyperspherical embedding for novel class classification*, arXiv (docs/papers.md key
/// `pereira2021hyperspherical`); the exact constraint term was verified from the abstract only (spec §3.2): the
/// representation is L2-normalised and novel classes are classified by cosine similarity in that space.
#[derive(Clone, Debug, PartialEq)]
pub struct CosineNcm<F> {
    means: Array2<F>,
}

impl<F: Real> CosineNcm<F> {
    /// From class means [C, D] (class c is row c); they are normalised here.
    ///
    /// # Errors
    /// [`Error::Empty`], [`Error::Shape`] (D = 0), [`Error::NonFinite`], [`Error::Degenerate`] for a zero mean.
    pub fn fit(means: ArrayView2<'_, F>) -> Result<Self> {
        let (c, d) = means.dim();
        check::non_empty("means", c)?;
        if d == 0 {
            return Err(Error::Shape { arg: "means", expected: "[C, D] with D ≥ 1".into(), got: vec![c, d] });
        }
        check::finite("means", &means)?;
        let (h, norms) = l2_normalize_rows(means);
        if let Some(k) = norms.iter().position(|n| *n == F::zero()) {
            return Err(Error::Degenerate { what: format!("means: class {k} has a zero mean vector") });
        }
        Ok(Self { means: h })
    }

    /// From labelled embeddings [N, D] with labels in `0..classes`: μ_c is the mean of the normalised rows of class c.
    ///
    /// # Errors
    /// As [`Self::fit`]; [`Error::Shape`] for `labels`; [`Error::LabelOutOfRange`]; [`Error::Degenerate`] for a class
    /// without examples.
    pub fn from_embeddings(embeddings: ArrayView2<'_, F>, labels: ArrayView1<'_, i64>, classes: usize) -> Result<Self> {
        let (n, d) = embeddings.dim();
        check::non_empty("embeddings", n)?;
        check::non_empty("classes", classes)?;
        check::shape("labels", labels.shape(), &[Some(n)])?;
        check::finite("embeddings", &embeddings)?;
        check::labels("labels", labels, classes, None)?;
        let (h, _) = l2_normalize_rows(embeddings);
        let mut sums = Array2::<F>::zeros((classes, d));
        let mut counts = vec![0_usize; classes];
        for (row, &y) in h.axis_iter(Axis(0)).zip(labels.iter()) {
            let y = y as usize;
            counts[y] += 1;
            let mut s = sums.row_mut(y);
            s += &row;
        }
        if let Some(k) = counts.iter().position(|&c| c == 0) {
            return Err(Error::Degenerate { what: format!("labels: class {k} has no example") });
        }
        for (mut s, &c) in sums.axis_iter_mut(Axis(0)).zip(&counts) {
            s.mapv_inplace(|v| v / F::c(c as f64));
        }
        Self::fit(sums.view())
    }

    /// The normalised class means [C, D].
    pub fn means(&self) -> ArrayView2<'_, F> {
        self.means.view()
    }

    /// Cosines between the normalised queries [N, D] and the class means: [N, C].
    ///
    /// # Errors
    /// [`Error::Shape`] for a width other than D; [`Error::Empty`]; [`Error::NonFinite`].
    pub fn scores(&self, queries: ArrayView2<'_, F>) -> Result<Array2<F>> {
        check::non_empty("queries", queries.nrows())?;
        check::shape("queries", queries.shape(), &[None, Some(self.means.ncols())])?;
        check::finite("queries", &queries)?;
        let (q, _) = l2_normalize_rows(queries);
        let mut s = Array2::zeros((q.nrows(), self.means.nrows()));
        gemm(F::one(), &q, &self.means.t(), F::zero(), &mut s);
        Ok(s)
    }

    /// The predicted class of each query (highest cosine; ties to the lowest index).
    ///
    /// # Errors
    /// As [`Self::scores`].
    pub fn predict(&self, queries: ArrayView2<'_, F>) -> Result<Array1<usize>> {
        let s = self.scores(queries)?;
        Ok(s.axis_iter(Axis(0))
            .map(|r| {
                let mut best = 0;
                for (j, &v) in r.iter().enumerate() {
                    if v > r[best] {
                        best = j;
                    }
                }
                best
            })
            .collect())
    }
}
