//! Epoch gradient statistics kept across epochs (M11 of ../shared/baselines-3.md): per group of
//! tensors (one per modality), the "Fisher trace" InfoReg's code computes, the sum over an
//! epoch's steps of Σ_tensors mean(g²) over each tensor's elements (so a small tensor weighs as
//! much as a large one), closed into a history at each epoch's end. Undefined gradients add 0.

use crate::error::{Error, Result};
use crate::tensor::{Kind, Tensor};

#[derive(Clone, Debug, PartialEq)]
pub struct EpochTraces {
    /// This epoch's running sums, one per group.
    pub current: Vec<f64>,
    /// Each group's closed epochs: `history[g][e]` is group g's trace of epoch e.
    pub history: Vec<Vec<f64>>,
}

impl EpochTraces {
    pub fn new(groups: usize) -> EpochTraces {
        EpochTraces { current: vec![0.0; groups], history: vec![Vec::new(); groups] }
    }

    /// Adds one step's gradients of group `g`.
    pub fn add(&mut self, g: usize, grads: &[&Tensor]) -> Result<()> {
        for grad in grads.iter().filter(|t| t.defined() && t.numel() > 0) {
            let mean = grad.f_square().and_then(|s| s.f_mean(Kind::Double)).and_then(|m| m.f_double_value(&[]))?;
            self.current[g] += mean;
        }
        Ok(())
    }

    /// Ends the epoch: each group's sum joins its history and starts again from 0.
    pub fn close_epoch(&mut self) {
        for (h, c) in self.history.iter_mut().zip(self.current.iter_mut()) {
            h.push(*c);
            *c = 0.0;
        }
    }

    /// Checkpoint entries: `<prefix>current` [groups] and `<prefix>history` [groups, epochs].
    pub fn state(&self, prefix: &str) -> Vec<(String, Tensor)> {
        let epochs = self.history.first().map_or(0, Vec::len) as i64;
        let flat: Vec<f64> = self.history.iter().flatten().copied().collect();
        vec![
            (format!("{prefix}current"), Tensor::from_slice(&self.current)),
            (format!("{prefix}history"), Tensor::from_slice(&flat).reshape([self.current.len() as i64, epochs])),
        ]
    }

    /// Reads what `state` wrote for `groups` groups.
    pub fn from_state(state: &[(String, Tensor)], prefix: &str, groups: usize) -> Result<EpochTraces> {
        let find = |name: &str| {
            state
                .iter()
                .find(|(n, _)| n == &format!("{prefix}{name}"))
                .map(|(_, t)| t)
                .ok_or_else(|| Error::arg(format!("the saved state has no \"{prefix}{name}\"")))
        };
        let read = |t: &Tensor| {
            t.f_to_kind(Kind::Double).and_then(|t| t.f_flatten(0, -1)).and_then(|t| Vec::<f64>::try_from(&t)).map_err(Error::from)
        };
        let current = read(find("current")?)?;
        let flat = read(find("history")?)?;
        if current.len() != groups || flat.len() % groups.max(1) != 0 {
            return Err(Error::arg(format!(
                "the saved traces are for {} groups ({} history values), expected {groups}",
                current.len(),
                flat.len()
            )));
        }
        let epochs = flat.len() / groups.max(1);
        let history = (0..groups).map(|g| flat[g * epochs..(g + 1) * epochs].to_vec()).collect();
        Ok(EpochTraces { current, history })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trace_sums_each_tensors_mean_square_over_the_epochs_steps() {
        // One tensor with step gradients (1, 2) and (3, 0), and a one-element tensor with 0.5
        // twice: T = mean(10, 4) + 0.5 = 7.5 (baselines-3.md §1).
        let mut t = EpochTraces::new(2);
        let one = Tensor::from_slice(&[0.5f32]);
        t.add(0, &[&Tensor::from_slice(&[1.0f32, 2.0]), &one, &Tensor::new()]).unwrap();
        t.add(0, &[&Tensor::from_slice(&[3.0f32, 0.0]), &one]).unwrap();
        assert!((t.current[0] - 7.5).abs() < 1e-12, "{}", t.current[0]);
        t.close_epoch();
        assert_eq!(t.history, vec![vec![7.5], vec![0.0]]);
        assert_eq!(t.current, vec![0.0, 0.0]);
        let back = EpochTraces::from_state(&t.state("trace."), "trace.", 2).unwrap();
        assert_eq!(back, t);
        assert!(EpochTraces::from_state(&t.state("trace."), "trace.", 3).is_err());
    }
}
