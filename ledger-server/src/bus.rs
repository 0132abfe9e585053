//! `ledger-server --bus`: the server as one process of a bus deployment (issue 20, FORMATS §12).
//!
//! The log's ingest stream on NATS JetStream is the order of record. Every server in bus mode
//! follows it into its own store ([`ledger_bus::follow`]) and serves reads as a single-node
//! server does; none takes appends (they answer `read_only`: gateways publish on the bus). Two
//! kinds of process:
//! - **with the log key** (a `log.key` in the data directory): the signer or its standby. Both
//!   contend for the lease; the holder signs and publishes checkpoints, the other follows and
//!   takes over when the lease lapses. Both publish each message's result to its gateway (the
//!   same bytes under the same message id, so the stream keeps one): a standby that takes over
//!   leaves no message unanswered.
//! - **a read replica** (`--log-descriptor FILE`, no key): it follows and serves only the
//!   checkpoints the lease holder published, verified under the pinned descriptor's key.
//!
//! Rules kept here:
//! - a storage failure is never reported as a refusal: the outcome task stops the server (exit
//!   non-zero) and a restart resumes from the stored position;
//! - a refusal is published only once its position is durable (`Log::append_at` answers then), so
//!   a result is never contradicted by a restart;
//! - a read that names the smallest position it needs (`a2a-ledger-min-position`) waits until
//!   this process has applied that far, or is answered `not_caught_up`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use async_nats::HeaderMap;
use async_nats::jetstream;
use ledger_bus::results::{BatchResult, Refusal, result_msg_id};
use ledger_bus::signer::{self, Signed};
use ledger_bus::{Lease, LeaseConfig, LogName, Outcome, Refused};
use ledger_core::{Log, LogDescriptor};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::metrics::Metrics;

/// How long a start waits for the bus to answer.
const CONNECT_WAIT: Duration = Duration::from_secs(30);
/// Result publications awaiting their acknowledgement at once.
const RESULTS_IN_FLIGHT: usize = 256;

/// `--bus` and its companions.
#[derive(Clone, Debug)]
pub struct BusSettings {
    /// The NATS servers, comma-separated URLs.
    pub servers: String,
    /// The log's name on the bus.
    pub log: LogName,
    /// This process's name, in the lease value and the NATS connection name.
    pub holder: String,
    /// How it authenticates to the NATS servers (`--bus-user`).
    pub auth: ledger_bus::Auth,
    /// The log's pinned descriptor (`--log-descriptor`): a read replica's only trust in the log;
    /// for a process with the key, a check that the key is this log's (and the tree hash of a
    /// store it creates).
    pub descriptor: Option<LogDescriptor>,
}

/// What the front ends know of the bus: the log's name, and how far this process applied it.
#[derive(Clone, Debug)]
pub struct Following {
    /// The log's name on the bus.
    pub log: LogName,
    /// The stream position applied and durable.
    pub position: watch::Receiver<u64>,
}

impl Following {
    /// The refusal of an append: entries come over the bus only.
    pub fn read_only(&self) -> ApiError {
        ApiError::new(
            ledger_wire::ErrorCode::ReadOnly,
            format!(
                "this server follows log {0} on the bus and takes no writes: gateways publish entries on ledger.{0}.in.<gateway> (runtime-gateway --bus)",
                self.log
            ),
        )
    }

    /// Waits until this process has applied the stream up to `min`, for up to `wait`.
    pub async fn caught_up(&self, min: u64, wait: Duration) -> Result<(), ApiError> {
        let mut rx = self.position.clone();
        match tokio::time::timeout(wait, rx.wait_for(|p| *p >= min)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(ApiError::new(
                ledger_wire::ErrorCode::NotCaughtUp,
                format!(
                    "this server has applied log {} up to stream position {}, not yet {min}: ask another, or again",
                    self.log,
                    *self.position.borrow()
                ),
            )),
        }
    }
}

/// A log opened for the bus, with what its signer needs when it holds the key.
#[derive(Debug)]
pub struct Opened {
    /// The log.
    pub log: Log,
    /// The signer's half of [`signer::signing`]; `None` for a read replica.
    pub signed: Option<Signed>,
}

/// The running bus tasks of one server.
#[derive(Debug)]
pub struct Running {
    /// For the front ends.
    pub following: Following,
    tasks: JoinSet<Result<()>>,
    stop: CancellationToken,
}

impl Running {
    /// Ends when the first task fails (its error) or all have stopped.
    pub async fn failed(&mut self) -> Result<()> {
        while let Some(r) = self.tasks.join_next().await {
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(e) if e.is_cancelled() => {}
                Err(e) => return Err(anyhow::anyhow!("a bus task failed: {e}")),
            }
        }
        std::future::pending().await
    }

    /// Stops every task (the lease is released) and waits for them.
    pub async fn stop(mut self) {
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Connects to the bus and starts following (and, with the key, contending for the lease,
/// signing and answering gateways).
pub async fn start(
    bus: &BusSettings,
    signed: Option<Signed>,
    log: Arc<Log>,
    payloads: ledger_core::PayloadStore,
    metrics: Metrics,
) -> Result<Running> {
    let js = ledger_bus::connect(&bus.servers, &bus.holder, &bus.auth, CONNECT_WAIT).await?;
    let name = bus.log.clone();
    // Everything the log needs must exist: `bus init` creates it, a server only checks.
    for stream in [name.ingest_stream(), name.out_stream()] {
        js.get_stream(&stream).await.with_context(|| {
            format!("the stream {stream} (create it with `ledger-server bus init --bus {}`)", bus.servers)
        })?;
    }
    let stop = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let (position_tx, position) = watch::channel(log.position().unwrap_or(0));
    let (outcomes_tx, outcomes) = mpsc::unbounded_channel();

    let (j, n, l, s) = (js.clone(), name.clone(), log.clone(), stop.clone());
    tasks.spawn(async move { Ok(ledger_bus::follow(&j, &n, l, payloads, outcomes_tx, s).await?) });
    let answering = signed.is_some().then(|| js.clone());
    let (n, l, s, m) = (name.clone(), log.clone(), stop.clone(), metrics);
    tasks.spawn(async move { outcomes_task(n, outcomes, answering, l, m, position_tx, s).await });

    if let Some(signed) = signed {
        let ttl = ledger_bus::lease_ttl(&js).await?;
        let lease = Lease::open(&js, LeaseConfig { log: name.clone(), holder: bus.holder.clone(), ttl }).await?;
        let (terms, driver) = lease.drive(stop.clone());
        tasks.spawn(async move {
            driver.await.context("the lease task")?;
            Ok(())
        });
        let (j, n, l, s) = (js.clone(), name.clone(), log.clone(), stop.clone());
        tasks.spawn(async move { Ok(signer::sign(&j, &n, l, signed, terms, s).await?) });
    }
    let (j, n, l, s) = (js.clone(), name.clone(), log.clone(), stop.clone());
    tasks.spawn(async move { Ok(signer::serve(&j, &n, l, s).await?) });
    Ok(Running { following: Following { log: name, position }, tasks, stop })
}

/// Takes each message's outcome in stream order: counts it, moves the applied position on, and
/// (with `answering`) publishes its result to the gateway it came from.
async fn outcomes_task(
    name: LogName,
    mut outcomes: mpsc::UnboundedReceiver<Outcome>,
    answering: Option<jetstream::Context>,
    log: Arc<Log>,
    metrics: Metrics,
    position: watch::Sender<u64>,
    stop: CancellationToken,
) -> Result<()> {
    let mut acks = futures_util::stream::FuturesOrdered::new();
    loop {
        let o = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            o = outcomes.recv() => match o { Some(o) => o, None => return Ok(()) },
            Some(r) = futures_util::StreamExt::next(&mut acks), if !acks.is_empty() => {
                report_ack(r);
                continue;
            }
        };
        let outcome = match o.result {
            Ok(indices) => Ok(indices),
            Err(refused) if !refused.is_decision() => {
                // Durability: this process could not store the message; what it stored is
                // intact, and a restart resumes after it. Nothing is reported for it.
                bail!("applying stream position {} of log {}: {refused}", o.position, log.descriptor().origin);
            }
            Err(refused) => Err(refusal(&refused)),
        };
        metrics.bus_message(outcome.as_ref().err().map(|r| r.code.as_str()));
        position.send_replace(o.position);
        let Some(js) = &answering else { continue };
        let result = BatchResult { position: o.position, outcome };
        let mut h = HeaderMap::new();
        h.insert("Nats-Msg-Id", result_msg_id(o.position).as_str());
        let sent = js.publish_with_headers(name.result_subject(&o.gateway), h, result.to_json().into()).await;
        match sent {
            Ok(ack) => acks.push_back(ack.into_future()),
            Err(e) => eprintln!("a2a-ledger server: publishing the result of stream position {}: {e}", o.position),
        }
        while acks.len() >= RESULTS_IN_FLIGHT {
            if let Some(r) = futures_util::StreamExt::next(&mut acks).await {
                report_ack(r);
            }
        }
    }
}

/// A refusal as its gateway is told it: the code and message a single-node server would answer
/// the same batch with.
fn refusal(refused: &Refused) -> Refusal {
    let e = match refused {
        Refused::NotABatch(e) => ApiError::new(
            match e {
                ledger_core::bus::BatchError::Empty => ledger_wire::ErrorCode::EmptyBatch,
                ledger_core::bus::BatchError::TooLarge(_) => ledger_wire::ErrorCode::BodyTooLarge,
                ledger_core::bus::BatchError::Malformed { .. } => ledger_wire::ErrorCode::MalformedBody,
            },
            e.to_string(),
        ),
        Refused::BadPayloadHeader(_) => ApiError::new(ledger_wire::ErrorCode::MalformedBody, refused.to_string()),
        Refused::Log(e) => ApiError::from(&**e),
    };
    Refusal { code: e.code.as_str().to_owned(), message: e.message }
}

fn report_ack(r: Result<jetstream::publish::PublishAck, jetstream::context::PublishError>) {
    if let Err(e) = r {
        eprintln!("a2a-ledger server: a result was not acknowledged by the bus: {e}");
    }
}
