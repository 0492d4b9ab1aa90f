//! The trainer's levels below the recipe: one step on one batch, one epoch over a split,
//! evaluation, and the collection of per-sample gaps. The two-stage recipe itself is Rhai
//! (stdlib/train.rhai) over these.

use super::methods::{value, EpochContext, Method, StepContext, StepLoss};
use super::metrics::{scores, Scores};
use super::model::{Forward, Model};
use super::optim::Optimizer;
use crate::data::{Batch, BatchOptions, Batches, Split};
use crate::error::{Error, Result};
use crate::gap::{gap, true_class_score, GapKind};
use crate::progress::Progress;
use crate::tensor::{check, Kind, Tensor};

/// The modality inputs of a batch, in the model's order.
pub fn inputs<'a>(model: &Model, batch: &'a Batch) -> Result<Vec<&'a Tensor>> {
    model
        .modalities
        .iter()
        .map(|name| {
            batch.inputs.iter().find(|(n, _)| n == name).map(|(_, t)| t).ok_or_else(|| {
                let names: Vec<&str> = batch.inputs.iter().map(|(n, _)| n.as_str()).collect();
                Error::arg(format!("the model reads modality \"{name}\", but the batch holds: {}", names.join(", ")))
            })
        })
        .collect()
}

/// The forward pass on a batch's modality inputs.
pub fn forward_batch(model: &Model, batch: &Batch, train: bool) -> Result<Forward> {
    model.forward_all(&inputs(model, batch)?, train)
}

/// Refuses a model with more modalities than the method's rule is defined for.
fn check_modalities(model: &Model, method: &dyn Method) -> Result<()> {
    match method.max_modalities() {
        Some(max) if model.modalities.len() > max => Err(Error::arg(format!(
            "method {} is defined for {max} modalities and this model has {} ({}): {}; train it with a method defined for any number (concat, or a scripted method), or a model of {max}",
            method.name(),
            model.modalities.len(),
            model.modalities.join(", "),
            method.beyond_two()
        ))),
        _ => Ok(()),
    }
}

fn check_labels(model: &Model, labels: &Tensor) -> Result<()> {
    if labels.numel() == 0 {
        return Ok(());
    }
    let lo = check("labels", labels.f_min().and_then(|t| t.f_int64_value(&[])))?;
    let hi = check("labels", labels.f_max().and_then(|t| t.f_int64_value(&[])))?;
    if lo < 0 || hi >= model.classes {
        return Err(Error::arg(format!("labels: found {} outside [0, {}) for a {}-class model", if lo < 0 { lo } else { hi }, model.classes, model.classes)));
    }
    Ok(())
}

/// One optimisation step of `method` on a batch: its loss, backward, its gradient changes, the
/// update (once per sub-step: MLA takes one round per modality). `batch` is the batch's place
/// in its epoch (index, count). Returns ("loss", value: the mean of the sub-steps' totals),
/// each logged term, then the method's diagnostics.
pub fn step(model: &Model, opt: &mut Optimizer, batch: &Batch, method: &mut dyn Method, epoch: usize, position: (usize, usize)) -> Result<Vec<(String, f64)>> {
    if opt.architecture != model.architecture {
        return Err(Error::arg(format!("step: the optimizer was built for another model ({}), not this one ({}); build it with optimizer(model, ...)", opt.architecture, model.architecture)));
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
    check_modalities(model, method)?;
    method.prepare(model)?;
    let inputs = inputs(model, batch)?;
    let labels = check("step", batch.labels.f_to_device(model.device()))?;
    let rounds = method.substeps().max(1);
    let mut loss_sum = 0.0;
    let mut logged: Vec<(String, f64)> = Vec::new();
    let mut diagnostics_out: Vec<(String, f64)> = Vec::new();
    for substep in 0..rounds {
        let ctx = StepContext { model, inputs: &inputs, labels: &labels, indices: &batch.indices, epoch, step: opt.steps, batch: position, substep };
        let StepLoss { total, terms, diagnostics } = method.loss(&ctx)?;
        let total_value = value(&total)?;
        let mut these = vec![("loss".to_string(), total_value)];
        for (name, t) in &terms {
            these.push((name.to_string(), value(t)?));
        }
        if let Some((name, value)) = these.iter().find(|(_, v)| !v.is_finite()) {
            return Err(Error::arg(format!("loss term {name} is {value}: stopping before the update (lower the learning rate, or check the inputs for NaN)")));
        }
        let mut grads = opt.gradients(&total)?;
        method.adjust_gradients(&ctx, opt.params(), &mut grads)?;
        opt.update(&grads)?;
        loss_sum += total_value;
        logged.extend(these.into_iter().skip(1));
        diagnostics_out.extend(diagnostics.into_iter().map(|(k, v)| (k.to_string(), v)));
    }
    let mut out = vec![("loss".to_string(), loss_sum / rounds as f64)];
    out.extend(logged);
    out.extend(diagnostics_out);
    Ok(out)
}

/// Where an epoch's batches come from and what else it needs.
pub struct EpochPlan<'a> {
    pub train: &'a Split,
    /// The validation split, for methods that estimate on it (G-Blending).
    pub val: Option<&'a Split>,
    pub batching: &'a BatchOptions,
    pub epoch: usize,
    pub quiet: bool,
}

/// One epoch of `method` over the training split: the batch-size weighted mean of every loss
/// term and diagnostic.
pub fn epoch(model: &Model, opt: &mut Optimizer, plan: &EpochPlan, method: &mut dyn Method) -> Result<Vec<(String, f64)>> {
    let epoch = plan.epoch;
    check_modalities(model, method)?;
    method.prepare(model)?;
    method.begin_epoch(&EpochContext { model, opt, train: plan.train, val: plan.val, batching: plan.batching, epoch, quiet: plan.quiet })?;
    let batches = Batches::new(plan.train, plan.batching)?;
    let count = batches.batch_count();
    let mut bar = Progress::new(format!("epoch {epoch}"), batches.batch_count(), "batches", plan.quiet);
    // Sums by name in first-seen order: every step reports the same names, but matching by
    // name keeps the means right even if a method reports a diagnostic only sometimes.
    let mut sums: Vec<(String, f64, f64)> = Vec::new();
    let mut steps = 0usize;
    for (i, b) in batches.enumerate() {
        crate::interrupt::check(&format!("epoch {epoch}"))?;
        let b = b?;
        let terms = step(model, opt, &b, method, epoch, (i, count)).map_err(|e| e.context(format!("epoch {epoch}, step {}", i + 1)))?;
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

/// Logits of a whole split in evaluation mode (no augmentation, no gradients), in split order:
/// fused, and one [n, C] per modality in the model's order.
pub struct Outputs {
    pub fused: Tensor,
    pub per: Vec<Tensor>,
    pub labels: Tensor,
    pub indices: Tensor,
}

impl Outputs {
    pub fn first(&self) -> &Tensor {
        &self.per[0]
    }
    pub fn second(&self) -> &Tensor {
        &self.per[1]
    }
}

pub fn predict(model: &Model, split: &Split, batch_size: usize) -> Result<Outputs> {
    predict_with(model, split, batch_size, |model, inputs| Ok(model.forward_all(inputs, false)?.logits))
}

/// `predict` with another forward pass (Shapley's with modalities removed).
pub fn predict_with(model: &Model, split: &Split, batch_size: usize, forward: impl Fn(&Model, &[&Tensor]) -> Result<crate::train::fusion::Logits>) -> Result<Outputs> {
    let _guard = tch::no_grad_guard();
    let opts = BatchOptions { batch_size, shuffle: false, augment: false, ..BatchOptions::default() };
    let n = model.modalities.len();
    let (mut f, mut per, mut y, mut idx): (Vec<Tensor>, Vec<Vec<Tensor>>, Vec<Tensor>, Vec<Tensor>) = (Vec::new(), (0..n).map(|_| Vec::new()).collect(), Vec::new(), Vec::new());
    for b in Batches::new(split, &opts)? {
        crate::interrupt::check("predict")?;
        let b = b?;
        let logits = forward(model, &inputs(model, &b)?)?;
        f.push(logits.fused.to_device(tch::Device::Cpu));
        for (m, l) in logits.per.iter().enumerate() {
            per[m].push(l.to_device(tch::Device::Cpu));
        }
        y.push(b.labels);
        idx.push(b.indices);
    }
    if y.is_empty() {
        return Err(Error::arg(format!("predict: split {} is empty", split.name)));
    }
    let cat = |parts: &[Tensor]| check("predict", Tensor::f_cat(parts, 0));
    Ok(Outputs { fused: cat(&f)?, per: per.iter().map(|p| cat(p)).collect::<Result<_>>()?, labels: cat(&y)?, indices: cat(&idx)? })
}

/// Scores of the fused and unimodal predictions (one per modality, in the model's order).
pub struct Evaluation {
    pub fused: Scores,
    pub per: Vec<Scores>,
}

impl Evaluation {
    pub fn first(&self) -> &Scores {
        &self.per[0]
    }
    pub fn second(&self) -> &Scores {
        &self.per[1]
    }
}

pub fn evaluate(model: &Model, split: &Split, batch_size: usize) -> Result<Evaluation> {
    let out = predict(model, split, batch_size)?;
    let truth = check("evaluate", Vec::<i64>::try_from(&out.labels))?;
    let argmax = |t: &Tensor| check("evaluate", t.f_argmax(-1, false).and_then(|p| Vec::<i64>::try_from(&p)));
    let k = model.classes as usize;
    Ok(Evaluation { fused: scores(&argmax(&out.fused)?, &truth, k), per: out.per.iter().map(|l| Ok(scores(&argmax(l)?, &truth, k))).collect::<Result<_>>()? })
}

/// Per-sample gaps over a split (eval mode), with each modality's mean true-class score.
pub struct Collected {
    pub gaps: Tensor,
    pub score_first: f64,
    pub score_second: f64,
}

/// The gaps the two-stage recipe fits: first minus second for two modalities; for more, the
/// first against the others' mean (score_second is then the others' mean score).
pub fn collect(model: &Model, split: &Split, kind: GapKind, batch_size: usize) -> Result<Collected> {
    if model.modalities.len() == 2 {
        return collect_pair(model, split, kind, batch_size, (0, 1));
    }
    let out = predict(model, split, batch_size)?;
    let g = crate::gap::gap_against_rest(&out.per, &out.labels, kind)?;
    let mean = |logits: &Tensor| -> Result<f64> { check("collect", true_class_score(logits, &out.labels)?.f_mean(Kind::Double).and_then(|m| m.f_double_value(&[]))) };
    let others: Vec<f64> = out.per[1..].iter().map(mean).collect::<Result<_>>()?;
    Ok(Collected { gaps: check("collect", g.f_to_kind(Kind::Double))?, score_first: mean(&out.per[0])?, score_second: others.iter().sum::<f64>() / others.len() as f64 })
}

/// The gaps of modality `pair.0` minus modality `pair.1` (indices in the model's order).
pub fn collect_pair(model: &Model, split: &Split, kind: GapKind, batch_size: usize, pair: (usize, usize)) -> Result<Collected> {
    let out = predict(model, split, batch_size)?;
    let (a, b) = (&out.per[pair.0], &out.per[pair.1]);
    let g = gap(a, b, &out.labels, kind)?;
    let mean = |logits: &Tensor| -> Result<f64> { check("collect", true_class_score(logits, &out.labels)?.f_mean(Kind::Double).and_then(|m| m.f_double_value(&[]))) };
    Ok(Collected { gaps: check("collect", g.f_to_kind(Kind::Double))?, score_first: mean(a)?, score_second: mean(b)? })
}

/// Each encoder's features [n, d_m] (on the CPU, one per modality in the model's order) and the
/// labels [n] of a split's batches, in evaluation mode without gradients: PMR's prototypes,
/// D&R's diagnosis, embeddings. `limit` stops after that many batches.
pub struct Features {
    pub per: Vec<Tensor>,
    pub labels: Tensor,
}

impl Features {
    pub fn first(&self) -> &Tensor {
        &self.per[0]
    }
    pub fn second(&self) -> &Tensor {
        &self.per[1]
    }
}

pub fn features(model: &Model, split: &Split, batching: &BatchOptions, limit: Option<usize>) -> Result<Features> {
    let _guard = tch::no_grad_guard();
    let n = model.modalities.len();
    let (mut per, mut y): (Vec<Vec<Tensor>>, Vec<Tensor>) = ((0..n).map(|_| Vec::new()).collect(), Vec::new());
    for b in Batches::new(split, batching)?.take(limit.unwrap_or(usize::MAX)) {
        let b = b?;
        let f = model.encode_all(&inputs(model, &b)?, false)?;
        for (m, x) in f.iter().enumerate() {
            per[m].push(x.to_device(tch::Device::Cpu));
        }
        y.push(b.labels);
    }
    if y.is_empty() {
        return Err(Error::arg(format!("features: split {} is empty", split.name)));
    }
    let cat = |parts: &[Tensor]| check("features", Tensor::f_cat(parts, 0));
    Ok(Features { per: per.iter().map(|p| cat(p)).collect::<Result<_>>()?, labels: cat(&y)? })
}
