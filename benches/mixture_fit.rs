//! Mixture-fit speed against scikit-learn, in one run: a 2-component GMM on 15k points
//! (Kinetics-Sounds' training-set size) and on 1M points, with the same k, n_init, tol,
//! max_iter and reg_covar on both sides. `make bench` runs it and rewrites the table in
//! docs/perf.md. Needs GAPSCOPE_PYTHON (written by scripts/setup.sh) for the sklearn side.

use gapscope::mixture::{fit, Family, FitOptions};
use gapscope::rng::Rng;
use std::process::Command;
use std::time::Instant;

/// Gap-like data: a balanced majority near 0 and an imbalanced tail, z-scored like the
/// gaps the trainer fits.
fn gaps(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = Rng::new(seed);
    let raw: Vec<f64> = (0..n).map(|_| if rng.uniform() < 0.75 { 0.05 + 0.12 * rng.normal() } else { 0.6 + 0.2 * rng.normal() }).collect();
    let mean = raw.iter().sum::<f64>() / n as f64;
    let std = (raw.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
    raw.iter().map(|v| (v - mean) / std).collect()
}

struct Setting {
    name: &'static str,
    n_init: usize,
    tol: f64,
    max_iter: usize,
}

fn main() {
    let python = std::env::var("GAPSCOPE_PYTHON").unwrap_or_else(|_| "python3".into());
    let dir = std::env::temp_dir().join("gapscope-bench-mixture");
    std::fs::create_dir_all(&dir).unwrap();
    let sizes = [15_000usize, 1_000_000];
    let files: Vec<_> = sizes
        .iter()
        .map(|&n| {
            let path = dir.join(format!("gaps_{n}.npy"));
            tch::Tensor::from_slice(&gaps(n, 7)).write_npy(&path).unwrap();
            path
        })
        .collect();
    let settings = [
        Setting { name: "sklearn defaults", n_init: 1, tol: 1e-3, max_iter: 100 },
        Setting { name: "gapscope defaults", n_init: 5, tol: 1e-6, max_iter: 1000 },
    ];
    println!(
        "| points | settings (n_init, tol, max_iter) | gapscope | sklearn {} | speed-up | mean log-lik gapscope / sklearn |",
        sklearn_version(&python)
    );
    println!("|---:|---|---:|---:|---:|---|");
    for s in &settings {
        let args = [s.n_init.to_string(), s.tol.to_string(), s.max_iter.to_string(), "1e-6".into()];
        let out = Command::new(&python)
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/sklearn_gmm.py"))
            .arg("5")
            .arg("2")
            .args(&args)
            .args(&files)
            .output()
            .expect("run the sklearn side (set GAPSCOPE_PYTHON)");
        assert!(out.status.success(), "sklearn side failed: {}", String::from_utf8_lossy(&out.stderr));
        let lines: Vec<serde_json::Value> =
            String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        for ((n, file), sk) in sizes.iter().zip(&files).zip(&lines) {
            let x = gapscope::gap::to_f64_vec("bench", &tch::Tensor::read_npy(file).unwrap()).unwrap();
            let options = FitOptions {
                family: Family::Gaussian,
                ks: vec![2],
                n_init: s.n_init,
                tol: s.tol,
                max_iter: s.max_iter,
                ..FitOptions::default()
            };
            let m = fit(&x, &options).unwrap();
            let mut best = f64::INFINITY;
            for _ in 0..5 {
                let t = Instant::now();
                std::hint::black_box(fit(&x, &options).unwrap());
                best = best.min(t.elapsed().as_secs_f64());
            }
            let sk_s = sk["seconds"].as_f64().unwrap();
            println!(
                "| {n} | {} ({}, {:e}, {}) | {:.2} ms | {:.2} ms | {:.1}x | {:.6} / {:.6} |",
                s.name,
                s.n_init,
                s.tol,
                s.max_iter,
                best * 1e3,
                sk_s * 1e3,
                sk_s / best,
                m.mean_loglik(),
                sk["mean_loglik"].as_f64().unwrap()
            );
        }
    }
}

fn sklearn_version(python: &str) -> String {
    Command::new(python)
        .args(["-c", "import sklearn; print(sklearn.__version__)"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
