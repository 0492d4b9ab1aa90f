//! Every run under a folder as one table. A run is a directory holding config.json; the
//! folder may nest (runs/table2/prob-seed0). `runs(dir)` gives one row per run: its path,
//! its config flattened to columns (the recipe's settings without a prefix, other nested keys
//! joined with '.'), and its final metrics; `table(dir, "epochs")` stacks one
//! table of every run with a `run` column. Unreadable files (truncated, foreign) are skipped
//! with a warning naming them; the rest loads.

use super::files::read_parquet;
use super::record::CONFIG;
use super::values::{column, frame, Value};
use super::{polars_error, DataFrame};
use crate::error::{Error, Result};
use polars::prelude::*;
use std::path::{Path, PathBuf};

/// Run directories under `root` (depth-first, sorted), at most 4 levels down.
pub fn find(root: &Path) -> Result<Vec<PathBuf>> {
    if !root.is_dir() {
        return Err(Error::io(root, "no such folder of runs"));
    }
    let mut out = Vec::new();
    walk(root, 0, &mut out);
    Ok(out)
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    if dir.join(CONFIG).is_file() {
        out.push(dir.to_path_buf());
        return;
    }
    if depth >= 4 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    dirs.sort();
    for d in dirs {
        walk(&d, depth + 1, out);
    }
}

fn flatten(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, Value)>) {
    use serde_json::Value as J;
    match v {
        J::Object(map) => {
            for (k, x) in map {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, x, out);
            }
        }
        J::Null => out.push((prefix.to_string(), Value::Null)),
        J::Bool(b) => out.push((prefix.to_string(), Value::Bool(*b))),
        J::Number(n) => {
            out.push((prefix.to_string(), n.as_i64().map(Value::Int).unwrap_or_else(|| Value::Float(n.as_f64().unwrap_or(f64::NAN)))))
        }
        J::String(s) => out.push((prefix.to_string(), Value::Str(s.clone()))),
        J::Array(_) => out.push((prefix.to_string(), Value::Str(v.to_string()))),
    }
}

fn relative(root: &Path, dir: &Path) -> String {
    dir.strip_prefix(root).unwrap_or(dir).to_string_lossy().replace('\\', "/")
}

fn read_config(dir: &Path) -> Result<serde_json::Value> {
    let path = dir.join(CONFIG);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::io(&path, format!("not a run config ({e})")))?;
    if !v.is_object() {
        return Err(Error::io(&path, "not a run config (expected a JSON object)"));
    }
    Ok(v)
}

/// Stacks frames whose columns may differ (missing columns become nulls).
fn stack(parts: Vec<DataFrame>) -> Result<DataFrame> {
    if parts.is_empty() {
        return Ok(DataFrame::empty());
    }
    polars::functions::concat_df_diagonal(&parts).map_err(|e| polars_error("runs", e))
}

/// One row per run: `run` (its path under root), `complete` (final.parquet present), the
/// flattened config, and the final metrics. Returns the warnings for skipped runs.
pub fn runs(root: &Path) -> Result<(DataFrame, Vec<String>)> {
    let mut rows = Vec::new();
    let mut warnings = Vec::new();
    for dir in find(root)? {
        let config = match read_config(&dir) {
            Ok(c) => c,
            Err(e) => {
                warnings.push(format!("skipped {e}"));
                continue;
            }
        };
        let mut cells = vec![("run".to_string(), Value::Str(relative(root, &dir)))];
        // The recipe's resolved settings (config.config) become plain columns (gap, rho, ...);
        // where one repeats a top-level key (seed), the first is kept.
        let mut top = config.clone();
        let inner = top.as_object_mut().and_then(|o| o.remove("config"));
        flatten("", &top, &mut cells);
        if let Some(inner) = inner {
            let mut more = Vec::new();
            flatten("", &inner, &mut more);
            for (k, v) in more {
                if !cells.iter().any(|(c, _)| *c == k) {
                    cells.push((k, v));
                }
            }
        }
        let final_path = dir.join("final.parquet");
        let mut row = match frame(cells.iter().map(|(k, v)| (k.clone(), vec![v.clone()])).collect()) {
            Ok(r) => r,
            Err(e) => {
                warnings.push(format!("skipped {}: {e}", dir.join(CONFIG).display()));
                continue;
            }
        };
        let complete = final_path.is_file();
        if complete {
            match read_parquet(&final_path) {
                Ok(fin) if fin.height() == 1 => {
                    let names: Vec<String> = row.get_column_names().iter().map(|s| s.to_string()).collect();
                    let extra: Vec<Column> = fin.columns().iter().filter(|c| !names.contains(&c.name().to_string())).cloned().collect();
                    if let Err(e) = row.hstack_mut(&extra) {
                        warnings.push(format!("skipped {}: {}", final_path.display(), polars_error("runs", e)));
                        continue;
                    }
                }
                Ok(fin) => {
                    warnings.push(format!("skipped {}: expected one row, found {}", final_path.display(), fin.height()));
                    continue;
                }
                Err(e) => {
                    warnings.push(format!("skipped {e}"));
                    continue;
                }
            }
        }
        let flag = column("complete", &[Value::Bool(complete)])?;
        row.with_column(flag).map_err(|e| polars_error("runs", e))?;
        rows.push(row);
    }
    let frame = stack(rows.clone()).map_err(|e| match disagreement(&rows) {
        Some(which) => Error::arg(format!(
            "runs: {which}; records written by different versions of a script? read them apart (runs(dir) on each) or fix that config: {e}"
        )),
        None => e,
    })?;
    Ok((frame, warnings))
}

/// The first column whose type differs between two runs' rows, naming both runs.
fn disagreement(rows: &[DataFrame]) -> Option<String> {
    let run_of = |df: &DataFrame| df.column("run").ok().and_then(|c| c.str().ok()?.get(0).map(str::to_string)).unwrap_or_default();
    let mut seen: Vec<(String, DataType, String)> = Vec::new();
    for df in rows {
        for c in df.columns() {
            let name = c.name().to_string();
            match seen.iter().find(|(n, _, _)| *n == name) {
                Some((_, dtype, first)) if dtype != c.dtype() && *c.dtype() != DataType::Null && *dtype != DataType::Null => {
                    return Some(format!("column \"{name}\" is {dtype} in run {first} but {} in run {}", c.dtype(), run_of(df)));
                }
                Some(_) => {}
                None => seen.push((name, c.dtype().clone(), run_of(df))),
            }
        }
    }
    None
}

/// Every run's `<name>.parquet` stacked, with a leading `run` column. Files are read in
/// parallel, and the run column is a broadcast scalar per file rather than a string per row.
/// The per-run tables a record holds (results/record.rs).
pub const TABLES: [&str; 5] = ["epochs", "fits", "samples", "predictions", "final"];

pub fn table(root: &Path, name: &str) -> Result<(DataFrame, Vec<String>)> {
    use rayon::prelude::*;
    if !TABLES.contains(&name) {
        return Err(Error::arg(format!(
            "runs: a run has no table \"{name}\": use one of {} (or runs(dir) for the configs and final scores)",
            TABLES.map(|t| format!("\"{t}\"")).join(", ")
        )));
    }
    let files: Vec<(String, PathBuf)> =
        find(root)?.into_iter().map(|d| (relative(root, &d), d.join(format!("{name}.parquet")))).filter(|(_, p)| p.is_file()).collect();
    let read: Vec<std::result::Result<DataFrame, String>> = files
        .par_iter()
        .map(|(run, path)| {
            let mut df = read_parquet(path).map_err(|e| format!("skipped {e}"))?;
            let scalar = Scalar::new(DataType::String, AnyValue::StringOwned(run.as_str().into()));
            let col = Column::new_scalar("run".into(), scalar, df.height());
            df.insert_column(0, col).map_err(|e| format!("skipped {}: {}", path.display(), polars_error("runs", e)))?;
            Ok(df)
        })
        .collect();
    let mut parts = Vec::new();
    let mut warnings = Vec::new();
    for r in read {
        match r {
            Ok(df) => parts.push(df),
            Err(w) => warnings.push(w),
        }
    }
    Ok((stack(parts)?, warnings))
}
