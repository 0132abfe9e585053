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

use std::sync::Arc;

use async_nats::jetstream;
use bytes::Bytes;
use ledger_core::Log;
use ledger_core::entry::EntryView;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::names::LogName;
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

/// Follows `name`'s ingest stream into `log` until `stop`, from just after the log's stored
/// position, sending each message's outcome (in stream order) to `outcomes` once it is durable.
/// Returns when stopped (after every message read has been answered) or when the stream fails.
pub async fn follow(
    js: &jetstream::Context,
    name: &LogName,
    log: Arc<Log>,
    outcomes: mpsc::UnboundedSender<Outcome>,
    stop: CancellationToken,
) -> Result<(), Error> {
    let stream_name = name.ingest_stream();
    // It must exist: a deployment is provisioned first (`ledger-server bus init`).
    js.get_stream(&stream_name).await.map_err(|e| Error::nats(format!("opening stream {stream_name}"), e))?;
    let prefix = format!("ledger.{name}.in.");

    // The log is fed from one thread, in stream order: `append_at` may block for room.
    let (tx, mut rx) = mpsc::channel::<(u64, String, Bytes)>(READ_AHEAD);
    let applier_log = log.clone();
    let applier = std::thread::Builder::new()
        .name(format!("bus-apply-{name}"))
        .spawn(move || {
            while let Some((position, gateway, body)) = rx.blocking_recv() {
                apply(&applier_log, position, gateway, &body, &outcomes);
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
            let body = m.payload.clone();
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                sent = tx.send((position, gateway, body)) => {
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
    result
}

/// Hands one message to the log; its outcome goes out once the log answered (durably).
fn apply(log: &Log, position: u64, gateway: String, body: &Bytes, outcomes: &mpsc::UnboundedSender<Outcome>) {
    let out = outcomes.clone();
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
    let admit = move |e: &EntryView<'_>| {
        if e.actor() == bound {
            Ok(())
        } else {
            Err(ledger_core::Error::NotPermitted(format!(
                "an entry of actor {:?} on gateway {bound:?}'s subject: a gateway writes only as itself",
                e.actor()
            )))
        }
    };
    log.append_at(entries, position, admit, move |r| {
        let _ = out.send(Outcome { position, gateway, result: r.map_err(|e| Refused::Log(Arc::new(e))) });
    });
}
