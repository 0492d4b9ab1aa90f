//! The split files prep puts beside the prepared clips. AVE and Kinetics-Sounds ship theirs
//! (found under --raw or --splits); CREMA-D's raw download has none, so unless OGM-GE's
//! train.csv / test.csv are given, prep writes a seeded stratified 90/10 split in their format.

use super::{CorpusKind, PrepOptions};
use crate::data::split_files::{self, CremadLabels, CREMAD_OGM};
use crate::data::stratify::stratified;
use crate::error::{Error, Result};
use crate::files::write_atomically;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A split file by name: under `--splits` when given, else anywhere under `--raw`.
fn find(opts: &PrepOptions, name: &str) -> Option<PathBuf> {
    let root = opts.splits.as_ref().unwrap_or(&opts.raw);
    let direct = root.join(name);
    if direct.is_file() {
        return Some(direct);
    }
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == name) {
                return Some(p);
            }
        }
    }
    None
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io(path, e))
}

fn write(out: &Path, name: &str, text: &str) -> Result<()> {
    let dest = out.join(name);
    if std::fs::read_to_string(&dest).is_ok_and(|t| t == text) {
        return Ok(());
    }
    write_atomically(&dest, |tmp| std::fs::write(tmp, text).map_err(|e| Error::io(tmp, e)))
}

/// Requires and copies the named split files; returns their texts.
fn copy_required(opts: &PrepOptions, names: &[&str], hint: &str) -> Result<Vec<(String, String)>> {
    names
        .iter()
        .map(|name| {
            let path = find(opts, name).ok_or_else(|| {
                let root = opts.splits.as_ref().unwrap_or(&opts.raw);
                Error::io(root, format!("no {name} here or below: {hint}; pass the folder holding them with --splits"))
            })?;
            let text = read(&path)?;
            write(&opts.out, name, &text)?;
            Ok((name.to_string(), text))
        })
        .collect()
}

/// The clips to prepare (each once, with its AVE span) and a line on where the splits came from.
pub fn prepare(
    opts: &PrepOptions,
    videos: &BTreeMap<String, PathBuf>,
    wavs: &BTreeMap<String, PathBuf>,
) -> Result<(Vec<(String, Option<(f64, f64)>)>, String)> {
    let mut clips: BTreeMap<String, Option<(f64, f64)>> = BTreeMap::new();
    let note = match opts.corpus {
        CorpusKind::Cremad => {
            if let (Some(_), Some(_)) = (find(opts, "train.csv"), find(opts, "test.csv")) {
                let mut names = vec!["train.csv", "test.csv"];
                names.extend(["val.csv", "my_train.csv"].into_iter().filter(|n| find(opts, n).is_some()));
                for (name, text) in copy_required(opts, &names, "")? {
                    for e in split_files::cremad(&name, &text, CremadLabels::Ogm)? {
                        clips.insert(e.clip, None);
                    }
                }
                format!("splits: copied {}", names.join(", "))
            } else {
                generate_cremad(opts, videos, wavs, &mut clips)?
            }
        }
        CorpusKind::Ave => {
            let files = copy_required(
                opts,
                &["trainSet.txt", "valSet.txt", "testSet.txt"],
                "AVE's split files come with the AVE download (AVE_Dataset/)",
            )?;
            let categories = split_files::ave_categories(&files.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>());
            for (name, text) in &files {
                for e in split_files::ave(name, text, &categories)? {
                    clips.entry(e.clip).or_insert(e.span);
                }
            }
            "splits: copied trainSet.txt, valSet.txt, testSet.txt".into()
        }
        CorpusKind::Ks => {
            let classes = match find(opts, "classes.txt") {
                Some(p) => {
                    let text = read(&p)?;
                    write(&opts.out, "classes.txt", &text)?;
                    text.lines().filter(|l| !l.trim().is_empty()).count()
                }
                None => crate::data::corpus::kinetics::CLASSES,
            };
            let files = copy_required(
                opts,
                &["my_train.txt", "my_test.txt"],
                "Kinetics-Sounds' split files come with OGM-GE's repository (data/KineticsSounds)",
            )?;
            for (name, text) in &files {
                for e in split_files::kinetics_sounds(name, text, classes)? {
                    clips.insert(e.clip, None);
                }
            }
            "splits: copied my_train.txt, my_test.txt".into()
        }
    };
    Ok((clips.into_iter().collect(), note))
}

/// CREMA-D without split files: every clip found (by wav or video), its emotion from its name
/// (`1001_DFA_ANG_XX`), cut 90/10 per class with seed 0, written as OGM-GE's train.csv / test.csv.
fn generate_cremad(
    opts: &PrepOptions,
    videos: &BTreeMap<String, PathBuf>,
    wavs: &BTreeMap<String, PathBuf>,
    clips: &mut BTreeMap<String, Option<(f64, f64)>>,
) -> Result<String> {
    let mut named: Vec<(String, i64)> = Vec::new();
    let stems: std::collections::BTreeSet<&String> = videos.keys().chain(wavs.keys()).collect();
    for clip in stems {
        let emotion = clip.split('_').nth(2).unwrap_or("");
        match CREMAD_OGM.iter().position(|e| *e == emotion) {
            Some(label) => named.push((clip.clone(), label as i64)),
            None => eprintln!("warning: prep cremad: {clip} is not named like a CREMA-D clip (ACTOR_SENTENCE_EMOTION_LEVEL); left out"),
        }
    }
    if named.is_empty() {
        return Err(Error::io(&opts.raw, "holds no CREMA-D clips (AudioWAV/*.wav or VideoFlash/*.flv)"));
    }
    let labels: Vec<i64> = named.iter().map(|(_, l)| *l).collect();
    let [train, _, test] = stratified(&labels, CREMAD_OGM.len(), 0.0, 0.1, 0)?;
    if test.is_empty() {
        return Err(Error::arg("prep cremad: too few clips to carve a test split; pass OGM-GE's train.csv and test.csv with --splits"));
    }
    let rows = |idx: &[i64]| -> String {
        idx.iter().map(|&i| format!("{},{}\r\n", named[i as usize].0, CREMAD_OGM[named[i as usize].1 as usize])).collect()
    };
    write(&opts.out, "train.csv", &rows(&train))?;
    write(&opts.out, "test.csv", &rows(&test))?;
    for (clip, _) in &named {
        clips.insert(clip.clone(), None);
    }
    Ok(format!(
        "splits: none found, so wrote a seeded stratified 90/10 split ({} train, {} test; not OGM-GE's: pass --splits with their train.csv and test.csv to use theirs)",
        train.len(),
        test.len()
    ))
}
