//! The three audio front-ends of the public pipelines (data-formats.md), with libtorch so they
//! run on the waveform's device. A and B are computed in float64 as numpy does (so silence does
//! not turn into float32 round-off inside a log), C in float32 as torchaudio does; all return
//! float32.
//!
//! - A (OGM-GE, AGM): tile to 66,150 samples (3 s at 22,050 Hz), clip to [-1, 1], STFT with
//!   n_fft 512, hop 353, periodic Hann, centred with reflect padding (librosa's defaults),
//!   log(|X| + 1e-7): [257, 188].
//! - B (MMCosine, PMR): tile to 48,000 samples, scipy.signal.spectrogram(nperseg=512,
//!   noverlap=353) (Tukey(0.25) window, constant detrend, one-sided PSD density), log(S + 1e-7),
//!   per-clip z-score (x - mean) / (std + 1e-9): [257, 299].
//! - C (D&R, BalanceBenchmark, MLA): the clip minus its mean, then Kaldi fbank as
//!   torchaudio.compliance.kaldi.fbank(htk_compat, use_energy=False, window_type="hanning",
//!   num_mel_bins=128, dither=0, frame_shift=10 ms, frame_length 25 ms) at 16 kHz, zero-padded or
//!   cut to 1,024 frames, normalised (x + 4.503877) / (5.141276 * 2): [1024, 128].
//!
//! "Tile" repeats the clip until it is long enough, then cuts: the same as the public code's
//! np.tile(x, 3)[:n] whenever the clip is at least a third of n long, and still n samples for
//! shorter clips.

use crate::error::{Error, Result};
use crate::tensor::{check, Kind, Tensor};
use std::f64::consts::PI;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrontEndKind {
    A,
    B,
    C,
}

impl FrontEndKind {
    pub fn parse(name: &str) -> Result<FrontEndKind> {
        match name {
            "A" | "a" => Ok(FrontEndKind::A),
            "B" | "b" => Ok(FrontEndKind::B),
            "C" | "c" => Ok(FrontEndKind::C),
            other => Err(Error::arg(format!(
                "unknown audio front-end \"{other}\": use \"A\" (log STFT), \"B\" (scipy PSD, z-scored) or \"C\" (Kaldi fbank)"
            ))),
        }
    }
}

/// A front-end with its length settings.
#[derive(Clone, Copy, Debug)]
pub struct FrontEnd {
    pub kind: FrontEndKind,
    /// Samples the clip is tiled or cut to (A and B).
    pub samples: i64,
    /// Frames the fbank is padded or cut to (C).
    pub frames: i64,
    /// The sample rate the waveform is at (B scales its PSD by it; C needs 16 kHz framing).
    pub sample_rate: f64,
}

impl FrontEnd {
    /// The public defaults: A at 22,050 Hz for 3 s, B 48,000 samples at 16 kHz, C 1,024 frames.
    pub fn new(kind: FrontEndKind) -> FrontEnd {
        match kind {
            FrontEndKind::A => FrontEnd { kind, samples: 66_150, frames: 0, sample_rate: 22_050.0 },
            FrontEndKind::B => FrontEnd { kind, samples: 48_000, frames: 0, sample_rate: 16_000.0 },
            FrontEndKind::C => FrontEnd { kind, samples: 0, frames: 1024, sample_rate: 16_000.0 },
        }
    }

    /// The spectrogram of a mono waveform [n] (any float dtype, any device), float32.
    pub fn apply(&self, wave: &Tensor) -> Result<Tensor> {
        let op = "spectrogram";
        if wave.dim() != 1 || wave.numel() == 0 {
            return Err(Error::arg(format!("{op}: expected a non-empty 1-d waveform, got shape {:?}", wave.size())));
        }
        // C follows torchaudio, which computes in the waveform's float32: matching its rounding
        // matters where the log-mel energies are tiny. A and B follow numpy's float64.
        let kind = if self.kind == FrontEndKind::C { Kind::Float } else { Kind::Double };
        let x = check(op, wave.f_to_kind(kind))?;
        let out = match self.kind {
            FrontEndKind::A => self.log_stft(&x),
            FrontEndKind::B => self.scipy_psd(&x),
            FrontEndKind::C => self.kaldi_fbank(&x),
        }
        .map_err(|e| Error::torch(op, e))?;
        check(op, out.f_to_kind(Kind::Float))
    }

    fn log_stft(&self, x: &Tensor) -> std::result::Result<Tensor, tch::TchError> {
        let x = tile(x, self.samples)?.f_clamp(-1.0, 1.0)?;
        // A centred STFT by hand (tch's stft wrapper always sets align_to_window, which libtorch
        // refuses with center = true): reflect-pad n_fft / 2 each side, frame, window, rfft.
        let padded = x.f_unsqueeze(0)?.f_reflection_pad1d([256, 256])?.f_squeeze_dim(0)?;
        let window = Tensor::f_hann_window_periodic(512, true, (Kind::Double, x.device()))?;
        let spec = padded.f_unfold(0, 512, 353)?.f_mul(&window)?.f_fft_rfft(None::<i64>, -1, "backward")?;
        spec.f_abs()?.f_add_scalar(1e-7)?.f_log()?.f_transpose(0, 1)
    }

    fn scipy_psd(&self, x: &Tensor) -> std::result::Result<Tensor, tch::TchError> {
        let (nperseg, step) = (512i64, 512 - 353);
        let x = tile(x, self.samples)?;
        let frames = x.f_unfold(0, nperseg, step)?; // [T, 512]
        let frames = frames.f_sub(&frames.f_mean_dim(-1, true, Kind::Double)?)?; // detrend="constant"
        let w = tukey_periodic(nperseg as usize, 0.25);
        let sum_w2: f64 = w.iter().map(|v| v * v).sum();
        let window = Tensor::from_slice(&w).f_to_device(x.device())?;
        let spec = frames.f_mul(&window)?.f_fft_rfft(None::<i64>, -1, "backward")?;
        let mut power = spec.f_abs()?.f_square()?.f_mul_scalar(1.0 / (self.sample_rate * sum_w2))?;
        // One-sided density: every bin but DC and Nyquist carries its negative frequency too.
        let bins = nperseg / 2 + 1;
        let mut double = vec![2.0f64; bins as usize];
        double[0] = 1.0;
        double[bins as usize - 1] = 1.0;
        power = power.f_mul(&Tensor::from_slice(&double).f_to_device(x.device())?)?;
        let log = power.f_transpose(0, 1)?.f_add_scalar(1e-7)?.f_log()?;
        let mean = log.f_mean(Kind::Double)?;
        let std = log.f_std(false)?;
        log.f_sub(&mean)?.f_div(&std.f_add_scalar(1e-9)?)
    }

    fn kaldi_fbank(&self, x: &Tensor) -> std::result::Result<Tensor, tch::TchError> {
        let rate = self.sample_rate;
        let (size, shift) = ((rate * 0.025) as i64, (rate * 0.010) as i64);
        let padded = (size as u64).next_power_of_two() as i64;
        let kind = x.kind();
        let x = x.f_sub(&x.f_mean(kind)?)?;
        let n = x.size()[0];
        let log_mel = if n < size {
            Tensor::f_zeros([0, 128], (kind, x.device()))?
        } else {
            let frames = x.f_unfold(0, size, shift)?; // snip_edges: only whole frames
            let frames = frames.f_sub(&frames.f_mean_dim(-1, true, kind)?)?; // remove_dc_offset
                                                                             // Pre-emphasis 0.97, the first sample against itself (replicate padding).
            let previous = Tensor::f_cat(&[frames.f_narrow(1, 0, 1)?, frames.f_narrow(1, 0, size - 1)?], 1)?;
            let frames = frames.f_sub(&previous.f_mul_scalar(0.97)?)?;
            let window = Tensor::f_hann_window_periodic(size, false, (kind, x.device()))?;
            let frames = frames.f_mul(&window)?.f_constant_pad_nd([0, padded - size])?;
            let power = frames.f_fft_rfft(None::<i64>, -1, "backward")?.f_abs()?.f_square()?; // [T, padded/2 + 1]
            let banks = Tensor::from_slice(&mel_banks(128, padded as usize, rate, 20.0))
                .f_reshape([128, padded / 2 + 1])?
                .f_to_kind(kind)?
                .f_to_device(x.device())?;
            power.f_matmul(&banks.f_transpose(0, 1)?)?.f_clamp_min(f32::EPSILON as f64)?.f_log()?
        };
        let t = log_mel.size()[0];
        let fitted =
            if t >= self.frames { log_mel.f_narrow(0, 0, self.frames)? } else { log_mel.f_constant_pad_nd([0, 0, 0, self.frames - t])? };
        fitted.f_add_scalar(4.503877)?.f_div_scalar(5.141276 * 2.0)
    }
}

/// Repeats a clip until it has at least `n` samples, then keeps the first `n`.
fn tile(x: &Tensor, n: i64) -> std::result::Result<Tensor, tch::TchError> {
    let len = x.size()[0];
    let reps = (n + len - 1) / len;
    x.f_repeat([reps])?.f_narrow(0, 0, n)
}

/// scipy.signal.get_window(("tukey", alpha), m): the symmetric Tukey window of m + 1 points
/// without its last point (scipy's periodic "fftbins" form).
fn tukey_periodic(m: usize, alpha: f64) -> Vec<f64> {
    let len = m + 1;
    let last = (len - 1) as f64;
    let width = (alpha * last / 2.0).floor() as usize;
    (0..m)
        .map(|i| {
            let n = i as f64;
            if i <= width {
                0.5 * (1.0 + (PI * (-1.0 + 2.0 * n / alpha / last)).cos())
            } else if i < len - width - 1 {
                1.0
            } else {
                0.5 * (1.0 + (PI * (-2.0 / alpha + 1.0 + 2.0 * n / alpha / last)).cos())
            }
        })
        .collect()
}

fn mel(f: f64) -> f64 {
    1127.0 * (1.0 + f / 700.0).ln()
}

/// Kaldi's triangular mel filters (as torchaudio's get_mel_banks, no VTLN), row-major
/// [bins, n_fft / 2 + 1] with a zero last column (the Nyquist bin), up to the Nyquist frequency.
fn mel_banks(bins: usize, n_fft: usize, rate: f64, low: f64) -> Vec<f64> {
    let half = n_fft / 2;
    let bin_width = rate / n_fft as f64;
    let (lo, hi) = (mel(low), mel(rate / 2.0));
    let delta = (hi - lo) / (bins + 1) as f64;
    let mut out = vec![0.0; bins * (half + 1)];
    for b in 0..bins {
        let (left, center, right) = (lo + b as f64 * delta, lo + (b + 1) as f64 * delta, lo + (b + 2) as f64 * delta);
        for i in 0..half {
            let m = mel(bin_width * i as f64);
            let up = (m - left) / (center - left);
            let down = (right - m) / (right - center);
            out[b * (half + 1) + i] = up.min(down).max(0.0);
        }
    }
    out
}
