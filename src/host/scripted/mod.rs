//! Training methods written in Rhai: `method(#{ name, loss, gradients, begin_epoch, state,
//! substeps, options, seed, head })` builds one from closures. docs/your-method.md is the
//! tutorial; stdlib/methods/ holds script twins of native methods.
//!
//! - `caller`: the script call the hooks run inside (the trainer is Rust between the two)
//! - `context`: `ctx` / `ectx`, what the hooks see, keyed by modality name
//! - `method`: the core `Method` trait implemented by calling the hooks
//! - `state`: a method's state as checkpoint tensors and back

pub mod caller;
pub mod context;
pub mod method;
pub mod state;

use crate::error::Error;
use crate::host::{Docs, RhaiResult};
use crate::train::fusion::HeadRule;
use crate::train::method::intern;
pub use method::{Definition, ScriptedMethod, Source};
use rhai::{Dynamic, FnPtr, Map, NativeCallContext};
use std::rc::Rc;

const KEYS: [&str; 10] = ["name", "loss", "gradients", "begin_epoch", "predict", "state", "substeps", "options", "seed", "head"];

fn hook(op: &str, key: &str, v: Option<&Dynamic>, params: usize) -> RhaiResult<Option<FnPtr>> {
    let Some(v) = v.filter(|v| !v.is_unit()) else { return Ok(None) };
    let f = v.clone().try_cast::<FnPtr>().ok_or_else(|| {
        Error::arg(format!(
            "{op}: {key} must be a closure, e.g. {key}: |{}| ..., found {}",
            if params == 2 {
                "ctx, grads"
            } else if key == "begin_epoch" {
                "ectx"
            } else {
                "ctx"
            },
            crate::host::convert::type_label(v)
        ))
    })?;
    Ok(Some(f))
}

/// The script text a method was defined in, for run records.
fn source_of(ctx: &NativeCallContext, def_names: &[&str]) -> Source {
    #[allow(deprecated)]
    let file = ctx.global_runtime_state().source.as_ref().map(|s| s.to_string());
    let text = match file.as_deref() {
        Some(f) => match f.strip_prefix("stdlib/").and_then(|n| crate::stdlib::source(n.trim_end_matches(".rhai"))) {
            Some(t) => t.to_string(),
            None => std::fs::read_to_string(f).unwrap_or_default(),
        },
        None => String::new(),
    };
    // Rhai names each closure by a hash of its code, so the hooks' names pin the code even
    // where there is no file (a method typed in the REPL).
    let hash = crate::checksum::checksum(&format!("{text}\n{}", def_names.join("\n")));
    Source { file: file.unwrap_or_else(|| "repl".into()), text, hash }
}

fn build(ctx: &NativeCallContext, spec: &Map) -> RhaiResult<Definition> {
    let op = "method";
    if let Some(k) = spec.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(Error::arg(format!(
            "{op}: unknown key \"{k}\" (a scripted method takes {}); the method's own knobs go in options: #{{ ... }}",
            KEYS.join(", ")
        ))
        .into());
    }
    let name = match spec.get("name") {
        None => return Err(Error::arg(format!("{op}: give the method a name: method(#{{ name: \"my-method\", loss: |ctx| ... }})")).into()),
        Some(v) => v.clone().into_string().map_err(|_| Error::arg(format!("{op}: name must be a string")))?,
    };
    if name.trim().is_empty() || crate::train::methods::find(&name).is_ok() {
        return Err(Error::arg(format!(
            "{op}: name \"{name}\" {}; choose another (records and tables tell methods apart by name)",
            if name.trim().is_empty() { "is empty" } else { "is a native method's" }
        ))
        .into());
    }
    let loss = hook(op, "loss", spec.get("loss"), 1)?
        .ok_or_else(|| Error::arg(format!("{op}: {name} needs a loss: loss: |ctx| cross_entropy(ctx.forward().fused, ctx.labels)")))?;
    let gradients = hook(op, "gradients", spec.get("gradients"), 2)?;
    let begin_epoch = hook(op, "begin_epoch", spec.get("begin_epoch"), 1)?;
    let predict = hook(op, "predict", spec.get("predict"), 1)?;
    let count = |key: &str, default: i64, lo: i64| -> RhaiResult<i64> {
        match spec.get(key) {
            None => Ok(default),
            Some(v) => match v.as_int() {
                Ok(n) if n >= lo => Ok(n),
                _ => Err(Error::arg(format!("{op}: {key} must be an integer >= {lo}, got {v}")).into()),
            },
        }
    };
    let substeps = count("substeps", 1, 1)? as usize;
    let seed = count("seed", 0, 0)? as u64;
    let options = match spec.get("options") {
        None => Map::new(),
        Some(v) => v
            .clone()
            .try_cast::<Map>()
            .ok_or_else(|| Error::arg(format!("{op}: options must be a map of the method's knobs, e.g. options: #{{ alpha: 0.8 }}")))?,
    };
    let head = match spec.get("head") {
        None => None,
        Some(v) => {
            let m = v
                .clone()
                .try_cast::<Map>()
                .ok_or_else(|| Error::arg(format!("{op}: head must be #{{ rule: \"cosine\", scale: 10.0 }} or #{{ rule: \"linear\" }}")))?;
            let o = crate::host::options::Options::new("method head", &m, &["rule", "scale"])?;
            match o.string("rule", "linear")?.as_str() {
                "linear" => Some(HeadRule::Linear),
                "cosine" => {
                    let scale = o.float("scale", 10.0)?;
                    if !(scale > 0.0 && scale.is_finite()) {
                        return Err(Error::arg(format!("{op}: head scale must be a positive number, got {scale}")).into());
                    }
                    Some(HeadRule::Cosine { scale })
                }
                other => {
                    return Err(Error::arg(format!(
                        "{op}: head rule must be \"linear\" or \"cosine\" (MMCosine's normalised logits), got \"{other}\""
                    ))
                    .into())
                }
            }
        }
    };
    let initial_state = spec.get("state").cloned().unwrap_or_else(|| Dynamic::from_map(Map::new()));
    state::check_savable("state", &initial_state)?;
    let names: Vec<&str> =
        [Some(&loss), gradients.as_ref(), begin_epoch.as_ref(), predict.as_ref()].into_iter().flatten().map(|f| f.fn_name()).collect();
    let source = source_of(ctx, &names);
    // Innermost first: the module whose function is building the method.
    let libs: Vec<rhai::Shared<rhai::Module>> = ctx.namespaces().iter().rev().cloned().collect();
    let name = intern(&name);
    Ok(Definition {
        spec: method::declare(name, &options, seed),
        name,
        options,
        loss,
        gradients,
        begin_epoch,
        predict,
        substeps,
        head,
        initial_state,
        seed,
        seed_given: spec.contains_key("seed"),
        source,
        libs,
    })
}

/// `method(#{ ... })`: the definition a method is built from (and rebuilt, fresh, per run).
pub fn define(ctx: &NativeCallContext, spec: &Map) -> RhaiResult<Rc<Definition>> {
    Ok(Rc::new(build(ctx, spec)?))
}

pub fn register(engine: &mut rhai::Engine, docs: &mut Docs) {
    context::register(engine, docs);
    let _ = docs;
}
