//! Integration tests of losskit-metrics (one binary: see `autotests = false` in Cargo.toml).

mod bad_input;
mod calibration;
mod extra;
mod inductive_bias;
mod merge;
mod neural_collapse;
mod ranking;
mod retrieval;
mod sklearn;
mod util;
