//! Signed checkpoints on the bus: only the lease holder's are published, and every process
//! serves exactly those.
//!
//! Every process that has the log key (the signer and its standby) opens its log with
//! [`signing`]: its checkpointer signs as the tree grows, but a signed checkpoint is served
//! only once [`sign`] has published it to `ledger.<L>.cp` — which it does only within a valid
//! lease term — or once [`serve`] has read it from there. So every process serves the same
//! notes, whoever signed them, and a standby that takes over continues the same sequence. A read
//! replica opens its log with the verifier key only and runs [`serve`] alone.
//!
//! Each note carries two extension lines after its root (FORMATS §4):
//! - `a2a-ledger/stream <stream> <seq>`: the stream sequence of the message whose entries made
//!   the tree reach the note's size ([`Log::position_at`]), so a function of the size: every
//!   process that applied the stream agrees on it, and [`serve`] checks it against its own;
//! - `a2a-ledger/lease <term>`: the lease term it was signed under, equal to the message's
//!   `A2A-Ledger-Lease` header, never lower than an earlier note's.
//!
//! Fencing (durability and safety rules kept here):
//! - a note is published only while the term is valid by the holder's own clock, checked right
//!   before the publish;
//! - each publish carries `Nats-Expected-Last-Subject-Sequence` (the last checkpoint message this
//!   holder saw): a holder whose view is stale — another published since — is refused by the
//!   stream itself, and reads the subject again before trying anew; a newer term's message there
//!   ends its attempts until it holds a term again;
//! - each message carries `A2A-Ledger-Lease: <term>`, and [`serve`] ignores a message of an older
//!   term than one it has served;
//! - a new term publishes nothing until the holder's log has applied the ingest stream as far as
//!   it reached when the term began, so that it never publishes a note smaller than the last
//!   holder's (it would be consistent, but served by nobody);
//! - a note whose root disagrees with the serving process's own tree stops [`serve`] with an
//!   error: the two processes applied the same stream differently, which the determinism of
//!   `follow` rules out, so it is evidence to keep, not something to paper over.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishErrorKind};
use ledger_core::log::{Extensions, SignedCheckpoint, Witnessing};
use ledger_core::{Checkpoint, Log};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::lease::Term;
use crate::names::LogName;
use crate::ordered::{Ordered, Start};

/// The header naming the lease term a checkpoint message was published under.
pub const LEASE_HEADER: &str = "A2A-Ledger-Lease";

pub use ledger_core::checkpoint::{LEASE_LINE, STREAM_LINE};

/// The newest checkpoint a log opened with [`signing`] signed, and the term it signs under.
#[derive(Debug)]
pub struct Signed {
    newest: watch::Receiver<Option<Arc<SignedCheckpoint>>>,
    term: Arc<AtomicU64>,
}

/// How a log with the key is opened on the bus ([`signing`]): `witnessing` and `extensions` go
/// into its `LogConfig`, `signed` to [`sign`].
#[derive(Debug)]
pub struct Signing {
    /// Hands each signed checkpoint to [`sign`] instead of serving it.
    pub witnessing: Witnessing,
    /// The stream and lease lines (module docs).
    pub extensions: Extensions,
    /// What [`sign`] reads.
    pub signed: Signed,
}

/// How a log with the key is opened on the bus: its signed checkpoints go to [`sign`] instead of
/// being served, each with the stream and lease lines, and the newest stored one (it was
/// published once) is served again at open.
pub fn signing(name: &LogName) -> Signing {
    let (tx, newest) = watch::channel(None);
    let witnessing = Witnessing {
        accepts: Arc::new(|_, _| true),
        signed: Arc::new(move |cp| {
            tx.send_replace(Some(cp));
        }),
    };
    let term = Arc::new(AtomicU64::new(0));
    let (stream, current) = (name.ingest_stream(), term.clone());
    let extensions = Extensions(Arc::new(move |_size, position| {
        vec![
            format!("{STREAM_LINE} {stream} {}", position.unwrap_or(0)),
            format!("{LEASE_LINE} {}", current.load(Ordering::Acquire)),
        ]
    }));
    Signing { witnessing, extensions, signed: Signed { newest, term } }
}

/// The last checkpoint message on the subject: its stream sequence and term (0, 0 for none).
async fn last_published(js: &jetstream::Context, name: &LogName) -> Result<(u64, u64), Error> {
    let out = name.out_stream();
    let stream = js.get_stream(&out).await.map_err(|e| Error::nats(format!("opening stream {out}"), e))?;
    match stream.get_last_raw_message_by_subject(&name.checkpoint_subject()).await {
        Ok(m) => Ok((m.sequence, term_of(&m.headers))),
        Err(e) if e.kind() == jetstream::stream::LastRawMessageErrorKind::NoMessageFound => Ok((0, 0)),
        Err(e) => Err(Error::nats(format!("reading the last checkpoint of log {name}"), e)),
    }
}

fn term_of(headers: &HeaderMap) -> u64 {
    headers.get(LEASE_HEADER).and_then(|v| v.as_str().parse().ok()).unwrap_or(0)
}

/// Publishes the log's checkpoints to `ledger.<L>.cp` while `terms` says this process holds the
/// lease, until `stop`. `signed` comes from the [`signing`] the log was opened with.
pub async fn sign(
    js: &jetstream::Context,
    name: &LogName,
    log: Arc<Log>,
    signed: Signed,
    mut terms: watch::Receiver<Option<Term>>,
    stop: CancellationToken,
) -> Result<(), Error> {
    let subject = name.checkpoint_subject();
    // The term this process publishes under once ready, and the last message it knows of.
    let mut ready: Option<u64> = None;
    let mut expected = 0u64;
    let mut published = 0u64;
    let Signed { newest: mut signed, term: signing_term } = signed;
    loop {
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            r = signed.changed() => if r.is_err() { return Ok(()) },
            // Each renewal changes the term too: a holder still catching up looks again at
            // least every lease time / 3 even when nothing is signed meanwhile.
            r = terms.changed() => if r.is_err() { return Ok(()) },
        }
        let Some(term) = *terms.borrow_and_update() else {
            ready = None;
            continue;
        };
        if ready != Some(term.acquired) {
            let (seq, last_term) = last_published(js, name).await?;
            if last_term > term.acquired {
                continue; // a newer term published: this one is over
            }
            let ingest = name.ingest_stream();
            let mut s = js.get_stream(&ingest).await.map_err(|e| Error::nats(format!("opening stream {ingest}"), e))?;
            let last_in =
                s.info().await.map_err(|e| Error::nats(format!("reading stream {ingest}"), e))?.state.last_sequence;
            if log.position().unwrap_or(0) < last_in {
                continue; // not caught up with what the last holder may have covered
            }
            expected = seq;
            ready = Some(term.acquired);
            // The newest signature may predate the term: publish it now rather than waiting
            // for the tree to grow.
        }
        // Notes are signed under the current term from now on; one signed before it began is
        // signed again (the same tree, the new lease line) rather than published.
        signing_term.store(term.acquired, Ordering::Release);
        let mut cp = log.signed_checkpoint();
        if !cp.note.is_empty() && cp.checkpoint.lease_term() != Some(term.acquired) {
            let l = log.clone();
            cp = tokio::task::spawn_blocking(move || l.sign_checkpoint())
                .await
                .map_err(|e| Error::nats("signing a checkpoint", e))?
                .map_err(|e| Error::nats("signing a checkpoint", e))?;
        }
        if cp.note.is_empty()
            || cp.checkpoint.size <= published
            || cp.checkpoint.lease_term() != Some(term.acquired)
            || !term.valid_at(Instant::now())
        {
            continue;
        }
        let mut h = HeaderMap::new();
        h.insert("Nats-Expected-Last-Subject-Sequence", expected.to_string().as_str());
        h.insert(LEASE_HEADER, term.acquired.to_string().as_str());
        let sent = js.publish_with_headers(subject.clone(), h, cp.note.clone().into()).await;
        let acked = match sent {
            Ok(ack) => ack.await,
            Err(e) => Err(e),
        };
        match acked {
            Ok(ack) => {
                expected = ack.sequence;
                published = cp.checkpoint.size;
                log.publish(&cp.note).map_err(|e| Error::nats(format!("serving checkpoint {published}"), e))?;
            }
            // Another process published since this one looked: look again before any more.
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => ready = None,
            Err(e) => eprintln!("ledger-bus: publishing checkpoint {} of log {name}: {e}", cp.checkpoint.size),
        }
    }
}

/// Serves, in `log`, every checkpoint published to `ledger.<L>.cp` (the newest first, then each
/// as it comes), once the log's own tree has reached it, until `stop`. A note whose lease line
/// differs from its message's term is ignored; one whose stream line differs from the log's own
/// record of that size ([`Log::position_at`]) stops it with an error, like one whose root does.
pub async fn serve(
    js: &jetstream::Context,
    name: &LogName,
    log: Arc<Log>,
    stop: CancellationToken,
) -> Result<(), Error> {
    let mut reader = Ordered::new(js.clone(), name.out_stream(), Some(name.checkpoint_subject()), Start::LastOfSubject);
    let key = log.descriptor().verifier_key().map_err(|e| Error::nats("the log's verifier key", e))?;
    let mut highest_term = 0;
    loop {
        let Some(m) = reader.next(&stop).await else { return Ok(()) };
        let term = m.headers.as_ref().map_or(0, term_of);
        if term < highest_term {
            continue; // a stale holder's, published before it learnt of the newer term
        }
        highest_term = term;
        let note = String::from_utf8_lossy(&m.payload).into_owned();
        let cp = match Checkpoint::open(&note, &key) {
            Ok(cp) => cp,
            Err(e) => {
                eprintln!("ledger-bus: a checkpoint message of log {name} that does not verify, ignored: {e}");
                continue;
            }
        };
        if cp.lease_term() != Some(term) {
            eprintln!("ledger-bus: a checkpoint of log {name} whose lease line is not its term {term}, ignored");
            continue;
        }
        let size = cp.size;
        // The note covers what this log may not have applied yet: wait for it.
        while log.durable_size() < size {
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                () = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
        }
        let ours = log.position_at(size).map_err(|e| Error::nats(format!("reading the position at size {size}"), e))?;
        let stream = name.ingest_stream();
        if size > 0 && cp.stream_position() != Some((stream.as_str(), ours.unwrap_or(0))) {
            return Err(Error::nats(
                format!("serving checkpoint {size} of log {name}"),
                format!(
                    "its stream line says {:?} but this log reached size {size} at {stream} position {ours:?}: the two applied the stream differently",
                    cp.extension(STREAM_LINE)
                ),
            ));
        }
        log.publish(&note).map_err(|e| Error::nats(format!("serving checkpoint {size} of log {name}"), e))?;
    }
}
