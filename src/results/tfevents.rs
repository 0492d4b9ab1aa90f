//! TensorBoard's event-file format, written by hand: a TFRecord stream (length, masked CRC32C of
//! the length, payload, masked CRC32C of the payload) of `Event` protocol buffers. The handful
//! of messages TensorBoard reads for scalars, histograms and text are encoded here field by
//! field, so no protobuf compiler is needed at build time. Field numbers are those of
//! tensorflow/core/util/event.proto, framework/summary.proto and framework/tensor.proto.

/// One summary value of an event.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Scalar(f32),
    Histogram(Histogram),
    Text(String),
}

/// A histogram as TensorBoard draws it: bucket `i` counts values in (limit[i-1], limit[i]].
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    pub min: f64,
    pub max: f64,
    pub num: f64,
    pub sum: f64,
    pub sum_squares: f64,
    pub bucket_limit: Vec<f64>,
    pub bucket: Vec<f64>,
}

impl Histogram {
    /// `bins` equal-width buckets over the finite values' range (one bucket when all are equal).
    pub fn of(values: &[f64], bins: usize) -> Histogram {
        let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        let (min, max) = finite.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        if finite.is_empty() {
            return Histogram { min: 0.0, max: 0.0, num: 0.0, sum: 0.0, sum_squares: 0.0, bucket_limit: vec![], bucket: vec![] };
        }
        let bins = if max > min { bins.max(1) } else { 1 };
        let width = (max - min) / bins as f64;
        let bucket_limit: Vec<f64> = (1..=bins).map(|i| if i == bins { max } else { min + width * i as f64 }).collect();
        let mut bucket = vec![0.0; bins];
        for &v in &finite {
            let i = if width > 0.0 { (((v - min) / width) as usize).min(bins - 1) } else { 0 };
            bucket[i] += 1.0;
        }
        Histogram {
            min,
            max,
            num: finite.len() as f64,
            sum: finite.iter().sum(),
            sum_squares: finite.iter().map(|v| v * v).sum(),
            bucket_limit,
            bucket,
        }
    }
}

/// CRC-32C (Castagnoli), the checksum TFRecord uses.
pub fn crc32c(bytes: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, slot) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 { 0x82F6_3B78 ^ (c >> 1) } else { c >> 1 };
            }
            *slot = c;
        }
        t
    });
    !bytes.iter().fold(!0u32, |c, &b| table[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8))
}

/// TFRecord's masking, so a CRC of data that itself holds CRCs stays well distributed.
pub fn masked_crc(bytes: &[u8]) -> u32 {
    let c = crc32c(bytes);
    (c.rotate_right(15)).wrapping_add(0xA282_EAD8)
}

/// Appends one TFRecord around `payload`.
pub fn write_record(out: &mut Vec<u8>, payload: &[u8]) {
    let len = (payload.len() as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&masked_crc(payload).to_le_bytes());
}

// Protocol-buffer wire format: a key is (field << 3) | wire type; 0 varint, 1 64-bit,
// 2 length-delimited, 5 32-bit.
fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, ((field as u64) << 3) | wire as u64);
}

fn bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    key(out, field, 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn double_field(out: &mut Vec<u8>, field: u32, v: f64) {
    key(out, field, 1);
    out.extend_from_slice(&v.to_le_bytes());
}

fn packed_doubles(out: &mut Vec<u8>, field: u32, vs: &[f64]) {
    let body: Vec<u8> = vs.iter().flat_map(|v| v.to_le_bytes()).collect();
    bytes_field(out, field, &body);
}

fn histogram_proto(h: &Histogram) -> Vec<u8> {
    let mut m = Vec::new();
    double_field(&mut m, 1, h.min);
    double_field(&mut m, 2, h.max);
    double_field(&mut m, 3, h.num);
    double_field(&mut m, 4, h.sum);
    double_field(&mut m, 5, h.sum_squares);
    packed_doubles(&mut m, 6, &h.bucket_limit);
    packed_doubles(&mut m, 7, &h.bucket);
    m
}

/// Summary.Value: a scalar as simple_value, a histogram as histo, text as a string tensor
/// tagged for the text plugin.
fn summary_value(tag: &str, value: &Value) -> Vec<u8> {
    let mut m = Vec::new();
    bytes_field(&mut m, 1, tag.as_bytes());
    match value {
        Value::Scalar(x) => {
            key(&mut m, 2, 5);
            m.extend_from_slice(&x.to_le_bytes());
        }
        Value::Histogram(h) => bytes_field(&mut m, 5, &histogram_proto(h)),
        Value::Text(s) => {
            let mut plugin = Vec::new();
            bytes_field(&mut plugin, 1, b"text");
            let mut metadata = Vec::new();
            bytes_field(&mut metadata, 1, &plugin);
            bytes_field(&mut m, 9, &metadata);
            let mut tensor = Vec::new();
            key(&mut tensor, 1, 0);
            varint(&mut tensor, 7); // DT_STRING
            bytes_field(&mut tensor, 2, &[]); // a scalar: the empty shape
            bytes_field(&mut tensor, 8, s.as_bytes());
            bytes_field(&mut m, 8, &tensor);
        }
    }
    m
}

fn event_header(wall_time: f64, step: i64) -> Vec<u8> {
    let mut e = Vec::new();
    double_field(&mut e, 1, wall_time);
    key(&mut e, 2, 0);
    varint(&mut e, step as u64);
    e
}

/// An events file being assembled in memory: the version event first, then one event per
/// (step, values) added.
pub struct EventFile {
    bytes: Vec<u8>,
}

impl EventFile {
    pub fn new(wall_time: f64) -> EventFile {
        let mut e = event_header(wall_time, 0);
        bytes_field(&mut e, 3, b"brain.Event:2");
        let mut bytes = Vec::new();
        write_record(&mut bytes, &e);
        EventFile { bytes }
    }

    /// One event at `step` holding every (tag, value).
    pub fn add(&mut self, wall_time: f64, step: i64, values: &[(String, Value)]) {
        if values.is_empty() {
            return;
        }
        let mut summary = Vec::new();
        for (tag, v) in values {
            bytes_field(&mut summary, 1, &summary_value(tag, v));
        }
        let mut e = event_header(wall_time, step);
        bytes_field(&mut e, 5, &summary);
        write_record(&mut self.bytes, &e);
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_values() {
        // RFC 3720's test vectors and the catalogue's "123456789" check value.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xFFu8; 32]), 0x62A8_AB43);
    }

    #[test]
    fn varints_and_records_are_framed() {
        let mut v = Vec::new();
        varint(&mut v, 300);
        assert_eq!(v, [0xAC, 0x02]);
        let mut r = Vec::new();
        write_record(&mut r, b"abc");
        assert_eq!(r.len(), 8 + 4 + 3 + 4);
        assert_eq!(&r[..8], &3u64.to_le_bytes());
        assert_eq!(&r[12..15], b"abc");
    }

    #[test]
    fn histogram_counts_every_finite_value_once() {
        let h = Histogram::of(&[0.0, 1.0, 2.0, 3.0, f64::NAN], 3);
        assert_eq!(h.num, 4.0);
        assert_eq!(h.bucket.iter().sum::<f64>(), 4.0);
        assert_eq!(h.bucket_limit.last(), Some(&3.0));
        assert_eq!((h.min, h.max, h.sum, h.sum_squares), (0.0, 3.0, 6.0, 14.0));
        let flat = Histogram::of(&[2.0, 2.0], 30);
        assert_eq!((flat.bucket.clone(), flat.bucket_limit.clone()), (vec![2.0], vec![2.0]));
    }
}
