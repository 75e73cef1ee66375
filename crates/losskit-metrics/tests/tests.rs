//! Integration tests of losskit-metrics (one binary: see `autotests = false` in Cargo.toml).

mod bad_input;
mod calibration;
mod extra;
mod icnn;
mod inductive_bias;
mod merge;
mod neural_collapse;
mod ranking;
mod retrieval;
mod sklearn;
mod util;
