//! Audio: WAV decoding and the three spectrogram front-ends the public pipelines use
//! (data-formats.md), computed with libtorch so they run on the GPU when there is one.
//!
//! - `wav`: RIFF/WAVE reading (PCM 8/16/24/32-bit, float 32/64), mixed down to mono
//! - `frontend`: A (log-magnitude STFT), B (scipy-style PSD, log, z-score), C (Kaldi fbank)
//! - `resample`: band-limited sinc resampling (torchaudio's default), e.g. 16 kHz into A

pub mod frontend;
pub mod resample;
pub mod wav;

pub use frontend::{FrontEnd, FrontEndKind};
pub use resample::resample;
pub use wav::{read_wav, Wav};
