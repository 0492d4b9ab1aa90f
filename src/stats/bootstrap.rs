//! The paired bootstrap over test samples: resample the samples (with replacement, the pairs
//! kept together) and recompute the difference in accuracy between two rows. The interval is the
//! percentile interval (numpy's default linear interpolation between order statistics); the
//! two-sided p-value is twice the smaller share of resampled differences on either side of 0.
//! The generator is gapscope's own (crate::rng), so a recorded seed gives the same answer in
//! every version; numpy draws other samples, so the fixtures check agreement within Monte Carlo
//! error, not digit for digit.

use crate::error::{Error, Result};
use crate::rng::Rng;

#[derive(Clone, Debug, PartialEq)]
pub struct Bootstrap {
    /// Accuracy of the first row minus the second's on the samples as given.
    pub diff: f64,
    pub low: f64,
    pub high: f64,
    pub p: f64,
    pub resamples: usize,
    pub seed: u64,
}

/// The paired bootstrap of the accuracy difference of `first` over `second` (per-sample
/// correctness of the same samples in the same order) at confidence `level`.
pub fn paired_accuracy(first: &[bool], second: &[bool], level: f64, resamples: usize, seed: u64) -> Result<Bootstrap> {
    let n = first.len();
    if n == 0 || second.len() != n {
        return Err(Error::arg(format!("a paired bootstrap needs both rows scored on the same samples, got {n} and {}", second.len())));
    }
    if resamples < 100 {
        return Err(Error::arg(format!("a bootstrap needs at least 100 resamples, got {resamples}")));
    }
    if !(level > 0.0 && level < 1.0) {
        return Err(Error::arg(format!("a confidence level is in (0, 1), got {level}")));
    }
    // Each sample contributes +1, 0 or −1 to the difference in the number right.
    let d: Vec<f64> = first.iter().zip(second).map(|(&a, &b)| a as i32 as f64 - b as i32 as f64).collect();
    let diff = d.iter().sum::<f64>() / n as f64;
    let mut rng = Rng::new(seed);
    let mut stats: Vec<f64> = (0..resamples).map(|_| (0..n).map(|_| d[rng.below(n)]).sum::<f64>() / n as f64).collect();
    stats.sort_by(f64::total_cmp);
    let tail = (1.0 - level) / 2.0;
    let at_or_below = stats.iter().filter(|&&x| x <= 0.0).count() as f64 / resamples as f64;
    let at_or_above = stats.iter().filter(|&&x| x >= 0.0).count() as f64 / resamples as f64;
    Ok(Bootstrap {
        diff,
        low: percentile(&stats, tail),
        high: percentile(&stats, 1.0 - tail),
        p: (2.0 * at_or_below.min(at_or_above)).min(1.0),
        resamples,
        seed,
    })
}

/// The q-quantile of sorted values by linear interpolation between order statistics
/// (numpy.percentile's default, "linear").
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (pos - lo as f64) * (sorted[hi] - sorted[lo])
}
