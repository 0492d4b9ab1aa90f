//! Audio-visual corpora read from disk in the public pipelines' layouts (data-formats.md):
//! CREMA-D, AVE and Kinetics-Sounds. Opening a corpus reads its split files and checks that
//! every clip has its audio and frames (an error naming the split file and line, or with
//! skip_corrupt the clip is dropped and counted); samples are then decoded on demand by the
//! batch workers: the wav (resampled to the front-end's rate, cropped to the AVE span) through
//! the audio front-end, or the features `gapscope prep` precomputed, and T frames through the
//! train or test transform.
//!
//! - `cremad`, `ave`, `kinetics`: where each layout keeps its split files, and its defaults

pub mod ave;
pub mod cremad;
pub mod kinetics;

use super::audio::{read_wav, resample, FrontEnd, FrontEndKind};
use super::dataset::{Dataset, Modality, SampleSource};
use super::frames::{self, FrameChoice};
use super::split_files::Entry;
use super::vision;
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::tensor::io::load_safetensors;
use crate::tensor::{check, Kind, Tensor};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a corpus's files are and how its samples are made.
#[derive(Clone, Debug)]
pub struct CorpusOptions {
    pub root: PathBuf,
    pub front_end: FrontEnd,
    /// Frames per sample (T).
    pub frames: usize,
    /// Frame side after the transform (224 in the public code).
    pub size: i64,
    pub frames_train: FrameChoice,
    pub frames_test: FrameChoice,
    /// Relative to root: the wavs, the frame folders, and prep's precomputed features.
    pub audio_dir: String,
    pub frames_dir: String,
    pub skip_corrupt: bool,
}

impl CorpusOptions {
    /// The defaults shared by every layout; each corpus sets its own front-end and T.
    pub fn new(root: PathBuf, front_end: FrontEnd, frames: usize) -> CorpusOptions {
        CorpusOptions {
            root,
            front_end,
            frames,
            size: 224,
            frames_train: FrameChoice::RandomPerSegment,
            frames_test: FrameChoice::Evenly,
            audio_dir: "AudioWAV".into(),
            frames_dir: "Image-01-FPS".into(),
            skip_corrupt: false,
        }
    }

    /// The folder `gapscope prep` writes this front-end's features to.
    pub fn features_dir(&self) -> PathBuf {
        self.root.join(features_folder(self.front_end.kind))
    }
}

/// `AudioFeatures-A` etc.: one safetensors file per clip holding "audio" [1, F, T].
pub fn features_folder(kind: FrontEndKind) -> String {
    format!("AudioFeatures-{kind:?}")
}

/// One clip: its label, where its audio is, its frames in order, and its AVE span.
struct Clip {
    audio: AudioFile,
    frames: Vec<PathBuf>,
    span: Option<(f64, f64)>,
}

enum AudioFile {
    Wav(PathBuf),
    Features(PathBuf),
}

/// A corpus's samples: decoded from files on demand, shared with the batch workers.
pub struct Corpus {
    clips: Vec<Clip>,
    opts: CorpusOptions,
    audio_shape: Vec<i64>,
}

/// One split file's rows, named for error messages.
pub struct SplitRows {
    pub split: String,
    pub file: String,
    pub entries: Vec<Entry>,
}

/// The spectrogram shape a front-end gives, with the leading channel: A [1, 257, 188],
/// B [1, 257, 1 + (samples - 512) / 159], C [1, frames, 128].
pub fn audio_shape(fe: &FrontEnd) -> Vec<i64> {
    match fe.kind {
        FrontEndKind::A => vec![1, 257, 1 + fe.samples / 353],
        FrontEndKind::B => vec![1, 257, 1 + (fe.samples - 512) / 159],
        FrontEndKind::C => vec![1, fe.frames, 128],
    }
}

/// Builds the dataset: checks every clip's files (in parallel with nothing: a stat and a
/// directory listing per clip), numbers the rows split by split, and attaches the decoder.
pub fn open(name: &str, class_names: Vec<String>, splits: Vec<SplitRows>, opts: CorpusOptions) -> Result<Dataset> {
    let audio_root = opts.root.join(&opts.audio_dir);
    let frames_root = opts.root.join(&opts.frames_dir);
    let features_root = opts.features_dir();
    let have_features = features_root.is_dir();
    if !have_features && !audio_root.is_dir() {
        return Err(Error::io(
            &audio_root,
            format!("no such folder (nor {}); give audio_dir, or run `gapscope prep {name}`", features_root.display()),
        ));
    }
    if !frames_root.is_dir() {
        return Err(Error::io(&frames_root, format!("no such folder; give frames_dir, or run `gapscope prep {name}`")));
    }
    let (mut clips, mut labels, mut ids, mut split_rows) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut skipped, mut first_skip) = (0usize, None);
    for rows in splits {
        if rows.entries.is_empty() {
            return Err(Error::io(opts.root.join(&rows.file), "holds no rows: the split is empty"));
        }
        let mut indices = Vec::with_capacity(rows.entries.len());
        for e in rows.entries {
            match locate(&e, &audio_root, &frames_root, have_features.then_some(&features_root)) {
                Ok(clip) => {
                    indices.push(clips.len() as i64);
                    clips.push(clip);
                    labels.push(e.label as i64);
                    ids.push(e.clip);
                }
                Err(why) => {
                    let msg = format!("{}:{}: clip {}: {why}", opts.root.join(&rows.file).display(), e.line, e.clip);
                    if !opts.skip_corrupt {
                        return Err(Error::arg(format!("{msg} (skip_corrupt: true skips such clips)")));
                    }
                    skipped += 1;
                    first_skip.get_or_insert(msg);
                }
            }
        }
        if indices.is_empty() {
            return Err(Error::arg(format!("{name}: every clip of {} was skipped; first: {}", rows.file, first_skip.unwrap_or_default())));
        }
        split_rows.push((rows.split, indices));
    }
    if skipped > 0 {
        eprintln!(
            "warning: {name}: skipped {skipped} clip(s) with missing files (skip_corrupt); first: {}",
            first_skip.unwrap_or_default()
        );
    }
    let audio_shape = audio_shape(&opts.front_end);
    let visual_shape = vec![3, opts.frames as i64, opts.size, opts.size];
    let corpus = Corpus { clips, opts, audio_shape: audio_shape.clone() };
    let ds = Dataset {
        name: name.to_string(),
        modalities: vec![Modality::lazy("audio", audio_shape), Modality::lazy("visual", visual_shape)],
        labels: Tensor::from_slice(&labels),
        class_names,
        ids: Some(ids),
        splits: split_rows,
        meta: Vec::new(),
        source: Some(Arc::new(corpus)),
    };
    ds.validate()?;
    Ok(ds)
}

/// A clip's files, or why it cannot be used.
fn locate(e: &Entry, audio_root: &Path, frames_root: &Path, features_root: Option<&PathBuf>) -> std::result::Result<Clip, String> {
    let features = features_root.map(|d| d.join(format!("{}.safetensors", e.clip))).filter(|p| p.is_file());
    let audio = match features {
        Some(p) => AudioFile::Features(p),
        None => {
            let wav = audio_root.join(format!("{}.wav", e.clip));
            if !wav.is_file() {
                return Err(format!("no audio: {} does not exist", wav.display()));
            }
            AudioFile::Wav(wav)
        }
    };
    let frames = frames::list(&frames_root.join(&e.clip)).map_err(|err| err.to_string())?;
    Ok(Clip { audio, frames, span: e.span })
}

impl Corpus {
    fn audio(&self, clip: &Clip) -> Result<Tensor> {
        let out = match &clip.audio {
            AudioFile::Features(path) => {
                let t = load_safetensors(path)?.into_iter().find(|(n, _)| n == "audio").map(|(_, t)| t);
                t.ok_or_else(|| Error::io(path, "holds no tensor \"audio\""))?
            }
            AudioFile::Wav(path) => clip_features(path, &self.opts.front_end, clip.span)?,
        };
        if out.size() != self.audio_shape {
            let at = match &clip.audio {
                AudioFile::Features(p) | AudioFile::Wav(p) => p.clone(),
            };
            return Err(Error::io(
                at,
                format!(
                    "audio features have shape {:?}, expected {:?} (computed with other settings? rerun `gapscope prep`)",
                    out.size(),
                    self.audio_shape
                ),
            ));
        }
        check("audio", out.f_to_kind(Kind::Float))
    }

    fn visual(&self, clip: &Clip, augment: bool, rng: &mut Rng) -> Result<Tensor> {
        // At 1 fps the frame at position p shows second p; an AVE span keeps its own seconds.
        let available: Vec<&PathBuf> = match clip.span {
            Some((start, end)) => {
                let (lo, hi) = (start.floor() as usize, (end.ceil() as usize).min(clip.frames.len()));
                clip.frames.get(lo..hi.max(lo)).map(|s| s.iter().collect()).unwrap_or_default()
            }
            None => clip.frames.iter().collect(),
        };
        if available.is_empty() {
            let dir = clip.frames.first().and_then(|p| p.parent()).map(Path::to_path_buf).unwrap_or_default();
            return Err(Error::io(dir, format!("no frames inside the span {:?}", clip.span)));
        }
        let choice = if augment { self.opts.frames_train } else { self.opts.frames_test };
        let picked = frames::choose(available.len(), self.opts.frames, choice, rng)?;
        let size = self.opts.size;
        let frames = picked
            .into_iter()
            .map(|i| {
                let img = vision::load_image(available[i])?;
                if augment {
                    vision::train_transform(&img, size, rng)
                } else {
                    vision::test_transform(&img, size)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        check("visual", Tensor::f_stack(&frames, 1)) // [3, T, H, W]
    }
}

impl SampleSource for Corpus {
    fn decode(&self, row: usize, augment: bool, rng: &mut Rng) -> Result<Vec<Tensor>> {
        let clip = self.clips.get(row).ok_or_else(|| Error::arg(format!("corpus: no row {row}")))?;
        Ok(vec![self.audio(clip)?, self.visual(clip, augment, rng)?])
    }

    fn skip_corrupt(&self) -> bool {
        self.opts.skip_corrupt
    }
}

/// A clip's front-end features [1, F, T] from its wav: cropped to the span (AVE), resampled to
/// the front-end's rate (CREMA-D's 16 kHz into A's 22,050 Hz, as librosa.load(sr=22050) does).
pub fn clip_features(path: &Path, fe: &FrontEnd, span: Option<(f64, f64)>) -> Result<Tensor> {
    let wav = read_wav(path)?;
    let mut x = Tensor::from_slice(&wav.samples);
    if let Some((start, end)) = span {
        let n = wav.samples.len() as i64;
        let (a, b) = (((start * wav.sample_rate as f64) as i64).min(n), ((end * wav.sample_rate as f64) as i64).min(n));
        if b <= a {
            return Err(Error::io(
                path,
                format!("the span [{start}, {end}] s lies beyond the clip's {:.2} s", n as f64 / wav.sample_rate as f64),
            ));
        }
        x = check("audio", x.f_narrow(0, a, b - a))?;
    }
    let rate = fe.sample_rate.round() as u32;
    if wav.sample_rate != rate {
        x = resample(&x, wav.sample_rate, rate)?;
    }
    if x.numel() == 0 {
        return Err(Error::io(path, "holds no samples"));
    }
    check("audio", fe.apply(&x)?.f_unsqueeze(0))
}

/// Reads a split file as text (an error naming it when it is missing).
pub fn read_split_file(root: &Path, file: &str) -> Result<String> {
    let path = root.join(file);
    std::fs::read_to_string(&path)
        .map_err(|e| Error::io(&path, format!("{e} (the split file is missing: is this the dataset's root folder?)")))
}
