//! The browser surface: `/app` (the dashboard, embedded at compile time; see
//! `ledger_dashboard::bundle`), `/app/config.json` (the endpoints, the skills and their schemas,
//! the ledger's descriptor as a suggestion only: the dashboard verifies against descriptors its
//! user pinned), and `/auth/session` (a browser session from the same API keys and JWTs the API
//! takes; the rules are in `ledger_dashboard::session`). The session cookie is accepted by the
//! callers' authentication in [`crate::surface::router`], which also applies the CSRF rule.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ledger_dashboard::session;
use serde::Deserialize;

use crate::base::auth::Caller;
use crate::surface::error::GatewayError;
use crate::surface::state::Gateway;

/// Largest login body.
const MAX_LOGIN_BODY: usize = 16 << 10;

/// `/app`, `/app/`, `/app/config.json`, `/auth/session`.
pub fn router() -> Router<Arc<Gateway>> {
    ledger_dashboard::bundle::routes()
        .route("/app/config.json", get(config))
        .route("/auth/session", get(whoami).post(login).delete(logout))
}

fn private_json(v: serde_json::Value) -> Response {
    let mut r = axum::Json(v).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn config(State(gw): State<Arc<Gateway>>) -> Response {
    let skills: Vec<serde_json::Value> = gw
        .engine
        .agents()
        .iter()
        .flat_map(|a| {
            a.spec.skills.iter().map(|s| {
                serde_json::json!({
                    "id": s.id,
                    "name": s.name,
                    "agent": a.spec.name,
                    "description": s.description,
                    "input_schema": s.input_schema,
                    "output_schema": s.output_schema,
                })
            })
        })
        .collect();
    let mut config = serde_json::json!({
        "service": "runtime-gateway",
        "bundle_integrity": ledger_dashboard::bundle::integrity(),
        "endpoints": {
            "gateway": "",
            "tasks": "/tasks",
            "run": "/runs/{id}",
            "runs": "/v1/runs",
            "receipt": "/runs/{id}/receipt",
            "payload": "/v1/payloads/{hash}",
            "invoke": "/invoke/{skill}",
            "agent_card": "/.well-known/agent-card.json",
            "approvals": "/approvals",
            "session": "/auth/session",
        },
        "skills": skills,
        "suggested_log_descriptors": gw.engine.sink().descriptors(),
        "suggestions_only": "verify against the log descriptors and trust policies you pinned, never against these",
    });
    // The embedded ledger's log, for the dashboard's log and packs pages (`surface::ledger_log`).
    if gw.engine.sink().local_log().is_some() {
        let e = &mut config["endpoints"];
        e["checkpoint"] = "/v1/checkpoint".into();
        e["consistency"] = "/v1/proof/consistency".into();
        e["entries"] = "/v1/entries".into();
        e["pack"] = "/v1/pack".into();
    }
    private_json(config)
}

/// Who the caller is, as `/auth/session` answers it: roles `caller`, and `admin` /
/// `approver` from gateway.toml.
fn identity(gw: &Gateway, caller: &Caller) -> serde_json::Value {
    let mut roles = vec!["caller"];
    let admin = gw.admins.contains(&caller.name);
    if admin {
        roles.push("admin");
    }
    if gw.inbox.is_approver(&caller.name) {
        roles.push("approver");
    }
    serde_json::json!({
        "user": caller.name,
        "roles": roles,
        "scopes": {
            "runs": if admin { "all" } else { "own" },
            "payloads": if admin { "all, and erase" } else { "of its own runs" },
            "approvals": gw.inbox.is_approver(&caller.name),
        },
    })
}

fn answer(gw: &Gateway, caller: &Caller, csrf: &str, expires_in: u64) -> serde_json::Value {
    let mut v = identity(gw, caller);
    v["csrf_token"] = csrf.into();
    v["expires_in_secs"] = expires_in.into();
    v
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    token: String,
}

/// The instant a JWT's `exp` (Unix seconds) falls at, seen from `now`.
fn instant_of(exp: u64, now: Instant) -> Instant {
    let unix_now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    now + Duration::from_secs(exp.saturating_sub(unix_now))
}

/// `POST /auth/session` `{"token"}` (JSON only, so a cross-origin form cannot log anyone in):
/// sets the session cookie, which ends no later than the token (a JWT's `exp`), and answers
/// who this is and the CSRF token.
async fn login(State(gw): State<Arc<Gateway>>, req: Request) -> Result<Response, GatewayError> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(GatewayError::bad_request("unsupported_media_type", "send {\"token\": \"…\"} as application/json"));
    }
    let secure = session::over_tls(req.headers());
    let body = axum::body::to_bytes(req.into_body(), MAX_LOGIN_BODY)
        .await
        .map_err(|e| GatewayError::bad_request("malformed_body", format!("reading the body: {e}")))?;
    let Login { token } = serde_json::from_slice(&body).map_err(|e| {
        GatewayError::bad_request("malformed_body", format!("the body must be {{\"token\": \"…\"}}: {e}"))
    })?;
    // An empty token would be "no Authorization header", which an anonymous gateway accepts;
    // a session is only ever made from a credential.
    if token.trim().is_empty() {
        return Err(GatewayError::Unauthenticated("the token is empty".into()));
    }
    let (caller, exp) = gw
        .auth
        .authenticate_until(Some(&format!("Bearer {}", token.trim())))
        .map_err(|e| GatewayError::Unauthenticated(e.0))?;
    let now = Instant::now();
    let made = gw.sessions.create(caller.clone(), now, exp.map(|e| instant_of(e, now)));
    let mut r = private_json(answer(&gw, &caller, &made.csrf, made.lifetime.as_secs()));
    r.headers_mut().insert(header::SET_COOKIE, session::set_cookie(&made, secure));
    Ok(r)
}

/// `GET /auth/session`: who the session cookie names, with its CSRF token (a reloaded page
/// needs it; no other origin can read this answer). 401 without a live session.
async fn whoami(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Result<Response, GatewayError> {
    let now = Instant::now();
    match gw.sessions.principal(&headers, now) {
        Ok(Some(s)) => Ok(private_json(answer(&gw, &s.principal, &s.csrf, s.expires.duration_since(now).as_secs()))),
        Ok(None) => {
            Err(GatewayError::Unauthenticated("no session: POST /auth/session with {\"token\": \"…\"} first".into()))
        }
        Err(refusal) => Err(GatewayError::Unauthenticated(refusal.message().into())),
    }
}

/// `DELETE /auth/session`: ends the session (with its CSRF token, like every state change) and
/// clears the cookie.
async fn logout(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    let headers = req.headers();
    if session::is_bearer(headers) || session::cookie_value(headers).is_none() {
        return GatewayError::Unauthenticated("no session cookie to end".into()).into_response();
    }
    if let Err(refusal) = gw.sessions.guard(req.method(), headers, Instant::now()) {
        return refusal.into_response();
    }
    gw.sessions.remove(headers);
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().insert(header::SET_COOKIE, session::clear_cookie(session::over_tls(headers)));
    r
}
