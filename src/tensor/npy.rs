//! NumPy `.npy` reading, checked: the header's shape is a claim, not a fact. The number of
//! values it implies is computed with overflow checks and compared against the bytes the file
//! actually holds before anything is copied (libtorch's own reader trusts the header and reads
//! past the end of a short file).
//!
//! Format (numpy.lib.format): magic `\x93NUMPY`, version (1, 2 or 3), a little-endian header
//! length (u16 for 1.x, u32 for 2.x/3.x), a Python dict literal
//! `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`, then the raw data.

use crate::error::{Error, Result};
use tch::{Kind, Tensor};

/// The parsed header: element type, byte order, layout and shape.
#[derive(Debug, PartialEq)]
pub struct Header {
    pub kind: Kind,
    pub elem_size: usize,
    pub big_endian: bool,
    pub fortran_order: bool,
    pub shape: Vec<i64>,
}

fn dtype(descr: &str) -> std::result::Result<(Kind, usize, bool), String> {
    let (order, code) = match descr.as_bytes().first() {
        Some(b'<') | Some(b'|') | Some(b'=') => (false, &descr[1..]),
        Some(b'>') => (true, &descr[1..]),
        _ => (false, descr),
    };
    let (kind, size) = match code {
        "f2" => (Kind::Half, 2),
        "f4" => (Kind::Float, 4),
        "f8" => (Kind::Double, 8),
        "i1" => (Kind::Int8, 1),
        "i2" => (Kind::Int16, 2),
        "i4" => (Kind::Int, 4),
        "i8" => (Kind::Int64, 8),
        "u1" => (Kind::Uint8, 1),
        "b1" => (Kind::Bool, 1),
        other => return Err(format!("unsupported dtype '{other}' (use float16/32/64, int8/16/32/64, uint8 or bool)")),
    };
    Ok((kind, size, order && size > 1))
}

/// The value of `'key':` in the header dict, up to the next top-level comma or closing brace.
fn field<'a>(header: &'a str, key: &str) -> std::result::Result<&'a str, String> {
    let tag = format!("'{key}'");
    let at = header.find(&tag).ok_or_else(|| format!("header has no {tag}"))?;
    let rest = header[at + tag.len()..].trim_start();
    let rest = rest.strip_prefix(':').ok_or_else(|| format!("header: no ':' after {tag}"))?.trim_start();
    if let Some(inner) = rest.strip_prefix('(') {
        let end = inner.find(')').ok_or("header: unclosed shape tuple")?;
        return Ok(&inner[..end]);
    }
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Ok(rest[..end].trim())
}

/// Parses the header that starts at byte 0; returns it and the offset of the data.
pub fn parse_header(bytes: &[u8]) -> std::result::Result<(Header, usize), String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not a .npy file (no \\x93NUMPY magic)".into());
    }
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
        v => return Err(format!("unsupported .npy version {v}")),
    };
    let end = start
        .checked_add(len)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| format!("truncated header: it claims {len} bytes, the file has {}", bytes.len().saturating_sub(start)))?;
    let text = std::str::from_utf8(&bytes[start..end]).map_err(|_| "header is not text".to_string())?;
    let descr = field(text, "descr")?.trim_matches(|c| c == '\'' || c == '"');
    let (kind, elem_size, big_endian) = dtype(descr)?;
    let fortran_order = match field(text, "fortran_order")? {
        "True" => true,
        "False" => false,
        other => return Err(format!("header: fortran_order is '{other}', expected True or False")),
    };
    let shape = field(text, "shape")?
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.trim_end_matches('L').parse::<i64>().ok().filter(|&d| d >= 0).ok_or_else(|| format!("header: bad dimension '{s}' in shape"))
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok((Header { kind, elem_size, big_endian, fortran_order, shape }, end))
}

/// Decodes a whole .npy file's bytes into a tensor (the error is a message without the path).
pub fn decode(bytes: &[u8]) -> std::result::Result<Tensor, String> {
    let (h, offset) = parse_header(bytes)?;
    let count = h.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d as usize)).ok_or("shape's element count overflows")?;
    let need = count.checked_mul(h.elem_size).ok_or("shape's byte count overflows")?;
    let have = bytes.len() - offset;
    if have < need {
        return Err(format!("truncated: the header's shape {:?} needs {need} bytes of data, the file holds {have}", h.shape));
    }
    let mut data = bytes[offset..offset + need].to_vec();
    if h.big_endian {
        data.chunks_exact_mut(h.elem_size).for_each(|c| c.reverse());
    }
    let torch_err = |e| crate::error::clean_torch_message(&format!("{e}"));
    if h.fortran_order {
        // Column-major: the data is the transpose's row-major layout.
        let reversed: Vec<i64> = h.shape.iter().rev().copied().collect();
        let t = Tensor::f_from_data_size(&data, &reversed, h.kind).map_err(torch_err)?;
        let dims: Vec<i64> = (0..reversed.len() as i64).rev().collect();
        return t.f_permute(&dims[..]).and_then(|t| t.f_contiguous()).map_err(torch_err);
    }
    Tensor::f_from_data_size(&data, &h.shape, h.kind).map_err(torch_err)
}

pub fn load(path: &std::path::Path) -> Result<Tensor> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode(&bytes).map_err(|m| Error::io(path, m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
        let mut header =
            format!("{{'descr': '{descr}', 'fortran_order': {}, 'shape': ({shape}), }}", if fortran { "True" } else { "False" });
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend((header.len() as u16).to_le_bytes());
        out.extend(header.as_bytes());
        out.extend(data);
        out
    }

    fn f32s(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn reads_c_and_fortran_order_and_big_endian() {
        let c = decode(&npy("<f4", false, "2, 3", &f32s(&[1., 2., 3., 4., 5., 6.]))).unwrap();
        assert_eq!(c.size(), [2, 3]);
        assert_eq!(Vec::<f32>::try_from(&c.flatten(0, -1)).unwrap(), [1., 2., 3., 4., 5., 6.]);
        // np.asfortranarray([[1,2,3],[4,5,6]]) stores 1,4,2,5,3,6.
        let f = decode(&npy("<f4", true, "2, 3", &f32s(&[1., 4., 2., 5., 3., 6.]))).unwrap();
        assert!(f.equal(&c));
        let be: Vec<u8> = [1i32, -2].iter().flat_map(|x| x.to_be_bytes()).collect();
        assert_eq!(Vec::<i32>::try_from(&decode(&npy(">i4", false, "2,", &be)).unwrap()).unwrap(), [1, -2]);
        let scalar = decode(&npy("<f8", false, "", &7.5f64.to_le_bytes())).unwrap();
        assert_eq!(scalar.size(), Vec::<i64>::new());
    }

    #[test]
    fn refuses_a_shape_the_data_cannot_hold() {
        // The defect this reader exists for: a header claiming more values than the file has.
        let short = npy("<f4", false, "1000, 1000", &f32s(&[1.0, 2.0]));
        assert!(decode(&short).unwrap_err().contains("truncated"), "{:?}", decode(&short).err());
        let huge = npy("<f8", false, "4611686018427387904, 4", &[]);
        assert!(decode(&huge).unwrap_err().contains("overflows"));
        let negative = npy("<f4", false, "-1,", &[]);
        assert!(decode(&negative).unwrap_err().contains("bad dimension"));
        let mut cut_header = npy("<f4", false, "2,", &f32s(&[1.0, 2.0]));
        cut_header.truncate(20);
        assert!(decode(&cut_header).unwrap_err().contains("truncated header"));
        assert!(decode(b"\x93NUMPY\x01").is_err());
        assert!(decode(&npy("<c16", false, "1,", &[0; 16])).unwrap_err().contains("unsupported dtype"));
    }

    #[test]
    fn every_truncation_of_a_valid_file_is_an_error_not_a_read() {
        let good = npy("<f8", false, "3, 4", &(0..12).flat_map(|i| (i as f64).to_le_bytes()).collect::<Vec<u8>>());
        assert!(decode(&good).is_ok());
        for cut in 0..good.len() {
            assert!(decode(&good[..cut]).is_err(), "a file cut at {cut} bytes was accepted");
        }
    }
}
