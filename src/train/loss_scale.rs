//! Mixed precision's backward half for fp16: a dynamic loss scale, as torch.amp.GradScaler
//! keeps one. float16's gradients underflow below 6e-8, so the loss is multiplied by a large
//! factor before the backward and every gradient divided by it afterwards; a step whose
//! gradients overflowed (inf or NaN) is skipped and the factor halved, and after 2000 clean
//! steps in a row it is doubled. GradScaler's defaults throughout (65536, 2, ½, 2000).
//!
//! Gradients are unscaled as soon as the backward returns, before a method's rule reads them:
//! OGM-GE's noise, AGM's and MMPareto's norms see the gradients a float32 run would.
//! The factor and the clean-step count are the optimizer's state, checkpointed with it.

use crate::error::{Error, Result};
use crate::tensor::{Kind, Tensor};
use std::cell::Cell;

const INIT_SCALE: f64 = 65536.0;
const GROWTH_FACTOR: f64 = 2.0;
const BACKOFF_FACTOR: f64 = 0.5;
const GROWTH_INTERVAL: i64 = 2000;

/// The dynamic scale carried across steps.
#[derive(Clone, Debug, PartialEq)]
pub struct LossScaler {
    pub scale: f64,
    /// Clean steps since the scale last changed.
    pub growth_tracker: i64,
}

impl Default for LossScaler {
    fn default() -> LossScaler {
        LossScaler { scale: INIT_SCALE, growth_tracker: 0 }
    }
}

impl LossScaler {
    /// After a step: halve on an overflow, double after `GROWTH_INTERVAL` clean steps
    /// (torch._amp_update_scale_'s rule).
    pub fn update(&mut self, found_inf: bool) {
        if found_inf {
            self.scale *= BACKOFF_FACTOR;
            self.growth_tracker = 0;
        } else {
            self.growth_tracker += 1;
            if self.growth_tracker == GROWTH_INTERVAL {
                self.scale *= GROWTH_FACTOR;
                self.growth_tracker = 0;
            }
        }
    }

    /// The checkpoint's entries: `amp.scale` (f64) and `amp.growth_tracker` (i64).
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        vec![
            ("amp.scale".into(), Tensor::from_slice(&[self.scale])),
            ("amp.growth_tracker".into(), Tensor::from_slice(&[self.growth_tracker])),
        ]
    }

    /// The scaler saved by `state_tensors`, when the state holds one.
    pub fn from_state(find: impl Fn(&str) -> Option<Tensor>) -> Result<Option<LossScaler>> {
        match (find("amp.scale"), find("amp.growth_tracker")) {
            (Some(s), Some(g)) => Ok(Some(LossScaler { scale: s.f_double_value(&[0])?, growth_tracker: g.f_int64_value(&[0])? })),
            (None, None) => Ok(None),
            _ => Err(Error::arg("optimizer state: amp.scale and amp.growth_tracker come together; the checkpoint is damaged".to_string())),
        }
    }

    pub fn is_state_key(key: &str) -> bool {
        key == "amp.scale" || key == "amp.growth_tracker"
    }
}

/// One step's loss scale: every backward a method or the trainer takes through it is of its
/// losses times `factor`, and hands back the gradients divided by it, remembering whether any
/// was not finite. With factor 1 (float32 and bf16) it is a plain backward.
pub struct StepScale {
    factor: f64,
    found_inf: Cell<bool>,
}

impl StepScale {
    pub fn unit() -> StepScale {
        StepScale { factor: 1.0, found_inf: Cell::new(false) }
    }

    pub fn of(factor: f64) -> StepScale {
        StepScale { factor, found_inf: Cell::new(false) }
    }

    pub fn factor(&self) -> f64 {
        self.factor
    }

    /// Whether a gradient taken through this scale overflowed (the step must be skipped).
    pub fn found_inf(&self) -> bool {
        self.found_inf.get()
    }

    /// ∂(Σ losses)/∂inputs, unscaled, as `Tensor::run_backward` (undefined where the losses do
    /// not reach an input).
    pub fn backward(&self, losses: &[&Tensor], inputs: &[&Tensor], keep_graph: bool, create_graph: bool) -> Result<Vec<Tensor>> {
        if self.factor == 1.0 {
            return Tensor::f_run_backward(losses, inputs, keep_graph, create_graph).map_err(Error::from);
        }
        let scaled: Vec<Tensor> = losses.iter().map(|l| l.f_mul_scalar(self.factor)).collect::<std::result::Result<_, _>>()?;
        let refs: Vec<&Tensor> = scaled.iter().collect();
        let mut grads = Tensor::f_run_backward(&refs, inputs, keep_graph, create_graph)?;
        let Some(device) = grads.iter().find(|g| g.defined()).map(|g| g.device()) else {
            return Ok(grads);
        };
        // libtorch's own kernel (GradScaler's): in place, one flag for all, a single read back.
        let mut found = Tensor::zeros([1], (Kind::Float, device));
        let inv = Tensor::from_slice(&[(1.0 / self.factor) as f32]).f_to_device(device)?;
        for g in grads.iter_mut().filter(|g| g.defined()) {
            g.f_internal_amp_non_finite_check_and_unscale(&mut found, &inv)?;
        }
        if found.f_double_value(&[0])? > 0.0 {
            self.found_inf.set(true);
        }
        Ok(grads)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scale_halves_on_an_overflow_and_doubles_after_the_interval() {
        let mut s = LossScaler::default();
        s.update(false);
        s.update(true);
        assert_eq!(s, LossScaler { scale: INIT_SCALE / 2.0, growth_tracker: 0 });
        for _ in 0..GROWTH_INTERVAL - 1 {
            s.update(false);
        }
        assert_eq!(s.scale, INIT_SCALE / 2.0);
        s.update(false);
        assert_eq!(s, LossScaler { scale: INIT_SCALE, growth_tracker: 0 });
    }

    #[test]
    fn gradients_come_back_unscaled_and_an_overflow_is_flagged() {
        let w = Tensor::from_slice(&[1.0f32, 2.0]).set_requires_grad(true);
        let loss = (&w * &w).sum(Kind::Float);
        let scale = StepScale::of(1024.0);
        let g = scale.backward(&[&loss], &[&w], false, false).unwrap();
        assert_eq!(Vec::<f32>::try_from(&g[0]).unwrap(), vec![2.0, 4.0]);
        assert!(!scale.found_inf());
        // A loss whose gradient is infinite once scaled is flagged, not returned as finite.
        let loss = (&w * 1e36f64).sum(Kind::Float);
        let scale = StepScale::of(65536.0);
        scale.backward(&[&loss], &[&w], false, false).unwrap();
        assert!(scale.found_inf());
    }

    #[test]
    fn state_round_trips_and_half_a_state_is_refused() {
        let s = LossScaler { scale: 512.0, growth_tracker: 17 };
        let st = s.state_tensors();
        let find = |k: &str| st.iter().find(|(n, _)| n == k).map(|(_, t)| t.shallow_clone());
        assert_eq!(LossScaler::from_state(find).unwrap(), Some(s));
        let half = |k: &str| st.iter().find(|(n, _)| n == k && k == "amp.scale").map(|(_, t)| t.shallow_clone());
        assert!(LossScaler::from_state(half).is_err());
    }
}
