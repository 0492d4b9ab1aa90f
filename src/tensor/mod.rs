//! The plain-Rust tensor layer over libtorch: construction from nested values, dtype and device
//! names, PyTorch-style printing, file formats, and the few ops that need checking beyond what
//! libtorch does. Knows nothing of Rhai.

pub mod device;
pub mod dtype;
pub mod format;
pub mod io;
pub mod loss;
pub mod nested;
pub mod npy;
pub mod ops;
pub mod writes;

pub use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};

/// Maps a libtorch result into gapscope's error, naming the operation that failed.
pub fn check<T>(op: &str, r: std::result::Result<T, tch::TchError>) -> Result<T> {
    r.map_err(|e| Error::torch(op, e))
}

/// Calls a tch function that takes `Scalar` arguments. tch passes each scalar as a temporary that
/// is dropped before the call's error is read, and the drop, finding that error pending, panics
/// with it (`arange(5, 0)`, `tensor([1, 2]) ** -1` ended as "internal error" with a C++
/// backtrace). This catches exactly that panic and gives back the libtorch error it carries, so
/// the script sees a normal error at its position; any other panic goes on unwinding.
pub fn scalar_safe<T>(f: impl FnOnce() -> std::result::Result<T, tch::TchError>) -> std::result::Result<T, tch::TchError> {
    const UNWRAP: &str = "called `Result::unwrap()` on an `Err` value: ";
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let text = payload.downcast_ref::<String>().cloned().or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()));
            match text.as_deref().and_then(|t| t.strip_prefix(UNWRAP)) {
                // The Debug form of TchError::Torch("..."): undo its escaping of newlines.
                Some(debug) => Err(tch::TchError::Torch(crate::error::clean_torch_message(&debug.replace("\\n", "\n")))),
                None => std::panic::resume_unwind(payload),
            }
        }
    }
}
