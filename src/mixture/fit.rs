//! Fitting: validation of the data, several seeded initialisations keeping the best
//! log-likelihood, and the choice of k by BIC.

use super::em::{self, EmSettings};
use super::family::Family;
use super::init;
use super::model::{BalancedRule, Mixture, RawUnits};
use super::MAX_COMPONENTS;
use crate::error::{Error, Result};
use crate::rng::Rng;

/// Everything a fit can be told; `Default` gives gapscope's documented defaults.
#[derive(Clone, Debug)]
pub struct FitOptions {
    pub family: Family,
    /// Candidate component counts: one entry fits that k; several choose k by lowest BIC.
    pub ks: Vec<usize>,
    pub n_init: usize,
    pub tol: f64,
    pub max_iter: usize,
    pub var_floor: f64,
    pub seed: u64,
    pub rule: BalancedRule,
    pub raw: RawUnits,
    /// Degrees of freedom the Student-t starts from, and the range it may take.
    pub start_dof: f64,
    pub dof_min: f64,
    pub dof_max: f64,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            family: Family::Gaussian,
            ks: vec![2],
            n_init: 5,
            tol: 1e-6,
            max_iter: 1000,
            var_floor: 1e-6,
            seed: 0,
            rule: BalancedRule::Weight,
            raw: RawUnits::IDENTITY,
            start_dof: 10.0,
            dof_min: 0.5,
            dof_max: 1000.0,
        }
    }
}

impl FitOptions {
    fn validate(&self) -> Result<()> {
        if self.ks.is_empty() {
            return Err(Error::arg("k: give a component count (e.g. 2) or a list of candidates (e.g. [1, 2, 3])"));
        }
        for &k in &self.ks {
            if k == 0 || k > MAX_COMPONENTS {
                return Err(Error::arg(format!("k = {k}: a mixture needs between 1 and {MAX_COMPONENTS} components")));
            }
        }
        // Bounds that keep a fit finite: sklearn's defaults are n_init 1 and max_iter 100.
        if self.n_init == 0 || self.n_init > 1000 {
            return Err(Error::arg(format!("n_init = {}: between 1 and 1000 initialisations", self.n_init)));
        }
        if self.max_iter == 0 || self.max_iter > 1_000_000 {
            return Err(Error::arg(format!("max_iter = {}: between 1 and 1000000 EM iterations", self.max_iter)));
        }
        if !(self.tol >= 0.0 && self.tol.is_finite()) {
            return Err(Error::arg(format!("tol = {}: the tolerance must be a finite number >= 0", self.tol)));
        }
        if !(self.var_floor > 0.0 && self.var_floor.is_finite()) {
            return Err(Error::arg(format!("var_floor = {}: the variance floor must be a finite number > 0", self.var_floor)));
        }
        if !(self.raw.std > 0.0 && self.raw.std.is_finite() && self.raw.mean.is_finite()) {
            return Err(Error::arg("raw: mean must be finite and std finite and > 0 (pass the map zscore_stats returns)"));
        }
        if !(self.dof_min > 0.0 && self.dof_min < self.dof_max && self.start_dof > 0.0) {
            return Err(Error::arg("dof range: need 0 < dof_min < dof_max and start_dof > 0"));
        }
        Ok(())
    }
}

/// Errors for values a fit cannot use: NaN or infinite entries (naming how many and where the
/// first is), or too few points for the components asked for.
pub fn check_data(x: &[f64], k: usize) -> Result<()> {
    let mut bad = x.iter().enumerate().filter(|(_, v)| !v.is_finite());
    if let Some((first, value)) = bad.next() {
        let count = 1 + bad.count();
        return Err(Error::arg(format!(
            "the data hold {count} non-finite value(s) (NaN or infinite), the first at index {first} ({value}); drop or replace them before fitting"
        )));
    }
    if x.len() < k {
        return Err(Error::arg(format!("{} point(s) for {k} components: a mixture needs at least as many points as components", x.len())));
    }
    Ok(())
}

/// Fits a mixture to `x` (or, with several candidate k, the one with the lowest BIC).
pub fn fit(x: &[f64], options: &FitOptions) -> Result<Mixture> {
    options.validate()?;
    check_data(x, *options.ks.iter().min().unwrap_or(&1))?;
    // The Laplace M-step takes weighted medians of sorted data; the fit itself does not
    // depend on the order of the points.
    let sorted;
    let x = if options.family == Family::Laplace {
        let mut v = x.to_vec();
        v.sort_by(f64::total_cmp);
        sorted = v;
        &sorted[..]
    } else {
        x
    };
    let mut best: Option<Mixture> = None;
    let mut selection = Vec::new();
    for &k in &options.ks {
        if x.len() < k {
            continue; // a candidate larger than the data: skipped, never chosen
        }
        let m = fit_k(x, k, options);
        selection.push((k, m.bic()));
        if best.as_ref().is_none_or(|b| m.bic() < b.bic()) {
            best = Some(m);
        }
    }
    let mut best = best.expect("check_data guarantees the smallest k fits");
    if options.ks.len() > 1 {
        best.selection = selection;
    }
    Ok(best)
}

fn fit_k(x: &[f64], k: usize, options: &FitOptions) -> Mixture {
    let settings = EmSettings {
        tol: options.tol,
        max_iter: options.max_iter,
        var_floor: options.var_floor,
        dof_min: options.dof_min,
        dof_max: options.dof_max,
    };
    let mut best: Option<em::EmRun> = None;
    for i in 0..options.n_init {
        let mut rng = Rng::stream(options.seed, i as u64);
        let centres = init::kmeans_centres(x, k, &mut rng);
        let start = init::from_clusters(options.family, x, &centres, options.var_floor, options.start_dof);
        let run = em::run(options.family, x, start, &settings);
        if best.as_ref().is_none_or(|b| run.loglik > b.loglik) {
            best = Some(run);
        }
    }
    let run = best.expect("n_init >= 1");
    let mut m = Mixture::new(options.family, run.components, x.len(), run.loglik, options.rule, options.raw);
    m.n_iter = run.n_iter;
    m.converged = run.converged;
    m.history = run.history;
    m
}
