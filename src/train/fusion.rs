//! Fusion heads. Every head gives fused logits and one set of logits per modality:
//!
//! - `concat`: f = W[a; v] + b with the Eq. 2 split la = Wa·a + b/2, lv = Wv·v + b/2, so
//!   f = la + lv exactly (`fc_out`, as OGM-GE names it)
//! - `sum`: f = fc_a(a) + fc_v(v), la = fc_a(a), lv = fc_v(v) (the bias used whole, in
//!   training and evaluation alike: a public loader halves it only at evaluation)
//! - `film`: v modulated by a: γ, β = split(fc_film(a)), f = fc_out(γ·v + β)
//! - `gated`: f = fc_out(σ(fc_gate(a)) · v)
//! - `shared`: one classifier for both modalities (MLA): la = fc_out(a), lv = fc_out(v), and
//!   f = ½·la + ½·lv, or under MLA's head rules a fixed mix or per-sample entropy gates; the
//!   encoders must give features of one size
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
    Shared,
}

impl FusionKind {
    pub fn parse(name: &str) -> Result<FusionKind> {
        match name {
            "concat" => Ok(FusionKind::Concat),
            "sum" => Ok(FusionKind::Sum),
            "film" => Ok(FusionKind::Film),
            "gated" => Ok(FusionKind::Gated),
            "shared" => Ok(FusionKind::Shared),
            other => Err(Error::arg(format!("unknown fusion \"{other}\": use \"concat\", \"sum\", \"film\", \"gated\" or \"shared\""))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FusionKind::Concat => "concat",
            FusionKind::Sum => "sum",
            FusionKind::Film => "film",
            FusionKind::Gated => "gated",
            FusionKind::Shared => "shared",
        }
    }
}

/// How a head turns features into logits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum HeadRule {
    /// W·x + b (with the Eq. 2 split for concat).
    Linear,
    /// MMCosine: l_m[i, c] = scale · cos(x_m[i], W_m[c, :]), no bias; concat and sum heads only.
    Cosine { scale: f64 },
    /// MLA's fixed fusion on a shared head: f = w·l_first + (1 − w)·l_second.
    Mix { first: f64 },
    /// MLA's dynamic fusion on a shared head: per sample, λ_m ∝ exp(max_m' H_m' − H_m) with
    /// H_m the entropy of softmax(l_m), so the more certain modality weighs more.
    EntropyGate,
}

impl HeadRule {
    pub fn describe(self) -> String {
        match self {
            HeadRule::Linear => "linear".into(),
            HeadRule::Cosine { scale } => format!("cosine (scale {scale})"),
            HeadRule::Mix { first } => format!("mix ({first} first)"),
            HeadRule::EntropyGate => "entropy gates".into(),
        }
    }
}

/// Rows scaled to unit L2 norm, as F.normalize(x, dim=1) (norms below 1e-12 are taken as 1e-12).
fn unit_rows(x: &Tensor) -> Result<Tensor> {
    check("cosine", x.f_norm_scalaropt_dim(2, [1i64].as_slice(), true).and_then(|n| n.f_clamp_min(1e-12)).and_then(|n| x.f_div(&n)))
}

/// scale · x̂ · Ŵᵀ: each sample and each class's weight row normalised separately.
fn cosine_logits(x: &Tensor, w: &Tensor, scale: f64) -> Result<Tensor> {
    check("cosine", unit_rows(x)?.f_matmul(&unit_rows(w)?.f_t_copy().map_err(|e| crate::error::Error::torch("cosine", e))?).and_then(|l| l.f_mul_scalar(scale)))
}

/// Per-sample fusion gates [B, 2] from two modalities' logits: entropies from log_softmax,
/// λ_m = exp(max H − H_m) / Σ exp(max H − H_m'). Each row depends on that sample alone
/// (the reference code's gate over the whole batch made results depend on batch make-up).
pub fn entropy_gates(first: &Tensor, second: &Tensor) -> Result<Tensor> {
    let op = "entropy gates";
    let entropy = |l: &Tensor| check(op, l.f_log_softmax(-1, tch::Kind::Float).and_then(|lp| lp.f_exp()?.f_mul(&lp)?.f_sum_dim_intlist([-1i64].as_slice(), false, tch::Kind::Float)).and_then(|s| s.f_neg()));
    let h = check(op, Tensor::f_stack(&[entropy(first)?, entropy(second)?], 1))?;
    // softmax(max H − H) over the two is exactly the normalised exp(max H − H_m).
    check(op, h.f_neg().and_then(|x| x.f_softmax(1, tch::Kind::Float)))
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
            FusionKind::Shared => {
                if da != dv {
                    return Err(Error::arg(format!(
                        "fusion \"shared\" (one classifier for both modalities, as MLA) needs encoders with features of one size, got {da} and {dv}: pick encoder sizes that match, e.g. \"mlp:256,128\" beside \"cnn\" (128)"
                    )));
                }
                vec![Linear::new(&(p / "fc_out"), da, classes)]
            }
        };
        Ok(Fusion { kind, layers, da })
    }

    /// The shared classifier on one modality's features (MLA's rounds train it this way).
    pub fn shared_logits(&self, x: &Tensor) -> Result<Tensor> {
        if self.kind != FusionKind::Shared {
            return Err(Error::arg(format!("a shared classifier needs fusion \"shared\", not {}", self.kind.name())));
        }
        self.layers[0].forward(x)
    }

    pub fn forward(&self, a: &Tensor, v: &Tensor, rule: HeadRule) -> Result<Logits> {
        let op = "fusion";
        if let HeadRule::Cosine { scale } = rule {
            let (wa, wv) = match self.kind {
                FusionKind::Concat => {
                    let w = &self.layers[0].weight;
                    (check(op, w.f_narrow(1, 0, self.da))?, check(op, w.f_narrow(1, self.da, w.size()[1] - self.da))?)
                }
                FusionKind::Sum => (self.layers[0].weight.shallow_clone(), self.layers[1].weight.shallow_clone()),
                other => return Err(Error::arg(format!("cosine logits (MMCosine) need a concat or sum head, not {}: its logits are not a sum of one linear map per modality", other.name()))),
            };
            let (first, second) = (cosine_logits(a, &wa, scale)?, cosine_logits(v, &wv, scale)?);
            return Ok(Logits { fused: check(op, first.f_add(&second))?, first, second });
        }
        if self.kind == FusionKind::Shared {
            let fc = &self.layers[0];
            let (first, second) = (fc.forward(a)?, fc.forward(v)?);
            let fused = match rule {
                HeadRule::EntropyGate => {
                    let g = entropy_gates(&first, &second)?;
                    check(op, (|| -> std::result::Result<_, tch::TchError> { first.f_mul(&g.f_narrow(1, 0, 1)?).and_then(|x| x.f_add(&second.f_mul(&g.f_narrow(1, 1, 1)?)?)) })())?
                }
                HeadRule::Mix { first: w } => check(op, first.f_mul_scalar(w).and_then(|x| x.f_add(&second.f_mul_scalar(1.0 - w)?)))?,
                _ => check(op, first.f_add(&second).and_then(|x| x.f_mul_scalar(0.5)))?,
            };
            return Ok(Logits { fused, first, second });
        }
        if !matches!(rule, HeadRule::Linear) {
            return Err(Error::arg(format!("the {} head rule needs fusion \"shared\", not {}", rule.describe(), self.kind.name())));
        }
        match self.kind {
            FusionKind::Shared => unreachable!("handled above"),
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
