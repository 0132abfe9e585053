//! Payloads kept by hash: the byte strings entries name by BLAKE3 (an input message, an
//! artifact's parts, a workspace file version), stored once per hash in the [`Store`]'s payload
//! space, streamed in and out in chunks, within a size limit and a total quota, and erasable.
//!
//! # Layout (the store's payload space; RocksDB column family `payloads`)
//!
//! - `hash` (32 bytes) → head record: the payload's length, u64 big-endian. A payload is present
//!   exactly when its head is.
//! - `hash ‖ u32 BE chunk number` (36 bytes) → chunk: [`PAYLOAD_CHUNK`] bytes, the last one
//!   shorter (a payload of length 0 has no chunk).
//! - `usage` → total length of every present payload, u64 big-endian (the quota's measure),
//!   updated in the same write as the head it counts.
//! - `~stage ‖ u64 BE upload number ‖ u32 BE chunk number` → a chunk of an upload whose hash is
//!   not yet checked (uploads of more than one chunk). A crash leaves them behind; the next
//!   [`PayloadStore`] on the store removes them before its first write.
//! - `~msg ‖ hash ‖ u64 BE position` → empty: a bus log's stream message at `position` carried
//!   the payload's bytes ([`PayloadStore::note_message`]), so that an erasure deletes the bytes
//!   from the stream too; removed once that message is deleted there.
//!
//! A head and its chunks sort together (every key of a hash has it as prefix), so one range
//! delete `[hash, hash ‖ ff ff ff ff ff)` removes all of a payload.
//!
//! # Durability rule
//!
//! A put writes without syncing ([`Store::payload_write`]); it is durable once the store's next
//! sync returns. The log syncs with every group it commits, and the store's writes are durable in
//! the order they were made (RocksDB's WAL is one ordered file), so an entry that names a payload
//! and is appended *after* the put returned becomes durable no earlier than the payload: a
//! gateway that stores a payload and then appends the entry naming it needs no sync of its own.
//! A caller that acknowledges a payload by itself (ledger-server's `PUT`) calls
//! [`PayloadStore::sync`] before it answers.
//!
//! # Erasure rule
//!
//! The run `erasure/<hex>` ([`RunId::erasure`]) in the log's run index is the truth: a payload
//! whose erasure run exists is [`PayloadState::Erased`] whatever bytes the store still holds. An
//! erasure ([`Log::erase_payload`]) is two steps, in this order: (1) append the `payload.erased`
//! entry and wait until it is durable (it gets its index); (2) delete the bytes and compact their
//! range ([`PayloadStore::erase_bytes`]). A crash between the two leaves bytes that nobody is
//! served: every read and put of an erased payload first finishes step 2. An erased payload can
//! never be stored again (a put answers [`Error::PayloadErased`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::entry::{Entry, Event, RunId};
use crate::store::Store;
use crate::{Error, Hash, Log, Result};

/// Bytes per stored chunk: payloads stream in and out this much at a time.
pub const PAYLOAD_CHUNK: usize = 1 << 20;

const USAGE_KEY: &[u8] = b"usage";
const STAGE_PREFIX: &[u8] = b"~stage";
const MESSAGE_PREFIX: &[u8] = b"~msg";

/// The size limit of one payload and the quota of all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PayloadLimits {
    /// The largest payload accepted, in bytes.
    pub max_bytes: u64,
    /// The most bytes all present payloads may take together.
    pub quota_bytes: u64,
}

impl PayloadLimits {
    /// No limit: for a store whose payloads something else decided to keep (a follower of a
    /// bus log stores what the stream carries, as every other follower does).
    pub const UNLIMITED: PayloadLimits = PayloadLimits { max_bytes: u64::MAX, quota_bytes: u64::MAX };
}

impl Default for PayloadLimits {
    /// 64 MiB per payload, 8 GiB in all.
    fn default() -> Self {
        PayloadLimits { max_bytes: 64 << 20, quota_bytes: 8 << 30 }
    }
}

/// What the store knows of one hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadState {
    /// Never stored (or stored and lost in a crash before any sync).
    Missing,
    /// Stored: `len` bytes.
    Present {
        /// Its length.
        len: u64,
    },
    /// Erased by the `payload.erased` entry at log index `index`.
    Erased {
        /// The erasure entry's index.
        index: u64,
    },
}

/// The payloads of one store, with their limits. Make one per store and share it (clones share
/// one state): it serialises the writes that change the quota's count, and removes what a
/// crashed upload left behind.
#[derive(Clone, Debug)]
pub struct PayloadStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn Store>,
    limits: PayloadLimits,
    /// The bytes stored, read from the store at the first write; held while a head is written
    /// or deleted, so that the quota is checked and the count kept under one lock.
    usage: Mutex<Option<u64>>,
    /// Numbers the staged uploads.
    uploads: AtomicU64,
}

/// The key of a payload's head record.
fn head_key(hash: &Hash) -> Vec<u8> {
    hash.to_vec()
}

/// The key of chunk `n` of a payload.
fn chunk_key(hash: &Hash, n: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(36);
    k.extend_from_slice(hash);
    k.extend_from_slice(&n.to_be_bytes());
    k
}

/// The keys `[from, to)` that hold all of a payload: its head and every chunk.
fn payload_range(hash: &Hash) -> (Vec<u8>, Vec<u8>) {
    let mut to = hash.to_vec();
    to.extend_from_slice(&[0xff; 5]);
    (hash.to_vec(), to)
}

fn message_key(hash: &Hash, position: u64) -> Vec<u8> {
    let mut k = MESSAGE_PREFIX.to_vec();
    k.extend_from_slice(hash);
    k.extend_from_slice(&position.to_be_bytes());
    k
}

fn stage_key(upload: u64, n: u32) -> Vec<u8> {
    let mut k = STAGE_PREFIX.to_vec();
    k.extend_from_slice(&upload.to_be_bytes());
    k.extend_from_slice(&n.to_be_bytes());
    k
}

fn stage_range(upload: Option<u64>) -> (Vec<u8>, Vec<u8>) {
    match upload {
        Some(u) => (stage_key(u, 0), stage_key(u, u32::MAX)),
        None => {
            let mut to = STAGE_PREFIX.to_vec();
            to.push(0xff);
            (STAGE_PREFIX.to_vec(), to)
        }
    }
}

fn decode_u64(what: &str, v: &[u8]) -> Result<u64> {
    Ok(u64::from_be_bytes(
        v.try_into().map_err(|_| Error::Corrupt(format!("payload {what}: {} bytes, 8 expected", v.len())))?,
    ))
}

fn chunks_of(len: u64) -> u64 {
    len.div_ceil(PAYLOAD_CHUNK as u64)
}

impl PayloadStore {
    /// The payloads kept in `store`, within `limits`.
    pub fn new(store: Arc<dyn Store>, limits: PayloadLimits) -> PayloadStore {
        PayloadStore { inner: Arc::new(Inner { store, limits, usage: Mutex::new(None), uploads: AtomicU64::new(0) }) }
    }

    /// The limits.
    pub fn limits(&self) -> PayloadLimits {
        self.inner.limits
    }

    /// The index of the `payload.erased` entry of `hash`, if the run index holds one.
    fn erasure_index(&self, hash: &Hash) -> Result<Option<u64>> {
        Ok(self.inner.store.run_record(RunId::erasure(hash).as_str(), 0)?.map(|r| r.index))
    }

    fn head(&self, hash: &Hash) -> Result<Option<u64>> {
        self.inner.store.payload_get(&head_key(hash))?.map(|v| decode_u64("head", &v)).transpose()
    }

    /// What the store knows of `hash`. An erased payload whose bytes a crash left behind is
    /// `Erased` (and its bytes are deleted now: step 2 of the erasure rule, finished).
    pub fn state(&self, hash: &Hash) -> Result<PayloadState> {
        if let Some(index) = self.erasure_index(hash)? {
            if self.head(hash)?.is_some() {
                self.erase_bytes(hash)?;
            }
            return Ok(PayloadState::Erased { index });
        }
        Ok(match self.head(hash)? {
            Some(len) => PayloadState::Present { len },
            None => PayloadState::Missing,
        })
    }

    /// Stores `bytes` under `hash`: `Ok(true)` when newly stored, `Ok(false)` when already
    /// present (nothing written). Refuses bytes whose BLAKE3 is not `hash`
    /// ([`Error::PayloadMismatch`]), an erased payload, and anything over the limits. Not synced:
    /// see the module docs.
    pub fn put(&self, hash: &Hash, bytes: &[u8]) -> Result<bool> {
        if bytes.len() >= PAYLOAD_CHUNK {
            let mut w = self.writer(hash, Some(bytes.len() as u64))?;
            w.write(bytes)?;
            return w.finish();
        }
        // Less than a chunk (every input and outcome on the ingest path): one pass under the
        // usage lock, each record read once, the refusals in the streaming put's order.
        let len = bytes.len() as u64;
        let mut usage = self.lock_usage()?;
        if let Some(index) = self.erasure_index(hash)? {
            drop(usage);
            if self.head(hash)?.is_some() {
                self.erase_bytes(hash)?;
            }
            return Err(Error::PayloadErased { index });
        }
        let present = self.head(hash)?.is_some();
        self.check_size(hash, len)?;
        let used = usage.expect("read by lock_usage");
        if !present {
            self.check_quota(hash, len, used)?;
        }
        let actual = *blake3::hash(bytes).as_bytes();
        if actual != *hash {
            return Err(Error::PayloadMismatch { expected: hex::encode(hash), actual: hex::encode(actual) });
        }
        if present {
            return Ok(false);
        }
        let used = used + len;
        let (head, usage_v, chunk, len_v) = (head_key(hash), used.to_be_bytes(), chunk_key(hash, 0), len.to_be_bytes());
        let mut puts: Vec<(&[u8], &[u8])> = vec![(&head, &len_v), (USAGE_KEY, &usage_v)];
        if !bytes.is_empty() {
            puts.push((&chunk, bytes));
        }
        self.inner.store.payload_write(&puts, &[])?;
        *usage = Some(used);
        Ok(true)
    }

    /// A streaming put of `hash`: [`PayloadWriter::write`] the bytes in pieces of any size, then
    /// [`PayloadWriter::finish`]. A declared length over the size limit or the quota is refused
    /// here, before any byte; the limits are checked again on the bytes as they come.
    pub fn writer(&self, hash: &Hash, declared_len: Option<u64>) -> Result<PayloadWriter> {
        let present = match self.state(hash)? {
            PayloadState::Erased { index } => return Err(Error::PayloadErased { index }),
            PayloadState::Present { .. } => true,
            PayloadState::Missing => false,
        };
        // Read now, whatever the upload: the first read removes what crashed uploads left
        // staged, which must happen before this upload stages anything.
        let used = self.usage()?;
        if let Some(len) = declared_len {
            self.check_size(hash, len)?;
            if !present {
                self.check_quota(hash, len, used)?;
            }
        }
        Ok(PayloadWriter {
            payloads: self.clone(),
            hash: *hash,
            present,
            hasher: blake3::Hasher::new(),
            len: 0,
            buf: Vec::new(),
            staged: 0,
            upload: None,
            done: false,
        })
    }

    fn check_size(&self, hash: &Hash, len: u64) -> Result<()> {
        if len > self.inner.limits.max_bytes {
            return Err(Error::PayloadTooLarge { hash: hex::encode(hash), len, max: self.inner.limits.max_bytes });
        }
        Ok(())
    }

    fn check_quota(&self, hash: &Hash, len: u64, used: u64) -> Result<()> {
        if used.saturating_add(len) > self.inner.limits.quota_bytes {
            return Err(Error::PayloadQuota {
                hash: hex::encode(hash),
                len,
                used,
                quota: self.inner.limits.quota_bytes,
            });
        }
        Ok(())
    }

    /// The chunks of `hash`, read as they are iterated. [`Error::PayloadErased`] or
    /// [`Error::PayloadMissing`] when it is not present.
    pub fn read(&self, hash: &Hash) -> Result<PayloadReader> {
        match self.state(hash)? {
            PayloadState::Present { len } => Ok(PayloadReader { payloads: self.clone(), hash: *hash, len, next: 0 }),
            PayloadState::Erased { index } => Err(Error::PayloadErased { index }),
            PayloadState::Missing => Err(Error::PayloadMissing),
        }
    }

    /// The whole payload of `hash`, `None` when missing; [`Error::PayloadErased`] when erased.
    pub fn get(&self, hash: &Hash) -> Result<Option<Vec<u8>>> {
        let reader = match self.read(hash) {
            Ok(r) => r,
            Err(Error::PayloadMissing) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut out = Vec::with_capacity(usize::try_from(reader.len()).unwrap_or(0));
        for chunk in reader {
            out.extend_from_slice(&chunk?);
        }
        Ok(Some(out))
    }

    /// Step 2 of an erasure (step 1, the durable `payload.erased` entry, is the caller's: see
    /// [`Log::erase_payload`]): deletes the head and every chunk of `hash`, with the quota's
    /// count, and compacts their range so the bytes leave the store's files. Synced. Does
    /// nothing to a payload that is not present.
    pub fn erase_bytes(&self, hash: &Hash) -> Result<()> {
        let mut usage = self.lock_usage()?;
        let Some(len) = self.head(hash)? else { return Ok(()) };
        let used = usage.expect("read by lock_usage").saturating_sub(len);
        // The head and the count go first, in one write: from here the payload is not present
        // and the quota no longer counts it; the chunks follow in the range delete (synced),
        // and a crash between the two leaves chunks without a head, never counted or served,
        // removed by the next erasure of the hash.
        let head = head_key(hash);
        self.inner.store.payload_write(&[(USAGE_KEY, &used.to_be_bytes())], &[&head])?;
        *usage = Some(used);
        let (from, to) = payload_range(hash);
        self.inner.store.payload_delete_range(&from, &to)
    }

    /// Records that the stream message at `position` (a bus log's payload message) carried the
    /// bytes of `hash`. Not synced (durable with the log's next commit, as a put is).
    pub fn note_message(&self, hash: &Hash, position: u64) -> Result<()> {
        self.inner.store.payload_write(&[(&message_key(hash, position), &[])], &[])
    }

    /// The stream messages recorded as carrying the bytes of a payload that is erased now (of
    /// `of` only, when given: one erasure's; else of every payload, which reads every record):
    /// what an erasure must still delete from the stream, as `(hash, position)`.
    pub fn erased_messages(&self, of: Option<&Hash>) -> Result<Vec<(Hash, u64)>> {
        let mut from = MESSAGE_PREFIX.to_vec();
        from.extend_from_slice(of.map_or(&[][..], |h| &h[..]));
        let mut to = from.clone();
        to.push(0xff);
        let mut out = Vec::new();
        for key in self.inner.store.payload_keys(&from, &to)? {
            let rest = &key[MESSAGE_PREFIX.len()..];
            if rest.len() != 40 {
                return Err(Error::Corrupt(format!("payload space: a message record of {} bytes", key.len())));
            }
            let hash: Hash = rest[..32].try_into().expect("32 bytes");
            let position = u64::from_be_bytes(rest[32..].try_into().expect("8 bytes"));
            if self.erasure_index(&hash)?.is_some() {
                out.push((hash, position));
            }
        }
        Ok(out)
    }

    /// Forgets the record of the stream message at `position` (deleted from the stream).
    pub fn forget_message(&self, hash: &Hash, position: u64) -> Result<()> {
        self.inner.store.payload_write(&[], &[&message_key(hash, position)])
    }

    /// The bytes all present payloads take (what the quota counts).
    pub fn usage(&self) -> Result<u64> {
        Ok(self.lock_usage()?.expect("read by lock_usage"))
    }

    /// Makes every put that returned before this call durable ([`Store::sync`]).
    pub fn sync(&self) -> Result<()> {
        self.inner.store.sync()
    }

    /// The usage lock, with the count read from the store (and what crashed uploads left staged
    /// removed) the first time.
    fn lock_usage(&self) -> Result<std::sync::MutexGuard<'_, Option<u64>>> {
        let mut g = self.inner.usage.lock().unwrap_or_else(|p| p.into_inner());
        if g.is_none() {
            let (from, to) = stage_range(None);
            if !self.inner.store.payload_keys(&from, &to)?.is_empty() {
                self.inner.store.payload_delete_range(&from, &to)?;
            }
            let used = self.inner.store.payload_get(USAGE_KEY)?.map(|v| decode_u64("usage", &v)).transpose()?;
            *g = Some(used.unwrap_or(0));
        }
        Ok(g)
    }
}

/// A streaming put ([`PayloadStore::writer`]). Dropped without [`PayloadWriter::finish`], it
/// stores nothing (and removes what it staged).
#[derive(Debug)]
pub struct PayloadWriter {
    payloads: PayloadStore,
    hash: Hash,
    /// The payload was present when the upload began: the bytes are only checked.
    present: bool,
    hasher: blake3::Hasher,
    len: u64,
    /// Bytes not yet in a full chunk.
    buf: Vec<u8>,
    /// Full chunks staged so far.
    staged: u32,
    /// The upload's staging number, once it stages a chunk.
    upload: Option<u64>,
    done: bool,
}

impl PayloadWriter {
    /// Takes the next `bytes`. Fails as soon as the bytes pass the size limit.
    pub fn write(&mut self, mut bytes: &[u8]) -> Result<()> {
        let len = self.len + bytes.len() as u64;
        self.payloads.check_size(&self.hash, len)?;
        self.hasher.update(bytes);
        self.len = len;
        if self.present {
            return Ok(());
        }
        // A full chunk is staged, not written under the hash: the bytes are not checked yet, and
        // a wrong upload must never overwrite a good payload's chunks.
        while !bytes.is_empty() {
            let take = (PAYLOAD_CHUNK - self.buf.len()).min(bytes.len());
            self.buf.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.buf.len() == PAYLOAD_CHUNK {
                let upload =
                    *self.upload.get_or_insert_with(|| self.payloads.inner.uploads.fetch_add(1, Ordering::Relaxed));
                self.payloads.inner.store.payload_write(&[(&stage_key(upload, self.staged), &self.buf)], &[])?;
                self.staged += 1;
                self.buf.clear();
            }
        }
        Ok(())
    }

    /// Checks the bytes against the hash and stores them: `Ok(true)` when newly stored,
    /// `Ok(false)` when the payload was already present. Not synced (see the module docs).
    pub fn finish(mut self) -> Result<bool> {
        let actual = *self.hasher.finalize().as_bytes();
        if actual != self.hash {
            return Err(Error::PayloadMismatch { expected: hex::encode(self.hash), actual: hex::encode(actual) });
        }
        let p = self.payloads.clone();
        let mut usage = p.lock_usage()?;
        // Looked at again under the lock: another upload of the same bytes may have finished, or
        // an erasure been appended, since this one began.
        if let Some(index) = p.erasure_index(&self.hash)? {
            drop(usage);
            p.erase_bytes(&self.hash)?;
            return Err(Error::PayloadErased { index });
        }
        if p.head(&self.hash)?.is_some() {
            return Ok(false);
        }
        let used = usage.expect("read by lock_usage");
        p.check_quota(&self.hash, self.len, used)?;
        // The chunks under the hash first, the head (with the count) last: until the head is
        // written the payload is not present, and chunks a crash leaves without a head are
        // rewritten with the same bytes (the hash is checked) by the next put.
        let store = &p.inner.store;
        let mut n = 0u32;
        if let Some(upload) = self.upload {
            for n_staged in 0..self.staged {
                let staged = stage_key(upload, n_staged);
                let bytes = store
                    .payload_get(&staged)?
                    .ok_or_else(|| Error::Corrupt(format!("staged chunk {n_staged} of upload {upload} is missing")))?;
                store.payload_write(&[(&chunk_key(&self.hash, n_staged), &bytes)], &[&staged])?;
            }
            n = self.staged;
        }
        let used = used + self.len;
        let (head, usage_v, last) = (head_key(&self.hash), used.to_be_bytes(), chunk_key(&self.hash, n));
        let len_v = self.len.to_be_bytes();
        let mut puts: Vec<(&[u8], &[u8])> = vec![(&head, &len_v), (USAGE_KEY, &usage_v)];
        if !self.buf.is_empty() {
            puts.push((&last, &self.buf));
        }
        store.payload_write(&puts, &[])?;
        *usage = Some(used);
        self.done = true;
        self.upload = None;
        Ok(true)
    }

    /// Bytes taken so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no byte was taken yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for PayloadWriter {
    fn drop(&mut self) {
        if let Some(upload) = self.upload.filter(|_| !self.done) {
            let (from, to) = stage_range(Some(upload));
            // Best effort: what is left is removed by the next `PayloadStore` on the store.
            let _ = self.payloads.inner.store.payload_delete_range(&from, &to);
        }
    }
}

/// The chunks of a present payload, read from the store as they are iterated
/// ([`PayloadStore::read`]).
#[derive(Debug)]
pub struct PayloadReader {
    payloads: PayloadStore,
    hash: Hash,
    len: u64,
    next: u64,
}

impl PayloadReader {
    /// The payload's length.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Iterator for PayloadReader {
    type Item = Result<Vec<u8>>;

    fn next(&mut self) -> Option<Result<Vec<u8>>> {
        if self.next >= chunks_of(self.len) {
            return None;
        }
        let n = self.next;
        self.next += 1;
        let got = self.payloads.inner.store.payload_get(&chunk_key(&self.hash, n as u32));
        Some(match got {
            Ok(Some(chunk)) => {
                let want = (self.len - n * PAYLOAD_CHUNK as u64).min(PAYLOAD_CHUNK as u64);
                if chunk.len() as u64 == want {
                    Ok(chunk)
                } else {
                    Err(Error::Corrupt(format!(
                        "payload {} chunk {n}: {} bytes, {want} expected",
                        hex::encode(self.hash),
                        chunk.len()
                    )))
                }
            }
            // Erased while it was being read, or lost.
            Ok(None) => match self.payloads.erasure_index(&self.hash) {
                Ok(Some(index)) => Err(Error::PayloadErased { index }),
                Ok(None) => Err(Error::Corrupt(format!("payload {} lacks chunk {n}", hex::encode(self.hash)))),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        })
    }
}

impl Log {
    /// Erases the payload `hash` (the erasure rule of [`crate::payload`]): appends its
    /// `payload.erased` entry (run `erasure/<hex>`, seq 0, by `actor` at `ts`, recording `reason`
    /// and `approver`) and waits until it is durable, then deletes the bytes from `payloads` and
    /// compacts them away. Returns the entry's index. Erasing again answers the first erasure's
    /// index (and finishes its deletion if a crash interrupted it); a payload never stored can be
    /// erased too (the log may name it).
    pub fn erase_payload(
        &self,
        payloads: &PayloadStore,
        hash: &Hash,
        reason: &str,
        approver: &str,
        actor: &str,
        ts: i64,
    ) -> Result<u64> {
        let index = match self.erasure_index(hash)? {
            Some(index) => index,
            None => {
                let entry = Entry {
                    ts,
                    run: RunId::erasure(hash),
                    seq: 0,
                    actor: actor.to_string(),
                    event: Event::PayloadErased {
                        hash: *hash,
                        reason: reason.to_string(),
                        approver: approver.to_string(),
                    },
                    grant: None,
                    payload: None,
                };
                // Step 1: the entry, durable when `append` returns.
                match self.append(vec![entry.encode()]) {
                    Ok(indices) => indices[0],
                    // A concurrent erasure of the same hash won the race (its entry differs,
                    // so this one conflicts): its index is the answer.
                    Err(e) => match self.erasure_index(hash)? {
                        Some(index) => index,
                        None => return Err(e),
                    },
                }
            }
        };
        // Step 2: the bytes, only now.
        payloads.erase_bytes(hash)?;
        Ok(index)
    }

    /// The index of the durable `payload.erased` entry of `hash`, if there is one.
    fn erasure_index(&self, hash: &Hash) -> Result<Option<u64>> {
        let durable = self.durable_size();
        Ok(self.store().run_record(RunId::erasure(hash).as_str(), 0)?.map(|r| r.index).filter(|&i| i < durable))
    }
}
