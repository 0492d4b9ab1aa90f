//! Datasets in Rhai: `dataset(name, opts)`, the `Dataset` and `Split` types, and batch
//! iteration (`for b in data.train.batches(#{ batch: 64, seed: 1 }) { ... }`). Loading and
//! batching live in `crate::data`.

use super::options::Options;
use super::tensor::ScriptTensor;
use super::{Docs, RhaiResult};
use crate::data::{self, mfeat, synthetic::SyntheticOptions, BatchOptions, Batches, Dataset, Split};
use crate::error::Error;
use crate::tensor::{check, Kind, Tensor};
use rhai::{Array, Dynamic, Engine, EvalAltResult, Map, INT};
use std::path::PathBuf;
use std::rc::Rc;

#[derive(Clone)]
pub struct ScriptDataset(pub Rc<Dataset>);

/// A batch plan: iterating it yields batch maps `#{ <modality>: T, labels: T, indices: T }`.
#[derive(Clone)]
pub struct BatchPlan {
    split: Split,
    opts: BatchOptions,
}

fn batch_map(b: data::Batch) -> Map {
    let mut m = Map::new();
    for (name, t) in b.inputs {
        m.insert(name.into(), Dynamic::from(ScriptTensor::new(t)));
    }
    m.insert("labels".into(), Dynamic::from(ScriptTensor::new(b.labels)));
    m.insert("indices".into(), Dynamic::from(ScriptTensor::new(b.indices)));
    m
}

impl IntoIterator for BatchPlan {
    type Item = Result<Map, Box<EvalAltResult>>;
    type IntoIter = Box<dyn Iterator<Item = Self::Item>>;

    fn into_iter(self) -> Self::IntoIter {
        match Batches::new(&self.split, &self.opts) {
            Ok(b) => Box::new(b.map(|r| r.map(batch_map).map_err(Into::into))),
            Err(e) => Box::new(std::iter::once(Err(e.into()))),
        }
    }
}

fn shape_of(v: &Dynamic, op: &str, key: &str) -> RhaiResult<Vec<i64>> {
    if let Ok(n) = v.as_int() {
        return Ok(vec![n]);
    }
    let arr = v.read_lock::<Array>().ok_or_else(|| Error::arg(format!("{op}: {key} must be an int or an array of ints")))?;
    arr.iter().map(|d| d.as_int().map_err(|_| Error::arg(format!("{op}: {key} must hold ints")).into())).collect()
}

/// `dataset("synthetic", ...)`: the audio-visual pair by default, or `modalities: k` (or names)
/// with per-modality `shapes`, `snr` and `degraded` (arrays of k, or one value for all).
fn synthetic_options(opts: &Map) -> RhaiResult<SyntheticOptions> {
    use crate::data::synthetic::MAX_MODALITIES;
    let op = "dataset(\"synthetic\")";
    let pair = ["audio_shape", "visual_shape", "audio_snr", "visual_snr", "degraded_fraction"];
    let general = ["modalities", "shapes", "snr", "degraded"];
    let mut keys = vec!["n", "classes", "seed", "val", "test"];
    keys.extend(pair);
    keys.extend(general);
    let o = Options::new(op, opts, &keys)?;
    let d = SyntheticOptions::default();
    let shape =
        |key: &str, default: &Vec<i64>| -> RhaiResult<Vec<i64>> { o.get(key).map(|v| shape_of(v, op, key)).unwrap_or(Ok(default.clone())) };
    let mut out = SyntheticOptions {
        n: o.count("n", d.n)?,
        classes: o.count("classes", d.classes)?,
        seed: o.count("seed", 0)? as u64,
        val: o.float("val", d.val)?,
        test: o.float("test", d.test)?,
        ..SyntheticOptions::default()
    };
    let Some(spec) = o.get("modalities") else {
        if let Some(k) = general.iter().find(|k| o.get(k).is_some()) {
            return Err(Error::arg(format!("{op}: `{k}` goes with `modalities` (e.g. #{{ modalities: 3, {k}: ... }}); the default pair takes audio_shape, visual_shape, audio_snr, visual_snr, degraded_fraction")).into());
        }
        out.audio_shape = shape("audio_shape", &d.audio_shape)?;
        out.visual_shape = shape("visual_shape", &d.visual_shape)?;
        out.audio_snr = o.float("audio_snr", d.audio_snr)?;
        out.visual_snr = o.float("visual_snr", d.visual_snr)?;
        out.degraded_fraction = o.float("degraded_fraction", d.degraded_fraction)?;
        return Ok(out);
    };
    if let Some(k) = pair.iter().find(|k| o.get(k).is_some()) {
        return Err(Error::arg(format!(
            "{op}: `{k}` is for the default audio-visual pair; with `modalities` give shapes, snr and degraded (one per modality)"
        ))
        .into());
    }
    let names: Vec<String> = if let Ok(k) = spec.as_int() {
        if !(1..=MAX_MODALITIES as INT).contains(&k) {
            return Err(Error::arg(format!("{op}: modalities: {k}; give 1 to {MAX_MODALITIES} (or an array of names)")).into());
        }
        (1..=k).map(|i| format!("m{i}")).collect()
    } else {
        spec.read_lock::<Array>()
            .and_then(|a| a.iter().map(|s| s.clone().into_string().ok()).collect::<Option<Vec<_>>>())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                Error::arg(format!("{op}: modalities must be a count or an array of names, e.g. 3 or [\"text\", \"audio\", \"visual\"]"))
            })?
    };
    let k = names.len();
    let mut mods = SyntheticOptions::default_modalities(&names);
    // Each per-modality key: one value for all, or an array of exactly k.
    let per = |key: &str| -> RhaiResult<Option<Vec<Dynamic>>> {
        let Some(v) = o.get(key) else { return Ok(None) };
        if let Some(a) = v.read_lock::<Array>() {
            if a.len() != k {
                return Err(Error::arg(format!(
                    "{op}: {key} has {} entries for {k} modalities; give one per modality (or one value for all)",
                    a.len()
                ))
                .into());
            }
            return Ok(Some(a.clone()));
        }
        Ok(Some(vec![v.clone(); k]))
    };
    let number = |key: &str, v: &Dynamic| -> RhaiResult<f64> {
        v.as_float()
            .or_else(|_| v.as_int().map(|i| i as f64))
            .map_err(|_| Error::arg(format!("{op}: {key} must hold numbers, e.g. {key}: [3.0, 2.0] or {key}: 2.0")).into())
    };
    if let Some(v) = o.get("shapes") {
        let all = if v.is_int() { vec![v.clone(); k] } else { per("shapes")?.expect("present") };
        for (m, s) in mods.iter_mut().zip(&all) {
            m.shape = shape_of(s, op, "shapes")?;
        }
    }
    if let Some(all) = per("snr")? {
        for (m, s) in mods.iter_mut().zip(&all) {
            m.snr = number("snr", s)?;
        }
    }
    if let Some(all) = per("degraded")? {
        for (m, s) in mods.iter_mut().zip(&all) {
            m.degraded = Some(number("degraded", s)?);
        }
    }
    out.modalities = mods;
    Ok(out)
}

fn load(name: &str, opts: &Map) -> RhaiResult<ScriptDataset> {
    let op = "dataset";
    if crate::sweep::collector::planning() {
        return Err(Error::arg("dataset: planning a sweep loads no data, and this script loads a dataset outside its grid: a sweep needs a script whose runs go through ex::sweep or ex::table (stdlib/experiments.rhai); guard other work with `if !sweep_planning() { ... }`").into());
    }
    let ds = match name {
        "synthetic" => data::synthetic::generate(&synthetic_options(opts)?)?,
        "mfeat" => {
            let o = Options::new(op, opts, &["views", "seed", "val", "test", "dir", "standardize"])?;
            let views: Vec<String> = match o.get("views") {
                None => vec!["pix".into(), "fou".into()],
                Some(v) => v
                    .read_lock::<Array>()
                    .and_then(|a| a.iter().map(|s| s.clone().into_string().ok()).collect::<Option<Vec<_>>>())
                    .ok_or_else(|| Error::arg("dataset(\"mfeat\"): views must be an array of view names, e.g. [\"pix\", \"fou\"]"))?,
            };
            let dir = o
                .get("dir")
                .map(|_| o.string("dir", ""))
                .transpose()?
                .map(PathBuf::from)
                .unwrap_or_else(|| mfeat::data_dir().join("mfeat"));
            mfeat::load(
                &dir,
                &views,
                o.float("val", 0.15)?,
                o.float("test", 0.15)?,
                o.count("seed", 0)? as u64,
                o.boolean("standardize", false)?,
            )?
        }
        "files" => {
            let o = Options::new(op, opts, &["path", "classes"])?;
            let path = o.get("path").ok_or_else(|| Error::arg("dataset(\"files\"): give the folder, e.g. #{ path: \"data/mine\" }"))?;
            let path = path.clone().into_string().map_err(|_| Error::arg("dataset(\"files\"): path must be a string"))?;
            let classes = o.get("classes").map(|_| o.count("classes", 0)).transpose()?;
            data::files::load(&PathBuf::from(path), classes)?
        }
        "cremad" | "ave" | "ks" => load_corpus(name, opts)?,
        other => {
            return Err(Error::arg(format!(
                "dataset: unknown dataset \"{other}\"; available: \"synthetic\", \"mfeat\", \"files\", \"cremad\", \"ave\", \"ks\""
            ))
            .into());
        }
    };
    Ok(ScriptDataset(Rc::new(ds)))
}

/// CREMA-D, AVE or Kinetics-Sounds from their on-disk layouts (`crate::data::corpus`).
fn load_corpus(name: &str, opts: &Map) -> RhaiResult<Dataset> {
    use crate::data::audio::{FrontEnd, FrontEndKind};
    use crate::data::corpus::{self, CorpusOptions};
    use crate::data::frames::FrameChoice;
    use crate::data::split_files::CremadLabels;
    let op: &'static str = match name {
        "cremad" => "dataset(\"cremad\")",
        "ave" => "dataset(\"ave\")",
        _ => "dataset(\"ks\")",
    };
    let mut keys =
        vec!["path", "front_end", "samples", "frames", "size", "frames_train", "frames_test", "audio_dir", "frames_dir", "skip_corrupt"];
    keys.push(match name {
        "cremad" => "labels",
        _ => "classes",
    });
    let o = Options::new(op, opts, &keys)?;
    // Each layout's defaults (data-formats.md): CREMA-D front-end A and 1 frame, AVE B over
    // 10 s and 4 frames, Kinetics-Sounds C and 3 frames.
    let (kind, t) = match name {
        "cremad" => (FrontEndKind::A, 1),
        "ave" => (FrontEndKind::B, 4),
        _ => (FrontEndKind::C, 3),
    };
    let kind = match o.get("front_end") {
        Some(_) => FrontEndKind::parse(&o.string("front_end", "")?)?,
        None => kind,
    };
    let mut fe = FrontEnd::new(kind);
    if name == "ave" && kind == FrontEndKind::B {
        fe.samples = 160_000;
    }
    match kind {
        FrontEndKind::C => fe.frames = o.count("samples", fe.frames as usize)? as i64,
        _ => fe.samples = o.count("samples", fe.samples as usize)? as i64,
    }
    if (kind != FrontEndKind::C && fe.samples < 512) || fe.frames < 0 || (kind == FrontEndKind::C && fe.frames < 1) {
        return Err(Error::arg(format!("{op}: samples must be >= 512 for front-ends A and B, and >= 1 (fbank frames) for C")).into());
    }
    let root = match o.get("path") {
        Some(_) => PathBuf::from(o.string("path", "")?),
        None => mfeat::data_dir().join(name),
    };
    let mut c = CorpusOptions::new(root, fe, o.count("frames", t)?);
    if c.frames == 0 {
        return Err(Error::arg(format!("{op}: frames must be at least 1")).into());
    }
    c.size = o.count("size", 224)? as i64;
    if c.size < 8 {
        return Err(Error::arg(format!("{op}: size must be at least 8")).into());
    }
    c.frames_train = FrameChoice::parse(&o.string("frames_train", "random")?)?;
    c.frames_test = FrameChoice::parse(&o.string("frames_test", "evenly")?)?;
    c.audio_dir = o.string("audio_dir", &c.audio_dir)?;
    c.frames_dir = o.string("frames_dir", &c.frames_dir)?;
    c.skip_corrupt = o.boolean("skip_corrupt", false)?;
    Ok(match name {
        "cremad" => {
            let labels = match o.string("labels", "ogm")?.as_str() {
                "ogm" => CremadLabels::Ogm,
                "sorted" => CremadLabels::Sorted,
                other => {
                    return Err(Error::arg(format!(
                        "{op}: labels \"{other}\": use \"ogm\" (NEU 0, HAP 1, SAD 2, FEA 3, DIS 4, ANG 5) or \"sorted\" (ANG 0 ... SAD 5)"
                    ))
                    .into())
                }
            };
            corpus::cremad::load(c, labels)?
        }
        "ave" => corpus::ave::load(c)?,
        _ => corpus::kinetics::load(c, o.get("classes").map(|_| o.count("classes", 31)).transpose()?)?,
    })
}

fn positions_from(op: &str, v: &Dynamic) -> RhaiResult<Result<Vec<i64>, Vec<bool>>> {
    if let Some(t) = v.clone().try_cast::<ScriptTensor>() {
        let t = t.tensor();
        if t.dim() != 1 {
            return Err(Error::arg(format!("{op}: expected a 1-d index list or boolean mask, got shape {:?}", t.size())).into());
        }
        if t.kind() == Kind::Bool {
            return Ok(Err(check(op, Vec::<bool>::try_from(t))?));
        }
        if crate::tensor::dtype::is_float(t.kind()) {
            return Err(Error::arg(format!("{op}: indices must be ints or a bool mask, got a float tensor")).into());
        }
        return Ok(Ok(check(op, t.f_to_kind(Kind::Int64).and_then(|c| Vec::<i64>::try_from(&c)))?));
    }
    if let Some(a) = v.read_lock::<Array>() {
        return a
            .iter()
            .map(|d| d.as_int().map_err(|_| Error::arg(format!("{op}: an index list holds ints, found {}", d.type_name())).into()))
            .collect::<RhaiResult<Vec<INT>>>()
            .map(Ok);
    }
    Err(Error::arg(format!("{op}: expected an array of ints, an int tensor or a bool tensor, found {}", v.type_name())).into())
}

pub fn register(engine: &mut Engine, docs: &mut Docs) {
    engine.register_type_with_name::<ScriptDataset>("Dataset");
    engine.register_type_with_name::<Split>("Split");
    engine.register_type_with_name::<BatchPlan>("Batches");
    engine.register_iterator_result::<BatchPlan, Map>();
    let a = "data";
    docs.add(a, "dataset", "dataset(name, opts)",
        "Loads a dataset: \"synthetic\" #{ n, classes, audio_shape, visual_shape, audio_snr, visual_snr, degraded_fraction, seed, val, test } (an audio-visual pair, visual degraded in degraded_fraction of samples), or #{ modalities: k or [names], shapes, snr, degraded, ... } (any number of modalities; shapes, snr and degraded take one value for all or an array of k; by default shape 32, snr 3 then 2, the last degraded in 30%; meta \"degraded_<name>\" per modality); \"mfeat\" #{ views, seed, val, test, dir, standardize } (UCI Multiple Features, any of pix, fac, kar, fou, zer, mor; default views [\"pix\", \"fou\"]; standardize: true z-scores each feature with the train split's mean and std); \"files\" #{ path, classes } (one .safetensors per split, docs/data.md); \"cremad\", \"ave\", \"ks\" #{ path, front_end, samples, frames, size, frames_train, frames_test, audio_dir, frames_dir, skip_corrupt, labels (cremad) | classes (ks) } (read lazily from the public layouts, docs/data.md).",
        "let data = dataset(\"mfeat\", #{ views: [\"pix\", \"fou\"], seed: 7 });");
    engine.register_fn("dataset", |name: &str| load(name, &Map::new()));
    engine.register_fn("dataset", |name: &str, opts: Map| load(name, &opts));

    type D = ScriptDataset;
    docs.add(a, "name", "data.name", "The dataset's name (\"mfeat\", \"cremad\", ...), as run records store it.", "data.name");
    engine.register_get("name", |d: &mut D| d.0.name.clone());
    docs.add(a, "classes", "data.classes", "The number of classes.", "data.classes");
    engine.register_get("classes", |d: &mut D| d.0.classes() as INT);
    docs.add(a, "len", "data.len | split.len", "The number of samples.", "data.train.len");
    engine.register_get("len", |d: &mut D| d.0.len() as INT);
    engine.register_get("len", |s: &mut Split| s.len() as INT);
    docs.add(a, "modalities", "data.modalities", "The modality names, in batch order.", "data.modalities");
    engine.register_get("modalities", |d: &mut D| -> Array { d.0.modalities.iter().map(|m| m.name.clone().into()).collect() });
    docs.add(a, "shapes", "data.shapes", "Per-sample shape of each modality, as a map.", "data.shapes.pix  // [1, 16, 15]");
    engine.register_get("shapes", |d: &mut D| -> Map {
        d.0.modalities
            .iter()
            .map(|m| (m.name.as_str().into(), Dynamic::from_array(m.shape.iter().map(|&s| Dynamic::from_int(s)).collect())))
            .collect()
    });
    docs.add(a, "splits", "data.splits", "The split names (train, and val / test where present).", "data.splits");
    engine.register_get("splits", |d: &mut D| -> Array { d.0.splits.iter().map(|(n, _)| n.clone().into()).collect() });
    docs.add(a, "train", "data.train", "The training split.", "data.train.len");
    docs.add(a, "val", "data.val", "The validation split (an error names the splits that exist when there is none).", "data.val.len");
    docs.add(a, "test", "data.test", "The test split.", "data.test.len");
    docs.add(a, "split", "data.split(name)", "A split by name.", "data.split(\"train\")");
    for name in ["train", "val", "test"] {
        engine.register_get(name, move |d: &mut D| -> RhaiResult<Split> { Ok(d.0.split(name)?) });
    }
    engine.register_fn("split", |d: &mut D, name: &str| -> RhaiResult<Split> { Ok(d.0.split(name)?) });
    docs.add(
        a,
        "meta",
        "data.meta(name)",
        "Per-sample facts that are not inputs, e.g. the synthetic set's \"degraded\" mask [N].",
        "data.meta(\"degraded\")",
    );
    engine.register_fn("meta", |d: &mut D, name: &str| -> RhaiResult<ScriptTensor> {
        d.0.meta.iter().find(|(n, _)| n == name).map(|(_, t)| ScriptTensor::new(t.shallow_clone())).ok_or_else(|| {
            let names: Vec<&str> = d.0.meta.iter().map(|(n, _)| n.as_str()).collect();
            Error::arg(format!("meta: no \"{name}\"; this dataset has: [{}]", names.join(", "))).into()
        })
    });
    engine.register_fn("to_string", |d: &mut D| describe(&d.0));
    engine.register_fn("to_debug", |d: &mut D| describe(&d.0));

    docs.add(a, "labels", "split.labels", "The split's labels, [len] int64.", "data.test.labels");
    engine.register_get("labels", |s: &mut Split| -> RhaiResult<ScriptTensor> { Ok(ScriptTensor::new(s.labels()?)) });
    docs.add(
        a,
        "indices",
        "split.indices",
        "The dataset row index of each sample, [len] int64 (per-sample weights are looked up by these).",
        "data.train.indices",
    );
    engine.register_get("indices", |s: &mut Split| ScriptTensor::new(Tensor::from_slice(&s.indices[..])));
    docs.add(a, "inputs", "split.inputs(modality)", "One modality's rows for the whole split, [len, ...].", "data.test.inputs(\"fou\")");
    engine.register_fn("inputs", |s: &mut Split, m: &str| -> RhaiResult<ScriptTensor> { Ok(ScriptTensor::new(s.modality_data(m)?)) });
    docs.add(a, "class_counts", "split.class_counts()", "Samples per class, as an array.", "data.train.class_counts()");
    engine.register_fn("class_counts", |s: &mut Split| -> RhaiResult<Array> {
        Ok(s.class_counts()?.into_iter().map(Dynamic::from_int).collect())
    });
    docs.add(a, "subset", "split.subset(positions | mask)", "The samples at the given positions of this split (ints, array or tensor), or where a bool mask [len] is true (purification keeps w0 >= tau).", "data.train.subset(w0 >= 0.5)");
    engine.register_fn("subset", |s: &mut Split, v: Dynamic| -> RhaiResult<Split> {
        Ok(match positions_from("subset", &v)? {
            Ok(pos) => s.subset_positions(&pos)?,
            Err(mask) => s.subset_mask(&mask)?,
        })
    });
    docs.add(a, "batches", "split.batches(#{ batch, shuffle, seed, drop_last, augment, workers })",
        "Batches for a for-loop, each #{ <modality>: T, labels: T, indices: T }; defaults batch 64, shuffle true, seed 0, drop_last false. The same seed gives the same order. For corpora read from files (cremad, ave, ks): augment (default true on the train split: random crops, flips, random frames; false elsewhere) and workers (decoding threads, default 2; 0 decodes inline).",
        "for b in data.train.batches(#{ batch: 64, seed: epoch }) { print(b.labels.shape); }");
    engine.register_fn("batches", |s: &mut Split, opts: Map| -> RhaiResult<BatchPlan> {
        let o = Options::new("batches", &opts, &["batch", "shuffle", "seed", "drop_last", "augment", "workers"])?;
        let d = BatchOptions::default();
        let batch_size = o.count("batch", d.batch_size)?;
        if batch_size == 0 {
            return Err(Error::arg("batches: batch must be at least 1").into());
        }
        let opts = BatchOptions {
            batch_size,
            shuffle: o.boolean("shuffle", d.shuffle)?,
            seed: o.count("seed", 0)? as u64,
            drop_last: o.boolean("drop_last", d.drop_last)?,
            augment: o.boolean("augment", s.name.starts_with("train"))?,
            workers: o.count("workers", d.workers)?,
            ..d
        };
        Ok(BatchPlan { split: s.clone(), opts })
    });
    docs.add(a, "count", "batches.count", "How many batches one pass yields.", "data.train.batches(#{}).count");
    engine.register_get("count", |p: &mut BatchPlan| -> RhaiResult<INT> { Ok(Batches::new(&p.split, &p.opts)?.batch_count() as INT) });
    engine.register_fn("to_string", |s: &mut Split| format!("Split({}, {} samples of {})", s.name, s.len(), s.dataset.name));
    engine.register_fn("to_debug", |s: &mut Split| format!("Split({}, {} samples of {})", s.name, s.len(), s.dataset.name));
}

fn describe(d: &Dataset) -> String {
    let mods: Vec<String> = d.modalities.iter().map(|m| format!("{} {:?}", m.name, m.shape)).collect();
    let splits: Vec<String> = d.splits.iter().map(|(n, i)| format!("{n} {}", i.len())).collect();
    format!(
        "Dataset({}, {} samples, {} classes; modalities: {}; splits: {})",
        d.name,
        d.len(),
        d.classes(),
        mods.join(", "),
        splits.join(", ")
    )
}

/// `load_wav` and `spectrogram`: the audio front-ends on single clips.
pub fn register_audio(engine: &mut Engine, docs: &mut Docs) {
    use crate::data::audio::{read_wav, FrontEnd, FrontEndKind};
    let a = "data";
    docs.add(
        a,
        "load_wav",
        "load_wav(path)",
        "A WAV file as #{ samples: Tensor [n] float32 mono in [-1, 1], sample_rate }. PCM 8/16/24/32-bit or float; channels are averaged.",
        "let w = load_wav(\"clip.wav\");",
    );
    engine.register_fn("load_wav", |path: &str| -> RhaiResult<Map> {
        let w = read_wav(std::path::Path::new(path))?;
        let mut m = Map::new();
        m.insert("samples".into(), Dynamic::from(ScriptTensor::new(Tensor::from_slice(&w.samples))));
        m.insert("sample_rate".into(), (w.sample_rate as INT).into());
        Ok(m)
    });
    docs.add(a, "spectrogram", "spectrogram(wave, kind, #{ samples, frames, sample_rate })",
        "An audio front-end on a waveform [n]: \"A\" log STFT [257, 188] (tiled to 66,150 samples), \"B\" scipy PSD log z-scored [257, 299] (48,000 samples, sample_rate 16000), \"C\" Kaldi fbank [1024, 128] (16 kHz). Runs on the waveform's device. See docs/data.md.",
        "spectrogram(load_wav(\"clip.wav\").samples, \"C\", #{})");
    engine.register_fn("spectrogram", |wave: ScriptTensor, kind: &str, opts: Map| -> RhaiResult<ScriptTensor> {
        let o = Options::new("spectrogram", &opts, &["samples", "frames", "sample_rate"])?;
        let mut fe = FrontEnd::new(FrontEndKind::parse(kind)?);
        fe.samples = o.count("samples", fe.samples as usize)? as i64;
        fe.frames = o.count("frames", fe.frames as usize)? as i64;
        fe.sample_rate = o.float("sample_rate", fe.sample_rate)?;
        if (fe.kind != FrontEndKind::C && fe.samples < 512) || (fe.kind == FrontEndKind::C && fe.frames < 1) || fe.sample_rate <= 0.0 {
            return Err(Error::arg("spectrogram: samples must be >= 512 (A, B), frames >= 1 (C), sample_rate > 0").into());
        }
        // The Kaldi front-end frames 25 ms windows every 10 ms and spreads 128 mel bins up to
        // Nyquist: below 1 kHz a shift is under 10 samples and the top bins are empty; above
        // 384 kHz a window outgrows any clip. Audio rates lie between.
        if fe.kind == FrontEndKind::C && !(1000.0..=384_000.0).contains(&fe.sample_rate) {
            return Err(Error::arg(format!("spectrogram: kind \"C\" (Kaldi fbank) takes a sample_rate between 1000 and 384000 Hz, got {}; resample the audio (16000 is the public pipelines' rate)", fe.sample_rate)).into());
        }
        Ok(ScriptTensor::new(fe.apply(wave.tensor())?))
    });
}

/// `load_image` and `image_transform`: frames as encoder inputs.
pub fn register_vision(engine: &mut Engine, docs: &mut Docs) {
    use crate::data::vision;
    let a = "data";
    docs.add(a, "load_image", "load_image(path)", "A JPEG or PNG as RGB [3, H, W] float32 in [0, 1].", "load_image(\"frames/00001.jpg\")");
    engine.register_fn("load_image", |path: &str| -> RhaiResult<ScriptTensor> {
        Ok(ScriptTensor::new(vision::load_image(std::path::Path::new(path))?))
    });
    docs.add(a, "image_transform", "image_transform(img, #{ train, size, seed })",
        "The public pipelines' visual transform of a [3, H, W] image: train true = RandomResizedCrop(size) + horizontal flip (seeded), false (default) = Resize((size, size)); then ImageNet normalisation. size defaults to 224.",
        "image_transform(load_image(\"f.jpg\"), #{ train: true, seed: 1 })");
    engine.register_fn("image_transform", |img: ScriptTensor, opts: Map| -> RhaiResult<ScriptTensor> {
        let o = Options::new("image_transform", &opts, &["train", "size", "seed"])?;
        let t = img.tensor();
        if t.dim() != 3 || t.size()[0] != 3 {
            return Err(Error::arg(format!("image_transform: expected an image [3, H, W], got shape {:?}", t.size())).into());
        }
        let size = o.count("size", 224)? as i64;
        if size < 1 {
            return Err(Error::arg("image_transform: size must be at least 1").into());
        }
        let out = if o.boolean("train", false)? {
            vision::train_transform(t, size, &mut crate::rng::Rng::new(o.count("seed", 0)? as u64))?
        } else {
            vision::test_transform(t, size)?
        };
        Ok(ScriptTensor::new(out))
    });
}
