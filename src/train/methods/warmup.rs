//! The paper's warm-up objective (Eq. 10): L_wp = CE_f + CE_a + CE_v.

use super::options::{resolve, Resolved};
use crate::error::Result;
use crate::train::loss;
use crate::train::method::{Method, StepContext, StepLoss, Value};

pub struct Warmup {
    opts: Resolved,
}

impl Warmup {
    pub fn new(given: &[(String, Value)]) -> Result<Warmup> {
        Ok(Warmup { opts: resolve("warmup", &[], given)? })
    }
}

impl Method for Warmup {
    fn name(&self) -> &'static str {
        "warmup"
    }

    fn options(&self) -> &Resolved {
        &self.opts
    }

    fn max_modalities(&self) -> Option<usize> {
        None
    }

    fn loss(&mut self, ctx: &StepContext) -> Result<StepLoss> {
        let fwd = ctx.model.forward_all(ctx.inputs, true)?;
        let l = loss::warmup_all(&fwd.logits, ctx.labels, &ctx.model.modalities)?;
        Ok(StepLoss { total: l.total, terms: l.terms, diagnostics: Vec::new() })
    }
}
