//! The adaptive loss's per-sample weights (w0, w1): stored by the last mixture refit, or
//! computed from each batch's live gaps. They are what a method's constructor may need beyond
//! plain option values (`declaration::BuildInputs`).

use crate::data::Split;
use crate::error::{Error, Result};
use crate::gap::GapKind;
use crate::mixture::Mixture;
use crate::tensor::{Kind, Tensor};
use crate::train::fusion::Logits;
use std::rc::Rc;

/// What `weights` may be, for the errors that ask for it.
pub const WEIGHTS_ACCEPTED: &str = "a weight table from the last refit, weight_table(data.train, mix.balance_weights(z)), or the fitted mixture itself (mix, fitted with raw: zs) for weights from each batch's live gaps";

/// Where the adaptive loss's (w0, w1) come from.
#[derive(Clone)]
pub enum Weights {
    /// The posteriors of the last refit, looked up by dataset index (the paper's protocol).
    Stored(WeightTable),
    /// The posteriors of each batch's own current gaps under the last fitted mixture (z-scored
    /// with the mixture's raw units), so the weights follow the model between refits.
    Live(Rc<Mixture>),
}

impl Weights {
    /// The batch's [n, 2] weights on the logits' device (the table and the mixture are host-side:
    /// the table is indexed by the batch's CPU indices, the mixture's posteriors computed in f64).
    pub fn for_batch(&self, logits: &Logits, labels: &Tensor, indices: &Tensor, kind: GapKind) -> Result<Tensor> {
        self.on_host(logits, labels, indices, kind)?.f_to_device(logits.fused.device()).map_err(Error::from)
    }

    fn on_host(&self, logits: &Logits, labels: &Tensor, indices: &Tensor, kind: GapKind) -> Result<Tensor> {
        match self {
            Weights::Stored(table) => table.lookup(indices),
            Weights::Live(mix) => {
                let g = (crate::gap::gap_against_rest(&logits.per, labels, kind)?
                    .f_detach()
                    .and_then(|g| g.f_to_kind(Kind::Double))
                    .and_then(|g| g.f_to_device(tch::Device::Cpu)))?;
                let g = (Vec::<f64>::try_from(&g))?;
                let z: Vec<f64> = g.iter().map(|x| (x - mix.raw.mean) / mix.raw.std).collect();
                let w = mix.balance_weights(&z);
                Tensor::from_slice(&w).f_reshape([z.len() as i64, 2]).map_err(Error::from)
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
        let dense = Tensor::f_ones([rows, 2], (Kind::Float, tch::Device::Cpu))?;
        let idx = Tensor::from_slice(&split.indices[..]);
        let w = weights.f_to_kind(Kind::Float).and_then(|w| w.f_to_device(tch::Device::Cpu))?;
        let dense = dense.f_index_put(&[Some(idx)], &w, false)?;
        Ok(WeightTable { dense })
    }

    pub fn lookup(&self, indices: &Tensor) -> Result<Tensor> {
        indices.f_to_device(tch::Device::Cpu).and_then(|i| self.dense.f_index_select(0, &i)).map_err(Error::from)
    }
}
