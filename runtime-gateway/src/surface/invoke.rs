//! `POST /invoke/{skill}`: JSON in, JSON out (the status says how the run ended); SSE when the
//! client accepts `text/event-stream`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::base::auth::Caller;
use crate::surface::error::GatewayError;
use crate::surface::platform::{invoke_body, parse_input, platform_sse, receipt_link, start};
use crate::surface::state::Gateway;

/// `POST /invoke/{skill}`.
pub fn router() -> Router<Arc<Gateway>> {
    Router::new().route("/invoke/{skill}", post(invoke))
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
