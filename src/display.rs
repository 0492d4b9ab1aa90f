//! Where a figure or a progress bar goes besides its usual place. By default nowhere: figures
//! are files and bars draw on a terminal's stderr. A front-end that can show them itself (the
//! notebook kernel) installs a `Display`, and then every figure written is shown inline and
//! every bar updates in place there.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

pub trait Display: Send + Sync {
    /// A figure file was just written.
    fn figure(&self, path: &Path);
    /// Bar `id` now reads `line`; `finished` for its last line.
    fn progress(&self, id: u64, line: &str, finished: bool);
}

static SINK: RwLock<Option<Arc<dyn Display>>> = RwLock::new(None);

pub fn install(sink: Arc<dyn Display>) {
    *SINK.write().unwrap_or_else(|p| p.into_inner()) = Some(sink);
}

fn sink() -> Option<Arc<dyn Display>> {
    SINK.read().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Whether a display is installed (progress bars then draw even without a terminal).
pub fn active() -> bool {
    sink().is_some()
}

pub fn figure(path: &Path) {
    if let Some(s) = sink() {
        s.figure(path);
    }
}

/// Sends a bar's line to the display; false when there is none (draw it on stderr instead).
pub fn progress(id: u64, line: &str, finished: bool) -> bool {
    match sink() {
        Some(s) => {
            s.progress(id, line, finished);
            true
        }
        None => false,
    }
}

/// A new bar's id.
pub fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::SeqCst)
}
