//! A three-node JetStream cluster on loopback, with nodes killed (SIGKILL) under load: the two
//! properties the bus is built on.
//! - Acknowledged means kept: every message the ingest stream acknowledged is in it after its
//!   leader is killed mid-publish, and a retry with the same `Nats-Msg-Id` stores nothing twice.
//! - One signer at a time: contenders for a log's lease, some crashing and a server killed
//!   meanwhile, never hold terms that overlap in time, and terms are named in order.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use ledger_bus::{Lease, LeaseConfig, LogName, Term, Topology, provision};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_acknowledged_message_is_lost_or_stored_twice_when_the_stream_leader_is_killed() {
    let mut nats = common::Nats::cluster();
    let js = nats.jetstream().await;
    let log = LogName::parse("main").unwrap();
    provision(&js, std::slice::from_ref(&log), &Topology::default()).await.unwrap();
    let stream = log.ingest_stream();
    let leader = common::stream_leader(&js, &stream).await;

    const N: usize = 600;
    const KILL_AT: usize = 200;
    let subject = log.ingest_subject("gw-1");
    let body = bytes::Bytes::from(vec![0xa5u8; 1024]);
    let mut acked = vec![false; N];
    let mut killed = false;
    let mut next = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    // Pipelined like a gateway: up to 32 publishes in flight, each awaited in order; one that
    // fails (the leader is gone, no answer) is published again with its own msg-id.
    while acked.iter().any(|a| !a) {
        assert!(Instant::now() < deadline, "messages still unacknowledged after 120 s");
        let pending: Vec<usize> = (0..N).filter(|&i| !acked[i]).take(32).collect();
        let mut futures = Vec::new();
        for &i in &pending {
            let mut h = HeaderMap::new();
            h.insert("Nats-Msg-Id", format!("gw-1/0/{i}").as_str());
            futures.push((i, js.publish_with_headers(subject.clone(), h, body.clone()).await));
        }
        // One 5 s wait for the whole round, not 5 s each: while the connection is away every
        // acknowledgement times out, and 32 waits in turn would outlast the test's deadline.
        let round_ends = tokio::time::Instant::now() + Duration::from_secs(5);
        for (i, sent) in futures {
            let Ok(ack) = sent else { continue };
            if let Ok(Ok(_)) = tokio::time::timeout_at(round_ends, ack.into_future()).await {
                acked[i] = true;
            }
        }
        next = next.max(pending.last().copied().unwrap_or(0));
        if !killed && next >= KILL_AT {
            nats.node(&leader).kill();
            killed = true;
        }
    }
    assert!(killed);
    let new_leader = common::stream_leader(&js, &stream).await;
    assert_ne!(new_leader, leader, "the killed server still leads");

    let dir = nats.dir.path().to_owned();
    nats.node(&leader).restart(&dir);
    let mut s = js.get_stream(&stream).await.unwrap();
    let state = s.info().await.unwrap().state.clone();
    assert_eq!(
        state.messages, N as u64,
        "the stream holds {} messages, {N} were acknowledged once each",
        state.messages
    );
    let mut seen: HashMap<String, u64> = HashMap::new();
    for seq in state.first_sequence..=state.last_sequence {
        let m = s.get_raw_message(seq).await.unwrap();
        let id = m.headers.get("Nats-Msg-Id").expect("every message has its id").to_string();
        if let Some(first) = seen.insert(id.clone(), seq) {
            panic!("{id} stored twice, at {first} and {seq}");
        }
    }
    for i in 0..N {
        assert!(seen.contains_key(&format!("gw-1/0/{i}")), "acknowledged message {i} is missing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contenders_for_the_lease_never_hold_overlapping_terms_through_crashes_and_a_server_kill() {
    const TTL: Duration = Duration::from_millis(1500);
    let mut nats = common::Nats::cluster();
    let js = nats.jetstream().await;
    let log = LogName::parse("main").unwrap();
    provision(&js, std::slice::from_ref(&log), &Topology { lease_ttl: TTL, ..Topology::default() }).await.unwrap();

    // Every term any contender was granted or extended, as (contender, term).
    let terms: Arc<Mutex<Vec<(usize, Term)>>> = Arc::default();
    let started = Instant::now();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in 0..4 {
        let js = nats.jetstream().await; // a connection of its own, as a process would have
        let config = LeaseConfig { log: log.clone(), holder: format!("c{c}"), ttl: TTL };
        let mut lease = Lease::open(&js, config).await.unwrap();
        let terms = terms.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let _js = js;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = if lease.term().is_some() { lease.renew().await } else { lease.try_acquire().await };
                if let Ok(Some(t)) = r {
                    terms.lock().unwrap().push((c, t));
                }
                tokio::time::sleep(TTL / 3).await;
            }
        }));
    }
    let holder = |terms: &Arc<Mutex<Vec<(usize, Term)>>>| {
        let t = terms.lock().unwrap();
        t.iter().rev().find(|(_, t)| t.valid_at(Instant::now())).map(|(c, _)| *c)
    };
    // Crash the holder twice (its task dies without releasing), and kill the bucket's leading
    // server between the crashes. The surviving two servers elect a new leader for the bucket
    // (several seconds): meanwhile nobody can renew or acquire, so the lease lapses.
    let mut crashed = Vec::new();
    for (at, kill_server) in
        [(Duration::from_secs(2), false), (Duration::from_millis(4500), true), (Duration::from_secs(6), false)]
    {
        tokio::time::sleep(at.saturating_sub(started.elapsed())).await;
        if kill_server {
            let leader = common::stream_leader(&js, "KV_LEDGER_LEASES").await;
            nats.node(&leader).kill();
            continue;
        }
        let wait = Instant::now() + Duration::from_secs(20);
        let c = loop {
            if let Some(c) = holder(&terms) {
                break c;
            }
            assert!(Instant::now() < wait, "nobody held the lease for 20 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        tasks[c].abort();
        crashed.push(c);
    }
    // Let the survivors take over once more after the last crash.
    tokio::time::sleep(TTL * 3).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }

    let terms = terms.lock().unwrap().clone();
    // One holder per term, and each term's end is the latest extension its holder saw.
    let mut by_term: BTreeMap<u64, (usize, Instant, Instant)> = BTreeMap::new();
    for (c, t) in &terms {
        let e = by_term.entry(t.acquired).or_insert((*c, t.since, t.until));
        assert_eq!(e.0, *c, "term {} held by c{} and c{c}", t.acquired, e.0);
        e.2 = e.2.max(t.until);
    }
    assert!(by_term.len() >= 3, "only {} terms with two holders crashed: {by_term:?}", by_term.len());
    let ordered: Vec<_> = by_term.iter().collect();
    for pair in ordered.windows(2) {
        let (ra, (ca, _, until_a)) = pair[0];
        let (rb, (cb, since_b, _)) = pair[1];
        assert!(
            since_b >= until_a,
            "term {rb} (c{cb}) began {:?} before term {ra} (c{ca}) ended",
            until_a.duration_since(*since_b)
        );
    }
    for c in crashed {
        assert!(by_term.values().any(|(h, _, _)| *h == c), "crashed contender c{c} never held a term");
    }
}
