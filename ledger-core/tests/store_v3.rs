//! A data directory written by the store format in use (`testdata/store-v3/`: `log.key` and
//! `rocksdb/`, the sample log of `common::fill_sample`), opened by today's code: it must still
//! read, check clean, have the recorded tree, serve a receipt that verifies and take appends. A
//! storage change that strands stores of this format fails here.
//!
//! After an intended format change (with a new store format version, and a new
//! `testdata/store-vN/` beside the old ones), write the new one with
//! `UPDATE_GOLDEN=1 cargo test --release -p ledger-core --features rocksdb --test store_v3`.
#![cfg(feature = "rocksdb")]

mod common;

use std::path::{Path, PathBuf};

use common::*;
use ledger_core::datadir::{LOG_KEY_FILE, STORE_DIR};
use ledger_core::{
    DataDir, LogConfig, ReceiptVerifier, RocksConfig, RocksStore, RunKey, RunRef, RunStatus, Store, fsck,
};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/store-v3")
}

/// What the fixture's JSON records about it.
#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct Recorded {
    format: String,
    origin: String,
    hash: String,
    tree_size: u64,
    root: String,
    checkpoints: Vec<u64>,
    checkpoint: String,
}

/// Writes the sample log into `dir` as a data directory, as small as RocksDB makes it.
fn generate(dir: &Path) -> Recorded {
    let _ = std::fs::remove_dir_all(dir);
    let key = log_key();
    let log = DataDir::new(dir).open(key.name(), quiet_config(), &RocksConfig::default(), || Ok([0x11; 32])).unwrap();
    assert_eq!(log.descriptor().vkey, key.verifier().to_string(), "the fixture's key is log_key()");
    fill_sample(&log);
    let recorded = Recorded {
        format: RocksStore::format().to_string(),
        origin: key.name().to_string(),
        hash: log.hash().to_string(),
        tree_size: log.durable_size(),
        root: hex::encode(log.root_at(SAMPLE_SIZE).unwrap()),
        checkpoints: log.store().checkpoints().unwrap().into_iter().map(|(s, _)| s).collect(),
        checkpoint: log.checkpoint().note.clone(),
    };
    log.close().unwrap();
    drop(log);
    // Everything in table files, then only what opening needs: no write-ahead logs (all of
    // them flushed), no info logs, no options files (the code sets the options), no lock file.
    let db = dir.join(STORE_DIR);
    RocksStore::open(&db, &RocksConfig::default()).unwrap().compact().unwrap();
    for f in std::fs::read_dir(&db).unwrap() {
        let name = f.unwrap().file_name().into_string().unwrap();
        if name.starts_with("LOG") || name.ends_with(".log") || name.starts_with("OPTIONS") || name == "LOCK" {
            std::fs::remove_file(db.join(&name)).unwrap();
        }
    }
    recorded
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for f in std::fs::read_dir(from).unwrap() {
        let f = f.unwrap();
        if f.file_type().unwrap().is_dir() {
            copy_dir(&f.path(), &to.join(f.file_name()));
        } else {
            std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
        }
    }
}

/// Every file under `dir` with its length, in order.
fn listing(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    for f in std::fs::read_dir(dir).unwrap() {
        let f = f.unwrap();
        if f.file_type().unwrap().is_dir() {
            out.extend(listing(&f.path()));
        } else {
            out.push((f.path(), f.metadata().unwrap().len()));
        }
    }
    out.sort();
    out
}

#[test]
fn a_v3_store_opens_checks_clean_and_serves() {
    let json = fixture().with_extension("json");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let recorded = generate(&fixture());
        std::fs::write(&json, serde_json::to_string_pretty(&recorded).unwrap() + "\n").unwrap();
    }
    let recorded: Recorded = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(recorded.format, "a2a-ledger/rocks/v3", "this fixture is of format v3");
    assert!(fixture().join(LOG_KEY_FILE).is_file() && fixture().join(STORE_DIR).join("CURRENT").is_file());

    // A copy: opening a store for writing changes its files.
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    copy_dir(&fixture(), &data);
    // git keeps no file modes: a checkout leaves the fixture's (test-only) key readable by all,
    // which the log refuses to open. A key file as the log writes one is 0600.
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(data.join("log.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let dir = DataDir::new(&data);

    // Read-only: fsck finds it whole and the tree recorded, and changes no file.
    let before = listing(&data);
    let total: u64 = before.iter().map(|(_, len)| len).sum();
    assert!(total < 128 << 10, "the fixture grew to {total} bytes: compact it (see `generate`)");
    let (key, store) = dir.open_read_only(&RocksConfig::default()).unwrap();
    let report = fsck::check(&store, &key).unwrap();
    assert!(report.is_clean(), "{:?}", report.findings);
    assert_eq!((report.size, hex::encode(report.root)), (recorded.tree_size, recorded.root.clone()));
    assert_eq!(report.hash.unwrap().to_string(), recorded.hash);
    assert_eq!(report.checkpoints, recorded.checkpoints.len() as u64);
    drop(store);
    assert_eq!(listing(&data), before, "opening read-only changed the directory");

    // As a server opens it: the same tree and newest checkpoint, a receipt that verifies.
    let no_seed = || Err(std::io::Error::other("the key exists"));
    let log = dir.open_keeping_hash(&recorded.origin, LogConfig::default(), &RocksConfig::default(), no_seed).unwrap();
    assert_eq!(log.durable_size(), recorded.tree_size);
    assert_eq!(hex::encode(log.root_at(recorded.tree_size).unwrap()), recorded.root);
    assert_eq!(log.checkpoint().note, recorded.checkpoint);
    let stored: Vec<u64> = log.store().checkpoints().unwrap().into_iter().map(|(s, _)| s).collect();
    assert_eq!(stored, recorded.checkpoints);
    let receipt = log.receipt("r3").unwrap();
    let verified = ReceiptVerifier::new(log.descriptor().clone()).unwrap().verify(&receipt).unwrap();
    assert_eq!(verified.status, RunStatus::Completed);
    assert_eq!(receipt.entries.len(), 6);

    // It takes appends where it stands: run `open` continues at seq 5.
    let next = entry("open", 5, "gateway", ledger_core::Event::TaskStatus { state: "working".into(), message: None });
    assert_eq!(log.append(vec![next]).unwrap(), vec![recorded.tree_size]);
    log.close().unwrap();
    drop(log);
    let (key, store) = dir.open_read_only(&RocksConfig::default()).unwrap();
    let report = fsck::check(&store, &key).unwrap();
    assert!(report.is_clean(), "{:?}", report.findings);
    assert_eq!(report.size, recorded.tree_size + 1);
}

/// Format v4 added the run catalog: opening the v3 fixture for writing builds it from the
/// entries, so listings answer at once, and the store checks clean (catalog included) after.
#[test]
fn a_v3_store_gets_its_catalog_when_opened_for_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    copy_dir(&fixture(), &data);
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(data.join("log.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let dir = DataDir::new(&data);
    let (_, store) = dir.open_read_only(&RocksConfig::default()).unwrap();
    assert!(!store.has_catalog().unwrap(), "a v3 store read as it is has no catalog");
    drop(store);

    let no_seed = || Err(std::io::Error::other("the key exists"));
    let log = dir.open_keeping_hash(log_key().name(), LogConfig::default(), &RocksConfig::default(), no_seed).unwrap();
    // The sample: identity at 0, `split` accepted at 1 (never sealed), r0..r47 sealed at 7 + 6i,
    // `open` at 295 (never sealed), all for one caller, each with the same artifact.
    let caller = RunKey::Caller("alice@example.com");
    assert_eq!(log.count_runs_by(caller).unwrap(), 50);
    let newest = log.runs_by(caller, None, 3).unwrap();
    let r = |run: &str, index| RunRef { run: run.into(), index };
    assert_eq!(newest, vec![r("open", 295), r("r47", 289), r("r46", 283)]);
    assert_eq!(log.runs_by(caller, Some(13), 5).unwrap(), vec![r("r0", 7), r("split", 1)]);
    assert_eq!(log.open_runs().unwrap(), vec![r("split", 1), r("open", 295)]);
    let artifact = *blake3::hash(b"summary").as_bytes();
    assert_eq!(log.payload_runs(&artifact, 3).unwrap(), vec!["split", "r0", "r1"]);
    log.close().unwrap();
    drop(log);

    let (key, store) = dir.open_read_only(&RocksConfig::default()).unwrap();
    assert!(store.has_catalog().unwrap() && store.catalog_searchable().unwrap(), "marked v5");
    let report = fsck::check(&store, &key).unwrap();
    assert!(report.is_clean(), "{:?}", report.findings);
    // Per run: caller and input hash, open for the two unsealed, the artifact's hash; and (v5)
    // per run its summary, skill, agent, time and accepted index, per seal its status and the
    // run's latest seal.
    assert_eq!(report.catalog_keys, Some(50 * 3 + 2 + 50 * 5 + 48 * 2));
}
