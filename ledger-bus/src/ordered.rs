//! A stream's messages in stream order from a given sequence, through server failures.
//!
//! Every reader of the bus (a follower of the ingest stream, a server of checkpoints, a gateway
//! reading its results) reads with an ephemeral ordered consumer, which costs the cluster
//! nothing and keeps no state there: the reader's position is its own. But an ordered consumer
//! lives on one server, and when that server dies its client-side stream can stall without an
//! error (seen on a three-node cluster with the stream leader SIGKILLed: followers stopped at
//! the last message before the kill). So this reader keeps its own next sequence and, whenever
//! nothing arrives for [`STALL`] while the stream holds more for it, or the consumer fails,
//! creates a new consumer from that sequence. Nothing is skipped and nothing is delivered twice:
//! a message below the next sequence (a new consumer's overlap) is dropped here.

use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

/// How long a reader waits for a message before it asks whether the stream holds more.
pub const STALL: Duration = Duration::from_secs(2);
/// The pause before creating a consumer again after one could not be created or failed.
const RETRY: Duration = Duration::from_millis(250);

/// Where an [`Ordered`] reader starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// At this stream sequence (1 for the beginning).
    At(u64),
    /// At the subject's last message (or the next one, if it has none yet); a reader of the whole
    /// stream starts after its last message.
    LastOfSubject,
    /// At the first message stored after the reader is created.
    New,
}

/// Reads one stream (optionally one subject of it) in order; see the module docs.
pub struct Ordered {
    js: jetstream::Context,
    stream: String,
    subject: Option<String>,
    start: Start,
    /// The next sequence to deliver, once anything was delivered (or `Start::At`).
    next: Option<u64>,
    messages: Option<consumer::pull::Ordered>,
    /// The current consumer's name (asked about when it stalls).
    consumer: Option<String>,
}

impl std::fmt::Debug for Ordered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ordered")
            .field("stream", &self.stream)
            .field("subject", &self.subject)
            .field("next", &self.next)
            .finish()
    }
}

impl Ordered {
    /// A reader of `stream` (only `subject`, if given) from `start`.
    pub fn new(js: jetstream::Context, stream: String, subject: Option<String>, start: Start) -> Ordered {
        let next = match start {
            Start::At(seq) => Some(seq.max(1)),
            _ => None,
        };
        Ordered { js, stream, subject, start, next, messages: None, consumer: None }
    }

    /// The next message, or `None` once `stop` is cancelled. Failures of the servers are waited
    /// out (each reported on stderr), never returned.
    pub async fn next(&mut self, stop: &CancellationToken) -> Option<jetstream::Message> {
        loop {
            if self.messages.is_none() {
                match self.open().await {
                    Ok(m) => self.messages = Some(m),
                    Err(e) => {
                        eprintln!("ledger-bus: following stream {}: {e}; trying again", self.stream);
                        if pause(stop, RETRY).await {
                            return None;
                        }
                        continue;
                    }
                }
            }
            let messages = self.messages.as_mut().expect("opened above");
            let got = tokio::select! {
                () = stop.cancelled() => return None,
                got = tokio::time::timeout(STALL, messages.next()) => got,
            };
            match got {
                Ok(Some(Ok(m))) => {
                    let Ok(info) = m.info() else { continue };
                    let seq = info.stream_sequence;
                    if self.next.is_some_and(|n| seq < n) {
                        continue; // a new consumer's overlap with what was delivered
                    }
                    self.next = Some(seq + 1);
                    return Some(m);
                }
                Ok(Some(Err(e))) => {
                    eprintln!("ledger-bus: reading stream {}: {e}; following it again", self.stream);
                    self.messages = None;
                    if pause(stop, RETRY).await {
                        return None;
                    }
                }
                Ok(None) => self.messages = None,
                Err(_) => {
                    if behind(&self.js, &self.stream, self.subject.as_deref(), self.consumer.as_deref(), self.next)
                        .await
                    {
                        eprintln!(
                            "ledger-bus: nothing from stream {} for {STALL:?} while it holds more; following it again from {:?}",
                            self.stream, self.next
                        );
                        self.messages = None;
                    }
                }
            }
        }
    }

    async fn open(&mut self) -> Result<consumer::pull::Ordered, async_nats::Error> {
        let mut stream = self.js.get_stream(&self.stream).await?;
        // Where a reader starts is fixed on its first opening, as a sequence: a consumer created
        // again after a failure continues from there, never from "the last" or "new" again.
        let next = match (self.next, self.start, &self.subject) {
            (Some(seq), _, _) => seq,
            (None, Start::LastOfSubject, Some(subject)) => {
                match stream.get_last_raw_message_by_subject(subject).await {
                    Ok(m) => m.sequence,
                    Err(e) if e.kind() == jetstream::stream::LastRawMessageErrorKind::NoMessageFound => {
                        stream.info().await?.state.last_sequence + 1
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            (None, _, _) => stream.info().await?.state.last_sequence + 1,
        };
        self.next = Some(next);
        // Named, so that the create request's subject ends with the filter: a server can then
        // allow a client to read only its own subject (`LogName::gateway_permissions`).
        let mut id = [0u8; 8];
        getrandom::fill(&mut id).map_err(|e| format!("a consumer name: {e}"))?;
        let name = format!("ordered-{}", id.iter().map(|b| format!("{b:02x}")).collect::<String>());
        self.consumer = Some(name.clone());
        let config = consumer::pull::OrderedConfig {
            name: Some(name),
            filter_subject: self.subject.clone().unwrap_or_default(),
            deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence: next },
            ..Default::default()
        };
        Ok(stream.create_consumer(config).await?.messages().await?)
    }
}

/// Whether the reader is stalled: the stream holds a message at or after `next` that has not
/// arrived. A reader of the whole stream asks the stream's state (when it cannot tell, no: the
/// next stall asks again). A reader of one subject asks its consumer, since a gateway may read
/// nothing of the stream but its own subject (`LogName::gateway_permissions` has no message
/// reads): stalled when the consumer has messages pending or says it delivered one that never
/// came, or when it cannot be asked (its server is gone: a new consumer costs only an overlap,
/// which is dropped). A free function over the reader's fields, so that the reader need not be
/// `Sync` for its futures to be `Send`.
async fn behind(
    js: &jetstream::Context,
    stream: &str,
    subject: Option<&str>,
    consumer: Option<&str>,
    next: Option<u64>,
) -> bool {
    let Some(next) = next else { return false };
    let Ok(mut stream) = js.get_stream(stream).await else { return false };
    match (subject, consumer) {
        (None, _) => stream.info().await.is_ok_and(|i| i.state.last_sequence >= next),
        (Some(_), None) => true,
        (Some(_), Some(name)) => match stream.consumer_info(name).await {
            Ok(i) => i.num_pending > 0 || i.delivered.stream_sequence >= next,
            Err(_) => true,
        },
    }
}

/// Sleeps `d`, or less if `stop` is cancelled meanwhile (then `true`).
async fn pause(stop: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        () = stop.cancelled() => true,
        () = tokio::time::sleep(d) => false,
    }
}
