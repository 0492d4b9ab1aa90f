//! Training speed: seconds per epoch of the warm-up loss (Eq. 10) for the same model driven
//! three ways in one run: step by step from a Rhai loop (`train_step` per batch), by the Rust
//! epoch function (`train_epoch`), and by the PyTorch loop the public repos write
//! (benches/train_ref.py over tests/fixtures/torch_models.py), with the same batch size, SGD
//! settings and libtorch thread count. Workloads: the demo's model on mfeat (pix CNN, fou MLP)
//! and a ResNet-18 pair at a small input size. `make bench` rewrites the table in docs/perf.md.

use gapscope::data::{BatchOptions, Batches};
use gapscope::train::{
    encoder::EncoderKind,
    fusion::FusionKind,
    loss,
    model::{Model, ModelSpec},
    optim::*,
};
use gapscope::{script, Host};
use rhai::{Array, Map, Scope};
use std::time::Instant;

const THREADS: i32 = 2;
// Rounds alternate which driver goes first, so neither gains from running second.
const ROUNDS: usize = 8;

struct Workload {
    name: &'static str,
    data: &'static str,
    encoders: [&'static str; 2],
    batch: usize,
}

/// The fastest epoch: on a shared 2-core machine single epochs vary by 15% with outside load,
/// which only ever adds time, so the minimum is the steadiest estimate of each loop's cost.
fn best(v: Vec<f64>) -> f64 {
    v.into_iter().fold(f64::INFINITY, f64::min)
}

fn floats(m: &Map, key: &str) -> Vec<f64> {
    m[key].clone().cast::<Array>().iter().map(|x| x.as_float().unwrap()).collect()
}

/// (Rhai step loop, Rust epoch) seconds per epoch, the train split's size and the classes;
/// writes the split for Python.
fn gapscope_side(w: &Workload, export: &str) -> (f64, f64, i64, i64) {
    let src = format!(
        "let data = {data};
        let mods = data.modalities;
        let m = model(data, #{{ modalities: mods, encoders: [\"{e0}\", \"{e1}\"], seed: 0, device: \"cpu\" }});
        let o = optimizer(m, #{{ kind: \"sgd\", lr: 0.001 }});
        train_epoch(m, o, data.train, #{{ batch: {b}, seed: 100, quiet: true }});
        let rust = []; let rhai = [];
        for r in 0..{rounds} {{
            for which in (if r % 2 == 0 {{ [0, 1] }} else {{ [1, 0] }}) {{
                let t = timestamp();
                if which == 0 {{
                    train_epoch(m, o, data.train, #{{ batch: {b}, seed: r, quiet: true }});
                    rust.push(t.elapsed);
                }} else {{
                    for b in data.train.batches(#{{ batch: {b}, seed: r }}) {{ train_step(m, o, b, #{{ loss: \"warmup\" }}); }}
                    rhai.push(t.elapsed);
                }}
            }}
        }}
        for b in data.train.batches(#{{ batch: 1000000, shuffle: false }}) {{
            save_safetensors(#{{ first: b[mods[0]], second: b[mods[1]], labels: b.labels }}, \"{export}\");
        }}
        #{{ rust: rust, rhai: rhai, n: data.train.len, classes: data.classes }}",
        data = w.data,
        e0 = w.encoders[0],
        e1 = w.encoders[1],
        b = w.batch,
        rounds = ROUNDS,
    );
    let host = Host::new();
    let mut scope = Scope::new();
    let ast = script::compile(&host, &scope, "bench.rhai", &src).map_err(|e| e.0).unwrap();
    let out = script::eval(&host, &mut scope, "bench.rhai", &ast).map_err(|e| e.0).unwrap().cast::<Map>();
    (best(floats(&out, "rhai")), best(floats(&out, "rust")), out["n"].as_int().unwrap(), out["classes"].as_int().unwrap())
}

fn python_side(w: &Workload, export: &str, classes: i64) -> Option<f64> {
    let python = std::env::var("GAPSCOPE_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(python)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/train_ref.py"))
        .args([export, w.encoders[0], w.encoders[1], &classes.to_string(), &w.batch.to_string(), &ROUNDS.to_string(), &THREADS.to_string()])
        .output()
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some(best(v["epoch_s"].as_array()?.iter().filter_map(|x| x.as_f64()).collect()))
}

fn main() {
    tch::set_num_threads(THREADS);
    let workloads = [
        Workload {
            name: "demo model on mfeat (pix cnn, fou mlp)",
            data: "dataset(\"mfeat\", #{ views: [\"pix\", \"fou\"], seed: 0 })",
            encoders: ["cnn", "mlp"],
            batch: 64,
        },
        Workload {
            name: "ResNet-18 pair (1x32x32 spectrogram, 2 frames 3x32x32)",
            data: "dataset(\"synthetic\", #{ n: 360, classes: 6, audio_shape: [1, 32, 32], visual_shape: [3, 2, 32, 32], seed: 1 })",
            encoders: ["resnet18", "resnet18"],
            batch: 32,
        },
    ];
    // Each workload runs in a fresh process, as the Python side does: a process that has
    // already trained one model keeps a heap shaped by it, which moved the second workload's
    // times by up to a fifth.
    if let Ok(only) = std::env::var("GAPSCOPE_BENCH_ONLY") {
        match only.parse::<usize>() {
            Ok(i) => row(&workloads[i], i),
            Err(_) => breakdown(),
        }
        return;
    }
    println!("Seconds per training epoch (fastest of {ROUNDS} epochs each, the two gapscope drivers alternating, after one untimed epoch), warm-up loss, SGD, libtorch and PyTorch on {THREADS} threads, CPU; each workload in a fresh process.\n");
    println!("| workload | train samples | batch | Rhai step loop | Rust epoch | PyTorch loop | Rhai / Rust | PyTorch / Rust |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let me = std::env::current_exe().unwrap();
    for which in (0..workloads.len()).map(|i| i.to_string()).chain(["breakdown".to_string()]) {
        let out = std::process::Command::new(&me).env("GAPSCOPE_BENCH_ONLY", &which).output().unwrap();
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
}

fn row(w: &Workload, i: usize) {
    let dir = std::env::temp_dir().join(format!("gapscope-bench-train-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let export = dir.join(format!("split{i}.safetensors")).display().to_string();
    let (rhai, rust, n, classes) = gapscope_side(w, &export);
    let (py_s, py_ratio) = match python_side(w, &export, classes) {
        Some(p) => (format!("{p:.3} s"), format!("{:.2}x", p / rust)),
        None => ("n/a".into(), "n/a".into()),
    };
    println!("| {} | {n} | {} | {rhai:.3} s | {rust:.3} s | {py_s} | {:.3}x | {py_ratio} |", w.name, w.batch, rhai / rust);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Where the Rust epoch's time goes on the demo model: batching, forward + loss, backward and
/// update, as shares of the epoch (three epochs after one untimed).
fn breakdown() {
    let ds = std::rc::Rc::new(
        gapscope::data::mfeat::load(&gapscope::data::mfeat::data_dir().join("mfeat"), &["pix".into(), "fou".into()], 0.15, 0.15, 0, false)
            .unwrap(),
    );
    let split = ds.split("train").unwrap();
    let spec = ModelSpec {
        modalities: vec!["pix".into(), "fou".into()],
        shapes: vec![vec![1, 16, 15], vec![76]],
        encoders: vec![EncoderKind::parse("cnn").unwrap(), EncoderKind::parse("mlp").unwrap()],
        fusion: FusionKind::Concat,
        classes: 10,
        seed: 0,
        device: tch::Device::Cpu,
        mmtm: 0,
    };
    let m = Model::new(&spec).unwrap();
    let mut params: Vec<_> = m.vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
    params.sort_by(|a, b| a.0.cmp(&b.0));
    let mut opt =
        Optimizer::new(OptimKind::Sgd { momentum: 0.9, nesterov: false }, 1e-3, 1e-4, Schedule::None, m.architecture.clone(), params)
            .unwrap();
    let mut parts = [0.0f64; 3];
    let mut total = 0.0;
    for e in 0..4u64 {
        let epoch_start = Instant::now();
        let mut t = Instant::now();
        let mut lap = |i: usize, t: &mut Instant| {
            if e > 0 {
                parts[i] += t.elapsed().as_secs_f64();
            }
            *t = Instant::now();
        };
        for b in Batches::new(&split, &BatchOptions { seed: e, ..Default::default() }).unwrap() {
            let b = b.unwrap();
            lap(0, &mut t);
            let f = m.forward(&b.inputs[0].1, &b.inputs[1].1, true).unwrap();
            let l = loss::warmup(&f.logits, &b.labels).unwrap();
            let _ = l.total.double_value(&[]);
            lap(1, &mut t);
            opt.backward_step(&l.total).unwrap();
            lap(2, &mut t);
        }
        if e > 0 {
            total += epoch_start.elapsed().as_secs_f64();
        }
    }
    let pct = |x: f64| 100.0 * x / total;
    println!(
        "\nWhere the Rust epoch's time goes (demo model, 3 epochs): batching {:.1}%, forward + loss {:.1}%, backward + SGD update {:.1}%.",
        pct(parts[0]),
        pct(parts[1]),
        pct(parts[2])
    );
}
