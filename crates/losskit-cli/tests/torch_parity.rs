//! End-to-end parity with PyTorch: every classification and binary case of the losses crate's torch fixtures
//! (`crates/losskit-losses/tests/fixtures/losses.json`, written by `tools/fixtures/gen_losses.py` with torch autograd)
//! is written to an `.npz`, run through the `losskit loss` binary in f64 and in f32, and the written `loss` and
//! gradient are compared with torch's: 1e-10 relative in f64, 1e-5 in f32.

use std::fs::File;
use std::path::Path;
use std::process::Command;

use ndarray::{Array1, Array2, ArrayD, IxDyn};
use ndarray_npy::{NpzReader, NpzWriter};
use serde_json::Value;

fn fixture() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../losskit-losses/tests/fixtures/losses.json");
    let text = std::fs::read_to_string(&path).expect("reading the torch fixtures");
    serde_json::from_str(&text).expect("parsing the torch fixtures")
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().expect("array").iter().map(|x| x.as_f64().expect("number")).collect()
}

fn matrix(v: &Value) -> Array2<f64> {
    let rows: Vec<Vec<f64>> = v.as_array().expect("rows").iter().map(floats).collect();
    let c = rows.first().map_or(0, Vec::len);
    Array2::from_shape_vec((rows.len(), c), rows.concat()).expect("rectangular")
}

fn dense(v: &Value) -> ArrayD<f64> {
    if v.as_array().is_some_and(|a| a.first().is_some_and(Value::is_array)) {
        matrix(v).into_dyn()
    } else {
        Array1::from(floats(v)).into_dyn()
    }
}

/// Writes a float array in the requested precision.
fn add_float(w: &mut NpzWriter<File>, name: &str, a: &ArrayD<f64>, f32_mode: bool) {
    if f32_mode {
        w.add_array(name, &a.mapv(|x| x as f32)).expect("writing f32 array");
    } else {
        w.add_array(name, a).expect("writing f64 array");
    }
}

fn read_float(r: &mut NpzReader<File>, name: &str, f32_mode: bool) -> ArrayD<f64> {
    if f32_mode {
        let a: ArrayD<f32> = r.by_name(name).expect("reading output array");
        a.mapv(f64::from)
    } else {
        r.by_name(name).expect("reading output array")
    }
}

fn close(got: f64, want: f64, rtol: f64, scale: f64) -> bool {
    (got - want).abs() <= rtol * want.abs().max(scale) + 1e-300
}

#[test]
fn losskit_loss_matches_torch_on_every_fixture_case() {
    let fx = fixture();
    let cases = fx["cases"].as_array().expect("cases");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut checked = 0;
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let loss = case["loss"].as_str().expect("loss");
        let form = case["form"].as_str().expect("form");
        for f32_mode in [false, true] {
            let input = dir.path().join("in.npz");
            let output = dir.path().join("out.npz");
            let _ = std::fs::remove_file(&output);
            let mut w = NpzWriter::new(File::create(&input).expect("creating npz"));
            let (input_name, grad_name) =
                if form == "binary" { ("scores", "grad_scores") } else { ("logits", "grad_logits") };
            add_float(&mut w, input_name, &dense(&case[input_name]), f32_mode);
            let targets = &case["targets"];
            if form == "binary" {
                add_float(&mut w, "targets", &dense(targets), f32_mode);
            } else if !case["soft_targets"].is_null() {
                add_float(&mut w, "soft_targets", &dense(&case["soft_targets"]), f32_mode);
            } else {
                let t: Vec<i64> =
                    targets.as_array().expect("targets").iter().map(|x| x.as_i64().expect("int")).collect();
                w.add_array("targets", &Array1::from(t)).expect("writing targets");
            }
            if !case["weights"].is_null() {
                add_float(&mut w, "weights", &dense(&case["weights"]), f32_mode);
            }
            for (k, v) in case["vectors"].as_object().expect("vectors") {
                add_float(&mut w, k, &dense(v), f32_mode);
            }
            w.finish().expect("finishing npz");

            let mut cmd = Command::new(env!("CARGO_BIN_EXE_losskit"));
            cmd.args(["loss", loss, "--input"]).arg(&input).arg("--output").arg(&output);
            for (k, v) in case["params"].as_object().expect("params") {
                let v = v.as_str().expect("param text");
                if k == "reduction" {
                    cmd.args(["--reduction", v]);
                } else {
                    cmd.args(["--set", &format!("{k}={v}")]);
                }
            }
            let out = cmd.output().expect("running losskit");
            assert!(out.status.success(), "{name} (f32={f32_mode}): {}", String::from_utf8_lossy(&out.stderr));

            let mut r = NpzReader::new(File::open(&output).expect("opening output")).expect("reading output npz");
            let value = read_float(&mut r, "loss", f32_mode);
            let grad = read_float(&mut r, grad_name, f32_mode);
            let want_value = case["value"].as_f64().expect("value");
            let want_grad = dense(&case["grad"]);
            let rtol = if f32_mode { 1e-5 } else { 1e-10 };
            let got_value = value.into_shape_with_order(IxDyn(&[])).expect("0-d loss")[[]];
            assert!(
                close(got_value, want_value, rtol, 1e-3),
                "{name} (f32={f32_mode}): loss {got_value} vs torch {want_value}"
            );
            assert_eq!(grad.shape(), want_grad.shape(), "{name}: gradient shape");
            let scale = want_grad.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
            for (g, t) in grad.iter().zip(want_grad.iter()) {
                assert!(close(*g, *t, rtol, scale), "{name} (f32={f32_mode}): gradient {g} vs torch {t}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 90, "only {checked} runs checked");
}
