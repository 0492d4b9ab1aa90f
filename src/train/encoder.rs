//! Encoders: a sample's input to a feature vector [B, D].
//!
//! - `mlp`: flatten, then Linear + ReLU layers (vectors such as mfeat's `fou`)
//! - `cnn`: three conv + BN + ReLU blocks and global average pooling (small images and
//!   spectrograms on CPU)
//! - `resnet18`: torchvision's ResNet-18 from scratch (BasicBlock x [2, 2, 2, 2], 512-d), with
//!   the public code's 1-channel conv1 for spectrograms; frame stacks [B, 3, T, H, W] run per
//!   frame and are pooled over (T, H, W) with 3-D average pooling, as OGM-GE does
//! - `resnet18:compress`: ResNet-18 as PMR's released backbone builds it (`compress=True`,
//!   fanyunfeng-bit/Modal-Imbalance-PMR @3615e48 models/backbone.py): after layer 2 a compress
//!   stack (four strided convs down to 1 x 1 x 512) and a recover stack (four transposed convs
//!   back to layer 2's map), made for 224 x 224 frames (28 x 28 maps) and CREMA-D's 257 x 299
//!   spectrograms (33 x 38)

use super::layers::{relu, BatchNorm, Conv, ConvTranspose, Linear};
use crate::error::{Error, Result};
use crate::tensor::{Kind, Tensor};
use tch::nn;

#[derive(Clone, Debug, PartialEq)]
pub enum EncoderKind {
    Mlp {
        hidden: Vec<i64>,
    },
    Cnn {
        width: i64,
    },
    ResNet18,
    /// ResNet-18 with PMR's compress / recover stack after layer 2.
    ResNet18Compress,
}

impl EncoderKind {
    /// "mlp" (hidden [256, 256]), "mlp:64,64" (those hidden widths), "cnn" (width 32),
    /// "cnn:16", "resnet18".
    pub fn parse(name: &str) -> Result<EncoderKind> {
        let (base, arg) = match name.split_once(':') {
            Some((b, a)) => (b, Some(a)),
            None => (name, None),
        };
        let sizes = |arg: &str| -> Result<Vec<i64>> {
            let v: Option<Vec<i64>> = arg.split(',').map(|s| s.trim().parse::<i64>().ok().filter(|&n| n > 0)).collect();
            v.filter(|v| !v.is_empty()).ok_or_else(|| {
                Error::arg(format!(
                    "encoder \"{name}\": sizes after ':' must be positive integers separated by commas, e.g. \"mlp:128,64\" or \"cnn:16\""
                ))
            })
        };
        match (base, arg) {
            ("mlp", None) => Ok(EncoderKind::Mlp { hidden: vec![256, 256] }),
            ("mlp", Some(a)) => Ok(EncoderKind::Mlp { hidden: sizes(a)? }),
            ("cnn", None) => Ok(EncoderKind::Cnn { width: 32 }),
            ("cnn", Some(a)) => match sizes(a)?.as_slice() {
                [w] => Ok(EncoderKind::Cnn { width: *w }),
                _ => Err(Error::arg(format!("encoder \"{name}\": cnn takes one width, e.g. \"cnn:16\""))),
            },
            ("resnet18", None) => Ok(EncoderKind::ResNet18),
            ("resnet18", Some("compress")) => Ok(EncoderKind::ResNet18Compress),
            _ => Err(Error::arg(format!("unknown encoder \"{name}\": use \"mlp\" (or \"mlp:128,64\"), \"cnn\" (or \"cnn:16\"), \"resnet18\" or \"resnet18:compress\" (PMR's backbone)"))),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            EncoderKind::Mlp { .. } => "mlp",
            EncoderKind::Cnn { .. } => "cnn",
            EncoderKind::ResNet18 | EncoderKind::ResNet18Compress => "resnet18",
        }
    }

    /// The name with its sizes, as `parse` reads it back (used in the architecture line).
    pub fn describe(&self) -> String {
        match self {
            EncoderKind::Mlp { hidden } => format!("mlp:{}", hidden.iter().map(i64::to_string).collect::<Vec<_>>().join(",")),
            EncoderKind::Cnn { width } => format!("cnn:{width}"),
            EncoderKind::ResNet18 => "resnet18".into(),
            EncoderKind::ResNet18Compress => "resnet18:compress".into(),
        }
    }
}

struct Block {
    conv1: Conv,
    bn1: BatchNorm,
    conv2: Conv,
    bn2: BatchNorm,
    downsample: Option<(Conv, BatchNorm)>,
}

impl Block {
    fn new(p: &nn::Path, cin: i64, cout: i64, stride: i64) -> Block {
        let downsample = (stride != 1 || cin != cout).then(|| {
            let d = p / "downsample";
            (Conv::new(&(&d / "0"), cin, cout, 1, stride, 0, false), BatchNorm::new(&(&d / "1"), cout))
        });
        Block {
            conv1: Conv::new(&(p / "conv1"), cin, cout, 3, stride, 1, false),
            bn1: BatchNorm::new(&(p / "bn1"), cout),
            conv2: Conv::new(&(p / "conv2"), cout, cout, 3, 1, 1, false),
            bn2: BatchNorm::new(&(p / "bn2"), cout),
            downsample,
        }
    }

    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let y = relu(self.bn1.forward(&self.conv1.forward(x)?, train)?)?;
        let y = self.bn2.forward(&self.conv2.forward(&y)?, train)?;
        let shortcut = match &self.downsample {
            Some((conv, bn)) => bn.forward(&conv.forward(x)?, train)?,
            None => x.shallow_clone(),
        };
        relu(y.f_add(&shortcut)?)
    }
}

/// PMR's compress / recover stack: convs 3x3 s2 (p1, p1, p0, p0; ReLU after the second and
/// fourth) down to 512 x 1 x 1, then transposed convs back to layer 2's map (no activations).
struct Compress {
    down: Vec<Conv>,
    up: Vec<ConvTranspose>,
}

impl Compress {
    /// For a layer-2 map of `hw`: 28 x 28 (224 x 224 frames) or 33 x 38 (257 x 299 spectrograms).
    fn new(p: &nn::Path, hw: (i64, i64)) -> Result<Compress> {
        let d = p / "compress_layer";
        let down = vec![
            Conv::with_default_bias(&(&d / "0"), 128, 128, 3, 2, 1),
            Conv::with_default_bias(&(&d / "1"), 128, 128, 3, 2, 1),
            Conv::with_default_bias(&(&d / "3"), 128, 128, 3, 2, 0),
            Conv::with_default_bias(&(&d / "4"), 128, 512, 3, 2, 0),
        ];
        // The reference's two recover stacks, one per map size (its comments give the sizes).
        let kernels: [([i64; 2], i64); 4] = match hw {
            (28, 28) => [([3, 3], 1), ([3, 3], 2), ([2, 2], 2), ([2, 2], 2)],
            (33, 38) => [([4, 4], 1), ([2, 2], 2), ([2, 4], 2), ([3, 4], 2)],
            (h, w) => {
                return Err(Error::arg(format!(
                    "encoder resnet18:compress: PMR's compress stack is built for layer-2 maps of 28 x 28 (224 x 224 frames) or 33 x 38 (257 x 299 spectrograms); these inputs give {h} x {w}: use \"resnet18\", or inputs of those sizes"
                )))
            }
        };
        let u = p / "recover_layer";
        let up = kernels
            .iter()
            .enumerate()
            .map(|(i, (k, s))| ConvTranspose::new(&(&u / i.to_string()), if i == 0 { 512 } else { 128 }, 128, *k, *s))
            .collect();
        Ok(Compress { down, up })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.shallow_clone();
        for (i, conv) in self.down.iter().enumerate() {
            h = conv.forward(&h)?;
            if i == 1 || i == 3 {
                h = relu(h)?;
            }
        }
        for t in &self.up {
            h = t.forward(&h)?;
        }
        Ok(h)
    }
}

/// A batch part-way through an encoder's stages: the activations ([B, c] for an MLP, [B, c, H, W]
/// maps otherwise; [B·T, c, H, W] for frames), the batch size and, for frame inputs, the frames
/// per sample.
pub struct Staged {
    pub h: Tensor,
    pub batch: i64,
    pub frames: Option<i64>,
}

impl Staged {
    /// Each sample's channel means [B, c]: over H, W (and the frames) for maps, the activations
    /// themselves for an MLP.
    pub fn squeeze(&self) -> Result<Tensor> {
        match self.h.dim() {
            2 => Ok(self.h.shallow_clone()),
            _ => self.pooled_maps(),
        }
    }

    fn pooled_maps(&self) -> Result<Tensor> {
        let h = &self.h;
        if let Some(t) = self.frames {
            let (c, hh, ww) = (h.size()[1], h.size()[2], h.size()[3]);
            let v = h.f_reshape([self.batch, t, c, hh, ww]).and_then(|v| v.f_permute([0, 2, 1, 3, 4]))?;
            v.f_mean_dim([2, 3, 4].as_slice(), false, Kind::Float).map_err(Error::from)
        } else {
            h.f_mean_dim([-2, -1].as_slice(), false, Kind::Float).map_err(Error::from)
        }
    }

    /// The activations times per-sample channel gates g [B, c] (each frame of a sample by its
    /// sample's gates).
    pub fn gated(&self, g: &Tensor) -> Result<Staged> {
        let c = g.size()[1];
        let g = if let Some(t) = self.frames {
            g.f_unsqueeze(1)?.f_expand([self.batch, t, c], false)?.f_reshape([self.batch * t, c])?
        } else {
            g.shallow_clone()
        };
        let mut shape = g.size();
        shape.resize(self.h.dim(), 1);
        Ok(Staged { h: self.h.f_mul(&g.f_reshape(shape.as_slice())?)?, batch: self.batch, frames: self.frames })
    }
}

// ResNet is the architecture's name, not a "Net" suffix.
#[allow(clippy::enum_variant_names)]
enum Net {
    Mlp(Vec<Linear>),
    Cnn(Vec<(Conv, BatchNorm)>),
    ResNet { conv1: Conv, bn1: BatchNorm, layers: Vec<Block>, compress: Option<Compress> },
}

/// A ResNet's layer-2 map size for an input of `h` x `w` (conv1 s2 p3 k7, max pool s2 p1 k3,
/// layer 2's stride 2).
fn layer2_size(h: i64, w: i64) -> (i64, i64) {
    let down = |x: i64, k: i64, p: i64| (x + 2 * p - k) / 2 + 1;
    let f = |x| down(down(down(x, 7, 3), 3, 1), 3, 1);
    (f(h), f(w))
}

pub struct Encoder {
    pub kind: EncoderKind,
    /// The per-sample input shape it was built for.
    pub input: Vec<i64>,
    pub dim: i64,
    net: Net,
}

impl Encoder {
    /// Builds an encoder for samples of shape `input` under `p`.
    pub fn new(p: &nn::Path, kind: &EncoderKind, input: &[i64]) -> Result<Encoder> {
        let (net, dim) = match kind {
            EncoderKind::Mlp { hidden } => {
                let mut din: i64 = input.iter().product();
                let mut layers = Vec::new();
                for (i, &h) in hidden.iter().enumerate() {
                    layers.push(Linear::new(&(p / format!("fc{}", i + 1)), din, h));
                    din = h;
                }
                (Net::Mlp(layers), din)
            }
            EncoderKind::Cnn { width } => {
                if !(input.len() == 3 || input.len() == 2) {
                    return Err(Error::arg(format!("encoder cnn: expects samples [C, H, W] (or [H, W]), got {input:?}")));
                }
                let cin = if input.len() == 3 { input[0] } else { 1 };
                let widths = [*width, width * 2, width * 4];
                let mut blocks = Vec::new();
                let mut c = cin;
                for (i, &w) in widths.iter().enumerate() {
                    let stride = if i == 0 { 1 } else { 2 };
                    blocks.push((
                        Conv::new(&(p / format!("conv{}", i + 1)), c, w, 3, stride, 1, false),
                        BatchNorm::new(&(p / format!("bn{}", i + 1)), w),
                    ));
                    c = w;
                }
                (Net::Cnn(blocks), c)
            }
            EncoderKind::ResNet18 | EncoderKind::ResNet18Compress => {
                let cin = match input.len() {
                    3 => input[0],
                    4 => input[0], // [3, T, H, W] frames
                    2 => 1,
                    _ => return Err(Error::arg(format!("encoder resnet18: expects [C, H, W] or frames [3, T, H, W], got {input:?}"))),
                };
                let (h, w) = (input[input.len() - 2], input[input.len() - 1]);
                let compress = match kind {
                    EncoderKind::ResNet18Compress => Some(Compress::new(p, layer2_size(h, w))?),
                    _ => None,
                };
                let mut layers = Vec::new();
                let mut c = 64;
                for (i, &w) in [64i64, 128, 256, 512].iter().enumerate() {
                    let lp = p / format!("layer{}", i + 1);
                    let stride = if i == 0 { 1 } else { 2 };
                    layers.push(Block::new(&(&lp / "0"), c, w, stride));
                    layers.push(Block::new(&(&lp / "1"), w, w, 1));
                    c = w;
                }
                (
                    Net::ResNet {
                        conv1: Conv::new(&(p / "conv1"), cin, 64, 7, 2, 3, false),
                        bn1: BatchNorm::new(&(p / "bn1"), 64),
                        layers,
                        compress,
                    },
                    512,
                )
            }
        };
        Ok(Encoder { kind: kind.clone(), input: input.to_vec(), dim, net })
    }

    /// [B, ...input] to [B, dim]: every stage, then the pooling.
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut s = self.begin(x)?;
        for k in 0..self.stage_count() {
            s = self.stage(k, s, train)?;
        }
        self.finish(s)
    }

    /// How many stages `stage` runs (M3, mid-fusion between them): an MLP's hidden layers, a
    /// CNN's conv blocks, a ResNet's four layers (the stem with the first).
    pub fn stage_count(&self) -> usize {
        match &self.net {
            Net::Mlp(layers) => layers.len(),
            Net::Cnn(blocks) => blocks.len(),
            Net::ResNet { .. } => 4,
        }
    }

    /// Each stage's output channels (an MLP layer's width; a conv block's, a ResNet layer's).
    pub fn stage_widths(&self) -> Vec<i64> {
        match &self.net {
            Net::Mlp(layers) => layers.iter().map(|l| l.weight.size()[0]).collect(),
            Net::Cnn(blocks) => blocks.iter().map(|(c, _)| c.weight.size()[0]).collect(),
            Net::ResNet { .. } => vec![64, 128, 256, 512],
        }
    }

    /// Checks and shapes a batch for the stages.
    pub fn begin(&self, x: &Tensor) -> Result<Staged> {
        let size = x.size();
        if size.len() != self.input.len() + 1 || size[1..] != self.input[..] {
            return Err(Error::arg(format!(
                "encoder {}: expected inputs [B, {}], got {size:?}",
                self.kind.name(),
                self.input.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
            )));
        }
        let x = x.f_to_kind(Kind::Float)?;
        let b = size[0];
        let (h, frames) = match &self.net {
            Net::Mlp(_) => (x.f_reshape([b, -1])?, None),
            Net::Cnn(_) => (if self.input.len() == 2 { x.f_unsqueeze(1)? } else { x }, None),
            Net::ResNet { .. } => {
                // Frames [B, 3, T, H, W] run as a batch of B*T images, then pool over T, H, W.
                if self.input.len() == 4 {
                    let t = size[2];
                    (x.f_permute([0, 2, 1, 3, 4]).and_then(|v| v.f_reshape([b * t, size[1], size[3], size[4]]))?, Some(t))
                } else if self.input.len() == 2 {
                    (x.f_unsqueeze(1)?, None)
                } else {
                    (x, None)
                }
            }
        };
        Ok(Staged { h, batch: b, frames })
    }

    /// Stage k on what the stages before it made.
    pub fn stage(&self, k: usize, s: Staged, train: bool) -> Result<Staged> {
        let h = match &self.net {
            Net::Mlp(layers) => relu(layers[k].forward(&s.h)?)?,
            Net::Cnn(blocks) => {
                let (conv, bn) = &blocks[k];
                relu(bn.forward(&conv.forward(&s.h)?, train)?)?
            }
            Net::ResNet { conv1, bn1, layers, compress } => {
                let mut h = s.h;
                if k == 0 {
                    h = relu(bn1.forward(&conv1.forward(&h)?, train)?)?;
                    h = h.f_max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false)?;
                }
                for block in &layers[2 * k..2 * k + 2] {
                    h = block.forward(&h, train)?;
                }
                // After layer 2: PMR's compress / recover stack.
                if k == 1 {
                    if let Some(c) = compress {
                        h = c.forward(&h)?;
                    }
                }
                h
            }
        };
        Ok(Staged { h, ..s })
    }

    /// The pooled features [B, dim] after the last stage.
    pub fn finish(&self, s: Staged) -> Result<Tensor> {
        match &self.net {
            Net::Mlp(_) => Ok(s.h),
            Net::Cnn(_) => s.h.f_mean_dim([-2, -1].as_slice(), false, Kind::Float).map_err(Error::from),
            Net::ResNet { .. } => s.pooled_maps(),
        }
    }
}
