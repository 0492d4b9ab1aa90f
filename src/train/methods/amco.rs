//! AMCo, adaptive mask co-optimization (Zhou, Liang, Zheng, Xuan, Kumada, ICASSP 2023), in
//! BalanceBenchmark's reading (`AMCo_trainer.py`; ../shared/baselines-2.md §2): no official code
//! was found, so the row is "AMCo (BalanceBenchmark's reading)". The split logits ℓ_m feed an
//! extra C×C layer W*, z = W*(Σ_m M_m ⊙ ℓ_m) + b*, where M_m is the batch's mask when modality m
//! was flagged "dependent" at the previous step and 1 otherwise:
//!
//! ```text
//! L = CE(z) + Σ_m CE(M_m ⊙ ℓ_m)        p_j = sin(π/2 · min(ε, j·e/10)/ε),  N_j = ⌊p_j·U⌋ zeros
//! ```
//!
//! (batch j of 0-based epoch e; the mask, one random arrangement shared by the batch's rows).
//! After the step, s_m = batch mean of modality m's share of softmax over all the (masked) logits
//! side by side, and dep_m = s_m > σ for the next step; flags start false at every epoch. At
//! evaluation nothing is masked: z = W*(ℓ_f) + b* (`Method::predict`). `amco_mask_on: "features"`
//! (the default, BalanceBenchmark's first version, which fits the paper's abstract) masks U = d_m
//! units of the dependent modality's pooled features instead of its C logits (the current code).
//! W* is the method's own layer (`train::owned_layer`), stepped with the run's optimizer rule.

use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::tensor::{Kind, Tensor};
use crate::train::declaration::{Keeps, Knob, MethodSpec, Modalities, Reference};
use crate::train::method::{check_state_names, mean_ce, per_modality, require_additive_head, EpochContext, Method, StepContext, StepLoss};
use crate::train::model::Model;
use crate::train::options::{opt, Literal, Resolved, Valid, Window};
use crate::train::owned_layer::OwnedLinear;

pub static SPEC: MethodSpec = MethodSpec {
    name: "amco",
    aliases: &[],
    summary: "AMCo (BalanceBenchmark's reading): a growing random mask on the modality that dominates, an extra C×C output layer and unimodal losses",
    reference: Reference {
        authors: "Zhou, Liang, Zheng, Xuan, Kumada (rule: BalanceBenchmark's reading; no official code)",
        venue: "ICASSP 2023",
        code: "https://github.com/GeWu-Lab/BalanceBenchmark",
        commit: "4c1482f",
    },
    options: &[
        opt("sigma", Literal::Float(0.5), Valid::Float(0.0, 1e3), "a modality is dependent when its share of the probability mass exceeds σ"),
        opt("epsilon", Literal::Float(0.3), Valid::Float(1e-9, 1e3), "ε: the curriculum reaches a full mask at l = ε"),
        opt("amco_mask_on", Literal::Text("features"), Valid::Choice(&["features", "logits"]), "mask the dependent modality's pooled features (BalanceBenchmark's first version) or its logits (its current code)"),
        opt("window", Literal::List(&[0.0, -1.0]), Valid::Window, "epochs of the masks and unimodal losses (CE(z) alone outside)"),
        opt("seed", Literal::Int(0), Valid::Int(0, i64::MAX), "seed of the masks (one per (seed, step)) and of W*'s initialisation"),
    ],
    variants: &[],
    modalities: Modalities::Any,
    keeps_state: Keeps::Always,
    terms: &["ce_fused", "ce_*"],
    diagnostics: &["share_*", "dependent_*", "masked"],
    knob: Some(Knob { key: "sigma", values: &[Literal::Float(0.4), Literal::Float(0.5), Literal::Float(0.6)] }),
    build: |o, _| Ok(Box::new(Amco::new(o))),
};

const W_STAR: &str = "w_star";

pub struct Amco {
    sigma: f64,
    epsilon: f64,
    on_features: bool,
    window: Window,
    seed: u64,
    /// W*, built before the first epoch (it needs the classes and the run's optimizer).
    layer: Option<OwnedLinear>,
    /// W* from a checkpoint, loaded when the layer is built.
    saved: Option<Vec<(String, Tensor)>>,
    /// The flags the next step masks by.
    dependent: Vec<bool>,
    /// W*'s gradients from this step's backward, applied at its update.
    pending: Vec<Tensor>,
}

impl Amco {
    pub fn new(o: &Resolved) -> Amco {
        Amco {
            sigma: o.float("sigma"),
            epsilon: o.float("epsilon"),
            on_features: o.text("amco_mask_on") == "features",
            window: o.window("window"),
            seed: o.int("seed") as u64,
            layer: None,
            saved: None,
            dependent: Vec::new(),
            pending: Vec::new(),
        }
    }

    fn layer(&self) -> Result<&OwnedLinear> {
        self.layer.as_ref().ok_or_else(|| {
            Error::arg(
                "amco: its C×C output layer is built before the first epoch: train with train_epoch or a recipe, not a lone train_step",
            )
        })
    }
}

/// How many of `units` are masked before batch `batch` of epoch `epoch` (the curriculum).
/// l is accumulated as the code does (e/10 added after every batch), and p and N computed in its
/// order, so the boundaries fall where its floating point puts them.
pub fn masked_units(batch: usize, epoch: usize, epsilon: f64, units: i64) -> i64 {
    let mut l = 0.0;
    for _ in 0..batch {
        l += epoch as f64 / 10.0;
    }
    let p = (std::f64::consts::PI / 2.0 * (l.min(epsilon) / epsilon)).sin();
    ((p * units as f64).floor() as i64).clamp(0, units)
}

/// One batch mask: `units` values, `zeros` of them 0, in a random arrangement.
fn batch_mask(units: i64, zeros: i64, rng: &mut Rng) -> Vec<f32> {
    let mut m: Vec<f32> = (0..units).map(|i| if i < zeros { 0.0 } else { 1.0 }).collect();
    rng.shuffle(&mut m);
    m
}

/// Each modality's mean share of softmax over its logits and the others' side by side.
pub fn shares(per: &[Tensor]) -> Result<Vec<f64>> {
    let all = Tensor::f_cat(&per.iter().map(|t| t.f_detach()).collect::<std::result::Result<Vec<_>, _>>()?, 1)?;
    let p = all.f_softmax(1, Kind::Double)?;
    let mut at = 0;
    let mut out = Vec::with_capacity(per.len());
    for t in per {
        let c = t.size()[1];
        let s = p.f_narrow(1, at, c)?.f_sum_dim_intlist([1i64].as_slice(), false, Kind::Double)?.f_mean(Kind::Double)?;
        out.push(s.f_double_value(&[])?);
        at += c;
    }
    Ok(out)
}

/// The flags the next step masks by: a modality is dependent when its share exceeds σ.
pub fn dependent(shares: &[f64], sigma: f64) -> Vec<bool> {
    shares.iter().map(|&x| x > sigma).collect()
}

impl Method for Amco {
    fn prepare(&self, model: &Model) -> Result<()> {
        require_additive_head("amco", model)
    }

    fn begin_epoch(&mut self, ctx: &EpochContext) -> Result<()> {
        if self.layer.is_none() {
            let c = ctx.model.classes;
            let mut layer = OwnedLinear::new(c, c, ctx.model.device(), ctx.opt, self.seed)?;
            if let Some(saved) = self.saved.take() {
                layer.load(W_STAR, &saved).map_err(|e| Error::arg(format!("amco: {e}")))?;
            }
            self.layer = Some(layer);
        }
        self.dependent = vec![false; ctx.model.modalities.len()];
        Ok(())
    }

    fn loss(&mut self, ctx: &StepContext) -> Result<StepLoss> {
        let model = ctx.model;
        let n = model.modalities.len();
        if self.dependent.len() != n {
            self.dependent = vec![false; n];
        }
        let features = model.encode_all(ctx.inputs, true)?;
        let active = self.window.contains(ctx.epoch);
        let used = if active { self.dependent.clone() } else { vec![false; n] };
        let mut rng = Rng::stream(self.seed ^ 0xA3C0, ctx.step as u64);
        let mut masked = 0;
        let mask_for = |units: i64, rng: &mut Rng, masked: &mut i64| -> Result<Tensor> {
            let zeros = masked_units(ctx.batch.0, ctx.epoch, self.epsilon, units);
            *masked = zeros;
            Ok(Tensor::from_slice(&batch_mask(units, zeros, rng)).f_to(ctx.labels.device())?.f_unsqueeze(0)?)
        };
        let per: Vec<Tensor> = if self.on_features {
            let mut feats = Vec::with_capacity(n);
            for (m, x) in features.iter().enumerate() {
                feats.push(if used[m] { x.f_mul(&mask_for(x.size()[1], &mut rng, &mut masked)?)? } else { x.shallow_clone() });
            }
            model.head_all(&feats)?.per
        } else {
            let logits = model.head_all(&features)?.per;
            let mask = if used.iter().any(|&d| d) { Some(mask_for(model.classes, &mut rng, &mut masked)?) } else { None };
            logits
                .into_iter()
                .enumerate()
                .map(|(m, l)| match (&mask, used[m]) {
                    (Some(k), true) => l.f_mul(k).map_err(Error::from),
                    _ => Ok(l),
                })
                .collect::<Result<_>>()?
        };
        let mut summed = per[0].shallow_clone();
        for l in &per[1..] {
            summed = summed.f_add(l)?;
        }
        let z = self.layer()?.forward(&summed)?;
        let ce_z = mean_ce(&z, ctx.labels)?;
        let mut total = ce_z.shallow_clone();
        let mut terms = vec![("ce_fused", ce_z)];
        for (name, l) in per_modality(model, "ce").into_iter().zip(&per) {
            let ce = mean_ce(l, ctx.labels)?;
            if active {
                total = total.f_add(&ce)?;
                terms.push((name, ce));
            } else {
                terms.push((name, ce.detach()));
            }
        }
        let s = shares(&per)?;
        self.dependent = dependent(&s, self.sigma);
        let mut diagnostics: Vec<(&'static str, f64)> = per_modality(model, "share").into_iter().zip(s).collect();
        diagnostics.extend(per_modality(model, "dependent").into_iter().zip(used.iter().map(|&d| d as i64 as f64)));
        diagnostics.push(("masked", masked as f64));
        Ok(StepLoss { total, terms, diagnostics })
    }

    fn backward(&mut self, ctx: &StepContext, total: &Tensor, params: &[(String, Tensor)]) -> Result<Option<Vec<Tensor>>> {
        let (grads, own) = self.layer()?.gradients_with(total, params, ctx.scale)?;
        self.pending = own;
        Ok(Some(grads))
    }

    fn adjust_gradients(&mut self, ctx: &StepContext, _params: &[(String, Tensor)], _grads: &mut [Tensor]) -> Result<()> {
        let pending = std::mem::take(&mut self.pending);
        let layer = self.layer.as_mut().ok_or_else(|| Error::arg("amco: no output layer"))?;
        layer.update(&pending, ctx.lr)
    }

    fn predict(&mut self, _model: &Model, fused: &Tensor, _per: &[Tensor]) -> Result<Option<Tensor>> {
        let _guard = tch::no_grad_guard();
        let z = match (&self.layer, &self.saved) {
            (Some(layer), _) => {
                let device = layer.tensors()[0].device();
                layer.forward(&fused.f_to(device)?)?.f_to(fused.device())?
            }
            // A run restored from a checkpoint and evaluated before training on: W* as saved.
            (None, Some(saved)) => {
                let find = |k: &str| {
                    saved
                        .iter()
                        .find(|(n, _)| n == k)
                        .map(|(_, t)| t.shallow_clone())
                        .ok_or_else(|| Error::arg(format!("amco: the saved state has no \"{k}\"")))
                };
                let (w, b) = (find("w_star.weight")?, find("w_star.bias")?);
                fused.f_linear(&w.f_to(fused.device())?, Some(&b.f_to(fused.device())?))?
            }
            (None, None) => return Err(self.layer().err().unwrap_or_else(|| Error::arg("amco: no output layer"))),
        };
        Ok(Some(z))
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        match (&self.layer, &self.saved) {
            (Some(l), _) => l.state(W_STAR),
            (None, Some(saved)) => saved.iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect(),
            (None, None) => Vec::new(),
        }
    }

    fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        let foreign: Vec<(String, Tensor)> = state
            .iter()
            .filter(|(n, _)| !n.starts_with("w_star.") && !n.starts_with("w_star_opt."))
            .map(|(n, t)| (n.clone(), t.shallow_clone()))
            .collect();
        check_state_names("amco", &foreign, &["w_star.<tensor>", "w_star_opt.<slot>"])?;
        self.layer = None;
        self.saved = if state.is_empty() { None } else { Some(state.iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect()) };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_curriculum_of_the_spec() {
        // ε = 0.3, C = 6: l = 0.1 masks 3, l = 0.2 masks 5, l ≥ 0.3 masks all; epoch 0 none.
        assert_eq!(masked_units(1, 1, 0.3, 6), 3);
        assert_eq!(masked_units(2, 1, 0.3, 6), 5);
        assert_eq!(masked_units(1, 2, 0.3, 6), 5);
        assert_eq!(masked_units(3, 1, 0.3, 6), 6);
        assert_eq!(masked_units(40, 0, 0.3, 6), 0);
        // From epoch 3 the second batch is fully masked; U = 512 feature units likewise.
        assert_eq!(masked_units(1, 3, 0.3, 512), 512);
        assert_eq!(masked_units(0, 3, 0.3, 512), 0);
    }

    #[test]
    fn the_share_of_the_spec() {
        // One sample, C = 2, ℓ_a = (2, 0), ℓ_v = (0, 0). The spec writes s_a = e²/(e² + 3) =
        // 0.71123, the first class alone; its own formula and the code (torch.sum over the
        // block's slice) sum the block: s_a = (e² + 1)/(e² + 3) = 0.80749. Dependent at σ = 0.5
        // either way.
        let la = Tensor::from_slice(&[2.0f32, 0.0]).reshape([1, 2]);
        let lv = Tensor::from_slice(&[0.0f32, 0.0]).reshape([1, 2]);
        let s = shares(&[la, lv]).unwrap();
        assert!((s[0] - 0.80749).abs() < 1e-5 && (s[0] + s[1] - 1.0).abs() < 1e-12, "{s:?}");
        assert_eq!(dependent(&s, 0.5), vec![true, false]);
        assert_eq!(dependent(&s, 2.0), vec![false, false]);
    }

    #[test]
    fn a_batch_mask_has_exactly_its_zeros() {
        let m = batch_mask(10, 4, &mut Rng::new(3));
        assert_eq!(m.iter().filter(|&&x| x == 0.0).count(), 4);
        assert_eq!(m, batch_mask(10, 4, &mut Rng::new(3)));
    }
}
