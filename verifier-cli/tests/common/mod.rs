//! Helpers shared by the verifier's tests: an in-memory log with sealed runs, and packs of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use ledger_core::pack;
use ledger_core::seal::seal_event;
use ledger_core::{Entry, Event, Log, LogConfig, MemStore, NamedKey, Protocol, RunId, RunStatus, Store, TreeHash};

pub fn run(args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ledger-verify")).args(args).output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// `ledger-verify export PACK --log LOG --parquet PQ --jsonl JL`: its exit code, stdout, stderr.
pub fn export(pack: &Path, log: &Path, parquet: &Path, jsonl: &Path) -> (i32, String, String) {
    run(&[
        "export".as_ref(),
        pack.as_os_str(),
        "--log".as_ref(),
        log.as_os_str(),
        "--parquet".as_ref(),
        parquet.as_os_str(),
        "--jsonl".as_ref(),
        jsonl.as_os_str(),
    ])
}

/// Reads an export back with a real Parquet reader (pyarrow, `tests/python/check_export.py`),
/// compares it row by row with the pack, and asserts that it agrees on `rows` rows.
pub fn check_export_with_pyarrow(pack: &Path, parquet: &Path, jsonl: &Path, rows: u64) {
    let python = std::env::var("A2A_LEDGER_PYTHON")
        .unwrap_or_else(|_| panic!("A2A_LEDGER_PYTHON is not set: run the suite through ./scripts/test"));
    let check = Command::new(python)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/python/check_export.py"))
        .args([pack, parquet, jsonl])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "pyarrow disagrees: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&check.stdout).trim(), format!("ok {rows}"));
}

pub fn entry(run: &RunId, seq: u64, actor: &str, event: Event) -> Vec<u8> {
    Entry { ts: 1_000 + seq as i64, run: run.clone(), seq, actor: actor.into(), event, grant: None, payload: None }
        .encode()
}

/// A log with the identity `gateway` and `runs` sealed runs of 4–7 entries.
pub fn log_with_runs(runs: usize) -> Log {
    let log = Log::open(
        Arc::new(MemStore::new()) as Arc<dyn Store>,
        NamedKey::from_seed("verify.test/log", [5; 32]).unwrap(),
        LogConfig::default(),
    )
    .unwrap();
    let key = NamedKey::from_seed("gateway", [6; 32]).unwrap();
    let id = RunId::identity("gateway").unwrap();
    log.append(vec![entry(&id, 0, "gateway", Event::IdentityRegistered { public_key: key.public_key() })]).unwrap();
    for r in 0..runs {
        let run = RunId::new(format!("run-{r}")).unwrap();
        let mut events = vec![Event::TaskAccepted {
            protocol: Protocol::A2a,
            skill: "s".into(),
            caller: "c".into(),
            input_hash: [r as u8; 32],
            context: None,
            parent: None,
        }];
        for i in 0..(1 + r % 4) {
            events.push(Event::TaskStatus { state: "working".into(), message: Some(format!("step {i}")) });
        }
        events.push(Event::TaskEnded { status: RunStatus::Completed, elapsed_ms: 3, artifacts: vec![], error: None });
        let mut entries: Vec<Vec<u8>> =
            events.into_iter().enumerate().map(|(s, e)| entry(&run, s as u64, "gateway", e)).collect();
        let seal = seal_event(TreeHash::Blake3, run.as_str(), &entries, RunStatus::Completed, &key);
        let seq = entries.len() as u64;
        entries.push(entry(&run, seq, "gateway", seal));
        log.append(entries).unwrap();
    }
    log.sign_checkpoint().unwrap();
    log
}

/// The files of the pack `[start, end)` against the newest checkpoint, in the server's order.
pub fn pack_files(log: &Log, start: u64, end: u64) -> Vec<(String, Vec<u8>)> {
    pack::build(log, start, end, "2026-11-23T00:00:00Z".into()).unwrap()
}

pub fn write_dir(dir: &Path, files: &[(String, Vec<u8>)]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    dir.to_path_buf()
}

pub fn write_tar(path: &Path, files: &[(String, Vec<u8>)]) -> PathBuf {
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    for (name, bytes) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, &bytes[..]).unwrap();
    }
    b.finish().unwrap();
    path.to_path_buf()
}
