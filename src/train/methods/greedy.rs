//! Greedy, balanced multimodal learning (Wu, Jastrzębski, Cho, Geras, ICML 2022;
//! ../shared/baselines-2.md §1), as its code's `Bias_Mitigation_Strong` callback computes it, on a
//! model with MMTM modules between the encoders' stages (`model(data, #{ mmtm: 3 })`, M3).
//!
//! After each backward outside curation, per modality m, the speed of its main branch and of its
//! bypass through the MMTM modules:
//!
//! ```text
//! ρ_main,m = Σ_{p ∈ branch m} ‖∇p‖² / Σ ‖p‖²      ρ_byp,m likewise over the MMTM tensors of m and the shared squeeze
//! M_main,m += ρ_main,m,  M_byp,m += ρ_byp,m,  BDR_m = log10(M_byp,m / M_main,m),  d = BDR_0 − BDR_1
//! ```
//!
//! From the unlock epoch, |d| > ε starts Q curated steps with caring modality c = 0 if d > 0, else
//! 1: every MMTM replaces c's gates by their running mean, so branch c gets no sample-specific
//! cross-modal signal; the sums do not change during curation. The code's model has a linear head
//! per branch, L = Σ_m CE(ℓ_m), predicting with their mean (fusion "sum"); BalanceBenchmark's
//! reading uses the concat head's CE (`greedy_variant: "bb"`), whose "main" speeds exclude it.

use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::tensor::{Kind, Tensor};
use crate::train::declaration::{Keeps, Knob, MethodSpec, Modalities, Reference};
use crate::train::fusion::FusionKind;
use crate::train::method::{check_state_names, mean_ce, per_modality, read_state, state_tensor, Method, StepContext, StepLoss};
use crate::train::model::Model;
use crate::train::options::{opt, Literal, Resolved, Valid};

pub static SPEC: MethodSpec = MethodSpec {
    name: "greedy",
    aliases: &[],
    summary: "balanced multimodal learning: MMTM mid-fusion, and curation of the modality whose bypass learns faster than its main branch",
    reference: Reference {
        authors: "Wu, Jastrzębski, Cho, Geras",
        venue: "ICML 2022",
        code: "https://github.com/nyukat/greedy_multimodal_learning",
        commit: "",
    },
    options: &[
        opt(
            "greedy_variant",
            Literal::Text("official"),
            Valid::Choice(&["official", "bb"]),
            "the code's (a linear head per branch, Σ CE, on fusion \"sum\") or BalanceBenchmark's (the concat head's CE)",
        ),
        opt(
            "greedy_mode",
            Literal::Text("guided"),
            Valid::Choice(&["guided", "random"]),
            "curation when the conditional learning speeds part, or a uniform draw per step among regular, curate 0, curate 1",
        ),
        opt("epsilon", Literal::Float(0.01), Valid::Float(0.0, 1e300), "ε: |d| above which curation starts (BalanceBenchmark 0.001)"),
        opt("curation_steps", Literal::Int(5), Valid::Int(1, 1_000_000), "Q: the steps each curation lasts"),
        opt(
            "unlock_epoch",
            Literal::Int(1),
            Valid::Int(0, 1_000_000),
            "the 0-based epoch from which curation may start (the code's starting_epoch 2, 1-based)",
        ),
        opt(
            "greedy_avg_bug",
            Literal::Bool(false),
            Valid::Bool,
            "the code's bug: the second modality's running mean from the first's gates",
        ),
        opt("seed", Literal::Int(0), Valid::Int(0, i64::MAX), "seed of the random mode's draws (one per (seed, step))"),
    ],
    variants: &[],
    modalities: Modalities::AtMost(2, "MMTM fuses two modalities, and the curation compares their two branches"),
    keeps_state: Keeps::Always,
    terms: &["ce_*", "ce_fused"],
    diagnostics: &["d_bdr", "curating", "caring"],
    knob: Some(Knob { key: "epsilon", values: &[Literal::Float(0.001), Literal::Float(0.01), Literal::Float(0.1)] }),
    build: |o, _| Ok(Box::new(Greedy::new(o))),
};

pub struct Greedy {
    official: bool,
    random: bool,
    epsilon: f64,
    window: usize,
    unlock: usize,
    avg_bug: bool,
    seed: u64,
    /// M_main,0, M_main,1, M_byp,0, M_byp,1.
    sums: [f64; 4],
    /// The modality curated in the next forwards, and the curated steps taken.
    caring: Option<usize>,
    curated: usize,
    d: f64,
}

impl Greedy {
    pub fn new(o: &Resolved) -> Greedy {
        Greedy {
            official: o.text("greedy_variant") == "official",
            random: o.text("greedy_mode") == "random",
            epsilon: o.float("epsilon"),
            window: o.int("curation_steps") as usize,
            unlock: o.int("unlock_epoch") as usize,
            avg_bug: o.boolean("greedy_avg_bug"),
            seed: o.int("seed") as u64,
            sums: [0.0; 4],
            caring: None,
            curated: 0,
            d: 0.0,
        }
    }

    /// Adds one step's ρ's (main 0, main 1, bypass 0, bypass 1) to the sums; returns d.
    pub fn accumulate(&mut self, rho: [f64; 4]) -> f64 {
        for (s, r) in self.sums.iter_mut().zip(rho) {
            *s += r;
        }
        let bdr = |m: usize| (self.sums[2 + m] / self.sums[m]).log10();
        self.d = bdr(0) - bdr(1);
        self.d
    }

    /// The callback after a backward: the sums, then whether (and whom) the next steps curate.
    pub fn after_backward(&mut self, unlocked: bool, rho: impl FnOnce() -> Result<[f64; 4]>) -> Result<()> {
        if !unlocked {
            self.accumulate(rho()?);
            self.caring = None;
            return Ok(());
        }
        if self.caring.is_some() {
            self.curated += 1;
            if self.curated == self.window {
                self.caring = None;
            }
            return Ok(());
        }
        let d = self.accumulate(rho()?);
        if d.abs() > self.epsilon {
            self.caring = Some(if d > 0.0 { 0 } else { 1 });
            self.curated = 0;
        }
        Ok(())
    }

    /// The tensors of each group, as indices into `params`: main 0, main 1, bypass 0, bypass 1.
    fn groups(&self, model: &Model, params: &[(String, Tensor)]) -> Result<[Vec<usize>; 4]> {
        let heads: Vec<String> = if self.official {
            model.fusion.modality_weight_blocks()?.into_iter().map(|(n, _, _)| n.trim_end_matches(".weight").to_string()).collect()
        } else {
            Vec::new()
        };
        let mut g: [Vec<usize>; 4] = Default::default();
        for (i, (name, _)) in params.iter().enumerate() {
            if let Some(rest) = name.strip_prefix("mmtm") {
                let part = rest.split_once('.').map_or("", |(_, p)| p);
                let own = if part.starts_with("fc_0") {
                    Some(0)
                } else if part.starts_with("fc_1") {
                    Some(1)
                } else {
                    None // the shared squeeze counts for both
                };
                for m in 0..2 {
                    if own.is_none_or(|o| o == m) {
                        g[2 + m].push(i);
                    }
                }
            } else if let Some(m) = model.encoder_of(name) {
                g[m].push(i);
            } else if let Some(m) = heads.iter().position(|h| name.starts_with(&format!("{h}."))) {
                g[m].push(i);
            }
        }
        Ok(g)
    }
}

/// Σ‖g‖² / Σ‖p‖² over the tensors `which` (an undefined gradient counts 0).
fn speed(params: &[(String, Tensor)], grads: &[Tensor], which: &[usize]) -> Result<f64> {
    let (mut gn, mut wn) = (0.0, 0.0);
    for &i in which {
        wn += params[i].1.f_detach()?.f_square()?.f_sum(Kind::Double)?.f_double_value(&[])?;
        if grads[i].defined() {
            gn += grads[i].f_square()?.f_sum(Kind::Double)?.f_double_value(&[])?;
        }
    }
    Ok(gn / wn)
}

impl Method for Greedy {
    fn prepare(&self, model: &Model) -> Result<()> {
        if model.mmtm.is_empty() {
            return Err(Error::arg(
                "greedy: needs MMTM modules between the encoders' stages: build the model with mmtm: 3 (the code's, after a ResNet's layers 2-4) or 4 (BalanceBenchmark's)",
            ));
        }
        let want = if self.official { FusionKind::Sum } else { FusionKind::Concat };
        if model.fusion.kind != want {
            return Err(Error::arg(format!(
                "greedy: the {} variant trains {}: build the model with fusion: \"{}\", not {}",
                if self.official { "official" } else { "bb" },
                if self.official { "a linear head per branch" } else { "the concat head" },
                want.name(),
                model.fusion.kind.name()
            )));
        }
        model.mmtm_avg_bug.set(self.avg_bug);
        Ok(())
    }

    fn loss(&mut self, ctx: &StepContext) -> Result<StepLoss> {
        let model = ctx.model;
        let unlocked = ctx.epoch >= self.unlock;
        if self.random {
            // The random mode draws the next step's mode per step once unlocked.
            self.caring = if unlocked {
                match Rng::stream(self.seed ^ 0x6EED, ctx.step as u64).below(3) {
                    0 => None,
                    c => Some(c - 1),
                }
            } else {
                None
            };
        }
        model.curation.set(self.caring);
        let fwd = model.forward_all(ctx.inputs, true);
        model.curation.set(None);
        let fwd = fwd?;
        let mut terms = Vec::new();
        let total = if self.official {
            let mut total: Option<Tensor> = None;
            for (name, l) in per_modality(model, "ce").into_iter().zip(&fwd.logits.per) {
                let ce = mean_ce(l, ctx.labels)?;
                total = Some(match total {
                    None => ce.shallow_clone(),
                    Some(t) => t.f_add(&ce)?,
                });
                terms.push((name, ce));
            }
            total.ok_or_else(|| Error::arg("greedy: no modalities"))?
        } else {
            let f = mean_ce(&fwd.logits.fused, ctx.labels)?;
            terms.push(("ce_fused", f.shallow_clone()));
            f
        };
        let diagnostics = vec![("curating", self.caring.is_some() as i64 as f64), ("caring", self.caring.map_or(-1.0, |c| c as f64))];
        Ok(StepLoss { total, terms, diagnostics })
    }

    fn adjust_gradients(&mut self, ctx: &StepContext, params: &[(String, Tensor)], grads: &mut [Tensor]) -> Result<()> {
        if self.random {
            return Ok(());
        }
        let groups = self.groups(ctx.model, params)?;
        let unlocked = ctx.epoch >= self.unlock;
        self.after_backward(unlocked, || {
            let mut rho = [0.0; 4];
            for (r, g) in rho.iter_mut().zip(&groups) {
                *r = speed(params, grads, g)?;
            }
            Ok(rho)
        })
    }

    fn gradient_diagnostics(&mut self) -> Vec<(&'static str, f64)> {
        vec![("d_bdr", self.d)]
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        vec![
            ("sums".into(), state_tensor(&self.sums)),
            ("caring".into(), state_tensor(&[self.caring.map_or(-1.0, |c| c as f64), self.curated as f64, self.d])),
        ]
    }

    fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        check_state_names("greedy", state, &["sums", "caring"])?;
        if state.is_empty() {
            *self = Greedy { sums: [0.0; 4], caring: None, curated: 0, d: 0.0, ..*self };
            return Ok(());
        }
        let s = read_state("greedy", state, "sums", 4)?;
        self.sums = [s[0], s[1], s[2], s[3]];
        let c = read_state("greedy", state, "caring", 3)?;
        self.caring = (c[0] >= 0.0).then_some(c[0] as usize);
        self.curated = c[1] as usize;
        self.d = c[2];
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::declaration::with_options;
    use crate::train::options::Value;

    fn greedy(pairs: &[(&str, Value)]) -> Greedy {
        let given: Vec<(String, Value)> = pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        with_options(&SPEC, &given, |o| Ok(Greedy::new(o))).unwrap()
    }

    #[test]
    fn the_specs_hand_example_starts_curation_of_the_first() {
        // ρ_byp = (0.02, 0.01), ρ_main = (0.01, 0.01): BDR_0 = log10 2 = 0.30103, BDR_1 = 0.
        let mut g = greedy(&[]);
        g.after_backward(true, || Ok([0.01, 0.01, 0.02, 0.01])).unwrap();
        assert!((g.d - 2f64.log10()).abs() < 1e-12, "{}", g.d); // 0.30103
        assert_eq!(g.caring, Some(0));
        // d < 0 cares for the second.
        let mut g = greedy(&[]);
        g.after_backward(true, || Ok([0.01, 0.01, 0.01, 0.02])).unwrap();
        assert_eq!(g.caring, Some(1));
    }

    #[test]
    fn curation_lasts_exactly_q_steps_and_the_sums_rest_meanwhile() {
        let mut g = greedy(&[("curation_steps", Value::Int(5))]);
        g.after_backward(true, || Ok([0.01, 0.01, 0.02, 0.01])).unwrap();
        let sums = g.sums;
        let mut curated = 0;
        while g.caring.is_some() {
            curated += 1;
            g.after_backward(true, || panic!("no speeds are read during curation")).unwrap();
        }
        assert_eq!(curated, 5);
        assert_eq!(g.sums, sums);
        // Locked: the sums grow, nothing is curated; ε = ∞ never curates.
        let mut g = greedy(&[("epsilon", Value::Float(1e300))]);
        g.after_backward(false, || Ok([0.01, 0.01, 0.02, 0.01])).unwrap();
        assert_eq!((g.caring, g.sums[2]), (None, 0.02));
        g.after_backward(true, || Ok([0.01, 0.01, 0.02, 0.01])).unwrap();
        assert_eq!(g.caring, None);
    }
}
