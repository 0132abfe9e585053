//! A witnessed log (SPEC §8): what it signs is handed to the cosigner and served only once
//! published with its cosignatures; the published note is what receipts carry and what a
//! reopened log serves; a note the log did not sign, or of another tree, is refused.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{gateway_key, identity, log_key, quiet_config, sealed_run};
use ledger_core::checkpoint::Note;
use ledger_core::store::MemStore;
use ledger_core::{Checkpoint, Cosignature, Error, Log, NamedKey, SignedCheckpoint, Store, TreeHash, Witnessing};

fn witness() -> NamedKey {
    NamedKey::from_seed("witness.example/w1", [41; 32]).unwrap()
}

/// A note with one cosignature of `witness()` added.
fn cosign(note: &str) -> String {
    let text = Note::parse(note).unwrap().text().to_string();
    format!("{note}{}", Cosignature::sign(&text, &witness(), 1_700_000_000).unwrap().to_line())
}

/// Witnessing that records what the log signed and accepts a stored note when `accept` says so.
fn witnessing(accept: bool) -> (Witnessing, Arc<Mutex<Vec<Arc<SignedCheckpoint>>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let w = Witnessing {
        accepts: Arc::new(move |_note: &str, _key: &ledger_core::VerifierKey| accept),
        signed: Arc::new(move |cp| s.lock().unwrap().push(cp)),
    };
    (w, seen)
}

fn open(store: &Arc<MemStore>, w: Witnessing) -> Log {
    let cfg = ledger_core::LogConfig { hash: TreeHash::Sha256, witnessing: Some(w), ..quiet_config() };
    Log::open(store.clone() as Arc<dyn Store>, log_key(), cfg).unwrap()
}

fn fill(log: &Log) {
    log.append(vec![identity(&gateway_key())]).unwrap();
    log.append(sealed_run(TreeHash::Sha256, "r1", &gateway_key(), 2)).unwrap();
}

#[test]
fn signed_checkpoints_are_served_only_once_published() {
    let store = Arc::new(MemStore::new());
    let (w, seen) = witnessing(true);
    let log = open(&store, w);
    // The empty tree's checkpoint is signed at open and handed over, not served.
    assert_eq!(seen.lock().unwrap().len(), 1);
    assert!(log.checkpoint().note.is_empty());

    fill(&log);
    let signed = log.sign_checkpoint().unwrap();
    assert_eq!(signed.checkpoint.size, log.durable_size());
    assert_eq!(seen.lock().unwrap().last().unwrap().note, signed.note);
    assert_eq!(log.signed_checkpoint().note, signed.note);
    // Not served, not stored: receipts wait for a published checkpoint.
    assert_eq!(log.checkpoint().checkpoint.size, 0);
    assert!(store.latest_checkpoint().unwrap().is_none());
    assert!(matches!(log.receipt("r1"), Err(Error::NotYetCheckpointed { .. })));
    assert_eq!(log.wait_for_checkpoint(1, Duration::from_millis(20)).unwrap().checkpoint.size, 0);

    let cosigned = cosign(&signed.note);
    assert!(log.publish(&cosigned).unwrap());
    assert_eq!(log.checkpoint().note, cosigned);
    assert_eq!(store.latest_checkpoint().unwrap().unwrap(), (signed.checkpoint.size, cosigned.clone()));
    // Receipts carry the cosigned note.
    assert_eq!(log.receipt("r1").unwrap().checkpoint, cosigned);
    // Publishing it again, or anything smaller, changes nothing.
    assert!(!log.publish(&cosigned).unwrap());
    assert!(!log.publish(&seen.lock().unwrap()[0].note).unwrap());
    assert_eq!(log.checkpoint().note, cosigned);
    log.close().unwrap();
}

#[test]
fn a_note_the_log_did_not_sign_or_of_another_tree_is_refused() {
    let store = Arc::new(MemStore::new());
    let (w, _) = witnessing(true);
    let log = open(&store, w);
    fill(&log);
    let size = log.durable_size();

    // Signed by another key.
    let other = NamedKey::from_seed(log_key().name(), [99; 32]).unwrap();
    let forged =
        Checkpoint { origin: log_key().name().into(), size, root: log.root_at(size).unwrap(), extensions: vec![] };
    assert!(log.publish(&forged.sign(&other)).is_err());
    // Beyond the durable tree.
    let beyond = Checkpoint { size: size + 1, ..forged.clone() };
    assert!(matches!(log.publish(&beyond.sign(&log_key())), Err(Error::OutOfRange { .. })));
    // Our key over another root: a key that signs some other tree too.
    let fork = Checkpoint { root: [7; 32], ..forged };
    let e = log.publish(&fork.sign(&log_key())).unwrap_err();
    assert!(matches!(e, Error::Corrupt(_)), "{e}");
    assert_eq!(log.checkpoint().checkpoint.size, 0);
    assert!(store.latest_checkpoint().unwrap().is_none());
    log.close().unwrap();
}

#[test]
fn a_reopened_log_serves_the_published_note_if_its_policy_still_accepts_it() {
    let store = Arc::new(MemStore::new());
    let (w, _) = witnessing(true);
    let log = open(&store, w);
    fill(&log);
    let cosigned = cosign(&log.sign_checkpoint().unwrap().note);
    log.publish(&cosigned).unwrap();
    // More entries, signed at close but never published.
    log.append(sealed_run(TreeHash::Sha256, "r2", &gateway_key(), 1)).unwrap();
    log.close().unwrap();
    drop(log);

    let (w, seen) = witnessing(true);
    let log = open(&store, w);
    assert_eq!(log.checkpoint().note, cosigned);
    // The durable tree beyond it is signed again at open and handed to the cosigner.
    assert_eq!(seen.lock().unwrap().last().unwrap().checkpoint.size, log.durable_size());
    assert!(log.durable_size() > log.checkpoint().checkpoint.size);
    log.close().unwrap();
    drop(log);

    // A policy that no longer accepts it: nothing is served until the next publication.
    let (w, seen) = witnessing(false);
    let log = open(&store, w);
    assert_eq!(log.checkpoint().checkpoint.size, 0);
    let newest = seen.lock().unwrap().last().unwrap().clone();
    assert!(log.publish(&cosign(&newest.note)).unwrap());
    assert_eq!(log.checkpoint().checkpoint.size, log.durable_size());
    log.close().unwrap();
}

#[test]
fn a_witnessed_log_never_published_reopens_and_an_unwitnessed_one_then_serves_at_once() {
    let store = Arc::new(MemStore::new());
    let (w, _) = witnessing(true);
    let log = open(&store, w);
    fill(&log);
    log.close().unwrap();
    drop(log);
    assert!(store.latest_checkpoint().unwrap().is_none());

    let (w, _) = witnessing(true);
    let log = open(&store, w);
    assert_eq!(log.checkpoint().checkpoint.size, 0);
    log.close().unwrap();
    drop(log);

    // Witnessing switched off: the log signs and serves its tree at open.
    let cfg = ledger_core::LogConfig { hash: TreeHash::Sha256, ..quiet_config() };
    let log = Log::open(store.clone() as Arc<dyn Store>, log_key(), cfg).unwrap();
    assert_eq!(log.checkpoint().checkpoint.size, log.durable_size());
    assert!(log.receipt("r1").is_ok());
    log.close().unwrap();
}
