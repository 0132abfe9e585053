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
