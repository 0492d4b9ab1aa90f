//! Holm's step-down correction for m comparisons: sort the p-values, multiply the i-th smallest
//! (0-based) by m − i, carry the running maximum, cap at 1. A comparison is significant at α
//! when its adjusted p-value is ≤ α; the family-wise error is then at most α.

/// The adjusted p-values, in the input's order (NaN stays NaN and is left out of m).
pub fn adjust(p: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..p.len()).filter(|&i| !p[i].is_nan()).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let m = order.len();
    let mut out = vec![f64::NAN; p.len()];
    let mut running = 0.0f64;
    for (i, &k) in order.iter().enumerate() {
        running = running.max(((m - i) as f64 * p[k]).min(1.0));
        out[k] = running;
    }
    out
}
