//! Fusion heads. Every head gives fused logits and one set of logits per modality:
//!
//! Any number N >= 2 of modalities for concat, sum and shared; FiLM and gated take two.
//!
//! - `concat`: f = W[a; v; ...] + b with the Eq. 2 split l_m = W_m·x_m + b/N (b/2 for two), so
//!   f = Σ l_m exactly (`fc_out`, as OGM-GE names it; BalanceBenchmark's rule for N)
//! - `concat+heads` (model option `heads: "separate"`): the concat head for f, and a separate
//!   linear head per modality (`head_0`, `head_1`, ...) for the unimodal logits l_m = h_m(x_m),
//!   trained only by unimodal losses (MMPareto's official model, ../shared/baselines-2.md M1)
//! - `sum`: f = fc_a(a) + fc_v(v), la = fc_a(a), lv = fc_v(v) (the bias used whole, in
//!   training and evaluation alike: a public loader halves it only at evaluation); for N > 2
//!   the layers are fc_0, fc_1, ...
//! - `film`: v modulated by a: γ, β = split(fc_film(a)), f = fc_out(γ·v + β)
//! - `gated`: f = fc_out(σ(fc_gate(a)) · v)
//! - `shared_mlp`: as `shared`, with an MLP classifier d → 256 → ReLU → C (ReconBoost's head)
//! - `shared`: one classifier for every modality (MLA): l_m = fc_out(x_m), and f the mean of
//!   the l_m (½·la + ½·lv), or under MLA's head rules (two modalities) a fixed mix or
//!   per-sample entropy gates; the encoders must give features of one size
//!
//! FiLM and gated fusion have no additive split, so their unimodal logits come from linear
//! probes on each encoder's features (`fc_a`, `fc_v`), trained by the unimodal CE terms.

use super::layers::Linear;
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use std::cell::RefCell;
use tch::nn;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FusionKind {
    Concat,
    /// The concat head plus one separate linear head per modality (M1).
    ConcatHeads,
    /// One MLP classifier (d → 256 → ReLU → C) shared by every modality (ReconBoost's head).
    SharedMlp,
    Sum,
    Film,
    Gated,
    Shared,
    /// AUG's head: per modality an embedding ReLU(A_m x_m) (d_m → 256) into one output layer O
    /// (256 → C) shared by every modality, plus boosting layers O(ReLU(E_m,k x_m)) added during
    /// training (M13); f_m = O(e_m) + Σ_k O(ReLU(E_m,k x_m)).
    Boosted,
}

impl FusionKind {
    pub fn parse(name: &str) -> Result<FusionKind> {
        match name {
            "concat" => Ok(FusionKind::Concat),
            "concat+heads" => Ok(FusionKind::ConcatHeads),
            "shared_mlp" => Ok(FusionKind::SharedMlp),
            "sum" => Ok(FusionKind::Sum),
            "film" => Ok(FusionKind::Film),
            "gated" => Ok(FusionKind::Gated),
            "shared" => Ok(FusionKind::Shared),
            "boosted" => Ok(FusionKind::Boosted),
            other => Err(Error::arg(format!(
                "unknown fusion \"{other}\": use \"concat\", \"concat+heads\", \"sum\", \"film\", \"gated\", \"shared\", \"shared_mlp\" or \"boosted\""
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FusionKind::Concat => "concat",
            FusionKind::ConcatHeads => "concat+heads",
            FusionKind::SharedMlp => "shared_mlp",
            FusionKind::Sum => "sum",
            FusionKind::Film => "film",
            FusionKind::Gated => "gated",
            FusionKind::Shared => "shared",
            FusionKind::Boosted => "boosted",
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
    /// H_m the entropy of softmax(l_m), so the more certain modalities weigh more (any number).
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
    x.f_norm_scalaropt_dim(2, [1i64].as_slice(), true).and_then(|n| n.f_clamp_min(1e-12)).and_then(|n| x.f_div(&n)).map_err(Error::from)
}

/// scale · x̂ · Ŵᵀ: each sample and each class's weight row normalised separately.
fn cosine_logits(x: &Tensor, w: &Tensor, scale: f64) -> Result<Tensor> {
    (unit_rows(x)?
        .f_matmul(&unit_rows(w)?.f_t_copy().map_err(|e| crate::error::Error::torch("cosine", e))?)
        .and_then(|l| l.f_mul_scalar(scale)))
    .map_err(Error::from)
}

/// Per-sample fusion gates [B, N] from each modality's logits: entropies from log_softmax,
/// λ_m = exp(max H − H_m) / Σ exp(max H − H_m'). Each row depends on that sample alone
/// (the reference code's gate over the whole batch made results depend on batch make-up).
pub fn entropy_gates(per: &[Tensor]) -> Result<Tensor> {
    let entropy = |l: &Tensor| {
        (l.f_log_softmax(-1, tch::Kind::Float)
            .and_then(|lp| lp.f_exp()?.f_mul(&lp)?.f_sum_dim_intlist([-1i64].as_slice(), false, tch::Kind::Float))
            .and_then(|s| s.f_neg()))
        .map_err(Error::from)
    };
    let h = Tensor::f_stack(&per.iter().map(entropy).collect::<Result<Vec<_>>>()?, 1)?;
    // softmax(max H − H) over the modalities is exactly the normalised exp(max H − H_m).
    h.f_neg().and_then(|x| x.f_softmax(1, tch::Kind::Float)).map_err(Error::from)
}

/// Logits of one forward pass: fused, then one per modality in the model's order.
pub struct Logits {
    pub fused: Tensor,
    pub per: Vec<Tensor>,
}

impl Logits {
    /// The first modality's logits (two-modality rules name them first and second).
    pub fn first(&self) -> &Tensor {
        &self.per[0]
    }

    pub fn second(&self) -> &Tensor {
        &self.per[1]
    }
}

/// The hidden width of the `shared_mlp` classifier (ReconBoost's 512 → 256 → C).
pub const SHARED_HIDDEN: i64 = 256;

/// The width of the `boosted` head's embeddings and boosting layers (AUG's 512 → 256).
pub const BOOSTED_HIDDEN: i64 = 256;

pub struct Fusion {
    pub kind: FusionKind,
    layers: Vec<Linear>,
    /// Each modality's feature size, in the model's order.
    dims: Vec<i64>,
    /// The `boosted` head's boosting layers per modality, in the order they were added (the
    /// model grows them during training: `Model::grow_booster`).
    boosters: RefCell<Vec<Vec<Linear>>>,
}

/// l_0 + l_1 + ... in order (so two modalities add exactly as they always did).
fn sum_all(parts: &[Tensor]) -> Result<Tensor> {
    let mut total = parts[0].shallow_clone();
    for p in &parts[1..] {
        total = total.f_add(p)?;
    }
    Ok(total)
}

impl Fusion {
    pub fn new(p: &nn::Path, kind: FusionKind, dims: &[i64], classes: i64) -> Result<Fusion> {
        let n = dims.len();
        if n < 2 {
            return Err(Error::arg(format!("fusion: needs at least two modalities, got {n}")));
        }
        if n > 2 && matches!(kind, FusionKind::Film | FusionKind::Gated) {
            return Err(Error::arg(format!(
                "fusion \"{}\" conditions one modality on another, which is defined for two; this model has {n}: use \"concat\", \"sum\" or \"shared\"",
                kind.name()
            )));
        }
        let (da, dv) = (dims[0], dims[1]);
        let layers = match kind {
            FusionKind::Concat => vec![Linear::new(&(p / "fc_out"), dims.iter().sum(), classes)],
            FusionKind::ConcatHeads => {
                let mut layers = vec![Linear::new(&(p / "fc_out"), dims.iter().sum(), classes)];
                layers.extend(dims.iter().enumerate().map(|(i, &d)| Linear::new(&(p / format!("head_{i}")), d, classes)));
                layers
            }
            // Two modalities keep their historical names (fc_a, fc_v); more are numbered.
            FusionKind::Sum if n == 2 => vec![Linear::new(&(p / "fc_a"), da, classes), Linear::new(&(p / "fc_v"), dv, classes)],
            FusionKind::Sum => dims.iter().enumerate().map(|(i, &d)| Linear::new(&(p / format!("fc_{i}")), d, classes)).collect(),
            FusionKind::Film => vec![
                Linear::new(&(p / "fc_film"), da, 2 * dv),
                Linear::new(&(p / "fc_out"), dv, classes),
                Linear::new(&(p / "fc_a"), da, classes),
                Linear::new(&(p / "fc_v"), dv, classes),
            ],
            FusionKind::Gated => vec![
                Linear::new(&(p / "fc_gate"), da, dv),
                Linear::new(&(p / "fc_out"), dv, classes),
                Linear::new(&(p / "fc_a"), da, classes),
                Linear::new(&(p / "fc_v"), dv, classes),
            ],
            FusionKind::Boosted => {
                let mut layers: Vec<Linear> =
                    dims.iter().enumerate().map(|(i, &d)| Linear::new(&(p / format!("embed_{i}")), d, BOOSTED_HIDDEN)).collect();
                layers.push(Linear::new(&(p / "fc_out"), BOOSTED_HIDDEN, classes));
                layers
            }
            FusionKind::Shared | FusionKind::SharedMlp => {
                if dims.iter().any(|&d| d != da) {
                    return Err(Error::arg(format!(
                        "fusion \"shared\" (one classifier for every modality, as MLA) needs encoders with features of one size, got {}: pick encoder sizes that match, e.g. \"mlp:256,128\" beside \"cnn\" (128)",
                        dims.iter().map(i64::to_string).collect::<Vec<_>>().join(" and ")
                    )));
                }
                if kind == FusionKind::SharedMlp {
                    vec![Linear::new(&(p / "fc_hidden"), da, SHARED_HIDDEN), Linear::new(&(p / "fc_out"), SHARED_HIDDEN, classes)]
                } else {
                    vec![Linear::new(&(p / "fc_out"), da, classes)]
                }
            }
        };
        Ok(Fusion { kind, layers, dims: dims.to_vec(), boosters: RefCell::new((0..n).map(|_| Vec::new()).collect()) })
    }

    /// How many boosting layers each modality has (all 0 unless the head is `boosted`).
    pub fn booster_counts(&self) -> Vec<usize> {
        self.boosters.borrow().iter().map(Vec::len).collect()
    }

    /// Adds a boosting layer to modality m's list (its tensors already in the model's store).
    pub fn push_booster(&self, m: usize, layer: Linear) -> Result<()> {
        if self.kind != FusionKind::Boosted {
            return Err(Error::arg(format!("boosting layers need fusion \"boosted\", not {}", self.kind.name())));
        }
        self.boosters.borrow_mut()[m].push(layer);
        Ok(())
    }

    /// Modality m's feature size.
    pub fn dim(&self, m: usize) -> i64 {
        self.dims[m]
    }

    /// The `boosted` head on modality m's features: its logits f_m, the ensemble without the
    /// newest boosting layer o_m (f_m when it has none), and the newest layer's own logits n_m.
    pub fn boosted_parts(&self, m: usize, x: &Tensor) -> Result<(Tensor, Tensor, Option<Tensor>)> {
        if self.kind != FusionKind::Boosted {
            return Err(Error::arg(format!("boosted logits need fusion \"boosted\", not {}", self.kind.name())));
        }
        let n = self.dims.len();
        let out = &self.layers[n];
        let mut f = out.forward(&super::layers::relu(self.layers[m].forward(x)?)?)?;
        let mut previous = f.shallow_clone();
        let mut newest = None;
        for layer in self.boosters.borrow()[m].iter() {
            previous = f.shallow_clone();
            let add = out.forward(&super::layers::relu(layer.forward(x)?)?)?;
            f = f.f_add(&add)?;
            newest = Some(add);
        }
        Ok((f, previous, newest))
    }

    /// The shared classifier on one modality's features (MLA's rounds train it this way).
    pub fn shared_logits(&self, x: &Tensor) -> Result<Tensor> {
        match self.kind {
            FusionKind::Shared => self.layers[0].forward(x),
            FusionKind::SharedMlp => self.layers[1].forward(&super::layers::relu(self.layers[0].forward(x)?)?),
            other => Err(Error::arg(format!("a shared classifier needs fusion \"shared\" or \"shared_mlp\", not {}", other.name()))),
        }
    }

    /// Each modality's logits through this head with the head's tensors detached, so a loss on
    /// them trains the encoders only (DGL's routing; its fused loss on detached features trains
    /// the head only). Concat: x_m·sg(W_m)ᵀ plus sg(b) whole (`whole_bias`, DGL's code: the head
    /// applied to [x_m; 0]) or sg(b)/N (Eq. 2's split); sum: fc_m(x_m) with fc_m detached.
    pub fn per_modality_frozen(&self, features: &[Tensor], whole_bias: bool) -> Result<Vec<Tensor>> {
        let n = self.dims.len();
        if features.len() != n {
            return Err(Error::arg(format!("fusion: {} feature tensors for a head over {n} modalities", features.len())));
        }
        match self.kind {
            FusionKind::Concat => {
                let fc = &self.layers[0];
                let b = fc.bias.f_detach()?;
                let b = if whole_bias { b } else { b.f_div_scalar(n as f64)? };
                let blocks = self.concat_blocks(&fc.weight.f_detach()?)?;
                features.iter().zip(&blocks).map(|(x, w)| x.f_linear(w, Some(&b)).map_err(Error::from)).collect()
            }
            FusionKind::Sum => features
                .iter()
                .zip(&self.layers)
                .map(|(x, l)| x.f_linear(&l.weight.f_detach()?, Some(&l.bias.f_detach()?)).map_err(Error::from))
                .collect(),
            other => Err(Error::arg(format!(
                "unimodal logits through a frozen head need a concat or sum head, whose logits split into one part per modality; {} fusion has none: use fusion: \"concat\"",
                other.name()
            ))),
        }
    }

    /// Each modality's block of a concat or sum head's weight: the parameter's name (under the
    /// model's `fusion.`), the block's first column in it, and the block, a live C × d_m view
    /// (CGGM compares it with its guides' output layers).
    pub fn modality_weight_blocks(&self) -> Result<Vec<(String, i64, Tensor)>> {
        let n = self.dims.len();
        match self.kind {
            FusionKind::Concat => {
                let mut at = 0;
                let mut out = Vec::with_capacity(n);
                for &d in &self.dims {
                    out.push(("fusion.fc_out.weight".to_string(), at, self.layers[0].weight.f_narrow(1, at, d)?));
                    at += d;
                }
                Ok(out)
            }
            FusionKind::Sum => Ok(self
                .layers
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let name = if n == 2 { ["fc_a", "fc_v"][i].to_string() } else { format!("fc_{i}") };
                    (format!("fusion.{name}.weight"), 0, l.weight.shallow_clone())
                })
                .collect()),
            other => Err(Error::arg(format!(
                "a per-modality block of the head's weight needs a concat or sum head; {} fusion has none: use fusion: \"concat\"",
                other.name()
            ))),
        }
    }

    /// Column blocks of the concat head's weight, one per modality.
    fn concat_blocks(&self, w: &Tensor) -> Result<Vec<Tensor>> {
        let mut out = Vec::with_capacity(self.dims.len());
        let mut at = 0;
        for &d in &self.dims {
            out.push(w.f_narrow(1, at, d)?);
            at += d;
        }
        Ok(out)
    }

    pub fn forward(&self, features: &[Tensor], rule: HeadRule) -> Result<Logits> {
        let _op = "fusion";
        let n = self.dims.len();
        if features.len() != n {
            return Err(Error::arg(format!("fusion: {} feature tensors for a head over {n} modalities", features.len())));
        }
        if let HeadRule::Cosine { scale } = rule {
            let weights: Vec<Tensor> = match self.kind {
                FusionKind::Concat => self.concat_blocks(&self.layers[0].weight)?,
                FusionKind::Sum => self.layers.iter().map(|l| l.weight.shallow_clone()).collect(),
                other => {
                    return Err(Error::arg(format!(
                    "cosine logits (MMCosine) need a concat or sum head, not {}: its logits are not a sum of one linear map per modality",
                    other.name()
                )))
                }
            };
            let per = features.iter().zip(&weights).map(|(x, w)| cosine_logits(x, w, scale)).collect::<Result<Vec<_>>>()?;
            return Ok(Logits { fused: sum_all(&per)?, per });
        }
        if matches!(self.kind, FusionKind::Shared | FusionKind::SharedMlp | FusionKind::Boosted) {
            let per = if self.kind == FusionKind::Boosted {
                features.iter().enumerate().map(|(m, x)| Ok(self.boosted_parts(m, x)?.0)).collect::<Result<Vec<_>>>()?
            } else {
                features.iter().map(|x| self.shared_logits(x)).collect::<Result<Vec<_>>>()?
            };
            let fused = match rule {
                HeadRule::Mix { .. } if n != 2 => {
                    return Err(Error::arg(format!(
                        "the {} head rule (MLA's fixed fusion) weighs the first of two modalities; this model has {n}",
                        rule.describe()
                    )));
                }
                HeadRule::EntropyGate => {
                    // Σ_m λ_m·l_m in the model's order (first·λ_0 + second·λ_1 for two).
                    let g = entropy_gates(&per)?;
                    let mut fused = g.f_narrow(1, 0, 1).and_then(|g0| per[0].f_mul(&g0))?;
                    for (m, l) in per.iter().enumerate().skip(1) {
                        fused = g.f_narrow(1, m as i64, 1).and_then(|gm| l.f_mul(&gm)).and_then(|x| fused.f_add(&x))?;
                    }
                    fused
                }
                HeadRule::Mix { first: w } => per[0].f_mul_scalar(w).and_then(|x| x.f_add(&per[1].f_mul_scalar(1.0 - w)?))?,
                // The mean of the modalities' logits: ½·(l_a + l_v) for two.
                _ => sum_all(&per)?.f_mul_scalar(1.0 / n as f64)?,
            };
            return Ok(Logits { fused, per });
        }
        if !matches!(rule, HeadRule::Linear) {
            return Err(Error::arg(format!("the {} head rule needs fusion \"shared\", not {}", rule.describe(), self.kind.name())));
        }
        match self.kind {
            FusionKind::Shared | FusionKind::SharedMlp | FusionKind::Boosted => unreachable!("handled above"),
            FusionKind::Concat | FusionKind::ConcatHeads => {
                // Eq. 2's split: l_m = x_m W_m^T + b/N, so the fused logits are their sum.
                let fc = &self.layers[0];
                let share = fc.bias.f_div_scalar(n as f64)?;
                let blocks = self.concat_blocks(&fc.weight)?;
                let split = features
                    .iter()
                    .zip(&blocks)
                    .map(|(x, w)| x.f_linear(w, Some(&share)).map_err(Error::from))
                    .collect::<Result<Vec<_>>>()?;
                let fused = sum_all(&split)?;
                let per = match self.kind {
                    // The unimodal logits come from each modality's own head, not the split.
                    FusionKind::ConcatHeads => {
                        features.iter().zip(&self.layers[1..]).map(|(x, l)| l.forward(x)).collect::<Result<Vec<_>>>()?
                    }
                    _ => split,
                };
                Ok(Logits { fused, per })
            }
            FusionKind::Sum => {
                let per = features.iter().zip(&self.layers).map(|(x, l)| l.forward(x)).collect::<Result<Vec<_>>>()?;
                Ok(Logits { fused: sum_all(&per)?, per })
            }
            FusionKind::Film => {
                let (a, v) = (&features[0], &features[1]);
                let gb = self.layers[0].forward(a)?;
                let parts = gb.f_chunk(2, 1)?;
                let modulated = parts[0].f_mul(v).and_then(|x| x.f_add(&parts[1]))?;
                Ok(Logits { fused: self.layers[1].forward(&modulated)?, per: vec![self.layers[2].forward(a)?, self.layers[3].forward(v)?] })
            }
            FusionKind::Gated => {
                let (a, v) = (&features[0], &features[1]);
                let gate = self.layers[0].forward(a)?.f_sigmoid()?;
                let gated = gate.f_mul(v)?;
                Ok(Logits { fused: self.layers[1].forward(&gated)?, per: vec![self.layers[2].forward(a)?, self.layers[3].forward(v)?] })
            }
        }
    }
}
