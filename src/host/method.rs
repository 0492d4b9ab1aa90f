//! Training methods in Rhai: `method(name, opts)`, `methods()`, and how `train_step` /
//! `train_epoch` pick a method from their options map (`method: "ogm-ge", alpha: 0.8`, or
//! `method: m` for one built with `method(...)`). The methods themselves are
//! `crate::train::methods`.

use super::convert::{option_dynamic, option_value, type_label};
use super::handles::ScriptWeights;
use super::mixture::ScriptMixture;
use super::scripted::context::MethodShared;
use super::scripted::{Definition, ScriptedMethod};
use super::tensor::ScriptTensor;
use super::{Docs, RhaiResult};
use crate::error::Error;
use crate::tensor::Tensor;
use crate::train::declaration::{BuildInputs, Configured, Keeps, MethodSpec, Modalities};
use crate::train::method::Method;
use crate::train::methods;
use crate::train::options::{range_text, Literal, Value};
use crate::train::weights::Weights;
use crate::train::weights::WEIGHTS_ACCEPTED;
use rhai::{Array, Dynamic, Engine, Map, NativeCallContext};
use std::cell::RefCell;
use std::rc::Rc;

/// A method built once and shared by every step that uses it (its state lives across them),
/// with what it was built from, so a recipe can start each run from a fresh copy.
#[derive(Clone)]
pub struct ScriptMethod {
    pub method: Rc<RefCell<Configured>>,
    pub origin: Origin,
}

#[derive(Clone)]
pub enum Origin {
    /// Built by name: the options as given (so `fresh` can tell a given seed from a default).
    Native { name: String, given: Vec<(String, Value)>, weights: Option<Weights> },
    /// Built from closures by `method(#{ ... })`, with the state its hooks share.
    Scripted { def: Rc<Definition>, shared: Rc<MethodShared> },
}

impl ScriptMethod {
    fn native(name: &str, given: Vec<(String, Value)>, weights: Option<Weights>) -> RhaiResult<ScriptMethod> {
        let built =
            methods::build(name, &given, &BuildInputs { weights: weights.clone() }).map_err(|e| Error::arg(format!("method: {e}")))?;
        Ok(ScriptMethod { method: Rc::new(RefCell::new(built)), origin: Origin::Native { name: name.to_string(), given, weights } })
    }

    fn scripted(def: Rc<Definition>, seed: Option<u64>) -> ScriptMethod {
        let (configured, shared) = ScriptedMethod::configured(def.clone(), seed);
        ScriptMethod { method: Rc::new(RefCell::new(configured)), origin: Origin::Scripted { def, shared } }
    }

    /// The same method at its initial state, for a new run; `seed` (the run's) is used unless
    /// the method was built with a seed of its own.
    pub fn fresh(&self, seed: Option<u64>) -> RhaiResult<ScriptMethod> {
        match &self.origin {
            Origin::Native { name, given, weights } => {
                let mut given = given.clone();
                let takes_seed = self.method.borrow().spec.takes_option("seed");
                if let Some(s) = seed.filter(|_| takes_seed && !given.iter().any(|(k, _)| k == "seed")) {
                    given.push(("seed".into(), Value::Int(s as i64)));
                }
                ScriptMethod::native(name, given, weights.clone())
            }
            Origin::Scripted { def, .. } => Ok(ScriptMethod::scripted(def.clone(), seed)),
        }
    }

    /// The train_step / train_epoch keys beyond the call's own: a scripted method reads them as
    /// ctx.args; a native method takes its options when it is built, so they are an error.
    fn set_args(&self, op: &str, extra: Map) -> RhaiResult<()> {
        match &self.origin {
            Origin::Scripted { shared, .. } => {
                *shared.args.borrow_mut() = extra;
                Ok(())
            }
            Origin::Native { .. } => match extra.keys().next() {
                Some(k) => Err(Error::arg(format!(
                    "{op}: option \"{k}\" belongs to the method, which is already built: give it to method(name, #{{ {k}: ... }})"
                ))
                .into()),
                None => Ok(()),
            },
        }
    }
}

/// Why a hook cannot train with the method that runs it.
const RUNNING: &str = "this method is running (the call comes from one of its own hooks), and a hook cannot train with the method that runs it: build another for that call with meth.fresh() or method(...)";

/// A method for one call: a shared one, or one built from its name for this call alone.
pub enum Chosen {
    Shared(ScriptMethod),
    Own(Configured),
}

impl Chosen {
    /// Runs `f` with the method; a shared method that is already running (a hook training with
    /// the method that runs it) is an error, not a borrow panic.
    pub fn with<T>(&mut self, op: &str, f: impl FnOnce(&mut dyn Method) -> crate::error::Result<T>) -> crate::error::Result<T> {
        match self {
            Chosen::Shared(m) => {
                let mut rule = m.method.try_borrow_mut().map_err(|_| Error::arg(format!("{op}: {RUNNING}")))?;
                f(&mut *rule)
            }
            Chosen::Own(m) => f(m),
        }
    }
}

fn to_value(op: &str, key: &str, v: &Dynamic) -> RhaiResult<Value> {
    option_value(v).ok_or_else(|| {
        Error::arg(format!("{op}: option {key} must be a number, bool, string or array of numbers, found {}", type_label(v))).into()
    })
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
fn build(op: &str, name: &str, opts: &Map, skip: &[&str]) -> RhaiResult<Configured> {
    let (given, weights) = given_options(op, name, opts, skip)?;
    methods::build(name, &given, &BuildInputs { weights }).map_err(|e| Error::arg(format!("{op}: {e}")).into())
}

/// The options of `opts` (other than `skip`) as method values, and the adaptive loss's weights.
fn given_options(op: &str, name: &str, opts: &Map, skip: &[&str]) -> RhaiResult<(Vec<(String, Value)>, Option<Weights>)> {
    let mut given = Vec::new();
    let mut weights = None;
    for (k, v) in opts.iter().filter(|(k, v)| !skip.contains(&k.as_str()) && !v.is_unit()) {
        if k == "weights" {
            if let Some(w) = adaptive_weights(Some(v)) {
                weights = Some(w);
                continue;
            }
            // Unless the method declares an option of that name (G-Blending's head weights), say
            // what `weights` must be (an unknown method is reported by the build).
            let option = methods::find(name).map_or(true, |spec| spec.options.iter().any(|o| o.name == "weights"));
            if !option {
                return Err(Error::arg(format!("{op}: {name}: weights must be {WEIGHTS_ACCEPTED}, found {}", type_label(v))).into());
            }
        }
        given.push((k.to_string(), to_value(op, k, v)?));
    }
    Ok((given, weights))
}

/// The method a step or epoch call asks for: `method` (a name or a built method), or `loss`
/// (the older name of the same choice), else concat, as the recipes default to. The other entries of
/// `opts`, apart from the call's own keys, are the method's options.
pub fn choose(op: &str, opts: &Map, call_keys: &[&str]) -> RhaiResult<Chosen> {
    let mut skip = call_keys.to_vec();
    skip.extend(["method", "loss"]);
    let given = opts.get("method").or_else(|| opts.get("loss")).filter(|v| !v.is_unit());
    if let Some(shared) = given.and_then(|v| v.clone().try_cast::<ScriptMethod>()) {
        // Checked before its call arguments change under the hook that is running it.
        if shared.method.try_borrow_mut().is_err() {
            return Err(Error::arg(format!("{op}: {RUNNING}")).into());
        }
        let extra: Map = opts.iter().filter(|(k, _)| !skip.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect();
        shared.set_args(op, extra)?;
        return Ok(Chosen::Shared(shared));
    }
    let name = match given {
        None => "concat".to_string(),
        Some(v) => v
            .clone()
            .into_string()
            .map_err(|_| Error::arg(format!("{op}: method must be a method's name or method(name, opts), found {}", type_label(v))))?,
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

/// `meth.state()`: a native method's named tensors, or a scripted method's state as it is.
fn state_value(m: &ScriptMethod) -> Dynamic {
    match &m.origin {
        Origin::Scripted { shared, .. } => shared.state.borrow().clone(),
        Origin::Native { .. } => Dynamic::from_map(named_map(m.method.borrow().state())),
    }
}

fn named_map(named: Vec<(String, Tensor)>) -> Map {
    named.into_iter().map(|(k, t)| (k.into(), Dynamic::from(ScriptTensor::new(t)))).collect()
}

/// `meth.checkpoint_state()`: the state as the named tensors a checkpoint stores.
fn checkpoint_state(m: &ScriptMethod) -> RhaiResult<Map> {
    let named = match &m.origin {
        Origin::Scripted { shared, .. } => super::scripted::state::encode(&shared.state.borrow())?,
        Origin::Native { .. } => m.method.borrow().state(),
    };
    Ok(named_map(named))
}

/// Entries are tensors (what checkpoint_state() gives) or arrays of numbers (checkpoints written
/// before method state became tensors); a scripted method also takes a plain state value.
fn load_state_map(m: &ScriptMethod, state: &Map) -> RhaiResult<()> {
    let mut named = Vec::new();
    for (k, v) in state {
        if let Some(t) = v.clone().try_cast::<ScriptTensor>() {
            named.push((k.to_string(), t.tensor().shallow_clone()));
            continue;
        }
        if let Origin::Scripted { shared, .. } = &m.origin {
            // Not what checkpoint_state wrote: the state itself, as state() shows it.
            let value = Dynamic::from_map(state.clone());
            super::scripted::state::check_savable("load_state", &value)?;
            *shared.state.borrow_mut() = value;
            return Ok(());
        }
        let Value::List(values) = to_value("load_state", k, v)? else {
            return Err(Error::arg(format!("load_state: {k} must be a tensor, as state() gives")).into());
        };
        named.push((k.to_string(), Tensor::from_slice(&values)));
    }
    if let Origin::Scripted { shared, .. } = &m.origin {
        if !super::scripted::state::is_encoded(&named) {
            let value = Dynamic::from_map(state.clone());
            *shared.state.borrow_mut() = value;
            return Ok(());
        }
    }
    Ok(m.method.borrow_mut().load_state(&named)?)
}

fn source_map(m: &ScriptMethod) -> Dynamic {
    match &m.origin {
        Origin::Scripted { def, .. } => {
            let mut out = Map::new();
            out.insert("file".into(), def.source.file.clone().into());
            out.insert("hash".into(), def.source.hash.clone().into());
            out.insert("text".into(), def.source.text.clone().into());
            Dynamic::from_map(out)
        }
        Origin::Native { .. } => Dynamic::UNIT,
    }
}

fn native(name: &str, opts: &Map) -> RhaiResult<ScriptMethod> {
    let (given, weights) = given_options("method", name, opts, &[])?;
    ScriptMethod::native(name, given, weights)
}

fn literal(l: Literal) -> Dynamic {
    option_dynamic(&l.value())
}

fn strings(items: &[&str]) -> Dynamic {
    Dynamic::from_array(items.iter().map(|s| Dynamic::from(s.to_string())).collect())
}

/// A declaration as the map `methods()` gives for it.
fn declaration_map(spec: &MethodSpec) -> Map {
    let mut m = Map::new();
    m.insert("name".into(), spec.name.into());
    m.insert("aliases".into(), strings(spec.aliases));
    m.insert("summary".into(), spec.summary.into());
    let r = spec.reference;
    let reference: Map = [("authors", r.authors), ("venue", r.venue), ("code", r.code), ("commit", r.commit)]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    m.insert("reference".into(), reference.into());
    let options: Array = spec
        .options
        .iter()
        .map(|o| {
            let mut x = Map::new();
            x.insert("name".into(), o.name.into());
            x.insert("default".into(), literal(o.default));
            x.insert("valid".into(), range_text(o.valid).into());
            x.insert("help".into(), o.help.into());
            Dynamic::from_map(x)
        })
        .collect();
    m.insert("options".into(), options.into());
    let variants: Array = spec
        .variants
        .iter()
        .map(|v| {
            let mut x = Map::new();
            x.insert("name".into(), v.name.into());
            x.insert("help".into(), v.help.into());
            x.insert("values".into(), Dynamic::from_map(v.values.iter().map(|(k, l)| ((*k).into(), literal(*l))).collect()));
            Dynamic::from_map(x)
        })
        .collect();
    m.insert("variants".into(), variants.into());
    let (most, beyond): (Dynamic, &str) = match spec.modalities {
        Modalities::Any => ("any".into(), ""),
        Modalities::AtMost(n, why) => (Dynamic::from_int(n as i64), why),
    };
    m.insert("modalities".into(), most);
    m.insert("beyond".into(), beyond.into());
    let keeps: Dynamic = match spec.keeps_state {
        Keeps::Never => false.into(),
        Keeps::Always => true.into(),
        Keeps::When(_, when) => when.into(),
    };
    m.insert("keeps_state".into(), keeps);
    m.insert("terms".into(), strings(spec.terms));
    m.insert("diagnostics".into(), strings(spec.diagnostics));
    let knob = match spec.knob {
        None => Dynamic::UNIT,
        Some(k) => {
            let mut x = Map::new();
            x.insert("key".into(), k.key.into());
            x.insert("values".into(), Dynamic::from_array(k.values.iter().map(|l| literal(*l)).collect()));
            Dynamic::from_map(x)
        }
    };
    m.insert("knob".into(), knob);
    m
}

/// `help("method")`, written from the registry so it names every method (once per process).
fn method_help() -> &'static str {
    static HELP: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HELP.get_or_init(help_text)
}

fn help_text() -> String {
    let names: Vec<String> = methods::ALL.iter().map(|s| format!("\"{}\"", s.name)).collect();
    format!(
        "A training method, built once so it keeps its state across steps and epochs. By name, one of {}, with its options (unknown options and values out of range are errors; methods() lists each one's options, ranges and variants; docs/methods.md). From closures, your own method (docs/your-method.md): loss: |ctx| a scalar tensor or #{{ total, <term>: tensor or number }}; gradients: |ctx, grads| the map name -> gradient the optimizer applies; begin_epoch: |ectx| work before each epoch; predict: |out| test-time fusion, the [N, classes] scores evaluate(m, split, #{{ method }}) and the recipes predict with; state: its initial value (saved with checkpoints); substeps (1); options (its knobs, read as ctx.options); seed (of ctx.randn; default the run's in a recipe); head: #{{ rule: \"cosine\", scale }} for MMCosine's logits. Pass it as method: to train_step, train_epoch or a recipe's cfg.",
        names.join(", ")
    )
}

pub fn register(engine: &mut Engine, docs: &mut Docs) {
    engine.register_type_with_name::<ScriptMethod>("Method");
    super::scripted::register(engine, docs);
    let a = "train";
    docs.add(a, "method", "method(name, #{ options }) | method(#{ name, loss, gradients, begin_epoch, predict, state, substeps, options, seed, head })",
        method_help(),
        "let meth = method(\"ogm-ge\", #{ alpha: 0.8 }); let mine = method(#{ name: \"mine\", loss: |ctx| cross_entropy(ctx.forward().fused, ctx.labels) });");
    engine.register_fn("method", |name: &str, opts: Map| native(name, &opts));
    engine.register_fn("method", |name: &str| native(name, &Map::new()));
    engine.register_fn("method", |ctx: NativeCallContext, spec: Map| -> RhaiResult<ScriptMethod> {
        let def = super::scripted::define(&ctx, &spec)?;
        Ok(ScriptMethod::scripted(def, None))
    });
    docs.add(
        a,
        "methods",
        "methods()",
        "Every native method's declaration, in Table II's order, then the paper's two objectives, then BalanceBenchmark's: an array of #{ name, aliases, summary, reference: #{ authors, venue, code, commit }, options: [#{ name, default, valid, help }], variants: [#{ name, help, values }], modalities (\"any\" or a number), beyond (why not more), keeps_state, terms, diagnostics, knob: #{ key, values } or () }. Names only: methods().map(|m| m.name).",
        "for m in methods() { print(`${m.name}: ${m.summary}`); }",
    );
    engine.register_fn("methods", || -> Array { methods::ALL.iter().map(|s| Dynamic::from_map(declaration_map(s))).collect() });
    docs.add(
        a,
        "declaration",
        "meth.declaration",
        "What the method is, as methods() gives it (a scripted method's too).",
        "print(method(\"agm\").declaration.options);",
    );
    engine.register_get("declaration", |m: &mut ScriptMethod| declaration_map(m.method.borrow().spec));
    docs.add(
        a,
        "options",
        "meth.options",
        "The method's options with every default filled in (what run records store); a scripted method's options map.",
        "print(method(\"agm\").options);",
    );
    engine.register_get("options", |m: &mut ScriptMethod| -> Map {
        match &m.origin {
            Origin::Scripted { def, .. } => def.options.clone(),
            Origin::Native { .. } => m.method.borrow().options.values.iter().map(|(k, v)| ((*k).into(), option_dynamic(v))).collect(),
        }
    });
    engine.register_get("name", |m: &mut ScriptMethod| m.method.borrow().name().to_string());
    engine.register_fn("to_string", |m: &mut ScriptMethod| format!("Method({})", m.method.borrow().name()));
    engine.register_fn("to_debug", |m: &mut ScriptMethod| format!("Method({})", m.method.borrow().name()));
    docs.add(a, "state", "meth.state()", "What the method carries across steps and epochs: for a native method a map name -> Tensor (empty for stateless ones: AGM's running scores, PMR's prototypes, MLA's projection, D&R's initial encoder weights); for a scripted method its ctx.state as it is.", "let st = meth.state();");
    engine.register_fn("state", |m: &mut ScriptMethod| state_value(m));
    docs.add(a, "checkpoint_state", "meth.checkpoint_state()", "The state as the named tensors a checkpoint stores (the recipes save it in each checkpoint and give it back with load_state on resume); an error names a scripted method's state value that cannot be saved.", "let named = meth.checkpoint_state();");
    engine.register_fn("checkpoint_state", |m: &mut ScriptMethod| checkpoint_state(m));
    docs.add(a, "load_state", "meth.load_state(map)", "Restores what checkpoint_state() (or a native method's state()) returned, so a resumed run continues with the same running scores, weights or script state; a scripted method also takes a plain state map.", "meth.load_state(ck.method);");
    engine.register_fn("load_state", |m: &mut ScriptMethod, state: Map| load_state_map(m, &state));
    docs.add(a, "fresh", "meth.fresh([seed])", "The same method at its initial state (a recipe starts every run from one); seed replaces the method's seed unless it was built with one.", "let again = meth.fresh(1);");
    engine.register_fn("fresh", |m: &mut ScriptMethod| m.fresh(None));
    engine.register_fn("fresh", |m: &mut ScriptMethod, seed: rhai::INT| m.fresh(Some(seed.max(0) as u64)));
    docs.add(
        a,
        "source",
        "meth.source",
        "Where a scripted method was defined: #{ file, hash, text } (run records keep file and hash); () for a native method.",
        "print(meth.source.hash);",
    );
    engine.register_get("source", |m: &mut ScriptMethod| source_map(m));
    docs.add(
        a,
        "scripted",
        "meth.scripted",
        "true for a method built from closures with method(#{ ... }).",
        "if meth.scripted { print(meth.source.file); }",
    );
    engine.register_get("scripted", |m: &mut ScriptMethod| matches!(m.origin, Origin::Scripted { .. }));
}
