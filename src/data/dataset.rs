//! A dataset: int64 labels, class names, named splits as index lists into the rows, and per
//! modality either a tensor in memory (rows = samples) or, for corpora too large for memory, a
//! `SampleSource` that decodes one sample at a time (on worker threads, see `batches`).

use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::tensor::{check, Kind, Tensor};
use std::rc::Rc;
use std::sync::Arc;

/// One modality: its name, its per-sample shape, and its rows when held in memory.
pub struct Modality {
    pub name: String,
    /// The shape of one sample, e.g. [1, 257, 188].
    pub shape: Vec<i64>,
    data: Option<Tensor>,
}

impl Modality {
    /// A modality held in memory, [N, ...].
    pub fn memory(name: impl Into<String>, data: Tensor) -> Modality {
        Modality { name: name.into(), shape: data.size()[1..].to_vec(), data: Some(data) }
    }

    /// A modality decoded per sample by the dataset's `SampleSource`.
    pub fn lazy(name: impl Into<String>, shape: Vec<i64>) -> Modality {
        Modality { name: name.into(), shape, data: None }
    }

    /// The rows in memory (an error for a lazily decoded corpus).
    pub fn data(&self) -> Result<&Tensor> {
        self.data.as_ref().ok_or_else(|| {
            Error::arg(format!(
                "modality \"{}\" is decoded from files per sample and is not held in memory; iterate split.batches(...) instead",
                self.name
            ))
        })
    }
}

/// Decodes samples of a corpus that stays on disk. Shared with worker threads, so it holds
/// paths and settings, never tensors.
pub trait SampleSource: Send + Sync {
    /// Row `row`'s inputs, one tensor per modality in the dataset's order, without a batch
    /// dimension. `augment` selects the training transforms; `rng` is the sample's own stream.
    fn decode(&self, row: usize, augment: bool, rng: &mut Rng) -> Result<Vec<Tensor>>;

    /// Whether samples that fail to decode are skipped (and counted) rather than errors.
    fn skip_corrupt(&self) -> bool;
}

pub struct Dataset {
    pub name: String,
    pub modalities: Vec<Modality>,
    /// [N] int64 in [0, classes).
    pub labels: Tensor,
    pub class_names: Vec<String>,
    /// Optional per-row identifiers (file names, clip ids).
    pub ids: Option<Vec<String>>,
    /// (split name, row indices), in a fixed order: train, val, test, then others.
    pub splits: Vec<(String, Vec<i64>)>,
    /// Per-row facts that are not inputs (e.g. the synthetic set's `degraded` mask), [N, ...].
    pub meta: Vec<(String, Tensor)>,
    /// Where lazily decoded modalities come from (None when everything is in memory).
    pub source: Option<Arc<dyn SampleSource>>,
}

impl Dataset {
    /// Checks that every modality has as many rows as there are labels, and that labels lie in
    /// [0, classes).
    pub fn validate(&self) -> Result<()> {
        let n = self.len();
        if self.modalities.is_empty() {
            return Err(Error::arg(format!("dataset {}: no modalities", self.name)));
        }
        for m in &self.modalities {
            let Some(data) = &m.data else {
                if self.source.is_none() {
                    return Err(Error::arg(format!("dataset {}: modality \"{}\" has neither data nor a source", self.name, m.name)));
                }
                continue;
            };
            let rows = data.size().first().copied().unwrap_or(0);
            if rows != n as i64 {
                return Err(Error::arg(format!(
                    "dataset {}: modality \"{}\" has {rows} rows but there are {n} labels; every modality needs one row per label",
                    self.name, m.name
                )));
            }
        }
        if n > 0 {
            let lo = check("dataset", self.labels.f_min().and_then(|t| t.f_int64_value(&[])))?;
            let hi = check("dataset", self.labels.f_max().and_then(|t| t.f_int64_value(&[])))?;
            if lo < 0 || hi >= self.classes() as i64 {
                let bad = if lo < 0 { lo } else { hi };
                return Err(Error::arg(format!("dataset {}: label {bad} is outside [0, {})", self.name, self.classes())));
            }
        }
        for (name, idx) in &self.splits {
            if let Some(bad) = idx.iter().find(|&&i| i < 0 || i >= n as i64) {
                return Err(Error::arg(format!("dataset {}: split {name} names row {bad}, but there are {n} rows", self.name)));
            }
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.labels.size().first().copied().unwrap_or(0) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn classes(&self) -> usize {
        self.class_names.len()
    }

    pub fn modality(&self, name: &str) -> Result<&Modality> {
        self.modalities.iter().find(|m| m.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.modalities.iter().map(|m| m.name.as_str()).collect();
            Error::arg(format!("dataset {}: no modality \"{name}\"; it has: {}", self.name, names.join(", ")))
        })
    }

    /// The split called `name` (an error listing the splits that exist otherwise).
    pub fn split(self: &Rc<Self>, name: &str) -> Result<Split> {
        match self.splits.iter().find(|(n, _)| n == name) {
            Some((n, idx)) => Ok(Split { dataset: self.clone(), name: n.clone(), indices: Rc::new(idx.clone()) }),
            None => {
                let names: Vec<&str> = self.splits.iter().map(|(n, _)| n.as_str()).collect();
                Err(Error::arg(format!("dataset {}: no split \"{name}\"; it has: {}", self.name, names.join(", "))))
            }
        }
    }
}

/// A split (or a subset of one): rows of a shared dataset, by index.
#[derive(Clone)]
pub struct Split {
    pub dataset: Rc<Dataset>,
    pub name: String,
    /// Row indices into the dataset; a sample's index is its identity for per-sample weights.
    pub indices: Rc<Vec<i64>>,
}

impl Split {
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// The rows at positions `positions` of this split (positions, not dataset indices).
    pub fn subset_positions(&self, positions: &[i64]) -> Result<Split> {
        let n = self.len() as i64;
        let picked = positions
            .iter()
            .map(|&p| {
                let q = if p < 0 { p + n } else { p };
                if (0..n).contains(&q) {
                    Ok(self.indices[q as usize])
                } else {
                    Err(Error::arg(format!("subset: position {p} is out of range for split {} of {n} samples", self.name)))
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Split { dataset: self.dataset.clone(), name: format!("{}[subset]", self.name), indices: Rc::new(picked) })
    }

    /// The rows whose mask entry is true; the mask has one entry per sample of this split.
    pub fn subset_mask(&self, mask: &[bool]) -> Result<Split> {
        if mask.len() != self.len() {
            return Err(Error::arg(format!(
                "subset: the mask has {} entries but split {} has {} samples",
                mask.len(),
                self.name,
                self.len()
            )));
        }
        let picked = self.indices.iter().zip(mask).filter(|(_, &keep)| keep).map(|(&i, _)| i).collect();
        Ok(Split { dataset: self.dataset.clone(), name: format!("{}[subset]", self.name), indices: Rc::new(picked) })
    }

    /// The labels of this split's rows, [len] int64.
    pub fn labels(&self) -> Result<Tensor> {
        let idx = Tensor::from_slice(&self.indices[..]);
        check("labels", self.dataset.labels.f_index_select(0, &idx))
    }

    /// One modality's rows for this split, [len, ...].
    pub fn modality_data(&self, name: &str) -> Result<Tensor> {
        let m = self.dataset.modality(name)?;
        let idx = Tensor::from_slice(&self.indices[..]);
        check("modality", m.data()?.f_index_select(0, &idx))
    }

    /// Per-class sample counts.
    pub fn class_counts(&self) -> Result<Vec<i64>> {
        let labels = self.labels()?;
        let counts = check("class_counts", labels.f_bincount(None::<Tensor>, self.dataset.classes() as i64))?;
        check("class_counts", counts.f_to_kind(Kind::Int64).and_then(|c| Vec::<i64>::try_from(&c)))
    }
}
