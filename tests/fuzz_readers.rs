//! The fuzz pass over every file reader (docs/reliability.md): valid files of each format are
//! written, then read back after seeded damage (every kind of truncation, byte flips, runs of
//! 0x00 / 0xFF, a header field set huge), a few thousand inputs in all. Each read must return
//! a value or an error; a panic fails the test, and a crash (abort, segfault, an allocation of
//! a size taken from a corrupt header) ends the test binary, which fails too. Reads that
//! succeed on damaged bytes must give tensors whose size matches what the file could hold.

use gapscope::data::audio::wav::{encode_pcm16, parse_wav};
use gapscope::rng::Rng;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// Damaged copies of `bytes`: truncations at many lengths, single and multi-byte flips, runs of
/// 0x00 and 0xFF, and each aligned u32 / u64 in the first 128 bytes set to a huge value.
fn mutants(bytes: &[u8], seed: u64, flips: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    let n = bytes.len();
    let mut cuts: Vec<usize> = (0..n.min(160)).collect();
    cuts.extend((0..40).map(|_| rng.below(n.max(1))));
    for c in cuts {
        out.push(bytes[..c.min(n)].to_vec());
    }
    for _ in 0..flips {
        let mut b = bytes.to_vec();
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(n.max(1));
            if i < b.len() {
                b[i] ^= 1 << rng.below(8);
            }
        }
        out.push(b);
    }
    for fill in [0x00u8, 0xFF] {
        for _ in 0..20 {
            let mut b = bytes.to_vec();
            let start = rng.below(n.max(1));
            let len = 1 + rng.below(16);
            for x in b.iter_mut().skip(start).take(len) {
                *x = fill;
            }
            out.push(b);
        }
    }
    for at in (0..n.min(128)).step_by(4) {
        let mut b = bytes.to_vec();
        if at + 4 <= n {
            b[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
            out.push(b.clone());
        }
        if at + 8 <= n {
            b[at..at + 8].copy_from_slice(&(1u64 << 62).to_le_bytes());
            out.push(b);
        }
    }
    out
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gapscope-fuzz-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Reads every mutant through `read`, which must not panic; returns (inputs, errors).
fn fuzz(name: &str, valid: &Path, flips: usize, read: impl Fn(&Path) -> Result<(), String>) -> (usize, usize) {
    let bytes = std::fs::read(valid).unwrap();
    assert!(read(valid).is_ok(), "{name}: the valid file does not read");
    let d = dir(name);
    let path = d.join(valid.file_name().unwrap());
    let (mut total, mut errors) = (0, 0);
    for (i, m) in mutants(&bytes, 7, flips).into_iter().enumerate() {
        std::fs::write(&path, &m).unwrap();
        let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read(&path)));
        match got {
            Ok(Ok(())) => {}
            Ok(Err(_)) => errors += 1,
            Err(p) => panic!("{name}: mutant {i} ({} bytes) panicked: {:?}", m.len(), p.downcast_ref::<String>()),
        }
        total += 1;
    }
    std::fs::remove_dir_all(&d).ok();
    eprintln!("{name}: {total} damaged inputs, {errors} refused with an error, the rest read");
    assert!(errors > 0, "{name}: no damaged input was refused; the mutations do not reach the reader");
    (total, errors)
}

/// A tensor read from a file of `len` bytes cannot hold more data than the file.
fn plausible(t: &Tensor, len: u64) -> Result<(), String> {
    let bytes = t.numel() as u64 * t.kind().elt_size_in_bytes() as u64;
    if bytes > len {
        return Err(format!("read {bytes} bytes of values from a {len}-byte file"));
    }
    Ok(())
}

#[test]
fn npy_and_safetensors_readers_survive_damage() {
    let d = dir("tensors");
    let t = Tensor::arange(60, (Kind::Float, tch::Device::Cpu)).reshape([3, 4, 5]);
    let npy = d.join("t.npy");
    gapscope::tensor::io::save_npy(&t, &npy).unwrap();
    let st = d.join("t.safetensors");
    gapscope::tensor::io::save_safetensors(&[("a".into(), t.shallow_clone()), ("b".into(), Tensor::from_slice(&[1i64, 2, 3]))], &st)
        .unwrap();
    let mut total = 0;
    total += fuzz("npy", &npy, 600, |p| {
        let len = std::fs::metadata(p).unwrap().len();
        let t = gapscope::tensor::io::load_npy(p).map_err(|e| e.to_string())?;
        // A successful read of a damaged file must not have read past its end.
        if let Err(e) = plausible(&t, len) {
            panic!("npy: {e}");
        }
        Ok(())
    })
    .0;
    total += fuzz("safetensors", &st, 600, |p| {
        let len = std::fs::metadata(p).unwrap().len();
        for (_, t) in gapscope::tensor::io::load_safetensors(p).map_err(|e| e.to_string())? {
            if let Err(e) = plausible(&t, len) {
                panic!("safetensors: {e}");
            }
        }
        Ok(())
    })
    .0;
    std::fs::remove_dir_all(&d).ok();
    assert!(total > 1000);
}

#[test]
fn wav_parser_survives_damage() {
    let samples: Vec<f32> = (0..800).map(|i| ((i as f32) * 0.05).sin() * 0.5).collect();
    let bytes = encode_pcm16(&samples, 16_000);
    assert!(parse_wav(&bytes).is_ok());
    let (mut total, mut errors) = (0, 0);
    for (i, m) in mutants(&bytes, 11, 1500).into_iter().enumerate() {
        match std::panic::catch_unwind(|| parse_wav(&m)) {
            Ok(Ok(w)) => assert!(w.samples.len() <= m.len(), "mutant {i}: more samples than bytes"),
            Ok(Err(_)) => errors += 1,
            Err(_) => panic!("wav: mutant {i} panicked"),
        }
        total += 1;
    }
    eprintln!("wav: {total} damaged inputs, {errors} refused");
    assert!(total > 1000 && errors > 0);
}

#[test]
fn image_parquet_csv_and_checkpoint_readers_survive_damage() {
    let d = dir("files");
    // A PNG and a JPEG written by the image crate.
    let img = image::RgbImage::from_fn(16, 12, |x, y| image::Rgb([(x * 15) as u8, (y * 20) as u8, 128]));
    let png = d.join("a.png");
    img.save(&png).unwrap();
    let jpg = d.join("a.jpg");
    img.save(&jpg).unwrap();
    for p in [&png, &jpg] {
        fuzz(p.extension().unwrap().to_str().unwrap(), p, 300, |p| {
            gapscope::data::vision::load_image(p).map(|_| ()).map_err(|e| e.to_string())
        });
    }
    // Parquet and CSV through polars.
    let df = polars::df!("method" => ["concat", "pmr", "mla"], "acc" => [0.9, 0.8, 0.95], "epoch" => [1i64, 2, 3]).unwrap();
    let pq = d.join("t.parquet");
    gapscope::results::files::write_parquet(&df, &pq).unwrap();
    fuzz("parquet", &pq, 300, |p| gapscope::results::files::read_parquet(p).map(|_| ()).map_err(|e| e.to_string()));
    let csv = d.join("t.csv");
    gapscope::results::files::write_csv(&df, &csv).unwrap();
    fuzz("csv", &csv, 300, |p| gapscope::results::files::read_csv(p).map(|_| ()).map_err(|e| e.to_string()));
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn a_damaged_checkpoint_is_an_error_and_leaves_the_model_usable() {
    use gapscope::train::encoder::EncoderKind;
    use gapscope::train::fusion::FusionKind;
    use gapscope::train::model::{Model, ModelSpec};
    let spec = ModelSpec {
        modalities: vec!["audio".into(), "visual".into()],
        shapes: vec![vec![4], vec![4]],
        encoders: vec![EncoderKind::parse("mlp:8").unwrap(), EncoderKind::parse("mlp:8").unwrap()],
        fusion: FusionKind::Concat,
        classes: 3,
        seed: 1,
        device: tch::Device::Cpu,
        mmtm: 0,
    };
    let model = Model::new(&spec).unwrap();
    let d = dir("ckpt");
    let saved = gapscope::train::checkpoint::save(
        &d,
        0,
        &model,
        None,
        &[("x".into(), Tensor::from_slice(&[1.0f32, 2.0]))],
        serde_json::json!({ "history": [1, 2, 3] }),
        2,
    )
    .unwrap();
    for file in ["model.safetensors", "state.safetensors", "meta.json"] {
        let original = saved.join(file);
        let bytes = std::fs::read(&original).unwrap();
        let mut rng = Rng::new(3);
        let mut n = 0;
        for m in mutants(&bytes, 5, 150) {
            std::fs::write(&original, &m).unwrap();
            let target = Model::new(&spec).unwrap();
            let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                gapscope::train::checkpoint::load(&saved, &target, None).map(|_| ())
            }));
            assert!(got.is_ok(), "{file}: a damaged checkpoint panicked");
            // Whatever happened, the model still runs.
            let x = Tensor::randn([2, 4], (Kind::Float, tch::Device::Cpu));
            assert!(target.forward(&x, &x, false).is_ok());
            n += 1;
            let _ = rng.below(2);
        }
        std::fs::write(&original, &bytes).unwrap();
        eprintln!("checkpoint {file}: {n} damaged versions");
    }
    std::fs::remove_dir_all(&d).ok();
}
