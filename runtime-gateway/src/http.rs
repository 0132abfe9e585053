//! The one listener: [`app`] routes the A2A bindings ([`crate::a2a_api`]), the platform REST
//! (`POST /tasks`, `GET /tasks/{id}`, `GET /sse/{task}`), `POST /invoke/{skill}`,
//! `GET /runs/{id}/receipt`, `/healthz` and `/metrics`.
//!
//! `GET /tasks` and `GET /tasks/{id}` are shared by the A2A HTTP+JSON binding and the platform
//! REST: a request with an `A2A-Version` header is A2A (the binding requires the header), one
//! without is the platform's.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt as _;
use ledger_core::{Entry, Event, Protocol};
use serde_json::{Value, json};

use crate::a2a_api::{self, CardDoc};
use crate::auth::{Authenticator, Caller};
use crate::sink::ReceiptError;
use crate::tasks::{Engine, NewTask, Snapshot, TaskHandle, follow, state_name};
use crate::workspace;

/// Largest request body accepted.
pub const MAX_BODY: usize = 16 << 20;

/// Everything the handlers share.
#[derive(Debug)]
pub struct Gateway {
    /// The task engine.
    pub engine: Arc<Engine>,
    /// The Agent Card.
    pub card: CardDoc,
    /// Caller authentication.
    pub auth: Authenticator,
    /// Workspaces, scope requests, approvers.
    pub workspace: crate::workspace::Workspace,
    /// Push notification configs and delivery.
    pub push: Arc<crate::push::Pusher>,
    /// The `/metrics` registry.
    pub metrics: crate::metrics::Metrics,
    /// Cancelled at shutdown: ends MCP sessions and streams.
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// The gateway's router.
pub fn app(gw: Arc<Gateway>) -> Router {
    let authed = Router::new()
        .route("/", post(a2a_api::jsonrpc))
        .route("/message:send", post(a2a_api::rest_send))
        .route("/message:stream", post(a2a_api::rest_stream_send))
        .route("/tasks", get(list_tasks).post(create_task))
        .route("/tasks/{rest}", get(get_task).post(a2a_api::rest_post_task))
        .route("/tasks/{id}/pushNotificationConfigs", get(a2a_api::rest_push_list).post(a2a_api::rest_push_create))
        .route(
            "/tasks/{id}/pushNotificationConfigs/{config}",
            get(a2a_api::rest_push_config).delete(a2a_api::rest_push_config),
        )
        .route("/extendedAgentCard", get(a2a_api::rest_extended_card))
        .route("/sse/{task}", get(task_events))
        .route("/invoke/{skill}", post(invoke))
        .route("/runs/{id}/receipt", get(receipt))
        .route("/runs/{id}/eval", post(workspace::eval))
        .route("/runs/{id}/review", post(workspace::review))
        .route("/approvals", get(workspace::approvals))
        .route("/approvals/{id}", post(workspace::decide))
        .route_layer(middleware::from_fn_with_state(gw.clone(), authenticate));
    // The agent's side, authorised by the run's grant instead of a caller token.
    let agents = Router::new()
        .route("/workspace/{run}", get(workspace::list))
        .route("/workspace/{run}/{*path}", get(workspace::read_file).put(workspace::write_file))
        .route("/scope/{run}", post(workspace::request_scope))
        .route("/scope/{run}/{id}", get(workspace::scope_decision));
    // MCP: rmcp's service, behind the same caller authentication.
    let (hosts, origins) = crate::mcp::hosts_and_origins(gw.engine.public_url());
    let mcp = Router::new()
        .nest_service("/mcp", crate::mcp::service(gw.clone(), hosts, origins, gw.shutdown.child_token()))
        .layer(middleware::from_fn_with_state(gw.clone(), authenticate));
    Router::new()
        .route("/.well-known/agent-card.json", get(a2a_api::agent_card))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .merge(authed)
        .merge(agents)
        .merge(mcp)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(gw)
}

/// A platform error: `{"error": {"code", "message"}}` with a stable code.
fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": { "code": code, "message": message.into() } }))).into_response()
}

async fn authenticate(State(gw): State<Arc<Gateway>>, mut req: Request, next: Next) -> Response {
    let header = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    match gw.auth.authenticate(header) {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(e) => {
            let body = json!({ "error": { "code": 401, "status": "UNAUTHENTICATED", "message": e.0 } });
            let mut r = (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            r
        }
    }
}

fn receipt_link(r: &mut Response, run: &str) {
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
fn outcome_fields(v: &mut Value, snap: &Snapshot) {
    if let Some(r) = &snap.result {
        v["result"] = r.clone();
    }
    if let Some(e) = &snap.error {
        v["error"] = json!(e);
    }
    if let Some(m) = snap.task.status.message.as_ref() {
        v["message"] = json!(crate::upstream::message_text(m));
    }
    if let Some(e) = &snap.recording_error {
        v["recordingError"] = json!(e);
    }
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
    a2a_api::rest_list(State(gw), caller, uri, headers, q).await
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
        return a2a_api::rest_get(State(gw), caller, Path(rest), uri, headers, q).await;
    }
    match gw.engine.get(&rest, &caller.name) {
        Ok(h) => {
            let mut r = axum::Json(platform_task(&gw.engine, &h, &h.snapshot())).into_response();
            receipt_link(&mut r, &h.id);
            r
        }
        Err(e) => error(StatusCode::NOT_FOUND, "task_not_found", e.to_string()),
    }
}

fn parse_input(body: &[u8]) -> Result<Value, Box<Response>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            "bad_json",
            format!("the body is not JSON ({e}) at line {} column {}", e.line(), e.column()),
        ))
    })
}

async fn start(
    gw: &Gateway,
    caller: &Caller,
    skill: &str,
    input: Value,
    context_id: Option<String>,
) -> Result<Arc<TaskHandle>, Response> {
    if gw.engine.skill(skill).is_none() {
        return Err(error(
            StatusCode::NOT_FOUND,
            "unknown_skill",
            format!("no agent here has a skill {skill:?}; the Agent Card lists them"),
        ));
    }
    let input_bytes = serde_json::to_vec(&input).expect("serialise");
    let message = a2a_api::data_message(&input);
    gw.engine
        .create(NewTask {
            caller: caller.name.clone(),
            protocol: Protocol::Https,
            skill: skill.to_string(),
            input,
            input_bytes,
            message,
            context_id,
        })
        .await
        .map_err(|e| match e {
            crate::tasks::TaskError::RecordingUnavailable(m) => error(
                StatusCode::SERVICE_UNAVAILABLE,
                "recording_unavailable",
                format!("the run could not be recorded, so it was not started: {m}"),
            ),
            crate::tasks::TaskError::InvalidInput(m) => error(StatusCode::BAD_REQUEST, "invalid_input", m),
            other => error(StatusCode::BAD_REQUEST, "bad_request", other.to_string()),
        })
}

/// `POST /tasks`: `{"skill", "input", "contextId"?}` → 202 with the task id and its SSE link.
async fn create_task(
    State(gw): State<Arc<Gateway>>,
    axum::Extension(caller): axum::Extension<Caller>,
    body: Bytes,
) -> Response {
    let v = match parse_input(&body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let Some(skill) = v.get("skill").and_then(Value::as_str) else {
        return error(StatusCode::BAD_REQUEST, "missing_skill", "the body needs \"skill\": the id of the skill to run");
    };
    let input = v.get("input").cloned().unwrap_or(json!({}));
    let context = v.get("contextId").and_then(Value::as_str).map(String::from);
    match start(&gw, &caller, skill, input, context).await {
        Ok(h) => {
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
            r
        }
        Err(r) => r,
    }
}

fn sse_kind(ev: &a2a::StreamResponse) -> &'static str {
    match ev {
        a2a::StreamResponse::Task(_) => "task",
        a2a::StreamResponse::Message(_) => "message",
        a2a::StreamResponse::StatusUpdate(_) => "status",
        a2a::StreamResponse::ArtifactUpdate(_) => "artifact",
    }
}

/// The platform SSE of a task from `cursor`: `id` is the event's position (for `Last-Event-ID`),
/// `event` its kind, `data` the A2A StreamResponse.
fn platform_sse(h: Arc<TaskHandle>, cursor: usize, tail: Option<(Arc<Gateway>, Arc<TaskHandle>)>) -> Response {
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
) -> Response {
    let h = match gw.engine.get(&task, &caller.name) {
        Ok(h) => h,
        Err(e) => return error(StatusCode::NOT_FOUND, "task_not_found", e.to_string()),
    };
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
                return error(
                    StatusCode::BAD_REQUEST,
                    "bad_last_event_id",
                    format!("Last-Event-ID {n} is past the task's {} events", h.cursor()),
                );
            }
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "bad_last_event_id",
                    format!("Last-Event-ID {s:?} is not an event id"),
                );
            }
        },
    };
    platform_sse(h, cursor, None)
}

fn invoke_body(engine: &Engine, h: &TaskHandle, snap: &Snapshot) -> Value {
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

/// `POST /invoke/{skill}`: JSON in, JSON out; SSE when the client accepts `text/event-stream`.
async fn invoke(
    State(gw): State<Arc<Gateway>>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(skill): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let input = match parse_input(&body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let h = match start(&gw, &caller, &skill, input, None).await {
        Ok(h) => h,
        Err(r) => return r,
    };
    let wants_sse =
        headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/event-stream"));
    if wants_sse {
        return platform_sse(h.clone(), 0, Some((gw.clone(), h)));
    }
    let snap = h.wait_settled(0).await;
    let status = match snap.task.status.state {
        a2a::TaskState::Completed => StatusCode::OK,
        a2a::TaskState::InputRequired | a2a::TaskState::AuthRequired => StatusCode::ACCEPTED,
        a2a::TaskState::Failed => StatusCode::BAD_GATEWAY,
        a2a::TaskState::Rejected => StatusCode::UNPROCESSABLE_ENTITY,
        a2a::TaskState::Canceled => StatusCode::CONFLICT,
        _ => StatusCode::ACCEPTED,
    };
    let mut r = (status, axum::Json(invoke_body(&gw.engine, &h, &snap))).into_response();
    receipt_link(&mut r, &h.id);
    r
}

/// May `caller` read run `id`? Its task when still in memory, otherwise the run's
/// `task.accepted` in the ledger, names the owner.
pub(crate) async fn may_read(gw: &Gateway, caller: &Caller, id: &str) -> Result<(), Response> {
    if let Ok(h) = gw.engine.get(id, &caller.name) {
        debug_assert_eq!(h.owner, caller.name);
        return Ok(());
    }
    let not_found = || error(StatusCode::NOT_FOUND, "unknown_run", format!("no run {id:?} of yours is known here"));
    let entries = gw.engine.sink().run_entries(id).await.map_err(|e| {
        error(StatusCode::SERVICE_UNAVAILABLE, "ledger_unavailable", format!("reading run {id:?} from the ledger: {e}"))
    })?;
    let first = entries.first().ok_or_else(not_found)?;
    match Entry::decode(&first.1) {
        Ok(Entry { event: Event::TaskAccepted { caller: owner, .. }, actor, .. })
            if owner == caller.name && actor == gw.engine.key().name() =>
        {
            Ok(())
        }
        _ => Err(not_found()),
    }
}

/// `GET /runs/{id}/receipt?wait=SECONDS`: the run's receipt (SPEC §5), waiting up to `wait`
/// (default 5 s, at most 60) for a checkpoint over its latest seal.
async fn receipt(
    State(gw): State<Arc<Gateway>>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(e) = ledger_core::entry::check_run_id(&id) {
        return error(StatusCode::BAD_REQUEST, "bad_run_id", e.to_string());
    }
    let wait = match q.get("wait").map(|w| w.parse::<f64>()) {
        None => Duration::from_secs(5),
        Some(Ok(w)) if (0.0..=60.0).contains(&w) => Duration::from_secs_f64(w),
        Some(_) => return error(StatusCode::BAD_REQUEST, "bad_wait", "wait must be a number of seconds from 0 to 60"),
    };
    if let Err(r) = may_read(&gw, &caller, &id).await {
        return r;
    }
    // A run still in progress has no seal; wait for it to end within the same budget.
    if let Ok(h) = gw.engine.get(&id, &caller.name)
        && !h.snapshot().closed
    {
        let _ = tokio::time::timeout(wait, h.wait_closed()).await;
    }
    let mut r = match gw.engine.sink().receipt(&id, wait).await {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(e @ ReceiptError::UnknownRun(_)) => error(StatusCode::NOT_FOUND, "unknown_run", e.to_string()),
        Err(e @ ReceiptError::Unsealed(_)) => error(StatusCode::CONFLICT, "run_unsealed", e.to_string()),
        Err(e @ ReceiptError::NotYetCheckpointed(_)) => {
            error(StatusCode::CONFLICT, "not_yet_checkpointed", e.to_string())
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, "ledger_unavailable", e.to_string()),
    };
    r.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    r
}

async fn healthz(State(gw): State<Arc<Gateway>>) -> Response {
    let backlog = gw.engine.sink().backlog();
    axum::Json(json!({ "status": "ok", "running": *gw.engine.counters.running.borrow(), "spool": backlog }))
        .into_response()
}

/// `GET /metrics`: Prometheus text format.
async fn metrics(State(gw): State<Arc<Gateway>>) -> Response {
    let text = gw.metrics.render(*gw.engine.counters.running.borrow(), gw.engine.sink().as_ref());
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response()
}
