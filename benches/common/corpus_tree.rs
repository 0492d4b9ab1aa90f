//! Corpus trees for the benchmarks, in each public layout (../shared/data-formats.md):
//! generated wav files and JPEG frames the size the real corpora's are, with the split lists
//! their loaders read. Shared by benches/loaders.rs and benches/epoch.rs.

use gapscope::data::audio::wav::encode_pcm16;
use gapscope::rng::Rng;
use std::path::Path;

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

/// `clips` clips under `root` in `layout` ("cremad": 2.5 s at 16 kHz and three frames; "ave"
/// and "ks": 10 s and ten frames); the last four are the test split, the rest train.
pub fn build(root: &Path, layout: &str, clips: usize) {
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

/// The Python that runs the benchmarks' reference sides: GAPSCOPE_PYTHON (setup's venv) with
/// the fixture libraries (librosa, Pillow) on its path when they are installed.
pub fn python() -> std::process::Command {
    let python = std::env::var("GAPSCOPE_PYTHON").unwrap_or_else(|_| "python3".into());
    let libs = std::env::var("GAPSCOPE_FIXTURE_LIBS")
        .unwrap_or_else(|_| format!("{}/.cache/gapscope/fixture-libs", std::env::var("HOME").unwrap_or_default()));
    let mut cmd = std::process::Command::new(python);
    if Path::new(&libs).is_dir() {
        cmd.env("PYTHONPATH", &libs);
    }
    cmd
}
