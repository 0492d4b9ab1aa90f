//! AGM (Li et al., ICCV 2023): adaptive gradient modulation through Shapley-style unimodal
//! logits (../shared/baselines.md §5).
//!
//! Per step: F = f(a, v) in training mode, then in evaluation mode (running batch-norm
//! statistics, not updated) with gradients on, F_v0 = f(a, 0) and F_a0 = f(0, v) (inputs
//! zeroed). m_a = ½(F − F_a0 + F_v0), m_v = ½(F − F_v0 + F_a0), so m_a + m_v = F and the loss is
//! CE(F). Scores s_m = mean −log max(p(m_m)[y], 1e-8); r_a = exp(s_v − s_a), r_v = 1/r_a;
//! running means T_m (a cumulative average over every step so far) give the targets
//! r̄_a = exp(T_v − T_a); c_m = exp(α·min(r̄_m − r_m, 10)). Inside the window the gradient
//! reaching m_a is scaled by c_a and m_v's by c_v (the reference's backward hooks), so
//! ∂/∂F = (c_a + c_v)/2, ∂/∂F_a0 = (c_v − c_a)/2, ∂/∂F_v0 = (c_a − c_v)/2. Outside it the
//! coefficients are 1 (the reference left the last ones acting). Then, if any element of the
//! fusion weight's gradient is outside [−1, 1], the global gradient norm is clipped to 1.
//! F_00 = f(0, 0), which the reference only logs, is not computed.
//!
//! For N modalities (the authors' three-modality code, Lingy12/AGM_ICCV2023 `model/URFunny_net.py`
//! and `run/URFunny_main.py`): m_i is the Shapley value of modality i over the 2^N − 1 non-empty
//! subsets, F(S) the fused logits with the inputs outside S zeroed and F(∅) taken as 0 (so
//! Σ_i m_i = F, and at N = 2 it is the rule above); r_i = exp(mean_{j≠i} s_j − s_i) (theirs:
//! exp((mean s − s_i)·N/(N − 1)), the same), targets from the running means the same way, and the
//! gradient reaching m_i is scaled by c_i, so each F(T) receives
//! Σ_{i∈T} c_i·w(|T| − 1) − Σ_{i∉T} c_i·w(|T|), w(k) = k!(N − k − 1)!/N!.
//!
//! `variant: "bb"` is BalanceBenchmark's form, for comparison: scores from no-grad passes,
//! the ratio's sign inverted (r_a = exp(s_a − s_v)), the exponent capped at 7, c_m multiplying
//! each encoder's non-1-D gradients as OGM does, and clipping at 5 to norm 5.

use crate::error::{Error, Result};
use crate::tensor::{Kind, Tensor};
use crate::train::declaration::{Keeps, Knob, MethodSpec, Modalities, Reference, Variant};
use crate::train::method::{
    check_state_names, gradient_only, mean_ce, per_modality, read_state, state_tensor, Method, Selection, StepContext, StepLoss,
};
use crate::train::options::{opt, Literal, Resolved, Valid, Window};

pub static SPEC: MethodSpec = MethodSpec {
    name: "agm",
    aliases: &[],
    summary: "adaptive gradient modulation: Shapley-style unimodal logits, each scaled towards its running target",
    reference: Reference { authors: "Li et al.", venue: "ICCV 2023", code: "https://github.com/Lingy12/AGM_ICCV2023", commit: "a24f2ce" },
    options: &[
        opt("alpha", Literal::Float(1.5), Valid::Float(0.0, f64::INFINITY), "strength α of c_m = exp(α·(r̄_m − r_m))"),
        opt("window", Literal::List(&[0.0, -1.0]), Valid::Window, "epochs in which the coefficients act"),
        opt("clip", Literal::Bool(true), Valid::Bool, "clip the global gradient norm to 1 when the fusion gradient leaves [−1, 1]"),
        opt("variant", Literal::Text("official"), Valid::Choice(&["official", "bb"]), "the authors' rule, or BalanceBenchmark's form"),
    ],
    variants: &[Variant {
        name: "bb",
        help: "BalanceBenchmark: no-grad scores, inverted ratio, exponent cap 7, OGM-style scaling, clip at 5",
        values: &[],
    }],
    modalities: Modalities::Any,
    keeps_state: Keeps::Always,
    terms: &["ce_fused", "ce_*"],
    diagnostics: &["coef_*", "running_*", "active"],
    knob: Some(Knob { key: "alpha", values: &[Literal::Float(0.5), Literal::Float(1.0), Literal::Float(1.5), Literal::Float(2.0)] }),
    build: |o, _| Ok(Box::new(Agm::new(o)?)),
};

pub struct Agm {
    alpha: f64,
    window: Window,
    clip: bool,
    bb: bool,
    /// Running mean scores (T_first, T_second, ...) and the number of steps they average.
    running: Vec<f64>,
    steps: u64,
    pending: Vec<f64>,
}

/// (c_first, c_second) from this step's scores and the running means before this step.
pub fn coefficients(alpha: f64, s: [f64; 2], running: [f64; 2], bb: bool) -> [f64; 2] {
    let sign = if bb { -1.0 } else { 1.0 };
    let cap = if bb { 7.0 } else { 10.0 };
    let r = [(sign * (s[1] - s[0])).exp(), (sign * (s[0] - s[1])).exp()];
    let target = [(sign * (running[1] - running[0])).exp(), (sign * (running[0] - running[1])).exp()];
    [(alpha * (target[0] - r[0]).min(cap)).exp(), (alpha * (target[1] - r[1]).min(cap)).exp()]
}

/// (c_m) for any number of modalities: r_m = exp(±(mean_{j≠m} s_j − s_m)), targets from the
/// running means the same way (for two, exactly `coefficients`).
pub fn coefficients_n(alpha: f64, s: &[f64], running: &[f64], bb: bool) -> Vec<f64> {
    if s.len() == 2 {
        return coefficients(alpha, [s[0], s[1]], [running[0], running[1]], bb).to_vec();
    }
    let sign = if bb { -1.0 } else { 1.0 };
    let cap = if bb { 7.0 } else { 10.0 };
    let n = s.len();
    let others = |v: &[f64], m: usize| (0..n).filter(|&j| j != m).map(|j| v[j]).sum::<f64>() / (n - 1) as f64;
    (0..n)
        .map(|m| {
            let r = (sign * (others(s, m) - s[m])).exp();
            let target = (sign * (others(running, m) - running[m])).exp();
            (alpha * (target - r).min(cap)).exp()
        })
        .collect()
}

/// The Shapley weight of a coalition of k others among N: k!·(N − k − 1)!/N!.
pub fn shapley_weight(k: usize, n: usize) -> f64 {
    let fact = |x: usize| (1..=x).map(|i| i as f64).product::<f64>();
    fact(k) * fact(n - k - 1) / fact(n)
}

/// s = mean_i −log max(softmax(m)[i, y_i], 1e-8), detached.
fn score(m: &Tensor, labels: &Tensor) -> Result<f64> {
    (m.f_detach()
        .and_then(|m| m.f_softmax(-1, Kind::Double))
        .and_then(|p| p.f_gather(1, &labels.f_unsqueeze(1)?, false))
        .and_then(|p| p.f_clamp_min(1e-8))
        .and_then(|p| p.f_log())
        .and_then(|l| l.f_mean(Kind::Double))
        .and_then(|l| l.f_neg())
        .and_then(|l| l.f_double_value(&[])))
    .map_err(Error::from)
}

impl Agm {
    pub fn new(opts: &Resolved) -> Result<Agm> {
        Ok(Agm {
            alpha: opts.float("alpha"),
            window: opts.window("window"),
            clip: opts.boolean("clip"),
            bb: opts.text("variant") == "bb",
            running: vec![0.0; 2],
            steps: 0,
            pending: vec![1.0; 2],
        })
    }
}

/// The most modalities AGM's subset passes are run for (2^10 − 1 = 1023 passes a step).
const MAX_SUBSET_MODALITIES: usize = 10;

impl Agm {
    /// The step for more than two modalities (module docs): 2^N − 1 forward passes.
    fn loss_n(&mut self, ctx: &StepContext) -> Result<StepLoss> {
        let model = ctx.model;
        let n = ctx.inputs.len();
        // 2^N − 1 forward passes a step: beyond a handful of modalities that is no longer a step.
        if n > MAX_SUBSET_MODALITIES {
            return Err(Error::arg(format!("agm: its Shapley split takes 2^N − 1 forward passes a step, and this model has {n} modalities (at most {MAX_SUBSET_MODALITIES}): train it with a method whose cost does not grow with the subsets, e.g. ogm-ge or concat")));
        }
        let full_mask = (1usize << n) - 1;
        let zeros = ctx.inputs.iter().map(|x| x.f_zeros_like().map_err(Error::from)).collect::<Result<Vec<_>>>()?;
        // F(S) for every non-empty subset S (bit m set: modality m kept); the full set in
        // training mode, the others in evaluation mode, as at two.
        let mut f: Vec<Option<Tensor>> = (0..=full_mask).map(|_| None).collect();
        f[full_mask] = Some(model.forward_all(ctx.inputs, true)?.logits.fused);
        {
            let _guard = self.bb.then(tch::no_grad_guard);
            for set in 1..full_mask {
                let xs: Vec<&Tensor> = (0..n).map(|m| if set >> m & 1 == 1 { ctx.inputs[m] } else { &zeros[m] }).collect();
                f[set] = Some(model.forward_all(&xs, false)?.logits.fused);
            }
        }
        let get = |set: usize| f[set].as_ref().expect("every non-empty subset");
        // m_i = Σ_{S ∌ i} w(|S|)·(F(S ∪ i) − F(S)), F(∅) = 0.
        let mut shapley = Vec::with_capacity(n);
        for i in 0..n {
            let mut total: Option<Tensor> = None;
            for set in 0..=full_mask {
                if set >> i & 1 == 1 {
                    continue;
                }
                let with = get(set | 1 << i);
                let diff = if set == 0 { with.shallow_clone() } else { with.f_sub(get(set))? };
                let term = diff.f_mul_scalar(shapley_weight(set.count_ones() as usize, n))?;
                total = Some(match total {
                    None => term,
                    Some(t) => t.f_add(&term)?,
                });
            }
            shapley.push(total.expect("subsets"));
        }
        let s = shapley.iter().map(|m| score(m, ctx.labels)).collect::<Result<Vec<f64>>>()?;
        let c = coefficients_n(self.alpha, &s, &self.running, self.bb);
        self.steps += 1;
        let t = self.steps as f64;
        for m in 0..n {
            self.running[m] = self.running[m] * (t - 1.0) / t + s[m] / t;
        }
        let active = self.window.contains(ctx.epoch);
        self.pending = if active { c } else { vec![1.0; n] };
        let full = get(full_mask);
        let output = if self.bb {
            full.shallow_clone()
        } else {
            // The value is exactly F; each F(T) receives Σ_{i∈T} c_i·w(|T|−1) − Σ_{i∉T} c_i·w(|T|).
            let mut out = full.f_detach()?;
            for set in 1..=full_mask {
                let k = set.count_ones() as usize;
                let coef: f64 = (0..n)
                    .map(|i| {
                        if set >> i & 1 == 1 {
                            self.pending[i] * shapley_weight(k - 1, n)
                        } else {
                            -self.pending[i] * shapley_weight(k, n)
                        }
                    })
                    .sum();
                out = out.f_add(&gradient_only(get(set), coef)?)?;
            }
            out
        };
        let total = mean_ce(&output, ctx.labels)?;
        let mut terms = vec![("ce_fused", total.shallow_clone())];
        terms.extend(per_modality(model, "ce").into_iter().zip(s.iter().map(|&v| Tensor::from(v))));
        let mut diagnostics: Vec<(&'static str, f64)> = per_modality(model, "coef").into_iter().zip(self.pending.iter().copied()).collect();
        diagnostics.extend(per_modality(model, "running").into_iter().zip(self.running.iter().copied()));
        diagnostics.push(("active", active as i64 as f64));
        Ok(StepLoss { total, terms, diagnostics })
    }
}

impl Method for Agm {
    fn loss(&mut self, ctx: &StepContext) -> Result<StepLoss> {
        let n = ctx.model.modalities.len();
        if self.running.len() != n {
            if self.steps > 0 {
                return Err(Error::arg(format!(
                    "agm: its running scores are for {} modalities and this model has {n}: build a fresh method for this model",
                    self.running.len()
                )));
            }
            self.running = vec![0.0; n];
        }
        if n > 2 {
            return self.loss_n(ctx);
        }
        let model = ctx.model;
        let (a, v) = (ctx.inputs[0], ctx.inputs[1]);
        let full = model.forward(a, v, true)?.logits.fused;
        let (za, zv) = (a.f_zeros_like()?, v.f_zeros_like()?);
        // Evaluation mode: batch norm reads its running statistics and leaves them unchanged.
        let padded = |x: &Tensor, y: &Tensor| -> Result<Tensor> { Ok(model.forward(x, y, false)?.logits.fused) };
        let (without_second, without_first) = {
            // BalanceBenchmark uses these passes for the scores only.
            let _guard = self.bb.then(tch::no_grad_guard);
            (padded(a, &zv)?, padded(&za, v)?)
        };
        let half = |x: &Tensor, minus: &Tensor, plus: &Tensor| {
            x.f_sub(minus).and_then(|d| d.f_add(plus)).and_then(|d| d.f_mul_scalar(0.5)).map_err(Error::from)
        };
        let m_first = half(&full, &without_first, &without_second)?;
        let m_second = half(&full, &without_second, &without_first)?;
        let s = [score(&m_first, ctx.labels)?, score(&m_second, ctx.labels)?];
        let c = coefficients(self.alpha, s, [self.running[0], self.running[1]], self.bb);
        self.steps += 1;
        let t = self.steps as f64;
        for m in 0..2 {
            self.running[m] = self.running[m] * (t - 1.0) / t + s[m] / t;
        }
        let active = self.window.contains(ctx.epoch);
        self.pending = if active { c.to_vec() } else { vec![1.0, 1.0] };
        let (ca, cv) = (self.pending[0], self.pending[1]);
        let output = if self.bb {
            full.shallow_clone()
        } else {
            // The value is exactly F; the gradient follows the hooks' factors.
            let detached = full.f_detach()?;
            let parts = [
                gradient_only(&full, (ca + cv) / 2.0)?,
                gradient_only(&without_first, (cv - ca) / 2.0)?,
                gradient_only(&without_second, (ca - cv) / 2.0)?,
            ];
            parts.iter().try_fold(detached, |acc, p| acc.f_add(p).map_err(Error::from))?
        };
        let total = mean_ce(&output, ctx.labels)?;
        Ok(StepLoss {
            total: total.shallow_clone(),
            terms: vec![("ce_fused", total), ("ce_first", Tensor::from(s[0])), ("ce_second", Tensor::from(s[1]))],
            diagnostics: vec![
                ("coef_first", self.pending[0]),
                ("coef_second", self.pending[1]),
                ("running_first", self.running[0]),
                ("running_second", self.running[1]),
                ("active", active as i64 as f64),
            ],
        })
    }

    fn adjust_gradients(&mut self, ctx: &StepContext, params: &[(String, Tensor)], grads: &mut [Tensor]) -> Result<()> {
        let _guard = tch::no_grad_guard();
        if self.bb && self.window.contains(ctx.epoch) {
            for m in 0..self.pending.len() {
                for i in Selection::Weights.pick(ctx.model, params, m) {
                    if grads[i].defined() {
                        grads[i] = grads[i].f_mul_scalar(self.pending[m])?;
                    }
                }
            }
        }
        if !self.clip {
            return Ok(());
        }
        let (threshold, max_norm) = if self.bb { (5.0, 5.0) } else { (1.0, 1.0) };
        let mut outside = false;
        for ((name, _), g) in params.iter().zip(grads.iter()) {
            if name.starts_with("fusion.") && name.ends_with(".weight") && g.defined() {
                outside |= g.f_abs().and_then(|x| x.f_max()).and_then(|x| x.f_double_value(&[]))? > threshold;
            }
        }
        if outside {
            // torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is < 1.
            let mut sq = 0.0;
            for g in grads.iter().filter(|g| g.defined()) {
                sq += g.f_square().and_then(|x| x.f_sum(Kind::Double)).and_then(|x| x.f_double_value(&[]))?;
            }
            let coef = max_norm / (sq.sqrt() + 1e-6);
            if coef < 1.0 {
                for g in grads.iter_mut().filter(|g| g.defined()) {
                    *g = g.f_mul_scalar(coef)?;
                }
            }
        }
        Ok(())
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        vec![("running".into(), state_tensor(&self.running)), ("steps".into(), state_tensor(&[self.steps as f64]))]
    }

    fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        check_state_names("agm", state, &["running", "steps"])?;
        let len = state.iter().find(|(n, _)| n == "running").map_or(2, |(_, t)| t.numel());
        if len < 2 {
            return Err(Error::arg(format!("agm: the saved running scores have {len} values, expected one per modality")));
        }
        self.running = read_state("agm", state, "running", len)?;
        self.steps = read_state("agm", state, "steps", 1)?[0] as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coefficients_match_the_spec() {
        // s_a = 1.0, s_v = 2.0, T_a = 1.2, T_v = 1.8, α = 1.5:
        // c_a = exp(1.5·(e^0.6 − e^1)) = 0.26074, c_v = exp(1.5·(e^−0.6 − e^−1)) = 1.31180.
        let c = coefficients(1.5, [1.0, 2.0], [1.2, 1.8], false);
        assert!((c[0] - 0.260_74).abs() < 1e-5 && (c[1] - 1.311_80).abs() < 1e-5, "{c:?}");
        assert_eq!(coefficients(0.0, [1.0, 2.0], [1.2, 1.8], false), [1.0, 1.0]);
        // The cap: min(r̄ − r, 10).
        let capped = coefficients(1.0, [0.0, 0.0], [0.0, 20.0], false);
        assert!((capped[0] - 10f64.exp()).abs() < 1e-6, "{capped:?}");
    }

    #[test]
    fn three_modalities_follow_the_authors_urfunny_rule() {
        // Their r_i = exp((mean s − s_i)·3/2), written out, against coefficients_n.
        let (s, t, alpha) = ([0.9, 1.4, 2.0], [1.0, 1.2, 1.9], 1.5);
        let mean = |v: &[f64]| v.iter().sum::<f64>() / 3.0;
        let got = coefficients_n(alpha, &s, &t, false);
        for i in 0..3 {
            let r = ((mean(&s) - s[i]) * 1.5).exp();
            let target = ((mean(&t) - t[i]) * 1.5).exp();
            let want = (alpha * (target - r).min(10.0)).exp();
            assert!((got[i] - want).abs() < 1e-12, "{i}: {got:?}");
        }
        // Shapley weights for N = 3: 1/3 alone, 1/6 with one other, 1/3 with both.
        assert!(
            (shapley_weight(0, 3) - 1.0 / 3.0).abs() < 1e-15
                && (shapley_weight(1, 3) - 1.0 / 6.0).abs() < 1e-15
                && (shapley_weight(2, 3) - 1.0 / 3.0).abs() < 1e-15
        );
        assert_eq!(shapley_weight(0, 2), 0.5);
    }
}
