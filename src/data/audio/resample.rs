//! Band-limited resampling (a Hann-windowed sinc, as torchaudio.functional.resample does by
//! default: 6 zero crossings, roll-off 0.99), so a 16 kHz corpus can feed front-end A, which
//! the public code computes at 22,050 Hz. One strided convolution with a kernel per output
//! phase; runs on the waveform's device.

use crate::error::{Error, Result};
use crate::tensor::{check, Kind, Tensor};
use std::f64::consts::PI;
use std::sync::{Arc, Mutex};

const ZERO_CROSSINGS: f64 = 6.0;
const ROLLOFF: f64 = 0.99;
/// Above this many table weights, the direct sum is used.
const DIRECT_ABOVE: u64 = 2_000_000;

/// The weight of input sample i for output sample o: t = (i/orig − o/new)·base, a Hann-windowed
/// sinc over ZERO_CROSSINGS zero crossings (torchaudio's sinc_interp_hann).
fn weight(i: i64, o: i64, orig: i64, new: i64, base: f64) -> f64 {
    let t = (i as f64 / orig as f64 - o as f64 / new as f64) * base;
    let t = t.clamp(-ZERO_CROSSINGS, ZERO_CROSSINGS);
    let window = (t * PI / ZERO_CROSSINGS / 2.0).cos().powi(2);
    let x = t * PI;
    let sinc = if x == 0.0 { 1.0 } else { x.sin() / x };
    sinc * window * base / orig as f64
}

/// The same resampling as the kernel table's, summed per output sample: for rates whose reduced
/// ratio makes the table huge. Cost: output samples x (2·width + 1).
pub fn resample_direct(wave: &Tensor, from: u32, to: u32) -> Result<Tensor> {
    let op = "resample";
    let g = gcd(from as u64, to as u64);
    let (orig, new) = ((from as u64 / g) as i64, (to as u64 / g) as i64);
    let base = orig.min(new) as f64 * ROLLOFF;
    let width = (ZERO_CROSSINGS * orig as f64 / base).ceil() as i64;
    let kind = if wave.kind() == Kind::Double { Kind::Double } else { Kind::Float };
    let x = check(op, wave.f_to_kind(Kind::Double).and_then(|t| t.f_to_device(tch::Device::Cpu)).and_then(|t| Vec::<f64>::try_from(&t)))?;
    let n = x.len() as i64;
    let target = ((new as i128 * n as i128 + orig as i128 - 1) / orig as i128) as i64;
    let mut y = crate::limits::try_vec(op, target.max(0) as usize, 0.0f64)?;
    for (o, out) in y.iter_mut().enumerate() {
        let o = o as i64;
        // Output o sits at input position o·orig/new; its window reaches `width` either side.
        let centre = (o as i128 * orig as i128 / new as i128) as i64;
        let mut acc = 0.0;
        for i in (centre - width).max(0)..=(centre + width + 1).min(n - 1) {
            acc += x[i as usize] * weight(i, o, orig, new, base);
        }
        *out = acc;
    }
    check(op, Tensor::from_slice(&y).f_to_kind(kind).and_then(|t| t.f_to_device(wave.device())))
}

/// The kernels of one rate pair, built once per process: a loader calls this for every clip,
/// and building 16 -> 22.05 kHz's 147,294 windowed-sinc weights cost 4 ms a clip, more than
/// the convolution itself.
fn kernel_table(from: u32, to: u32, orig: i64, new: i64, width: i64, taps: usize, base: f64) -> Result<Arc<Vec<f64>>> {
    static TABLES: Mutex<Vec<((u32, u32), Arc<Vec<f64>>)>> = Mutex::new(Vec::new());
    if let Some((_, t)) = TABLES.lock().unwrap_or_else(|p| p.into_inner()).iter().find(|(k, _)| *k == (from, to)) {
        return Ok(t.clone());
    }
    let mut kernels = crate::limits::try_with_capacity("resample", new as usize * taps)?;
    for j in 0..new {
        for k in 0..taps as i64 {
            // Input k − width for output j of the first frame: the weight of the direct sum.
            kernels.push(weight(k - width, j, orig, new, base));
        }
    }
    let kernels = Arc::new(kernels);
    let mut tables = TABLES.lock().unwrap_or_else(|p| p.into_inner());
    // A corpus uses one or two rate pairs; a script sweeping many keeps only the last few.
    if tables.len() >= 8 {
        tables.remove(0);
    }
    tables.push(((from, to), kernels.clone()));
    Ok(kernels)
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
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
    // new x taps entries (10^8 and more, minutes per clip): those are summed directly instead,
    // each output sample over the few input samples its window reaches (the same weights).
    let table = (new as u64).saturating_mul(taps as u64);
    if table > DIRECT_ABOVE {
        return resample_direct(wave, from, to);
    }
    let kernels = kernel_table(from, to, orig, new, width, taps, base)?;
    let kind = if wave.kind() == Kind::Double { Kind::Double } else { Kind::Float };
    let run = || -> std::result::Result<Tensor, tch::TchError> {
        let n = wave.size()[0];
        let x = wave.f_to_kind(kind)?.f_reshape([1, 1, n])?;
        let kernel =
            Tensor::from_slice(kernels.as_slice()).f_to_kind(kind)?.f_to_device(wave.device())?.f_reshape([new, 1, taps as i64])?;
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

    #[test]
    fn the_direct_sum_equals_the_kernel_table() {
        let mut rng = crate::rng::Rng::new(4);
        let x: Vec<f64> = (0..5_000).map(|_| rng.normal()).collect();
        let wave = Tensor::from_slice(&x);
        // Twice over: the second round's tables come from the cache, which must tell apart two
        // pairs from the same rate.
        for (from, to) in [(44_100, 16_000), (16_000, 22_050), (48_000, 44_100), (16_000, 44_100)].repeat(2) {
            let a = Vec::<f64>::try_from(&resample(&wave, from, to).unwrap()).unwrap();
            let b = Vec::<f64>::try_from(&resample_direct(&wave, from, to).unwrap()).unwrap();
            assert_eq!(a.len(), b.len(), "{from} -> {to}");
            let worst = a.iter().zip(&b).map(|(p, q)| (p - q).abs()).fold(0.0, f64::max);
            assert!(worst < 1e-9, "{from} -> {to}: {worst}");
        }
    }

    #[test]
    fn an_odd_rate_is_fast_and_keeps_a_tone() {
        // 16,001 -> 16,000 Hz reduces to 16001:16000: a kernel table of 10^8 weights; the direct
        // sum takes (2·width + 1) weights per output sample.
        let n = 16_001;
        let tone: Vec<f64> = (0..n).map(|i| (2.0 * PI * 440.0 * i as f64 / 16_001.0).sin()).collect();
        let y = Vec::<f64>::try_from(&resample(&Tensor::from_slice(&tone), 16_001, 16_000).unwrap()).unwrap();
        assert_eq!(y.len(), 16_000);
        let worst = (100..15_900).map(|i| (y[i] - (2.0 * PI * 440.0 * i as f64 / 16_000.0).sin()).abs()).fold(0.0, f64::max);
        assert!(worst < 1e-3, "{worst}");
    }
}
