//! `GET /runs/{id}/receipt?wait=SECONDS`: a run's receipt (SPEC §5), a long poll (it waits for
//! the run to end and for a checkpoint over its seal), so it is not under the request timeout.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::base::auth::Caller;
use crate::surface::error::GatewayError;
use crate::surface::state::Gateway;

/// `GET /runs/{id}/receipt`.
pub fn router() -> Router<Arc<Gateway>> {
    Router::new().route("/runs/{id}/receipt", get(receipt))
}

/// The run's receipt, waiting up to `wait` (default 5 s, at most 60) for a checkpoint over its
/// latest seal.
async fn receipt(
    State(gw): State<Arc<Gateway>>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, GatewayError> {
    if let Err(e) = ledger_core::entry::check_run_id(&id) {
        return Err(GatewayError::bad_request("bad_run_id", e.to_string()));
    }
    let wait = match q.get("wait").map(|w| w.parse::<f64>()) {
        None => Duration::from_secs(5),
        Some(Ok(w)) if (0.0..=60.0).contains(&w) => Duration::from_secs_f64(w),
        Some(_) => return Err(GatewayError::bad_request("bad_wait", "wait must be a number of seconds from 0 to 60")),
    };
    gw.may_read(&caller, &id).await?;
    // A run still in progress has no seal; wait for it to end within the same budget.
    if let Ok(h) = gw.engine.get(&id, &caller.name).await
        && !h.snapshot().closed
    {
        let _ = tokio::time::timeout(wait, h.wait_closed()).await;
    }
    let mut r = match gw.engine.sink().receipt(&id, wait).await {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(e) => GatewayError::from(e).into_response(),
    };
    r.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    Ok(r)
}
