//! Helpers shared by the integration tests: deterministic keys and realistic runs.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use ledger_core::entry::Protocol;
use ledger_core::seal::seal_event;
use ledger_core::store::{CatalogVisit, CommitBatch, LogParams, RunRecord};
use ledger_core::{Entry, Event, NamedKey, RunId, RunStatus, TreeHash};
use ledger_core::{Error, MemStore, Result, Store};

pub const T0: i64 = 1_767_225_600_000_000_000; // 2026-01-01T00:00:00Z

pub fn log_key() -> NamedKey {
    NamedKey::from_seed("test.a2a-ledger.example/log", [0x11; 32]).unwrap()
}

pub fn gateway_key() -> NamedKey {
    NamedKey::from_seed("gateway", [0x22; 32]).unwrap()
}

pub fn entry(run: &str, seq: u64, actor: &str, event: Event) -> Vec<u8> {
    Entry {
        ts: T0 + seq as i64 * 1_000_000,
        run: RunId::new(run).unwrap(),
        seq,
        actor: actor.into(),
        event,
        grant: None,
        payload: None,
    }
    .encode()
}

pub fn identity(key: &NamedKey) -> Vec<u8> {
    entry(&format!("id/{}", key.name()), 0, key.name(), Event::IdentityRegistered { public_key: key.public_key() })
}

/// The events of a run before its seal: accepted, working, `progress` progress steps, an
/// artifact, completed.
pub fn run_events(run: &str, actor: &str, progress: usize) -> Vec<Vec<u8>> {
    let mut events = vec![
        Event::TaskAccepted {
            protocol: Protocol::A2a,
            skill: "summarize".into(),
            caller: "alice@example.com".into(),
            input_hash: *blake3::hash(run.as_bytes()).as_bytes(),
            context: None,
            parent: None,
        },
        Event::TaskStatus { state: "working".into(), message: Some("started".into()) },
    ];
    for i in 0..progress {
        events.push(Event::SkillProgress {
            stage: format!("step-{i}"),
            pct: ((i + 1) * 100 / (progress + 1)) as u8,
            message: "making progress on the task".into(),
        });
    }
    events.push(Event::ArtifactAdded {
        name: "summary.md".into(),
        media_type: "text/markdown".into(),
        bytes: 1234,
        hash: *blake3::hash(b"summary").as_bytes(),
    });
    events.push(Event::TaskEnded {
        status: RunStatus::Completed,
        elapsed_ms: 420,
        artifacts: vec!["summary.md".into()],
        error: None,
    });
    events.into_iter().enumerate().map(|(seq, ev)| entry(run, seq as u64, actor, ev)).collect()
}

/// A whole run, sealed by `key`.
pub fn sealed_run(h: TreeHash, run: &str, key: &NamedKey, progress: usize) -> Vec<Vec<u8>> {
    let mut entries = run_events(run, key.name(), progress);
    let seal = seal_event(h, run, &entries, RunStatus::Completed, key);
    entries.push(entry(run, entries.len() as u64, key.name(), seal));
    entries
}

/// A store over `MemStore` that fails the n-th write (before or after persisting it, or in the
/// sync after it), fails checkpoint writes on demand, and can hold writes back.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    /// The write fails and nothing reaches the store.
    Before,
    /// The write reaches the store, then the call fails (a lost acknowledgement).
    After,
    /// The write succeeds (readers may see it), then the sync after it fails (a failed fsync).
    Sync,
}

#[derive(Debug)]
pub struct Faulty {
    pub inner: Arc<MemStore>,
    pub mode: Mode,
    pub fail_commit: u64,
    pub commits: AtomicU64,
    pub fail_checkpoints: AtomicBool,
    /// Set by a `Mode::Sync` fault: the next sync fails.
    fail_sync: AtomicBool,
    /// While closed, writes wait (a slow write on demand).
    gate: (Mutex<bool>, Condvar),
    /// While closed, syncs wait (a slow fsync on demand).
    sync_gate: (Mutex<bool>, Condvar),
}

impl Faulty {
    pub fn new(inner: Arc<MemStore>, mode: Mode, fail_commit: u64) -> Faulty {
        Faulty {
            inner,
            mode,
            fail_commit,
            commits: AtomicU64::new(0),
            fail_checkpoints: AtomicBool::new(false),
            fail_sync: AtomicBool::new(false),
            gate: (Mutex::new(true), Condvar::new()),
            sync_gate: (Mutex::new(true), Condvar::new()),
        }
    }

    /// Opens or closes the write gate.
    pub fn set_gate(&self, open: bool) {
        *self.gate.0.lock().unwrap() = open;
        self.gate.1.notify_all();
    }

    /// Opens or closes the sync gate.
    pub fn set_sync_gate(&self, open: bool) {
        *self.sync_gate.0.lock().unwrap() = open;
        self.sync_gate.1.notify_all();
    }

    /// Holds writes at the gate until the guard is dropped.
    pub fn hold_writes(&self) -> Held<'_> {
        self.set_gate(false);
        Held { store: self, sync: false }
    }

    /// Holds syncs at the gate until the guard is dropped.
    pub fn hold_syncs(&self) -> Held<'_> {
        self.set_sync_gate(false);
        Held { store: self, sync: true }
    }
}

/// A closed gate of a [`Faulty`] store, opened when dropped: also when a failed assertion
/// unwinds the test, which would otherwise hang in the log's drop, waiting for the held work.
pub struct Held<'a> {
    store: &'a Faulty,
    sync: bool,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if self.sync { self.store.set_sync_gate(true) } else { self.store.set_gate(true) }
    }
}

impl Store for Faulty {
    fn load_meta(&self) -> Result<Option<(LogParams, u64)>> {
        self.inner.load_meta()
    }
    fn position(&self) -> Result<Option<u64>> {
        self.inner.position()
    }
    fn position_at(&self, size: u64) -> Result<Option<u64>> {
        self.inner.position_at(size)
    }
    fn scan_positions(&self, f: &mut dyn FnMut(u64, u64) -> Result<()>) -> Result<()> {
        self.inner.scan_positions(f)
    }
    fn quiesce(&self) {
        self.inner.quiesce()
    }
    fn commit(&self, b: &CommitBatch) -> Result<()> {
        self.write(b)?;
        self.sync()
    }
    fn write(&self, b: &CommitBatch) -> Result<()> {
        let mut open = self.gate.0.lock().unwrap();
        while !*open {
            open = self.gate.1.wait(open).unwrap();
        }
        drop(open);
        if self.commits.fetch_add(1, Ordering::SeqCst) == self.fail_commit {
            match self.mode {
                Mode::Before => {}
                Mode::After => self.inner.commit(b)?,
                Mode::Sync => {
                    self.fail_sync.store(true, Ordering::SeqCst);
                    return self.inner.commit(b);
                }
            }
            return Err(Error::Storage("injected: write failed".into()));
        }
        self.inner.commit(b)
    }
    fn sync(&self) -> Result<()> {
        let mut open = self.sync_gate.0.lock().unwrap();
        while !*open {
            open = self.sync_gate.1.wait(open).unwrap();
        }
        drop(open);
        if self.fail_sync.swap(false, Ordering::SeqCst) {
            return Err(Error::Storage("injected: fsync failed".into()));
        }
        Ok(())
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
    fn scan_runs(&self, f: &mut dyn FnMut(ledger_core::store::RunSegment) -> Result<()>) -> Result<()> {
        self.inner.scan_runs(f)
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
    fn catalog_scan(&self, lo: &[u8], hi: &[u8], reverse: bool, f: CatalogVisit<'_>) -> Result<()> {
        self.inner.catalog_scan(lo, hi, reverse, f)
    }
}

/// Entries in [`fill_sample`]'s log.
pub const SAMPLE_SIZE: u64 = 300;
/// The checkpoints [`fill_sample`] signs (besides the one at size 0 a new log signs at open).
pub const SAMPLE_CHECKPOINTS: [u64; 2] = [103, SAMPLE_SIZE];

/// Settings for a log that signs checkpoints only when asked (and at open and close).
pub fn quiet_config() -> ledger_core::LogConfig {
    ledger_core::LogConfig { checkpoint_interval: std::time::Duration::from_secs(3600), ..Default::default() }
}

/// Fills a new log (opened with [`quiet_config`]) with a small log holding every kind of stored
/// data, the same bytes every time: 300 entries (the gateway's identity, run `split` appended in
/// three submissions, so three run-index segments, 48 sealed runs `r0..r47` of 6 entries, and
/// run `open`, 5 entries, unsealed), so one full tile; checkpoints at 0, 103 and 300.
pub fn fill_sample(log: &ledger_core::Log) {
    let gw = gateway_key();
    log.append(vec![identity(&gw)]).unwrap();
    let split = run_events("split", gw.name(), 2);
    for pair in split.chunks(2) {
        log.append(pair.to_vec()).unwrap();
    }
    for i in 0..48 {
        log.append(sealed_run(log.hash(), &format!("r{i}"), &gw, 1)).unwrap();
        if i == 15 {
            assert_eq!(log.sign_checkpoint().unwrap().checkpoint.size, SAMPLE_CHECKPOINTS[0]);
        }
    }
    log.append(run_events("open", gw.name(), 1)).unwrap();
    assert_eq!(log.sign_checkpoint().unwrap().checkpoint.size, SAMPLE_SIZE);
}

/// A `MemStore` that hides some of what it holds from its readers: entries, tiles, run-index
/// segments (`scan_runs` only), checkpoints. For fsck's tests.
#[derive(Debug, Default)]
pub struct Hiding {
    pub inner: MemStore,
    pub entries: Mutex<Vec<u64>>,
    pub tiles: Mutex<Vec<(u8, u64)>>,
    /// `(run, first seq)` of hidden segments.
    pub segments: Mutex<Vec<(String, u64)>>,
    pub checkpoints: Mutex<Vec<u64>>,
}

impl Store for Hiding {
    fn load_meta(&self) -> Result<Option<(LogParams, u64)>> {
        self.inner.load_meta()
    }
    fn position(&self) -> Result<Option<u64>> {
        self.inner.position()
    }
    fn position_at(&self, size: u64) -> Result<Option<u64>> {
        self.inner.position_at(size)
    }
    fn scan_positions(&self, f: &mut dyn FnMut(u64, u64) -> Result<()>) -> Result<()> {
        self.inner.scan_positions(f)
    }
    fn quiesce(&self) {
        self.inner.quiesce()
    }
    fn commit(&self, b: &CommitBatch) -> Result<()> {
        self.inner.commit(b)
    }
    fn entry(&self, index: u64) -> Result<Option<Vec<u8>>> {
        if self.entries.lock().unwrap().contains(&index) { Ok(None) } else { self.inner.entry(index) }
    }
    fn scan_entries(&self, s: u64, e: u64, f: &mut dyn FnMut(u64, &[u8]) -> Result<()>) -> Result<()> {
        let hidden = self.entries.lock().unwrap().clone();
        self.inner.scan_entries(s, e, &mut |i, b| if hidden.contains(&i) { Ok(()) } else { f(i, b) })
    }
    fn tile(&self, level: u8, index: u64) -> Result<Option<Vec<u8>>> {
        if self.tiles.lock().unwrap().contains(&(level, index)) { Ok(None) } else { self.inner.tile(level, index) }
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
    fn scan_runs(&self, f: &mut dyn FnMut(ledger_core::store::RunSegment) -> Result<()>) -> Result<()> {
        let hidden = self.segments.lock().unwrap().clone();
        self.inner.scan_runs(&mut |seg| {
            if hidden.iter().any(|(r, s)| **r == *seg.run && *s == seg.first_seq) { Ok(()) } else { f(seg) }
        })
    }
    fn put_checkpoint(&self, size: u64, note: &str) -> Result<()> {
        self.inner.put_checkpoint(size, note)
    }
    fn latest_checkpoint(&self) -> Result<Option<(u64, String)>> {
        Ok(self.checkpoints()?.pop())
    }
    fn checkpoints(&self) -> Result<Vec<(u64, String)>> {
        let hidden = self.checkpoints.lock().unwrap().clone();
        Ok(self.inner.checkpoints()?.into_iter().filter(|(s, _)| !hidden.contains(s)).collect())
    }
    fn catalog_scan(&self, lo: &[u8], hi: &[u8], reverse: bool, f: CatalogVisit<'_>) -> Result<()> {
        self.inner.catalog_scan(lo, hi, reverse, f)
    }
}
