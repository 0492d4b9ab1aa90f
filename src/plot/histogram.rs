//! Density histograms: bins that integrate to one, so a fitted density can be drawn over them.

use crate::error::{Error, Result};

/// Equal-width bins over [lo, hi]: (left edge, right edge, density).
#[derive(Clone, Debug)]
pub struct Histogram {
    pub bins: Vec<(f64, f64, f64)>,
    pub lo: f64,
    pub hi: f64,
}

/// The larger of the Freedman-Diaconis count (width 2·IQR·n^(-1/3)) and √n, within [10, 120]:
/// FD alone is coarse for bimodal gaps (the IQR spans both modes), and the bounds keep small
/// sets showing a shape and large ones readable.
pub fn auto_bins(sorted: &[f64]) -> usize {
    let n = sorted.len();
    let q = |p: f64| sorted[((n - 1) as f64 * p).round() as usize];
    let iqr = q(0.75) - q(0.25);
    let range = sorted[n - 1] - sorted[0];
    if range <= 0.0 {
        return 10;
    }
    let sqrt_rule = (n as f64).sqrt().ceil() as usize;
    let fd = if iqr > 0.0 { (range / (2.0 * iqr / (n as f64).cbrt())).ceil() as usize } else { 0 };
    fd.max(sqrt_rule).clamp(10, 120)
}

/// The most bins a histogram may have.
pub const MAX_BINS: usize = 10_000;

/// A density histogram of finite `values` (`bins = None` picks the count).
pub fn density(values: &[f64], bins: Option<usize>) -> Result<Histogram> {
    if values.is_empty() {
        return Err(Error::arg("no values to draw: the data are empty"));
    }
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::arg(format!("cannot draw non-finite values: the first is at index {i} ({})", values[i])));
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    // More bins than pixels draws nothing more, and a huge count would exhaust memory.
    if let Some(b) = bins.filter(|&b| b == 0 || b > MAX_BINS) {
        return Err(Error::arg(format!("bins must be between 1 and {MAX_BINS}, got {b}")));
    }
    let count = bins.unwrap_or_else(|| auto_bins(&sorted)).max(1);
    let (mut lo, mut hi) = (sorted[0], sorted[sorted.len() - 1]);
    if hi - lo <= 0.0 {
        // All values equal: one unit-wide window around them.
        lo -= 0.5;
        hi += 0.5;
    }
    let width = (hi - lo) / count as f64;
    let mut counts = vec![0usize; count];
    for v in &sorted {
        let b = (((v - lo) / width) as usize).min(count - 1);
        counts[b] += 1;
    }
    let n = values.len() as f64;
    let bins =
        counts.iter().enumerate().map(|(i, c)| (lo + i as f64 * width, lo + (i + 1) as f64 * width, *c as f64 / (n * width))).collect();
    Ok(Histogram { bins, lo, hi })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn density_integrates_to_one() {
        let v: Vec<f64> = (0..1000).map(|i| ((i * 37) % 101) as f64 / 7.0).collect();
        let h = density(&v, None).unwrap();
        let area: f64 = h.bins.iter().map(|(l, r, d)| (r - l) * d).sum();
        assert!((area - 1.0).abs() < 1e-12);
        assert!(density(&[], None).is_err());
        assert!(density(&[1.0, f64::NAN], None).is_err());
        assert_eq!(density(&[3.0; 5], Some(4)).unwrap().bins.len(), 4);
    }
}
