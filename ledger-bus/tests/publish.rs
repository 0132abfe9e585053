//! A gateway's publisher against a real nats-server: pipelined batches of several runs all
//! acknowledged, each stored once, in append order within each run, also when the server is
//! SIGKILLed and restarted while batches are in flight, or when a three-node cluster's stream
//! leader is SIGKILLed mid-publish; a retry under the same message id
//! acknowledged as a duplicate and stored once; results handed to their waiters, a malformed
//! one refused.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use bytes::Bytes;
use ledger_bus::publish::Pending;
use ledger_bus::results::{BatchResult, Refusal, result_msg_id};
use ledger_bus::{LogName, Publisher, PublisherConfig, Topology, provision};
use ledger_core::{Entry, Event, RunId};

const T0: i64 = 1_767_225_600_000_000_000;

fn entry(run: &str, seq: u64) -> Bytes {
    Entry {
        ts: T0 + seq as i64,
        run: RunId::new(run).unwrap(),
        seq,
        actor: "gw-1".into(),
        event: Event::TaskStatus { state: "working".into(), message: Some(format!("step {seq}")) },
        grant: None,
        payload: None,
    }
    .encode()
    .into()
}

async fn client(nats: &common::Nats) -> async_nats::Client {
    async_nats::ConnectOptions::new().retry_on_initial_connect().connect(nats.urls()).await.unwrap()
}

async fn provisioned(nats: &common::Nats) -> (async_nats::jetstream::Context, LogName) {
    let js = nats.jetstream().await;
    let name = LogName::parse("main").unwrap();
    provision(&js, std::slice::from_ref(&name), &Topology { replicas: 1, ..Topology::default() }).await.unwrap();
    (js, name)
}

/// Batches over six runs, some touching two: each run's entries numbered in append order.
struct Load {
    next_seq: HashMap<String, u64>,
}

impl Load {
    fn new() -> Load {
        Load { next_seq: HashMap::new() }
    }

    fn batch(&mut self, i: usize) -> Vec<Bytes> {
        let mut runs = vec![format!("run-{}", i % 6)];
        if i.is_multiple_of(5) {
            runs.push(format!("run-{}", (i + 1) % 6));
        }
        let mut out = Vec::new();
        for r in runs {
            let seq = self.next_seq.entry(r.clone()).or_default();
            out.push(entry(&r, *seq));
            *seq += 1;
        }
        out
    }
}

/// Every message of the ingest stream, in stream order: (sequence, msg-id, format header, body).
async fn stream_back(js: &async_nats::jetstream::Context, name: &LogName) -> Vec<(u64, String, String, Bytes)> {
    let s = js.get_stream(name.ingest_stream()).await.unwrap();
    let last = s.get_info().await.unwrap().state.last_sequence;
    let mut out = Vec::new();
    for seq in 1..=last {
        let m = s.get_raw_message(seq).await.unwrap();
        let h = |k: &str| m.headers.get(k).map(|v| v.as_str().to_owned()).unwrap_or_default();
        out.push((m.sequence, h("Nats-Msg-Id"), h("A2A-Ledger-Format"), m.payload.clone()));
    }
    out
}

/// Within each run, the seqs in stream order are 0, 1, 2, … (the append order), each once.
fn assert_run_order(stored: &[(u64, String, String, Bytes)], load: &Load) {
    let mut seen: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (_, _, _, body) in stored {
        for e in ledger_core::bus::decode_batch(body).unwrap() {
            let v = Entry::check(&e).unwrap();
            seen.entry(v.run().to_owned()).or_default().push(v.seq());
        }
    }
    for (run, seqs) in &seen {
        let expected: Vec<u64> = (0..load.next_seq[run]).collect();
        assert_eq!(seqs, &expected, "run {run}: stream order is not append order");
    }
    assert_eq!(seen.len(), load.next_seq.len());
}

async fn all_acked(pending: Vec<Pending>) -> Vec<ledger_bus::publish::Acked> {
    let mut out = Vec::new();
    for p in pending {
        out.push(tokio::time::timeout(Duration::from_secs(60), p.wait()).await.expect("acknowledged in 60 s").unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_batches_are_stored_once_each_in_append_order_within_each_run() {
    let nats = common::Nats::single();
    let (js, name) = provisioned(&nats).await;
    let publisher = Publisher::start(client(&nats).await, PublisherConfig::new(name.clone(), "gw-1")).await.unwrap();
    let mut load = Load::new();
    let pending: Vec<Pending> = (0..120).map(|i| publisher.publish(load.batch(i)).unwrap()).collect();
    let acked = all_acked(pending).await;

    let stored = stream_back(&js, &name).await;
    assert_eq!(stored.len(), 120, "each batch stored once");
    let mut positions: Vec<u64> = acked.iter().map(|a| a.position).collect();
    positions.sort_unstable();
    positions.dedup();
    assert_eq!(positions, (1..=120).collect::<Vec<u64>>(), "one position per batch");
    for (n, a) in acked.iter().enumerate() {
        assert!(!a.duplicate);
        assert_eq!(a.msg_id, format!("gw-1/{}/{n}", publisher.epoch()));
        let (_, id, format, _) = &stored[a.position as usize - 1];
        assert_eq!((id, format.as_str()), (&a.msg_id, "1"), "the message at {} is batch {n}", a.position);
    }
    assert_run_order(&stored, &load);
    assert_eq!(publisher.acknowledged(), 120);
    assert_eq!(publisher.unacknowledged(), 0);

    // A retry of batch 7 (its id, its bytes) is acknowledged as a duplicate at its first position.
    let (_, id, _, body) = stored[acked[7].position as usize - 1].clone();
    assert_eq!(id, publisher.msg_id(7));
    let mut h = HeaderMap::new();
    h.insert("Nats-Msg-Id", id.as_str());
    let again = js.publish_with_headers(name.ingest_subject("gw-1"), h, body).await.unwrap().await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.sequence, acked[7].position);
    assert_eq!(stream_back(&js, &name).await.len(), 120, "the retry was not stored");

    assert_eq!(publisher.close(Duration::from_secs(5)).await, 0);
    let e = publisher.publish(load.batch(0)).unwrap_err();
    assert!(matches!(e, ledger_bus::Error::Closed), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_and_restarted_mid_publish_loses_no_batch_and_reorders_no_run() {
    let mut nats = common::Nats::single();
    let (_, name) = provisioned(&nats).await;
    let cfg = PublisherConfig { ack_timeout: Duration::from_millis(500), ..PublisherConfig::new(name.clone(), "gw-1") };
    let publisher = Publisher::start(client(&nats).await, cfg).await.unwrap();
    let mut load = Load::new();
    let mut pending: Vec<Pending> = (0..150).map(|i| publisher.publish(load.batch(i)).unwrap()).collect();
    // Killed once some are in and some are still in flight.
    let deadline = Instant::now() + Duration::from_secs(30);
    while publisher.acknowledged() < 20 {
        assert!(Instant::now() < deadline, "no acknowledgement in 30 s");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    nats.node("n1").kill();
    // More batches while the server is away: they wait, and are retried under their own ids.
    pending.extend((150..300).map(|i| publisher.publish(load.batch(i)).unwrap()));
    assert!(publisher.unacknowledged() > 150, "batches were waiting while the server was down");
    let dir = nats.dir.path().to_path_buf();
    nats.node("n1").restart(&dir);
    let acked = all_acked(pending).await;

    let js = nats.jetstream().await;
    let stored = stream_back(&js, &name).await;
    assert_eq!(stored.len(), 300, "every batch stored exactly once");
    let ids: HashMap<&str, u64> = stored.iter().map(|(seq, id, _, _)| (id.as_str(), *seq)).collect();
    assert_eq!(ids.len(), 300, "no message id twice");
    for (n, a) in acked.iter().enumerate() {
        assert_eq!(ids.get(publisher.msg_id(n as u64).as_str()), Some(&a.position), "batch {n}");
    }
    assert_run_order(&stored, &load);
    assert_eq!(publisher.close(Duration::from_secs(5)).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_leader_killed_mid_publish_in_a_cluster_loses_no_batch_and_reorders_no_run() {
    let mut nats = common::Nats::cluster();
    let js = nats.jetstream().await;
    let name = LogName::parse("main").unwrap();
    provision(&js, std::slice::from_ref(&name), &Topology::default()).await.unwrap();
    let leader = common::stream_leader(&js, &name.ingest_stream()).await;
    let cfg = PublisherConfig { ack_timeout: Duration::from_secs(1), ..PublisherConfig::new(name.clone(), "gw-1") };
    let publisher = Publisher::start(client(&nats).await, cfg).await.unwrap();
    let mut load = Load::new();
    let mut pending: Vec<Pending> = (0..200).map(|i| publisher.publish(load.batch(i)).unwrap()).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while publisher.acknowledged() < 50 {
        assert!(Instant::now() < deadline, "no acknowledgement in 30 s");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    nats.node(&leader).kill();
    pending.extend((200..400).map(|i| publisher.publish(load.batch(i)).unwrap()));
    let acked = all_acked(pending).await;
    assert_ne!(common::stream_leader(&js, &name.ingest_stream()).await, leader, "the killed server still leads");

    let stored = stream_back(&js, &name).await;
    assert_eq!(stored.len(), 400, "every batch stored exactly once");
    let ids: HashMap<&str, u64> = stored.iter().map(|(seq, id, _, _)| (id.as_str(), *seq)).collect();
    for (n, a) in acked.iter().enumerate() {
        assert_eq!(ids.get(publisher.msg_id(n as u64).as_str()), Some(&a.position), "batch {n}");
    }
    assert_run_order(&stored, &load);
    assert_eq!(publisher.close(Duration::from_secs(5)).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_reach_their_waiters_and_a_malformed_one_is_refused() {
    let nats = common::Nats::single();
    let (js, name) = provisioned(&nats).await;
    let publisher = Publisher::start(client(&nats).await, PublisherConfig::new(name.clone(), "gw-1")).await.unwrap();
    let mut load = Load::new();
    let a = publisher.publish(load.batch(0)).unwrap().wait().await.unwrap();
    let b = publisher.publish(load.batch(1)).unwrap().wait().await.unwrap();
    let waiting = tokio::spawn(publisher.result(a.position));

    let result = |r: BatchResult, id: String| {
        let (js, subject) = (js.clone(), name.result_subject("gw-1"));
        async move {
            let mut h = HeaderMap::new();
            h.insert("Nats-Msg-Id", id.as_str());
            js.publish_with_headers(subject, h, r.to_json().into()).await.unwrap().await.unwrap();
        }
    };
    // Another gateway's result is not this one's.
    let other = BatchResult { position: b.position, outcome: Ok(vec![99]) };
    js.publish(name.result_subject("gw-2"), other.to_json().into()).await.unwrap().await.unwrap();
    // A malformed body, and a result whose id names another position: both refused.
    js.publish(name.result_subject("gw-1"), br#"{"position":1,"indices":[0],"x":1}"#.as_slice().into())
        .await
        .unwrap()
        .await
        .unwrap();
    // (Not b's id: the out stream would drop b's real result later as a duplicate of this one.)
    result(BatchResult { position: a.position, outcome: Ok(vec![5]) }, result_msg_id(999)).await;
    let ok = BatchResult { position: a.position, outcome: Ok(vec![0]) };
    result(ok.clone(), result_msg_id(a.position)).await;
    assert_eq!(waiting.await.unwrap().unwrap(), ok);
    assert_eq!(publisher.malformed_results(), 2);

    // A result that arrives before anyone asks is kept for the asker.
    let refused = BatchResult {
        position: b.position,
        outcome: Err(Refusal { code: "seq_gap".into(), message: "run run-1: seq 0 expected".into() }),
    };
    result(refused.clone(), result_msg_id(b.position)).await;
    let c = publisher.publish(load.batch(2)).unwrap().wait().await.unwrap();
    result(BatchResult { position: c.position, outcome: Ok(vec![1]) }, result_msg_id(c.position)).await;
    assert_eq!(publisher.result(c.position).await.unwrap().outcome, Ok(vec![1]));
    assert_eq!(publisher.result(b.position).await.unwrap(), refused);

    // Closed: nobody waits any more.
    let never = publisher.result(1000);
    publisher.close(Duration::from_secs(1)).await;
    assert!(matches!(never.await, Err(ledger_bus::Error::Closed)));
}
