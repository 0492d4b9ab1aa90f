//! Which names a training step reports are loss terms and which are a method's diagnostics.
//! Both come back from `train_epoch` in one map (and so in one epochs table); the TensorBoard
//! writer files them under `train/` and `method/`. The trainer notes each name as it sees it,
//! which is exact for every method, native or scripted, run in this process; for records
//! written by another process, `is_diagnostic` falls back to the built-in terms' names.

use std::collections::BTreeSet;
use std::sync::Mutex;

static DIAGNOSTICS: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
static TERMS: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Loss-term names of the built-in methods that do not start with "ce" or "loss".
const BUILT_IN_TERMS: &[&str] = &["align", "penalty", "boost", "ga", "gap", "gap_reg", "gap_align", "fusion", "proto_entropy", "distill"];

pub fn note_term(name: &str) {
    note(&TERMS, name);
}

pub fn note_diagnostic(name: &str) {
    note(&DIAGNOSTICS, name);
}

fn note(set: &Mutex<BTreeSet<String>>, name: &str) {
    let mut s = set.lock().unwrap_or_else(|p| p.into_inner());
    if !s.contains(name) {
        s.insert(name.to_string());
    }
}

/// Whether `name` (an epochs-table column that is not a score) is a method's diagnostic.
pub fn is_diagnostic(name: &str) -> bool {
    if DIAGNOSTICS.lock().unwrap_or_else(|p| p.into_inner()).contains(name) {
        return true;
    }
    if TERMS.lock().unwrap_or_else(|p| p.into_inner()).contains(name) {
        return false;
    }
    !(name == "loss" || name.starts_with("ce") || name.starts_with("loss") || BUILT_IN_TERMS.contains(&name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noted_names_win_over_the_fallback() {
        assert!(!is_diagnostic("ce_fused") && !is_diagnostic("align") && is_diagnostic("coef_first"));
        note_term("kl_private_term");
        note_diagnostic("ce_like_but_a_diagnostic");
        assert!(!is_diagnostic("kl_private_term"));
        assert!(is_diagnostic("ce_like_but_a_diagnostic"));
    }
}
