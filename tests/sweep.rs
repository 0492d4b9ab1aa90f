//! `gapscope sweep` without Slurm: planning, the local and print backends, resumption, status,
//! gather, and the bad inputs of docs/sweeps.md. The Slurm backend: tests/sweep_slurm.rs.

mod common;

use gapscope::results::files::read_parquet;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

const GRID: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sweep/grid.rhai");
const SMALL: [&str; 8] = ["--set", "dataset=synthetic", "--set", "seeds=2", "--set", "warmup=1", "--set", "epochs=2"];

fn fresh(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gapscope-sweep-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Tests run side by side on few cores: one torch thread per process keeps them from thrashing.
fn gapscope() -> std::process::Command {
    let mut c = common::bin();
    c.env("GAPSCOPE_THREADS", "1");
    c
}

fn sweep(args: &[&str]) -> Output {
    gapscope().arg("sweep").args(args).output().expect("gapscope runs")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn launch(out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![GRID, "--out", out.to_str().unwrap()];
    args.extend_from_slice(&SMALL);
    args.extend_from_slice(extra);
    sweep(&args)
}

fn final_table(out: &Path, key: &str) -> PathBuf {
    out.join(key).join("final.parquet")
}

fn modified(p: &Path) -> std::time::SystemTime {
    std::fs::metadata(p).and_then(|m| m.modified()).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn status(out: &Path) -> String {
    let o = sweep(&[out.to_str().unwrap(), "--status"]);
    assert!(o.status.success(), "{}", text(&o));
    text(&o)
}

const KEYS: [&str; 4] = ["concat/seed0", "ours/seed0", "concat/seed1", "ours/seed1"];

#[test]
fn print_backend_plans_without_training_and_lists_each_incomplete_run() {
    let out = fresh("print");
    let o = launch(&out, &["--backend", "print"]);
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    for (line, key) in lines.iter().zip(KEYS) {
        assert!(line.contains(" run ") && line.ends_with(&format!("--set sweep_run={key}")), "{line}");
    }
    // Planning trained nothing and wrote no run folder: only the manifest.
    for key in KEYS {
        assert!(!out.join(key).exists(), "{key} was created by planning");
    }
    let manifest = std::fs::read_to_string(out.join("sweep.tsv")).unwrap();
    assert_eq!(manifest.lines().filter(|l| KEYS.iter().any(|k| l.starts_with(&format!("{k}\t")))).count(), 4, "{manifest}");
    // A printed command runs that run alone; printing again leaves it out.
    let run = std::process::Command::new("sh").args(["-c", lines[1]]).output().unwrap();
    assert!(run.status.success(), "{}", text(&run));
    assert!(final_table(&out, "ours/seed0").is_file());
    assert!(!out.join("concat/seed0").exists(), "the printed command ran more than its run");
    let again = launch(&out, &["--backend", "print"]);
    let stdout = String::from_utf8_lossy(&again.stdout).to_string();
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    assert!(!stdout.contains("sweep_run=ours/seed0"), "{stdout}");
    assert!(String::from_utf8_lossy(&again.stderr).contains("--set sweep_gather=true"), "{}", text(&again));
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn local_backend_runs_the_grid_gathers_and_reruns_only_what_is_missing() {
    let out = fresh("local");
    let o = launch(&out, &["--jobs", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    for key in KEYS {
        assert!(final_table(&out, key).is_file(), "{key} incomplete:\n{}", text(&o));
    }
    for f in ["summary.md", "summary.csv", "summary.png"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("| concat |") && md.contains("| ours |") && md.contains("| 2 |"), "{md}");
    let lines: Vec<&str> = md.lines().collect();
    assert!(lines[0].starts_with("# Sweep test grid (synthetic") && lines[1].is_empty() && lines[2].starts_with("| variant |"), "{md}");
    assert!(status(&out).contains("complete 4 · running 0 · queued 0 · failed 0 · stopped 0 · missing 0"));
    // Checkpoints stay unless asked otherwise.
    assert!(out.join("concat/seed0/checkpoints").is_dir());
    // Two processes share the cores: each has its half as torch threads.
    let per = (std::thread::available_parallelism().unwrap().get() / 2).max(1);
    let log = std::fs::read_to_string(out.join(".sweep/logs/concat%2Fseed0.log")).unwrap();
    assert!(log.contains(&format!(", {per} torch thread")), "{log}");

    // A rerun runs nothing.
    let before: Vec<_> = KEYS.iter().map(|k| modified(&final_table(&out, k))).collect();
    let again = launch(&out, &["--jobs", "2"]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(text(&again).contains("0 to run"), "{}", text(&again));
    let after: Vec<_> = KEYS.iter().map(|k| modified(&final_table(&out, k))).collect();
    assert_eq!(before, after, "a complete run was run again");

    // Deleting one run's final table reruns exactly that run.
    std::thread::sleep(Duration::from_millis(20));
    std::fs::remove_file(final_table(&out, "ours/seed1")).unwrap();
    assert!(status(&out).contains("missing 1"));
    let third = launch(&out, &["--jobs", "2"]);
    assert!(third.status.success(), "{}", text(&third));
    assert!(text(&third).contains("1 to run"), "{}", text(&third));
    for (i, key) in KEYS.iter().enumerate() {
        let now = modified(&final_table(&out, key));
        if *key == "ours/seed1" {
            assert!(now > before[i]);
        } else {
            assert_eq!(now, before[i], "{key} was rerun");
        }
    }
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn a_failed_run_is_reported_and_the_summary_still_written() {
    let out = fresh("fail");
    let o = launch(&out, &["--jobs", "2", "--set", "with_failure=true", "--prune-checkpoints"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    for key in KEYS {
        assert!(final_table(&out, key).is_file() && !out.join(key).join("checkpoints").exists(), "{key}: checkpoints not pruned");
    }
    let s = status(&out);
    assert!(s.contains("complete 4") && s.contains("failed 2"), "{s}");
    assert!(s.contains("broken/seed0") && s.contains("lr must be positive"), "{s}");
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("| concat |") && !md.contains("broken"), "{md}");
    assert!(text(&o).contains("not in the summary") && text(&o).contains("broken/seed1"), "{}", text(&o));
    std::fs::remove_dir_all(&out).unwrap();
}

/// Stops a task once it has checkpointed, reruns it, and compares its record with an
/// uninterrupted run's (the same check the Slurm requeue test makes): SIGTERM stops it at the
/// next batch, SIGUSR1 (Slurm's time-limit warning) just after its next checkpoint.
fn stop_and_resume(signal: i32, name: &str, said: &str) {
    let long = ["--set", "dataset=synthetic", "--set", "seeds=1", "--set", "warmup=2", "--set", "epochs=150", "--set", "variants=ours"];
    let (a, b) = (fresh(&format!("{name}-a")), fresh(&format!("{name}-b")));
    for out in [&a, &b] {
        let mut args = vec![GRID, "--out", out.to_str().unwrap(), "--backend", "print"];
        args.extend_from_slice(&long);
        assert!(sweep(&args).status.success());
    }
    let key = "ours/seed0";
    let child = gapscope().args(["sweep", a.to_str().unwrap(), "--task", key]).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let checkpoints = a.join(key).join("checkpoints");
    let t0 = Instant::now();
    while !std::fs::read_dir(&checkpoints).map(|d| d.count() > 0).unwrap_or(false) {
        assert!(t0.elapsed() < Duration::from_secs(60), "no checkpoint within a minute");
        std::thread::sleep(Duration::from_millis(20));
    }
    unsafe { libc::kill(child.id() as i32, signal) };
    let stopped = child.wait_with_output().unwrap();
    assert_eq!(stopped.status.code(), Some(130), "{}", text(&stopped));
    assert!(text(&stopped).contains(said), "{}", text(&stopped));
    assert!(!final_table(&a, key).is_file(), "the run finished before the stop; lengthen it");
    assert!(status(&a).contains("stopped 1"));
    for out in [&a, &b] {
        let o = sweep(&[out.to_str().unwrap(), "--task", key]);
        assert!(o.status.success(), "{}", text(&o));
        // The stopped run picks up from its checkpoint; the other starts from scratch.
        assert_eq!(text(&o).contains("resuming after epoch"), *out == a, "{}", text(&o));
    }
    let state = std::fs::read_to_string(a.join(".sweep/runs/ours%2Fseed0.json")).unwrap();
    assert!(state.contains("\"starts\": 2"), "{state}");
    for table in ["epochs.parquet", "final.parquet", "fits.parquet"] {
        let (x, y) = (read_parquet(&a.join(key).join(table)).unwrap(), read_parquet(&b.join(key).join(table)).unwrap());
        assert!(x.equals_missing(&y), "{table} differs after resuming:\n{x}\n{y}");
    }
    std::fs::remove_dir_all(&a).unwrap();
    std::fs::remove_dir_all(&b).unwrap();
}

#[test]
fn a_task_stopped_by_sigterm_resumes_from_its_checkpoint_to_the_uninterrupted_result() {
    stop_and_resume(libc::SIGTERM, "term", "interrupted");
}

#[test]
fn a_task_warned_by_sigusr1_stops_after_a_checkpoint_and_resumes_to_the_uninterrupted_result() {
    stop_and_resume(libc::SIGUSR1, "usr1", "stopped, as SIGUSR1 asked, just after writing a checkpoint");
}

#[test]
fn a_script_without_a_grid_is_refused() {
    let dir = fresh("nogrid");
    std::fs::create_dir_all(&dir).unwrap();
    let plain = dir.join("plain.rhai");
    std::fs::write(&plain, "print(\"hello\");\n").unwrap();
    let o = sweep(&[plain.to_str().unwrap(), "--out", dir.join("o").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("has no grid") && text(&o).contains("ex::sweep"), "{}", text(&o));
    // A script that loads data outside a grid stops at dataset(), before any training.
    let loads = dir.join("loads.rhai");
    std::fs::write(&loads, "let d = dataset(\"synthetic\");\nprint(d.len);\n").unwrap();
    let o = sweep(&[loads.to_str().unwrap(), "--out", dir.join("o").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("loads.rhai:1:") && text(&o).contains("planning a sweep loads no data"), "{}", text(&o));
    // A script error while planning is shown as it is, at its position.
    let o = launch(&dir.join("o2"), &["--set", "dataset=nope", "--backend", "print"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("failed before it named any run")
            && text(&o).contains("unknown dataset \"nope\"")
            && text(&o).contains("grid.rhai:"),
        "{}",
        text(&o)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn another_sweeps_folder_and_an_edited_manifest_are_refused_and_nothing_is_lost() {
    let out = fresh("foreign");
    let o = launch(&out, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let before = modified(&final_table(&out, "concat/seed0"));

    // The same settings in another order are the same sweep.
    let mut reordered = vec![GRID, "--out", out.to_str().unwrap()];
    for pair in SMALL.chunks(2).rev() {
        reordered.extend_from_slice(pair);
    }
    let o = sweep(&reordered);
    assert!(o.status.success() && text(&o).contains("0 to run"), "{}", text(&o));

    // A run folder that is not the grid's, even one complete and of a variant the grid has,
    // stays out of the summary.
    copy_dir(&out.join("concat/seed0"), &out.join("extra/seed0"));
    let o = sweep(&[out.to_str().unwrap(), "--gather"]);
    assert!(o.status.success(), "{}", text(&o));
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    let concat = md.lines().find(|l| l.starts_with("| concat |")).unwrap();
    assert!(concat.ends_with("| 2 |"), "{md}");
    std::fs::remove_dir_all(out.join("extra")).unwrap();
    let manifest = std::fs::read_to_string(out.join("sweep.tsv")).unwrap();

    // Other settings into the same folder.
    let o = launch(&out, &["--set", "lr=0.5"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("holds another sweep's runs") && text(&o).contains("--replan"), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(out.join("sweep.tsv")).unwrap(), manifest);

    // A folder of runs recorded without a manifest, not in this grid.
    let other = fresh("foreign-runs");
    std::fs::create_dir_all(other.join("old/seed0")).unwrap();
    std::fs::write(other.join("old/seed0/config.json"), "{}").unwrap();
    let o = launch(&other, &["--backend", "print"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("not in this grid (such as old/seed0)"), "{}", text(&o));
    std::fs::remove_dir_all(&other).unwrap();

    // A hand edit: every entry point refuses it, and says how to plan again.
    std::fs::write(out.join("sweep.tsv"), manifest.replace("seed1\t", "seed7\t")).unwrap();
    for args in [
        vec![out.to_str().unwrap(), "--status"],
        vec![out.to_str().unwrap(), "--task", "concat/seed0"],
        vec![out.to_str().unwrap(), "--gather"],
    ] {
        let o = sweep(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert!(text(&o).contains("edited by hand") && text(&o).contains("--replan"), "{args:?}: {}", text(&o));
    }
    let o = launch(&out, &[]);
    assert!(text(&o).contains("edited by hand"), "{}", text(&o));
    // --replan writes a fresh manifest and keeps the complete runs.
    let o = launch(&out, &["--replan"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("0 to run"), "{}", text(&o));
    assert_eq!(modified(&final_table(&out, "concat/seed0")), before);
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn slurm_that_cannot_be_reached_is_an_error_and_nothing_is_lost() {
    let out = fresh("nosbatch");
    let o = launch(&out, &[]);
    assert!(o.status.success(), "{}", text(&o));
    std::fs::remove_file(final_table(&out, "ours/seed1")).unwrap();
    let before = modified(&final_table(&out, "concat/seed0"));
    let bin_dir = fresh("fake-bin");
    std::fs::create_dir_all(&bin_dir).unwrap();

    // No sbatch on the PATH.
    let mut args = vec![GRID, "--out", out.to_str().unwrap(), "--backend", "slurm", "--array-limit", "10"];
    args.extend_from_slice(&SMALL);
    let o = common::bin().arg("sweep").args(&args).env("PATH", &bin_dir).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("`sbatch` is not on the PATH") && text(&o).contains("--backend local"), "{}", text(&o));

    // An sbatch that fails (the controller is down).
    let fake = bin_dir.join("sbatch");
    std::fs::write(&fake, "#!/bin/sh\necho 'sbatch: error: Batch job submission failed: Unable to contact slurm controller' >&2\nexit 1\n")
        .unwrap();
    std::process::Command::new("chmod").arg("+x").arg(&fake).status().unwrap();
    let o = common::bin().arg("sweep").args(&args).env("PATH", format!("{}:/usr/bin:/bin", bin_dir.display())).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("Unable to contact slurm controller") && text(&o).contains("Nothing was lost"), "{}", text(&o));
    assert_eq!(modified(&final_table(&out, "concat/seed0")), before);
    assert!(status(&out).contains("complete 3") && status(&out).contains("missing 1"));
    std::fs::remove_dir_all(&out).unwrap();
    std::fs::remove_dir_all(&bin_dir).unwrap();
}

#[test]
fn the_sweeps_own_settings_and_unknown_runs_are_refused() {
    let out = fresh("own");
    let o = launch(&out, &["--set", "out=/elsewhere"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("--set out=... is the sweep's own"), "{}", text(&o));
    let o = sweep(&[out.to_str().unwrap(), "--status"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("has no sweep manifest"), "{}", text(&o));
    assert!(launch(&out, &["--backend", "print"]).status.success());
    let o = sweep(&[out.to_str().unwrap(), "--task", "nope/seed0"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("\"nope/seed0\" is not a run"), "{}", text(&o));
    let o = launch(&out, &["--status"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("without --out"), "{}", text(&o));
    std::fs::remove_dir_all(&out).unwrap();
}

/// Every table script plans its whole grid (variants x seeds) without loading data, and a
/// printed command with shell-special characters in its run (d&r) runs as printed.
#[test]
fn every_table_script_plans_its_grid_and_its_commands_run_as_printed() {
    let root = env!("CARGO_MANIFEST_DIR");
    let quick = ["--set", "dataset=synthetic", "--set", "seeds=1", "--set", "warmup=1", "--set", "epochs=1"];
    for (script, variants) in [("table2", 11), ("table3", 6), ("table4", 4), ("table5", 6), ("table6", 5), ("table7", 8)] {
        let out = fresh(script);
        let path = format!("{root}/scripts/{script}.rhai");
        // mfeat is not loaded while planning: a missing data folder does not matter.
        let o = common::bin()
            .args(["sweep", &path, "--out", out.to_str().unwrap(), "--backend", "print", "--set", "seeds=3"])
            .env("GAPSCOPE_DATA", out.join("no-data"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{script}: {}", text(&o));
        assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), variants * 3, "{script}");
        std::fs::remove_dir_all(&out).unwrap();
    }
    let out = fresh("table2-dr");
    let mut args = vec![concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/table2.rhai"), "--out", out.to_str().unwrap(), "--backend", "print"];
    args.extend_from_slice(&quick);
    let o = sweep(&args);
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    let line = stdout.lines().find(|l| l.contains("d&r")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(line.ends_with("'sweep_run=d&r/seed0'"), "{line}");
    let run = std::process::Command::new("sh").args(["-c", line]).output().unwrap();
    assert!(run.status.success(), "{}", text(&run));
    assert!(final_table(&out, "d&r/seed0").is_file());
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn sweep_functions_outside_a_sweep_are_clean_errors() {
    let e = common::eval_err("sweep_plan(\"results/x/seed0\")");
    assert!(e.contains("test.rhai:1:") && e.contains("only `gapscope sweep` plans runs"), "{e}");
    assert!(!common::eval_ok("sweep_planning()").as_bool().unwrap());
    let dir = fresh("write-text");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("a.md");
    let _ = common::eval_ok(&format!("write_text({:?}, \"# A\\n\")", file.display().to_string()));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "# A\n");
    let e = common::eval_err(&format!("write_text({:?}, \"x\")", file.join("under-a-file.md").display().to_string()));
    assert!(e.contains("test.rhai:1:") && e.contains("under-a-file.md"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A time limit inside the requeue margin would requeue every task forever: refused up front.
#[test]
fn a_time_limit_shorter_than_the_requeue_margin_is_refused() {
    let out = fresh("short-time");
    let o = launch(&out, &["--backend", "slurm", "--time", "3:00"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("--time 3:00 leaves no time") && text(&o).contains("--signal-before"), "{}", text(&o));
    assert!(!out.join(".sweep/slurm").exists(), "scripts were written for a refused submission");
    std::fs::remove_dir_all(&out).unwrap();
}

/// Editing the grid's script after runs completed is allowed, with a warning that they came
/// from the earlier version.
#[test]
fn an_edited_script_warns_that_complete_runs_came_from_the_earlier_version() {
    let dir = fresh("edited-script");
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("grid.rhai");
    std::fs::copy(GRID, &script).unwrap();
    let out = dir.join("out");
    let mut args = vec![script.to_str().unwrap(), "--out", out.to_str().unwrap(), "--set", "variants=concat"];
    args.extend_from_slice(&SMALL);
    let o = sweep(&args);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains("warning"), "{}", text(&o));
    let o = sweep(&args);
    assert!(!text(&o).contains("warning"), "an unchanged script warned: {}", text(&o));
    std::fs::write(&script, std::fs::read_to_string(GRID).unwrap() + "// an edit\n").unwrap();
    let o = sweep(&args);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("changed since this sweep was planned: its 2 complete runs"), "{}", text(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--max-starts` ends a requeue loop, and a new submission gives the run a fresh count.
#[test]
fn a_run_started_too_often_fails_and_a_new_submission_retries_it() {
    let out = fresh("starts");
    let mut args = vec![GRID, "--out", out.to_str().unwrap(), "--set", "variants=concat", "--backend", "print"];
    args.extend_from_slice(&SMALL);
    assert!(sweep(&args).status.success());
    let state = out.join(".sweep/runs/concat%2Fseed0.json");
    std::fs::create_dir_all(state.parent().unwrap()).unwrap();
    // As a task left it after three starts that were each stopped.
    std::fs::write(&state, r#"{"state": "stopped", "host": "elsewhere", "pid": 1, "started": 0, "starts": 3}"#).unwrap();
    let o = sweep(&[out.to_str().unwrap(), "--task", "concat/seed0", "--max-starts", "3"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("started 3 times without finishing (limit 3)"), "{}", text(&o));
    assert!(status(&out).contains("failed 1"));
    let mut local = vec![GRID, "--out", out.to_str().unwrap(), "--set", "variants=concat", "--max-starts", "3"];
    local.extend_from_slice(&SMALL);
    let o = sweep(&local);
    assert!(o.status.success(), "{}", text(&o));
    assert!(final_table(&out, "concat/seed0").is_file());
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn a_scripted_method_from_a_module_runs_as_a_sweep_each_task_rebuilding_it() {
    let dir = fresh("scripted");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("mine.rhai"), "fn build(k) { method(#{ name: \"mine\", options: #{ k: k }, loss: |ctx| cross_entropy(ctx.forward().fused, ctx.labels) * ctx.options.k }) }\n").unwrap();
    std::fs::write(
        dir.join("grid.rhai"),
        "import \"experiments\" as ex; import \"mine\" as mine;\n\
         ex::table(\"mine\", \"Scripted grid\", [#{ name: \"mine-half\", recipe: \"baseline\", cfg: #{ method: mine::build(0.5) } }, #{ name: \"concat\", recipe: \"baseline\", cfg: #{} }], [\"last_acc\"], [\"acc\"]);\n",
    )
    .unwrap();
    let grid = dir.join("grid.rhai");
    let out = dir.join("swept");
    let mut args = vec![grid.to_str().unwrap(), "--out", out.to_str().unwrap()];
    args.extend_from_slice(&SMALL);
    args.extend_from_slice(&["--set", "seeds=1", "--jobs", "2"]);
    let o = sweep(&args);
    assert!(o.status.success(), "{}", text(&o));
    assert!(final_table(&out, "mine-half/seed0").is_file(), "{}", text(&o));
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("mine-half/seed0/config.json")).unwrap()).unwrap();
    assert_eq!(config["config"]["method"], "mine", "{config}");
    assert!(config["config"]["method_source"]["file"].as_str().unwrap().ends_with("mine.rhai"), "{config}");
    // The same grid in one process gives the same table.
    let single = dir.join("single");
    let mut run = vec!["run", grid.to_str().unwrap()];
    let single_out = format!("out={}", single.display());
    run.extend_from_slice(&SMALL);
    run.extend_from_slice(&["--set", "seeds=1", "--set", &single_out]);
    let r = gapscope().args(&run).output().unwrap();
    assert!(r.status.success(), "{}", text(&r));
    let rows = |p: &Path| {
        std::fs::read_to_string(p.join("summary.md"))
            .unwrap()
            .lines()
            // The summary's table, not the comparison that follows it.
            .take_while(|l| !l.starts_with("## "))
            .filter(|l| l.starts_with("| mine-half") || l.starts_with("| concat"))
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(rows(&out), rows(&single));
    assert_eq!(rows(&out).len(), 2);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_mistyped_set_key_stops_the_sweep_before_it_plans() {
    let out = fresh("typo");
    let o = launch(&out, &["--backend", "print", "--set", "epoch=3"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("--set epoch=... is never read by") && text(&o).contains("did you mean --set epochs?"), "{}", text(&o));
    assert!(!out.join("sweep.tsv").exists(), "a manifest was written for a sweep with an unread key");
    // --allow-unused-set plans it, and its printed commands run without the flag (checked once).
    let o = launch(&out, &["--backend", "print", "--set", "epoch=3", "--allow-unused-set"]);
    assert!(o.status.success(), "{}", text(&o));
    let first = String::from_utf8_lossy(&o.stdout).lines().next().unwrap().to_string();
    assert!(first.contains("--set epoch=3") && !first.contains("allow"), "{first}");
    let run = std::process::Command::new("sh").args(["-c", &first]).output().unwrap();
    assert!(run.status.success(), "{}", text(&run));
    std::fs::remove_dir_all(&out).unwrap();
}
