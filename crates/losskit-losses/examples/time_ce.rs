//! Times cross-entropy and focal loss (forward + backward, and forward alone) on the benchmark shapes.
//!
//! ```text
//! LOSSKIT_THREADS=2 cargo run --release -p losskit-losses --example time_ce [-- K [NxC]]
//! ```
//! Prints one line per (loss, shape, pass) with the median and minimum of K runs (default 30) in ms; `NxC` times
//! that shape alone instead of the two benchmark shapes. The rayon pool
//! has `LOSSKIT_THREADS` threads (default: the number of CPUs). Logits are standard normal f32 from a seeded PRNG.

use std::time::Instant;

use losskit_losses::{ClassLoss, CrossEntropy, Focal, Targets};
use ndarray::Array2;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

fn batch(n: usize, c: usize, seed: u64) -> (Array2<f32>, Vec<i64>) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let logits = Array2::from_shape_simple_fn((n, c), || {
        // Box–Muller: one standard normal from two uniforms.
        let u1: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
        let u2: f64 = rng.random();
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    });
    let labels = (0..n).map(|_| rng.random_range(0..c as i64)).collect();
    (logits, labels)
}

fn time(k: usize, mut f: impl FnMut()) -> (f64, f64) {
    f(); // warm-up
    let mut ms: Vec<f64> = (0..k)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    (ms[ms.len() / 2], ms[0])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let k: usize = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(30);
    let shapes = match std::env::args().nth(2) {
        Some(s) => {
            let (n, c) = s.split_once('x').ok_or("shape must be NxC")?;
            vec![(n.parse()?, c.parse()?)]
        }
        None => vec![(4096, 1000), (1024, 32000)],
    };
    let threads = std::env::var("LOSSKIT_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
    println!("threads={threads} runs={k}");
    for (n, c) in shapes {
        let (logits, labels) = batch(n, c, 7);
        let losses: [(&str, Box<dyn ClassLoss<f32> + Sync>); 2] =
            [("cross-entropy", Box::new(CrossEntropy::new())), ("focal", Box::new(Focal::new()))];
        for (name, loss) in &losses {
            for grad in [true, false] {
                let (med, min) = pool.install(|| {
                    time(k, || {
                        let out = loss.compute(logits.view(), Targets::hard(&labels), None, grad);
                        std::hint::black_box(out.ok());
                    })
                });
                let pass = if grad { "fwd+bwd" } else { "fwd" };
                println!("{name}/f32/{n}x{c} {pass:7} median_ms={med:.3} min_ms={min:.3}");
            }
        }
    }
    Ok(())
}
