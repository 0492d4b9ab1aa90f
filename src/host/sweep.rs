//! The Rhai face of sweep planning (`crate::sweep::plan`): how `ex::sweep` names its runs when
//! `gapscope sweep` plans a grid instead of running it.

use super::{Docs, RhaiResult};
use crate::error::Error;
use rhai::Engine;

pub fn register(engine: &mut Engine, docs: &mut Docs) {
    let a = "session";
    docs.add(a, "sweep_planning", "sweep_planning()", "Whether `gapscope sweep` is planning this script: ex::sweep then names its runs and trains nothing, and dataset() refuses to load (docs/sweeps.md).", "if !sweep_planning() { print(df); }");
    engine.register_fn("sweep_planning", crate::sweep::collector::planning);
    docs.add(a, "sweep_plan", "sweep_plan(folder)", "While planning a sweep, adds the run recorded in folder (under param(\"out\")) to the plan; returns its key, the folder relative to out. ex::sweep calls it.", "sweep_plan(param(\"out\", \"results\") + \"/concat/seed0\")");
    engine.register_fn("sweep_plan", |folder: &str| -> RhaiResult<String> {
        crate::sweep::collector::add(folder).map_err(|e| Error::arg(e).into())
    });
}
