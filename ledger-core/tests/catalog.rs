//! The run catalog through the log: listings by caller, context and parent, newest first and
//! paged with `before`; open runs until their seal; payload references; nothing listed past the
//! durable size; idempotent resends catalogued once; consistent with the log after a failed
//! write and a reopen; and fsck naming a damaged key.

mod common;

use std::sync::Arc;

use common::*;
use ledger_core::entry::Protocol;
use ledger_core::fsck::{self, Finding};
use ledger_core::seal::seal_event;
use ledger_core::store::CommitBatch;
use ledger_core::store::catalog::{CatalogOp, RunKey as K, open_key, run_key};
use ledger_core::{Error, Event, Log, MemStore, RunKey, RunRef, RunStatus, Store, TreeHash};

fn accepted(run: &str, caller: &str, context: Option<&str>, parent: Option<&str>) -> Vec<u8> {
    entry(
        run,
        0,
        "gateway",
        Event::TaskAccepted {
            protocol: Protocol::A2a,
            skill: "summarize".into(),
            caller: caller.into(),
            input_hash: *blake3::hash(run.as_bytes()).as_bytes(),
            context: context.map(Into::into),
            parent: parent.map(|p| ledger_core::RunId::new(p).unwrap()),
        },
    )
}

fn working(run: &str, seq: u64) -> Vec<u8> {
    entry(run, seq, "gateway", Event::TaskStatus { state: "working".into(), message: None })
}

/// A seal of `run` whose entries so far are `before`.
fn seal(run: &str, before: &[Vec<u8>]) -> Vec<u8> {
    let ev = seal_event(TreeHash::Blake3, run, before, RunStatus::Completed, &gateway_key());
    entry(run, before.len() as u64, "gateway", ev)
}

fn open_log(store: Arc<dyn Store>) -> Log {
    let log = Log::open(store, log_key(), quiet_config()).unwrap();
    log.append(vec![identity(&gateway_key())]).unwrap();
    log
}

fn runs(v: Vec<RunRef>) -> Vec<String> {
    v.into_iter().map(|r| r.run).collect()
}

/// 300 runs, each accepted at its own index: caller `c{i % 3}`, context `ctx{i % 10}`, and
/// runs 1.. on behalf of run `r0`.
fn many_runs(log: &Log) -> Vec<u64> {
    let mut indices = Vec::new();
    for i in 0..300 {
        let parent = (i > 0).then_some("r0");
        let e = accepted(&format!("r{i}"), &format!("c{}", i % 3), Some(&format!("ctx{}", i % 10)), parent);
        indices.extend(log.append(vec![e]).unwrap());
    }
    indices
}

#[test]
fn listings_are_newest_first_paged_with_before_and_counted() {
    let log = open_log(Arc::new(MemStore::new()));
    let indices = many_runs(&log);
    let expected: Vec<RunRef> =
        (0..300).filter(|i| i % 3 == 1).rev().map(|i| RunRef { run: format!("r{i}"), index: indices[i] }).collect();
    assert_eq!(log.count_runs_by(RunKey::Caller("c1")).unwrap(), 100);
    // Pages of 30, each starting below the last one's oldest run, until one comes back short.
    let mut pages = Vec::new();
    let mut before = None;
    loop {
        let page = log.runs_by(RunKey::Caller("c1"), before, 30).unwrap();
        before = page.last().map(|r| r.index);
        let done = page.len() < 30;
        pages.push(page);
        if done {
            break;
        }
    }
    assert_eq!(pages.len(), 4, "100 runs: three full pages and one of 10");
    assert_eq!(pages.concat(), expected);
    assert!(pages.concat().windows(2).all(|w| w[0].index > w[1].index), "newest first");

    assert_eq!(log.count_runs_by(RunKey::Context("ctx7")).unwrap(), 30);
    assert_eq!(runs(log.runs_by(RunKey::Context("ctx7"), None, 2).unwrap()), vec!["r297", "r287"]);
    assert_eq!(log.count_runs_by(RunKey::Parent("r0")).unwrap(), 299);
    assert_eq!(runs(log.runs_by(RunKey::Parent("r0"), Some(indices[3]), 10).unwrap()), vec!["r2", "r1"]);
    assert_eq!(log.count_runs_by(RunKey::Parent("r1")).unwrap(), 0);
    assert!(log.runs_by(RunKey::Caller("nobody"), None, 10).unwrap().is_empty());
    // A `before` past the log is the durable size.
    assert_eq!(log.runs_by(RunKey::Caller("c2"), Some(u64::MAX), 1).unwrap()[0].run, "r299");
    let report = fsck::check(&**log.store(), &log_key().verifier()).unwrap();
    assert!(report.is_clean(), "{:?}", report.findings);
    assert!(report.catalog_keys.unwrap() >= 4 * 300, "caller, context, open and input hash per run");
}

#[test]
fn open_runs_go_away_at_their_seal() {
    let log = open_log(Arc::new(MemStore::new()));
    let a = vec![accepted("a", "u", None, None), working("a", 1)];
    let ia = log.append(a.clone()).unwrap()[0];
    let ib = log.append(vec![accepted("b", "u", None, None)]).unwrap()[0];
    // Accepted and sealed in one batch: never open.
    let c0 = accepted("c", "u", None, None);
    log.append(vec![c0.clone(), seal("c", &[c0])]).unwrap();
    assert_eq!(
        log.open_runs().unwrap(),
        vec![RunRef { run: "a".into(), index: ia }, RunRef { run: "b".into(), index: ib }]
    );
    log.append(vec![seal("a", &a)]).unwrap();
    assert_eq!(runs(log.open_runs().unwrap()), vec!["b"]);
    // The run stays listed for its caller.
    assert_eq!(runs(log.runs_by(RunKey::Caller("u"), None, 10).unwrap()), vec!["c", "b", "a"]);
}

#[test]
fn payload_runs_name_every_run_that_names_a_hash() {
    let log = open_log(Arc::new(MemStore::new()));
    let h = [0x42; 32];
    let artifact = |run: &str, seq| {
        entry(
            run,
            seq,
            "gateway",
            Event::ArtifactAdded { name: "a".into(), media_type: "t/p".into(), bytes: 1, hash: h },
        )
    };
    let written =
        |run: &str, seq| entry(run, seq, "gateway", Event::WorkspaceWritten { path: "f".into(), bytes: 1, hash: h });
    log.append(vec![accepted("x", "u", None, None), artifact("x", 1), written("x", 2)]).unwrap();
    log.append(vec![accepted("y", "u", None, None), written("y", 1)]).unwrap();
    log.append(vec![accepted("z", "u", None, None)]).unwrap();
    assert_eq!(log.payload_runs(&h, 10).unwrap(), vec!["x", "y"]);
    assert_eq!(log.payload_runs(&h, 1).unwrap(), vec!["x"]);
    // Each run at its first entry naming the hash: x's artifact, not its later write.
    let x = log.run_entries("x").unwrap();
    let y = log.run_entries("y").unwrap();
    assert_eq!(
        log.payload_refs(&h, 10).unwrap(),
        vec![RunRef { run: "x".into(), index: x[1].0 }, RunRef { run: "y".into(), index: y[1].0 }]
    );
    let input = *blake3::hash(b"z").as_bytes();
    assert_eq!(log.payload_runs(&input, 10).unwrap(), vec!["z"], "a task's input hash");
}

#[test]
fn an_identical_resend_is_catalogued_once() {
    let store = Arc::new(MemStore::new());
    let log = open_log(store.clone());
    let batch = vec![accepted("r", "u", Some("ctx"), None), working("r", 1)];
    let first = log.append(batch.clone()).unwrap();
    assert_eq!(log.append(batch.clone()).unwrap(), first);
    log.close().unwrap();
    drop(log);
    // And again after a reopen, where the store alone settles it.
    let log = Log::open(store.clone() as Arc<dyn Store>, log_key(), quiet_config()).unwrap();
    assert_eq!(log.append(batch).unwrap(), first);
    assert_eq!(log.count_runs_by(RunKey::Caller("u")).unwrap(), 1);
    assert_eq!(log.count_runs_by(RunKey::Context("ctx")).unwrap(), 1);
    assert_eq!(log.open_runs().unwrap().len(), 1);
    assert!(fsck::check(&*store, &log_key().verifier()).unwrap().is_clean());
}

#[test]
fn nothing_past_the_durable_size_is_listed() {
    let inner = Arc::new(MemStore::new());
    let faulty = Arc::new(Faulty::new(inner.clone(), Mode::Before, u64::MAX));
    let log = open_log(faulty.clone());
    log.append(vec![accepted("old", "u", Some("ctx"), Some("p"))]).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let _held = faulty.hold_syncs();
        // Written (the store's readers see it) but not synced: not durable, not acknowledged.
        let h = [0x42; 32];
        let new = vec![
            accepted("new", "u", Some("ctx"), Some("p")),
            entry("new", 1, "gateway", Event::WorkspaceRead { path: "f".into(), bytes: 1, hash: h }),
        ];
        log.append_with(new, move |r| tx.send(r).unwrap());
        // Wait for the write itself: the catalog keys appear in the store.
        while inner.count_runs_by(RunKey::Caller("u")).unwrap() < 2 {
            std::thread::yield_now();
        }
        assert_eq!(inner.open_runs().unwrap().len(), 2, "the store has it");
        assert_eq!(runs(log.runs_by(RunKey::Caller("u"), None, 10).unwrap()), vec!["old"]);
        assert_eq!(runs(log.runs_by(RunKey::Context("ctx"), Some(u64::MAX), 10).unwrap()), vec!["old"]);
        assert_eq!(log.count_runs_by(RunKey::Parent("p")).unwrap(), 1);
        assert_eq!(runs(log.open_runs().unwrap()), vec!["old"]);
        assert!(log.payload_runs(&h, 10).unwrap().is_empty());
        assert!(rx.try_recv().is_err(), "not acknowledged while the sync is held");
    }
    rx.recv().unwrap().unwrap();
    assert_eq!(runs(log.runs_by(RunKey::Caller("u"), None, 10).unwrap()), vec!["new", "old"]);
    assert_eq!(log.count_runs_by(RunKey::Parent("p")).unwrap(), 2);
    assert_eq!(log.payload_runs(&[0x42; 32], 10).unwrap(), vec!["new"]);
}

#[test]
fn a_failed_write_leaves_the_catalog_with_the_log_after_reopen() {
    for mode in [Mode::Before, Mode::After, Mode::Sync] {
        let inner = Arc::new(MemStore::new());
        // Commit 0 creates the log, 1 the identity, 2 run a, 3 (failing) run b.
        let faulty = Arc::new(Faulty::new(inner.clone(), mode, 3));
        let log = open_log(faulty.clone());
        let a = vec![accepted("a", "u", Some("ctx"), None), working("a", 1)];
        log.append(a.clone()).unwrap();
        let b0 = accepted("b", "u", Some("ctx"), Some("a"));
        let b = vec![b0.clone(), seal("b", &[b0])];
        assert!(matches!(log.append(b.clone()), Err(Error::Poisoned(_))), "{mode:?}");
        drop(log);

        let log = Log::open(inner.clone() as Arc<dyn Store>, log_key(), quiet_config()).unwrap();
        let report = fsck::check(&*inner, &log_key().verifier()).unwrap();
        assert!(report.is_clean(), "{mode:?}: {:?}", report.findings);
        let listed = runs(log.runs_by(RunKey::Context("ctx"), None, 10).unwrap());
        match mode {
            Mode::Before => assert_eq!(listed, vec!["a"], "nothing of the failed batch"),
            Mode::After | Mode::Sync => assert_eq!(listed, vec!["b", "a"], "the persisted batch, whole"),
        }
        assert_eq!(runs(log.open_runs().unwrap()), vec!["a"], "{mode:?}: b was accepted and sealed at once");
        // Resending the batch after the reopen catalogues it exactly once.
        log.append(b).unwrap();
        log.append(vec![seal("a", &a)]).unwrap();
        assert_eq!(runs(log.runs_by(RunKey::Context("ctx"), None, 10).unwrap()), vec!["b", "a"]);
        assert_eq!(runs(log.runs_by(RunKey::Parent("a"), None, 10).unwrap()), vec!["b"]);
        assert!(log.open_runs().unwrap().is_empty());
        log.close().unwrap();
        let report = fsck::check(&*inner, &log_key().verifier()).unwrap();
        assert!(report.is_clean(), "{mode:?}: {:?}", report.findings);
    }
}

#[test]
fn fsck_names_each_damaged_catalog_key() {
    let store = Arc::new(MemStore::new());
    let log = open_log(store.clone());
    let ia = log.append(vec![accepted("a", "alice", None, None)]).unwrap()[0];
    let b0 = accepted("b", "bob", None, None);
    log.append(vec![b0.clone(), seal("b", &[b0])]).unwrap();
    log.close().unwrap();
    let size = log.durable_size();
    let damage = |ops: Vec<CatalogOp>| {
        store.commit(&CommitBatch { catalog: ops, tree_size: size, ..CommitBatch::default() }).unwrap();
        fsck::check(&*store, &log_key().verifier()).unwrap().findings
    };
    let catalog = |key: &str, what: &str| Finding::Catalog { key: key.into(), what: what.into() };

    // A listing key removed.
    let alice = run_key(K::Caller("alice"), ia);
    assert_eq!(
        damage(vec![CatalogOp::Delete(alice.clone())]),
        vec![catalog(&format!("caller \"alice\" accepted at {ia}"), "missing")]
    );
    // Restored, and pointing at another run.
    assert_eq!(
        damage(vec![CatalogOp::Put(alice.clone(), b"b".to_vec())]),
        vec![catalog(&format!("caller \"alice\" accepted at {ia}"), "holds \"b\", the entries imply \"a\"")]
    );
    damage(vec![CatalogOp::Put(alice, b"a".to_vec())]);
    // A sealed run marked open again.
    assert_eq!(
        damage(vec![CatalogOp::Put(open_key("b"), 5u64.to_be_bytes().to_vec())]),
        vec![catalog("open run \"b\"", "stored, but no entry implies it")]
    );
    damage(vec![CatalogOp::Delete(open_key("b"))]);
    assert!(fsck::check(&*store, &log_key().verifier()).unwrap().is_clean());
}

/// The search keys (format v5) are checked as every other: a missing one, an extra one, and a
/// latest seal that says another status are each named.
#[test]
fn fsck_names_each_damaged_search_key() {
    use ledger_core::RunStatus;
    use ledger_core::store::catalog::{all_key, sealed_key, status_key};
    let store = Arc::new(MemStore::new());
    let log = open_log(store.clone());
    let ia = log.append(vec![accepted("a", "alice", None, None)]).unwrap()[0];
    let b0 = accepted("b", "bob", None, None);
    let ib = log.append(vec![b0.clone(), seal("b", &[b0])]).unwrap();
    log.close().unwrap();
    let size = log.durable_size();
    let damage = |ops: Vec<CatalogOp>| {
        store.commit(&CommitBatch { catalog: ops, tree_size: size, ..CommitBatch::default() }).unwrap();
        fsck::check(&*store, &log_key().verifier()).unwrap().findings
    };
    let catalog = |key: String, what: &str| Finding::Catalog { key, what: what.into() };

    let summary = store.catalog_get(&all_key(ia)).unwrap().expect("a's summary");
    assert_eq!(damage(vec![CatalogOp::Delete(all_key(ia))]), vec![catalog(format!("run accepted at {ia}"), "missing")]);
    damage(vec![CatalogOp::Put(all_key(ia), summary)]);
    // A seal that never was.
    let extra = status_key(RunStatus::Failed, ia);
    assert_eq!(
        damage(vec![CatalogOp::Put(extra.clone(), b"a".to_vec())]),
        vec![catalog(format!("status \"failed\" sealed at {ia}"), "stored, but no entry implies it")]
    );
    damage(vec![CatalogOp::Delete(extra)]);
    // b's latest seal rewritten to say failed.
    let mut latest = store.catalog_get(&sealed_key("b")).unwrap().expect("b's seal");
    assert!(latest.ends_with(b"completed") && u64::from_be_bytes(latest[..8].try_into().unwrap()) == ib[1]);
    let good = latest.clone();
    latest.truncate(16);
    latest.extend_from_slice(b"failed");
    let found = damage(vec![CatalogOp::Put(sealed_key("b"), latest)]);
    assert!(matches!(&found[..], [Finding::Catalog { key, .. }] if key == "latest seal of run \"b\""), "{found:?}");
    damage(vec![CatalogOp::Put(sealed_key("b"), good)]);
    assert!(fsck::check(&*store, &log_key().verifier()).unwrap().is_clean());
}
