//! CREMA-D, AVE and Kinetics-Sounds loaders on tiny trees generated in each layout, with the
//! real files' quirks (BOM, CRLF, D&R header, frame_ naming, spans). Every frame is a uniform
//! grey whose level encodes its number, so the frames a batch holds can be read back.

mod common;
use common::*;
use gapscope::data::audio::{read_wav, resample, wav::encode_pcm16, FrontEnd, FrontEndKind};
use std::path::{Path, PathBuf};

/// The grey level of frame number k (1-based), far enough apart to survive JPEG.
fn level(k: usize) -> u8 {
    (10 + 20 * k) as u8
}

fn write_wav(path: &Path, seconds: f64, rate: u32, freq: f64) {
    let n = (seconds * rate as f64) as usize;
    let x: Vec<f32> = (0..n).map(|i| (0.3 * (2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64).sin()) as f32).collect();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, encode_pcm16(&x, rate)).unwrap();
}

fn write_frames(dir: &Path, n: usize, prefix: &str) {
    std::fs::create_dir_all(dir).unwrap();
    for k in 1..=n {
        let img = image::RgbImage::from_pixel(40, 30, image::Rgb([level(k); 3]));
        img.save(dir.join(format!("{prefix}{k:05}.jpg"))).unwrap();
    }
}

/// The frame numbers a batch's visual tensor [B, 3, T, H, W] holds, per sample.
fn frame_numbers(visual: &tch::Tensor) -> Vec<Vec<usize>> {
    let (b, t) = (visual.size()[0], visual.size()[2]);
    (0..b)
        .map(|i| {
            (0..t)
                .map(|j| {
                    let x = visual.get(i).get(0).get(j).mean(tch::Kind::Double).double_value(&[]);
                    let v = (x * 0.229 + 0.485) * 255.0;
                    ((v - 10.0) / 20.0).round() as usize
                })
                .collect()
        })
        .collect()
}

fn cremad_tree(name: &str) -> PathBuf {
    let root = temp_dir(name);
    let clips = [("1001_DFA_ANG_XX", "ANG"), ("1002_IEO_HAP_HI", "HAP"), ("1003_TIE_NEU_XX", "NEU"), ("1004_ITS_SAD_XX", "SAD")];
    std::fs::write(
        root.join("train.csv"),
        format!("{},{}\r\n{},{}\r\n{},{}\r\n", clips[0].0, clips[0].1, clips[1].0, clips[1].1, clips[2].0, clips[2].1),
    )
    .unwrap();
    std::fs::write(root.join("test.csv"), format!("{},{}\r\n", clips[3].0, clips[3].1)).unwrap();
    std::fs::write(root.join("stat.csv"), "\u{feff}NEU\r\nHAP\r\nSAD\r\nFEA\r\nDIS\r\nANG\r\n").unwrap();
    for (i, (clip, _)) in clips.iter().enumerate() {
        write_wav(&root.join("AudioWAV").join(format!("{clip}.wav")), 2.0 + 0.25 * i as f64, 16_000, 300.0 + 100.0 * i as f64);
        write_frames(&root.join("Image-01-FPS").join(clip), 3, "");
    }
    root
}

fn batch_of(src: &str) -> rhai::Map {
    eval_ok(src).cast::<rhai::Map>()
}

fn tensor(m: &rhai::Map, key: &str) -> tch::Tensor {
    m[key].clone().cast::<gapscope::host::ScriptTensor>().tensor().shallow_clone()
}

#[test]
fn cremad_shapes_labels_frames_and_resampled_front_end_a() {
    let root = cremad_tree("cremad");
    let ds = format!("let d = dataset(\"cremad\", #{{ path: \"{}\", size: 32 }});", root.display());
    assert_eq!(float(&format!("{ds} d.train.len")), 3.0);
    assert_eq!(float(&format!("{ds} d.test.len")), 1.0);
    assert_eq!(float(&format!("{ds} d.classes")), 6.0);
    assert_eq!(eval_ok(&format!("{ds} d.shapes.audio")).into_typed_array::<i64>().unwrap(), vec![1, 257, 188]);
    assert_eq!(eval_ok(&format!("{ds} d.shapes.visual")).into_typed_array::<i64>().unwrap(), vec![3, 1, 32, 32]);
    // OGM-GE's label map: ANG 5, HAP 1, NEU 0.
    assert_eq!(values(&format!("{ds} d.train.labels")).0, vec![5.0, 1.0, 0.0]);
    let b = batch_of(&format!(
        "{ds} let out = (); for b in d.train.batches(#{{ batch: 8, shuffle: false, augment: false }}) {{ out = b; }} out"
    ));
    assert_eq!(tensor(&b, "audio").size(), vec![3, 1, 257, 188]);
    assert_eq!(tensor(&b, "visual").size(), vec![3, 3, 1, 32, 32]);
    assert_eq!(Vec::<i64>::try_from(&tensor(&b, "indices")).unwrap(), vec![0, 1, 2]);
    // Test-time frame: the middle of three.
    assert_eq!(frame_numbers(&tensor(&b, "visual")), vec![vec![2], vec![2], vec![2]]);
    // The 16 kHz wav is resampled to 22,050 Hz before front-end A, as librosa.load(sr=22050).
    let wav = read_wav(&root.join("AudioWAV/1001_DFA_ANG_XX.wav")).unwrap();
    let x = resample(&tch::Tensor::from_slice(&wav.samples), 16_000, 22_050).unwrap();
    let want = FrontEnd::new(FrontEndKind::A).apply(&x).unwrap();
    let diff = (tensor(&b, "audio").get(0).get(0) - want).abs().max().double_value(&[]);
    assert!(diff < 1e-5, "{diff}");
    // D&R's numbering on request.
    assert_eq!(
        values(&format!("let d = dataset(\"cremad\", #{{ path: \"{}\", labels: \"sorted\" }}); d.train.labels", root.display())).0,
        vec![0.0, 3.0, 4.0]
    );
}

#[test]
fn workers_do_not_change_the_batches_and_augmentation_is_seeded() {
    let root = cremad_tree("workers");
    let ds = format!("let d = dataset(\"cremad\", #{{ path: \"{}\", size: 24, frames: 2 }});", root.display());
    let run = |workers: usize, seed: u64| -> Vec<tch::Tensor> {
        let script = format!("{ds} let out = []; for b in d.train.batches(#{{ batch: 2, seed: {seed}, workers: {workers} }}) {{ out.push(b.visual); out.push(b.indices); }} out");
        eval_ok(&script)
            .into_array()
            .unwrap()
            .into_iter()
            .map(|v| v.cast::<gapscope::host::ScriptTensor>().tensor().shallow_clone())
            .collect()
    };
    let (inline, threaded, other_seed) = (run(0, 3), run(2, 3), run(1, 4));
    assert_eq!(inline.len(), 4);
    for (a, b) in inline.iter().zip(&threaded) {
        assert!(a.equal(b), "workers changed a batch");
    }
    assert!(!inline[0].equal(&other_seed[0]), "another seed gave the same augmented batch");
    // Random frames: one from each half of the three frames, i.e. [1, 2|3] (positions 0 | 1-2).
    let picked = frame_numbers(&inline[0]);
    assert!(picked.iter().all(|f| f[0] == 1 && (2..=3).contains(&f[1])), "{picked:?}");
}

#[test]
fn ave_spans_crop_frames_and_audio() {
    let root = temp_dir("ave");
    std::fs::write(root.join("trainSet.txt"), "Church bell&vidA&good&2&6\r\nBark&vidB&good&0&10\r\n").unwrap();
    std::fs::write(root.join("valSet.txt"), "Bark&vidB&good&0&10\r\n").unwrap();
    std::fs::write(root.join("testSet.txt"), "Church bell&vidA&good&0&10\r\n").unwrap();
    for clip in ["vidA", "vidB"] {
        write_wav(&root.join("AudioWAV").join(format!("{clip}.wav")), 10.0, 16_000, 440.0);
        write_frames(&root.join("Image-01-FPS").join(clip), 10, "");
    }
    let ds = format!("let d = dataset(\"ave\", #{{ path: \"{}\", size: 16 }});", root.display());
    assert_eq!(float(&format!("{ds} d.classes")), 2.0);
    assert_eq!(values(&format!("{ds} d.train.labels")).0, vec![1.0, 0.0]); // sorted: Bark 0, Church bell 1
    let b = batch_of(&format!("{ds} let out = (); for b in d.train.batches(#{{ shuffle: false, augment: false }}) {{ out = b; }} out"));
    assert_eq!(tensor(&b, "audio").size(), vec![2, 1, 257, 1004]);
    // Span [2, 6] s: frames at seconds 2..5 (numbers 3..6), four picked evenly; the full clip
    // gives the middle of each of four segments of ten.
    assert_eq!(frame_numbers(&tensor(&b, "visual")), vec![vec![3, 4, 5, 6], vec![1, 4, 6, 9]]);
}

#[test]
fn kinetics_sounds_column_zero_frame_prefix_and_fbank() {
    let root = temp_dir("ks");
    std::fs::write(root.join("my_train.txt"), "abc_000010_000020,10,3\r\nxyz_000000_000010,10,30\r\n").unwrap();
    std::fs::write(root.join("my_test.txt"), "abc_000010_000020,10,3\r\n").unwrap();
    for clip in ["abc_000010_000020", "xyz_000000_000010"] {
        write_wav(&root.join("AudioWAV").join(format!("{clip}.wav")), 3.0, 16_000, 500.0);
        write_frames(&root.join("Image-01-FPS").join(clip), 9, "frame_");
    }
    let ds = format!("let d = dataset(\"ks\", #{{ path: \"{}\", size: 16, frames: 3 }});", root.display());
    assert_eq!(float(&format!("{ds} d.classes")), 31.0);
    assert_eq!(values(&format!("{ds} d.train.labels")).0, vec![3.0, 30.0]);
    let b = batch_of(&format!("{ds} let out = (); for b in d.test.batches(#{{}}) {{ out = b; }} out"));
    assert_eq!(tensor(&b, "audio").size(), vec![1, 1, 1024, 128]);
    assert_eq!(frame_numbers(&tensor(&b, "visual")), vec![vec![2, 5, 8]]);
}

#[test]
fn bad_trees_are_errors_naming_the_file_and_line_or_skipped_and_counted() {
    let root = cremad_tree("bad");
    let open = |extra: &str| format!("let d = dataset(\"cremad\", #{{ path: \"{}\", size: 16{extra} }});", root.display());
    // A truncated wav fails when its batch is decoded, naming the file.
    let wav = root.join("AudioWAV/1003_TIE_NEU_XX.wav");
    let bytes = std::fs::read(&wav).unwrap();
    std::fs::write(&wav, &bytes[..60]).unwrap();
    let e = eval_err(&format!("{} let n = 0; for b in d.train.batches(#{{ workers: 2 }}) {{ n += 1; }} n", open("")));
    assert!(e.contains("1003_TIE_NEU_XX.wav") && e.contains("truncated"), "{e}");
    // A row whose clip has no frames: an error naming the split file and line.
    std::fs::remove_dir_all(root.join("Image-01-FPS/1002_IEO_HAP_HI")).unwrap();
    let e = eval_err(&format!("{} d", open("")));
    assert!(e.contains("train.csv:2: clip 1002_IEO_HAP_HI") && e.contains("skip_corrupt"), "{e}");
    assert_eq!(float(&format!("{} d.train.len", open(", skip_corrupt: true"))), 2.0);
    let n = float(&format!(
        "{} let n = 0; for b in d.train.batches(#{{ workers: 2 }}) {{ n += b.labels.shape[0]; }} n",
        open(", skip_corrupt: true")
    ));
    assert_eq!(n, 1.0); // 1002 dropped at open (no frames), 1003 dropped at decode (truncated wav)
                        // An unknown label, an empty split, a missing root.
    std::fs::write(root.join("test.csv"), "1004_ITS_SAD_XX,BORED\r\n").unwrap();
    let e = eval_err(&format!("{} d", open(", skip_corrupt: true")));
    assert!(e.contains("test.csv:1") && e.contains("BORED"), "{e}");
    std::fs::write(root.join("test.csv"), "\r\n").unwrap();
    let e = eval_err(&format!("{} d", open(", skip_corrupt: true")));
    assert!(e.contains("test.csv") && e.contains("empty"), "{e}");
    let e = eval_err("dataset(\"cremad\", #{ path: \"/nonexistent/cremad\" })");
    assert!(e.contains("/nonexistent/cremad") && e.contains("split file is missing"), "{e}");
    std::fs::write(root.join("test.csv"), "1004_ITS_SAD_XX,SAD\r\n").unwrap();
    let e = eval_err(&format!("{} d.train.inputs(\"audio\")", open(", skip_corrupt: true")));
    assert!(e.contains("batches"), "{e}");
}

#[test]
fn precomputed_features_are_used_when_present() {
    let root = cremad_tree("features");
    let dir = root.join("AudioFeatures-C");
    std::fs::create_dir_all(&dir).unwrap();
    for clip in ["1001_DFA_ANG_XX", "1002_IEO_HAP_HI", "1003_TIE_NEU_XX", "1004_ITS_SAD_XX"] {
        let t = tch::Tensor::full([1, 1024, 128], 0.25, (tch::Kind::Float, tch::Device::Cpu));
        gapscope::tensor::io::save_safetensors(&[("audio".to_string(), t)], &dir.join(format!("{clip}.safetensors"))).unwrap();
    }
    std::fs::remove_dir_all(root.join("AudioWAV")).unwrap();
    let (v, shape) = values(&format!(
        "let d = dataset(\"cremad\", #{{ path: \"{}\", front_end: \"C\", size: 16 }}); let out = (); for b in d.test.batches(#{{}}) {{ out = b.audio; }} out",
        root.display()
    ));
    assert_eq!(shape, vec![1, 1, 1024, 128]);
    assert!(v.iter().all(|&x| x == 0.25));
}
