//! Gap metrics from logits. Built from libtorch ops so that they stay differentiable and run
//! on whichever device the logits are on.

use crate::error::{Error, Result};
use crate::tensor::{dtype, Kind, Tensor};

/// How the gap between two modalities is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GapKind {
    /// Eq. 5: softmax score of the true class, first modality minus second; in [-1, 1].
    Prob,
    /// Eq. 6: KL(softmax ‖ uniform) of the first minus the second; label-free confidence.
    Kl,
}

impl GapKind {
    pub fn parse(name: &str) -> Result<GapKind> {
        match name {
            "prob" => Ok(GapKind::Prob),
            "kl" => Ok(GapKind::Kl),
            other => Err(Error::arg(format!("unknown gap kind \"{other}\": use \"prob\" (Eq. 5) or \"kl\" (Eq. 6)"))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            GapKind::Prob => "prob",
            GapKind::Kl => "kl",
        }
    }
}

/// Checks one modality's logits [B, M] (float) against labels [B] (int, in [0, M)).
fn check_logits(op: &str, what: &str, logits: &Tensor, labels: &Tensor) -> Result<()> {
    let shape = logits.size();
    if shape.len() != 2 {
        return Err(Error::arg(format!("{op}: {what} must be [batch, classes], got shape {shape:?}")));
    }
    if !dtype::is_float(logits.kind()) {
        return Err(Error::arg(format!("{op}: {what} must be a float tensor, got {}", dtype::kind_name(logits.kind()))));
    }
    let ls = labels.size();
    if ls.len() != 1 || ls[0] != shape[0] {
        return Err(Error::arg(format!("{op}: labels must be [{}] to match {what} {shape:?}, got shape {ls:?}", shape[0])));
    }
    if dtype::is_float(labels.kind()) || labels.kind() == Kind::Bool {
        return Err(Error::arg(format!("{op}: labels must be an int tensor, got {}", dtype::kind_name(labels.kind()))));
    }
    if ls[0] > 0 {
        let lo = labels.f_min().and_then(|t| t.f_int64_value(&[]))?;
        let hi = labels.f_max().and_then(|t| t.f_int64_value(&[]))?;
        if lo < 0 || hi >= shape[1] {
            let bad = if lo < 0 { lo } else { hi };
            return Err(Error::arg(format!("{op}: label {bad} is outside [0, {}) for {} classes", shape[1], shape[1])));
        }
    }
    Ok(())
}

/// s[y]: each row's softmax score of its true class, [B]. Differentiable.
pub fn true_class_score(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let op = "true_class_score";
    check_logits(op, "logits", logits, labels)?;
    let labels = labels.f_to_kind(Kind::Int64).and_then(|l| l.f_to_device(logits.device()))?;
    logits
        .f_softmax(-1, logits.kind())
        .and_then(|s| s.f_gather(1, &labels.f_unsqueeze(1)?, false))
        .and_then(|s| s.f_squeeze_dim(1))
        .map_err(Error::from)
}

/// KL(softmax(l) ‖ U) = log M + Σ s log s per row, [B]; computed from log-softmax for stability.
fn kl_to_uniform(logits: &Tensor) -> Result<Tensor> {
    let classes = logits.size()[1] as f64;
    (|| {
        let log_s = logits.f_log_softmax(-1, logits.kind())?;
        log_s.f_exp()?.f_mul(&log_s)?.f_sum_dim_intlist(-1, false, logits.kind())?.f_add_scalar(classes.ln())
    })()
    .map_err(Error::from)
}

/// The per-sample modality gap g = m(first) - m(second), [B]. Differentiable.
pub fn gap(first: &Tensor, second: &Tensor, labels: &Tensor, kind: GapKind) -> Result<Tensor> {
    let op = "gap";
    check_logits(op, "first logits", first, labels)?;
    check_logits(op, "second logits", second, labels)?;
    if first.size() != second.size() {
        return Err(Error::arg(format!("{op}: the two modalities' logits differ in shape: {:?} and {:?}", first.size(), second.size())));
    }
    let (a, b) = match kind {
        GapKind::Prob => (true_class_score(first, labels)?, true_class_score(second, labels)?),
        GapKind::Kl => (kl_to_uniform(first)?, kl_to_uniform(second)?),
    };
    b.f_to_device(a.device()).and_then(|b| a.f_sub(&b)).map_err(Error::from)
}

/// The gap of the first modality against the others: m(l_0) − mean_{m>0} m(l_m), [B],
/// differentiable; for two modalities exactly `gap(l_0, l_1)` (docs/method.md, "More than two
/// modalities").
pub fn gap_against_rest(per: &[Tensor], labels: &Tensor, kind: GapKind) -> Result<Tensor> {
    let op = "gap";
    match per {
        [] | [_] => Err(Error::arg(format!("{op}: needs two or more modalities' logits, got {}", per.len()))),
        [a, b] => gap(a, b, labels, kind),
        [first, rest @ ..] => {
            // Σ_m (m(l_0) − m(l_m)) / (N − 1) is m(l_0) minus the others' mean.
            let mut total = gap(first, &rest[0], labels, kind)?;
            for other in &rest[1..] {
                total = total.f_add(&gap(first, other, labels, kind)?)?;
            }
            total.f_div_scalar(rest.len() as f64).map_err(Error::from)
        }
    }
}
