//! A data directory of store format v5 (`testdata/store-v5/`: `log.key` and `rocksdb/`, the log
//! of [`fill_v4`], the same as `store_v4.rs` writes, with the run catalog's search keys), opened
//! by today's code: it must still read, check clean (catalog included), have the recorded tree,
//! list and search its runs read-only and opened for writing, serve its payloads and refuse the
//! erased one, serve a receipt that verifies and take appends. A storage change that strands v5
//! stores fails here (`store_v4.rs` and `store_v3.rs` keep the same watch over older stores and
//! their upgrades).
//!
//! After an intended format change (with a new store format version, and a new
//! `testdata/store-vN/` beside the old ones), write the new one with
//! `UPDATE_GOLDEN=1 cargo test --release -p ledger-core --features rocksdb --test store_v5`.
#![cfg(feature = "rocksdb")]

mod common;
mod fixture_v4;

use std::path::PathBuf;

use common::*;
use fixture_v4::*;
use ledger_core::datadir::{LOG_KEY_FILE, STORE_DIR};
use ledger_core::seal::seal_event;
use ledger_core::store::catalog::{self, SearchBounds};
use ledger_core::{
    DataDir, Entry, Error, Event, LogConfig, PayloadLimits, PayloadState, PayloadStore, ReceiptVerifier, RocksConfig,
    RunId, RunKey, RunRef, RunSearch, RunStatus, StatusFilter, Store, TreeHash, fsck,
};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/store-v5")
}

#[test]
fn a_v5_store_opens_checks_clean_and_searches_and_serves_its_runs_and_payloads() {
    let json = fixture().with_extension("json");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let recorded = generate(&fixture());
        std::fs::write(&json, serde_json::to_string_pretty(&recorded).unwrap() + "\n").unwrap();
    }
    let recorded: Recorded = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(recorded.format, "a2a-ledger/rocks/v5", "this fixture is of format v5");
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

    // Read-only: fsck finds it whole, its catalog that of its entries, the tree recorded; and
    // changes no file.
    let before = listing(&data);
    let total: u64 = before.iter().map(|(_, len)| len).sum();
    assert!(total < 128 << 10, "the fixture grew to {total} bytes: compact it (see `generate`)");
    let (key, store) = dir.open_read_only(&RocksConfig::default()).unwrap();
    assert!(store.has_catalog().unwrap() && store.catalog_searchable().unwrap(), "a v5 store has its search keys");
    let report = fsck::check(&store, &key).unwrap();
    assert!(report.is_clean(), "{:?}", report.findings);
    assert_eq!((report.size, hex::encode(report.root)), (recorded.tree_size, recorded.root.clone()));
    assert_eq!(report.hash.unwrap().to_string(), recorded.hash);
    assert_eq!(report.checkpoints, recorded.checkpoints.len() as u64);
    // Per run: caller, input hash; context and parent where given; open for `job` and `job-b`;
    // `job-a`'s artifact, `job-b`'s read of it and its `payload` field (the erasure: none); the
    // search keys: per run (5) its summary, skill, agent, time and accepted index, per seal (3)
    // its status key and the run's latest seal.
    assert_eq!(report.catalog_keys, Some(recorded.catalog_keys));
    assert_eq!(recorded.catalog_keys, 4 + 5 + 7 + 2 + 4 + 5 * 5 + 3 * 2);
    // Read-only, it searches as it is.
    let bounds = SearchBounds { limit: 10, max_examined: 100, below: V4_SIZE };
    let found = catalog::search(&store, &RunSearch::default(), None, bounds, &|_| true).unwrap();
    let runs: Vec<&str> = found.runs.iter().map(|r| r.run.as_str()).collect();
    assert_eq!(runs, vec!["job-c", "secret", "job-b", "job-a", "job"]);
    drop(store);
    assert_eq!(listing(&data), before, "opening read-only changed the directory");
    // The erased payload's bytes left the files (compacted away); a present one's are there.
    let files: Vec<Vec<u8>> = before.iter().map(|(path, _)| std::fs::read(path).unwrap()).collect();
    let holds = |bytes: &[u8]| files.iter().any(|f| f.windows(bytes.len()).any(|w| w == bytes));
    assert!(holds(INPUT) && !holds(SECRET));

    // As a server opens it: the same tree and newest checkpoint.
    let no_seed = || Err(std::io::Error::other("the key exists"));
    let log = dir.open_keeping_hash(&recorded.origin, LogConfig::default(), &RocksConfig::default(), no_seed).unwrap();
    assert_eq!(log.durable_size(), recorded.tree_size);
    assert_eq!(recorded.tree_size, V4_SIZE);
    assert_eq!(hex::encode(log.root_at(recorded.tree_size).unwrap()), recorded.root);
    assert_eq!(log.checkpoint().note, recorded.checkpoint);
    let stored: Vec<u64> = log.store().checkpoints().unwrap().into_iter().map(|(s, _)| s).collect();
    assert_eq!(stored, recorded.checkpoints);

    // Its runs, as the catalog lists them.
    let r = |run: &str, index| RunRef { run: run.into(), index };
    let alice = RunKey::Caller("alice");
    assert_eq!(
        log.runs_by(alice, None, 10).unwrap(),
        vec![r("job-c", 16), r("secret", 12), r("job-a", 3), r("job", 1)]
    );
    assert_eq!(log.runs_by(alice, Some(12), 1).unwrap(), vec![r("job-a", 3)]);
    assert_eq!(log.count_runs_by(alice).unwrap(), 4);
    assert_eq!(log.runs_by(RunKey::Caller("bob"), None, 10).unwrap(), vec![r("job-b", 8)]);
    assert_eq!(
        log.runs_by(RunKey::Context("ctx-1"), None, 10).unwrap(),
        vec![r("job-b", 8), r("job-a", 3), r("job", 1)]
    );
    assert_eq!(
        log.runs_by(RunKey::Parent("job"), None, 10).unwrap(),
        vec![r("job-c", 16), r("job-b", 8), r("job-a", 3)]
    );
    assert_eq!(log.open_runs().unwrap(), vec![r("job", 1), r("job-b", 8)]);
    assert_eq!(log.payload_refs(&blake3(INPUT), 10).unwrap(), vec![r("job", 1), r("job-b", 9)]);
    assert_eq!(log.payload_refs(&blake3(ARTIFACT), 10).unwrap(), vec![r("job-a", 5), r("job-b", 10)]);
    assert_eq!(log.payload_runs(&blake3(SECRET), 10).unwrap(), vec!["secret"], "erasure removes no reference");

    // Its payloads: present, named but never stored, erased (with the index of the erasure).
    let payloads = PayloadStore::new(log.store().clone(), PayloadLimits::default());
    assert_eq!(payloads.get(&blake3(INPUT)).unwrap().as_deref(), Some(INPUT));
    assert_eq!(payloads.state(&blake3(ARTIFACT)).unwrap(), PayloadState::Present { len: ARTIFACT.len() as u64 });
    let chunks: Vec<Vec<u8>> = payloads.read(&blake3(ARTIFACT)).unwrap().map(Result::unwrap).collect();
    assert_eq!(chunks.concat(), ARTIFACT);
    assert_eq!(payloads.state(&blake3(b"job-a")).unwrap(), PayloadState::Missing);
    assert_eq!(payloads.state(&blake3(SECRET)).unwrap(), PayloadState::Erased { index: ERASED_AT });
    assert!(matches!(payloads.get(&blake3(SECRET)), Err(Error::PayloadErased { index: ERASED_AT })));
    assert!(matches!(payloads.put(&blake3(SECRET), SECRET), Err(Error::PayloadErased { index: ERASED_AT })));
    assert_eq!(payloads.usage().unwrap(), (INPUT.len() + ARTIFACT.len()) as u64);
    let erasure = Entry::decode(&log.entry(ERASED_AT).unwrap()).unwrap();
    assert_eq!(erasure.run, RunId::erasure(&blake3(SECRET)));
    assert!(matches!(erasure.event, Event::PayloadErased { hash, .. } if hash == blake3(SECRET)));

    // Opened for writing, it searches the same.
    let every = log.search_runs(&RunSearch::default(), None, 10, 100, &|_| true).unwrap();
    let names = |p: &ledger_core::SearchPage| p.runs.iter().map(|r| r.run.clone()).collect::<Vec<_>>();
    assert_eq!(names(&every), vec!["job-c", "secret", "job-b", "job-a", "job"]);
    assert_eq!(every.cursor, None);
    let job_a = &every.runs[3];
    assert_eq!(
        (job_a.index, job_a.ts, job_a.skill.as_str(), job_a.caller.as_str(), job_a.agent.as_str(), job_a.entries),
        (3, T0, "summarize", "alice", "gateway", 5)
    );
    assert_eq!(job_a.sealed.as_ref().map(|s| (s.index, s.status)), Some((7, RunStatus::Completed)));
    let completed = RunSearch { status: Some(StatusFilter::Sealed(RunStatus::Completed)), ..RunSearch::default() };
    assert_eq!(
        names(&log.search_runs(&completed, None, 10, 100, &|_| true).unwrap()),
        vec!["job-c", "secret", "job-a"]
    );
    let open = RunSearch { status: Some(StatusFilter::Open), caller: Some("bob".into()), ..RunSearch::default() };
    assert_eq!(names(&log.search_runs(&open, None, 10, 100, &|_| true).unwrap()), vec!["job-b"]);
    let skill = RunSearch { skill: Some("summarize".into()), agent: Some("gateway".into()), ..RunSearch::default() };
    let page = log.search_runs(&skill, None, 2, 100, &|_| true).unwrap();
    assert_eq!(names(&page), vec!["job-c", "secret"]);
    let rest = log.search_runs(&skill, page.cursor.as_deref(), 10, 100, &|_| true).unwrap();
    assert_eq!(names(&rest), vec!["job-b", "job-a", "job"]);

    // A receipt that verifies.
    let receipt = log.receipt("job-a").unwrap();
    let verified = ReceiptVerifier::new(log.descriptor().clone()).unwrap().verify(&receipt).unwrap();
    assert_eq!((verified.status, receipt.entries.len()), (RunStatus::Completed, 5));

    // It takes appends where it stands: `job-b` ends, so it is no longer open.
    let job_b: Vec<Vec<u8>> = log.run_entries("job-b").unwrap().into_iter().map(|(_, e)| e).collect();
    let seal = seal_event(TreeHash::Blake3, "job-b", &job_b, RunStatus::Completed, &gateway_key());
    assert_eq!(log.append(vec![entry_with("job-b", 4, seal, None)]).unwrap(), vec![V4_SIZE]);
    assert_eq!(log.open_runs().unwrap(), vec![r("job", 1)]);
    drop(payloads);
    log.close().unwrap();
    drop(log);
    let (key, store) = dir.open_read_only(&RocksConfig::default()).unwrap();
    let report = fsck::check(&store, &key).unwrap();
    assert!(report.is_clean(), "{:?}", report.findings);
    // Less `job-b`'s open key, plus its seal's status key and latest seal.
    assert_eq!((report.size, report.catalog_keys), (V4_SIZE + 1, Some(recorded.catalog_keys - 1 + 2)));
}
