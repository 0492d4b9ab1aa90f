//! The kernel's stdout and stderr, as the notebook's stream output. File descriptors 1 and 2
//! become pipes whose reader threads forward the text, so everything lands in the cell that
//! ran it: Rhai's `print`, gapscope's warnings and notes, and libtorch's own messages.
//! `flush` makes the order exact: it writes a marker through each pipe and waits until its
//! reader has forwarded everything before it, so a cell's output precedes its result.

use std::io::Write;
use std::os::fd::RawFd;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Written through a pipe by `flush`; never forwarded. Control characters a script would not print.
const MARKER: &[u8] = b"\x00\x1bgapscope-flush\x1b\x00";

pub type Forward = Arc<dyn Fn(&'static str, &str) + Send + Sync>;

pub struct Capture {
    acks: Mutex<Vec<Receiver<()>>>,
}

fn pipe() -> std::io::Result<(RawFd, RawFd)> {
    let mut fds = [0 as libc::c_int; 2];
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((fds[0], fds[1]))
}

/// The longest tail of `buf` that could be the start of the marker, or an incomplete UTF-8
/// character: kept back until the next read completes it.
fn held_back(buf: &[u8]) -> usize {
    let marker = (1..MARKER.len().min(buf.len() + 1)).rev().find(|&k| buf.ends_with(&MARKER[..k])).unwrap_or(0);
    let utf8 = match std::str::from_utf8(buf) {
        Err(e) if e.error_len().is_none() => buf.len() - e.valid_up_to(),
        _ => 0,
    };
    marker.max(utf8)
}

fn forward_text(forward: &Forward, name: &'static str, bytes: &[u8]) {
    if !bytes.is_empty() {
        forward(name, &String::from_utf8_lossy(bytes));
    }
}

fn reader(fd: RawFd, name: &'static str, forward: Forward, ack: Sender<()>) {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = unsafe { libc::read(fd, chunk.as_mut_ptr().cast(), chunk.len()) };
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        if n <= 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n as usize]);
        while let Some(at) = buf.windows(MARKER.len()).position(|w| w == MARKER) {
            forward_text(&forward, name, &buf[..at]);
            buf.drain(..at + MARKER.len());
            let _ = ack.send(());
        }
        let upto = buf.len() - held_back(&buf);
        forward_text(&forward, name, &buf[..upto]);
        buf.drain(..upto);
    }
}

impl Capture {
    /// Points fds 1 and 2 at pipes forwarded to `forward(stream, text)`, stream "stdout" or
    /// "stderr". Returns a descriptor of the original stderr, for the kernel's own log.
    pub fn start(forward: Forward) -> std::io::Result<(Capture, RawFd)> {
        let log = unsafe { libc::dup(2) };
        if log < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut acks = Vec::new();
        for (fd, name) in [(1, "stdout"), (2, "stderr")] {
            let (read_end, write_end) = pipe()?;
            if unsafe { libc::dup2(write_end, fd) } < 0 {
                return Err(std::io::Error::last_os_error());
            }
            unsafe { libc::close(write_end) };
            let (tx, rx) = channel();
            acks.push(rx);
            let forward = forward.clone();
            std::thread::spawn(move || reader(read_end, name, forward, tx));
        }
        Ok((Capture { acks: Mutex::new(acks) }, log))
    }

    /// Returns once everything written to stdout and stderr so far has been forwarded (or after
    /// a second, should a reader be stuck).
    pub fn flush(&self) {
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        let acks = self.acks.lock().unwrap_or_else(|p| p.into_inner());
        for fd in [1, 2] {
            unsafe { libc::write(fd, MARKER.as_ptr().cast(), MARKER.len()) };
        }
        for rx in acks.iter() {
            let _ = rx.recv_timeout(Duration::from_secs(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_markers_and_characters_are_held_back() {
        assert_eq!(held_back(b"hello"), 0);
        assert_eq!(held_back(b"hello\x00\x1bgaps"), 6);
        assert_eq!(held_back("caf\u{e9}".as_bytes()), 0);
        assert_eq!(held_back(&"caf\u{e9}".as_bytes()[..4]), 1);
    }
}
