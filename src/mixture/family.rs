//! The three component families of the paper's Table V and their log-densities.

use super::special::ln_gamma;
use crate::error::{Error, Result};
use std::f64::consts::PI;

/// Which distribution each mixture component follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// Gaussian mixture (GMM); scale = standard deviation.
    Gaussian,
    /// Student-t mixture (SMM) with a degrees-of-freedom per component; scale = the t scale.
    StudentT,
    /// Laplace mixture (LMM); scale = b, the mean absolute deviation.
    Laplace,
}

impl Family {
    pub fn parse(name: &str) -> Result<Family> {
        match name.to_ascii_lowercase().as_str() {
            "gmm" | "gaussian" | "normal" => Ok(Family::Gaussian),
            "smm" | "student" | "student_t" | "t" => Ok(Family::StudentT),
            "lmm" | "laplace" => Ok(Family::Laplace),
            other => Err(Error::arg(format!(
                "unknown mixture family \"{other}\": use \"gmm\" (Gaussian), \"smm\" (Student-t) or \"lmm\" (Laplace)"
            ))),
        }
    }

    /// The short name used in scripts and records.
    pub fn name(self) -> &'static str {
        match self {
            Family::Gaussian => "gmm",
            Family::StudentT => "smm",
            Family::Laplace => "lmm",
        }
    }

    /// Free parameters of a k-component mixture (for BIC and AIC): k - 1 weights, k means,
    /// k scales, and k degrees of freedom for the Student-t.
    pub fn n_free_params(self, k: usize) -> usize {
        let per_component = if self == Family::StudentT { 3 } else { 2 };
        k * per_component + k - 1
    }
}

/// One component: its weight π, location, scale and (Student-t only) degrees of freedom.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Component {
    pub weight: f64,
    pub mean: f64,
    pub scale: f64,
    /// Degrees of freedom; infinite for the Gaussian and Laplace families.
    pub dof: f64,
}

/// A component with its constants precomputed, so that ln(π p(x)) costs one log at most.
#[derive(Clone, Copy, Debug)]
pub struct Prepared {
    family: Family,
    constant: f64,
    mean: f64,
    inv_scale: f64,
    dof: f64,
    half_dof_plus_one: f64,
}

impl Prepared {
    /// A component with no weight (ln π = -inf): pads fixed-size loops, contributes nothing.
    pub const NOTHING: Prepared = Prepared {
        family: Family::Gaussian,
        constant: f64::NEG_INFINITY,
        mean: 0.0,
        inv_scale: 1.0,
        dof: f64::INFINITY,
        half_dof_plus_one: f64::INFINITY,
    };

    pub fn new(family: Family, c: &Component) -> Prepared {
        let ln_weight = c.weight.ln();
        let ln_scale = c.scale.ln();
        let constant = ln_weight
            + match family {
                Family::Gaussian => -0.5 * (2.0 * PI).ln() - ln_scale,
                Family::Laplace => -(2.0f64).ln() - ln_scale,
                Family::StudentT => ln_gamma(0.5 * (c.dof + 1.0)) - ln_gamma(0.5 * c.dof) - 0.5 * (c.dof * PI).ln() - ln_scale,
            };
        Prepared { family, constant, mean: c.mean, inv_scale: 1.0 / c.scale, dof: c.dof, half_dof_plus_one: 0.5 * (c.dof + 1.0) }
    }

    /// ln(π_k p_k(x)).
    #[inline]
    pub fn ln_weighted_density(&self, x: f64) -> f64 {
        match self.family {
            Family::Gaussian => self.ln_gaussian(x),
            Family::Laplace => self.ln_laplace(x),
            Family::StudentT => self.ln_student_t(x),
        }
    }

    /// ln(π_k p_k(x)) for a Gaussian component (the family is not checked: hot loops call this).
    #[inline(always)]
    pub fn ln_gaussian(&self, x: f64) -> f64 {
        let z = (x - self.mean) * self.inv_scale;
        self.constant - 0.5 * z * z
    }

    #[inline(always)]
    pub fn ln_laplace(&self, x: f64) -> f64 {
        self.constant - ((x - self.mean) * self.inv_scale).abs()
    }

    #[inline(always)]
    pub fn ln_student_t(&self, x: f64) -> f64 {
        let z = (x - self.mean) * self.inv_scale;
        self.constant - self.half_dof_plus_one * (z * z / self.dof).ln_1p()
    }

    /// The squared standardised distance δ = ((x - μ) / σ)², which the Student-t E-step needs.
    #[inline]
    pub fn mahalanobis(&self, x: f64) -> f64 {
        let z = (x - self.mean) * self.inv_scale;
        z * z
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn density(family: Family, mean: f64, scale: f64, dof: f64, x: f64) -> f64 {
        Prepared::new(family, &Component { weight: 1.0, mean, scale, dof }).ln_weighted_density(x).exp()
    }

    #[test]
    fn densities_integrate_to_one_and_match_closed_forms() {
        for (family, dof) in [(Family::Gaussian, f64::INFINITY), (Family::Laplace, f64::INFINITY), (Family::StudentT, 3.5)] {
            let h = 1e-3;
            let total: f64 = (-200_000..200_000).map(|i| density(family, 0.5, 1.3, dof, i as f64 * h) * h).sum();
            assert!((total - 1.0).abs() < 2e-3, "{family:?} integrates to {total}");
        }
        // N(0,1) at 0: 1/sqrt(2π); Laplace(0,1) at 0: 1/2; Cauchy (t with 1 dof) at 0: 1/π.
        assert!((density(Family::Gaussian, 0.0, 1.0, f64::INFINITY, 0.0) - 1.0 / (2.0 * PI).sqrt()).abs() < 1e-12);
        assert!((density(Family::Laplace, 0.0, 1.0, f64::INFINITY, 0.0) - 0.5).abs() < 1e-12);
        assert!((density(Family::StudentT, 0.0, 1.0, 1.0, 0.0) - 1.0 / PI).abs() < 1e-12);
    }
}
