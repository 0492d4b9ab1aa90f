//! Channels-last memory for image encoders: 4-d tensors ([N, C, H, W]) laid out as N, H, W, C
//! in memory, the layout the GPU's convolution kernels (and oneDNN's on the CPU) prefer. tch
//! exposes no memory-format argument, so the layout is made the way PyTorch's own
//! `to(memory_format=torch.channels_last)` strides come out: permute to NHWC, make it
//! contiguous, permute back. Shapes, values and every operation stay the same; only strides
//! change, and libtorch's convolutions follow their input's layout.

use super::model::Model;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// `t` with channels-last strides when it is 4-d; other tensors unchanged (shared).
pub fn channels_last(t: &Tensor) -> Result<Tensor> {
    if t.dim() != 4 || is_channels_last(t) {
        return Ok(t.shallow_clone());
    }
    t.f_permute([0, 2, 3, 1]).and_then(|x| x.f_contiguous()).and_then(|x| x.f_permute([0, 3, 1, 2])).map_err(Error::from)
}

/// Whether a 4-d tensor's strides are channels-last (C the fastest dimension, then W, H, N).
pub fn is_channels_last(t: &Tensor) -> bool {
    let (size, stride) = (t.size(), t.stride());
    if size.len() != 4 {
        return false;
    }
    let (c, h, w) = (size[1], size[2], size[3]);
    stride[1] == 1 && stride[3] == c && stride[2] == c * w && (size[0] == 1 || stride[0] == c * h * w)
}

/// Lays every 4-d parameter of the model (its convolution kernels) out channels-last, in place:
/// the variables keep their identity, so the optimizer's references and state stay valid.
pub fn model_channels_last(model: &Model) -> Result<()> {
    let _guard = tch::no_grad_guard();
    for (_, mut v) in model.vs.variables() {
        if v.dim() == 4 && !is_channels_last(&v) {
            let laid = channels_last(&v)?;
            v.set_data(&laid);
        }
    }
    Ok(())
}

/// A batch's inputs laid out channels-last (its 4-d ones).
pub fn batch_channels_last(batch: crate::data::Batch) -> Result<crate::data::Batch> {
    let inputs = batch.inputs.iter().map(|(n, t)| Ok((n.clone(), channels_last(t)?))).collect::<Result<_>>()?;
    Ok(crate::data::Batch { inputs, ..batch })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synthetic::{generate, SyntheticOptions};
    use crate::data::BatchOptions;
    use crate::tensor::Kind;
    use crate::train::encoder::EncoderKind;
    use crate::train::fusion::FusionKind;
    use crate::train::method::EpochPlan;
    use crate::train::model::ModelSpec;
    use crate::train::optim::{OptimKind, Optimizer, Schedule};

    /// Two epochs of concat on a CNN pair, with the layout on or off: the epochs' losses, the
    /// trained parameters, and whether every kernel ended channels-last.
    fn train(channels_last: bool) -> (Vec<(String, f64)>, Vec<(String, Tensor)>, bool) {
        let data = std::rc::Rc::new(
            generate(&SyntheticOptions {
                n: 96,
                classes: 3,
                audio_shape: vec![6],
                visual_shape: vec![3, 8, 8],
                seed: 4,
                ..SyntheticOptions::default()
            })
            .unwrap(),
        );
        let train = data.split("train").unwrap();
        let spec = ModelSpec {
            modalities: vec!["audio".into(), "visual".into()],
            shapes: vec![vec![6], vec![3, 8, 8]],
            encoders: vec![EncoderKind::parse("mlp:8").unwrap(), EncoderKind::parse("cnn:4").unwrap()],
            fusion: FusionKind::Concat,
            classes: 3,
            seed: 1,
            device: tch::Device::Cpu,
            mmtm: 0,
        };
        let model = Model::new(&spec).unwrap();
        let mut opt = Optimizer::new(
            OptimKind::Sgd { momentum: 0.9, nesterov: false },
            0.05,
            1e-4,
            Schedule::None,
            model.architecture.clone(),
            model.trainable_parameters(),
        )
        .unwrap();
        let batching = BatchOptions { batch_size: 16, workers: 0, channels_last, ..BatchOptions::default() };
        let mut losses = Vec::new();
        for epoch in 0..2 {
            let plan = EpochPlan { train: &train, val: None, batching: &batching, epoch, quiet: true, amp: None };
            losses.extend(crate::train::trainer::epoch(&model, &mut opt, &plan, &mut crate::train::methods::concat::Concat).unwrap());
        }
        let kernels = model.vs.variables().into_iter().filter(|(_, v)| v.dim() == 4).collect::<Vec<_>>();
        let all_laid = !kernels.is_empty() && kernels.iter().all(|(_, v)| is_channels_last(v));
        (losses, model.state_dict(), all_laid)
    }

    #[test]
    fn a_channels_last_epoch_trains_as_the_default_layout_does() {
        let (plain_loss, plain, plain_laid) = train(false);
        let (laid_loss, laid, laid_laid) = train(true);
        assert!(!plain_laid && laid_laid, "the kernels' layout: default {plain_laid}, channels-last {laid_laid}");
        for ((k, a), (_, b)) in plain_loss.iter().zip(&laid_loss) {
            assert!((a - b).abs() <= 1e-4 * (1.0 + a.abs()), "{k}: {a} against {b}");
        }
        // The same values, summed in another order: float rounding apart.
        for ((k, a), (_, b)) in plain.iter().zip(&laid) {
            let diff = (a - b).abs().max().double_value(&[]);
            assert!(diff < 1e-4, "{k}: differs by {diff}");
        }
    }

    #[test]
    fn the_layout_changes_and_the_values_do_not() {
        let x = Tensor::randn([2, 3, 4, 5], (Kind::Float, tch::Device::Cpu));
        assert!(!is_channels_last(&x));
        let y = channels_last(&x).unwrap();
        assert!(is_channels_last(&y));
        assert_eq!(y.stride(), [60, 1, 15, 3]);
        assert_eq!(y.size(), x.size());
        assert!(y.equal(&x));
        // Other ranks pass through.
        let v = Tensor::randn([3, 4], (Kind::Float, tch::Device::Cpu));
        assert_eq!(channels_last(&v).unwrap().stride(), v.stride());
    }
}
