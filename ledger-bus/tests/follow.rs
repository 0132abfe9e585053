//! Following the ingest stream of a real nats-server into logs: two followers with different
//! commit groups, one of them stopped twice and resumed from its stored position, reach the same
//! tree byte for byte, the same payloads, and the same outcome for every message, refusals
//! included.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use ledger_bus::{LogName, Outcome, Topology, follow, provision};
use ledger_core::entry::Protocol;
use ledger_core::{Entry, Event, Log, LogConfig, MemStore, NamedKey, PayloadLimits, PayloadStore, RunId, Store};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const T0: i64 = 1_767_225_600_000_000_000;

fn entry(run: &str, seq: u64, actor: &str, event: Event) -> Vec<u8> {
    Entry {
        ts: T0 + seq as i64,
        run: RunId::new(run).unwrap(),
        seq,
        actor: actor.into(),
        event,
        grant: None,
        payload: None,
    }
    .encode()
}

fn accepted(r: usize) -> Event {
    Event::TaskAccepted {
        protocol: Protocol::A2a,
        skill: "summarize".into(),
        caller: "alice@example.com".into(),
        input_hash: [r as u8; 32],
        context: None,
        parent: None,
    }
}

fn working(step: u64) -> Event {
    Event::TaskStatus { state: "working".into(), message: Some(format!("step {step}")) }
}

/// The bytes of run `r`'s input payload.
fn input(r: usize) -> Vec<u8> {
    format!("the input of run {r}").into_bytes()
}

fn hash(bytes: &[u8]) -> [u8; 32] {
    *blake3::hash(bytes).as_bytes()
}

/// The payload erased in the stream (run 4's input).
const ERASED: usize = 4;

/// The messages, as (subject's gateway, payload header, body): runs of gw-1 and gw-2
/// interleaved, with a body that is no batch, a seq gap, a conflict, an entry of gw-2 on gw-1's
/// subject, and repeats; payloads before the runs naming them, one sent under another hash, one
/// under a header that is no hash, one erased and then sent again.
fn messages(key1: &NamedKey, key2: &NamedKey) -> Vec<(&'static str, Option<String>, Vec<u8>)> {
    let id = |k: &NamedKey| {
        entry(&format!("id/{}", k.name()), 0, k.name(), Event::IdentityRegistered { public_key: k.public_key() })
    };
    let batch = |entries: Vec<Vec<u8>>| (None, ledger_core::bus::encode_batch(&entries));
    let payload = |bytes: Vec<u8>| (Some(hex::encode(hash(&bytes))), bytes);
    let with = |gw: &'static str, (h, body): (Option<String>, Vec<u8>)| (gw, h, body);
    let mut out = vec![with("gw-1", batch(vec![id(key1)])), with("gw-2", batch(vec![id(key2)]))];
    for r in 0..30 {
        let (gw, name) = if r % 3 == 0 { ("gw-2", "gw-2") } else { ("gw-1", "gw-1") };
        let run = format!("{gw}-run-{r}");
        out.push(with(gw, payload(input(r))));
        out.push(with(gw, batch(vec![entry(&run, 0, name, accepted(r)), entry(&run, 1, name, working(1))])));
        match r % 6 {
            1 => out.push(with(gw, batch(vec![entry(&run, 5, name, working(5))]))), // a gap
            2 => out.push(with(gw, batch(vec![entry(&run, 1, name, working(9))]))), // a conflict
            3 => out.push(with(gw, (None, b"\x81\x41".to_vec()))),                  // no batch
            4 => out.push(with("gw-1", batch(vec![entry("gw-2-run-x", 0, "gw-2", accepted(r))]))), // not its actor
            5 => out.push(with(gw, batch(vec![entry(&run, 1, name, working(1))]))), // an idempotent repeat
            _ => {}
        }
        out.push(with(gw, batch(vec![entry(&run, 2, name, working(2)), entry(&run, 3, name, working(3))])));
        if r == ERASED {
            // Erased: the entry, then the same bytes again (taken, not kept: an erased payload
            // never comes back).
            let h = hash(&input(r));
            let erased = Event::PayloadErased { hash: h, reason: "asked".into(), approver: "dpo".into() };
            let run = RunId::erasure(&h);
            out.push(with(gw, batch(vec![entry(run.as_str(), 0, name, erased)])));
            out.push(with(gw, payload(input(r))));
        }
        if r == 7 {
            out.push(with(gw, (Some(hex::encode(hash(b"other bytes"))), input(r)))); // another hash
            out.push(with(gw, (Some("XYZ".into()), input(r)))); // no hash
        }
    }
    out
}

/// A follower of `log_name` into a log on `store`, until stopped.
struct Following {
    log: Arc<Log>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    outcomes: mpsc::UnboundedReceiver<Outcome>,
}

async fn start(js: &async_nats::jetstream::Context, name: &LogName, store: Arc<MemStore>, groups: usize) -> Following {
    let cfg =
        LogConfig { max_group_entries: groups, checkpoint_interval: Duration::from_secs(3600), ..LogConfig::default() };
    let log = Arc::new(Log::open(store, NamedKey::from_seed("bus.example/log", [7; 32]).unwrap(), cfg).unwrap());
    let (tx, outcomes) = mpsc::unbounded_channel();
    let stop = CancellationToken::new();
    let (js, name, l, s) = (js.clone(), name.clone(), log.clone(), stop.clone());
    let payloads = PayloadStore::new(log.store().clone(), PayloadLimits::UNLIMITED);
    let task = tokio::spawn(async move { follow(&js, &name, l, payloads, tx, s).await.unwrap() });
    Following { log, stop, task, outcomes }
}

async fn caught_up(f: &Following, last: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while f.log.position() != Some(last) {
        assert!(Instant::now() < deadline, "at {:?} of {last} after 30 s", f.log.position());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn stopped(mut f: Following) -> Vec<Outcome> {
    f.stop.cancel();
    f.task.await.unwrap();
    let mut out = Vec::new();
    while let Ok(o) = f.outcomes.try_recv() {
        out.push(o);
    }
    f.log.close().unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_of_one_stream_reach_the_same_tree_whatever_their_groups_and_restarts() {
    let nats = common::Nats::single();
    let js = nats.jetstream().await;
    let name = LogName::parse("main").unwrap();
    provision(&js, std::slice::from_ref(&name), &Topology { replicas: 1, ..Topology::default() }).await.unwrap();
    let (k1, k2) = (NamedKey::from_seed("gw-1", [1; 32]).unwrap(), NamedKey::from_seed("gw-2", [2; 32]).unwrap());
    let all = messages(&k1, &k2);

    let publish = |from: usize, to: usize| {
        let (js, name, all) = (js.clone(), name.clone(), all.clone());
        async move {
            for (i, (gw, payload, body)) in all.iter().enumerate().take(to).skip(from) {
                let mut h = HeaderMap::new();
                h.insert("Nats-Msg-Id", format!("{gw}/0/{i}").as_str());
                if let Some(p) = payload {
                    h.insert(ledger_bus::names::PAYLOAD_HEADER, p.as_str());
                }
                js.publish_with_headers(name.ingest_subject(gw), h, body.clone().into()).await.unwrap().await.unwrap();
            }
        }
    };
    // The first third, and again (the same msg-ids: the stream drops the repeats).
    let third = all.len() / 3;
    publish(0, third).await;
    publish(0, third).await;

    let whole_store = Arc::new(MemStore::new());
    let whole = start(&js, &name, whole_store, 8192).await;
    let part_store = Arc::new(MemStore::new());
    let part = start(&js, &name, part_store.clone(), 3).await;
    caught_up(&part, third as u64).await;
    let mut part_outcomes = stopped(part).await;

    publish(third, 2 * third).await;
    let part = start(&js, &name, part_store.clone(), 3).await;
    caught_up(&part, 2 * third as u64).await;
    part_outcomes.extend(stopped(part).await);

    publish(2 * third, all.len()).await;
    let part = start(&js, &name, part_store.clone(), 1).await;
    let last = all.len() as u64;
    caught_up(&part, last).await;
    caught_up(&whole, last).await;
    let (part_log, whole_log) = (part.log.clone(), whole.log.clone());
    let size = whole_log.durable_size();
    assert_eq!(part_log.durable_size(), size);
    assert_eq!(part_log.root_at(size).unwrap(), whole_log.root_at(size).unwrap());
    for i in 0..size {
        assert_eq!(part_log.entry(i).unwrap(), whole_log.entry(i).unwrap(), "entry {i}");
    }
    // The same payloads on both: every input kept, the erased one's bytes gone from the store
    // itself (deleted when its erasure was appended, not only hidden), and read as erased.
    let erased = hash(&input(ERASED));
    for store in [part_log.store(), whole_log.store()] {
        assert_eq!(store.payload_get(&erased).unwrap(), None, "the erased payload's head is deleted");
        let payloads = PayloadStore::new(store.clone(), PayloadLimits::UNLIMITED);
        for r in (0..30).filter(|r| *r != ERASED) {
            assert_eq!(payloads.get(&hash(&input(r))).unwrap(), Some(input(r)), "run {r}'s input");
        }
        let e = payloads.get(&erased).unwrap_err();
        assert!(matches!(e, ledger_core::Error::PayloadErased { .. }), "{e}");
        assert_eq!(payloads.get(&hash(b"other bytes")).unwrap(), None);
    }
    // The erased payload's messages leave the stream itself (each follower deletes those it
    // applied; the first to come deletes them).
    let erased_hex = hex::encode(erased);
    let erased_at: Vec<u64> =
        (0..all.len()).filter(|i| all[*i].1.as_deref() == Some(erased_hex.as_str())).map(|i| i as u64 + 1).collect();
    assert_eq!(erased_at.len(), 2, "the input, then the same bytes after the erasure");
    let stream = js.get_stream(name.ingest_stream()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    for at in &erased_at {
        while stream.get_raw_message(*at).await.is_ok() {
            assert!(Instant::now() < deadline, "message {at} (an erased payload) is still in the stream after 30 s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    assert!(stream.get_raw_message(1).await.is_ok(), "nothing else is deleted");
    // Each follower forgets its records of them once they are gone (deleted by it, or found
    // deleted by the other).
    for log in [&part_log, &whole_log] {
        let payloads = PayloadStore::new(log.store().clone(), PayloadLimits::UNLIMITED);
        while !payloads.erased_messages(None).unwrap().is_empty() {
            assert!(Instant::now() < deadline, "records of deleted messages left after 30 s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    part_outcomes.extend(stopped(part).await);
    let whole_outcomes = stopped(whole).await;
    // A follower may find an erased payload's message deleted before it came to it (by the
    // other): a gap, which appends nothing. Every other message is answered alike by both.
    let kept = |o: &&Outcome| !erased_at.contains(&o.position);
    let (part_kept, whole_kept): (Vec<_>, Vec<_>) =
        (part_outcomes.iter().filter(kept).collect(), whole_outcomes.iter().filter(kept).collect());
    assert_eq!(part_kept, whole_kept, "every message answered alike");
    assert_eq!(whole_kept.len(), all.len() - 2, "one outcome per message; the repeated publishes were dropped");
    assert_eq!(part_store.position().unwrap(), Some(last));

    let refused: Vec<String> =
        whole_outcomes.iter().filter_map(|o| o.result.as_ref().err().map(|e| e.to_string())).collect();
    assert!(whole_outcomes.iter().filter_map(|o| o.result.as_ref().err()).all(|e| e.is_decision()));
    let count = |needle: &str| refused.iter().filter(|r| r.contains(needle)).count();
    assert_eq!(count(", expected "), 5, "{refused:#?}");
    assert_eq!(count("batch body at byte"), 5, "{refused:#?}");
    assert_eq!(count("a gateway writes only as itself"), 5, "{refused:#?}");
    assert_eq!(count("with different bytes"), 5, "{refused:#?}");
    assert_eq!(count("payload bytes hash to"), 1, "{refused:#?}");
    assert_eq!(count("\"XYZ\" is not a BLAKE3 hash in lowercase hex"), 1, "{refused:#?}");
    assert_eq!(refused.len(), 22, "{refused:#?}");
    // A stored payload appends nothing: its outcome has no indices.
    let stored: Vec<&&Outcome> =
        whole_kept.iter().filter(|o| all[o.position as usize - 1].1.is_some() && o.result.is_ok()).collect();
    assert!(stored.iter().all(|o| o.result.as_ref().unwrap().is_empty()));
    assert_eq!(stored.len(), 29, "the 30 inputs but the erased one");
}
