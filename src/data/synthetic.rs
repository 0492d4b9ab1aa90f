//! A synthetic audio-visual dataset where a chosen fraction of samples has a degraded weak
//! modality: the modality gap is visibly bimodal, which tests and teaching scripts need.
//! Deterministic per seed (our own generator, not libtorch's).

use super::dataset::{Dataset, Modality};
use super::stratify;
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::tensor::{check, Tensor};

#[derive(Clone, Debug)]
pub struct SyntheticOptions {
    pub n: usize,
    pub classes: usize,
    pub audio_shape: Vec<i64>,
    pub visual_shape: Vec<i64>,
    /// Signal-to-noise ratios: the class prototype's norm over the noise std per feature.
    pub audio_snr: f64,
    pub visual_snr: f64,
    /// Fraction of samples whose visual signal is removed (pure noise).
    pub degraded_fraction: f64,
    pub seed: u64,
    pub val: f64,
    pub test: f64,
}

impl Default for SyntheticOptions {
    fn default() -> Self {
        SyntheticOptions {
            n: 2000,
            classes: 6,
            audio_shape: vec![32],
            visual_shape: vec![32],
            audio_snr: 3.0,
            visual_snr: 2.0,
            degraded_fraction: 0.3,
            seed: 0,
            val: 0.15,
            test: 0.15,
        }
    }
}

/// Class prototypes: `classes` random directions of norm `snr`, flattened to `dim`.
fn prototypes(rng: &mut Rng, classes: usize, dim: usize, snr: f64) -> Vec<Vec<f64>> {
    (0..classes)
        .map(|_| {
            let v: Vec<f64> = (0..dim).map(|_| rng.normal()).collect();
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(f64::MIN_POSITIVE);
            v.into_iter().map(|x| x * snr / norm * (dim as f64).sqrt()).collect()
        })
        .collect()
}

fn numel(op: &str, shape: &[i64]) -> Result<usize> {
    if shape.is_empty() || shape.iter().any(|&d| d <= 0) {
        return Err(Error::arg(format!("{op}: shape {shape:?} must have positive sizes")));
    }
    Ok(shape.iter().product::<i64>() as usize)
}

pub fn generate(o: &SyntheticOptions) -> Result<Dataset> {
    let op = "dataset(\"synthetic\")";
    if o.n == 0 || o.classes < 2 {
        return Err(Error::arg(format!("{op}: need n >= 1 and classes >= 2 (got n = {}, classes = {})", o.n, o.classes)));
    }
    if !(0.0..=1.0).contains(&o.degraded_fraction) {
        return Err(Error::arg(format!("{op}: degraded_fraction {} must be in [0, 1]", o.degraded_fraction)));
    }
    let (da, dv) = (numel(op, &o.audio_shape)?, numel(op, &o.visual_shape)?);
    // Every buffer's size is checked before the first is allocated.
    for (rows, width) in [(o.classes, da), (o.classes, dv), (o.n, da), (o.n, dv)] {
        crate::limits::elements(op, &[rows as u64, width as u64], 8)?;
    }
    let mut rng = Rng::new(o.seed);
    let proto_a = prototypes(&mut rng, o.classes, da, o.audio_snr);
    let proto_v = prototypes(&mut rng, o.classes, dv, o.visual_snr);
    let mut labels = crate::limits::try_with_capacity(op, o.n)?;
    let mut degraded = crate::limits::try_with_capacity(op, o.n)?;
    let mut audio = crate::limits::try_with_capacity(op, crate::limits::elements(op, &[o.n as u64, da as u64], 4)?)?;
    let mut visual = crate::limits::try_with_capacity(op, crate::limits::elements(op, &[o.n as u64, dv as u64], 4)?)?;
    for i in 0..o.n {
        // Balanced classes: sample i has class i mod classes (shuffled order by the split).
        let y = i % o.classes;
        let bad = rng.uniform() < o.degraded_fraction;
        labels.push(y as i64);
        degraded.push(bad);
        audio.extend(proto_a[y].iter().map(|p| (p + rng.normal()) as f32));
        visual.extend(proto_v[y].iter().map(|p| ((if bad { 0.0 } else { *p }) + rng.normal()) as f32));
    }
    let shaped = |data: Vec<f32>, shape: &[i64]| -> Result<Tensor> {
        let mut full = vec![o.n as i64];
        full.extend_from_slice(shape);
        check(op, Tensor::from_slice(&data).f_reshape(&full))
    };
    let splits = stratify::named(&labels, o.classes, o.val, o.test, o.seed ^ 0x5EED)?;
    let ds = Dataset {
        name: "synthetic".into(),
        modalities: vec![
            Modality::memory("audio", shaped(audio, &o.audio_shape)?),
            Modality::memory("visual", shaped(visual, &o.visual_shape)?),
        ],
        labels: Tensor::from_slice(&labels),
        class_names: (0..o.classes).map(|c| format!("class{c}")).collect(),
        ids: None,
        splits,
        meta: vec![("degraded".into(), Tensor::from_slice(&degraded))],
        source: None,
    };
    ds.validate()?;
    Ok(ds)
}
