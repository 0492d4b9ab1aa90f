//! Sample-level modality valuation and re-sampling (Wei, Feng, Wang, Hu, CVPR 2024,
//! "Valuate-and-Enhance"; BalanceBenchmark's "Sample"; ../shared/baselines-2.md §9).
//!
//! Before each epoch from `warmup` on, every training sample is valued in evaluation mode: one
//! forward, the head on every coalition S of modalities (the others removed, `drop`), and
//! v(S) = |S|·1[correct] (`value: "size"`, official) or 1[correct] (`"indicator"`,
//! BalanceBenchmark), v(∅) = 0. Each modality's Shapley value φ_m(i) (for two,
//! φ_a = ½[v_a + v_f − v_v]) decides the epoch's extra items, unimodal copies that keep only m:
//!
//! - `level: "sample"`: per sample and modality, 1 copy if 0.4 < φ < 1, 2 if −0.1 < φ < 0.4,
//!   3 if φ < −0.1, none otherwise;
//! - `level: "modality"` (two modalities): Z = part_ratio·N samples drawn with replacement give
//!   gap_m = 1 − mean_Z φ_m; R = ⌊(2/3)·α·|gap_a − gap_v|·N⌋ drawn samples each get one copy
//!   keeping only the weaker modality (the larger gap), and with `modality_copies: 2` also a
//!   full duplicate (BalanceBenchmark).
//!
//! The epoch then trains CE(l_f) on the split plus the copies (a view rebuilt from the split
//! every epoch, so copies never compound; `data::view`), the removed modality of a copy taken
//! away as in the valuation. φ is kept per dataset row (index-keyed state), so scripts can read
//! it and checkpoints carry it. `variant: "bb"` sets BalanceBenchmark's switches: modality
//! level, indicator value, input-zero removal, two copies per draw, one warm-up epoch, α = 2
//! (its ⌊(4/3)·|Δgap|·N⌋).

use crate::data::view::{all_kept, Item};
use crate::data::{BatchOptions, Batches, Split};
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::tensor::{Kind, Tensor};
use crate::train::declaration::{Keeps, Knob, MethodSpec, Modalities, Reference, Variant};
use crate::train::inference::inputs;
use crate::train::method::{check_state_names, mean_ce, EpochContext, Method, StepContext, StepLoss};
use crate::train::model::Model;
use crate::train::options::{opt, Literal, Resolved, Valid};
use crate::train::removal::{fused_without, zero_inputs, Removal};

/// Coalitions of more modalities than this are too many head evaluations per sample.
const MAX_MODALITIES: usize = 8;

fn factorial(k: usize) -> f64 {
    (1..=k).map(|i| i as f64).product()
}

/// Per-sample Shapley values [B][N] from each coalition's correctness (`correct[mask]`, 0/1
/// per sample; mask bit m = modality m present), with v(S) = |S|·c (size) or c, v(∅) = 0.
pub fn shapley_values(correct: &[Vec<f64>], n: usize, size_valued: bool) -> Vec<Vec<f64>> {
    let b = correct.get(1).map_or(0, Vec::len);
    let v =
        |mask: usize, i: usize| if mask == 0 { 0.0 } else { correct[mask][i] * if size_valued { mask.count_ones() as f64 } else { 1.0 } };
    let nf = factorial(n);
    (0..b)
        .map(|i| {
            (0..n)
                .map(|m| {
                    let bit = 1usize << m;
                    (0..1usize << n)
                        .filter(|s| s & bit == 0)
                        .map(|s| {
                            factorial(s.count_ones() as usize) * factorial(n - s.count_ones() as usize - 1) / nf * (v(s | bit, i) - v(s, i))
                        })
                        .sum()
                })
                .collect()
        })
        .collect()
}

/// Unimodal copies of one sample at sample level, from its φ (boundaries excluded).
pub fn copies(phi: f64) -> usize {
    if 0.4 < phi && phi < 1.0 {
        1
    } else if -0.1 < phi && phi < 0.4 {
        2
    } else if phi < -0.1 {
        3
    } else {
        0
    }
}

/// The number of modality-level draws: ⌊(2/3)·α·|Δgap|·N⌋.
pub fn modality_draws(alpha: f64, gap_difference: f64, n: usize) -> usize {
    ((2.0 / 3.0) * alpha * gap_difference.abs() * n as f64 + 1e-9).floor() as usize
}

pub struct SampleValuation {
    sample_level: bool,
    size_valued: bool,
    drop: Removal,
    modality_copies: usize,
    warmup: usize,
    part_ratio: f64,
    alpha: f64,
    seed: u64,
    /// φ per dataset row, [rows, N] (NaN for rows not valued), from the last valuation.
    phi: Option<Tensor>,
    /// The current epoch's items: the split, then the copies (None before the warm-up ends).
    view: Option<Vec<Item>>,
    /// Extra items in the current epoch (diagnostic).
    extra: usize,
}

pub static SPEC: MethodSpec = MethodSpec {
    name: "sample",
    aliases: &[],
    summary: "valuate each sample's modality contributions (Shapley) and resample the low-contributing modality",
    reference: Reference {
        authors: "Wei et al.",
        venue: "CVPR 2024",
        code: "https://github.com/GeWu-Lab/Valuate-and-Enhance-Multimodal-Cooperation",
        commit: "7ed12b0",
    },
    options: &[
        opt(
            "variant",
            Literal::Text("official"),
            Valid::Choice(&["official", "bb"]),
            "the authors' sample level, or BalanceBenchmark's modality level",
        ),
        opt(
            "level",
            Literal::Text("sample"),
            Valid::Choice(&["sample", "modality"]),
            "valuate per sample, or per modality over a part of the split",
        ),
        opt(
            "value",
            Literal::Text("size"),
            Valid::Choice(&["size", "indicator"]),
            "a contribution's value: its size, or whether it is the smaller",
        ),
        opt(
            "drop",
            Literal::Text("feature_zero"),
            Valid::Choice(&["feature_zero", "input_zero"]),
            "how a modality is removed to valuate it",
        ),
        opt("modality_copies", Literal::Int(1), Valid::Int(1, 2), "copies of a low-contributing sample added per epoch"),
        opt("warmup", Literal::Int(5), Valid::Int(0, 100_000), "epochs before resampling starts"),
        opt("part_ratio", Literal::Float(0.2), Valid::Float(1e-6, 1.0), "the modality level's share of the split"),
        opt("alpha", Literal::Float(1.0), Valid::Float(0.0, 1e3), "the modality level's resampling strength"),
        opt("seed", Literal::Int(0), Valid::Int(0, i64::MAX), "seed of the resampling"),
    ],
    variants: &[Variant {
        name: "bb",
        help: "BalanceBenchmark: modality level, indicator values, inputs zeroed, two copies, warm-up 1, α 2",
        values: &[
            ("level", Literal::Text("modality")),
            ("value", Literal::Text("indicator")),
            ("drop", Literal::Text("input_zero")),
            ("modality_copies", Literal::Int(2)),
            ("warmup", Literal::Int(1)),
            ("alpha", Literal::Float(2.0)),
        ],
    }],
    modalities: Modalities::AtMost(
        MAX_MODALITIES,
        "its exact per-sample Shapley values evaluate the head on every coalition (2^N per sample)",
    ),
    keeps_state: Keeps::Always,
    terms: &["ce_fused"],
    diagnostics: &["extra_items"],
    // Sample level (the default) resamples from its warm-up on; part_ratio acts only at the
    // modality level.
    knob: Some(Knob { key: "warmup", values: &[Literal::Int(1), Literal::Int(5), Literal::Int(10)] }),
    build: |o, _| Ok(Box::new(SampleValuation::new(o)?)),
};

impl SampleValuation {
    pub fn new(opts: &Resolved) -> Result<SampleValuation> {
        Ok(SampleValuation {
            sample_level: opts.text("level") == "sample",
            size_valued: opts.text("value") == "size",
            drop: Removal::parse(opts.text("drop"))?,
            modality_copies: opts.int("modality_copies") as usize,
            warmup: opts.int("warmup") as usize,
            part_ratio: opts.float("part_ratio"),
            alpha: opts.float("alpha"),
            seed: opts.int("seed") as u64,
            phi: None,
            view: None,
            extra: 0,
        })
    }

    /// φ [len][N] for the split's samples in split order: evaluation mode, no augmentation, one
    /// forward per batch and the head (or the encoders, for input-zero) once per coalition.
    pub fn valuate(&self, model: &crate::train::model::Model, split: &Split, batching: &BatchOptions) -> Result<Vec<Vec<f64>>> {
        let _guard = tch::no_grad_guard();
        let n = model.modalities.len();
        let mut out = Vec::with_capacity(split.len());
        for b in Batches::new(split, &BatchOptions { shuffle: false, augment: false, ..batching.clone() })? {
            let b = b?;
            let x = inputs(model, &b)?;
            let fwd = model.forward_all(&x, false)?;
            let labels = b.labels.f_to_device(model.device())?;
            let rows = b.labels.size()[0];
            let mut correct = vec![Vec::new(); 1 << n];
            for mask in 1..(1usize << n) {
                let keep: Vec<f32> = (0..rows).flat_map(|_| (0..n).map(move |m| if mask & (1 << m) != 0 { 1.0 } else { 0.0 })).collect();
                let keep = Tensor::f_from_slice(&keep).and_then(|t| t.f_reshape([rows, n as i64]))?;
                let z = if mask == (1 << n) - 1 {
                    fwd.logits.fused.shallow_clone()
                } else {
                    fused_without(model, &x, &fwd, &keep, self.drop, false)?
                };
                let c = (z
                    .f_argmax(-1, false)
                    .and_then(|p| p.f_eq_tensor(&labels))
                    .and_then(|c| c.f_to_kind(Kind::Double))
                    // Read on the host: the Shapley sums run in f64 over each sample's coalitions.
                    .and_then(|c| c.f_to_device(tch::Device::Cpu)))?;
                correct[mask] = (Vec::<f64>::try_from(&c))?;
            }
            out.extend(shapley_values(&correct, n, self.size_valued));
        }
        Ok(out)
    }

    /// The epoch's extra items from φ (split order).
    fn copies_for(&self, split: &Split, phi: &[Vec<f64>], n: usize, epoch: usize) -> Vec<Item> {
        let mut extra = Vec::new();
        if self.sample_level {
            for (i, row) in split.indices.iter().enumerate() {
                for (m, &p) in phi[i].iter().enumerate() {
                    extra.extend(std::iter::repeat_n((*row, 1u32 << m), copies(p)));
                }
            }
            return extra;
        }
        let len = split.len();
        let mut rng = Rng::stream(self.seed ^ 0x5A, epoch as u64);
        let z = ((self.part_ratio * len as f64).round() as usize).max(1);
        let mut mean = vec![0.0; n];
        for _ in 0..z {
            let i = rng.below(len);
            for m in 0..n {
                mean[m] += phi[i][m] / z as f64;
            }
        }
        let gap: Vec<f64> = mean.iter().map(|p| 1.0 - p).collect();
        let weaker = if gap[0] >= gap[1] { 0 } else { 1 };
        for _ in 0..modality_draws(self.alpha, gap[0] - gap[1], len) {
            let row = split.indices[rng.below(len)];
            extra.push((row, 1u32 << weaker));
            if self.modality_copies == 2 {
                extra.push((row, all_kept(n)));
            }
        }
        extra
    }
}

impl Method for SampleValuation {
    /// The modality level compares two (the declaration allows up to 8, for the sample level).
    fn prepare(&self, model: &Model) -> Result<()> {
        if !self.sample_level && model.modalities.len() > 2 {
            return Err(Error::arg(format!(
                "method sample is defined for 2 modalities at the modality level and this model has {} ({}): the modality level resamples the weaker of two modalities; use level: \"sample\"",
                model.modalities.len(),
                model.modalities.join(", ")
            )));
        }
        Ok(())
    }

    fn begin_epoch(&mut self, ctx: &EpochContext) -> Result<()> {
        self.view = None;
        self.extra = 0;
        if ctx.epoch < self.warmup {
            return Ok(());
        }
        let n = ctx.model.modalities.len();
        let phi = self.valuate(ctx.model, ctx.train, ctx.batching)?;
        // φ by dataset row, for scripts and checkpoints.
        let rows = ctx.train.dataset.len() as i64;
        let mut table = vec![f64::NAN; rows as usize * n];
        for (i, row) in ctx.train.indices.iter().enumerate() {
            table[*row as usize * n..(*row as usize + 1) * n].copy_from_slice(&phi[i]);
        }
        self.phi = Some(Tensor::f_from_slice(&table).and_then(|t| t.f_reshape([rows, n as i64]))?);
        let extra = self.copies_for(ctx.train, &phi, n, ctx.epoch);
        self.extra = extra.len();
        let mut items: Vec<Item> = ctx.train.indices.iter().map(|&r| (r, all_kept(n))).collect();
        items.extend(extra);
        self.view = Some(items);
        Ok(())
    }

    fn epoch_view(&self) -> Option<&[Item]> {
        self.view.as_deref()
    }

    fn loss(&mut self, ctx: &StepContext) -> Result<StepLoss> {
        // A copy's removed modality goes as in the valuation: its input zeroed before the one
        // forward, or its features zeroed after it (items keeping everything: x·1 = x exactly).
        let fused = match (ctx.keep, self.drop) {
            (Some(keep), Removal::InputZero) => {
                let zeroed = zero_inputs(ctx.inputs, keep)?;
                let refs: Vec<&Tensor> = zeroed.iter().collect();
                ctx.model.forward_all(&refs, true)?.logits.fused
            }
            (Some(keep), how) => {
                let fwd = ctx.model.forward_all(ctx.inputs, true)?;
                fused_without(ctx.model, ctx.inputs, &fwd, keep, how, true)?
            }
            (None, _) => ctx.model.forward_all(ctx.inputs, true)?.logits.fused,
        };
        let ce = mean_ce(&fused, ctx.labels)?;
        Ok(StepLoss { terms: vec![("ce_fused", ce.f_detach()?)], total: ce, diagnostics: vec![("extra_items", self.extra as f64)] })
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        self.phi.iter().map(|p| ("phi".to_string(), p.shallow_clone())).collect()
    }

    fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        check_state_names("sample", state, &["phi"])?;
        self.phi = state.iter().find(|(n, _)| n == "phi").map(|(_, t)| t.shallow_clone());
        if self.phi.is_none() && !state.is_empty() {
            return Err(Error::arg("sample: the saved state has no \"phi\"".to_string()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specs_shapley_examples() {
        // (v_a, v_v, fused) = (1, 0, correct): official (1.5, 0.5), BalanceBenchmark (1, 0).
        // correct[mask]: mask 1 = audio alone, 2 = visual alone, 3 = both.
        let correct = vec![vec![], vec![1.0], vec![0.0], vec![1.0]];
        assert_eq!(shapley_values(&correct, 2, true), vec![vec![1.5, 0.5]]);
        assert_eq!(shapley_values(&correct, 2, false), vec![vec![1.0, 0.0]]);
        // All three correct: (1, 1) official, (0.5, 0.5) BalanceBenchmark.
        let all = vec![vec![], vec![1.0], vec![1.0], vec![1.0]];
        assert_eq!(shapley_values(&all, 2, true), vec![vec![1.0, 1.0]]);
        assert_eq!(shapley_values(&all, 2, false), vec![vec![0.5, 0.5]]);
        // Efficiency: φ_a + φ_v = v(full) always.
        for a in [0.0, 1.0] {
            for v in [0.0, 1.0] {
                for f in [0.0, 1.0] {
                    let c = vec![vec![], vec![a], vec![v], vec![f]];
                    let phi = &shapley_values(&c, 2, true)[0];
                    assert_eq!(phi[0] + phi[1], 2.0 * f);
                }
            }
        }
    }

    #[test]
    fn copy_counts_follow_the_table_with_boundaries_excluded() {
        for (phi, want) in [(1.5, 0), (1.0, 0), (0.5, 1), (0.4, 0), (0.0, 2), (-0.1, 0), (-0.5, 3)] {
            assert_eq!(copies(phi), want, "φ = {phi}");
        }
    }

    #[test]
    fn modality_level_draw_counts() {
        // N = 1000, acc_a − acc_v = 0.3, α = 1: 200 copies; BalanceBenchmark (α = 2): 400 draws.
        assert_eq!(modality_draws(1.0, 0.3, 1000), 200);
        assert_eq!(modality_draws(2.0, -0.3, 1000), 400);
    }
}
