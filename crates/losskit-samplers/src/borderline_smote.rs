//! Borderline-SMOTE (Han, Wang, Mao 2005), as imbalanced-learn's `BorderlineSMOTE`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use ndarray::{ArrayView1, ArrayView2};

use crate::draw::{Draws, RngDraws, check_xy, class_members, counts_of, gather};
use crate::knn::{KnnIndex, Queries};
use crate::smote::{Growing, check_neighbors, too_few};
use crate::{Error, Resampled, Result, Sampler, SamplingKind, SamplingStrategy};

/// Which Borderline-SMOTE variant (imbalanced-learn's `kind`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BorderlineKind {
    /// `borderline-1`: interpolate towards same-class neighbours only (the default).
    #[default]
    One,
    /// `borderline-2`: interpolate towards neighbours of any class; towards another class the step is shortened by a
    /// factor `U[0, 0.5)`, so the new point stays closer to the danger sample.
    Two,
}

impl FromStr for BorderlineKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "borderline-1" | "1" => Ok(BorderlineKind::One),
            "borderline-2" | "2" => Ok(BorderlineKind::Two),
            other => Err(Error::ParameterText {
                name: "kind".into(),
                value: other.into(),
                reason: "expected borderline-1 or borderline-2".into(),
            }),
        }
    }
}

impl fmt::Display for BorderlineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BorderlineKind::One => "borderline-1",
            BorderlineKind::Two => "borderline-2",
        })
    }
}

/// Borderline-SMOTE: SMOTE from the minority samples on the class border only (the *danger* set).
///
/// For each targeted class `c` with `n_c > 0` samples to generate (ascending label order):
///
/// ```text
/// M(i)    = the m nearest other samples of i over all of x (m = m_neighbors), for each sample i of class c
/// m'(i)   = #{ j ∈ M(i) : y[j] ≠ c }
/// danger  ⇔ m/2 ≤ m'(i) < m          noise ⇔ m'(i) = m          (the rest is safe)
/// ```
/// If no sample of `c` is in danger, nothing is generated for `c` (its count stays below the target, as in
/// imbalanced-learn). Otherwise, with `D` the danger samples and `k` = `k_neighbors`:
///
/// * `borderline-1`: `N(i)` = the k nearest other samples **of class c**;
/// * `borderline-2`: `N(i)` = the k nearest other samples **of any class**;
///
/// then `t ~ U{0, …, |D|·k − 1}` (n_c draws), `u ~ U[0, 1)` (n_c draws), `row = t div k`, `col = t mod k`,
/// `δ = x_{N(row)[col]} − x_row`; for borderline-2, each `δ` whose neighbour is of another class is multiplied by
/// `f ~ U[0, 0.5)` (drawn in output order after all `u`); `x_new = x_row + u·δ`.
///
/// # Output
/// The input rows, then the new rows class by class (ascending label order); no `sample_indices`.
///
/// # Parameters
/// * `sampling_strategy`: default [`SamplingStrategy::Auto`] (= `not majority`).
/// * `k_neighbors`: `k ≥ 1`, default 5.
/// * `m_neighbors`: `m ≥ 1`, default 10 (the border test).
/// * `kind`: [`BorderlineKind::One`] (default) or [`BorderlineKind::Two`].
///
/// # Randomness
/// As [`Smote`](crate::Smote): one seeded stream consumed serially, points computed in parallel.
///
/// # Errors
/// [`Error::Parameter`] for `k_neighbors = 0` or `m_neighbors = 0`; [`Error::Degenerate`] when there are at most
/// `m_neighbors` samples, or (borderline-1) a class with danger samples has at most `k_neighbors` samples
/// (borderline-2: at most `k_neighbors` samples in all); input and strategy errors as [`Smote`](crate::Smote).
///
/// # Examples
/// ```
/// use losskit_samplers::{BorderlineSmote, Sampler};
/// let x = ndarray::array![
///     [0.0], [0.2], [0.4], [0.6], [0.8], [1.0], [1.2], [1.4], [1.6], [1.8], // class 0
///     [0.55], [0.75], [5.0], [5.2], [5.4], [5.6], [5.8],                    // class 1
/// ];
/// let y = ndarray::array![0_i64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1];
/// let s = BorderlineSmote::new().k_neighbors(2).m_neighbors(4);
/// // rows 10 and 11 have 3 of their 4 nearest neighbours in class 0: in danger; rows 12..17 are safe
/// assert_eq!(s.in_danger_indices(x.view(), y.view())?.get(&1), Some(&vec![10, 11]));
/// let out = s.fit_resample(x.view(), y.view(), 3)?;
/// assert_eq!(out.y.len(), 20);
/// # Ok::<(), losskit_samplers::Error>(())
/// ```
///
/// # References
/// Han, Wang, Mao (2005), *Borderline-SMOTE: A New Over-Sampling Method in Imbalanced Data Sets Learning*, ICIC,
/// LNCS 3644, doi:10.1007/11538059_91 (docs/papers.md `han2005borderline`); imbalanced-learn 0.14
/// `BorderlineSMOTE`.
#[derive(Clone, Debug, PartialEq)]
pub struct BorderlineSmote {
    /// Which classes grow, and to how many samples. Default `Auto`.
    pub sampling_strategy: SamplingStrategy,
    /// Neighbours to interpolate towards. Default 5.
    pub k_neighbors: usize,
    /// Neighbours of the danger / noise test. Default 10.
    pub m_neighbors: usize,
    /// The variant. Default borderline-1.
    pub kind: BorderlineKind,
}

impl Default for BorderlineSmote {
    fn default() -> Self {
        BorderlineSmote {
            sampling_strategy: SamplingStrategy::Auto,
            k_neighbors: 5,
            m_neighbors: 10,
            kind: BorderlineKind::One,
        }
    }
}

/// The border status of each sample of one class: counts of other-class neighbours among its m nearest.
struct Border {
    rows: Vec<usize>,
    others: Vec<usize>,
}

impl BorderlineSmote {
    /// The default sampler: `auto`, `k_neighbors = 5`, `m_neighbors = 10`, `borderline-1` (imbalanced-learn's).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the sampling strategy (default `auto`).
    pub fn sampling_strategy(mut self, sampling_strategy: SamplingStrategy) -> Self {
        self.sampling_strategy = sampling_strategy;
        self
    }

    /// Sets `k ≥ 1` (default 5).
    pub fn k_neighbors(mut self, k_neighbors: usize) -> Self {
        self.k_neighbors = k_neighbors;
        self
    }

    /// Sets `m ≥ 1` (default 10).
    pub fn m_neighbors(mut self, m_neighbors: usize) -> Self {
        self.m_neighbors = m_neighbors;
        self
    }

    /// Sets the variant (default borderline-1).
    pub fn kind(mut self, kind: BorderlineKind) -> Self {
        self.kind = kind;
        self
    }

    /// Checks the parameters.
    ///
    /// # Errors
    /// [`Error::Parameter`] named `k_neighbors` / `m_neighbors` when 0, or `sampling_strategy` for a bad ratio.
    pub fn check(&self) -> Result<()> {
        check_neighbors("k_neighbors", self.k_neighbors)?;
        check_neighbors("m_neighbors", self.m_neighbors)?;
        self.sampling_strategy.check()
    }

    /// The danger samples (input rows) of each targeted class that has any (imbalanced-learn's `in_danger_indices`).
    ///
    /// # Errors
    /// As [`Sampler::fit_resample`].
    pub fn in_danger_indices(
        &self,
        x: ArrayView2<'_, f64>,
        y: ArrayView1<'_, i64>,
    ) -> Result<BTreeMap<i64, Vec<usize>>> {
        let m = self.m_neighbors;
        let borders = self.borders(x, y)?;
        Ok(borders
            .into_iter()
            .map(|(c, b)| (c, b.select(|o| 2 * o >= m && o < m)))
            .filter(|(_, v)| !v.is_empty())
            .collect())
    }

    /// The noise samples (all m neighbours of another class; input rows) of each class with samples to generate.
    ///
    /// # Errors
    /// As [`Sampler::fit_resample`].
    pub fn noise_indices(&self, x: ArrayView2<'_, f64>, y: ArrayView1<'_, i64>) -> Result<BTreeMap<i64, Vec<usize>>> {
        let m = self.m_neighbors;
        Ok(self.borders(x, y)?.into_iter().map(|(c, b)| (c, b.select(|o| o == m))).collect())
    }

    fn borders(&self, x: ArrayView2<'_, f64>, y: ArrayView1<'_, i64>) -> Result<BTreeMap<i64, Border>> {
        self.check()?;
        check_xy(x, y)?;
        let members = class_members(y);
        let targets = self.sampling_strategy.resolve(&counts_of(&members), SamplingKind::Over)?;
        let x = x.as_standard_layout();
        let index = KnnIndex::new(x.view(), None);
        let mut out = BTreeMap::new();
        for (&class, &n_new) in &targets {
            if n_new > 0 {
                let rows = members.get(&class).cloned().unwrap_or_default();
                out.insert(class, self.border(&index, y, class, rows)?);
            }
        }
        Ok(out)
    }

    fn border(&self, index: &KnnIndex<'_>, y: ArrayView1<'_, i64>, class: i64, rows: Vec<usize>) -> Result<Border> {
        let m = self.m_neighbors;
        let n = y.len();
        if n < m + 1 {
            return Err(too_few("borderline-smote", "m_neighbors", "the data have", n, m, m + 1));
        }
        let nn = index.search(&Queries::Rows { rows: &rows, exclude_self: true }, m)?;
        let others = nn.indices.rows().into_iter().map(|r| r.iter().filter(|&&j| y[j] != class).count()).collect();
        Ok(Border { rows, others })
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
        let x = x.as_standard_layout();
        let (k, m) = (self.k_neighbors, self.m_neighbors);
        let index = KnnIndex::new(x.view(), None);
        let mut out = Growing::new(x.view(), y, targets.values().try_fold(0usize, |a, &b| a.checked_add(b)))?;
        for (&class, &n_new) in &targets {
            if n_new == 0 {
                continue;
            }
            let rows = members.get(&class).cloned().unwrap_or_default();
            let border = self.border(&index, y, class, rows)?;
            let danger = border.select(|o| 2 * o >= m && o < m);
            if danger.is_empty() {
                continue;
            }
            // Neighbours of each danger sample, as input rows.
            let nbrs: Vec<Vec<usize>> = match self.kind {
                BorderlineKind::One => {
                    let rows = &border.rows;
                    if rows.len() < k + 1 {
                        return Err(too_few(
                            "borderline-smote",
                            "k_neighbors",
                            &format!("class {class} has"),
                            rows.len(),
                            k,
                            k + 1,
                        ));
                    }
                    let xc = gather(x.view(), rows)?;
                    let pos: Vec<usize> = (0..rows.len()).filter(|&p| danger.binary_search(&rows[p]).is_ok()).collect();
                    let nn =
                        KnnIndex::new(xc.view(), None).search(&Queries::Rows { rows: &pos, exclude_self: true }, k)?;
                    nn.indices.rows().into_iter().map(|r| r.iter().map(|&p| rows[p]).collect()).collect()
                }
                BorderlineKind::Two => {
                    if y.len() < k + 1 {
                        return Err(too_few("borderline-smote", "k_neighbors", "the data have", y.len(), k, k + 1));
                    }
                    let nn = index.search(&Queries::Rows { rows: &danger, exclude_self: true }, k)?;
                    nn.indices.rows().into_iter().map(|r| r.to_vec()).collect()
                }
            };
            let t = draws.integers(danger.len() * k, n_new);
            let steps = draws.uniform(0.0, 1.0, n_new);
            let base: Vec<usize> = t.iter().map(|&t| danger[t / k]).collect();
            let nbr: Vec<usize> = t.iter().map(|&t| nbrs[t / k][t % k]).collect();
            let factor = match self.kind {
                BorderlineKind::One => None,
                BorderlineKind::Two => {
                    let other: Vec<bool> = nbr.iter().map(|&j| y[j] != class).collect();
                    let mut f = draws.uniform(0.0, 0.5, other.iter().filter(|&&o| o).count()).into_iter();
                    Some(other.iter().map(|&o| if o { f.next().unwrap_or(1.0) } else { 1.0 }).collect::<Vec<f64>>())
                }
            };
            out.push_synthetic(class, &base, &nbr, &steps, factor.as_deref());
        }
        out.finish()
    }
}

impl Border {
    /// The input rows whose other-class count satisfies `keep`, ascending.
    fn select(&self, keep: impl Fn(usize) -> bool) -> Vec<usize> {
        self.rows.iter().zip(&self.others).filter(|(_, o)| keep(**o)).map(|(r, _)| *r).collect()
    }
}

impl Sampler for BorderlineSmote {
    fn fit_resample(&self, x: ArrayView2<'_, f64>, y: ArrayView1<'_, i64>, seed: u64) -> Result<Resampled> {
        self.resample_with(x, y, &mut RngDraws::new(seed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::draw::Stub;
    use crate::testutil::{fixture, floats_matrix, ints};

    fn sets(v: &serde_json::Value) -> BTreeMap<i64, Vec<usize>> {
        v.as_object()
            .unwrap()
            .iter()
            .map(|(c, rows)| (c.parse().unwrap(), ints(rows).into_iter().map(|i| i as usize).collect()))
            .collect()
    }

    #[test]
    fn matches_imbalanced_learn_with_stub_draws() {
        let root = fixture("smote.json");
        let cases = root["borderline"].as_array().unwrap();
        assert_eq!(cases.len(), 7);
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let p = &case["params"];
            let x = floats_matrix(&case["x"]);
            let y = ndarray::Array1::from(ints(&case["y"]));
            let s = BorderlineSmote::new()
                .sampling_strategy(p["sampling_strategy"].as_str().unwrap().parse().unwrap())
                .kind(p["kind"].as_str().unwrap().parse().unwrap())
                .k_neighbors(p["k_neighbors"].as_u64().unwrap() as usize)
                .m_neighbors(p["m_neighbors"].as_u64().unwrap() as usize);
            assert_eq!(s.in_danger_indices(x.view(), y.view()).unwrap(), sets(&case["in_danger_indices"]), "{name}");
            assert_eq!(s.noise_indices(x.view(), y.view()).unwrap(), sets(&case["noise_indices"]), "{name}");
            let got = s.resample_with(x.view(), y.view(), &mut Stub::default()).unwrap();
            assert_eq!(got.y.to_vec(), ints(&case["y_res"]), "{name}: y");
            assert_eq!(got.x, floats_matrix(&case["x_res"]), "{name}: x");
        }
    }

    #[test]
    fn kind_parses_and_rejects() {
        assert_eq!("borderline-2".parse::<BorderlineKind>().unwrap(), BorderlineKind::Two);
        assert_eq!(BorderlineKind::One.to_string().parse::<BorderlineKind>().unwrap(), BorderlineKind::One);
        assert!(matches!("borderline-3".parse::<BorderlineKind>(), Err(Error::ParameterText { .. })));
        assert!(matches!(
            BorderlineSmote::new().m_neighbors(0).check(),
            Err(Error::Parameter { name: "m_neighbors", .. })
        ));
    }
}
