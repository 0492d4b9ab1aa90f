//! Concat, the baseline: fused cross-entropy only. Each modality's CE is logged (detached),
//! as the paper's Fig. 1 plots them.

use super::options::{resolve, Resolved};
use crate::error::Result;
use crate::train::loss;
use crate::train::method::{Method, StepContext, StepLoss, Value};

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

    fn max_modalities(&self) -> Option<usize> {
        None
    }

    fn loss(&mut self, ctx: &StepContext) -> Result<StepLoss> {
        let fwd = ctx.model.forward_all(ctx.inputs, true)?;
        let l = loss::fused_only_all(&fwd.logits, ctx.labels, &ctx.model.modalities)?;
        Ok(StepLoss { total: l.total, terms: l.terms, diagnostics: Vec::new() })
    }
}
