//! DI-MML, detached and interactive multimodal learning (Fan et al., ACM MM 2024;
//! ../shared/baselines-3.md §4), as `main_CFT.py` (stage 1) and `main_CFT_stage2.py` (stage 2)
//! compute it, in one method whose second stage starts at `stage2_start`.
//!
//! Stage 1: each modality trains alone through its own head h_m (the model's separate heads,
//! `heads: "separate"`) and through one classifier g shared by the modalities (the method's
//! layer, stepped by the run's rule), and from `duc_start` a dimension-decoupled InfoNCE pulls
//! each modality, on the other's exclusive dimensions, towards the other's detached features:
//!
//! ```text
//! L = Σ_m CE(h_m(x_m)) + w·Σ_m CE(g(x_m)) + L_DUC
//! L_DUC = InfoNCE(x_v[A] → sg x_a[A]) + InfoNCE(x_a[V] → sg x_v[V])     (positives: the same sample)
//! ```
//!
//! A and V are chosen once, before epoch `duc_start`: per modality, each dimension's accuracy as
//! a nearest-class-centroid classifier on the training split; top_m the dimensions above their
//! mean; A = top_a \ top_v, V = top_v \ top_a. Stage 2: the encoders are frozen (evaluation mode,
//! no gradient), the concat head is re-initialised and trained alone with CE on a fresh optimizer
//! state. Prediction: per sample, w = softmax([max p_1, ..., max p_N, max p_f]/τ_c) over the
//! heads and the fused head (CALW, `train::head_stage`); before stage 2, over the heads alone.

use crate::data::BatchOptions;
use crate::error::{Error, Result};
use crate::tensor::{Kind, Tensor};
use crate::train::declaration::{Keeps, Knob, MethodSpec, Modalities, Reference};
use crate::train::fusion::FusionKind;
use crate::train::head_stage::{confidence_weighted, fresh_fused_head, frozen_features, FeatureCache};
use crate::train::inference::features;
use crate::train::method::{
    check_state_names, mean_ce, per_modality, read_state, state_tensor, EpochContext, Method, StepContext, StepLoss,
};
use crate::train::model::Model;
use crate::train::options::{opt, Literal, Resolved, Valid};
use crate::train::owned_layer::OwnedLinear;

pub static SPEC: MethodSpec = MethodSpec {
    name: "di-mml",
    aliases: &["dimml"],
    summary: "detached unimodal training with a shared classifier and a dimension-decoupled contrastive term, then a fusion head on frozen encoders and confidence-weighted prediction",
    reference: Reference {
        authors: "Fan et al.",
        venue: "ACM MM 2024",
        code: "https://github.com/fanyunfeng-bit/DI-MML",
        commit: "83b9b7a",
    },
    options: &[
        opt("tau", Literal::Float(50.0), Valid::Float(1e-9, 1e9), "τ of the DUC InfoNCE (50 CREMA-D, 10 AVE)"),
        opt("w", Literal::Float(1.0), Valid::Float(0.0, 1e6), "weight of the shared classifier's losses"),
        opt("duc_start", Literal::Int(20), Valid::Int(0, 1_000_000), "the epoch the dimensions are chosen before and the DUC term starts"),
        opt("duc_transform", Literal::Text("eval"), Valid::Choice(&["eval", "train"]), "the dimension pass's batches: unaugmented, or with the training augmentation (the reference)"),
        opt("stage2_start", Literal::Int(150), Valid::Int(1, 1_000_000), "the first epoch of stage 2 (the reference: 150 + 20)"),
        opt("stage2_features", Literal::Text("recompute"), Valid::Choice(&["recompute", "cache"]), "stage 2's features: the frozen encoders on every batch (the reference), or one pass cached"),
        opt("test_fusion", Literal::Text("calw"), Valid::Choice(&["calw", "fused"]), "prediction from stage 2: confidence-weighted heads and fused head, or the fused head alone"),
        opt("tau_c", Literal::Float(1.0), Valid::Float(1e-9, 1e9), "τ_c of the confidence weights (1 CREMA-D, 3 AVE)"),
        opt("seed", Literal::Int(0), Valid::Int(0, i64::MAX), "seed of the shared classifier and of stage 2's fresh head"),
    ],
    variants: &[],
    modalities: Modalities::Any,
    keeps_state: Keeps::Always,
    terms: &["ce_*", "shared_*", "duc", "ce_fused"],
    diagnostics: &["stage2", "exclusive_*"],
    knob: Some(Knob { key: "tau", values: &[Literal::Float(10.0), Literal::Float(50.0)] }),
    build: |o, _| Ok(Box::new(DiMml::new(o))),
};

const SHARED: &str = "shared";

pub struct DiMml {
    tau: f64,
    w: f64,
    duc_start: usize,
    duc_augment: bool,
    stage2_start: usize,
    cache_stage2: bool,
    calw_with_fused: bool,
    tau_c: f64,
    seed: u64,
    /// g, built before the first epoch (it needs the feature size, the classes and the run's
    /// optimizer); its state from a checkpoint until then.
    shared: Option<OwnedLinear>,
    saved: Option<Vec<(String, Tensor)>>,
    /// Each modality's exclusive dimensions (E_m; A and V for two), once chosen.
    exclusive: Option<Vec<Vec<i64>>>,
    in_stage2: bool,
    cache: Option<FeatureCache>,
    pending: Vec<Tensor>,
}

impl DiMml {
    pub fn new(o: &Resolved) -> DiMml {
        DiMml {
            tau: o.float("tau"),
            w: o.float("w"),
            duc_start: o.int("duc_start") as usize,
            duc_augment: o.text("duc_transform") == "train",
            stage2_start: o.int("stage2_start") as usize,
            cache_stage2: o.text("stage2_features") == "cache",
            calw_with_fused: o.text("test_fusion") == "calw",
            tau_c: o.float("tau_c"),
            seed: o.int("seed") as u64,
            shared: None,
            saved: None,
            exclusive: None,
            in_stage2: false,
            cache: None,
            pending: Vec::new(),
        }
    }
}

/// Each modality's dimensions that classify above their mean accuracy as nearest class centroid
/// per dimension, from features [n, d] and labels [n] over `classes` classes.
pub fn top_dimensions(x: &Tensor, labels: &Tensor, classes: i64) -> Result<Vec<bool>> {
    let x = x.f_to_kind(Kind::Double)?;
    let d = x.size()[1];
    let y = labels.f_to_device(x.device())?;
    let mut centroids = Vec::with_capacity(classes as usize);
    for c in 0..classes {
        let rows = y.f_eq(c)?.f_nonzero()?.f_squeeze_dim(1)?;
        centroids.push(if rows.size()[0] == 0 {
            Tensor::f_full([d], f64::NAN, (Kind::Double, x.device()))?
        } else {
            x.f_index_select(0, &rows)?.f_mean_dim([0i64].as_slice(), false, Kind::Double)?
        });
    }
    let mu = Tensor::f_stack(&centroids, 0)?; // [C, d]
                                              // |x[i, d] − μ[c, d]| over c: [n, C, d]; a class with no sample is never nearest.
    let dist = x.f_unsqueeze(1)?.f_sub(&mu.f_unsqueeze(0)?)?.f_abs()?.f_nan_to_num(Some(f64::INFINITY), None, None)?;
    let nearest = dist.f_argmin(1, false)?; // [n, d]
    let acc = nearest.f_eq_tensor(&y.f_unsqueeze(1)?)?.f_to_kind(Kind::Double)?.f_mean_dim([0i64].as_slice(), false, Kind::Double)?;
    let mean = acc.f_mean(Kind::Double)?.f_double_value(&[])?;
    Ok(Vec::<f64>::try_from(&acc)?.into_iter().map(|a| a > mean).collect())
}

/// E_m = top_m \ ∪_{j≠m} top_j, as dimension indices.
pub fn exclusive_dimensions(top: &[Vec<bool>]) -> Vec<Vec<i64>> {
    (0..top.len())
        .map(|m| (0..top[m].len()).filter(|&d| top[m][d] && (0..top.len()).all(|j| j == m || !top[j][d])).map(|d| d as i64).collect())
        .collect()
}

/// The unidirectional InfoNCE: queries q [B, k] against detached keys [B, k], positives on the
/// diagonal, at temperature τ (batch mean).
pub fn pull_towards(query: &Tensor, keys: &Tensor, tau: f64) -> Result<Tensor> {
    let logits = query.f_matmul(&keys.f_detach()?.f_t_copy()?)?.f_div_scalar(tau)?;
    let b = query.size()[0];
    let target = Tensor::f_arange(b, (Kind::Int64, query.device()))?;
    mean_ce(&logits, &target)
}

/// L_DUC over every ordered pair: each other modality j pulled towards sg x_m on E_m (for two,
/// x_v on A towards x_a and x_a on V towards x_v, the reference's two terms).
pub fn duc_loss(features: &[Tensor], exclusive: &[Vec<i64>], tau: f64) -> Result<Option<Tensor>> {
    let mut total: Option<Tensor> = None;
    for (m, dims) in exclusive.iter().enumerate() {
        if dims.is_empty() {
            continue;
        }
        let idx = Tensor::from_slice(dims).f_to_device(features[m].device())?;
        let key = features[m].f_index_select(1, &idx)?;
        for (j, x) in features.iter().enumerate() {
            if j == m {
                continue;
            }
            let term = pull_towards(&x.f_index_select(1, &idx)?, &key, tau)?;
            total = Some(match total {
                None => term,
                Some(t) => t.f_add(&term)?,
            });
        }
    }
    Ok(total)
}

impl DiMml {
    fn shared(&self) -> Result<&OwnedLinear> {
        self.shared.as_ref().ok_or_else(|| {
            Error::arg(
                "di-mml: its shared classifier is built before the first epoch: train with train_epoch or a recipe, not a lone train_step",
            )
        })
    }

    fn choose_dimensions(&mut self, ctx: &EpochContext) -> Result<()> {
        let batching = BatchOptions { shuffle: false, augment: self.duc_augment, ..ctx.batching.clone() };
        let f = features(ctx.model, ctx.train, &batching, None)?;
        let top = f.per.iter().map(|x| top_dimensions(x, &f.labels, ctx.model.classes)).collect::<Result<Vec<_>>>()?;
        self.exclusive = Some(exclusive_dimensions(&top));
        Ok(())
    }
}

impl Method for DiMml {
    fn prepare(&self, model: &Model) -> Result<()> {
        if model.fusion.kind != FusionKind::ConcatHeads {
            return Err(Error::arg(format!(
                "di-mml: trains each modality's own head and then a concat head on the frozen encoders: build the model with heads: \"separate\" (fusion concat), not {}",
                model.fusion.kind.name()
            )));
        }
        let d = model.fusion.dim(0);
        if (0..model.modalities.len()).any(|m| model.fusion.dim(m) != d) {
            return Err(Error::arg(
                "di-mml: its shared classifier reads every modality's features, so they need one size: pick encoders whose features match",
            ));
        }
        Ok(())
    }

    fn begin_epoch(&mut self, ctx: &EpochContext) -> Result<()> {
        if self.shared.is_none() {
            let c = ctx.model.classes;
            let mut g = OwnedLinear::new(ctx.model.fusion.dim(0), c, ctx.model.device(), ctx.opt, self.seed)?;
            if let Some(saved) = self.saved.take() {
                g.load(SHARED, &saved).map_err(|e| Error::arg(format!("di-mml: {e}")))?;
            }
            self.shared = Some(g);
        }
        if ctx.epoch >= self.stage2_start {
            if !self.in_stage2 {
                fresh_fused_head(ctx.model, self.seed ^ 0xD1)?;
                self.in_stage2 = true;
            }
            if self.cache_stage2 && self.cache.is_none() {
                let batching = BatchOptions { shuffle: false, augment: false, ..ctx.batching.clone() };
                self.cache = Some(FeatureCache::new(features(ctx.model, ctx.train, &batching, None)?, ctx.model.device())?);
            }
        } else if ctx.epoch >= self.duc_start && self.exclusive.is_none() {
            self.choose_dimensions(ctx)?;
        }
        Ok(())
    }

    /// Stage 2 starts on a fresh optimizer state (the reference builds an SGD over the new head).
    fn fresh_optimizer(&self, epoch: usize) -> bool {
        epoch == self.stage2_start
    }

    fn loss(&mut self, ctx: &StepContext) -> Result<StepLoss> {
        let model = ctx.model;
        if self.in_stage2 {
            let x = match &self.cache {
                Some(cache) => cache.rows(ctx.indices)?,
                None => frozen_features(model, ctx.inputs)?,
            };
            let fused = mean_ce(&model.head_all(&x)?.fused, ctx.labels)?;
            return Ok(StepLoss { total: fused.shallow_clone(), terms: vec![("ce_fused", fused)], diagnostics: vec![("stage2", 1.0)] });
        }
        let x = model.encode_all(ctx.inputs, true)?;
        let heads = model.head_all(&x)?.per;
        let g = self.shared()?;
        let mut total: Option<Tensor> = None;
        let mut add = |t: &Tensor| -> Result<()> {
            total = Some(match total.take() {
                None => t.shallow_clone(),
                Some(s) => s.f_add(t)?,
            });
            Ok(())
        };
        let mut terms = Vec::new();
        for (name, h) in per_modality(model, "ce").into_iter().zip(&heads) {
            let ce = mean_ce(h, ctx.labels)?;
            add(&ce)?;
            terms.push((name, ce));
        }
        for (name, xm) in per_modality(model, "shared").into_iter().zip(&x) {
            let ce = mean_ce(&g.forward(xm)?, ctx.labels)?;
            add(&ce.f_mul_scalar(self.w)?)?;
            terms.push((name, ce));
        }
        let mut diagnostics = vec![("stage2", 0.0)];
        if let Some(exclusive) = self.exclusive.as_ref().filter(|_| ctx.epoch >= self.duc_start) {
            if let Some(duc) = duc_loss(&x, exclusive, self.tau)? {
                add(&duc)?;
                terms.push(("duc", duc));
            }
            diagnostics.extend(per_modality(model, "exclusive").into_iter().zip(exclusive.iter().map(|e| e.len() as f64)));
        }
        let total = total.ok_or_else(|| Error::arg("di-mml: no loss terms"))?;
        Ok(StepLoss { total, terms, diagnostics })
    }

    fn backward(&mut self, ctx: &StepContext, total: &Tensor, params: &[(String, Tensor)]) -> Result<Option<Vec<Tensor>>> {
        if self.in_stage2 {
            return Ok(None);
        }
        let (grads, own) = self.shared()?.gradients_with(total, params, ctx.scale)?;
        self.pending = own;
        Ok(Some(grads))
    }

    fn adjust_gradients(&mut self, ctx: &StepContext, _params: &[(String, Tensor)], _grads: &mut [Tensor]) -> Result<()> {
        let pending = std::mem::take(&mut self.pending);
        if pending.is_empty() {
            return Ok(());
        }
        self.shared.as_mut().ok_or_else(|| Error::arg("di-mml: no shared classifier"))?.update(&pending, ctx.lr)
    }

    fn predict(&mut self, _model: &Model, fused: &Tensor, per: &[Tensor]) -> Result<Option<Tensor>> {
        let _guard = tch::no_grad_guard();
        let out = match (self.in_stage2, self.calw_with_fused) {
            (true, false) => fused.shallow_clone(),
            (true, true) => {
                let mut all: Vec<Tensor> = per.iter().map(|t| t.shallow_clone()).collect();
                all.push(fused.shallow_clone());
                confidence_weighted(&all, self.tau_c)?
            }
            // Stage 1 has no trained fused head: the confidence-weighted unimodal heads.
            (false, _) => confidence_weighted(per, self.tau_c)?,
        };
        Ok(Some(out))
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = match (&self.shared, &self.saved) {
            (Some(g), _) => g.state(SHARED),
            (None, Some(saved)) => {
                saved.iter().filter(|(n, _)| n.starts_with("shared")).map(|(n, t)| (n.clone(), t.shallow_clone())).collect()
            }
            (None, None) => Vec::new(),
        };
        out.push(("stage".into(), state_tensor(&[if self.in_stage2 { 2.0 } else { 1.0 }])));
        if let Some(ex) = &self.exclusive {
            for (m, dims) in ex.iter().enumerate() {
                out.push((format!("exclusive.{m}"), Tensor::from_slice(dims)));
            }
        }
        out
    }

    fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        let own = |n: &str| n.starts_with("shared.") || n.starts_with("shared_opt.") || n.starts_with("exclusive.");
        let scalars: Vec<(String, Tensor)> = state.iter().filter(|(n, _)| !own(n)).map(|(n, t)| (n.clone(), t.shallow_clone())).collect();
        check_state_names("di-mml", &scalars, &["stage", "shared.<tensor>", "shared_opt.<slot>", "exclusive.<m>"])?;
        self.shared = None;
        self.cache = None;
        if state.is_empty() {
            self.saved = None;
            self.exclusive = None;
            self.in_stage2 = false;
            return Ok(());
        }
        self.in_stage2 = read_state("di-mml", state, "stage", 1)?[0] == 2.0;
        let mut ex: Vec<(usize, Vec<i64>)> =
            state.iter().filter_map(|(n, t)| Some((n.strip_prefix("exclusive.")?.parse().ok()?, Vec::<i64>::try_from(t).ok()?))).collect();
        ex.sort_by_key(|(m, _)| *m);
        self.exclusive = (!ex.is_empty()).then(|| ex.into_iter().map(|(_, d)| d).collect());
        let g: Vec<(String, Tensor)> = state
            .iter()
            .filter(|(n, _)| n.starts_with("shared.") || n.starts_with("shared_opt."))
            .map(|(n, t)| (n.clone(), t.shallow_clone()))
            .collect();
        self.saved = (!g.is_empty()).then_some(g);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duc_of_the_specs_example() {
        // A = {0}, x_a[A] = (1, 2), x_v[A] = (0.5, 1), τ = 1: terms ln(1 + e^0.5) = 0.97408 and
        // ln(1 + e^−1) = 0.31326, mean 0.64367; no gradient reaches x_a through that direction.
        let xa = Tensor::from_slice(&[1.0f32, 2.0]).reshape([2, 1]).set_requires_grad(true);
        let xv = Tensor::from_slice(&[0.5f32, 1.0]).reshape([2, 1]).set_requires_grad(true);
        let l = duc_loss(&[xa.shallow_clone(), xv.shallow_clone()], &[vec![0], vec![]], 1.0).unwrap().unwrap();
        assert!((l.double_value(&[]) - 0.64367).abs() < 1e-5, "{}", l.double_value(&[]));
        let g = Tensor::run_backward(&[&l], &[&xa, &xv], false, false);
        assert!(!g[0].defined() || g[0].abs().sum(Kind::Float).double_value(&[]) == 0.0);
        assert!(g[1].abs().sum(Kind::Float).double_value(&[]) > 0.0);
    }

    #[test]
    fn dimension_selection_of_the_specs_example() {
        let y = Tensor::from_slice(&[0i64, 0, 1, 1]);
        let xa = Tensor::from_slice(&[0.0f32, 0.5, 0.2, 0.1, 1.0, 0.4, 0.8, 0.0]).reshape([4, 2]);
        let xv = Tensor::from_slice(&[0.3f32, 0.0, 0.1, 0.1, 0.2, 1.0, 0.4, 0.9]).reshape([4, 2]);
        let top = [top_dimensions(&xa, &y, 2).unwrap(), top_dimensions(&xv, &y, 2).unwrap()];
        assert_eq!(top, [vec![true, false], vec![false, true]]);
        assert_eq!(exclusive_dimensions(&top), vec![vec![0], vec![1]]);
        // A dimension in both tops is nobody's.
        assert_eq!(exclusive_dimensions(&[vec![true, true], vec![false, true]]), vec![vec![0], vec![]]);
    }
}
