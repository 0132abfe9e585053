//! One signer and a warm standby on a real nats-server: both follow the stream, only the lease
//! holder's checkpoints are published, and when the signer dies (no goodbye) the standby takes
//! over within the lease time and continues the same, consistent sequence of checkpoints.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use futures_util::StreamExt;
use ledger_bus::signer::{self, LEASE_HEADER};
use ledger_bus::{Lease, LeaseConfig, LogName, Topology, follow, provision};
use ledger_core::entry::Protocol;
use ledger_core::{Checkpoint, Entry, Event, Log, LogConfig, MemStore, NamedKey, RunId};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const TTL: Duration = Duration::from_millis(1500);

fn log_key() -> NamedKey {
    NamedKey::from_seed("bus.example/log", [7; 32]).unwrap()
}

/// A process of the deployment: its log, following the stream, contending for the lease,
/// signing while it holds it, and serving what is published. Aborting its tasks is a SIGKILL.
struct Node {
    log: Arc<Log>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    terms: tokio::sync::watch::Receiver<Option<ledger_bus::Term>>,
}

async fn node(nats: &common::Nats, name: &LogName, holder: &str) -> Node {
    let js = nats.jetstream().await; // a connection of its own
    let signing = signer::signing(name);
    let cfg = LogConfig {
        witnessing: Some(signing.witnessing),
        extensions: Some(signing.extensions),
        checkpoint_interval: Duration::from_millis(50),
        ..LogConfig::default()
    };
    let signed = signing.signed;
    let log = Arc::new(Log::open(Arc::new(MemStore::new()), log_key(), cfg).unwrap());
    let stop = CancellationToken::new();
    let lease = Lease::open(&js, LeaseConfig { log: name.clone(), holder: holder.into(), ttl: TTL }).await.unwrap();
    let (terms, lease_task) = lease.drive(stop.clone());
    let (outcomes, mut drain) = mpsc::unbounded_channel();
    let mut tasks = vec![lease_task, tokio::spawn(async move { while drain.recv().await.is_some() {} })];
    let (j, n, l, s) = (js.clone(), name.clone(), log.clone(), stop.clone());
    let payloads = ledger_core::PayloadStore::new(log.store().clone(), ledger_core::PayloadLimits::UNLIMITED);
    tasks.push(tokio::spawn(async move { follow(&j, &n, l, payloads, outcomes, s).await.unwrap() }));
    let (j, n, l, s, t) = (js.clone(), name.clone(), log.clone(), stop.clone(), terms.clone());
    tasks.push(tokio::spawn(async move { signer::sign(&j, &n, l, signed, t, s).await.unwrap() }));
    let (j, n, l, s) = (js.clone(), name.clone(), log.clone(), stop.clone());
    tasks.push(tokio::spawn(async move { signer::serve(&j, &n, l, s).await.unwrap() }));
    Node { log, tasks, terms }
}

/// A read replica: the verifier key only; it follows the stream and serves what is published.
async fn replica(nats: &common::Nats, name: &LogName) -> (Arc<Log>, CancellationToken) {
    let js = nats.jetstream().await;
    let log = Arc::new(Log::open(Arc::new(MemStore::new()), log_key().verifier(), LogConfig::default()).unwrap());
    let stop = CancellationToken::new();
    let (outcomes, mut drain) = mpsc::unbounded_channel();
    tokio::spawn(async move { while drain.recv().await.is_some() {} });
    let (j, n, l, s) = (js.clone(), name.clone(), log.clone(), stop.clone());
    let payloads = ledger_core::PayloadStore::new(log.store().clone(), ledger_core::PayloadLimits::UNLIMITED);
    tokio::spawn(async move { follow(&j, &n, l, payloads, outcomes, s).await.unwrap() });
    let (j, n, l, s) = (js.clone(), name.clone(), log.clone(), stop.clone());
    tokio::spawn(async move { signer::serve(&j, &n, l, s).await.unwrap() });
    (log, stop)
}

fn accepted(run: &str) -> Vec<u8> {
    let event = Event::TaskAccepted {
        protocol: Protocol::A2a,
        skill: "summarize".into(),
        caller: "alice@example.com".into(),
        input_hash: [1; 32],
        context: None,
        parent: None,
    };
    Entry { ts: 1, run: RunId::new(run).unwrap(), seq: 0, actor: "gw-1".into(), event, grant: None, payload: None }
        .encode()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_over_signing_within_the_lease_time_and_continues_the_sequence() {
    let nats = common::Nats::single();
    let js = nats.jetstream().await;
    let name = LogName::parse("main").unwrap();
    provision(&js, std::slice::from_ref(&name), &Topology { replicas: 1, lease_ttl: TTL, ..Topology::default() })
        .await
        .unwrap();

    // Ingest all along: one new run every 10 ms.
    let stop_load = CancellationToken::new();
    let load = {
        let (js, name, stop) = (js.clone(), name.clone(), stop_load.clone());
        tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.is_cancelled() {
                let body = ledger_core::bus::encode_batch(&[accepted(&format!("run-{i}"))]);
                let mut h = HeaderMap::new();
                h.insert("Nats-Msg-Id", format!("gw-1/0/{i}").as_str());
                js.publish_with_headers(name.ingest_subject("gw-1"), h, body.into()).await.unwrap().await.unwrap();
                i += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            i
        })
    };

    let first = node(&nats, &name, "first").await;
    let wait_for = |n: &Node| {
        let mut terms = n.terms.clone();
        async move {
            tokio::time::timeout(TTL * 4, terms.wait_for(|t| t.is_some())).await.expect("a term").unwrap().unwrap()
        }
    };
    let first_term = wait_for(&first).await;
    let standby = node(&nats, &name, "standby").await;
    let (replica, _replica_stop) = replica(&nats, &name).await;

    // Both serve the signer's checkpoints.
    let deadline = Instant::now() + Duration::from_secs(10);
    while standby.log.checkpoint().checkpoint.size < 20 || first.log.checkpoint().checkpoint.size < 20 {
        assert!(Instant::now() < deadline, "checkpoints not served by both within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(standby.terms.borrow().is_none(), "the standby holds a term while the signer lives");

    // SIGKILL the signer: its tasks die, its lease is not released.
    let killed_at = Instant::now();
    for t in &first.tasks {
        t.abort();
    }
    let second_term = wait_for(&standby).await;
    assert!(second_term.acquired > first_term.acquired);
    let before = standby.log.checkpoint().checkpoint.size;
    let deadline = Instant::now() + Duration::from_secs(10);
    while standby.log.checkpoint().checkpoint.size <= before {
        assert!(Instant::now() < deadline, "the standby signs nothing after taking over");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let failover = killed_at.elapsed();
    assert!(failover < TTL + Duration::from_secs(2), "failover took {failover:?} with a {TTL:?} lease");

    stop_load.cancel();
    let published_runs = load.await.unwrap();
    assert!(published_runs > 50);

    // Every published checkpoint verifies, grows, is consistent with the tree (the standby's,
    // which applied the whole stream), and terms only grow.
    let deadline = Instant::now() + Duration::from_secs(10);
    while standby.log.position() < Some(published_runs) {
        assert!(Instant::now() < deadline, "the standby did not apply the whole stream");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let out = js.get_stream(name.out_stream()).await.unwrap();
    let consumer = out
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
            filter_subject: name.checkpoint_subject(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let key = log_key().verifier();
    let (mut last_size, mut last_term, mut terms_seen) = (0, 0, Vec::new());
    loop {
        let m = match tokio::time::timeout(Duration::from_millis(500), messages.next()).await {
            Ok(Some(m)) => m.unwrap(),
            _ => break,
        };
        let term: u64 = m.headers.as_ref().unwrap().get(LEASE_HEADER).unwrap().as_str().parse().unwrap();
        let cp = Checkpoint::open(std::str::from_utf8(&m.payload).unwrap(), &key).expect("verifies under the log key");
        assert!(cp.size > last_size, "checkpoint {} after {last_size}", cp.size);
        assert!(term >= last_term, "term {term} after {last_term}");
        assert_eq!(standby.log.root_at(cp.size).unwrap(), cp.root, "checkpoint {} is not of the tree", cp.size);
        // Its lines: the term it was published under, and the stream position that made the
        // tree reach its size (one message per run here, so the position is the size).
        assert_eq!(cp.lease_term(), Some(term), "{:?}", cp.extensions);
        assert_eq!(cp.stream_position(), Some(("LEDGER_main", cp.size)), "{:?}", cp.extensions);
        assert_eq!(standby.log.position_at(cp.size).unwrap(), Some(cp.size));
        if terms_seen.last() != Some(&term) {
            terms_seen.push(term);
        }
        (last_size, last_term) = (cp.size, term);
    }
    assert_eq!(terms_seen, [first_term.acquired, second_term.acquired], "published under the two terms, in turn");
    assert!(last_size >= published_runs - 10, "the last checkpoint covers {last_size} of {published_runs}");

    // The replica, with no key, serves the last published note and signed none of its own.
    let deadline = Instant::now() + Duration::from_secs(10);
    while replica.checkpoint().checkpoint.size < last_size {
        assert!(Instant::now() < deadline, "the replica does not serve checkpoint {last_size}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(replica.checkpoint().note, standby.log.checkpoint().note);
    assert_eq!(replica.stats().checkpoints, 0, "a replica signs nothing");
}
