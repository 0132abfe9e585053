//! The A2A 1.0 surface: the Agent Card, the JSON-RPC binding at `POST /` and the HTTP+JSON
//! binding (`/message:send`, `/message:stream`, `/tasks`, `/tasks/{id}`, `/tasks/{id}:cancel`,
//! `/tasks/{id}:subscribe`, `/extendedAgentCard`). Wire types are the official `a2a-lf` ones.
//!
//! Order of checks (what the conformance kit expects): request content type, `A2A-Version`,
//! JSON, envelope and method, params, capabilities, then the task.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use a2a::{
    AgentCapabilities, AgentCard, AgentCardSignature, AgentInterface, AgentProvider, AgentSkill,
    HttpAuthSecurityScheme, JsonRpcId, Message, Part, Role, SecurityScheme, SendMessageRequest, StreamResponse, Task,
    TaskState, error_code as code,
};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use futures_util::{Stream, StreamExt as _};
use ledger_core::{NamedKey, Protocol};
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::http::Gateway;
use crate::manifest::Manifest;
use crate::tasks::{NewTask, Snapshot, TaskError, TaskHandle, follow, state_name};

/// An A2A error: a code of the spec's table and a message.
#[derive(Debug, Clone)]
pub struct A2aError {
    /// JSON-RPC code (A2A codes are -32001..-32099).
    pub code: i32,
    /// What was wrong.
    pub message: String,
    /// HTTP status override (for errors outside the spec's table, e.g. 401 or 503).
    pub http: Option<StatusCode>,
}

impl A2aError {
    /// An error with the spec's code.
    pub fn new(code: i32, message: impl Into<String>) -> A2aError {
        A2aError { code, message: message.into(), http: None }
    }

    fn invalid_params(m: impl Into<String>) -> A2aError {
        A2aError::new(code::INVALID_PARAMS, m)
    }

    /// HTTP status and gRPC-style status name for the HTTP+JSON binding.
    pub fn http_status(&self) -> (StatusCode, &'static str) {
        let s = match self.code {
            code::TASK_NOT_FOUND | code::METHOD_NOT_FOUND => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            code::CONTENT_TYPE_NOT_SUPPORTED => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "INVALID_ARGUMENT"),
            code::PARSE_ERROR | code::INVALID_REQUEST | code::INVALID_PARAMS => {
                (StatusCode::BAD_REQUEST, "INVALID_ARGUMENT")
            }
            code::INVALID_AGENT_RESPONSE => (StatusCode::BAD_GATEWAY, "INTERNAL"),
            code::INTERNAL_ERROR => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL"),
            _ => (StatusCode::BAD_REQUEST, "FAILED_PRECONDITION"),
        };
        match self.http {
            Some(StatusCode::UNAUTHORIZED) => (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
            Some(StatusCode::SERVICE_UNAVAILABLE) => (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
            Some(other) => (other, s.1),
            None => s,
        }
    }

    fn error_info(&self) -> Value {
        json!({
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": a2a::error_reason(self.code),
            "domain": "a2a-protocol.org",
            "metadata": { "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true) },
        })
    }

    /// The JSON-RPC error object (`code`, `message`, `data` = [ErrorInfo]).
    pub fn jsonrpc(&self) -> Value {
        json!({ "code": self.code, "message": self.message, "data": [self.error_info()] })
    }

    /// The HTTP+JSON binding's error response (AIP-193).
    pub fn rest(&self) -> Response {
        let (status, name) = self.http_status();
        let body = json!({ "error": {
            "code": status.as_u16(),
            "status": name,
            "message": self.message,
            "details": [self.error_info()],
        }});
        let mut r = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

impl From<TaskError> for A2aError {
    fn from(e: TaskError) -> A2aError {
        let c = match &e {
            TaskError::NotFound(_) => code::TASK_NOT_FOUND,
            TaskError::NotCancelable(..) => code::TASK_NOT_CANCELABLE,
            TaskError::Unsupported(_) => code::UNSUPPORTED_OPERATION,
            TaskError::InvalidParams(_) | TaskError::InvalidInput(_) => code::INVALID_PARAMS,
            TaskError::RecordingUnavailable(_) => code::INTERNAL_ERROR,
        };
        let http = matches!(e, TaskError::RecordingUnavailable(_)).then_some(StatusCode::SERVICE_UNAVAILABLE);
        A2aError { code: c, message: e.to_string(), http }
    }
}

// ---------------------------------------------------------------------------------------------
// Checks shared by both bindings.

/// Checks `A2A-Version` (header or query): 1.x is served; absent means 0.3, which is not.
pub fn check_version(headers: &HeaderMap, query: Option<&str>) -> Result<(), A2aError> {
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
        Err(A2aError::new(
            code::VERSION_NOT_SUPPORTED,
            format!(
                "A2A version {v:?} is not supported; this gateway serves A2A 1.0 (send the header A2A-Version: 1.0)"
            ),
        ))
    }
}

/// A request body must be JSON when there is one.
pub fn check_content_type(headers: &HeaderMap, body: &[u8]) -> Result<(), A2aError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if mime.is_empty() || mime == "application/json" || mime.ends_with("+json") {
        Ok(())
    } else {
        Err(A2aError::new(
            code::CONTENT_TYPE_NOT_SUPPORTED,
            format!("request content type {ct:?} is not supported; send application/json"),
        ))
    }
}

fn to_camel(k: &str) -> String {
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

fn params<T: serde::de::DeserializeOwned>(v: Value, what: &str) -> Result<T, A2aError> {
    serde_json::from_value(camelize(v)).map_err(|e| A2aError::invalid_params(format!("{what}: {e}")))
}

// ---------------------------------------------------------------------------------------------
// The operations, independent of the binding.

fn int_param(p: &Value, key: &str) -> Result<Option<i64>, A2aError> {
    match p.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            n.as_i64().map(Some).ok_or_else(|| A2aError::invalid_params(format!("{key} must be an integer")))
        }
        Some(Value::String(s)) => {
            s.parse().map(Some).map_err(|_| A2aError::invalid_params(format!("{key} must be an integer, not {s:?}")))
        }
        Some(other) => Err(A2aError::invalid_params(format!("{key} must be an integer, not {other}"))),
    }
}

fn history_length(p: &Value) -> Result<Option<usize>, A2aError> {
    match int_param(p, "historyLength")? {
        None => Ok(None),
        Some(n) if n < 0 => Err(A2aError::invalid_params("historyLength must not be negative")),
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
    json!({ "text": crate::upstream::message_text(m) })
}

/// What a send started: the task, the cursor its new events start from, and whether the task
/// is new (then the stream starts with its first event) or continued.
struct Sent {
    handle: Arc<TaskHandle>,
    cursor: usize,
    new: bool,
}

async fn send(gw: &Gateway, caller: &Caller, p: Value) -> Result<(Sent, SendMessageRequest), A2aError> {
    if p.get("message").is_none() {
        return Err(A2aError::invalid_params("params.message is required"));
    }
    let req: SendMessageRequest = params(p, "SendMessageRequest")?;
    if req.message.parts.is_empty() {
        return Err(A2aError::invalid_params("message.parts must hold at least one part"));
    }
    if req.message.message_id.is_empty() {
        return Err(A2aError::invalid_params("message.messageId is required"));
    }
    if let Some(h) = req.configuration.as_ref().and_then(|c| c.history_length)
        && h < 0
    {
        return Err(A2aError::invalid_params("configuration.historyLength must not be negative"));
    }
    let push = req.configuration.as_ref().and_then(|c| c.task_push_notification_config.clone());
    if let Some(cfg) = &push {
        // Checked before the task exists (or continues), so a refused config changes nothing.
        gw.push.validate(cfg).await.map_err(|e| match A2aError::from(e) {
            e if e.code == code::INVALID_PARAMS => {
                A2aError::invalid_params(format!("configuration.taskPushNotificationConfig: {}", e.message))
            }
            e => e,
        })?;
        gw.push.prune(|id| gw.engine.task(id).is_some());
    }
    let engine = &gw.engine;
    if let Some(task_id) = &req.message.task_id {
        let handle = engine.get(task_id, &caller.name)?;
        let from = handle.cursor();
        let cursor = engine.continue_task(&handle, req.message.clone()).await?;
        if let Some(cfg) = push {
            // From before the answer was taken: the receiver sees everything it caused.
            gw.push.register(handle.clone(), cfg, from).map_err(A2aError::from)?;
        }
        return Ok((Sent { handle, cursor, new: false }, req));
    }
    let skill = match skill_from(&req.message, req.metadata.as_ref()) {
        Some(s) => {
            if engine.skill(&s).is_none() {
                return Err(A2aError::invalid_params(format!("no agent here has a skill {s:?} (see the Agent Card)")));
            }
            s
        }
        None => engine.default_skill_for(&req.message).ok_or_else(|| A2aError::invalid_params("no skill to run"))?,
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
        })
        .await?;
    if let Some(cfg) = push {
        // From the first event on: the receiver sees the task as created, then every update.
        // A new task has no configs yet, so this cannot be refused.
        gw.push.register(handle.clone(), cfg, 0).map_err(A2aError::from)?;
    }
    Ok((Sent { handle, cursor: 0, new: true }, req))
}

/// SendMessage: waits until the task settles (terminal or interrupted) unless
/// `returnImmediately`, then answers `{"task"}` or `{"message"}`.
async fn send_message(gw: &Gateway, caller: &Caller, p: Value) -> Result<Value, A2aError> {
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
    Ok(json!({ "task": task }))
}

type Events = std::pin::Pin<Box<dyn Stream<Item = Value> + Send>>;

fn event_value(ev: &StreamResponse) -> Value {
    serde_json::to_value(ev).expect("events serialise")
}

/// The events of a SendStreamingMessage: the task's first event (or, for a continued task,
/// its current snapshot), then its updates, ending when it settles.
async fn send_streaming(gw: &Gateway, caller: &Caller, p: Value) -> Result<Events, A2aError> {
    let (sent, _) = send(gw, caller, p).await?;
    let handle = sent.handle;
    if sent.new {
        return Ok(Box::pin(follow(handle, 0, true).map(|(_, ev)| event_value(&ev))));
    }
    let first = event_value(&StreamResponse::Task(handle.snapshot().task));
    let rest = follow(handle, sent.cursor, true).map(|(_, ev)| event_value(&ev));
    Ok(Box::pin(futures_util::stream::once(async move { first }).chain(rest)))
}

/// SubscribeToTask: the current snapshot, then every update until the task ends.
fn subscribe(gw: &Gateway, caller: &Caller, id: &str) -> Result<Events, A2aError> {
    let handle = gw.engine.get(id, &caller.name)?;
    let snap = handle.snapshot();
    if snap.task.status.state.is_terminal() {
        return Err(A2aError::new(
            code::UNSUPPORTED_OPERATION,
            format!("task {id} has ended ({}); there is nothing to subscribe to", state_name(&snap.task.status.state)),
        ));
    }
    let cursor = handle.cursor();
    let first = event_value(&StreamResponse::Task(handle.snapshot().task));
    let rest = follow(handle, cursor, false).map(|(_, ev)| event_value(&ev));
    Ok(Box::pin(futures_util::stream::once(async move { first }).chain(rest)))
}

fn get_task(gw: &Gateway, caller: &Caller, p: &Value) -> Result<Value, A2aError> {
    let id = p.get("id").and_then(Value::as_str).ok_or_else(|| A2aError::invalid_params("params.id is required"))?;
    let history = history_length(p)?;
    let snap = gw.engine.get(id, &caller.name)?.snapshot();
    Ok(serde_json::to_value(shaped(snap.task, history, true)).expect("serialise"))
}

async fn cancel_task(gw: &Gateway, caller: &Caller, id: &str) -> Result<Value, A2aError> {
    let handle = gw.engine.get(id, &caller.name)?;
    let snap: Snapshot = gw.engine.cancel(&handle).await?;
    Ok(serde_json::to_value(snap.task).expect("serialise"))
}

/// ListTasks: the caller's tasks, most recently updated first, cursor-paginated.
fn list_tasks(gw: &Gateway, caller: &Caller, p: &Value) -> Result<Value, A2aError> {
    let page_size = match int_param(p, "pageSize")? {
        None => 50,
        Some(n) if (1..=100).contains(&n) => n as usize,
        Some(n) => return Err(A2aError::invalid_params(format!("pageSize must be between 1 and 100, not {n}"))),
    };
    let history = history_length(p)?;
    let include_artifacts = match p.get("includeArtifacts") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) if s == "true" || s == "false" => s == "true",
        Some(other) => {
            return Err(A2aError::invalid_params(format!("includeArtifacts must be a boolean, not {other}")));
        }
    };
    let context = p.get("contextId").and_then(Value::as_str).filter(|s| !s.is_empty());
    let status: Option<TaskState> = match p.get("status") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() || s == "TASK_STATE_UNSPECIFIED" => None,
        Some(v) => Some(
            serde_json::from_value(v.clone())
                .map_err(|_| A2aError::invalid_params(format!("status {v} is not a TaskState")))?,
        ),
    };
    let after = match p.get("statusTimestampAfter").and_then(Value::as_str) {
        None => None,
        Some(s) => Some(
            chrono::DateTime::parse_from_rfc3339(s)
                .map_err(|e| A2aError::invalid_params(format!("statusTimestampAfter {s:?}: {e}")))?
                .with_timezone(&chrono::Utc),
        ),
    };
    // Cursor: the (timestamp, id) of the last task of the previous page.
    let cursor: Option<(i64, String)> = match p.get("pageToken").and_then(Value::as_str).filter(|s| !s.is_empty()) {
        None => None,
        Some(tok) => {
            let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(tok)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| A2aError::invalid_params("pageToken is not a token this gateway issued"))?;
            let (ts, id) = raw.split_once(':').ok_or_else(|| A2aError::invalid_params("pageToken is malformed"))?;
            Some((ts.parse().map_err(|_| A2aError::invalid_params("pageToken is malformed"))?, id.to_string()))
        }
    };
    let mut rows: Vec<(i64, String, Task)> = gw
        .engine
        .list(&caller.name)
        .into_iter()
        .map(|h| h.snapshot().task)
        .filter(|t| context.is_none_or(|c| t.context_id == c))
        .filter(|t| status.as_ref().is_none_or(|s| t.status.state == *s))
        .filter(|t| after.is_none_or(|a| t.status.timestamp.is_some_and(|ts| ts >= a)))
        .map(|t| (t.status.timestamp.map_or(0, |ts| ts.timestamp_nanos_opt().unwrap_or(0)), t.id.clone(), t))
        .collect();
    rows.sort_by(|a, b| (b.0, &b.1).cmp(&(a.0, &a.1)));
    let total = rows.len();
    let start = match &cursor {
        None => 0,
        Some((ts, id)) => rows.iter().position(|(t, i, _)| (*t, i) < (*ts, id)).unwrap_or(rows.len()),
    };
    let page: Vec<_> = rows.into_iter().skip(start).take(page_size).collect();
    let next = if start + page.len() < total {
        page.last()
            .map(|(ts, id, _)| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{ts}:{id}")))
            .unwrap_or_default()
    } else {
        String::new()
    };
    let tasks: Vec<Task> = page.into_iter().map(|(_, _, t)| shaped(t, history, include_artifacts)).collect();
    Ok(json!({ "tasks": tasks, "nextPageToken": next, "pageSize": page_size, "totalSize": total }))
}

fn push_unsupported() -> A2aError {
    A2aError::new(
        code::PUSH_NOTIFICATION_NOT_SUPPORTED,
        "push notifications are switched off on this gateway (capabilities.pushNotifications is false)",
    )
}

impl From<crate::push::PushError> for A2aError {
    fn from(e: crate::push::PushError) -> A2aError {
        use crate::push::PushError as P;
        match e {
            P::Disabled => push_unsupported(),
            P::Invalid(m) => A2aError::invalid_params(m),
            e @ P::NotFound { .. } => A2aError::new(code::TASK_NOT_FOUND, e.to_string()),
        }
    }
}

/// A push-notification config operation, the same for both bindings.
enum PushOp {
    Create(Value),
    Get(String),
    List { page_size: Option<i64>, page_token: Option<String> },
    Delete(String),
}

/// Runs a push config operation on the caller's task. Push being off is answered before the
/// task is looked up, as the spec orders it.
async fn push_op(gw: &Gateway, caller: &Caller, task: &str, op: PushOp) -> Result<Value, A2aError> {
    if !gw.push.enabled() {
        return Err(push_unsupported());
    }
    let handle = gw.engine.get(task, &caller.name)?;
    gw.push.prune(|id| gw.engine.task(id).is_some());
    match op {
        PushOp::Create(body) => {
            let mut body = camelize(body);
            if let Some(o) = body.as_object_mut() {
                o.entry("taskId").or_insert_with(|| json!(task));
            }
            let cfg: a2a::TaskPushNotificationConfig = params(body, "TaskPushNotificationConfig")?;
            if cfg.task_id != task {
                return Err(A2aError::invalid_params(format!(
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
                Some(n) => return Err(A2aError::invalid_params(format!("pageSize must be 1..100, not {n}"))),
            };
            let start = match page_token.as_deref().filter(|t| !t.is_empty()) {
                None => 0,
                Some(t) => t
                    .parse::<usize>()
                    .map_err(|_| A2aError::invalid_params(format!("pageToken {t:?} is not one this gateway gave")))?,
            };
            let all = gw.push.list(task);
            let page: Vec<_> = all.iter().skip(start).take(size).cloned().collect();
            let next = if start + page.len() < all.len() { (start + page.len()).to_string() } else { String::new() };
            Ok(json!({ "configs": page, "nextPageToken": next }))
        }
        PushOp::Delete(id) => {
            gw.push.delete(task, &id);
            Ok(json!({}))
        }
    }
}

/// The JSON-RPC form of a push config method.
async fn push_rpc(gw: &Gateway, caller: &Caller, method: &str, p: Value) -> Result<Value, A2aError> {
    use a2a::methods as m;
    let str_param = |k: &str| p.get(k).and_then(Value::as_str).map(String::from);
    let task = str_param("taskId").ok_or_else(|| A2aError::invalid_params("params.taskId is required"))?;
    let id = || str_param("id").ok_or_else(|| A2aError::invalid_params("params.id is required"));
    let op = match method {
        m::CREATE_PUSH_CONFIG => PushOp::Create(p.clone()),
        m::GET_PUSH_CONFIG => PushOp::Get(id()?),
        m::DELETE_PUSH_CONFIG => PushOp::Delete(id()?),
        _ => PushOp::List { page_size: int_param(&p, "pageSize")?, page_token: str_param("pageToken") },
    };
    push_op(gw, caller, &task, op).await
}

// ---------------------------------------------------------------------------------------------
// The Agent Card.

/// The card as served: its JSON bytes and ETag.
#[derive(Debug, Clone)]
pub struct CardDoc {
    /// The card.
    pub card: AgentCard,
    /// Its JSON.
    pub json: Bytes,
    /// Strong ETag over the JSON.
    pub etag: String,
    /// When it was built (IMF-fixdate), for `Last-Modified`.
    pub last_modified: String,
}

/// RFC 8785 (JCS) canonical JSON of a value: sorted keys, no whitespace. Our cards hold only
/// strings, integers, booleans, arrays and objects, whose JCS form serde_json writes exactly.
pub fn jcs(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            // JCS sorts by UTF-16 code units; for the ASCII keys of a card that is byte order.
            keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            let body: Vec<String> =
                keys.iter().map(|k| format!("{}:{}", Value::String((*k).clone()), jcs(&map[*k]))).collect();
            format!("{{{}}}", body.join(","))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(jcs).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

/// Signs a card (JWS, RFC 7515, detached JCS payload, EdDSA) with the gateway key.
pub fn sign_card(card: &AgentCard, key: &NamedKey) -> AgentCardSignature {
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let mut unsigned = card.clone();
    unsigned.signatures = None;
    let payload = jcs(&serde_json::to_value(&unsigned).expect("card serialises"));
    let protected = json!({
        "alg": "EdDSA",
        "typ": "JOSE",
        "kid": key.name(),
        "jwk": { "kty": "OKP", "crv": "Ed25519", "x": b64(&key.public_key()) },
    });
    let protected = b64(jcs(&protected).as_bytes());
    let signing_input = format!("{protected}.{}", b64(payload.as_bytes()));
    AgentCardSignature { protected, signature: b64(&key.sign(signing_input.as_bytes())), header: None }
}

/// Builds the gateway's card from the manifest.
pub fn build_card(
    manifest: &Manifest,
    skills: Vec<AgentSkill>,
    public_url: &str,
    anonymous: bool,
    push: bool,
    key: Option<&NamedKey>,
) -> CardDoc {
    let first = &manifest.agents[0];
    let g = &manifest.gateway;
    let mut schemes = HashMap::new();
    schemes.insert(
        "bearer".to_string(),
        SecurityScheme::HttpAuth(HttpAuthSecurityScheme {
            scheme: "Bearer".into(),
            description: Some("An API key or a JWT of a configured issuer, as Authorization: Bearer <token>".into()),
            bearer_format: None,
        }),
    );
    let mut card = AgentCard {
        name: g.name.clone().unwrap_or_else(|| first.name.clone()),
        description: g.description.clone().unwrap_or_else(|| first.description.clone()),
        version: g.version.clone().unwrap_or_else(|| first.version.clone()),
        supported_interfaces: vec![
            AgentInterface::new(public_url, a2a::TRANSPORT_PROTOCOL_JSONRPC),
            AgentInterface::new(public_url, a2a::TRANSPORT_PROTOCOL_HTTP_JSON),
        ],
        capabilities: AgentCapabilities {
            streaming: Some(true),
            push_notifications: Some(push),
            extensions: None,
            extended_agent_card: Some(true),
        },
        default_input_modes: vec!["text/plain".into(), "application/json".into()],
        default_output_modes: vec!["text/plain".into(), "application/json".into()],
        skills,
        provider: g.organization.clone().map(|o| AgentProvider { organization: o, url: public_url.to_string() }),
        documentation_url: None,
        icon_url: None,
        security_schemes: Some(schemes),
        security_requirements: (!anonymous).then(|| vec![HashMap::from([("bearer".to_string(), Vec::new())])]),
        signatures: None,
    };
    if let Some(key) = key {
        card.signatures = Some(vec![sign_card(&card, key)]);
    }
    let json = Bytes::from(serde_json::to_vec(&card).expect("card serialises"));
    let etag = format!("\"{}\"", &blake3::hash(&json).to_hex()[..32]);
    let last_modified = chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    CardDoc { card, json, etag, last_modified }
}

/// The A2A skill of a manifest skill.
pub fn card_skill(s: &crate::manifest::SkillSpec) -> AgentSkill {
    AgentSkill {
        id: s.id.clone(),
        name: s.name.clone(),
        description: s.description.clone(),
        tags: s.tags.clone(),
        examples: (!s.examples.is_empty()).then(|| s.examples.clone()),
        input_modes: None,
        output_modes: None,
        security_requirements: None,
    }
}

/// `GET /.well-known/agent-card.json`: public, cacheable, with `If-None-Match`.
pub async fn agent_card(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    let card = &gw.card;
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == card.etag || t.trim() == "*"));
    let mut r = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, "application/json")], card.json.clone()).into_response()
    };
    let h = r.headers_mut();
    h.insert(header::ETAG, HeaderValue::from_str(&card.etag).expect("ascii"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    if let Ok(v) = HeaderValue::from_str(&card.last_modified) {
        h.insert(header::LAST_MODIFIED, v);
    }
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    r
}

// ---------------------------------------------------------------------------------------------
// JSON-RPC binding.

fn rpc_ok(id: &JsonRpcId, result: Value) -> Response {
    json_response(json!({ "jsonrpc": "2.0", "id": id, "result": result }))
}

fn rpc_err(id: &JsonRpcId, e: &A2aError) -> Response {
    let body = json!({ "jsonrpc": "2.0", "id": id, "error": e.jsonrpc() });
    match e.http {
        Some(s) => {
            let mut r = (s, axum::Json(body)).into_response();
            if s == StatusCode::UNAUTHORIZED {
                r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            r
        }
        None => json_response(body),
    }
}

fn json_response(v: Value) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], serde_json::to_vec(&v).expect("serialise")).into_response()
}

fn sse(events: impl Stream<Item = String> + Send + 'static) -> Response {
    let s = events.map(|data| Ok::<_, Infallible>(SseEvent::default().data(data)));
    let mut r = Sse::new(s).keep_alive(KeepAlive::default()).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut().insert("x-accel-buffering", HeaderValue::from_static("no"));
    r
}

/// `POST /`: one JSON-RPC request.
pub async fn jsonrpc(
    State(gw): State<Arc<Gateway>>,
    caller: Result<axum::Extension<Caller>, axum::extract::rejection::ExtensionRejection>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let id_of = |v: &Value| match v.get("id") {
        Some(Value::String(s)) => JsonRpcId::String(s.clone()),
        Some(Value::Number(n)) => n.as_i64().map_or(JsonRpcId::Null, JsonRpcId::Number),
        _ => JsonRpcId::Null,
    };
    if let Err(e) = check_content_type(&headers, &body) {
        return rpc_err(&JsonRpcId::Null, &e);
    }
    let parsed: Result<Value, _> = serde_json::from_slice(&body);
    let id = parsed.as_ref().map(id_of).unwrap_or(JsonRpcId::Null);
    if let Err(e) = check_version(&headers, uri.query()) {
        return rpc_err(&id, &e);
    }
    let req = match parsed {
        Ok(v) => v,
        Err(e) => {
            return rpc_err(&JsonRpcId::Null, &A2aError::new(code::PARSE_ERROR, format!("the body is not JSON: {e}")));
        }
    };
    let Some(obj) = req.as_object() else {
        let what = if req.is_array() { "batch requests are not supported" } else { "a request must be a JSON object" };
        return rpc_err(&JsonRpcId::Null, &A2aError::new(code::INVALID_REQUEST, what));
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return rpc_err(&id, &A2aError::new(code::INVALID_REQUEST, "jsonrpc must be \"2.0\""));
    }
    if !matches!(obj.get("id"), Some(Value::String(_) | Value::Number(_))) {
        return rpc_err(&id, &A2aError::new(code::INVALID_REQUEST, "id must be a string or an integer"));
    }
    let Some(method) = obj.get("method").and_then(Value::as_str) else {
        return rpc_err(&id, &A2aError::new(code::INVALID_REQUEST, "method must be a string"));
    };
    let p = camelize(obj.get("params").cloned().unwrap_or(json!({})));
    if !p.is_object() {
        return rpc_err(&id, &A2aError::invalid_params("params must be an object"));
    }
    if !a2a::methods::is_valid(method) {
        return rpc_err(
            &id,
            &A2aError::new(code::METHOD_NOT_FOUND, format!("method {method:?} is not an A2A 1.0 method")),
        );
    }
    let caller = match caller {
        Ok(axum::Extension(c)) => c,
        Err(_) => {
            return rpc_err(
                &id,
                &A2aError {
                    code: code::INVALID_REQUEST,
                    message: "unauthenticated".into(),
                    http: Some(StatusCode::UNAUTHORIZED),
                },
            );
        }
    };
    use a2a::methods as m;
    let stream = |events: Result<Events, A2aError>| match events {
        Err(e) => rpc_err(&id, &e),
        Ok(events) => {
            let id = id.clone();
            sse(events.map(move |ev| json!({ "jsonrpc": "2.0", "id": id, "result": ev }).to_string()))
        }
    };
    let result = match method {
        m::SEND_MESSAGE => send_message(&gw, &caller, p).await,
        m::SEND_STREAMING_MESSAGE => return stream(send_streaming(&gw, &caller, p).await),
        m::SUBSCRIBE_TO_TASK => {
            let events = match p.get("id").and_then(Value::as_str) {
                Some(task) => subscribe(&gw, &caller, task),
                None => Err(A2aError::invalid_params("params.id is required")),
            };
            return stream(events);
        }
        m::GET_TASK => get_task(&gw, &caller, &p),
        m::LIST_TASKS => list_tasks(&gw, &caller, &p),
        m::CANCEL_TASK => match p.get("id").and_then(Value::as_str) {
            Some(task) => cancel_task(&gw, &caller, task).await,
            None => Err(A2aError::invalid_params("params.id is required")),
        },
        m::GET_EXTENDED_AGENT_CARD => Ok(serde_json::to_value(&gw.card.card).expect("serialise")),
        _ => {
            if !gw.push.enabled() {
                Err(push_unsupported())
            } else {
                push_rpc(&gw, &caller, method, p).await
            }
        }
    };
    match result {
        Ok(v) => rpc_ok(&id, v),
        Err(e) => rpc_err(&id, &e),
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP+JSON binding.

fn rest_json(v: Value) -> Response {
    json_response(v)
}

fn rest_checks(headers: &HeaderMap, uri: &axum::http::Uri, body: &[u8]) -> Result<(), A2aError> {
    check_content_type(headers, body)?;
    check_version(headers, uri.query())
}

fn rest_body(body: &[u8]) -> Result<Value, A2aError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| A2aError::new(code::PARSE_ERROR, format!("the body is not JSON: {e}")))?;
    if !v.is_object() {
        return Err(A2aError::invalid_params("the body must be a JSON object"));
    }
    Ok(camelize(v))
}

fn rest_stream(events: Result<Events, A2aError>) -> Response {
    match events {
        Err(e) => e.rest(),
        Ok(events) => sse(events.map(|ev| ev.to_string())),
    }
}

/// `POST /message:send`.
pub async fn rest_send(
    State(gw): State<Arc<Gateway>>,
    axum::Extension(caller): axum::Extension<Caller>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r = async {
        rest_checks(&headers, &uri, &body)?;
        send_message(&gw, &caller, rest_body(&body)?).await
    };
    r.await.map_or_else(|e| e.rest(), rest_json)
}

/// `POST /message:stream`.
pub async fn rest_stream_send(
    State(gw): State<Arc<Gateway>>,
    axum::Extension(caller): axum::Extension<Caller>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r = async {
        rest_checks(&headers, &uri, &body)?;
        send_streaming(&gw, &caller, rest_body(&body)?).await
    };
    rest_stream(r.await)
}

fn query_value(q: &HashMap<String, String>) -> Value {
    Value::Object(q.iter().map(|(k, v)| (to_camel(k), Value::String(v.clone()))).collect())
}

/// `GET /tasks`: ListTasks.
pub async fn rest_list(
    State(gw): State<Arc<Gateway>>,
    axum::Extension(caller): axum::Extension<Caller>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let r = check_version(&headers, uri.query()).and_then(|()| list_tasks(&gw, &caller, &query_value(&q)));
    r.map_or_else(|e| e.rest(), rest_json)
}

/// `GET /tasks/{id}` (GetTask) and `GET /tasks/{id}:subscribe`.
pub async fn rest_get(
    State(gw): State<Arc<Gateway>>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(rest): Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(e) = check_version(&headers, uri.query()) {
        return e.rest();
    }
    match rest.rsplit_once(':') {
        Some((id, "subscribe")) => rest_stream(subscribe(&gw, &caller, id)),
        Some((_, action)) => {
            A2aError::new(code::METHOD_NOT_FOUND, format!("GET /tasks/{{id}}:{action} is not an operation")).rest()
        }
        None => {
            let mut p = query_value(&q);
            p["id"] = json!(rest);
            get_task(&gw, &caller, &p).map_or_else(|e| e.rest(), rest_json)
        }
    }
}

/// `POST /tasks/{id}:cancel` and `POST /tasks/{id}:subscribe`.
pub async fn rest_post_task(
    State(gw): State<Arc<Gateway>>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(rest): Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(e) = rest_checks(&headers, &uri, &body).and_then(|()| rest_body(&body).map(drop)) {
        return e.rest();
    }
    match rest.rsplit_once(':') {
        Some((id, "cancel")) => cancel_task(&gw, &caller, id).await.map_or_else(|e| e.rest(), rest_json),
        Some((id, "subscribe")) => rest_stream(subscribe(&gw, &caller, id)),
        _ => A2aError::new(
            code::METHOD_NOT_FOUND,
            format!("POST /tasks/{rest} is not an operation; use :cancel or :subscribe"),
        )
        .rest(),
    }
}

/// `GET /extendedAgentCard`.
pub async fn rest_extended_card(
    State(gw): State<Arc<Gateway>>,
    axum::Extension(_caller): axum::Extension<Caller>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    match check_version(&headers, uri.query()) {
        Ok(()) => ([(header::CONTENT_TYPE, "application/json")], gw.card.json.clone()).into_response(),
        Err(e) => e.rest(),
    }
}

/// `POST /tasks/{id}/pushNotificationConfigs` (create).
pub async fn rest_push_create(
    State(gw): State<Arc<Gateway>>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(task): Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r = match rest_checks(&headers, &uri, &body).and_then(|()| rest_body(&body)) {
        Ok(body) => push_op(&gw, &caller, &task, PushOp::Create(body)).await,
        Err(e) => Err(e),
    };
    r.map_or_else(|e| e.rest(), rest_json)
}

/// `GET /tasks/{id}/pushNotificationConfigs` (list).
pub async fn rest_push_list(
    State(gw): State<Arc<Gateway>>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(task): Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let q = query_value(&q);
    let op = check_version(&headers, uri.query()).and_then(|()| {
        let page_size = int_param(&q, "pageSize")?;
        let page_token = q.get("pageToken").and_then(Value::as_str).map(String::from);
        Ok(PushOp::List { page_size, page_token })
    });
    let r = match op {
        Ok(op) => push_op(&gw, &caller, &task, op).await,
        Err(e) => Err(e),
    };
    r.map_or_else(|e| e.rest(), rest_json)
}

/// `GET` and `DELETE` `/tasks/{id}/pushNotificationConfigs/{config}`.
pub async fn rest_push_config(
    State(gw): State<Arc<Gateway>>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path((task, config)): Path<(String, String)>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let op = if method == axum::http::Method::DELETE { PushOp::Delete(config) } else { PushOp::Get(config) };
    let r = match check_version(&headers, uri.query()) {
        Ok(()) => push_op(&gw, &caller, &task, op).await,
        Err(e) => Err(e),
    };
    match r {
        Ok(v) => rest_json(v),
        Err(e) => e.rest(),
    }
}

/// A user message with one data part, for surfaces that take plain JSON input.
pub fn data_message(input: &Value) -> Message {
    Message::new(Role::User, vec![Part::data(input.clone()).with_media_type("application/json")])
}
