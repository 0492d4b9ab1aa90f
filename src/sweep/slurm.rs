//! The Slurm backend: the incomplete runs as a job array (split when longer than the cluster's
//! MaxArraySize), and a gather job that waits for them with `afterany`, so a summary appears
//! even when some runs fail. Scripts and task lists go under `DIR/.sweep/slurm/`; the array
//! jobs submitted are listed in `jobs.tsv` there, which is how `--status` and a resubmission
//! find the sweep's tasks in `squeue`. Facts behind the choices: docs/sweeps.md.

use super::manifest::{quote, Manifest};
use super::state;
use super::task::TaskOptions;
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What the cluster is asked for; None leaves the cluster's default.
#[derive(Clone, Debug, Default)]
pub struct SlurmOptions {
    pub partition: Option<String>,
    pub time: Option<String>,
    pub gpus: Option<u32>,
    pub cpus: Option<u32>,
    pub mem: Option<String>,
    pub account: Option<String>,
    pub qos: Option<String>,
    /// At most this many tasks at once (`--array=...%N`).
    pub max_parallel: Option<usize>,
    /// Largest array; default the cluster's MaxArraySize.
    pub array_limit: Option<usize>,
    /// Seconds before the time limit at which a task checkpoints and requeues itself.
    pub signal_before: u32,
    /// More `#SBATCH` options, verbatim (`--constraint=a100`).
    pub extra: Vec<String>,
}

pub struct Submission {
    /// (array job id, number of tasks).
    pub arrays: Vec<(String, usize)>,
    pub gather: String,
}

fn dir(out: &Path) -> PathBuf {
    state::meta(out).join("slurm")
}

fn jobs_file(out: &Path) -> PathBuf {
    dir(out).join("jobs.tsv")
}

fn gather_file(out: &Path) -> PathBuf {
    dir(out).join("gather.tsv")
}

/// `sbatch`/`squeue`/`scontrol`, with a message that says what to do when it is not there.
fn slurm_command(name: &str, args: &[String]) -> Result<String> {
    let output = match Command::new(name).args(args).output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("`{name}` is not on the PATH, so Slurm cannot be reached from here: run this on the cluster's login node, or use --backend local (this machine) or --backend print (the commands, for another scheduler)")
        }
        Err(e) => bail!("cannot run `{name}`: {e}"),
    };
    if !output.status.success() {
        let err = String::from_utf8_lossy(&output.stderr);
        bail!("`{name} {}` failed ({}): {}\nIs the Slurm controller reachable (`sinfo`)? Nothing was lost: rerun the same command once it is.", args.join(" "), output.status, err.trim());
    }
    Ok(String::from_utf8_lossy(&output.stdout).to_string())
}

/// The cluster's MaxArraySize (its largest array index is one less).
pub fn max_array_size() -> Result<usize> {
    let config = slurm_command("scontrol", &["show".into(), "config".into()])?;
    for line in config.lines() {
        if let Some((k, v)) = line.split_once('=') {
            if k.trim() == "MaxArraySize" {
                return v.trim().parse().with_context(|| format!("scontrol show config: MaxArraySize {:?} is not a number", v.trim()));
            }
        }
    }
    Ok(1001) // Slurm's default
}

fn job_name(out: &Path) -> String {
    let base = out.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "sweep".into());
    let clean: String = base.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    format!("gapscope-{clean}")
}

fn common_header(s: &mut String, o: &SlurmOptions, gpus: bool) {
    let mut opt = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            let _ = writeln!(s, "#SBATCH --{k}={v}");
        }
    };
    opt("partition", &o.partition);
    opt("time", &o.time);
    opt("account", &o.account);
    opt("qos", &o.qos);
    if gpus {
        opt("mem", &o.mem);
        opt("cpus-per-task", &o.cpus.map(|c| c.to_string()));
        opt("gres", &o.gpus.map(|g| format!("gpu:{g}")));
        for e in &o.extra {
            let _ = writeln!(s, "#SBATCH {e}");
        }
    }
}

/// The array script: task i runs line i+1 of the key list given as its argument.
pub fn array_script(m: &Manifest, o: &SlurmOptions, task: TaskOptions) -> String {
    let out = m.out.display().to_string();
    let logs = state::meta(&m.out).join("logs").display().to_string();
    let mut s = String::from("#!/bin/bash\n");
    let _ = writeln!(s, "# Written by `gapscope sweep` for the sweep in {out}: one array task per line of the key list");
    let _ = writeln!(s, "# given as $1. Resubmit with `gapscope sweep SCRIPT --out DIR --backend slurm`, which submits only");
    let _ = writeln!(s, "# the incomplete runs, rather than with sbatch by hand.");
    let _ = writeln!(s, "#SBATCH --job-name={}", job_name(&m.out));
    let _ = writeln!(s, "#SBATCH --output={logs}/slurm-%A_%a.out");
    let _ = writeln!(s, "#SBATCH --open-mode=append");
    let _ = writeln!(s, "#SBATCH --requeue");
    let _ = writeln!(s, "#SBATCH --signal=B:USR1@{}", o.signal_before);
    common_header(&mut s, o, true);
    let _ = write!(
        s,
        r#"set -u
key=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" "$1")
if [ -z "$key" ]; then echo "sweep: no run at line $((SLURM_ARRAY_TASK_ID + 1)) of $1" >&2; exit 2; fi
export GAPSCOPE_SWEEP_LOG={logs}/slurm-${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}.out
# Torch threads come from SLURM_CPUS_PER_TASK (gapscope reads it).
# Shortly before the time limit Slurm sends USR1 to this shell, which passes it on: gapscope
# stops just after its next checkpoint (within GAPSCOPE_CHECKPOINT_GRACE seconds, else at the
# next batch), and the task goes back in the queue to resume from that checkpoint. bash runs a
# trap only between commands, so gapscope runs in the background and the shell waits for it.
export GAPSCOPE_CHECKPOINT_GRACE={grace}
requeue() {{
    echo "sweep: $key: the time limit is near; checkpointing and requeueing" >&2
    kill -USR1 "$pid" 2>/dev/null
    wait "$pid"
    rc=$?
    # 130: stopped, to be resumed; anything else (finished meanwhile, failed) stays as it ended.
    if [ "$rc" -eq 130 ]; then scontrol requeue "$SLURM_JOB_ID"; fi
    exit "$rc"
}}
trap requeue USR1
{exe} sweep {outq} --task "$key" {task_args} &
pid=$!
wait "$pid"
"#,
        exe = quote(&m.exe.display().to_string()),
        outq = quote(&out),
        task_args = task.args().join(" "),
        // What the margin leaves after the requeue itself; at least 10 s.
        grace = o.signal_before.saturating_sub(30).max(10),
    );
    s
}

/// The gather script: the table script's summary from whatever runs completed.
pub fn gather_script(m: &Manifest, o: &SlurmOptions) -> String {
    let logs = state::meta(&m.out).join("logs").display().to_string();
    let mut s = String::from("#!/bin/bash\n");
    let _ = writeln!(s, "# Written by `gapscope sweep`: the summary of the sweep in {}, after its array jobs end.", m.out.display());
    let _ = writeln!(s, "#SBATCH --job-name={}-gather", job_name(&m.out));
    let _ = writeln!(s, "#SBATCH --output={logs}/gather-%j.out");
    common_header(&mut s, o, false);
    let _ = writeln!(s, "{} sweep {} --gather", quote(&m.exe.display().to_string()), quote(&m.out.display().to_string()));
    s
}

/// Slurm's time formats in seconds: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S; None for others
/// (UNLIMITED, INFINITE), which Slurm itself will judge.
pub fn time_seconds(t: &str) -> Option<u64> {
    let (days, rest) = match t.split_once('-') {
        Some((d, r)) => (d.parse::<u64>().ok()?, r),
        None => (0, t),
    };
    let parts: Vec<u64> = rest.split(':').map(|p| p.parse::<u64>().ok()).collect::<Option<_>>()?;
    let (h, m, s) = match (t.contains('-'), parts.as_slice()) {
        (false, [m]) => (0, *m, 0),
        (false, [m, s]) => (0, *m, *s),
        (false, [h, m, s]) => (*h, *m, *s),
        (true, [h]) => (*h, 0, 0),
        (true, [h, m]) => (*h, *m, 0),
        (true, [h, m, s]) => (*h, *m, *s),
        _ => return None,
    };
    Some(((days * 24 + h) * 60 + m) * 60 + s)
}

/// Submits `keys` as job arrays and the gather job after them.
pub fn submit(m: &Manifest, keys: &[String], o: &SlurmOptions, task: TaskOptions) -> Result<Submission> {
    if let Some(limit) = o.time.as_deref().and_then(time_seconds) {
        // USR1 may come up to 60 s before the margin asked for: a task must outlive both.
        if limit <= o.signal_before as u64 + 60 {
            bail!(
                "--time {} leaves no time to run before the requeue signal ({} s before the limit, and Slurm may send it 60 s early): every task would stop and requeue at once. Give --time more, or lower --signal-before",
                o.time.as_deref().unwrap_or_default(),
                o.signal_before
            );
        }
    }
    let limit = match o.array_limit {
        Some(n) => n,
        None => max_array_size()?,
    }
    .max(1);
    let d = dir(&m.out);
    std::fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
    std::fs::create_dir_all(state::meta(&m.out).join("logs"))?;
    let array = d.join("array.sh");
    let gather = d.join("gather.sh");
    std::fs::write(&array, array_script(m, o, task)).with_context(|| format!("cannot write {}", array.display()))?;
    std::fs::write(&gather, gather_script(m, o)).with_context(|| format!("cannot write {}", gather.display()))?;
    let stamp = format!("{}-{}", state::now(), std::process::id());
    let mut sub = Submission { arrays: Vec::new(), gather: String::new() };
    for (i, chunk) in keys.chunks(limit).enumerate() {
        let list = d.join(format!("keys-{stamp}-{i}.txt"));
        std::fs::write(&list, chunk.iter().map(|k| format!("{k}\n")).collect::<String>())
            .with_context(|| format!("cannot write {}", list.display()))?;
        let mut spec = format!("0-{}", chunk.len() - 1);
        if let Some(n) = o.max_parallel {
            spec.push_str(&format!("%{n}"));
        }
        let id = parse_job_id(&slurm_command(
            "sbatch",
            &["--parsable".into(), format!("--array={spec}"), array.display().to_string(), list.display().to_string()],
        )?)?;
        // Recorded at once: a failure further on still leaves this array findable.
        let mut jobs = std::fs::OpenOptions::new().create(true).append(true).open(jobs_file(&m.out))?;
        std::io::Write::write_all(&mut jobs, format!("{id}\t{}\n", list.display()).as_bytes())?;
        sub.arrays.push((id, chunk.len()));
    }
    let after: Vec<&str> = sub.arrays.iter().map(|(id, _)| id.as_str()).collect();
    let mut args = vec!["--parsable".to_string()];
    if !after.is_empty() {
        args.push(format!("--dependency=afterany:{}", after.join(":")));
        args.push("--kill-on-invalid-dep=yes".into());
    }
    args.push(gather.display().to_string());
    sub.gather = parse_job_id(&slurm_command("sbatch", &args).with_context(|| {
        format!(
            "the runs were submitted (jobs {}) but the gather job was not: when they end, run `gapscope sweep {} --gather`",
            after.join(", "),
            m.out.display()
        )
    })?)?;
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(gather_file(&m.out))?;
    std::io::Write::write_all(&mut file, format!("{}\n", sub.gather).as_bytes())?;
    Ok(sub)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slurm_time_formats() {
        assert_eq!(time_seconds("30"), Some(1800));
        assert_eq!(time_seconds("30:15"), Some(1815));
        assert_eq!(time_seconds("4:00:00"), Some(14400));
        assert_eq!(time_seconds("1-2"), Some(93600));
        assert_eq!(time_seconds("1-2:30"), Some(95400));
        assert_eq!(time_seconds("1-0:0:5"), Some(86405));
        assert_eq!(time_seconds("UNLIMITED"), None);
        assert_eq!(time_seconds("1:2:3:4"), None);
    }
}

/// `--parsable` prints `id` or `id;cluster`.
fn parse_job_id(out: &str) -> Result<String> {
    let id = out.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        bail!("sbatch did not print a job id (got {:?})", out.trim());
    }
    Ok(id)
}

/// One task of the sweep in Slurm's queue.
#[derive(Clone, Debug)]
pub struct Queued {
    /// PENDING, RUNNING, ...
    pub state: String,
    /// Why it waits (BeginTime, Priority, JobArrayTaskLimit), "None" when it does not.
    pub reason: String,
}

/// This sweep's jobs in the queue, as (array or plain job id, task, state, reason). Checked by
/// name as well as id: a job id reused after a Slurm restart is another sweep's.
fn listing(out: &Path) -> Option<Vec<(String, Option<usize>, Queued)>> {
    let text = slurm_command("squeue", &["-h".into(), "-r".into(), "-o".into(), "%F|%i|%T|%r|%j".into()]).ok()?;
    let name = job_name(out);
    let gather = format!("{name}-gather");
    let mut rows = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.trim().splitn(5, '|').collect();
        if f.len() != 5 || (f[4] != name && f[4] != gather) {
            continue;
        }
        let task = f[1].split_once('_').and_then(|(_, t)| t.parse().ok());
        rows.push((f[0].to_string(), task, Queued { state: f[2].to_string(), reason: f[3].to_string() }));
    }
    Some(rows)
}

/// Slurm's view of every task of this sweep still in the queue, by run key. None when squeue
/// cannot be run (no Slurm here) or the sweep never went to Slurm.
pub fn queue(out: &Path) -> Option<HashMap<String, Queued>> {
    let jobs = std::fs::read_to_string(jobs_file(out)).ok()?;
    let lists: HashMap<String, PathBuf> =
        jobs.lines().filter_map(|l| l.split_once('\t')).map(|(id, list)| (id.to_string(), PathBuf::from(list))).collect();
    let mut keys_of: HashMap<String, Vec<String>> = HashMap::new();
    let mut by_key = HashMap::new();
    for (array, task, q) in listing(out)? {
        let (Some(list), Some(task)) = (lists.get(&array), task) else { continue };
        let keys = keys_of
            .entry(array.clone())
            .or_insert_with(|| std::fs::read_to_string(list).map(|t| t.lines().map(String::from).collect()).unwrap_or_default());
        if let Some(key) = keys.get(task) {
            by_key.insert(key.clone(), q);
        }
    }
    Some(by_key)
}

/// `--cancel`: cancels this sweep's jobs still in the queue (arrays and gather jobs); returns
/// their ids. Running tasks get SIGTERM and stop at their next batch, resumable.
pub fn cancel(out: &Path) -> Result<Vec<String>> {
    let mut ours: Vec<String> = Vec::new();
    for file in [jobs_file(out), gather_file(out)] {
        if let Ok(text) = std::fs::read_to_string(&file) {
            ours.extend(text.lines().filter_map(|l| l.split('\t').next()).map(String::from));
        }
    }
    if ours.is_empty() {
        bail!("the sweep in {} was never submitted to Slurm: nothing to cancel (a local sweep stops with Ctrl-C)", out.display());
    }
    let Some(rows) = listing(out) else {
        bail!("`squeue` cannot be run here, so the sweep's jobs cannot be found: run this where Slurm is reachable");
    };
    let mut ids: Vec<String> = rows.into_iter().map(|(id, _, _)| id).filter(|id| ours.contains(id)).collect();
    ids.sort();
    ids.dedup();
    if !ids.is_empty() {
        slurm_command("scancel", &ids)?;
    }
    Ok(ids)
}
