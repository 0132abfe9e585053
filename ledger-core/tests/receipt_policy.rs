//! Receipt verification under a trust policy (SPEC §8): the golden receipt's checkpoint,
//! cosigned by three test witnesses, against a 2-of-3 policy. Step 1 then also requires the
//! quorum; a failure is the step `witness quorum` naming who did and did not cosign.

use std::path::PathBuf;
use std::sync::Arc;

use ledger_core::checkpoint::Note;
use ledger_core::{
    Cosignature, Error, LogDescriptor, NamedKey, Policy, Receipt, ReceiptStep, ReceiptVerifier, WitnessKey,
};

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn golden() -> (Receipt, LogDescriptor) {
    let receipt = Receipt::from_json(&std::fs::read(repo("testdata/golden/receipt-1.1-sha256.json")).unwrap()).unwrap();
    let log = serde_json::from_slice(&std::fs::read(repo("testdata/golden/log-sha256.json")).unwrap()).unwrap();
    (receipt, log)
}

fn witness(i: u8) -> NamedKey {
    NamedKey::from_seed(&format!("witness.example/w{i}"), [40 + i; 32]).unwrap()
}

/// A minute ago: a timestamp every verifier's clock accepts.
fn recently() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() - 60
}

/// `w1`, `w2`, `w3` and a 2-of-3 quorum, with `extra` lines first.
fn policy(extra: &str) -> Arc<Policy> {
    let mut text = format!("# three test witnesses\n{extra}");
    for i in 1..=3 {
        text.push_str(&format!("witness w{i} {}\n", WitnessKey::of(&witness(i))));
    }
    text.push_str("group two-of-three 2 w1 w2 w3\nquorum two-of-three\n");
    Arc::new(Policy::parse(text.as_bytes()).unwrap())
}

fn cosignature(note: &str, i: u8, timestamp: u64) -> Cosignature {
    let text = Note::parse(note).unwrap().text().to_string();
    Cosignature::sign(&text, &witness(i), timestamp).unwrap()
}

/// The receipt with its checkpoint cosigned by the witnesses `who`.
fn cosigned(r: &Receipt, who: &[u8]) -> Receipt {
    let mut r = r.clone();
    let lines: String = who.iter().map(|&i| cosignature(&r.checkpoint, i, recently()).to_line()).collect();
    r.checkpoint.push_str(&lines);
    r
}

fn quorum_failure(v: &mut ReceiptVerifier, r: &Receipt) -> String {
    let e = v.verify(r).unwrap_err();
    assert_eq!(e.receipt_step(), Some(ReceiptStep::WitnessQuorum), "{e}");
    let msg = e.to_string();
    assert!(msg.starts_with("receipt step 1 (witness quorum) failed"), "{msg}");
    msg
}

#[test]
fn two_or_three_cosignatures_meet_a_two_of_three_quorum() {
    let (r, log) = golden();
    let mut v = ReceiptVerifier::with_policy(log, policy("")).unwrap();
    for who in [&[1, 2][..], &[2, 3], &[3, 1], &[1, 2, 3]] {
        let receipt = cosigned(&r, who);
        assert_eq!(v.verify(&receipt).unwrap().checkpoint.size, 13);
    }
}

#[test]
fn one_cosignature_fails_naming_the_missing_witnesses() {
    let (r, log) = golden();
    let mut v = ReceiptVerifier::with_policy(log, policy("")).unwrap();
    let msg = quorum_failure(&mut v, &cosigned(&r, &[2]));
    assert!(msg.contains("cosigned by [w2], not by [w1 (no cosignature), w3 (no cosignature)]"), "{msg}");
    let msg = quorum_failure(&mut v, &r);
    assert!(msg.contains("cosigned by [], not by [w1 (no cosignature), w2 (no cosignature), w3"), "{msg}");
}

#[test]
fn a_tampered_cosignature_does_not_count() {
    let (r, log) = golden();
    let mut v = ReceiptVerifier::with_policy(log, policy("")).unwrap();
    let mut bad = cosignature(&r.checkpoint, 3, recently());
    bad.signature[0] ^= 1;
    let mut tampered = cosigned(&r, &[1]);
    tampered.checkpoint.push_str(&bad.to_line());
    let msg = quorum_failure(&mut v, &tampered);
    assert!(msg.contains("cosigned by [w1], not by [w2 (no cosignature), w3 (bad signature)]"), "{msg}");

    // A cosignature of another checkpoint's text does not verify either.
    let other = "test.a2a-ledger.example/log\n12\nLLPOoz/Zf2/W8TlMW750ZJZC0M5sK1SwefMLVoDXXJk=\n\n— x AAAAAAAA\n";
    let mut moved = cosigned(&r, &[1]);
    moved.checkpoint.push_str(&cosignature(other, 2, recently()).to_line());
    let msg = quorum_failure(&mut v, &moved);
    assert!(msg.contains("w2 (bad signature)"), "{msg}");
}

#[test]
fn a_cosignature_from_the_future_does_not_count() {
    let (r, log) = golden();
    let mut v = ReceiptVerifier::with_policy(log, policy("")).unwrap();
    let mut late = cosigned(&r, &[1]);
    late.checkpoint.push_str(&cosignature(&r.checkpoint, 2, recently() + 3600).to_line());
    let msg = quorum_failure(&mut v, &late);
    assert!(msg.contains("w2 (timestamp") && msg.contains("is in the future)"), "{msg}");
}

#[test]
fn a_failed_quorum_is_not_cached_and_a_met_one_does_not_excuse_another_note() {
    let (r, log) = golden();
    let mut v = ReceiptVerifier::with_policy(log, policy("")).unwrap();
    let one = cosigned(&r, &[1]);
    quorum_failure(&mut v, &one);
    v.verify(&cosigned(&r, &[1, 3])).unwrap();
    quorum_failure(&mut v, &one);
}

#[test]
fn without_a_policy_cosignatures_change_nothing() {
    let (r, log) = golden();
    let mut v = ReceiptVerifier::new(log).unwrap();
    v.verify(&r).unwrap();
    v.verify(&cosigned(&r, &[2])).unwrap();
    let mut bad = cosignature(&r.checkpoint, 3, recently());
    bad.signature[0] ^= 1;
    let mut tampered = r.clone();
    tampered.checkpoint.push_str(&bad.to_line());
    v.verify(&tampered).unwrap();
}

#[test]
fn the_policy_log_lines_must_name_the_trusted_key() {
    let (r, log) = golden();
    let ok = ReceiptVerifier::with_policy(log.clone(), policy(&format!("log {}\n", log.vkey)));
    ok.unwrap().verify(&cosigned(&r, &[1, 2])).unwrap();

    let other = NamedKey::from_seed("test.a2a-ledger.example/log", [7; 32]).unwrap().verifier();
    match ReceiptVerifier::with_policy(log.clone(), policy(&format!("log {other}\n"))) {
        Err(Error::PolicyLogMismatch { listed, trusted }) => {
            assert_eq!(listed, vec![other.to_string()]);
            assert_eq!(trusted, log.vkey);
        }
        other => panic!("{other:?}"),
    }
    // Listing the trusted key beside a rotated one agrees.
    let both = policy(&format!("log {other}\nlog {}\n", log.vkey));
    ReceiptVerifier::with_policy(log, both).unwrap().verify(&cosigned(&r, &[2, 3])).unwrap();
}
