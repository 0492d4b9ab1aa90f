//! Fusion heads. Every head gives fused logits and one set of logits per modality:
//!
//! - `concat`: f = W[a; v] + b with the Eq. 2 split la = Wa·a + b/2, lv = Wv·v + b/2, so
//!   f = la + lv exactly (`fc_out`, as OGM-GE names it)
//! - `sum`: f = fc_a(a) + fc_v(v), la = fc_a(a), lv = fc_v(v) (the bias used whole, in
//!   training and evaluation alike: a public loader halves it only at evaluation)
//! - `film`: v modulated by a: γ, β = split(fc_film(a)), f = fc_out(γ·v + β)
//! - `gated`: f = fc_out(σ(fc_gate(a)) · v)
//!
//! FiLM and gated fusion have no additive split, so their unimodal logits come from linear
//! probes on each encoder's features (`fc_a`, `fc_v`), trained by the unimodal CE terms.

use super::layers::Linear;
use crate::error::{Error, Result};
use crate::tensor::{check, Tensor};
use tch::nn;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FusionKind {
    Concat,
    Sum,
    Film,
    Gated,
}

impl FusionKind {
    pub fn parse(name: &str) -> Result<FusionKind> {
        match name {
            "concat" => Ok(FusionKind::Concat),
            "sum" => Ok(FusionKind::Sum),
            "film" => Ok(FusionKind::Film),
            "gated" => Ok(FusionKind::Gated),
            other => Err(Error::arg(format!("unknown fusion \"{other}\": use \"concat\", \"sum\", \"film\" or \"gated\""))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FusionKind::Concat => "concat",
            FusionKind::Sum => "sum",
            FusionKind::Film => "film",
            FusionKind::Gated => "gated",
        }
    }
}

/// Logits of one forward pass: fused, then per modality in the model's order.
pub struct Logits {
    pub fused: Tensor,
    pub first: Tensor,
    pub second: Tensor,
}

pub struct Fusion {
    pub kind: FusionKind,
    layers: Vec<Linear>,
    da: i64,
}

impl Fusion {
    pub fn new(p: &nn::Path, kind: FusionKind, da: i64, dv: i64, classes: i64) -> Result<Fusion> {
        let layers = match kind {
            FusionKind::Concat => vec![Linear::new(&(p / "fc_out"), da + dv, classes)],
            FusionKind::Sum => vec![Linear::new(&(p / "fc_a"), da, classes), Linear::new(&(p / "fc_v"), dv, classes)],
            FusionKind::Film => vec![Linear::new(&(p / "fc_film"), da, 2 * dv), Linear::new(&(p / "fc_out"), dv, classes), Linear::new(&(p / "fc_a"), da, classes), Linear::new(&(p / "fc_v"), dv, classes)],
            FusionKind::Gated => vec![Linear::new(&(p / "fc_gate"), da, dv), Linear::new(&(p / "fc_out"), dv, classes), Linear::new(&(p / "fc_a"), da, classes), Linear::new(&(p / "fc_v"), dv, classes)],
        };
        Ok(Fusion { kind, layers, da })
    }

    pub fn forward(&self, a: &Tensor, v: &Tensor) -> Result<Logits> {
        let op = "fusion";
        match self.kind {
            FusionKind::Concat => {
                let fc = &self.layers[0];
                let wa = check(op, fc.weight.f_narrow(1, 0, self.da))?;
                let wv = check(op, fc.weight.f_narrow(1, self.da, fc.weight.size()[1] - self.da))?;
                let half = check(op, fc.bias.f_div_scalar(2.0))?;
                let first = check(op, a.f_linear(&wa, Some(&half)))?;
                let second = check(op, v.f_linear(&wv, Some(&half)))?;
                Ok(Logits { fused: check(op, first.f_add(&second))?, first, second })
            }
            FusionKind::Sum => {
                let (first, second) = (self.layers[0].forward(a)?, self.layers[1].forward(v)?);
                Ok(Logits { fused: check(op, first.f_add(&second))?, first, second })
            }
            FusionKind::Film => {
                let gb = self.layers[0].forward(a)?;
                let parts = check(op, gb.f_chunk(2, 1))?;
                let modulated = check(op, parts[0].f_mul(v).and_then(|x| x.f_add(&parts[1])))?;
                Ok(Logits { fused: self.layers[1].forward(&modulated)?, first: self.layers[2].forward(a)?, second: self.layers[3].forward(v)? })
            }
            FusionKind::Gated => {
                let gate = check(op, self.layers[0].forward(a)?.f_sigmoid())?;
                let gated = check(op, gate.f_mul(v))?;
                Ok(Logits { fused: self.layers[1].forward(&gated)?, first: self.layers[2].forward(a)?, second: self.layers[3].forward(v)? })
            }
        }
    }
}
