//! The loss functions a scripted method builds its objective from, as PyTorch's
//! `torch.nn.functional` defines them (same names, same reductions, same defaults). All are
//! libtorch ops, so they carry the autograd graph of their inputs.

use super::{check, dtype, Kind, Tensor};
use crate::error::{Error, Result};

/// How a per-element loss is summarised: PyTorch's `reduction`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reduction {
    Mean,
    Sum,
    None,
}

impl Reduction {
    pub fn parse(op: &str, name: &str) -> Result<Reduction> {
        match name {
            "mean" => Ok(Reduction::Mean),
            "sum" => Ok(Reduction::Sum),
            "none" => Ok(Reduction::None),
            other => Err(Error::arg(format!("{op}: reduction must be \"mean\", \"sum\" or \"none\", got \"{other}\""))),
        }
    }

    fn torch(self) -> tch::Reduction {
        match self {
            Reduction::Mean => tch::Reduction::Mean,
            Reduction::Sum => tch::Reduction::Sum,
            Reduction::None => tch::Reduction::None,
        }
    }
}

/// Options of `cross_entropy` beyond logits and labels.
pub struct CrossEntropy {
    /// Per-sample weights [B]: the weighted mean Σ w_i·CE_i / B (a per-sample weighting, as the
    /// adaptive loss uses; PyTorch's per-class `weight` is `class_weights`).
    pub weights: Option<Tensor>,
    /// Per-class weights [C], PyTorch's `weight` argument (the mean is then Σ c_{y_i}·CE_i / Σ c_{y_i}).
    pub class_weights: Option<Tensor>,
    pub reduction: Reduction,
    pub label_smoothing: f64,
}

impl Default for CrossEntropy {
    fn default() -> Self {
        CrossEntropy { weights: None, class_weights: None, reduction: Reduction::Mean, label_smoothing: 0.0 }
    }
}

fn check_pair(op: &str, logits: &Tensor, labels: &Tensor) -> Result<()> {
    let (ls, ys) = (logits.size(), labels.size());
    if ls.len() != 2 {
        return Err(Error::arg(format!("{op}: logits must be [batch, classes], got shape {ls:?}")));
    }
    if !dtype::is_float(logits.kind()) {
        return Err(Error::arg(format!("{op}: logits must be a float tensor, got {}", dtype::kind_name(logits.kind()))));
    }
    if ys.len() != 1 || ys[0] != ls[0] {
        return Err(Error::arg(format!("{op}: labels must be [{}] to match logits {ls:?}, got shape {ys:?}", ls[0])));
    }
    if dtype::is_float(labels.kind()) || labels.kind() == Kind::Bool {
        return Err(Error::arg(format!("{op}: labels must be an int tensor (class indices), got {}", dtype::kind_name(labels.kind()))));
    }
    if ys[0] > 0 {
        let lo = check(op, labels.f_min().and_then(|t| t.f_int64_value(&[])))?;
        let hi = check(op, labels.f_max().and_then(|t| t.f_int64_value(&[])))?;
        if lo < 0 || hi >= ls[1] {
            return Err(Error::arg(format!(
                "{op}: label {} is outside [0, {}) for {} classes",
                if lo < 0 { lo } else { hi },
                ls[1],
                ls[1]
            )));
        }
    }
    Ok(())
}

fn reduce(op: &str, per_sample: Tensor, reduction: Reduction) -> Result<Tensor> {
    match reduction {
        Reduction::Mean => check(op, per_sample.f_mean(Kind::Float)),
        Reduction::Sum => check(op, per_sample.f_sum(Kind::Float)),
        Reduction::None => Ok(per_sample),
    }
}

/// Per-sample cross-entropy [B]: −log_softmax(logits)[i, y_i], the trainer's own (every
/// method's losses are built on it).
pub fn per_sample_cross_entropy(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let op = "cross_entropy";
    let logp = check(op, logits.f_log_softmax(-1, Kind::Float))?;
    check(op, labels.f_unsqueeze(1).and_then(|y| logp.f_gather(1, &y, false)).and_then(|t| t.f_squeeze_dim(1)).and_then(|t| t.f_neg()))
}

/// F.cross_entropy(logits [B, C], labels [B]). Without options this is the trainer's own
/// cross-entropy (−log_softmax at the label, then the mean), so a scripted method's loss is the
/// native methods' loss to the last bit.
pub fn cross_entropy(logits: &Tensor, labels: &Tensor, o: &CrossEntropy) -> Result<Tensor> {
    let op = "cross_entropy";
    check_pair(op, logits, labels)?;
    if !(0.0..=1.0).contains(&o.label_smoothing) {
        return Err(Error::arg(format!("{op}: label_smoothing must be in [0, 1], got {}", o.label_smoothing)));
    }
    let b = logits.size()[0];
    let per_sample = if o.class_weights.is_none() && o.label_smoothing == 0.0 {
        per_sample_cross_entropy(logits, labels)?
    } else {
        if let Some(w) = &o.class_weights {
            if w.size() != [logits.size()[1]] {
                return Err(Error::arg(format!("{op}: class_weights must be [{}] (one per class), got {:?}", logits.size()[1], w.size())));
            }
        }
        let cw = match &o.class_weights {
            Some(w) => Some(check(op, w.f_to_kind(logits.kind()).and_then(|w| w.f_to_device(logits.device())))?),
            None => None,
        };
        check(op, logits.f_cross_entropy_loss(labels, cw.as_ref(), tch::Reduction::None, -100, o.label_smoothing))?
    };
    // PyTorch's weighted mean divides by the weight of the labels drawn, not the batch size.
    let denominator = match (&o.class_weights, o.reduction) {
        (Some(w), Reduction::Mean) => Some(check(
            op,
            w.f_to_kind(Kind::Float)
                .and_then(|w| w.f_to_device(logits.device()))
                .and_then(|w| w.f_index_select(0, labels))
                .and_then(|w| w.f_sum(Kind::Float)),
        )?),
        _ => None,
    };
    let per_sample = match &o.weights {
        None => per_sample,
        Some(w) => {
            if w.size() != [b] {
                return Err(Error::arg(format!("{op}: weights must be [{b}] (one per sample), got {:?}", w.size())));
            }
            check(op, w.f_to_kind(Kind::Float).and_then(|w| w.f_to_device(logits.device())).and_then(|w| per_sample.f_mul(&w)))?
        }
    };
    match denominator {
        Some(d) => check(op, per_sample.f_sum(Kind::Float).and_then(|s| s.f_div(&d))),
        None => reduce(op, per_sample, o.reduction),
    }
}

/// F.nll_loss(log_probs [B, C], labels [B]): −log_probs at the label.
pub fn nll(log_probs: &Tensor, labels: &Tensor, reduction: Reduction) -> Result<Tensor> {
    let op = "nll";
    check_pair(op, log_probs, labels)?;
    check(op, log_probs.f_nll_loss(labels, None::<Tensor>, reduction.torch(), -100))
}

/// F.kl_div(input, target): input holds log-probabilities, target probabilities (or
/// log-probabilities with log_target); the "batchmean" reduction divides the sum by the batch.
pub fn kl_div(input: &Tensor, target: &Tensor, reduction: &str, log_target: bool) -> Result<Tensor> {
    let op = "kl_div";
    if input.size() != target.size() {
        return Err(Error::arg(format!("{op}: input {:?} and target {:?} must have one shape", input.size(), target.size())));
    }
    match reduction {
        "batchmean" => {
            let b = input.size().first().copied().unwrap_or(1).max(1) as f64;
            check(op, input.f_kl_div(target, tch::Reduction::Sum, log_target).and_then(|s| s.f_div_scalar(b)))
        }
        other => check(op, input.f_kl_div(target, Reduction::parse(op, other)?.torch(), log_target)),
    }
}

/// F.mse_loss(input, target) (shapes must match: no silent broadcasting, as PyTorch warns).
pub fn mse(input: &Tensor, target: &Tensor, reduction: Reduction) -> Result<Tensor> {
    let op = "mse";
    if input.size() != target.size() {
        return Err(Error::arg(format!("{op}: input {:?} and target {:?} must have one shape", input.size(), target.size())));
    }
    check(op, input.f_mse_loss(target, reduction.torch()))
}

/// F.cosine_similarity(a, b, dim, eps).
pub fn cosine_similarity(a: &Tensor, b: &Tensor, dim: i64, eps: f64) -> Result<Tensor> {
    let op = "cosine_similarity";
    let d = super::ops::norm_dim(op, dim, a.dim().max(b.dim()))?;
    check(op, Tensor::f_cosine_similarity(a, b, d, eps))
}
