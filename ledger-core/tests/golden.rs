//! Golden fixtures in `testdata/golden/`: entries of every kind, a checkpoint and receipts for
//! both tree hashes, produced deterministically from fixed keys. A format drift fails here.
//! After an intended format change (with a new version string), regenerate them with
//! `UPDATE_GOLDEN=1 cargo test --test golden` and review the diff.
//!
//! The 1.0 fixtures (`entries.txt`, `log-*`, `checkpoint-*`, `receipt-*`) are never rewritten by a
//! 1.1 addition: the 1.1 shapes have files of their own (`*-1.1*`), and a 1.1 decoder must still
//! read every 1.0 file.
//!
//! Also: flipping any single byte of a receipt makes verification fail, at the step that
//! checks the part that was changed.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use ledger_core::entry::Protocol;
use ledger_core::{
    Checkpoint, Entry, Error, Event, Kind, Log, LogConfig, LogDescriptor, MemStore, Receipt, ReceiptStep,
    ReceiptVerifier, RunId, RunStatus, Store, TreeHash,
};

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/golden")
}

fn check_or_update(name: &str, actual: &str) {
    let path = golden_dir().join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden_dir()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        actual, expected,
        "{name} drifted from its golden fixture; a byte-level change needs a new version string"
    );
}

/// One entry of every 1.0 kind, with every optional field somewhere.
fn every_kind() -> Vec<Entry> {
    let h32 = |s: &str| *blake3::hash(s.as_bytes()).as_bytes();
    let events = vec![
        Event::IdentityRegistered { public_key: gateway_key().public_key() },
        Event::TaskAccepted {
            protocol: Protocol::Mcp,
            skill: "search".into(),
            caller: "bob".into(),
            input_hash: h32("input"),
            context: None,
            parent: None,
        },
        Event::TaskStatus { state: "input_required".into(), message: Some("which year?".into()) },
        Event::SkillProgress { stage: "fetch".into(), pct: 50, message: "half way".into() },
        Event::WorkspaceRead { path: "in/data.csv".into(), bytes: 1024, hash: h32("data") },
        Event::WorkspaceWritten { path: "out/report.md".into(), bytes: 77, hash: h32("report") },
        Event::WorkspaceDenied {
            op: "write".into(),
            path: "etc/passwd".into(),
            reason: "outside the output prefix".into(),
        },
        Event::ScopeRequested { paths: vec!["in/**".into(), "cache/*.json".into()], reason: "needs the cache".into() },
        Event::ScopeGranted {
            prior_grant: "g1".into(),
            new_grant: "g2".into(),
            paths: vec!["cache/*.json".into()],
            approver: "carol".into(),
        },
        Event::ScopeDenied { approver: "carol".into(), reason: "not today".into() },
        Event::ArtifactAdded {
            name: "report.md".into(),
            media_type: "text/markdown".into(),
            bytes: 77,
            hash: h32("report"),
        },
        Event::TaskEnded {
            status: RunStatus::Completed,
            elapsed_ms: 1500,
            artifacts: vec!["report.md".into()],
            error: None,
        },
        Event::TaskEnded {
            status: RunStatus::Failed,
            elapsed_ms: 3,
            artifacts: vec![],
            error: Some("upstream timed out".into()),
        },
        Event::TaskEnded { status: RunStatus::Canceled, elapsed_ms: 10, artifacts: vec![], error: None },
        Event::TaskEnded { status: RunStatus::Rejected, elapsed_ms: 0, artifacts: vec![], error: None },
        Event::EvalScored { rubric: "accuracy".into(), score_milli: -250, failures: vec!["cites nothing".into()] },
        Event::ReviewSigned { approver: "dave".into(), notes: "ok".into() },
        Event::ReceiptSealed { content_hash: h32("content"), events: 17, status: RunStatus::Completed, sig: [7; 64] },
    ];
    events
        .into_iter()
        .enumerate()
        .map(|(seq, event)| {
            let run = if seq == 0 { "id/gateway" } else { "golden-run" };
            Entry {
                ts: T0 + seq as i64,
                run: ledger_core::RunId::new(run).unwrap(),
                seq: seq as u64,
                actor: "gateway".into(),
                event,
                grant: (seq % 3 == 1).then(|| format!("grant-{seq}")),
                payload: (seq % 4 == 2).then_some([seq as u8; 32]),
            }
        })
        .collect()
}

#[test]
fn entries_of_every_kind() {
    let entries = every_kind();
    let kinds: Vec<Kind> = entries.iter().map(Entry::kind).collect();
    assert_eq!(kinds, Kind::ALL[..18].to_vec(), "one fixture per 1.0 kind, in table order");
    let mut text = String::new();
    for e in &entries {
        let bytes = e.encode();
        assert_eq!(&Entry::decode(&bytes).unwrap(), e, "round trip of {}", e.kind());
        text.push_str(&format!("{} {}\n", e.kind(), hex::encode(&bytes)));
    }
    check_or_update("entries.txt", &text);
    // The checked-in bytes decode, and re-encode to themselves.
    for line in std::fs::read_to_string(golden_dir().join("entries.txt")).unwrap().lines() {
        let (kind, hx) = line.split_once(' ').unwrap();
        let bytes = hex::decode(hx).unwrap();
        let e = Entry::decode(&bytes).unwrap();
        assert_eq!(e.kind().as_str(), kind);
        assert_eq!(e.encode(), bytes);
    }
}

/// A log with one identity and three sealed runs, checkpointed.
fn golden_log(hash: TreeHash) -> Log {
    let cfg = LogConfig { hash, checkpoint_interval: Duration::from_secs(3600), ..LogConfig::default() };
    let log = Log::open(Arc::new(MemStore::new()) as Arc<dyn Store>, log_key(), cfg).unwrap();
    let key = gateway_key();
    log.append(vec![identity(&key)]).unwrap();
    for r in 0..3 {
        log.append(sealed_run(hash, &format!("golden-{r}"), &key, r)).unwrap();
    }
    log.sign_checkpoint().unwrap();
    log
}

#[test]
fn checkpoint_and_receipts() {
    for hash in [TreeHash::Blake3, TreeHash::Sha256] {
        let log = golden_log(hash);
        let cp = log.checkpoint();
        let desc = serde_json::to_string_pretty(log.descriptor()).unwrap() + "\n";
        check_or_update(&format!("log-{hash}.json"), &desc);
        check_or_update(&format!("checkpoint-{hash}.txt"), &cp.note);
        let receipt = log.receipt("golden-1").unwrap().to_json() + "\n";
        check_or_update(&format!("receipt-{hash}.json"), &receipt);

        // The checked-in files verify on their own.
        let desc: LogDescriptor =
            serde_json::from_str(&std::fs::read_to_string(golden_dir().join(format!("log-{hash}.json"))).unwrap())
                .unwrap();
        let note = std::fs::read_to_string(golden_dir().join(format!("checkpoint-{hash}.txt"))).unwrap();
        let opened = Checkpoint::open(&note, &desc.verifier_key().unwrap()).unwrap();
        assert_eq!(opened.size, log.durable_size());
        let json = std::fs::read(golden_dir().join(format!("receipt-{hash}.json"))).unwrap();
        let v = ReceiptVerifier::new(desc).unwrap().verify_json(&json).unwrap();
        assert_eq!(v.run(), "golden-1");
        assert_eq!(v.status, RunStatus::Completed);
        assert_eq!(v.actor(), "gateway");
    }
}

/// Which step must fail when `path` of the receipt JSON changed; `None` for a parse failure.
fn expected_failure(orig: &serde_json::Value, tampered: &serde_json::Value) -> Expect {
    let (o, t) = (orig.as_object().unwrap(), tampered.as_object().unwrap());
    if o.keys().ne(t.keys()) {
        return Expect::Malformed;
    }
    for (k, ov) in o {
        let tv = &t[k];
        if ov == tv {
            continue;
        }
        return match k.as_str() {
            "format" => Expect::Malformed,
            "log" => {
                let (oo, to) = (ov.as_object().unwrap(), tv.as_object().unwrap());
                let valid_hash = matches!(to.get("hash").and_then(|h| h.as_str()), Some("blake3" | "sha256"));
                if oo.keys().ne(to.keys()) || !valid_hash || !to.values().all(|v| v.is_string()) {
                    Expect::Malformed
                } else {
                    Expect::Step(ReceiptStep::Checkpoint, None)
                }
            }
            "checkpoint" => Expect::Step(ReceiptStep::Checkpoint, None),
            "run" => Expect::Step(ReceiptStep::Entries, None),
            "signer" => proven(ov, tv),
            "entries" => {
                let (oa, ta) = (ov.as_array().unwrap(), tv.as_array().unwrap());
                let i = (0..oa.len()).find(|&i| oa[i] != ta[i]).unwrap();
                proven(&oa[i], &ta[i])
            }
            other => panic!("unexpected key {other}"),
        };
    }
    unreachable!("the flip changed something")
}

fn proven(o: &serde_json::Value, t: &serde_json::Value) -> Expect {
    let (o, t) = (o.as_object().unwrap(), t.as_object().unwrap());
    if o.keys().ne(t.keys()) || !t["index"].is_u64() {
        return Expect::Malformed;
    }
    // Bad base64 is a parse failure; otherwise inclusion fails for the (possibly new) index.
    Expect::StepOrMalformed(ReceiptStep::Inclusion, Some(t["index"].as_u64().unwrap()))
}

#[derive(Debug)]
enum Expect {
    Malformed,
    Step(ReceiptStep, Option<u64>),
    StepOrMalformed(ReceiptStep, Option<u64>),
}

#[test]
fn flipping_any_byte_of_a_receipt_fails_at_the_right_step() {
    for hash in [TreeHash::Blake3, TreeHash::Sha256] {
        let log = golden_log(hash);
        let json = log.receipt("golden-2").unwrap().to_json().into_bytes();
        let orig: serde_json::Value = serde_json::from_slice(&json).unwrap();
        let mut verifier = ReceiptVerifier::new(log.descriptor().clone()).unwrap();
        verifier.verify_json(&json).unwrap();
        for pos in 0..json.len() {
            for bit in [0x01u8, 0x40] {
                let mut t = json.clone();
                t[pos] ^= bit;
                let err = verifier.verify_json(&t).expect_err(&format!("flip {bit:#x} at byte {pos} went unnoticed"));
                let expect = match serde_json::from_slice::<serde_json::Value>(&t) {
                    Err(_) => Expect::Malformed,
                    Ok(tv) => expected_failure(&orig, &tv),
                };
                let ok = match (&expect, &err) {
                    (Expect::Malformed, Error::MalformedReceipt(_)) => true,
                    (Expect::StepOrMalformed(..), Error::MalformedReceipt(_)) => true,
                    (Expect::Step(s, i) | Expect::StepOrMalformed(s, i), e) => {
                        e.receipt_step() == Some(*s)
                            && (i.is_none() || matches!(e, Error::ReceiptInvalid { index, .. } if index == i))
                    }
                    _ => false,
                };
                assert!(ok, "flip {bit:#x} at byte {pos}: expected {expect:?}, got {err}");
            }
        }
    }
}

/// A receipt whose content, seal or signer was replaced — re-proven so that inclusion passes —
/// fails at the later steps.
#[test]
fn later_steps_catch_substituted_content() {
    let log = golden_log(TreeHash::Blake3);
    let mut verifier = ReceiptVerifier::new(log.descriptor().clone()).unwrap();
    let good = log.receipt("golden-1").unwrap();
    let other = log.receipt("golden-2").unwrap();

    // Step 3: an entry of another run, with its own valid proof.
    let mut r = good.clone();
    r.entries[1] = other.entries[1].clone();
    let e = verifier.verify(&r).unwrap_err();
    assert_eq!(e.receipt_step(), Some(ReceiptStep::Entries), "{e}");

    // Step 3: entries out of order.
    let mut r = good.clone();
    r.entries.swap(0, 1);
    assert_eq!(verifier.verify(&r).unwrap_err().receipt_step(), Some(ReceiptStep::Entries));

    // Step 3: the seal dropped.
    let mut r = good.clone();
    r.entries.pop();
    assert_eq!(verifier.verify(&r).unwrap_err().receipt_step(), Some(ReceiptStep::Entries));

    // Step 5: the signer entry replaced by a non-identity entry.
    let mut r = good.clone();
    r.signer = other.entries[0].clone();
    assert_eq!(verifier.verify(&r).unwrap_err().receipt_step(), Some(ReceiptStep::Signature));

    // Step 1: another log's key.
    let mut desc = log.descriptor().clone();
    desc.vkey = ledger_core::NamedKey::from_seed(&desc.origin, [0x55; 32]).unwrap().verifier().to_string();
    let e = ReceiptVerifier::new(desc).unwrap().verify(&good).unwrap_err();
    assert_eq!(e.receipt_step(), Some(ReceiptStep::Checkpoint), "{e}");
    let _: Receipt = good;
}

/// Seals that are well-formed but wrong: the ledger records them (it does not judge seals), and
/// their receipts fail at step 4 (content hash) and step 5 (signature).
#[test]
fn wrong_seals_fail_steps_four_and_five() {
    let cfg = LogConfig { checkpoint_interval: Duration::from_secs(3600), ..LogConfig::default() };
    let log = Log::open(Arc::new(MemStore::new()) as Arc<dyn Store>, log_key(), cfg).unwrap();
    let key = gateway_key();
    log.append(vec![identity(&key)]).unwrap();
    let h = TreeHash::Blake3;

    // Content hash over other entries.
    let mut run = run_events("bad-hash", "gateway", 1);
    let elsewhere = run_events("elsewhere", "gateway", 1);
    let seal = ledger_core::seal::seal_event(h, "bad-hash", &elsewhere, RunStatus::Completed, &key);
    run.push(entry("bad-hash", run.len() as u64, "gateway", seal));
    log.append(run).unwrap();

    // Signed by a key that is not the registered one.
    let mut run = run_events("bad-sig", "gateway", 1);
    let impostor = ledger_core::NamedKey::from_seed("gateway", [0x66; 32]).unwrap();
    let seal = ledger_core::seal::seal_event(h, "bad-sig", &run, RunStatus::Completed, &impostor);
    run.push(entry("bad-sig", run.len() as u64, "gateway", seal));
    log.append(run).unwrap();

    // The right content hash for another status than the one signed.
    let mut run = run_events("bad-status", "gateway", 0);
    let Event::ReceiptSealed { content_hash, events, sig, .. } =
        ledger_core::seal::seal_event(h, "bad-status", &run, RunStatus::Completed, &key)
    else {
        unreachable!()
    };
    let seal = Event::ReceiptSealed { content_hash, events, sig, status: RunStatus::Failed };
    run.push(entry("bad-status", run.len() as u64, "gateway", seal));
    log.append(run).unwrap();

    log.sign_checkpoint().unwrap();
    let mut verifier = ReceiptVerifier::new(log.descriptor().clone()).unwrap();
    let e = verifier.verify(&log.receipt("bad-hash").unwrap()).unwrap_err();
    assert_eq!(e.receipt_step(), Some(ReceiptStep::ContentHash), "{e}");
    for run in ["bad-sig", "bad-status"] {
        let e = verifier.verify(&log.receipt(run).unwrap()).unwrap_err();
        assert_eq!(e.receipt_step(), Some(ReceiptStep::Signature), "{run}: {e}");
    }
}

/// Seeds for the `pack_verify` fuzz target: packs of the golden blake3 log, whole and cut, in the
/// target's input encoding. Rewritten with `UPDATE_GOLDEN=1`, checked otherwise.
#[test]
fn pack_fuzz_seeds() {
    use ledger_core::pack;
    let log = golden_log(TreeHash::Blake3);
    let cp = log.checkpoint();
    let n = cp.checkpoint.size;
    for (name, start, end) in [("seed-whole", 0, n), ("seed-cut", 3, n - 4)] {
        let files = pack::build(&log, start, end, "2026-01-01T00:00:00Z".into()).unwrap();
        let [manifest, _, proof, entries] = [0, 1, 2, 3].map(|i| files[i].1.clone());
        let mut input = vec![63u8];
        for part in [&manifest[..], cp.note.as_bytes(), &proof] {
            input.extend_from_slice(&(part.len() as u16).to_be_bytes());
            input.extend_from_slice(part);
        }
        input.extend_from_slice(&entries);
        let report = pack::PackVerifier::new(log.descriptor(), &manifest, cp.note.as_bytes(), &proof)
            .and_then(|mut v| v.entries_bin(&entries).map(|_| v))
            .and_then(|v| v.finish())
            .unwrap();
        assert_eq!((report.start, report.end), (start, end));
        let path = golden_dir().join("../../fuzz/corpus/pack_verify").join(name);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &input).unwrap();
        } else {
            let stored = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(stored == input, "{} drifted from the golden log (UPDATE_GOLDEN=1 rewrites it)", path.display());
        }
    }
}

/// The shapes revision 1.1 adds to SPEC §2: `task.accepted` with its optional `context` and
/// `parent` (together and alone), and `payload.erased` in its own run.
fn revision_1_1() -> Vec<(&'static str, Entry)> {
    let accepted = |context: Option<&str>, parent: Option<&str>| Event::TaskAccepted {
        protocol: Protocol::A2a,
        skill: "search".into(),
        caller: "bob".into(),
        input_hash: *blake3::hash(b"input").as_bytes(),
        context: context.map(str::to_string),
        parent: parent.map(|p| RunId::new(p).unwrap()),
    };
    let erased = *blake3::hash(b"summary").as_bytes();
    let shapes = vec![
        ("task.accepted-context-parent", "golden-child", accepted(Some("ctx-7f3a"), Some("golden-0"))),
        ("task.accepted-context", "golden-ctx", accepted(Some(&"c".repeat(256)), None)),
        ("task.accepted-parent", "golden-sub", accepted(None, Some("id/gateway:parent.run_1-x"))),
        (
            "payload.erased",
            "",
            Event::PayloadErased {
                hash: erased,
                reason: "data subject request 2026-0042".into(),
                approver: "dpo@example.com".into(),
            },
        ),
    ];
    shapes
        .into_iter()
        .enumerate()
        .map(|(i, (name, run, event))| {
            let run = if run.is_empty() { RunId::erasure(&erased) } else { RunId::new(run).unwrap() };
            let e = Entry {
                ts: T0 + 100 + i as i64,
                run,
                seq: 0,
                actor: "gateway".into(),
                event,
                grant: (i == 0).then(|| "grant-11".into()),
                payload: (i == 0).then_some([0x11; 32]),
            };
            (name, e)
        })
        .collect()
}

/// The 1.1 entries, checked into `entries-1.1.txt` and, as raw bytes, into the `entry_decode`
/// fuzz corpus.
#[test]
fn entries_of_revision_1_1() {
    let mut text = String::new();
    for (name, e) in revision_1_1() {
        let bytes = e.encode();
        assert_eq!(&Entry::decode(&bytes).unwrap(), &e, "round trip of {name}");
        text.push_str(&format!("{} {}\n", e.kind(), hex::encode(&bytes)));
        let seed = golden_dir().join("../../fuzz/corpus/entry_decode").join(format!("seed-1.1-{name}"));
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&seed, &bytes).unwrap();
        } else {
            let stored = std::fs::read(&seed).unwrap_or_else(|e| panic!("{}: {e}", seed.display()));
            assert!(stored == bytes, "{} drifted (UPDATE_GOLDEN=1 rewrites it)", seed.display());
        }
    }
    check_or_update("entries-1.1.txt", &text);
    let mut kinds = Vec::new();
    for line in std::fs::read_to_string(golden_dir().join("entries-1.1.txt")).unwrap().lines() {
        let (kind, hx) = line.split_once(' ').unwrap();
        let bytes = hex::decode(hx).unwrap();
        let e = Entry::decode(&bytes).unwrap();
        assert_eq!(e.kind().as_str(), kind);
        assert_eq!(e.encode(), bytes);
        kinds.push(e.kind());
    }
    assert_eq!(kinds.last(), Some(&Kind::PayloadErased));
    // 1.0 and 1.1 together: every kind has a fixture.
    let all: std::collections::HashSet<Kind> = every_kind().iter().map(Entry::kind).chain(kinds).collect();
    assert_eq!(all.len(), Kind::ALL.len());
}

/// A log with revision 1.1 entries: an ordinary sealed run, a sealed run called on its behalf
/// (its `task.accepted` carries `context` and `parent`), and an erasure of a payload of it.
fn golden_log_1_1(hash: TreeHash) -> Log {
    let cfg = LogConfig { hash, checkpoint_interval: Duration::from_secs(3600), ..LogConfig::default() };
    let log = Log::open(Arc::new(MemStore::new()) as Arc<dyn Store>, log_key(), cfg).unwrap();
    let key = gateway_key();
    log.append(vec![identity(&key)]).unwrap();
    log.append(sealed_run(hash, "golden-0", &key, 0)).unwrap();
    let [(_, accepted), .., (_, erasure)] = <[_; 4]>::try_from(revision_1_1()).unwrap();
    let mut child = run_events("golden-child", key.name(), 1);
    let mut first = Entry::decode(&child[0]).unwrap();
    first.event = accepted.event;
    child[0] = first.encode();
    let seal = ledger_core::seal::seal_event(hash, "golden-child", &child, RunStatus::Completed, &key);
    child.push(entry("golden-child", child.len() as u64, key.name(), seal));
    log.append(child).unwrap();
    log.append(vec![erasure.encode()]).unwrap();
    log.sign_checkpoint().unwrap();
    log
}

#[test]
fn receipts_of_revision_1_1() {
    for hash in [TreeHash::Blake3, TreeHash::Sha256] {
        let log = golden_log_1_1(hash);
        // Same log key and origin as the 1.0 fixtures: their descriptors verify these too.
        let desc: LogDescriptor =
            serde_json::from_str(&std::fs::read_to_string(golden_dir().join(format!("log-{hash}.json"))).unwrap())
                .unwrap();
        assert_eq!(&desc, log.descriptor());
        check_or_update(&format!("checkpoint-1.1-{hash}.txt"), &log.checkpoint().note);
        let receipt = log.receipt("golden-child").unwrap().to_json() + "\n";
        check_or_update(&format!("receipt-1.1-{hash}.json"), &receipt);

        let note = std::fs::read_to_string(golden_dir().join(format!("checkpoint-1.1-{hash}.txt"))).unwrap();
        let opened = Checkpoint::open(&note, &desc.verifier_key().unwrap()).unwrap();
        assert_eq!(opened.size, log.durable_size());
        let json = std::fs::read(golden_dir().join(format!("receipt-1.1-{hash}.json"))).unwrap();
        let mut verifier = ReceiptVerifier::new(desc).unwrap();
        let v = verifier.verify_json(&json).unwrap();
        assert_eq!((v.run(), v.status, v.actor()), ("golden-child", RunStatus::Completed, "gateway"));
        let r = Receipt::from_json(&json).unwrap();
        let Event::TaskAccepted { context, parent, .. } = Entry::decode(&r.entries[0].entry).unwrap().event else {
            panic!("the run starts with task.accepted")
        };
        assert_eq!((context.as_deref(), parent.as_ref().map(RunId::as_str)), (Some("ctx-7f3a"), Some("golden-0")));

        // The parent's receipt is an ordinary 1.0 one.
        verifier.verify(&log.receipt("golden-0").unwrap()).unwrap();
        // An erasure is a one-entry run that is never sealed: it has no receipt.
        let erasure = RunId::erasure(blake3::hash(b"summary").as_bytes());
        assert!(erasure.as_str().starts_with("erasure/"));
        assert!(matches!(log.receipt(erasure.as_str()), Err(Error::Unsealed(r)) if r == erasure.as_str()));
    }
}

/// A pack over a range that holds an erasure verifies; the erasure is not an open run.
#[test]
fn packs_over_an_erasure_verify() {
    use ledger_core::pack;
    let log = golden_log_1_1(TreeHash::Blake3);
    let cp = log.checkpoint();
    let n = cp.checkpoint.size;
    // Whole; the erasure alone; the start of an ordinary run (open: not sealed in the range).
    for (start, end, open) in [(0, n, 0), (n - 1, n, 0), (1, 3, 1)] {
        let files = pack::build(&log, start, end, "2026-01-01T00:00:00Z".into()).unwrap();
        let [manifest, _, proof, entries] = [0, 1, 2, 3].map(|i| files[i].1.clone());
        let report = pack::PackVerifier::new(log.descriptor(), &manifest, cp.note.as_bytes(), &proof)
            .and_then(|mut v| v.entries_bin(&entries).map(|_| v))
            .and_then(|v| v.finish())
            .unwrap();
        assert_eq!((report.start, report.end, report.open_runs), (start, end, open), "pack [{start}, {end})");
        if start == 0 {
            assert_eq!(report.seals_verified, 2);
            assert!(report.partial.is_empty(), "{:?}", report.partial);
        }
    }
}
