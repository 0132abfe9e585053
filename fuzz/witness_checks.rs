//! What the `add_checkpoint` fuzz target asserts. Shared with
//! `ledger-witness/tests/fuzz_corpus.rs`, which runs it over the checked-in corpus
//! (`fuzz/corpus/add_checkpoint/seed-*`, seeds and crash regressions) on every test run.
//!
//! Each input is the body of one `add-checkpoint` request to a fresh witness over a temporary
//! directory, witnessing one `sha256` and one `blake3` log, each already cosigned at size
//! [`SEEDED`] of its honest tree ([`honest_tree`]). For *any* body:
//! - nothing panics, and the answer is 200 or one of C2SP's 400/403/404/409/422 (the storage is
//!   a working directory: never 500 or 503);
//! - a refusal leaves every log's cosigned checkpoint as it was, and a 409 names its size;
//! - a 200 answers one `cosignature/v1` line that verifies under the witness key over the note
//!   it now serves, at the request's clock; that note is the log's, signed by it, of a size at
//!   least the old one, with the honest tree's root at its size. The only log-signed checkpoints
//!   a fuzzer can start from are the seeds' (it cannot sign), and the seeds' forks differ from
//!   the honest tree within the first [`SEEDED`] entries, so no fork can ever be cosigned.
#![allow(dead_code)]

use ledger_core::{Checkpoint, LogDescriptor, MemTree, NamedKey, Note, TreeHash};
use ledger_witness::Witness;

/// The `sha256` log.
pub const SHA256_ORIGIN: &str = "fuzz.example/sha256-log";
/// The `blake3` log.
pub const BLAKE3_ORIGIN: &str = "fuzz.example/blake3-log";
/// The size each log is cosigned at before the input.
pub const SEEDED: u64 = 5;
/// The witness's clock.
pub const NOW: u64 = 1_700_000_000;

/// A log's signing key (the seeds are signed with it).
pub fn log_key(origin: &str) -> NamedKey {
    NamedKey::from_seed(origin, [origin.len() as u8; 32]).expect("key")
}

/// The witness's key.
pub fn witness_key() -> NamedKey {
    NamedKey::from_seed("fuzz.example/witness", [0x77; 32]).expect("key")
}

/// Both logs, with their tree hashes.
pub fn logs() -> [(&'static str, TreeHash); 2] {
    [(SHA256_ORIGIN, TreeHash::Sha256), (BLAKE3_ORIGIN, TreeHash::Blake3)]
}

/// The honest tree of `n` entries (`entry 0`, `entry 1` …).
pub fn honest_tree(h: TreeHash, n: u64) -> MemTree {
    tree(h, n, "entry")
}

/// A tree of `n` entries named `<tag> <i>`.
pub fn tree(h: TreeHash, n: u64, tag: &str) -> MemTree {
    let mut t = MemTree::new(h);
    for i in 0..n {
        t.push_entry(format!("{tag} {i}").as_bytes());
    }
    t
}

/// The `add-checkpoint` body moving `origin` from `old` to `size` of `t`, with `proof`.
pub fn body(origin: &str, t: &MemTree, old: u64, size: u64, proof: &[ledger_core::Hash]) -> String {
    use base64::Engine as _;
    let cp = Checkpoint { origin: origin.into(), size, root: t.root_at(size).expect("size"), extensions: vec![] };
    let lines: String =
        proof.iter().map(|h| format!("{}\n", base64::engine::general_purpose::STANDARD.encode(h))).collect();
    format!("old {old}\n{lines}\n{}", cp.sign(&log_key(origin)))
}

/// The witness over `dir`, each log cosigned at [`SEEDED`] of its honest tree.
pub fn seeded_witness(dir: &std::path::Path) -> Witness {
    let descriptors: Vec<LogDescriptor> =
        logs().iter().map(|(o, h)| LogDescriptor::new(&log_key(o).verifier(), *h)).collect();
    let w = Witness::open(dir, witness_key(), &descriptors).expect("open");
    for (origin, h) in logs() {
        let t = honest_tree(h, SEEDED);
        w.add_checkpoint(body(origin, &t, 0, SEEDED, &[]).as_bytes(), NOW - 60).expect("seeded");
    }
    w
}

fn cosigned(w: &Witness, origin: &str) -> Checkpoint {
    let note = w.latest(origin).expect("seeded");
    Checkpoint::open(&note, &log_key(origin).verifier()).expect("the served note is the log's")
}

/// Feeds `data` to a fresh seeded witness and checks the answer; returns its status code.
pub fn add_checkpoint(data: &[u8]) -> u16 {
    // A memory-backed directory where there is one: the witness syncs every state it stores.
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir() }.expect("tempdir");
    let w = seeded_witness(dir.path());
    let before: Vec<Checkpoint> = logs().iter().map(|(o, _)| cosigned(&w, o)).collect();
    let answer = w.add_checkpoint(data, NOW);
    let after: Vec<Checkpoint> = logs().iter().map(|(o, _)| cosigned(&w, o)).collect();
    match answer {
        Err(refusal) => {
            let status = refusal.status();
            assert!([400, 403, 404, 409, 422].contains(&status), "status {status}: {refusal}");
            assert_eq!(before, after, "a refusal ({status}) changed the cosigned state");
            if status == 409 {
                assert!(refusal.latest_size().is_some_and(|s| before.iter().any(|c| c.size == s)), "{refusal}");
            }
            status
        }
        Ok(line) => {
            let sig = ledger_core::Cosignature::parse_line(&line).expect("our line parses");
            // The log whose served note ends with this very line is the one cosigned.
            let i = (0..2)
                .find(|&i| w.latest(logs()[i].0).expect("seeded").ends_with(&line))
                .expect("the answered line ends a served note");
            let (origin, h) = logs()[i];
            let note = w.latest(origin).expect("seeded");
            let parsed = Note::parse(&note).expect("served note parses");
            let theirs = parsed.signatures().iter().find(|s| w.vkey().is_signer_of(s)).expect("our line");
            assert_eq!(w.vkey().verify(parsed.text(), theirs).ok(), Some(NOW));
            assert_eq!(sig.timestamp, NOW);
            let (old, new) = (&before[i], &after[i]);
            assert!(new.size >= old.size, "state went back from {} to {}", old.size, new.size);
            assert_eq!(new.root, honest_tree(h, new.size).root(), "a checkpoint off the honest tree was cosigned");
            assert_eq!(before[1 - i], after[1 - i], "the other log's state moved");
            200
        }
    }
}
