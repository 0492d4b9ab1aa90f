//! Purity of a clustering, and the per-dimension min-max scaling to [−1, 1] D&R applies to
//! features before clustering them.

use crate::error::{Error, Result};
use crate::tensor::{check, Kind, Tensor};

/// (1/n)·Σ_clusters max_c |cluster ∩ class c|.
pub fn purity(clusters: &[i64], labels: &[i64]) -> Result<f64> {
    if clusters.len() != labels.len() || clusters.is_empty() {
        return Err(Error::arg(format!(
            "purity: needs one cluster per label, got {} clusters for {} labels",
            clusters.len(),
            labels.len()
        )));
    }
    if clusters.iter().chain(labels).any(|&x| x < 0) {
        return Err(Error::arg("purity: clusters and labels must be non-negative"));
    }
    // A sparse contingency table: ids are arbitrary integers, so nothing is sized by their values.
    let mut table: std::collections::HashMap<(i64, i64), usize> = std::collections::HashMap::new();
    for (&g, &y) in clusters.iter().zip(labels) {
        *table.entry((g, y)).or_insert(0) += 1;
    }
    let mut best: std::collections::HashMap<i64, usize> = std::collections::HashMap::new();
    for ((g, _), n) in table {
        let b = best.entry(g).or_insert(0);
        *b = (*b).max(n);
    }
    let hits: usize = best.values().sum();
    Ok(hits as f64 / clusters.len() as f64)
}

/// Each column mapped to [−1, 1] by its own min and max (sklearn's MinMaxScaler with
/// feature_range (−1, 1)); a constant column maps to −1, as sklearn takes a zero range as 1.
pub fn minmax_scale(x: &Tensor) -> Result<Tensor> {
    let op = "minmax";
    let x = check(op, x.f_to_kind(Kind::Double))?;
    let lo = check(op, x.f_amin([0i64].as_slice(), true))?;
    let hi = check(op, x.f_amax([0i64].as_slice(), true))?;
    let range = check(op, hi.f_sub(&lo))?;
    let range = check(op, range.f_eq(0.0).and_then(|zero| range.f_masked_fill(&zero, 1.0)))?;
    check(op, x.f_sub(&lo).and_then(|d| d.f_div(&range)).and_then(|d| d.f_mul_scalar(2.0)).and_then(|d| d.f_sub_scalar(1.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separated_clusters_are_pure_and_one_cluster_gives_the_majority() {
        assert_eq!(purity(&[0, 0, 1, 1, 2], &[3, 3, 1, 1, 0]).unwrap(), 1.0);
        assert!((purity(&[0, 0, 0, 0, 0], &[1, 1, 1, 0, 2]).unwrap() - 0.6).abs() < 1e-12);
        assert!(purity(&[0], &[0, 1]).is_err());
    }

    #[test]
    fn minmax_maps_to_the_unit_range_and_constants_to_minus_one() {
        let x = Tensor::from_slice(&[0.0f64, 5.0, 2.0, 5.0, 4.0, 5.0]).reshape([3, 2]);
        let s = Vec::<f64>::try_from(minmax_scale(&x).unwrap().flatten(0, -1)).unwrap();
        assert_eq!(s, vec![-1.0, -1.0, 0.0, -1.0, 1.0, -1.0]);
    }
}
