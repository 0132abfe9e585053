//! What the HTTP and gRPC front ends share: the log, the principals, and every operation with
//! its permission check. Store reads and appends run on tokio's blocking pool, never on the
//! async workers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ledger_core::{
    Entry, EntryView, Error, Hash, Log, RunKey, RunRef, RunSearch, RunSummary, SearchPage, SignedCheckpoint,
};
use tokio::sync::{oneshot, watch};

use crate::auth::{Principal, Principals, Role};
use crate::error::{ApiError, ErrorCode};
use crate::metrics::Metrics;

/// Longest a receipt request may wait for its checkpoint.
pub const MAX_RECEIPT_WAIT: Duration = Duration::from_secs(60);
/// Most entries one read of `entries` returns; clients page.
pub const MAX_ENTRIES_PER_READ: u64 = 1000;

/// Runs in a page of a run listing when the request names no limit.
pub const DEFAULT_RUNS_PER_PAGE: usize = 50;
/// Most runs in a page of a run listing.
pub const MAX_RUNS_PER_PAGE: usize = 1000;

/// Most catalog keys one page of a run search reads: a search whose filters reject most of
/// what it scans answers a short (even empty) page with a cursor rather than reading on.
pub const MAX_EXAMINED_PER_PAGE: usize = 10_000;

/// What a run listing (`GET /v1/runs`, `ListRuns`) lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunListing {
    /// Runs whose `task.accepted` names this caller.
    Caller(String),
    /// Runs in this A2A context.
    Context(String),
    /// Runs made on behalf of this run.
    Parent(String),
    /// Runs accepted and not yet sealed.
    Open,
    /// Runs with an entry naming this BLAKE3 (input, artifact, workspace or payload hash), each
    /// at the index of its first such entry.
    Payload(Hash),
}

/// A page of a run listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunPage {
    /// Newest first (by the index of the run's `task.accepted`, or in a listing by payload of
    /// its first entry naming the payload).
    pub runs: Vec<RunRef>,
    /// Runs in the whole listing that the principal may read.
    pub total: u64,
    /// `before` for the next page, if there is one.
    pub next: Option<u64>,
}

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
    /// With witnesses: the cosigner publishing the log's checkpoints (`[witnesses]`).
    pub cosigner: Option<ledger_witness::cosigner::Cosigner>,
    /// Browser sessions (`crate::browser`): in memory, bounded, each made from a bearer token.
    pub sessions: ledger_dashboard::session::Sessions<Arc<Principal>>,
    /// In bus mode: the log followed, and how far (writes refused, reads may wait).
    pub bus: Option<crate::bus::Following>,
}

/// Runs `f` on the blocking pool.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::internal(format!("worker failed: {e}")))?
}

/// The request header (gRPC metadata key) naming the smallest bus stream position a read needs.
pub const MIN_POSITION: &str = "a2a-ledger-min-position";
/// Longest a read waits for this server to apply the bus stream as far as it asks.
const CATCH_UP_WAIT: Duration = Duration::from_secs(5);

impl Ledger {
    /// `read_only` in bus mode: entries and payloads come over the bus only.
    pub fn writable(&self) -> Result<(), ApiError> {
        match &self.bus {
            Some(b) => Err(b.read_only()),
            None => Ok(()),
        }
    }

    /// Waits until this server has applied the bus stream up to `min` (a read's
    /// [`MIN_POSITION`]), or answers `not_caught_up`; a single-node server has applied all it
    /// acknowledged, and a malformed value is `bad_query`.
    pub async fn caught_up(&self, min: Option<&str>) -> Result<(), ApiError> {
        let (Some(b), Some(min)) = (&self.bus, min) else { return Ok(()) };
        let min: u64 = min.trim().parse().map_err(|_| {
            ApiError::new(
                ErrorCode::BadQuery,
                format!("{MIN_POSITION}: {min:?} is not a stream position (a decimal number)"),
            )
        })?;
        b.caught_up(min, CATCH_UP_WAIT).await
    }
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
        self.writable()?;
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

    /// A page of `listing`: runs accepted below index `before` (if given), newest first, at most
    /// `limit` of them, each one `who` may read. An owner lists its own callers' runs only
    /// (another caller is 403); in a listing by context or parent, or of open runs, each run is
    /// shown only if `who` may read it (its `task.accepted` is read for that, and `total` then
    /// counts by reading every run of the listing). A listing by payload is read whole on every
    /// call (one scan of the hash's references: a run is listed at its first entry naming it,
    /// which only the whole scan tells), and each run in it is checked by the rule of
    /// [`Ledger::run_entries`], a run there being any run, not only one the catalog lists.
    pub async fn list_runs(
        &self,
        who: Arc<Principal>,
        listing: RunListing,
        before: Option<u64>,
        limit: usize,
    ) -> Result<RunPage, ApiError> {
        check_limit(limit)?;
        match &listing {
            RunListing::Caller(c) | RunListing::Context(c) | RunListing::Parent(c) if c.is_empty() => {
                return Err(ApiError::new(ErrorCode::BadQuery, "the caller, context or parent to list by is empty"));
            }
            RunListing::Parent(p) => ledger_core::entry::check_run_id(p)
                .map_err(|e| ApiError::new(ErrorCode::BadRunId, format!("parent: {e}")))?,
            RunListing::Caller(c) if who.role == Role::Owner && !who.callers.contains(c) => {
                return Err(ApiError::forbidden(format!(
                    "principal {:?} may not list the runs of caller {c:?}: not one of its callers",
                    who.name
                )));
            }
            _ => {}
        }
        let log = self.log.clone();
        blocking(move || {
            let key = match &listing {
                RunListing::Caller(c) => Some(RunKey::Caller(c)),
                RunListing::Context(c) => Some(RunKey::Context(c)),
                RunListing::Parent(p) => Some(RunKey::Parent(p)),
                RunListing::Open | RunListing::Payload(_) => None,
            };
            // An owner listing its own caller reads every run of it: no run needs a check.
            let unfiltered = who.reads_all() || (who.role == Role::Owner && matches!(listing, RunListing::Caller(_)));
            if let (true, Some(key)) = (unfiltered, key) {
                let mut runs = log.runs_by(key, before, limit + 1)?;
                let next = page_end(&mut runs, limit);
                return Ok(RunPage { runs, total: log.count_runs_by(key)?, next });
            }
            // Open runs or the runs naming a payload, newest first; every run of a keyed listing
            // otherwise, a chunk at a time.
            let mut whole = match &listing {
                RunListing::Open => Some(log.open_runs()?),
                RunListing::Payload(hash) => Some(log.payload_refs(hash, usize::MAX)?),
                _ => None,
            }
            .map(|mut all| {
                all.reverse();
                all.into_iter()
            });
            let mut chunk: Vec<RunRef> = Vec::new();
            let mut cursor = None;
            let mut next_run = || -> Result<Option<RunRef>, ApiError> {
                if let Some(whole) = &mut whole {
                    return Ok(whole.next());
                }
                if chunk.is_empty() {
                    chunk = log.runs_by(key.expect("a keyed listing"), cursor, MAX_RUNS_PER_PAGE)?;
                    chunk.reverse();
                }
                let r = chunk.pop();
                if let Some(r) = &r {
                    cursor = Some(r.index);
                }
                Ok(r)
            };
            let mut page = RunPage { runs: Vec::new(), total: 0, next: None };
            while let Some(r) = next_run()? {
                let readable = unfiltered
                    || match listing {
                        // `r.index` is an entry naming the payload: the run is read to check it.
                        RunListing::Payload(_) => {
                            let entries = log.run_entries(&r.run)?;
                            let decoded =
                                entries.iter().map(|(_, e)| Entry::decode(e)).collect::<Result<Vec<_>, _>>()?;
                            who.may_read_run(decoded.iter())
                        }
                        _ => who.may_read_accepted(&Entry::check(&log.entry(r.index)?)?),
                    };
                if !readable {
                    continue;
                }
                page.total += 1;
                if before.is_none_or(|b| r.index < b) && page.runs.len() <= limit {
                    page.runs.push(r);
                }
            }
            page.next = page_end(&mut page.runs, limit);
            Ok(page)
        })
        .await
    }

    /// A page of a run search (`Log::search_runs`; docs/FORMATS.md §7, §8): the runs `q` finds
    /// that `who` may read, `limit` at most, continuing from `cursor`. An owner naming a caller
    /// names one of its own (403 otherwise, as in a listing by caller); otherwise each run is
    /// shown only if `who` may read it (an owner: its caller is one of the owner's; ingest: one
    /// of its identities opened it), decided from the run's catalog summary.
    pub async fn search_runs(
        &self,
        who: Arc<Principal>,
        q: RunSearch,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<SearchPage, ApiError> {
        check_limit(limit)?;
        if let Some(c) = &q.caller
            && who.role == Role::Owner
            && !who.callers.contains(c)
        {
            return Err(ApiError::forbidden(format!(
                "principal {:?} may not list the runs of caller {c:?}: not one of its callers",
                who.name
            )));
        }
        let log = self.log.clone();
        blocking(move || {
            let visible = |r: &RunSummary| match who.role {
                Role::Auditor | Role::Admin => true,
                Role::Owner => who.callers.contains(&r.caller),
                Role::Ingest => who.identities.contains(&r.agent),
            };
            Ok(log.search_runs(&q, cursor.as_deref(), limit, MAX_EXAMINED_PER_PAGE, &visible)?)
        })
        .await
    }

    /// The catalog's summaries of `runs` (a page `who` was allowed to list), in order; a run
    /// without one (not opened by a `task.accepted`: a listing by payload names any run) is
    /// `None`.
    pub async fn summaries(&self, runs: Vec<String>) -> Result<Vec<Option<RunSummary>>, ApiError> {
        let log = self.log.clone();
        blocking(move || runs.iter().map(|r| log.run_summary(r).map_err(ApiError::from)).collect()).await
    }

    /// The children of `run` (runs whose `task.accepted` names it as parent) that `who` may
    /// read, oldest first: the newest [`MAX_RUNS_PER_PAGE`] of them (a longer list is paged with
    /// a listing by parent).
    pub async fn children(&self, who: Arc<Principal>, run: String) -> Result<Vec<RunRef>, ApiError> {
        let mut page = self.list_runs(who, RunListing::Parent(run), None, MAX_RUNS_PER_PAGE).await?;
        page.runs.reverse();
        Ok(page.runs)
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

/// 400 unless `limit` is 1 to [`MAX_RUNS_PER_PAGE`].
fn check_limit(limit: usize) -> Result<(), ApiError> {
    if (1..=MAX_RUNS_PER_PAGE).contains(&limit) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::BadQuery,
            format!("limit={limit}: give 1 to {MAX_RUNS_PER_PAGE} runs per page (default {DEFAULT_RUNS_PER_PAGE})"),
        ))
    }
}

/// Cuts `runs` (up to `limit + 1` of them, newest first) to `limit`; the `before` of the next
/// page if there was one more.
fn page_end(runs: &mut Vec<RunRef>, limit: usize) -> Option<u64> {
    if runs.len() <= limit {
        return None;
    }
    runs.truncate(limit);
    runs.last().map(|r| r.index)
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
