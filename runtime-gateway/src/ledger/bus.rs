//! [`BusLedger`]: a ledger whose order of record is a NATS JetStream stream (issue 20): batches
//! go to the gateway's ingest subject through a [`ledger_bus::Publisher`], and reads go to the
//! log's read replicas over gRPC ([`super::reads`]), tried in turn.
//!
//! Durability rules kept here:
//! - A batch is acknowledged to the recorder (`Durable::Streamed { position }`) once the stream
//!   holds it (the publisher's `PubAck`: on a quorum of the stream's replicas). The sequencer
//!   decides afterwards, from the stream alone, whether it is appended.
//! - Acknowledgements are given in `append` order (a later batch's waits for every earlier
//!   batch's), so "durable in append order" holds as the trait says; the publisher itself keeps
//!   each run's batches in order in the stream.
//! - A batch the sequencer refuses after it was acknowledged is written, with the reason, to
//!   `rejected.jsonl` in the gateway's data directory, counted, and reported on stderr; it is
//!   never silently dropped.
//! - Batches wait in memory until the stream takes them (there is no spool): when
//!   [`BusConfig::max_unacknowledged`] of them wait, a batch that opens a run is refused with a
//!   clear error, so the gateway refuses new tasks rather than run them unrecorded; runs already
//!   accepted may go on up to twice that, so they can still be sealed.
//! - Reads carry the highest acknowledged position (`a2a-ledger-min-position`), so a replica
//!   answers only once it has applied everything this gateway had acknowledged.
//! - A payload goes on the same subject as one message of its bytes (`ledger_bus::Publisher::
//!   publish_payload`); `put_payload` resolves once the stream holds it, so an entry naming it,
//!   published afterwards, is later in the stream, and every follower stores the bytes before it
//!   appends the entry. Payloads larger than `[payloads] max_bytes` or than one message of the
//!   servers (`max_payload`) are refused before anything is sent.
//! - An erasure is the `payload.erased` entry published as a batch; it resolves with the index
//!   the sequencer gave it (every follower deletes the bytes once it is durable there), or the
//!   earlier erasure's index.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ledger_bus::results::BatchResult;
use ledger_bus::{LogName, Publisher, PublisherConfig};
use ledger_core::{Error, LogDescriptor, Result, RunSearch, SearchPage, TreeHash};

pub use super::REJECTED;
use super::in_order::InOrder;
use super::reads::{self, Reads, storage};
use super::{
    AppendDone, Batch, BoxFuture, Durable, LedgerSink, Payload, ReceiptError, RunEntries, RunPage, RunRef, RunsBy,
};

/// Longest the start waits for the bus and a replica.
const ASK_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest an erasure waits for the sequencer's answer.
const ERASE_WAIT: Duration = Duration::from_secs(30);

/// Longest `close` waits for the batches in flight.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// How the gateway reaches the bus and the log's read replicas.
#[derive(Clone, Debug)]
pub struct BusConfig {
    /// The NATS servers of the cluster (`nats://host:port`).
    pub servers: Vec<String>,
    /// The log's name on the bus.
    pub log: String,
    /// The gateway's name (its identity's `actor`): its subject token.
    pub gateway: String,
    /// gRPC URLs of the log's read replicas, in order of preference.
    pub replicas: Vec<String>,
    /// Bearer token for the replicas.
    pub token: String,
    /// The gateway's data directory (`rejected.jsonl`).
    pub data: PathBuf,
    /// The NATS user to connect as, if the servers require one (`--bus-user`; the password
    /// from `A2A_LEDGER_BUS_PASSWORD`).
    pub user: Option<String>,
    /// Most batches waiting for the stream before a batch opening a run is refused.
    pub max_unacknowledged: usize,
    /// The largest payload kept (`[payloads] max_bytes`); one message of the servers is the
    /// other bound.
    pub max_payload_bytes: u64,
}

struct Shared {
    data: PathBuf,
    gateway: String,
    max_payload_bytes: u64,
    max_unacknowledged: usize,
    order: InOrder,
    refused: AtomicU64,
}

/// The ledger on the bus.
pub struct BusLedger {
    publisher: Arc<Publisher>,
    reads: Reads,
    descriptor: LogDescriptor,
    shared: Arc<Shared>,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for BusLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BusLedger").field("origin", &self.descriptor.origin).finish_non_exhaustive()
    }
}

impl BusLedger {
    /// Connects to the bus (the gateway's name must be one subject token), starts the publisher
    /// and asks the replicas for the log descriptor. Needs a tokio runtime.
    pub async fn connect(cfg: BusConfig) -> anyhow::Result<BusLedger> {
        use anyhow::Context as _;
        ledger_bus::publish::check_gateway_name(&cfg.gateway).context(
            "the gateway's identity names its subject on the bus; choose an identity without '.', '*', '>', '/' or spaces (gateway.toml: identity)",
        )?;
        let log = LogName::parse(&cfg.log).context("--bus-log")?;
        anyhow::ensure!(!cfg.servers.is_empty(), "--bus: give the NATS servers, nats://host:port[,nats://…]");
        anyhow::ensure!(!cfg.replicas.is_empty(), "--bus needs at least one --bus-replica URL to read from");
        std::fs::create_dir_all(&cfg.data).with_context(|| format!("creating {}", cfg.data.display()))?;
        // Replies come under the gateway's own inbox prefix: with per-gateway permissions
        // (`ledger-server bus permissions`) it may subscribe nowhere else.
        let auth = ledger_bus::Auth::from_env(cfg.user.clone(), Some(format!("_INBOX_{}", cfg.gateway)))?;
        let client = ledger_bus::client(&cfg.servers.join(","), &cfg.gateway, &auth, ASK_TIMEOUT).await?;
        let publisher = tokio::time::timeout(
            ASK_TIMEOUT,
            Publisher::start(client, PublisherConfig::new(log.clone(), &cfg.gateway)),
        )
        .await
        .map_err(|_| anyhow::anyhow!("the bus did not answer in 10 s"))?
        .with_context(|| format!("opening log {log} on the bus (provisioned with `ledger-server bus init`?)"))?;
        let publisher = Arc::new(publisher);
        let acknowledged = publisher.clone();
        let min_position: reads::MinPosition = Arc::new(move || acknowledged.acknowledged());
        let clients = cfg
            .replicas
            .iter()
            .map(|url| reads::client(url, &cfg.token, None, Some(min_position.clone())))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let reads = Reads::new(clients);
        let info = reads.log(ASK_TIMEOUT).await.map_err(|s| {
            anyhow::anyhow!(
                "asking the replicas {} for the log: {} ({:?})",
                cfg.replicas.join(", "),
                s.message(),
                s.code()
            )
        })?;
        let descriptor: LogDescriptor =
            serde_json::from_str(&info.descriptor_json).context("the replica's log descriptor")?;
        let shared = Arc::new(Shared {
            data: cfg.data,
            gateway: cfg.gateway.clone(),
            max_payload_bytes: cfg.max_payload_bytes,
            max_unacknowledged: cfg.max_unacknowledged,
            order: InOrder::default(),
            refused: AtomicU64::new(0),
        });
        Ok(BusLedger { publisher, reads, descriptor, shared, runtime: tokio::runtime::Handle::current() })
    }

    /// The highest stream position acknowledged to this gateway.
    pub fn acknowledged(&self) -> u64 {
        self.publisher.acknowledged()
    }
}

impl Shared {
    /// Batch `n` is done (see [`InOrder::finish`]).
    fn finish(&self, n: u64, done: AppendDone, outcome: Result<Durable>) {
        self.order.finish(n, done, outcome);
    }

    /// The sequencer refused an acknowledged batch (or payload, `payload` its hash): kept with
    /// the reason where an operator finds it, counted, and said.
    fn refused(&self, result: &BatchResult, entries: &[bytes::Bytes], payload: Option<&[u8; 32]>) {
        let Err(refusal) = &result.outcome else { return };
        self.refused.fetch_add(1, Ordering::SeqCst);
        let mut why =
            serde_json::json!({ "position": result.position, "code": refusal.code, "message": refusal.message });
        if let Some(h) = payload {
            why["payload"] = hex::encode(h).into();
        }
        let kept = super::keep_rejected(&self.data, why, entries);
        eprintln!(
            "the ledger refused the batch at stream position {} ({}: {}); kept in {kept}",
            result.position, refusal.code, refusal.message
        );
    }
}

impl BusLedger {
    /// The index of the `payload.erased` entry of `hash`, if a replica shows one.
    async fn erasure_index(&self, hash: &[u8; 32]) -> Result<Option<u64>> {
        let run = ledger_core::RunId::erasure(hash);
        Ok(self.reads.run_entries(run.as_str()).await?.first().map(|(index, _)| *index))
    }
}

impl LedgerSink for BusLedger {
    fn append(&self, batch: Batch, done: AppendDone) {
        let n = self.shared.order.issue();
        let waiting = self.publisher.unacknowledged();
        let limit = if batch.opens_run {
            self.shared.max_unacknowledged
        } else {
            self.shared.max_unacknowledged.saturating_mul(2)
        };
        if waiting >= limit {
            let e =
                storage(format!("{waiting} batches wait for the bus to take them (at most {limit}); try again later"));
            return self.shared.finish(n, done, Err(e));
        }
        let entries = batch.entries;
        let pending = match self.publisher.publish(entries.clone()) {
            Ok(p) => p,
            Err(e) => return self.shared.finish(n, done, Err(storage(format!("the bus: {e}")))),
        };
        let (shared, publisher) = (self.shared.clone(), self.publisher.clone());
        self.runtime.spawn(async move {
            let acked = match pending.wait().await {
                Ok(a) => a,
                Err(e) => return shared.finish(n, done, Err(storage(format!("the bus: {e}")))),
            };
            let outcome = publisher.result(acked.position);
            shared.finish(n, done, Ok(Durable::Streamed { position: acked.position }));
            // What the sequencer made of it: a refusal is kept and reported (an acknowledged
            // batch that is not appended must never vanish silently).
            if let Ok(result) = outcome.await {
                shared.refused(&result, &entries, None);
            }
        });
    }

    fn tree_hash(&self) -> TreeHash {
        self.descriptor.hash
    }

    fn descriptor(&self) -> LogDescriptor {
        self.descriptor.clone()
    }

    fn run_entries(&self, run: &str) -> BoxFuture<'_, Result<RunEntries>> {
        let run = run.to_string();
        Box::pin(async move { self.reads.run_entries(&run).await })
    }

    fn receipt(&self, run: &str, wait: Duration) -> BoxFuture<'_, std::result::Result<String, ReceiptError>> {
        let run = run.to_string();
        let waiting = self.backlog();
        Box::pin(async move { self.reads.receipt(&run, wait, waiting).await })
    }

    fn put_payload(&self, hash: [u8; 32], bytes: bytes::Bytes) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let len = bytes.len() as u64;
            if len > self.shared.max_payload_bytes {
                let max = self.shared.max_payload_bytes;
                return Err(Error::PayloadTooLarge { hash: hex::encode(hash), len, max });
            }
            let pending = self.publisher.publish_payload(hash, bytes).map_err(|e| storage(format!("the bus: {e}")))?;
            let acked = pending.wait().await.map_err(|e| storage(format!("the bus: {e}")))?;
            // Durable in the stream: an entry naming it comes after. What the sequencer made of
            // it (only bytes under another hash are refused) is reported like a batch's.
            let (outcome, shared) = (self.publisher.result(acked.position), self.shared.clone());
            self.runtime.spawn(async move {
                if let Ok(result) = outcome.await {
                    shared.refused(&result, &[], Some(&hash));
                }
            });
            Ok(())
        })
    }

    fn payload(&self, hash: [u8; 32]) -> BoxFuture<'_, Result<Payload>> {
        Box::pin(async move {
            match self.reads.payload(hash).await {
                Ok(p) => Ok(p),
                Err(s) if ledger_wire::ErrorCode::of(&s) == Some(ledger_wire::ErrorCode::PayloadMissing) => {
                    Ok(Payload::Missing)
                }
                Err(s) => Err(reads::status_error(&s)),
            }
        })
    }

    fn erase_payload(&self, hash: [u8; 32], reason: String, approver: String) -> BoxFuture<'_, Result<u64>> {
        Box::pin(async move {
            if let Some(index) = self.erasure_index(&hash).await? {
                return Ok(index);
            }
            let entry = ledger_core::Entry {
                ts: crate::base::now_ns(),
                run: ledger_core::RunId::erasure(&hash),
                seq: 0,
                actor: self.shared.gateway.clone(),
                event: ledger_core::Event::PayloadErased { hash, reason, approver },
                grant: None,
                payload: None,
            };
            let pending = self
                .publisher
                .publish(vec![bytes::Bytes::from(entry.encode())])
                .map_err(|e| storage(format!("the bus: {e}")))?;
            let acked = pending.wait().await.map_err(|e| storage(format!("the bus: {e}")))?;
            // The index is the sequencer's: wait for its answer (every follower deletes the bytes
            // once the entry is durable there).
            let result = tokio::time::timeout(ERASE_WAIT, self.publisher.result(acked.position))
                .await
                .map_err(|_| {
                    storage(format!(
                        "the erasure is in the stream (position {}) but no signer answered within {ERASE_WAIT:?}; it will be applied, ask again later",
                        acked.position
                    ))
                })?
                .map_err(|e| storage(format!("the bus: {e}")))?;
            match result.outcome {
                Ok(indices) if !indices.is_empty() => Ok(indices[0]),
                // Another erasure of the same hash won (its entry differs): its index.
                outcome => match self.erasure_index(&hash).await? {
                    Some(index) => Ok(index),
                    None => Err(storage(format!(
                        "the ledger refused the erasure at stream position {}: {}",
                        acked.position,
                        outcome.err().map_or_else(|| "no index".to_string(), |r| format!("{}: {}", r.code, r.message))
                    ))),
                },
            }
        })
    }

    fn runs(&self, by: RunsBy, before: Option<u64>, limit: usize) -> BoxFuture<'_, Result<RunPage>> {
        Box::pin(self.reads.runs(by, before, limit))
    }

    fn search_runs(&self, q: RunSearch, cursor: Option<String>, limit: usize) -> BoxFuture<'_, Result<SearchPage>> {
        Box::pin(self.reads.search_runs(q, cursor, limit))
    }

    fn open_runs(&self) -> BoxFuture<'_, Result<Vec<RunRef>>> {
        Box::pin(self.reads.open_runs())
    }

    fn payload_runs(&self, hash: [u8; 32], limit: usize) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(self.reads.payload_runs(hash, limit))
    }

    fn backlog(&self) -> u64 {
        self.publisher.unacknowledged() as u64
    }

    fn refused_batches(&self) -> u64 {
        self.shared.refused.load(Ordering::SeqCst)
    }

    fn close(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            // What is still unacknowledged after the wait is answered as not appended: without a
            // spool, nothing of it is kept here.
            let left = self.publisher.close(CLOSE_WAIT).await;
            if left > 0 {
                eprintln!("bus: {left} batches were not acknowledged within {CLOSE_WAIT:?}; they are not recorded");
            }
            Ok(())
        })
    }
}
