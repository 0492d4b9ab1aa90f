//! Corpus loader throughput: samples per second through `Batches` (decode wav, front-end,
//! frames, train transforms, stack) with 1 and 2 worker threads, on generated trees in each
//! layout, and for CREMA-D the same work as OGM-GE's Python loader (librosa.load at 22,050 Hz,
//! STFT, PIL frames with RandomResizedCrop + flip, a torch DataLoader with 1 and 2 workers, cold
//! as each epoch starts them and warm) in the same run. `make bench` runs it and rewrites the
//! table in docs/perf.md.

#[path = "common/corpus_tree.rs"]
mod corpus_tree;

use corpus_tree::build;
use gapscope::data::audio::{FrontEnd, FrontEndKind};
use gapscope::data::corpus::{ave, cremad, kinetics, CorpusOptions};
use gapscope::data::split_files::CremadLabels;
use gapscope::data::{BatchOptions, Batches, Dataset};
use std::path::Path;
use std::rc::Rc;
use std::time::Instant;

fn open(root: &Path, layout: &str) -> Dataset {
    let root = root.to_path_buf();
    match layout {
        "cremad" => cremad::load(CorpusOptions::new(root, FrontEnd::new(FrontEndKind::A), 1), CremadLabels::Ogm).unwrap(),
        "ave" => ave::load(CorpusOptions::new(root, FrontEnd { samples: 160_000, ..FrontEnd::new(FrontEndKind::B) }, 4)).unwrap(),
        _ => kinetics::load(CorpusOptions::new(root, FrontEnd::new(FrontEndKind::C), 3), None).unwrap(),
    }
}

/// Samples per second over one augmented pass of the train split (best of two).
fn throughput(ds: &Rc<Dataset>, workers: usize) -> f64 {
    let split = ds.split("train").unwrap();
    let mut best = 0.0f64;
    for seed in 0..2 {
        let opts = BatchOptions { batch_size: 16, seed, augment: true, workers, ..BatchOptions::default() };
        let t = Instant::now();
        let mut n = 0;
        for b in Batches::new(&split, &opts).unwrap() {
            n += b.unwrap().labels.size()[0];
        }
        best = best.max(n as f64 / t.elapsed().as_secs_f64());
    }
    best
}

fn main() {
    tch::set_num_threads(1);
    let root = std::env::temp_dir().join(format!("gapscope-bench-loaders-{}", std::process::id()));
    let mut rows = Vec::new();
    let mut python = None;
    for (layout, clips, what) in [
        ("cremad", 68, "front-end A (16 kHz resampled to 22,050 Hz), 1 frame"),
        ("ave", 36, "front-end B over 10 s, 4 frames"),
        ("ks", 36, "front-end C over 10 s, 3 frames"),
    ] {
        let dir = root.join(layout);
        build(&dir, layout, clips);
        let ds = Rc::new(open(&dir, layout));
        let (one, two) = (throughput(&ds, 1), throughput(&ds, 2));
        rows.push((layout, what, one, two));
        if layout == "cremad" {
            python = reference(&dir);
        }
    }
    let _ = std::fs::remove_dir_all(&root);
    println!("Batches of 16, training transforms (224 x 224 random resized crops and flips), libtorch with 1 thread per worker.\n");
    println!("| corpus | sample | gapscope, 1 worker (samples/s) | 2 workers | Python DataLoader, 1 worker, cold | 2 workers, cold | 2 workers, warm | gapscope / Python (2 workers: cold, warm) |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for (layout, what, one, two) in rows {
        let (p1, p2, w2, ratio) = match (&python, layout) {
            (Some((p1, p2, w2)), "cremad") => {
                (format!("{p1:.1}"), format!("{p2:.1}"), format!("{w2:.1}"), format!("{:.2}x, {:.2}x", two / p2, two / w2))
            }
            _ => ("n/a".into(), "n/a".into(), "n/a".into(), "n/a".into()),
        };
        println!("| {layout} | {what} | {one:.1} | {two:.1} | {p1} | {p2} | {w2} | {ratio} |");
    }
}

/// The Python side on the CREMA-D tree: (1 worker, 2 workers) cold and 2 workers warm,
/// samples/s, or None.
fn reference(dir: &Path) -> Option<(f64, f64, f64)> {
    let out = corpus_tree::python().arg(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/loaders_ref.py")).arg(dir).output().ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some((v["1"].as_f64()?, v["2"].as_f64()?, v["warm2"].as_f64()?))
}
