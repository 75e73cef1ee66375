//! The registry: every loss once, with its family, parameters (defaults and ranges) and paper.
//!
//! `losskit list`, the `losskit loss` command, `docs/papers.md` checks and the shared test suites all read
//! [`LOSSES`](crate::LOSSES), so a new loss is one file plus one entry here.

use std::collections::BTreeMap;
use std::fmt;

use losskit_tensor::{Error, Reduction, Result};

use crate::core::{DynBinaryLoss, DynClassLoss};

/// The input family of a loss (which arrays it reads).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// `logits` [N, C] + `targets` `[N]` or `soft_targets` [N, C].
    Classification,
    /// `scores` `[N]` + `targets` `[N]`.
    Binary,
    /// `logits` [N, L] + `targets` [N, L].
    MultiLabel,
    /// `embeddings` [N, D] + `labels` `[N]`.
    Embedding,
    /// `embeddings` + `labels` + `proxies` [C, D].
    Proxy,
    /// Positive and negative scores per query (ranking / AUC).
    Pair,
    /// Student `logits`, `teacher_logits`, `targets`.
    Distillation,
    /// `predictions` `[N]` + `bags` `[N]` + `responses` `[B]`.
    Bag,
}

impl Family {
    /// Kebab-case name (`classification`, `binary`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Classification => "classification",
            Family::Binary => "binary",
            Family::MultiLabel => "multi-label",
            Family::Embedding => "embedding",
            Family::Proxy => "proxy",
            Family::Pair => "pair",
            Family::Distillation => "distillation",
            Family::Bag => "bag",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The values a parameter accepts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Range {
    /// Any finite number.
    Any,
    /// x > 0.
    Positive,
    /// x ≥ 0.
    NonNegative,
    /// lo ≤ x ≤ hi.
    Closed(f64, f64),
    /// lo ≤ x < hi.
    ClosedOpen(f64, f64),
    /// lo < x ≤ hi.
    OpenClosed(f64, f64),
    /// lo < x < hi.
    Open(f64, f64),
    /// An integer ≥ the bound.
    IntAtLeast(i64),
    /// `true` or `false`.
    Bool,
    /// One of these words.
    Choice(&'static [&'static str]),
    /// A vector of finite numbers, read from an array of the parameter's name in the input file.
    Vector,
}

impl Range {
    /// The range in words, for `losskit list`.
    pub fn describe(&self) -> String {
        match self {
            Range::Any => "any finite number".into(),
            Range::Positive => "> 0".into(),
            Range::NonNegative => "≥ 0".into(),
            Range::Closed(a, b) => format!("[{a}, {b}]"),
            Range::ClosedOpen(a, b) => format!("[{a}, {b})"),
            Range::OpenClosed(a, b) => format!("({a}, {b}]"),
            Range::Open(a, b) => format!("({a}, {b})"),
            Range::IntAtLeast(a) => format!("integer ≥ {a}"),
            Range::Bool => "true | false".into(),
            Range::Choice(c) => c.join(" | "),
            Range::Vector => "array (from the input file)".into(),
        }
    }

    fn check_number(&self, name: &'static str, v: f64) -> Result<()> {
        use losskit_tensor::check;
        match *self {
            Range::Any => check::finite_param(name, v),
            Range::Positive => check::greater_than(name, v, 0.0),
            Range::NonNegative => check::at_least(name, v, 0.0),
            Range::Closed(a, b) => check::closed(name, v, a, b),
            Range::ClosedOpen(a, b) => check::closed_open(name, v, a, b),
            Range::OpenClosed(a, b) => check::open_closed(name, v, a, b),
            Range::Open(a, b) => check::open(name, v, a, b),
            Range::IntAtLeast(a) => {
                if v.fract() != 0.0 || v < a as f64 || !v.is_finite() {
                    Err(Error::Parameter { name, value: v, reason: "must be an integer at or above its minimum" })
                } else {
                    Ok(())
                }
            }
            Range::Bool | Range::Choice(_) | Range::Vector => Ok(()),
        }
    }
}

/// One parameter of a registered method.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParamSpec {
    /// snake_case name, the peer library's keyword where one exists.
    pub name: &'static str,
    /// Default as text: a number, `none` (absent), a word, `true`/`false`.
    pub default: &'static str,
    /// Accepted values.
    pub range: Range,
    /// One line of help.
    pub help: &'static str,
}

/// Shorthand constructor for [`ParamSpec`] (usable in `const` registry entries).
pub const fn param(name: &'static str, default: &'static str, range: Range, help: &'static str) -> ParamSpec {
    ParamSpec { name, default, range, help }
}

/// Parsed, validated `key=value` parameters of one method, with defaults filled in on read.
#[derive(Clone, Debug)]
pub struct Params {
    method: &'static str,
    specs: &'static [ParamSpec],
    values: BTreeMap<&'static str, String>,
    vectors: BTreeMap<&'static str, Vec<f64>>,
    reduction: Reduction,
}

impl Params {
    /// Validates `pairs` against `specs`: unknown names, unparsable values and out-of-range values are errors.
    /// The name `reduction` is accepted by every loss.
    ///
    /// # Errors
    /// [`Error::UnknownParameter`], [`Error::Parameter`] or [`Error::ParameterText`].
    pub fn parse(method: &'static str, specs: &'static [ParamSpec], pairs: &[(String, String)]) -> Result<Self> {
        let mut p =
            Params { method, specs, values: BTreeMap::new(), vectors: BTreeMap::new(), reduction: Reduction::Mean };
        for (k, v) in pairs {
            if k == "reduction" {
                p.reduction = v.parse()?;
                continue;
            }
            let spec = p.spec(k)?;
            p.validate(spec, v)?;
            p.values.insert(spec.name, v.clone());
        }
        Ok(p)
    }

    /// Parameters with every default (no pairs).
    pub fn defaults(method: &'static str, specs: &'static [ParamSpec]) -> Self {
        Params { method, specs, values: BTreeMap::new(), vectors: BTreeMap::new(), reduction: Reduction::Mean }
    }

    /// Sets a vector parameter (an array read from the input file).
    ///
    /// # Errors
    /// [`Error::UnknownParameter`] when the method has no such vector parameter; [`Error::NonFinite`] for NaN/∞.
    pub fn set_vector(&mut self, name: &str, values: Vec<f64>) -> Result<()> {
        let spec = self.spec(name)?;
        if spec.range != Range::Vector {
            return Err(self.unknown(name));
        }
        if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(Error::NonFinite { arg: spec.name, index, value });
        }
        self.vectors.insert(spec.name, values);
        Ok(())
    }

    /// Sets the reduction.
    pub fn set_reduction(&mut self, r: Reduction) {
        self.reduction = r;
    }

    /// The reduction (default `mean`).
    pub fn reduction(&self) -> Reduction {
        self.reduction
    }

    /// The method's parameter specs.
    pub fn specs(&self) -> &'static [ParamSpec] {
        self.specs
    }

    fn unknown(&self, name: &str) -> Error {
        let known: Vec<&str> = self.specs.iter().map(|s| s.name).chain(["reduction"]).collect();
        Error::UnknownParameter { name: name.into(), method: self.method.into(), known: known.join(", ") }
    }

    fn spec(&self, name: &str) -> Result<&'static ParamSpec> {
        self.specs.iter().find(|s| s.name == name).ok_or_else(|| self.unknown(name))
    }

    fn text_err(spec: &ParamSpec, v: &str, reason: String) -> Error {
        Error::ParameterText { name: spec.name.into(), value: v.into(), reason }
    }

    fn validate(&self, spec: &'static ParamSpec, v: &str) -> Result<()> {
        match spec.range {
            Range::Bool => match v {
                "true" | "false" => Ok(()),
                _ => Err(Self::text_err(spec, v, "expected true or false".into())),
            },
            Range::Choice(c) => {
                if c.contains(&v) {
                    Ok(())
                } else {
                    Err(Self::text_err(spec, v, format!("expected one of {}", c.join(", "))))
                }
            }
            Range::Vector => {
                Err(Self::text_err(spec, v, format!("is an array: give it as `{}` in the input file", spec.name)))
            }
            _ => {
                if v == "none" && spec.default == "none" {
                    return Ok(());
                }
                let x: f64 = v.parse().map_err(|_| Self::text_err(spec, v, "expected a number".into()))?;
                spec.range.check_number(spec.name, x)
            }
        }
    }

    fn raw(&self, name: &str) -> Result<&str> {
        let spec = self.spec(name)?;
        Ok(self.values.get(spec.name).map_or(spec.default, String::as_str))
    }

    /// A numeric parameter (given or default).
    ///
    /// # Errors
    /// [`Error::UnknownParameter`] for a name the method does not declare; [`Error::ParameterText`] when the value
    /// (or the default) is `none` or not a number.
    pub fn f64(&self, name: &str) -> Result<f64> {
        self.opt_f64(name)?.ok_or_else(|| Error::ParameterText {
            name: name.into(),
            value: "none".into(),
            reason: "a number is required".into(),
        })
    }

    /// A numeric parameter that may be `none` (absent).
    ///
    /// # Errors
    /// As [`Params::f64`].
    pub fn opt_f64(&self, name: &str) -> Result<Option<f64>> {
        let spec = self.spec(name)?;
        let v = self.raw(name)?;
        if v == "none" {
            return Ok(None);
        }
        v.parse().map(Some).map_err(|_| Self::text_err(spec, v, "expected a number".into()))
    }

    /// An integer parameter.
    ///
    /// # Errors
    /// As [`Params::f64`].
    pub fn i64(&self, name: &str) -> Result<i64> {
        Ok(self.f64(name)? as i64)
    }

    /// A word parameter.
    ///
    /// # Errors
    /// [`Error::UnknownParameter`].
    pub fn text(&self, name: &str) -> Result<&str> {
        self.raw(name)
    }

    /// A boolean parameter.
    ///
    /// # Errors
    /// [`Error::UnknownParameter`].
    pub fn bool(&self, name: &str) -> Result<bool> {
        Ok(self.raw(name)? == "true")
    }

    /// A vector parameter, when given.
    ///
    /// # Errors
    /// [`Error::UnknownParameter`].
    pub fn vector(&self, name: &str) -> Result<Option<&[f64]>> {
        let spec = self.spec(name)?;
        Ok(self.vectors.get(spec.name).map(Vec::as_slice))
    }
}

/// A loss built from the registry: the forms it offers (a loss such as `focal` has a classification and a binary
/// form; the caller picks the form from the arrays it has).
#[derive(Debug, Default)]
pub struct BuiltLoss {
    /// The multiclass form.
    pub class: Option<Box<dyn DynClassLoss>>,
    /// The binary form.
    pub binary: Option<Box<dyn DynBinaryLoss>>,
}

/// One registered loss.
#[derive(Clone, Copy)]
pub struct LossEntry {
    /// kebab-case name (`cross-entropy`).
    pub name: &'static str,
    /// Primary input family.
    pub family: Family,
    /// One-line summary.
    pub summary: &'static str,
    /// Key of the paper in `docs/papers.md` (`lin2017focal`), or the peer whose semantics it matches.
    pub paper: &'static str,
    /// Citation: authors, year, title, venue.
    pub reference: &'static str,
    /// Parameters (besides `reduction`, which every loss takes).
    pub params: &'static [ParamSpec],
    /// Builds the loss from validated parameters.
    pub build: fn(&Params) -> Result<BuiltLoss>,
}

impl fmt::Debug for LossEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LossEntry").field("name", &self.name).field("family", &self.family).finish_non_exhaustive()
    }
}

impl LossEntry {
    /// Parses `key=value` pairs against this entry's parameters.
    ///
    /// # Errors
    /// As [`Params::parse`].
    pub fn params(&self, pairs: &[(String, String)]) -> Result<Params> {
        Params::parse(self.name, self.params, pairs)
    }

    /// Builds the loss with every parameter at its default.
    ///
    /// # Errors
    /// Only if the defaults are invalid (a bug the registry tests catch).
    pub fn build_default(&self) -> Result<BuiltLoss> {
        (self.build)(&Params::defaults(self.name, self.params))
    }
}

/// Finds a registered loss by name.
///
/// # Errors
/// [`Error::UnknownName`] when no loss has that name.
pub fn find(name: &str) -> Result<&'static LossEntry> {
    crate::LOSSES.iter().find(|e| e.name == name).ok_or_else(|| Error::UnknownName { kind: "loss", name: name.into() })
}

/// The embedding and proxy forms of a registered loss.
///
/// They live beside [`BuiltLoss`] rather than in it so that adding them broke no existing `BuiltLoss { .. }`
/// literal; [`LossEntry::build_metric`] builds them (an embedding or proxy entry's own `build` validates the same
/// parameters and returns an empty [`BuiltLoss`]).
#[derive(Debug, Default)]
pub struct MetricForms {
    /// The embedding form (`embeddings` [N, D] + `labels` `[N]`).
    pub embedding: Option<Box<dyn crate::core::DynEmbeddingLoss>>,
    /// The proxy form (`embeddings` + `labels` + `proxies` [C, D]).
    pub proxy: Option<Box<dyn crate::core::DynProxyLoss>>,
}

impl LossEntry {
    /// Builds the embedding or proxy form of this loss (both `None` for the other families).
    ///
    /// # Errors
    /// As the entry's `build`: invalid parameters.
    pub fn build_metric(&self, params: &Params) -> Result<MetricForms> {
        crate::embedding::build_metric(self.name, params)
    }
}
