//! The sampler registry: every sampler once, with its parameters (defaults, accepted values) and paper.
//!
//! `losskit list`, `losskit resample` and the models' trainer read [`SAMPLERS`] and build a sampler by name with
//! `key=value` parameters (the CLI's `--set`), so a new sampler is one file plus one entry here.

use std::collections::BTreeMap;
use std::fmt;

use crate::{
    Adasyn, BorderlineSmote, EditedNearestNeighbours, Error, NearMiss, RandomOverSampler, RandomUnderSampler, Result,
    Sampler, SamplingKind, SamplingStrategy, Smote, SmoteEnn, SmoteTomek, TomekLinks,
};

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
pub static SAMPLERS: &[SamplerEntry] = &[
    RANDOM_OVER,
    RANDOM_UNDER,
    SMOTE,
    BORDERLINE_SMOTE,
    ADASYN,
    TOMEK_LINKS,
    EDITED_NEAREST_NEIGHBOURS,
    NEAR_MISS,
    SMOTE_TOMEK,
    SMOTE_ENN,
    SMOTE_NC,
    SMOTEN,
    KMEANS_SMOTE,
    CLUSTER_CENTROIDS,
];

/// Finds a registered sampler by name.
///
/// # Errors
/// [`Error::UnknownName`] (kind `sampler`) when no sampler has that name.
pub fn find(name: &str) -> Result<&'static SamplerEntry> {
    SAMPLERS.iter().find(|e| e.name == name).ok_or_else(|| Error::UnknownName { kind: "sampler", name: name.into() })
}

const STRATEGY_RANGE: &str = "auto | minority | majority | not minority | not majority | all | ratio in (0, 1] | \
                              counts such as 0:100,2:50";

const CLEAN_RANGE: &str = "auto | majority | not minority | not majority | all | class list such as [0,2]";

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

    fn count(&self, name: &'static str) -> Result<usize> {
        let v = self.raw(name).trim();
        v.parse().map_err(|_| Error::ParameterText {
            name: name.into(),
            value: v.into(),
            reason: "expected a whole number ≥ 1".into(),
        })
    }

    fn parsed<T: std::str::FromStr<Err = Error>>(&self, name: &'static str) -> Result<T> {
        self.raw(name).parse()
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

const fn param(name: &'static str, default: &'static str, range: &'static str, help: &'static str) -> SamplerParam {
    SamplerParam { name, default, range, help }
}

const OVER_STRATEGY: SamplerParam =
    param("sampling_strategy", "auto", STRATEGY_RANGE, "classes to grow and their target counts; auto = not majority");
const CLEAN_STRATEGY: SamplerParam =
    param("sampling_strategy", "auto", CLEAN_RANGE, "classes to clean; auto = not minority");
const K_NEIGHBORS: SamplerParam =
    param("k_neighbors", "5", "integer ≥ 1", "nearest same-class neighbours to interpolate towards");

const SMOTE_PARAMS: &[SamplerParam] = &[OVER_STRATEGY, K_NEIGHBORS];

const SMOTE: SamplerEntry = SamplerEntry {
    name: "smote",
    kind: SamplingKind::Over,
    summary: "synthetic minority over-sampling by interpolation towards k nearest same-class neighbours",
    paper: "chawla2002smote",
    reference: "Chawla, Bowyer, Hall, Kegelmeyer (2002), SMOTE: Synthetic Minority Over-sampling Technique, JAIR 16",
    params: SMOTE_PARAMS,
    build: |pairs| {
        let v = Values::parse("smote", SMOTE_PARAMS, pairs)?;
        let s = Smote::new().sampling_strategy(v.strategy()?).k_neighbors(v.count("k_neighbors")?);
        s.check()?;
        Ok(Box::new(s))
    },
};

const BORDERLINE_PARAMS: &[SamplerParam] = &[
    OVER_STRATEGY,
    K_NEIGHBORS,
    param("m_neighbors", "10", "integer ≥ 1", "neighbours over all classes deciding danger / noise"),
    param("kind", "borderline-1", "borderline-1 | borderline-2", "2 also interpolates towards other classes"),
];

const BORDERLINE_SMOTE: SamplerEntry = SamplerEntry {
    name: "borderline-smote",
    kind: SamplingKind::Over,
    summary: "SMOTE from the minority samples on the class border (danger set) only",
    paper: "han2005borderline",
    reference: "Han, Wang, Mao (2005), Borderline-SMOTE: A New Over-Sampling Method in Imbalanced Data Sets \
                Learning, ICIC, LNCS 3644",
    params: BORDERLINE_PARAMS,
    build: |pairs| {
        let v = Values::parse("borderline-smote", BORDERLINE_PARAMS, pairs)?;
        let s = BorderlineSmote::new()
            .sampling_strategy(v.strategy()?)
            .k_neighbors(v.count("k_neighbors")?)
            .m_neighbors(v.count("m_neighbors")?)
            .kind(v.parsed("kind")?);
        s.check()?;
        Ok(Box::new(s))
    },
};

const ADASYN_PARAMS: &[SamplerParam] =
    &[OVER_STRATEGY, param("n_neighbors", "5", "integer ≥ 1", "neighbours measuring hardness and interpolated to")];

const ADASYN: SamplerEntry = SamplerEntry {
    name: "adasyn",
    kind: SamplingKind::Over,
    summary: "adaptive synthetic sampling: more new samples near minority samples surrounded by other classes",
    paper: "he2008adasyn",
    reference: "He, Bai, Garcia, Li (2008), ADASYN: Adaptive Synthetic Sampling Approach for Imbalanced Learning, \
                IJCNN",
    params: ADASYN_PARAMS,
    build: |pairs| {
        let v = Values::parse("adasyn", ADASYN_PARAMS, pairs)?;
        let s = Adasyn::new().sampling_strategy(v.strategy()?).n_neighbors(v.count("n_neighbors")?);
        s.check()?;
        Ok(Box::new(s))
    },
};

const TOMEK_PARAMS: &[SamplerParam] = &[CLEAN_STRATEGY];

const TOMEK_LINKS: SamplerEntry = SamplerEntry {
    name: "tomek-links",
    kind: SamplingKind::Clean,
    summary: "removes the targeted members of Tomek links (mutual nearest neighbours of different classes)",
    paper: "tomek1976two",
    reference: "Tomek (1976), Two Modifications of CNN, IEEE Transactions on Systems, Man, and Cybernetics 6(11)",
    params: TOMEK_PARAMS,
    build: |pairs| {
        let v = Values::parse("tomek-links", TOMEK_PARAMS, pairs)?;
        let s = TomekLinks::new().sampling_strategy(v.strategy()?);
        s.check()?;
        Ok(Box::new(s))
    },
};

const ENN_PARAMS: &[SamplerParam] = &[
    CLEAN_STRATEGY,
    param("n_neighbors", "3", "integer ≥ 1", "size of the neighbourhood"),
    param("kind_sel", "all", "all | mode", "keep a sample if all / the most frequent of its neighbours agree"),
];

const EDITED_NEAREST_NEIGHBOURS: SamplerEntry = SamplerEntry {
    name: "edited-nearest-neighbours",
    kind: SamplingKind::Clean,
    summary: "removes the targeted samples whose nearest neighbours disagree with their class",
    paper: "wilson1972asymptotic",
    reference: "Wilson (1972), Asymptotic Properties of Nearest Neighbor Rules Using Edited Data, IEEE Transactions \
                on Systems, Man, and Cybernetics 2(3)",
    params: ENN_PARAMS,
    build: |pairs| {
        let v = Values::parse("edited-nearest-neighbours", ENN_PARAMS, pairs)?;
        let s = EditedNearestNeighbours::new()
            .sampling_strategy(v.strategy()?)
            .n_neighbors(v.count("n_neighbors")?)
            .kind_sel(v.parsed("kind_sel")?);
        s.check()?;
        Ok(Box::new(s))
    },
};

const NEAR_MISS_PARAMS: &[SamplerParam] = &[
    param("sampling_strategy", "auto", STRATEGY_RANGE, "classes to shrink and the counts to keep; auto = not minority"),
    param("version", "1", "1 | 2 | 3", "1: nearest to the minority on average; 2: farthest minority; 3: two steps"),
    param("n_neighbors", "3", "integer ≥ 1", "minority neighbours averaged over"),
    param("n_neighbors_ver3", "3", "integer ≥ 1", "version 3: neighbours of each minority sample kept as candidates"),
];

const NEAR_MISS: SamplerEntry = SamplerEntry {
    name: "near-miss",
    kind: SamplingKind::Under,
    summary: "under-sampling keeping the samples closest to the minority class (versions 1-3)",
    paper: "mani2003knn",
    reference: "Mani, Zhang (2003), kNN Approach to Unbalanced Data Distributions: A Case Study Involving \
                Information Extraction, ICML Workshop on Learning from Imbalanced Datasets",
    params: NEAR_MISS_PARAMS,
    build: |pairs| {
        let v = Values::parse("near-miss", NEAR_MISS_PARAMS, pairs)?;
        let version = v.count("version")?;
        let s = NearMiss::new()
            .sampling_strategy(v.strategy()?)
            .version(u8::try_from(version).unwrap_or(u8::MAX))
            .n_neighbors(v.count("n_neighbors")?)
            .n_neighbors_ver3(v.count("n_neighbors_ver3")?);
        s.check()?;
        Ok(Box::new(s))
    },
};

const SMOTE_TOMEK: SamplerEntry = SamplerEntry {
    name: "smote-tomek",
    kind: SamplingKind::Over,
    summary: "SMOTE, then removal of both members of every Tomek link",
    paper: "batista2004study",
    reference: "Batista, Prati, Monard (2004), A Study of the Behavior of Several Methods for Balancing Machine \
                Learning Training Data, SIGKDD Explorations 6(1)",
    params: SMOTE_PARAMS,
    build: |pairs| {
        let v = Values::parse("smote-tomek", SMOTE_PARAMS, pairs)?;
        let s = SmoteTomek::new().sampling_strategy(v.strategy()?).k_neighbors(v.count("k_neighbors")?);
        s.check()?;
        Ok(Box::new(s))
    },
};

const SMOTE_ENN_PARAMS: &[SamplerParam] = &[
    OVER_STRATEGY,
    K_NEIGHBORS,
    param("n_neighbors", "3", "integer ≥ 1", "ENN step: size of the neighbourhood"),
    param("kind_sel", "all", "all | mode", "ENN step: agreement rule"),
];

const SMOTE_ENN: SamplerEntry = SamplerEntry {
    name: "smote-enn",
    kind: SamplingKind::Over,
    summary: "SMOTE, then edited nearest neighbours on every class",
    paper: "batista2004study",
    reference: "Batista, Prati, Monard (2004), A Study of the Behavior of Several Methods for Balancing Machine \
                Learning Training Data, SIGKDD Explorations 6(1)",
    params: SMOTE_ENN_PARAMS,
    build: |pairs| {
        let v = Values::parse("smote-enn", SMOTE_ENN_PARAMS, pairs)?;
        let mut s = SmoteEnn::new().sampling_strategy(v.strategy()?).k_neighbors(v.count("k_neighbors")?);
        s.enn = s.enn.n_neighbors(v.count("n_neighbors")?).kind_sel(v.parsed("kind_sel")?);
        s.check()?;
        Ok(Box::new(s))
    },
};

const SMOTE_NC_PARAMS: &[SamplerParam] = &[
    param(
        "categorical_features",
        "none",
        "column indices such as [0,3] (required: some, not all)",
        "the nominal columns; the others are continuous",
    ),
    OVER_STRATEGY,
    K_NEIGHBORS,
];

/// A list of column indices: `[0,3]`, `0,3` or `none` (empty).
fn column_list(name: &'static str, text: &str) -> Result<Vec<usize>> {
    let t = text.trim().trim_start_matches('[').trim_end_matches(']').trim();
    if t.is_empty() || t == "none" {
        return Ok(Vec::new());
    }
    t.split(',')
        .map(|p| {
            p.trim().parse().map_err(|_| Error::ParameterText {
                name: name.into(),
                value: text.into(),
                reason: "expected column indices such as [0,3]".into(),
            })
        })
        .collect()
}

const SMOTE_NC: SamplerEntry = SamplerEntry {
    name: "smote-nc",
    kind: SamplingKind::Over,
    summary: "SMOTE for mixed continuous and nominal columns: median-std penalty, majority vote of nominal values",
    paper: "chawla2002smote",
    reference: "Chawla, Bowyer, Hall, Kegelmeyer (2002), SMOTE: Synthetic Minority Over-sampling Technique, JAIR 16, \
                §6.1 (imbalanced-learn's SMOTENC)",
    params: SMOTE_NC_PARAMS,
    build: |pairs| {
        let v = Values::parse("smote-nc", SMOTE_NC_PARAMS, pairs)?;
        let s = crate::SmoteNc::new(column_list("categorical_features", v.raw("categorical_features"))?)
            .sampling_strategy(v.strategy()?)
            .k_neighbors(v.count("k_neighbors")?);
        s.check()?;
        Ok(Box::new(s))
    },
};

const SMOTEN_PARAMS: &[SamplerParam] = &[OVER_STRATEGY, K_NEIGHBORS];

const SMOTEN: SamplerEntry = SamplerEntry {
    name: "smoten",
    kind: SamplingKind::Over,
    summary: "SMOTE for nominal-only data: value difference metric, per-feature mode of the neighbourhood",
    paper: "chawla2002smote",
    reference: "Chawla, Bowyer, Hall, Kegelmeyer (2002), SMOTE: Synthetic Minority Over-sampling Technique, JAIR 16, \
                §6.2; Stanfill, Waltz (1986), Toward memory-based reasoning, CACM 29(12) (imbalanced-learn's SMOTEN)",
    params: SMOTEN_PARAMS,
    build: |pairs| {
        let v = Values::parse("smoten", SMOTEN_PARAMS, pairs)?;
        let s = crate::Smoten::new().sampling_strategy(v.strategy()?).k_neighbors(v.count("k_neighbors")?);
        s.check()?;
        Ok(Box::new(s))
    },
};

const KMEANS_SMOTE_PARAMS: &[SamplerParam] = &[
    OVER_STRATEGY,
    param("k_neighbors", "2", "integer ≥ 1", "nearest same-class neighbours within a cluster"),
    param("n_clusters", "8", "integer ≥ 1", "k-means clusters over the whole data set"),
    param(
        "cluster_balance_threshold",
        "none",
        "none | share in [0, 1]",
        "minimum class share of a cluster; none = auto",
    ),
    param("density_exponent", "none", "none | ≥ 0", "exponent of the mean distance in the sparsity; none = auto"),
];

const KMEANS_SMOTE: SamplerEntry = SamplerEntry {
    name: "kmeans-smote",
    kind: SamplingKind::Over,
    summary: "k-means clustering, then SMOTE inside the clusters where the class is frequent, more in sparse ones",
    paper: "douzas2018improving",
    reference: "Douzas, Bacao, Last (2018), Improving imbalanced learning through a heuristic oversampling method \
                based on k-means and SMOTE, Information Sciences 465 (imbalanced-learn's KMeansSMOTE)",
    params: KMEANS_SMOTE_PARAMS,
    build: |pairs| {
        let v = Values::parse("kmeans-smote", KMEANS_SMOTE_PARAMS, pairs)?;
        let s = crate::KMeansSmote::new()
            .sampling_strategy(v.strategy()?)
            .k_neighbors(v.count("k_neighbors")?)
            .n_clusters(v.count("n_clusters")?)
            .cluster_balance_threshold(v.opt_f64("cluster_balance_threshold")?)
            .density_exponent(v.opt_f64("density_exponent")?);
        s.check()?;
        Ok(Box::new(s))
    },
};

const UNDER_STRATEGY: SamplerParam =
    param("sampling_strategy", "auto", STRATEGY_RANGE, "classes to shrink and the counts to keep; auto = not minority");

const CLUSTER_CENTROIDS_PARAMS: &[SamplerParam] = &[
    UNDER_STRATEGY,
    param("voting", "auto", "auto | soft | hard", "soft = the k-means centroids, hard = the rows nearest to them"),
];

const CLUSTER_CENTROIDS: SamplerEntry = SamplerEntry {
    name: "cluster-centroids",
    kind: SamplingKind::Under,
    summary: "under-sampling by k-means: each targeted class becomes its centroids (or the rows nearest to them)",
    paper: "yen2009cluster",
    reference: "Lemaître, Nogueira, Aridas (2017), Imbalanced-learn, JMLR 18(17) (ClusterCentroids); Yen, Lee \
                (2009), Expert Systems with Applications 36(3)",
    params: CLUSTER_CENTROIDS_PARAMS,
    build: |pairs| {
        let v = Values::parse("cluster-centroids", CLUSTER_CENTROIDS_PARAMS, pairs)?;
        let s = crate::ClusterCentroids::new().sampling_strategy(v.strategy()?).voting(v.parsed("voting")?);
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
                assert!(p.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'), "{}", p.name);
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
