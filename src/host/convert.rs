//! Script values <-> core values: nested arrays, shapes, scalars, dims.

use crate::error::Error;
use crate::tensor::nested::Nested;
use rhai::{Array, Dynamic};

use super::RhaiResult;

/// A Rhai value (array, int, float, bool) as a `Nested` literal for tensor construction.
pub fn dynamic_to_nested(value: &Dynamic) -> RhaiResult<Nested> {
    if let Ok(i) = value.as_int() {
        return Ok(Nested::Int(i));
    }
    if let Ok(f) = value.as_float() {
        return Ok(Nested::Float(f));
    }
    if let Ok(b) = value.as_bool() {
        return Ok(Nested::Bool(b));
    }
    if value.is_array() {
        let arr = value.read_lock::<Array>().ok_or_else(|| Error::arg("array is locked"))?;
        return Ok(Nested::List(arr.iter().map(dynamic_to_nested).collect::<RhaiResult<_>>()?));
    }
    Err(Error::arg(format!("tensor(): expected numbers, bools or nested arrays of them, found {}", value.type_name())).into())
}

pub fn nested_to_dynamic(value: Nested) -> Dynamic {
    match value {
        Nested::Int(i) => Dynamic::from_int(i),
        Nested::Float(f) => Dynamic::from_float(f),
        Nested::Bool(b) => Dynamic::from_bool(b),
        Nested::List(items) => Dynamic::from_array(items.into_iter().map(nested_to_dynamic).collect()),
    }
}

/// A shape from an array of ints (`[2, 3]`).
pub fn shape_from_array(op: &str, shape: &Array) -> RhaiResult<Vec<i64>> {
    shape
        .iter()
        .map(|d| {
            d.as_int().map_err(|_| Error::arg(format!("{op}: a shape is an array of ints like [2, 3], found a {}", d.type_name())).into())
        })
        .collect()
}

/// An int or float script value as f64 (for clamp bounds, fill values, ...).
pub fn number(op: &str, what: &str, value: &Dynamic) -> RhaiResult<f64> {
    value
        .as_float()
        .or_else(|_| value.as_int().map(|i| i as f64))
        .map_err(|_| Error::arg(format!("{op}: {what} must be a number, found {}", value.type_name())).into())
}

pub fn shape_to_array(shape: &[i64]) -> Array {
    shape.iter().map(|&d| Dynamic::from_int(d)).collect()
}
