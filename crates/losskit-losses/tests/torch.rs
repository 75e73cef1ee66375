//! Frozen PyTorch / torchvision references (fixtures/losses.json from tools/fixtures/gen_losses.py): every case is
//! built through the registry exactly as the command line builds it, run in f64 (tolerance 1e-10) and f32 (1e-5),
//! and compared on the value, the per-sample values and the gradient.

use losskit_losses::registry;
use ndarray::{Array1, Array2};
use serde_json::Value;

use crate::common::{Prec, assert_close, assert_rel};

fn fixtures() -> Value {
    losskit_tensor::gradcheck::load_json(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/losses.json"))
}

fn floats(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(a) => a.iter().flat_map(floats).collect(),
        Value::Number(x) => vec![x.as_f64().expect("number")],
        other => panic!("not a number: {other}"),
    }
}

fn matrix(v: &Value) -> Array2<f64> {
    let rows = v.as_array().expect("matrix");
    let c = rows.first().and_then(Value::as_array).map_or(0, Vec::len);
    Array2::from_shape_vec((rows.len(), c), floats(v)).expect("rectangular")
}

fn run_case<F: Prec>(case: &Value, rtol: f64) {
    let name = case["name"].as_str().expect("name");
    let entry = registry::find(case["loss"].as_str().expect("loss")).expect("registered");
    let pairs: Vec<(String, String)> = case["params"]
        .as_object()
        .expect("params")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("text").to_string()))
        .collect();
    let mut params = entry.params(&pairs).unwrap_or_else(|e| panic!("{name}: {e}"));
    for (k, v) in case["vectors"].as_object().expect("vectors") {
        params.set_vector(k, floats(v)).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let built = (entry.build)(&params).unwrap_or_else(|e| panic!("{name}: {e}"));
    let w: Option<Array1<F>> = case.get("weights").map(|w| floats(w).into_iter().map(F::c).collect());
    let w = w.as_ref().map(|w| w.view());
    let (value, per_sample, grad) = match case["form"].as_str() {
        Some("class") => {
            let loss = built.class.as_deref().expect("class form");
            let x = matrix(&case["logits"]).mapv(F::c);
            let labels: Vec<i64>;
            let soft: Array2<F>;
            let targets = match case.get("targets") {
                Some(t) => {
                    labels = t.as_array().expect("labels").iter().map(|v| v.as_i64().expect("int")).collect();
                    losskit_losses::Targets::hard(&labels)
                }
                None => {
                    soft = matrix(&case["soft_targets"]).mapv(F::c);
                    losskit_losses::Targets::soft(soft.view())
                }
            };
            let out = F::class(loss, x.view(), targets, w, true).unwrap_or_else(|e| panic!("{name}: {e}"));
            (out.value, out.per_sample, out.grad.map(|g| g.into_dyn()))
        }
        Some("binary") => {
            let loss = built.binary.as_deref().expect("binary form");
            let x: Array1<F> = floats(&case["scores"]).into_iter().map(F::c).collect();
            let t: Array1<F> = floats(&case["targets"]).into_iter().map(F::c).collect();
            let out = F::binary(loss, x.view(), t.view(), w, true).unwrap_or_else(|e| panic!("{name}: {e}"));
            (out.value, out.per_sample, out.grad.map(|g| g.into_dyn()))
        }
        other => panic!("{name}: unknown form {other:?}"),
    };
    let what = |part: &str| format!("{name} ({}) {part}", F::NAME);
    assert_rel(&what("value"), value.f64(), case["value"].as_f64().expect("value"), rtol);
    let per_sample: Vec<f64> = per_sample.expect("per-sample values").iter().map(|v| v.f64()).collect();
    assert_close(&what("per_sample"), &per_sample, &floats(&case["per_sample"]), rtol);
    let grad: Vec<f64> = grad.expect("gradient").iter().map(|v| v.f64()).collect();
    assert_close(&what("grad"), &grad, &floats(&case["grad"]), rtol);
}

#[test]
fn fixtures_record_their_generator_and_peer_versions() {
    let f = fixtures();
    assert_eq!(f["generator"], "tools/fixtures/gen_losses.py");
    assert!(f["torch"].as_str().is_some_and(|v| !v.is_empty()));
    assert!(f["torchvision"].as_str().is_some_and(|v| !v.is_empty()));
    let cases = f["cases"].as_array().expect("cases");
    for loss in ["cross-entropy", "binary-cross-entropy", "focal"] {
        assert!(cases.iter().any(|c| c["loss"] == loss), "no fixture for {loss}");
    }
}

#[test]
fn matches_torch_in_f64() {
    for case in fixtures()["cases"].as_array().expect("cases") {
        run_case::<f64>(case, 1e-10);
    }
}

#[test]
fn matches_torch_in_f32() {
    for case in fixtures()["cases"].as_array().expect("cases") {
        run_case::<f32>(case, 1e-5);
    }
}
