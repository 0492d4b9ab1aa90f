//! OGM-GE (Peng et al., CVPR 2022): on-the-fly gradient modulation with generalisation
//! enhancement (../shared/baselines.md §2). The loss is fused CE; after backward, the dominant
//! modality's encoder gradients are damped by k = 1 − tanh(α·ρ) and, with GE, Gaussian noise
//! with the gradient's own standard deviation is added to both encoders' gradients.
//!
//! ρ_second = s_second / s_first and ρ_first = 1/ρ_second, with s_m = Σ_i softmax(l_m)[i, y_i]
//! from the Eq. 2 split logits. The coefficient form is the official code's ("paper": only the
//! dominant modality is damped, with a jump at ρ = 1) or its first release's ("shifted":
//! 1 − tanh(α·relu(ρ − 1)) for both). The noise is drawn from a generator seeded by (seed,
//! global step), so a resumed run draws the same noise.

use crate::error::Result;
use crate::rng::{with_torch_seed, Rng};
use crate::tensor::Tensor;
use crate::train::declaration::{Keeps, Knob, MethodSpec, Modalities, Reference};
use crate::train::loss;
use crate::train::method::{pairwise_ratios, per_modality, require_additive_head, score_sum, Method, Selection, StepContext, StepLoss};
use crate::train::model::Model;
use crate::train::options::{opt, Literal, OptionSpec, Resolved, Valid, Window};

/// OGM's options, shared with OPM&OGM (which has its own defaults for α and the window).
pub const fn options(alpha: f64, window: &'static [f64]) -> [OptionSpec; 7] {
    [
        opt("alpha", Literal::Float(alpha), Valid::Float(0.0, f64::INFINITY), "strength α of k = 1 − tanh(α·ρ)"),
        opt("window", Literal::List(window), Valid::Window, "epochs in which the modulation acts"),
        opt("ge", Literal::Bool(true), Valid::Bool, "generalisation enhancement: Gaussian noise with the gradient's own std"),
        opt(
            "coeff_form",
            Literal::Text("paper"),
            Valid::Choice(&["paper", "shifted"]),
            "damp only the dominant modality (paper), or 1 − tanh(α·relu(ρ − 1)) for both (first release)",
        ),
        opt("params", Literal::Text("weights"), Valid::Choice(&["weights", "conv_only"]), "which encoder tensors are modulated"),
        opt("eps", Literal::Float(0.0), Valid::Float(0.0, 1.0), "ε added to the ratio's denominator"),
        opt("seed", Literal::Int(0), Valid::Int(0, i64::MAX), "seed of the GE noise (drawn per (seed, step))"),
    ]
}

pub static SPEC: MethodSpec = MethodSpec {
    name: "ogm-ge",
    aliases: &[],
    summary: "on-the-fly gradient modulation: the dominant encoder's gradients damped, with Gaussian noise (GE)",
    reference: Reference {
        authors: "Peng et al.",
        venue: "CVPR 2022",
        code: "https://github.com/GeWu-Lab/OGM-GE_CVPR2022",
        commit: "343dc1d",
    },
    options: &options(0.8, &[0.0, 50.0]),
    variants: &[],
    modalities: Modalities::Any,
    keeps_state: Keeps::Never,
    terms: &["ce_fused", "ce_*"],
    diagnostics: &["score_*", "coef_*", "active"],
    knob: Some(Knob { key: "alpha", values: &[Literal::Float(0.1), Literal::Float(0.3), Literal::Float(0.5), Literal::Float(0.8)] }),
    build: |o, _| Ok(Box::new(OgmGe { ogm: Ogm::from_options(o), pending: Vec::new() })),
};

/// The modulation as configured.
#[derive(Clone, Debug)]
pub struct Ogm {
    pub alpha: f64,
    pub window: Window,
    pub ge: bool,
    pub shifted: bool,
    pub params: Selection,
    pub eps: f64,
    pub seed: u64,
}

impl Ogm {
    pub fn from_options(o: &Resolved) -> Ogm {
        Ogm {
            alpha: o.float("alpha"),
            window: o.window("window"),
            ge: o.boolean("ge"),
            shifted: o.text("coeff_form") == "shifted",
            params: Selection::parse(o.text("params")),
            eps: o.float("eps"),
            seed: o.int("seed") as u64,
        }
    }

    /// (k_first, k_second) from the two confidence scores.
    pub fn coefficients(&self, s: [f64; 2]) -> [f64; 2] {
        let k = self.coefficients_n(&s);
        [k[0], k[1]]
    }

    /// One k per modality. ρ_m is the mean of s_m / s_j over the other modalities
    /// (`pairwise_ratios`; for two, s_m / s_other). "paper": every modality with ρ_m > 1 is
    /// damped by 1 − tanh(α·ρ_m); when none is (all scores equal) the first is, as the
    /// official code's jump at ρ = 1. "shifted": k_m = 1 − tanh(α·relu(ρ_m − 1)) for all.
    pub fn coefficients_n(&self, s: &[f64]) -> Vec<f64> {
        let n = s.len();
        let rho = pairwise_ratios(s, self.eps);
        if rho.iter().any(|r| r.is_nan()) {
            return vec![1.0; n]; // a score of 0 over another 0: nothing to compare
        }
        let damp = |r: f64| 1.0 - (self.alpha * r).tanh();
        if self.shifted {
            return rho.iter().map(|&r| damp((r - 1.0).max(0.0))).collect();
        }
        let mut k: Vec<f64> = rho.iter().map(|&r| if r > 1.0 { damp(r) } else { 1.0 }).collect();
        if k.iter().all(|&x| x == 1.0) && !rho.iter().any(|&r| r > 1.0) {
            k[0] = damp(rho[0]);
        }
        k
    }

    /// g ← k_m·g (+ N(0, std(g)²) with GE, std of the unscaled gradient) on each selected
    /// tensor of encoder m.
    pub fn modulate(&self, model: &Model, params: &[(String, Tensor)], grads: &mut [Tensor], k: &[f64], step: i64) -> Result<()> {
        let _guard = tch::no_grad_guard();
        let picked: Vec<(usize, f64)> = (0..k.len())
            .flat_map(|m| self.params.pick(model, params, m).into_iter().map(move |i| (i, k[m])))
            .filter(|(i, _)| grads[*i].defined())
            .collect();
        let seed = Rng::stream(self.seed, step as u64).next_u64();
        with_torch_seed(seed, || -> Result<()> {
            for &(i, k) in &picked {
                let g = &grads[i];
                let mut out = g.f_mul_scalar(k)?;
                if self.ge {
                    // Unbiased std over the tensor, as torch.std; a one-element gradient has none.
                    let std = if g.numel() > 1 { g.f_std(true)? } else { g.f_zeros_like().and_then(|z| z.f_sum(g.kind()))? };
                    let noise = g.f_randn_like().and_then(|n| n.f_mul(&std.f_add_scalar(1e-8)?))?;
                    out = out.f_add(&noise)?;
                }
                grads[i] = out;
            }
            Ok(())
        })
    }
}

pub struct OgmGe {
    ogm: Ogm,
    /// The coefficients of the current step (one per modality), from its forward pass.
    pending: Vec<f64>,
}

impl Method for OgmGe {
    fn prepare(&self, model: &Model) -> Result<()> {
        require_additive_head("ogm-ge", model)
    }

    fn loss(&mut self, ctx: &StepContext) -> Result<StepLoss> {
        let fwd = ctx.model.forward_all(ctx.inputs, true)?;
        let s = fwd.logits.per.iter().map(|l| score_sum(l, ctx.labels)).collect::<Result<Vec<f64>>>()?;
        let active = self.ogm.window.contains(ctx.epoch);
        self.pending = if active { self.ogm.coefficients_n(&s) } else { vec![1.0; s.len()] };
        let l = loss::fused_only_all(&fwd.logits, ctx.labels, &ctx.model.modalities)?;
        let n = ctx.labels.size()[0].max(1) as f64;
        let mut diagnostics: Vec<(&'static str, f64)> =
            per_modality(ctx.model, "score").into_iter().zip(&s).map(|(k, v)| (k, v / n)).collect();
        diagnostics.extend(per_modality(ctx.model, "coef").into_iter().zip(self.pending.iter().copied()));
        diagnostics.push(("active", active as i64 as f64));
        Ok(StepLoss { total: l.total, terms: l.terms, diagnostics })
    }

    fn adjust_gradients(&mut self, ctx: &StepContext, params: &[(String, Tensor)], grads: &mut [Tensor]) -> Result<()> {
        if self.ogm.window.contains(ctx.epoch) {
            self.ogm.modulate(ctx.model, params, grads, &self.pending, ctx.step)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ogm(alpha: f64, shifted: bool) -> Ogm {
        Ogm { alpha, window: Window { start: 0, end: Some(50) }, ge: false, shifted, params: Selection::Weights, eps: 0.0, seed: 0 }
    }

    #[test]
    fn coefficients_match_the_spec() {
        // ρ_v = 2 at α = 0.3: k_v = 1 − tanh(0.6) = 0.46295, k_a = 1.
        let k = ogm(0.3, false).coefficients([1.0, 2.0]);
        assert!((k[1] - 0.462_950_4).abs() < 1e-6 && k[0] == 1.0, "{k:?}");
        // The dominant modality switches when the scores swap.
        let k = ogm(0.3, false).coefficients([2.0, 1.0]);
        assert!((k[0] - 0.462_950_4).abs() < 1e-6 && k[1] == 1.0, "{k:?}");
        // The HEAD form jumps at ρ = 1 (k = 1 − tanh(α) for the first modality); the shifted
        // form does not.
        assert!((ogm(0.8, false).coefficients([1.0, 1.0])[0] - (1.0 - 0.8f64.tanh())).abs() < 1e-12);
        assert_eq!(ogm(0.8, true).coefficients([1.0, 1.0]), [1.0, 1.0]);
        let k = ogm(0.3, true).coefficients([1.0, 2.0]);
        assert!((k[1] - (1.0 - 0.3f64.tanh())).abs() < 1e-12 && k[0] == 1.0);
        assert_eq!(ogm(0.0, false).coefficients([1.0, 2.0]), [1.0, 1.0]);
        assert_eq!(ogm(0.3, false).coefficients([0.0, 0.0]), [1.0, 1.0]);
    }

    #[test]
    fn three_modalities_average_the_pairwise_ratios() {
        // s = (2, 1, 1): ρ = (mean(2, 2), mean(0.5, 1), mean(0.5, 1)) = (2, 0.75, 0.75), so
        // only the first is damped, by 1 − tanh(0.3·2).
        let k = ogm(0.3, false).coefficients_n(&[2.0, 1.0, 1.0]);
        assert!((k[0] - (1.0 - 0.6f64.tanh())).abs() < 1e-12 && k[1] == 1.0 && k[2] == 1.0, "{k:?}");
        // s = (2, 2, 1): two modalities lead (ρ = 1.5 each) and both are damped.
        let k = ogm(0.3, false).coefficients_n(&[2.0, 2.0, 1.0]);
        assert!((k[0] - (1.0 - 0.45f64.tanh())).abs() < 1e-12 && k[1] == k[0] && k[2] == 1.0, "{k:?}");
        // Ties damp the first, as at two; the shifted form damps nobody.
        let k = ogm(0.8, false).coefficients_n(&[1.0, 1.0, 1.0]);
        assert!((k[0] - (1.0 - 0.8f64.tanh())).abs() < 1e-12 && k[1] == 1.0 && k[2] == 1.0);
        assert_eq!(ogm(0.8, true).coefficients_n(&[1.0, 1.0, 1.0]), vec![1.0; 3]);
        // At two the N rule is the two-modality rule.
        for s in [[1.0, 2.0], [2.0, 1.0], [1.0, 1.0], [0.3, 0.29]] {
            for shifted in [false, true] {
                let o = ogm(0.5, shifted);
                assert_eq!(o.coefficients_n(&s), o.coefficients(s).to_vec());
            }
        }
    }
}
