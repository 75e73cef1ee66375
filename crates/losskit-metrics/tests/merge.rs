//! The mergeable-state property: any split of the data into shards, updated separately and merged in any order,
//! gives exactly the counts (and so every metric) of one pass, whatever the thread count.

use losskit_metrics::{ClassificationReport, ConfusionMatrix, MetricState, ReportConfig};
use ndarray::{Array1, Array2, s};
use rand::rngs::Xoshiro256PlusPlus;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};

fn data(rng: &mut Xoshiro256PlusPlus, n: usize, c: usize) -> (Array1<i64>, Array1<i64>) {
    let t: Array1<i64> = (0..n).map(|_| rng.random_range(0..c as i64)).collect();
    // Predictions right 60 % of the time, so the matrix is not uniform.
    let p: Array1<i64> =
        t.iter().map(|&y| if rng.random_range(0.0..1.0) < 0.6 { y } else { rng.random_range(0..c as i64) }).collect();
    (t, p)
}

/// Plain-loop oracle.
fn naive(c: usize, t: &Array1<i64>, p: &Array1<i64>) -> Array2<u64> {
    let mut m = Array2::zeros((c, c));
    for (&a, &b) in t.iter().zip(p) {
        m[[a as usize, b as usize]] += 1;
    }
    m
}

/// Random cut points (duplicates allowed, so some shards are empty).
fn cuts(rng: &mut Xoshiro256PlusPlus, n: usize, shards: usize) -> Vec<usize> {
    let mut c: Vec<usize> = (0..shards - 1).map(|_| rng.random_range(0..=n)).collect();
    c.push(0);
    c.push(n);
    c.sort_unstable();
    c
}

#[test]
fn random_shards_merged_in_random_order_equal_one_pass() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
    // The last size crosses the parallel threshold (2^18 samples) so both counting paths are merged.
    for &(n, c, shards) in &[(1usize, 1usize, 3usize), (50, 2, 4), (997, 5, 7), (10_000, 13, 16), (300_000, 4, 3)] {
        let (t, p) = data(&mut rng, n, c);
        let one_pass = ConfusionMatrix::from_labels(c, t.view(), p.view()).unwrap();
        assert_eq!(one_pass.counts(), &naive(c, &t, &p), "n = {n}");
        for _trial in 0..3 {
            let cut = cuts(&mut rng, n, shards);
            let mut states: Vec<ConfusionMatrix> = cut
                .windows(2)
                .map(|w| ConfusionMatrix::from_labels(c, t.slice(s![w[0]..w[1]]), p.slice(s![w[0]..w[1]])).unwrap())
                .collect();
            states.shuffle(&mut rng);
            let mut merged = ConfusionMatrix::new(c).unwrap();
            for st in &states {
                MetricState::merge(&mut merged, st).unwrap();
            }
            assert_eq!(merged, one_pass, "n = {n}, cuts {cut:?}");
            // Tree-shaped merge (pairs, then pairs of pairs).
            while states.len() > 1 {
                let b = states.pop().unwrap();
                let a = states.last_mut().unwrap();
                a.merge(&b).unwrap();
                states.rotate_right(1);
            }
            assert_eq!(states[0], one_pass);
            // Sequential batches into one state.
            let mut streamed = ConfusionMatrix::new(c).unwrap();
            for w in cut.windows(2) {
                streamed.update(t.slice(s![w[0]..w[1]]), p.slice(s![w[0]..w[1]])).unwrap();
            }
            assert_eq!(streamed, one_pass);
            // Equal counts give bit-identical metrics.
            if n > 1 {
                let cfg = ReportConfig::new();
                assert_eq!(
                    ClassificationReport::new(&merged, &cfg).unwrap(),
                    ClassificationReport::new(&one_pass, &cfg).unwrap()
                );
            }
        }
    }
}

#[test]
fn counts_do_not_depend_on_the_thread_count() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
    let (t, p) = data(&mut rng, 700_000, 9);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| ConfusionMatrix::from_labels(9, t.view(), p.view()).unwrap())
    };
    let one = run(1);
    assert_eq!(one.counts(), &naive(9, &t, &p));
    for threads in [2, 3, 8] {
        assert_eq!(run(threads), one, "{threads} threads");
    }
}

#[test]
fn merging_an_empty_state_is_the_identity_and_reset_starts_over() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
    let (t, p) = data(&mut rng, 100, 3);
    let mut cm = ConfusionMatrix::from_labels(3, t.view(), p.view()).unwrap();
    let before = cm.clone();
    cm.merge(&ConfusionMatrix::new(3).unwrap()).unwrap();
    assert_eq!(cm, before);
    MetricState::reset(&mut cm);
    assert_eq!(cm, ConfusionMatrix::new(3).unwrap());
    cm.update(t.view(), p.view()).unwrap();
    assert_eq!(cm, before);
}
