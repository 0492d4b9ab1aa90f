//! Results: run records on disk and the tables a researcher queries them with, as polars
//! DataFrames. No Rhai here; `src/host/frame.rs` is the script face.
//!
//! - `values`: a column of plain values (numbers, strings, bools, nulls) to and from polars
//! - `query`: select / filter / sort / group-by / pivot / join / SQL, expressions written in SQL
//! - `files`: Parquet and CSV, written atomically
//! - `record`: one run's directory (config.json, epochs, fits, samples, final)
//! - `runs`: every run under a folder as one table, skipping (and naming) unreadable ones
//! - `ranking`: rows ranked across several tables (average ranks, Friedman, Nemenyi)
//! - `comparison`: a runs table's rows against a reference row (stats::compare), as a frame and markdown
//! - `tfevents`: TensorBoard's event-file format (TFRecord framing, the few protobufs it reads)
//! - `tensorboard`: a run record as an events file in its folder

pub mod comparison;
pub mod files;
pub mod query;
pub mod ranking;
pub mod record;
pub mod runs;
pub mod tensorboard;
pub mod tfevents;
pub mod values;

pub use polars::prelude::DataFrame;

use crate::error::Error;

/// A polars error as ours, with the context of the call that failed.
pub fn polars_error(op: &str, err: polars::prelude::PolarsError) -> Error {
    // Polars' messages are full sentences, sometimes with a trailing "Resolved plan" dump that
    // means nothing to a script author: keep the first paragraph.
    let msg = err.to_string();
    let first = msg.split("\n\n").next().unwrap_or(&msg).trim().to_string();
    Error::arg(format!("{op}: {first}"))
}
