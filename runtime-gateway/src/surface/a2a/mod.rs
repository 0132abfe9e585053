//! The A2A 1.0 surface: the Agent Card ([`card`]), the JSON-RPC binding at `POST /` ([`jsonrpc`])
//! and the HTTP+JSON binding ([`rest`]: (`/message:send`, `/message:stream`, `/tasks`, `/tasks/{id}`, `/tasks/{id}:cancel`,
//! `/tasks/{id}:subscribe`, `/extendedAgentCard`, push configs). Wire types are the official
//! `a2a-lf` ones. This module holds the operations both bindings share; errors are
//! [`GatewayError`]s, rendered by each binding as a function of it.
//!
//! Order of checks (what the conformance kit expects): request content type, `A2A-Version`,
//! JSON, envelope and method, params, capabilities, then the task.
pub mod card;
pub mod extensions;
pub mod grpc;
pub mod jsonrpc;
pub mod rest;

pub use extensions::Active;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use a2a::{Message, Role, SendMessageRequest, StreamResponse, Task, TaskState, error_code as code};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use futures_util::{Stream, StreamExt as _};
use ledger_core::Protocol;
use serde_json::{Value, json};

use crate::base::auth::Caller;
use crate::engine::buffer::{Snapshot, TaskHandle, follow, state_name};
use crate::engine::push::PushError;
use crate::engine::tasks::NewTask;
use crate::engine::upstream::message_text;
use crate::surface::error::GatewayError;
use crate::surface::state::Gateway;

// ---------------------------------------------------------------------------------------------
// Checks shared by both bindings.

/// The checks every A2A operation makes after the body's content type: `A2A-Version`, then
/// the extensions (a required one not activated is refused); answers the active extensions.
pub fn check_request(gw: &Gateway, headers: &HeaderMap, query: Option<&str>) -> Result<Active, GatewayError> {
    check_version(headers, query)?;
    extensions::activate(gw, headers)
}

/// Checks `A2A-Version` (header or query): 1.x is served; absent means 0.3, which is not.
pub fn check_version(headers: &HeaderMap, query: Option<&str>) -> Result<(), GatewayError> {
    let from_query = query.and_then(|q| {
        q.split('&').find_map(|kv| kv.strip_prefix("A2A-Version=").or_else(|| kv.strip_prefix("a2a-version=")))
    });
    let v = headers
        .get("a2a-version")
        .and_then(|v| v.to_str().ok())
        .or(from_query)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .unwrap_or("0.3");
    if v.split('.').next() == Some("1") {
        Ok(())
    } else {
        Err(GatewayError::a2a(
            code::VERSION_NOT_SUPPORTED,
            format!(
                "A2A version {v:?} is not supported; this gateway serves A2A 1.0 (send the header A2A-Version: 1.0)"
            ),
        ))
    }
}

/// A request body must be JSON when there is one.
pub fn check_content_type(headers: &HeaderMap, body: &[u8]) -> Result<(), GatewayError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if mime.is_empty() || mime == "application/json" || mime.ends_with("+json") {
        Ok(())
    } else {
        Err(GatewayError::a2a(
            code::CONTENT_TYPE_NOT_SUPPORTED,
            format!("request content type {ct:?} is not supported; send application/json"),
        ))
    }
}

pub(super) fn to_camel(k: &str) -> String {
    let mut out = String::with_capacity(k.len());
    let mut up = false;
    for c in k.chars() {
        if c == '_' {
            up = true;
        } else if up {
            out.extend(c.to_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// ProtoJSON accepts field names in snake_case too: rewrite them to camelCase, leaving the
/// contents of `data` parts and `metadata` maps (caller data) as they are.
pub fn camelize(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let keep = matches!(k.as_str(), "data" | "metadata" | "params");
                    (to_camel(&k), if keep { v } else { camelize(v) })
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(camelize).collect()),
        other => other,
    }
}

fn params<T: serde::de::DeserializeOwned>(v: Value, what: &str) -> Result<T, GatewayError> {
    serde_json::from_value(camelize(v)).map_err(|e| GatewayError::invalid_params(format!("{what}: {e}")))
}

// ---------------------------------------------------------------------------------------------
// The operations, independent of the binding.

pub(super) fn int_param(p: &Value, key: &str) -> Result<Option<i64>, GatewayError> {
    match p.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            n.as_i64().map(Some).ok_or_else(|| GatewayError::invalid_params(format!("{key} must be an integer")))
        }
        Some(Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| GatewayError::invalid_params(format!("{key} must be an integer, not {s:?}"))),
        Some(other) => Err(GatewayError::invalid_params(format!("{key} must be an integer, not {other}"))),
    }
}

fn history_length(p: &Value) -> Result<Option<usize>, GatewayError> {
    match int_param(p, "historyLength")? {
        None => Ok(None),
        Some(n) if n < 0 => Err(GatewayError::invalid_params("historyLength must not be negative")),
        Some(n) => Ok(Some(n as usize)),
    }
}

/// The task as a caller sees it: history cut to `history_length`, artifacts kept or dropped.
fn shaped(mut t: Task, history: Option<usize>, artifacts: bool) -> Task {
    match history {
        Some(0) => t.history = None,
        Some(n) => {
            if let Some(h) = &mut t.history {
                let cut = h.len().saturating_sub(n);
                h.drain(..cut);
            }
        }
        None => {}
    }
    if !artifacts {
        t.artifacts = None;
    }
    if t.history.as_ref().is_some_and(Vec::is_empty) {
        t.history = None;
    }
    t
}

fn skill_from(m: &Message, req_meta: Option<&HashMap<String, Value>>) -> Option<String> {
    m.metadata
        .as_ref()
        .and_then(|md| md.get("skill").or_else(|| md.get("skillId")))
        .or_else(|| req_meta.and_then(|md| md.get("skill").or_else(|| md.get("skillId"))))
        .and_then(Value::as_str)
        .map(String::from)
}

/// The skill input of a message: its first `data` part when it is an object, otherwise
/// `{"text": <all text parts>}`.
pub fn message_input(m: &Message) -> Value {
    for p in &m.parts {
        if let a2a::PartContent::Data(d @ Value::Object(_)) = &p.content {
            return d.clone();
        }
    }
    json!({ "text": message_text(m) })
}

/// What a send started: the task, the cursor its new events start from, and whether the task
/// is new (then the stream starts with its first event) or continued.
struct Sent {
    handle: Arc<TaskHandle>,
    cursor: usize,
    new: bool,
}

async fn send(gw: &Gateway, caller: &Caller, p: Value) -> Result<(Sent, SendMessageRequest), GatewayError> {
    if p.get("message").is_none() {
        return Err(GatewayError::invalid_params("params.message is required"));
    }
    let req: SendMessageRequest = params(p, "SendMessageRequest")?;
    if req.message.parts.is_empty() {
        return Err(GatewayError::invalid_params("message.parts must hold at least one part"));
    }
    if req.message.message_id.is_empty() {
        return Err(GatewayError::invalid_params("message.messageId is required"));
    }
    if let Some(h) = req.configuration.as_ref().and_then(|c| c.history_length)
        && h < 0
    {
        return Err(GatewayError::invalid_params("configuration.historyLength must not be negative"));
    }
    let push = req.configuration.as_ref().and_then(|c| c.task_push_notification_config.clone());
    if let Some(cfg) = &push {
        // Checked before the task exists (or continues), so a refused config changes nothing.
        gw.push.validate(cfg).await.map_err(|e| match e {
            PushError::Invalid(m) => {
                GatewayError::invalid_params(format!("configuration.taskPushNotificationConfig: {m}"))
            }
            e => GatewayError::Push(e),
        })?;
    }
    let engine = &gw.engine;
    if let Some(task_id) = &req.message.task_id {
        let handle = engine.get(task_id, &caller.name).await?;
        let from = handle.cursor();
        let cursor = engine.continue_task(&handle, req.message.clone()).await?;
        if let Some(cfg) = push {
            // From before the answer was taken: the receiver sees everything it caused.
            gw.push.register(handle.clone(), cfg, from)?;
        }
        return Ok((Sent { handle, cursor, new: false }, req));
    }
    let skill = match skill_from(&req.message, req.metadata.as_ref()) {
        Some(s) => {
            if engine.skill(&s).is_none() {
                return Err(GatewayError::invalid_params(format!(
                    "no agent here has a skill {s:?} (see the Agent Card)"
                )));
            }
            s
        }
        None => {
            // A message in a known context goes on with the context's agent.
            let of_context = match &req.message.context_id {
                Some(c) => engine.context_skill(&caller.name, c, &req.message).await?,
                None => None,
            };
            match of_context {
                Some(s) => s,
                None => engine
                    .default_skill_for(&req.message)
                    .ok_or_else(|| GatewayError::invalid_params("no skill to run"))?,
            }
        }
    };
    let mut message = req.message.clone();
    message.role = Role::User;
    let input_bytes = serde_json::to_vec(&req.message).unwrap_or_default();
    let handle = engine
        .create(NewTask {
            caller: caller.name.clone(),
            protocol: Protocol::A2a,
            skill,
            input: message_input(&req.message),
            input_bytes,
            message,
            context_id: req.message.context_id.clone(),
            parent: caller.parent.clone(),
            mcp_caller: None,
        })
        .await?;
    if let Some(cfg) = push {
        // From the first event on: the receiver sees the task as created, then every update.
        // A new task has no configs yet, so this cannot be refused.
        gw.push.register(handle.clone(), cfg, 0)?;
    }
    Ok((Sent { handle, cursor: 0, new: true }, req))
}

/// SendMessage: waits until the task settles (terminal or interrupted) unless
/// `returnImmediately`, then answers `{"task"}` or `{"message"}`.
pub(super) async fn send_message(
    gw: &Gateway,
    caller: &Caller,
    active: &Active,
    p: Value,
) -> Result<Value, GatewayError> {
    let (sent, req) = send(gw, caller, p).await?;
    let cfg = req.configuration.unwrap_or(a2a::SendMessageConfiguration {
        accepted_output_modes: None,
        task_push_notification_config: None,
        history_length: None,
        return_immediately: None,
    });
    let snap = if cfg.return_immediately.unwrap_or(false) {
        sent.handle.snapshot()
    } else {
        sent.handle.wait_settled(sent.cursor).await
    };
    if let Some(reply) = snap.reply {
        return Ok(json!({ "message": reply }));
    }
    let task = shaped(snap.task, cfg.history_length.map(|h| h as usize), true);
    let task = extensions::with_receipt(&gw.engine, active, serde_json::to_value(task).expect("serialise")).await;
    Ok(json!({ "task": task }))
}

pub(super) type Events = std::pin::Pin<Box<dyn Stream<Item = Value> + Send>>;

fn event_value(ev: &StreamResponse) -> Value {
    serde_json::to_value(ev).expect("events serialise")
}

/// The events of a SendStreamingMessage: the task's first event (or, for a continued task,
/// its current snapshot), then its updates, ending when it settles.
pub(super) async fn send_streaming(
    gw: &Gateway,
    caller: &Caller,
    active: &Active,
    p: Value,
) -> Result<Events, GatewayError> {
    let (sent, _) = send(gw, caller, p).await?;
    let handle = sent.handle;
    if sent.new {
        let events = follow(handle, 0, true).map(|(_, ev)| event_value(&ev));
        return Ok(final_receipt(gw, active, Box::pin(events)));
    }
    let first = event_value(&StreamResponse::Task(handle.snapshot().task));
    let rest = follow(handle, sent.cursor, true).map(|(_, ev)| event_value(&ev));
    Ok(final_receipt(gw, active, Box::pin(futures_util::stream::once(async move { first }).chain(rest))))
}

/// With the receipt extension active: the final status update of a stream (a terminal state)
/// carries the run's receipt in its metadata, as a final task does.
fn final_receipt(gw: &Gateway, active: &Active, events: Events) -> Events {
    if !active.has(extensions::RECEIPT) {
        return events;
    }
    let (engine, active) = (gw.engine.clone(), active.clone());
    Box::pin(events.then(move |mut ev| {
        let (engine, active) = (engine.clone(), active.clone());
        async move {
            if let Some(update) = ev.get_mut("statusUpdate") {
                let task = json!({"id": update["taskId"], "status": update["status"], "metadata": update["metadata"]});
                let task = extensions::with_receipt(&engine, &active, task).await;
                update["metadata"] = task["metadata"].clone();
            }
            ev
        }
    }))
}

/// SubscribeToTask: the current snapshot, then every update until the task ends.
pub(super) async fn subscribe(
    gw: &Gateway,
    caller: &Caller,
    active: &Active,
    id: &str,
) -> Result<Events, GatewayError> {
    let handle = gw.engine.get(id, &caller.name).await?;
    let snap = handle.snapshot();
    if snap.task.status.state.is_terminal() {
        return Err(GatewayError::a2a(
            code::UNSUPPORTED_OPERATION,
            format!("task {id} has ended ({}); there is nothing to subscribe to", state_name(&snap.task.status.state)),
        ));
    }
    let cursor = handle.cursor();
    let first = event_value(&StreamResponse::Task(handle.snapshot().task));
    let rest = follow(handle, cursor, false).map(|(_, ev)| event_value(&ev));
    Ok(final_receipt(gw, active, Box::pin(futures_util::stream::once(async move { first }).chain(rest))))
}

pub(super) async fn get_task(gw: &Gateway, caller: &Caller, active: &Active, p: &Value) -> Result<Value, GatewayError> {
    let id =
        p.get("id").and_then(Value::as_str).ok_or_else(|| GatewayError::invalid_params("params.id is required"))?;
    let history = history_length(p)?;
    let snap = gw.engine.get(id, &caller.name).await?.snapshot();
    let task = serde_json::to_value(shaped(snap.task, history, true)).expect("serialise");
    Ok(extensions::with_receipt(&gw.engine, active, task).await)
}

pub(super) async fn cancel_task(gw: &Gateway, caller: &Caller, id: &str) -> Result<Value, GatewayError> {
    let handle = gw.engine.get(id, &caller.name).await?;
    let snap: Snapshot = gw.engine.cancel(&handle).await?;
    Ok(serde_json::to_value(snap.task).expect("serialise"))
}

/// ListTasks: the caller's tasks (every task the log holds, not only those in memory), newest
/// first, cursor-paginated over the ledger's run catalog.
pub(super) async fn list_tasks(gw: &Gateway, caller: &Caller, p: &Value) -> Result<Value, GatewayError> {
    let page_size = match int_param(p, "pageSize")? {
        None => 50,
        Some(n) if (1..=100).contains(&n) => n as usize,
        Some(n) => return Err(GatewayError::invalid_params(format!("pageSize must be between 1 and 100, not {n}"))),
    };
    let history = history_length(p)?;
    let include_artifacts = match p.get("includeArtifacts") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) if s == "true" || s == "false" => s == "true",
        Some(other) => {
            return Err(GatewayError::invalid_params(format!("includeArtifacts must be a boolean, not {other}")));
        }
    };
    let context = p.get("contextId").and_then(Value::as_str).filter(|s| !s.is_empty());
    let status: Option<TaskState> = match p.get("status") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() || s == "TASK_STATE_UNSPECIFIED" => None,
        Some(v) => Some(
            serde_json::from_value(v.clone())
                .map_err(|_| GatewayError::invalid_params(format!("status {v} is not a TaskState")))?,
        ),
    };
    let after = match p.get("statusTimestampAfter").and_then(Value::as_str) {
        None => None,
        Some(s) => Some(
            chrono::DateTime::parse_from_rfc3339(s)
                .map_err(|e| GatewayError::invalid_params(format!("statusTimestampAfter {s:?}: {e}")))?
                .with_timezone(&chrono::Utc),
        ),
    };
    // Cursor: the `task.accepted` index of the last task of the previous page.
    let before: Option<u64> = match p.get("pageToken").and_then(Value::as_str).filter(|s| !s.is_empty()) {
        None => None,
        Some(tok) => Some(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(tok)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|raw| raw.strip_prefix("before:").and_then(|i| i.parse().ok()))
                .ok_or_else(|| GatewayError::invalid_params("pageToken is not a token this gateway issued"))?,
        ),
    };
    let keep = |t: &Task| {
        status.as_ref().is_none_or(|s| t.status.state == *s)
            && after.is_none_or(|a| t.status.timestamp.is_some_and(|ts| ts >= a))
    };
    let filtered = status.is_some() || after.is_some();
    let (page, next, total) = gw.engine.list(&caller.name, context, &keep, filtered, before, page_size).await?;
    let next = next
        .map(|i| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("before:{i}")))
        .unwrap_or_default();
    let tasks: Vec<Task> =
        page.into_iter().map(|(_, h)| shaped(h.snapshot().task, history, include_artifacts)).collect();
    Ok(json!({ "tasks": tasks, "nextPageToken": next, "pageSize": page_size, "totalSize": total }))
}

/// A push-notification config operation, the same for both bindings.
pub(super) enum PushOp {
    Create(Value),
    Get(String),
    List { page_size: Option<i64>, page_token: Option<String> },
    Delete(String),
}

/// Runs a push config operation on the caller's task. Push being off is answered before the
/// task is looked up, as the spec orders it.
pub(super) async fn push_op(gw: &Gateway, caller: &Caller, task: &str, op: PushOp) -> Result<Value, GatewayError> {
    if !gw.push.enabled() {
        return Err(GatewayError::Push(PushError::Disabled));
    }
    let handle = gw.engine.get(task, &caller.name).await?;
    match op {
        PushOp::Create(body) => {
            let mut body = camelize(body);
            if let Some(o) = body.as_object_mut() {
                o.entry("taskId").or_insert_with(|| json!(task));
            }
            let cfg: a2a::TaskPushNotificationConfig = params(body, "TaskPushNotificationConfig")?;
            if cfg.task_id != task {
                return Err(GatewayError::invalid_params(format!(
                    "taskId {:?} does not match the task {task:?} of the request",
                    cfg.task_id
                )));
            }
            let from = handle.cursor();
            let cfg = gw.push.create(handle, cfg, from).await?;
            Ok(serde_json::to_value(cfg).expect("serialise"))
        }
        PushOp::Get(id) => Ok(serde_json::to_value(gw.push.get(task, &id)?).expect("serialise")),
        PushOp::List { page_size, page_token } => {
            let size = match page_size {
                None | Some(0) => 100,
                Some(n @ 1..=100) => n as usize,
                Some(n) => return Err(GatewayError::invalid_params(format!("pageSize must be 1..100, not {n}"))),
            };
            let start = match page_token.as_deref().filter(|t| !t.is_empty()) {
                None => 0,
                Some(t) => t.parse::<usize>().map_err(|_| {
                    GatewayError::invalid_params(format!("pageToken {t:?} is not one this gateway gave"))
                })?,
            };
            let all = gw.push.list(task);
            let page: Vec<_> = all.iter().skip(start).take(size).cloned().collect();
            let next = if start + page.len() < all.len() { (start + page.len()).to_string() } else { String::new() };
            Ok(json!({ "configs": page, "nextPageToken": next }))
        }
        PushOp::Delete(id) => {
            gw.push.delete(task, &id)?;
            Ok(json!({}))
        }
    }
}

/// A JSON body with `Content-Type: application/json`.
pub(super) fn json_response(v: Value) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], serde_json::to_vec(&v).expect("serialise")).into_response()
}

/// An SSE stream of `data` lines, unbuffered.
pub(super) fn sse(events: impl Stream<Item = String> + Send + 'static) -> Response {
    let s = events.map(|data| Ok::<_, Infallible>(SseEvent::default().data(data)));
    let mut r = Sse::new(s).keep_alive(KeepAlive::default()).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut().insert("x-accel-buffering", HeaderValue::from_static("no"));
    r
}

pub use crate::engine::updates::data_message;
