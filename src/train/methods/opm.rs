//! OPM&OGM (Wei, Hu, Du, Wen, TPAMI 2024): on-the-fly prediction modulation, which drops the
//! dominant modality's features at random in the forward pass, together with OGM-GE on the
//! backward pass (../shared/baselines.md §8; Table II's row read as both on at once).
//!
//! After `warmup` plain epochs, per step: scores s_m from the split logits (detached);
//! r_m = tanh(relu(s_m/s̄_others − 1)), s̄_others the mean of the other modalities' scores
//! (s_other for two: the TPAMI paper's ratio against the others); q_m = clip(q_base·(1 + λ·r_m),
//! 0, 1) where r_m > 0, else 0 (only modalities ahead of the others are dropped, and the
//! weakest never is). With probability p_exe, drawn once per batch, each sample keeps modality
//! m with probability 1 − q_m; kept features are divided by 1 − θ, θ = Σ d_m q_m / Σ d_m
//! (capped at 0.9), and samples with every modality dropped are removed. Then fused CE on what is left, backward, OGM-GE, update. One seeded generator
//! (seed, global step) draws both the coin and the masks.

use super::ogm::{self, Ogm};
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::tensor::Tensor;
use crate::train::declaration::{Keeps, Knob, MethodSpec, Modalities, Reference};
use crate::train::method::{per_modality, ratios_to_mean, score_sum, Method, StepContext, StepLoss};
use crate::train::model::Model;
use crate::train::options::{join, opt, Literal, OptionSpec, Resolved, Valid};

const OWN: [OptionSpec; 6] = [
    opt("warmup", Literal::Int(6), Valid::Int(0, i64::MAX), "epochs before dropping or modulating"),
    opt("opm", Literal::Bool(true), Valid::Bool, "on-the-fly prediction modulation: drop the dominant modality's features"),
    opt("ogm", Literal::Bool(true), Valid::Bool, "on-the-fly gradient modulation (OGM's options below)"),
    opt("q_base", Literal::Float(0.5), Valid::Float(0.0, 1.0), "the base drop rate q_base"),
    opt("lambda", Literal::Float(0.5), Valid::Float(0.0, f64::INFINITY), "how the drop rate grows with the score ratio"),
    opt("p_exe", Literal::Float(0.7), Valid::Float(0.0, 1.0), "probability that a step drops at all"),
];

pub static SPEC: MethodSpec = MethodSpec {
    name: "opm&ogm",
    aliases: &[],
    summary: "on-the-fly prediction modulation (dropping the dominant modality's features) with OGM's gradient modulation",
    reference: Reference {
        authors: "Wei et al.",
        venue: "TPAMI 2024",
        code: "https://github.com/GeWu-Lab/BML_TPAMI2024",
        commit: "4b3aa4f",
    },
    options: &join::<6, 7, 13>(OWN, ogm::options(0.8, &[0.0, 60.0])),
    variants: &[],
    modalities: Modalities::Any,
    keeps_state: Keeps::Never,
    terms: &["ce_fused", "ce_*"],
    diagnostics: &["score_*", "q_*", "dropped", "kept_fraction", "coef_*"],
    knob: Some(Knob { key: "q_base", values: &[Literal::Float(0.3), Literal::Float(0.5), Literal::Float(0.7)] }),
    build: |o, _| Ok(Box::new(OpmOgm::new(o)?)),
};

/// θ's cap: 1/(1 − θ) grows without bound as θ → 1 (unreachable with the defaults).
const THETA_MAX: f64 = 0.9;

pub struct OpmOgm {
    warmup: usize,
    opm: bool,
    q_base: f64,
    lambda: f64,
    p_exe: f64,
    seed: u64,
    ogm: Option<Ogm>,
    pending: Vec<f64>,
}

/// q for each modality from the two scores.
pub fn drop_rates(s: [f64; 2], q_base: f64, lambda: f64) -> [f64; 2] {
    let q = drop_rates_n(&s, q_base, lambda);
    [q[0], q[1]]
}

/// q for each modality from every modality's score (`ratios_to_mean`).
pub fn drop_rates_n(s: &[f64], q_base: f64, lambda: f64) -> Vec<f64> {
    let q = |r: f64| if r > 0.0 { (q_base * (1.0 + lambda * r)).clamp(0.0, 1.0) } else { 0.0 };
    ratios_to_mean(s).into_iter().map(|rho| (rho - 1.0).max(0.0).tanh()).map(|r| if r.is_nan() { 0.0 } else { q(r) }).collect()
}

/// θ = Σ d_m q_m / Σ d_m, capped.
pub fn theta(q: &[f64], dims: &[i64]) -> f64 {
    let weighted = q.iter().zip(dims).fold(0.0, |acc, (q, &d)| acc + d as f64 * q);
    (weighted / dims.iter().sum::<i64>() as f64).min(THETA_MAX)
}

impl OpmOgm {
    pub fn new(opts: &Resolved) -> Result<OpmOgm> {
        Ok(OpmOgm {
            warmup: opts.int("warmup") as usize,
            opm: opts.boolean("opm"),
            q_base: opts.float("q_base"),
            lambda: opts.float("lambda"),
            p_exe: opts.float("p_exe"),
            seed: opts.int("seed") as u64,
            ogm: opts.boolean("ogm").then(|| Ogm::from_options(opts)),
            pending: Vec::new(),
        })
    }

    fn ogm_active(&self, epoch: usize) -> bool {
        epoch >= self.warmup && self.ogm.as_ref().is_some_and(|o| o.window.contains(epoch))
    }
}

impl Method for OpmOgm {
    fn prepare(&self, model: &Model) -> Result<()> {
        crate::train::method::require_additive_head("opm&ogm", model)
    }

    fn loss(&mut self, ctx: &StepContext) -> Result<StepLoss> {
        let model = ctx.model;
        let n_mod = model.modalities.len();
        let mut xs = model.encode_all(ctx.inputs, true)?;
        // Scores from a head pass without gradients: they steer the method and take none.
        let s = {
            let _guard = tch::no_grad_guard();
            let l = model.head_all(&xs)?;
            l.per.iter().map(|l| score_sum(l, ctx.labels)).collect::<Result<Vec<f64>>>()?
        };
        let after_warmup = ctx.epoch >= self.warmup;
        let q = if after_warmup && self.opm { drop_rates_n(&s, self.q_base, self.lambda) } else { vec![0.0; n_mod] };
        let mut rng = Rng::stream(self.seed ^ 0x0B_u64, ctx.step as u64);
        let execute = after_warmup && self.opm && rng.uniform() < self.p_exe;
        let mut labels = ctx.labels.shallow_clone();
        let mut kept_fraction = 1.0;
        if execute {
            let b = labels.size()[0] as usize;
            let dims: Vec<i64> = xs.iter().map(|x| x.size()[1]).collect();
            let th = theta(&q, &dims);
            // Per sample, one draw per modality in the model's order.
            let mut keep = vec![Vec::with_capacity(b); n_mod];
            for _ in 0..b {
                for (m, k) in keep.iter_mut().enumerate() {
                    k.push((rng.uniform() >= q[m]) as i64 as f32);
                }
            }
            let rows: Vec<i64> = (0..b).filter(|&i| keep.iter().any(|k| k[i] > 0.0)).map(|i| i as i64).collect();
            if rows.is_empty() {
                // The weakest modality has q = 0, so this cannot happen.
                return Err(Error::arg("opm: every sample of the batch lost every modality"));
            }
            let dev = model.device();
            let mask = |k: &[f32]| Tensor::from_slice(k).f_to_device(dev).and_then(|m| m.f_unsqueeze(1)).map_err(Error::from);
            let scale = 1.0 / (1.0 - th);
            let idx = if rows.len() < b { Some(Tensor::from_slice(&rows).f_to_device(dev)?) } else { None };
            for (x, k) in xs.iter_mut().zip(&keep) {
                *x = x.f_mul(&mask(k)?).and_then(|x| x.f_mul_scalar(scale))?;
                if let Some(idx) = &idx {
                    *x = x.f_index_select(0, idx)?;
                }
            }
            if let Some(idx) = &idx {
                labels = labels.f_index_select(0, idx)?;
            }
            kept_fraction = rows.len() as f64 / b as f64;
        }
        let logits = model.head_all(&xs)?;
        let l = crate::train::loss::fused_only_all(&logits, &labels, &model.modalities)?;
        self.pending = match &self.ogm {
            Some(o) if self.ogm_active(ctx.epoch) => o.coefficients_n(&s),
            _ => vec![1.0; n_mod],
        };
        let n = ctx.labels.size()[0].max(1) as f64;
        let mut diagnostics: Vec<(&'static str, f64)> = per_modality(model, "score").into_iter().zip(&s).map(|(k, v)| (k, v / n)).collect();
        diagnostics.extend(per_modality(model, "q").into_iter().zip(q.iter().copied()));
        diagnostics.push(("dropped", execute as i64 as f64));
        diagnostics.push(("kept_fraction", kept_fraction));
        diagnostics.extend(per_modality(model, "coef").into_iter().zip(self.pending.iter().copied()));
        Ok(StepLoss { total: l.total, terms: l.terms, diagnostics })
    }

    fn adjust_gradients(&mut self, ctx: &StepContext, params: &[(String, Tensor)], grads: &mut [Tensor]) -> Result<()> {
        if let Some(o) = &self.ogm {
            if self.ogm_active(ctx.epoch) {
                o.modulate(ctx.model, params, grads, &self.pending, ctx.step)?;
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
        assert!((theta(&q, &[8, 8]) - 0.345_199).abs() < 1e-5);
        assert_eq!(drop_rates([1.0, 1.0], 0.5, 0.5), [0.0, 0.0]);
        let q = drop_rates([1.0, 3.0], 0.5, 0.5);
        assert!(q[0] == 0.0 && q[1] > 0.0);
        assert_eq!(theta(&[1.0, 1.0], &[4, 4]), THETA_MAX);
    }

    #[test]
    fn three_modalities_compare_each_with_the_others_mean() {
        // s = (3, 3, 1): ρ = (3/2, 3/2, 1/3); the two leaders are dropped at q = 0.5·(1 +
        // 0.5·tanh(0.5)), the weakest never.
        let q = drop_rates_n(&[3.0, 3.0, 1.0], 0.5, 0.5);
        let want = 0.5 * (1.0 + 0.5 * 0.5f64.tanh());
        assert!((q[0] - want).abs() < 1e-12 && q[1] == q[0] && q[2] == 0.0, "{q:?}");
        assert!((theta(&q, &[4, 4, 8]) - want / 2.0).abs() < 1e-12);
        // At two the N rule is the two-modality rule, bit for bit.
        for s in [[2.0, 1.0], [1.0, 3.0], [1.0, 1.0], [0.0, 0.0]] {
            assert_eq!(drop_rates_n(&s, 0.5, 0.5), drop_rates(s, 0.5, 0.5).to_vec());
        }
    }
}
