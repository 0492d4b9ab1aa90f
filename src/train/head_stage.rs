//! A head stage on frozen encoders (M15 of ../shared/baselines-3.md): after a unimodal stage, a
//! fresh fusion head is trained on encoders held in evaluation mode without gradient, from
//! features recomputed each step or cached once, and the prediction is a per-sample
//! confidence-weighted sum of several heads' logits (DI-MML's CALW).

use super::model::Model;
use crate::error::{Error, Result};
use crate::tensor::{Kind, Tensor};

/// CALW's weights [B, K]: per sample, softmax([max softmax(l_1), ..., max softmax(l_K)] / τ).
pub fn confidence_weights(logits: &[Tensor], tau: f64) -> Result<Tensor> {
    let conf = logits
        .iter()
        .map(|l| l.f_softmax(-1, Kind::Float)?.f_amax([-1i64].as_slice(), true).map_err(Error::from))
        .collect::<Result<Vec<_>>>()?;
    Tensor::f_cat(&conf, 1)?.f_div_scalar(tau)?.f_softmax(1, Kind::Float).map_err(Error::from)
}

/// CALW: Σ_k w_k·l_k with `confidence_weights`.
pub fn confidence_weighted(logits: &[Tensor], tau: f64) -> Result<Tensor> {
    let w = confidence_weights(logits, tau)?;
    let mut out = logits[0].f_mul(&w.f_narrow(1, 0, 1)?)?;
    for (k, l) in logits.iter().enumerate().skip(1) {
        out = out.f_add(&l.f_mul(&w.f_narrow(1, k as i64, 1)?)?)?;
    }
    Ok(out)
}

/// Re-initialises the fused head (`fusion.fc_out`) as a fresh one, Xavier-normal weight and zero
/// bias from `seed` (as the model's linear layers), leaving every other tensor as it is.
pub fn fresh_fused_head(model: &Model, seed: u64) -> Result<()> {
    let vars = model.vs.variables();
    let mut w = vars.get("fusion.fc_out.weight").ok_or_else(|| Error::arg("the model's head has no fusion.fc_out"))?.shallow_clone();
    let (dout, din) = (w.size()[0], w.size()[1]);
    let std = (2.0 / (din + dout) as f64).sqrt();
    let fresh = crate::rng::with_torch_seed(seed, || Tensor::randn([dout, din], (Kind::Float, w.device())) * std);
    tch::no_grad(|| -> Result<()> {
        w.f_copy_(&fresh.f_to_kind(w.kind())?)?;
        if let Some(b) = vars.get("fusion.fc_out.bias") {
            let _ = b.shallow_clone().f_zero_()?;
        }
        Ok(())
    })
}

/// The encoders' features on a batch in evaluation mode, without gradient.
pub fn frozen_features(model: &Model, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
    let _guard = tch::no_grad_guard();
    model.encode_all(inputs, false)
}

/// Features of a whole split computed once (evaluation mode), looked up by dataset row index.
pub struct FeatureCache {
    per: Vec<Tensor>,
    /// Dataset row index → row of `per` (−1 where absent).
    position: Tensor,
}

impl FeatureCache {
    pub fn new(features: crate::train::inference::Features, device: tch::Device) -> Result<FeatureCache> {
        let idx = Vec::<i64>::try_from(&features.indices)?;
        let top = idx.iter().copied().max().unwrap_or(0).max(0) as usize;
        let mut pos = vec![-1i64; top + 1];
        for (row, &i) in idx.iter().enumerate() {
            pos[i as usize] = row as i64;
        }
        Ok(FeatureCache {
            per: features.per.iter().map(|t| t.f_to_device(device)).collect::<std::result::Result<_, _>>()?,
            position: Tensor::from_slice(&pos).f_to_device(device)?,
        })
    }

    /// The cached features of the rows `indices` [B], per modality.
    pub fn rows(&self, indices: &Tensor) -> Result<Vec<Tensor>> {
        let rows = self.position.f_index_select(0, &indices.f_to_device(self.position.device())?)?;
        if Vec::<i64>::try_from(&rows)?.iter().any(|&r| r < 0) {
            return Err(Error::arg("cached features: a batch holds rows the cache was not built from"));
        }
        self.per.iter().map(|t| t.f_index_select(0, &rows).map_err(Error::from)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confidence_weights_of_the_spec() {
        // Max-probabilities (0.9, 0.6, 0.7): w = (0.39069, 0.28943, 0.31987) at τ 1 and
        // (0.35207, 0.31857, 0.32936) at τ 3. Two-class logits whose max softmax is p: (ln p/(1-p), 0).
        let head = |p: f64| Tensor::from_slice(&[(p / (1.0 - p)).ln() as f32, 0.0]).reshape([1, 2]);
        let heads = [head(0.9), head(0.6), head(0.7)];
        for (tau, want) in [(1.0, [0.39069, 0.28943, 0.31987]), (3.0, [0.35207, 0.31857, 0.32936])] {
            let w = confidence_weights(&heads, tau).unwrap();
            for (k, want_k) in want.iter().enumerate() {
                assert!((w.double_value(&[0, k as i64]) - want_k).abs() < 1e-5, "τ {tau}: {w:?}");
            }
            let out = confidence_weighted(&heads, tau).unwrap();
            let expected: f64 = heads.iter().zip(want).map(|(h, w)| h.double_value(&[0, 0]) * w).sum();
            assert!((out.double_value(&[0, 0]) - expected).abs() < 1e-4, "τ {tau}");
            assert_eq!(out.double_value(&[0, 1]), 0.0);
        }
    }
}
