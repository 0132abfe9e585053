//! The payload store: round trips, limits, quota, dedupe, erasure and its crash window, on the
//! in-memory store and (with the `rocksdb` feature) on RocksDB across reopens.

mod common;

use std::sync::Arc;

use common::*;
use ledger_core::payload::PAYLOAD_CHUNK;
use ledger_core::{Entry, Error, Event, Log, MemStore, PayloadLimits, PayloadState, PayloadStore, RunId, Store};

fn hash(bytes: &[u8]) -> [u8; 32] {
    *blake3::hash(bytes).as_bytes()
}

/// Bytes that differ in every chunk, `len` of them.
fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed).wrapping_add((i >> 20) as u8)).collect()
}

fn mem() -> (Arc<dyn Store>, PayloadStore) {
    let store: Arc<dyn Store> = Arc::new(MemStore::new());
    (store.clone(), PayloadStore::new(store, PayloadLimits::default()))
}

fn open_log(store: &Arc<dyn Store>) -> Log {
    Log::open(store.clone(), log_key(), quiet_config()).unwrap()
}

#[test]
fn small_and_multi_chunk_payloads_round_trip() {
    let (_, p) = mem();
    for (len, seed) in
        [(0, 0), (1, 1), (1000, 2), (PAYLOAD_CHUNK, 3), (PAYLOAD_CHUNK + 1, 4), (3 * PAYLOAD_CHUNK + 7, 5)]
    {
        let b = bytes(len, seed);
        let h = hash(&b);
        assert_eq!(p.state(&h).unwrap(), PayloadState::Missing);
        assert!(p.put(&h, &b).unwrap(), "newly stored: {len}");
        assert_eq!(p.state(&h).unwrap(), PayloadState::Present { len: len as u64 });
        assert_eq!(p.get(&h).unwrap().as_deref(), Some(&b[..]), "{len} bytes");
        let chunks: Vec<Vec<u8>> = p.read(&h).unwrap().map(|c| c.unwrap()).collect();
        assert_eq!(chunks.len(), len.div_ceil(PAYLOAD_CHUNK));
        assert!(chunks.iter().all(|c| c.len() <= PAYLOAD_CHUNK));
        assert_eq!(chunks.concat(), b);
    }
    let total = [0, 1, 1000, PAYLOAD_CHUNK, PAYLOAD_CHUNK + 1, 3 * PAYLOAD_CHUNK + 7].iter().sum::<usize>();
    assert_eq!(p.usage().unwrap(), total as u64);
}

#[test]
fn a_streamed_upload_in_odd_pieces_is_the_same_payload() {
    let (_, p) = mem();
    let b = bytes(2 * PAYLOAD_CHUNK + 12345, 9);
    let h = hash(&b);
    let mut w = p.writer(&h, None).unwrap();
    for piece in b.chunks(333_333) {
        w.write(piece).unwrap();
    }
    assert_eq!(w.len(), b.len() as u64);
    assert!(w.finish().unwrap());
    assert_eq!(p.get(&h).unwrap().unwrap(), b);
}

#[test]
fn bytes_that_do_not_hash_to_the_name_are_refused_and_leave_nothing() {
    let (store, p) = mem();
    let good = bytes(2 * PAYLOAD_CHUNK + 5, 1);
    let h = hash(&good);
    let mut bad = good.clone();
    bad[PAYLOAD_CHUNK + 3] ^= 1;
    let err = p.put(&h, &bad).unwrap_err();
    match &err {
        Error::PayloadMismatch { expected, actual } => {
            assert_eq!(expected, &hex::encode(h));
            assert_eq!(actual, &hex::encode(hash(&bad)));
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains(&hex::encode(h)), "{err}");
    assert_eq!(p.state(&h).unwrap(), PayloadState::Missing);
    assert_eq!(p.usage().unwrap(), 0);
    assert_eq!(
        store.payload_keys(b"", &[0xff; 40]).unwrap(),
        Vec::<Vec<u8>>::new(),
        "no chunk, staged or not, is left"
    );

    // A wrong upload of a payload already present is refused too, and the good bytes stay.
    assert!(p.put(&h, &good).unwrap());
    assert!(matches!(p.put(&h, &bad), Err(Error::PayloadMismatch { .. })));
    assert_eq!(p.get(&h).unwrap().unwrap(), good);
}

#[test]
fn the_size_limit_refuses_declared_and_streamed_bytes() {
    let store: Arc<dyn Store> = Arc::new(MemStore::new());
    let p = PayloadStore::new(store, PayloadLimits { max_bytes: 100, quota_bytes: 1 << 20 });
    let b = bytes(101, 0);
    let h = hash(&b);
    let err = p.put(&h, &b).unwrap_err();
    assert!(matches!(err, Error::PayloadTooLarge { len: 101, max: 100, .. }), "{err}");
    assert!(err.to_string().contains("100 bytes") && err.to_string().contains(&hex::encode(h)), "{err}");
    // Undeclared: refused by the write that passes the limit.
    let mut w = p.writer(&h, None).unwrap();
    w.write(&b[..100]).unwrap();
    assert!(matches!(w.write(&b[100..]), Err(Error::PayloadTooLarge { len: 101, .. })));
    drop(w);
    assert_eq!(p.state(&h).unwrap(), PayloadState::Missing);
    // At the limit: accepted.
    assert!(p.put(&hash(&b[..100]), &b[..100]).unwrap());
}

#[test]
fn the_quota_refuses_what_would_pass_it_and_dedupe_costs_nothing() {
    let store: Arc<dyn Store> = Arc::new(MemStore::new());
    let p = PayloadStore::new(store, PayloadLimits { max_bytes: 1000, quota_bytes: 1500 });
    let (a, b) = (bytes(1000, 1), bytes(600, 2));
    assert!(p.put(&hash(&a), &a).unwrap());
    assert_eq!(p.usage().unwrap(), 1000);
    // The same bytes again: stored once, the usage unchanged.
    assert!(!p.put(&hash(&a), &a).unwrap());
    assert_eq!(p.usage().unwrap(), 1000);
    let err = p.put(&hash(&b), &b).unwrap_err();
    assert!(matches!(err, Error::PayloadQuota { len: 600, used: 1000, quota: 1500, .. }), "{err}");
    assert!(err.to_string().contains("quota"), "{err}");
    // Undeclared: refused at finish.
    let mut w = p.writer(&hash(&b), None).unwrap();
    w.write(&b).unwrap();
    assert!(matches!(w.finish(), Err(Error::PayloadQuota { .. })));
    assert_eq!(p.state(&hash(&b)).unwrap(), PayloadState::Missing);
    // What fits still fits.
    let c = bytes(500, 3);
    assert!(p.put(&hash(&c), &c).unwrap());
    assert_eq!(p.usage().unwrap(), 1500);
}

#[test]
fn an_erased_payload_answers_erased_with_the_entry_index_everywhere() {
    let (store, p) = mem();
    let log = open_log(&store);
    log.append(vec![identity(&gateway_key())]).unwrap();
    let b = bytes(PAYLOAD_CHUNK + 10, 7);
    let h = hash(&b);
    p.put(&h, &b).unwrap();
    let other = bytes(10, 8);
    p.put(&hash(&other), &other).unwrap();

    let index = log.erase_payload(&p, &h, "gdpr art. 17", "dpo", "ledger-server", T0).unwrap();
    assert_eq!(index, 1);
    assert_eq!(p.state(&h).unwrap(), PayloadState::Erased { index });
    assert!(matches!(p.get(&h), Err(Error::PayloadErased { index: 1 })));
    assert!(matches!(p.read(&h), Err(Error::PayloadErased { index: 1 })));
    assert!(matches!(p.put(&h, &b), Err(Error::PayloadErased { index: 1 })));
    assert!(matches!(p.writer(&h, None).map(|_| ()), Err(Error::PayloadErased { index: 1 })));
    assert_eq!(p.usage().unwrap(), 10, "the quota no longer counts it");
    let (from, mut to) = (h.to_vec(), h.to_vec());
    to.push(0xff);
    assert!(store.payload_keys(&from, &to).unwrap().is_empty(), "no byte of it is left");
    // The entry says what happened.
    let e = Entry::decode(&log.entry(index).unwrap()).unwrap();
    assert_eq!(e.run, RunId::erasure(&h));
    assert_eq!(e.event, Event::PayloadErased { hash: h, reason: "gdpr art. 17".into(), approver: "dpo".into() });
    // Erasing again answers the first index and appends nothing.
    assert_eq!(log.erase_payload(&p, &h, "again", "someone", "ledger-server", T0 + 1).unwrap(), index);
    assert_eq!(log.durable_size(), 2);
    // The other payload is untouched.
    assert_eq!(p.get(&hash(&other)).unwrap().unwrap(), other);
    // A hash never stored can be erased too.
    let never = [9u8; 32];
    let i = log.erase_payload(&p, &never, "named, never stored", "dpo", "ledger-server", T0).unwrap();
    assert_eq!(p.state(&never).unwrap(), PayloadState::Erased { index: i });
}

/// A crash between the two steps of an erasure: the entry is durable, the bytes are not yet
/// deleted. The next store over the same data says Erased, refuses the bytes and deletes them.
#[test]
fn a_crash_between_the_erasure_entry_and_the_delete_still_erases() {
    let (store, p) = mem();
    let log = open_log(&store);
    let b = bytes(3000, 1);
    let h = hash(&b);
    p.put(&h, &b).unwrap();
    // Step 1 only: the entry, as `erase_payload` appends it.
    let entry = Entry {
        ts: T0,
        run: RunId::erasure(&h),
        seq: 0,
        actor: "ledger-server".into(),
        event: Event::PayloadErased { hash: h, reason: "r".into(), approver: "dpo".into() },
        grant: None,
        payload: None,
    };
    let index = log.append(vec![entry.encode()]).unwrap()[0];
    log.close().unwrap();
    drop((log, p));

    // "Reopen": a new log and payload store over the same data.
    let log = open_log(&store);
    let p = PayloadStore::new(store.clone(), PayloadLimits::default());
    assert!(store.payload_get(&h).unwrap().is_some(), "the bytes survived the crash");
    assert!(matches!(p.get(&h), Err(Error::PayloadErased { index: i }) if i == index));
    assert_eq!(p.state(&h).unwrap(), PayloadState::Erased { index });
    assert!(store.payload_get(&h).unwrap().is_none(), "the read finished the deletion");
    assert_eq!(p.usage().unwrap(), 0);
    assert_eq!(log.erase_payload(&p, &h, "again", "dpo", "ledger-server", T0).unwrap(), index);
}

#[test]
fn an_abandoned_multi_chunk_upload_leaves_nothing_after_drop_or_restart() {
    let (store, p) = mem();
    let b = bytes(2 * PAYLOAD_CHUNK + 1, 4);
    let mut w = p.writer(&hash(&b), None).unwrap();
    w.write(&b[..2 * PAYLOAD_CHUNK]).unwrap();
    assert!(store.payload_keys(b"~stage", b"~stage\xff").unwrap().len() == 2, "two chunks staged");
    drop(w);
    assert!(store.payload_keys(b"~stage", b"~stage\xff").unwrap().is_empty());

    // A crash instead of a drop: staged chunks stay until the next store's first write.
    let mut w = p.writer(&hash(&b), None).unwrap();
    w.write(&b[..PAYLOAD_CHUNK]).unwrap();
    std::mem::forget(w);
    assert_eq!(store.payload_keys(b"~stage", b"~stage\xff").unwrap().len(), 1);
    let p = PayloadStore::new(store.clone(), PayloadLimits::default());
    assert_eq!(p.usage().unwrap(), 0);
    assert!(store.payload_keys(b"~stage", b"~stage\xff").unwrap().is_empty());
}

#[cfg(feature = "rocksdb")]
#[test]
fn rocksdb_keeps_payloads_and_erasures_across_reopens() {
    use ledger_core::{RocksConfig, RocksStore};
    let dir = tempfile::tempdir().unwrap();
    let open = || Arc::new(RocksStore::open(dir.path(), &RocksConfig::default()).unwrap()) as Arc<dyn Store>;
    let (big, small) = (bytes(2 * PAYLOAD_CHUNK + 99, 1), bytes(777, 2));
    {
        let store = open();
        let p = PayloadStore::new(store.clone(), PayloadLimits::default());
        assert!(p.put(&hash(&big), &big).unwrap());
        assert!(p.put(&hash(&small), &small).unwrap());
        p.sync().unwrap();
    }
    let erased;
    {
        let store = open();
        let p = PayloadStore::new(store.clone(), PayloadLimits::default());
        assert_eq!(p.get(&hash(&big)).unwrap().unwrap(), big);
        assert_eq!(p.get(&hash(&small)).unwrap().unwrap(), small);
        assert_eq!(p.usage().unwrap(), (big.len() + small.len()) as u64);
        assert!(!p.put(&hash(&small), &small).unwrap(), "stored once");
        let log = open_log(&store);
        erased = log.erase_payload(&p, &hash(&big), "gone", "dpo", "ledger-server", T0).unwrap();
        log.close().unwrap();
    }
    let store = open();
    let p = PayloadStore::new(store.clone(), PayloadLimits::default());
    assert_eq!(p.state(&hash(&big)).unwrap(), PayloadState::Erased { index: erased });
    assert_eq!(p.usage().unwrap(), small.len() as u64);
    assert_eq!(p.get(&hash(&small)).unwrap().unwrap(), small);
    let (from, mut to) = (hash(&big).to_vec(), hash(&big).to_vec());
    to.push(0xff);
    assert!(store.payload_keys(&from, &to).unwrap().is_empty());
}

#[cfg(feature = "rocksdb")]
#[test]
fn rocksdb_crash_between_the_erasure_entry_and_the_delete_still_erases() {
    use ledger_core::{RocksConfig, RocksStore};
    let dir = tempfile::tempdir().unwrap();
    let open = || Arc::new(RocksStore::open(dir.path(), &RocksConfig::default()).unwrap()) as Arc<dyn Store>;
    let b = bytes(PAYLOAD_CHUNK + 3, 5);
    let h = hash(&b);
    let index;
    {
        let store = open();
        let p = PayloadStore::new(store.clone(), PayloadLimits::default());
        p.put(&h, &b).unwrap();
        let log = open_log(&store);
        let entry = Entry {
            ts: T0,
            run: RunId::erasure(&h),
            seq: 0,
            actor: "ledger-server".into(),
            event: Event::PayloadErased { hash: h, reason: "r".into(), approver: "dpo".into() },
            grant: None,
            payload: None,
        };
        index = log.append(vec![entry.encode()]).unwrap()[0];
        log.close().unwrap();
    }
    let store = open();
    assert!(store.payload_get(&h).unwrap().is_some(), "the bytes survived");
    let p = PayloadStore::new(store.clone(), PayloadLimits::default());
    assert!(matches!(p.get(&h), Err(Error::PayloadErased { index: i }) if i == index));
    assert!(store.payload_get(&h).unwrap().is_none());
    assert_eq!(p.usage().unwrap(), 0);
}

/// Writes `files` (as `pack::build*` returns them) into `dir`.
fn write_pack(dir: &std::path::Path, files: &[(String, Vec<u8>)]) {
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

#[test]
fn packs_carry_present_payloads_and_report_absent_and_erased_ones() {
    use ledger_core::pack;
    let (store, p) = mem();
    let log = open_log(&store);
    let key = gateway_key();
    log.append(vec![identity(&key)]).unwrap();
    // Each run names its input (BLAKE3 of the run id) and the artifact BLAKE3("summary").
    log.append(sealed_run(log.hash(), "r1", &key, 0)).unwrap();
    log.append(sealed_run(log.hash(), "r2", &key, 0)).unwrap();
    p.put(&hash(b"r1"), b"r1").unwrap();
    p.put(&hash(b"summary"), b"summary").unwrap();
    let erased_at = log.erase_payload(&p, &hash(b"summary"), "retention ended", "dpo", "ledger-server", T0).unwrap();
    log.sign_checkpoint().unwrap();
    let size = log.checkpoint().checkpoint.size;

    let files = pack::build_with_payloads(&log, 0, size, "2026-01-01T00:00:00Z".into(), Some(&p)).unwrap();
    let r1_file = pack::payload_file(&hash(b"r1"));
    assert_eq!(files.iter().filter(|(n, _)| n.starts_with(pack::PAYLOADS_DIR)).count(), 1, "only the present one");
    assert_eq!(files.iter().find(|(n, _)| *n == r1_file).unwrap().1, b"r1");
    let dir = tempfile::tempdir().unwrap();
    write_pack(dir.path(), &files);
    let report = pack::verify_dir(dir.path(), log.descriptor()).unwrap();
    assert_eq!(report.payloads_included, 1);
    assert_eq!(report.payloads_absent, vec![hex::encode(hash(b"r2"))]);
    assert_eq!(report.payloads_erased.len(), 1);
    let e = &report.payloads_erased[0];
    assert_eq!(
        (e.hash.as_str(), e.index, e.ts, e.approver.as_str(), e.reason.as_str()),
        (hex::encode(hash(b"summary")).as_str(), erased_at, T0, "dpo", "retention ended")
    );

    // One changed byte of a payload fails, naming its file.
    std::fs::write(dir.path().join(&r1_file), b"r!").unwrap();
    match pack::verify_dir(dir.path(), log.descriptor()).unwrap_err() {
        Error::PackInvalid { file, reason, .. } => {
            assert_eq!(file, r1_file);
            assert!(reason.contains("not to its name"), "{reason}");
        }
        other => panic!("{other}"),
    }

    // Without payloads: every named one that is not erased is reported absent.
    let files = pack::build(&log, 0, size, "2026-01-01T00:00:00Z".into()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_pack(dir.path(), &files);
    let report = pack::verify_dir(dir.path(), log.descriptor()).unwrap();
    assert_eq!(report.payloads_included, 0);
    let mut absent = vec![hex::encode(hash(b"r1")), hex::encode(hash(b"r2"))];
    absent.sort();
    assert_eq!(report.payloads_absent, absent);
}
