//! `POST /invoke/{skill}`: JSON in, JSON out (the status says how the run ended); SSE when the
//! client accepts `text/event-stream`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use crate::base::auth::Caller;
use crate::engine::buffer::{Snapshot, TaskHandle, state_name};
use crate::engine::tasks::Engine;
use crate::surface::error::GatewayError;
use crate::surface::platform::{outcome_fields, parse_input, platform_sse, receipt_link, start};
use crate::surface::state::Gateway;

/// `POST /invoke/{skill}`.
pub fn router() -> Router<Arc<Gateway>> {
    Router::new().route("/invoke/{skill}", post(invoke))
}

/// The answer of `/invoke` (and the last event of its SSE).
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

async fn invoke(
    State(gw): State<Arc<Gateway>>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(skill): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, GatewayError> {
    let input = parse_input(&body)?;
    let h = start(&gw, &caller, &skill, input, None).await?;
    let wants_sse =
        headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/event-stream"));
    if wants_sse {
        return Ok(platform_sse(h.clone(), 0, Some((gw.clone(), h))));
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
    Ok(r)
}
