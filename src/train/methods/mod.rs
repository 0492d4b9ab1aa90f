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
//! - `dgl`, `inforeg`, `g2d`, `cggm`: the methods of 2024-2025 (../shared/baselines-3.md), each by its authors' code
//! - `amss`, `aug`, `di-mml`: more methods of 2024-2025 (baselines-3.md §3, §4, §6)
//! - `mbsd`, `amco`: BalanceBenchmark's readings of methods with no official code or no identified paper
//!   (baselines-2.md §2, §4); `greedy`: Greedy's MMTM mid-fusion and curation (baselines-2.md §1)
//!
//! Each file declares its method (`pub static SPEC: MethodSpec`, `train::declaration`) beside its
//! rule; `ALL` below is the registry everything else reads.

pub mod adaptive;
pub mod agm;
pub mod amco;
pub mod amss;
pub mod aug;
pub mod cggm;
pub mod cml;
pub mod concat;
pub mod dgl;
pub mod di_mml;
pub mod dr;
pub mod g2d;
pub mod gblending;
pub mod greedy;
pub mod inforeg;
pub mod lfm;
pub mod mbsd;
pub mod mla;
pub mod mmcosine;
pub mod mmpareto;
pub mod ogm;
pub mod opm;
pub mod pmr;
pub mod reconboost;
pub mod sample;
pub mod umt;
pub mod warmup;

use crate::error::{Error, Result};
use crate::train::declaration::{BuildInputs, Configured, MethodSpec};
use crate::train::options::Value;

/// Every native method: Table II's order, then the paper's two objectives, then
/// BalanceBenchmark's methods beyond Table II, then the methods of 2024-2025, then the rest of
/// BalanceBenchmark's. Adding a method is its file and one line here.
pub static ALL: &[&MethodSpec] = &[
    &concat::SPEC,
    &gblending::SPEC,
    &ogm::SPEC,
    &pmr::SPEC,
    &mmcosine::SPEC,
    &agm::SPEC,
    &mla::SPEC,
    &dr::SPEC,
    &opm::SPEC,
    &warmup::SPEC,
    &adaptive::SPEC,
    &mmpareto::SPEC,
    &lfm::SPEC,
    &reconboost::SPEC,
    &umt::SPEC,
    &cml::SPEC,
    &sample::SPEC,
    &dgl::SPEC,
    &inforeg::SPEC,
    &g2d::SPEC,
    &cggm::SPEC,
    &mbsd::SPEC,
    &amss::SPEC,
    &amco::SPEC,
    &aug::SPEC,
    &di_mml::SPEC,
    &greedy::SPEC,
];

/// The names a script can choose, in registry order.
pub fn names() -> Vec<&'static str> {
    ALL.iter().map(|s| s.name).collect()
}

/// The declaration a name (or an alias) chooses; an unknown name lists the valid ones, nearest
/// first.
pub fn find(name: &str) -> Result<&'static MethodSpec> {
    if let Some(spec) = ALL.iter().find(|s| s.answers_to(name)) {
        return Ok(spec);
    }
    let names = names();
    let near = crate::suggest::nearest(name, names.iter().copied());
    let hint = match near.first() {
        Some(n) => format!("; did you mean \"{n}\"?"),
        None => String::new(),
    };
    Err(Error::arg(format!(
        "unknown method \"{name}\": use one of {}{hint}",
        names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ")
    )))
}

/// Builds a method by name from its options (and, for `adaptive`, its per-sample weights).
pub fn build(name: &str, given: &[(String, Value)], inputs: &BuildInputs) -> Result<Configured> {
    find(name)?.configure(given, inputs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::options::Literal;

    /// A recipe's history record holds `stage`, `epoch` and `loss` beside the logged terms and
    /// diagnostics: a method naming one of its values so would overwrite it.
    #[test]
    fn no_method_logs_under_a_name_the_records_keep() {
        for spec in ALL {
            for name in spec.terms.iter().chain(spec.diagnostics) {
                assert!(!["stage", "epoch", "loss"].contains(name), "{} logs \"{name}\", a history record's own key", spec.name);
            }
        }
    }

    /// Run tables put every run's options in one column per name: a name must mean one type
    /// across methods (AGM's `clip` is a switch, so DGL's norm is `clip_norm`).
    #[test]
    fn every_option_name_has_one_type_across_methods() {
        let kind = |l: &Literal| match l {
            Literal::Float(_) | Literal::Int(_) => "number",
            Literal::Bool(_) => "bool",
            Literal::Text(_) => "text",
            Literal::List(_) => "list",
        };
        let mut seen: Vec<(&str, &str, &str)> = Vec::new();
        for spec in ALL {
            for o in spec.options {
                match seen.iter().find(|(n, _, _)| *n == o.name) {
                    Some((_, k, by)) => {
                        assert_eq!(
                            *k,
                            kind(&o.default),
                            "option \"{}\" is a {k} in {by} but a {} in {}",
                            o.name,
                            kind(&o.default),
                            spec.name
                        )
                    }
                    None => seen.push((o.name, kind(&o.default), spec.name)),
                }
            }
        }
    }
}
