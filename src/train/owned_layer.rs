//! A linear layer a method owns and trains by the run's rule (M12 of ../shared/baselines-3.md,
//! the "run optimizer" form): the reference puts it in the model, so one optimizer steps it with
//! the rest; here it lives beside the model, in the method, and its own optimizer of the run's
//! kind and weight decay takes the run's current learning rate at every step, which is the same
//! update. AMCo's C×C output layer (used at evaluation too, through `Method::predict`) is one.
//! Saved with the method's state (its tensors and its optimizer's), so a resumed run continues it.

use super::layers::Linear;
use super::loss_scale::StepScale;
use super::optim::{Optimizer, Schedule};
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use tch::{nn, Device};

pub struct OwnedLinear {
    /// Holds the layer's variables (the layer's tensors are views of them).
    _vs: nn::VarStore,
    layer: Linear,
    opt: Optimizer,
}

impl OwnedLinear {
    /// din → dout, Xavier-normal from `seed` (the model's linear layers' init), on `device`, with
    /// an optimizer like `run`'s (kind and weight decay; the rate is set per update).
    pub fn new(din: i64, dout: i64, device: Device, run: &Optimizer, seed: u64) -> Result<OwnedLinear> {
        let (vs, layer) = crate::rng::with_torch_seed(seed, || {
            let vs = nn::VarStore::new(device);
            let layer = Linear::new(&(vs.root() / "owned"), din, dout);
            (vs, layer)
        });
        let params = vec![("bias".to_string(), layer.bias.shallow_clone()), ("weight".to_string(), layer.weight.shallow_clone())];
        let opt = Optimizer::new(run.kind.clone(), run.lr, run.weight_decay, Schedule::None, "owned".into(), params)?;
        Ok(OwnedLinear { _vs: vs, layer, opt })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.layer.forward(x)
    }

    /// Its tensors, in the order `update` takes their gradients: bias, weight.
    pub fn tensors(&self) -> [&Tensor; 2] {
        [&self.layer.bias, &self.layer.weight]
    }

    /// The gradients of `total` for the run's parameters (in `params` order) and for this layer
    /// (bias, weight), from one backward: a method whose loss runs through the layer returns the
    /// first from `Method::backward` and hands the second to `update`. Through the step's loss
    /// scale, so both come back unscaled.
    pub fn gradients_with(&self, total: &Tensor, params: &[(String, Tensor)], scale: &StepScale) -> Result<(Vec<Tensor>, Vec<Tensor>)> {
        let mut inputs: Vec<&Tensor> = params.iter().map(|(_, t)| t).collect();
        inputs.extend(self.tensors());
        let mut grads = scale.backward(&[total], &inputs, false, false)?;
        let own = grads.split_off(params.len());
        Ok((grads, own))
    }

    /// One step of its optimizer at the run's rate `lr` (undefined gradients are skipped).
    pub fn update(&mut self, grads: &[Tensor], lr: f64) -> Result<()> {
        self.opt.lr = lr;
        self.opt.update(grads)
    }

    /// Checkpoint entries: `<prefix>.bias`, `<prefix>.weight`, `<prefix>_opt.<slot>` (copies).
    pub fn state(&self, prefix: &str) -> Vec<(String, Tensor)> {
        let mut out = vec![
            (format!("{prefix}.bias"), self.layer.bias.detach().copy()),
            (format!("{prefix}.weight"), self.layer.weight.detach().copy()),
        ];
        out.extend(self.opt.state_tensors().into_iter().map(|(n, t)| (format!("{prefix}_opt.{n}"), t.detach().copy())));
        out
    }

    /// Restores what `state(prefix)` wrote.
    pub fn load(&mut self, prefix: &str, state: &[(String, Tensor)]) -> Result<()> {
        let _guard = tch::no_grad_guard();
        for (name, t) in [("bias", &mut self.layer.bias), ("weight", &mut self.layer.weight)] {
            let key = format!("{prefix}.{name}");
            let saved = state
                .iter()
                .find(|(n, _)| *n == key)
                .map(|(_, s)| s)
                .ok_or_else(|| Error::arg(format!("the saved state has no \"{key}\"")))?;
            if saved.size() != t.size() {
                return Err(Error::arg(format!("saved \"{key}\" is {:?}, the layer's is {:?}", saved.size(), t.size())));
            }
            t.f_copy_(&saved.f_to_device(t.device())?.f_to_kind(t.kind())?)?;
        }
        let key = format!("{prefix}_opt.");
        let opt: Vec<(String, Tensor)> =
            state.iter().filter_map(|(n, t)| n.strip_prefix(key.as_str()).map(|rest| (rest.to_string(), t.shallow_clone()))).collect();
        self.opt.load_state(&opt)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::Kind;
    use crate::train::optim::OptimKind;

    fn run_opt(momentum: f64, wd: f64) -> Optimizer {
        let p = Tensor::zeros([1], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        Optimizer::new(OptimKind::Sgd { momentum, nesterov: false }, 0.5, wd, Schedule::None, "x".into(), vec![("p".into(), p)]).unwrap()
    }

    #[test]
    fn it_steps_like_the_runs_optimizer_at_the_given_rate_and_comes_back_from_its_state() {
        let mut l = OwnedLinear::new(3, 2, Device::Cpu, &run_opt(0.9, 0.0), 4).unwrap();
        let w0 = l.tensors()[1].detach().copy();
        let g = [Tensor::ones([2], (Kind::Float, Device::Cpu)), Tensor::ones([2, 3], (Kind::Float, Device::Cpu))];
        l.update(&g, 0.1).unwrap();
        // SGD, first step: w − lr·g.
        let moved = (&w0 - l.tensors()[1]).max().double_value(&[]);
        assert!((moved - 0.1).abs() < 1e-6, "{moved}");
        let saved = l.state("w_star");
        let mut again = OwnedLinear::new(3, 2, Device::Cpu, &run_opt(0.9, 0.0), 99).unwrap();
        again.load("w_star", &saved).unwrap();
        // The same second step from the same momentum: bit for bit.
        l.update(&g, 0.1).unwrap();
        again.update(&g, 0.1).unwrap();
        assert_eq!((l.tensors()[1] - again.tensors()[1]).abs().max().double_value(&[]), 0.0);
        assert!(again.load("other", &saved).unwrap_err().to_string().contains("other.bias"));
    }
}
