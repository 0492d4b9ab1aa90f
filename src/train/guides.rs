//! Method-owned modules (M12 of ../shared/baselines-3.md): one guide classifier per modality that
//! belongs to a method, not to the model. Guides read detached pooled features, so their loss
//! never reaches an encoder; they have their own `VarStore` and optimizer, so the run's optimizer
//! never sees them; they are saved with the method's state and never used at evaluation. CGGM
//! measures each modality's progress with them.

use super::layers::{relu, Linear};
use super::method::mean_ce;
use super::model::Model;
use super::optim::{Optimizer, Schedule};
use crate::error::{Error, Result};
use crate::tensor::{Kind, Tensor};
use tch::nn;

enum Head {
    Linear(Linear),
    /// d → d → ReLU → C.
    Mlp(Linear, Linear),
}

impl Head {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Head::Linear(l) => l.forward(x),
            Head::Mlp(hidden, out) => out.forward(&relu(hidden.forward(x)?)?),
        }
    }

    fn output(&self) -> &Linear {
        match self {
            Head::Linear(l) | Head::Mlp(_, l) => l,
        }
    }
}

pub struct Guides {
    vs: nn::VarStore,
    heads: Vec<Head>,
    opt: Optimizer,
}

impl Guides {
    /// One guide per modality of `model` on its encoder's features (`mlp`: one hidden layer of
    /// the feature width), initialised from `seed`, trained by an optimizer of `like`'s kind
    /// with its own learning rate and weight decay (constant rate).
    pub fn new(model: &Model, mlp: bool, like: &Optimizer, lr: f64, weight_decay: f64, seed: u64) -> Result<Guides> {
        let (vs, heads) = crate::rng::with_torch_seed(seed, || {
            let vs = nn::VarStore::new(model.device());
            let root = vs.root();
            let heads = model
                .encoders
                .iter()
                .enumerate()
                .map(|(m, e)| {
                    let p = &root / format!("guide{m}");
                    if mlp {
                        Head::Mlp(Linear::new(&(&p / "hidden"), e.dim, e.dim), Linear::new(&(&p / "out"), e.dim, model.classes))
                    } else {
                        Head::Linear(Linear::new(&(&p / "out"), e.dim, model.classes))
                    }
                })
                .collect::<Vec<_>>();
            (vs, heads)
        });
        let mut params: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let opt = Optimizer::new(like.kind.clone(), lr, weight_decay, Schedule::None, "guides".into(), params)?;
        Ok(Guides { vs, heads, opt })
    }

    /// Guide m's output-layer weight [C, d_m] (the live tensor).
    pub fn output_weight(&self, m: usize) -> &Tensor {
        &self.heads[m].output().weight
    }

    /// Each guide's cross-entropy on its modality's detached features, summed (the loss `update`
    /// takes), and each guide's batch accuracy.
    pub fn loss(&self, features: &[Tensor], labels: &Tensor) -> Result<(Tensor, Vec<f64>)> {
        if features.len() != self.heads.len() {
            return Err(Error::arg(format!("guides: {} feature tensors for {} guides", features.len(), self.heads.len())));
        }
        let mut total: Option<Tensor> = None;
        let mut acc = Vec::with_capacity(features.len());
        for (h, x) in self.heads.iter().zip(features) {
            let logits = h.forward(&x.f_detach()?)?;
            let ce = mean_ce(&logits, labels)?;
            let right =
                logits.f_argmax(-1, false)?.f_eq_tensor(labels)?.f_to_kind(Kind::Double)?.f_mean(Kind::Double)?.f_double_value(&[])?;
            acc.push(right);
            total = Some(match total {
                None => ce,
                Some(t) => t.f_add(&ce)?,
            });
        }
        Ok((total.ok_or_else(|| Error::arg("guides: no modalities"))?, acc))
    }

    /// One step of the guides' own optimizer on their loss.
    pub fn update(&mut self, loss: &Tensor) -> Result<()> {
        let grads = self.opt.gradients(loss)?;
        self.opt.update(&grads)
    }

    /// Checkpoint entries: `guide.<tensor>` and `guide_opt.<slot>`.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> =
            self.vs.variables().into_iter().map(|(n, t)| (format!("guide.{n}"), t.detach().copy())).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        // Copies: the optimizer updates its buffers in place, and a state is a snapshot.
        out.extend(self.opt.state_tensors().into_iter().map(|(n, t)| (format!("guide_opt.{n}"), t.detach().copy())));
        out
    }

    /// Restores what `state` wrote.
    pub fn load(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        let _guard = tch::no_grad_guard();
        for (name, mut t) in self.vs.variables() {
            let saved = state
                .iter()
                .find(|(n, _)| n.strip_prefix("guide.") == Some(name.as_str()))
                .map(|(_, s)| s)
                .ok_or_else(|| Error::arg(format!("guides: the saved state has no \"guide.{name}\"")))?;
            if saved.size() != t.size() {
                return Err(Error::arg(format!("guides: saved \"{name}\" is {:?}, the guide's is {:?}", saved.size(), t.size())));
            }
            t.f_copy_(&saved.f_to_device(t.device())?.f_to_kind(t.kind())?)?;
        }
        let opt: Vec<(String, Tensor)> =
            state.iter().filter_map(|(n, t)| n.strip_prefix("guide_opt.").map(|rest| (rest.to_string(), t.shallow_clone()))).collect();
        self.opt.load_state(&opt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::encoder::EncoderKind;
    use crate::train::fusion::FusionKind;
    use crate::train::model::ModelSpec;
    use crate::train::optim::OptimKind;

    fn toy() -> (Model, Optimizer) {
        let m = Model::new(&ModelSpec {
            modalities: vec!["a".into(), "b".into()],
            shapes: vec![vec![3], vec![3]],
            encoders: vec![EncoderKind::Mlp { hidden: vec![4] }, EncoderKind::Mlp { hidden: vec![5] }],
            fusion: FusionKind::Concat,
            classes: 2,
            seed: 0,
            device: tch::Device::Cpu,
            mmtm: 0,
        })
        .unwrap();
        let o = Optimizer::new(
            OptimKind::Sgd { momentum: 0.9, nesterov: false },
            0.1,
            0.0,
            Schedule::None,
            m.architecture.clone(),
            m.trainable_parameters(),
        )
        .unwrap();
        (m, o)
    }

    #[test]
    fn guides_learn_on_detached_features_and_come_back_from_their_state() {
        let (m, o) = toy();
        let mut g = Guides::new(&m, false, &o, 0.5, 0.0, 3).unwrap();
        assert_eq!(g.output_weight(1).size(), vec![2, 5]);
        let x = [
            Tensor::randn([8, 4], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true),
            Tensor::randn([8, 5], (Kind::Float, tch::Device::Cpu)),
        ];
        let y = Tensor::from_slice(&[0i64, 1, 0, 1, 0, 1, 0, 1]);
        let (loss, acc) = g.loss(&x, &y).unwrap();
        assert_eq!(acc.len(), 2);
        assert!(acc.iter().all(|a| (0.0..=1.0).contains(a)));
        let w0 = g.output_weight(0).copy();
        g.update(&loss).unwrap();
        assert!((g.output_weight(0) - &w0).abs().max().double_value(&[]) > 0.0, "the guide did not learn");
        assert!(!x[0].grad().defined(), "the guides' loss reached the features");
        // Their own optimizer, with its state, comes back.
        let saved = g.state();
        assert!(saved.iter().any(|(n, _)| n.starts_with("guide_opt.") && n.ends_with("momentum_buffer")));
        let mut back = Guides::new(&m, false, &o, 0.5, 0.0, 4).unwrap();
        back.load(&saved).unwrap();
        assert_eq!((back.output_weight(0) - g.output_weight(0)).abs().max().double_value(&[]), 0.0);
        let (l1, _) = g.loss(&x, &y).unwrap();
        let (l2, _) = back.loss(&x, &y).unwrap();
        g.update(&l1).unwrap();
        back.update(&l2).unwrap();
        assert_eq!((back.output_weight(1) - g.output_weight(1)).abs().max().double_value(&[]), 0.0, "the momentum did not come back");
    }
}
