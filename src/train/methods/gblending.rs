//! G-Blending (Wang, Tran, Feiszli, CVPR 2020): the loss blends per-head cross-entropies,
//! L = w_first·CE(l_first) + w_second·CE(l_second) + w_fused·CE(l_fused), with weights
//! estimated from how each head overfits (../shared/baselines.md §1). The paper's rule is per
//! head, so N modalities have N + 1 heads (one per modality, then the fused one) and N + 1
//! weights, estimated the same way.
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

use crate::data::{BatchOptions, Batches, Split};
use crate::error::{Error, Result};
use crate::tensor::{Kind, Tensor};
use crate::train::declaration::{Keeps, Knob, MethodSpec, Modalities, Reference};
use crate::train::fusion::Logits;
use crate::train::method::EpochPlan;
use crate::train::method::{
    check_state_names, cross_entropy, mean_ce, per_modality, read_state, state_tensor, EpochContext, Method, StepContext, StepLoss,
};
use crate::train::model::Model;
use crate::train::options::{opt, Literal, Resolved, Valid};

pub static SPEC: MethodSpec = MethodSpec {
    name: "g-blending",
    aliases: &[],
    summary: "gradient blending: each head's loss weighted by its overfitting-to-generalisation ratio",
    reference: Reference {
        authors: "Wang, Tran and Feiszli",
        venue: "CVPR 2020",
        code: "https://github.com/facebookresearch/VMZ (c2/tutorials/gradient_blending.md)",
        commit: "",
    },
    options: &[
        opt("super_epoch", Literal::Int(10), Valid::Int(1, 100_000), "epochs between weight estimates (and of each estimate)"),
        opt("mode", Literal::Text("online"), Valid::Choice(&["online", "offline"]), "re-estimate every super-epoch, or once"),
        opt(
            "heads",
            Literal::Text("split"),
            Valid::Choice(&["split", "zero_input"]),
            "unimodal heads from the split logits, or the fused head with the other inputs zeroed",
        ),
        opt(
            "weights",
            Literal::List(&[]),
            Valid::HeadWeights,
            "fixed weights (one per modality, then the fused head's); [] estimates them",
        ),
    ],
    variants: &[],
    modalities: Modalities::Any,
    keeps_state: Keeps::When(|o| o.list("weights").is_empty(), "when it estimates its weights (weights: [])"),
    terms: &["ce_fused", "ce_*"],
    diagnostics: &["w_*"],
    knob: Some(Knob { key: "super_epoch", values: &[Literal::Int(2), Literal::Int(5), Literal::Int(10)] }),
    build: |o, _| Ok(Box::new(GBlending::new(o)?)),
};

pub struct GBlending {
    super_epoch: usize,
    online: bool,
    zero_input: bool,
    fixed: bool,
    /// One per modality, then the fused head's.
    weights: Option<Vec<f64>>,
    /// The epoch of the last estimate (-1: none yet).
    estimated_at: i64,
}

/// Weights from each head's (train, val) mean losses before and after the window.
pub fn blend_weights(before: &[(f64, f64)], after: &[(f64, f64)]) -> Vec<f64> {
    let w: Vec<f64> = before
        .iter()
        .zip(after)
        .map(|(b, a)| {
            let gain = b.1 - a.1;
            let overfit = (a.1 - a.0) - (b.1 - b.0);
            gain.max(0.0) / (overfit * overfit + 1e-8)
        })
        .collect();
    let total: f64 = w.iter().sum();
    if !(total > 0.0 && total.is_finite()) {
        return vec![1.0 / w.len() as f64; w.len()];
    }
    w.into_iter().map(|x| x / total).collect()
}

/// Head `head`'s logits: modality `head`'s for head < N, the fused ones for head N.
fn head_logits(model: &Model, inputs: &[&Tensor], head: usize, zero_input: bool, train: bool) -> Result<Tensor> {
    let n = inputs.len();
    if zero_input && head < n {
        let kept = inputs
            .iter()
            .enumerate()
            .map(|(m, x)| if m == head { Ok(x.shallow_clone()) } else { x.f_zeros_like().map_err(Error::from) })
            .collect::<Result<Vec<_>>>()?;
        return Ok(model.forward_all(&kept.iter().collect::<Vec<_>>(), train)?.logits.fused);
    }
    let Logits { fused, mut per } = model.forward_all(inputs, train)?.logits;
    Ok(if head < n { per.swap_remove(head) } else { fused })
}

/// The name of head k in messages and logs.
fn head_name(model: &Model, head: usize) -> &'static str {
    if head < model.modalities.len() {
        crate::train::method::modality_label(model, head)
    } else {
        "fused"
    }
}

/// Mean CE of one head over a split, in evaluation mode without gradients.
fn mean_loss(model: &Model, split: &Split, head: usize, zero_input: bool) -> Result<f64> {
    let _guard = tch::no_grad_guard();
    let opts = BatchOptions { batch_size: 256, shuffle: false, augment: false, ..BatchOptions::default() };
    let (mut sum, mut n) = (0.0, 0.0);
    for b in Batches::new(split, &opts)? {
        let b = b?;
        let x = |name: &str| {
            b.inputs
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t.shallow_clone())
                .ok_or_else(|| Error::arg(format!("g-blending: the batch has no modality \"{name}\"")))
        };
        let xs = model.modalities.iter().map(|m| x(m)).collect::<Result<Vec<_>>>()?;
        let logits = head_logits(model, &xs.iter().collect::<Vec<_>>(), head, zero_input, false)?;
        let labels = b.labels.f_to_device(model.device())?;
        sum += cross_entropy(&logits, &labels)?.f_sum(Kind::Double).and_then(|s| s.f_double_value(&[]))?;
        n += b.labels.size()[0] as f64;
    }
    Ok(sum / n.max(1.0))
}

/// Trains a copy on one head's CE (the estimate's inner runs).
struct OneHead {
    head: usize,
    zero_input: bool,
}

impl Method for OneHead {
    fn loss(&mut self, ctx: &StepContext) -> Result<StepLoss> {
        let logits = head_logits(ctx.model, ctx.inputs, self.head, self.zero_input, true)?;
        let l = mean_ce(&logits, ctx.labels)?;
        Ok(StepLoss { total: l.shallow_clone(), terms: vec![("ce", l)], diagnostics: Vec::new() })
    }
}

impl GBlending {
    pub fn new(opts: &Resolved) -> Result<GBlending> {
        let fixed = opts.list("weights");
        let weights = (!fixed.is_empty()).then(|| {
            let total: f64 = fixed.iter().sum();
            fixed.iter().map(|w| w / total).collect::<Vec<f64>>()
        });
        Ok(GBlending {
            super_epoch: opts.int("super_epoch") as usize,
            online: opts.text("mode") == "online",
            zero_input: opts.text("heads") == "zero_input",
            fixed: weights.is_some(),
            weights,
            estimated_at: -1,
        })
    }

    fn due(&self, epoch: usize) -> bool {
        !self.fixed && if self.online { epoch.is_multiple_of(self.super_epoch) || self.weights.is_none() } else { self.weights.is_none() }
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

    fn estimate(&self, ctx: &EpochContext, val: &Split) -> Result<Vec<f64>> {
        let heads = ctx.model.modalities.len() + 1;
        let mut before = vec![(0.0, 0.0); heads];
        let mut after = vec![(0.0, 0.0); heads];
        for head in 0..heads {
            let copy = ctx.model.copy()?;
            let mut opt = ctx.opt.fresh_like(copy.architecture.clone(), copy.trainable_parameters())?;
            before[head] = (mean_loss(&copy, ctx.train, head, self.zero_input)?, mean_loss(&copy, val, head, self.zero_input)?);
            let mut inner = OneHead { head, zero_input: self.zero_input };
            for j in 0..self.super_epoch {
                let batching = BatchOptions {
                    seed: ctx.batching.seed.wrapping_mul(31).wrapping_add(1000 * head as u64 + j as u64 + 1),
                    ..ctx.batching.clone()
                };
                let plan = EpochPlan { train: ctx.train, val: None, batching: &batching, epoch: j, quiet: ctx.quiet, amp: ctx.amp };
                (ctx.run_epoch)(&copy, &mut opt, &plan, &mut inner)
                    .map_err(|e| Error::arg(format!("g-blending estimate ({} head, inner epoch {j}): {e}", head_name(ctx.model, head))))?;
            }
            after[head] = (mean_loss(&copy, ctx.train, head, self.zero_input)?, mean_loss(&copy, val, head, self.zero_input)?);
        }
        Ok(blend_weights(&before, &after))
    }
}

impl Method for GBlending {
    fn begin_epoch(&mut self, ctx: &EpochContext) -> Result<()> {
        if self.due(ctx.epoch) && self.estimated_at != ctx.epoch as i64 {
            let val = self.check_val(ctx)?;
            self.weights = Some(self.estimate(ctx, val)?);
            self.estimated_at = ctx.epoch as i64;
        }
        Ok(())
    }

    fn prepare(&self, model: &Model) -> Result<()> {
        let heads = model.modalities.len() + 1;
        match &self.weights {
            Some(w) if w.len() != heads => Err(Error::arg(format!(
                "g-blending: {} weights for a model with {} heads: give one per modality ({}) then one for the fused head",
                w.len(),
                heads,
                model.modalities.join(", ")
            ))),
            _ => Ok(()),
        }
    }

    fn loss(&mut self, ctx: &StepContext) -> Result<StepLoss> {
        let w = self.weights.as_ref().ok_or_else(|| {
            Error::arg("g-blending: no weights yet: train_epoch estimates them (with val: data.val), or give fixed weights: [w_first, w_second, w_fused] (one per modality, then the fused head's) to use it step by step")
        })?;
        let model = ctx.model;
        let fwd = model.forward_all(ctx.inputs, true)?;
        let mut ce = fwd.logits.per.iter().map(|l| mean_ce(l, ctx.labels)).collect::<Result<Vec<_>>>()?;
        ce.push(mean_ce(&fwd.logits.fused, ctx.labels)?);
        if w.len() != ce.len() {
            return Err(Error::arg(format!("g-blending: {} weights (estimated for another model?) for {} heads", w.len(), ce.len())));
        }
        // Σ_k w_k·CE_k in head order (first, second, fused for two).
        let mut total = ce[0].f_mul_scalar(w[0])?;
        for (c, &wk) in ce.iter().zip(w).skip(1) {
            total = c.f_mul_scalar(wk).and_then(|x| total.f_add(&x))?;
        }
        let fused = ce.pop().expect("the fused head");
        let mut terms = vec![("ce_fused", fused)];
        terms.extend(per_modality(model, "ce").into_iter().zip(ce));
        let mut diagnostics: Vec<(&'static str, f64)> = per_modality(model, "w").into_iter().zip(w.iter().copied()).collect();
        diagnostics.push(("w_fused", w[w.len() - 1]));
        Ok(StepLoss { total, terms, diagnostics })
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        match &self.weights {
            Some(w) if !self.fixed => {
                vec![("weights".into(), state_tensor(w)), ("estimated_at".into(), state_tensor(&[self.estimated_at as f64]))]
            }
            _ => Vec::new(),
        }
    }

    fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        check_state_names("g-blending", state, &["weights", "estimated_at"])?;
        if state.is_empty() {
            return Ok(());
        }
        let len = state.iter().find(|(n, _)| n == "weights").map_or(3, |(_, t)| t.numel());
        if len < 3 {
            return Err(Error::arg(format!(
                "g-blending: the saved weights have {len} values, expected one per modality and the fused head's (3 or more)"
            )));
        }
        self.weights = Some(read_state("g-blending", state, "weights", len)?);
        self.estimated_at = read_state("g-blending", state, "estimated_at", 1)?[0] as i64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synthetic::{generate, SyntheticOptions};
    use crate::train::declaration::with_options;
    use crate::train::encoder::EncoderKind;
    use crate::train::fusion::FusionKind;
    use crate::train::model::ModelSpec;
    use crate::train::optim::{OptimKind, Optimizer, Schedule};
    use crate::train::options::Value;
    use std::rc::Rc;

    #[test]
    fn the_estimate_trains_copies_and_leaves_the_live_model_and_optimizer_alone() {
        let data = Rc::new(
            generate(&SyntheticOptions {
                n: 120,
                classes: 3,
                audio_shape: vec![6],
                visual_shape: vec![6],
                seed: 2,
                ..SyntheticOptions::default()
            })
            .unwrap(),
        );
        let (train, val) = (data.split("train").unwrap(), data.split("val").unwrap());
        let spec = ModelSpec {
            modalities: vec!["audio".into(), "visual".into()],
            shapes: vec![vec![6], vec![6]],
            encoders: vec![EncoderKind::parse("mlp:8").unwrap(), EncoderKind::parse("mlp:8").unwrap()],
            fusion: FusionKind::Concat,
            classes: 3,
            seed: 1,
            device: tch::Device::Cpu,
            mmtm: 0,
        };
        let model = Model::new(&spec).unwrap();
        let mut opt = Optimizer::new(
            OptimKind::Sgd { momentum: 0.9, nesterov: false },
            0.1,
            1e-4,
            Schedule::None,
            model.architecture.clone(),
            model.trainable_parameters(),
        )
        .unwrap();
        // Give the live optimiser some state first, so "unchanged" means something.
        let batching = BatchOptions { batch_size: 16, ..BatchOptions::default() };
        let plan = EpochPlan { train: &train, val: None, batching: &batching, epoch: 0, quiet: true, amp: None };
        crate::train::trainer::epoch(&model, &mut opt, &plan, &mut super::super::concat::Concat).unwrap();
        let snapshot = |named: Vec<(String, Tensor)>| -> Vec<(String, Tensor)> { named.into_iter().map(|(k, t)| (k, t.copy())).collect() };
        let (params_before, state_before, steps) = (snapshot(model.state_dict()), snapshot(opt.state_tensors()), opt.steps);
        let mut gb = with_options(&SPEC, &[("super_epoch".into(), Value::Int(2))], GBlending::new).unwrap();
        let ctx = EpochContext {
            model: &model,
            opt: &opt,
            train: &train,
            val: Some(&val),
            batching: &batching,
            epoch: 0,
            quiet: true,
            amp: None,
            run_epoch: crate::train::trainer::epoch,
        };
        gb.begin_epoch(&ctx).unwrap();
        let w = gb.weights.clone().expect("estimated");
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-9 && w.iter().all(|&x| x >= 0.0), "{w:?}");
        let same = |a: &[(String, Tensor)], b: &[(String, Tensor)]| {
            a.len() == b.len() && a.iter().zip(b).all(|((ka, ta), (kb, tb))| ka == kb && ta.equal(tb))
        };
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
        let w = blend_weights(&before, &after);
        let expect = [5.0 / 15.0, 10.0 / 15.0, 0.0];
        for k in 0..3 {
            assert!((w[k] - expect[k]).abs() < 1e-6, "{w:?}");
        }
        // ΔO = 0 gives finite weights; no improvement anywhere gives uniform weights.
        let flat = blend_weights(&[(1.0, 1.0); 3], &[(0.9, 0.9); 3]);
        assert!(flat.iter().all(|x| x.is_finite()) && (flat.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(blend_weights(&[(1.0, 1.0); 3], &[(1.0, 1.2); 3]), vec![1.0 / 3.0; 3]);
        // Four heads (three modalities and the fused one) normalise the same way.
        assert_eq!(blend_weights(&[(1.0, 1.0); 4], &[(1.0, 1.2); 4]), vec![0.25; 4]);
    }
}
