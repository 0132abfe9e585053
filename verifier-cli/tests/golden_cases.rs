//! Golden valid and invalid inputs in `testdata/verify/`, each with the exact exit code, the
//! message an auditor sees and the failing step (`testdata/verify/cases.json`; the Python
//! verifier's tests run the same cases and assert the same exit codes and steps). SPEC §8 cases:
//! trust policies (valid, and each kind of refusal) and checkpoints cosigned by various sets of
//! witnesses. The files are made from a
//! deterministic log by this test: `UPDATE_GOLDEN=1 cargo test -p verifier-cli --test
//! golden_cases` rewrites them; otherwise a drift from what the code makes fails the test.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::*;
use ledger_core::pack::{self, PackProof};
use ledger_core::seal::seal_event;
use ledger_core::{
    Checkpoint, CompactRange, Cosignature, Event, Log, LogConfig, LogDescriptor, MemStore, MemTree, NamedKey, Note,
    Protocol, ProvenEntry, Receipt, RunId, RunStatus, Store, TreeHash, WitnessKey,
};

const ORIGIN: &str = "verify.a2a-ledger.example/log";

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/verify")
}

fn log_key() -> NamedKey {
    NamedKey::from_seed(ORIGIN, [0x21; 32]).unwrap()
}

fn gateway() -> NamedKey {
    NamedKey::from_seed("gateway", [0x22; 32]).unwrap()
}

fn new_log() -> Log {
    Log::open(Arc::new(MemStore::new()) as Arc<dyn Store>, log_key(), LogConfig::default()).unwrap()
}

fn identity(name: &str, key: &NamedKey) -> Vec<u8> {
    entry(&RunId::identity(name).unwrap(), 0, name, Event::IdentityRegistered { public_key: key.public_key() })
}

/// A run's entries before its seal.
fn body(id: &str, actor: &str) -> Vec<Vec<u8>> {
    let run = RunId::new(id).unwrap();
    vec![
        entry(
            &run,
            0,
            actor,
            Event::TaskAccepted {
                protocol: Protocol::A2a,
                skill: "s".into(),
                caller: "c".into(),
                input_hash: [3; 32],
                context: None,
                parent: None,
            },
        ),
        entry(
            &run,
            1,
            actor,
            Event::TaskEnded { status: RunStatus::Completed, elapsed_ms: 9, artifacts: vec![], error: None },
        ),
    ]
}

fn seal_entry(id: &str, actor: &str, seq: u64, event: Event) -> Vec<u8> {
    entry(&RunId::new(id).unwrap(), seq, actor, event)
}

fn sealed(id: &str, key: &NamedKey) -> Vec<Vec<u8>> {
    let mut e = body(id, key.name());
    let seal = seal_event(TreeHash::Blake3, id, &e, RunStatus::Completed, key);
    e.push(seal_entry(id, key.name(), 2, seal));
    e
}

/// A receipt built by hand: the run's entries at `indices` and the signer at `signer`, proven
/// against the log's newest checkpoint.
fn receipt_by_hand(log: &Log, run: &str, indices: &[u64], signer: u64) -> Receipt {
    let cp = log.checkpoint();
    let prove = |i: u64| ProvenEntry {
        index: i,
        entry: log.entry(i).unwrap(),
        proof: log.inclusion_proof(i, cp.checkpoint.size).unwrap(),
    };
    Receipt {
        format: ledger_core::receipt::RECEIPT_FORMAT.into(),
        log: log.descriptor().clone(),
        run: run.into(),
        checkpoint: cp.note.clone(),
        entries: indices.iter().map(|&i| prove(i)).collect(),
        signer: prove(signer),
    }
}

/// Every case's files: `(relative path, bytes)`.
fn make() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut put = |name: &str, bytes: Vec<u8>| files.push((name.to_string(), bytes));
    let g = gateway();
    let impostor = NamedKey::from_seed("gateway", [0x23; 32]).unwrap();
    let late = NamedKey::from_seed("late", [0x24; 32]).unwrap();

    // The honest log: the gateway's identity, two sealed runs, and the cases that need a log to
    // have accepted bad seals (the ledger does not verify seals at ingest; verifiers do).
    let log = new_log();
    log.append(vec![identity("gateway", &g)]).unwrap(); // 0
    log.append(sealed("good", &g)).unwrap(); // 1..=3
    let mut wrong_hash = body("wrong-hash", "gateway"); // 4..=6
    let Event::ReceiptSealed { events, status, .. } =
        seal_event(TreeHash::Blake3, "x", &wrong_hash, RunStatus::Completed, &g)
    else {
        unreachable!()
    };
    let ch = [0xEE; 32];
    let msg = ledger_core::seal::seal_message("wrong-hash", events, &ch, status);
    wrong_hash.push(seal_entry(
        "wrong-hash",
        "gateway",
        2,
        Event::ReceiptSealed { content_hash: ch, events, status, sig: g.sign(msg.as_bytes()) },
    ));
    log.append(wrong_hash).unwrap();
    let mut bad_sig = body("bad-sig", "gateway"); // 7..=9
    let seal = seal_event(TreeHash::Blake3, "bad-sig", &bad_sig, RunStatus::Completed, &impostor);
    bad_sig.push(seal_entry("bad-sig", "gateway", 2, seal));
    log.append(bad_sig).unwrap();
    log.append(sealed("by-late", &late)).unwrap(); // 10..=12, signed before "late" registers
    log.append(vec![identity("late", &late)]).unwrap(); // 13
    log.append(sealed("more", &g)).unwrap(); // 14..=16
    log.sign_checkpoint().unwrap();
    let desc = log.descriptor().clone();
    put("log.json", serde_json::to_vec_pretty(&desc).unwrap());
    let other_origin = LogDescriptor::new(
        &NamedKey::from_seed("elsewhere.example/log", [0x21; 32]).unwrap().verifier(),
        TreeHash::Blake3,
    );
    put("other-origin-log.json", serde_json::to_vec_pretty(&other_origin).unwrap());

    let good = log.receipt("good").unwrap();
    put("receipt-valid.json", good.to_json().into_bytes());
    let mut r = good.clone();
    let sig_line = r.checkpoint.lines().last().unwrap().to_string();
    let mut raw = B64.decode(sig_line.rsplit(' ').next().unwrap()).unwrap();
    raw[10] ^= 1;
    r.checkpoint = r.checkpoint.replace(&sig_line, &format!("\u{2014} {ORIGIN} {}", B64.encode(raw)));
    put("receipt-bad-checkpoint-signature.json", r.to_json().into_bytes());
    let mut r = good.clone();
    r.entries[1].proof[0][0] ^= 1;
    put("receipt-bad-inclusion-proof.json", r.to_json().into_bytes());
    put("receipt-content-hash-mismatch.json", log.receipt("wrong-hash").unwrap().to_json().into_bytes());
    put("receipt-bad-seal-signature.json", log.receipt("bad-sig").unwrap().to_json().into_bytes());
    put("receipt-signer-after-seal.json", receipt_by_hand(&log, "by-late", &[10, 11, 12], 13).to_json().into_bytes());

    // Packs of a clean log (every seal in it verifies).
    let clean = new_log();
    clean.append(vec![identity("gateway", &g)]).unwrap();
    for id in ["pack-a", "pack-b", "pack-c", "pack-d"] {
        clean.append(sealed(id, &g)).unwrap();
    }
    clean.sign_checkpoint().unwrap();
    let log = clean;
    let n = log.durable_size();
    for (name, bytes) in pack::build(&log, 0, n, "2026-11-23T00:00:00Z".into()).unwrap() {
        put(&format!("pack-valid/{name}"), bytes);
    }
    let mut truncated = pack::build(&log, 0, n, "2026-11-23T00:00:00Z".into()).unwrap();
    let len = truncated[3].1.len();
    truncated[3].1.truncate(len - 7);
    // The manifest is made over the truncated file, so the truncation itself is what fails.
    let m: serde_json::Value = serde_json::from_slice(&truncated[0].1).unwrap();
    let mut m = m;
    m["files"]["entries.bin"] = blake3::hash(&truncated[3].1).to_hex().to_string().into();
    truncated[0].1 = serde_json::to_vec_pretty(&m).unwrap();
    for (name, bytes) in truncated {
        put(&format!("pack-truncated-entries/{name}"), bytes);
    }
    let mut mismatch = pack::build(&log, 0, n, "2026-11-23T00:00:00Z".into()).unwrap();
    mismatch[2].1 = serde_json::to_vec(&PackProof { left: vec![], consistency: vec![] }).unwrap(); // same JSON, other bytes
    mismatch[2].1.push(b'\n');
    for (name, bytes) in mismatch {
        put(&format!("pack-manifest-hash-mismatch/{name}"), bytes);
    }
    // A range whose left compact range is not the log's: [4, n) with the left of [0, 4) taken
    // from another tree.
    let mut range = pack::build(&log, 4, n, "2026-11-23T00:00:00Z".into()).unwrap();
    let mut p: PackProof = serde_json::from_slice(&range[2].1).unwrap();
    p.left[0][0] ^= 1;
    range[2].1 = serde_json::to_vec(&p).unwrap();
    let mut m: serde_json::Value = serde_json::from_slice(&range[0].1).unwrap();
    m["files"]["proof.json"] = blake3::hash(&range[2].1).to_hex().to_string().into();
    range[0].1 = serde_json::to_vec_pretty(&m).unwrap();
    for (name, bytes) in range {
        put(&format!("pack-inconsistent-range/{name}"), bytes);
    }
    // history.json with a checkpoint of another tree of size 5, signed by the same log key.
    let fork = new_log();
    fork.append(vec![identity("gateway", &g)]).unwrap();
    fork.append(sealed("fork-a", &g)).unwrap();
    fork.append(vec![seal_entry("fork-b", "gateway", 0, Event::TaskStatus { state: "working".into(), message: None })])
        .unwrap();
    fork.sign_checkpoint().unwrap();
    let forked_note = fork.checkpoint().note.clone();
    let fsize = fork.durable_size();
    let mut hist = pack::build(&log, 0, n, "2026-11-23T00:00:00Z".into()).unwrap();
    let history = serde_json::json!([{
        "checkpoint": forked_note,
        "consistency": log.consistency_proof(fsize, n).unwrap().iter().map(|h| B64.encode(h)).collect::<Vec<_>>(),
    }]);
    let history = serde_json::to_vec_pretty(&history).unwrap();
    let mut m: serde_json::Value = serde_json::from_slice(&hist[0].1).unwrap();
    m["files"]["history.json"] = blake3::hash(&history).to_hex().to_string().into();
    hist[0].1 = serde_json::to_vec_pretty(&m).unwrap();
    hist.push(("history.json".into(), history));
    for (name, bytes) in hist {
        put(&format!("pack-forked-history/{name}"), bytes);
    }

    // A pack whose entries.bin holds a non-canonical entry that the checkpoint really covers:
    // the tree and checkpoint are made by hand over the exact bytes.
    let good_entry = log.entry(1).unwrap();
    let non_canonical = [vec![0xb9, 0x00, good_entry[0] & 0x1f], good_entry[1..].to_vec()].concat();
    let mut tree = MemTree::new(TreeHash::Blake3);
    let mut entries_bin = Vec::new();
    for e in [log.entry(0).unwrap(), non_canonical] {
        tree.push_entry(&e);
        entries_bin.extend_from_slice(&pack::frame_header(&e));
        entries_bin.extend_from_slice(&e);
    }
    let cp = Checkpoint { origin: ORIGIN.into(), size: 2, root: tree.root(), extensions: vec![] };
    let note = cp.sign(&log_key());
    let proof =
        serde_json::to_vec(&PackProof { left: CompactRange::new().hashes().to_vec(), consistency: vec![] }).unwrap();
    let manifest = pack::Manifest::new(
        &desc,
        (0, 2, 2),
        "2026-11-23T00:00:00Z".into(),
        note.as_bytes(),
        &proof,
        &blake3::hash(&entries_bin),
    );
    put("pack-non-canonical-entry/manifest.json", serde_json::to_vec_pretty(&manifest).unwrap());
    put("pack-non-canonical-entry/checkpoint", note.into_bytes());
    put("pack-non-canonical-entry/proof.json", proof);
    put("pack-non-canonical-entry/entries.bin", entries_bin);

    // Two checkpoints of one log key that fork, for `consistency`.
    put("checkpoint-old.txt", fork.checkpoint().note.clone().into_bytes());
    put("checkpoint-new.txt", log.checkpoint().note.clone().into_bytes());
    let proof: Vec<String> = log.consistency_proof(fsize, n).unwrap().iter().map(|h| B64.encode(h)).collect();
    put("consistency-proof.json", serde_json::to_vec(&serde_json::json!({ "proof": proof })).unwrap());

    // SPEC §8: trust policies, valid and each kind of refusal, and checkpoints cosigned by
    // various sets of three witnesses (and a fourth the policies do not know).
    let wkey = |i: u8| WitnessKey::of(&witness(i)).to_string();
    let desc_vkey = desc.vkey.clone();
    let policy = |name: &str, text: String| (format!("policy/{name}.txt"), text.into_bytes());
    let policies = [
        policy(
            "two-of-three",
            format!(
                "# The golden log and any two of three witnesses.\n\nlog {desc_vkey} https://log.example/\n\
                 witness w1 {} https://w1.example/\n  witness\tw2  {}\nwitness w3 {}\n\
                 group two-of-three 2 w1 w2 w3\n# a comment between\nquorum two-of-three\n",
                wkey(1),
                wkey(2),
                wkey(3)
            ),
        ),
        policy(
            "nested",
            format!(
                "witness w1 {}\nwitness w2 {}\nwitness w3 {}\ngroup pair all w1 w2\ngroup top any pair w3\nquorum top",
                wkey(1),
                wkey(2),
                wkey(3)
            ),
        ),
        policy("none", format!("# No witness required.\nlog {desc_vkey}\nquorum none\n")),
        policy("single", format!("witness w3 {}\nquorum w3\n", wkey(3))),
        policy("bad-duplicate-witness-key", format!("witness w1 {}\nwitness w2 {}\nquorum w1\n", wkey(1), wkey(1))),
        policy("bad-duplicate-name", format!("witness w1 {}\ngroup w1 any w1\nquorum w1\n", wkey(1))),
        policy("bad-duplicate-log", format!("log {desc_vkey}\nlog {desc_vkey} https://mirror.example/\nquorum none\n")),
        policy(
            "bad-forward-reference",
            format!("witness w1 {}\ngroup g any w1 w2\nwitness w2 {}\nquorum g\n", wkey(1), wkey(2)),
        ),
        policy(
            "bad-member-twice",
            format!(
                "witness w1 {}\nwitness w2 {}\ngroup a any w1 w2\ngroup b any w1\ngroup c all a b\nquorum c\n",
                wkey(1),
                wkey(2)
            ),
        ),
        policy("bad-two-quorums", format!("witness w1 {}\nquorum w1\nquorum none\n", wkey(1))),
        policy("bad-no-quorum", format!("witness w1 {}\n", wkey(1))),
        policy("bad-quorum-undefined", format!("witness w1 {}\nquorum w9\n", wkey(1))),
        policy("bad-threshold", format!("witness w1 {}\nwitness w2 {}\ngroup g 3 w1 w2\nquorum g\n", wkey(1), wkey(2))),
        policy(
            "bad-threshold-word",
            format!("witness w1 {}\nwitness w2 {}\ngroup g most w1 w2\nquorum g\n", wkey(1), wkey(2)),
        ),
        policy("bad-reserved-name", format!("witness none {}\nquorum none\n", wkey(1))),
        policy("bad-log-key-as-witness", format!("witness w1 {desc_vkey}\nquorum w1\n")),
        policy("bad-unknown-keyword", format!("witness w1 {}\nthreshold 1\nquorum w1\n", wkey(1))),
        policy("bad-control-character", format!("witness w1 {}\r\nquorum w1\n", wkey(1))),
        policy(
            "bad-other-log",
            format!("log {}\nquorum none\n", NamedKey::from_seed(ORIGIN, [0x25; 32]).unwrap().verifier()),
        ),
    ];
    for (name, bytes) in policies {
        put(&name, bytes);
    }

    let mut r = good.clone();
    r.checkpoint = cosign(&good.checkpoint, &[Cosigner::Good(1), Cosigner::Good(2)]);
    put("receipt-cosigned-w1-w2.json", r.to_json().into_bytes());
    r.checkpoint = cosign(
        &good.checkpoint,
        &[Cosigner::Good(4), Cosigner::Good(3), Cosigner::Good(2), Cosigner::Good(1)], // w4: unknown, ignored
    );
    put("receipt-cosigned-all.json", r.to_json().into_bytes());
    r.checkpoint = cosign(&good.checkpoint, &[Cosigner::Good(3), Cosigner::Good(4)]);
    put("receipt-cosigned-w3.json", r.to_json().into_bytes());
    r.checkpoint = cosign(&good.checkpoint, &[Cosigner::Good(1), Cosigner::Tampered(2)]);
    put("receipt-cosigned-w2-tampered.json", r.to_json().into_bytes());
    r.checkpoint = cosign(&good.checkpoint, &[Cosigner::Good(1), Cosigner::At(2, 1 << 62)]);
    put("receipt-cosigned-w2-future.json", r.to_json().into_bytes());
    r.checkpoint = cosign(&good.checkpoint, &[Cosigner::Good(1), Cosigner::At(2, 1 << 63)]);
    put("receipt-cosigned-w2-timestamp-overflow.json", r.to_json().into_bytes());
    r.checkpoint = cosign(&good.checkpoint, &[Cosigner::Good(1), Cosigner::Short(2)]);
    put("receipt-cosigned-w2-short.json", r.to_json().into_bytes());
    // A cosignature over another checkpoint of the same log (size 5 of the fork), moved here.
    let other = Note::parse(&fork.checkpoint().note).unwrap().text().to_string();
    let moved = Cosignature::sign(&other, &witness(2), COSIGNED_AT).unwrap().to_line();
    r.checkpoint = format!("{}{moved}", cosign(&good.checkpoint, &[Cosigner::Good(1)]));
    put("receipt-cosigned-w2-other-checkpoint.json", r.to_json().into_bytes());

    let mut cosigned_pack = pack::build(&log, 0, n, "2026-11-23T00:00:00Z".into()).unwrap();
    cosigned_pack[1].1 =
        cosign(std::str::from_utf8(&cosigned_pack[1].1).unwrap(), &[Cosigner::Good(1), Cosigner::Good(3)]).into_bytes();
    let mut m: serde_json::Value = serde_json::from_slice(&cosigned_pack[0].1).unwrap();
    m["files"]["checkpoint"] = blake3::hash(&cosigned_pack[1].1).to_hex().to_string().into();
    cosigned_pack[0].1 = serde_json::to_vec_pretty(&m).unwrap();
    for (name, bytes) in cosigned_pack {
        put(&format!("pack-cosigned-w1-w3/{name}"), bytes);
    }
    files
}

/// When the golden cosignatures were made (a fixed time in the past).
const COSIGNED_AT: u64 = 1_764_547_200;

fn witness(i: u8) -> NamedKey {
    NamedKey::from_seed(&format!("witness.example/w{i}"), [0x30 + i; 32]).unwrap()
}

/// How a witness's line is made in [`cosign`].
enum Cosigner {
    /// A good cosignature at [`COSIGNED_AT`].
    Good(u8),
    /// One signature bit flipped.
    Tampered(u8),
    /// A correct signature at another timestamp (even one over 2^63 - 1).
    At(u8, u64),
    /// The signature's last byte cut off (75 bytes after the name).
    Short(u8),
}

/// `note` with one cosignature line per cosigner, in order.
fn cosign(note: &str, who: &[Cosigner]) -> String {
    let text = Note::parse(note).unwrap().text().to_string();
    let mut out = note.to_string();
    for c in who {
        let (i, ts) = match *c {
            Cosigner::Good(i) | Cosigner::Tampered(i) | Cosigner::Short(i) => (i, COSIGNED_AT),
            Cosigner::At(i, ts) => (i, ts),
        };
        let key = witness(i);
        let mut raw = WitnessKey::of(&key).id().to_vec();
        raw.extend_from_slice(&ts.to_be_bytes());
        raw.extend_from_slice(&key.sign(&ledger_core::witness::signed_message(&text, ts)));
        match c {
            Cosigner::Tampered(_) => raw[20] ^= 4,
            Cosigner::Short(_) => {
                raw.pop();
            }
            _ => {}
        }
        out.push_str(&format!("\u{2014} {} {}\n", key.name(), B64.encode(raw)));
    }
    out
}

fn expected() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir().join("cases.json")).unwrap()).unwrap()
}

#[test]
fn golden_cases_give_their_exit_codes_and_messages() {
    let made = make();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        for (name, bytes) in &made {
            let p = dir().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, bytes).unwrap();
        }
    }
    for (name, bytes) in &made {
        let stored = std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("testdata/verify/{name}: {e}"));
        assert!(
            stored == *bytes,
            "testdata/verify/{name} drifted from what the code makes (UPDATE_GOLDEN=1 rewrites it)"
        );
    }
    let cases = expected();
    for case in cases["cases"].as_array().unwrap() {
        let args: Vec<std::ffi::OsString> = case["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                let a = a.as_str().unwrap();
                if a.starts_with('-') || a == "receipt" || a == "pack" || a == "consistency" {
                    a.into()
                } else {
                    dir().join(a).into_os_string()
                }
            })
            .collect();
        let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        let (code, out, err) = run(&refs);
        let name = case["name"].as_str().unwrap();
        assert_eq!(code as u64, case["exit"].as_u64().unwrap(), "{name}: {out}{err}");
        let want = case["message"].as_str().unwrap();
        assert!(out.contains(want) || err.contains(want), "{name}: expected {want:?} in\n{out}{err}");
        // The failing step, which tests/python/test_a2a_verify.py asserts for the Python verifier.
        let step: Vec<String> = match &case["step"] {
            serde_json::Value::Null => vec![],
            // SPEC §5 step 1 includes "its origin matches", which ledger-verify reports as a
            // receipt for another log.
            serde_json::Value::Number(n) if n.as_u64() == Some(1) => {
                vec!["receipt step 1 (".into(), "receipt is for log ".into()]
            }
            serde_json::Value::Number(n) => vec![format!("receipt step {n} (")],
            // A receipt names it as its step 1's part, a pack as its checkpoint's.
            serde_json::Value::String(s) if s == "witness quorum" => {
                vec![
                    "receipt step 1 (witness quorum) failed: ".into(),
                    "checkpoint: step witness quorum failed: ".into(),
                ]
            }
            serde_json::Value::String(s) if s == "policy log" => vec!["the trust policy's log lines name".into()],
            serde_json::Value::String(s) if s.starts_with("policy line ") => {
                vec![format!("trust policy, line {}: ", &s["policy line ".len()..])]
            }
            // Pack checks: the message above names the file.
            serde_json::Value::String(_) => vec![],
            other => panic!("{name}: step {other}"),
        };
        assert!(
            step.is_empty() || step.iter().any(|s| err.contains(s.as_str())),
            "{name}: expected the step as one of {step:?} in\n{err}"
        );
    }
}
