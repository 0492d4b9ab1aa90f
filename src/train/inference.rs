//! Evaluation-mode passes over a split, without gradients: the logits (`predict`), their
//! scores (`evaluate`), the per-sample gaps the mixture is fitted to (`collect`) and each
//! encoder's features (`features`). The methods (PMR's prototypes, D&R's diagnosis) and the
//! host use them; they use only the model.

use super::metrics::{scores, Scores};
use super::model::{Forward, Model};
use crate::data::{Batch, BatchOptions, Batches, Split};
use crate::error::{Error, Result};
use crate::gap::{gap, true_class_score, GapKind};
use crate::tensor::{Kind, Tensor};

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
pub fn predict_with(
    model: &Model,
    split: &Split,
    batch_size: usize,
    forward: impl Fn(&Model, &[&Tensor]) -> Result<crate::train::fusion::Logits>,
) -> Result<Outputs> {
    let _guard = tch::no_grad_guard();
    let opts = BatchOptions { batch_size, shuffle: false, augment: false, ..BatchOptions::default() };
    let n = model.modalities.len();
    let (mut f, mut per, mut y, mut idx): (Vec<Tensor>, Vec<Vec<Tensor>>, Vec<Tensor>, Vec<Tensor>) =
        (Vec::new(), (0..n).map(|_| Vec::new()).collect(), Vec::new(), Vec::new());
    for b in Batches::new(split, &opts)? {
        crate::interrupt::check("predict")?;
        let b = b?;
        let logits = forward(model, &inputs(model, &b)?)?;
        // Gathered on the host by design: metrics, gaps and figures read them there, and a
        // whole split's logits need not fit beside the model on the device.
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
    let cat = |parts: &[Tensor]| Tensor::f_cat(parts, 0).map_err(Error::from);
    Ok(Outputs { fused: cat(&f)?, per: per.iter().map(|p| cat(p)).collect::<Result<_>>()?, labels: cat(&y)?, indices: cat(&idx)? })
}

/// Scores of the fused and unimodal predictions (one per modality, in the model's order), and
/// the fused prediction of every sample (the paired tests of docs/statistics.md read them).
pub struct Evaluation {
    pub fused: Scores,
    pub per: Vec<Scores>,
    pub samples: Predictions,
}

/// Per-sample fused predictions over a split, in split order.
pub struct Predictions {
    /// The samples' dataset indices.
    pub index: Vec<i64>,
    pub label: Vec<i64>,
    pub pred: Vec<i64>,
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
    evaluation(model, &predict(model, split, batch_size)?, None)
}

/// The scores of a split's outputs; the fused prediction from `fused_scores` where a method
/// fuses at test time by its own rule (`Method::predict`), else from the fused logits.
pub fn evaluation(model: &Model, out: &Outputs, fused_scores: Option<&Tensor>) -> Result<Evaluation> {
    let truth = (Vec::<i64>::try_from(&out.labels))?;
    let argmax = |t: &Tensor| t.f_argmax(-1, false).and_then(|p| Vec::<i64>::try_from(&p)).map_err(Error::from);
    let k = model.classes as usize;
    let pred = argmax(fused_scores.unwrap_or(&out.fused))?;
    Ok(Evaluation {
        fused: scores(&pred, &truth, k),
        per: out.per.iter().map(|l| Ok(scores(&argmax(l)?, &truth, k))).collect::<Result<_>>()?,
        samples: Predictions { index: Vec::<i64>::try_from(&out.indices)?, label: truth, pred },
    })
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
    let mean = |logits: &Tensor| -> Result<f64> {
        true_class_score(logits, &out.labels)?.f_mean(Kind::Double).and_then(|m| m.f_double_value(&[])).map_err(Error::from)
    };
    let others: Vec<f64> = out.per[1..].iter().map(mean).collect::<Result<_>>()?;
    Ok(Collected {
        gaps: g.f_to_kind(Kind::Double)?,
        score_first: mean(&out.per[0])?,
        score_second: others.iter().sum::<f64>() / others.len() as f64,
    })
}

/// The gaps of modality `pair.0` minus modality `pair.1` (indices in the model's order).
pub fn collect_pair(model: &Model, split: &Split, kind: GapKind, batch_size: usize, pair: (usize, usize)) -> Result<Collected> {
    let out = predict(model, split, batch_size)?;
    let (a, b) = (&out.per[pair.0], &out.per[pair.1]);
    let g = gap(a, b, &out.labels, kind)?;
    let mean = |logits: &Tensor| -> Result<f64> {
        true_class_score(logits, &out.labels)?.f_mean(Kind::Double).and_then(|m| m.f_double_value(&[])).map_err(Error::from)
    };
    Ok(Collected { gaps: g.f_to_kind(Kind::Double)?, score_first: mean(a)?, score_second: mean(b)? })
}

/// Each encoder's features [n, d_m] (on the CPU, one per modality in the model's order) and the
/// labels [n] of a split's batches, in evaluation mode without gradients: PMR's prototypes,
/// D&R's diagnosis, embeddings. `limit` stops after that many batches.
pub struct Features {
    pub per: Vec<Tensor>,
    pub labels: Tensor,
    /// [N] int64 dataset row indices, in the rows' order.
    pub indices: Tensor,
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
    let (mut per, mut y, mut idx): (Vec<Vec<Tensor>>, Vec<Tensor>, Vec<Tensor>) =
        ((0..n).map(|_| Vec::new()).collect(), Vec::new(), Vec::new());
    for b in Batches::new(split, batching)?.take(limit.unwrap_or(usize::MAX)) {
        let b = b?;
        let f = model.encode_all(&inputs(model, &b)?, false)?;
        for (m, x) in f.iter().enumerate() {
            // On the host by design, as `predict_with`'s logits: a split's features are read there.
            per[m].push(x.to_device(tch::Device::Cpu));
        }
        y.push(b.labels);
        idx.push(b.indices);
    }
    if y.is_empty() {
        return Err(Error::arg(format!("features: split {} is empty", split.name)));
    }
    let cat = |parts: &[Tensor]| Tensor::f_cat(parts, 0).map_err(Error::from);
    Ok(Features { per: per.iter().map(|p| cat(p)).collect::<Result<_>>()?, labels: cat(&y)?, indices: cat(&idx)? })
}
