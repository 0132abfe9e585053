//! The run's workspace, scope approvals, and evals and reviews of ended runs.
//!
//! - `GET|PUT /workspace/{run}/{path}`, `GET /workspace/{run}?list=DIR`: the agent's only way to
//!   the run's files (under `<data>/workspaces/<run>/`), with its grant as the bearer token. The
//!   grant is checked on every operation ([`crate::grants`]); each operation is an entry of the
//!   run (`workspace.read` / `workspace.written` with path, bytes and BLAKE3; a refusal is
//!   `workspace.denied` with the reason), durable before the answer. A write is atomic (temp
//!   file, fsync, rename, fsync of the directory).
//! - `POST /scope/{run}` (grant): the agent asks for more paths (`scope.requested`; the task waits
//!   in `auth_required`); `GET /scope/{run}/{id}?wait=S` tells it the decision and, when
//!   approved, hands it the new grant.
//! - `GET /approvals`, `POST /approvals/{id}` (callers listed as approvers): the inbox, and the
//!   decision — approval rotates the grant (`scope.granted` with the prior and new grant ids; the
//!   prior grant is dead from then on), denial is `scope.denied`; the task works again.
//! - `POST /runs/{id}/eval`, `POST /runs/{id}/review`: after a run ends, `eval.scored` (by its
//!   caller or an approver) and `review.signed` (by an approver) are appended and the run is
//!   sealed again; its receipt is the newest seal.

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use a2a::TaskState;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ledger_core::{Event, RunStatus};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::auth::Caller;
use crate::grants::{Denied, Op, Scope};
use crate::http::Gateway;
use crate::recorder::RunRecorder;
use crate::tasks::{GrantState, TaskHandle, now_ns};

/// Largest file the workspace takes.
pub const MAX_FILE: usize = 16 << 20;

/// How a scope request was decided.
#[derive(Clone, Debug)]
enum Decision {
    Approved { grant_id: String, token: String, approver: String },
    Denied { approver: String, reason: String },
}

/// One request for more scope.
#[derive(Debug)]
struct ScopeRequest {
    id: String,
    run: String,
    agent: String,
    skill: String,
    paths: Vec<String>,
    reason: String,
    requested_at: String,
    decision: watch::Sender<Option<Decision>>,
}

/// Workspaces, scope requests and the approver role.
#[derive(Debug)]
pub struct Workspace {
    root: PathBuf,
    approvers: HashSet<String>,
    requests: Mutex<HashMap<String, Arc<ScopeRequest>>>,
    /// One resealing at a time per run.
    reseal_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Workspace {
    /// Workspaces under `root`; `approvers` are caller names.
    pub fn new(root: PathBuf, approvers: impl IntoIterator<Item = String>) -> Workspace {
        Workspace {
            root,
            approvers: approvers.into_iter().collect(),
            requests: Mutex::new(HashMap::new()),
            reseal_locks: Mutex::new(HashMap::new()),
        }
    }

    fn is_approver(&self, c: &Caller) -> bool {
        self.approvers.contains(&c.name)
    }
}

/// 403 unless `caller` is an approver.
async fn require_approver(gw: &Gateway, caller: &Caller) -> Result<(), Response> {
    if gw.workspace.is_approver(caller) {
        return Ok(());
    }
    Err(error(
        StatusCode::FORBIDDEN,
        "not_an_approver",
        format!("caller {:?} is not an approver (gateway.toml approvers)", caller.name),
    ))
}

impl Workspace {
    fn file(&self, run: &str, path: &str) -> PathBuf {
        self.root.join(run).join(path)
    }
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": { "code": code, "message": message.into() } }))).into_response()
}

/// Parses a JSON body; a 400 `bad_json` naming the `expected` shape otherwise.
// The error is the handler's answer, returned at once.
#[allow(clippy::result_large_err)]
fn json_body<T: serde::de::DeserializeOwned>(body: &[u8], expected: &str) -> Result<T, Response> {
    serde_json::from_slice(body)
        .map_err(|e| error(StatusCode::BAD_REQUEST, "bad_json", format!("expected {expected}: {e}")))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
}

/// The running task a workspace call is for; `Err` when there is none to record in.
// The error is the handler's answer, returned at once: boxing it would only add an allocation.
#[allow(clippy::result_large_err)]
fn active_task(gw: &Gateway, run: &str) -> Result<Arc<TaskHandle>, Response> {
    let h = gw
        .engine
        .task(run)
        .ok_or_else(|| error(StatusCode::NOT_FOUND, "unknown_run", format!("no run {run:?} is running here")))?;
    if h.snapshot().closed {
        return Err(error(
            StatusCode::CONFLICT,
            "run_ended",
            format!("run {run:?} has ended; its workspace grant is no longer valid"),
        ));
    }
    Ok(h)
}

async fn record(
    gw: &Gateway,
    h: &TaskHandle,
    events: Vec<Event>,
    status: Option<(TaskState, Option<String>)>,
) -> Result<(), Response> {
    let kind = events.first().map(|e| e.kind().as_str()).unwrap_or("task.status");
    let _span = h.trace.child("workspace", vec![opentelemetry::KeyValue::new("a2a_ledger.kind", kind)]);
    match gw.engine.record(h, events, None, status).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "recording_unavailable",
            format!("not recorded, so not done: {e}"),
        )),
        Err(e) => Err(error(StatusCode::CONFLICT, "run_ended", e.to_string())),
    }
}

/// Checks the grant for `op` on `path`; a refusal is recorded and answered 403.
async fn authorize(gw: &Gateway, h: &TaskHandle, headers: &HeaderMap, op: Op, path: &str) -> Result<(), Response> {
    let grant = h.grant();
    let checked = match bearer(headers) {
        None => Err(Denied("no grant presented (Authorization: Bearer <grant>)".into())),
        Some(token) => gw.engine.grants().check(token, &h.id, &h.agent, &grant.id, op, path),
    };
    match checked {
        Ok(_) => Ok(()),
        Err(Denied(reason)) => {
            let shown: String = path.chars().take(1024).collect();
            let event = Event::WorkspaceDenied { op: op.as_str().into(), path: shown, reason: reason.clone() };
            record(gw, h, vec![event], None).await?;
            Err(error(StatusCode::FORBIDDEN, "denied", reason))
        }
    }
}

/// Writes a file whole or not at all: a synced temporary file renamed over it, the directory synced.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("the file is in a directory");
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// `GET /workspace/{run}/{path}`.
pub async fn read_file(
    State(gw): State<Arc<Gateway>>,
    UrlPath((run, path)): UrlPath<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let r = async {
        let h = active_task(&gw, &run)?;
        authorize(&gw, &h, &headers, Op::Read, &path).await?;
        let file = gw.workspace.file(&run, &path);
        let bytes = match tokio::fs::read(&file).await {
            Ok(b) => b,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound
                        | std::io::ErrorKind::IsADirectory
                        | std::io::ErrorKind::NotADirectory
                        | std::io::ErrorKind::InvalidFilename
                ) =>
            {
                // Every operation is an entry: a read that finds nothing is refused, and recorded.
                let reason = "no such file in the workspace".to_string();
                let shown: String = path.chars().take(1024).collect();
                let event = Event::WorkspaceDenied { op: Op::Read.as_str().into(), path: shown, reason };
                record(&gw, &h, vec![event], None).await?;
                return Err(error(
                    StatusCode::NOT_FOUND,
                    "no_such_file",
                    format!("{path:?} is not a file of this workspace"),
                ));
            }
            Err(e) => {
                return Err(error(StatusCode::INTERNAL_SERVER_ERROR, "internal", format!("reading {path:?}: {e}")));
            }
        };
        let hash = *blake3::hash(&bytes).as_bytes();
        record(&gw, &h, vec![Event::WorkspaceRead { path: path.clone(), bytes: bytes.len() as u64, hash }], None)
            .await?;
        let mut resp = ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response();
        resp.headers_mut().insert("x-blake3", hex::encode(hash).parse().expect("hex is a header value"));
        Ok(resp)
    };
    r.await.unwrap_or_else(|e| e)
}

/// `PUT /workspace/{run}/{path}`.
pub async fn write_file(
    State(gw): State<Arc<Gateway>>,
    UrlPath((run, path)): UrlPath<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r = async {
        let h = active_task(&gw, &run)?;
        authorize(&gw, &h, &headers, Op::Write, &path).await?;
        if body.len() > MAX_FILE {
            return Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "file_too_large",
                format!("a workspace file holds at most {MAX_FILE} bytes"),
            ));
        }
        let file = gw.workspace.file(&run, &path);
        let data = body.clone();
        tokio::task::spawn_blocking(move || write_atomically(&file, &data))
            .await
            .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
            .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, "internal", format!("writing {path:?}: {e}")))?;
        let hash = *blake3::hash(&body).as_bytes();
        record(&gw, &h, vec![Event::WorkspaceWritten { path: path.clone(), bytes: body.len() as u64, hash }], None)
            .await?;
        Ok(axum::Json(json!({ "path": path, "bytes": body.len(), "blake3": hex::encode(hash) })).into_response())
    };
    r.await.unwrap_or_else(|e| e)
}

fn walk(dir: &Path, base: &Path, out: &mut Vec<(String, u64)>) -> std::io::Result<()> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in rd {
        let entry = entry?;
        let p = entry.path();
        let ft = entry.file_type()?;
        if ft.is_dir() {
            walk(&p, base, out)?;
        } else if ft.is_file() && !p.to_string_lossy().contains(".tmp-") {
            let rel = p.strip_prefix(base).expect("under base").to_string_lossy().replace('\\', "/");
            out.push((rel, entry.metadata()?.len()));
        }
    }
    Ok(())
}

/// `GET /workspace/{run}?list=DIR`: the files under `DIR` (the root when empty) that the grant
/// may read.
pub async fn list(
    State(gw): State<Arc<Gateway>>,
    UrlPath(run): UrlPath<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let r = async {
        let h = active_task(&gw, &run)?;
        let dir = q.get("list").map(|d| d.trim_end_matches('/').to_string()).unwrap_or_default();
        authorize(&gw, &h, &headers, Op::List, &dir).await?;
        let base = gw.workspace.root.join(&run);
        let start = if dir.is_empty() { base.clone() } else { base.join(&dir) };
        let mut files = Vec::new();
        walk(&start, &base, &mut files)
            .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
        files.sort();
        // Only what the grant may read is listed (the token was verified above).
        let grants = gw.engine.grants();
        let claims = grants
            .verify(bearer(&headers).unwrap_or_default(), &h.id, &h.agent, &h.grant().id)
            .map_err(|d| error(StatusCode::FORBIDDEN, "denied", d.0))?;
        let files: Vec<Value> = files
            .into_iter()
            .filter(|(p, _)| grants.authorize(&claims, Op::Read, p).is_ok())
            .map(|(p, n)| json!({ "path": p, "bytes": n }))
            .collect();
        let body = serde_json::to_vec(&json!({ "dir": dir, "files": files })).expect("serialise");
        let shown = if dir.is_empty() { ".".to_string() } else { format!("{dir}/") };
        let event =
            Event::WorkspaceRead { path: shown, bytes: body.len() as u64, hash: *blake3::hash(&body).as_bytes() };
        record(&gw, &h, vec![event], None).await?;
        Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
    };
    r.await.unwrap_or_else(|e| e)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScopeBody {
    paths: Vec<String>,
    reason: String,
}

#[allow(clippy::result_large_err)]
fn verify_grant(gw: &Gateway, h: &TaskHandle, headers: &HeaderMap) -> Result<(), Response> {
    let token = bearer(headers).ok_or_else(|| {
        error(StatusCode::UNAUTHORIZED, "no_grant", "present the run's grant: Authorization: Bearer <grant>")
    })?;
    gw.engine
        .grants()
        .verify(token, &h.id, &h.agent, &h.grant().id)
        .map(drop)
        .map_err(|d| error(StatusCode::FORBIDDEN, "denied", d.0))
}

/// `POST /scope/{run}`: `{"paths": [globs], "reason"}` → 202 with the request's id.
pub async fn request_scope(
    State(gw): State<Arc<Gateway>>,
    UrlPath(run): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r = async {
        let h = active_task(&gw, &run)?;
        verify_grant(&gw, &h, &headers)?;
        let req: ScopeBody = json_body(&body, "{\"paths\": [...], \"reason\": \"...\"}")?;
        if req.paths.is_empty() || req.paths.len() > 32 {
            return Err(error(StatusCode::BAD_REQUEST, "bad_paths", "ask for 1 to 32 path globs"));
        }
        let probe = Scope { read: req.paths.clone(), write: vec![], out: "out/".into() };
        if let Err(e) = probe.check() {
            return Err(error(StatusCode::BAD_REQUEST, "bad_paths", format!("{e:#}")));
        }
        for p in &req.paths {
            if p.starts_with('/') || p.split('/').any(|s| s == "..") {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "bad_paths",
                    format!("{p:?} must be relative, without '..'"),
                ));
            }
        }
        let mut id = [0u8; 8];
        let _ = getrandom::fill(&mut id);
        let id = format!("sr-{}", hex::encode(id));
        let event = Event::ScopeRequested { paths: req.paths.clone(), reason: req.reason.clone() };
        let waiting =
            Some((TaskState::AuthRequired, Some(format!("waiting for approval of {:?}: {}", req.paths, req.reason))));
        record(&gw, &h, vec![event], waiting).await?;
        let sr = Arc::new(ScopeRequest {
            id: id.clone(),
            run: run.clone(),
            agent: h.agent.clone(),
            skill: h.skill.clone(),
            paths: req.paths,
            reason: req.reason,
            requested_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            decision: watch::channel(None).0,
        });
        gw.workspace.requests.lock().unwrap_or_else(|p| p.into_inner()).insert(id.clone(), sr);
        let poll = format!("{}/scope/{run}/{id}", gw.engine.public_url());
        Ok((StatusCode::ACCEPTED, axum::Json(json!({ "id": id, "status": "pending", "poll": poll }))).into_response())
    };
    r.await.unwrap_or_else(|e| e)
}

fn decision_body(sr: &ScopeRequest, d: &Option<Decision>, with_token: bool) -> Value {
    match d {
        None => json!({ "id": sr.id, "status": "pending" }),
        Some(Decision::Approved { grant_id, token, approver }) => {
            let mut v = json!({ "id": sr.id, "status": "approved", "grant_id": grant_id, "approver": approver });
            if with_token {
                v["grant"] = json!(token);
            }
            v
        }
        Some(Decision::Denied { approver, reason }) => {
            json!({ "id": sr.id, "status": "denied", "approver": approver, "reason": reason })
        }
    }
}

/// `GET /scope/{run}/{id}?wait=S`: the decision (waiting up to S ≤ 60 s); an approval carries
/// the new grant. The agent asks with the grant it had when it asked.
pub async fn scope_decision(
    State(gw): State<Arc<Gateway>>,
    UrlPath((run, id)): UrlPath<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let sr = gw.workspace.requests.lock().unwrap_or_else(|p| p.into_inner()).get(&id).cloned();
    let Some(sr) = sr.filter(|s| s.run == run) else {
        return error(StatusCode::NOT_FOUND, "unknown_request", format!("no scope request {id:?} for run {run:?}"));
    };
    let Some(token) = bearer(&headers) else {
        return error(StatusCode::UNAUTHORIZED, "no_grant", "present the grant you asked with");
    };
    // The grant the agent asked with, or the one it was given: either proves it is the agent.
    let agent_ok = |current: &str| gw.engine.grants().verify(token, &run, &sr.agent, current).is_ok();
    let given = match &*sr.decision.borrow() {
        Some(Decision::Approved { grant_id, .. }) => Some(grant_id.clone()),
        _ => None,
    };
    let current = gw.engine.task(&run).map(|h| h.grant().id);
    let ok = current.as_deref().is_some_and(agent_ok)
        || given.as_deref().is_some_and(agent_ok)
        || prior_ok(&gw, &run, &sr, token);
    if !ok {
        return error(StatusCode::FORBIDDEN, "denied", "that is not a grant of this run's agent");
    }
    let wait = q.get("wait").and_then(|w| w.parse::<f64>().ok()).unwrap_or(0.0).clamp(0.0, 60.0);
    let mut rx = sr.decision.subscribe();
    let _ = tokio::time::timeout(Duration::from_secs_f64(wait), rx.wait_for(Option::is_some)).await;
    let d = sr.decision.borrow().clone();
    axum::Json(decision_body(&sr, &d, true)).into_response()
}

/// The grant the request was made with, checked without requiring it to be current.
fn prior_ok(gw: &Gateway, run: &str, sr: &ScopeRequest, token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return false;
    }
    use base64::Engine as _;
    let jti = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1])
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v["jti"].as_str().map(String::from));
    jti.is_some_and(|jti| gw.engine.grants().verify(token, run, &sr.agent, &jti).is_ok())
}

/// `GET /approvals`: pending scope requests (approvers only).
pub async fn approvals(State(gw): State<Arc<Gateway>>, axum::Extension(caller): axum::Extension<Caller>) -> Response {
    if let Err(r) = require_approver(&gw, &caller).await {
        return r;
    }
    let reqs = gw.workspace.requests.lock().unwrap_or_else(|p| p.into_inner());
    let mut pending: Vec<&Arc<ScopeRequest>> = reqs.values().filter(|r| r.decision.borrow().is_none()).collect();
    pending.sort_by(|a, b| a.requested_at.cmp(&b.requested_at));
    let list: Vec<Value> = pending
        .iter()
        .map(|r| json!({ "id": r.id, "run": r.run, "agent": r.agent, "skill": r.skill, "paths": r.paths, "reason": r.reason, "requested_at": r.requested_at }))
        .collect();
    axum::Json(json!({ "pending": list })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    decision: String,
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /approvals/{id}`: `{"decision": "approve" | "deny", "reason"?}` (approvers only).
pub async fn decide(
    State(gw): State<Arc<Gateway>>,
    axum::Extension(caller): axum::Extension<Caller>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Response {
    let r = async {
        require_approver(&gw, &caller).await?;
        let body: DecisionBody = json_body(&body, "{\"decision\": \"approve\"|\"deny\"}")?;
        let sr = gw.workspace.requests.lock().unwrap_or_else(|p| p.into_inner()).get(&id).cloned();
        let sr =
            sr.ok_or_else(|| error(StatusCode::NOT_FOUND, "unknown_request", format!("no scope request {id:?}")))?;
        if sr.decision.borrow().is_some() {
            return Err(error(
                StatusCode::CONFLICT,
                "already_decided",
                format!("scope request {id:?} was already decided"),
            ));
        }
        let h = active_task(&gw, &sr.run)?;
        let decision = match body.decision.as_str() {
            "approve" => {
                let prior: GrantState = h.grant();
                let scope = prior.scope.widened(&sr.paths);
                let issued = gw.engine.grants().issue(&sr.run, &h.agent, &scope);
                let event = Event::ScopeGranted {
                    prior_grant: prior.id.clone(),
                    new_grant: issued.id.clone(),
                    paths: sr.paths.clone(),
                    approver: caller.name.clone(),
                };
                let resumed = Some((TaskState::Working, Some(format!("scope granted by {}", caller.name))));
                match gw.engine.record(&h, vec![event], Some(issued.id.clone()), resumed).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        return Err(error(StatusCode::SERVICE_UNAVAILABLE, "recording_unavailable", e.to_string()));
                    }
                    Err(e) => return Err(error(StatusCode::CONFLICT, "run_ended", e.to_string())),
                }
                h.set_grant(GrantState { id: issued.id.clone(), token: issued.token.clone(), scope });
                Decision::Approved { grant_id: issued.id, token: issued.token, approver: caller.name.clone() }
            }
            "deny" => {
                let reason = body.reason.clone().unwrap_or_else(|| "denied".into());
                let event = Event::ScopeDenied { approver: caller.name.clone(), reason: reason.clone() };
                let resumed = Some((TaskState::Working, Some(format!("scope denied by {}: {reason}", caller.name))));
                record(&gw, &h, vec![event], resumed).await?;
                Decision::Denied { approver: caller.name.clone(), reason }
            }
            other => {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "bad_decision",
                    format!("decision {other:?} is not approve or deny"),
                ));
            }
        };
        sr.decision.send_replace(Some(decision.clone()));
        Ok(axum::Json(decision_body(&sr, &Some(decision), false)).into_response())
    };
    r.await.unwrap_or_else(|e| e)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EvalBody {
    rubric: String,
    score_milli: i64,
    #[serde(default)]
    failures: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReviewBody {
    notes: String,
}

/// Appends `event` to the ended run `run` and seals it again.
async fn append_and_reseal(gw: &Gateway, run: &str, event: Event) -> Result<Response, Response> {
    if let Some(h) = gw.engine.task(run)
        && !h.snapshot().closed
    {
        return Err(error(
            StatusCode::CONFLICT,
            "run_not_ended",
            format!("run {run:?} is still running; evals and reviews come after it ends"),
        ));
    }
    let lock =
        gw.workspace.reseal_locks.lock().unwrap_or_else(|p| p.into_inner()).entry(run.to_string()).or_default().clone();
    let _one_at_a_time = lock.lock().await;
    let sink = gw.engine.sink().clone();
    let entries = sink
        .run_entries(run)
        .await
        .map_err(|e| error(StatusCode::SERVICE_UNAVAILABLE, "ledger_unavailable", e.to_string()))?;
    if entries.is_empty() {
        return Err(error(StatusCode::NOT_FOUND, "unknown_run", format!("the ledger has no run {run:?}")));
    }
    let (mut rec, status): (RunRecorder, RunStatus) = RunRecorder::resume(sink, gw.engine.key().clone(), run, &entries)
        .map_err(|e| match e {
            ledger_core::Error::Unsealed(_) => {
                error(StatusCode::CONFLICT, "run_unsealed", format!("run {run:?} has no seal yet"))
            }
            other => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", other.to_string()),
        })?;
    let kind = event.kind().as_str();
    rec.reseal(vec![(event, now_ns())], status, now_ns()).wait().await.map_err(|e| {
        error(StatusCode::SERVICE_UNAVAILABLE, "recording_unavailable", format!("{kind} not recorded: {e}"))
    })?;
    Ok(axum::Json(json!({
        "run": run,
        "recorded": kind,
        "events": entries.len() + 2,
        "receipt": gw.engine.receipt_url(run),
    }))
    .into_response())
}

/// `POST /runs/{id}/eval`: `{"rubric", "score_milli", "failures"}` by the run's caller or an approver.
pub async fn eval(
    State(gw): State<Arc<Gateway>>,
    axum::Extension(caller): axum::Extension<Caller>,
    UrlPath(run): UrlPath<String>,
    body: Bytes,
) -> Response {
    let r = async {
        let b: EvalBody = json_body(&body, "{\"rubric\", \"score_milli\", \"failures\"}")?;
        if !gw.workspace.is_approver(&caller) {
            crate::http::may_read(&gw, &caller, &run).await?;
        }
        append_and_reseal(
            &gw,
            &run,
            Event::EvalScored { rubric: b.rubric, score_milli: b.score_milli, failures: b.failures },
        )
        .await
    };
    r.await.unwrap_or_else(|e| e)
}

/// `POST /runs/{id}/review`: `{"notes"}` by an approver, who is recorded as the reviewer.
pub async fn review(
    State(gw): State<Arc<Gateway>>,
    axum::Extension(caller): axum::Extension<Caller>,
    UrlPath(run): UrlPath<String>,
    body: Bytes,
) -> Response {
    let r = async {
        require_approver(&gw, &caller).await?;
        let b: ReviewBody = json_body(&body, "{\"notes\"}")?;
        append_and_reseal(&gw, &run, Event::ReviewSigned { approver: caller.name.clone(), notes: b.notes }).await
    };
    r.await.unwrap_or_else(|e| e)
}
