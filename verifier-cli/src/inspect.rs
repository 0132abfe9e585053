//! `ledger-verify inspect FILE`: what a file holds, as JSON — an entry (CBOR), `entries.bin`, a
//! receipt, a pack manifest, a log descriptor or a signed checkpoint. It checks formats, not
//! signatures (that is what the other commands are for).

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ledger_core::{Checkpoint, Entry, Event, Note, Receipt};

use crate::trust::{Failure, unchecked};

fn entry_json(bytes: &[u8]) -> serde_json::Value {
    match Entry::decode(bytes) {
        Ok(e) => with_erasure(&e),
        Err(err) => serde_json::json!({ "invalid_entry": err.to_string(), "bytes": B64.encode(bytes) }),
    }
}

/// An entry's JSON; a `payload.erased` entry (1.1) also gets `"erasure"`: which payload, when (RFC
/// 3339), who approved it and why, for a person to read.
fn with_erasure(e: &Entry) -> serde_json::Value {
    let mut v = e.to_json();
    if let Event::PayloadErased { hash, reason, approver } = &e.event {
        v["erasure"] = serde_json::json!({
            "payload": hex::encode(hash),
            "when": when(e.ts),
            "approver": approver,
            "reason": reason,
        });
    }
    v
}

/// An entry's `ts` (nanoseconds since the Unix epoch) as RFC 3339 UTC, or the number when it is
/// before the epoch.
pub fn when(ts: i64) -> String {
    match u64::try_from(ts) {
        Ok(ns) => {
            humantime::format_rfc3339_nanos(std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns)).to_string()
        }
        Err(_) => format!("{ts} ns before the Unix epoch"),
    }
}

/// Describes the file at `path`.
pub fn inspect(path: &Path) -> Result<serde_json::Value, Failure> {
    let bytes = std::fs::read(path).map_err(|e| unchecked(path, e))?;
    if let Ok(text) = std::str::from_utf8(&bytes) {
        let trimmed = text.trim_start();
        if trimmed.starts_with('{') {
            let v: serde_json::Value =
                serde_json::from_str(text).map_err(|e| unchecked(path, format!("JSON that does not parse: {e}")))?;
            return Ok(match v.get("format").and_then(|f| f.as_str()) {
                Some(ledger_core::receipt::RECEIPT_FORMAT) => {
                    let r = Receipt::from_json(&bytes).map_err(|e| unchecked(path, e))?;
                    let decoded: Vec<_> = r
                        .entries
                        .iter()
                        .map(|p| serde_json::json!({"index": p.index, "entry": entry_json(&p.entry), "proof_hashes": p.proof.len()}))
                        .collect();
                    serde_json::json!({
                        "type": "receipt",
                        "log": r.log,
                        "run": r.run,
                        "checkpoint": note_json(&r.checkpoint),
                        "entries": decoded,
                        "signer": {"index": r.signer.index, "entry": entry_json(&r.signer.entry)},
                    })
                }
                Some(ledger_core::pack::PACK_FORMAT) => serde_json::json!({"type": "pack manifest", "manifest": v}),
                _ if v.get("vkey").is_some() => serde_json::json!({"type": "log descriptor", "log": v}),
                _ => {
                    return Err(unchecked(
                        path,
                        "JSON that is neither a receipt, a pack manifest nor a log descriptor",
                    ));
                }
            });
        }
        if text.contains("\n\n\u{2014} ") {
            return Ok(serde_json::json!({"type": "signed checkpoint", "checkpoint": note_json(text)}));
        }
    }
    if let Ok(e) = Entry::decode(&bytes) {
        return Ok(serde_json::json!({"type": "entry", "entry": with_erasure(&e)}));
    }
    // entries.bin: 4-byte big-endian lengths.
    let mut at = 0;
    let mut entries = Vec::new();
    while at + 4 <= bytes.len() {
        let n = u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let Some(e) = bytes.get(at + 4..at + 4 + n) else { break };
        entries.push(entry_json(e));
        at += 4 + n;
    }
    if at == bytes.len() && !entries.is_empty() {
        return Ok(serde_json::json!({"type": "entries.bin", "count": entries.len(), "entries": entries}));
    }
    Err(unchecked(
        path,
        "not an entry, entries.bin, receipt, pack manifest, log descriptor or signed checkpoint \
         (an entry that does not decode is shown only inside one of those)",
    ))
}

fn note_json(text: &str) -> serde_json::Value {
    match Note::parse(text) {
        Ok(note) => {
            let sigs: Vec<_> = note
                .signatures()
                .iter()
                .map(|s| serde_json::json!({"name": s.name, "key_id": hex::encode(s.key_id)}))
                .collect();
            let body = match Checkpoint::parse_text(note.text()) {
                Ok(cp) => serde_json::json!({
                    "origin": cp.origin, "tree_size": cp.size, "root": B64.encode(cp.root), "extensions": cp.extensions,
                }),
                Err(e) => serde_json::json!({"invalid_checkpoint": e.to_string(), "text": note.text()}),
            };
            serde_json::json!({"body": body, "signatures": sigs})
        }
        Err(e) => serde_json::json!({"invalid_note": e.to_string(), "text": text}),
    }
}
