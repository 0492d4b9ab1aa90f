//! OPM&OGM (Wei, Hu, Du, Wen, TPAMI 2024): on-the-fly prediction modulation, which drops the
//! dominant modality's features at random in the forward pass, together with OGM-GE on the
//! backward pass (../shared/baselines.md §8; Table II's row read as both on at once).
//!
//! After `warmup` plain epochs, per step: scores s_m from the split logits (detached);
//! r_m = tanh(relu(s_m/s_other − 1)); q_m = clip(q_base·(1 + λ·r_m), 0, 1) where r_m > 0,
//! else 0 (only the dominant modality is dropped). With probability p_exe, drawn once per
//! batch, each sample keeps modality m with probability 1 − q_m; kept features are divided by
//! 1 − θ, θ = Σ d_m q_m / Σ d_m (capped at 0.9), and samples with both modalities dropped are
//! removed. Then fused CE on what is left, backward, OGM-GE, update. One seeded generator
//! (seed, global step) draws both the coin and the masks.

use super::ogm::{self, Ogm};
use super::options::{resolve, spec, Resolved, Valid};
use crate::train::method::{mean_ce, score_sum, Method, StepContext, StepLoss, Value};
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::tensor::{check, Tensor};
use crate::train::model::Model;

/// θ's cap: 1/(1 − θ) grows without bound as θ → 1 (unreachable with the defaults).
const THETA_MAX: f64 = 0.9;

pub struct OpmOgm {
    opts: Resolved,
    warmup: usize,
    opm: bool,
    q_base: f64,
    lambda: f64,
    p_exe: f64,
    seed: u64,
    ogm: Option<Ogm>,
    pending: [f64; 2],
}

/// q for each modality from the two scores.
pub fn drop_rates(s: [f64; 2], q_base: f64, lambda: f64) -> [f64; 2] {
    let r = |mine: f64, other: f64| (mine / other - 1.0).max(0.0).tanh();
    let q = |r: f64| if r > 0.0 { (q_base * (1.0 + lambda * r)).clamp(0.0, 1.0) } else { 0.0 };
    let (r1, r2) = (r(s[0], s[1]), r(s[1], s[0]));
    [if r1.is_nan() { 0.0 } else { q(r1) }, if r2.is_nan() { 0.0 } else { q(r2) }]
}

/// θ = Σ d_m q_m / Σ d_m, capped.
pub fn theta(q: [f64; 2], dims: [i64; 2]) -> f64 {
    ((dims[0] as f64 * q[0] + dims[1] as f64 * q[1]) / (dims[0] + dims[1]) as f64).min(THETA_MAX)
}

impl OpmOgm {
    pub fn new(given: &[(String, Value)]) -> Result<OpmOgm> {
        let mut specs = vec![
            spec("warmup", Value::Int(6), Valid::Int(0, i64::MAX)),
            spec("opm", Value::Bool(true), Valid::Bool),
            spec("ogm", Value::Bool(true), Valid::Bool),
            spec("q_base", Value::Float(0.5), Valid::Float(0.0, 1.0)),
            spec("lambda", Value::Float(0.5), Valid::Float(0.0, f64::INFINITY)),
            spec("p_exe", Value::Float(0.7), Valid::Float(0.0, 1.0)),
        ];
        specs.extend(ogm::specs(0.8, 60.0));
        let opts = resolve("opm&ogm", &specs, given)?;
        Ok(OpmOgm {
            warmup: opts.int("warmup") as usize,
            opm: opts.boolean("opm"),
            q_base: opts.float("q_base"),
            lambda: opts.float("lambda"),
            p_exe: opts.float("p_exe"),
            seed: opts.int("seed") as u64,
            ogm: opts.boolean("ogm").then(|| Ogm::from_options(&opts)),
            pending: [1.0, 1.0],
            opts,
        })
    }

    fn ogm_active(&self, epoch: usize) -> bool {
        epoch >= self.warmup && self.ogm.as_ref().is_some_and(|o| o.window.contains(epoch))
    }
}

impl Method for OpmOgm {
    fn name(&self) -> &'static str {
        "opm&ogm"
    }

    fn options(&self) -> &Resolved {
        &self.opts
    }

    fn prepare(&self, model: &Model) -> Result<()> {
        ogm::require_additive_head("opm&ogm", model)
    }

    fn loss(&mut self, ctx: &StepContext) -> Result<StepLoss> {
        let op = "opm";
        let model = ctx.model;
        let [fa, fv] = model.encode(ctx.inputs[0], ctx.inputs[1], true)?;
        // Scores from a head pass without gradients: they steer the method and take none.
        let s = {
            let _guard = tch::no_grad_guard();
            let l = model.head(&fa, &fv)?;
            [score_sum(l.first(), ctx.labels)?, score_sum(l.second(), ctx.labels)?]
        };
        let after_warmup = ctx.epoch >= self.warmup;
        let q = if after_warmup && self.opm { drop_rates(s, self.q_base, self.lambda) } else { [0.0, 0.0] };
        let mut rng = Rng::stream(self.seed ^ 0x0B_u64, ctx.step as u64);
        let execute = after_warmup && self.opm && rng.uniform() < self.p_exe;
        let (mut xa, mut xv, mut labels) = (fa, fv, ctx.labels.shallow_clone());
        let mut kept_fraction = 1.0;
        if execute {
            let b = labels.size()[0] as usize;
            let dims = [xa.size()[1], xv.size()[1]];
            let th = theta(q, dims);
            let (mut keep_a, mut keep_v) = (Vec::with_capacity(b), Vec::with_capacity(b));
            for _ in 0..b {
                keep_a.push((rng.uniform() >= q[0]) as i64 as f32);
                keep_v.push((rng.uniform() >= q[1]) as i64 as f32);
            }
            let rows: Vec<i64> = (0..b).filter(|&i| keep_a[i] > 0.0 || keep_v[i] > 0.0).map(|i| i as i64).collect();
            if rows.is_empty() {
                // Only the dominant modality has q > 0, so with two modalities this cannot happen.
                return Err(Error::arg("opm: every sample of the batch lost both modalities"));
            }
            let dev = model.device();
            let mask = |k: &[f32]| check(op, Tensor::from_slice(k).f_to_device(dev).and_then(|m| m.f_unsqueeze(1)));
            let scale = 1.0 / (1.0 - th);
            xa = check(op, xa.f_mul(&mask(&keep_a)?).and_then(|x| x.f_mul_scalar(scale)))?;
            xv = check(op, xv.f_mul(&mask(&keep_v)?).and_then(|x| x.f_mul_scalar(scale)))?;
            if rows.len() < b {
                let idx = check(op, Tensor::from_slice(&rows).f_to_device(dev))?;
                xa = check(op, xa.f_index_select(0, &idx))?;
                xv = check(op, xv.f_index_select(0, &idx))?;
                labels = check(op, labels.f_index_select(0, &idx))?;
            }
            kept_fraction = rows.len() as f64 / b as f64;
        }
        let logits = model.head(&xa, &xv)?;
        let ce_f = mean_ce(&logits.fused, &labels)?;
        let logged = |l: &Tensor| -> Result<Tensor> { mean_ce(&check(op, l.f_detach())?, &labels) };
        let terms = vec![("ce_fused", ce_f.shallow_clone()), ("ce_first", logged(&logits.first())?), ("ce_second", logged(&logits.second())?)];
        self.pending = match &self.ogm {
            Some(o) if self.ogm_active(ctx.epoch) => o.coefficients(s),
            _ => [1.0, 1.0],
        };
        let n = ctx.labels.size()[0].max(1) as f64;
        Ok(StepLoss {
            total: ce_f,
            terms,
            diagnostics: vec![
                ("score_first", s[0] / n),
                ("score_second", s[1] / n),
                ("q_first", q[0]),
                ("q_second", q[1]),
                ("dropped", execute as i64 as f64),
                ("kept_fraction", kept_fraction),
                ("coef_first", self.pending[0]),
                ("coef_second", self.pending[1]),
            ],
        })
    }

    fn adjust_gradients(&mut self, ctx: &StepContext, params: &[(String, Tensor)], grads: &mut [Tensor]) -> Result<()> {
        if let Some(o) = &self.ogm {
            if self.ogm_active(ctx.epoch) {
                o.modulate(ctx.model, params, grads, self.pending, ctx.step)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_rates_and_theta_match_the_spec() {
        // s1/s2 = 2: r1 = tanh(1) = 0.76159, q1 = 0.5·(1 + 0.5·0.76159) = 0.69040, q2 = 0.
        let q = drop_rates([2.0, 1.0], 0.5, 0.5);
        assert!((q[0] - 0.690_398).abs() < 1e-5 && q[1] == 0.0, "{q:?}");
        assert!((theta(q, [8, 8]) - 0.345_199).abs() < 1e-5);
        assert_eq!(drop_rates([1.0, 1.0], 0.5, 0.5), [0.0, 0.0]);
        let q = drop_rates([1.0, 3.0], 0.5, 0.5);
        assert!(q[0] == 0.0 && q[1] > 0.0);
        assert_eq!(theta([1.0, 1.0], [4, 4]), THETA_MAX);
    }
}
