//! SMOTEN (Chawla et al. 2002, §6.2), as imbalanced-learn's `SMOTEN`: over-sampling of nominal-only data with the
//! value difference metric; and the nominal encoding SMOTE-NC shares.

use std::collections::BTreeMap;

use ndarray::{ArrayView1, ArrayView2};
use rayon::prelude::*;

use crate::draw::{Draws, RngDraws, check_xy, class_members, counts_of, matrix, output_size};
use crate::smote::{check_neighbors, numpy_sum, too_few};
use crate::{Resampled, Result, Sampler, SamplingKind, SamplingStrategy};

/// SMOTEN: synthetic over-sampling for data whose features are all nominal.
///
/// Every distinct value of a column is a category (scikit-learn's `OrdinalEncoder`: categories sorted ascending,
/// over all rows). The value difference metric (VDM, Stanfill & Waltz 1986, imbalanced-learn's
/// `ValueDifferenceMetric` with its defaults `k = 1`, `r = 2`) compares two rows through the class distributions of
/// their categories:
///
/// ```text
/// P_f(c | v) = #{rows with x_f = v and y = c} / #{rows with x_f = v}        (all classes c of y, ascending)
/// δ(a, b)    = Σ_f ( Σ_c |P_f(c | a_f) − P_f(c | b_f)| )²
/// ```
/// For each class targeted by [`SamplingStrategy::resolve`] (ascending label order) with `m` rows and `n_c` new
/// samples to make, with `k` = `k_neighbors`:
///
/// ```text
/// nn(i)    = the k + 1 rows of the class nearest to row i under δ, row i itself included
/// s_j      ~ U{0, …, m − 1}, n_c draws (with replacement)
/// x_new,f  = the most frequent value of feature f among the rows nn(s_j); ties → the smallest value
/// ```
/// (SciPy's `mode`). New rows are therefore made of values the neighbourhood holds.
///
/// # Output
/// The input rows first, unchanged, then the new rows class by class in ascending label order; no `sample_indices`.
///
/// # Ties
/// scikit-learn ranks the precomputed distance matrix with an unstable sort, so which of several rows tied at the
/// `k + 1`-th distance enters a neighbourhood is unspecified there; losskit takes them by (distance, row index) and
/// says so. The parity fixtures (`tools/fixtures/gen_smote_nc.py`) have no tie at that boundary.
///
/// # Cost
/// The distances of each class are computed row by row in parallel (`O(m² · D)` time, `O(m)` memory per thread);
/// SMOTEN is meant for the minority classes of categorical data sets, as in imbalanced-learn, whose matrix is
/// `m × m`.
///
/// # Parameters
/// * `sampling_strategy`: default [`SamplingStrategy::Auto`] (= `not majority`).
/// * `k_neighbors`: `k ≥ 1`, default 5; each targeted class needs at least `k + 1` rows.
///
/// # Errors
/// [`crate::Error::Parameter`] for `k_neighbors = 0`; [`crate::Error::Degenerate`] for a targeted class with fewer
/// than `k + 1` rows or a single class; input and strategy errors as [`crate::Smote`].
///
/// # Examples
/// ```
/// use losskit_samplers::{Sampler, Smoten, class_counts};
/// let x = ndarray::array![[0.0, 1.0], [0.0, 2.0], [1.0, 1.0], [1.0, 2.0], [2.0, 1.0], [2.0, 2.0], [1.0, 3.0],
///                         [5.0, 3.0], [5.0, 1.0], [0.0, 3.0]];
/// let y = ndarray::array![0_i64, 0, 0, 0, 0, 0, 0, 1, 1, 1];
/// let out = Smoten::new().k_neighbors(2).fit_resample(x.view(), y.view(), 1)?;
/// assert_eq!(class_counts(out.y.view())[&1], 7);
/// // every new value is one the class-1 rows hold
/// assert!(out.x.rows().into_iter().skip(10).all(|r| [5.0, 0.0].contains(&r[0]) && [3.0, 1.0].contains(&r[1])));
/// # Ok::<(), losskit_samplers::Error>(())
/// ```
///
/// # References
/// Chawla, Bowyer, Hall, Kegelmeyer (2002), *SMOTE: Synthetic Minority Over-sampling Technique*, JAIR 16, §6.2
/// (SMOTE-N); Stanfill, Waltz (1986), *Toward memory-based reasoning*, CACM 29(12) (VDM); imbalanced-learn 0.14
/// `SMOTEN` (docs/papers.md `chawla2002smote`).
#[derive(Clone, Debug, PartialEq)]
pub struct Smoten {
    /// Which classes grow, and to how many samples. Default `Auto`.
    pub sampling_strategy: SamplingStrategy,
    /// Number of nearest same-class neighbours (besides the row itself) that vote. Default 5.
    pub k_neighbors: usize,
}

impl Default for Smoten {
    fn default() -> Self {
        Smoten { sampling_strategy: SamplingStrategy::Auto, k_neighbors: 5 }
    }
}

impl Smoten {
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
    /// [`crate::Error::Parameter`] named `k_neighbors` when it is 0, or `sampling_strategy` for a ratio outside
    /// (0, 1].
    pub fn check(&self) -> Result<()> {
        check_neighbors("k_neighbors", self.k_neighbors)?;
        self.sampling_strategy.check()
    }

    pub(crate) fn resample_with(
        &self,
        x: ArrayView2<'_, f64>,
        y: ArrayView1<'_, i64>,
        draws: &mut dyn Draws,
    ) -> Result<Resampled> {
        self.check()?;
        check_xy(x, y)?;
        let members = class_members(y);
        let targets = self.sampling_strategy.resolve(&counts_of(&members), SamplingKind::Over)?;
        let (n, d) = x.dim();
        let k = self.k_neighbors;
        let enc = Nominal::encode(x, &(0..d).collect::<Vec<_>>());
        let vdm = Vdm::fit(&enc, y, &members);
        let extra = targets.values().try_fold(0usize, |a, &b| a.checked_add(b));
        let (_, len) = output_size(n, extra.unwrap_or(usize::MAX), d)?;
        let mut data = Vec::with_capacity(len);
        data.extend(x.iter().copied());
        let mut labels: Vec<i64> = y.to_vec();
        for (&class, &n_new) in &targets {
            if n_new == 0 {
                continue;
            }
            let rows = members.get(&class).map_or(&[][..], Vec::as_slice);
            if rows.len() < k + 1 {
                return Err(too_few("smoten", "k_neighbors", &format!("class {class} has"), rows.len(), k, k + 1));
            }
            let nn = vdm.neighbors(&enc, rows, k + 1);
            let picks = draws.positions(rows.len(), n_new, true);
            let start = data.len();
            data.resize(start + n_new * d, 0.0);
            data[start..].par_chunks_mut(d).zip(picks.par_iter()).for_each(|(out, &s)| {
                let hood = &nn[s * (k + 1)..(s + 1) * (k + 1)];
                let mut counts = Vec::new();
                for (f, o) in out.iter_mut().enumerate() {
                    let cats = &enc.categories[f];
                    counts.clear();
                    counts.resize(cats.len(), 0usize);
                    for &p in hood {
                        counts[enc.code(rows[p], f)] += 1;
                    }
                    // SciPy's mode: the most frequent code, the smallest on ties
                    let best = counts.iter().enumerate().fold(0, |b, (c, &v)| if v > counts[b] { c } else { b });
                    *o = cats[best];
                }
            });
            labels.extend(std::iter::repeat_n(class, n_new));
        }
        Ok(Resampled { x: matrix(data, d)?, y: labels.into(), sample_indices: None })
    }
}

impl Sampler for Smoten {
    fn fit_resample(&self, x: ArrayView2<'_, f64>, y: ArrayView1<'_, i64>, seed: u64) -> Result<Resampled> {
        self.resample_with(x, y, &mut RngDraws::new(seed))
    }
}

/// Nominal columns encoded as category codes (scikit-learn's `OrdinalEncoder`: the sorted distinct values of each
/// column over all rows; `-0.0` and `0.0` are one category, `0.0`).
pub(crate) struct Nominal {
    /// Per encoded column: its sorted distinct values.
    pub(crate) categories: Vec<Vec<f64>>,
    /// `[N, F]` row-major codes.
    codes: Vec<u32>,
    f: usize,
}

impl Nominal {
    /// Encodes the columns `cols` of `x` (finite values).
    pub(crate) fn encode(x: ArrayView2<'_, f64>, cols: &[usize]) -> Self {
        let n = x.nrows();
        let f = cols.len();
        let per_col: Vec<(Vec<f64>, Vec<u32>)> = cols
            .par_iter()
            .map(|&c| {
                let col = x.column(c);
                let mut cats: Vec<f64> = col.iter().map(|&v| v + 0.0).collect(); // + 0.0 folds −0.0 into 0.0
                cats.sort_unstable_by(f64::total_cmp);
                cats.dedup();
                let codes =
                    col.iter().map(|&v| cats.partition_point(|&c| c.total_cmp(&(v + 0.0)).is_lt()) as u32).collect();
                (cats, codes)
            })
            .collect();
        let mut codes = vec![0u32; n * f];
        for (j, (_, cc)) in per_col.iter().enumerate() {
            for (i, &c) in cc.iter().enumerate() {
                codes[i * f + j] = c;
            }
        }
        Nominal { categories: per_col.into_iter().map(|(c, _)| c).collect(), codes, f }
    }

    /// The code of row `i`, encoded column `j`.
    #[inline]
    pub(crate) fn code(&self, i: usize, j: usize) -> usize {
        self.codes[i * self.f + j] as usize
    }
}

/// The value difference metric fitted on all rows: per column, the distance table between its categories.
struct Vdm {
    /// Per column `f`: `[C_f × C_f]` row-major table of `(Σ_c |P(c|a) − P(c|b)|)²`.
    tables: Vec<Vec<f64>>,
}

impl Vdm {
    fn fit(enc: &Nominal, y: ArrayView1<'_, i64>, members: &BTreeMap<i64, Vec<usize>>) -> Self {
        let class_pos: BTreeMap<i64, usize> = members.keys().enumerate().map(|(i, &c)| (c, i)).collect();
        let nc = class_pos.len();
        let tables = (0..enc.f)
            .map(|f| {
                let m = enc.categories[f].len();
                let mut counts = vec![0.0f64; m * nc];
                for (i, label) in y.iter().enumerate() {
                    let c = class_pos.get(label).copied().unwrap_or(0); // ok: every label is a key of members
                    counts[enc.code(i, f) * nc + c] += 1.0;
                }
                for row in counts.chunks_mut(nc) {
                    let total = numpy_sum(row);
                    for v in row.iter_mut() {
                        *v = if total > 0.0 { *v / total } else { 0.0 }; // NumPy's nan_to_num of 0 / 0
                    }
                }
                let mut table = vec![0.0f64; m * m];
                let mut diff = vec![0.0f64; nc];
                for a in 0..m {
                    for b in 0..m {
                        for (c, dv) in diff.iter_mut().enumerate() {
                            *dv = (counts[b * nc + c] - counts[a * nc + c]).abs();
                        }
                        let l1 = numpy_sum(&diff);
                        table[a * m + b] = l1 * l1;
                    }
                }
                table
            })
            .collect();
        Vdm { tables }
    }

    fn distance(&self, enc: &Nominal, i: usize, j: usize) -> f64 {
        let mut s = 0.0;
        for (f, t) in self.tables.iter().enumerate() {
            let m = enc.categories[f].len();
            s += t[enc.code(i, f) * m + enc.code(j, f)];
        }
        s
    }

    /// For each row of `rows`, the `kk` nearest rows of `rows` (positions within `rows`, itself included), by
    /// (distance, position); row-major `[rows.len(), kk]`. Callers guarantee `kk ≤ rows.len()`.
    fn neighbors(&self, enc: &Nominal, rows: &[usize], kk: usize) -> Vec<usize> {
        let m = rows.len();
        let mut out = vec![0usize; m * kk];
        out.par_chunks_mut(kk).enumerate().for_each_init(Vec::new, |dist: &mut Vec<(f64, usize)>, (i, o)| {
            dist.clear();
            dist.extend(rows.iter().enumerate().map(|(p, &r)| (self.distance(enc, rows[i], r), p)));
            let cmp = |a: &(f64, usize), b: &(f64, usize)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
            if kk < m {
                dist.select_nth_unstable_by(kk - 1, cmp);
            }
            let head = &mut dist[..kk];
            head.sort_unstable_by(cmp);
            for (slot, &(_, p)) in o.iter_mut().zip(head.iter()) {
                *slot = p;
            }
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use crate::draw::Stub;
    use crate::testutil::{fixture, floats_matrix, ints};

    #[test]
    fn matches_imbalanced_learn_with_stub_draws() {
        let root = fixture("smote_nc.json");
        let cases = root["smoten"].as_array().unwrap();
        assert!(cases.len() >= 4);
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let x = floats_matrix(&case["x"]);
            let y = ndarray::Array1::from(ints(&case["y"]));
            let strategy: SamplingStrategy = case["params"]["sampling_strategy"].as_str().unwrap().parse().unwrap();
            let k = case["params"]["k_neighbors"].as_u64().unwrap() as usize;
            let s = Smoten::new().sampling_strategy(strategy).k_neighbors(k);
            let got = s.resample_with(x.view(), y.view(), &mut Stub::default()).unwrap();
            assert_eq!(got.y.to_vec(), ints(&case["y_res"]), "{name}: y");
            assert_eq!(got.x, floats_matrix(&case["x_res"]), "{name}: x");

            // The metric itself, on the first targeted class.
            let first = case["vdm_first"]["class"].as_i64().unwrap();
            let want = floats_matrix(&case["vdm_first"]["distances"]);
            let members = class_members(y.view());
            let enc = Nominal::encode(x.view(), &(0..x.ncols()).collect::<Vec<_>>());
            let vdm = Vdm::fit(&enc, y.view(), &members);
            let rows = &members[&first];
            for (a, &ra) in rows.iter().enumerate() {
                for (b, &rb) in rows.iter().enumerate() {
                    let got = vdm.distance(&enc, ra, rb);
                    assert!((got - want[[a, b]]).abs() <= 1e-12 * (1.0 + want[[a, b]]), "{name} ({a}, {b})");
                }
            }
        }
    }

    #[test]
    fn new_values_come_from_the_neighbourhood_and_seed_fixes_output() {
        let root = fixture("smote_nc.json");
        let case = &root["smoten"][1];
        let x = floats_matrix(&case["x"]);
        let y = ndarray::Array1::from(ints(&case["y"]));
        let s = Smoten::new().k_neighbors(2);
        let a = s.fit_resample(x.view(), y.view(), 5).unwrap();
        assert_eq!(a, s.fit_resample(x.view(), y.view(), 5).unwrap());
        let n = x.nrows();
        assert_eq!(a.x.slice(ndarray::s![..n, ..]), x);
        for (row, &label) in a.x.rows().into_iter().zip(a.y.iter()).skip(n) {
            for (f, &v) in row.iter().enumerate() {
                assert!(
                    x.rows().into_iter().zip(y.iter()).any(|(r, &l)| l == label && r[f] == v),
                    "feature {f} value {v} not held by class {label}"
                );
            }
        }
    }

    #[test]
    fn bad_input() {
        assert!(matches!(Smoten::new().k_neighbors(0).check(), Err(Error::Parameter { name: "k_neighbors", .. })));
        let x = ndarray::array![[0.0], [1.0], [2.0], [3.0], [5.0]];
        let y = ndarray::array![0_i64, 0, 0, 1, 1];
        let err = Smoten::new().fit_resample(x.view(), y.view(), 0).unwrap_err();
        assert!(matches!(&err, Error::Degenerate { what } if what.contains("class 1 has 2 samples")), "{err}");
        assert!(Smoten::new().k_neighbors(1).fit_resample(x.view(), y.view(), 0).is_ok());
        let single = ndarray::array![0_i64, 0, 0, 0, 0];
        assert!(Smoten::new().k_neighbors(1).fit_resample(x.view(), single.view(), 0).is_err());
        let mut nan = x.clone();
        nan[[1, 0]] = f64::NAN;
        assert!(matches!(
            Smoten::new().k_neighbors(1).fit_resample(nan.view(), y.view(), 0),
            Err(Error::NonFinite { arg: "x", .. })
        ));
    }

    #[test]
    fn encoding_sorts_categories_and_folds_negative_zero() {
        let x = ndarray::array![[3.0, -0.0], [1.0, 0.0], [3.0, 2.0]];
        let enc = Nominal::encode(x.view(), &[0, 1]);
        assert_eq!(enc.categories, vec![vec![1.0, 3.0], vec![0.0, 2.0]]);
        assert_eq!((0..3).map(|i| (enc.code(i, 0), enc.code(i, 1))).collect::<Vec<_>>(), [(1, 0), (0, 0), (1, 1)]);
    }
}
