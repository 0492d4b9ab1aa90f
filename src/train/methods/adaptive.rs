//! The paper's adaptive objective (Eq. 11), per sample i:
//! L_i = α·w0_i·CE_f + λ_t·(β·g_i² + γ·w1_i·(g_i − μ0_raw)² + CE_a + CE_v), λ_t = ρ^t,
//! with (w0, w1) the mixture's posteriors: stored per sample by the last refit, or computed
//! from each batch's live gaps.

use super::options::{resolve, spec, Resolved, Spec, Valid};
use crate::data::Split;
use crate::error::{Error, Result};
use crate::gap::GapKind;
use crate::mixture::Mixture;
use crate::tensor::{check, Kind, Tensor};
use crate::train::fusion::Logits;
use crate::train::loss::{self, LossConfig};
use crate::train::method::{Method, StepContext, StepLoss, Value};
use std::rc::Rc;

fn specs() -> Vec<Spec> {
    vec![
        spec("alpha", Value::Float(1.0), Valid::Float(0.0, f64::INFINITY)),
        spec("beta", Value::Float(1.0), Valid::Float(0.0, f64::INFINITY)),
        spec("gamma", Value::Float(1.0), Valid::Float(0.0, f64::INFINITY)),
        spec("rho", Value::Float(0.95), Valid::Float(0.0, 1.0)),
        spec("t", Value::Int(0), Valid::Int(0, i64::MAX)),
        spec("gap", Value::Text("prob".into()), Valid::Choice(&["prob", "kl"])),
        spec("use_weights", Value::Bool(true), Valid::Bool),
        spec("unimodal", Value::Bool(true), Valid::Bool),
        spec("mu0_raw", Value::Float(0.0), Valid::Float(f64::NEG_INFINITY, f64::INFINITY)),
    ]
}

/// Where the adaptive loss's (w0, w1) come from.
#[derive(Clone)]
pub enum Weights {
    /// The posteriors of the last refit, looked up by dataset index (the paper's protocol).
    Stored(WeightTable),
    /// The posteriors of each batch's own current gaps under the last fitted mixture (z-scored
    /// with the mixture's raw units), so the weights follow the model between refits.
    Live(Rc<Mixture>),
}

impl Weights {
    fn for_batch(&self, logits: &Logits, labels: &Tensor, indices: &Tensor, kind: GapKind) -> Result<Tensor> {
        match self {
            Weights::Stored(table) => table.lookup(indices),
            Weights::Live(mix) => {
                let g = check(
                    "weights",
                    crate::gap::gap_against_rest(&logits.per, labels, kind)?
                        .f_detach()
                        .and_then(|g| g.f_to_kind(Kind::Double))
                        .and_then(|g| g.f_to_device(tch::Device::Cpu)),
                )?;
                let g = check("weights", Vec::<f64>::try_from(&g))?;
                let z: Vec<f64> = g.iter().map(|x| (x - mix.raw.mean) / mix.raw.std).collect();
                let w = mix.balance_weights(&z);
                check("weights", Tensor::from_slice(&w).f_reshape([z.len() as i64, 2]))
            }
        }
    }
}

/// Per-sample (w0, w1) by dataset row index, built from a split and its [len, 2] weights.
pub struct WeightTable {
    dense: Tensor,
}

impl Clone for WeightTable {
    fn clone(&self) -> Self {
        WeightTable { dense: self.dense.shallow_clone() }
    }
}

impl WeightTable {
    pub fn new(split: &Split, weights: &Tensor) -> Result<WeightTable> {
        let n = split.len() as i64;
        if weights.size() != [n, 2] {
            return Err(Error::arg(format!(
                "weights: expected [{n}, 2] (w0, w1 for each of the {n} samples of split {}), got {:?}; compute them on the same split",
                split.name,
                weights.size()
            )));
        }
        let rows = split.dataset.len() as i64;
        let dense = check("weights", Tensor::f_ones([rows, 2], (Kind::Float, tch::Device::Cpu)))?;
        let idx = Tensor::from_slice(&split.indices[..]);
        let w = check("weights", weights.f_to_kind(Kind::Float).and_then(|w| w.f_to_device(tch::Device::Cpu)))?;
        let dense = check("weights", dense.f_index_put(&[Some(idx)], &w, false))?;
        Ok(WeightTable { dense })
    }

    pub fn lookup(&self, indices: &Tensor) -> Result<Tensor> {
        check("weights", indices.f_to_device(tch::Device::Cpu).and_then(|i| self.dense.f_index_select(0, &i)))
    }
}

pub struct Adaptive {
    opts: Resolved,
    cfg: LossConfig,
    weights: Weights,
}

impl Adaptive {
    pub fn new(given: &[(String, Value)], weights: Option<Weights>) -> Result<Adaptive> {
        let opts = resolve("adaptive", &specs(), given)?;
        let weights = weights.ok_or_else(|| {
            Error::arg("adaptive: needs weights: a weight table from the last refit, weight_table(data.train, mix.balance_weights(z)), or the fitted mixture itself (mix, fitted with raw: zs) for weights from each batch's live gaps")
        })?;
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
        Ok(Adaptive { opts, cfg, weights })
    }
}

impl Method for Adaptive {
    fn name(&self) -> &'static str {
        "adaptive"
    }

    fn options(&self) -> &Resolved {
        &self.opts
    }

    /// N modalities: the first against the others' mean (docs/method.md).
    fn max_modalities(&self) -> Option<usize> {
        None
    }

    fn loss(&mut self, ctx: &StepContext) -> Result<StepLoss> {
        let fwd = ctx.model.forward_all(ctx.inputs, true)?;
        let w = self.weights.for_batch(&fwd.logits, ctx.labels, ctx.indices, self.cfg.gap)?;
        let l = loss::adaptive(&fwd.logits, ctx.labels, &w, &self.cfg, &ctx.model.modalities)?;
        Ok(StepLoss { total: l.total, terms: l.terms, diagnostics: Vec::new() })
    }
}
