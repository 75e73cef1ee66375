//! Integration tests of losskit-metrics (one binary: see `autotests = false` in Cargo.toml).

mod bad_input;
mod extra;
mod merge;
mod ranking;
mod sklearn;
mod util;
