//! `gapscope kernel install`: the kernelspec Jupyter finds the kernel by (kernel.json and the
//! logos) in the kernels folder of the user's, a prefix's or the active environment's data dir.

use crate::error::{Error, Result};
use serde_json::json;
use std::path::{Path, PathBuf};

/// The kernel's name: `jupyter console --kernel gapscope`, a notebook's kernelspec name.
pub const KERNEL_NAME: &str = "gapscope";

/// Where a kernelspec goes, as `jupyter kernelspec install` names the choices.
pub enum Target {
    /// The user's Jupyter data dir: $JUPYTER_DATA_DIR, else ~/.local/share/jupyter (Linux) or
    /// ~/Library/Jupyter (macOS).
    User,
    /// DIR/share/jupyter.
    Prefix(PathBuf),
    /// The active Python environment's prefix ($VIRTUAL_ENV, else $CONDA_PREFIX).
    SysPrefix,
}

/// The `kernels` folder of a target's Jupyter data dir.
pub fn kernels_dir(target: &Target) -> Result<PathBuf> {
    let data = match target {
        Target::User => match std::env::var_os("JUPYTER_DATA_DIR") {
            Some(d) => PathBuf::from(d),
            None => {
                let home = std::env::var_os("HOME").ok_or_else(|| Error::arg("kernel install: HOME is not set; give --prefix DIR"))?;
                if cfg!(target_os = "macos") {
                    PathBuf::from(home).join("Library/Jupyter")
                } else {
                    PathBuf::from(home).join(".local/share/jupyter")
                }
            }
        },
        Target::Prefix(p) => p.join("share/jupyter"),
        Target::SysPrefix => {
            let env = std::env::var_os("VIRTUAL_ENV").or_else(|| std::env::var_os("CONDA_PREFIX"));
            let p = env.ok_or_else(|| Error::arg("kernel install --sys-prefix: no active Python environment (neither VIRTUAL_ENV nor CONDA_PREFIX is set); activate it, or give --prefix DIR"))?;
            PathBuf::from(p).join("share/jupyter")
        }
    };
    Ok(data.join("kernels"))
}

/// The kernelspec's kernel.json for the binary at `exe`.
pub fn kernel_json(exe: &Path) -> serde_json::Value {
    json!({
        "argv": [exe.to_string_lossy(), "kernel", "--connection-file", "{connection_file}"],
        "display_name": "gapscope (Rhai)",
        "language": "rhai",
        // SIGINT from the stop button; the kernel also answers interrupt_request messages.
        "interrupt_mode": "signal",
        "metadata": { "debugger": false }
    })
}

/// The logo at `size` pixels: two bars of unequal height (a dominant and a neglected modality)
/// on a dark tile.
pub fn logo(size: u32) -> image::RgbaImage {
    let mut img = image::RgbaImage::from_pixel(size, size, image::Rgba([32, 41, 64, 255]));
    let bar = |img: &mut image::RgbaImage, x0: f32, x1: f32, top: f32, color: [u8; 4]| {
        let s = size as f32;
        for y in (top * s) as u32..(0.85 * s) as u32 {
            for x in (x0 * s) as u32..(x1 * s) as u32 {
                img.put_pixel(x, y, image::Rgba(color));
            }
        }
    };
    bar(&mut img, 0.18, 0.44, 0.15, [242, 142, 43, 255]);
    bar(&mut img, 0.56, 0.82, 0.55, [78, 205, 196, 255]);
    img
}

/// Writes the kernelspec under `target` for the binary at `exe`; returns its folder.
pub fn install(target: &Target, exe: &Path) -> Result<PathBuf> {
    let dir = kernels_dir(target)?.join(KERNEL_NAME);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let spec = dir.join("kernel.json");
    let text = serde_json::to_string_pretty(&kernel_json(exe)).map_err(|e| Error::io(&spec, e))?;
    std::fs::write(&spec, text).map_err(|e| Error::io(&spec, e))?;
    for size in [32, 64] {
        let path = dir.join(format!("logo-{size}x{size}.png"));
        logo(size).save(&path).map_err(|e| Error::io(&path, e))?;
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_runs_this_binary_with_the_connection_file() {
        let j = kernel_json(Path::new("/opt/bin/gapscope"));
        assert_eq!(j["argv"], json!(["/opt/bin/gapscope", "kernel", "--connection-file", "{connection_file}"]));
        assert_eq!(j["language"], "rhai");
        assert_eq!(kernels_dir(&Target::Prefix("/p".into())).unwrap(), PathBuf::from("/p/share/jupyter/kernels"));
        let l = logo(32);
        assert_eq!(l.dimensions(), (32, 32));
        assert_ne!(l.get_pixel(8, 20), l.get_pixel(8, 2));
    }
}
