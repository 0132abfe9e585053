//! Fault injection behind the storage seam. A wrapper store fails the n-th write — before
//! persisting anything, after persisting all of it, or in the sync after a successful write —
//! or a checkpoint write. In every case the
//! log must poison itself (every later append fails fast with the reason), must never have
//! acknowledged what was not durable, and a reopen over the same data must recover a state in
//! which every acknowledged entry is present at its index and the tree verifies.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use common::*;
use ledger_core::{Error, Log, LogConfig, MemStore, MemTree, Store, TreeHash};

fn batches(key: &ledger_core::NamedKey) -> Vec<Vec<Vec<u8>>> {
    let mut b = vec![vec![identity(key)]];
    for r in 0..12 {
        b.push(sealed_run(TreeHash::Blake3, &format!("run-{r}"), key, r % 4));
    }
    b
}

/// Checks the recovered log: acknowledged entries present, tree equal to a recomputation, fsck
/// clean.
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
    // Everything stored agrees: entries, tiles, run index, checkpoints, the edge.
    let report = ledger_core::fsck::check(&**inner, &log_key().verifier()).unwrap();
    assert!(report.is_clean(), "{:?}", report.findings);
    assert_eq!(report.size, size);
    log
}

#[test]
fn a_failed_commit_poisons_at_every_step() {
    let key = gateway_key();
    let all = batches(&key);
    for mode in [Mode::Before, Mode::After, Mode::Sync] {
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
                Mode::After | Mode::Sync => {
                    assert_eq!(present.len(), failed_batch.len(), "the persisted batch is recovered")
                }
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
