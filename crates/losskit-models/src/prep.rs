//! Data preparation: standardisation, the stratified train/test split, seeded minibatches and seed derivation.

use std::collections::BTreeMap;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

use losskit_tensor::{Error, Result, check};

/// Derives an independent seed for `stream` from `seed` (SplitMix64 finaliser over both), so each random step of a
/// run (split, resampling, initialisation, shuffling) has its own reproducible stream.
pub fn derive_seed(seed: u64, stream: u64) -> u64 {
    let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Shuffles `v` in place (Fisher–Yates, Durstenfeld's form: for i = n−1 down to 1 swap i with U{0..=i}).
pub fn shuffle<T>(v: &mut [T], rng: &mut Xoshiro256PlusPlus) {
    for i in (1..v.len()).rev() {
        let j = rng.random_range(0..=i);
        v.swap(i, j);
    }
}

/// Per-feature standardisation z = (x − μ) / σ, fitted on training data (scikit-learn's `StandardScaler`).
///
/// ```text
/// μⱼ = (1/N) Σᵢ xᵢⱼ,    σⱼ = √((1/N) Σᵢ (xᵢⱼ − μⱼ)²)    (population std, ddof = 0, as StandardScaler)
/// ```
/// A constant feature (σⱼ = 0 up to rounding, by StandardScaler's test σⱼ² ≤ N·ε·σⱼ² + (N·μⱼ·ε)²) gets σⱼ = 1, so it
/// maps to 0 instead of NaN or noise, as in StandardScaler.
#[derive(Clone, Debug, PartialEq)]
pub struct Standardizer {
    /// Per-feature mean μ `[D]`.
    pub mean: Array1<f64>,
    /// Per-feature scale σ `[D]` (1 where the feature is constant).
    pub std: Array1<f64>,
}

impl Standardizer {
    /// Fits μ and σ on `x` `[N, D]`.
    ///
    /// # Errors
    /// [`Error::Empty`] for N = 0 or D = 0, [`Error::NonFinite`] for NaN/∞.
    pub fn fit(x: ArrayView2<'_, f64>) -> Result<Self> {
        check::non_empty("x", x.nrows())?;
        check::non_empty("x columns", x.ncols())?;
        check::finite("x", &x)?;
        let n = x.nrows() as f64;
        let mean = x.sum_axis(Axis(0)) / n;
        let mut var = Array1::<f64>::zeros(x.ncols());
        for row in x.rows() {
            for ((v, &xi), &m) in var.iter_mut().zip(row).zip(&mean) {
                let d = xi - m;
                *v += d * d;
            }
        }
        // sklearn's `_is_constant_feature`: a variance within rounding error of zero, var ≤ N·ε·var + (N·μ·ε)², is 0.
        let eps = f64::EPSILON;
        let std = Array1::from_iter(var.iter().zip(&mean).map(|(&v, &m)| {
            let var = v / n;
            if var <= n * eps * var + (n * m * eps).powi(2) { 1.0 } else { var.sqrt() }
        }));
        Ok(Self { mean, std })
    }

    /// (x − μ) / σ for `x` `[M, D]`.
    ///
    /// # Errors
    /// [`Error::Shape`] when `x` does not have D columns.
    pub fn transform(&self, x: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        check::shape("x", x.shape(), &[None, Some(self.mean.len())])?;
        let mut out = x.to_owned();
        out -= &self.mean;
        out /= &self.std;
        Ok(out)
    }

    /// [`fit`](Standardizer::fit) then [`transform`](Standardizer::transform) on the same data.
    ///
    /// # Errors
    /// As [`Standardizer::fit`].
    pub fn fit_transform(x: ArrayView2<'_, f64>) -> Result<(Self, Array2<f64>)> {
        let s = Self::fit(x)?;
        let z = s.transform(x)?;
        Ok((s, z))
    }
}

/// Row indices of a train/test split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    /// Training rows, in shuffled order.
    pub train: Vec<usize>,
    /// Held-out rows, in shuffled order.
    pub test: Vec<usize>,
}

/// sklearn's `_approximate_mode`: how many of `n_draws` each class gets, ∝ its count, remainders rounded up
/// largest-first, ties among equal remainders broken at random.
fn approximate_mode(counts: &[usize], n_draws: usize, rng: &mut Xoshiro256PlusPlus) -> Vec<usize> {
    let total: usize = counts.iter().sum();
    // Same floating-point expression as sklearn (count / total · n_draws), so floors agree bit for bit.
    let continuous: Vec<f64> = counts.iter().map(|&c| c as f64 / total as f64 * n_draws as f64).collect();
    let mut floored: Vec<usize> = continuous.iter().map(|v| v.floor() as usize).collect();
    let mut need = n_draws.saturating_sub(floored.iter().sum());
    if need > 0 {
        let remainder: Vec<f64> = continuous.iter().zip(&floored).map(|(c, &f)| c - f as f64).collect();
        let mut values = remainder.clone();
        values.sort_by(|a, b| b.total_cmp(a));
        values.dedup();
        for value in values {
            let mut inds: Vec<usize> = (0..counts.len()).filter(|&i| remainder[i] == value).collect();
            let add_now = inds.len().min(need);
            shuffle(&mut inds, rng);
            for &i in &inds[..add_now] {
                floored[i] += 1;
            }
            need -= add_now;
            if need == 0 {
                break;
            }
        }
    }
    floored
}

/// Moves single samples of class `c` from side `from` to side `to` (0 = train, 1 = test) until it has `min` on
/// `to`, each time compensating with the class having the most samples to spare on `to` (largest count above its
/// own minimum; the lowest index on ties). Keeps both side totals fixed; stops when no class can compensate.
fn ensure_minimum(sides: &mut [Vec<usize>; 2], mins: &[usize], c: usize, to: usize) {
    let from = 1 - to;
    while sides[to][c] < mins[c] && sides[from][c] > mins[c] {
        let donor = (0..mins.len())
            .filter(|&j| j != c && sides[to][j] > mins[j])
            .max_by(|&a, &b| sides[to][a].cmp(&sides[to][b]).then(b.cmp(&a)));
        let Some(j) = donor else { return };
        sides[to][c] += 1;
        sides[from][c] -= 1;
        sides[to][j] -= 1;
        sides[from][j] += 1;
    }
}

/// Stratified train/test split, following scikit-learn's `train_test_split(..., stratify=y)`
/// (`StratifiedShuffleSplit`), with one documented addition.
///
/// ```text
/// n_test = ⌈test_fraction · N⌉,  n_train = N − n_test
/// n_train,k = approximate_mode(counts, n_train)      (∝ count, largest remainders rounded up)
/// n_test,k  = count_k − n_train,k
/// ```
/// Each class's rows are shuffled and its first n_train,k go to train, the rest to test; both lists are then
/// shuffled. The per-class counts equal sklearn's whenever sklearn's remainders have no ties to break (tested
/// against frozen sklearn output); the row choice differs, since the random streams differ.
///
/// **Addition:** every class keeps at least m_k = min(2, ⌊count_k / 2⌋) rows on each side when possible (2 for
/// classes of ≥ 4 rows, 1 for classes of 2–3), so a rare class is always evaluated and always trained on. sklearn
/// can leave a small class with 0 or 1 test rows (counts [2, 100] at 10 % give it none); in that case one row at a
/// time moves across, and a row of the class with the most rows to spare on that side moves back, so the side totals
/// stay as above. When sklearn's allocation already satisfies the minima, nothing changes.
///
/// Classes are the distinct values of `y` (any integers).
///
/// # Errors
/// [`Error::Parameter`] for `test_fraction` outside (0, 1); [`Error::Empty`] for empty `y`;
/// [`Error::Degenerate`] when a class has a single row, or when either side would get fewer rows than there are
/// classes (sklearn's two `ValueError`s).
pub fn stratified_split(y: ArrayView1<'_, i64>, test_fraction: f64, seed: u64) -> Result<Split> {
    check::open("test_fraction", test_fraction, 0.0, 1.0)?;
    check::non_empty("y", y.len())?;
    let mut by_class: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, &label) in y.iter().enumerate() {
        by_class.entry(label).or_default().push(i);
    }
    if let Some((label, _)) = by_class.iter().find(|(_, rows)| rows.len() < 2) {
        return Err(Error::Degenerate {
            what: format!("y: class {label} has a single sample; a stratified split needs at least 2 per class"),
        });
    }
    let n = y.len();
    let n_classes = by_class.len();
    let n_test = (test_fraction * n as f64).ceil() as usize;
    let n_train = n - n_test.min(n);
    if n_train < n_classes || n_test < n_classes {
        return Err(Error::Degenerate {
            what: format!(
                "test_fraction = {test_fraction} gives {n_train} train and {n_test} test samples; \
                 each side needs at least one per class ({n_classes} classes)"
            ),
        });
    }
    let counts: Vec<usize> = by_class.values().map(Vec::len).collect();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let train_counts = approximate_mode(&counts, n_train, &mut rng);
    let test_counts: Vec<usize> = counts.iter().zip(&train_counts).map(|(c, t)| c - t).collect();
    let mut sides = [train_counts, test_counts];
    let mins: Vec<usize> = counts.iter().map(|&c| (c / 2).min(2)).collect();
    // Rarest classes first, so they get first call on the rows others can spare.
    let mut order: Vec<usize> = (0..n_classes).collect();
    order.sort_by_key(|&k| (counts[k], k));
    for &k in &order {
        ensure_minimum(&mut sides, &mins, k, 1);
        ensure_minimum(&mut sides, &mins, k, 0);
    }
    let mut train = Vec::with_capacity(n_train);
    let mut test = Vec::with_capacity(n_test);
    for (k, rows) in by_class.values().enumerate() {
        let mut rows = rows.clone();
        shuffle(&mut rows, &mut rng);
        let (a, b) = rows.split_at(sides[0][k]);
        train.extend_from_slice(a);
        test.extend_from_slice(b);
    }
    shuffle(&mut train, &mut rng);
    shuffle(&mut test, &mut rng);
    Ok(Split { train, test })
}

/// Minibatches of row indices for one epoch: a seeded permutation of `0..n` cut into chunks of `batch_size` (the
/// last one shorter when `batch_size` does not divide n, as PyTorch's `DataLoader(shuffle=True, drop_last=False)`).
#[derive(Clone, Debug)]
pub struct Minibatches {
    order: Vec<usize>,
    batch_size: usize,
}

impl Minibatches {
    /// Batches over `n` rows, shuffled with `rng` (advancing it), or in order when `rng` is `None`.
    ///
    /// # Errors
    /// [`Error::Parameter`] when `batch_size` is 0.
    pub fn new(n: usize, batch_size: usize, rng: Option<&mut Xoshiro256PlusPlus>) -> Result<Self> {
        if batch_size == 0 {
            return Err(Error::Parameter { name: "batch_size", value: 0.0, reason: "must be ≥ 1" });
        }
        let mut order: Vec<usize> = (0..n).collect();
        if let Some(rng) = rng {
            shuffle(&mut order, rng);
        }
        Ok(Self { order, batch_size })
    }

    /// The batches, each a slice of row indices.
    pub fn iter(&self) -> std::slice::Chunks<'_, usize> {
        self.order.chunks(self.batch_size)
    }

    /// Number of batches, ⌈n / batch_size⌉.
    pub fn len(&self) -> usize {
        self.order.len().div_ceil(self.batch_size)
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

impl<'a> IntoIterator for &'a Minibatches {
    type Item = &'a [usize];
    type IntoIter = std::slice::Chunks<'a, usize>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::assert_all_close;
    use ndarray::{Array1, array};

    fn labels(counts: &[usize]) -> Array1<i64> {
        counts.iter().enumerate().flat_map(|(k, &c)| std::iter::repeat_n(k as i64, c)).collect()
    }

    fn side_counts(y: &Array1<i64>, rows: &[usize], k: usize) -> Vec<usize> {
        let mut c = vec![0; k];
        for &r in rows {
            c[y[r] as usize] += 1;
        }
        c
    }

    #[test]
    fn standardizer_by_hand_and_constant_column() {
        let x = array![[1.0, 5.0, 2.0], [3.0, 5.0, 4.0], [5.0, 5.0, 9.0]];
        let (s, z) = Standardizer::fit_transform(x.view()).unwrap();
        // Column 0: μ = 3, σ = √(8/3).  Column 1 is constant: σ = 1, z = 0.  Column 2: μ = 5, deviations −3, −1, 4, σ = √(26/3).
        assert_all_close(&s.mean, &array![3.0, 5.0, 5.0], 1e-15);
        assert_all_close(&s.std, &array![(8.0_f64 / 3.0).sqrt(), 1.0, (26.0_f64 / 3.0).sqrt()], 1e-14);
        assert_all_close(&z.column(0), &array![-1.224744871391589, 0.0, 1.224744871391589], 1e-14);
        assert!(z.column(1).iter().all(|&v| v == 0.0));
        let t = s.transform(array![[3.0, 7.0, 5.0]].view()).unwrap();
        assert_all_close(&t, &array![[0.0, 2.0, 0.0]], 1e-15);
        assert!(matches!(s.transform(array![[1.0]].view()), Err(Error::Shape { arg: "x", .. })));
        assert!(matches!(Standardizer::fit(Array2::zeros((0, 3)).view()), Err(Error::Empty { arg: "x" })));
        let bad = array![[1.0, f64::NAN]];
        assert!(matches!(Standardizer::fit(bad.view()), Err(Error::NonFinite { arg: "x", index: 1, .. })));
    }

    #[test]
    fn split_counts_match_frozen_sklearn() {
        let fx =
            losskit_tensor::gradcheck::load_json(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/split.json"));
        let cases = fx["cases"].as_array().unwrap();
        assert!(cases.len() >= 5);
        for case in cases {
            let to_vec = |v: &serde_json::Value| -> Vec<usize> {
                v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect()
            };
            let counts = to_vec(&case["counts"]);
            let t = case["test_size"].as_f64().unwrap();
            let y = labels(&counts);
            for seed in 0..3 {
                let s = stratified_split(y.view(), t, seed).unwrap();
                assert_eq!(side_counts(&y, &s.train, counts.len()), to_vec(&case["train"]), "{counts:?} {t}");
                assert_eq!(side_counts(&y, &s.test, counts.len()), to_vec(&case["test"]), "{counts:?} {t}");
            }
        }
    }

    #[test]
    fn split_is_a_seeded_partition() {
        let y = labels(&[10, 53, 681, 638, 199, 18]);
        let a = stratified_split(y.view(), 0.25, 7).unwrap();
        let b = stratified_split(y.view(), 0.25, 7).unwrap();
        let c = stratified_split(y.view(), 0.25, 8).unwrap();
        assert_eq!(a, b);
        assert_ne!(a.test, c.test);
        let mut all: Vec<usize> = a.train.iter().chain(&a.test).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..y.len()).collect::<Vec<_>>());
        assert_eq!(a.test.len(), 400); // ⌈0.25 · 1599⌉
    }

    #[test]
    fn split_keeps_small_classes_on_both_sides() {
        // sklearn: n_test = ⌈10.2⌉ = 11, n_train = 91; train gets [2, 89] (remainder 0.78 of class 0 rounds up), so
        // class 0 has no test row. Ours moves one class-0 row to test and one class-1 row back: [1, 90] / [1, 10].
        let y = labels(&[2, 100]);
        let s = stratified_split(y.view(), 0.1, 0).unwrap();
        assert_eq!(side_counts(&y, &s.train, 2), vec![1, 90]);
        assert_eq!(side_counts(&y, &s.test, 2), vec![1, 10]);
        // sklearn: n_test = ⌈20.5⌉ = 21; train [4, 180], test [1, 20]. Class 0 (5 rows) needs 2 test rows: [3, 181] /
        // [2, 19].
        let y = labels(&[5, 200]);
        let s = stratified_split(y.view(), 0.1, 0).unwrap();
        assert_eq!(side_counts(&y, &s.train, 2), vec![3, 181]);
        assert_eq!(side_counts(&y, &s.test, 2), vec![2, 19]);
        // And the other side: with a 90 % test fraction a 5-row class keeps 2 training rows.
        let s = stratified_split(y.view(), 0.9, 0).unwrap();
        let train = side_counts(&y, &s.train, 2);
        assert_eq!(train[0], 2);
        assert_eq!(train.iter().sum::<usize>(), 205 - 185); // n_test = ⌈184.5⌉ = 185
    }

    #[test]
    fn split_handles_arbitrary_label_values() {
        let y = array![7_i64, -3, 7, -3, 7, -3, 7, -3];
        let s = stratified_split(y.view(), 0.5, 1).unwrap();
        let test: Vec<i64> = s.test.iter().map(|&i| y[i]).collect();
        assert_eq!(test.iter().filter(|&&v| v == 7).count(), 2);
        assert_eq!(test.len(), 4);
    }

    #[test]
    fn split_errors_follow_sklearn() {
        let y = labels(&[1, 10]);
        assert!(matches!(stratified_split(y.view(), 0.3, 0), Err(Error::Degenerate { .. })));
        let y = labels(&[2, 2, 2]);
        // n_test = ⌈0.1 · 6⌉ = 1 < 3 classes.
        let e = stratified_split(y.view(), 0.1, 0).unwrap_err();
        assert!(e.to_string().contains("3 classes"), "{e}");
        assert!(matches!(stratified_split(y.view(), 1.0, 0), Err(Error::Parameter { name: "test_fraction", .. })));
        assert!(matches!(stratified_split(y.view(), 0.0, 0), Err(Error::Parameter { name: "test_fraction", .. })));
        let empty = Array1::<i64>::zeros(0);
        assert!(matches!(stratified_split(empty.view(), 0.2, 0), Err(Error::Empty { arg: "y" })));
    }

    #[test]
    fn approximate_mode_examples_from_sklearn_docstring() {
        // Deterministic docstring cases of sklearn.utils.extmath._approximate_mode.
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(0);
        assert_eq!(approximate_mode(&[4, 2], 3, &mut rng), vec![2, 1]);
        assert_eq!(approximate_mode(&[5, 2], 4, &mut rng), vec![3, 1]);
        // [2, 2, 2, 1] with 2 draws: a random two of the three tied classes get one each, class 3 none.
        let r = approximate_mode(&[2, 2, 2, 1], 2, &mut rng);
        assert_eq!((r.iter().sum::<usize>(), r[3]), (2, 0));
        assert!(r[..3].iter().all(|&v| v <= 1));
    }

    #[test]
    fn minibatches_cover_every_row_once_and_are_seeded() {
        let mut r1 = Xoshiro256PlusPlus::seed_from_u64(3);
        let mut r2 = Xoshiro256PlusPlus::seed_from_u64(3);
        let a = Minibatches::new(10, 4, Some(&mut r1)).unwrap();
        let b = Minibatches::new(10, 4, Some(&mut r2)).unwrap();
        let sizes: Vec<usize> = a.iter().map(<[usize]>::len).collect();
        assert_eq!(sizes, vec![4, 4, 2]);
        assert_eq!(a.len(), 3);
        let mut all: Vec<usize> = a.iter().flatten().copied().collect();
        assert_eq!(all, b.iter().flatten().copied().collect::<Vec<_>>());
        assert_ne!(all, (0..10).collect::<Vec<_>>());
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        let plain = Minibatches::new(5, 2, None).unwrap();
        assert_eq!(plain.iter().flatten().copied().collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
        assert!(matches!(Minibatches::new(5, 0, None), Err(Error::Parameter { name: "batch_size", .. })));
    }

    #[test]
    fn derived_seeds_differ_by_stream_and_seed() {
        let s: Vec<u64> = (0..4).map(|k| derive_seed(1, k)).collect();
        let t: Vec<u64> = (0..4).map(|k| derive_seed(2, k)).collect();
        let mut all = s.clone();
        all.extend(&t);
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 8);
        assert_eq!(derive_seed(1, 0), s[0]);
    }
}
