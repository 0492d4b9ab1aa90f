//! MMCosine (Xu et al., ICASSP 2023): cosine-normalised logits with a scale,
//! l_m[i, c] = s·cos(x_m[i], W_m[c, :]), fused l_f = Σ_m l_m (l_a + l_v for two), bias unused; loss CE(l_f).
//! The head rule is set on the model, so evaluation predicts with the same cosine logits (the
//! official validation used the raw linear output for the fused prediction; the spec and
//! BalanceBenchmark use the cosine logits, as here). The supplementary contrastive term
//! (λ = 0 in the reference) is not implemented.

use crate::error::Result;
use crate::train::declaration::{Keeps, Knob, MethodSpec, Modalities, Reference};
use crate::train::fusion::HeadRule;
use crate::train::loss;
use crate::train::method::{require_additive_head, Method, StepContext, StepLoss};
use crate::train::model::Model;
use crate::train::options::{opt, Literal, Valid};

pub static SPEC: MethodSpec = MethodSpec {
    name: "mmcosine",
    aliases: &[],
    summary: "cosine-normalised logits with a scale, fused as their sum",
    reference: Reference {
        authors: "Xu et al.",
        venue: "ICASSP 2023",
        code: "https://github.com/GeWu-Lab/MMCosine_ICASSP23",
        commit: "00ba0a9",
    },
    options: &[opt("scale", Literal::Float(10.0), Valid::Float(1e-6, 1e6), "the scale s of s·cos(x, W)")],
    variants: &[],
    // Any number: every modality's head block is normalised, and the fused logits are their sum.
    modalities: Modalities::Any,
    keeps_state: Keeps::Never,
    terms: &["ce_fused", "ce_*"],
    diagnostics: &[],
    knob: Some(Knob { key: "scale", values: &[Literal::Float(5.0), Literal::Float(10.0), Literal::Float(20.0), Literal::Float(40.0)] }),
    build: |o, _| Ok(Box::new(MmCosine { scale: o.float("scale") })),
};

pub struct MmCosine {
    scale: f64,
}

impl Method for MmCosine {
    fn prepare(&self, model: &Model) -> Result<()> {
        require_additive_head("mmcosine", model)?;
        model.head_rule.set(HeadRule::Cosine { scale: self.scale });
        Ok(())
    }

    fn loss(&mut self, ctx: &StepContext) -> Result<StepLoss> {
        let fwd = ctx.model.forward_all(ctx.inputs, true)?;
        let l = loss::fused_only_all(&fwd.logits, ctx.labels, &ctx.model.modalities)?;
        Ok(StepLoss { total: l.total, terms: l.terms, diagnostics: Vec::new() })
    }
}
