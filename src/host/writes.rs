//! The tensor writes of `crate::tensor::writes` as Rhai methods: `index_put`, `scatter`,
//! `scatter_add`, `index_add`. The written values may be a tensor or a number.

use super::convert::type_label;
use super::tensor::ScriptTensor;
use super::{Docs, RhaiResult};
use crate::error::Error;
use crate::tensor::{writes, Tensor};
use rhai::{Array, Dynamic, Engine, Map, INT};

type T = ScriptTensor;
type R = RhaiResult<ScriptTensor>;

/// One index tensor, or an array of them (one per leading dimension).
fn indices(op: &str, v: &Dynamic) -> RhaiResult<Vec<Tensor>> {
    if let Some(t) = v.clone().try_cast::<ScriptTensor>() {
        return Ok(vec![t.tensor().shallow_clone()]);
    }
    let items = v
        .clone()
        .try_cast::<Array>()
        .ok_or_else(|| Error::arg(format!("{op}: indices must be a tensor or an array of tensors, found {}", type_label(v))))?;
    items
        .iter()
        .map(|d| {
            d.clone().try_cast::<ScriptTensor>().map(|t| t.tensor().shallow_clone()).ok_or_else(|| {
                Error::arg(format!("{op}: indices must be int tensors (or bool masks), found {} in the array", type_label(d))).into()
            })
        })
        .collect()
}

/// The values to write: a tensor, or a number broadcast as a tensor of `t`'s dtype.
fn values(op: &str, what: &str, t: &Tensor, v: &Dynamic) -> RhaiResult<Tensor> {
    if let Some(x) = v.clone().try_cast::<ScriptTensor>() {
        return Ok(x.tensor().shallow_clone());
    }
    let number = super::convert::number(op, what, v)?;
    Ok(Tensor::from(number).to_kind(t.kind()).to_device(t.device()))
}

pub fn register(engine: &mut Engine, docs: &mut Docs) {
    let a = "index";
    docs.add(
        a,
        "index_put",
        "t.index_put(indices, values, accumulate?)",
        "torch.index_put, out of place: t with t[indices] = values, where indices is an int tensor (or bool mask) or an array of them, one per leading dimension, and values a tensor broadcast to the indexed shape or a number; accumulate: true adds instead, repeated indices adding up. Differentiable in t and values.",
        "state = state.index_put([ctx.indices], gaps)  // each sample's latest gap, by dataset index",
    );
    let put = |t: &mut T, idx: Dynamic, v: Dynamic, acc: bool| -> R {
        let op = "index_put";
        let x = t.tensor();
        Ok(ScriptTensor::new(writes::index_put(x, &indices(op, &idx)?, &values(op, "values", x, &v)?, acc)?))
    };
    engine.register_fn("index_put", move |t: &mut T, idx: Dynamic, v: Dynamic| put(t, idx, v, false));
    engine.register_fn("index_put", put);
    docs.add(
        a,
        "scatter",
        "t.scatter(dim, index, src)",
        "torch.scatter, out of place: along dim, writes src's entries (or one number) where index says (for dim 1 of a 2-d tensor, out[i][index[i][j]] = src[i][j]); index has t's rank. Differentiable in t and src.",
        "zeros([4, 3]).scatter(1, y.unsqueeze(1), 1.0)  // one-hot rows",
    );
    engine.register_fn("scatter", |t: &mut T, dim: INT, index: T, src: Dynamic| -> R {
        let op = "scatter";
        let x = t.tensor();
        let r = match src.clone().try_cast::<ScriptTensor>() {
            Some(s) => writes::scatter(x, dim, index.tensor(), s.tensor()),
            None => writes::scatter_value(x, dim, index.tensor(), super::convert::number(op, "src", &src)?),
        };
        Ok(ScriptTensor::new(r?))
    });
    docs.add(
        a,
        "scatter_add",
        "t.scatter_add(dim, index, src)",
        "torch.scatter_add, out of place: as scatter, but entries written to one place add up (per-class sums: zeros([C]).scatter_add(0, y, x)). Differentiable in t and src.",
        "zeros([3]).scatter_add(0, tensor([0, 2, 0]), tensor([1.0, 2.0, 3.0]))  // [4, 0, 2]",
    );
    engine.register_fn("scatter_add", |t: &mut T, dim: INT, index: T, src: Dynamic| -> R {
        let x = t.tensor();
        let src = match src.clone().try_cast::<ScriptTensor>() {
            Some(s) => s.tensor().shallow_clone(),
            // One number added at every index: a tensor shaped as the index.
            None => values("scatter_add", "src", x, &src)?.expand_as(index.tensor()),
        };
        Ok(ScriptTensor::new(writes::scatter_add(x, dim, index.tensor(), &src)?))
    });
    docs.add(
        a,
        "index_add",
        "t.index_add(dim, index, src, #{ alpha }?)",
        "torch.index_add, out of place: adds slice i of src (along dim) to slice index[i] of t, repeated indices adding up; index is 1-d; alpha scales src (default 1). Differentiable in t and src.",
        "sums = sums.index_add(0, ctx.indices, per_sample)  // accumulate per-sample values by dataset index",
    );
    let add = |t: &mut T, dim: INT, index: T, src: T, opts: Map| -> R {
        let o = super::options::Options::new("index_add", &opts, &["alpha"])?;
        let alpha = o.float("alpha", 1.0)?;
        Ok(ScriptTensor::new(writes::index_add(t.tensor(), dim, index.tensor(), src.tensor(), alpha)?))
    };
    engine.register_fn("index_add", move |t: &mut T, dim: INT, index: T, src: T| add(t, dim, index, src, Map::new()));
    engine.register_fn("index_add", add);
}
