//! Script values <-> core values: nested arrays, shapes, scalars, dims.

use crate::error::Error;
use crate::tensor::nested::Nested;
use rhai::{Array, Dynamic};

use super::RhaiResult;

/// How deep nested arrays may go: libtorch's tensors have at most 64 dimensions, and deeper
/// nesting would recurse until the stack overflows.
const MAX_NESTING: usize = 64;
/// How deep a value saved as JSON (checkpoint state, run records) may nest: serde_json reads
/// back at most 128 levels, so a deeper value could be written but never read.
const MAX_JSON_DEPTH: usize = 100;

/// A Rhai value (array, int, float, bool) as a `Nested` literal for tensor construction.
pub fn dynamic_to_nested(value: &Dynamic) -> RhaiResult<Nested> {
    nested_at(value, 0)
}

fn nested_at(value: &Dynamic, depth: usize) -> RhaiResult<Nested> {
    if depth > MAX_NESTING {
        return Err(Error::arg(format!(
            "tensor(): arrays nested more than {MAX_NESTING} levels deep; a tensor has at most {MAX_NESTING} dimensions"
        ))
        .into());
    }
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
        return Ok(Nested::List(arr.iter().map(|v| nested_at(v, depth + 1)).collect::<RhaiResult<_>>()?));
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

/// A script value as JSON (unit, bools, numbers, strings, arrays and maps); `what` names the
/// value in the error a tensor or other host object gets.
pub fn dynamic_to_json(what: &str, value: &Dynamic) -> RhaiResult<serde_json::Value> {
    json_at(what, value, 0)
}

fn json_at(what: &str, value: &Dynamic, depth: usize) -> RhaiResult<serde_json::Value> {
    if depth > MAX_JSON_DEPTH {
        let shown = if what.len() > 48 {
            format!("{}...", &what[..what.char_indices().nth(48).map_or(what.len(), |(i, _)| i)])
        } else {
            what.to_string()
        };
        return Err(Error::arg(format!("{shown}: nested more than {MAX_JSON_DEPTH} levels deep, too deep to save as JSON and read back; flatten it (e.g. keys like \"a.b.c\")")).into());
    }
    use serde_json::Value;
    if value.is_unit() {
        return Ok(Value::Null);
    }
    if let Ok(b) = value.as_bool() {
        return Ok(Value::Bool(b));
    }
    if let Ok(i) = value.as_int() {
        return Ok(Value::from(i));
    }
    if let Ok(f) = value.as_float() {
        return Ok(serde_json::Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null));
    }
    if value.is_string() || value.is_char() {
        return Ok(Value::String(value.to_string()));
    }
    if value.is_array() {
        let arr = value.read_lock::<Array>().ok_or_else(|| Error::arg("array is locked"))?;
        return Ok(Value::Array(
            arr.iter().enumerate().map(|(i, v)| json_at(&format!("{what}[{i}]"), v, depth + 1)).collect::<RhaiResult<_>>()?,
        ));
    }
    if value.is_map() {
        let map = value.read_lock::<rhai::Map>().ok_or_else(|| Error::arg("map is locked"))?;
        let mut out = serde_json::Map::new();
        for (k, v) in map.iter() {
            out.insert(k.to_string(), json_at(&format!("{what}.{k}"), v, depth + 1)?);
        }
        return Ok(Value::Object(out));
    }
    // Host types carry their Rust path (gapscope::host::train::ScriptModel): show "Model".
    let type_name = value.type_name().rsplit("::").next().unwrap_or("value").trim_start_matches("Script").to_string();
    Err(Error::arg(format!("{what} is a {type_name}, which cannot be stored as JSON: keep numbers, strings, bools, arrays and maps there"))
        .into())
}

/// JSON back to a script value: integers stay ints, other numbers become floats.
pub fn json_to_dynamic(value: &serde_json::Value) -> Dynamic {
    use serde_json::Value;
    match value {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => Dynamic::from_bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Dynamic::from_int(i),
            None => Dynamic::from_float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Dynamic::from(s.clone()),
        Value::Array(items) => Dynamic::from_array(items.iter().map(json_to_dynamic).collect()),
        Value::Object(map) => Dynamic::from_map(map.iter().map(|(k, v)| (k.as_str().into(), json_to_dynamic(v))).collect()),
    }
}

/// A value's type as a script author knows it ("float", "Tensor"), not the Rust path behind it.
pub fn type_label(v: &Dynamic) -> String {
    super::type_names::script_type(v.type_name())
}

/// A Rhai value as a method option's value: a number, bool, string or array of numbers (the one
/// conversion every method option goes through, native or scripted); None for anything else.
pub fn option_value(v: &Dynamic) -> Option<crate::train::options::Value> {
    use crate::train::options::Value;
    if let Ok(x) = v.as_float() {
        return Some(Value::Float(x));
    }
    if let Ok(i) = v.as_int() {
        return Some(Value::Int(i));
    }
    if let Ok(b) = v.as_bool() {
        return Some(Value::Bool(b));
    }
    if let Ok(s) = v.clone().into_string() {
        return Some(Value::Text(s));
    }
    let list = v.read_lock::<rhai::Array>()?;
    list.iter().map(|x| x.as_float().ok().or_else(|| x.as_int().ok().map(|i| i as f64))).collect::<Option<Vec<f64>>>().map(Value::List)
}

/// A method option's value as a Rhai value.
pub fn option_dynamic(v: &crate::train::options::Value) -> Dynamic {
    use crate::train::options::Value;
    match v {
        Value::Float(x) => Dynamic::from_float(*x),
        Value::Int(i) => Dynamic::from_int(*i),
        Value::Bool(b) => Dynamic::from_bool(*b),
        Value::Text(s) => s.clone().into(),
        Value::List(l) => Dynamic::from_array(l.iter().map(|x| Dynamic::from_float(*x)).collect()),
    }
}
