//! Receipts (SPEC §5): the JSON document that proves a sealed run, and its verification.
//!
//! [`ReceiptVerifier`] checks the five steps of SPEC §5 in order and reports the first that fails,
//! with the log index concerned. It trusts only the [`LogDescriptor`] it is given: a receipt that
//! names another log fails step 1. Made with [`ReceiptVerifier::with_policy`], step 1 also
//! requires the checkpoint to satisfy a C2SP trust policy (SPEC §8): its failure is
//! [`ReceiptStep::WitnessQuorum`], naming the witnesses that did and did not cosign. It caches
//! what it has already proven for a checkpoint (the checkpoint signature, and the interior tree
//! nodes of verified inclusion paths), keyed by the exact note text, so verifying many receipts
//! under one checkpoint costs one signature check each. A cached node is only reused when the
//! new path below it hashes to the same value and the new proof's remaining hashes equal the
//! verified ones byte for byte, so nothing a receipt carries goes unchecked. The one exception to
//! hashing is the signer entry: one equal in index, bytes and proof to the signer last proven under
//! the same checkpoint is that signer.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{Checkpoint, LogDescriptor};
use crate::entry::{Entry, EntryView, Event, IDENTITY_RUN_PREFIX, RunStatus, SealAttrs};
use crate::error::ReceiptStep;
use crate::keys::{VerifierKey, verify_strict};
use crate::merkle::split_point;
use crate::policy::Policy;
use crate::seal::{content_hash, seal_message};
use crate::{Error, Hash, Result, TreeHash};

/// The receipt format string.
pub const RECEIPT_FORMAT: &str = "a2a-ledger/receipt/v1";

/// Seconds since the Unix epoch by the system clock (0 for a clock set before 1970).
fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// An entry with its log index and inclusion proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvenEntry {
    /// Log index.
    pub index: u64,
    /// Entry bytes exactly as stored.
    #[serde(with = "b64")]
    pub entry: Vec<u8>,
    /// Inclusion proof to the checkpoint's tree size.
    #[serde(with = "b64_hashes")]
    pub proof: Vec<Hash>,
}

/// A receipt document (SPEC §5).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// Always [`RECEIPT_FORMAT`].
    pub format: String,
    /// The log it claims to come from.
    pub log: LogDescriptor,
    /// The run id.
    pub run: String,
    /// Signed checkpoint note text.
    pub checkpoint: String,
    /// The run's entries with seq `0..=k`, the seal last.
    pub entries: Vec<ProvenEntry>,
    /// The `identity.registered` entry holding the seal's key.
    pub signer: ProvenEntry,
}

impl Receipt {
    /// Parses receipt JSON. Failure means the receipt could not be checked at all.
    pub fn from_json(bytes: &[u8]) -> Result<Receipt> {
        let r: Receipt = serde_json::from_slice(bytes).map_err(|e| Error::MalformedReceipt(e.to_string()))?;
        if r.format != RECEIPT_FORMAT {
            return Err(Error::MalformedReceipt(format!("format {:?}, expected {RECEIPT_FORMAT:?}", r.format)));
        }
        Ok(r)
    }

    /// The receipt as JSON: the text `serde_json` makes of it, written directly (a receipt is
    /// mostly base64 of entries and proof hashes, and servers write thousands a second).
    pub fn to_json(&self) -> String {
        let size: usize = self.entries.iter().chain(std::iter::once(&self.signer)).map(ProvenEntry::json_len).sum();
        let mut out = Vec::with_capacity(size + self.checkpoint.len() + 512);
        out.extend_from_slice(b"{\"format\":");
        json_str(&mut out, &self.format);
        out.extend_from_slice(b",\"log\":");
        serde_json::to_writer(&mut out, &self.log).expect("a descriptor always serialises");
        out.extend_from_slice(b",\"run\":");
        json_str(&mut out, &self.run);
        out.extend_from_slice(b",\"checkpoint\":");
        json_str(&mut out, &self.checkpoint);
        out.extend_from_slice(b",\"entries\":[");
        for (i, pe) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            pe.write_json(&mut out);
        }
        out.extend_from_slice(b"],\"signer\":");
        self.signer.write_json(&mut out);
        out.push(b'}');
        String::from_utf8(out).expect("JSON text is UTF-8")
    }
}

impl ProvenEntry {
    /// About how long its JSON is.
    fn json_len(&self) -> usize {
        64 + self.entry.len().div_ceil(3) * 4 + self.proof.len() * 47
    }

    /// `{"index":…,"entry":"<base64>","proof":["<base64>",…]}`, as serde writes it.
    fn write_json(&self, out: &mut Vec<u8>) {
        use std::io::Write as _;
        write!(out, "{{\"index\":{},\"entry\":", self.index).expect("writing to a Vec cannot fail");
        b64_str(out, &self.entry);
        out.extend_from_slice(b",\"proof\":[");
        for (i, h) in self.proof.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            b64_str(out, h);
        }
        out.extend_from_slice(b"]}");
    }
}

fn json_str(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(out, s).expect("writing to a Vec cannot fail");
}

/// `bytes` as a quoted base64 JSON string (base64 needs no escaping).
fn b64_str(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    let start = out.len();
    out.resize(start + base64::encoded_len(bytes.len(), true).expect("a receipt fits in memory"), 0);
    B64.encode_slice(bytes, &mut out[start..]).expect("sized for the encoding");
    out.push(b'"');
}

/// What a valid receipt proves: the receipt itself (borrowed from the caller, or owned when it
/// was parsed here), the checkpoint it is proven against, the signer entry and the sealed status.
/// The run's entries were checked in full without being copied out; [`VerifiedReceipt::entries`]
/// decodes them when someone wants to see them.
#[derive(Clone, Debug)]
pub struct VerifiedReceipt<'r> {
    receipt: Cow<'r, Receipt>,
    /// The checkpoint the receipt is proven against.
    pub checkpoint: Arc<Checkpoint>,
    /// The signer's `identity.registered` entry and its index.
    pub signer: (u64, Arc<Entry>),
    /// The sealed status.
    pub status: RunStatus,
}

impl VerifiedReceipt<'_> {
    /// The run id.
    pub fn run(&self) -> &str {
        &self.receipt.run
    }

    /// The verified receipt.
    pub fn receipt(&self) -> &Receipt {
        &self.receipt
    }

    /// The run's entries with their indices, seal last, borrowed from the receipt.
    pub fn views(&self) -> impl ExactSizeIterator<Item = (u64, EntryView<'_>)> {
        self.receipt.entries.iter().map(|pe| (pe.index, Entry::check(&pe.entry).expect("verified")))
    }

    /// The run's entries with their indices, seal last.
    pub fn entries(&self) -> Vec<(u64, Entry)> {
        self.views().map(|(i, v)| (i, v.to_entry())).collect()
    }

    /// The seal's log index.
    pub fn seal_index(&self) -> u64 {
        self.receipt.entries.last().expect("a verified receipt has a seal").index
    }

    /// The seal's actor.
    pub fn actor(&self) -> &str {
        let seal = self.receipt.entries.last().expect("a verified receipt has a seal");
        Entry::check(&seal.entry).expect("verified").actor()
    }

    /// The same facts, owning the receipt.
    pub fn into_owned(self) -> VerifiedReceipt<'static> {
        VerifiedReceipt {
            receipt: Cow::Owned(self.receipt.into_owned()),
            checkpoint: self.checkpoint,
            signer: self.signer,
            status: self.status,
        }
    }
}

/// What [`ReceiptVerifier::check`] proves about a receipt, besides the receipt itself.
struct Proven {
    checkpoint: Arc<Checkpoint>,
    signer: (u64, Arc<Entry>),
    status: RunStatus,
}

/// Verifies receipts of one trusted log.
#[derive(Debug)]
pub struct ReceiptVerifier {
    log: LogDescriptor,
    key: VerifierKey,
    /// Per checkpoint note text, newest last: its parsed body and proven interior nodes. Few
    /// and compared by text (no hashing of the note on every receipt).
    cache: Vec<(String, CheckpointCache)>,
    /// Signer entries already decoded and checked, by leaf hash: the entry and its key.
    signers: HashMap<Hash, (Arc<Entry>, ed25519_dalek::VerifyingKey)>,
    /// The trust policy a checkpoint must also satisfy (SPEC §8), if one was given.
    policy: Option<Arc<Policy>>,
}

#[derive(Debug)]
struct CheckpointCache {
    checkpoint: Arc<Checkpoint>,
    nodes: ProvenNodes,
    /// The last signer entry proven under this checkpoint, as the receipt carried it, and its
    /// leaf hash: most receipts share their signer, and comparing its index, bytes and proof
    /// costs less than hashing it and walking the proof.
    signer: Option<(ProvenEntry, Hash)>,
}

/// How many checkpoints a verifier remembers, and how many nodes per checkpoint.
const MAX_CACHED_CHECKPOINTS: usize = 16;
const MAX_CACHED_NODES: usize = 1 << 16;
const MAX_CACHED_SIGNERS: usize = 1024;

impl ReceiptVerifier {
    /// A verifier that trusts `log` alone.
    pub fn new(log: LogDescriptor) -> Result<ReceiptVerifier> {
        let key = log.verifier_key()?;
        Ok(ReceiptVerifier { log, key, cache: Vec::new(), signers: HashMap::new(), policy: None })
    }

    /// A verifier that trusts `log` and requires every checkpoint to satisfy `policy` as well
    /// (SPEC §8): step 1 then also checks the policy's witness quorum, at the system clock of
    /// the moment the checkpoint is first met. A policy with `log` lines must list `log`'s key
    /// ([`Error::PolicyLogMismatch`] otherwise).
    pub fn with_policy(log: LogDescriptor, policy: Arc<Policy>) -> Result<ReceiptVerifier> {
        let mut v = ReceiptVerifier::new(log)?;
        policy.check_log(&v.key)?;
        v.policy = Some(policy);
        Ok(v)
    }

    /// The trusted descriptor.
    pub fn log(&self) -> &LogDescriptor {
        &self.log
    }

    /// Parses and verifies receipt JSON.
    pub fn verify_json(&mut self, json: &[u8]) -> Result<VerifiedReceipt<'static>> {
        self.verify_owned(Receipt::from_json(json)?)
    }

    /// Verifies a receipt it takes over.
    pub fn verify_owned(&mut self, r: Receipt) -> Result<VerifiedReceipt<'static>> {
        let Proven { checkpoint, signer, status } = self.check(&r)?;
        Ok(VerifiedReceipt { receipt: Cow::Owned(r), checkpoint, signer, status })
    }

    /// Runs the five steps of SPEC §5; the error names the first failing step and index.
    pub fn verify<'r>(&mut self, r: &'r Receipt) -> Result<VerifiedReceipt<'r>> {
        let Proven { checkpoint, signer, status } = self.check(r)?;
        Ok(VerifiedReceipt { receipt: Cow::Borrowed(r), checkpoint, signer, status })
    }

    fn check(&mut self, r: &Receipt) -> Result<Proven> {
        use ReceiptStep::{Checkpoint as CheckpointStep, ContentHash, Entries, Inclusion, Signature};
        let h = self.log.hash;

        // Step 1: the checkpoint is signed by the trusted log key, for the trusted origin.
        if r.log != self.log {
            return Err(Error::WrongLog {
                found: format!("{} ({}, {})", r.log.origin, r.log.hash, r.log.vkey),
                expected: format!("{} ({}, {})", self.log.origin, self.log.hash, self.log.vkey),
            });
        }
        let at = match self.cache.iter().rposition(|(note, _)| *note == r.checkpoint) {
            Some(at) => at,
            None => {
                let checkpoint = Checkpoint::open(&r.checkpoint, &self.key).map_err(|e| match e {
                    Error::WrongLog { .. } => e,
                    e => Error::receipt(CheckpointStep, None, e),
                })?;
                // Under a policy, the quorum of cosignatures too. Only a checkpoint that passes is
                // cached, and the cache is keyed by the whole note, cosignature lines included.
                if let Some(policy) = &self.policy {
                    policy
                        .verify(&r.checkpoint, Some(&self.key), unix_now())
                        .map_err(|e| Error::receipt(ReceiptStep::WitnessQuorum, None, e))?;
                }
                if self.cache.len() >= MAX_CACHED_CHECKPOINTS {
                    self.cache.remove(0);
                }
                let checkpoint = Arc::new(checkpoint);
                let fresh = CheckpointCache { checkpoint, nodes: ProvenNodes::default(), signer: None };
                self.cache.push((r.checkpoint.clone(), fresh));
                self.cache.len() - 1
            }
        };
        let cached = &mut self.cache[at].1;
        let size = cached.checkpoint.size;
        let root = cached.checkpoint.root;

        // Step 2: every entry and the signer entry are in the checkpoint's tree.
        if r.entries.is_empty() {
            return Err(Error::receipt(Entries, None, "the receipt has no entries"));
        }
        // The signer: byte for byte the one proven last under this checkpoint (the same index,
        // entry and proof), or proven now.
        let known_signer = cached.signer.as_ref().filter(|(signer, _)| *signer == r.signer).map(|(_, leaf)| *leaf);
        let proven = || r.entries.iter().chain(known_signer.is_none().then_some(&r.signer));
        // The cache's entries for these leaves, looked up together before any hashing: in a large
        // cache each lookup misses the CPU caches, and back to back the misses overlap instead of
        // each waiting behind a leaf hash.
        let known: Vec<Option<ProvenNode>> =
            proven().map(|pe| cached.nodes.get(&(pe.index, pe.index.saturating_add(1))).cloned()).collect();
        let mut leaves = Vec::with_capacity(r.entries.len() + 1);
        for (pe, known) in proven().zip(&known) {
            let leaf = h.leaf(&pe.entry);
            verify_inclusion_cached(h, &mut cached.nodes, known.as_ref(), pe.index, size, &leaf, &pe.proof, &root)
                .map_err(|e| Error::receipt(Inclusion, Some(pe.index), e))?;
            leaves.push(leaf);
        }
        let k = r.entries.len() - 1;
        let signer_leaf = match known_signer {
            Some(leaf) => leaf,
            None => {
                cached.signer = Some((r.signer.clone(), leaves[k + 1]));
                leaves[k + 1]
            }
        };

        // Step 3: the entries decode, share the run, have seq 0..=k, and end in a seal.
        let mut seal = None;
        let mut prev = None;
        for (seq, pe) in r.entries.iter().enumerate() {
            let e = Entry::check(&pe.entry).map_err(|e| Error::receipt(Entries, Some(pe.index), e))?;
            if e.run() != r.run {
                return Err(Error::receipt(
                    Entries,
                    Some(pe.index),
                    format!("entry of run {:?}, receipt is for {:?}", e.run(), r.run),
                ));
            }
            if e.seq() != seq as u64 {
                return Err(Error::receipt(Entries, Some(pe.index), format!("seq {} where {seq} belongs", e.seq())));
            }
            if prev.is_some_and(|p| pe.index <= p) {
                return Err(Error::receipt(Entries, Some(pe.index), "indices do not increase with seq"));
            }
            prev = Some(pe.index);
            if seq == k {
                seal = Some(e);
            }
        }
        let seal_index = r.entries[k].index;
        let seal_entry = seal.expect("non-empty");
        let Some(SealAttrs { content_hash: claimed, events, status, sig }) = seal_entry.seal() else {
            return Err(Error::receipt(
                Entries,
                Some(seal_index),
                format!("the last entry is {}, not receipt.sealed", seal_entry.kind()),
            ));
        };

        // Step 4: the seal's content hash and count cover exactly the entries before it.
        if events != k as u64 {
            return Err(Error::receipt(
                ContentHash,
                Some(seal_index),
                format!("seal counts {events} events, the receipt holds {k}"),
            ));
        }
        if content_hash(&leaves[..k]) != claimed {
            return Err(Error::receipt(
                ContentHash,
                Some(seal_index),
                "content hash does not match the entries before the seal",
            ));
        }

        // Step 5: the signer entry is the actor's key, registered before the seal, and it signed.
        let (signer, vk) = match self.signers.get(&signer_leaf) {
            Some((entry, vk)) => (entry.clone(), *vk),
            None => {
                let signer =
                    Entry::decode(&r.signer.entry).map_err(|e| Error::receipt(Signature, Some(r.signer.index), e))?;
                let Event::IdentityRegistered { public_key } = &signer.event else {
                    return Err(Error::receipt(
                        Signature,
                        Some(r.signer.index),
                        format!("signer entry is {}, not identity.registered", signer.kind()),
                    ));
                };
                let vk = crate::keys::check_public_key(public_key)
                    .map_err(|e| Error::receipt(Signature, Some(r.signer.index), e))?;
                if self.signers.len() >= MAX_CACHED_SIGNERS {
                    self.signers.clear();
                }
                let signer = Arc::new(signer);
                self.signers.insert(signer_leaf, (signer.clone(), vk));
                (signer, vk)
            }
        };
        if signer.run.as_str().strip_prefix(IDENTITY_RUN_PREFIX) != Some(seal_entry.actor()) {
            let expected_run = format!("{IDENTITY_RUN_PREFIX}{}", seal_entry.actor());
            return Err(Error::receipt(
                Signature,
                Some(r.signer.index),
                format!("signer entry is in run {:?}, the seal's actor needs {expected_run:?}", signer.run.as_str()),
            ));
        }
        if r.signer.index >= seal_index {
            return Err(Error::receipt(
                Signature,
                Some(r.signer.index),
                format!("identity registered at index {}, not before the seal at {seal_index}", r.signer.index),
            ));
        }
        let msg = seal_message(&r.run, events, &claimed, status);
        if !verify_strict(&vk, msg.as_bytes(), &sig) {
            return Err(Error::receipt(
                Signature,
                Some(seal_index),
                format!("seal signature does not verify under the key of {:?}", seal_entry.actor()),
            ));
        }
        Ok(Proven { checkpoint: cached.checkpoint.clone(), signer: (r.signer.index, signer), status })
    }
}

/// Subtree `[start, end)` → its hash and the proof hashes above it (shared with the proof they
/// came from, from `offset` on), all proven to the checkpoint's root.
type ProvenNodes = HashMap<(u64, u64), ProvenNode, BuildHasherDefault<RangeHasher>>;
type ProvenNode = (Hash, Arc<[Hash]>, u8);

/// A cheap hasher for `(start, end)` keys (they are not attacker-chosen beyond the proof shape).
#[derive(Default)]
struct RangeHasher(u64);

impl Hasher for RangeHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// RFC 9162 inclusion verification that walks the tree's structure, so that each step knows the
/// subtree `[start, end)` it has reached, and reuses subtrees already proven to the same root.
/// `known_leaf` is what the cache held for the leaf itself when the caller looked it up.
#[allow(clippy::too_many_arguments)]
fn verify_inclusion_cached(
    h: TreeHash,
    nodes: &mut ProvenNodes,
    known_leaf: Option<&ProvenNode>,
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<()> {
    if index >= size {
        return Err(Error::BadInclusionProof { index, size, reason: "index is not below the checkpoint's tree size" });
    }
    // The subtrees on the path from the root down to the leaf (at most 64).
    let mut ranges = [(0u64, 0u64); 64];
    let mut depth = 0;
    let (mut start, mut end) = (0u64, size);
    while end - start > 1 {
        ranges[depth] = (start, end);
        depth += 1;
        let k = split_point(end - start);
        if index - start < k {
            end = start + k;
        } else {
            start += k;
        }
    }
    if proof.len() != depth {
        return Err(Error::BadInclusionProof { index, size, reason: "proof length does not match the tree" });
    }
    // Walk up: `path[i]` is the hash of the subtree below step i.
    let mut path = [[0u8; 32]; 64];
    let mut node = *leaf;
    let mut below = (index, index + 1);
    let mut fresh = depth;
    for (i, sibling) in proof.iter().enumerate() {
        let cached = if i == 0 { known_leaf } else { nodes.get(&below) };
        if let Some((known, rest, offset)) = cached
            && *known == node
            && rest[usize::from(*offset)..] == proof[i..]
        {
            fresh = i;
            break;
        }
        path[i] = node;
        let (start, end) = ranges[depth - 1 - i];
        node = if below.0 == start { h.node(&node, sibling) } else { h.node(sibling, &node) };
        below = (start, end);
    }
    if fresh == depth && node != *root {
        return Err(Error::BadInclusionProof { index, size, reason: "computed root differs from the checkpoint root" });
    }
    // Remember the newly proven part of the path.
    if fresh > 0 {
        if nodes.len() + fresh > MAX_CACHED_NODES {
            nodes.clear();
        }
        let shared: Arc<[Hash]> = proof.into();
        let mut below = (index, index + 1);
        for (i, hash) in path[..fresh].iter().enumerate() {
            nodes.entry(below).or_insert_with(|| (*hash, shared.clone(), i as u8));
            below = ranges[depth - 1 - i];
        }
    }
    Ok(())
}

mod b64 {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(b))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<u8>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        B64.decode(s.as_bytes()).map_err(serde::de::Error::custom)
    }
}

pub(crate) mod b64_hashes {
    use super::*;
    use serde::ser::SerializeSeq;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[Hash], s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for h in v {
            seq.serialize_element(&B64.encode(h))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<Hash>, D::Error> {
        let v = <Vec<std::borrow::Cow<'de, str>>>::deserialize(d)?;
        v.iter()
            .map(|s| {
                let b = B64.decode(s.as_bytes()).map_err(serde::de::Error::custom)?;
                Hash::try_from(b.as_slice())
                    .map_err(|_| serde::de::Error::custom(format!("proof hash of {} bytes, expected 32", b.len())))
            })
            .collect()
    }
}
