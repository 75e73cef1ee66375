//! The mergeable-state contract every metric follows.

use losskit_tensor::Result;

/// A metric as a mergeable state, after torchmetrics' `Metric` (`update` / `merge_state` / `compute` / `reset`).
///
/// `update` takes the metric's own inputs and is an inherent method of each state (for [`ConfusionMatrix`] it is
/// [`ConfusionMatrix::update`]); this trait holds what generic code needs: combine states built on different shards
/// or workers, read the result, start again. For every state, updating one state with all the batches and merging
/// states that each saw a part of them give the same `compute()` (exactly, for integer-count states such as the
/// confusion matrix), in any order and grouping.
///
/// ```
/// use losskit_metrics::{ConfusionMatrix, MetricState};
/// let (mut a, mut b) = (ConfusionMatrix::new(2)?, ConfusionMatrix::new(2)?);
/// a.update(ndarray::array![0_i64, 1].view(), ndarray::array![0_i64, 0].view())?;
/// b.update(ndarray::array![1_i64].view(), ndarray::array![1_i64].view())?;
/// MetricState::merge(&mut a, &b)?;
/// assert_eq!(a.compute()?.accuracy, 2.0 / 3.0);
/// # Ok::<(), losskit_metrics::Error>(())
/// ```
///
/// [`ConfusionMatrix`]: crate::ConfusionMatrix
/// [`ConfusionMatrix::update`]: crate::ConfusionMatrix::update
pub trait MetricState {
    /// What [`compute`](Self::compute) returns.
    type Output;

    /// Adds another state of the same configuration to this one.
    ///
    /// # Errors
    /// When the states are incompatible (for example different class counts).
    fn merge(&mut self, other: &Self) -> Result<()>;

    /// The metric over everything this state has seen.
    ///
    /// # Errors
    /// When the metric is undefined on the data seen (for example no sample at all).
    fn compute(&self) -> Result<Self::Output>;

    /// Back to the state of a fresh metric with the same configuration.
    fn reset(&mut self);
}
