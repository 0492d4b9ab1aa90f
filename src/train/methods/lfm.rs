//! LFM, learning the modality gap dynamically ("Facilitating multimodal classification via
//! dynamically learning modality gap", NeurIPS 2024; ../shared/baselines-2.md §7):
//!
//! ```text
//! L = 2·[α_0·CE(s) + α_1·A],   α_0 + α_1 = 1
//! ```
//!
//! with s the fused score (officially ½(h_a + h_v) from separate unimodal heads, a model with
//! fusion "sum"; BalanceBenchmark's split logits l_a + l_v on a concat head with `heads:
//! "split"`) and A the alignment between the unimodal predictions, averaged over pairs of
//! modalities. The official code's A is ½[KL(m‖p) + KL(m‖q)] with m = ½(p + q) (`align:
//! "code"`, its arguments the other way round from the Jensen–Shannon divergence, `align: "js"`).
//!
//! α comes from the official fitted schedule (a quintic in the epoch, clamped to [0.05, 0.95]
//! and held beyond the 200 epochs it describes), is learned (`schedule: "learned"`: before each
//! epoch, α_1 ← clip(α_1 − η·mean(H_tot·g_cls over the first encoder tensor), 0.05, 0.95) on a
//! fixed batch of the validation split, η halving every 20 epochs; a heuristic, implemented as
//! written, not the bilevel hypergradient), or fixed (`schedule: "fixed"`, `alpha_align`).

use crate::data::{BatchOptions, Batches};
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::tensor::{Kind, Tensor};
use crate::train::declaration::{Keeps, Knob, MethodSpec, Modalities, Reference};
use crate::train::fusion::{FusionKind, Logits};
use crate::train::gradients::hessian_vector;
use crate::train::inference::inputs;
use crate::train::method::{check_state_names, mean_ce, read_state, state_tensor, EpochContext, Method, Selection, StepContext, StepLoss};
use crate::train::model::Model;
use crate::train::options::{opt, Literal, Resolved, Valid};

pub static SPEC: MethodSpec = MethodSpec {
    name: "lfm",
    aliases: &[],
    summary: "learning to fuse: a scheduled mix of fused cross-entropy and unimodal alignment",
    reference: Reference {
        authors: "Yang et al.",
        venue: "NeurIPS 2024",
        code: "https://github.com/njustkmg/NeurIPS24-LFM",
        commit: "ad44fa0",
    },
    options: &[
        opt(
            "schedule",
            Literal::Text("fitted"),
            Valid::Choice(&["fitted", "learned", "fixed"]),
            "the CE / alignment mix: the authors' fitted curve, learned by a hypergradient, or fixed",
        ),
        opt(
            "init",
            Literal::Text("official"),
            Valid::Choice(&["official", "bb"]),
            "the learned schedule's start: mostly alignment (official) or mostly CE (BalanceBenchmark)",
        ),
        opt("alpha_align", Literal::Float(0.5), Valid::Float(0.0, 1.0), "the fixed schedule's alignment weight"),
        opt("align", Literal::Text("code"), Valid::Choice(&["code", "js"]), "the alignment term: the code's form or Jensen-Shannon"),
        opt(
            "heads",
            Literal::Text("separate"),
            Valid::Choice(&["separate", "split"]),
            "unimodal heads: separate classifiers or the split fused head",
        ),
        opt("lr_alpha", Literal::Float(1e-4), Valid::Float(0.0, 1e3), "the learned schedule's learning rate"),
        opt("val_size", Literal::Int(8), Valid::Int(1, 4096), "validation batches per hypergradient"),
        opt("seed", Literal::Int(0), Valid::Int(0, i64::MAX), "seed of its validation draws"),
    ],
    variants: &[],
    modalities: Modalities::Any,
    keeps_state: Keeps::When(|o| o.text("schedule") == "learned", "when its schedule is learned"),
    terms: &["ce_fused", "align"],
    diagnostics: &["alpha_ce", "alpha_align", "hvp"],
    knob: Some(Knob { key: "schedule", values: &[Literal::Text("fitted"), Literal::Text("learned")] }),
    build: |o, _| Ok(Box::new(Lfm::new(o)?)),
};

/// The official fitted schedule's coefficients, c_0 .. c_5 (LFM `Crema_epoch.py`).
const FITTED: [f64; 6] = [0.204623704, 3.35472727e-3, 1.22989557e-4, -2.92947416e-6, 2.23835486e-8, -5.39717505e-11];

/// α_0 at a 0-based epoch: the quintic, held at its epoch-200 value beyond the range it was
/// fitted on (200 CREMA-D epochs; it turns down after its peak, so extrapolating would undo the
/// schedule), and clamped to [0.05, 0.95].
pub fn fitted_alpha(epoch: usize) -> f64 {
    let e = epoch.min(200) as f64;
    let v = FITTED.iter().rev().fold(0.0, |acc, c| acc * e + c);
    v.clamp(0.05, 0.95)
}

/// The alignment term between two logit sets, batch mean: "code" ½[KL(m‖p) + KL(m‖q)],
/// "js" ½[KL(p‖m) + KL(q‖m)], m = ½(p + q) (not detached).
pub fn alignment(a: &Tensor, b: &Tensor, js: bool) -> Result<Tensor> {
    let (lp, lq) = (a.f_log_softmax(-1, Kind::Float)?, b.f_log_softmax(-1, Kind::Float)?);
    let (p, q) = (lp.f_exp()?, lq.f_exp()?);
    let m = p.f_add(&q).and_then(|s| s.f_mul_scalar(0.5))?;
    let lm = m.f_log()?;
    // KL(x‖y) per sample = Σ_c x (log x − log y).
    let kl = |x: &Tensor, lx: &Tensor, ly: &Tensor| {
        lx.f_sub(ly).and_then(|d| d.f_mul(x)).and_then(|t| t.f_sum_dim_intlist([-1i64].as_slice(), false, Kind::Float)).map_err(Error::from)
    };
    let per = if js { kl(&p, &lp, &lm)?.f_add(&kl(&q, &lq, &lm)?)? } else { kl(&m, &lm, &lp)?.f_add(&kl(&m, &lm, &lq)?)? };
    per.f_mean(Kind::Float).and_then(|x| x.f_mul_scalar(0.5)).map_err(Error::from)
}

/// η_α in a 0-based epoch: halved at epochs 20, 40, ...
pub fn alpha_rate(base: f64, epoch: usize) -> f64 {
    base * 0.5f64.powi((epoch / 20) as i32)
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Schedule {
    Fitted,
    Learned,
    Fixed,
}

pub struct Lfm {
    schedule: Schedule,
    js: bool,
    separate: bool,
    lr_alpha: f64,
    val_size: usize,
    seed: u64,
    /// α_1, the alignment weight (learned: updated before each epoch; saved in checkpoints).
    alpha_align: f64,
    /// The last learned update's mean Hessian-vector product.
    last_hvp: f64,
}

impl Lfm {
    pub fn new(opts: &Resolved) -> Result<Lfm> {
        let schedule = match opts.text("schedule") {
            "learned" => Schedule::Learned,
            "fixed" => Schedule::Fixed,
            _ => Schedule::Fitted,
        };
        // The learned variant starts mostly alignment (official) or mostly CE (BalanceBenchmark).
        let alpha_align = match schedule {
            Schedule::Learned if opts.text("init") == "bb" => 0.05,
            Schedule::Learned => 0.95,
            Schedule::Fixed => opts.float("alpha_align"),
            Schedule::Fitted => 1.0 - fitted_alpha(0),
        };
        Ok(Lfm {
            schedule,
            js: opts.text("align") == "js",
            separate: opts.text("heads") == "separate",
            lr_alpha: opts.float("lr_alpha"),
            val_size: opts.int("val_size") as usize,
            seed: opts.int("seed") as u64,
            alpha_align,
            last_hvp: 0.0,
        })
    }

    /// (α_0, α_1) in `epoch`.
    fn alphas(&self, epoch: usize) -> (f64, f64) {
        match self.schedule {
            Schedule::Fitted => (fitted_alpha(epoch), 1.0 - fitted_alpha(epoch)),
            _ => (1.0 - self.alpha_align, self.alpha_align),
        }
    }

    /// The fused score CE is taken on: the mean of the separate heads, or the split logits' sum.
    fn score(&self, logits: &Logits) -> Result<Tensor> {
        if self.separate {
            logits.fused.f_div_scalar(logits.per.len() as f64).map_err(Error::from)
        } else {
            Ok(logits.fused.shallow_clone())
        }
    }

    /// CE(s) and A (the mean over pairs of modalities).
    fn terms(&self, logits: &Logits, labels: &Tensor) -> Result<(Tensor, Tensor)> {
        let ce = mean_ce(&self.score(logits)?, labels)?;
        let n = logits.per.len();
        let mut align: Option<Tensor> = None;
        for a in 0..n {
            for b in a + 1..n {
                let t = alignment(&logits.per[a], &logits.per[b], self.js)?;
                align = Some(match align {
                    None => t,
                    Some(s) => s.f_add(&t)?,
                });
            }
        }
        let pairs = (n * (n - 1) / 2) as f64;
        Ok((ce, align.expect("two or more modalities").f_div_scalar(pairs)?))
    }

    /// The learned update before an epoch: h = H_tot·g_cls by double backward on the fixed
    /// validation batch (train mode, as the official code), its mean over the first encoder
    /// tensor, and α_1 moved against it.
    fn learn(&mut self, ctx: &EpochContext) -> Result<()> {
        let val = ctx.val.ok_or_else(|| Error::arg("lfm: schedule \"learned\" updates α on a fixed batch of the validation split: pass val: data.val to train_epoch (the recipes do when the dataset has one), or use schedule: \"fitted\""))?;
        let model = ctx.model;
        // A fixed batch: val_size positions drawn once from the method's seed.
        let mut positions: Vec<i64> = (0..val.len() as i64).collect();
        Rng::new(self.seed ^ 0x1F).shuffle(&mut positions);
        positions.truncate(self.val_size.min(val.len()));
        let subset = val.subset_positions(&positions)?;
        let batch = Batches::new(
            &subset,
            &BatchOptions { batch_size: positions.len().max(1), shuffle: false, workers: 0, ..ctx.batching.clone() },
        )?
        .next()
        .ok_or_else(|| Error::arg("lfm: the validation split is empty".to_string()))??;
        let labels = batch.labels.f_to_device(model.device())?;
        let fwd = model.forward_all(&inputs(model, &batch)?, true)?;
        let (ce, align) = self.terms(&fwd.logits, &labels)?;
        let (a0, a1) = self.alphas(ctx.epoch);
        let total = ce.f_mul_scalar(a0).and_then(|c| c.f_add(&align.f_mul_scalar(a1)?))?;
        let params = model.trainable_parameters();
        let refs: Vec<&Tensor> = params.iter().map(|(_, p)| p).collect();
        // The graph stays for the double backward of the total below.
        let g_cls = Tensor::f_run_backward(&[&ce], &refs, true, false)?;
        // "The first parameter tensor": the first modality's first weight (its first conv or linear).
        let first = Selection::Weights.pick(model, &params, 0);
        let first = *first.first().ok_or_else(|| Error::arg("lfm: the first encoder has no weight tensor".to_string()))?;
        let h = hessian_vector(&total, &refs, &g_cls, &[refs[first]])?;
        let a = if h[0].defined() { h[0].f_mean(Kind::Double).and_then(|m| m.f_double_value(&[]))? } else { 0.0 };
        let eta = alpha_rate(self.lr_alpha, ctx.epoch);
        self.alpha_align = (self.alpha_align - eta * a).clamp(0.05, 0.95);
        self.last_hvp = a;
        Ok(())
    }
}

impl Method for Lfm {
    fn prepare(&self, model: &Model) -> Result<()> {
        match (self.separate, model.fusion.kind) {
            (true, FusionKind::Sum) | (false, FusionKind::Concat) => Ok(()),
            (true, other) => Err(Error::arg(format!(
                "lfm: heads \"separate\" (the official model: one head per modality, fused by their mean) needs fusion: \"sum\", not {}; or give lfm heads: \"split\" for BalanceBenchmark's concat-head form",
                other.name()
            ))),
            (false, other) => Err(Error::arg(format!("lfm: heads \"split\" uses the concat head's split logits; this model's head is {}: build it with fusion: \"concat\"", other.name()))),
        }
    }

    fn begin_epoch(&mut self, ctx: &EpochContext) -> Result<()> {
        if self.schedule == Schedule::Learned {
            self.learn(ctx)?;
        }
        Ok(())
    }

    fn loss(&mut self, ctx: &StepContext) -> Result<StepLoss> {
        let fwd = ctx.model.forward_all(ctx.inputs, true)?;
        let (ce, align) = self.terms(&fwd.logits, ctx.labels)?;
        let (a0, a1) = self.alphas(ctx.epoch);
        let total = ce.f_mul_scalar(2.0 * a0).and_then(|c| c.f_add(&align.f_mul_scalar(2.0 * a1)?))?;
        let mut diagnostics = vec![("alpha_ce", a0), ("alpha_align", a1)];
        if self.schedule == Schedule::Learned {
            diagnostics.push(("hvp", self.last_hvp));
        }
        Ok(StepLoss { total, terms: vec![("ce_fused", ce.f_detach()?), ("align", align.f_detach()?)], diagnostics })
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        if self.schedule == Schedule::Learned {
            vec![("alpha_align".into(), state_tensor(&[self.alpha_align])), ("hvp".into(), state_tensor(&[self.last_hvp]))]
        } else {
            Vec::new()
        }
    }

    fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        if self.schedule != Schedule::Learned {
            return check_state_names("lfm", state, &[]);
        }
        check_state_names("lfm", state, &["alpha_align", "hvp"])?;
        self.alpha_align = read_state("lfm", state, "alpha_align", 1)?[0];
        self.last_hvp = read_state("lfm", state, "hvp", 1)?[0];
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::declaration::with_options;
    use crate::train::options::Value;

    #[test]
    fn the_fitted_schedule_rises_as_published() {
        for (e, want) in [(0, 0.20462), (30, 0.35368), (100, 0.53916), (200, 0.90208)] {
            assert!((fitted_alpha(e) - want).abs() < 1e-5, "α_0({e}) = {} (want {want})", fitted_alpha(e));
        }
        assert_eq!(fitted_alpha(5000), fitted_alpha(200));
    }

    #[test]
    fn the_specs_alignment_example() {
        // p = (0.5, 0.5), q = (0.9, 0.1): A_code = 0.11797, JS = 0.10175.
        let a = Tensor::from_slice(&[0.0f32, 0.0]).reshape([1, 2]);
        let b = Tensor::from_slice(&[(9.0f32).ln(), 0.0]).reshape([1, 2]);
        let code = alignment(&a, &b, false).unwrap().double_value(&[]);
        let js = alignment(&a, &b, true).unwrap().double_value(&[]);
        assert!((code - 0.11797).abs() < 1e-5, "code {code}");
        assert!((js - 0.10175).abs() < 1e-5, "js {js}");
    }

    #[test]
    fn the_alpha_rate_halves_at_epochs_20_and_40() {
        assert_eq!(alpha_rate(1e-4, 19), 1e-4);
        assert_eq!(alpha_rate(1e-4, 20), 5e-5);
        assert_eq!(alpha_rate(1e-4, 39), 5e-5);
        assert_eq!(alpha_rate(1e-4, 40), 2.5e-5);
    }

    #[test]
    fn the_learned_start_and_its_bb_swap() {
        let l = with_options(&SPEC, &[("schedule".into(), Value::Text("learned".into()))], Lfm::new).unwrap();
        assert_eq!(l.alphas(0), (0.050000000000000044, 0.95));
        let bb =
            with_options(&SPEC, &[("schedule".into(), Value::Text("learned".into())), ("init".into(), Value::Text("bb".into()))], Lfm::new)
                .unwrap();
        assert!((bb.alphas(0).0 - 0.95).abs() < 1e-12);
    }
}
