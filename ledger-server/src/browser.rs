//! The browser surface: `/app` (the dashboard, embedded at compile time; see
//! `ledger_dashboard::bundle`), `/app/config.json` (the endpoints, and this log's descriptor as
//! a suggestion only: the dashboard verifies against descriptors its user pinned), and
//! `/auth/session` (a browser session from a bearer token; the rules are in
//! `ledger_dashboard::session`). Answers here carry no CORS header: only the page's own origin
//! reads them.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ledger_dashboard::session::{self, Created};
use serde::Deserialize;

use crate::auth::{Principal, Role};
use crate::error::{ApiError, ErrorCode};
use crate::service::Ledger;

/// `/app`, `/app/`, `/app/config.json`, `/auth/session`.
pub fn routes() -> Router<Arc<Ledger>> {
    ledger_dashboard::bundle::routes()
        .route("/app/config.json", get(config))
        .route("/auth/session", get(whoami).post(login).delete(logout))
}

/// Largest login body.
const MAX_LOGIN_BODY: usize = 16 << 10;

fn private_json(status: StatusCode, v: serde_json::Value) -> Response {
    let mut r = (status, axum::Json(v)).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn config(State(l): State<Arc<Ledger>>) -> Response {
    private_json(
        StatusCode::OK,
        serde_json::json!({
            "service": "ledger-server",
            "bundle_integrity": ledger_dashboard::bundle::integrity(),
            "endpoints": {
                "ledger": "",
                "log": "/v1/log",
                "checkpoint": "/v1/checkpoint",
                "runs": "/v1/runs",
                "run": "/runs/{id}",
                "receipt": "/runs/{id}/receipt",
                "consistency": "/v1/proof/consistency",
                "inclusion": "/v1/proof/inclusion",
                "entries": "/v1/entries",
                "pack": "/v1/pack",
                "payload": "/v1/payloads/{hash}",
                "session": "/auth/session",
            },
            "skills": [],
            "suggested_log_descriptors": [l.log.descriptor()],
            "suggestions_only": "verify against the log descriptors and trust policies you pinned, never against these",
        }),
    )
}

/// Who the principal is, as `/auth/session` answers it.
fn identity(p: &Principal) -> serde_json::Value {
    let role = serde_json::to_value(p.role).expect("serialisable");
    serde_json::json!({
        "user": p.name,
        "roles": [role],
        "scopes": {
            "reads_all": p.reads_all(),
            "appends": p.role == Role::Ingest,
            "identities": p.identities,
            "callers": p.callers,
        },
    })
}

fn answer(p: &Principal, csrf: &str, expires_in: u64) -> serde_json::Value {
    let mut v = identity(p);
    v["csrf_token"] = csrf.into();
    v["expires_in_secs"] = expires_in.into();
    v
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    token: String,
}

/// `POST /auth/session` `{"token"}` (JSON only, so a cross-origin form cannot log anyone in):
/// sets the session cookie and answers who this is and the CSRF token.
async fn login(State(l): State<Arc<Ledger>>, req: Request) -> Result<Response, ApiError> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::new(ErrorCode::UnsupportedMediaType, "send {\"token\": \"…\"} as application/json"));
    }
    let secure = session::over_tls(req.headers());
    let body = axum::body::to_bytes(req.into_body(), MAX_LOGIN_BODY)
        .await
        .map_err(|e| ApiError::new(ErrorCode::MalformedBody, format!("reading the body: {e}")))?;
    let Login { token } = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(ErrorCode::MalformedBody, format!("the body must be {{\"token\": \"…\"}}: {e}")))?;
    let who = l.principals.authenticate(Some(&format!("Bearer {}", token.trim())))?;
    let made: Created = l.sessions.create(who.clone(), Instant::now(), None);
    let mut r = private_json(StatusCode::OK, answer(&who, &made.csrf, made.lifetime.as_secs()));
    r.headers_mut().insert(header::SET_COOKIE, session::set_cookie(&made, secure));
    Ok(r)
}

/// `GET /auth/session`: who the session cookie names, with its CSRF token (a reloaded page
/// needs it; no other origin can read this answer). 401 without a live session.
async fn whoami(State(l): State<Arc<Ledger>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let now = Instant::now();
    match l.sessions.principal(&headers, now) {
        Ok(Some(s)) => {
            Ok(private_json(StatusCode::OK, answer(&s.principal, &s.csrf, s.expires.duration_since(now).as_secs())))
        }
        Ok(None) => Err(ApiError::unauthenticated("no session: POST /auth/session with {\"token\": \"…\"} first")),
        Err(refusal) => Err(ApiError::unauthenticated(refusal.message())),
    }
}

/// `DELETE /auth/session`: ends the session (with its CSRF token, like every state change) and
/// clears the cookie.
async fn logout(State(l): State<Arc<Ledger>>, req: Request) -> Response {
    let headers = req.headers();
    if session::is_bearer(headers) || session::cookie_value(headers).is_none() {
        return ApiError::unauthenticated("no session cookie to end").into_response();
    }
    if let Err(refusal) = l.sessions.guard(req.method(), headers, Instant::now()) {
        return refusal.into_response();
    }
    l.sessions.remove(headers);
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().insert(header::SET_COOKIE, session::clear_cookie(session::over_tls(headers)));
    r
}
