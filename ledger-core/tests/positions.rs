//! A log fed from an ordered source (`Log::append_at`): its tree is a function of the source's
//! order alone. Its position is stored atomically with its entries, refusals are answered only
//! once their position is durable, and a log that restarts and resumes after its stored position
//! reaches the same tree, byte for byte, as one that never stopped, whatever its group sizes.

mod common;

use std::sync::Arc;
use std::sync::mpsc::channel;

use common::*;
use ledger_core::{Error, Event, Log, LogConfig, MemStore, Store};

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
    let log = Log::open(store, log_key(), quiet_config()).unwrap();
    assert_eq!(log.position(), Some(batches.len() as u64));
    let size = whole.durable_size();
    assert_eq!(log.root_at(size).unwrap(), whole.root_at(size).unwrap());
}
