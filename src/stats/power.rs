//! How many seeds a paired t test needs to tell apart a difference of the observed size, given
//! the observed spread: the smallest n whose two-sided test at α has the asked power against
//! mean/sd, the power from the noncentral t distribution (as scipy.stats.nct computes it).

use statrs::distribution::{ChiSquared, Continuous, ContinuousCDF, Normal, StudentsT};

/// P(T ≤ t) for T noncentral t with `dof` degrees of freedom and noncentrality `delta`:
/// T = (Z + δ)/√(V/ν), so P(T ≤ t) = E_V[Φ(t·√(V/ν) − δ)], integrated over w = √V (whose
/// density, 2w·f_χ²(w²), is finite at 0 for every ν ≥ 1) by Simpson's rule.
pub fn noncentral_t_cdf(t: f64, dof: f64, delta: f64) -> f64 {
    let Ok(chi) = ChiSquared::new(dof) else { return f64::NAN };
    let z = Normal::new(0.0, 1.0).expect("standard normal");
    let top = (dof + 40.0 * (2.0 * dof).sqrt() + 60.0).sqrt();
    let steps = 4000;
    let h = top / steps as f64;
    let f = |w: f64| {
        let density = if w == 0.0 {
            if dof == 1.0 {
                (2.0 / std::f64::consts::PI).sqrt()
            } else {
                0.0
            }
        } else {
            2.0 * w * chi.pdf(w * w)
        };
        z.cdf(t * w / dof.sqrt() - delta) * density
    };
    let mut sum = f(0.0) + f(top);
    for i in 1..steps {
        sum += f(i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
    }
    (sum * h / 3.0).clamp(0.0, 1.0)
}

/// The power of the two-sided paired t test at `alpha` with `n` seeds when the differences have
/// mean `mean` and standard deviation `sd`.
pub fn paired_power(n: usize, mean: f64, sd: f64, alpha: f64) -> f64 {
    let dof = n.saturating_sub(1) as f64;
    let Ok(t) = StudentsT::new(0.0, 1.0, dof) else { return f64::NAN };
    let crit = t.inverse_cdf(1.0 - alpha / 2.0);
    let delta = mean.abs() / sd * (n as f64).sqrt();
    1.0 - noncentral_t_cdf(crit, dof, delta) + noncentral_t_cdf(-crit, dof, delta)
}

/// The fewest seeds (2 to `most`) with at least `power`; None when the mean is 0, the spread
/// is not positive and finite, or even `most` seeds fall short.
pub fn seeds_needed(mean: f64, sd: f64, alpha: f64, power: f64, most: usize) -> Option<usize> {
    if mean == 0.0 || !(sd > 0.0 && sd.is_finite()) || !mean.is_finite() {
        return None;
    }
    (2..=most).find(|&n| paired_power(n, mean, sd, alpha) >= power)
}
