//! The log both store fixtures hold (`store_v4.rs`, `store_v5.rs`): [`fill_v4`] writes it (a call
//! tree of runs, open and sealed, payloads present, absent and erased), [`generate`] writes it
//! into a data directory as small as RocksDB makes it, with what its JSON records.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use crate::common::*;
use ledger_core::datadir::STORE_DIR;
use ledger_core::entry::Protocol;
use ledger_core::seal::seal_event;
use ledger_core::{
    DataDir, Entry, Event, Hash, Log, PayloadLimits, PayloadStore, RocksConfig, RocksStore, RunId, RunStatus, TreeHash,
    fsck,
};

/// What the fixture's JSON records about it.
#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
pub struct Recorded {
    pub format: String,
    pub origin: String,
    pub hash: String,
    pub tree_size: u64,
    pub root: String,
    pub checkpoints: Vec<u64>,
    pub checkpoint: String,
    pub catalog_keys: u64,
}

/// The bytes of the payloads [`fill_v4`] stores: `job`'s input, `job-a`'s artifact (read by
/// `job-b` too) and `secret`'s input, which is then erased.
pub const INPUT: &[u8] = br#"{"text":"summarize the quarterly report"}"#;
pub const ARTIFACT: &[u8] = b"# Summary\n\nRevenue grew; costs grew faster.\n";
pub const SECRET: &[u8] = br#"{"text":"my account number is 12345"}"#;

pub fn blake3(bytes: &[u8]) -> Hash {
    *blake3::hash(bytes).as_bytes()
}

/// An entry of `run` by the gateway, naming `payload` in its own field if given.
pub fn entry_with(run: &str, seq: u64, event: Event, payload: Option<Hash>) -> Vec<u8> {
    Entry {
        ts: T0 + seq as i64 * 1_000_000,
        run: RunId::new(run).unwrap(),
        seq,
        actor: "gateway".into(),
        event,
        grant: None,
        payload,
    }
    .encode()
}

pub fn accepted(run: &str, caller: &str, input: Hash, context: Option<&str>, parent: Option<&str>) -> Vec<u8> {
    let event = Event::TaskAccepted {
        protocol: Protocol::A2a,
        skill: "summarize".into(),
        caller: caller.into(),
        input_hash: input,
        context: context.map(Into::into),
        parent: parent.map(|p| RunId::new(p).unwrap()),
    };
    entry_with(run, 0, event, None)
}

pub fn working(run: &str, seq: u64, payload: Option<Hash>) -> Vec<u8> {
    entry_with(run, seq, Event::TaskStatus { state: "working".into(), message: None }, payload)
}

/// `entries` (seq 0..) ended and sealed by the gateway.
pub fn sealed(run: &str, mut entries: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let ended = Event::TaskEnded { status: RunStatus::Completed, elapsed_ms: 420, artifacts: vec![], error: None };
    entries.push(entry_with(run, entries.len() as u64, ended, None));
    let seal = seal_event(TreeHash::Blake3, run, &entries, RunStatus::Completed, &gateway_key());
    entries.push(entry_with(run, entries.len() as u64, seal, None));
    entries
}

/// The index of the `payload.erased` entry of `SECRET` in [`fill_v4`]'s log, its last entry.
pub const ERASED_AT: u64 = 20;
/// Entries in [`fill_v4`]'s log.
pub const V4_SIZE: u64 = 21;

/// Fills a new log (opened with [`quiet_config`]) as a gateway would, storing each payload
/// before appending the entry naming it: the gateway's identity (0); `job` (alice, context
/// `ctx-1`, input `INPUT`; open) at 1; its children `job-a` (alice, `ctx-1`, with the artifact
/// `ARTIFACT` at 5; sealed) at 3 and `job-b` (bob, `ctx-1`, carrying `INPUT` in the `payload`
/// field of its entry 9 and reading `ARTIFACT` at 10; open) at 8; `secret` (alice, input
/// `SECRET`; sealed) at 12; a third entry of `job` at 15; a third child `job-c` (alice, `ctx-2`;
/// sealed) at 16; then `SECRET` erased (its `payload.erased` entry at 20, its bytes deleted).
/// Checkpoints at 0 (at open) and 21.
pub fn fill_v4(log: &Log, payloads: &PayloadStore) {
    log.append(vec![identity(&gateway_key())]).unwrap();
    assert!(payloads.put(&blake3(INPUT), INPUT).unwrap());
    log.append(vec![accepted("job", "alice", blake3(INPUT), Some("ctx-1"), None), working("job", 1, None)]).unwrap();
    assert!(payloads.put(&blake3(ARTIFACT), ARTIFACT).unwrap());
    let artifact = Event::ArtifactAdded {
        name: "summary.md".into(),
        media_type: "text/markdown".into(),
        bytes: ARTIFACT.len() as u64,
        hash: blake3(ARTIFACT),
    };
    let job_a = vec![
        accepted("job-a", "alice", blake3(b"job-a"), Some("ctx-1"), Some("job")),
        working("job-a", 1, None),
        entry_with("job-a", 2, artifact, None),
    ];
    log.append(sealed("job-a", job_a)).unwrap();
    let read = Event::WorkspaceRead { path: "summary.md".into(), bytes: ARTIFACT.len() as u64, hash: blake3(ARTIFACT) };
    log.append(vec![
        accepted("job-b", "bob", blake3(b"job-b"), Some("ctx-1"), Some("job")),
        working("job-b", 1, Some(blake3(INPUT))),
        entry_with("job-b", 2, read, None),
        working("job-b", 3, None),
    ])
    .unwrap();
    assert!(payloads.put(&blake3(SECRET), SECRET).unwrap());
    log.append(sealed("secret", vec![accepted("secret", "alice", blake3(SECRET), None, None)])).unwrap();
    log.append(vec![working("job", 2, None)]).unwrap();
    let job_c =
        vec![accepted("job-c", "alice", blake3(b"job-c"), Some("ctx-2"), Some("job")), working("job-c", 1, None)];
    log.append(sealed("job-c", job_c)).unwrap();
    let erased = log.erase_payload(payloads, &blake3(SECRET), "asked by the data subject", "root", "ledger-server", T0);
    assert_eq!(erased.unwrap(), ERASED_AT);
    assert_eq!(log.sign_checkpoint().unwrap().checkpoint.size, V4_SIZE);
}

/// Writes [`fill_v4`]'s log into `dir` as a data directory, as small as RocksDB makes it.
pub fn generate(dir: &Path) -> Recorded {
    let _ = std::fs::remove_dir_all(dir);
    let key = log_key();
    let log = DataDir::new(dir).open(key.name(), quiet_config(), &RocksConfig::default(), || Ok([0x11; 32])).unwrap();
    assert_eq!(log.descriptor().vkey, key.verifier().to_string(), "the fixture's key is log_key()");
    let payloads = PayloadStore::new(log.store().clone(), PayloadLimits::default());
    fill_v4(&log, &payloads);
    drop(payloads);
    let mut recorded = Recorded {
        format: RocksStore::format().to_string(),
        origin: key.name().to_string(),
        hash: log.hash().to_string(),
        tree_size: log.durable_size(),
        root: hex::encode(log.root_at(V4_SIZE).unwrap()),
        checkpoints: log.store().checkpoints().unwrap().into_iter().map(|(s, _)| s).collect(),
        checkpoint: log.checkpoint().note.clone(),
        catalog_keys: 0,
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
    let (verifier, store) = DataDir::new(dir).open_read_only(&RocksConfig::default()).unwrap();
    recorded.catalog_keys = fsck::check(&store, &verifier).unwrap().catalog_keys.unwrap();
    recorded
}

pub fn copy_dir(from: &Path, to: &Path) {
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
pub fn listing(dir: &Path) -> Vec<(PathBuf, u64)> {
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
