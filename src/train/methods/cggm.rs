//! CGGM, classifier-guided gradient modulation (Guo, Jin, Chen, Zhao, NeurIPS 2024;
//! ../shared/baselines-3.md §2). A guide classifier per modality (M12, `train::guides`: on
//! detached features, its own optimizer) measures how fast each modality improves; each
//! encoder's gradient is scaled by ρ·B_m with
//!
//! ```text
//! d_m = a_m(t) − a_m(t−1),  D = Σ_m d_m + 1e-8,  B_m = (D − d_m) / D
//! ```
//!
//! (a_m the guide's batch accuracy), so the modality whose guide improved more is slowed. A
//! direction term L_gm = (1/N)·[Σ_m |B_m| − Σ_m B_m·cos(W_c,m, W_f,m)] built at step t − 1 enters
//! step t's loss (the code keeps its graph to the previous weights): its gradient reaches the
//! head's block W_f,m only, −(λ/N)·B_m(t−1)·∂cos/∂w at the previous weights, added here in closed
//! form. W_c,m is guide m's output layer; W_f,m the block of the concat head that multiplies x_m
//! (or fc_m of a sum head): the reference's transformer has one fusion output layer, which a
//! concat head does not, and its blocks match the guides' shape. Then the global gradient norm is
//! clipped to 0.8. `guard: "official"` keeps the code's factors, which turn negative or reach
//! ±10⁶ when the accuracy changes cancel; "clamp" takes B = 1 when D ≤ 1e-6 and clips B to
//! [0, N − 1] otherwise. N > 2: native.

use crate::error::{Error, Result};
use crate::tensor::{Kind, Tensor};
use crate::train::declaration::{Keeps, Knob, MethodSpec, Modalities, Reference};
use crate::train::gradients::NormClip;
use crate::train::guides::Guides;
use crate::train::loss;
use crate::train::method::{
    check_state_names, per_modality, read_state, require_additive_head, state_tensor, EpochContext, Method, Selection, StepContext,
    StepLoss,
};
use crate::train::model::Model;
use crate::train::options::{opt, Literal, Resolved, Valid};

pub static SPEC: MethodSpec = MethodSpec {
    name: "cggm",
    aliases: &[],
    summary: "classifier-guided gradient modulation: guide classifiers' accuracy gains scale each encoder's gradient, plus a direction term on the head",
    reference: Reference { authors: "Guo, Jin, Chen, Zhao", venue: "NeurIPS 2024", code: "https://github.com/zrguo/CGGM", commit: "21e428c" },
    options: &[
        opt("rho", Literal::Float(1.3), Valid::Float(0.0, 1e3), "ρ, the scale of every modulated gradient"),
        opt("lambda", Literal::Float(0.05), Valid::Float(0.0, 1e6), "λ, the direction term's weight (Food-101, the code's two-modality setting; 0.2 on its three-modality MOSI)"),
        opt("clip_norm", Literal::Float(0.8), Valid::Float(0.0, 1e9), "clip the global gradient norm to this after modulation (0: no clipping)"),
        opt("guard", Literal::Text("official"), Valid::Choice(&["official", "clamp"]), "the code's factors as they come, or B = 1 when D ≈ 0 and B clipped to [0, N − 1]"),
        opt("guide", Literal::Text("linear"), Valid::Choice(&["linear", "mlp"]), "the guide classifiers: linear on pooled features, or d → d → ReLU → C"),
        opt("guide_lr", Literal::Float(5e-4), Valid::Float(1e-12, 1e3), "the guides' learning rate (their optimizer is the run's kind)"),
        opt("guide_wd", Literal::Float(3e-3), Valid::Float(0.0, 1e3), "the guides' weight decay"),
        opt("direction", Literal::Text("weights"), Valid::Choice(&["weights", "off"]), "the direction term between the guides' and the head's weights, or none"),
        opt("seed", Literal::Int(0), Valid::Int(0, i64::MAX), "seed of the guides' initialisation"),
    ],
    variants: &[],
    modalities: Modalities::Any,
    keeps_state: Keeps::Always,
    terms: &["ce_fused", "ce_*"],
    diagnostics: &["factor_*", "guide_acc_*", "cos_*", "direction", "grad_norm"],
    knob: Some(Knob { key: "rho", values: &[Literal::Float(1.0), Literal::Float(1.3), Literal::Float(2.0)] }),
    build: |o, _| Ok(Box::new(Cggm::new(o))),
};

/// B_m = (D − d_m)/D from the guides' accuracies before and now; `clamp`: 1 for all when
/// D ≤ 1e-6, else B clipped to [0, N − 1].
pub fn factors(before: &[f64], now: &[f64], clamp: bool) -> Vec<f64> {
    let d: Vec<f64> = now.iter().zip(before).map(|(a, b)| a - b).collect();
    let total = d.iter().sum::<f64>() + 1e-8;
    let n = d.len() as f64;
    if clamp && total <= 1e-6 {
        return vec![1.0; d.len()];
    }
    d.iter().map(|dm| (total - dm) / total).map(|b| if clamp { b.clamp(0.0, n - 1.0) } else { b }).collect()
}

/// cos(vec u, vec w).
pub fn cosine(u: &Tensor, w: &Tensor) -> Result<f64> {
    let (u, w) = (u.f_detach()?.f_to_kind(Kind::Double)?.f_flatten(0, -1)?, w.f_detach()?.f_to_kind(Kind::Double)?.f_flatten(0, -1)?);
    let dot = u.f_dot(&w)?.f_double_value(&[])?;
    let nu = u.f_norm()?.f_double_value(&[])?;
    let nw = w.f_norm()?.f_double_value(&[])?;
    Ok(if nu == 0.0 || nw == 0.0 { 0.0 } else { dot / (nu * nw) })
}

/// L_gm = (1/N)·[Σ_m |B_m| − Σ_m B_m·cos_m].
pub fn direction_value(b: &[f64], cos: &[f64]) -> f64 {
    let n = b.len() as f64;
    (b.iter().map(|x| x.abs()).sum::<f64>() - b.iter().zip(cos).map(|(x, c)| x * c).sum::<f64>()) / n
}

/// The gradient λ·L_gm sends the head block w: −(λ/N)·B·∂cos(u, w)/∂w, with
/// ∂cos/∂w = u/(‖u‖‖w‖) − cos·w/‖w‖², in w's shape and kind.
pub fn direction_gradient(u: &Tensor, w: &Tensor, b: f64, n: usize, lambda: f64) -> Result<Tensor> {
    let (ud, wd) = (u.f_detach()?.f_to_kind(Kind::Double)?, w.f_detach()?.f_to_kind(Kind::Double)?);
    let nu = ud.f_norm()?.f_double_value(&[])?;
    let nw = wd.f_norm()?.f_double_value(&[])?;
    if nu == 0.0 || nw == 0.0 {
        return w.f_zeros_like().map_err(Error::from);
    }
    let cos = cosine(u, w)?;
    let dcos = ud.f_div_scalar(nu * nw)?.f_sub(&wd.f_mul_scalar(cos / (nw * nw))?)?;
    dcos.f_mul_scalar(-lambda / n as f64 * b)?.f_to_kind(w.kind()).map_err(Error::from)
}

/// What step t − 1 left for step t's direction gradient: its factors and the weights it compared.
struct Lag {
    factors: Vec<f64>,
    head: Vec<Tensor>,
    guide: Vec<Tensor>,
}

pub struct Cggm {
    rho: f64,
    lambda: f64,
    clip: NormClip,
    clamp: bool,
    mlp: bool,
    guide_lr: f64,
    guide_wd: f64,
    direction: bool,
    seed: u64,
    guides: Option<Guides>,
    /// Guide tensors from a checkpoint, loaded when the guides are built.
    saved: Option<Vec<(String, Tensor)>>,
    /// a_m(t − 1), zeros before the first step.
    before: Vec<f64>,
    /// This step's factors, from the loss to the gradient hook.
    now: Vec<f64>,
    /// The previous step's direction term, applied at this step; and this step's, for the next.
    lag: Option<Lag>,
    next: Option<Lag>,
}

impl Cggm {
    pub fn new(o: &Resolved) -> Cggm {
        Cggm {
            rho: o.float("rho"),
            lambda: o.float("lambda"),
            clip: NormClip::new(o.float("clip_norm")),
            clamp: o.text("guard") == "clamp",
            mlp: o.text("guide") == "mlp",
            guide_lr: o.float("guide_lr"),
            guide_wd: o.float("guide_wd"),
            direction: o.text("direction") == "weights",
            seed: o.int("seed") as u64,
            guides: None,
            saved: None,
            before: Vec::new(),
            now: Vec::new(),
            lag: None,
            next: None,
        }
    }
}

impl Method for Cggm {
    fn prepare(&self, model: &Model) -> Result<()> {
        require_additive_head("cggm", model)
    }

    fn begin_epoch(&mut self, ctx: &EpochContext) -> Result<()> {
        if self.guides.is_none() {
            let mut g = Guides::new(ctx.model, self.mlp, ctx.opt, self.guide_lr, self.guide_wd, self.seed)?;
            if let Some(saved) = self.saved.take() {
                g.load(&saved).map_err(|e| Error::arg(format!("cggm: {e}")))?;
            }
            self.guides = Some(g);
        }
        Ok(())
    }

    fn loss(&mut self, ctx: &StepContext) -> Result<StepLoss> {
        let model = ctx.model;
        let n = model.modalities.len();
        let guides = self.guides.as_mut().ok_or_else(|| {
            Error::arg("cggm: its guide classifiers are built with the run's optimizer kind before the first epoch: train with train_epoch or a recipe, not a lone train_step")
        })?;
        let fwd = model.forward_all(ctx.inputs, true)?;
        let l = loss::fused_only_all(&fwd.logits, ctx.labels, &model.modalities)?;
        let (guide_loss, acc) = guides.loss(&fwd.features, ctx.labels)?;
        if self.before.len() != n {
            self.before = vec![0.0; n];
        }
        self.now = factors(&self.before, &acc, self.clamp);
        self.before = acc.clone();
        // This step's direction term, on the weights before either update (the code's clones).
        let blocks = model.fusion.modality_weight_blocks()?;
        let mut cos = Vec::with_capacity(n);
        let (mut heads, mut guide_w) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for (m, (_, _, w)) in blocks.iter().enumerate() {
            let u = guides.output_weight(m);
            cos.push(cosine(u, w)?);
            heads.push(w.f_detach_copy()?);
            guide_w.push(u.f_detach_copy()?);
        }
        let previous = self.lag.as_ref().map(|lag| {
            let c: Vec<f64> = lag.head.iter().zip(&lag.guide).map(|(w, u)| cosine(u, w).unwrap_or(0.0)).collect();
            direction_value(&lag.factors, &c)
        });
        self.next = Some(Lag { factors: self.now.clone(), head: heads, guide: guide_w });
        guides.update(&guide_loss)?;
        let mut diagnostics: Vec<(&'static str, f64)> = per_modality(model, "factor").into_iter().zip(self.now.iter().copied()).collect();
        diagnostics.extend(per_modality(model, "guide_acc").into_iter().zip(acc));
        diagnostics.extend(per_modality(model, "cos").into_iter().zip(cos));
        diagnostics.push(("direction", previous.unwrap_or(0.0)));
        Ok(StepLoss { total: l.total, terms: l.terms, diagnostics })
    }

    fn adjust_gradients(&mut self, ctx: &StepContext, params: &[(String, Tensor)], grads: &mut [Tensor]) -> Result<()> {
        let model = ctx.model;
        let n = model.modalities.len();
        let _guard = tch::no_grad_guard();
        // Step t − 1's direction term reaches the head's blocks only.
        if let (true, Some(lag)) = (self.direction && self.lambda > 0.0, self.lag.as_ref()) {
            for (m, (name, at, block)) in model.fusion.modality_weight_blocks()?.into_iter().enumerate() {
                let i =
                    params.iter().position(|(p, _)| *p == name).ok_or_else(|| Error::arg(format!("cggm: the optimizer has no {name}")))?;
                let add = direction_gradient(&lag.guide[m], &lag.head[m], lag.factors[m], n, self.lambda)?;
                let g = if grads[i].defined() { grads[i].f_detach_copy()? } else { params[i].1.f_zeros_like()? };
                // In place on a view of the fresh copy: only the block's columns change.
                let _ = g.f_narrow(1, at, block.size()[1])?.f_add_(&add)?;
                grads[i] = g;
            }
        }
        for (m, b) in self.now.iter().enumerate() {
            for i in Selection::All.pick(model, params, m) {
                if grads[i].defined() {
                    grads[i] = grads[i].f_mul_scalar(self.rho * b)?;
                }
            }
        }
        self.lag = self.next.take();
        self.clip.apply(grads)
    }

    fn gradient_diagnostics(&mut self) -> Vec<(&'static str, f64)> {
        self.clip.diagnostics()
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = match (&self.guides, &self.saved) {
            (Some(g), _) => g.state(),
            (None, Some(saved)) => saved.iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect(),
            (None, None) => return Vec::new(),
        };
        out.push(("accuracy_before".into(), state_tensor(&self.before)));
        if let Some(lag) = &self.lag {
            out.push(("lag_factors".into(), state_tensor(&lag.factors)));
            for (m, (h, g)) in lag.head.iter().zip(&lag.guide).enumerate() {
                out.push((format!("lag_head.{m}"), h.shallow_clone()));
                out.push((format!("lag_guide.{m}"), g.shallow_clone()));
            }
        }
        out
    }

    fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        let own =
            |n: &str| n.starts_with("guide.") || n.starts_with("guide_opt.") || n.starts_with("lag_head.") || n.starts_with("lag_guide.");
        let scalars: Vec<(String, Tensor)> = state.iter().filter(|(n, _)| !own(n)).map(|(n, t)| (n.clone(), t.shallow_clone())).collect();
        check_state_names(
            "cggm",
            &scalars,
            &["accuracy_before", "lag_factors", "guide.<tensor>", "guide_opt.<slot>", "lag_head.<m>", "lag_guide.<m>"],
        )?;
        self.guides = None;
        self.lag = None;
        if state.is_empty() {
            self.saved = None;
            self.before.clear();
            return Ok(());
        }
        let n = state.iter().find(|(k, _)| k == "accuracy_before").map_or(0, |(_, t)| t.numel());
        self.before = read_state("cggm", state, "accuracy_before", n)?;
        if state.iter().any(|(k, _)| k == "lag_factors") {
            let find = |k: String| {
                state
                    .iter()
                    .find(|(name, _)| *name == k)
                    .map(|(_, t)| t.shallow_clone())
                    .ok_or_else(|| Error::arg(format!("cggm: the saved state has no \"{k}\"")))
            };
            self.lag = Some(Lag {
                factors: read_state("cggm", state, "lag_factors", n)?,
                head: (0..n).map(|m| find(format!("lag_head.{m}"))).collect::<Result<_>>()?,
                guide: (0..n).map(|m| find(format!("lag_guide.{m}"))).collect::<Result<_>>()?,
            });
        }
        self.saved = Some(state.iter().filter(|(k, _)| k.starts_with("guide")).map(|(k, t)| (k.clone(), t.shallow_clone())).collect());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f64], b: &[f64]) {
        assert!(a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5 * y.abs().max(1.0)), "{a:?} != {b:?}");
    }

    #[test]
    fn the_factors_of_the_spec() {
        let b = factors(&[0.5, 0.4], &[0.6, 0.45], false);
        close(&b, &[1.0 / 3.0, 2.0 / 3.0]);
        close(&b.iter().map(|x| 1.3 * x).collect::<Vec<_>>(), &[0.43333, 0.86667]);
        // The pathologies: accuracy changes that cancel.
        close(&factors(&[0.0, 0.0], &[1.0 / 64.0, -1.0 / 64.0], false), &[-1.5625e6, 1.5625e6]);
        close(&factors(&[0.0, 0.0], &[0.1, -0.05], false), &[-1.0, 2.0]);
        assert_eq!(factors(&[0.0, 0.0], &[1.0 / 64.0, -1.0 / 64.0], true), vec![1.0, 1.0]);
        close(&factors(&[0.0, 0.0], &[0.1, -0.05], true), &[0.0, 1.0]);
    }

    #[test]
    fn the_direction_term_and_its_gradient() {
        close(&[direction_value(&[1.0 / 3.0, 2.0 / 3.0], &[0.5, 0.2])], &[0.35]);
        let (u, w) = (Tensor::from_slice(&[1.0f64, 0.0]), Tensor::from_slice(&[1.0f64, 1.0]));
        close(&[cosine(&u, &w).unwrap()], &[std::f64::consts::FRAC_1_SQRT_2]);
        let g = direction_gradient(&u, &w, 1.0 / 3.0, 2, 0.2).unwrap();
        close(&Vec::<f64>::try_from(&g).unwrap(), &[-0.011785, 0.011785]);
        // Against autograd: the same gradient of −(λ/N)·B·cos(u, w) at w.
        let wv = Tensor::from_slice(&[0.3f64, -1.2, 0.7]).set_requires_grad(true);
        let uv = Tensor::from_slice(&[0.5f64, 0.1, -0.4]);
        let c = uv.dot(&wv) / (uv.norm() * wv.norm());
        (c * (-0.2 / 2.0 * 0.7)).backward();
        let by_hand = direction_gradient(&uv, &wv, 0.7, 2, 0.2).unwrap();
        close(&Vec::<f64>::try_from(&by_hand).unwrap(), &Vec::<f64>::try_from(&wv.grad()).unwrap());
    }
}
