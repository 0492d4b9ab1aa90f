//! The paper's warm-up objective (Eq. 10): L_wp = CE_f + CE_a + CE_v.

use crate::error::Result;
use crate::train::declaration::{Keeps, MethodSpec, Modalities, Reference};
use crate::train::loss;
use crate::train::method::{Method, StepContext, StepLoss};

pub static SPEC: MethodSpec = MethodSpec {
    name: "warmup",
    aliases: &[],
    summary: "the paper's Eq. 10: fused plus every unimodal cross-entropy",
    reference: Reference { authors: "the paper (arXiv 2510.21797)", venue: "2025", code: "", commit: "" },
    options: &[],
    variants: &[],
    modalities: Modalities::Any,
    keeps_state: Keeps::Never,
    terms: &["ce_fused", "ce_*"],
    diagnostics: &[],
    knob: None,
    build: |_, _| Ok(Box::new(Warmup)),
};

pub struct Warmup;

impl Method for Warmup {
    fn loss(&mut self, ctx: &StepContext) -> Result<StepLoss> {
        let fwd = ctx.model.forward_all(ctx.inputs, true)?;
        let l = loss::warmup_all(&fwd.logits, ctx.labels, &ctx.model.modalities)?;
        Ok(StepLoss { total: l.total, terms: l.terms, diagnostics: Vec::new() })
    }
}
