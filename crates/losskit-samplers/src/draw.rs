//! Random draws, and the input handling every sampler shares.
//!
//! Samplers take their randomness through the crate-private [`Draws`] trait: [`RngDraws`] (a seeded
//! `Xoshiro256PlusPlus`) in production, and in the unit tests a stub whose draws are fixed formulas mirrored by
//! `tools/fixtures/gen_samplers.py`, so imbalanced-learn's deterministic behaviour can be compared element by element.

use std::collections::BTreeMap;

use ndarray::{Array2, ArrayView1, ArrayView2};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;

use crate::{Error, Result};

/// The random draws a sampler makes, in the order it makes them.
pub(crate) trait Draws {
    /// `size` positions in `0..n`, as NumPy's `choice(n, size, replace)`: independent and uniform with `replace`,
    /// otherwise distinct (a uniformly random subset in random order). Callers guarantee `n > 0` when `size > 0`
    /// and `size ≤ n` without replacement.
    fn positions(&mut self, n: usize, size: usize, replace: bool) -> Vec<usize>;

    /// One standard normal draw (NumPy's `randn`, one element).
    fn normal(&mut self) -> f64;

    /// `size` integers uniform in `0..high` (NumPy's `randint(0, high, size)`). Callers guarantee `high > 0` when
    /// `size > 0`.
    fn integers(&mut self, high: usize, size: usize) -> Vec<usize>;

    /// `size` floats uniform in `[low, high)` (NumPy's `uniform(low, high, size)`).
    fn uniform(&mut self, low: f64, high: f64, size: usize) -> Vec<f64>;
}

/// Draws from a `Xoshiro256PlusPlus` seeded with `seed_from_u64`: one stream per `fit_resample` call, consumed in a
/// fixed order, so the output depends on the seed only (never on the thread count).
pub(crate) struct RngDraws(Xoshiro256PlusPlus);

impl RngDraws {
    pub(crate) fn new(seed: u64) -> Self {
        RngDraws(Xoshiro256PlusPlus::seed_from_u64(seed))
    }
}

impl Draws for RngDraws {
    fn positions(&mut self, n: usize, size: usize, replace: bool) -> Vec<usize> {
        if size == 0 || n == 0 {
            return Vec::new();
        }
        if replace {
            return (0..size).map(|_| self.0.random_range(0..n)).collect();
        }
        // Partial Fisher–Yates: the first `size` slots of a shuffled 0..n.
        debug_assert!(size <= n);
        let mut pool: Vec<usize> = (0..n).collect();
        let size = size.min(n);
        for i in 0..size {
            let j = self.0.random_range(i..n);
            pool.swap(i, j);
        }
        pool.truncate(size);
        pool
    }

    fn normal(&mut self) -> f64 {
        self.0.sample(StandardNormal)
    }

    fn integers(&mut self, high: usize, size: usize) -> Vec<usize> {
        if high == 0 {
            return Vec::new();
        }
        (0..size).map(|_| self.0.random_range(0..high)).collect()
    }

    fn uniform(&mut self, low: f64, high: f64, size: usize) -> Vec<f64> {
        // `random::<f64>()` is uniform in [0, 1) with 53 random bits.
        (0..size).map(|_| low + (high - low) * self.0.random::<f64>()).collect()
    }
}

/// The stub random state of `tools/fixtures/gen_samplers.py` (`StubRandomState`), for the parity tests.
#[cfg(test)]
#[derive(Default)]
pub(crate) struct Stub {
    k: usize,
    /// Uniform draws made so far (`tools/fixtures/gen_smote.py`'s `StubRandomState.u`).
    u: usize,
}

#[cfg(test)]
impl Draws for Stub {
    fn positions(&mut self, n: usize, size: usize, replace: bool) -> Vec<usize> {
        if replace { (0..size).map(|i| (7 * i + 3) % n).collect() } else { (0..size).map(|i| n - 1 - i).collect() }
    }

    fn normal(&mut self) -> f64 {
        let v = 1.5 * (1.7 * self.k as f64 + 0.3).sin();
        self.k += 1;
        v
    }

    fn integers(&mut self, high: usize, size: usize) -> Vec<usize> {
        (0..size).map(|i| (7 * i + 3) % high).collect()
    }

    fn uniform(&mut self, low: f64, high: f64, size: usize) -> Vec<f64> {
        let out =
            (0..size).map(|i| low + (high - low) * (((self.u + i) as f64 * 0.6180339887498949 + 0.1) % 1.0)).collect();
        self.u += size;
        out
    }
}

/// Validates sampler input: `x` `[N, D]` with N ≥ 1 and D ≥ 1, finite; `y` `[N]`.
pub(crate) fn check_xy(x: ArrayView2<'_, f64>, y: ArrayView1<'_, i64>) -> Result<()> {
    let (n, d) = x.dim();
    losskit_tensor::check::non_empty("x", n)?;
    if d == 0 {
        return Err(Error::Shape { arg: "x", expected: "[N, D] with D ≥ 1 features".into(), got: vec![n, d] });
    }
    losskit_tensor::check::shape("y", y.shape(), &[Some(n)])?;
    losskit_tensor::check::finite("x", &x)
}

/// The row indices of each class, in ascending label order, each list in ascending row order
/// (NumPy's `flatnonzero(y == c)` for every `c` in `unique(y)`).
pub(crate) fn class_members(y: ArrayView1<'_, i64>) -> BTreeMap<i64, Vec<usize>> {
    members_of(y, &class_counts(y), |_| true)
}

/// Labels up to which a short list, searched from the most recent label, beats the ordered map (labels come in
/// runs, or from few classes; one map lookup per row costs more than the rest of a pass).
const SHORT_LIST: usize = 64;

/// The number of rows of each class (one pass over `y`).
pub(crate) fn class_counts(y: ArrayView1<'_, i64>) -> crate::ClassCounts {
    let mut counts: Vec<(i64, usize)> = Vec::new();
    let mut last = 0;
    for (i, &label) in y.iter().enumerate() {
        last = position_from(&counts, last, label).unwrap_or_else(|| {
            counts.push((label, 0));
            counts.len() - 1
        });
        counts[last].1 += 1;
        if counts.len() > SHORT_LIST {
            // Many classes: the ordered map is the better structure from here on.
            let mut map: crate::ClassCounts = counts.into_iter().collect();
            for &label in y.iter().skip(i + 1) {
                *map.entry(label).or_default() += 1;
            }
            return map;
        }
    }
    counts.into_iter().collect()
}

/// The row indices of the classes that `keep` selects among those of `counts` (which must be `y`'s
/// [`class_counts`]), as [`class_members`] gives them; each list is allocated once at its final size, and the
/// classes not kept cost no memory (an over-sampler needs the rows of the classes it grows only: SMOTE on a
/// 100 000-row set with a 2% minority then skips a 98 000-entry list and its page faults).
pub(crate) fn members_of(
    y: ArrayView1<'_, i64>,
    counts: &crate::ClassCounts,
    keep: impl Fn(i64) -> bool,
) -> BTreeMap<i64, Vec<usize>> {
    if counts.len() > SHORT_LIST {
        let mut members: BTreeMap<i64, Vec<usize>> =
            counts.iter().filter(|&(&c, _)| keep(c)).map(|(&c, &n)| (c, Vec::with_capacity(n))).collect();
        for (i, label) in y.iter().enumerate() {
            if let Some(rows) = members.get_mut(label) {
                rows.push(i);
            }
        }
        return members;
    }
    // One list per class of `counts` (a class not kept holds none), looked up as in `class_counts`.
    let mut lists: Vec<(i64, Option<Vec<usize>>)> =
        counts.iter().map(|(&c, &n)| (c, keep(c).then(|| Vec::with_capacity(n)))).collect();
    let mut last = 0;
    for (i, &label) in y.iter().enumerate() {
        // Every label of `y` is in `counts` (the caller's contract); an unknown one is skipped.
        let Some(at) = position_from(&lists, last, label) else { continue };
        last = at;
        if let Some(rows) = &mut lists[last].1 {
            rows.push(i);
        }
    }
    lists.into_iter().filter_map(|(c, rows)| Some((c, rows?))).collect()
}

/// The position of `label` in a short `(label, value)` list, trying `last` (the most recent class) first.
#[inline(always)]
fn position_from<V>(list: &[(i64, V)], last: usize, label: i64) -> Option<usize> {
    if list.get(last).is_some_and(|(l, _)| *l == label) {
        return Some(last);
    }
    list.iter().position(|(l, _)| *l == label)
}

/// The class counts of [`class_members`] (one pass over `y` serves both).
pub(crate) fn counts_of(members: &BTreeMap<i64, Vec<usize>>) -> crate::ClassCounts {
    members.iter().map(|(&c, rows)| (c, rows.len())).collect()
}

/// The output size `(rows, rows · D)` of `n` input rows plus `extra` new rows, or an error when it cannot be held in
/// memory's address space (per-class counts are caller input: refuse rather than panic on a capacity overflow).
pub(crate) fn output_size(n: usize, extra: usize, d: usize) -> Result<(usize, usize)> {
    n.checked_add(extra)
        .and_then(|t| Some((t, t.checked_mul(d)?)))
        .filter(|&(_, len)| len <= isize::MAX as usize / 8)
        .ok_or_else(|| Error::Degenerate {
            what: format!("sampling_strategy: the resampled set ({n} + {extra} rows of {d} features) is too large"),
        })
}

/// The rows `idx` of `x` as a new standard-layout matrix.
pub(crate) fn gather(x: ArrayView2<'_, f64>, idx: &[usize]) -> Result<Array2<f64>> {
    let mut data = Vec::with_capacity(idx.len() * x.ncols());
    push_rows(&mut data, x, idx);
    matrix(data, x.ncols())
}

/// Builds an output matrix [rows / D, D] from a row-major buffer.
pub(crate) fn matrix(data: Vec<f64>, d: usize) -> Result<Array2<f64>> {
    let rows = data.len().checked_div(d).unwrap_or(0);
    Array2::from_shape_vec((rows, d), data)
        .map_err(|e| Error::Degenerate { what: format!("internal shape error: {e}") })
}

/// Appends the rows `idx` of `x` (standard layout) to `out`.
pub(crate) fn push_rows(out: &mut Vec<f64>, x: ArrayView2<'_, f64>, idx: &[usize]) {
    match x.as_slice() {
        Some(flat) => {
            let d = x.ncols();
            for &i in idx {
                out.extend_from_slice(&flat[i * d..(i + 1) * d]);
            }
        }
        None => {
            for &i in idx {
                out.extend(x.row(i).iter().copied());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_members_is_the_per_label_index_list_for_few_and_many_classes() {
        for classes in [1_i64, 2, 7, 64, 65, 300] {
            let y: ndarray::Array1<i64> = (0..5000_i64).map(|i| ((i * 7919) % 10007) % classes - classes / 3).collect();
            let mut want: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
            for (i, &l) in y.iter().enumerate() {
                want.entry(l).or_default().push(i);
            }
            assert_eq!(class_members(y.view()), want, "{classes} classes");
        }
        assert!(class_members(ndarray::Array1::<i64>::zeros(0).view()).is_empty());
    }

    #[test]
    fn counts_and_selected_members_agree_with_the_full_lists() {
        for classes in [1_i64, 2, 7, 64, 65, 300] {
            let y: ndarray::Array1<i64> = (0..5000_i64).map(|i| ((i * 7919) % 10007) % classes - classes / 3).collect();
            let all = class_members(y.view());
            let counts = class_counts(y.view());
            assert_eq!(counts, counts_of(&all), "{classes} classes");
            // Odd labels only: exactly those lists, equal to the full ones.
            let odd = members_of(y.view(), &counts, |c| c % 2 != 0);
            let want: BTreeMap<i64, Vec<usize>> = all.into_iter().filter(|(c, _)| c % 2 != 0).collect();
            assert_eq!(odd, want, "{classes} classes");
            assert!(members_of(y.view(), &counts, |_| false).is_empty());
        }
        // A label missing from the counts (outside the contract) is skipped, not a panic.
        let y = ndarray::arr1(&[3_i64, 9, 3]);
        let counts: crate::ClassCounts = [(3, 2)].into_iter().collect();
        assert_eq!(members_of(y.view(), &counts, |_| true), [(3, vec![0, 2])].into_iter().collect());
        assert!(class_counts(ndarray::Array1::<i64>::zeros(0).view()).is_empty());
    }

    #[test]
    fn positions_without_replacement_are_distinct_and_in_range() {
        let mut d = RngDraws::new(3);
        for n in [1, 2, 7, 100] {
            for size in [0, 1, n / 2, n] {
                let p = d.positions(n, size, false);
                assert_eq!(p.len(), size);
                let mut s = p.clone();
                s.sort_unstable();
                s.dedup();
                assert_eq!(s.len(), size, "n={n} size={size}");
                assert!(p.iter().all(|&i| i < n));
            }
        }
    }

    #[test]
    fn positions_with_replacement_cover_the_range_uniformly() {
        let mut d = RngDraws::new(11);
        let n = 5;
        let p = d.positions(n, 50_000, true);
        let mut hist = [0usize; 5];
        for i in p {
            hist[i] += 1;
        }
        // each bin ≈ 10 000 ± 4σ (σ ≈ 89)
        assert!(hist.iter().all(|&h| (9_640..=10_360).contains(&h)), "{hist:?}");
    }

    #[test]
    fn shuffle_is_uniform_over_orders() {
        // all 6 orders of 3 elements, each ≈ 1/6
        let mut d = RngDraws::new(5);
        let mut hist = BTreeMap::new();
        for _ in 0..60_000 {
            *hist.entry(d.positions(3, 3, false)).or_insert(0usize) += 1;
        }
        assert_eq!(hist.len(), 6);
        assert!(hist.values().all(|&h| (9_550..=10_450).contains(&h)), "{hist:?}");
    }

    #[test]
    fn normal_draws_have_unit_moments() {
        let mut d = RngDraws::new(1);
        let v: Vec<f64> = (0..200_000).map(|_| d.normal()).collect();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
        assert!(mean.abs() < 0.01 && (var - 1.0).abs() < 0.015, "{mean} {var}");
    }

    #[test]
    fn input_checks_name_the_argument() {
        let x = Array2::<f64>::zeros((3, 2));
        let y = ndarray::array![0_i64, 1, 0];
        assert!(check_xy(x.view(), y.view()).is_ok());
        assert!(matches!(check_xy(x.view(), y.slice(ndarray::s![..2])), Err(Error::Shape { arg: "y", .. })));
        assert!(matches!(
            check_xy(Array2::<f64>::zeros((0, 2)).view(), ndarray::Array1::<i64>::zeros(0).view()),
            Err(Error::Empty { arg: "x" })
        ));
        assert!(matches!(check_xy(Array2::<f64>::zeros((3, 0)).view(), y.view()), Err(Error::Shape { arg: "x", .. })));
        let mut bad = x.clone();
        bad[[2, 1]] = f64::NAN;
        assert!(matches!(check_xy(bad.view(), y.view()), Err(Error::NonFinite { arg: "x", index: 5, .. })));
    }
}
