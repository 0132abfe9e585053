//! The seam between the gateway and the ledger.

use std::sync::Arc;
use std::time::Duration;

use ledger_core::{Error, Log, LogDescriptor, Receipt, Result, TreeHash};

/// Callback receiving the indices of an append once it is durable, or why it failed.
pub type AppendDone = Box<dyn FnOnce(Result<Vec<u64>>) + Send>;

/// Where the gateway writes entries and reads receipts. Implementations: [`EmbeddedLedger`]
/// (in-process); a gRPC client of `ledger-server` and a message-bus publisher attach here.
pub trait LedgerSink: Send + Sync + std::fmt::Debug {
    /// Appends `entries` atomically; `done` runs once with their indices after they are durable.
    fn append(&self, entries: Vec<Vec<u8>>, done: AppendDone);
    /// The log's tree hash (seal content hashes are over leaf hashes of this hash).
    fn tree_hash(&self) -> TreeHash;
    /// The log descriptor.
    fn descriptor(&self) -> LogDescriptor;
    /// The durable entries of `run` in seq order, with their indices.
    fn run_entries(&self, run: &str) -> Result<Vec<(u64, Vec<u8>)>>;
    /// The run's receipt, waiting up to `wait` for a checkpoint to cover its latest seal.
    fn receipt(&self, run: &str, wait: Duration) -> Result<Receipt>;

    /// Appends and blocks until durable.
    fn append_blocking(&self, entries: Vec<Vec<u8>>) -> Result<Vec<u64>> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.append(
            entries,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.recv().unwrap_or(Err(Error::Closed))
    }
}

/// The ledger running in this process.
#[derive(Debug, Clone)]
pub struct EmbeddedLedger {
    log: Arc<Log>,
}

impl EmbeddedLedger {
    /// Wraps an open log.
    pub fn new(log: Arc<Log>) -> EmbeddedLedger {
        EmbeddedLedger { log }
    }

    /// The log.
    pub fn log(&self) -> &Arc<Log> {
        &self.log
    }
}

impl LedgerSink for EmbeddedLedger {
    fn append(&self, entries: Vec<Vec<u8>>, done: AppendDone) {
        self.log.append_with(entries, done);
    }

    fn tree_hash(&self) -> TreeHash {
        self.log.hash()
    }

    fn descriptor(&self) -> LogDescriptor {
        self.log.descriptor().clone()
    }

    fn run_entries(&self, run: &str) -> Result<Vec<(u64, Vec<u8>)>> {
        self.log.run_entries(run)
    }

    fn receipt(&self, run: &str, wait: Duration) -> Result<Receipt> {
        match self.log.receipt(run) {
            Err(Error::NotYetCheckpointed { seal_index, .. }) => {
                self.log.wait_for_checkpoint(seal_index + 1, wait)?;
                self.log.receipt(run)
            }
            other => other,
        }
    }
}
