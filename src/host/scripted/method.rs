//! A training method whose loss, gradient rule and epoch work are Rhai closures: the core's
//! `Method` trait implemented by calling them, so a scripted method runs wherever a native one
//! does (train_step, train_epoch, the recipes, tables, sweeps) through the same trainer step.

use super::caller;
use super::context::{Draws, EpochData, EpochHook, MethodShared, StepData, StepHook};
use super::state;
use crate::error::{Error, Result};
use crate::host::tensor::ScriptTensor;
use crate::tensor::Tensor;
use crate::train::declaration::{Configured, Keeps, MethodSpec, Modalities, Reference};
use crate::train::fusion::HeadRule;
use crate::train::method::{intern, require_additive_head, EpochContext, Method, StepContext, StepLoss};
use crate::train::model::Model;
use crate::train::options::{opt, Literal, OptionSpec, Resolved, Valid, Value};
use rhai::{Dynamic, EvalAltResult, FnPtr, Map};
use std::rc::Rc;

/// Where a scripted method was defined: run records keep the text and its checksum, so a table
/// says which code made each row.
#[derive(Clone, Debug)]
pub struct Source {
    /// The script or module file (or "repl").
    pub file: String,
    pub text: String,
    pub hash: String,
}

/// What `method(#{ ... })` was given; each run of a recipe builds a fresh method from it.
pub struct Definition {
    pub name: &'static str,
    pub options: Map,
    pub loss: FnPtr,
    pub gradients: Option<FnPtr>,
    pub begin_epoch: Option<FnPtr>,
    /// Test-time fusion: `|out| scores [N, C]` from the split's fused and per-modality logits.
    pub predict: Option<FnPtr>,
    pub substeps: usize,
    pub head: Option<HeadRule>,
    pub initial_state: Dynamic,
    pub seed: u64,
    /// Whether the seed was given (a recipe then keeps it rather than using the run's).
    pub seed_given: bool,
    pub source: Source,
    /// The script-function libraries where the method was defined (its closures live there).
    pub libs: Vec<rhai::Shared<rhai::Module>>,
    /// Its declaration, produced at run time (`declare`).
    pub spec: &'static MethodSpec,
}

pub struct ScriptedMethod {
    pub def: Rc<Definition>,
    pub seed: u64,
    pub shared: Rc<MethodShared>,
    /// The loss hook's view of the current step, reused by its gradients hook.
    pending: Option<Rc<StepData>>,
    /// The trained model's parameters by name (the same tensors every step: listed once). The
    /// model is held so the cache cannot outlive it and match a new model at the same address.
    params: Option<(crate::host::handles::ScriptModel, Rc<Vec<(String, Tensor)>>)>,
    /// Group learning rates the begin_epoch hook set (`ectx.set_lr`), for the trainer to apply.
    lr_changes: Vec<(String, f64)>,
}

/// The options as run records store them (numbers, bools, strings, lists of numbers; anything
/// else as its text).
fn resolved(name: &'static str, options: &Map, seed: u64) -> Resolved {
    let mut values: Vec<(&'static str, Value)> = Vec::new();
    for (k, v) in options {
        let v = v.flatten_clone();
        let value = crate::host::convert::option_value(&v).unwrap_or_else(|| Value::Text(v.to_string()));
        values.push((intern(k), value));
    }
    values.push(("seed", Value::Int(seed as i64)));
    Resolved { method: name, values }
}

/// A scripted method's declaration, produced when it is defined: its name, its options as given
/// (any value: the script checks its own), any number of modalities (its context is keyed by
/// modality name), state kept. What it logs is learnt as it runs (`train::term_kinds`). Leaked
/// once per definition, as a native declaration is static.
pub fn declare(name: &'static str, options: &Map, seed: u64) -> &'static MethodSpec {
    let declared: Vec<OptionSpec> = resolved(name, options, seed)
        .values
        .into_iter()
        .map(|(k, v)| {
            let default = match v {
                Value::Float(x) => Literal::Float(x),
                Value::Int(i) => Literal::Int(i),
                Value::Bool(b) => Literal::Bool(b),
                Value::Text(t) => Literal::Text(intern(&t)),
                Value::List(l) => Literal::List(Box::leak(l.into_boxed_slice())),
            };
            opt(k, default, Valid::Any, "")
        })
        .collect();
    Box::leak(Box::new(MethodSpec {
        name,
        aliases: &[],
        summary: "a method written in Rhai (docs/your-method.md)",
        reference: Reference::NONE,
        options: Box::leak(declared.into_boxed_slice()),
        variants: &[],
        modalities: Modalities::Any,
        keeps_state: Keeps::Always,
        terms: &[],
        diagnostics: &[],
        knob: None,
        build: |_, _| Err(Error::arg("a scripted method is built from its closures: method(#{ name, loss: |ctx| ... })")),
    }))
}

impl ScriptedMethod {
    /// A method at its initial state; `seed` replaces the definition's unless that one was given.
    pub fn new(def: Rc<Definition>, seed: Option<u64>) -> ScriptedMethod {
        let seed = match seed {
            Some(s) if !def.seed_given => s,
            _ => def.seed,
        };
        let shared = Rc::new(MethodShared {
            name: def.name,
            options: def.options.clone(),
            state: std::cell::RefCell::new(def.initial_state.clone()),
            args: Default::default(),
        });
        ScriptedMethod { def, seed, shared, pending: None, params: None, lr_changes: Vec::new() }
    }

    /// A method at its initial state, with its declaration and options, as the trainer runs it.
    pub fn configured(def: Rc<Definition>, seed: Option<u64>) -> (Configured, Rc<MethodShared>) {
        let m = ScriptedMethod::new(def.clone(), seed);
        let shared = m.shared.clone();
        (Configured { spec: def.spec, options: resolved(def.name, &def.options, m.seed), rule: Box::new(m) }, shared)
    }

    /// The state as a checkpoint stores it.
    pub fn saved_state(&self) -> Result<Vec<(String, Tensor)>> {
        state::encode(&self.shared.state.borrow())
    }

    /// Restores a state: what `saved_state` wrote, or a plain state map.
    pub fn restore(&self, named: &[(String, Tensor)]) -> Result<()> {
        *self.shared.state.borrow_mut() = state::decode(self.def.name, named)?;
        Ok(())
    }

    fn model_handle(&self, model: &Model) -> Result<crate::host::handles::ScriptModel> {
        caller::current_model().filter(|m| std::ptr::eq(m.0.as_ref(), model)).ok_or_else(|| {
            Error::arg(format!(
                "{}: a scripted method trains only the model of the train_step / train_epoch call that runs it",
                self.def.name
            ))
        })
    }

    /// Runs one hook, turning its error into one at the hook's own line that says which hook,
    /// epoch and step failed.
    fn run(&self, hook: &FnPtr, which: &str, place: &str, model: &Model, args: Vec<Dynamic>) -> Result<Dynamic> {
        caller::call(hook, &self.def.libs, model, args).map_err(|e| {
            let place = match self.missing_state_key(&e) {
                Some(note) => format!("{place}; {note}"),
                None => place.to_string(),
            };
            Error::script(locate(e, &format!("{which} hook of method \"{}\"", self.def.name), &place))
        })
    }

    /// For a hook that read a key its state lacks (`ctx.state.k`, or `ctx.state.k += 1`, which
    /// starts from () and fails at the operator): the keys the state holds and how to start one.
    fn missing_state_key(&self, err: &EvalAltResult) -> Option<String> {
        let mut cur = err;
        while let EvalAltResult::ErrorInFunctionCall(_, _, inner, _) | EvalAltResult::ErrorInModule(_, inner, _) = cur {
            cur = inner;
        }
        let key = match cur {
            EvalAltResult::ErrorPropertyNotFound(key, _) => Some(key.clone()),
            // The key is read from the line where the method's file is known (not in the REPL).
            EvalAltResult::ErrorFunctionNotFound(sig, pos) if sig.contains("()") => state_key_before(&self.def.source.text, *pos),
            _ => return None,
        };
        let state = self.shared.state.borrow();
        let map = state.read_lock::<Map>()?;
        let mut held: Vec<&str> = map.keys().map(|k| k.as_str()).collect();
        held.sort();
        let held = if held.is_empty() { "nothing".to_string() } else { held.join(", ") };
        match key {
            Some(key) if map.contains_key(key.as_str()) => None, // the missing key was another map's
            Some(key) => Some(format!(
                "ctx.state holds {held}, not {key}: give it a start value in the method's state: #{{ {key}: ... }}, or test with `\"{key}\" in ctx.state`"
            )),
            None => Some(format!(
                "ctx.state holds {held}; `ctx.state.k += ...` on a key the state lacks starts from (): give every key a start value in the method's state: #{{ k: ... }}"
            )),
        }
    }

    fn hook_error(&self, which: &str, place: &str, msg: String) -> Error {
        Error::arg(format!("{} (the {which} hook of method \"{}\", {place})", msg, self.def.name))
    }
}

/// Names the hook in a hook's error: the closure's call frame ("anon$..." to Rhai) becomes the
/// hook and place, and the innermost message says the place too (it is printed first).
fn locate(err: Box<EvalAltResult>, hook: &str, place: &str) -> Box<EvalAltResult> {
    fn innermost(e: &mut EvalAltResult, place: &str) {
        match e {
            EvalAltResult::ErrorInFunctionCall(_, _, inner, _) | EvalAltResult::ErrorInModule(_, inner, _) => innermost(inner, place),
            EvalAltResult::ErrorRuntime(v, _) => *v = format!("{v} ({place})").into(),
            other => {
                let pos = other.position();
                let text = other.to_string();
                let text = match text.rfind(" (line ") {
                    Some(i) if text.ends_with(')') => text[..i].to_string(),
                    _ => text,
                };
                *other = EvalAltResult::ErrorRuntime(format!("{text} ({place})").into(), pos);
            }
        }
    }
    let mut err = err;
    innermost(&mut err, place);
    match *err {
        EvalAltResult::ErrorInFunctionCall(name, src, inner, pos) if name.starts_with("anon$") => {
            Box::new(EvalAltResult::ErrorInFunctionCall(format!("hook:{hook}"), src, inner, pos))
        }
        other => Box::new(other),
    }
}

/// The key in `ctx.state.key += ...` written just before `pos` (an operator) in `text`.
fn state_key_before(text: &str, pos: rhai::Position) -> Option<String> {
    let line = text.lines().nth(pos.line()?.checked_sub(1)?)?;
    let before: String = line.chars().take(pos.position()?.saturating_sub(1)).collect();
    let path: String = before.trim_end().chars().rev().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '.').collect();
    let path: String = path.chars().rev().collect();
    let (_, key) = path.rsplit_once("state.")?;
    (!key.is_empty() && !key.contains('.')).then(|| key.to_string())
}

fn place(epoch: usize, step: i64, batch: (usize, usize)) -> String {
    format!("epoch {epoch}, batch {} of {}, step {step}", batch.0 + 1, batch.1)
}

fn scalar_value(t: &Tensor) -> Result<f64> {
    crate::tensor::check("loss", t.f_detach().and_then(|t| t.f_double_value(&[])))
}

impl Method for ScriptedMethod {
    fn prepare(&self, model: &Model) -> Result<()> {
        if let Some(rule) = self.def.head {
            require_additive_head(self.def.name, model)?;
            model.head_rule.set(rule);
        }
        Ok(())
    }

    fn substeps(&self, _model: &Model) -> usize {
        self.def.substeps
    }

    fn begin_epoch(&mut self, ctx: &EpochContext) -> Result<()> {
        let Some(hook) = self.def.begin_epoch.clone() else { return Ok(()) };
        let model = self.model_handle(ctx.model)?;
        let data = Rc::new(EpochData {
            shared: self.shared.clone(),
            model,
            lr: ctx.opt.lr,
            group_lrs: ctx.opt.groups().iter().map(|g| (g.name.clone(), g.lr)).collect(),
            lr_changes: Default::default(),
            train: ctx.train.clone(),
            val: ctx.val.cloned(),
            batch_size: ctx.batching.batch_size,
            epoch: ctx.epoch,
            quiet: ctx.quiet,
            // Epoch draws come from their own stream, apart from every step's.
            draws: Draws::new(self.seed ^ 0x5eed_e90c_0000_0000, ctx.epoch as u64, ctx.model.device()),
        });
        let where_ = format!("before epoch {}", ctx.epoch);
        let out = self.run(&hook, "begin_epoch", &where_, ctx.model, vec![Dynamic::from(EpochHook(data.clone()))]);
        data.draws.release();
        out.map(drop)?;
        self.lr_changes = data.lr_changes.take();
        state::check_savable("ctx.state", &self.shared.state.borrow()).map_err(|e| self.hook_error("begin_epoch", &where_, e.to_string()))
    }

    fn lr_changes(&mut self) -> Vec<(String, f64)> {
        std::mem::take(&mut self.lr_changes)
    }

    fn predict(&mut self, model: &Model, fused: &Tensor, per: &[Tensor]) -> Result<Option<Tensor>> {
        let Some(hook) = self.def.predict.clone() else { return Ok(None) };
        let out = super::context::outputs_map(model, fused, per);
        let got = self.run(&hook, "predict", "at evaluation", model, vec![Dynamic::from_map(out)])?;
        let scores = got.try_cast::<ScriptTensor>().ok_or_else(|| {
            self.hook_error("predict", "at evaluation", "the predict hook must return a tensor of scores [N, classes]".into())
        })?;
        let t = scores.tensor();
        let want = [fused.size()[0], model.classes];
        if t.size() != want {
            return Err(self.hook_error(
                "predict",
                "at evaluation",
                format!("the predict hook returned a {:?} tensor; it must be [N, classes] = {want:?}", t.size()),
            ));
        }
        Ok(Some(t.shallow_clone()))
    }

    fn loss(&mut self, ctx: &StepContext) -> Result<StepLoss> {
        self.pending = None;
        let model = self.model_handle(ctx.model)?;
        let params = match &self.params {
            Some((m, p)) if Rc::ptr_eq(&m.0, &model.0) => p.clone(),
            _ => {
                let p = Rc::new(model.0.trainable_parameters());
                self.params = Some((model.clone(), p.clone()));
                p
            }
        };
        let data = Rc::new(StepData {
            shared: self.shared.clone(),
            model,
            inputs: ctx.inputs.iter().map(|t| t.shallow_clone()).collect(),
            labels: ctx.labels.shallow_clone(),
            indices: ctx.indices.shallow_clone(),
            keep: ctx.keep.map(|k| k.shallow_clone()),
            epoch: ctx.epoch,
            step: ctx.step,
            batch: ctx.batch,
            substep: ctx.substep,
            params,
            draws: Draws::new(self.seed, ctx.step as u64, ctx.model.device()),
            outputs: Default::default(),
            lr: ctx.lr,
            group_lrs: ctx.group_lrs.to_vec(),
        });
        let where_ = place(ctx.epoch, ctx.step, ctx.batch);
        let out = self.run(&self.def.loss, "loss", &where_, ctx.model, vec![Dynamic::from(StepHook(data.clone()))]);
        data.draws.release();
        let out = out?.flatten();
        let err = |msg: String| self.hook_error("loss", &where_, msg);
        state::check_savable("ctx.state", &self.shared.state.borrow()).map_err(|e| err(e.to_string()))?;
        let (total, rest) = if let Some(t) = out.clone().try_cast::<ScriptTensor>() {
            (t.tensor().shallow_clone(), Map::new())
        } else if let Some(mut m) = out.clone().try_cast::<Map>() {
            let total =
                m.remove("total").ok_or_else(|| err("the loss map has no \"total\": return #{ total: loss, <term>: ... }".into()))?;
            let total = total.flatten().try_cast::<ScriptTensor>().ok_or_else(|| err("the loss map's total must be a tensor".into()))?;
            (total.tensor().shallow_clone(), m)
        } else {
            return Err(err(format!(
                "the loss hook must return a scalar tensor or a map #{{ total, <term>: ... }}, got {}",
                crate::host::convert::type_label(&out)
            )));
        };
        if total.numel() != 1 {
            return Err(err(format!("the loss must be a scalar tensor, got shape {:?}: reduce it with .mean() or .sum()", total.size())));
        }
        if !total.requires_grad() {
            return Err(err("the loss does not depend on the model's parameters (it has no autograd graph): compute it from ctx.forward()'s outputs, not from forward(), detached tensors or constants".into()));
        }
        let total = crate::tensor::check("loss", total.f_reshape([] as [i64; 0]).and_then(|t| t.f_to_kind(tch::Kind::Float)))?;
        let mut terms = Vec::new();
        let mut diagnostics = Vec::new();
        for (k, v) in rest {
            let v = v.flatten();
            if let Some(t) = v.clone().try_cast::<ScriptTensor>() {
                if t.tensor().numel() != 1 {
                    return Err(err(format!("loss term {k} must be a scalar tensor (a batch mean), got shape {:?}", t.tensor().size())));
                }
                terms.push((intern(&k), t.tensor().shallow_clone()));
            } else if let Ok(x) = v.as_float() {
                diagnostics.push((intern(&k), x));
            } else if let Ok(i) = v.as_int() {
                diagnostics.push((intern(&k), i as f64));
            } else if let Ok(b) = v.as_bool() {
                diagnostics.push((intern(&k), b as i64 as f64));
            } else {
                return Err(err(format!("loss term {k} must be a tensor or a number, got {}", crate::host::convert::type_label(&v))));
            }
        }
        // Values are read now so a term that is NaN stops the step like the total does.
        for (_, t) in &terms {
            scalar_value(t)?;
        }
        self.pending = Some(data);
        Ok(StepLoss { total, terms, diagnostics })
    }

    fn adjust_gradients(&mut self, ctx: &StepContext, params: &[(String, Tensor)], grads: &mut [Tensor]) -> Result<()> {
        let Some(hook) = self.def.gradients.clone() else { return Ok(()) };
        let data = match self.pending.take() {
            Some(d) => d,
            None => return Err(Error::arg(format!("{}: gradients hook without a loss hook before it in this step", self.def.name))),
        };
        let where_ = place(ctx.epoch, ctx.step, ctx.batch);
        let mut map = Map::new();
        for ((name, _), g) in params.iter().zip(grads.iter()) {
            map.insert(name.as_str().into(), if g.defined() { Dynamic::from(ScriptTensor::new(g.shallow_clone())) } else { Dynamic::UNIT });
        }
        // Shared, so changes the hook makes to the map in place are seen here too.
        let shared_map = Dynamic::from_map(map).into_shared();
        let out = self.run(&hook, "gradients", &where_, ctx.model, vec![Dynamic::from(StepHook(data.clone())), shared_map.clone()]);
        data.draws.release();
        let out = out?.flatten();
        let err = |msg: String| self.hook_error("gradients", &where_, msg);
        state::check_savable("ctx.state", &self.shared.state.borrow()).map_err(|e| err(e.to_string()))?;
        let result: Map = if out.is_unit() {
            shared_map.flatten().try_cast::<Map>().unwrap_or_default()
        } else {
            out.clone().try_cast::<Map>().ok_or_else(|| {
                err(format!(
                    "the gradients hook must return the gradient map (name -> tensor), or () after changing it in place; got {}",
                    crate::host::convert::type_label(&out)
                ))
            })?
        };
        for (name, v) in result {
            let Some(i) = params.iter().position(|(n, _)| n == name.as_str()) else {
                let near: Vec<&str> =
                    params.iter().map(|(n, _)| n.as_str()).filter(|n| n.ends_with(name.rsplit('.').next().unwrap_or(""))).take(3).collect();
                return Err(err(format!(
                    "the gradients map names \"{name}\", which is not a trainable parameter{}; ctx.params(modality) lists them",
                    if near.is_empty() { String::new() } else { format!(" (like {})", near.join(", ")) }
                )));
            };
            let v = v.flatten();
            if v.is_unit() {
                grads[i] = Tensor::new();
                continue;
            }
            let g = v.clone().try_cast::<ScriptTensor>().ok_or_else(|| {
                err(format!("the gradient of {name} must be a tensor (or () for no update), got {}", crate::host::convert::type_label(&v)))
            })?;
            let p = &params[i].1;
            if g.tensor().size() != p.size() {
                return Err(err(format!("the gradient of {name} has shape {:?}, but the parameter is {:?}", g.tensor().size(), p.size())));
            }
            grads[i] = crate::tensor::check(
                "gradients",
                g.tensor().f_detach().and_then(|t| t.f_to_kind(p.kind())).and_then(|t| t.f_to_device(p.device())),
            )?;
        }
        Ok(())
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        // The host saves a scripted method's state through saved_state, which reports values
        // that cannot be saved; this trait form is for callers that only read.
        self.saved_state().unwrap_or_default()
    }

    fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        self.restore(state)
    }
}
