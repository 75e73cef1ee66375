//! Cross-batch memory: a queue of past embeddings and labels used as extra references by any pair loss.

use std::collections::VecDeque;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

use losskit_tensor::{Error, Real, Result, check};

use crate::core::{EmbeddingLoss, EmbeddingOutput, Reference};

/// A first-in first-out memory of the last `capacity` embeddings (detached copies) and their labels, wrapped around
/// an embedding loss ℓ:
///
/// ```text
/// L(X, y) = ℓ(X, y) + w · ℓ(X, y; reference = M)          (only the first term while M is empty)
/// then M ← last `capacity` rows of [M; X]
/// ```
/// M holds the rows of **earlier** batches only (enqueued after the loss is computed), so no query meets a copy of
/// itself: ℓ's reference mode pairs every query with every memory row. The memory is a constant (no gradient flows
/// into it; `grad_reference` is dropped), as in XBM and pytorch-metric-learning's `CrossBatchMemory`.
///
/// Differences from PML's `CrossBatchMemory`: PML enqueues the batch first and then pairs the queries with the
/// whole memory, current batch included, removing each query's self-comparison; here the in-batch pairs come from
/// the ordinary in-batch term ℓ(X, y) and the cross-batch pairs from the memory term, weighted by w (XBM's
/// `loss + WEIGHT · xbm_loss`, Wang et al. 2020). The per-anchor aggregation of the two terms is therefore separate.
///
/// # Parameters
/// * `capacity`: M ≥ 1 rows (PML default 1024).
/// * `weight`: w ≥ 0, default 1.
///
/// # Errors
/// [`Error::Parameter`] for capacity 0 or w < 0; [`Error::Shape`] when the embedding width differs from the
/// memory's; anything the wrapped loss reports (its validation runs before the memory changes).
///
/// # References
/// Wang, Zhang, Huang, Scott (2020), *Cross-Batch Memory for Embedding Learning*, CVPR, arXiv:1912.06798
/// (docs/papers.md key `wang2020xbm`); pytorch-metric-learning 2.x `CrossBatchMemory`.
#[derive(Clone, Debug)]
pub struct CrossBatchMemory<L, F> {
    /// The wrapped pair loss.
    pub loss: L,
    capacity: usize,
    weight: f64,
    rows: VecDeque<(Array1<F>, i64)>,
}

impl<L, F: Real> CrossBatchMemory<L, F> {
    /// An empty memory of `capacity` rows around `loss`, memory term weight `weight`.
    ///
    /// # Errors
    /// [`Error::Parameter`] naming `capacity` (0) or `weight` (negative or not finite).
    pub fn new(loss: L, capacity: usize, weight: f64) -> Result<Self> {
        if capacity == 0 {
            return Err(Error::Parameter { name: "capacity", value: 0.0, reason: "must be ≥ 1" });
        }
        check::at_least("weight", weight, 0.0)?;
        Ok(Self { loss, capacity, weight, rows: VecDeque::with_capacity(capacity) })
    }

    /// Rows held now (≤ capacity).
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the memory holds no row.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Empties the memory.
    pub fn clear(&mut self) {
        self.rows.clear();
    }

    /// The memory, oldest row first: embeddings [len, D] and labels `[len]`.
    pub fn memory(&self) -> (Array2<F>, Array1<i64>) {
        let d = self.rows.front().map_or(0, |r| r.0.len());
        let mut e = Array2::zeros((self.rows.len(), d));
        for (mut dst, (src, _)) in e.rows_mut().into_iter().zip(&self.rows) {
            dst.assign(src);
        }
        (e, self.rows.iter().map(|r| r.1).collect())
    }

    /// Appends rows, dropping the oldest beyond the capacity.
    ///
    /// # Errors
    /// [`Error::Shape`] when the width differs from the memory's; [`Error::NonFinite`].
    pub fn enqueue(&mut self, embeddings: ArrayView2<'_, F>, labels: ArrayView1<'_, i64>) -> Result<()> {
        check::shape("labels", labels.shape(), &[Some(embeddings.nrows())])?;
        check::finite("embeddings", &embeddings)?;
        if let Some((r, _)) = self.rows.front()
            && r.len() != embeddings.ncols()
        {
            return Err(Error::Shape {
                arg: "embeddings",
                expected: format!("[N, {}] (the memory's width)", r.len()),
                got: embeddings.shape().to_vec(),
            });
        }
        let skip = embeddings.nrows().saturating_sub(self.capacity);
        for (row, &l) in embeddings.rows().into_iter().zip(labels.iter()).skip(skip) {
            if self.rows.len() == self.capacity {
                self.rows.pop_front();
            }
            self.rows.push_back((row.to_owned(), l));
        }
        Ok(())
    }
}

impl<L: EmbeddingLoss<F>, F: Real> CrossBatchMemory<L, F> {
    /// L(X, y) against the current memory, without changing it (what [`Self::compute`] computes before it
    /// enqueues).
    ///
    /// # Errors
    /// As the wrapped loss; [`Error::Shape`] for a width that differs from the memory's.
    pub fn compute_with_memory(
        &self,
        embeddings: ArrayView2<'_, F>,
        labels: ArrayView1<'_, i64>,
        grad: bool,
    ) -> Result<EmbeddingOutput<F>> {
        let mut out = self.loss.compute(embeddings, labels, None, grad)?;
        out.grad_reference = None;
        if self.rows.is_empty() || self.weight == 0.0 {
            return Ok(out);
        }
        let (mem, mem_labels) = self.memory();
        if mem.ncols() != embeddings.ncols() {
            return Err(Error::Shape {
                arg: "embeddings",
                expected: format!("[N, {}] (the memory's width)", mem.ncols()),
                got: embeddings.shape().to_vec(),
            });
        }
        let reference = Reference { embeddings: mem.view(), labels: mem_labels.view() };
        let cross = self.loss.compute(embeddings, labels, Some(reference), grad)?;
        let w = F::c(self.weight);
        out.value += w * cross.value;
        if let (Some(a), Some(b)) = (out.per_sample.as_mut(), cross.per_sample.as_ref())
            && a.len() == b.len()
        {
            a.zip_mut_with(b, |x, &y| *x += w * y);
        }
        if let (Some(a), Some(b)) = (out.grad.as_mut(), cross.grad.as_ref()) {
            a.zip_mut_with(b, |x, &y| *x += w * y);
        }
        Ok(out)
    }

    /// L(X, y) against the memory, then enqueues (X, y) (detached copies).
    ///
    /// # Errors
    /// As [`Self::compute_with_memory`]; the memory is unchanged on error.
    pub fn compute(
        &mut self,
        embeddings: ArrayView2<'_, F>,
        labels: ArrayView1<'_, i64>,
        grad: bool,
    ) -> Result<EmbeddingOutput<F>> {
        let out = self.compute_with_memory(embeddings, labels, grad)?;
        self.enqueue(embeddings, labels)?;
        Ok(out)
    }
}
