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
//! - Payload bytes do not travel on the bus yet: `put_payload` and `erase_payload` refuse.

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
}

struct Shared {
    data: PathBuf,
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

    /// The sequencer refused an acknowledged batch: kept with the reason where an operator finds
    /// it, counted, and said.
    fn refused(&self, result: &BatchResult, entries: &[bytes::Bytes]) {
        let Err(refusal) = &result.outcome else { return };
        self.refused.fetch_add(1, Ordering::SeqCst);
        let why = serde_json::json!({ "position": result.position, "code": refusal.code, "message": refusal.message });
        let kept = super::keep_rejected(&self.data, why, entries);
        eprintln!(
            "the ledger refused the batch at stream position {} ({}: {}); kept in {kept}",
            result.position, refusal.code, refusal.message
        );
    }
}

/// Why payload bytes cannot go through this sink.
fn no_payloads() -> Error {
    storage(
        "payload bytes over the bus are not supported yet: keep payloads with --embedded or --ledger, or run with [payloads] keep = false",
    )
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
                shared.refused(&result, &entries);
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

    fn put_payload(&self, _hash: [u8; 32], _bytes: bytes::Bytes) -> BoxFuture<'_, Result<()>> {
        Box::pin(async { Err(no_payloads()) })
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

    fn erase_payload(&self, _hash: [u8; 32], _reason: String, _approver: String) -> BoxFuture<'_, Result<u64>> {
        Box::pin(async { Err(no_payloads()) })
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
