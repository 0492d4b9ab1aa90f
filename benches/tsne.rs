//! t-SNE against scikit-learn in one run: the same inputs, the same settings (perplexity 30,
//! 1000 iterations, PCA start), wall time of one fit each, with the KL divergence reached and
//! trustworthiness (k = 5) of both, so speed is compared at equal quality. Inputs: the exact
//! fixture (400 points), the Barnes-Hut fixture (2,500 points) and 10,000 points of 50-D blobs.
//!
//! `BENCHES=tsne bash scripts/bench.sh` rewrites the table in docs/perf.md (dev profile: our
//! code at opt-level 1, so the ratio understates a release build).

use gapscope::manifold::{trustworthiness, tsne, TsneMethod, TsneOptions};
use gapscope::tensor::io;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

fn main() {
    tch::set_num_threads(2);
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tsne");
    let big = std::env::temp_dir().join("gapscope-tsne-bench-10k.npy");
    // 10,000 points in 12 blobs of 50-D: numpy writes it so both sides read one file.
    let python = std::env::var("GAPSCOPE_PYTHON").unwrap_or_else(|_| "python3".into());
    let gen = "import numpy as np, sys; r = np.random.default_rng(7); c = r.normal(0, 2.0, (12, 50)); y = r.integers(0, 12, 10000); np.save(sys.argv[1], c[y] + r.normal(0, 1, (10000, 50)))";
    assert!(Command::new(&python).args(["-c", gen, big.to_str().unwrap()]).status().unwrap().success());
    let cases = [
        ("400 x 10, exact", format!("{fixtures}/blobs_exact.npy"), "exact"),
        ("2,500 x 20, Barnes-Hut", format!("{fixtures}/blobs_bh.npy"), "barnes_hut"),
        ("10,000 x 50, Barnes-Hut", big.display().to_string(), "barnes_hut"),
    ];
    println!("`BENCHES=tsne bash scripts/bench.sh` (benches/tsne.rs, benches/tsne_ref.py; dev profile, our code at opt-level 1): one fit each, perplexity 30, 1000 iterations, PCA start, 2 threads.");
    println!();
    println!("| input | gapscope s | sklearn s | sklearn / gapscope | KL gapscope | KL sklearn | trust. gapscope | trust. sklearn |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (label, path, method) in cases {
        let x = io::load_npy(Path::new(&path)).unwrap();
        let opts = TsneOptions {
            method: if method == "exact" { TsneMethod::Exact } else { TsneMethod::BarnesHut },
            quiet: true,
            ..TsneOptions::default()
        };
        let t = Instant::now();
        let r = tsne(&x, &opts).unwrap();
        let ours = t.elapsed().as_secs_f64();
        let trust = trustworthiness(&x, &r.embedding, 5).unwrap();
        let out =
            Command::new(&python).args([concat!(env!("CARGO_MANIFEST_DIR"), "/benches/tsne_ref.py"), method, &path]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
        let theirs = v["seconds"].as_f64().unwrap();
        println!(
            "| {label} | {ours:.2} | {theirs:.2} | {:.2}x | {:.4} | {:.4} | {trust:.4} | {:.4} |",
            theirs / ours,
            r.kl,
            v["kl"].as_f64().unwrap(),
            v["trust"].as_f64().unwrap()
        );
    }
    std::fs::remove_file(&big).ok();
}
