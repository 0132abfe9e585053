//! Test sinks (compiled for unit tests only).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ledger_core::{Entry, LogDescriptor, Result, TreeHash};

use super::{
    AppendDone, Batch, BoxFuture, Durable, EmbeddedLedger, LedgerSink, Payload, ReceiptError, RunEntries, RunPage,
    RunRef, RunsBy,
};

/// What [`Noting`] makes of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// As the embedded ledger does.
    Embedded,
    /// As the bus does: acknowledged as streamed at the next position, then appended.
    Streamed,
    /// As the bus does when the sequencer refuses: acknowledged as streamed, never appended.
    StreamedRefused,
}

/// The embedded ledger, noting each batch's seqs and whether it said it opens a run, and
/// acknowledging as [`Mode`] says.
#[derive(Debug)]
pub struct Noting {
    inner: EmbeddedLedger,
    /// Each batch's seqs, and whether it said it opens a run.
    pub seen: Mutex<Vec<(Vec<u64>, bool)>>,
    mode: Mode,
    position: AtomicU64,
}

impl Noting {
    /// `inner`, acknowledging as it does.
    pub fn new(inner: EmbeddedLedger) -> Noting {
        Noting::with_mode(inner, Mode::Embedded)
    }

    /// `inner`, acknowledging as `mode` says.
    pub fn with_mode(inner: EmbeddedLedger, mode: Mode) -> Noting {
        Noting { inner, seen: Mutex::new(Vec::new()), mode, position: AtomicU64::new(0) }
    }
}

impl LedgerSink for Noting {
    fn append(&self, batch: Batch, done: AppendDone) {
        let seqs = batch.entries.iter().map(|e| Entry::decode(e).unwrap().seq).collect();
        self.seen.lock().unwrap().push((seqs, batch.opens_run));
        let position = self.position.fetch_add(1, Ordering::SeqCst) + 1;
        match self.mode {
            Mode::Embedded => self.inner.append(batch, done),
            Mode::Streamed => {
                self.inner.append(batch, Box::new(move |r| done(r.map(|_| Durable::Streamed { position }))))
            }
            Mode::StreamedRefused => done(Ok(Durable::Streamed { position })),
        }
    }
    fn tree_hash(&self) -> TreeHash {
        self.inner.tree_hash()
    }
    fn descriptor(&self) -> LogDescriptor {
        self.inner.descriptor()
    }
    fn run_entries(&self, run: &str) -> BoxFuture<'_, Result<RunEntries>> {
        self.inner.run_entries(run)
    }
    fn receipt(&self, run: &str, wait: Duration) -> BoxFuture<'_, std::result::Result<String, ReceiptError>> {
        self.inner.receipt(run, wait)
    }
    fn put_payload(&self, hash: [u8; 32], bytes: bytes::Bytes) -> BoxFuture<'_, Result<()>> {
        self.inner.put_payload(hash, bytes)
    }
    fn payload(&self, hash: [u8; 32]) -> BoxFuture<'_, Result<Payload>> {
        self.inner.payload(hash)
    }
    fn erase_payload(&self, hash: [u8; 32], reason: String, approver: String) -> BoxFuture<'_, Result<u64>> {
        self.inner.erase_payload(hash, reason, approver)
    }
    fn runs(&self, by: RunsBy, before: Option<u64>, limit: usize) -> BoxFuture<'_, Result<RunPage>> {
        self.inner.runs(by, before, limit)
    }
    fn search_runs(
        &self,
        q: ledger_core::RunSearch,
        cursor: Option<String>,
        limit: usize,
    ) -> BoxFuture<'_, Result<ledger_core::SearchPage>> {
        self.inner.search_runs(q, cursor, limit)
    }
    fn open_runs(&self) -> BoxFuture<'_, Result<Vec<RunRef>>> {
        self.inner.open_runs()
    }
    fn payload_runs(&self, hash: [u8; 32], limit: usize) -> BoxFuture<'_, Result<Vec<String>>> {
        self.inner.payload_runs(hash, limit)
    }
    fn close(&self) -> BoxFuture<'_, Result<()>> {
        self.inner.close()
    }
}
