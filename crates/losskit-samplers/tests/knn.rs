//! Exact k-nearest neighbours against scikit-learn's `NearestNeighbors` (fixture `smote.json`, section `knn`).

use losskit_samplers::knn::{kneighbors, kneighbors_self};
use ndarray::Array2;
use serde_json::Value;

use crate::common::fixture;

pub fn matrix(v: &Value) -> Array2<f64> {
    let rows: Vec<Vec<f64>> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_array().unwrap().iter().map(|e| e.as_f64().unwrap()).collect())
        .collect();
    let d = rows.first().map_or(0, Vec::len);
    Array2::from_shape_vec((rows.len(), d), rows.concat()).unwrap()
}

fn index_matrix(v: &Value) -> Array2<usize> {
    matrix(v).mapv(|f| f as usize)
}

#[test]
fn neighbour_sets_match_scikit_learn() {
    let root = fixture("smote.json");
    let cases = root["knn"].as_array().unwrap();
    assert_eq!(cases.len(), 5);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let k = case["k"].as_u64().unwrap() as usize;
        let x = matrix(&case["x"]);
        let q = matrix(&case["queries"]);
        let own = kneighbors_self(x.view(), k).unwrap();
        assert_eq!(own.indices, index_matrix(&case["self_indices"]), "{name}: self");
        let ext = kneighbors(x.view(), q.view(), k).unwrap();
        assert_eq!(ext.indices, index_matrix(&case["query_indices"]), "{name}: queries");
        for (got, want) in
            [(&own.distances, matrix(&case["self_distances"])), (&ext.distances, matrix(&case["query_distances"]))]
        {
            for (a, b) in got.iter().zip(want.iter()) {
                assert!((a - b).abs() <= 1e-12 * (1.0 + b), "{name}: distance {a} vs {b}");
            }
        }
    }
}
