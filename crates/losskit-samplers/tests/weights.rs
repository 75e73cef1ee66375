//! Loss-based reweighting against NumPy, DBSCAN and k-means against scikit-learn, and the batch samplers'
//! invariants (fixtures from `tools/fixtures/gen_samplers_weights.py`).

use std::collections::BTreeMap;

use losskit_samplers::{
    ClassBalanced, Dbscan, DualSampler, KMeans, LossReweight, MPerClass, ReweightStrategy, cluster_likelihoods,
    reweight, sbcl_subclasses,
};
use ndarray::{Array1, Array2};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use serde_json::Value;

use crate::common::fixture;

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|e| e.as_f64().unwrap()).collect()
}

fn matrix(v: &Value) -> Array2<f64> {
    let rows: Vec<Vec<f64>> = v.as_array().unwrap().iter().map(floats).collect();
    Array2::from_shape_vec((rows.len(), rows[0].len()), rows.concat()).unwrap()
}

#[test]
fn reweighting_matches_numpy() {
    let f = fixture("reweight.json");
    let cases = f["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 90);
    for case in cases {
        let losses = Array1::from(floats(&case["losses"]));
        let strategy: ReweightStrategy = case["strategy"].as_str().unwrap().parse().unwrap();
        let cfg = LossReweight::new()
            .strategy(strategy)
            .temperature(case["r"].as_f64().unwrap())
            .delta(case["delta"].as_f64().unwrap());
        let norm = cfg.normalized(losses.view()).unwrap();
        for (g, w) in norm.iter().zip(floats(&case["normalized"])) {
            assert!((g - w).abs() <= 1e-12 * (1.0 + w.abs()), "{strategy} normalized {g} vs {w}");
        }
        let got = cfg.weights(losses.view()).unwrap();
        for (g, w) in got.iter().zip(floats(&case["weights"])) {
            assert!((g - w).abs() <= 1e-12 * w.max(1e-300) + 1e-300, "{strategy}: {g} vs {w}");
        }
        if case["delta"].as_f64() == Some(1.0) {
            assert_eq!(reweight(losses.view(), strategy, case["r"].as_f64().unwrap()).unwrap(), got);
        }
    }
}

#[test]
fn dbscan_labels_equal_scikit_learn() {
    let f = fixture("clustering.json");
    for case in f["dbscan"].as_array().unwrap() {
        let x = matrix(&case["x"]);
        let want: Vec<i64> = case["labels"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
        let db = Dbscan::new()
            .eps(case["eps"].as_f64().unwrap())
            .min_samples(case["min_samples"].as_u64().unwrap() as usize);
        let got = db.fit(x.view()).unwrap();
        assert_eq!(got.to_vec(), want);
        // DatasetEquity likelihoods from those labels, against sizes counted here.
        let p = cluster_likelihoods(got.view()).unwrap();
        let mut sizes: BTreeMap<i64, usize> = BTreeMap::new();
        for &l in &want {
            *sizes.entry(l).or_default() += 1;
        }
        let max = *sizes.values().max().unwrap() as f64;
        for (pi, l) in p.iter().zip(&want) {
            assert_eq!(*pi, sizes[l] as f64 / max);
        }
    }
}

/// Whether two labelings are the same partition.
fn same_partition(a: &[usize], b: &[i64]) -> bool {
    let mut map: BTreeMap<usize, i64> = BTreeMap::new();
    let mut back: BTreeMap<i64, usize> = BTreeMap::new();
    a.iter().zip(b).all(|(&x, &y)| *map.entry(x).or_insert(y) == y && *back.entry(y).or_insert(x) == x)
}

#[test]
fn kmeans_reaches_scikit_learn_on_blobs_and_is_a_fixed_point() {
    let f = fixture("clustering.json");
    for case in f["kmeans"].as_array().unwrap() {
        let x = matrix(&case["x"]);
        let k = case["k"].as_u64().unwrap() as usize;
        let want: Vec<i64> = case["labels"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
        let sk_inertia = case["inertia"].as_f64().unwrap();
        // Best of a few seeds, as scikit-learn's n_init = 10.
        let best = (0..10)
            .map(|s| KMeans::new().n_clusters(k).fit(x.view(), s).unwrap())
            .min_by(|a, b| a.inertia.total_cmp(&b.inertia))
            .unwrap();
        assert!(best.inertia <= sk_inertia * (1.0 + 1e-9), "{} vs {sk_inertia}", best.inertia);
        assert!(same_partition(best.labels.as_slice().unwrap(), &want));
        // Every row at its nearest centre, every centre the mean of its rows.
        for (i, row) in x.rows().into_iter().enumerate() {
            let d = |c: usize| (&row - &best.centers.row(c)).mapv(|v| v * v).sum();
            assert!((0..k).all(|c| d(best.labels[i]) <= d(c)));
        }
        for c in 0..k {
            let rows: Vec<usize> = (0..x.nrows()).filter(|&i| best.labels[i] == c).collect();
            for j in 0..x.ncols() {
                let mean = rows.iter().map(|&i| x[[i, j]]).sum::<f64>() / rows.len() as f64;
                assert!((mean - best.centers[[c, j]]).abs() < 1e-6);
            }
        }
        // Deterministic for a seed.
        assert_eq!(
            KMeans::new().n_clusters(k).fit(x.view(), 3).unwrap(),
            KMeans::new().n_clusters(k).fit(x.view(), 3).unwrap()
        );
    }
}

#[test]
fn sbcl_splits_head_classes_into_cosine_clusters() {
    // Class 0: 40 rows in 4 angular groups of 10; class 1: 10 rows; M = 10 → K_0 = 4, K_1 = 1.
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
    let mut rows = vec![];
    let mut labels: Vec<i64> = vec![0; 40];
    labels.extend([1; 10]);
    for g in 0..4 {
        let angle = g as f64 * std::f64::consts::FRAC_PI_2;
        for _ in 0..10 {
            let a = angle + rng.random_range(-0.1..0.1);
            let r = rng.random_range(0.5..3.0); // norms differ: cosine ignores them
            rows.extend([r * a.cos(), r * a.sin()]);
        }
    }
    for _ in 0..10 {
        rows.extend([rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0)]);
    }
    let x = Array2::from_shape_vec((50, 2), rows).unwrap();
    let y = Array1::from(labels);
    let mut found = false;
    for seed in 0..5 {
        let s = sbcl_subclasses(x.view(), y.view(), 10, 1e-3, seed).unwrap();
        assert_eq!(s.per_class, vec![(0, 4), (1, 1)]);
        assert!(s.ids.iter().take(40).all(|&i| i < 4));
        assert!(s.ids.iter().skip(40).all(|&i| i == 4));
        // With a good initialisation the four angular groups are recovered exactly.
        let truth: Vec<i64> = (0..40).map(|i| i / 10).collect();
        found |= same_partition(&s.ids.to_vec()[..40], &truth);
    }
    assert!(found);
}

fn random_labels(counts: &[(i64, usize)], seed: u64) -> Array1<i64> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut y: Vec<i64> = counts.iter().flat_map(|&(c, n)| std::iter::repeat_n(c, n)).collect();
    for i in (1..y.len()).rev() {
        y.swap(i, rng.random_range(0..=i));
    }
    y.into()
}

#[test]
fn m_per_class_batches_hold_m_of_each_class() {
    let y = random_labels(&[(0, 50), (1, 3), (2, 20), (3, 7), (7, 12)], 1);
    for (m, b) in [(2, 6), (3, 15), (1, 5), (4, 8)] {
        let s = MPerClass::new().m(m).batch_size(Some(b)).length_before_new_iter(1000);
        let epoch = s.indices(y.view(), 42).unwrap();
        assert_eq!(epoch.len(), s.len(y.view()).unwrap());
        assert_eq!(epoch.len(), 1000 - 1000 % b);
        for batch in epoch.chunks(b) {
            assert!(batch.iter().all(|&i| i < y.len()));
            let mut per: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
            for &i in batch {
                per.entry(y[i]).or_default().push(i);
            }
            assert_eq!(per.len(), b / m);
            for (c, rows) in per {
                assert_eq!(rows.len(), m);
                let n_c = y.iter().filter(|&&v| v == c).count();
                let mut uniq = rows.clone();
                uniq.sort_unstable();
                uniq.dedup();
                if n_c >= m {
                    assert_eq!(uniq.len(), m, "rows of class {c} repeat although it has {n_c}");
                }
            }
        }
        assert_eq!(s.indices(y.view(), 42).unwrap(), epoch);
        assert_ne!(s.indices(y.view(), 43).unwrap(), epoch);
    }
    // Without batch size: each pass of m · C has every class m times.
    let s = MPerClass::new().m(2).length_before_new_iter(100);
    let epoch = s.indices(y.view(), 0).unwrap();
    assert_eq!(epoch.len(), 100);
    for pass in epoch.chunks(10) {
        let mut per: BTreeMap<i64, usize> = BTreeMap::new();
        for &i in pass {
            *per.entry(y[i]).or_default() += 1;
        }
        assert!(per.len() == 5 && per.values().all(|&v| v == 2));
    }
}

#[test]
fn dual_sampler_keeps_the_positive_ratio_and_cycles_through_every_row() {
    let y = random_labels(&[(0, 97), (1, 13)], 2);
    for (b, rate, num_pos) in [(10, 0.2, None), (16, 0.5, None), (8, 0.5, Some(3)), (32, 0.05, None)] {
        let s = DualSampler::new().batch_size(b).sampling_rate(rate).num_pos(num_pos);
        let p = s.positives_per_batch().unwrap();
        assert_eq!(p, num_pos.unwrap_or(((rate * b as f64) as usize).max(1)));
        let epoch = s.indices(y.view(), 5).unwrap();
        let n_batches = (13 / p).max(97 / (b - p)).max(1);
        assert_eq!(epoch.len(), n_batches * b);
        for batch in epoch.chunks(b) {
            assert!(batch[..p].iter().all(|&i| y[i] == 1));
            assert!(batch[p..].iter().all(|&i| y[i] == 0));
        }
        // Within each pass over a pool, a row appears once: the first 13 positives drawn are all distinct.
        let pos: Vec<usize> = epoch.chunks(b).flat_map(|c| c[..p].to_vec()).collect();
        let mut first: Vec<usize> = pos.iter().take(13).copied().collect();
        first.sort_unstable();
        first.dedup();
        assert_eq!(first.len(), 13.min(pos.len()));
        let neg: Vec<usize> = epoch.chunks(b).flat_map(|c| c[p..].to_vec()).collect();
        let mut first: Vec<usize> = neg.iter().take(97).copied().collect();
        first.sort_unstable();
        first.dedup();
        assert_eq!(first.len(), 97.min(neg.len()));
    }
}

#[test]
fn class_balanced_draws_classes_uniformly() {
    let y = random_labels(&[(0, 900), (1, 90), (2, 10)], 3);
    let s = ClassBalanced::new().num_samples(Some(30_000));
    let epoch = s.indices(y.view(), 11).unwrap();
    assert_eq!(epoch.len(), 30_000);
    let mut per = [0usize; 3];
    for &i in &epoch {
        per[y[i] as usize] += 1;
    }
    // 10 000 expected per class; 5 standard deviations ≈ 408.
    assert!(per.iter().all(|&c| (9_590..=10_410).contains(&c)), "{per:?}");
    // Every member of the smallest class is drawn (10 000 draws over 10 rows).
    let mut small: Vec<usize> = epoch.iter().copied().filter(|&i| y[i] == 2).collect();
    small.sort_unstable();
    small.dedup();
    assert_eq!(small.len(), 10);
    assert_eq!(ClassBalanced::new().indices(y.view(), 11).unwrap().len(), 1000);
}
