//! Seeded batching over a split: each batch carries every modality's rows, the labels, and the
//! dataset indices of its samples (the adaptive loss looks up per-sample weights by index).
//!
//! In-memory modalities are gathered by index. Corpora on disk are decoded per sample, either
//! inline (workers 0) or on worker threads that run ahead of the consumer: worker w decodes
//! batches w, w + W, ... into its own bounded channel, and the consumer reads the channels in
//! turn, so the order never depends on thread timing and memory stays bounded. Each sample
//! draws its augmentation from its own random stream (seed, row), so results do not depend on
//! the number of workers either.

use super::dataset::{SampleSource, Split};
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::tensor::{check, Tensor};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};

pub struct Batch {
    /// (modality name, [B, ...]) in the dataset's modality order.
    pub inputs: Vec<(String, Tensor)>,
    /// [B] int64.
    pub labels: Tensor,
    /// [B] int64 dataset row indices.
    pub indices: Tensor,
    /// [B, N] float keep masks over the model's modalities (0: removed from that item), for an
    /// epoch over a resampled view whose copies keep only some modalities (sample-level
    /// valuation); None: every item keeps every modality.
    pub keep: Option<Tensor>,
}

/// How to batch a split.
#[derive(Clone, Debug)]
pub struct BatchOptions {
    pub batch_size: usize,
    pub shuffle: bool,
    pub seed: u64,
    pub drop_last: bool,
    /// Training transforms (random crops, flips, random frames) for corpora decoded from files.
    pub augment: bool,
    /// Decoding threads for corpora on disk; 0 decodes on the calling thread.
    pub workers: usize,
    /// Training epochs lay image inputs and convolution kernels out channels-last
    /// (`train::memory_format`); batches themselves are made as always.
    pub channels_last: bool,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions { batch_size: 64, shuffle: true, seed: 0, drop_last: false, augment: false, workers: 2, channels_last: false }
    }
}

/// Samples that failed to decode and were skipped (skip_corrupt), for the closing warning.
#[derive(Default)]
struct Skipped {
    count: usize,
    first: Option<String>,
}

/// What a lazily decoded batch needs, shareable with worker threads.
#[derive(Clone)]
struct Decoder {
    source: Arc<dyn SampleSource>,
    names: Arc<Vec<String>>,
    labels: Arc<Vec<i64>>,
    augment: bool,
    seed: u64,
    skipped: Arc<Mutex<Skipped>>,
}

impl Decoder {
    /// The batch of `rows`; None when every sample was skipped.
    fn batch(&self, rows: &[i64]) -> Result<Option<Batch>> {
        let mut kept = Vec::with_capacity(rows.len());
        let mut per_modality: Vec<Vec<Tensor>> = (0..self.names.len()).map(|_| Vec::with_capacity(rows.len())).collect();
        for &row in rows {
            let mut rng = Rng::stream(self.seed, row as u64);
            match self.source.decode(row as usize, self.augment, &mut rng) {
                Ok(sample) => {
                    for (slot, t) in per_modality.iter_mut().zip(sample) {
                        slot.push(t);
                    }
                    kept.push(row);
                }
                Err(e) if self.source.skip_corrupt() => {
                    let mut s = self.skipped.lock().unwrap_or_else(|p| p.into_inner());
                    s.count += 1;
                    s.first.get_or_insert_with(|| e.to_string());
                }
                Err(e) => return Err(e),
            }
        }
        if kept.is_empty() {
            return Ok(None);
        }
        let inputs = self
            .names
            .iter()
            .zip(per_modality)
            .map(|(name, parts)| Ok((name.clone(), check("batch", Tensor::f_stack(&parts, 0))?)))
            .collect::<Result<Vec<_>>>()?;
        let labels: Vec<i64> = kept.iter().map(|&r| self.labels[r as usize]).collect();
        Ok(Some(Batch { inputs, labels: Tensor::from_slice(&labels), indices: Tensor::from_slice(&kept), keep: None }))
    }
}

enum Producer {
    Memory,
    Inline(Decoder),
    /// Started on the first `next`, so `count` costs no threads.
    Workers {
        decoder: Decoder,
        workers: usize,
        channels: Vec<Receiver<Result<Option<Batch>>>>,
    },
}

/// An iterator of batches; the order is a seeded shuffle (or the split's order).
pub struct Batches {
    split: Split,
    plan: Vec<Vec<i64>>,
    next: usize,
    producer: Producer,
    skipped: Arc<Mutex<Skipped>>,
}

impl Batches {
    pub fn new(split: &Split, opts: &BatchOptions) -> Result<Batches> {
        if opts.batch_size == 0 {
            return Err(Error::arg("batches: batch size must be at least 1"));
        }
        let mut order: Vec<i64> = split.indices.to_vec();
        if opts.shuffle {
            Rng::new(opts.seed).shuffle(&mut order);
        }
        let mut plan: Vec<Vec<i64>> = order.chunks(opts.batch_size).map(<[i64]>::to_vec).collect();
        if opts.drop_last && plan.last().is_some_and(|b| b.len() < opts.batch_size) {
            plan.pop();
        }
        let skipped = Arc::new(Mutex::new(Skipped::default()));
        let ds = &split.dataset;
        let producer = match &ds.source {
            None => Producer::Memory,
            Some(source) => {
                let labels = check("batches", Vec::<i64>::try_from(&ds.labels))?;
                let decoder = Decoder {
                    source: source.clone(),
                    names: Arc::new(ds.modalities.iter().map(|m| m.name.clone()).collect()),
                    labels: Arc::new(labels),
                    augment: opts.augment,
                    seed: opts.seed,
                    skipped: skipped.clone(),
                };
                if opts.workers == 0 {
                    Producer::Inline(decoder)
                } else {
                    Producer::Workers { decoder, workers: opts.workers, channels: Vec::new() }
                }
            }
        };
        Ok(Batches { split: split.clone(), plan, next: 0, producer, skipped })
    }

    /// How many batches a full pass yields (fewer when skip_corrupt empties a whole batch).
    pub fn batch_count(&self) -> usize {
        self.plan.len()
    }

    fn gather(&self, rows: &[i64]) -> Result<Batch> {
        let idx = Tensor::from_slice(rows);
        let ds = &self.split.dataset;
        let inputs = ds
            .modalities
            .iter()
            .map(|m| Ok((m.name.clone(), check("batch", m.data()?.f_index_select(0, &idx))?)))
            .collect::<Result<Vec<_>>>()?;
        let labels = check("batch", ds.labels.f_index_select(0, &idx))?;
        Ok(Batch { inputs, labels, indices: idx, keep: None })
    }

    fn start_workers(&mut self) {
        let Producer::Workers { decoder, workers, channels } = &mut self.producer else { return };
        if !channels.is_empty() {
            return;
        }
        let plan = Arc::new(self.plan.clone());
        let n = *workers;
        for w in 0..n {
            // Two batches in flight per worker: enough to hide decoding jitter, bounded memory.
            let (tx, rx) = sync_channel(2);
            let (decoder, plan) = (decoder.clone(), plan.clone());
            std::thread::spawn(move || {
                for rows in plan.iter().skip(w).step_by(n) {
                    let out = decoder.batch(rows);
                    let failed = out.is_err();
                    // A closed channel means the consumer stopped early: nothing left to do.
                    if tx.send(out).is_err() || failed {
                        return;
                    }
                }
            });
            channels.push(rx);
        }
    }

    /// The warning for skipped samples, printed once the pass is complete.
    fn warn_skipped(&self) {
        let s = self.skipped.lock().unwrap_or_else(|p| p.into_inner());
        if s.count > 0 {
            eprintln!(
                "warning: {}: skipped {} sample(s) of split {} that failed to decode (skip_corrupt); first: {}",
                self.split.dataset.name,
                s.count,
                self.split.name,
                s.first.as_deref().unwrap_or("?")
            );
        }
    }
}

impl Iterator for Batches {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Self::Item> {
        self.start_workers();
        loop {
            let b = self.next;
            if b >= self.plan.len() {
                if b == self.plan.len() {
                    self.next += 1;
                    self.warn_skipped();
                }
                return None;
            }
            self.next += 1;
            let out = match &self.producer {
                Producer::Memory => return Some(self.gather(&self.plan[b])),
                Producer::Inline(decoder) => decoder.batch(&self.plan[b]),
                Producer::Workers { channels, .. } => {
                    let ch = &channels[b % channels.len()];
                    ch.recv().unwrap_or_else(|_| Err(Error::arg("batches: a decoding thread stopped unexpectedly")))
                }
            };
            match out {
                Ok(Some(batch)) => return Some(Ok(batch)),
                Ok(None) => continue, // every sample of this batch was skipped
                Err(e) => {
                    self.next = self.plan.len() + 1; // an error ends the pass
                    return Some(Err(e));
                }
            }
        }
    }
}
