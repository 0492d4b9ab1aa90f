//! k-means with scikit-learn's algorithm and settings pinned (D&R's diagnosis depends on them,
//! and sklearn's own defaults changed across versions): greedy k-means++ starts
//! (2 + ⌊ln k⌋ candidates per centre), Lloyd iterations up to `max_iter`, stopping when the
//! labels stop changing or the total squared centre shift is at most tol × the mean per-column
//! variance, the best of `n_init` starts by inertia. An empty cluster takes the point farthest
//! from its centre. Distances are one matrix product per iteration (libtorch, float64).

use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::tensor::{check, Kind, Tensor};

#[derive(Clone, Debug)]
pub struct KMeansOptions {
    pub n_init: usize,
    pub max_iter: usize,
    pub tol: f64,
    pub seed: u64,
}

impl Default for KMeansOptions {
    fn default() -> Self {
        KMeansOptions { n_init: 10, max_iter: 300, tol: 1e-4, seed: 0 }
    }
}

pub struct KMeans {
    /// [k, d] float64.
    pub centers: Tensor,
    pub labels: Vec<i64>,
    pub inertia: f64,
    /// Lloyd iterations of the chosen start.
    pub iterations: usize,
}

/// Squared distances [n, k] between the rows of x [n, d] and c [k, d].
fn sq_distances(x: &Tensor, xx: &Tensor, c: &Tensor) -> Result<Tensor> {
    let op = "kmeans";
    let cc =
        check(op, c.f_square().and_then(|s| s.f_sum_dim_intlist([1i64].as_slice(), false, Kind::Double)).and_then(|s| s.f_unsqueeze(0)))?;
    check(
        op,
        x.f_matmul(&c.f_t_copy().map_err(|e| Error::torch(op, e))?)
            .and_then(|xc| xx.f_add(&cc)?.f_sub(&xc.f_mul_scalar(2.0)?))
            .and_then(|d| d.f_clamp_min(0.0)),
    )
}

fn to_vec(t: &Tensor) -> Result<Vec<f64>> {
    check("kmeans", t.f_flatten(0, -1).and_then(|t| Vec::<f64>::try_from(&t)))
}

/// Index of the first cumulative weight above `target` (numpy's searchsorted, side left).
fn search(cumulative: &[f64], target: f64) -> usize {
    cumulative.partition_point(|&c| c < target).min(cumulative.len() - 1)
}

/// Greedy k-means++ starting centres [k, d].
fn plus_plus(x: &Tensor, xx: &Tensor, k: usize, rng: &mut Rng) -> Result<Tensor> {
    let op = "kmeans";
    let n = x.size()[0] as usize;
    let trials = 2 + (k as f64).ln().floor() as usize;
    let row = |i: usize| check(op, x.f_narrow(0, i as i64, 1));
    let mut centres = vec![row(rng.below(n))?];
    let mut closest = to_vec(&sq_distances(x, xx, &centres[0])?)?;
    for _ in 1..k {
        let mut cumulative = Vec::with_capacity(n);
        let mut acc = 0.0;
        for d in &closest {
            acc += d;
            cumulative.push(acc);
        }
        let candidates: Vec<i64> = (0..trials).map(|_| search(&cumulative, rng.uniform() * acc) as i64).collect();
        let cand = check(op, x.f_index_select(0, &Tensor::from_slice(&candidates)))?;
        // [n, trials]: each candidate's distance to every point.
        let d = to_vec(&check(op, sq_distances(x, xx, &cand)?.f_t_copy().and_then(|t| t.f_contiguous()))?)?;
        let mut best = (f64::INFINITY, 0usize);
        for t in 0..trials {
            let pot: f64 = closest.iter().zip(&d[t * n..(t + 1) * n]).map(|(a, b)| a.min(*b)).sum();
            if pot < best.0 {
                best = (pot, t);
            }
        }
        let t = best.1;
        for (c, nd) in closest.iter_mut().zip(&d[t * n..(t + 1) * n]) {
            *c = c.min(*nd);
        }
        centres.push(row(candidates[t] as usize)?);
    }
    check(op, Tensor::f_cat(&centres, 0))
}

/// One start: Lloyd iterations from `centres`.
fn lloyd(x: &Tensor, xx: &Tensor, mut centres: Tensor, k: usize, max_iter: usize, tol: f64) -> Result<KMeans> {
    let op = "kmeans";
    let n = x.size()[0];
    let mut previous: Option<Tensor> = None;
    let mut iterations = 0;
    for _ in 0..max_iter {
        iterations += 1;
        let d = sq_distances(x, xx, &centres)?;
        let (min_d, labels) = check(op, d.f_min_dim(1, false))?;
        let counts = check(op, labels.f_bincount::<Tensor>(None, k as i64))?;
        let sums =
            check(op, Tensor::f_zeros([k as i64, x.size()[1]], (Kind::Double, x.device())).and_then(|z| z.f_index_add(0, &labels, x)))?;
        let mut next = check(
            op,
            (|| -> std::result::Result<_, tch::TchError> {
                sums.f_div(&counts.f_to_kind(Kind::Double)?.f_clamp_min(1.0)?.f_unsqueeze(1)?)
            })(),
        )?;
        let count_vec = check(op, Vec::<i64>::try_from(&counts))?;
        let empty: Vec<i64> = count_vec.iter().enumerate().filter(|(_, &c)| c == 0).map(|(j, _)| j as i64).collect();
        if !empty.is_empty() {
            // Relocate each empty cluster to one of the points farthest from their centres.
            let far = check(op, min_d.f_topk(empty.len() as i64, 0, true, true))?.1;
            let rows = check(op, x.f_index_select(0, &far))?;
            next = check(op, next.f_index_copy(0, &Tensor::from_slice(&empty), &rows))?;
        }
        let shift = check(
            op,
            next.f_sub(&centres).and_then(|s| s.f_square()).and_then(|s| s.f_sum(Kind::Double)).and_then(|s| s.f_double_value(&[])),
        )?;
        let same = previous.as_ref().is_some_and(|p| p.equal(&labels));
        centres = next;
        previous = Some(labels);
        if same || shift <= tol {
            break;
        }
    }
    // Labels and inertia of the final centres.
    let d = sq_distances(x, xx, &centres)?;
    let (min_d, labels) = check(op, d.f_min_dim(1, false))?;
    let inertia = check(op, min_d.f_sum(Kind::Double).and_then(|s| s.f_double_value(&[])))?;
    let labels = check(op, Vec::<i64>::try_from(&labels))?;
    debug_assert_eq!(labels.len() as i64, n);
    Ok(KMeans { centers: centres, labels, inertia, iterations })
}

/// k-means of the rows of x [n, d] into k clusters.
pub fn kmeans(x: &Tensor, k: usize, opts: &KMeansOptions) -> Result<KMeans> {
    let op = "kmeans";
    let size = x.size();
    if size.len() != 2 {
        return Err(Error::arg(format!("kmeans: expects a [n, d] tensor of points, got shape {size:?}")));
    }
    let n = size[0] as usize;
    if k == 0 || k > n {
        return Err(Error::arg(format!("kmeans: k must be in [1, n] = [1, {n}], got {k}")));
    }
    if opts.n_init == 0 || opts.max_iter == 0 {
        return Err(Error::arg("kmeans: n_init and max_iter must be at least 1"));
    }
    let x = check(op, x.f_to_kind(Kind::Double).and_then(|t| t.f_to_device(tch::Device::Cpu)).and_then(|t| t.f_contiguous()))?;
    if check(op, x.f_isfinite().and_then(|f| f.f_all()).and_then(|a| a.f_int64_value(&[])))? == 0 {
        return Err(Error::arg("kmeans: the points hold NaN or infinite values; drop or fill those rows first"));
    }
    let xx = check(op, x.f_square().and_then(|s| s.f_sum_dim_intlist([1i64].as_slice(), true, Kind::Double)))?;
    let variance =
        check(op, x.f_var_dim([0i64].as_slice(), false, false).and_then(|v| v.f_mean(Kind::Double)).and_then(|v| v.f_double_value(&[])))?;
    let tol = variance * opts.tol;
    let mut best: Option<KMeans> = None;
    for start in 0..opts.n_init {
        crate::interrupt::check("kmeans")?;
        let mut rng = Rng::stream(opts.seed, start as u64);
        let centres = plus_plus(&x, &xx, k, &mut rng)?;
        let run = lloyd(&x, &xx, centres, k, opts.max_iter, tol)?;
        if best.as_ref().is_none_or(|b| run.inertia < b.inertia) {
            best = Some(run);
        }
    }
    Ok(best.expect("n_init >= 1"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::purity;

    #[test]
    fn well_separated_blobs_are_found_exactly_and_repeatably() {
        let mut rng = Rng::new(3);
        let centres = [[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]];
        let mut pts = Vec::new();
        let mut truth = Vec::new();
        for i in 0..90 {
            let c = centres[i % 3];
            pts.extend([c[0] + rng.normal() * 0.3, c[1] + rng.normal() * 0.3]);
            truth.push((i % 3) as i64);
        }
        let x = Tensor::from_slice(&pts).reshape([90, 2]);
        let a = kmeans(&x, 3, &KMeansOptions::default()).unwrap();
        assert_eq!(purity(&a.labels, &truth).unwrap(), 1.0);
        let b = kmeans(&x, 3, &KMeansOptions::default()).unwrap();
        assert_eq!(a.labels, b.labels);
        assert!(kmeans(&x, 0, &KMeansOptions::default()).is_err());
        assert!(kmeans(&x.reshape([-1]), 2, &KMeansOptions::default()).is_err());
    }
}
