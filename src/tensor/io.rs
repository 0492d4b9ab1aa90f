//! Tensor files: NumPy `.npy` and `.safetensors`, both readable from Python.
//! Writes go to a temporary file renamed into place, so an interrupted save never leaves a
//! truncated file where a good one was.

use super::check;
use crate::error::{Error, Result};
use crate::files::write_atomically;
use std::path::Path;
use tch::Tensor;

fn must_exist(path: &Path) -> Result<()> {
    if path.is_file() {
        Ok(())
    } else {
        Err(Error::io(path, "no such file"))
    }
}

pub fn load_npy(path: &Path) -> Result<Tensor> {
    must_exist(path)?;
    super::npy::load(path)
}

pub fn save_npy(tensor: &Tensor, path: &Path) -> Result<()> {
    let cpu = check("save_npy", tensor.f_to_device(tch::Device::Cpu))?;
    let cpu = check("save_npy", cpu.f_contiguous())?;
    write_atomically(path, |tmp| cpu.write_npy(tmp).map_err(|e| Error::io(path, e)))
}

/// All named tensors of a safetensors file, in the file's order.
pub fn load_safetensors(path: &Path) -> Result<Vec<(String, Tensor)>> {
    must_exist(path)?;
    crate::error::guard_reader(path, "safetensors", || Tensor::read_safetensors(path).map_err(|e| Error::io(path, e)))
}

pub fn save_safetensors(named: &[(String, Tensor)], path: &Path) -> Result<()> {
    let mut cpu = Vec::with_capacity(named.len());
    for (name, t) in named {
        let t = check("save_safetensors", t.f_to_device(tch::Device::Cpu))?;
        cpu.push((name.clone(), check("save_safetensors", t.f_contiguous())?));
    }
    write_atomically(path, |tmp| Tensor::write_safetensors(&cpu, tmp).map_err(|e| Error::io(path, e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_and_safetensors_round_trip() {
        let dir = std::env::temp_dir().join(format!("gapscope-io-{}", std::process::id()));
        let x = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).reshape([2, 2]);
        save_npy(&x, &dir.join("x.npy")).unwrap();
        assert!(load_npy(&dir.join("x.npy")).unwrap().equal(&x));
        let y = Tensor::from_slice(&[7i64, 8]);
        save_safetensors(&[("x".into(), x.shallow_clone()), ("y".into(), y.shallow_clone())], &dir.join("t.safetensors")).unwrap();
        let back = load_safetensors(&dir.join("t.safetensors")).unwrap();
        let get = |n: &str| back.iter().find(|(k, _)| k == n).unwrap().1.shallow_clone();
        assert!(get("x").equal(&x) && get("y").equal(&y));
        assert!(load_npy(&dir.join("missing.npy")).unwrap_err().to_string().contains("no such file"));
        std::fs::write(dir.join("bad.npy"), b"not numpy").unwrap();
        assert!(load_npy(&dir.join("bad.npy")).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}
