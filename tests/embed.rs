//! t-SNE, trustworthiness and k-means against scikit-learn (fixtures from
//! tests/fixtures/gen_tsne.py), and their bad input. A t-SNE layout depends on rounding and
//! random draws, so the checks are layout-free: trustworthiness (k = 5) within 0.01 of sklearn's,
//! and the KL divergence reached within 5% of sklearn's.

mod common;
use common::{eval_err, eval_ok, float};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tsne");

fn reference() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(format!("{DIR}/sklearn.json")).unwrap()).unwrap()
}

fn check_tsne(name: &str) {
    let r = &reference()["tsne"][name];
    let method = r["method"].as_str().unwrap();
    let src = format!(
        "let x = load_npy(\"{DIR}/{name}.npy\");
        let f = tsne_fit(x, #{{ method: \"{method}\", quiet: true }});
        [f.kl, trustworthiness(x, f.embedding, 5), f.embedding.shape[0], f.embedding.shape[1], f.exact]"
    );
    let v = eval_ok(&src).into_array().unwrap();
    let (kl, trust) = (v[0].as_float().unwrap(), v[1].as_float().unwrap());
    let (sk_kl, sk_trust) = (r["kl"].as_f64().unwrap(), r["trustworthiness"].as_f64().unwrap());
    eprintln!("{name}: KL {kl:.4} (sklearn {sk_kl:.4}), trustworthiness {trust:.4} (sklearn {sk_trust:.4})");
    assert!((trust - sk_trust).abs() <= 0.01, "{name}: trustworthiness {trust} vs sklearn {sk_trust}");
    assert!((kl - sk_kl).abs() <= 0.05 * sk_kl, "{name}: KL {kl} vs sklearn {sk_kl}");
    assert_eq!(v[3].as_int().unwrap(), 2);
    assert_eq!(v[4].as_bool().unwrap(), method == "exact");
}

#[test]
fn exact_tsne_matches_sklearn() {
    check_tsne("blobs_exact");
}

#[test]
fn barnes_hut_tsne_matches_sklearn_on_separated_blobs() {
    check_tsne("blobs_bh");
}

#[test]
fn barnes_hut_tsne_matches_sklearn_on_overlapping_blobs() {
    check_tsne("overlap_bh");
}

#[test]
fn trustworthiness_equals_sklearns_on_its_own_embedding() {
    for name in ["blobs_exact", "blobs_bh", "overlap_bh"] {
        let want = reference()["tsne"][name]["trustworthiness"].as_f64().unwrap();
        let got = float(&format!("trustworthiness(load_npy(\"{DIR}/{name}.npy\"), load_npy(\"{DIR}/{name}_sklearn_embedding.npy\"), 5)"));
        assert!((got - want).abs() < 1e-9, "{name}: {got} vs {want}");
    }
}

#[test]
fn kmeans_purity_after_minmax_matches_sklearn() {
    // D&R's diagnosis: MinMaxScaler(-1, 1), then KMeans(k = classes, k-means++, n_init 10).
    for name in ["blobs_exact", "blobs_bh", "overlap_bh"] {
        let r = &reference()["kmeans"][name];
        let k = r["k"].as_i64().unwrap();
        let src = format!(
            "let x = load_npy(\"{DIR}/{name}.npy\"); let y = load_npy(\"{DIR}/{name}_labels.npy\");
            let lo = x.min(0); let hi = x.max(0); let s = (x - lo) / (hi - lo) * 2.0 - 1.0;
            let km = kmeans(s, {k});
            [purity(km.labels, y), km.inertia]"
        );
        let v = eval_ok(&src).into_array().unwrap();
        let (p, inertia) = (v[0].as_float().unwrap(), v[1].as_float().unwrap());
        let (sp, si) = (r["purity"].as_f64().unwrap(), r["inertia"].as_f64().unwrap());
        eprintln!("{name}: purity {p} (sklearn {sp}), inertia {inertia} (sklearn {si})");
        assert!((p - sp).abs() <= 0.01, "{name}: purity {p} vs {sp}");
        assert!(inertia <= si * 1.005, "{name}: inertia {inertia} above sklearn's {si}");
    }
}

#[test]
fn bad_input_says_what_is_needed() {
    let err = eval_err("tsne(randn([100]))");
    assert!(err.contains("expects a [N, D] tensor") && err.contains("test.rhai:1:"), "{err}");
    let err = eval_err("tsne(randn([20, 3]))");
    assert!(err.contains("perplexity 30 needs more points") && err.contains("lower perplexity"), "{err}");
    let err = eval_err("let m = (arange(50) == 4).to(\"float32\").reshape([50, 1]); let x = randn([50, 3]) + (m * -1.0 + 1.0).log(); tsne(x, #{ perplexity: 5 })");
    assert!(err.contains("1 of 50 rows hold NaN"), "{err}");
    let err = eval_err("tsne(randn([50, 3]), #{ perplexty: 5 })");
    assert!(err.contains("unknown option \"perplexty\""), "{err}");
    let err = eval_err("tsne(randn([50, 3]), #{ method: \"fast\" })");
    assert!(err.contains("method must be"), "{err}");
    let err = eval_err("kmeans(randn([5, 2]), 6)");
    assert!(err.contains("k must be in [1, n]"), "{err}");
    let err = eval_err("purity([0, 1], [0])");
    assert!(err.contains("one cluster per label"), "{err}");
}
