//! `ledger-verify pack`, `consistency`, `inspect` and `keygen` through the binary, on packs of an
//! in-memory log: exit codes and the messages auditors see.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::*;
use ledger_core::pack::PackProof;
use ledger_core::{Event, Log, LogConfig, MemStore, NamedKey, RunId, Store, TreeHash};

fn verify_pack(pack: &Path, log: &Path) -> (i32, String, String) {
    run(&["pack".as_ref(), pack.as_os_str(), "--log".as_ref(), log.as_os_str()])
}

#[test]
fn packs_valid_and_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with_runs(12);
    let n = log.durable_size();
    let log_json = dir.path().join("log.json");
    std::fs::write(&log_json, serde_json::to_vec(log.descriptor()).unwrap()).unwrap();

    // Whole log, as a directory and as a tar; and a range cut through runs.
    let files = pack_files(&log, 0, n);
    let d = write_dir(&dir.path().join("whole"), &files);
    let (code, out, err) = verify_pack(&d, &log_json);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("valid") && out.contains("12 verified"), "{out}");
    let t = write_tar(&dir.path().join("whole.tar"), &files);
    let (code, out, err) =
        run(&["pack".as_ref(), t.as_os_str(), "--log".as_ref(), log_json.as_os_str(), "--json".as_ref()]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["report"]["seals_verified"], 12);
    // entries.bin first in the tar: still verifies (spooled).
    let mut reordered = files.clone();
    reordered.rotate_left(3);
    let t2 = write_tar(&dir.path().join("reordered.tar"), &reordered);
    assert_eq!(verify_pack(&t2, &log_json).0, 0);
    let cut = pack_files(&log, 5, n - 3);
    let (code, out, _) = verify_pack(&write_dir(&dir.path().join("cut"), &cut), &log_json);
    assert_eq!(code, 0);
    // The identity is registered before the range, so every seal in it is reported partial, as
    // is the run the range starts inside; the run it ends inside is open.
    assert!(out.contains("seals      0 verified") && out.contains("partial    10 runs"), "{out}");
    assert!(out.contains("open runs  1") && out.contains("registered before the pack's range"), "{out}");

    // Invalid packs: exit 1 with the file and what was wrong.
    let mut truncated = files.clone();
    let e = &mut truncated[3].1;
    e.truncate(e.len() - 10);
    let (code, _, err) = verify_pack(&write_dir(&dir.path().join("truncated"), &truncated), &log_json);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&format!("entries.bin at index {}: truncated", n - 1)), "{err}");
    let mut flipped = files.clone();
    let mid = flipped[3].1.len() / 2;
    flipped[3].1[mid] ^= 0x40;
    let (code, _, err) = verify_pack(&write_dir(&dir.path().join("flipped"), &flipped), &log_json);
    assert_eq!(code, 1, "{err}");
    let mut bad_proof = files.clone();
    bad_proof[2].1 = serde_json::to_vec(&PackProof { left: vec![[1; 32]], consistency: vec![] }).unwrap();
    let (code, _, err) = verify_pack(&write_dir(&dir.path().join("badproof"), &bad_proof), &log_json);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("proof.json hashes to"), "{err}");
    let mut extra = files.clone();
    extra.push(("notes.txt".into(), b"hello".to_vec()));
    let (code, _, err) = verify_pack(&write_dir(&dir.path().join("extra"), &extra), &log_json);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("notes.txt"), "{err}");

    // Another log's descriptor: invalid; no manifest: could not check.
    // (the same origin under another key, as after an unannounced key change)
    let other = ledger_core::LogDescriptor::new(
        &NamedKey::from_seed("verify.test/log", [9; 32]).unwrap().verifier(),
        TreeHash::Blake3,
    );
    let other_json = dir.path().join("other.json");
    std::fs::write(&other_json, serde_json::to_vec(&other).unwrap()).unwrap();
    let (code, _, err) = verify_pack(&d, &other_json);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("none of the 1 trusted descriptors"), "{err}");
    let (code, _, err) = verify_pack(&write_dir(&dir.path().join("nomanifest"), &files[1..]), &log_json);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no manifest.json"), "{err}");
    let (code, _, err) = verify_pack(&dir.path().join("nowhere.tar"), &log_json);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn consistency_inspect_and_keygen() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with_runs(3);
    let log_json = dir.path().join("log.json");
    std::fs::write(&log_json, serde_json::to_vec(log.descriptor()).unwrap()).unwrap();
    let old = log.checkpoint();
    let r = RunId::new("late").unwrap();
    log.append(vec![entry(&r, 0, "gateway", Event::TaskStatus { state: "working".into(), message: None })]).unwrap();
    log.sign_checkpoint().unwrap();
    let new = log.checkpoint();
    let (old_f, new_f, proof_f) =
        (dir.path().join("old.txt"), dir.path().join("new.txt"), dir.path().join("proof.json"));
    std::fs::write(&old_f, &old.note).unwrap();
    std::fs::write(&new_f, &new.note).unwrap();
    let proof: Vec<String> = log
        .consistency_proof(old.checkpoint.size, new.checkpoint.size)
        .unwrap()
        .iter()
        .map(|h| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, h))
        .collect();
    std::fs::write(&proof_f, serde_json::json!({ "proof": proof }).to_string()).unwrap();
    let args = |a: &Path, b: &Path| -> (i32, String, String) {
        run(&[
            "consistency".as_ref(),
            a.as_os_str(),
            b.as_os_str(),
            "--proof".as_ref(),
            proof_f.as_os_str(),
            "--log".as_ref(),
            log_json.as_os_str(),
        ])
    };
    let (code, out, err) = args(&old_f, &new_f);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("consistent"), "{out}");
    // Swapped: the tree shrank.
    let (code, _, err) = args(&new_f, &old_f);
    assert_eq!(code, 1);
    assert!(err.contains("the tree shrank"), "{err}");
    // A fork: a checkpoint of the same size over other entries, signed by the same log key.
    let forked = Log::open(
        Arc::new(MemStore::new()) as Arc<dyn Store>,
        NamedKey::from_seed("verify.test/log", [5; 32]).unwrap(),
        LogConfig::default(),
    )
    .unwrap();
    for i in 0..new.checkpoint.size {
        let r = RunId::new(format!("fork-{i}")).unwrap();
        forked
            .append(vec![entry(&r, 0, "gateway", Event::TaskStatus { state: "working".into(), message: None })])
            .unwrap();
    }
    forked.sign_checkpoint().unwrap();
    let fork_f = dir.path().join("fork.txt");
    std::fs::write(&fork_f, &forked.checkpoint().note).unwrap();
    let (code, _, err) = args(&old_f, &fork_f);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("FORK") && err.contains(&forked.checkpoint().note), "the evidence is printed: {err}");

    // inspect: an entry, a checkpoint, a receipt.
    let e = dir.path().join("entry.cbor");
    std::fs::write(&e, log.entry(1).unwrap()).unwrap();
    let (code, out, _) = run(&["inspect".as_ref(), e.as_os_str()]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["entry"]["kind"], "task.accepted");
    let (code, out, _) = run(&["inspect".as_ref(), new_f.as_os_str()]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["checkpoint"]["body"]["tree_size"], new.checkpoint.size);
    let rf = dir.path().join("receipt.json");
    std::fs::write(&rf, log.receipt("run-1").unwrap().to_json()).unwrap();
    let (code, out, _) = run(&["inspect".as_ref(), rf.as_os_str()]);
    assert_eq!(code, 0);
    assert!(out.contains("receipt.sealed"), "{out}");
    let (code, _, err) = run(&["inspect".as_ref(), log_json.parent().unwrap().join("nothing").as_os_str()]);
    assert_eq!(code, 2, "{err}");

    // keygen: a 0600 key whose verifier key checks; never overwrites.
    let k = dir.path().join("k.key");
    let (code, out, err) = run(&[
        "keygen".as_ref(),
        "--name".as_ref(),
        "audit.example/log".as_ref(),
        "--out".as_ref(),
        k.as_os_str(),
        "--log-hash".as_ref(),
        "sha256".as_ref(),
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["vkey"].as_str().unwrap().starts_with("audit.example/log+"));
    assert_eq!(v["log"]["hash"], "sha256");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(std::fs::metadata(&k).unwrap().permissions().mode() & 0o777, 0o600);
    let loaded = NamedKey::from_private_string(&std::fs::read_to_string(&k).unwrap()).unwrap();
    assert_eq!(loaded.verifier().to_string(), v["vkey"].as_str().unwrap());
    let (code, _, err) = run(&["keygen".as_ref(), "--name".as_ref(), "x".as_ref(), "--out".as_ref(), k.as_os_str()]);
    assert_eq!(code, 2);
    assert!(err.contains("refusing to overwrite"), "{err}");
}

/// A pack with payloads: counts of included, absent and erased payloads (the erasure with when,
/// who and why); a changed payload byte fails naming its file; `inspect` shows the erasure.
#[test]
fn packs_with_payloads_and_erasures() {
    use ledger_core::entry::Protocol;
    use ledger_core::{PayloadLimits, PayloadStore, pack};
    let dir = tempfile::tempdir().unwrap();
    let log = log_with_runs(2);
    let payloads = PayloadStore::new(log.store().clone(), PayloadLimits::default());
    let h = |b: &[u8]| *blake3::hash(b).as_bytes();
    let accepted = |run: &str, input: &[u8]| {
        let event = Event::TaskAccepted {
            protocol: Protocol::A2a,
            skill: "s".into(),
            caller: "c".into(),
            input_hash: h(input),
            context: None,
            parent: None,
        };
        entry(&RunId::new(run).unwrap(), 0, "gateway", event)
    };
    log.append(vec![accepted("with-input", b"the input"), accepted("forgotten", b"personal data")]).unwrap();
    payloads.put(&h(b"the input"), b"the input").unwrap();
    payloads.put(&h(b"personal data"), b"personal data").unwrap();
    let ts = 1_767_225_600_000_000_000; // 2026-01-01T00:00:00Z
    let erased_at =
        log.erase_payload(&payloads, &h(b"personal data"), "gdpr art. 17", "dpo", "ledger-server", ts).unwrap();
    log.sign_checkpoint().unwrap();
    let n = log.durable_size();
    let log_json = dir.path().join("log.json");
    std::fs::write(&log_json, serde_json::to_vec(log.descriptor()).unwrap()).unwrap();

    let files = pack::build_with_payloads(&log, 0, n, "2026-01-01T00:00:00Z".into(), Some(&payloads)).unwrap();
    let t = write_tar(&dir.path().join("p.tar"), &files);
    let (code, out, err) = verify_pack(&t, &log_json);
    assert_eq!(code, 0, "{err}");
    // The two runs of log_with_runs name inputs nobody stored.
    assert!(
        out.contains("payloads   1 included (each checked against its name), 2 named but absent, 1 erased"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "erased {} at index {erased_at}, 2026-01-01T00:00:00.000000000Z, approved by \"dpo\": \"gdpr art. 17\"",
            hex::encode(h(b"personal data"))
        )),
        "{out}"
    );
    let (code, out, _) =
        run(&["pack".as_ref(), t.as_os_str(), "--log".as_ref(), log_json.as_os_str(), "--json".as_ref()]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["report"]["payloads_included"], 1);
    assert_eq!(v["report"]["payloads_erased"][0]["index"], erased_at);

    // One changed byte of the payload file: invalid, naming it.
    let name = pack::payload_file(&h(b"the input"));
    let mut tampered = files.clone();
    tampered.iter_mut().find(|(n, _)| *n == name).unwrap().1[0] ^= 1;
    let (code, _, err) = verify_pack(&write_tar(&dir.path().join("bad.tar"), &tampered), &log_json);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&name) && err.contains("not to its name"), "{err}");

    // inspect: the erasure entry, readable.
    let e = dir.path().join("erasure.cbor");
    std::fs::write(&e, log.entry(erased_at).unwrap()).unwrap();
    let (code, out, _) = run(&["inspect".as_ref(), e.as_os_str()]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let erasure = &v["entry"]["erasure"];
    assert_eq!(erasure["payload"], hex::encode(h(b"personal data")));
    assert_eq!(erasure["when"], "2026-01-01T00:00:00.000000000Z");
    assert_eq!((erasure["approver"].as_str(), erasure["reason"].as_str()), (Some("dpo"), Some("gdpr art. 17")));
}
