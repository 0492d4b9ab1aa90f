//! CREMA-D in the OGM-GE layout: `train.csv` and `test.csv` (no header, CRLF, `clip,EMO`), and
//! in the D&R layout also `val.csv` with `my_train.csv` (train minus val; used for training when
//! both exist, so validation clips never train); `AudioWAV/<clip>.wav` at 16 kHz and
//! `Image-01-FPS/<clip>/NNNNN.jpg`. Defaults: front-end A (OGM-GE), one frame.

use super::{open, read_split_file, CorpusOptions, SplitRows};
use crate::data::dataset::Dataset;
use crate::data::split_files::{cremad, CremadLabels};
use crate::error::Result;

pub fn load(opts: CorpusOptions, labels: CremadLabels) -> Result<Dataset> {
    let root = opts.root.clone();
    let has_val = root.join("val.csv").is_file();
    let train_file = if has_val && root.join("my_train.csv").is_file() { "my_train.csv" } else { "train.csv" };
    let mut files = vec![("train", train_file)];
    if has_val {
        files.push(("val", "val.csv"));
    }
    files.push(("test", "test.csv"));
    let splits = files
        .into_iter()
        .map(|(split, file)| {
            let text = read_split_file(&root, file)?;
            Ok(SplitRows { split: split.into(), file: file.into(), entries: cremad(file, &text, labels)? })
        })
        .collect::<Result<Vec<_>>>()?;
    let names = labels.names().iter().map(|s| s.to_string()).collect();
    open("cremad", names, splits, opts)
}
