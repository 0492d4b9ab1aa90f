//! `gapscope prep` end to end on raw downloads generated with ffmpeg (testsrc video, sine
//! audio): the layout it writes loads with the corpus loaders, reruns skip finished clips,
//! interrupted outputs are redone, and failures are counted with reasons. Needs ffmpeg
//! (`apt-get install ffmpeg`; .ci/run installs it).

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

fn ffmpeg(args: &[&str]) {
    let ok = Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-y"])
        .args(args)
        .status()
        .expect("ffmpeg is needed for the prep tests: apt-get install ffmpeg");
    assert!(ok.success());
}

fn write_wav(path: &Path, seconds: f64) {
    let n = (seconds * 16_000.0) as usize;
    let x: Vec<f32> = (0..n).map(|i| (0.3 * (2.0 * std::f64::consts::PI * 300.0 * i as f64 / 16_000.0).sin()) as f32).collect();
    std::fs::write(path, gapscope::data::audio::wav::encode_pcm16(&x, 16_000)).unwrap();
}

fn prep(args: &[&str]) -> (i32, String, String) {
    let out = bin().arg("prep").args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn cremad_from_raw_loads_reruns_skip_and_failures_are_counted() {
    let root = temp_dir("prep-cremad");
    let (raw, out) = (root.join("raw"), root.join("out"));
    std::fs::create_dir_all(raw.join("VideoFlash")).unwrap();
    std::fs::create_dir_all(raw.join("AudioWAV")).unwrap();
    let base = root.join("base.flv");
    ffmpeg(&["-f", "lavfi", "-i", "testsrc=duration=3:size=64x48:rate=10", base.to_str().unwrap()]);
    let mut clips = Vec::new();
    for emotion in ["NEU", "HAP", "SAD", "FEA", "DIS", "ANG"] {
        for actor in 0..10 {
            let clip = format!("10{actor:02}_IEO_{emotion}_XX");
            std::fs::copy(&base, raw.join("VideoFlash").join(format!("{clip}.flv"))).unwrap();
            write_wav(&raw.join("AudioWAV").join(format!("{clip}.wav")), 2.0);
            clips.push(clip);
        }
    }
    let (raw_s, out_s) = (raw.to_str().unwrap(), out.to_str().unwrap());
    let (code, stdout, stderr) = prep(&["cremad", "--raw", raw_s, "--out", out_s, "--jobs", "2"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("54 train, 6 test") && stdout.contains("60 clips: 60 done, 0 skipped"), "{stdout}");
    let frames: Vec<_> = std::fs::read_dir(out.join("Image-01-FPS").join(&clips[0])).unwrap().collect();
    assert_eq!(frames.len(), 3, "a 3 s video gives 3 frames at 1 fps");
    // The prepared tree loads, with the precomputed front-end A features.
    let script = format!("let d = dataset(\"cremad\", #{{ path: \"{out_s}\", size: 16 }}); let out = (); for b in d.test.batches(#{{}}) {{ out = b; }} [d.train.len, d.test.len, out.audio.shape, out.visual.shape]");
    let got = format!("{:?}", eval_ok(&script));
    assert_eq!(got, "[54, 6, [6, 1, 257, 188], [6, 3, 1, 16, 16]]");

    // A rerun skips everything; an interrupted clip (only a hidden partial folder) is redone.
    let victim = out.join("Image-01-FPS").join(&clips[1]);
    std::fs::remove_dir_all(&victim).unwrap();
    std::fs::create_dir_all(out.join("Image-01-FPS").join(format!(".{}.partial", clips[1]))).unwrap();
    std::fs::remove_file(out.join("AudioFeatures-A").join(format!("{}.safetensors", clips[2]))).unwrap();
    let (code, stdout, _) = prep(&["cremad", "--raw", raw_s, "--out", out_s, "--quiet"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("60 clips: 2 done, 58 skipped"), "{stdout}");
    assert!(victim.is_dir() && !out.join("Image-01-FPS").join(format!(".{}.partial", clips[1])).exists());

    // A corrupt video fails with ffmpeg's reason, leaves nothing behind, and the rest go on.
    std::fs::write(raw.join("VideoFlash").join(format!("{}.flv", clips[3])), b"not a video").unwrap();
    std::fs::remove_dir_all(out.join("Image-01-FPS").join(&clips[3])).unwrap();
    let (code, stdout, _) = prep(&["cremad", "--raw", raw_s, "--out", out_s, "--quiet"]);
    assert_eq!(code, 2, "{stdout}");
    assert!(
        stdout.contains("0 done, 59 skipped (already prepared), 1 failed") && stdout.contains(&format!("{}: ffmpeg failed", clips[3])),
        "{stdout}"
    );
    let leftovers: Vec<String> = std::fs::read_dir(out.join("Image-01-FPS"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(&clips[3]))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(std::fs::read_to_string(out.join("prep-failures.txt")).unwrap().starts_with(&clips[3]));
}

#[test]
fn ave_audio_comes_from_the_video_and_features_follow_the_span() {
    let root = temp_dir("prep-ave");
    let (raw, out) = (root.join("raw"), root.join("out"));
    std::fs::create_dir_all(raw.join("AVE_Dataset/AVE")).unwrap();
    for id in ["vidA", "vidB"] {
        let video = raw.join(format!("AVE_Dataset/AVE/{id}.mp4"));
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=10:size=64x48:rate=5",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100:duration=10",
            "-shortest",
            "-pix_fmt",
            "yuv420p",
            video.to_str().unwrap(),
        ]);
    }
    std::fs::write(raw.join("AVE_Dataset/trainSet.txt"), "Church bell&vidA&good&2&6\r\n").unwrap();
    std::fs::write(raw.join("AVE_Dataset/valSet.txt"), "Bark&vidB&good&0&10\r\n").unwrap();
    std::fs::write(raw.join("AVE_Dataset/testSet.txt"), "Bark&vidB&good&0&10\r\n").unwrap();
    let (code, stdout, stderr) = prep(&["ave", "--raw", raw.to_str().unwrap(), "--out", out.to_str().unwrap(), "--features", "B,C", "-q"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("2 clips: 2 done"), "{stdout}");
    let wav = gapscope::data::audio::read_wav(&out.join("AudioWAV/vidA.wav")).unwrap();
    assert_eq!(wav.sample_rate, 16_000);
    assert!((wav.samples.len() as i64 - 160_000).abs() < 1_000, "{}", wav.samples.len());
    for (dir, shape) in [("AudioFeatures-B", vec![1, 257, 1004]), ("AudioFeatures-C", vec![1, 1024, 128])] {
        let t = gapscope::tensor::io::load_safetensors(&out.join(dir).join("vidA.safetensors")).unwrap();
        assert_eq!(t[0].1.size(), shape);
    }
    // vidA's features cover its 4 s span only: fbank C pads past ~398 frames (zeros, then the
    // normalisation), while vidB's full 10 s have signal there.
    let pad = 4.503877 / (5.141276 * 2.0);
    let load =
        |id: &str| gapscope::tensor::io::load_safetensors(&out.join(format!("AudioFeatures-C/{id}.safetensors"))).unwrap().remove(0).1;
    let is_pad = |t: &tch::Tensor, frame: i64| (t.get(0).get(frame) - pad).abs().max().double_value(&[]) < 1e-6;
    let (a, b) = (load("vidA"), load("vidB"));
    assert!(!is_pad(&a, 300) && is_pad(&a, 500) && !is_pad(&b, 500));
    let got = format!(
        "{:?}",
        eval_ok(&format!("let d = dataset(\"ave\", #{{ path: \"{}\", size: 16 }}); [d.train.len, d.val.len, d.classes]", out.display()))
    );
    assert_eq!(got, "[1, 1, 2]");
}

#[test]
fn missing_ffmpeg_and_missing_split_files_say_what_to_do() {
    let root = temp_dir("prep-missing");
    let out = bin()
        .args(["prep", "ks", "--raw", root.to_str().unwrap(), "--out", root.join("o").to_str().unwrap()])
        .env("GAPSCOPE_FFMPEG", "/nonexistent/ffmpeg")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("apt-get install ffmpeg") && stderr.contains("GAPSCOPE_FFMPEG"), "{stderr}");
    let (code, _, stderr) = prep(&["ks", "--raw", root.to_str().unwrap(), "--out", root.join("o").to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(stderr.contains("no my_train.txt") && stderr.contains("--splits"), "{stderr}");
    let (code, _, stderr) = prep(&["cremad", "--raw", "/nonexistent/raw", "--out", root.join("o").to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(stderr.contains("/nonexistent/raw"), "{stderr}");
}
