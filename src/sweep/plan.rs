//! Planning: the grid script runs with a collector switched on, so `ex::sweep` names its runs
//! (`sweep_plan(folder)`) instead of training them, and `dataset()` refuses to load anything.
//! The collector (`sweep::collector`) is per thread, as a Host is.

use super::collector::{finish, start};
use super::manifest::{Manifest, PlannedRun};
use anyhow::{bail, Result};
use std::path::Path;

/// Runs `script` in plan mode and returns its manifest. Loads no data and trains nothing; a
/// `--set` key the script never reads stops it first, unless `allow_unused_set`.
pub fn plan(script: &Path, sets: &[String], out: &Path, exe: &Path, allow_unused_set: bool) -> Result<Manifest> {
    let mut parsed = Vec::new();
    for s in sets {
        let (k, v) = crate::script::parse_set(s).map_err(anyhow::Error::msg)?;
        if k == "out" || super::is_own_param(&k) {
            bail!("--set {k}=... is the sweep's own: the output folder is --out, and the sweep picks the runs");
        }
        parsed.push((k, v));
    }
    let check: Vec<String> = if allow_unused_set { Vec::new() } else { parsed.iter().map(|(k, _)| k.clone()).collect() };
    parsed.push(("out".to_string(), rhai::Dynamic::from(out.display().to_string())));
    start(out);
    let host = crate::host::Host::new();
    let result = crate::script::run_file(&host, script, &parsed, &check.iter().map(String::as_str).collect::<Vec<_>>());
    let keys = finish();
    let name = script.display();
    match result {
        // The script's own error says what is wrong (dataset() names the grid requirement).
        Err(e) if keys.is_empty() => bail!("planning {name} failed before it named any run:\n{e}"),
        Err(e) => bail!("planning {name} failed after it named {} runs:\n{e}\nWhile planning, ex::sweep returns () and trains nothing: guard code that uses its result with `if !sweep_planning() {{ ... }}`", keys.len()),
        Ok(_) if keys.is_empty() => bail!("{name} has no grid: it named no runs. A sweep needs a script whose runs go through ex::sweep or ex::table (stdlib/experiments.rhai), such as scripts/table2.rhai"),
        Ok(_) => {}
    }
    let script_hash = std::fs::read_to_string(script).map(|t| crate::checksum::checksum(&t)).unwrap_or_default();
    let mut m = Manifest {
        script: script.to_path_buf(),
        script_hash,
        sets: sets.to_vec(),
        out: out.to_path_buf(),
        exe: exe.to_path_buf(),
        runs: Vec::new(),
    };
    for key in keys {
        let command = m.command(Some(&key));
        m.runs.push(PlannedRun { key, command });
    }
    Ok(m)
}
