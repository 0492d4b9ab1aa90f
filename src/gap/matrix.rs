//! Gaps among N modalities: every ordered pair's mean gap (the [N, N] matrix), and per sample
//! each modality against the mean of the others, from which the dominant and the most neglected
//! modality follow. For two modalities the matrix's (0, 1) entry is the paper's mean gap.

use super::metric::{gap, true_class_score, GapKind};
use crate::error::{Error, Result};
use crate::tensor::{Kind, Tensor};

/// m(l_r) − m(l_c) averaged over the samples, for every ordered pair (r, c): [N, N] float64,
/// antisymmetric, zero on the diagonal.
pub fn gap_matrix(logits: &[Tensor], labels: &Tensor, kind: GapKind) -> Result<Tensor> {
    let n = logits.len();
    let mut out = vec![0.0; n * n];
    for r in 0..n {
        for c in 0..n {
            if r != c {
                let g = gap(&logits[r], &logits[c], labels, kind)?;
                out[r * n + c] = g.f_mean(Kind::Double).and_then(|m| m.f_double_value(&[]))?;
            }
        }
    }
    Tensor::from_slice(&out).f_reshape([n as i64, n as i64]).map_err(Error::from)
}

/// Per sample, each modality's confidence [n, N] (the true-class score for "prob", the KL to
/// uniform for "kl"), and that confidence minus the mean of the other modalities'.
pub struct AgainstOthers {
    pub scores: Tensor,
    pub against_others: Tensor,
    /// The modality with the highest mean score, and the one with the lowest.
    pub dominant: usize,
    pub neglected: usize,
}

pub fn against_others(logits: &[Tensor], labels: &Tensor, kind: GapKind) -> Result<AgainstOthers> {
    let op = "modality_scores";
    let n = logits.len();
    if n < 2 {
        return Err(Error::arg(format!("{op}: needs two or more modalities, got {n}")));
    }
    // A modality's score is its gap against a zero-confidence reference: for prob, s[y] itself.
    let per: Vec<Tensor> = match kind {
        GapKind::Prob => logits.iter().map(|l| true_class_score(l, labels)).collect::<Result<_>>()?,
        GapKind::Kl => {
            // KL(softmax(l) ‖ U) is the KL gap of l against logits that are all equal.
            logits
                .iter()
                .map(|l| l.f_zeros_like().map_err(Error::from).and_then(|z| gap(l, &z, labels, GapKind::Kl)))
                .collect::<Result<_>>()?
        }
    };
    let scores = Tensor::f_stack(&per, 1).and_then(|s| s.f_to_kind(Kind::Double))?;
    let total = scores.f_sum_dim_intlist([1i64].as_slice(), true, Kind::Double)?;
    // s_m − (Σ_k s_k − s_m) / (N − 1)
    let others = total.f_sub(&scores).and_then(|o| o.f_div_scalar((n - 1) as f64))?;
    let against = scores.f_sub(&others)?;
    let means = scores.f_mean_dim([0i64].as_slice(), false, Kind::Double).and_then(|m| Vec::<f64>::try_from(&m))?;
    let order = |better: fn(f64, f64) -> bool| (0..n).fold(0, |best, m| if better(means[m], means[best]) { m } else { best });
    Ok(AgainstOthers { scores, against_others: against, dominant: order(|a, b| a > b), neglected: order(|a, b| a < b) })
}
