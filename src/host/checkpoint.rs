//! Checkpoints in Rhai: `save_checkpoint`, `last_checkpoint`, `load_checkpoint`. The format
//! and the atomic write are `crate::train::checkpoint`; this file splits a script's state map
//! into tensors (state.safetensors) and everything else (JSON), and back.

use super::convert::{dynamic_to_json, json_to_dynamic};
use super::handles::{ScriptModel, ScriptOptimizer};
use super::options::Options;
use super::tensor::ScriptTensor;
use super::{Docs, RhaiResult};
use crate::error::Error;
use crate::tensor::Tensor;
use crate::train::checkpoint;
use rhai::{Dynamic, Engine, Map, INT};
use std::path::Path;

fn save(dir: &str, model: &ScriptModel, opt: Option<&ScriptOptimizer>, state: &Map, opts: &Map) -> RhaiResult<String> {
    let op = "save_checkpoint";
    let o = Options::new(op, opts, &["keep"])?;
    let epoch = state
        .get("epoch")
        .and_then(|e| e.as_int().ok())
        .ok_or_else(|| Error::arg(format!("{op}: the state map needs the epoch just completed, as an int: #{{ epoch: e, ... }}")))?;
    let mut tensors: Vec<(String, Tensor)> = Vec::new();
    let mut rest = serde_json::Map::new();
    for (key, value) in state.iter() {
        match value.clone().try_cast::<ScriptTensor>() {
            Some(t) => tensors.push((key.to_string(), t.tensor().shallow_clone())),
            None => {
                rest.insert(key.to_string(), dynamic_to_json(&format!("{op}: state.{key}"), value)?);
            }
        }
    }
    let borrowed = opt.map(|o| o.get()).transpose()?;
    let path = checkpoint::save(
        Path::new(dir),
        epoch,
        &model.0,
        borrowed.as_deref(),
        &tensors,
        serde_json::Value::Object(rest),
        o.count("keep", 2)?,
    )?;
    // A sweep task warned of its time limit stops here, its work saved.
    crate::interrupt::checkpoint_written();
    Ok(path.display().to_string())
}

fn load(path: &str, model: &ScriptModel, opt: Option<&ScriptOptimizer>) -> RhaiResult<Map> {
    super::scripted::caller::refuse_in_hook(&model.0, "load_checkpoint")?;
    let mut borrowed = opt.map(|o| o.get_mut()).transpose()?;
    let loaded = checkpoint::load(Path::new(path), &model.0, borrowed.as_deref_mut())?;
    let mut out = json_to_dynamic(&loaded.state).try_cast::<Map>().unwrap_or_default();
    for (name, t) in loaded.tensors {
        out.insert(name.into(), Dynamic::from(ScriptTensor::new(t)));
    }
    out.insert("epoch".into(), Dynamic::from_int(loaded.epoch as INT));
    out.insert("path".into(), loaded.path.display().to_string().into());
    Ok(out)
}

pub fn register(engine: &mut Engine, docs: &mut Docs) {
    let a = "train";
    docs.add(a, "save_checkpoint", "save_checkpoint(dir, model, opt, state [, #{ keep }])",
        "Saves the model, the optimizer (pass () to leave it out) and a state map after an epoch into dir/epoch-NNNN: model.safetensors (PyTorch's state-dict names, num_batches_tracked included), optimizer.safetensors, and the state: its top-level tensors as state.safetensors, everything else (numbers, strings, arrays, maps) as JSON in meta.json. state.epoch (int) is required. Written to a hidden folder and renamed into place, so a killed run never leaves a half checkpoint; the newest keep (2) are kept. Returns the folder.",
        "save_checkpoint(\"runs/a/ckpt\", m, o, #{ epoch: e, history: history });");
    engine.register_fn("save_checkpoint", |dir: &str, m: ScriptModel, o: ScriptOptimizer, state: Map| {
        save(dir, &m, Some(&o), &state, &Map::new())
    });
    engine.register_fn("save_checkpoint", |dir: &str, m: ScriptModel, o: ScriptOptimizer, state: Map, opts: Map| {
        save(dir, &m, Some(&o), &state, &opts)
    });
    engine.register_fn("save_checkpoint", |dir: &str, m: ScriptModel, _: (), state: Map| save(dir, &m, None, &state, &Map::new()));
    engine.register_fn("save_checkpoint", |dir: &str, m: ScriptModel, _: (), state: Map, opts: Map| save(dir, &m, None, &state, &opts));

    docs.add(
        a,
        "last_checkpoint",
        "last_checkpoint(dir)",
        "The newest complete checkpoint folder under dir, or () when there is none (half-written folders from a killed run are ignored).",
        "let ck = last_checkpoint(\"runs/a/ckpt\"); if ck != () { let st = load_checkpoint(ck, m, o); }",
    );
    engine.register_fn("last_checkpoint", |dir: &str| -> RhaiResult<Dynamic> {
        Ok(match checkpoint::latest(Path::new(dir))? {
            Some(p) => p.display().to_string().into(),
            None => Dynamic::UNIT,
        })
    });

    docs.add(a, "load_checkpoint", "load_checkpoint(path, model [, opt])",
        "Restores a checkpoint folder into a model built with the same architecture (and an optimizer of the same kind), returning its state map with epoch and path. path may also be a .safetensors state dict, such as PyTorch's model.state_dict() saved with safetensors. A checkpoint of another architecture is an error listing the missing, unexpected and mis-shaped names.",
        "let st = load_checkpoint(last_checkpoint(\"runs/a/ckpt\"), m, o); let start = st.epoch + 1;");
    engine.register_fn("load_checkpoint", |path: &str, m: ScriptModel, o: ScriptOptimizer| load(path, &m, Some(&o)));
    engine.register_fn("load_checkpoint", |path: &str, m: ScriptModel| load(path, &m, None));
}
