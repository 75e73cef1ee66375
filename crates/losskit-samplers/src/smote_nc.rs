//! SMOTE-NC (Chawla et al. 2002, §6.1), as imbalanced-learn's `SMOTENC`: SMOTE for mixed continuous and nominal
//! features.

use ndarray::{ArrayView1, ArrayView2};
use rayon::prelude::*;

use crate::draw::{Draws, RngDraws, check_xy, class_members, counts_of, matrix, output_size};
use crate::knn::{KnnIndex, Queries};
use crate::smote::{check_neighbors, too_few};
use crate::smoten::Nominal;
use crate::{Error, Resampled, Result, Sampler, SamplingKind, SamplingStrategy};

/// SMOTE-NC: SMOTE over data with continuous and nominal (categorical) columns.
///
/// The columns listed in `categorical_features` are nominal: every distinct value is a category (sorted, over all
/// rows, as scikit-learn's `OneHotEncoder`); the others are continuous. For each class targeted by
/// [`SamplingStrategy::resolve`] (ascending label order) with `m` rows and `n_c` new samples, `k` = `k_neighbors`:
///
/// ```text
/// Med      = median over the continuous columns of the class's standard deviation (population, ddof 0)
/// enc(x)   = [continuous part of x, one-hot of each nominal column scaled by Med/√2]
/// dist²    = ‖cont(a) − cont(b)‖² + Med² · #{nominal columns where a and b differ}
/// nn(i)    = the k nearest rows of the class to row i under that distance, itself excluded
/// t ~ U{0, …, m·k − 1}, u ~ U[0, 1) (n_c draws each, all t first);  row = t div k,  col = t mod k
/// continuous part:  x_new = x_row + u · (x_{nn(row)[col]} − x_row)
/// nominal column f: the category most frequent among the k neighbours nn(row) (not row itself); ties → one of
///                   the tied categories uniformly at random
/// ```
/// The vote counts each neighbour's one-hot entry (`Med/√2`, or 1 when `Med = 0`) and calls categories tied when
/// their sums agree under NumPy's `isclose` (`rtol = 1e−5`, `atol = 1e−8`), exactly as imbalanced-learn. Its
/// random tie-break (a permutation of the tied pairs) is reproduced in distribution: one uniform pick among the
/// tied categories, drawn sample by sample after the `t` and `u` of the class.
///
/// # Output
/// The input rows first, unchanged, then the new rows class by class in ascending label order, columns in their
/// input positions (nominal values are the input's category values); no `sample_indices`.
///
/// # Parameters
/// * `categorical_features`: the nominal column indices (any order, no repeats); at least one column, and not all.
/// * `sampling_strategy`: default [`SamplingStrategy::Auto`] (= `not majority`).
/// * `k_neighbors`: `k ≥ 1`, default 5; each targeted class needs at least `k + 1` rows.
///
/// # Errors
/// [`Error::Parameter`] named `categorical_features` for an index `≥ D` (value = the index) or a repeated index;
/// [`Error::Input`] when no column or every column is nominal (imbalanced-learn: "SMOTE-NC is not designed to work
/// only with numerical / categorical features"); [`Error::Parameter`] for `k_neighbors = 0`;
/// [`Error::Degenerate`] for a targeted class with fewer than `k + 1` rows; input and strategy errors as
/// [`crate::Smote`].
///
/// # Examples
/// ```
/// use losskit_samplers::{Sampler, SmoteNc, class_counts};
/// // column 1 is nominal (colours 0, 1, 2)
/// let x = ndarray::array![[0.0, 0.0], [0.5, 1.0], [1.0, 0.0], [1.5, 1.0], [2.0, 0.0], [2.5, 1.0],
///                         [9.0, 2.0], [9.5, 2.0], [8.5, 1.0]];
/// let y = ndarray::array![0_i64, 0, 0, 0, 0, 0, 1, 1, 1];
/// let out = SmoteNc::new(vec![1]).k_neighbors(2).fit_resample(x.view(), y.view(), 3)?;
/// assert_eq!(class_counts(out.y.view())[&1], 6);
/// for r in out.x.rows().into_iter().skip(9) {
///     assert!((8.5..=9.5).contains(&r[0]) && [1.0, 2.0].contains(&r[1]));
/// }
/// # Ok::<(), losskit_samplers::Error>(())
/// ```
///
/// # References
/// Chawla, Bowyer, Hall, Kegelmeyer (2002), *SMOTE: Synthetic Minority Over-sampling Technique*, JAIR 16, §6.1
/// (SMOTE-NC); imbalanced-learn 0.14 `SMOTENC` (docs/papers.md `chawla2002smote`).
#[derive(Clone, Debug, PartialEq)]
pub struct SmoteNc {
    /// Indices of the nominal columns. Default empty (which `fit_resample` rejects: imbalanced-learn has no default).
    pub categorical_features: Vec<usize>,
    /// Which classes grow, and to how many samples. Default `Auto`.
    pub sampling_strategy: SamplingStrategy,
    /// Number of nearest same-class neighbours. Default 5.
    pub k_neighbors: usize,
}

impl Default for SmoteNc {
    fn default() -> Self {
        SmoteNc { categorical_features: Vec::new(), sampling_strategy: SamplingStrategy::Auto, k_neighbors: 5 }
    }
}

impl SmoteNc {
    /// A sampler with the given nominal columns and imbalanced-learn's defaults (`auto`, `k_neighbors = 5`).
    pub fn new(categorical_features: Vec<usize>) -> Self {
        SmoteNc { categorical_features, ..Self::default() }
    }

    /// Sets the nominal column indices.
    pub fn categorical_features(mut self, categorical_features: Vec<usize>) -> Self {
        self.categorical_features = categorical_features;
        self
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

    /// Checks the parameters that do not depend on the data (the column indices are checked against `D` by
    /// `fit_resample`).
    ///
    /// # Errors
    /// [`Error::Parameter`] named `k_neighbors` when it is 0, `categorical_features` for a repeated index, or
    /// `sampling_strategy` for a ratio outside (0, 1].
    pub fn check(&self) -> Result<()> {
        check_neighbors("k_neighbors", self.k_neighbors)?;
        let mut sorted = self.categorical_features.clone();
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::Parameter {
                name: "categorical_features",
                value: w[0] as f64,
                reason: "a column index is listed twice",
            });
        }
        self.sampling_strategy.check()
    }

    /// The nominal and continuous columns (both ascending) for `d` features.
    fn columns(&self, d: usize) -> Result<(Vec<usize>, Vec<usize>)> {
        if let Some(&bad) = self.categorical_features.iter().find(|&&c| c >= d) {
            return Err(Error::Parameter {
                name: "categorical_features",
                value: bad as f64,
                reason: "a column index must be below the number of features",
            });
        }
        let mut cat = self.categorical_features.clone();
        cat.sort_unstable();
        let cont: Vec<usize> = (0..d).filter(|j| cat.binary_search(j).is_err()).collect();
        if cat.is_empty() {
            return Err(Error::Input {
                what: "smote-nc: categorical_features is empty; SMOTE-NC needs some nominal columns (use smote for \
                       continuous data)"
                    .into(),
            });
        }
        if cont.is_empty() {
            return Err(Error::Input {
                what: "smote-nc: every column is categorical; SMOTE-NC needs some continuous columns (use smoten for \
                       nominal data)"
                    .into(),
            });
        }
        Ok((cat, cont))
    }

    pub(crate) fn resample_with(
        &self,
        x: ArrayView2<'_, f64>,
        y: ArrayView1<'_, i64>,
        draws: &mut dyn Draws,
    ) -> Result<Resampled> {
        self.check()?;
        check_xy(x, y)?;
        let (n, d) = x.dim();
        let members = class_members(y);
        let targets = self.sampling_strategy.resolve(&counts_of(&members), SamplingKind::Over)?;
        let (cat, cont) = self.columns(d)?;
        let k = self.k_neighbors;
        let enc = Nominal::encode(x, &cat);
        // one-hot column offsets of each nominal column in the encoded matrix, after the continuous part
        let mut offsets = Vec::with_capacity(cat.len());
        let mut width = cont.len();
        for cats in &enc.categories {
            offsets.push(width);
            width += cats.len();
        }
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
                return Err(too_few("smote-nc", "k_neighbors", &format!("class {class} has"), rows.len(), k, k + 1));
            }
            let med = median_std(x, rows, &cont);
            let one = med / std::f64::consts::SQRT_2;
            // the class's encoded rows
            let m = rows.len();
            let mut e = ndarray::Array2::<f64>::zeros((m, width));
            for (p, &r) in rows.iter().enumerate() {
                for (j, &c) in cont.iter().enumerate() {
                    e[[p, j]] = x[[r, c]];
                }
                for (f, &off) in offsets.iter().enumerate() {
                    e[[p, off + enc.code(r, f)]] = one;
                }
            }
            let all: Vec<usize> = (0..m).collect();
            let nn = KnnIndex::new(e.view(), None).search(&Queries::Rows { rows: &all, exclude_self: true }, k)?;
            let t = draws.integers(m * k, n_new);
            let steps = draws.uniform(0.0, 1.0, n_new);
            // nominal votes: the tied maxima of each new row and column (isclose on the one-hot sums)
            let weight = if med == 0.0 { 1.0 } else { one };
            let ties: Vec<Vec<Vec<usize>>> = t
                .par_iter()
                .map(|&t| {
                    let hood = nn.indices.row(t / k);
                    let mut counts = Vec::new();
                    (0..cat.len())
                        .map(|f| {
                            counts.clear();
                            counts.resize(enc.categories[f].len(), 0usize);
                            for &p in hood {
                                counts[enc.code(rows[p], f)] += 1;
                            }
                            let max = counts.iter().copied().max().unwrap_or(0) as f64 * weight;
                            counts
                                .iter()
                                .enumerate()
                                .filter(|&(_, &c)| (c as f64 * weight - max).abs() <= 1e-8 + 1e-5 * max.abs())
                                .map(|(j, _)| j)
                                .collect()
                        })
                        .collect()
                })
                .collect();
            let mut chosen = vec![0usize; n_new * cat.len()];
            for (i, per_col) in ties.iter().enumerate() {
                for (f, tied) in per_col.iter().enumerate() {
                    let pick = if tied.len() > 1 { draws.positions(tied.len(), 1, false)[0] } else { 0 };
                    chosen[i * cat.len() + f] = tied.get(pick).copied().unwrap_or(0);
                }
            }
            let start = data.len();
            data.resize(start + n_new * d, 0.0);
            data[start..].par_chunks_mut(d).enumerate().for_each(|(i, out)| {
                let (b, j, u) = (rows[t[i] / k], rows[nn.indices[[t[i] / k, t[i] % k]]], steps[i]);
                for &c in &cont {
                    let p = x[[b, c]];
                    out[c] = p + u * (x[[j, c]] - p);
                }
                for (f, &c) in cat.iter().enumerate() {
                    out[c] = enc.categories[f][chosen[i * cat.len() + f]];
                }
            });
            labels.extend(std::iter::repeat_n(class, n_new));
        }
        Ok(Resampled { x: matrix(data, d)?, y: labels.into(), sample_indices: None })
    }
}

impl Sampler for SmoteNc {
    fn fit_resample(&self, x: ArrayView2<'_, f64>, y: ArrayView1<'_, i64>, seed: u64) -> Result<Resampled> {
        self.resample_with(x, y, &mut RngDraws::new(seed))
    }
}

/// The median over the columns `cont` of the population standard deviation of the rows `rows` (NumPy's `median`:
/// the mean of the two middle values for an even count).
fn median_std(x: ArrayView2<'_, f64>, rows: &[usize], cont: &[usize]) -> f64 {
    let m = rows.len() as f64;
    let mut stds: Vec<f64> = cont
        .iter()
        .map(|&c| {
            let mean = rows.iter().map(|&r| x[[r, c]]).sum::<f64>() / m;
            let var = rows.iter().map(|&r| (x[[r, c]] - mean).powi(2)).sum::<f64>() / m;
            var.sqrt()
        })
        .collect();
    stds.sort_unstable_by(f64::total_cmp);
    let h = stds.len() / 2;
    match stds.len() {
        0 => 0.0,
        l if l % 2 == 1 => stds[h],
        _ => (stds[h - 1] + stds[h]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::draw::Stub;
    use crate::testutil::{fixture, floats_matrix, ints};

    fn case_sampler(case: &serde_json::Value) -> SmoteNc {
        let strategy: SamplingStrategy = case["params"]["sampling_strategy"].as_str().unwrap().parse().unwrap();
        let k = case["params"]["k_neighbors"].as_u64().unwrap() as usize;
        let cat: Vec<usize> = ints(&case["params"]["categorical_features"]).into_iter().map(|v| v as usize).collect();
        SmoteNc::new(cat).sampling_strategy(strategy).k_neighbors(k)
    }

    #[test]
    fn matches_imbalanced_learn_with_stub_draws() {
        let root = fixture("smote_nc.json");
        let cases = root["smote_nc"].as_array().unwrap();
        assert!(cases.len() >= 6);
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let x = floats_matrix(&case["x"]);
            let y = ndarray::Array1::from(ints(&case["y"]));
            let s = case_sampler(case);
            let got = s.resample_with(x.view(), y.view(), &mut Stub::default()).unwrap();
            assert_eq!(got.y.to_vec(), ints(&case["y_res"]), "{name}: y");
            // same draws, same neighbours, same votes and tie rule, same interpolation order: bit-identical
            assert_eq!(got.x, floats_matrix(&case["x_res"]), "{name}: x");
            let members = class_members(y.view());
            let (_, cont) = s.columns(x.ncols()).unwrap();
            for (c, want) in case["median_std"].as_object().unwrap() {
                let rows = &members[&c.parse::<i64>().unwrap()];
                let got = median_std(x.view(), rows, &cont);
                assert!((got - want.as_f64().unwrap()).abs() < 1e-12, "{name}: median std of class {c}");
            }
        }
    }

    #[test]
    fn invariants_with_real_draws() {
        // continuous parts on a segment to a neighbour of the same class; nominal values from the neighbourhood
        let root = fixture("smote_nc.json");
        for case in root["smote_nc"].as_array().unwrap() {
            let x = floats_matrix(&case["x"]);
            let y = ndarray::Array1::from(ints(&case["y"]));
            let s = case_sampler(case);
            let out = s.fit_resample(x.view(), y.view(), 17).unwrap();
            assert_eq!(out, s.fit_resample(x.view(), y.view(), 17).unwrap());
            assert_eq!(out.y.to_vec(), ints(&case["y_res"]));
            let (cat, cont) = s.columns(x.ncols()).unwrap();
            let n = x.nrows();
            for (row, &label) in out.x.rows().into_iter().zip(out.y.iter()).skip(n) {
                let same: Vec<usize> = (0..n).filter(|&i| y[i] == label).collect();
                let on_segment = same.iter().any(|&a| {
                    same.iter().any(|&b| {
                        let mut u = None;
                        cont.iter().all(|&c| {
                            let (p, q) = (x[[a, c]], x[[b, c]]);
                            if (q - p).abs() < 1e-12 {
                                return (row[c] - p).abs() < 1e-9;
                            }
                            let t = (row[c] - p) / (q - p);
                            let ok = (-1e-9..=1.0 + 1e-9).contains(&t) && u.is_none_or(|u: f64| (u - t).abs() < 1e-7);
                            u = Some(t);
                            ok
                        })
                    })
                });
                assert!(on_segment, "{}: a new row is off every same-class segment", case["name"]);
                for &c in &cat {
                    assert!(same.iter().any(|&i| x[[i, c]] == row[c]), "nominal value not held by the class");
                }
            }
        }
    }

    #[test]
    fn bad_input() {
        let x = ndarray::array![[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 0.0], [5.0, 1.0], [6.0, 1.0]];
        let y = ndarray::array![0_i64, 0, 0, 0, 1, 1];
        let fit = |s: SmoteNc| s.k_neighbors(1).fit_resample(x.view(), y.view(), 0);
        assert!(matches!(fit(SmoteNc::new(vec![2])), Err(Error::Parameter { name: "categorical_features", .. })));
        assert!(matches!(fit(SmoteNc::new(vec![1, 1])), Err(Error::Parameter { name: "categorical_features", .. })));
        assert!(matches!(fit(SmoteNc::new(vec![])), Err(Error::Input { .. })));
        assert!(matches!(fit(SmoteNc::new(vec![0, 1])), Err(Error::Input { .. })));
        assert!(matches!(
            SmoteNc::new(vec![1]).k_neighbors(0).check(),
            Err(Error::Parameter { name: "k_neighbors", .. })
        ));
        let err = SmoteNc::new(vec![1]).k_neighbors(2).fit_resample(x.view(), y.view(), 0).unwrap_err();
        assert!(matches!(&err, Error::Degenerate { what } if what.contains("class 1 has 2 samples")), "{err}");
        assert!(fit(SmoteNc::new(vec![1])).is_ok());
    }

    #[test]
    fn registry_entries_build_these_samplers() {
        let kv = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        let find = crate::registry::find;
        let s = find("smote-nc").unwrap().build_with(&kv(&[("categorical_features", "[3, 1]"), ("k_neighbors", "2")]));
        assert_eq!(format!("{:?}", s.unwrap()), format!("{:?}", SmoteNc::new(vec![3, 1]).k_neighbors(2)));
        let s = find("smote-nc").unwrap().build_with(&kv(&[("categorical_features", "0,2")])).unwrap();
        assert_eq!(format!("{s:?}"), format!("{:?}", SmoteNc::new(vec![0, 2])));
        assert!(matches!(
            find("smote-nc").unwrap().build_with(&kv(&[("categorical_features", "[a]")])),
            Err(Error::ParameterText { .. })
        ));
        assert!(matches!(
            find("smote-nc").unwrap().build_with(&kv(&[("categorical_features", "[1,1]")])),
            Err(Error::Parameter { name: "categorical_features", .. })
        ));
        let s = find("smoten").unwrap().build_with(&kv(&[("k_neighbors", "3")])).unwrap();
        assert_eq!(format!("{s:?}"), format!("{:?}", crate::Smoten::new().k_neighbors(3)));
        let s = find("kmeans-smote")
            .unwrap()
            .build_with(&kv(&[("n_clusters", "3"), ("cluster_balance_threshold", "0.2"), ("density_exponent", "1")]))
            .unwrap();
        let want = crate::KMeansSmote::new().n_clusters(3).cluster_balance_threshold(0.2).density_exponent(1.0);
        assert_eq!(format!("{s:?}"), format!("{want:?}"));
        assert!(find("kmeans-smote").unwrap().build_with(&kv(&[("cluster_balance_threshold", "2")])).is_err());
        let s = find("cluster-centroids").unwrap().build_with(&kv(&[("voting", "hard")])).unwrap();
        assert_eq!(format!("{s:?}"), format!("{:?}", crate::ClusterCentroids::new().voting(crate::Voting::Hard)));
        assert!(find("cluster-centroids").unwrap().build_with(&kv(&[("voting", "x")])).is_err());
    }

    #[test]
    fn zero_median_std_votes_with_plain_counts() {
        // class 1: constant continuous column, so Med = 0; its neighbours vote with weight 1
        let x = ndarray::array![
            [0.0, 1.0],
            [1.0, 0.0],
            [2.0, 1.0],
            [3.0, 0.0],
            [4.0, 1.0],
            [7.0, 2.0],
            [7.0, 2.0],
            [7.0, 3.0]
        ];
        let y = ndarray::array![0_i64, 0, 0, 0, 0, 1, 1, 1];
        let out = SmoteNc::new(vec![1]).k_neighbors(2).fit_resample(x.view(), y.view(), 4).unwrap();
        assert_eq!(out.y.len(), 10);
        for r in out.x.rows().into_iter().skip(8) {
            assert_eq!(r[0], 7.0);
            assert!([2.0, 3.0].contains(&r[1]));
        }
    }
}
