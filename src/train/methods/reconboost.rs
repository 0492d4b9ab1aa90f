//! ReconBoost, boosting with modality reconcilement (Hua, Xu, Bao, Yang, Huang, ICML 2024;
//! ../shared/baselines-2.md §8): the modalities are learners f_m = head(φ_m(x_m)) of one shared
//! classifier (fusion "shared_mlp", the official MLP head, or "shared", BalanceBenchmark's
//! linear one), and the ensemble is F = β·Σ_m f_m with a learnable boost rate β. Training runs
//! in stages, each a phase of each kind, one learner per stage in turn (a, v, a, v, ...):
//!
//! - phase 1 (`stage_epochs` epochs), learner m against the others, F_{−m} = β·Σ_{k≠m} f_k
//!   without gradient (none at stage 0: the empty ensemble):
//!   ℓ_i = (1/C)·(w1 − w2·softmax(F_{−m})[i, y_i])·(−log softmax(f_m)[i, y_i]), plus α·GA
//!   from stage 1 on, GA = MSE(softmax(f_m), softmax(f_other)). The official GA detaches both
//!   sides, so it has no gradient (`ga: "code"`, logged only); `ga: "live"` lets it reach f_m.
//!   Only φ_m and the head move;
//! - phase 2 (`correct_epochs` epochs), global rectification: CE(F) over every encoder, the
//!   head and β.
//!
//! The optimizer starts afresh at each phase (`optimizer: "per_phase"`, the official rebuild;
//! "persistent" keeps one, as BalanceBenchmark). β is the method's own parameter, updated in
//! phase 2 by SGD (`beta_lr` 0.01, the official e_lr; momentum 0.9, weight decay 5e-4), and
//! saved with its state. Evaluation predicts with the shared head's mean of the f_m, whose argmax is
//! β·Σ f_m's for any β > 0. The official recipe's pretrained unimodal encoders are not part of
//! this method (start it from a checkpoint for that). `variant: "bb"`: one epoch per phase,
//! β starting at 0.01, one persistent optimizer.

use crate::error::{Error, Result};
use crate::tensor::{Kind, Tensor};
use crate::train::declaration::{Keeps, Knob, MethodSpec, Modalities, Reference, Variant};
use crate::train::fusion::FusionKind;
use crate::train::method::{check_state_names, mean_ce, read_state, state_tensor, Method, StepContext, StepLoss};
use crate::train::model::Model;
use crate::train::options::{opt, Literal, Resolved, Valid};

/// Where an epoch falls: stage s, and learner m's phase 1 or the rectification phase 2.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Phase {
    Learner { stage: usize, modality: usize },
    Rectify { stage: usize },
}

/// The boosting loss of one learner [B]: (1/C)·(w1 − w2·q_−m)·(−log p_m[y]).
pub fn boosting_loss(logits: &Tensor, rest: Option<&Tensor>, labels: &Tensor, w1: f64, w2: f64) -> Result<Tensor> {
    let c = logits.size()[1] as f64;
    let y = labels.f_unsqueeze(1)?;
    let nll = (logits
        .f_log_softmax(-1, Kind::Float)
        .and_then(|l| l.f_gather(1, &y, false))
        .and_then(|g| g.f_squeeze_dim(1))
        .and_then(|g| g.f_neg()))?;
    let weight = match rest {
        Some(r) => {
            (r.f_detach()
                .and_then(|r| r.f_softmax(-1, Kind::Float))
                .and_then(|q| q.f_gather(1, &y, false))
                .and_then(|q| q.f_squeeze_dim(1))
                .and_then(|q| q.f_mul_scalar(-w2))
                .and_then(|q| q.f_add_scalar(w1)))?
        }
        // The empty ensemble at stage 0 predicts nothing: the uniform 1/C.
        None => nll.f_zeros_like().and_then(|z| z.f_add_scalar(w1 - w2 / c))?,
    };
    weight.f_mul(&nll).and_then(|l| l.f_div_scalar(c)).map_err(Error::from)
}

pub static SPEC: MethodSpec = MethodSpec {
    name: "reconboost",
    aliases: &[],
    summary: "alternating boosting: one modality's learner per stage, trained against the others' ensemble, then a global rectification",
    reference: Reference { authors: "Hua et al.", venue: "ICML 2024", code: "https://github.com/huacong/ReconBoost", commit: "14ab57a" },
    options: &[
        opt("variant", Literal::Text("official"), Valid::Choice(&["official", "bb"]), "the authors' schedule, or BalanceBenchmark's"),
        opt("w1", Literal::Float(5.0), Valid::Float(0.0, 1e6), "weight of the boosting term"),
        opt("w2", Literal::Float(1.0), Valid::Float(0.0, 1e6), "weight of the ensemble's CE"),
        opt("alpha", Literal::Float(0.5), Valid::Float(0.0, 1e6), "weight α of the GA (reconcilement) term"),
        opt("ga", Literal::Text("code"), Valid::Choice(&["code", "live"]), "the GA term as the code computes it, or from live features"),
        opt("boost_rate", Literal::Float(1.0), Valid::Float(1e-6, 1e6), "the boost rate β's start"),
        opt("stage_epochs", Literal::Int(4), Valid::Int(1, 10_000), "epochs each learner trains per stage"),
        opt("correct_epochs", Literal::Int(4), Valid::Int(1, 10_000), "epochs of global rectification per stage"),
        opt("optimizer", Literal::Text("per_phase"), Valid::Choice(&["per_phase", "persistent"]), "a fresh optimizer per phase (official), or one throughout"),
        opt("beta_lr", Literal::Float(0.01), Valid::Float(0.0, 1e3), "learning rate of β"),
        opt(
            "ga_pass",
            Literal::Text("shared"),
            Valid::Choice(&["shared", "reference"]),
            "the frozen learners run once per step (shared), or again in training mode for GA as train.py's pre_model call (their batch-norm statistics move twice)",
        ),
    ],
    variants: &[Variant {
        name: "bb",
        help: "BalanceBenchmark: boost rate 0.01, one epoch per phase, one optimizer throughout",
        values: &[("boost_rate", Literal::Float(0.01)), ("stage_epochs", Literal::Int(1)), ("correct_epochs", Literal::Int(1)), ("optimizer", Literal::Text("persistent"))],
    }],
    modalities: Modalities::Any,
    keeps_state: Keeps::Always,
    terms: &["ce_ensemble", "boost", "ga", "ce_fused", "ce_*"],
    diagnostics: &["beta", "learner"],
    knob: Some(Knob { key: "w1", values: &[Literal::Float(3.0), Literal::Float(5.0), Literal::Float(7.0)] }),
    build: |o, _| Ok(Box::new(ReconBoost::new(o)?)),
};

pub struct ReconBoost {
    w1: f64,
    w2: f64,
    alpha: f64,
    ga_live: bool,
    /// A second training-mode pass of the frozen learners for GA (the reference's `pre_model` call).
    second_pass: bool,
    stage_epochs: usize,
    correct_epochs: usize,
    per_phase: bool,
    momentum: f64,
    weight_decay: f64,
    /// The boost rate β (a leaf tensor with a gradient) and its momentum buffer.
    beta: Tensor,
    beta_momentum: f64,
    /// β's gradient from the current step's backward, applied with the update.
    beta_grad: Option<f64>,
    beta_lr: f64,
}

impl ReconBoost {
    pub fn new(opts: &Resolved) -> Result<ReconBoost> {
        let beta = Tensor::from_slice(&[opts.float("boost_rate") as f32]).set_requires_grad(true);
        Ok(ReconBoost {
            w1: opts.float("w1"),
            w2: opts.float("w2"),
            alpha: opts.float("alpha"),
            ga_live: opts.text("ga") == "live",
            second_pass: opts.text("ga_pass") == "reference",
            stage_epochs: opts.int("stage_epochs") as usize,
            correct_epochs: opts.int("correct_epochs") as usize,
            per_phase: opts.text("optimizer") == "per_phase",
            momentum: 0.9,
            weight_decay: 5e-4,
            beta,
            beta_momentum: 0.0,
            beta_grad: None,
            beta_lr: opts.float("beta_lr"),
        })
    }

    /// The phase of a 0-based epoch for a model of `n` modalities.
    pub fn phase(&self, epoch: usize, n: usize) -> Phase {
        let cycle = self.stage_epochs + self.correct_epochs;
        let stage = epoch / cycle;
        if epoch % cycle < self.stage_epochs {
            Phase::Learner { stage, modality: stage % n }
        } else {
            Phase::Rectify { stage }
        }
    }

    /// β's value (a one-element CPU tensor the method owns; NaN if libtorch could not read it,
    /// which the trainer's non-finite check then reports).
    fn beta_value(&self) -> f64 {
        self.beta.f_double_value(&[0]).unwrap_or(f64::NAN)
    }
}

impl Method for ReconBoost {
    fn prepare(&self, model: &Model) -> Result<()> {
        match model.fusion.kind {
            FusionKind::SharedMlp | FusionKind::Shared => Ok(()),
            other => Err(Error::arg(format!(
                "reconboost: its learners share one classifier: build the model with fusion: \"shared_mlp\" (the official MLP head) or \"shared\" (a linear one), and encoders whose features have one size; this one's head is {}",
                other.name()
            ))),
        }
    }

    fn fresh_optimizer(&self, epoch: usize) -> bool {
        let cycle = self.stage_epochs + self.correct_epochs;
        self.per_phase && (epoch.is_multiple_of(cycle) || epoch % cycle == self.stage_epochs)
    }

    fn loss(&mut self, ctx: &StepContext) -> Result<StepLoss> {
        let op = "reconboost";
        let model = ctx.model;
        let n = model.modalities.len();
        let beta = self.beta.f_to_device(model.device())?;
        self.beta_grad = None;
        match self.phase(ctx.epoch, n) {
            Phase::Learner { stage, modality: m } => {
                // Only the learner's encoder needs a graph: the others run without one (their
                // batch norms still see the batch), so a phase-1 step costs less than concat's.
                let which: Vec<Option<bool>> = (0..n).map(|k| Some(k == m)).collect();
                let features = model.encode_some(ctx.inputs, true, &which)?;
                let mut per = Vec::with_capacity(n);
                for (k, f) in features.iter().enumerate() {
                    let f = f.as_ref().expect("every encoder ran");
                    let _guard = (k != m).then(tch::no_grad_guard);
                    per.push(model.fusion.shared_logits(f)?);
                }
                let rest = if stage == 0 {
                    None
                } else {
                    let mut sum: Option<Tensor> = None;
                    for (_, l) in per.iter().enumerate().filter(|(k, _)| *k != m) {
                        let d = l.f_detach()?;
                        sum = Some(match sum {
                            None => d,
                            Some(s) => s.f_add(&d)?,
                        });
                    }
                    Some(sum.expect("another learner").f_mul(&beta.f_detach().map_err(|e| Error::torch(op, e))?)?)
                };
                let boost = boosting_loss(&per[m], rest.as_ref(), ctx.labels, self.w1, self.w2)?.f_mean(Kind::Float)?;
                let mut total = boost.shallow_clone();
                let mut terms = vec![("boost", boost.f_detach()?)];
                if stage >= 1 && self.second_pass {
                    // The reference computes GA's other side with a second call of the frozen
                    // learner in training mode: same values (batch statistics), but its running
                    // statistics take a second momentum step.
                    let again: Vec<Option<bool>> = (0..n).map(|k| (k != m).then_some(false)).collect();
                    model.encode_some(ctx.inputs, true, &again)?;
                }
                if stage >= 1 {
                    // GA against the mean of the other learners' predictions (the other one for two).
                    let own = per[m].f_softmax(-1, Kind::Float)?;
                    let own = if self.ga_live { own } else { own.f_detach()? };
                    let mut others: Option<Tensor> = None;
                    for (_, l) in per.iter().enumerate().filter(|(k, _)| *k != m) {
                        let p = l.f_detach().and_then(|l| l.f_softmax(-1, Kind::Float))?;
                        others = Some(match others {
                            None => p,
                            Some(s) => s.f_add(&p)?,
                        });
                    }
                    let others = others.expect("another learner").f_div_scalar((n - 1) as f64)?;
                    let ga = own.f_mse_loss(&others, tch::Reduction::Mean)?;
                    terms.push(("ga", ga.f_detach()?));
                    if self.ga_live {
                        total = ga.f_mul_scalar(self.alpha).and_then(|g| total.f_add(&g))?;
                    }
                }
                Ok(StepLoss { total, terms, diagnostics: vec![("learner", m as f64), ("beta", self.beta_value())] })
            }
            Phase::Rectify { .. } => {
                let fwd = model.forward_all(ctx.inputs, true)?;
                let per = &fwd.logits.per;
                let mut sum = per[0].shallow_clone();
                for l in &per[1..] {
                    sum = sum.f_add(l)?;
                }
                let ensemble = sum.f_mul(&beta)?;
                let ce = mean_ce(&ensemble, ctx.labels)?;
                Ok(StepLoss {
                    terms: vec![("ce_ensemble", ce.f_detach()?)],
                    total: ce,
                    diagnostics: vec![("learner", -1.0), ("beta", self.beta_value())],
                })
            }
        }
    }

    fn backward(&mut self, ctx: &StepContext, total: &Tensor, params: &[(String, Tensor)]) -> Result<Option<Vec<Tensor>>> {
        let mut refs: Vec<&Tensor> = params.iter().map(|(_, p)| p).collect();
        let rectify = matches!(self.phase(ctx.epoch, ctx.model.modalities.len()), Phase::Rectify { .. });
        if rectify {
            refs.push(&self.beta);
        }
        let mut grads = ctx.scale.backward(&[total], &refs, false, false)?;
        if rectify {
            let g = grads.pop().expect("β's gradient");
            self.beta_grad = Some(if g.defined() { g.f_double_value(&[0])? } else { 0.0 });
        }
        Ok(Some(grads))
    }

    fn adjust_gradients(&mut self, _ctx: &StepContext, _params: &[(String, Tensor)], _grads: &mut [Tensor]) -> Result<()> {
        // β's own SGD step (momentum 0.9, weight decay 5e-4, learning rate beta_lr: the
        // official e_lr, 0.01), as PyTorch's SGD: buf = m·buf + (g + wd·β), β −= lr·buf.
        if let Some(g) = self.beta_grad.take() {
            let b = self.beta_value();
            let d = g + self.weight_decay * b;
            self.beta_momentum = self.momentum * self.beta_momentum + d;
            let lr = self.beta_lr;
            let _guard = tch::no_grad_guard();
            let mut beta = self.beta.shallow_clone();
            let _ = beta.f_fill_(b - lr * self.beta_momentum)?;
        }
        Ok(())
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        vec![("beta".into(), state_tensor(&[self.beta_value(), self.beta_momentum]))]
    }

    fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        check_state_names("reconboost", state, &["beta"])?;
        if state.is_empty() {
            return Ok(());
        }
        let v = read_state("reconboost", state, "beta", 2)?;
        let _guard = tch::no_grad_guard();
        let mut beta = self.beta.shallow_clone();
        let _ = beta.f_fill_(v[0])?;
        self.beta_momentum = v[1];
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::declaration::with_options;
    use crate::train::options::Value;

    #[test]
    fn the_specs_boosting_example() {
        // C = 6, w1 5, w2 1, softmax(F_−m)[y] = 0.5, softmax(f_m)[y] = 0.25: (5 − 0.5)/6 · ln 4.
        let mut logits = vec![0.0f32; 6];
        logits[0] = (0.25f32 / (0.75 / 5.0)).ln(); // p[0] = 0.25 with the other five equal
        let mut rest = vec![0.0f32; 6];
        rest[0] = (0.5f32 / (0.5 / 5.0)).ln(); // q[0] = 0.5
        let l = Tensor::from_slice(&logits).reshape([1, 6]);
        let r = Tensor::from_slice(&rest).reshape([1, 6]);
        let y = Tensor::from_slice(&[0i64]);
        let got = boosting_loss(&l, Some(&r), &y, 5.0, 1.0).unwrap().double_value(&[0]);
        let want = (5.0 - 0.5) / 6.0 * 4f64.ln();
        assert!((got - want).abs() < 1e-5 && (want - 1.03972).abs() < 1e-5, "{got} vs {want}");
    }

    #[test]
    fn the_schedule_alternates_learners_and_rectifies() {
        let rb = with_options(&SPEC, &[("stage_epochs".into(), Value::Int(2)), ("correct_epochs".into(), Value::Int(1))], ReconBoost::new)
            .unwrap();
        let phases: Vec<Phase> = (0..7).map(|e| rb.phase(e, 2)).collect();
        assert_eq!(
            phases,
            vec![
                Phase::Learner { stage: 0, modality: 0 },
                Phase::Learner { stage: 0, modality: 0 },
                Phase::Rectify { stage: 0 },
                Phase::Learner { stage: 1, modality: 1 },
                Phase::Learner { stage: 1, modality: 1 },
                Phase::Rectify { stage: 1 },
                Phase::Learner { stage: 2, modality: 0 },
            ]
        );
        // A fresh optimizer at each phase's first epoch only.
        let fresh: Vec<bool> = (0..6).map(|e| rb.fresh_optimizer(e)).collect();
        assert_eq!(fresh, vec![true, false, true, true, false, true]);
        let bb = with_options(&SPEC, &[("variant".into(), Value::Text("bb".into()))], ReconBoost::new).unwrap();
        assert!(!(0..6).any(|e| bb.fresh_optimizer(e)));
        assert!((bb.beta_value() - 0.01).abs() < 1e-9);
    }
}
