//! A log fed from an ordered source (`Log::append_at`): its tree is a function of the source's
//! order alone. Its position is stored atomically with its entries, refusals are answered only
//! once their position is durable, and a log that restarts and resumes after its stored position
//! reaches the same tree, byte for byte, as one that never stopped, whatever its group sizes.

mod common;

use std::sync::Arc;
use std::sync::mpsc::channel;

use common::*;
use ledger_core::{Checkpoint, Error, Event, Extensions, Log, LogConfig, LogKey, MemStore, Store};

/// The source: batches in order, some of which break the run rules (a gap, a conflict, bytes
/// that are no entry) and one that fills the gap an earlier refused batch would have needed.
fn source() -> Vec<Vec<Vec<u8>>> {
    let key = gateway_key();
    let mut out = vec![vec![identity(&key)]];
    for r in 0..40 {
        let run = format!("run-{r}");
        let events = run_events(&run, key.name(), r % 4);
        let (head, tail) = events.split_at(events.len() / 2);
        out.push(head.to_vec());
        if r % 7 == 3 {
            // Refused: seq 1 past the next (a gap) ...
            out.push(tail[1..].to_vec());
        }
        if r % 11 == 5 {
            // ... refused: seq 0 again with other bytes (a conflict).
            out.push(vec![entry(&run, 0, key.name(), Event::TaskStatus { state: "working".into(), message: None })]);
        }
        if r % 13 == 2 {
            out.push(vec![b"not an entry".to_vec()]);
        }
        // Idempotent: the first half again, then the rest.
        if r % 5 == 0 {
            out.push(head.to_vec());
        }
        out.push(tail.to_vec());
    }
    out
}

/// Feeds `batches[from..]` at positions `from + 1 ..`; returns each batch's answer.
fn feed(log: &Log, batches: &[Vec<Vec<u8>>], from: usize) -> Vec<Result<Vec<u64>, String>> {
    let (tx, rx) = channel();
    for (i, b) in batches.iter().enumerate().skip(from) {
        let tx = tx.clone();
        log.append_at(
            b.clone(),
            i as u64 + 1,
            |_| Ok(()),
            move |r| {
                let _ = tx.send((i, r.map_err(|e| e.to_string())));
            },
        );
    }
    drop(tx);
    let mut answers: Vec<_> = rx.iter().collect();
    answers.sort_by_key(|(i, _)| *i);
    answers.into_iter().map(|(_, r)| r).collect()
}

/// Which position made the tree reach which size, worked out from the answers alone: a batch
/// whose indices go past the size so far made the tree reach its largest index + 1.
fn reached(answers: &[Result<Vec<u64>, String>]) -> std::collections::BTreeMap<u64, u64> {
    let (mut size, mut out) = (0, std::collections::BTreeMap::new());
    for (i, a) in answers.iter().enumerate() {
        if let Ok(ix) = a
            && let Some(&max) = ix.iter().max()
            && max >= size
        {
            size = max + 1;
            out.insert(size, i as u64 + 1);
        }
    }
    out
}

/// `Log::position_at` for every size up to `size` is exactly `expected`.
fn assert_positions(log: &Log, size: u64, expected: &std::collections::BTreeMap<u64, u64>) {
    for s in 0..=size + 1 {
        assert_eq!(log.position_at(s).unwrap(), expected.get(&s).copied(), "position at size {s}");
    }
}

#[test]
fn the_tree_is_a_function_of_the_source_order_whatever_the_groups_and_restarts() {
    let batches = source();
    let n = batches.len() as u64;

    // One log that never stops, in big groups.
    let whole = Log::open(Arc::new(MemStore::new()), log_key(), quiet_config()).unwrap();
    let answers = feed(&whole, &batches, 0);
    let refused = answers.iter().filter(|a| a.is_err()).count();
    assert!(refused >= 8, "the source has refusals: {refused}");
    assert_eq!(whole.position(), Some(n));

    // One in groups of at most 3 entries, stopped three times and resumed from its position.
    let store = Arc::new(MemStore::new());
    let small = LogConfig { max_group_entries: 3, ..quiet_config() };
    let mut again = Vec::new();
    for stop_at in [5, 23, 61, batches.len()] {
        let log = Log::open(store.clone(), log_key(), small.clone()).unwrap();
        let from = log.position().map_or(0, |p| p as usize);
        again.extend(feed(&log, &batches[..stop_at], from));
        log.close().unwrap();
    }
    assert_eq!(again, answers, "the same batches refused, the same indices given");
    let resumed = Log::open(store.clone(), log_key(), small).unwrap();
    assert_eq!(resumed.position(), Some(n));
    assert_eq!(store.position().unwrap(), Some(n));
    let size = whole.durable_size();
    assert_eq!(resumed.durable_size(), size);
    assert_eq!(resumed.root_at(size).unwrap(), whole.root_at(size).unwrap());
    for i in 0..size {
        assert_eq!(resumed.entry(i).unwrap(), whole.entry(i).unwrap(), "entry {i}");
    }
    // The position that made the tree reach each size is the same, submission by submission,
    // whatever the groups were.
    let expected = reached(&answers);
    assert!(expected.len() > 40, "{expected:?}");
    assert_positions(&whole, size, &expected);
    assert_positions(&resumed, size, &expected);
}

#[test]
fn checkpoints_carry_the_extension_lines_of_their_size_and_a_follower_signs_none() {
    let batches = source();
    let lease = Arc::new(std::sync::atomic::AtomicU64::new(7));
    let term = lease.clone();
    let lines = move |size: u64, pos: Option<u64>| {
        vec![
            format!("example/stream {} {}", size, pos.unwrap_or(0)),
            format!("example/lease {}", term.load(std::sync::atomic::Ordering::Relaxed)),
        ]
    };
    let cfg = LogConfig { extensions: Some(Extensions(Arc::new(lines))), ..quiet_config() };
    let leader = Log::open(Arc::new(MemStore::new()), log_key(), cfg).unwrap();
    let answers = feed(&leader, &batches, 0);
    let size = leader.durable_size();
    let cp = leader.sign_checkpoint().unwrap();
    let at = reached(&answers)[&size];
    let want = vec![format!("example/stream {size} {at}"), "example/lease 7".to_string()];
    assert_eq!(cp.checkpoint.extensions, want);
    assert!(cp.note.contains(&format!("\nexample/stream {size} {at}\nexample/lease 7\n\n")), "{}", cp.note);
    assert_eq!(Checkpoint::open(&cp.note, &log_key().verifier()).unwrap().extensions, want);
    // The same tree, other lines: signed again.
    assert!(Arc::ptr_eq(&cp, &leader.sign_checkpoint().unwrap()), "nothing changed, nothing signed");
    lease.store(9, std::sync::atomic::Ordering::Relaxed);
    let again = leader.sign_checkpoint().unwrap();
    assert_eq!(again.checkpoint.size, size);
    assert_eq!(again.checkpoint.extensions[1], "example/lease 9");

    // A follower of the same source, with the verifier key only: it signs nothing, and serves
    // the leader's note once published to it.
    let store = Arc::new(MemStore::new());
    let follower = Log::open(store.clone(), LogKey::Verifying(log_key().verifier()), quiet_config()).unwrap();
    assert_eq!(feed(&follower, &batches, 0), answers);
    assert_eq!(follower.sign_checkpoint().unwrap().checkpoint.size, 0, "a follower signs nothing");
    assert_eq!(follower.checkpoint().checkpoint.size, 0);
    assert_eq!(follower.position_at(size).unwrap(), Some(at));
    assert!(follower.publish(&again.note).unwrap());
    assert_eq!(follower.checkpoint().note, again.note);
    // A note under another key, or for a tree it has not reached, is refused.
    let other = Log::open(Arc::new(MemStore::new()), gateway_key(), quiet_config()).unwrap();
    feed(&other, &batches[..3], 0);
    assert!(follower.publish(&other.sign_checkpoint().unwrap().note).is_err());
    follower.close().unwrap();
    // Reopened: it serves the note it stored, and still signs none.
    let follower = Log::open(store, LogKey::Verifying(log_key().verifier()), quiet_config()).unwrap();
    assert_eq!(follower.checkpoint().note, again.note);
    assert_eq!(follower.sign_checkpoint().unwrap().note, again.note);
}

#[test]
fn a_refusal_is_answered_once_its_position_is_durable() {
    let store = Arc::new(MemStore::new());
    let log = Log::open(store.clone(), log_key(), quiet_config()).unwrap();
    let key = gateway_key();
    log.append_at(vec![identity(&key)], 10, |_| Ok(()), |r| assert!(r.is_ok()));
    let gap = entry("r", 3, key.name(), Event::TaskStatus { state: "working".into(), message: None });
    let (tx, rx) = channel();
    let seen = store.clone();
    log.append_at(
        vec![gap],
        11,
        |_| Ok(()),
        move |r| {
            let _ = tx.send((r, seen.position().unwrap()));
        },
    );
    let (answer, stored) = rx.recv().unwrap();
    assert!(
        matches!(&answer, Err(Error::InBatch { position: 0, source }) if matches!(**source, Error::SeqGap { expected: 0, got: 3, .. })),
        "{answer:?}"
    );
    assert_eq!(stored, Some(11), "refused before its position was stored");

    // Bytes that are no entry, and a refusal by `admit`: the same.
    let (tx, rx) = channel();
    log.append_at(vec![b"\xa0".to_vec()], 12, |_| Ok(()), move |r| tx.send(r.is_err()).unwrap());
    assert!(rx.recv().unwrap());
    let (tx, rx) = channel();
    let other = identity(&log_key());
    log.append_at(
        vec![other],
        13,
        |_| Err(Error::Corrupt("not this actor".into())),
        move |r| tx.send(r.unwrap_err().to_string()).unwrap(),
    );
    assert!(rx.recv().unwrap().contains("not this actor"));
    assert_eq!(log.position(), Some(13));
    assert_eq!(log.durable_size(), 1, "nothing refused was appended");
}

/// On RocksDB, reopened from disk between stops: the position comes back from the store.
#[cfg(feature = "rocksdb")]
#[test]
fn a_log_on_rocksdb_resumes_after_its_stored_position() {
    use ledger_core::store::{RocksConfig, RocksStore};
    let batches = source();
    let whole = Log::open(Arc::new(MemStore::new()), log_key(), quiet_config()).unwrap();
    let answers = feed(&whole, &batches, 0);

    let dir = tempfile::tempdir().unwrap();
    let mut again = Vec::new();
    for stop_at in [17, 40, batches.len()] {
        let store = Arc::new(RocksStore::open(dir.path(), &RocksConfig::default()).unwrap());
        let log = Log::open(store, log_key(), quiet_config()).unwrap();
        let from = log.position().map_or(0, |p| p as usize);
        again.extend(feed(&log, &batches[..stop_at], from));
        log.close().unwrap();
    }
    assert_eq!(again, answers);
    let store = Arc::new(RocksStore::open(dir.path(), &RocksConfig::default()).unwrap());
    let log = Log::open(store.clone(), log_key(), quiet_config()).unwrap();
    assert_eq!(log.position(), Some(batches.len() as u64));
    let size = whole.durable_size();
    assert_eq!(log.root_at(size).unwrap(), whole.root_at(size).unwrap());
    assert_positions(&log, size, &reached(&answers));
    log.sign_checkpoint().unwrap();
    // fsck reads every `pos/` key back from RocksDB, and finds them in order.
    let report = ledger_core::fsck::check(&*store, &log_key().verifier()).unwrap();
    assert!(report.is_clean(), "{:?}", report.findings);
    assert_eq!(report.positions, reached(&answers).len() as u64);
}

#[test]
fn fsck_checks_the_positions_against_the_tree_each_other_and_the_checkpoints_stream_lines() {
    use ledger_core::checkpoint::STREAM_LINE;
    use ledger_core::fsck::{Finding, check};
    use ledger_core::store::CommitBatch;

    let lines =
        |_: u64, pos: Option<u64>| pos.map(|p| vec![format!("{STREAM_LINE} LEDGER_main {p}")]).unwrap_or_default();
    let cfg = LogConfig { extensions: Some(Extensions(Arc::new(lines))), ..quiet_config() };
    let store = Arc::new(MemStore::new());
    let log = Log::open(store.clone(), log_key(), cfg).unwrap();
    let answers = feed(&log, &source(), 0);
    let reached = reached(&answers);
    let size = log.durable_size();
    let cp = log.sign_checkpoint().unwrap();
    assert_eq!(cp.checkpoint.stream_position(), Some(("LEDGER_main", reached[&size])));
    log.close().unwrap();
    let report = check(&*store, &log_key().verifier()).unwrap();
    assert!(report.is_clean(), "{:?}", report.findings);
    assert_eq!(report.positions, reached.len() as u64);

    // Tampered, one key at a time (the tree and everything else as they were).
    let applied = store.position().unwrap().unwrap();
    let (&before, &at_before) = reached.range(..size).next_back().unwrap();
    let tamper = |positions: Vec<(u64, u64)>| {
        let store = Arc::new(MemStore::new());
        let log = Log::open(
            store.clone(),
            log_key(),
            LogConfig { extensions: Some(Extensions(Arc::new(lines))), ..quiet_config() },
        )
        .unwrap();
        feed(&log, &source(), 0);
        log.sign_checkpoint().unwrap();
        log.close().unwrap();
        store.commit(&CommitBatch { tree_size: size, positions, ..CommitBatch::default() }).unwrap();
        check(&*store, &log_key().verifier()).unwrap().findings
    };
    // The last message's position moved back to the one before it: out of order, and the
    // checkpoint's stream line no longer names what the store recorded.
    let found = tamper(vec![(size, at_before)]);
    assert!(
        found.contains(&Finding::Position {
            size,
            what: format!(
                "position {at_before} is not after position {at_before}, recorded at the smaller size {before}"
            )
        }),
        "{found:?}"
    );
    assert!(
        found.contains(&Finding::Position {
            size,
            what: format!("checkpoint {size} names stream position {}, the store recorded {at_before}", reached[&size])
        }),
        "{found:?}"
    );
    // A position for a size the tree never reached, beyond everything applied.
    let found = tamper(vec![(size + 5, applied + 1)]);
    assert!(
        found.contains(&Finding::Position {
            size: size + 5,
            what: format!("recorded for a size outside the tree (1..={size})")
        }),
        "{found:?}"
    );
    assert!(
        found.contains(&Finding::Position {
            size: size + 5,
            what: format!("position {} is beyond the last position applied ({applied})", applied + 1)
        }),
        "{found:?}"
    );
    assert!(found.iter().all(|f| matches!(f, Finding::Position { .. })), "nothing else is blamed: {found:?}");
    // Said in words.
    assert_eq!(Finding::Position { size: 3, what: "x".into() }.to_string(), "the source position at size 3: x");
}
