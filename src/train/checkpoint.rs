//! Checkpoints: one directory per completed epoch under a run's checkpoint folder,
//!
//! ```text
//! ckpt/epoch-0007/model.safetensors      the model's state dict, PyTorch names (load_state_dict)
//!                 optimizer.safetensors  `<param>.momentum_buffer` | `.exp_avg`, `.exp_avg_sq`; `steps`
//!                 state.safetensors      tensors the script chose to keep (e.g. the last fit's gaps)
//!                 meta.json              epoch, architecture, optimizer kind and lr (and each group's), the script's state
//! ```
//!
//! A checkpoint is written into a hidden `.epoch-0007.partial-<pid>` folder and renamed into
//! place only when every file is on disk, so a run killed mid-write leaves the previous
//! checkpoint as it was and never a half-written one under a real name. The newest `keep` are
//! kept.

use super::model::Model;
use super::optim::Optimizer;
use crate::error::{Error, Result};
use crate::tensor::io::{load_safetensors, save_safetensors};
use crate::tensor::Tensor;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

pub const FORMAT: &str = "gapscope-checkpoint/1";

/// What a checkpoint holds besides the model and optimizer.
pub struct Loaded {
    pub epoch: i64,
    pub path: PathBuf,
    /// The script's tensors (state.safetensors).
    pub tensors: Vec<(String, Tensor)>,
    /// The script's other values (meta.json "state").
    pub state: Value,
}

fn epoch_dir_name(epoch: i64) -> String {
    format!("epoch-{epoch:04}")
}

/// The completed checkpoints under `dir`, oldest first.
pub fn list(dir: &Path) -> Result<Vec<(i64, PathBuf)>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut out: Vec<(i64, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let epoch = name.strip_prefix("epoch-")?.parse::<i64>().ok()?;
            let path = e.path();
            path.join("meta.json").is_file().then_some((epoch, path))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// The newest completed checkpoint under `dir`, if any.
pub fn latest(dir: &Path) -> Result<Option<PathBuf>> {
    Ok(list(dir)?.pop().map(|(_, p)| p))
}

fn sync(path: &Path) -> Result<()> {
    std::fs::File::open(path).and_then(|f| f.sync_all()).map_err(|e| Error::io(path, e))
}

/// Writes the checkpoint of `epoch` under `dir` and prunes all but the newest `keep`.
pub fn save(
    dir: &Path,
    epoch: i64,
    model: &Model,
    opt: Option<&Optimizer>,
    tensors: &[(String, Tensor)],
    state: Value,
    keep: usize,
) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let name = epoch_dir_name(epoch);
    let partial = dir.join(format!(".{name}.partial-{}", std::process::id()));
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(|e| Error::io(&partial, e))?;
    }
    std::fs::create_dir(&partial).map_err(|e| Error::io(&partial, e))?;
    let written = (|| -> Result<()> {
        let files = [
            ("model.safetensors", model.state_dict()),
            ("optimizer.safetensors", opt.map(|o| o.state_tensors()).unwrap_or_default()),
            ("state.safetensors", tensors.iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect()),
        ];
        for (file, named) in &files {
            save_safetensors(named, &partial.join(file))?;
            sync(&partial.join(file))?;
        }
        let meta = json!({
            "format": FORMAT,
            "epoch": epoch,
            "architecture": model.architecture,
            "optimizer": opt.map(|o| {
                let mut saved = json!({ "kind": o.kind_name(), "lr": o.lr, "base_lr": o.base_lr, "steps": o.steps });
                if !o.groups().is_empty() {
                    // A group's rate may have been set by a method (MSLR): it resumes at that rate.
                    let groups: Vec<Value> = o.groups().iter().map(|g| json!({ "name": g.name, "lr": g.lr, "base_lr": g.base_lr })).collect();
                    saved["groups"] = Value::Array(groups);
                }
                saved
            }),
            "gapscope": env!("CARGO_PKG_VERSION"),
            "state": state,
        });
        let meta_path = partial.join("meta.json");
        std::fs::write(&meta_path, serde_json::to_string_pretty(&meta).unwrap_or_default()).map_err(|e| Error::io(&meta_path, e))?;
        sync(&meta_path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&partial);
        return Err(e);
    }
    let target = dir.join(&name);
    if target.exists() {
        // The same epoch written again (a rerun without resume): the old one goes only once
        // the new one is complete.
        let old = dir.join(format!(".{name}.old-{}", std::process::id()));
        std::fs::rename(&target, &old).map_err(|e| Error::io(&target, e))?;
        std::fs::rename(&partial, &target).map_err(|e| Error::io(&target, e))?;
        let _ = std::fs::remove_dir_all(&old);
    } else {
        std::fs::rename(&partial, &target).map_err(|e| Error::io(&target, e))?;
    }
    let all = list(dir)?;
    for (_, old) in all.iter().take(all.len().saturating_sub(keep.max(1))) {
        let _ = std::fs::remove_dir_all(old);
    }
    Ok(target)
}

fn read_meta(path: &Path) -> Result<Value> {
    let meta_path = path.join("meta.json");
    let text = std::fs::read_to_string(&meta_path).map_err(|e| Error::io(&meta_path, e))?;
    let meta: Value = serde_json::from_str(&text).map_err(|e| Error::io(&meta_path, format!("not a gapscope checkpoint ({e})")))?;
    if meta.get("format").and_then(Value::as_str) != Some(FORMAT) {
        return Err(Error::io(&meta_path, format!("not a gapscope checkpoint (format is not {FORMAT})")));
    }
    Ok(meta)
}

/// Restores a checkpoint into `model` (and `opt`). `path` is a checkpoint directory, or a
/// `.safetensors` state dict (from PyTorch, say), which restores the model only.
pub fn load(path: &Path, model: &Model, opt: Option<&mut Optimizer>) -> Result<Loaded> {
    if path.is_file() {
        model.load_state_dict(&load_safetensors(path)?, &path.display().to_string())?;
        return Ok(Loaded { epoch: -1, path: path.to_path_buf(), tensors: Vec::new(), state: Value::Null });
    }
    if !path.is_dir() {
        return Err(Error::io(path, "no such checkpoint (a checkpoint folder or a .safetensors state dict)"));
    }
    let meta = read_meta(path)?;
    let model_file = path.join("model.safetensors");
    model.load_state_dict(&load_safetensors(&model_file)?, &model_file.display().to_string())?;
    if let Some(opt) = opt {
        let saved = meta.get("optimizer").filter(|v| !v.is_null());
        let Some(saved) = saved else {
            return Err(Error::arg(format!("{}: saved without an optimizer; load it with load_checkpoint(path, model)", path.display())));
        };
        let kind = saved.get("kind").and_then(Value::as_str).unwrap_or("");
        if kind != opt.kind_name() {
            return Err(Error::arg(format!(
                "{}: the optimizer state is {kind}'s, this optimizer is {}; build it with kind: \"{kind}\"",
                path.display(),
                opt.kind_name()
            )));
        }
        // A model that grew layers (rebuilt by load_state_dict) hands them to the optimizer
        // before its state, which holds theirs.
        opt.adopt(model.grown_parameters());
        opt.load_state(&load_safetensors(&path.join("optimizer.safetensors"))?)?;
        if let Some(lr) = saved.get("lr").and_then(Value::as_f64) {
            opt.lr = lr;
        }
        for g in saved.get("groups").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
            let name = g.get("name").and_then(Value::as_str).unwrap_or("");
            let (Some(lr), Some(base)) = (g.get("lr").and_then(Value::as_f64), g.get("base_lr").and_then(Value::as_f64)) else { continue };
            opt.restore_group(name, base, lr).map_err(|e| {
                Error::arg(format!(
                    "{}: the checkpoint's optimizer has a group {name}: build the optimizer with the same groups ({e})",
                    path.display()
                ))
            })?;
        }
    }
    let state_file = path.join("state.safetensors");
    let tensors = if state_file.is_file() { load_safetensors(&state_file)? } else { Vec::new() };
    Ok(Loaded {
        epoch: meta.get("epoch").and_then(Value::as_i64).unwrap_or(-1),
        path: path.to_path_buf(),
        tensors,
        state: meta.get("state").cloned().unwrap_or(Value::Null),
    })
}
