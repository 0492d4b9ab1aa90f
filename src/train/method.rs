//! What a training method is, and what it sees: the `Method` trait, the step and epoch contexts,
//! the step's loss, and the helpers the methods share (cross-entropy, scores, parameter
//! selection, state tensors). This stands below the methods (`methods/`), which implement it,
//! and the trainer's loop (`trainer.rs`), which calls them:
//!
//! ```text
//! prepare(model)                     check the model suits the method; set its head rule
//! begin_epoch(ctx)                   work before an epoch (G-Blending's weight estimate)
//! loss(ctx) -> StepLoss              forward pass(es) and the loss, with logged terms
//! backward(ctx, total)               the gradients: the trainer's one backward of the loss,
//!                                    unless the method computes them (MMPareto)
//! adjust_gradients(ctx, grads)       changes between backward and update (OGM, AGM, MLA)
//! update                             the optimiser's step
//! ```
//!
//! A method may take several loss / backward / update rounds per batch (`substeps`: MLA's one
//! per modality); work after an epoch is done at the next `begin_epoch` (D&R's re-learning),
//! so a checkpoint written between epochs holds the model as evaluated. Methods keep what they
//! carry across steps in themselves, and expose it as named tensors for checkpoints.

use super::autocast::Precision;
use super::fusion::FusionKind;
use super::loss_scale::StepScale;
use super::model::Model;
use super::optim::Optimizer;
use crate::data::{BatchOptions, Split};
use crate::error::{Error, Result};
use crate::tensor::{Kind, Tensor};

/// What a step's method sees.
pub struct StepContext<'a> {
    pub model: &'a Model,
    /// The batch's inputs, one per modality in the model's order, on the model's device.
    pub inputs: &'a [&'a Tensor],
    /// [B] int64 labels on the model's device.
    pub labels: &'a Tensor,
    /// [B] int64 dataset row indices.
    pub indices: &'a Tensor,
    /// [B, N] keep masks when the epoch runs over a resampled view (`Method::epoch_view`).
    pub keep: Option<&'a Tensor>,
    /// 0-based epoch (for methods active in a window of epochs).
    pub epoch: usize,
    /// Optimiser steps taken before this one: a global step count that checkpoints restore,
    /// so random draws seeded from it repeat after a resume.
    pub step: i64,
    /// The batch's place in its epoch (0-based index, batch count; 0 of 1 for a lone step):
    /// MLA's projection strength decays within each epoch.
    pub batch: (usize, usize),
    /// The optimizer's learning rate now, and each parameter group's (name, rate).
    pub lr: f64,
    pub group_lrs: &'a [(String, f64)],
    /// Which of the method's sub-steps this is (0 unless `substeps` > 1).
    pub substep: usize,
    /// The step's loss scale (fp16; 1 otherwise): a method that takes the update's gradients
    /// itself (`backward`) takes them through it, so they come back unscaled and an overflow
    /// skips the step.
    pub scale: &'a StepScale,
}

/// What a step's method sees before an epoch.
pub struct EpochContext<'a> {
    pub model: &'a Model,
    pub opt: &'a Optimizer,
    pub train: &'a Split,
    pub val: Option<&'a Split>,
    pub batching: &'a BatchOptions,
    pub epoch: usize,
    pub quiet: bool,
    /// The epoch's mixed precision, for methods that train copies of the model (G-Blending).
    pub amp: Option<Precision>,
    /// The trainer's epoch loop, for methods that train a copy of the model before an epoch
    /// (G-Blending's estimate): handed down so the methods need not reach up to the trainer.
    pub run_epoch: RunEpoch,
}

/// One epoch of a method over a split (`trainer::epoch`): the mean of each logged term.
pub type RunEpoch = fn(&Model, &mut Optimizer, &EpochPlan, &mut dyn Method) -> Result<Vec<(String, f64)>>;

/// Where an epoch's batches come from and what else it needs.
pub struct EpochPlan<'a> {
    pub train: &'a Split,
    /// The validation split, for methods that estimate on it (G-Blending).
    pub val: Option<&'a Split>,
    pub batching: &'a BatchOptions,
    pub epoch: usize,
    pub quiet: bool,
    /// Mixed precision for the forward and loss (`autocast`), None for float32.
    pub amp: Option<Precision>,
}

/// A step's loss: the tensor to differentiate, the batch-mean terms to log, and the method's
/// own diagnostics (coefficients, weights), returned with every step so scripts can plot them.
pub struct StepLoss {
    pub total: Tensor,
    pub terms: Vec<(&'static str, Tensor)>,
    pub diagnostics: Vec<(&'static str, f64)>,
}

/// A method's behaviour; what it is (name, options, modalities, state) is its declaration
/// (`declaration::MethodSpec`). Only `loss` is required.
pub trait Method {
    /// Checks the model suits the method and configures its head; called before every step.
    fn prepare(&self, _model: &Model) -> Result<()> {
        Ok(())
    }
    fn begin_epoch(&mut self, _ctx: &EpochContext) -> Result<()> {
        Ok(())
    }
    /// Parameter groups' new learning rates, asked for in `begin_epoch` (a method that sets each
    /// modality's rate, MSLR); the trainer applies them before the epoch's first step.
    fn lr_changes(&mut self) -> Vec<(String, f64)> {
        Vec::new()
    }
    /// The method's own test-time fusion: prediction scores [N, C] from the fused logits and each
    /// modality's (in the model's order) over a split, e.g. a uni-modal ensemble's mean softmax.
    /// None (the default) predicts with the fused logits; `evaluate(m, split, #{ method })` uses it.
    fn predict(&mut self, _model: &Model, _fused: &Tensor, _per: &[Tensor]) -> Result<Option<Tensor>> {
        Ok(None)
    }
    /// How many loss / backward / update rounds one batch takes on `model` (MLA: one per
    /// modality).
    fn substeps(&self, _model: &Model) -> usize {
        1
    }
    fn loss(&mut self, ctx: &StepContext) -> Result<StepLoss>;
    /// The gradients the update applies, in `params` order, when the method computes them itself
    /// (MMPareto: one backward per loss group, combined by its rule); None (the default) leaves
    /// it to the trainer's one backward of `total`.
    fn backward(&mut self, _ctx: &StepContext, _total: &Tensor, _params: &[(String, Tensor)]) -> Result<Option<Vec<Tensor>>> {
        Ok(None)
    }
    /// The epoch's training items when the method resamples the split (sample-level valuation's
    /// unimodal copies): dataset rows, each with the modalities it keeps as a bit mask (bit m:
    /// modality m kept). Built in `begin_epoch`; None (the default) trains on the split as is.
    fn epoch_view(&self) -> Option<&[(i64, u32)]> {
        None
    }
    /// Whether the optimizer starts afresh (no momentum, no moments) before `epoch`: a method
    /// that alternates learners rebuilds it per phase (ReconBoost).
    fn fresh_optimizer(&self, _epoch: usize) -> bool {
        false
    }
    /// Diagnostics known only after the gradients (MMPareto's cosines and weights), logged
    /// with the step's others.
    fn gradient_diagnostics(&mut self) -> Vec<(&'static str, f64)> {
        Vec::new()
    }
    /// Changes to the gradients (in `params` order) before the update.
    fn adjust_gradients(&mut self, _ctx: &StepContext, _params: &[(String, Tensor)], _grads: &mut [Tensor]) -> Result<()> {
        Ok(())
    }
    fn state(&self) -> Vec<(String, Tensor)> {
        Vec::new()
    }
    fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        match state.first() {
            None => Ok(()),
            Some((name, _)) => Err(Error::arg(format!("has no state, but the checkpoint holds \"{name}\""))),
        }
    }
}

/// Refuses heads with no per-modality additive logits (OGM-GE's scores and MMCosine's normalised
/// blocks need them; scripted methods ask for the same).
pub fn require_additive_head(method: &str, model: &Model) -> Result<()> {
    match model.fusion.kind {
        FusionKind::Concat | FusionKind::Sum => Ok(()),
        other => Err(Error::arg(format!(
            "{method}: needs a concat or sum head, whose logits split into one part per modality; {} fusion has none (the reference code's split of its weight is wrong); use fusion: \"concat\"",
            other.name()
        ))),
    }
}

/// A name made `'static`: methods name themselves and their logged terms with `&'static str`,
/// and a scripted method's names are only known at run time. Each distinct name is leaked once
/// (a method has a handful), so repeated steps allocate nothing.
pub fn intern(name: &str) -> &'static str {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static NAMES: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    let set = names.get_or_insert_with(HashSet::new);
    if let Some(n) = set.get(name) {
        return n;
    }
    let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
    set.insert(leaked);
    leaked
}

/// Per-sample cross-entropy [B] (−log softmax at the label).
pub use crate::tensor::loss::per_sample_cross_entropy as cross_entropy;

/// Batch-mean cross-entropy.
pub fn mean_ce(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    cross_entropy(logits, labels)?.f_mean(Kind::Float).map_err(Error::from)
}

/// The confidence score s = Σ_i softmax(l)[i, y_i], detached (OGM, OPM).
pub fn score_sum(logits: &Tensor, labels: &Tensor) -> Result<f64> {
    (logits
        .f_detach()
        .and_then(|l| l.f_softmax(-1, Kind::Double))
        .and_then(|p| p.f_gather(1, &labels.f_unsqueeze(1)?, false))
        .and_then(|p| p.f_sum(Kind::Double))
        .and_then(|s| s.f_double_value(&[])))
    .map_err(Error::from)
}

/// How a method names modality m in its logged terms and state: "first" / "second" for a
/// two-modality model (the names every two-modality record has always had), the modality's own
/// name beyond two.
pub fn modality_label(model: &Model, m: usize) -> &'static str {
    if model.modalities.len() == 2 {
        ["first", "second"][m]
    } else {
        intern(&model.modalities[m])
    }
}

/// `<prefix>_<label>` for every modality (see `modality_label`), e.g. coef_first, coef_second.
pub fn per_modality(model: &Model, prefix: &str) -> Vec<&'static str> {
    (0..model.modalities.len()).map(|m| intern(&format!("{prefix}_{}", modality_label(model, m)))).collect()
}

/// OGM-GE's ratio for N: each modality's score over each other's, averaged over the others
/// (ρ_m = mean_{j≠m} s_m / (s_j + ε)), as the OGM-GE maintainer proposed for more than two
/// modalities (GeWu-Lab/OGM-GE_CVPR2022 issue #16). For two it is s_m / (s_other + ε) exactly.
pub fn pairwise_ratios(s: &[f64], eps: f64) -> Vec<f64> {
    let n = s.len();
    (0..n).map(|m| (0..n).filter(|&j| j != m).map(|j| s[m] / (s[j] + eps)).sum::<f64>() / (n - 1) as f64).collect()
}

/// The ratio of each modality's score to the mean of the others' (ρ_m = s_m / mean_{j≠m} s_j):
/// OPM's and PMR's form for N. For two it is s_m / s_other exactly.
pub fn ratios_to_mean(s: &[f64]) -> Vec<f64> {
    let n = s.len();
    (0..n).map(|m| s[m] / ((0..n).filter(|&j| j != m).map(|j| s[j]).sum::<f64>() / (n - 1) as f64)).collect()
}

/// A scalar tensor's value.
pub fn value(t: &Tensor) -> Result<f64> {
    t.f_double_value(&[]).map_err(Error::from)
}

/// Which encoder tensors a gradient modulation touches.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Selection {
    /// Every encoder tensor with two or more dimensions (conv kernels and linear weights).
    Weights,
    /// Conv kernels only (4-D), as the official OGM-GE code: nothing on an MLP encoder.
    ConvOnly,
    /// Every tensor (biases and norms too): what a scripted method's `ctx.params` lists by default.
    All,
}

impl Selection {
    pub fn parse(name: &str) -> Selection {
        match name {
            "conv_only" => Selection::ConvOnly,
            "all" => Selection::All,
            _ => Selection::Weights,
        }
    }

    /// Whether a tensor is of the kind this selection takes.
    pub fn keeps(self, t: &Tensor) -> bool {
        match self {
            Selection::Weights => t.dim() >= 2,
            Selection::ConvOnly => t.dim() == 4,
            Selection::All => true,
        }
    }

    /// The indices into `params` of encoder `m`'s selected tensors.
    pub fn pick(self, model: &Model, params: &[(String, Tensor)], m: usize) -> Vec<usize> {
        params.iter().enumerate().filter(|(_, (name, t))| model.encoder_of(name) == Some(m) && self.keeps(t)).map(|(i, _)| i).collect()
    }
}

/// The value-zero, gradient-k copy of x: x·k − (x·k).detach(). Adding it to a detached total
/// routes a scaled gradient into x without changing the forward value by a single bit.
pub fn gradient_only(x: &Tensor, k: f64) -> Result<Tensor> {
    x.f_mul_scalar(k).and_then(|s| s.f_detach().and_then(|d| s.f_sub(&d))).map_err(Error::from)
}

/// A checkpointed scalar list.
pub fn state_tensor(values: &[f64]) -> Tensor {
    Tensor::from_slice(values)
}

/// Reads a named state entry written by `state_tensor`, with the length it must have.
pub fn read_state(method: &str, state: &[(String, Tensor)], name: &str, len: usize) -> Result<Vec<f64>> {
    let t = state
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, t)| t)
        .ok_or_else(|| Error::arg(format!("{method}: the saved state has no \"{name}\"")))?;
    let v = t.f_to_kind(Kind::Double).and_then(|t| t.f_flatten(0, -1)).and_then(|t| Vec::<f64>::try_from(&t))?;
    if v.len() != len {
        return Err(Error::arg(format!("{method}: saved \"{name}\" has {} values, expected {len}", v.len())));
    }
    Ok(v)
}

/// Refuses state entries a method does not know.
pub fn check_state_names(method: &str, state: &[(String, Tensor)], known: &[&str]) -> Result<()> {
    match state.iter().find(|(n, _)| !known.contains(&n.as_str())) {
        Some((n, _)) => {
            Err(Error::arg(format!("{method}: the saved state holds \"{n}\", which this method does not keep ({})", known.join(", "))))
        }
        None => Ok(()),
    }
}
