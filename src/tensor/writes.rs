//! Writing into a tensor at given indices, as PyTorch's out-of-place `index_put`, `scatter`,
//! `scatter_add` and `index_add` do: a method's per-sample state is written by the batch's
//! dataset indices in O(B), where a one-hot product costs O(B·N). Each returns a new tensor and
//! keeps the autograd graph of `t` and of the written values, as libtorch does.
//!
//! libtorch checks these too, but its messages name internal sizes; the checks here name the
//! argument and say what to change, and an index out of range is caught before libtorch reads it.

use super::{check, ops, Kind, Tensor};
use crate::error::{Error, Result};

/// `t[indices] = values`, out of place; with `accumulate`, repeated indices add up.
/// Each index is an int tensor (negative counts from the end) or a bool mask.
pub fn index_put(t: &Tensor, indices: &[Tensor], values: &Tensor, accumulate: bool) -> Result<Tensor> {
    let op = "index_put";
    if indices.is_empty() || indices.len() > t.dim() {
        return Err(Error::arg(format!(
            "{op}: give between 1 and {} index tensors (one per leading dimension of a {:?} tensor), got {}",
            t.dim(),
            t.size(),
            indices.len()
        )));
    }
    let mut checked = Vec::with_capacity(indices.len());
    for (d, idx) in indices.iter().enumerate() {
        if idx.kind() == Kind::Bool {
            checked.push(Some(same_device(op, "a mask", t, idx)?));
            continue;
        }
        let idx = int_index(op, &format!("index {d}"), t, idx)?;
        in_range(op, &format!("index {d}"), &idx, -t.size()[d], t.size()[d])?;
        checked.push(Some(idx));
    }
    let values = written(op, "values", t, values)?;
    check(op, t.f_index_put(&checked, &values, accumulate))
}

/// torch.scatter: `out[i][index[i][j]][k] = src[i][j][k]` along `dim` (for dim 1 of a 3-d tensor).
pub fn scatter(t: &Tensor, dim: i64, index: &Tensor, src: &Tensor) -> Result<Tensor> {
    let (d, index, src) = scatter_args("scatter", t, dim, index, src)?;
    check("scatter", t.f_scatter(d, &index, &src))
}

/// torch.scatter with one value written at every index.
pub fn scatter_value(t: &Tensor, dim: i64, index: &Tensor, value: f64) -> Result<Tensor> {
    let op = "scatter";
    let d = ops::norm_dim(op, dim, t.dim())?;
    let index = scatter_index(op, t, d, index, None)?;
    check(op, super::scalar_safe(|| t.f_scatter_value(d, &index, value)))
}

/// torch.scatter_add: like `scatter`, but values written to one place add up.
pub fn scatter_add(t: &Tensor, dim: i64, index: &Tensor, src: &Tensor) -> Result<Tensor> {
    let (d, index, src) = scatter_args("scatter_add", t, dim, index, src)?;
    check("scatter_add", t.f_scatter_add(d, &index, &src))
}

/// torch.index_add: `out.select(dim, index[i]) += alpha * src.select(dim, i)`, repeated indices
/// adding up.
pub fn index_add(t: &Tensor, dim: i64, index: &Tensor, src: &Tensor, alpha: f64) -> Result<Tensor> {
    let op = "index_add";
    let d = ops::norm_dim(op, dim, t.dim())?;
    let index = int_index(op, "index", t, index)?;
    if index.dim() != 1 {
        return Err(Error::arg(format!("{op}: index must be 1-d (one position along dim {d} per slice of src), got {:?}", index.size())));
    }
    let src = written(op, "src", t, src)?;
    let (ts, ss) = (t.size(), src.size());
    let fits = ss.len() == ts.len()
        && ss[d as usize] == index.size()[0]
        && ts.iter().zip(&ss).enumerate().all(|(k, (a, b))| k == d as usize || a == b);
    if !fits {
        return Err(Error::arg(format!(
            "{op}: src must be shaped as the tensor {ts:?} with dim {d} as long as index ({}), got {ss:?}",
            index.size()[0]
        )));
    }
    in_range(op, "index", &index, 0, ts[d as usize])?;
    let src = if alpha == 1.0 { src } else { check(op, super::scalar_safe(|| src.f_mul_scalar(alpha)))? };
    check(op, t.f_index_add(d, &index, &src))
}

fn scatter_args(op: &str, t: &Tensor, dim: i64, index: &Tensor, src: &Tensor) -> Result<(i64, Tensor, Tensor)> {
    let d = ops::norm_dim(op, dim, t.dim())?;
    let src = written(op, "src", t, src)?;
    let index = scatter_index(op, t, d, index, Some(&src))?;
    Ok((d, index, src))
}

/// The index of a scatter: of the tensor's rank, no longer than the tensor off `dim` (nor than
/// src anywhere), and within [0, size along dim).
fn scatter_index(op: &str, t: &Tensor, d: i64, index: &Tensor, src: Option<&Tensor>) -> Result<Tensor> {
    let index = int_index(op, "index", t, index)?;
    let (ts, is) = (t.size(), index.size());
    if is.len() != ts.len() {
        return Err(Error::arg(format!("{op}: index must have the tensor's {} dimensions, got {is:?} for {ts:?}", ts.len())));
    }
    for k in 0..ts.len() {
        if k != d as usize && is[k] > ts[k] {
            return Err(Error::arg(format!("{op}: index {is:?} is longer than the tensor {ts:?} in dimension {k}")));
        }
    }
    if let Some(src) = src {
        let ss = src.size();
        if ss.len() != ts.len() || is.iter().zip(&ss).any(|(i, s)| i > s) {
            return Err(Error::arg(format!(
                "{op}: src {ss:?} must have the tensor's dimensions and be at least as long as index {is:?} in each"
            )));
        }
    }
    in_range(op, "index", &index, 0, ts[d as usize])?;
    Ok(index)
}

/// An index tensor as int64 on the tensor's device.
fn int_index(op: &str, what: &str, t: &Tensor, idx: &Tensor) -> Result<Tensor> {
    match idx.kind() {
        Kind::Int64 => same_device(op, what, t, idx),
        Kind::Int | Kind::Int16 | Kind::Int8 | Kind::Uint8 => same_device(op, what, t, &idx.to_kind(Kind::Int64)),
        k => Err(Error::arg(format!("{op}: {what} must be an int tensor, got {k:?}: convert it with .to(\"int64\")"))),
    }
}

fn same_device(op: &str, what: &str, t: &Tensor, x: &Tensor) -> Result<Tensor> {
    if x.device() != t.device() {
        return Err(Error::arg(format!("{op}: {what} is on {:?} and the tensor on {:?}: move one with .to(...)", x.device(), t.device())));
    }
    Ok(x.shallow_clone())
}

/// The values written: the tensor's dtype (PyTorch refuses a mismatch; an int or narrower float
/// source converts without loss, anything else is the caller's choice to make).
fn written(op: &str, what: &str, t: &Tensor, x: &Tensor) -> Result<Tensor> {
    let x = same_device(op, what, t, x)?;
    if x.kind() == t.kind() {
        return Ok(x);
    }
    let lossless = t.is_floating_point() && (!x.is_floating_point() || x.kind().elt_size_in_bytes() < t.kind().elt_size_in_bytes());
    if lossless {
        return Ok(x.to_kind(t.kind()));
    }
    Err(Error::arg(format!("{op}: {what} is {:?} but the tensor is {:?}: convert one with .to(...)", x.kind(), t.kind())))
}

/// Every index in [lo, hi), or an error naming the first one outside.
fn in_range(op: &str, what: &str, idx: &Tensor, lo: i64, hi: i64) -> Result<()> {
    if idx.numel() == 0 {
        return Ok(());
    }
    let bad = idx.lt(lo).logical_or(&idx.ge(hi));
    if bad.any().int64_value(&[]) != 0 {
        let first = idx.masked_select(&bad).int64_value(&[0]);
        return Err(Error::arg(format!("{op}: {what} holds {first}, outside [{lo}, {hi}) for that dimension")));
    }
    Ok(())
}
