//! BB-MBSD: BalanceBenchmark's `MBSD_trainer.py` (two-modality branch; ../shared/baselines-2.md
//! §4). Its paper could not be identified, so the row is named for the code it reproduces. With
//! q_m,i = p_m[i, y_i] from the split logits, each sample gets w_i = |q_a,i − q_v,i| when either
//! unimodal prediction is right (0 otherwise), and
//!
//! ```text
//! L = CE_f + CE_a + CE_v + (1/B)·Σ_i w_i·(1/C)·‖ℓ_a[i] − ℓ_v[i]‖² + (1/B)·Σ_i w_i·u_i·(ln u_i − s_i)
//! ```
//!
//! inside its window (CE_f alone outside), with s_i = max and u_i = min of the two q's. The last
//! term is what the library's KL routine computes when handed probabilities where it expects
//! log-probabilities: not a KL divergence, and it can be negative. The code's w is not detached.
//! `mbsd_kl: "distribution"` is the evident intent, (1/B)·Σ_i sg(w_i)·KL(sg(p_strong,i) ‖ p_weak,i)
//! over class distributions, the stronger modality chosen per sample by q; `mbsd_rs_on: "probs"`
//! measures the response similarity on probabilities (the code's three-modality branch).

use crate::error::{Error, Result};
use crate::tensor::{Kind, Tensor};
use crate::train::declaration::{Keeps, MethodSpec, Modalities, Reference};
use crate::train::loss;
use crate::train::method::{Method, StepContext, StepLoss};
use crate::train::options::{opt, Literal, Resolved, Valid, Window};

pub static SPEC: MethodSpec = MethodSpec {
    name: "mbsd",
    aliases: &["bb-mbsd"],
    summary: "BalanceBenchmark's MBSD (paper not identified): sample-weighted response similarity and a \"KL\" term between the unimodal predictions",
    reference: Reference {
        authors: "BalanceBenchmark's reading (no paper identified)",
        venue: "BalanceBenchmark",
        code: "https://github.com/GeWu-Lab/BalanceBenchmark",
        commit: "4c1482f",
    },
    options: &[
        opt("window", Literal::List(&[0.0, -1.0]), Valid::Window, "epochs in which the extra terms act (CE_f alone outside)"),
        opt("mbsd_kl", Literal::Text("code"), Valid::Choice(&["code", "distribution"]), "the code's term on the true-class scores, or a KL between class distributions"),
        opt("mbsd_detach_w", Literal::Bool(false), Valid::Bool, "detach the sample weights (the code does not)"),
        opt("mbsd_rs_on", Literal::Text("logits"), Valid::Choice(&["logits", "probs"]), "the response similarity on logits (the code's two-modality branch) or probabilities"),
    ],
    variants: &[],
    modalities: Modalities::AtMost(2, "its rule is the code's two-modality branch (the three-modality one is another rule)"),
    keeps_state: Keeps::Never,
    terms: &["ce_fused", "ce_*", "rs", "kl"],
    diagnostics: &["weighted"],
    knob: None,
    build: |o, _| Ok(Box::new(Mbsd::new(o))),
};

pub struct Mbsd {
    window: Window,
    distribution: bool,
    detach_w: bool,
    rs_on_probs: bool,
}

impl Mbsd {
    pub fn new(o: &Resolved) -> Mbsd {
        Mbsd {
            window: o.window("window"),
            distribution: o.text("mbsd_kl") == "distribution",
            detach_w: o.boolean("mbsd_detach_w"),
            rs_on_probs: o.text("mbsd_rs_on") == "probs",
        }
    }
}

/// The two extra terms (RS, "KL") and the fraction of samples weighted, from the two unimodal
/// logits [B, C] and the labels.
pub fn mbsd_terms(
    la: &Tensor,
    lv: &Tensor,
    y: &Tensor,
    distribution: bool,
    detach_w: bool,
    rs_on_probs: bool,
) -> Result<(Tensor, Tensor, f64)> {
    let (pa, pv) = (la.f_softmax(-1, Kind::Float)?, lv.f_softmax(-1, Kind::Float)?);
    let yy = y.f_unsqueeze(1)?;
    let (qa, qv) = (pa.f_gather(1, &yy, false)?.f_squeeze_dim(1)?, pv.f_gather(1, &yy, false)?.f_squeeze_dim(1)?);
    let right = la.f_argmax(-1, false)?.f_eq_tensor(y)?.f_logical_or(&lv.f_argmax(-1, false)?.f_eq_tensor(y)?)?;
    let mut w = qa.f_sub(&qv)?.f_abs()?.f_mul(&right.f_to_kind(Kind::Float)?)?;
    if detach_w || distribution {
        w = w.f_detach()?;
    }
    let weighted = right.f_to_kind(Kind::Double)?.f_mean(Kind::Double)?.f_double_value(&[])?;
    let classes = la.size()[1] as f64;
    let (ra, rv) = if rs_on_probs { (pa.shallow_clone(), pv.shallow_clone()) } else { (la.shallow_clone(), lv.shallow_clone()) };
    let sq = ra.f_sub(&rv)?.f_square()?.f_sum_dim_intlist([-1i64].as_slice(), false, Kind::Float)?.f_div_scalar(classes)?;
    let rs = w.f_mul(&sq)?.f_mean(Kind::Float)?;
    let kl = if distribution {
        // KL(sg p_strong ‖ p_weak) per sample, the stronger chosen by q.
        let a_strong = qa.f_ge_tensor(&qv)?.f_unsqueeze(1)?;
        let strong = pa.f_where_self(&a_strong, &pv)?.f_detach()?;
        let weak_log = la.f_log_softmax(-1, Kind::Float)?.f_where_self(&a_strong.f_logical_not()?, &lv.f_log_softmax(-1, Kind::Float)?)?;
        let per = strong.f_mul(&strong.f_clamp_min(1e-12)?.f_log()?.f_sub(&weak_log)?)?.f_sum_dim_intlist(
            [-1i64].as_slice(),
            false,
            Kind::Float,
        )?;
        w.f_mul(&per)?.f_mean(Kind::Float)?
    } else {
        let (s, u) = (qa.f_maximum(&qv)?, qa.f_minimum(&qv)?);
        w.f_mul(&u.f_mul(&u.f_log()?.f_sub(&s)?)?)?.f_mean(Kind::Float)?
    };
    Ok((rs, kl, weighted))
}

impl Method for Mbsd {
    fn loss(&mut self, ctx: &StepContext) -> Result<StepLoss> {
        let model = ctx.model;
        let fwd = model.forward_all(ctx.inputs, true)?;
        if !self.window.contains(ctx.epoch) {
            let l = loss::fused_only_all(&fwd.logits, ctx.labels, &model.modalities)?;
            return Ok(StepLoss { total: l.total, terms: l.terms, diagnostics: vec![("weighted", 0.0)] });
        }
        let l = loss::warmup_all(&fwd.logits, ctx.labels, &model.modalities)?;
        let (la, lv) = (&fwd.logits.per[0], &fwd.logits.per[1]);
        let (rs, kl, weighted) = mbsd_terms(la, lv, ctx.labels, self.distribution, self.detach_w, self.rs_on_probs)?;
        let total = l.total.f_add(&rs)?.f_add(&kl).map_err(Error::from)?;
        let mut terms = l.terms;
        terms.push(("rs", rs));
        terms.push(("kl", kl));
        Ok(StepLoss { total, terms, diagnostics: vec![("weighted", weighted)] })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Logits whose softmax over two classes gives the true class (0) probability q.
    fn logits_for(q: f64) -> Tensor {
        Tensor::from_slice(&[(q / (1.0 - q)).ln() as f32, 0.0]).reshape([1, 2])
    }

    #[test]
    fn the_specs_hand_example() {
        // q_a = 0.8 (right), q_v = 0.3: w = 0.5, the code's "KL" 0.5·0.3·(ln 0.3 − 0.8) = −0.30060.
        let y = Tensor::from_slice(&[0i64]);
        let (_, kl, weighted) = mbsd_terms(&logits_for(0.8), &logits_for(0.3), &y, false, false, false).unwrap();
        assert!((kl.double_value(&[]) + 0.30060).abs() < 1e-5, "{}", kl.double_value(&[]));
        assert_eq!(weighted, 1.0);
        // RS: ℓ_a = (1, 0), ℓ_v = (0, 0), C = 2 give 0.5 before weighting; w = |0.731 − 0.5|.
        let (la, lv) = (Tensor::from_slice(&[1.0f32, 0.0]).reshape([1, 2]), Tensor::from_slice(&[0.0f32, 0.0]).reshape([1, 2]));
        let (rs, _, _) = mbsd_terms(&la, &lv, &y, false, false, false).unwrap();
        let w = (1.0f64.exp() / (1.0f64.exp() + 1.0) - 0.5).abs();
        assert!((rs.double_value(&[]) - 0.5 * w).abs() < 1e-6, "{}", rs.double_value(&[]));
    }

    #[test]
    fn both_predictions_wrong_weigh_nothing_and_the_distribution_form_is_a_kl() {
        let y = Tensor::from_slice(&[1i64]);
        let (rs, kl, weighted) = mbsd_terms(&logits_for(0.8), &logits_for(0.7), &y, false, false, false).unwrap();
        assert_eq!((rs.double_value(&[]), kl.double_value(&[]), weighted), (0.0, 0.0, 0.0));
        // The distribution form is ≥ 0 and 0 when the two predictions agree.
        let y = Tensor::from_slice(&[0i64]);
        let (_, kl, _) = mbsd_terms(&logits_for(0.8), &logits_for(0.3), &y, true, false, false).unwrap();
        assert!(kl.double_value(&[]) > 0.0);
        let (_, same, _) = mbsd_terms(&logits_for(0.8), &logits_for(0.8), &y, true, false, false).unwrap();
        assert!(same.double_value(&[]).abs() < 1e-7);
    }
}
