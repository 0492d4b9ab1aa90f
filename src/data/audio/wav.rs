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
            let available = b.len().saturating_sub(body);
            if size > available {
                return Err(format!("truncated: the data chunk says {size} bytes but {available} remain"));
            }
            let data = &b[body..body + size];
            // One monomorphised loop per encoding: a boxed decoder per sample cost more than
            // the file read (a 2.5 s clip took 4 ms in the dev build).
            let c = channels as usize;
            let samples = match (tag, bits) {
                (1, 8) => mix(data, c, 1, |s| (s[0] as f32 - 128.0) / 128.0),
                (1, 16) => mix(data, c, 2, |s| i16::from_le_bytes([s[0], s[1]]) as f32 / 32768.0),
                (1, 24) => mix(data, c, 3, |s| (i32::from_le_bytes([0, s[0], s[1], s[2]]) >> 8) as f32 / 8_388_608.0),
                (1, 32) => mix(data, c, 4, |s| (i32::from_le_bytes([s[0], s[1], s[2], s[3]]) as f64 / 2_147_483_648.0) as f32),
                (3, 32) => mix(data, c, 4, |s| f32::from_le_bytes([s[0], s[1], s[2], s[3]])),
                (3, 64) => mix(data, c, 8, |s| f64::from_le_bytes(s[..8].try_into().expect("8 bytes")) as f32),
                _ => return Err(format!("unsupported encoding (format tag {tag}, {bits} bits); convert to 16-bit PCM")),
            };
            return Ok(Wav { sample_rate: rate, samples });
        }
        pos = body + size + (size & 1); // chunks are word-aligned
    }
    Err(if format.is_none() { "no fmt chunk".into() } else { "no data chunk (truncated?)".into() })
}

/// The channels' mean per frame of interleaved samples `width` bytes wide (mono: each sample).
fn mix(data: &[u8], channels: usize, width: usize, decode: impl Fn(&[u8]) -> f32) -> Vec<f32> {
    if channels == 1 {
        return data.chunks_exact(width).map(decode).collect();
    }
    let inv = 1.0 / channels as f32;
    data.chunks_exact(width * channels).map(|frame| frame.chunks_exact(width).map(&decode).sum::<f32>() * inv).collect()
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

    /// A WAV of `channels` interleaved channels, format `tag` (1 PCM, 3 float), `bits` wide.
    fn wav_bytes(tag: u16, channels: u16, bits: u16, data: &[u8]) -> Vec<u8> {
        let mut out = b"RIFF\0\0\0\0WAVEfmt ".to_vec();
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&channels.to_le_bytes());
        out.extend_from_slice(&8000u32.to_le_bytes());
        out.extend_from_slice(&(8000 * (bits as u32 / 8) * channels as u32).to_le_bytes());
        out.extend_from_slice(&(bits / 8 * channels).to_le_bytes());
        out.extend_from_slice(&bits.to_le_bytes());
        out.extend_from_slice(b"data");
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn every_encoding_decodes_and_channels_are_averaged() {
        // Stereo 16-bit: frames (16384, -16384) and (32767, 0) average to 0 and 32767/65536.
        let d: Vec<u8> = [16384i16, -16384, 32767, 0].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(parse_wav(&wav_bytes(1, 2, 16, &d)).unwrap().samples, vec![0.0, 32767.0 / 65536.0]);
        assert_eq!(parse_wav(&wav_bytes(1, 1, 8, &[0, 128, 255])).unwrap().samples, vec![-1.0, 0.0, 127.0 / 128.0]);
        // 24-bit: -2^22 and 2^22 - 1 over 2^23.
        let d = [0x00, 0x00, 0xC0, 0xFF, 0xFF, 0x3F];
        assert_eq!(parse_wav(&wav_bytes(1, 1, 24, &d)).unwrap().samples, vec![-0.5, 4_194_303.0 / 8_388_608.0]);
        let d: Vec<u8> = [i32::MIN, 1 << 30].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(parse_wav(&wav_bytes(1, 1, 32, &d)).unwrap().samples, vec![-1.0, 0.5]);
        // Float, three channels: (0.25, 0.5, 0.75) averages to 0.5.
        let d: Vec<u8> = [0.25f32, 0.5, 0.75].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(parse_wav(&wav_bytes(3, 3, 32, &d)).unwrap().samples, vec![0.5]);
        let d: Vec<u8> = [-0.125f64].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(parse_wav(&wav_bytes(3, 1, 64, &d)).unwrap().samples, vec![-0.125]);
        // A trailing partial frame is dropped, as before.
        assert_eq!(parse_wav(&wav_bytes(1, 2, 16, &[0, 0, 0, 0, 1])).unwrap().samples.len(), 1);
        assert!(parse_wav(&wav_bytes(2, 1, 16, &[0, 0])).unwrap_err().contains("unsupported"));
    }
}
