//! `gapscope sweep`'s entry points: launch a grid (plan, then run the incomplete runs on a
//! backend), run one task, gather the summary, show the status, cancel the Slurm jobs.

use super::manifest::Manifest;
use super::slurm::{self, SlurmOptions};
use super::status::{self, Status};
use super::task::TaskOptions;
use super::{local, plan, state, task};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Local,
    Slurm,
    Print,
}

pub struct Launch {
    pub script: PathBuf,
    pub out: PathBuf,
    pub sets: Vec<String>,
    /// Plan even if a --set key is never read by the script (`host::reads`).
    pub allow_unused_set: bool,
    pub backend: Backend,
    pub jobs: usize,
    pub replan: bool,
    pub quiet: bool,
    pub slurm: SlurmOptions,
    pub task: TaskOptions,
}

fn absolute(p: &Path) -> Result<PathBuf> {
    let abs = if p.is_absolute() { p.to_path_buf() } else { std::env::current_dir()?.join(p) };
    // Lexically normalised (no `.`, `..`, trailing `/`): run keys are paths relative to it.
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

/// The runs already recorded under `out` that the new plan does not name.
fn foreign_runs(out: &Path, m: &Manifest) -> Vec<String> {
    let found = crate::results::runs::find(out).unwrap_or_default();
    found.iter().filter_map(|d| d.strip_prefix(out).ok().map(|k| k.to_string_lossy().to_string())).filter(|k| m.run(k).is_none()).collect()
}

/// Plans the grid, writes (or checks) the manifest, and runs what is incomplete.
pub fn launch(r: &Launch) -> Result<u8> {
    let script = r.script.canonicalize().with_context(|| format!("cannot read the script {}", r.script.display()))?;
    if script.is_dir() {
        bail!("{} is a folder: give the grid's script (a sweep's folder goes with --status or --gather)", script.display());
    }
    let out = absolute(&r.out)?;
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create the output folder {}", out.display()))?;
    let exe = std::env::current_exe().context("cannot find the gapscope binary")?;
    let new = plan::plan(&script, &r.sets, &out, &exe, r.allow_unused_set)?;
    let adopt = "use another --out, or add --replan to take this folder over (its complete runs are kept and not rerun)";
    if Manifest::path(&out).exists() {
        match Manifest::read(&out) {
            Ok(old) if !old.same_sweep(&new) && !r.replan => {
                let sets = |m: &Manifest| {
                    if m.sets.is_empty() {
                        "no --set".to_string()
                    } else {
                        m.sets.iter().map(|s| format!("--set {s}")).collect::<Vec<_>>().join(" ")
                    }
                };
                bail!("{} holds another sweep's runs: {} with {}, not {} with {}. Mixing them would put runs with different settings in one table: {adopt}", out.display(), old.script.display(), sets(&old), new.script.display(), sets(&new));
            }
            Ok(old) if !old.script_hash.is_empty() && old.script_hash != new.script_hash => {
                let done = new.runs.iter().filter(|run| state::complete(&out, &run.key)).count();
                if done > 0 {
                    eprintln!("warning: {} changed since this sweep was planned: its {done} complete runs came from the earlier version and are kept. Delete a run's final.parquet to rerun it, or use another --out", script.display());
                }
            }
            Err(e) if !r.replan => return Err(e),
            _ => {}
        }
    } else if !r.replan {
        let foreign = foreign_runs(&out, &new);
        if !foreign.is_empty() {
            bail!(
                "{} holds {} runs that are not in this grid (such as {}): it is another sweep's folder; {adopt}",
                out.display(),
                foreign.len(),
                foreign[0]
            );
        }
    }
    new.write()?;

    let queue = slurm::queue(&out);
    let all = status::collect(&new, queue.as_ref());
    let todo: Vec<String> = all.iter().filter(|s| s.status.needs_run()).map(|s| s.key.clone()).collect();
    let c = status::counts(&all);
    let n = |s: Status| c.get(&s).copied().unwrap_or(0);
    if !r.quiet || r.backend == Backend::Print {
        eprintln!(
            "sweep {}: {} runs; {} complete, {} running or queued, {} to run (manifest: {})",
            out.display(),
            all.len(),
            n(Status::Complete),
            n(Status::Running) + n(Status::Queued),
            todo.len(),
            Manifest::path(&out).display()
        );
    }
    if r.backend != Backend::Print {
        for k in &todo {
            state::reset_starts(&out, k)?;
        }
    }
    match r.backend {
        Backend::Print => {
            for k in &todo {
                println!("{}", new.run(k).expect("planned").command);
            }
            eprintln!("then, for the summary: {}", new.command(None));
            Ok(0)
        }
        Backend::Local => {
            if !todo.is_empty() {
                let outcome = local::run(&new, &todo, r.jobs.max(1), r.task, r.quiet)?;
                if outcome.stopped {
                    eprintln!("sweep: stopped; rerun the same command to resume ({} runs finished)", outcome.finished.len());
                    return Ok(130);
                }
                if !outcome.failed.is_empty() {
                    eprintln!(
                        "sweep: {} runs failed: {} (`gapscope sweep {} --status` shows why)",
                        outcome.failed.len(),
                        outcome.failed.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(", "),
                        out.display()
                    );
                }
            } else if n(Status::Running) + n(Status::Queued) == 0 && !r.quiet {
                eprintln!("sweep: every run is complete");
            }
            let failed = status::collect(&new, queue.as_ref()).iter().filter(|s| s.status != Status::Complete).count();
            let gathered = gather(&out)?;
            Ok(if failed > 0 || gathered != 0 { 1 } else { 0 })
        }
        Backend::Slurm => {
            if todo.is_empty() {
                eprintln!(
                    "sweep: nothing to submit ({} complete, {} running or queued); `gapscope sweep {} --status` follows them",
                    n(Status::Complete),
                    n(Status::Running) + n(Status::Queued),
                    out.display()
                );
                return Ok(0);
            }
            let sub = slurm::submit(&new, &todo, &r.slurm, r.task)?;
            for (id, k) in &sub.arrays {
                println!("submitted job array {id} ({k} runs)");
            }
            println!("submitted gather job {} (after the arrays end, however they end)", sub.gather);
            println!("follow it with: gapscope sweep {} --status", out.display());
            Ok(0)
        }
    }
}

/// `--task KEY`: one run, in this process.
pub fn run_task(out: &Path, key: &str, opts: TaskOptions) -> Result<u8> {
    task::run(&absolute(out)?, key, opts)
}

/// `--gather`: the table script's summary from the complete runs (its own report).
pub fn gather(out: &Path) -> Result<u8> {
    let m = Manifest::read(&absolute(out)?)?;
    let mut sets = Vec::new();
    for raw in m.script_sets(None) {
        sets.push(crate::script::parse_set(&raw).map_err(anyhow::Error::msg)?);
    }
    let host = crate::host::Host::new();
    match crate::script::run_file(&host, &m.script, &sets, &[]) {
        Ok(_) => Ok(0),
        Err(e) => {
            eprintln!("{e}");
            Ok(crate::interrupt::last().map(|r| r.exit_code()).unwrap_or(1))
        }
    }
}

/// `--cancel`: the sweep's Slurm jobs still queued or running.
pub fn cancel(out: &Path) -> Result<u8> {
    let out = absolute(out)?;
    Manifest::read(&out)?;
    let ids = slurm::cancel(&out)?;
    if ids.is_empty() {
        println!("nothing of this sweep is in the queue");
    } else {
        println!(
            "cancelled jobs {}; running tasks stop at their next batch. Resubmit with the same `gapscope sweep` command to resume",
            ids.join(", ")
        );
    }
    Ok(0)
}

/// `--status`: the report of `status::render`.
pub fn show_status(out: &Path) -> Result<u8> {
    let out = absolute(out)?;
    let m = Manifest::read(&out)?;
    let queue = slurm::queue(&out);
    let note = match (&queue, std::fs::metadata(state::meta(&out).join("slurm").join("jobs.tsv")).is_ok()) {
        (None, true) => "Slurm: squeue cannot be run here, so queued runs show as missing".to_string(),
        _ => String::new(),
    };
    let all = status::collect(&m, queue.as_ref());
    print!("{}", status::render(&m, &all, &note));
    Ok(0)
}
