//! AVE in the PMR layout: `trainSet.txt`, `valSet.txt`, `testSet.txt` with
//! `Category&YouTubeID&Quality&Start&End` rows; audio and frames cropped to [Start, End].
//! Classes are the sorted categories of all three files. Defaults: front-end B over 10 s at
//! 16 kHz (257 x 1004), four frames.

use super::{open, read_split_file, CorpusOptions, SplitRows};
use crate::data::dataset::Dataset;
use crate::data::split_files::{ave, ave_categories};
use crate::error::Result;

pub const FILES: [(&str, &str); 3] = [("train", "trainSet.txt"), ("val", "valSet.txt"), ("test", "testSet.txt")];

pub fn load(opts: CorpusOptions) -> Result<Dataset> {
    let root = opts.root.clone();
    let texts = FILES.iter().map(|(_, f)| read_split_file(&root, f)).collect::<Result<Vec<_>>>()?;
    let categories = ave_categories(&texts.iter().map(String::as_str).collect::<Vec<_>>());
    let splits = FILES
        .iter()
        .zip(&texts)
        .map(|((split, file), text)| {
            Ok(SplitRows { split: split.to_string(), file: file.to_string(), entries: ave(file, text, &categories)? })
        })
        .collect::<Result<Vec<_>>>()?;
    open("ave", categories, splits, opts)
}
