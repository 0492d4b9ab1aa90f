//! Tables on disk: Parquet (the run records' format) and CSV, read and written through
//! polars. Writes go to a temporary sibling renamed into place, so a run killed mid-write
//! leaves the previous file intact, never a truncated one.

use super::polars_error;
use crate::error::{Error, Result};
use crate::files::write_atomically;
use polars::prelude::*;
use polars_io::csv::read::CsvReadOptions;
use polars_io::csv::write::CsvWriter;
use polars_io::parquet::read::ParquetReader;
use polars_io::parquet::write::ParquetWriter;
use polars_io::{SerReader, SerWriter};
use std::path::Path;

fn open(path: &Path) -> Result<std::fs::File> {
    if !path.is_file() {
        return Err(Error::io(path, "no such file"));
    }
    std::fs::File::open(path).map_err(|e| Error::io(path, e))
}

pub fn read_parquet(path: &Path) -> Result<DataFrame> {
    let file = open(path)?;
    crate::error::guard_reader(path, "Parquet", || {
        ParquetReader::new(file)
            .finish()
            .map_err(|e| Error::io(path, format!("not a readable Parquet file ({})", e.to_string().lines().next().unwrap_or(""))))
    })
}

pub fn read_csv(path: &Path) -> Result<DataFrame> {
    open(path)?;
    crate::error::guard_reader(path, "CSV", || {
        CsvReadOptions::default()
            .with_has_header(true)
            .try_into_reader_with_file_path(Some(path.to_path_buf()))
            .and_then(|r| r.finish())
            .map_err(|e| Error::io(path, format!("not a readable CSV file ({})", e.to_string().lines().next().unwrap_or(""))))
    })
}

fn write(
    path: &Path,
    df: &DataFrame,
    what: &str,
    finish: impl FnOnce(&mut std::fs::File, &mut DataFrame) -> PolarsResult<()>,
) -> Result<()> {
    let mut df = df.clone();
    write_atomically(path, |tmp| {
        let mut f = std::fs::File::create(tmp).map_err(|e| Error::io(path, e))?;
        finish(&mut f, &mut df).map_err(|e| polars_error(what, e))?;
        f.sync_all().map_err(|e| Error::io(path, e))
    })
}

pub fn write_parquet(df: &DataFrame, path: &Path) -> Result<()> {
    write(path, df, "write_parquet", |f, df| ParquetWriter::new(f).finish(df).map(|_| ()))
}

pub fn write_csv(df: &DataFrame, path: &Path) -> Result<()> {
    write(path, df, "write_csv", |f, df| CsvWriter::new(f).finish(df))
}

/// By extension: .parquet or .csv.
pub fn read_table(path: &Path) -> Result<DataFrame> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("parquet") => read_parquet(path),
        Some("csv") => read_csv(path),
        _ => Err(Error::io(path, "tables are .parquet or .csv files")),
    }
}
