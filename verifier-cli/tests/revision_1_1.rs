//! SPEC revision 1.1 entries through the binary: the golden 1.1 receipt verifies, `inspect`
//! shows the new attrs and a `payload.erased` entry readably, and `export` writes them as it
//! writes every other attr (byte strings as lowercase hex), read back by pyarrow.

mod common;

use std::path::PathBuf;

use common::*;
use ledger_core::{Entry, Event, RunId};

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

#[test]
fn golden_receipt_and_inspect() {
    for hash in ["blake3", "sha256"] {
        let receipt = repo(&format!("testdata/golden/receipt-1.1-{hash}.json"));
        let log = repo(&format!("testdata/golden/log-{hash}.json"));
        let (code, out, err) = run(&["receipt".as_ref(), receipt.as_os_str(), "--log".as_ref(), log.as_os_str()]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("valid") && out.contains("golden-child"), "{out}");

        let (code, out, err) = run(&["inspect".as_ref(), receipt.as_os_str()]);
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let accepted = &v["entries"][0]["entry"];
        assert_eq!(accepted["kind"], "task.accepted");
        assert_eq!(accepted["attrs"]["context"], "ctx-7f3a");
        assert_eq!(accepted["attrs"]["parent"], "golden-0");
    }

    let erased = repo("fuzz/corpus/entry_decode/seed-1.1-payload.erased");
    let (code, out, err) = run(&["inspect".as_ref(), erased.as_os_str()]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let hash_hex = blake3::hash(b"summary").to_hex().to_string();
    assert_eq!(v["type"], "entry");
    assert_eq!(v["entry"]["kind"], "payload.erased");
    assert_eq!(v["entry"]["run"], format!("erasure/{hash_hex}"));
    assert_eq!(v["entry"]["seq"], 0);
    assert_eq!(
        v["entry"]["attrs"],
        serde_json::json!({"hash": hash_hex, "reason": "data subject request 2026-0042", "approver": "dpo@example.com"})
    );
}

#[test]
fn export_writes_the_new_attrs() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with_runs(3);
    let hash = [0xc3; 32];
    let run_id = RunId::new("child").unwrap();
    let accepted = Event::TaskAccepted {
        protocol: ledger_core::entry::Protocol::A2a,
        skill: "s".into(),
        caller: "c".into(),
        input_hash: [1; 32],
        context: Some("ctx-1".into()),
        parent: Some(RunId::new("run-0").unwrap()),
    };
    let erasure = Entry {
        ts: 5_000,
        run: RunId::erasure(&hash),
        seq: 0,
        actor: "gateway".into(),
        event: Event::PayloadErased { hash, reason: "asked".into(), approver: "dpo".into() },
        grant: None,
        payload: None,
    };
    log.append(vec![entry(&run_id, 0, "gateway", accepted), erasure.encode()]).unwrap();
    log.sign_checkpoint().unwrap();
    let n = log.durable_size();
    let log_json = dir.path().join("log.json");
    std::fs::write(&log_json, serde_json::to_vec(log.descriptor()).unwrap()).unwrap();
    let pack = write_dir(&dir.path().join("pack"), &pack_files(&log, 0, n));
    let (pq, jl) = (dir.path().join("out.parquet"), dir.path().join("out.jsonl"));
    let (code, out, err) = export(&pack, &log_json, &pq, &jl);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("exported   {n} rows")), "{out}");
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&jl).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let last = &lines[lines.len() - 1];
    assert_eq!(last["kind"], "payload.erased");
    assert_eq!(last["attrs"], serde_json::json!({"approver": "dpo", "hash": "c3".repeat(32), "reason": "asked"}));
    let child = &lines[lines.len() - 2];
    assert_eq!((&child["attrs"]["context"], &child["attrs"]["parent"]), (&"ctx-1".into(), &"run-0".into()));
    check_export_with_pyarrow(&pack, &pq, &jl, n);
}
