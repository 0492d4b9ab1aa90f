//! Starting points for EM: k-means++ seeding and Lloyd's iterations in 1-D, as sklearn's
//! default `init_params="kmeans"` does; the hard clusters give the first parameters.

use super::family::{Component, Family};
use super::MAX_COMPONENTS;
use crate::rng::Rng;

/// The k cluster centres of a seeded k-means run on `x`.
pub fn kmeans_centres(x: &[f64], k: usize, rng: &mut Rng) -> Vec<f64> {
    let mut centres = Vec::with_capacity(k);
    centres.push(x[rng.below(x.len())]);
    let mut dist2: Vec<f64> = x.iter().map(|xi| (xi - centres[0]).powi(2)).collect();
    while centres.len() < k {
        let total: f64 = dist2.iter().sum();
        let next = if total > 0.0 {
            // D² sampling: a point is picked with probability proportional to its squared
            // distance from the nearest centre so far.
            let mut target = rng.uniform() * total;
            let mut pick = x.len() - 1;
            for (i, d) in dist2.iter().enumerate() {
                target -= d;
                if target < 0.0 {
                    pick = i;
                    break;
                }
            }
            x[pick]
        } else {
            x[rng.below(x.len())]
        };
        centres.push(next);
        for (d, xi) in dist2.iter_mut().zip(x) {
            *d = d.min((xi - next).powi(2));
        }
    }
    lloyd(x, &mut centres);
    centres
}

/// Cluster boundaries of 1-D centres: the midpoints between neighbours in sorted order. A
/// point's nearest centre is the number of boundaries at or below it, so assignment is k - 1
/// comparisons without branches.
fn boundaries(centres: &mut [f64]) -> Vec<f64> {
    centres.sort_by(f64::total_cmp);
    centres.windows(2).map(|w| 0.5 * (w[0] + w[1])).collect()
}

#[inline(always)]
fn cluster_of(xi: f64, bounds: &[f64]) -> usize {
    bounds.iter().map(|b| usize::from(xi >= *b)).sum()
}

fn lloyd(x: &[f64], centres: &mut [f64]) {
    let k = centres.len();
    // sklearn's KMeans rule: stop when the centres' squared shift is below 1e-4 of the data's
    // variance; EM refines the rest.
    let n = x.len() as f64;
    let total: f64 = x.iter().sum();
    let mean = total / n;
    let var = x.iter().map(|xi| (xi - mean).powi(2)).sum::<f64>() / n;
    for _ in 0..300 {
        let bounds = boundaries(centres);
        // In 1-D the clusters are intervals: with S_m, C_m the sum and count of points at or
        // above boundary m, cluster j holds S_j - S_(j+1). One tight pass per boundary keeps
        // the sums in registers, several times faster than scattering into per-cluster sums.
        let mut above = vec![(total, n)];
        for b in &bounds {
            let (s, c) = x.iter().fold((0.0, 0.0), |(s, c), xi| {
                let inside = f64::from(u8::from(*xi >= *b));
                (s + inside * xi, c + inside)
            });
            above.push((s, c));
        }
        above.push((0.0, 0.0));
        let mut shift2 = 0.0f64;
        for j in 0..k {
            let (sum, count) = (above[j].0 - above[j + 1].0, above[j].1 - above[j + 1].1);
            if count > 0.0 {
                let c = sum / count;
                shift2 += (c - centres[j]).powi(2);
                centres[j] = c;
            }
        }
        if shift2 <= 1e-4 * var {
            break;
        }
    }
}

/// First parameters from hard k-means clusters: weight = cluster share, mean, and the
/// family's scale matched to the cluster's standard deviation (floored).
pub fn from_clusters(family: Family, x: &[f64], centres: &[f64], var_floor: f64, start_dof: f64) -> Vec<Component> {
    let k = centres.len();
    let mut centres = centres.to_vec();
    let bounds = boundaries(&mut centres);
    let (mut count, mut sum, mut sum2) = ([0.0f64; MAX_COMPONENTS], [0.0f64; MAX_COMPONENTS], [0.0f64; MAX_COMPONENTS]);
    // Sums of (x - centre) keep the one-pass variance accurate: the centre is near the mean.
    for xi in x {
        let j = cluster_of(*xi, &bounds);
        let d = xi - centres[j];
        count[j] += 1.0;
        sum[j] += d;
        sum2[j] += d * d;
    }
    let means: Vec<f64> = (0..k).map(|j| if count[j] > 0.0 { centres[j] + sum[j] / count[j] } else { centres[j] }).collect();
    let var_of = |j: usize| if count[j] > 0.0 { (sum2[j] / count[j] - (sum[j] / count[j]).powi(2)).max(0.0) } else { 0.0 };
    let n = x.len() as f64;
    (0..k)
        .map(|j| {
            let var = var_of(j).max(var_floor);
            let (scale, dof) = match family {
                Family::Gaussian => (var.sqrt(), f64::INFINITY),
                Family::Laplace => ((var / 2.0).sqrt(), f64::INFINITY),
                Family::StudentT => (var.sqrt(), start_dof),
            };
            // An empty cluster still gets a sliver of weight so ln π stays finite.
            Component { weight: (count[j] / n).max(1e-12), mean: means[j], scale, dof }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_two_separated_clusters() {
        let x: Vec<f64> = (0..100).map(|i| if i % 2 == 0 { -5.0 + i as f64 * 1e-3 } else { 5.0 }).collect();
        let mut c = kmeans_centres(&x, 2, &mut Rng::new(3));
        c.sort_by(f64::total_cmp);
        assert!((c[0] + 4.95).abs() < 0.01 && (c[1] - 5.0).abs() < 1e-12, "{c:?}");
    }

    #[test]
    fn equal_values_leave_an_empty_cluster_with_finite_parameters() {
        let x = vec![2.0; 10];
        let c = kmeans_centres(&x, 2, &mut Rng::new(0));
        let comps = from_clusters(Family::Gaussian, &x, &c, 1e-6, 10.0);
        assert!(comps.iter().all(|c| c.weight.is_finite() && c.scale > 0.0 && c.mean.is_finite()));
    }
}
