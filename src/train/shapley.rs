//! Exact Shapley modality contributions (BalanceBenchmark's "modality valuation", computed over
//! all 2^N subsets rather than sampled): v(S) is the fused accuracy of the model with the
//! modalities outside S removed, and each modality's value is
//!
//!   φ_m = Σ_{S ⊆ M \ {m}} |S|! (N − |S| − 1)! / N! · (v(S ∪ {m}) − v(S)),
//!
//! so Σ_m φ_m = v(M) − v(∅). Removal zeroes a modality's input (BalanceBenchmark's choice) or
//! its pooled features before the head. Per sample, v_i(S) is 1 when sample i is classified
//! right under S: the per-sample contributions [n, N] that sample-level methods use.

use super::inference::{predict_with, Outputs};
use super::model::Model;
use crate::data::Split;
use crate::error::{Error, Result};
use crate::tensor::{Kind, Tensor};

/// How a modality outside the coalition is taken away.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Removal {
    /// Its input replaced by zeros.
    Input,
    /// Its encoder's features replaced by zeros before the head.
    Feature,
}

impl Removal {
    pub fn parse(name: &str) -> Result<Removal> {
        match name {
            "input" => Ok(Removal::Input),
            "feature" => Ok(Removal::Feature),
            other => Err(Error::arg(format!(
                "shapley: remove must be \"input\" (zero the inputs) or \"feature\" (zero the encoder features), got \"{other}\""
            ))),
        }
    }
}

pub struct Contributions {
    /// φ_m, in the model's modality order.
    pub values: Vec<f64>,
    /// v(M): every modality present.
    pub full: f64,
    /// v(∅): every modality removed.
    pub none: f64,
    /// v(S) for each subset, S as a bit mask over the modalities.
    pub subsets: Vec<(u32, f64)>,
    /// φ_{i,m} [n, N] in split order, when asked for.
    pub per_sample: Option<Tensor>,
}

/// Subsets of more modalities than this take too many passes to be worth exactness.
pub const MAX_MODALITIES: usize = 12;

fn factorial(k: usize) -> f64 {
    (1..=k).map(|i| i as f64).product()
}

/// Each sample's correctness [n] (1.0 or 0.0) under the coalition `mask`.
fn correct_under(model: &Model, split: &Split, removal: Removal, mask: u32, batch_size: usize) -> Result<Tensor> {
    let keep = |m: usize| mask & (1 << m) != 0;
    let out: Outputs = predict_with(model, split, batch_size, |model, inputs| match removal {
        Removal::Input => {
            let zeroed: Vec<Tensor> = inputs
                .iter()
                .enumerate()
                .map(|(m, x)| if keep(m) { Ok(x.shallow_clone()) } else { x.f_zeros_like().map_err(Error::from) })
                .collect::<Result<_>>()?;
            let refs: Vec<&Tensor> = zeroed.iter().collect();
            Ok(model.forward_all(&refs, false)?.logits)
        }
        Removal::Feature => {
            let f = model.encode_all(inputs, false)?;
            let zeroed: Vec<Tensor> = f
                .into_iter()
                .enumerate()
                .map(|(m, x)| if keep(m) { Ok(x) } else { x.f_zeros_like().map_err(Error::from) })
                .collect::<Result<_>>()?;
            model.head_all(&zeroed)
        }
    })?;
    out.fused.f_argmax(-1, false).and_then(|p| p.f_eq_tensor(&out.labels)).and_then(|c| c.f_to_kind(Kind::Double)).map_err(Error::from)
}

pub fn shapley(model: &Model, split: &Split, removal: Removal, per_sample: bool, batch_size: usize) -> Result<Contributions> {
    let op = "shapley";
    let n = model.modalities.len();
    if n > MAX_MODALITIES {
        return Err(Error::arg(format!(
            "{op}: exact Shapley values over {n} modalities need 2^{n} passes over the split; at most {MAX_MODALITIES} modalities"
        )));
    }
    let count = 1u32 << n;
    let correct: Vec<Tensor> = (0..count).map(|mask| correct_under(model, split, removal, mask, batch_size)).collect::<Result<_>>()?;
    let value = |t: &Tensor| t.f_mean(Kind::Double).and_then(|m| m.f_double_value(&[])).map_err(Error::from);
    let subsets: Vec<(u32, f64)> = correct.iter().enumerate().map(|(mask, c)| Ok((mask as u32, value(c)?))).collect::<Result<_>>()?;
    let nf = factorial(n);
    let mut phi = Vec::with_capacity(n);
    let mut per: Vec<Tensor> = Vec::new();
    for m in 0..n {
        let bit = 1u32 << m;
        let mut total = 0.0;
        let mut rows: Option<Tensor> = None;
        for s in (0..count).filter(|s| s & bit == 0) {
            let size = s.count_ones() as usize;
            let w = factorial(size) * factorial(n - size - 1) / nf;
            total += w * (subsets[(s | bit) as usize].1 - subsets[s as usize].1);
            if per_sample {
                let d = correct[(s | bit) as usize].f_sub(&correct[s as usize]).and_then(|d| d.f_mul_scalar(w))?;
                rows = Some(match rows {
                    None => d,
                    Some(r) => r.f_add(&d)?,
                });
            }
        }
        phi.push(total);
        if let Some(r) = rows {
            per.push(r);
        }
    }
    let per_sample = if per_sample { Some(Tensor::f_stack(&per, 1)?) } else { None };
    Ok(Contributions { values: phi, full: subsets[(count - 1) as usize].1, none: subsets[0].1, subsets, per_sample })
}
