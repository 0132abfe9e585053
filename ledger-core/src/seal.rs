//! Seals (SPEC §3): the content hash over a run's leaves, the seal message, and its signature.

use crate::entry::{Event, RunStatus};
use crate::keys::NamedKey;
use crate::{Hash, TreeHash};

/// Domain-separation prefix of the content hash.
pub const CONTENT_HASH_PREFIX: &[u8] = b"a2a-ledger/run/v1\n";
/// Domain-separation prefix of the seal message.
pub const SEAL_MESSAGE_PREFIX: &str = "a2a-ledger/seal/v1\n";

/// `BLAKE3("a2a-ledger/run/v1\n" || LH(e_0) || … || LH(e_{k-1}))`; the leaf hashes use the log's
/// tree hash, the outer hash is always BLAKE3.
pub fn content_hash<'a>(leaf_hashes: impl IntoIterator<Item = &'a Hash>) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(CONTENT_HASH_PREFIX);
    for lh in leaf_hashes {
        h.update(lh);
    }
    *h.finalize().as_bytes()
}

/// The UTF-8 message a seal signs.
pub fn seal_message(run: &str, events: u64, content_hash: &Hash, status: RunStatus) -> String {
    use std::fmt::Write as _;
    let mut digits = [0u8; 64];
    hex::encode_to_slice(content_hash, &mut digits).expect("64 hex digits for 32 bytes");
    let status = status.as_str();
    let mut m = String::with_capacity(SEAL_MESSAGE_PREFIX.len() + run.len() + 20 + digits.len() + status.len() + 4);
    m.push_str(SEAL_MESSAGE_PREFIX);
    m.push_str(run);
    write!(m, "\n{events}\n").expect("writing to a String cannot fail");
    m.push_str(std::str::from_utf8(&digits).expect("hex is ASCII"));
    m.push('\n');
    m.push_str(status);
    m.push('\n');
    m
}

/// Builds the `receipt.sealed` event covering `covered` (the run's entries with seq `0..k`, as
/// stored), signed by `key`, the identity named as the seal's actor.
pub fn seal_event(h: TreeHash, run: &str, covered: &[impl AsRef<[u8]>], status: RunStatus, key: &NamedKey) -> Event {
    let leaves: Vec<Hash> = covered.iter().map(|e| h.leaf(e.as_ref())).collect();
    seal_event_from_leaves(run, &leaves, status, key)
}

/// Like [`seal_event`], from the covered entries' leaf hashes.
pub fn seal_event_from_leaves(run: &str, leaves: &[Hash], status: RunStatus, key: &NamedKey) -> Event {
    let content_hash = content_hash(leaves);
    let events = leaves.len() as u64;
    let sig = key.sign(seal_message(run, events, &content_hash, status).as_bytes());
    Event::ReceiptSealed { content_hash, events, status, sig }
}
