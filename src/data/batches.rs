//! Seeded batching over a split: each batch carries every modality's rows, the labels, and the
//! dataset indices of its samples (the adaptive loss looks up per-sample weights by index).

use super::dataset::Split;
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::tensor::{check, Tensor};

pub struct Batch {
    /// (modality name, [B, ...]) in the dataset's modality order.
    pub inputs: Vec<(String, Tensor)>,
    /// [B] int64.
    pub labels: Tensor,
    /// [B] int64 dataset row indices.
    pub indices: Tensor,
}

/// An iterator of batches; the order is a seeded shuffle (or the split's order).
pub struct Batches {
    split: Split,
    order: Vec<i64>,
    batch_size: usize,
    drop_last: bool,
    next: usize,
}

impl Batches {
    pub fn new(split: &Split, batch_size: usize, shuffle: bool, seed: u64, drop_last: bool) -> Result<Batches> {
        if batch_size == 0 {
            return Err(Error::arg("batches: batch size must be at least 1"));
        }
        let mut order: Vec<i64> = split.indices.to_vec();
        if shuffle {
            Rng::new(seed).shuffle(&mut order);
        }
        Ok(Batches { split: split.clone(), order, batch_size, drop_last, next: 0 })
    }

    /// How many batches a full pass yields.
    pub fn count(&self) -> usize {
        let n = self.order.len();
        if self.drop_last { n / self.batch_size } else { n.div_ceil(self.batch_size) }
    }

    fn make(&self, rows: &[i64]) -> Result<Batch> {
        let idx = Tensor::from_slice(rows);
        let ds = &self.split.dataset;
        let inputs = ds
            .modalities
            .iter()
            .map(|m| Ok((m.name.clone(), check("batch", m.data.f_index_select(0, &idx))?)))
            .collect::<Result<Vec<_>>>()?;
        let labels = check("batch", ds.labels.f_index_select(0, &idx))?;
        Ok(Batch { inputs, labels, indices: idx })
    }
}

impl Iterator for Batches {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Self::Item> {
        let n = self.order.len();
        let start = self.next;
        if start >= n {
            return None;
        }
        let end = (start + self.batch_size).min(n);
        if self.drop_last && end - start < self.batch_size {
            return None;
        }
        self.next = end;
        Some(self.make(&self.order[start..end]))
    }
}
