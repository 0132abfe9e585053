//! The ledger running in this process: the log's own sequencer is the sink.

use std::sync::Arc;
use std::time::Duration;

use ledger_core::{Error, Log, LogDescriptor, Result, TreeHash};

use super::{AppendDone, Batch, BoxFuture, Durable, LedgerSink, ReceiptError, RunEntries};

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
    fn append(&self, batch: Batch, done: AppendDone) {
        // The sequencer takes submissions in call order (FIFO group commit), which is the
        // ordering rule of the trait. The entries go on as the same `Bytes`, to the WriteBatch.
        self.log.append_with(batch.entries, move |r| done(r.map(Durable::Logged)));
    }

    fn tree_hash(&self) -> TreeHash {
        self.log.hash()
    }

    fn descriptor(&self) -> LogDescriptor {
        self.log.descriptor().clone()
    }

    fn run_entries(&self, run: &str) -> BoxFuture<'_, Result<RunEntries>> {
        let (log, run) = (self.log.clone(), run.to_string());
        Box::pin(
            async move { tokio::task::spawn_blocking(move || log.run_entries(&run)).await.map_err(|_| Error::Closed)? },
        )
    }

    fn receipt(&self, run: &str, wait: Duration) -> BoxFuture<'_, std::result::Result<String, ReceiptError>> {
        let (log, run) = (self.log.clone(), run.to_string());
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                // The one wait for a checkpoint over the seal, shared with ledger-server.
                let r = log.receipt_covered(&run, wait);
                r.map(|r| r.to_json()).map_err(|e| match e {
                    Error::UnknownRun(_) => ReceiptError::UnknownRun(run.clone()),
                    Error::Unsealed(_) => ReceiptError::Unsealed(run.clone()),
                    Error::NotYetCheckpointed { .. } => ReceiptError::NotYetCheckpointed(run.clone()),
                    other => ReceiptError::Unavailable(other.to_string()),
                })
            })
            .await
            .map_err(|e| ReceiptError::Unavailable(e.to_string()))?
        })
    }

    fn close(&self) -> BoxFuture<'_, Result<()>> {
        let log = self.log.clone();
        Box::pin(async move { tokio::task::spawn_blocking(move || log.close()).await.map_err(|_| Error::Closed)? })
    }
}
