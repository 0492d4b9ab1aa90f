//! Training methods in Rhai: `method(name, opts)`, `methods()`, and how `train_step` /
//! `train_epoch` pick a method from their options map (`method: "ogm-ge", alpha: 0.8`, or
//! `method: m` for one built with `method(...)`). The methods themselves are
//! `crate::train::methods`.

use super::mixture::ScriptMixture;
use super::tensor::ScriptTensor;
use super::train::ScriptWeights;
use super::{Docs, RhaiResult};
use crate::error::Error;
use crate::tensor::Tensor;
use crate::train::methods::{self, adaptive::Weights, Method, Value};
use rhai::{Array, Dynamic, Engine, Map};
use std::cell::RefCell;
use std::rc::Rc;

/// A method built once and shared by every step that uses it (its state lives across them).
#[derive(Clone)]
pub struct ScriptMethod(pub Rc<RefCell<Box<dyn Method>>>);

/// A method for one call: a shared one, or one built from its name for this call alone.
pub enum Chosen {
    Shared(ScriptMethod),
    Own(Box<dyn Method>),
}

impl Chosen {
    pub fn with<T>(&mut self, f: impl FnOnce(&mut dyn Method) -> T) -> T {
        match self {
            Chosen::Shared(m) => f(m.0.borrow_mut().as_mut()),
            Chosen::Own(m) => f(m.as_mut()),
        }
    }
}

fn to_value(op: &str, key: &str, v: &Dynamic) -> RhaiResult<Value> {
    if let Ok(x) = v.as_float() {
        return Ok(Value::Float(x));
    }
    if let Ok(i) = v.as_int() {
        return Ok(Value::Int(i));
    }
    if let Ok(b) = v.as_bool() {
        return Ok(Value::Bool(b));
    }
    if let Ok(s) = v.clone().into_string() {
        return Ok(Value::Text(s));
    }
    if let Some(list) = v.read_lock::<Array>() {
        let nums: Option<Vec<f64>> = list.iter().map(|x| x.as_float().ok().or_else(|| x.as_int().ok().map(|i| i as f64))).collect();
        if let Some(nums) = nums {
            return Ok(Value::List(nums));
        }
    }
    Err(Error::arg(format!("{op}: option {key} must be a number, bool, string or array of numbers, found {}", super::convert::type_label(v))).into())
}

fn from_value(v: &Value) -> Dynamic {
    match v {
        Value::Float(x) => Dynamic::from_float(*x),
        Value::Int(i) => Dynamic::from_int(*i),
        Value::Bool(b) => Dynamic::from_bool(*b),
        Value::Text(s) => s.clone().into(),
        Value::List(l) => Dynamic::from_array(l.iter().map(|x| Dynamic::from_float(*x)).collect()),
    }
}

/// The adaptive loss's weights, when the options carry a weight table or a mixture.
fn adaptive_weights(v: Option<&Dynamic>) -> Option<Weights> {
    let v = v?.clone();
    if let Some(t) = v.clone().try_cast::<ScriptWeights>() {
        return Some(Weights::Stored(t.0.as_ref().clone()));
    }
    v.try_cast::<ScriptMixture>().map(|m| Weights::Live(m.0.clone()))
}

/// Builds a method by name from the entries of `opts` other than `skip`.
fn build(op: &str, name: &str, opts: &Map, skip: &[&str]) -> RhaiResult<Box<dyn Method>> {
    let mut given = Vec::new();
    let mut weights = None;
    for (k, v) in opts.iter().filter(|(k, v)| !skip.contains(&k.as_str()) && !v.is_unit()) {
        if k == "weights" {
            if let Some(w) = adaptive_weights(Some(v)) {
                weights = Some(w);
                continue;
            }
            if name == "adaptive" {
                return Err(Error::arg(format!(
                    "{op}: adaptive: weights must be a weight table from the last refit, weight_table(data.train, mix.balance_weights(z)), or the fitted mixture itself (mix, fitted with raw: zs), found {}",
                    super::convert::type_label(v)
                ))
                .into());
            }
        }
        given.push((k.to_string(), to_value(op, k, v)?));
    }
    methods::build(name, &given, weights).map_err(|e| Error::arg(format!("{op}: {e}")).into())
}

/// The method a step or epoch call asks for: `method` (a name or a built method), or `loss`
/// (the older name of the same choice), else the warm-up objective. The other entries of
/// `opts`, apart from the call's own keys, are the method's options.
pub fn choose(op: &str, opts: &Map, call_keys: &[&str]) -> RhaiResult<Chosen> {
    let mut skip = call_keys.to_vec();
    skip.extend(["method", "loss"]);
    let given = opts.get("method").or_else(|| opts.get("loss")).filter(|v| !v.is_unit());
    if let Some(shared) = given.and_then(|v| v.clone().try_cast::<ScriptMethod>()) {
        if let Some(extra) = opts.keys().find(|k| !skip.contains(&k.as_str())) {
            return Err(Error::arg(format!("{op}: option \"{extra}\" belongs to the method, which is already built: give it to method(name, #{{ {extra}: ... }})")).into());
        }
        return Ok(Chosen::Shared(shared));
    }
    let name = match given {
        None => "warmup".to_string(),
        Some(v) => v.clone().into_string().map_err(|_| Error::arg(format!("{op}: method must be a method's name or method(name, opts), found {}", super::convert::type_label(v))))?,
    };
    let built = build(op, &name, opts, &skip)?;
    if built.keeps_state() {
        return Err(Error::arg(format!(
            "{op}: {name} keeps state across steps and epochs, so build it once and pass it to every call: let meth = method(\"{name}\", #{{ ... }}); then method: meth"
        ))
        .into());
    }
    Ok(Chosen::Own(built))
}

fn state_map(m: &ScriptMethod) -> Map {
    m.0.borrow().state().into_iter().map(|(k, t)| (k.into(), Dynamic::from(ScriptTensor::new(t)))).collect()
}

/// Entries are tensors (what state() gives) or arrays of numbers (checkpoints written before
/// method state became tensors).
fn load_state_map(m: &ScriptMethod, state: &Map) -> RhaiResult<()> {
    let mut named = Vec::new();
    for (k, v) in state {
        if let Some(t) = v.clone().try_cast::<ScriptTensor>() {
            named.push((k.to_string(), t.tensor().shallow_clone()));
            continue;
        }
        let Value::List(values) = to_value("load_state", k, v)? else {
            return Err(Error::arg(format!("load_state: {k} must be a tensor, as state() gives")).into());
        };
        named.push((k.to_string(), Tensor::from_slice(&values)));
    }
    Ok(m.0.borrow_mut().load_state(&named)?)
}

pub fn register(engine: &mut Engine, docs: &mut Docs) {
    engine.register_type_with_name::<ScriptMethod>("Method");
    let a = "train";
    docs.add(a, "method", "method(name, #{ options })",
        "A training method, built once so it keeps its state across steps and epochs (AGM's running scores, G-Blending's weights, PMR's prototypes): \"concat\", \"g-blending\", \"ogm-ge\", \"pmr\", \"mmcosine\", \"agm\", \"mla\" (needs fusion: \"shared\"), \"d&r\", \"opm&ogm\", or the paper's \"warmup\" / \"adaptive\"; pass it as method: to train_step, train_epoch or a recipe's cfg. Unknown options, and values of the wrong type or range, are errors naming the valid ones. docs/methods.md lists each method's options and defaults.",
        "let meth = method(\"ogm-ge\", #{ alpha: 0.8, window: [0, 50] });");
    engine.register_fn("method", |name: &str, opts: Map| -> RhaiResult<ScriptMethod> { Ok(ScriptMethod(Rc::new(RefCell::new(build("method", name, &opts, &[])?)))) });
    engine.register_fn("method", |name: &str| -> RhaiResult<ScriptMethod> { Ok(ScriptMethod(Rc::new(RefCell::new(build("method", name, &Map::new(), &[])?)))) });
    docs.add(a, "methods", "methods()", "The names of the training methods, in Table II's order, then the paper's two objectives.", "print(methods());");
    engine.register_fn("methods", || -> Array { methods::NAMES.iter().map(|n| Dynamic::from(n.to_string())).collect() });
    docs.add(a, "options", "meth.options", "The method's options with every default filled in (what run records store).", "print(method(\"agm\").options);");
    engine.register_get("options", |m: &mut ScriptMethod| -> Map { m.0.borrow().options().values.iter().map(|(k, v)| ((*k).into(), from_value(v))).collect() });
    engine.register_get("name", |m: &mut ScriptMethod| m.0.borrow().name().to_string());
    engine.register_fn("to_string", |m: &mut ScriptMethod| format!("Method({})", m.0.borrow().name()));
    engine.register_fn("to_debug", |m: &mut ScriptMethod| format!("Method({})", m.0.borrow().name()));
    docs.add(a, "state", "meth.state()", "What the method carries across steps and epochs, as a map name -> Tensor (empty for stateless methods): AGM's running scores, PMR's prototypes, MLA's projection, D&R's initial encoder weights. The recipes save it in each checkpoint and give it back with load_state on resume.", "let st = meth.state();");
    engine.register_fn("state", |m: &mut ScriptMethod| state_map(m));
    docs.add(a, "load_state", "meth.load_state(map)", "Restores what state() returned (a resumed run continues with the same running scores or weights).", "meth.load_state(ck.method);");
    engine.register_fn("load_state", |m: &mut ScriptMethod, state: Map| load_state_map(m, &state));
}
