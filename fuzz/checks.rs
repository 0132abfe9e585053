//! What the fuzz targets assert, one function per decoder. Shared with
//! `ledger-core/tests/fuzz_corpus.rs`, which runs them over the checked-in corpus (seeds and
//! crash regressions) on every test run. Each must hold for *any* input: no panic, and whatever is
//! accepted round-trips to the same bytes.
#![allow(dead_code)]

use ledger_core::merkle::{self, MemTree};
use ledger_core::{Checkpoint, Entry, LogDescriptor, Note, Receipt, ReceiptVerifier, TreeHash};

/// Entries: an accepted entry re-encodes to exactly its bytes (canonical by construction), and
/// what the borrowed view reads without building an `Event` (seal attrs, identity key, attrs
/// JSON) is what the owned event says.
pub fn entry_decode(data: &[u8]) {
    let Ok(v) = Entry::check(data) else { return };
    let e = v.to_entry();
    assert_eq!(e.encode(), data, "an accepted entry must re-encode to itself");
    let seal = match e.event {
        ledger_core::Event::ReceiptSealed { content_hash, events, status, sig } => {
            Some(ledger_core::SealAttrs { content_hash, events, status, sig })
        }
        _ => None,
    };
    assert_eq!(v.seal(), seal);
    let key = match e.event {
        ledger_core::Event::IdentityRegistered { public_key } => Some(public_key),
        _ => None,
    };
    assert_eq!(v.public_key(), key);
    let erased = match e.event {
        ledger_core::Event::PayloadErased { hash, .. } => {
            // (1.1) An accepted erasure is the first entry of the run its hash names.
            assert_eq!((e.run.as_str(), e.seq), (ledger_core::RunId::erasure(&hash).as_str(), 0));
            Some(hash)
        }
        _ => None,
    };
    assert_eq!(v.erased(), erased);
    let mut attrs = Vec::new();
    v.write_attrs_json(&mut attrs);
    assert_eq!(String::from_utf8(attrs).unwrap(), e.event.attrs_json().to_string());
}

fn golden_descriptor() -> LogDescriptor {
    serde_json::from_str(include_str!("../testdata/golden/log-blake3.json")).expect("golden descriptor")
}

/// Signed notes and checkpoints: parsing round-trips; verification never panics.
pub fn checkpoint_parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(note) = Note::parse(text) else { return };
    let mut rebuilt = format!("{}\n", note.text());
    for s in note.signatures() {
        let mut raw = s.key_id.to_vec();
        raw.extend_from_slice(&s.signature);
        use base64::Engine as _;
        rebuilt.push_str(&format!("\u{2014} {} {}\n", s.name, base64::engine::general_purpose::STANDARD.encode(raw)));
    }
    assert_eq!(rebuilt, text, "a parsed note must rebuild to its text");
    if let Ok(cp) = Checkpoint::parse_text(note.text()) {
        assert_eq!(cp.to_text(), note.text(), "a parsed checkpoint must rebuild to its text");
    }
    let key = golden_descriptor().verifier_key().expect("golden key");
    let _ = Checkpoint::open(text, &key);
}

/// Bus batch bodies: an accepted body re-encodes to exactly its bytes (one encoding per batch),
/// and its entries are slices of it.
pub fn bus_batch(data: &[u8]) {
    let body = bytes::Bytes::copy_from_slice(data);
    let Ok(entries) = ledger_core::bus::decode_batch(&body) else { return };
    assert!(!entries.is_empty() && entries.len() <= ledger_core::bus::MAX_BATCH_ENTRIES);
    assert_eq!(ledger_core::bus::encode_batch(&entries), data, "an accepted batch must re-encode to itself");
}

/// Receipts: parsing round-trips (and `to_json` writes what serde writes); verification never
/// panics and only accepts what verifies.
pub fn receipt_verify(data: &[u8]) {
    let Ok(r) = Receipt::from_json(data) else { return };
    let json = r.to_json();
    assert_eq!(json, serde_json::to_string(&r).expect("serialises"), "to_json writes what serde writes");
    assert_eq!(Receipt::from_json(json.as_bytes()).expect("re-parse"), r, "receipt JSON round-trips");
    let mut v = ReceiptVerifier::new(golden_descriptor()).expect("golden descriptor");
    if let Ok(ok) = v.verify(&r) {
        // Whatever verifies has the shape SPEC §5 promises.
        assert!(matches!(ok.entries().last().map(|(_, e)| e.kind()), Some(ledger_core::Kind::ReceiptSealed)));
        assert!(ok.entries().iter().all(|(_, e)| e.run.as_str() == r.run));
    }
}

/// Proof verifiers: arbitrary proofs never panic; real proofs from a small tree verify, and any
/// single changed byte is rejected.
pub fn proof_verify(data: &[u8]) {
    if data.len() < 3 {
        return;
    }
    let h = if data[0] & 1 == 0 { TreeHash::Blake3 } else { TreeHash::Sha256 };
    // Arbitrary input straight into the verifiers.
    let word = |i: usize| data.get(i..i + 8).map_or(0, |b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
    let hash = |i: usize| -> [u8; 32] {
        let mut out = [0u8; 32];
        for (k, b) in data.iter().skip(i).take(32).enumerate() {
            out[k] = *b;
        }
        out
    };
    let proof: Vec<[u8; 32]> =
        data.get(90..).unwrap_or(&[]).chunks_exact(32).map(|c| c.try_into().expect("32")).collect();
    let _ = merkle::verify_inclusion(h, word(1), word(9), &hash(17), &proof, &hash(49));
    let _ = merkle::verify_consistency(h, word(1) % 1000, word(9) % 1000, &hash(17), &hash(49), &proof);

    // A real tree: size, index and old size from the input.
    let n = u64::from(data[1]) + 1;
    let mut t = MemTree::new(h);
    for i in 0..n {
        t.push_entry(&i.to_le_bytes());
    }
    let (i, old) = (u64::from(data[2]) % n, u64::from(data.get(3).copied().unwrap_or(0)) % (n + 1));
    let root = t.root();
    let leaf = h.leaf(&i.to_le_bytes());
    let p = t.inclusion_proof(i, n).expect("in range");
    merkle::verify_inclusion(h, i, n, &leaf, &p, &root).expect("a real inclusion proof verifies");
    let c = t.consistency_proof(old, n).expect("in range");
    let old_root = t.root_at(old).expect("in range");
    merkle::verify_consistency(h, old, n, &old_root, &root, &c).expect("a real consistency proof verifies");
    if let Some(&flip) = data.get(4) {
        let mut bad = p.clone();
        if !bad.is_empty() {
            let k = usize::from(flip) % bad.len();
            bad[k][usize::from(flip) % 32] ^= 1;
            assert!(merkle::verify_inclusion(h, i, n, &leaf, &bad, &root).is_err(), "a changed inclusion proof fails");
        }
        let mut bad = c.clone();
        if !bad.is_empty() {
            let k = usize::from(flip) % bad.len();
            bad[k][usize::from(flip) % 32] ^= 1;
            assert!(
                merkle::verify_consistency(h, old, n, &old_root, &root, &bad).is_err(),
                "a changed consistency proof fails"
            );
        }
    }
}

/// A `pack_verify` input: chunk size, the three small files, `entries.bin`.
pub type PackInput<'a> = (usize, [&'a [u8]; 3], &'a [u8]);

/// Splits a `pack_verify` input: a chunk-size byte, then `manifest.json`, `checkpoint` and
/// `proof.json` each behind a 2-byte big-endian length, then `entries.bin`.
pub fn split_pack_input(data: &[u8]) -> Option<PackInput<'_>> {
    let (&chunk, mut rest) = data.split_first()?;
    let mut parts = [&[][..]; 3];
    for p in &mut parts {
        if rest.len() < 2 {
            return None;
        }
        let n = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        rest = rest.get(2..2 + n)?.len().eq(&n).then(|| &rest[2..])?;
        *p = &rest[..n];
        rest = &rest[n..];
    }
    Some((usize::from(chunk) + 1, parts, rest))
}

/// Packs against the golden log: verification never panics, and the verdict (and the error, if
/// any) is that of one-by-one checking, however `entries.bin` is cut into chunks and however
/// seals are batched across threads.
pub fn pack_verify(data: &[u8]) {
    use ledger_core::pack::PackVerifier;
    let Some((chunk, [manifest, checkpoint, proof], entries)) = split_pack_input(data) else { return };
    let log = golden_descriptor();
    let run = |chunk: usize, threads: usize, batch: usize| -> Result<String, String> {
        let mut v = PackVerifier::new(&log, manifest, checkpoint, proof)
            .map_err(|e| e.to_string())?
            .threads(threads)
            .seal_batch(batch);
        for c in entries.chunks(chunk.max(1)) {
            v.entries_bin(c).map_err(|e| e.to_string())?;
        }
        v.finish().map(|r| serde_json::to_string(&r).expect("report")).map_err(|e| e.to_string())
    };
    let batched = run(chunk, 3, 2);
    let one_by_one = run(entries.len(), 1, 1);
    assert_eq!(
        batched, one_by_one,
        "chunks of {chunk} bytes, seals checked in batches on 3 threads, changed the verdict"
    );
}

/// Trust policies: whatever is accepted prints in canonical form, which parses to the same policy
/// and prints the same again; a refusal names a line that exists (or 0, the whole file).
pub fn policy_parse(data: &[u8]) {
    match ledger_core::Policy::parse(data) {
        Ok(p) => {
            let text = p.to_string();
            let again = ledger_core::Policy::parse(text.as_bytes()).expect("the canonical form parses");
            assert_eq!(again, p);
            assert_eq!(again.to_string(), text);
        }
        Err(ledger_core::Error::MalformedPolicy { line, .. }) => {
            assert!(line <= data.split(|&b| b == b'\n').count(), "line {line} is past the end");
        }
        Err(e) => panic!("a policy is refused only as MalformedPolicy, not {e}"),
    }
}

/// Cosignature lines: an accepted line prints back to its bytes (with its newline), and reading
/// it as a note's signature line gives the same cosignature; checking it under a witness key never
/// panics (and a line that is not that key's is refused, not verified).
pub fn cosignature_line(data: &[u8]) {
    let Ok(line) = std::str::from_utf8(data) else { return };
    let Ok(c) = ledger_core::Cosignature::parse_line(line) else { return };
    let printed = c.to_line();
    assert_eq!(printed.strip_suffix('\n'), Some(line.strip_suffix('\n').unwrap_or(line)));
    let note = format!("o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n{printed}");
    if let Ok(n) = Note::parse(&note) {
        let sig = &n.signatures()[0];
        assert_eq!(ledger_core::Cosignature::from_note_signature(sig).unwrap(), c);
        let key = ledger_core::WitnessKey::new(&c.name, &[0x11; 32]);
        if let Ok(key) = key {
            let verified = key.verify(n.text(), sig);
            assert!(verified.is_err() || key.is_signer_of(sig));
        }
    }
}
