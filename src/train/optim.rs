//! Optimisers with PyTorch's update rules (torch.optim.SGD, Adam, AdamW), written over the
//! model's named parameters so their state is plain named tensors (checkpointable, and
//! checked against the model it was built for), and learning-rate schedules.

use super::loss_scale::LossScaler;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

#[derive(Clone, Debug, PartialEq)]
pub enum OptimKind {
    Sgd { momentum: f64, nesterov: bool },
    Adam { beta1: f64, beta2: f64, eps: f64 },
    AdamW { beta1: f64, beta2: f64, eps: f64 },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    None,
    /// lr · gamma^(epoch / step) (StepLR).
    Step {
        step: usize,
        gamma: f64,
    },
    /// Cosine annealing from lr to 0 over `epochs` (CosineAnnealingLR, eta_min 0).
    Cosine {
        epochs: usize,
    },
}

impl Schedule {
    pub fn lr(&self, base: f64, epoch: usize) -> f64 {
        match self {
            Schedule::None => base,
            Schedule::Step { step, gamma } => base * gamma.powi((epoch / (*step).max(1)) as i32),
            Schedule::Cosine { epochs } => {
                base * 0.5 * (1.0 + (std::f64::consts::PI * epoch.min(*epochs) as f64 / (*epochs).max(1) as f64).cos())
            }
        }
    }
}

/// A parameter group's own settings, as torch.optim's param_groups: the parameters of one
/// modality's encoder, or of the head (`groups:` of `optimizer`). Parameters in no group use
/// the optimizer's own lr, weight decay and momentum.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub name: String,
    /// The learning rate before the schedule (`set_group_lr` changes it).
    pub base_lr: f64,
    /// The learning rate this epoch: the schedule applied to `base_lr`.
    pub lr: f64,
    pub weight_decay: f64,
    /// SGD's momentum for this group (None: the optimizer's).
    pub momentum: Option<f64>,
}

pub struct Optimizer {
    pub kind: OptimKind,
    pub lr: f64,
    pub base_lr: f64,
    pub weight_decay: f64,
    pub schedule: Schedule,
    /// The model it was built for (its architecture line): stepping another model is an error.
    pub architecture: String,
    params: Vec<(String, Tensor)>,
    /// Per parameter: momentum buffer (SGD) or (m, v) (Adam); created on first use.
    state: Vec<Vec<Tensor>>,
    pub steps: i64,
    groups: Vec<Group>,
    /// Per parameter: its group in `groups`, or None for the optimizer's own settings.
    group_of: Vec<Option<usize>>,
    /// The epoch of the last `set_epoch` (a group's new rate is scheduled from it).
    epoch: usize,
    /// fp16's dynamic loss scale (`amp: "fp16"`), from the first such step on; checkpointed
    /// with the rest of the state. A method's fresh optimizer keeps it, as GradScaler is apart.
    pub scaler: Option<LossScaler>,
}

impl Optimizer {
    pub fn new(
        kind: OptimKind,
        lr: f64,
        weight_decay: f64,
        schedule: Schedule,
        architecture: String,
        params: Vec<(String, Tensor)>,
    ) -> Result<Optimizer> {
        if !(lr > 0.0 && lr.is_finite()) || weight_decay < 0.0 {
            return Err(Error::arg(format!(
                "optimizer: lr must be positive and weight_decay >= 0, got lr {lr}, weight_decay {weight_decay}"
            )));
        }
        let n = params.len();
        Ok(Optimizer {
            kind,
            lr,
            base_lr: lr,
            weight_decay,
            schedule,
            architecture,
            params,
            state: (0..n).map(|_| Vec::new()).collect(),
            steps: 0,
            groups: Vec::new(),
            group_of: vec![None; n],
            epoch: 0,
            scaler: None,
        })
    }

    /// Gives parameters their groups: `members[g]` are the names of group g's parameters.
    pub fn set_groups(&mut self, groups: Vec<Group>, members: &[Vec<String>]) -> Result<()> {
        for g in &groups {
            if !(g.base_lr > 0.0 && g.base_lr.is_finite()) || !(g.weight_decay >= 0.0 && g.weight_decay.is_finite()) {
                return Err(Error::arg(format!(
                    "optimizer: group {}: lr must be positive and weight_decay >= 0, got lr {}, weight_decay {}",
                    g.name, g.base_lr, g.weight_decay
                )));
            }
            match (g.momentum, &self.kind) {
                (Some(m), OptimKind::Sgd { .. }) if !(0.0..1.0).contains(&m) => {
                    return Err(Error::arg(format!("optimizer: group {}: momentum must be in [0, 1), got {m}", g.name)));
                }
                (Some(_), OptimKind::Adam { .. } | OptimKind::AdamW { .. }) => {
                    return Err(Error::arg(format!(
                        "optimizer: group {}: momentum is SGD's; Adam's moments are set by betas for the whole optimizer",
                        g.name
                    )));
                }
                _ => {}
            }
        }
        let mut group_of = vec![None; self.params.len()];
        for (g, names) in members.iter().enumerate() {
            for name in names {
                let i = self
                    .params
                    .iter()
                    .position(|(p, _)| p == name)
                    .ok_or_else(|| Error::arg(format!("optimizer: group {}: no parameter {name}", groups[g].name)))?;
                group_of[i] = Some(g);
            }
        }
        self.groups = groups;
        self.group_of = group_of;
        self.set_epoch(self.epoch);
        Ok(())
    }

    /// Takes on parameters it does not hold yet (by name), each with empty state and the
    /// optimizer's own settings: layers a model grew during training (M13). Returns how many.
    pub fn adopt(&mut self, params: Vec<(String, Tensor)>) -> usize {
        let mut added = 0;
        for (name, t) in params {
            if self.params.iter().any(|(p, _)| *p == name) {
                continue;
            }
            self.params.push((name, t));
            self.state.push(Vec::new());
            self.group_of.push(None);
            added += 1;
        }
        added
    }

    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// The current learning rate of group `name`.
    pub fn group_lr(&self, name: &str) -> Result<f64> {
        Ok(self.groups[self.group_index(name)?].lr)
    }

    /// Sets group `name`'s learning rate from now on (the schedule, if any, scales it from this
    /// epoch on, as it scales the optimizer's own).
    pub fn set_group_lr(&mut self, name: &str, lr: f64) -> Result<()> {
        if !(lr > 0.0 && lr.is_finite()) {
            return Err(Error::arg(format!("set_lr: group {name}: the learning rate must be a positive number, got {lr}")));
        }
        let i = self.group_index(name)?;
        let at = self.schedule.lr(1.0, self.epoch);
        let g = &mut self.groups[i];
        g.base_lr = lr / at.max(f64::MIN_POSITIVE);
        g.lr = lr;
        Ok(())
    }

    /// Restores a group's rates from a checkpoint.
    pub fn restore_group(&mut self, name: &str, base_lr: f64, lr: f64) -> Result<()> {
        let i = self.group_index(name)?;
        self.groups[i].base_lr = base_lr;
        self.groups[i].lr = lr;
        Ok(())
    }

    fn group_index(&self, name: &str) -> Result<usize> {
        self.groups.iter().position(|g| g.name == name).ok_or_else(|| {
            let have: Vec<&str> = self.groups.iter().map(|g| g.name.as_str()).collect();
            Error::arg(if have.is_empty() {
                format!("the optimizer has no parameter groups, so no group {name}: build it with optimizer(m, #{{ groups: #{{ {name}: #{{ lr }} }} }})")
            } else {
                format!("the optimizer has no group {name}; its groups: {}", have.join(", "))
            })
        })
    }

    /// "sgd", "adam" or "adamw" (stored with checkpoints: state of one kind does not fit another).
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            OptimKind::Sgd { .. } => "sgd",
            OptimKind::Adam { .. } => "adam",
            OptimKind::AdamW { .. } => "adamw",
        }
    }

    /// The parameter names, in the order the optimiser holds them (sorted by name).
    pub fn param_names(&self) -> Vec<String> {
        self.params.iter().map(|(n, _)| n.clone()).collect()
    }

    /// Sets the learning rate for `epoch` from the schedule.
    pub fn set_epoch(&mut self, epoch: usize) {
        self.lr = self.schedule.lr(self.base_lr, epoch);
        for g in &mut self.groups {
            g.lr = self.schedule.lr(g.base_lr, epoch);
        }
        self.epoch = epoch;
    }

    /// Drops every parameter's momentum / moments, as a newly built optimizer has none; the step
    /// count, which seeds the methods' draws, goes on (Adam's bias correction with it).
    /// ReconBoost rebuilds its optimizer per phase.
    pub fn reset_state(&mut self) {
        for st in &mut self.state {
            st.clear();
        }
    }

    pub fn zero_grad(&mut self) {
        for (_, p) in &self.params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.f_zero_();
            }
        }
    }

    /// One update from the gradients the last backward pass left in each parameter's `.grad`.
    pub fn step(&mut self) -> Result<()> {
        let grads: Vec<Tensor> = self.params.iter().map(|(_, p)| p.grad()).collect();
        self.update(&grads)
    }

    /// Backward from `loss` and one update. The gradients come back from the autograd engine
    /// (as torch.autograd.grad gives them) instead of being accumulated into `.grad` after a
    /// zeroing pass: at ResNet size those two extra passes over every parameter were about a
    /// fifth of a step.
    pub fn backward_step(&mut self, loss: &Tensor) -> Result<()> {
        let grads = self.gradients(loss)?;
        self.update(&grads)
    }

    /// The gradient of `loss` for every parameter, in `params()` order (undefined for a
    /// parameter the loss does not reach, which the update then skips, as PyTorch skips a
    /// parameter whose .grad is None). Methods change these between backward and update.
    pub fn gradients(&self, loss: &Tensor) -> Result<Vec<Tensor>> {
        let params: Vec<&Tensor> = self.params.iter().map(|(_, p)| p).collect();
        Tensor::f_run_backward(&[loss], &params, false, false).map_err(Error::from)
    }

    /// The parameters this optimiser updates, by name, sorted by name.
    pub fn params(&self) -> &[(String, Tensor)] {
        &self.params
    }

    /// A fresh optimiser of the same kind, learning rate and weight decay (constant learning
    /// rate, no state) over another model's parameters: G-Blending's temporary copy.
    pub fn fresh_like(&self, architecture: String, params: Vec<(String, Tensor)>) -> Result<Optimizer> {
        Optimizer::new(self.kind.clone(), self.base_lr, self.weight_decay, Schedule::None, architecture, params)
    }

    /// One update from given gradients (in `params()` order).
    pub fn update(&mut self, grads: &[Tensor]) -> Result<()> {
        if grads.len() != self.params.len() {
            return Err(Error::arg(format!("optimizer: {} gradients for {} parameters", grads.len(), self.params.len())));
        }
        let _guard = tch::no_grad_guard();
        self.steps += 1;
        let t = self.steps as i32;
        let (own_lr, own_wd) = (self.lr, self.weight_decay);
        let Optimizer { kind, params, state: states, groups, group_of, .. } = self;
        for ((((_, p), state), g), group) in params.iter_mut().zip(states.iter_mut()).zip(grads).zip(group_of.iter()) {
            if !g.defined() {
                continue;
            }
            let (lr, wd, group_momentum) = match group {
                Some(i) => (groups[*i].lr, groups[*i].weight_decay, groups[*i].momentum),
                None => (own_lr, own_wd, None),
            };
            // In-place updates with as few temporaries as PyTorch's own loop makes: at ResNet
            // size every extra pass over the parameters is a measurable share of a step. tch
            // has no `alpha` argument, so scaled adds go through addcmul_ with a 0-dim factor.
            let mut run = || -> std::result::Result<(), tch::TchError> {
                // On the parameter's device (a no-op on CPU): not every CUDA kernel takes CPU scalars.
                let dev = p.device();
                let factor = |x: f64| Tensor::from(x as f32).f_to_device(dev);
                match &*kind {
                    OptimKind::Sgd { momentum, nesterov } => {
                        let momentum = &group_momentum.unwrap_or(*momentum);
                        let mut d = if wd != 0.0 { g.f_addcmul(p, &factor(wd)?)? } else { g.shallow_clone() };
                        if *momentum != 0.0 {
                            if state.is_empty() {
                                state.push(d.f_detach_copy()?);
                            } else {
                                let _ = state[0].f_mul_scalar_(*momentum)?.f_add_(&d)?;
                            }
                            d = if *nesterov { d.f_addcmul(&state[0], &factor(*momentum)?)? } else { state[0].shallow_clone() };
                        }
                        let _ = p.f_addcmul_(&d, &factor(-lr)?)?;
                    }
                    OptimKind::Adam { beta1, beta2, eps } | OptimKind::AdamW { beta1, beta2, eps } => {
                        let decoupled = matches!(kind, OptimKind::AdamW { .. });
                        let g = if wd != 0.0 && !decoupled { g.f_addcmul(p, &factor(wd)?)? } else { g.shallow_clone() };
                        if decoupled && wd != 0.0 {
                            let _ = p.f_mul_scalar_(1.0 - lr * wd)?;
                        }
                        if state.is_empty() {
                            state.push(p.f_zeros_like()?);
                            state.push(p.f_zeros_like()?);
                        }
                        let _ = state[0].f_lerp_(&g, 1.0 - beta1)?;
                        let _ = state[1].f_mul_scalar_(*beta2)?.f_addcmul_(&g, &g.f_mul_scalar(1.0 - beta2)?)?;
                        let (c1, c2) = (1.0 - beta1.powi(t), 1.0 - beta2.powi(t));
                        // p -= lr/c1 · m / (sqrt(v)/sqrt(c2) + eps), the sign and scale folded into the denominator.
                        let mut denom = state[1].f_sqrt()?;
                        let _ = denom.f_div_scalar_(c2.sqrt())?.f_add_scalar_(*eps)?.f_mul_scalar_(-c1 / lr)?;
                        let _ = p.f_addcdiv_(&state[0], &denom)?;
                    }
                }
                Ok(())
            };
            run()?;
        }
        Ok(())
    }

    /// The optimiser's state as named tensors (for checkpoints): `<param>.<slot>` plus `steps`.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let slots: &[&str] = match self.kind {
            OptimKind::Sgd { .. } => &["momentum_buffer"],
            _ => &["exp_avg", "exp_avg_sq"],
        };
        let mut out: Vec<(String, Tensor)> = self
            .params
            .iter()
            .zip(&self.state)
            .flat_map(|((name, _), st)| st.iter().zip(slots).map(move |(t, s)| (format!("{name}.{s}"), t.shallow_clone())))
            .collect();
        out.push(("steps".into(), Tensor::from_slice(&[self.steps])));
        out.extend(self.scaler.iter().flat_map(|s| s.state_tensors()));
        out
    }

    /// Restores state written by `state_tensors`.
    pub fn load_state(&mut self, named: &[(String, Tensor)]) -> Result<()> {
        let slots: &[&str] = match self.kind {
            OptimKind::Sgd { .. } => &["momentum_buffer"],
            _ => &["exp_avg", "exp_avg_sq"],
        };
        let find = |key: &str| named.iter().find(|(n, _)| n == key).map(|(_, t)| t);
        let known = |key: &str| {
            key == "steps"
                || LossScaler::is_state_key(key)
                || self.params.iter().any(|(p, _)| slots.iter().any(|s| key == format!("{p}.{s}")))
        };
        let foreign: Vec<&str> = named.iter().map(|(n, _)| n.as_str()).filter(|n| !known(n)).take(5).collect();
        if !foreign.is_empty() {
            return Err(Error::arg(format!(
                "optimizer state holds entries this {} optimizer does not have: {}",
                self.kind_name(),
                foreign.join(", ")
            )));
        }
        for ((name, p), st) in self.params.iter().zip(self.state.iter_mut()) {
            st.clear();
            for s in slots {
                if let Some(t) = find(&format!("{name}.{s}")) {
                    if t.size() != p.size() {
                        return Err(Error::arg(format!(
                            "optimizer state {name}.{s} has shape {:?}, the parameter {:?}",
                            t.size(),
                            p.size()
                        )));
                    }
                    st.push(t.f_to_device(p.device())?);
                }
            }
        }
        if let Some(s) = find("steps") {
            self.steps = s.f_int64_value(&[0])?;
        }
        self.scaler = LossScaler::from_state(|k| find(k).map(|t| t.shallow_clone()))?;
        Ok(())
    }
}
