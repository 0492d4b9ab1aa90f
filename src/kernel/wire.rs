//! Jupyter's message framing over ZeroMQ (the messaging protocol, version 5.3): routing
//! identities, the `<IDS|MSG>` delimiter, an HMAC-SHA256 signature of the four JSON parts,
//! then header, parent header, metadata and content.

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::sync::atomic::{AtomicU64, Ordering};

pub const DELIMITER: &[u8] = b"<IDS|MSG>";
pub const PROTOCOL_VERSION: &str = "5.3";

/// A received message.
#[derive(Clone, Debug)]
pub struct Incoming {
    pub identities: Vec<Vec<u8>>,
    pub header: Value,
    pub parent_header: Value,
    pub metadata: Value,
    pub content: Value,
}

impl Incoming {
    pub fn msg_type(&self) -> &str {
        self.header.get("msg_type").and_then(|v| v.as_str()).unwrap_or("")
    }
}

/// Signs and builds messages for one kernel session.
pub struct Signer {
    key: Vec<u8>,
    pub session: String,
}

/// A fresh 32-hex-digit id (a message id, the kernel's session id): random bits from the
/// standard library's hasher seeds, and a counter so two ids never repeat.
pub fn new_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNT.fetch_add(1, Ordering::SeqCst));
    let a = h.finish();
    let mut h2 = std::collections::hash_map::RandomState::new().build_hasher();
    h2.write_u64(a);
    format!("{:016x}{:016x}", a, h2.finish())
}

fn now_iso() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

impl Signer {
    pub fn new(key: &str) -> Signer {
        Signer { key: key.as_bytes().to_vec(), session: new_id() }
    }

    /// The hex HMAC-SHA256 of the parts; empty when the connection has no key (signing off).
    pub fn sign(&self, parts: &[&[u8]]) -> String {
        if self.key.is_empty() {
            return String::new();
        }
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else { return String::new() };
        for p in parts {
            mac.update(p);
        }
        mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Splits and checks a received message.
    pub fn parse(&self, frames: Vec<Vec<u8>>) -> Result<Incoming, String> {
        let at = frames.iter().position(|f| f.as_slice() == DELIMITER).ok_or("no <IDS|MSG> delimiter")?;
        if frames.len() < at + 6 {
            return Err("fewer than the five parts after the delimiter".into());
        }
        let identities = frames[..at].to_vec();
        let signature = String::from_utf8_lossy(&frames[at + 1]).to_string();
        let parts: Vec<&[u8]> = frames[at + 2..at + 6].iter().map(|f| f.as_slice()).collect();
        if !self.key.is_empty() {
            let expected = self.sign(&parts);
            // The length check first, then a comparison that does not stop at the first difference.
            if expected.len() != signature.len() || expected.bytes().zip(signature.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) != 0 {
                return Err("bad signature".into());
            }
        }
        let json = |b: &[u8]| serde_json::from_slice::<Value>(b).map_err(|e| format!("a part is not JSON ({e})"));
        Ok(Incoming {
            identities,
            header: json(parts[0])?,
            parent_header: json(parts[1])?,
            metadata: json(parts[2])?,
            content: json(parts[3])?,
        })
    }

    /// A message of `msg_type` in reply to (or caused by) `parent`, to `identities`.
    pub fn build(&self, identities: &[Vec<u8>], msg_type: &str, parent: &Value, content: &Value) -> Vec<Vec<u8>> {
        let header = json!({
            "msg_id": new_id(),
            "session": self.session,
            "username": "gapscope",
            "date": now_iso(),
            "msg_type": msg_type,
            "version": PROTOCOL_VERSION,
        });
        let parts: [Vec<u8>; 4] =
            [header.to_string().into_bytes(), parent.to_string().into_bytes(), b"{}".to_vec(), content.to_string().into_bytes()];
        let signature = self.sign(&[&parts[0], &parts[1], &parts[2], &parts[3]]);
        let mut frames: Vec<Vec<u8>> = identities.to_vec();
        frames.push(DELIMITER.to_vec());
        frames.push(signature.into_bytes());
        frames.extend(parts);
        frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_rfc4231_hmac_sha256() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let s = Signer::new("Jefe");
        assert_eq!(s.sign(&[b"what do ya want ", b"for nothing?"]), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        assert_eq!(Signer::new("").sign(&[b"x"]), "");
    }

    #[test]
    fn built_messages_parse_back_and_tampering_is_caught() {
        let s = Signer::new("secret");
        let frames = s.build(&[b"peer".to_vec()], "status", &json!({}), &json!({"execution_state": "idle"}));
        let m = s.parse(frames.clone()).unwrap();
        assert_eq!(m.identities, vec![b"peer".to_vec()]);
        assert_eq!(m.msg_type(), "status");
        assert_eq!(m.content["execution_state"], "idle");
        let mut bad = frames;
        let last = bad.len() - 1;
        bad[last] = br#"{"execution_state":"busy"}"#.to_vec();
        assert_eq!(s.parse(bad).unwrap_err(), "bad signature");
        assert_ne!(new_id(), new_id());
    }
}
