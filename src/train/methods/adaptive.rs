//! The paper's adaptive objective (Eq. 11), per sample i:
//! L_i = α·w0_i·CE_f + λ_t·(β·g_i² + γ·w1_i·(g_i − μ0_raw)² + CE_a + CE_v), λ_t = ρ^t,
//! with (w0, w1) the mixture's posteriors: stored per sample by the last refit, or computed
//! from each batch's live gaps.

use crate::error::{Error, Result};
use crate::gap::GapKind;
use crate::train::declaration::{Keeps, MethodSpec, Modalities, Reference};
use crate::train::loss::{self, LossConfig};
use crate::train::method::{Method, StepContext, StepLoss};
use crate::train::options::{opt, Literal, Resolved, Valid};
use crate::train::weights::WEIGHTS_ACCEPTED;
pub use crate::train::weights::{WeightTable, Weights};

// N modalities: the first against the others' mean (docs/method.md).
pub static SPEC: MethodSpec = MethodSpec {
    name: "adaptive",
    aliases: &[],
    summary: "the paper's Eq. 11: each sample's fused and unimodal terms weighted by the gap mixture's posteriors",
    reference: Reference { authors: "the paper (arXiv 2510.21797)", venue: "2025", code: "", commit: "" },
    options: &[
        opt("alpha", Literal::Float(1.0), Valid::Float(0.0, f64::INFINITY), "weight of the fused CE (times w0)"),
        opt("beta", Literal::Float(1.0), Valid::Float(0.0, f64::INFINITY), "weight of the gap penalty g²"),
        opt("gamma", Literal::Float(1.0), Valid::Float(0.0, f64::INFINITY), "weight of the pull towards the balanced mean (times w1)"),
        opt("rho", Literal::Float(0.95), Valid::Float(0.0, 1.0), "decay of the unimodal terms, λ_t = ρ^t"),
        opt("t", Literal::Int(0), Valid::Int(0, i64::MAX), "the epoch count t of λ_t"),
        opt("gap", Literal::Text("prob"), Valid::Choice(&["prob", "kl"]), "the gap: softmax score difference or the KL variant"),
        opt("use_weights", Literal::Bool(true), Valid::Bool, "false: every sample weighs 1 (ablation)"),
        opt("unimodal", Literal::Bool(true), Valid::Bool, "false: drop the unimodal CE terms (ablation)"),
        opt(
            "mu0_raw",
            Literal::Float(0.0),
            Valid::Float(f64::NEG_INFINITY, f64::INFINITY),
            "the balanced component's mean, in raw gap units",
        ),
    ],
    variants: &[],
    modalities: Modalities::Any,
    keeps_state: Keeps::Never,
    terms: &["fusion", "gap_reg", "gap_align", "ce_fused", "ce_*", "gap"],
    diagnostics: &[],
    knob: None,
    build: |o, inputs| Ok(Box::new(Adaptive::new(o, inputs.weights.clone())?)),
};

pub struct Adaptive {
    cfg: LossConfig,
    weights: Weights,
}

impl Adaptive {
    pub fn new(opts: &Resolved, weights: Option<Weights>) -> Result<Adaptive> {
        let weights = weights.ok_or_else(|| Error::arg(format!("adaptive: needs weights: {WEIGHTS_ACCEPTED}")))?;
        let cfg = LossConfig {
            alpha: opts.float("alpha"),
            beta: opts.float("beta"),
            gamma: opts.float("gamma"),
            rho: opts.float("rho"),
            t: opts.int("t"),
            gap: GapKind::parse(opts.text("gap"))?,
            use_weights: opts.boolean("use_weights"),
            unimodal: opts.boolean("unimodal"),
            mu0_raw: opts.float("mu0_raw"),
        };
        Ok(Adaptive { cfg, weights })
    }
}

impl Method for Adaptive {
    fn loss(&mut self, ctx: &StepContext) -> Result<StepLoss> {
        let fwd = ctx.model.forward_all(ctx.inputs, true)?;
        let w = self.weights.for_batch(&fwd.logits, ctx.labels, ctx.indices, self.cfg.gap)?;
        let l = loss::adaptive(&fwd.logits, ctx.labels, &w, &self.cfg, &ctx.model.modalities)?;
        Ok(StepLoss { total: l.total, terms: l.terms, diagnostics: Vec::new() })
    }
}
