//! Trustworthiness (Venna & Kaski 2001), as sklearn.manifold.trustworthiness computes it: how
//! far each point's k nearest neighbours in the embedding rank among its neighbours in the
//! input, 1 − 2/(n·k·(2n − 3k − 1)) · Σ_i Σ_{j ∈ NN_k^emb(i)} max(0, r(i, j) − k).
//! Rows are processed in blocks, so memory stays at a block of distances.

use crate::error::{Error, Result};
use crate::tensor::{check, Kind, Tensor};

fn sq_distances(block: &Tensor, all: &Tensor) -> Result<Tensor> {
    let op = "trustworthiness";
    let bb = check(op, block.f_square().and_then(|s| s.f_sum_dim_intlist([1i64].as_slice(), true, Kind::Double)))?;
    let aa = check(op, all.f_square().and_then(|s| s.f_sum_dim_intlist([1i64].as_slice(), true, Kind::Double)).and_then(|s| s.f_t_copy()))?;
    check(
        op,
        (|| -> std::result::Result<_, tch::TchError> {
            block.f_matmul(&all.f_t_copy()?).and_then(|c| bb.f_add(&aa)?.f_sub(&c.f_mul_scalar(2.0)?)).and_then(|d| d.f_clamp_min(0.0))
        })(),
    )
}

pub fn trustworthiness(x: &Tensor, embedded: &Tensor, k: usize) -> Result<f64> {
    let op = "trustworthiness";
    let (sx, se) = (x.size(), embedded.size());
    if sx.len() != 2 || se.len() != 2 || sx[0] != se[0] {
        return Err(Error::arg(format!(
            "trustworthiness: needs the input [N, D] and its embedding [N, d] with the same N, got {sx:?} and {se:?}"
        )));
    }
    let n = sx[0];
    if k == 0 || (k as f64) >= n as f64 / 2.0 {
        return Err(Error::arg(format!("trustworthiness: k must be in [1, N/2) = [1, {}), got {k}", (n + 1) / 2)));
    }
    let x = check(op, x.f_to_kind(Kind::Double).and_then(|t| t.f_to_device(tch::Device::Cpu)))?;
    let e = check(op, embedded.f_to_kind(Kind::Double).and_then(|t| t.f_to_device(tch::Device::Cpu)))?;
    let k = k as i64;
    let mut penalty = 0.0;
    let chunk = 512;
    let mut start = 0;
    while start < n {
        let len = chunk.min(n - start);
        let own = check(op, Tensor::f_arange_start(start, start + len, (Kind::Int64, tch::Device::Cpu)).and_then(|i| i.f_unsqueeze(1)))?;
        let dx = check(op, sq_distances(&check(op, x.f_narrow(0, start, len))?, &x)?.f_scatter_value(1, &own, f64::INFINITY))?;
        let de = check(op, sq_distances(&check(op, e.f_narrow(0, start, len))?, &e)?.f_scatter_value(1, &own, f64::INFINITY))?;
        // rank[i, j]: 1 for i's nearest input neighbour, ... (self last, never an embedding neighbour).
        let order = check(op, dx.f_argsort_stable(true, 1, false))?;
        let ranks = check(
            op,
            Tensor::f_arange_start(1, n + 1, (Kind::Int64, tch::Device::Cpu))
                .and_then(|r| r.f_expand([len, n], false))
                .and_then(|r| order.f_zeros_like()?.f_scatter(1, &order, &r)),
        )?;
        let near = check(op, de.f_topk(k, 1, false, true))?.1;
        let r = check(op, ranks.f_gather(1, &near, false).and_then(|r| r.f_sub_scalar(k)).and_then(|r| r.f_clamp_min(0)))?;
        penalty += check(op, r.f_sum(Kind::Double).and_then(|s| s.f_double_value(&[])))?;
        start += len;
    }
    let (nf, kf) = (n as f64, k as f64);
    Ok(1.0 - penalty * 2.0 / (nf * kf * (2.0 * nf - 3.0 * kf - 1.0)))
}
