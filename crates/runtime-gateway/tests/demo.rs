//! The demo command end to end on RocksDB, twice over one directory: the identity is registered
//! once, and each receipt verifies offline with `ledger-core` alone.

use std::process::Command;

use ledger_core::{LogDescriptor, ReceiptVerifier, RunStatus};

#[test]
fn demo_records_a_verified_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut receipts = Vec::new();
    for _ in 0..2 {
        let out = Command::new(env!("CARGO_BIN_EXE_runtime-gateway"))
            .args(["demo", "--embedded"])
            .arg(&data)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("receipt verified"), "{stdout}");
        let path = stdout.lines().find_map(|l| l.strip_prefix("receipt    ")).unwrap().to_string();
        receipts.push(path);
    }
    let desc: LogDescriptor = serde_json::from_str(&std::fs::read_to_string(data.join("log.json")).unwrap()).unwrap();
    let mut verifier = ReceiptVerifier::new(desc).unwrap();
    let mut signers = Vec::new();
    for path in receipts {
        let v = verifier.verify_json(&std::fs::read(path).unwrap()).unwrap();
        assert_eq!(v.status, RunStatus::Completed);
        let kinds: Vec<&str> = v.entries.iter().map(|(_, e)| e.kind().as_str()).collect();
        assert_eq!(
            kinds,
            [
                "task.accepted",
                "task.status",
                "skill.progress",
                "skill.progress",
                "artifact.added",
                "task.completed",
                "receipt.sealed"
            ]
        );
        signers.push(v.signer.0);
    }
    assert_eq!(signers[0], signers[1], "the identity is registered once and reused");
}
