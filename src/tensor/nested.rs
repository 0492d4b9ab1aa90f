//! Nested lists of scalars <-> tensors: what `tensor([[1, 2], [3, 4]])` and `to_array()` need.
//! The host maps Rhai arrays onto `Nested`; this file knows only Rust values.

use super::check;
use crate::error::{Error, Result};
use tch::{Kind, Tensor};

/// A scalar or a list of nested values, as parsed from a script literal.
#[derive(Debug, Clone, PartialEq)]
pub enum Nested {
    Int(i64),
    Float(f64),
    Bool(bool),
    List(Vec<Nested>),
}

#[derive(Clone, Copy, PartialEq, PartialOrd)]
enum Leaf {
    Bool,
    Int,
    Float,
}

/// Builds a tensor from nested lists. Floats anywhere make a float32 tensor (PyTorch's default),
/// ints alone make int64, bools alone make bool. Ragged lists are an error naming the path.
pub fn from_nested(value: &Nested) -> Result<Tensor> {
    let mut shape = Vec::new();
    let mut cursor = value;
    while let Nested::List(items) = cursor {
        shape.push(items.len() as i64);
        match items.first() {
            Some(first) => cursor = first,
            None => break,
        }
    }
    let mut leaves = Vec::new();
    let mut kind = None;
    collect(value, &shape, 0, &mut Vec::new(), &mut leaves, &mut kind)?;
    let tensor = match kind.unwrap_or(Leaf::Float) {
        Leaf::Float => Tensor::from_slice(&leaves.iter().map(|v| as_f64(v) as f32).collect::<Vec<_>>()),
        Leaf::Int => Tensor::from_slice(&leaves.iter().map(|v| as_f64(v) as i64).collect::<Vec<_>>()),
        Leaf::Bool => Tensor::from_slice(&leaves.iter().map(|v| matches!(v, Nested::Bool(true))).collect::<Vec<_>>()),
    };
    check("tensor", tensor.f_reshape(&shape))
}

fn as_f64(v: &Nested) -> f64 {
    match v {
        Nested::Int(i) => *i as f64,
        Nested::Float(f) => *f,
        Nested::Bool(b) => f64::from(u8::from(*b)),
        Nested::List(_) => unreachable!("collect() only stores leaves"),
    }
}

fn collect<'a>(
    value: &'a Nested,
    shape: &[i64],
    depth: usize,
    path: &mut Vec<usize>,
    leaves: &mut Vec<&'a Nested>,
    kind: &mut Option<Leaf>,
) -> Result<()> {
    let where_ = || if path.is_empty() { "the top level".to_string() } else { format!("index {path:?}") };
    match value {
        Nested::List(items) => {
            if depth >= shape.len() || items.len() as i64 != shape[depth] {
                return Err(Error::arg(format!(
                    "ragged nested array at {}: expected {} elements like its first sibling, found {}",
                    where_(),
                    shape.get(depth).map_or("a scalar".to_string(), |n| n.to_string()),
                    items.len()
                )));
            }
            for (i, item) in items.iter().enumerate() {
                path.push(i);
                collect(item, shape, depth + 1, path, leaves, kind)?;
                path.pop();
            }
        }
        leaf => {
            if depth != shape.len() {
                return Err(Error::arg(format!("ragged nested array at {}: found a number where a list was expected", where_())));
            }
            let this = match leaf {
                Nested::Bool(_) => Leaf::Bool,
                Nested::Int(_) => Leaf::Int,
                _ => Leaf::Float,
            };
            *kind = Some(match *kind {
                None => this,
                Some(k) if (k == Leaf::Bool) != (this == Leaf::Bool) => {
                    return Err(Error::arg(format!("mixed bools and numbers in one tensor at {}", where_())))
                }
                Some(k) => {
                    if this > k {
                        this
                    } else {
                        k
                    }
                }
            });
            leaves.push(leaf);
        }
    }
    Ok(())
}

/// The values of a tensor as nested lists (on the CPU); a 0-dim tensor gives a scalar.
pub fn to_nested(tensor: &Tensor) -> Result<Nested> {
    let shape = tensor.size();
    let flat = flat_values(tensor)?;
    Ok(build(&flat, &shape))
}

/// All values of a tensor in row-major order, as `Nested` scalars.
pub fn flat_values(tensor: &Tensor) -> Result<Vec<Nested>> {
    let cpu = check("to_array", tensor.f_to_device(tch::Device::Cpu))?;
    let flat = check("to_array", cpu.f_reshape([-1]))?;
    let kind = check("to_array", flat.f_kind())?;
    let n = flat.numel();
    Ok(if kind == Kind::Bool {
        let mut out = vec![false; n];
        check("to_array", flat.f_copy_data(&mut out, n))?;
        out.into_iter().map(Nested::Bool).collect()
    } else if super::dtype::is_float(kind) {
        let mut out = vec![0f64; n];
        check("to_array", check("to_array", flat.f_to_kind(Kind::Double))?.f_copy_data(&mut out, n))?;
        out.into_iter().map(Nested::Float).collect()
    } else if matches!(kind, Kind::Uint8 | Kind::Int8 | Kind::Int16 | Kind::Int | Kind::Int64) {
        let mut out = vec![0i64; n];
        check("to_array", check("to_array", flat.f_to_kind(Kind::Int64))?.f_copy_data(&mut out, n))?;
        out.into_iter().map(Nested::Int).collect()
    } else {
        return Err(Error::arg(format!("cannot convert a {} tensor to script values", super::dtype::kind_name(kind))));
    })
}

fn build(flat: &[Nested], shape: &[i64]) -> Nested {
    match shape.split_first() {
        None => flat.first().cloned().unwrap_or(Nested::List(vec![])),
        Some((&n, rest)) => {
            let stride: usize = rest.iter().product::<i64>() as usize;
            Nested::List((0..n as usize).map(|i| build(&flat[i * stride..(i + 1) * stride], rest)).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Nested::*;

    #[test]
    fn builds_and_reads_back() {
        let v = List(vec![List(vec![Int(1), Float(2.5)]), List(vec![Int(3), Int(4)])]);
        let t = from_nested(&v).unwrap();
        assert_eq!(t.size(), vec![2, 2]);
        assert_eq!(t.kind(), Kind::Float);
        assert_eq!(to_nested(&t).unwrap(), List(vec![List(vec![Float(1.0), Float(2.5)]), List(vec![Float(3.0), Float(4.0)])]));
        let ints = from_nested(&List(vec![Int(1), Int(2)])).unwrap();
        assert_eq!(ints.kind(), Kind::Int64);
        let bools = from_nested(&List(vec![Bool(true), Bool(false)])).unwrap();
        assert_eq!(bools.kind(), Kind::Bool);
        assert_eq!(to_nested(&bools).unwrap(), List(vec![Bool(true), Bool(false)]));
        assert_eq!(from_nested(&List(vec![])).unwrap().size(), vec![0]);
    }

    #[test]
    fn ragged_and_mixed_are_errors() {
        let ragged = List(vec![List(vec![Int(1), Int(2)]), List(vec![Int(3)])]);
        assert!(from_nested(&ragged).unwrap_err().to_string().contains("ragged"));
        let deep = List(vec![List(vec![Int(1)]), Int(3)]);
        assert!(from_nested(&deep).unwrap_err().to_string().contains("ragged"));
        assert!(from_nested(&List(vec![Bool(true), Int(1)])).unwrap_err().to_string().contains("mixed"));
    }
}
