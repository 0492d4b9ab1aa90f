//! PMR, prototypical modal rebalance (Fan et al., CVPR 2023; ../shared/baselines.md §3).
//!
//! Prototypes P_m [C, d_m] are per-class means of each encoder's features, refreshed before
//! every epoch (before epoch 0, then after each epoch) from the first ⌊n_batches·fraction⌋
//! shuffled training batches in evaluation mode, or from the whole validation split
//! (`source: "val"`, as the authors do for AVE). From the third refresh on they blend with the
//! old ones: P ← (1 − m)·P_new + m·P_old. A class absent from the subset keeps its old
//! prototype (the reference divides 0 by 0 and every distance turns NaN).
//!
//! Per step inside the window: prototype logits q_m[i, c] = −‖x_m[i] − P_m[c]‖ (plain distance,
//! sqrt of max(d², 1e-12) for a finite gradient at 0), scores s_m = Σ_i softmax(q_m)[i, y_i],
//! ρ = s_first / s_second, and L = CE(fused) + β·CE(q_first) + λ·CE(q_second) where the weaker
//! modality's coefficient is α and the other's 0 (both 0 at ρ = 1): the released code's binary
//! switch. For N modalities each has its prototypes, ρ_m = s_m / mean_{j≠m} s_j (its score
//! against the others' mean), and every modality with ρ_m < 1 gets α·CE(q_m): the same switch,
//! read as "behind the others"; at two it is the rule above exactly. `entropy: μ` adds the paper's prototypical entropy regularisation, which the released
//! code lacks: −μ·mean_i H(softmax(q_dominant)[i]) over `entropy_window`, holding the dominant
//! modality back early in training.

use crate::data::BatchOptions;
use crate::error::{Error, Result};
use crate::tensor::{Kind, Tensor};
use crate::train::declaration::{Keeps, Knob, MethodSpec, Modalities, Reference};
use crate::train::inference;
use crate::train::method::EpochContext;
use crate::train::method::{check_state_names, cross_entropy, per_modality, ratios_to_mean, Method, StepContext, StepLoss};
use crate::train::options::{opt, Literal, Resolved, Valid, Window};

pub static SPEC: MethodSpec = MethodSpec {
    name: "pmr",
    aliases: &[],
    summary: "prototypical modal rebalance: a prototype cross-entropy that pulls the weaker modality along",
    reference: Reference {
        authors: "Fan et al.",
        venue: "CVPR 2023",
        code: "https://github.com/fanyunfeng-bit/Modal-Imbalance-PMR",
        commit: "3615e48",
    },
    options: &[
        opt("alpha", Literal::Float(2.0), Valid::Float(0.0, f64::INFINITY), "strength α of the prototype term"),
        opt("momentum", Literal::Float(0.0), Valid::Float(0.0, 1.0), "momentum of the prototype update"),
        opt("window", Literal::List(&[0.0, 70.0]), Valid::Window, "epochs in which the prototype term acts"),
        opt("fraction", Literal::Float(0.1), Valid::Float(1e-6, 1.0), "share of the split the prototypes are computed on"),
        opt("source", Literal::Text("train"), Valid::Choice(&["train", "val"]), "split the prototypes are computed on"),
        opt("entropy", Literal::Float(0.0), Valid::Float(0.0, f64::INFINITY), "weight of the prototype entropy term"),
        opt("entropy_window", Literal::List(&[0.0, 10.0]), Valid::Window, "epochs in which the entropy term acts"),
    ],
    variants: &[],
    modalities: Modalities::Any,
    keeps_state: Keeps::Always,
    terms: &["ce_fused", "ce_*", "proto_ce_*", "proto_entropy"],
    diagnostics: &["rho", "rho_*", "coef_*", "proto_score_*", "active"],
    knob: Some(Knob { key: "alpha", values: &[Literal::Float(0.5), Literal::Float(1.0), Literal::Float(2.0), Literal::Float(4.0)] }),
    build: |o, _| Ok(Box::new(Pmr::new(o)?)),
};

pub struct Pmr {
    alpha: f64,
    momentum: f64,
    window: Window,
    fraction: f64,
    from_val: bool,
    entropy: f64,
    entropy_window: Window,
    /// P_m [C, d_m] (float, on the model's device) once refreshed, by modality label
    /// (`modality_label`: first / second for two, the names beyond).
    prototypes: Option<Vec<(String, Tensor)>>,
    /// The epoch whose begin_epoch last refreshed them (-1: never).
    refreshed_at: i64,
}

/// The prototype logits −‖x[i] − P[c]‖ [B, C].
pub fn prototype_logits(x: &Tensor, p: &Tensor) -> Result<Tensor> {
    let op = "pmr";
    // ‖x‖² − 2x·P + ‖P‖², clamped before the square root (cdist's backward is NaN at 0).
    let xx = x.f_square().and_then(|s| s.f_sum_dim_intlist([1i64].as_slice(), true, Kind::Float))?;
    let pp = p.f_square().and_then(|s| s.f_sum_dim_intlist([1i64].as_slice(), true, Kind::Float)).and_then(|s| s.f_t_copy())?;
    let cross = x.f_matmul(&p.f_t_copy().map_err(|e| Error::torch(op, e))?)?;
    (xx.f_add(&pp)
        .and_then(|d| d.f_sub(&cross.f_mul_scalar(2.0)?))
        .and_then(|d| d.f_clamp_min(1e-12))
        .and_then(|d| d.f_sqrt())
        .and_then(|d| d.f_neg()))
    .map_err(Error::from)
}

/// Per-class means [C, d] of `features` [n, d] and the class counts; a class with no sample
/// takes its row from `fallback` (or stays zero without one).
pub fn class_means(features: &Tensor, labels: &Tensor, classes: i64, fallback: Option<&Tensor>) -> Result<(Tensor, Vec<i64>)> {
    let d = features.size()[1];
    let f = features.f_to_kind(Kind::Double)?;
    let sums = Tensor::f_zeros([classes, d], (Kind::Double, features.device())).and_then(|z| z.f_index_add(0, labels, &f))?;
    let counts = (labels.f_bincount::<Tensor>(None, classes))?;
    let count_vec = (Vec::<i64>::try_from(&counts))?;
    let denom = counts.f_to_kind(Kind::Double).and_then(|c| c.f_clamp_min(1.0)).and_then(|c| c.f_unsqueeze(1))?;
    let mut means = sums.f_div(&denom).and_then(|m| m.f_to_kind(Kind::Float))?;
    if let Some(old) = fallback {
        let missing: Vec<i64> = count_vec.iter().enumerate().filter(|(_, &n)| n == 0).map(|(c, _)| c as i64).collect();
        if !missing.is_empty() {
            let idx = Tensor::from_slice(&missing).f_to_device(features.device())?;
            let rows = old.f_to_device(features.device()).and_then(|o| o.f_index_select(0, &idx))?;
            means = means.f_index_copy(0, &idx, &rows)?;
        }
    }
    Ok((means, count_vec))
}

/// (β, λ): the coefficients of the first and second modality's prototype CE for ratio ρ.
pub fn coefficients(alpha: f64, rho: f64) -> [f64; 2] {
    if rho > 1.0 {
        [0.0, alpha]
    } else if rho < 1.0 {
        [alpha, 0.0]
    } else {
        [0.0, 0.0]
    }
}

impl Pmr {
    pub fn new(opts: &Resolved) -> Result<Pmr> {
        Ok(Pmr {
            alpha: opts.float("alpha"),
            momentum: opts.float("momentum"),
            window: opts.window("window"),
            fraction: opts.float("fraction"),
            from_val: opts.text("source") == "val",
            entropy: opts.float("entropy"),
            entropy_window: opts.window("entropy_window"),
            prototypes: None,
            refreshed_at: -1,
        })
    }

    /// The current prototypes, one per modality in the model's order, once computed.
    pub fn prototypes(&self) -> Option<Vec<&Tensor>> {
        self.prototypes.as_ref().map(|p| p.iter().map(|(_, t)| t).collect())
    }

    fn refresh(&mut self, ctx: &EpochContext) -> Result<()> {
        let model = ctx.model;
        let (split, limit, batching) = if self.from_val {
            let val = ctx.val.ok_or_else(|| Error::arg("pmr: source \"val\" computes the prototypes on the validation split, and this dataset has none: add a val split (the dataset's val fraction, or split files), pass val: data.val to train_epoch, or use source: \"train\""))?;
            (val, None, BatchOptions { shuffle: false, augment: false, ..ctx.batching.clone() })
        } else {
            // Shuffled and augmented as the reference's train loader, in a stream of its own.
            let batching = BatchOptions { seed: ctx.batching.seed.wrapping_mul(7919).wrapping_add(17), ..ctx.batching.clone() };
            let n = crate::data::Batches::new(ctx.train, &batching)?.batch_count();
            (ctx.train, Some(((n as f64 * self.fraction).floor() as usize).max(1)), batching)
        };
        let f = inference::features(model, split, &batching, limit)?;
        let dev = model.device();
        let old = self.prototypes.take();
        let mut fresh = Vec::with_capacity(f.per.len());
        for (m, x) in f.per.iter().enumerate() {
            let label = crate::train::method::modality_label(model, m);
            let previous = old.as_ref().and_then(|o| o.iter().find(|(l, _)| l == label)).map(|(_, t)| t);
            let (means, _) = class_means(x, &f.labels, model.classes, previous)?;
            let means = means.f_to_device(dev)?;
            let blended = match previous {
                Some(o) if ctx.epoch >= 2 && self.momentum > 0.0 => {
                    means.f_mul_scalar(1.0 - self.momentum).and_then(|n| n.f_add(&o.f_mul_scalar(self.momentum)?))?
                }
                _ => means,
            };
            fresh.push((label.to_string(), blended));
        }
        self.prototypes = Some(fresh);
        self.refreshed_at = ctx.epoch as i64;
        Ok(())
    }
}

/// Mean entropy of softmax(q) over the batch.
fn mean_entropy(q: &Tensor) -> Result<Tensor> {
    (q.f_log_softmax(-1, Kind::Float)
        .and_then(|lp| lp.f_exp()?.f_mul(&lp)?.f_sum_dim_intlist([-1i64].as_slice(), false, Kind::Float))
        .and_then(|s| s.f_mean(Kind::Float))
        .and_then(|s| s.f_neg()))
    .map_err(Error::from)
}

impl Method for Pmr {
    fn begin_epoch(&mut self, ctx: &EpochContext) -> Result<()> {
        if self.from_val && ctx.val.is_none() {
            // Said before any work, so a long run does not fail after its first epoch.
            return Err(Error::arg("pmr: source \"val\" computes the prototypes on the validation split, and none was given: add a val split to the dataset and pass val: data.val (the recipes do), or use source: \"train\""));
        }
        if self.refreshed_at != ctx.epoch as i64 {
            self.refresh(ctx)?;
        }
        Ok(())
    }

    fn loss(&mut self, ctx: &StepContext) -> Result<StepLoss> {
        let model = ctx.model;
        let n_mod = model.modalities.len();
        let fwd = model.forward_all(ctx.inputs, true)?;
        let l = crate::train::loss::fused_only_all(&fwd.logits, ctx.labels, &model.modalities)?;
        let (ce_f, mut terms) = (l.total, l.terms);
        let active = self.window.contains(ctx.epoch);
        let regularise = self.entropy > 0.0 && self.entropy_window.contains(ctx.epoch);
        let coef_names = per_modality(model, "coef");
        if !(active || regularise) {
            let mut diagnostics: Vec<(&'static str, f64)> = coef_names.into_iter().map(|k| (k, 0.0)).collect();
            diagnostics.push(("active", 0.0));
            return Ok(StepLoss { total: ce_f, terms, diagnostics });
        }
        let protos = self.prototypes.as_ref().ok_or_else(|| {
            Error::arg("pmr: no prototypes yet: train_epoch computes them before each epoch; to step by hand, run one train_epoch first")
        })?;
        let mut q = Vec::with_capacity(n_mod);
        for m in 0..n_mod {
            let label = crate::train::method::modality_label(model, m);
            let p = protos.iter().find(|(l, _)| l == label).map(|(_, t)| t).ok_or_else(|| {
                Error::arg(format!(
                    "pmr: no prototypes for modality {label} (computed for another model?): run train_epoch to refresh them"
                ))
            })?;
            q.push(prototype_logits(&fwd.features[m], p)?);
        }
        let pce = q.iter().map(|q| cross_entropy(q, ctx.labels)).collect::<Result<Vec<_>>>()?;
        let s = q.iter().map(|q| crate::train::method::score_sum(q, ctx.labels)).collect::<Result<Vec<f64>>>()?;
        // ρ: s_first / s_second for two (the released rule); each against the others' mean beyond.
        let rho = if n_mod == 2 { vec![s[0] / s[1]] } else { ratios_to_mean(&s) };
        let c = match (active, n_mod) {
            (false, _) => vec![0.0; n_mod],
            (true, 2) => coefficients(self.alpha, rho[0]).to_vec(),
            (true, _) => rho.iter().map(|&r| if r < 1.0 { self.alpha } else { 0.0 }).collect(),
        };
        let mut total = ce_f;
        for (m, name) in per_modality(model, "proto_ce").into_iter().enumerate() {
            let mean = pce[m].f_mean(Kind::Float)?;
            if c[m] != 0.0 {
                total = (|| -> std::result::Result<_, tch::TchError> { total.f_add(&mean.f_mul_scalar(c[m])?) })()?;
            }
            terms.push((name, mean.f_detach()?));
        }
        // The dominant modality: the first over the second for two; the highest ratio beyond.
        let dominant = if n_mod == 2 {
            (rho[0] != 1.0 && rho[0].is_finite()).then(|| if rho[0] > 1.0 { 0 } else { 1 })
        } else {
            let best = (0..n_mod).max_by(|&a, &b| rho[a].total_cmp(&rho[b])).expect("modalities");
            (rho[best] > 1.0 && rho[best].is_finite()).then_some(best)
        };
        if let (true, Some(d)) = (regularise, dominant) {
            let h = mean_entropy(&q[d])?;
            total = (|| -> std::result::Result<_, tch::TchError> { total.f_sub(&h.f_mul_scalar(self.entropy)?) })()?;
            terms.push(("proto_entropy", h.f_detach()?));
        }
        let n = ctx.labels.size()[0].max(1) as f64;
        let mut diagnostics: Vec<(&'static str, f64)> = coef_names.into_iter().zip(c.iter().copied()).collect();
        diagnostics.push(("active", active as i64 as f64));
        if n_mod == 2 {
            diagnostics.push(("rho", rho[0]));
        } else {
            diagnostics.extend(per_modality(model, "rho").into_iter().zip(rho.iter().copied()));
        }
        diagnostics.extend(per_modality(model, "proto_score").into_iter().zip(s.iter().map(|v| v / n)));
        Ok(StepLoss { total, terms, diagnostics })
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![("refreshed_at".to_string(), crate::train::method::state_tensor(&[self.refreshed_at as f64]))];
        for (label, p) in self.prototypes.iter().flatten() {
            // Checkpoint state is written from the host.
            out.push((format!("prototypes_{label}"), p.to_device(tch::Device::Cpu)));
        }
        out
    }

    fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        let scalars: Vec<(String, Tensor)> =
            state.iter().filter(|(n, _)| !n.starts_with("prototypes_")).map(|(n, t)| (n.clone(), t.shallow_clone())).collect();
        check_state_names("pmr", &scalars, &["refreshed_at", "prototypes_<modality>"])?;
        if state.is_empty() {
            return Ok(());
        }
        self.refreshed_at = crate::train::method::read_state("pmr", state, "refreshed_at", 1)?[0] as i64;
        let mut protos = Vec::new();
        for (name, t) in state {
            let Some(label) = name.strip_prefix("prototypes_") else { continue };
            if t.dim() != 2 {
                return Err(Error::arg(format!("pmr: the saved {name} must be a [classes, dim] tensor, got {:?}", t.size())));
            }
            protos.push((label.to_string(), t.f_to_kind(Kind::Float)?));
        }
        if protos.len() == 1 {
            return Err(Error::arg("pmr: the saved state holds prototypes for one modality; it needs both prototypes_first and prototypes_second for two modalities (one prototypes_<modality> per modality beyond)"));
        }
        self.prototypes = (!protos.is_empty()).then_some(protos);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prototype_logits_are_minus_the_distance() {
        let x = Tensor::from_slice(&[0.0f32, 0.0, 3.0, 4.0]).reshape([2, 2]);
        let p = Tensor::from_slice(&[0.0f32, 0.0, 3.0, 0.0]).reshape([2, 2]);
        let q = Vec::<f32>::try_from(prototype_logits(&x, &p).unwrap().flatten(0, -1)).unwrap();
        // rows: x0 = (0,0) → (0, 3); x1 = (3,4) → (5, 4)
        let want = [-1e-6f32, -3.0, -5.0, -4.0];
        for (a, b) in q.iter().zip(want) {
            assert!((a - b).abs() < 1e-4, "{q:?}");
        }
    }

    #[test]
    fn class_means_match_a_hand_table_and_keep_missing_classes() {
        let f = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0, 10.0, 10.0]).reshape([3, 2]);
        let y = Tensor::from_slice(&[0i64, 0, 2]);
        let old = Tensor::from_slice(&[9.0f32, 9.0, 7.0, 7.0, 9.0, 9.0]).reshape([3, 2]);
        let (m, counts) = class_means(&f, &y, 3, Some(&old)).unwrap();
        assert_eq!(counts, vec![2, 0, 1]);
        let got = Vec::<f32>::try_from(m.flatten(0, -1)).unwrap();
        assert_eq!(got, vec![2.0, 3.0, 7.0, 7.0, 10.0, 10.0]);
        assert!(got.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn the_term_goes_to_the_weaker_modality() {
        assert_eq!(coefficients(2.0, 1.5), [0.0, 2.0]);
        assert_eq!(coefficients(2.0, 0.5), [2.0, 0.0]);
        assert_eq!(coefficients(2.0, 1.0), [0.0, 0.0]);
    }
}
