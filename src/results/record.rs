//! One run's record, a directory:
//!
//! ```text
//! runs/table2/prob-seed0/config.json      what ran: recipe, resolved config (every default it
//!                                         used), seed, dataset and split, device, gapscope
//!                                         version and git commit, start time
//!                        epochs.parquet   one row per epoch: stage, loss terms, scores
//!                        fits.parquet     one row per mixture refit
//!                        samples.parquet  per sample at each refit: index, gap, z, w0
//!                        predictions.parquet  per test sample: index, label, the fused
//!                                         prediction at the last epoch and at the epoch chosen
//!                                         on validation (pred_last, pred_best)
//!                        final.parquet    one row: last-epoch and best-epoch scores
//!                        events.out.tfevents.gapscope   the same for TensorBoard (`tensorboard`)
//! ```
//!
//! Tables may be rewritten after every epoch; each write is atomic. `csv` adds a .csv copy
//! beside each .parquet.

use super::files::{write_csv, write_parquet};
use super::DataFrame;
use crate::error::{Error, Result};
use crate::files::write_atomically;
use std::path::{Path, PathBuf};

pub const CONFIG: &str = "config.json";

/// The version and commit this binary was built from.
pub fn provenance() -> (String, String) {
    (env!("CARGO_PKG_VERSION").to_string(), option_env!("GAPSCOPE_GIT_COMMIT").unwrap_or("unknown").to_string())
}

pub struct RunRecord {
    pub dir: PathBuf,
    pub csv: bool,
}

impl RunRecord {
    pub fn open(dir: &Path, csv: bool) -> Result<RunRecord> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        Ok(RunRecord { dir: dir.to_path_buf(), csv })
    }

    /// Writes config.json: `config` plus version, commit and the time (Unix seconds).
    pub fn write_config(&self, mut config: serde_json::Value) -> Result<()> {
        let (version, commit) = provenance();
        if let Some(obj) = config.as_object_mut() {
            obj.insert("gapscope_version".into(), version.into());
            obj.insert("git_commit".into(), commit.into());
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
            obj.insert("written_unix".into(), now.into());
        }
        let path = self.dir.join(CONFIG);
        let text = serde_json::to_string_pretty(&config).map_err(|e| Error::io(&path, e))?;
        write_atomically(&path, |tmp| std::fs::write(tmp, &text).map_err(|e| Error::io(&path, e)))
    }

    /// Writes `<name>.parquet` (and `<name>.csv` with csv on).
    pub fn write_table(&self, name: &str, df: &DataFrame) -> Result<()> {
        if name.is_empty() || name.contains(['/', '\\', '.']) {
            return Err(Error::arg(format!("run table names are plain words like \"epochs\", got \"{name}\"")));
        }
        write_parquet(df, &self.dir.join(format!("{name}.parquet")))?;
        if self.csv {
            write_csv(df, &self.dir.join(format!("{name}.csv")))?;
        }
        Ok(())
    }
}
