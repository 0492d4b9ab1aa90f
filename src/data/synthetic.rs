//! A synthetic dataset where a chosen fraction of samples has a degraded weak modality: the
//! modality gap is visibly bimodal, which tests and teaching scripts need. Two modalities
//! (audio, visual) by default, or any number, each with its own shape, signal-to-noise ratio and
//! degraded fraction. Deterministic per seed (our own generator, not libtorch's).

use super::dataset::{Dataset, Modality};
use super::stratify;
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::tensor::{check, Tensor};

/// One generated modality.
#[derive(Clone, Debug, PartialEq)]
pub struct SyntheticModality {
    pub name: String,
    pub shape: Vec<i64>,
    /// The class prototype's norm over the noise std per feature.
    pub snr: f64,
    /// Fraction of samples whose signal in this modality is removed (pure noise); `None` draws
    /// no degradation at all (and no random number for it).
    pub degraded: Option<f64>,
}

#[derive(Clone, Debug)]
pub struct SyntheticOptions {
    pub n: usize,
    pub classes: usize,
    /// Any number of modalities; empty means the two-modality set below (audio, visual).
    pub modalities: Vec<SyntheticModality>,
    pub audio_shape: Vec<i64>,
    pub visual_shape: Vec<i64>,
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
            modalities: Vec::new(),
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

/// The most modalities one synthetic set holds (each is an encoder and a tensor).
pub const MAX_MODALITIES: usize = 64;

impl SyntheticOptions {
    /// The modalities to generate: the explicit list, else audio (never degraded) and visual
    /// (degraded in `degraded_fraction` of samples), which draws the same random numbers as the
    /// list [audio, visual] with degraded [None, Some(f)].
    pub fn resolved(&self) -> Vec<SyntheticModality> {
        if !self.modalities.is_empty() {
            return self.modalities.clone();
        }
        vec![
            SyntheticModality { name: "audio".into(), shape: self.audio_shape.clone(), snr: self.audio_snr, degraded: None },
            SyntheticModality {
                name: "visual".into(),
                shape: self.visual_shape.clone(),
                snr: self.visual_snr,
                degraded: Some(self.degraded_fraction),
            },
        ]
    }

    /// `k` modalities with the defaults a script gets from `modalities: k`: shape [32], an SNR of
    /// 3 for the first and 2 for the rest, and the last degraded in 30% of samples, so that
    /// k = 2 named audio and visual is the default two-modality set.
    pub fn default_modalities(names: &[String]) -> Vec<SyntheticModality> {
        let last = names.len().saturating_sub(1);
        names
            .iter()
            .enumerate()
            .map(|(i, name)| SyntheticModality {
                name: name.clone(),
                shape: vec![32],
                snr: if i == 0 { 3.0 } else { 2.0 },
                degraded: (i == last && names.len() > 1).then_some(0.3),
            })
            .collect()
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

fn numel(op: &str, name: &str, shape: &[i64]) -> Result<usize> {
    if shape.is_empty() || shape.iter().any(|&d| d <= 0) {
        return Err(Error::arg(format!("{op}: the shape of \"{name}\", {shape:?}, must have positive sizes")));
    }
    // The product is checked, not computed: [1 << 40, 1 << 40] must be an error, not a wrap.
    let mut total: u64 = 1;
    for &d in shape {
        total = total.checked_mul(d as u64).filter(|&t| t <= i64::MAX as u64).ok_or_else(|| {
            Error::arg(format!("{op}: the shape of \"{name}\", {shape:?}, has more elements than any tensor can hold; give smaller sizes"))
        })?;
    }
    Ok(total as usize)
}

/// Names become parameter prefixes (`<name>_net.`) and batch keys, so they are identifiers.
fn check_names(op: &str, mods: &[SyntheticModality]) -> Result<()> {
    if mods.len() > MAX_MODALITIES {
        return Err(Error::arg(format!("{op}: {} modalities; at most {MAX_MODALITIES}", mods.len())));
    }
    for (i, m) in mods.iter().enumerate() {
        let ok = !m.name.is_empty()
            && m.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !m.name.starts_with(|c: char| c.is_ascii_digit());
        if !ok {
            return Err(Error::arg(format!(
                "{op}: modality name \"{}\" must be letters, digits and _ (not starting with a digit), e.g. \"text\"",
                m.name
            )));
        }
        if ["labels", "indices", "ids"].contains(&m.name.as_str()) {
            return Err(Error::arg(format!("{op}: \"{}\" names a batch's own entry; call the modality something else", m.name)));
        }
        if mods[..i].iter().any(|o| o.name == m.name) {
            return Err(Error::arg(format!("{op}: modality \"{}\" is named twice; names must be distinct", m.name)));
        }
        if let Some(f) = m.degraded {
            if !(0.0..=1.0).contains(&f) {
                return Err(Error::arg(format!("{op}: the degraded fraction of \"{}\", {f}, must be in [0, 1]", m.name)));
            }
        }
        if !m.snr.is_finite() || m.snr < 0.0 {
            return Err(Error::arg(format!("{op}: the snr of \"{}\", {}, must be a finite number >= 0", m.name, m.snr)));
        }
    }
    Ok(())
}

pub fn generate(o: &SyntheticOptions) -> Result<Dataset> {
    let op = "dataset(\"synthetic\")";
    if o.n == 0 || o.classes < 2 {
        return Err(Error::arg(format!("{op}: need n >= 1 and classes >= 2 (got n = {}, classes = {})", o.n, o.classes)));
    }
    let mods = o.resolved();
    check_names(op, &mods)?;
    let dims = mods.iter().map(|m| numel(op, &m.name, &m.shape)).collect::<Result<Vec<_>>>()?;
    // Every buffer's size is checked before the first is allocated.
    for &d in &dims {
        for rows in [o.classes, o.n] {
            crate::limits::elements(op, &[rows as u64, d as u64], 8)?;
        }
    }
    let mut rng = Rng::new(o.seed);
    let protos: Vec<Vec<Vec<f64>>> = mods.iter().zip(&dims).map(|(m, &d)| prototypes(&mut rng, o.classes, d, m.snr)).collect();
    let mut labels = crate::limits::try_with_capacity(op, o.n)?;
    let mut degraded: Vec<Vec<bool>> = mods.iter().map(|_| Vec::new()).collect();
    let mut values: Vec<Vec<f32>> = Vec::with_capacity(mods.len());
    for &d in &dims {
        values.push(crate::limits::try_with_capacity(op, crate::limits::elements(op, &[o.n as u64, d as u64], 4)?)?);
    }
    let mut bad = vec![false; mods.len()];
    for _ in 0..o.n {
        // Balanced classes: sample i has class i mod classes (shuffled order by the split).
        let y = labels.len() % o.classes;
        labels.push(y as i64);
        // First every degradable modality's draw, then each modality's noise, in order.
        for (k, m) in mods.iter().enumerate() {
            bad[k] = m.degraded.is_some_and(|f| rng.uniform() < f);
            degraded[k].push(bad[k]);
        }
        for k in 0..mods.len() {
            let signal = if bad[k] { 0.0 } else { 1.0 };
            values[k].extend(protos[k][y].iter().map(|p| (signal * p + rng.normal()) as f32));
        }
    }
    let mut modalities = Vec::with_capacity(mods.len());
    for (m, data) in mods.iter().zip(values) {
        let mut full = vec![o.n as i64];
        full.extend_from_slice(&m.shape);
        modalities.push(Modality::memory(m.name.clone(), check(op, Tensor::from_slice(&data).f_reshape(&full))?));
    }
    // `degraded`: the sample is degraded in some modality; `degraded_<name>` per modality.
    let any: Vec<bool> = (0..o.n).map(|i| degraded.iter().any(|d| d[i])).collect();
    let mut meta = vec![("degraded".to_string(), Tensor::from_slice(&any))];
    for (m, d) in mods.iter().zip(&degraded) {
        if m.degraded.is_some() {
            meta.push((format!("degraded_{}", m.name), Tensor::from_slice(d)));
        }
    }
    let splits = stratify::named(&labels, o.classes, o.val, o.test, o.seed ^ 0x5EED)?;
    let ds = Dataset {
        name: "synthetic".into(),
        modalities,
        labels: Tensor::from_slice(&labels),
        class_names: (0..o.classes).map(|c| format!("class{c}")).collect(),
        ids: None,
        splits,
        meta,
        source: None,
    };
    ds.validate()?;
    Ok(ds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(ds: &Dataset, k: usize) -> Vec<f32> {
        Vec::<f32>::try_from(ds.modalities[k].data().unwrap().flatten(0, -1)).unwrap()
    }

    #[test]
    fn the_default_pair_is_the_two_named_modalities_of_the_general_form() {
        let legacy = generate(&SyntheticOptions { n: 50, ..SyntheticOptions::default() }).unwrap();
        let names = ["audio".to_string(), "visual".to_string()];
        let general =
            generate(&SyntheticOptions { n: 50, modalities: SyntheticOptions::default_modalities(&names), ..SyntheticOptions::default() })
                .unwrap();
        for k in 0..2 {
            assert_eq!(legacy.modalities[k].name, general.modalities[k].name);
            assert_eq!(rows(&legacy, k), rows(&general, k));
        }
        assert_eq!(Vec::<i64>::try_from(&legacy.labels).unwrap(), Vec::<i64>::try_from(&general.labels).unwrap());
    }

    #[test]
    fn each_modality_degrades_its_own_fraction() {
        let mods = vec![
            SyntheticModality { name: "a".into(), shape: vec![4], snr: 3.0, degraded: Some(0.0) },
            SyntheticModality { name: "b".into(), shape: vec![2, 3], snr: 2.0, degraded: Some(1.0) },
            SyntheticModality { name: "c".into(), shape: vec![5], snr: 1.0, degraded: Some(0.5) },
        ];
        let ds = generate(&SyntheticOptions { n: 400, modalities: mods, ..SyntheticOptions::default() }).unwrap();
        assert_eq!(ds.modalities[1].shape, vec![2, 3]);
        let frac = |name: &str| {
            let t = &ds.meta.iter().find(|(n, _)| n == name).unwrap().1;
            Vec::<bool>::try_from(t).unwrap().iter().filter(|&&b| b).count() as f64 / 400.0
        };
        assert_eq!(frac("degraded_a"), 0.0);
        assert_eq!(frac("degraded_b"), 1.0);
        assert!((frac("degraded_c") - 0.5).abs() < 0.1, "{}", frac("degraded_c"));
        assert_eq!(frac("degraded"), 1.0);
    }

    #[test]
    fn bad_names_and_shapes_are_errors() {
        let one = |name: &str, shape: Vec<i64>| SyntheticOptions {
            n: 10,
            modalities: vec![SyntheticModality { name: name.into(), shape, snr: 1.0, degraded: None }],
            ..SyntheticOptions::default()
        };
        for (o, want) in [
            (one("a.b", vec![3]), "letters, digits"),
            (one("labels", vec![3]), "batch's own entry"),
            (one("a", vec![1 << 40, 1 << 40]), "more elements"),
            (one("a", vec![0]), "positive sizes"),
        ] {
            let e = generate(&o).err().expect("an error").to_string();
            assert!(e.contains(want), "{e}");
        }
        let twice =
            SyntheticOptions { modalities: SyntheticOptions::default_modalities(&["x".into(), "x".into()]), ..SyntheticOptions::default() };
        assert!(generate(&twice).err().expect("an error").to_string().contains("named twice"));
    }
}
