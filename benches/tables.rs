//! Run records at scale: `runs(dir)` over 1,000 run folders (config.json + final.parquet each),
//! and loading the per-sample tables of 100 runs of 15,000 samples then a group-by over them,
//! against the same work in pandas (benches/tables_ref.py: json + read_parquet + concat +
//! groupby), in one run. `make bench` rewrites the table in docs/perf.md.

use gapscope::results::record::RunRecord;
use gapscope::results::values::{frame, Value};
use gapscope::results::{query, runs};
use std::path::Path;
use std::time::Instant;

fn config(i: usize) -> serde_json::Value {
    serde_json::json!({
        "recipe": if i.is_multiple_of(2) { "two_stage" } else { "baseline" }, "seed": i % 5, "dataset": "mfeat",
        "splits": { "train": 1400, "val": 300, "test": 300 }, "model": "pix cnn:32 [1, 16, 15] + fou mlp:256,256 [76] -> concat -> 10 classes", "device": "cpu",
        "config": { "warmup": 10, "epochs": 20, "refit": 1, "gap": if i.is_multiple_of(3) { "kl" } else { "prob" }, "family": "gmm", "alpha": 1.0, "beta": 1.0,
                    "gamma": 1.0, "rho": 0.95, "use_weights": true, "unimodal": true, "lr": 0.01, "kind": "sgd", "batch": 64, "seed": i % 5,
                    "reset": true, "tau": 0.5, "quiet": true, "resume": true, "keep": 2, "weights": "stored", "csv": false, "variant": format!("v{}", i % 7) }
    })
}

fn build_runs(root: &Path, n: usize) {
    for i in 0..n {
        let rec = RunRecord::open(&root.join(format!("v{}/seed{i:04}", i % 7)), false).unwrap();
        rec.write_config(config(i)).unwrap();
        let f = |x: f64| vec![Value::Float(x)];
        let fin = frame(vec![
            ("last_epoch".into(), vec![Value::Int(29)]),
            ("last_acc".into(), f(0.9 + (i % 10) as f64 * 0.005)),
            ("last_f1".into(), f(0.9)),
            ("last_acc_first".into(), f(0.95)),
            ("last_acc_second".into(), f(0.8)),
            ("best_epoch".into(), vec![Value::Int(20)]),
            ("best_acc".into(), f(0.91)),
        ])
        .unwrap();
        rec.write_table("final", &fin).unwrap();
    }
}

fn build_samples(root: &Path, runs: usize, n: usize) {
    for r in 0..runs {
        let rec = RunRecord::open(&root.join(format!("run{r:03}")), false).unwrap();
        rec.write_config(config(r)).unwrap();
        let refits = 3;
        let rows = n * refits;
        let col = |f: &dyn Fn(usize) -> Value| (0..rows).map(f).collect::<Vec<_>>();
        let df = frame(vec![
            ("epoch".into(), col(&|i| Value::Int(10 + (i / n) as i64))),
            ("index".into(), col(&|i| Value::Int((i % n) as i64))),
            ("gap".into(), col(&|i| Value::Float(((i * 7919 + r) % 1000) as f64 / 500.0 - 1.0))),
            ("z".into(), col(&|i| Value::Float(((i * 104729 + r) % 1000) as f64 / 250.0 - 2.0))),
            ("w0".into(), col(&|i| Value::Float(((i * 31 + r) % 100) as f64 / 100.0))),
        ])
        .unwrap();
        rec.write_table("samples", &df).unwrap();
    }
}

fn best_of(k: usize, mut f: impl FnMut() -> usize) -> (f64, usize) {
    let mut best = f64::INFINITY;
    let mut rows = 0;
    for _ in 0..k {
        let t = Instant::now();
        rows = f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    (best, rows)
}

fn python(root_runs: &Path, root_samples: &Path) -> Option<(f64, f64)> {
    let py = std::env::var("GAPSCOPE_PYTHON").unwrap_or_else(|_| "python3".into());
    let libs = format!("{}/.cache/gapscope/bench-libs", std::env::var("HOME").unwrap_or_default());
    let out = std::process::Command::new(py)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/tables_ref.py"))
        .args([root_runs, root_samples])
        .env("PYTHONPATH", libs)
        .output()
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some((v["runs"].as_f64()?, v["samples"].as_f64()?))
}

fn main() {
    let root = std::env::temp_dir().join(format!("gapscope-bench-tables-{}", std::process::id()));
    let (rr, rs) = (root.join("runs"), root.join("samples"));
    build_runs(&rr, 1000);
    build_samples(&rs, 100, 15_000);
    let (t_runs, n_runs) = best_of(3, || runs::runs(&rr).unwrap().0.height());
    let (t_samples, n_groups) = best_of(3, || {
        let (df, _) = runs::table(&rs, "samples").unwrap();
        let g = query::group_agg(
            &df,
            &["run".into(), "epoch".into()],
            &["avg(gap) AS mean_gap".into(), "stddev(z) AS sd_z".into(), "avg(w0) AS mean_w0".into(), "count(*) AS n".into()],
        )
        .unwrap();
        g.height()
    });
    let py = python(&rr, &rs);
    let _ = std::fs::remove_dir_all(&root);
    let (p_runs, p_samples, r_runs, r_samples) = match py {
        Some((a, b)) => (format!("{:.3} s", a), format!("{:.3} s", b), format!("{:.1}x", a / t_runs), format!("{:.1}x", b / t_samples)),
        None => ("n/a".into(), "n/a".into(), "n/a".into(), "n/a".into()),
    };
    println!("Best of 3, one process each side; pandas 3 with pyarrow for Python.\n");
    println!("| task | rows out | gapscope | pandas | pandas / gapscope |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| `runs(dir)`: 1,000 run folders (config.json + final.parquet) into one table | {n_runs} | {t_runs:.3} s | {p_runs} | {r_runs} |"
    );
    println!("| `runs(dir, \"samples\")` of 100 runs x 15,000 samples x 3 refits, then group by (run, epoch): mean gap, sd z, mean w0, n | {n_groups} | {t_samples:.3} s | {p_samples} | {r_samples} |");
}
