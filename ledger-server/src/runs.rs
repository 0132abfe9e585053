//! `GET /v1/runs`: run listings by caller, context or parent, of the open runs, or of the runs
//! naming a payload, from the log's run catalog (`Ledger::list_runs` holds the rules; this is
//! the HTTP binding).

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;

use crate::answer::{json, principal};
use crate::error::{ApiError, ErrorCode};
use crate::service::{DEFAULT_RUNS_PER_PAGE, Ledger, RunListing};

/// The query of `GET /v1/runs`: exactly one of `caller`, `context`, `parent`, `open=true`,
/// `payload`; then `before` and `limit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    caller: Option<String>,
    context: Option<String>,
    parent: Option<String>,
    open: Option<bool>,
    payload: Option<String>,
    before: Option<u64>,
    limit: Option<usize>,
}

impl RunsQuery {
    /// The listing the query names, or why it names none.
    fn listing(&self) -> Result<RunListing, ApiError> {
        let mut named = Vec::new();
        if let Some(c) = &self.caller {
            named.push(("caller", RunListing::Caller(c.clone())));
        }
        if let Some(c) = &self.context {
            named.push(("context", RunListing::Context(c.clone())));
        }
        if let Some(p) = &self.parent {
            named.push(("parent", RunListing::Parent(p.clone())));
        }
        match self.open {
            Some(true) => named.push(("open", RunListing::Open)),
            Some(false) => {
                return Err(ApiError::new(
                    ErrorCode::BadQuery,
                    "open=false lists nothing: give open=true for the open runs, or caller=, context= or parent=",
                ));
            }
            None => {}
        }
        if let Some(p) = &self.payload {
            named.push(("payload", RunListing::Payload(payload_hash(p)?)));
        }
        match named.len() {
            1 => Ok(named.pop().expect("one").1),
            0 => Err(ApiError::new(
                ErrorCode::BadQuery,
                "name what to list: one of caller=, context=, parent=, open=true or payload=",
            )),
            _ => {
                let keys: Vec<&str> = named.iter().map(|(k, _)| *k).collect();
                Err(ApiError::new(
                    ErrorCode::BadQuery,
                    format!("list by one key at a time, not {}", keys.join(" and ")),
                ))
            }
        }
    }
}

/// The BLAKE3 a `payload=` names: 64 lowercase hex digits, as payloads are named everywhere.
fn payload_hash(text: &str) -> Result<ledger_core::Hash, ApiError> {
    let lowercase = text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    match hex::decode(text).ok().and_then(|b| <[u8; 32]>::try_from(b).ok()) {
        Some(hash) if lowercase => Ok(hash),
        _ => Err(ApiError::new(
            ErrorCode::BadQuery,
            format!("payload={text:?}: give the payload's BLAKE3 as 64 lowercase hex digits"),
        )),
    }
}

/// `GET /v1/runs?caller=|context=|parent=|open=true|payload=&before=&limit=` →
/// `{"runs": [{"run", "index"}], "total", "next"}`.
pub async fn get_runs(
    State(l): State<Arc<Ledger>>,
    headers: HeaderMap,
    q: Result<Query<RunsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let who = principal(&l, &headers)?;
    let q = q.map(|Query(q)| q).map_err(|e| ApiError::new(ErrorCode::BadQuery, e.body_text()))?;
    let listing = q.listing()?;
    let page = l.list_runs(who, listing, q.before, q.limit.unwrap_or(DEFAULT_RUNS_PER_PAGE)).await?;
    let runs: Vec<serde_json::Value> =
        page.runs.iter().map(|r| serde_json::json!({"run": r.run, "index": r.index})).collect();
    Ok(json(serde_json::json!({"runs": runs, "total": page.total, "next": page.next})))
}
