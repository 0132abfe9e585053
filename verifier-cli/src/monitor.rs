//! `ledger-verify monitor URL [URL…] --state PATH`: follows live logs. Each URL is a ledger (a
//! `ledger-server` or a read replica) whose `/v1/log` must be one of the trusted descriptors;
//! several URLs may serve several logs (a sharded deployment) and several URLs may serve one log
//! (its replicas). The monitor keeps one state per log origin: the last checkpoint it verified
//! (the log's *head*). Each round fetches every URL's newest checkpoint, verifies its signature
//! and proves it consistent with the head: a larger tree is proven an extension of the head with
//! a consistency proof from that URL; a tree of the same size must have the same root; a smaller
//! one (a replica that lags) is proven a prefix of the head with a proof from a URL that showed
//! the head's size this round, or, when every URL was reached and none did, the log shrank. Two
//! URLs of one log that disagree are a split view, reported as a fork. Only then does the head
//! move, and its state file is replaced atomically.
//!
//! A bad signature, a shrinking tree or a failed proof is an alarm: it is printed with the
//! evidence, the evidence is written next to the log's state file, and the monitor stops with
//! exit 1 at the end of the round (every URL is still checked first). Under a trust policy (SPEC
//! §8) every checkpoint must also carry the policy's quorum of cosignatures: a checkpoint that
//! does not is an alarm the same way (`WITNESS QUORUM`), naming the witnesses that did and did
//! not cosign. A server that serves no cosignatures fails every round under a policy that
//! requires any, which is what such a policy asks for. An unreachable URL or a bad answer is not
//! evidence: it is reported and retried next round, the other URLs carry on.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ledger_core::merkle::verify_consistency;
use ledger_core::{Checkpoint, Hash, LogDescriptor, Policy, VerifierKey};
use serde::{Deserialize, Serialize};

use crate::fetch;
use crate::trust::{Failure, unchecked};

/// The monitor's state for one log: the last checkpoint it verified.
#[derive(Debug, Serialize, Deserialize)]
struct State {
    log: LogDescriptor,
    checkpoint: String,
    /// The URL that served `checkpoint`. Absent in state files written before the monitor took
    /// several URLs; they load as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    url: Option<String>,
}

/// The verified head of one log.
struct Head {
    cp: Checkpoint,
    note: String,
    /// Which URL served it, when known.
    url: Option<String>,
}

/// One log (origin) being followed.
struct Followed {
    desc: LogDescriptor,
    key: VerifierKey,
    /// Its state file; evidence files are written beside it.
    state: PathBuf,
    head: Option<Head>,
}

/// One URL given on the command line.
struct Ledger {
    /// Without a trailing `/`.
    url: String,
    /// The index in `Monitor::logs` of the log it serves, once its `/v1/log` was read and trusted.
    log: Option<usize>,
    /// Its last note reported as verified (to print each checkpoint once).
    shown: Option<String>,
}

/// Where the states are kept.
enum States {
    /// One URL: `--state` is the state file, as before the monitor took several URLs.
    File(PathBuf),
    /// Several URLs: `--state` is a directory of one file per origin ([`state_file_name`]).
    Dir(PathBuf),
}

impl States {
    /// `path` as a file for one URL, as a directory (created if missing) for several; a file
    /// where a directory is needed and the other way round are refused, saying which.
    fn new(path: &Path, urls: usize) -> Result<States, Failure> {
        if urls == 1 {
            if path.is_dir() {
                return Err(unchecked(
                    path,
                    "--state is a directory, but with one URL it names the state file (a directory \
                     of states, one per log origin, is for several URLs)",
                ));
            }
            return Ok(States::File(path.to_path_buf()));
        }
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => Ok(States::Dir(path.to_path_buf())),
            Ok(_) => Err(unchecked(
                path,
                format!(
                    "--state is a file, but with {urls} URLs it names a directory that holds one \
                     state file per log origin"
                ),
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(path).map_err(|e| unchecked(path, e))?;
                // The new directory's entry must be durable before state files are written in it.
                let parent = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
                std::fs::File::open(parent).and_then(|d| d.sync_all()).map_err(|e| unchecked(parent, e))?;
                Ok(States::Dir(path.to_path_buf()))
            }
            Err(e) => Err(unchecked(path, e)),
        }
    }

    /// The state file of the log `origin`.
    fn path(&self, origin: &str) -> PathBuf {
        match self {
            States::File(p) => p.clone(),
            States::Dir(d) => d.join(state_file_name(origin)),
        }
    }
}

/// The state file name of the log `origin` in a state directory: the origin with every byte
/// outside `[A-Za-z0-9._-]` percent-encoded (so no `/`, no NUL, and two origins never share a
/// name), then `.json`.
pub fn state_file_name(origin: &str) -> String {
    let mut name = String::with_capacity(origin.len() + 5);
    for b in origin.bytes() {
        if b.is_ascii_alphanumeric() || b"._-".contains(&b) {
            name.push(char::from(b));
        } else {
            name.push_str(&format!("%{b:02X}"));
        }
    }
    name + ".json"
}

/// The head kept in `path` for the log `desc`, or none when the file does not exist yet.
fn load_state(path: &Path, desc: &LogDescriptor, key: &VerifierKey) -> Result<Option<Head>, Failure> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(unchecked(path, e)),
    };
    let s: State =
        serde_json::from_slice(&bytes).map_err(|e| unchecked(path, format!("not a monitor state file: {e}")))?;
    if s.log != *desc {
        return Err(unchecked(path, "the state is for another log than the one being monitored"));
    }
    let cp = Checkpoint::open(&s.checkpoint, key).map_err(|e| unchecked(path, e))?;
    Ok(Some(Head { cp, note: s.checkpoint, url: s.url }))
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

/// Records the evidence of an alarm about the log `desc` seen at `url` and returns it as the
/// failure; the message names the origin and the URL.
fn caught(
    state: &Path,
    what: &str,
    desc: &LogDescriptor,
    url: &str,
    message: String,
    evidence: serde_json::Value,
) -> Failure {
    let path = evidence_path(state);
    let message = format!("log {} at {url}: {message}", desc.origin);
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

/// Something a round found at one URL.
struct Finding {
    failure: Failure,
    /// Try again next round (the server was away or answered badly, a write failed); else the
    /// monitor stops (an alarm, or a state or descriptor it cannot follow).
    retry: bool,
}

impl Finding {
    /// Retried when it is a failure to check: an alarm is evidence and stays one.
    fn of(failure: Failure) -> Finding {
        let retry = matches!(failure, Failure::Unchecked(_));
        Finding { failure, retry }
    }

    /// Never retried: the monitor cannot follow this (an untrusted log, a state it cannot use).
    fn fatal(failure: Failure) -> Finding {
        Finding { failure, retry: false }
    }
}

/// What one checkpoint turned out to be, against its log's head.
enum Verdict {
    /// The new head (the first one, a larger tree, or a new note of the same tree), and the size
    /// of the head it replaced.
    Head(Option<u64>),
    /// A note of the head's tree that does not replace it; `news` unless it is the head's own
    /// note from the URL that served it.
    Same { news: bool },
    /// Proven a prefix of the head, of this size (a replica that lags).
    Prefix(u64),
}

/// Everything the monitor follows and what it trusts.
struct Monitor<'a> {
    trusted: &'a [LogDescriptor],
    policy: Option<&'a Policy>,
    token: Option<&'a str>,
    states: States,
    ledgers: Vec<Ledger>,
    logs: Vec<Followed>,
}

/// Runs the monitor over `urls`: one round with `once`, else a round every `interval` until an
/// alarm. Every round checks every URL. With `once`, any finding fails the run; otherwise only an
/// alarm (or a state that cannot be followed) stops it, other failures are reported and retried.
/// Each finding is reported naming its URL (and log origin); with several, each is printed and
/// the error returned sums them up.
pub fn run(
    urls: &[String],
    trusted: &[LogDescriptor],
    policy: Option<&Policy>,
    state_path: &Path,
    token: Option<&str>,
    interval: Duration,
    once: bool,
) -> Result<(), Failure> {
    let states = States::new(state_path, urls.len())?;
    let ledgers =
        urls.iter().map(|u| Ledger { url: u.trim_end_matches('/').to_string(), log: None, shown: None }).collect();
    let mut m = Monitor { trusted, policy, token, states, ledgers, logs: Vec::new() };
    loop {
        let findings = m.round();
        if once || findings.iter().any(|f| !f.retry) {
            return summary(findings, urls.len());
        }
        for f in &findings {
            eprintln!("ledger-verify monitor: {}; retrying in {interval:?}", f.failure.message());
        }
        std::thread::sleep(interval);
    }
}

/// No finding is success; one is returned as it is; several are each printed and summed up in
/// the returned failure (invalid if any alarm was raised, so exit 1; else exit 2).
fn summary(findings: Vec<Finding>, urls: usize) -> Result<(), Failure> {
    let mut findings: Vec<Failure> = findings.into_iter().map(|f| f.failure).collect();
    if findings.len() <= 1 {
        return findings.pop().map_or(Ok(()), Err);
    }
    let alarms = findings.iter().filter(|f| matches!(f, Failure::Invalid(_))).count();
    for f in &findings {
        f.report(false);
    }
    let message = format!(
        "{} findings over the {urls} URLs (each reported above): alarms {alarms}, not checked {}",
        findings.len(),
        findings.len() - alarms
    );
    Err(if alarms > 0 { Failure::Invalid(message) } else { Failure::Unchecked(message) })
}

impl Monitor<'_> {
    /// One round over every URL; what went wrong, at most one finding per URL.
    fn round(&mut self) -> Vec<Finding> {
        let mut findings = Vec::new();
        // Which log each URL serves, for those not known yet (a URL away at the start is asked
        // again each round).
        for i in 0..self.ledgers.len() {
            if self.ledgers[i].log.is_none() {
                match self.resolve(i) {
                    Ok(log) => self.ledgers[i].log = Some(log),
                    Err(f) => findings.push(f),
                }
            }
        }
        // Every URL's newest checkpoint, its signature and the policy checked.
        let mut fetched: Vec<(usize, Checkpoint, String)> = Vec::new();
        for (i, ledger) in self.ledgers.iter().enumerate() {
            let Some(log) = ledger.log else { continue };
            match self.fetch(&ledger.url, &self.logs[log]) {
                Ok((cp, note)) => fetched.push((i, cp, note)),
                Err(f) => findings.push(Finding::of(f)),
            }
        }
        // Log by log, largest tree first: it moves the head, and the smaller ones (replicas that
        // lag) are then proven prefixes of it.
        for log in 0..self.logs.len() {
            let mut mine: Vec<&(usize, Checkpoint, String)> =
                fetched.iter().filter(|(i, _, _)| self.ledgers[*i].log == Some(log)).collect();
            mine.sort_by_key(|(_, cp, _)| std::cmp::Reverse(cp.size));
            // Every URL that may serve this log answered: none is unknown, none of its own failed.
            let reached_all = self.ledgers.iter().enumerate().all(|(i, l)| match l.log {
                None => false,
                Some(g) => g != log || mine.iter().any(|(j, _, _)| *j == i),
            });
            let old_note = self.logs[log].head.as_ref().map(|h| h.note.clone());
            // URLs whose checkpoint this round was verified against the head: the ones that may
            // prove a smaller checkpoint a prefix of it.
            let mut vouched: Vec<(usize, u64)> = Vec::new();
            // After one of its URLs failed a check, a smaller tree is not blamed for a shrink the
            // failed URL might have disproved.
            let mut all_passed = true;
            for (i, cp, note) in mine {
                match self.check(log, *i, cp, note, &vouched, reached_all && all_passed) {
                    Ok(verdict) => {
                        vouched.push((*i, cp.size));
                        self.show(log, *i, cp, note, verdict);
                    }
                    Err(f) => {
                        all_passed = false;
                        findings.push(Finding::of(f));
                    }
                }
            }
            let followed = &self.logs[log];
            if let Some(head) = followed.head.as_ref().filter(|h| Some(&h.note) != old_note.as_ref()) {
                let state = State { log: followed.desc.clone(), checkpoint: head.note.clone(), url: head.url.clone() };
                // The head moves on disk only after it was verified: the state never holds a
                // checkpoint that was not proven consistent with the one before it.
                if let Err(f) =
                    write_atomic(&followed.state, serde_json::to_string_pretty(&state).expect("json").as_bytes())
                {
                    findings.push(Finding::of(f));
                }
            }
        }
        findings
    }

    /// Reads the log `/v1/log` of URL `i` says it serves, which must be trusted, and starts
    /// following it (its state loaded) if no URL before served it.
    fn resolve(&mut self, i: usize) -> Result<usize, Finding> {
        let base = self.ledgers[i].url.clone();
        // The log the server says it is must be one the auditor trusts.
        let served: LogDescriptor =
            serde_json::from_slice(&fetch::get_bytes(&format!("{base}/v1/log"), None, 1 << 16).map_err(Finding::of)?)
                .map_err(|e| Finding::of(Failure::Unchecked(format!("{base}/v1/log: not a log descriptor: {e}"))))?;
        let desc = crate::trust::pick(self.trusted, &served, Path::new(&base)).map_err(Finding::fatal)?.clone();
        if let Some(log) = self.logs.iter().position(|l| l.desc.origin == desc.origin) {
            let other = &self.logs[log].desc;
            if *other != desc {
                // One origin, one state: checkpoints under two keys cannot be compared.
                return Err(Finding::fatal(Failure::Unchecked(format!(
                    "{base}: serves log {} under key {}, another URL serves it under key {}: give the URLs \
                     of one log version at a time",
                    desc.origin, desc.vkey, other.vkey
                ))));
            }
            return Ok(log);
        }
        let key = desc.verifier_key().map_err(|e| Finding::fatal(Failure::Unchecked(e.to_string())))?;
        let state = self.states.path(&desc.origin);
        let head = load_state(&state, &desc, &key).map_err(Finding::fatal)?;
        self.logs.push(Followed { desc, key, state, head });
        Ok(self.logs.len() - 1)
    }

    /// Fetches the checkpoint of `url`, which serves `log`, and checks its signature and the
    /// policy.
    fn fetch(&self, url: &str, log: &Followed) -> Result<(Checkpoint, String), Failure> {
        let note = String::from_utf8(fetch::get_bytes(&format!("{url}/v1/checkpoint"), None, 1 << 16)?)
            .map_err(|e| Failure::Unchecked(format!("{url}/v1/checkpoint: not UTF-8: {e}")))?;
        let cp = Checkpoint::open(&note, &log.key).map_err(|e| {
            caught(
                &log.state,
                "BAD CHECKPOINT",
                &log.desc,
                url,
                format!("/v1/checkpoint does not verify under the trusted key: {e}"),
                serde_json::json!({ "log": log.desc, "url": url, "checkpoint": note }),
            )
        })?;
        if let Some(policy) = self.policy {
            policy.verify(&note, Some(&log.key), crate::trust::unix_now()).map_err(|e| {
                caught(
                    &log.state,
                    "WITNESS QUORUM",
                    &log.desc,
                    url,
                    format!("/v1/checkpoint of size {} does not satisfy the trust policy: {e}", cp.size),
                    serde_json::json!({ "log": log.desc, "url": url, "checkpoint": note, "policy": policy.to_string() }),
                )
            })?;
        }
        Ok((cp, note))
    }

    /// Checks the checkpoint `cp` (`note`) of URL `i` against the head of `log`, and makes it
    /// the head when it is one. `vouched` holds the URLs (and sizes) verified against the head
    /// earlier in this round; `reached_all` says that every URL that may serve the log answered
    /// and passed its checks so far.
    fn check(
        &mut self,
        log: usize,
        i: usize,
        cp: &Checkpoint,
        note: &str,
        vouched: &[(usize, u64)],
        reached_all: bool,
    ) -> Result<Verdict, Failure> {
        let url = self.ledgers[i].url.as_str();
        let followed = &self.logs[log];
        let Some(head) = followed.head.as_ref() else {
            self.logs[log].head = Some(Head { cp: cp.clone(), note: note.to_string(), url: Some(url.to_string()) });
            return Ok(Verdict::Head(None));
        };
        // With one URL every checkpoint comes from the same source as the head; with several, a
        // replica may show an older note than the head without anything being wrong.
        let same_source = self.ledgers.len() == 1 || head.url.as_deref() == Some(url);
        let both = || {
            serde_json::json!({
                "log": followed.desc,
                "previous": head.note,
                "previous_url": head.url,
                "current": note,
                "current_url": url,
            })
        };
        let alarm = |what: &str, message: String, evidence: serde_json::Value| {
            caught(&followed.state, what, &followed.desc, url, message, evidence)
        };
        // A bus log's notes carry the signer's lease term (FORMATS §4): terms never go back, so a
        // lower one is a signer that lost its lease and still published (a fencing failure).
        // From another replica than the head's, an older term is only an alarm on a larger tree:
        // a replica that lags may still serve the note the old signer made of a smaller one.
        if let (Some(old), Some(new)) = (head.cp.lease_term(), cp.lease_term())
            && new < old
            && (same_source || cp.size > head.cp.size)
        {
            return Err(alarm(
                "LEASE WENT BACK",
                format!(
                    "a checkpoint signed under lease term {new} after one under term {old}: a signer that lost its lease published"
                ),
                both(),
            ));
        }
        if cp.size == head.cp.size {
            if cp.root != head.cp.root {
                // From two URLs of one log, this is a split view.
                return Err(alarm("FORK", format!("two checkpoints of size {} with different roots", cp.size), both()));
            }
            // A new note of the same tree (a bus log's new signer signs it under its own term)
            // becomes the head: the next one is checked against it. From another replica, only
            // one of a later term does, or two replicas would take turns.
            let later = match (cp.lease_term(), head.cp.lease_term()) {
                (Some(new), Some(old)) => new > old,
                _ => false,
            };
            if note != head.note && (same_source || later) {
                let was = head.cp.size;
                self.logs[log].head = Some(Head { cp: cp.clone(), note: note.to_string(), url: Some(url.to_string()) });
                return Ok(Verdict::Head(Some(was)));
            }
            return Ok(Verdict::Same { news: note != head.note || head.url.as_deref() != Some(url) });
        }
        if cp.size > head.cp.size {
            let (proof, answer) = self.proof(url, head.cp.size, cp.size)?;
            verify_consistency(followed.desc.hash, head.cp.size, cp.size, &head.cp.root, &cp.root, &proof).map_err(
                |e| {
                    let mut ev = both();
                    ev["consistency_proof"] = answer;
                    alarm(
                        "FORK",
                        format!(
                            "checkpoint {} is not an extension of the verified checkpoint {}: {e}",
                            cp.size, head.cp.size
                        ),
                        ev,
                    )
                },
            )?;
            let was = head.cp.size;
            self.logs[log].head = Some(Head { cp: cp.clone(), note: note.to_string(), url: Some(url.to_string()) });
            return Ok(Verdict::Head(Some(was)));
        }
        // A smaller tree than the head: a replica that lags if a URL that showed the head's size
        // proves it a prefix; with no such URL, a log that shrank when every URL was reached.
        let Some(prover) = vouched.iter().find(|(_, size)| *size >= head.cp.size).map(|(j, _)| &self.ledgers[*j].url)
        else {
            if reached_all {
                return Err(alarm(
                    "SHRINKING TREE",
                    format!("the log went from {} to {} entries", head.cp.size, cp.size),
                    both(),
                ));
            }
            return Err(Failure::Unchecked(format!(
                "{url}: checkpoint {} of log {} is behind the verified checkpoint {}, and no URL of that log \
                 verified in this round shows {} entries to prove it a prefix",
                cp.size, followed.desc.origin, head.cp.size, head.cp.size
            )));
        };
        let (proof, answer) = self.proof(prover, cp.size, head.cp.size)?;
        verify_consistency(followed.desc.hash, cp.size, head.cp.size, &cp.root, &head.cp.root, &proof).map_err(
            |e| {
                let mut ev = both();
                ev["consistency_proof"] = answer;
                ev["consistency_proof_url"] = prover.as_str().into();
                alarm(
                    "FORK",
                    format!(
                        "checkpoint {} is not a prefix of the verified checkpoint {} (proof from {prover}): {e}",
                        cp.size, head.cp.size
                    ),
                    ev,
                )
            },
        )?;
        Ok(Verdict::Prefix(head.cp.size))
    }

    /// The consistency proof from `from` to `to` that `url` serves, and its answer as it came. A
    /// malformed answer is the server's failure to answer, not evidence of a fork.
    fn proof(&self, url: &str, from: u64, to: u64) -> Result<(Vec<Hash>, serde_json::Value), Failure> {
        let url = format!("{url}/v1/proof/consistency?from={from}&to={to}");
        let body: serde_json::Value = serde_json::from_slice(&fetch::get_bytes(&url, self.token, 1 << 20)?)
            .map_err(|e| Failure::Unchecked(format!("{url}: not JSON: {e}")))?;
        let proof = body["proof"]
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
        Ok((proof, body["proof"].clone()))
    }

    /// Prints a verified checkpoint: a new head always, as `ORIGIN: checkpoint N verified[,
    /// consistent with M]`; with several URLs also the first sight of each other note in this
    /// process (another replica's copy of the head, or `, a prefix of M` for a replica that
    /// lags), and the URL it came from.
    fn show(&mut self, log: usize, i: usize, cp: &Checkpoint, note: &str, verdict: Verdict) {
        let several = self.ledgers.len() > 1;
        let ledger = &mut self.ledgers[i];
        let seen = ledger.shown.replace(note.to_string()).is_some_and(|s| s == note);
        let how = match verdict {
            Verdict::Head(was) => was.map(|w| format!(", consistent with {w}")).unwrap_or_default(),
            Verdict::Same { news: true } if several && !seen => String::new(),
            Verdict::Prefix(of) if !seen => format!(", a prefix of {of}"),
            Verdict::Same { .. } | Verdict::Prefix(_) => return,
        };
        let at = if several { format!(" ({})", ledger.url) } else { String::new() };
        println!("{}: checkpoint {} verified{how}{at}", self.logs[log].desc.origin, cp.size);
    }
}

#[cfg(test)]
mod tests {
    use super::state_file_name;

    #[test]
    fn state_file_names_keep_only_safe_bytes() {
        assert_eq!(state_file_name("ledger.example.com/prod"), "ledger.example.com%2Fprod.json");
        assert_eq!(state_file_name("a b%c/../é"), "a%20b%25c%2F..%2F%C3%A9.json");
        assert_eq!(state_file_name("Shard_1-x"), "Shard_1-x.json");
        // Two origins that differ only in an escaped byte keep two files.
        assert_ne!(state_file_name("a/b"), state_file_name("a%2Fb"));
    }
}
