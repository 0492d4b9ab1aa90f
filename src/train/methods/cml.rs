//! CML, Calibrating Multimodal Learning (Ma, Zhang et al., ICML 2023; ../shared/baselines-2.md
//! §5): a model should not grow more confident when a modality is taken away. Each sample gets
//! a removal order over its modalities (S_0 all, S_k with k removed); with z_k the fused logits
//! of S_k, κ_k = max softmax(z_k) and ŷ_k = argmax z_k:
//!
//! ```text
//! L = mean_k CE(z_k) + λ·R
//! R = Σ_k Σ_i ReLU((κ_{k+1,i} − κ_{k,i})·1[ŷ_{k,i} = y_i] − ε)
//!           + ReLU((κ_{k+1,i} − sg κ_{k,i})·1[ŷ_{k,i} ≠ y_i ∧ ŷ_{k+1,i} ≠ y_i] − ε)   (official)
//! ```
//!
//! The second term is the official code's "trick 2" (no gradient into κ_k). BalanceBenchmark's
//! form (`variant: "bb"`) removes one modality per epoch for every sample and applies a batch
//! hinge max(0, Σ_i (κ_{1,i} − κ_{0,i})) without the masks. Both references apply λ to a sum
//! over the batch, so λ depends on the batch size; the default here is the batch mean
//! (`reduce: "sum"` reproduces them). Removal is by logit by default (exact for a concat head,
//! one softmax more than concat), or `feature_zero` / `input_zero` (`train::removal`).

use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::tensor::{Kind, Tensor};
use crate::train::declaration::{Keeps, Knob, MethodSpec, Modalities, Reference, Variant};
use crate::train::method::{mean_ce, value, Method, StepContext, StepLoss};
use crate::train::model::Model;
use crate::train::options::{opt, Literal, Resolved, Valid};
use crate::train::removal::{fused_without, Removal};

/// How the ranking penalty sums over a batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Hinge {
    /// Σ_i ReLU(Δκ_i − ε): each sample's own hinge (official).
    Sample,
    /// ReLU(Σ_i Δκ_i − ε): one hinge on the batch's summed differences (BalanceBenchmark).
    Batch,
}

/// The ranking penalty, summed over the batch and the removal levels: `conf[k]` are κ_k [B],
/// `correct[k]` are 1[ŷ_k = y] [B] (0/1 floats). With `masked` the official masks and trick 2
/// apply; without, every sample's difference counts (BalanceBenchmark).
pub fn ranking_penalty(conf: &[Tensor], correct: &[Tensor], hinge: Hinge, masked: bool, eps: f64) -> Result<Tensor> {
    let op = "cml";
    let mut total: Option<Tensor> = None;
    for k in 0..conf.len().saturating_sub(1) {
        let rise = conf[k + 1].f_sub(&conf[k])?;
        let term = if masked {
            let first = rise.f_mul(&correct[k])?;
            // Trick 2: both predictions wrong; the gradient reaches κ_{k+1} only.
            let both_wrong = correct[k].f_rsub_scalar(1.0).and_then(|w| w.f_mul(&correct[k + 1].f_rsub_scalar(1.0)?))?;
            let second = conf[k + 1].f_sub(&conf[k].f_detach().map_err(|e| Error::torch(op, e))?).and_then(|d| d.f_mul(&both_wrong))?;
            match hinge {
                Hinge::Sample => {
                    (first
                        .f_sub_scalar(eps)
                        .and_then(|a| a.f_relu())
                        .and_then(|a| a.f_add(&second.f_sub_scalar(eps)?.f_relu()?))
                        .and_then(|t| t.f_sum(Kind::Float)))?
                }
                Hinge::Batch => {
                    (first
                        .f_sum(Kind::Float)
                        .and_then(|a| a.f_sub_scalar(eps)?.f_relu())
                        .and_then(|a| a.f_add(&second.f_sum(Kind::Float)?.f_sub_scalar(eps)?.f_relu()?)))?
                }
            }
        } else {
            match hinge {
                Hinge::Sample => rise.f_sub_scalar(eps).and_then(|a| a.f_relu()).and_then(|a| a.f_sum(Kind::Float))?,
                Hinge::Batch => rise.f_sum(Kind::Float).and_then(|a| a.f_sub_scalar(eps)?.f_relu())?,
            }
        };
        total = Some(match total {
            None => term,
            Some(t) => t.f_add(&term)?,
        });
    }
    total.ok_or_else(|| Error::arg("cml: needs at least two removal levels".to_string()))
}

pub struct Cml {
    lambda: f64,
    hinge: Hinge,
    masked: bool,
    removal: Removal,
    per_sample: bool,
    mean: bool,
    eps: f64,
    seed: u64,
}

pub static SPEC: MethodSpec = MethodSpec {
    name: "cml",
    aliases: &[],
    summary: "calibrated multimodal learning: a ranking penalty that keeps confidence from rising when a modality is removed",
    reference: Reference { authors: "Ma et al.", venue: "ICML 2023", code: "https://github.com/QingyangZhang/CML", commit: "9d2496e" },
    options: &[
        opt(
            "variant",
            Literal::Text("official"),
            Valid::Choice(&["official", "bb"]),
            "the authors' rule, or BalanceBenchmark's four switches at once",
        ),
        opt("lambda", Literal::Float(0.1), Valid::Float(0.0, 1e6), "weight λ of the ranking penalty"),
        opt("hinge", Literal::Text("sample"), Valid::Choice(&["sample", "batch"]), "each sample's own hinge, or one over the batch mean"),
        opt(
            "mask",
            Literal::Text("official"),
            Valid::Choice(&["official", "none"]),
            "penalise only where removal raised confidence (official), or everywhere",
        ),
        opt("removal", Literal::Text("logit"), Valid::Choice(Removal::NAMES), "where a modality is removed: its logits, features or input"),
        opt(
            "order",
            Literal::Text("per_sample"),
            Valid::Choice(&["per_sample", "per_epoch"]),
            "removal order drawn per sample, or once per epoch",
        ),
        opt("reduce", Literal::Text("mean"), Valid::Choice(&["mean", "sum"]), "the penalty's reduction over the batch"),
        opt("eps", Literal::Float(0.0), Valid::Float(0.0, 1.0), "margin ε of the hinge"),
        opt("seed", Literal::Int(0), Valid::Int(0, i64::MAX), "seed of the removal order"),
    ],
    variants: &[Variant {
        name: "bb",
        help: "BalanceBenchmark: batch hinge, no mask, one order per epoch, summed",
        values: &[
            ("hinge", Literal::Text("batch")),
            ("mask", Literal::Text("none")),
            ("order", Literal::Text("per_epoch")),
            ("reduce", Literal::Text("sum")),
        ],
    }],
    modalities: Modalities::Any,
    keeps_state: Keeps::Never,
    terms: &["ce_fused", "ce_removed", "penalty"],
    diagnostics: &["conf_full", "conf_removed"],
    knob: Some(Knob { key: "lambda", values: &[Literal::Float(0.05), Literal::Float(0.1), Literal::Float(0.5)] }),
    build: |o, _| Ok(Box::new(Cml::new(o)?)),
};

impl Cml {
    pub fn new(opts: &Resolved) -> Result<Cml> {
        Ok(Cml {
            lambda: opts.float("lambda"),
            hinge: if opts.text("hinge") == "batch" { Hinge::Batch } else { Hinge::Sample },
            masked: opts.text("mask") == "official",
            removal: Removal::parse(opts.text("removal"))?,
            per_sample: opts.text("order") == "per_sample",
            mean: opts.text("reduce") == "mean",
            eps: opts.float("eps"),
            seed: opts.int("seed") as u64,
        })
    }

    /// Each sample's removal order as ranks [B][N] (rank r: removed at level r + 1). Per sample,
    /// drawn from (seed, step); per epoch, one order for the whole epoch from (seed, epoch).
    fn ranks(&self, batch: usize, n: usize, epoch: usize, step: i64) -> Vec<Vec<usize>> {
        let mut order: Vec<usize> = (0..n).collect();
        if self.per_sample {
            let mut rng = Rng::stream(self.seed ^ 0xC3, step as u64);
            (0..batch)
                .map(|_| {
                    rng.shuffle(&mut order);
                    rank_of(&order)
                })
                .collect()
        } else {
            // BalanceBenchmark shuffles the modality list and removes the last one.
            Rng::stream(self.seed ^ 0xC3E, epoch as u64).shuffle(&mut order);
            order.reverse();
            vec![rank_of(&order); batch]
        }
    }
}

/// rank[m] = position of modality m in `order`.
fn rank_of(order: &[usize]) -> Vec<usize> {
    let mut rank = vec![0; order.len()];
    for (pos, &m) in order.iter().enumerate() {
        rank[m] = pos;
    }
    rank
}

impl Method for Cml {
    fn prepare(&self, model: &Model) -> Result<()> {
        self.removal.check("cml", model)
    }

    fn loss(&mut self, ctx: &StepContext) -> Result<StepLoss> {
        let model = ctx.model;
        let n = model.modalities.len();
        let fwd = model.forward_all(ctx.inputs, true)?;
        let b = ctx.labels.size()[0] as usize;
        let ranks = self.ranks(b, n, ctx.epoch, ctx.step);
        let mut logits = vec![fwd.logits.fused.shallow_clone()];
        for k in 1..n {
            let keep: Vec<f32> = ranks.iter().flat_map(|r| r.iter().map(move |&rank| if rank >= k { 1.0 } else { 0.0 })).collect();
            let keep = Tensor::f_from_slice(&keep).and_then(|t| t.f_reshape([b as i64, n as i64]))?;
            logits.push(fused_without(model, ctx.inputs, &fwd, &keep, self.removal, true)?);
        }
        let mut ce = Vec::with_capacity(n);
        let mut conf = Vec::with_capacity(n);
        let mut correct = Vec::with_capacity(n);
        for z in &logits {
            ce.push(mean_ce(z, ctx.labels)?);
            let p = z.f_softmax(-1, Kind::Float)?;
            conf.push(p.f_amax([-1i64].as_slice(), false)?);
            correct.push(z.f_argmax(-1, false).and_then(|y| y.f_eq_tensor(ctx.labels)).and_then(|c| c.f_to_kind(Kind::Float))?);
        }
        let mut ce_sum = ce[0].shallow_clone();
        for c in &ce[1..] {
            ce_sum = ce_sum.f_add(c)?;
        }
        let ce_mean = ce_sum.f_div_scalar(n as f64)?;
        let mut penalty = ranking_penalty(&conf, &correct, self.hinge, self.masked, self.eps)?;
        if self.mean {
            penalty = penalty.f_div_scalar(b.max(1) as f64)?;
        }
        let total = penalty.f_mul_scalar(self.lambda).and_then(|p| ce_mean.f_add(&p))?;
        let mut removed_ce = ce[1].shallow_clone();
        for c in &ce[2..] {
            removed_ce = removed_ce.f_add(c)?;
        }
        let removed_ce = removed_ce.f_div_scalar((n - 1) as f64)?;
        let conf_full = value(&conf[0].f_mean(Kind::Float)?)?;
        let conf_removed = value(&conf[1].f_mean(Kind::Float)?)?;
        let detached = |t: &Tensor| t.f_detach().map_err(Error::from);
        Ok(StepLoss {
            terms: vec![("ce_fused", detached(&ce[0])?), ("ce_removed", detached(&removed_ce)?), ("penalty", detached(&penalty)?)],
            diagnostics: vec![("conf_full", conf_full), ("conf_removed", conf_removed)],
            total,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::declaration::with_options;
    use crate::train::options::Value;

    fn t(v: &[f32]) -> Tensor {
        Tensor::from_slice(v)
    }

    fn scalar(x: &Tensor) -> f64 {
        x.double_value(&[])
    }

    #[test]
    fn the_specs_hinge_example() {
        // κ_s = (0.9, 0.5), κ_p = (0.6, 0.9) (baselines-2.md §5).
        let conf = [t(&[0.9, 0.5]), t(&[0.6, 0.9])];
        let all_right = [t(&[1.0, 1.0]), t(&[1.0, 1.0])];
        let batch = ranking_penalty(&conf, &all_right, Hinge::Batch, false, 0.0).unwrap();
        assert!((scalar(&batch) - 0.1).abs() < 1e-6, "batch hinge {}", scalar(&batch));
        let sample = ranking_penalty(&conf, &all_right, Hinge::Sample, false, 0.0).unwrap();
        assert!((scalar(&sample) - 0.4).abs() < 1e-6, "per-sample hinge {}", scalar(&sample));
        // Official mask, sample 2's full prediction correct (sample 1 wrong both times).
        let correct = [t(&[0.0, 1.0]), t(&[0.0, 1.0])];
        let masked = ranking_penalty(&conf, &correct, Hinge::Sample, true, 0.0).unwrap();
        assert!((scalar(&masked) - 0.4).abs() < 1e-6, "masked {}", scalar(&masked));
        // Sample 2's full prediction wrong and its reduced one right: no term counts it.
        let correct = [t(&[1.0, 0.0]), t(&[1.0, 1.0])];
        assert!(scalar(&ranking_penalty(&conf, &correct, Hinge::Sample, true, 0.0).unwrap()).abs() < 1e-6);
        // ε shifts every hinge.
        let shifted = ranking_penalty(&conf, &all_right, Hinge::Sample, false, 0.1).unwrap();
        assert!((scalar(&shifted) - 0.3).abs() < 1e-6);
    }

    #[test]
    fn trick_two_sends_no_gradient_into_the_fuller_confidence() {
        let full = t(&[0.5]).set_requires_grad(true);
        let reduced = t(&[0.8]).set_requires_grad(true);
        let wrong = [t(&[0.0]), t(&[0.0])];
        let p = ranking_penalty(&[full.shallow_clone(), reduced.shallow_clone()], &wrong, Hinge::Sample, true, 0.0).unwrap();
        assert!((scalar(&p) - 0.3).abs() < 1e-6);
        let g = Tensor::run_backward(&[p], &[&full, &reduced], false, false);
        assert!(!g[0].defined() || scalar(&g[0].sum(Kind::Float)) == 0.0, "κ_0 got a gradient");
        assert_eq!(scalar(&g[1].sum(Kind::Float)), 1.0);
    }

    #[test]
    fn variant_bb_sets_balancebenchmarks_switches_unless_given() {
        let c = with_options(&SPEC, &[("variant".into(), Value::Text("bb".into()))], Cml::new).unwrap();
        assert_eq!((c.hinge, c.masked, c.per_sample, c.mean), (Hinge::Batch, false, false, false));
        let c =
            with_options(&SPEC, &[("variant".into(), Value::Text("bb".into())), ("reduce".into(), Value::Text("mean".into()))], Cml::new)
                .unwrap();
        assert!(c.mean && !c.per_sample);
        assert!(with_options(&SPEC, &[("lambda".into(), Value::Float(-1.0))], Cml::new)
            .err()
            .expect("an error")
            .to_string()
            .contains("lambda must be"));
    }

    #[test]
    fn removal_orders_are_permutations_and_per_epoch_orders_are_shared() {
        let c = with_options(&SPEC, &[], Cml::new).unwrap();
        let r = c.ranks(50, 3, 0, 7);
        assert!(r.iter().all(|rank| {
            let mut s = rank.clone();
            s.sort();
            s == vec![0, 1, 2]
        }));
        assert!(r.iter().any(|x| x != &r[0]), "per-sample orders should differ");
        assert_eq!(r, c.ranks(50, 3, 0, 7), "the same step draws the same orders");
        let bb = with_options(&SPEC, &[("order".into(), Value::Text("per_epoch".into()))], Cml::new).unwrap();
        let r = bb.ranks(10, 2, 4, 0);
        assert!(r.iter().all(|x| x == &r[0]));
    }
}
