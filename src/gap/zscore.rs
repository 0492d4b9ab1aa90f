//! Eq. 7: ĝ = (g - μg) / σg over the collected set, with the population std (1/N), and the
//! μg, σg it used (the adaptive loss maps the balanced mean back to raw units with them).

use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// A z-scored tensor and the statistics it was standardised with.
pub struct ZScore {
    pub z: Tensor,
    pub mean: f64,
    pub std: f64,
}

pub fn zscore(g: &Tensor) -> Result<ZScore> {
    let op = "zscore";
    let n = g.numel();
    if n == 0 {
        return Err(Error::arg(format!("{op}: the tensor is empty; collect gaps first")));
    }
    let values = super::to_f64_vec(op, g)?;
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        let count = values.iter().filter(|v| !v.is_finite()).count();
        return Err(Error::arg(format!("{op}: {count} non-finite value(s), the first at index {i} ({})", values[i])));
    }
    // Two passes in f64, so a float32 tensor of 1M gaps still gets an exact mean and std.
    let mean = values.iter().sum::<f64>() / n as f64;
    let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
    if !(std > 0.0) {
        return Err(Error::arg(format!(
            "{op}: all {n} values are equal ({mean}), so the std is 0 and the z-score is undefined; the model gives every sample the same gap"
        )));
    }
    let z = g.f_sub_scalar(mean).and_then(|d| d.f_div_scalar(std))?;
    Ok(ZScore { z, mean, std })
}
