//! A two-modality classifier: one encoder per modality and a fusion head, its parameters in one
//! `VarStore` named as PyTorch would (`<modality>_net.layer1.0.conv1.weight`, `fusion.fc_out.weight`).

use super::encoder::{Encoder, EncoderKind};
use super::fusion::{Fusion, FusionKind, Logits};
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use tch::{nn, Device};

pub struct ModelSpec {
    /// The two modalities, in gap order (first minus second).
    pub modalities: [String; 2],
    pub shapes: [Vec<i64>; 2],
    pub encoders: [EncoderKind; 2],
    pub fusion: FusionKind,
    pub classes: i64,
    pub seed: u64,
    pub device: Device,
}

pub struct Model {
    pub vs: nn::VarStore,
    pub modalities: [String; 2],
    pub encoders: [Encoder; 2],
    pub fusion: Fusion,
    pub classes: i64,
    /// A one-line description of the architecture, checked when loading checkpoints.
    pub architecture: String,
}

/// Logits and the features they came from.
pub struct Forward {
    pub logits: Logits,
    pub features: [Tensor; 2],
}

impl Model {
    pub fn new(spec: &ModelSpec) -> Result<Model> {
        if spec.classes < 2 {
            return Err(Error::arg(format!("model: needs at least 2 classes, got {}", spec.classes)));
        }
        // The initialisation is drawn from libtorch's generator: seed it so a run is repeatable.
        tch::manual_seed(spec.seed as i64);
        let vs = nn::VarStore::new(spec.device);
        let root = vs.root();
        let a = Encoder::new(&(&root / format!("{}_net", spec.modalities[0])), &spec.encoders[0], &spec.shapes[0])?;
        let v = Encoder::new(&(&root / format!("{}_net", spec.modalities[1])), &spec.encoders[1], &spec.shapes[1])?;
        let fusion = Fusion::new(&(&root / "fusion"), spec.fusion, a.dim, v.dim, spec.classes)?;
        let architecture = format!(
            "{} {} {:?} + {} {} {:?} -> {} -> {} classes",
            spec.modalities[0],
            spec.encoders[0].name(),
            spec.shapes[0],
            spec.modalities[1],
            spec.encoders[1].name(),
            spec.shapes[1],
            spec.fusion.name(),
            spec.classes
        );
        Ok(Model { vs, modalities: spec.modalities.clone(), encoders: [a, v], fusion, classes: spec.classes, architecture })
    }

    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// The forward pass on the two modalities' inputs (moved to the model's device).
    pub fn forward(&self, first: &Tensor, second: &Tensor, train: bool) -> Result<Forward> {
        let dev = self.device();
        let first = crate::tensor::check("forward", first.f_to_device(dev))?;
        let second = crate::tensor::check("forward", second.f_to_device(dev))?;
        let fa = self.encoders[0].forward(&first, train).map_err(|e| Error::arg(format!("{} {e}", self.modalities[0])))?;
        let fv = self.encoders[1].forward(&second, train).map_err(|e| Error::arg(format!("{} {e}", self.modalities[1])))?;
        let logits = self.fusion.forward(&fa, &fv)?;
        Ok(Forward { logits, features: [fa, fv] })
    }

    pub fn parameter_count(&self) -> i64 {
        self.vs.trainable_variables().iter().map(|t| t.numel() as i64).sum()
    }
}
