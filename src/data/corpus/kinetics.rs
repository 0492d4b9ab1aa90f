//! Kinetics-Sounds in the OGM-GE layout: `my_train.txt` and `my_test.txt` with
//! `ytid[_start_end],10,label_idx` rows (the clip is column 0). Class names come from an
//! optional `classes.txt` (one per line, in label order), else they are the label numbers.
//! Defaults: front-end C, three frames.

use super::{open, read_split_file, CorpusOptions, SplitRows};
use crate::data::dataset::Dataset;
use crate::data::split_files::kinetics_sounds;
use crate::error::{Error, Result};

pub const CLASSES: usize = 31;

pub fn load(opts: CorpusOptions, classes: Option<usize>) -> Result<Dataset> {
    let root = opts.root.clone();
    let names: Vec<String> = match std::fs::read_to_string(root.join("classes.txt")) {
        Ok(text) => text.trim_start_matches('\u{feff}').lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect(),
        Err(_) => (0..classes.unwrap_or(CLASSES)).map(|i| i.to_string()).collect(),
    };
    if let Some(n) = classes.filter(|&n| n != names.len()) {
        return Err(Error::io(root.join("classes.txt"), format!("lists {} classes, but classes: {n} was given", names.len())));
    }
    let splits = [("train", "my_train.txt"), ("test", "my_test.txt")]
        .into_iter()
        .map(|(split, file)| {
            let text = read_split_file(&root, file)?;
            Ok(SplitRows { split: split.into(), file: file.into(), entries: kinetics_sounds(file, &text, names.len())? })
        })
        .collect::<Result<Vec<_>>>()?;
    open("ks", names, splits, opts)
}
