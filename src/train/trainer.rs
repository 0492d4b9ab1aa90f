//! The trainer's levels below the recipe: one step on one batch, one epoch over a split,
//! evaluation, and the collection of per-sample gaps. The two-stage recipe itself is Rhai
//! (stdlib/train.rhai) over these.

use super::fusion::Logits;
use super::loss::{self, LossConfig, LossTerms};
use super::metrics::{scores, Scores};
use super::model::{Forward, Model};
use super::optim::Optimizer;
use crate::data::{Batch, BatchOptions, Batches, Split};
use crate::error::{Error, Result};
use crate::gap::{gap, true_class_score, GapKind};
use crate::mixture::Mixture;
use crate::progress::Progress;
use crate::tensor::{check, Kind, Tensor};
use std::rc::Rc;

/// Which loss a step uses.
pub enum Objective {
    /// Fused cross-entropy only (the concat baseline).
    Baseline,
    /// L_wp = CE_f + CE_a + CE_v.
    Warmup,
    /// Eq. 11 with per-sample weights from a stored fit or the live batch.
    Adaptive { weights: Weights, cfg: LossConfig },
}

/// Where the adaptive loss's (w0, w1) come from.
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
                let g = check("weights", gap(&logits.first, &logits.second, labels, kind)?.f_detach().and_then(|g| g.f_to_kind(Kind::Double)).and_then(|g| g.f_to_device(tch::Device::Cpu)))?;
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
        check("weights", self.dense.f_index_select(0, &indices.to_device(tch::Device::Cpu)))
    }
}

/// The two modality inputs of a batch, in the model's order.
fn inputs<'a>(model: &Model, batch: &'a Batch) -> Result<[&'a Tensor; 2]> {
    let get = |name: &str| {
        batch.inputs.iter().find(|(n, _)| n == name).map(|(_, t)| t).ok_or_else(|| {
            let names: Vec<&str> = batch.inputs.iter().map(|(n, _)| n.as_str()).collect();
            Error::arg(format!("the model reads modality \"{name}\", but the batch holds: {}", names.join(", ")))
        })
    };
    Ok([get(&model.modalities[0])?, get(&model.modalities[1])?])
}

/// The forward pass on a batch's two modality inputs.
pub fn forward_batch(model: &Model, batch: &Batch, train: bool) -> Result<Forward> {
    let [a, v] = inputs(model, batch)?;
    model.forward(a, v, train)
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

fn scalar(t: &Tensor) -> Result<f64> {
    check("loss", t.f_double_value(&[]))
}

/// One optimisation step; returns ("loss", value) then each term.
pub fn step(model: &Model, opt: &mut Optimizer, batch: &Batch, objective: &Objective) -> Result<Vec<(String, f64)>> {
    if opt.architecture != model.architecture {
        return Err(Error::arg(format!("step: the optimizer was built for another model ({}), not this one ({}); build it with optimizer(model, ...)", opt.architecture, model.architecture)));
    }
    check_labels(model, &batch.labels)?;
    let [a, v] = inputs(model, batch)?;
    let labels = batch.labels.to_device(model.device());
    let fwd = model.forward(a, v, true)?;
    let LossTerms { total, terms } = match objective {
        Objective::Baseline => loss::fused_only(&fwd.logits, &labels)?,
        Objective::Warmup => loss::warmup(&fwd.logits, &labels)?,
        Objective::Adaptive { weights, cfg } => loss::adaptive(&fwd.logits, &labels, &weights.for_batch(&fwd.logits, &labels, &batch.indices, cfg.gap)?, cfg)?,
    };
    let mut out = vec![("loss".to_string(), scalar(&total)?)];
    for (name, t) in &terms {
        out.push((name.to_string(), scalar(t)?));
    }
    if let Some((name, value)) = out.iter().find(|(_, v)| !v.is_finite()) {
        return Err(Error::arg(format!("loss term {name} is {value}: stopping before the update (lower the learning rate, or check the inputs for NaN)")));
    }
    opt.backward_step(&total)?;
    Ok(out)
}

/// One epoch over `split`: means of every loss term, and training accuracy of the fused output.
pub fn epoch(model: &Model, opt: &mut Optimizer, split: &Split, batching: &BatchOptions, objective: &Objective, epoch: usize, quiet: bool) -> Result<Vec<(String, f64)>> {
    let batches = Batches::new(split, batching)?;
    let mut bar = Progress::new(format!("epoch {epoch}"), batches.batch_count(), "batches", quiet);
    let mut sums: Vec<(String, f64)> = Vec::new();
    let (mut n, mut steps) = (0.0, 0usize);
    for (i, b) in batches.enumerate() {
        let b = b?;
        let terms = step(model, opt, &b, objective).map_err(|e| Error::arg(format!("epoch {epoch}, step {}: {e}", i + 1)))?;
        let bs = b.labels.size()[0] as f64;
        if sums.is_empty() {
            sums = terms.iter().map(|(k, _)| (k.clone(), 0.0)).collect();
        }
        for ((_, s), (_, v)) in sums.iter_mut().zip(&terms) {
            *s += v * bs;
        }
        n += bs;
        steps += 1;
        bar.set_message(format!("loss {:.4}", sums[0].1 / n));
        bar.inc(1);
    }
    bar.finish();
    if steps == 0 {
        return Err(Error::arg(format!("epoch {epoch}: split {} gave no batches", split.name)));
    }
    Ok(sums.into_iter().map(|(k, s)| (k, s / n)).collect())
}

/// Logits of a whole split in evaluation mode (no augmentation, no gradients), in split order.
pub struct Outputs {
    pub fused: Tensor,
    pub first: Tensor,
    pub second: Tensor,
    pub labels: Tensor,
    pub indices: Tensor,
}

pub fn predict(model: &Model, split: &Split, batch_size: usize) -> Result<Outputs> {
    let _guard = tch::no_grad_guard();
    let opts = BatchOptions { batch_size, shuffle: false, augment: false, ..BatchOptions::default() };
    let (mut f, mut a, mut v, mut y, mut idx) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for b in Batches::new(split, &opts)? {
        let b = b?;
        let [x1, x2] = inputs(model, &b)?;
        let Forward { logits, .. } = model.forward(x1, x2, false)?;
        f.push(logits.fused.to_device(tch::Device::Cpu));
        a.push(logits.first.to_device(tch::Device::Cpu));
        v.push(logits.second.to_device(tch::Device::Cpu));
        y.push(b.labels);
        idx.push(b.indices);
    }
    if y.is_empty() {
        return Err(Error::arg(format!("predict: split {} is empty", split.name)));
    }
    let cat = |parts: &[Tensor]| check("predict", Tensor::f_cat(parts, 0));
    Ok(Outputs { fused: cat(&f)?, first: cat(&a)?, second: cat(&v)?, labels: cat(&y)?, indices: cat(&idx)? })
}

/// Scores of the fused and unimodal predictions.
pub struct Evaluation {
    pub fused: Scores,
    pub first: Scores,
    pub second: Scores,
}

pub fn evaluate(model: &Model, split: &Split, batch_size: usize) -> Result<Evaluation> {
    let out = predict(model, split, batch_size)?;
    let truth = check("evaluate", Vec::<i64>::try_from(&out.labels))?;
    let argmax = |t: &Tensor| check("evaluate", t.f_argmax(-1, false).and_then(|p| Vec::<i64>::try_from(&p)));
    let k = model.classes as usize;
    Ok(Evaluation { fused: scores(&argmax(&out.fused)?, &truth, k), first: scores(&argmax(&out.first)?, &truth, k), second: scores(&argmax(&out.second)?, &truth, k) })
}

/// Per-sample gaps over a split (eval mode), with each modality's mean true-class score.
pub struct Collected {
    pub gaps: Tensor,
    pub score_first: f64,
    pub score_second: f64,
}

pub fn collect(model: &Model, split: &Split, kind: GapKind, batch_size: usize) -> Result<Collected> {
    let out = predict(model, split, batch_size)?;
    let g = gap(&out.first, &out.second, &out.labels, kind)?;
    let mean = |logits: &Tensor| -> Result<f64> { check("collect", true_class_score(logits, &out.labels)?.f_mean(Kind::Double).and_then(|m| m.f_double_value(&[]))) };
    Ok(Collected { gaps: check("collect", g.f_to_kind(Kind::Double))?, score_first: mean(&out.first)?, score_second: mean(&out.second)? })
}
