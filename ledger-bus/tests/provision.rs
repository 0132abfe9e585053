//! Provisioning against a real nats-server (one node): created once, idempotent after, and a
//! stream configured otherwise is refused naming the field, never changed.

mod common;

use std::time::Duration;

use ledger_bus::{Error, LogName, Topology, provision};

fn single_node() -> Topology {
    Topology { replicas: 1, ..Topology::default() }
}

#[tokio::test]
async fn provisioning_creates_the_streams_and_the_bucket_once_and_then_only_checks_them() {
    let nats = common::Nats::single();
    let js = nats.jetstream().await;
    let logs = [LogName::parse("main").unwrap(), LogName::parse("tenant-b").unwrap()];
    provision(&js, &logs, &single_node()).await.unwrap();
    provision(&js, &logs, &single_node()).await.unwrap();

    for name in ["LEDGER_main", "LEDGER_main_OUT", "LEDGER_tenant-b", "LEDGER_tenant-b_OUT", "KV_LEDGER_LEASES"] {
        let mut s = js.get_stream(name).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        let info = s.info().await.unwrap();
        assert_eq!(info.config.storage, async_nats::jetstream::stream::StorageType::File, "{name}");
    }
    let mut ingest = js.get_stream("LEDGER_main").await.unwrap();
    let c = ingest.info().await.unwrap().config.clone();
    assert_eq!(c.subjects, ["ledger.main.in.>"]);
    assert_eq!(c.duplicate_window, Duration::from_secs(120));
    assert!(c.deny_purge);
    // Refuses purges: the ingest stream is the order of record.
    let purge = ingest.purge().await;
    assert!(purge.is_err(), "a purge of the ingest stream was accepted");
}

#[tokio::test]
async fn a_stream_configured_otherwise_is_refused_naming_the_field_and_left_as_it_is() {
    let nats = common::Nats::single();
    let js = nats.jetstream().await;
    let logs = [LogName::parse("main").unwrap()];
    provision(&js, &logs, &single_node()).await.unwrap();

    let other = Topology { duplicate_window: Duration::from_secs(60), ..single_node() };
    match provision(&js, &logs, &other).await {
        Err(Error::Mismatch { what, field, expected, found }) => {
            assert_eq!((what.as_str(), field), ("stream LEDGER_main", "duplicate_window"));
            assert_eq!((expected.as_str(), found.as_str()), ("60s", "120s"));
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
    let mut s = js.get_stream("LEDGER_main").await.unwrap();
    assert_eq!(s.info().await.unwrap().config.duplicate_window, Duration::from_secs(120));

    let ttl = Topology { lease_ttl: Duration::from_secs(9), ..single_node() };
    let e = provision(&js, &logs, &ttl).await.unwrap_err();
    assert!(e.to_string().starts_with("bucket LEDGER_LEASES exists with max_age = 6s, expected 9s"), "{e}");
}

#[tokio::test]
async fn three_replicas_on_one_server_are_refused_with_what_was_being_created() {
    let nats = common::Nats::single();
    let js = nats.jetstream().await;
    let e = provision(&js, &[LogName::parse("main").unwrap()], &Topology::default()).await.unwrap_err();
    assert!(matches!(e, Error::Nats { .. }), "{e:?}");
    assert!(e.to_string().starts_with("creating stream LEDGER_main: "), "{e}");
}
