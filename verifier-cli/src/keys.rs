//! `ledger-verify keygen` and `ledger-verify consistency`.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ledger_core::merkle::verify_consistency;
use ledger_core::{Checkpoint, Hash, LogDescriptor, NamedKey, TreeHash};

use crate::trust::{Failure, unchecked};

/// Creates an Ed25519 key named `name` in `out` (mode 0600, C2SP note private-key format; an
/// existing file is never overwritten) and returns its verifier key, and with `hash` the log
/// descriptor of a log using it as its log key.
pub fn keygen(name: &str, out: &Path, hash: Option<TreeHash>) -> Result<serde_json::Value, Failure> {
    if out.exists() {
        return Err(Failure::Unchecked(format!("{}: exists; refusing to overwrite a key", out.display())));
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| Failure::Unchecked(format!("no OS randomness: {e}")))?;
    let key = NamedKey::from_seed(name, seed).map_err(|e| Failure::Unchecked(format!("key name {name:?}: {e}")))?;
    ledger_core::keys::write_private_file(out, key.to_private_string().as_bytes()).map_err(|e| unchecked(out, e))?;
    let vkey = key.verifier().to_string();
    let mut v = serde_json::json!({"name": name, "private_key_file": out, "vkey": vkey});
    if let Some(h) = hash {
        v["log"] = serde_json::to_value(LogDescriptor::new(&key.verifier(), h)).expect("serialisable");
    }
    Ok(v)
}

fn read_note(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path).map_err(|e| unchecked(path, e))
}

/// Checks that checkpoint `old` is a prefix of checkpoint `new` by the consistency proof in
/// `proof` (`{"proof": [base64…]}`, as `GET /v1/proof/consistency` answers).
pub fn consistency(
    old: &Path,
    new: &Path,
    proof: &Path,
    trusted: &[LogDescriptor],
) -> Result<serde_json::Value, Failure> {
    let (old_text, new_text) = (read_note(old)?, read_note(new)?);
    let proof_json: serde_json::Value = serde_json::from_slice(&std::fs::read(proof).map_err(|e| unchecked(proof, e))?)
        .map_err(|e| unchecked(proof, format!("not JSON: {e}")))?;
    let hashes: Vec<Hash> = proof_json["proof"]
        .as_array()
        .ok_or_else(|| unchecked(proof, "expected {\"proof\": [base64, …]}"))?
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let b = h
                .as_str()
                .and_then(|s| B64.decode(s).ok())
                .ok_or_else(|| unchecked(proof, format!("proof[{i}] is not base64")))?;
            Hash::try_from(b.as_slice())
                .map_err(|_| unchecked(proof, format!("proof[{i}] is {} bytes, not 32", b.len())))
        })
        .collect::<Result<_, _>>()?;
    // Both checkpoints must verify under one trusted descriptor.
    let mut last = None;
    for log in trusted {
        let key = log.verifier_key().map_err(|e| Failure::Unchecked(e.to_string()))?;
        let (a, b) = match (Checkpoint::open(&old_text, &key), Checkpoint::open(&new_text, &key)) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) => {
                last = Some(Failure::Invalid(format!("{}: {e}", old.display())));
                continue;
            }
            (_, Err(e)) => {
                last = Some(Failure::Invalid(format!("{}: {e}", new.display())));
                continue;
            }
        };
        let evidence = || format!("\n--- {} ---\n{old_text}--- {} ---\n{new_text}", old.display(), new.display());
        if b.size < a.size {
            return Err(Failure::Invalid(format!(
                "the tree shrank from {} to {} entries: {} is not an extension of {}{}",
                a.size,
                b.size,
                new.display(),
                old.display(),
                evidence()
            )));
        }
        verify_consistency(log.hash, a.size, b.size, &a.root, &b.root, &hashes).map_err(|e| {
            Failure::Invalid(format!(
                "FORK: {} (size {}) and {} (size {}) are both signed by the log but not consistent: {e}{}",
                old.display(),
                a.size,
                new.display(),
                b.size,
                evidence()
            ))
        })?;
        return Ok(serde_json::json!({"verdict": "valid", "log": log, "old_size": a.size, "new_size": b.size}));
    }
    Err(last.unwrap_or_else(|| Failure::Unchecked("no --log given".into())))
}
