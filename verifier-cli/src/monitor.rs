//! `ledger-verify monitor URL --state FILE`: follows a live log. Each round fetches the newest
//! checkpoint, verifies its signature, proves it consistent with the last verified one (the
//! consistency proof comes from the server, the checkpoints from the state file and the log),
//! and only then replaces the state, atomically. A bad signature, a shrinking tree or a failed
//! proof stops the monitor with exit 1 and writes the evidence next to the state file. Under a
//! trust policy (SPEC §8) every checkpoint must also carry the policy's quorum of cosignatures: a
//! checkpoint that does not stops it the same way (`WITNESS QUORUM`), naming the witnesses that
//! did and did not cosign. A server that serves no cosignatures fails every round under a policy
//! that requires any, which is what such a policy asks for.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ledger_core::merkle::verify_consistency;
use ledger_core::{Checkpoint, Hash, LogDescriptor, Policy};
use serde::{Deserialize, Serialize};

use crate::fetch;
use crate::trust::{Failure, unchecked};

/// The monitor's state: the last checkpoint it verified.
#[derive(Debug, Serialize, Deserialize)]
struct State {
    log: LogDescriptor,
    checkpoint: String,
}

/// One verified checkpoint.
struct Seen {
    cp: Checkpoint,
    note: String,
}

/// `STATE.evidence-<unix seconds>.json`, never an existing file: evidence is not overwritten.
fn evidence_path(state: &Path) -> PathBuf {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    (0..)
        .map(|i| {
            let mut p = state.as_os_str().to_owned();
            p.push(if i == 0 { format!(".evidence-{now}.json") } else { format!(".evidence-{now}-{i}.json") });
            PathBuf::from(p)
        })
        .find(|p| !p.exists())
        .expect("some name is free")
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, synced, renamed over it, and
/// the directory synced.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    use std::io::Write as _;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp).map_err(|e| unchecked(&tmp, e))?;
    f.write_all(bytes).and_then(|_| f.sync_all()).map_err(|e| unchecked(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| unchecked(path, e))?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| unchecked(dir, e))?;
    Ok(())
}

/// Records the evidence of a failure and returns it as the failure.
fn caught(state: &Path, what: &str, message: String, evidence: serde_json::Value) -> Failure {
    let path = evidence_path(state);
    let record = serde_json::json!({
        "what": what,
        "message": message,
        "observed_at": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        "evidence": evidence,
    });
    let saved = write_atomic(&path, serde_json::to_string_pretty(&record).expect("json").as_bytes()).is_ok();
    Failure::Invalid(format!(
        "{what}: {message}{}\n{}",
        if saved { format!(" (evidence written to {})", path.display()) } else { String::new() },
        serde_json::to_string_pretty(&record["evidence"]).expect("json")
    ))
}

/// Runs the monitor: one round with `once`, else a round every `interval`, until a failure.
pub fn run(
    url: &str,
    trusted: &[LogDescriptor],
    policy: Option<&Policy>,
    state_path: &Path,
    token: Option<&str>,
    interval: Duration,
    once: bool,
) -> Result<(), Failure> {
    let base = url.trim_end_matches('/');
    // The log the server says it is must be one the auditor trusts.
    let served: LogDescriptor = serde_json::from_slice(&fetch::get_bytes(&format!("{base}/v1/log"), None, 1 << 16)?)
        .map_err(|e| Failure::Unchecked(format!("{base}/v1/log: not a log descriptor: {e}")))?;
    let log = crate::trust::pick(trusted, &served, Path::new(base))?.clone();
    let key = log.verifier_key().map_err(|e| Failure::Unchecked(e.to_string()))?;

    let mut last: Option<Seen> = match std::fs::read(state_path) {
        Ok(bytes) => {
            let s: State = serde_json::from_slice(&bytes)
                .map_err(|e| unchecked(state_path, format!("not a monitor state file: {e}")))?;
            if s.log != log {
                return Err(unchecked(state_path, "the state is for another log than the one being monitored"));
            }
            let cp = Checkpoint::open(&s.checkpoint, &key).map_err(|e| unchecked(state_path, e))?;
            Some(Seen { cp, note: s.checkpoint })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(unchecked(state_path, e)),
    };

    loop {
        match round(base, token, &log, &key, policy, state_path, &mut last) {
            Ok(()) => {}
            // The server being unreachable or answering badly is not evidence: try again later.
            Err(Failure::Unchecked(m)) if !once => eprintln!("ledger-verify monitor: {m}; retrying in {interval:?}"),
            Err(f) => return Err(f),
        }
        if once {
            return Ok(());
        }
        std::thread::sleep(interval);
    }
}

/// Fetches, verifies and records one checkpoint.
fn round(
    base: &str,
    token: Option<&str>,
    log: &LogDescriptor,
    key: &ledger_core::VerifierKey,
    policy: Option<&Policy>,
    state_path: &Path,
    last: &mut Option<Seen>,
) -> Result<(), Failure> {
    let note = String::from_utf8(fetch::get_bytes(&format!("{base}/v1/checkpoint"), None, 1 << 16)?)
        .map_err(|e| Failure::Unchecked(format!("{base}/v1/checkpoint: not UTF-8: {e}")))?;
    let cp = Checkpoint::open(&note, key).map_err(|e| {
        caught(
            state_path,
            "BAD CHECKPOINT",
            format!("{base}/v1/checkpoint does not verify under the trusted key: {e}"),
            serde_json::json!({ "log": log, "checkpoint": note }),
        )
    })?;
    if let Some(policy) = policy {
        policy.verify(&note, Some(key), crate::trust::unix_now()).map_err(|e| {
            caught(
                state_path,
                "WITNESS QUORUM",
                format!("{base}/v1/checkpoint of size {} does not satisfy the trust policy: {e}", cp.size),
                serde_json::json!({ "log": log, "checkpoint": note, "policy": policy.to_string() }),
            )
        })?;
    }
    if let Some(prev) = last.as_ref() {
        check_extends(base, token, log, state_path, prev, &cp, &note)?;
    }
    // A new note, even of the same size (a bus log's new signer signs the same tree under its
    // own term), becomes the state: the next one is checked against it.
    if last.as_ref().is_none_or(|p| p.note != note) {
        let state = State { log: log.clone(), checkpoint: note.clone() };
        write_atomic(state_path, serde_json::to_string_pretty(&state).expect("json").as_bytes())?;
        println!(
            "{}: checkpoint {} verified{}",
            log.origin,
            cp.size,
            last.as_ref().map(|p| format!(", consistent with {}", p.cp.size)).unwrap_or_default()
        );
    }
    *last = Some(Seen { cp, note });
    Ok(())
}

fn check_extends(
    base: &str,
    token: Option<&str>,
    log: &LogDescriptor,
    state_path: &Path,
    prev: &Seen,
    cp: &Checkpoint,
    note: &str,
) -> Result<(), Failure> {
    let both = || serde_json::json!({ "log": log, "previous": prev.note, "current": note });
    // A bus log's notes carry the signer's lease term (FORMATS §4): terms never go back, so a
    // lower one is a signer that lost its lease and still published (a fencing failure).
    if let (Some(old), Some(new)) = (prev.cp.lease_term(), cp.lease_term())
        && new < old
    {
        return Err(caught(
            state_path,
            "LEASE WENT BACK",
            format!(
                "a checkpoint signed under lease term {new} after one under term {old}: a signer that lost its lease published"
            ),
            both(),
        ));
    }
    if cp.size < prev.cp.size {
        return Err(caught(
            state_path,
            "SHRINKING TREE",
            format!("the log went from {} to {} entries", prev.cp.size, cp.size),
            both(),
        ));
    }
    if cp.size == prev.cp.size {
        if cp.root != prev.cp.root {
            return Err(caught(
                state_path,
                "FORK",
                format!("two checkpoints of size {} with different roots", cp.size),
                both(),
            ));
        }
        return Ok(());
    }
    let url = format!("{base}/v1/proof/consistency?from={}&to={}", prev.cp.size, cp.size);
    let body: serde_json::Value = serde_json::from_slice(&fetch::get_bytes(&url, token, 1 << 20)?)
        .map_err(|e| Failure::Unchecked(format!("{url}: not JSON: {e}")))?;
    // A malformed answer is the server's failure to answer, not evidence of a fork.
    let proof: Vec<Hash> = body["proof"]
        .as_array()
        .ok_or_else(|| Failure::Unchecked(format!("{url}: no \"proof\" array in the answer")))?
        .iter()
        .enumerate()
        .map(|(i, h)| {
            h.as_str()
                .and_then(|s| B64.decode(s).ok())
                .and_then(|b| Hash::try_from(b.as_slice()).ok())
                .ok_or_else(|| Failure::Unchecked(format!("{url}: proof[{i}] is not a base64 32-byte hash")))
        })
        .collect::<Result<_, _>>()?;
    verify_consistency(log.hash, prev.cp.size, cp.size, &prev.cp.root, &cp.root, &proof).map_err(|e| {
        let mut ev = both();
        ev["consistency_proof"] = body["proof"].clone();
        caught(
            state_path,
            "FORK",
            format!("checkpoint {} is not an extension of the verified checkpoint {}: {e}", cp.size, prev.cp.size),
            ev,
        )
    })
}
