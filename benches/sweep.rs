//! A table's grid run three ways in one run: one `gapscope run` process (the table script as
//! it is), and `gapscope sweep --backend local` with one and with two processes at a time (the
//! cores shared out as torch threads). Wall time of each, and the ratio to the one process.
//! `BENCHES=sweep bash scripts/bench.sh` runs it and rewrites its table in docs/perf.md.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const SETS: [&str; 4] = ["dataset=mfeat", "seeds=2", "warmup=2", "epochs=4"];

fn exe() -> &'static str {
    env!("CARGO_BIN_EXE_gapscope")
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/table3.rhai")
}

fn timed(mut c: Command) -> f64 {
    let t = Instant::now();
    let out = c.output().expect("gapscope runs");
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    t.elapsed().as_secs_f64()
}

fn main() {
    let root = std::env::temp_dir().join(format!("gapscope-bench-sweep-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let sets: Vec<String> = SETS.iter().flat_map(|s| ["--set".to_string(), s.to_string()]).collect();

    let one = root.join("one-process");
    let mut c = Command::new(exe());
    c.arg("run").arg(script()).args(&sets).arg("--set").arg(format!("out={}", one.display()));
    let one_s = timed(c);

    let mut rows = Vec::new();
    for jobs in [1, 2] {
        let out = root.join(format!("jobs{jobs}"));
        let mut c = Command::new(exe());
        c.arg("sweep").arg(script()).arg("--out").arg(&out).args(&sets).args(["--jobs", &jobs.to_string(), "-q"]);
        rows.push((jobs, timed(c)));
    }
    let runs =
        std::fs::read_to_string(root.join("jobs1/sweep.tsv")).unwrap().lines().filter(|l| l.contains('\t') && !l.starts_with('#')).count()
            - 1;
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("`BENCHES=sweep bash scripts/bench.sh` (benches/sweep.rs): scripts/table3.rhai on mfeat, {runs} runs (6 variants x 2 seeds, warmup 2 + 4 epochs each), wall time of the whole grid and its summary.\n");
    println!("| how | wall s | speed-up over one process |");
    println!("|---|---:|---:|");
    println!("| `gapscope run` (one process, {threads} torch threads) | {one_s:.1} | 1.00x |");
    for (jobs, s) in rows {
        println!(
            "| `gapscope sweep --jobs {jobs}` ({jobs} process{} at a time, {} torch thread{} each) | {s:.1} | {:.2}x |",
            if jobs > 1 { "es" } else { "" },
            (threads / jobs).max(1),
            if (threads / jobs).max(1) > 1 { "s" } else { "" },
            one_s / s
        );
    }
    let _ = std::fs::remove_dir_all(&root);
}
