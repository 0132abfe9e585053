//! The log: a sequencer with group commit over a [`Store`], checkpoints signed on an interval,
//! receipts and proofs read back.
//!
//! Three parts: this module is the [`Log`] API and its readers (receipts, proofs, tiles);
//! `sequencer` holds the run rules and the grouping (step 2 below) as a plain state machine,
//! unit-tested step by step without threads; `pipeline` holds the sequencing lock and the
//! committer, syncer, acker and checkpointer threads (steps 3 to 5), each step's durability
//! reasoning commented where it happens. `tree` is the committer's tree and its right edge.
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
//! # Witnessed publication (SPEC §8)
//!
//! With [`LogConfig::witnessing`] set, signing and serving are two steps. The checkpointer signs
//! as above but neither stores nor serves what it signed: it hands the checkpoint to
//! [`Witnessing::signed`] (a cosigner collecting witness cosignatures). The cosigner calls
//! [`Log::publish`] with the note and the cosignatures it got once the operator's policy is
//! satisfied; only then is the note stored (synced) and served to receipts, proofs, packs and
//! tiles readers. Until then they keep the last published checkpoint. Nothing is lost by not
//! storing the unwitnessed checkpoints: Ed25519 signing is deterministic, so the log signs the
//! same note again for the same tree whenever it is asked (at open, for one).
//!
//! # Poisoning
//!
//! If a write, a sync or a checkpoint write fails, the store may hold any part of what was
//! written: the log cannot know its own state any more. Every group not yet answered is answered
//! with the error. It records the reason and refuses every later append and
//! checkpoint with [`Error::Poisoned`]. Reopening the store recovers the exact committed state
//! (entries written but not acknowledged may be present; acknowledged ones always are).

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::checkpoint::{Checkpoint, LogDescriptor};
use crate::entry::{Entry, EntryView, Event};
use crate::keys::{NamedKey, VerifierKey};
use crate::merkle::{self, CompactRange};
use crate::receipt::{ProvenEntry, RECEIPT_FORMAT, Receipt};
use crate::store::{CachedNodes, CommitBatch, Edge, LogParams, RunKey, RunRef, SharedTile, Store, TileCache, catalog};
use crate::{Error, Hash, Result, TreeHash};

mod pipeline;
mod sequencer;
pub(crate) mod tree;

use pipeline::{Reply, SeqState, Submission};
use sequencer::{Sequencer, prepare};
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
    /// Serve only checkpoints that witnesses cosigned ([module docs](self)); `None` serves each
    /// checkpoint the moment it is signed.
    pub witnessing: Option<Witnessing>,
    /// Extension lines every checkpoint gets after its root line (FORMATS §4), asked at each
    /// signature; `None` signs none. A tree that has not grown is signed again when they change.
    pub extensions: Option<Extensions>,
}

/// Gives a checkpoint's extension lines ([`LogConfig::extensions`]) from its tree size and the
/// source position at that size ([`Log::position_at`]). Each line is one line of text without
/// its newline.
#[derive(Clone)]
pub struct Extensions(pub Arc<dyn Fn(u64, Option<u64>) -> Vec<String> + Send + Sync>);

impl std::fmt::Debug for Extensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Extensions { .. }")
    }
}

/// The key a log is opened with: its signing key, or, for a log that only follows one signed
/// elsewhere (a read replica on the bus), the verifier key of that log.
#[derive(Debug)]
pub enum LogKey {
    /// The log signs its checkpoints.
    Signing(NamedKey),
    /// The log signs nothing: it serves only checkpoints handed to [`Log::publish`], each
    /// verified under this key.
    Verifying(VerifierKey),
}

impl LogKey {
    /// The log's name (its origin).
    pub fn name(&self) -> &str {
        match self {
            LogKey::Signing(k) => k.name(),
            LogKey::Verifying(k) => k.name(),
        }
    }

    /// The key that verifies the log's checkpoints.
    pub fn verifier(&self) -> VerifierKey {
        match self {
            LogKey::Signing(k) => k.verifier(),
            LogKey::Verifying(k) => k.clone(),
        }
    }
}

impl From<NamedKey> for LogKey {
    fn from(k: NamedKey) -> LogKey {
        LogKey::Signing(k)
    }
}

impl From<VerifierKey> for LogKey {
    fn from(k: VerifierKey) -> LogKey {
        LogKey::Verifying(k)
    }
}

/// Whether a stored checkpoint note may be served, given the log's key ([`Witnessing::accepts`]).
pub type AcceptsNote = dyn Fn(&str, &VerifierKey) -> bool + Send + Sync;

/// How a witnessed log hands its signed checkpoints out and decides, at open, whether the
/// newest stored checkpoint may still be served.
#[derive(Clone)]
pub struct Witnessing {
    /// Whether a stored checkpoint note may be served (it satisfies the operator's policy), given
    /// the log's own key. Asked at open about the newest stored one; if it answers no, the log
    /// serves no checkpoint (size 0) until the next [`Log::publish`].
    pub accepts: Arc<AcceptsNote>,
    /// Called on the checkpointer's thread with each checkpoint the log signs. It must not
    /// block: hand the checkpoint to another thread or task.
    pub signed: Arc<dyn Fn(Arc<SignedCheckpoint>) + Send + Sync>,
}

impl std::fmt::Debug for Witnessing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Witnessing { .. }")
    }
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
            witnessing: None,
            extensions: None,
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

impl SignedCheckpoint {
    /// No checkpoint yet: the empty tree, with no note.
    fn none(origin: &str, hash: TreeHash) -> SignedCheckpoint {
        SignedCheckpoint {
            checkpoint: Checkpoint { origin: origin.to_string(), size: 0, root: hash.empty_root(), extensions: vec![] },
            note: String::new(),
        }
    }
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

/// `timeout` from now, or far in the future for a timeout too large to add.
fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout).unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600))
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
    key: LogKey,
    /// The key checkpoints verify under (`key`'s).
    verifier: VerifierKey,
    extensions: Option<Extensions>,
    descriptor: LogDescriptor,
    poison: OnceLock<String>,
    /// The durable tree: advanced only after a successful sync.
    durable: Mutex<Arc<Durable>>,
    /// The checkpoint served: the newest signed one, or with witnessing the newest published.
    checkpoint: Mutex<Arc<SignedCheckpoint>>,
    checkpoint_cv: Condvar,
    /// The newest checkpoint signed (with witnessing, possibly not yet published).
    signed: Mutex<Arc<SignedCheckpoint>>,
    witnessing: Option<Witnessing>,
    /// Set by [`Log::end_waits`] (and at close): [`Log::receipt_covered`] waits no more.
    waits_ended: std::sync::atomic::AtomicBool,
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
    /// The source position of the last positioned submission made durable.
    position: Mutex<Option<u64>>,
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

    /// Signs a checkpoint over the durable tree if it grew since the last one signed; without
    /// witnessing, stores it (synced) and serves it, with witnessing hands it to
    /// [`Witnessing::signed`]. Only ever called from one thread at a time (the checkpointer, or
    /// `open` before it starts).
    fn sign_checkpoint(&self) -> Result<Arc<SignedCheckpoint>> {
        self.poisoned()?;
        let Durable { size, root, .. } = *self.durable();
        let current = self.signed.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let LogKey::Signing(key) = &self.key else {
            // A follower signs nothing: what it serves comes through `Log::publish`.
            return Ok(current);
        };
        let extensions = match &self.extensions {
            Some(f) => (f.0)(size, self.store.position_at(size)?),
            None => vec![],
        };
        if size == current.checkpoint.size && extensions == current.checkpoint.extensions && !current.note.is_empty() {
            return Ok(current);
        }
        let checkpoint = Checkpoint { origin: self.descriptor.origin.clone(), size, root, extensions };
        let note = checkpoint.sign(key);
        let signed = Arc::new(SignedCheckpoint { checkpoint, note });
        *self.signed.lock().unwrap_or_else(|p| p.into_inner()) = signed.clone();
        self.checkpoints.fetch_add(1, Ordering::Relaxed);
        match &self.witnessing {
            Some(w) => (w.signed)(signed.clone()),
            None => {
                self.serve(signed.clone())?;
            }
        }
        Ok(signed)
    }

    /// Stores `cp` durably, then serves it and wakes its waiters; a checkpoint no larger than the
    /// one served is left alone (`false`). A failed write poisons the log.
    fn serve(&self, cp: Arc<SignedCheckpoint>) -> Result<bool> {
        // Held across the write: two publications cannot interleave, and the served checkpoint
        // only ever grows.
        let mut served = self.checkpoint.lock().unwrap_or_else(|p| p.into_inner());
        if cp.checkpoint.size <= served.checkpoint.size && !served.note.is_empty() {
            return Ok(false);
        }
        // Durability: the note is stored (and synced by `put_checkpoint`) before anyone can see
        // it, so a served checkpoint survives a crash.
        let size = cp.checkpoint.size;
        if let Err(e) = self.store.put_checkpoint(size, &cp.note) {
            drop(served);
            self.poison(format!("storing checkpoint {size}: {e}"));
            return Err(e);
        }
        *served = cp;
        self.checkpoint_cv.notify_all();
        Ok(true)
    }
}

/// Checks and hashes a batch's entries in the caller's thread: all of them, or the first refusal
/// as [`Error::InBatch`].
fn prepare_all(
    h: TreeHash,
    entries: Vec<impl Into<Bytes>>,
    admit: &impl Fn(&EntryView<'_>) -> Result<()>,
) -> Result<Vec<sequencer::Prepared>> {
    let mut run = None;
    entries
        .into_iter()
        .enumerate()
        .map(|(position, bytes)| {
            prepare(h, bytes.into(), admit, &mut run).map_err(|e| Error::InBatch { position, source: Box::new(e) })
        })
        .collect()
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
    ///
    /// With a [`LogKey::Verifying`] key the log signs nothing (a follower): it serves the newest
    /// stored checkpoint and then only what [`Log::publish`] hands it.
    pub fn open(store: Arc<dyn Store>, key: impl Into<LogKey>, cfg: LogConfig) -> Result<Log> {
        let key: LogKey = key.into();
        let verifier = key.verifier();
        let descriptor = LogDescriptor::new(&verifier, cfg.hash);
        let size = match store.load_meta()? {
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
                size
            }
            None => {
                let params = LogParams { hash: cfg.hash, origin: key.name().to_string() };
                store.commit(&CommitBatch { params: Some(params), ..CommitBatch::default() })?;
                0
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
            // A witnessed log serves only what its policy accepts; the stored tree was checked
            // against this checkpoint all the same.
            Some((cp_size, note)) => {
                let cp = Checkpoint::open(&note, &verifier).map_err(|e| {
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
            // None yet: a new log, or a witnessed one never published (it stores only published
            // checkpoints), or one switched from witnessed to not. Checkpoints are derived: the
            // one signed below covers the whole stored tree.
            None => SignedCheckpoint::none(key.name(), cfg.hash),
        };

        let signed = Arc::new(latest);
        let served = match &cfg.witnessing {
            Some(w) if !signed.note.is_empty() && !(w.accepts)(&signed.note, &verifier) => {
                Arc::new(SignedCheckpoint::none(key.name(), cfg.hash))
            }
            _ => signed.clone(),
        };
        let sequencer = Sequencer::new(size, cfg.run_cache, cfg.max_group_entries, cfg.max_group_bytes);
        let shared = Arc::new(Shared {
            store: store.clone(),
            hash: cfg.hash,
            key,
            verifier,
            extensions: cfg.extensions.clone(),
            descriptor,
            poison: OnceLock::new(),
            durable: Mutex::new(Arc::new(durable)),
            checkpoint: Mutex::new(served),
            checkpoint_cv: Condvar::new(),
            signed: Mutex::new(signed),
            witnessing: cfg.witnessing.clone(),
            waits_ended: std::sync::atomic::AtomicBool::new(false),
            closing: Mutex::new(false),
            closing_cv: Condvar::new(),
            seq: Mutex::new(SeqState::new(sequencer)),
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
            position: Mutex::new(store.position()?),
        });
        // Cover whatever is durable but was never checkpointed (a crash between commit and sign).
        shared.sign_checkpoint()?;

        let threads = pipeline::start(&shared, tree, cfg.checkpoint_interval)?;
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
        let prepared = match prepare_all(self.shared.hash, entries, &admit) {
            Ok(p) => p,
            Err(e) => return done(Err(e)),
        };
        if prepared.is_empty() {
            return done(Ok(Vec::new()));
        }
        self.shared.submit(Submission { entries: prepared, done: Reply::new(done), position: None });
    }

    /// Appends a batch that comes from an ordered source (a bus log's stream) at `position`,
    /// which must grow from one call to the next: like [`Log::append_admitted`], and the
    /// position is stored in the same atomic write as the batch's entries. A refusal (an entry
    /// that breaks SPEC §2 or `admit`, a seq gap, a conflict) is answered only once the position
    /// is durable, so after a restart the log resumes after it ([`Log::position`]) and refuses
    /// nothing differently: its tree is a function of the source's order alone.
    pub fn append_at(
        &self,
        entries: Vec<impl Into<Bytes>>,
        position: u64,
        admit: impl Fn(&EntryView<'_>) -> Result<()>,
        done: impl FnOnce(Result<Vec<u64>>) + Send + 'static,
    ) {
        if let Err(e) = self.shared.poisoned() {
            return done(Err(e));
        }
        let (prepared, done) = match prepare_all(self.shared.hash, entries, &admit) {
            Ok(p) => (p, Reply::new(done)),
            // Sequenced empty, so that only its position is recorded, then refused.
            Err(e) => (Vec::new(), Reply::refusal(Reply::new(done), e)),
        };
        self.shared.submit(Submission { entries: prepared, done, position: Some(position) });
    }

    /// The source position of the last [`Log::append_at`] batch that is durable (refused ones
    /// included): where a log fed from an ordered source resumes. `None` for a log never fed so.
    pub fn position(&self) -> Option<u64> {
        *self.shared.position.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The source position of the submission that made the tree reach `size` entries (the last
    /// [`Log::append_at`] batch that appended any), `None` when no such submission is recorded
    /// (size 0, or entries appended without a position). A bus checkpoint's stream line.
    pub fn position_at(&self, size: u64) -> Result<Option<u64>> {
        self.shared.store.position_at(size)
    }

    /// The checkpoint the log serves (size 0 for a new log): the newest signed one, or with
    /// witnessing the newest published one.
    pub fn checkpoint(&self) -> Arc<SignedCheckpoint> {
        self.shared.checkpoint.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The newest checkpoint signed; with witnessing it may not be published yet.
    pub fn signed_checkpoint(&self) -> Arc<SignedCheckpoint> {
        self.shared.signed.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Publishes `note` (a witnessed log's checkpoint with the cosignatures collected for it):
    /// stores it durably, then serves it to receipts, proofs, packs and waiters. The note must
    /// be one this log signed (its signature verifies under the log key and its root is the
    /// durable tree's at its size); cosignature lines are kept as they are. `false` when the
    /// served checkpoint is already at least as large (nothing changes).
    pub fn publish(&self, note: &str) -> Result<bool> {
        self.shared.poisoned()?;
        let checkpoint = Checkpoint::open(note, &self.shared.verifier)?;
        let durable = self.check_size(checkpoint.size)?;
        if merkle::root(self.shared.hash, &self.shared.nodes(&durable), checkpoint.size)? != checkpoint.root {
            // Only this log's key could have signed it: the key signs some other tree too.
            return Err(Error::Corrupt(format!(
                "a checkpoint of size {} signed by this log's key does not match its tree",
                checkpoint.size
            )));
        }
        self.shared.serve(Arc::new(SignedCheckpoint { checkpoint, note: note.to_string() }))
    }

    /// Signs a checkpoint over the durable tree now if it grew since the last one.
    pub fn sign_checkpoint(&self) -> Result<Arc<SignedCheckpoint>> {
        // Serialise with the checkpointer through the closing lock.
        let _g = self.shared.closing.lock().unwrap_or_else(|p| p.into_inner());
        self.shared.sign_checkpoint()
    }

    /// Waits until a checkpoint covers at least `size` entries, up to `timeout`.
    pub fn wait_for_checkpoint(&self, size: u64, timeout: Duration) -> Result<Arc<SignedCheckpoint>> {
        self.wait_until_covered(size, deadline_after(timeout), false)
    }

    /// Waits until a checkpoint covers at least `size` entries, or `deadline`, or (if
    /// `endable`) until [`Log::end_waits`]; returns the newest checkpoint.
    fn wait_until_covered(&self, size: u64, deadline: Instant, endable: bool) -> Result<Arc<SignedCheckpoint>> {
        let mut cp = self.shared.checkpoint.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if cp.checkpoint.size >= size {
                return Ok(cp.clone());
            }
            self.shared.poisoned()?;
            let now = Instant::now();
            // `end_waits` sets the flag under this lock before it notifies: no wakeup is lost.
            if now >= deadline || (endable && self.shared.waits_ended.load(Ordering::Relaxed)) {
                return Ok(cp.clone());
            }
            cp = self.shared.checkpoint_cv.wait_timeout(cp, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// The receipt of `run` ([`Log::receipt`]) once a checkpoint covers its latest seal: if none
    /// does yet, waits for one up to `timeout` (the checkpointer signs every interval), then
    /// answers as [`Log::receipt`] does, [`Error::NotYetCheckpointed`] included. Blocks the
    /// calling thread while it waits; [`Log::end_waits`] and [`Log::close`] end the wait early.
    /// [`Error::Poisoned`] if the log is poisoned while it waits (no checkpoint will come).
    pub fn receipt_covered(&self, run: &str, timeout: Duration) -> Result<Receipt> {
        let deadline = deadline_after(timeout);
        loop {
            match self.receipt(run) {
                // A seal not yet checkpointed: wait for a checkpoint that covers it, then look
                // again (the run may have been sealed again meanwhile).
                Err(Error::NotYetCheckpointed { seal_index, .. })
                    if Instant::now() < deadline && !self.shared.waits_ended.load(Ordering::Relaxed) =>
                {
                    self.wait_until_covered(seal_index + 1, deadline, true)?;
                }
                other => return other,
            }
        }
    }

    /// Ends every [`Log::receipt_covered`] wait, now and from now on: they answer at once with
    /// what there is. For a server that shuts down and must not hold its long polls open.
    pub fn end_waits(&self) {
        let _cp = self.shared.checkpoint.lock().unwrap_or_else(|p| p.into_inner());
        self.shared.waits_ended.store(true, Ordering::Relaxed);
        self.shared.checkpoint_cv.notify_all();
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

    /// Runs whose `task.accepted` names `key` (caller, context or parent), newest first: at most
    /// `limit`, accepted below index `before` if given, and always below the durable size (the
    /// catalog is written with the entries, before they are durable).
    pub fn runs_by(&self, key: RunKey<'_>, before: Option<u64>, limit: usize) -> Result<Vec<RunRef>> {
        let durable = self.durable_size();
        let before = before.map_or(durable, |b| b.min(durable));
        self.shared.store.runs_by(key, Some(before), limit)
    }

    /// How many runs [`Log::runs_by`] lists for `key` in all (one pass over them).
    pub fn count_runs_by(&self, key: RunKey<'_>) -> Result<u64> {
        let durable = self.durable_size();
        let all = self.shared.store.count_runs_by(key)?;
        // Less those written but not yet durable: the newest, a few groups' worth at most.
        let mut ahead = 0u64;
        let mut before = None;
        loop {
            let page = self.shared.store.runs_by(key, before, 256)?;
            let n = page.iter().take_while(|r| r.index >= durable).count();
            ahead += n as u64;
            if n < page.len() || page.len() < 256 {
                break;
            }
            before = page.last().map(|r| r.index);
        }
        Ok(all.saturating_sub(ahead))
    }

    /// Runs accepted and not yet sealed, by ascending accepted index, accepted below the durable
    /// size. A run whose seal is written but not yet durable is no longer listed (the store
    /// applied the seal's removal with it): at most one commit group early.
    pub fn open_runs(&self) -> Result<Vec<RunRef>> {
        let durable = self.durable_size();
        let mut runs = self.shared.store.open_runs()?;
        runs.retain(|r| r.index < durable);
        Ok(runs)
    }

    /// One page of a run search ([`catalog::search`]): the runs `q` finds that `visible` lets
    /// through, newest first in the scanned key's order, each with its summary and its count
    /// of durable entries; at most `limit` runs, after reading at most `max_examined` catalog
    /// keys; only runs accepted, and seals, below the durable size.
    pub fn search_runs(
        &self,
        q: &catalog::RunSearch,
        cursor: Option<&str>,
        limit: usize,
        max_examined: usize,
        visible: &dyn Fn(&catalog::RunSummary) -> bool,
    ) -> Result<catalog::SearchPage> {
        let durable = self.durable_size();
        let store = &*self.shared.store;
        let bounds = catalog::SearchBounds { limit, max_examined: max_examined.max(1), below: durable };
        let mut page = catalog::search(store, q, cursor, bounds, visible)?;
        for r in &mut page.runs {
            r.entries = self.durable_entry_count(&r.run, durable)?;
        }
        Ok(page)
    }

    /// The catalog's summary of `run` (`None` unless its seq 0 is a durable `task.accepted`),
    /// with its latest durable seal and entry count.
    pub fn run_summary(&self, run: &str) -> Result<Option<catalog::RunSummary>> {
        let durable = self.durable_size();
        let store = &*self.shared.store;
        let Some(first) = catalog::accepted_index(store, run)? else { return Ok(None) };
        if first >= durable {
            return Ok(None);
        }
        let Some(v) = store.catalog_get(&catalog::all_key(first))? else { return Ok(None) };
        let mut r = catalog::decode_summary(first, &v)?;
        r.sealed = catalog::latest_seal(store, run, durable)?;
        r.entries = self.durable_entry_count(run, durable)?;
        Ok(Some(r))
    }

    /// Entries of `run` below `durable`: its last seq + 1, unless the last is not durable yet.
    fn durable_entry_count(&self, run: &str, durable: u64) -> Result<u64> {
        let store = &self.shared.store;
        match store.run_last(run)? {
            None => Ok(0),
            Some((seq, rec)) if rec.index < durable => Ok(seq + 1),
            Some(_) => Ok(store.run_records(run)?.iter().filter(|(_, r)| r.index < durable).count() as u64),
        }
    }

    /// Runs with a durable entry naming `hash` (input, artifact, workspace or payload hash), each
    /// once, in the order of the first such entry, at most `limit`.
    pub fn payload_runs(&self, hash: &[u8; 32], limit: usize) -> Result<Vec<String>> {
        Ok(self.payload_refs(hash, limit)?.into_iter().map(|r| r.run).collect())
    }

    /// [`Log::payload_runs`] with the index of each run's first durable entry naming `hash`
    /// (ascending; no two runs share one, an entry being of one run). One forward scan of the
    /// hash's references, holding the runs seen so far to list each once.
    pub fn payload_refs(&self, hash: &[u8; 32], limit: usize) -> Result<Vec<RunRef>> {
        let durable = self.durable_size();
        catalog::payload_refs(&*self.shared.store, hash, limit, durable)
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
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        pipeline::stop(&self.shared, threads);
        // The final checkpoint is signed: no wait for a later one can end well.
        self.end_waits();
        self.shared.poisoned()
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        let _ = self.close();
    }
}
