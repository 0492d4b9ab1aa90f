//! Tensor operations that need more than a direct libtorch call: Python-style negative
//! indices, scalar operands on either side, reductions with an optional dim, and creation
//! with shape checks. Every function returns `Result`; none can panic on user input.

use super::check;
use crate::error::{Error, Result};
use tch::{Device, Kind, Scalar, Tensor};

/// Normalises a possibly negative dim against a tensor of `ndim` dims.
pub fn norm_dim(op: &str, dim: i64, ndim: usize) -> Result<i64> {
    let n = ndim.max(1) as i64;
    let d = if dim < 0 { dim + n } else { dim };
    if d < 0 || d >= n {
        return Err(Error::arg(format!("{op}: dim {dim} is out of range for a {ndim}-d tensor (valid: {} to {})", -n, n - 1)));
    }
    Ok(d)
}

/// `t[i]`: the i-th entry along dim 0; negative i counts from the end.
pub fn index(t: &Tensor, i: i64) -> Result<Tensor> {
    let shape = t.size();
    let Some(&len) = shape.first() else {
        return Err(Error::arg("cannot index a 0-d tensor: use item() to read its value"));
    };
    let j = if i < 0 { i + len } else { i };
    if j < 0 || j >= len {
        return Err(Error::arg(format!("index {i} is out of range for dim 0 of size {len}")));
    }
    check("index", t.f_select(0, j))
}

/// Entries `start..end` along `dim` (Python slice semantics: negative counts from the end,
/// bounds clamp to the size).
pub fn slice(t: &Tensor, dim: i64, start: i64, end: i64) -> Result<Tensor> {
    let d = norm_dim("slice", dim, t.dim())?;
    check("slice", t.f_slice(d, start, end, 1))
}

/// Shape for creation functions: every entry non-negative.
pub fn check_shape(op: &str, shape: &[i64]) -> Result<()> {
    if let Some(bad) = shape.iter().find(|&&n| n < 0) {
        return Err(Error::arg(format!("{op}: negative size {bad} in shape {shape:?}")));
    }
    Ok(())
}

pub fn float_opts() -> (Kind, Device) {
    (Kind::Float, Device::Cpu)
}

#[derive(Clone, Copy, Debug)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Pow => "**",
        }
    }
}

/// Elementwise `a op b` with broadcasting.
pub fn binary(op: BinOp, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let r = match op {
        BinOp::Add => a.f_add(b),
        BinOp::Sub => a.f_sub(b),
        BinOp::Mul => a.f_mul(b),
        BinOp::Div => a.f_div(b),
        BinOp::Pow => a.f_pow(b),
    };
    check(op.symbol(), r)
}

/// `t op s` (or `s op t` when `scalar_first`), with PyTorch's type promotion.
pub fn binary_scalar<S: Into<Scalar> + Copy>(op: BinOp, t: &Tensor, s: S, scalar_first: bool) -> Result<Tensor> {
    let r = super::scalar_safe(|| match (op, scalar_first) {
        (BinOp::Add, _) => t.f_add_scalar(s),
        (BinOp::Mul, _) => t.f_mul_scalar(s),
        (BinOp::Sub, false) => t.f_sub_scalar(s),
        (BinOp::Sub, true) => t.f_neg().and_then(|n| n.f_add_scalar(s)),
        (BinOp::Div, false) => t.f_div_scalar(s),
        (BinOp::Div, true) => t.f_reciprocal().and_then(|r| r.f_mul_scalar(s)),
        (BinOp::Pow, false) => t.f_pow_tensor_scalar(s),
        (BinOp::Pow, true) => Tensor::f_pow_scalar(s, t),
    });
    check(op.symbol(), r)
}

#[derive(Clone, Copy, Debug)]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    pub fn symbol(self) -> &'static str {
        match self {
            Cmp::Eq => "==",
            Cmp::Ne => "!=",
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
        }
    }

    /// The same comparison with its operands swapped (`s < t` is `t > s`).
    pub fn flipped(self) -> Cmp {
        match self {
            Cmp::Lt => Cmp::Gt,
            Cmp::Le => Cmp::Ge,
            Cmp::Gt => Cmp::Lt,
            Cmp::Ge => Cmp::Le,
            other => other,
        }
    }
}

/// Elementwise comparison, giving a bool tensor.
pub fn compare(cmp: Cmp, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let r = match cmp {
        Cmp::Eq => a.f_eq_tensor(b),
        Cmp::Ne => a.f_ne_tensor(b),
        Cmp::Lt => a.f_lt_tensor(b),
        Cmp::Le => a.f_le_tensor(b),
        Cmp::Gt => a.f_gt_tensor(b),
        Cmp::Ge => a.f_ge_tensor(b),
    };
    check(cmp.symbol(), r)
}

pub fn compare_scalar<S: Into<Scalar>>(cmp: Cmp, a: &Tensor, s: S) -> Result<Tensor> {
    let r = super::scalar_safe(|| match cmp {
        Cmp::Eq => a.f_eq(s),
        Cmp::Ne => a.f_ne(s),
        Cmp::Lt => a.f_lt(s),
        Cmp::Le => a.f_le(s),
        Cmp::Gt => a.f_gt(s),
        Cmp::Ge => a.f_ge(s),
    });
    check(cmp.symbol(), r)
}

#[derive(Clone, Copy, Debug)]
pub enum Reduce {
    Sum,
    Mean,
    Std,
    Var,
    Min,
    Max,
    Argmax,
    Argmin,
}

impl Reduce {
    pub fn name(self) -> &'static str {
        match self {
            Reduce::Sum => "sum",
            Reduce::Mean => "mean",
            Reduce::Std => "std",
            Reduce::Var => "var",
            Reduce::Min => "min",
            Reduce::Max => "max",
            Reduce::Argmax => "argmax",
            Reduce::Argmin => "argmin",
        }
    }
}

/// A reduction over all elements (`dim = None`) or one dim. `std`/`var` use Bessel's correction,
/// as `torch.std` does; `mean`/`std`/`var` of an integer tensor compute in float32.
pub fn reduce(op: Reduce, t: &Tensor, dim: Option<i64>, keepdim: bool) -> Result<Tensor> {
    let name = op.name();
    if t.numel() == 0 && matches!(op, Reduce::Min | Reduce::Max | Reduce::Argmax | Reduce::Argmin) {
        return Err(Error::arg(format!("{name}: the tensor is empty")));
    }
    let dim = dim.map(|d| norm_dim(name, d, t.dim())).transpose()?;
    let kind = check(name, t.f_kind())?;
    let float_input = || -> Result<Tensor> {
        if super::dtype::is_float(kind) {
            Ok(t.shallow_clone())
        } else {
            check(name, t.f_to_kind(Kind::Float))
        }
    };
    let dims = dim.map(|d| vec![d]);
    let r = match op {
        Reduce::Sum => t.f_sum_dim_intlist(dims.as_deref(), keepdim, None::<Kind>),
        Reduce::Mean => float_input()?.f_mean_dim(dims.as_deref(), keepdim, None::<Kind>),
        Reduce::Std => float_input()?.f_std_dim(dims.as_deref(), true, keepdim),
        Reduce::Var => float_input()?.f_var_dim(dims.as_deref(), true, keepdim),
        Reduce::Min => match dim {
            None => t.f_min(),
            Some(d) => t.f_min_dim(d, keepdim).map(|(v, _)| v),
        },
        Reduce::Max => match dim {
            None => t.f_max(),
            Some(d) => t.f_max_dim(d, keepdim).map(|(v, _)| v),
        },
        Reduce::Argmax => t.f_argmax(dim, keepdim),
        Reduce::Argmin => t.f_argmin(dim, keepdim),
    };
    check(name, r)
}

/// `cat` / `stack` of a non-empty list.
pub fn join(op: &str, tensors: &[Tensor], dim: i64) -> Result<Tensor> {
    let Some(first) = tensors.first() else {
        return Err(Error::arg(format!("{op}: needs at least one tensor")));
    };
    let ndim = if op == "stack" { first.dim() + 1 } else { first.dim() };
    let d = norm_dim(op, dim, ndim)?;
    check(op, if op == "stack" { Tensor::f_stack(tensors, d) } else { Tensor::f_cat(tensors, d) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(t: &Tensor) -> Vec<f64> {
        let t = t.to_kind(Kind::Double).reshape([-1]);
        let n = t.numel();
        let mut out = vec![0.0; n];
        t.copy_data(&mut out, n);
        out
    }

    #[test]
    fn negative_index_and_range_errors() {
        let t = Tensor::from_slice(&[1.0f32, 2.0, 3.0]);
        assert_eq!(v(&index(&t, -1).unwrap()), vec![3.0]);
        assert!(index(&t, 3).unwrap_err().to_string().contains("out of range"));
        assert!(index(&Tensor::from(1.0f32), 0).unwrap_err().to_string().contains("item()"));
        assert!(norm_dim("sum", 2, 2).unwrap_err().to_string().contains("valid: -2 to 1"));
    }

    #[test]
    fn scalar_on_either_side() {
        let t = Tensor::from_slice(&[1.0f32, 2.0, 4.0]);
        assert_eq!(v(&binary_scalar(BinOp::Sub, &t, 1.0, true).unwrap()), vec![0.0, -1.0, -3.0]);
        assert_eq!(v(&binary_scalar(BinOp::Div, &t, 4.0, true).unwrap()), vec![4.0, 2.0, 1.0]);
        assert_eq!(v(&binary_scalar(BinOp::Pow, &t, 2.0, true).unwrap()), vec![2.0, 4.0, 16.0]);
        assert_eq!(v(&binary_scalar(BinOp::Pow, &t, 2.0, false).unwrap()), vec![1.0, 4.0, 16.0]);
        let bad = binary(BinOp::Add, &t, &Tensor::from_slice(&[1.0f32, 2.0]));
        assert!(bad.unwrap_err().to_string().contains("must match the size"));
    }

    #[test]
    fn reductions() {
        let t = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).reshape([2, 2]);
        assert_eq!(v(&reduce(Reduce::Sum, &t, Some(0), false).unwrap()), vec![4.0, 6.0]);
        assert_eq!(v(&reduce(Reduce::Max, &t, Some(-1), false).unwrap()), vec![2.0, 4.0]);
        assert_eq!(v(&reduce(Reduce::Argmin, &t, None, false).unwrap()), vec![0.0]);
        let var = v(&reduce(Reduce::Var, &t, None, false).unwrap())[0];
        assert!((var - 5.0 / 3.0).abs() < 1e-6);
        let ints = Tensor::from_slice(&[1i64, 2]);
        assert_eq!(v(&reduce(Reduce::Mean, &ints, None, false).unwrap()), vec![1.5]);
        assert!(reduce(Reduce::Max, &Tensor::from_slice::<f32>(&[]), None, false).is_err());
    }
}
