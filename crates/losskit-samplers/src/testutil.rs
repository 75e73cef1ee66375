//! Test helpers: loading the imbalanced-learn parity fixtures written by `tools/fixtures/gen_samplers.py`.
//!
//! Test-only: declared as `#[cfg(test)] mod testutil;` in lib.rs, so its unwraps never reach library users.

use ndarray::{Array1, Array2};
use serde_json::Value;

/// One sampler run of `random_over.json` / `random_under.json`.
pub(crate) struct Case {
    pub name: String,
    pub x: Array2<f64>,
    pub y: Array1<i64>,
    pub params: Value,
    pub x_res: Array2<f64>,
    pub y_res: Array1<i64>,
    pub sample_indices: Vec<usize>,
}

pub(crate) fn fixture(name: &str) -> Value {
    losskit_tensor::gradcheck::load_json(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR")))
}

fn matrix(v: &Value) -> Array2<f64> {
    let rows: Vec<Vec<f64>> = v.as_array().unwrap().iter().map(floats).collect();
    let d = rows.first().map_or(0, Vec::len);
    Array2::from_shape_vec((rows.len(), d), rows.concat()).unwrap()
}

pub(crate) fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|e| e.as_f64().unwrap()).collect()
}

pub(crate) fn ints(v: &Value) -> Vec<i64> {
    v.as_array().unwrap().iter().map(|e| e.as_i64().unwrap()).collect()
}

/// A JSON array of rows as a matrix.
pub(crate) fn floats_matrix(v: &Value) -> Array2<f64> {
    matrix(v)
}

pub(crate) fn load_cases(name: &str) -> Vec<Case> {
    let root = fixture(name);
    root["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap().to_string(),
            x: matrix(&c["x"]),
            y: ints(&c["y"]).into(),
            params: c["params"].clone(),
            x_res: matrix(&c["x_res"]),
            y_res: ints(&c["y_res"]).into(),
            sample_indices: ints(&c["sample_indices"]).into_iter().map(|i| i as usize).collect(),
        })
        .collect()
}
