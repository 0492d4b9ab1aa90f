//! Concat, the baseline: fused cross-entropy only. Each modality's CE is logged (detached),
//! as the paper's Fig. 1 plots them.

use super::options::{resolve, Resolved};
use super::{Method, StepContext, StepLoss, Value};
use crate::error::Result;
use crate::train::loss;

pub struct Concat {
    opts: Resolved,
}

impl Concat {
    pub fn new(given: &[(String, Value)]) -> Result<Concat> {
        Ok(Concat { opts: resolve("concat", &[], given)? })
    }
}

impl Method for Concat {
    fn name(&self) -> &'static str {
        "concat"
    }

    fn options(&self) -> &Resolved {
        &self.opts
    }

    fn loss(&mut self, ctx: &StepContext) -> Result<StepLoss> {
        let fwd = ctx.model.forward(ctx.inputs[0], ctx.inputs[1], true)?;
        let l = loss::fused_only(&fwd.logits, ctx.labels)?;
        Ok(StepLoss { total: l.total, terms: l.terms, diagnostics: Vec::new() })
    }
}
