//! Pack verification checks seal signatures in batches on several threads. Whatever the thread
//! count and wherever the batches fall, the verdict and the error (the first failure in index
//! order) must be what one-by-one checking gives.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use ledger_core::pack::{self, PackVerifier};
use ledger_core::{Entry, Error, Event, Log, LogConfig, MemStore, Store};

/// Runs of five entries (accepted, working, artifact, completed, seal) after one identity entry.
const RUNS: u64 = 1500;

fn seal_index(run: u64) -> u64 {
    1 + 5 * run + 4
}

fn first_index(run: u64) -> u64 {
    1 + 5 * run
}

struct Pack {
    log: Log,
    manifest: Vec<u8>,
    checkpoint: Vec<u8>,
    proof: Vec<u8>,
    entries: Vec<Vec<u8>>,
}

fn pack() -> Pack {
    let cfg = LogConfig { checkpoint_interval: Duration::from_secs(3600), ..LogConfig::default() };
    let log = Log::open(Arc::new(MemStore::new()) as Arc<dyn Store>, log_key(), cfg).unwrap();
    let key = gateway_key();
    log.append(vec![identity(&key)]).unwrap();
    let mut batch = Vec::new();
    for r in 0..RUNS {
        batch.extend(sealed_run(log.hash(), &format!("run-{r}"), &key, 0));
        if batch.len() >= 1000 {
            log.append(std::mem::take(&mut batch)).unwrap();
        }
    }
    log.append(batch).unwrap();
    log.sign_checkpoint().unwrap();
    let size = log.checkpoint().checkpoint.size;
    assert_eq!(size, 1 + 5 * RUNS);
    let files = pack::build(&log, 0, size, "2026-01-01T00:00:00Z".into()).unwrap();
    let file = |name: &str| files.iter().find(|(n, _)| n == name).unwrap().1.clone();
    let bin = file(pack::ENTRIES);
    let mut entries = Vec::new();
    let mut at = 0;
    while at < bin.len() {
        let n = u32::from_be_bytes(bin[at..at + 4].try_into().unwrap()) as usize;
        entries.push(bin[at + 4..at + 4 + n].to_vec());
        at += 4 + n;
    }
    Pack { manifest: file(pack::MANIFEST), checkpoint: file(pack::CHECKPOINT), proof: file(pack::PROOF), entries, log }
}

/// The seal at `index` with one bit of its signature flipped (still canonical CBOR).
fn bad_signature(seal: &[u8]) -> Vec<u8> {
    let mut e = Entry::decode(seal).unwrap();
    let Event::ReceiptSealed { sig, .. } = &mut e.event else { panic!("not a seal") };
    sig[10] ^= 0x01;
    e.encode()
}

/// `entries` framed as `entries.bin`.
fn entries_bin(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut bin = Vec::new();
    for e in entries {
        bin.extend_from_slice(&pack::frame_header(e));
        bin.extend_from_slice(e);
    }
    bin
}

/// Verifies `entries` as the pack's `entries.bin` in chunks of `chunk` bytes on `threads` threads,
/// queuing `batch` seals per thread.
fn verify(
    p: &Pack,
    entries: &[Vec<u8>],
    threads: usize,
    batch: usize,
    chunk: usize,
) -> Result<u64, (Option<u64>, String)> {
    let bin = entries_bin(entries);
    let fail = |e: Error| match e {
        Error::PackInvalid { index, .. } => (index, e.to_string()),
        e => (None, e.to_string()),
    };
    let mut v = PackVerifier::new(p.log.descriptor(), &p.manifest, &p.checkpoint, &p.proof)
        .map_err(fail)?
        .threads(threads)
        .seal_batch(batch);
    for c in bin.chunks(chunk) {
        v.entries_bin(c).map_err(fail)?;
    }
    v.finish().map(|r| r.seals_verified).map_err(fail)
}

/// The verdict of one-by-one checking (every seal checked as its entry arrives), asserted equal
/// for batched checking on several threads and chunkings.
fn verdicts(p: &Pack, entries: &[Vec<u8>]) -> Result<u64, (Option<u64>, String)> {
    let one_by_one = verify(p, entries, 1, 1, usize::MAX);
    for (threads, batch, chunk) in [(1, 512, 1 << 20), (2, 512, 1 << 20), (3, 100, 4096), (8, 512, 333)] {
        assert_eq!(
            verify(p, entries, threads, batch, chunk),
            one_by_one,
            "{threads} threads, {batch} seals each, chunks of {chunk} bytes"
        );
    }
    one_by_one
}

#[test]
fn batched_seal_checks_report_what_one_by_one_checking_reports() {
    let p = pack();
    assert_eq!(verdicts(&p, &p.entries), Ok(RUNS), "every seal verified");

    // One bad signature, in the middle of a batch.
    let mut one_bad = p.entries.clone();
    one_bad[seal_index(700) as usize] = bad_signature(&p.entries[seal_index(700) as usize]);
    let (index, msg) = verdicts(&p, &one_bad).unwrap_err();
    assert_eq!(index, Some(seal_index(700)), "{msg}");
    assert!(msg.contains("signature does not verify"), "{msg}");

    // Two bad signatures in different batches: the first is reported.
    let mut two_bad = one_bad.clone();
    two_bad[seal_index(10) as usize] = bad_signature(&p.entries[seal_index(10) as usize]);
    assert_eq!(verdicts(&p, &two_bad).unwrap_err().0, Some(seal_index(10)));

    // A bad signature, then a malformed entry later: the signature is first in index order,
    // although its batch is still queued when the malformed entry is read.
    let mut then_malformed = one_bad.clone();
    then_malformed[first_index(1200) as usize].push(0);
    let (index, msg) = verdicts(&p, &then_malformed).unwrap_err();
    assert_eq!(index, Some(seal_index(700)), "{msg}");

    // A malformed entry before the bad signature is reported instead.
    let mut malformed_first = one_bad.clone();
    malformed_first[first_index(300) as usize].push(0);
    let (index, msg) = verdicts(&p, &malformed_first).unwrap_err();
    assert_eq!(index, Some(first_index(300)), "{msg}");
    assert!(msg.contains("trailing"), "{msg}");

    // A pack cut short after a bad signature: the signature, not the truncation.
    let cut = &one_bad[..first_index(900) as usize];
    assert_eq!(verdicts(&p, cut).unwrap_err().0, Some(seal_index(700)));

    // A caller's own error while entries.bin is still arriving (a read error, say) comes after
    // check_queued, which reports the bad seal already in; and once it failed, it keeps failing.
    let mut v = PackVerifier::new(p.log.descriptor(), &p.manifest, &p.checkpoint, &p.proof).unwrap().threads(2);
    v.entries_bin(&entries_bin(&one_bad[..first_index(800) as usize])).expect("the bad seal is still queued");
    let queued = v.check_queued().unwrap_err();
    assert!(matches!(queued, Error::PackInvalid { index: Some(i), .. } if i == seal_index(700)), "{queued}");
    assert_eq!(v.check_queued().unwrap_err().to_string(), queued.to_string());
    assert_eq!(v.finish().unwrap_err().to_string(), queued.to_string());
}
