//! A scripted method's state (`ctx.state`: numbers, strings, bools, arrays, maps and tensors,
//! nested as the method likes) as the named tensors a checkpoint stores, and back, exactly:
//! the structure goes to JSON (held as a uint8 tensor, so it travels with the tensors in
//! state.safetensors), floats through serde_json's exact round trip (non-finite ones by name),
//! and every tensor, wherever it sits, as a tensor of its own.

use crate::error::{Error, Result};
use crate::host::tensor::ScriptTensor;
use crate::tensor::{check, Kind, Tensor};
use rhai::{Array, Dynamic, Map};
use serde_json::{json, Value};

/// The entry holding the structure; the tensors are "tensor.0", "tensor.1", ...
pub const STRUCTURE: &str = "structure";
const TENSOR_PREFIX: &str = "tensor.";
const MAX_DEPTH: usize = 64;

/// `tensors` None: only check that everything could be saved (no copies).
fn encode_at(what: &str, v: &Dynamic, tensors: &mut Option<Vec<(String, Tensor)>>, depth: usize) -> Result<Value> {
    // A value captured by a closure is shared; its contents are what is saved.
    let v = &v.flatten_clone();
    if depth > MAX_DEPTH {
        return Err(Error::arg(format!("{what}: the state is nested more than {MAX_DEPTH} levels deep; flatten it")));
    }
    if v.is_unit() {
        return Ok(Value::Null);
    }
    if let Ok(b) = v.as_bool() {
        return Ok(Value::Bool(b));
    }
    if let Ok(i) = v.as_int() {
        return Ok(Value::from(i));
    }
    if let Ok(f) = v.as_float() {
        return Ok(match serde_json::Number::from_f64(f) {
            Some(n) => Value::Number(n),
            None => json!({ "$float": if f.is_nan() { "nan" } else if f > 0.0 { "inf" } else { "-inf" } }),
        });
    }
    if v.is_string() || v.is_char() {
        return Ok(Value::String(v.to_string()));
    }
    if let Some(t) = v.clone().try_cast::<ScriptTensor>() {
        let Some(tensors) = tensors else { return Ok(Value::Null) };
        let name = format!("{TENSOR_PREFIX}{}", tensors.len());
        // A copy: the checkpoint must hold the values of now, and off the autograd graph.
        tensors.push((name.clone(), check("state", t.tensor().f_detach_copy())?));
        return Ok(json!({ "$tensor": name }));
    }
    if v.is_array() {
        let items = v.read_lock::<Array>().ok_or_else(|| Error::arg(format!("{what}: the array is in use")))?;
        return items
            .iter()
            .enumerate()
            .map(|(i, x)| encode_at(&format!("{what}[{i}]"), x, tensors, depth + 1))
            .collect::<Result<Vec<_>>>()
            .map(Value::Array);
    }
    if v.is_map() {
        let map = v.read_lock::<Map>().ok_or_else(|| Error::arg(format!("{what}: the map is in use")))?;
        let mut out = serde_json::Map::new();
        for (k, x) in map.iter() {
            out.insert(k.to_string(), encode_at(&format!("{what}.{k}"), x, tensors, depth + 1)?);
        }
        return Ok(Value::Object(out));
    }
    Err(Error::arg(format!(
        "{what} is a {}, which a checkpoint cannot save: keep numbers, strings, bools, arrays, maps and tensors in a method's state",
        crate::host::convert::type_label(v)
    )))
}

/// The state as named tensors: the structure, then each tensor.
pub fn encode(state: &Dynamic) -> Result<Vec<(String, Tensor)>> {
    let mut tensors = Some(Vec::new());
    let structure = encode_at("ctx.state", state, &mut tensors, 0)?;
    let tensors = tensors.unwrap_or_default();
    let bytes = serde_json::to_vec(&structure).map_err(|e| Error::arg(format!("state: {e}")))?;
    let mut out = vec![(STRUCTURE.to_string(), Tensor::from_slice(&bytes))];
    out.extend(tensors);
    Ok(out)
}

/// Checks that a state can be saved, without keeping the copies.
pub fn check_savable(what: &str, state: &Dynamic) -> Result<()> {
    encode_at(what, state, &mut None, 0).map(|_| ())
}

fn decode_at(v: &Value, named: &[(String, Tensor)]) -> Result<Dynamic> {
    Ok(match v {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => Dynamic::from_bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Dynamic::from_int(i),
            None => Dynamic::from_float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Dynamic::from(s.clone()),
        Value::Array(items) => Dynamic::from_array(items.iter().map(|x| decode_at(x, named)).collect::<Result<_>>()?),
        Value::Object(map) => {
            if let (1, Some(Value::String(name))) = (map.len(), map.get("$tensor")) {
                let t = named
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, t)| t.shallow_clone())
                    .ok_or_else(|| Error::arg(format!("the saved state refers to {name}, which the checkpoint does not hold")))?;
                return Ok(Dynamic::from(ScriptTensor::new(t)));
            }
            if let (1, Some(Value::String(f))) = (map.len(), map.get("$float")) {
                return Ok(Dynamic::from_float(match f.as_str() {
                    "inf" => f64::INFINITY,
                    "-inf" => f64::NEG_INFINITY,
                    _ => f64::NAN,
                }));
            }
            let mut out = Map::new();
            for (k, x) in map {
                out.insert(k.as_str().into(), decode_at(x, named)?);
            }
            Dynamic::from_map(out)
        }
    })
}

/// Whether named tensors are an encoded state (what `encode` wrote).
pub fn is_encoded(named: &[(String, Tensor)]) -> bool {
    named.iter().any(|(n, _)| n == STRUCTURE)
}

/// The state back from what `encode` wrote.
pub fn decode(method: &str, named: &[(String, Tensor)]) -> Result<Dynamic> {
    let structure = named.iter().find(|(n, _)| n == STRUCTURE).map(|(_, t)| t).ok_or_else(|| {
        Error::arg(format!("{method}: the saved state has no \"{STRUCTURE}\" entry; it was not saved from a scripted method"))
    })?;
    let bytes = check("state", structure.f_to_kind(Kind::Uint8).and_then(|t| t.f_flatten(0, -1)).and_then(|t| Vec::<u8>::try_from(&t)))?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| Error::arg(format!("{method}: the saved state is damaged ({e})")))?;
    if let Some((n, _)) = named.iter().find(|(n, _)| n != STRUCTURE && !n.starts_with(TENSOR_PREFIX)) {
        return Err(Error::arg(format!("{method}: the saved state holds \"{n}\", which a scripted method does not write")));
    }
    decode_at(&value, named)
}
