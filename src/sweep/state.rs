//! A run's state as its task last wrote it, in `DIR/.sweep/runs/<key>.json`. Completion is not
//! stored here: a run is complete when its record's `final.parquet` exists, the same test
//! `ex::sweep` uses, so a run finished by any means (a plain `gapscope run`) counts.

use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RunState {
    /// "running", "failed" or "stopped" (by a signal: preempted, timed out, Ctrl-C).
    pub state: String,
    pub host: String,
    pub pid: u32,
    /// `<array job>_<task>` when Slurm runs it.
    #[serde(default)]
    pub slurm_job: Option<String>,
    /// Seconds since the epoch.
    pub started: u64,
    #[serde(default)]
    pub finished: Option<u64>,
    /// How many times a task has started this run (a requeue loop shows here).
    pub starts: u32,
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// The error's first lines, for `--status`.
    #[serde(default)]
    pub error: Option<String>,
    /// Where the task's output went.
    #[serde(default)]
    pub log: Option<String>,
}

pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| std::env::var("HOSTNAME").unwrap_or_default())
}

/// A key as one file name: `/` and `%` escaped (`ogm-ge/seed2` -> `ogm-ge%2Fseed2`).
pub fn encode(key: &str) -> String {
    key.replace('%', "%25").replace('/', "%2F")
}

pub fn meta(out: &Path) -> PathBuf {
    out.join(super::META)
}

fn path(out: &Path, key: &str) -> PathBuf {
    meta(out).join("runs").join(format!("{}.json", encode(key)))
}

/// The log file local tasks write to.
pub fn log_path(out: &Path, key: &str) -> PathBuf {
    meta(out).join("logs").join(format!("{}.log", encode(key)))
}

/// Whether the run's record is complete.
pub fn complete(out: &Path, key: &str) -> bool {
    out.join(key).join("final.parquet").is_file()
}

pub fn read(out: &Path, key: &str) -> Option<RunState> {
    let text = std::fs::read_to_string(path(out, key)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Writes atomically: `--status` may read while a task writes.
pub fn write(out: &Path, key: &str, s: &RunState) -> Result<()> {
    let text = serde_json::to_string_pretty(s)?;
    crate::files::write_atomically(&path(out, key), |tmp| std::fs::write(tmp, &text).map_err(|e| crate::error::Error::io(tmp, e)))?;
    Ok(())
}

/// A new submission gives each run it sends a fresh budget of starts: `--max-starts` counts the
/// starts of one submission (requeues), not every attempt ever made.
pub fn reset_starts(out: &Path, key: &str) -> Result<()> {
    match read(out, key) {
        Some(mut s) if s.starts > 0 => {
            s.starts = 0;
            write(out, key, &s)
        }
        _ => Ok(()),
    }
}

/// Whether process `pid` lives on this host (a state from another host cannot be checked).
pub fn alive_here(s: &RunState) -> Option<bool> {
    if s.host != hostname() {
        return None;
    }
    // Signal 0 checks existence only.
    Some(unsafe { libc::kill(s.pid as libc::pid_t, 0) } == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_become_distinct_file_names() {
        assert_eq!(encode("ogm-ge/seed2"), "ogm-ge%2Fseed2");
        assert_ne!(encode("a%2Fb"), encode("a/b"));
    }
}
