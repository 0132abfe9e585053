//! Log descriptors, C2SP signed notes and `tlog-checkpoint`s (SPEC §4).
//!
//! A checkpoint note is the lines `<origin>`, `<size>`, `<base64 root>` (then any extension lines),
//! a blank line, and one `— <name> <base64(key id || signature)>` line per signature. Signature
//! lines from keys the verifier does not know (witness cosignatures, say) are ignored; a line from
//! the known key that does not verify rejects the note.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use crate::keys::{NamedKey, VerifierKey, check_key_name};
use crate::{Error, Hash, Result, TreeHash};

/// The largest signed note accepted.
pub const MAX_NOTE_BYTES: usize = 16 * 1024;
/// The most signature lines accepted on one note.
pub const MAX_NOTE_SIGNATURES: usize = 100;
const DASH: &str = "\u{2014} ";

/// What a verifier must know of a log: origin, tree hash and verifier key (SPEC §4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogDescriptor {
    /// The log's origin, also its key name.
    pub origin: String,
    /// `blake3` or `sha256`.
    #[serde(with = "tree_hash_name")]
    pub hash: TreeHash,
    /// The verifier key string.
    pub vkey: String,
}

mod tree_hash_name {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::TreeHash;

    pub fn serialize<S: Serializer>(h: &TreeHash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(h.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<TreeHash, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl LogDescriptor {
    /// The descriptor of a log with this key and hash; the origin is the key name.
    pub fn new(key: &VerifierKey, hash: TreeHash) -> LogDescriptor {
        LogDescriptor { origin: key.name().to_string(), hash, vkey: key.to_string() }
    }

    /// Parses the verifier key and checks that its name is the origin.
    pub fn verifier_key(&self) -> Result<VerifierKey> {
        let key: VerifierKey = self.vkey.parse()?;
        if key.name() != self.origin {
            return Err(Error::MalformedKey(format!(
                "verifier key name {:?} differs from origin {:?}",
                key.name(),
                self.origin
            )));
        }
        Ok(key)
    }
}

/// One signature line of a note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    /// Key name.
    pub name: String,
    /// Key id.
    pub key_id: [u8; 4],
    /// Signature bytes after the key id (64 for Ed25519; other lengths for other key types).
    pub signature: Vec<u8>,
}

/// A parsed signed note (C2SP `signed-note`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    text: String,
    signatures: Vec<NoteSignature>,
}

impl Note {
    /// Parses a signed note. Does not verify signatures.
    pub fn parse(note: &str) -> Result<Note> {
        let bad = |why: String| Error::MalformedNote(why);
        if note.len() > MAX_NOTE_BYTES {
            return Err(bad(format!("{} bytes, over the {MAX_NOTE_BYTES}-byte limit", note.len())));
        }
        if let Some(c) = note.chars().find(|&c| c != '\n' && c.is_ascii_control()) {
            return Err(bad(format!("contains control character U+{:04X}", u32::from(c))));
        }
        // The text ends at the *last* blank line: texts may hold blank lines, signatures cannot.
        let Some(split) = note.rfind("\n\n") else {
            return Err(bad("no blank line between text and signatures".into()));
        };
        let text = &note[..split + 1];
        let sigs = &note[split + 2..];
        if !sigs.ends_with('\n') {
            return Err(bad("signature block does not end with a newline".into()));
        }
        let mut signatures = Vec::new();
        for line in sigs[..sigs.len() - 1].split('\n') {
            if signatures.len() == MAX_NOTE_SIGNATURES {
                return Err(bad(format!("more than {MAX_NOTE_SIGNATURES} signatures")));
            }
            let rest = line
                .strip_prefix(DASH)
                .ok_or_else(|| bad(format!("signature line {line:?} does not start with \"— \"")))?;
            let (name, b64) =
                rest.split_once(' ').ok_or_else(|| bad(format!("signature line {line:?} has no signature")))?;
            check_key_name(name).map_err(|_| bad(format!("bad key name {name:?}")))?;
            let raw = B64.decode(b64).map_err(|_| bad(format!("signature of {name} is not standard base64")))?;
            if raw.len() < 5 {
                return Err(bad(format!("signature of {name} is too short")));
            }
            signatures.push(NoteSignature {
                name: name.to_string(),
                key_id: [raw[0], raw[1], raw[2], raw[3]],
                signature: raw[4..].to_vec(),
            });
        }
        Ok(Note { text: text.to_string(), signatures })
    }

    /// The signed text, ending in a newline.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// All signature lines, known or not.
    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// Verifies the signature of `key`: it must be present and valid. Other lines are ignored.
    pub fn verify(&self, key: &VerifierKey) -> Result<()> {
        let mut found = false;
        for s in self.signatures.iter().filter(|s| s.name == key.name() && s.key_id == key.id()) {
            found = true;
            let ok =
                <&[u8; 64]>::try_from(s.signature.as_slice()).is_ok_and(|sig| key.verify(self.text.as_bytes(), sig));
            if !ok {
                return Err(Error::BadSignature { name: key.name().to_string() });
            }
        }
        if !found {
            return Err(Error::NoKnownSignature { name: key.name().to_string(), key_id: hex::encode(key.id()) });
        }
        Ok(())
    }

    /// Signs `text` (which must end in a newline) and returns the note.
    pub fn sign(text: &str, key: &NamedKey) -> String {
        debug_assert!(text.ends_with('\n'));
        let mut raw = Vec::with_capacity(68);
        raw.extend_from_slice(&key.verifier().id());
        raw.extend_from_slice(&key.sign(text.as_bytes()));
        format!("{text}\n{DASH}{} {}\n", key.name(), B64.encode(raw))
    }
}

/// The body of a checkpoint (C2SP `tlog-checkpoint`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin.
    pub origin: String,
    /// Tree size.
    pub size: u64,
    /// Root hash at that size.
    pub root: Hash,
    /// Extension lines, if any (kept, signed over, not interpreted).
    pub extensions: Vec<String>,
}

/// The extension line naming the stream position a bus log's checkpoint covers (FORMATS §4).
pub const STREAM_LINE: &str = "a2a-ledger/stream";
/// The extension line naming the lease term a bus log's checkpoint was signed under.
pub const LEASE_LINE: &str = "a2a-ledger/lease";

impl Checkpoint {
    /// The value of the extension line `key` (`"<key> <value>"`), if the note has one.
    pub fn extension(&self, key: &str) -> Option<&str> {
        self.extensions.iter().find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
    }

    /// A bus log's lease term ([`LEASE_LINE`]), if the note has a well-formed one.
    pub fn lease_term(&self) -> Option<u64> {
        self.extension(LEASE_LINE)?.parse().ok()
    }

    /// A bus log's stream and position ([`STREAM_LINE`]), if the note has a well-formed one.
    pub fn stream_position(&self) -> Option<(&str, u64)> {
        let (stream, seq) = self.extension(STREAM_LINE)?.split_once(' ')?;
        Some((stream, seq.parse().ok()?))
    }

    /// The note text: origin, size and base64 root lines, then extensions.
    pub fn to_text(&self) -> String {
        let mut s = format!("{}\n{}\n{}\n", self.origin, self.size, B64.encode(self.root));
        for e in &self.extensions {
            s.push_str(e);
            s.push('\n');
        }
        s
    }

    /// Parses note text as a checkpoint body.
    pub fn parse_text(text: &str) -> Result<Checkpoint> {
        let bad = |why: String| Error::MalformedNote(why);
        let body = text.strip_suffix('\n').ok_or_else(|| bad("checkpoint text does not end with a newline".into()))?;
        let mut lines = body.split('\n');
        let origin = lines.next().unwrap_or_default();
        check_key_name(origin).map_err(|_| bad(format!("bad origin line {origin:?}")))?;
        let size_line = lines.next().ok_or_else(|| bad("missing tree size line".into()))?;
        let canonical = !size_line.is_empty()
            && size_line.bytes().all(|b| b.is_ascii_digit())
            && (size_line == "0" || !size_line.starts_with('0'));
        let size = size_line
            .parse::<u64>()
            .ok()
            .filter(|_| canonical)
            .ok_or_else(|| bad(format!("tree size {size_line:?} is not a decimal number")))?;
        let root_line = lines.next().ok_or_else(|| bad("missing root hash line".into()))?;
        let root: Hash = B64
            .decode(root_line)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| bad(format!("root {root_line:?} is not 32 bytes of base64")))?;
        let extensions: Vec<String> = lines.map(str::to_string).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(bad("empty extension line".into()));
        }
        Ok(Checkpoint { origin: origin.to_string(), size, root, extensions })
    }

    /// Signs the checkpoint with the log key; returns the signed note.
    pub fn sign(&self, key: &NamedKey) -> String {
        Note::sign(&self.to_text(), key)
    }

    /// Parses a signed checkpoint and verifies it against `key`, whose name must be the origin.
    pub fn open(note: &str, key: &VerifierKey) -> Result<Checkpoint> {
        let n = Note::parse(note)?;
        let cp = Checkpoint::parse_text(n.text())?;
        if cp.origin != key.name() {
            return Err(Error::WrongLog { found: cp.origin, expected: key.name().to_string() });
        }
        n.verify(key)?;
        Ok(cp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> NamedKey {
        NamedKey::from_seed("example.com/log", [9; 32]).unwrap()
    }

    #[test]
    fn sign_open_round_trip_and_foreign_lines() {
        let k = key();
        let cp = Checkpoint { origin: k.name().into(), size: 42, root: [5; 32], extensions: vec![] };
        let note = cp.sign(&k);
        assert!(note.contains("\n\n\u{2014} example.com/log "));
        assert_eq!(Checkpoint::open(&note, &k.verifier()).unwrap(), cp);
        // A cosignature line from an unknown key is ignored.
        let cosigned = format!("{note}\u{2014} witness.example AAAAAAAAAAAAAAAAAAAA\n");
        assert_eq!(Checkpoint::open(&cosigned, &k.verifier()).unwrap(), cp);
        // Another key's view: no known signature.
        let other = NamedKey::from_seed("example.com/log", [1; 32]).unwrap();
        assert!(matches!(Checkpoint::open(&note, &other.verifier()), Err(Error::NoKnownSignature { .. })));
    }

    #[test]
    fn note_text_may_hold_blank_lines() {
        let n = Note::parse("a\n\nb\n\n\u{2014} k AAAAAAA=\n").unwrap();
        assert_eq!(n.text(), "a\n\nb\n");
        assert_eq!(n.signatures().len(), 1);
        // A C1 control character is not an ASCII control: allowed; DEL and other ASCII ones are not.
        assert!(Note::parse("a\u{85}\n\n\u{2014} k AAAAAAA=\n").is_ok());
        assert!(Note::parse("a\u{7f}\n\n\u{2014} k AAAAAAA=\n").is_err());
    }

    #[test]
    fn tampered_notes_fail() {
        let k = key();
        let note = Checkpoint { origin: k.name().into(), size: 7, root: [1; 32], extensions: vec![] }.sign(&k);
        let tampered = note.replacen("\n7\n", "\n8\n", 1);
        assert!(matches!(Checkpoint::open(&tampered, &k.verifier()), Err(Error::BadSignature { .. })));
        assert!(Checkpoint::parse_text("o\n07\nAAAA\n").is_err());
        assert!(Note::parse("o\n1\n").is_err());
    }
}
