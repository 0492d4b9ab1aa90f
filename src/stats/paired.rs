//! The paired comparison over seeds: per-seed differences d_s = a_s − b_s, their mean, the
//! Student t interval mean ± t_{1−α/2, n−1}·sd/√n and the two-sided test of mean 0 (what
//! scipy.stats.ttest_rel computes on a and b).

use crate::error::{Error, Result};
use statrs::distribution::{ContinuousCDF, StudentsT};

#[derive(Clone, Debug, PartialEq)]
pub struct Paired {
    pub n: usize,
    pub mean: f64,
    /// The sample standard deviation of the differences (n − 1 in the denominator).
    pub sd: f64,
    pub low: f64,
    pub high: f64,
    pub t: f64,
    /// Two-sided; NaN when the differences do not vary (t undefined, as scipy).
    pub p: f64,
}

/// The paired comparison of the differences `d` at confidence `level` (0.95).
pub fn paired(d: &[f64], level: f64) -> Result<Paired> {
    let n = d.len();
    if n < 2 {
        return Err(Error::arg(format!("a paired interval needs two or more seeds, got {n}")));
    }
    if !(level > 0.0 && level < 1.0) {
        return Err(Error::arg(format!("a confidence level is in (0, 1), got {level}")));
    }
    let mean = d.iter().sum::<f64>() / n as f64;
    let sd = (d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
    let dist = StudentsT::new(0.0, 1.0, (n - 1) as f64).map_err(|e| Error::arg(e.to_string()))?;
    let q = dist.inverse_cdf(1.0 - (1.0 - level) / 2.0);
    let se = sd / (n as f64).sqrt();
    let t = mean / se;
    let p = if se > 0.0 { 2.0 * dist.sf(t.abs()) } else { f64::NAN };
    Ok(Paired { n, mean, sd, low: mean - q * se, high: mean + q * se, t, p })
}
