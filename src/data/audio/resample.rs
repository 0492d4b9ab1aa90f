//! Band-limited resampling (a Hann-windowed sinc, as torchaudio.functional.resample does by
//! default: 6 zero crossings, roll-off 0.99), so a 16 kHz corpus can feed front-end A, which
//! the public code computes at 22,050 Hz. One strided convolution with a kernel per output
//! phase; runs on the waveform's device.

use crate::error::{Error, Result};
use crate::tensor::{check, Kind, Tensor};
use std::f64::consts::PI;

const ZERO_CROSSINGS: f64 = 6.0;
const ROLLOFF: f64 = 0.99;

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// `wave` [n] from `from` Hz to `to` Hz, in the waveform's float dtype.
pub fn resample(wave: &Tensor, from: u32, to: u32) -> Result<Tensor> {
    let op = "resample";
    if from == 0 || to == 0 {
        return Err(Error::arg(format!("{op}: sample rates must be positive, got {from} -> {to}")));
    }
    if wave.dim() != 1 {
        return Err(Error::arg(format!("{op}: expected a 1-d waveform, got shape {:?}", wave.size())));
    }
    if from == to {
        return Ok(wave.shallow_clone());
    }
    let g = gcd(from as u64, to as u64);
    let (orig, new) = ((from as u64 / g) as i64, (to as u64 / g) as i64);
    let base = orig.min(new) as f64 * ROLLOFF;
    let width = (ZERO_CROSSINGS * orig as f64 / base).ceil() as i64;
    // kernels[j][k]: the weight of input sample (k - width) for output phase j.
    let taps = (2 * width + orig) as usize;
    // Rates with a large reduced ratio (16,001 -> 16,000 Hz) would need a kernel table of
    // new x taps entries (10^8 and more): refuse rather than spend minutes per clip.
    let table = crate::limits::elements(op, &[new as u64, taps as u64], 8)?;
    if table > 50_000_000 {
        return Err(Error::arg(format!("{op}: {from} -> {to} Hz reduces to {orig}:{new}, a polyphase table of {table} weights; resample the files once with ffmpeg (gapscope prep does) to a common rate such as 16000 Hz")));
    }
    let mut kernels = crate::limits::try_with_capacity(op, table)?;
    for j in 0..new {
        for k in 0..taps as i64 {
            let t = ((k - width) as f64 / orig as f64 - j as f64 / new as f64) * base;
            let t = t.clamp(-ZERO_CROSSINGS, ZERO_CROSSINGS);
            let window = (t * PI / ZERO_CROSSINGS / 2.0).cos().powi(2);
            let x = t * PI;
            let sinc = if x == 0.0 { 1.0 } else { x.sin() / x };
            kernels.push(sinc * window * base / orig as f64);
        }
    }
    let kind = if wave.kind() == Kind::Double { Kind::Double } else { Kind::Float };
    let run = || -> std::result::Result<Tensor, tch::TchError> {
        let n = wave.size()[0];
        let x = wave.f_to_kind(kind)?.f_reshape([1, 1, n])?;
        let kernel = Tensor::from_slice(&kernels).f_to_kind(kind)?.f_to_device(wave.device())?.f_reshape([new, 1, taps as i64])?;
        let x = x.f_constant_pad_nd([width, width + orig])?;
        let y = x.f_conv1d(&kernel, None::<Tensor>, [orig], [0], [1], 1)?; // [1, new, frames]
        let y = y.f_transpose(1, 2)?.f_reshape([-1])?;
        let target = (new * n + orig - 1) / orig;
        y.f_narrow(0, 0, target.min(y.size()[0]))
    };
    check(op, run())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_a_tone_survive() {
        let n = 16_000;
        let tone: Vec<f64> = (0..n).map(|i| (2.0 * PI * 440.0 * i as f64 / 16_000.0).sin()).collect();
        let y = resample(&Tensor::from_slice(&tone), 16_000, 22_050).unwrap();
        assert_eq!(y.size(), vec![22_050]);
        // Away from the edges the resampled tone is the tone at the new rate.
        let got = Vec::<f64>::try_from(&y).unwrap();
        let worst = (1000..21_000).map(|i| (got[i] - (2.0 * PI * 440.0 * i as f64 / 22_050.0).sin()).abs()).fold(0.0, f64::max);
        assert!(worst < 1e-3, "{worst}");
        assert!(resample(&Tensor::from_slice(&tone), 0, 16_000).is_err());
    }
}
