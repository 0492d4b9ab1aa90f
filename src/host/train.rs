//! Training in Rhai: `model`, `optimizer`, `weight_table`, `train_step`, `train_epoch`,
//! `evaluate`, `collect_gaps`. The recipe (`import "train"`) is Rhai over these; the work is
//! in `crate::train`.

use super::data::ScriptDataset;
use super::method;
use super::options::Options;
use super::scripted;
use super::tensor::ScriptTensor;
use super::{Docs, RhaiResult};
use crate::data::{Batch, BatchOptions, Split};
use crate::error::Error;
use crate::gap::GapKind;
use crate::tensor::device::{default_device, parse_device};
use crate::tensor::Tensor;
use crate::train::autocast::Precision;
use crate::train::encoder::EncoderKind;
use crate::train::fusion::FusionKind;
use crate::train::metrics::Scores;
use crate::train::model::{Model, ModelSpec};
use crate::train::optim::{Group, OptimKind, Optimizer, Schedule};
use crate::train::trainer;
use crate::train::weights::WeightTable;
use rhai::{Array, Dynamic, Engine, Map, NativeCallContext, FLOAT, INT};
use std::cell::RefCell;
use std::rc::Rc;

use super::handles::{ScriptModel, ScriptOptimizer, ScriptWeights};

fn strings(op: &str, key: &str, v: &Dynamic) -> RhaiResult<Vec<String>> {
    v.read_lock::<Array>()
        .and_then(|a| a.iter().map(|s| s.clone().into_string().ok()).collect::<Option<Vec<_>>>())
        .ok_or_else(|| Error::arg(format!("{op}: {key} must be an array of strings")).into())
}

/// One entry per modality: a list of n, or one string for all of them.
fn per_modality(op: &str, key: &str, v: &Dynamic, n: usize) -> RhaiResult<Vec<String>> {
    if let Ok(s) = v.clone().into_string() {
        return Ok(vec![s; n]);
    }
    let list = strings(op, key, v)?;
    if list.len() != n {
        return Err(Error::arg(format!("{op}: {key} needs {n} entries, one per modality, got {}", list.len())).into());
    }
    Ok(list)
}

/// The fusion with the unimodal heads asked for: "separate" adds one linear head per modality
/// beside the concat head (M1 of ../shared/baselines-2.md); a sum head has them already.
fn with_heads(fusion: FusionKind, heads: &str) -> crate::error::Result<FusionKind> {
    match (heads, fusion) {
        ("split", _) | ("separate", FusionKind::ConcatHeads | FusionKind::Sum) => Ok(fusion),
        ("separate", FusionKind::Concat) => Ok(FusionKind::ConcatHeads),
        ("separate", other) => Err(Error::arg(format!("model: heads \"separate\" adds one linear head per modality beside a concat head; fusion \"{}\" has its own unimodal logits: use fusion \"concat\" (or \"sum\", whose heads are separate already)", other.name()))),
        (other, _) => Err(Error::arg(format!("model: heads must be \"split\" (the unimodal logits are the fused head's per-modality part, Eq. 2) or \"separate\" (a linear head per modality), got \"{other}\""))),
    }
}

fn build_model(data: &ScriptDataset, opts: &Map) -> RhaiResult<ScriptModel> {
    let op = "model";
    let o = Options::new(op, opts, &["modalities", "encoders", "fusion", "heads", "seed", "device", "mmtm"])?;
    let ds = &data.0;
    let names: Vec<String> = ds.modalities.iter().map(|m| m.name.clone()).collect();
    let modalities = match o.get("modalities") {
        Some(v) => strings(op, "modalities", v)?,
        None => names.clone(),
    };
    if modalities.len() < 2 {
        return Err(Error::arg(format!(
            "{op}: a model needs two or more modalities, got {} ({}); the dataset has {}",
            modalities.len(),
            modalities.join(", "),
            names.join(", ")
        ))
        .into());
    }
    if let Some(dup) = modalities.iter().enumerate().find(|(i, m)| modalities[..*i].contains(m)).map(|(_, m)| m) {
        return Err(
            Error::arg(format!("{op}: the modalities must differ, got \"{dup}\" twice (the gap compares one against another)")).into()
        );
    }
    let shapes: Vec<Vec<i64>> = modalities.iter().map(|m| Ok(ds.modality(m)?.shape.clone())).collect::<RhaiResult<_>>()?;
    let default_encoder = |shape: &Vec<i64>| if shape.len() >= 2 { "cnn" } else { "mlp" };
    let enc = match o.get("encoders") {
        Some(v) => per_modality(op, "encoders", v, modalities.len())?,
        None => shapes.iter().map(|s| default_encoder(s).to_string()).collect(),
    };
    let device = match o.get("device") {
        Some(_) => parse_device(&o.string("device", "cpu")?)?,
        None => default_device()?,
    };
    let spec = ModelSpec {
        modalities,
        shapes,
        encoders: enc.iter().map(|e| EncoderKind::parse(e)).collect::<crate::error::Result<_>>()?,
        fusion: with_heads(FusionKind::parse(&o.string("fusion", "concat")?)?, &o.string("heads", "split")?)?,
        classes: ds.classes() as i64,
        seed: o.count("seed", 0)? as u64,
        device,
        mmtm: o.count("mmtm", 0)?,
    };
    Ok(ScriptModel(Rc::new(Model::new(&spec)?)))
}

fn build_optimizer(model: &ScriptModel, opts: &Map) -> RhaiResult<ScriptOptimizer> {
    let op = "optimizer";
    let o = Options::new(
        op,
        opts,
        &["kind", "lr", "momentum", "weight_decay", "nesterov", "betas", "eps", "schedule", "step_size", "gamma", "epochs", "groups"],
    )?;
    let kind_name = o.string("kind", "sgd")?;
    let (b1, b2) = match o.get("betas") {
        None => (0.9, 0.999),
        Some(v) => {
            let a = v.read_lock::<Array>().and_then(|a| a.iter().map(|x| x.as_float().ok()).collect::<Option<Vec<_>>>());
            match a.as_deref() {
                Some([x, y]) => (*x, *y),
                _ => return Err(Error::arg(format!("{op}: betas must be two floats, e.g. [0.9, 0.999]")).into()),
            }
        }
    };
    let eps = o.float("eps", 1e-8)?;
    let unit = |name: &str, v: f64| -> RhaiResult<f64> {
        if (0.0..1.0).contains(&v) {
            Ok(v)
        } else {
            Err(Error::arg(format!("{op}: {name} must be in [0, 1), got {v}")).into())
        }
    };
    unit("betas[0]", b1)?;
    unit("betas[1]", b2)?;
    if !(eps > 0.0 && eps.is_finite()) {
        return Err(Error::arg(format!("{op}: eps must be a positive number, got {eps}")).into());
    }
    let kind = match kind_name.as_str() {
        "sgd" => OptimKind::Sgd { momentum: unit("momentum", o.float("momentum", 0.9)?)?, nesterov: o.boolean("nesterov", false)? },
        "adam" => OptimKind::Adam { beta1: b1, beta2: b2, eps },
        "adamw" => OptimKind::AdamW { beta1: b1, beta2: b2, eps },
        other => return Err(Error::arg(format!("{op}: unknown kind \"{other}\": use \"sgd\", \"adam\" or \"adamw\"")).into()),
    };
    let schedule = match o.string("schedule", "none")?.as_str() {
        "none" => Schedule::None,
        "step" => {
            let (step, gamma) = (o.count("step_size", 70)?, o.float("gamma", 0.1)?);
            if step == 0 || !(gamma > 0.0 && gamma.is_finite()) {
                return Err(Error::arg(format!(
                    "{op}: the step schedule needs step_size >= 1 and a positive gamma, got step_size {step}, gamma {gamma}"
                ))
                .into());
            }
            Schedule::Step { step, gamma }
        }
        "cosine" => {
            let epochs = o.count("epochs", 100)?;
            if epochs == 0 {
                return Err(Error::arg(format!("{op}: the cosine schedule needs epochs >= 1")).into());
            }
            Schedule::Cosine { epochs }
        }
        other => return Err(Error::arg(format!("{op}: unknown schedule \"{other}\": use \"none\", \"step\" or \"cosine\"")).into()),
    };
    let default_wd = if kind_name == "sgd" {
        1e-4
    } else if kind_name == "adamw" {
        1e-2
    } else {
        0.0
    };
    let m = &model.0;
    let (lr, weight_decay) = (o.float("lr", 2e-3)?, o.float("weight_decay", default_wd)?);
    let mut opt = Optimizer::new(kind, lr, weight_decay, schedule, m.architecture.clone(), m.trainable_parameters())?;
    if let Some(groups) = o.get("groups") {
        let (groups, members) = parameter_groups(op, m, groups, lr, weight_decay)?;
        opt.set_groups(groups, &members)?;
    }
    Ok(ScriptOptimizer(Rc::new(RefCell::new(opt))))
}

/// `groups: #{ <modality>: #{ lr, weight_decay, momentum }, head: #{ ... } }`: each group's
/// settings (unset ones are the optimizer's) and its parameters' names.
fn parameter_groups(op: &str, m: &Model, groups: &Dynamic, lr: f64, weight_decay: f64) -> RhaiResult<(Vec<Group>, Vec<Vec<String>>)> {
    let groups = groups.read_lock::<Map>().map(|g| g.clone()).ok_or_else(|| {
        Error::arg(format!(
            "{op}: groups must be a map from a modality name or \"head\" to its settings, e.g. #{{ audio: #{{ lr: 0.01 }} }}"
        ))
    })?;
    let names: Vec<String> = m.modalities.iter().cloned().chain(["head".to_string()]).collect();
    let params = m.trainable_parameters();
    let (mut out, mut members) = (Vec::new(), Vec::new());
    for (name, settings) in &groups {
        let owner = match m.modalities.iter().position(|x| x == name.as_str()) {
            Some(i) => Some(i),
            None if name.as_str() == "head" => None,
            None => {
                return Err(Error::arg(format!(
                    "{op}: groups names \"{name}\", which is neither a modality of the model nor \"head\": use {}",
                    names.join(", ")
                ))
                .into())
            }
        };
        let settings = settings
            .read_lock::<Map>()
            .map(|g| g.clone())
            .ok_or_else(|| Error::arg(format!("{op}: groups.{name} must be a map of lr, weight_decay, momentum")))?;
        let g = Options::new("optimizer: groups", &settings, &["lr", "weight_decay", "momentum"])?;
        out.push(Group {
            name: name.to_string(),
            base_lr: g.float("lr", lr)?,
            lr: g.float("lr", lr)?,
            weight_decay: g.float("weight_decay", weight_decay)?,
            momentum: match g.get("momentum") {
                None => None,
                Some(_) => Some(g.float("momentum", 0.0)?),
            },
        });
        members.push(params.iter().filter(|(p, _)| m.encoder_of(p) == owner).map(|(p, _)| p.clone()).collect());
    }
    Ok((out, members))
}

/// The keys train_step and train_epoch read themselves; every other key is the method's.
const STEP_KEYS: [&str; 2] = ["epoch", "amp"];
const EPOCH_KEYS: [&str; 8] = ["epoch", "batch", "seed", "quiet", "workers", "val", "channels_last", "amp"];

/// `amp`: "bf16" | "fp16"; absent, () or "none" for float32 (the recipes' default).
fn amp_option(om: &Options) -> RhaiResult<Option<Precision>> {
    match om.get("amp") {
        None => Ok(None),
        Some(v) if v.is_unit() => Ok(None),
        Some(_) => match om.string("amp", "none")?.as_str() {
            "none" => Ok(None),
            name => Ok(Some(Precision::parse(om.op(), name)?)),
        },
    }
}

/// The entries of an options map that the call reads itself (the rest are the method's).
fn own_options(opts: &Map, keys: &[&str]) -> Map {
    opts.iter().filter(|(k, _)| keys.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn terms_map(terms: Vec<(String, f64)>) -> Map {
    terms.into_iter().map(|(k, v)| (k.into(), Dynamic::from_float(v))).collect()
}

fn batch_from_map(op: &str, m: &Map) -> RhaiResult<Batch> {
    let tensor = |key: &str| -> RhaiResult<Tensor> {
        m.get(key)
            .and_then(|v| v.clone().try_cast::<ScriptTensor>())
            .map(|t| t.tensor().shallow_clone())
            .ok_or_else(|| Error::arg(format!("{op}: the batch map has no tensor \"{key}\"")).into())
    };
    let labels = tensor("labels")?;
    let indices = match m.get("indices") {
        Some(_) => tensor("indices")?,
        None => Tensor::arange(labels.size().first().copied().unwrap_or(0), (tch::Kind::Int64, tch::Device::Cpu)),
    };
    let inputs = m
        .iter()
        .filter(|(k, _)| k.as_str() != "labels" && k.as_str() != "indices")
        .filter_map(|(k, v)| v.clone().try_cast::<ScriptTensor>().map(|t| (k.to_string(), t.tensor().shallow_clone())))
        .collect();
    Ok(Batch { inputs, labels, indices, keep: None })
}

fn collected(c: trainer::Collected) -> RhaiResult<Map> {
    let mut out = Map::new();
    out.insert("gaps".into(), Dynamic::from(ScriptTensor::new(c.gaps)));
    out.insert("score_first".into(), Dynamic::from_float(c.score_first));
    out.insert("score_second".into(), Dynamic::from_float(c.score_second));
    Ok(out)
}

fn scores_map(prefix: &str, s: &Scores, out: &mut Map) {
    out.insert(format!("acc{prefix}").into(), Dynamic::from_float(s.accuracy));
    out.insert(format!("f1{prefix}").into(), Dynamic::from_float(s.macro_f1));
    if prefix.is_empty() {
        out.insert("per_class".into(), Dynamic::from_array(s.per_class.iter().map(|&v| Dynamic::from_float(v)).collect()));
    }
}

pub fn register(engine: &mut Engine, docs: &mut Docs) {
    engine.register_type_with_name::<ScriptModel>("Model");
    engine.register_type_with_name::<ScriptOptimizer>("Optimizer");
    engine.register_type_with_name::<ScriptWeights>("WeightTable");
    let a = "train";
    docs.add(a, "model", "model(data, #{ modalities, encoders, fusion, heads, seed, device, mmtm })",
        "A classifier over any number of a dataset's modalities: modalities [names] in gap order (default all of the dataset's; the first two are \"first\" and \"second\" of the two-modality gap), encoders one per modality \"mlp\" (hidden 256,256; \"mlp:128,64\" for others) | \"cnn\" (width 32; \"cnn:16\") | \"resnet18\" (default cnn for images, mlp for vectors), fusion \"concat\" (Eq. 2 split) | \"sum\" | \"shared\" (one classifier for every modality, MLA's; the encoders' features must have one size) for any number, \"film\" | \"gated\" for two only, heads \"split\" (default: the unimodal logits are the concat head's per-modality part) | \"separate\" (a linear head per modality beside the concat head, trained by unimodal losses: MMPareto's model), seed for the initialisation, device (default CUDA when present), mmtm n (two modalities: an MMTM module after each of the encoders' last n stages, aligned from the end, Greedy's mid-fusion: 3 after a ResNet's layers 2-4 as its code, 4 as BalanceBenchmark's; 0 none).",
        "let m = model(data, #{ modalities: [\"pix\", \"fou\"], encoders: [\"cnn\", \"mlp\"], seed: 1 });");
    engine.register_fn("model", |d: ScriptDataset, opts: Map| build_model(&d, &opts));
    engine.register_fn("model", |d: ScriptDataset| build_model(&d, &Map::new()));
    docs.add(a, "parameters", "model.parameters", "The number of trainable parameters.", "print(m.parameters);");
    engine.register_get("parameters", |m: &mut ScriptModel| m.0.parameter_count() as INT);
    docs.add(
        a,
        "architecture",
        "model.architecture",
        "The architecture line (encoders, input shapes, head, classes), as checkpoints and run records store it.",
        "print(m.architecture);",
    );
    engine.register_get("architecture", |m: &mut ScriptModel| m.0.architecture.clone());
    // model.device ("cpu" | "cuda:0") shares the name, and the doc, of device().
    engine.register_get("device", |m: &mut ScriptModel| match m.0.device() {
        tch::Device::Cuda(i) => format!("cuda:{i}"),
        _ => "cpu".to_string(),
    });
    docs.add(a, "head", "model.head", "The head's rule: \"linear\", or \"cosine (scale s)\" once MMCosine has trained the model (evaluation then uses the cosine logits too).", "print(m.head);");
    engine.register_get("head", |m: &mut ScriptModel| m.0.head_rule.get().describe());
    engine.register_get("modalities", |m: &mut ScriptModel| -> Array { m.0.modalities.iter().map(|s| s.clone().into()).collect() });
    engine.register_fn("to_string", |m: &mut ScriptModel| format!("Model({}; {} parameters)", m.0.architecture, m.0.parameter_count()));
    engine.register_fn("to_debug", |m: &mut ScriptModel| format!("Model({}; {} parameters)", m.0.architecture, m.0.parameter_count()));

    docs.add(a, "state_dict", "model.state_dict()",
        "The model's parameters and buffers by PyTorch name (num_batches_tracked included), as a map name -> Tensor sharing the model's storage: save_safetensors(m.state_dict(), path) gives a file PyTorch's load_state_dict reads.",
        "let sd = m.state_dict(); print(sd.keys());");
    engine.register_fn("state_dict", |m: &mut ScriptModel| -> Map {
        m.0.state_dict().into_iter().map(|(k, t)| (k.into(), Dynamic::from(ScriptTensor::new(t)))).collect()
    });

    docs.add(a, "forward", "forward(model, batch [, #{ train }])",
        "The model's outputs on a batch map, without gradients: fused logits, logits and features as maps keyed by modality (each encoder's features, for embeddings), and for a two-modality model first, second, features_first, features_second as well. Evaluation mode by default; train: true uses batch statistics in batch norm and updates its running statistics, as a training step would.",
        "let out = forward(m, b); print(out.fused.argmax(1));");
    let fwd = |m: &ScriptModel, batch: &Map, opts: &Map| -> RhaiResult<Map> {
        let op = "forward";
        let o = Options::new(op, opts, &["train"])?;
        let b = batch_from_map(op, batch)?;
        let _guard = tch::no_grad_guard();
        let out = trainer::forward_batch(&m.0, &b, o.boolean("train", false)?)?;
        let mut map = Map::new();
        let t = |x: &Tensor| Dynamic::from(ScriptTensor::new(x.shallow_clone()));
        map.insert("fused".into(), t(&out.logits.fused));
        // Keyed by modality for any number; first / second too for two-modality models.
        let names = &m.0.modalities;
        map.insert("logits".into(), Dynamic::from_map(names.iter().zip(&out.logits.per).map(|(n, x)| (n.as_str().into(), t(x))).collect()));
        map.insert("features".into(), Dynamic::from_map(names.iter().zip(&out.features).map(|(n, x)| (n.as_str().into(), t(x))).collect()));
        if names.len() == 2 {
            map.insert("first".into(), t(&out.logits.per[0]));
            map.insert("second".into(), t(&out.logits.per[1]));
            map.insert("features_first".into(), t(&out.features[0]));
            map.insert("features_second".into(), t(&out.features[1]));
        }
        Ok(map)
    };
    engine.register_fn("forward", move |m: ScriptModel, batch: Map| fwd(&m, &batch, &Map::new()));
    engine.register_fn("forward", move |m: ScriptModel, batch: Map, opts: Map| fwd(&m, &batch, &opts));

    docs.add(a, "optimizer", "optimizer(model, #{ kind, lr, momentum, weight_decay, nesterov, betas, eps, schedule, step_size, gamma, epochs, groups })",
        "A fresh optimizer for a model: kind \"sgd\" (default; momentum 0.9, weight_decay 1e-4), \"adam\", \"adamw\"; lr 2e-3; schedule \"none\" | \"step\" (step_size, gamma) | \"cosine\" (epochs). PyTorch's update rules. groups: #{ <modality>: #{ lr, weight_decay, momentum }, head: #{ ... } } gives a modality's encoder or the head its own settings, as torch.optim's param_groups (momentum for SGD only; unset ones are the optimizer's; checkpointed; the schedule scales each group's lr). Building a new one is the Table IV \"reset\".",
        "let opt = optimizer(m, #{ kind: \"sgd\", lr: 0.002 });");
    engine.register_fn("optimizer", |m: ScriptModel, opts: Map| build_optimizer(&m, &opts));
    docs.add(
        a,
        "set_epoch",
        "opt.set_epoch(epoch)",
        "Sets the learning rate from the schedule for an epoch (the recipes call it before each epoch).",
        "opt.set_epoch(e);",
    );
    engine.register_fn("set_epoch", |o: &mut ScriptOptimizer, epoch: INT| -> RhaiResult<()> {
        o.get_mut()?.set_epoch(epoch.max(0) as usize);
        Ok(())
    });
    docs.add(
        a,
        "lr",
        "opt.lr | opt.lr(group)",
        "The current learning rate, or a parameter group's (groups: of optimizer).",
        "print(opt.lr(\"audio\"));",
    );
    engine.register_get("lr", |o: &mut ScriptOptimizer| -> RhaiResult<FLOAT> { Ok(o.get()?.lr as FLOAT) });
    engine.register_fn("lr", |o: &mut ScriptOptimizer, group: &str| -> RhaiResult<FLOAT> { Ok(o.get()?.group_lr(group)?) });
    docs.add(a, "set_lr", "opt.set_lr(group, lr)", "Sets a parameter group's learning rate from now on (a schedule still scales it). Inside a method, ectx.set_lr does this before an epoch.", "opt.set_lr(\"visual\", 0.001);");
    engine.register_fn("set_lr", |o: &mut ScriptOptimizer, group: &str, lr: FLOAT| -> RhaiResult<()> {
        Ok(o.get_mut()?.set_group_lr(group, lr)?)
    });

    docs.add(a, "weight_table", "weight_table(split, w)",
        "Per-sample (w0, w1) for the adaptive loss, looked up by dataset index: w is [split.len, 2] in the split's order (mix.balance_weights(z) of the gaps collected on that split).",
        "let table = weight_table(data.train, mix.balance_weights(zs.z));");
    engine.register_fn("weight_table", |s: Split, w: ScriptTensor| -> RhaiResult<ScriptWeights> {
        Ok(ScriptWeights(Rc::new(WeightTable::new(&s, w.tensor())?)))
    });
    docs.add(a, "lookup", "table.lookup(indices)", "The (w0, w1) rows of a weight table for dataset row indices: [B, 2] float32 (ctx.indices in a method's hook; rows outside the table's split are (1, 1)).", "let w = ctx.args.weights.lookup(ctx.indices);");
    engine.register_fn("lookup", |t: &mut ScriptWeights, idx: ScriptTensor| -> RhaiResult<ScriptTensor> {
        Ok(ScriptTensor::new(t.0.lookup(idx.tensor())?))
    });

    docs.add(a, "train_step", "train_step(model, opt, batch, #{ method, epoch, amp, ...method options })",
        "One optimisation step on a batch map (from split.batches) with a training method: method a name (\"concat\" (default, as in the recipes), \"ogm-ge\", \"mmcosine\", \"opm&ogm\", \"warmup\", \"adaptive\", ...; loss: is the older key for the same) with its options in the same map, or a method built with method(name, opts) (required for those that keep state: g-blending, pmr, agm, mla with a projection, d&r; mla needs a model with fusion \"shared\"). epoch (default 0) places the step for methods active in a window of epochs. amp: \"bf16\" | \"fp16\" runs the forward and loss under autocast (as train_epoch). \"adaptive\" is Eq. 11: weights a weight_table of the last refit or the mixture itself, t, rho, alpha, beta, gamma, gap, use_weights, unimodal, mu0_raw. Returns every loss term and the method's diagnostics (OGM's coef_first / coef_second, G-Blending's w_first / w_second / w_fused, ...) as a map.",
        "let terms = train_step(m, opt, b, #{ method: \"ogm-ge\", alpha: 0.8, epoch: e });");
    engine.register_fn(
        "train_step",
        |ctx: NativeCallContext, m: ScriptModel, o: ScriptOptimizer, batch: Map, opts: Map| -> RhaiResult<Map> {
            let op = "train_step";
            scripted::caller::refuse_in_hook(&m.0, op)?;
            let mut chosen = method::choose(op, &opts, &STEP_KEYS)?;
            let own = own_options(&opts, &STEP_KEYS);
            let om = Options::new(op, &own, &STEP_KEYS)?;
            let epoch = om.count("epoch", 0)?;
            let amp = amp_option(&om)?;
            let b = batch_from_map(op, &batch)?;
            let terms = scripted::caller::within(&ctx, &m, || {
                chosen.with(op, |meth| trainer::step(&m.0, &mut *o.get_mut()?, &b, meth, epoch, (0, 1), amp))
            })?;
            Ok(terms_map(terms))
        },
    );

    docs.add(a, "train_epoch", "train_epoch(model, opt, split, #{ batch, seed, quiet, epoch, workers, val, channels_last, amp, method, ...method options })",
        "One epoch over a split (seeded shuffle, progress bar unless quiet) with a training method chosen as in train_step; val: the validation split, for methods that estimate or diagnose on it (G-Blending, D&R, PMR with source \"val\"); channels_last: true lays the model's convolution kernels and the batches' image inputs out channels-last (NHWC in memory; the same values and results within float rounding, faster convolutions on GPUs); amp: \"bf16\" | \"fp16\" runs each step's forward and loss under autocast (matrix products and convolutions in the reduced type, parameters and optimizer state float32; \"none\" or no amp: float32), and fp16 takes the gradients through a dynamic loss scale kept with the optimizer (checkpointed with it): they are unscaled before a method's rule reads them, and a step whose gradients overflow is skipped (amp_skipped, the share of skipped steps, and loss_scale are logged). Returns the batch-weighted mean of every term and diagnostic.",
        "let terms = train_epoch(m, opt, data.train, #{ batch: 64, seed: e, epoch: e, method: meth, val: data.val });");
    engine.register_fn(
        "train_epoch",
        |ctx: NativeCallContext, m: ScriptModel, o: ScriptOptimizer, split: Split, opts: Map| -> RhaiResult<Map> {
            let op = "train_epoch";
            scripted::caller::refuse_in_hook(&m.0, op)?;
            let mut chosen = method::choose(op, &opts, &EPOCH_KEYS)?;
            let own = own_options(&opts, &EPOCH_KEYS);
            let om = Options::new(op, &own, &EPOCH_KEYS)?;
            let batch = om.count("batch", 64)?;
            if batch == 0 {
                return Err(Error::arg(format!("{op}: batch must be at least 1")).into());
            }
            let batching = BatchOptions {
                batch_size: batch,
                seed: om.count("seed", 0)? as u64,
                augment: split.name.starts_with("train"),
                workers: om.count("workers", 2)?,
                channels_last: om.boolean("channels_last", false)?,
                ..BatchOptions::default()
            };
            let val = match om.get("val") {
                None => None,
                Some(v) => {
                    Some(v.clone().try_cast::<Split>().ok_or_else(|| Error::arg(format!("{op}: val must be a split, e.g. data.val")))?)
                }
            };
            let plan = trainer::EpochPlan {
                train: &split,
                val: val.as_ref(),
                batching: &batching,
                epoch: om.count("epoch", om.count("seed", 0)?)?,
                quiet: om.boolean("quiet", false)?,
                amp: amp_option(&om)?,
            };
            let terms =
                scripted::caller::within(&ctx, &m, || chosen.with(op, |meth| trainer::epoch(&m.0, &mut *o.get_mut()?, &plan, meth)))?;
            Ok(terms_map(terms))
        },
    );

    docs.add(a, "evaluate", "evaluate(model, split [, #{ method, samples }])",
        "Accuracy and macro-F1 of the fused and unimodal predictions: #{ acc, f1, per_class, acc_<modality>, f1_<modality> for each modality }, and for a two-modality model acc_first, f1_first, acc_second, f1_second (in the model's modality order). method: a built method with its own test-time fusion (a scripted method's predict: |out| ... hook) predicts the fused scores its way; the recipes pass theirs. samples: true adds samples: #{ index, label, pred }, int64 tensors of every sample's dataset index, label and fused prediction in split order (what the recipes record for paired tests, docs/statistics.md).",
        "print(evaluate(m, data.test).acc);");
    engine.register_fn("evaluate", |m: ScriptModel, split: Split| -> RhaiResult<Map> {
        evaluation_map(&m, &trainer::evaluate(&m.0, &split, 256)?)
    });
    engine.register_fn("evaluate", |ctx: NativeCallContext, m: ScriptModel, split: Split, opts: Map| -> RhaiResult<Map> {
        let op = "evaluate";
        let o = Options::new(op, &opts, &["method", "samples"])?;
        let samples = o.boolean("samples", false)?;
        let e = match o.get("method").filter(|v| !v.is_unit()) {
            None => trainer::evaluate(&m.0, &split, 256)?,
            Some(v) => {
                let meth = v.clone().try_cast::<method::ScriptMethod>().ok_or_else(|| {
                    Error::arg(format!("{op}: method must be a built method (method(...)), found {}", super::convert::type_label(v)))
                })?;
                let mut rule = meth.method.try_borrow_mut().map_err(|_| {
                    Error::arg(format!(
                        "{op}: this method is running (evaluate was called from its own hook): evaluate without method: there"
                    ))
                })?;
                // A scripted predict hook runs in this call's context, as training hooks do.
                scripted::caller::within(&ctx, &m, || trainer::evaluate_with(&m.0, &split, 256, &mut *rule))?
            }
        };
        let mut out = evaluation_map(&m, &e)?;
        if samples {
            let p = &e.samples;
            let mut map = Map::new();
            for (k, v) in [("index", &p.index), ("label", &p.label), ("pred", &p.pred)] {
                map.insert(k.into(), Dynamic::from(ScriptTensor::from(tch::Tensor::from_slice(v))));
            }
            out.insert("samples".into(), map.into());
        }
        Ok(out)
    });
    fn evaluation_map(m: &ScriptModel, e: &trainer::Evaluation) -> RhaiResult<Map> {
        let mut out = Map::new();
        scores_map("", &e.fused, &mut out);
        for (name, sc) in m.0.modalities.iter().zip(&e.per) {
            scores_map(&format!("_{name}"), sc, &mut out);
        }
        if e.per.len() == 2 {
            scores_map("_first", e.first(), &mut out);
            scores_map("_second", e.second(), &mut out);
        }
        Ok(out)
    }

    docs.add(a, "collect_gaps", "collect_gaps(model, split, kind [, [first, second]])",
        "One evaluation pass (no augmentation, no gradients) giving every sample's gap, first minus second modality: #{ gaps: T [len] float64 in split order, score_first, score_second } (mean true-class scores). For a model of more than two modalities the gap is the first modality against the others' mean (what the two-stage recipe fits; docs/method.md), and score_second the others' mean score; collect_gaps(m, split, kind, [a, b]) gives one pair's.",
        "let c = collect_gaps(m, data.train, \"prob\");");
    engine.register_fn("collect_gaps", |m: ScriptModel, split: Split, kind: &str| -> RhaiResult<Map> {
        collected(trainer::collect(&m.0, &split, GapKind::parse(kind)?, 256)?)
    });
    engine.register_fn("collect_gaps", |m: ScriptModel, split: Split, kind: &str, pair: Array| -> RhaiResult<Map> {
        let op = "collect_gaps";
        let names = &m.0.modalities;
        let which = strings(op, "the pair", &Dynamic::from_array(pair))?;
        let index = |n: &String| {
            names
                .iter()
                .position(|x| x == n)
                .ok_or_else(|| Error::arg(format!("{op}: \"{n}\" is not one of the model's modalities ({})", names.join(", "))))
        };
        let (a, b) = match which.as_slice() {
            [a, b] if a != b => (index(a)?, index(b)?),
            _ => return Err(Error::arg(format!("{op}: name two different modalities, first minus second, got {which:?}")).into()),
        };
        collected(trainer::collect_pair(&m.0, &split, GapKind::parse(kind)?, 256, (a, b))?)
    });
}
