//! The inductive-bias estimate against scipy's `ncx2` (logpdf, logcdf, fit with floc=0), mpmath in the far left
//! tail and the reference code's Sankaran approximation (`tools/fixtures/gen_metrics_inductive_bias.py`).

use losskit_metrics::{InductiveBiasState, MetricState, NoncentralChi2, inductive_bias};
use ndarray::{Array1, array, s};

use crate::util::{fixture, nums};

fn dist(v: &serde_json::Value) -> NoncentralChi2 {
    NoncentralChi2::new(v["df"].as_f64().unwrap(), v["nc"].as_f64().unwrap(), v["scale"].as_f64().unwrap()).unwrap()
}

#[track_caller]
fn rel(got: f64, want: f64, tol: f64, what: &str) {
    assert!((got - want).abs() <= tol * want.abs().max(1.0), "{what}: got {got}, reference {want}");
}

#[test]
fn log_pdf_and_log_cdf_match_scipy() {
    let f = fixture("inductive_bias.json");
    for p in f["points"].as_array().unwrap() {
        let d = dist(p);
        let x = p["x"].as_f64().unwrap();
        let what = format!("{d:?} at {x}");
        rel(d.ln_pdf(x), p["logpdf"].as_f64().unwrap(), 1e-10, &format!("logpdf {what}"));
        rel(d.ln_cdf(x), p["logcdf"].as_f64().unwrap(), 1e-10, &format!("logcdf {what}"));
    }
}

#[test]
fn far_tail_matches_mpmath_and_sankaran_matches_the_reference_code() {
    let f = fixture("inductive_bias.json");
    for p in f["far_tail"].as_array().unwrap() {
        let d = dist(p);
        let x = p["x"].as_f64().unwrap();
        rel(d.ln_cdf(x), p["logcdf_mpmath"].as_f64().unwrap(), 1e-11, &format!("far tail {d:?} at {x}"));
        rel(d.sankaran_neg_ln_cdf(x), p["sankaran"].as_f64().unwrap(), 1e-12, &format!("sankaran {d:?} at {x}"));
        let ib = d.inductive_bias(x);
        assert!(!ib.normal_approximation && (ib.bits - ib.nats / std::f64::consts::LN_2).abs() < 1e-12);
    }
}

#[test]
fn fit_is_at_least_as_good_as_scipy() {
    let f = fixture("inductive_bias.json");
    for p in f["fits"].as_array().unwrap() {
        let losses = Array1::from(nums(&p["losses"]));
        let scipy = dist(p);
        let scipy_nll = p["nll"].as_f64().unwrap();
        // Our log-density at scipy's optimum agrees with scipy's.
        rel(scipy.neg_log_likelihood(losses.view()), scipy_nll, 1e-10, "nll at scipy's fit");
        let ours = NoncentralChi2::fit(losses.view()).unwrap();
        let nll = ours.neg_log_likelihood(losses.view());
        assert!(nll <= scipy_nll + 1e-9 * scipy_nll.abs(), "ours {ours:?} nll {nll} vs scipy {scipy:?} {scipy_nll}");
        // The likelihood is flat along a ridge (df, nc trade off), so compare the estimate, not the parameters.
        let eps = p["target_error"].as_f64().unwrap();
        let ib = inductive_bias(losses.view(), eps).unwrap();
        let want = p["inductive_bias"].as_f64().unwrap();
        assert!((ib.nats - want).abs() <= 0.02 * want, "IB {} vs scipy {want} ({ours:?} vs {scipy:?})", ib.nats);
        // State: shards merged in order equal one pass exactly.
        let n = losses.len();
        let mut a = InductiveBiasState::new(eps).unwrap();
        a.update(losses.slice(s![..n / 3])).unwrap();
        let mut b = InductiveBiasState::new(eps).unwrap();
        b.update(losses.slice(s![n / 3..])).unwrap();
        a.merge(&b).unwrap();
        assert_eq!(a.compute().unwrap(), ib);
    }
}

#[test]
fn spec_oracles() {
    // nc = 0, df = 2, scale = 1: F(ε) = 1 − e^{−ε/2}; IB(2) = −ln(1 − e^{−1}) = 0.458675.
    let d = NoncentralChi2::new(2.0, 0.0, 1.0).unwrap();
    let ib = d.inductive_bias(2.0);
    assert!((ib.nats - 0.458_675_145_387_081_9).abs() < 1e-14 && !ib.normal_approximation);
    // IB is non-increasing in ε and tends to 0.
    let d = NoncentralChi2::new(3.0, 2.0, 0.05).unwrap();
    let mut last = f64::INFINITY;
    for e in [1e-6, 1e-3, 0.01, 0.1, 0.3, 1.0, 3.0, 10.0] {
        let v = d.inductive_bias(e).nats;
        assert!(v <= last && v >= 0.0, "{e}: {v}");
        last = v;
    }
    assert!(last < 1e-12);
    // ε = 0: F = 0 exactly, so the code falls back to the normal approximation, as the reference code does.
    let ib = d.inductive_bias(0.0);
    assert!(ib.normal_approximation && ib.nats.is_finite() && ib.nats == d.sankaran_neg_ln_cdf(0.0));
}

#[test]
fn bad_input_is_an_error() {
    assert!(NoncentralChi2::fit(array![1.0].view()).is_err());
    assert!(NoncentralChi2::fit(array![1.0, f64::NAN].view()).is_err());
    assert!(NoncentralChi2::fit(array![1.0, -1.0].view()).is_err());
    assert!(NoncentralChi2::fit(array![0.5, 0.5, 0.5].view()).is_err());
    assert!(inductive_bias(array![0.5, 0.7].view(), f64::NAN).is_err());
    let mut st = InductiveBiasState::new(0.1).unwrap();
    assert!(st.update(array![0.0].view()).is_err());
    assert!(st.compute().is_err());
    assert!(st.merge(&InductiveBiasState::new(0.2).unwrap()).is_err());
}
