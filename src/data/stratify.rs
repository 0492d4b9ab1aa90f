//! Seeded stratified splits: each class is shuffled and cut by the same fractions, so every
//! split keeps the class balance of the whole.

use crate::error::{Error, Result};
use crate::rng::Rng;

/// Splits rows 0..labels.len() into (train, val, test) index lists by `fractions` (val, test),
/// the rest going to train. Within each class the cut points round down for val and test.
pub fn stratified(labels: &[i64], classes: usize, val: f64, test: f64, seed: u64) -> Result<[Vec<i64>; 3]> {
    if !(0.0..1.0).contains(&val) || !(0.0..1.0).contains(&test) || val + test >= 1.0 {
        return Err(Error::arg(format!("split fractions val = {val}, test = {test}: each must be in [0, 1) and together below 1")));
    }
    let mut by_class: Vec<Vec<i64>> = vec![Vec::new(); classes];
    for (i, &y) in labels.iter().enumerate() {
        by_class[y as usize].push(i as i64);
    }
    let mut rng = Rng::new(seed);
    let mut out: [Vec<i64>; 3] = Default::default();
    for rows in by_class.iter_mut() {
        rng.shuffle(rows);
        let n = rows.len() as f64;
        let (n_val, n_test) = ((n * val).floor() as usize, (n * test).floor() as usize);
        out[1].extend_from_slice(&rows[..n_val]);
        out[2].extend_from_slice(&rows[n_val..n_val + n_test]);
        out[0].extend_from_slice(&rows[n_val + n_test..]);
    }
    for part in out.iter_mut() {
        part.sort_unstable();
    }
    Ok(out)
}

/// Named splits from a stratified cut, dropping empty val/test splits.
pub fn named(labels: &[i64], classes: usize, val: f64, test: f64, seed: u64) -> Result<Vec<(String, Vec<i64>)>> {
    let [train, v, t] = stratified(labels, classes, val, test, seed)?;
    let mut splits = vec![("train".to_string(), train)];
    if !v.is_empty() {
        splits.push(("val".into(), v));
    }
    if !t.is_empty() {
        splits.push(("test".into(), t));
    }
    Ok(splits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_partition_and_keep_class_balance() {
        let labels: Vec<i64> = (0..1000).map(|i| i % 4).collect();
        let [a, b, c] = stratified(&labels, 4, 0.1, 0.2, 3).unwrap();
        assert_eq!((a.len(), b.len(), c.len()), (700, 100, 200));
        let mut all: Vec<i64> = a.iter().chain(&b).chain(&c).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        for part in [&a, &b, &c] {
            for class in 0..4 {
                assert_eq!(part.iter().filter(|&&i| labels[i as usize] == class).count(), part.len() / 4);
            }
        }
        assert_eq!(stratified(&labels, 4, 0.1, 0.2, 3).unwrap()[1], b);
        assert_ne!(stratified(&labels, 4, 0.1, 0.2, 4).unwrap()[1], b);
        assert!(stratified(&labels, 4, 0.6, 0.5, 3).is_err());
    }
}
