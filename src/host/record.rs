//! Run records in Rhai: `save_run(dir, parts)`. The directory layout and atomic writes are
//! `crate::results::record`; this file turns script values into its config and tables.

use super::convert::dynamic_to_json;
use super::frame::{frame_from, ScriptFrame};
use super::options::Options;
use super::{Docs, RhaiResult};
use crate::error::Error;
use crate::results::record::RunRecord;
use crate::results::tensorboard;
use crate::results::DataFrame;
use rhai::{Array, Dynamic, Engine, Map};
use std::path::Path;

/// A table from a frame, an array of row maps, a map of columns, or a map of scalars (one row).
fn table(name: &str, v: &Dynamic) -> RhaiResult<DataFrame> {
    if let Some(f) = v.clone().try_cast::<ScriptFrame>() {
        return Ok(f.0.as_ref().clone());
    }
    if let Some(m) = v.read_lock::<Map>() {
        let scalars = m.values().all(|x| x.read_lock::<Array>().is_none() && !x.is::<super::tensor::ScriptTensor>());
        if scalars {
            let row: Map = m.iter().map(|(k, x)| (k.clone(), Dynamic::from_array(vec![x.clone()]))).collect();
            return Ok(frame_from(&Dynamic::from_map(row))?.0.as_ref().clone());
        }
    }
    if v.is_array() || v.is_map() {
        return frame_from(v).map(|f| f.0.as_ref().clone()).map_err(|e| Error::arg(format!("save_run: table {name}: {e}")).into());
    }
    Err(Error::arg(format!("save_run: table {name} is a {}; give a DataFrame, an array of row maps or a map", v.type_name())).into())
}

fn save_run(dir: &str, parts: &Map, opts: &Map) -> RhaiResult<String> {
    let o = Options::new("save_run", opts, &["csv", "tensorboard"])?;
    let rec = RunRecord::open(Path::new(dir), o.boolean("csv", false)?)?;
    for (name, v) in parts {
        if name.as_str() == "config" {
            rec.write_config(dynamic_to_json("save_run: config", v)?)?;
        } else {
            rec.write_table(name, &table(name, v)?)?;
        }
    }
    if o.boolean("tensorboard", true)? {
        tensorboard::write_events(Path::new(dir), &crate::train::term_kinds::is_diagnostic)?;
    }
    Ok(dir.to_string())
}

pub fn register(engine: &mut Engine, docs: &mut Docs) {
    docs.add("tables", "save_run", "save_run(dir, parts [, #{ csv, tensorboard }])",
        "Writes (or updates) a run record: parts.config (a map) goes to dir/config.json with the gapscope version, git commit and time added; every other key is a table written as dir/<key>.parquet (and .csv with csv: true), from a DataFrame, an array of row maps, a map of columns, or a map of scalars (one row). Each file is written atomically. The folder's TensorBoard events file (events.out.tfevents.gapscope: epochs as train/, method/, val/, test/ scalars, refits as mixture/ scalars and the gap histogram, the config as text) is rewritten from the record unless tensorboard: false. The recipes call it with cfg.record.",
        "save_run(\"runs/a\", #{ config: cfg, epochs: history, final: #{ acc: 0.98 } });");
    engine.register_fn("save_run", |dir: &str, parts: Map| save_run(dir, &parts, &Map::new()));
    engine.register_fn("save_run", |dir: &str, parts: Map, opts: Map| save_run(dir, &parts, &opts));
}
