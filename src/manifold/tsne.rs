//! t-SNE (van der Maaten & Hinton 2008) with scikit-learn's algorithm and defaults, so an
//! embedding here reads like one made with sklearn.manifold.TSNE:
//!
//! - affinities: squared Euclidean distances; each row's Gaussian bandwidth by binary search to
//!   the perplexity (entropy ln(perplexity), 100 steps, tol 1e-5); exact uses every pair,
//!   Barnes-Hut the ⌊3·perplexity + 1⌋ nearest neighbours; P = (P + Pᵀ) / ΣP
//! - start: PCA of the input scaled to a first-axis std of 1e-4 (or a seeded N(0, 1e-4))
//! - optimisation: Student-t kernel (one degree of freedom), gradient descent with gains
//!   (+0.2 / ×0.8, min 0.01), 250 iterations at exaggeration 12 and momentum 0.5, then momentum
//!   0.8 to `max_iter`; learning rate max(N / 12 / 4, 50); the error checked every 50
//!   iterations, stopping after 300 without progress or at gradient norm 1e-7
//! - gradient: exact (every pair, libtorch matrices) below `exact_below` points, else
//!   Barnes-Hut over a quadtree (angle 0.5), the repulsion for each point in parallel.

use super::quadtree::QuadTree;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::rng::Rng;
use crate::tensor::{check, Kind, Tensor};
use rayon::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TsneMethod {
    /// Exact below `exact_below` points, Barnes-Hut from there on.
    Auto,
    Exact,
    BarnesHut,
}

#[derive(Clone, Debug)]
pub struct TsneOptions {
    pub perplexity: f64,
    pub max_iter: usize,
    /// None: sklearn's "auto", max(N / early_exaggeration / 4, 50).
    pub learning_rate: Option<f64>,
    pub early_exaggeration: f64,
    pub angle: f64,
    pub method: TsneMethod,
    pub exact_below: usize,
    /// PCA start (sklearn's default) or a seeded random one.
    pub pca_init: bool,
    pub seed: u64,
    pub quiet: bool,
}

impl Default for TsneOptions {
    fn default() -> Self {
        TsneOptions {
            perplexity: 30.0,
            max_iter: 1000,
            learning_rate: None,
            early_exaggeration: 12.0,
            angle: 0.5,
            method: TsneMethod::Auto,
            exact_below: 2000,
            pca_init: true,
            seed: 0,
            quiet: false,
        }
    }
}

pub struct Tsne {
    /// [N, 2] float32.
    pub embedding: Tensor,
    /// The KL divergence at the last check (exact, or Barnes-Hut's estimate), as sklearn's kl_divergence_.
    pub kl: f64,
    pub iterations: usize,
    pub exact: bool,
}

const EXPLORATION_ITERS: usize = 250;
/// sklearn's default is 1,000; past 100,000 an embedding has long stopped moving.
const MAX_ITERATIONS: usize = 100_000;
const CHECK_EVERY: usize = 50;
const NO_PROGRESS: usize = 300;
const MIN_GRAD_NORM: f64 = 1e-7;
const MACHINE_EPSILON: f64 = f64::EPSILON;

/// Sparse symmetric affinities: for row i, (j, p_ij) pairs.
struct Sparse {
    rows: Vec<Vec<(usize, f64)>>,
}

/// One row's conditional probabilities from its squared distances, by binary search on β.
fn row_probabilities(d2: &[f64], perplexity: f64) -> Vec<f64> {
    let target = perplexity.ln();
    let (mut beta, mut lo, mut hi) = (1.0f64, f64::NEG_INFINITY, f64::INFINITY);
    let mut p = vec![0.0; d2.len()];
    for _ in 0..100 {
        let mut sum = 0.0;
        for (pj, &d) in p.iter_mut().zip(d2) {
            *pj = (-d * beta).exp();
            sum += *pj;
        }
        if sum == 0.0 {
            sum = 1e-8;
        }
        let mut weighted = 0.0;
        for (pj, &d) in p.iter_mut().zip(d2) {
            *pj /= sum;
            weighted += d * *pj;
        }
        let entropy = sum.ln() + beta * weighted;
        let diff = entropy - target;
        if diff.abs() <= 1e-5 {
            break;
        }
        if diff > 0.0 {
            lo = beta;
            beta = if hi == f64::INFINITY { beta * 2.0 } else { (beta + hi) / 2.0 };
        } else {
            hi = beta;
            beta = if lo == f64::NEG_INFINITY { beta / 2.0 } else { (beta + lo) / 2.0 };
        }
    }
    p
}

fn rows_of(t: &Tensor) -> Result<Vec<Vec<f64>>> {
    let n = t.size()[0] as usize;
    let flat = check(
        "tsne",
        t.f_to_kind(Kind::Double).and_then(|t| t.f_contiguous()).and_then(|t| t.f_flatten(0, -1)).and_then(|t| Vec::<f64>::try_from(&t)),
    )?;
    let w = flat.len().checked_div(n).unwrap_or(0);
    Ok(flat.chunks(w.max(1)).map(|c| c.to_vec()).collect())
}

/// Squared distances [rows, n] from a block of rows to every point.
fn block_sq_distances(x: &Tensor, xx: &Tensor, start: i64, len: i64) -> Result<Tensor> {
    let op = "tsne";
    let block = check(op, x.f_narrow(0, start, len))?;
    let bb = check(op, xx.f_narrow(0, start, len))?;
    check(
        op,
        (|| -> std::result::Result<_, tch::TchError> {
            block
                .f_matmul(&x.f_t_copy()?)
                .and_then(|c| bb.f_add(&xx.f_t_copy()?)?.f_sub(&c.f_mul_scalar(2.0)?))
                .and_then(|d| d.f_clamp_min(0.0))
        })(),
    )
}

/// Barnes-Hut affinities over the k nearest neighbours.
fn sparse_affinities(x: &Tensor, perplexity: f64) -> Result<Sparse> {
    let op = "tsne";
    let n = x.size()[0];
    let k = (n - 1).min((3.0 * perplexity + 1.0) as i64);
    let xx = check(op, x.f_square().and_then(|s| s.f_sum_dim_intlist([1i64].as_slice(), true, Kind::Double)))?;
    let mut rows: Vec<Vec<(usize, f64)>> = Vec::with_capacity(n as usize);
    let chunk = 1024;
    let mut start = 0;
    while start < n {
        let len = chunk.min(n - start);
        let mut d = block_sq_distances(x, &xx, start, len)?;
        // Self at infinity, so it is never its own neighbour.
        let own = check(op, Tensor::f_arange_start(start, start + len, (Kind::Int64, x.device())).and_then(|i| i.f_unsqueeze(1)))?;
        d = check(op, d.f_scatter_value(1, &own, f64::INFINITY))?;
        let (vals, idx) = check(op, d.f_topk(k, 1, false, true))?;
        let vals = rows_of(&vals)?;
        let idx = check(op, idx.f_flatten(0, -1).and_then(|t| Vec::<i64>::try_from(&t)))?;
        for (r, v) in vals.iter().enumerate() {
            let p = row_probabilities(v, perplexity);
            rows.push(idx[r * k as usize..(r + 1) * k as usize].iter().zip(p).map(|(&j, p)| (j as usize, p)).collect());
        }
        start += len;
    }
    // Symmetrise: P + Pᵀ, then normalise by the total.
    let mut sym: Vec<std::collections::BTreeMap<usize, f64>> = vec![Default::default(); n as usize];
    for (i, row) in rows.iter().enumerate() {
        for &(j, p) in row {
            *sym[i].entry(j).or_insert(0.0) += p;
            *sym[j].entry(i).or_insert(0.0) += p;
        }
    }
    let total: f64 = sym.iter().flat_map(|r| r.values()).sum::<f64>().max(MACHINE_EPSILON);
    Ok(Sparse { rows: sym.into_iter().map(|r| r.into_iter().map(|(j, p)| (j, p / total)).collect()).collect() })
}

/// Exact affinities [n, n] (zero diagonal, floored at machine epsilon off it).
fn dense_affinities(x: &Tensor, perplexity: f64) -> Result<Tensor> {
    let op = "tsne";
    let n = x.size()[0];
    let xx = check(op, x.f_square().and_then(|s| s.f_sum_dim_intlist([1i64].as_slice(), true, Kind::Double)))?;
    let d = rows_of(&block_sq_distances(x, &xx, 0, n)?)?;
    let mut p = vec![0.0; (n * n) as usize];
    for (i, row) in d.iter().enumerate() {
        let others: Vec<f64> = row.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, v)| *v).collect();
        let pr = row_probabilities(&others, perplexity);
        let mut it = pr.into_iter();
        for j in 0..n as usize {
            if j != i {
                p[i * n as usize + j] = it.next().unwrap_or(0.0);
            }
        }
    }
    let p = Tensor::from_slice(&p).reshape([n, n]);
    let sym = check(op, (|| -> std::result::Result<_, tch::TchError> { p.f_add(&p.f_t_copy()?) })())?;
    let total = check(op, sym.f_sum(Kind::Double).and_then(|s| s.f_double_value(&[])))?.max(MACHINE_EPSILON);
    let eye = check(op, Tensor::f_eye(n, (Kind::Bool, tch::Device::Cpu)))?;
    check(op, sym.f_div_scalar(total).and_then(|s| s.f_clamp_min(MACHINE_EPSILON)).and_then(|s| s.f_masked_fill(&eye, 0.0)))
}

/// The PCA start: the first two principal components, scaled to a first-axis std of 1e-4;
/// each axis signed so its largest loading is positive (sklearn's svd_flip).
fn pca_start(x: &Tensor) -> Result<Vec<f64>> {
    let op = "tsne";
    let centred =
        check(op, (|| -> std::result::Result<_, tch::TchError> { x.f_sub(&x.f_mean_dim([0i64].as_slice(), true, Kind::Double)?) })())?;
    // torch.svd's V [d, k]: its columns are the principal axes.
    let (_, _, v) = check(op, centred.f_svd(true, true))?;
    let vt = check(op, v.f_t_copy())?;
    let mut comps = check(op, vt.f_narrow(0, 0, 2.min(vt.size()[0])))?;
    let big = check(op, comps.f_abs().and_then(|a| a.f_argmax(1, true)))?;
    let signs = check(op, comps.f_gather(1, &big, false).and_then(|g| g.f_sign()))?;
    comps = check(op, comps.f_mul(&signs))?;
    let mut y = check(op, comps.f_t_copy().and_then(|c| centred.f_matmul(&c)))?;
    if y.size()[1] < 2 {
        y = check(op, (|| -> std::result::Result<_, tch::TchError> { Tensor::f_cat(&[y.shallow_clone(), y.f_zeros_like()?], 1) })())?;
    }
    let std = check(op, y.f_select(1, 0).and_then(|c| c.f_std(false)).and_then(|s| s.f_double_value(&[])))?;
    let y = check(op, y.f_div_scalar(if std > 0.0 { std } else { 1.0 }).and_then(|t| t.f_mul_scalar(1e-4)))?;
    Ok(rows_of(&y)?.concat())
}

/// KL(P‖Q) and its gradient [n·2] by every pair (libtorch).
fn exact_gradient(p: &Tensor, y: &[f64], n: i64, want_error: bool) -> Result<(f64, Vec<f64>)> {
    let op = "tsne";
    let yt = Tensor::from_slice(y).reshape([n, 2]);
    let yy = check(op, yt.f_square().and_then(|s| s.f_sum_dim_intlist([1i64].as_slice(), true, Kind::Double)))?;
    let d = check(
        op,
        (|| -> std::result::Result<_, tch::TchError> {
            yt.f_matmul(&yt.f_t_copy()?)
                .and_then(|c| yy.f_add(&yy.f_t_copy()?)?.f_sub(&c.f_mul_scalar(2.0)?))
                .and_then(|d| d.f_clamp_min(0.0))
        })(),
    )?;
    let eye = check(op, Tensor::f_eye(n, (Kind::Bool, tch::Device::Cpu)))?;
    let num = check(op, d.f_add_scalar(1.0).and_then(|d| d.f_reciprocal()).and_then(|q| q.f_masked_fill(&eye, 0.0)))?;
    let total = check(op, num.f_sum(Kind::Double).and_then(|s| s.f_double_value(&[])))?;
    let q = check(op, num.f_div_scalar(total).and_then(|q| q.f_clamp_min(MACHINE_EPSILON)).and_then(|q| q.f_masked_fill(&eye, 0.0)))?;
    let error = if want_error {
        let safe_p = check(op, p.f_clamp_min(MACHINE_EPSILON))?;
        let safe_q = check(op, q.f_clamp_min(MACHINE_EPSILON))?;
        check(
            op,
            (|| -> std::result::Result<_, tch::TchError> {
                p.f_mul(&safe_p.f_div(&safe_q)?.f_log()?).and_then(|t| t.f_sum(Kind::Double)).and_then(|s| s.f_double_value(&[]))
            })(),
        )?
    } else {
        f64::NAN
    };
    // ∂C/∂y_i = 4 Σ_j (p_ij − q_ij)·num_ij·(y_i − y_j)
    let w = check(op, p.f_sub(&q).and_then(|pq| pq.f_mul(&num)))?;
    let rowsum = check(op, w.f_sum_dim_intlist([1i64].as_slice(), true, Kind::Double))?;
    let grad = check(op, yt.f_mul(&rowsum).and_then(|a| a.f_sub(&w.f_matmul(&yt)?)).and_then(|g| g.f_mul_scalar(4.0)))?;
    Ok((error, rows_of(&grad)?.concat()))
}

/// Barnes-Hut: exact attraction over the sparse P, repulsion from the quadtree.
fn barnes_hut_gradient(p: &Sparse, y: &[f64], angle: f64, want_error: bool) -> (f64, Vec<f64>) {
    let n = y.len() / 2;
    let tree = QuadTree::build(y);
    let repulsion: Vec<(f64, f64, f64)> =
        (0..n).into_par_iter().map_init(Vec::new, |stack, i| tree.repulsion_with(stack, i, y[2 * i], y[2 * i + 1], angle)).collect();
    let z: f64 = repulsion.iter().map(|r| r.2).sum::<f64>().max(MACHINE_EPSILON);
    // The attraction over the sparse P, each point on its own (in parallel): (force, KL part).
    let attraction: Vec<(f64, f64, f64)> = (0..n)
        .into_par_iter()
        .map(|i| {
            let (yi0, yi1) = (y[2 * i], y[2 * i + 1]);
            let (mut a0, mut a1, mut err) = (0.0, 0.0, 0.0);
            for &(j, pij) in &p.rows[i] {
                let (d0, d1) = (yi0 - y[2 * j], yi1 - y[2 * j + 1]);
                let q = 1.0 / (1.0 + d0 * d0 + d1 * d1);
                a0 += pij * q * d0;
                a1 += pij * q * d1;
                if want_error {
                    let tiny = f32::MIN_POSITIVE as f64;
                    err += pij * (pij.max(tiny) / (q / z).max(tiny)).ln();
                }
            }
            (a0, a1, err)
        })
        .collect();
    let mut grad = vec![0.0; 2 * n];
    let mut error = 0.0;
    for i in 0..n {
        grad[2 * i] = 4.0 * (attraction[i].0 - repulsion[i].0 / z);
        grad[2 * i + 1] = 4.0 * (attraction[i].1 - repulsion[i].1 / z);
        error += attraction[i].2;
    }
    (if want_error { error } else { f64::NAN }, grad)
}

/// An embedding [N, 2] of the rows of x [N, D].
pub fn tsne(x: &Tensor, opts: &TsneOptions) -> Result<Tsne> {
    let size = x.size();
    if size.len() != 2 {
        return Err(Error::arg(format!(
            "tsne: expects a [N, D] tensor (one row per point), got shape {size:?}; reshape it, e.g. x.reshape([n, -1])"
        )));
    }
    let n = size[0];
    if !(opts.perplexity > 0.0 && opts.perplexity.is_finite()) {
        return Err(Error::arg(format!("tsne: perplexity must be a positive number, got {}", opts.perplexity)));
    }
    if (n as f64) <= opts.perplexity || n < 4 {
        return Err(Error::arg(format!("tsne: perplexity {} needs more points than that (at least 4 and more than the perplexity), got {n}; lower perplexity (e.g. perplexity: {})", opts.perplexity, ((n as f64 - 1.0) / 3.0).floor().max(1.0))));
    }
    if opts.max_iter < EXPLORATION_ITERS || opts.max_iter > MAX_ITERATIONS {
        return Err(Error::arg(format!(
            "tsne: iterations must be between {EXPLORATION_ITERS} (the early-exaggeration phase) and {MAX_ITERATIONS}, got {}",
            opts.max_iter
        )));
    }
    if !(opts.angle >= 0.0 && opts.angle <= 1.0)
        || !(opts.early_exaggeration >= 1.0)
        || opts.learning_rate.is_some_and(|l| !(l > 0.0 && l.is_finite()))
    {
        return Err(Error::arg("tsne: angle must be in [0, 1], early_exaggeration >= 1 and learning_rate a positive number"));
    }
    let op = "tsne";
    let x = check(op, x.f_to_kind(Kind::Double).and_then(|t| t.f_to_device(tch::Device::Cpu)).and_then(|t| t.f_contiguous()))?;
    let bad = check(
        op,
        x.f_isfinite()
            .and_then(|f| f.f_all_dim(1, false))
            .and_then(|f| f.f_logical_not())
            .and_then(|f| f.f_sum(Kind::Int64))
            .and_then(|s| s.f_int64_value(&[])),
    )?;
    if bad > 0 {
        return Err(Error::arg(format!(
            "tsne: {bad} of {n} rows hold NaN or infinite values; drop them first (e.g. with a mask of x.isnan().any(1))"
        )));
    }
    // Squared distances reach 4·D·max|x|²: checked here, the same on every CPU, rather than left
    // to whether the SVD of the PCA start happens to scale its way through (MKL's does on some).
    let max_abs = check(op, x.f_abs().and_then(|a| a.f_max()).and_then(|m| m.f_double_value(&[])))?;
    if !(4.0 * size[1].max(1) as f64 * max_abs * max_abs).is_finite() {
        return Err(Error::arg(format!(
            "tsne: the input's values reach {max_abs:e}, so their squared distances overflow; standardise the features first"
        )));
    }
    let exact = match opts.method {
        TsneMethod::Exact => true,
        TsneMethod::BarnesHut => false,
        TsneMethod::Auto => (n as usize) < opts.exact_below,
    };
    let mut y = if opts.pca_init {
        pca_start(&x)?
    } else {
        let mut rng = Rng::new(opts.seed);
        (0..2 * n).map(|_| rng.normal() * 1e-4).collect()
    };
    if !y.iter().all(|v| v.is_finite()) {
        return Err(Error::arg(
            "tsne: the input's values are too large to project (the PCA start overflows); standardise the features first",
        ));
    }
    let lr = opts.learning_rate.unwrap_or_else(|| (n as f64 / opts.early_exaggeration / 4.0).max(50.0));
    enum Affinity {
        Dense(Tensor),
        Sparse(Sparse),
    }
    let mut affinity = if exact {
        Affinity::Dense(dense_affinities(&x, opts.perplexity)?)
    } else {
        Affinity::Sparse(sparse_affinities(&x, opts.perplexity)?)
    };
    let scale = |a: &mut Affinity, f: f64| -> Result<()> {
        match a {
            Affinity::Dense(p) => *p = check(op, p.f_mul_scalar(f))?,
            Affinity::Sparse(s) => s.rows.iter_mut().flatten().for_each(|(_, p)| *p *= f),
        }
        Ok(())
    };
    let mut bar = Progress::new("t-SNE", opts.max_iter, "iter", opts.quiet);
    scale(&mut affinity, opts.early_exaggeration)?;
    let mut kl = f64::NAN;
    let mut done = 0;
    for (phase, (momentum, end)) in [(0.5, EXPLORATION_ITERS), (0.8, opts.max_iter)].into_iter().enumerate() {
        if phase == 1 {
            scale(&mut affinity, 1.0 / opts.early_exaggeration)?;
        }
        let mut update = vec![0.0; y.len()];
        let mut gains = vec![1.0f64; y.len()];
        let (mut best_error, mut best_iter) = (f64::INFINITY, done);
        let patience = if phase == 0 { EXPLORATION_ITERS } else { NO_PROGRESS };
        // `done` records how far the loop got (it is the range start only when the loop begins).
        #[allow(clippy::mut_range_bound)]
        for i in done..end {
            crate::interrupt::check("tsne")?;
            let checking = (i + 1) % CHECK_EVERY == 0 || i + 1 == end;
            let (error, mut grad) = match &affinity {
                Affinity::Dense(p) => exact_gradient(p, &y, n, checking)?,
                Affinity::Sparse(p) => barnes_hut_gradient(p, &y, opts.angle, checking),
            };
            for k in 0..y.len() {
                if update[k] * grad[k] < 0.0 {
                    gains[k] += 0.2;
                } else {
                    gains[k] *= 0.8;
                }
                gains[k] = gains[k].max(0.01);
                grad[k] *= gains[k];
                update[k] = momentum * update[k] - lr * grad[k];
                y[k] += update[k];
            }
            done = i + 1;
            bar.inc(1);
            if checking {
                kl = error;
                bar.set_message(format!("KL {error:.4}"));
                let norm = grad.iter().map(|g| g * g).sum::<f64>().sqrt();
                if error < best_error {
                    best_error = error;
                    best_iter = i;
                } else if i - best_iter > patience {
                    break;
                }
                if norm <= MIN_GRAD_NORM {
                    break;
                }
            }
            if !y.iter().all(|v| v.is_finite()) {
                return Err(Error::arg(format!("tsne: the embedding diverged at iteration {} (non-finite values): standardise the features (their squared distances must stay finite), or lower learning_rate", i + 1)));
            }
        }
    }
    bar.finish();
    let embedding = check(op, Tensor::from_slice(&y).reshape([n, 2]).f_to_kind(Kind::Float))?;
    Ok(Tsne { embedding, kl, iterations: done, exact })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A random symmetric P (zero diagonal, sums to 1) and a random embedding.
    fn setup(n: usize) -> (Tensor, Sparse, Vec<f64>) {
        let mut rng = Rng::new(9);
        let mut p = vec![0.0; n * n];
        for i in 0..n {
            for j in i + 1..n {
                let v = rng.uniform();
                p[i * n + j] = v;
                p[j * n + i] = v;
            }
        }
        let total: f64 = p.iter().sum();
        p.iter_mut().for_each(|v| *v /= total);
        let rows = (0..n).map(|i| (0..n).filter(|&j| j != i).map(|j| (j, p[i * n + j])).collect()).collect();
        let y = (0..2 * n).map(|_| rng.normal()).collect();
        (Tensor::from_slice(&p).reshape([n as i64, n as i64]), Sparse { rows }, y)
    }

    #[test]
    fn the_exact_gradient_is_the_derivative_of_the_kl_divergence() {
        let n = 12;
        let (p, _, y) = setup(n);
        let (kl, grad) = exact_gradient(&p, &y, n as i64, true).unwrap();
        assert!(kl > 0.0);
        let h = 1e-6;
        for k in [0, 5, 17, 23] {
            let (mut up, mut down) = (y.clone(), y.clone());
            up[k] += h;
            down[k] -= h;
            let numeric =
                (exact_gradient(&p, &up, n as i64, true).unwrap().0 - exact_gradient(&p, &down, n as i64, true).unwrap().0) / (2.0 * h);
            assert!((numeric - grad[k]).abs() < 1e-6 * (1.0 + numeric.abs()), "coordinate {k}: {numeric} vs {}", grad[k]);
        }
    }

    #[test]
    fn barnes_hut_at_angle_zero_is_the_exact_gradient() {
        let n = 40;
        let (p, sparse, y) = setup(n);
        let (kl, exact) = exact_gradient(&p, &y, n as i64, true).unwrap();
        let (kl_bh, bh) = barnes_hut_gradient(&sparse, &y, 0.0, true);
        assert!((kl - kl_bh).abs() < 1e-9, "{kl} vs {kl_bh}");
        for (a, b) in exact.iter().zip(&bh) {
            assert!((a - b).abs() < 1e-9, "{a} vs {b}");
        }
        // With the default angle the approximation stays close.
        let (_, approx) = barnes_hut_gradient(&sparse, &y, 0.5, false);
        let err: f64 = exact.iter().zip(&approx).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt();
        let norm: f64 = exact.iter().map(|a| a * a).sum::<f64>().sqrt();
        assert!(err / norm < 0.05, "relative error {}", err / norm);
    }
}
