//! Cosignatures against an independent implementation: Cloudflare's `signed_note` (azul) frames and
//! parses the signed notes and computes key ids; the `cosignature/v1` message and the 72-byte
//! timestamped signature are written here by hand from the C2SP `tlog-cosignature` text, apart
//! from `ledger_core::witness`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signer as _, SigningKey};
use ledger_core::policy::WitnessState;
use ledger_core::{Checkpoint, Cosignature, NamedKey, Policy, WitnessKey};
use signed_note::{Note as SnNote, StandardVerifier, Verifier, VerifierList};

const NOW: u64 = 1_700_000_000;

/// The C2SP message, spelled out: header line, time line, then the note text.
fn c2sp_message(text: &[u8], timestamp: u64) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(b"cosignature/v1\n");
    m.extend_from_slice(b"time ");
    m.extend_from_slice(timestamp.to_string().as_bytes());
    m.push(b'\n');
    m.extend_from_slice(text);
    m
}

/// A `cosignature/v1` witness for `signed_note`, on its `Verifier` and `Signer` traits.
struct OracleWitness {
    name: String,
    key: SigningKey,
    timestamp: u64,
}

impl OracleWitness {
    fn new(name: &str, seed: [u8; 32], timestamp: u64) -> OracleWitness {
        OracleWitness { name: name.into(), key: SigningKey::from_bytes(&seed), timestamp }
    }

    fn id(&self) -> u32 {
        let mut encoded = vec![0x04];
        encoded.extend_from_slice(self.key.verifying_key().as_bytes());
        signed_note::key_id(&self.name, &encoded)
    }
}

impl Verifier for OracleWitness {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> u32 {
        self.id()
    }
    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let Ok(raw) = <[u8; 72]>::try_from(sig) else { return false };
        let timestamp = u64::from_be_bytes(raw[..8].try_into().unwrap());
        let sig = ed25519_dalek::Signature::from_bytes(raw[8..].try_into().unwrap());
        timestamp < 1 << 63 && self.key.verifying_key().verify_strict(&c2sp_message(msg, timestamp), &sig).is_ok()
    }
}

impl signed_note::Signer for OracleWitness {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> u32 {
        self.id()
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        let mut out = self.timestamp.to_be_bytes().to_vec();
        out.extend_from_slice(&self.key.sign(&c2sp_message(msg, self.timestamp)).to_bytes());
        Ok(out)
    }
}

fn log_key() -> NamedKey {
    NamedKey::from_seed("example.com/log", [9; 32]).unwrap()
}

fn checkpoint_note() -> String {
    let k = log_key();
    let cp = Checkpoint { origin: k.name().into(), size: 20852163, root: [7; 32], extensions: vec!["ext line".into()] };
    cp.sign(&k)
}

#[test]
fn key_ids_agree() {
    for (i, name) in ["witness.example/w1", "w", "oid/1.3.6.1.4.1.44363.47.1"].into_iter().enumerate() {
        let seed = [i as u8 + 1; 32];
        let ours = WitnessKey::of(&NamedKey::from_seed(name, seed).unwrap());
        let theirs = OracleWitness::new(name, seed, 0);
        assert_eq!(u32::from_be_bytes(ours.id()), theirs.id(), "{name}");
        // The log key id (type 0x01) agrees too, and signed_note reads our log vkey.
        let log = NamedKey::from_seed(name, seed).unwrap().verifier();
        let sv = StandardVerifier::new(&log.to_string()).unwrap();
        assert_eq!(sv.key_id(), u32::from_be_bytes(log.id()));
        // signed_note's standard verifier knows no type 0x04: our witness vkey is not a log key.
        assert!(StandardVerifier::new(&ours.to_string()).is_err());
    }
}

#[test]
fn signed_note_verifies_our_cosignature() {
    let note = checkpoint_note();
    let text = ledger_core::Note::parse(&note).unwrap().text().to_string();
    let w = NamedKey::from_seed("witness.example/w1", [4; 32]).unwrap();
    let cosigned = format!("{note}{}", Cosignature::sign(&text, &w, NOW).unwrap().to_line());

    let parsed = SnNote::from_bytes(cosigned.as_bytes()).unwrap();
    assert_eq!(parsed.text(), text.as_bytes());
    let oracle = OracleWitness::new("witness.example/w1", [4; 32], 0);
    let log = StandardVerifier::new(&log_key().verifier().to_string()).unwrap();
    let list = VerifierList::new(vec![Box::new(oracle), Box::new(log)]);
    let (verified, unverified) = parsed.verify(&list).unwrap();
    assert_eq!(verified.len(), 2, "the log's line and the cosignature");
    assert!(unverified.is_empty());

    // One byte of the body changed: signed_note rejects the cosignature (and the log line).
    let tampered = cosigned.replacen("ext line", "ext lime", 1);
    let oracle = OracleWitness::new("witness.example/w1", [4; 32], 0);
    let list = VerifierList::new(vec![Box::new(oracle)]);
    assert!(SnNote::from_bytes(tampered.as_bytes()).unwrap().verify(&list).is_err());
}

#[test]
fn we_verify_a_cosignature_signed_note_made() {
    let note = checkpoint_note();
    let mut sn = SnNote::from_bytes(note.as_bytes()).unwrap();
    let oracle = OracleWitness::new("witness.example/w1", [4; 32], NOW - 5);
    sn.add_sigs(&[&oracle]).unwrap();
    let cosigned = String::from_utf8(sn.to_bytes()).unwrap();
    assert!(cosigned.starts_with(&note), "the log's line stays first");

    let ours = WitnessKey::of(&NamedKey::from_seed("witness.example/w1", [4; 32]).unwrap());
    let parsed = ledger_core::Note::parse(&cosigned).unwrap();
    let line = &parsed.signatures()[1];
    assert_eq!(ours.verify(parsed.text(), line).unwrap(), NOW - 5);

    let policy = format!("log {}\nwitness W1 {ours}\nquorum W1\n", log_key().verifier());
    let policy = Policy::parse(policy.as_bytes()).unwrap();
    let report = policy.evaluate(&cosigned, None, NOW).unwrap();
    assert!(report.satisfied);
    assert_eq!(report.witnesses[0].state, WitnessState::Cosigned { timestamp: NOW - 5 });

    // The same oracle signing with another key under the same name does not count.
    let mut sn = SnNote::from_bytes(note.as_bytes()).unwrap();
    sn.add_sigs(&[&OracleWitness::new("witness.example/w1", [5; 32], NOW)]).unwrap();
    let report = policy.evaluate(&String::from_utf8(sn.to_bytes()).unwrap(), None, NOW).unwrap();
    assert!(!report.satisfied);
    assert_eq!(report.witnesses[0].state, WitnessState::NoCosignature);
}

/// The cosignature line of C2SP's example parses to its documented timestamp (1679315147).
#[test]
fn c2sp_example_line() {
    let line = "\u{2014} witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n";
    let c = Cosignature::parse_line(line).unwrap();
    assert_eq!(c.name, "witness.example.com/w1");
    assert_eq!(c.timestamp, 1679315147);
    assert_eq!(c.key_id, B64.decode("jWbPPw==").unwrap()[..]);
    assert_eq!(c.to_line(), line);
}
