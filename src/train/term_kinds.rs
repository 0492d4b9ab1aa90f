//! Which names a training step reports are loss terms and which are a method's diagnostics.
//! Both come back from `train_epoch` in one map (and so in one epochs table); the TensorBoard
//! writer files them under `train/` and `method/`. Native methods declare theirs
//! (`MethodSpec::terms` / `diagnostics`); a scripted method's are learnt as the trainer sees them,
//! which is exact for every method run in this process. A name neither declared nor seen (a
//! scripted method's, in a record written by another process) is filed as a diagnostic.

use std::collections::BTreeSet;
use std::sync::Mutex;

static DIAGNOSTICS: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
static TERMS: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

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
    let all = super::methods::ALL;
    if name == "loss" || all.iter().any(|s| s.declares_term(name)) {
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_names_are_filed_and_noted_names_win() {
        assert!(!is_diagnostic("ce_fused") && !is_diagnostic("align") && is_diagnostic("coef_first"));
        assert!(!is_diagnostic("ce_audio") && is_diagnostic("w_fused"));
        note_term("kl_private_term");
        note_diagnostic("ce_like_but_a_diagnostic");
        assert!(!is_diagnostic("kl_private_term"));
        assert!(is_diagnostic("ce_like_but_a_diagnostic"));
    }
}
