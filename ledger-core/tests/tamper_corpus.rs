//! The tamper corpus `testdata/tamper/corpus.json`: ledger-core's verdict on receipts and packs
//! changed in every way the dashboard's in-browser verifier must judge the same — every bit 0x01
//! and 0x40 of every byte of the golden receipts, every bit 0x01 and 0x80 of every byte of a
//! pack's `entries.bin` (and bits of its manifest, checkpoint and proof), and hand-made cases (each proof hash, the checkpoint, the signer, entries
//! swapped, dropped and substituted, wrong seals, a small-order identity key, a non-canonical `S`,
//! cosignatures under a trust policy). The dashboard's tests (`dashboard/test/tamper.test.ts`)
//! assert the same verdict, step and index for every one.
//!
//! The file is regenerated with `UPDATE_GOLDEN=1 cargo test --release -p ledger-core --test
//! tamper_corpus`, and otherwise checked: a change of ledger-core's verdicts fails here first.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use ledger_core::checkpoint::Note;
use ledger_core::pack::PackVerifier;
use ledger_core::{
    Checkpoint, Cosignature, Entry, Error, Event, Log, LogConfig, LogDescriptor, MemStore, MemTree, NamedKey, Policy,
    ProvenEntry, Receipt, ReceiptStep, ReceiptVerifier, RunStatus, Store, TreeHash, WitnessKey,
};
use serde_json::{Value, json};

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// A fixed cosignature time (2026-01-01), in the past for every verifier's clock.
const COSIGNED_AT: u64 = 1_767_225_600;
/// A cosignature time far in the future (2100-01-01): it never counts.
const FUTURE: u64 = 4_102_444_800;

/// ledger-core's verdict on a receipt as the corpus writes it — `valid`, `malformed` (could not
/// be checked), or `step <n>[ (witness quorum)][ at <index>]` — and the message of a failed step
/// as `ledger-verify` prints it (empty otherwise).
fn receipt_verdict(log: &LogDescriptor, policy: Option<&Arc<Policy>>, json: &[u8]) -> (String, String) {
    let mut v = match policy {
        Some(p) => ReceiptVerifier::with_policy(log.clone(), p.clone()).unwrap(),
        None => ReceiptVerifier::new(log.clone()).unwrap(),
    };
    match v.verify_json(json) {
        Ok(_) => ("valid".into(), String::new()),
        Err(Error::MalformedReceipt(_)) => ("malformed".into(), String::new()),
        Err(e) => {
            let step = e.receipt_step().unwrap_or_else(|| panic!("not a receipt failure: {e}"));
            let name = if step == ReceiptStep::WitnessQuorum { " (witness quorum)" } else { "" };
            let verdict = match e {
                Error::ReceiptInvalid { index: Some(i), .. } => format!("step {step}{name} at {i}"),
                _ => format!("step {step}{name}"),
            };
            (verdict, e.to_string())
        }
    }
}

/// ledger-core's verdict on a pack's files, as `ledger-verify pack` reaches it: `malformed` for
/// a manifest that is not one (could not be checked), `manifest.json` for one of another log,
/// else `valid` or `<file>[ at <index>]` of the failure; and ledger-core's message for a
/// failure of the pack's files (empty otherwise).
fn pack_verdict(
    log: &LogDescriptor,
    manifest: &[u8],
    checkpoint: &[u8],
    proof: &[u8],
    entries: &[u8],
) -> (String, String) {
    match serde_json::from_slice::<ledger_core::pack::Manifest>(manifest) {
        Err(_) => return ("malformed".into(), String::new()),
        Ok(m) if m.log != *log => return ("manifest.json".into(), String::new()),
        Ok(_) => {}
    }
    let result = PackVerifier::new(log, manifest, checkpoint, proof)
        .and_then(|mut v| v.entries_bin(entries).map(|_| v))
        .and_then(|v| v.finish());
    match result {
        Ok(_) => ("valid".into(), String::new()),
        Err(e @ Error::PackInvalid { index: Some(i), .. }) => {
            let Error::PackInvalid { file, .. } = &e else { unreachable!() };
            (format!("{file} at {i}"), e.to_string())
        }
        Err(e @ Error::PackInvalid { index: None, .. }) => {
            let Error::PackInvalid { file, .. } = &e else { unreachable!() };
            (file.clone(), e.to_string())
        }
        Err(e) => panic!("not a pack failure: {e}"),
    }
}

/// Every single-bit flip (of each bit in `bits`) of every byte of `bytes`, judged by `verdict`:
/// the verdicts and the messages, each by bit then by byte position.
fn flips(bytes: &[u8], bits: &[u8], verdict: impl Fn(&[u8]) -> (String, String)) -> (Value, Value) {
    let (mut verdicts, mut messages) = (serde_json::Map::new(), serde_json::Map::new());
    for &bit in bits {
        let judged: Vec<(String, String)> = (0..bytes.len())
            .map(|pos| {
                let mut t = bytes.to_vec();
                t[pos] ^= bit;
                verdict(&t)
            })
            .collect();
        verdicts.insert(bit.to_string(), json!(judged.iter().map(|j| &j.0).collect::<Vec<_>>()));
        messages.insert(bit.to_string(), json!(judged.iter().map(|j| &j.1).collect::<Vec<_>>()));
    }
    (Value::Object(verdicts), Value::Object(messages))
}

fn golden_log(hash: TreeHash) -> Log {
    let cfg = LogConfig { hash, checkpoint_interval: Duration::from_secs(3600), ..LogConfig::default() };
    let log = Log::open(Arc::new(MemStore::new()) as Arc<dyn Store>, log_key(), cfg).unwrap();
    let key = gateway_key();
    log.append(vec![identity(&key)]).unwrap();
    log.append(vec![identity(&NamedKey::from_seed("other-gateway", [0x33; 32]).unwrap())]).unwrap();
    for r in 0..3 {
        log.append(sealed_run(hash, &format!("golden-{r}"), &key, r)).unwrap();
    }
    log.sign_checkpoint().unwrap();
    log
}

/// A receipt made by hand over a tree of `entries`: the run's entries at `run_at`, the signer at
/// `signer_at`, under a checkpoint signed by the test log key.
fn hand_made(h: TreeHash, entries: &[Vec<u8>], run: &str, run_at: &[u64], signer_at: u64) -> (Receipt, LogDescriptor) {
    let key = log_key();
    let mut tree = MemTree::new(h);
    for e in entries {
        tree.push_entry(e);
    }
    let size = tree.size();
    let note = Checkpoint { origin: key.name().into(), size, root: tree.root(), extensions: vec![] }.sign(&key);
    let proven = |i: u64| ProvenEntry {
        index: i,
        entry: entries[i as usize].clone(),
        proof: tree.inclusion_proof(i, size).unwrap(),
    };
    let log = LogDescriptor::new(&key.verifier(), h);
    let receipt = Receipt {
        format: "a2a-ledger/receipt/v1".into(),
        log: log.clone(),
        run: run.into(),
        checkpoint: note,
        entries: run_at.iter().map(|&i| proven(i)).collect(),
        signer: proven(signer_at),
    };
    (receipt, log)
}

struct Cases {
    list: Vec<Value>,
}

impl Cases {
    fn add(&mut self, name: &str, log: &LogDescriptor, policy: Option<(&str, &Arc<Policy>)>, receipt: &str) {
        let (verdict, message) = receipt_verdict(log, policy.map(|(_, p)| p), receipt.as_bytes());
        let mut case = json!({"name": name, "log": log, "receipt": receipt, "verdict": verdict, "message": message});
        if let Some((text, _)) = policy {
            case["policy"] = json!(text);
        }
        self.list.push(case);
    }
}

fn with_sig(entry: &[u8], sig: [u8; 64]) -> Vec<u8> {
    let mut e = Entry::decode(entry).unwrap();
    let Event::ReceiptSealed { content_hash, events, status, .. } = e.event else { panic!("not a seal") };
    e.event = Event::ReceiptSealed { content_hash, events, status, sig };
    e.encode()
}

fn hand_made_cases(cases: &mut Cases) {
    let h = TreeHash::Blake3;
    let key = gateway_key();

    // A small-order identity key (the identity point): the ledger refuses it at append, and a
    // signature (R = identity, S = 0) verifies under it for every message unless verification is
    // strict. The signer entry fails to decode: step 5 at the signer's index.
    let mut small = [0u8; 32];
    small[0] = 1;
    let weak = Entry::decode(&identity(&key)).unwrap();
    let weak = Entry { event: Event::IdentityRegistered { public_key: small }, ..weak }.encode();
    let mut run = run_events("weak-key", "gateway", 0);
    let seal = ledger_core::seal::seal_event(h, "weak-key", &run, RunStatus::Completed, &key);
    run.push(entry("weak-key", run.len() as u64, "gateway", seal));
    let last = run.len() - 1;
    run[last] = with_sig(&run[last], {
        let mut s = [0u8; 64];
        s[0] = 1;
        s
    });
    let mut all = vec![weak];
    all.extend(run.iter().cloned());
    let at: Vec<u64> = (1..all.len() as u64).collect();
    let (r, log) = hand_made(h, &all, "weak-key", &at, 0);
    cases.add("small-order identity key with an (identity, 0) seal signature", &log, None, &r.to_json());

    // A seal signature with S + L (non-canonical S): the same point equation, refused by strict
    // verification.
    let mut run = run_events("big-s", "gateway", 0);
    let seal = ledger_core::seal::seal_event(h, "big-s", &run, RunStatus::Completed, &key);
    run.push(entry("big-s", run.len() as u64, "gateway", seal));
    let last = run.len() - 1;
    let Event::ReceiptSealed { sig, .. } = Entry::decode(&run[last]).unwrap().event else { unreachable!() };
    // L = 2^252 + 27742317777372353535851937790883648493, little-endian.
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut big = sig;
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(big[32 + i]) + u16::from(L[i]) + carry;
        big[32 + i] = v as u8;
        carry = v >> 8;
    }
    run[last] = with_sig(&run[last], big);
    let mut all = vec![identity(&key)];
    all.extend(run.iter().cloned());
    let at: Vec<u64> = (1..all.len() as u64).collect();
    let (r, log) = hand_made(h, &all, "big-s", &at, 0);
    cases.add("seal signature with a non-canonical S (S + L)", &log, None, &r.to_json());
    // The same receipt with the signature as made verifies (the case above fails only for S).
    let mut run = run_events("big-s", "gateway", 0);
    let seal = ledger_core::seal::seal_event(h, "big-s", &run, RunStatus::Completed, &key);
    run.push(entry("big-s", run.len() as u64, "gateway", seal));
    let mut all = vec![identity(&key)];
    all.extend(run);
    let (r, log) = hand_made(h, &all, "big-s", &at, 0);
    cases.add("the same seal with its canonical S", &log, None, &r.to_json());

    // Wrong seals the ledger records without judging: content hash over other entries (step 4),
    // an impostor's signature and a changed status (step 5).
    let mut bad_hash = run_events("bad-hash", "gateway", 1);
    let elsewhere = run_events("elsewhere", "gateway", 1);
    let seal = ledger_core::seal::seal_event(h, "bad-hash", &elsewhere, RunStatus::Completed, &key);
    bad_hash.push(entry("bad-hash", bad_hash.len() as u64, "gateway", seal));
    let mut bad_sig = run_events("bad-sig", "gateway", 1);
    let impostor = NamedKey::from_seed("gateway", [0x66; 32]).unwrap();
    let seal = ledger_core::seal::seal_event(h, "bad-sig", &bad_sig, RunStatus::Completed, &impostor);
    bad_sig.push(entry("bad-sig", bad_sig.len() as u64, "gateway", seal));
    let mut bad_status = run_events("bad-status", "gateway", 0);
    let Event::ReceiptSealed { content_hash, events, sig, .. } =
        ledger_core::seal::seal_event(h, "bad-status", &bad_status, RunStatus::Completed, &key)
    else {
        unreachable!()
    };
    let seal = Event::ReceiptSealed { content_hash, events, sig, status: RunStatus::Failed };
    bad_status.push(entry("bad-status", bad_status.len() as u64, "gateway", seal));
    let mut all = vec![identity(&key)];
    let mut spans = Vec::new();
    for run in [bad_hash, bad_sig, bad_status] {
        let start = all.len() as u64;
        all.extend(run);
        spans.push((start..all.len() as u64).collect::<Vec<u64>>());
    }
    for (name, at) in ["bad-hash", "bad-sig", "bad-status"].iter().zip(&spans) {
        let (r, log) = hand_made(h, &all, name, at, 0);
        cases.add(&format!("wrong seal: {name}"), &log, None, &r.to_json());
    }
}

fn structured_cases(cases: &mut Cases) {
    for h in [TreeHash::Blake3, TreeHash::Sha256] {
        let log = golden_log(h);
        let desc = log.descriptor().clone();
        let good = log.receipt("golden-1").unwrap();
        let other = log.receipt("golden-2").unwrap();
        let json = |r: &Receipt| r.to_json();
        cases.add(&format!("{h}: as made"), &desc, None, &json(&good));

        // Step 2: each proof hash changed, and proofs one hash too long or too short.
        for (i, pe) in good.entries.iter().enumerate().chain(std::iter::once((usize::MAX, &good.signer))) {
            for j in 0..pe.proof.len() {
                let mut r = good.clone();
                let target = if i == usize::MAX { &mut r.signer } else { &mut r.entries[i] };
                target.proof[j][j % 32] ^= 0x80;
                cases.add(&format!("{h}: proof hash {j} of index {} changed", pe.index), &desc, None, &json(&r));
            }
        }
        let mut r = good.clone();
        r.entries[1].proof.push([7; 32]);
        cases.add(&format!("{h}: a proof one hash too long"), &desc, None, &json(&r));
        let mut r = good.clone();
        r.signer.proof.pop();
        cases.add(&format!("{h}: the signer's proof one hash short"), &desc, None, &json(&r));
        let mut r = good.clone();
        r.entries[2].index += 1;
        cases.add(&format!("{h}: an entry moved to the next index"), &desc, None, &json(&r));
        let mut r = good.clone();
        r.entries[0].index = 1 << 40;
        cases.add(&format!("{h}: an index beyond the tree"), &desc, None, &json(&r));

        // Step 3: substituted (with its own valid proof), swapped, dropped, none.
        let mut r = good.clone();
        r.entries[1] = other.entries[1].clone();
        cases.add(&format!("{h}: an entry of another run, with its proof"), &desc, None, &json(&r));
        let mut r = good.clone();
        r.entries.swap(0, 1);
        cases.add(&format!("{h}: two entries swapped"), &desc, None, &json(&r));
        let mut r = good.clone();
        r.entries.pop();
        cases.add(&format!("{h}: the seal dropped"), &desc, None, &json(&r));
        let mut r = good.clone();
        r.entries.remove(1);
        cases.add(&format!("{h}: an entry dropped"), &desc, None, &json(&r));
        let mut r = good.clone();
        r.entries.clear();
        cases.add(&format!("{h}: no entries"), &desc, None, &json(&r));
        let mut r = good.clone();
        r.run = "golden-2".into();
        cases.add(&format!("{h}: the run renamed"), &desc, None, &json(&r));

        // Step 5: the signer replaced (another kind; another identity); step 4 cannot be reached
        // by substitution with valid proofs other than through a wrong seal (hand-made below).
        let mut r = good.clone();
        r.signer = other.entries[0].clone();
        cases.add(&format!("{h}: the signer replaced by a task.accepted"), &desc, None, &json(&r));
        let mut r = good.clone();
        let size = log.checkpoint().checkpoint.size;
        let entry = identity(&NamedKey::from_seed("other-gateway", [0x33; 32]).unwrap());
        r.signer = ProvenEntry { index: 1, entry, proof: log.inclusion_proof(1, size).unwrap() };
        cases.add(&format!("{h}: the signer is another identity"), &desc, None, &json(&r));

        // Step 1: the checkpoint re-signed by another key of the same origin, another origin, no
        // log signature line, the descriptor of another log; unknown cosignature lines are ignored.
        let cp = log.checkpoint().checkpoint.clone();
        let mut r = good.clone();
        r.checkpoint = cp.sign(&NamedKey::from_seed(&cp.origin, [0x55; 32]).unwrap());
        cases.add(&format!("{h}: checkpoint signed by another key"), &desc, None, &json(&r));
        let mut r = good.clone();
        let elsewhere = NamedKey::from_seed("elsewhere.example/log", [0x56; 32]).unwrap();
        r.checkpoint = Checkpoint { origin: elsewhere.name().into(), ..cp.clone() }.sign(&elsewhere);
        cases.add(&format!("{h}: checkpoint of another origin"), &desc, None, &json(&r));
        let mut r = good.clone();
        let text = Note::parse(&good.checkpoint).unwrap().text().to_string();
        r.checkpoint = format!("{text}\n\u{2014} someone.example/other AAAAAAAAAAAAAAAAAAAAAAAA\n");
        cases.add(&format!("{h}: checkpoint without the log's signature"), &desc, None, &json(&r));
        let mut r = good.clone();
        r.checkpoint.push_str("\u{2014} witness.example/w9 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n");
        cases.add(&format!("{h}: an unknown cosignature line is ignored"), &desc, None, &json(&r));
        let mut r = good.clone();
        r.log.vkey = NamedKey::from_seed(&desc.origin, [0x55; 32]).unwrap().verifier().to_string();
        cases.add(&format!("{h}: the receipt names another log key"), &desc, None, &json(&r));

        // The JSON itself: what serde_json reads into the receipt, and what it refuses.
        let text = json(&good);
        let first = format!("\"index\":{}", good.entries[0].index);
        let pretty = serde_json::to_string_pretty(&serde_json::from_str::<Value>(&text).unwrap()).unwrap();
        let escaped = text.replacen("\"format\":\"a2a", "\"format\":\"\\u0061\\u0032a", 1);
        for (what, variant) in [
            ("pretty-printed", pretty),
            ("a string with \\u escapes", escaped),
            ("an index written -0", text.replacen(&first, "\"index\":-0", 1)),
            ("an index written as a float", text.replacen(&first, &format!("{first}.0"), 1)),
            ("an index with an exponent", text.replacen(&first, &format!("{first}e0"), 1)),
            ("an index with a leading zero", text.replacen(&first, &first.replace(':', ":0"), 1)),
            ("a duplicate field", text.replacen("{\"format\"", "{\"run\":\"x\",\"format\"", 1)),
            ("an unknown field", text.replacen("{\"format\"", "{\"extra\":null,\"format\"", 1)),
            ("a byte order mark", format!("\u{feff}{text}")),
            ("trailing whitespace", format!("{text} \n\t")),
        ] {
            cases.add(&format!("{h}: JSON {what}"), &desc, None, &variant);
        }
    }
}

/// CBOR written by hand, for entries ledger-core's encoder never makes.
mod raw {
    /// The shortest head of `major` with argument `n`.
    pub fn head(major: u8, n: u64) -> Vec<u8> {
        let m = major << 5;
        match n {
            0..=23 => vec![m | n as u8],
            24..=0xff => vec![m | 24, n as u8],
            0x100..=0xffff => [vec![m | 25], (n as u16).to_be_bytes().to_vec()].concat(),
            0x1_0000..=0xffff_ffff => [vec![m | 26], (n as u32).to_be_bytes().to_vec()].concat(),
            _ => [vec![m | 27], n.to_be_bytes().to_vec()].concat(),
        }
    }
    pub fn text(s: &str) -> Vec<u8> {
        [head(3, s.len() as u64), s.as_bytes().to_vec()].concat()
    }
    pub fn uint(n: u64) -> Vec<u8> {
        head(0, n)
    }
    pub fn bytes(b: &[u8]) -> Vec<u8> {
        [head(2, b.len() as u64), b.to_vec()].concat()
    }
    /// A map of the pairs in the order given.
    pub fn map(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
        let mut out = head(5, pairs.len() as u64);
        for (k, v) in pairs {
            out.extend_from_slice(k);
            out.extend_from_slice(v);
        }
        out
    }
}

/// Entries with one departure from SPEC §2 each (and some unusual valid ones), at seq 1 of a run
/// sealed over them: ledger-core's decoder decides, the corpus records `valid` or step 3.
fn cbor_cases(cases: &mut Cases) {
    use raw::*;
    let h = TreeHash::Blake3;
    let key = gateway_key();
    let run = "cbor";
    let attrs = |state: &str| map(&[(text("state"), text(state))]);
    let base = |attrs: Vec<u8>| -> Vec<(Vec<u8>, Vec<u8>)> {
        vec![
            (text("v"), uint(1)),
            (text("ts"), uint(1_767_225_600_000_000_000)),
            (text("run"), text(run)),
            (text("seq"), uint(1)),
            (text("kind"), text("task.status")),
            (text("actor"), text("gateway")),
            (text("attrs"), attrs),
        ]
    };
    let canonical = map(&base(attrs("working")));
    let with = |i: usize, v: Vec<u8>| {
        let mut p = base(attrs("working"));
        p[i].1 = v;
        map(&p)
    };
    let mut variants: Vec<(&str, Vec<u8>)> = vec![
        ("canonical", canonical.clone()),
        ("message, grant and payload", {
            let mut p = base(map(&[(text("state"), text("working")), (text("message"), text("é 漢 🦀"))]));
            p.push((text("grant"), text("g-1")));
            p.push((text("payload"), bytes(&[9; 32])));
            map(&p)
        }),
        ("a negative ts", with(1, head(1, 5))),
        ("ts beyond i64", with(1, head(0, u64::MAX))),
        ("ts as the most negative i64", with(1, head(1, i64::MAX as u64))),
        ("ts below i64", with(1, head(1, u64::MAX))),
        ("keys out of order", {
            let mut p = base(attrs("working"));
            p.swap(0, 1);
            map(&p)
        }),
        ("v as a float", with(0, vec![0xfa, 0x3f, 0x80, 0, 0])),
        ("v as a half float", with(0, vec![0xf9, 0x3c, 0x00])),
        ("v tagged", with(0, vec![0xc1, 0x01])),
        ("v = 2", with(0, uint(2))),
        ("v as text", with(0, text("1"))),
        ("v = true", with(0, vec![0xf5])),
        ("seq not shortest", with(3, vec![0x18, 0x01])),
        ("seq negative", with(3, head(1, 0))),
        ("an indefinite attrs map", with(6, [vec![0xbf], text("state"), text("working"), vec![0xff]].concat())),
        ("an indefinite run text", with(2, [vec![0x7f], text("cb"), text("or"), vec![0xff]].concat())),
        ("attrs as an array", with(6, [head(4, 1), text("working")].concat())),
        ("an unknown kind", with(4, text("task.paused"))),
        ("an unknown state", with(6, attrs("sleeping"))),
        ("an unknown attr", with(6, map(&[(text("state"), text("working")), (text("zzzz"), text("x"))]))),
        ("a missing attr", with(6, map(&[]))),
        ("invalid UTF-8 in an attr", with(6, map(&[(text("state"), [head(3, 2), vec![0xc3, 0x28]].concat())]))),
        ("a bad run id", with(2, text("cb or"))),
        ("an actor of 126 bytes", with(5, text(&"a".repeat(126)))),
        ("a map head not shortest", {
            let mut m = canonical.clone();
            m.splice(0..1, [0xb8, 7]);
            m
        }),
        ("a byte after the map", [canonical.clone(), vec![0]].concat()),
        ("a missing actor", {
            let mut p = base(attrs("working"));
            p.remove(5);
            map(&p)
        }),
        ("an unknown key", {
            let mut p = base(attrs("working"));
            p.push((text("zzzzzzzz"), uint(0)));
            map(&p)
        }),
        ("a duplicate key", {
            let mut p = base(attrs("working"));
            p.insert(1, (text("v"), uint(1)));
            map(&p)
        }),
    ];
    // A few of other kinds at seq 1.
    let kind = |k: &str, a: Vec<u8>| {
        let mut p = base(a);
        p[4].1 = text(k);
        map(&p)
    };
    variants.push((
        "pct 101",
        kind(
            "skill.progress",
            map(&[(text("pct"), uint(101)), (text("stage"), text("s")), (text("message"), text("m"))]),
        ),
    ));
    variants.push((
        "pct 100",
        kind(
            "skill.progress",
            map(&[(text("pct"), uint(100)), (text("stage"), text("s")), (text("message"), text("m"))]),
        ),
    ));
    variants.push((
        "score_milli negative",
        kind(
            "eval.scored",
            map(&[(text("rubric"), text("r")), (text("failures"), head(4, 0)), (text("score_milli"), head(1, 999))]),
        ),
    ));
    variants.push((
        "failures holding a number",
        kind(
            "eval.scored",
            map(&[
                (text("rubric"), text("r")),
                (text("failures"), [head(4, 1), uint(1)].concat()),
                (text("score_milli"), uint(1)),
            ]),
        ),
    ));
    variants.push((
        "a hash of 31 bytes",
        kind(
            "workspace.read",
            map(&[(text("hash"), bytes(&[1; 31])), (text("path"), text("p")), (text("bytes"), uint(1))]),
        ),
    ));

    for (name, variant) in variants {
        let mut entries = vec![identity(&key)];
        let mut covered =
            vec![entry(run, 0, "gateway", Event::TaskStatus { state: "submitted".into(), message: None })];
        covered.push(variant);
        let seal = ledger_core::seal::seal_event(h, run, &covered, RunStatus::Completed, &key);
        covered.push(entry(run, 2, "gateway", seal));
        entries.extend(covered);
        let (r, log) = hand_made(h, &entries, run, &[1, 2, 3], 0);
        cases.add(&format!("CBOR: {name}"), &log, None, &r.to_json());
    }
}

fn witness(i: u8) -> NamedKey {
    NamedKey::from_seed(&format!("witness.example/w{i}"), [40 + i; 32]).unwrap()
}

fn policy_cases(cases: &mut Cases) {
    let receipt = Receipt::from_json(&std::fs::read(repo("testdata/golden/receipt-1.1-sha256.json")).unwrap()).unwrap();
    let log: LogDescriptor =
        serde_json::from_slice(&std::fs::read(repo("testdata/golden/log-sha256.json")).unwrap()).unwrap();
    let mut text = String::from("# three test witnesses\n");
    for i in 1..=3 {
        text.push_str(&format!("witness w{i} {}\n", WitnessKey::of(&witness(i))));
    }
    text.push_str("group two-of-three 2 w1 w2 w3\nquorum two-of-three\n");
    let policy = Arc::new(Policy::parse(text.as_bytes()).unwrap());
    let note_text = Note::parse(&receipt.checkpoint).unwrap().text().to_string();
    let line = |i: u8, at: u64| Cosignature::sign(&note_text, &witness(i), at).unwrap().to_line();
    let with = |lines: &[String]| {
        let mut r = receipt.clone();
        r.checkpoint.push_str(&lines.concat());
        r.to_json()
    };
    let p = Some((text.as_str(), &policy));
    cases.add("policy: cosigned by w1 and w2", &log, p, &with(&[line(1, COSIGNED_AT), line(2, COSIGNED_AT)]));
    cases.add(
        "policy: cosigned by all three",
        &log,
        p,
        &with(&[line(3, COSIGNED_AT), line(1, COSIGNED_AT), line(2, COSIGNED_AT)]),
    );
    cases.add("policy: cosigned by w2 only", &log, p, &with(&[line(2, COSIGNED_AT)]));
    cases.add("policy: no cosignature", &log, p, &with(&[]));
    let mut bad = line(1, COSIGNED_AT);
    let at = bad.len() - 10;
    bad.replace_range(at..at + 1, if &bad[at..at + 1] == "A" { "B" } else { "A" });
    cases.add("policy: w1's cosignature tampered, w2 good", &log, p, &with(&[bad, line(2, COSIGNED_AT)]));
    cases.add("policy: w1 dated in the future, w2 good", &log, p, &with(&[line(1, FUTURE), line(2, COSIGNED_AT)]));
    // A cosignature does not rescue a bad receipt: step 2 still fails after the quorum passed.
    let mut r = receipt.clone();
    r.checkpoint.push_str(&(line(1, COSIGNED_AT) + &line(3, COSIGNED_AT)));
    r.entries[0].proof[0][0] ^= 1;
    cases.add("policy: quorum met, a proof hash changed", &log, p, &r.to_json());
}

/// A pack with a payload file, a named payload that is absent, an erased one, and runs cut by its
/// start: its files are written to (or checked against) `testdata/tamper/pack-payloads/`, and its
/// report and the verdicts on a changed payload byte and a payload the manifest does not list
/// go into the corpus.
fn payload_pack(update: bool) -> Value {
    use ledger_core::pack::{self, Manifest};
    let h = TreeHash::Blake3;
    let cfg = LogConfig { hash: h, checkpoint_interval: Duration::from_secs(3600), ..LogConfig::default() };
    let log = Log::open(Arc::new(MemStore::new()) as Arc<dyn Store>, log_key(), cfg).unwrap();
    let key = gateway_key();
    log.append(vec![identity(&key)]).unwrap();
    for r in 0..3 {
        log.append(sealed_run(h, &format!("pay-{r}"), &key, r)).unwrap();
    }
    // The input of run pay-1 (run_events names blake3 of the run id as the input) is erased.
    let erased = *blake3::hash(b"pay-1").as_bytes();
    let run = ledger_core::RunId::erasure(&erased);
    let erasure = Event::PayloadErased { hash: erased, reason: "gdpr art. 17".into(), approver: "dpo".into() };
    log.append(vec![entry(run.as_str(), 0, "gateway", erasure)]).unwrap();
    log.sign_checkpoint().unwrap();
    let n = log.checkpoint().checkpoint.size;
    let desc = log.descriptor().clone();

    // From index 3: run pay-0 is cut by the start (partial), and the signer's key lies before it.
    let mut files = pack::build(&log, 3, n, "2026-01-01T00:00:00Z".into()).unwrap();
    let included = *blake3::hash(b"pay-2").as_bytes();
    let mut manifest: Manifest = serde_json::from_slice(&files[0].1).unwrap();
    manifest.add_payload(&included);
    files[0].1 = serde_json::to_vec_pretty(&manifest).unwrap();
    files.push((pack::payload_file(&included), b"pay-2".to_vec()));

    let dir = repo("testdata/tamper/pack-payloads");
    for (name, bytes) in &files {
        let path = dir.join(name);
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, bytes).unwrap();
        } else {
            let stored = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(stored == *bytes, "{} drifted (UPDATE_GOLDEN=1 rewrites it)", path.display());
        }
    }
    let verify = |files: &[(String, Vec<u8>)]| {
        let mut v = PackVerifier::new(&desc, &files[0].1, &files[1].1, &files[2].1)?;
        v.entries_bin(&files[3].1)?;
        for (name, bytes) in &files[4..] {
            v.other_file(name, bytes)?;
        }
        v.finish()
    };
    let report = verify(&files).unwrap();
    let mut changed = files.clone();
    changed[4].1[0] ^= 1;
    let changed = match verify(&changed) {
        Err(Error::PackInvalid { file, index: None, .. }) => file,
        other => panic!("{other:?}"),
    };
    json!({"dir": "tamper/pack-payloads", "log": desc, "report": report, "payload_byte_changed": changed})
}

fn corpus() -> Value {
    let mut receipts = Vec::new();
    for (receipt, log) in [
        ("golden/receipt-blake3.json", "golden/log-blake3.json"),
        ("golden/receipt-sha256.json", "golden/log-sha256.json"),
        ("golden/receipt-1.1-blake3.json", "golden/log-blake3.json"),
    ] {
        let bytes = std::fs::read(repo(&format!("testdata/{receipt}"))).unwrap();
        let desc: LogDescriptor =
            serde_json::from_slice(&std::fs::read(repo(&format!("testdata/{log}"))).unwrap()).unwrap();
        let (judged, messages) = flips(&bytes, &[0x01, 0x40], |t| receipt_verdict(&desc, None, t));
        receipts.push(json!({"receipt": receipt, "log": log, "flips": judged, "messages": messages}));
    }

    let mut packs = Vec::new();
    let dir = "verify/pack-valid";
    let read = |name: &str| std::fs::read(repo(&format!("testdata/{dir}/{name}"))).unwrap();
    let desc: LogDescriptor =
        serde_json::from_slice(&std::fs::read(repo("testdata/verify/log.json")).unwrap()).unwrap();
    let (manifest, checkpoint, proof, entries) =
        (read("manifest.json"), read("checkpoint"), read("proof.json"), read("entries.bin"));
    assert_eq!(pack_verdict(&desc, &manifest, &checkpoint, &proof, &entries).0, "valid");
    let (judged, messages) = flips(&entries, &[0x01, 0x80], |t| pack_verdict(&desc, &manifest, &checkpoint, &proof, t));
    packs.push(
        json!({"pack": dir, "log": "verify/log.json", "file": "entries.bin", "flips": judged, "messages": messages}),
    );
    let (judged, messages) = flips(&manifest, &[0x01, 0x40], |t| pack_verdict(&desc, t, &checkpoint, &proof, &entries));
    packs.push(
        json!({"pack": dir, "log": "verify/log.json", "file": "manifest.json", "flips": judged, "messages": messages}),
    );
    let (judged, messages) = flips(&checkpoint, &[0x01], |t| pack_verdict(&desc, &manifest, t, &proof, &entries));
    packs.push(
        json!({"pack": dir, "log": "verify/log.json", "file": "checkpoint", "flips": judged, "messages": messages}),
    );
    let (judged, messages) = flips(&proof, &[0x01], |t| pack_verdict(&desc, &manifest, &checkpoint, t, &entries));
    packs.push(
        json!({"pack": dir, "log": "verify/log.json", "file": "proof.json", "flips": judged, "messages": messages}),
    );

    let mut cases = Cases { list: Vec::new() };
    structured_cases(&mut cases);
    hand_made_cases(&mut cases);
    cbor_cases(&mut cases);
    policy_cases(&mut cases);

    let payloads = payload_pack(std::env::var_os("UPDATE_GOLDEN").is_some());

    json!({
        "about": "ledger-core's verdicts on tampered receipts and packs, for the dashboard's verifier. Made by ledger-core/tests/tamper_corpus.rs (UPDATE_GOLDEN=1 rewrites it). Receipt verdicts: valid, malformed (could not be checked), or step <n>[ (witness quorum)][ at <log index>]; pack verdicts: valid, malformed, or <file>[ at <log index>]. flips[bit][pos] is the verdict with that bit of byte pos flipped, messages[bit][pos] ledger-core's message for it (empty when valid or not checked).",
        "receipts": receipts,
        "packs": packs,
        "cases": cases.list,
        "payload_pack": payloads,
    })
}

#[test]
fn tamper_corpus_matches_ledger_core() {
    let corpus = corpus();
    // Some of every kind of verdict, so the corpus keeps testing what it claims to.
    let text = corpus.to_string();
    for needle in [
        "\"malformed\"",
        "step 1\"",
        "step 1 (witness quorum)",
        "step 2 at",
        "step 3 at",
        "step 4 at",
        "step 5 at",
        "entries.bin at",
        "\"valid\"",
    ] {
        assert!(text.contains(needle), "the corpus has no {needle} verdict");
    }
    let path = repo("testdata/tamper/corpus.json");
    let rendered = serde_json::to_string(&corpus).unwrap() + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &rendered).unwrap();
        return;
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(stored == rendered, "{} drifted from ledger-core's verdicts (UPDATE_GOLDEN=1 rewrites it)", path.display());
}
