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

use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use ledger_core::{Error, LogDescriptor, Result, TreeHash};
use tokio::sync::{Notify, mpsc};
use tokio_stream::StreamExt as _;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::transport::{Channel, Endpoint};

use crate::sink::{AppendDone, BoxFuture, Durable, LedgerSink, ReceiptError, RunEntries};

/// The generated `ledger.v1` client.
pub mod proto {
    #![allow(missing_docs, missing_debug_implementations, clippy::all)]
    tonic::include_proto!("ledger.v1");
}

use proto::ledger_client::LedgerClient;

/// Bytes after which a new spool segment is started.
const SEGMENT_BYTES: u64 = 16 << 20;

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

#[derive(Clone)]
struct Bearer(MetadataValue<Ascii>);

impl Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> std::result::Result<tonic::Request<()>, tonic::Status> {
        req.metadata_mut().insert("authorization", self.0.clone());
        Ok(req)
    }
}

type Client = LedgerClient<tonic::service::interceptor::InterceptedService<Channel, Bearer>>;

struct Frame {
    id: u64,
    segment: u64,
    /// Shared, so that each (re)send clones references, not bytes.
    entries: Vec<Bytes>,
    bytes: u64,
    /// The recorder's callback, until the batch is durable somewhere.
    done: Option<AppendDone>,
    /// Written and synced to the spool.
    synced: bool,
    /// When the gateway accepted it (or found it in the spool at start).
    since: std::time::Instant,
}

struct Segment {
    path: PathBuf,
    file: Arc<File>,
    len: u64,
    /// Frames of this segment not yet acknowledged by the ledger.
    unacked: u64,
}

struct Spool {
    dir: PathBuf,
    queue: VecDeque<Frame>,
    /// Frames `queue[..sent]` are on the current stream.
    sent: usize,
    segments: BTreeMap<u64, Segment>,
    next_frame: u64,
    pending_bytes: u64,
    /// Files written since the last sync.
    unsynced: Vec<Arc<File>>,
    closed: bool,
    /// Why the ledger is unreachable, while it is.
    outage: Option<String>,
}

struct Shared {
    spool: Mutex<Spool>,
    max_bytes: u64,
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
    descriptor: LogDescriptor,
}

impl std::fmt::Debug for RemoteLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteLedger").field("origin", &self.descriptor.origin).finish_non_exhaustive()
    }
}

fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Io { path: path.to_path_buf(), source }
}

fn storage(what: impl std::fmt::Display) -> Error {
    Error::Storage(what.to_string())
}

fn status_error(s: &tonic::Status) -> Error {
    storage(format!("ledger-server: {} ({:?})", s.message(), s.code()))
}

impl RemoteLedger {
    /// Connects (asking the server for its log descriptor), recovers the spool and starts the
    /// forwarder and the spool syncer. Needs a tokio runtime.
    pub async fn connect(cfg: RemoteConfig) -> anyhow::Result<RemoteLedger> {
        use anyhow::Context as _;
        let mut endpoint = Endpoint::from_shared(cfg.url.clone())
            .with_context(|| format!("ledger URL {:?}", cfg.url))?
            .connect_timeout(Duration::from_secs(5));
        if cfg.url.starts_with("https://") {
            // TLS (rustls with ring): the public web roots, plus the operator's CA if given.
            let mut tls = tonic::transport::ClientTlsConfig::new().with_webpki_roots();
            if let Some(ca) = &cfg.ca {
                let pem = std::fs::read(ca).with_context(|| format!("reading the ledger CA {}", ca.display()))?;
                tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(pem));
            }
            endpoint = endpoint.tls_config(tls).context("the TLS settings for the ledger")?;
        } else if cfg.ca.is_some() {
            anyhow::bail!("--ledger-ca is for a TLS ledger: give its URL as https://");
        }
        let channel = endpoint.connect_lazy();
        let bearer = MetadataValue::try_from(format!("Bearer {}", cfg.token))
            .context("the ledger token has characters not allowed in a header")?;
        let mut client = LedgerClient::with_interceptor(channel, Bearer(bearer));
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
                crate::workspace::write_atomically(&cache, &text)
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
        let shared = Arc::new(Shared {
            spool: Mutex::new(spool),
            max_bytes: cfg.max_bytes,
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
        Ok(RemoteLedger { shared, client, descriptor })
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
        Err(s) if s.code() == tonic::Code::NotFound => Vec::new(),
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

fn frame_body(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut body = Vec::with_capacity(4 + entries.iter().map(|e| e.len() + 4).sum::<usize>());
    body.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for e in entries {
        body.extend_from_slice(&(e.len() as u32).to_le_bytes());
        body.extend_from_slice(e);
    }
    body
}

fn check(body: &[u8]) -> [u8; 4] {
    let h = blake3::hash(body);
    [h.as_bytes()[0], h.as_bytes()[1], h.as_bytes()[2], h.as_bytes()[3]]
}

/// Parses frames from a segment; returns them and the length of the valid prefix.
fn parse_segment(bytes: &[u8]) -> (Vec<Vec<Vec<u8>>>, usize, Option<String>) {
    let mut frames = Vec::new();
    let mut at = 0usize;
    let u32_at = |b: &[u8], i: usize| b.get(i..i + 4).map(|s| u32::from_le_bytes(s.try_into().expect("4 bytes")));
    while at < bytes.len() {
        let Some(len) = u32_at(bytes, at) else { return (frames, at, Some("torn frame header".into())) };
        let body_at = at + 8;
        let Some(body) = bytes.get(body_at..body_at + len as usize) else {
            return (frames, at, Some("torn frame body".into()));
        };
        if bytes[at + 4..at + 8] != check(body) {
            return (frames, at, Some(format!("frame at byte {at} fails its check")));
        }
        let Some(n) = u32_at(body, 0) else { return (frames, at, Some("frame without a count".into())) };
        let mut entries = Vec::with_capacity(n as usize);
        let mut p = 4usize;
        for _ in 0..n {
            let Some(l) = u32_at(body, p) else { return (frames, at, Some("bad entry length".into())) };
            let Some(e) = body.get(p + 4..p + 4 + l as usize) else {
                return (frames, at, Some("entry past its frame".into()));
            };
            entries.push(e.to_vec());
            p += 4 + l as usize;
        }
        frames.push(entries);
        at = body_at + len as usize;
    }
    (frames, at, None)
}

impl Spool {
    fn segment_path(dir: &Path, n: u64) -> PathBuf {
        dir.join(format!("{n:016}.seg"))
    }

    fn open_segment(dir: &Path, n: u64) -> Result<Segment> {
        let path = Self::segment_path(dir, n);
        let file = OpenOptions::new().create(true).append(true).open(&path).map_err(|e| io(&path, e))?;
        let len = file.metadata().map_err(|e| io(&path, e))?.len();
        Ok(Segment { path, file: Arc::new(file), len, unacked: 0 })
    }

    /// Reads the spool directory: every frame of every segment, in order.
    fn recover(dir: &Path) -> Result<Spool> {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let mut numbers = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
            let entry = entry.map_err(|e| io(dir, e))?;
            let name = entry.file_name().to_string_lossy().to_string();
            if let Some(n) = name.strip_suffix(".seg").and_then(|n| n.parse::<u64>().ok()) {
                numbers.push(n);
            }
        }
        numbers.sort_unstable();
        let mut spool = Spool {
            dir: dir.to_path_buf(),
            queue: VecDeque::new(),
            sent: 0,
            segments: BTreeMap::new(),
            next_frame: 0,
            pending_bytes: 0,
            unsynced: Vec::new(),
            closed: false,
            outage: None,
        };
        let last = numbers.last().copied();
        for n in &numbers {
            let path = Self::segment_path(dir, *n);
            let mut bytes = Vec::new();
            File::open(&path).and_then(|mut f| f.read_to_end(&mut bytes)).map_err(|e| io(&path, e))?;
            let (frames, valid, problem) = parse_segment(&bytes);
            if let Some(problem) = problem {
                if Some(*n) != last {
                    return Err(Error::Corrupt(format!(
                        "spool segment {} is damaged before its end ({problem}); move it aside to start",
                        path.display()
                    )));
                }
                // A torn tail: the frame was being written when the process died, and was
                // never acknowledged. Cut it off.
                let f = OpenOptions::new().write(true).open(&path).map_err(|e| io(&path, e))?;
                f.set_len(valid as u64).and_then(|_| f.sync_data()).map_err(|e| io(&path, e))?;
            }
            let mut seg = Self::open_segment(dir, *n)?;
            for entries in frames {
                let bytes = entries.iter().map(|e| e.len() as u64).sum();
                spool.pending_bytes += bytes;
                seg.unacked += 1;
                spool.queue.push_back(Frame {
                    id: spool.next_frame,
                    segment: *n,
                    entries: entries.into_iter().map(Bytes::from).collect(),
                    bytes,
                    done: None,
                    synced: true,
                    since: std::time::Instant::now(),
                });
                spool.next_frame += 1;
            }
            spool.segments.insert(*n, seg);
        }
        if spool.segments.is_empty() {
            spool.segments.insert(1, Self::open_segment(dir, 1)?);
        }
        Ok(spool)
    }

    /// Writes a frame to the newest segment (not yet synced).
    fn write(&mut self, entries: &[Vec<u8>]) -> Result<u64> {
        let body = frame_body(entries);
        let (&n, seg) = self.segments.last_key_value().expect("a segment");
        let n = if seg.len >= SEGMENT_BYTES {
            let next = n + 1;
            self.segments.insert(next, Self::open_segment(&self.dir, next)?);
            next
        } else {
            n
        };
        let seg = self.segments.get_mut(&n).expect("just ensured");
        let mut frame = Vec::with_capacity(8 + body.len());
        frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
        frame.extend_from_slice(&check(&body));
        frame.extend_from_slice(&body);
        (&*seg.file).write_all(&frame).map_err(|e| io(&seg.path, e))?;
        seg.len += frame.len() as u64;
        seg.unacked += 1;
        if !self.unsynced.iter().any(|f| Arc::ptr_eq(f, &seg.file)) {
            self.unsynced.push(seg.file.clone());
        }
        Ok(n)
    }

    /// The ledger acknowledged the front frame: drop it, and its segment once all of it is in.
    fn pop_front(&mut self) -> Option<Frame> {
        let frame = self.queue.pop_front()?;
        self.sent = self.sent.saturating_sub(1);
        self.pending_bytes -= frame.bytes;
        let newest = *self.segments.keys().next_back().expect("a segment");
        if let Some(seg) = self.segments.get_mut(&frame.segment) {
            seg.unacked -= 1;
            if seg.unacked == 0 && frame.segment != newest {
                let seg = self.segments.remove(&frame.segment).expect("present");
                // Removing an acknowledged segment; a failure leaves a file that is replayed
                // (idempotently) on the next start, so it is only reported.
                if let Err(e) = std::fs::remove_file(&seg.path) {
                    eprintln!("spool: could not remove {}: {e}", seg.path.display());
                }
            } else if seg.unacked == 0 && self.queue.is_empty() && seg.len > 0 {
                // Everything is in the ledger: start the newest segment afresh.
                if let Ok(f) = OpenOptions::new().write(true).open(&seg.path)
                    && f.set_len(0).is_ok()
                {
                    seg.len = 0;
                }
            }
        }
        Some(frame)
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
        let (tx, rx) = mpsc::channel::<proto::AppendRequest>(in_flight);
        let call = client.append(tokio_stream::wrappers::ReceiverStream::new(rx));
        let mut tx = Some(tx);
        // Send what fits while the call is being set up (the server reads as it can).
        let result = async {
            let mut acks = call.await?.into_inner();
            loop {
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
            let line = serde_json::json!({
                "code": e.code,
                "message": e.message,
                "index": e.index,
                "entries": frame.entries.iter().map(|b| base64::engine::general_purpose::STANDARD.encode(b)).collect::<Vec<_>>(),
            });
            let path = dir.join("rejected.jsonl");
            let written = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut f| writeln!(f, "{line}").and_then(|_| f.sync_data()));
            eprintln!(
                "ledger refused a spooled batch ({}: {}); kept in {}{}",
                e.code,
                e.message,
                path.display(),
                written.err().map(|e| format!(" (could not write it: {e})")).unwrap_or_default()
            );
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
    fn append(&self, entries: Vec<Vec<u8>>, done: AppendDone) {
        let bytes: u64 = entries.iter().map(|e| e.len() as u64).sum();
        let opens_run = entries.iter().any(|e| ledger_core::Entry::decode(e).is_ok_and(|e| e.seq == 0));
        let limit = if opens_run { self.shared.max_bytes } else { self.shared.max_bytes.saturating_mul(2) };
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
                match s.write(&entries) {
                    Ok(segment) => {
                        let id = s.next_frame;
                        s.next_frame += 1;
                        s.pending_bytes += bytes;
                        s.queue.push_back(Frame {
                            id,
                            segment,
                            entries: entries.into_iter().map(Bytes::from).collect(),
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
        let mut client = self.client.clone();
        let run = run.to_string();
        Box::pin(async move {
            match client.get_run(proto::GetRunRequest { run }).await {
                Ok(r) => {
                    let r = r.into_inner();
                    Ok(r.indices.into_iter().zip(r.entries).collect())
                }
                Err(s) if s.code() == tonic::Code::NotFound => Ok(Vec::new()),
                Err(s) => Err(status_error(&s)),
            }
        })
    }

    fn receipt(&self, run: &str, wait: Duration) -> BoxFuture<'_, std::result::Result<String, ReceiptError>> {
        let mut client = self.client.clone();
        let run = run.to_string();
        let backlog = self.backlog();
        Box::pin(async move {
            let wait_ms = u32::try_from(wait.as_millis()).unwrap_or(u32::MAX);
            match client.get_receipt(proto::GetReceiptRequest { run: run.clone(), wait_ms }).await {
                Ok(r) => Ok(r.into_inner().json),
                Err(s)
                    if backlog > 0 && matches!(s.code(), tonic::Code::NotFound | tonic::Code::FailedPrecondition) =>
                {
                    Err(ReceiptError::Unavailable(format!(
                        "{backlog} batches wait in the gateway's spool for the ledger; the run's seal may be among them"
                    )))
                }
                Err(s) if s.code() == tonic::Code::NotFound => Err(ReceiptError::UnknownRun(run)),
                Err(s) if s.code() == tonic::Code::FailedPrecondition && s.message().starts_with("run_unsealed") => {
                    Err(ReceiptError::Unsealed(run))
                }
                Err(s) if s.code() == tonic::Code::FailedPrecondition => Err(ReceiptError::NotYetCheckpointed(run)),
                Err(s) => Err(ReceiptError::Unavailable(format!("{} ({:?})", s.message(), s.code()))),
            }
        })
    }

    fn backlog(&self) -> u64 {
        self.shared.lock().queue.len() as u64
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

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(entries: &[Vec<u8>]) -> Vec<u8> {
        let body = frame_body(entries);
        let mut f = (body.len() as u32).to_le_bytes().to_vec();
        f.extend_from_slice(&check(&body));
        f.extend_from_slice(&body);
        f
    }

    #[test]
    fn frames_round_trip_and_a_torn_or_damaged_tail_is_found() {
        let a = vec![b"one".to_vec(), b"two".to_vec()];
        let b = vec![vec![7u8; 300]];
        let mut seg = frame(&a);
        let first = seg.len();
        seg.extend(frame(&b));
        let (frames, valid, problem) = parse_segment(&seg);
        assert_eq!((frames, valid, problem), (vec![a.clone(), b.clone()], seg.len(), None));
        // Every cut inside the second frame leaves exactly the first, and says why.
        for cut in first + 1..seg.len() {
            let (frames, valid, problem) = parse_segment(&seg[..cut]);
            assert_eq!((frames.len(), valid), (1, first), "cut at {cut}");
            assert!(problem.is_some());
        }
        // One flipped byte in the second frame's body fails its check.
        let mut bad = seg.clone();
        bad[first + 20] ^= 1;
        let (frames, valid, problem) = parse_segment(&bad);
        assert_eq!((frames.len(), valid), (1, first));
        assert!(problem.unwrap().contains("fails its check"));
    }

    #[test]
    fn recovery_cuts_a_torn_tail_and_refuses_damage_before_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("spool");
        std::fs::create_dir_all(&spool).unwrap();
        let whole = frame(&[b"kept".to_vec()]);
        let mut torn = whole.clone();
        torn.extend_from_slice(&frame(&[b"lost".to_vec()])[..9]);
        std::fs::write(spool.join(format!("{:016}.seg", 1)), &torn).unwrap();
        let s = Spool::recover(&spool).unwrap();
        assert_eq!(s.queue.len(), 1);
        assert_eq!(s.queue[0].entries, vec![b"kept".to_vec()]);
        assert_eq!(std::fs::metadata(spool.join(format!("{:016}.seg", 1))).unwrap().len(), whole.len() as u64);
        drop(s);
        // Damage in a segment that is not the newest is not a torn write: refuse to guess.
        let mut damaged = whole.clone();
        damaged[10] ^= 1;
        std::fs::write(spool.join(format!("{:016}.seg", 1)), &damaged).unwrap();
        std::fs::write(spool.join(format!("{:016}.seg", 2)), &whole).unwrap();
        let Err(e) = Spool::recover(&spool) else { panic!("a damaged segment was accepted") };
        let e = e.to_string();
        assert!(e.contains("damaged before its end"), "{e}");
    }
}
