//! A toy two-modality problem for tests at the level of the Rust core: synthetic data (240
//! samples, 3 classes, two 6-dim modalities), a small MLP model per fusion kind, SGD, and ways
//! to compare model states.

use gapscope::data::synthetic::{generate, SyntheticOptions};
use gapscope::data::{BatchOptions, Split};
use gapscope::train::encoder::EncoderKind;
use gapscope::train::fusion::FusionKind;
use gapscope::train::method::EpochContext;
use gapscope::train::model::{Model, ModelSpec};
use gapscope::train::optim::{OptimKind, Optimizer, Schedule};
use gapscope::train::options::Value;
use gapscope::train::trainer;
use std::rc::Rc;
use tch::{Kind, Tensor};

/// The train and val splits.
pub fn data() -> (Split, Split) {
    let d = Rc::new(
        generate(&SyntheticOptions {
            n: 240,
            classes: 3,
            audio_shape: vec![6],
            visual_shape: vec![6],
            seed: 2,
            ..SyntheticOptions::default()
        })
        .unwrap(),
    );
    (d.split("train").unwrap(), d.split("val").unwrap())
}

/// Two mlp:8 encoders and the given head, seed 1, on the CPU.
pub fn model(fusion: FusionKind) -> Model {
    Model::new(&ModelSpec {
        modalities: vec!["audio".into(), "visual".into()],
        shapes: vec![vec![6], vec![6]],
        encoders: vec![EncoderKind::parse("mlp:8").unwrap(), EncoderKind::parse("mlp:8").unwrap()],
        fusion,
        classes: 3,
        seed: 1,
        device: tch::Device::Cpu,
        mmtm: 0,
    })
    .unwrap()
}

/// SGD at lr 0.1, no weight decay.
pub fn sgd(m: &Model, momentum: f64) -> Optimizer {
    Optimizer::new(OptimKind::Sgd { momentum, nesterov: false }, 0.1, 0.0, Schedule::None, m.architecture.clone(), m.trainable_parameters())
        .unwrap()
}

pub fn opts(pairs: &[(&str, Value)]) -> Vec<(String, Value)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

pub fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a.to_kind(Kind::Double) - b.to_kind(Kind::Double)).abs().max().double_value(&[])
}

/// The model's state dict, copied.
pub fn snapshot(m: &Model) -> Vec<(String, Tensor)> {
    m.state_dict().into_iter().map(|(k, t)| (k, t.copy())).collect()
}

/// What a method sees before an epoch, quietly, with the trainer's epoch loop.
pub fn epoch_ctx<'a>(
    m: &'a Model,
    o: &'a Optimizer,
    train: &'a Split,
    val: Option<&'a Split>,
    batching: &'a BatchOptions,
    epoch: usize,
) -> EpochContext<'a> {
    EpochContext { model: m, opt: o, train, val, batching, epoch, quiet: true, amp: None, run_epoch: trainer::epoch }
}
