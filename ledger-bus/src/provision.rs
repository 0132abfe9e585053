//! The streams and the lease bucket a log needs on the bus, created when absent and checked
//! field by field when present.
//!
//! Durability rules kept here:
//! - Both streams use file storage and the topology's replica count (3 in a cluster: a publish
//!   is acknowledged once 2 of 3 servers hold it). The servers must run with
//!   `jetstream { sync_interval: always }`: by default JetStream fsyncs every two minutes, and an
//!   acknowledged message can be lost when machines fail together before that.
//! - The ingest stream keeps everything (limits retention with no limits: it is the order of
//!   record, replayed from the start by any new replica) and refuses purges; single deletes stay
//!   allowed, since erasing a payload deletes its chunk messages.
//! - An existing stream or bucket with another configuration is an error naming the field, never
//!   updated here: replicas, storage and windows are decisions an operator makes by hand.

use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};

use crate::Error;
use crate::names::{LEASE_BUCKET, LogName};

/// How a deployment's streams and lease bucket are configured.
#[derive(Clone, Debug)]
pub struct Topology {
    /// Servers holding each stream and the lease bucket: 1, 3 or 5.
    pub replicas: usize,
    /// How long a lease lasts after its holder's last renewal.
    pub lease_ttl: Duration,
    /// Within this window the ingest stream drops a message whose `Nats-Msg-Id` it has seen.
    pub duplicate_window: Duration,
    /// The largest message a stream takes (the servers' `max_payload` must allow it).
    pub max_message_size: i32,
}

impl Default for Topology {
    fn default() -> Topology {
        Topology {
            replicas: 3,
            lease_ttl: Duration::from_secs(6),
            duplicate_window: Duration::from_secs(120),
            max_message_size: 8 << 20,
        }
    }
}

/// The ingest stream of `log`.
pub fn ingest_stream(log: &LogName, t: &Topology) -> stream::Config {
    stream::Config {
        name: log.ingest_stream(),
        subjects: vec![log.ingest_subjects()],
        storage: stream::StorageType::File,
        num_replicas: t.replicas,
        retention: stream::RetentionPolicy::Limits,
        duplicate_window: t.duplicate_window,
        max_message_size: t.max_message_size,
        // No limits (the server's -1): nothing is ever discarded from the order of record.
        max_messages: -1,
        max_bytes: -1,
        deny_purge: true,
        deny_delete: false,
        allow_rollup: false,
        description: Some(format!("a2a-ledger: the ingest order of log {log}")),
        ..Default::default()
    }
}

/// The stream of signed checkpoints and outcomes of `log`: kept whole (checkpoints are small and
/// monitors replay them; an outcome is a few dozen bytes per ingest message).
pub fn out_stream(log: &LogName, t: &Topology) -> stream::Config {
    stream::Config {
        name: log.out_stream(),
        subjects: vec![log.checkpoint_subject(), log.result_subjects()],
        storage: stream::StorageType::File,
        num_replicas: t.replicas,
        retention: stream::RetentionPolicy::Limits,
        duplicate_window: Duration::from_secs(600),
        max_message_size: 1 << 20,
        max_messages: -1,
        max_bytes: -1,
        deny_purge: true,
        deny_delete: true,
        allow_rollup: false,
        description: Some(format!("a2a-ledger: signed checkpoints and outcomes of log {log}")),
        ..Default::default()
    }
}

/// The lease bucket: one value per key, removed by the server `lease_ttl` after it was written,
/// leaving a delete marker so that watchers see the key go.
pub fn lease_bucket(t: &Topology) -> kv::Config {
    kv::Config {
        bucket: LEASE_BUCKET.to_owned(),
        description: "a2a-ledger: the signer's lease of each log".to_owned(),
        history: 1,
        max_age: t.lease_ttl,
        storage: stream::StorageType::File,
        num_replicas: t.replicas,
        limit_markers: Some(t.lease_ttl),
        ..Default::default()
    }
}

/// Creates what `logs` need on the bus, or checks that what exists is configured as `t` says.
/// Idempotent: run by every process at start.
pub async fn provision(js: &jetstream::Context, logs: &[LogName], t: &Topology) -> Result<(), Error> {
    for log in logs {
        ensure_stream(js, ingest_stream(log, t)).await?;
        ensure_stream(js, out_stream(log, t)).await?;
    }
    let want = lease_bucket(t);
    let what = format!("bucket {LEASE_BUCKET}");
    let Some(info) = stream_info(js, &format!("KV_{LEASE_BUCKET}"), &what).await? else {
        js.create_key_value(want).await.map_err(|e| Error::nats(format!("creating {what}"), e))?;
        return Ok(());
    };
    let got = &info.config;
    same(&what, "history", &want.history, &got.max_messages_per_subject)?;
    same(&what, "max_age", &want.max_age, &got.max_age)?;
    same(&what, "num_replicas", &want.num_replicas, &got.num_replicas)?;
    same(&what, "storage", &want.storage, &got.storage)?;
    same(&what, "limit markers", &true, &got.allow_message_ttl)?;
    Ok(())
}

/// A stream's information, or `None` when the server has no such stream.
async fn stream_info(js: &jetstream::Context, name: &str, what: &str) -> Result<Option<stream::Info>, Error> {
    match js.get_stream(name).await {
        Ok(mut s) => Ok(Some(s.info().await.map_err(|e| Error::nats(format!("reading {what}"), e))?.clone())),
        Err(e) => match e.kind() {
            jetstream::context::GetStreamErrorKind::JetStream(j)
                if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND =>
            {
                Ok(None)
            }
            _ => Err(Error::nats(format!("reading {what}"), e)),
        },
    }
}

async fn ensure_stream(js: &jetstream::Context, want: stream::Config) -> Result<(), Error> {
    let what = format!("stream {}", want.name);
    let Some(info) = stream_info(js, &want.name, &what).await? else {
        js.create_stream(want).await.map_err(|e| Error::nats(format!("creating {what}"), e))?;
        return Ok(());
    };
    let got = &info.config;
    same(&what, "subjects", &want.subjects, &got.subjects)?;
    same(&what, "storage", &want.storage, &got.storage)?;
    same(&what, "num_replicas", &want.num_replicas, &got.num_replicas)?;
    same(&what, "retention", &want.retention, &got.retention)?;
    same(&what, "duplicate_window", &want.duplicate_window, &got.duplicate_window)?;
    same(&what, "max_message_size", &want.max_message_size, &got.max_message_size)?;
    same(&what, "deny_purge", &want.deny_purge, &got.deny_purge)?;
    same(&what, "deny_delete", &want.deny_delete, &got.deny_delete)?;
    same(&what, "allow_rollup", &want.allow_rollup, &got.allow_rollup)?;
    same(&what, "max_age", &want.max_age, &got.max_age)?;
    same(&what, "max_messages", &want.max_messages, &got.max_messages)?;
    same(&what, "max_bytes", &want.max_bytes, &got.max_bytes)?;
    Ok(())
}

fn same<T: PartialEq + std::fmt::Debug>(what: &str, field: &'static str, expected: &T, found: &T) -> Result<(), Error> {
    if expected == found {
        return Ok(());
    }
    Err(Error::Mismatch {
        what: what.to_owned(),
        field,
        expected: format!("{expected:?}"),
        found: format!("{found:?}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ingest_stream_keeps_everything_durably_and_refuses_purges() {
        let l = LogName::parse("main").unwrap();
        let c = ingest_stream(&l, &Topology::default());
        assert_eq!(c.name, "LEDGER_main");
        assert_eq!(c.subjects, ["ledger.main.in.>"]);
        assert_eq!(c.storage, stream::StorageType::File);
        assert_eq!(c.num_replicas, 3);
        assert_eq!((c.max_age, c.max_bytes, c.max_messages), (Duration::ZERO, -1, -1));
        assert!(c.deny_purge && !c.deny_delete && !c.allow_rollup);
        let o = out_stream(&l, &Topology::default());
        assert_eq!(o.subjects, ["ledger.main.cp", "ledger.main.result.>"]);
        assert!(o.deny_purge && o.deny_delete);
        let b = lease_bucket(&Topology { lease_ttl: Duration::from_secs(4), ..Topology::default() });
        assert_eq!((b.history, b.max_age, b.limit_markers), (1, Duration::from_secs(4), Some(Duration::from_secs(4))));
    }
}
