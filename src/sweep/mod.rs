//! `gapscope sweep`: an experiment grid (a script using `stdlib/experiments.rhai`) run as many
//! independent processes, on this machine or as a Slurm job array, with no scheduler of our own.
//!
//! The pieces, in the order a sweep uses them:
//! - `collector`: where a script in plan mode names its runs (the host's `sweep_plan`);
//! - `plan`: runs the script in plan mode (no data, no training) to list its runs;
//! - `manifest`: the plan on disk, one line per run (its folder and its command), checksummed;
//! - `state`: a run's progress as its task saw it (running, failed, stopped), beside the run
//!   folders the recipes write (a run is complete when its `final.parquet` exists);
//! - `task`: one run, executed in this process, with its state kept;
//! - `local`, `slurm`: the two executing backends (the third, print, only prints commands);
//! - `status`: complete / running / queued / failed / stopped / missing from all of the above;
//! - `threads`: torch's thread count from the environment a backend sets.

pub mod collector;
pub mod command;
pub mod local;
pub mod manifest;
pub mod plan;
pub mod slurm;
pub mod state;
pub mod status;
pub mod task;
pub mod threads;

pub use manifest::{Manifest, PlannedRun};

/// The hidden folder under a sweep's output folder that holds the manifest's helpers: run
/// states, logs, Slurm scripts. Hidden, so `runs(dir)` never mistakes it for a run.
pub const META: &str = ".sweep";

/// The script parameter that selects one run of the grid (`ex::sweep` runs only that one).
pub const RUN_PARAM: &str = "sweep_run";
/// The script parameter that makes `ex::sweep` train nothing and report what is complete.
pub const GATHER_PARAM: &str = "sweep_gather";

/// A `--set` key the sweep adds to its runs' commands (not the user's).
pub fn is_own_param(key: &str) -> bool {
    key == RUN_PARAM || key == GATHER_PARAM
}
