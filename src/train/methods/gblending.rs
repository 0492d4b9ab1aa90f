//! G-Blending (Wang, Tran, Feiszli, CVPR 2020): the loss blends per-head cross-entropies,
//! L = w_first·CE(l_first) + w_second·CE(l_second) + w_fused·CE(l_fused), with weights
//! estimated from how each head overfits (../shared/baselines.md §1).
//!
//! Estimate (online: every `super_epoch` epochs from epoch 0; offline: once, at the first
//! epoch): for each head k, a copy of the live model with a fresh optimiser (same kind, lr and
//! weight decay, constant lr) trains N = super_epoch epochs on CE of head k alone. Mean train
//! and validation losses of head k, in evaluation mode, are measured before (n) and after
//! (n + N); ΔG_k = L_V(n) − L_V(n+N), ΔO_k = O(n+N) − O(n) with O = L_V − L_T, and
//! w_k ∝ max(ΔG_k, 0) / (ΔO_k² + 1e-8), normalised (uniform if no head improved).
//!
//! Departures from BalanceBenchmark's online code, each a bug there: means rather than sums,
//! max(ΔG, 0) rather than |ΔG|, "before" measured before the window rather than after its
//! first epoch, and the validation split is the dataset's own (BB used the test set). Heads:
//! "split" trains head k on its Eq. 2 split logits; "zero_input" is BB's form (the fused logits
//! with the other modality's input zeroed).

use super::options::{resolve, spec, Resolved, Valid};
use crate::train::method::{check_state_names, cross_entropy, mean_ce, read_state, state_tensor, EpochContext, Method, StepContext, StepLoss, Value};
use crate::data::{BatchOptions, Batches, Split};
use crate::error::{Error, Result};
use crate::tensor::{check, Kind, Tensor};
use crate::train::fusion::Logits;
use crate::train::model::Model;
use crate::train::method::EpochPlan;

/// The three heads, in weight order.
const HEADS: [&str; 3] = ["first", "second", "fused"];

pub struct GBlending {
    opts: Resolved,
    super_epoch: usize,
    online: bool,
    zero_input: bool,
    fixed: bool,
    weights: Option<[f64; 3]>,
    /// The epoch of the last estimate (-1: none yet).
    estimated_at: i64,
}

/// Weights from each head's (train, val) mean losses before and after the window.
pub fn blend_weights(before: [(f64, f64); 3], after: [(f64, f64); 3]) -> [f64; 3] {
    let mut w = [0.0; 3];
    for k in 0..3 {
        let gain = before[k].1 - after[k].1;
        let overfit = (after[k].1 - after[k].0) - (before[k].1 - before[k].0);
        w[k] = gain.max(0.0) / (overfit * overfit + 1e-8);
    }
    let total: f64 = w.iter().sum();
    if !(total > 0.0 && total.is_finite()) {
        return [1.0 / 3.0; 3];
    }
    w.map(|x| x / total)
}

fn head_logits(model: &Model, a: &Tensor, v: &Tensor, head: usize, zero_input: bool, train: bool) -> Result<Tensor> {
    if zero_input && head < 2 {
        let op = "g-blending";
        let (a, v) = if head == 0 { (a.shallow_clone(), check(op, v.f_zeros_like())?) } else { (check(op, a.f_zeros_like())?, v.shallow_clone()) };
        return Ok(model.forward(&a, &v, train)?.logits.fused);
    }
    let Logits { fused, mut per } = model.forward(a, v, train)?.logits;
    Ok(match head {
        0 | 1 => per.swap_remove(head),
        _ => fused,
    })
}

/// Mean CE of one head over a split, in evaluation mode without gradients.
fn mean_loss(model: &Model, split: &Split, head: usize, zero_input: bool) -> Result<f64> {
    let _guard = tch::no_grad_guard();
    let opts = BatchOptions { batch_size: 256, shuffle: false, augment: false, ..BatchOptions::default() };
    let (mut sum, mut n) = (0.0, 0.0);
    for b in Batches::new(split, &opts)? {
        let b = b?;
        let x = |name: &str| b.inputs.iter().find(|(n, _)| n == name).map(|(_, t)| t.shallow_clone()).ok_or_else(|| Error::arg(format!("g-blending: the batch has no modality \"{name}\"")));
        let logits = head_logits(model, &x(&model.modalities[0])?, &x(&model.modalities[1])?, head, zero_input, false)?;
        let labels = check("g-blending", b.labels.f_to_device(model.device()))?;
        sum += check("g-blending", cross_entropy(&logits, &labels)?.f_sum(Kind::Double).and_then(|s| s.f_double_value(&[])))?;
        n += b.labels.size()[0] as f64;
    }
    Ok(sum / n.max(1.0))
}

/// Trains a copy on one head's CE (the estimate's inner runs).
struct OneHead {
    opts: Resolved,
    head: usize,
    zero_input: bool,
}

impl Method for OneHead {
    fn name(&self) -> &'static str {
        "g-blending head"
    }

    fn options(&self) -> &Resolved {
        &self.opts
    }

    fn loss(&mut self, ctx: &StepContext) -> Result<StepLoss> {
        let logits = head_logits(ctx.model, ctx.inputs[0], ctx.inputs[1], self.head, self.zero_input, true)?;
        let l = mean_ce(&logits, ctx.labels)?;
        Ok(StepLoss { total: l.shallow_clone(), terms: vec![("ce", l)], diagnostics: Vec::new() })
    }
}

impl GBlending {
    pub fn new(given: &[(String, Value)]) -> Result<GBlending> {
        let opts = resolve(
            "g-blending",
            &[
                spec("super_epoch", Value::Int(10), Valid::Int(1, 100_000)),
                spec("mode", Value::Text("online".into()), Valid::Choice(&["online", "offline"])),
                spec("heads", Value::Text("split".into()), Valid::Choice(&["split", "zero_input"])),
                spec("weights", Value::List(Vec::new()), Valid::Weights(3)),
            ],
            given,
        )?;
        let fixed = opts.list("weights");
        let weights = (!fixed.is_empty()).then(|| {
            let total: f64 = fixed.iter().sum();
            [fixed[0] / total, fixed[1] / total, fixed[2] / total]
        });
        Ok(GBlending {
            super_epoch: opts.int("super_epoch") as usize,
            online: opts.text("mode") == "online",
            zero_input: opts.text("heads") == "zero_input",
            fixed: weights.is_some(),
            weights,
            estimated_at: -1,
            opts,
        })
    }

    fn due(&self, epoch: usize) -> bool {
        !self.fixed && if self.online { epoch % self.super_epoch == 0 || self.weights.is_none() } else { self.weights.is_none() }
    }

    /// Checks the validation split can carry an estimate: at least one sample per class.
    fn check_val<'a>(&self, ctx: &EpochContext<'a>) -> Result<&'a Split> {
        let val = ctx.val.ok_or_else(|| {
            Error::arg("g-blending: estimates its weights on a validation split: pass val: data.val to train_epoch (the recipes do when the dataset has one), or give fixed weights: [w_first, w_second, w_fused]")
        })?;
        let need = ctx.model.classes as usize;
        if val.len() < need {
            return Err(Error::arg(format!(
                "g-blending: the validation split {} has {} samples; the weight estimate needs at least {need} (one per class): carve a larger one (the dataset's val fraction), or give fixed weights",
                val.name,
                val.len()
            )));
        }
        Ok(val)
    }

    fn estimate(&self, ctx: &EpochContext, val: &Split) -> Result<[f64; 3]> {
        let mut before = [(0.0, 0.0); 3];
        let mut after = [(0.0, 0.0); 3];
        for head in 0..3 {
            let copy = ctx.model.copy()?;
            let mut opt = ctx.opt.fresh_like(copy.architecture.clone(), copy.trainable_parameters())?;
            before[head] = (mean_loss(&copy, ctx.train, head, self.zero_input)?, mean_loss(&copy, val, head, self.zero_input)?);
            let mut inner = OneHead { opts: self.opts.clone(), head, zero_input: self.zero_input };
            for j in 0..self.super_epoch {
                let batching = BatchOptions { seed: ctx.batching.seed.wrapping_mul(31).wrapping_add(1000 * head as u64 + j as u64 + 1), ..ctx.batching.clone() };
                let plan = EpochPlan { train: ctx.train, val: None, batching: &batching, epoch: j, quiet: ctx.quiet };
                (ctx.run_epoch)(&copy, &mut opt, &plan, &mut inner).map_err(|e| Error::arg(format!("g-blending estimate ({} head, inner epoch {j}): {e}", HEADS[head])))?;
            }
            after[head] = (mean_loss(&copy, ctx.train, head, self.zero_input)?, mean_loss(&copy, val, head, self.zero_input)?);
        }
        Ok(blend_weights(before, after))
    }
}

impl Method for GBlending {
    fn name(&self) -> &'static str {
        "g-blending"
    }

    fn options(&self) -> &Resolved {
        &self.opts
    }

    fn keeps_state(&self) -> bool {
        !self.fixed
    }

    fn begin_epoch(&mut self, ctx: &EpochContext) -> Result<()> {
        if self.due(ctx.epoch) && self.estimated_at != ctx.epoch as i64 {
            let val = self.check_val(ctx)?;
            self.weights = Some(self.estimate(ctx, val)?);
            self.estimated_at = ctx.epoch as i64;
        }
        Ok(())
    }

    fn loss(&mut self, ctx: &StepContext) -> Result<StepLoss> {
        let w = self.weights.ok_or_else(|| {
            Error::arg("g-blending: no weights yet: train_epoch estimates them (with val: data.val), or give fixed weights: [w_first, w_second, w_fused] to use it step by step")
        })?;
        let fwd = ctx.model.forward(ctx.inputs[0], ctx.inputs[1], true)?;
        let op = "g-blending";
        let ce = [mean_ce(&fwd.logits.first(), ctx.labels)?, mean_ce(&fwd.logits.second(), ctx.labels)?, mean_ce(&fwd.logits.fused, ctx.labels)?];
        let total = check(op, ce[0].f_mul_scalar(w[0]).and_then(|x| x.f_add(&ce[1].f_mul_scalar(w[1])?)).and_then(|x| x.f_add(&ce[2].f_mul_scalar(w[2])?)))?;
        let [ce_a, ce_v, ce_f] = ce;
        Ok(StepLoss {
            total,
            terms: vec![("ce_fused", ce_f), ("ce_first", ce_a), ("ce_second", ce_v)],
            diagnostics: vec![("w_first", w[0]), ("w_second", w[1]), ("w_fused", w[2])],
        })
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        match self.weights {
            Some(w) if !self.fixed => vec![("weights".into(), state_tensor(&w)), ("estimated_at".into(), state_tensor(&[self.estimated_at as f64]))],
            _ => Vec::new(),
        }
    }

    fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        check_state_names("g-blending", state, &["weights", "estimated_at"])?;
        if state.is_empty() {
            return Ok(());
        }
        let w = read_state("g-blending", state, "weights", 3)?;
        self.weights = Some([w[0], w[1], w[2]]);
        self.estimated_at = read_state("g-blending", state, "estimated_at", 1)?[0] as i64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synthetic::{generate, SyntheticOptions};
    use crate::train::encoder::EncoderKind;
    use crate::train::fusion::FusionKind;
    use crate::train::model::ModelSpec;
    use crate::train::optim::{OptimKind, Optimizer, Schedule};
    use std::rc::Rc;

    #[test]
    fn the_estimate_trains_copies_and_leaves_the_live_model_and_optimizer_alone() {
        let data = Rc::new(generate(&SyntheticOptions { n: 120, classes: 3, audio_shape: vec![6], visual_shape: vec![6], seed: 2, ..SyntheticOptions::default() }).unwrap());
        let (train, val) = (data.split("train").unwrap(), data.split("val").unwrap());
        let spec = ModelSpec {
            modalities: vec!["audio".into(), "visual".into()],
            shapes: vec![vec![6], vec![6]],
            encoders: vec![EncoderKind::parse("mlp:8").unwrap(), EncoderKind::parse("mlp:8").unwrap()],
            fusion: FusionKind::Concat,
            classes: 3,
            seed: 1,
            device: tch::Device::Cpu,
        };
        let model = Model::new(&spec).unwrap();
        let mut opt = Optimizer::new(OptimKind::Sgd { momentum: 0.9, nesterov: false }, 0.1, 1e-4, Schedule::None, model.architecture.clone(), model.trainable_parameters()).unwrap();
        // Give the live optimiser some state first, so "unchanged" means something.
        let batching = BatchOptions { batch_size: 16, ..BatchOptions::default() };
        let plan = EpochPlan { train: &train, val: None, batching: &batching, epoch: 0, quiet: true };
        crate::train::trainer::epoch(&model, &mut opt, &plan, &mut super::super::concat::Concat::new(&[]).unwrap()).unwrap();
        let snapshot = |named: Vec<(String, Tensor)>| -> Vec<(String, Tensor)> { named.into_iter().map(|(k, t)| (k, t.copy())).collect() };
        let (params_before, state_before, steps) = (snapshot(model.state_dict()), snapshot(opt.state_tensors()), opt.steps);
        let mut gb = GBlending::new(&[("super_epoch".into(), Value::Int(2))]).unwrap();
        let ctx = EpochContext { model: &model, opt: &opt, train: &train, val: Some(&val), batching: &batching, epoch: 0, quiet: true, run_epoch: crate::train::trainer::epoch };
        gb.begin_epoch(&ctx).unwrap();
        let w = gb.weights.expect("estimated");
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-9 && w.iter().all(|&x| x >= 0.0), "{w:?}");
        let same = |a: &[(String, Tensor)], b: &[(String, Tensor)]| a.len() == b.len() && a.iter().zip(b).all(|((ka, ta), (kb, tb))| ka == kb && ta.equal(tb));
        assert!(same(&params_before, &model.state_dict()), "the live model changed");
        assert!(same(&state_before, &opt.state_tensors()) && opt.steps == steps, "the live optimizer changed");
    }

    #[test]
    fn weights_from_a_hand_computed_table() {
        // first: ΔG = 1.0 − 0.8 = 0.2, ΔO = (0.8 − 0.5) − (1.0 − 0.9) = 0.2 → 0.2/0.04 = 5
        // second: ΔG = 0.1, ΔO = (0.9 − 0.8) − 0 = 0.1 → 0.1/0.01 = 10
        // fused: ΔG = −0.1 (val loss rose) → 0
        let before = [(0.9, 1.0), (1.0, 1.0), (0.5, 0.6)];
        let after = [(0.5, 0.8), (0.8, 0.9), (0.2, 0.7)];
        let w = blend_weights(before, after);
        let expect = [5.0 / 15.0, 10.0 / 15.0, 0.0];
        for k in 0..3 {
            assert!((w[k] - expect[k]).abs() < 1e-6, "{w:?}");
        }
        // ΔO = 0 gives finite weights; no improvement anywhere gives uniform weights.
        let flat = blend_weights([(1.0, 1.0); 3], [(0.9, 0.9); 3]);
        assert!(flat.iter().all(|x| x.is_finite()) && (flat.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(blend_weights([(1.0, 1.0); 3], [(1.0, 1.2); 3]), [1.0 / 3.0; 3]);
    }
}
