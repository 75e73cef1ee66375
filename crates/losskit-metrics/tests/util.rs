//! Shared helpers of the fixture tests: JSON numbers with "nan" / "inf" strings, tolerant comparisons.

use serde_json::Value;

/// The fixture file `name` under `tests/fixtures/`.
pub fn fixture(name: &str) -> Value {
    losskit_tensor::gradcheck::load_json(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR")))
}

/// A float from the fixture: a number, or "nan" / "inf" / "-inf".
pub fn num(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().expect("finite number"),
        Value::String(s) if s == "nan" => f64::NAN,
        Value::String(s) if s == "inf" => f64::INFINITY,
        Value::String(s) if s == "-inf" => f64::NEG_INFINITY,
        other => panic!("not a float: {other}"),
    }
}

/// A number or an array of numbers, as a vector.
pub fn nums(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(a) => a.iter().map(num).collect(),
        other => vec![num(other)],
    }
}

pub fn ints(v: &Value) -> Vec<i64> {
    v.as_array().expect("array").iter().map(|x| x.as_i64().expect("integer")).collect()
}

/// A matrix of numbers as an ndarray.
pub fn matrix_f64(v: &Value) -> ndarray::Array2<f64> {
    let rows: Vec<Vec<f64>> = v.as_array().expect("rows").iter().map(nums).collect();
    let (n, c) = (rows.len(), rows.first().map_or(0, Vec::len));
    ndarray::Array2::from_shape_vec((n, c), rows.concat()).expect("rectangular")
}

/// A matrix of integers as an ndarray.
pub fn matrix_i64(v: &Value) -> ndarray::Array2<i64> {
    let rows: Vec<Vec<i64>> = v.as_array().expect("rows").iter().map(ints).collect();
    let (n, c) = (rows.len(), rows.first().map_or(0, Vec::len));
    ndarray::Array2::from_shape_vec((n, c), rows.concat()).expect("rectangular")
}

pub fn close(got: f64, want: f64, tol: f64) -> bool {
    (got.is_nan() && want.is_nan()) || got == want || (got - want).abs() <= tol
}

#[track_caller]
pub fn assert_close(got: f64, want: f64, tol: f64, what: &str) {
    assert!(close(got, want, tol), "{what}: got {got:?}, reference {want:?}");
}

#[track_caller]
pub fn assert_all_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths {got:?} vs {want:?}");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert_close(g, w, tol, &format!("{what}[{i}]"));
    }
}
