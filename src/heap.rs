//! How many bytes gapscope's own heap holds (script values, frames, buffers; libtorch's tensors
//! are allocated by C++ and not counted), so a script value grown without end (a doubling string,
//! an array appended to forever) ends in an error instead of the kernel's OOM killer.
//!
//! Why not Rhai's own size limits: with any of them set, Rhai measures the whole value after every
//! assignment and mutating call, so building an array of n elements, or n levels deep, costs n²
//! (100,000 nesting levels took minutes). Counting allocations costs one atomic add each.
//!
//! The count is read between Rhai operations (`over_limit`, from the engine's progress hook).
//! Once an error is raised the next one waits until the heap grows by another half-limit, so a
//! REPL whose variable still holds the large value can run `s = ""` to let it go.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// The system allocator, counting what it hands out and takes back.
pub struct Counting;

static HELD: AtomicUsize = AtomicUsize::new(0);
/// 0 = not yet read from the environment.
static LIMIT: AtomicU64 = AtomicU64::new(0);
/// The level at which the next error is raised (0 = the limit).
static NEXT: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            HELD.fetch_add(layout.size(), Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            HELD.fetch_add(layout.size(), Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        HELD.fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                HELD.fetch_add(new_size - layout.size(), Relaxed);
            } else {
                HELD.fetch_sub(layout.size() - new_size, Relaxed);
            }
        }
        p
    }
}

/// Bytes the Rust heap holds now (0 when an embedding program installs its own allocator).
pub fn held() -> u64 {
    HELD.load(Relaxed) as u64
}

/// The most the heap may hold before a script is stopped: GAPSCOPE_MAX_HEAP_GB, else a quarter
/// of the machine's memory (a value being copied briefly needs twice its size, and libtorch's
/// tensors live outside this count).
pub fn limit() -> u64 {
    let known = LIMIT.load(Relaxed);
    if known != 0 {
        return known;
    }
    let from_env = std::env::var("GAPSCOPE_MAX_HEAP_GB").ok().and_then(|v| v.parse::<f64>().ok()).filter(|g| *g > 0.0);
    let bytes = match from_env {
        Some(gb) => (gb * 1e9) as u64,
        None => crate::limits::physical_memory().map_or(4 << 30, |m| m / 4),
    };
    LIMIT.store(bytes.max(1), Relaxed);
    bytes.max(1)
}

/// Set the limit for this process (the `--max-heap` flag; tests).
pub fn set_limit(bytes: u64) {
    LIMIT.store(bytes.max(1), Relaxed);
    NEXT.store(0, Relaxed);
}

/// The error to stop a script with, when the heap holds more than the limit; raised once per
/// half-limit of growth.
pub fn over_limit() -> Option<String> {
    let held = held();
    let limit = limit();
    let next = match NEXT.load(Relaxed) {
        0 => limit,
        n => n,
    };
    if held < limit {
        NEXT.store(0, Relaxed);
        return None;
    }
    if held < next {
        return None;
    }
    NEXT.store(held + limit / 2, Relaxed);
    Some(format!(
        "gapscope's own memory reached {} (script values, frames; tensors not counted), over its limit of {}: a value grown without \
         end, such as a string or array doubled in a loop, is the usual cause. Keep large data in tensors, or raise the limit with \
         --max-heap GB (or GAPSCOPE_MAX_HEAP_GB)",
        crate::limits::human(held as f64),
        crate::limits::human(limit as f64)
    ))
}
