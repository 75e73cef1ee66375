//! The SMOTE family and the neighbourhood cleaners against imbalanced-learn (fixture `smote.json`: selections exactly,
//! errors by kind) and by invariants (segments, counts, determinism, thread independence), plus the bad-input suite.

use std::collections::BTreeMap;

use losskit_samplers::knn::{kneighbors, kneighbors_self};
use losskit_samplers::{
    Adasyn, BorderlineKind, BorderlineSmote, EditedNearestNeighbours, Error, KindSel, NearMiss, Resampled, Sampler,
    SamplingKind, SamplingStrategy, Smote, SmoteEnn, SmoteTomek, TomekLinks, class_counts, registry,
};
use ndarray::{Array1, Array2, ArrayView1, array, s};
use serde_json::Value;

use crate::common::fixture;
use crate::knn::matrix;

fn labels(v: &Value) -> Array1<i64> {
    v.as_array().unwrap().iter().map(|e| e.as_i64().unwrap()).collect()
}

fn indices(v: &Value) -> Vec<usize> {
    v.as_array().unwrap().iter().map(|e| e.as_u64().unwrap() as usize).collect()
}

fn strategy(p: &Value) -> SamplingStrategy {
    p["sampling_strategy"].as_str().unwrap().parse().unwrap()
}

fn usize_of(p: &Value, key: &str) -> usize {
    p[key].as_u64().unwrap() as usize
}

/// Selections: `sample_indices`, and rows and labels copied from them.
fn check_selection(name: &str, x: &Array2<f64>, got: &Resampled, want: &[usize], y_res: &Value) {
    assert_eq!(got.sample_indices.as_deref(), Some(want), "{name}: sample_indices");
    assert_eq!(got.y, labels(y_res), "{name}: y");
    for (r, &i) in want.iter().enumerate() {
        assert_eq!(got.x.row(r), x.row(i), "{name}: row {r}");
    }
    assert_eq!(got.x.nrows(), want.len(), "{name}: rows");
}

#[test]
fn tomek_links_match_imbalanced_learn() {
    let root = fixture("smote.json");
    let cases = root["tomek"].as_array().unwrap();
    assert_eq!(cases.len(), 6);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let (x, y) = (matrix(&case["x"]), labels(&case["y"]));
        let t = TomekLinks::new().sampling_strategy(strategy(&case["params"]));
        let got = t.fit_resample(x.view(), y.view(), 0).unwrap();
        let want = indices(&case["sample_indices"]);
        assert!(want.len() < y.len(), "{name}: the fixture should remove something");
        check_selection(name, &x, &got, &want, &case["y_res"]);
        let links = t.links(x.view(), y.view()).unwrap();
        assert_eq!(links.iter().filter(|l| !**l).count(), want.len(), "{name}: links");
    }
}

#[test]
fn enn_matches_imbalanced_learn() {
    let root = fixture("smote.json");
    let cases = root["enn"].as_array().unwrap();
    assert_eq!(cases.len(), 6);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let p = &case["params"];
        let (x, y) = (matrix(&case["x"]), labels(&case["y"]));
        let e = EditedNearestNeighbours::new()
            .sampling_strategy(strategy(p))
            .n_neighbors(usize_of(p, "n_neighbors"))
            .kind_sel(p["kind_sel"].as_str().unwrap().parse().unwrap());
        let got = e.fit_resample(x.view(), y.view(), 0).unwrap();
        check_selection(name, &x, &got, &indices(&case["sample_indices"]), &case["y_res"]);
    }
}

#[test]
fn near_miss_matches_imbalanced_learn() {
    let root = fixture("smote.json");
    let cases = root["near_miss"].as_array().unwrap();
    assert_eq!(cases.len(), 10);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let p = &case["params"];
        let (x, y) = (matrix(&case["x"]), labels(&case["y"]));
        let nm = NearMiss::new()
            .sampling_strategy(strategy(p))
            .version(p["version"].as_u64().unwrap() as u8)
            .n_neighbors(usize_of(p, "n_neighbors"))
            .n_neighbors_ver3(usize_of(p, "n_neighbors_ver3"));
        let got = nm.fit_resample(x.view(), y.view(), 0).unwrap();
        check_selection(name, &x, &got, &indices(&case["sample_indices"]), &case["y_res"]);
    }
}

#[test]
fn errors_match_imbalanced_learn() {
    let root = fixture("smote.json");
    let cases = root["errors"].as_array().unwrap();
    assert_eq!(cases.len(), 7);
    for case in cases {
        let method = case["method"].as_str().unwrap();
        let pairs: Vec<(String, String)> = case["params"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        let (x, y) = (matrix(&case["x"]), labels(&case["y"]));
        let s = registry::find(method).unwrap().build_with(&pairs).unwrap();
        let err = s.fit_resample(x.view(), y.view(), 0).unwrap_err();
        let msg = err.to_string();
        let ok = match case["kind"].as_str().unwrap() {
            "too_few_samples" => msg.contains("needs at least"),
            "no_other_class_neighbour" => msg.contains("belongs to another class"),
            "nothing_generated" => msg.contains("no samples will be generated"),
            other => panic!("unknown kind {other}"),
        };
        assert!(ok && matches!(err, Error::Degenerate { .. }), "{method} {pairs:?}: {msg}");
        assert!(msg.starts_with(method), "{msg}");
    }
}

/// Two Gaussian-ish classes plus a third small one, shuffled; no distance ties.
fn blobs(counts: &[(i64, usize)], d: usize, seed: u64) -> (Array2<f64>, Array1<i64>) {
    let (mut x, y) = crate::common::data(counts, d, seed);
    // spread the rows: a deterministic pseudo-random cloud per class, overlapping
    for (i, mut row) in x.rows_mut().into_iter().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            let h = ((i * 7919 + j * 104_729 + seed as usize * 31) % 10_007) as f64 / 10_007.0;
            *v = 4.0 * h + 0.8 * y[i] as f64 + 1e-7 * *v;
        }
    }
    (x, y)
}

/// Every synthetic row lies on a segment between a class-c sample and one of its k nearest class-c neighbours (or,
/// with `any_class`, one of its k nearest neighbours of any class); returns the number checked.
fn on_segments(x: &Array2<f64>, y: &Array1<i64>, out: &Resampled, k: usize, any_class: bool) -> usize {
    let n = y.len();
    assert_eq!(out.x.slice(s![..n, ..]), x, "the input comes first, unchanged");
    assert_eq!(out.y.slice(s![..n]), y);
    let mut by_class: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, &c) in y.iter().enumerate() {
        by_class.entry(c).or_default().push(i);
    }
    let mut nbrs: BTreeMap<i64, (Vec<usize>, Array2<usize>)> = BTreeMap::new();
    for (&c, rows) in &by_class {
        if any_class {
            let q: Array2<f64> = Array2::from_shape_fn((rows.len(), x.ncols()), |(r, j)| x[[rows[r], j]]);
            let nn = kneighbors(x.view(), q.view(), k + 1).unwrap(); // the row itself is first (no ties)
            nbrs.insert(c, (rows.clone(), nn.indices.slice(s![.., 1..]).to_owned()));
        } else if rows.len() > k {
            let xc: Array2<f64> = Array2::from_shape_fn((rows.len(), x.ncols()), |(r, j)| x[[rows[r], j]]);
            let nn = kneighbors_self(xc.view(), k).unwrap();
            nbrs.insert(c, (rows.clone(), nn.indices.mapv(|p| rows[p])));
        }
    }
    let mut checked = 0;
    for r in n..out.y.len() {
        let c = out.y[r];
        let (rows, nn) = &nbrs[&c];
        let p = out.x.row(r);
        let found = rows.iter().enumerate().any(|(a, &i)| {
            nn.row(a).iter().any(|&j| {
                // p = x_i + u (x_j − x_i), u ∈ [0, 1]: the same u in every feature
                let (xi, xj) = (x.row(i), x.row(j));
                let mut u: Option<f64> = None;
                xi.iter().zip(xj).zip(p).all(|((&a, &b), &v)| {
                    let span = b - a;
                    if span.abs() < 1e-9 {
                        return (v - a).abs() <= 1e-9;
                    }
                    let t = (v - a) / span;
                    let ok = (-1e-9..=1.0 + 1e-9).contains(&t) && u.is_none_or(|u0| (u0 - t).abs() <= 1e-7);
                    u.get_or_insert(t);
                    ok
                })
            })
        });
        assert!(found, "synthetic row {r} (class {c}) is on no neighbour segment");
        checked += 1;
    }
    checked
}

#[test]
fn synthetic_points_lie_on_neighbour_segments() {
    let (x, y) = blobs(&[(0, 120), (1, 30), (2, 17)], 3, 5);
    for k in [1, 3, 5] {
        let out = Smote::new().k_neighbors(k).fit_resample(x.view(), y.view(), 11).unwrap();
        assert_eq!(class_counts(out.y.view()).into_iter().collect::<Vec<_>>(), vec![(0, 120), (1, 120), (2, 120)]);
        assert_eq!(on_segments(&x, &y, &out, k, false), 193);
        let out = Adasyn::new().n_neighbors(k).fit_resample(x.view(), y.view(), 11).unwrap();
        assert!(on_segments(&x, &y, &out, k, false) > 150);
        let b1 = BorderlineSmote::new().k_neighbors(k).m_neighbors(6);
        assert!(on_segments(&x, &y, &b1.fit_resample(x.view(), y.view(), 2).unwrap(), k, false) > 0);
        let b2 = b1.clone().kind(BorderlineKind::Two);
        assert!(on_segments(&x, &y, &b2.fit_resample(x.view(), y.view(), 2).unwrap(), k, true) > 0);
    }
}

#[test]
fn borderline_generates_only_from_danger_samples() {
    let (x, y) = blobs(&[(0, 100), (1, 25)], 2, 8);
    let s = BorderlineSmote::new().k_neighbors(3).m_neighbors(8);
    let danger = s.in_danger_indices(x.view(), y.view()).unwrap()[&1].clone();
    let noise = s.noise_indices(x.view(), y.view()).unwrap()[&1].clone();
    assert!(!danger.is_empty());
    assert!(danger.iter().all(|i| !noise.contains(i)));
    // the sets agree with a direct count over kneighbors_self
    let nn = kneighbors_self(x.view(), 8).unwrap();
    for i in (0..y.len()).filter(|&i| y[i] == 1) {
        let others = nn.indices.row(i).iter().filter(|&&j| y[j] != 1).count();
        assert_eq!(danger.contains(&i), (4..8).contains(&others), "row {i}");
        assert_eq!(noise.contains(&i), others == 8, "row {i}");
    }
    // borderline-1 with real draws: each synthetic point on a segment from a danger sample to a class-1 neighbour
    let out = s.fit_resample(x.view(), y.view(), 4).unwrap();
    let n = y.len();
    let xc: Vec<usize> = (0..n).filter(|&i| y[i] == 1).collect();
    let sub = Array2::from_shape_fn((xc.len(), 2), |(r, j)| x[[xc[r], j]]);
    let nn1 = kneighbors_self(sub.view(), 3).unwrap();
    for r in n..out.y.len() {
        let p = out.x.row(r);
        let ok = danger.iter().any(|&i| {
            let a = xc.iter().position(|&q| q == i).unwrap();
            nn1.indices.row(a).iter().any(|&b| {
                let (xi, xj) = (x.row(i), sub.row(b));
                let t = (p[0] - xi[0]) / (xj[0] - xi[0]);
                (-1e-9..=1.0 + 1e-9).contains(&t) && (xi[1] + t * (xj[1] - xi[1]) - p[1]).abs() < 1e-9
            })
        });
        assert!(ok, "row {r} does not come from a danger sample");
    }
}

#[test]
fn adasyn_counts_follow_the_hardness() {
    let (x, y) = blobs(&[(0, 100), (1, 25)], 2, 9);
    let a = Adasyn::new().n_neighbors(4);
    let g = &a.generation_counts(x.view(), y.view()).unwrap()[&1];
    let nn = kneighbors_self(x.view(), 4).unwrap();
    let rows: Vec<usize> = (0..y.len()).filter(|&i| y[i] == 1).collect();
    let r: Vec<f64> =
        rows.iter().map(|&i| nn.indices.row(i).iter().filter(|&&j| y[j] != 1).count() as f64 / 4.0).collect();
    let total: f64 = r.iter().sum();
    for (gi, ri) in g.iter().zip(&r) {
        let want = ri / total * 75.0;
        assert!((*gi as f64 - want).abs() <= 0.5 + 1e-9, "{gi} vs {want}");
    }
    let out = a.fit_resample(x.view(), y.view(), 0).unwrap();
    assert_eq!(out.y.len(), 125 + g.iter().sum::<usize>());
}

#[test]
fn deterministic_per_seed_and_thread_count() {
    let (x, y) = blobs(&[(0, 300), (1, 60), (2, 40)], 4, 3);
    let samplers: Vec<Box<dyn Sampler>> = vec![
        Box::new(Smote::new()),
        Box::new(BorderlineSmote::new().m_neighbors(7)),
        Box::new(BorderlineSmote::new().kind(BorderlineKind::Two)),
        Box::new(Adasyn::new()),
        Box::new(SmoteTomek::new()),
        Box::new(SmoteEnn::new()),
        Box::new(TomekLinks::new()),
        Box::new(EditedNearestNeighbours::new().kind_sel(KindSel::Mode)),
        Box::new(NearMiss::new().version(3)),
    ];
    let pool = |t| rayon::ThreadPoolBuilder::new().num_threads(t).build().unwrap();
    for s in &samplers {
        let one = pool(1).install(|| s.fit_resample(x.view(), y.view(), 42)).unwrap();
        let two = pool(2).install(|| s.fit_resample(x.view(), y.view(), 42)).unwrap();
        assert_eq!(one, two, "{s:?}");
        assert_eq!(s.fit_resample(x.view(), y.view(), 42).unwrap(), one, "{s:?}");
    }
    let a = Smote::new().fit_resample(x.view(), y.view(), 1).unwrap();
    let b = Smote::new().fit_resample(x.view(), y.view(), 2).unwrap();
    assert_ne!(a, b);
}

#[test]
fn counts_follow_the_strategy() {
    let (x, y) = blobs(&[(0, 90), (1, 30), (2, 20)], 2, 4);
    let counts = class_counts(y.view());
    for strategy in [
        SamplingStrategy::Auto,
        SamplingStrategy::Minority,
        SamplingStrategy::NotMinority,
        SamplingStrategy::All,
        SamplingStrategy::PerClass([(1, 50), (2, 95)].into_iter().collect()),
    ] {
        let targets = strategy.resolve(&counts, SamplingKind::Over).unwrap();
        let out = Smote::new().sampling_strategy(strategy.clone()).fit_resample(x.view(), y.view(), 0).unwrap();
        let after = class_counts(out.y.view());
        for (c, n) in &counts {
            assert_eq!(after[c], n + targets.get(c).copied().unwrap_or(0), "{strategy} class {c}");
        }
        // new rows class by class, ascending
        assert!(out.y.slice(s![140..]).windows(2).into_iter().all(|w| w[0] <= w[1]));
    }
    for version in 1..=3 {
        let out = NearMiss::new().version(version).fit_resample(x.view(), y.view(), 0).unwrap();
        let after = class_counts(out.y.view());
        assert_eq!(after[&2], 20);
        assert!(after[&0] <= 20 && after[&1] <= 20, "v{version}: {after:?}");
        if version < 3 {
            assert_eq!((after[&0], after[&1]), (20, 20));
        }
    }
}

#[test]
fn bad_input_never_panics() {
    let x = array![[0.0, 1.0], [1.0, 2.0], [2.0, 3.0], [3.0, 1.0], [4.0, 0.0], [5.0, 2.0]];
    let y = array![0_i64, 0, 0, 0, 1, 1];
    for entry in registry::resamplers() {
        let s = entry.build_default().unwrap();
        let name = entry.name;
        // mismatched lengths, empty, zero features, non-finite, single class
        assert!(matches!(s.fit_resample(x.view(), y.slice(s![..3]), 0), Err(Error::Shape { arg: "y", .. })), "{name}");
        assert!(matches!(
            s.fit_resample(Array2::zeros((0, 2)).view(), Array1::zeros(0).view(), 0),
            Err(Error::Empty { .. })
        ));
        assert!(matches!(s.fit_resample(Array2::zeros((6, 0)).view(), y.view(), 0), Err(Error::Shape { .. })));
        let mut bad = x.clone();
        bad[[3, 1]] = f64::NAN;
        assert!(matches!(s.fit_resample(bad.view(), y.view(), 0), Err(Error::NonFinite { arg: "x", index: 7, .. })));
        let one: ArrayView1<'_, i64> = ArrayView1::from(&[3_i64; 6][..]);
        assert!(matches!(s.fit_resample(x.view(), one, 0), Err(Error::Degenerate { .. })), "{name}");
        // tiny data: an error or a result, never a panic
        let _ = s.fit_resample(x.slice(s![3..5, ..]), y.slice(s![3..5]), 0);
        // huge and tiny magnitudes stay finite
        for mag in [1e300, 1e-300] {
            let big = x.mapv(|v| v * mag);
            if let Ok(out) = s.fit_resample(big.view(), y.view(), 0) {
                assert!(out.x.iter().all(|v| v.is_finite()), "{name}");
            }
        }
    }
    // neighbour counts of 0 and bad choices
    assert!(matches!(Smote::new().k_neighbors(0).fit_resample(x.view(), y.view(), 0), Err(Error::Parameter { .. })));
    assert!(matches!(NearMiss::new().version(4).check(), Err(Error::Parameter { name: "version", .. })));
    assert!(matches!(
        EditedNearestNeighbours::new().n_neighbors(0).check(),
        Err(Error::Parameter { name: "n_neighbors", .. })
    ));
    // cleaners refuse counts and ratios, over-samplers refuse class lists
    let per = SamplingStrategy::PerClass([(0, 2)].into_iter().collect());
    assert!(TomekLinks::new().sampling_strategy(per.clone()).fit_resample(x.view(), y.view(), 0).is_err());
    assert!(
        EditedNearestNeighbours::new()
            .sampling_strategy(SamplingStrategy::Ratio(0.5))
            .fit_resample(x.view(), y.view(), 0)
            .is_err()
    );
    assert!(
        Smote::new().sampling_strategy(SamplingStrategy::Classes(vec![1])).fit_resample(x.view(), y.view(), 0).is_err()
    );
    // a class too small for k: the message names the class, the parameter and the counts
    let err = Smote::new().k_neighbors(2).fit_resample(x.view(), y.view(), 0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "smote: class 1 has 2 samples, but k_neighbors = 2 needs at least 3; lower k_neighbors or add samples"
    );
}
