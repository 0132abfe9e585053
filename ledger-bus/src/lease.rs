//! The signer's lease: which of the processes that follow a log's stream signs its checkpoints.
//!
//! The lease of log `<L>` is key `<L>` of the key-value bucket `LEDGER_LEASES`, whose values the
//! server removes `ttl` after they were written (the bucket's `max_age`), leaving a delete marker.
//!
//! - **Acquire**: create the key, a compare-and-set against "no value"; it succeeds only once the
//!   previous holder's last value is gone. Its revision (the bucket stream's sequence, strictly
//!   increasing) names the term: [`Term::acquired`], the fence a signer writes into each
//!   checkpoint so that a checkpoint of an older term is recognisable.
//! - **Renew**: every `ttl / 3`, update the key at the revision last written (compare-and-set).
//!   A wrong-revision answer means another process holds it: the term ends at once.
//! - **Stop before the server could expire it**: a holder may sign only until
//!   `sent + ttl - ttl / 4`, where `sent` is the local monotonic instant at which its last
//!   successful write was *sent* (the server stored it later, so expired it later still). The
//!   quarter covers the time from send to store; no clocks are compared across machines.
//! - **Take over only after expiry**: a standby never guesses from a missed renewal; it tries to
//!   create the key every `ttl / 3` and succeeds only once the server removed the old value.
//!
//! So two terms never overlap in time: the next holder's create returns after the old value's
//! removal at `stored + ttl > sent + ttl`, and the old holder stopped at `sent + ttl - ttl / 4`.
//! The lease alone does not fence a holder that is paused between checking its term and
//! publishing; the checkpoint subject's expected-sequence header does (see the signer).

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::names::{LEASE_BUCKET, LogName};

/// Who asks for a log's lease, and for how long a lease lasts.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// The log.
    pub log: LogName,
    /// This process, for people reading the bucket (nothing decides on it).
    pub holder: String,
    /// The bucket's `max_age`: a value lives this long after it was written.
    pub ttl: Duration,
}

/// A term of the lease as its holder sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Term {
    /// The revision at which this term's holder created the key: the term's name and fence.
    pub acquired: u64,
    /// The local instant the acquisition was answered: the holder may sign from here.
    pub since: Instant,
    /// The revision last written (the next renewal's compare-and-set).
    pub revision: u64,
    /// The local instant until which the holder may sign.
    pub until: Instant,
}

impl Term {
    /// Whether the holder may still sign at `now`.
    pub fn valid_at(&self, now: Instant) -> bool {
        now < self.until
    }
}

/// The end of a term whose last successful write was sent at `sent`: a quarter of the lease
/// before the server could remove it.
pub fn term_end(sent: Instant, ttl: Duration) -> Instant {
    sent + ttl - ttl / 4
}

/// A process's handle on one log's lease.
#[derive(Debug)]
pub struct Lease {
    kv: kv::Store,
    config: LeaseConfig,
    held: Option<Term>,
}

impl Lease {
    /// The lease of `config.log` in the bucket that [`crate::provision`] made.
    pub async fn open(js: &jetstream::Context, config: LeaseConfig) -> Result<Lease, Error> {
        let kv = js
            .get_key_value(LEASE_BUCKET)
            .await
            .map_err(|e| Error::nats(format!("opening bucket {LEASE_BUCKET} (provision the bus first)"), e))?;
        Ok(Lease { kv, config, held: None })
    }

    /// The current term, if this process holds one that is still valid now.
    pub fn term(&self) -> Option<Term> {
        self.held.filter(|t| t.valid_at(Instant::now()))
    }

    fn value(&self) -> Bytes {
        let v = serde_json::json!({"holder": self.config.holder, "pid": std::process::id()});
        Bytes::from(v.to_string())
    }

    /// One request, bounded by half a lease: a write that answers later than that would leave
    /// too little of its term to be useful.
    async fn bounded<T, E: Into<async_nats::Error>>(
        &self,
        doing: &str,
        f: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<Result<T, E>, Error> {
        tokio::time::timeout(self.config.ttl / 2, f).await.map_err(|_| {
            Error::nats(
                format!("{doing} the lease of log {}", self.config.log),
                format!("no answer within {:?}", self.config.ttl / 2),
            )
        })
    }

    /// Takes the lease if nobody holds it: the new term, or `None` when another process does.
    pub async fn try_acquire(&mut self) -> Result<Option<Term>, Error> {
        if let Some(t) = self.term() {
            return Ok(Some(t));
        }
        let sent = Instant::now();
        let created = self.bounded("acquiring", self.create()).await?;
        match created.map_err(|e| Error::nats(format!("acquiring the lease of log {}", self.config.log), e))? {
            Some(revision) => {
                let since = Instant::now();
                let t = Term { acquired: revision, since, revision, until: term_end(sent, self.config.ttl) };
                self.held = Some(t);
                Ok(Some(t))
            }
            None => {
                self.held = None;
                Ok(None)
            }
        }
    }

    /// Creates the key if it has no value: compare-and-set against "never written", else against
    /// the delete marker the server left when the last value expired or was released. `None`
    /// when the key has a value, or another contender's write won the race.
    async fn create(&self) -> Result<Option<u64>, async_nats::Error> {
        let key = self.config.log.lease_key();
        match self.kv.update(key, self.value(), 0).await {
            Ok(revision) => return Ok(Some(revision)),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {}
            Err(e) => return Err(e.into()),
        }
        match self.kv.entry(key).await? {
            Some(kv::Entry { operation: kv::Operation::Delete | kv::Operation::Purge, revision, .. }) => {
                match self.kv.update(key, self.value(), revision).await {
                    Ok(revision) => Ok(Some(revision)),
                    Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(None),
                    Err(e) => Err(e.into()),
                }
            }
            // A value (held), or none at all (its marker expired between the two reads: the
            // next attempt creates it).
            Some(_) | None => Ok(None),
        }
    }

    /// Extends the term: the extended term, or `None` when it was lost (another process wrote
    /// the key, or this term ran out before the renewal). An error leaves the term as it was,
    /// to end at its `until` unless a later renewal succeeds.
    pub async fn renew(&mut self) -> Result<Option<Term>, Error> {
        let Some(t) = self.term() else {
            self.held = None;
            return Ok(None);
        };
        let sent = Instant::now();
        let key = self.config.log.lease_key().to_owned();
        match self.bounded("renewing", self.kv.update(&key, self.value(), t.revision)).await? {
            Ok(revision) => {
                let t = Term { revision, until: term_end(sent, self.config.ttl), ..t };
                self.held = Some(t);
                Ok(Some(t))
            }
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                self.held = None;
                Ok(None)
            }
            Err(e) => Err(Error::nats(format!("renewing the lease of log {}", self.config.log), e)),
        }
    }

    /// Gives the lease up at once (a planned stop), so that a standby need not wait for expiry.
    /// The term ends here whatever the server says.
    pub async fn release(&mut self) -> Result<(), Error> {
        let Some(t) = self.held.take() else { return Ok(()) };
        let key = self.config.log.lease_key().to_owned();
        self.bounded("releasing", self.kv.delete_expect_revision(&key, Some(t.revision)))
            .await?
            .map_err(|e| Error::nats(format!("releasing the lease of log {}", self.config.log), e))
    }

    /// Keeps trying to hold the lease until `stop`, then releases it. The receiver sees each term
    /// as it starts or is extended, and `None` when it ends; it is a hint: before each signature
    /// a signer checks [`Term::valid_at`] itself, since this task may be late to say that a term
    /// ran out.
    pub fn drive(mut self, stop: CancellationToken) -> (watch::Receiver<Option<Term>>, tokio::task::JoinHandle<()>) {
        let (tx, rx) = watch::channel(None);
        let task = tokio::spawn(async move {
            let period = self.config.ttl / 3;
            loop {
                let attempt = if self.held.is_some() { self.renew().await } else { self.try_acquire().await };
                match attempt {
                    Ok(t) => {
                        tx.send_replace(t);
                    }
                    Err(e) => {
                        eprintln!("ledger-bus: {e}");
                        tx.send_replace(self.term());
                    }
                }
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(period) => {}
                }
            }
            tx.send_replace(None);
            if let Err(e) = self.release().await {
                eprintln!("ledger-bus: {e}");
            }
        });
        (rx, task)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_term_ends_a_quarter_lease_before_the_server_could_expire_it() {
        let sent = Instant::now();
        let ttl = Duration::from_secs(6);
        let end = term_end(sent, ttl);
        assert_eq!(end - sent, Duration::from_millis(4500));
        let t = Term { acquired: 7, since: sent, revision: 9, until: end };
        assert!(t.valid_at(sent + Duration::from_millis(4499)));
        assert!(!t.valid_at(end));
    }
}
