//! G2D, gradient-guided distillation (Rakib, Bagavathi, ICCV 2025; ../shared/baselines-3.md §5).
//! A late-fusion student, ℓ_f = ½(h_a(x_a) + h_v(x_v)) (fusion "sum", the fused logits halved as
//! LFM does), distils both unimodal teachers' logits into its fused output and each teacher's
//! features into its encoder:
//!
//! ```text
//! L = CE(ℓ_f) + Σ_m [kd·KL(softmax(t_m/T) ‖ softmax(ℓ_f/T))·T² + feat·MSE(x_m, sg x_m^T)]
//! ```
//!
//! and, in the epochs of `smp_window`, sequential modality prioritisation: after the backward,
//! the conv kernels' gradients of the modality whose teacher is more confident on the batch
//! (ρ_m = Σ_i softmax(t_m)[i, y_i]) are zeroed, so the weaker trains alone (a tie zeroes
//! nothing; the reference raises). Zeroed gradients are not frozen weights: momentum and weight
//! decay still move them, as in the reference. Teachers are UMT's (`train::teacher::Teachers`),
//! chosen on validation. Beyond two modalities the window is split into N − 1 equal stages and
//! in stage j only the (j+1)-th weakest modality of the batch trains (gapscope's reading of the
//! paper's τ_1 … τ_{N−1}; at N = 2 it is the code's rule).

use crate::error::{Error, Result};
use crate::tensor::{Kind, Tensor};
use crate::train::declaration::{Keeps, Knob, MethodSpec, Modalities, Reference};
use crate::train::fusion::FusionKind;
use crate::train::method::{mean_ce, per_modality, score_sum, EpochContext, Method, Selection, StepContext, StepLoss};
use crate::train::model::Model;
use crate::train::options::{opt, Literal, Resolved, Valid, Window};
use crate::train::teacher::Teachers;

pub static SPEC: MethodSpec = MethodSpec {
    name: "g2d",
    aliases: &[],
    summary: "gradient-guided distillation: unimodal teachers distilled into a late-fusion student, the more confident modality's kernels held while the weaker trains",
    reference: Reference { authors: "Rakib, Bagavathi", venue: "ICCV 2025", code: "https://github.com/rAIson-Lab/G2D", commit: "95969d8" },
    options: &[
        opt("kd_weight", Literal::Float(1.0), Valid::Float(0.0, 1e6), "weight of the logit distillation into the fused output"),
        opt("feat_weight", Literal::Float(1.0), Valid::Float(0.0, 1e6), "weight of the feature distillation into each encoder"),
        opt("temperature", Literal::Float(1.0), Valid::Float(1e-3, 1e3), "distillation temperature T"),
        opt("smp_window", Literal::List(&[0.0, 150.0]), Valid::Window, "epochs of sequential modality prioritisation (0-based, inclusive; the code's 0-150 of 300)"),
        opt("params", Literal::Text("conv_only"), Valid::Choice(&["conv_only", "weights"]), "what is zeroed: conv kernels (the code) or every weight matrix too"),
        opt("smp_rank", Literal::Text("teacher"), Valid::Choice(&["teacher", "student"]), "rank modalities by the teachers' confidence (the code) or the student's unimodal heads'"),
        opt("teacher_epochs", Literal::Int(10), Valid::Int(1, 100_000), "epochs each teacher trains before the run"),
        opt("seed", Literal::Int(0), Valid::Int(0, i64::MAX), "seed of the teachers' initialisation and batches"),
    ],
    variants: &[],
    modalities: Modalities::Any,
    keeps_state: Keeps::Always,
    terms: &["ce_fused", "kd_*", "feat_*"],
    diagnostics: &["frozen_*", "teacher_acc_*"],
    knob: Some(Knob { key: "smp_window", values: &[Literal::List(&[0.0, 4.0]), Literal::List(&[0.0, 9.0]), Literal::List(&[0.0, 14.0])] }),
    build: |o, _| Ok(Box::new(G2d::new(o))),
};

/// KL(softmax(t/T) ‖ softmax(s/T))·T², summed over classes and averaged over the batch
/// (`F.kl_div(log_softmax(s/T), softmax(t/T), reduction="batchmean")·T²`); the teacher detached.
pub fn distill_kl(student: &Tensor, teacher: &Tensor, temperature: f64) -> Result<Tensor> {
    let log_q = student.f_div_scalar(temperature)?.f_log_softmax(-1, Kind::Float)?;
    let log_p = teacher.f_detach()?.f_div_scalar(temperature)?.f_log_softmax(-1, Kind::Float)?;
    let per = log_p.f_exp()?.f_mul(&log_p.f_sub(&log_q)?)?.f_sum_dim_intlist([-1i64].as_slice(), false, Kind::Float)?;
    per.f_mean(Kind::Float)?.f_mul_scalar(temperature * temperature).map_err(Error::from)
}

/// Which modalities train this step (κ_m = 1) from the confidence sums `rho`: outside the window
/// all; inside, with N = 2, the less confident one (a tie keeps both); beyond two, the window's
/// stage j (of N − 1 equal stages) trains only the (j+1)-th least confident.
pub fn trains(rho: &[f64], window: Window, epoch: usize) -> Vec<bool> {
    let n = rho.len();
    if !window.contains(epoch) || n < 2 {
        return vec![true; n];
    }
    if rho.iter().all(|&r| r == rho[0]) {
        return vec![true; n];
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| rho[a].partial_cmp(&rho[b]).unwrap_or(std::cmp::Ordering::Equal));
    let stage = match window.end {
        Some(end) if n > 2 => {
            let len = (end + 1 - window.start) as f64 / (n - 1) as f64;
            (((epoch - window.start) as f64 / len) as usize).min(n - 2)
        }
        _ => 0,
    };
    let mut out = vec![false; n];
    out[order[stage]] = true;
    out
}

pub struct G2d {
    kd: f64,
    feat: f64,
    temperature: f64,
    window: Window,
    selection: Selection,
    rank_by_teacher: bool,
    teachers: Teachers,
    /// This step's κ, from the loss to the gradient hook.
    trains: Vec<bool>,
}

impl G2d {
    pub fn new(o: &Resolved) -> G2d {
        G2d {
            kd: o.float("kd_weight"),
            feat: o.float("feat_weight"),
            temperature: o.float("temperature"),
            window: o.window("smp_window"),
            selection: Selection::parse(o.text("params")),
            rank_by_teacher: o.text("smp_rank") == "teacher",
            teachers: Teachers::new("g2d", o.int("teacher_epochs") as usize, o.int("seed") as u64),
            trains: Vec::new(),
        }
    }
}

impl Method for G2d {
    fn prepare(&self, model: &Model) -> Result<()> {
        match model.fusion.kind {
            FusionKind::Sum => Ok(()),
            other => Err(Error::arg(format!(
                "g2d: its student is late fusion, one linear head per modality and their mean: build the model with fusion: \"sum\" (it has {} fusion)",
                other.name()
            ))),
        }
    }

    fn begin_epoch(&mut self, ctx: &EpochContext) -> Result<()> {
        self.teachers.prepare(ctx)
    }

    fn loss(&mut self, ctx: &StepContext) -> Result<StepLoss> {
        let model = ctx.model;
        let teachers = self.teachers.ready(model)?;
        let fwd = model.forward_all(ctx.inputs, true)?;
        // The late-fusion mean: ½(h_a + h_v) for two.
        let fused = fwd.logits.fused.f_div_scalar(model.modalities.len() as f64)?;
        let ce = mean_ce(&fused, ctx.labels)?;
        let mut total = ce.shallow_clone();
        let mut terms = vec![("ce_fused", ce.f_detach()?)];
        let (kd_names, feat_names) = (per_modality(model, "kd"), per_modality(model, "feat"));
        let mut rho = Vec::with_capacity(teachers.len());
        for (m, t) in teachers.iter().enumerate() {
            let (features, logits) = t.outputs(ctx.inputs[m])?;
            let kd = distill_kl(&fused, &logits, self.temperature)?;
            let feat = fwd.features[m].f_mse_loss(&features, tch::Reduction::Mean)?;
            total = total.f_add(&kd.f_mul_scalar(self.kd)?)?.f_add(&feat.f_mul_scalar(self.feat)?)?;
            terms.push((kd_names[m], kd.f_detach()?));
            terms.push((feat_names[m], feat.f_detach()?));
            rho.push(if self.rank_by_teacher { score_sum(&logits, ctx.labels)? } else { score_sum(&fwd.logits.per[m], ctx.labels)? });
        }
        self.trains = trains(&rho, self.window, ctx.epoch);
        let mut diagnostics: Vec<(&'static str, f64)> =
            per_modality(model, "frozen").into_iter().zip(self.trains.iter().map(|&t| if t { 0.0 } else { 1.0 })).collect();
        diagnostics.extend(per_modality(model, "teacher_acc").into_iter().zip(teachers.iter().map(|t| t.val_acc)));
        Ok(StepLoss { total, terms, diagnostics })
    }

    fn adjust_gradients(&mut self, ctx: &StepContext, params: &[(String, Tensor)], grads: &mut [Tensor]) -> Result<()> {
        for (m, &trains) in self.trains.iter().enumerate() {
            if trains {
                continue;
            }
            for i in self.selection.pick(ctx.model, params, m) {
                if grads[i].defined() {
                    grads[i] = grads[i].f_zeros_like()?;
                }
            }
        }
        Ok(())
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        self.teachers.state()
    }

    fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        self.teachers.load_state(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-5, "{a} != {b}");
    }

    #[test]
    fn the_distillation_terms_of_the_spec() {
        // Teacher logits (2, 0), student (1, 1): 0.32781 at T = 1, 0.44378 (T² included) at T = 2.
        let (t, s) = (Tensor::from_slice(&[2.0f32, 0.0]).reshape([1, 2]), Tensor::from_slice(&[1.0f32, 1.0]).reshape([1, 2]));
        close(distill_kl(&s, &t, 1.0).unwrap().double_value(&[]), 0.32781);
        close(distill_kl(&s, &t, 2.0).unwrap().double_value(&[]), 0.44378);
        // Feature term: x = (1, 2), x^T = (0, 0) give 2.5 (the mean over B·d).
        let x = Tensor::from_slice(&[1.0f32, 2.0]).reshape([1, 2]);
        close(x.mse_loss(&x.zeros_like(), tch::Reduction::Mean).double_value(&[]), 2.5);
    }

    #[test]
    fn the_more_confident_modality_is_held_inside_the_window_only() {
        let w = Window { start: 0, end: Some(150) };
        assert_eq!(trains(&[40.2, 51.7], w, 0), vec![true, false], "the visual teacher is more confident: visual held");
        assert_eq!(trains(&[51.7, 40.2], w, 150), vec![false, true]);
        assert_eq!(trains(&[40.2, 51.7], w, 151), vec![true, true], "outside the window nothing is held");
        assert_eq!(trains(&[40.0, 40.0], w, 3), vec![true, true], "a tie holds nothing");
        // Three modalities, window 0-9: stage 0 (epochs 0-4) trains the weakest, stage 1 the next.
        let w = Window { start: 0, end: Some(9) };
        assert_eq!(trains(&[3.0, 1.0, 2.0], w, 0), vec![false, true, false]);
        assert_eq!(trains(&[3.0, 1.0, 2.0], w, 5), vec![false, false, true]);
        assert_eq!(trains(&[3.0, 1.0, 2.0], w, 10), vec![true, true, true]);
    }
}
