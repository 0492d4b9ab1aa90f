//! Files on disk, at the ground floor: writes that never leave a truncated file where a good
//! one was (a temporary sibling renamed into place), and text read the way editors save it.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// A sibling temporary path in the same directory (so the final rename is atomic).
pub fn temp_sibling(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // The extension stays last: encoders that choose the format by extension (PNG, SVG) still work.
    let (stem, ext) = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem.to_string(), format!(".{ext}")),
        _ => (name.clone(), String::new()),
    };
    path.with_file_name(format!(".{stem}.tmp{}{ext}", std::process::id()))
}

/// Runs `write` against a temporary sibling of `path`, then renames it into place.
pub fn write_atomically(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let tmp = temp_sibling(path);
    let result = write(&tmp).and_then(|_| std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e)));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Script text without a leading UTF-8 byte-order mark (Windows editors save one; Rhai reads it
/// as a stray character and reports a syntax error).
pub fn without_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}
