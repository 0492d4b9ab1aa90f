//! A fitted mixture: its parameters, fit statistics, which component is "balanced", and the
//! posteriors and densities it gives new points.

use super::em::e_step;
use super::family::{Component, Family, Prepared};
use crate::error::{Error, Result};
use std::fmt;

/// How the balanced component (the paper's k = 0) is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BalancedRule {
    /// The component with the largest weight π (the paper assumes π0 > π1).
    Weight,
    /// The component whose mean, mapped back to raw gap units, is nearest 0.
    Zero,
}

impl BalancedRule {
    pub fn parse(name: &str) -> Result<BalancedRule> {
        match name {
            "weight" => Ok(BalancedRule::Weight),
            "zero" => Ok(BalancedRule::Zero),
            other => Err(Error::arg(format!(
                "unknown balanced_rule \"{other}\": use \"weight\" (largest weight) or \"zero\" (mean nearest a zero gap)"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            BalancedRule::Weight => "weight",
            BalancedRule::Zero => "zero",
        }
    }
}

/// The affine map from the fitted (z-scored) units back to raw gap units: raw = mean + std * z.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RawUnits {
    pub mean: f64,
    pub std: f64,
}

impl RawUnits {
    pub const IDENTITY: RawUnits = RawUnits { mean: 0.0, std: 1.0 };
    pub fn to_raw(&self, z: f64) -> f64 {
        self.mean + self.std * z
    }
}

/// A fitted 1-D mixture; components are sorted by mean.
#[derive(Clone, Debug)]
pub struct Mixture {
    pub family: Family,
    pub components: Vec<Component>,
    /// Number of points it was fitted to.
    pub n: usize,
    /// Total log-likelihood of the data under the fit.
    pub loglik: f64,
    pub n_iter: usize,
    pub converged: bool,
    /// Mean log-likelihood per sample at each E-step of the kept initialisation.
    pub history: Vec<f64>,
    pub rule: BalancedRule,
    pub raw: RawUnits,
    /// Index of the balanced component under `rule`.
    pub balanced: usize,
    /// (k, BIC) of every candidate when k was chosen by BIC; empty otherwise.
    pub selection: Vec<(usize, f64)>,
}

impl Mixture {
    /// Assembles a mixture from fitted components: sorts them by mean and applies the rule.
    pub fn new(family: Family, mut components: Vec<Component>, n: usize, loglik: f64, rule: BalancedRule, raw: RawUnits) -> Mixture {
        components.sort_by(|a, b| a.mean.total_cmp(&b.mean));
        let mut m = Mixture {
            family,
            components,
            n,
            loglik,
            n_iter: 0,
            converged: true,
            history: Vec::new(),
            rule,
            raw,
            balanced: 0,
            selection: Vec::new(),
        };
        m.balanced = m.balanced_index(rule, raw);
        m
    }

    pub fn k(&self) -> usize {
        self.components.len()
    }

    fn balanced_index(&self, rule: BalancedRule, raw: RawUnits) -> usize {
        let key = |c: &Component| match rule {
            BalancedRule::Weight => -c.weight,
            BalancedRule::Zero => raw.to_raw(c.mean).abs(),
        };
        // Ties go to the first (lowest-mean) component.
        (0..self.k()).fold(0, |best, j| if key(&self.components[j]) < key(&self.components[best]) { j } else { best })
    }

    /// Re-chooses the balanced component under another rule or raw-unit map.
    pub fn with_rule(mut self, rule: BalancedRule, raw: RawUnits) -> Mixture {
        self.rule = rule;
        self.raw = raw;
        self.balanced = self.balanced_index(rule, raw);
        self
    }

    pub fn n_free_params(&self) -> usize {
        self.family.n_free_params(self.k())
    }

    /// Bayesian information criterion: -2 ln L + p ln n (lower is better; sklearn's `bic`).
    pub fn bic(&self) -> f64 {
        -2.0 * self.loglik + self.n_free_params() as f64 * (self.n as f64).ln()
    }

    /// Akaike information criterion: -2 ln L + 2p.
    pub fn aic(&self) -> f64 {
        -2.0 * self.loglik + 2.0 * self.n_free_params() as f64
    }

    /// Mean log-likelihood per sample (sklearn's `score`).
    pub fn mean_loglik(&self) -> f64 {
        self.loglik / self.n.max(1) as f64
    }

    /// Posteriors w[i, j] = π_j p_j(x_i) / Σ_l π_l p_l(x_i), row-major n x k; rows sum to 1.
    pub fn posterior(&self, x: &[f64]) -> Vec<f64> {
        let mut resp = vec![0.0; x.len() * self.k()];
        e_step(self.family, x, &self.components, &mut resp);
        resp
    }

    /// The paper's (w0, w1) per point, row-major n x 2: w0 = posterior of the balanced
    /// component, w1 = 1 - w0 (the other components together). With k = 1, w0 = 1.
    pub fn balance_weights(&self, x: &[f64]) -> Vec<f64> {
        let k = self.k();
        let post = self.posterior(x);
        post.chunks_exact(k)
            .flat_map(|row| {
                let w0 = row[self.balanced];
                [w0, 1.0 - w0]
            })
            .collect()
    }

    /// Mixture density Σ π_j p_j(x) at each point.
    pub fn pdf(&self, x: &[f64]) -> Vec<f64> {
        let prepared = self.prepared();
        x.iter().map(|xi| prepared.iter().map(|p| p.ln_weighted_density(*xi).exp()).sum()).collect()
    }

    /// The weighted density π_j p_j(x) of one component at each point.
    pub fn component_pdf(&self, j: usize, x: &[f64]) -> Vec<f64> {
        let p = Prepared::new(self.family, &self.components[j]);
        x.iter().map(|xi| p.ln_weighted_density(*xi).exp()).collect()
    }

    fn prepared(&self) -> Vec<Prepared> {
        self.components.iter().map(|c| Prepared::new(self.family, c)).collect()
    }

    /// "balanced" for the balanced component, "imbalanced" for the others.
    pub fn role(&self, j: usize) -> &'static str {
        if j == self.balanced {
            "balanced"
        } else {
            "imbalanced"
        }
    }
}

impl fmt::Display for Mixture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = if self.converged {
            format!("converged in {} iterations", self.n_iter)
        } else {
            format!("NOT converged after {} iterations (raise max_iter or tol)", self.n_iter)
        };
        writeln!(
            f,
            "Mixture({}, k={}, n={}, loglik={:.4}, bic={:.2}, aic={:.2}, {}, balanced by {})",
            self.family.name(),
            self.k(),
            self.n,
            self.loglik,
            self.bic(),
            self.aic(),
            status,
            self.rule.name()
        )?;
        let with_dof = self.family == Family::StudentT;
        write!(f, "  component  role        weight      mean     scale")?;
        if with_dof {
            write!(f, "       dof")?;
        }
        for (j, c) in self.components.iter().enumerate() {
            write!(f, "\n  {j:>9}  {:<10} {:>7.4} {:>9.4} {:>9.4}", self.role(j), c.weight, c.mean, c.scale)?;
            if with_dof {
                write!(f, " {:>9.3}", c.dof)?;
            }
        }
        if !self.selection.is_empty() {
            let cands: Vec<String> = self.selection.iter().map(|(k, b)| format!("k={k}: {b:.2}")).collect();
            write!(f, "\n  k chosen by BIC among {}", cands.join(", "))?;
        }
        Ok(())
    }
}
