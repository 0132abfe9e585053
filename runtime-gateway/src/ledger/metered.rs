//! [`MeteredSink`]: the [`LedgerSink`] decorator that times every append from the call to its
//! durable acknowledgement (`gateway_ledger_append_seconds` in `/metrics`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger_core::{LogDescriptor, Result, TreeHash};
use prometheus_client::metrics::histogram::Histogram;

use super::{AppendDone, Batch, BoxFuture, LedgerSink, Payload, ReceiptError, RunEntries, RunPage, RunRef, RunsBy};

/// A sink that times each append from the call to its durable acknowledgement.
#[derive(Debug)]
pub struct MeteredSink {
    inner: Arc<dyn LedgerSink>,
    appends: Histogram,
}

impl MeteredSink {
    /// Wraps `inner`; the latencies go to `appends`.
    pub fn new(inner: Arc<dyn LedgerSink>, appends: Histogram) -> MeteredSink {
        MeteredSink { inner, appends }
    }
}

impl LedgerSink for MeteredSink {
    fn append(&self, batch: Batch, done: AppendDone) {
        let (start, h) = (Instant::now(), self.appends.clone());
        self.inner.append(
            batch,
            Box::new(move |r| {
                h.observe(start.elapsed().as_secs_f64());
                done(r)
            }),
        );
    }
    fn refused_batches(&self) -> u64 {
        self.inner.refused_batches()
    }
    fn tree_hash(&self) -> TreeHash {
        self.inner.tree_hash()
    }
    fn descriptor(&self) -> LogDescriptor {
        self.inner.descriptor()
    }
    fn descriptors(&self) -> Vec<LogDescriptor> {
        self.inner.descriptors()
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
    fn local_log(&self) -> Option<super::LocalLog> {
        self.inner.local_log()
    }
    fn open_runs(&self) -> BoxFuture<'_, Result<Vec<RunRef>>> {
        self.inner.open_runs()
    }
    fn payload_runs(&self, hash: [u8; 32], limit: usize) -> BoxFuture<'_, Result<Vec<String>>> {
        self.inner.payload_runs(hash, limit)
    }
    fn backlog(&self) -> u64 {
        self.inner.backlog()
    }
    fn lag(&self) -> Duration {
        self.inner.lag()
    }
    fn witnessing(&self) -> Option<ledger_witness::cosigner::CosignStatus> {
        self.inner.witnessing()
    }
    fn close(&self) -> BoxFuture<'_, Result<()>> {
        self.inner.close()
    }
}
