//! A short, stable checksum of a text (FNV-1a, 64 bits, as 16 hex digits): run records and sweep
//! manifests pin the script text a result came from. Not for security.

/// FNV-1a, 64 bits: enough to notice an edit, with no dependency.
pub fn checksum(text: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in text.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}
