//! The `Tensor` type in Rhai: construction, properties, operators, math, shape ops, indexing,
//! conversion and files. Each function maps its arguments onto `crate::tensor` or a fallible
//! (`f_*`) libtorch call, so a libtorch error becomes a script error with its position.

use super::convert::{dynamic_to_nested, nested_to_dynamic, number, shape_from_array, shape_to_array};
use super::{Docs, RhaiResult};
use crate::error::Error;
use crate::tensor::ops::{self, BinOp, Cmp, Reduce};
use crate::tensor::{check, device, dtype, format, io, nested, scalar_safe, Device, Kind, Tensor};
use rhai::{Array, Dynamic, Engine, Map, INT};
use std::path::Path;
use std::rc::Rc;

/// A libtorch tensor as a Rhai value. `tch::Tensor` is neither `Clone` nor `Sync`; an `Rc`
/// makes it cheap to copy between script variables (copies share storage, as in Python).
#[derive(Clone)]
pub struct ScriptTensor(pub Rc<Tensor>);

impl ScriptTensor {
    pub fn new(t: Tensor) -> Self {
        ScriptTensor(Rc::new(t))
    }
    pub fn tensor(&self) -> &Tensor {
        &self.0
    }
}

impl From<Tensor> for ScriptTensor {
    fn from(t: Tensor) -> Self {
        ScriptTensor::new(t)
    }
}

type T = ScriptTensor;
type R = RhaiResult<ScriptTensor>;

fn ok(r: crate::error::Result<Tensor>) -> R {
    Ok(ScriptTensor::new(r?))
}

fn tensors_from_array(op: &str, items: &Array) -> RhaiResult<Vec<Tensor>> {
    items
        .iter()
        .map(|d| {
            d.clone()
                .try_cast::<ScriptTensor>()
                .map(|t| t.tensor().shallow_clone())
                .ok_or_else(|| Error::arg(format!("{op}: expected an array of tensors, found a {}", d.type_name())).into())
        })
        .collect()
}

fn created(op: &str, shape: &[i64], make: impl FnOnce(&[i64]) -> Result<Tensor, tch::TchError>) -> R {
    ops::check_shape(op, shape)?;
    ok(check(op, make(shape)))
}

pub fn register(engine: &mut Engine, docs: &mut Docs) {
    engine.register_type_with_name::<ScriptTensor>("Tensor");
    register_creation(engine, docs);
    register_properties(engine, docs);
    register_operators(engine, docs);
    register_math(engine, docs);
    register_shape(engine, docs);
    register_indexing(engine, docs);
    register_conversion(engine, docs);
    register_files(engine, docs);
}

fn register_creation(engine: &mut Engine, docs: &mut Docs) {
    let a = "create";
    docs.add(
        a,
        "tensor",
        "tensor(array)",
        "A tensor from a number or nested arrays: floats give float32, ints int64, bools bool.",
        "tensor([[1.0, 2.0], [3.0, 4.0]])",
    );
    engine.register_fn("tensor", |v: Dynamic| -> R { ok(nested::from_nested(&dynamic_to_nested(&v)?)) });

    docs.add(a, "zeros", "zeros(shape)", "A float32 tensor of zeros; shape is an array of ints or one int.", "zeros([2, 3])");
    docs.add(a, "ones", "ones(shape)", "A float32 tensor of ones.", "ones([2, 3])");
    docs.add(a, "randn", "randn(shape)", "Standard normal samples (float32), reproducible after seed(n).", "randn([4, 2])");
    docs.add(a, "rand", "rand(shape)", "Uniform samples on [0, 1) (float32), reproducible after seed(n).", "rand([4])");
    type Maker = fn(&[i64], (Kind, Device)) -> Result<Tensor, tch::TchError>;
    let makers: [(&'static str, Maker); 4] = [
        ("zeros", |s, o| Tensor::f_zeros(s, o)),
        ("ones", |s, o| Tensor::f_ones(s, o)),
        ("randn", |s, o| Tensor::f_randn(s, o)),
        ("rand", |s, o| Tensor::f_rand(s, o)),
    ];
    for (name, make) in makers {
        engine.register_fn(name, move |shape: Array| -> R {
            created(name, &shape_from_array(name, &shape)?, |s| make(s, ops::float_opts()))
        });
        engine.register_fn(name, move |n: INT| -> R { created(name, &[n], |s| make(s, ops::float_opts())) });
    }

    docs.add(
        a,
        "randint",
        "randint(low, high, shape)",
        "Uniform int64 samples in [low, high), reproducible after seed(n); e.g. random labels.",
        "randint(0, 10, [64])",
    );
    engine.register_fn("randint", |low: INT, high: INT, shape: Array| -> R {
        if high <= low {
            return Err(Error::arg(format!("randint: high ({high}) must be greater than low ({low})")).into());
        }
        created("randint", &shape_from_array("randint", &shape)?, |s| Tensor::f_randint_low(low, high, s, (Kind::Int64, Device::Cpu)))
    });

    docs.add(
        a,
        "full",
        "full(shape, value)",
        "A tensor filled with value (int value gives int64, float gives float32).",
        "full([2, 2], 0.5)",
    );
    engine.register_fn("full", |shape: Array, v: INT| -> R {
        created("full", &shape_from_array("full", &shape)?, |s| scalar_safe(|| Tensor::f_full(s, v, (Kind::Int64, Device::Cpu))))
    });
    engine.register_fn("full", |shape: Array, v: f64| -> R {
        created("full", &shape_from_array("full", &shape)?, |s| scalar_safe(|| Tensor::f_full(s, v, ops::float_opts())))
    });

    docs.add(
        a,
        "arange",
        "arange(end) | arange(start, end, step?)",
        "Evenly spaced values in [start, end): ints give int64, a float anywhere gives float32.",
        "arange(0, 10, 2)",
    );
    engine
        .register_fn("arange", |end: INT| -> R { ok(check("arange", scalar_safe(|| Tensor::f_arange(end, (Kind::Int64, Device::Cpu))))) });
    engine.register_fn("arange", |end: f64| -> R { ok(check("arange", scalar_safe(|| Tensor::f_arange(end, ops::float_opts())))) });
    let arange3 = |start: Dynamic, end: Dynamic, step: Dynamic| -> R {
        if step.as_int() == Ok(0) || step.as_float() == Ok(0.0) {
            return Err(Error::arg("arange: step must not be zero").into());
        }
        if let (Ok(s), Ok(e), Ok(st)) = (start.as_int(), end.as_int(), step.as_int()) {
            return ok(check("arange", scalar_safe(|| Tensor::f_arange_start_step(s, e, st, (Kind::Int64, Device::Cpu)))));
        }
        let (s, e, st) = (number("arange", "start", &start)?, number("arange", "end", &end)?, number("arange", "step", &step)?);
        ok(check("arange", scalar_safe(|| Tensor::f_arange_start_step(s, e, st, ops::float_opts()))))
    };
    engine.register_fn("arange", arange3);
    engine.register_fn("arange", move |start: Dynamic, end: Dynamic| -> R { arange3(start, end, Dynamic::from_int(1)) });

    docs.add(
        a,
        "linspace",
        "linspace(start, end, steps)",
        "steps values evenly spaced from start to end inclusive (float32).",
        "linspace(0.0, 1.0, 5)",
    );
    engine.register_fn("linspace", |start: Dynamic, end: Dynamic, steps: INT| -> R {
        if steps < 0 {
            return Err(Error::arg(format!("linspace: steps must be >= 0, got {steps}")).into());
        }
        let (s, e) = (number("linspace", "start", &start)?, number("linspace", "end", &end)?);
        ok(check("linspace", scalar_safe(|| Tensor::f_linspace(s, e, steps, ops::float_opts()))))
    });

    docs.add(a, "eye", "eye(n)", "The n x n identity matrix (float32).", "eye(3)");
    engine.register_fn("eye", |n: INT| -> R {
        if n < 0 {
            return Err(Error::arg(format!("eye: n must be >= 0, got {n}")).into());
        }
        ok(check("eye", Tensor::f_eye(n, ops::float_opts())))
    });
}

fn register_properties(engine: &mut Engine, docs: &mut Docs) {
    let a = "tensor";
    docs.add(a, "shape", "t.shape", "The sizes of each dim, as an array of ints.", "randn([2, 3]).shape  // [2, 3]");
    engine.register_get("shape", |t: &mut T| shape_to_array(&t.tensor().size()));
    docs.add(a, "dtype", "t.dtype", "The element type as PyTorch names it (\"float32\", \"int64\", \"bool\", ...).", "ones(2).dtype");
    engine.register_get("dtype", |t: &mut T| -> RhaiResult<String> {
        Ok(dtype::kind_name(check("dtype", t.tensor().f_kind())?).to_string())
    });
    docs.add(
        a,
        "device",
        "t.device | model.device | device()",
        "A tensor's or a model's device, or with no argument the device models go to here: the one GAPSCOPE_DEVICE names when set, else \"cuda\" when a GPU is visible, else \"cpu\".",
        "let x = ones(2).to(device());",
    );
    engine.register_get("device", |t: &mut T| device::device_name(t.tensor().device()));
    engine.register_fn("device", || -> RhaiResult<String> {
        Ok(match device::default_device()? {
            Device::Cuda(0) => "cuda".into(),
            other => device::device_name(other),
        })
    });
    docs.add(a, "numel", "t.numel", "The number of elements.", "zeros([2, 3]).numel  // 6");
    engine.register_get("numel", |t: &mut T| t.tensor().numel() as INT);
    docs.add(a, "ndim", "t.ndim", "The number of dims.", "zeros([2, 3]).ndim  // 2");
    engine.register_get("ndim", |t: &mut T| t.tensor().dim() as INT);

    docs.add(
        a,
        "to",
        "t.to(device_or_dtype)",
        "A copy on another device (\"cpu\", \"cuda\", \"cuda:1\") or of another dtype (\"float64\", \"int64\", ...).",
        "x.to(\"float64\")",
    );
    engine.register_fn("to", |t: &mut T, target: &str| -> R {
        if let Ok(kind) = dtype::parse_kind(target) {
            return ok(check("to", t.tensor().f_to_kind(kind)));
        }
        // A well-formed device that is not here (no GPU) keeps parse_device's own message.
        let looks_like_device =
            target == "cpu" || target == "cuda" || target.strip_prefix("cuda:").is_some_and(|i| i.parse::<usize>().is_ok());
        let dev = device::parse_device(target).map_err(|e| {
            if looks_like_device {
                Error::arg(format!("to: {e}"))
            } else {
                Error::arg(format!(
                    "to: '{target}' is neither a device (\"cpu\", \"cuda\", \"cuda:N\") nor a dtype (\"float32\", \"int64\", ...)"
                ))
            }
        })?;
        ok(check("to", t.tensor().f_to_device(dev)))
    });

    docs.add(
        a,
        "to_string",
        "to_string(t) | print(t)",
        "The tensor printed as PyTorch prints it (summarised past 1,000 elements).",
        "print(arange(5))",
    );
    let show = |t: &mut T| -> RhaiResult<String> { Ok(format::format_tensor(t.tensor())?) };
    engine.register_fn("to_string", show);
    docs.add(a, "to_debug", "to_debug(t) | debug(t)", "Same as to_string, used by debug().", "debug(arange(3))");
    engine.register_fn("to_debug", show);
}

macro_rules! register_binary {
    ($engine:expr, $sym:expr, $op:expr) => {{
        let op: BinOp = $op;
        $engine.register_fn($sym, move |a: T, b: T| -> R { ok(ops::binary(op, a.tensor(), b.tensor())) });
        $engine.register_fn($sym, move |a: T, b: f64| -> R { ok(ops::binary_scalar(op, a.tensor(), b, false)) });
        $engine.register_fn($sym, move |a: T, b: INT| -> R { ok(ops::binary_scalar(op, a.tensor(), b, false)) });
        $engine.register_fn($sym, move |a: f64, b: T| -> R { ok(ops::binary_scalar(op, b.tensor(), a, true)) });
        $engine.register_fn($sym, move |a: INT, b: T| -> R { ok(ops::binary_scalar(op, b.tensor(), a, true)) });
    }};
}

macro_rules! register_compare {
    ($engine:expr, $sym:expr, $cmp:expr) => {{
        let cmp: Cmp = $cmp;
        $engine.register_fn($sym, move |a: T, b: T| -> R { ok(ops::compare(cmp, a.tensor(), b.tensor())) });
        $engine.register_fn($sym, move |a: T, b: f64| -> R { ok(ops::compare_scalar(cmp, a.tensor(), b)) });
        $engine.register_fn($sym, move |a: T, b: INT| -> R { ok(ops::compare_scalar(cmp, a.tensor(), b)) });
        $engine.register_fn($sym, move |a: f64, b: T| -> R { ok(ops::compare_scalar(cmp.flipped(), b.tensor(), a)) });
        $engine.register_fn($sym, move |a: INT, b: T| -> R { ok(ops::compare_scalar(cmp.flipped(), b.tensor(), a)) });
    }};
}

fn register_operators(engine: &mut Engine, docs: &mut Docs) {
    let a = "operators";
    docs.add(a, "+", "a + b", "Elementwise sum with broadcasting; either side may be a number.", "ones(3) + 1");
    docs.add(a, "-", "a - b | -a", "Elementwise difference with broadcasting, or negation.", "1.0 - ones(3)");
    docs.add(a, "*", "a * b", "Elementwise product with broadcasting.", "x * 2.0");
    docs.add(a, "/", "a / b", "Elementwise true division (ints give floats).", "arange(4) / 2");
    docs.add(a, "**", "a ** b", "Elementwise power.", "x ** 2");
    register_binary!(engine, "+", BinOp::Add);
    register_binary!(engine, "-", BinOp::Sub);
    register_binary!(engine, "*", BinOp::Mul);
    register_binary!(engine, "/", BinOp::Div);
    register_binary!(engine, "**", BinOp::Pow);
    engine.register_fn("-", |a: T| -> R { ok(check("-", a.tensor().f_neg())) });

    docs.add(a, "==", "a == b", "Elementwise equality: a bool tensor (use equal(a, b) for one bool).", "arange(3) == 1");
    docs.add(a, "!=", "a != b", "Elementwise inequality: a bool tensor.", "arange(3) != 1");
    docs.add(a, "<", "a < b", "Elementwise less-than: a bool tensor.", "x < 0.5");
    docs.add(a, "<=", "a <= b", "Elementwise less-or-equal: a bool tensor.", "x <= 0.5");
    docs.add(a, ">", "a > b", "Elementwise greater-than: a bool tensor.", "x > 0.5");
    docs.add(a, ">=", "a >= b", "Elementwise greater-or-equal: a bool tensor.", "x >= 0.5");
    register_compare!(engine, "==", Cmp::Eq);
    register_compare!(engine, "!=", Cmp::Ne);
    register_compare!(engine, "<", Cmp::Lt);
    register_compare!(engine, "<=", Cmp::Le);
    register_compare!(engine, ">", Cmp::Gt);
    register_compare!(engine, ">=", Cmp::Ge);

    docs.add(a, "equal", "equal(a, b)", "true when both tensors have the same shape and values.", "equal(ones(2), tensor([1.0, 1.0]))");
    engine.register_fn("equal", |a: T, b: T| a.tensor().size() == b.tensor().size() && a.tensor().f_equal(b.tensor()).unwrap_or(false));
    docs.add(
        a,
        "allclose",
        "allclose(a, b, atol?)",
        "true when |a - b| <= atol + 1e-5 |b| everywhere (atol defaults to 1e-8).",
        "allclose(x, y, 1e-6)",
    );
    let allclose =
        |a: T, b: T, atol: f64| -> RhaiResult<bool> { Ok(check("allclose", a.tensor().f_allclose(b.tensor(), 1e-5, atol, false))?) };
    engine.register_fn("allclose", allclose);
    engine.register_fn("allclose", move |a: T, b: T| allclose(a, b, 1e-8));

    docs.add(
        a,
        "matmul",
        "matmul(a, b) | a.matmul(b)",
        "Matrix product, as Python's a @ b (batched and broadcast).",
        "matmul(eye(2), ones([2, 3]))",
    );
    engine.register_fn("matmul", |a: &mut T, b: T| -> R { ok(check("matmul", a.tensor().f_matmul(b.tensor()))) });
}

fn register_math(engine: &mut Engine, docs: &mut Docs) {
    let a = "math";
    let reductions = [
        (Reduce::Sum, "t.sum(dim?, keepdim?)", "Sum of all elements, or along dim.", "x.sum(0)"),
        (Reduce::Mean, "t.mean(dim?, keepdim?)", "Mean of all elements, or along dim (ints compute in float32).", "x.mean(-1)"),
        (Reduce::Std, "t.std(dim?, keepdim?)", "Standard deviation with Bessel's correction, as torch.std.", "x.std()"),
        (Reduce::Var, "t.var(dim?, keepdim?)", "Variance with Bessel's correction, as torch.var.", "x.var(0)"),
        (Reduce::Min, "t.min(dim?, keepdim?)", "Smallest element, or smallest along dim (values only).", "x.min()"),
        (Reduce::Max, "t.max(dim?, keepdim?)", "Largest element, or largest along dim (values only).", "x.max(1)"),
        (
            Reduce::Argmax,
            "t.argmax(dim?, keepdim?)",
            "Index of the largest element (of the flattened tensor without dim).",
            "logits.argmax(-1)",
        ),
        (Reduce::Argmin, "t.argmin(dim?, keepdim?)", "Index of the smallest element.", "x.argmin(0)"),
    ];
    for (op, usage, summary, example) in reductions {
        docs.add(a, op.name(), usage, summary, example);
        engine.register_fn(op.name(), move |t: &mut T| -> R { ok(ops::reduce(op, t.tensor(), None, false)) });
        engine.register_fn(op.name(), move |t: &mut T, dim: INT| -> R { ok(ops::reduce(op, t.tensor(), Some(dim), false)) });
        engine.register_fn(op.name(), move |t: &mut T, dim: INT, keep: bool| -> R { ok(ops::reduce(op, t.tensor(), Some(dim), keep)) });
    }

    type Unary = fn(&Tensor) -> Result<Tensor, tch::TchError>;
    let unary: [(&'static str, &'static str, &'static str, &'static str, Unary); 4] = [
        ("abs", "t.abs()", "Elementwise absolute value.", "(-x).abs()", |t| t.f_abs()),
        ("exp", "t.exp()", "Elementwise exponential.", "x.exp()", |t| t.f_exp()),
        ("log", "t.log()", "Elementwise natural log (log of 0 is -inf, of a negative NaN, as in PyTorch).", "x.log()", |t| t.f_log()),
        ("sqrt", "t.sqrt()", "Elementwise square root.", "x.sqrt()", |t| t.f_sqrt()),
    ];
    for (name, usage, summary, example, f) in unary {
        docs.add(a, name, usage, summary, example);
        engine.register_fn(name, move |t: &mut T| -> R { ok(check(name, f(t.tensor()))) });
    }

    docs.add(a, "clamp", "t.clamp(min, max)", "Limits every element to [min, max]; pass () for an open side.", "x.clamp(0.0, 1.0)");
    engine.register_fn("clamp", |t: &mut T, lo: Dynamic, hi: Dynamic| -> R {
        // Int bounds keep an int tensor int, as torch.clamp does.
        let bound = |v: &Dynamic, what: &str| -> RhaiResult<tch::Scalar> {
            match v.as_int() {
                Ok(i) => Ok(i.into()),
                Err(_) => Ok(number("clamp", what, v)?.into()),
            }
        };
        let x = t.tensor();
        let r = match (lo.is_unit(), hi.is_unit()) {
            (true, true) => Ok(x.shallow_clone()),
            (false, true) => x.f_clamp_min(bound(&lo, "min")?),
            (true, false) => x.f_clamp_max(bound(&hi, "max")?),
            (false, false) => {
                let (l, h) = (number("clamp", "min", &lo)?, number("clamp", "max", &hi)?);
                if l > h {
                    return Err(Error::arg(format!("clamp: min {l} is greater than max {h}")).into());
                }
                x.f_clamp(bound(&lo, "min")?, bound(&hi, "max")?)
            }
        };
        ok(check("clamp", r))
    });

    docs.add(a, "softmax", "t.softmax(dim)", "Softmax along dim (float32 for int input).", "logits.softmax(-1)");
    docs.add(a, "log_softmax", "t.log_softmax(dim)", "Log of the softmax along dim, computed stably.", "logits.log_softmax(-1)");
    engine.register_fn("softmax", |t: &mut T, dim: INT| -> R {
        let d = ops::norm_dim("softmax", dim, t.tensor().dim())?;
        ok(check("softmax", t.tensor().f_softmax(d, Kind::Float)))
    });
    engine.register_fn("log_softmax", |t: &mut T, dim: INT| -> R {
        let d = ops::norm_dim("log_softmax", dim, t.tensor().dim())?;
        ok(check("log_softmax", t.tensor().f_log_softmax(d, Kind::Float)))
    });

    docs.add(a, "seed", "seed(n)", "Seeds libtorch's random generators (CPU and CUDA) so randn/rand repeat.", "seed(7);");
    engine.register_fn("seed", |n: INT| tch::manual_seed(n));
}

fn register_shape(engine: &mut Engine, docs: &mut Docs) {
    let a = "shape";
    docs.add(a, "reshape", "t.reshape(shape)", "The same elements in a new shape (one entry may be -1).", "arange(6).reshape([2, 3])");
    engine.register_fn("reshape", |t: &mut T, shape: Array| -> R {
        ok(check("reshape", t.tensor().f_reshape(shape_from_array("reshape", &shape)?)))
    });
    docs.add(a, "view", "t.view(shape)", "Like reshape but never copies: fails on a non-contiguous tensor, as in PyTorch.", "x.view([-1])");
    engine.register_fn("view", |t: &mut T, shape: Array| -> R {
        ok(check("view", t.tensor().f_view_(shape_from_array("view", &shape)?.as_slice())))
    });
    docs.add(a, "transpose", "t.transpose(dim0, dim1)", "Swaps two dims.", "x.transpose(0, 1)");
    engine.register_fn("transpose", |t: &mut T, d0: INT, d1: INT| -> R {
        let n = t.tensor().dim();
        ok(check("transpose", t.tensor().f_transpose(ops::norm_dim("transpose", d0, n)?, ops::norm_dim("transpose", d1, n)?)))
    });
    docs.add(a, "permute", "t.permute(dims)", "Reorders all dims.", "x.permute([2, 0, 1])");
    engine.register_fn("permute", |t: &mut T, dims: Array| -> R {
        let dims = shape_from_array("permute", &dims)?;
        if dims.len() != t.tensor().dim() {
            return Err(Error::arg(format!("permute: {} dims given for a {}-d tensor", dims.len(), t.tensor().dim())).into());
        }
        ok(check("permute", t.tensor().f_permute(dims)))
    });
    docs.add(a, "squeeze", "t.squeeze(dim?)", "Removes dims of size 1 (all, or just dim).", "zeros([1, 3]).squeeze()");
    engine.register_fn("squeeze", |t: &mut T| -> R { ok(check("squeeze", t.tensor().f_squeeze())) });
    engine.register_fn("squeeze", |t: &mut T, dim: INT| -> R {
        ok(check("squeeze", t.tensor().f_squeeze_dim(ops::norm_dim("squeeze", dim, t.tensor().dim())?)))
    });
    docs.add(a, "unsqueeze", "t.unsqueeze(dim)", "Inserts a dim of size 1 at dim.", "arange(3).unsqueeze(0)");
    engine.register_fn("unsqueeze", |t: &mut T, dim: INT| -> R {
        ok(check("unsqueeze", t.tensor().f_unsqueeze(ops::norm_dim("unsqueeze", dim, t.tensor().dim() + 1)?)))
    });
    docs.add(
        a,
        "cat",
        "cat(tensors, dim?)",
        "Concatenates an array of tensors along an existing dim (default 0).",
        "cat([ones(2), zeros(3)])",
    );
    docs.add(
        a,
        "stack",
        "stack(tensors, dim?)",
        "Stacks an array of same-shaped tensors along a new dim (default 0).",
        "stack([ones(2), zeros(2)], 1)",
    );
    for op in ["cat", "stack"] {
        engine.register_fn(op, move |items: Array, dim: INT| -> R { ok(ops::join(op, &tensors_from_array(op, &items)?, dim)) });
        engine.register_fn(op, move |items: Array| -> R { ok(ops::join(op, &tensors_from_array(op, &items)?, 0)) });
    }
    docs.add(a, "flatten", "t.flatten()", "All elements in one dim.", "zeros([2, 3]).flatten()");
    engine.register_fn("flatten", |t: &mut T| -> R { ok(check("flatten", t.tensor().f_reshape([-1]))) });
}

fn register_indexing(engine: &mut Engine, docs: &mut Docs) {
    let a = "index";
    docs.add(a, "[]", "t[i]", "The i-th entry along dim 0 (negative i counts from the end).", "x[0]");
    engine.register_indexer_get(|t: &mut T, i: INT| -> R { ok(ops::index(t.tensor(), i)) });
    docs.add(a, "slice", "t.slice(dim, start, end)", "Entries start..end along dim (Python slice rules).", "x.slice(1, 0, 2)");
    engine.register_fn("slice", |t: &mut T, dim: INT, start: INT, end: INT| -> R { ok(ops::slice(t.tensor(), dim, start, end)) });
    docs.add(
        a,
        "select",
        "t.select(dim, i)",
        "The slice at index i of dim, with that dim removed (negative i counts from the end).",
        "w.select(1, 0)  // first column",
    );
    engine.register_fn("select", |t: &mut T, dim: INT, i: INT| -> R {
        let d = ops::norm_dim("select", dim, t.tensor().dim())?;
        let size = t.tensor().size()[d as usize];
        if i < -size || i >= size {
            return Err(Error::arg(format!("select: index {i} is out of range for dim {dim} of size {size}")).into());
        }
        ok(check("select", t.tensor().f_select(d, i)))
    });
    docs.add(
        a,
        "index_select",
        "t.index_select(dim, indices)",
        "Rows (along dim) picked by an int tensor or array of indices.",
        "x.index_select(0, [2, 0])",
    );
    let index_select = |t: &T, dim: INT, idx: &Tensor| -> R {
        let d = ops::norm_dim("index_select", dim, t.tensor().dim())?;
        ok(check("index_select", t.tensor().f_index_select(d, idx)))
    };
    engine.register_fn("index_select", move |t: &mut T, dim: INT, idx: T| -> R { index_select(t, dim, idx.tensor()) });
    engine.register_fn("index_select", move |t: &mut T, dim: INT, idx: Array| -> R {
        index_select(t, dim, &Tensor::from_slice(&shape_from_array("index_select", &idx)?))
    });
    docs.add(
        a,
        "masked_select",
        "t.masked_select(mask)",
        "The elements where a bool mask is true, as a 1-d tensor.",
        "x.masked_select(x > 0)",
    );
    engine
        .register_fn("masked_select", |t: &mut T, mask: T| -> R { ok(check("masked_select", t.tensor().f_masked_select(mask.tensor()))) });
    docs.add(a, "where", "where(cond, a, b)", "Elementwise: a where cond is true, else b (tensors or numbers).", "where(x > 0, x, 0.0)");
    engine.register_fn("where", |cond: T, a: Dynamic, b: Dynamic| -> R {
        let as_tensor = |v: Dynamic, what: &str| -> RhaiResult<Tensor> {
            if let Some(t) = v.clone().try_cast::<ScriptTensor>() {
                return Ok(t.tensor().shallow_clone());
            }
            if let Ok(i) = v.as_int() {
                return Ok(Tensor::from(i));
            }
            Ok(Tensor::from(number("where", what, &v)? as f32))
        };
        let (x, y) = (as_tensor(a, "a")?, as_tensor(b, "b")?);
        ok(check("where", x.f_where_self(cond.tensor(), &y)))
    });
}

fn register_conversion(engine: &mut Engine, docs: &mut Docs) {
    let a = "convert";
    docs.add(a, "to_array", "t.to_array()", "The values as nested Rhai arrays (floats, ints or bools).", "tensor([1, 2]).to_array()");
    engine.register_fn("to_array", |t: &mut T| -> RhaiResult<Dynamic> { Ok(nested_to_dynamic(nested::to_nested(t.tensor())?)) });
    docs.add(a, "item", "t.item()", "The single value of a one-element tensor as a Rhai number or bool.", "x.sum().item()");
    engine.register_fn("item", |t: &mut T| -> RhaiResult<Dynamic> {
        let n = t.tensor().numel();
        if n != 1 {
            return Err(Error::arg(format!("item: the tensor has {n} elements; only a one-element tensor has an item")).into());
        }
        Ok(nested_to_dynamic(nested::flat_values(t.tensor())?.remove(0)))
    });
    docs.add(a, "clone", "t.clone()", "A copy with its own storage (plain assignment shares storage).", "let y = x.clone();");
    engine.register_fn("clone", |t: &mut T| -> R { ok(check("clone", t.tensor().f_detach_copy())) });
}

fn register_files(engine: &mut Engine, docs: &mut Docs) {
    let a = "files";
    docs.add(a, "load_npy", "load_npy(path)", "Reads a NumPy .npy file (as np.save writes it).", "let x = load_npy(\"x.npy\");");
    engine.register_fn("load_npy", |path: &str| -> R { ok(io::load_npy(Path::new(path))) });
    docs.add(a, "save_npy", "t.save_npy(path)", "Writes a NumPy .npy file, atomically.", "x.save_npy(\"runs/x.npy\");");
    engine.register_fn("save_npy", |t: &mut T, path: &str| -> RhaiResult<()> { Ok(io::save_npy(t.tensor(), Path::new(path))?) });
    docs.add(
        a,
        "load_safetensors",
        "load_safetensors(path)",
        "Reads every tensor of a .safetensors file into a map name -> Tensor.",
        "let m = load_safetensors(\"w.safetensors\"); m.weight",
    );
    engine.register_fn("load_safetensors", |path: &str| -> RhaiResult<Map> {
        Ok(io::load_safetensors(Path::new(path))?.into_iter().map(|(k, t)| (k.into(), Dynamic::from(ScriptTensor::new(t)))).collect())
    });
    docs.add(
        a,
        "save_safetensors",
        "save_safetensors(map, path)",
        "Writes a map name -> Tensor as .safetensors (readable by Python's safetensors), atomically.",
        "save_safetensors(#{ x: x }, \"runs/x.safetensors\");",
    );
    engine.register_fn("save_safetensors", |named: Map, path: &str| -> RhaiResult<()> {
        let mut items = Vec::with_capacity(named.len());
        for (k, v) in named {
            let t = v.try_cast::<ScriptTensor>().ok_or_else(|| Error::arg(format!("save_safetensors: value '{k}' is not a tensor")))?;
            items.push((k.to_string(), t.tensor().shallow_clone()));
        }
        Ok(io::save_safetensors(&items, Path::new(path))?)
    });
}
