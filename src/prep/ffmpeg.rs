//! The two ffmpeg invocations prep needs: frames at 1 fps, and mono 16 kHz 16-bit audio.
//! ffmpeg comes from the system (Debian's `ffmpeg` package); GAPSCOPE_FFMPEG overrides the path.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The ffmpeg to run: $GAPSCOPE_FFMPEG, else `ffmpeg` on the PATH.
pub fn program() -> PathBuf {
    std::env::var_os("GAPSCOPE_FFMPEG").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("ffmpeg"))
}

/// Checks that ffmpeg runs, with a message that says how to install it when it does not.
pub fn check(ffmpeg: &Path) -> Result<()> {
    let ok =
        Command::new(ffmpeg).arg("-version").stdout(Stdio::null()).stderr(Stdio::null()).status().map(|s| s.success()).unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err(Error::arg(format!(
            "prep needs ffmpeg to extract frames and audio from the videos, and `{}` could not be run. Install it (Debian/Ubuntu: `apt-get install ffmpeg`; macOS: `brew install ffmpeg`) or set GAPSCOPE_FFMPEG to its path",
            ffmpeg.display()
        )))
    }
}

/// Runs ffmpeg quietly; a failure carries the last line ffmpeg printed.
fn run(ffmpeg: &Path, args: &[&std::ffi::OsStr]) -> std::result::Result<(), String> {
    let out = Command::new(ffmpeg)
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ffmpeg: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    Err(format!("ffmpeg failed: {}", err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message").trim()))
}

/// Frames at 1 fps as `dir/00001.jpg`, `00002.jpg`, ... (high JPEG quality).
pub fn frames(ffmpeg: &Path, video: &Path, dir: &Path) -> std::result::Result<(), String> {
    let pattern = dir.join("%05d.jpg");
    run(ffmpeg, &["-i".as_ref(), video.as_os_str(), "-vf".as_ref(), "fps=1".as_ref(), "-q:v".as_ref(), "2".as_ref(), pattern.as_os_str()])
}

/// The audio track as mono 16 kHz 16-bit PCM WAV.
pub fn audio(ffmpeg: &Path, video: &Path, wav: &Path) -> std::result::Result<(), String> {
    run(
        ffmpeg,
        &[
            "-i".as_ref(),
            video.as_os_str(),
            "-vn".as_ref(),
            "-ac".as_ref(),
            "1".as_ref(),
            "-ar".as_ref(),
            "16000".as_ref(),
            "-acodec".as_ref(),
            "pcm_s16le".as_ref(),
            "-f".as_ref(),
            "wav".as_ref(),
            wav.as_os_str(),
        ],
    )
}
