//! How per-sample values are reduced to one number.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// How a loss reduces its per-sample values ℓᵢ (with per-sample weights wᵢ, 1 when absent).
///
/// ```text
/// Mean: Σᵢ wᵢ·ℓᵢ / Σᵢ wᵢ      Sum: Σᵢ wᵢ·ℓᵢ      None: the vector (wᵢ·ℓᵢ)ᵢ
/// ```
/// The meaning is the same for every loss; a loss whose reference implementation reduces otherwise (for example
/// PyTorch's `cross_entropy` divides by the summed class weights of non-ignored targets) documents it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Reduction {
    /// Weighted mean (the default).
    #[default]
    Mean,
    /// Weighted sum.
    Sum,
    /// No reduction: the per-sample vector is the result; the scalar value is its sum.
    None,
}

impl Reduction {
    /// The name used on the command line and by PyTorch (`mean`, `sum`, `none`).
    pub fn as_str(self) -> &'static str {
        match self {
            Reduction::Mean => "mean",
            Reduction::Sum => "sum",
            Reduction::None => "none",
        }
    }
}

impl fmt::Display for Reduction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Reduction {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "mean" => Ok(Reduction::Mean),
            "sum" => Ok(Reduction::Sum),
            "none" => Ok(Reduction::None),
            _ => Err(Error::ParameterText {
                name: "reduction".into(),
                value: s.into(),
                reason: "expected one of mean, sum, none".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_round_trip() {
        for r in [Reduction::Mean, Reduction::Sum, Reduction::None] {
            assert_eq!(r.as_str().parse::<Reduction>().unwrap(), r);
        }
        assert!(matches!("avg".parse::<Reduction>(), Err(Error::ParameterText { .. })));
    }
}
