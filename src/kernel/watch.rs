//! The kernel ends with its client. A kernel whose notebook server or client died would
//! otherwise run on (about 480 MB each, with libtorch loaded) until someone kills it. Two signs,
//! checked once a second, as Jupyter's own kernels do:
//! - the parent process is gone: `JPY_PARENT_PID` (set by jupyter_client) no longer exists, or,
//!   without it, the kernel was handed to another parent (`getppid()` changed);
//! - the heartbeat stopped: after the first ping, none for `GAPSCOPE_KERNEL_HEARTBEAT_S` seconds
//!   (default 600; clients ping every few seconds, so only a client that is gone stays quiet).
//!
//! Either ends the process with a line on the original stderr saying which.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// When the heartbeat last answered a ping (milliseconds since the epoch; 0 = never).
#[derive(Clone, Default)]
pub struct Pings(Arc<AtomicU64>);

impl Pings {
    pub fn stamp(&self) {
        self.0.store(now_ms(), Ordering::Relaxed);
    }

    fn last(&self) -> Option<u64> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            t => Some(t),
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Why the kernel should end now, if it should.
fn reason(parent: Option<i32>, first_ppid: i32, pings: &Pings, quiet_limit: Duration) -> Option<String> {
    match parent {
        // kill(pid, 0) probes without signalling; ESRCH: no such process.
        Some(pid) if unsafe { libc::kill(pid, 0) } != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) => {
            return Some(format!("its parent process {pid} (JPY_PARENT_PID) ended; exiting"));
        }
        Some(_) => {}
        None => {
            let now = unsafe { libc::getppid() };
            if now != first_ppid {
                return Some(format!("its parent process {first_ppid} ended; exiting"));
            }
        }
    }
    let last = pings.last()?;
    let quiet = Duration::from_millis(now_ms().saturating_sub(last));
    (quiet > quiet_limit).then(|| format!("no heartbeat from the client for {} s; exiting", quiet.as_secs()))
}

/// Starts the watch; `log` writes to the kernel's original stderr.
pub fn start(pings: Pings, log: fn(&str)) {
    let parent = std::env::var("JPY_PARENT_PID").ok().and_then(|p| p.parse::<i32>().ok()).filter(|p| *p > 1);
    let first_ppid = unsafe { libc::getppid() };
    let quiet_limit =
        std::env::var("GAPSCOPE_KERNEL_HEARTBEAT_S").ok().and_then(|s| s.parse::<f64>().ok()).filter(|s| *s > 0.0).unwrap_or(600.0);
    let quiet_limit = Duration::from_secs_f64(quiet_limit);
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_secs(1));
        if let Some(why) = reason(parent, first_ppid, &pings, quiet_limit) {
            log(&why);
            std::process::exit(0);
        }
    });
}
