//! Modality removal, per sample: the fused logits a model gives when some modalities of some
//! samples are taken away (CML's confidence ranking, sample-level valuation and resampling;
//! M9 of ../shared/baselines-2.md). The references mix three ways, and they are not equivalent:
//! batch norm and biases make an encoder's output on a zero input non-zero.
//!
//! - `input_zero`: the removed modality's input is zeroed and runs through its encoder (one
//!   more forward; in training mode its batch norms see the zeros);
//! - `feature_zero`: its pooled feature is set to 0 before the head (no extra encoder pass);
//! - `logit`: its part of the fused logits is dropped, keeping the head's whole bias:
//!   z = Σ_kept l_m + (removed)·b/N on a concat head, so a concat head gives exactly what
//!   `feature_zero` gives; on a sum head, z = Σ_kept h_m.

use super::fusion::FusionKind;
use super::model::{Forward, Model};
use crate::error::{Error, Result};
use crate::tensor::{Kind, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Removal {
    InputZero,
    FeatureZero,
    Logit,
}

impl Removal {
    pub const NAMES: &'static [&'static str] = &["logit", "feature_zero", "input_zero"];

    pub fn parse(name: &str) -> Result<Removal> {
        match name {
            "input_zero" => Ok(Removal::InputZero),
            "feature_zero" => Ok(Removal::FeatureZero),
            "logit" => Ok(Removal::Logit),
            other => Err(Error::arg(format!("modality removal must be \"logit\", \"feature_zero\" or \"input_zero\", got \"{other}\""))),
        }
    }

    /// Whether this removal is defined on `model`'s head (logit removal needs a head whose
    /// fused logits are a sum of per-modality parts).
    pub fn check(self, method: &str, model: &Model) -> Result<()> {
        if self == Removal::Logit && !matches!(model.fusion.kind, FusionKind::Concat | FusionKind::Sum) {
            return Err(Error::arg(format!(
                "{method}: removal \"logit\" drops a modality's part of the fused logits, which a {} head does not split into; use removal: \"feature_zero\" or \"input_zero\"",
                model.fusion.kind.name()
            )));
        }
        Ok(())
    }
}

/// A [B, N] keep mask's column m as a [B, 1, ...] multiplier for a tensor of `dims` dimensions.
fn column(keep: &Tensor, m: usize, dims: usize, like: &Tensor) -> Result<Tensor> {
    let mut shape = vec![-1i64];
    shape.extend(std::iter::repeat_n(1, dims.saturating_sub(1)));
    (keep
        .f_select(1, m as i64)
        .and_then(|c| c.f_to_kind(like.kind()))
        .and_then(|c| c.f_to_device(like.device()))
        .and_then(|c| c.f_reshape(shape.as_slice())))
    .map_err(Error::from)
}

/// The fused logits with the modalities where `keep` [B, N] is 0 removed, sample by sample.
/// `fwd` is the full forward of `inputs` (the features and logits the removal starts from);
/// `train` is the mode of the extra encoder pass `input_zero` takes.
pub fn fused_without(model: &Model, inputs: &[&Tensor], fwd: &Forward, keep: &Tensor, how: Removal, train: bool) -> Result<Tensor> {
    let n = model.modalities.len();
    if keep.dim() != 2 || keep.size()[1] != n as i64 {
        return Err(Error::arg(format!("removal: the keep mask must be [batch, {n}], got {:?}", keep.size())));
    }
    match how {
        Removal::Logit => {
            how.check("removal", model)?;
            let mut total: Option<Tensor> = None;
            for (m, l) in fwd.logits.per.iter().enumerate() {
                let part = l.f_mul(&column(keep, m, 2, l)?)?;
                total = Some(match total {
                    None => part,
                    Some(t) => t.f_add(&part)?,
                });
            }
            let total = total.expect("two or more modalities");
            if model.fusion.kind != FusionKind::Concat {
                return Ok(total);
            }
            // Each removed modality's share of the bias stays: (removed count)·b/N.
            let bias = model
                .vs
                .variables()
                .get("fusion.fc_out.bias")
                .map(|b| b.shallow_clone())
                .ok_or_else(|| Error::arg("removal: the concat head has no bias".to_string()))?;
            let removed = (keep
                .f_to_kind(Kind::Float)
                .and_then(|k| k.f_to_device(total.device()))
                .and_then(|k| k.f_rsub_scalar(1.0))
                .and_then(|r| r.f_sum_dim_intlist([1i64].as_slice(), true, Kind::Float)))?;
            removed
                .f_mul(&bias.f_div_scalar(n as f64).map_err(|e| Error::torch("removal", e))?)
                .and_then(|b| total.f_add(&b))
                .map_err(Error::from)
        }
        Removal::FeatureZero => {
            let features = fwd
                .features
                .iter()
                .enumerate()
                .map(|(m, x)| x.f_mul(&column(keep, m, x.dim(), x)?).map_err(Error::from))
                .collect::<Result<Vec<_>>>()?;
            Ok(model.head_all(&features)?.fused)
        }
        Removal::InputZero => {
            let zeroed = zero_inputs(inputs, keep)?;
            let refs: Vec<&Tensor> = zeroed.iter().collect();
            Ok(model.forward_all(&refs, train)?.logits.fused)
        }
    }
}

/// The inputs with each removed modality's rows zeroed (`keep` [B, N], 0: removed).
pub fn zero_inputs(inputs: &[&Tensor], keep: &Tensor) -> Result<Vec<Tensor>> {
    inputs.iter().enumerate().map(|(m, x)| x.f_mul(&column(keep, m, x.dim(), x)?).map_err(Error::from)).collect()
}
