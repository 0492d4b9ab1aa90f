//! MMCosine (Xu et al., ICASSP 2023): cosine-normalised logits with a scale,
//! l_m[i, c] = s·cos(x_m[i], W_m[c, :]), fused l_f = Σ_m l_m (l_a + l_v for two), bias unused; loss CE(l_f).
//! The head rule is set on the model, so evaluation predicts with the same cosine logits (the
//! official validation used the raw linear output for the fused prediction; the spec and
//! BalanceBenchmark use the cosine logits, as here). The supplementary contrastive term
//! (λ = 0 in the reference) is not implemented.

use super::options::{resolve, spec, Resolved, Valid};
use crate::error::Result;
use crate::train::fusion::HeadRule;
use crate::train::loss;
use crate::train::method::{Method, StepContext, StepLoss, Value};
use crate::train::model::Model;

pub struct MmCosine {
    opts: Resolved,
    scale: f64,
}

impl MmCosine {
    pub fn new(given: &[(String, Value)]) -> Result<MmCosine> {
        let opts = resolve("mmcosine", &[spec("scale", Value::Float(10.0), Valid::Float(1e-6, 1e6))], given)?;
        Ok(MmCosine { scale: opts.float("scale"), opts })
    }
}

impl Method for MmCosine {
    fn name(&self) -> &'static str {
        "mmcosine"
    }

    fn options(&self) -> &Resolved {
        &self.opts
    }

    /// Any number: every modality's head block is normalised, and the fused logits are their sum.
    fn max_modalities(&self) -> Option<usize> {
        None
    }

    fn prepare(&self, model: &Model) -> Result<()> {
        super::ogm::require_additive_head("mmcosine", model)?;
        model.head_rule.set(HeadRule::Cosine { scale: self.scale });
        Ok(())
    }

    fn loss(&mut self, ctx: &StepContext) -> Result<StepLoss> {
        let fwd = ctx.model.forward_all(ctx.inputs, true)?;
        let l = loss::fused_only_all(&fwd.logits, ctx.labels, &ctx.model.modalities)?;
        Ok(StepLoss { total: l.total, terms: l.terms, diagnostics: Vec::new() })
    }
}
