//! The run index against a model: random submissions (several runs interleaved, identical and
//! conflicting duplicates, gaps, seals), with the log closed and reopened along the way, on the
//! in-memory store and on RocksDB. After every step each run's records, last record, point
//! lookups and the log's answers must match what the model says SPEC §2 requires.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::*;
use ledger_core::seal::seal_event;
use ledger_core::store::RunRecord;
use ledger_core::{Error, Event, Log, LogConfig, MemStore, RunStatus, Store, TreeHash};

/// A small deterministic generator (xorshift64*), so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// What the log should hold: each run's entries in seq order, with index and sealed flag.
#[derive(Default)]
struct Model {
    runs: BTreeMap<String, Vec<(Vec<u8>, u64, bool)>>,
    size: u64,
}

/// A new entry and whether it is a seal.
type Fresh = (Vec<u8>, bool);

const RUNS: [&str; 10] = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta", "iota", "kappa"];

fn working(run: &str, seq: u64, salt: u64) -> Vec<u8> {
    entry(run, seq, "gateway", Event::TaskStatus { state: "working".into(), message: Some(format!("step {salt}")) })
}

/// Runs `steps` random submissions against `log`, checking each answer against `model`.
fn drive(log: &Log, model: &mut Model, rng: &mut Rng, steps: usize) {
    let key = gateway_key();
    for _ in 0..steps {
        // Pick 1–3 runs and give each 1–5 new entries, some of them seals.
        let mut chunks: Vec<(String, Vec<Fresh>)> = Vec::new();
        for _ in 0..=rng.below(3) {
            let run = RUNS[rng.below(RUNS.len() as u64) as usize].to_string();
            if chunks.iter().any(|(r, _)| *r == run) {
                continue;
            }
            let have = model.runs.get(&run).map_or(0, Vec::len) as u64;
            let mut new: Vec<Fresh> = Vec::new();
            for k in 0..=rng.below(5) {
                let seq = have + k;
                if seq > 0 && rng.chance(15) {
                    // A seal over the run so far (earlier entries from the model, then these).
                    let mut so_far: Vec<Vec<u8>> =
                        model.runs.get(&run).map(|v| v.iter().map(|(b, _, _)| b.clone()).collect()).unwrap_or_default();
                    so_far.extend(new.iter().map(|(b, _)| b.clone()));
                    let seal = seal_event(TreeHash::Blake3, &run, &so_far, RunStatus::Completed, &key);
                    new.push((entry(&run, seq, "gateway", seal), true));
                } else {
                    new.push((working(&run, seq, rng.next()), false));
                }
            }
            chunks.push((run, new));
        }
        // Interleave them, each run in order.
        let mut order: Vec<(String, Vec<u8>, bool)> = Vec::new();
        let mut cursors = vec![0usize; chunks.len()];
        while cursors.iter().zip(&chunks).any(|(c, (_, v))| *c < v.len()) {
            let i = rng.below(chunks.len() as u64) as usize;
            if cursors[i] < chunks[i].1.len() {
                let (b, sealed) = chunks[i].1[cursors[i]].clone();
                order.push((chunks[i].0.clone(), b, sealed));
                cursors[i] += 1;
            }
        }
        // Now and then: an identical duplicate (of a stored entry or of one earlier in this
        // submission), a conflicting one, or a gap.
        let mut expect_err: Option<fn(&Error) -> bool> = None;
        if rng.chance(20) && !order.is_empty() {
            let at = rng.below(order.len() as u64 + 1) as usize;
            let (run, _, _) = order[rng.below(order.len() as u64) as usize].clone();
            let stored = model.runs.get(&run).map_or(0, Vec::len) as u64;
            if stored > 0 && rng.chance(50) {
                let seq = rng.below(stored);
                let (bytes, _, _) = model.runs[&run][seq as usize].clone();
                if rng.chance(70) {
                    order.insert(at, (run, bytes, false));
                } else {
                    order.insert(at, (run.clone(), working(&run, seq, u64::MAX - rng.below(1000)), false));
                    expect_err = Some(|e| matches!(e, Error::Conflict { .. }));
                }
            } else if rng.chance(50) {
                // A repeat of this submission's first entry of the run, placed after it.
                let first = order.iter().position(|(r, _, _)| *r == run).expect("the run is in the submission");
                let copy = order[first].clone();
                let at = first + 1 + rng.below((order.len() - first) as u64) as usize;
                order.insert(at, (copy.0, copy.1, false));
            } else {
                let next = stored + order.iter().filter(|(r, _, _)| *r == run).count() as u64;
                order.push((run.clone(), working(&run, next + 1 + rng.below(3), 0), false));
                expect_err = Some(|e| matches!(e, Error::SeqGap { .. }));
            }
        }

        let batch: Vec<Vec<u8>> = order.iter().map(|(_, b, _)| b.clone()).collect();
        let result = log.append(batch);
        if let Some(is_expected) = expect_err {
            match result {
                Err(Error::InBatch { ref source, .. }) if is_expected(source) => continue,
                other => panic!("expected a refusal, got {other:?}"),
            }
        }
        // The model's answer: new entries take the next indices in order, duplicates their
        // original's.
        let mut expected = Vec::new();
        for (run, bytes, sealed) in &order {
            let entries = model.runs.entry(run.clone()).or_default();
            match entries.iter().find(|(b, _, _)| b == bytes) {
                Some((_, index, _)) => expected.push(*index),
                None => {
                    entries.push((bytes.clone(), model.size, *sealed));
                    expected.push(model.size);
                    model.size += 1;
                }
            }
        }
        assert_eq!(result.unwrap(), expected);
    }
}

/// Every run's index in `store` matches the model.
fn check_index(store: &dyn Store, model: &Model, rng: &mut Rng) {
    for run in RUNS {
        let want: Vec<(u64, RunRecord)> = model
            .runs
            .get(run)
            .map(|v| {
                v.iter()
                    .enumerate()
                    .map(|(seq, (_, index, sealed))| {
                        (seq as u64, RunRecord { index: *index, sealed: *sealed, identity: false })
                    })
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(store.run_records(run).unwrap(), want, "run {run}");
        assert_eq!(store.run_last(run).unwrap(), want.last().copied(), "run {run}");
        assert_eq!(store.run_started(run).unwrap(), !want.is_empty(), "run {run}");
        for _ in 0..4 {
            let seq = rng.below(want.len() as u64 + 2);
            assert_eq!(store.run_record(run, seq).unwrap(), want.get(seq as usize).map(|(_, r)| *r), "{run}/{seq}");
        }
    }
}

fn config() -> LogConfig {
    // Small groups and a small run cache, so that runs leave the cache and groups split runs.
    LogConfig { max_group_entries: 7, run_cache: 3, ..LogConfig::default() }
}

/// Five rounds of `open` → check → 80 random submissions → check → close, each round on the
/// store `open_store` gives (the same data each time).
fn rounds(seed: u64, open_store: impl Fn() -> Arc<dyn Store>) {
    let (mut model, mut rng) = (Model::default(), Rng(seed));
    for _round in 0..5 {
        let store = open_store();
        let log = Log::open(store.clone(), log_key(), config()).unwrap();
        assert_eq!(log.durable_size(), model.size);
        check_index(&*store, &model, &mut rng);
        drive(&log, &mut model, &mut rng, 80);
        check_index(&*store, &model, &mut rng);
        log.close().unwrap();
    }
}

#[test]
fn run_index_matches_the_model_in_memory() {
    let store = Arc::new(MemStore::new());
    rounds(0x5eed_0001, || store.clone() as Arc<dyn Store>);
}

#[cfg(feature = "rocksdb")]
#[test]
fn run_index_matches_the_model_on_rocksdb() {
    use ledger_core::store::{RocksConfig, RocksStore};
    let dir = tempfile::tempdir().unwrap();
    // Reopened from disk each round: duplicates of earlier rounds are judged by the store.
    rounds(0x5eed_0002, || Arc::new(RocksStore::open(dir.path(), &RocksConfig::default()).unwrap()) as Arc<dyn Store>);
}

/// A stored segment that does not parse is reported as corruption, naming the run and seq.
#[cfg(feature = "rocksdb")]
#[test]
fn a_corrupt_segment_is_reported() {
    use ledger_core::store::RunSegment;
    for (value, what) in [
        (vec![0u8; 8], "9 expected"),
        ([&5u64.to_be_bytes()[..], &[0, 4]].concat(), "unknown flags"),
        ([&u64::MAX.to_be_bytes()[..], &[0, 0]].concat(), "past the end"),
    ] {
        let err = RunSegment::from_stored("alpha", 3, &value).unwrap_err();
        assert!(matches!(err, Error::Corrupt(_)), "{err}");
        assert!(err.to_string().contains("\"alpha\" segment at seq 3") && err.to_string().contains(what), "{err}");
    }
    let seg = RunSegment::from_stored("alpha", 3, &[&7u64.to_be_bytes()[..], &[0, 1, 2]].concat()).unwrap();
    assert_eq!(seg.record(4), Some(RunRecord { index: 8, sealed: true, identity: false }));
    assert_eq!(seg.record(2), None);
    assert_eq!(seg.record(6), None);
    assert_eq!(RunSegment::from_stored("alpha", 3, &seg.value()).unwrap(), seg);
}
