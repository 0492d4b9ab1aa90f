//! Concat, the baseline: fused cross-entropy only. Each modality's CE is logged (detached),
//! as the paper's Fig. 1 plots them.

use crate::error::Result;
use crate::train::declaration::{Keeps, MethodSpec, Modalities, Reference};
use crate::train::loss;
use crate::train::method::{Method, StepContext, StepLoss};

pub static SPEC: MethodSpec = MethodSpec {
    name: "concat",
    aliases: &["baseline"],
    summary: "the baseline: fused cross-entropy only (each modality's CE logged, detached)",
    reference: Reference::NONE,
    options: &[],
    variants: &[],
    modalities: Modalities::Any,
    keeps_state: Keeps::Never,
    terms: &["ce_fused", "ce_*"],
    diagnostics: &[],
    knob: None,
    build: |_, _| Ok(Box::new(Concat)),
};

pub struct Concat;

impl Method for Concat {
    fn loss(&mut self, ctx: &StepContext) -> Result<StepLoss> {
        let fwd = ctx.model.forward_all(ctx.inputs, true)?;
        let l = loss::fused_only_all(&fwd.logits, ctx.labels, &ctx.model.modalities)?;
        Ok(StepLoss { total: l.total, terms: l.terms, diagnostics: Vec::new() })
    }
}
