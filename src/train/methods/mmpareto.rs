//! MMPareto (Wei & Hu, ICML 2024; ../shared/baselines-2.md §6): the multimodal loss
//! L_mm = CE(l_f) and each unimodal loss L_m = CE(h_m(x_m)) give every encoder two gradients,
//! g^mm_m and g^uni_m (per-loss capture before the update, M4). Where they agree (cos > 0) the
//! encoder gets γ·(g^mm + g^uni); where they conflict, the two-vector min-norm point (MGDA)
//! k·g^mm + (1 − k)·g^uni, doubled, with each tensor's magnitude raised to the summed
//! gradient's when that is larger:
//!
//! ```text
//! n_p = 2(k·g^mm_p + (1 − k)·g^uni_p),  r_p = ‖g^mm_p + g^uni_p‖ / ‖n_p‖,  g_p = γ·max(r_p, 1)·n_p
//! ```
//!
//! k is one number per encoder (over all its tensors); the magnitude rule is per tensor. The
//! heads keep their summed gradients. Since ∇_{θ_a} L_v = 0, two backward passes suffice
//! (L_mm, then Σ_m L_m); `passes: 4` takes the reference's order (one per loss, then the sum).
//! The official model has separate unimodal heads (`model(..., #{ heads: "separate" })`, M1);
//! `heads: "split"` trains the unimodal losses through the concat head's split logits.
//! `variant: "bb_bug"` is BalanceBenchmark's as released: its gradients are never zeroed
//! between passes, so both captures are the summed gradient, cos = 1 and every encoder gradient
//! is 2γ times the summed one (no Pareto step ever fires); for comparison only.

use crate::error::{Error, Result};
use crate::tensor::Tensor;
use crate::train::declaration::{Keeps, Knob, MethodSpec, Modalities, Reference, Variant};
use crate::train::fusion::FusionKind;
use crate::train::gradients::{dot, or_zeros, per_loss, squared_norm};
use crate::train::method::{mean_ce, per_modality, Method, Selection, StepContext, StepLoss};
use crate::train::model::Model;
use crate::train::options::{opt, Literal, Resolved, Valid};

pub static SPEC: MethodSpec = MethodSpec {
    name: "mmpareto",
    aliases: &[],
    summary: "Pareto integration of the multimodal and unimodal gradients, rescaled to their norm",
    reference: Reference {
        authors: "Wei and Hu",
        venue: "ICML 2024",
        code: "https://github.com/GeWu-Lab/MMPareto_ICML2024",
        commit: "a339db3",
    },
    options: &[
        opt("gamma", Literal::Float(1.5), Valid::Float(0.0, 1e6), "the rescaling γ of the combined gradient"),
        opt(
            "variant",
            Literal::Text("official"),
            Valid::Choice(&["official", "bb_bug"]),
            "the authors' rule, or BalanceBenchmark's (with its bug)",
        ),
        opt(
            "heads",
            Literal::Text("separate"),
            Valid::Choice(&["separate", "split"]),
            "unimodal heads: separate classifiers or the split fused head",
        ),
        opt(
            "passes",
            Literal::Int(2),
            Valid::Int(2, 4),
            "backward passes: 2 (multimodal, then the unimodal losses together) or 4 (the reference's order)",
        ),
    ],
    variants: &[Variant { name: "bb_bug", help: "BalanceBenchmark combination, bug included", values: &[] }],
    modalities: Modalities::Any,
    keeps_state: Keeps::Never,
    terms: &["ce_fused", "ce_*"],
    diagnostics: &["cos_*", "k_*"],
    knob: Some(Knob { key: "gamma", values: &[Literal::Float(1.0), Literal::Float(1.5), Literal::Float(2.0)] }),
    build: |o, _| Ok(Box::new(MmPareto::new(o)?)),
};

/// (cos(g1, g2), k): the weight k on g1 of the combined direction, from ⟨g1,g1⟩, ⟨g2,g2⟩ and
/// ⟨g1,g2⟩: ½ when the gradients agree (cos > 0), else the min-norm point of the segment
/// between them, γ* = (⟨g2,g2⟩ − ⟨g1,g2⟩)/‖g1 − g2‖², 0.999 or 0.001 at its ends (as the
/// reference's two-vector solver).
pub fn pareto_weight(v11: f64, v22: f64, v12: f64) -> (f64, f64) {
    let cos = if v11 > 0.0 && v22 > 0.0 { v12 / (v11.sqrt() * v22.sqrt()) } else { 0.0 };
    if cos > 0.0 {
        return (cos, 0.5);
    }
    let k = if v12 >= v11 {
        0.999
    } else if v12 >= v22 {
        0.001
    } else {
        (v22 - v12) / (v11 + v22 - 2.0 * v12)
    };
    (cos, k)
}

/// One tensor's final gradient: n = 2(k·g1 + (1 − k)·g2), then γ·r·n if r = ‖total‖/‖n‖ > 1,
/// else γ·n.
pub fn combine(g1: &Tensor, g2: &Tensor, total: &Tensor, k: f64, gamma: f64) -> Result<Tensor> {
    let n = g1.f_mul_scalar(2.0 * k).and_then(|a| a.f_add(&g2.f_mul_scalar(2.0 * (1.0 - k))?))?;
    let nn = squared_norm(&n)?.sqrt();
    let r = if nn > 0.0 { squared_norm(total)?.sqrt() / nn } else { 0.0 };
    n.f_mul_scalar(if r > 1.0 { gamma * r } else { gamma }).map_err(Error::from)
}

/// a + b where either may be undefined (a gradient the loss does not reach).
fn add_defined(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    match (a.defined(), b.defined()) {
        (true, true) => a.f_add(b).map_err(Error::from),
        (true, false) => Ok(a.shallow_clone()),
        (false, _) => Ok(b.shallow_clone()),
    }
}

pub struct MmPareto {
    gamma: f64,
    bb_bug: bool,
    separate: bool,
    passes: i64,
    /// The current step's losses: the multimodal one, then each modality's.
    pending: Option<(Tensor, Vec<Tensor>)>,
    /// The current step's cos and k per encoder, known after its backward.
    last: Vec<(&'static str, f64)>,
}

impl MmPareto {
    pub fn new(opts: &Resolved) -> Result<MmPareto> {
        if opts.int("passes") == 3 {
            return Err(Error::arg(
                "mmpareto: passes must be 2 (L_mm, then the unimodal losses together) or 4 (the reference's order), got 3".to_string(),
            ));
        }
        Ok(MmPareto {
            gamma: opts.float("gamma"),
            bb_bug: opts.text("variant") == "bb_bug",
            separate: opts.text("heads") == "separate",
            passes: opts.int("passes"),
            pending: None,
            last: Vec::new(),
        })
    }
}

impl Method for MmPareto {
    fn prepare(&self, model: &Model) -> Result<()> {
        match (self.separate, model.fusion.kind) {
            (true, FusionKind::ConcatHeads) | (false, FusionKind::Concat) => Ok(()),
            (true, other) => Err(Error::arg(format!(
                "mmpareto: heads \"separate\" (the official model) needs a concat head with a separate linear head per modality: build the model with heads: \"separate\" (this one's head is {}), or give mmpareto heads: \"split\"",
                other.name()
            ))),
            (false, other) => Err(Error::arg(format!("mmpareto: heads \"split\" trains the unimodal losses through the concat head's split logits, and this model's head is {}: build it with fusion: \"concat\"", other.name()))),
        }
    }

    fn loss(&mut self, ctx: &StepContext) -> Result<StepLoss> {
        let fwd = ctx.model.forward_all(ctx.inputs, true)?;
        let mm = mean_ce(&fwd.logits.fused, ctx.labels)?;
        let uni = fwd.logits.per.iter().map(|l| mean_ce(l, ctx.labels)).collect::<Result<Vec<_>>>()?;
        let mut total = mm.shallow_clone();
        for l in &uni {
            total = total.f_add(l)?;
        }
        let names = per_modality(ctx.model, "ce");
        let mut terms = vec![("ce_fused", mm.f_detach()?)];
        for (name, l) in names.iter().zip(&uni) {
            terms.push((*name, l.f_detach()?));
        }
        self.pending = Some((mm, uni));
        Ok(StepLoss { total, terms, diagnostics: Vec::new() })
    }

    fn gradient_diagnostics(&mut self) -> Vec<(&'static str, f64)> {
        std::mem::take(&mut self.last)
    }

    fn backward(&mut self, ctx: &StepContext, total: &Tensor, params: &[(String, Tensor)]) -> Result<Option<Vec<Tensor>>> {
        let (mm, uni) = self.pending.take().ok_or_else(|| Error::arg("mmpareto: backward before its loss".to_string()))?;
        let model = ctx.model;
        let n = model.modalities.len();
        let refs: Vec<&Tensor> = params.iter().map(|(_, p)| p).collect();
        if self.bb_bug {
            // Both captures are the summed gradient: cos = 1, k = ½, n = 2·g, r = ½, so 2γ·g.
            let mut g = per_loss(&[total], &refs, ctx.scale)?.remove(0);
            for (i, (name, _)) in params.iter().enumerate() {
                if model.encoder_of(name).is_some() && g[i].defined() {
                    g[i] = g[i].f_mul_scalar(2.0 * self.gamma)?;
                }
            }
            return Ok(Some(g));
        }
        // g1: the multimodal loss's gradients; g2[i]: the unimodal gradient that reaches
        // tensor i (its encoder's own loss); sum[i]: the summed gradient.
        let (g1, g2, sum) = if self.passes == 4 {
            let mut losses: Vec<&Tensor> = vec![&mm];
            losses.extend(uni.iter());
            losses.push(total);
            let mut g = per_loss(&losses, &refs, ctx.scale)?;
            let sum = g.pop().expect("the summed pass");
            let g1 = g.remove(0);
            let g2 = (0..params.len()).map(|i| match model.encoder_of(&params[i].0) {
                Some(m) => g[m][i].shallow_clone(),
                None => Tensor::new(),
            });
            (g1, g2.collect::<Vec<_>>(), sum)
        } else {
            let mut unisum = uni[0].shallow_clone();
            for l in &uni[1..] {
                unisum = unisum.f_add(l)?;
            }
            let mut g = per_loss(&[&mm, &unisum], &refs, ctx.scale)?;
            let g2 = g.pop().expect("two passes");
            let g1 = g.pop().expect("two passes");
            let sum = g1.iter().zip(&g2).map(|(a, b)| add_defined(a, b)).collect::<Result<Vec<_>>>()?;
            (g1, g2, sum)
        };
        let mut out = sum.iter().map(|g| g.shallow_clone()).collect::<Vec<_>>();
        let cos_names = per_modality(model, "cos");
        let k_names = per_modality(model, "k");
        for m in 0..n {
            let idx = Selection::All.pick(model, params, m);
            let a: Vec<Tensor> = idx.iter().map(|&i| or_zeros(&g1[i], &params[i].1)).collect::<Result<_>>()?;
            let b: Vec<Tensor> = idx.iter().map(|&i| or_zeros(&g2[i], &params[i].1)).collect::<Result<_>>()?;
            let ar: Vec<&Tensor> = a.iter().collect();
            let br: Vec<&Tensor> = b.iter().collect();
            let (cos, k) = pareto_weight(dot(&ar, &ar)?, dot(&br, &br)?, dot(&ar, &br)?);
            for (j, &i) in idx.iter().enumerate() {
                let t = or_zeros(&sum[i], &params[i].1)?;
                out[i] = combine(&a[j], &b[j], &t, k, self.gamma)?;
            }
            self.last.push((cos_names[m], cos));
            self.last.push((k_names[m], k));
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::declaration::with_options;
    use crate::train::options::Value;

    fn v(t: &Tensor) -> Vec<f64> {
        Vec::<f64>::try_from(t).unwrap()
    }

    #[test]
    fn the_specs_hand_example() {
        // g^mm = (1, 0), g^uni = (−0.5, 1) (baselines-2.md §6).
        let g1 = Tensor::from_slice(&[1.0f64, 0.0]);
        let g2 = Tensor::from_slice(&[-0.5f64, 1.0]);
        let (cos, k) = pareto_weight(1.0, 1.25, -0.5);
        assert!((cos + 0.44721).abs() < 1e-5, "cos {cos}");
        assert!((k - 1.75 / 3.25).abs() < 1e-12, "k {k}");
        let total = &g1 + &g2;
        let g = v(&combine(&g1, &g2, &total, k, 1.5).unwrap());
        assert!((g[0] - 0.93026).abs() < 1e-5 && (g[1] - 1.39539).abs() < 1e-5, "{g:?}");
        // The min-norm direction has equal inner products with both gradients (0.61538 for n).
        let n = &g1 * (2.0 * k) + &g2 * (2.0 * (1.0 - k));
        let (d1, d2) = ((&n * &g1).sum(tch::Kind::Double).double_value(&[]), (&n * &g2).sum(tch::Kind::Double).double_value(&[]));
        assert!((d1 - 0.61538).abs() < 1e-5 && (d2 - 0.61538).abs() < 1e-5, "{d1} {d2}");
    }

    #[test]
    fn agreeing_gradients_give_gamma_times_their_sum() {
        let g1 = Tensor::from_slice(&[0.3f64, -0.2, 0.5]);
        let g2 = Tensor::from_slice(&[0.1f64, 0.4, 0.2]);
        let (cos, k) = pareto_weight(0.38, 0.21, 0.05);
        assert!(cos > 0.0 && k == 0.5);
        let total = &g1 + &g2;
        let g = v(&combine(&g1, &g2, &total, k, 1.5).unwrap());
        let want = v(&(&total * 1.5));
        for (a, b) in g.iter().zip(&want) {
            assert!((a - b).abs() < 1e-12);
        }
    }

    #[test]
    fn passes_must_be_two_or_four() {
        assert!(with_options(&SPEC, &[("passes".into(), Value::Int(3))], MmPareto::new).is_err());
        assert!(with_options(&SPEC, &[("gamma".into(), Value::Float(-1.0))], MmPareto::new)
            .err()
            .expect("an error")
            .to_string()
            .contains("gamma must be"));
    }
}
