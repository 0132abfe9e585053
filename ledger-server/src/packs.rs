//! Compliance packs (SPEC §6) streamed as tar with bounded memory.
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
use ledger_core::pack::{self, Manifest};
use ledger_core::{Entry, Log, PayloadState, PayloadStore, SignedCheckpoint};
use tokio::sync::mpsc;

use crate::error::{ApiError, ErrorCode};

/// Bytes per chunk sent to the client.
const CHUNK: usize = 256 << 10;

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

/// Streams the pack of `[start, end)` against `cp` into `tx`. Runs on a blocking thread; stops
/// quietly when the receiver is gone (the client went away).
pub fn write_pack(
    log: Arc<Log>,
    payloads: Option<PayloadStore>,
    cp: Arc<SignedCheckpoint>,
    start: u64,
    end: u64,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    if let Err(e) = write_pack_inner(&log, payloads.as_ref(), &cp, start, end, &tx) {
        let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
    }
}

fn write_pack_inner(
    log: &Log,
    payloads: Option<&PayloadStore>,
    cp: &SignedCheckpoint,
    start: u64,
    end: u64,
    tx: &mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> ledger_core::Result<()> {
    let n = cp.checkpoint.size;
    // Pass 1: size and hash of entries.bin.
    let mut hasher = blake3::Hasher::new();
    let mut entries_len = 0u64;
    let mut named = std::collections::BTreeSet::new();
    log.scan(start, end, &mut |_, e| {
        hasher.update(&pack::frame_header(e));
        hasher.update(e);
        entries_len += 4 + e.len() as u64;
        if payloads.is_some() {
            named.extend(pack::named_payloads(&Entry::check(e)?));
        }
        Ok(())
    })?;
    // The payloads to include, with their lengths (missing and erased ones are left out).
    let mut included = Vec::new();
    if let Some(p) = payloads {
        for h in named {
            if let PayloadState::Present { len } = p.state(&h)? {
                included.push((h, len));
            }
        }
    }
    let proof_json = serde_json::to_vec(&pack::proof(log, start, end, n)?).expect("serialisable");
    let checkpoint = cp.note.as_bytes();
    let now = SystemTime::now();
    let created = humantime::format_rfc3339_seconds(now).to_string();
    let mut manifest =
        Manifest::new(log.descriptor(), (start, end, n), created, checkpoint, &proof_json, &hasher.finalize());
    for (h, _) in &included {
        manifest.add_payload(h);
    }
    let manifest_json = serde_json::to_vec_pretty(&manifest).expect("serialisable");
    let mtime = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());

    let mut out = Out { buf: Vec::with_capacity(CHUNK + 512), tx };
    for (name, body) in
        [(pack::MANIFEST, &manifest_json[..]), (pack::CHECKPOINT, checkpoint), (pack::PROOF, &proof_json[..])]
    {
        out.header(name, body.len() as u64, mtime)?;
        out.put(body)?;
        out.pad(body.len() as u64)?;
    }
    // Pass 2: entries.bin itself.
    out.header(pack::ENTRIES, entries_len, mtime)?;
    log.scan(start, end, &mut |_, e| {
        out.put(&pack::frame_header(e))?;
        out.put(e)
    })?;
    out.pad(entries_len)?;
    if let Some(p) = payloads {
        for (h, len) in &included {
            out.header(&pack::payload_file(h), *len, mtime)?;
            let mut sent = 0u64;
            for chunk in p.read(h)? {
                let chunk = chunk?;
                sent += chunk.len() as u64;
                out.put(&chunk)?;
            }
            if sent != *len {
                return Err(ledger_core::Error::Corrupt(format!(
                    "payload {} held {sent} bytes, {len} when the manifest was made",
                    hex::encode(h)
                )));
            }
            out.pad(*len)?;
        }
    }
    out.put(&[0u8; 1024])?; // end-of-archive marker
    out.flush()
}

/// The tar byte stream with its chunk buffer.
struct Out<'a> {
    buf: Vec<u8>,
    tx: &'a mpsc::Sender<Result<Bytes, std::io::Error>>,
}

impl Out<'_> {
    fn header(&mut self, name: &str, size: u64, mtime: u64) -> ledger_core::Result<()> {
        let mut h = tar::Header::new_ustar();
        h.set_path(name).map_err(|e| ledger_core::Error::Storage(format!("tar header for {name}: {e}")))?;
        h.set_size(size);
        h.set_mode(0o644);
        h.set_mtime(mtime);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        self.put(h.as_bytes())
    }

    fn pad(&mut self, len: u64) -> ledger_core::Result<()> {
        let rem = (len % 512) as usize;
        if rem != 0 {
            self.put(&[0u8; 512][..512 - rem])?;
        }
        Ok(())
    }

    fn put(&mut self, b: &[u8]) -> ledger_core::Result<()> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= CHUNK { self.flush() } else { Ok(()) }
    }

    fn flush(&mut self) -> ledger_core::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK + 512)));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| ledger_core::Error::Closed)
    }
}
