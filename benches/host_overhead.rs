//! Host overhead: the same loop of small-tensor operations driven from Rhai and from plain
//! Rust (a ratio, measured in one run), and the start-up time of `gapscope run` on an empty
//! script. `make bench` runs it and rewrites the table in docs/perf.md.

use gapscope::host::ScriptTensor;
use gapscope::{script, Host};
use rhai::Scope;
use std::time::Instant;
use tch::{Kind, Tensor};

const ITERS: i64 = 20_000;

fn rust_loop(iters: i64) -> f64 {
    let mut x = Tensor::f_ones([4, 4], (Kind::Float, tch::Device::Cpu)).unwrap();
    for _ in 0..iters {
        let y = x.f_mul_scalar(0.5).unwrap().f_add_scalar(1.0).unwrap();
        x = y.f_softmax(-1, Kind::Float).unwrap();
    }
    x.f_sum(Kind::Double).unwrap().double_value(&[])
}

fn best_of<F: FnMut() -> f64>(runs: usize, mut f: F) -> f64 {
    (0..runs).map(|_| f()).fold(f64::INFINITY, f64::min)
}

fn main() {
    tch::set_num_threads(1);
    let host = Host::new();
    let src = format!("let x = ones([4, 4]);\nfor i in 0..{ITERS} {{\n    x = (x * 0.5 + 1.0).softmax(-1);\n}}\nx");
    let mut scope = Scope::new();
    let ast = script::compile(&host, &scope, "bench.rhai", &src).unwrap();

    // Warm up both paths once, and check they compute the same thing.
    let from_rhai = script::eval(&host, &mut scope, "bench.rhai", &ast).unwrap().cast::<ScriptTensor>();
    let from_rust = rust_loop(ITERS);
    let rhai_sum = from_rhai.tensor().f_sum(Kind::Double).unwrap().double_value(&[]);
    assert!((rhai_sum - from_rust).abs() < 1e-4, "{rhai_sum} vs {from_rust}");

    let rust_s = best_of(5, || {
        let t = Instant::now();
        std::hint::black_box(rust_loop(ITERS));
        t.elapsed().as_secs_f64()
    });
    let rhai_s = best_of(5, || {
        let mut scope = Scope::new();
        let t = Instant::now();
        let _ = std::hint::black_box(script::eval(&host, &mut scope, "bench.rhai", &ast).unwrap());
        t.elapsed().as_secs_f64()
    });
    let per_op = |s: f64| s / (ITERS as f64 * 3.0) * 1e6;

    // Start-up: spawn the release binary on an empty script.
    let exe = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/gapscope");
    let empty = std::env::temp_dir().join("gapscope-bench-empty.rhai");
    std::fs::write(&empty, "").unwrap();
    let startup = if exe.exists() {
        let runs = 10;
        let t = Instant::now();
        for _ in 0..runs {
            let ok = std::process::Command::new(&exe).arg("run").arg(&empty).status().unwrap().success();
            assert!(ok);
        }
        Some(t.elapsed().as_secs_f64() / runs as f64)
    } else {
        None
    };

    println!("| measurement | value |");
    println!("|---|---|");
    println!("| small-tensor loop, plain Rust (tch) | {:.2} µs per op |", per_op(rust_s));
    println!("| same loop from Rhai | {:.2} µs per op |", per_op(rhai_s));
    println!("| Rhai / Rust time ratio | {:.2}x |", rhai_s / rust_s);
    println!("| Rhai overhead per op | {:.2} µs |", per_op(rhai_s) - per_op(rust_s));
    match startup {
        Some(s) => println!("| `gapscope run empty.rhai` start-up (mean of 10) | {:.1} ms |", s * 1e3),
        None => println!("| `gapscope run empty.rhai` start-up | not measured: build target/release/gapscope first |"),
    }
}
