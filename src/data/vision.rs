//! Frames as encoder inputs: decoding (JPEG, PNG) to [3, H, W] floats in [0, 1], and the
//! transforms of the public pipelines: train = RandomResizedCrop(size) + horizontal flip,
//! test = Resize((size, size)), both followed by ImageNet normalisation. Resizing is
//! antialiased bilinear, as torchvision's Resize on PIL images (which the public code uses).

use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::tensor::{check, Kind, Tensor};
use std::path::Path;

pub const IMAGENET_MEAN: [f64; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f64; 3] = [0.229, 0.224, 0.225];

/// An image file as RGB [3, H, W] float32 in [0, 1].
pub fn load_image(path: &Path) -> Result<Tensor> {
    let img = crate::error::guard_reader(path, "image", || {
        image::open(path).map_err(|e| Error::io(path, format!("cannot decode the image: {e}")))
    })?
    .to_rgb8();
    let (w, h) = (img.width() as i64, img.height() as i64);
    let hwc = Tensor::from_slice(img.as_raw()).f_reshape([h, w, 3]);
    check("load_image", hwc.and_then(|t| t.f_permute([2, 0, 1])).and_then(|t| t.f_to_kind(Kind::Float)).and_then(|t| t.f_div_scalar(255.0)))
}

/// Antialiased bilinear resize of [3, H, W] to [3, h, w].
pub fn resize(img: &Tensor, h: i64, w: i64) -> Result<Tensor> {
    check(
        "resize",
        img.f_unsqueeze(0).and_then(|t| t.f_internal_upsample_bilinear2d_aa([h, w], false, None, None)).and_then(|t| t.f_squeeze_dim(0)),
    )
}

pub fn normalize_imagenet(img: &Tensor) -> Result<Tensor> {
    let dev = img.device();
    let mean = Tensor::from_slice(&IMAGENET_MEAN).f_to_kind(Kind::Float).and_then(|t| t.f_view([3, 1, 1])).and_then(|t| t.f_to_device(dev));
    let std = Tensor::from_slice(&IMAGENET_STD).f_to_kind(Kind::Float).and_then(|t| t.f_view([3, 1, 1])).and_then(|t| t.f_to_device(dev));
    check("normalize", mean.and_then(|m| std.and_then(|s| img.f_sub(&m)?.f_div(&s))))
}

/// torchvision's RandomResizedCrop parameters (scale (0.08, 1), ratio (3/4, 4/3)): ten tries
/// at a random area and log-uniform aspect ratio, then a central crop with the ratio clamped.
/// Returns (top, left, height, width).
pub fn random_resized_crop_box(h: i64, w: i64, rng: &mut Rng) -> (i64, i64, i64, i64) {
    let area = (h * w) as f64;
    let (log_lo, log_hi) = ((3.0f64 / 4.0).ln(), (4.0f64 / 3.0).ln());
    for _ in 0..10 {
        let target = area * (0.08 + (1.0 - 0.08) * rng.uniform());
        let ratio = (log_lo + (log_hi - log_lo) * rng.uniform()).exp();
        let cw = (target * ratio).sqrt().round() as i64;
        let ch = (target / ratio).sqrt().round() as i64;
        if 0 < cw && cw <= w && 0 < ch && ch <= h {
            let top = rng.below((h - ch + 1) as usize) as i64;
            let left = rng.below((w - cw + 1) as usize) as i64;
            return (top, left, ch, cw);
        }
    }
    let in_ratio = w as f64 / h as f64;
    let (ch, cw) = if in_ratio < 3.0 / 4.0 {
        ((w as f64 / (3.0 / 4.0)).round() as i64, w)
    } else if in_ratio > 4.0 / 3.0 {
        (h, (h as f64 * (4.0 / 3.0)).round() as i64)
    } else {
        (h, w)
    };
    ((h - ch) / 2, (w - cw) / 2, ch, cw)
}

/// The training transform: random resized crop to size x size, a horizontal flip with
/// probability 1/2, ImageNet normalisation.
pub fn train_transform(img: &Tensor, size: i64, rng: &mut Rng) -> Result<Tensor> {
    let (h, w) = (img.size()[1], img.size()[2]);
    let (top, left, ch, cw) = random_resized_crop_box(h, w, rng);
    let crop = check("train_transform", img.f_narrow(1, top, ch).and_then(|t| t.f_narrow(2, left, cw)))?;
    let mut out = resize(&crop, size, size)?;
    if rng.uniform() < 0.5 {
        out = check("train_transform", out.f_flip([2]))?;
    }
    normalize_imagenet(&out)
}

/// The test transform: resize to size x size, ImageNet normalisation.
pub fn test_transform(img: &Tensor, size: i64) -> Result<Tensor> {
    normalize_imagenet(&resize(img, size, size)?)
}
