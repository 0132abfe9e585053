//! The log's side of C2SP `tlog-witness`: a [`Cosigner`] takes each checkpoint a witnessed
//! [`Log`] signs, asks every witness of the operator's trust policy for a cosignature, and
//! publishes the checkpoint with the cosignatures it got once they satisfy the policy (SPEC §8,
//! docs/FORMATS.md §10).
//!
//! A *round* submits one checkpoint to every witness in parallel, each with a consistency proof
//! from the size that witness last cosigned. That size is learnt from the witness itself: the
//! first request says `old 0`, and a witness that has cosigned more answers 409 with its size
//! (`text/x.tlog.size`), after which the request is made again with a proof from there. A
//! network error or a 5xx is retried with a growing pause until the round's deadline; other
//! refusals are final for the round. The round ends when every witness has answered, or when
//! the quorum is met and every witness still out has already failed once (a witness that is
//! down delays nothing when the quorum holds without it), or at the deadline. Rounds follow
//! one another: the next takes the newest checkpoint signed by then, and a round that did not
//! publish is tried again after [`CosignerConfig::retry`] even if the log has not grown.
//!
//! Nothing here is trusted on the witnesses' word: each cosignature line is verified under the
//! policy's key for that witness before it is kept, and the note is published only when
//! [`Policy::evaluate`] says the quorum holds.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ledger_core::witness::Cosignature;
use ledger_core::{Log, Note, Policy, SignedCheckpoint, VerifierKey, WitnessKey, Witnessing};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// How the cosigner talks to witnesses.
#[derive(Clone, Debug)]
pub struct CosignerConfig {
    /// The most one round waits for its witnesses (requests and retries together).
    pub timeout: Duration,
    /// The pause before a round that did not publish is tried again on an idle log.
    pub retry: Duration,
}

impl Default for CosignerConfig {
    fn default() -> Self {
        CosignerConfig { timeout: Duration::from_secs(5), retry: Duration::from_secs(1) }
    }
}

/// One witness of the policy, as the cosigner sees it.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct WitnessStatus {
    /// Its name in the policy.
    pub name: String,
    /// The `add-checkpoint` URL asked.
    pub url: String,
    /// The size it last cosigned, as far as the cosigner knows (from a cosignature or a 409).
    pub cosigned_size: Option<u64>,
    /// Cosignatures received and verified.
    pub cosignatures: u64,
    /// Requests that got no cosignature (refused, failed, timed out).
    pub failures: u64,
    /// Why the last request got no cosignature, if it did not.
    pub last_error: Option<String>,
}

/// The outcome of the last round.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RoundOutcome {
    /// The size of the checkpoint submitted.
    pub size: u64,
    /// Whether the policy's quorum was met (and the checkpoint published).
    pub satisfied: bool,
    /// The witnesses whose cosignatures verified.
    pub cosigned: Vec<String>,
    /// The others, each with why.
    pub missing: Vec<String>,
}

/// Where witnessing stands, for `/healthz`, `/metrics` and `/v1/checkpoint`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CosignStatus {
    /// The policy's quorum (`none`, a witness or a group).
    pub quorum: String,
    /// The newest checkpoint signed.
    pub signed_size: u64,
    /// The newest checkpoint published (served).
    pub published_size: u64,
    /// The last round, once one has ended.
    pub last_round: Option<RoundOutcome>,
    /// Every witness of the policy, in policy order.
    pub witnesses: Vec<WitnessStatus>,
}

impl CosignStatus {
    /// Whether the newest signed checkpoint's round met the quorum (true before any round: a
    /// server that just started is not yet degraded).
    pub fn quorum_met(&self) -> bool {
        self.last_round.as_ref().is_none_or(|r| r.satisfied)
    }

    /// Why the log is degraded, when the last round did not meet the quorum: the quorum, who
    /// cosigned, who did not and why, and the checkpoint still served.
    pub fn degraded(&self) -> Option<String> {
        let r = self.last_round.as_ref().filter(|r| !r.satisfied)?;
        Some(format!(
            "witness quorum {} not met for checkpoint {}: cosigned by {}; missing {}; serving checkpoint {}",
            self.quorum,
            r.size,
            if r.cosigned.is_empty() { "none".to_string() } else { r.cosigned.join(", ") },
            r.missing.join(", "),
            self.published_size
        ))
    }
}

#[derive(Debug)]
struct Remote {
    name: String,
    key: WitnessKey,
    url: String,
}

#[derive(Debug)]
struct Inner {
    policy: Arc<Policy>,
    witnesses: Vec<Remote>,
    client: reqwest::Client,
    cfg: CosignerConfig,
    signed: watch::Sender<Option<Arc<SignedCheckpoint>>>,
    /// The size of the newest checkpoint whose round has ended (for [`Cosigner::settle`]).
    settled: watch::Sender<Option<u64>>,
    status: Mutex<Vec<WitnessStatus>>,
    last_round: Mutex<Option<RoundOutcome>>,
}

/// Collects witness cosignatures for a log and publishes its checkpoints. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Cosigner {
    inner: Arc<Inner>,
}

/// What a witness's answer to one request means for the round.
enum Answer {
    /// Verified cosignature lines of its key.
    Cosigned(Vec<String>),
    /// A 409: it has cosigned `size`, not the old size sent.
    Conflict(u64),
    /// A refusal that asking again will not change.
    Refused(String),
    /// A network error, a timeout or a 5xx: worth another try.
    Failed(String),
}

/// Events of one round's witness tasks.
enum Event {
    /// The first attempt failed; the task keeps trying until the deadline.
    FailedOnce(usize),
    /// The task ended with cosignature lines or why not.
    Done(usize, Result<Vec<String>, String>),
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Cosigner {
    /// A cosigner under `policy`, whose every witness must have a URL (the C2SP `tlog-witness`
    /// prefix; requests go to `<url>/add-checkpoint`).
    pub fn new(policy: Policy, cfg: CosignerConfig) -> anyhow::Result<Cosigner> {
        let mut witnesses = Vec::new();
        for w in policy.witnesses() {
            let Some(url) = &w.url else {
                anyhow::bail!(
                    "witness {:?} of the policy has no URL: the log cannot ask it for cosignatures \
                     (write `witness {} {} <url>`)",
                    w.name,
                    w.name,
                    w.key
                );
            };
            let url = format!("{}/add-checkpoint", url.trim_end_matches('/'));
            reqwest::Url::parse(&url).map_err(|e| anyhow::anyhow!("witness {:?}: URL {url:?}: {e}", w.name))?;
            witnesses.push(Remote { name: w.name.clone(), key: w.key.clone(), url });
        }
        let client = reqwest::Client::builder()
            .user_agent(concat!("a2a-ledger/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(cfg.timeout)
            .build()?;
        let status = witnesses
            .iter()
            .map(|w| WitnessStatus { name: w.name.clone(), url: w.url.clone(), ..WitnessStatus::default() })
            .collect();
        Ok(Cosigner {
            inner: Arc::new(Inner {
                policy: Arc::new(policy),
                witnesses,
                client,
                cfg,
                signed: watch::channel(None).0,
                settled: watch::channel(None).0,
                status: Mutex::new(status),
                last_round: Mutex::new(None),
            }),
        })
    }

    /// [`Cosigner::new`] for the trust policy in the file `path`, asking each witness for at most
    /// `timeout` per round (the default when `None`); errors name the file.
    pub fn from_file(path: &std::path::Path, timeout: Option<Duration>) -> anyhow::Result<Cosigner> {
        use anyhow::Context as _;
        let text = std::fs::read(path).with_context(|| format!("reading the witness policy {}", path.display()))?;
        let policy = Policy::parse(&text).with_context(|| format!("witness policy {}", path.display()))?;
        let d = CosignerConfig::default();
        let cfg = CosignerConfig { timeout: timeout.unwrap_or(d.timeout), ..d };
        Cosigner::new(policy, cfg).with_context(|| format!("witness policy {}", path.display()))
    }

    /// The [`Witnessing`] to open the log with: what it signs comes here; a stored checkpoint
    /// is served again at open only if it still satisfies the policy.
    pub fn witnessing(&self) -> Witnessing {
        let accepts = {
            let policy = self.inner.policy.clone();
            Arc::new(move |note: &str, key: &VerifierKey| {
                policy.evaluate(note, Some(key), now_secs()).is_ok_and(|r| r.satisfied)
            })
        };
        let tx = self.inner.signed.clone();
        Witnessing {
            accepts,
            signed: Arc::new(move |cp| {
                tx.send_replace(Some(cp));
            }),
        }
    }

    /// Runs rounds for `log` (opened with [`Cosigner::witnessing`]) until the task is aborted.
    /// Refused when the policy has `log` lines and none is this log's key.
    pub fn spawn(&self, log: Arc<Log>) -> anyhow::Result<tokio::task::JoinHandle<()>> {
        let key = log.descriptor().verifier_key()?;
        self.inner.policy.check_log(&key)?;
        let inner = self.inner.clone();
        Ok(tokio::spawn(async move { inner.run(log, key).await }))
    }

    /// The most one round waits for its witnesses.
    pub fn timeout(&self) -> Duration {
        self.inner.cfg.timeout
    }

    /// The trust policy.
    pub fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    /// Where witnessing stands.
    pub fn status(&self, log: &Log) -> CosignStatus {
        CosignStatus {
            quorum: self.inner.policy.quorum_name().to_string(),
            signed_size: log.signed_checkpoint().checkpoint.size,
            published_size: log.checkpoint().checkpoint.size,
            last_round: self.inner.last_round.lock().expect("round lock").clone(),
            witnesses: self.inner.status.lock().expect("status lock").clone(),
        }
    }

    /// Waits until a round for a checkpoint of at least `size` has ended, up to `timeout`;
    /// whether one has. For a server that signs a final checkpoint at shutdown.
    pub async fn settle(&self, size: u64, timeout: Duration) -> bool {
        let mut rx = self.inner.settled.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|s| s.is_some_and(|s| s >= size))).await.is_ok_and(|r| r.is_ok())
    }
}

impl Inner {
    async fn run(self: Arc<Self>, log: Arc<Log>, key: VerifierKey) {
        let mut rx = self.signed.subscribe();
        loop {
            let cp = rx.borrow_and_update().clone();
            let mut published = true;
            if let Some(cp) = cp {
                let served = log.checkpoint();
                let done = cp.checkpoint.size < served.checkpoint.size
                    || (cp.checkpoint.size == served.checkpoint.size && !served.note.is_empty());
                if !done {
                    published = self.round(&log, &key, &cp).await;
                }
                self.settled.send_replace(Some(cp.checkpoint.size));
            }
            // The next round: a newer checkpoint, or (after a round that did not publish) the
            // same one again once `retry` has passed.
            if published {
                if rx.changed().await.is_err() {
                    return;
                }
            } else {
                tokio::select! {
                    r = rx.changed() => if r.is_err() { return },
                    _ = tokio::time::sleep(self.cfg.retry) => {}
                }
            }
        }
    }

    /// One round for `cp`; whether it was published.
    async fn round(self: &Arc<Self>, log: &Arc<Log>, key: &VerifierKey, cp: &Arc<SignedCheckpoint>) -> bool {
        let deadline = Instant::now() + self.cfg.timeout;
        let n = self.witnesses.len();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..n {
            let (me, log, cp, tx) = (self.clone(), log.clone(), cp.clone(), tx.clone());
            tasks.spawn(async move {
                let r = me.submit(i, &log, &cp, deadline, &tx).await;
                let _ = tx.send(Event::Done(i, r));
            });
        }
        drop(tx);

        let mut lines: Vec<Option<Vec<String>>> = vec![None; n];
        let mut answered = vec![false; n];
        let mut failed_once = vec![false; n];
        let note_with = |lines: &[Option<Vec<String>>]| {
            let mut note = cp.note.clone();
            for l in lines.iter().flatten().flatten() {
                note.push_str(l);
            }
            note
        };
        loop {
            let event = tokio::select! {
                e = rx.recv() => e,
                _ = tokio::time::sleep_until(deadline) => None,
            };
            match event {
                None => break,
                Some(Event::FailedOnce(i)) => failed_once[i] = true,
                Some(Event::Done(i, r)) => {
                    answered[i] = true;
                    match r {
                        Ok(l) => lines[i] = Some(l),
                        Err(e) => self.failed(i, e),
                    }
                }
            }
            if answered.iter().all(|&a| a) {
                break;
            }
            let waiting_on_first_try = (0..n).any(|i| !answered[i] && !failed_once[i]);
            if !waiting_on_first_try
                && self.policy.evaluate(&note_with(&lines), Some(key), now_secs()).is_ok_and(|r| r.satisfied)
            {
                break;
            }
        }
        // Witnesses still out when the round ends are given up on for this round.
        for i in (0..n).filter(|&i| !answered[i]) {
            self.failed(i, format!("no cosignature within {:?}", self.cfg.timeout));
        }
        tasks.abort_all();

        let note = note_with(&lines);
        let outcome = match self.policy.evaluate(&note, Some(key), now_secs()) {
            Ok(report) => RoundOutcome {
                size: cp.checkpoint.size,
                satisfied: report.satisfied,
                cosigned: report.cosigned().into_iter().map(str::to_string).collect(),
                missing: report.not_cosigned(),
            },
            Err(e) => RoundOutcome {
                size: cp.checkpoint.size,
                satisfied: false,
                cosigned: vec![],
                missing: vec![format!("the log's own signature: {e}")],
            },
        };
        let mut published = false;
        if outcome.satisfied {
            let publishing = log.clone();
            match tokio::task::spawn_blocking(move || publishing.publish(&note)).await {
                Ok(Ok(_)) => published = true,
                Ok(Err(e)) => eprintln!("a2a-ledger: publishing checkpoint {}: {e}", cp.checkpoint.size),
                Err(e) => eprintln!("a2a-ledger: publishing checkpoint {}: {e}", cp.checkpoint.size),
            }
        } else {
            eprintln!(
                "a2a-ledger: checkpoint {} not published: quorum {} not met (cosigned: {}; missing: {})",
                cp.checkpoint.size,
                self.policy.quorum_name(),
                if outcome.cosigned.is_empty() { "none".to_string() } else { outcome.cosigned.join(", ") },
                outcome.missing.join(", ")
            );
        }
        *self.last_round.lock().expect("round lock") = Some(outcome);
        published
    }

    fn failed(&self, i: usize, why: String) {
        let mut st = self.status.lock().expect("status lock");
        st[i].failures += 1;
        st[i].last_error = Some(why);
    }

    /// Asks witness `i` to cosign `cp` until it answers for good or `deadline` passes.
    async fn submit(
        &self,
        i: usize,
        log: &Arc<Log>,
        cp: &SignedCheckpoint,
        deadline: Instant,
        events: &mpsc::UnboundedSender<Event>,
    ) -> Result<Vec<String>, String> {
        let w = &self.witnesses[i];
        let size = cp.checkpoint.size;
        let mut old = self.status.lock().expect("status lock")[i].cosigned_size.unwrap_or(0);
        let mut conflicts = 0;
        let mut pause = Duration::from_millis(50);
        let mut failures = 0;
        loop {
            if old > size {
                return Err(format!("it has cosigned size {old}, beyond checkpoint {size}"));
            }
            let proof = if old == 0 || old == size {
                Vec::new()
            } else {
                let log = log.clone();
                tokio::task::spawn_blocking(move || log.consistency_proof(old, size))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| format!("consistency proof {old} -> {size}: {e}"))?
            };
            let mut body = format!("old {old}\n");
            for h in &proof {
                body.push_str(&B64.encode(h));
                body.push('\n');
            }
            body.push('\n');
            body.push_str(&cp.note);

            match self.ask(w, body, deadline, &cp.note).await {
                Answer::Cosigned(lines) => {
                    let mut st = self.status.lock().expect("status lock");
                    st[i].cosigned_size = Some(size);
                    st[i].cosignatures += 1;
                    st[i].last_error = None;
                    return Ok(lines);
                }
                Answer::Conflict(theirs) => {
                    self.status.lock().expect("status lock")[i].cosigned_size = Some(theirs);
                    // Its size is the one we sent: it holds another tree of that size.
                    if theirs == old || conflicts == 2 {
                        return Err(format!(
                            "409: it has cosigned size {theirs} with another root hash than this log's (a split view?)"
                        ));
                    }
                    conflicts += 1;
                    old = theirs;
                }
                Answer::Refused(why) => return Err(why),
                Answer::Failed(why) => {
                    failures += 1;
                    if failures == 1 {
                        let _ = events.send(Event::FailedOnce(i));
                    }
                    if Instant::now() + pause >= deadline {
                        return Err(why);
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
            }
        }
    }

    /// One `add-checkpoint` request.
    async fn ask(&self, w: &Remote, body: String, deadline: Instant, note: &str) -> Answer {
        let left = deadline.saturating_duration_since(Instant::now());
        let resp = match self.client.post(&w.url).timeout(left).body(body).send().await {
            Ok(r) => r,
            Err(e) => return Answer::Failed(format!("{}: {e}", w.url)),
        };
        let status = resp.status().as_u16();
        let size_body = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/x.tlog.size"));
        let text = match resp.text().await {
            Ok(t) => t,
            Err(e) => return Answer::Failed(format!("{}: reading the answer: {e}", w.url)),
        };
        match status {
            200 => {
                let note_text = match Note::parse(note) {
                    Ok(n) => n.text().to_string(),
                    Err(e) => return Answer::Refused(format!("the log's own note does not parse: {e}")),
                };
                // Keep the lines of this witness's key that verify; ignore any other line.
                let lines: Vec<String> = text
                    .split_inclusive('\n')
                    .filter(|l| {
                        Cosignature::parse_line(l).is_ok_and(|c| {
                            let sig = c.to_note_signature();
                            w.key.is_signer_of(&sig) && w.key.verify(&note_text, &sig).is_ok()
                        })
                    })
                    .map(|l| if l.ends_with('\n') { l.to_string() } else { format!("{l}\n") })
                    .collect();
                if lines.is_empty() {
                    Answer::Refused(format!("200 without a cosignature that verifies under {}", w.key))
                } else {
                    Answer::Cosigned(lines)
                }
            }
            409 if size_body => match text.trim_end_matches('\n').parse::<u64>() {
                Ok(size) => Answer::Conflict(size),
                Err(_) => Answer::Refused(format!("409 with a size body that is not a number: {text:?}")),
            },
            500..=599 => Answer::Failed(format!("{status}: {}", text.trim_end())),
            _ => Answer::Refused(format!("{status}: {}", text.trim_end())),
        }
    }
}
