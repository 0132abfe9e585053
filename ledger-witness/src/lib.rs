//! A C2SP `tlog-witness`: cosigns a log's checkpoint only when it is consistent with the last one
//! it cosigned for that log (SPEC §8, docs/FORMATS.md §10).
//!
//! [`Witness`] is the state machine, without HTTP: [`Witness::add_checkpoint`] takes the body of
//! an `add-checkpoint` request and returns either the cosignature line or a [`Refusal`] carrying
//! the status code C2SP gives it. [`http`] serves it (`main.rs` runs that). [`cosigner`] is the other side:
//! what a log runs to ask witnesses for cosignatures and publish its checkpoints.
//!
//! ```
//! use ledger_core::{Checkpoint, LogDescriptor, NamedKey, TreeHash};
//! use ledger_witness::Witness;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let log = NamedKey::from_seed("example.com/log", [1; 32]).unwrap();
//! let logs = vec![LogDescriptor::new(&log.verifier(), TreeHash::Sha256)];
//! let w = Witness::open(dir.path(), NamedKey::from_seed("w1", [2; 32]).unwrap(), &logs).unwrap();
//! let empty = Checkpoint { origin: "example.com/log".into(), size: 0, root: TreeHash::Sha256.empty_root(), extensions: vec![] };
//! let body = format!("old 0\n\n{}", empty.sign(&log));
//! assert!(w.add_checkpoint(body.as_bytes(), 1_700_000_000).unwrap().starts_with("— w1 "));
//! ```

pub mod cosigner;
pub mod http;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ledger_core::keys::write_private_file;
use ledger_core::merkle::verify_consistency;
use ledger_core::witness::Cosignature;
use ledger_core::{Checkpoint, Hash, LogDescriptor, NamedKey, Note, TreeHash, VerifierKey, WitnessKey};
use sha2::Digest as _;

/// The most consistency-proof lines a request may carry (C2SP `tlog-witness`).
pub const MAX_PROOF_LINES: usize = 63;
/// The largest request body read (a note is at most 1 MiB in ledger-core; a checkpoint is far smaller).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Why a request got no cosignature, with the status code C2SP `tlog-witness` gives it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// 400: the body is not `old <size>`, proof lines, a blank line and a checkpoint note.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// 400: the old size is larger than the checkpoint's size.
    #[error("old size {old} is larger than the checkpoint size {size}")]
    OldAboveSize {
        /// The request's old size.
        old: u64,
        /// The checkpoint's size.
        size: u64,
    },
    /// 404: no configured log has this origin.
    #[error("unknown log origin {0:?}")]
    UnknownLog(String),
    /// 403: no signature of the log's key verifies.
    #[error("the log signature does not verify: {0}")]
    BadLogSignature(String),
    /// 409: the old size is not the size this witness last cosigned; `size` is that size.
    #[error("old size {old} is not the latest cosigned size {size}")]
    OldSizeMismatch {
        /// The request's old size.
        old: u64,
        /// The latest size this witness cosigned for the log.
        size: u64,
    },
    /// 409: the checkpoint has the size of the latest cosigned one but another root (a fork).
    #[error("size {size} was cosigned with another root hash")]
    RootConflict {
        /// The latest size this witness cosigned for the log.
        size: u64,
    },
    /// 422: the consistency proof does not prove the new tree extends the cosigned one.
    #[error("bad consistency proof: {0}")]
    BadProof(String),
    /// 500: the new state could not be stored; the witness refuses everything after it.
    #[error("storage error: {0}")]
    Storage(String),
    /// 503: an earlier storage error stopped this witness.
    #[error("the witness stopped after a storage error; restart it")]
    Poisoned,
}

impl Refusal {
    /// The HTTP status code of C2SP `tlog-witness` (500 and 503 are ours).
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Malformed(_) | Refusal::OldAboveSize { .. } => 400,
            Refusal::BadLogSignature(_) => 403,
            Refusal::UnknownLog(_) => 404,
            Refusal::OldSizeMismatch { .. } | Refusal::RootConflict { .. } => 409,
            Refusal::BadProof(_) => 422,
            Refusal::Storage(_) => 500,
            Refusal::Poisoned => 503,
        }
    }

    /// For a 409: the latest cosigned size, the `text/x.tlog.size` body.
    pub fn latest_size(&self) -> Option<u64> {
        match self {
            Refusal::OldSizeMismatch { size, .. } | Refusal::RootConflict { size } => Some(*size),
            _ => None,
        }
    }
}

/// What the witness last cosigned for one log.
#[derive(Debug)]
struct State {
    size: u64,
    root: Hash,
    /// The cosigned checkpoint note (log line, other lines received, our line); none before the first.
    note: Option<String>,
}

#[derive(Debug)]
struct WitnessedLog {
    key: VerifierKey,
    hash: TreeHash,
    file: PathBuf,
    /// Held from reading the state to storing the new one: submissions for a log are serialized,
    /// so the compare (old size = stored size) and the swap (store the new size) are one step.
    state: Mutex<State>,
}

/// A witness: its key, the logs it witnesses and their latest cosigned checkpoints.
#[derive(Debug)]
pub struct Witness {
    key: NamedKey,
    evidence: PathBuf,
    logs: HashMap<String, WitnessedLog>,
    poisoned: AtomicBool,
}

/// The file holding a log's latest cosigned checkpoint: `DIR/logs/<hex SHA-256 of the origin>.note`.
pub fn state_path(dir: &Path, origin: &str) -> PathBuf {
    dir.join("logs").join(format!("{}.note", hex::encode(sha2::Sha256::digest(origin.as_bytes()))))
}

impl Witness {
    /// Opens the witness state in `dir` for `logs`, loading each log's latest cosigned checkpoint.
    ///
    /// A stored checkpoint must parse, be of its log and verify under the log's key; anything else
    /// stops the start (a witness that forgot its state could cosign a fork).
    pub fn open(dir: &Path, key: NamedKey, logs: &[LogDescriptor]) -> anyhow::Result<Witness> {
        let mut map = HashMap::new();
        for d in logs {
            let vk = d.verifier_key().map_err(|e| anyhow::anyhow!("log {:?}: {e}", d.origin))?;
            let file = state_path(dir, &d.origin);
            let state = match std::fs::read_to_string(&file) {
                Ok(note) => {
                    let cp = Checkpoint::open(&note, &vk)
                        .map_err(|e| anyhow::anyhow!("{}: stored checkpoint of {:?}: {e}", file.display(), d.origin))?;
                    State { size: cp.size, root: cp.root, note: Some(note) }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    State { size: 0, root: d.hash.empty_root(), note: None }
                }
                Err(e) => return Err(anyhow::anyhow!("{}: {e}", file.display())),
            };
            let log = WitnessedLog { key: vk, hash: d.hash, file, state: Mutex::new(state) };
            if map.insert(d.origin.clone(), log).is_some() {
                anyhow::bail!("log {:?} is given twice", d.origin);
            }
        }
        Ok(Witness { key, evidence: dir.join("evidence"), logs: map, poisoned: AtomicBool::new(false) })
    }

    /// The witness's `cosignature/v1` verifier key.
    pub fn vkey(&self) -> WitnessKey {
        WitnessKey::of(&self.key)
    }

    /// The latest cosigned checkpoint of `origin` with its cosignature lines, if any.
    pub fn latest(&self, origin: &str) -> Option<String> {
        let log = self.logs.get(origin)?;
        log.state.lock().expect("state lock").note.clone()
    }

    /// Handles an `add-checkpoint` body at `now` (seconds since the Unix epoch): the cosignature
    /// line on success. The new state is stored durably before this returns.
    pub fn add_checkpoint(&self, body: &[u8], now: u64) -> Result<String, Refusal> {
        if self.poisoned.load(Ordering::SeqCst) {
            return Err(Refusal::Poisoned);
        }
        let req = parse_request(body)?;
        let note = Note::parse(&req.note).map_err(|e| Refusal::Malformed(e.to_string()))?;
        let cp = Checkpoint::parse_text(note.text()).map_err(|e| Refusal::Malformed(e.to_string()))?;
        let log = self.logs.get(&cp.origin).ok_or_else(|| Refusal::UnknownLog(cp.origin.clone()))?;
        note.verify(&log.key).map_err(|e| Refusal::BadLogSignature(e.to_string()))?;
        if req.old > cp.size {
            return Err(Refusal::OldAboveSize { old: req.old, size: cp.size });
        }

        // Compare-and-swap under the log's lock: nothing else reads or writes this log's state
        // until the new one is stored, so no submission can roll it back.
        let mut st = log.state.lock().expect("state lock");
        if self.poisoned.load(Ordering::SeqCst) {
            return Err(Refusal::Poisoned);
        }
        // A second root for a size already cosigned is a fork whatever the old size says. (Before
        // the first cosignature the empty tree is not a cosigned size: a size-0 checkpoint with
        // another root fails the proof check below, 422.)
        if st.note.is_some() && cp.size == st.size && cp.root != st.root {
            let refusal = Refusal::RootConflict { size: st.size };
            self.record_evidence(&cp, body, &refusal);
            return Err(refusal);
        }
        if req.old != st.size {
            return Err(Refusal::OldSizeMismatch { old: req.old, size: st.size });
        }
        if let Err(e) = verify_consistency(log.hash, req.old, cp.size, &st.root, &cp.root, &req.proof) {
            let refusal = Refusal::BadProof(e.to_string());
            self.record_evidence(&cp, body, &refusal);
            return Err(refusal);
        }

        let cosig = Cosignature::sign(note.text(), &self.key, now).map_err(|e| Refusal::Malformed(e.to_string()))?;
        let line = cosig.to_line();
        let stored = cosigned_note(&req.note, &cosig.name, &line);
        // Durability: the new state is written to a temporary file, synced, renamed over the old
        // one and the directory synced (write_private_file) before the cosignature leaves; a crash
        // leaves the old state or the new one. A failed write poisons the witness: its state on
        // disk is then unknown, so it cosigns nothing more until restarted.
        if let Err(e) = write_private_file(&log.file, stored.as_bytes()) {
            self.poisoned.store(true, Ordering::SeqCst);
            return Err(Refusal::Storage(e.to_string()));
        }
        *st = State { size: cp.size, root: cp.root, note: Some(stored) };
        Ok(line)
    }

    /// Writes a refused checkpoint the log did sign (a fork or a bad proof) to `DIR/evidence/`,
    /// the request as received, and logs it. Failing to write it is logged, not fatal.
    fn record_evidence(&self, cp: &Checkpoint, body: &[u8], why: &Refusal) {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let origin_hash = hex::encode(&sha2::Sha256::digest(cp.origin.as_bytes())[..4]);
        let name =
            format!("{}.{:09}-{origin_hash}-{}-{}.request", t.as_secs(), t.subsec_nanos(), cp.size, why.status());
        let path = self.evidence.join(name);
        let mut contents = format!("# refused with {}: {why}\n", why.status()).into_bytes();
        contents.extend_from_slice(body);
        match write_private_file(&path, &contents) {
            Ok(()) => eprintln!(
                "ledger-witness: EVIDENCE: log {:?} signed size {} refused ({why}); request kept in {}",
                cp.origin,
                cp.size,
                path.display()
            ),
            Err(e) => eprintln!(
                "ledger-witness: EVIDENCE: log {:?} signed size {} refused ({why}); could not keep it: {e}",
                cp.origin, cp.size
            ),
        }
    }
}

/// The note stored and served: the received note without any earlier line of ours, plus `line`.
fn cosigned_note(note: &str, our_name: &str, line: &str) -> String {
    let split = note.rfind("\n\n").expect("a parsed note has a blank line") + 2;
    let mut out = note[..split].to_string();
    let ours = format!("\u{2014} {our_name} ");
    for l in note[split..].split_inclusive('\n').filter(|l| !l.starts_with(&ours)) {
        out.push_str(l);
    }
    out.push_str(line);
    out
}

#[derive(Debug)]
struct Request {
    old: u64,
    proof: Vec<Hash>,
    note: String,
}

/// Parses `old <size>\n`, up to 63 base64 hash lines, a blank line, then the checkpoint note.
fn parse_request(body: &[u8]) -> Result<Request, Refusal> {
    let bad = |why: String| Refusal::Malformed(why);
    if body.len() > MAX_BODY_BYTES {
        return Err(bad(format!("body over {MAX_BODY_BYTES} bytes")));
    }
    let text = std::str::from_utf8(body).map_err(|_| bad("body is not UTF-8".into()))?;
    let (first, mut rest) = text.split_once('\n').ok_or_else(|| bad("no \"old\" line".into()))?;
    let size = first.strip_prefix("old ").ok_or_else(|| bad(format!("first line {first:?} is not \"old <size>\"")))?;
    let canonical =
        !size.is_empty() && size.bytes().all(|b| b.is_ascii_digit()) && (size == "0" || !size.starts_with('0'));
    let old = size
        .parse::<u64>()
        .ok()
        .filter(|_| canonical)
        .ok_or_else(|| bad(format!("old size {size:?} is not a decimal number")))?;
    let mut proof = Vec::new();
    loop {
        let (line, after) = rest.split_once('\n').ok_or_else(|| bad("no blank line before the checkpoint".into()))?;
        rest = after;
        if line.is_empty() {
            break;
        }
        if proof.len() == MAX_PROOF_LINES {
            return Err(bad(format!("more than {MAX_PROOF_LINES} consistency proof lines")));
        }
        let h: Hash = B64
            .decode(line)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| bad(format!("proof line {line:?} is not 32 bytes of base64")))?;
        proof.push(h);
    }
    Ok(Request { old, proof, note: rest.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_malformed_ones_are_refused() {
        let h = B64.encode([7u8; 32]);
        let r = parse_request(format!("old 3\n{h}\n{h}\n\nnote\n").as_bytes()).unwrap();
        assert_eq!((r.old, r.proof.len(), r.note.as_str()), (3, 2, "note\n"));
        for body in [
            "old 03\n\nx".to_string(),
            "old -1\n\nx".into(),
            "new 1\n\nx".into(),
            "old 1".into(),
            "old 1\nAAAA\n\nx".into(),
            format!("old 1\n{h}\n"),
            format!("old 1\n{}\nx", format!("{h}\n").repeat(64)),
        ] {
            assert!(matches!(parse_request(body.as_bytes()), Err(Refusal::Malformed(_))), "{body:?}");
        }
        assert!(parse_request(format!("old 1\n{}\nx", format!("{h}\n").repeat(63)).as_bytes()).is_ok());
        assert!(matches!(parse_request(b"old 1\n\n\xff"), Err(Refusal::Malformed(_))));
    }

    fn setup(dir: &Path) -> (NamedKey, Witness) {
        let log = NamedKey::from_seed("example.com/log", [1; 32]).unwrap();
        let logs = vec![LogDescriptor::new(&log.verifier(), TreeHash::Sha256)];
        let w = Witness::open(dir, NamedKey::from_seed("w1", [2; 32]).unwrap(), &logs).unwrap();
        (log, w)
    }

    fn grow(log: &NamedKey, old: u64, new: u64) -> String {
        let mut t = ledger_core::MemTree::new(TreeHash::Sha256);
        (0..new).for_each(|i| t.push_entry(&i.to_be_bytes()));
        let proof = if old == 0 { vec![] } else { t.consistency_proof(old, new).unwrap() };
        let cp = Checkpoint { origin: log.name().into(), size: new, root: t.root(), extensions: vec![] };
        let lines: String = proof.iter().map(|h| format!("{}\n", B64.encode(h))).collect();
        format!("old {old}\n{lines}\n{}", cp.sign(log))
    }

    #[test]
    fn a_failed_write_poisons_the_witness() {
        let dir = tempfile::tempdir().unwrap();
        let (log, w) = setup(dir.path());
        w.add_checkpoint(grow(&log, 0, 3).as_bytes(), 1).unwrap();
        // The state directory replaced by a file: the next write fails.
        std::fs::remove_dir_all(dir.path().join("logs")).unwrap();
        std::fs::write(dir.path().join("logs"), b"").unwrap();
        let e = w.add_checkpoint(grow(&log, 3, 5).as_bytes(), 2).unwrap_err();
        assert_eq!(e.status(), 500, "{e}");
        // In memory the state did not move, and nothing more is cosigned, even what would be valid.
        assert_eq!(size_of(&w.latest("example.com/log").unwrap()), 3);
        std::fs::remove_file(dir.path().join("logs")).unwrap();
        let e = w.add_checkpoint(grow(&log, 3, 5).as_bytes(), 3).unwrap_err();
        assert_eq!(
            (e.status(), e.to_string().as_str()),
            (503, "the witness stopped after a storage error; restart it")
        );
    }

    #[test]
    fn a_stored_state_that_does_not_verify_stops_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let (log, w) = setup(dir.path());
        w.add_checkpoint(grow(&log, 0, 3).as_bytes(), 1).unwrap();
        drop(w);
        let file = state_path(dir.path(), "example.com/log");
        let note = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, note.replacen("\n3\n", "\n4\n", 1)).unwrap();
        let logs = vec![LogDescriptor::new(&log.verifier(), TreeHash::Sha256)];
        let e = Witness::open(dir.path(), NamedKey::from_seed("w1", [2; 32]).unwrap(), &logs).unwrap_err();
        assert!(e.to_string().contains("stored checkpoint of \"example.com/log\""), "{e}");
        // The same log given twice is refused too.
        std::fs::write(&file, note).unwrap();
        let twice = [logs.clone(), logs].concat();
        let e = Witness::open(dir.path(), NamedKey::from_seed("w1", [2; 32]).unwrap(), &twice).unwrap_err();
        assert_eq!(e.to_string(), "log \"example.com/log\" is given twice");
    }

    fn size_of(note: &str) -> u64 {
        Checkpoint::parse_text(Note::parse(note).unwrap().text()).unwrap().size
    }

    #[test]
    fn earlier_lines_of_ours_are_replaced() {
        let note = "o\n1\nr\n\n\u{2014} o AAAA\n\u{2014} w1 OLD\n\u{2014} w2 X\n";
        assert_eq!(
            cosigned_note(note, "w1", "\u{2014} w1 NEW\n"),
            "o\n1\nr\n\n\u{2014} o AAAA\n\u{2014} w2 X\n\u{2014} w1 NEW\n"
        );
    }
}
