//! UMT, the Uni-Modal Teacher (Du et al., ICML 2023; ../shared/baselines-2.md §3): each
//! modality's encoder is pulled towards the pooled features of a unimodal teacher trained
//! beforehand on that modality alone,
//!
//! ```text
//! L = CE(l_f) + λ·Σ_m MSE(x_m, sg(x_m^T))        (MSE: the mean over B·d entries)
//! ```
//!
//! The teachers (`train::teacher`: the student's encoder architecture and a linear head) are
//! trained before the first epoch for `teacher_epochs` epochs with the run's optimizer kind and
//! learning rate, their best epoch on the validation split kept (BalanceBenchmark picks it on
//! the test set), then frozen in evaluation mode (BalanceBenchmark leaves them in training
//! mode, so their batch norms keep moving). They are saved with the method's state, so a
//! resumed run distils from the same teachers. λ = 0 is the concat step exactly.

use crate::error::Result;
use crate::tensor::Tensor;
use crate::train::declaration::{Keeps, Knob, MethodSpec, Modalities, Reference};
use crate::train::method::{mean_ce, per_modality, EpochContext, Method, StepContext, StepLoss};
use crate::train::options::{opt, Literal, Resolved, Valid};
use crate::train::teacher::Teachers;

pub static SPEC: MethodSpec = MethodSpec {
    name: "umt",
    aliases: &[],
    summary: "uni-modal teachers: frozen unimodal models trained first, distilled into the multimodal encoders",
    reference: Reference {
        authors: "Du et al.",
        venue: "ICML 2023",
        code: "no official code; BalanceBenchmark's reading, https://github.com/GeWu-Lab/BalanceBenchmark",
        commit: "4c1482f",
    },
    options: &[
        opt("lambda", Literal::Float(10.0), Valid::Float(0.0, 1e6), "weight λ of the feature distillation"),
        opt("teacher_epochs", Literal::Int(10), Valid::Int(1, 100_000), "epochs each teacher trains before the run"),
        opt("seed", Literal::Int(0), Valid::Int(0, i64::MAX), "seed of the teachers' initialisation and batches"),
    ],
    variants: &[],
    modalities: Modalities::Any,
    keeps_state: Keeps::Always,
    terms: &["ce_fused", "distill_*"],
    diagnostics: &["teacher_acc_*"],
    knob: Some(Knob { key: "lambda", values: &[Literal::Float(1.0), Literal::Float(10.0), Literal::Float(50.0)] }),
    build: |o, _| Ok(Box::new(Umt::new(o)?)),
};

pub struct Umt {
    lambda: f64,
    teachers: Teachers,
}

impl Umt {
    pub fn new(opts: &Resolved) -> Result<Umt> {
        Ok(Umt {
            lambda: opts.float("lambda"),
            teachers: Teachers::new("umt", opts.int("teacher_epochs") as usize, opts.int("seed") as u64),
        })
    }
}

impl Method for Umt {
    fn begin_epoch(&mut self, ctx: &EpochContext) -> Result<()> {
        if self.lambda == 0.0 {
            return self.teachers.restore(ctx.model);
        }
        self.teachers.prepare(ctx)
    }

    fn loss(&mut self, ctx: &StepContext) -> Result<StepLoss> {
        self.teachers.restore(ctx.model)?;
        let fwd = ctx.model.forward_all(ctx.inputs, true)?;
        let ce = mean_ce(&fwd.logits.fused, ctx.labels)?;
        if self.lambda == 0.0 {
            return Ok(StepLoss { terms: vec![("ce_fused", ce.f_detach()?)], total: ce, diagnostics: Vec::new() });
        }
        let teachers = self.teachers.ready(ctx.model)?;
        let names = per_modality(ctx.model, "distill");
        let acc_names = per_modality(ctx.model, "teacher_acc");
        let mut total = ce.shallow_clone();
        let mut terms = vec![("ce_fused", ce.f_detach()?)];
        for (m, t) in teachers.iter().enumerate() {
            let target = t.features(ctx.inputs[m])?;
            let d = fwd.features[m].f_mse_loss(&target, tch::Reduction::Mean)?;
            total = d.f_mul_scalar(self.lambda).and_then(|x| total.f_add(&x))?;
            terms.push((names[m], d.f_detach()?));
        }
        let diagnostics = teachers.iter().enumerate().map(|(m, t)| (acc_names[m], t.val_acc)).collect();
        Ok(StepLoss { total, terms, diagnostics })
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        self.teachers.state()
    }

    fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        self.teachers.load_state(state)
    }
}
