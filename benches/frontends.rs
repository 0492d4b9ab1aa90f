//! Audio front-end throughput against the Python references on the same wav (a 2.5 s clip),
//! in one run: gapscope's A / B / C (libtorch, 1 thread) and librosa / scipy / torchaudio
//! (1 thread), clips per second. `make bench` runs it and rewrites the table in docs/perf.md.
//! The Python side needs librosa and torchaudio's kaldi module on PYTHONPATH (see
//! tests/fixtures/gen_frontends.py); `GAPSCOPE_FIXTURE_LIBS` (default
//! ~/.cache/gapscope/fixture-libs) is added when it exists. Missing references show as n/a.

use gapscope::data::audio::{read_wav, FrontEnd, FrontEndKind};
use std::time::Instant;

const CLIPS: usize = 40;

fn main() {
    tch::set_num_threads(1);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/frontends");
    let (w22, w16) = (dir.join("chirp_22050.wav"), dir.join("chirp_16000.wav"));
    let mut ours = Vec::new();
    for (kind, path) in [(FrontEndKind::A, &w22), (FrontEndKind::B, &w16), (FrontEndKind::C, &w16)] {
        let wave = tch::Tensor::from_slice(&read_wav(path).unwrap().samples);
        let fe = FrontEnd::new(kind);
        let _ = fe.apply(&wave).unwrap();
        let mut best = f64::INFINITY;
        for _ in 0..3 {
            let t = Instant::now();
            for _ in 0..CLIPS {
                let _ = std::hint::black_box(fe.apply(&wave).unwrap());
            }
            best = best.min(t.elapsed().as_secs_f64() / CLIPS as f64);
        }
        ours.push((kind, best));
    }
    let python = std::env::var("GAPSCOPE_PYTHON").unwrap_or_else(|_| "python3".into());
    let libs = std::env::var("GAPSCOPE_FIXTURE_LIBS")
        .unwrap_or_else(|_| format!("{}/.cache/gapscope/fixture-libs", std::env::var("HOME").unwrap_or_default()));
    let mut cmd = std::process::Command::new(python);
    cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/frontends_ref.py")).arg(CLIPS.to_string()).arg(&w22).arg(&w16);
    if std::path::Path::new(&libs).is_dir() {
        cmd.env("PYTHONPATH", &libs);
    }
    let out = cmd.output().expect("run the Python side");
    let reference: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    println!("| front-end | gapscope (clips/s) | Python reference | reference (clips/s) | gapscope / reference |");
    println!("|---|---:|---|---:|---:|");
    for (kind, s) in ours {
        let name = format!("{kind:?}");
        let lib = match kind {
            FrontEndKind::A => "librosa.stft",
            FrontEndKind::B => "scipy.signal.spectrogram",
            FrontEndKind::C => "torchaudio kaldi.fbank",
        };
        match reference.get(&name).and_then(|v| v.as_f64()) {
            Some(r) => println!("| {name} | {:.0} | {lib} | {:.0} | {:.2}x |", 1.0 / s, 1.0 / r, r / s),
            None => println!("| {name} | {:.0} | {lib} | n/a | n/a |", 1.0 / s),
        }
    }
}
