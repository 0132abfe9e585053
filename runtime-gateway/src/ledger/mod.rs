//! The ledger seam, the layer under the engine: [`LedgerSink`], with the ledger in this process
//! ([`embedded::EmbeddedLedger`]) or a `ledger-server` reached over gRPC
//! ([`remote::RemoteLedger`], behind its [`spool`]), or a NATS JetStream bus with read replicas
//! ([`bus::BusLedger`]), or several logs behind one router ([`shards::Shards`]); [`reads`] is
//! the gRPC read side the remote and bus sinks share;
//! [`metered::MeteredSink`] times every append. It imports only [`crate::base`].

pub mod bus;
pub mod embedded;
mod in_order;
pub mod metered;
pub mod payload_spool;
pub mod reads;
pub mod remote;
pub mod shards;
pub mod spool;
#[cfg(test)]
pub(crate) mod testing;

use std::time::Duration;

use bytes::Bytes;
use ledger_core::{Error, LogDescriptor, Result, RunSearch, SearchPage, TreeHash};

pub use crate::base::BoxFuture;
pub use embedded::EmbeddedLedger;

/// A run's entries with their indices, in seq order.
pub type RunEntries = Vec<(u64, Vec<u8>)>;

/// Where an acknowledged batch is durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Durable {
    /// In the log, at these indices.
    Logged(Vec<u64>),
    /// In the gateway's local spool (fsynced), to be forwarded to the ledger in order.
    Spooled,
    /// In the log's ingest stream on the bus (on a quorum of its servers), at this stream
    /// sequence; the sequencer appends it (or refuses it) from there.
    Streamed {
        /// The batch's stream sequence.
        position: u64,
    },
}

/// A batch of encoded entries for [`LedgerSink::append`], appended atomically.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// The entries, encoded. Shared, so a sink that keeps or resends them (the remote sink's
    /// spool) clones references, not bytes.
    pub entries: Vec<Bytes>,
    /// The batch holds a run's first entry (seq 0). Said by whoever encoded the entries, so a
    /// sink need not decode them to know: a remote sink with a full spool refuses such a batch
    /// (no new run starts) while it still takes the entries of runs already accepted.
    pub opens_run: bool,
}

impl Batch {
    /// A batch of `entries`; `opens_run` when it holds a run's first entry.
    pub fn new(entries: Vec<Vec<u8>>, opens_run: bool) -> Batch {
        Batch { entries: entries.into_iter().map(Bytes::from).collect(), opens_run }
    }

    /// Bytes of entries in the batch.
    pub fn bytes(&self) -> u64 {
        self.entries.iter().map(|e| e.len() as u64).sum()
    }
}

/// What the ledger holds under a payload hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// The bytes (their BLAKE3 is the hash asked for).
    Present(Bytes),
    /// Nothing was ever stored under the hash (or the ledger lost it).
    Missing,
    /// Erased on request: `payload.erased` is at `index`.
    Erased {
        /// The index of the `payload.erased` entry.
        index: u64,
    },
}

/// Most catalog keys one page of a run search reads (as ledger-server's).
pub const MAX_EXAMINED_PER_PAGE: usize = 10_000;

/// Which runs to list: by the `caller`, `context` or `parent` their `task.accepted` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunsBy {
    /// Runs whose `task.accepted` names this caller.
    Caller(String),
    /// Runs of this A2A context.
    Context(String),
    /// Child runs of this run.
    Parent(String),
}

/// A run, with the index of its `task.accepted`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunRef {
    /// The run id.
    pub run: String,
    /// The index of its first entry.
    pub index: u64,
}

/// One page of a run listing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunPage {
    /// Newest first.
    pub runs: Vec<RunRef>,
    /// How many runs the listing has in all pages.
    pub total: u64,
}

/// The embedded ledger's log and payload store ([`LedgerSink::local_log`]).
#[derive(Clone, Debug)]
pub struct LocalLog {
    /// The log.
    pub log: std::sync::Arc<ledger_core::Log>,
    /// Its payloads.
    pub payloads: std::sync::Arc<ledger_core::PayloadStore>,
}

/// Callback receiving where an append became durable, or why nothing of it was appended.
pub type AppendDone = Box<dyn FnOnce(Result<Durable>) + Send>;

/// Why a receipt could not be served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// The ledger has no entry of the run.
    #[error("the ledger has no entry of run {0:?}")]
    UnknownRun(String),
    /// The run has not been sealed yet (still running, or its seal is still in the spool).
    #[error("run {0:?} has no seal yet")]
    Unsealed(String),
    /// The seal is durable but no checkpoint covers it yet.
    #[error("the seal of run {0:?} is not under a checkpoint yet")]
    NotYetCheckpointed(String),
    /// The ledger could not be asked.
    #[error("the ledger is unavailable: {0}")]
    Unavailable(String),
}

/// Where the gateway writes entries and reads receipts.
///
/// Ordering rule every implementation keeps: batches become durable in the order `append` was
/// called, so a run recorder may submit a run's next entry before the previous one is
/// acknowledged, and the seal being durable means every entry before it is.
pub trait LedgerSink: Send + Sync + std::fmt::Debug {
    /// Appends the batch's entries atomically; `done` runs once, after they are durable, or with
    /// the reason nothing of them was appended.
    fn append(&self, batch: Batch, done: AppendDone);
    /// The log's tree hash (seal content hashes are over leaf hashes of this hash).
    fn tree_hash(&self) -> TreeHash;
    /// The log descriptor (with several logs, the default log's).
    fn descriptor(&self) -> LogDescriptor;
    /// Every log this sink writes to, the default first ([`shards::Shards`] has several): what
    /// the dashboard suggests pinning.
    fn descriptors(&self) -> Vec<LogDescriptor> {
        vec![self.descriptor()]
    }
    /// The run's durable entries in seq order, with their indices (empty for an unknown run).
    fn run_entries(&self, run: &str) -> BoxFuture<'_, Result<RunEntries>>;
    /// The run's receipt JSON (SPEC §5), waiting up to `wait` for a checkpoint over its seal.
    fn receipt(&self, run: &str, wait: Duration) -> BoxFuture<'_, std::result::Result<String, ReceiptError>>;
    /// Stores `bytes` under their BLAKE3 `hash`. Ordering rule: when the future resolves `Ok`,
    /// an entry naming the hash that is appended afterwards becomes durable no earlier than the
    /// payload (so an acknowledged entry never names bytes the ledger could lose).
    fn put_payload(&self, hash: [u8; 32], bytes: Bytes) -> BoxFuture<'_, Result<()>>;
    /// The payload stored under `hash`.
    fn payload(&self, hash: [u8; 32]) -> BoxFuture<'_, Result<Payload>>;
    /// Erases the payload under `hash`: appends `payload.erased` (SPEC 1.1) with `reason` and
    /// `approver`, then deletes the bytes; resolves with the entry's index (the first erasure's,
    /// when the payload was erased before).
    fn erase_payload(&self, hash: [u8; 32], reason: String, approver: String) -> BoxFuture<'_, Result<u64>>;
    /// Runs by caller, context or parent, newest first, `task.accepted` index below `before`.
    fn runs(&self, by: RunsBy, before: Option<u64>, limit: usize) -> BoxFuture<'_, Result<RunPage>>;
    /// One page of a run search (docs/FORMATS.md §8): the runs `q` finds, newest first in the
    /// scanned key's order, each with its catalog summary, continuing from `cursor`; a page reads
    /// a bounded part of the catalog and may be short with a cursor. What the gateway may read
    /// of a remote ledger is its ingest token's (the runs its identities opened).
    fn search_runs(&self, q: RunSearch, cursor: Option<String>, limit: usize) -> BoxFuture<'_, Result<SearchPage>>;
    /// Runs accepted but not sealed, oldest first (found without scanning the log).
    fn open_runs(&self) -> BoxFuture<'_, Result<Vec<RunRef>>>;
    /// Up to `limit` runs with an entry that names payload `hash`.
    fn payload_runs(&self, hash: [u8; 32], limit: usize) -> BoxFuture<'_, Result<Vec<String>>>;
    /// The log in this process and its payloads, when the ledger is embedded: what the
    /// dashboard's log and packs pages read (checkpoint, consistency proofs, entries, packs).
    /// A remote ledger's are read from the ledger service itself.
    fn local_log(&self) -> Option<LocalLog> {
        None
    }
    /// Entries accepted but not yet in the log (the spool's depth; 0 for the embedded ledger).
    fn backlog(&self) -> u64 {
        0
    }
    /// Batches the ledger refused after this sink had acknowledged them (each kept in
    /// `rejected.jsonl`).
    fn refused_batches(&self) -> u64 {
        0
    }
    /// How long the oldest entry accepted but not yet in the log has waited (zero when none).
    fn lag(&self) -> Duration {
        Duration::ZERO
    }
    /// Where witnessing of the log's checkpoints stands, when this sink runs a witnessed log
    /// (the embedded ledger with a witness policy; SPEC §8).
    fn witnessing(&self) -> Option<ledger_witness::cosigner::CosignStatus> {
        None
    }
    /// Stops accepting appends and waits until what was accepted is durable where it goes.
    fn close(&self) -> BoxFuture<'_, Result<()>>;
}

/// Where a sink keeps the batches the ledger refused after it had acknowledged them (in its
/// data or spool directory).
pub const REJECTED: &str = "rejected.jsonl";

/// Appends `why` (a JSON object: the refusal's code, message, position…) with the batch's
/// `entries` (base64) as one line of `dir`/[`REJECTED`], synced; says where, and whether the
/// write failed, so the caller's report can say both.
pub(crate) fn keep_rejected(dir: &std::path::Path, mut why: serde_json::Value, entries: &[Bytes]) -> String {
    use base64::Engine as _;
    use std::io::Write as _;
    why["entries"] = entries.iter().map(|b| base64::engine::general_purpose::STANDARD.encode(b)).collect();
    let path = dir.join(REJECTED);
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| writeln!(f, "{why}").and_then(|_| f.sync_data()));
    format!("{}{}", path.display(), written.err().map(|e| format!(" (could not write it: {e})")).unwrap_or_default())
}

/// Appends through `sink` and waits until durable.
pub async fn append(sink: &dyn LedgerSink, batch: Batch) -> Result<Durable> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    sink.append(
        batch,
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
    );
    rx.await.unwrap_or(Err(Error::Closed))
}
