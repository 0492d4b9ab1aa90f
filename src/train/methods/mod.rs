//! Training methods: every row of the paper's Table II is one `Method` (the trait and its
//! contexts are `train::method`), and the trainer's step is one loop over them (trainer.rs):
//!
//! ```text
//! prepare(model)                     check the model suits the method; set its head rule
//! begin_epoch(ctx)                   work before an epoch (G-Blending's weight estimate)
//! loss(ctx) -> StepLoss              forward pass(es) and the loss, with logged terms
//! backward                           the optimiser's gradients of that loss
//! adjust_gradients(ctx, grads)       changes between backward and update (OGM, AGM, MLA)
//! update                             the optimiser's step
//! ```
//!
//! A method may take several loss / backward / update rounds per batch (`substeps`: MLA's one
//! per modality); work after an epoch is done at the next `begin_epoch` (D&R's re-learning),
//! so a checkpoint written between epochs holds the model as evaluated.
//!
//! Methods keep what they carry across steps (AGM's running scores, G-Blending's weights) in
//! themselves, and expose it as named tensors for checkpoints (`state`, `load_state`).
//!
//! - `concat`: fused cross-entropy (the baseline)
//! - `warmup`, `adaptive`: the paper's Eq. 10 and Eq. 11
//! - `gblending`, `ogm`, `pmr`, `mmcosine`, `agm`, `mla`, `dr`, `opm`: the competitors
//!   (../shared/baselines.md)
//! - `mmpareto`, `lfm`, `cml`, `umt`, `sample`, `reconboost`: BalanceBenchmark's methods beyond Table II
//!   (../shared/baselines-2.md), each with the official rule as its default
//! - `options`: each method's option table, checked before training

pub mod adaptive;
pub mod agm;
pub mod cml;
pub mod concat;
pub mod dr;
pub mod gblending;
pub mod lfm;
pub mod mla;
pub mod mmcosine;
pub mod mmpareto;
pub mod ogm;
pub mod opm;
/// Each method's option table (`train::options`), where the methods have always found it.
pub use super::options;
pub mod pmr;
pub mod reconboost;
pub mod sample;
pub mod umt;
pub mod warmup;

/// The trait, contexts and helpers, where the methods have always found them.
pub use super::method::*;
use crate::error::{Error, Result};

/// Every method a script can name: Table II's order, then BalanceBenchmark's beyond it.
pub const NAMES: [&str; 17] = [
    "concat",
    "g-blending",
    "ogm-ge",
    "pmr",
    "mmcosine",
    "agm",
    "mla",
    "d&r",
    "opm&ogm",
    "warmup",
    "adaptive",
    "mmpareto",
    "lfm",
    "reconboost",
    "umt",
    "cml",
    "sample",
];

/// Builds a method by name from its options; "baseline" is the concat method's older name.
/// `adaptive` also needs its per-sample weights, which are not plain values.
pub fn build(name: &str, given: &[(String, Value)], weights: Option<adaptive::Weights>) -> Result<Box<dyn Method>> {
    Ok(match name {
        "concat" | "baseline" => Box::new(concat::Concat::new(given)?),
        "warmup" => Box::new(warmup::Warmup::new(given)?),
        "adaptive" => Box::new(adaptive::Adaptive::new(given, weights)?),
        "g-blending" => Box::new(gblending::GBlending::new(given)?),
        "ogm-ge" => Box::new(ogm::OgmGe::new(given)?),
        "agm" => Box::new(agm::Agm::new(given)?),
        "mmcosine" => Box::new(mmcosine::MmCosine::new(given)?),
        "opm&ogm" => Box::new(opm::OpmOgm::new(given)?),
        "pmr" => Box::new(pmr::Pmr::new(given)?),
        "mla" => Box::new(mla::Mla::new(given)?),
        "d&r" => Box::new(dr::Relearn::new(given)?),
        "mmpareto" => Box::new(mmpareto::MmPareto::new(given)?),
        "lfm" => Box::new(lfm::Lfm::new(given)?),
        "cml" => Box::new(cml::Cml::new(given)?),
        "umt" => Box::new(umt::Umt::new(given)?),
        "sample" => Box::new(sample::SampleValuation::new(given)?),
        "reconboost" => Box::new(reconboost::ReconBoost::new(given)?),
        other => {
            return Err(Error::arg(format!("unknown method \"{other}\": use one of {}", NAMES.map(|n| format!("\"{n}\"")).join(", "))))
        }
    })
}
