//! Corpus loader throughput: samples per second through `Batches` (decode wav, front-end,
//! frames, train transforms, stack) with 1 and 2 worker threads, on generated trees in each
//! layout, and for CREMA-D the same work as OGM-GE's Python loader (librosa.load at 22,050 Hz,
//! STFT, PIL frames with RandomResizedCrop + flip, a torch DataLoader with 1 and 2 workers) in
//! the same run. `make bench` runs it and rewrites the table in docs/perf.md.

use gapscope::data::audio::{wav::encode_pcm16, FrontEnd, FrontEndKind};
use gapscope::data::corpus::{ave, cremad, kinetics, CorpusOptions};
use gapscope::data::split_files::CremadLabels;
use gapscope::data::{BatchOptions, Batches, Dataset};
use gapscope::rng::Rng;
use std::path::Path;
use std::rc::Rc;
use std::time::Instant;

fn wav(path: &Path, seconds: f64, rng: &mut Rng) {
    let n = (seconds * 16_000.0) as usize;
    let x: Vec<f32> = (0..n).map(|i| (0.3 * (i as f64 * 0.05).sin() + 0.05 * rng.normal()) as f32).collect();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, encode_pcm16(&x, 16_000)).unwrap();
}

/// Frames the size CREMA-D's are (480 x 360), with texture so JPEG has work to do.
fn frames(dir: &Path, n: usize, rng: &mut Rng) {
    std::fs::create_dir_all(dir).unwrap();
    for k in 1..=n {
        let img = image::RgbImage::from_fn(480, 360, |x, y| {
            let v = ((x + 2 * y + 7 * k as u32) % 256) as u8;
            image::Rgb([v, v.wrapping_add((rng.below(16)) as u8), 255 - v])
        });
        img.save(dir.join(format!("{k:05}.jpg"))).unwrap();
    }
}

fn build(root: &Path, layout: &str, clips: usize) {
    let mut rng = Rng::new(1);
    let emotions = ["NEU", "HAP", "SAD", "FEA", "DIS", "ANG"];
    let (mut train, mut test) = (String::new(), String::new());
    for i in 0..clips {
        let (clip, row, seconds, n_frames) = match layout {
            "cremad" => {
                let c = format!("{:04}_IEO_{}_XX", 1000 + i, emotions[i % 6]);
                (c.clone(), format!("{c},{}\r\n", emotions[i % 6]), 2.5, 3)
            }
            "ave" => {
                let c = format!("vid{i:04}");
                (c.clone(), format!("Cat{}&{c}&good&0&10\r\n", i % 4), 10.0, 10)
            }
            _ => {
                let c = format!("yt{i:04}_000000_000010");
                (c.clone(), format!("{c},10,{}\r\n", i % 31), 10.0, 10)
            }
        };
        wav(&root.join("AudioWAV").join(format!("{clip}.wav")), seconds, &mut rng);
        frames(&root.join("Image-01-FPS").join(&clip), n_frames, &mut rng);
        if i < clips - 4 {
            train.push_str(&row)
        } else {
            test.push_str(&row)
        }
    }
    let files: Vec<(&str, &String)> = match layout {
        "cremad" => vec![("train.csv", &train), ("test.csv", &test)],
        "ave" => vec![("trainSet.txt", &train), ("valSet.txt", &test), ("testSet.txt", &test)],
        _ => vec![("my_train.txt", &train), ("my_test.txt", &test)],
    };
    for (name, text) in files {
        std::fs::write(root.join(name), text).unwrap();
    }
}

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
    println!("| corpus | sample | gapscope, 1 worker (samples/s) | 2 workers | Python DataLoader, 1 worker | 2 workers | gapscope / Python (2 workers) |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for (layout, what, one, two) in rows {
        let (p1, p2, ratio) = match (&python, layout) {
            (Some((p1, p2)), "cremad") => (format!("{p1:.1}"), format!("{p2:.1}"), format!("{:.2}x", two / p2)),
            _ => ("n/a".into(), "n/a".into(), "n/a".into()),
        };
        println!("| {layout} | {what} | {one:.1} | {two:.1} | {p1} | {p2} | {ratio} |");
    }
}

/// The Python side on the CREMA-D tree: (1 worker, 2 workers) samples/s, or None.
fn reference(dir: &Path) -> Option<(f64, f64)> {
    let python = std::env::var("GAPSCOPE_PYTHON").unwrap_or_else(|_| "python3".into());
    let libs = std::env::var("GAPSCOPE_FIXTURE_LIBS")
        .unwrap_or_else(|_| format!("{}/.cache/gapscope/fixture-libs", std::env::var("HOME").unwrap_or_default()));
    let mut cmd = std::process::Command::new(python);
    cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/loaders_ref.py")).arg(dir);
    if Path::new(&libs).is_dir() {
        cmd.env("PYTHONPATH", &libs);
    }
    let out = cmd.output().ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some((v["1"].as_f64()?, v["2"].as_f64()?))
}
