//! Retrieval metrics against pytorch-metric-learning's AccuracyCalculator (1e-12; MRR 1e-6: PML computes it in
//! float32), scikit-learn's NDCG and scipy's nearest distances, from `fixtures/retrieval.json`
//! (`tools/fixtures/gen_metrics_retrieval.py`); kNN against a brute-force oracle; query shards merge to one pass.

use losskit_metrics::{
    Distance, MetricState, RetrievalConfig, RetrievalK, RetrievalState, knn, retrieval_metrics, utilization,
};
use ndarray::{Array1, Array2, s};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

use crate::util::*;

const TOL: f64 = 1e-12;

#[test]
fn accuracy_calculator_metrics_match_pml() {
    let fx = fixture("retrieval.json");
    for case in fx["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let data = &fx["data"][case["data"].as_str().unwrap()];
        let q = matrix_f64(&data["query"]);
        let ql = Array1::from(ints(&data["query_labels"]));
        let reference = data.get("reference").map(|r| (matrix_f64(r), Array1::from(ints(&data["reference_labels"]))));
        let k = match &case["k"] {
            serde_json::Value::String(s) => s.parse::<RetrievalK>().unwrap(),
            v => RetrievalK::Fixed(v.as_u64().unwrap() as usize),
        };
        let distance: Distance = case["distance"].as_str().unwrap().parse().unwrap();
        for (avg, key) in [(false, "mean"), (true, "avg_of_avgs")] {
            let cfg = RetrievalConfig::new().k(k).distance(distance).avg_of_avgs(avg);
            let r = retrieval_metrics(q.view(), ql.view(), reference.as_ref().map(|(a, b)| (a.view(), b.view())), &cfg)
                .unwrap();
            let want = &case["results"][key];
            let what = |m: &str| format!("{name} {key} {m}");
            assert_eq!(r.k as u64, case["k_used"].as_u64().unwrap(), "{name} k");
            assert_eq!(r.n_lone, case["n_lone"].as_u64().unwrap(), "{name} lone");
            assert_close(r.precision_at_1, num(&want["precision_at_1"]), TOL, &what("p@1"));
            assert_close(r.r_precision, num(&want["r_precision"]), TOL, &what("r_precision"));
            assert_close(r.map_at_r, num(&want["mean_average_precision_at_r"]), TOL, &what("map@r"));
            assert_close(r.mean_average_precision, num(&want["mean_average_precision"]), TOL, &what("map"));
            assert_close(r.mean_reciprocal_rank, num(&want["mean_reciprocal_rank"]), 1e-6, &what("mrr"));
            if !avg {
                assert_close(r.ndcg, num(&case["ndcg"]), TOL, &what("ndcg"));
                let pairs = |v: &serde_json::Value| -> Vec<(usize, f64)> {
                    v.as_array().unwrap().iter().map(|p| (p[0].as_u64().unwrap() as usize, num(&p[1]))).collect()
                };
                for (got, want, m) in [
                    (&r.recall_at, pairs(&case["recall_at"]), "recall"),
                    (&r.precision_at, pairs(&case["precision_at"]), "precision"),
                ] {
                    assert_eq!(got.len(), want.len(), "{}", what(m));
                    for (g, w) in got.iter().zip(&want) {
                        assert_eq!(g.0, w.0);
                        assert_close(g.1, w.1, TOL, &what(&format!("{m}@{}", w.0)));
                    }
                }
            }
        }
    }
}

#[test]
fn utilization_matches_scipy() {
    let fx = fixture("retrieval.json");
    let u = &fx["utilization"];
    let got = utilization(matrix_f64(&u["test"]).view(), matrix_f64(&u["train"]).view()).unwrap();
    assert_close(got, num(&u["utilization"]), TOL, "utilization");
    let train = matrix_f64(&u["train"]);
    assert_eq!(utilization(train.view(), train.view()).unwrap(), 0.0);
}

/// Brute force: every distance, sorted by (distance, index).
fn brute(q: &Array2<f64>, r: &Array2<f64>, k: usize, cosine: bool, exclude_self: bool) -> Vec<Vec<usize>> {
    q.rows()
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            let mut d: Vec<(f64, usize)> = r
                .rows()
                .into_iter()
                .enumerate()
                .filter(|&(j, _)| !(exclude_self && i == j))
                .map(|(j, b)| {
                    let v = if cosine {
                        1.0 - a.dot(&b) / (a.dot(&a).sqrt() * b.dot(&b).sqrt())
                    } else {
                        a.iter().zip(b.iter()).map(|(x, y)| (x - y) * (x - y)).sum::<f64>().sqrt()
                    };
                    (v, j)
                })
                .collect();
            d.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
            d.into_iter().take(k).map(|p| p.1).collect()
        })
        .collect()
}

#[test]
fn knn_matches_brute_force_across_blocks_and_thread_counts() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
    // 300 queries span three GEMM blocks of 128.
    let r = Array2::from_shape_fn((400, 6), |_| rng.random_range(-1.0..1.0));
    let q = r.slice(s![..300, ..]).to_owned();
    for (distance, cosine) in [(Distance::Euclidean, false), (Distance::Cosine, true)] {
        for exclude in [false, true] {
            let want = brute(&q, &r, 9, cosine, exclude);
            let run = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                pool.install(|| knn(q.view(), r.view(), 9, distance, exclude).unwrap())
            };
            let one = run(1);
            for (i, w) in want.iter().enumerate() {
                assert_eq!(&one.indices.row(i).to_vec(), w, "{distance} exclude {exclude} row {i}");
            }
            assert_eq!(run(3), one);
        }
    }
}

#[test]
fn query_shards_merge_to_the_one_pass_result() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
    let n = 500;
    let labels: Array1<i64> = (0..n).map(|_| rng.random_range(0..12)).collect();
    let x =
        Array2::from_shape_fn((n, 4), |(i, j)| labels[i] as f64 * 0.3 * (j as f64 - 1.5) + rng.random_range(-1.0..1.0));
    let cfg = RetrievalConfig::new();
    let one = retrieval_metrics(x.view(), labels.view(), None, &cfg).unwrap();
    // The same through knn + RetrievalState on three shards of queries, merged in reverse order.
    let k = one.k;
    let mut counts = std::collections::HashMap::new();
    for &l in &labels {
        *counts.entry(l).or_insert(0usize) += 1;
    }
    let relevant: Array1<usize> = labels.iter().map(|l| counts[l] - 1).collect();
    let nn = knn(x.view(), x.view(), k, Distance::Euclidean, true).unwrap();
    let nl = nn.indices.mapv(|j| labels[j]);
    let mut merged = RetrievalState::new(k, vec![1, 2, 4, 8]).unwrap();
    for (a, b) in [(350, 500), (90, 350), (0, 90)] {
        let mut part = RetrievalState::new(k, vec![1, 2, 4, 8]).unwrap();
        part.update(labels.slice(s![a..b]), nl.slice(s![a..b, ..]), relevant.slice(s![a..b])).unwrap();
        merged.merge(&part).unwrap();
    }
    let m = merged.compute().unwrap();
    for ((ka, va), (kb, vb)) in m.to_pairs().iter().zip(one.to_pairs()) {
        assert_eq!(ka, &kb);
        assert_close(*va, vb, 1e-12, ka);
    }
    assert!(merged.merge(&RetrievalState::new(k + 1, vec![1]).unwrap()).is_err());
}
