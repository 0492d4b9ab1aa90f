//! The plan collector: while `gapscope sweep` plans a grid, `ex::sweep` names its runs here
//! (`sweep_plan(folder)`) instead of training them, and `dataset()` refuses to load anything.
//! Per thread, as a Host is. It stands below the host (which registers `sweep_planning` and
//! `sweep_plan` on it); `sweep::plan` switches it on around a script run.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

struct Collector {
    out: PathBuf,
    keys: Vec<String>,
}

thread_local! {
    static PLAN: RefCell<Option<Collector>> = const { RefCell::new(None) };
}

/// Whether this thread is planning a sweep (scripts see it as `sweep_planning()`).
pub fn planning() -> bool {
    PLAN.with(|p| p.borrow().is_some())
}

/// Adds the run recorded in folder `record` to the plan; returns its key (the folder relative
/// to the sweep's output folder).
pub fn add(record: &str) -> Result<String, String> {
    PLAN.with(|p| {
        let mut p = p.borrow_mut();
        let c = p.as_mut().ok_or("sweep_plan: only `gapscope sweep` plans runs; in a script, ex::sweep runs them")?;
        let key = Path::new(record)
            .strip_prefix(&c.out)
            .map_err(|_| {
                format!(
                    "sweep_plan: the run folder {record} is not under the sweep's output folder {}: build run folders from param(\"out\")",
                    c.out.display()
                )
            })?
            .to_string_lossy()
            .to_string();
        if key.is_empty()
            || key.contains(['\t', '\n', '\r'])
            || key.split('/').any(|part| part.is_empty() || part == "." || part == ".." || part.starts_with('.'))
        {
            return Err(format!(
                "sweep_plan: {key:?} cannot name a run folder (no empty, hidden or dot parts, tabs or newlines): rename the variant"
            ));
        }
        if c.keys.contains(&key) {
            return Err(format!("sweep_plan: the grid names the run {key} twice: give each variant a distinct name"));
        }
        c.keys.push(key.clone());
        Ok(key)
    })
}

/// Switches collecting on for this thread, for runs under `out`.
pub fn start(out: &Path) {
    PLAN.with(|p| *p.borrow_mut() = Some(Collector { out: out.to_path_buf(), keys: Vec::new() }));
}

/// Switches collecting off and returns the run keys named since `start`.
pub fn finish() -> Vec<String> {
    PLAN.with(|p| p.borrow_mut().take()).map(|c| c.keys).unwrap_or_default()
}
