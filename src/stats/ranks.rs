//! Comparing rows across several tables (Demšar, JMLR 2006): each row's average rank over the
//! datasets (1 the best), Friedman's test that all rows rank alike, and the Nemenyi critical
//! difference: two rows whose average ranks differ by more are different at α.

use crate::error::{Error, Result};
use statrs::distribution::{ChiSquared, Continuous, ContinuousCDF, Normal};

/// Ranks of one dataset's scores, 1 for the highest, ties sharing their mean rank.
fn ranks_high_first(scores: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut r = vec![0.0; scores.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let mean = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            r[k] = mean;
        }
        i = j + 1;
    }
    r
}

fn check(scores: &[Vec<f64>]) -> Result<(usize, usize)> {
    let n = scores.len();
    let k = scores.first().map_or(0, Vec::len);
    if n < 2 || k < 3 {
        return Err(Error::arg(format!("ranks across tables need two or more tables and three or more rows, got {n} tables of {k} rows")));
    }
    if scores.iter().any(|s| s.len() != k || s.iter().any(|x| !x.is_finite())) {
        return Err(Error::arg("ranks across tables need every table to score the same rows, each a finite number"));
    }
    Ok((n, k))
}

/// Each row's average rank over the tables (`scores[table][row]`, higher is better).
pub fn average_ranks(scores: &[Vec<f64>]) -> Result<Vec<f64>> {
    let (n, k) = check(scores)?;
    let mut sum = vec![0.0; k];
    for s in scores {
        for (a, r) in sum.iter_mut().zip(ranks_high_first(s)) {
            *a += r;
        }
    }
    Ok(sum.into_iter().map(|x| x / n as f64).collect())
}

/// Friedman's χ² (with scipy's correction for ties) and its p-value on k − 1 degrees of freedom.
pub fn friedman(scores: &[Vec<f64>]) -> Result<(f64, f64)> {
    let (n, k) = check(scores)?;
    let r = average_ranks(scores)?;
    let (nf, kf) = (n as f64, k as f64);
    let sum_sq: f64 = r.iter().map(|x| (x * nf).powi(2)).sum();
    let mut chi2 = 12.0 / (nf * kf * (kf + 1.0)) * sum_sq - 3.0 * nf * (kf + 1.0);
    let mut ties = 0.0;
    for s in scores {
        let mut v = s.clone();
        v.sort_by(f64::total_cmp);
        let mut i = 0;
        while i < v.len() {
            let j = v[i..].iter().take_while(|&&x| x == v[i]).count();
            ties += (j * j * j - j) as f64;
            i += j;
        }
    }
    chi2 /= 1.0 - ties / (kf * (kf * kf - 1.0) * nf);
    let p = ChiSquared::new(kf - 1.0).map_err(|e| Error::arg(e.to_string()))?.sf(chi2);
    Ok((chi2, p))
}

/// P(range of k independent standard normals ≤ q): k ∫ φ(z)·(Φ(z) − Φ(z − q))^{k−1} dz.
pub fn studentized_range_cdf(q: f64, k: usize) -> f64 {
    if q <= 0.0 {
        return 0.0;
    }
    let z = Normal::new(0.0, 1.0).expect("standard normal");
    let (lo, hi, steps) = (-9.0, 9.0 + q, 6000);
    let h = (hi - lo) / steps as f64;
    let f = |x: f64| z.pdf(x) * (z.cdf(x) - z.cdf(x - q)).max(0.0).powi(k as i32 - 1);
    let mut sum = f(lo) + f(hi);
    for i in 1..steps {
        sum += f(lo + i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
    }
    (k as f64 * sum * h / 3.0).clamp(0.0, 1.0)
}

/// The Nemenyi critical difference of average ranks for k rows over n tables at α:
/// q_α/√2·√(k(k + 1)/(6n)), q_α the studentized range quantile at infinite degrees of freedom
/// (Demšar's table: 2.343 for k = 3 at α 0.05, after the √2).
pub fn nemenyi_cd(k: usize, n: usize, alpha: f64) -> Result<f64> {
    if k < 2 || n < 1 || !(alpha > 0.0 && alpha < 1.0) {
        return Err(Error::arg(format!("a critical difference needs k ≥ 2 rows, n ≥ 1 tables and α in (0, 1); got {k}, {n}, {alpha}")));
    }
    let (mut lo, mut hi) = (0.0, 20.0);
    for _ in 0..100 {
        let mid = (lo + hi) / 2.0;
        if studentized_range_cdf(mid, k) < 1.0 - alpha {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let q = (lo + hi) / 2.0 / std::f64::consts::SQRT_2;
    Ok(q * (k as f64 * (k as f64 + 1.0) / (6.0 * n as f64)).sqrt())
}
