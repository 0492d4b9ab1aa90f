//! Session-level functions: help, version, script parameters.

use super::{Docs, RhaiResult};
use crate::error::Error;
use rhai::{Dynamic, Engine, Map, NativeCallContext};
use std::cell::RefCell;
use std::rc::Rc;

/// The documented entry for everything registered here (help itself is registered later, once
/// the whole doc table exists).
pub fn register(engine: &mut Engine, docs: &mut Docs, params: Rc<RefCell<Map>>) {
    let a = "session";
    docs.add(
        a,
        "help",
        "help() | help(\"name\")",
        "Lists every function by area, or shows one function's usage, overloads and example.",
        "help(\"softmax\")",
    );
    docs.add(a, "version", "version()", "The gapscope version and the libtorch it runs on.", "print(version())");
    engine.register_fn("version", || {
        format!(
            "gapscope {} (libtorch {}, {})",
            env!("CARGO_PKG_VERSION"),
            "2.13.0",
            crate::tensor::device::device_name(
                crate::tensor::device::default_device().unwrap_or_else(|_| crate::tensor::device::best_device())
            )
        )
    });
    docs.add(
        a,
        "param",
        "param(name, default)",
        "A script parameter: the value given by `gapscope run FILE --set name=value`, else default (converted to default's type).",
        "let lr = param(\"lr\", 0.002);",
    );
    engine.register_fn("param", move |name: &str, default: Dynamic| -> RhaiResult<Dynamic> {
        match params.borrow().get(name) {
            None => Ok(default),
            Some(v) => coerce_like(name, v.clone(), &default),
        }
    });
    docs.add(
        a,
        "write_text",
        "write_text(path, text)",
        "Writes text to a file (replacing it atomically, creating its folder): a report's Markdown.",
        "write_text(\"results/notes.md\", \"# Notes\\n\")",
    );
    engine.register_fn("write_text", write_text);
}

/// `write_text(path, text)`: a text file (a report's Markdown), written atomically, its folder
/// created.
fn write_text(path: &str, text: &str) -> RhaiResult<()> {
    let p = std::path::Path::new(path);
    crate::files::write_atomically(p, |tmp| std::fs::write(tmp, text).map_err(|e| Error::io(tmp, e)))
        .map_err(|e| Error::arg(format!("write_text: cannot write {path}: {e}")).into())
}

/// A --set value converted to the type of the script's default (an int given for a float).
fn coerce_like(name: &str, value: Dynamic, default: &Dynamic) -> RhaiResult<Dynamic> {
    if default.is_float() {
        if let Ok(i) = value.as_int() {
            return Ok(Dynamic::from_float(i as f64));
        }
    }
    // A string parameter takes any --set text: "--set tag=3" or "--set tag=inf" is the tag.
    if default.is_string() && (value.is_int() || value.is_float() || value.is_bool()) {
        return Ok(Dynamic::from(value.to_string()));
    }
    if !default.is_unit() && value.type_name() != default.type_name() {
        return Err(Error::arg(format!(
            "--set {name}={value}: expected a {} like the default {default}, got a {}",
            super::type_names::script_type(default.type_name()),
            super::type_names::script_type(value.type_name())
        ))
        .into());
    }
    Ok(value)
}

/// Registers `help()` and `help(name)` over the finished doc table.
pub fn register_help(engine: &mut Engine, docs: Rc<Docs>) {
    let list = docs.clone();
    engine.register_fn("help", move || print!("{}", list.listing()));
    engine.register_fn("help", move |ctx: NativeCallContext, name: &str| -> RhaiResult<()> {
        let sigs = signatures_of(ctx.engine(), name);
        match docs.detail(name, &sigs) {
            Some(text) => {
                print!("{text}");
                Ok(())
            }
            None => {
                let mut close = crate::suggest::nearest(name, docs.entries().iter().map(|d| d.name));
                close.dedup();
                close.truncate(3);
                let hint = if close.is_empty() {
                    "help() lists every function".to_string()
                } else {
                    format!("did you mean: {}?", close.join(", "))
                };
                Err(Error::arg(format!("help: no function named '{name}'; {hint}")).into())
            }
        }
    });
}

/// The engine's typed overloads of one function name, e.g. `sum(t: Tensor, dim: i64) -> Tensor`.
pub fn signatures_of(engine: &Engine, name: &str) -> Vec<String> {
    let internal = match name {
        "[]" => "index$get$".to_string(),
        _ => name.to_string(),
    };
    let getter = format!("get${internal}(");
    let call = format!("{internal}(");
    let mut sigs: Vec<String> = engine
        .gen_fn_signatures(false)
        .into_iter()
        .filter(|s| s.starts_with(&call) || s.starts_with(&getter))
        .map(|s| clean_signature(&s))
        .collect();
    sigs.sort();
    sigs.dedup();
    sigs
}

/// The function name a signature line from `gen_fn_signatures` describes, as the docs name it.
pub fn documented_name(signature: &str) -> String {
    let name = signature.split('(').next().unwrap_or(signature);
    let name = name.strip_prefix("get$").or_else(|| name.strip_prefix("set$")).unwrap_or(name);
    match name {
        "index$get$" | "index$set$" => "[]".to_string(),
        other => other.to_string(),
    }
}

/// Rhai prints Rust type paths; show script authors the types they write.
/// Rhai's internal names for indexers and properties become the syntax a script writes:
/// `index$get$(Tensor, int) -> Tensor` reads `Tensor[int] -> Tensor`, `get$shape(Tensor)`
/// reads `Tensor.shape`.
fn clean_signature(sig: &str) -> String {
    let s = super::type_names::for_users(&sig.replace("&mut ", "").replace("_: ", ""));
    // Bare primitive names (not paths) in argument lists.
    let s = s.replace("i64", "int").replace("f64", "float");
    let (call, ret) = s.split_once(')').map(|(c, r)| (c.to_string(), r.to_string())).unwrap_or((s.clone(), String::new()));
    let (name, args) = call.split_once('(').unwrap_or((call.as_str(), ""));
    let args: Vec<&str> = args.split(", ").filter(|a| !a.is_empty()).collect();
    match (name, args.as_slice()) {
        ("index$get$", [on, key]) => format!("{on}[{key}]{ret}"),
        ("index$set$", [on, key, value]) => format!("{on}[{key}] = {value}{ret}"),
        (n, [on]) if n.starts_with("get$") => format!("{on}.{}{ret}", &n[4..]),
        (n, [on, value]) if n.starts_with("set$") => format!("{on}.{} = {value}{ret}", &n[4..]),
        _ => s,
    }
}
