//! DGL, disentangled gradient learning (Wei, Luo, Luo, ICCV 2025; ../shared/baselines-3.md §7).
//! The fused loss is taken on detached features, so it trains only the head; each modality's
//! loss goes through the head's blocks with the head detached, so it trains only its encoder:
//!
//! ```text
//! L = CE(W[sg x_1; ...; sg x_N] + b) + α·Σ_m CE(x_m·sg(W_m)ᵀ + sg(b))
//! ```
//!
//! One backward of L gives exactly the reference's two passes (α·Σ_m ∇CE_m, the head's
//! gradients dropped, then ∇CE_f): the head gets ∇CE_f alone, encoder m gets α·∇CE_m alone.
//! The unimodal logits carry the whole bias as the code's (`unimodal_bias: "full"`, the head
//! applied to [x_m; 0]); "split" gives them b/N as every other row's split logits. The
//! global gradient norm is clipped at 40 (`clip_norm`; 0 turns it off), as DGL's scripts do.

use crate::error::{Error, Result};
use crate::tensor::Tensor;
use crate::train::declaration::{Keeps, Knob, MethodSpec, Modalities, Reference};
use crate::train::fusion::HeadRule;
use crate::train::gradients::NormClip;
use crate::train::method::{mean_ce, per_modality, require_additive_head, Method, StepContext, StepLoss};
use crate::train::model::Model;
use crate::train::options::{opt, Literal, Resolved, Valid};

pub static SPEC: MethodSpec = MethodSpec {
    name: "dgl",
    aliases: &[],
    summary: "disentangled gradients: the fused loss trains only the head, each unimodal loss only its encoder",
    reference: Reference {
        authors: "Wei, Luo, Luo",
        venue: "ICCV 2025",
        code: "https://github.com/shicaiwei123/ICCV2025-GDL",
        commit: "b72a55f",
    },
    options: &[
        opt(
            "alpha",
            Literal::Float(4.0),
            Valid::Float(0.0, 1e3),
            "weight of the unimodal losses (4-5 on CREMA-D, 2-3 on Kinetics-Sounds in the authors' scripts)",
        ),
        opt(
            "unimodal_bias",
            Literal::Text("full"),
            Valid::Choice(&["full", "split"]),
            "the unimodal logits' bias: the head's whole bias (the code) or b/N (the split logits of the other rows)",
        ),
        opt("clip_norm", Literal::Float(40.0), Valid::Float(0.0, 1e9), "clip the global gradient norm to this (0: no clipping)"),
    ],
    variants: &[],
    modalities: Modalities::Any,
    keeps_state: Keeps::Never,
    terms: &["ce_fused", "ce_*"],
    diagnostics: &["grad_norm"],
    knob: Some(Knob { key: "alpha", values: &[Literal::Float(1.0), Literal::Float(2.0), Literal::Float(4.0)] }),
    build: |o, _| Ok(Box::new(Dgl::new(o))),
};

pub struct Dgl {
    alpha: f64,
    whole_bias: bool,
    clip: NormClip,
}

impl Dgl {
    pub fn new(o: &Resolved) -> Dgl {
        Dgl { alpha: o.float("alpha"), whole_bias: o.text("unimodal_bias") == "full", clip: NormClip::new(o.float("clip_norm")) }
    }
}

/// DGL's loss on a batch's features: the total, the fused CE and each modality's CE.
pub fn dgl_loss(
    model: &Model,
    features: &[Tensor],
    labels: &Tensor,
    alpha: f64,
    whole_bias: bool,
) -> Result<(Tensor, Tensor, Vec<Tensor>)> {
    let detached = features.iter().map(|x| x.f_detach().map_err(Error::from)).collect::<Result<Vec<_>>>()?;
    let fused = mean_ce(&model.head_all(&detached)?.fused, labels)?;
    let mut total = fused.shallow_clone();
    let mut per = Vec::with_capacity(features.len());
    for logits in model.fusion.per_modality_frozen(features, whole_bias)? {
        let ce = mean_ce(&logits, labels)?;
        total = total.f_add(&ce.f_mul_scalar(alpha)?)?;
        per.push(ce);
    }
    Ok((total, fused, per))
}

impl Method for Dgl {
    fn prepare(&self, model: &Model) -> Result<()> {
        require_additive_head("dgl", model)?;
        match model.head_rule.get() {
            HeadRule::Linear => Ok(()),
            other => Err(Error::arg(format!(
                "dgl: needs a linear head, and this model's is {} (set by an earlier method): build a new model for it",
                other.describe()
            ))),
        }
    }

    fn loss(&mut self, ctx: &StepContext) -> Result<StepLoss> {
        let features = ctx.model.encode_all(ctx.inputs, true)?;
        let (total, fused, per) = dgl_loss(ctx.model, &features, ctx.labels, self.alpha, self.whole_bias)?;
        let mut terms = vec![("ce_fused", fused)];
        terms.extend(per_modality(ctx.model, "ce").into_iter().zip(per));
        Ok(StepLoss { total, terms, diagnostics: Vec::new() })
    }

    fn adjust_gradients(&mut self, _ctx: &StepContext, _params: &[(String, Tensor)], grads: &mut [Tensor]) -> Result<()> {
        self.clip.apply(grads)
    }

    fn gradient_diagnostics(&mut self) -> Vec<(&'static str, f64)> {
        self.clip.diagnostics()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::Kind;
    use crate::train::encoder::EncoderKind;
    use crate::train::fusion::FusionKind;
    use crate::train::model::ModelSpec;

    /// A model with one-feature inputs whose head is set by hand: W = [W_a | W_v], b.
    fn hand_model(w: [[f32; 2]; 2], b: [f32; 2]) -> Model {
        let spec = ModelSpec {
            modalities: vec!["audio".into(), "visual".into()],
            shapes: vec![vec![1], vec![1]],
            encoders: vec![EncoderKind::Mlp { hidden: vec![1] }, EncoderKind::Mlp { hidden: vec![1] }],
            fusion: FusionKind::Concat,
            classes: 2,
            seed: 0,
            device: tch::Device::Cpu,
            mmtm: 0,
        };
        let m = Model::new(&spec).unwrap();
        let mut vars = m.vs.variables();
        tch::no_grad(|| {
            vars.get_mut("fusion.fc_out.weight").unwrap().copy_(&Tensor::from_slice(&[w[0][0], w[0][1], w[1][0], w[1][1]]).reshape([2, 2]));
            vars.get_mut("fusion.fc_out.bias").unwrap().copy_(&Tensor::from_slice(&b));
        });
        m
    }

    fn values(t: &Tensor) -> Vec<f64> {
        Vec::<f64>::try_from(t.to_kind(Kind::Double).reshape([-1])).unwrap()
    }

    fn close(got: &[f64], want: &[f64]) {
        assert!(got.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-5), "{got:?} != {want:?}");
    }

    #[test]
    fn the_specs_hand_example() {
        // W_a = (1, −1)ᵀ, W_v = (0.5, 0.5)ᵀ, b = 0, x_a = 1, x_v = 2, y = 0, α = 4 (§7 tests).
        let m = hand_model([[1.0, 0.5], [-1.0, 0.5]], [0.0, 0.0]);
        let xa = Tensor::from_slice(&[1.0f32]).reshape([1, 1]).set_requires_grad(true);
        let xv = Tensor::from_slice(&[2.0f32]).reshape([1, 1]).set_requires_grad(true);
        let y = Tensor::from_slice(&[0i64]);
        let (total, fused, per) = dgl_loss(&m, &[xa.shallow_clone(), xv.shallow_clone()], &y, 4.0, true).unwrap();
        close(&[fused.double_value(&[]), per[0].double_value(&[]), per[1].double_value(&[])], &[0.12693, 0.12693, std::f64::consts::LN_2]);
        total.backward();
        close(&values(&xa.grad()), &[-0.95362]);
        close(&values(&xv.grad()), &[0.0]);
        let vars = m.vs.variables();
        close(&values(&vars["fusion.fc_out.weight"].grad()), &[-0.11920, -0.23841, 0.11920, 0.23841]);
        close(&values(&vars["fusion.fc_out.bias"].grad()), &[-0.11920, 0.11920]);
    }

    #[test]
    fn the_unimodal_logits_carry_the_whole_bias_or_its_share() {
        let m = hand_model([[1.0, 0.5], [-1.0, 0.5]], [0.2, 0.0]);
        let x = [Tensor::from_slice(&[1.0f32]).reshape([1, 1]), Tensor::from_slice(&[2.0f32]).reshape([1, 1])];
        close(&values(&m.fusion.per_modality_frozen(&x, true).unwrap()[0]), &[1.2, -1.0]);
        close(&values(&m.fusion.per_modality_frozen(&x, false).unwrap()[0]), &[1.1, -1.0]);
    }

    #[test]
    fn the_head_gradient_ignores_alpha_and_the_encoders_scale_with_it() {
        let m = hand_model([[0.3, -0.7], [0.9, 0.2]], [0.1, -0.1]);
        let grads = |alpha: f64| {
            for (_, mut v) in m.vs.variables() {
                v.zero_grad();
            }
            let xa = Tensor::from_slice(&[0.4f32, -1.2]).reshape([2, 1]).set_requires_grad(true);
            let xv = Tensor::from_slice(&[1.5f32, 0.3]).reshape([2, 1]).set_requires_grad(true);
            let y = Tensor::from_slice(&[0i64, 1]);
            let (total, ..) = dgl_loss(&m, &[xa.shallow_clone(), xv.shallow_clone()], &y, alpha, true).unwrap();
            total.backward();
            (values(&m.vs.variables()["fusion.fc_out.weight"].grad()), values(&xa.grad()))
        };
        let (head1, enc1) = grads(1.0);
        let (head3, enc3) = grads(3.0);
        close(&head1, &head3);
        close(&enc3, &enc1.iter().map(|g| 3.0 * g).collect::<Vec<_>>());
    }
}
