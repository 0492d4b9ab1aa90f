//! A run record as a TensorBoard events file, beside its tables in the run's folder. Written from
//! the record's own files (config.json, epochs, fits, samples), so the events always say what
//! the tables say, and records made before this existed convert the same way
//! (`gapscope tensorboard DIR`). Rewritten whole, atomically, each time the record is updated;
//! the content is a function of the tables, so each rewrite extends the last one.
//!
//! Tags, per epoch (the step): `train/loss` and every loss term (`train/ce_fused`, ...), the
//! method's diagnostics (`method/coef_first`, ...), `val/acc`, `test/acc`, `test/f1`,
//! `test/acc_<modality>`, ...; per refit: `mixture/weight_0`, `mixture/mean_0`, ... and the
//! gap histogram `mixture/gap`; and the configuration as text (`config`).

use super::files::read_parquet;
use super::tfevents::{EventFile, Histogram, Value};
use super::DataFrame;
use crate::error::{Error, Result};
use crate::files::write_atomically;
use polars::prelude::*;
use std::path::{Path, PathBuf};

/// The events file's name: TensorBoard reads files whose name holds "tfevents".
pub const EVENTS_FILE: &str = "events.out.tfevents.gapscope";

/// Buckets of the gap histograms.
const GAP_BINS: usize = 30;

/// Where a column of the epochs table goes in TensorBoard, or None for bookkeeping columns.
pub fn epoch_tag(column: &str, is_diagnostic: &dyn Fn(&str) -> bool) -> Option<String> {
    if matches!(column, "epoch" | "stage") {
        return None;
    }
    for split in ["test", "val", "train"] {
        if let Some(rest) = column.strip_prefix(split).and_then(|r| r.strip_prefix('_')) {
            if rest.starts_with("acc") || rest.starts_with("f1") {
                return Some(format!("{split}/{rest}"));
            }
        }
    }
    Some(if is_diagnostic(column) { format!("method/{column}") } else { format!("train/{column}") })
}

fn numbers(df: &DataFrame, name: &str) -> Option<Vec<Option<f64>>> {
    let c = df.column(name).ok()?;
    if !c.dtype().is_primitive_numeric() && !c.dtype().is_bool() {
        return None;
    }
    let f = c.cast(&DataType::Float64).ok()?;
    Some(f.f64().ok()?.iter().collect())
}

/// Each row's step: its epoch, or its row number in a table without a numeric epoch column (a
/// table a script saved under one of the record's names).
fn epochs_of(df: &DataFrame) -> Vec<i64> {
    match numbers(df, "epoch") {
        Some(e) => e.into_iter().enumerate().map(|(i, x)| x.map_or(i as i64, |v| v as i64)).collect(),
        None => (0..df.height() as i64).collect(),
    }
}

fn read_optional(path: &Path) -> Result<Option<DataFrame>> {
    if path.is_file() {
        read_parquet(path).map(Some)
    } else {
        Ok(None)
    }
}

/// The events of one run folder, from its record files.
pub fn events_of(dir: &Path, is_diagnostic: &dyn Fn(&str) -> bool) -> Result<EventFile> {
    let config_path = dir.join(super::record::CONFIG);
    let config: Option<serde_json::Value> = match std::fs::read_to_string(&config_path) {
        Ok(t) => Some(serde_json::from_str(&t).map_err(|e| Error::io(&config_path, format!("not JSON ({e})")))?),
        Err(_) => None,
    };
    let wall = config.as_ref().and_then(|c| c.get("written_unix")).and_then(|v| v.as_f64()).unwrap_or(0.0);
    let mut file = EventFile::new(wall);
    if let Some(c) = &config {
        let text = serde_json::to_string_pretty(c).unwrap_or_default();
        // TensorBoard renders text as Markdown: indented, it shows as code.
        let indented: String = text.lines().map(|l| format!("    {l}\n")).collect();
        file.add(wall, 0, &[("config".to_string(), Value::Text(indented))]);
    }
    if let Some(epochs) = read_optional(&dir.join("epochs.parquet"))? {
        let steps = epochs_of(&epochs);
        let columns: Vec<(String, Vec<Option<f64>>)> =
            epochs.get_column_names().iter().filter_map(|n| Some((epoch_tag(n, is_diagnostic)?, numbers(&epochs, n)?))).collect();
        for (row, &step) in steps.iter().enumerate() {
            let values: Vec<(String, Value)> =
                columns.iter().filter_map(|(tag, vs)| vs[row].map(|v| (tag.clone(), Value::Scalar(v as f32)))).collect();
            file.add(wall, step, &values);
        }
    }
    let samples = read_optional(&dir.join("samples.parquet"))?;
    let sample_steps = samples.as_ref().filter(|s| numbers(s, "epoch").is_some()).map(epochs_of);
    let gaps = samples.as_ref().and_then(|s| numbers(s, "gap"));
    if let Some(fits) = read_optional(&dir.join("fits.parquet"))? {
        let steps = epochs_of(&fits);
        let columns: Vec<(String, Vec<Option<f64>>)> = fits
            .get_column_names()
            .iter()
            .filter(|n| n.as_str() != "epoch")
            .filter_map(|n| Some((format!("mixture/{n}"), numbers(&fits, n)?)))
            .collect();
        for (row, &step) in steps.iter().enumerate() {
            let mut values: Vec<(String, Value)> =
                columns.iter().filter_map(|(tag, vs)| vs[row].map(|v| (tag.clone(), Value::Scalar(v as f32)))).collect();
            if let (Some(ss), Some(gs)) = (&sample_steps, &gaps) {
                let at: Vec<f64> = ss.iter().zip(gs).filter(|(s, _)| **s == step).filter_map(|(_, g)| *g).collect();
                if !at.is_empty() {
                    values.push(("mixture/gap".to_string(), Value::Histogram(Histogram::of(&at, GAP_BINS))));
                }
            }
            file.add(wall, step, &values);
        }
    }
    Ok(file)
}

/// Writes (or rewrites) the run folder's events file from its record.
pub fn write_events(dir: &Path, is_diagnostic: &dyn Fn(&str) -> bool) -> Result<PathBuf> {
    let file = events_of(dir, is_diagnostic)?;
    let path = dir.join(EVENTS_FILE);
    write_atomically(&path, |tmp| std::fs::write(tmp, file.bytes()).map_err(|e| Error::io(&path, e)))?;
    Ok(path)
}

/// Every run folder under `root` (a folder with config.json or epochs.parquet), `root` included.
pub fn run_folders(root: &Path) -> Result<Vec<PathBuf>> {
    if !root.is_dir() {
        return Err(Error::io(root, "no such folder"));
    }
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        if d.join(super::record::CONFIG).is_file() || d.join("epochs.parquet").is_file() {
            out.push(d.clone());
        }
        let entries = std::fs::read_dir(&d).map_err(|e| Error::io(&d, e))?;
        let mut subs: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir() && !p.is_symlink()).collect();
        subs.sort();
        stack.extend(subs.into_iter().rev());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_map_to_tags() {
        let diag = |n: &str| n == "coef_first";
        assert_eq!(epoch_tag("test_acc", &diag).as_deref(), Some("test/acc"));
        assert_eq!(epoch_tag("test_acc_audio", &diag).as_deref(), Some("test/acc_audio"));
        assert_eq!(epoch_tag("test_f1", &diag).as_deref(), Some("test/f1"));
        assert_eq!(epoch_tag("val_acc_first", &diag).as_deref(), Some("val/acc_first"));
        assert_eq!(epoch_tag("loss", &diag).as_deref(), Some("train/loss"));
        assert_eq!(epoch_tag("ce_fused", &diag).as_deref(), Some("train/ce_fused"));
        assert_eq!(epoch_tag("coef_first", &diag).as_deref(), Some("method/coef_first"));
        assert_eq!(epoch_tag("epoch", &diag), None);
        assert_eq!(epoch_tag("stage", &diag), None);
    }
}
