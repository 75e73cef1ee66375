//! imbalanced-learn's `sampling_strategy`: which classes a sampler touches and how many samples each ends with.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use ndarray::ArrayView1;

use crate::{Error, Result};

/// Number of samples per class label, in ascending label order (imbalanced-learn's `Counter(y)` sorted by label).
pub type ClassCounts = BTreeMap<i64, usize>;

/// Counts the samples of each class label in `y` (labels may be any `i64`, negative and non-contiguous included).
///
/// ```
/// let counts = losskit_samplers::class_counts(ndarray::array![2_i64, 0, 2, 7].view());
/// assert_eq!(counts.into_iter().collect::<Vec<_>>(), vec![(0, 1), (2, 2), (7, 1)]);
/// ```
pub fn class_counts(y: ArrayView1<'_, i64>) -> ClassCounts {
    let mut counts = ClassCounts::new();
    for &label in y {
        *counts.entry(label).or_insert(0) += 1;
    }
    counts
}

/// What a sampler does with the classes a strategy targets (imbalanced-learn's `sampling_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SamplingKind {
    /// Adds samples to the targeted classes (`'over-sampling'`); the resolved count is the number to **generate**.
    Over,
    /// Keeps a subset of the targeted classes (`'under-sampling'`); the resolved count is the number to **keep**.
    Under,
    /// Removes samples of the targeted classes by a rule, not to a count (`'clean-sampling'`); the resolved count is
    /// the minority count, which cleaning methods ignore.
    Clean,
}

impl SamplingKind {
    /// `over-sampler`, `under-sampler` or `cleaning method`, for messages.
    pub fn noun(self) -> &'static str {
        match self {
            SamplingKind::Over => "over-sampler",
            SamplingKind::Under => "under-sampler",
            SamplingKind::Clean => "cleaning method",
        }
    }
}

impl fmt::Display for SamplingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SamplingKind::Over => "over",
            SamplingKind::Under => "under",
            SamplingKind::Clean => "clean",
        })
    }
}

/// Which classes a sampler resamples, and to how many samples (imbalanced-learn's `sampling_strategy`).
///
/// With `n_max` / `n_min` the largest / smallest class count and `n_c` the count of class `c`,
/// [`SamplingStrategy::resolve`] turns a strategy into `{class: n}` where `n` is the number of samples to **generate**
/// for an over-sampler and the number to **keep** for an under-sampler:
///
/// ```text
/// strategy        over-sampling (generate)            under-sampling (keep)
/// Auto            = NotMajority                       = NotMinority
/// Minority        smallest class: n_max − n_c         error
/// Majority        error                               largest class: n_min
/// NotMinority     all but the smallest: n_max − n_c   all but the smallest: n_min
/// NotMajority     all but the largest: n_max − n_c    all but the largest: n_min
/// All             every class: n_max − n_c            every class: n_min
/// Ratio(r)        minority: int(r·n_max − n_c), > 0   majority: int(n_min / r) ≤ its count   (binary y, 0 < r ≤ 1)
/// PerClass(m)     m[c] − n_c, m[c] ≥ n_c              m[c], m[c] ≤ n_c
/// Classes(list)   error (cleaning methods only)       error (cleaning methods only)
/// ```
/// `int` truncates toward zero, as Python's `int()`. Ties: the largest (smallest) class is the *first* label, in
/// ascending order, with the largest (smallest) count, as imbalanced-learn's `max(counts, key=counts.get)`.
/// Classes not named by the strategy are left as they are. Cleaning methods ([`SamplingKind::Clean`]) accept the
/// string strategies and `Classes`, each targeted class mapped to `n_min`, and reject `Ratio` and `PerClass`.
///
/// # Text form
/// [`FromStr`] (used by the CLI's `--set sampling_strategy=...`) accepts `auto`, `minority`, `majority`,
/// `not minority` / `not-minority` / `not_minority`, `not majority` (same spellings), `all`, a number (a ratio, e.g.
/// `0.5`), per-class counts `0:100,2:50` (optionally in braces) and a class list `[0,2]`. [`fmt::Display`] writes a
/// form that parses back to the same value.
///
/// # References
/// imbalanced-learn 0.14, `imblearn/utils/_validation.py::check_sampling_strategy` (Lemaître, Nogueira, Aridas
/// (2017), JMLR 18(17)); docs/papers.md key `lemaitre2017imbalanced`.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum SamplingStrategy {
    /// `'auto'` (the default): `NotMajority` for over-samplers, `NotMinority` for under-samplers and cleaners.
    #[default]
    Auto,
    /// `'minority'`: only the smallest class (over-samplers only).
    Minority,
    /// `'majority'`: only the largest class (under-samplers and cleaners only).
    Majority,
    /// `'not minority'`: every class except the smallest.
    NotMinority,
    /// `'not majority'`: every class except the largest.
    NotMajority,
    /// `'all'`: every class.
    All,
    /// A float `r ∈ (0, 1]`, binary targets only: the desired ratio minority / majority after resampling.
    Ratio(f64),
    /// A dict `{class: n}`: the desired number of samples of each named class after resampling (not for cleaners).
    PerClass(BTreeMap<i64, usize>),
    /// A list of classes to clean (cleaning methods only).
    Classes(Vec<i64>),
}

const TEXT_FORMS: &str = "expected auto, minority, majority, not minority, not majority, all, a ratio in (0, 1], \
                          per-class counts such as 0:100,2:50, or a class list such as [0,2]";

fn text_error(value: &str, reason: impl Into<String>) -> Error {
    Error::ParameterText { name: "sampling_strategy".into(), value: value.into(), reason: reason.into() }
}

fn parse_label(whole: &str, part: &str) -> Result<i64> {
    part.trim().parse().map_err(|_| text_error(whole, format!("class label {:?} is not an integer", part.trim())))
}

impl FromStr for SamplingStrategy {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim();
        let words: Vec<&str> = t.split(|c: char| c.is_whitespace() || c == '-' || c == '_').collect();
        let words: Vec<String> = words.iter().filter(|w| !w.is_empty()).map(|w| w.to_ascii_lowercase()).collect();
        match words.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
            ["auto"] => return Ok(SamplingStrategy::Auto),
            ["minority"] => return Ok(SamplingStrategy::Minority),
            ["majority"] => return Ok(SamplingStrategy::Majority),
            ["not", "minority"] => return Ok(SamplingStrategy::NotMinority),
            ["not", "majority"] => return Ok(SamplingStrategy::NotMajority),
            ["all"] => return Ok(SamplingStrategy::All),
            _ => {}
        }
        if let Some(inner) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            let mut classes = Vec::new();
            for part in inner.split(',').filter(|p| !p.trim().is_empty()) {
                classes.push(parse_label(s, part)?);
            }
            if classes.is_empty() {
                return Err(text_error(s, "the class list is empty"));
            }
            return Ok(SamplingStrategy::Classes(classes));
        }
        if t.contains(':') {
            let inner = t.strip_prefix('{').and_then(|r| r.strip_suffix('}')).unwrap_or(t);
            let mut map = BTreeMap::new();
            for part in inner.split(',').filter(|p| !p.trim().is_empty()) {
                let (label, count) = part
                    .split_once(':')
                    .ok_or_else(|| text_error(s, format!("{:?} is not of the form class:count", part.trim())))?;
                let label = parse_label(s, label)?;
                let count: i64 = count.trim().parse().map_err(|_| {
                    text_error(s, format!("the count {:?} of class {label} is not an integer", count.trim()))
                })?;
                // imbalanced-learn: "The number of samples in a class cannot be negative."
                let count = usize::try_from(count).map_err(|_| {
                    text_error(s, format!("the number of samples of class {label} cannot be negative ({count})"))
                })?;
                if map.insert(label, count).is_some() {
                    return Err(text_error(s, format!("class {label} is given twice")));
                }
            }
            return Ok(SamplingStrategy::PerClass(map));
        }
        match t.parse::<f64>() {
            Ok(r) => {
                let strategy = SamplingStrategy::Ratio(r);
                strategy.check()?;
                Ok(strategy)
            }
            Err(_) => Err(text_error(s, TEXT_FORMS)),
        }
    }
}

impl fmt::Display for SamplingStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SamplingStrategy::Auto => f.write_str("auto"),
            SamplingStrategy::Minority => f.write_str("minority"),
            SamplingStrategy::Majority => f.write_str("majority"),
            SamplingStrategy::NotMinority => f.write_str("not minority"),
            SamplingStrategy::NotMajority => f.write_str("not majority"),
            SamplingStrategy::All => f.write_str("all"),
            SamplingStrategy::Ratio(r) => write!(f, "{r:?}"),
            SamplingStrategy::PerClass(m) => {
                let parts: Vec<String> = m.iter().map(|(c, n)| format!("{c}:{n}")).collect();
                write!(f, "{{{}}}", parts.join(","))
            }
            SamplingStrategy::Classes(c) => {
                let parts: Vec<String> = c.iter().map(i64::to_string).collect();
                write!(f, "[{}]", parts.join(","))
            }
        }
    }
}

/// The first label (ascending) whose count `better` prefers strictly to every earlier one; `(0, 0)` when empty.
fn extreme(counts: &ClassCounts, better: fn(usize, usize) -> bool) -> (i64, usize) {
    let mut best: Option<(i64, usize)> = None;
    for (&c, &n) in counts {
        if best.is_none_or(|(_, m)| better(n, m)) {
            best = Some((c, n));
        }
    }
    best.unwrap_or((0, 0))
}

/// The largest class: the first label (ascending) with the largest count (Python's `max(d, key=d.get)`).
fn majority(counts: &ClassCounts) -> (i64, usize) {
    extreme(counts, |n, m| n > m)
}

/// The smallest class: the first label (ascending) with the smallest count (Python's `min(d, key=d.get)`).
fn minority(counts: &ClassCounts) -> (i64, usize) {
    extreme(counts, |n, m| n < m)
}

impl SamplingStrategy {
    /// Checks what can be checked without the data: a ratio must lie in (0, 1].
    ///
    /// # Errors
    /// [`Error::Parameter`] named `sampling_strategy` for a ratio outside (0, 1] or NaN.
    pub fn check(&self) -> Result<()> {
        match *self {
            SamplingStrategy::Ratio(r) if !(r > 0.0 && r <= 1.0) => {
                Err(Error::Parameter { name: "sampling_strategy", value: r, reason: "a ratio must be in (0, 1]" })
            }
            _ => Ok(()),
        }
    }

    /// Resolves the strategy on the class counts of `y`, exactly as imbalanced-learn's `check_sampling_strategy`:
    /// returns `{class: n}` in ascending label order with `n` = samples to **generate** ([`SamplingKind::Over`]),
    /// to **keep** ([`SamplingKind::Under`]), or the minority count ([`SamplingKind::Clean`], where only the keys
    /// matter). Classes absent from the result are not resampled. See the table on [`SamplingStrategy`].
    ///
    /// # Errors
    /// Checked in imbalanced-learn's order:
    /// * [`Error::Degenerate`] when `counts` has fewer than 2 classes;
    /// * [`Error::ParameterText`] (named `sampling_strategy`, with the value) for `minority` with an under-sampler
    ///   or cleaner, `majority` with an over-sampler, a class that is not present, per-class counts below the
    ///   present count (over) or above it (under), per-class counts for a cleaner, a class list for a non-cleaner, a
    ///   ratio on a target that is not binary, a ratio that would remove minority samples while over-sampling
    ///   (`int(r·n_max − n_c) ≤ 0`) or add majority samples while under-sampling (`int(n_min / r) > n_c`), and a
    ///   ratio given to a cleaner;
    /// * [`Error::Parameter`] for a ratio outside (0, 1].
    ///
    /// # Examples
    /// ```
    /// use losskit_samplers::{SamplingKind, SamplingStrategy};
    /// let counts = [(0, 10), (1, 4), (2, 2)].into_iter().collect();
    /// let over = SamplingStrategy::Auto.resolve(&counts, SamplingKind::Over)?;
    /// assert_eq!(over.into_iter().collect::<Vec<_>>(), vec![(1, 6), (2, 8)]);
    /// let under = SamplingStrategy::Auto.resolve(&counts, SamplingKind::Under)?;
    /// assert_eq!(under.into_iter().collect::<Vec<_>>(), vec![(0, 2), (1, 2)]);
    /// assert!(SamplingStrategy::Ratio(0.5).resolve(&counts, SamplingKind::Over).is_err()); // not binary
    /// # Ok::<(), losskit_samplers::Error>(())
    /// ```
    pub fn resolve(&self, counts: &ClassCounts, kind: SamplingKind) -> Result<BTreeMap<i64, usize>> {
        if counts.len() < 2 {
            let labels: Vec<String> = counts.keys().map(i64::to_string).collect();
            return Err(Error::Degenerate {
                what: format!(
                    "y: resampling needs at least 2 classes, got {} (labels: [{}])",
                    counts.len(),
                    labels.join(", ")
                ),
            });
        }
        let (maj_label, n_max) = majority(counts);
        let (min_label, n_min) = minority(counts);
        let value = self.to_string();
        // imbalanced-learn: generate up to n_max (over) or keep n_min (under/clean) for each selected class.
        let select = |keep: &dyn Fn(i64) -> bool| -> BTreeMap<i64, usize> {
            counts
                .iter()
                .filter(|(c, _)| keep(**c))
                .map(|(&c, &n)| (c, if kind == SamplingKind::Over { n_max - n } else { n_min }))
                .collect()
        };
        match self {
            SamplingStrategy::Auto => match kind {
                SamplingKind::Over => Ok(select(&|c| c != maj_label)),
                SamplingKind::Under | SamplingKind::Clean => Ok(select(&|c| c != min_label)),
            },
            SamplingStrategy::Minority => match kind {
                SamplingKind::Over => Ok(select(&|c| c == min_label)),
                _ => Err(text_error(
                    &value,
                    format!("cannot be used with an {} (only over-samplers target the minority class)", kind.noun()),
                )),
            },
            SamplingStrategy::Majority => match kind {
                SamplingKind::Over => Err(text_error(
                    &value,
                    "cannot be used with an over-sampler (only under-samplers and cleaners target the majority class)",
                )),
                _ => Ok(select(&|c| c == maj_label)),
            },
            SamplingStrategy::NotMinority => Ok(select(&|c| c != min_label)),
            SamplingStrategy::NotMajority => Ok(select(&|c| c != maj_label)),
            SamplingStrategy::All => Ok(select(&|_| true)),
            SamplingStrategy::PerClass(wanted) => {
                if let Some(c) = wanted.keys().find(|c| !counts.contains_key(c)) {
                    return Err(text_error(&value, format!("class {c} is not present in y ({})", label_list(counts))));
                }
                let mut out = BTreeMap::new();
                for (&c, &n) in wanted {
                    let have = counts.get(&c).copied().unwrap_or(0); // ok: presence checked above
                    match kind {
                        SamplingKind::Over if n < have => {
                            return Err(text_error(
                                &value,
                                format!(
                                    "class {c} has {have} samples; an over-sampler cannot ask for fewer ({n}): \
                                     give a total at least the present count"
                                ),
                            ));
                        }
                        SamplingKind::Over => {
                            out.insert(c, n - have);
                        }
                        SamplingKind::Under if n > have => {
                            return Err(text_error(
                                &value,
                                format!(
                                    "class {c} has {have} samples; an under-sampler cannot ask for more ({n}): \
                                     give a total at most the present count"
                                ),
                            ));
                        }
                        SamplingKind::Under => {
                            out.insert(c, n);
                        }
                        SamplingKind::Clean => {
                            return Err(text_error(
                                &value,
                                "cleaning methods take a class list such as [0,2], not per-class counts",
                            ));
                        }
                    }
                }
                Ok(out)
            }
            SamplingStrategy::Classes(classes) => {
                if kind != SamplingKind::Clean {
                    return Err(text_error(
                        &value,
                        format!(
                            "a class list is only for cleaning methods; an {} takes per-class counts such as 0:100",
                            kind.noun()
                        ),
                    ));
                }
                if let Some(c) = classes.iter().find(|c| !counts.contains_key(c)) {
                    return Err(text_error(&value, format!("class {c} is not present in y ({})", label_list(counts))));
                }
                Ok(classes.iter().map(|&c| (c, n_min)).collect())
            }
            &SamplingStrategy::Ratio(r) => {
                self.check()?;
                if counts.len() != 2 {
                    return Err(text_error(
                        &value,
                        format!(
                            "a ratio needs a binary target (2 classes), got {} classes; give per-class counts \
                             such as 0:100,2:50 instead",
                            counts.len()
                        ),
                    ));
                }
                match kind {
                    SamplingKind::Over => {
                        let mut out = BTreeMap::new();
                        for (&c, &n) in counts.iter().filter(|(c, _)| **c != maj_label) {
                            // Python's int() truncates toward zero.
                            let generate = (n_max as f64 * r - n as f64).trunc();
                            if generate <= 0.0 {
                                return Err(text_error(
                                    &value,
                                    format!(
                                        "ratio {r} gives class {c} int({r}·{n_max} − {n}) = {generate} new samples, \
                                         which would remove samples from the minority class; increase the ratio"
                                    ),
                                ));
                            }
                            out.insert(c, generate as usize);
                        }
                        Ok(out)
                    }
                    SamplingKind::Under => {
                        let mut out = BTreeMap::new();
                        for (&c, &n) in counts.iter().filter(|(c, _)| **c != min_label) {
                            let keep = (n_min as f64 / r).trunc();
                            if keep > n as f64 {
                                return Err(text_error(
                                    &value,
                                    format!(
                                        "ratio {r} asks to keep int({n_min} / {r}) = {keep} samples of class {c}, \
                                         which has only {n}: it would add samples to the majority class; increase \
                                         the ratio"
                                    ),
                                ));
                            }
                            out.insert(c, keep as usize);
                        }
                        Ok(out)
                    }
                    SamplingKind::Clean => Err(text_error(&value, "cleaning methods do not take a ratio")),
                }
            }
        }
    }
}

fn label_list(counts: &ClassCounts) -> String {
    let labels: Vec<String> = counts.keys().map(i64::to_string).collect();
    format!("classes present: {}", labels.join(", "))
}

/// imbalanced-learn's `check_sampling_strategy(sampling_strategy, y, sampling_type)`: counts the classes of `y` and
/// resolves `strategy` on them (see [`SamplingStrategy::resolve`]).
///
/// # Errors
/// As [`SamplingStrategy::resolve`]; [`Error::Empty`] for an empty `y`.
pub fn check_sampling_strategy(
    strategy: &SamplingStrategy,
    y: ArrayView1<'_, i64>,
    kind: SamplingKind,
) -> Result<BTreeMap<i64, usize>> {
    losskit_tensor::check::non_empty("y", y.len())?;
    strategy.resolve(&class_counts(y), kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pairs: &[(i64, usize)]) -> ClassCounts {
        pairs.iter().copied().collect()
    }

    fn pairs(m: BTreeMap<i64, usize>) -> Vec<(i64, usize)> {
        m.into_iter().collect()
    }

    #[test]
    fn spec_oracle_three_classes() {
        // spec §8.2: counts {a:10, b:4, c:2}: 'auto' over → {b:6, c:8}; under → keep {a:2, b:2}; 0.5 is an error.
        let c = counts(&[(0, 10), (1, 4), (2, 2)]);
        assert_eq!(pairs(SamplingStrategy::Auto.resolve(&c, SamplingKind::Over).unwrap()), vec![(1, 6), (2, 8)]);
        assert_eq!(pairs(SamplingStrategy::Auto.resolve(&c, SamplingKind::Under).unwrap()), vec![(0, 2), (1, 2)]);
        assert!(matches!(
            SamplingStrategy::Ratio(0.5).resolve(&c, SamplingKind::Over),
            Err(Error::ParameterText { ref reason, .. }) if reason.contains("binary")
        ));
    }

    #[test]
    fn ties_pick_the_first_label() {
        let c = counts(&[(0, 8), (1, 8), (2, 3), (3, 3)]);
        // majority = 0 (first of the tied 8s), minority = 2 (first of the tied 3s)
        assert_eq!(
            pairs(SamplingStrategy::NotMajority.resolve(&c, SamplingKind::Over).unwrap()),
            vec![(1, 0), (2, 5), (3, 5)]
        );
        assert_eq!(pairs(SamplingStrategy::Minority.resolve(&c, SamplingKind::Over).unwrap()), vec![(2, 5)]);
        assert_eq!(pairs(SamplingStrategy::Majority.resolve(&c, SamplingKind::Under).unwrap()), vec![(0, 3)]);
        assert_eq!(
            pairs(SamplingStrategy::NotMinority.resolve(&c, SamplingKind::Under).unwrap()),
            vec![(0, 3), (1, 3), (3, 3)]
        );
    }

    #[test]
    fn ratio_truncates_like_python_int() {
        let c = counts(&[(0, 7), (1, 100)]);
        // int(0.3333·100 − 7) = int(26.33) = 26
        assert_eq!(pairs(SamplingStrategy::Ratio(0.3333).resolve(&c, SamplingKind::Over).unwrap()), vec![(0, 26)]);
        // int(7 / 0.3333) = int(21.0021) = 21
        assert_eq!(pairs(SamplingStrategy::Ratio(0.3333).resolve(&c, SamplingKind::Under).unwrap()), vec![(1, 21)]);
        // int(0.05·100 − 7) = -2 ≤ 0
        assert!(SamplingStrategy::Ratio(0.05).resolve(&c, SamplingKind::Over).is_err());
    }

    #[test]
    fn single_class_is_degenerate() {
        let c = counts(&[(4, 6)]);
        assert!(matches!(SamplingStrategy::Auto.resolve(&c, SamplingKind::Over), Err(Error::Degenerate { .. })));
        assert!(matches!(
            SamplingStrategy::Auto.resolve(&ClassCounts::new(), SamplingKind::Under),
            Err(Error::Degenerate { .. })
        ));
    }

    #[test]
    fn parse_every_text_form() {
        let ok = [
            ("auto", SamplingStrategy::Auto),
            ("Minority", SamplingStrategy::Minority),
            ("majority", SamplingStrategy::Majority),
            ("not minority", SamplingStrategy::NotMinority),
            ("not-minority", SamplingStrategy::NotMinority),
            ("not_majority", SamplingStrategy::NotMajority),
            (" all ", SamplingStrategy::All),
            ("0.5", SamplingStrategy::Ratio(0.5)),
            ("1", SamplingStrategy::Ratio(1.0)),
            ("0:100,2:50", SamplingStrategy::PerClass([(0, 100), (2, 50)].into_iter().collect())),
            ("{-1: 3, 7:0}", SamplingStrategy::PerClass([(-1, 3), (7, 0)].into_iter().collect())),
            ("[0, 2]", SamplingStrategy::Classes(vec![0, 2])),
        ];
        for (text, want) in ok {
            let got: SamplingStrategy = text.parse().unwrap();
            assert_eq!(got, want, "{text}");
            let round: SamplingStrategy = got.to_string().parse().unwrap();
            assert_eq!(round, want, "round trip of {text}");
        }
        for bad in ["foo", "", "1.5", "0", "-0.2", "nan", "0:1,0:2", "0:-1", "a:3", "0:x", "[]", "[a]", "0:1,2"] {
            let err = bad.parse::<SamplingStrategy>().unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains("sampling_strategy"), "{bad}: {msg}");
        }
        assert!(matches!("1.5".parse::<SamplingStrategy>(), Err(Error::Parameter { name: "sampling_strategy", .. })));
    }

    #[test]
    fn kinds_reject_the_strategies_they_do_not_take() {
        let c = counts(&[(0, 5), (1, 9)]);
        let per = SamplingStrategy::PerClass([(0, 5)].into_iter().collect());
        assert!(per.resolve(&c, SamplingKind::Clean).is_err());
        assert!(SamplingStrategy::Classes(vec![0]).resolve(&c, SamplingKind::Over).is_err());
        assert_eq!(
            pairs(SamplingStrategy::Classes(vec![1, 1]).resolve(&c, SamplingKind::Clean).unwrap()),
            vec![(1, 5)]
        );
        assert!(SamplingStrategy::Ratio(0.5).resolve(&c, SamplingKind::Clean).is_err());
        assert!(SamplingStrategy::Minority.resolve(&c, SamplingKind::Clean).is_err());
        assert!(SamplingStrategy::Majority.resolve(&c, SamplingKind::Over).is_err());
    }

    #[test]
    fn messages_name_the_value() {
        let c = counts(&[(0, 5), (1, 9)]);
        let err =
            SamplingStrategy::PerClass([(0, 2)].into_iter().collect()).resolve(&c, SamplingKind::Over).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("sampling_strategy") && msg.contains("{0:2}") && msg.contains("has 5"), "{msg}");
        let err =
            SamplingStrategy::PerClass([(3, 2)].into_iter().collect()).resolve(&c, SamplingKind::Under).unwrap_err();
        assert!(err.to_string().contains("class 3 is not present"), "{err}");
    }
}
