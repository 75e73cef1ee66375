//! The sampler registry: every sampler once, with its parameters (defaults, accepted values) and paper.
//!
//! `losskit list`, `losskit resample` and the models' trainer read [`SAMPLERS`] and build a sampler by name with
//! `key=value` parameters (the CLI's `--set`), so a new sampler is one file plus one entry here.

use std::collections::BTreeMap;
use std::fmt;

use crate::{Error, RandomOverSampler, RandomUnderSampler, Result, Sampler, SamplingKind, SamplingStrategy};

/// One parameter of a registered sampler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SamplerParam {
    /// snake_case name, imbalanced-learn's keyword (`sampling_strategy`, `shrinkage`, `replacement`).
    pub name: &'static str,
    /// Default as text (`auto`, `none`, `false`, ...), parsed like a given value.
    pub default: &'static str,
    /// The accepted values, in words (for `losskit list`).
    pub range: &'static str,
    /// One line of help.
    pub help: &'static str,
}

/// The constructor of a registered sampler: `key=value` pairs in, a boxed sampler out.
pub type BuildSampler = fn(&[(String, String)]) -> Result<Box<dyn Sampler>>;

/// One registered sampler.
#[derive(Clone, Copy)]
pub struct SamplerEntry {
    /// kebab-case name (`random-over`).
    pub name: &'static str,
    /// Over-sampler, under-sampler or cleaner.
    pub kind: SamplingKind,
    /// One-line summary.
    pub summary: &'static str,
    /// Key of the paper in `docs/papers.md`.
    pub paper: &'static str,
    /// Citation: authors, year, title, venue.
    pub reference: &'static str,
    /// Parameters, in `losskit list` order.
    pub params: &'static [SamplerParam],
    /// Builds the sampler from `key=value` pairs (unnamed parameters take their defaults).
    ///
    /// Errors: [`Error::UnknownParameter`] for a name the sampler does not have, [`Error::ParameterText`] for a value
    /// that does not parse, [`Error::Parameter`] for a number out of range.
    pub build: BuildSampler,
}

impl fmt::Debug for SamplerEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SamplerEntry").field("name", &self.name).field("kind", &self.kind).finish_non_exhaustive()
    }
}

impl SamplerEntry {
    /// Builds the sampler from `key=value` pairs.
    ///
    /// # Errors
    /// As the [`SamplerEntry::build`] field.
    pub fn build_with(&self, pairs: &[(String, String)]) -> Result<Box<dyn Sampler>> {
        (self.build)(pairs)
    }

    /// Builds the sampler with every parameter at its default.
    ///
    /// # Errors
    /// Only if a default is invalid (a bug the registry tests catch).
    pub fn build_default(&self) -> Result<Box<dyn Sampler>> {
        (self.build)(&[])
    }
}

/// Every registered sampler, in `losskit list` order.
pub static SAMPLERS: &[SamplerEntry] = &[RANDOM_OVER, RANDOM_UNDER];

/// Finds a registered sampler by name.
///
/// # Errors
/// [`Error::UnknownName`] (kind `sampler`) when no sampler has that name.
pub fn find(name: &str) -> Result<&'static SamplerEntry> {
    SAMPLERS.iter().find(|e| e.name == name).ok_or_else(|| Error::UnknownName { kind: "sampler", name: name.into() })
}

const STRATEGY_RANGE: &str = "auto | minority | majority | not minority | not majority | all | ratio in (0, 1] | \
                              counts such as 0:100,2:50";

/// `key=value` pairs checked against a sampler's parameters, defaults filled in on read.
struct Values<'a> {
    specs: &'static [SamplerParam],
    given: BTreeMap<&'static str, &'a str>,
}

impl<'a> Values<'a> {
    fn parse(method: &'static str, specs: &'static [SamplerParam], pairs: &'a [(String, String)]) -> Result<Self> {
        let mut given = BTreeMap::new();
        for (k, v) in pairs {
            let Some(spec) = specs.iter().find(|s| s.name == k.as_str()) else {
                let known: Vec<&str> = specs.iter().map(|s| s.name).collect();
                return Err(Error::UnknownParameter {
                    name: k.clone(),
                    method: method.into(),
                    known: known.join(", "),
                });
            };
            given.insert(spec.name, v.as_str()); // a repeated key: the last value wins, as for losses
        }
        Ok(Values { specs, given })
    }

    fn raw(&self, name: &'static str) -> &'a str {
        let default = self.specs.iter().find(|s| s.name == name).map_or("", |s| s.default);
        self.given.get(name).copied().unwrap_or(default)
    }

    fn strategy(&self) -> Result<SamplingStrategy> {
        self.raw("sampling_strategy").parse()
    }

    fn opt_f64(&self, name: &'static str) -> Result<Option<f64>> {
        match self.raw(name).trim() {
            "none" => Ok(None),
            v => v.parse().map(Some).map_err(|_| Error::ParameterText {
                name: name.into(),
                value: v.into(),
                reason: "expected a number or none".into(),
            }),
        }
    }

    fn bool(&self, name: &'static str) -> Result<bool> {
        match self.raw(name).trim() {
            "true" => Ok(true),
            "false" => Ok(false),
            v => Err(Error::ParameterText {
                name: name.into(),
                value: v.into(),
                reason: "expected true or false".into(),
            }),
        }
    }
}

const RANDOM_OVER_PARAMS: &[SamplerParam] = &[
    SamplerParam {
        name: "sampling_strategy",
        default: "auto",
        range: STRATEGY_RANGE,
        help: "classes to grow and their target counts; auto = not majority",
    },
    SamplerParam {
        name: "shrinkage",
        default: "none",
        range: "none | ≥ 0",
        help: "smoothed bootstrap (ROSE): Gaussian noise of h·κ·std per class; none = plain copies",
    },
];

const RANDOM_OVER: SamplerEntry = SamplerEntry {
    name: "random-over",
    kind: SamplingKind::Over,
    summary: "random over-sampling with replacement, optionally smoothed (imbalanced-learn's RandomOverSampler)",
    paper: "lemaitre2017imbalanced",
    reference: "Lemaître, Nogueira, Aridas (2017), Imbalanced-learn, JMLR 18(17); smoothed bootstrap: Menardi, \
                Torelli (2014), Data Mining and Knowledge Discovery 28(1)",
    params: RANDOM_OVER_PARAMS,
    build: |pairs| {
        let v = Values::parse("random-over", RANDOM_OVER_PARAMS, pairs)?;
        let s = RandomOverSampler::new().sampling_strategy(v.strategy()?).shrinkage(v.opt_f64("shrinkage")?);
        s.check()?;
        Ok(Box::new(s))
    },
};

const RANDOM_UNDER_PARAMS: &[SamplerParam] = &[
    SamplerParam {
        name: "sampling_strategy",
        default: "auto",
        range: STRATEGY_RANGE,
        help: "classes to shrink and the counts to keep; auto = not minority",
    },
    SamplerParam {
        name: "replacement",
        default: "false",
        range: "true | false",
        help: "draw the kept samples with replacement",
    },
];

const RANDOM_UNDER: SamplerEntry = SamplerEntry {
    name: "random-under",
    kind: SamplingKind::Under,
    summary: "random under-sampling of the targeted classes (imbalanced-learn's RandomUnderSampler)",
    paper: "lemaitre2017imbalanced",
    reference: "Lemaître, Nogueira, Aridas (2017), Imbalanced-learn, JMLR 18(17)",
    params: RANDOM_UNDER_PARAMS,
    build: |pairs| {
        let v = Values::parse("random-under", RANDOM_UNDER_PARAMS, pairs)?;
        let s = RandomUnderSampler::new().sampling_strategy(v.strategy()?).replacement(v.bool("replacement")?);
        s.check()?;
        Ok(Box::new(s))
    },
};

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn names_are_kebab_case_unique_and_found() {
        let mut names: Vec<&str> = SAMPLERS.iter().map(|e| e.name).collect();
        for n in &names {
            assert!(n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'), "{n}");
            assert_eq!(find(n).unwrap().name, *n);
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SAMPLERS.len());
        assert!(matches!(find("smote-nope"), Err(Error::UnknownName { kind: "sampler", .. })));
    }

    #[test]
    fn every_default_builds_and_params_are_snake_case() {
        for e in SAMPLERS {
            assert!(e.build_default().is_ok(), "{}", e.name);
            for p in e.params {
                assert!(p.name.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{}", p.name);
                // each default given explicitly builds too
                assert!(e.build_with(&kv(&[(p.name, p.default)])).is_ok(), "{} {}", e.name, p.name);
            }
        }
    }

    #[test]
    fn built_samplers_carry_the_parameters() {
        let s = find("random-over")
            .unwrap()
            .build_with(&kv(&[("sampling_strategy", "0:5"), ("shrinkage", "0.5")]))
            .unwrap();
        let want = RandomOverSampler::new()
            .sampling_strategy(SamplingStrategy::PerClass([(0, 5)].into_iter().collect()))
            .shrinkage(0.5);
        assert_eq!(format!("{s:?}"), format!("{want:?}"));
        let s = find("random-under")
            .unwrap()
            .build_with(&kv(&[("replacement", "true"), ("sampling_strategy", "all")]))
            .unwrap();
        let want = RandomUnderSampler::new().sampling_strategy(SamplingStrategy::All).replacement(true);
        assert_eq!(format!("{s:?}"), format!("{want:?}"));
    }

    #[test]
    fn bad_parameters_give_typed_errors() {
        let over = find("random-over").unwrap();
        let under = find("random-under").unwrap();
        let err = over.build_with(&kv(&[("k_neighbors", "5")])).unwrap_err();
        assert!(
            matches!(&err, Error::UnknownParameter { name, method, known }
            if name == "k_neighbors" && method == "random-over" && known == "sampling_strategy, shrinkage"),
            "{err}"
        );
        assert!(matches!(over.build_with(&kv(&[("shrinkage", "abc")])), Err(Error::ParameterText { .. })));
        assert!(matches!(
            over.build_with(&kv(&[("shrinkage", "-1")])),
            Err(Error::Parameter { name: "shrinkage", .. })
        ));
        assert!(matches!(over.build_with(&kv(&[("sampling_strategy", "lots")])), Err(Error::ParameterText { .. })));
        assert!(matches!(under.build_with(&kv(&[("sampling_strategy", "2.0")])), Err(Error::Parameter { .. })));
        assert!(matches!(under.build_with(&kv(&[("replacement", "yes")])), Err(Error::ParameterText { .. })));
    }
}
