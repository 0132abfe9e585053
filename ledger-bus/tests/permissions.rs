//! Per-gateway permissions on a real nats-server: a gateway holding exactly
//! `LogName::gateway_permissions` publishes its batches and reads its results, and can do
//! nothing else that matters: not publish as another gateway (the actor binding's real guard:
//! otherwise a gateway could write entries as another), not publish a checkpoint or a result,
//! not use the JetStream API beyond reading its results.

mod common;

use std::time::Duration;

use async_nats::HeaderMap;
use bytes::Bytes;
use ledger_bus::publish::{Publisher, PublisherConfig};
use ledger_bus::results::{BatchResult, result_msg_id};
use ledger_bus::{Auth, LogName, Topology, provision};

const WAIT: Duration = Duration::from_secs(10);

fn quoted(list: &[String]) -> String {
    list.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ")
}

fn entry(run: &str, seq: u64) -> Bytes {
    use ledger_core::entry::Protocol;
    use ledger_core::{Entry, Event, RunId};
    let event = Event::TaskAccepted {
        protocol: Protocol::A2a,
        skill: "s".into(),
        caller: "c".into(),
        input_hash: [0; 32],
        context: None,
        parent: None,
    };
    Entry { ts: 1, run: RunId::new(run).unwrap(), seq, actor: "gw-1".into(), event, grant: None, payload: None }
        .encode()
        .into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_publishes_and_reads_its_own_and_nothing_else() {
    let name = LogName::parse("main").unwrap();
    let (publish, subscribe) = name.gateway_permissions("gw-1");
    let conf = format!(
        "authorization {{ users: [\n  {{ user: ledger, password: ledger-secret }}\n  \
         {{ user: gw-1, password: gw-secret, permissions: {{ publish: {{ allow: [{}] }}, subscribe: {{ allow: [{}] }} }} }}\n] }}\n",
        quoted(&publish),
        quoted(&subscribe)
    );
    let nats = common::Nats::single_with(&conf);
    let servers = nats.urls().join(",");
    let ledger = Auth { user: Some("ledger".into()), password: Some("ledger-secret".into()), inbox_prefix: None };
    let js = ledger_bus::connect(&servers, "ledger", &ledger, WAIT).await.unwrap();
    provision(&js, std::slice::from_ref(&name), &Topology { replicas: 1, ..Topology::default() }).await.unwrap();

    // Without a password, nothing.
    assert!(ledger_bus::connect(&servers, "anonymous", &Auth::default(), Duration::from_secs(2)).await.is_err());

    // The gateway: its batches acknowledged, its result delivered.
    let gw = Auth {
        user: Some("gw-1".into()),
        password: Some("gw-secret".into()),
        inbox_prefix: Some("_INBOX_gw-1".into()),
    };
    let client = ledger_bus::client(&servers, "gw-1", &gw, WAIT).await.unwrap();
    let publisher = Publisher::start(client.clone(), PublisherConfig::new(name.clone(), "gw-1")).await.unwrap();
    let acked = publisher.publish(vec![entry("r-1", 0)]).unwrap().wait().await.unwrap();
    let result = BatchResult { position: acked.position, outcome: Ok(vec![0]) };
    let mut h = HeaderMap::new();
    h.insert("Nats-Msg-Id", result_msg_id(acked.position).as_str());
    js.publish_with_headers(name.result_subject("gw-1"), h, result.to_json().into()).await.unwrap().await.unwrap();
    let got = tokio::time::timeout(WAIT, publisher.result(acked.position)).await.unwrap().unwrap();
    assert_eq!(got.outcome, Ok(vec![0]));

    // Everything else is refused by the server: another gateway's subject, the checkpoint and
    // result subjects, the JetStream API of the ingest stream (no publish ack ever comes: the
    // server drops the message and reports a permissions violation).
    let violations = || std::fs::read_to_string(nats.dir.path().join("n1.log")).unwrap();
    assert!(!violations().contains("Violation"), "the gateway's own work needed no more: {}", violations());
    let mut gjs = async_nats::jetstream::new(client.clone());
    gjs.set_timeout(Duration::from_secs(1));
    for subject in [name.ingest_subject("gw-2"), name.checkpoint_subject(), name.result_subject("gw-1")] {
        let sent = gjs.publish(subject.clone(), Bytes::from_static(b"x")).await;
        let acked = match sent {
            Ok(f) => f.await.ok(),
            Err(_) => None,
        };
        assert!(acked.is_none(), "gw-1 published on {subject}");
    }
    assert!(gjs.get_stream(name.ingest_stream()).await.is_err(), "gw-1 read the ingest stream's info");
    assert!(gjs.delete_stream(name.out_stream()).await.is_err(), "gw-1 deleted a stream");
    // No message reads by sequence on the output stream: another gateway's results and the
    // checkpoints stay out of reach (its own result reader did without, above).
    let out_of_reach = gjs.get_stream(name.out_stream()).await.unwrap().get_raw_message(1).await;
    assert!(out_of_reach.is_err(), "gw-1 read message 1 of the output stream");
    let log = violations();
    for subject in [
        name.ingest_subject("gw-2"),
        name.checkpoint_subject(),
        name.result_subject("gw-1"),
        format!("$JS.API.STREAM.INFO.{}", name.ingest_stream()),
        format!("$JS.API.STREAM.DELETE.{}", name.out_stream()),
        format!("$JS.API.STREAM.MSG.GET.{}", name.out_stream()),
    ] {
        assert!(
            log.contains(&format!("Publish Violation - Subject \"{subject}\"")),
            "no violation for {subject}: {log}"
        );
    }
    // What the stream holds: the one batch and the one result, nothing the gateway forged.
    let mut ingest = js.get_stream(name.ingest_stream()).await.unwrap();
    assert_eq!(ingest.info().await.unwrap().state.messages, 1);
    let mut out = js.get_stream(name.out_stream()).await.unwrap();
    assert_eq!(out.info().await.unwrap().state.messages, 1);
}
