//! A resampled view of a split (M8 of ../shared/baselines-2.md): items that are dataset rows,
//! repeated at will, each with the modalities it keeps. Sample-level valuation adds unimodal
//! copies of the samples a modality fails on; the copies are rebuilt from the split every
//! epoch, so they never compound, and each item keeps its row's index and label. Batches over
//! a view are the split's own batches (in-memory gathers, or per-sample decoding for corpora)
//! plus a [B, N] keep mask.

use super::batches::{Batch, BatchOptions, Batches};
use super::dataset::Split;
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::tensor::{check, Tensor};
use std::rc::Rc;

/// One item of a view: a dataset row and its kept modalities (bit m: modality m kept).
pub type Item = (i64, u32);

/// All modalities of `n` kept.
pub fn all_kept(n: usize) -> u32 {
    if n >= 32 {
        u32::MAX
    } else {
        (1u32 << n) - 1
    }
}

pub struct ViewBatches {
    split: Split,
    plan: Vec<Vec<Item>>,
    next: usize,
    modalities: usize,
    options: BatchOptions,
}

/// Batches over `items` (rows of `split`'s dataset), shuffled by the batching seed, with keep
/// masks over `modalities` modalities.
pub fn batches(split: &Split, items: &[Item], opts: &BatchOptions, modalities: usize) -> Result<ViewBatches> {
    if opts.batch_size == 0 {
        return Err(Error::arg("batches: batch size must be at least 1"));
    }
    let mut order = items.to_vec();
    if opts.shuffle {
        Rng::new(opts.seed).shuffle(&mut order);
    }
    let mut plan: Vec<Vec<Item>> = order.chunks(opts.batch_size).map(<[Item]>::to_vec).collect();
    if opts.drop_last && plan.last().is_some_and(|b| b.len() < opts.batch_size) {
        plan.pop();
    }
    Ok(ViewBatches { split: split.clone(), plan, next: 0, modalities, options: opts.clone() })
}

impl ViewBatches {
    pub fn batch_count(&self) -> usize {
        self.plan.len()
    }

    fn gather(&self, items: &[Item]) -> Result<Batch> {
        let rows: Vec<i64> = items.iter().map(|(r, _)| *r).collect();
        let sub = Split { dataset: self.split.dataset.clone(), name: format!("{}[view]", self.split.name), indices: Rc::new(rows) };
        // One batch of exactly these rows, in this order, decoded on this thread.
        let opts = BatchOptions { batch_size: items.len(), shuffle: false, drop_last: false, workers: 0, ..self.options.clone() };
        let mut batch = Batches::new(&sub, &opts)?.next().ok_or_else(|| Error::arg("batches: an empty batch in a view"))??;
        if batch.indices.size()[0] as usize != items.len() {
            return Err(Error::arg("batches: a resampled view cannot skip corrupt samples; repair or drop them from the split first"));
        }
        let n = self.modalities;
        let keep: Vec<f32> = items.iter().flat_map(|(_, bits)| (0..n).map(move |m| if bits & (1 << m) != 0 { 1.0 } else { 0.0 })).collect();
        batch.keep = Some(check("batch", Tensor::f_from_slice(&keep).and_then(|t| t.f_reshape([items.len() as i64, n as i64])))?);
        Ok(batch)
    }
}

impl Iterator for ViewBatches {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Self::Item> {
        let b = self.next;
        if b >= self.plan.len() {
            return None;
        }
        self.next += 1;
        Some(self.gather(&self.plan[b]))
    }
}
