//! The part of ZeroMQ a Jupyter kernel needs, over plain TCP: ZMTP 3.0 with the NULL security
//! mechanism (what Jupyter's local connections use; messages are signed one level up), and
//! the three socket roles a kernel binds: ROUTER (shell, control, stdin), PUB (iopub) and an
//! echoing REP (heartbeat). Written here rather than linking libzmq (a system library) or an
//! async ZeroMQ crate (a runtime to compile): threads and blocking sockets are plenty for one
//! notebook's traffic. Wire format from the ZMTP 3.0 specification (rfc.zeromq.org/spec/23).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

/// A multipart message: its frames in order.
pub type Message = Vec<Vec<u8>>;

const MORE: u8 = 0x01;
const LONG: u8 = 0x02;
const COMMAND: u8 = 0x04;

/// Our greeting: signature, version 3.0, mechanism NULL, not as-server, filler (64 bytes).
fn greeting() -> [u8; 64] {
    let mut g = [0u8; 64];
    g[0] = 0xFF;
    g[8] = 0x01;
    g[9] = 0x7F;
    g[10] = 3;
    g[11] = 0;
    g[12..16].copy_from_slice(b"NULL");
    g
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// One frame: (flags, body).
fn read_frame(s: &mut impl Read) -> io::Result<(u8, Vec<u8>)> {
    let mut flags = [0u8; 1];
    s.read_exact(&mut flags)?;
    let len = if flags[0] & LONG != 0 {
        let mut b = [0u8; 8];
        s.read_exact(&mut b)?;
        u64::from_be_bytes(b)
    } else {
        let mut b = [0u8; 1];
        s.read_exact(&mut b)?;
        b[0] as u64
    };
    // The length is the peer's word: read what actually arrives rather than allocating it up
    // front, so a garbage length ends the connection instead of the process.
    let mut body = Vec::new();
    s.take(len).read_to_end(&mut body)?;
    if body.len() as u64 != len {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the peer closed inside a frame"));
    }
    Ok((flags[0], body))
}

fn frame_bytes(out: &mut Vec<u8>, flags: u8, body: &[u8]) {
    if body.len() > 255 {
        out.push(flags | LONG);
        out.extend_from_slice(&(body.len() as u64).to_be_bytes());
    } else {
        out.push(flags);
        out.push(body.len() as u8);
    }
    out.extend_from_slice(body);
}

/// Writes a whole multipart message in one buffer, so concurrent writers never interleave.
pub fn write_message(s: &mut impl Write, frames: &[Vec<u8>]) -> io::Result<()> {
    let mut out = Vec::with_capacity(frames.iter().map(|f| f.len() + 9).sum());
    for (i, f) in frames.iter().enumerate() {
        frame_bytes(&mut out, if i + 1 < frames.len() { MORE } else { 0 }, f);
    }
    s.write_all(&out)?;
    s.flush()
}

/// The next message; commands the peer sends after the handshake (none in ZMTP 3.0 without
/// heartbeating; SUBSCRIBE in 3.1) are skipped.
pub fn read_message(s: &mut impl Read) -> io::Result<Message> {
    loop {
        let mut frames = Vec::new();
        loop {
            let (flags, body) = read_frame(s)?;
            if flags & COMMAND != 0 {
                break;
            }
            frames.push(body);
            if flags & MORE == 0 {
                return Ok(frames);
            }
        }
    }
}

/// The READY command with our socket type; the peer's properties come back.
fn handshake(s: &mut TcpStream, socket_type: &str) -> io::Result<HashMap<String, Vec<u8>>> {
    s.write_all(&greeting())?;
    let mut peer = [0u8; 64];
    s.read_exact(&mut peer)?;
    if peer[0] != 0xFF || peer[9] != 0x7F {
        return Err(bad("not a ZeroMQ peer"));
    }
    if peer[10] < 3 {
        return Err(bad(format!("ZMTP {}.{} peer; 3.0 or later is needed", peer[10], peer[11])));
    }
    if &peer[12..16] != b"NULL" {
        return Err(bad("the peer asks for a security mechanism other than NULL"));
    }
    let mut ready = Vec::new();
    ready.push(5);
    ready.extend_from_slice(b"READY");
    ready.push(11);
    ready.extend_from_slice(b"Socket-Type");
    ready.extend_from_slice(&(socket_type.len() as u32).to_be_bytes());
    ready.extend_from_slice(socket_type.as_bytes());
    let mut out = Vec::new();
    frame_bytes(&mut out, COMMAND, &ready);
    s.write_all(&out)?;
    let (flags, body) = read_frame(s)?;
    if flags & COMMAND == 0 || body.len() < 6 || &body[1..6] != b"READY" {
        return Err(bad("the peer did not send READY"));
    }
    parse_properties(&body[6..])
}

fn parse_properties(mut b: &[u8]) -> io::Result<HashMap<String, Vec<u8>>> {
    let mut props = HashMap::new();
    while !b.is_empty() {
        let n = b[0] as usize;
        if b.len() < 1 + n + 4 {
            return Err(bad("a truncated READY property"));
        }
        let name = String::from_utf8_lossy(&b[1..1 + n]).to_string();
        let len = u32::from_be_bytes(b[1 + n..5 + n].try_into().unwrap_or([0; 4])) as usize;
        if b.len() < 5 + n + len {
            return Err(bad("a truncated READY property value"));
        }
        props.insert(name, b[5 + n..5 + n + len].to_vec());
        b = &b[5 + n + len..];
    }
    Ok(props)
}

/// Binds `ip:port` (port 0: any free one); returns the listener and the port bound.
pub fn bind(ip: &str, port: u16) -> io::Result<(TcpListener, u16)> {
    let l = TcpListener::bind((ip, port))?;
    let p = l.local_addr()?.port();
    Ok((l, p))
}

/// The connected peers of a ROUTER, by routing identity.
#[derive(Clone, Default)]
pub struct Router {
    peers: Arc<Mutex<HashMap<Vec<u8>, TcpStream>>>,
}

impl Router {
    /// Accepts peers on `listener` for ever; each message received goes to `inbox` with the
    /// sender's identity as its first frame (as a ZeroMQ ROUTER delivers it).
    pub fn serve(&self, listener: TcpListener, tag: &'static str, inbox: Sender<(&'static str, Message)>) {
        let peers = self.peers.clone();
        std::thread::spawn(move || {
            static NEXT: AtomicU32 = AtomicU32::new(1);
            for conn in listener.incoming() {
                let Ok(mut s) = conn else { continue };
                let _ = s.set_nodelay(true);
                let peers = peers.clone();
                let inbox = inbox.clone();
                std::thread::spawn(move || {
                    let Ok(props) = handshake(&mut s, "ROUTER") else { return };
                    let identity = match props.get("Identity") {
                        Some(id) if !id.is_empty() => id.clone(),
                        // ZeroMQ's own generated identities: a zero byte, then a counter.
                        _ => {
                            let mut id = vec![0u8];
                            id.extend_from_slice(&NEXT.fetch_add(1, Ordering::SeqCst).to_be_bytes());
                            id
                        }
                    };
                    let Ok(writer) = s.try_clone() else { return };
                    peers.lock().unwrap_or_else(|p| p.into_inner()).insert(identity.clone(), writer);
                    while let Ok(mut msg) = read_message(&mut s) {
                        msg.insert(0, identity.clone());
                        if inbox.send((tag, msg)).is_err() {
                            break;
                        }
                    }
                    peers.lock().unwrap_or_else(|p| p.into_inner()).remove(&identity);
                });
            }
        });
    }

    /// Sends `frames` to the peer named by the first frame (dropped if it has gone, as ZeroMQ does).
    pub fn send(&self, frames: &[Vec<u8>]) {
        let Some((id, rest)) = frames.split_first() else { return };
        let stream = self.peers.lock().unwrap_or_else(|p| p.into_inner()).get(id).and_then(|s| s.try_clone().ok());
        if let Some(mut s) = stream {
            let _ = write_message(&mut s, rest);
        }
    }
}

/// A PUB socket: every message goes to every subscriber. Subscribers' topic filters are not
/// applied here (Jupyter's subscribe to everything, and ZeroMQ's SUB filters on its side too).
#[derive(Clone, Default)]
pub struct Publisher {
    subscribers: Arc<Mutex<Vec<TcpStream>>>,
}

impl Publisher {
    pub fn serve(&self, listener: TcpListener) {
        let subs = self.subscribers.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut s) = conn else { continue };
                let _ = s.set_nodelay(true);
                let subs = subs.clone();
                std::thread::spawn(move || {
                    if handshake(&mut s, "PUB").is_err() {
                        return;
                    }
                    let Ok(writer) = s.try_clone() else { return };
                    subs.lock().unwrap_or_else(|p| p.into_inner()).push(writer);
                    // Read (and ignore) subscriptions until the peer goes.
                    while read_message(&mut s).is_ok() {}
                });
            }
        });
    }

    pub fn send(&self, frames: &[Vec<u8>]) {
        let mut subs = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        subs.retain_mut(|s| write_message(s, frames).is_ok());
    }
}

/// The heartbeat: a REP socket that sends every message straight back (envelope included, which
/// is what a REP's reply to a REQ looks like on the wire); `on_ping` runs for each.
pub fn serve_echo(listener: TcpListener, on_ping: std::sync::Arc<dyn Fn() + Send + Sync>) {
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { continue };
            let _ = s.set_nodelay(true);
            let on_ping = on_ping.clone();
            std::thread::spawn(move || {
                if handshake(&mut s, "REP").is_err() {
                    return;
                }
                while let Ok(msg) = read_message(&mut s) {
                    on_ping();
                    if write_message(&mut s, &msg).is_err() {
                        break;
                    }
                }
            });
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_short_and_long() {
        let msg = vec![b"id".to_vec(), vec![], vec![7u8; 300]];
        let mut wire = Vec::new();
        write_message(&mut wire, &msg).unwrap();
        // short frame: flags, 1-byte size; long: flags, 8-byte size.
        assert_eq!(&wire[..4], &[MORE, 2, b'i', b'd']);
        assert_eq!(&wire[4..6], &[MORE, 0]);
        assert_eq!(wire[6], LONG);
        assert_eq!(read_message(&mut wire.as_slice()).unwrap(), msg);
    }

    #[test]
    fn a_lying_length_is_an_error_not_an_allocation() {
        // A long frame claiming 2^62 bytes, then three: the read ends at the stream's end.
        let mut wire = vec![LONG];
        wire.extend_from_slice(&(1u64 << 62).to_be_bytes());
        wire.extend_from_slice(b"abc");
        assert_eq!(read_frame(&mut wire.as_slice()).unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn ready_properties_parse() {
        let mut b = Vec::new();
        b.push(8);
        b.extend_from_slice(b"Identity");
        b.extend_from_slice(&3u32.to_be_bytes());
        b.extend_from_slice(b"abc");
        let p = parse_properties(&b).unwrap();
        assert_eq!(p["Identity"], b"abc");
        assert!(parse_properties(&b[..5]).is_err());
    }
}
