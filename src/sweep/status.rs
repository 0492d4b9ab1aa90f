//! Where each run of a sweep stands, from the run folders, the tasks' states and (where Slurm
//! is present) its queue: complete, running, queued, failed, stopped or missing.

use super::manifest::Manifest;
use super::slurm::Queued;
use super::state;
use std::collections::HashMap;
use std::fmt::Write;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    Complete,
    Running,
    Queued,
    Failed,
    Stopped,
    Missing,
}

impl Status {
    pub const ALL: [Status; 6] = [Status::Complete, Status::Running, Status::Queued, Status::Failed, Status::Stopped, Status::Missing];

    pub fn name(self) -> &'static str {
        match self {
            Status::Complete => "complete",
            Status::Running => "running",
            Status::Queued => "queued",
            Status::Failed => "failed",
            Status::Stopped => "stopped",
            Status::Missing => "missing",
        }
    }

    /// Whether a (re)submission should run it: not complete, and not already on its way.
    pub fn needs_run(self) -> bool {
        !matches!(self, Status::Complete | Status::Running | Status::Queued)
    }
}

#[derive(Clone, Debug)]
pub struct RunStatus {
    pub key: String,
    pub status: Status,
    /// Why, for the runs that are not complete: the error, the Slurm job, the log.
    pub detail: String,
}

/// Every run's status. `queue` maps keys to Slurm's view of their task; None when Slurm is not
/// there to ask.
pub fn collect(m: &Manifest, queue: Option<&HashMap<String, Queued>>) -> Vec<RunStatus> {
    m.runs.iter().map(|r| one(m, &r.key, queue)).collect()
}

fn one(m: &Manifest, key: &str, queue: Option<&HashMap<String, Queued>>) -> RunStatus {
    let out = &m.out;
    let st = |status, detail: String| RunStatus { key: key.to_string(), status, detail };
    if state::complete(out, key) {
        return st(Status::Complete, String::new());
    }
    if let Some(q) = queue.and_then(|q| q.get(key)) {
        let running = matches!(q.state.as_str(), "RUNNING" | "COMPLETING" | "CONFIGURING" | "SUSPENDED" | "STOPPED");
        let why = if q.reason.is_empty() || q.reason == "None" { String::new() } else { format!(" ({})", q.reason) };
        return st(if running { Status::Running } else { Status::Queued }, format!("Slurm: {}{why}", q.state));
    }
    let Some(s) = state::read(out, key) else {
        let partial = out.join(key).join("checkpoints").is_dir();
        return st(Status::Missing, if partial { "never finished; resumes from its checkpoint".into() } else { String::new() });
    };
    let log = s.log.as_deref().map(|l| format!("; log {l}")).unwrap_or_default();
    match s.state.as_str() {
        "running" => {
            // A Slurm task that left the queue without updating its state was killed outright.
            if let (Some(job), Some(_)) = (&s.slurm_job, queue) {
                return st(Status::Stopped, format!("Slurm job {job} ended without a word (killed, or out of memory?){log}"));
            }
            match state::alive_here(&s) {
                Some(false) => st(Status::Stopped, format!("process {} on {} is gone{log}", s.pid, s.host)),
                Some(true) => st(Status::Running, format!("process {} (start {}){log}", s.pid, s.starts)),
                None => st(Status::Running, format!("on {}, process {} (cannot check from here){log}", s.host, s.pid)),
            }
        }
        "failed" => st(
            Status::Failed,
            format!("exit {}: {}{log}", s.exit_code.unwrap_or(1), s.error.as_deref().unwrap_or("").lines().next().unwrap_or("")),
        ),
        "stopped" => st(Status::Stopped, format!("{}; resumes from its checkpoint{log}", s.error.as_deref().unwrap_or("stopped"))),
        // "complete" whose final table is gone: it was deleted, so it is to be run again.
        _ => st(Status::Missing, "its final table was removed".into()),
    }
}

pub fn counts(all: &[RunStatus]) -> HashMap<Status, usize> {
    let mut c = HashMap::new();
    for r in all {
        *c.entry(r.status).or_insert(0) += 1;
    }
    c
}

/// The `--status` report: the counts, then every run that is not complete.
pub fn render(m: &Manifest, all: &[RunStatus], slurm_note: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "sweep {}: {} {} ({} runs)",
        m.out.display(),
        m.script.display(),
        m.sets.iter().map(|x| format!("--set {x}")).collect::<Vec<_>>().join(" "),
        all.len()
    );
    let c = counts(all);
    let line: Vec<String> = Status::ALL.iter().map(|k| format!("{} {}", k.name(), c.get(k).copied().unwrap_or(0))).collect();
    let _ = writeln!(s, "{}", line.join(" · "));
    if !slurm_note.is_empty() {
        let _ = writeln!(s, "{slurm_note}");
    }
    let width = all.iter().map(|r| r.key.len()).max().unwrap_or(0);
    for r in all.iter().filter(|r| r.status != Status::Complete) {
        let _ = writeln!(s, "  {:<8} {:<width$}  {}", r.status.name(), r.key, r.detail);
    }
    let summary = m.out.join("summary.md");
    if summary.is_file() {
        let _ = writeln!(s, "summary: {}", summary.display());
    } else {
        let _ = writeln!(s, "summary: not written yet (`gapscope sweep {} --gather` writes it from the complete runs)", m.out.display());
    }
    s
}
