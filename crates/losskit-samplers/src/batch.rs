//! Batch samplers: the order in which a training loop visits rows, so that each mini-batch has a chosen class make-up.
//!
//! Each sampler turns integer labels `[N]` and a seed into one epoch of row indices; consecutive runs of
//! `batch_size` indices are the mini-batches ([`batches`] splits them). They are pure functions of (config, labels,
//! seed): vary the seed per epoch (e.g. `seed + epoch`).

use std::collections::BTreeMap;

use ndarray::ArrayView1;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

use crate::{Error, Result};

/// Splits an epoch's indices into mini-batches of `batch_size` (the last one shorter if `batch_size` does not
/// divide the length).
///
/// # Errors
/// [`Error::Parameter`] for `batch_size = 0`.
pub fn batches(indices: &[usize], batch_size: usize) -> Result<Vec<Vec<usize>>> {
    if batch_size == 0 {
        return Err(Error::Parameter { name: "batch_size", value: 0.0, reason: "must be ≥ 1" });
    }
    Ok(indices.chunks(batch_size).map(<[usize]>::to_vec).collect())
}

/// Rows of each class, in ascending label order.
fn members(labels: ArrayView1<'_, i64>) -> Result<BTreeMap<i64, Vec<usize>>> {
    losskit_tensor::check::non_empty("labels", labels.len())?;
    let mut m: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, &c) in labels.iter().enumerate() {
        m.entry(c).or_default().push(i);
    }
    Ok(m)
}

fn shuffle<T>(v: &mut [T], rng: &mut Xoshiro256PlusPlus) {
    for i in (1..v.len()).rev() {
        let j = rng.random_range(0..=i);
        v.swap(i, j);
    }
}

/// `size` members of `pool`: without replacement when the pool is large enough, otherwise with replacement
/// (pytorch-metric-learning's `safe_random_choice`). `pool` is non-empty.
fn safe_choice(pool: &[usize], size: usize, rng: &mut Xoshiro256PlusPlus, out: &mut Vec<usize>) {
    if pool.len() >= size {
        // Partial Fisher–Yates on a copy of the positions.
        let mut pos: Vec<usize> = (0..pool.len()).collect();
        for i in 0..size {
            let j = rng.random_range(i..pos.len());
            pos.swap(i, j);
            out.push(pool[pos[i]]);
        }
    } else {
        out.extend((0..size).map(|_| pool[rng.random_range(0..pool.len())]));
    }
}

/// m samples per class: every mini-batch holds `batch_size / m` distinct classes with `m` rows each, as
/// pytorch-metric-learning's `MPerClassSampler`.
///
/// Semantics (PML 2.x): the epoch length starts at `length_before_new_iter`; without `batch_size` it is rounded down
/// to a multiple of `m · C` (C = number of classes) when `m · C` is smaller, and each pass shuffles the classes and
/// draws `m` rows from every one; with `batch_size` it is rounded down to a multiple of `batch_size`, and each batch
/// takes the first `batch_size / m` classes of a fresh shuffle. The `m` rows of a class are distinct when the class
/// has at least `m` rows, drawn with replacement otherwise.
///
/// One deviation: without `batch_size`, when `m · C ≥ length_before_new_iter`, PML returns one whole pass (more
/// indices than its own `len()`); here the epoch is cut to `length_before_new_iter`, matching [`MPerClass::len`].
///
/// # Parameters
/// * `m`: rows per class per batch, ≥ 1 (no default in PML; default here 4).
/// * `batch_size`: optional; must be a multiple of `m`, at most `m · C` and at most the length. Default none.
/// * `length_before_new_iter`: default 100 000 (PML's).
///
/// # Errors
/// [`Error::Parameter`] for `m = 0`, length 0, `batch_size` 0, not a multiple of `m` or above the length;
/// [`Error::Degenerate`] when `m · C < batch_size`; [`Error::Empty`] for no labels.
///
/// # Examples
/// ```
/// use losskit_samplers::MPerClass;
/// let labels = ndarray::array![0_i64, 0, 0, 1, 1, 1, 2, 2, 2, 2];
/// let s = MPerClass::new().m(2).batch_size(Some(4)).length_before_new_iter(20);
/// let epoch = s.indices(labels.view(), 7)?;
/// assert_eq!(epoch.len(), 20);
/// for batch in epoch.chunks(4) {
///     let mut classes: Vec<i64> = batch.iter().map(|&i| labels[i]).collect();
///     classes.sort_unstable();
///     assert!(classes[0] == classes[1] && classes[2] == classes[3] && classes[1] != classes[2]);
/// }
/// # Ok::<(), losskit_samplers::Error>(())
/// ```
///
/// # References
/// pytorch-metric-learning `samplers.MPerClassSampler` (Musgrave, Belongie, Lim (2020), *PyTorch Metric Learning*,
/// arXiv:2008.09164).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MPerClass {
    /// Rows per class in each batch (≥ 1). Default 4.
    pub m: usize,
    /// Batch size, a multiple of `m`; `None` = one pass over all classes per group. Default `None`.
    pub batch_size: Option<usize>,
    /// The nominal epoch length before rounding. Default 100 000.
    pub length_before_new_iter: usize,
}

impl Default for MPerClass {
    fn default() -> Self {
        MPerClass { m: 4, batch_size: None, length_before_new_iter: 100_000 }
    }
}

impl MPerClass {
    /// The defaults: m = 4, no batch size, length 100 000.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `m` (default 4).
    pub fn m(mut self, m: usize) -> Self {
        self.m = m;
        self
    }

    /// Sets the batch size (default none).
    pub fn batch_size(mut self, batch_size: Option<usize>) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// Sets the nominal epoch length (default 100 000).
    pub fn length_before_new_iter(mut self, length: usize) -> Self {
        self.length_before_new_iter = length;
        self
    }

    /// Checks the parameters that do not depend on the labels.
    ///
    /// # Errors
    /// [`Error::Parameter`] for `m = 0`, length 0, or a batch size of 0, not a multiple of `m` or above the length.
    pub fn check(&self) -> Result<()> {
        if self.m == 0 {
            return Err(Error::Parameter { name: "m", value: 0.0, reason: "must be ≥ 1" });
        }
        if self.length_before_new_iter == 0 {
            return Err(Error::Parameter { name: "length_before_new_iter", value: 0.0, reason: "must be ≥ 1" });
        }
        if let Some(b) = self.batch_size {
            if b == 0 || b % self.m != 0 {
                return Err(Error::Parameter {
                    name: "batch_size",
                    value: b as f64,
                    reason: "must be a positive multiple of m",
                });
            }
            if b > self.length_before_new_iter {
                return Err(Error::Parameter {
                    name: "batch_size",
                    value: b as f64,
                    reason: "must not exceed length_before_new_iter",
                });
            }
        }
        Ok(())
    }

    /// The epoch length for these labels (PML's `len(sampler)`).
    ///
    /// # Errors
    /// As [`MPerClass::indices`].
    pub fn len(&self, labels: ArrayView1<'_, i64>) -> Result<usize> {
        self.check()?;
        let classes = members(labels)?.len();
        self.length(classes)
    }

    fn length(&self, classes: usize) -> Result<usize> {
        let pass = self.m * classes;
        let mut len = self.length_before_new_iter;
        match self.batch_size {
            None => {
                if pass < len {
                    len -= len % pass;
                }
            }
            Some(b) => {
                if pass < b {
                    return Err(Error::Degenerate {
                        what: format!("m · classes = {} · {classes} = {pass} must be ≥ batch_size = {b}", self.m),
                    });
                }
                len -= len % b;
            }
        }
        Ok(len)
    }

    /// One epoch of row indices.
    ///
    /// # Errors
    /// [`Error::Parameter`] / [`Error::Degenerate`] as in the type's docs; [`Error::Empty`] for no labels.
    pub fn indices(&self, labels: ArrayView1<'_, i64>, seed: u64) -> Result<Vec<usize>> {
        self.check()?;
        let by_class = members(labels)?;
        let len = self.length(by_class.len())?;
        let mut classes: Vec<&Vec<usize>> = by_class.values().collect();
        let per_group = self.batch_size.map_or(classes.len(), |b| b / self.m);
        let divisor = per_group * self.m;
        let groups = if divisor < len { len / divisor } else { 1 };
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut out = Vec::with_capacity(groups * divisor);
        for _ in 0..groups {
            shuffle(&mut classes, &mut rng);
            for pool in &classes[..per_group] {
                safe_choice(pool, self.m, &mut rng, &mut out);
            }
        }
        out.truncate(len);
        Ok(out)
    }
}

/// A fixed number of positives in every batch, as LibAUC's `DualSampler` (binary labels 0 / 1).
///
/// `num_pos = max(1, ⌊sampling_rate · batch_size⌋)` (or given), `num_neg = batch_size − num_pos`. The positives and
/// the negatives are each shuffled into a pool read cyclically: a batch takes the next `num_pos` positives, then the
/// next `num_neg` negatives; when a pool runs out it is reshuffled and reading continues at its start (a pool smaller
/// than its share is repeated whole, as LibAUC's `np.tile`). An epoch has
/// `max(⌊n_pos / num_pos⌋, ⌊n_neg / num_neg⌋)` batches, so the larger class is seen about once.
///
/// Deviations: LibAUC keeps its pool pointers from one epoch to the next; here every epoch starts from freshly
/// shuffled pools (a pure function of the seed). An epoch has at least one batch (LibAUC's can be empty when both
/// classes are smaller than their share).
///
/// # Parameters
/// * `batch_size` ≥ 2. Default 64.
/// * `sampling_rate` ∈ (0, 1), the share of positives, default 0.5 (LibAUC's); ignored when `num_pos` is set.
/// * `num_pos`: optional exact number of positives per batch, in `1..batch_size`. Default none.
///
/// # Errors
/// [`Error::Parameter`] for parameters outside those ranges; [`Error::LabelOutOfRange`] for a label other than 0 or 1;
/// [`Error::Degenerate`] when one class is absent; [`Error::Empty`] for no labels.
///
/// # Examples
/// ```
/// use losskit_samplers::DualSampler;
/// let labels = ndarray::array![0_i64, 0, 0, 0, 0, 0, 0, 0, 1, 1];
/// let epoch = DualSampler::new().batch_size(4).sampling_rate(0.25).indices(labels.view(), 3)?;
/// assert_eq!(epoch.len(), 8 / 3 * 4); // ⌊8 negatives / 3 per batch⌋ = 2 batches
/// assert!(epoch.chunks(4).all(|b| labels[b[0]] == 1 && b[1..].iter().all(|&i| labels[i] == 0)));
/// # Ok::<(), losskit_samplers::Error>(())
/// ```
///
/// # References
/// Yuan, Zhu, Qiu, Li, Wang, Yang (2023), *LibAUC: A Deep Learning Library for X-Risk Optimization*, KDD,
/// arXiv:2306.03065 (`libauc.sampler.DualSampler`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DualSampler {
    /// Rows per batch. Default 64.
    pub batch_size: usize,
    /// Share of positives per batch, in (0, 1). Default 0.5.
    pub sampling_rate: f64,
    /// Exact positives per batch (overrides `sampling_rate`). Default `None`.
    pub num_pos: Option<usize>,
}

impl Default for DualSampler {
    fn default() -> Self {
        DualSampler { batch_size: 64, sampling_rate: 0.5, num_pos: None }
    }
}

impl DualSampler {
    /// The defaults: batch 64, rate 0.5.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the batch size (default 64).
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// Sets the share of positives (default 0.5).
    pub fn sampling_rate(mut self, sampling_rate: f64) -> Self {
        self.sampling_rate = sampling_rate;
        self
    }

    /// Sets an exact number of positives per batch (default none).
    pub fn num_pos(mut self, num_pos: Option<usize>) -> Self {
        self.num_pos = num_pos;
        self
    }

    /// Positives per batch.
    ///
    /// # Errors
    /// As [`DualSampler::check`].
    pub fn positives_per_batch(&self) -> Result<usize> {
        self.check()?;
        Ok(match self.num_pos {
            Some(p) => p,
            // int(rate · batch_size) in LibAUC: truncation, then at least 1.
            None => ((self.sampling_rate * self.batch_size as f64) as usize).max(1),
        })
    }

    /// Checks the parameters.
    ///
    /// # Errors
    /// [`Error::Parameter`] for `batch_size < 2`, a rate outside (0, 1), `num_pos` outside `1..batch_size`, or a
    /// rate that leaves no negative.
    pub fn check(&self) -> Result<()> {
        if self.batch_size < 2 {
            return Err(Error::Parameter {
                name: "batch_size", value: self.batch_size as f64, reason: "must be ≥ 2"
            });
        }
        match self.num_pos {
            Some(p) if p == 0 || p >= self.batch_size => Err(Error::Parameter {
                name: "num_pos",
                value: p as f64,
                reason: "must be in 1..batch_size (at least one positive and one negative)",
            }),
            Some(_) => Ok(()),
            None => {
                losskit_tensor::check::open("sampling_rate", self.sampling_rate, 0.0, 1.0)?;
                if (self.sampling_rate * self.batch_size as f64) as usize >= self.batch_size {
                    return Err(Error::Parameter {
                        name: "sampling_rate",
                        value: self.sampling_rate,
                        reason: "leaves no negative in the batch",
                    });
                }
                Ok(())
            }
        }
    }

    /// One epoch of row indices: batches of `batch_size`, positives first in each.
    ///
    /// # Errors
    /// As the type's docs.
    pub fn indices(&self, labels: ArrayView1<'_, i64>, seed: u64) -> Result<Vec<usize>> {
        let num_pos = self.positives_per_batch()?;
        let num_neg = self.batch_size - num_pos;
        losskit_tensor::check::non_empty("labels", labels.len())?;
        let mut pos = vec![];
        let mut neg = vec![];
        for (i, &c) in labels.iter().enumerate() {
            match c {
                1 => pos.push(i),
                0 => neg.push(i),
                _ => return Err(Error::LabelOutOfRange { arg: "labels", label: c, classes: 2, index: i }),
            }
        }
        if pos.is_empty() || neg.is_empty() {
            return Err(Error::Degenerate {
                what: format!(
                    "labels: the dual sampler needs both classes; got {} positives and {} negatives",
                    pos.len(),
                    neg.len()
                ),
            });
        }
        let n_batches = (pos.len() / num_pos).max(neg.len() / num_neg).max(1);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        shuffle(&mut pos, &mut rng);
        shuffle(&mut neg, &mut rng);
        let mut pos = Pool { items: pos, ptr: 0 };
        let mut neg = Pool { items: neg, ptr: 0 };
        let mut out = Vec::with_capacity(n_batches * self.batch_size);
        for _ in 0..n_batches {
            pos.take(num_pos, &mut rng, &mut out);
            neg.take(num_neg, &mut rng, &mut out);
        }
        Ok(out)
    }
}

/// A shuffled pool read cyclically, LibAUC's way.
struct Pool {
    items: Vec<usize>,
    ptr: usize,
}

impl Pool {
    fn take(&mut self, k: usize, rng: &mut Xoshiro256PlusPlus, out: &mut Vec<usize>) {
        let n = self.items.len();
        if self.ptr + k <= n {
            out.extend_from_slice(&self.items[self.ptr..self.ptr + k]);
            self.ptr += k;
            return;
        }
        // The rest of this permutation, then the new one `loops` times whole, then its head.
        out.extend_from_slice(&self.items[self.ptr..]);
        let loops = (k + self.ptr - n) / n;
        shuffle(&mut self.items, rng);
        let new_ptr = (self.ptr + k) % n;
        for _ in 0..loops {
            out.extend_from_slice(&self.items);
        }
        out.extend_from_slice(&self.items[..new_ptr]);
        self.ptr = new_ptr;
    }
}

/// Class-balanced sampling: each drawn row comes from a uniformly chosen class, then uniformly from that class's
/// rows (with replacement), so every class has probability 1/C per draw whatever its size.
///
/// This is the class-balanced sampling of Kang et al. (2020) (`p_j = 1/C`, instance-balanced within the class),
/// equivalent to PyTorch's `WeightedRandomSampler` with weights `1 / n_{y_i}` and `replacement=True`.
///
/// # Parameters
/// * `num_samples`: draws per epoch; `None` (default) = N, the number of rows.
///
/// # Errors
/// [`Error::Parameter`] for `num_samples = 0`; [`Error::Empty`] for no labels.
///
/// # Examples
/// ```
/// use losskit_samplers::ClassBalanced;
/// let labels = ndarray::array![0_i64, 0, 0, 0, 0, 0, 0, 0, 0, 1];
/// let epoch = ClassBalanced::new().num_samples(Some(10_000)).indices(labels.view(), 1)?;
/// let ones = epoch.iter().filter(|&&i| labels[i] == 1).count();
/// assert!((4_500..5_500).contains(&ones));
/// # Ok::<(), losskit_samplers::Error>(())
/// ```
///
/// # References
/// Kang, Xie, Rohrbach, Yan, Gordo, Feng, Kalantidis (2020), *Decoupling Representation and Classifier for
/// Long-Tailed Recognition*, ICLR, arXiv:1910.09217.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassBalanced {
    /// Draws per epoch; `None` = the number of rows.
    pub num_samples: Option<usize>,
}

impl ClassBalanced {
    /// The default: N draws per epoch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the draws per epoch (default N).
    pub fn num_samples(mut self, num_samples: Option<usize>) -> Self {
        self.num_samples = num_samples;
        self
    }

    /// Checks the parameters.
    ///
    /// # Errors
    /// [`Error::Parameter`] for `num_samples = 0`.
    pub fn check(&self) -> Result<()> {
        if self.num_samples == Some(0) {
            return Err(Error::Parameter { name: "num_samples", value: 0.0, reason: "must be ≥ 1" });
        }
        Ok(())
    }

    /// One epoch of row indices.
    ///
    /// # Errors
    /// As the type's docs.
    pub fn indices(&self, labels: ArrayView1<'_, i64>, seed: u64) -> Result<Vec<usize>> {
        self.check()?;
        let by_class = members(labels)?;
        let pools: Vec<&Vec<usize>> = by_class.values().collect();
        let n = self.num_samples.unwrap_or(labels.len());
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        Ok((0..n)
            .map(|_| {
                let pool = pools[rng.random_range(0..pools.len())];
                pool[rng.random_range(0..pool.len())]
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn m_per_class_length_follows_pml() {
        let labels = array![0_i64, 0, 1, 1, 2, 2, 2];
        // No batch size: 100 rounded down to a multiple of m · C = 6.
        assert_eq!(MPerClass::new().m(2).length_before_new_iter(100).len(labels.view()).unwrap(), 96);
        assert_eq!(
            MPerClass::new().m(2).batch_size(Some(4)).length_before_new_iter(99).len(labels.view()).unwrap(),
            96
        );
        // m · C ≥ length: the length is kept, and the epoch is cut to it.
        let s = MPerClass::new().m(3).length_before_new_iter(5);
        assert_eq!(s.len(labels.view()).unwrap(), 5);
        assert_eq!(s.indices(labels.view(), 0).unwrap().len(), 5);
    }

    #[test]
    fn m_per_class_errors() {
        let labels = array![0_i64, 0, 1, 1];
        assert!(matches!(MPerClass::new().m(0).check(), Err(Error::Parameter { name: "m", .. })));
        assert!(matches!(
            MPerClass::new().m(2).batch_size(Some(3)).check(),
            Err(Error::Parameter { name: "batch_size", .. })
        ));
        assert!(matches!(
            MPerClass::new().m(2).batch_size(Some(6)).indices(labels.view(), 0),
            Err(Error::Degenerate { .. })
        ));
        assert!(matches!(
            MPerClass::new().m(2).batch_size(Some(4)).length_before_new_iter(2).check(),
            Err(Error::Parameter { name: "batch_size", .. })
        ));
    }

    #[test]
    fn pool_wraps_like_libauc() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(0);
        let mut p = Pool { items: vec![10, 11, 12], ptr: 2 };
        let mut out = vec![];
        p.take(5, &mut rng, &mut out); // 1 left, then 1 whole loop (3), then 1 of the new head
        assert_eq!(out.len(), 5);
        assert_eq!(out[0], 12);
        assert_eq!(&out[1..4], &p.items[..]);
        assert_eq!(out[4], p.items[0]);
        assert_eq!(p.ptr, 1);
    }

    #[test]
    fn dual_sampler_errors() {
        let labels = array![0_i64, 1, 2];
        assert!(matches!(
            DualSampler::new().batch_size(4).indices(labels.view(), 0),
            Err(Error::LabelOutOfRange { label: 2, index: 2, .. })
        ));
        assert!(matches!(
            DualSampler::new().batch_size(4).indices(array![0_i64, 0].view(), 0),
            Err(Error::Degenerate { .. })
        ));
        assert!(matches!(DualSampler::new().sampling_rate(1.0).check(), Err(Error::Parameter { .. })));
        assert!(matches!(DualSampler::new().batch_size(1).check(), Err(Error::Parameter { .. })));
        assert!(matches!(DualSampler::new().batch_size(4).num_pos(Some(4)).check(), Err(Error::Parameter { .. })));
        // int(0.99 · 2) = 1 positive, 1 negative: valid.
        assert_eq!(DualSampler::new().batch_size(2).sampling_rate(0.99).positives_per_batch().unwrap(), 1);
        // int(0.1 · 4) = 0 → at least one positive.
        assert_eq!(DualSampler::new().batch_size(4).sampling_rate(0.1).positives_per_batch().unwrap(), 1);
        assert!(matches!(ClassBalanced::new().num_samples(Some(0)).check(), Err(Error::Parameter { .. })));
        assert!(matches!(batches(&[1, 2], 0), Err(Error::Parameter { .. })));
        assert_eq!(batches(&[1, 2, 3], 2).unwrap(), vec![vec![1, 2], vec![3]]);
    }
}
