//! Scope requests, the agent's side: `POST /scope/{run}` (with its grant) asks for more paths
//! (`scope.requested`; the task waits in `auth_required`); `GET /scope/{run}/{id}?wait=S` tells
//! it the decision and, when approved, hands it the new grant. The approvers decide in
//! [`crate::surface::approvals`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use a2a::TaskState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ledger_core::Event;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::engine::approvals::{Asked, Decision, ScopeRequest};
use crate::engine::buffer::TaskHandle;
use crate::engine::grants::Scope;
use crate::surface::error::GatewayError;
use crate::surface::platform::json_body;
use crate::surface::state::Gateway;
use crate::surface::workspace::{active_task, bearer, record};

/// `POST /scope/{run}`, answered at once.
pub fn router() -> Router<Arc<Gateway>> {
    Router::new().route("/scope/{run}", post(request_scope))
}

/// `GET /scope/{run}/{id}?wait=S`, a long poll (up to 60 s), so not under the request timeout.
pub fn decisions() -> Router<Arc<Gateway>> {
    Router::new().route("/scope/{run}/{id}", get(scope_decision))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScopeBody {
    paths: Vec<String>,
    reason: String,
}

fn verify_grant(gw: &Gateway, h: &TaskHandle, headers: &HeaderMap) -> Result<(), GatewayError> {
    let token = bearer(headers).ok_or_else(|| no_grant("present the run's grant: Authorization: Bearer <grant>"))?;
    gw.engine
        .grants()
        .verify(token, &h.id, &h.agent, &h.grant().id)
        .map(drop)
        .map_err(|d| GatewayError::forbidden("denied", d.0))
}

fn no_grant(message: &str) -> GatewayError {
    GatewayError::NoGrant(message.into())
}

/// `POST /scope/{run}`: `{"paths": [globs], "reason"}` → 202 with the request's id.
async fn request_scope(
    State(gw): State<Arc<Gateway>>,
    UrlPath(run): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, GatewayError> {
    let h = active_task(&gw, &run)?;
    verify_grant(&gw, &h, &headers)?;
    let req: ScopeBody = json_body(&body, "{\"paths\": [...], \"reason\": \"...\"}")?;
    if req.paths.is_empty() || req.paths.len() > 32 {
        return Err(GatewayError::bad_request("bad_paths", "ask for 1 to 32 path globs"));
    }
    let probe = Scope { read: req.paths.clone(), write: vec![], out: "out/".into() };
    if let Err(e) = probe.check() {
        return Err(GatewayError::bad_request("bad_paths", format!("{e:#}")));
    }
    for p in &req.paths {
        if p.starts_with('/') || p.split('/').any(|s| s == "..") {
            return Err(GatewayError::bad_request("bad_paths", format!("{p:?} must be relative, without '..'")));
        }
    }
    let event = Event::ScopeRequested { paths: req.paths.clone(), reason: req.reason.clone() };
    let waiting =
        Some((TaskState::AuthRequired, Some(format!("waiting for approval of {:?}: {}", req.paths, req.reason))));
    record(&gw, &h, vec![event], waiting).await?;
    let sr = gw.inbox.file(Asked {
        run: run.clone(),
        agent: h.agent.clone(),
        skill: h.skill.clone(),
        paths: req.paths,
        reason: req.reason,
    });
    let poll = format!("{}/scope/{run}/{}", gw.engine.public_url(), sr.id);
    Ok((StatusCode::ACCEPTED, axum::Json(json!({ "id": sr.id, "status": "pending", "poll": poll }))).into_response())
}

/// The JSON of a request's decision; the new grant only `with_token`.
pub(crate) fn decision_body(sr: &ScopeRequest, d: &Option<Decision>, with_token: bool) -> Value {
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
async fn scope_decision(
    State(gw): State<Arc<Gateway>>,
    UrlPath((run, id)): UrlPath<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, GatewayError> {
    let Some(sr) = gw.inbox.get(&id).filter(|s| s.run == run) else {
        return Err(GatewayError::not_found("unknown_request", format!("no scope request {id:?} for run {run:?}")));
    };
    let Some(token) = bearer(&headers) else {
        return Err(no_grant("present the grant you asked with"));
    };
    // The grant the agent asked with, or the one it was given: either proves it is the agent.
    let agent_ok = |current: &str| gw.engine.grants().verify(token, &run, &sr.agent, current).is_ok();
    let given = match sr.decision() {
        Some(Decision::Approved { grant_id, .. }) => Some(grant_id),
        _ => None,
    };
    let current = gw.engine.task(&run).map(|h| h.grant().id);
    let ok = current.as_deref().is_some_and(agent_ok)
        || given.as_deref().is_some_and(agent_ok)
        || prior_ok(&gw, &run, &sr, token);
    if !ok {
        return Err(GatewayError::forbidden("denied", "that is not a grant of this run's agent"));
    }
    let wait = q.get("wait").and_then(|w| w.parse::<f64>().ok()).unwrap_or(0.0).clamp(0.0, 60.0);
    let d = sr.wait_decision(Duration::from_secs_f64(wait)).await;
    Ok(axum::Json(decision_body(&sr, &d, true)).into_response())
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
