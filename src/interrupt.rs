//! Ctrl-C while a script runs in the REPL: the signal handler raises a flag, and the engine's
//! progress callback (called between operations) turns it into a script error, so the session
//! and its variables survive.

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

pub fn request() {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// True once per request: reading the flag clears it.
pub fn take() -> bool {
    INTERRUPTED.swap(false, Ordering::SeqCst)
}

pub fn clear() {
    INTERRUPTED.store(false, Ordering::SeqCst);
}
