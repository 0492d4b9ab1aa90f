//! Sizes derived from input, checked before anything is allocated: a corrupt header or a typo
//! (a label of 10^12, n: 1e12) must be an error naming what was asked for, not an abort of the
//! whole process when the allocation fails (Rust aborts on a failed allocation; the REPL would
//! lose its session). Every buffer whose length comes from a user's value or file goes through
//! `elements` (overflow-checked product, capped) and `try_vec` (fallible allocation).

use crate::error::{Error, Result};

/// The most bytes one buffer may take: GAPSCOPE_MAX_ALLOC_GB, else the machine's memory.
pub fn max_bytes() -> u64 {
    if let Some(gb) = std::env::var("GAPSCOPE_MAX_ALLOC_GB").ok().and_then(|v| v.parse::<f64>().ok()).filter(|g| *g > 0.0) {
        return (gb * 1e9) as u64;
    }
    physical_memory().unwrap_or(64 << 30)
}

pub(crate) fn physical_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

pub(crate) fn human(bytes: f64) -> String {
    if bytes >= 1e9 {
        format!("{:.1} GB", bytes / 1e9)
    } else {
        format!("{:.1} MB", bytes / 1e6)
    }
}

/// The element count of `dims` (each ≥ 0) for a buffer of `elem_bytes`-byte values, refused when
/// it overflows or exceeds `max_bytes()`.
pub fn elements(what: &str, dims: &[u64], elem_bytes: u64) -> Result<usize> {
    let mut n: u64 = 1;
    for &d in dims {
        n = n.checked_mul(d).ok_or_else(|| Error::arg(format!("{what}: the size {dims:?} overflows")))?;
    }
    let bytes = n.checked_mul(elem_bytes).ok_or_else(|| Error::arg(format!("{what}: the size {dims:?} overflows")))?;
    let cap = max_bytes();
    if bytes > cap {
        return Err(Error::arg(format!(
            "{what}: {dims:?} needs {} of memory, more than the {} this machine allows (GAPSCOPE_MAX_ALLOC_GB raises the cap); check the sizes you gave",
            human(bytes as f64),
            human(cap as f64)
        )));
    }
    usize::try_from(n).map_err(|_| Error::arg(format!("{what}: the size {dims:?} does not fit in memory")))
}

/// A vector of `n` copies of `fill`, allocated fallibly.
pub fn try_vec<T: Clone>(what: &str, n: usize, fill: T) -> Result<Vec<T>> {
    let mut v = try_with_capacity(what, n)?;
    v.resize(n, fill);
    Ok(v)
}

/// An empty vector with room for `n` values, allocated fallibly.
pub fn try_with_capacity<T>(what: &str, n: usize) -> Result<Vec<T>> {
    elements(what, &[n as u64], std::mem::size_of::<T>().max(1) as u64)?;
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| Error::arg(format!("{what}: could not allocate {} for {n} values", human((n * std::mem::size_of::<T>()) as f64))))?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_or_overflowing_sizes_are_errors() {
        assert!(elements("x", &[u64::MAX, 2], 4).unwrap_err().to_string().contains("overflows"));
        assert!(elements("x", &[1 << 40, 1 << 10], 8).unwrap_err().to_string().contains("more than"));
        assert_eq!(elements("x", &[3, 4], 8).unwrap(), 12);
        assert!(try_vec("x", usize::MAX / 2, 0u8).is_err());
        assert_eq!(try_vec("x", 3, 7u8).unwrap(), vec![7, 7, 7]);
    }
}
