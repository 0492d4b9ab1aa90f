//! AMSS / AMSS+, adaptively masking subnetworks (Yang, Pan, Jiang, Xu, Tang, TPAMI 2025;
//! ../shared/baselines-3.md §3), as the audio-visual trainer `AMSS/train_test.py` computes it.
//! The concat loss, one backward; then each modality's significance from its split logits ℓ_m
//! and pooled features x_m,
//!
//! ```text
//! ratio_m = (−CE(ℓ_m) + H_Y + 0.5) / H_m,   t_m = ratio_m / T,   κ_m = clamp(1 − softmax(t)_m, 0.1, 0.9)
//! ```
//!
//! (H_Y: the library cross-entropy of the batch's label histogram with its own softmax, which is
//! not the label entropy; H_m: the mean entropy of softmax(x_m) over the feature units; κ = ½
//! for all when a numerator is ≤ 0), and in every selected kernel of encoder m only ⌈n·κ_m⌉ of
//! its n output filters keep their gradient, drawn without replacement with probabilities
//! q_j ∝ Σ grad² (`train::filter_masks`). The more significant modality keeps the smaller
//! fraction. AMSS+ (`variant: "plus"`) multiplies a kept filter by the code's 1/(q_j + 1/n)
//! (biased and amplifying) or, with `amss_plus_weight: "ht"`, by 1/π_j (Horvitz–Thompson,
//! unbiased). For two modalities κ_a = e^{t_v}/(e^{t_a} + e^{t_v}) is the code's form exactly;
//! beyond two it is the three-modality trainer's 1 − softmax, with the audio-visual ratio.

use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::tensor::{Kind, Tensor};
use crate::train::declaration::{Keeps, Knob, MethodSpec, Modalities, Reference, Variant};
use crate::train::filter_masks::{apply, channel_mask, draw, importances, normalise, Importance, KeptWeight, Sampling};
use crate::train::loss;
use crate::train::method::{per_modality, require_additive_head, Method, StepContext, StepLoss};
use crate::train::model::Model;
use crate::train::options::{opt, Literal, Resolved, Valid, Window};

pub static SPEC: MethodSpec = MethodSpec {
    name: "amss",
    aliases: &[],
    summary: "adaptively masked subnetworks: each step, a share of each encoder's filters set by its significance keeps its gradient",
    reference: Reference {
        authors: "Yang, Pan, Jiang, Xu, Tang",
        venue: "TPAMI 2025",
        code: "https://github.com/njustkmg/TPAMI-AMSS",
        commit: "3161ecc",
    },
    options: &[
        opt("variant", Literal::Text("amss"), Valid::Choice(&["amss", "plus"]), "AMSS (kept filters ×1) or AMSS+ (kept filters reweighted)"),
        opt("temperature", Literal::Float(0.2), Valid::Float(1e-6, 1e6), "T of the significance softmax"),
        opt("sample", Literal::Text("adaptive"), Valid::Choice(&["adaptive", "topk", "random", "bernoulli"]), "how the kept filters are chosen"),
        opt("gn", Literal::Text("gn"), Valid::Choice(&["gn", "gn_wn", "sqrt_gn"]), "a filter's importance: Σ grad², Σ grad² / Σ w², or √Σ grad²"),
        opt("plus", Literal::Bool(false), Valid::Bool, "reweight kept filters (AMSS+; adaptive sampling only, as the code)"),
        opt("amss_plus_weight", Literal::Text("code"), Valid::Choice(&["code", "ht"]), "AMSS+'s weight: the code's 1/(q + 1/n), or Horvitz–Thompson 1/π"),
        opt("head_mask", Literal::Text("off"), Valid::Choice(&["off", "on"]), "mask the head's blocks too (the text-image trainer; the audio-visual code samples it and never applies it)"),
        opt("params", Literal::Text("auto"), Valid::Choice(&["auto", "block_convs", "weights"]), "what is masked: the residual blocks' convolutions (the code), every weight matrix (per output unit), or the first where an encoder has them, else the second"),
        opt("window", Literal::List(&[0.0, -1.0]), Valid::Window, "epochs in which the masks act"),
        opt("seed", Literal::Int(0), Valid::Int(0, i64::MAX), "seed of the draws (one stream per (seed, step))"),
    ],
    variants: &[Variant { name: "plus", help: "AMSS+: kept filters weighted by 1/(q + 1/n)", values: &[("plus", Literal::Bool(true))] }],
    modalities: Modalities::Any,
    keeps_state: Keeps::Never,
    terms: &["ce_fused", "ce_*"],
    diagnostics: &["kappa_*", "ratio_*", "kept", "filled"],
    knob: Some(Knob { key: "temperature", values: &[Literal::Float(0.1), Literal::Float(0.2), Literal::Float(0.5)] }),
    build: |o, _| Ok(Box::new(Amss::new(o))),
};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Params {
    Auto,
    BlockConvs,
    Weights,
}

pub struct Amss {
    temperature: f64,
    sampling: Sampling,
    importance: Importance,
    weight: KeptWeight,
    head_mask: bool,
    params: Params,
    window: Window,
    seed: u64,
    /// This step's κ (from its forward pass), and what its masks kept.
    kappa: Vec<f64>,
    kept: (usize, usize, usize),
}

impl Amss {
    pub fn new(o: &Resolved) -> Amss {
        let weight = match (o.boolean("plus"), o.text("amss_plus_weight")) {
            (false, _) => KeptWeight::One,
            (true, "ht") => KeptWeight::Ht,
            (true, _) => KeptWeight::Code,
        };
        Amss {
            temperature: o.float("temperature"),
            sampling: Sampling::parse(o.text("sample")),
            importance: Importance::parse(o.text("gn")),
            weight,
            head_mask: o.text("head_mask") == "on",
            params: match o.text("params") {
                "block_convs" => Params::BlockConvs,
                "weights" => Params::Weights,
                _ => Params::Auto,
            },
            window: o.window("window"),
            seed: o.int("seed") as u64,
            kappa: Vec::new(),
            kept: (0, 0, 0),
        }
    }

    /// The tensors of encoder m that are masked, as indices into `params`.
    fn masked(&self, model: &Model, params: &[(String, Tensor)], m: usize) -> Vec<usize> {
        let of_m = |i: &usize| model.encoder_of(&params[*i].0) == Some(m);
        let block_conv = |i: &usize| {
            let n = &params[*i].0;
            params[*i].1.dim() == 4 && n.contains("layer") && n.contains("conv")
        };
        let convs: Vec<usize> = (0..params.len()).filter(of_m).filter(block_conv).collect();
        match self.params {
            Params::BlockConvs => convs,
            Params::Auto if !convs.is_empty() => convs,
            _ => (0..params.len()).filter(of_m).filter(|i| params[*i].1.dim() >= 2).collect(),
        }
    }

    /// Draws one mask over `q`'s channels; records what it kept.
    fn mask(&mut self, q: &[f64], keep: usize, rng: &mut Rng, weight: KeptWeight) -> Vec<f64> {
        let d = draw(q, keep, self.sampling, rng);
        self.kept.0 += d.kept.len();
        self.kept.1 += q.len();
        self.kept.2 += d.filled;
        // The code reweights only adaptive draws.
        let weight = if self.sampling == Sampling::Adaptive { weight } else { KeptWeight::One };
        channel_mask(q, &d, weight)
    }
}

/// The code's H_Y: the cross-entropy of the batch's label histogram p with softmax(p), over the
/// `classes` classes (ln C for a balanced batch; not the label entropy).
pub fn label_term(labels: &Tensor, classes: i64) -> Result<f64> {
    let y = Vec::<i64>::try_from(labels.f_to_kind(Kind::Int64)?.f_flatten(0, -1)?)?;
    let mut p = vec![0.0; classes as usize];
    for &c in &y {
        if c < 0 || c >= classes {
            return Err(Error::arg(format!("amss: label {c} outside the model's {classes} classes")));
        }
        p[c as usize] += 1.0 / y.len() as f64;
    }
    let lse = p.iter().map(|x| x.exp()).sum::<f64>().ln();
    Ok(-p.iter().map(|x| x * (x - lse)).sum::<f64>())
}

/// The batch-mean entropy of softmax(x) over the feature units.
pub fn feature_entropy(x: &Tensor) -> Result<f64> {
    let logp = x.f_detach()?.f_to_kind(Kind::Double)?.f_log_softmax(-1, Kind::Double)?;
    let h = logp.f_exp()?.f_mul(&logp)?.f_sum_dim_intlist([-1i64].as_slice(), false, Kind::Double)?.f_neg()?;
    Ok(h.f_mean(Kind::Double)?.f_double_value(&[])?)
}

/// κ_m and ratio_m from each modality's mean CE, H_Y, each H_m and T (the code's rule).
pub fn coefficients(ce: &[f64], h_y: f64, h: &[f64], temperature: f64) -> (Vec<f64>, Vec<f64>) {
    let num: Vec<f64> = ce.iter().map(|c| -c + h_y + 0.5).collect();
    let ratio: Vec<f64> = num.iter().zip(h).map(|(n, h)| n / h).collect();
    if num.iter().any(|&n| n <= 0.0) {
        return (vec![0.5; ce.len()], ratio);
    }
    let t: Vec<f64> = ratio.iter().map(|r| r / temperature).collect();
    let top = t.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let z: f64 = t.iter().map(|x| (x - top).exp()).sum();
    let kappa = t
        .iter()
        .map(|x| {
            let k = (1.0 - (x - top).exp() / z).clamp(0.1, 0.9);
            if k.is_nan() {
                0.5
            } else {
                k
            }
        })
        .collect();
    (kappa, ratio)
}

impl Method for Amss {
    fn prepare(&self, model: &Model) -> Result<()> {
        require_additive_head("amss", model)
    }

    fn loss(&mut self, ctx: &StepContext) -> Result<StepLoss> {
        let model = ctx.model;
        let fwd = model.forward_all(ctx.inputs, true)?;
        let l = loss::fused_only_all(&fwd.logits, ctx.labels, &model.modalities)?;
        // The unimodal CEs are logged detached; their values are the significance's scores.
        let ce = l.terms[1..].iter().map(|(_, t)| t.f_double_value(&[]).map_err(Error::from)).collect::<Result<Vec<f64>>>()?;
        let h_y = label_term(ctx.labels, model.classes)?;
        let h = fwd.features.iter().map(feature_entropy).collect::<Result<Vec<f64>>>()?;
        let (kappa, ratio) = coefficients(&ce, h_y, &h, self.temperature);
        self.kappa = if self.window.contains(ctx.epoch) { kappa } else { vec![1.0; ce.len()] };
        let mut diagnostics: Vec<(&'static str, f64)> = per_modality(model, "kappa").into_iter().zip(self.kappa.iter().copied()).collect();
        diagnostics.extend(per_modality(model, "ratio").into_iter().zip(ratio));
        let (total, terms) = (l.total, l.terms);
        Ok(StepLoss { total, terms, diagnostics })
    }

    fn adjust_gradients(&mut self, ctx: &StepContext, params: &[(String, Tensor)], grads: &mut [Tensor]) -> Result<()> {
        self.kept = (0, 0, 0);
        if !self.window.contains(ctx.epoch) {
            return Ok(());
        }
        let _guard = tch::no_grad_guard();
        let mut rng = Rng::stream(self.seed ^ 0xA55, ctx.step as u64);
        for m in 0..self.kappa.len() {
            for i in self.masked(ctx.model, params, m) {
                if !grads[i].defined() {
                    continue;
                }
                let q = normalise(&importances(&grads[i], &params[i].1, self.importance)?);
                let keep = (q.len() as f64 * self.kappa[m]).ceil() as usize;
                let mask = self.mask(&q, keep, &mut rng, self.weight);
                grads[i] = apply(&grads[i], &mask)?;
            }
        }
        if self.head_mask {
            self.mask_head(ctx.model, params, grads, &mut rng)?;
        }
        Ok(())
    }

    fn gradient_diagnostics(&mut self) -> Vec<(&'static str, f64)> {
        let (kept, of, filled) = self.kept;
        vec![("kept", if of > 0 { kept as f64 / of as f64 } else { 1.0 }), ("filled", filled as f64)]
    }
}

impl Amss {
    /// The text-image trainer's head mask: in each modality's block of the head's weight, per
    /// row, ⌊d_m·κ_m⌋ of its d_m columns keep their gradient, drawn from the row's element
    /// importances (AMSS+ weighs them 1/(q + 1/d_m)).
    fn mask_head(&mut self, model: &Model, params: &[(String, Tensor)], grads: &mut [Tensor], rng: &mut Rng) -> Result<()> {
        for (m, (name, at, block)) in model.fusion.modality_weight_blocks()?.into_iter().enumerate() {
            let Some(i) = params.iter().position(|(n, _)| *n == name) else { continue };
            if !grads[i].defined() {
                continue;
            }
            let d = block.size()[1];
            let g = grads[i].f_narrow(1, at, d)?;
            let w = params[i].1.f_narrow(1, at, d)?;
            let rows = g.size()[0];
            let mut full = Vec::with_capacity((rows * d) as usize);
            for r in 0..rows {
                let v = importances(&g.f_get(r)?.f_unsqueeze(1)?, &w.f_get(r)?.f_unsqueeze(1)?, self.importance)?;
                let q = normalise(&v);
                let keep = (d as f64 * self.kappa[m]).floor() as usize;
                full.extend(self.mask(&q, keep, rng, self.weight));
            }
            let mask = Tensor::from_slice(&full).f_reshape([rows, d])?.f_to_kind(g.kind())?.f_to(g.device())?;
            let masked = g.f_mul(&mask)?;
            let whole = grads[i].detach().copy();
            whole.f_narrow(1, at, d)?.f_copy_(&masked)?;
            grads[i] = whole;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coefficients_of_the_specs_example() {
        // CE = (0.8, 1.5), H_Y = ln 6, H = (6.0, 6.1), T = 0.2.
        let (kappa, ratio) = coefficients(&[0.8, 1.5], 6f64.ln(), &[6.0, 6.1], 0.2);
        assert!((ratio[0] - 0.24863).abs() < 1e-5 && (ratio[1] - 0.12980).abs() < 1e-5, "{ratio:?}");
        assert!((kappa[0] - 0.35568).abs() < 1e-5 && (kappa[1] - 0.64432).abs() < 1e-5, "{kappa:?}");
        assert_eq!((64.0 * kappa[0]).ceil() as usize, 23);
        // A non-positive numerator: ½ for both.
        assert_eq!(coefficients(&[3.0, 0.5], 1.0, &[6.0, 6.0], 0.2).0, vec![0.5, 0.5]);
    }

    #[test]
    fn three_modalities_take_one_minus_softmax() {
        // t = (1.0, 0.5, 0.2) at T = 1: κ = (0.51359, 0.70497, 0.78144).
        let h_y = 0.0;
        let ce: Vec<f64> = [1.0, 0.5, 0.2].iter().map(|t| -(t - 0.5)).collect();
        let (kappa, _) = coefficients(&ce, h_y, &[1.0, 1.0, 1.0], 1.0);
        for (got, want) in kappa.iter().zip([0.51359, 0.70497, 0.78144]) {
            assert!((got - want).abs() < 1e-5, "{kappa:?}");
        }
    }

    #[test]
    fn label_and_feature_entropy_terms() {
        let y = Tensor::from_slice(&[0i64, 0, 1, 2]);
        assert!((label_term(&y, 3).unwrap() - 1.06407).abs() < 1e-5);
        let balanced = Tensor::from_slice(&[0i64, 1, 2, 3, 4, 5]);
        assert!((label_term(&balanced, 6).unwrap() - 6f64.ln()).abs() < 1e-12);
        let x = Tensor::from_slice(&[0.0f32, 0.0, 0.0, 3f32.ln()]).reshape([1, 4]);
        assert!((feature_entropy(&x).unwrap() - 1.24245).abs() < 1e-5);
    }
}
