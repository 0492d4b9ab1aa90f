//! The statistics of tables (src/stats) against scipy.stats, on the fixtures that
//! tests/fixtures/gen_stats.py wrote (ttest_rel and its interval, binomtest for McNemar's exact
//! test, Holm's step-down rule, the noncentral t power, friedmanchisquare, the studentized
//! range quantile behind the Nemenyi critical difference; numpy's paired bootstrap and
//! percentiles).

use gapscope::stats::{bootstrap, holm, mcnemar, paired, power, ranks};
use serde_json::Value;

fn fixture() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/stats/stats.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn close(got: f64, want: f64, tol: f64, what: &str) {
    assert!((got - want).abs() <= tol * (1.0 + want.abs()), "{what}: {got} against scipy's {want}");
}

#[test]
fn the_paired_interval_and_test_match_ttest_rel() {
    for case in fixture()["paired"].as_array().unwrap() {
        let (a, b) = (floats(&case["a"]), floats(&case["b"]));
        let d: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x - y).collect();
        let r = paired::paired(&d, 0.95).unwrap();
        close(r.t, case["t"].as_f64().unwrap(), 1e-10, "t");
        close(r.p, case["p"].as_f64().unwrap(), 1e-9, "p");
        close(r.low, case["low"].as_f64().unwrap(), 1e-9, "low");
        close(r.high, case["high"].as_f64().unwrap(), 1e-9, "high");
    }
    assert!(paired::paired(&[1.0], 0.95).is_err());
    assert!(paired::paired(&[1.0, 1.0], 0.95).unwrap().p.is_nan(), "no spread: t is undefined");
}

#[test]
fn mcnemars_exact_test_matches_binomtest() {
    for case in fixture()["mcnemar"].as_array().unwrap() {
        let (b, c) = (case["b"].as_u64().unwrap(), case["c"].as_u64().unwrap());
        close(mcnemar::exact(b, c), case["p"].as_f64().unwrap(), 1e-10, &format!("b {b}, c {c}"));
    }
    assert_eq!(mcnemar::discordant(&[true, true, false, false], &[true, false, true, false]), (1, 1));
}

#[test]
fn holms_adjustment_matches_the_step_down_rule() {
    for case in fixture()["holm"].as_array().unwrap() {
        let got = holm::adjust(&floats(&case["p"]));
        for (g, w) in got.iter().zip(floats(&case["adjusted"])) {
            close(*g, w, 1e-12, "holm");
        }
    }
    // By hand: (0.01, 0.04, 0.03, 0.005) → (0.03, 0.06, 0.06, 0.02).
    let h = holm::adjust(&[0.01, 0.04, 0.03, 0.005]);
    for (g, w) in h.iter().zip([0.03, 0.06, 0.06, 0.02]) {
        close(*g, w, 1e-12, "holm by hand");
    }
}

#[test]
fn power_and_the_seeds_needed_match_the_noncentral_t() {
    for case in fixture()["power"].as_array().unwrap() {
        let (mean, sd) = (case["mean"].as_f64().unwrap(), case["sd"].as_f64().unwrap());
        for (i, want) in case["power"].as_array().unwrap().iter().enumerate() {
            let Some(want) = want.as_f64() else { continue }; // scipy's NaN at large noncentrality
            close(power::paired_power(i + 2, mean, sd, 0.05), want, 1e-7, &format!("power n {}", i + 2));
        }
        let needed = case["needed"].as_u64().map(|n| n as usize);
        assert_eq!(power::seeds_needed(mean, sd, 0.05, 0.8, 1000), needed, "mean {mean}, sd {sd}");
    }
    assert_eq!(power::seeds_needed(0.0, 1.0, 0.05, 0.8, 1000), None);
}

#[test]
fn friedman_and_the_average_ranks_match_scipy() {
    for case in fixture()["friedman"].as_array().unwrap() {
        let scores: Vec<Vec<f64>> = case["scores"].as_array().unwrap().iter().map(floats).collect();
        let (chi2, p) = ranks::friedman(&scores).unwrap();
        close(chi2, case["chi2"].as_f64().unwrap(), 1e-10, "chi2");
        close(p, case["p"].as_f64().unwrap(), 1e-9, "p");
        for (g, w) in ranks::average_ranks(&scores).unwrap().iter().zip(floats(&case["ranks"])) {
            close(*g, w, 1e-12, "rank");
        }
    }
    assert!(ranks::friedman(&[vec![1.0, 2.0], vec![2.0, 1.0]]).is_err(), "two rows");
}

#[test]
fn the_nemenyi_critical_difference_uses_the_studentized_range_quantile() {
    for case in fixture()["nemenyi"].as_array().unwrap() {
        let k = case["k"].as_u64().unwrap() as usize;
        let q = case["q"].as_f64().unwrap();
        // CD over n = 6 tables.
        let want = q * (k as f64 * (k as f64 + 1.0) / 36.0).sqrt();
        close(ranks::nemenyi_cd(k, 6, 0.05).unwrap(), want, 1e-6, &format!("k {k}"));
    }
    // Demšar's table: q_0.05 = 2.343 for k = 3 (after the √2).
    let cd = ranks::nemenyi_cd(3, 1, 0.05).unwrap() / 2f64.sqrt();
    assert!((cd - 2.343).abs() < 1e-3, "{cd}");
}

fn bools(v: &Value) -> Vec<bool> {
    v.as_array().unwrap().iter().map(|x| x.as_bool().unwrap()).collect()
}

#[test]
fn percentiles_interpolate_as_numpy() {
    let case = &fixture()["percentiles"];
    let mut v = floats(&case["values"]);
    v.sort_by(f64::total_cmp);
    for (q, want) in floats(&case["q"]).into_iter().zip(floats(&case["want"])) {
        close(bootstrap::percentile(&v, q), want, 1e-12, &format!("q {q}"));
    }
}

#[test]
fn the_paired_bootstrap_agrees_with_numpys_within_monte_carlo_error() {
    for case in fixture()["bootstrap"].as_array().unwrap() {
        let (a, b) = (bools(&case["first"]), bools(&case["second"]));
        let got = bootstrap::paired_accuracy(&a, &b, 0.95, 20_000, 3).unwrap();
        close(got.diff, case["diff"].as_f64().unwrap(), 1e-12, "difference");
        // Resampled differences are multiples of 1/n; the percentile's Monte Carlo error at
        // 20 000 resamples is about 0.002 here, the p-value's about 0.006.
        for (g, key) in [(got.low, "low"), (got.high, "high")] {
            let want = case[key].as_f64().unwrap();
            assert!((g - want).abs() < 0.006, "{key}: {g} against numpy's {want}");
        }
        let want = case["p"].as_f64().unwrap();
        assert!((got.p - want).abs() < 0.03, "p: {} against numpy's {want}", got.p);
        // A recorded seed gives the same answer again.
        assert_eq!(bootstrap::paired_accuracy(&a, &b, 0.95, 20_000, 3).unwrap(), got);
    }
    assert!(bootstrap::paired_accuracy(&[true], &[true, false], 0.95, 1000, 0).is_err());
    assert!(bootstrap::paired_accuracy(&[true], &[false], 0.95, 10, 0).is_err());
}
