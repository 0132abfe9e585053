//! Compliance packs (SPEC §6) streamed as tar with bounded memory: the range check and the
//! blocking task around `ledger_core::pack::write_tar`, which the gateway's embedded ledger
//! shares.
//!
//! The tar holds `manifest.json`, `checkpoint`, `proof.json`, then `entries.bin`, in that order,
//! so a verifier can stream it: it knows the range and the left compact range before the first
//! entry. The manifest carries the BLAKE3 of `entries.bin`, so the entries are read twice: once
//! to hash and measure them, once to send them. Memory stays at one chunk per pass whatever the
//! range; entries below a checkpoint never change, so both passes read the same bytes.
//!
//! Asked for payloads, the first pass also gathers the hashes the entries name
//! (`pack::named_payloads`); those the store holds are listed in the manifest (a payload file's
//! hash is its name, so nothing is read for it) and follow `entries.bin` as `payloads/<hex>`,
//! streamed chunk by chunk. A payload erased between the manifest and its turn ends the stream
//! with an error: the client then holds a pack that does not verify, never a wrong one.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use ledger_core::pack;
use ledger_core::{Log, PayloadStore, SignedCheckpoint};
use tokio::sync::mpsc;

use crate::error::{ApiError, ErrorCode};

/// Checks a requested range against the checkpoint the pack will be proven against.
pub fn check_range(cp: &SignedCheckpoint, start: Option<u64>, end: Option<u64>) -> Result<(u64, u64), ApiError> {
    let n = cp.checkpoint.size;
    let (start, end) = (start.unwrap_or(0), end.unwrap_or(n));
    if start > end || end > n {
        return Err(ApiError::new(
            ErrorCode::OutOfRange,
            format!("range [{start}, {end}) must satisfy start <= end <= {n}, the newest checkpoint's size"),
        ));
    }
    Ok((start, end))
}

/// Streams the pack of `[start, end)` against `cp` into `tx` (`ledger_core::pack::write_tar`).
/// Runs on a blocking thread; stops quietly when the receiver is gone (the client went away).
pub fn write_pack(
    log: Arc<Log>,
    payloads: Option<PayloadStore>,
    cp: Arc<SignedCheckpoint>,
    start: u64,
    end: u64,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    let now = SystemTime::now();
    let created = humantime::format_rfc3339_seconds(now).to_string();
    let mtime = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut send = |chunk: Bytes| tx.blocking_send(Ok(chunk)).map_err(|_| ledger_core::Error::Closed);
    let sent = pack::write_tar(
        &log,
        payloads.as_ref(),
        &cp.note,
        cp.checkpoint.size,
        (start, end),
        (created, mtime),
        &mut send,
    );
    if let Err(e) = sent {
        let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
    }
}
