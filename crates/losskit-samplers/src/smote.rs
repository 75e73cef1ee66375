//! SMOTE (Chawla et al. 2002), as imbalanced-learn's `SMOTE`, and the interpolation step its variants share.

use ndarray::{Array2, ArrayView1, ArrayView2};
use rayon::prelude::*;

use crate::draw::{Draws, RngDraws, check_xy, class_counts, gather, matrix, members_of, output_size};
use crate::knn::{KnnIndex, Neighbors, Queries};
use crate::{Error, Resampled, Result, Sampler, SamplingKind, SamplingStrategy};

/// SMOTE: synthetic minority over-sampling by interpolation between a sample and one of its nearest neighbours of
/// the same class.
///
/// For each class `c` that [`SamplingStrategy::resolve`] targets with `n_c > 0` samples to generate (ascending label
/// order), with `m` rows of class `c` and `k` = `k_neighbors`:
///
/// ```text
/// nn(i)  = the k nearest rows of class c to row i of class c, itself excluded (exact Euclidean, see knn)
/// t      ~ U{0, …, m·k − 1}, n_c draws;  row = t div k,  col = t mod k
/// u      ~ U[0, 1),         n_c draws
/// x_new  = x_row + u · (x_{nn(row)[col]} − x_row)
/// ```
/// All `t` are drawn first, then all `u` (imbalanced-learn's `_make_samples`), so every new point lies on the segment
/// between a sample of class `c` and one of its `k` nearest class-`c` neighbours.
///
/// # Output
/// The input rows first, in input order, then the new rows class by class in ascending label order. There is no
/// `sample_indices` (imbalanced-learn has none for SMOTE): the new rows are synthetic.
///
/// # Parameters
/// * `sampling_strategy`: default [`SamplingStrategy::Auto`] (= `not majority`).
/// * `k_neighbors`: `k ≥ 1`, default 5; each targeted class needs at least `k + 1` samples.
///
/// # Randomness
/// One `Xoshiro256PlusPlus` stream seeded from `seed`, consumed serially class by class (the `t`, then the `u`); the
/// points themselves are computed in parallel from those draws, so the output depends on the seed only, never on the
/// thread count. NumPy's stream is not reproduced: the points differ from imbalanced-learn's for the same seed, while
/// counts, ordering, neighbour sets and the interpolation formula are identical (tested with stub draws).
///
/// # Errors
/// [`Error::Parameter`] for `k_neighbors = 0` or a ratio outside (0, 1]; [`Error::Degenerate`] when a targeted class
/// has fewer than `k_neighbors + 1` samples (imbalanced-learn: "Expected n_neighbors <= n_samples_fit") or a single
/// class is present; input errors ([`Error::Empty`], [`Error::Shape`], [`Error::NonFinite`]); strategy errors as
/// [`SamplingStrategy::resolve`] with [`SamplingKind::Over`].
///
/// # Examples
/// ```
/// use losskit_samplers::{Sampler, Smote, class_counts};
/// let x = ndarray::array![[0.0, 0.0], [1.0, 0.1], [2.0, 0.3], [3.0, 0.2], [9.0, 9.0], [9.5, 8.0], [8.0, 9.2]];
/// let y = ndarray::array![0_i64, 0, 0, 0, 1, 1, 1];
/// let out = Smote::new().k_neighbors(2).fit_resample(x.view(), y.view(), 7)?;
/// assert_eq!(class_counts(out.y.view()).into_iter().collect::<Vec<_>>(), vec![(0, 4), (1, 4)]);
/// assert_eq!(out.x.slice(ndarray::s![..7, ..]), x); // the input first, unchanged
/// assert!(out.x[[7, 0]] >= 8.0 && out.x[[7, 0]] <= 9.5); // the new point lies between class-1 samples
/// # Ok::<(), losskit_samplers::Error>(())
/// ```
///
/// # References
/// Chawla, Bowyer, Hall, Kegelmeyer (2002), *SMOTE: Synthetic Minority Over-sampling Technique*, JAIR 16,
/// doi:10.1613/jair.953 (docs/papers.md `chawla2002smote`); imbalanced-learn 0.14 `SMOTE` (Lemaître, Nogueira,
/// Aridas (2017), JMLR 18(17)).
#[derive(Clone, Debug, PartialEq)]
pub struct Smote {
    /// Which classes grow, and to how many samples. Default `Auto`.
    pub sampling_strategy: SamplingStrategy,
    /// Number of nearest same-class neighbours to interpolate towards. Default 5.
    pub k_neighbors: usize,
}

impl Default for Smote {
    fn default() -> Self {
        Smote { sampling_strategy: SamplingStrategy::Auto, k_neighbors: 5 }
    }
}

impl Smote {
    /// The default sampler: `sampling_strategy = auto`, `k_neighbors = 5` (imbalanced-learn's defaults).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the sampling strategy (default `auto`).
    pub fn sampling_strategy(mut self, sampling_strategy: SamplingStrategy) -> Self {
        self.sampling_strategy = sampling_strategy;
        self
    }

    /// Sets the number of neighbours `k ≥ 1` (default 5).
    pub fn k_neighbors(mut self, k_neighbors: usize) -> Self {
        self.k_neighbors = k_neighbors;
        self
    }

    /// Checks the parameters.
    ///
    /// # Errors
    /// [`Error::Parameter`] named `k_neighbors` when it is 0, or named `sampling_strategy` for a ratio outside (0, 1].
    pub fn check(&self) -> Result<()> {
        check_neighbors("k_neighbors", self.k_neighbors)?;
        self.sampling_strategy.check()
    }

    /// [`Sampler::fit_resample`] with the neighbour search supplied by the caller (a GPU backend, for one):
    /// `search(class_rows, k)` is called once per class to oversample, on that class's rows gathered into a matrix,
    /// and must return each row's k nearest other rows as [`knn::kneighbors_self`](crate::knn::kneighbors_self)
    /// does (ties to the smaller index). With that search the output equals `fit_resample(x, y, seed)` exactly: the
    /// seeded draws and the interpolation are this sampler's own.
    ///
    /// # Errors
    /// As [`Sampler::fit_resample`], plus what `search` returns.
    pub fn fit_resample_with_search(
        &self,
        x: ArrayView2<'_, f64>,
        y: ArrayView1<'_, i64>,
        seed: u64,
        search: &mut dyn FnMut(ArrayView2<'_, f64>, usize) -> Result<Neighbors>,
    ) -> Result<Resampled> {
        self.resample_searching(Input::View(x), y, &mut RngDraws::new(seed), search)
    }

    /// The over-sampling itself, with the draws given (real or the parity-test stub).
    pub(crate) fn resample_with(
        &self,
        x: ArrayView2<'_, f64>,
        y: ArrayView1<'_, i64>,
        draws: &mut dyn Draws,
    ) -> Result<Resampled> {
        self.resample_searching(Input::View(x), y, draws, &mut self_neighbors)
    }

    fn resample_searching(
        &self,
        x: Input<'_>,
        y: ArrayView1<'_, i64>,
        draws: &mut dyn Draws,
        search: &mut dyn FnMut(ArrayView2<'_, f64>, usize) -> Result<Neighbors>,
    ) -> Result<Resampled> {
        self.check()?;
        check_xy(x.view(), y)?;
        let counts = class_counts(y);
        let targets = self.sampling_strategy.resolve(&counts, SamplingKind::Over)?;
        let k = self.k_neighbors;
        let extra = targets.values().try_fold(0usize, |a, &b| a.checked_add(b));
        for (&class, &n_new) in &targets {
            let have = counts.get(&class).copied().unwrap_or(0);
            if n_new > 0 && have < k + 1 {
                return Err(too_few("smote", "k_neighbors", &format!("class {class} has"), have, k, k + 1));
            }
        }
        let mut out = match x {
            Input::View(v) => Growing::new(v, y, extra)?,
            Input::Owned(a) => Growing::from_owned(a, y, extra)?,
        };
        // The rows of the classes that grow (the others are copied whole, not indexed).
        let members = members_of(y, &counts, |c| targets.get(&c).is_some_and(|&n| n > 0));
        for (&class, &n_new) in &targets {
            if n_new == 0 {
                continue;
            }
            let rows = members.get(&class).map_or(&[][..], Vec::as_slice);
            let nn = search(gather(out.input()?, rows)?.view(), k)?;
            let t = draws.integers(rows.len() * k, n_new);
            let steps = draws.uniform(0.0, 1.0, n_new);
            out.push_pairs(class, |i| (rows[t[i] / k], rows[nn.indices[[t[i] / k, t[i] % k]]]), &steps, None);
        }
        out.finish()
    }
}

/// The input of a resampling call: borrowed (copied into the output) or owned (the output grows from it).
enum Input<'a> {
    View(ArrayView2<'a, f64>),
    Owned(Array2<f64>),
}

impl Input<'_> {
    fn view(&self) -> ArrayView2<'_, f64> {
        match self {
            Input::View(v) => v.view(),
            Input::Owned(a) => a.view(),
        }
    }
}

impl Sampler for Smote {
    fn fit_resample(&self, x: ArrayView2<'_, f64>, y: ArrayView1<'_, i64>, seed: u64) -> Result<Resampled> {
        losskit_tensor::pool::on_worker(|| self.resample_with(x, y, &mut RngDraws::new(seed)))
    }

    /// As `fit_resample`, with the output grown from `x`'s own buffer: the input rows are not copied (for a large
    /// input the allocator moves the buffer's pages to make room rather than copying them), and peak memory is the
    /// output alone. Same result, bit for bit.
    fn fit_resample_owned(&self, x: Array2<f64>, y: ArrayView1<'_, i64>, seed: u64) -> Result<Resampled> {
        losskit_tensor::pool::on_worker(|| {
            self.resample_searching(Input::Owned(x), y, &mut RngDraws::new(seed), &mut self_neighbors)
        })
    }
}

/// `k ≥ 1` for a neighbour-count parameter.
pub(crate) fn check_neighbors(name: &'static str, k: usize) -> Result<()> {
    if k == 0 {
        return Err(Error::Parameter { name, value: 0.0, reason: "the number of neighbours must be ≥ 1" });
    }
    Ok(())
}

/// The `k` nearest same-class neighbours of every row of a class (positions within `rows`), or the error naming
/// the sampler, its parameter and the class when the class is too small.
pub(crate) fn class_neighbors(
    method: &str,
    param: &str,
    x: ArrayView2<'_, f64>,
    rows: &[usize],
    class: i64,
    k: usize,
) -> Result<Neighbors> {
    if rows.len() < k + 1 {
        return Err(too_few(method, param, &format!("class {class} has"), rows.len(), k, k + 1));
    }
    self_neighbors(gather(x, rows)?.view(), k)
}

/// The `k` nearest other rows of every row of `xc` (the exact CPU search).
fn self_neighbors(xc: ArrayView2<'_, f64>, k: usize) -> Result<Neighbors> {
    let all: Vec<usize> = (0..xc.nrows()).collect();
    KnnIndex::new(xc, None).search(&Queries::Rows { rows: &all, exclude_self: true }, k)
}

/// The error for a neighbourhood larger than the samples available: `who` is e.g. `class 1 has`.
pub(crate) fn too_few(method: &str, param: &str, who: &str, have: usize, k: usize, needed: usize) -> Error {
    Error::Degenerate {
        what: format!(
            "{method}: {who} {have} samples, but {param} = {k} needs at least {needed}; lower {param} or add samples"
        ),
    }
}

/// NumPy's `np.sum` of a contiguous `f64` array (pairwise summation: blocks of 128 summed with 8 accumulators), so
/// that quantities imbalanced-learn derives from sums (ADASYN's ratios, NearMiss's distance sums) round identically.
pub(crate) fn numpy_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        a.iter().fold(-0.0, |s, v| s + v)
    } else if n <= 128 {
        let mut r = [0.0; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - n % 8 {
            for (j, rj) in r.iter_mut().enumerate() {
                *rj += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for v in &a[i..] {
            res += v;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        numpy_sum(&a[..n2]) + numpy_sum(&a[n2..])
    }
}

/// Values per parallel task when the input rows are copied into the output (256 KiB).
const COPY_CHUNK: usize = 1 << 15;

/// New rows per parallel task in [`Growing::push_synthetic`].
const SYNTH_ROWS: usize = 256;

/// The resampled set under construction: the input rows, then synthetic rows appended class by class.
///
/// `data` holds exactly the rows written so far (row-major, `D` wide); its capacity is planned for the whole output
/// once, so appending never reallocates when the caller's count was right.
pub(crate) struct Growing {
    data: Vec<f64>,
    /// Input rows (the first `n·D` values of `data`, the rows synthesis reads).
    n: usize,
    d: usize,
    labels: Vec<i64>,
}

impl Growing {
    /// Starts from a copy of the input (any layout); `extra` is the number of new rows expected (`None` on overflow).
    pub(crate) fn new(x: ArrayView2<'_, f64>, y: ArrayView1<'_, i64>, extra: Option<usize>) -> Result<Self> {
        let (n, d) = x.dim();
        let (total, len) = output_size(n, extra.unwrap_or(usize::MAX), d)?;
        let mut data: Vec<f64> = Vec::with_capacity(with_tail_room(len));
        // Fresh pages: the parallel copy below is their first touch.
        losskit_tensor::alloc::advise_huge_pages(data.spare_capacity_mut());
        let head = &mut data.spare_capacity_mut()[..n * d];
        match x.as_slice() {
            Some(flat) => head.par_chunks_mut(COPY_CHUNK).zip(flat.par_chunks(COPY_CHUNK)).for_each(|(out, src)| {
                for (o, &v) in out.iter_mut().zip(src) {
                    o.write(v);
                }
            }),
            None => head.iter_mut().zip(x.iter()).for_each(|(o, &v)| {
                o.write(v);
            }),
        }
        // SAFETY: the first n·D values were all written just above (`x` has n·D elements), within the capacity.
        unsafe { data.set_len(n * d) };
        Ok(Growing { data, n, d, labels: labels_with_room(y, total) })
    }

    /// Starts from the input itself, without copying it: the rows of a standard-layout `x` stay where they are and
    /// the buffer grows in place for the `extra` new rows (for a large buffer the allocator moves its pages rather
    /// than copying them). Any other layout is copied as [`Growing::new`] does.
    pub(crate) fn from_owned(x: Array2<f64>, y: ArrayView1<'_, i64>, extra: Option<usize>) -> Result<Self> {
        let (n, d) = x.dim();
        if !x.is_standard_layout() {
            return Self::new(x.view(), y, extra);
        }
        let (total, len) = output_size(n, extra.unwrap_or(usize::MAX), d)?;
        let (mut data, offset) = x.into_raw_vec_and_offset();
        if data.len() != n * d || offset.unwrap_or(0) != 0 {
            // A view into a larger buffer (sliced in place): take the rows out.
            let start = offset.unwrap_or(0);
            data = data[start..start + n * d].to_vec();
        }
        data.reserve_exact(with_tail_room(len) - n * d);
        losskit_tensor::alloc::advise_huge_pages(data.spare_capacity_mut());
        Ok(Growing { data, n, d, labels: labels_with_room(y, total) })
    }

    /// The input rows, `[n, D]`, standard layout.
    pub(crate) fn input(&self) -> Result<ArrayView2<'_, f64>> {
        ArrayView2::from_shape((self.n, self.d), &self.data[..self.n * self.d])
            .map_err(|e| Error::Degenerate { what: format!("internal shape error: {e}") })
    }

    /// Appends `x_new[i] = x[base[i]] + steps[i] · ((x[nbr[i]] − x[base[i]]) · factor[i])` (input rows), computed
    /// in parallel, with label `class`. The operation order is NumPy's, so the values are bit-identical to
    /// imbalanced-learn's for the same draws.
    pub(crate) fn push_synthetic(
        &mut self,
        class: i64,
        base: &[usize],
        nbr: &[usize],
        steps: &[f64],
        factor: Option<&[f64]>,
    ) {
        debug_assert_eq!(nbr.len(), base.len());
        self.push_pairs(class, |i| (base[i], nbr[i]), steps, factor);
    }

    /// [`Growing::push_synthetic`] with the `(base, nbr)` input rows of new row `i` given by `pair(i)`, for
    /// `steps.len()` new rows (no index vectors to build).
    pub(crate) fn push_pairs(
        &mut self,
        class: i64,
        pair: impl Fn(usize) -> (usize, usize) + Sync,
        steps: &[f64],
        factor: Option<&[f64]>,
    ) {
        let d = self.d;
        let rows = steps.len();
        let count = rows * d;
        self.data.reserve(count); // a no-op when the planned capacity was right
        let filled = self.data.len();
        let ptr = self.data.as_mut_ptr();
        // SAFETY: the first n·D values are initialised (n·D ≤ filled) and only read here; [filled, filled + count)
        // lies within the capacity reserved just above and is only written; the two ranges are disjoint, both
        // derived from the same pointer, and `data` is not touched otherwise until `set_len` below.
        let (src, dst) = unsafe {
            (
                std::slice::from_raw_parts(ptr.cast_const(), self.n * d),
                std::slice::from_raw_parts_mut(ptr.add(filled).cast::<std::mem::MaybeUninit<f64>>(), count),
            )
        };
        let synthesize = |i: usize, out: &mut [std::mem::MaybeUninit<f64>]| {
            let ((b, j), u) = (pair(i), steps[i]);
            let f = factor.map(|f| f[i]);
            let xb = &src[b * d..(b + 1) * d];
            let xn = &src[j * d..(j + 1) * d];
            for ((o, &p), &q) in out.iter_mut().zip(xb).zip(xn) {
                let diff = match f {
                    Some(f) => (q - p) * f,
                    None => q - p,
                };
                o.write(p + u * diff);
            }
        };
        if d > 0 {
            dst.par_chunks_mut(d * SYNTH_ROWS).enumerate().for_each(|(c, block)| {
                for (r, out) in block.chunks_exact_mut(d).enumerate() {
                    synthesize(c * SYNTH_ROWS + r, out);
                }
            });
        }
        // SAFETY: every value of [filled, filled + count) was written above (count = `rows` rows of D).
        unsafe { self.data.set_len(filled + count) };
        self.labels.extend(std::iter::repeat_n(class, rows));
    }

    /// The finished set (no `sample_indices`: synthetic rows have none).
    pub(crate) fn finish(self) -> Result<Resampled> {
        Ok(Resampled { x: matrix(self.data, self.d)?, y: self.labels.into(), sample_indices: None })
    }
}

/// A capacity for `len` values that lets the last one be backed by a huge page: 2 MiB more for a buffer large
/// enough to be advised ([`losskit_tensor::alloc::advise_huge_pages`]). The 2 MiB-aligned block holding the last
/// value then lies whole inside the allocation, so the advice covers it, and the writes that reach it fault once
/// instead of once per 4 KiB page (up to 512 faults, milliseconds where first touches are slow). The extra room is
/// address space: only the huge page that the writes reach is ever backed.
fn with_tail_room(len: usize) -> usize {
    const HUGE_VALUES: usize = (2 << 20) / std::mem::size_of::<f64>();
    if len >= 4 * HUGE_VALUES { len.saturating_add(HUGE_VALUES) } else { len }
}

/// The input labels in a vector with room for `total`.
fn labels_with_room(y: ArrayView1<'_, i64>, total: usize) -> Vec<i64> {
    let mut labels = Vec::with_capacity(total);
    labels.extend(y.iter().copied());
    labels
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::draw::Stub;
    use crate::testutil::{fixture, floats_matrix, ints};

    #[test]
    fn matches_imbalanced_learn_with_stub_draws() {
        let root = fixture("smote.json");
        let cases = root["smote"].as_array().unwrap();
        assert!(cases.len() >= 5);
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let x = floats_matrix(&case["x"]);
            let y = ndarray::Array1::from(ints(&case["y"]));
            let strategy: SamplingStrategy = case["params"]["sampling_strategy"].as_str().unwrap().parse().unwrap();
            let k = case["params"]["k_neighbors"].as_u64().unwrap() as usize;
            let s = Smote::new().sampling_strategy(strategy).k_neighbors(k);
            let got = s.resample_with(x.view(), y.view(), &mut Stub::default()).unwrap();
            assert_eq!(got.y.to_vec(), ints(&case["y_res"]), "{name}: y");
            // Same draws, same neighbours, same operation order: bit-identical.
            assert_eq!(got.x, floats_matrix(&case["x_res"]), "{name}: x");
        }
    }

    #[test]
    fn one_dimensional_oracle_from_the_spec() {
        // spec §8.2: minority {0, 10} with k = 1: every new point in [0, 10]; with step 0.5 it is exactly 5.
        let x = ndarray::array![[0.0], [10.0], [100.0], [101.0], [102.0], [103.0]];
        let y = ndarray::array![1_i64, 1, 0, 0, 0, 0];
        let out = Smote::new().k_neighbors(1).fit_resample(x.view(), y.view(), 3).unwrap();
        assert_eq!(out.y.len(), 8);
        assert!(out.x.column(0).iter().skip(6).all(|&v| (0.0..=10.0).contains(&v)));
        let mut half = Growing::new(x.view(), y.view(), Some(2)).unwrap();
        half.push_synthetic(1, &[0, 1], &[1, 0], &[0.5, 0.5], None);
        let half = half.finish().unwrap();
        assert_eq!(half.x.column(0).to_vec()[6..], [5.0, 5.0]);
    }

    #[test]
    fn owned_input_gives_the_same_output_bit_for_bit() {
        use ndarray::{Array1, ShapeBuilder, s};
        let (n, d) = (300, 7);
        let x = Array2::from_shape_fn((n, d), |(i, j)| ((i * 31 + j * 7) as f64 * 0.13).sin() * (1 + j) as f64);
        let y = Array1::from_shape_fn(n, |i| [0_i64, 0, 0, 1, 0, 2][i % 6] + i64::from(i % 11 == 0));
        for strategy in [SamplingStrategy::Auto, SamplingStrategy::All] {
            let s = Smote::new().sampling_strategy(strategy).k_neighbors(3);
            let want = s.fit_resample(x.view(), y.view(), 5).unwrap();
            // Standard layout (grown in place), column-major (copied), and a sliced owned array (offset buffer).
            let fortran = {
                let mut f = Array2::zeros((n, d).f());
                f.assign(&x);
                f
            };
            let mut wide = Array2::zeros((n + 3, d));
            wide.slice_mut(s![3.., ..]).assign(&x);
            wide.slice_collapse(s![3.., ..]);
            for owned in [x.clone(), fortran, wide] {
                let got = s.fit_resample_owned(owned, y.view(), 5).unwrap();
                assert_eq!(got.x, want.x);
                assert_eq!(got.y, want.y);
                assert!(got.sample_indices.is_none());
            }
        }
        // Errors are the same too, and nothing is half-built.
        let bad = Smote::new().k_neighbors(200).fit_resample_owned(x.clone(), y.view(), 0).unwrap_err();
        assert_eq!(bad, Smote::new().k_neighbors(200).fit_resample(x.view(), y.view(), 0).unwrap_err());
    }

    #[test]
    fn numpy_sum_is_pairwise() {
        // 2^53 absorbs a lone 1.0 (a tie, rounded to even) but not the pairs the 8 accumulators form:
        // r = [2^53 + 1, 1 + 1, …, 1 + 1] = [2^53, 2, 2, 2, 2, 2, 2, 2]; ((2^53 + 2) + 4) + (4 + 4) = 2^53 + 14,
        // where a sequential sum stays at 2^53.
        let big = 9_007_199_254_740_992.0;
        let mut a = vec![big];
        a.extend(std::iter::repeat_n(1.0, 15));
        assert_eq!(numpy_sum(&a), big + 14.0);
        assert_eq!(a.iter().fold(0.0, |s, v| s + v), big);
        assert_eq!(numpy_sum(&[0.1, 0.2, 0.3]), 0.1 + 0.2 + 0.3);
        let long: Vec<f64> = (0..1000).map(|i| (i as f64).sin()).collect();
        let plain: f64 = long.iter().sum();
        assert!((numpy_sum(&long) - plain).abs() < 1e-12);
    }

    #[test]
    fn bad_parameters() {
        assert!(matches!(Smote::new().k_neighbors(0).check(), Err(Error::Parameter { name: "k_neighbors", .. })));
        let x = ndarray::array![[0.0], [1.0], [2.0], [3.0], [5.0]];
        let y = ndarray::array![0_i64, 0, 0, 1, 1];
        let err = Smote::new().fit_resample(x.view(), y.view(), 0).unwrap_err();
        assert!(
            matches!(&err, Error::Degenerate { what }
                if what.contains("class 1 has 2 samples") && what.contains("k_neighbors = 5")),
            "{err}"
        );
        assert!(Smote::new().k_neighbors(1).fit_resample(x.view(), y.view(), 0).is_ok());
    }
}
