//! The local backend: the incomplete runs as `--jobs` child processes on this machine, each a
//! `gapscope sweep DIR --task KEY` with its share of the cores as torch threads and its output
//! in `DIR/.sweep/logs/`. A stop (Ctrl-C, SIGTERM) is passed on to the children, which stop at a
//! batch boundary and resume from their checkpoints next time.

use super::manifest::Manifest;
use super::state;
use super::task::TaskOptions;
use crate::progress::Progress;
use anyhow::{Context, Result};
use std::collections::VecDeque;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the local runs ended: keys with the exit status of their task.
pub struct Outcome {
    pub finished: Vec<String>,
    pub failed: Vec<(String, i32)>,
    pub stopped: bool,
}

fn start(exe: &Path, out: &Path, key: &str, threads: usize, task: TaskOptions) -> Result<Child> {
    let log_path = state::log_path(out, key);
    std::fs::create_dir_all(log_path.parent().unwrap())
        .with_context(|| format!("cannot create {}", log_path.parent().unwrap().display()))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    Command::new(exe)
        .arg("sweep")
        .arg(out)
        .args(["--task", key])
        .args(task.args())
        .env("GAPSCOPE_THREADS", threads.to_string())
        .env("OMP_NUM_THREADS", threads.to_string())
        .env("GAPSCOPE_SWEEP_LOG", &log_path)
        // A Slurm allocation's count would override ours in the child.
        .env_remove("SLURM_CPUS_PER_TASK")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {}", exe.display()))
}

/// Runs `keys` with `jobs` processes at a time; a progress bar counts finished runs.
pub fn run(m: &Manifest, keys: &[String], jobs: usize, task: TaskOptions, quiet: bool) -> Result<Outcome> {
    let exe = std::env::current_exe().context("cannot find the gapscope binary to start tasks with")?;
    let threads = super::threads::per_process(jobs);
    if !quiet {
        eprintln!(
            "sweep: {} runs, {} at a time, {threads} torch threads each; logs in {}",
            keys.len(),
            jobs.min(keys.len()),
            state::meta(&m.out).join("logs").display()
        );
    }
    let queue = Arc::new(Mutex::new(keys.iter().cloned().collect::<VecDeque<_>>()));
    let (tx, rx) = mpsc::channel::<(String, Result<i32, String>)>();
    let mut workers = Vec::new();
    for _ in 0..jobs.min(keys.len()).max(1) {
        let (queue, tx, exe, out) = (queue.clone(), tx.clone(), exe.clone(), m.out.clone());
        workers.push(std::thread::spawn(move || loop {
            if crate::interrupt::pending().is_some() {
                return;
            }
            let Some(key) = queue.lock().unwrap().pop_front() else { return };
            let result = match start(&exe, &out, &key, threads, task) {
                Ok(child) => wait(child),
                Err(e) => Err(format!("{e:#}")),
            };
            if tx.send((key, result)).is_err() {
                return;
            }
        }));
    }
    drop(tx);
    let mut bar = Progress::new("sweep", keys.len(), "runs", quiet);
    let mut outcome = Outcome { finished: Vec::new(), failed: Vec::new(), stopped: false };
    for (key, result) in rx {
        match result {
            Ok(0) => outcome.finished.push(key),
            Ok(code) => {
                if !quiet {
                    eprintln!("{}sweep: {key} ended with status {code}; log: {}", fresh_line(), state::log_path(&m.out, &key).display());
                }
                outcome.failed.push((key, code));
            }
            Err(e) => {
                eprintln!("{}sweep: {key}: {e}", fresh_line());
                outcome.failed.push((key, -1));
            }
        }
        bar.set_message(format!("{} failed", outcome.failed.len()));
        bar.inc(1);
    }
    for w in workers {
        let _ = w.join();
    }
    bar.finish();
    outcome.stopped = crate::interrupt::pending().is_some() || crate::interrupt::last().is_some();
    Ok(outcome)
}

/// A newline when a live progress bar holds the terminal's current line.
fn fresh_line() -> &'static str {
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        "\n"
    } else {
        ""
    }
}

/// Waits for a task, passing a stop on to it (SIGTERM; the task stops at its next batch).
fn wait(mut child: Child) -> Result<i32, String> {
    let mut passed_on = false;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status.code().unwrap_or(128)),
            Ok(None) => {}
            Err(e) => return Err(e.to_string()),
        }
        if !passed_on && crate::interrupt::pending().is_some() {
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            passed_on = true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
