//! A gateway's side of the bus: its batches published to `ledger.<L>.in.<gateway>`, pipelined,
//! retried until the stream has them, and the sequencer's [`BatchResult`] for each handed to
//! whoever waits for it (`docs/FORMATS.md` §12).
//!
//! Rules kept here:
//! - **Message ids.** Every batch gets `Nats-Msg-Id: <gateway>/<epoch>/<n>`: `<epoch>` is a random
//!   u64 drawn when the publisher starts, `<n>` counts the publisher's batches from 0, both
//!   decimal. An id is never given to other bytes (a new process draws a new epoch; two epochs
//!   collide with probability 2⁻⁶⁴), and a retry of a batch carries its own id again, so the
//!   stream drops the second copy inside its duplicate window.
//! - **Acknowledged** means the `PubAck` arrived: the stream holds the batch (on a quorum of its
//!   replicas) at the ack's `sequence`, the batch's *position*. An ack with `duplicate: true`
//!   counts too: the first copy is in the stream, at the position the ack names.
//! - **Order within a run** (see [`RunGate`]): batches are pipelined, up to
//!   [`PublisherConfig::in_flight`] unacknowledged, but a batch is not sent while an earlier
//!   batch touching one of the same runs is unacknowledged. A failed or timed-out publish is
//!   retried with the same id, with backoff, until acknowledged or the publisher closes; no later
//!   batch of its runs goes ahead of it meanwhile. So within a run the stream order is the
//!   publish order, which is what the sequencer's run rules (SPEC §2) need; across runs the
//!   order does not matter.
//! - **Results.** The publisher follows its own result subject from the out stream's end as it
//!   was at start, so no result of a batch it publishes is missed; results nobody waits for yet
//!   are kept (the newest [`EARLY_RESULTS`]) until someone asks for their position.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream;
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::names::LogName;
use crate::ordered::{Ordered, Start};
use crate::results::{BatchResult, result_msg_id};

/// The value of the `A2A-Ledger-Format` header this publisher writes.
pub const FORMAT: &str = "1";

/// Results kept for positions nobody waits for yet (the oldest dropped first).
pub const EARLY_RESULTS: usize = 65_536;

/// Longest wait between two attempts at one batch.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// How a gateway publishes.
#[derive(Clone, Debug)]
pub struct PublisherConfig {
    /// The log.
    pub log: LogName,
    /// The gateway's name: its identity's `actor`, one NATS subject token.
    pub gateway: String,
    /// Most batches sent and not yet acknowledged.
    pub in_flight: usize,
    /// How long one attempt waits for its acknowledgement before it is retried.
    pub ack_timeout: Duration,
}

impl PublisherConfig {
    /// `gateway`'s publisher for `log`: 64 in flight, 5 s per attempt.
    pub fn new(log: LogName, gateway: &str) -> PublisherConfig {
        PublisherConfig { log, gateway: gateway.to_owned(), in_flight: 64, ack_timeout: Duration::from_secs(5) }
    }
}

/// `name`, or why it cannot name a gateway on the bus: it must be one NATS subject token (no
/// `.`, `*`, `>`, whitespace or control characters, not empty) and must not hold `/`, which
/// separates a message id's parts.
pub fn check_gateway_name(name: &str) -> Result<(), Error> {
    let bad = name.is_empty()
        || name.chars().any(|c| matches!(c, '.' | '*' | '>' | '/') || c.is_whitespace() || c.is_control());
    if bad { Err(Error::GatewayName(name.to_owned())) } else { Ok(()) }
}

/// A batch the stream holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acked {
    /// Its stream sequence (the first copy's, for a duplicate).
    pub position: u64,
    /// The stream already had it (a retry of a batch whose acknowledgement was lost).
    pub duplicate: bool,
    /// Its `Nats-Msg-Id`.
    pub msg_id: String,
}

/// A batch on its way: resolves once it is acknowledged, or with why it never will be.
#[derive(Debug)]
pub struct Pending(oneshot::Receiver<Result<Acked, Error>>);

impl Pending {
    /// Waits for the acknowledgement.
    pub async fn wait(self) -> Result<Acked, Error> {
        self.0.await.unwrap_or(Err(Error::Closed))
    }
}

/// Which unacknowledged batches touch which runs: the ordering rule in one structure.
///
/// A batch may be published only when, for every run it touches, it is the oldest
/// unacknowledged batch touching that run. Otherwise a retry of an earlier batch of the run
/// could land in the stream after it, and the sequencer would refuse the later batch with a seq
/// gap (and then accept the earlier one). Batches of different runs may be reordered freely.
#[derive(Debug, Default)]
pub struct RunGate {
    /// Per run, the unacknowledged batches touching it, oldest first.
    runs: HashMap<String, VecDeque<u64>>,
}

impl RunGate {
    /// Batch `n` (numbered in submission order) touches `runs`.
    pub fn submit(&mut self, n: u64, runs: &[String]) {
        for r in runs {
            self.runs.entry(r.clone()).or_default().push_back(n);
        }
    }

    /// Whether batch `n`, touching `runs`, may be sent now.
    pub fn ready(&self, n: u64, runs: &[String]) -> bool {
        runs.iter().all(|r| self.runs.get(r).and_then(|q| q.front()) == Some(&n))
    }

    /// Batch `n`, touching `runs`, is acknowledged: the next batch of each of its runs may go.
    pub fn acknowledged(&mut self, n: u64, runs: &[String]) {
        for r in runs {
            if let Some(q) = self.runs.get_mut(r) {
                debug_assert_eq!(q.front(), Some(&n), "a batch acknowledged before an earlier one of its run was sent");
                q.retain(|&m| m != n);
                if q.is_empty() {
                    self.runs.remove(r);
                }
            }
        }
    }

    /// Runs with an unacknowledged batch.
    pub fn busy_runs(&self) -> usize {
        self.runs.len()
    }
}

/// What one message carries.
enum Body {
    /// A batch of entries.
    Batch(Vec<Bytes>),
    /// A payload's bytes, under their BLAKE3.
    Payload([u8; 32], Bytes),
}

struct Submitted {
    body: Body,
    runs: Vec<String>,
    done: oneshot::Sender<Result<Acked, Error>>,
}

#[derive(Default)]
struct Results {
    waiters: HashMap<u64, Vec<oneshot::Sender<BatchResult>>>,
    early: BTreeMap<u64, BatchResult>,
}

struct Shared {
    closed: AtomicBool,
    /// The highest position acknowledged so far (0 before the first).
    acknowledged: AtomicU64,
    /// Result messages that were not results (refused, counted, never handed on).
    malformed: AtomicU64,
    results: Mutex<Results>,
    /// Batches submitted and not yet acknowledged (or failed), for `close`.
    unacknowledged: watch::Sender<usize>,
}

impl Shared {
    fn results(&self) -> std::sync::MutexGuard<'_, Results> {
        self.results.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A gateway's publisher on one log.
pub struct Publisher {
    shared: Arc<Shared>,
    submit: mpsc::UnboundedSender<Submitted>,
    stop: CancellationToken,
    epoch: u64,
    cfg: PublisherConfig,
    /// The connection (whose server says how large a message may be).
    client: async_nats::Client,
}

/// What a NATS server takes in one message when it has not said (its default `max_payload`).
const DEFAULT_MAX_MESSAGE: usize = 1 << 20;

/// Bytes of a message's size kept for its headers (message id, format, payload hash).
const HEADERS_ROOM: usize = 1024;

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("log", &self.cfg.log.as_str())
            .field("gateway", &self.cfg.gateway)
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

impl Publisher {
    /// Starts publishing as `cfg.gateway` through `client`: draws the epoch, starts following
    /// the gateway's result subject from the out stream's current end (so this fails when the
    /// log's streams cannot be reached), and starts the publishing task. Needs a tokio runtime.
    pub async fn start(client: async_nats::Client, cfg: PublisherConfig) -> Result<Publisher, Error> {
        check_gateway_name(&cfg.gateway)?;
        let mut seed = [0u8; 8];
        getrandom::fill(&mut seed).map_err(|e| Error::nats("drawing the publisher's epoch", e.to_string()))?;
        let epoch = u64::from_le_bytes(seed);
        let in_flight = cfg.in_flight.max(1);
        let js = jetstream::ContextBuilder::new()
            .timeout(cfg.ack_timeout)
            .max_ack_inflight(in_flight)
            .backpressure_on_inflight(true)
            .build(client.clone());
        let (unacknowledged, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            closed: AtomicBool::new(false),
            acknowledged: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            results: Mutex::new(Results::default()),
            unacknowledged,
        });
        let stop = CancellationToken::new();
        let results = open_results(&js, &cfg).await?;
        tokio::spawn(follow_results(js.clone(), cfg.clone(), results, shared.clone(), stop.clone()));
        let (submit, rx) = mpsc::unbounded_channel();
        tokio::spawn(drive(js, cfg.clone(), epoch, rx, shared.clone(), stop.clone()));
        Ok(Publisher { shared, submit, stop, epoch, cfg, client })
    }

    /// This process's epoch (the middle part of its message ids).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The message id of this publisher's batch `n` (its `n`th call of [`Publisher::publish`]
    /// that was taken, from 0).
    pub fn msg_id(&self, n: u64) -> String {
        msg_id(&self.cfg.gateway, self.epoch, n)
    }

    /// Publishes `entries` as one batch (after every earlier batch touching one of its runs is
    /// acknowledged). Entries that do not decode, an empty batch or one over the bus's limits is
    /// refused here, before anything is sent.
    pub fn publish(&self, entries: Vec<Bytes>) -> Result<Pending, Error> {
        if self.shared.closed.load(Ordering::SeqCst) {
            return Err(Error::Closed);
        }
        if entries.is_empty() {
            return Err(Error::Batch("an empty batch".into()));
        }
        let bytes: usize = entries.iter().map(Bytes::len).sum();
        if entries.len() > ledger_core::bus::MAX_BATCH_ENTRIES || bytes > ledger_core::bus::MAX_BATCH_BYTES {
            return Err(Error::Batch(format!(
                "{} entries of {bytes} bytes: a batch holds at most {} entries and {} bytes",
                entries.len(),
                ledger_core::bus::MAX_BATCH_ENTRIES,
                ledger_core::bus::MAX_BATCH_BYTES
            )));
        }
        let mut runs: Vec<String> = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let view = ledger_core::Entry::check(e).map_err(|e| Error::Batch(format!("entry {i}: {e}")))?;
            if !runs.iter().any(|r| r == view.run()) {
                runs.push(view.run().to_owned());
            }
        }
        self.submit(Body::Batch(entries), runs)
    }

    /// Publishes a payload's `bytes` under their BLAKE3 `hash` as one message, in turn with the
    /// batches (no run gates it). Once it is acknowledged, a batch published afterwards is later
    /// in the stream, so every follower stores the bytes before it appends an entry naming
    /// them. Refused here when the message would exceed what the servers take.
    pub fn publish_payload(&self, hash: [u8; 32], bytes: Bytes) -> Result<Pending, Error> {
        if self.shared.closed.load(Ordering::SeqCst) {
            return Err(Error::Closed);
        }
        // The server connected to now says (after a reconnection, perhaps another's).
        let max_message = match self.client.server_info().max_payload {
            0 => DEFAULT_MAX_MESSAGE,
            n => n,
        };
        let most = max_message.saturating_sub(HEADERS_ROOM);
        if bytes.len() > most {
            return Err(Error::Batch(format!(
                "a payload of {} bytes: the bus takes at most {most} bytes of payload in one message (the servers' max_payload, {max_message} bytes, less {HEADERS_ROOM} for headers)",
                bytes.len(),
            )));
        }
        self.submit(Body::Payload(hash, bytes), Vec::new())
    }

    fn submit(&self, body: Body, runs: Vec<String>) -> Result<Pending, Error> {
        let (done, rx) = oneshot::channel();
        self.shared.unacknowledged.send_modify(|n| *n += 1);
        if self.submit.send(Submitted { body, runs, done }).is_err() {
            self.shared.unacknowledged.send_modify(|n| *n -= 1);
            return Err(Error::Closed);
        }
        Ok(Pending(rx))
    }

    /// The highest position acknowledged so far (0 before the first acknowledgement): what a
    /// replica must have applied before it answers this gateway's reads.
    pub fn acknowledged(&self) -> u64 {
        self.shared.acknowledged.load(Ordering::SeqCst)
    }

    /// Batches published and not yet acknowledged.
    pub fn unacknowledged(&self) -> usize {
        *self.shared.unacknowledged.borrow()
    }

    /// Result messages refused as malformed so far.
    pub fn malformed_results(&self) -> u64 {
        self.shared.malformed.load(Ordering::SeqCst)
    }

    /// The sequencer's result for the batch at `position`, once it is published (at once when it
    /// already was). Resolves with [`Error::Closed`] when the publisher closes first.
    pub fn result(&self, position: u64) -> impl Future<Output = Result<BatchResult, Error>> + Send + 'static {
        let rx = {
            let mut r = self.shared.results();
            match r.early.remove(&position) {
                Some(found) => Err(found),
                None if self.shared.closed.load(Ordering::SeqCst) => Ok(None),
                None => {
                    let (tx, rx) = oneshot::channel();
                    r.waiters.entry(position).or_default().push(tx);
                    Ok(Some(rx))
                }
            }
        };
        async move {
            match rx {
                Err(found) => Ok(found),
                Ok(None) => Err(Error::Closed),
                Ok(Some(rx)) => rx.await.map_err(|_| Error::Closed),
            }
        }
    }

    /// Stops taking batches, waits up to `within` for every batch published to be acknowledged,
    /// then stops; what was still unacknowledged then is answered [`Error::Closed`]. Returns
    /// how many were.
    pub async fn close(&self, within: Duration) -> usize {
        self.shared.closed.store(true, Ordering::SeqCst);
        let mut watch = self.shared.unacknowledged.subscribe();
        let _ = tokio::time::timeout(within, watch.wait_for(|n| *n == 0)).await;
        let left = *watch.borrow();
        self.stop.cancel();
        left
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn msg_id(gateway: &str, epoch: u64, n: u64) -> String {
    format!("{gateway}/{epoch}/{n}")
}

/// One attempt's outcome: the batch number and the ack or why there is none.
type Attempt = Pin<Box<dyn Future<Output = (u64, Result<jetstream::publish::PublishAck, String>)> + Send>>;

struct Queued {
    id: String,
    body: Bytes,
    /// The payload header's value, for a payload message.
    payload: Option<String>,
    runs: Vec<String>,
    done: Option<oneshot::Sender<Result<Acked, Error>>>,
    sent: bool,
    attempts: u32,
}

/// The publishing task: sends what the [`RunGate`] lets go, up to `in_flight` at a time, and
/// retries each failed attempt with the same id until it is acknowledged or the publisher stops.
async fn drive(
    js: jetstream::Context,
    cfg: PublisherConfig,
    epoch: u64,
    mut submissions: mpsc::UnboundedReceiver<Submitted>,
    shared: Arc<Shared>,
    stop: CancellationToken,
) {
    let subject = cfg.log.ingest_subject(&cfg.gateway);
    let in_flight = cfg.in_flight.max(1);
    let mut queue: BTreeMap<u64, Queued> = BTreeMap::new();
    let mut gate = RunGate::default();
    let mut attempts: FuturesUnordered<Attempt> = FuturesUnordered::new();
    let mut next = 0u64;
    let attempt = |n: u64, q: &Queued, delay: Duration| -> Attempt {
        let (js, subject, id, body) = (js.clone(), subject.clone(), q.id.clone(), q.body.clone());
        let payload = q.payload.clone();
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", id.as_str());
            headers.insert("A2A-Ledger-Format", FORMAT);
            if let Some(hash) = &payload {
                headers.insert(crate::names::PAYLOAD_HEADER, hash.as_str());
            }
            let ack = async {
                js.publish_with_headers(subject, headers, body)
                    .await
                    .map_err(|e| e.to_string())?
                    .await
                    .map_err(|e| e.to_string())
            };
            (n, ack.await)
        })
    };
    let mut open = true;
    loop {
        // Send what may go, oldest first.
        let mut sending = attempts.len();
        for (&n, q) in queue.iter_mut() {
            if sending >= in_flight {
                break;
            }
            if !q.sent && gate.ready(n, &q.runs) {
                q.sent = true;
                attempts.push(attempt(n, q, Duration::ZERO));
                sending += 1;
            }
        }
        if !open && queue.is_empty() {
            return;
        }
        tokio::select! {
            () = stop.cancelled() => break,
            s = submissions.recv(), if open => match s {
                None => open = false,
                Some(s) => {
                    let n = next;
                    next += 1;
                    gate.submit(n, &s.runs);
                    let (body, payload) = match s.body {
                        Body::Batch(entries) => (Bytes::from(ledger_core::bus::encode_batch(&entries)), None),
                        Body::Payload(hash, bytes) => (bytes, Some(hex::encode(hash))),
                    };
                    queue.insert(n, Queued { id: msg_id(&cfg.gateway, epoch, n), body, payload, runs: s.runs, done: Some(s.done), sent: false, attempts: 0 });
                }
            },
            Some((n, outcome)) = attempts.next(), if !attempts.is_empty() => match outcome {
                Ok(ack) => {
                    let Some(mut q) = queue.remove(&n) else { continue };
                    gate.acknowledged(n, &q.runs);
                    shared.acknowledged.fetch_max(ack.sequence, Ordering::SeqCst);
                    shared.unacknowledged.send_modify(|u| *u -= 1);
                    if let Some(done) = q.done.take() {
                        let _ = done.send(Ok(Acked { position: ack.sequence, duplicate: ack.duplicate, msg_id: q.id }));
                    }
                }
                Err(_) => {
                    // Not known to be in the stream: the same bytes again under the same id (the
                    // stream drops the copy if the first attempt did land), after a backoff. The
                    // batch keeps its place in the gate, so no later batch of its runs overtakes
                    // it. Outside the duplicate window (an outage of more than 2 min) a second
                    // copy may be stored; its entries are identical, which the run rules take as
                    // an idempotent success.
                    let Some(q) = queue.get_mut(&n) else { continue };
                    q.attempts += 1;
                    let delay = (Duration::from_millis(50) * 2u32.saturating_pow(q.attempts.min(6))).min(MAX_BACKOFF);
                    attempts.push(attempt(n, q, delay));
                }
            },
        }
    }
    // Stopped: whatever is still unacknowledged never will be by this publisher.
    for (_, mut q) in queue {
        if let Some(done) = q.done.take() {
            let _ = done.send(Err(Error::Closed));
        }
    }
    shared.unacknowledged.send_modify(|u| *u = 0);
}

/// The sequence to follow the gateway's results from: just after the out stream's last message
/// now, before this publisher sends anything.
async fn open_results(js: &jetstream::Context, cfg: &PublisherConfig) -> Result<u64, Error> {
    let name = cfg.log.out_stream();
    let s = js.get_stream(&name).await.map_err(|e| Error::nats(format!("opening stream {name}"), e))?;
    let info = s.get_info().await.map_err(|e| Error::nats(format!("reading stream {name}'s state"), e))?;
    Ok(info.state.last_sequence + 1)
}

/// Follows `ledger.<L>.result.<gateway>` from `from` on, handing every result to its waiters
/// (or keeping it for them), through server failures.
async fn follow_results(
    js: jetstream::Context,
    cfg: PublisherConfig,
    from: u64,
    shared: Arc<Shared>,
    stop: CancellationToken,
) {
    // Through server failures, from just after what the stream held at start (`Ordered`).
    let subject = cfg.log.result_subject(&cfg.gateway);
    let mut reader = Ordered::new(js, cfg.log.out_stream(), Some(subject), Start::At(from));
    while let Some(m) = reader.next(&stop).await {
        deliver(&shared, &m.headers, &m.payload);
    }
    // Nobody will be answered any more.
    let mut r = shared.results();
    r.waiters.clear();
}

/// Hands one result message to whoever waits for its position. A body that is no result, or
/// whose `Nats-Msg-Id` names another position than its body, is refused: counted, never handed
/// on (its waiters keep waiting for a result that is one).
fn deliver(shared: &Shared, headers: &Option<HeaderMap>, body: &[u8]) {
    let result = match BatchResult::from_json(body) {
        Ok(r) => r,
        Err(_) => {
            shared.malformed.fetch_add(1, Ordering::SeqCst);
            return;
        }
    };
    let id = headers.as_ref().and_then(|h| h.get("Nats-Msg-Id")).map(|v| v.as_str().to_owned());
    if id.is_some_and(|id| id != result_msg_id(result.position)) {
        shared.malformed.fetch_add(1, Ordering::SeqCst);
        return;
    }
    let mut r = shared.results();
    match r.waiters.remove(&result.position) {
        Some(waiters) => {
            for w in waiters {
                let _ = w.send(result.clone());
            }
        }
        None => {
            r.early.insert(result.position, result);
            while r.early.len() > EARLY_RESULTS {
                r.early.pop_first();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_batch_waits_for_every_earlier_unacknowledged_batch_of_its_runs_only() {
        let mut g = RunGate::default();
        let (b0, b1, b2, b3) = (runs(&["a"]), runs(&["b"]), runs(&["a", "c"]), runs(&["c"]));
        g.submit(0, &b0);
        g.submit(1, &b1);
        g.submit(2, &b2);
        g.submit(3, &b3);
        // 0 and 1 touch different runs: both may go. 2 waits for 0 (run a); 3 waits for 2 (run c).
        assert!(g.ready(0, &b0) && g.ready(1, &b1));
        assert!(!g.ready(2, &b2) && !g.ready(3, &b3));
        // 1 acknowledged first (reordering across runs): still nothing of run a or c may go.
        g.acknowledged(1, &b1);
        assert!(!g.ready(2, &b2) && !g.ready(3, &b3));
        // 0's first attempt failed and is being retried: 2 still waits, however long.
        assert!(!g.ready(2, &b2));
        g.acknowledged(0, &b0);
        assert!(g.ready(2, &b2) && !g.ready(3, &b3));
        g.acknowledged(2, &b2);
        assert!(g.ready(3, &b3));
        g.acknowledged(3, &b3);
        assert_eq!(g.busy_runs(), 0);
    }

    #[test]
    fn a_gateway_name_is_one_subject_token_without_a_slash() {
        for ok in ["gateway", "gw-1", "gw_1@example"] {
            check_gateway_name(ok).unwrap();
        }
        for bad in ["", "gw.1", "gw*", "gw>", "gw 1", "gw\t1", "gw/1", "gw\u{7f}"] {
            let e = check_gateway_name(bad).unwrap_err();
            assert!(matches!(e, Error::GatewayName(_)), "{bad:?}");
            assert!(e.to_string().contains("one NATS subject token"), "{bad:?}: {e}");
        }
        assert_eq!(msg_id("gw-1", 7, 0), "gw-1/7/0");
    }

    #[test]
    fn a_result_is_kept_until_asked_for_and_a_malformed_one_is_counted() {
        let shared = Shared {
            closed: AtomicBool::new(false),
            acknowledged: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            results: Mutex::new(Results::default()),
            unacknowledged: watch::channel(0).0,
        };
        let r = BatchResult { position: 3, outcome: Ok(vec![9]) };
        let mut h = HeaderMap::new();
        h.insert("Nats-Msg-Id", "r/3");
        deliver(&shared, &Some(h), &r.to_json());
        assert_eq!(shared.results().early.get(&3), Some(&r));
        let mut wrong = HeaderMap::new();
        wrong.insert("Nats-Msg-Id", "r/4");
        deliver(&shared, &Some(wrong), &r.to_json());
        deliver(&shared, &None, br#"{"position":5,"indices":[1],"more":1}"#);
        assert_eq!(shared.malformed.load(Ordering::SeqCst), 2);
        assert_eq!(shared.results().early.len(), 1);
    }
}
