//! Gaussian mixtures against scikit-learn's GaussianMixture (fixtures written by
//! tests/fixtures/gen_mixture.py): likelihood at least sklearn's, parameters within 1e-3
//! where the optimum is well defined, and the same posteriors.

use gapscope::gap::to_f64_vec;
use gapscope::mixture::{fit, Family, FitOptions};
use serde_json::Value;
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mixture")
}

fn load(file: &str) -> Vec<f64> {
    let t = tch::Tensor::read_npy(fixtures().join(file)).expect("fixture npy");
    to_f64_vec("load", &t).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

#[test]
fn gmm_matches_sklearn_on_every_fixture() {
    let text = std::fs::read_to_string(fixtures().join("sklearn.json")).unwrap();
    let reference: Value = serde_json::from_str(&text).unwrap();
    let s = &reference["settings"];
    let sets = reference["sets"].as_object().unwrap();
    assert!(sets.len() >= 8, "fixture sets missing");
    for (name, r) in sets {
        let x = load(r["file"].as_str().unwrap());
        let k = r["k"].as_u64().unwrap() as usize;
        let options = FitOptions {
            family: Family::Gaussian,
            ks: vec![k],
            n_init: s["n_init"].as_u64().unwrap() as usize,
            tol: s["tol"].as_f64().unwrap(),
            max_iter: s["max_iter"].as_u64().unwrap() as usize,
            var_floor: s["reg_covar"].as_f64().unwrap(),
            ..FitOptions::default()
        };
        let m = fit(&x, &options).unwrap();
        let sk_ll = r["mean_loglik"].as_f64().unwrap();
        assert!(m.mean_loglik() >= sk_ll - 1e-6, "{name}: our mean loglik {} < sklearn's {sk_ll} - 1e-6", m.mean_loglik());
        if r["well_defined"].as_bool().unwrap() {
            let ours = |f: fn(&gapscope::mixture::Component) -> f64| m.components.iter().map(f).collect::<Vec<_>>();
            for (field, got) in [("weights", ours(|c| c.weight)), ("means", ours(|c| c.mean)), ("stds", ours(|c| c.scale))] {
                for (g, want) in got.iter().zip(floats(&r[field])) {
                    assert!((g - want).abs() <= 1e-3, "{name}: {field} {got:?} vs sklearn {:?}", r[field]);
                }
            }
            let bic = r["bic"].as_f64().unwrap();
            assert!((m.bic() - bic).abs() <= 1e-3 * bic.abs().max(1.0), "{name}: bic {} vs {bic}", m.bic());
            let post = m.posterior(&x[..5]);
            for (p, want) in post.iter().zip(r["posterior_head"].as_array().unwrap().iter().flat_map(floats)) {
                assert!((p - want).abs() <= 1e-3, "{name}: posterior {post:?}");
            }
        }
    }
}
