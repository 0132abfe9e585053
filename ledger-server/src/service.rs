//! What the HTTP and gRPC front ends share: the log, the principals, and every operation with
//! its permission check. Store reads and appends run on tokio's blocking pool, never on the
//! async workers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ledger_core::{Entry, EntryView, Error, Hash, Log, SignedCheckpoint};
use tokio::sync::{oneshot, watch};

use crate::auth::{Principal, Principals};
use crate::error::{ApiError, ErrorCode};
use crate::metrics::Metrics;

/// Longest a receipt request may wait for its checkpoint.
pub const MAX_RECEIPT_WAIT: Duration = Duration::from_secs(60);
/// Most entries one read of `entries` returns; clients page.
pub const MAX_ENTRIES_PER_READ: u64 = 1000;

/// The running ledger behind both front ends.
#[derive(Debug)]
pub struct Ledger {
    /// The log.
    pub log: Arc<Log>,
    /// Who may do what.
    pub principals: Principals,
    /// The newest checkpoint, updated as they are signed.
    pub checkpoints: watch::Receiver<Arc<SignedCheckpoint>>,
    /// Counters.
    pub metrics: Metrics,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Becomes `true` when the server shuts down: streams end, long polls return.
    pub shutdown: watch::Receiver<bool>,
    /// The payloads kept in the log's store (`crate::payloads`).
    pub payloads: ledger_core::PayloadStore,
    /// The actor of the `payload.erased` entries this server appends (`[payloads] actor`).
    pub erasure_actor: String,
}

/// Runs `f` on the blocking pool.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::internal(format!("worker failed: {e}")))?
}

impl Ledger {
    /// Appends a batch for `who`, atomically; answers once it is durable with the indices and the
    /// durable tree size. Dropping the future does not cancel the append: what is acknowledged
    /// to nobody is still durable, and a resend is an idempotent success.
    pub async fn append(&self, who: Arc<Principal>, entries: Vec<Bytes>) -> Result<(Vec<u64>, u64), ApiError> {
        self.submit(who, entries).await?.await
    }

    /// Sequences a batch and returns, once it is sequenced, the future of its acknowledgement.
    /// Batches submitted one after another are sequenced in that order, so a stream may send a
    /// run's next entries before the previous batch is acknowledged.
    pub async fn submit(
        &self,
        who: Arc<Principal>,
        entries: Vec<Bytes>,
    ) -> Result<impl Future<Output = Result<(Vec<u64>, u64), ApiError>> + Send + 'static, ApiError> {
        if entries.is_empty() {
            return Err(ApiError::new(ErrorCode::EmptyBatch, "the batch holds no entries"));
        }
        if !matches!(who.role, crate::auth::Role::Ingest) {
            return Err(ApiError::forbidden(format!(
                "principal {:?} has role {:?}; appending needs an ingest token",
                who.name, who.role
            )));
        }
        let n = entries.len();
        let started = Instant::now();
        let (tx, rx) = oneshot::channel();
        let log = self.log.clone();
        blocking(move || {
            log.append_admitted(
                entries,
                move |e: &EntryView<'_>| who.may_append(e).map_err(Error::NotPermitted),
                move |r| {
                    let _ = tx.send(r);
                },
            );
            Ok(())
        })
        .await?;
        let (log, metrics) = (self.log.clone(), self.metrics.clone());
        Ok(async move {
            let indices = rx.await.map_err(|_| ApiError::internal("the log dropped the batch"))??;
            metrics.acked(n, started.elapsed());
            Ok((indices, log.durable_size()))
        })
    }

    /// The newest checkpoint.
    pub fn checkpoint(&self) -> Arc<SignedCheckpoint> {
        self.checkpoints.borrow().clone()
    }

    /// The receipt JSON of `run`, waiting up to `wait` for its latest seal to be checkpointed
    /// (`Log::receipt_covered`, on the blocking pool). Shutdown ends the wait: the answer is then
    /// what there is.
    pub async fn receipt(&self, who: Arc<Principal>, run: String, wait: Duration) -> Result<String, ApiError> {
        let wait = wait.min(MAX_RECEIPT_WAIT);
        if !who.reads_all() {
            // Permission first: whether a run is sealed or checkpointed is the reader's business.
            self.run_entries(who.clone(), run.clone()).await?;
        }
        let log = self.log.clone();
        let waiting = blocking(move || {
            let receipt = log.receipt_covered(&run, wait)?;
            if !who.reads_all() {
                let decoded: Vec<Entry> = receipt.entries.iter().filter_map(|p| Entry::decode(&p.entry).ok()).collect();
                if !who.may_read_run(decoded.iter()) {
                    return Err(forbidden_run(&who, &run));
                }
            }
            Ok(receipt.to_json())
        });
        tokio::pin!(waiting);
        let mut shutdown = self.shutdown.clone();
        tokio::select! {
            r = &mut waiting => r,
            _ = stopped(&mut shutdown) => {
                // Long polls end at shutdown: this wait, every other one, and any later one.
                self.log.end_waits();
                waiting.await
            }
        }
    }

    /// The run's durable entries, if `who` may read it.
    pub async fn run_entries(&self, who: Arc<Principal>, run: String) -> Result<Vec<(u64, Vec<u8>, Entry)>, ApiError> {
        let log = self.log.clone();
        blocking(move || {
            let raw = log.run_entries(&run)?;
            if raw.is_empty() {
                return Err(Error::UnknownRun(run).into());
            }
            let mut out = Vec::with_capacity(raw.len());
            for (i, bytes) in raw {
                let e = Entry::decode(&bytes)?;
                out.push((i, bytes, e));
            }
            if !who.may_read_run(out.iter().map(|(_, _, e)| e)) {
                return Err(forbidden_run(&who, &run));
            }
            Ok(out)
        })
        .await
    }

    /// Resolves an optional tree size against the newest checkpoint.
    pub fn size_or_checkpoint(&self, size: Option<u64>) -> u64 {
        size.unwrap_or_else(|| self.checkpoint().checkpoint.size)
    }

    /// Inclusion proof of `index` in the tree of `size`.
    pub async fn inclusion(
        &self,
        who: &Principal,
        index: u64,
        size: Option<u64>,
    ) -> Result<(u64, Vec<Hash>), ApiError> {
        require_reads_all(who)?;
        let size = self.size_or_checkpoint(size);
        if index >= size {
            return Err(ApiError::new(ErrorCode::OutOfRange, format!("index {index} is not below tree size {size}")));
        }
        let log = self.log.clone();
        blocking(move || Ok((size, log.inclusion_proof(index, size)?))).await
    }

    /// Consistency proof between two tree sizes.
    pub async fn consistency(&self, who: &Principal, from: u64, to: Option<u64>) -> Result<(u64, Vec<Hash>), ApiError> {
        require_reads_all(who)?;
        let to = self.size_or_checkpoint(to);
        if from > to {
            return Err(ApiError::new(ErrorCode::OutOfRange, format!("from {from} is larger than to {to}")));
        }
        let log = self.log.clone();
        blocking(move || Ok((to, log.consistency_proof(from, to)?))).await
    }

    /// Entries `[start, end)`, at most [`MAX_ENTRIES_PER_READ`] of them (clients page on).
    pub async fn entries(&self, who: &Principal, start: u64, end: u64) -> Result<Vec<Vec<u8>>, ApiError> {
        require_reads_all(who)?;
        let size = self.log.durable_size();
        if start > end || end > size {
            return Err(ApiError::new(
                ErrorCode::OutOfRange,
                format!("range [{start}, {end}) is not within the log's {size} entries"),
            ));
        }
        let end = end.min(start.saturating_add(MAX_ENTRIES_PER_READ));
        let log = self.log.clone();
        blocking(move || {
            let mut out = Vec::with_capacity((end - start) as usize);
            log.scan(start, end, &mut |_, e| {
                out.push(e.to_vec());
                Ok(())
            })?;
            Ok(out)
        })
        .await
    }

    /// The reason the log cannot serve writes, if any.
    pub fn unavailable(&self) -> Option<ApiError> {
        self.log.poisoned().map(|reason| Error::Poisoned(reason.to_string()).into())
    }
}

/// Resolves once `shutdown` turns `true`.
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

/// 403 unless `who` reads everything.
pub fn require_reads_all(who: &Principal) -> Result<(), ApiError> {
    if who.reads_all() {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "principal {:?} has role {:?}; this needs auditor or admin",
            who.name, who.role
        )))
    }
}

fn forbidden_run(who: &Principal, run: &str) -> ApiError {
    ApiError::forbidden(format!("principal {:?} may not read run {run:?}", who.name))
}

/// Follows the log's checkpoints from a thread of its own into a watch channel, until the log
/// is poisoned or `stop` is set.
pub fn watch_checkpoints(
    log: Arc<Log>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    metrics: Metrics,
) -> watch::Receiver<Arc<SignedCheckpoint>> {
    let (tx, rx) = watch::channel(log.checkpoint());
    metrics.checkpoint_signed(&log.checkpoint());
    std::thread::Builder::new()
        .name("checkpoint-watch".into())
        .spawn(move || {
            use std::sync::atomic::Ordering;
            let mut last = log.checkpoint().checkpoint.size;
            while !stop.load(Ordering::Relaxed) {
                match log.wait_for_checkpoint(last + 1, Duration::from_millis(200)) {
                    Ok(cp) if cp.checkpoint.size > last => {
                        last = cp.checkpoint.size;
                        metrics.checkpoint_signed(&cp);
                        if tx.send(cp).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    // Poisoned: no checkpoint will ever be signed again; health reports why.
                    Err(_) => return,
                }
            }
        })
        .expect("spawning the checkpoint watcher");
    rx
}
