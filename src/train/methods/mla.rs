//! MLA, multimodal learning with alternating unimodal adaptation (Zhang et al., CVPR 2024;
//! ../shared/baselines.md §6).
//!
//! The model has one classifier h shared by every modality (fusion "shared"). Each batch takes
//! one round per modality, in the model's order: L_m = CE(h(x_m)), backward, an optional
//! projection of h's weight gradient, the optimiser's update. Every encoder runs once, in the
//! first round (so batch norm sees each batch once, as in the reference); later rounds reuse
//! their modality's features, which earlier updates did not touch, through the updated h.
//! There is no fused loss in training; the logged loss is the mean of the rounds' L_m. For
//! more than two modalities the alternation simply goes round all of them (MLA's own rule:
//! its paper alternates over M modalities).
//!
//! Projection of h's weight gradient (the OWM/RLS plug-in): P [d, d] starts as I and is shared
//! by both modalities across all steps; from the second round on, with r the batch-mean
//! feature (detached) and α_t = 0.1^(1 + batch/n_batches), k = P·rᵀ, P ← P − k·kᵀ/(α_t + r·k),
//! P ← P/‖P‖_F, then grad_W ← grad_W·Pᵀ ("replace", the paper) or grad_W + grad_W·Pᵀ ("add",
//! BalanceBenchmark). "off" (the default) is the released code, whose name test never matches
//! so the projection never fires. "authors" is "replace" as the authors' code ran it before its
//! "Fix bugs" commit (11ae1ee; tree 4735bbc, utils/utils.py GSPlugin): k·kᵀ divided elementwise
//! by the outer product α + k·r, where OWM and the spec divide by the scalar α + r·k.
//!
//! At test time the fused logits are ½·l_first + ½·l_second with `fusion: "fixed"` (av_alpha
//! weighs the first; beyond two modalities only the default 0.5 is defined, and it means the
//! plain mean of all of them), or per-sample entropy gates with `fusion: "entropy"` (over every
//! modality; the model's head rule, so evaluation uses them too).

use crate::error::{Error, Result};
use crate::tensor::{Kind, Tensor};
use crate::train::declaration::{Keeps, Knob, MethodSpec, Modalities, Reference};
use crate::train::fusion::{FusionKind, HeadRule};
use crate::train::method::{check_state_names, mean_ce, read_state, state_tensor, Method, StepContext, StepLoss};
use crate::train::model::Model;
use crate::train::options::{opt, Literal, Resolved, Valid};

pub static SPEC: MethodSpec = MethodSpec {
    name: "mla",
    aliases: &[],
    summary: "multimodal learning alternately: one modality per sub-step through a shared head, entropy-gated fusion at test time",
    reference: Reference {
        authors: "Zhang et al.",
        venue: "CVPR 2024",
        code: "https://github.com/Cecile-hi/Multimodal-Learning-with-Alternating-Unimodal-Adaptation",
        commit: "ab6c184",
    },
    options: &[
        opt(
            "projection",
            Literal::Text("off"),
            Valid::Choice(&["off", "replace", "add", "authors"]),
            "gradient projection of the shared head between modalities",
        ),
        opt("fusion", Literal::Text("entropy"), Valid::Choice(&["entropy", "fixed"]), "test-time fusion: entropy gate or a fixed mix"),
        opt("av_alpha", Literal::Float(0.5), Valid::Float(0.0, 1.0), "the fixed mix's weight of the first modality"),
    ],
    variants: &[],
    modalities: Modalities::Any,
    keeps_state: Keeps::When(|o| o.text("projection") != "off", "when it projects gradients"),
    terms: &["ce_*"],
    diagnostics: &["projection_alpha"],
    knob: Some(Knob { key: "fusion", values: &[Literal::Text("entropy"), Literal::Text("fixed")] }),
    build: |o, _| Ok(Box::new(Mla::new(o)?)),
};

#[derive(Clone, Copy, PartialEq)]
enum Projection {
    Off,
    Replace,
    Add,
    /// "replace" with the authors' denominator before their "Fix bugs" commit (11ae1ee; the
    /// tree is 4735bbc): α + k·r, an outer product [d, d], dividing k·kᵀ elementwise.
    Authors,
}

pub struct Mla {
    projection: Projection,
    rule: HeadRule,
    /// P [d, d] (created at the first projected round).
    p: Option<Tensor>,
    /// Modality rounds taken so far (the plug-in's counter).
    rounds: u64,
    /// The later modalities' features from the first round, for their rounds (in order).
    pending: Vec<Tensor>,
    /// The batch-mean feature of the current round, for the projection.
    mean_feature: Option<Tensor>,
}

/// One RLS update of P with the row vector r [1, d] and strength α: P − k·kᵀ/(α + r·k), k = P·rᵀ,
/// then scaled to unit Frobenius norm. With `outer`, the authors' pre-fix denominator: the
/// [d, d] matrix α + k·r, dividing elementwise (P then loses its symmetry).
pub fn update_projection(p: &Tensor, r: &Tensor, alpha: f64, outer: bool) -> Result<Tensor> {
    let op = "mla";
    let k = p.f_matmul(&r.f_t_copy().map_err(|e| Error::torch(op, e))?)?;
    let denom =
        if outer { k.f_matmul(r).and_then(|x| x.f_add_scalar(alpha))? } else { r.f_matmul(&k).and_then(|x| x.f_add_scalar(alpha))? };
    let next = (|| -> std::result::Result<_, tch::TchError> { p.f_sub(&k.f_matmul(&k.f_t_copy()?)?.f_div(&denom)?) })()?;
    let norm = next.f_square().and_then(|s| s.f_sum(Kind::Double)).and_then(|s| s.f_double_value(&[]))?.sqrt();
    next.f_div_scalar(norm).map_err(Error::from)
}

impl Mla {
    pub fn new(opts: &Resolved) -> Result<Mla> {
        let projection = match opts.text("projection") {
            "replace" => Projection::Replace,
            "add" => Projection::Add,
            "authors" => Projection::Authors,
            _ => Projection::Off,
        };
        let rule = if opts.text("fusion") == "entropy" { HeadRule::EntropyGate } else { HeadRule::Mix { first: opts.float("av_alpha") } };
        Ok(Mla { projection, rule, p: None, rounds: 0, pending: Vec::new(), mean_feature: None })
    }

    /// The projection matrix, once a projected round has created it.
    pub fn projection_matrix(&self) -> Option<&Tensor> {
        self.p.as_ref()
    }
}

impl Method for Mla {
    fn prepare(&self, model: &Model) -> Result<()> {
        if model.fusion.kind != FusionKind::Shared {
            return Err(Error::arg(format!(
                "mla: trains one classifier shared by every modality: build the model with fusion: \"shared\" (and encoders whose features have one size), not {}",
                model.fusion.kind.name()
            )));
        }
        let rule = match self.rule {
            HeadRule::Mix { first } if model.modalities.len() > 2 => {
                if first != 0.5 {
                    return Err(Error::arg(format!(
                        "mla: av_alpha weighs the first of two modalities, and this model has {}: leave av_alpha at 0.5 (the mean of every modality's logits) or use fusion: \"entropy\"",
                        model.modalities.len()
                    )));
                }
                HeadRule::Linear // the shared head's mean of every modality's logits
            }
            rule => rule,
        };
        model.head_rule.set(rule);
        Ok(())
    }

    fn substeps(&self, model: &Model) -> usize {
        model.modalities.len()
    }

    fn loss(&mut self, ctx: &StepContext) -> Result<StepLoss> {
        let model = ctx.model;
        let (features, name) = if ctx.substep == 0 {
            let mut all = model.encode_all(ctx.inputs, true)?;
            self.pending = all.split_off(1);
            self.pending.reverse(); // popped in the model's order
            (all.pop().expect("one"), crate::train::method::per_modality(model, "ce")[0])
        } else {
            let f = self.pending.pop().ok_or_else(|| Error::arg("mla: a later round came without the first"))?;
            (f, crate::train::method::per_modality(model, "ce")[ctx.substep])
        };
        let logits = model.fusion.shared_logits(&features)?;
        let l = mean_ce(&logits, ctx.labels)?;
        self.mean_feature = Some(features.f_detach().and_then(|f| f.f_mean_dim([0i64].as_slice(), true, Kind::Float))?);
        let (b, n) = ctx.batch;
        let alpha = 0.1f64.powf(1.0 + b as f64 / n.max(1) as f64);
        Ok(StepLoss {
            total: l.shallow_clone(),
            terms: vec![(name, l)],
            diagnostics: if ctx.substep == 0 { vec![("projection_alpha", alpha)] } else { Vec::new() },
        })
    }

    fn adjust_gradients(&mut self, ctx: &StepContext, params: &[(String, Tensor)], grads: &mut [Tensor]) -> Result<()> {
        let op = "mla";
        let _guard = tch::no_grad_guard();
        let first_round = self.rounds == 0;
        self.rounds += 1;
        if self.projection == Projection::Off || first_round {
            return Ok(());
        }
        let r = self.mean_feature.take().ok_or_else(|| Error::arg("mla: no features for the projection"))?;
        let d = r.size()[1];
        let p = match self.p.take() {
            Some(p) => p,
            None => Tensor::f_eye(d, (Kind::Float, r.device()))?,
        };
        let (b, n) = ctx.batch;
        let alpha = 0.1f64.powf(1.0 + b as f64 / n.max(1) as f64);
        let p = update_projection(&p, &r, alpha, self.projection == Projection::Authors)?;
        let i = params
            .iter()
            .position(|(name, _)| name == "fusion.fc_out.weight")
            .ok_or_else(|| Error::arg("mla: the shared head has no fusion.fc_out.weight"))?;
        if grads[i].defined() {
            let projected = grads[i].f_matmul(&p.f_t_copy().map_err(|e| Error::torch(op, e))?)?;
            grads[i] = if self.projection == Projection::Add { grads[i].f_add(&projected)? } else { projected };
        }
        self.p = Some(p);
        Ok(())
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![("rounds".to_string(), state_tensor(&[self.rounds as f64]))];
        if let Some(p) = &self.p {
            // Checkpoint state is written from the host.
            out.push(("projection".into(), p.to_device(tch::Device::Cpu)));
        }
        out
    }

    fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        check_state_names("mla", state, &["rounds", "projection"])?;
        if state.is_empty() {
            return Ok(());
        }
        self.rounds = read_state("mla", state, "rounds", 1)?[0] as u64;
        self.p = match state.iter().find(|(n, _)| n == "projection") {
            Some((_, t)) if t.dim() == 2 && t.size()[0] == t.size()[1] => Some(t.f_to_kind(Kind::Float)?),
            Some((_, t)) => {
                return Err(Error::arg(format!("mla: the saved projection must be a square [d, d] matrix, got {:?}", t.size())))
            }
            None => None,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_projection_stays_symmetric_with_unit_norm() {
        let mut p = Tensor::eye(4, (Kind::Float, tch::Device::Cpu));
        for (i, r) in [[1.0f32, 0.5, -0.2, 0.1], [0.3, -1.0, 0.4, 2.0], [0.0, 0.2, 0.2, -0.5]].iter().enumerate() {
            p = update_projection(&p, &Tensor::from_slice(r).reshape([1, 4]), 0.1f64.powf(1.0 + i as f64 / 3.0), false).unwrap();
            let asym = f64::try_from(p.f_sub(&p.tr()).unwrap().abs().max()).unwrap();
            let norm = f64::try_from(p.square().sum(Kind::Double)).unwrap().sqrt();
            assert!(asym < 1e-6 && (norm - 1.0).abs() < 1e-6, "asym {asym}, norm {norm}");
        }
    }

    #[test]
    fn the_authors_denominator_is_the_outer_product() {
        // P = I (d = 2), r = (1, 2), α = 0.5: k = (1, 2)ᵀ, k·kᵀ = [[1, 2], [2, 4]].
        let p = Tensor::eye(2, (Kind::Float, tch::Device::Cpu));
        let r = Tensor::from_slice(&[1.0f32, 2.0]).reshape([1, 2]);
        let unit = |m: [[f64; 2]; 2]| {
            let n = m.iter().flatten().map(|x| x * x).sum::<f64>().sqrt();
            m.map(|row| row.map(|x| x / n))
        };
        // Scalar: α + r·k = 5.5. Outer: α + k·r = [[1.5, 2.5], [2.5, 4.5]], elementwise.
        let scalar = unit([[1.0 - 1.0 / 5.5, -2.0 / 5.5], [-2.0 / 5.5, 1.0 - 4.0 / 5.5]]);
        let outer = unit([[1.0 - 1.0 / 1.5, -2.0 / 2.5], [-2.0 / 2.5, 1.0 - 4.0 / 4.5]]);
        for (flag, want) in [(false, scalar), (true, outer)] {
            let got = Vec::<f32>::try_from(update_projection(&p, &r, 0.5, flag).unwrap().flatten(0, -1)).unwrap();
            for (g, w) in got.iter().zip(want.iter().flatten()) {
                assert!((*g as f64 - w).abs() < 1e-6, "outer {flag}: {got:?} vs {want:?}");
            }
        }
    }
}
