//! The plain-Rust tensor layer over libtorch: construction from nested values, dtype and device
//! names, PyTorch-style printing, file formats, and the few ops that need checking beyond what
//! libtorch does. Knows nothing of Rhai.

pub mod device;
pub mod dtype;
pub mod format;
pub mod io;
pub mod nested;
pub mod npy;
pub mod ops;

pub use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};

/// Maps a libtorch result into gapscope's error, naming the operation that failed.
pub fn check<T>(op: &str, r: std::result::Result<T, tch::TchError>) -> Result<T> {
    r.map_err(|e| Error::torch(op, e))
}
