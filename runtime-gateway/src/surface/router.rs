//! The one listener: [`app`] merges every surface's `router()` and puts the layers around them —
//! caller authentication (a bearer token, or a browser session's cookie with its CSRF rule) as a
//! `route_layer` (unknown paths stay 404), the request timeout on the
//! unary routes, and, around everything, load shedding over one concurrency limit.
//!
//! Limits (gateway.toml `[server]`): at most `concurrency_limit` requests are handled at once; one
//! more is answered at once `503` with `Retry-After` (never queued, never a hang). A request
//! holds its slot until its response starts, so a stream (SSE, A2A streams) does not hold one
//! while it streams. A unary request that has not started its response after
//! `request_timeout_secs` is answered `504`; the timeout covers the time until the response
//! starts, so it never cuts a stream, and it does not apply to the long polls (receipts, scope
//! decisions) or to MCP, whose waits are their own.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::{BoxError, ServiceBuilder};

use crate::base::auth::PARENT_GRANT_HEADER;
use crate::surface::error::GatewayError;
use crate::surface::state::{Gateway, MAX_BODY};
use crate::surface::{
    a2a, approvals, browser, invoke, ledger_log, mcp, ops, payloads, platform, receipts, reviews, runs, scope,
    workspace,
};

/// The gateway's router.
pub fn app(gw: Arc<Gateway>) -> Router {
    let server = gw.server.clone();
    let timeout = Duration::from_secs(server.request_timeout_secs.max(1));
    let timed = |r: Router<Arc<Gateway>>| {
        r.layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(move |e: BoxError| async move { refusal(e, timeout, 0) }))
                .timeout(timeout),
        )
    };
    // The callers' side, behind their authentication.
    let callers = timed(
        Router::new()
            .merge(a2a::jsonrpc::router())
            .merge(a2a::rest::router())
            .merge(platform::router())
            .merge(invoke::router())
            .merge(approvals::router())
            .merge(reviews::router())
            .merge(payloads::router())
            .merge(runs::router())
            .merge(ledger_log::router()),
    )
    .merge(receipts::router())
    // The A2A gRPC binding, on the same listener (HTTP/2).
    .route_service("/lf.a2a.v1.A2AService/{*method}", a2a::grpc::service(gw.clone()))
    .route_layer(middleware::from_fn_with_state(gw.clone(), authenticate))
    // A2A extensions the request activated are named in the response (A2A 1.0 §4.6).
    .layer(middleware::from_fn(a2a::extensions::echo));
    // The agent's side, authorised by the run's grant instead of a caller token.
    let agents = timed(Router::new().merge(workspace::router()).merge(scope::router())).merge(scope::decisions());
    // MCP: rmcp's service, behind the same caller authentication.
    let mcp = mcp::router(gw.clone(), gw.shutdown.child_token())
        .layer(middleware::from_fn_with_state(gw.clone(), authenticate));
    let retry_after = server.retry_after_secs.max(1);
    let limits = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(move |e: BoxError| async move { refusal(e, timeout, retry_after) }))
        .load_shed()
        .layer(GlobalConcurrencyLimitLayer::new(server.concurrency_limit.max(1)));
    Router::new()
        .merge(timed(Router::new().merge(a2a::card::router()).merge(ops::router()).merge(browser::router())))
        .merge(callers)
        .merge(agents)
        .merge(mcp)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(limits)
        .with_state(gw)
}

/// The answer to a request the limits refused or the timeout ended.
fn refusal(e: BoxError, timeout: Duration, retry_after: u64) -> Response {
    if e.is::<tower::load_shed::error::Overloaded>() {
        GatewayError::Overloaded { retry_after }.into_response()
    } else if e.is::<tower::timeout::error::Elapsed>() {
        GatewayError::TimedOut(timeout).into_response()
    } else {
        GatewayError::Internal(e.to_string()).into_response()
    }
}

/// The caller: from the bearer token, or without an `Authorization` header from the browser
/// session its cookie names. A session request that changes state must carry the session's
/// CSRF token (403 `csrf_required` / `csrf_mismatch`, `ledger_dashboard::session`).
async fn authenticate(State(gw): State<Arc<Gateway>>, mut req: Request, next: Next) -> Response {
    let now = std::time::Instant::now();
    if let Err(refusal) = gw.sessions.guard(req.method(), req.headers(), now) {
        return refusal.into_response();
    }
    let session = match gw.sessions.principal(req.headers(), now) {
        Ok(s) => s,
        Err(refusal) => return GatewayError::Unauthenticated(refusal.message().into()).into_response(),
    };
    let header = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let mut caller = match session {
        Some(s) => s.principal,
        None => match gw.auth.authenticate(header) {
            Ok(caller) => caller,
            Err(e) => return GatewayError::Unauthenticated(e.0).into_response(),
        },
    };
    if let Some(grant) = req.headers().get(PARENT_GRANT_HEADER) {
        match parent_run(&gw, grant.to_str().unwrap_or_default()) {
            Ok(run) => caller.parent = Some(run),
            Err(e) => return e.into_response(),
        }
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}

/// The run whose current grant `token` is: it must verify (signature, expiry), name a run in
/// progress here, be that run's current grant and be for that run's agent. A grant that fails
/// any of these is refused (403), never ignored: the caller asked to be recorded as a child.
fn parent_run(gw: &Gateway, token: &str) -> Result<String, GatewayError> {
    let refuse = |why: String| {
        GatewayError::forbidden("bad_parent_grant", format!("the {PARENT_GRANT_HEADER} header was refused: {why}"))
    };
    let claims = gw.engine.grants().verify_unbound(token).map_err(|d| refuse(d.0))?;
    let task = gw
        .engine
        .task(&claims.sub)
        .filter(|t| !t.is_ended())
        .ok_or_else(|| refuse(format!("run {:?} is not in progress on this gateway", claims.sub)))?;
    if claims.aud != task.agent || claims.jti != task.grant().id {
        return Err(refuse(format!("it is not the current grant of run {:?}", claims.sub)));
    }
    Ok(claims.sub)
}
