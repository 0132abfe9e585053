//! The log: a sequencer with group commit over a [`Store`], checkpoints signed on an interval,
//! receipts and proofs read back.
//!
//! # The commit path
//!
//! 1. **Prepare** (caller's thread, in parallel across appenders): each entry is decoded under
//!    SPEC §2 and its leaf hash computed. A bad entry fails its whole batch here.
//! 2. **Sequence** (caller's thread, under the sequencing lock): the submission is sequenced
//!    into one *open group*. The run rules are checked against the open group, the groups still
//!    being committed, and then the run index in the store: next seq expected, idempotent
//!    identical duplicates (same leaf hash in memory, same bytes in the store), conflicting
//!    duplicates. A submission is all or nothing: its entries are checked against a private
//!    overlay that is merged only if all pass. Accepted entries get consecutive indices and their
//!    leaf hashes join the group; a run's entries in one submission become one run-index
//!    segment. A full open group is queued for the committer (one at most; further appenders
//!    wait: backpressure). No tree node is hashed under this lock.
//! 3. **Write** (one committer thread): the moment it is free, the committer takes the queued
//!    group or closes the open one, hashes its leaves into the tree (`tree::TreeBuilder`: the
//!    compact range, the tiles they complete and the partial tiles of the new right edge, which
//!    stay in memory) and writes a [`CommitBatch`] (entries, run segments, completed tiles, the
//!    new tree size) as one atomic `WriteBatch` ([`Store::write`]): logged (for RocksDB, in
//!    its WAL buffer) and visible to the store's readers, not yet durable. A group is therefore
//!    everything that was sequenced while the previous group was being written.
//! 4. **Sync** (one syncer thread): it takes every group written so far and makes them durable
//!    with one [`Store::sync`] (for RocksDB, writing out and fsyncing the write-ahead log), while the committer already
//!    writes the next group: the CPU work of one group (building the batch, the memtable insert)
//!    overlaps the fsync of the ones before. Only after the sync are the durable size, root and
//!    right edge published, and only then are the groups' answers handed to the **acker** thread, which
//!    acknowledges each submission with its indices, groups in write order. Waking an appender
//!    costs microseconds, and on two cores the woken thread takes the CPU the committer needs:
//!    neither the committer nor the syncer does it. Groups are written, synced and answered
//!    strictly in order, and the log never reads past its durable size, so what the store
//!    holds beyond it (written, not synced) is never served.
//! 5. **Checkpoint** (one checkpointer thread): on an interval, if the durable size grew, it signs
//!    a checkpoint over the *published durable* size and root, stores it (synced), and publishes
//!    it. A checkpoint therefore never covers an entry that is not durable, and as sizes only grow
//!    along one tree, all checkpoints are consistent.
//!
//! # Poisoning
//!
//! If a write, a sync or a checkpoint write fails, the store may hold any part of what was
//! written: the log cannot know its own state any more. Every group not yet answered is answered
//! with the error. It records the reason and refuses every later append and
//! checkpoint with [`Error::Poisoned`]. Reopening the store recovers the exact committed state
//! (entries written but not acknowledged may be present; acknowledged ones always are).

use std::collections::VecDeque;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::checkpoint::{Checkpoint, LogDescriptor};
use crate::entry::{Entry, EntryView, Event, Kind};
use crate::keys::NamedKey;
use crate::merkle::{self, CompactRange};
use crate::receipt::{ProvenEntry, RECEIPT_FORMAT, Receipt};
use crate::store::{CachedNodes, CommitBatch, Edge, LogParams, RunRecord, RunSegment, SharedTile, Store, TileCache};
use crate::{Error, Hash, Result, TreeHash};

mod tree;
use tree::TreeBuilder;

/// Actors whose identity registrations readers keep (see `Shared::identities_of`).
const IDENTITY_CACHE: NonZeroUsize = NonZeroUsize::new(1024).expect("non-zero");

/// Settings of a [`Log`].
#[derive(Clone, Debug)]
pub struct LogConfig {
    /// Tree hash for a new log; an existing log must have been created with the same.
    pub hash: TreeHash,
    /// How often a checkpoint is signed when the log has grown.
    pub checkpoint_interval: Duration,
    /// Most entries in one commit group.
    pub max_group_entries: usize,
    /// Most entry bytes in one commit group.
    pub max_group_bytes: usize,
    /// Runs whose next seq the sequencer keeps in memory (a miss costs a store lookup).
    pub run_cache: usize,
    /// Full tiles (16 KiB each) kept in memory for proofs and receipts.
    pub tile_cache: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            hash: TreeHash::Blake3,
            checkpoint_interval: Duration::from_millis(100),
            max_group_entries: 8192,
            max_group_bytes: 8 << 20,
            run_cache: 1 << 18,
            tile_cache: 4096,
        }
    }
}

/// A checkpoint with its signed note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// The parsed body.
    pub checkpoint: Checkpoint,
    /// The signed note text.
    pub note: String,
}

/// Counters for monitoring and benchmarks.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogStats {
    /// Groups committed (each one `WriteBatch`).
    pub batches: u64,
    /// Entries committed (duplicates not counted).
    pub entries: u64,
    /// Over all committed groups, the time from the start of the group's write to the end of
    /// the sync that made it durable, nanoseconds.
    pub commit_nanos: u64,
    /// Syncs of the store (each covers every group written before it).
    pub syncs: u64,
    /// Checkpoints signed.
    pub checkpoints: u64,
}

type Done = Box<dyn FnOnce(Result<Vec<u64>>) + Send>;

struct Prepared {
    bytes: Bytes,
    leaf: Hash,
    /// Shared by the consecutive entries of one run in a submission.
    run: Arc<str>,
    seq: u64,
    /// Its run-index flags ([`RunRecord::flags`]).
    flags: u8,
}

struct Submission {
    entries: Vec<Prepared>,
    done: Reply,
}

/// A submission's callback, called exactly once: if the submission is dropped unanswered (the
/// log closed under it), it answers [`Error::Closed`].
struct Reply(Option<Done>);

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Reply(pending)" } else { "Reply(sent)" })
    }
}

impl Reply {
    fn send(mut self, r: Result<Vec<u64>>) {
        if let Some(done) = self.0.take() {
            done(r);
        }
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if let Some(done) = self.0.take() {
            done(Err(Error::Closed));
        }
    }
}

#[derive(Debug)]
struct Group {
    /// Entries and run segments; the committer adds the tiles.
    batch: CommitBatch,
    /// The new entries' leaf hashes, in index order.
    leaves: Vec<Hash>,
    acks: Vec<(Reply, Vec<u64>)>,
}

/// The durable tree: what readers may see.
#[derive(Debug)]
struct Durable {
    size: u64,
    root: Hash,
    /// Its partial tiles (stores hold full tiles only).
    edge: Edge,
}

#[derive(Debug)]
struct Shared {
    store: Arc<dyn Store>,
    hash: TreeHash,
    key: NamedKey,
    descriptor: LogDescriptor,
    poison: OnceLock<String>,
    /// The durable tree: advanced only after a successful sync.
    durable: Mutex<Arc<Durable>>,
    checkpoint: Mutex<Arc<SignedCheckpoint>>,
    checkpoint_cv: Condvar,
    /// Set when the log closes: wakes the checkpointer for its final checkpoint.
    closing: Mutex<bool>,
    closing_cv: Condvar,
    /// Sequencing state: appenders sequence into its open group; the committer takes groups.
    seq: Mutex<SeqState>,
    /// The committer waits here for a group.
    work_cv: Condvar,
    /// Appenders wait here while a full group waits for the committer (backpressure).
    room_cv: Condvar,
    batches: AtomicU64,
    entries: AtomicU64,
    commit_nanos: AtomicU64,
    syncs: AtomicU64,
    checkpoints: AtomicU64,
    /// Full tiles for readers.
    tile_cache: TileCache,
    /// Bumped by the committer after it writes a group holding entries of an identity run.
    identity_writes: AtomicU64,
    /// The indices of each actor's identity registrations (a receipt's signer is looked up in
    /// them), as last read from the run index, with the `identity_writes` they were read under.
    identities: Mutex<lru::LruCache<String, Registrations>>,
}

/// An actor's identity registrations (log indices, in order) and the `identity_writes` under
/// which they were read.
type Registrations = (u64, Arc<[u64]>);

impl Shared {
    /// The log indices of `actor`'s identity registrations, in order: every one the store held
    /// when this was called, and possibly later ones (callers look below a checkpointed index).
    /// Every receipt looks its signer up here; the run index is read again only after the
    /// committer has written entries of an identity run since the last read.
    fn identities_of(&self, actor: &str) -> Result<Arc<[u64]>> {
        // Acquire pairs with the committer's Release after its write: a run-index read made after
        // loading `seen` sees every identity entry written before `seen` was published.
        let seen = self.identity_writes.load(Ordering::Acquire);
        let cached = self.identities.lock().unwrap_or_else(|p| p.into_inner()).get(actor).cloned();
        if let Some((at, indices)) = cached
            && at == seen
        {
            return Ok(indices);
        }
        let run = format!("{}{actor}", crate::entry::IDENTITY_RUN_PREFIX);
        let indices: Arc<[u64]> =
            self.store.run_records(&run)?.into_iter().filter(|(_, r)| r.identity).map(|(_, r)| r.index).collect();
        self.identities.lock().unwrap_or_else(|p| p.into_inner()).put(actor.to_string(), (seen, indices.clone()));
        Ok(indices)
    }

    /// The nodes of the durable tree `d` (or of any smaller one), for readers.
    fn nodes<'a>(&'a self, d: &'a Durable) -> CachedNodes<'a> {
        CachedNodes::new(&*self.store, &self.tile_cache, &d.edge)
    }

    fn poisoned(&self) -> Result<()> {
        match self.poison.get() {
            Some(reason) => Err(Error::Poisoned(reason.clone())),
            None => Ok(()),
        }
    }

    fn poison(&self, reason: String) {
        let _ = self.poison.set(reason);
        // Wake anyone waiting for a checkpoint that will now never come.
        self.checkpoint_cv.notify_all();
    }

    fn durable(&self) -> Arc<Durable> {
        self.durable.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Signs and stores a checkpoint over the durable tree if it grew. Only ever called from one
    /// thread at a time (the checkpointer, or `open` before it starts).
    fn sign_checkpoint(&self) -> Result<Arc<SignedCheckpoint>> {
        self.poisoned()?;
        let Durable { size, root, .. } = *self.durable();
        let current = self.checkpoint.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if size == current.checkpoint.size && !current.note.is_empty() {
            return Ok(current);
        }
        let checkpoint = Checkpoint { origin: self.descriptor.origin.clone(), size, root, extensions: vec![] };
        let note = checkpoint.sign(&self.key);
        if let Err(e) = self.store.put_checkpoint(size, &note) {
            self.poison(format!("storing checkpoint {size}: {e}"));
            return Err(e);
        }
        let signed = Arc::new(SignedCheckpoint { checkpoint, note });
        *self.checkpoint.lock().unwrap_or_else(|p| p.into_inner()) = signed.clone();
        self.checkpoints.fetch_add(1, Ordering::Relaxed);
        self.checkpoint_cv.notify_all();
        Ok(signed)
    }
}

/// An open log. Cheap to share behind an `Arc`; all methods take `&self`.
#[derive(Debug)]
pub struct Log {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Log {
    /// Opens the log in `store`, creating it if the store is empty, and starts its threads.
    ///
    /// An existing log must match `cfg.hash` and the origin (`key`'s name), and its newest
    /// checkpoint must verify under `key` and match the stored tree.
    pub fn open(store: Arc<dyn Store>, key: NamedKey, cfg: LogConfig) -> Result<Log> {
        let descriptor = LogDescriptor::new(&key.verifier(), cfg.hash);
        let (size, fresh) = match store.load_meta()? {
            Some((params, size)) => {
                if params.hash != cfg.hash {
                    return Err(Error::ParameterMismatch {
                        what: "tree hash",
                        stored: params.hash.to_string(),
                        requested: cfg.hash.to_string(),
                    });
                }
                if params.origin != key.name() {
                    return Err(Error::ParameterMismatch {
                        what: "origin",
                        stored: params.origin,
                        requested: key.name().to_string(),
                    });
                }
                (size, false)
            }
            None => {
                let params = LogParams { hash: cfg.hash, origin: key.name().to_string() };
                store.commit(&CommitBatch { params: Some(params), ..CommitBatch::default() })?;
                (0, true)
            }
        };

        // Rebuild the right edge of the tree (the compact range and the partial tiles) from the
        // stored entries and full tiles.
        let tree = TreeBuilder::open(&*store, cfg.hash, size)?;
        let durable = Durable { size, root: tree.root(), edge: tree.edge() };
        let tile_cache = TileCache::new(cfg.tile_cache);
        let nodes = CachedNodes::new(&*store, &tile_cache, &durable.edge);

        // The newest checkpoint must be ours and agree with the stored tree.
        let latest = match store.latest_checkpoint()? {
            Some((cp_size, note)) => {
                let cp = Checkpoint::open(&note, &key.verifier()).map_err(|e| {
                    Error::Corrupt(format!("the newest stored checkpoint does not verify under this log key: {e}"))
                })?;
                if cp_size != cp.size || cp.size > size {
                    return Err(Error::Corrupt(format!(
                        "checkpoint of size {} but the stored tree has {size} entries",
                        cp.size
                    )));
                }
                if merkle::root(cfg.hash, &nodes, cp.size)? != cp.root {
                    return Err(Error::Corrupt(format!("the stored tree does not match checkpoint {}", cp.size)));
                }
                SignedCheckpoint { checkpoint: cp, note }
            }
            None if fresh || size == 0 => SignedCheckpoint {
                checkpoint: Checkpoint {
                    origin: key.name().to_string(),
                    size: 0,
                    root: cfg.hash.empty_root(),
                    extensions: vec![],
                },
                note: String::new(),
            },
            None => return Err(Error::Corrupt("a non-empty log without checkpoints".into())),
        };

        let run_cache = NonZeroUsize::new(cfg.run_cache.max(1)).expect("non-zero");
        let sequencer = Sequencer {
            store: store.clone(),
            size,
            next_seq: lru::LruCache::new(run_cache),
            pending: VecDeque::new(),
            max_entries: cfg.max_group_entries.max(1),
            max_bytes: cfg.max_group_bytes.max(1),
        };
        let shared = Arc::new(Shared {
            store: store.clone(),
            hash: cfg.hash,
            key,
            descriptor,
            poison: OnceLock::new(),
            durable: Mutex::new(Arc::new(durable)),
            checkpoint: Mutex::new(Arc::new(latest)),
            checkpoint_cv: Condvar::new(),
            closing: Mutex::new(false),
            closing_cv: Condvar::new(),
            seq: Mutex::new(SeqState {
                seq: sequencer,
                open: OpenGroup::empty(),
                queued: None,
                committer_waiting: false,
                closing: false,
            }),
            work_cv: Condvar::new(),
            room_cv: Condvar::new(),
            batches: AtomicU64::new(0),
            entries: AtomicU64::new(0),
            commit_nanos: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
            checkpoints: AtomicU64::new(0),
            tile_cache,
            identity_writes: AtomicU64::new(0),
            identities: Mutex::new(lru::LruCache::new(IDENTITY_CACHE)),
        });
        // Cover whatever is durable but was never checkpointed (a crash between commit and sign).
        shared.sign_checkpoint()?;

        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .map_err(|e| Error::Storage(format!("spawning {name}: {e}")))
        };
        let mut threads = Vec::with_capacity(4);
        let (to_syncer, written) = std::sync::mpsc::channel::<Written>();
        let (to_acker, acks) = std::sync::mpsc::channel::<(Acks, Vec<CommitBatch>)>();
        let s = shared.clone();
        threads.push(spawn("ledger-committer", Box::new(move || commit_loop(&s, tree, &to_syncer)))?);
        let s = shared.clone();
        threads.push(spawn("ledger-syncer", Box::new(move || sync_loop(&s, &written, &to_acker)))?);
        threads.push(spawn("ledger-acker", Box::new(move || ack_loop(&acks)))?);
        let s = shared.clone();
        let interval = cfg.checkpoint_interval;
        threads.push(spawn("ledger-checkpointer", Box::new(move || checkpoint_loop(&s, interval)))?);
        Ok(Log { shared, threads: Mutex::new(threads) })
    }

    /// The log descriptor (origin, hash, verifier key).
    pub fn descriptor(&self) -> &LogDescriptor {
        &self.shared.descriptor
    }

    /// The tree hash.
    pub fn hash(&self) -> TreeHash {
        self.shared.hash
    }

    /// The store under the log.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.shared.store
    }

    /// Appends a batch atomically and returns each entry's index once the batch is durable.
    /// Blocks while the sequencer is behind (backpressure).
    pub fn append(&self, entries: Vec<impl Into<Bytes>>) -> Result<Vec<u64>> {
        let (tx, rx) = sync_channel(1);
        self.append_with(entries, move |r| {
            let _ = tx.send(r);
        });
        rx.recv().unwrap_or(Err(Error::Closed))
    }

    /// Like [`Log::append`], but calls `done` instead of blocking for the result. `done` is called
    /// exactly once: from the log's acker thread with the indices after the batch is durable
    /// (batches in the order they were sequenced), or with the reason nothing of the batch was
    /// appended (from this thread when the batch is refused at once). It is never called while a
    /// log lock is held or on the committer's thread, so it may append again with `append_with`,
    /// even when that waits for room (not with the blocking [`Log::append`], whose answer would
    /// have to come from this same thread); a slow callback delays later answers, never commits. This call
    /// itself blocks only while a full group already waits for the committer (backpressure).
    pub fn append_with(&self, entries: Vec<impl Into<Bytes>>, done: impl FnOnce(Result<Vec<u64>>) + Send + 'static) {
        self.append_admitted(entries, |_| Ok(()), done)
    }

    /// Like [`Log::append_with`], but first asks `admit` about every entry, checked and seen as
    /// an [`EntryView`]: the first refusal refuses the whole batch with [`Error::InBatch`] around
    /// the reason. The server uses it to hold each ingest token to the identities it may write
    /// as, at no second decode.
    ///
    /// Entries are taken as [`Bytes`] (a `Vec<u8>` converts without a copy) and are not copied
    /// until the store writes them: a server may pass slices of the request buffer they came in.
    pub fn append_admitted(
        &self,
        entries: Vec<impl Into<Bytes>>,
        admit: impl Fn(&EntryView<'_>) -> Result<()>,
        done: impl FnOnce(Result<Vec<u64>>) + Send + 'static,
    ) {
        if let Err(e) = self.shared.poisoned() {
            return done(Err(e));
        }
        let h = self.shared.hash;
        let mut prepared = Vec::with_capacity(entries.len());
        let mut run = None;
        for (position, bytes) in entries.into_iter().enumerate() {
            match prepare(h, bytes.into(), &admit, &mut run) {
                Ok(p) => prepared.push(p),
                Err(e) => {
                    return done(Err(Error::InBatch { position, source: Box::new(e) }));
                }
            }
        }
        if prepared.is_empty() {
            return done(Ok(Vec::new()));
        }
        self.shared.submit(Submission { entries: prepared, done: Reply(Some(Box::new(done))) });
    }

    /// The newest signed checkpoint (size 0 for a new log).
    pub fn checkpoint(&self) -> Arc<SignedCheckpoint> {
        self.shared.checkpoint.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Signs a checkpoint over the durable tree now if it grew since the last one.
    pub fn sign_checkpoint(&self) -> Result<Arc<SignedCheckpoint>> {
        // Serialise with the checkpointer through the closing lock.
        let _g = self.shared.closing.lock().unwrap_or_else(|p| p.into_inner());
        self.shared.sign_checkpoint()
    }

    /// Waits until a checkpoint covers at least `size` entries, up to `timeout`.
    pub fn wait_for_checkpoint(&self, size: u64, timeout: Duration) -> Result<Arc<SignedCheckpoint>> {
        let deadline = Instant::now() + timeout;
        let mut cp = self.shared.checkpoint.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if cp.checkpoint.size >= size {
                return Ok(cp.clone());
            }
            self.shared.poisoned()?;
            let now = Instant::now();
            if now >= deadline {
                return Ok(cp.clone());
            }
            cp = self.shared.checkpoint_cv.wait_timeout(cp, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// Size of the durable tree (may be ahead of the newest checkpoint).
    pub fn durable_size(&self) -> u64 {
        self.shared.durable().size
    }

    /// Why the log is poisoned, if it is.
    pub fn poisoned(&self) -> Option<&str> {
        self.shared.poison.get().map(String::as_str)
    }

    /// Counters.
    pub fn stats(&self) -> LogStats {
        let s = &self.shared;
        LogStats {
            batches: s.batches.load(Ordering::Relaxed),
            entries: s.entries.load(Ordering::Relaxed),
            commit_nanos: s.commit_nanos.load(Ordering::Relaxed),
            syncs: s.syncs.load(Ordering::Relaxed),
            checkpoints: s.checkpoints.load(Ordering::Relaxed),
        }
    }

    /// The durable tree, if it has at least `size` entries.
    fn check_size(&self, size: u64) -> Result<Arc<Durable>> {
        let durable = self.shared.durable();
        if size > durable.size {
            return Err(Error::OutOfRange { what: "tree size", value: size, size: durable.size });
        }
        Ok(durable)
    }

    /// The entry at `index`.
    pub fn entry(&self, index: u64) -> Result<Vec<u8>> {
        self.check_size(index.saturating_add(1))?;
        self.shared.store.entry(index)?.ok_or_else(|| Error::Corrupt(format!("entry {index} is missing")))
    }

    /// The root of the tree of the first `size` entries.
    pub fn root_at(&self, size: u64) -> Result<Hash> {
        let d = self.check_size(size)?;
        merkle::root(self.shared.hash, &self.shared.nodes(&d), size)
    }

    /// Inclusion proof of `index` in the tree of `size` entries.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>> {
        let d = self.check_size(size)?;
        merkle::inclusion_proof(self.shared.hash, &self.shared.nodes(&d), index, size)
    }

    /// Consistency proof from `old` to `new` entries.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>> {
        let d = self.check_size(new)?;
        merkle::consistency_proof(self.shared.hash, &self.shared.nodes(&d), old, new)
    }

    /// Calls `f` for the entries `[start, end)` in index order; `end` must be durable.
    pub fn scan(&self, start: u64, end: u64, f: &mut dyn FnMut(u64, &[u8]) -> Result<()>) -> Result<()> {
        self.check_size(end)?;
        if start > end {
            return Err(Error::OutOfRange { what: "range start", value: start, size: end });
        }
        let mut next = start;
        self.shared.store.scan_entries(start, end, &mut |i, e| {
            if i != next {
                return Err(Error::Corrupt(format!("entry {next} is missing")));
            }
            next = i + 1;
            f(i, e)
        })?;
        if next != end {
            return Err(Error::Corrupt(format!("entry {next} is missing")));
        }
        Ok(())
    }

    /// Tile `(level, index)` of the durable tree (see `store::encode_tile`) if it has at least
    /// `width` hashes in row 0: the partial tile at the tree's right edge, or a full tile.
    /// `None` for a tile right of the durable edge, even when the store already holds it (written
    /// by a group that is not yet synced).
    pub fn tile(&self, level: u8, index: u64, width: u64) -> Result<Option<SharedTile>> {
        let d = self.shared.durable();
        if d.edge.is_beyond(level, index) {
            return Ok(None);
        }
        if d.edge.is_edge(level, index) {
            let wide_enough = |t: &&SharedTile| t.len() >= 2 && u64::from(u16::from_be_bytes([t[0], t[1]])) >= width;
            return Ok(d.edge.tile(level, index).filter(wide_enough).cloned());
        }
        self.shared.tile_cache.tile(&*self.shared.store, level, index)
    }

    /// The compact range of `[0, size)` (a pack's `left`): the roots of its perfect subtrees,
    /// largest first.
    pub fn compact_range(&self, size: u64) -> Result<CompactRange> {
        let d = self.check_size(size)?;
        CompactRange::load(&self.shared.nodes(&d), size)
    }

    /// The durable entries of `run` in seq order, with their indices.
    pub fn run_entries(&self, run: &str) -> Result<Vec<(u64, Vec<u8>)>> {
        let durable = self.durable_size();
        let store = &self.shared.store;
        let mut out = Vec::new();
        for (_, rec) in store.run_records(run)? {
            if rec.index >= durable {
                break;
            }
            out.push((rec.index, self.entry(rec.index)?));
        }
        Ok(out)
    }

    /// The receipt of `run` (SPEC §5) against the newest checkpoint: its entries up to the latest
    /// seal, with proofs, and the identity entry holding the seal's key.
    pub fn receipt(&self, run: &str) -> Result<Receipt> {
        let store = &self.shared.store;
        let cp = self.checkpoint();
        let size = cp.checkpoint.size;
        let records = store.run_records(run)?;
        if records.is_empty() {
            return Err(Error::UnknownRun(run.to_string()));
        }
        let Some(seal_at) = records.iter().rposition(|(_, r)| r.sealed) else {
            return Err(Error::Unsealed(run.to_string()));
        };
        let seal_index = records[seal_at].1.index;
        if seal_index >= size {
            // The seal may be durable but not yet checkpointed, or (after a crash) not durable.
            return Err(Error::NotYetCheckpointed { run: run.to_string(), seal_index });
        }
        // Read after the checkpoint, the durable tree is at least as large (checkpoints sign it).
        let d = self.shared.durable();
        let nodes = self.shared.nodes(&d);
        let h = self.shared.hash;
        let prove = |index: u64, entry: Option<Vec<u8>>| -> Result<ProvenEntry> {
            let entry = entry.ok_or_else(|| Error::Corrupt(format!("entry {index} is missing")))?;
            let proof = merkle::inclusion_proof(h, &nodes, index, size)?;
            Ok(ProvenEntry { index, entry, proof })
        };
        let indices: Vec<u64> = records[..=seal_at].iter().map(|(_, r)| r.index).collect();
        let entries =
            indices.iter().zip(store.entries(&indices)?).map(|(&i, e)| prove(i, e)).collect::<Result<Vec<_>>>()?;
        let signer = self.identity_before(Entry::check(&entries.last().expect("seal").entry)?.actor(), seal_index)?;
        Ok(Receipt {
            format: RECEIPT_FORMAT.to_string(),
            log: self.shared.descriptor.clone(),
            run: run.to_string(),
            checkpoint: cp.note.clone(),
            entries,
            signer: prove(signer, store.entry(signer)?)?,
        })
    }

    /// Index of the latest `identity.registered` of `actor` below `before`.
    fn identity_before(&self, actor: &str, before: u64) -> Result<u64> {
        self.shared
            .identities_of(actor)?
            .iter()
            .rev()
            .find(|&&index| index < before)
            .copied()
            .ok_or_else(|| Error::UnknownSigner { actor: actor.to_string(), before })
    }

    /// The public key `actor` had registered at log index `before`, if any.
    pub fn identity_key(&self, actor: &str, before: u64) -> Result<[u8; 32]> {
        let index = self.identity_before(actor, before)?;
        match Entry::decode(&self.entry(index)?)?.event {
            Event::IdentityRegistered { public_key } => Ok(public_key),
            _ => Err(Error::Corrupt(format!("index {index} is flagged as an identity but is not one"))),
        }
    }

    /// Stops accepting appends, commits everything already submitted, signs a final checkpoint
    /// and stops the log's threads.
    pub fn close(&self) -> Result<()> {
        // No new submissions; the committer commits what was sequenced, then stops.
        self.shared.seq.lock().unwrap_or_else(|p| p.into_inner()).closing = true;
        self.shared.work_cv.notify_all();
        self.shared.room_cv.notify_all();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        let mut it = threads.into_iter();
        // The committer first; the syncer and then the acker end once what it wrote is synced
        // and answered.
        for t in it.by_ref().take(3) {
            let _ = t.join();
        }
        *self.shared.closing.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.shared.closing_cv.notify_all();
        for t in it {
            let _ = t.join();
        }
        self.shared.poisoned()
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// Decodes and hashes one entry in the appender's thread. `last_run` is the run of the entry
/// before it, whose `Arc` a run's next entry shares.
fn prepare(
    h: TreeHash,
    bytes: Bytes,
    admit: &impl Fn(&EntryView<'_>) -> Result<()>,
    last_run: &mut Option<Arc<str>>,
) -> Result<Prepared> {
    // Every rule of SPEC §2, without materialising the entry.
    let e = Entry::check(&bytes)?;
    admit(&e)?;
    let kind = e.kind();
    let flags =
        RunRecord { index: 0, sealed: kind == Kind::ReceiptSealed, identity: kind == Kind::IdentityRegistered }.flags();
    let run = match last_run {
        Some(r) if **r == *e.run() => r.clone(),
        _ => last_run.insert(Arc::from(e.run())).clone(),
    };
    let seq = e.seq();
    let leaf = h.leaf(&bytes);
    Ok(Prepared { run, seq, flags, leaf, bytes })
}

/// What one group (or one submission being checked) sequenced for one run: seqs
/// `first_seq..first_seq + entries.len()`, each as `(index, leaf hash)`. A run's new entries
/// always continue at its next seq, so they are contiguous.
#[derive(Debug)]
struct Touched {
    first_seq: u64,
    entries: Vec<(u64, Hash)>,
}

impl Touched {
    fn next(&self) -> u64 {
        self.first_seq + self.entries.len() as u64
    }

    fn get(&self, seq: u64) -> Option<(u64, Hash)> {
        self.entries.get(usize::try_from(seq.checked_sub(self.first_seq)?).ok()?).copied()
    }
}

/// Runs touched by a group.
type RunMap = HashMap<Arc<str>, Touched>;

/// Run state for one submission being checked: it becomes visible only when all of it passes.
/// Consecutive entries of one run (the common case) find their run without hashing.
#[derive(Default)]
struct Overlay {
    runs: Vec<(Arc<str>, Touched)>,
    by_run: HashMap<Arc<str>, usize>,
    last: Option<usize>,
}

impl Overlay {
    fn find(&mut self, run: &Arc<str>) -> Option<usize> {
        if let Some(i) = self.last {
            let r = &self.runs[i].0;
            if Arc::ptr_eq(r, run) || r == run {
                return Some(i);
            }
        }
        let i = *self.by_run.get(&**run)?;
        self.last = Some(i);
        Some(i)
    }

    fn insert(&mut self, run: Arc<str>, next: u64) -> usize {
        let i = self.runs.len();
        self.by_run.insert(run.clone(), i);
        self.runs.push((run, Touched { first_seq: next, entries: Vec::new() }));
        self.last = Some(i);
        i
    }
}

/// The sequencer's maps hash run ids on every append: foldhash (hashbrown's default, through
/// `lru`) instead of SipHash. Keys come from authenticated ingest, and the maps live for one
/// group only.
type HashMap<K, V> = std::collections::HashMap<K, V, lru::DefaultHasher>;

/// What the sequencer needs, under `Shared::seq`.
#[derive(Debug)]
struct SeqState {
    seq: Sequencer,
    /// The group being filled.
    open: OpenGroup,
    /// A full group waiting for the committer.
    queued: Option<Group>,
    /// The committer waits on `work_cv`.
    committer_waiting: bool,
    /// The log is closing: no new submissions.
    closing: bool,
}

impl Shared {
    /// Sequences a submission into the open group, under the sequencing lock, in the caller's
    /// thread. Callbacks run outside the lock.
    fn submit(&self, sub: Submission) {
        let (n, bytes) = size_of(&sub);
        let mut st = self.seq.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if st.closing {
                drop(st);
                return sub.done.send(Err(Error::Closed));
            }
            if let Err(e) = self.poisoned() {
                drop(st);
                return sub.done.send(Err(e));
            }
            let st_ref = &mut *st;
            let full = st_ref.open.has_work()
                && (st_ref.open.entries + n > st_ref.seq.max_entries
                    || st_ref.open.bytes + bytes > st_ref.seq.max_bytes);
            if !full {
                break;
            }
            if st_ref.queued.is_none() {
                // Queue the full group for the committer and open a new one.
                st_ref.queued = Some(self.take_open(st_ref));
                self.work_cv.notify_one();
                break;
            }
            // Backpressure: one full group already waits.
            st = self.room_cv.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        let st_ref = &mut *st;
        let rejected = st_ref.seq.add(&mut st_ref.open, sub, (n, bytes));
        let wake = st_ref.committer_waiting && st_ref.open.has_work();
        drop(st);
        if wake {
            self.work_cv.notify_one();
        }
        if let Some((reply, e)) = rejected {
            reply.send(Err(e));
        }
    }

    /// Closes the open group into a commit batch and opens the next.
    fn take_open(&self, st: &mut SeqState) -> Group {
        let open = std::mem::replace(&mut st.open, OpenGroup::empty());
        let group = st.seq.close(open);
        st.seq.prune(self.durable().size);
        group
    }
}

#[derive(Debug)]
struct Sequencer {
    store: Arc<dyn Store>,
    /// The tree size after everything sequenced: the next entry's index.
    size: u64,
    /// Next seq of recently used runs: reflects every sequenced entry, durable or not.
    next_seq: lru::LruCache<Arc<str>, u64>,
    /// Groups not yet known durable: the tree size after each and the runs it touched.
    /// Consulted before the store, which does not have them yet.
    pending: VecDeque<(u64, RunMap)>,
    max_entries: usize,
    max_bytes: usize,
}

impl Sequencer {
    /// Sequences one submission into the open group: all of it, or none of it, returning the
    /// reply to send with the reason.
    /// `size` is the submission's `(entries, bytes)`, as the caller already measured it.
    fn add(&mut self, open: &mut OpenGroup, sub: Submission, size: (usize, usize)) -> Option<(Reply, Error)> {
        let mut overlay = Overlay::default();
        let checked = match self.check(&sub.entries, &mut overlay, open, self.size) {
            Err(e) => return Some((sub.done, e)),
            Ok(checked) => checked,
        };
        for (run, t) in overlay.runs {
            if t.entries.is_empty() {
                continue; // only duplicates: nothing changes
            }
            self.next_seq.put(run.clone(), t.next());
            match open.runs.entry(run) {
                std::collections::hash_map::Entry::Occupied(mut o) => {
                    debug_assert_eq!(o.get().next(), t.first_seq);
                    o.get_mut().entries.extend(t.entries);
                }
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(t);
                }
            }
        }
        let (n, bytes) = size;
        open.entries += n;
        open.bytes += bytes;
        let mut indices = Vec::with_capacity(checked.len());
        for (p, (index, new)) in sub.entries.into_iter().zip(checked) {
            indices.push(index);
            if !new {
                continue; // an idempotent duplicate: nothing to write
            }
            debug_assert_eq!(index, self.size);
            self.size += 1;
            // The committer hashes the tree's nodes, off this lock.
            open.leaves.push(p.leaf);
            // One run-index segment per run per submission: an entry that continues the last
            // segment (same run, next seq, next index) joins it.
            // (Entries are added in index order and a run's new entries in seq order, so the
            // last segment, if of the same run, always ends right before this entry.)
            match open.batch.runs.last_mut() {
                Some(seg) if Arc::ptr_eq(&seg.run, &p.run) || seg.run == p.run => {
                    debug_assert_eq!((seg.end_index(), seg.end_seq()), (index, p.seq));
                    seg.flags.push(p.flags);
                }
                _ => open.batch.runs.push(RunSegment {
                    run: p.run,
                    first_seq: p.seq,
                    first_index: index,
                    flags: vec![p.flags],
                }),
            }
            open.batch.entries.push((index, p.bytes));
        }
        open.acks.push((sub.done, indices));
        None
    }

    /// Drops the records of groups that are durable (the store has them now).
    fn prune(&mut self, durable: u64) {
        while self.pending.front().is_some_and(|(end, _)| *end <= durable) {
            self.pending.pop_front();
        }
    }

    /// Closes the open group into a commit batch up to the tree size as it now stands.
    fn close(&mut self, mut open: OpenGroup) -> Group {
        open.batch.tree_size = self.size;
        self.pending.push_back((open.batch.tree_size, open.runs));
        Group { batch: open.batch, leaves: open.leaves, acks: open.acks }
    }

    /// Checks one submission's run rules; fills `overlay` with what accepting it would change.
    /// Returns each entry's index, and whether it is new (not an idempotent duplicate).
    fn check(
        &mut self,
        entries: &[Prepared],
        overlay: &mut Overlay,
        open: &OpenGroup,
        mut next_index: u64,
    ) -> Result<Vec<(u64, bool)>> {
        let mut out = Vec::with_capacity(entries.len());
        for (position, p) in entries.iter().enumerate() {
            let in_batch = |e: Error| Error::InBatch { position, source: Box::new(e) };
            let slot = match overlay.find(&p.run) {
                Some(i) => i,
                None => {
                    let next = self.next_seq_of(&p.run, open).map_err(in_batch)?;
                    overlay.insert(p.run.clone(), next)
                }
            };
            let touched = &mut overlay.runs[slot].1;
            let next = touched.next();
            if p.seq == next {
                touched.entries.push((next_index, p.leaf));
                out.push((next_index, true));
                next_index += 1;
            } else if p.seq < next {
                let touched = &overlay.runs[slot].1;
                let index = self.duplicate_of(p, touched, open).map_err(in_batch)?;
                out.push((index, false));
            } else {
                return Err(in_batch(Error::SeqGap { run: p.run.to_string(), expected: next, got: p.seq }));
            }
        }
        Ok(out)
    }

    /// The index of the entry `p` repeats (its run already has its seq), if `p` is identical to
    /// it: this submission first, then the open group, the groups being committed and the store.
    fn duplicate_of(&self, p: &Prepared, submission: &Touched, open: &OpenGroup) -> Result<u64> {
        let conflict = |index| Error::Conflict { run: p.run.to_string(), seq: p.seq, index };
        let unsettled = submission
            .get(p.seq)
            .or_else(|| open.runs.get(&*p.run).and_then(|t| t.get(p.seq)))
            .or_else(|| self.pending.iter().rev().find_map(|(_, m)| m.get(&*p.run).and_then(|t| t.get(p.seq))));
        if let Some((index, leaf)) = unsettled {
            return if leaf == p.leaf { Ok(index) } else { Err(conflict(index)) };
        }
        // Durable: the run index has its index, and the entry itself settles identity.
        let missing = |what: &str| Error::Corrupt(format!("run {:?} seq {} is missing from {what}", p.run, p.seq));
        let index = self.store.run_record(&p.run, p.seq)?.ok_or_else(|| missing("the run index"))?.index;
        let stored = self.store.entry(index)?.ok_or_else(|| missing("the entries"))?;
        if stored[..] == p.bytes[..] { Ok(index) } else { Err(conflict(index)) }
    }

    fn next_seq_of(&mut self, run: &Arc<str>, open: &OpenGroup) -> Result<u64> {
        if let Some(n) = self.next_seq.get(&**run) {
            return Ok(*n);
        }
        // Evicted from the cache, or never seen. The open group and the groups still being
        // committed come first: the store does not hold their entries yet.
        let unsettled = open.runs.get(&**run).or_else(|| self.pending.iter().rev().find_map(|(_, m)| m.get(&**run)));
        let next = match unsettled {
            Some(t) => t.next(),
            // All of the run's entries (if any) are durable: the store knows. Most such runs are
            // new, and a point lookup (bloom-filtered) settles that without a seek.
            None => {
                let store = &self.store;
                if store.run_started(run)? { store.run_last(run)?.map_or(0, |(seq, _)| seq + 1) } else { 0 }
            }
        };
        self.next_seq.put(run.clone(), next);
        Ok(next)
    }
}

/// The group being filled.
#[derive(Debug)]
struct OpenGroup {
    batch: CommitBatch,
    leaves: Vec<Hash>,
    /// Runs this group touched (for next seqs and duplicates within the group).
    runs: RunMap,
    acks: Vec<(Reply, Vec<u64>)>,
    entries: usize,
    bytes: usize,
}

impl OpenGroup {
    fn empty() -> OpenGroup {
        OpenGroup {
            batch: CommitBatch::default(),
            leaves: Vec::new(),
            runs: HashMap::default(),
            acks: Vec::new(),
            entries: 0,
            bytes: 0,
        }
    }

    fn has_work(&self) -> bool {
        !self.acks.is_empty()
    }
}

fn size_of(s: &Submission) -> (usize, usize) {
    (s.entries.len(), s.entries.iter().map(|p| p.bytes.len()).sum())
}

impl Error {
    fn clone_poison(&self) -> Error {
        match self {
            Error::Poisoned(r) => Error::Poisoned(r.clone()),
            other => Error::Poisoned(other.to_string()),
        }
    }
}

/// Answers for the acker to send, in order.
type Acks = Vec<(Reply, Result<Vec<u64>>)>;

/// A group the committer wrote (or, with no new entries, had nothing to write for), on its way
/// to the syncer.
struct Written {
    /// Its submissions' answers once it is durable; or, if writing failed, the error.
    acks: Vec<(Reply, Vec<u64>)>,
    failed: Option<Error>,
    /// The tree after it, if it wrote entries.
    tree: Option<Durable>,
    entries: u64,
    started: Instant,
    /// What it wrote: a group's many buffers are freed by the acker, after the answers, on
    /// neither the committer's nor the syncer's time.
    spent: CommitBatch,
}

/// The committer: takes the queued or open group the moment it is free, writes it as one
/// `WriteBatch` and hands it to the syncer. So a group is everything that was sequenced while
/// the previous group was being written, and the next group is written while the syncer makes
/// the previous ones durable.
fn commit_loop(shared: &Shared, mut tree: TreeBuilder, syncer: &std::sync::mpsc::Sender<Written>) {
    loop {
        let group = {
            let mut st = shared.seq.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if let Some(g) = st.queued.take() {
                    shared.room_cv.notify_all();
                    break g;
                }
                if st.open.has_work() {
                    break shared.take_open(&mut st);
                }
                if st.closing {
                    return;
                }
                st.committer_waiting = true;
                st = shared.work_cv.wait(st).unwrap_or_else(|p| p.into_inner());
                st.committer_waiting = false;
            }
        };
        let written = write_group(shared, &mut tree, group);
        // If the syncer is gone (it panicked), nothing can become durable: answer with errors.
        if let Err(std::sync::mpsc::SendError(w)) = syncer.send(written) {
            let e = Error::Poisoned("the log's syncer thread stopped".into());
            send_acks(w.acks.into_iter().map(|(r, _)| (r, Err(e.clone_poison()))).collect());
        }
    }
}

/// Hashes one group's leaves into the tree and writes its entries, run segments, the tiles it
/// completed and the new size as one `WriteBatch`.
fn write_group(shared: &Shared, tree: &mut TreeBuilder, Group { mut batch, leaves, acks }: Group) -> Written {
    let started = Instant::now();
    let entries = batch.entries.len() as u64;
    let mut w = Written { acks, failed: None, tree: None, entries, started, spent: CommitBatch::default() };
    if let Err(e) = shared.poisoned() {
        w.failed = Some(e);
    } else if !batch.entries.is_empty() {
        for leaf in leaves {
            tree.push(leaf, &mut batch.tiles);
        }
        debug_assert_eq!(tree.size(), batch.tree_size, "groups reach the committer in sequence order");
        let durable = Durable { size: tree.size(), root: tree.root(), edge: tree.edge() };
        match shared.store.write(&batch) {
            Ok(()) => {
                // Readers' cached identity registrations of every actor are stale from here.
                if batch.runs.iter().any(|seg| seg.run.starts_with(crate::entry::IDENTITY_RUN_PREFIX)) {
                    shared.identity_writes.fetch_add(1, Ordering::Release);
                }
                w.tree = Some(durable)
            }
            Err(e) => {
                // The store may now hold any part of this batch: stop writing.
                shared.poison(format!("writing entries up to tree size {}: {e}", batch.tree_size));
                w.failed = Some(shared.poisoned().expect_err("just poisoned"));
            }
        }
    }
    w.spent = batch;
    w
}

/// The syncer: takes every group written so far, makes them durable with one sync, publishes
/// the durable tree and hands their answers to the acker, groups in write order. Nothing is
/// answered `Ok` before the sync that covers it, and a group without new entries (only
/// duplicates) is answered after every group before it, so after the originals it repeats.
fn sync_loop(
    shared: &Shared,
    written: &std::sync::mpsc::Receiver<Written>,
    acker: &std::sync::mpsc::Sender<(Acks, Vec<CommitBatch>)>,
) {
    while let Ok(first) = written.recv() {
        let mut groups = vec![first];
        groups.extend(written.try_iter());
        let mut failed = groups.iter().find_map(|w| w.failed.as_ref().map(Error::clone_poison));
        let tree = groups.iter_mut().filter_map(|w| w.tree.take()).next_back();
        if let (None, Some(Durable { size, .. })) = (&failed, &tree) {
            // (1) Sync: every group above was written before this call.
            if let Err(e) = shared.store.sync() {
                shared.poison(format!("syncing entries up to tree size {size}: {e}"));
                failed = Some(shared.poisoned().expect_err("just poisoned"));
            }
        }
        let mut acks: Acks = Vec::new();
        let spent: Vec<CommitBatch> = groups.iter_mut().map(|w| std::mem::take(&mut w.spent)).collect();
        match failed {
            None => {
                let now = Instant::now();
                for w in &groups {
                    if w.entries > 0 {
                        shared.batches.fetch_add(1, Ordering::Relaxed);
                        shared.entries.fetch_add(w.entries, Ordering::Relaxed);
                        shared.commit_nanos.fetch_add((now - w.started).as_nanos() as u64, Ordering::Relaxed);
                    }
                }
                if let Some(tree) = tree {
                    shared.syncs.fetch_add(1, Ordering::Relaxed);
                    // (2) Publish: from here on a checkpoint may cover these entries.
                    *shared.durable.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(tree);
                }
                // (3) Acknowledge, in submission order.
                for w in groups {
                    acks.extend(w.acks.into_iter().map(|(r, indices)| (r, Ok(indices))));
                }
            }
            // A failed write or sync: none of these groups is known durable. (Groups before a
            // failed write in this set were written, but the log is poisoned: it cannot tell.)
            Some(e) => {
                for w in groups {
                    acks.extend(w.acks.into_iter().map(|(r, _)| (r, Err(e.clone_poison()))));
                }
            }
        }
        // Waking the appenders costs a few microseconds each and, on few cores, the CPU the
        // committer needs for the next group: the acker does it. If the acker is gone (it
        // panicked), answer here rather than never.
        if let Err(std::sync::mpsc::SendError((acks, _))) = acker.send((acks, spent)) {
            send_acks(acks);
        }
    }
}

/// The acker: answers each committed group's submissions, groups in commit order. Callbacks run
/// here, holding no log lock, so one may append again (and wait for room) without stopping the
/// committer. It ends when the committer does.
fn ack_loop(groups: &std::sync::mpsc::Receiver<(Acks, Vec<CommitBatch>)>) {
    while let Ok((acks, spent)) = groups.recv() {
        send_acks(acks);
        drop(spent);
    }
}

fn send_acks(acks: Acks) {
    for (reply, r) in acks {
        reply.send(r);
    }
}

/// The checkpointer: signs the durable tree every `interval` if it grew, and once more at close.
fn checkpoint_loop(shared: &Shared, interval: Duration) {
    let mut closing = shared.closing.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        // `open` signed the first checkpoint: wait an interval (or for close) before each next.
        if !*closing {
            closing = shared.closing_cv.wait_timeout(closing, interval).unwrap_or_else(|p| p.into_inner()).0;
        }
        let done = *closing;
        if shared.poisoned().is_err() {
            return;
        }
        // Errors poison the log inside `sign_checkpoint`; nothing more to do here.
        let _ = shared.sign_checkpoint();
        if done {
            return;
        }
    }
}
