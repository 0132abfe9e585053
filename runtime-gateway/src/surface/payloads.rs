//! Payloads by BLAKE3 and the call tree of runs:
//! - `GET /v1/payloads/{hex}`: the bytes behind a hash the log names (for a caller with a run
//!   that names it, or an admin); `410` with the erasure's index once erased;
//! - `POST /v1/payloads/{hex}/erase` (admins, gateway.toml `admins`): `{"reason": "..."}`;
//!   appends `payload.erased` (SPEC 1.1) with the admin as approver, then deletes the bytes;
//! - `GET /runs/{id}`: a run's summary with its parent and children, so an auditor can walk the
//!   call tree of a multi-agent job.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ledger_core::{Entry, Event};
use serde_json::{Value, json};

use crate::base::auth::Caller;
use crate::ledger::{Payload, RunsBy};
use crate::surface::error::GatewayError;
use crate::surface::state::Gateway;

/// Most runs checked for a caller's right to read a payload.
const RUNS_CHECKED: usize = 64;

/// Most children listed for one run.
const CHILDREN: usize = 1000;

/// The routes of this module.
pub fn router() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/v1/payloads/{hash}", get(get_payload))
        .route("/v1/payloads/{hash}/erase", post(erase))
        .route("/runs/{id}", get(get_run))
}

fn parse_hash(hex: &str) -> Result<[u8; 32], GatewayError> {
    let mut out = [0u8; 32];
    if hex.len() != 64 || hex.bytes().any(|b| b.is_ascii_uppercase()) || hex::decode_to_slice(hex, &mut out).is_err() {
        return Err(GatewayError::bad_request(
            "bad_hash",
            format!("{hex:?} is not a payload hash: 64 lowercase hex digits (BLAKE3) expected"),
        ));
    }
    Ok(out)
}

fn is_admin(gw: &Gateway, caller: &Caller) -> bool {
    gw.admins.contains(&caller.name)
}

fn unavailable(e: ledger_core::Error) -> GatewayError {
    GatewayError::unavailable("ledger_unavailable", format!("the ledger could not be read: {e}"))
}

fn erased(hash: &str, index: u64) -> Response {
    let body = json!({ "error": {
        "code": "payload_erased",
        "message": format!("payload {hash} was erased; the payload.erased entry is at index {index}"),
        "index": index,
    }});
    (StatusCode::GONE, axum::Json(body)).into_response()
}

async fn get_payload(
    State(gw): State<Arc<Gateway>>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(hex): Path<String>,
) -> Result<Response, GatewayError> {
    let hash = parse_hash(&hex)?;
    let missing =
        || GatewayError::not_found("payload_missing", format!("no payload {hex} of a run of yours is held here"));
    if !is_admin(&gw, &caller) {
        // A caller reads the bytes a run of theirs names; for anyone else the hash is unknown.
        let runs = gw.engine.sink().payload_runs(hash, RUNS_CHECKED).await.map_err(unavailable)?;
        let mut allowed = false;
        for run in runs {
            if gw.may_read(&caller, &run).await.is_ok() {
                allowed = true;
                break;
            }
        }
        if !allowed {
            return Err(missing());
        }
    }
    match gw.engine.sink().payload(hash).await.map_err(unavailable)? {
        Payload::Present(bytes) => {
            let mut r = bytes.into_response();
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=31536000, immutable"));
            h.insert(header::ETAG, HeaderValue::from_str(&format!("\"{hex}\"")).expect("hex is a header value"));
            Ok(r)
        }
        Payload::Missing => Err(missing()),
        Payload::Erased { index } => Ok(erased(&hex, index)),
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct EraseBody {
    reason: String,
}

async fn erase(
    State(gw): State<Arc<Gateway>>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(hex): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, GatewayError> {
    let hash = parse_hash(&hex)?;
    if !is_admin(&gw, &caller) {
        return Err(GatewayError::forbidden(
            "not_an_admin",
            format!("caller {:?} may not erase payloads (gateway.toml admins)", caller.name),
        ));
    }
    let b: EraseBody = serde_json::from_slice(&body)
        .map_err(|e| GatewayError::bad_request("bad_json", format!("the body must be {{\"reason\": \"...\"}}: {e}")))?;
    if b.reason.trim().is_empty() {
        return Err(GatewayError::bad_request("no_reason", "an erasure needs a reason; it is recorded in the log"));
    }
    let index = gw.engine.sink().erase_payload(hash, b.reason, caller.name.clone()).await.map_err(|e| match e {
        ledger_core::Error::PayloadMissing => {
            GatewayError::not_found("payload_missing", format!("no payload {hex} is held here"))
        }
        other => GatewayError::unavailable("erasure_failed", format!("payload {hex} was not erased: {other}")),
    })?;
    // Tasks held in memory that show the bytes are read again from the ledger.
    for run in gw.engine.sink().payload_runs(hash, 10_000).await.unwrap_or_default() {
        gw.engine.forget(&run);
    }
    Ok(axum::Json(json!({ "hash": hex, "index": index })).into_response())
}

/// `GET /runs/{id}`: the run's caller, skill, context, status, parent and children.
async fn get_run(
    State(gw): State<Arc<Gateway>>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, GatewayError> {
    if let Err(e) = ledger_core::entry::check_run_id(&id) {
        return Err(GatewayError::bad_request("bad_run_id", e.to_string()));
    }
    gw.may_read(&caller, &id).await?;
    let sink = gw.engine.sink();
    let entries = sink.run_entries(&id).await.map_err(unavailable)?;
    let mut out = json!({ "run": id, "entries": entries.len(), "status": "open" });
    for (i, (index, bytes)) in entries.iter().enumerate() {
        let Ok(e) = Entry::decode(bytes) else { continue };
        match e.event {
            Event::TaskAccepted { skill, caller, context, parent, .. } if i == 0 => {
                out["index"] = json!(index);
                out["caller"] = json!(caller);
                out["skill"] = json!(skill);
                out["context"] = json!(context);
                out["parent"] = json!(parent.map(|p| p.as_str().to_string()));
            }
            Event::ReceiptSealed { status, .. } => out["status"] = json!(status.to_string()),
            _ => {}
        }
    }
    let children = sink.runs(RunsBy::Parent(id.clone()), None, CHILDREN).await.map_err(unavailable)?;
    out["children"] = Value::Array(children.runs.iter().map(|r| json!({ "run": r.run, "index": r.index })).collect());
    out["childrenTotal"] = json!(children.total);
    out["receipt"] = json!(gw.engine.receipt_url(&id));
    Ok(axum::Json(out).into_response())
}
