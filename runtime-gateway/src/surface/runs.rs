//! `GET /v1/runs`: the run search of the ledger's run catalog (docs/FORMATS.md §8, §9) for the
//! dashboard: every run, or the runs of a skill, agent, status or accepted-time range, newest
//! first, paged with a cursor, each row with its summary. A caller searches its own runs (the
//! search gets its name as `caller`; naming another is 403); an admin (gateway.toml `admins`)
//! searches all.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ledger_core::RunSummary;
use ledger_core::store::catalog::SearchTerms;
use serde_json::{Value, json};

use crate::base::auth::Caller;
use crate::surface::error::GatewayError;
use crate::surface::state::Gateway;

/// Runs in a page when the request names no limit.
const DEFAULT_LIMIT: usize = 50;
/// Most runs in a page.
const MAX_LIMIT: usize = 1000;

/// The routes of this module.
pub fn router() -> Router<Arc<Gateway>> {
    Router::new().route("/v1/runs", get(search))
}

/// The query: `all=true`, or any of `skill`, `agent`, `status`, `from`, `until`, `caller`; then
/// `cursor`, `limit`, `summary`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    all: Option<bool>,
    caller: Option<String>,
    skill: Option<String>,
    agent: Option<String>,
    status: Option<String>,
    from: Option<String>,
    until: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
    summary: Option<bool>,
}

fn bad(message: impl Into<String>) -> GatewayError {
    GatewayError::bad_request("bad_query", message)
}

/// A time of `from=` or `until=`: Unix nanoseconds, or RFC 3339 (`2026-01-01T00:00:00Z`).
fn time(key: &str, text: Option<&str>) -> Result<Option<i64>, GatewayError> {
    let Some(text) = text else { return Ok(None) };
    if let Ok(ns) = text.parse::<i64>() {
        return Ok(Some(ns));
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .map(Some)
        .ok_or_else(|| bad(format!("{key}={text:?}: give Unix nanoseconds or an RFC 3339 time (2026-01-01T00:00:00Z)")))
}

/// A row: `{"run", "index"}`, with its summary as on ledger-server (`ts` values as strings).
fn row(r: &RunSummary, summary: bool) -> Value {
    let mut v = json!({ "run": r.run, "index": r.index });
    if summary {
        v["skill"] = json!(r.skill);
        v["caller"] = json!(r.caller);
        v["agent"] = json!(r.agent);
        v["ts"] = json!(r.ts.to_string());
        v["entries"] = json!(r.entries);
        v["status"] = json!(r.sealed.as_ref().map_or("open", |s| s.status.as_str()));
        v["sealed"] = r.sealed.as_ref().map_or(Value::Null, |s| json!({"index": s.index, "ts": s.ts.to_string()}));
    }
    v
}

async fn search(
    State(gw): State<Arc<Gateway>>,
    axum::Extension(caller): axum::Extension<Caller>,
    q: Result<Query<SearchQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, GatewayError> {
    let Query(q) = q.map_err(|e| bad(e.body_text()))?;
    if q.all == Some(false) {
        return Err(bad(
            "all=false lists nothing: give all=true for every run, or search by skill=, agent=, status=, from=, until=",
        ));
    }
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(bad(format!("limit={limit}: give 1 to {MAX_LIMIT} runs per page (default {DEFAULT_LIMIT})")));
    }
    let admin = gw.admins.contains(&caller.name);
    // A caller's search is of its own runs: its name is the search's caller.
    let who = match (&q.caller, admin) {
        (Some(c), false) if *c != caller.name => {
            return Err(GatewayError::forbidden(
                "not_your_runs",
                format!("caller {:?} may search only its own runs, not those of {c:?}", caller.name),
            ));
        }
        (c, true) => c.clone(),
        (_, false) => Some(caller.name.clone()),
    };
    let terms = SearchTerms {
        all: q.all == Some(true),
        caller: q.caller.as_deref(),
        skill: q.skill.as_deref(),
        agent: q.agent.as_deref(),
        status: q.status.as_deref(),
        from: time("from", q.from.as_deref())?,
        until: time("until", q.until.as_deref())?,
    };
    if !terms.is_search() && q.caller.is_none() {
        return Err(bad("name what to search: all=true for every run, or skill=, agent=, status=, from=, until="));
    }
    let mut search = terms.search().map_err(|e| bad(e.to_string()))?;
    search.caller = who;
    let page = gw.engine.sink().search_runs(search, q.cursor, limit).await.map_err(|e| match e {
        ledger_core::Error::BadSearch(m) => bad(m),
        e => GatewayError::unavailable("ledger_unavailable", format!("the ledger could not be searched: {e}")),
    })?;
    let summary = q.summary == Some(true);
    let runs: Vec<Value> = page.runs.iter().map(|r| row(r, summary)).collect();
    Ok(axum::Json(json!({ "runs": runs, "cursor": page.cursor, "scan": page.scan.as_str() })).into_response())
}
