//! WAV files: enough of RIFF/WAVE for what datasets ship (PCM 8/16/24/32-bit, IEEE float
//! 32/64, any channel count), mixed down to mono by averaging channels as librosa does.
//! Truncated or corrupt files are errors that name the file.

use crate::error::{Error, Result};
use std::path::Path;

#[derive(Debug)]
pub struct Wav {
    pub sample_rate: u32,
    /// Mono samples in [-1, 1] (integer PCM scaled by its full range).
    pub samples: Vec<f32>,
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

pub fn read_wav(path: &Path) -> Result<Wav> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_wav(&bytes).map_err(|msg| Error::io(path, msg))
}

/// Decodes WAV bytes; the error is a message without the path.
pub fn parse_wav(b: &[u8]) -> std::result::Result<Wav, String> {
    if b.len() < 12 || &b[0..4] != b"RIFF" || &b[8..12] != b"WAVE" {
        return Err("not a WAV file (no RIFF/WAVE header)".into());
    }
    let mut pos = 12;
    let mut format: Option<(u16, u16, u32, u16)> = None;
    while pos + 8 <= b.len() {
        let id = &b[pos..pos + 4];
        let size = u32_at(b, pos + 4) as usize;
        let body = pos + 8;
        if id == b"fmt " {
            if size < 16 || body + 16 > b.len() {
                return Err("truncated fmt chunk".into());
            }
            let mut tag = u16_at(b, body);
            let channels = u16_at(b, body + 2);
            let rate = u32_at(b, body + 4);
            let bits = u16_at(b, body + 14);
            if tag == 0xFFFE && size >= 40 && body + 26 <= b.len() {
                tag = u16_at(b, body + 24); // WAVE_FORMAT_EXTENSIBLE: the sub-format's first two bytes
            }
            format = Some((tag, channels, rate, bits));
        } else if id == b"data" {
            let (tag, channels, rate, bits) = format.ok_or("data chunk before the fmt chunk")?;
            if channels == 0 || rate == 0 {
                return Err(format!("invalid format: {channels} channels at {rate} Hz"));
            }
            // A corrupt header's rate would size the resampler's tables; no audio is sampled
            // above 768 kHz.
            if rate > 768_000 {
                return Err(format!("invalid format: a sample rate of {rate} Hz (a corrupt header? audio rates stop at 768000 Hz)"));
            }
            let width = (bits as usize).div_ceil(8);
            let frame = width * channels as usize;
            let available = b.len().saturating_sub(body);
            if size > available {
                return Err(format!("truncated: the data chunk says {size} bytes but {available} remain"));
            }
            let data = &b[body..body + size];
            let decode: Box<dyn Fn(&[u8]) -> f32> = match (tag, bits) {
                (1, 8) => Box::new(|s| (s[0] as f32 - 128.0) / 128.0),
                (1, 16) => Box::new(|s| i16::from_le_bytes([s[0], s[1]]) as f32 / 32768.0),
                (1, 24) => Box::new(|s| (i32::from_le_bytes([0, s[0], s[1], s[2]]) >> 8) as f32 / 8_388_608.0),
                (1, 32) => Box::new(|s| (i32::from_le_bytes([s[0], s[1], s[2], s[3]]) as f64 / 2_147_483_648.0) as f32),
                (3, 32) => Box::new(|s| f32::from_le_bytes([s[0], s[1], s[2], s[3]])),
                (3, 64) => Box::new(|s| f64::from_le_bytes(s[..8].try_into().expect("8 bytes")) as f32),
                _ => return Err(format!("unsupported encoding (format tag {tag}, {bits} bits); convert to 16-bit PCM")),
            };
            let frames = data.len() / frame;
            let inv = 1.0 / channels as f32;
            let samples = (0..frames)
                .map(|f| {
                    let at = &data[f * frame..(f + 1) * frame];
                    at.chunks_exact(width).map(&decode).sum::<f32>() * inv
                })
                .collect();
            return Ok(Wav { sample_rate: rate, samples });
        }
        pos = body + size + (size & 1); // chunks are word-aligned
    }
    Err(if format.is_none() { "no fmt chunk".into() } else { "no data chunk (truncated?)".into() })
}

/// 16-bit PCM mono bytes, for tests and tools that write small clips.
pub fn encode_pcm16(samples: &[f32], rate: u32) -> Vec<u8> {
    let data: Vec<u8> = samples.iter().flat_map(|s| ((s.clamp(-1.0, 1.0) * 32767.0).round() as i16).to_le_bytes()).collect();
    let mut out = Vec::with_capacity(44 + data.len());
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let x: Vec<f32> = (0..100).map(|i| (i as f32 / 10.0).sin() * 0.5).collect();
        let bytes = encode_pcm16(&x, 16000);
        let w = parse_wav(&bytes).unwrap();
        assert_eq!(w.sample_rate, 16000);
        assert_eq!(w.samples.len(), 100);
        assert!(w.samples.iter().zip(&x).all(|(a, b)| (a - b).abs() < 1e-4));
        assert!(parse_wav(&bytes[..60]).unwrap_err().contains("truncated"));
        assert!(parse_wav(b"RIFX....WAVE").unwrap_err().contains("not a WAV"));
        assert!(parse_wav(&bytes[..36]).is_err());
    }
}
