//! Starting points for EM: k-means++ seeding and Lloyd's iterations in 1-D, as sklearn's
//! default `init_params="kmeans"` does; the hard clusters give the first parameters.

use super::family::{Component, Family};
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

fn nearest(xi: f64, centres: &[f64]) -> usize {
    let mut best = 0;
    for (j, c) in centres.iter().enumerate() {
        if (xi - c).abs() < (xi - centres[best]).abs() {
            best = j;
        }
    }
    best
}

fn lloyd(x: &[f64], centres: &mut [f64]) {
    let k = centres.len();
    let spread = x.iter().fold(0.0f64, |m, xi| m.max((xi - x[0]).abs()));
    for _ in 0..300 {
        let mut sums = vec![0.0; k];
        let mut counts = vec![0usize; k];
        for xi in x {
            let j = nearest(*xi, centres);
            sums[j] += xi;
            counts[j] += 1;
        }
        let mut shift = 0.0f64;
        for j in 0..k {
            if counts[j] > 0 {
                let c = sums[j] / counts[j] as f64;
                shift = shift.max((c - centres[j]).abs());
                centres[j] = c;
            }
        }
        if shift <= 1e-10 * spread.max(f64::MIN_POSITIVE) {
            break;
        }
    }
}

/// First parameters from hard k-means clusters: weight = cluster share, mean, and the
/// family's scale matched to the cluster's standard deviation (floored).
pub fn from_clusters(family: Family, x: &[f64], centres: &[f64], var_floor: f64, start_dof: f64) -> Vec<Component> {
    let k = centres.len();
    let mut count = vec![0.0f64; k];
    let mut sum = vec![0.0f64; k];
    let mut sum2 = vec![0.0f64; k];
    for xi in x {
        let j = nearest(*xi, centres);
        count[j] += 1.0;
        sum[j] += xi;
    }
    let means: Vec<f64> = (0..k).map(|j| if count[j] > 0.0 { sum[j] / count[j] } else { centres[j] }).collect();
    for xi in x {
        let j = nearest(*xi, centres);
        sum2[j] += (xi - means[j]).powi(2);
    }
    let n = x.len() as f64;
    (0..k)
        .map(|j| {
            let var = if count[j] > 0.0 { sum2[j] / count[j] } else { 0.0 }.max(var_floor);
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
