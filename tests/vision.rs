//! Image decoding and visual transforms against Pillow (fixtures from
//! tests/fixtures/gen_images.py): the resize torchvision applies to PIL images, and the JPEG
//! decode; plus the training transform's shape, statistics and reproducibility.

mod common;
use common::*;
use gapscope::data::vision::{load_image, random_resized_crop_box, resize, test_transform, train_transform};
use gapscope::rng::Rng;
use gapscope::tensor::io::load_safetensors;
use std::collections::HashMap;
use std::path::PathBuf;
use tch::Tensor;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images")
}

fn reference() -> HashMap<String, Tensor> {
    load_safetensors(&dir().join("reference.safetensors")).unwrap().into_iter().collect()
}

fn max_abs(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

#[test]
fn resize_matches_pillow_bilinear_within_two_levels() {
    let r = reference();
    for name in ["photo", "small"] {
        let img = load_image(&dir().join(format!("{name}.png"))).unwrap();
        let ours = resize(&img, 224, 224).unwrap();
        let diff = max_abs(&ours, &r[&format!("{name}_resized")]);
        eprintln!("{name}: max abs {diff:e} ({:.2} levels)", diff * 255.0);
        // Pillow rounds to 8 bits after filtering; we keep floats: within 2/255.
        assert!(diff <= 2.0 / 255.0, "{name}: {diff}");
    }
}

#[test]
fn jpeg_decoding_is_close_to_libjpeg() {
    let ours = load_image(&dir().join("photo.jpg")).unwrap();
    let want = &reference()["photo_jpg_decoded"];
    assert_eq!(ours.size(), want.size());
    let mean = (&ours - want).abs().mean(tch::Kind::Double).double_value(&[]);
    let max = max_abs(&ours, want);
    eprintln!("jpeg: mean {:.3} levels, max {:.1} levels", mean * 255.0, max * 255.0);
    // Decoders differ in IDCT rounding and chroma upsampling; measured: mean 0.13, max 3 levels.
    assert!(mean * 255.0 < 0.5 && max * 255.0 <= 6.0, "mean {mean}, max {max}");
}

#[test]
fn transforms_have_the_right_shape_statistics_and_seeding() {
    let img = load_image(&dir().join("photo.png")).unwrap();
    let t = test_transform(&img, 224).unwrap();
    assert_eq!(t.size(), vec![3, 224, 224]);
    // ImageNet normalisation: channel c is (x - mean_c) / std_c.
    let raw = resize(&img, 224, 224).unwrap();
    let back = &t.select(0, 1) * 0.224 + 0.456;
    assert!(max_abs(&back, &raw.select(0, 1)) < 1e-5);
    let a = train_transform(&img, 112, &mut Rng::new(3)).unwrap();
    let b = train_transform(&img, 112, &mut Rng::new(3)).unwrap();
    let c = train_transform(&img, 112, &mut Rng::new(4)).unwrap();
    assert_eq!(a.size(), vec![3, 112, 112]);
    assert_eq!(max_abs(&a, &b), 0.0);
    assert!(max_abs(&a, &c) > 0.0);
    for seed in 0..200 {
        let (top, left, h, w) = random_resized_crop_box(240, 320, &mut Rng::new(seed));
        assert!(top >= 0 && left >= 0 && top + h <= 240 && left + w <= 320 && h > 0 && w > 0);
        let ratio = w as f64 / h as f64;
        assert!((0.7..=1.4).contains(&ratio), "{ratio}");
    }
}

#[test]
fn rhai_image_functions_and_errors() {
    let p = dir().join("photo.jpg");
    assert_eq!(format!("{:?}", eval_ok(&format!("load_image(\"{}\").shape", p.display()))), "[3, 240, 320]");
    assert_eq!(
        format!("{:?}", eval_ok(&format!("image_transform(load_image(\"{}\"), #{{ train: true, size: 64, seed: 1 }}).shape", p.display()))),
        "[3, 64, 64]"
    );
    let d = temp_dir("bad_jpg");
    std::fs::write(d.join("cut.jpg"), &std::fs::read(&p).unwrap()[..200]).unwrap();
    let e = eval_err(&format!("load_image(\"{}\")", d.join("cut.jpg").display()));
    assert!(e.contains("cut.jpg") && e.contains("cannot decode"), "{e}");
    let e = eval_err("image_transform(randn([2, 4]), #{})");
    assert!(e.contains("[3, H, W]"), "{e}");
}
