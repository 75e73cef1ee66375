//! The sampler registry: every sampler-side method once, with its kind, parameters (defaults, accepted values) and
//! paper.
//!
//! `losskit list`, `losskit resample` and the models' arena read [`SAMPLERS`] and build a sampler by name with
//! `key=value` parameters (the CLI's `--set`), so a new sampler is one file plus one entry here.
//!
//! Besides the resamplers (over-samplers, under-samplers, cleaning methods: [`SamplerKind::Resampler`]), the
//! registry lists the library's other sampler-side tools so that `losskit list` shows them: batch samplers,
//! loss-based reweighting, clustering likelihoods and SBCL subclasses ([`SamplerKind`]). Their `build` checks the
//! parameters and then refuses with [`Error::Input`] ("… is a batch sampler, not a resampler …"): they do not map a
//! data set to a data set, and are used from the library (the type named in their summary).

use std::collections::BTreeMap;
use std::fmt;

use crate::{
    Adasyn, BorderlineSmote, ClassBalanced, Dbscan, DualSampler, EditedNearestNeighbours, Error, KMeans, LossReweight,
    MPerClass, NearMiss, RandomOverSampler, RandomUnderSampler, Rcal, Result, Sampler, SamplingKind, SamplingStrategy,
    Smote, SmoteEnn, SmoteTomek, TomekLinks,
};

/// What a registered entry is: a resampler (`losskit resample` runs it) or another sampler-side tool of the library.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SamplerKind {
    /// Maps a data set to a resampled one ([`Sampler`]): an over-sampler, under-sampler or cleaning method.
    Resampler(SamplingKind),
    /// Yields row indices batch by batch for a training loop ([`MPerClass`], [`DualSampler`], [`ClassBalanced`]).
    BatchSampler,
    /// Turns a batch's per-sample losses into sample weights ([`LossReweight`]).
    Reweighting,
    /// Per-sample likelihoods from a clustering of embeddings ([`crate::cluster_likelihoods`]).
    Likelihoods,
    /// Subclass labels within each class ([`crate::sbcl_subclasses`]).
    Subclasses,
}

impl SamplerKind {
    /// The kind in words for `losskit list` (`over-sampler`, `cleaning method`, `batch sampler`, ...).
    pub fn noun(self) -> &'static str {
        match self {
            SamplerKind::Resampler(k) => k.noun(),
            SamplerKind::BatchSampler => "batch sampler",
            SamplerKind::Reweighting => "sample reweighting",
            SamplerKind::Likelihoods => "sample likelihoods",
            SamplerKind::Subclasses => "subclass assignment",
        }
    }

    /// Whether `losskit resample` (a [`Sampler`]) can run it.
    pub fn is_resampler(self) -> bool {
        matches!(self, SamplerKind::Resampler(_))
    }

    /// The over / under / clean kind of a resampler; `None` for the other tools.
    pub fn sampling_kind(self) -> Option<SamplingKind> {
        match self {
            SamplerKind::Resampler(k) => Some(k),
            _ => None,
        }
    }
}

impl fmt::Display for SamplerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.noun())
    }
}

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
    /// Over-sampler, under-sampler or cleaner, or a non-resampling tool (batch sampler, reweighting, ...).
    pub kind: SamplerKind,
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
    /// that does not parse, [`Error::Parameter`] for a number out of range; for an entry that is not a resampler,
    /// [`Error::Input`] once the parameters are checked.
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
    RCAL,
    M_PER_CLASS,
    DUAL_SAMPLER,
    CLASS_BALANCED_SAMPLER,
    LOSS_REWEIGHTING,
    CLUSTER_LIKELIHOODS,
    SBCL_SUBCLASSES,
];

/// The resamplers of [`SAMPLERS`] (what `losskit resample` runs), in list order.
pub fn resamplers() -> impl Iterator<Item = &'static SamplerEntry> {
    SAMPLERS.iter().filter(|e| e.kind.is_resampler())
}

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
    kind: SamplerKind::Resampler(SamplingKind::Over),
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
    kind: SamplerKind::Resampler(SamplingKind::Under),
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
    kind: SamplerKind::Resampler(SamplingKind::Over),
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
    kind: SamplerKind::Resampler(SamplingKind::Over),
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
    kind: SamplerKind::Resampler(SamplingKind::Over),
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
    kind: SamplerKind::Resampler(SamplingKind::Clean),
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
    kind: SamplerKind::Resampler(SamplingKind::Clean),
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
    kind: SamplerKind::Resampler(SamplingKind::Under),
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
    kind: SamplerKind::Resampler(SamplingKind::Over),
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
    kind: SamplerKind::Resampler(SamplingKind::Over),
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
    kind: SamplerKind::Resampler(SamplingKind::Over),
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
    kind: SamplerKind::Resampler(SamplingKind::Over),
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
    kind: SamplerKind::Resampler(SamplingKind::Over),
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
    kind: SamplerKind::Resampler(SamplingKind::Under),
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

const RCAL_PARAMS: &[SamplerParam] = &[
    param("q", "2", "integer ≥ 1", "head classes borrowed per tail class (Yang et al. 2021's k = 2)"),
    param("alpha", "0.21", "≥ 0", "spread added to a calibrated tail covariance (Yang et al. 2021's α = 0.21)"),
    param("head_min_count", "20", "integer ≥ 1", "inliers a class needs to be a head class (losskit's choice)"),
    param("lof_neighbors", "20", "integer ≥ 1", "Local Outlier Factor neighbourhood (scikit-learn's default)"),
];

const RCAL: SamplerEntry = SamplerEntry {
    name: "rcal",
    kind: SamplerKind::Resampler(SamplingKind::Over),
    summary: "RCAL distribution calibration: robust class Gaussians, tail classes calibrated from the nearest head \
              classes, synthetic representations drawn to balance (Rcal)",
    paper: "zhang2023noisy",
    reference: "Zhang, Zhao, Yao, Yuan, Huang (2023), When Noisy Labels Meet Long Tail Dilemmas: A Representation \
                Calibration Method, ICCV; defaults for q and alpha from Yang, Liu, Xu (2021), Free Lunch for \
                Few-shot Learning: Distribution Calibration, ICLR (the RCAL paper publishes none)",
    params: RCAL_PARAMS,
    build: |pairs| {
        let v = Values::parse("rcal", RCAL_PARAMS, pairs)?;
        let alpha = v.opt_f64("alpha")?.ok_or_else(|| Error::ParameterText {
            name: "alpha".into(),
            value: "none".into(),
            reason: "expected a number ≥ 0".into(),
        })?;
        let s = Rcal::new(v.count("q")?, alpha, v.count("head_min_count")?, v.count("lof_neighbors")?);
        s.check()?;
        Ok(Box::new(s))
    },
};

/// The refusal of a non-resampler's `build` (after its parameters are checked).
fn not_a_resampler(name: &str, kind: SamplerKind, api: &str) -> Error {
    Error::Input {
        what: format!(
            "{name} is a {}, not a resampler: use it from the library ({api}); `losskit resample` runs the \
             over-samplers, under-samplers and cleaning methods of `losskit list`",
            kind.noun()
        ),
    }
}

/// An optional whole number (`none` or an integer).
fn opt_count(v: &Values<'_>, name: &'static str) -> Result<Option<usize>> {
    match v.raw(name).trim() {
        "none" => Ok(None),
        _ => v.count(name).map(Some),
    }
}

const M_PER_CLASS_PARAMS: &[SamplerParam] = &[
    param("m", "4", "integer ≥ 1", "rows of each class in a batch"),
    param("batch_size", "none", "none | multiple of m", "rows per batch; none = one pass over the classes"),
    param("length_before_new_iter", "100000", "integer ≥ 1", "nominal epoch length before rounding"),
];

const M_PER_CLASS: SamplerEntry = SamplerEntry {
    name: "m-per-class",
    kind: SamplerKind::BatchSampler,
    summary: "batches of m rows per class, as pytorch-metric-learning's MPerClassSampler (library: MPerClass)",
    paper: "musgrave2020pytorch",
    reference: "Musgrave, Belongie, Lim (2020), PyTorch Metric Learning, arXiv:2008.09164 (MPerClassSampler)",
    params: M_PER_CLASS_PARAMS,
    build: |pairs| {
        let v = Values::parse("m-per-class", M_PER_CLASS_PARAMS, pairs)?;
        let s = MPerClass::new()
            .m(v.count("m")?)
            .batch_size(opt_count(&v, "batch_size")?)
            .length_before_new_iter(v.count("length_before_new_iter")?);
        s.check()?;
        Err(not_a_resampler("m-per-class", SamplerKind::BatchSampler, "losskit::samplers::MPerClass"))
    },
};

const DUAL_SAMPLER_PARAMS: &[SamplerParam] = &[
    param("batch_size", "64", "integer ≥ 2", "rows per batch"),
    param("sampling_rate", "0.5", "(0, 1)", "share of positives (label 1) per batch"),
    param("num_pos", "none", "none | 1 ..< batch_size", "exact positives per batch (overrides sampling_rate)"),
];

const DUAL_SAMPLER: SamplerEntry = SamplerEntry {
    name: "dual-sampler",
    kind: SamplerKind::BatchSampler,
    summary: "binary batches with a fixed share of positives, as LibAUC's DualSampler (library: DualSampler)",
    paper: "yuan2023libauc",
    reference: "Yuan, Zhu, Qiu, Li, Wang, Yang (2023), LibAUC: A Deep Learning Library for X-Risk Optimization, \
                KDD, arXiv:2306.03065 (libauc.sampler.DualSampler)",
    params: DUAL_SAMPLER_PARAMS,
    build: |pairs| {
        let v = Values::parse("dual-sampler", DUAL_SAMPLER_PARAMS, pairs)?;
        let rate = v.opt_f64("sampling_rate")?.ok_or_else(|| Error::ParameterText {
            name: "sampling_rate".into(),
            value: "none".into(),
            reason: "expected a number in (0, 1)".into(),
        })?;
        let s = DualSampler::new()
            .batch_size(v.count("batch_size")?)
            .sampling_rate(rate)
            .num_pos(opt_count(&v, "num_pos")?);
        s.check()?;
        Err(not_a_resampler("dual-sampler", SamplerKind::BatchSampler, "losskit::samplers::DualSampler"))
    },
};

const CLASS_BALANCED_SAMPLER_PARAMS: &[SamplerParam] =
    &[param("num_samples", "none", "none | integer ≥ 1", "draws per epoch; none = the number of rows")];

const CLASS_BALANCED_SAMPLER: SamplerEntry = SamplerEntry {
    name: "class-balanced-sampler",
    kind: SamplerKind::BatchSampler,
    summary: "draws a class uniformly, then a row of it (p = 1/C per class), with replacement (library: \
              ClassBalanced)",
    paper: "kang2020decoupling",
    reference: "Kang, Xie, Rohrbach, Yan, Gordo, Feng, Kalantidis (2020), Decoupling Representation and \
                Classifier for Long-Tailed Recognition, ICLR, arXiv:1910.09217",
    params: CLASS_BALANCED_SAMPLER_PARAMS,
    build: |pairs| {
        let v = Values::parse("class-balanced-sampler", CLASS_BALANCED_SAMPLER_PARAMS, pairs)?;
        let s = ClassBalanced::new().num_samples(opt_count(&v, "num_samples")?);
        s.check()?;
        Err(not_a_resampler("class-balanced-sampler", SamplerKind::BatchSampler, "losskit::samplers::ClassBalanced"))
    },
};

const LOSS_REWEIGHTING_PARAMS: &[SamplerParam] = &[
    param("strategy", "lin-upper", "lin-upper | quadratic | extremes | linear | uniform", "score of a normalised loss"),
    param("temperature", "1", "> 0", "softmax temperature r; larger = flatter weights"),
    param("delta", "1", "> 0", "half-width δ of the normalised loss range"),
];

const LOSS_REWEIGHTING: SamplerEntry = SamplerEntry {
    name: "loss-reweighting",
    kind: SamplerKind::Reweighting,
    summary: "per-sample weights from a batch's losses, softmax(f(normalised loss)/r) (library: LossReweight; \
              trainer: Trainer::fit_reweighted)",
    paper: "sow2025dynamic",
    reference: "Sow, Lin, Liang, Chi (2025), Dynamic Loss-Based Sample Reweighting for Improved Large Language \
                Model Pretraining, ICLR, arXiv:2502.06733",
    params: LOSS_REWEIGHTING_PARAMS,
    build: |pairs| {
        let v = Values::parse("loss-reweighting", LOSS_REWEIGHTING_PARAMS, pairs)?;
        let number = |name: &'static str| {
            v.opt_f64(name)?.ok_or_else(|| Error::ParameterText {
                name: name.into(),
                value: "none".into(),
                reason: "expected a number > 0".into(),
            })
        };
        let s = LossReweight::new()
            .strategy(v.parsed("strategy")?)
            .temperature(number("temperature")?)
            .delta(number("delta")?);
        s.check()?;
        Err(not_a_resampler("loss-reweighting", SamplerKind::Reweighting, "losskit::samplers::LossReweight"))
    },
};

const CLUSTER_LIKELIHOODS_PARAMS: &[SamplerParam] = &[
    param("clustering", "kmeans", "kmeans | dbscan", "how the embeddings are clustered"),
    param("n_clusters", "8", "integer ≥ 1", "k-means: number of clusters (scikit-learn's default)"),
    param("eps", "0.5", "> 0", "DBSCAN: neighbourhood radius (scikit-learn's default)"),
    param("min_samples", "5", "integer ≥ 1", "DBSCAN: rows a core row needs within eps (scikit-learn's default)"),
];

const CLUSTER_LIKELIHOODS: SamplerEntry = SamplerEntry {
    name: "cluster-likelihoods",
    kind: SamplerKind::Likelihoods,
    summary: "DatasetEquity sample likelihoods p = cluster size / largest cluster size, for the generalized focal \
              loss (library: KMeans or Dbscan, then cluster_likelihoods)",
    paper: "shrivastava2023datasetequity",
    reference: "Shrivastava, Rozenberszki, Li, Dubey, Lele (2023), DatasetEquity: Are All Samples Created Equal? In \
                The Quest For Equity Within Datasets, arXiv:2308.09878",
    params: CLUSTER_LIKELIHOODS_PARAMS,
    build: |pairs| {
        let v = Values::parse("cluster-likelihoods", CLUSTER_LIKELIHOODS_PARAMS, pairs)?;
        let eps = v.opt_f64("eps")?.ok_or_else(|| Error::ParameterText {
            name: "eps".into(),
            value: "none".into(),
            reason: "expected a number > 0".into(),
        })?;
        KMeans::new().n_clusters(v.count("n_clusters")?).check()?;
        Dbscan::new().eps(eps).min_samples(v.count("min_samples")?).check()?;
        match v.raw("clustering").trim() {
            "kmeans" | "dbscan" => {}
            other => {
                return Err(Error::ParameterText {
                    name: "clustering".into(),
                    value: other.into(),
                    reason: "expected kmeans or dbscan".into(),
                });
            }
        }
        Err(not_a_resampler("cluster-likelihoods", SamplerKind::Likelihoods, "losskit::samplers::cluster_likelihoods"))
    },
};

const SBCL_SUBCLASSES_PARAMS: &[SamplerParam] = &[
    param("m", "10", "integer ≥ 1", "smallest subclass size aimed at (SBCL's CIFAR script: 10)"),
    param("tol", "0.001", "≥ 0", "cosine k-means stopping tolerance (the reference's 1e-3)"),
];

const SBCL_SUBCLASSES: SamplerEntry = SamplerEntry {
    name: "sbcl-subclasses",
    kind: SamplerKind::Subclasses,
    summary: "SBCL subclass labels: each class split into ⌊n_c / max(n_min, m)⌋ subclasses by cosine k-means \
              (library: sbcl_subclasses)",
    paper: "hou2023sbcl",
    reference: "Hou, Yu, Ding, Tao, Chen, Zhou, Wu (2023), Subclass-balancing Contrastive Learning for Long-tailed \
                Recognition, ICCV, arXiv:2306.15925",
    params: SBCL_SUBCLASSES_PARAMS,
    build: |pairs| {
        let v = Values::parse("sbcl-subclasses", SBCL_SUBCLASSES_PARAMS, pairs)?;
        if v.count("m")? == 0 {
            return Err(Error::Parameter { name: "m", value: 0.0, reason: "must be ≥ 1" });
        }
        let tol = v.opt_f64("tol")?.ok_or_else(|| Error::ParameterText {
            name: "tol".into(),
            value: "none".into(),
            reason: "expected a number ≥ 0".into(),
        })?;
        losskit_tensor::check::at_least("tol", tol, 0.0)?;
        Err(not_a_resampler("sbcl-subclasses", SamplerKind::Subclasses, "losskit::samplers::sbcl_subclasses"))
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
            // A resampler builds; any other tool checks its parameters, then refuses with Error::Input.
            let ok = |r: Result<Box<dyn Sampler>>| match r {
                Ok(_) => e.kind.is_resampler(),
                Err(Error::Input { what }) => {
                    !e.kind.is_resampler()
                        && what.starts_with(&format!("{} is a {}, not a resampler", e.name, e.kind.noun()))
                }
                Err(_) => false,
            };
            assert!(ok(e.build_default()), "{}", e.name);
            for p in e.params {
                assert!(p.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'), "{}", p.name);
                // each default given explicitly builds too
                assert!(ok(e.build_with(&kv(&[(p.name, p.default)]))), "{} {}", e.name, p.name);
            }
        }
        let kinds: Vec<SamplerKind> = SAMPLERS.iter().map(|e| e.kind).collect();
        for k in
            [SamplerKind::BatchSampler, SamplerKind::Reweighting, SamplerKind::Likelihoods, SamplerKind::Subclasses]
        {
            assert!(kinds.contains(&k), "{k}");
        }
        assert_eq!(resamplers().count(), 15);
    }

    #[test]
    fn tools_check_their_parameters_before_refusing() {
        let bad = |name: &str, k: &str, v: &str| find(name).unwrap().build_with(&kv(&[(k, v)])).unwrap_err();
        assert!(matches!(bad("m-per-class", "m", "0"), Error::Parameter { name: "m", .. }));
        assert!(matches!(bad("m-per-class", "batch_size", "6"), Error::Parameter { .. }));
        assert!(matches!(bad("dual-sampler", "sampling_rate", "1.5"), Error::Parameter { .. }));
        assert!(matches!(bad("class-balanced-sampler", "num_samples", "0"), Error::Parameter { .. }));
        assert!(matches!(bad("loss-reweighting", "strategy", "cubic"), Error::ParameterText { .. }));
        assert!(matches!(bad("loss-reweighting", "temperature", "0"), Error::Parameter { name: "temperature", .. }));
        assert!(matches!(bad("cluster-likelihoods", "clustering", "hdbscan"), Error::ParameterText { .. }));
        assert!(matches!(bad("cluster-likelihoods", "eps", "-1"), Error::Parameter { name: "eps", .. }));
        assert!(matches!(bad("sbcl-subclasses", "tol", "-1"), Error::Parameter { name: "tol", .. }));
        assert!(matches!(bad("rcal", "q", "0"), Error::Parameter { name: "q", .. }));
        assert!(matches!(bad("m-per-class", "k", "1"), Error::UnknownParameter { .. }));
        let e = find("m-per-class").unwrap().build_default().err().unwrap().to_string();
        assert!(e.contains("m-per-class is a batch sampler, not a resampler"), "{e}");
        assert!(e.contains("losskit::samplers::MPerClass"), "{e}");
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
