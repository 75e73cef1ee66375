//! Slow, independent transcriptions of each formula in plain f64 loops (std exp/ln, no shared driver), compared with
//! the library on random problems over the parameter space.

use losskit_losses::{
    BinaryCrossEntropy, BinaryLoss, ClassLoss, CrossEntropy, Focal, Reduction, SigmoidFocal, Targets,
};
use ndarray::{Array1, Array2};
use rand::RngExt;

use crate::common::{assert_close, assert_rel, normal, rng};

/// log-softmax of one row (max-shifted).
fn log_softmax(z: &[f64]) -> Vec<f64> {
    let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let lse = m + z.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
    z.iter().map(|v| v - lse).collect()
}

/// (value, per_sample) from unreduced losses, sample weights and denominators.
fn reduce(loss: &[f64], s: &[f64], d: &[f64], r: Reduction) -> (f64, Vec<f64>) {
    let per: Vec<f64> = loss.iter().zip(s).map(|(l, s)| l * s).collect();
    let sum: f64 = per.iter().sum();
    let value = match r {
        Reduction::Mean => sum / s.iter().zip(d).map(|(s, d)| s * d).sum::<f64>(),
        _ => sum,
    };
    (value, per)
}

struct CeCase {
    w: Option<Vec<f64>>,
    eps: f64,
    t: f64,
    ignore: i64,
}

fn ce_hard_oracle(x: &Array2<f64>, y: &[i64], s: &[f64], cfg: &CeCase, r: Reduction) -> (f64, Vec<f64>) {
    let c = x.ncols();
    let wc = |k: usize| cfg.w.as_ref().map_or(1.0, |w| w[k]);
    let (mut loss, mut d) = (vec![0.0; y.len()], vec![0.0; y.len()]);
    for (i, row) in x.rows().into_iter().enumerate() {
        if y[i] == cfg.ignore {
            continue;
        }
        let z: Vec<f64> = row.iter().map(|v| v / cfg.t).collect();
        let lp = log_softmax(&z);
        let yi = y[i] as usize;
        let smooth: f64 = (0..c).map(|k| -wc(k) * lp[k]).sum();
        loss[i] = (1.0 - cfg.eps) * wc(yi) * -lp[yi] + cfg.eps / c as f64 * smooth;
        d[i] = wc(yi);
    }
    reduce(&loss, s, &d, r)
}

fn ce_soft_oracle(x: &Array2<f64>, t: &Array2<f64>, s: &[f64], cfg: &CeCase, r: Reduction) -> (f64, Vec<f64>) {
    let c = x.ncols();
    let wc = |k: usize| cfg.w.as_ref().map_or(1.0, |w| w[k]);
    let mut loss = vec![0.0; x.nrows()];
    for (i, row) in x.rows().into_iter().enumerate() {
        let z: Vec<f64> = row.iter().map(|v| v / cfg.t).collect();
        let lp = log_softmax(&z);
        loss[i] = (0..c).map(|k| -wc(k) * ((1.0 - cfg.eps) * t[[i, k]] + cfg.eps / c as f64) * lp[k]).sum();
    }
    reduce(&loss, s, &vec![1.0; x.nrows()], r)
}

fn focal_oracle(x: &Array2<f64>, y: &[i64], s: &[f64], gamma: f64, w: Option<&[f64]>, r: Reduction) -> (f64, Vec<f64>) {
    let (mut loss, mut d) = (vec![0.0; y.len()], vec![0.0; y.len()]);
    for (i, row) in x.rows().into_iter().enumerate() {
        if y[i] == -100 {
            continue;
        }
        let yi = y[i] as usize;
        let lp = log_softmax(&row.to_vec())[yi];
        let p = lp.exp();
        let a = w.map_or(1.0, |w| w[yi]);
        loss[i] = -a * (1.0 - p).powf(gamma) * lp;
        d[i] = a;
    }
    reduce(&loss, s, &d, r)
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn bce_oracle(x: &[f64], t: &[f64], s: &[f64], pw: f64, r: Reduction) -> (f64, Vec<f64>) {
    // −[pw·y·log σ(x) + (1 − y)·log(1 − σ(x))] with 1 − σ(x) = σ(−x) (fine for |x| < 30).
    let loss: Vec<f64> =
        x.iter().zip(t).map(|(&x, &y)| -(pw * y * sigmoid(x).ln() + (1.0 - y) * sigmoid(-x).ln())).collect();
    reduce(&loss, s, &vec![1.0; x.len()], r)
}

fn sigmoid_focal_oracle(x: &[f64], t: &[f64], s: &[f64], gamma: f64, alpha: f64, r: Reduction) -> (f64, Vec<f64>) {
    let loss: Vec<f64> = x
        .iter()
        .zip(t)
        .map(|(&x, &y)| {
            let p = sigmoid(x);
            let ce = -(y * p.ln() + (1.0 - y) * sigmoid(-x).ln());
            let pt = p * y + (1.0 - p) * (1.0 - y);
            let at = if alpha >= 0.0 { alpha * y + (1.0 - alpha) * (1.0 - y) } else { 1.0 };
            at * ce * (1.0 - pt).powf(gamma)
        })
        .collect();
    reduce(&loss, s, &vec![1.0; x.len()], r)
}

const REDUCTIONS: [Reduction; 3] = [Reduction::Mean, Reduction::Sum, Reduction::None];

fn random_matrix(seed: u64, n: usize, c: usize, scale: f64) -> Array2<f64> {
    let mut r = rng(seed);
    Array2::from_shape_simple_fn((n, c), || scale * normal(&mut r))
}

#[test]
fn cross_entropy_matches_the_loop_oracle() {
    let mut r = rng(11);
    for trial in 0..40 {
        let (n, c) = (r.random_range(1..12), r.random_range(1..9));
        let x = random_matrix(1000 + trial, n, c, 3.0);
        let ignore = if trial % 3 == 0 || c == 1 { -100 } else { r.random_range(0..c as i64) };
        let mut y: Vec<i64> = (0..n).map(|_| r.random_range(0..c as i64)).collect();
        if trial % 2 == 0 {
            y[0] = ignore;
        }
        if y.iter().all(|&v| v == ignore) {
            y[n - 1] = if ignore == -100 { 0 } else { (ignore + 1) % c as i64 };
        }
        let cfg = CeCase {
            w: (trial % 2 == 1).then(|| (0..c).map(|_| r.random_range(0.1..3.0)).collect()),
            eps: [0.0, 0.1, 0.5][trial as usize % 3],
            t: [1.0, 0.7, 2.5, 1.0][trial as usize % 4],
            ignore,
        };
        let s: Vec<f64> = (0..n).map(|_| if trial % 4 == 3 { r.random_range(0.2..2.0) } else { 1.0 }).collect();
        for red in REDUCTIONS {
            let mut ce = CrossEntropy::new().label_smoothing(cfg.eps).temperature(cfg.t).ignore_index(cfg.ignore);
            ce.class_weights = cfg.w.clone();
            let ce = ce.reduction(red);
            let sw = Array1::from(s.clone());
            let got = ce.compute(x.view(), Targets::hard(&y), Some(sw.view()), false).unwrap();
            let (value, per) = ce_hard_oracle(&x, &y, &s, &cfg, red);
            let what = format!("trial {trial} {red}");
            assert_rel(&what, got.value, value, 1e-12);
            assert_close(&what, &got.per_sample.unwrap().to_vec(), &per, 1e-12);
            let t = random_matrix(2000 + trial, n, c, 1.0).mapv(f64::abs);
            let got = ce.compute(x.view(), Targets::soft(t.view()), Some(sw.view()), false).unwrap();
            let (value, per) = ce_soft_oracle(&x, &t, &s, &cfg, red);
            assert_rel(&format!("{what} soft"), got.value, value, 1e-12);
            assert_close(&format!("{what} soft"), &got.per_sample.unwrap().to_vec(), &per, 1e-12);
        }
    }
}

#[test]
fn focal_matches_the_loop_oracle() {
    let mut r = rng(12);
    for trial in 0..30 {
        let (n, c) = (r.random_range(2..12), r.random_range(1..9));
        let x = random_matrix(3000 + trial, n, c, 3.0);
        let mut y: Vec<i64> = (0..n).map(|_| r.random_range(0..c as i64)).collect();
        y[1] = -100;
        let gamma = [0.0, 0.5, 1.0, 2.0, 4.5][trial as usize % 5];
        let w: Option<Vec<f64>> = (trial % 2 == 1).then(|| (0..c).map(|_| r.random_range(0.1..3.0)).collect());
        let s: Vec<f64> = (0..n).map(|_| r.random_range(0.2..2.0)).collect();
        for red in REDUCTIONS {
            let mut f = Focal::new().gamma(gamma).reduction(red);
            f.class_weights = w.clone();
            let sw = Array1::from(s.clone());
            let got = f.compute(x.view(), Targets::hard(&y), Some(sw.view()), false).unwrap();
            let (value, per) = focal_oracle(&x, &y, &s, gamma, w.as_deref(), red);
            let what = format!("trial {trial} {red}");
            assert_rel(&what, got.value, value, 1e-12);
            assert_close(&what, &got.per_sample.unwrap().to_vec(), &per, 1e-12);
        }
    }
}

#[test]
fn binary_losses_match_the_loop_oracles() {
    let mut r = rng(13);
    for trial in 0..30 {
        let n = r.random_range(1..20);
        let x: Vec<f64> = (0..n).map(|_| 4.0 * normal(&mut r)).collect();
        let t: Vec<f64> = (0..n)
            .map(|_| if trial % 2 == 0 { r.random_range(0..2) as f64 } else { r.random_range(0.0..1.0) })
            .collect();
        let s: Vec<f64> = (0..n).map(|_| r.random_range(0.2..2.0)).collect();
        let (xa, ta, sa) = (Array1::from(x.clone()), Array1::from(t.clone()), Array1::from(s.clone()));
        let pw = [1.0, 0.3, 2.5][trial as usize % 3];
        let (gamma, alpha) = ([0.0, 0.5, 2.0, 3.0][trial as usize % 4], [0.25, -1.0, 0.7][trial as usize % 3]);
        for red in REDUCTIONS {
            let what = format!("trial {trial} {red}");
            let got = BinaryCrossEntropy::new()
                .pos_weight(pw)
                .reduction(red)
                .compute(xa.view(), ta.view(), Some(sa.view()), false)
                .unwrap();
            let (value, per) = bce_oracle(&x, &t, &s, pw, red);
            assert_rel(&format!("bce {what}"), got.value, value, 1e-12);
            assert_close(&format!("bce {what}"), &got.per_sample.unwrap().to_vec(), &per, 1e-12);
            let got = SigmoidFocal::new()
                .gamma(gamma)
                .alpha(alpha)
                .reduction(red)
                .compute(xa.view(), ta.view(), Some(sa.view()), false)
                .unwrap();
            let (value, per) = sigmoid_focal_oracle(&x, &t, &s, gamma, alpha, red);
            assert_rel(&format!("sigmoid focal {what}"), got.value, value, 1e-11);
            assert_close(&format!("sigmoid focal {what}"), &got.per_sample.unwrap().to_vec(), &per, 1e-11);
        }
    }
}
