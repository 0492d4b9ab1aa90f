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
    /// SIGUSR1 (a sweep task near its time limit): stopped after writing a checkpoint.
    Checkpointed,
}

impl Reason {
    pub fn message(self) -> &'static str {
        match self {
            Reason::Signal => "interrupted (Ctrl-C or a termination signal)",
            Reason::Timeout => "stopped: the script ran past its --timeout",
            Reason::Checkpointed => "stopped, as SIGUSR1 asked, just after writing a checkpoint",
        }
    }

    /// The exit status a stopped `gapscope run` returns (as shells and `timeout(1)` do).
    pub fn exit_code(self) -> u8 {
        match self {
            Reason::Signal | Reason::Checkpointed => 130,
            Reason::Timeout => 124,
        }
    }

    fn code(self) -> u8 {
        match self {
            Reason::Signal => 1,
            Reason::Timeout => 2,
            Reason::Checkpointed => 3,
        }
    }

    fn from_code(c: u8) -> Option<Reason> {
        match c {
            1 => Some(Reason::Signal),
            2 => Some(Reason::Timeout),
            3 => Some(Reason::Checkpointed),
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
pub fn check(op: &str) -> crate::error::Result<()> {
    match pending() {
        Some(r) => {
            LAST.store(r.code(), Ordering::SeqCst);
            Err(crate::error::Error::arg(format!("{op}: {}", r.message())))
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

/// Raised by SIGUSR1 when `stop_at_checkpoint` is installed.
static AT_CHECKPOINT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_usr1(_: libc::c_int) {
    // Only an atomic store: all a signal handler may safely do.
    AT_CHECKPOINT.store(true, Ordering::SeqCst);
}

/// SIGUSR1 asks for a stop just after the next checkpoint is written, so a Slurm task warned of
/// its time limit loses no finished work. If no checkpoint comes within `grace`, the stop lands
/// at the next batch instead (the run then resumes from the checkpoint before).
pub fn stop_at_checkpoint(grace: std::time::Duration) {
    unsafe {
        libc::signal(libc::SIGUSR1, on_usr1 as *const () as libc::sighandler_t);
    }
    std::thread::spawn(move || loop {
        std::thread::sleep(std::time::Duration::from_millis(100));
        if AT_CHECKPOINT.load(Ordering::SeqCst) {
            eprintln!("SIGUSR1: stopping after the next checkpoint (or in {} s)", grace.as_secs());
            std::thread::sleep(grace);
            if pending().is_none() && last().is_none() {
                eprintln!("no checkpoint came within {} s: stopping at the next batch", grace.as_secs());
                request_because(Reason::Signal);
            }
            return;
        }
    });
}

/// Called after each checkpoint is written: raises the stop SIGUSR1 asked for.
pub fn checkpoint_written() {
    if AT_CHECKPOINT.load(Ordering::SeqCst) && pending().is_none() {
        request_because(Reason::Checkpointed);
    }
}
