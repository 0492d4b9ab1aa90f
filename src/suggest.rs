//! "Did you mean": the known names nearest to a mistyped one, by edit distance. Used wherever a
//! name is looked up (methods, options, settings) so a typo's error names the fix.

/// Levenshtein distance over characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1).min(row[j] + 1).min(diag + usize::from(ca != *cb));
            diag = above;
        }
    }
    row[b.len()]
}

/// The candidates within a third of the typed name's length (at least 1, at most 3 edits),
/// nearest first; ties keep the candidates' order.
pub fn nearest<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let limit = (typed.chars().count() / 3).clamp(1, 3);
    let lower = typed.to_lowercase();
    let mut scored: Vec<(usize, &str)> =
        candidates.into_iter().map(|c| (edit_distance(&lower, &c.to_lowercase()), c)).filter(|(d, _)| *d <= limit).collect();
    scored.sort_by_key(|(d, _)| *d);
    scored.into_iter().map(|(_, c)| c).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_their_names_and_strangers_find_none() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(nearest("ogm_ge", ["concat", "ogm-ge", "pmr"]), vec!["ogm-ge"]);
        assert_eq!(nearest("train_epch", ["train_step", "train_epoch", "evaluate"]), vec!["train_epoch"]);
        assert_eq!(nearest("sofmax", ["max", "softmax", "log_softmax"]), vec!["softmax"]);
        assert!(nearest("zzzzzz", ["concat", "agm"]).is_empty());
    }
}
