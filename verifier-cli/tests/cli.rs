//! `ledger-verify receipt` on the golden fixtures: exit codes and messages.

use std::path::PathBuf;
use std::process::Command;

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/golden").join(name)
}

fn run(args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ledger-verify")).args(args).output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn valid_invalid_and_unchecked() {
    for hash in ["blake3", "sha256"] {
        let receipt = golden(&format!("receipt-{hash}.json"));
        let log = golden(&format!("log-{hash}.json"));
        let (code, out, err) = run(&["receipt".as_ref(), receipt.as_os_str(), "--log".as_ref(), log.as_os_str()]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("valid") && out.contains("golden-1") && out.contains("receipt.sealed"), "{out}");

        let (code, out, _) =
            run(&["receipt".as_ref(), receipt.as_os_str(), "--log".as_ref(), log.as_os_str(), "--json".as_ref()]);
        assert_eq!(code, 0);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["status"], "completed");

        // Another log's descriptor: invalid, step 1.
        let other = golden(&format!("log-{}.json", if hash == "blake3" { "sha256" } else { "blake3" }));
        let (code, _, err) = run(&["receipt".as_ref(), receipt.as_os_str(), "--log".as_ref(), other.as_os_str()]);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("receipt is for log"), "{err}");
        // With both descriptors given (rotation), the matching one is used.
        let (code, _, _) = run(&[
            "receipt".as_ref(),
            receipt.as_os_str(),
            "--log".as_ref(),
            other.as_os_str(),
            "--log".as_ref(),
            log.as_os_str(),
        ]);
        assert_eq!(code, 0);
    }

    let dir = tempfile::tempdir().unwrap();
    let log = golden("log-blake3.json");
    // A tampered entry: invalid at step 2, naming the index.
    let mut r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(golden("receipt-blake3.json")).unwrap()).unwrap();
    let index = r["entries"][1]["index"].as_u64().unwrap();
    let e = r["entries"][1]["entry"].as_str().unwrap().to_string();
    r["entries"][1]["entry"] = serde_json::Value::String(e.replacen('A', "B", 1));
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r.to_string()).unwrap();
    let (code, _, err) = run(&["receipt".as_ref(), bad.as_os_str(), "--log".as_ref(), log.as_os_str()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("step 2") && err.contains(&format!("index {index}")), "{err}");

    // Could not check: a missing file, and a file that is not a receipt.
    let missing = dir.path().join("missing.json");
    let (code, _, err) = run(&["receipt".as_ref(), missing.as_os_str(), "--log".as_ref(), log.as_os_str()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("missing.json"), "{err}");
    let (code, _, err) = run(&["receipt".as_ref(), log.as_os_str(), "--log".as_ref(), log.as_os_str()]);
    assert_eq!(code, 2, "{err}");
}
