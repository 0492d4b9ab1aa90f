//! The trainer's loop: one step of a method on one batch, one epoch over a split. It stands
//! above the methods (it calls them); evaluation, gaps and features over a split are
//! `inference`, below them (re-exported here, where scripts' callers have always found them).
//! The two-stage recipe itself is Rhai (stdlib/train.rhai) over these.

use super::autocast::{self, Precision};
pub use super::inference::{
    collect, collect_pair, evaluate, evaluation, features, forward_batch, inputs, predict, predict_with, Collected, Evaluation, Features,
    Outputs,
};
use super::loss_scale::{LossScaler, StepScale};
/// Where an epoch's batches come from (`train::method`), where callers have always found it.
pub use super::method::EpochPlan;
use super::method::{value, EpochContext, Method, StepContext, StepLoss};
use super::model::Model;
use super::optim::Optimizer;
use crate::data::{view, Batch, Batches, Split};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::tensor::Tensor;

fn check_labels(model: &Model, labels: &Tensor) -> Result<()> {
    if labels.numel() == 0 {
        return Ok(());
    }
    let lo = labels.f_min().and_then(|t| t.f_int64_value(&[]))?;
    let hi = labels.f_max().and_then(|t| t.f_int64_value(&[]))?;
    if lo < 0 || hi >= model.classes {
        return Err(Error::arg(format!(
            "labels: found {} outside [0, {}) for a {}-class model",
            if lo < 0 { lo } else { hi },
            model.classes,
            model.classes
        )));
    }
    Ok(())
}

/// One optimisation step of `method` on a batch: its loss, backward, its gradient changes, the
/// update (once per sub-step: MLA takes one round per modality). `batch` is the batch's place
/// in its epoch (index, count). With `amp` the loss runs under autocast; with fp16 the
/// gradients go through the optimizer's loss scale and a sub-step whose gradients overflowed
/// is skipped (logged as `amp_skipped`, with `loss_scale`). Returns ("loss", value: the mean of
/// the sub-steps' totals), each logged term, then the method's diagnostics.
pub fn step(
    model: &Model,
    opt: &mut Optimizer,
    batch: &Batch,
    method: &mut dyn Method,
    epoch: usize,
    position: (usize, usize),
    amp: Option<Precision>,
) -> Result<Vec<(String, f64)>> {
    if opt.architecture != model.architecture {
        return Err(Error::arg(format!(
            "step: the optimizer was built for another model ({}), not this one ({}); build it with optimizer(model, ...)",
            opt.architecture, model.architecture
        )));
    }
    // Same architecture is not the same model: an optimizer built for a twin would update the
    // twin's parameters and leave this model untrained without a word.
    let own = model.vs.variables();
    if let Some((name, p)) = opt.params().first() {
        if own.get(name).is_none_or(|q| q.data_ptr() != p.data_ptr()) {
            return Err(Error::arg("step: the optimizer was built for another model of the same architecture; build it for this one with optimizer(model, ...)".to_string()));
        }
    }
    check_labels(model, &batch.labels)?;
    method.prepare(model)?;
    // The batch goes to the model's device once per step (a no-op on the CPU): methods that run
    // several forward passes (AGM, CML, Greedy) must not copy it there for each.
    let on_device = inputs(model, batch)?.into_iter().map(|t| t.f_to_device(model.device())).collect::<std::result::Result<Vec<_>, _>>()?;
    let inputs: Vec<&Tensor> = on_device.iter().collect();
    let labels = batch.labels.f_to_device(model.device())?;
    let rounds = method.substeps(model).max(1);
    let group_lrs: Vec<(String, f64)> = opt.groups().iter().map(|g| (g.name.clone(), g.lr)).collect();
    let mut loss_sum = 0.0;
    let mut logged: Vec<(String, f64)> = Vec::new();
    let mut diagnostics_out: Vec<(String, f64)> = Vec::new();
    let mut skipped = 0usize;
    for substep in 0..rounds {
        let scale = match amp {
            Some(Precision::Fp16) => StepScale::of(opt.scaler.get_or_insert_with(LossScaler::default).scale),
            _ => StepScale::unit(),
        };
        let ctx = StepContext {
            model,
            inputs: &inputs,
            labels: &labels,
            indices: &batch.indices,
            keep: batch.keep.as_ref(),
            epoch,
            step: opt.steps,
            batch: position,
            lr: opt.lr,
            group_lrs: &group_lrs,
            substep,
            scale: &scale,
        };
        let StepLoss { total, terms, diagnostics } = autocast::maybe(model.device(), amp, || method.loss(&ctx))?;
        let total_value = value(&total)?;
        let mut these = vec![("loss".to_string(), total_value)];
        for (name, t) in &terms {
            these.push((name.to_string(), value(t)?));
        }
        if let Some((name, value)) = these.iter().find(|(_, v)| !v.is_finite()) {
            return Err(Error::arg(format!(
                "loss term {name} is {value}: stopping before the update (lower the learning rate, or check the inputs for NaN)"
            )));
        }
        let mut grads = match method.backward(&ctx, &total, opt.params())? {
            Some(own) => own,
            None => {
                let params: Vec<&Tensor> = opt.params().iter().map(|(_, p)| p).collect();
                scale.backward(&[&total], &params, false, false)?
            }
        };
        let late = if scale.found_inf() {
            // GradScaler's skip: no rule reads the overflowed gradients, no update, a smaller scale.
            skipped += 1;
            method.gradient_diagnostics();
            Vec::new()
        } else {
            method.adjust_gradients(&ctx, opt.params(), &mut grads)?;
            let late = method.gradient_diagnostics();
            opt.update(&grads)?;
            late
        };
        if let (Some(Precision::Fp16), Some(scaler)) = (amp, opt.scaler.as_mut()) {
            scaler.update(scale.found_inf());
        }
        loss_sum += total_value;
        for (name, _) in these.iter().skip(1) {
            super::term_kinds::note_term(name);
        }
        logged.extend(these.into_iter().skip(1));
        for (name, _) in diagnostics.iter().chain(&late) {
            super::term_kinds::note_diagnostic(name);
        }
        diagnostics_out.extend(diagnostics.into_iter().chain(late).map(|(k, v)| (k.to_string(), v)));
    }
    let mut out = vec![("loss".to_string(), loss_sum / rounds as f64)];
    out.extend(logged);
    out.extend(diagnostics_out);
    if let (Some(Precision::Fp16), Some(scaler)) = (amp, opt.scaler.as_ref()) {
        out.push(("amp_skipped".to_string(), skipped as f64 / rounds as f64));
        out.push(("loss_scale".to_string(), scaler.scale));
    }
    Ok(out)
}

/// One epoch of `method` over the training split: the batch-size weighted mean of every loss
/// term and diagnostic.
pub fn epoch(model: &Model, opt: &mut Optimizer, plan: &EpochPlan, method: &mut dyn Method) -> Result<Vec<(String, f64)>> {
    let epoch = plan.epoch;
    method.prepare(model)?;
    if method.fresh_optimizer(epoch) {
        opt.reset_state();
    }
    method.begin_epoch(&EpochContext {
        model,
        opt,
        train: plan.train,
        val: plan.val,
        batching: plan.batching,
        epoch,
        quiet: plan.quiet,
        amp: plan.amp,
        run_epoch: self::epoch,
    })?;
    // Layers the method grew (AUG's trained boosting layers) join the optimizer, state empty.
    opt.adopt(model.grown_parameters());
    if plan.batching.channels_last {
        super::memory_format::model_channels_last(model)?;
    }
    for (group, lr) in method.lr_changes() {
        opt.set_group_lr(&group, lr)?;
    }
    // A method that resamples the split (unimodal copies) trains on its view this epoch.
    let (batches, count): (Box<dyn Iterator<Item = Result<Batch>>>, usize) = match method.epoch_view() {
        Some(items) => {
            let b = view::batches(plan.train, items, plan.batching, model.modalities.len())?;
            let count = b.batch_count();
            (Box::new(b), count)
        }
        None => {
            let b = Batches::new(plan.train, plan.batching)?;
            let count = b.batch_count();
            (Box::new(b), count)
        }
    };
    let mut bar = Progress::new(format!("epoch {epoch}"), count, "batches", plan.quiet);
    // Sums by name in first-seen order: every step reports the same names, but matching by
    // name keeps the means right even if a method reports a diagnostic only sometimes.
    let mut sums: Vec<(String, f64, f64)> = Vec::new();
    let mut steps = 0usize;
    for (i, b) in batches.enumerate() {
        crate::interrupt::check(&format!("epoch {epoch}"))?;
        let b = if plan.batching.channels_last { super::memory_format::batch_channels_last(b?)? } else { b? };
        let terms =
            step(model, opt, &b, method, epoch, (i, count), plan.amp).map_err(|e| e.context(format!("epoch {epoch}, step {}", i + 1)))?;
        let bs = b.labels.size()[0] as f64;
        for (k, v) in terms {
            match sums.iter_mut().find(|(name, _, _)| *name == k) {
                Some((_, s, n)) => {
                    *s += v * bs;
                    *n += bs;
                }
                None => sums.push((k, v * bs, bs)),
            }
        }
        steps += 1;
        bar.set_message(format!("loss {:.4}", sums[0].1 / sums[0].2));
        bar.inc(1);
    }
    bar.finish();
    if steps == 0 {
        return Err(Error::arg(format!("epoch {epoch}: split {} gave no batches", plan.train.name)));
    }
    Ok(sums.into_iter().map(|(k, s, n)| (k, s / n)).collect())
}

/// Evaluation with the method's own test-time fusion where it has one (`Method::predict`: a
/// uni-modal ensemble's mean softmax), else as `evaluate`.
pub fn evaluate_with(model: &Model, split: &Split, batch_size: usize, method: &mut dyn Method) -> Result<Evaluation> {
    method.prepare(model)?;
    let out = predict(model, split, batch_size)?;
    let fused = method.predict(model, &out.fused, &out.per)?;
    evaluation(model, &out, fused.as_ref())
}
