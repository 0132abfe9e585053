//! The agent's workspace files: `GET|PUT /workspace/{run}/{path}`, `GET /workspace/{run}?list=DIR`,
//! the agent's only way to the run's files (under `<data>/workspaces/<run>/`), with its grant as
//! the bearer token. The grant is checked on every operation ([`crate::engine::grants`]); each
//! operation is an entry of the run (`workspace.read` / `workspace.written` with path, bytes and
//! BLAKE3; a refusal is `workspace.denied` with the reason), durable before the answer. A write
//! is atomic (temp file, fsync, rename, fsync of the directory).

use std::collections::HashMap;
use std::sync::Arc;

use a2a::TaskState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ledger_core::Event;
use serde_json::{Value, json};

use crate::base::fs::write_atomically;
use crate::engine::buffer::TaskHandle;
use crate::engine::files::walk;
use crate::engine::grants::{Denied, Op};
use crate::surface::error::GatewayError;
use crate::surface::state::Gateway;

/// Largest file the workspace takes.
pub const MAX_FILE: usize = 16 << 20;

/// The agent's file routes (authorised by the run's grant, not a caller token).
pub fn router() -> Router<Arc<Gateway>> {
    Router::new().route("/workspace/{run}", get(list)).route("/workspace/{run}/{*path}", get(read_file).put(write_file))
}

/// The bearer token of a request (the agent's grant).
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
}

/// The running task a workspace call is for; `Err` when there is none to record in.
pub(crate) fn active_task(gw: &Gateway, run: &str) -> Result<Arc<TaskHandle>, GatewayError> {
    let h = gw
        .engine
        .task(run)
        .ok_or_else(|| GatewayError::not_found("unknown_run", format!("no run {run:?} is running here")))?;
    if h.snapshot().closed {
        return Err(GatewayError::conflict(
            "run_ended",
            format!("run {run:?} has ended; its workspace grant is no longer valid"),
        ));
    }
    Ok(h)
}

/// Records `events` in the running task (and publishes `status`), durably.
pub(crate) async fn record(
    gw: &Gateway,
    h: &TaskHandle,
    events: Vec<Event>,
    status: Option<(TaskState, Option<String>)>,
) -> Result<(), GatewayError> {
    let kind = events.first().map(|e| e.kind().as_str()).unwrap_or("task.status");
    let _span = h.trace.child("workspace", vec![opentelemetry::KeyValue::new("a2a_ledger.kind", kind)]);
    match gw.engine.record(h, events, None, status).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => {
            Err(GatewayError::unavailable("recording_unavailable", format!("not recorded, so not done: {e}")))
        }
        Err(e) => Err(GatewayError::conflict("run_ended", e.to_string())),
    }
}

/// Checks the grant for `op` on `path`; a refusal is recorded and answered 403.
async fn authorize(gw: &Gateway, h: &TaskHandle, headers: &HeaderMap, op: Op, path: &str) -> Result<(), GatewayError> {
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
            Err(GatewayError::forbidden("denied", reason))
        }
    }
}

/// `GET /workspace/{run}/{path}`.
async fn read_file(
    State(gw): State<Arc<Gateway>>,
    UrlPath((run, path)): UrlPath<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, GatewayError> {
    let h = active_task(&gw, &run)?;
    authorize(&gw, &h, &headers, Op::Read, &path).await?;
    let file = gw.files.file(&run, &path);
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
            return Err(GatewayError::not_found("no_such_file", format!("{path:?} is not a file of this workspace")));
        }
        Err(e) => return Err(GatewayError::Internal(format!("reading {path:?}: {e}"))),
    };
    let hash = *blake3::hash(&bytes).as_bytes();
    keep(&gw, hash, &bytes).await?;
    record(&gw, &h, vec![Event::WorkspaceRead { path: path.clone(), bytes: bytes.len() as u64, hash }], None).await?;
    let mut resp = ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response();
    resp.headers_mut().insert("x-blake3", hex::encode(hash).parse().expect("hex is a header value"));
    Ok(resp)
}

/// Keeps a file version (or a listing) the next entry names by hash, before that entry is
/// recorded, so every workspace hash in the log can be fetched (`GET /v1/payloads/{hash}`).
async fn keep(gw: &Gateway, hash: [u8; 32], bytes: &[u8]) -> Result<(), GatewayError> {
    gw.engine.keep(vec![(hash, bytes.to_vec())]).await.map_err(|e| {
        GatewayError::unavailable("recording_unavailable", format!("the file's bytes could not be kept: {e}"))
    })
}

/// `PUT /workspace/{run}/{path}`.
async fn write_file(
    State(gw): State<Arc<Gateway>>,
    UrlPath((run, path)): UrlPath<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, GatewayError> {
    let h = active_task(&gw, &run)?;
    authorize(&gw, &h, &headers, Op::Write, &path).await?;
    if body.len() > MAX_FILE {
        return Err(GatewayError::TooLarge {
            code: "file_too_large",
            message: format!("a workspace file holds at most {MAX_FILE} bytes"),
        });
    }
    let file = gw.files.file(&run, &path);
    let data = body.clone();
    tokio::task::spawn_blocking(move || write_atomically(&file, &data))
        .await
        .map_err(|e| GatewayError::Internal(e.to_string()))?
        .map_err(|e| GatewayError::Internal(format!("writing {path:?}: {e}")))?;
    let hash = *blake3::hash(&body).as_bytes();
    keep(&gw, hash, &body).await?;
    record(&gw, &h, vec![Event::WorkspaceWritten { path: path.clone(), bytes: body.len() as u64, hash }], None).await?;
    Ok(axum::Json(json!({ "path": path, "bytes": body.len(), "blake3": hex::encode(hash) })).into_response())
}

/// `GET /workspace/{run}?list=DIR`: the files under `DIR` (the root when empty) that the grant
/// may read.
async fn list(
    State(gw): State<Arc<Gateway>>,
    UrlPath(run): UrlPath<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, GatewayError> {
    let h = active_task(&gw, &run)?;
    let dir = q.get("list").map(|d| d.trim_end_matches('/').to_string()).unwrap_or_default();
    authorize(&gw, &h, &headers, Op::List, &dir).await?;
    let base = gw.files.run_dir(&run);
    let start = if dir.is_empty() { base.clone() } else { base.join(&dir) };
    let mut files = Vec::new();
    walk(&start, &base, &mut files).map_err(|e| GatewayError::Internal(e.to_string()))?;
    files.sort();
    // Only what the grant may read is listed (the token was verified above).
    let grants = gw.engine.grants();
    let claims = grants
        .verify(bearer(&headers).unwrap_or_default(), &h.id, &h.agent, &h.grant().id)
        .map_err(|d| GatewayError::forbidden("denied", d.0))?;
    let files: Vec<Value> = files
        .into_iter()
        .filter(|(p, _)| grants.authorize(&claims, Op::Read, p).is_ok())
        .map(|(p, n)| json!({ "path": p, "bytes": n }))
        .collect();
    let body = serde_json::to_vec(&json!({ "dir": dir, "files": files })).expect("serialise");
    let shown = if dir.is_empty() { ".".to_string() } else { format!("{dir}/") };
    let hash = *blake3::hash(&body).as_bytes();
    keep(&gw, hash, &body).await?;
    let event = Event::WorkspaceRead { path: shown, bytes: body.len() as u64, hash };
    record(&gw, &h, vec![event], None).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}
