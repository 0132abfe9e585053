//! fsck over a small log in memory: a clean log gives a clean report, and each kind of damage,
//! done one at a time, gives exactly its findings.

mod common;

use std::sync::Arc;

use common::*;
use ledger_core::fsck::{self, Finding, Report};
use ledger_core::store::{CommitBatch, RunSegment, TILE_WIDTH, encode_tile};
use ledger_core::{Checkpoint, Event, Log, MemStore, NamedKey, Store};

/// The sample log in a store that can hide things, and the log's root.
fn sample() -> (Arc<Hiding>, ledger_core::Hash) {
    let store = Arc::new(Hiding::default());
    let log = Log::open(store.clone() as Arc<dyn Store>, log_key(), quiet_config()).unwrap();
    fill_sample(&log);
    let root = log.root_at(SAMPLE_SIZE).unwrap();
    log.close().unwrap();
    (store, root)
}

fn check(store: &dyn Store) -> Report {
    fsck::check(store, &log_key().verifier()).unwrap()
}

/// Overwrites stored data with `batch`, keeping the tree size.
fn overwrite(store: &Hiding, mut batch: CommitBatch) {
    batch.tree_size = SAMPLE_SIZE;
    store.commit(&batch).unwrap();
}

/// Index of `run`'s entry `seq`.
fn index_of(store: &Hiding, run: &str, seq: u64) -> u64 {
    store.run_record(run, seq).unwrap().unwrap().index
}

fn other_working(run: &str, seq: u64) -> Vec<u8> {
    entry(run, seq, "gateway", Event::TaskStatus { state: "input_required".into(), message: None })
}

#[test]
fn a_clean_log_is_clean() {
    let (store, root) = sample();
    let r = check(&*store);
    assert_eq!(r.findings, vec![], "{r:?}");
    assert!(r.is_clean());
    assert_eq!((r.size, r.root, r.checkpoints), (SAMPLE_SIZE, root, 3));
    // One segment for the identity, three for `split`, one for each other run.
    assert_eq!(r.segments, 1 + 3 + 48 + 1);
}

#[test]
fn an_empty_store_is_clean() {
    let r = check(&MemStore::new());
    assert!(r.is_clean(), "{r:?}");
    assert_eq!(r.size, 0);
}

#[test]
fn a_changed_entry_under_a_full_tile() {
    let (store, _) = sample();
    // Seq 2 of `split` (index 3): still a valid entry of the same run and seq.
    assert_eq!(index_of(&store, "split", 2), 3);
    overwrite(&store, CommitBatch { entries: vec![(3, other_working("split", 2).into())], ..Default::default() });
    let r = check(&*store);
    // The stored tile holds the old leaf; the checkpoints above it and the right edge (built
    // from the tile's top) hold the old root.
    assert_eq!(
        r.findings,
        vec![
            Finding::TileMismatch { level: 0, index: 0, node: Some((0, 3)) },
            Finding::CheckpointRoot { size: 103 },
            Finding::CheckpointRoot { size: 300 },
            Finding::EdgeRoot,
        ]
    );
}

#[test]
fn a_changed_entry_at_the_edge() {
    let (store, _) = sample();
    let i = index_of(&store, "open", 1);
    assert!(i >= TILE_WIDTH);
    overwrite(&store, CommitBatch { entries: vec![(i, other_working("open", 1).into())], ..Default::default() });
    assert_eq!(check(&*store).findings, vec![Finding::CheckpointRoot { size: 300 }]);
}

#[test]
fn an_undecodable_entry() {
    let (store, _) = sample();
    overwrite(&store, CommitBatch { entries: vec![(299, b"not cbor".to_vec().into())], ..Default::default() });
    let f = check(&*store).findings;
    assert!(matches!(&f[..], [Finding::BadEntry { index: 299, .. }, Finding::CheckpointRoot { size: 300 }]), "{f:?}");
}

#[test]
fn a_missing_entry() {
    let (store, _) = sample();
    store.entries.lock().unwrap().push(280);
    let f = check(&*store).findings;
    assert!(
        matches!(&f[..], [Finding::MissingEntries { from: 280, to: 281 }, Finding::EdgeUnbuildable { .. }]),
        "{f:?}"
    );
    // At the end too.
    store.entries.lock().unwrap().extend([298, 299]);
    let f = check(&*store).findings;
    assert!(matches!(f[1], Finding::MissingEntries { from: 298, to: 300 }), "{f:?}");
}

#[test]
fn an_entry_beyond_the_tree() {
    let (store, _) = sample();
    overwrite(&store, CommitBatch { entries: vec![(300, other_working("open", 5).into())], ..Default::default() });
    assert_eq!(check(&*store).findings, vec![Finding::EntryBeyondSize { index: 300 }]);
}

#[test]
fn a_changed_tile_node() {
    let (store, _) = sample();
    let mut tile = store.tile(0, 0).unwrap().unwrap();
    tile[2 + 32 * 7] ^= 1; // row 0, position 7
    overwrite(&store, CommitBatch { tiles: vec![(0, 0, tile)], ..Default::default() });
    assert_eq!(check(&*store).findings, vec![Finding::TileMismatch { level: 0, index: 0, node: Some((0, 7)) }]);

    // A node of row 3.
    let (store, _) = sample();
    let mut tile = store.tile(0, 0).unwrap().unwrap();
    tile[2 + 32 * (256 + 128 + 64 + 5)] ^= 1;
    overwrite(&store, CommitBatch { tiles: vec![(0, 0, tile)], ..Default::default() });
    assert_eq!(check(&*store).findings, vec![Finding::TileMismatch { level: 0, index: 0, node: Some((3, 5)) }]);
}

#[test]
fn a_truncated_tile() {
    let (store, _) = sample();
    let tile = store.tile(0, 0).unwrap().unwrap();
    overwrite(&store, CommitBatch { tiles: vec![(0, 0, tile[..100].to_vec())], ..Default::default() });
    let f = check(&*store).findings;
    assert!(
        matches!(&f[..], [Finding::TileMismatch { level: 0, index: 0, node: None }, Finding::EdgeUnbuildable { .. }]),
        "{f:?}"
    );
}

#[test]
fn a_missing_tile() {
    let (store, _) = sample();
    store.tiles.lock().unwrap().push((0, 0));
    let f = check(&*store).findings;
    assert!(matches!(&f[..], [Finding::MissingTile { level: 0, index: 0 }, Finding::EdgeUnbuildable { .. }]), "{f:?}");
}

#[test]
fn a_tile_where_the_tree_has_none() {
    let (store, _) = sample();
    let partial = encode_tile(&[vec![[0; 32]; 2], vec![[0; 32]]]);
    overwrite(&store, CommitBatch { tiles: vec![(0, 1, partial.clone())], ..Default::default() });
    assert_eq!(check(&*store).findings, vec![Finding::UnexpectedTile { level: 0, index: 1 }]);
    let (store, _) = sample();
    overwrite(&store, CommitBatch { tiles: vec![(1, 0, partial)], ..Default::default() });
    assert_eq!(check(&*store).findings, vec![Finding::UnexpectedTile { level: 1, index: 0 }]);
}

#[test]
fn a_missing_run_segment() {
    let (store, _) = sample();
    // `split` has segments at seqs 0, 2 and 4.
    store.segments.lock().unwrap().push(("split".into(), 2));
    let (i2, i3) = (index_of(&store, "split", 2), index_of(&store, "split", 3));
    assert_eq!(
        check(&*store).findings,
        vec![
            Finding::RunSegments { run: "split".into(), expected_seq: 2, first_seq: 4 },
            Finding::EntryNotIndexed { index: i2 },
            Finding::EntryNotIndexed { index: i3 },
        ]
    );
    // The last segment of a run: nothing follows, its entries are unindexed.
    let (store, _) = sample();
    store.segments.lock().unwrap().push(("split".into(), 4));
    let (i4, i5) = (index_of(&store, "split", 4), index_of(&store, "split", 5));
    assert_eq!(
        check(&*store).findings,
        vec![Finding::EntryNotIndexed { index: i4 }, Finding::EntryNotIndexed { index: i5 }]
    );
}

#[test]
fn an_overlapping_run_segment() {
    let (store, _) = sample();
    let i1 = index_of(&store, "split", 1);
    let seg = RunSegment { run: "split".into(), first_seq: 1, first_index: i1, flags: vec![0] };
    overwrite(&store, CommitBatch { runs: vec![seg], ..Default::default() });
    let f = check(&*store).findings;
    assert!(
        matches!(&f[..], [
            Finding::RunSegments { run, expected_seq: 2, first_seq: 1 },
            Finding::RunRecordMismatch { seq: 1, index, .. },
        ] if run == "split" && *index == i1),
        "{f:?}"
    );
}

#[test]
fn a_run_record_that_disagrees_with_its_entry() {
    // Wrong flags: the seal of r3 not marked sealed.
    let (store, _) = sample();
    let first = index_of(&store, "r3", 0);
    let seg = RunSegment { run: "r3".into(), first_seq: 0, first_index: first, flags: vec![0; 6] };
    overwrite(&store, CommitBatch { runs: vec![seg], ..Default::default() });
    let f = check(&*store).findings;
    assert!(
        matches!(&f[..], [Finding::RunRecordMismatch { run, seq: 5, index, .. }] if run == "r3" && *index == first + 5),
        "{f:?}"
    );

    // Pointing one entry further: every record names an entry of another seq or run.
    let (store, _) = sample();
    let seg = RunSegment { run: "r3".into(), first_seq: 0, first_index: first + 1, flags: vec![0, 0, 0, 0, 0, 1] };
    overwrite(&store, CommitBatch { runs: vec![seg], ..Default::default() });
    let f = check(&*store).findings;
    assert_eq!(f.iter().filter(|f| matches!(f, Finding::RunRecordMismatch { .. })).count(), 6, "{f:?}");
    assert!(f.contains(&Finding::EntryNotIndexed { index: first }), "{f:?}");

    // Beyond the tree.
    let (store, _) = sample();
    let seg = RunSegment { run: "ghost".into(), first_seq: 0, first_index: 5000, flags: vec![0] };
    overwrite(&store, CommitBatch { runs: vec![seg], ..Default::default() });
    let f = check(&*store).findings;
    assert!(matches!(&f[..], [Finding::RunRecordMismatch { index: 5000, .. }]), "{f:?}");
}

#[test]
fn checkpoint_damage() {
    let key = log_key();
    let cp = |size, root| Checkpoint { origin: key.name().into(), size, root, extensions: vec![] };

    // Signed by another key of the same name.
    let (store, root) = sample();
    let other = NamedKey::from_seed(key.name(), [0x99; 32]).unwrap();
    store.put_checkpoint(SAMPLE_SIZE, &cp(SAMPLE_SIZE, root).sign(&other)).unwrap();
    let f = check(&*store).findings;
    assert!(matches!(&f[..], [Finding::CheckpointSignature { size: 300, .. }]), "{f:?}");

    // Stored under another size.
    let (store, root) = sample();
    store.put_checkpoint(250, &cp(SAMPLE_SIZE, root).sign(&key)).unwrap();
    assert_eq!(check(&*store).findings, vec![Finding::CheckpointSize { stored_as: 250, size: 300 }]);

    // Beyond the stored tree.
    let (store, root) = sample();
    store.put_checkpoint(400, &cp(400, root).sign(&key)).unwrap();
    assert_eq!(check(&*store).findings, vec![Finding::CheckpointBeyondSize { size: 400, tree_size: 300 }]);

    // A root that is not the tree's.
    let (store, root) = sample();
    store.put_checkpoint(200, &cp(200, root).sign(&key)).unwrap();
    assert_eq!(check(&*store).findings, vec![Finding::CheckpointRoot { size: 200 }]);

    // None at all.
    let (store, _) = sample();
    store.checkpoints.lock().unwrap().extend([0, 103, 300]);
    assert_eq!(check(&*store).findings, vec![Finding::NoCheckpoint]);
}

#[test]
fn another_logs_key() {
    let (store, _) = sample();
    let other = NamedKey::from_seed("other.example/log", [0x11; 32]).unwrap();
    let f = fsck::check(&*store, &other.verifier()).unwrap().findings;
    assert!(matches!(f[0], Finding::OriginMismatch { .. }), "{f:?}");
    assert_eq!(f.iter().filter(|f| matches!(f, Finding::CheckpointSignature { .. })).count(), 3, "{f:?}");
}
