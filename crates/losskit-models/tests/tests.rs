//! Integration tests of losskit-models with the real registries: registered losses and samplers, the embedded wine
//! data and the default arena.

use std::fmt::Write as _;

use ndarray::{Array1, Array2, ArrayD, Ix1};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

use losskit_losses::{ClassLoss, DynClassLoss, Targets};
use losskit_models::arena::{self, ArenaConfig, ArenaReport};
use losskit_models::datasets::{self, load_csv};
use losskit_models::{Activation, Mlp, Model};
use losskit_tensor::gradcheck;

fn registered(name: &str, params: &[(&str, &str)]) -> Box<dyn DynClassLoss> {
    let entry = losskit_losses::registry::find(name).unwrap();
    let pairs: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    (entry.build)(&entry.params(&pairs).unwrap()).unwrap().class.unwrap()
}

/// ∂/∂θ of a registered loss applied to the MLP's logits, with per-sample weights: the chain the trainer relies on.
#[test]
fn mlp_through_registered_losses_passes_gradcheck() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(21);
    let x = Array2::from_shape_fn((8, 4), |_| rng.random_range(-2.0..2.0));
    let y: Array1<i64> = (0..8).map(|i| i % 3).collect();
    let w: Array1<f64> = (0..8).map(|i| 0.5 + 0.25 * i as f64).collect();
    let mut model = Mlp::new(4, 5, 3, Activation::Tanh, 2).unwrap();
    model.params_mut().iter_mut().filter(|v| **v == 0.0).for_each(|v| *v = rng.random_range(-0.3..0.3));
    for loss in [registered("cross-entropy", &[]), registered("focal", &[("gamma", "2")])] {
        let objective = |m: &Mlp| {
            let logits = m.forward(x.view()).unwrap();
            <dyn DynClassLoss as ClassLoss<f64>>::compute(
                loss.as_ref(),
                logits.view(),
                Targets::Hard(y.view()),
                Some(w.view()),
                true,
            )
            .unwrap()
        };
        let out = objective(&model);
        let g = model.backward(x.view(), out.grad.unwrap().view()).unwrap().params;
        let theta = model.params().to_owned().into_dyn();
        let f = |p: &ArrayD<f64>| {
            let mut m = model.clone();
            m.params_mut().assign(&p.view().into_dimensionality::<Ix1>().unwrap());
            objective(&m).value
        };
        let res = gradcheck::check(f, &theta, &g.into_dyn(), gradcheck::Options::default());
        assert!(res.is_ok(), "{loss:?}: {res:?}");
    }
}

/// Writing the embedded data back to CSV text and loading it gives the same dataset.
#[test]
fn wine_round_trips_through_the_csv_loader() {
    let ds = datasets::wine_quality().unwrap();
    let mut text = String::new();
    let quoted: Vec<String> = ds.feature_names.iter().map(|n| format!("\"{n}\"")).collect();
    let _ = writeln!(text, "quality,{}", quoted.join(","));
    for (row, &label) in ds.x.rows().into_iter().zip(&ds.y) {
        let cells: Vec<String> = row.iter().map(f64::to_string).collect();
        let _ = writeln!(text, "{},{}", ds.class_names[label as usize], cells.join(","));
    }
    let mut back = load_csv(text.as_bytes(), "quality").unwrap();
    back.name = ds.name.clone();
    assert_eq!(back, ds);
}

fn row<'a>(r: &'a ArenaReport, label: &str) -> &'a arena::RunResult {
    r.rows.iter().find(|x| x.label == label).unwrap()
}

/// The default arena (registered cross-entropy, focal, class weights and random over-sampling on the embedded wine
/// data) is deterministic, and rebalancing does what it should: higher balanced accuracy and macro-F1, and the rare
/// quality-3 wines recalled at least as often as by plain cross-entropy.
#[test]
fn default_arena_on_wine_is_deterministic_and_rebalancing_helps() {
    let cfg = ArenaConfig::new(datasets::wine_quality().unwrap());
    let mut last = (0, 0);
    let a = arena::run(&cfg, &mut |d, t| last = (d, t)).unwrap();
    assert_eq!(last, (18, 18)); // 6 default runs × 3 seeds
    let b = arena::run(&cfg, &mut |_, _| {}).unwrap();
    assert_eq!(a, b);
    assert_eq!((a.n_train, a.n_test), (1119, 480)); // n_test = ⌈0.3 · 1599⌉
    assert_eq!(a.minority, vec![("3".to_string(), 7); 3]);
    let ce = row(&a, "cross-entropy");
    assert!(ce.mean.accuracy > 0.55, "{ce:?}");
    for label in ["cross-entropy + balanced weights", "cross-entropy + random-over"] {
        let r = row(&a, label);
        assert!(r.mean.balanced_accuracy > ce.mean.balanced_accuracy + 0.08, "{r:?} vs {ce:?}");
        assert!(r.mean.f1_macro > ce.mean.f1_macro, "{r:?} vs {ce:?}");
        assert!(r.mean.minority_recall >= ce.mean.minority_recall, "{r:?} vs {ce:?}");
    }
    let md = a.to_markdown();
    assert!(md.contains("| focal (gamma=2) |"), "{md}");
}

/// Over more seeds the rare class is recalled clearly more often with rebalancing (plain cross-entropy almost never
/// predicts quality 3).
#[test]
fn rebalancing_recalls_the_rarest_wines_over_ten_seeds() {
    let cfg = ArenaConfig::new(datasets::wine_quality().unwrap()).seeds((0..10).collect()).runs(vec![
        arena::RunSpec::loss("cross-entropy"),
        arena::RunSpec::loss("cross-entropy").balanced(),
        arena::RunSpec::loss("cross-entropy").sampler("random-over", Vec::new()),
    ]);
    let r = arena::run(&cfg, &mut |_, _| {}).unwrap();
    let recall: Vec<f64> = r.rows.iter().map(|x| x.mean.minority_recall).collect();
    assert!(recall[0] < 0.05 && recall[1] > 0.1 && recall[2] > 0.1, "{recall:?}");
}
