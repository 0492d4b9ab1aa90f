//! `gapscope sweep --backend slurm` against a real Slurm: the single-node one that
//! `scripts/slurm-local.sh start` runs (`.ci/run` starts it before the tests and stops it after).
//! Without a reachable Slurm each test says so and passes without checking anything.

mod common;

use gapscope::results::files::read_parquet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const GRID: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sweep/grid.rhai");
/// The tests share one small node: one at a time, so each finds it idle.
static NODE: Mutex<()> = Mutex::new(());

/// SLURM_CONF as the environment gives it, else the one scripts/slurm-local.sh writes.
fn slurm_conf() -> Option<String> {
    std::env::var("SLURM_CONF").ok().or_else(|| {
        let local = format!("{}/slurm.conf", std::env::var("GAPSCOPE_SLURM_DIR").unwrap_or_else(|_| "/tmp/gapscope-slurm".into()));
        Path::new(&local).is_file().then_some(local)
    })
}

fn slurm(cmd: &str) -> Command {
    let mut c = Command::new(cmd);
    if let Some(conf) = slurm_conf() {
        c.env("SLURM_CONF", conf);
    }
    c
}

/// Whether a Slurm node answers; prints why the test is skipped when not.
fn slurm_up(test: &str) -> bool {
    let up = slurm("sinfo")
        .args(["-h", "-o", "%T"])
        .output()
        .map(|o| o.status.success() && ["idle", "mixed", "allocated"].iter().any(|s| String::from_utf8_lossy(&o.stdout).contains(s)))
        .unwrap_or(false);
    if !up {
        eprintln!("{test}: skipped, no Slurm is running here (start one with `bash scripts/slurm-local.sh start`)");
    }
    up
}

fn fresh(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gapscope-slurm-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn sweep(args: &[&str]) -> Output {
    let mut c = common::bin();
    if let Some(conf) = slurm_conf() {
        c.env("SLURM_CONF", conf);
    }
    c.arg("sweep").args(args).output().expect("gapscope runs")
}

fn submit(out: &Path, sets: &[&str], extra: &[&str]) -> Output {
    let mut args = vec![GRID, "--out", out.to_str().unwrap(), "--backend", "slurm"];
    for s in sets {
        args.push("--set");
        args.push(s);
    }
    args.extend_from_slice(extra);
    let o = sweep(&args);
    assert!(o.status.success(), "{}", text(&o));
    o
}

/// The job ids a submission printed (arrays, then the gather job).
fn job_ids(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.starts_with("submitted"))
        .filter_map(|l| l.split_whitespace().find(|w| w.chars().all(|c| c.is_ascii_digit())).map(String::from))
        .collect()
}

/// Waits until none of `jobs` is in the queue.
fn wait_for(jobs: &[String], limit: Duration) {
    let t0 = Instant::now();
    loop {
        let listing = slurm("squeue").args(["-h", "-r", "-o", "%A %F"]).output().unwrap();
        let listing = String::from_utf8_lossy(&listing.stdout).to_string();
        let queued = listing.lines().any(|l| l.split_whitespace().any(|w| jobs.iter().any(|j| j == w)));
        if !queued {
            return;
        }
        assert!(t0.elapsed() < limit, "jobs {jobs:?} still queued after {limit:?}:\n{listing}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn status(out: &Path) -> String {
    let o = sweep(&[out.to_str().unwrap(), "--status"]);
    assert!(o.status.success(), "{}", text(&o));
    text(&o)
}

fn modified(p: &Path) -> std::time::SystemTime {
    std::fs::metadata(p).and_then(|m| m.modified()).unwrap()
}

const SMALL: [&str; 4] = ["dataset=synthetic", "seeds=2", "warmup=1", "epochs=2"];
const KEYS: [&str; 4] = ["concat/seed0", "ours/seed0", "concat/seed1", "ours/seed1"];

#[test]
fn a_slurm_sweep_completes_then_resubmits_nothing_then_exactly_a_deleted_run() {
    if !slurm_up("slurm sweep") {
        return;
    }
    let _node = NODE.lock().unwrap_or_else(|e| e.into_inner());
    let out = fresh("grid");
    // An array limit of 3 splits the 4 runs into two arrays.
    let o = submit(&out, &SMALL, &["--array-limit", "3", "--max-parallel", "2", "--cpus", "1", "--prune-checkpoints"]);
    assert!(text(&o).contains("(3 runs)") && text(&o).contains("(1 runs)"), "{}", text(&o));
    let jobs = job_ids(&o);
    assert_eq!(jobs.len(), 3, "{}", text(&o));
    let script = std::fs::read_to_string(out.join(".sweep/slurm/array.sh")).unwrap();
    for line in [
        "#SBATCH --requeue",
        "#SBATCH --signal=B:USR1@180",
        "#SBATCH --cpus-per-task=1",
        "trap requeue USR1",
        "--max-starts 10 --prune-checkpoints &",
    ] {
        assert!(script.contains(line), "{line} missing from array.sh:\n{script}");
    }
    wait_for(&jobs, Duration::from_secs(300));
    let s = status(&out);
    assert!(s.contains("complete 4 · running 0 · queued 0 · failed 0 · stopped 0 · missing 0"), "{s}");
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap_or_else(|e| panic!("no summary ({e}):\n{s}"));
    assert!(md.contains("| concat |") && md.contains("| ours |"), "{md}");
    assert!(out.join("summary.png").is_file() && out.join("summary.csv").is_file());
    for key in KEYS {
        assert!(!out.join(key).join("checkpoints").exists(), "{key}: checkpoints not pruned");
    }
    // The tasks said where they ran, with SLURM_CPUS_PER_TASK=1 as their torch threads.
    let log = std::fs::read_to_string(out.join(".sweep/logs").join(format!("slurm-{}_0.out", jobs[0]))).unwrap();
    assert!(log.contains(&format!("(Slurm job {}_0), 1 torch thread\n", jobs[0])), "{log}");

    let before: Vec<_> = KEYS.iter().map(|k| modified(&out.join(k).join("final.parquet"))).collect();
    let again = submit(&out, &SMALL, &["--array-limit", "3"]);
    assert!(text(&again).contains("nothing to submit") && job_ids(&again).is_empty(), "{}", text(&again));

    std::fs::remove_file(out.join("ours/seed1/final.parquet")).unwrap();
    let third = submit(&out, &SMALL, &["--array-limit", "3"]);
    assert!(text(&third).contains("(1 runs)"), "{}", text(&third));
    let listed = std::fs::read_dir(out.join(".sweep/slurm"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("keys-"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect::<Vec<_>>();
    assert!(listed.contains(&"ours/seed1\n".to_string()), "{listed:?}");
    wait_for(&job_ids(&third), Duration::from_secs(300));
    assert!(status(&out).contains("complete 4"));
    for (i, key) in KEYS.iter().enumerate() {
        let now = modified(&out.join(key).join("final.parquet"));
        assert_eq!(now == before[i], *key != "ours/seed1", "{key}");
    }
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn a_failed_slurm_run_is_reported_and_the_gather_job_still_writes_the_summary() {
    if !slurm_up("slurm failure") {
        return;
    }
    let _node = NODE.lock().unwrap_or_else(|e| e.into_inner());
    let out = fresh("fail");
    let o = submit(&out, &["dataset=synthetic", "seeds=1", "warmup=1", "epochs=2", "variants=concat", "with_failure=true"], &[]);
    wait_for(&job_ids(&o), Duration::from_secs(300));
    let s = status(&out);
    assert!(s.contains("complete 1") && s.contains("failed 1") && s.contains("broken/seed0") && s.contains("lr must be positive"), "{s}");
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap_or_else(|e| panic!("the gather job wrote no summary ({e}):\n{s}"));
    assert!(md.contains("| concat |") && !md.contains("broken"), "{md}");
    let gather_log = std::fs::read_dir(out.join(".sweep/logs"))
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().starts_with("gather-"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .unwrap();
    assert!(gather_log.contains("not in the summary") && gather_log.contains("broken/seed0"), "{gather_log}");
    std::fs::remove_dir_all(&out).unwrap();
}

/// The signal a task gets before its time limit (USR1 to the batch shell) makes it stop just
/// after its next checkpoint, requeue itself and, started again, resume from that checkpoint;
/// the record equals an uninterrupted run's.
#[test]
fn a_task_requeued_mid_run_resumes_from_its_checkpoint_to_the_uninterrupted_result() {
    if !slurm_up("slurm requeue") {
        return;
    }
    let _node = NODE.lock().unwrap_or_else(|e| e.into_inner());
    let sets = ["dataset=synthetic", "seeds=1", "warmup=2", "epochs=300", "variants=ours"];
    let (out, reference) = (fresh("requeue"), fresh("requeue-ref"));
    let key = "ours/seed0";
    let o = submit(&out, &sets, &[]);
    let jobs = job_ids(&o);
    let checkpoints = out.join(key).join("checkpoints");
    let t0 = Instant::now();
    while !std::fs::read_dir(&checkpoints).map(|d| d.count() > 0).unwrap_or(false) {
        assert!(t0.elapsed() < Duration::from_secs(120), "no checkpoint within two minutes:\n{}", status(&out));
        std::thread::sleep(Duration::from_millis(50));
    }
    let task = format!("{}_0", jobs[0]);
    let signal = slurm("scancel").args(["--signal=USR1", "--batch", &task]).output().unwrap();
    assert!(signal.status.success(), "{}", text(&signal));
    // Slurm holds a requeued job back for a while (BeginTime); let it start now.
    let t0 = Instant::now();
    loop {
        let q = slurm("squeue").args(["-h", "-r", "-o", "%i %T %r"]).output().unwrap();
        let q = String::from_utf8_lossy(&q.stdout).to_string();
        if q.lines().any(|l| l.starts_with(&format!("{task} PENDING"))) {
            let _ = slurm("scontrol").args(["update", &format!("JobId={task}"), "StartTime=now"]).output();
            break;
        }
        assert!(!out.join(key).join("final.parquet").is_file(), "the run finished before it was requeued; lengthen it");
        assert!(t0.elapsed() < Duration::from_secs(60), "the task was not requeued:\n{q}");
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_for(&jobs, Duration::from_secs(400));
    assert!(status(&out).contains("complete 1"), "{}", status(&out));
    let log = std::fs::read_to_string(out.join(".sweep/logs").join(format!("slurm-{task}.out"))).unwrap();
    for line in
        ["checkpointing and requeueing", "stopped, as SIGUSR1 asked, just after writing a checkpoint", "start 2", "resuming after epoch"]
    {
        assert!(log.contains(line), "{line:?} missing from the task's log:\n{log}");
    }

    // The uninterrupted reference, run here.
    let mut args = vec![GRID, "--out", reference.to_str().unwrap(), "--backend", "print"];
    for s in sets {
        args.push("--set");
        args.push(s);
    }
    assert!(sweep(&args).status.success());
    let o = sweep(&[reference.to_str().unwrap(), "--task", key]);
    assert!(o.status.success(), "{}", text(&o));
    for table in ["epochs.parquet", "final.parquet", "fits.parquet"] {
        let (x, y) = (read_parquet(&out.join(key).join(table)).unwrap(), read_parquet(&reference.join(key).join(table)).unwrap());
        assert!(x.equals_missing(&y), "{table} differs after the requeue:\n{x}\n{y}");
    }
    std::fs::remove_dir_all(&out).unwrap();
    std::fs::remove_dir_all(&reference).unwrap();
}

/// `--cancel` takes the sweep's jobs out of the queue: the running task stops resumable, the
/// waiting one stays missing, the gather job goes too; a resubmission submits both again.
#[test]
fn cancel_stops_the_sweeps_jobs_and_a_resubmission_picks_them_up() {
    if !slurm_up("slurm cancel") {
        return;
    }
    let _node = NODE.lock().unwrap_or_else(|e| e.into_inner());
    let out = fresh("cancel");
    let sets = ["dataset=synthetic", "seeds=2", "warmup=2", "epochs=300", "variants=ours"];
    let o = submit(&out, &sets, &["--max-parallel", "1"]);
    let jobs = job_ids(&o);
    let t0 = Instant::now();
    while !std::fs::read_dir(out.join("ours/seed0/checkpoints")).map(|d| d.count() > 0).unwrap_or(false) {
        assert!(t0.elapsed() < Duration::from_secs(120), "no checkpoint within two minutes:\n{}", status(&out));
        std::thread::sleep(Duration::from_millis(50));
    }
    let s = status(&out);
    assert!(s.contains("running 1 · queued 1") && s.contains("Slurm: PENDING (JobArrayTaskLimit)"), "{s}");
    let c = sweep(&[out.to_str().unwrap(), "--cancel"]);
    assert!(c.status.success(), "{}", text(&c));
    for id in &jobs {
        assert!(text(&c).contains(id.as_str()), "job {id} not cancelled: {}", text(&c));
    }
    wait_for(&jobs, Duration::from_secs(120));
    // The cancelled task had time to record its stop, or vanished mid-batch: either way resumable.
    let s = status(&out);
    assert!(s.contains("complete 0 · running 0 · queued 0") && s.contains("missing 1") && s.contains("stopped 1"), "{s}");
    assert!(!out.join("summary.md").exists(), "the gather job ran after a cancel");
    let again = submit(&out, &sets, &["--max-parallel", "1"]);
    assert!(text(&again).contains("(2 runs)"), "{}", text(&again));
    let c = sweep(&[out.to_str().unwrap(), "--cancel"]);
    assert!(c.status.success(), "{}", text(&c));
    wait_for(&job_ids(&again), Duration::from_secs(120));
    std::fs::remove_dir_all(&out).unwrap();
}
