//! The task engine: every caller surface (A2A JSON-RPC and HTTP+JSON, the platform REST,
//! `/invoke`) creates and follows runs through it.
//!
//! One run = one A2A task = one ledger run. Each task has a driver (a tokio task) that owns the
//! run's [`RunRecorder`] and turns every [`Update`] of the upstream into a ledger entry and an
//! A2A event, in that order. Rules kept here:
//! - a task exists for callers only after its `task.accepted` entry is durable; if it cannot be
//!   recorded, the task is refused and the agent is never called;
//! - every event of a task goes into its event buffer ([`crate::engine::buffer`]), in one order;
//! - what an update becomes is [`crate::engine::updates::map_update`]'s, a pure function;
//! - the terminal event is published only after the end entry and the seal are durable, so a
//!   caller told "completed" can fetch the receipt;
//! - a task's owner (the authenticated caller who created it) is the only caller who sees it.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use a2a::{Message, StreamResponse, Task, TaskState, TaskStatus};
use chrono::Utc;
use ledger_core::{Entry, Event, NamedKey, Protocol, RunId, RunStatus};
use opentelemetry::KeyValue;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use crate::base::BoxFuture;
use crate::base::metrics::{labelled, latency};
use crate::base::now_ns;
use crate::base::telemetry::{RunTrace, SpanGuard};
use crate::engine::buffer::{Control, GrantState, Snapshot, TaskHandle, TaskInner, state_name};
use crate::engine::grants::Grants;
use crate::engine::manifest::{AgentSpec, Manifest, SkillSpec, UpstreamSpec};
use crate::engine::rebuild::{Rebuilt, rebuild, wanted};
use crate::engine::recorder::{Pending, RunRecorder, RunStart, Transition};
use crate::engine::skills::SkillRoute;
use crate::engine::updates::{Ending, Step, TaskIds, agent_message, ending, map_update, outcome_payload, status_event};
use crate::engine::upstream::{self, Call, CallGrant, Outcome, Resume, Update, Upstream};
use crate::ledger::{Durable, LedgerSink, Payload, RunsBy};

/// How long a canceled upstream gets to stop before the run is ended as canceled without it.
const CANCEL_GRACE: Duration = Duration::from_secs(5);

/// Longest a transition waits to be submitted together with the ones after it.
const LINGER: Duration = Duration::from_millis(2);

/// Most transitions held back at once.
const MAX_STAGED: usize = 64;

/// Holds a transition back for up to [`LINGER`].
fn hold(
    staged: &mut Vec<Transition>,
    flush_at: &mut Option<tokio::time::Instant>,
    e: Event,
    payload: Option<[u8; 32]>,
) {
    if staged.is_empty() {
        *flush_at = Some(tokio::time::Instant::now() + LINGER);
    }
    staged.push(Transition { event: e, ts: now_ns(), payload });
}

pub use crate::engine::upstream::RESTARTED;

/// The names of the artifacts a run's entries added.
fn rec_artifacts(raw: &[(u64, Vec<u8>)]) -> Vec<String> {
    rec_artifact_digests(raw).into_iter().map(|(name, _)| name).collect()
}

/// The artifacts a run's entries added: (name, BLAKE3 of the canonical parts).
fn rec_artifact_digests(raw: &[(u64, Vec<u8>)]) -> Vec<(String, [u8; 32])> {
    raw.iter()
        .filter_map(|(_, b)| match Entry::decode(b).ok()?.event {
            Event::ArtifactAdded { name, hash, .. } => Some((name, hash)),
            _ => None,
        })
        .collect()
}

/// Why an operation on tasks failed; each maps to an A2A error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError {
    /// No such task (or not the caller's).
    #[error("task not found: {0}")]
    NotFound(String),
    /// The task has ended and cannot be canceled.
    #[error("task {0} has already ended ({1}) and cannot be canceled")]
    NotCancelable(String, String),
    /// The operation does not apply to the task in its state.
    #[error("{0}")]
    Unsupported(String),
    /// Bad parameters.
    #[error("{0}")]
    InvalidParams(String),
    /// The input does not match the skill's input schema (nothing was recorded or run).
    #[error("{0}")]
    InvalidInput(String),
    /// The run could not be recorded, so it was not started.
    #[error("the run could not be recorded, so it was not started: {0}")]
    RecordingUnavailable(String),
    /// The input is larger than the payload store takes (nothing was recorded or run).
    #[error("{0}")]
    TooLarge(String),
    /// The ledger could not be read (the task may exist; nothing was changed).
    #[error("the ledger could not be read: {0}")]
    LedgerUnavailable(String),
}

/// An agent of the manifest with its upstream.
#[derive(Debug)]
pub struct Agent {
    /// Its manifest entry.
    pub spec: AgentSpec,
    /// Where its calls go.
    pub upstream: Arc<dyn Upstream>,
}

/// Counters for `/metrics` (prometheus-client handles: clones share the value).
#[derive(Debug)]
pub struct Counters {
    /// Tasks accepted.
    pub accepted: Counter,
    /// Tasks refused because recording was unavailable.
    pub refused: Counter,
    /// Runs sealed, by `status`.
    pub sealed: Family<Vec<(String, String)>, Counter>,
    /// Runs whose recording failed after they started.
    pub unrecorded: Counter,
    /// Runs in progress (a watch, so shutdown can wait for zero).
    pub running: watch::Sender<u64>,
    /// From acceptance to the durable seal.
    pub run_seconds: prometheus_client::metrics::histogram::Histogram,
}

impl Default for Counters {
    fn default() -> Counters {
        Counters {
            accepted: Counter::default(),
            refused: Counter::default(),
            sealed: Family::default(),
            unrecorded: Counter::default(),
            running: watch::Sender::default(),
            run_seconds: latency(),
        }
    }
}

/// Where a new task comes from.
#[derive(Debug)]
pub struct NewTask {
    /// The authenticated caller.
    pub caller: String,
    /// The surface it came in over.
    pub protocol: Protocol,
    /// The skill id.
    pub skill: String,
    /// The skill input.
    pub input: Value,
    /// The bytes whose BLAKE3 is recorded as `input_hash`.
    pub input_bytes: Vec<u8>,
    /// The user message (synthesised for `/invoke` and the platform REST).
    pub message: Message,
    /// The context id (a new one when `None`).
    pub context_id: Option<String>,
    /// The run this one is started for (SPEC 1.1 `parent`), already checked by the surface.
    pub parent: Option<String>,
    /// An MCP caller's declarations, passed on to the call (`None` on other surfaces).
    pub mcp_caller: Option<upstream::McpCaller>,
}

/// A one-shot call of an agent's upstream that is not a skill (an MCP resource read or prompt
/// get, [`Engine::create_one_shot`]): the run records it like a skill call (`task.accepted`
/// naming the task's `skill`, its updates, the end, the seal), with no input schema to check and
/// no workspace scope.
#[derive(Clone, Debug)]
pub struct OneShot {
    /// The agent (its index in the manifest).
    pub agent: usize,
    /// What makes the call.
    pub upstream: Arc<dyn Upstream>,
}

/// What [`Engine::recover`] did with the runs left in flight.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Runs ended as failed (or whose missing seal was added), sealed.
    pub ended: Vec<String>,
    /// Runs live again, following their upstream task.
    pub resumed: Vec<String>,
}

/// A run's upstream task as kept in `<data>/upstream-tasks/<hex of run>.json` (docs/FORMATS.md §9).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct KeptUpstream {
    /// The manifest agent the run's skill belongs to.
    agent: String,
    /// The upstream's task id.
    task: String,
    /// The upstream's context id.
    context: String,
}

/// What a call is made of, beside its run.
struct CallInput {
    skill: String,
    input: Value,
    message: Message,
    grant: Option<CallGrant>,
    mcp_caller: Option<upstream::McpCaller>,
    /// Runs the call instead of the agent's upstream (a [`OneShot`]).
    upstream: Option<Arc<dyn Upstream>>,
}

/// How a driver's upstream call starts.
enum Start {
    /// A new call.
    Run,
    /// A call of a process that died, followed on.
    Resume(Resume),
}

/// What a driver drives: the upstream call's future and the channels around it.
struct Driven {
    worker: BoxFuture<'static, ()>,
    call_span: SpanGuard,
    updates: mpsc::Receiver<Update>,
    control: mpsc::Receiver<Control>,
    follow_ups: mpsc::Sender<Message>,
    /// The names of the artifacts the run's entries already hold.
    recorded: Vec<String>,
    /// The run was left in flight by a process that died.
    resumed: bool,
}

/// The task engine.
#[derive(Debug)]
pub struct Engine {
    sink: Arc<dyn LedgerSink>,
    key: Arc<NamedKey>,
    agents: Vec<Agent>,
    skills: HashMap<String, SkillRoute>,
    default_skill: Option<String>,
    grants: Arc<Grants>,
    tasks: Mutex<TaskIndex>,
    retention: usize,
    public_url: String,
    /// Keep payloads (`[payloads] keep`); off, only their hashes are recorded.
    keep_payloads: bool,
    /// How long an ended task is served from memory before it is read from the ledger again.
    cache_ttl: Duration,
    /// Set by [`Engine::shutdown`]: new tasks are refused.
    closing: std::sync::atomic::AtomicBool,
    /// Where the upstream task of each run in flight is kept (`<data>/upstream-tasks`), so a run
    /// can be resumed after a restart; `None`: not kept, runs left in flight are ended.
    upstream_tasks: Option<PathBuf>,
    /// Counters.
    pub counters: Counters,
}

#[derive(Debug, Default)]
struct TaskIndex {
    by_id: HashMap<String, Arc<TaskHandle>>,
    /// Ended tasks, oldest first, for retention.
    ended: VecDeque<String>,
    /// When each ended task was cached: after [`Engine::set_cache_ttl`] it is read from the
    /// ledger again (an erasure done at a remote ledger shows then).
    cached_at: HashMap<String, std::time::Instant>,
}

impl Engine {
    /// Builds the engine over a manifest. `public_url` is the base of receipt links.
    pub fn new(
        manifest: &Manifest,
        sink: Arc<dyn LedgerSink>,
        key: Arc<NamedKey>,
        http: &reqwest::Client,
        grants: Arc<Grants>,
        public_url: String,
        retention: usize,
    ) -> Engine {
        let mut agents = Vec::new();
        let mut skills = HashMap::new();
        let mut default_skill = None;
        for (i, spec) in manifest.agents.iter().enumerate() {
            for s in &spec.skills {
                default_skill.get_or_insert_with(|| s.id.clone());
                skills.insert(s.id.clone(), SkillRoute::new(i, s.clone()));
            }
            agents.push(Agent { spec: spec.clone(), upstream: upstream::build(&spec.upstream, http) });
        }
        Engine {
            sink,
            key,
            agents,
            skills,
            default_skill,
            grants,
            tasks: Mutex::new(TaskIndex::default()),
            retention: retention.max(1),
            public_url: public_url.trim_end_matches('/').to_string(),
            keep_payloads: true,
            cache_ttl: Duration::from_secs(60),
            closing: std::sync::atomic::AtomicBool::new(false),
            upstream_tasks: None,
            counters: Counters::default(),
        }
    }

    /// How long an ended task is served from memory before it is rebuilt from the ledger
    /// (`task_cache_secs`, default 60): what changed at the ledger since (an erasure made at a
    /// remote ledger-server) shows after at most this long.
    pub fn set_cache_ttl(&mut self, ttl: Duration) {
        self.cache_ttl = ttl;
    }

    /// Keeps the upstream task of each run in flight under `dir` (docs/FORMATS.md §9), so runs of
    /// an `a2a` upstream left in flight are resumed at the next start.
    pub fn set_upstream_tasks(&mut self, dir: PathBuf) {
        self.upstream_tasks = Some(dir);
    }

    /// Keeps payloads (the default) or, `false`, records their hashes only.
    pub fn set_keep_payloads(&mut self, keep: bool) {
        self.keep_payloads = keep;
    }

    /// Adds skills learnt at start (an `a2a` upstream's card) to agent `agent`.
    pub fn add_skills(&mut self, agent: usize, learnt: Vec<SkillSpec>) {
        for s in learnt {
            if self.skills.contains_key(&s.id) {
                continue;
            }
            self.agents[agent].spec.skills.push(s.clone());
            self.skills.insert(s.id.clone(), SkillRoute::new(agent, s));
        }
        // The default stays the first skill of the first agent, in manifest order.
        self.default_skill = self.agents.iter().flat_map(|a| a.spec.skills.first()).next().map(|s| s.id.clone());
    }

    /// The agents.
    pub fn agents(&self) -> &[Agent] {
        &self.agents
    }

    /// The ledger sink.
    pub fn sink(&self) -> &Arc<dyn LedgerSink> {
        &self.sink
    }

    /// The gateway's identity.
    pub fn key(&self) -> &Arc<NamedKey> {
        &self.key
    }

    /// The skill `id`, if any agent serves it.
    pub fn skill(&self, id: &str) -> Option<&SkillRoute> {
        self.skills.get(id)
    }

    /// The skill an A2A message without an explicit one goes to.
    pub fn default_skill_for(&self, m: &Message) -> Option<String> {
        let first = self.default_skill.as_ref()?;
        let route = self.skills.get(first)?;
        if matches!(self.agents[route.agent].spec.upstream, UpstreamSpec::Demo)
            && let Some(s) = upstream::demo::skill_for_message(m)
            && self.skills.contains_key(s)
        {
            return Some(s.to_string());
        }
        Some(first.clone())
    }

    /// The receipt link of a run.
    pub fn receipt_url(&self, run: &str) -> String {
        format!("{}/runs/{run}/receipt", self.public_url)
    }

    /// The base URL links are built on.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// The grant issuer.
    pub fn grants(&self) -> &Arc<Grants> {
        &self.grants
    }

    /// The task `id`, whoever owns it (for its agent's workspace calls, which carry a grant).
    pub fn task(&self, id: &str) -> Option<Arc<TaskHandle>> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner()).by_id.get(id).cloned()
    }

    /// Records `events` in a running task (after what its driver holds back), optionally
    /// switching its grant and publishing a status; resolves when they are durable.
    pub async fn record(
        &self,
        h: &TaskHandle,
        events: Vec<Event>,
        set_grant: Option<String>,
        status: Option<(TaskState, Option<String>)>,
    ) -> Result<ledger_core::Result<Durable>, TaskError> {
        let control = h.lock().control.clone();
        let ended = || TaskError::Unsupported(format!("task {} has ended; its workspace is closed", h.id));
        let control = control.ok_or_else(ended)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        control.send(Control::Record { events, set_grant, status, reply: tx }).await.map_err(|_| ended())?;
        let pending = rx.await.map_err(|_| ended())?;
        Ok(pending.wait().await)
    }

    /// The task `id` if `caller` may see it: live or cached here, else rebuilt from the ledger.
    /// Ownership is `task.accepted`'s `caller`; another caller's task is "not found".
    pub async fn get(&self, id: &str, caller: &str) -> Result<Arc<TaskHandle>, TaskError> {
        let h = self.get_cached_or_load(id).await?;
        match h {
            Some(h) if h.owner == caller => Ok(h),
            _ => Err(TaskError::NotFound(id.to_string())),
        }
    }

    /// Drops ended task `id` from the cache (its payloads changed: an erasure), so the next
    /// read rebuilds it from the ledger. A live task stays.
    pub fn forget(&self, id: &str) {
        self.take_cached(id);
    }

    /// Stores payloads through the sink, each before any entry naming it is submitted (nothing
    /// when payloads are not kept).
    pub async fn keep(&self, payloads: Vec<([u8; 32], Vec<u8>)>) -> ledger_core::Result<()> {
        if !self.keep_payloads {
            return Ok(());
        }
        for (hash, bytes) in payloads {
            self.sink.put_payload(hash, bytes.into()).await?;
        }
        Ok(())
    }

    /// Rebuilds task `id` from its run's entries and payloads (`None`: the log has no such task
    /// run). An ended task joins the bounded cache; an unfinished one is read again next time
    /// (its own gateway may still be recording it).
    pub async fn load(&self, id: &str) -> Result<Option<Arc<TaskHandle>>, TaskError> {
        let unavailable = |e: ledger_core::Error| TaskError::LedgerUnavailable(e.to_string());
        if RunId::new(id).is_err() {
            return Ok(None);
        }
        let raw = self.sink.run_entries(id).await.map_err(unavailable)?;
        let Some(r) = self.rebuild_run(id, &raw).await? else { return Ok(None) };
        let agent = self.skills.get(&r.skill).map(|s| self.agents[s.agent].spec.name.clone()).unwrap_or_default();
        let ended = r.ended && r.sealed;
        let handle = Arc::new(TaskHandle::rebuilt(r, agent));
        if ended {
            let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(live) = tasks.by_id.get(id) {
                return Ok(Some(live.clone()));
            }
            tasks.by_id.insert(id.to_string(), handle.clone());
            drop(tasks);
            self.retire(id);
        }
        Ok(Some(handle))
    }

    /// Rebuilds run `id` from its durable entries `raw` and the payloads they name (`None`: not
    /// a task run).
    async fn rebuild_run(&self, id: &str, raw: &[(u64, Vec<u8>)]) -> Result<Option<Rebuilt>, TaskError> {
        let unavailable = |e: ledger_core::Error| TaskError::LedgerUnavailable(e.to_string());
        if raw.is_empty() {
            return Ok(None);
        }
        let entries =
            raw.iter().map(|(_, b)| Entry::decode(b)).collect::<ledger_core::Result<Vec<_>>>().map_err(unavailable)?;
        let hashes = wanted(&entries);
        let fetched = futures_util::future::try_join_all(hashes.iter().map(|h| self.sink.payload(*h)))
            .await
            .map_err(unavailable)?;
        let payloads: HashMap<[u8; 32], Payload> = hashes.into_iter().zip(fetched).collect();
        Ok(rebuild(id, &entries, &payloads, &self.receipt_url(id)).ok())
    }

    /// A page of `caller`'s tasks, newest first (by when they were accepted), from the ledger's
    /// run catalog: those of context `context` when given, those `keep` keeps, with a
    /// `task.accepted` index below `before`. Returns the page as (index, task), the `before` of
    /// the next page (`None` on the last) and the total the listing has over all pages.
    ///
    /// Without a filter beyond the caller, the page costs `limit` task reads and the total is
    /// the catalog's count; a filter (context, status, time) reads every candidate task to
    /// count them.
    pub async fn list(
        &self,
        caller: &str,
        context: Option<&str>,
        keep: &(dyn Fn(&Task) -> bool + Sync),
        filtered: bool,
        before: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<(u64, Arc<TaskHandle>)>, Option<u64>, u64), TaskError> {
        let unavailable = |e: ledger_core::Error| TaskError::LedgerUnavailable(e.to_string());
        let by = match context {
            Some(c) => RunsBy::Context(c.to_string()),
            None => RunsBy::Caller(caller.to_string()),
        };
        let exact = context.is_none() && !filtered;
        let mut page = Vec::new();
        let mut total = 0u64;
        let mut more = false;
        let mut cursor: Option<u64> = None;
        loop {
            let batch = if exact { limit + 1 } else { 256 };
            let scan_from = if exact { before } else { cursor };
            let got = self.sink.runs(by.clone(), scan_from, batch).await.map_err(unavailable)?;
            if exact {
                total = got.total;
            }
            let n = got.runs.len();
            for r in &got.runs {
                cursor = Some(r.index);
                let Some(h) = self.get_cached_or_load(&r.run).await? else { continue };
                if h.owner != caller || !keep(&h.snapshot().task) {
                    continue;
                }
                if !exact {
                    total += 1;
                }
                if before.is_some_and(|b| r.index >= b) {
                    continue;
                }
                if page.len() < limit {
                    page.push((r.index, h));
                } else {
                    more = true;
                    if exact {
                        break;
                    }
                }
            }
            if exact || n < batch {
                break;
            }
        }
        let next = if more { page.last().map(|(i, _)| *i) } else { None };
        Ok((page, next, total))
    }

    /// The skill a new message in `caller`'s context `context` that names none goes to: one of
    /// the agent that served the caller's newest task there (for the demo agent, the one its
    /// text names; otherwise the agent's first), so the conversation stays with its agent.
    pub async fn context_skill(&self, caller: &str, context: &str, m: &Message) -> Result<Option<String>, TaskError> {
        let unavailable = |e: ledger_core::Error| TaskError::LedgerUnavailable(e.to_string());
        let page = self.sink.runs(RunsBy::Context(context.to_string()), None, 16).await.map_err(unavailable)?;
        for r in page.runs {
            let Some(h) = self.get_cached_or_load(&r.run).await? else { continue };
            let Some(route) = self.skills.get(&h.skill).filter(|_| h.owner == caller) else { continue };
            let agent = &self.agents[route.agent];
            if matches!(agent.spec.upstream, UpstreamSpec::Demo)
                && let Some(s) = upstream::demo::skill_for_message(m)
                && self.skills.contains_key(s)
            {
                return Ok(Some(s.to_string()));
            }
            return Ok(agent.spec.skills.first().map(|s| s.id.clone()));
        }
        Ok(None)
    }

    /// A live task, an ended one cached less than the cache's time ago, else the task rebuilt
    /// from the ledger.
    async fn get_cached_or_load(&self, id: &str) -> Result<Option<Arc<TaskHandle>>, TaskError> {
        let cached = {
            let tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
            let stale = tasks.cached_at.get(id).is_some_and(|at| at.elapsed() >= self.cache_ttl);
            tasks.by_id.get(id).filter(|_| !stale).cloned()
        };
        if let Some(h) = cached {
            return Ok(Some(h));
        }
        // Stale or absent: read again. An ended task the ledger does not show ended yet (its
        // seal still in a remote ledger's spool) stays as it was.
        let old = self.take_cached(id);
        let fresh = self.load(id).await?;
        match (fresh, old) {
            (Some(f), _) if f.is_ended() => Ok(Some(f)),
            (_, Some(old)) => {
                let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
                tasks.by_id.insert(id.to_string(), old.clone());
                drop(tasks);
                self.retire(id);
                Ok(Some(old))
            }
            (fresh, None) => Ok(fresh),
        }
    }

    /// Takes ended task `id` out of the cache (a live one stays).
    fn take_cached(&self, id: &str) -> Option<Arc<TaskHandle>> {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        if !tasks.by_id.get(id).is_some_and(|h| h.snapshot().closed) {
            return None;
        }
        tasks.ended.retain(|t| t != id);
        tasks.cached_at.remove(id);
        tasks.by_id.remove(id)
    }

    /// Takes up every run this gateway's identity left open — accepted, never sealed, and not
    /// running here: the process that drove it died. A run of an `a2a` upstream whose upstream
    /// task was kept is resumed: it is live again, its driver following the upstream task to its
    /// end (or ending it failed with [`RESTARTED`] when the upstream cannot be reached or does
    /// not know the task). Every other run is ended as `task.failed` with the error
    /// [`RESTARTED`], sealed. The open runs come from the ledger's catalog (no scan of the log).
    pub async fn recover(self: &Arc<Self>) -> Result<Recovered, TaskError> {
        let unavailable = |e: ledger_core::Error| TaskError::LedgerUnavailable(e.to_string());
        let mut out = Recovered::default();
        for open in self.sink.open_runs().await.map_err(unavailable)? {
            if self.task(&open.run).is_some() {
                continue;
            }
            let raw = self.sink.run_entries(&open.run).await.map_err(unavailable)?;
            let Some(first) = raw.first().and_then(|(_, b)| Entry::decode(b).ok()) else { continue };
            // Another gateway's run is its own to end.
            if first.actor != self.key.name() || !matches!(first.event, Event::TaskAccepted { .. }) {
                continue;
            }
            let (mut rec, state) = RunRecorder::reopen(self.sink.clone(), self.key.clone(), &open.run, &raw)
                .map_err(|e| TaskError::LedgerUnavailable(e.to_string()))?;
            // A run whose end is recorded lacks only its seal: nothing to resume.
            // A run that cannot be rebuilt (its payloads unreadable) is ended like the others.
            if state.is_none()
                && let Ok(Some((r, agent, from))) = self.resumable(&open.run, &raw).await
            {
                self.reopen_task(r, rec, agent, from, rec_artifacts(&raw));
                out.resumed.push(open.run);
                continue;
            }
            let pending = match state {
                Some(status) => rec.reseal(Vec::new(), status, now_ns()),
                None => rec.finish(RunStatus::Failed, rec_artifacts(&raw), Some(RESTARTED.into()), now_ns()),
            };
            pending.wait().await.map_err(|e| TaskError::RecordingUnavailable(e.to_string()))?;
            labelled(&self.counters.sealed, "status", "failed").inc();
            out.ended.push(open.run);
        }
        // Upstream tasks kept for runs not live here (ended here, or ended before their file was
        // removed) are dropped; those of runs resumed (by this attempt or an earlier one) stay.
        if let Some(dir) = &self.upstream_tasks
            && let Ok(files) = std::fs::read_dir(dir)
        {
            for f in files.flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                let run = name.strip_suffix(".json").and_then(|h| hex::decode(h).ok());
                let run = run.and_then(|r| String::from_utf8(r).ok());
                if run.and_then(|r| self.task(&r)).is_none_or(|h| h.is_ended()) {
                    let _ = std::fs::remove_file(f.path());
                }
            }
        }
        Ok(out)
    }

    /// Run `run` (open, its entries `raw`) rebuilt, with the agent and upstream task it resumes
    /// on, if its agent's upstream resumes calls and its upstream task was kept.
    async fn resumable(
        &self,
        run: &str,
        raw: &[(u64, Vec<u8>)],
    ) -> Result<Option<(Rebuilt, usize, Resume)>, TaskError> {
        let Some(path) = self.upstream_task_file(run) else { return Ok(None) };
        let Ok(bytes) = std::fs::read(&path) else { return Ok(None) };
        let Ok(kept) = serde_json::from_slice::<KeptUpstream>(&bytes) else { return Ok(None) };
        let Some(r) = self.rebuild_run(run, raw).await? else { return Ok(None) };
        let Some(route) = self.skills.get(&r.skill) else { return Ok(None) };
        let agent = &self.agents[route.agent];
        if agent.spec.name != kept.agent || !agent.upstream.resumes() {
            return Ok(None);
        }
        let status = &r.task.status;
        let text = status.message.as_ref().map(upstream::message_text).filter(|t| !t.is_empty());
        let from = Resume {
            task: kept.task,
            context: kept.context,
            state: (status.state.clone(), text),
            artifacts: rec_artifact_digests(raw),
        };
        Ok(Some((r, route.agent, from)))
    }

    /// Makes run `r` (left in flight by a process that died) a live task again, driven on from
    /// where its recorder `rec` stands, its upstream call resumed `from` its upstream task.
    fn reopen_task(self: &Arc<Self>, r: Rebuilt, rec: RunRecorder, agent: usize, from: Resume, recorded: Vec<String>) {
        let skill = r.skill.clone();
        let scope = self.skills.get(&skill).and_then(|s| s.skill.workspace.clone()).unwrap_or_default();
        // The run's recorded grant: its agent holds the token it was given with the first call.
        let grant = GrantState { id: r.grant.clone().unwrap_or_default(), token: String::new(), scope };
        let message = r.task.history.as_ref().and_then(|h| h.first()).cloned();
        let message = message.unwrap_or_else(|| a2a::Message::new(a2a::Role::User, Vec::new()));
        let (control_tx, control_rx) = mpsc::channel(8);
        let name = self.agents[agent].spec.name.clone();
        let handle = Arc::new(TaskHandle::reopened(r, name, control_tx, grant));
        self.tasks.lock().unwrap_or_else(|p| p.into_inner()).by_id.insert(handle.id.clone(), handle.clone());
        self.counters.running.send_modify(|n| *n += 1);
        // The skill input matters to upstreams that take JSON; a resumed call (an `a2a`
        // upstream) follows the upstream task and sends no input.
        let input = CallInput { skill, input: Value::Null, message, grant: None, mcp_caller: None, upstream: None };
        self.launch(handle, rec, control_rx, agent, input, Start::Resume(from), recorded);
    }

    fn upstream_task_file(&self, run: &str) -> Option<PathBuf> {
        Some(self.upstream_tasks.as_ref()?.join(format!("{}.json", hex::encode(run))))
    }

    /// Keeps run `run`'s upstream task (`<data>/upstream-tasks/<hex of run>.json`), off the
    /// driver's path: the run goes on meanwhile (a crash before the file is durable only means
    /// the run is ended instead of resumed).
    fn remember_upstream(&self, run: &str, kept: KeptUpstream) -> Option<tokio::task::JoinHandle<()>> {
        let path = self.upstream_task_file(run)?;
        let bytes = serde_json::to_vec(&kept).expect("serialises");
        let run = run.to_string();
        // Durability: written whole or not at all (a synced temporary file renamed over it, the
        // directory synced), so a restart reads the upstream task as reported or not at all.
        Some(tokio::task::spawn_blocking(move || {
            if let Err(e) = crate::base::fs::write_atomically(&path, &bytes) {
                eprintln!("run {run}: its upstream task could not be kept: {e}");
            }
        }))
    }

    /// Drops run `run`'s kept upstream task, once its seal is durable (a file left by a crash in
    /// between is dropped by [`Engine::recover`]).
    async fn forget_upstream(&self, run: &str) {
        let Some(path) = self.upstream_task_file(run) else { return };
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_file(path)).await;
    }

    /// Creates a task: records `task.accepted` (durably) and starts its driver.
    pub async fn create(self: &Arc<Self>, req: NewTask) -> Result<Arc<TaskHandle>, TaskError> {
        self.create_with(req, None).await
    }

    /// Creates a task that is not a skill call: `req.skill` names it in the run, `call` makes it.
    pub async fn create_one_shot(self: &Arc<Self>, req: NewTask, call: OneShot) -> Result<Arc<TaskHandle>, TaskError> {
        self.create_with(req, Some(call)).await
    }

    async fn create_with(
        self: &Arc<Self>,
        req: NewTask,
        one_shot: Option<OneShot>,
    ) -> Result<Arc<TaskHandle>, TaskError> {
        let (agent_index, scope) = match &one_shot {
            Some(o) => (o.agent, Default::default()),
            None => {
                let route = self
                    .skills
                    .get(&req.skill)
                    .ok_or_else(|| TaskError::InvalidParams(format!("no agent here has a skill {:?}", req.skill)))?;
                // Checked before anything is recorded: an input the skill cannot take is the
                // caller's mistake, not a run.
                route.check_input(&req.input).map_err(TaskError::InvalidInput)?;
                (route.agent, route.skill.workspace.clone().unwrap_or_default())
            }
        };
        if self.closing.load(Ordering::SeqCst) {
            return Err(TaskError::RecordingUnavailable("the gateway is shutting down; try another instance".into()));
        }
        let id = a2a::new_task_id();
        let context_id = req.context_id.clone().unwrap_or_else(a2a::new_context_id);
        let agent = self.agents[agent_index].spec.name.clone();
        let issued = self.grants.issue(&id, &agent, &scope);
        let grant = GrantState { id: issued.id.clone(), token: issued.token, scope };
        let start = RunStart {
            run: &id,
            protocol: req.protocol,
            skill: &req.skill,
            caller: &req.caller,
            input: &req.input_bytes,
            grant: Some(grant.id.clone()),
            context: Some(&context_id),
            parent: req.parent.as_deref(),
        };
        // The task goes to its agent at once: `working` is appended with `task.accepted` in one
        // atomic batch, so the run's start costs one group commit.
        let working = vec![Event::TaskStatus { state: "working".into(), message: None }];
        let trace = RunTrace::start(
            &id,
            vec![
                KeyValue::new("a2a_ledger.skill", req.skill.clone()),
                KeyValue::new("a2a_ledger.agent", agent.clone()),
                KeyValue::new("a2a_ledger.protocol", req.protocol.as_str()),
                KeyValue::new("a2a_ledger.caller", req.caller.clone()),
            ],
        );
        let span = trace.child("ledger.accept", Vec::new());
        // The input is kept before the entry naming it is submitted (the sink's ordering rule:
        // acknowledged entries never name bytes the ledger could lose).
        let input_hash = *blake3::hash(&req.input_bytes).as_bytes();
        if let Err(e) = self.keep(vec![(input_hash, req.input_bytes.clone())]).await {
            span.error(e.to_string());
            trace.end("refused", Some(&e.to_string()));
            self.counters.refused.inc();
            return Err(match e {
                // The caller's input over the payload limit is the caller's to fix.
                ledger_core::Error::PayloadTooLarge { .. } => {
                    TaskError::TooLarge(format!("the input cannot be kept: {e}"))
                }
                e => TaskError::RecordingUnavailable(format!("the input could not be kept: {e}")),
            });
        }
        let (rec, accepted) = RunRecorder::start_with(self.sink.clone(), self.key.clone(), start, working, now_ns())
            .map_err(|e| TaskError::InvalidParams(e.to_string()))?;
        if let Err(e) = accepted.wait().await {
            span.error(e.to_string());
            trace.end("refused", Some(&e.to_string()));
            self.counters.refused.inc();
            return Err(TaskError::RecordingUnavailable(e.to_string()));
        }
        span.end();
        self.counters.accepted.inc();
        self.counters.running.send_modify(|n| *n += 1);

        let mut message = req.message.clone();
        if req.protocol != Protocol::A2a {
            message.message_id = crate::engine::updates::input_message_id(&id);
        }
        message.task_id = Some(id.clone());
        message.context_id = Some(context_id.clone());
        let mut metadata = HashMap::new();
        metadata.insert("receipt".to_string(), json!(self.receipt_url(&id)));
        let task = Task {
            id: id.clone(),
            context_id: context_id.clone(),
            status: TaskStatus { state: TaskState::Submitted, message: None, timestamp: Some(Utc::now()) },
            artifacts: None,
            history: Some(vec![message.clone()]),
            metadata: Some(metadata),
        };
        let (control_tx, control_rx) = mpsc::channel(8);
        let (cancel_tx, _) = watch::channel(false);
        let handle = Arc::new(TaskHandle {
            id: id.clone(),
            context_id: context_id.clone(),
            owner: req.caller.clone(),
            skill: req.skill.clone(),
            agent: agent.clone(),
            trace: trace.clone(),
            inner: Mutex::new(TaskInner {
                task: task.clone(),
                events: vec![Arc::new(StreamResponse::Task(task))],
                result: None,
                mcp: None,
                error: None,
                reply: None,
                control: Some(control_tx),
                cancel: cancel_tx,
                grant: grant.clone(),
                closed: false,
                recording_error: None,
            }),
            published: watch::channel(1).0,
        });
        self.tasks.lock().unwrap_or_else(|p| p.into_inner()).by_id.insert(id.clone(), handle.clone());

        let call_grant = CallGrant {
            id: grant.id.clone(),
            token: grant.token.clone(),
            workspace: format!("{}/workspace/{}", self.public_url, id),
            scope: format!("{}/scope/{}", self.public_url, id),
        };
        let upstream = one_shot.map(|o| o.upstream);
        let input = CallInput {
            skill: req.skill,
            input: req.input,
            message,
            grant: Some(call_grant),
            mcp_caller: req.mcp_caller,
            upstream,
        };
        self.launch(handle.clone(), rec, control_rx, agent_index, input, Start::Run, Vec::new());
        Ok(handle)
    }

    /// Delivers a caller's message to a task waiting for input. Returns the event cursor before
    /// the delivery (a blocking send waits for the task to settle after it).
    pub async fn continue_task(&self, handle: &TaskHandle, mut message: Message) -> Result<usize, TaskError> {
        let (control, cursor) = {
            let t = handle.lock();
            let state = &t.task.status.state;
            if state.is_terminal() {
                return Err(TaskError::Unsupported(format!(
                    "task {} has ended ({}); it takes no further messages",
                    handle.id,
                    state_name(state)
                )));
            }
            if let Some(ctx) = &message.context_id
                && *ctx != handle.context_id
            {
                return Err(TaskError::InvalidParams(format!(
                    "message contextId {ctx:?} is not the context of task {} ({:?})",
                    handle.id, handle.context_id
                )));
            }
            if !matches!(state, TaskState::InputRequired | TaskState::AuthRequired) {
                return Err(TaskError::Unsupported(format!(
                    "task {} is {}; it takes a message only while it waits for input",
                    handle.id,
                    state_name(state)
                )));
            }
            (t.control.clone(), t.events.len())
        };
        message.task_id = Some(handle.id.clone());
        message.context_id = Some(handle.context_id.clone());
        let Some(control) = control else {
            return Err(TaskError::Unsupported(format!("task {} is finishing", handle.id)));
        };
        control
            .send(Control::Message(message))
            .await
            .map_err(|_| TaskError::Unsupported(format!("task {} is finishing", handle.id)))?;
        Ok(cursor)
    }

    /// Asks a task to stop; returns once it has ended (or after the grace period).
    pub async fn cancel(&self, handle: &Arc<TaskHandle>) -> Result<Snapshot, TaskError> {
        {
            let t = handle.lock();
            if t.task.status.state.is_terminal() {
                return Err(TaskError::NotCancelable(handle.id.clone(), state_name(&t.task.status.state).into()));
            }
            t.cancel.send_replace(true);
        }
        let wait = async {
            let mut cursor = 0;
            loop {
                let (events, closed) = handle.next_events(cursor).await;
                cursor += events.len();
                if closed {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(CANCEL_GRACE + Duration::from_secs(5), wait).await;
        Ok(handle.snapshot())
    }

    fn retire(&self, id: &str) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.ended.push_back(id.to_string());
        tasks.cached_at.insert(id.to_string(), std::time::Instant::now());
        while tasks.by_id.len() > self.retention {
            let Some(old) = tasks.ended.pop_front() else { break };
            tasks.by_id.remove(&old);
            tasks.cached_at.remove(&old);
        }
    }

    /// Starts task `h`'s driver: calls agent `agent` (a new call, or one resumed after a
    /// restart), its updates recorded by `rec` after the artifacts `recorded` already holds.
    #[allow(clippy::too_many_arguments)]
    fn launch(
        self: &Arc<Self>,
        h: Arc<TaskHandle>,
        rec: RunRecorder,
        control: mpsc::Receiver<Control>,
        agent: usize,
        input: CallInput,
        start: Start,
        recorded: Vec<String>,
    ) {
        let (updates_tx, updates_rx) = mpsc::channel(64);
        let (follow_tx, follow_rx) = mpsc::channel(8);
        let call_span = h.trace.child("upstream.call", vec![KeyValue::new("a2a_ledger.agent", h.agent.clone())]);
        let call = Call {
            run: h.id.clone(),
            context_id: h.context_id.clone(),
            skill: input.skill,
            input: input.input,
            message: input.message,
            updates: updates_tx,
            follow_ups: follow_rx,
            cancel: h.lock().cancel.subscribe(),
            grant: input.grant,
            traceparent: call_span.traceparent(),
            mcp_caller: input.mcp_caller,
        };
        let upstream = input.upstream.unwrap_or_else(|| self.agents[agent].upstream.clone());
        let resumed = matches!(start, Start::Resume(_));
        let worker = match start {
            Start::Run => upstream.run(call),
            Start::Resume(from) => upstream.resume(call, from),
        };
        let engine = self.clone();
        let driven =
            Driven { worker, call_span, updates: updates_rx, control, follow_ups: follow_tx, recorded, resumed };
        tokio::spawn(async move { engine.drive(h, rec, driven).await });
    }

    /// Runs one task: relays the upstream's updates into the ledger and the event buffer.
    async fn drive(self: Arc<Self>, h: Arc<TaskHandle>, mut rec: RunRecorder, d: Driven) {
        let Driven { worker, call_span, mut updates, mut control, follow_ups, recorded, resumed } = d;
        let (id, ctx) = (h.id.clone(), h.context_id.clone());
        let mut pending: Vec<Pending> = Vec::new();
        let ids = TaskIds { task: &id, context: &ctx };
        let status = |state: TaskState, text: Option<String>| status_event(ids, state, text, Utc::now());
        let mut cancel_rx = h.lock().cancel.subscribe();
        let began = std::time::Instant::now();
        let worker = tokio::spawn(worker);

        // A resumed task's buffer already holds its state as recorded.
        if !resumed {
            h.publish(status(TaskState::Working, None), false);
        }

        let mut cancel_deadline: Option<tokio::time::Instant> = None;
        let mut artifact_names = recorded;
        let mut last_pct = 0u8;
        // The write of the upstream task in progress, if any.
        let mut keeping: Option<tokio::task::JoinHandle<()>> = None;
        // Transitions wait here up to LINGER before they are submitted, so a burst of updates
        // (or the last updates of a quick run together with its end and seal) shares one group
        // commit. Nobody waits on them meanwhile: their events are already published, and the
        // seal is submitted only after them.
        let mut staged: Vec<Transition> = Vec::new();
        let mut flush_at: Option<tokio::time::Instant> = None;
        let outcome = loop {
            if staged.len() >= MAX_STAGED {
                pending.push(rec.submit_all(std::mem::take(&mut staged)));
                flush_at = None;
            }
            let deadline = async {
                match cancel_deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            let linger = async {
                match flush_at {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = linger => {
                    pending.push(rec.submit_all(std::mem::take(&mut staged)));
                    flush_at = None;
                }
                u = updates.recv() => {
                    let Some(mut u) = u else { break Outcome::Failed("the agent ended without a result".into()) };
                    // A log entry carries the run's progress as it stands.
                    match &mut u {
                        Update::Progress { pct, .. } => last_pct = *pct,
                        Update::Log { pct, .. } => *pct = last_pct,
                        _ => {}
                    }
                    let prior = match &u {
                        Update::Artifact { artifact, .. } => h.artifact(&artifact.artifact_id),
                        _ => None,
                    };
                    match map_update(ids, u, prior.as_ref(), Utc::now()) {
                        Step::Done(o) => break o,
                        Step::Upstream { task, context } => {
                            // One write at a time, so the last one reported is what stays.
                            if let Some(w) = keeping.take() {
                                let _ = w.await;
                            }
                            keeping = self.remember_upstream(&id, KeptUpstream { agent: h.agent.clone(), task, context });
                        }
                        Step::Publish { entry, flush, event, keep, payload } => {
                            if let Err(e) = self.keep(keep).await {
                                break Outcome::Failed(format!("the gateway could not keep the agent's output: {e}"));
                            }
                            if let Some(e) = entry {
                                if let Event::ArtifactAdded { name, .. } = &e {
                                    artifact_names.push(name.clone());
                                }
                                hold(&mut staged, &mut flush_at, e, payload);
                            }
                            if flush {
                                pending.push(rec.submit_all(std::mem::take(&mut staged)));
                                flush_at = None;
                            }
                            h.publish(event, false);
                        }
                    }
                }
                Some(c) = control.recv() => match c {
                    Control::Record { events, set_grant, status: st, reply } => {
                        let now = now_ns();
                        staged.extend(events.into_iter().map(|e| Transition::new(e, now)));
                        let p = rec.submit_all(std::mem::take(&mut staged));
                        flush_at = None;
                        if let Some(g) = set_grant {
                            rec.set_grant(Some(g));
                        }
                        if let Some((state, text)) = st {
                            let name = state_name(&state).to_string();
                            pending.push(rec.submit(Event::TaskStatus { state: name, message: text.clone() }, now_ns()));
                            h.publish(status(state, text), false);
                        }
                        let _ = reply.send(p);
                    }
                    Control::Message(m) => {
                        // The caller's answer: kept, recorded (its hash, as the entry's payload),
                        // in the history, then to the agent.
                        let bytes = serde_json::to_vec(&m).unwrap_or_default();
                        let digest = blake3::hash(&bytes);
                        if let Err(e) = self.keep(vec![(*digest.as_bytes(), bytes)]).await {
                            break Outcome::Failed(format!("the gateway could not keep the caller's message: {e}"));
                        }
                        let note = format!("input received (blake3 {})", digest.to_hex());
                        let working = Event::TaskStatus { state: "working".into(), message: Some(note) };
                        hold(&mut staged, &mut flush_at, working, Some(*digest.as_bytes()));
                        {
                            let mut t = h.lock();
                            t.task.history.get_or_insert_with(Vec::new).push(m.clone());
                        }
                        h.publish(status(TaskState::Working, None), false);
                        if follow_ups.send(m).await.is_err() {
                            break Outcome::Failed("the agent stopped before it read the answer".into());
                        }
                    }
                },
                _ = upstream::canceled(&mut cancel_rx), if cancel_deadline.is_none() => {
                    cancel_deadline = Some(tokio::time::Instant::now() + CANCEL_GRACE);
                }
                () = deadline => {
                    worker.abort();
                    break Outcome::Canceled;
                }
            }
        };
        // No further messages: a sender sees "finishing".
        h.lock().control = None;
        drop(updates);
        worker.abort();

        if let Outcome::Failed(e) | Outcome::McpFailed { error: e, .. } = &outcome {
            call_span.error(e.clone());
        }
        call_span.end();
        let end = ending(outcome);
        // The final message and result are kept as the terminal entry's payload.
        let mut outcome_hash = None;
        if let Some(bytes) = outcome_payload(&end).filter(|_| self.keep_payloads) {
            let hash = *blake3::hash(&bytes).as_bytes();
            match self.keep(vec![(hash, bytes)]).await {
                Ok(()) => outcome_hash = Some(hash),
                Err(e) => eprintln!("run {id}: its outcome could not be kept: {e}"),
            }
        }
        let Ending { run_status, state, text, result, error, direct, mcp } = end;
        // Every transition before the end must be durable for the seal to hold; they were
        // submitted in order, so waiting for each is cheap.
        let mut recording_error = None;
        for p in pending {
            if let Err(e) = p.wait().await {
                recording_error.get_or_insert(e.to_string());
            }
        }
        if let Some(e) = &recording_error {
            rec.fail(&ledger_core::Error::Storage(e.clone()));
        }
        let span = h.trace.child("ledger.seal", Vec::new());
        let sealed =
            rec.finish_after(staged, run_status, artifact_names, error.clone(), outcome_hash, now_ns()).wait().await;
        if let Some(w) = keeping.take() {
            let _ = w.await;
        }
        match sealed {
            Ok(_) => self.forget_upstream(&id).await,
            Err(e) => {
                span.error(e.to_string());
                recording_error.get_or_insert(e.to_string());
            }
        }
        span.end();
        h.trace.end(&run_status.to_string(), error.as_deref().or(recording_error.as_deref()));
        let c = &self.counters;
        c.run_seconds.observe(began.elapsed().as_secs_f64());
        c.running.send_modify(|n| *n -= 1);
        labelled(&c.sealed, "status", &run_status.to_string()).inc();
        if let Some(e) = &recording_error {
            c.unrecorded.inc();
            eprintln!("run {id}: not fully recorded: {e}");
        }

        let mut ev = status(state, text.clone());
        if let StreamResponse::StatusUpdate(s) = &mut ev {
            let mut meta = HashMap::from([("receipt".to_string(), json!(self.receipt_url(&id)))]);
            if let Some(e) = &recording_error {
                meta.insert("recordingError".to_string(), json!(e));
            }
            s.metadata = Some(meta);
        }
        {
            let mut t = h.lock();
            t.result = result;
            t.mcp = mcp;
            t.error = error;
            t.recording_error = recording_error;
            if direct {
                // The caller gets a message, not a task: it names the run and its receipt.
                let mut m = agent_message(ids, text.unwrap_or_default());
                m.metadata = Some(HashMap::from([("receipt".to_string(), json!(self.receipt_url(&id)))]));
                t.reply = Some(m);
            }
        }
        h.publish(ev, true);
        self.retire(&id);
    }

    /// Shuts the engine down: new tasks are refused; tasks waiting for input are canceled at
    /// once (they could wait forever); working tasks get until `deadline` to end, then are
    /// canceled. Every task ends sealed (canceled ones as `canceled`).
    pub async fn shutdown(&self, deadline: Duration) {
        self.closing.store(true, Ordering::SeqCst);
        let until = tokio::time::Instant::now() + deadline;
        let live = || -> Vec<Arc<TaskHandle>> {
            let tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
            tasks.by_id.values().filter(|h| !h.snapshot().closed).cloned().collect()
        };
        for h in live() {
            let t = h.lock();
            if matches!(t.task.status.state, TaskState::InputRequired | TaskState::AuthRequired) {
                t.cancel.send_replace(true);
            }
        }
        let mut running = self.counters.running.subscribe();
        let _ = tokio::time::timeout_at(until, running.wait_for(|n| *n == 0)).await;
        for h in live() {
            h.lock().cancel.send_replace(true);
        }
        let until = tokio::time::Instant::now() + CANCEL_GRACE + Duration::from_secs(5);
        let mut running = self.counters.running.subscribe();
        let _ = tokio::time::timeout_at(until, running.wait_for(|n| *n == 0)).await;
    }

    /// Is the task ended?
    pub fn ended(&self, h: &TaskHandle) -> bool {
        h.is_ended()
    }
}
