//! Which modality dominates: the one with the higher mean true-class softmax score over the
//! collected set (method.md; the paper assumes audio).

use super::metric::true_class_score;
use crate::error::{Error, Result};
use crate::tensor::{Kind, Tensor};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dominance {
    /// Mean s[y] of the first and the second modality.
    pub mean_scores: [f64; 2],
    /// 0 if the first modality dominates (ties included), 1 if the second does.
    pub dominant: usize,
}

pub fn dominance(first: &Tensor, second: &Tensor, labels: &Tensor) -> Result<Dominance> {
    let mean = |l: &Tensor| -> Result<f64> {
        let s = true_class_score(l, labels)?;
        s.f_mean(Kind::Double).and_then(|m| m.f_double_value(&[])).map_err(Error::from)
    };
    let mean_scores = [mean(first)?, mean(second)?];
    let dominant = usize::from(mean_scores[1] > mean_scores[0]);
    Ok(Dominance { mean_scores, dominant })
}
