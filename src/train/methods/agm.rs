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
//! `variant: "bb"` is BalanceBenchmark's form, for comparison: scores from no-grad passes,
//! the ratio's sign inverted (r_a = exp(s_a − s_v)), the exponent capped at 7, c_m multiplying
//! each encoder's non-1-D gradients as OGM does, and clipping at 5 to norm 5.

use super::options::{resolve, spec, Resolved, Valid, Window};
use crate::train::method::{check_state_names, gradient_only, mean_ce, read_state, state_tensor, Method, Selection, StepContext, StepLoss, Value};
use crate::error::Result;
use crate::tensor::{check, Kind, Tensor};

pub struct Agm {
    opts: Resolved,
    alpha: f64,
    window: Window,
    clip: bool,
    bb: bool,
    /// Running mean scores (T_first, T_second) and the number of steps they average.
    running: [f64; 2],
    steps: u64,
    pending: [f64; 2],
}

/// (c_first, c_second) from this step's scores and the running means before this step.
pub fn coefficients(alpha: f64, s: [f64; 2], running: [f64; 2], bb: bool) -> [f64; 2] {
    let sign = if bb { -1.0 } else { 1.0 };
    let cap = if bb { 7.0 } else { 10.0 };
    let r = [(sign * (s[1] - s[0])).exp(), (sign * (s[0] - s[1])).exp()];
    let target = [(sign * (running[1] - running[0])).exp(), (sign * (running[0] - running[1])).exp()];
    [(alpha * (target[0] - r[0]).min(cap)).exp(), (alpha * (target[1] - r[1]).min(cap)).exp()]
}

/// s = mean_i −log max(softmax(m)[i, y_i], 1e-8), detached.
fn score(m: &Tensor, labels: &Tensor) -> Result<f64> {
    let op = "agm";
    check(op, m.f_detach().and_then(|m| m.f_softmax(-1, Kind::Double)).and_then(|p| p.f_gather(1, &labels.f_unsqueeze(1)?, false)).and_then(|p| p.f_clamp_min(1e-8)).and_then(|p| p.f_log()).and_then(|l| l.f_mean(Kind::Double)).and_then(|l| l.f_neg()).and_then(|l| l.f_double_value(&[])))
}

impl Agm {
    pub fn new(given: &[(String, Value)]) -> Result<Agm> {
        let opts = resolve(
            "agm",
            &[
                spec("alpha", Value::Float(1.5), Valid::Float(0.0, f64::INFINITY)),
                spec("window", Value::List(vec![0.0, -1.0]), Valid::Window),
                spec("clip", Value::Bool(true), Valid::Bool),
                spec("variant", Value::Text("official".into()), Valid::Choice(&["official", "bb"])),
            ],
            given,
        )?;
        Ok(Agm { alpha: opts.float("alpha"), window: opts.window("window"), clip: opts.boolean("clip"), bb: opts.text("variant") == "bb", opts, running: [0.0; 2], steps: 0, pending: [1.0; 2] })
    }
}

impl Method for Agm {
    fn name(&self) -> &'static str {
        "agm"
    }

    fn options(&self) -> &Resolved {
        &self.opts
    }

    fn keeps_state(&self) -> bool {
        true
    }

    fn loss(&mut self, ctx: &StepContext) -> Result<StepLoss> {
        let op = "agm";
        let model = ctx.model;
        let (a, v) = (ctx.inputs[0], ctx.inputs[1]);
        let full = model.forward(a, v, true)?.logits.fused;
        let (za, zv) = (check(op, a.f_zeros_like())?, check(op, v.f_zeros_like())?);
        // Evaluation mode: batch norm reads its running statistics and leaves them unchanged.
        let padded = |x: &Tensor, y: &Tensor| -> Result<Tensor> { Ok(model.forward(x, y, false)?.logits.fused) };
        let (without_second, without_first) = {
            // BalanceBenchmark uses these passes for the scores only.
            let _guard = self.bb.then(tch::no_grad_guard);
            (padded(a, &zv)?, padded(&za, v)?)
        };
        let half = |x: &Tensor, minus: &Tensor, plus: &Tensor| check(op, x.f_sub(minus).and_then(|d| d.f_add(plus)).and_then(|d| d.f_mul_scalar(0.5)));
        let m_first = half(&full, &without_first, &without_second)?;
        let m_second = half(&full, &without_second, &without_first)?;
        let s = [score(&m_first, ctx.labels)?, score(&m_second, ctx.labels)?];
        let c = coefficients(self.alpha, s, self.running, self.bb);
        self.steps += 1;
        let t = self.steps as f64;
        for m in 0..2 {
            self.running[m] = self.running[m] * (t - 1.0) / t + s[m] / t;
        }
        let active = self.window.contains(ctx.epoch);
        self.pending = if active { c } else { [1.0, 1.0] };
        let [ca, cv] = self.pending;
        let output = if self.bb {
            full.shallow_clone()
        } else {
            // The value is exactly F; the gradient follows the hooks' factors.
            let detached = check(op, full.f_detach())?;
            let parts = [gradient_only(&full, (ca + cv) / 2.0)?, gradient_only(&without_first, (cv - ca) / 2.0)?, gradient_only(&without_second, (ca - cv) / 2.0)?];
            parts.iter().try_fold(detached, |acc, p| check(op, acc.f_add(p)))?
        };
        let total = mean_ce(&output, ctx.labels)?;
        Ok(StepLoss {
            total: total.shallow_clone(),
            terms: vec![("ce_fused", total), ("ce_first", Tensor::from(s[0])), ("ce_second", Tensor::from(s[1]))],
            diagnostics: vec![("coef_first", self.pending[0]), ("coef_second", self.pending[1]), ("running_first", self.running[0]), ("running_second", self.running[1]), ("active", active as i64 as f64)],
        })
    }

    fn adjust_gradients(&mut self, ctx: &StepContext, params: &[(String, Tensor)], grads: &mut [Tensor]) -> Result<()> {
        let op = "agm";
        let _guard = tch::no_grad_guard();
        if self.bb && self.window.contains(ctx.epoch) {
            for m in 0..2 {
                for i in Selection::Weights.pick(ctx.model, params, m) {
                    if grads[i].defined() {
                        grads[i] = check(op, grads[i].f_mul_scalar(self.pending[m]))?;
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
                outside |= check(op, g.f_abs().and_then(|x| x.f_max()).and_then(|x| x.f_double_value(&[])))? > threshold;
            }
        }
        if outside {
            // torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is < 1.
            let mut sq = 0.0;
            for g in grads.iter().filter(|g| g.defined()) {
                sq += check(op, g.f_square().and_then(|x| x.f_sum(Kind::Double)).and_then(|x| x.f_double_value(&[])))?;
            }
            let coef = max_norm / (sq.sqrt() + 1e-6);
            if coef < 1.0 {
                for g in grads.iter_mut().filter(|g| g.defined()) {
                    *g = check(op, g.f_mul_scalar(coef))?;
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
        let r = read_state("agm", state, "running", 2)?;
        self.running = [r[0], r[1]];
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
}
