//! McNemar's exact test on paired per-sample correctness: of the samples one row gets right
//! and the other wrong (b) or the reverse (c), under no difference each discordant sample is
//! a fair coin, so the two-sided p-value is the binomial test of b successes in b + c at ½
//! (scipy.stats.binomtest(b, b + c, 0.5)): min(1, 2·P(X ≤ min(b, c))).

use statrs::function::beta::beta_reg;

/// The discordant counts of two rows' per-sample correctness (true: right): b where only the
/// first is right, c where only the second is.
pub fn discordant(first: &[bool], second: &[bool]) -> (u64, u64) {
    first.iter().zip(second).fold((0, 0), |(b, c), (&x, &y)| (b + (x && !y) as u64, c + (!x && y) as u64))
}

/// The exact two-sided p-value; 1 when nothing is discordant.
pub fn exact(b: u64, c: u64) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let k = b.min(c);
    // P(X ≤ k) for X ~ Binomial(n, ½) is I_{½}(n − k, k + 1).
    let tail = if k >= n { 1.0 } else { beta_reg((n - k) as f64, (k + 1) as f64, 0.5) };
    (2.0 * tail).min(1.0)
}
