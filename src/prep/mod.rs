//! `gapscope prep cremad|ave|ks --raw DIR --out DIR`: from the raw downloads to the layout the
//! loaders read (`crate::data::corpus`): split files, `Image-01-FPS/<clip>/NNNNN.jpg` at 1 fps,
//! `AudioWAV/<clip>.wav` (mono 16 kHz), and `AudioFeatures-<F>/<clip>.safetensors` per front-end.
//!
//! Every output appears by an atomic rename (a frames folder is filled under a hidden name
//! first), so an interrupted prep never leaves a file a rerun or a loader would trust; a rerun
//! skips what exists. Clips run in parallel; a failing clip is counted with its reason and the
//! rest go on.
//!
//! - `ffmpeg`: the frame and audio extraction commands
//! - `splits`: finding (or for CREMA-D, generating) the split files

pub mod ffmpeg;
pub mod splits;

use crate::data::audio::{read_wav, FrontEnd, FrontEndKind};
use crate::data::corpus::{clip_features, features_folder};
use crate::error::{Error, Result};
use crate::files::write_atomically;
use crate::progress::Progress;
use crate::tensor::io::save_safetensors;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CorpusKind {
    Cremad,
    Ave,
    Ks,
}

impl CorpusKind {
    pub fn parse(name: &str) -> Result<CorpusKind> {
        match name {
            "cremad" | "crema-d" => Ok(CorpusKind::Cremad),
            "ave" => Ok(CorpusKind::Ave),
            "ks" | "kinetics-sounds" => Ok(CorpusKind::Ks),
            other => Err(Error::arg(format!("unknown corpus \"{other}\": use cremad, ave or ks"))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CorpusKind::Cremad => "cremad",
            CorpusKind::Ave => "ave",
            CorpusKind::Ks => "ks",
        }
    }

    /// The front-end the loader uses by default for this corpus, with its lengths.
    pub fn default_front_end(self) -> FrontEnd {
        match self {
            CorpusKind::Cremad => FrontEnd::new(FrontEndKind::A),
            CorpusKind::Ave => FrontEnd { samples: 160_000, ..FrontEnd::new(FrontEndKind::B) },
            CorpusKind::Ks => FrontEnd::new(FrontEndKind::C),
        }
    }

    /// A front-end by letter, with this corpus's lengths (AVE's B covers 10 s).
    pub fn front_end(self, kind: FrontEndKind) -> FrontEnd {
        let d = self.default_front_end();
        if d.kind == kind {
            d
        } else {
            FrontEnd::new(kind)
        }
    }
}

pub struct PrepOptions {
    pub corpus: CorpusKind,
    pub raw: PathBuf,
    pub out: PathBuf,
    /// Where the split files are, when not under `raw`.
    pub splits: Option<PathBuf>,
    pub jobs: usize,
    /// Front-ends whose features to precompute (empty: none).
    pub features: Vec<FrontEndKind>,
    pub quiet: bool,
}

/// What a prep run did.
#[derive(Debug, Default)]
pub struct PrepReport {
    pub clips: usize,
    /// Clips that got at least one new output.
    pub done: usize,
    /// Clips whose outputs all existed already.
    pub skipped: usize,
    /// (clip, reason), sorted by clip.
    pub failed: Vec<(String, String)>,
    /// How the split files were obtained.
    pub splits_note: String,
}

impl std::fmt::Display for PrepReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}", self.splits_note)?;
        write!(f, "{} clips: {} done, {} skipped (already prepared), {} failed", self.clips, self.done, self.skipped, self.failed.len())?;
        for (clip, why) in self.failed.iter().take(10) {
            write!(f, "\n  {clip}: {why}")?;
        }
        if self.failed.len() > 10 {
            write!(f, "\n  ... and {} more (all listed in prep-failures.txt)", self.failed.len() - 10)?;
        }
        Ok(())
    }
}

/// One clip to prepare: its video, its wav when the download has one (CREMA-D), and the span
/// to crop its features to (AVE).
struct Job {
    clip: String,
    video: Option<PathBuf>,
    wav: Option<PathBuf>,
    span: Option<(f64, f64)>,
}

const VIDEO_EXTENSIONS: [&str; 6] = ["flv", "mp4", "mkv", "webm", "avi", "mov"];

/// Every file under `dir` (recursively) with one of `extensions`, by stem.
fn files_by_stem(dir: &Path, extensions: &[&str]) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let (Some(stem), Some(ext)) = (p.file_stem().and_then(|s| s.to_str()), p.extension().and_then(|s| s.to_str())) {
                if extensions.contains(&ext.to_ascii_lowercase().as_str()) {
                    out.entry(stem.to_string()).or_insert(p);
                }
            }
        }
    }
    out
}

pub fn prep(opts: &PrepOptions) -> Result<PrepReport> {
    if !opts.raw.is_dir() {
        return Err(Error::io(&opts.raw, "no such folder: --raw names the folder of the raw download"));
    }
    let ffmpeg = ffmpeg::program();
    ffmpeg::check(&ffmpeg)?;
    std::fs::create_dir_all(&opts.out).map_err(|e| Error::io(&opts.out, e))?;
    let videos = files_by_stem(&opts.raw, &VIDEO_EXTENSIONS);
    let wavs = if opts.corpus == CorpusKind::Cremad { files_by_stem(&opts.raw, &["wav"]) } else { BTreeMap::new() };
    let (entries, splits_note) = splits::prepare(opts, &videos, &wavs)?;
    let jobs: Vec<Job> = entries
        .into_iter()
        .map(|(clip, span)| Job { video: videos.get(&clip).cloned(), wav: wavs.get(&clip).cloned(), clip, span })
        .collect();

    // libtorch's own threads would fight the clip workers for the cores.
    tch::set_num_threads(1);
    let front_ends: Vec<FrontEnd> = opts.features.iter().map(|&k| opts.corpus.front_end(k)).collect();
    let next = AtomicUsize::new(0);
    let progress = Mutex::new(Progress::new(format!("prep {}", opts.corpus.name()), jobs.len(), "clips", opts.quiet));
    let outcomes: Mutex<Vec<(String, std::result::Result<bool, String>)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..opts.jobs.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(i) else { break };
                let outcome = prepare_clip(job, &opts.out, &ffmpeg, &front_ends);
                outcomes.lock().unwrap_or_else(|p| p.into_inner()).push((job.clip.clone(), outcome));
                progress.lock().unwrap_or_else(|p| p.into_inner()).inc(1);
            });
        }
    });
    let mut report = PrepReport { clips: jobs.len(), splits_note, ..PrepReport::default() };
    for (clip, outcome) in outcomes.into_inner().unwrap_or_else(|p| p.into_inner()) {
        match outcome {
            Ok(true) => report.done += 1,
            Ok(false) => report.skipped += 1,
            Err(why) => report.failed.push((clip, why)),
        }
    }
    report.failed.sort();
    let mut p = progress.into_inner().unwrap_or_else(|p| p.into_inner());
    p.set_message(format!("({} failed)", report.failed.len()));
    p.finish();
    let failures = opts.out.join("prep-failures.txt");
    if report.failed.is_empty() {
        let _ = std::fs::remove_file(&failures);
    } else {
        let text: String = report.failed.iter().map(|(c, w)| format!("{c}\t{w}\n")).collect();
        write_atomically(&failures, |tmp| std::fs::write(tmp, text).map_err(|e| Error::io(tmp, e)))?;
    }
    Ok(report)
}

/// Prepares one clip's outputs; Ok(true) when something new was written.
fn prepare_clip(job: &Job, out: &Path, ffmpeg: &Path, front_ends: &[FrontEnd]) -> std::result::Result<bool, String> {
    let mut wrote = false;
    let frames_dir = out.join("Image-01-FPS").join(&job.clip);
    if !frames_dir.is_dir() {
        let video = job.video.as_ref().ok_or("no video file for this clip under --raw")?;
        let partial = out.join("Image-01-FPS").join(format!(".{}.partial", job.clip));
        let _ = std::fs::remove_dir_all(&partial);
        std::fs::create_dir_all(&partial).map_err(|e| format!("{}: {e}", partial.display()))?;
        let extracted = ffmpeg::frames(ffmpeg, video, &partial).and_then(|_| {
            let n = std::fs::read_dir(&partial).map(|d| d.count()).unwrap_or(0);
            if n == 0 {
                Err("ffmpeg wrote no frames (is the video empty?)".to_string())
            } else {
                Ok(())
            }
        });
        if let Err(e) = extracted.and_then(|_| std::fs::rename(&partial, &frames_dir).map_err(|e| e.to_string())) {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(e);
        }
        wrote = true;
    }
    let wav = out.join("AudioWAV").join(format!("{}.wav", job.clip));
    if !wav.is_file() {
        let result = match (&job.wav, &job.video) {
            (Some(raw), _) => {
                write_atomically(&wav, |tmp| std::fs::copy(raw, tmp).map(|_| ()).map_err(|e| Error::io(raw, e))).map_err(|e| e.to_string())
            }
            (None, Some(video)) => write_atomically(&wav, |tmp| {
                ffmpeg::audio(ffmpeg, video, tmp).map_err(|e| Error::io(video, e))?;
                read_wav(tmp).map(|_| ()) // a track ffmpeg could not decode fully is not trusted
            })
            .map_err(|e| e.to_string()),
            (None, None) => Err("no video or wav for this clip under --raw".to_string()),
        };
        result?;
        wrote = true;
    }
    for fe in front_ends {
        let dest = out.join(features_folder(fe.kind)).join(format!("{}.safetensors", job.clip));
        if dest.is_file() {
            continue;
        }
        let spec = clip_features(&wav, fe, job.span).map_err(|e| e.to_string())?;
        write_atomically(&dest, |tmp| save_safetensors(&[("audio".to_string(), spec)], tmp)).map_err(|e| e.to_string())?;
        wrote = true;
    }
    Ok(wrote)
}
