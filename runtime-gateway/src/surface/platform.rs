//! The platform REST: `POST /tasks`, `GET /tasks/{id}`, `GET /sse/{task}` (with
//! `Last-Event-ID`).
//!
//! `GET /tasks` and `GET /tasks/{id}` are shared with the A2A HTTP+JSON binding: a request with
//! an `A2A-Version` header is A2A (the binding requires the header), one without is the
//! platform's.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt as _;
use ledger_core::Protocol;
use serde_json::{Value, json};

use crate::base::auth::Caller;
use crate::engine::buffer::{Snapshot, TaskHandle, follow, state_name};
use crate::engine::tasks::{Engine, NewTask};
use crate::engine::upstream::message_text;
use crate::surface::a2a;
use crate::surface::error::GatewayError;
use crate::surface::state::Gateway;

/// `/tasks`, `/tasks/{id}` (GET) and `/sse/{task}`.
pub fn router() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/tasks", get(list_tasks).post(create_task))
        .route("/tasks/{rest}", get(get_task))
        .route("/sse/{task}", get(task_events))
}

/// Adds the `Link` to the run's receipt.
pub(crate) fn receipt_link(r: &mut Response, run: &str) {
    if let Ok(v) = HeaderValue::from_str(&format!("</runs/{run}/receipt>; rel=\"receipt\"")) {
        r.headers_mut().append(header::LINK, v);
    }
}

/// The platform's view of a task.
fn platform_task(engine: &Engine, h: &TaskHandle, snap: &Snapshot) -> Value {
    let mut v = json!({
        "id": h.id,
        "contextId": h.context_id,
        "skill": h.skill,
        "status": state_name(&snap.task.status.state),
        "sse": format!("{}/sse/{}", engine.public_url(), h.id),
        "receipt": engine.receipt_url(&h.id),
        "task": snap.task,
    });
    outcome_fields(&mut v, snap);
    v
}

/// The result, error, closing message and recording error of a task, where it has them.
pub(crate) fn outcome_fields(v: &mut Value, snap: &Snapshot) {
    if let Some(r) = &snap.result {
        v["result"] = r.clone();
    }
    if let Some(e) = &snap.error {
        v["error"] = json!(e);
    }
    if let Some(m) = snap.task.status.message.as_ref() {
        v["message"] = json!(message_text(m));
    }
    if let Some(e) = &snap.recording_error {
        v["recordingError"] = json!(e);
    }
}

/// The answer of `/invoke` (and the last event of an SSE that `/invoke` opened).
pub(crate) fn invoke_body(engine: &Engine, h: &TaskHandle, snap: &Snapshot) -> Value {
    let mut v = json!({
        "run": h.id,
        "skill": h.skill,
        "status": state_name(&snap.task.status.state),
        "receipt": engine.receipt_url(&h.id),
    });
    outcome_fields(&mut v, snap);
    if let Some(a) = &snap.task.artifacts {
        v["artifacts"] = json!(a);
    }
    if !snap.task.status.state.is_terminal() {
        v["task"] = json!(format!("{}/tasks/{}", engine.public_url(), h.id));
        v["sse"] = json!(format!("{}/sse/{}", engine.public_url(), h.id));
    }
    v
}

fn has_a2a_version(headers: &HeaderMap) -> bool {
    headers.contains_key("a2a-version")
}

async fn list_tasks(
    State(gw): State<Arc<Gateway>>,
    caller: axum::Extension<Caller>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    q: Query<HashMap<String, String>>,
) -> Response {
    // ListTasks exists only in A2A; without the header it is still served as A2A ListTasks,
    // whose version check then says what is missing.
    a2a::rest::rest_list(State(gw), caller, uri, headers, q).await
}

async fn get_task(
    State(gw): State<Arc<Gateway>>,
    caller: axum::Extension<Caller>,
    Path(rest): Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    q: Query<HashMap<String, String>>,
) -> Response {
    if has_a2a_version(&headers) || rest.contains(':') {
        return a2a::rest::rest_get(State(gw), caller, Path(rest), uri, headers, q).await;
    }
    match gw.engine.get(&rest, &caller.name).await {
        Ok(h) => {
            let mut r = axum::Json(platform_task(&gw.engine, &h, &h.snapshot())).into_response();
            receipt_link(&mut r, &h.id);
            r
        }
        Err(e) => GatewayError::from(e).into_response(),
    }
}

/// The JSON of a request body; an empty body is `{}`.
pub(crate) fn parse_input(body: &[u8]) -> Result<Value, GatewayError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|e| {
        GatewayError::bad_request(
            "bad_json",
            format!("the body is not JSON ({e}) at line {} column {}", e.line(), e.column()),
        )
    })
}

/// Starts a run of `skill` for a platform surface (`POST /tasks`, `/invoke`).
pub(crate) async fn start(
    gw: &Gateway,
    caller: &Caller,
    skill: &str,
    input: Value,
    context_id: Option<String>,
) -> Result<Arc<TaskHandle>, GatewayError> {
    if gw.engine.skill(skill).is_none() {
        return Err(GatewayError::not_found(
            "unknown_skill",
            format!("no agent here has a skill {skill:?}; the Agent Card lists them"),
        ));
    }
    let input_bytes = serde_json::to_vec(&input).expect("serialise");
    let message = a2a::data_message(&input);
    Ok(gw
        .engine
        .create(NewTask {
            caller: caller.name.clone(),
            protocol: Protocol::Https,
            skill: skill.to_string(),
            input,
            input_bytes,
            message,
            context_id,
            parent: caller.parent.clone(),
            mcp_caller: None,
        })
        .await?)
}

/// `POST /tasks`: `{"skill", "input", "contextId"?}` → 202 with the task id and its SSE link.
async fn create_task(
    State(gw): State<Arc<Gateway>>,
    axum::Extension(caller): axum::Extension<Caller>,
    body: Bytes,
) -> Result<Response, GatewayError> {
    let v = parse_input(&body)?;
    let Some(skill) = v.get("skill").and_then(Value::as_str) else {
        return Err(GatewayError::bad_request("missing_skill", "the body needs \"skill\": the id of the skill to run"));
    };
    let input = v.get("input").cloned().unwrap_or(json!({}));
    let context = v.get("contextId").and_then(Value::as_str).map(String::from);
    let h = start(&gw, &caller, skill, input, context).await?;
    let body = json!({
        "id": h.id,
        "contextId": h.context_id,
        "status": "submitted",
        "task": format!("{}/tasks/{}", gw.engine.public_url(), h.id),
        "sse": format!("{}/sse/{}", gw.engine.public_url(), h.id),
        "receipt": gw.engine.receipt_url(&h.id),
    });
    let mut r = (StatusCode::ACCEPTED, axum::Json(body)).into_response();
    if let Ok(loc) = HeaderValue::from_str(&format!("/tasks/{}", h.id)) {
        r.headers_mut().insert(header::LOCATION, loc);
    }
    receipt_link(&mut r, &h.id);
    Ok(r)
}

fn sse_kind(ev: &::a2a::StreamResponse) -> &'static str {
    match ev {
        ::a2a::StreamResponse::Task(_) => "task",
        ::a2a::StreamResponse::Message(_) => "message",
        ::a2a::StreamResponse::StatusUpdate(_) => "status",
        ::a2a::StreamResponse::ArtifactUpdate(_) => "artifact",
    }
}

/// The platform SSE of a task from `cursor`: `id` is the event's position (for `Last-Event-ID`),
/// `event` its kind, `data` the A2A StreamResponse; with `tail`, a last `result` event with the
/// `/invoke` body.
pub(crate) fn platform_sse(
    h: Arc<TaskHandle>,
    cursor: usize,
    tail: Option<(Arc<Gateway>, Arc<TaskHandle>)>,
) -> Response {
    let events = follow(h.clone(), cursor, false).map(|(n, ev)| {
        SseEvent::default().id(n.to_string()).event(sse_kind(&ev)).data(serde_json::to_string(&*ev).expect("serialise"))
    });
    let run = h.id.clone();
    let tail = futures_util::stream::iter(tail).map(|(gw, h)| {
        SseEvent::default().event("result").data(invoke_body(&gw.engine, &h, &h.snapshot()).to_string())
    });
    let mut r = Sse::new(events.chain(tail).map(Ok::<_, Infallible>)).keep_alive(KeepAlive::default()).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    receipt_link(&mut r, &run);
    r
}

/// `GET /sse/{task}`: the task's events, replayed after `Last-Event-ID` (header or
/// `?lastEventId=`), live until it ends.
async fn task_events(
    State(gw): State<Arc<Gateway>>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(task): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, GatewayError> {
    let h = gw.engine.get(&task, &caller.name).await?;
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| q.get("lastEventId").cloned());
    let cursor = match last.as_deref().map(str::trim) {
        None | Some("") => 0,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if n <= h.cursor() => n,
            Ok(n) => {
                return Err(GatewayError::bad_request(
                    "bad_last_event_id",
                    format!("Last-Event-ID {n} is past the task's {} events", h.cursor()),
                ));
            }
            Err(_) => {
                return Err(GatewayError::bad_request(
                    "bad_last_event_id",
                    format!("Last-Event-ID {s:?} is not an event id"),
                ));
            }
        },
    };
    Ok(platform_sse(h, cursor, None))
}

/// Parses a JSON body; a 400 `bad_json` naming the `expected` shape otherwise.
pub(crate) fn json_body<T: serde::de::DeserializeOwned>(body: &[u8], expected: &str) -> Result<T, GatewayError> {
    serde_json::from_slice(body).map_err(|e| GatewayError::bad_request("bad_json", format!("expected {expected}: {e}")))
}
