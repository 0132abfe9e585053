//! The log over the in-memory store: run rules, atomic batches, concurrency, reopening and
//! receipts.

mod common;

use std::sync::Arc;

use common::*;
use ledger_core::{Error, Event, Log, LogConfig, MemStore, ReceiptVerifier, Store, TreeHash, merkle};

/// A log over a `Faulty` store that injects no fault, for its write and sync gates.
fn gated_log(cfg: LogConfig) -> (Arc<MemStore>, Arc<Faulty>, Arc<Log>) {
    let inner = Arc::new(MemStore::new());
    let gated = Arc::new(Faulty::new(inner.clone(), Mode::Before, u64::MAX));
    let log = Arc::new(Log::open(gated.clone() as Arc<dyn Store>, log_key(), cfg).unwrap());
    (inner, gated, log)
}

fn open(store: &Arc<MemStore>, hash: TreeHash) -> Log {
    let cfg = LogConfig { hash, ..LogConfig::default() };
    Log::open(store.clone() as Arc<dyn Store>, log_key(), cfg).unwrap()
}

#[test]
fn run_rules_are_enforced() {
    let store = Arc::new(MemStore::new());
    let log = open(&store, TreeHash::Blake3);
    let run = run_events("r1", "gateway", 2);
    assert_eq!(log.append(run[..2].to_vec()).unwrap(), vec![0, 1]);

    // A gap: seq 3 before 2.
    let err = log.append(vec![run[3].clone()]).unwrap_err();
    assert!(
        matches!(err, Error::InBatch { position: 0, ref source } if matches!(**source, Error::SeqGap { expected: 2, got: 3, .. })),
        "{err}"
    );

    // An identical duplicate is an idempotent success with the original index.
    assert_eq!(log.append(vec![run[1].clone()]).unwrap(), vec![1]);

    // A conflicting duplicate.
    let other = entry("r1", 1, "gateway", Event::TaskStatus { state: "failed".into(), message: None });
    let err = log.append(vec![other]).unwrap_err();
    assert!(
        matches!(err, Error::InBatch { ref source, .. } if matches!(**source, Error::Conflict { seq: 1, index: 1, .. })),
        "{err}"
    );

    // A batch is atomic: a bad last entry keeps the good first one out.
    let err = log.append(vec![run[2].clone(), run[4].clone()]).unwrap_err();
    assert!(matches!(err, Error::InBatch { position: 1, .. }), "{err}");
    assert_eq!(log.durable_size(), 2);
    // A malformed entry fails its batch before sequencing, naming its position.
    let err = log.append(vec![run[2].clone(), b"\xa0".to_vec(), vec![0xff]]).unwrap_err();
    assert!(matches!(err, Error::InBatch { position: 1, .. }), "{err}");
    assert_eq!(log.append(run[2..].to_vec()).unwrap(), vec![2, 3, 4, 5]);
    // Duplicates inside one batch.
    assert_eq!(log.append(vec![run[5].clone(), run[5].clone()]).unwrap(), vec![5, 5]);
    log.close().unwrap();
}

#[test]
fn concurrent_appenders_get_a_consistent_tree() {
    let store = Arc::new(MemStore::new());
    let log = Arc::new(open(&store, TreeHash::Sha256));
    let key = gateway_key();
    log.append(vec![identity(&key)]).unwrap();
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                let key = gateway_key();
                let mut acked = Vec::new();
                for r in 0..20 {
                    let run = format!("t{t}-r{r}");
                    let entries = sealed_run(TreeHash::Sha256, &run, &key, r % 5);
                    let indices = log.append(entries.clone()).unwrap();
                    acked.extend(indices.into_iter().zip(entries));
                }
                acked
            })
        })
        .collect();
    let acked: Vec<(u64, Vec<u8>)> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    let size = log.durable_size();
    assert_eq!(size as usize, acked.len() + 1);
    let mut tree = ledger_core::MemTree::new(TreeHash::Sha256);
    for i in 0..size {
        tree.push_entry(&log.entry(i).unwrap());
    }
    for (index, bytes) in &acked {
        assert_eq!(&log.entry(*index).unwrap(), bytes);
    }
    assert_eq!(log.root_at(size).unwrap(), tree.root());
    let cp = log.sign_checkpoint().unwrap();
    assert_eq!(cp.checkpoint.size, size);
    // Every run has a receipt that verifies.
    let mut verifier = ReceiptVerifier::new(log.descriptor().clone()).unwrap();
    for t in 0..16 {
        for r in 0..20 {
            let receipt = log.receipt(&format!("t{t}-r{r}")).unwrap();
            let v = verifier.verify(&receipt).unwrap();
            assert_eq!(v.views().len(), 5 + r % 5, "accepted, working, progress, artifact, completed, seal");
        }
    }
}

#[test]
fn reopening_recovers_the_exact_state() {
    let store = Arc::new(MemStore::new());
    let key = gateway_key();
    let mut roots = Vec::new();
    // Grow across tile boundaries, closing and reopening in between.
    for round in 0..6 {
        let log = open(&store, TreeHash::Blake3);
        if round == 0 {
            log.append(vec![identity(&key)]).unwrap();
        }
        for r in 0..40 {
            log.append(sealed_run(TreeHash::Blake3, &format!("round{round}-{r}"), &key, r % 3)).unwrap();
        }
        let size = log.durable_size();
        roots.push((size, log.root_at(size).unwrap()));
        // Appends continue where the last process left off, seq rules included.
        let err = log.append(vec![sealed_run(TreeHash::Blake3, "round0-0", &key, 0)[1].clone()]);
        assert!(err.is_ok(), "an identical duplicate from an earlier process is idempotent");
        log.close().unwrap();
    }
    let log = open(&store, TreeHash::Blake3);
    let (size, _) = *roots.last().unwrap();
    assert_eq!(log.durable_size(), size);
    assert_eq!(log.checkpoint().checkpoint.size, size, "close signs a final checkpoint");
    for (s, root) in &roots {
        assert_eq!(log.root_at(*s).unwrap(), *root);
        let proof = log.consistency_proof(*s, size).unwrap();
        merkle::verify_consistency(TreeHash::Blake3, *s, size, root, &log.root_at(size).unwrap(), &proof).unwrap();
    }
    // A different tree hash is refused.
    drop(log);
    let err = Log::open(
        store.clone() as Arc<dyn Store>,
        log_key(),
        LogConfig { hash: TreeHash::Sha256, ..LogConfig::default() },
    )
    .unwrap_err();
    assert!(matches!(err, Error::ParameterMismatch { what: "tree hash", .. }), "{err}");
    // So is another key under the same origin.
    let other = ledger_core::NamedKey::from_seed(log_key().name(), [0x99; 32]).unwrap();
    let err = Log::open(store.clone() as Arc<dyn Store>, other, LogConfig::default()).unwrap_err();
    assert!(matches!(err, Error::Corrupt(_)), "{err}");
}

#[test]
fn receipts_track_the_latest_seal_and_checkpoints() {
    let store = Arc::new(MemStore::new());
    let log = open(&store, TreeHash::Blake3);
    let key = gateway_key();
    assert!(matches!(log.receipt("nope"), Err(Error::UnknownRun(_))));
    log.append(vec![identity(&key)]).unwrap();
    let mut run = sealed_run(TreeHash::Blake3, "r", &key, 1);
    log.append(run[..3].to_vec()).unwrap();
    assert!(matches!(log.receipt("r"), Err(Error::Unsealed(_))));
    log.append(run[3..].to_vec()).unwrap();
    // Sealed and durable, but perhaps not yet checkpointed; waiting gets a covering checkpoint.
    let seal_index = log.durable_size() - 1;
    let cp = log.wait_for_checkpoint(seal_index + 1, std::time::Duration::from_secs(10)).unwrap();
    assert!(cp.checkpoint.size > seal_index);
    let mut verifier = ReceiptVerifier::new(log.descriptor().clone()).unwrap();
    let first = verifier.verify_owned(log.receipt("r").unwrap()).unwrap();
    assert_eq!(first.views().len(), run.len());

    // An eval after completion, then a second seal: the receipt is the newest seal.
    let eval = entry(
        "r",
        run.len() as u64,
        "gateway",
        Event::EvalScored { rubric: "accuracy".into(), score_milli: 875, failures: vec![] },
    );
    run.push(eval);
    let seal = ledger_core::seal::seal_event(TreeHash::Blake3, "r", &run, ledger_core::RunStatus::Completed, &key);
    run.push(entry("r", run.len() as u64, "gateway", seal));
    log.append(run[run.len() - 2..].to_vec()).unwrap();
    log.sign_checkpoint().unwrap();
    let second = verifier.verify_owned(log.receipt("r").unwrap()).unwrap();
    assert_eq!(second.views().len(), run.len());
}

/// After an identity registers a new key, receipts of later seals name the new registration
/// as their signer and receipts of earlier seals keep the old one, though readers remember
/// registrations between receipts.
#[test]
fn receipts_name_the_registration_in_force_at_their_seal() {
    let store = Arc::new(MemStore::new());
    let log = open(&store, TreeHash::Blake3);
    let (old_key, new_key) = (gateway_key(), ledger_core::NamedKey::from_seed("gateway", [0x33; 32]).unwrap());
    let mut verifier = ReceiptVerifier::new(log.descriptor().clone()).unwrap();
    let mut receipt = |run: &str| {
        let seal = log.durable_size() - 1;
        log.wait_for_checkpoint(seal + 1, std::time::Duration::from_secs(10)).unwrap();
        let r = log.receipt(run).unwrap();
        let signer = r.signer.index;
        verifier.verify_owned(r).unwrap_or_else(|e| panic!("receipt of {run}: {e}"));
        signer
    };

    let first = log.append(vec![identity(&old_key)]).unwrap()[0];
    log.append(sealed_run(TreeHash::Blake3, "a", &old_key, 1)).unwrap();
    assert_eq!(receipt("a"), first);
    let rotated = entry("id/gateway", 1, "gateway", Event::IdentityRegistered { public_key: new_key.public_key() });
    let second = log.append(vec![rotated]).unwrap()[0];
    log.append(sealed_run(TreeHash::Blake3, "b", &new_key, 1)).unwrap();
    assert_eq!(receipt("b"), second);
    assert_eq!(receipt("a"), first);
}

#[test]
fn small_order_identity_keys_are_refused() {
    let store = Arc::new(MemStore::new());
    let log = open(&store, TreeHash::Blake3);
    let mut weak = [0u8; 32];
    weak[0] = 1; // the identity point
    let e = entry("id/mallory", 0, "mallory", Event::IdentityRegistered { public_key: weak });
    let err = log.append(vec![e]).unwrap_err();
    assert!(err.to_string().contains("small-order"), "{err}");
}

/// An entry still in flight must be found even after its run fell out of the sequencer's
/// run cache: a conflicting (or identical) resend is judged against it, not against the store.
#[test]
fn runs_evicted_from_the_cache_while_in_flight_keep_their_rules() {
    let (_, gated, log) = gated_log(LogConfig { run_cache: 16, ..LogConfig::default() });
    let (tx, rx) = std::sync::mpsc::channel();
    let send = |name: &'static str, entries: Vec<Vec<u8>>| {
        let tx = tx.clone();
        log.append_with(entries, move |r| tx.send((name, r)).unwrap());
    };
    let held = gated.hold_writes();
    // S1: run A's first entry, committing (held at the gate).
    let a0 = entry("A", 0, "gateway", Event::TaskStatus { state: "working".into(), message: None });
    send("s1", vec![a0.clone()]);
    // S2: more new runs than the run cache holds, so A is evicted meanwhile.
    let many: Vec<Vec<u8>> = (0..1000)
        .map(|i| entry(&format!("r{i}"), 0, "gateway", Event::TaskStatus { state: "working".into(), message: None }))
        .collect();
    send("s2", many);
    // S3: A seq 0 again, with other bytes: a conflict with the in-flight entry, not a new run.
    let other = entry("A", 0, "gateway", Event::TaskStatus { state: "failed".into(), message: None });
    send("s3", vec![other]);
    // S4: A seq 0 identical: the in-flight index. S5: A seq 1: the next entry, not a gap.
    send("s4", vec![a0]);
    send("s5", vec![entry("A", 1, "gateway", Event::TaskStatus { state: "completed".into(), message: None })]);
    // S3 is refused without waiting for the gate (a bound, so that a wrong acceptance, which
    // would wait at the gate, fails instead of hanging).
    let (name, r) = rx.recv_timeout(std::time::Duration::from_secs(60)).expect("S3 must be refused at once");
    assert_eq!(name, "s3");
    let err = r.unwrap_err();
    assert!(
        matches!(err, Error::InBatch { ref source, .. } if matches!(**source, Error::Conflict { seq: 0, index: 0, .. })),
        "{err}"
    );
    drop(held);
    let mut results: std::collections::HashMap<_, _> = (0..4).map(|_| rx.recv().unwrap()).collect();
    assert_eq!(results.remove("s1").unwrap().unwrap(), vec![0]);
    assert_eq!(results.remove("s2").unwrap().unwrap().len(), 1000);
    assert_eq!(results.remove("s4").unwrap().unwrap(), vec![0], "identical resend returns the in-flight index");
    assert_eq!(results.remove("s5").unwrap().unwrap(), vec![1001]);
    assert_eq!(log.run_entries("A").unwrap().len(), 2);
}

/// Acknowledgements come from the acker thread, not the committer: a callback may append
/// again, and wait for room when groups are full (backpressure), without stopping the commits
/// that make room.
#[test]
fn callbacks_may_append_under_backpressure() {
    let (store, gated, log) = gated_log(LogConfig { max_group_entries: 1, ..LogConfig::default() });
    // Commits wait at the gate until the other appenders have filled the open and the queued
    // group, so the chain's first callback finds no room.
    let held = gated.hold_writes();
    let working =
        |run: &str, seq| entry(run, seq, "gateway", Event::TaskStatus { state: "working".into(), message: None });
    // A chain: each acknowledgement appends the run's next entry from the callback.
    fn chain(
        log: Arc<Log>,
        seq: u64,
        end: u64,
        make: fn(u64) -> Vec<u8>,
        tx: std::sync::mpsc::Sender<Result<u64, String>>,
    ) {
        let next = log.clone();
        log.append_with(vec![make(seq)], move |r| match r {
            Ok(i) if seq + 1 < end => {
                let _ = i;
                chain(next, seq + 1, end, make, tx);
            }
            Ok(i) => tx.send(Ok(i[0])).unwrap(),
            Err(e) => tx.send(Err(e.to_string())).unwrap(),
        });
    }
    let (tx, rx) = std::sync::mpsc::channel();
    chain(
        log.clone(),
        0,
        50,
        |seq| entry("chained", seq, "gateway", Event::TaskStatus { state: "working".into(), message: None }),
        tx,
    );
    // Meanwhile other appenders keep the one-entry groups full.
    let others: Vec<_> = (0..4)
        .map(|t| {
            let log = log.clone();
            let batch: Vec<_> = (0..100).map(|seq| working(&format!("other-{t}"), seq)).collect();
            std::thread::spawn(move || {
                for e in batch {
                    log.append(vec![e]).unwrap();
                }
            })
        })
        .collect();
    // Not synchronisation: time for the other appenders to fill the open and the queued group,
    // which makes the chain's first callback meet backpressure (the case that deadlocked when
    // callbacks ran on the committer). The assertions hold however far they got.
    std::thread::sleep(std::time::Duration::from_millis(200));
    drop(held);
    let last = rx.recv_timeout(std::time::Duration::from_secs(60)).expect("the chain must finish").unwrap();
    for t in others {
        t.join().unwrap();
    }
    assert_eq!(log.durable_size(), 450);
    assert!(last < 450);
    let records = store.run_records("chained").unwrap();
    assert_eq!(records.len(), 50);
}

/// A group is written before the sync that makes it durable, and readers of the store may see
/// it meanwhile: the log itself serves nothing of it, and answers nobody, until the sync.
#[test]
fn written_but_unsynced_entries_are_neither_served_nor_acknowledged() {
    let (inner, gated, log) = gated_log(LogConfig::default());
    let key = gateway_key();
    log.append(vec![identity(&key)]).unwrap();
    log.sign_checkpoint().unwrap();
    let held = gated.hold_syncs();
    let run = sealed_run(TreeHash::Blake3, "held", &key, 1);
    let (tx, rx) = std::sync::mpsc::channel();
    // (`let _`: a test that fails early has dropped the receiver by the time the answer comes.)
    log.append_with(run.clone(), move |r| {
        let _ = tx.send(r);
    });
    // Wide enough to complete level-0 tiles 0 and 1, which the store gets with the write.
    let wide = run_events("held-wide", "gateway", 600);
    let (wide_tx, wide_rx) = std::sync::mpsc::channel();
    log.append_with(wide.clone(), move |r| {
        let _ = wide_tx.send(r);
    });
    // Written: the store has it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while inner.run_records("held").unwrap().len() < run.len()
        || inner.run_records("held-wide").unwrap().len() < wide.len()
    {
        assert!(std::time::Instant::now() < deadline, "the group was never written");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert!(inner.tile(0, 1).unwrap().is_some(), "the store holds the written full tile");
    // Not durable: not acknowledged, not served, not checkpointed.
    assert!(rx.try_recv().is_err(), "acknowledged before the sync");
    assert_eq!(log.durable_size(), 1);
    assert!(matches!(log.entry(1), Err(Error::OutOfRange { .. })));
    assert!(matches!(log.inclusion_proof(0, 2), Err(Error::OutOfRange { .. })));
    assert!(log.run_entries("held").unwrap().is_empty());
    assert!(log.receipt("held").is_err());
    assert_eq!(log.sign_checkpoint().unwrap().checkpoint.size, 1);
    for (level, index) in [(0, 1), (0, 2), (1, 0)] {
        assert!(log.tile(level, index, 1).unwrap().is_none(), "tile {level}/{index} served before the sync");
    }
    // The sync makes it durable and answers.
    drop(held);
    let indices = rx.recv_timeout(std::time::Duration::from_secs(60)).unwrap().unwrap();
    assert_eq!(indices, (1..=run.len() as u64).collect::<Vec<_>>());
    wide_rx.recv_timeout(std::time::Duration::from_secs(60)).unwrap().unwrap();
    assert_eq!(log.durable_size(), 1 + (run.len() + wide.len()) as u64);
    assert_eq!(log.run_entries("held").unwrap().len(), run.len());
    assert_eq!(log.tile(0, 1, 256).unwrap().map(|t| t.to_vec()), inner.tile(0, 1).unwrap());
    assert!(log.tile(1, 0, 2).unwrap().is_some(), "the edge tile on level 1 holds the two full tiles' roots");
}

/// The partial tiles at the right edge of the tree are never stored: only full tiles are, once
/// each. A reopened log rebuilds its edge from the entries and full tiles (each tile level
/// exercised, sizes on both sides of every boundary) and serves the same roots, proofs and tiles
/// as an independent in-memory tree, even with a wrong partial tile planted where an older build
/// kept one.
#[test]
fn the_right_edge_is_kept_in_memory_and_rebuilt_on_open() {
    use ledger_core::store::{CommitBatch, decode_tile, encode_tile};
    let h = TreeHash::Blake3;
    let store = Arc::new(MemStore::new());
    let all: Vec<Vec<u8>> = (0..1300).flat_map(|r| run_events(&format!("edge-{r}"), "gateway", 98)).collect();
    let mut oracle = ledger_core::MemTree::new(h);
    let mut size = 0u64;
    for target in [1u64, 255, 256, 257, 511, 512, 513, 65535, 65536, 65537, 66_050, 131_073] {
        let log = open(&store, h);
        assert_eq!(log.durable_size(), size);
        let batch = all[size as usize..target as usize].to_vec();
        for e in &batch {
            oracle.push_entry(e);
        }
        let indices = log.append(batch).unwrap();
        assert_eq!(indices, (size..target).collect::<Vec<_>>());
        let old = size;
        size = target;
        log.close().unwrap();

        // Stored: every full tile, complete; no partial one. Then plant a wrong partial tile
        // where the edge is, as a v2 store would have one.
        for t in 0..3u8 {
            let complete = size >> (8 * u32::from(t));
            for i in 0..complete >> 8 {
                let tile = store.tile(t, i).unwrap().unwrap_or_else(|| panic!("full tile {t}/{i} missing at {size}"));
                assert_eq!(decode_tile(&tile).unwrap()[0].len(), 256);
            }
            let (edge, width) = (complete >> 8, (complete & 0xff) as usize);
            // (or the one planted in an earlier round: only ever overwritten by the full tile)
            let stored = store.tile(t, edge).unwrap();
            assert!(
                stored.is_none_or(|s| s[2..].iter().all(|&b| b == 0xee)),
                "partial tile {t}/{edge} stored at {size}"
            );
            if width > 0 {
                let rows: Vec<Vec<[u8; 32]>> = (0..8).map(|r| vec![[0xee; 32]; width >> r]).collect();
                let plant =
                    CommitBatch { tiles: vec![(t, edge, encode_tile(&rows))], tree_size: size, ..Default::default() };
                store.commit(&plant).unwrap();
            }
        }

        let log = open(&store, h);
        assert_eq!(log.root_at(size).unwrap(), oracle.root(), "root at {size}");
        for index in [0, size / 2, size - 1] {
            assert_eq!(log.inclusion_proof(index, size).unwrap(), oracle.inclusion_proof(index, size).unwrap());
        }
        assert_eq!(log.consistency_proof(old, size).unwrap(), oracle.consistency_proof(old, size).unwrap());
        assert_eq!(log.compact_range(size).unwrap(), *oracle.compact_range());
        let width = size & 0xff;
        if width > 0 {
            let tile = log.tile(0, size >> 8, width).unwrap().expect("the edge tile");
            let leaves: Vec<[u8; 32]> = (size & !0xff..size).map(|i| h.leaf(&log.entry(i).unwrap())).collect();
            assert_eq!(decode_tile(&tile).unwrap()[0], leaves);
            assert_eq!(log.tile(0, size >> 8, width + 1).unwrap(), None, "wider than the durable tree");
        }
        log.close().unwrap();
    }
}

#[test]
fn receipt_covered_waits_for_the_checkpoint_that_covers_the_seal() {
    let store = Arc::new(MemStore::new());
    let log = Arc::new(Log::open(store as Arc<dyn Store>, log_key(), quiet_config()).unwrap());
    let gw = gateway_key();
    log.append(vec![identity(&gw)]).unwrap();
    log.append(sealed_run(log.hash(), "r1", &gw, 1)).unwrap();
    // Not covered, and no time to wait: the answer `receipt` gives.
    let e = log.receipt_covered("r1", std::time::Duration::ZERO).unwrap_err();
    assert!(matches!(e, Error::NotYetCheckpointed { .. }), "{e}");
    assert!(matches!(log.receipt_covered("nope", std::time::Duration::from_secs(60)), Err(Error::UnknownRun(_))));

    // A waiter gets the receipt once a checkpoint covers the seal, whenever it started waiting.
    let waiter = {
        let log = log.clone();
        std::thread::spawn(move || log.receipt_covered("r1", std::time::Duration::from_secs(60)))
    };
    log.sign_checkpoint().unwrap();
    let receipt = waiter.join().unwrap().unwrap();
    ReceiptVerifier::new(log.descriptor().clone()).unwrap().verify(&receipt).unwrap();
}

#[test]
fn end_waits_ends_receipt_waits() {
    let store = Arc::new(MemStore::new());
    let log = Arc::new(Log::open(store as Arc<dyn Store>, log_key(), quiet_config()).unwrap());
    let gw = gateway_key();
    log.append(vec![identity(&gw)]).unwrap();
    log.append(sealed_run(log.hash(), "r1", &gw, 1)).unwrap();
    let started = std::time::Instant::now();
    let waiter = {
        let log = log.clone();
        std::thread::spawn(move || log.receipt_covered("r1", std::time::Duration::from_secs(60)))
    };
    log.end_waits();
    let e = waiter.join().unwrap().unwrap_err();
    assert!(matches!(e, Error::NotYetCheckpointed { .. }), "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "the wait was not ended");
    // From now on too.
    assert!(log.receipt_covered("r1", std::time::Duration::from_secs(60)).is_err());
    // A receipt that is covered is still served.
    log.sign_checkpoint().unwrap();
    log.receipt_covered("r1", std::time::Duration::from_secs(60)).unwrap();
}
