//! Compliance packs (SPEC §6): what proves that entries `[start, end)` are exactly the log's
//! entries at those positions, and its streaming verification.
//!
//! A pack is `manifest.json`, `checkpoint`, `proof.json` and `entries.bin` (plus optional files the
//! manifest lists). [`PackVerifier`] takes the three small files first, then `entries.bin` in
//! chunks of any size, so a pack of any length verifies in memory bounded by the number of runs
//! it holds, never by its entries. What it trusts is the [`LogDescriptor`] it is given; everything
//! in the pack is checked against that.
//!
//! Seal signatures, most of the cost, are checked in batches on every CPU the process may use
//! ([`PackVerifier::threads`]). Batching changes nothing an auditor sees: every error the verifier
//! raises first checks the queued seals, and the queue is empty once the last entry is in, so the
//! error reported is the first in index order, as if every entry had been checked one after the
//! other. A caller that fails for reasons of its own while `entries.bin` is still arriving (a read
//! error) calls [`PackVerifier::check_queued`] first, for the same reason.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::checkpoint::{Checkpoint, LogDescriptor};
use crate::entry::{Entry, EntryView, Event, IDENTITY_RUN_PREFIX, Kind, SealAttrs};
use crate::keys::verify_strict;
use crate::merkle::{CompactRange, verify_consistency};
use crate::seal::{content_hash, seal_message};
use crate::{Error, Hash, Result};

/// The pack format string.
pub const PACK_FORMAT: &str = "a2a-ledger/pack/v1";
/// File names of the required files.
pub const MANIFEST: &str = "manifest.json";
/// The signed checkpoint note.
pub const CHECKPOINT: &str = "checkpoint";
/// `{"left": […], "consistency": […]}`.
pub const PROOF: &str = "proof.json";
/// The entries, each a 4-byte big-endian length and the bytes.
pub const ENTRIES: &str = "entries.bin";
/// Optional: earlier checkpoints with consistency proofs to the pack's checkpoint.
pub const HISTORY: &str = "history.json";
/// Optional: `payloads/<lowercase hex BLAKE3>`, the bytes of a payload an entry of the pack names.
pub const PAYLOADS_DIR: &str = "payloads/";

/// The pack file name of the payload `hash`.
pub fn payload_file(hash: &Hash) -> String {
    format!("{PAYLOADS_DIR}{}", hex::encode(hash))
}

/// The payloads an entry names by BLAKE3: its `payload` field, a `task.accepted`'s `input_hash`,
/// an `artifact.added`'s and a workspace read's or write's `hash`. (A `payload.erased` entry
/// names the payload it erased; that one is reported as erased, not as named.)
pub fn named_payloads(e: &EntryView<'_>) -> Vec<Hash> {
    let mut out: Vec<Hash> = e.payload().into_iter().collect();
    if matches!(e.kind(), Kind::TaskAccepted | Kind::WorkspaceRead | Kind::WorkspaceWritten | Kind::ArtifactAdded) {
        match e.event() {
            Event::TaskAccepted { input_hash: h, .. }
            | Event::WorkspaceRead { hash: h, .. }
            | Event::WorkspaceWritten { hash: h, .. }
            | Event::ArtifactAdded { hash: h, .. } => out.push(h),
            _ => {}
        }
    }
    out
}

/// `manifest.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`PACK_FORMAT`].
    pub format: String,
    /// The log the pack claims to come from.
    pub log: LogDescriptor,
    /// First index in the pack.
    pub start: u64,
    /// One past the last index.
    pub end: u64,
    /// Size of the checkpoint the pack is proven against.
    pub tree_size: u64,
    /// When the pack was made, RFC 3339.
    pub created: String,
    /// Every other file of the pack, by name, with the lowercase hex BLAKE3 of its bytes.
    pub files: BTreeMap<String, String>,
}

/// `proof.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackProof {
    /// The compact range of `[0, start)`, largest subtree first.
    #[serde(with = "crate::receipt::b64_hashes")]
    pub left: Vec<Hash>,
    /// Consistency proof from `end` to `tree_size`.
    #[serde(with = "crate::receipt::b64_hashes")]
    pub consistency: Vec<Hash>,
}

/// One item of `history.json`: an earlier checkpoint and its consistency proof to the pack's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryItem {
    /// The signed note.
    pub checkpoint: String,
    /// Consistency proof from its size to the pack's tree size.
    #[serde(with = "crate::receipt::b64_hashes")]
    pub consistency: Vec<Hash>,
}

impl Manifest {
    /// The manifest of a pack of `[start, end)` against `checkpoint` (a signed note of size
    /// `tree_size`), with the pack's `proof.json` and the BLAKE3 of its `entries.bin`.
    pub fn new(
        log: &LogDescriptor,
        (start, end, tree_size): (u64, u64, u64),
        created: String,
        checkpoint: &[u8],
        proof_json: &[u8],
        entries_blake3: &blake3::Hash,
    ) -> Manifest {
        let files = [
            (CHECKPOINT.to_string(), blake3_hex(checkpoint)),
            (PROOF.to_string(), blake3_hex(proof_json)),
            (ENTRIES.to_string(), entries_blake3.to_hex().to_string()),
        ];
        Manifest {
            format: PACK_FORMAT.to_string(),
            log: log.clone(),
            start,
            end,
            tree_size,
            created,
            files: files.into(),
        }
    }

    /// Lists the payload `hash` (`payloads/<hex>`, whose BLAKE3 is its name).
    pub fn add_payload(&mut self, hash: &Hash) {
        self.files.insert(payload_file(hash), hex::encode(hash));
    }
}

/// The proof of a pack of `[start, end)` against the tree of `tree_size` entries of `log`.
pub fn proof(log: &crate::Log, start: u64, end: u64, tree_size: u64) -> Result<PackProof> {
    Ok(PackProof {
        left: log.compact_range(start)?.hashes().to_vec(),
        consistency: log.consistency_proof(end, tree_size)?,
    })
}

/// A whole pack of `[start, end)` against the log's newest checkpoint, in memory, as
/// `(file name, bytes)` in the order `ledger-server` streams them. For tools, tests and small
/// ranges: `ledger-server` streams packs of any size instead.
pub fn build(log: &crate::Log, start: u64, end: u64, created: String) -> Result<Vec<(String, Vec<u8>)>> {
    build_with_payloads(log, start, end, created, None)
}

/// Bytes handed to [`write_tar`]'s sink at a time (the last chunk may be shorter).
pub const TAR_CHUNK: usize = 256 << 10;

/// Streams the pack of `[start, end)` against the signed checkpoint `note` (of `tree_size`) as a
/// tar, in chunks of about [`TAR_CHUNK`] bytes handed to `out` (an error from `out` stops it):
/// `manifest.json`, `checkpoint`, `proof.json`, `entries.bin`, then with `payloads` the stored
/// payloads the entries name as `payloads/<hex>`. Memory stays at one chunk whatever the range:
/// the entries are read twice, once to hash and measure them for the manifest, once to send
/// them (entries below a checkpoint never change, so both passes read the same bytes). A payload
/// erased between the manifest and its turn is an error: the reader then holds a pack that does
/// not verify, never a wrong one. `created` (RFC 3339) and `mtime` (Unix seconds) come from the
/// caller's clock. Both services stream their packs with it.
#[allow(clippy::too_many_arguments)]
pub fn write_tar(
    log: &crate::Log,
    payloads: Option<&crate::PayloadStore>,
    note: &str,
    tree_size: u64,
    (start, end): (u64, u64),
    (created, mtime): (String, u64),
    out: &mut dyn FnMut(bytes::Bytes) -> Result<()>,
) -> Result<()> {
    // Pass 1: size and hash of entries.bin, and the payloads its entries name.
    let mut hasher = blake3::Hasher::new();
    let mut entries_len = 0u64;
    let mut named = BTreeSet::new();
    log.scan(start, end, &mut |_, e| {
        hasher.update(&frame_header(e));
        hasher.update(e);
        entries_len += 4 + e.len() as u64;
        if payloads.is_some() {
            named.extend(named_payloads(&Entry::check(e)?));
        }
        Ok(())
    })?;
    // The payloads to include, with their lengths (missing and erased ones are left out).
    let mut included = Vec::new();
    if let Some(p) = payloads {
        for h in named {
            if let crate::PayloadState::Present { len } = p.state(&h)? {
                included.push((h, len));
            }
        }
    }
    let proof_json = serde_json::to_vec(&proof(log, start, end, tree_size)?).expect("serialisable");
    let checkpoint = note.as_bytes();
    let mut manifest =
        Manifest::new(log.descriptor(), (start, end, tree_size), created, checkpoint, &proof_json, &hasher.finalize());
    for (h, _) in &included {
        manifest.add_payload(h);
    }
    let manifest_json = serde_json::to_vec_pretty(&manifest).expect("serialisable");

    let mut tar = TarOut { buf: Vec::with_capacity(TAR_CHUNK + 512), out };
    for (name, body) in [(MANIFEST, &manifest_json[..]), (CHECKPOINT, checkpoint), (PROOF, &proof_json[..])] {
        tar.header(name, body.len() as u64, mtime)?;
        tar.put(body)?;
        tar.pad(body.len() as u64)?;
    }
    // Pass 2: entries.bin itself.
    tar.header(ENTRIES, entries_len, mtime)?;
    log.scan(start, end, &mut |_, e| {
        tar.put(&frame_header(e))?;
        tar.put(e)
    })?;
    tar.pad(entries_len)?;
    if let Some(p) = payloads {
        for (h, len) in &included {
            tar.header(&payload_file(h), *len, mtime)?;
            let mut sent = 0u64;
            for chunk in p.read(h)? {
                let chunk = chunk?;
                sent += chunk.len() as u64;
                tar.put(&chunk)?;
            }
            if sent != *len {
                return Err(Error::Corrupt(format!(
                    "payload {} held {sent} bytes, {len} when the manifest was made",
                    hex::encode(h)
                )));
            }
            tar.pad(*len)?;
        }
    }
    tar.put(&[0u8; 1024])?; // end-of-archive marker
    tar.flush()
}

/// The tar byte stream of [`write_tar`] with its chunk buffer.
struct TarOut<'a> {
    buf: Vec<u8>,
    out: &'a mut dyn FnMut(bytes::Bytes) -> Result<()>,
}

impl TarOut<'_> {
    fn header(&mut self, name: &str, size: u64, mtime: u64) -> Result<()> {
        let mut h = tar::Header::new_ustar();
        h.set_path(name).map_err(|e| Error::Storage(format!("tar header for {name}: {e}")))?;
        h.set_size(size);
        h.set_mode(0o644);
        h.set_mtime(mtime);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        self.put(h.as_bytes())
    }

    fn pad(&mut self, len: u64) -> Result<()> {
        let rem = (len % 512) as usize;
        if rem != 0 {
            self.put(&[0u8; 512][..512 - rem])?;
        }
        Ok(())
    }

    fn put(&mut self, b: &[u8]) -> Result<()> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= TAR_CHUNK { self.flush() } else { Ok(()) }
    }

    fn flush(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = bytes::Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(TAR_CHUNK + 512)));
        (self.out)(chunk)
    }
}

/// Like [`build`], with `payloads/<hex>` for every payload an entry of the range names
/// ([`named_payloads`]) that `payloads` holds (missing and erased ones are left out), after
/// `entries.bin`.
pub fn build_with_payloads(
    log: &crate::Log,
    start: u64,
    end: u64,
    created: String,
    payloads: Option<&crate::PayloadStore>,
) -> Result<Vec<(String, Vec<u8>)>> {
    let cp = log.checkpoint();
    let n = cp.checkpoint.size;
    let mut entries = Vec::new();
    let mut named = BTreeSet::new();
    log.scan(start, end, &mut |_, e| {
        entries.extend_from_slice(&frame_header(e));
        entries.extend_from_slice(e);
        if payloads.is_some() {
            named.extend(named_payloads(&Entry::check(e)?));
        }
        Ok(())
    })?;
    let proof = serde_json::to_vec(&proof(log, start, end, n)?).expect("serialisable");
    let mut manifest =
        Manifest::new(log.descriptor(), (start, end, n), created, cp.note.as_bytes(), &proof, &blake3::hash(&entries));
    let mut files = Vec::new();
    if let Some(p) = payloads {
        for h in &named {
            match p.get(h) {
                Ok(Some(bytes)) => {
                    manifest.add_payload(h);
                    files.push((payload_file(h), bytes));
                }
                Ok(None) | Err(Error::PayloadErased { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    let mut out = vec![
        (MANIFEST.to_string(), serde_json::to_vec_pretty(&manifest).expect("serialisable")),
        (CHECKPOINT.to_string(), cp.note.clone().into_bytes()),
        (PROOF.to_string(), proof),
        (ENTRIES.to_string(), entries),
    ];
    out.extend(files);
    Ok(out)
}

/// Called with `(index, bytes, entry, leaf hash)` for each entry of a pack that passed its checks.
pub type EachEntry<'a> = &'a mut dyn FnMut(u64, &[u8], &EntryView<'_>, &Hash);

/// The 4-byte frame header of one entry in `entries.bin`.
pub fn frame_header(entry: &[u8]) -> [u8; 4] {
    (entry.len() as u32).to_be_bytes()
}

/// A run of the pack whose seal could not be checked from the pack alone, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PartialRun {
    /// The run.
    pub run: String,
    /// Why (the range cuts it, or its signer's key is registered before the range).
    pub reason: String,
}

/// What a valid pack proves.
#[derive(Clone, Debug, Serialize)]
pub struct PackReport {
    /// The pack's range and checkpoint size.
    pub start: u64,
    /// One past the last index.
    pub end: u64,
    /// The checkpoint's tree size.
    pub tree_size: u64,
    /// Seals whose run lies wholly in the range, all verified.
    pub seals_verified: u64,
    /// Runs with seals that could not be checked from the pack alone.
    pub partial: Vec<PartialRun>,
    /// Runs whose last entry in the pack is not a seal (still running, or cut by the end);
    /// identity runs (`id/…`) and erasures (1.1: one `payload.erased` entry in its own run),
    /// which are never sealed, are not counted.
    pub open_runs: u64,
    /// Earlier checkpoints from `history.json` proven consistent.
    pub history: u64,
    /// Payload files (`payloads/<hex>`) in the pack, each checked against its name.
    pub payloads_included: u64,
    /// Payloads entries of the pack name that the pack does not hold and no erasure in the pack
    /// explains (lowercase hex; a pack made without payloads lists every one).
    pub payloads_absent: Vec<String>,
    /// Payloads erased by a `payload.erased` entry in the pack: when, who, why.
    pub payloads_erased: Vec<ErasedPayload>,
}

/// A `payload.erased` entry of a pack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ErasedPayload {
    /// The erased payload's BLAKE3, lowercase hex.
    pub hash: String,
    /// The erasure entry's log index.
    pub index: u64,
    /// Its `ts`, nanoseconds since the Unix epoch.
    pub ts: i64,
    /// Who approved the erasure.
    pub approver: String,
    /// Why.
    pub reason: String,
}

/// Per-run state while streaming entries.
#[derive(Debug)]
struct RunState {
    /// Seq of the run's first entry in the pack (0: the run starts inside the pack).
    first_seq: u64,
    next_seq: u64,
    /// Leaf hashes of the run's entries in the pack, kept while the run starts in the pack.
    leaves: Vec<Hash>,
    /// The run's last entry so far is a seal, or the run is an erasure (never sealed).
    closed: bool,
}

/// Streaming verification of one pack. See the module docs.
#[derive(Debug)]
pub struct PackVerifier {
    log: LogDescriptor,
    manifest: Manifest,
    checkpoint: Checkpoint,
    proof: PackProof,
    range: CompactRange,
    next_index: u64,
    runs: HashMap<String, RunState>,
    /// Identity keys seen in the pack: actor → [(index, key)].
    /// Decompressed once, at registration: seals are many, identities few.
    identities: HashMap<String, Vec<(u64, ed25519_dalek::VerifyingKey)>>,
    partial: BTreeMap<String, String>,
    seals_verified: u64,
    /// Seals whose signature is still to be checked, in index order (see [`PendingSeal`]).
    pending: Vec<PendingSeal>,
    /// Threads that check seal signatures.
    threads: usize,
    /// Seals queued per thread before they are checked.
    batch: usize,
    entries_hash: blake3::Hasher,
    /// Bytes of a frame split across chunks.
    carry: Vec<u8>,
    /// Payloads the entries name.
    named: BTreeSet<Hash>,
    /// Payload files checked.
    included: BTreeSet<Hash>,
    /// Erasure entries, by the hash they erased.
    erased: BTreeMap<Hash, ErasedPayload>,
}

fn invalid(file: &str, index: Option<u64>, reason: impl ToString) -> Error {
    Error::PackInvalid { file: file.to_string(), index, reason: reason.to_string() }
}

fn blake3_hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

impl PackVerifier {
    /// Checks the manifest against `log`, the checkpoint's signature and size, and the hashes of
    /// `checkpoint` and `proof.json`; then waits for `entries.bin`.
    pub fn new(log: &LogDescriptor, manifest: &[u8], checkpoint: &[u8], proof: &[u8]) -> Result<PackVerifier> {
        let m: Manifest = serde_json::from_slice(manifest).map_err(|e| invalid(MANIFEST, None, e))?;
        if m.format != PACK_FORMAT {
            return Err(invalid(MANIFEST, None, format!("format {:?}, expected {PACK_FORMAT:?}", m.format)));
        }
        if m.log != *log {
            return Err(Error::WrongLog {
                found: serde_json::to_string(&m.log).unwrap_or_default(),
                expected: serde_json::to_string(log).unwrap_or_default(),
            });
        }
        if m.start > m.end || m.end > m.tree_size {
            return Err(invalid(
                MANIFEST,
                None,
                format!("range [{}, {}) does not fit a tree of size {}", m.start, m.end, m.tree_size),
            ));
        }
        for required in [CHECKPOINT, PROOF, ENTRIES] {
            if !m.files.contains_key(required) {
                return Err(invalid(MANIFEST, None, format!("files does not list {required}")));
            }
        }
        check_file_hash(&m, CHECKPOINT, checkpoint)?;
        check_file_hash(&m, PROOF, proof)?;
        let note = std::str::from_utf8(checkpoint).map_err(|e| invalid(CHECKPOINT, None, e))?;
        let cp = Checkpoint::open(note, &log.verifier_key()?).map_err(|e| invalid(CHECKPOINT, None, e))?;
        if cp.size != m.tree_size {
            return Err(invalid(
                CHECKPOINT,
                None,
                format!("checkpoint has size {}, the manifest says {}", cp.size, m.tree_size),
            ));
        }
        let p: PackProof = serde_json::from_slice(proof).map_err(|e| invalid(PROOF, None, e))?;
        let range = CompactRange::from_parts(m.start, p.left.clone()).map_err(|_| {
            invalid(
                PROOF,
                None,
                format!("left has {} hashes; start {} needs {}", p.left.len(), m.start, m.start.count_ones()),
            )
        })?;
        Ok(PackVerifier {
            log: log.clone(),
            next_index: m.start,
            manifest: m,
            checkpoint: cp,
            proof: p,
            range,
            runs: HashMap::new(),
            identities: HashMap::new(),
            partial: BTreeMap::new(),
            seals_verified: 0,
            pending: Vec::new(),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_THREADS),
            batch: SEALS_PER_THREAD,
            entries_hash: blake3::Hasher::new(),
            carry: Vec::new(),
            named: BTreeSet::new(),
            included: BTreeSet::new(),
            erased: BTreeMap::new(),
        })
    }

    /// Checks seal signatures on `threads` threads (1 to 256). The default is the number of
    /// CPUs this process may run on (`taskset`, cgroup limits).
    pub fn threads(mut self, threads: usize) -> PackVerifier {
        self.threads = threads.clamp(1, MAX_THREADS);
        self
    }

    /// Queues up to `per_thread` seals per thread before checking them (default 512; 1 checks
    /// every seal as soon as its entry is in).
    pub fn seal_batch(mut self, per_thread: usize) -> PackVerifier {
        self.batch = per_thread.max(1);
        self
    }

    /// The manifest (checked against the log).
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Entries taken so far (their seals' signatures may still be queued).
    pub fn entries_done(&self) -> u64 {
        self.next_index - self.manifest.start
    }

    /// Feeds the next bytes of `entries.bin`.
    pub fn entries_bin(&mut self, chunk: &[u8]) -> Result<()> {
        self.entries_bin_each(chunk, &mut |_, _, _, _| {})
    }

    /// Like [`PackVerifier::entries_bin`], calling `each(index, bytes, entry, leaf hash)` for
    /// every entry once its own checks passed (an exporter writes rows as they are proven well
    /// formed; a seal's signature may still be queued, and the pack as a whole is proven only by
    /// [`PackVerifier::finish`]).
    pub fn entries_bin_each(&mut self, chunk: &[u8], each: EachEntry<'_>) -> Result<()> {
        let fed = self.feed(chunk, each);
        self.first_error(fed)
    }

    /// Reports the first failure in index order: a seal queued before `result`'s error failed
    /// first. Every error the verifier raises goes through here.
    fn first_error<T>(&mut self, result: Result<T>) -> Result<T> {
        match result {
            Ok(v) => Ok(v),
            Err(e) => {
                self.check_queued()?;
                Err(e)
            }
        }
    }

    /// Checks the queued seal signatures now (all of them, on the verifier's threads) and
    /// reports the one at the lowest index that fails. A failed check keeps its queue, so every
    /// later call (and [`PackVerifier::finish`]) fails the same way.
    pub fn check_queued(&mut self) -> Result<()> {
        let failed = first_bad_seal(&self.pending, self.threads);
        if let Some(i) = failed {
            let p = &self.pending[i];
            return Err(invalid(
                ENTRIES,
                Some(p.index),
                format!("seal of run {:?}: signature does not verify under {:?}'s key", p.run, p.actor),
            ));
        }
        self.seals_verified += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    fn feed(&mut self, mut chunk: &[u8], each: EachEntry<'_>) -> Result<()> {
        self.entries_hash.update(chunk);
        if !self.carry.is_empty() {
            // (Not `map_or`: its default would be evaluated, and underflow, with a whole header.)
            let need = match frame_len(&self.carry) {
                Some(n) => 4 + n - self.carry.len(),
                None => 4 - self.carry.len(),
            };
            let take = need.min(chunk.len());
            self.carry.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
            if self.carry.len() == 4 {
                // The header is complete; the body may still be partial.
                let n = self.checked_frame_len(&self.carry)?;
                let take = n.min(chunk.len());
                self.carry.extend_from_slice(&chunk[..take]);
                chunk = &chunk[take..];
            }
            match frame_len(&self.carry) {
                Some(n) if self.carry.len() == 4 + n => {
                    let frame = std::mem::take(&mut self.carry);
                    self.entry(&frame[4..], each)?;
                }
                _ => return Ok(()),
            }
        }
        while chunk.len() >= 4 {
            let n = self.checked_frame_len(chunk)?;
            if chunk.len() < 4 + n {
                break;
            }
            self.entry(&chunk[4..4 + n], each)?;
            chunk = &chunk[4 + n..];
        }
        self.carry.extend_from_slice(chunk);
        Ok(())
    }

    /// The length in a frame header, refused when no entry can be that long: a hostile length
    /// must not make the verifier buffer the rest of the file.
    fn checked_frame_len(&self, header: &[u8]) -> Result<usize> {
        let n = frame_len(header).expect("4 bytes");
        if n > crate::entry::MAX_ENTRY_BYTES {
            return Err(invalid(
                ENTRIES,
                Some(self.next_index),
                format!("a frame of {n} bytes, over the {}-byte entry limit", crate::entry::MAX_ENTRY_BYTES),
            ));
        }
        Ok(n)
    }

    fn entry(&mut self, bytes: &[u8], each: EachEntry<'_>) -> Result<()> {
        let index = self.next_index;
        if index >= self.manifest.end {
            return Err(invalid(
                ENTRIES,
                Some(index),
                format!("more than the {} entries the manifest names", self.manifest.end - self.manifest.start),
            ));
        }
        let e = Entry::check(bytes).map_err(|err| invalid(ENTRIES, Some(index), err))?;
        let leaf = self.log.hash.leaf(bytes);
        self.range.push(self.log.hash, leaf, |_, _, _| {});
        self.next_index += 1;
        self.named.extend(named_payloads(&e));
        if e.kind() == Kind::PayloadErased
            && let Event::PayloadErased { hash, reason, approver } = e.event()
        {
            let erased = ErasedPayload { hash: hex::encode(hash), index, ts: e.ts(), approver, reason };
            self.erased.insert(hash, erased);
        }

        let run = e.run();
        let state = match self.runs.get_mut(run) {
            Some(s) => {
                if e.seq() != s.next_seq {
                    return Err(invalid(
                        ENTRIES,
                        Some(index),
                        format!("run {run:?} has seq {} after seq {}", e.seq(), s.next_seq - 1),
                    ));
                }
                s
            }
            None => {
                if e.seq() != 0 {
                    self.partial.insert(run.to_string(), format!("the range starts at seq {} of the run", e.seq()));
                }
                self.runs.entry(run.to_string()).or_insert(RunState {
                    first_seq: e.seq(),
                    next_seq: e.seq(),
                    leaves: Vec::new(),
                    closed: false,
                })
            }
        };
        state.next_seq = e.seq() + 1;
        let seal = e.seal();
        state.closed = seal.is_some() || e.erased().is_some();
        match (e.public_key(), seal) {
            (Some(public_key), _) => {
                let actor = run.strip_prefix(IDENTITY_RUN_PREFIX).unwrap_or(run).to_string();
                let vk = ed25519_dalek::VerifyingKey::from_bytes(&public_key)
                    .map_err(|err| invalid(ENTRIES, Some(index), format!("identity key of {actor:?}: {err}")))?;
                self.identities.entry(actor).or_default().push((index, vk));
            }
            (_, Some(SealAttrs { events, .. })) if events != e.seq() => {
                return Err(invalid(
                    ENTRIES,
                    Some(index),
                    format!("seal of run {run:?} at seq {} says events {events}", e.seq()),
                ));
            }
            (_, Some(SealAttrs { content_hash: ch, events, status, sig })) if state.first_seq == 0 => {
                if content_hash(&state.leaves) != ch {
                    return Err(invalid(
                        ENTRIES,
                        Some(index),
                        format!("seal of run {run:?}: content hash does not match the run's entries"),
                    ));
                }
                let key = self
                    .identities
                    .get(e.actor())
                    .and_then(|keys| keys.iter().rev().find(|(i, _)| *i < index))
                    .map(|(_, k)| *k);
                match key {
                    Some(vk) => {
                        // Queued, and checked in batches on every thread: the signature is most
                        // of a pack's cost. An error later in the pack first checks the queue, so
                        // the failure reported is still the first in index order.
                        self.pending.push(PendingSeal {
                            index,
                            vk,
                            msg: seal_message(run, events, &ch, status),
                            sig,
                            run: run.to_string(),
                            actor: e.actor().to_string(),
                        });
                        self.partial.remove(run);
                    }
                    None => {
                        self.partial.insert(
                            run.to_string(),
                            format!("the key of {:?} is registered before the pack's range", e.actor()),
                        );
                    }
                }
            }
            _ => {}
        }
        if state.first_seq == 0 {
            state.leaves.push(leaf);
        }
        each(index, bytes, &e, &leaf);
        // Check a full queue, and everything once the last entry is in: what follows (the
        // caller's own checks of other files) must not be reported before a bad seal.
        if self.pending.len() >= self.batch * self.threads || self.next_index == self.manifest.end {
            self.check_queued()?;
        }
        Ok(())
    }

    /// Checks a further file the manifest lists (for example `history.json` or a payload).
    pub fn other_file(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        let checked = self.check_other_file(name, bytes);
        self.first_error(checked)
    }

    fn check_other_file(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        if let Some(hex_name) = name.strip_prefix(PAYLOADS_DIR) {
            // Named by its BLAKE3: checked against the name first, so that a changed byte fails
            // naming this file (the manifest lists the same hash).
            let got = blake3::hash(bytes);
            if got.to_hex().as_str() != hex_name {
                return Err(invalid(name, None, format!("the payload hashes to {}, not to its name", got.to_hex())));
            }
            self.included.insert(*got.as_bytes());
        }
        check_file_hash(&self.manifest, name, bytes)?;
        if name == HISTORY {
            let items: Vec<HistoryItem> = serde_json::from_slice(bytes).map_err(|e| invalid(HISTORY, None, e))?;
            let vkey = self.log.verifier_key()?;
            for (i, item) in items.iter().enumerate() {
                let old = Checkpoint::open(&item.checkpoint, &vkey)
                    .map_err(|e| invalid(HISTORY, Some(i as u64), format!("checkpoint {i}: {e}")))?;
                verify_consistency(
                    self.log.hash,
                    old.size,
                    self.checkpoint.size,
                    &old.root,
                    &self.checkpoint.root,
                    &item.consistency,
                )
                .map_err(|e| {
                    invalid(
                        HISTORY,
                        Some(i as u64),
                        format!("checkpoint {i} (size {}) is not consistent with the pack's: {e}", old.size),
                    )
                })?;
            }
        }
        Ok(())
    }

    /// Ends `entries.bin`: checks its count and hash, folds the tree and proves it against the
    /// checkpoint.
    pub fn finish(mut self) -> Result<PackReport> {
        self.check_queued()?;
        let m = &self.manifest;
        if !self.carry.is_empty() {
            return Err(invalid(
                ENTRIES,
                Some(self.next_index),
                format!("truncated: {} bytes of an unfinished entry at the end", self.carry.len()),
            ));
        }
        if self.next_index != m.end {
            return Err(invalid(
                ENTRIES,
                None,
                format!("holds {} entries, the manifest says {}", self.next_index - m.start, m.end - m.start),
            ));
        }
        let got = self.entries_hash.finalize().to_hex().to_string();
        if m.files.get(ENTRIES) != Some(&got) {
            return Err(invalid(
                MANIFEST,
                None,
                format!("{ENTRIES} hashes to {got}, the manifest says {}", m.files[ENTRIES]),
            ));
        }
        let root = self.range.root(self.log.hash);
        verify_consistency(self.log.hash, m.end, m.tree_size, &root, &self.checkpoint.root, &self.proof.consistency)
            .map_err(|e| invalid(PROOF, None, format!("the entries do not lead to the checkpoint: {e}")))?;
        let open_runs =
            self.runs.iter().filter(|(run, s)| !s.closed && !run.starts_with(IDENTITY_RUN_PREFIX)).count() as u64;
        let mut partial: Vec<PartialRun> =
            self.partial.into_iter().map(|(run, reason)| PartialRun { run, reason }).collect();
        partial.sort_by(|a, b| a.run.cmp(&b.run));
        let payloads_absent = self
            .named
            .iter()
            .filter(|h| !self.included.contains(*h) && !self.erased.contains_key(*h))
            .map(hex::encode)
            .collect();
        Ok(PackReport {
            start: m.start,
            end: m.end,
            tree_size: m.tree_size,
            seals_verified: self.seals_verified,
            partial,
            open_runs,
            history: 0,
            payloads_included: self.included.len() as u64,
            payloads_absent,
            payloads_erased: self.erased.into_values().collect(),
        })
    }
}

/// Seals queued per thread before they are checked: enough that starting the threads
/// costs little against the signatures (tens of µs each; `BENCHMARKS.md`), few enough to bound
/// memory.
const SEALS_PER_THREAD: usize = 512;
/// The most threads a verifier starts.
const MAX_THREADS: usize = 256;

/// A seal whose run, content hash and signer are checked, waiting for its signature check.
#[derive(Debug)]
struct PendingSeal {
    index: u64,
    vk: ed25519_dalek::VerifyingKey,
    msg: String,
    sig: [u8; 64],
    run: String,
    actor: String,
}

impl PendingSeal {
    fn verifies(&self) -> bool {
        verify_strict(&self.vk, self.msg.as_bytes(), &self.sig)
    }
}

/// The position of the first seal in `seals` whose signature fails, checked on up to `threads`
/// threads (contiguous shares; the calling thread takes the first, and any share whose thread
/// cannot be started).
fn first_bad_seal(seals: &[PendingSeal], threads: usize) -> Option<usize> {
    let first_bad = |part: &[PendingSeal]| part.iter().position(|s| !s.verifies());
    let share = seals.len().div_ceil(threads.max(1)).max(SEALS_PER_THREAD / 8);
    if share >= seals.len() {
        return first_bad(seals);
    }
    std::thread::scope(|scope| {
        let others: Vec<_> = seals
            .chunks(share)
            .enumerate()
            .skip(1)
            .map(|(n, part)| {
                let thread =
                    std::thread::Builder::new().name("seal-check".into()).spawn_scoped(scope, move || first_bad(part));
                (n, part, thread)
            })
            .collect();
        let mut bad = first_bad(&seals[..share]);
        for (n, part, thread) in others {
            let found = match thread {
                Ok(t) => t.join().expect("a seal check panicked"),
                Err(_) => first_bad(part),
            };
            if bad.is_none() {
                bad = found.map(|i| n * share + i);
            }
        }
        bad
    })
}

fn frame_len(b: &[u8]) -> Option<usize> {
    (b.len() >= 4).then(|| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

fn check_file_hash(m: &Manifest, name: &str, bytes: &[u8]) -> Result<()> {
    let Some(want) = m.files.get(name) else {
        return Err(invalid(MANIFEST, None, format!("the pack holds {name}, which the manifest does not list")));
    };
    let got = blake3_hex(bytes);
    if *want != got {
        return Err(invalid(MANIFEST, None, format!("{name} hashes to {got}, the manifest says {want}")));
    }
    Ok(())
}

/// Verifies a pack unpacked into a directory: every file the manifest lists must be there, and
/// every file there must be listed.
pub fn verify_dir(dir: &Path, log: &LogDescriptor) -> Result<PackReport> {
    let read = |name: &str| std::fs::read(dir.join(name)).map_err(|e| Error::io(dir.join(name), e));
    let mut v = PackVerifier::new(log, &read(MANIFEST)?, &read(CHECKPOINT)?, &read(PROOF)?)?;
    let path = dir.join(ENTRIES);
    let mut f = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match std::io::Read::read(&mut f, &mut buf) {
            Ok(n) => n,
            Err(e) => {
                v.check_queued()?;
                return Err(Error::io(&path, e));
            }
        };
        if n == 0 {
            break;
        }
        v.entries_bin(&buf[..n])?;
    }
    v.check_queued()?;
    let mut history = 0;
    let listed: Vec<String> = v.manifest().files.keys().cloned().collect();
    for name in &listed {
        if [CHECKPOINT, PROOF, ENTRIES].contains(&name.as_str()) {
            continue;
        }
        if name.contains("..") || name.starts_with('/') {
            return Err(invalid(MANIFEST, None, format!("file name {name:?} leaves the pack")));
        }
        v.other_file(name, &read(name)?)?;
        if name == HISTORY {
            history =
                serde_json::from_slice::<Vec<serde_json::Value>>(&read(name)?).map(|h| h.len() as u64).unwrap_or(0);
        }
    }
    for item in walk(dir)? {
        let rel = item.strip_prefix(dir).expect("under dir").to_string_lossy().replace('\\', "/");
        if rel != MANIFEST && !v.manifest().files.contains_key(&rel) {
            return Err(invalid(MANIFEST, None, format!("{rel} is in the pack but not listed in the manifest")));
        }
    }
    let mut report = v.finish()?;
    report.history = history;
    Ok(report)
}

fn walk(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let e = e.map_err(|e| Error::io(dir, e))?;
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p)?);
        } else {
            out.push(p);
        }
    }
    Ok(out)
}
