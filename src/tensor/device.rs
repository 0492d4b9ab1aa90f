//! Device names: "cpu", "cuda", "cuda:N".

use crate::error::{Error, Result};
use tch::Device;

/// The best device on this machine: CUDA when libtorch sees a GPU, else the CPU.
pub fn best_device() -> Device {
    if tch::Cuda::is_available() {
        Device::Cuda(0)
    } else {
        Device::Cpu
    }
}

/// The environment variable that pins the default device ("cpu", "cuda", "cuda:N"): a GPU
/// machine can run on its CPU, and the test suites run on the device GAPSCOPE_TEST_DEVICE names.
pub const DEVICE_ENV: &str = "GAPSCOPE_DEVICE";

/// A device set for the whole process (the test harness sets it; it wins over the variable).
static PINNED: std::sync::OnceLock<Device> = std::sync::OnceLock::new();

/// Pins the default device of this process; the first pin holds.
pub fn pin_default_device(device: Device) -> Device {
    *PINNED.get_or_init(|| device)
}

/// The device a model goes to when a script names none: the pinned one, else GAPSCOPE_DEVICE,
/// else `best_device`. A GAPSCOPE_DEVICE naming a device this machine lacks is an error.
pub fn default_device() -> Result<Device> {
    if let Some(d) = PINNED.get() {
        return Ok(*d);
    }
    match std::env::var(DEVICE_ENV) {
        Ok(name) if !name.trim().is_empty() => parse_device(&name).map_err(|e| Error::arg(format!("{DEVICE_ENV}={name}: {e}"))),
        _ => Ok(best_device()),
    }
}

pub fn device_name(device: Device) -> String {
    match device {
        Device::Cpu => "cpu".to_string(),
        Device::Cuda(i) => format!("cuda:{i}"),
        Device::Mps => "mps".to_string(),
        Device::Vulkan => "vulkan".to_string(),
    }
}

/// Parses a device name, refusing a CUDA device this machine does not have.
pub fn parse_device(name: &str) -> Result<Device> {
    let name = name.trim();
    let device = match name {
        "cpu" => Device::Cpu,
        "cuda" => Device::Cuda(0),
        _ => match name.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(i)) => Device::Cuda(i),
            _ => return Err(Error::arg(format!("unknown device '{name}': use \"cpu\", \"cuda\" or \"cuda:N\""))),
        },
    };
    if let Device::Cuda(i) = device {
        let count = tch::Cuda::device_count() as usize;
        if i >= count {
            return Err(Error::arg(if count == 0 {
                format!("device '{name}' requested but no CUDA device is available here: use device() to pick the best one")
            } else {
                format!("device '{name}' requested but only {count} CUDA device(s) exist")
            }));
        }
    }
    Ok(device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names() {
        assert_eq!(parse_device("cpu").unwrap(), Device::Cpu);
        assert!(parse_device("tpu").is_err());
        if !tch::Cuda::is_available() {
            assert!(parse_device("cuda").unwrap_err().to_string().contains("no CUDA device"));
        }
    }
}
