//! End to end: one training epoch read from disk, gapscope against OGM-GE's own loop, in one
//! run. A CREMA-D tree (clips of 2.5 s at 16 kHz, three 480 x 360 JPEG frames each) is written
//! to a temporary folder; both sides train the paper's ResNet-18 pair on it with OGM-GE
//! (alpha 0.8), batch 64, SGD (lr 1e-3, momentum 0.9, weight decay 1e-4), CPU, 2 threads.
//! gapscope: `trainer::epoch` (what `train_epoch` runs) over the lazily decoded split, its
//! loader workers running ahead of the step. Python: benches/epoch_ref.py, main.py's
//! train_epoch over its dataset class and DataLoader. Each side also times its loader alone
//! and its steps over batches already in memory, to show where the epoch goes.
//! `make bench` (BENCHES=epoch) rewrites the table in docs/perf.md.

#[path = "common/corpus_tree.rs"]
mod corpus_tree;

use gapscope::data::audio::{FrontEnd, FrontEndKind};
use gapscope::data::corpus::{cremad, CorpusOptions};
use gapscope::data::split_files::CremadLabels;
use gapscope::data::{Batch, BatchOptions, Batches, Split};
use gapscope::train::autocast::Precision;
use gapscope::train::declaration::BuildInputs;
use gapscope::train::memory_format;
use gapscope::train::method::Method;
use gapscope::train::options::Value;
use gapscope::train::{encoder::EncoderKind, fusion::FusionKind, methods, model::*, optim::*, trainer};
use std::rc::Rc;
use std::time::Instant;

const THREADS: i32 = 2;
/// Training clips; GAPSCOPE_BENCH_CLIPS changes it (a quick check of the bench itself).
const TRAIN_CLIPS: usize = 256;
const BATCH: usize = 64;
/// The Python DataLoader's worker counts timed (main.py sets 32).
const PY_WORKERS: [usize; 2] = [2, 32];

fn batching(workers: usize, seed: u64) -> BatchOptions {
    BatchOptions { batch_size: BATCH, seed, augment: true, workers, ..BatchOptions::default() }
}

fn setup(split: &Split) -> (Model, Optimizer, Box<dyn Method>) {
    let ds = &split.dataset;
    let spec = ModelSpec {
        modalities: ds.modalities.iter().map(|m| m.name.clone()).collect(),
        shapes: ds.modalities.iter().map(|m| m.shape.clone()).collect(),
        encoders: vec![EncoderKind::parse("resnet18").unwrap(), EncoderKind::parse("resnet18").unwrap()],
        fusion: FusionKind::Concat,
        classes: ds.classes() as i64,
        seed: 0,
        device: tch::Device::Cpu,
        mmtm: 0,
    };
    let model = Model::new(&spec).unwrap();
    let opt = Optimizer::new(
        OptimKind::Sgd { momentum: 0.9, nesterov: false },
        1e-3,
        1e-4,
        Schedule::None,
        model.architecture.clone(),
        model.trainable_parameters(),
    )
    .unwrap();
    let method = methods::build("ogm-ge", &[("alpha".into(), Value::Float(0.8))], &BuildInputs::default()).unwrap();
    (model, opt, Box::new(method))
}

struct Side {
    /// What the row runs: precision and memory layout.
    name: String,
    decode: f64,
    /// Python's loader pass once its workers start warm (gapscope's threads have no cold start).
    decode_warm: Option<f64>,
    step: f64,
    epochs: Vec<(usize, f64)>,
}

/// gapscope's settings timed: float32 as OGM-GE trains, then the two switches (`channels_last`,
/// `amp`) a user turns on; (row name, amp, channels_last, loader workers timed).
const CONFIGS: [(&str, Option<Precision>, bool, &[usize]); 3] = [
    ("float32", None, false, &[1, 2]),
    ("float32, channels_last", None, true, &[2]),
    ("bf16 autocast, channels_last", Some(Precision::Bf16), true, &[2]),
];

/// The same batch, its tensors shared.
fn shallow(b: &Batch) -> Batch {
    Batch {
        inputs: b.inputs.iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect(),
        labels: b.labels.shallow_clone(),
        indices: b.indices.shallow_clone(),
        keep: b.keep.as_ref().map(|k| k.shallow_clone()),
    }
}

fn gapscope_side(split: &Split) -> Vec<Side> {
    let t = Instant::now();
    let batches: Vec<Batch> = Batches::new(split, &batching(2, 0)).unwrap().map(|b| b.unwrap()).collect();
    let decode = t.elapsed().as_secs_f64();
    let count = batches.len();
    let mut rows = Vec::new();
    for (name, amp, channels_last, workers) in CONFIGS {
        let (model, mut opt, mut method) = setup(split);
        let batches: Vec<Batch> = if channels_last {
            memory_format::model_channels_last(&model).unwrap();
            batches.iter().map(|b| memory_format::batch_channels_last(shallow(b)).unwrap()).collect()
        } else {
            batches.iter().map(shallow).collect()
        };
        // One untimed step first, as the Python side takes: libtorch's first convolutions
        // choose their kernels and the allocator fills.
        trainer::step(&model, &mut opt, &batches[0], method.as_mut(), 0, (0, count), amp).unwrap();
        let t = Instant::now();
        for (i, b) in batches.iter().enumerate() {
            trainer::step(&model, &mut opt, b, method.as_mut(), 0, (i, count), amp).unwrap();
        }
        let step = t.elapsed().as_secs_f64();
        drop(batches);
        let epochs = workers
            .iter()
            .enumerate()
            .map(|(e, &w)| {
                let b = BatchOptions { channels_last, ..batching(w, 1 + e as u64) };
                let plan = trainer::EpochPlan { train: split, val: None, batching: &b, epoch: 1 + e, quiet: true, amp };
                let t = Instant::now();
                trainer::epoch(&model, &mut opt, &plan, method.as_mut()).unwrap();
                (w, t.elapsed().as_secs_f64())
            })
            .collect();
        rows.push(Side { name: format!("gapscope `train_epoch`, {name}"), decode, decode_warm: None, step, epochs });
    }
    rows
}

fn python_side(root: &std::path::Path, shapes: &[Vec<i64>]) -> Option<Side> {
    let out = corpus_tree::python()
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/epoch_ref.py"))
        .arg(root)
        .arg(THREADS.to_string())
        .args(shapes.iter().map(|s| s.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x")))
        .args(PY_WORKERS.iter().map(|w| w.to_string()))
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!("epoch_ref.py: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let epochs = PY_WORKERS.iter().map(|w| Some((*w, v["epoch_s"][w.to_string()].as_f64()?))).collect::<Option<Vec<_>>>()?;
    let name = "Python: OGM-GE's main.py loop and DataLoader, float32".to_string();
    Some(Side { name, decode: v["decode_s"].as_f64()?, decode_warm: v["decode_warm_s"].as_f64(), step: v["step_s"].as_f64()?, epochs })
}

fn main() {
    tch::set_num_threads(THREADS);
    let root = std::env::temp_dir().join(format!("gapscope-bench-epoch-{}", std::process::id()));
    let clips = std::env::var("GAPSCOPE_BENCH_CLIPS").ok().and_then(|c| c.parse().ok()).unwrap_or(TRAIN_CLIPS);
    corpus_tree::build(&root, "cremad", clips + 4);
    let ds = Rc::new(cremad::load(CorpusOptions::new(root.clone(), FrontEnd::new(FrontEndKind::A), 1), CremadLabels::Ogm).unwrap());
    let split = ds.split("train").unwrap();
    // The Python side first, on a quiet machine, then gapscope's; each in its own process state.
    // The shapes go to Python so its parent process never decodes a clip, as main.py's does
    // not: each epoch's fresh DataLoader workers start cold there.
    let shapes: Vec<Vec<i64>> = ds.modalities.iter().map(|m| m.shape.clone()).collect();
    let python = python_side(&root, &shapes);
    let ours = gapscope_side(&split);
    let _ = std::fs::remove_dir_all(&root);

    println!(
        "{} training clips (CREMA-D layout: 2.5 s at 16 kHz, one of three 480 x 360 JPEG frames per clip), ResNet-18 pair, OGM-GE (alpha 0.8), batch {BATCH}, SGD, CPU, {THREADS} libtorch threads per side; gapscope built in the dev profile.\n",
        split.len()
    );
    println!("| side and settings | loader alone, 2 workers (s; Python: cold, warm) | steps over batches in memory (s) | epoch from disk (s), by loader workers | epoch / Python's best epoch |");
    println!("|---|---:|---:|---|---:|");
    let fmt = |s: &Side| {
        s.epochs.iter().map(|(w, t)| format!("{t:.1} ({w} worker{})", if *w == 1 { "" } else { "s" })).collect::<Vec<_>>().join(", ")
    };
    let best = |s: &Side| s.epochs.iter().map(|(_, t)| *t).fold(f64::INFINITY, f64::min);
    let reference = python.as_ref().map(best);
    for side in python.iter().chain(&ours) {
        let ratio = reference.map(|r| format!("{:.2}x", best(side) / r)).unwrap_or_else(|| "n/a".into());
        let decode = match side.decode_warm {
            Some(w) => format!("{:.1}, {w:.1}", side.decode),
            None => format!("{:.1}", side.decode),
        };
        println!("| {} | {decode} | {:.1} | {} | {ratio} |", side.name, side.step, fmt(side));
    }
    if python.is_none() {
        println!("\nThe Python side did not run (it needs librosa and Pillow: tests/fixtures/gen_frontends.py).");
    }
}
