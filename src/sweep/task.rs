//! One run of a sweep, executed in this process (`gapscope sweep DIR --task KEY`): what a local
//! worker or a Slurm array task runs. It does what the manifest's command does, and keeps the
//! run's state so `--status` can tell running, failed and stopped runs apart. A run whose record
//! is complete is not run again; a stopped one resumes from its checkpoint (the table scripts'
//! recipes checkpoint every epoch under the run folder while a sweep task runs them).

use super::manifest::Manifest;
use super::state::{self, RunState};
use anyhow::{bail, Result};
use std::path::Path;

/// The exit status of a task refused for starting too often (a requeue loop).
pub const EXIT_TOO_MANY_STARTS: u8 = 3;

/// How every task of a sweep runs; the launching command passes these on to each task.
#[derive(Clone, Copy, Debug)]
pub struct TaskOptions {
    /// A run that has started this many times without finishing fails (a requeue loop).
    pub max_starts: u32,
    /// Delete a run's checkpoints once it is complete (they are only for resuming; about 340 MB
    /// a run with two ResNet-18 encoders and SGD momentum).
    pub prune_checkpoints: bool,
}

impl TaskOptions {
    /// The `gapscope sweep DIR --task KEY` arguments that carry these.
    pub fn args(&self) -> Vec<String> {
        let mut a = vec!["--max-starts".to_string(), self.max_starts.to_string()];
        if self.prune_checkpoints {
            a.push("--prune-checkpoints".into());
        }
        a
    }
}

/// The Slurm job this process belongs to, as `<array job>_<task>` or the plain job id.
pub fn slurm_job() -> Option<String> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (var("SLURM_ARRAY_JOB_ID"), var("SLURM_ARRAY_TASK_ID")) {
        (Some(a), Some(t)) => Some(format!("{a}_{t}")),
        _ => var("SLURM_JOB_ID"),
    }
}

/// Runs the manifest's run `key`; returns the process exit status.
pub fn run(out: &Path, key: &str, opts: TaskOptions) -> Result<u8> {
    let max_starts = opts.max_starts;
    let m = Manifest::read(out)?;
    if m.run(key).is_none() {
        bail!(
            "{key:?} is not a run of the sweep in {} (see its {}): run `gapscope sweep {} --status` for the list",
            out.display(),
            super::manifest::FILE,
            out.display()
        );
    }
    if state::complete(out, key) {
        eprintln!("sweep: {key} is already complete; nothing to do");
        return Ok(0);
    }
    let previous = state::read(out, key).unwrap_or_default();
    let mut s = RunState {
        state: "running".into(),
        host: state::hostname(),
        pid: std::process::id(),
        slurm_job: slurm_job(),
        started: state::now(),
        starts: previous.starts + 1,
        log: std::env::var("GAPSCOPE_SWEEP_LOG").ok(),
        ..Default::default()
    };
    if s.starts > max_starts {
        s.state = "failed".into();
        s.finished = Some(state::now());
        s.exit_code = Some(EXIT_TOO_MANY_STARTS as i32);
        s.error = Some(format!(
            "started {} times without finishing (limit {max_starts}): each start is stopped before the run completes. Give each task more time (--time), or raise --max-starts",
            previous.starts
        ));
        state::write(out, key, &s)?;
        eprintln!("sweep: {key}: {}", s.error.as_deref().unwrap_or_default());
        return Ok(EXIT_TOO_MANY_STARTS);
    }
    state::write(out, key, &s)?;
    let threads = tch::get_num_threads();
    eprintln!(
        "sweep: {key}: start {} on {}{}, {threads} torch thread{}",
        s.starts,
        s.host,
        s.slurm_job.as_deref().map(|j| format!(" (Slurm job {j})")).unwrap_or_default(),
        if threads == 1 { "" } else { "s" }
    );

    let mut sets = Vec::new();
    for raw in m.script_sets(Some(key)) {
        sets.push(crate::script::parse_set(&raw).map_err(anyhow::Error::msg)?);
    }
    // Slurm's warning before the time limit (USR1, passed on by the array script) stops the run
    // just after its next checkpoint; within the grace the array script allows.
    let grace = std::env::var("GAPSCOPE_CHECKPOINT_GRACE").ok().and_then(|g| g.parse::<u64>().ok()).unwrap_or(120);
    crate::interrupt::stop_at_checkpoint(std::time::Duration::from_secs(grace));
    let host = crate::host::Host::new();
    let result = crate::script::run_file(&host, &m.script, &sets, &[]);
    s.finished = Some(state::now());
    let code = match result {
        Ok(_) if state::complete(out, key) => {
            s.state = "complete".into();
            s.exit_code = Some(0);
            let checkpoints = out.join(key).join("checkpoints");
            if opts.prune_checkpoints && checkpoints.is_dir() {
                match std::fs::remove_dir_all(&checkpoints) {
                    Ok(()) => eprintln!("sweep: {key}: complete; its checkpoints removed (--prune-checkpoints)"),
                    Err(e) => eprintln!("sweep: {key}: complete, but its checkpoints could not be removed: {e}"),
                }
            }
            0
        }
        Ok(_) => {
            s.state = "failed".into();
            s.exit_code = Some(1);
            s.error = Some(format!(
                "the script ended without recording {key}/final.parquet: does its grid go through ex::sweep with the sweep's out folder?"
            ));
            1
        }
        Err(e) => {
            eprintln!("{e}");
            match crate::interrupt::last() {
                Some(reason) => {
                    s.state = "stopped".into();
                    s.exit_code = Some(reason.exit_code() as i32);
                    s.error = Some(reason.message().to_string());
                    reason.exit_code()
                }
                None => {
                    s.state = "failed".into();
                    s.exit_code = Some(1);
                    s.error = Some(e.0.lines().take(4).collect::<Vec<_>>().join("\n"));
                    1
                }
            }
        }
    };
    state::write(out, key, &s)?;
    eprintln!("sweep: {key}: {}", s.state);
    Ok(code)
}
