//! What a scripted method's hooks receive: `ctx` (a step: the batch, the model with its graph,
//! the method's state) and `ectx` (before an epoch: the model, the splits, the optimizer's
//! settings). Everything is keyed by the model's modality names, never by position, so a method
//! written against this API holds when models take more than two modalities.

use crate::data::Split;
use crate::error::{Error, Result};
use crate::host::handles::ScriptModel;
use crate::host::tensor::ScriptTensor;
use crate::host::RhaiResult;
use crate::rng::{hold_torch_seed, Rng, TorchSeedHold};
use crate::tensor::{check, ops, Kind, Tensor};
use crate::train::method::Selection;
use rhai::{Array, Dynamic, Map};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// What every hook of one method shares: its name, options, state and the current call's
/// extra arguments.
pub struct MethodShared {
    pub name: &'static str,
    pub options: Map,
    pub state: RefCell<Dynamic>,
    /// The keys of the train_step / train_epoch call beyond its own and `method` (`ctx.args`):
    /// how a recipe hands a method per-stage values, such as the adaptive stage's weight table.
    pub args: RefCell<Map>,
}

/// The random numbers of one hook call: libtorch's generator seeded from (method seed, index)
/// at the first draw and held until the hook returns. `index` is the global step for a step's
/// hooks (as the native methods seed their noise), so a resumed run draws the same numbers; the
/// k-th hook of a step that draws starts from the stream's k-th value.
pub struct Draws {
    seed: u64,
    index: u64,
    opened: Cell<usize>,
    hold: RefCell<Option<TorchSeedHold>>,
    device: tch::Device,
}

impl Draws {
    pub fn new(seed: u64, index: u64, device: tch::Device) -> Draws {
        Draws { seed, index, opened: Cell::new(0), hold: RefCell::new(None), device }
    }

    fn draw(&self, op: &str, shape: &[i64], uniform: bool) -> Result<Tensor> {
        ops::check_shape(op, shape)?;
        if self.hold.borrow().is_none() {
            let mut stream = Rng::stream(self.seed, self.index);
            let mut seed = stream.next_u64();
            for _ in 0..self.opened.get() {
                seed = stream.next_u64();
            }
            self.opened.set(self.opened.get() + 1);
            *self.hold.borrow_mut() = Some(hold_torch_seed(seed));
        }
        let opts = (Kind::Float, self.device);
        check(op, if uniform { Tensor::f_rand(shape, opts) } else { Tensor::f_randn(shape, opts) })
    }

    /// Ends the hook's draws (the generator goes back to other threads).
    pub fn release(&self) {
        self.hold.borrow_mut().take();
    }
}

/// A step as its hooks see it.
pub struct StepData {
    pub shared: Rc<MethodShared>,
    pub model: ScriptModel,
    /// The batch's inputs in the model's modality order.
    pub inputs: Vec<Tensor>,
    pub labels: Tensor,
    pub indices: Tensor,
    /// [B, N] keep masks of an epoch over a resampled view (`Method::epoch_view`), else None.
    pub keep: Option<Tensor>,
    pub epoch: usize,
    pub step: i64,
    pub batch: (usize, usize),
    pub substep: usize,
    /// The parameters the optimizer updates, by PyTorch name, sorted.
    pub params: Rc<Vec<(String, Tensor)>>,
    pub draws: Draws,
    /// The step's last `ctx.forward()` with every input (not a `zero:` one): what the
    /// gradients hook reads as `ctx.outputs` (widths, logits) without stashing them in state.
    pub outputs: std::cell::RefCell<Option<Map>>,
    /// The optimizer's learning rate and each parameter group's, this step.
    pub lr: f64,
    pub group_lrs: Vec<(String, f64)>,
}

#[derive(Clone)]
pub struct StepHook(pub Rc<StepData>);

/// Before an epoch, as the begin_epoch hook sees it.
pub struct EpochData {
    pub shared: Rc<MethodShared>,
    pub model: ScriptModel,
    pub lr: f64,
    /// Each parameter group's learning rate this epoch.
    pub group_lrs: Vec<(String, f64)>,
    /// Rates set by `ectx.set_lr(group, lr)`, applied by the trainer after the hook.
    pub lr_changes: std::cell::RefCell<Vec<(String, f64)>>,
    pub train: Split,
    pub val: Option<Split>,
    pub batch_size: usize,
    pub epoch: usize,
    pub quiet: bool,
    pub draws: Draws,
}

#[derive(Clone)]
pub struct EpochHook(pub Rc<EpochData>);

/// A forward pass's per-modality tensors (`out.logits`, `out.features`): `out.logits.audio` or
/// `out.logits["audio"]`, and an unknown modality is an error naming the model's, where a plain
/// map would give () and a puzzling error further on.
#[derive(Clone)]
pub struct PerModality {
    what: &'static str,
    entries: Rc<Vec<(String, Tensor)>>,
}

impl PerModality {
    fn get(&self, name: &str) -> RhaiResult<ScriptTensor> {
        match self.entries.iter().find(|(n, _)| n == name) {
            Some((_, t)) => Ok(ScriptTensor::new(t.shallow_clone())),
            None => Err(Error::arg(format!(
                "{}: the model has no modality \"{name}\"; its modalities are {} (ctx.modalities)",
                self.what,
                self.names().join(", ")
            ))
            .into()),
        }
    }

    fn names(&self) -> Vec<String> {
        self.entries.iter().map(|(n, _)| n.clone()).collect()
    }

    fn show(&self) -> String {
        let parts: Vec<String> = self.entries.iter().map(|(n, t)| format!("{n}: Tensor{:?}", t.size())).collect();
        format!("{}({})", self.what, parts.join(", "))
    }
}

fn tensor(t: &Tensor) -> Dynamic {
    Dynamic::from(ScriptTensor::new(t.shallow_clone()))
}

fn modality_names(model: &ScriptModel) -> Array {
    model.0.modalities.iter().map(|m| Dynamic::from(m.clone())).collect()
}

fn strings(op: &str, what: &str, v: &Dynamic) -> RhaiResult<Vec<String>> {
    let v = v.flatten_clone();
    if let Ok(s) = v.clone().into_string() {
        return Ok(vec![s]);
    }
    v.read_lock::<Array>().and_then(|a| a.iter().map(|x| x.clone().into_string().ok()).collect::<Option<Vec<_>>>()).ok_or_else(|| {
        Error::arg(format!("{op}: {what} must be a name or an array of names, found {}", crate::host::convert::type_label(&v))).into()
    })
}

impl StepHook {
    /// `ctx.forward(#{ train, zero })`: the model on the batch with the autograd graph on.
    pub fn forward(&self, opts: &Map) -> RhaiResult<Map> {
        let op = "ctx.forward";
        let o = crate::host::options::Options::new(op, opts, &["train", "zero"])?;
        let d = &self.0;
        let model = &d.model.0;
        let zero = match o.get("zero") {
            None => Vec::new(),
            Some(v) => strings(op, "zero", v)?,
        };
        if let Some(bad) = zero.iter().find(|z| !model.modalities.contains(z)) {
            return Err(Error::arg(format!(
                "{op}: zero names \"{bad}\", which is not one of the model's modalities ({})",
                model.modalities.join(", ")
            ))
            .into());
        }
        let mut inputs = Vec::with_capacity(d.inputs.len());
        for (name, x) in model.modalities.iter().zip(&d.inputs) {
            inputs.push(if zero.contains(name) { check(op, x.f_zeros_like())? } else { x.shallow_clone() });
        }
        let refs: Vec<&Tensor> = inputs.iter().collect();
        let fwd = model.forward_all(&refs, o.boolean("train", true)?)?;
        let logits = model.modalities.iter().zip(&fwd.logits.per).map(|(n, t)| (n.clone(), t.shallow_clone())).collect();
        let features = model.modalities.iter().zip(&fwd.features).map(|(n, t)| (n.clone(), t.shallow_clone())).collect();
        let mut out = Map::new();
        out.insert("fused".into(), tensor(&fwd.logits.fused));
        out.insert("logits".into(), Dynamic::from(PerModality { what: "logits", entries: Rc::new(logits) }));
        out.insert("features".into(), Dynamic::from(PerModality { what: "features", entries: Rc::new(features) }));
        if zero.is_empty() {
            *d.outputs.borrow_mut() = Some(out.clone());
        }
        Ok(out)
    }

    /// `ctx.without(out, keep, #{ removal })`: the fused logits of `out` (a `ctx.forward()`
    /// result) with the modalities where `keep` [B, N] is 0 removed per sample (M9).
    pub fn without(&self, out: &Map, keep: &ScriptTensor, opts: &Map) -> RhaiResult<ScriptTensor> {
        let op = "ctx.without";
        let o = crate::host::options::Options::new(op, opts, &["removal"])?;
        let how = crate::train::removal::Removal::parse(&o.string("removal", "logit")?)?;
        let d = &self.0;
        let model = &d.model.0;
        let field = |name: &str| {
            out.get(name).cloned().ok_or_else(|| Error::arg(format!("{op}: its first argument must be what ctx.forward() returned (a map with fused, logits and features); it has no \"{name}\"")))
        };
        let fused = field("fused")?.try_cast::<ScriptTensor>().ok_or_else(|| Error::arg(format!("{op}: out.fused must be a tensor")))?;
        let per = |name: &str| -> RhaiResult<Vec<Tensor>> {
            let p = field(name)?
                .try_cast::<PerModality>()
                .ok_or_else(|| Error::arg(format!("{op}: out.{name} must be the per-modality map ctx.forward() returned")))?;
            Ok(p.entries.iter().map(|(_, t)| t.shallow_clone()).collect())
        };
        let fwd = crate::train::model::Forward {
            logits: crate::train::fusion::Logits { fused: fused.tensor().shallow_clone(), per: per("logits")? },
            features: per("features")?,
        };
        let inputs: Vec<&Tensor> = d.inputs.iter().collect();
        let keep = check(op, keep.tensor().f_to_kind(Kind::Float))?;
        Ok(ScriptTensor::new(crate::train::removal::fused_without(model, &inputs, &fwd, &keep, how, true)?))
    }

    /// `ctx.frozen_head(out, #{ bias })`: each modality's logits from `out.features` through the
    /// head with the head's tensors detached (DGL's routing: a loss on them trains the encoders
    /// only), keyed by modality as `out.logits`.
    pub fn frozen_head(&self, out: &Map, opts: &Map) -> RhaiResult<Dynamic> {
        let op = "ctx.frozen_head";
        let o = crate::host::options::Options::new(op, opts, &["bias"])?;
        let whole = match o.string("bias", "full")?.as_str() {
            "full" => true,
            "split" => false,
            other => {
                return Err(Error::arg(format!(
                    "{op}: bias must be \"full\" (the head's whole bias, DGL's code) or \"split\" (b/N), got \"{other}\""
                ))
                .into())
            }
        };
        let features = out
            .get("features")
            .cloned()
            .and_then(|f| f.try_cast::<PerModality>())
            .ok_or_else(|| Error::arg(format!("{op}: its first argument must be what ctx.forward() returned (a map with features)")))?;
        let model = &self.0.model.0;
        let xs: Vec<Tensor> = features.entries.iter().map(|(_, t)| t.shallow_clone()).collect();
        let per = model.fusion.per_modality_frozen(&xs, whole)?;
        let entries = model.modalities.iter().cloned().zip(per).collect();
        Ok(Dynamic::from(PerModality { what: "logits", entries: Rc::new(entries) }))
    }

    /// `ctx.params(part, #{ select })`: the names of an encoder's (or the head's) parameters, in
    /// the optimizer's order.
    pub fn params(&self, part: &str, opts: &Map) -> RhaiResult<Array> {
        let op = "ctx.params";
        let o = crate::host::options::Options::new(op, opts, &["select"])?;
        let select = o.string("select", "all")?;
        if !["all", "weights", "conv_only"].contains(&select.as_str()) {
            return Err(Error::arg(format!("{op}: select must be \"all\", \"weights\" (tensors of two or more dims) or \"conv_only\" (4-d conv kernels), got \"{select}\"")).into());
        }
        let model = &self.0.model.0;
        let owner = match model.modalities.iter().position(|m| m == part) {
            Some(i) => Some(i),
            None if part == "head" => None,
            None => {
                return Err(Error::arg(format!(
                    "{op}: \"{part}\" is neither one of the model's modalities ({}) nor \"head\"",
                    model.modalities.join(", ")
                ))
                .into())
            }
        };
        let selection = Selection::parse(&select);
        Ok(self
            .0
            .params
            .iter()
            .filter(|(name, t)| model.encoder_of(name) == owner && selection.keeps(t))
            .map(|(name, _)| Dynamic::from(name.clone()))
            .collect())
    }
}

/// `grad_of(loss, names)`: d loss / d parameter for each named parameter, without touching the
/// optimizer's gradients (the graph is kept, so the loss can still be returned and trained on).
pub fn grad_of(params: &[(String, Tensor)], loss: &Tensor, names: &[String]) -> RhaiResult<Map> {
    let op = "grad_of";
    if loss.numel() != 1 {
        return Err(Error::arg(format!("{op}: the loss must be a scalar tensor, got shape {:?}", loss.size())).into());
    }
    if !loss.requires_grad() {
        return Err(Error::arg(format!(
            "{op}: the loss has no autograd graph; compute it from ctx.forward()'s outputs inside a method's hook"
        ))
        .into());
    }
    let mut picked = Vec::with_capacity(names.len());
    for n in names {
        match params.iter().find(|(p, _)| p == n) {
            Some((_, t)) => picked.push(t),
            None => {
                return Err(Error::arg(format!("{op}: no trainable parameter is named \"{n}\"; ctx.params(modality) lists them")).into())
            }
        }
    }
    let loss = check(op, loss.f_reshape([] as [i64; 0]))?;
    // Parameters the loss does not reach have no gradient: PyTorch's allow_unused gives None,
    // here zeros of the parameter's shape, so the map always has every name.
    let grads = check(op, Tensor::f_run_backward(&[&loss], &picked, true, false))?;
    let mut out = Map::new();
    for ((n, p), g) in names.iter().zip(&picked).zip(grads) {
        let g = if g.defined() { g } else { check(op, p.f_zeros_like())? };
        out.insert(n.as_str().into(), Dynamic::from(ScriptTensor::new(g)));
    }
    Ok(out)
}

/// `#{ fused, logits: #{ <modality>: ... } }` over a split, as a predict hook reads it.
pub fn outputs_map(model: &crate::train::model::Model, fused: &Tensor, per: &[Tensor]) -> Map {
    let logits = model.modalities.iter().zip(per).map(|(n, t)| (n.clone(), t.shallow_clone())).collect();
    let mut out = Map::new();
    out.insert("fused".into(), tensor(fused));
    out.insert("logits".into(), Dynamic::from(PerModality { what: "logits", entries: Rc::new(logits) }));
    out
}

/// A parameter group's learning rate, or an error naming the groups there are.
fn group_lr(groups: &[(String, f64)], name: &str) -> RhaiResult<f64> {
    match groups.iter().find(|(g, _)| g == name) {
        Some((_, lr)) => Ok(*lr),
        None if groups.is_empty() => Err(Error::arg(format!(
            "lr: the optimizer has no parameter groups, so no group {name}: build it with optimizer(m, #{{ groups: #{{ {name}: #{{ lr }} }} }})"
        ))
        .into()),
        None => Err(Error::arg(format!("lr: the optimizer has no group {name}; its groups: {}", groups.iter().map(|(g, _)| g.as_str()).collect::<Vec<_>>().join(", "))).into()),
    }
}

pub fn shape(op: &str, v: &Dynamic) -> RhaiResult<Vec<i64>> {
    if let Ok(n) = v.as_int() {
        return Ok(vec![n]);
    }
    let a =
        v.read_lock::<Array>().map(|a| a.clone()).ok_or_else(|| Error::arg(format!("{op}: shape must be an array of ints or one int")))?;
    crate::host::convert::shape_from_array(op, &a)
}

pub fn register(engine: &mut rhai::Engine, docs: &mut crate::host::Docs) {
    engine.register_type_with_name::<StepHook>("StepContext");
    engine.register_type_with_name::<EpochHook>("EpochContext");
    engine.register_type_with_name::<PerModality>("PerModality");
    let a = "method";
    docs.add(
        a,
        "[]",
        "out.logits.<modality> | out.logits[name]",
        "A forward pass's logits or features of one modality, by name (an unknown name is an error listing the model's).",
        "out.logits.audio",
    );
    engine.register_indexer_get(|p: &mut PerModality, name: &str| p.get(name));
    docs.add(
        a,
        "keys",
        "out.logits.keys()",
        "The modality names of a forward pass's logits or features, in the model's order.",
        "for m in out.logits.keys() { ... }",
    );
    engine.register_fn("keys", |p: &mut PerModality| -> Array { p.names().into_iter().map(Dynamic::from).collect() });
    docs.add(
        a,
        "values",
        "out.logits.values()",
        "The tensors of a forward pass's logits or features, in the model's order.",
        "stack(out.features.values())",
    );
    engine.register_fn("values", |p: &mut PerModality| -> Array { p.entries.iter().map(|(_, t)| tensor(t)).collect() });
    docs.add(a, "contains", "name in out.logits", "Whether a forward pass has that modality.", "\"audio\" in out.logits");
    engine.register_fn("contains", |p: &mut PerModality, name: &str| p.entries.iter().any(|(n, _)| n == name));
    engine.register_fn("to_string", |p: &mut PerModality| p.show());
    engine.register_fn("to_debug", |p: &mut PerModality| p.show());
    docs.add(a, "forward", "ctx.forward([#{ train, zero }])",
        "Inside a method's loss hook: the model on the batch with the autograd graph on: #{ fused, logits: #{ <modality>: [B, C] }, features: #{ <modality>: [B, D] } }, keyed by the model's modality names. train (default true) uses batch statistics as a training step does; zero: [modality...] replaces those inputs with zeros (modality removal).",
        "let out = ctx.forward(); let l = cross_entropy(out.fused, ctx.labels);");
    engine.register_fn("forward", |c: &mut StepHook| c.forward(&Map::new()));
    engine.register_fn("forward", |c: &mut StepHook, opts: Map| c.forward(&opts));
    docs.add(a, "without", "ctx.without(out, keep [, #{ removal }])",
        "Inside a loss hook: the fused logits of out (a ctx.forward() result) with modalities removed per sample: keep is a [B, N] tensor of 1 (kept) and 0 (removed), columns in ctx.modalities order. removal \"logit\" (default: drop the modality's part of the fused logits, keeping the head's whole bias; concat or sum heads), \"feature_zero\" (zero its features before the head) or \"input_zero\" (zero its input; one more forward). They differ: biases and batch norm make an encoder's output on zeros non-zero.",
        "let z = ctx.without(out, stack([ones([n]), zeros([n])], 1));");
    engine.register_fn("without", |c: &mut StepHook, out: Map, keep: ScriptTensor| c.without(&out, &keep, &Map::new()));
    engine.register_fn("without", |c: &mut StepHook, out: Map, keep: ScriptTensor, opts: Map| c.without(&out, &keep, &opts));
    docs.add(a, "frozen_head", "ctx.frozen_head(out [, #{ bias }])",
        "Inside a loss hook: each modality's logits from out.features (a ctx.forward() result) through the head with the head's tensors detached, so a loss on them trains the encoders only, keyed as out.logits (DGL's routing; pair it with the head on detached features for the fused loss). bias \"full\" (default: the head's whole bias, the head applied to [x_m; 0]) or \"split\" (b/N). Concat or sum heads.",
        "let uni = ctx.frozen_head(out); let l = cross_entropy(uni.audio, ctx.labels);");
    engine.register_fn("frozen_head", |c: &mut StepHook, out: Map| c.frozen_head(&out, &Map::new()));
    engine.register_fn("frozen_head", |c: &mut StepHook, out: Map, opts: Map| c.frozen_head(&out, &opts));
    docs.add(
        a,
        "keep",
        "ctx.keep",
        "The batch's [B, N] keep masks when the epoch runs over a resampled view (a method whose epoch adds unimodal copies), else ().",
        "if ctx.keep != () { ... }",
    );
    engine.register_get("keep", |c: &mut StepHook| {
        c.0.keep.as_ref().map(|k| Dynamic::from(ScriptTensor::new(k.shallow_clone()))).unwrap_or(Dynamic::UNIT)
    });
    docs.add(
        a,
        "outputs",
        "ctx.outputs",
        "The step's last ctx.forward() on the whole batch (not one with zero:), as the loss hook got it: in the gradients hook, the outputs this step's gradients came from (logits, features and their widths); () before any forward.",
        "gradients: |ctx, g| { let width = ctx.outputs.features.audio.shape[1]; ... }",
    );
    engine.register_get("outputs", |c: &mut StepHook| c.0.outputs.borrow().clone().map(Dynamic::from_map).unwrap_or(Dynamic::UNIT));
    docs.add(a, "labels", "ctx.labels", "The batch's labels, [B] int64, on the model's device.", "cross_entropy(out.fused, ctx.labels)");
    engine.register_get("labels", |c: &mut StepHook| ScriptTensor::new(c.0.labels.shallow_clone()));
    docs.add(
        a,
        "indices",
        "ctx.indices",
        "The batch's dataset row indices, [B] int64 (for per-sample state).",
        "ctx.state.seen[ctx.indices[0].item()]",
    );
    engine.register_get("indices", |c: &mut StepHook| ScriptTensor::new(c.0.indices.shallow_clone()));
    docs.add(a, "epoch", "ctx.epoch | ectx.epoch", "The 0-based epoch.", "if ctx.epoch < 10 { ... }");
    engine.register_get("epoch", |c: &mut StepHook| c.0.epoch as rhai::INT);
    engine.register_get("epoch", |c: &mut EpochHook| c.0.epoch as rhai::INT);
    docs.add(a, "step", "ctx.step", "Optimizer steps taken before this one (restored with a checkpoint).", "ctx.step");
    engine.register_get("step", |c: &mut StepHook| c.0.step as rhai::INT);
    docs.add(
        a,
        "batch",
        "ctx.batch",
        "The batch's place in its epoch: [index, count] (0-based; [0, 1] for a lone train_step).",
        "let frac = ctx.batch[0] / ctx.batch[1];",
    );
    engine.register_get("batch", |c: &mut StepHook| -> Array {
        vec![Dynamic::from_int(c.0.batch.0 as rhai::INT), Dynamic::from_int(c.0.batch.1 as rhai::INT)]
    });
    docs.add(
        a,
        "substep",
        "ctx.substep",
        "Which of the method's substeps this is (0 unless substeps > 1).",
        "let m = ctx.modalities[ctx.substep];",
    );
    engine.register_get("substep", |c: &mut StepHook| c.0.substep as rhai::INT);
    docs.add(
        a,
        "model",
        "ctx.model | ectx.model",
        "The model being trained (read it; its parameters change only through the gradients a hook returns).",
        "ctx.model.modalities",
    );
    engine.register_get("model", |c: &mut StepHook| c.0.model.clone());
    engine.register_get("model", |c: &mut EpochHook| c.0.model.clone());
    docs.add(
        a,
        "modalities",
        "ctx.modalities | ectx.modalities",
        "The model's modality names, in its order.",
        "for m in ctx.modalities { ... }",
    );
    engine.register_get("modalities", |c: &mut StepHook| modality_names(&c.0.model));
    engine.register_get("modalities", |c: &mut EpochHook| modality_names(&c.0.model));
    docs.add(a, "state", "ctx.state | ectx.state", "The method's state, kept across steps and epochs and saved with every checkpoint: ctx.state.n += 1 persists. Numbers, strings, bools, arrays, maps and tensors.", "ctx.state.coef = k;");
    engine.register_get_set(
        "state",
        |c: &mut StepHook| c.0.shared.state.borrow().clone(),
        |c: &mut StepHook, v: Dynamic| *c.0.shared.state.borrow_mut() = v,
    );
    engine.register_get_set(
        "state",
        |c: &mut EpochHook| c.0.shared.state.borrow().clone(),
        |c: &mut EpochHook, v: Dynamic| *c.0.shared.state.borrow_mut() = v,
    );
    docs.add(
        a,
        "options",
        "ctx.options | ectx.options | meth.options",
        "The method's options: for a scripted method the options map it was built with.",
        "ctx.options.alpha",
    );
    engine.register_get("options", |c: &mut StepHook| c.0.shared.options.clone());
    engine.register_get("options", |c: &mut EpochHook| c.0.shared.options.clone());
    docs.add(a, "args", "ctx.args | ectx.args", "The train_step / train_epoch call's other keys (beyond its own and method): per-call values a recipe hands the method, e.g. the adaptive stage's weights, t and mu0_raw.", "ctx.args.t");
    engine.register_get("args", |c: &mut StepHook| c.0.shared.args.borrow().clone());
    engine.register_get("args", |c: &mut EpochHook| c.0.shared.args.borrow().clone());
    docs.add(a, "params", "ctx.params(modality | \"head\" [, #{ select }])",
        "The PyTorch names of an encoder's or the head's trainable parameters, in the optimizer's order; select \"all\" (default), \"weights\" (tensors of 2+ dims, as OGM-GE modulates) or \"conv_only\" (conv kernels, the official OGM-GE).",
        "for name in ctx.params(\"audio\", #{ select: \"weights\" }) { grads[name] = grads[name] * 0.5; }");
    engine.register_fn("params", |c: &mut StepHook, part: &str| c.params(part, &Map::new()));
    engine.register_fn("params", |c: &mut StepHook, part: &str, opts: Map| c.params(part, &opts));
    docs.add(a, "randn", "ctx.randn(shape) | ectx.randn(shape)", "Standard normal draws (float32, on the model's device) from the per-step generator the native methods use: seeded by (method seed, global step), so a resumed run draws the same numbers.", "g + ctx.randn(g.shape) * g.std()");
    engine.register_fn("randn", |c: &mut StepHook, s: Dynamic| -> RhaiResult<ScriptTensor> {
        Ok(ScriptTensor::new(c.0.draws.draw("ctx.randn", &shape("ctx.randn", &s)?, false)?))
    });
    engine.register_fn("randn", |c: &mut EpochHook, s: Dynamic| -> RhaiResult<ScriptTensor> {
        Ok(ScriptTensor::new(c.0.draws.draw("ectx.randn", &shape("ectx.randn", &s)?, false)?))
    });
    docs.add(
        a,
        "rand",
        "ctx.rand(shape) | ectx.rand(shape)",
        "Uniform draws on [0, 1) from the same per-step generator as ctx.randn.",
        "ctx.rand([ctx.labels.shape[0]]) < 0.5",
    );
    engine.register_fn("rand", |c: &mut StepHook, s: Dynamic| -> RhaiResult<ScriptTensor> {
        Ok(ScriptTensor::new(c.0.draws.draw("ctx.rand", &shape("ctx.rand", &s)?, true)?))
    });
    engine.register_fn("rand", |c: &mut EpochHook, s: Dynamic| -> RhaiResult<ScriptTensor> {
        Ok(ScriptTensor::new(c.0.draws.draw("ectx.rand", &shape("ectx.rand", &s)?, true)?))
    });
    docs.add(a, "grad_of", "grad_of(loss, names) | ctx.grad_of(loss, names)",
        "Inside a method's hook: the gradients of a scalar loss with respect to the named parameters, as a map name -> Tensor, without updating anything (for rules that compare per-loss gradients, MMPareto-style). Parameters the loss does not reach get zeros.",
        "let g_a = grad_of(cross_entropy(out.logits.audio, ctx.labels), ctx.params(\"audio\"));");
    engine.register_fn("grad_of", |c: &mut StepHook, loss: ScriptTensor, names: Dynamic| {
        grad_of(&c.0.params, loss.tensor(), &strings("grad_of", "names", &names)?)
    });
    engine.register_fn("grad_of", |loss: ScriptTensor, names: Dynamic| -> RhaiResult<Map> {
        let model = super::caller::current_model()
            .ok_or_else(|| Error::arg("grad_of: only inside a method's hook (there is no training step running)"))?;
        grad_of(&model.0.trainable_parameters(), loss.tensor(), &strings("grad_of", "names", &names)?)
    });
    docs.add(
        a,
        "lr",
        "ectx.lr | ectx.lr(group) | ctx.lr() | ctx.lr(group)",
        "The optimizer's learning rate this epoch (step), or a parameter group's (a modality or \"head\", from optimizer(m, #{ groups })).",
        "ectx.lr(\"audio\")",
    );
    engine.register_get("lr", |c: &mut EpochHook| c.0.lr);
    engine.register_fn("lr", |c: &mut EpochHook, group: &str| group_lr(&c.0.group_lrs, group));
    engine.register_fn("lr", |c: &mut StepHook| c.0.lr);
    engine.register_fn("lr", |c: &mut StepHook, group: &str| group_lr(&c.0.group_lrs, group));
    docs.add(
        a,
        "set_lr",
        "ectx.set_lr(group, lr)",
        "In begin_epoch: sets a parameter group's learning rate from this epoch on (a schedule still scales it); applied before the epoch's first step and saved with checkpoints. Per-modality rates, as MSLR sets them.",
        "ectx.set_lr(\"visual\", ectx.lr(\"visual\") * 0.5)",
    );
    engine.register_fn("set_lr", |c: &mut EpochHook, group: &str, lr: f64| -> RhaiResult<()> {
        group_lr(&c.0.group_lrs, group)?;
        if !(lr > 0.0 && lr.is_finite()) {
            return Err(Error::arg(format!("set_lr: the learning rate must be a positive number, got {lr}")).into());
        }
        c.0.lr_changes.borrow_mut().push((group.to_string(), lr));
        Ok(())
    });
    docs.add(a, "train", "ectx.train", "The training split.", "collect_gaps(ectx.model, ectx.train, \"prob\")");
    engine.register_get("train", |c: &mut EpochHook| c.0.train.clone());
    docs.add(
        a,
        "val",
        "ectx.val",
        "The validation split given to train_epoch (val:), or ().",
        "if ectx.val != () { evaluate(ectx.model, ectx.val) }",
    );
    engine.register_get("val", |c: &mut EpochHook| c.0.val.clone().map(Dynamic::from).unwrap_or(Dynamic::UNIT));
    docs.add(a, "batch_size", "ectx.batch_size", "The epoch's batch size.", "ectx.batch_size");
    engine.register_get("batch_size", |c: &mut EpochHook| c.0.batch_size as rhai::INT);
    docs.add(a, "quiet", "ectx.quiet", "Whether the epoch runs without progress bars (pass it on to long work in the hook).", "ectx.quiet");
    engine.register_get("quiet", |c: &mut EpochHook| c.0.quiet);
    for name in ["to_string", "to_debug"] {
        engine.register_fn(name, |c: &mut StepHook| {
            format!("StepContext({} epoch {} step {} batch {}/{})", c.0.shared.name, c.0.epoch, c.0.step, c.0.batch.0 + 1, c.0.batch.1)
        });
        engine.register_fn(name, |c: &mut EpochHook| format!("EpochContext({} epoch {})", c.0.shared.name, c.0.epoch));
    }
}
