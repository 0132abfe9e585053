//! Witness cosignatures: C2SP `tlog-cosignature`, Ed25519 `cosignature/v1` (SPEC §8).
//!
//! A cosignature is a signed-note signature line `— <witness name> <base64(key id || timestamp ||
//! signature)>` on a checkpoint, after the log's own line:
//!
//! - key id = the first 4 bytes of `SHA-256(name || 0x0A || 0x04 || public_key)` (type byte 0x04,
//!   where a log key has 0x01, so the same name and key give a different id);
//! - timestamp = seconds since the Unix epoch, a u64 in big-endian, at most 2^63 - 1;
//! - signature = strict Ed25519 (SPEC §4) over `"cosignature/v1\ntime " + decimal(timestamp) +
//!   "\n"` followed by the checkpoint's note text (the bytes the log signs).
//!
//! A witness's verifier key is `<name>+<key id hex>+<base64(0x04 || public_key)>`.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::VerifyingKey;
use sha2::Digest as _;

use crate::checkpoint::NoteSignature;
use crate::keys::{NamedKey, check_key_name, check_public_key, verify_strict};
use crate::{Error, Result};

/// The signature-type byte of Ed25519 `cosignature/v1` witness keys.
pub const ALG_COSIGNATURE_V1: u8 = 0x04;
/// The signature-type byte of Ed25519 signed-note keys (log keys).
const ALG_ED25519: u8 = 0x01;
/// The largest timestamp a cosignature may carry (C2SP: at most 2^63 - 1).
pub const MAX_TIMESTAMP: u64 = (1 << 63) - 1;
/// Length of a cosignature after its key id: 8-byte timestamp and 64-byte signature.
pub const COSIGNATURE_LEN: usize = 72;
const DASH: &str = "\u{2014} ";

/// The `cosignature/v1` key id: the first 4 bytes of `SHA-256(name || 0x0A || 0x04 || public_key)`.
pub fn key_id(name: &str, public_key: &[u8; 32]) -> [u8; 4] {
    let mut h = sha2::Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', ALG_COSIGNATURE_V1]);
    h.update(public_key);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// The message a witness signs: `cosignature/v1\ntime <timestamp>\n` followed by the note text.
pub fn signed_message(text: &str, timestamp: u64) -> Vec<u8> {
    let mut m = format!("cosignature/v1\ntime {timestamp}\n").into_bytes();
    m.extend_from_slice(text.as_bytes());
    m
}

/// A witness's `cosignature/v1` verifier key.
#[derive(Clone, PartialEq, Eq)]
pub struct WitnessKey {
    name: String,
    id: [u8; 4],
    key: VerifyingKey,
}

impl WitnessKey {
    /// The witness key for `name` and `public_key` (a valid point, not of small order).
    pub fn new(name: &str, public_key: &[u8; 32]) -> Result<WitnessKey> {
        check_key_name(name)?;
        let key = check_public_key(public_key)?;
        Ok(WitnessKey { name: name.to_string(), id: key_id(name, public_key), key })
    }

    /// The witness key of a signing key (our own witness).
    pub fn of(key: &NamedKey) -> WitnessKey {
        let public = key.public_key();
        WitnessKey { name: key.name().to_string(), id: key_id(key.name(), &public), key: *key.verifier().key() }
    }

    /// The key name: the name on the witness's signature lines.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The 4-byte `cosignature/v1` key id.
    pub fn id(&self) -> [u8; 4] {
        self.id
    }

    /// The 32 public key bytes.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// Whether `sig` is a line of this key (same name and key id); other lines are not its business.
    pub fn is_signer_of(&self, sig: &NoteSignature) -> bool {
        sig.name == self.name && sig.key_id == self.id
    }

    /// Verifies a cosignature line of this key on the note text `text`; returns its timestamp.
    ///
    /// Refuses with [`Error::MalformedCosignature`] a line of another name or key id, a signature
    /// that is not 72 bytes, or a timestamp over 2^63 - 1; with [`Error::BadSignature`] a
    /// signature that does not verify (strictly).
    pub fn verify(&self, text: &str, sig: &NoteSignature) -> Result<u64> {
        if !self.is_signer_of(sig) {
            return Err(Error::MalformedCosignature(format!(
                "line of {}+{} is not from witness key {}+{}",
                sig.name,
                hex::encode(sig.key_id),
                self.name,
                hex::encode(self.id)
            )));
        }
        let c = Cosignature::from_note_signature(sig)?;
        if verify_strict(&self.key, &signed_message(text, c.timestamp), &c.signature) {
            Ok(c.timestamp)
        } else {
            Err(Error::BadSignature { name: self.name.clone() })
        }
    }
}

impl fmt::Display for WitnessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut k = [0u8; 33];
        k[0] = ALG_COSIGNATURE_V1;
        k[1..].copy_from_slice(self.key.as_bytes());
        write!(f, "{}+{}+{}", self.name, hex::encode(self.id), B64.encode(k))
    }
}

impl fmt::Debug for WitnessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WitnessKey({self})")
    }
}

impl FromStr for WitnessKey {
    type Err = Error;
    fn from_str(s: &str) -> Result<WitnessKey> {
        let bad = |why: &str| Error::MalformedKey(format!("witness key {s:?}: {why}"));
        // Names never contain '+'; base64 may, so split from the left.
        let mut parts = s.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("expected <name>+<key id>+<key>"));
        };
        check_key_name(name).map_err(|_| bad("the name is empty or holds whitespace or '+'"))?;
        let id: [u8; 4] = hex::decode(id_hex)
            .ok()
            .and_then(|v| v.try_into().ok())
            .filter(|_| id_hex.len() == 8 && id_hex.bytes().all(|b| !b.is_ascii_uppercase()))
            .ok_or_else(|| bad("key id is not 8 lowercase hex digits"))?;
        let raw = B64.decode(b64).map_err(|_| bad("key is not standard base64"))?;
        let [alg, key @ ..] = raw.as_slice() else {
            return Err(bad("empty key"));
        };
        match *alg {
            ALG_COSIGNATURE_V1 => {}
            ALG_ED25519 => {
                return Err(bad("type 0x01 is a log (signed-note Ed25519) key; a cosignature/v1 witness key has 0x04"));
            }
            other => return Err(bad(&format!("type 0x{other:02x} is not cosignature/v1 Ed25519 (0x04)"))),
        }
        let key: [u8; 32] = key.try_into().map_err(|_| bad("Ed25519 key is not 32 bytes"))?;
        let wk = WitnessKey::new(name, &key)?;
        if wk.id != id {
            return Err(bad("key id does not match the name and key"));
        }
        Ok(wk)
    }
}

/// One `cosignature/v1` signature line, parsed but not verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cosignature {
    /// The witness's key name.
    pub name: String,
    /// The key id.
    pub key_id: [u8; 4],
    /// Seconds since the Unix epoch, at most 2^63 - 1.
    pub timestamp: u64,
    /// The Ed25519 signature.
    pub signature: [u8; 64],
}

impl Cosignature {
    /// Signs the note text `text` (which must end in a newline) as the witness `key` at `timestamp`.
    pub fn sign(text: &str, key: &NamedKey, timestamp: u64) -> Result<Cosignature> {
        if timestamp > MAX_TIMESTAMP {
            return Err(Error::MalformedCosignature(format!("timestamp {timestamp} is over 2^63 - 1")));
        }
        debug_assert!(text.ends_with('\n'));
        Ok(Cosignature {
            name: key.name().to_string(),
            key_id: key_id(key.name(), &key.public_key()),
            timestamp,
            signature: key.sign(&signed_message(text, timestamp)),
        })
    }

    /// Reads a note signature line as a cosignature: 72 bytes after the key id, timestamp in range.
    pub fn from_note_signature(sig: &NoteSignature) -> Result<Cosignature> {
        let bad = |why: String| Error::MalformedCosignature(format!("line of {}: {why}", sig.name));
        let raw: &[u8; COSIGNATURE_LEN] = sig
            .signature
            .as_slice()
            .try_into()
            .map_err(|_| bad(format!("{} bytes after the key id, expected 72", sig.signature.len())))?;
        let (ts, signature) = raw.split_at(8);
        let timestamp = u64::from_be_bytes(ts.try_into().expect("8 bytes"));
        if timestamp > MAX_TIMESTAMP {
            return Err(bad(format!("timestamp {timestamp} is over 2^63 - 1")));
        }
        Ok(Cosignature {
            name: sig.name.clone(),
            key_id: sig.key_id,
            timestamp,
            signature: signature.try_into().expect("64 bytes"),
        })
    }

    /// Parses one signature line, with or without its final newline.
    pub fn parse_line(line: &str) -> Result<Cosignature> {
        let bad = |why: &str| Error::MalformedCosignature(why.to_string());
        let line = line.strip_suffix('\n').unwrap_or(line);
        let rest = line.strip_prefix(DASH).ok_or_else(|| bad("line does not start with \"— \""))?;
        let (name, b64) = rest.split_once(' ').ok_or_else(|| bad("line has no signature after the name"))?;
        check_key_name(name).map_err(|_| bad("the name is empty or holds whitespace or '+'"))?;
        let raw = B64.decode(b64).map_err(|_| bad("signature is not standard base64"))?;
        if raw.len() != 4 + COSIGNATURE_LEN {
            return Err(bad(&format!("{} bytes, expected 76 (key id, timestamp, signature)", raw.len())));
        }
        let sig = NoteSignature {
            name: name.to_string(),
            key_id: raw[..4].try_into().expect("4 bytes"),
            signature: raw[4..].to_vec(),
        };
        Cosignature::from_note_signature(&sig)
    }

    /// The signature line, `— <name> <base64(key id || timestamp || signature)>\n`.
    pub fn to_line(&self) -> String {
        let mut raw = Vec::with_capacity(4 + COSIGNATURE_LEN);
        raw.extend_from_slice(&self.key_id);
        raw.extend_from_slice(&self.timestamp.to_be_bytes());
        raw.extend_from_slice(&self.signature);
        format!("{DASH}{} {}\n", self.name, B64.encode(raw))
    }

    /// The same line as a note signature.
    pub fn to_note_signature(&self) -> NoteSignature {
        let mut signature = Vec::with_capacity(COSIGNATURE_LEN);
        signature.extend_from_slice(&self.timestamp.to_be_bytes());
        signature.extend_from_slice(&self.signature);
        NoteSignature { name: self.name.clone(), key_id: self.key_id, signature }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Checkpoint, Note};

    fn log() -> NamedKey {
        NamedKey::from_seed("example.com/log", [9; 32]).unwrap()
    }

    fn witness() -> NamedKey {
        NamedKey::from_seed("witness.example/w1", [4; 32]).unwrap()
    }

    fn note() -> String {
        let k = log();
        Checkpoint { origin: k.name().into(), size: 42, root: [5; 32], extensions: vec![] }.sign(&k)
    }

    #[test]
    fn key_id_uses_type_0x04() {
        let w = witness();
        let mut h = sha2::Sha256::new();
        h.update(b"witness.example/w1\n\x04");
        h.update(w.public_key());
        assert_eq!(key_id(w.name(), &w.public_key()), h.finalize()[..4]);
        assert_ne!(key_id(w.name(), &w.public_key()), w.verifier().id(), "differs from the 0x01 log key id");
    }

    #[test]
    fn signed_message_is_header_time_and_text() {
        assert_eq!(signed_message("o\n1\nAA==\n", 1679315147), b"cosignature/v1\ntime 1679315147\no\n1\nAA==\n");
        assert_eq!(signed_message("t\n", 0), b"cosignature/v1\ntime 0\nt\n");
    }

    #[test]
    fn round_trip_sign_line_parse_verify() {
        let (w, n) = (witness(), note());
        let text = Note::parse(&n).unwrap().text().to_string();
        let c = Cosignature::sign(&text, &w, 1_700_000_000).unwrap();
        let line = c.to_line();
        assert_eq!(Cosignature::parse_line(&line).unwrap(), c);
        let cosigned = format!("{n}{line}");
        let parsed = Note::parse(&cosigned).unwrap();
        assert_eq!(parsed.signatures().len(), 2);
        assert_eq!(parsed.signatures()[1], c.to_note_signature());
        let wk = WitnessKey::of(&w);
        assert_eq!(wk.verify(parsed.text(), &parsed.signatures()[1]).unwrap(), 1_700_000_000);
        // The log's own line still verifies; the cosignature line is foreign to it.
        Checkpoint::open(&cosigned, &log().verifier()).unwrap();
        // The vkey prints and parses back.
        assert_eq!(wk.to_string().parse::<WitnessKey>().unwrap(), wk);
    }

    fn verify_eq(wk: &WitnessKey, text: &str, sig: &NoteSignature) -> std::result::Result<u64, String> {
        wk.verify(text, sig).map_err(|e| e.to_string())
    }

    #[test]
    fn tampering_fails() {
        let (w, n) = (witness(), note());
        let text = Note::parse(&n).unwrap().text().to_string();
        let c = Cosignature::sign(&text, &w, 1_700_000_000).unwrap();
        let wk = WitnessKey::of(&w);
        let sig = c.to_note_signature();
        assert_eq!(verify_eq(&wk, &text, &sig), Ok(1_700_000_000));

        // One byte of the body.
        let mut body = text.clone().into_bytes();
        body[0] ^= 1;
        let body = String::from_utf8(body).unwrap();
        assert!(matches!(wk.verify(&body, &sig), Err(Error::BadSignature { .. })));
        // The timestamp.
        let mut later = c.clone();
        later.timestamp += 1;
        assert!(matches!(wk.verify(&text, &later.to_note_signature()), Err(Error::BadSignature { .. })));
        // One byte of the signature.
        let mut flipped = sig.clone();
        flipped.signature[8 + 10] ^= 0x40;
        assert!(matches!(wk.verify(&text, &flipped), Err(Error::BadSignature { .. })));
        // A wrong key id, and a wrong name: not this key's line.
        let mut other_id = sig.clone();
        other_id.key_id[0] ^= 1;
        assert!(!wk.is_signer_of(&other_id));
        assert!(matches!(wk.verify(&text, &other_id), Err(Error::MalformedCosignature(_))));
        let mut other_name = sig.clone();
        other_name.name = "witness.example/w2".into();
        assert!(matches!(wk.verify(&text, &other_name), Err(Error::MalformedCosignature(_))));
        // Another witness key of the same name does not verify it.
        let impostor = WitnessKey::of(&NamedKey::from_seed("witness.example/w1", [5; 32]).unwrap());
        assert!(!impostor.is_signer_of(&sig));
        // A log-style 64-byte signature under the witness's name and id.
        let mut short = sig.clone();
        short.signature.truncate(64);
        assert!(matches!(wk.verify(&text, &short), Err(Error::MalformedCosignature(_))));
    }

    #[test]
    fn timestamps_over_2_pow_63_are_refused() {
        let (w, text) = (witness(), "o\n1\nAA==\n");
        assert!(Cosignature::sign(text, &w, MAX_TIMESTAMP).is_ok());
        assert!(matches!(Cosignature::sign(text, &w, MAX_TIMESTAMP + 1), Err(Error::MalformedCosignature(_))));
        let mut c = Cosignature::sign(text, &w, 5).unwrap();
        c.timestamp = MAX_TIMESTAMP + 1;
        let e = Cosignature::parse_line(&c.to_line()).unwrap_err();
        assert!(e.to_string().contains("over 2^63 - 1"), "{e}");
        assert!(WitnessKey::of(&w).verify(text, &c.to_note_signature()).is_err());
    }

    #[test]
    fn malformed_lines_are_refused() {
        let good = Cosignature::sign("t\n", &witness(), 7).unwrap().to_line();
        let cases = [
            ("- w AAAA", "does not start"),
            ("\u{2014} w", "no signature"),
            ("\u{2014}  AAAA", "name"),
            ("\u{2014} w !!!!", "base64"),
            ("\u{2014} w AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "expected 76"),
        ];
        for (line, why) in cases {
            let e = Cosignature::parse_line(line).unwrap_err();
            assert!(matches!(e, Error::MalformedCosignature(_)) && e.to_string().contains(why), "{line}: {e}");
        }
        assert!(Cosignature::parse_line(&good).is_ok());
        assert!(Cosignature::parse_line(good.trim_end()).is_ok());
    }

    #[test]
    fn witness_vkeys_parse_with_clear_errors() {
        let w = witness();
        let vkey = WitnessKey::of(&w).to_string();
        assert!(vkey.starts_with("witness.example/w1+"));
        assert_eq!(vkey.parse::<WitnessKey>().unwrap(), WitnessKey::of(&w));
        // A log key (type 0x01) is refused as a witness key, naming the type.
        let e = w.verifier().to_string().parse::<WitnessKey>().unwrap_err();
        assert!(e.to_string().contains("type 0x01 is a log"), "{e}");
        // And a witness key is refused as a log key.
        assert!(vkey.parse::<crate::VerifierKey>().is_err());
        let (name, id, b64) = {
            let mut p = vkey.splitn(3, '+');
            (p.next().unwrap(), p.next().unwrap(), p.next().unwrap())
        };
        let cases = [
            ("no-plus".to_string(), "expected <name>+<key id>+<key>"),
            (format!("{name}+{}+{b64}", id.to_uppercase()), "8 lowercase hex"),
            (format!("{name}+{id}+{b64}!"), "base64"),
            (format!("{name}+{id}+"), "empty key"),
            (format!("{name}+{id}+{}", B64.encode([0x04u8; 20])), "not 32 bytes"),
            (format!("{name}+{id}+{}", B64.encode([0x02u8; 33])), "type 0x02"),
            (format!("other+{id}+{b64}"), "does not match"),
            (format!(" x+{id}+{b64}"), "name"),
        ];
        for (s, why) in cases {
            let e = s.parse::<WitnessKey>().unwrap_err();
            assert!(e.to_string().contains(why), "{s}: {e}");
        }
        // A small-order key is refused.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut raw = vec![0x04];
        raw.extend_from_slice(&identity);
        let s = format!("w+{}+{}", hex::encode(key_id("w", &identity)), B64.encode(raw));
        assert!(matches!(s.parse::<WitnessKey>(), Err(Error::BadPublicKey(_))));
    }
}
