//! The approvers' inbox: `GET /approvals` lists the pending scope requests, `POST /approvals/{id}`
//! decides one (callers listed in gateway.toml `approvers` only). Approval rotates the run's grant
//! (`scope.granted` with the prior and new grant ids; the prior grant is dead from then on),
//! denial is `scope.denied`; the task works again.

use std::sync::Arc;

use a2a::TaskState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ledger_core::Event;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::base::auth::Caller;
use crate::engine::approvals::Decision;
use crate::engine::buffer::GrantState;
use crate::surface::error::GatewayError;
use crate::surface::platform::json_body;
use crate::surface::scope::decision_body;
use crate::surface::state::Gateway;
use crate::surface::workspace::{active_task, record};

/// `/approvals` and `/approvals/{id}` (callers).
pub fn router() -> Router<Arc<Gateway>> {
    Router::new().route("/approvals", get(approvals)).route("/approvals/{id}", post(decide))
}

/// 403 unless `caller` is an approver.
pub(crate) fn require_approver(gw: &Gateway, caller: &Caller) -> Result<(), GatewayError> {
    if gw.inbox.is_approver(&caller.name) {
        return Ok(());
    }
    Err(GatewayError::forbidden(
        "not_an_approver",
        format!("caller {:?} is not an approver (gateway.toml approvers)", caller.name),
    ))
}

/// `GET /approvals`: pending scope requests (approvers only).
async fn approvals(
    State(gw): State<Arc<Gateway>>,
    axum::Extension(caller): axum::Extension<Caller>,
) -> Result<Response, GatewayError> {
    require_approver(&gw, &caller)?;
    let list: Vec<Value> = gw
        .inbox
        .pending()
        .iter()
        .map(|r| json!({ "id": r.id, "run": r.run, "agent": r.agent, "skill": r.skill, "paths": r.paths, "reason": r.reason, "requested_at": r.requested_at }))
        .collect();
    Ok(axum::Json(json!({ "pending": list })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    decision: String,
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /approvals/{id}`: `{"decision": "approve" | "deny", "reason"?}` (approvers only).
async fn decide(
    State(gw): State<Arc<Gateway>>,
    axum::Extension(caller): axum::Extension<Caller>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Result<Response, GatewayError> {
    require_approver(&gw, &caller)?;
    let body: DecisionBody = json_body(&body, "{\"decision\": \"approve\"|\"deny\"}")?;
    let sr = gw
        .inbox
        .get(&id)
        .ok_or_else(|| GatewayError::not_found("unknown_request", format!("no scope request {id:?}")))?;
    if sr.decision().is_some() {
        return Err(GatewayError::conflict("already_decided", format!("scope request {id:?} was already decided")));
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
                Ok(Err(e)) => return Err(GatewayError::unavailable("recording_unavailable", e.to_string())),
                Err(e) => return Err(GatewayError::conflict("run_ended", e.to_string())),
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
            return Err(GatewayError::bad_request(
                "bad_decision",
                format!("decision {other:?} is not approve or deny"),
            ));
        }
    };
    sr.decide(decision.clone());
    Ok(axum::Json(decision_body(&sr, &Some(decision), false)).into_response())
}
