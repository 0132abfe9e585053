//! `ledger-server init` and `status` on a real data directory.

use std::process::Command;

fn run(args: &[&str], data: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ledger-server")).args(args).arg("--data").arg(data).output().unwrap()
}

#[test]
fn init_then_status_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let out = run(&["init", "--origin", "ledger.test/log", "--hash", "sha256"], &data);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let desc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(desc["origin"], "ledger.test/log");
    assert_eq!(desc["hash"], "sha256");
    assert!(desc["vkey"].as_str().unwrap().starts_with("ledger.test/log+"));

    let out = run(&["status", "--hash", "sha256"], &data);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["tree_size"], 0);
    assert!(status["checkpoint"].as_str().unwrap().starts_with("ledger.test/log\n0\n"));

    // The tree hash is fixed at creation.
    let out = run(&["status", "--hash", "blake3"], &data);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tree hash") && err.contains("sha256"), "{err}");
    // A second init is refused.
    let out = run(&["init", "--origin", "other/log"], &data);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already holds"));
}

fn entry(run: &str, seq: u64, state: &str) -> Vec<u8> {
    ledger_core::Entry {
        ts: 1_767_225_600_000_000_000 + seq as i64,
        run: ledger_core::RunId::new(run).unwrap(),
        seq,
        actor: "gateway".into(),
        event: ledger_core::Event::TaskStatus { state: state.into(), message: None },
        grant: None,
        payload: None,
    }
    .encode()
}

#[test]
fn status_check_finds_a_tampered_entry() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let out = run(&["init", "--origin", "ledger.test/log"], &data);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Some entries: a full tile and some more, in a few runs, checkpointed at close.
    let rocks = ledger_core::RocksConfig::default();
    let no_seed = || Err(std::io::Error::other("the key exists"));
    let log = ledger_core::DataDir::new(&data)
        .open("ledger.test/log", ledger_core::LogConfig::default(), &rocks, no_seed)
        .unwrap();
    for r in 0..30 {
        log.append((0..10).map(|seq| entry(&format!("run-{r}"), seq, "working")).collect()).unwrap();
    }
    log.close().unwrap();
    drop(log);

    let out = run(&["status", "--check"], &data);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["tree_size"], 300);
    assert_eq!(status["check"]["clean"], true);
    assert_eq!(status["check"]["findings"], serde_json::json!([]));
    // Plain status is what it was.
    let out = run(&["status"], &data);
    assert!(out.status.success());
    let plain: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plain["tree_size"], 300);
    assert!(plain.get("check").is_none());

    // Entry 290 (run-29, seq 0) replaced by another valid entry of the same run and seq.
    {
        use ledger_core::Store as _;
        let store = ledger_core::RocksStore::open(&data.join("rocksdb"), &rocks).unwrap();
        let batch = ledger_core::store::CommitBatch {
            entries: vec![(290, entry("run-29", 0, "failed").into())],
            tree_size: 300,
            ..Default::default()
        };
        store.commit(&batch).unwrap();
    }
    let out = run(&["status", "--check"], &data);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["check"]["clean"], false);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("checkpoint 300's root is not the root of its entries"), "{err}");

    // No log at all: could not check.
    let out = run(&["status", "--check"], &dir.path().join("none"));
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}
