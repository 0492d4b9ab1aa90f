//! Frozen extra models (M5 of ../shared/baselines-2.md): a unimodal teacher is one encoder and
//! a linear head, trained alone on one modality of the training split before the multimodal
//! run, its best epoch on validation kept, then frozen and run in evaluation mode (UMT distils
//! its features into the student's encoder). It has its own `VarStore`, so nothing the student's
//! optimizer does reaches it, and its tensors travel in the method's checkpoint state.

use super::encoder::Encoder;
use super::layers::Linear;
use super::method::{mean_ce, read_state, state_tensor, EpochContext};
use super::model::{param_prefix, Model};
use super::optim::Optimizer;
use crate::data::{Batch, BatchOptions, Batches, Split};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::tensor::{Kind, Tensor};
use tch::nn;

pub struct Teacher {
    pub vs: nn::VarStore,
    pub modality: String,
    encoder: Encoder,
    head: Linear,
    /// Validation accuracy of the kept epoch (NaN without a validation split).
    pub val_acc: f64,
}

impl Teacher {
    /// An untrained teacher for the student's modality `m`: the same encoder architecture and
    /// input shape (so its features have the student's size), initialised from `seed`.
    pub fn new(student: &Model, m: usize, seed: u64) -> Result<Teacher> {
        let spec = &student.spec;
        crate::rng::with_torch_seed(seed, || {
            let vs = nn::VarStore::new(student.device());
            let root = vs.root();
            let encoder =
                Encoder::new(&(&root / format!("{}_net", param_prefix(&spec.modalities[m]))), &spec.encoders[m], &spec.shapes[m])?;
            let head = Linear::new(&(&root / "head"), encoder.dim, spec.classes);
            Ok(Teacher { vs, modality: spec.modalities[m].clone(), encoder, head, val_acc: f64::NAN })
        })
    }

    fn input(&self, batch: &Batch) -> Result<Tensor> {
        let x = batch
            .inputs
            .iter()
            .find(|(n, _)| *n == self.modality)
            .map(|(_, t)| t)
            .ok_or_else(|| Error::arg(format!("teacher: the batch has no modality \"{}\"", self.modality)))?;
        x.f_to_device(self.vs.device()).map_err(Error::from)
    }

    /// Pooled features of a modality input, in evaluation mode and without gradients.
    pub fn features(&self, x: &Tensor) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        let x = x.f_to_device(self.vs.device())?;
        self.encoder.forward(&x, false)
    }

    /// Pooled features and the head's logits, in evaluation mode and without gradients (G2D
    /// distils both and ranks modalities by the logits' confidence).
    pub fn outputs(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let features = self.features(x)?;
        let _guard = tch::no_grad_guard();
        let logits = self.head.forward(&features)?;
        Ok((features, logits))
    }

    fn accuracy(&self, split: &Split, batching: &BatchOptions) -> Result<f64> {
        let _guard = tch::no_grad_guard();
        let (mut right, mut total) = (0.0, 0.0);
        for b in Batches::new(split, &BatchOptions { shuffle: false, augment: false, ..batching.clone() })? {
            let b = b?;
            let logits = self.head.forward(&self.encoder.forward(&self.input(&b)?, false)?)?;
            let labels = b.labels.f_to_device(self.vs.device())?;
            right += (logits
                .f_argmax(-1, false)
                .and_then(|p| p.f_eq_tensor(&labels))
                .and_then(|c| c.f_sum(Kind::Double))
                .and_then(|s| s.f_double_value(&[])))?;
            total += b.labels.size()[0] as f64;
        }
        Ok(if total > 0.0 { right / total } else { f64::NAN })
    }

    /// Trains the teacher for `epochs` epochs with a fresh optimizer like `like` (kind, learning
    /// rate, weight decay; constant rate), keeping the epoch with the best validation accuracy
    /// (the last without a validation split).
    pub fn train(
        &mut self,
        like: &Optimizer,
        train: &Split,
        val: Option<&Split>,
        batching: &BatchOptions,
        epochs: usize,
        quiet: bool,
    ) -> Result<()> {
        let mut params: Vec<(String, Tensor)> = self.vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let mut opt = like.fresh_like(format!("teacher {}", self.modality), params)?;
        let mut best: Option<(f64, Vec<(String, Tensor)>)> = None;
        for e in 0..epochs {
            let batches = Batches::new(train, &BatchOptions { seed: batching.seed.wrapping_add(e as u64), ..batching.clone() })?;
            let mut bar = Progress::new(format!("teacher {} epoch {e}", self.modality), batches.batch_count(), "batches", quiet);
            for b in batches {
                crate::interrupt::check(&format!("teacher {} epoch {e}", self.modality))?;
                let b = b?;
                let labels = b.labels.f_to_device(self.vs.device())?;
                let loss = mean_ce(&self.head.forward(&self.encoder.forward(&self.input(&b)?, true)?)?, &labels)?;
                let grads = opt.gradients(&loss)?;
                opt.update(&grads)?;
                bar.inc(1);
            }
            bar.finish();
            let acc = match val {
                Some(v) => self.accuracy(v, batching)?,
                None => f64::NAN,
            };
            if val.is_none() || best.as_ref().is_none_or(|(b, _)| acc > *b) {
                best = Some((acc, self.tensors()?));
            }
        }
        if let Some((acc, saved)) = best {
            self.load(&saved)?;
            self.val_acc = acc;
        }
        Ok(())
    }

    /// Every variable (parameters and batch-norm statistics), copied, by name.
    pub fn tensors(&self) -> Result<Vec<(String, Tensor)>> {
        let copy = |t: &Tensor| -> Result<Tensor> {
            let mut c = t.f_zeros_like()?;
            let _guard = tch::no_grad_guard();
            c.f_copy_(t)?;
            Ok(c)
        };
        let mut out = self.vs.variables().into_iter().map(|(n, t)| Ok((n, copy(&t)?))).collect::<Result<Vec<_>>>()?;
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Copies saved variables in by name; every variable must be there with its shape.
    pub fn load(&self, saved: &[(String, Tensor)]) -> Result<()> {
        let _guard = tch::no_grad_guard();
        for (name, t) in self.vs.variables() {
            let given = saved
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, g)| g)
                .ok_or_else(|| Error::arg(format!("teacher {}: the saved state has no \"{name}\"", self.modality)))?;
            if given.size() != t.size() {
                return Err(Error::arg(format!(
                    "teacher {}: saved \"{name}\" is {:?}, the teacher's is {:?}",
                    self.modality,
                    given.size(),
                    t.size()
                )));
            }
            let mut target = t.shallow_clone();
            given.f_to_kind(t.kind()).and_then(|g| g.f_to_device(t.device())).and_then(|g| target.f_copy_(&g))?;
        }
        Ok(())
    }
}

/// One teacher per modality, trained before a method's first epoch and saved with its state: the
/// one mechanism UMT and G2D share. Entries are `teacher<m>.<tensor>` and `teacher<m>_val_acc`.
pub struct Teachers {
    /// The method's name, for messages.
    method: &'static str,
    epochs: usize,
    seed: u64,
    pub list: Vec<Teacher>,
    /// Tensors from a checkpoint, loaded once the model (their shapes) is known.
    saved: Option<Vec<(String, Tensor)>>,
}

impl Teachers {
    pub fn new(method: &'static str, epochs: usize, seed: u64) -> Teachers {
        Teachers { method, epochs, seed, list: Vec::new(), saved: None }
    }

    /// Rebuilds the teachers a checkpoint held, on the first call after `load_state`.
    pub fn restore(&mut self, model: &Model) -> Result<()> {
        let Some(saved) = self.saved.take() else { return Ok(()) };
        self.list.clear();
        for m in 0..model.modalities.len() {
            let mut t = Teacher::new(model, m, self.seed)?;
            let prefix = format!("teacher{m}.");
            let own: Vec<(String, Tensor)> =
                saved.iter().filter_map(|(n, v)| n.strip_prefix(&prefix).map(|rest| (rest.to_string(), v.shallow_clone()))).collect();
            t.load(&own)?;
            t.val_acc = read_state(self.method, &saved, &format!("teacher{m}_val_acc"), 1)?[0];
            self.list.push(t);
        }
        Ok(())
    }

    /// Before an epoch: the saved teachers back, or, the first time, each trained on its modality.
    pub fn prepare(&mut self, ctx: &EpochContext) -> Result<()> {
        self.restore(ctx.model)?;
        if !self.list.is_empty() {
            return Ok(());
        }
        for m in 0..ctx.model.modalities.len() {
            let mut t = Teacher::new(ctx.model, m, self.seed.wrapping_add(m as u64))?;
            t.train(ctx.opt, ctx.train, ctx.val, ctx.batching, self.epochs, ctx.quiet)?;
            self.list.push(t);
        }
        Ok(())
    }

    /// The teachers, one per modality of `model`, or an error saying how to get them.
    pub fn ready(&mut self, model: &Model) -> Result<&[Teacher]> {
        self.restore(model)?;
        if self.list.len() != model.modalities.len() {
            return Err(Error::arg(format!(
                "{}: distils from unimodal teachers trained before the first epoch: train with train_epoch or a recipe (which train them), not a lone train_step",
                self.method
            )));
        }
        Ok(&self.list)
    }

    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (m, t) in self.list.iter().enumerate() {
            if let Ok(tensors) = t.tensors() {
                out.extend(tensors.into_iter().map(|(n, v)| (format!("teacher{m}.{n}"), v)));
            }
            out.push((format!("teacher{m}_val_acc"), state_tensor(&[t.val_acc])));
        }
        if out.is_empty() {
            if let Some(saved) = &self.saved {
                return saved.iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect();
            }
        }
        out
    }

    pub fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        if let Some((name, _)) = state.iter().find(|(n, _)| !n.starts_with("teacher")) {
            return Err(Error::arg(format!(
                "{}: the saved state holds \"{name}\", which this method does not keep (its teachers' tensors)",
                self.method
            )));
        }
        self.list.clear();
        self.saved = if state.is_empty() { None } else { Some(state.iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect()) };
        Ok(())
    }
}
