//! Invariants of the real (seeded) samplers on random label distributions: class counts exactly as
//! imbalanced-learn resolves them, rows copied from the right class, valid indices, no duplicates without
//! replacement, output order, determinism for a seed, and the smoothed bootstrap's noise scale.

use std::collections::{BTreeMap, BTreeSet};

use losskit_samplers::{
    Error, RandomOverSampler, RandomUnderSampler, Resampled, Sampler, SamplingKind, SamplingStrategy, class_counts,
};
use ndarray::{Array1, Array2, array};
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;

use crate::common::{data, random_counts, word_strategies};

/// Every output row is the input row `sample_indices` names, with its label.
fn rows_are_copies(x: &Array2<f64>, y: &Array1<i64>, out: &Resampled) {
    let idx = out.sample_indices.as_ref().expect("sample_indices");
    assert_eq!(idx.len(), out.y.len());
    assert_eq!(out.x.nrows(), out.y.len());
    for (r, &i) in idx.iter().enumerate() {
        assert!(i < y.len());
        assert_eq!(out.y[r], y[i]);
        assert_eq!(out.x.row(r), x.row(i));
    }
}

#[test]
fn over_sampler_invariants() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(2024);
    let mut runs = 0;
    for trial in 0..60 {
        let counts = random_counts(&mut rng);
        let (x, y) = data(&counts, 3, trial);
        let n = y.len();
        let before: BTreeMap<i64, usize> = counts.iter().copied().collect();
        for strategy in word_strategies() {
            let Ok(targets) = strategy.resolve(&before, SamplingKind::Over) else {
                assert!(
                    RandomOverSampler::new().sampling_strategy(strategy).fit_resample(x.view(), y.view(), 1).is_err()
                );
                continue;
            };
            let s = RandomOverSampler::new().sampling_strategy(strategy.clone());
            let out = s.fit_resample(x.view(), y.view(), trial).unwrap();
            rows_are_copies(&x, &y, &out);
            let idx = out.sample_indices.as_ref().unwrap();
            // originals first, in order
            assert_eq!(&idx[..n], &(0..n).collect::<Vec<_>>()[..]);
            // then the new rows class by class, ascending
            let new_labels: Vec<i64> = out.y.iter().skip(n).copied().collect();
            assert!(new_labels.windows(2).all(|w| w[0] <= w[1]), "{strategy}");
            // counts: present + generated, exactly
            let after = class_counts(out.y.view());
            for (c, &m) in &before {
                assert_eq!(after[c], m + targets.get(c).copied().unwrap_or(0), "{strategy} class {c}");
            }
            // determinism
            assert_eq!(s.fit_resample(x.view(), y.view(), trial).unwrap(), out);
            runs += 1;
        }
    }
    assert!(runs > 150, "{runs}");
}

#[test]
fn under_sampler_invariants() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(77);
    let mut runs = 0;
    for trial in 0..60 {
        let counts = random_counts(&mut rng);
        let (x, y) = data(&counts, 2, 1000 + trial);
        let before: BTreeMap<i64, usize> = counts.iter().copied().collect();
        for strategy in word_strategies() {
            for replacement in [false, true] {
                let s = RandomUnderSampler::new().sampling_strategy(strategy.clone()).replacement(replacement);
                let Ok(targets) = strategy.resolve(&before, SamplingKind::Under) else {
                    assert!(s.fit_resample(x.view(), y.view(), 1).is_err());
                    continue;
                };
                let out = s.fit_resample(x.view(), y.view(), trial).unwrap();
                rows_are_copies(&x, &y, &out);
                let idx = out.sample_indices.as_ref().unwrap();
                // grouped by class, ascending
                assert!(out.y.as_slice().unwrap().windows(2).all(|w| w[0] <= w[1]));
                let after = class_counts(out.y.view());
                for (c, &m) in &before {
                    let want = targets.get(c).copied().unwrap_or(m);
                    assert_eq!(after.get(c).copied().unwrap_or(0), want, "{strategy} class {c}");
                    let rows: Vec<usize> = idx.iter().copied().filter(|&i| y[i] == *c).collect();
                    if !targets.contains_key(c) {
                        // untouched classes: every row, in input order
                        let all: Vec<usize> = (0..y.len()).filter(|&i| y[i] == *c).collect();
                        assert_eq!(rows, all);
                    } else if !replacement {
                        let distinct: BTreeSet<usize> = rows.iter().copied().collect();
                        assert_eq!(distinct.len(), rows.len(), "duplicates without replacement");
                    }
                }
                assert_eq!(s.fit_resample(x.view(), y.view(), trial).unwrap(), out);
                runs += 1;
            }
        }
    }
    assert!(runs > 300, "{runs}");
}

#[test]
fn seeds_change_the_draw_and_replacement_can_repeat() {
    let (x, y) = data(&[(0, 400), (1, 40)], 2, 5);
    let s = RandomUnderSampler::new();
    let a = s.fit_resample(x.view(), y.view(), 1).unwrap();
    let b = s.fit_resample(x.view(), y.view(), 2).unwrap();
    assert_ne!(a.sample_indices, b.sample_indices);
    // with replacement, 40 draws out of 400 repeat some row with probability ≈ 1 − e^{−2} per seed; over 20 seeds
    // at least one repeat is certain for any sane generator
    let with = RandomUnderSampler::new().replacement(true);
    let repeats = (0..20)
        .filter(|&seed| {
            let out = with.fit_resample(x.view(), y.view(), seed).unwrap();
            let idx = out.sample_indices.unwrap();
            idx.iter().collect::<BTreeSet<_>>().len() < idx.len()
        })
        .count();
    assert!(repeats > 5, "{repeats}");
    let o1 = RandomOverSampler::new().fit_resample(x.view(), y.view(), 1).unwrap();
    let o2 = RandomOverSampler::new().fit_resample(x.view(), y.view(), 2).unwrap();
    assert_ne!(o1.sample_indices, o2.sample_indices);
}

#[test]
fn draws_are_uniform_within_a_class() {
    // Over-sampling 20 000 new rows from a 4-row class: each source row ≈ 5 000 times (±4σ, σ ≈ 61).
    let (x, y) = data(&[(0, 20_004), (1, 4)], 1, 9);
    let out = RandomOverSampler::new().fit_resample(x.view(), y.view(), 3).unwrap();
    let mut hist: BTreeMap<usize, usize> = BTreeMap::new();
    for &i in &out.sample_indices.unwrap()[y.len()..] {
        *hist.entry(i).or_default() += 1;
    }
    assert_eq!(hist.len(), 4);
    assert!(hist.values().all(|&h| (4_755..=5_245).contains(&h)), "{hist:?}");
}

#[test]
fn smoothed_bootstrap_noise_has_the_documented_scale() {
    // Class 1: 50 rows with feature stds ≈ (2, 0.5, 0); 5 000 new rows; residual / (h·κ·σ) ~ N(0, 1).
    let n0 = 5_050;
    let mut x = Array2::<f64>::zeros((n0 + 50, 3));
    let mut y = Array1::<i64>::zeros(n0 + 50);
    for i in 0..50 {
        let t = i as f64 / 49.0 - 0.5;
        x.row_mut(n0 + i).assign(&array![10.0 + 6.9 * t, -3.0 + 1.7 * (i % 7) as f64 / 6.0, 4.0]);
        y[n0 + i] = 1;
    }
    let h = 0.8;
    let out = RandomOverSampler::new().shrinkage(h).fit_resample(x.view(), y.view(), 11).unwrap();
    let n = y.len();
    let kappa = RandomOverSampler::smoothing_constant(n, 3);
    let class: Vec<usize> = (n0..n).collect();
    for j in 0..3 {
        let col: Vec<f64> = class.iter().map(|&i| x[[i, j]]).collect();
        let mean = col.iter().sum::<f64>() / 50.0;
        let std = (col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 50.0).sqrt();
        let idx = out.sample_indices.as_ref().unwrap();
        let res: Vec<f64> = (n..out.y.len()).map(|r| out.x[[r, j]] - x[[idx[r], j]]).collect();
        assert_eq!(res.len(), 5_000);
        if std == 0.0 {
            assert!(res.iter().all(|&r| r == 0.0), "constant feature gets no noise");
            continue;
        }
        let z: Vec<f64> = res.iter().map(|r| r / (h * kappa * std)).collect();
        let zm = z.iter().sum::<f64>() / z.len() as f64;
        let zv = z.iter().map(|v| (v - zm).powi(2)).sum::<f64>() / z.len() as f64;
        assert!(zm.abs() < 0.06 && (zv - 1.0).abs() < 0.06, "feature {j}: mean {zm}, var {zv}");
    }
    // the original rows are untouched
    assert_eq!(out.x.slice(ndarray::s![..n, ..]), x);
}

#[test]
fn zero_shrinkage_copies_rows() {
    // One targeted class: the same draws as the plain bootstrap, zero noise.
    let (x, y) = data(&[(0, 30), (1, 7)], 4, 8);
    let plain = RandomOverSampler::new().fit_resample(x.view(), y.view(), 5).unwrap();
    let zero = RandomOverSampler::new().shrinkage(0.0).fit_resample(x.view(), y.view(), 5).unwrap();
    assert_eq!(plain, zero);
    // Several classes: the noise draws of one class advance the stream (as in imbalanced-learn), so later classes
    // draw other rows, but every row is still an exact copy.
    let (x, y) = data(&[(0, 30), (1, 7), (2, 3)], 4, 8);
    let zero = RandomOverSampler::new().shrinkage(0.0).fit_resample(x.view(), y.view(), 5).unwrap();
    rows_are_copies(&x, &y, &zero);
}

#[test]
fn bad_input_gives_typed_errors_never_panics() {
    let x = array![[0.0, 1.0], [1.0, 2.0], [2.0, 3.0]];
    let y = array![0_i64, 1, 1];
    let samplers: Vec<Box<dyn Sampler>> = vec![Box::new(RandomOverSampler::new()), Box::new(RandomUnderSampler::new())];
    for s in &samplers {
        assert!(matches!(s.fit_resample(x.view(), y.slice(ndarray::s![..2]), 0), Err(Error::Shape { arg: "y", .. })));
        assert!(matches!(
            s.fit_resample(Array2::zeros((0, 2)).view(), Array1::zeros(0).view(), 0),
            Err(Error::Empty { arg: "x" })
        ));
        assert!(matches!(
            s.fit_resample(Array2::zeros((3, 0)).view(), y.view(), 0),
            Err(Error::Shape { arg: "x", .. })
        ));
        let mut bad = x.clone();
        bad[[1, 0]] = f64::INFINITY;
        assert!(matches!(s.fit_resample(bad.view(), y.view(), 0), Err(Error::NonFinite { arg: "x", index: 2, .. })));
        // imbalanced-learn: "The target 'y' needs to have more than 1 class."
        assert!(matches!(s.fit_resample(x.view(), array![5_i64, 5, 5].view(), 0), Err(Error::Degenerate { .. })));
        // a non-contiguous view works like a contiguous copy
        let wide = array![[0.0, 9.0, 1.0], [1.0, 9.0, 2.0], [2.0, 9.0, 3.0]];
        let view = wide.slice(ndarray::s![.., ..;2]);
        assert_eq!(s.fit_resample(view, y.view(), 4).unwrap(), s.fit_resample(x.view(), y.view(), 4).unwrap());
    }
    let per = SamplingStrategy::PerClass([(0, 5)].into_iter().collect());
    assert!(RandomUnderSampler::new().sampling_strategy(per.clone()).fit_resample(x.view(), y.view(), 0).is_err());
    let out = RandomOverSampler::new().sampling_strategy(per).fit_resample(x.view(), y.view(), 0).unwrap();
    assert_eq!(class_counts(out.y.view()).into_iter().collect::<Vec<_>>(), vec![(0, 5), (1, 2)]);
}
