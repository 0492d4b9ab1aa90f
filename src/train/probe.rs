//! The linear probe: what the field's "audio-only / visual-only" accuracy usually means (OGM-GE's
//! Table 1, BalanceBenchmark's `linear_probe` mode). The trained encoders are frozen (their
//! features computed once, in evaluation mode, without gradients, so the model is untouched); a
//! new linear classifier per modality, and one on the concatenated features, is trained on the
//! training split's features; each keeps the epoch with the best validation accuracy (the last
//! without a validation split) and reports its test accuracy and macro-F1 there.

use super::inference::features;
use super::layers::Linear;
use super::method::mean_ce;
use super::metrics::scores;
use super::model::Model;
use super::optim::{OptimKind, Optimizer, Schedule};
use crate::data::{BatchOptions, Split};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::tensor::{Kind, Tensor};
use tch::nn;

#[derive(Clone, Debug)]
pub struct ProbeOptions {
    pub epochs: usize,
    pub lr: f64,
    pub batch: usize,
    /// The modalities to probe (all when empty); the concatenation of all is probed too.
    pub modalities: Vec<String>,
    pub seed: u64,
    pub quiet: bool,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions { epochs: 20, lr: 0.01, batch: 64, modalities: Vec::new(), seed: 0, quiet: true }
    }
}

/// One probe's result: its test scores at the epoch chosen on validation.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeResult {
    /// The modality, or "fused" for the concatenated features.
    pub name: String,
    pub test_acc: f64,
    pub test_f1: f64,
    /// NaN without a validation split.
    pub val_acc: f64,
    /// The 0-based epoch kept.
    pub epoch: usize,
}

struct SplitFeatures {
    per: Vec<Tensor>,
    labels: Tensor,
}

fn split_features(model: &Model, split: &Split, batch: usize) -> Result<SplitFeatures> {
    let f = features(model, split, &BatchOptions { batch_size: batch, shuffle: false, augment: false, ..BatchOptions::default() }, None)?;
    Ok(SplitFeatures { per: f.per, labels: f.labels })
}

/// The features probe `which` reads: one modality's, or all of them side by side.
fn probe_input(f: &SplitFeatures, which: Option<usize>) -> Result<Tensor> {
    match which {
        Some(m) => Ok(f.per[m].shallow_clone()),
        None => Tensor::f_cat(&f.per, 1).map_err(Error::from),
    }
}

fn accuracy_f1(head: &Linear, x: &Tensor, y: &Tensor, classes: usize) -> Result<(f64, f64)> {
    let _guard = tch::no_grad_guard();
    let pred = Vec::<i64>::try_from(&head.forward(x)?.f_argmax(-1, false)?)?;
    let s = scores(&pred, &Vec::<i64>::try_from(y)?, classes);
    Ok((s.accuracy, s.macro_f1))
}

/// Trains one probe on `x` → labels, choosing its epoch on validation.
#[allow(clippy::too_many_arguments)] // the three splits' inputs and labels, and the options
fn train_probe(
    name: &str,
    classes: i64,
    train: (&Tensor, &Tensor),
    val: Option<(&Tensor, &Tensor)>,
    test: (&Tensor, &Tensor),
    opts: &ProbeOptions,
) -> Result<ProbeResult> {
    let device = train.0.device();
    let (vs, head) = crate::rng::with_torch_seed(opts.seed, || {
        let vs = nn::VarStore::new(device);
        let head = Linear::new(&(vs.root() / "probe"), train.0.size()[1], classes);
        (vs, head)
    });
    let mut params: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    params.sort_by(|a, b| a.0.cmp(&b.0));
    let mut opt =
        Optimizer::new(OptimKind::Sgd { momentum: 0.9, nesterov: false }, opts.lr, 0.0, Schedule::None, format!("probe {name}"), params)?;
    let n = train.0.size()[0];
    let k = classes as usize;
    let mut best: Option<(f64, usize, (f64, f64))> = None;
    let mut bar = Progress::new(format!("linear probe {name}"), opts.epochs, "epochs", opts.quiet);
    for e in 0..opts.epochs {
        crate::interrupt::check(&format!("linear probe {name}"))?;
        let order = crate::rng::with_torch_seed(opts.seed.wrapping_add(1 + e as u64), || Tensor::randperm(n, (Kind::Int64, device)));
        let mut at = 0;
        while at < n {
            let idx = order.f_narrow(0, at, (opts.batch as i64).min(n - at))?;
            let loss = mean_ce(&head.forward(&train.0.f_index_select(0, &idx)?)?, &train.1.f_index_select(0, &idx)?)?;
            let grads = opt.gradients(&loss)?;
            opt.update(&grads)?;
            at += opts.batch as i64;
        }
        let val_acc = match val {
            Some((x, y)) => accuracy_f1(&head, x, y, k)?.0,
            None => f64::NAN,
        };
        // With a validation split the best epoch (the earlier on a tie); without, the last.
        if val.is_none() || best.as_ref().is_none_or(|(b, _, _)| val_acc > *b) {
            best = Some((val_acc, e, accuracy_f1(&head, test.0, test.1, k)?));
        }
        bar.inc(1);
    }
    bar.finish();
    let (val_acc, epoch, (test_acc, test_f1)) = best.ok_or_else(|| Error::arg("linear_probe: epochs must be at least 1"))?;
    Ok(ProbeResult { name: name.to_string(), test_acc, test_f1, val_acc, epoch })
}

/// Probes each chosen modality of `model`, then all of them concatenated ("fused"), last.
pub fn linear_probe(model: &Model, train: &Split, val: Option<&Split>, test: &Split, opts: &ProbeOptions) -> Result<Vec<ProbeResult>> {
    if opts.epochs == 0 || opts.batch == 0 || !(opts.lr > 0.0 && opts.lr.is_finite()) {
        return Err(Error::arg(format!(
            "linear_probe: epochs and batch must be at least 1 and lr positive, got epochs {}, batch {}, lr {}",
            opts.epochs, opts.batch, opts.lr
        )));
    }
    let chosen: Vec<usize> = if opts.modalities.is_empty() {
        (0..model.modalities.len()).collect()
    } else {
        opts.modalities
            .iter()
            .map(|name| {
                model.modalities.iter().position(|m| m == name).ok_or_else(|| {
                    Error::arg(format!("linear_probe: the model has no modality \"{name}\"; it has {}", model.modalities.join(", ")))
                })
            })
            .collect::<Result<_>>()?
    };
    let device = model.device();
    let on = |f: SplitFeatures| -> Result<SplitFeatures> {
        Ok(SplitFeatures {
            per: f.per.iter().map(|t| t.f_to_device(device)).collect::<std::result::Result<_, _>>()?,
            labels: f.labels.f_to_device(device)?,
        })
    };
    let tr = on(split_features(model, train, opts.batch)?)?;
    let va = match val {
        Some(v) => Some(on(split_features(model, v, opts.batch)?)?),
        None => None,
    };
    let te = on(split_features(model, test, opts.batch)?)?;
    let mut out = Vec::new();
    for which in chosen.into_iter().map(Some).chain(std::iter::once(None)) {
        let name = which.map_or("fused".to_string(), |m| model.modalities[m].clone());
        let (x_tr, x_te) = (probe_input(&tr, which)?, probe_input(&te, which)?);
        let x_va = va.as_ref().map(|v| probe_input(v, which)).transpose()?;
        let val_pair = va.as_ref().zip(x_va.as_ref()).map(|(v, x)| (x, &v.labels));
        out.push(train_probe(&name, model.classes, (&x_tr, &tr.labels), val_pair, (&x_te, &te.labels), opts)?);
    }
    Ok(out)
}
