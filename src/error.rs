//! The one error type of gapscope's core, and its translation into a Rhai error.
//!
//! Core functions return `Result<T>`; the host layer converts with `?` (through the
//! `From<Error> for Box<EvalAltResult>` below) and Rhai attaches the script position.

use thiserror::Error;

/// Everything that can go wrong in gapscope's core.
#[derive(Debug, Error)]
pub enum Error {
    /// libtorch refused an operation (shape mismatch, bad dim, out of memory, ...).
    #[error("{op}: {msg}")]
    Torch { op: String, msg: String },
    /// A value a user passed is outside what the function accepts.
    #[error("{0}")]
    InvalidArgument(String),
    /// A file could not be read or written.
    #[error("{path}: {msg}")]
    Io { path: String, msg: String },
    /// A script error raised inside the core, by a scripted method's hook the trainer called: it
    /// passes through the core unchanged, so the script reports it at the hook's own line. The
    /// Rhai error itself is not `Send` (and errors cross threads), so it waits on its thread under
    /// `id` until the host converts it back (`From<Error>` below).
    #[error("{message}")]
    Script { message: String, id: u64 },
}

thread_local! {
    /// Script errors in flight through the core, newest last (a few at most: each is taken back
    /// as soon as its call returns to the script).
    static IN_FLIGHT: std::cell::RefCell<Vec<(u64, Box<rhai::EvalAltResult>)>> = const { std::cell::RefCell::new(Vec::new()) };
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An invalid-argument error from anything printable.
    pub fn arg(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }

    /// Wraps a libtorch error, keeping only the human part of its message: libtorch appends a
    /// C++ backtrace ("Exception raised from ...") that means nothing to a script author.
    pub fn torch(op: &str, err: tch::TchError) -> Self {
        Error::Torch { op: op.to_string(), msg: clean_torch_message(&err.to_string()) }
    }

    pub fn io(path: impl AsRef<std::path::Path>, err: impl std::fmt::Display) -> Self {
        Error::Io { path: path.as_ref().display().to_string(), msg: err.to_string() }
    }

    /// A script error to carry through the core (see `Error::Script`).
    pub fn script(err: Box<rhai::EvalAltResult>) -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let message = err.to_string();
        IN_FLIGHT.with(|f| {
            let mut f = f.borrow_mut();
            // One that was never converted back (dropped by the core) must not pile up.
            if f.len() >= 16 {
                drop(f.remove(0));
            }
            f.push((id, err));
        });
        Error::Script { message, id }
    }

    /// The error with where it happened in front ("epoch 3, step 7: ..."). A script error keeps
    /// its own position and context (a hook's error already names its epoch and step).
    pub fn context(self, place: impl std::fmt::Display) -> Self {
        match self {
            e @ Error::Script { .. } => e,
            other => Error::arg(format!("{place}: {other}")),
        }
    }
}

/// A libtorch error met inside an equation (`?` on a tch call in `train` or `gap`): the message
/// without its C++ backtrace. The trainer adds where it happened (epoch, step) with `context`;
/// the host's tensor functions name their operation with `tensor::check` instead.
impl From<tch::TchError> for Error {
    fn from(err: tch::TchError) -> Self {
        Error::torch("libtorch", err)
    }
}

/// Strips libtorch's C++ backtrace and "Torch(...)" wrapper from an error message.
pub fn clean_torch_message(raw: &str) -> String {
    let mut msg = raw.trim();
    let mut wrapped = false;
    for prefix in ["Internal torch error: ", "Torch(\"", "Torch("] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            wrapped |= prefix.starts_with("Torch(");
            msg = rest;
        }
    }
    let cut = ["\nException raised from", "Exception raised from", "\nframe #0"]
        .iter()
        .filter_map(|marker| msg.find(marker))
        .min()
        .unwrap_or(msg.len());
    let mut msg = msg[..cut].trim();
    if wrapped {
        msg = msg.trim_end_matches("\")").trim_end_matches(')');
    }
    let msg = msg.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ");
    if msg.is_empty() {
        raw.lines().next().unwrap_or("libtorch error").to_string()
    } else {
        msg
    }
}

impl From<Error> for Box<rhai::EvalAltResult> {
    fn from(err: Error) -> Self {
        if let Error::Script { message, id } = err {
            let found = IN_FLIGHT.with(|f| {
                let mut f = f.borrow_mut();
                f.iter().position(|(i, _)| *i == id).map(|at| f.remove(at).1)
            });
            return found.unwrap_or_else(|| Box::new(rhai::EvalAltResult::ErrorRuntime(message.into(), rhai::Position::NONE)));
        }
        // Position::NONE: Rhai fills in the call site of the native function.
        Box::new(rhai::EvalAltResult::ErrorRuntime(err.to_string().into(), rhai::Position::NONE))
    }
}

/// Runs a third-party decoder (polars' Parquet and CSV readers, the image crate, safetensors)
/// that may panic on damaged bytes instead of returning an error (polars' Parquet metadata
/// reader does): the panic becomes an error naming the file, so a corrupt file found by a sweep
/// is one failed read, not the end of the session. tests/fuzz_readers.rs drives every reader.
pub fn guard_reader<T>(path: &std::path::Path, what: &str, read: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)) {
        Ok(r) => r,
        Err(_) => Err(Error::io(path, format!("not a readable {what} file: its decoder failed on damaged or truncated bytes"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backtrace_is_stripped() {
        let raw = "Internal torch error: The size of tensor a (2) must match the size of tensor b (3) at non-singleton dimension 0\nException raised from infer_size_impl at /pytorch/aten/src/ATen/ExpandUtils.cpp:31 (most recent call first):\nframe #0: c10::Error::Error";
        assert_eq!(clean_torch_message(raw), "The size of tensor a (2) must match the size of tensor b (3) at non-singleton dimension 0");
    }
}
