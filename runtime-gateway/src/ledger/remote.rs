//! [`RemoteLedger`]: a `ledger-server` reached over its gRPC `Append` stream, behind a bounded
//! local spool, so the gateway keeps recording while the ledger is away.
//!
//! Durability rules kept here:
//! - A batch is acknowledged to the recorder when it is durable somewhere: in the log (the
//!   server's acknowledgement, with indices) or in the spool (written and fdatasync'ed here),
//!   whichever comes first. Every batch is written to the spool before it is sent.
//! - Batches are forwarded in the order they were appended, one `Append` stream, at most
//!   [`RemoteConfig::in_flight`] unacknowledged; the server acknowledges in order.
//! - After a broken stream every unacknowledged batch is sent again, in order. That is safe
//!   because the ledger treats an identical `(run, seq)` entry as an idempotent success.
//! - A spool segment is deleted only once every batch in it is acknowledged by the ledger, so
//!   a gateway that crashes replays its spool on the next start and loses nothing it accepted.
//! - When the spool holds `max_bytes` of unforwarded entries, a batch that opens a run (seq 0)
//!   is refused with a clear error, so the gateway refuses new tasks rather than run them
//!   unrecorded; runs already accepted may go on up to twice that, so they can still be sealed.
//! - A batch the ledger refuses for good (not a transport failure) is written, with the reason,
//!   to `rejected.jsonl` in the spool directory and reported; it is never silently dropped.
//!
//! Spool segment format: frames of `len: u32 LE | check: 4 bytes (BLAKE3 of body, truncated) |
//! body`, body = `count: u32 LE` then per entry `len: u32 LE | bytes`. A torn frame at the tail
//! of the newest segment (a crash mid-write) is cut off on recovery; it was never acknowledged.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::payload_spool::PayloadSpool;
use super::reads::{self, Client, Reads, status_error, storage};
use super::spool::{Frame, Spool};
use super::{
    AppendDone, Batch, BoxFuture, Durable, LedgerSink, Payload, ReceiptError, RunEntries, RunPage, RunRef, RunsBy,
};
use ledger_core::{Error, LogDescriptor, Result, RunSearch, SearchPage, TreeHash};
use tokio::sync::{Notify, mpsc};
use tokio_stream::StreamExt as _;

/// The `ledger.v1` contract (messages, client, typed error codes), compiled once in `ledger-wire`.
pub use ledger_wire as proto;

use proto::ErrorCode;

/// The ledger's descriptor as last read, under the spool directory.
pub const DESCRIPTOR_CACHE: &str = "ledger.json";

/// How the gateway reaches its ledger.
#[derive(Clone, Debug)]
pub struct RemoteConfig {
    /// gRPC endpoint of the ledger-server, e.g. `http://127.0.0.1:7701`.
    pub url: String,
    /// Bearer token of an `ingest` principal bound to the gateway's identity.
    pub token: String,
    /// Spool directory (created if missing).
    pub spool: PathBuf,
    /// Most bytes of entries the spool holds before it refuses appends.
    pub max_bytes: u64,
    /// Batches sent and not yet acknowledged.
    pub in_flight: usize,
    /// A PEM CA certificate (bundle) trusted for an `https://` ledger, beside the web roots.
    pub ca: Option<PathBuf>,
}

struct Shared {
    spool: Mutex<Spool>,
    /// Payloads kept here while the ledger was away, uploaded before any further batch.
    payloads: PayloadSpool,
    max_bytes: u64,
    /// Batches the ledger refused for good (each in `rejected.jsonl`).
    refused: std::sync::atomic::AtomicU64,
    /// Wakes the forwarder (new frame, close).
    forward: Notify,
    /// Wakes the syncer.
    sync: Notify,
    /// Signalled when the queue empties or on close.
    drained: Notify,
    /// Set when the gateway started without reaching the ledger: what the ledger must be shown
    /// to be before anything is forwarded to it.
    confirm: Mutex<Option<Confirm>>,
}

/// What an offline start assumed about the ledger.
#[derive(Debug, Clone)]
struct Confirm {
    descriptor: LogDescriptor,
    /// The gateway's identity and key, which `id/<name>` must hold as its latest registration.
    identity: Option<(String, [u8; 32])>,
}

/// Longest the start and the confirmation wait for one answer of the ledger.
const ASK_TIMEOUT: Duration = Duration::from_secs(10);

/// A `ledger-server` over gRPC, behind the local spool.
pub struct RemoteLedger {
    shared: Arc<Shared>,
    client: Client,
    reads: Reads,
    descriptor: LogDescriptor,
}

impl std::fmt::Debug for RemoteLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteLedger").field("origin", &self.descriptor.origin).finish_non_exhaustive()
    }
}

impl RemoteLedger {
    /// Connects (asking the server for its log descriptor), recovers the spool and starts the
    /// forwarder and the spool syncer. Needs a tokio runtime.
    pub async fn connect(cfg: RemoteConfig) -> anyhow::Result<RemoteLedger> {
        use anyhow::Context as _;
        let mut client = reads::client(&cfg.url, &cfg.token, cfg.ca.as_deref(), None)?;
        std::fs::create_dir_all(&cfg.spool).with_context(|| format!("creating {}", cfg.spool.display()))?;
        let cache = cfg.spool.join(DESCRIPTOR_CACHE);
        let asked = get_log(&mut client).await;
        let mut offline = false;
        let descriptor = match asked {
            Ok(info) => {
                let descriptor: LogDescriptor =
                    serde_json::from_str(&info.into_inner().descriptor_json).context("the ledger's log descriptor")?;
                // A spool written for another log must not go to this one.
                if let Some(before) = read_cache(&cache, &cfg.url)
                    && before != descriptor
                    && std::fs::read_dir(&cfg.spool)?
                        .flatten()
                        .any(|e| e.file_name().to_string_lossy().ends_with(".seg"))
                {
                    anyhow::bail!(
                        "the ledger at {} is not the log this gateway spooled for ({} then, {} now); its spool in {} is kept: forward or remove it by hand",
                        cfg.url,
                        before.vkey,
                        descriptor.vkey,
                        cfg.spool.display()
                    );
                }
                // Kept, so that a restart while the ledger is away can still start (and spool).
                let text = serde_json::to_vec_pretty(&serde_json::json!({ "url": cfg.url, "descriptor": descriptor }))?;
                crate::base::fs::write_atomically(&cache, &text)
                    .with_context(|| format!("writing {}", cache.display()))?;
                descriptor
            }
            Err(e) => {
                // Only a ledger that cannot be reached is waited for; one that answers with a
                // refusal (a revoked token, say) is an error now, not a spool filling for nothing.
                let away = matches!(e.code(), tonic::Code::Unavailable | tonic::Code::DeadlineExceeded);
                let cached = if away { read_cache(&cache, &cfg.url) } else { None };
                match cached {
                    Some(d) => {
                        offline = true;
                        eprintln!(
                            "ledger at {} unreachable ({}); starting with its descriptor from the last start, spooling until it is back",
                            cfg.url,
                            e.message()
                        );
                        d
                    }
                    None if away => {
                        return Err(anyhow::Error::new(e).context(format!(
                            "asking the ledger at {} for its log descriptor (a gateway that has never reached it cannot start without it)",
                            cfg.url
                        )));
                    }
                    None => {
                        return Err(anyhow::Error::new(e)
                            .context(format!("asking the ledger at {} for its log descriptor", cfg.url)));
                    }
                }
            }
        };
        let spool = Spool::recover(&cfg.spool)?;
        let recovered = spool.queue.len();
        let payloads = PayloadSpool::open(&cfg.spool)?;
        let shared = Arc::new(Shared {
            spool: Mutex::new(spool),
            payloads,
            max_bytes: cfg.max_bytes,
            refused: Default::default(),
            forward: Notify::new(),
            sync: Notify::new(),
            drained: Notify::new(),
            confirm: Mutex::new(offline.then(|| Confirm { descriptor: descriptor.clone(), identity: None })),
        });
        if recovered > 0 {
            eprintln!("spool: {recovered} batches from an earlier run are forwarded to the ledger first");
        }
        tokio::spawn(forward(shared.clone(), client.clone(), cfg.in_flight.max(1)));
        let syncer = shared.clone();
        std::thread::Builder::new().name("spool-sync".into()).spawn(move || sync_loop(syncer))?;
        let reads = Reads::new(vec![client.clone()]);
        Ok(RemoteLedger { shared, client, reads, descriptor })
    }

    /// Why the ledger is unreachable, while it is.
    pub fn outage(&self) -> Option<String> {
        self.shared.lock().outage.clone()
    }

    /// True when the gateway started without reaching the ledger: nothing is forwarded until the
    /// ledger is shown to be the same log, holding this gateway's key as [`Self::expect_identity`]
    /// names it.
    pub fn started_offline(&self) -> bool {
        self.shared.confirm.lock().unwrap_or_else(|p| p.into_inner()).is_some()
    }

    /// The identity the ledger must hold (checked with the descriptor after an offline start).
    pub fn expect_identity(&self, name: &str, public_key: [u8; 32]) {
        if let Some(c) = self.shared.confirm.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            c.identity = Some((name.to_string(), public_key));
        }
    }
}

fn read_cache(cache: &Path, url: &str) -> Option<LogDescriptor> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(cache).ok()?).ok()?;
    if v["url"] != url {
        return None;
    }
    serde_json::from_value(v["descriptor"].clone()).ok()
}

/// Asks the ledger for its log, for at most [`ASK_TIMEOUT`] (no answer counts as unreachable).
async fn get_log(client: &mut Client) -> std::result::Result<tonic::Response<proto::LogInfo>, tonic::Status> {
    tokio::time::timeout(ASK_TIMEOUT, client.get_log(proto::GetLogRequest {}))
        .await
        .unwrap_or_else(|_| Err(tonic::Status::deadline_exceeded("no answer in 10 s")))
}

/// After an offline start: is the ledger the log the spool was written for, with this gateway's
/// key registered? `Err` when it cannot be asked yet; `Ok(Some(why))` when it is not.
async fn confirm(client: &mut Client, c: &Confirm) -> std::result::Result<Option<String>, tonic::Status> {
    let info = get_log(client).await?.into_inner();
    let now: LogDescriptor = match serde_json::from_str(&info.descriptor_json) {
        Ok(d) => d,
        Err(e) => return Ok(Some(format!("its log descriptor does not parse: {e}"))),
    };
    if now != c.descriptor {
        return Ok(Some(format!(
            "it is another log now ({} when the gateway started, {} now)",
            c.descriptor.vkey, now.vkey
        )));
    }
    let Some((name, key)) = &c.identity else { return Ok(None) };
    let run = format!("id/{name}");
    let entries = match client.get_run(proto::GetRunRequest { run: run.clone() }).await {
        Ok(r) => r.into_inner().entries,
        Err(s) if ErrorCode::of(&s) == Some(ErrorCode::UnknownRun) => Vec::new(),
        Err(s) => return Err(s),
    };
    let latest = entries.iter().rev().find_map(|b| match ledger_core::Entry::decode(b) {
        Ok(ledger_core::Entry { event: ledger_core::Event::IdentityRegistered { public_key }, .. }) => Some(public_key),
        _ => None,
    });
    if latest.as_ref() != Some(key) {
        return Ok(Some(format!(
            "{run} does not hold this gateway's key (the log was reset, or the key registered elsewhere)"
        )));
    }
    Ok(None)
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Spool> {
        self.spool.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Syncs written spool files and acknowledges their frames as spooled (group commit).
fn sync_loop(shared: Arc<Shared>) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a current-thread runtime");
    loop {
        let (files, closed) = {
            let mut s = shared.lock();
            (std::mem::take(&mut s.unsynced), s.closed)
        };
        if files.is_empty() {
            if closed {
                return;
            }
            rt.block_on(async {
                tokio::select! {
                    _ = shared.sync.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            });
            continue;
        }
        // Frames written before this point are covered by the syncs below.
        let upto = shared.lock().next_frame;
        let mut failed = None;
        for f in &files {
            if let Err(e) = f.sync_data() {
                failed = Some(e);
            }
        }
        let mut callbacks = Vec::new();
        {
            let mut s = shared.lock();
            if let Some(e) = &failed {
                // A failed fsync: the spool can no longer promise durability. Refuse further
                // appends; batches already sent may still be acknowledged by the ledger.
                s.closed = true;
                eprintln!("spool: fdatasync failed, refusing further appends: {e}");
            }
            for frame in s.queue.iter_mut().filter(|f| f.id < upto && !f.synced) {
                frame.synced = failed.is_none();
                if failed.is_none()
                    && let Some(done) = frame.done.take()
                {
                    callbacks.push(done);
                }
            }
        }
        for done in callbacks {
            done(Ok(Durable::Spooled));
        }
    }
}

/// Forwards spooled batches to the ledger over one `Append` stream at a time, reconnecting
/// with backoff.
async fn forward(shared: Arc<Shared>, mut client: Client, in_flight: usize) {
    let mut backoff = Duration::from_millis(100);
    loop {
        {
            let mut s = shared.lock();
            if s.closed && s.queue.is_empty() {
                shared.drained.notify_waiters();
                return;
            }
            s.sent = 0;
        }
        // After an offline start nothing goes out before the ledger is shown to be the log the
        // spool was written for. If it is not, forwarding stops for good and new appends are
        // refused; the spool stays on disk for the operator.
        let pending = shared.confirm.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(c) = pending {
            match confirm(&mut client, &c).await {
                Ok(None) => {
                    *shared.confirm.lock().unwrap_or_else(|p| p.into_inner()) = None;
                    eprintln!("ledger reached: the same log, this gateway's key registered; forwarding the spool");
                }
                Ok(Some(why)) => {
                    let reason = format!(
                        "the ledger is not the log this gateway spooled for: {why}; the spool is kept and nothing more is accepted"
                    );
                    eprintln!("{reason}");
                    let mut s = shared.lock();
                    s.closed = true;
                    s.outage = Some(reason);
                    shared.drained.notify_waiters();
                    return;
                }
                Err(status) => {
                    shared.lock().outage.get_or_insert_with(|| format!("{} ({:?})", status.message(), status.code()));
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shared.forward.notified() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
            }
        }
        let mut uploader = client.clone();
        let (tx, rx) = mpsc::channel::<proto::AppendRequest>(in_flight);
        let call = client.append(tokio_stream::wrappers::ReceiverStream::new(rx));
        let mut tx = Some(tx);
        // Send what fits while the call is being set up (the server reads as it can).
        let result = async {
            let mut acks = call.await?.into_inner();
            loop {
                // Payloads kept here while the ledger was away go first: a batch sent after
                // this point may name them.
                if shared.payloads.waiting() > 0 {
                    upload_waiting(&shared, &mut uploader).await?;
                }
                // Top up the stream with unsent frames, in order.
                let batch = {
                    let mut s = shared.lock();
                    if s.sent < s.queue.len() && s.sent < in_flight {
                        let f = &s.queue[s.sent];
                        let req = proto::AppendRequest { batch: f.id, entries: f.entries.clone() };
                        s.sent += 1;
                        Some(req)
                    } else {
                        if s.queue.is_empty() {
                            shared.drained.notify_waiters();
                            if s.closed {
                                return Ok(());
                            }
                        }
                        None
                    }
                };
                if let Some(req) = batch {
                    if let Some(tx) = &tx
                        && tx.send(req).await.is_err()
                    {
                        return Err(tonic::Status::unavailable("the Append stream closed"));
                    }
                    continue;
                }
                tokio::select! {
                    _ = shared.forward.notified() => {}
                    ack = acks.next() => match ack {
                        None => return Err(tonic::Status::unavailable("the ledger ended the Append stream")),
                        Some(Err(status)) => return Err(status),
                        Some(Ok(ack)) => handle_ack(&shared, ack),
                    },
                }
            }
        }
        .await;
        tx.take();
        match result {
            Ok(()) => {
                shared.drained.notify_waiters();
                return;
            }
            Err(status) => {
                let reason = format!("{} ({:?})", status.message(), status.code());
                let first = {
                    let mut s = shared.lock();
                    s.sent = 0;
                    let first = s.outage.is_none();
                    s.outage = Some(reason.clone());
                    first
                };
                if first {
                    eprintln!("ledger unreachable, spooling: {reason}");
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shared.forward.notified() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
        // A fresh connection next time round.
        client = client.clone();
    }
}

/// Uploads one payload; answered once it is durable at the ledger.
async fn upload(client: &mut Client, hash: [u8; 32], bytes: &[u8]) -> std::result::Result<(), tonic::Status> {
    const CHUNK: usize = 1 << 20;
    let mut chunks =
        vec![proto::PayloadChunk { hash: hash.to_vec(), length: Some(bytes.len() as u64), data: Vec::new() }];
    for (i, c) in bytes.chunks(CHUNK).enumerate() {
        if i == 0 {
            chunks[0].data = c.to_vec();
        } else {
            chunks.push(proto::PayloadChunk { hash: Vec::new(), length: None, data: c.to_vec() });
        }
    }
    client.put_payload(tokio_stream::iter(chunks)).await.map(|_| ())
}

/// A refusal of the payload itself (not of the transport): sending it again changes nothing.
fn refused(s: &tonic::Status) -> bool {
    matches!(
        ErrorCode::of(s),
        Some(
            ErrorCode::PayloadTooLarge
                | ErrorCode::PayloadQuota
                | ErrorCode::PayloadMismatch
                | ErrorCode::PayloadErased
                | ErrorCode::Forbidden
        )
    )
}

/// Uploads every payload waiting in the spool; one the ledger refuses for good is reported and
/// dropped (the entry naming it then names bytes the ledger does not hold, which readers show).
async fn upload_waiting(shared: &Shared, client: &mut Client) -> std::result::Result<(), tonic::Status> {
    let waiting = shared.payloads.list().map_err(|e| tonic::Status::internal(e.to_string()))?;
    for (hash, bytes) in waiting {
        match upload(client, hash, &bytes).await {
            Ok(()) => {}
            Err(s) if refused(&s) => {
                eprintln!(
                    "spool: the ledger refuses payload {}: {} ({:?}); dropped",
                    hex::encode(hash),
                    s.message(),
                    s.code()
                );
            }
            Err(s) => return Err(s),
        }
        if let Err(e) = shared.payloads.done(&hash) {
            eprintln!("spool: payload {} uploaded but its file stays: {e}", hex::encode(hash));
        }
    }
    Ok(())
}

fn handle_ack(shared: &Shared, ack: proto::AppendResponse) {
    let mut s = shared.lock();
    if s.queue.front().map(|f| f.id) != Some(ack.batch) {
        // Acknowledgements arrive in order; anything else is a server bug. Resend from the front.
        eprintln!("ledger acknowledged batch {} out of order; resending", ack.batch);
        s.sent = 0;
        return;
    }
    if s.outage.take().is_some() {
        eprintln!("ledger reachable again; forwarding the spool");
    }
    let mut frame = s.pop_front().expect("front exists");
    let dir = s.dir.clone();
    let drained = s.queue.is_empty();
    drop(s);
    let outcome = match ack.error {
        None => Ok(Durable::Logged(ack.indices)),
        Some(e) => {
            // Refused for good. Keep the batch and the reason where an operator finds them.
            shared.refused.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let why = serde_json::json!({ "code": e.code, "message": e.message, "index": e.index });
            let kept = super::keep_rejected(&dir, why, &frame.entries);
            eprintln!("ledger refused a spooled batch ({}: {}); kept in {kept}", e.code, e.message);
            Err(storage(format!("the ledger refused the batch: {}: {}", e.code, e.message)))
        }
    };
    if let Some(done) = frame.done.take() {
        done(outcome);
    }
    if drained {
        shared.drained.notify_waiters();
    }
}

impl LedgerSink for RemoteLedger {
    fn append(&self, batch: Batch, done: AppendDone) {
        let bytes = batch.bytes();
        let limit = if batch.opens_run { self.shared.max_bytes } else { self.shared.max_bytes.saturating_mul(2) };
        let mut done = Some(done);
        let written = {
            let mut s = self.shared.lock();
            if s.closed {
                Err(Error::Closed)
            } else if s.pending_bytes + bytes > limit {
                Err(storage(format!(
                    "the gateway's spool is full ({} of {} bytes wait for the ledger{}); try again later",
                    s.pending_bytes,
                    limit,
                    s.outage.as_ref().map(|o| format!(", which is unreachable: {o}")).unwrap_or_default()
                )))
            } else {
                match s.write(&batch.entries) {
                    Ok(segment) => {
                        let id = s.next_frame;
                        s.next_frame += 1;
                        s.pending_bytes += bytes;
                        s.queue.push_back(Frame {
                            id,
                            segment,
                            entries: batch.entries,
                            bytes,
                            done: done.take(),
                            synced: false,
                            since: std::time::Instant::now(),
                        });
                        Ok(())
                    }
                    Err(e) => {
                        // A spool that cannot be written cannot promise anything: stop.
                        s.closed = true;
                        Err(e)
                    }
                }
            }
        };
        match written {
            Ok(()) => {
                self.shared.sync.notify_one();
                self.shared.forward.notify_one();
            }
            Err(e) => {
                if let Some(done) = done {
                    done(Err(e));
                }
            }
        }
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
        let backlog = self.backlog();
        Box::pin(async move { self.reads.receipt(&run, wait, backlog).await })
    }

    fn put_payload(&self, hash: [u8; 32], bytes: bytes::Bytes) -> BoxFuture<'_, Result<()>> {
        let mut client = self.client.clone();
        Box::pin(async move {
            // Straight to the ledger while it answers (its answer means durable there); kept in
            // the spool (fsynced) while it is away, and uploaded before any later batch.
            if self.outage().is_none() {
                match upload(&mut client, hash, &bytes).await {
                    Ok(()) => return Ok(()),
                    Err(s) if refused(&s) => return Err(status_error(&s)),
                    Err(_) => {}
                }
            }
            let shared = self.shared.clone();
            tokio::task::spawn_blocking(move || shared.payloads.put(&hash, &bytes))
                .await
                .map_err(|_| Error::Closed)??;
            self.shared.forward.notify_one();
            Ok(())
        })
    }

    fn payload(&self, hash: [u8; 32]) -> BoxFuture<'_, Result<Payload>> {
        Box::pin(async move {
            match self.reads.payload(hash).await {
                Ok(p) => Ok(p),
                // Not at the ledger yet: perhaps still waiting here.
                Err(s) if ErrorCode::of(&s) == Some(ErrorCode::PayloadMissing) => {
                    Ok(self.shared.payloads.get(&hash).map_or(Payload::Missing, |b| Payload::Present(b.into())))
                }
                Err(s) => match self.shared.payloads.get(&hash) {
                    Some(b) => Ok(Payload::Present(b.into())),
                    None => Err(status_error(&s)),
                },
            }
        })
    }

    fn erase_payload(&self, hash: [u8; 32], reason: String, _approver: String) -> BoxFuture<'_, Result<u64>> {
        let mut client = self.client.clone();
        Box::pin(async move {
            // The ledger-server decides who erases (its admin principals) and records its caller
            // as the approver; a gateway's ingest token is refused there.
            match client.erase_payload(proto::ErasePayloadRequest { hash: hash.to_vec(), reason }).await {
                Ok(r) => Ok(r.into_inner().index),
                Err(s) => Err(status_error(&s)),
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
        self.shared.lock().queue.len() as u64
    }

    fn refused_batches(&self) -> u64 {
        self.shared.refused.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn lag(&self) -> Duration {
        self.shared.lock().queue.front().map(|f| f.since.elapsed()).unwrap_or_default()
    }

    fn close(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let notified = self.shared.drained.notified();
            let empty = {
                let mut s = self.shared.lock();
                s.closed = true;
                s.queue.is_empty()
            };
            self.shared.forward.notify_one();
            self.shared.sync.notify_one();
            if !empty {
                // Wait a while for the ledger to take the rest; what it does not take stays in
                // the spool (synced) and is forwarded on the next start.
                let _ = tokio::time::timeout(Duration::from_secs(10), notified).await;
            }
            Ok(())
        })
    }
}
