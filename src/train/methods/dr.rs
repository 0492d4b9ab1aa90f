//! D&R, diagnosing and re-learning (Wei et al., ECCV 2024; ../shared/baselines.md §7).
//!
//! Training is concat's fused cross-entropy. θ0, a copy of every encoder's parameters, is taken
//! before the first epoch. After 0-based epoch e with e > 0, e % every == 0 and fewer than
//! `times` resets so far (done at the start of epoch e + 1, so epoch e is evaluated and
//! checkpointed before the reset, as the reference orders it), each modality is diagnosed: its
//! features on the training and validation splits (evaluation mode, no augmentation) are each
//! min-max scaled to [−1, 1] and clustered by k-means with k = classes (k-means++, n_init 10,
//! max_iter 300, tol 1e-4, seed 0); gap_m = |purity_train − purity_val| and w_m = tanh(λ·gap_m).
//! Every parameter of encoder m becomes w_m·θ0 + (1 − w_m)·θ. Batch-norm running statistics
//! (buffers) are left alone unless `blend_buffers`; the head and the optimiser state are never
//! touched. The diagnosis is per encoder, so it holds for any number of modalities as it is.

use crate::cluster::{kmeans, minmax_scale, purity, KMeansOptions};
use crate::data::BatchOptions;
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use crate::train::declaration::{Keeps, Knob, MethodSpec, Modalities, Reference};
use crate::train::inference;
use crate::train::method::{
    check_state_names, mean_ce, per_modality, read_state, state_tensor, EpochContext, Method, StepContext, StepLoss,
};
use crate::train::model::Model;
use crate::train::options::{opt, Literal, Resolved, Valid};

pub static SPEC: MethodSpec = MethodSpec {
    name: "d&r",
    aliases: &[],
    summary: "diagnose each encoder by k-means purity on train and validation, and re-initialise the weaker towards its start",
    reference: Reference {
        authors: "Wei et al.",
        venue: "ECCV 2024",
        code: "https://github.com/GeWu-Lab/Diagnosing_Relearning_ECCV2024",
        commit: "025085e",
    },
    options: &[
        opt("lambda", Literal::Float(3.0), Valid::Float(0.0, f64::INFINITY), "strength λ of the re-initialisation weight"),
        opt("every", Literal::Int(20), Valid::Int(1, i64::MAX), "epochs between diagnoses"),
        opt("times", Literal::Int(3), Valid::Int(0, i64::MAX), "how many re-initialisations at most"),
        opt("blend_buffers", Literal::Bool(false), Valid::Bool, "blend batch-norm running statistics too"),
        opt("kmeans_seed", Literal::Int(0), Valid::Int(0, i64::MAX), "seed of the k-means purity"),
    ],
    variants: &[],
    modalities: Modalities::Any,
    keeps_state: Keeps::Always,
    terms: &["ce_fused"],
    diagnostics: &["resets", "purity_train_*", "purity_val_*", "w_*"],
    knob: Some(Knob { key: "lambda", values: &[Literal::Float(1.0), Literal::Float(3.0), Literal::Float(5.0)] }),
    build: |o, _| Ok(Box::new(Relearn::new(o)?)),
};

pub struct Relearn {
    lambda: f64,
    every: usize,
    times: usize,
    blend_buffers: bool,
    seed: u64,
    /// θ0: encoder tensors by state-dict name (CPU copies).
    initial: Vec<(String, Tensor)>,
    resets: usize,
    /// The last diagnosis: purities (train, val) per modality, then the blend weights (3 per
    /// modality; zeros before the first).
    last: Vec<f64>,
    /// The epoch whose begin_epoch last ran (-1: none), so a repeated call does not reset twice.
    begun: i64,
}

/// w = tanh(λ·|purity_train − purity_val|).
pub fn blend_weight(lambda: f64, purity_train: f64, purity_val: f64) -> f64 {
    (lambda * (purity_train - purity_val).abs()).tanh()
}

/// Whether a reset follows 0-based epoch `e`.
pub fn resets_after(e: usize, every: usize, times: usize, done: usize) -> bool {
    e > 0 && e.is_multiple_of(every) && done < times
}

/// D&R's purity of one feature matrix against its labels.
pub fn diagnose(features: &Tensor, labels: &Tensor, classes: usize, seed: u64) -> Result<f64> {
    let scaled = minmax_scale(features)?;
    let km = kmeans(&scaled, classes.min(features.size()[0] as usize), &KMeansOptions { seed, ..KMeansOptions::default() })?;
    purity(&km.labels, &(Vec::<i64>::try_from(labels))?)
}

impl Relearn {
    pub fn new(opts: &Resolved) -> Result<Relearn> {
        Ok(Relearn {
            lambda: opts.float("lambda"),
            every: opts.int("every") as usize,
            times: opts.int("times") as usize,
            blend_buffers: opts.boolean("blend_buffers"),
            seed: opts.int("kmeans_seed") as u64,
            initial: Vec::new(),
            resets: 0,
            last: vec![0.0; 6],
            begun: -1,
        })
    }

    /// The encoder tensors a reset blends: trainable parameters, plus buffers when asked.
    fn blended(&self, model: &Model) -> Vec<(String, Tensor)> {
        let trainable: Vec<String> = model.trainable_parameters().into_iter().map(|(n, _)| n).collect();
        model
            .vs
            .variables()
            .into_iter()
            .filter(|(n, _)| model.encoder_of(n).is_some() && (self.blend_buffers || trainable.contains(n)))
            .collect()
    }

    fn capture(&mut self, model: &Model) {
        // θ0 waits on the host (an encoder's worth of memory off the device); `reset` moves each
        // tensor back to its parameter's device.
        let mut named: Vec<(String, Tensor)> =
            self.blended(model).into_iter().map(|(n, t)| (n, t.to_device(tch::Device::Cpu).copy())).collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        self.initial = named;
    }

    /// θ ← w_m·θ0 + (1 − w_m)·θ for every blended tensor of encoder m.
    pub fn reset(&self, model: &Model, w: &[f64]) -> Result<()> {
        let _guard = tch::no_grad_guard();
        for (name, mut t) in self.blended(model) {
            let m = model.encoder_of(&name).expect("encoder tensors only");
            let start = self
                .initial
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, t)| t)
                .ok_or_else(|| Error::arg(format!("d&r: θ0 has no {name}")))?;
            let start = start.f_to_device(t.device()).and_then(|s| s.f_to_kind(t.kind()))?;
            let value = start.f_mul_scalar(w[m]).and_then(|s| s.f_add(&t.f_mul_scalar(1.0 - w[m])?))?;
            t.f_copy_(&value)?;
        }
        Ok(())
    }

    /// Sizes the diagnosis log for n modalities (zeros until the first diagnosis).
    fn fit_last(&mut self, n: usize) {
        if self.last.len() != 3 * n {
            self.last = vec![0.0; 3 * n];
        }
    }

    fn relearn(&mut self, ctx: &EpochContext, val: &crate::data::Split) -> Result<()> {
        let plain = BatchOptions { shuffle: false, augment: false, ..ctx.batching.clone() };
        let train = inference::features(ctx.model, ctx.train, &plain, None)?;
        let held = inference::features(ctx.model, val, &plain, None)?;
        let k = ctx.model.classes as usize;
        let n = ctx.model.modalities.len();
        self.fit_last(n);
        let mut w = vec![0.0; n];
        for m in 0..n {
            let pick = |f: &inference::Features| f.per[m].shallow_clone();
            let pt = diagnose(&pick(&train), &train.labels, k, self.seed)?;
            let pv = diagnose(&pick(&held), &held.labels, k, self.seed)?;
            w[m] = blend_weight(self.lambda, pt, pv);
            self.last[2 * m] = pt;
            self.last[2 * m + 1] = pv;
        }
        self.last[2 * n..].copy_from_slice(&w);
        self.reset(ctx.model, &w)?;
        self.resets += 1;
        Ok(())
    }
}

impl Method for Relearn {
    fn begin_epoch(&mut self, ctx: &EpochContext) -> Result<()> {
        let val = match ctx.val {
            Some(v) if v.len() >= ctx.model.classes as usize => v,
            Some(v) => {
                return Err(Error::arg(format!(
                    "d&r: diagnoses each modality by clustering the validation split, and {} has {} samples for {} classes: carve a larger val split",
                    v.name,
                    v.len(),
                    ctx.model.classes
                )))
            }
            None if self.times == 0 => return Ok(()),
            None => return Err(Error::arg("d&r: diagnoses each modality on a validation split, and none was given: add a val split to the dataset (its val fraction, or split files) and pass val: data.val to train_epoch (the recipes do), or set times: 0")),
        };
        if self.initial.is_empty() {
            self.capture(ctx.model);
        }
        let e = ctx.epoch as i64;
        if self.begun == e {
            return Ok(());
        }
        self.begun = e;
        if ctx.epoch >= 1 && resets_after(ctx.epoch - 1, self.every, self.times, self.resets) {
            self.relearn(ctx, val)?;
        }
        Ok(())
    }

    fn loss(&mut self, ctx: &StepContext) -> Result<StepLoss> {
        let model = ctx.model;
        let n = model.modalities.len();
        let fwd = model.forward_all(ctx.inputs, true)?;
        let ce = mean_ce(&fwd.logits.fused, ctx.labels)?;
        self.fit_last(n);
        let l = &self.last;
        let mut diagnostics = vec![("resets", self.resets as f64)];
        for (m, (train, val)) in per_modality(model, "purity_train").into_iter().zip(per_modality(model, "purity_val")).enumerate() {
            diagnostics.push((train, l[2 * m]));
            diagnostics.push((val, l[2 * m + 1]));
        }
        diagnostics.extend(per_modality(model, "w").into_iter().zip(l[2 * n..].iter().copied()));
        Ok(StepLoss { total: ce.shallow_clone(), terms: vec![("ce_fused", ce)], diagnostics })
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![
            ("resets".to_string(), state_tensor(&[self.resets as f64])),
            ("last".into(), state_tensor(&self.last)),
            ("begun".into(), state_tensor(&[self.begun as f64])),
        ];
        out.extend(self.initial.iter().map(|(n, t)| (format!("theta0.{n}"), t.shallow_clone())));
        out
    }

    fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        let scalars: Vec<(String, Tensor)> =
            state.iter().filter(|(n, _)| !n.starts_with("theta0.")).map(|(n, t)| (n.clone(), t.shallow_clone())).collect();
        check_state_names("d&r", &scalars, &["resets", "last", "begun", "theta0.<encoder tensor>"])?;
        if state.is_empty() {
            return Ok(());
        }
        self.resets = read_state("d&r", state, "resets", 1)?[0] as usize;
        let len = state.iter().find(|(n, _)| n == "last").map_or(6, |(_, t)| t.numel());
        if len == 0 || len % 3 != 0 {
            return Err(Error::arg(format!("d&r: the saved \"last\" diagnosis has {len} values, expected 3 per modality")));
        }
        self.last = read_state("d&r", state, "last", len)?;
        self.begun = read_state("d&r", state, "begun", 1)?[0] as i64;
        let mut initial: Vec<(String, Tensor)> =
            state.iter().filter_map(|(n, t)| n.strip_prefix("theta0.").map(|p| (p.to_string(), t.shallow_clone()))).collect();
        initial.sort_by(|a, b| a.0.cmp(&b.0));
        self.initial = initial;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resets_follow_the_schedule() {
        // E_r 20, N_r 3 over 90 epochs: after epochs 20, 40 and 60 only.
        let mut done = 0;
        let mut at = Vec::new();
        for e in 0..90 {
            if resets_after(e, 20, 3, done) {
                at.push(e);
                done += 1;
            }
        }
        assert_eq!(at, vec![20, 40, 60]);
    }

    #[test]
    fn blend_weights() {
        assert_eq!(blend_weight(0.0, 0.9, 0.1), 0.0);
        assert!((blend_weight(3.0, 0.9, 0.7) - (0.6f64).tanh()).abs() < 1e-12);
    }
}
