//! Stopping a running script: Ctrl-C in the REPL, SIGINT / SIGTERM / SIGHUP or `--timeout` in
//! `gapscope run` and piped sessions. The signal handler (or the timeout's watchdog thread)
//! raises a flag with its reason; the engine's progress callback (between operations) turns it
//! into an error that a script's `try` cannot catch, and the long native loops (training epochs,
//! evaluation, mixture fits, t-SNE, k-means) check it between their steps, so a stop lands
//! within one batch or iteration. Every file gapscope writes is written atomically, so a stop
//! never leaves a half-written one.

use std::sync::atomic::{AtomicU8, Ordering};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Ctrl-C, SIGINT, SIGTERM or SIGHUP.
    Signal,
    /// `--timeout` ran out.
    Timeout,
}

impl Reason {
    pub fn message(self) -> &'static str {
        match self {
            Reason::Signal => "interrupted (Ctrl-C or a termination signal)",
            Reason::Timeout => "stopped: the script ran past its --timeout",
        }
    }

    /// The exit status a stopped `gapscope run` returns (as shells and `timeout(1)` do).
    pub fn exit_code(self) -> u8 {
        match self {
            Reason::Signal => 130,
            Reason::Timeout => 124,
        }
    }

    fn code(self) -> u8 {
        match self {
            Reason::Signal => 1,
            Reason::Timeout => 2,
        }
    }

    fn from_code(c: u8) -> Option<Reason> {
        match c {
            1 => Some(Reason::Signal),
            2 => Some(Reason::Timeout),
            _ => None,
        }
    }
}

static PENDING: AtomicU8 = AtomicU8::new(0);
/// The reason of the last stop that was taken, for the exit status.
static LAST: AtomicU8 = AtomicU8::new(0);

/// A stop requested by Ctrl-C (the REPL's handler).
pub fn request() {
    request_because(Reason::Signal);
}

pub fn request_because(reason: Reason) {
    PENDING.store(reason.code(), Ordering::SeqCst);
}

/// The pending stop, once: reading it clears it (and remembers it as the last).
pub fn take() -> Option<Reason> {
    let r = Reason::from_code(PENDING.swap(0, Ordering::SeqCst));
    if let Some(r) = r {
        LAST.store(r.code(), Ordering::SeqCst);
    }
    r
}

/// Whether a stop is pending, without clearing it (native loops check this between steps).
pub fn pending() -> Option<Reason> {
    Reason::from_code(PENDING.load(Ordering::SeqCst))
}

/// An error for a native loop to return when a stop is pending; the flag stays raised so the
/// engine also ends the script (a `try` around the call does not swallow the stop).
pub fn check(op: &str) -> crate::Result<()> {
    match pending() {
        Some(r) => {
            LAST.store(r.code(), Ordering::SeqCst);
            Err(crate::Error::arg(format!("{op}: {}", r.message())))
        }
        None => Ok(()),
    }
}

/// The reason of the last stop taken or checked, if any.
pub fn last() -> Option<Reason> {
    Reason::from_code(LAST.load(Ordering::SeqCst))
}

pub fn clear() {
    PENDING.store(0, Ordering::SeqCst);
}

/// Forgets both the pending and the last stop (before each piped statement).
pub fn reset() {
    PENDING.store(0, Ordering::SeqCst);
    LAST.store(0, Ordering::SeqCst);
}

/// SIGINT, SIGTERM and SIGHUP stop the running script at its next statement or batch; a second
/// signal while the first is still pending ends the process at once (exit 130: every file is
/// written atomically, so nothing is left half-written).
pub fn install_stop_handler() {
    let _ = ctrlc::set_handler(|| {
        if pending().is_some() {
            eprintln!("stopping now (second signal)");
            std::process::exit(130);
        }
        request_because(Reason::Signal);
    });
}

/// `--timeout`: after `seconds`, a stop with reason Timeout; if the script has not stopped 10 s
/// later (inside one long libtorch call), the process ends with exit 124.
pub fn start_watchdog(seconds: f64) {
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs_f64(seconds));
        request_because(Reason::Timeout);
        std::thread::sleep(std::time::Duration::from_secs(10));
        eprintln!("stopped: the script ran past its --timeout of {seconds} s and did not reach a stopping point within 10 s");
        std::process::exit(124);
    });
}

