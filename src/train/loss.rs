//! The training losses (method.md, Eq. 10-11), per sample then averaged over the batch:
//!
//! - warm-up: L_wp = CE_f + CE_a + CE_v
//! - adaptive: L_i = α·w0_i·CE_f + λ_t·(β·g_i² + γ·w1_i·(g_i − μ0_raw)² + CE_a + CE_v), λ_t = ρ^t
//!
//! g_i is the live, differentiable gap of the batch (first modality minus second). Each term is
//! a switch for the Table III ablations; every term is returned so a script can log it.

use super::fusion::Logits;
use crate::error::{Error, Result};
use crate::gap::{gap, GapKind};
use crate::tensor::loss::per_sample_cross_entropy as ce;
use crate::tensor::{Kind, Tensor};

#[derive(Clone, Debug)]
pub struct LossConfig {
    pub alpha: f64,
    pub beta: f64,
    pub gamma: f64,
    pub rho: f64,
    /// Adaptive epochs completed (λ_t = ρ^t).
    pub t: i64,
    pub gap: GapKind,
    /// false: w0 = w1 = 1 (the "no GMM weighting" ablation).
    pub use_weights: bool,
    /// false: no CE_a + CE_v in the adaptive loss.
    pub unimodal: bool,
    /// The balanced component's mean in raw gap units.
    pub mu0_raw: f64,
}

impl Default for LossConfig {
    fn default() -> Self {
        LossConfig {
            alpha: 1.0,
            beta: 1.0,
            gamma: 1.0,
            rho: 0.95,
            t: 0,
            gap: GapKind::Prob,
            use_weights: true,
            unimodal: true,
            mu0_raw: 0.0,
        }
    }
}

/// The batch loss and its terms (batch means), for logging.
pub struct LossTerms {
    pub total: Tensor,
    pub terms: Vec<(&'static str, Tensor)>,
}

fn mean(t: &Tensor) -> Result<Tensor> {
    t.f_mean(Kind::Float).map_err(Error::from)
}

/// The name each modality's CE is logged under: ce_first / ce_second for two modalities (as
/// records always had them), ce_<modality> for more.
fn ce_names(modalities: &[String]) -> Vec<&'static str> {
    if modalities.len() == 2 {
        return vec!["ce_first", "ce_second"];
    }
    modalities.iter().map(|m| super::method::intern(&format!("ce_{m}"))).collect()
}

/// L_wp = CE_f + Σ_m CE_m (Eq. 10 for any number of modalities; CE_f + CE_a + CE_v for two).
pub fn warmup_all(logits: &Logits, labels: &Tensor, modalities: &[String]) -> Result<LossTerms> {
    let f = mean(&ce(&logits.fused, labels)?)?;
    let mut total = f.shallow_clone();
    let mut terms = vec![("ce_fused", f)];
    for (name, l) in ce_names(modalities).into_iter().zip(&logits.per) {
        let c = mean(&ce(l, labels)?)?;
        total = total.f_add(&c)?;
        terms.push((name, c));
    }
    Ok(LossTerms { total, terms })
}

/// Plain fused cross-entropy (the concat baseline), for any number of modalities. Each
/// modality's CE is returned too, for the log only (detached, not in the total): the paper's
/// Fig. 1 plots exactly these under joint training, where one modality's loss stalls.
pub fn fused_only_all(logits: &Logits, labels: &Tensor, modalities: &[String]) -> Result<LossTerms> {
    let f = mean(&ce(&logits.fused, labels)?)?;
    let mut terms = vec![("ce_fused", f.shallow_clone())];
    for (name, l) in ce_names(modalities).into_iter().zip(&logits.per) {
        terms.push((name, mean(&ce(&l.f_detach()?, labels)?)?));
    }
    Ok(LossTerms { total: f, terms })
}

/// L_wp = CE_f + CE_a + CE_v (Eq. 10).
pub fn warmup(logits: &Logits, labels: &Tensor) -> Result<LossTerms> {
    let (f, a, v) = (mean(&ce(&logits.fused, labels)?)?, mean(&ce(logits.first(), labels)?)?, mean(&ce(logits.second(), labels)?)?);
    let total = f.f_add(&a).and_then(|x| x.f_add(&v))?;
    Ok(LossTerms { total, terms: vec![("ce_fused", f), ("ce_first", a), ("ce_second", v)] })
}

/// The adaptive loss (Eq. 11) with per-sample weights [B, 2] = (w0, w1). For more than two
/// modalities g is the first modality against the others' mean and the unimodal term sums every
/// modality's CE (docs/method.md); two modalities take exactly the paper's form.
pub fn adaptive(logits: &Logits, labels: &Tensor, weights: &Tensor, cfg: &LossConfig, modalities: &[String]) -> Result<LossTerms> {
    if logits.per.len() > 2 {
        return adaptive_n(logits, labels, weights, cfg, modalities);
    }
    let op = "adaptive_loss";
    let b = labels.size()[0];
    if weights.size() != [b, 2] {
        return Err(Error::arg(format!("{op}: weights must be [{b}, 2] (w0, w1 per sample), got {:?}", weights.size())));
    }
    let w = weights.f_to_kind(Kind::Float).and_then(|w| w.f_to_device(labels.device()))?;
    let (w0, w1) = if cfg.use_weights {
        (w.f_select(1, 0)?, w.f_select(1, 1)?)
    } else {
        let ones = Tensor::f_ones([b], (Kind::Float, labels.device()))?;
        (ones.shallow_clone(), ones)
    };
    let g = gap(logits.first(), logits.second(), labels, cfg.gap)?.f_to_kind(Kind::Float)?;
    let lambda = cfg.rho.powi(cfg.t as i32);
    let (ce_f, ce_a, ce_v) = (ce(&logits.fused, labels)?, ce(logits.first(), labels)?, ce(logits.second(), labels)?);
    let fusion = ce_f.f_mul(&w0).and_then(|x| x.f_mul_scalar(cfg.alpha))?;
    let reg = g.f_square().and_then(|x| x.f_mul_scalar(cfg.beta))?;
    let align =
        g.f_sub_scalar(cfg.mu0_raw).and_then(|x| x.f_square()).and_then(|x| x.f_mul(&w1)).and_then(|x| x.f_mul_scalar(cfg.gamma))?;
    let mut inner = reg.f_add(&align)?;
    if cfg.unimodal {
        inner = inner.f_add(&ce_a).and_then(|x| x.f_add(&ce_v))?;
    }
    let total = mean(&fusion.f_add(&inner.f_mul_scalar(lambda).map_err(|e| Error::torch(op, e))?)?)?;
    Ok(LossTerms {
        total,
        terms: vec![
            ("fusion", mean(&fusion)?),
            ("gap_reg", mean(&reg)?),
            ("gap_align", mean(&align)?),
            ("ce_fused", mean(&ce_f)?),
            ("ce_first", mean(&ce_a)?),
            ("ce_second", mean(&ce_v)?),
            ("gap", mean(&g.f_detach().map_err(|e| Error::torch(op, e))?)?),
        ],
    })
}

/// Eq. 11 over N > 2 modalities: g_i = m(l_0) − mean_{m>0} m(l_m), Σ_m CE_m in the unimodal
/// term, each CE logged as ce_<modality> beside the paper's terms.
fn adaptive_n(logits: &Logits, labels: &Tensor, weights: &Tensor, cfg: &LossConfig, modalities: &[String]) -> Result<LossTerms> {
    let op = "adaptive_loss";
    let b = labels.size()[0];
    if weights.size() != [b, 2] {
        return Err(Error::arg(format!("{op}: weights must be [{b}, 2] (w0, w1 per sample), got {:?}", weights.size())));
    }
    let w = weights.f_to_kind(Kind::Float).and_then(|w| w.f_to_device(labels.device()))?;
    let (w0, w1) = if cfg.use_weights {
        (w.f_select(1, 0)?, w.f_select(1, 1)?)
    } else {
        let ones = Tensor::f_ones([b], (Kind::Float, labels.device()))?;
        (ones.shallow_clone(), ones)
    };
    let g = crate::gap::gap_against_rest(&logits.per, labels, cfg.gap)?.f_to_kind(Kind::Float)?;
    let lambda = cfg.rho.powi(cfg.t as i32);
    let ce_f = ce(&logits.fused, labels)?;
    let ces: Vec<Tensor> = logits.per.iter().map(|l| ce(l, labels)).collect::<Result<_>>()?;
    let fusion = ce_f.f_mul(&w0).and_then(|x| x.f_mul_scalar(cfg.alpha))?;
    let reg = g.f_square().and_then(|x| x.f_mul_scalar(cfg.beta))?;
    let align =
        g.f_sub_scalar(cfg.mu0_raw).and_then(|x| x.f_square()).and_then(|x| x.f_mul(&w1)).and_then(|x| x.f_mul_scalar(cfg.gamma))?;
    let mut inner = reg.f_add(&align)?;
    if cfg.unimodal {
        for c in &ces {
            inner = inner.f_add(c)?;
        }
    }
    let total = mean(&fusion.f_add(&inner.f_mul_scalar(lambda).map_err(|e| Error::torch(op, e))?)?)?;
    let mut terms = vec![("fusion", mean(&fusion)?), ("gap_reg", mean(&reg)?), ("gap_align", mean(&align)?), ("ce_fused", mean(&ce_f)?)];
    for (name, c) in ce_names(modalities).into_iter().zip(&ces) {
        terms.push((name, mean(c)?));
    }
    terms.push(("gap", mean(&g.f_detach().map_err(|e| Error::torch(op, e))?)?));
    Ok(LossTerms { total, terms })
}
