//! Fault injection behind the storage seam. A wrapper store fails the n-th commit — before
//! persisting anything, or after persisting all of it — or a checkpoint write. In every case the
//! log must poison itself (every later append fails fast with the reason), must never have
//! acknowledged what was not durable, and a reopen over the same data must recover a state in
//! which every acknowledged entry is present at its index and the tree verifies.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::*;
use ledger_core::store::{CommitBatch, LogParams, RunRecord};
use ledger_core::{Error, Log, LogConfig, MemStore, MemTree, Result, Store, TreeHash};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    /// The write fails and nothing reaches the store.
    Before,
    /// The write reaches the store, then the call fails (a lost acknowledgement).
    After,
}

#[derive(Debug)]
struct Faulty {
    inner: Arc<MemStore>,
    mode: Mode,
    fail_commit: u64,
    commits: AtomicU64,
    fail_checkpoints: AtomicBool,
}

impl Faulty {
    fn new(inner: Arc<MemStore>, mode: Mode, fail_commit: u64) -> Faulty {
        Faulty { inner, mode, fail_commit, commits: AtomicU64::new(0), fail_checkpoints: AtomicBool::new(false) }
    }
}

impl Store for Faulty {
    fn load_meta(&self) -> Result<Option<(LogParams, u64)>> {
        self.inner.load_meta()
    }
    fn commit(&self, b: &CommitBatch) -> Result<()> {
        if self.commits.fetch_add(1, Ordering::SeqCst) == self.fail_commit {
            if self.mode == Mode::After {
                self.inner.commit(b)?;
            }
            return Err(Error::Storage("injected: fsync failed".into()));
        }
        self.inner.commit(b)
    }
    fn entry(&self, index: u64) -> Result<Option<Vec<u8>>> {
        self.inner.entry(index)
    }
    fn scan_entries(&self, s: u64, e: u64, f: &mut dyn FnMut(u64, &[u8]) -> Result<()>) -> Result<()> {
        self.inner.scan_entries(s, e, f)
    }
    fn tile(&self, level: u8, index: u64) -> Result<Option<Vec<u8>>> {
        self.inner.tile(level, index)
    }
    fn run_record(&self, run: &str, seq: u64) -> Result<Option<RunRecord>> {
        self.inner.run_record(run, seq)
    }
    fn run_last(&self, run: &str) -> Result<Option<(u64, RunRecord)>> {
        self.inner.run_last(run)
    }
    fn run_records(&self, run: &str) -> Result<Vec<(u64, RunRecord)>> {
        self.inner.run_records(run)
    }
    fn put_checkpoint(&self, size: u64, note: &str) -> Result<()> {
        if self.fail_checkpoints.load(Ordering::SeqCst) {
            return Err(Error::Storage("injected: checkpoint write failed".into()));
        }
        self.inner.put_checkpoint(size, note)
    }
    fn latest_checkpoint(&self) -> Result<Option<(u64, String)>> {
        self.inner.latest_checkpoint()
    }
    fn checkpoints(&self) -> Result<Vec<(u64, String)>> {
        self.inner.checkpoints()
    }
}

fn batches(key: &ledger_core::NamedKey) -> Vec<Vec<Vec<u8>>> {
    let mut b = vec![vec![identity(key)]];
    for r in 0..12 {
        b.push(sealed_run(TreeHash::Blake3, &format!("run-{r}"), key, r % 4));
    }
    b
}

/// Checks the recovered log: acknowledged entries present, tree equal to a recomputation.
fn check_recovered(inner: &Arc<MemStore>, acked: &[(u64, Vec<u8>)]) -> Log {
    let log = Log::open(inner.clone() as Arc<dyn Store>, log_key(), LogConfig::default()).unwrap();
    for (index, bytes) in acked {
        assert_eq!(&log.entry(*index).unwrap(), bytes, "acknowledged entry {index} lost");
    }
    let size = log.durable_size();
    let mut tree = MemTree::new(TreeHash::Blake3);
    for i in 0..size {
        tree.push_entry(&log.entry(i).unwrap());
    }
    assert_eq!(log.root_at(size).unwrap(), tree.root());
    log
}

#[test]
fn a_failed_commit_poisons_at_every_step() {
    let key = gateway_key();
    let all = batches(&key);
    for mode in [Mode::Before, Mode::After] {
        // Commit 0 creates the log; commits 1.. carry the batches.
        for fail in 1..=all.len() as u64 {
            let inner = Arc::new(MemStore::new());
            let faulty = Arc::new(Faulty::new(inner.clone(), mode, fail));
            let log = Log::open(faulty.clone() as Arc<dyn Store>, log_key(), LogConfig::default()).unwrap();
            let mut acked = Vec::new();
            let mut failed_at = None;
            for (i, b) in all.iter().enumerate() {
                match log.append(b.clone()) {
                    Ok(indices) => acked.extend(indices.into_iter().zip(b.iter().cloned())),
                    Err(e) => {
                        assert!(matches!(e, Error::Poisoned(_)), "{mode:?} at {fail}: {e}");
                        failed_at.get_or_insert(i);
                    }
                }
            }
            let first = failed_at.expect("the injected fault surfaces");
            assert_eq!(first as u64, fail - 1, "the batch whose commit failed is the first refused");
            assert!(log.poisoned().unwrap().contains("injected"), "the reason is kept");
            // Fail fast: nothing reaches the store after poisoning.
            let commits = faulty.commits.load(Ordering::SeqCst);
            assert!(matches!(log.append(all[0].clone()), Err(Error::Poisoned(_))));
            assert!(matches!(log.sign_checkpoint(), Err(Error::Poisoned(_))));
            assert_eq!(faulty.commits.load(Ordering::SeqCst), commits);
            let _ = log.close();
            drop(log);

            let log = check_recovered(&inner, &acked);
            let failed_batch = &all[fail as usize - 1];
            let present =
                log.run_entries(&ledger_core::Entry::decode(&failed_batch[0]).unwrap().run.to_string()).unwrap();
            match mode {
                Mode::Before => {
                    assert!(present.is_empty(), "nothing of the failed batch is stored")
                }
                Mode::After => assert_eq!(present.len(), failed_batch.len(), "the persisted batch is recovered"),
            }
            // Writing resumes after reopening: the rest of the batches (idempotent where present).
            for b in &all[fail as usize - 1..] {
                log.append(b.clone()).unwrap();
            }
            log.close().unwrap();
        }
    }
}

#[test]
fn a_failed_checkpoint_write_poisons() {
    let inner = Arc::new(MemStore::new());
    let faulty = Arc::new(Faulty::new(inner.clone(), Mode::Before, u64::MAX));
    // Only this test signs checkpoints (the interval never elapses).
    let cfg = LogConfig { checkpoint_interval: std::time::Duration::from_secs(3600), ..LogConfig::default() };
    let log = Log::open(faulty.clone() as Arc<dyn Store>, log_key(), cfg).unwrap();
    let key = gateway_key();
    let acked = log.append(vec![identity(&key)]).unwrap();
    faulty.fail_checkpoints.store(true, Ordering::SeqCst);
    assert!(matches!(log.sign_checkpoint(), Err(Error::Storage(_))));
    let err = log.append(sealed_run(TreeHash::Blake3, "r", &key, 0)).unwrap_err();
    assert!(matches!(err, Error::Poisoned(ref r) if r.contains("checkpoint")), "{err}");
    drop(log);
    let log = check_recovered(&inner, &[(acked[0], identity(&key))]);
    // The reopened log signs the checkpoint the failed write could not store.
    assert_eq!(log.checkpoint().checkpoint.size, 1);
}
