//! AUG, sustained boosting with adaptive classifier assignment (Jiang, Huang, Yang, NeurIPS
//! 2025; ../shared/baselines-3.md §6), as `train_CREMAD.py` computes it. The model's head is
//! `boosted` (fusion.rs): per modality an embedding into one shared output layer O, plus boosting
//! layers added during training. Each batch runs every encoder once, then one round per modality
//! (its own backward and update; a later round goes through the O just updated):
//!
//! ```text
//! L_m = CE(f_m)                                                   with no boosting layer
//! L_m = CE(f_m) + CE(o_m) + mean_i (1 − r·sg q_i)·CE_i(n_m)        q_i = softmax(o_m)[i, y_i]
//! ```
//!
//! (f_m the whole ensemble, o_m without its newest layer, n_m the newest layer alone; r = 0.5,
//! the "residual"). S_m sums Σ_i softmax(f_m)[i, y_i] over the epoch; after epoch 0 and every
//! `check_every`-th epoch, r = S_first/S_second adds a layer to the second modality when above
//! λ + margin and to the first when below λ − margin. Evaluation mixes merge·f_first +
//! (1 − merge)·f_second (the model's head rule). As released, the added layers are never
//! trained (the optimizer was built before they existed): `aug_new_layers: "frozen"`; "trained"
//! hands them to the run's optimizer with empty state.

use crate::error::{Error, Result};
use crate::tensor::{Kind, Tensor};
use crate::train::declaration::{Keeps, Knob, MethodSpec, Modalities, Reference};
use crate::train::fusion::{FusionKind, HeadRule};
use crate::train::method::{
    check_state_names, cross_entropy, mean_ce, per_modality, read_state, score_sum, state_tensor, EpochContext, Method, StepContext,
    StepLoss,
};
use crate::train::model::Model;
use crate::train::options::{opt, Literal, Resolved, Valid};

pub static SPEC: MethodSpec = MethodSpec {
    name: "aug",
    aliases: &[],
    summary: "sustained boosting: per-modality rounds through a shared output layer, boosting layers added to the modality that lags",
    reference: Reference {
        authors: "Jiang, Huang, Yang",
        venue: "NeurIPS 2025",
        code: "https://github.com/njustkmg/NeurIPS25-AUG",
        commit: "841d079",
    },
    options: &[
        opt("lambda", Literal::Float(1.0), Valid::Float(1e-9, 1e9), "λ: the score ratio the assignment holds"),
        opt("margin", Literal::Float(0.01), Valid::Float(0.0, 1e9), "no layer while the ratio is within λ ± margin"),
        opt(
            "residual",
            Literal::Float(0.5),
            Valid::Float(0.0, 1e3),
            "r: the newest layer's loss weighs 1 − r·q (0.2 in the first release)",
        ),
        opt(
            "check_every",
            Literal::Int(20),
            Valid::Int(1, 1_000_000),
            "check after epoch 0 and every this many epochs (the code: ⌊epochs/10⌋, 20 of CREMA-D's 200)",
        ),
        opt(
            "merge",
            Literal::Float(0.4),
            Valid::Float(0.0, 1.0),
            "evaluation weight of the first modality (two modalities; more mix uniformly)",
        ),
        opt(
            "aug_new_layers",
            Literal::Text("frozen"),
            Valid::Choice(&["frozen", "trained"]),
            "added layers held at their initialisation (as released) or trained",
        ),
        opt(
            "round_zero_grad",
            Literal::Text("skip"),
            Valid::Choice(&["skip", "torch111"]),
            "a later round skips tensors without gradient, or (PyTorch 1.11) steps them with a zero gradient",
        ),
    ],
    variants: &[],
    modalities: Modalities::Any,
    keeps_state: Keeps::Always,
    terms: &["ce_*"],
    diagnostics: &["layers_*", "score_*"],
    knob: Some(Knob { key: "lambda", values: &[Literal::Float(0.9), Literal::Float(1.0), Literal::Float(1.1)] }),
    build: |o, _| Ok(Box::new(Aug::new(o))),
};

pub struct Aug {
    lambda: f64,
    margin: f64,
    residual: f64,
    check_every: usize,
    merge: f64,
    trained: bool,
    torch111: bool,
    /// Σ over the running epoch's batches of Σ_i softmax(f_m)[i, y_i], per modality, and the
    /// epoch they belong to.
    scores: Vec<f64>,
    scored_epoch: Option<usize>,
    /// The later rounds' features from the batch's one encoder pass.
    pending: Vec<Tensor>,
    /// Which tensors had a gradient in this batch's earlier rounds (`torch111`).
    touched: Vec<bool>,
}

impl Aug {
    pub fn new(o: &Resolved) -> Aug {
        Aug {
            lambda: o.float("lambda"),
            margin: o.float("margin"),
            residual: o.float("residual"),
            check_every: o.int("check_every").max(1) as usize,
            merge: o.float("merge"),
            trained: o.text("aug_new_layers") == "trained",
            torch111: o.text("round_zero_grad") == "torch111",
            scores: Vec::new(),
            scored_epoch: None,
            pending: Vec::new(),
            touched: Vec::new(),
        }
    }

    /// Whether the assignment runs after (0-based) epoch `e`.
    pub fn checks_after(&self, e: usize) -> bool {
        e == 0 || (e + 1).is_multiple_of(self.check_every)
    }

    /// The modality that gets a layer from the epoch's score sums, if any: for two the code's
    /// test on S_first/S_second; beyond two the one with the lowest S_m/mean_{j≠m} S_j, when
    /// that is below λ − margin.
    pub fn assign(&self, s: &[f64]) -> Option<usize> {
        if s.len() == 2 {
            let r = s[0] / s[1];
            return if r > self.lambda + self.margin {
                Some(1)
            } else if r < self.lambda - self.margin {
                Some(0)
            } else {
                None
            };
        }
        let n = s.len();
        let r: Vec<f64> = (0..n).map(|m| s[m] / ((0..n).filter(|&j| j != m).map(|j| s[j]).sum::<f64>() / (n - 1) as f64)).collect();
        let (m, low) = r.iter().enumerate().fold((0, f64::INFINITY), |(bm, bv), (m, &v)| if v < bv { (m, v) } else { (bm, bv) });
        (low < self.lambda - self.margin).then_some(m)
    }
}

/// L_m from the boosted head's parts (f, o, n) for labels y: CE(f) alone without a boosting
/// layer, else CE(f) + CE(o) + mean_i (1 − r·sg q_i)·CE_i(n).
pub fn round_loss(f: &Tensor, o: &Tensor, n: Option<&Tensor>, y: &Tensor, residual: f64) -> Result<Tensor> {
    let base = mean_ce(f, y)?;
    let Some(n) = n else { return Ok(base) };
    let q = o.f_detach()?.f_softmax(-1, Kind::Float)?.f_gather(1, &y.f_unsqueeze(1)?, false)?.f_squeeze_dim(1)?;
    let weight = q.f_mul_scalar(-residual)?.f_add_scalar(1.0)?;
    let newest = cross_entropy(n, y)?.f_mul(&weight)?.f_mean(Kind::Float)?;
    Ok(base.f_add(&mean_ce(o, y)?)?.f_add(&newest)?)
}

impl Method for Aug {
    fn prepare(&self, model: &Model) -> Result<()> {
        if model.fusion.kind != FusionKind::Boosted {
            return Err(Error::arg(format!(
                "aug: trains per-modality embeddings into one shared output layer and adds boosting layers to it: build the model with fusion: \"boosted\", not {}",
                model.fusion.kind.name()
            )));
        }
        let n = model.modalities.len();
        if n > 2 && self.merge != 0.4 {
            return Err(Error::arg(format!(
                "aug: merge weighs the first of two modalities, and this model has {n}: leave merge at its default (more modalities mix uniformly)"
            )));
        }
        model.head_rule.set(if n == 2 { HeadRule::Mix { first: self.merge } } else { HeadRule::Linear });
        Ok(())
    }

    fn begin_epoch(&mut self, ctx: &EpochContext) -> Result<()> {
        // The check after the epoch that filled `scores` (the code checks after its evaluation,
        // so that evaluation is without the new layer, as here).
        if let Some(e) = self.scored_epoch.take() {
            if ctx.epoch == e + 1 && self.checks_after(e) && self.scores.iter().all(|s| *s > 0.0) {
                if let Some(m) = self.assign(&self.scores) {
                    ctx.model.grow_booster(m, self.trained)?;
                }
            }
        }
        self.scores = vec![0.0; ctx.model.modalities.len()];
        Ok(())
    }

    fn substeps(&self, model: &Model) -> usize {
        model.modalities.len()
    }

    fn loss(&mut self, ctx: &StepContext) -> Result<StepLoss> {
        let model = ctx.model;
        let n = model.modalities.len();
        let m = ctx.substep;
        let x = if m == 0 {
            let mut all = model.encode_all(ctx.inputs, true)?;
            self.pending = all.split_off(1);
            self.pending.reverse(); // popped in the model's order
            all.pop().ok_or_else(|| Error::arg("aug: no features"))?
        } else {
            self.pending.pop().ok_or_else(|| Error::arg("aug: a later round came without the first"))?
        };
        let (f, o, newest) = model.fusion.boosted_parts(m, &x)?;
        let loss = round_loss(&f, &o, newest.as_ref(), ctx.labels, self.residual)?;
        if self.scores.len() != n || self.scored_epoch.is_some_and(|e| e != ctx.epoch) {
            self.scores = vec![0.0; n];
        }
        self.scores[m] += score_sum(&f, ctx.labels)?;
        self.scored_epoch = Some(ctx.epoch);
        let counts = model.fusion.booster_counts();
        let diagnostics =
            if m == 0 { per_modality(model, "layers").into_iter().zip(counts.iter().map(|&k| k as f64)).collect() } else { Vec::new() };
        Ok(StepLoss { total: loss.shallow_clone(), terms: vec![(per_modality(model, "ce")[m], loss)], diagnostics })
    }

    fn adjust_gradients(&mut self, ctx: &StepContext, params: &[(String, Tensor)], grads: &mut [Tensor]) -> Result<()> {
        if !self.torch111 {
            return Ok(());
        }
        // PyTorch 1.11's zero_grad leaves zero tensors: a tensor stepped in an earlier round of
        // this batch is stepped again with a zero gradient (momentum and weight decay once more).
        if ctx.substep == 0 || self.touched.len() != grads.len() {
            self.touched = grads.iter().map(Tensor::defined).collect();
            return Ok(());
        }
        for (i, g) in grads.iter_mut().enumerate() {
            if !g.defined() && self.touched[i] {
                *g = params[i].1.f_zeros_like()?;
            }
            self.touched[i] |= g.defined();
        }
        Ok(())
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![("scores".to_string(), state_tensor(&self.scores))];
        out.push(("scored_epoch".to_string(), state_tensor(&[self.scored_epoch.map_or(-1.0, |e| e as f64)])));
        out
    }

    fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        check_state_names("aug", state, &["scores", "scored_epoch"])?;
        if state.is_empty() {
            self.scores.clear();
            self.scored_epoch = None;
            return Ok(());
        }
        let n = state.iter().find(|(k, _)| k == "scores").map_or(0, |(_, t)| t.numel());
        self.scores = read_state("aug", state, "scores", n)?;
        let e = read_state("aug", state, "scored_epoch", 1)?[0];
        self.scored_epoch = (e >= 0.0).then_some(e as usize);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::declaration::with_options;
    use crate::train::options::Value;

    fn aug(pairs: &[(&str, Value)]) -> Aug {
        let given: Vec<(String, Value)> = pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        with_options(&SPEC, &given, |o| Ok(Aug::new(o))).unwrap()
    }

    #[test]
    fn the_loss_of_the_specs_example() {
        // C = 2, y = 0: o = (1, 0), n = (0, 1), f = (1, 1): CE(f) 0.69315, CE(o) 0.31326,
        // q 0.73106, CE(n) 1.31326 weighted 0.63447 → 0.83323; total 1.83963.
        let t = |a: f32, b: f32| Tensor::from_slice(&[a, b]).reshape([1, 2]);
        let y = Tensor::from_slice(&[0i64]);
        let l = round_loss(&t(1.0, 1.0), &t(1.0, 0.0), Some(&t(0.0, 1.0)), &y, 0.5).unwrap().double_value(&[]);
        assert!((l - 1.83963).abs() < 1e-5, "{l}");
        let plain = round_loss(&t(1.0, 1.0), &t(1.0, 1.0), None, &y, 0.5).unwrap().double_value(&[]);
        assert!((plain - 2f64.ln()).abs() < 1e-6);
    }

    #[test]
    fn checks_and_assignments_of_the_spec() {
        // E = 200, every 20: after epochs 0, 19, 39, ..., 199 (11 checks).
        let a = aug(&[]);
        let checks: Vec<usize> = (0..200).filter(|&e| a.checks_after(e)).collect();
        assert_eq!(checks.len(), 11);
        assert_eq!(&checks[..3], &[0, 19, 39]);
        assert_eq!(checks[10], 199);
        // r = 1.3 adds to the second modality, 0.98 to the first, 1.005 to none.
        assert_eq!(a.assign(&[1.3, 1.0]), Some(1));
        assert_eq!(a.assign(&[0.98, 1.0]), Some(0));
        assert_eq!(a.assign(&[1.005, 1.0]), None);
        // Three: the lowest ratio to the others' mean, when below λ − margin.
        assert_eq!(a.assign(&[1.0, 2.0, 2.0]), Some(0));
        assert_eq!(a.assign(&[1.0, 1.0, 1.0]), None);
    }
}
