//! Parameter anchors (M10 of ../shared/baselines-3.md): detached copies of chosen parameters
//! taken at one moment (InfoReg takes its encoders' at every epoch start), and the proximal pull
//! towards them, g ← g + β·(θ − θ̄), the gradient of (β/2)·‖θ − θ̄‖² with β held constant. The
//! copies stay on the parameters' device (the pull reads them every step) and are saved with
//! checkpoints under a prefix.

use crate::error::{Error, Result};
use crate::tensor::Tensor;

#[derive(Default)]
pub struct Anchors {
    /// (parameter name, detached copy), sorted by name.
    copies: Vec<(String, Tensor)>,
}

impl Anchors {
    /// Copies of the parameters `keep` accepts, as they are now.
    pub fn take(params: &[(String, Tensor)], keep: impl Fn(&str) -> bool) -> Result<Anchors> {
        let mut copies = Vec::new();
        for (name, t) in params.iter().filter(|(n, _)| keep(n)) {
            copies.push((name.clone(), t.f_detach_copy()?));
        }
        copies.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Anchors { copies })
    }

    pub fn is_empty(&self) -> bool {
        self.copies.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.copies.binary_search_by(|(n, _)| n.as_str().cmp(name)).ok().map(|i| &self.copies[i].1)
    }

    /// `grad` + β·(θ − θ̄) for the parameter `name` (an undefined gradient counts as zeros).
    pub fn pull(&self, name: &str, param: &Tensor, grad: &Tensor, beta: f64) -> Result<Tensor> {
        let anchor = self.get(name).ok_or_else(|| Error::arg(format!("anchors: no copy of {name} was taken")))?;
        let pull = param.f_detach().and_then(|p| p.f_sub(anchor)).and_then(|d| d.f_mul_scalar(beta))?;
        if grad.defined() {
            grad.f_add(&pull).map_err(Error::from)
        } else {
            Ok(pull)
        }
    }

    /// The copies as checkpoint entries `<prefix><name>`.
    pub fn state(&self, prefix: &str) -> Vec<(String, Tensor)> {
        self.copies.iter().map(|(n, t)| (format!("{prefix}{n}"), t.shallow_clone())).collect()
    }

    /// The entries of a checkpoint written by `state` with this prefix, moved to `device`.
    pub fn from_state(state: &[(String, Tensor)], prefix: &str, device: tch::Device) -> Result<Anchors> {
        let mut copies = Vec::new();
        for (n, t) in state {
            if let Some(name) = n.strip_prefix(prefix) {
                copies.push((name.to_string(), t.f_to_device(device)?));
            }
        }
        copies.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Anchors { copies })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pull_adds_beta_times_the_distance_to_the_anchor() {
        // θ = (1, −2), θ̄ = (0.5, −1), g = (0.1, 0.2), β = 2 give (1.1, −1.8) (baselines-3.md §1).
        let start = Tensor::from_slice(&[0.5f64, -1.0]);
        let a = Anchors::take(&[("w".into(), start.shallow_clone())], |_| true).unwrap();
        let theta = Tensor::from_slice(&[1.0f64, -2.0]);
        let g = a.pull("w", &theta, &Tensor::from_slice(&[0.1f64, 0.2]), 2.0).unwrap();
        let g = Vec::<f64>::try_from(&g).unwrap();
        assert!((g[0] - 1.1).abs() < 1e-12 && (g[1] + 1.8).abs() < 1e-12, "{g:?}");
        // The copy is the value when taken, not a view of the live tensor.
        let mut live = start;
        let _ = live.f_add_(&Tensor::from_slice(&[1.0f64, 1.0])).unwrap();
        assert_eq!(Vec::<f64>::try_from(a.get("w").unwrap()).unwrap(), vec![0.5, -1.0]);
        assert!(a.pull("other", &theta, &Tensor::new(), 1.0).is_err());
    }

    #[test]
    fn anchors_come_back_from_their_checkpoint_entries() {
        let a = Anchors::take(&[("b".into(), Tensor::from_slice(&[2.0f32])), ("a".into(), Tensor::from_slice(&[1.0f32]))], |n| n != "c")
            .unwrap();
        let mut saved = a.state("anchor.");
        saved.push(("other".into(), Tensor::from_slice(&[9.0f32])));
        let back = Anchors::from_state(&saved, "anchor.", tch::Device::Cpu).unwrap();
        assert_eq!(back.get("b").unwrap().double_value(&[0]), 2.0);
        assert!(back.get("other").is_none());
    }
}
