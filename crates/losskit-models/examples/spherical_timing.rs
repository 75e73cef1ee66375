//! Step time of the spherical (factored) Z-loss output layer against the dense layer as D grows, d = 128.
//!
//! `cargo run --release -p losskit-models --example spherical_timing [-- D1 D2 ...]` prints a Markdown table: the
//! median time of one SGD step on a minibatch of m = 32 for each layer, and the O(D·d²) re-orthogonalisation that
//! the factored layer pays once every `renorm_every` steps.

use std::time::Instant;

use losskit_losses::ZLoss;
use losskit_models::{DenseZOutput, SphericalZOutput};
use ndarray::Array2;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), losskit_tensor::Error> {
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![10_000, 100_000, 1_000_000] } else { sizes };
    let (d, m, reps) = (128, 32, 7);
    let mut r = Xoshiro256PlusPlus::seed_from_u64(1);
    println!("| D | d | m | spherical step (ms) | dense step (ms) | dense / spherical | renormalise (ms) |");
    println!("|---|---|---|---|---|---|---|");
    for &dd in &sizes {
        let w0 = Array2::from_shape_simple_fn((dd, d), || r.random_range(-0.05..0.05));
        let batches: Vec<(Array2<f64>, Vec<usize>)> = (0..reps)
            .map(|_| {
                let h = Array2::from_shape_simple_fn((m, d), || r.random_range(-1.0..1.0));
                (h, (0..m).map(|_| r.random_range(0..dd)).collect())
            })
            .collect();
        let z = ZLoss::new(0.1, 10.0);
        let mut sph = SphericalZOutput::new(w0.view(), z.clone(), 0.01)?.renorm_every(0);
        let mut times = Vec::new();
        for (h, t) in &batches {
            let t0 = Instant::now();
            std::hint::black_box(sph.step(h.view(), t)?);
            times.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        let s = median(times);
        let t0 = Instant::now();
        sph.renormalize();
        let renorm = t0.elapsed().as_secs_f64() * 1e3;
        drop(sph);
        let mut dense = DenseZOutput::new(w0.view(), z, 0.01)?;
        let mut times = Vec::new();
        for (h, t) in &batches {
            let t0 = Instant::now();
            std::hint::black_box(dense.step(h.view(), t)?);
            times.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        let dn = median(times);
        println!("| {dd} | {d} | {m} | {s:.3} | {dn:.1} | {:.0}× | {renorm:.0} |", dn / s);
    }
    Ok(())
}
