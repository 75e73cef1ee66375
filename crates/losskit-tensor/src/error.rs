//! The error type shared by every losskit crate.

/// Every failure a losskit library entry point reports. Each variant names the argument (or parameter) at fault and
/// the value it received, so a message is clear on its own; messages are lowercase, one line, no trailing period.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An array has the wrong shape.
    #[error("{arg}: expected shape {expected}, got {got:?}")]
    Shape {
        /// Public name of the argument (`logits`, `targets`, ...).
        arg: &'static str,
        /// The expected shape, in words (`[N, C] with N = 4`).
        expected: String,
        /// The shape received.
        got: Vec<usize>,
    },
    /// An array holds NaN or an infinity.
    #[error("{arg}: non-finite value {value} at flat index {index}")]
    NonFinite {
        /// Public name of the argument.
        arg: &'static str,
        /// Flat (row-major) index of the first offending element.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// A class label is outside `0..classes` (and is not the ignore index).
    #[error("{arg}: label {label} at index {index} is out of range 0..{classes}")]
    LabelOutOfRange {
        /// Public name of the argument.
        arg: &'static str,
        /// The label received.
        label: i64,
        /// Number of classes.
        classes: usize,
        /// Position of the label.
        index: usize,
    },
    /// A value is not allowed for a parameter.
    #[error("parameter {name} = {value} is invalid: {reason}")]
    Parameter {
        /// Parameter name (snake_case, as on the command line).
        name: &'static str,
        /// The value received.
        value: f64,
        /// What is allowed.
        reason: &'static str,
    },
    /// A parameter was given a value of the wrong kind or a value outside its set of choices.
    #[error("parameter {name} = {value:?} is invalid: {reason}")]
    ParameterText {
        /// Parameter name.
        name: String,
        /// The text received.
        value: String,
        /// What is allowed.
        reason: String,
    },
    /// A parameter name that the method does not have.
    #[error("unknown parameter {name:?} for {method}; known: {known}")]
    UnknownParameter {
        /// The name received.
        name: String,
        /// The loss, sampler or metric.
        method: String,
        /// Comma-separated list of the method's parameters.
        known: String,
    },
    /// A loss, sampler or metric name that is not registered.
    #[error("unknown {kind} {name:?}; run `losskit list` to see them")]
    UnknownName {
        /// `loss`, `sampler`, `metric` or `dataset`.
        kind: &'static str,
        /// The name received.
        name: String,
    },
    /// An array that must hold at least one element is empty.
    #[error("{arg}: must not be empty")]
    Empty {
        /// Public name of the argument.
        arg: &'static str,
    },
    /// The input is well formed but the computation is undefined on it (a single class where two are needed, ...).
    #[error("{what}")]
    Degenerate {
        /// What is wrong, in words.
        what: String,
    },
    /// A required input is missing, or inputs are given in a combination the method does not accept.
    #[error("{what}")]
    Input {
        /// What is wrong, in words.
        what: String,
    },
    /// A device (CUDA) failure: no driver, no device, a kernel that failed to compile or launch.
    #[error("device: {what}")]
    Device {
        /// What failed.
        what: String,
    },
}

/// Result with the losskit [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
