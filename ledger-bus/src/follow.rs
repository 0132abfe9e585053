//! Following a log's ingest stream into a [`Log`]: the sequencer's half that every process of a
//! bus deployment runs (the signer, its standby and each read replica alike).
//!
//! The stream is the order of record. A follower reads it in stream order from just after the
//! position its log stored ([`Log::position`]) and hands every message to the log at its stream
//! sequence ([`Log::append_at`]), which stores that position with the entries. Every decision is
//! a function of the message, its subject and the log so far:
//! - a body that is not a batch (`ledger_core::bus`) is refused;
//! - an entry whose `actor` is not the gateway named by the subject it came on
//!   (`ledger.<L>.in.<gateway>`) refuses its batch: a gateway writes only as itself (and the
//!   servers' permissions let it publish only on its own subject);
//! - the log's own run rules (SPEC §2: gaps, conflicts, idempotent duplicates) decide the rest.
//!
//! Refused messages append nothing and their positions are stored all the same. So any process
//! that replays the stream reaches the same tree, byte for byte, whatever its commit groups and
//! however often it stopped.
//!
//! A message with the [`PAYLOAD_HEADER`] carries a payload's bytes instead of entries: it is
//! stored in the log's payload space before its position is recorded (without this process's
//! limits, so that every follower decides alike: only bytes whose BLAKE3 is not the header's are
//! refused; the bytes of a payload erased earlier in the stream are not kept, and the message
//! succeeds, whether or not that erasure was durable yet when the bytes came: if it was not, its
//! completion deletes them), in the same ordered write-ahead log, so a later entry naming it is
//! durable no earlier than the bytes. When a batch appends `payload.erased` entries, the bytes
//! they name are deleted once the entries are durable (the erasure rule's two steps,
//! `ledger_core::payload`), on every follower, and so are the stream's messages that carried
//! them: each follower records which messages carried which payload
//! (`PayloadStore::note_message`) and deletes the erased ones from the stream (a message
//! already deleted by another follower counts as done), again at every start until it is done.
//! A follower that replays the stream later never sees those bytes; a deleted message is a gap in
//! the stream sequence, which appends nothing, so the tree is the same.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_nats::jetstream;
use bytes::Bytes;
use ledger_core::entry::EntryView;
use ledger_core::{Entry, Event, Hash, Kind, Log, PayloadStore};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::names::{LogName, PAYLOAD_HEADER};
use crate::ordered::{Ordered, Start};

/// What became of one ingest message.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// Its stream sequence.
    pub position: u64,
    /// The gateway whose subject it came on.
    pub gateway: String,
    /// Each entry's index, or why the batch was refused.
    pub result: Result<Vec<u64>, Refused>,
}

/// Why a message appended nothing.
#[derive(Clone, Debug)]
pub enum Refused {
    /// Its body is not a batch.
    NotABatch(ledger_core::bus::BatchError),
    /// Its payload header is not a BLAKE3 hash in lowercase hex.
    BadPayloadHeader(String),
    /// The log refused its entries (SPEC §2, the actor binding), or could not take them at all
    /// ([`ledger_core::Error::Poisoned`]: not a decision about the message, see
    /// [`Refused::is_decision`]).
    Log(Arc<ledger_core::Error>),
}

impl Refused {
    /// Whether this is a decision about the message that every follower makes alike (and so may
    /// be reported), rather than this process's log failing.
    pub fn is_decision(&self) -> bool {
        use ledger_core::Error as E;
        !matches!(self, Refused::Log(e)
            if matches!(**e, E::Poisoned(_) | E::Closed | E::Storage(_) | E::Corrupt(_) | E::Io { .. }))
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::NotABatch(e) => e.fmt(f),
            Refused::BadPayloadHeader(h) => {
                write!(f, "{PAYLOAD_HEADER}: {h:?} is not a BLAKE3 hash in lowercase hex (64 digits)")
            }
            Refused::Log(e) => e.fmt(f),
        }
    }
}

impl PartialEq for Refused {
    /// Alike when they say the same.
    fn eq(&self, other: &Refused) -> bool {
        self.to_string() == other.to_string()
    }
}

/// Messages read but not yet handed to the log: the reader stays this far ahead.
const READ_AHEAD: usize = 256;

/// What the applier thread hands each message to.
struct Applier {
    log: Arc<Log>,
    payloads: PayloadStore,
    /// Wakes the task that deletes erased payloads' messages from the stream (for one payload).
    sweep: mpsc::UnboundedSender<Option<Hash>>,
    outcomes: mpsc::UnboundedSender<Outcome>,
}

/// One ingest message, as the applier takes it.
struct Message {
    position: u64,
    gateway: String,
    /// The payload header, when the message carries a payload.
    payload: Option<String>,
    body: Bytes,
}

/// Follows `name`'s ingest stream into `log` (its payloads into `payloads`, which must be the
/// log's store's, with [`ledger_core::PayloadLimits::UNLIMITED`]) until `stop`, from just after
/// the log's stored position, sending each message's outcome (in stream order) to `outcomes`
/// once it is durable. Returns when stopped (after every message read has been answered) or when
/// the stream fails.
pub async fn follow(
    js: &jetstream::Context,
    name: &LogName,
    log: Arc<Log>,
    payloads: PayloadStore,
    outcomes: mpsc::UnboundedSender<Outcome>,
    stop: CancellationToken,
) -> Result<(), Error> {
    let stream_name = name.ingest_stream();
    // It must exist: a deployment is provisioned first (`ledger-server bus init`).
    js.get_stream(&stream_name).await.map_err(|e| Error::nats(format!("opening stream {stream_name}"), e))?;
    let prefix = format!("ledger.{name}.in.");

    // Erased payloads' messages are deleted from the stream by a task of their own, woken at
    // start and after each erasure is durable.
    let (sweep_tx, sweep_rx) = mpsc::unbounded_channel::<Option<Hash>>();
    // At start, every record: what a crash left undone.
    let _ = sweep_tx.send(None);
    let sweeper = tokio::spawn(sweep(js.clone(), stream_name.clone(), payloads.clone(), sweep_rx));

    // The log is fed from one thread, in stream order: `append_at` may block for room.
    let (tx, mut rx) = mpsc::channel::<Message>(READ_AHEAD);
    let a = Applier { log: log.clone(), payloads, sweep: sweep_tx, outcomes };
    let applier = std::thread::Builder::new()
        .name(format!("bus-apply-{name}"))
        .spawn(move || {
            while let Some(m) = rx.blocking_recv() {
                match &m.payload {
                    Some(header) => store_payload(&a, m.position, m.gateway.clone(), header, &m.body),
                    None => apply(&a, m.position, m.gateway, &m.body),
                }
            }
        })
        .map_err(|e| Error::nats("starting the stream's applier thread", e))?;

    // The stream's order is the order of record: read from just after the stored position,
    // through server failures (`Ordered`), each message handed on exactly once.
    let mut reader = Ordered::new(js.clone(), stream_name, None, Start::At(log.position().unwrap_or(0) + 1));
    let result = async {
        while let Some(m) = reader.next(&stop).await {
            let position = m
                .info()
                .map_err(|e| Error::nats(format!("reading stream {}", name.ingest_stream()), e))?
                .stream_sequence;
            let gateway = m.subject.strip_prefix(prefix.as_str()).unwrap_or_default().to_owned();
            let payload = m.headers.as_ref().and_then(|h| h.get(PAYLOAD_HEADER)).map(|v| v.as_str().to_owned());
            let message = Message { position, gateway, payload, body: m.payload.clone() };
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                sent = tx.send(message) => {
                    if sent.is_err() {
                        return Err(Error::nats("applying the stream", "the applier thread stopped"));
                    }
                }
            }
        }
        Ok(())
    }
    .await;
    drop(tx);
    tokio::task::spawn_blocking(move || applier.join()).await.ok();
    sweeper.abort();
    result
}

/// Deletes from the stream the messages recorded as carrying an erased payload's bytes, each time
/// it is woken: the woken payload's (`Some`), or every erased payload's (`None`, at start); a
/// message it cannot delete now is tried again at the next start.
async fn sweep(
    js: jetstream::Context,
    stream_name: String,
    payloads: PayloadStore,
    mut wake: mpsc::UnboundedReceiver<Option<Hash>>,
) {
    while let Some(first) = wake.recv().await {
        let mut which = vec![first];
        while let Ok(w) = wake.try_recv() {
            which.push(w);
        }
        let reading = payloads.clone();
        let read = tokio::task::spawn_blocking(move || {
            let which = if which.contains(&None) { vec![None] } else { which };
            let mut out = Vec::new();
            for of in which {
                out.extend(reading.erased_messages(of.as_ref())?);
            }
            Ok::<_, ledger_core::Error>(out)
        })
        .await;
        let erased = match read.map_err(|e| e.to_string()).and_then(|r| r.map_err(|e| e.to_string())) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("ledger-bus: reading which erased payloads' messages to delete: {e}");
                continue;
            }
        };
        if erased.is_empty() {
            continue;
        }
        let stream = match js.get_stream(&stream_name).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("ledger-bus: opening stream {stream_name} to delete erased payloads: {e}");
                continue;
            }
        };
        for (hash, position) in erased {
            let deleted = match stream.delete_message(position).await {
                Ok(_) => true,
                // Deleted already, by another follower or before a crash (JetStream's "sequence
                // not found", error code 10043).
                Err(e) if e.to_string().contains("error code 10043") => true,
                Err(e) => {
                    eprintln!(
                        "ledger-bus: deleting message {position} (erased payload {}) from {stream_name}: {e}; trying again later",
                        hex::encode(hash)
                    );
                    false
                }
            };
            if deleted && let Err(e) = payloads.forget_message(&hash, position) {
                eprintln!("ledger-bus: {e}");
            }
        }
    }
}

/// Stores a payload message's bytes, then records its position; its outcome (no indices, or the
/// refusal) goes out once the position is durable, and with it the bytes (one ordered WAL).
fn store_payload(a: &Applier, position: u64, gateway: String, header: &str, body: &Bytes) {
    let (log, payloads, sweep, out) = (&a.log, &a.payloads, &a.sweep, a.outcomes.clone());
    let stored: Result<(), Refused> =
        parse_hash(header).ok_or_else(|| Refused::BadPayloadHeader(header.to_owned())).and_then(|hash| {
            match payloads.put(&hash, body) {
                // Erased earlier in the stream: nothing to keep. Not a refusal, since whether
                // the erasure was already durable here is timing, not the stream's order.
                Ok(_) => payloads.note_message(&hash, position).map_err(|e| Refused::Log(Arc::new(e))),
                // Which message carried the bytes, for an erasure to delete it too (at once,
                // for a payload erased already).
                Err(ledger_core::Error::PayloadErased { .. }) => {
                    let noted = payloads.note_message(&hash, position).map_err(|e| Refused::Log(Arc::new(e)));
                    let _ = sweep.send(Some(hash));
                    noted
                }
                Err(e) => Err(Refused::Log(Arc::new(e))),
            }
        });
    log.append_at(
        Vec::<Bytes>::new(),
        position,
        |_| Ok(()),
        move |r| {
            let result = match (r, stored) {
                (Err(e), _) => Err(Refused::Log(Arc::new(e))),
                (Ok(_), Err(why)) => Err(why),
                (Ok(_), Ok(())) => Ok(Vec::new()),
            };
            let _ = out.send(Outcome { position, gateway, result });
        },
    );
}

/// A BLAKE3 hash in lowercase hex.
fn parse_hash(hex_hash: &str) -> Option<Hash> {
    if hex_hash.len() != 64 || hex_hash.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    hex::decode(hex_hash).ok()?.try_into().ok()
}

/// The hashes the `payload.erased` entries of a batch body name (decoded again, only for a batch
/// the log's admission saw such an entry in).
fn erasures(body: &Bytes) -> Vec<Hash> {
    let Ok(entries) = ledger_core::bus::decode_batch(body) else { return Vec::new() };
    entries
        .iter()
        .filter_map(|e| match Entry::decode(e) {
            Ok(Entry { event: Event::PayloadErased { hash, .. }, .. }) => Some(hash),
            _ => None,
        })
        .collect()
}

/// Hands one message to the log; its outcome goes out once the log answered (durably).
fn apply(a: &Applier, position: u64, gateway: String, body: &Bytes) {
    let (log, payloads, sweep, out) = (&a.log, &a.payloads, &a.sweep, a.outcomes.clone());
    let entries = match ledger_core::bus::decode_batch(body) {
        Ok(entries) => entries,
        Err(why) => {
            // Nothing to append; the position is stored all the same.
            return log.append_at(
                Vec::<Bytes>::new(),
                position,
                |_| Ok(()),
                move |r| {
                    let result = Err(r.map_or_else(|e| Refused::Log(Arc::new(e)), |_| Refused::NotABatch(why)));
                    let _ = out.send(Outcome { position, gateway, result });
                },
            );
        }
    };
    let bound = gateway.clone();
    // The log checks every entry through `admit` anyway: it notes there, at no cost, whether
    // the batch holds an erasure.
    let erasing = Arc::new(AtomicBool::new(false));
    let seen = erasing.clone();
    let admit = move |e: &EntryView<'_>| {
        if e.kind() == Kind::PayloadErased {
            seen.store(true, Ordering::Relaxed);
        }
        if e.actor() == bound {
            Ok(())
        } else {
            Err(ledger_core::Error::NotPermitted(format!(
                "an entry of actor {:?} on gateway {bound:?}'s subject: a gateway writes only as itself",
                e.actor()
            )))
        }
    };
    let (payloads, sweep, body) = (payloads.clone(), sweep.clone(), body.clone());
    log.append_at(entries, position, admit, move |r| {
        // The erasure's second step, once its entry is durable. Bytes left by a failure here are
        // never served (a read of an erased payload deletes them first).
        if r.is_ok() && erasing.load(Ordering::Relaxed) {
            for hash in erasures(&body) {
                if let Err(e) = payloads.erase_bytes(&hash) {
                    eprintln!("ledger-bus: deleting the bytes of erased payload {}: {e}", hex::encode(hash));
                }
                let _ = sweep.send(Some(hash));
            }
        }
        let _ = out.send(Outcome { position, gateway, result: r.map_err(|e| Refused::Log(Arc::new(e))) });
    });
}
