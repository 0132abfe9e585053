//! Crash safety of the durable log. A child process (`ledger-load crash-child`) appends from
//! several threads and prints every acknowledged entry; it is killed with SIGKILL after a random
//! number of acknowledgements, 24 times over one data directory; every other child runs with
//! 64 KiB memtables, so memtables flush to SST files and the WAL switches while it appends (the
//! WAL is flushed by hand, see `store::rocks`: no SST may ever get ahead of the durable WAL).
//! After each kill the store is reopened and checked:
//! - every acknowledged entry is present, at the index it was acknowledged with;
//! - the root recomputed from all stored entries equals the stored tree's root;
//! - the newest checkpoint verifies and is consistent with every earlier stored checkpoint;
//! - `fsck` finds nothing amiss, on the store as the kill left it (opened read-only) and again
//!   after the reopened log closed.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use a2a_ledger_benches::Rng;
use ledger_core::{Checkpoint, DataDir, LogConfig, MemTree, RocksConfig, merkle};

const KILLS: usize = 24;

#[test]
fn sigkill_at_random_moments_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut rng = Rng::from_os();
    let mut acked: Vec<(u64, String)> = Vec::new();
    for round in 0..KILLS {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ledger-load"))
            .args(["crash-child", "--data"])
            .arg(&data)
            .args(["--prefix", &format!("round{round}"), "--appenders", "8"])
            .args(if round % 2 == 1 { &["--write-buffer-bytes", "65536"][..] } else { &[] })
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        assert_eq!(lines.next().unwrap().unwrap(), "READY", "round {round}: child did not start");
        // Kill after a random number of acknowledgements: usually mid-commit.
        let kill_after = rng.range(1, 4000) as usize;
        let mut seen = 0;
        for line in lines.by_ref() {
            let line = line.unwrap();
            let mut parts = line.split(' ');
            assert_eq!(parts.next(), Some("ACK"), "unexpected output {line:?}");
            let index: u64 = parts.next().unwrap().parse().unwrap();
            acked.push((index, parts.next().unwrap().to_string()));
            seen += 1;
            if seen == kill_after {
                break;
            }
        }
        // std's Child::kill is SIGKILL on Unix: no chance to flush, sync or sign anything.
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success(), "round {round}: the child exited by itself");
        // Whatever it printed before dying was acknowledged too.
        for line in lines.map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("ACK ") {
                let (i, h) = rest.split_once(' ').unwrap();
                acked.push((i.parse().unwrap(), h.to_string()));
            }
        }
        check(&data, &acked, round);
    }
    assert!(acked.len() > KILLS, "the children acknowledged entries");
}

/// fsck over the data directory, opened read-only: everything stored agrees.
fn fsck_clean(data: &std::path::Path, round: usize, when: &str) -> u64 {
    let (key, store) = DataDir::new(data).open_read_only(&RocksConfig::default()).unwrap();
    let report = ledger_core::fsck::check(&store, &key).unwrap();
    assert!(report.is_clean(), "round {round}, {when}: fsck: {:?}", report.findings);
    report.size
}

fn check(data: &std::path::Path, acked: &[(u64, String)], round: usize) {
    // As the crash left it, before the log reopens (and signs a checkpoint over what it finds).
    let crashed_size = fsck_clean(data, round, "after the kill");
    let log = DataDir::new(data)
        .open("load.a2a-ledger.example/log", LogConfig::default(), &RocksConfig::default(), || panic!("the key exists"))
        .unwrap_or_else(|e| panic!("round {round}: reopen failed: {e}"));
    let size = log.durable_size();
    for (index, hash) in acked {
        let entry = log.entry(*index).unwrap_or_else(|e| panic!("round {round}: acknowledged entry {index} lost: {e}"));
        assert_eq!(&blake3::hash(&entry).to_hex().to_string(), hash, "round {round}: entry {index} changed");
    }
    // The stored tree equals a recomputation from the stored entries.
    let mut tree = MemTree::new(log.hash());
    log.store()
        .scan_entries(0, size, &mut |i, e| {
            assert_eq!(i, tree.size(), "entries are contiguous");
            tree.push_entry(e);
            Ok(())
        })
        .unwrap();
    assert_eq!(tree.size(), size, "round {round}: entries missing below the tree size");
    assert_eq!(log.root_at(size).unwrap(), tree.root(), "round {round}: stored tree differs from its entries");
    // Every stored checkpoint verifies and is consistent with the newest.
    let vkey = log.descriptor().verifier_key().unwrap();
    let newest = log.checkpoint().checkpoint.clone();
    assert_eq!(newest.root, tree.root_at(newest.size).unwrap());
    for (s, note) in log.store().checkpoints().unwrap() {
        let cp = Checkpoint::open(&note, &vkey).unwrap();
        assert_eq!(cp.size, s);
        assert_eq!(cp.root, tree.root_at(s).unwrap(), "round {round}: checkpoint {s} is off the tree");
        let proof = log.consistency_proof(s, newest.size).unwrap();
        merkle::verify_consistency(log.hash(), s, newest.size, &cp.root, &newest.root, &proof)
            .unwrap_or_else(|e| panic!("round {round}: checkpoint {s} inconsistent with {}: {e}", newest.size));
    }
    assert_eq!(size, crashed_size, "round {round}: the log and fsck see different tree sizes");
    log.close().unwrap();
    drop(log);
    fsck_clean(data, round, "after the reopened log closed");
}
