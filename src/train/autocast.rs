//! Mixed precision's forward half: `amp: "bf16" | "fp16"` runs a training step's forward and
//! loss under libtorch's autocast, as `torch.autocast(device, dtype)` does. Matrix products and
//! convolutions run in the reduced type, other ops as libtorch's per-device lists decide (the
//! ones PyTorch users get), and the trainer's cross-entropy takes its log-softmax in float32;
//! parameters, their
//! gradients and the optimizer's state stay float32. The backward runs outside, as PyTorch
//! advises. fp16's loss scaling is `loss_scale`.
//!
//! tch 0.26 can switch only CUDA's autocast, so the switch goes through a few lines of C++
//! (src/train/autocast_shim.cpp, compiled by build.rs) that reach libtorch's per-device state.

use crate::error::{Error, Result};
use tch::Device;

/// The reduced type a step's forward runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// bfloat16: float32's range, so no loss scaling is needed.
    Bf16,
    /// float16: a narrow range; gradients go through a dynamic loss scale (`loss_scale`).
    Fp16,
}

impl Precision {
    /// "bf16" | "fp16" (also "bfloat16" | "float16"); the error names the choices.
    pub fn parse(op: &str, name: &str) -> Result<Precision> {
        match name {
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            "fp16" | "float16" | "half" => Ok(Precision::Fp16),
            other => Err(Error::arg(format!("{op}: amp must be \"bf16\" or \"fp16\" (\"none\", or no amp, for float32), not \"{other}\""))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Precision::Bf16 => "bf16",
            Precision::Fp16 => "fp16",
        }
    }

    /// c10::ScalarType's number.
    fn scalar_type(self) -> i32 {
        match self {
            Precision::Bf16 => 15,
            Precision::Fp16 => 5,
        }
    }
}

unsafe extern "C" {
    fn gapscope_autocast_enter(device_type: i32, dtype: i32) -> i32;
    fn gapscope_autocast_exit(device_type: i32, was_enabled: bool, was_dtype: i32);
    fn gapscope_autocast_enabled(device_type: i32) -> bool;
    fn gapscope_autocast_dtype(device_type: i32) -> i32;
}

/// c10::DeviceType's number for the devices gapscope trains on.
fn device_type(device: Device) -> Result<i32> {
    match device {
        Device::Cpu => Ok(0),
        Device::Cuda(_) => Ok(1),
        Device::Mps => Ok(13),
        other => Err(Error::arg(format!("amp: no autocast for device {other:?}; train without amp there"))),
    }
}

/// Autocast on for this thread while it lives; dropping it restores what was there before
/// (nested guards compose as nested `torch.autocast` blocks).
pub struct Autocast {
    device_type: i32,
    was_enabled: bool,
    was_dtype: i32,
}

impl Autocast {
    pub fn enter(device: Device, precision: Precision) -> Result<Autocast> {
        let device_type = device_type(device)?;
        // SAFETY: the shim's functions take plain integers, touch only libtorch's thread-local
        // autocast state, and catch every C++ exception.
        let (was_enabled, was_dtype) = unsafe { (gapscope_autocast_enabled(device_type), gapscope_autocast_dtype(device_type)) };
        if unsafe { gapscope_autocast_enter(device_type, precision.scalar_type()) } != 0 {
            return Err(Error::arg(format!("amp: libtorch refused {} autocast on {device:?}", precision.name())));
        }
        Ok(Autocast { device_type, was_enabled, was_dtype })
    }

    /// Whether autocast is on for `device` on this thread now.
    pub fn enabled(device: Device) -> bool {
        // SAFETY: as in `enter`.
        device_type(device).map(|d| unsafe { gapscope_autocast_enabled(d) }).unwrap_or(false)
    }
}

impl Drop for Autocast {
    fn drop(&mut self) {
        // SAFETY: as in `enter`.
        unsafe { gapscope_autocast_exit(self.device_type, self.was_enabled, self.was_dtype) }
    }
}

/// Runs `f` under autocast to `precision` on `device` when one is given, else plainly.
pub fn maybe<T>(device: Device, precision: Option<Precision>, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let _guard = match precision {
        Some(p) => Some(Autocast::enter(device, p)?),
        None => None,
    };
    f()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor};

    #[test]
    fn matrix_products_run_in_the_reduced_type_and_the_state_is_restored() {
        let a = Tensor::ones([2, 3], (Kind::Float, Device::Cpu));
        let b = Tensor::ones([3, 4], (Kind::Float, Device::Cpu));
        assert!(!Autocast::enabled(Device::Cpu));
        for (p, kind) in [(Precision::Bf16, Kind::BFloat16), (Precision::Fp16, Kind::Half)] {
            {
                let _g = Autocast::enter(Device::Cpu, p).unwrap();
                assert!(Autocast::enabled(Device::Cpu));
                assert_eq!(a.matmul(&b).kind(), kind);
                // The trainer's cross-entropy takes its log-softmax in float32 (libtorch's CPU
                // list keeps a bare log_softmax in the reduced type, as PyTorch does).
                let labels = Tensor::from_slice(&[0i64, 1]);
                assert_eq!(crate::tensor::loss::per_sample_cross_entropy(&a.matmul(&b), &labels).unwrap().kind(), Kind::Float);
                {
                    let _inner = Autocast::enter(Device::Cpu, Precision::Bf16).unwrap();
                    assert_eq!(a.matmul(&b).kind(), Kind::BFloat16);
                }
                assert_eq!(a.matmul(&b).kind(), kind, "the inner guard restores the outer dtype");
            }
            assert!(!Autocast::enabled(Device::Cpu));
            assert_eq!(a.matmul(&b).kind(), Kind::Float);
        }
    }

    #[test]
    fn precision_names_parse_and_others_are_refused() {
        assert_eq!(Precision::parse("t", "bf16").unwrap(), Precision::Bf16);
        assert_eq!(Precision::parse("t", "fp16").unwrap(), Precision::Fp16);
        let e = Precision::parse("train_epoch", "fp8").unwrap_err().to_string();
        assert!(e.contains("\"bf16\" or \"fp16\""), "{e}");
    }
}
