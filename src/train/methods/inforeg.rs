//! InfoReg, adaptive unimodal regulation (Huang, Wei, Yang, Hu, CVPR 2025; ../shared/baselines-3.md §1).
//! While the leading modality's "Fisher trace" still grows (its learning window is open), its
//! encoder is pulled towards its weights at the epoch start: g ← g + β_m·(θ_m − θ̄_m).
//!
//! `variant: "code"` (the default) is the authors' latest tree (HEAD): the warm-up loss
//! L = CE_f + Σ_m CE_m on the split logits; scores s_m are batch *sums* of the true class's
//! probability; the leader (s_first > s_second) gets β = 0.95·exp(tanh(s_first − s_second)), the
//! second as leader 0.1·exp(tanh(...)), when the window statistic of the *first* modality's trace
//! exceeds 0.05. The window statistic is the relative change of a ten-epoch moving average of the
//! trace, k = (T(e−1) − T(e−11)) / Σ_{j=e−10}^{e−1} T(j) with T(j < 0) = 0, and k = 1 at epoch 0.
//! The trace T_m(e) is, over epoch e's steps, Σ of each conv / linear weight's mean squared
//! gradient after the pull (`grad_stats`). Two modalities only (its two constants belong to the
//! places of a pair).
//!
//! `variant: "paper"` is the paper's rule (Eqs. 9-16, Alg. 1) for any number of modalities: with
//! mean scores s̄_m, Δ_m = mean over the modalities scoring lower of (s̄_m − s̄_m'), and every m with
//! Δ_m > 0 whose own window (T(e−1) − T(e−2)) / T(e−1) exceeds 0.04 is pulled with
//! α_m = exp(0.9·tanh Δ_m); nothing before epoch 2.
//!
//! The epoch's start is seen at its first step (so `train_step` loops work as `train_epoch`): the
//! previous epoch's traces are closed, the windows computed and the anchors (M10) taken.

use crate::error::{Error, Result};
use crate::tensor::Tensor;
use crate::train::anchors::Anchors;
use crate::train::declaration::{Keeps, Knob, MethodSpec, Modalities, Reference, Variant};
use crate::train::fusion::FusionKind;
use crate::train::grad_stats::EpochTraces;
use crate::train::loss;
use crate::train::method::{check_state_names, per_modality, read_state, score_sum, state_tensor, Method, StepContext, StepLoss};
use crate::train::model::Model;
use crate::train::options::{opt, Literal, Resolved, Valid};

pub static SPEC: MethodSpec = MethodSpec {
    name: "inforeg",
    aliases: &[],
    summary: "pull the leading modality's encoder towards its epoch-start weights while its gradient trace still grows",
    reference: Reference {
        authors: "Huang, Wei, Yang, Hu",
        venue: "CVPR 2025",
        code: "https://github.com/GeWu-Lab/InfoReg_CVPR2025",
        commit: "939b2ed",
    },
    options: &[
        opt("variant", Literal::Text("code"), Valid::Choice(&["code", "paper"]), "the authors' released rule, or the paper's (any number of modalities)"),
        opt("heads", Literal::Text("split"), Valid::Choice(&["split", "separate"]), "unimodal logits: the concat head's split (HEAD) or separate heads (the first release)"),
        opt("unimodal_loss", Literal::Bool(true), Valid::Bool, "train the unimodal losses too (the code; the paper's InfoReg* ), or the fused loss alone"),
        opt("k_threshold", Literal::Float(0.05), Valid::Float(0.0, f64::INFINITY), "the window is open while its statistic exceeds this"),
        opt("beta_first", Literal::Float(0.95), Valid::Float(0.0, 1e3), "code: the pull's scale when the first modality leads"),
        opt("beta_second", Literal::Float(0.1), Valid::Float(0.0, 1e3), "code: the pull's scale when the second modality leads"),
        opt("beta", Literal::Float(0.9), Valid::Float(0.0, 1e3), "paper: α_m = exp(beta·tanh Δ_m)"),
        opt("window_stat", Literal::Text("ma10"), Valid::Choice(&["ma10", "epoch"]), "the window statistic: the code's ten-epoch moving average, or the paper's one-epoch growth"),
        opt("window_source", Literal::Text("first"), Valid::Choice(&["first", "own"]), "whose trace opens the window: the first modality's (code) or each modality's own"),
        opt("second_branch", Literal::Text("live"), Valid::Choice(&["live", "dead"]), "\"dead\": the first release's unreachable second branch (the second modality is never pulled)"),
        opt("start_epoch", Literal::Int(0), Valid::Int(0, i64::MAX), "no pull before this 0-based epoch"),
    ],
    variants: &[Variant {
        name: "paper",
        help: "the paper's rule: Δ over lower-scoring modalities, α = exp(0.9·tanh Δ), each modality's own one-epoch window at 0.04, from epoch 2",
        values: &[
            ("k_threshold", Literal::Float(0.04)),
            ("window_stat", Literal::Text("epoch")),
            ("window_source", Literal::Text("own")),
            ("start_epoch", Literal::Int(2)),
        ],
    }],
    modalities: Modalities::Any,
    keeps_state: Keeps::Always,
    terms: &["ce_fused", "ce_*"],
    diagnostics: &["beta_*", "k_*", "trace_*"],
    knob: Some(Knob { key: "k_threshold", values: &[Literal::Float(0.02), Literal::Float(0.05), Literal::Float(0.1)] }),
    build: |o, _| Ok(Box::new(InfoReg::new(o))),
};

/// The code's window statistic at epoch e = history.len(): the relative change of the ten-epoch
/// moving average, (T(e−1) − T(e−11)) / Σ_{j=e−10}^{e−1} T(j), T(j < 0) = 0; 1 at epoch 0, and 0
/// when the traces sum to 0.
pub fn window_ma10(history: &[f64]) -> f64 {
    let e = history.len();
    if e == 0 {
        return 1.0;
    }
    let at = |j: isize| if j < 0 { 0.0 } else { history[j as usize] };
    let e = e as isize;
    let sum: f64 = (e - 10..e).map(at).sum();
    if sum == 0.0 {
        return 0.0;
    }
    (at(e - 1) - at(e - 11)) / sum
}

/// The paper's window statistic (Eq. 11): (T(e−1) − T(e−2)) / T(e−1), T(j < 0) = 0; 1 at epoch 0,
/// and 0 when T(e−1) is 0.
pub fn window_epoch(history: &[f64]) -> f64 {
    match history {
        [] => 1.0,
        [.., last] if *last == 0.0 => 0.0,
        [last] => (last - 0.0) / last,
        [.., before, last] => (last - before) / last,
    }
}

/// The code's pull scales for (first, second) from the batch score sums.
pub fn code_betas(s: [f64; 2], open: [bool; 2], beta: [f64; 2], second_live: bool) -> [f64; 2] {
    if s[0] > s[1] && open[0] {
        [beta[0] * (s[0] - s[1]).tanh().exp(), 0.0]
    } else if s[0] < s[1] && open[1] && second_live {
        [0.0, beta[1] * (s[1] - s[0]).tanh().exp()]
    } else {
        [0.0, 0.0]
    }
}

/// The paper's α_m from mean scores: Δ_m = mean over the modalities scoring lower of
/// (s̄_m − s̄_m'); α_m = exp(beta·tanh Δ_m) where Δ_m > 0, None where no modality scores lower.
pub fn paper_alphas(means: &[f64], beta: f64) -> Vec<Option<f64>> {
    means
        .iter()
        .map(|&s| {
            let lower: Vec<f64> = means.iter().filter(|&&o| o < s).map(|&o| s - o).collect();
            (!lower.is_empty()).then(|| (beta * (lower.iter().sum::<f64>() / lower.len() as f64).tanh()).exp())
        })
        .collect()
}

pub struct InfoReg {
    paper: bool,
    separate: bool,
    unimodal_loss: bool,
    k_threshold: f64,
    beta: [f64; 2],
    paper_beta: f64,
    ma10: bool,
    own_window: bool,
    second_live: bool,
    start_epoch: usize,
    /// The epoch whose first step has been seen (its anchors taken); None before any step.
    epoch: Option<usize>,
    anchors: Anchors,
    traces: EpochTraces,
    /// Each modality's window statistic and whether its window is open, for the current epoch.
    k: Vec<f64>,
    /// The current step's pull scales, per modality.
    betas: Vec<f64>,
}

impl InfoReg {
    pub fn new(o: &Resolved) -> InfoReg {
        InfoReg {
            paper: o.text("variant") == "paper",
            separate: o.text("heads") == "separate",
            unimodal_loss: o.boolean("unimodal_loss"),
            k_threshold: o.float("k_threshold"),
            beta: [o.float("beta_first"), o.float("beta_second")],
            paper_beta: o.float("beta"),
            ma10: o.text("window_stat") == "ma10",
            own_window: o.text("window_source") == "own",
            second_live: o.text("second_branch") == "live",
            start_epoch: o.int("start_epoch") as usize,
            epoch: None,
            anchors: Anchors::default(),
            traces: EpochTraces::new(0),
            k: Vec::new(),
            betas: Vec::new(),
        }
    }

    /// At an epoch's first step: close the previous epoch's traces, compute the windows from the
    /// histories and anchor every encoder tensor where it is now.
    fn start_epoch(&mut self, model: &Model, epoch: usize) -> Result<()> {
        let n = model.modalities.len();
        if self.traces.current.len() != n {
            self.traces = EpochTraces::new(n);
        }
        if self.epoch.is_some() {
            self.traces.close_epoch();
        }
        let stat = |h: &[f64]| if self.ma10 { window_ma10(h) } else { window_epoch(h) };
        self.k = (0..n).map(|m| stat(&self.traces.history[if self.own_window { m } else { 0 }])).collect();
        self.anchors = Anchors::take(&model.trainable_parameters(), |name| model.encoder_of(name).is_some())?;
        self.epoch = Some(epoch);
        Ok(())
    }

    fn open(&self, m: usize, epoch: usize) -> bool {
        epoch >= self.start_epoch && self.k[m] > self.k_threshold
    }
}

impl Method for InfoReg {
    fn prepare(&self, model: &Model) -> Result<()> {
        let n = model.modalities.len();
        if !self.paper && n != 2 {
            return Err(Error::arg(format!(
                "inforeg: the released rule is for two modalities (its constants 0.95 and 0.1 belong to the first and second of a pair), and this model has {n}: use variant: \"paper\", whose rule holds for any number"
            )));
        }
        match (self.separate, model.fusion.kind) {
            (true, FusionKind::ConcatHeads) | (false, FusionKind::Concat | FusionKind::Sum) => Ok(()),
            (true, other) => Err(Error::arg(format!(
                "inforeg: heads: \"separate\" scores each modality with its own head: build the model with heads: \"separate\" (it has {} fusion)",
                other.name()
            ))),
            (false, other) => Err(Error::arg(format!(
                "inforeg: heads: \"split\" scores each modality with the concat head's split logits, and {} fusion has none: use fusion: \"concat\", or heads: \"separate\" on a model built with heads: \"separate\"",
                other.name()
            ))),
        }
    }

    fn loss(&mut self, ctx: &StepContext) -> Result<StepLoss> {
        if self.epoch != Some(ctx.epoch) {
            self.start_epoch(ctx.model, ctx.epoch)?;
        }
        let model = ctx.model;
        let fwd = model.forward_all(ctx.inputs, true)?;
        let l = if self.unimodal_loss {
            loss::warmup_all(&fwd.logits, ctx.labels, &model.modalities)?
        } else {
            loss::fused_only_all(&fwd.logits, ctx.labels, &model.modalities)?
        };
        let sums = fwd.logits.per.iter().map(|p| score_sum(p, ctx.labels)).collect::<Result<Vec<_>>>()?;
        let n = sums.len();
        let open: Vec<bool> = (0..n).map(|m| self.open(m, ctx.epoch)).collect();
        self.betas = if self.paper {
            let b = ctx.labels.size()[0].max(1) as f64;
            let means: Vec<f64> = sums.iter().map(|s| s / b).collect();
            paper_alphas(&means, self.paper_beta).into_iter().zip(&open).map(|(a, &o)| if o { a.unwrap_or(0.0) } else { 0.0 }).collect()
        } else {
            code_betas([sums[0], sums[1]], [open[0], open[1]], self.beta, self.second_live).to_vec()
        };
        let mut diagnostics: Vec<(&'static str, f64)> = per_modality(model, "beta").into_iter().zip(self.betas.iter().copied()).collect();
        diagnostics.extend(per_modality(model, "k").into_iter().zip(self.k.iter().copied()));
        // The last closed epoch's traces, from the second epoch on (a NaN would not survive a
        // run record's JSON).
        if self.traces.history.first().is_some_and(|h| !h.is_empty()) {
            diagnostics.extend(per_modality(model, "trace").into_iter().zip(self.traces.history.iter().map(|h| h[h.len() - 1])));
        }
        Ok(StepLoss { total: l.total, terms: l.terms, diagnostics })
    }

    fn adjust_gradients(&mut self, ctx: &StepContext, params: &[(String, Tensor)], grads: &mut [Tensor]) -> Result<()> {
        let model = ctx.model;
        let n = model.modalities.len();
        let _guard = tch::no_grad_guard();
        for ((name, p), g) in params.iter().zip(grads.iter_mut()) {
            if let Some(m) = model.encoder_of(name) {
                if self.betas.get(m).is_some_and(|&b| b > 0.0) {
                    *g = self.anchors.pull(name, p, g, self.betas[m])?;
                }
            }
        }
        // The trace reads the gradients after the pull, over conv and linear weights, as the code.
        for m in 0..n {
            let weights: Vec<&Tensor> = params
                .iter()
                .zip(grads.iter())
                .filter(|((name, p), _)| model.encoder_of(name) == Some(m) && p.dim() >= 2)
                .map(|(_, g)| g)
                .collect();
            self.traces.add(m, &weights)?;
        }
        Ok(())
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let Some(epoch) = self.epoch else { return Vec::new() };
        let mut out = vec![("epoch".to_string(), state_tensor(&[epoch as f64])), ("k".into(), state_tensor(&self.k))];
        out.extend(self.traces.state("trace_"));
        out.extend(self.anchors.state("anchor."));
        out
    }

    fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        let scalars: Vec<(String, Tensor)> =
            state.iter().filter(|(n, _)| !n.starts_with("anchor.")).map(|(n, t)| (n.clone(), t.shallow_clone())).collect();
        check_state_names("inforeg", &scalars, &["epoch", "k", "trace_current", "trace_history", "anchor.<encoder tensor>"])?;
        if state.is_empty() {
            self.epoch = None;
            return Ok(());
        }
        self.epoch = Some(read_state("inforeg", state, "epoch", 1)?[0] as usize);
        let groups = state.iter().find(|(n, _)| n == "k").map_or(0, |(_, t)| t.numel());
        self.k = read_state("inforeg", state, "k", groups)?;
        self.traces = EpochTraces::from_state(state, "trace_", groups).map_err(|e| Error::arg(format!("inforeg: {e}")))?;
        let device = state.iter().find(|(n, _)| n.starts_with("anchor.")).map_or(tch::Device::Cpu, |(_, t)| t.device());
        self.anchors = Anchors::from_state(state, "anchor.", device)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-5, "{a} != {b}");
    }

    #[test]
    fn the_window_statistics_of_the_spec() {
        // Traces (2, 4, 5): k = 1 at e = 1, 4/6 at e = 2, 5/11 at e = 3; 1 at e = 0.
        let h = [2.0, 4.0, 5.0];
        close(window_ma10(&[]), 1.0);
        close(window_ma10(&h[..1]), 1.0);
        close(window_ma10(&h[..2]), 4.0 / 6.0);
        close(window_ma10(&h[..3]), 5.0 / 11.0);
        // T(j) = j + 1 at e = 12: (12 − 2)/75 (code) and (12 − 11)/12 (paper).
        let h: Vec<f64> = (0..12).map(|j| j as f64 + 1.0).collect();
        close(window_ma10(&h), 10.0 / 75.0);
        close(window_epoch(&h), 1.0 / 12.0);
        // A constant trace opens the code's window for epochs 0-10 exactly (k = 1/e, then 0).
        let open: Vec<usize> = (0..20).filter(|&e| window_ma10(&vec![3.0; e]) > 0.05).collect();
        assert_eq!(open, (0..=10).collect::<Vec<_>>());
        assert_eq!(window_ma10(&[0.0, 0.0]), 0.0);
    }

    #[test]
    fn the_coefficients_of_the_spec() {
        let b = code_betas([2.6, 1.4], [true, true], [0.95, 0.1], true);
        close(b[0], 2.18663);
        assert_eq!(b[1], 0.0);
        let b = code_betas([1.4, 2.6], [true, true], [0.95, 0.1], true);
        close(b[1], 0.23017);
        assert_eq!(code_betas([1.4, 2.6], [true, true], [0.95, 0.1], false), [0.0, 0.0], "the dead branch never pulls");
        assert_eq!(code_betas([2.6, 1.4], [false, true], [0.95, 0.1], true), [0.0, 0.0], "a closed window never pulls");
        close(paper_alphas(&[0.5, 0.0], 0.9)[0].unwrap(), 1.51574);
        let a = paper_alphas(&[0.9, 0.5, 0.6], 0.9);
        close(a[0].unwrap(), 1.35356);
        assert!(a[1].is_none());
        close(a[2].unwrap(), 1.09385);
    }
}
