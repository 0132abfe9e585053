//! Evals and reviews of ended runs: `POST /runs/{id}/eval` (`eval.scored`, by the run's caller or
//! an approver) and `POST /runs/{id}/review` (`review.signed`, by an approver) are appended and
//! the run is sealed again; its receipt is the newest seal.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use ledger_core::Event;
use serde::Deserialize;
use serde_json::json;

use crate::base::auth::Caller;
use crate::engine::reseal::ResealError;
use crate::surface::approvals::require_approver;
use crate::surface::error::GatewayError;
use crate::surface::platform::json_body;
use crate::surface::state::Gateway;

/// `/runs/{id}/eval` and `/runs/{id}/review` (callers).
pub fn router() -> Router<Arc<Gateway>> {
    Router::new().route("/runs/{id}/eval", post(eval)).route("/runs/{id}/review", post(review))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EvalBody {
    rubric: String,
    score_milli: i64,
    #[serde(default)]
    failures: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReviewBody {
    notes: String,
}

impl From<ResealError> for GatewayError {
    fn from(e: ResealError) -> GatewayError {
        let m = e.to_string();
        match e {
            ResealError::Running(_) => GatewayError::conflict("run_not_ended", m),
            ResealError::UnknownRun(_) => GatewayError::not_found("unknown_run", m),
            ResealError::Unsealed(_) => GatewayError::conflict("run_unsealed", m),
            ResealError::LedgerUnavailable(_) => GatewayError::unavailable("ledger_unavailable", m),
            ResealError::NotRecorded { .. } => GatewayError::unavailable("recording_unavailable", m),
            _ => GatewayError::Internal(m),
        }
    }
}

/// Appends `event` to the ended run `run` and seals it again.
async fn append_and_reseal(gw: &Gateway, run: &str, event: Event) -> Result<Response, GatewayError> {
    let done = gw.reseals.append(&gw.engine, run, event).await?;
    Ok(axum::Json(json!({
        "run": run,
        "recorded": done.kind,
        "events": done.events,
        "receipt": gw.engine.receipt_url(run),
    }))
    .into_response())
}

/// `POST /runs/{id}/eval`: `{"rubric", "score_milli", "failures"}` by the run's caller or an approver.
async fn eval(
    State(gw): State<Arc<Gateway>>,
    axum::Extension(caller): axum::Extension<Caller>,
    UrlPath(run): UrlPath<String>,
    body: Bytes,
) -> Result<Response, GatewayError> {
    let b: EvalBody = json_body(&body, "{\"rubric\", \"score_milli\", \"failures\"}")?;
    if !gw.inbox.is_approver(&caller.name) {
        gw.may_read(&caller, &run).await?;
    }
    append_and_reseal(
        &gw,
        &run,
        Event::EvalScored { rubric: b.rubric, score_milli: b.score_milli, failures: b.failures },
    )
    .await
}

/// `POST /runs/{id}/review`: `{"notes"}` by an approver, who is recorded as the reviewer.
async fn review(
    State(gw): State<Arc<Gateway>>,
    axum::Extension(caller): axum::Extension<Caller>,
    UrlPath(run): UrlPath<String>,
    body: Bytes,
) -> Result<Response, GatewayError> {
    require_approver(&gw, &caller)?;
    let b: ReviewBody = json_body(&body, "{\"notes\"}")?;
    append_and_reseal(&gw, &run, Event::ReviewSigned { approver: caller.name.clone(), notes: b.notes }).await
}
