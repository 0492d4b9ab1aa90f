//! Expectation-maximisation for 1-D mixtures: the E-step shared by all families, one exact
//! M-step per family, and the loop with sklearn's convergence rule (change in the mean
//! log-likelihood per sample below `tol`).

use super::family::{Component, Family, Prepared};
use super::special::digamma;
use super::{parallel, MAX_COMPONENTS};

/// Settings of one EM run.
#[derive(Clone, Copy, Debug)]
pub struct EmSettings {
    pub tol: f64,
    pub max_iter: usize,
    /// Lower bound on each component's variance (σ² for GMM and SMM, 2b² for LMM).
    pub var_floor: f64,
    /// Range of the Student-t degrees of freedom.
    pub dof_min: f64,
    pub dof_max: f64,
}

/// What one EM run ends with.
#[derive(Clone, Debug)]
pub struct EmRun {
    pub components: Vec<Component>,
    /// Total log-likelihood of the final parameters.
    pub loglik: f64,
    /// Mean log-likelihood per sample at each E-step, the last entry for the final parameters.
    pub history: Vec<f64>,
    pub n_iter: usize,
    pub converged: bool,
}

/// Added to each component's responsibility mass, as sklearn does, so an empty component
/// keeps a finite (tiny) weight instead of producing 0/0.
const MASS_EPS: f64 = 10.0 * f64::EPSILON;

/// ln Σ_j exp(l_j - max) is taken once per this many points, from the product of the sums:
/// each sum lies in [1, k] with k <= 16, so 64 of them stay below 2^256. One log per 64 points
/// instead of one per point is most of the E-step's speed.
const LOG_BATCH: usize = 64;

/// Fills `resp` (n x k, row-major) with posteriors and returns the total log-likelihood.
pub fn e_step(family: Family, x: &[f64], components: &[Component], resp: &mut [f64]) -> f64 {
    let prepared: Vec<Prepared> = components.iter().map(|c| Prepared::new(family, c)).collect();
    let k = components.len();
    // One monomorphised loop per family: the density has no branch inside the hot loop.
    let parts = parallel::map_slices(x, resp, k, |xs, rows| match family {
        Family::Gaussian => e_step_with(xs, &prepared, rows, Prepared::ln_gaussian),
        Family::Laplace => e_step_with(xs, &prepared, rows, Prepared::ln_laplace),
        Family::StudentT => e_step_with(xs, &prepared, rows, Prepared::ln_student_t),
    });
    parts.iter().sum()
}

#[inline(always)]
fn e_step_with(x: &[f64], prepared: &[Prepared], resp: &mut [f64], ln_density: impl Fn(&Prepared, f64) -> f64) -> f64 {
    let k = prepared.len();
    let mut total = 0.0;
    let mut product = 1.0;
    let mut ln_p = [0.0f64; MAX_COMPONENTS];
    for (i, (xi, row)) in x.iter().zip(resp.chunks_exact_mut(k)).enumerate() {
        let mut max = f64::NEG_INFINITY;
        for (lp, p) in ln_p.iter_mut().zip(prepared) {
            *lp = ln_density(p, *xi);
            max = max.max(*lp);
        }
        let sum = normalise(&ln_p[..k], max, row);
        total += max;
        product *= sum;
        if i % LOG_BATCH == LOG_BATCH - 1 {
            total += product.ln();
            product = 1.0;
        }
    }
    total + product.ln()
}

/// Posteriors from log-terms: r_j = exp(l_j - max) / Σ exp(l_i - max); returns the sum, which
/// lies in [1, k]. Two components (the paper's case) need one exp instead of two.
#[inline(always)]
fn normalise(ln_p: &[f64], max: f64, r: &mut [f64]) -> f64 {
    if let ([a, b], [ra, rb]) = (ln_p, &mut *r) {
        let e = (-(a - b).abs()).exp();
        let sum = 1.0 + e;
        let (hi, lo) = (1.0 / sum, e / sum);
        (*ra, *rb) = if a >= b { (hi, lo) } else { (lo, hi) };
        return sum;
    }
    let mut sum = 0.0;
    for (rj, lp) in r.iter_mut().zip(ln_p) {
        *rj = (lp - max).exp();
        sum += *rj;
    }
    let inv = 1.0 / sum;
    r.iter_mut().for_each(|rj| *rj *= inv);
    sum
}

/// The Gaussian E-step fused with the M-step's sufficient statistics, so no n x k matrix is
/// written: per component Σr, Σr(x - c), Σr(x - c)². The shift c (the data mean) keeps the
/// one-pass variance free of cancellation. Returns the total log-likelihood.
fn gaussian_pass(x: &[f64], components: &[Component], center: f64, stats: &mut [[f64; 3]]) -> f64 {
    let prepared: Vec<Prepared> = components.iter().map(|c| Prepared::new(Family::Gaussian, c)).collect();
    let parts = parallel::map_slices(x, &mut [], 0, |xs, _| {
        let mut part = vec![[0.0; 3]; prepared.len()];
        let ll = gaussian_slice(xs, &prepared, center, &mut part);
        (ll, part)
    });
    stats.iter_mut().for_each(|s| *s = [0.0; 3]);
    let mut total = 0.0;
    for (ll, part) in parts {
        total += ll;
        for (s, p) in stats.iter_mut().zip(part) {
            for (a, b) in s.iter_mut().zip(p) {
                *a += b;
            }
        }
    }
    total
}

fn gaussian_slice(x: &[f64], prepared: &[Prepared], center: f64, stats: &mut [[f64; 3]]) -> f64 {
    // A fixed component count lets the compiler unroll the inner loops and keep the
    // accumulators in registers; counts above 4 are padded with weightless components.
    match prepared.len() {
        1 => gaussian_slice_k::<1>(x, prepared, center, stats),
        2 => gaussian_slice_k::<2>(x, prepared, center, stats),
        3 => gaussian_slice_k::<3>(x, prepared, center, stats),
        4 => gaussian_slice_k::<4>(x, prepared, center, stats),
        _ => gaussian_slice_k::<MAX_COMPONENTS>(x, prepared, center, stats),
    }
}

#[inline(always)]
fn gaussian_slice_k<const K: usize>(x: &[f64], prepared: &[Prepared], center: f64, out: &mut [[f64; 3]]) -> f64 {
    let k = prepared.len();
    let mut comps = [Prepared::NOTHING; K];
    comps[..k].copy_from_slice(prepared);
    let mut stats = [[0.0f64; 3]; K];
    let mut total = 0.0;
    // Blocks of LOG_BATCH points in three phases (densities, posteriors, sums): the first and
    // last are plain arithmetic over arrays that the compiler vectorises; only the exp calls
    // remain scalar.
    let mut ln_p = [[0.0f64; K]; LOG_BATCH];
    let mut max = [0.0f64; LOG_BATCH];
    for block in x.chunks(LOG_BATCH) {
        let m = block.len();
        for ((lp, mx), xi) in ln_p.iter_mut().zip(max.iter_mut()).zip(block) {
            *mx = f64::NEG_INFINITY;
            for (l, p) in lp.iter_mut().zip(&comps) {
                *l = p.ln_gaussian(*xi);
                *mx = mx.max(*l);
            }
        }
        let mut product = 1.0;
        for (lp, mx) in ln_p[..m].iter_mut().zip(&max) {
            let mut r = [0.0f64; K];
            product *= normalise(lp, *mx, &mut r);
            *lp = r;
            total += mx;
        }
        total += product.ln();
        for (r, xi) in ln_p[..m].iter().zip(block) {
            let d = xi - center;
            for (s, w) in stats.iter_mut().zip(r) {
                s[0] += w;
                s[1] += w * d;
                s[2] += w * d * d;
            }
        }
    }
    out[..k].copy_from_slice(&stats[..k]);
    total
}

/// Gaussian M-step from the fused statistics (same result as `m_step` on the responsibilities).
fn gaussian_from_stats(stats: &[[f64; 3]], n: f64, center: f64, var_floor: f64) -> Vec<Component> {
    stats
        .iter()
        .map(|s| {
            let mass = s[0] + MASS_EPS;
            let shift = s[1] / mass;
            let var = (s[2] / mass - shift * shift).max(0.0);
            Component { weight: mass / n, mean: center + shift, scale: var.max(var_floor).sqrt(), dof: f64::INFINITY }
        })
        .collect()
}

/// The M-step: new parameters from the responsibilities (and, for the Student-t, the old
/// parameters, whose latent scale weights u = (ν + 1) / (ν + δ) the E-step implies).
/// `x` must be sorted ascending for the Laplace family (its location is a weighted median).
pub fn m_step(family: Family, x: &[f64], resp: &[f64], old: &[Component], settings: &EmSettings) -> Vec<Component> {
    let n = x.len() as f64;
    let k = old.len();
    (0..k)
        .map(|j| {
            let r = || resp.iter().skip(j).step_by(k).copied();
            let mass: f64 = r().sum::<f64>() + MASS_EPS;
            let weight = mass / n;
            match family {
                Family::Gaussian => {
                    let mean = x.iter().zip(r()).map(|(xi, ri)| ri * xi).sum::<f64>() / mass;
                    let var = x.iter().zip(r()).map(|(xi, ri)| ri * (xi - mean).powi(2)).sum::<f64>() / mass;
                    Component { weight, mean, scale: var.max(settings.var_floor).sqrt(), dof: f64::INFINITY }
                }
                Family::Laplace => {
                    let mean = weighted_median(x, r(), old[j].mean);
                    let b = x.iter().zip(r()).map(|(xi, ri)| ri * (xi - mean).abs()).sum::<f64>() / mass;
                    Component { weight, mean, scale: b.max((settings.var_floor / 2.0).sqrt()), dof: f64::INFINITY }
                }
                Family::StudentT => student_t_update(x, r, mass, weight, &old[j], settings),
            }
        })
        .collect()
}

fn student_t_update<I: Iterator<Item = f64>>(
    x: &[f64],
    r: impl Fn() -> I,
    mass: f64,
    weight: f64,
    old: &Component,
    settings: &EmSettings,
) -> Component {
    let p = Prepared::new(Family::StudentT, old);
    let nu = old.dof;
    let u = |xi: f64| (nu + 1.0) / (nu + p.mahalanobis(xi));
    let mut sum_ru = 0.0;
    let mut sum_rux = 0.0;
    let mut sum_r_lnu_minus_u = 0.0;
    for (xi, ri) in x.iter().zip(r()) {
        let ui = u(*xi);
        sum_ru += ri * ui;
        sum_rux += ri * ui * xi;
        sum_r_lnu_minus_u += ri * (ui.ln() - ui);
    }
    let mean = if sum_ru > 0.0 { sum_rux / sum_ru } else { old.mean };
    let var = x.iter().zip(r()).map(|(xi, ri)| ri * u(*xi) * (xi - mean).powi(2)).sum::<f64>() / mass;
    // The dof maximises the expected complete log-likelihood: the root in ν of
    // -ψ(ν/2) + ln(ν/2) + 1 + mean_r(ln u - u) + ψ((ν_old+1)/2) - ln((ν_old+1)/2).
    // The left side falls from +inf towards a negative constant, so the root is unique; a
    // root outside [dof_min, dof_max] clamps to the nearer end (Q is concave in ν).
    let c = 1.0 + sum_r_lnu_minus_u / mass + digamma(0.5 * (nu + 1.0)) - (0.5 * (nu + 1.0)).ln();
    let f = |v: f64| -digamma(0.5 * v) + (0.5 * v).ln() + c;
    let dof = solve_decreasing(f, settings.dof_min, settings.dof_max);
    Component { weight, mean, scale: var.max(settings.var_floor).sqrt(), dof }
}

/// The root of a decreasing function on [lo, hi] by bisection in log space, clamped to the ends.
fn solve_decreasing(f: impl Fn(f64) -> f64, lo: f64, hi: f64) -> f64 {
    if f(lo) <= 0.0 {
        return lo;
    }
    if f(hi) >= 0.0 {
        return hi;
    }
    let (mut a, mut b) = (lo.ln(), hi.ln());
    for _ in 0..80 {
        let mid = 0.5 * (a + b);
        if f(mid.exp()) > 0.0 {
            a = mid;
        } else {
            b = mid;
        }
        if b - a < 1e-12 {
            break;
        }
    }
    (0.5 * (a + b)).exp()
}

/// The weighted median of ascending `x`: the first point where the cumulative weight reaches
/// half the total. With no weight at all it keeps `fallback`.
fn weighted_median(x: &[f64], weights: impl Iterator<Item = f64> + Clone, fallback: f64) -> f64 {
    let total: f64 = weights.clone().sum();
    if !(total > 0.0) {
        return fallback;
    }
    let half = 0.5 * total;
    let mut acc = 0.0;
    for (xi, wi) in x.iter().zip(weights) {
        acc += wi;
        if acc >= half {
            return *xi;
        }
    }
    *x.last().unwrap_or(&fallback)
}

/// Runs EM from `start` until the mean log-likelihood changes by less than `tol`.
pub fn run(family: Family, x: &[f64], start: Vec<Component>, settings: &EmSettings) -> EmRun {
    let n = x.len() as f64;
    let k = start.len();
    let center = x.iter().sum::<f64>() / n;
    let mut resp = if family == Family::Gaussian { Vec::new() } else { vec![0.0; x.len() * k] };
    let mut stats = vec![[0.0; 3]; k];
    let mut components = start;
    let mut history = Vec::new();
    let mut converged = false;
    let mut n_iter = 0;
    let mut previous = f64::NEG_INFINITY;
    while n_iter < settings.max_iter {
        // A stop (Ctrl-C, --timeout) ends the fit early; the engine then ends the script.
        if crate::interrupt::pending().is_some() {
            break;
        }
        n_iter += 1;
        let mean_ll = if family == Family::Gaussian {
            let ll = gaussian_pass(x, &components, center, &mut stats) / n;
            components = gaussian_from_stats(&stats, n, center, settings.var_floor);
            ll
        } else {
            let ll = e_step(family, x, &components, &mut resp) / n;
            components = m_step(family, x, &resp, &components, settings);
            ll
        };
        history.push(mean_ll);
        if (mean_ll - previous).abs() < settings.tol {
            converged = true;
            break;
        }
        previous = mean_ll;
    }
    let loglik = if family == Family::Gaussian {
        gaussian_pass(x, &components, center, &mut stats)
    } else {
        e_step(family, x, &components, &mut resp)
    };
    history.push(loglik / n);
    EmRun { components, loglik, history, n_iter, converged }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_median_is_the_half_mass_point() {
        let x = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(weighted_median(&x, [1.0, 1.0, 1.0, 1.0].into_iter(), 0.0), 2.0);
        assert_eq!(weighted_median(&x, [0.0, 0.0, 1.0, 5.0].into_iter(), 0.0), 4.0);
        assert_eq!(weighted_median(&x, [0.0; 4].into_iter(), 9.0), 9.0);
    }

    #[test]
    fn bisection_finds_and_clamps_roots() {
        assert!((solve_decreasing(|v| 5.0 - v, 0.1, 100.0) - 5.0).abs() < 1e-9);
        assert_eq!(solve_decreasing(|v| 500.0 - v, 0.1, 100.0), 100.0);
        assert_eq!(solve_decreasing(|v| -v, 0.1, 100.0), 0.1);
    }
}
