//! Neural-collapse metrics against the numpy oracle of `tools/fixtures/gen_metrics_collapse.py` (D × D Σ_B and
//! `np.linalg.pinv`), merge-equals-one-pass, and the spec's hand oracles.

use losskit_metrics::{
    GlobalMean, MetricState, NccMismatch, NeuralCollapse, NeuralCollapseConfig, NeuralCollapseReport,
};
use ndarray::{Array1, Array2, array, s};
use serde_json::Value;

use crate::util::{assert_all_close, assert_close, fixture, ints, matrix_f64, nums};

struct Case {
    name: String,
    n_classes: usize,
    config: NeuralCollapseConfig,
    features: Array2<f64>,
    labels: Array1<i64>,
    weight: Option<Array2<f64>>,
    bias: Option<Array1<f64>>,
    expected: Value,
}

fn cases() -> Vec<Case> {
    let f = fixture("neural_collapse.json");
    f["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap().to_string(),
            n_classes: c["n_classes"].as_u64().unwrap() as usize,
            config: NeuralCollapseConfig::new().rcond(c["rcond"].as_f64().unwrap()).global_mean(match c["global_mean"]
                .as_str()
                .unwrap()
            {
                "samples" => GlobalMean::Samples,
                _ => GlobalMean::ClassMeans,
            }),
            features: matrix_f64(&c["features"]),
            labels: Array1::from(ints(&c["labels"])),
            weight: (!c["weight"].is_null()).then(|| matrix_f64(&c["weight"])),
            bias: (!c["bias"].is_null()).then(|| Array1::from(nums(&c["bias"]))),
            expected: c["expected"].clone(),
        })
        .collect()
}

fn check_report(r: &NeuralCollapseReport, e: &Value, name: &str) {
    let tol = 1e-9;
    assert_eq!(r.classes, ints(&e["classes"]).iter().map(|&c| c as usize).collect::<Vec<_>>(), "{name}");
    assert_eq!(r.counts, ints(&e["counts"]).iter().map(|&c| c as u64).collect::<Vec<_>>(), "{name}");
    let rel = |got: f64, want: f64, what: &str| {
        assert_close(got, want, tol * want.abs().max(1.0), &format!("{name}: {what}"));
    };
    rel(r.nc1, e["nc1"].as_f64().unwrap(), "nc1");
    rel(r.equinorm, e["equinorm"].as_f64().unwrap(), "equinorm");
    rel(r.equiangularity, e["equiangularity"].as_f64().unwrap(), "equiangularity");
    rel(r.max_angle, e["max_angle"].as_f64().unwrap(), "max_angle");
    rel(r.etf_distance, e["etf_distance"].as_f64().unwrap(), "etf_distance");
    rel(r.orthogonality, e["orthogonality"].as_f64().unwrap(), "orthogonality");
    rel(r.norm_ratio, e["norm_ratio"].as_f64().unwrap(), "norm_ratio");
    rel(r.count_ratio, e["count_ratio"].as_f64().unwrap(), "count_ratio");
    assert_all_close(&r.mean_norms, &nums(&e["mean_norms"]), 1e-9 * 1e4, &format!("{name}: mean_norms"));
    match &r.self_duality {
        Some(v) => {
            rel(*v, e["self_duality"].as_f64().unwrap(), "self_duality");
            rel(r.classifier_orthogonality.unwrap(), e["classifier_orthogonality"].as_f64().unwrap(), "w orth");
            assert_all_close(r.classifier_norms.as_ref().unwrap(), &nums(&e["classifier_norms"]), tol, name);
        }
        None => assert!(e.get("self_duality").is_none(), "{name}: nc3 expected"),
    }
}

#[test]
fn neural_collapse_matches_numpy() {
    for c in cases() {
        let d = c.features.ncols();
        let mut nc = NeuralCollapse::new(c.n_classes, d).unwrap();
        nc.update(c.features.view(), c.labels.view()).unwrap();
        let r = nc.report(&c.config, c.weight.as_ref().map(|w| w.view())).unwrap();
        check_report(&r, &c.expected, &c.name);
        let sw = matrix_f64(&c.expected["within_covariance"]);
        for (g, w) in nc.within_covariance().iter().zip(sw.iter()) {
            assert_close(*g, *w, 1e-9, &format!("{}: within covariance", c.name));
        }
        if let Some(w) = &c.weight {
            let mut nc4 = nc.ncc(w.view(), c.bias.as_ref().map(|b| b.view())).unwrap();
            nc4.update(c.features.view()).unwrap();
            assert_eq!(nc4.compute().unwrap(), c.expected["nc4"].as_f64().unwrap(), "{}: nc4", c.name);
        }
    }
}

#[test]
fn merging_shards_equals_one_pass() {
    for c in cases() {
        let (n, d) = c.features.dim();
        let mut whole = NeuralCollapse::new(c.n_classes, d).unwrap();
        whole.update(c.features.view(), c.labels.view()).unwrap();
        // Uneven shards, one of them empty, merged out of order; also batch-by-batch updates of one state.
        let cuts = [0, n / 5, n / 5, n / 2, n - 1, n];
        let mut parts: Vec<NeuralCollapse> = cuts
            .windows(2)
            .map(|w| {
                let mut st = NeuralCollapse::new(c.n_classes, d).unwrap();
                st.update(c.features.slice(s![w[0]..w[1], ..]), c.labels.slice(s![w[0]..w[1]])).unwrap();
                st
            })
            .collect();
        parts.reverse();
        let mut merged = parts[0].clone();
        for p in &parts[1..] {
            merged.merge(p).unwrap();
        }
        let mut streamed = NeuralCollapse::new(c.n_classes, d).unwrap();
        for w in cuts.windows(2) {
            streamed.update(c.features.slice(s![w[0]..w[1], ..]), c.labels.slice(s![w[0]..w[1]])).unwrap();
        }
        let one = whole.report(&c.config, c.weight.as_ref().map(|w| w.view())).unwrap();
        for st in [&merged, &streamed] {
            assert_eq!(st.counts(), whole.counts());
            let r = st.report(&c.config, c.weight.as_ref().map(|w| w.view())).unwrap();
            let scale = one.nc1.abs().max(1.0);
            assert!((r.nc1 - one.nc1).abs() <= 1e-10 * scale, "{}: {} vs {}", c.name, r.nc1, one.nc1);
            assert!((r.etf_distance - one.etf_distance).abs() <= 1e-10, "{}", c.name);
            assert!((r.equinorm - one.equinorm).abs() <= 1e-10, "{}", c.name);
        }
        if let Some(w) = &c.weight {
            let mk = || whole.ncc(w.view(), c.bias.as_ref().map(|b| b.view())).unwrap();
            let (mut a, mut b) = (mk(), mk());
            a.update(c.features.slice(s![..n / 3, ..])).unwrap();
            b.update(c.features.slice(s![n / 3.., ..])).unwrap();
            a.merge(&b).unwrap();
            let mut one4 = mk();
            one4.update(c.features.view()).unwrap();
            assert_eq!(a.compute().unwrap(), one4.compute().unwrap());
        }
    }
}

#[test]
fn spec_oracles() {
    // Features equal to their class means ⇒ NC1 = 0; C = 2 with μ̃₁ = −μ̃₂ ⇒ cos = −1 = −1/(C−1).
    let h = array![[2.0, 1.0, 0.0], [2.0, 1.0, 0.0], [-2.0, -1.0, 0.0], [-2.0, -1.0, 0.0], [2.0, 1.0, 0.0]];
    let mut nc = NeuralCollapse::new(2, 3).unwrap();
    nc.update(h.view(), array![0_i64, 0, 1, 1, 0].view()).unwrap();
    let r = nc.report(&NeuralCollapseConfig::new().global_mean(GlobalMean::ClassMeans), None).unwrap();
    assert_eq!(r.nc1, 0.0);
    assert!(r.max_angle.abs() < 1e-15 && r.equiangularity == 0.0 && r.equinorm.abs() < 1e-15);
    assert!(r.etf_distance < 1e-15, "{}", r.etf_distance);
    // A simplex ETF of 3 classes in the plane, with within-class noise: NC2 deviations ~0, NC1 > 0.
    let t = std::f64::consts::TAU / 3.0;
    let centres: Vec<[f64; 2]> = (0..3).map(|k| [(k as f64 * t).cos(), (k as f64 * t).sin()]).collect();
    let mut h = Array2::zeros((6, 2));
    let mut y = Array1::zeros(6);
    for i in 0..6 {
        let k = i % 3;
        let e = if i < 3 { 0.1 } else { -0.1 };
        h[[i, 0]] = centres[k][0] + e;
        h[[i, 1]] = centres[k][1] - e;
        y[i] = k as i64;
    }
    let mut nc = NeuralCollapse::new(3, 2).unwrap();
    nc.update(h.view(), y.view()).unwrap();
    let r = nc.compute().unwrap();
    assert!(r.etf_distance < 1e-12 && r.max_angle < 1e-12 && r.equinorm < 1e-12, "{r:?}");
    // Σ_W = 0.01·[[1, −1], [−1, 1]], Σ_B = I/2 ⇒ tr(Σ_W Σ_B⁺)/3 = 0.04/3.
    assert!((r.nc1 - 0.04 / 3.0).abs() < 1e-14, "{}", r.nc1);
    // Orthogonal uncentred means ⇒ orthogonality 0; norm ratio follows the class sizes.
    let h = array![[3.0, 0.0], [3.0, 0.0], [3.0, 0.0], [0.0, 1.0]];
    let mut nc = NeuralCollapse::new(2, 2).unwrap();
    nc.update(h.view(), array![0_i64, 0, 0, 1].view()).unwrap();
    let r = nc.compute().unwrap();
    assert_eq!((r.orthogonality, r.norm_ratio, r.count_ratio), (0.0, 3.0, 3.0));
}

#[test]
fn bad_input_is_an_error() {
    let mut nc = NeuralCollapse::new(3, 2).unwrap();
    assert!(NeuralCollapse::new(1, 2).is_err() && NeuralCollapse::new(2, 0).is_err());
    assert!(nc.update(array![[1.0, 2.0]].view(), array![3_i64].view()).is_err());
    assert!(nc.update(array![[1.0, f64::NAN]].view(), array![0_i64].view()).is_err());
    assert!(nc.update(array![[1.0, 2.0, 3.0]].view(), array![0_i64].view()).is_err());
    assert!(nc.update(array![[1.0, 2.0]].view(), array![0_i64, 1].view()).is_err());
    assert!(nc.compute().is_err(), "no data");
    nc.update(array![[1.0, 2.0], [0.0, 1.0]].view(), array![0_i64, 1].view()).unwrap();
    assert!(nc.report(&NeuralCollapseConfig::new(), Some(array![[1.0, 2.0]].view())).is_err());
    assert!(nc.merge(&NeuralCollapse::new(3, 4).unwrap()).is_err());
    let m = array![[0.0, 0.0], [1.0, 1.0]];
    assert!(NccMismatch::new(m.view(), array![[1.0, 0.0]].view(), None).is_err());
    let mut nc4 = NccMismatch::new(m.view(), m.view(), None).unwrap();
    assert!(nc4.compute().is_err());
    assert!(nc4.update(array![[1.0]].view()).is_err());
}
