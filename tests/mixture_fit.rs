//! Student-t and Laplace mixtures recover known parameters from synthetic draws, EM never
//! lowers the likelihood, k is chosen by BIC, and bad input gives errors, not NaN.

use gapscope::mixture::{fit, BalancedRule, Family, FitOptions, Mixture, RawUnits};
use gapscope::rng::Rng;

/// n draws from a two-component mixture of `family` with the given parameters.
fn draw(family: Family, n: usize, weights: [f64; 2], means: [f64; 2], scales: [f64; 2], dofs: [f64; 2], seed: u64) -> Vec<f64> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let j = usize::from(rng.uniform() >= weights[0]);
            let e = match family {
                Family::Gaussian => rng.normal(),
                Family::StudentT => rng.student_t(dofs[j]),
                Family::Laplace => rng.laplace(),
            };
            means[j] + scales[j] * e
        })
        .collect()
}

fn options(family: Family) -> FitOptions {
    FitOptions { family, ..FitOptions::default() }
}

fn within(name: &str, got: f64, want: f64, rel: f64) {
    assert!((got - want).abs() <= rel * want.abs(), "{name}: got {got}, want {want} within {}%", rel * 100.0);
}

fn assert_monotone(m: &Mixture) {
    for pair in m.history.windows(2) {
        // Rounding in a sum over 50k terms is far below 1e-10 per sample.
        assert!(pair[1] >= pair[0] - 1e-10, "log-likelihood decreased: {} -> {}", pair[0], pair[1]);
    }
    assert!(m.history.len() > 3, "too few iterations to check monotonicity");
}

const N: usize = 50_000;

#[test]
fn student_t_mixture_recovers_its_parameters() {
    let (w, mu, s, nu) = ([0.7, 0.3], [-2.0, 3.0], [1.0, 1.5], [4.0, 8.0]);
    let x = draw(Family::StudentT, N, w, mu, s, nu, 11);
    let m = fit(&x, &options(Family::StudentT)).unwrap();
    eprintln!("{m}");
    for j in 0..2 {
        let c = &m.components[j];
        within("weight", c.weight, w[j], 0.02);
        within("mean", c.mean, mu[j], 0.02);
        within("scale", c.scale, s[j], 0.02);
        // The dof is estimated far less precisely than the rest (its sampling error at
        // n = 50k is several percent), so it gets a 10% band.
        within("dof", c.dof, nu[j], 0.10);
    }
    assert!(m.converged);
    assert_monotone(&m);
}

#[test]
fn laplace_mixture_recovers_its_parameters() {
    let (w, mu, s) = ([0.6, 0.4], [-1.5, 2.5], [0.8, 1.2]);
    let x = draw(Family::Laplace, N, w, mu, s, [0.0; 2], 20);
    let m = fit(&x, &options(Family::Laplace)).unwrap();
    eprintln!("{m}");
    for j in 0..2 {
        let c = &m.components[j];
        within("weight", c.weight, w[j], 0.02);
        within("mean", c.mean, mu[j], 0.02);
        within("scale", c.scale, s[j], 0.02);
    }
    assert_monotone(&m);
}

#[test]
fn gaussian_em_never_lowers_the_likelihood() {
    let x = draw(Family::Gaussian, N, [0.8, 0.2], [0.0, 1.0], [0.5, 0.5], [0.0; 2], 13);
    assert_monotone(&fit(&x, &options(Family::Gaussian)).unwrap());
}

#[test]
fn bic_chooses_one_component_for_one_bump_and_two_for_two() {
    let one = draw(Family::Gaussian, 5000, [1.0, 0.0], [0.0, 0.0], [1.0, 1.0], [0.0; 2], 14);
    let two = draw(Family::Gaussian, 5000, [0.6, 0.4], [-2.0, 2.0], [0.7, 0.7], [0.0; 2], 15);
    let opts = FitOptions { ks: vec![1, 2, 3], ..FitOptions::default() };
    let m1 = fit(&one, &opts).unwrap();
    let m2 = fit(&two, &opts).unwrap();
    assert_eq!(m1.k(), 1, "{m1}");
    assert_eq!(m2.k(), 2, "{m2}");
    assert_eq!(m2.selection.len(), 3);
    let best = m2.selection.iter().map(|s| s.1).fold(f64::INFINITY, f64::min);
    assert_eq!(best, m2.bic());
    // With k = 1 every point is balanced: w0 = 1.
    assert!(m1.balance_weights(&one[..10]).chunks(2).all(|w| w[0] == 1.0 && w[1] == 0.0));
}

#[test]
fn posteriors_sum_to_one_and_the_balanced_rules_differ_as_documented() {
    let x = draw(Family::Gaussian, 4000, [0.3, 0.7], [0.0, 2.0], [0.5, 0.5], [0.0; 2], 16);
    let m = fit(&x, &options(Family::Gaussian)).unwrap();
    let post = m.posterior(&x);
    assert!(post.chunks(2).all(|r| (r[0] + r[1] - 1.0).abs() < 1e-12 && r.iter().all(|p| (0.0..=1.0).contains(p))));
    // "weight": the heavier component (mean 2); "zero": the mean nearest a zero raw gap (mean 0).
    assert_eq!(m.balanced, 1);
    let by_zero = m.clone().with_rule(BalancedRule::Zero, RawUnits::IDENTITY);
    assert_eq!(by_zero.balanced, 0);
    // Mapped back through raw = -2 + 1 * z, the component at z = 2 is the one nearest zero.
    let shifted = m.clone().with_rule(BalancedRule::Zero, RawUnits { mean: -2.0, std: 1.0 });
    assert_eq!(shifted.balanced, 1);
    let w = m.balance_weights(&x[..100]);
    for (row, p) in w.chunks(2).zip(post.chunks(2)) {
        assert_eq!(row[0], p[1]);
    }
    // The mixture density integrates to one.
    let grid: Vec<f64> = (0..20_000).map(|i| -6.0 + i as f64 * 6e-4).collect();
    let area: f64 = m.pdf(&grid).iter().sum::<f64>() * 6e-4;
    assert!((area - 1.0).abs() < 1e-3, "{area}");
}

#[test]
fn bad_input_is_an_error_never_nan() {
    let o = options(Family::Gaussian);
    let e = fit(&[1.0, f64::NAN, 2.0, f64::INFINITY, 3.0], &o).unwrap_err().to_string();
    assert!(e.contains("2 non-finite") && e.contains("index 1"), "{e}");
    let e = fit(&[1.0], &o).unwrap_err().to_string();
    assert!(e.contains("1 point(s) for 2 components"), "{e}");
    let e = fit(&[1.0, 2.0], &FitOptions { ks: vec![0], ..o.clone() }).unwrap_err().to_string();
    assert!(e.contains("k = 0"), "{e}");
    assert!(Family::parse("xmm").unwrap_err().to_string().contains("\"gmm\""));
    let e = fit(&[], &o).unwrap_err().to_string();
    assert!(e.contains("0 point(s)"), "{e}");
}

#[test]
fn equal_values_fit_with_a_floored_variance() {
    for family in [Family::Gaussian, Family::StudentT, Family::Laplace] {
        let m = fit(&[0.25; 50], &options(family)).unwrap();
        for c in &m.components {
            for v in [c.weight, c.mean, c.scale] {
                assert!(v.is_finite(), "{family:?}: {m}");
            }
            assert!(c.scale > 0.0);
        }
        assert!(m.loglik.is_finite() && m.bic().is_finite());
        assert!(m.posterior(&[0.25, 1.0]).iter().all(|p| p.is_finite()));
        let heavy = &m.components[m.balanced];
        assert!((heavy.mean - 0.25).abs() < 1e-12 && heavy.scale <= 1e-3 + 1e-12, "{family:?}: {m}");
    }
}
