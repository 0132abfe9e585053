//! The ledger running in this process: the log's own sequencer is the sink.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ledger_core::payload::{PayloadLimits, PayloadStore};
use ledger_core::{Error, Log, LogDescriptor, Result, RunKey, RunSearch, SearchPage, TreeHash};
use ledger_witness::cosigner::{CosignStatus, Cosigner};

use super::{
    AppendDone, Batch, BoxFuture, Durable, LedgerSink, Payload, ReceiptError, RunEntries, RunPage, RunRef, RunsBy,
};

/// Payloads up to this size are written from the async task itself (a store write of a few
/// microseconds); larger ones on the blocking pool.
const INLINE_PUT: usize = 64 << 10;

/// The ledger running in this process.
#[derive(Debug, Clone)]
pub struct EmbeddedLedger {
    log: Arc<Log>,
    payloads: Arc<PayloadStore>,
    /// With witnesses: the cosigner publishing the log's checkpoints, and its task.
    witnessed: Option<(Cosigner, Arc<tokio::task::JoinHandle<()>>)>,
}

impl EmbeddedLedger {
    /// Wraps an open log, its payloads under the default limits.
    pub fn new(log: Arc<Log>) -> EmbeddedLedger {
        EmbeddedLedger::with_limits(log, PayloadLimits::default())
    }

    /// Wraps an open log, its payloads under `limits`.
    pub fn with_limits(log: Arc<Log>, limits: PayloadLimits) -> EmbeddedLedger {
        let payloads = Arc::new(PayloadStore::new(log.store().clone(), limits));
        EmbeddedLedger { log, payloads, witnessed: None }
    }

    /// Starts `cosigner` for the log (opened with its [`Cosigner::witnessing`]): receipts then
    /// wait for checkpoints its policy's witnesses cosigned. Refused when the policy names
    /// other logs only.
    pub fn witnessed_by(mut self, cosigner: Cosigner) -> anyhow::Result<EmbeddedLedger> {
        let task = cosigner.spawn(self.log.clone())?;
        self.witnessed = Some((cosigner, Arc::new(task)));
        Ok(self)
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

    fn put_payload(&self, hash: [u8; 32], bytes: Bytes) -> BoxFuture<'_, Result<()>> {
        // Written to the store without a sync: the log's next group commit makes it durable no
        // later than any entry appended after this returns (PayloadStore's durability rule).
        if bytes.len() <= INLINE_PUT {
            let r = self.payloads.put(&hash, &bytes).map(|_| ());
            return Box::pin(async move { r });
        }
        let payloads = self.payloads.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || payloads.put(&hash, &bytes).map(|_| ()))
                .await
                .map_err(|_| Error::Closed)?
        })
    }

    fn payload(&self, hash: [u8; 32]) -> BoxFuture<'_, Result<Payload>> {
        let payloads = self.payloads.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || match payloads.get(&hash) {
                Ok(Some(b)) => Ok(Payload::Present(Bytes::from(b))),
                Ok(None) => Ok(Payload::Missing),
                Err(Error::PayloadErased { index, .. }) => Ok(Payload::Erased { index }),
                Err(e) => Err(e),
            })
            .await
            .map_err(|_| Error::Closed)?
        })
    }

    fn erase_payload(&self, hash: [u8; 32], reason: String, approver: String) -> BoxFuture<'_, Result<u64>> {
        let (log, payloads) = (self.log.clone(), self.payloads.clone());
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let actor = log.descriptor().origin.clone();
                log.erase_payload(&payloads, &hash, &reason, &approver, &actor, crate::base::now_ns())
            })
            .await
            .map_err(|_| Error::Closed)?
        })
    }

    fn runs(&self, by: RunsBy, before: Option<u64>, limit: usize) -> BoxFuture<'_, Result<RunPage>> {
        let log = self.log.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let key = match &by {
                    RunsBy::Caller(c) => RunKey::Caller(c),
                    RunsBy::Context(c) => RunKey::Context(c),
                    RunsBy::Parent(p) => RunKey::Parent(p),
                };
                let runs = log.runs_by(key, before, limit)?;
                let total = log.count_runs_by(key)?;
                Ok(RunPage { runs: runs.into_iter().map(|r| RunRef { run: r.run, index: r.index }).collect(), total })
            })
            .await
            .map_err(|_| Error::Closed)?
        })
    }

    fn search_runs(&self, q: RunSearch, cursor: Option<String>, limit: usize) -> BoxFuture<'_, Result<SearchPage>> {
        let log = self.log.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                log.search_runs(&q, cursor.as_deref(), limit, super::MAX_EXAMINED_PER_PAGE, &|_| true)
            })
            .await
            .map_err(|_| Error::Closed)?
        })
    }

    fn open_runs(&self) -> BoxFuture<'_, Result<Vec<RunRef>>> {
        let log = self.log.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                Ok(log.open_runs()?.into_iter().map(|r| RunRef { run: r.run, index: r.index }).collect())
            })
            .await
            .map_err(|_| Error::Closed)?
        })
    }

    fn payload_runs(&self, hash: [u8; 32], limit: usize) -> BoxFuture<'_, Result<Vec<String>>> {
        let log = self.log.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || log.payload_runs(&hash, limit)).await.map_err(|_| Error::Closed)?
        })
    }

    fn local_log(&self) -> Option<super::LocalLog> {
        Some(super::LocalLog { log: self.log.clone(), payloads: self.payloads.clone() })
    }

    fn witnessing(&self) -> Option<CosignStatus> {
        self.witnessed.as_ref().map(|(c, _)| c.status(&self.log))
    }

    fn close(&self) -> BoxFuture<'_, Result<()>> {
        let log = self.log.clone();
        let witnessed = self.witnessed.clone();
        Box::pin(async move {
            // A witnessed log signs its final checkpoint now and gives the witnesses one round
            // for it (closing signs nothing more: nothing is appended after the drain).
            if let Some((c, task)) = witnessed {
                let signing = log.clone();
                if let Ok(Ok(cp)) = tokio::task::spawn_blocking(move || signing.sign_checkpoint()).await
                    && !c.settle(cp.checkpoint.size, c.timeout() + Duration::from_secs(1)).await
                {
                    eprintln!("runtime-gateway: the final checkpoint's witness round did not end in time");
                }
                task.abort();
            }
            tokio::task::spawn_blocking(move || {
                let closed = log.close();
                // Tasks still finishing may hold the log past the process's exit: the store's
                // background threads stop here, not during the exit (see `Store::quiesce`).
                log.store().quiesce();
                closed
            })
            .await
            .map_err(|_| Error::Closed)?
        })
    }
}
