//! `GET /v1/runs`: run listings by caller, context or parent, of the open runs, or of the runs
//! naming a payload; and run searches (all runs, or by caller, skill, agent, status and accepted
//! time), from the log's run catalog (`Ledger::list_runs` and `Ledger::search_runs` hold the
//! rules; this is the HTTP binding).

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use ledger_core::store::catalog::SearchTerms;
use ledger_core::{RunSearch, RunSummary};
use serde::Deserialize;

use crate::answer::{json, principal};
use crate::error::{ApiError, ErrorCode};
use crate::service::{DEFAULT_RUNS_PER_PAGE, Ledger, RunListing};

/// The query of `GET /v1/runs`: a listing (exactly one of `caller`, `context`, `parent`,
/// `open=true`, `payload`; then `before`) or a search (`all=true`, or any of `skill`, `agent`,
/// `status`, `from`, `until`, with or without `caller`; then `cursor`); `limit` and `summary`
/// for both.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    caller: Option<String>,
    context: Option<String>,
    parent: Option<String>,
    open: Option<bool>,
    payload: Option<String>,
    all: Option<bool>,
    skill: Option<String>,
    agent: Option<String>,
    status: Option<String>,
    from: Option<String>,
    until: Option<String>,
    cursor: Option<String>,
    before: Option<u64>,
    limit: Option<usize>,
    summary: Option<bool>,
}

/// What a query asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum RunsAsk {
    /// A listing, paged with `before`.
    Listing(RunListing),
    /// A search, paged with a cursor.
    Search(RunSearch),
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::BadQuery, message)
}

/// A time of `from=` or `until=`: Unix nanoseconds, or RFC 3339 (`2026-01-01T00:00:00Z`).
fn time(key: &str, text: Option<&str>) -> Result<Option<i64>, ApiError> {
    let Some(text) = text else { return Ok(None) };
    if let Ok(ns) = text.parse::<i64>() {
        return Ok(Some(ns));
    }
    let t = humantime::parse_rfc3339_weak(text).map_err(|_| {
        bad(format!("{key}={text:?}: give Unix nanoseconds or an RFC 3339 time (2026-01-01T00:00:00Z)"))
    })?;
    let ns = t
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_nanos()).ok())
        .ok_or_else(|| bad(format!("{key}={text:?}: out of range")))?;
    Ok(Some(ns))
}

impl RunsQuery {
    /// The listing or search the query names, or why it names none.
    pub fn ask(&self) -> Result<RunsAsk, ApiError> {
        if self.all == Some(false) {
            return Err(bad(
                "all=false lists nothing: give all=true for every run, or search by skill=, agent=, status=, from=, until=",
            ));
        }
        let (from, until) = (time("from", self.from.as_deref())?, time("until", self.until.as_deref())?);
        let terms = SearchTerms {
            all: self.all == Some(true),
            caller: self.caller.as_deref(),
            skill: self.skill.as_deref(),
            agent: self.agent.as_deref(),
            status: self.status.as_deref(),
            from,
            until,
        };
        if terms.is_search() {
            let exclusive = [
                ("context", self.context.is_some()),
                ("parent", self.parent.is_some()),
                ("open", self.open.is_some()),
                ("payload", self.payload.is_some()),
            ];
            if let Some((key, _)) = exclusive.iter().find(|(_, on)| *on) {
                return Err(bad(format!(
                    "{key}= lists by itself and does not combine with a search (all, skill, agent, status, from, \
                     until){}",
                    if *key == "open" { ": search with status=open" } else { "" }
                )));
            }
            if self.before.is_some() {
                return Err(bad("before= pages a listing; a search pages with the cursor= its last page answered"));
            }
            return Ok(RunsAsk::Search(terms.search()?));
        }
        if self.cursor.is_some() {
            return Err(bad(
                "cursor= pages a search (all, skill, agent, status, from, until); a listing pages with before=",
            ));
        }
        self.listing().map(RunsAsk::Listing)
    }

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
                return Err(bad(
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
            0 => Err(bad(
                "name what to list: one of caller=, context=, parent=, open=true or payload=; or all=true for every \
                 run, or search by skill=, agent=, status=, from=, until=",
            )),
            _ => {
                let keys: Vec<&str> = named.iter().map(|(k, _)| *k).collect();
                Err(bad(format!("list by one key at a time, not {}", keys.join(" and "))))
            }
        }
    }
}

/// The BLAKE3 a `payload=` names: 64 lowercase hex digits, as payloads are named everywhere.
fn payload_hash(text: &str) -> Result<ledger_core::Hash, ApiError> {
    let lowercase = text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    match hex::decode(text).ok().and_then(|b| <[u8; 32]>::try_from(b).ok()) {
        Some(hash) if lowercase => Ok(hash),
        _ => Err(bad(format!("payload={text:?}: give the payload's BLAKE3 as 64 lowercase hex digits"))),
    }
}

/// A run of an answer: `{"run", "index"}`, and with a summary its fields (docs/FORMATS.md §7).
/// `ts` values are strings: they exceed what a JSON number carries exactly in JavaScript.
pub fn run_json(run: &str, index: u64, summary: Option<&RunSummary>) -> serde_json::Value {
    let mut v = serde_json::json!({"run": run, "index": index});
    if let Some(s) = summary {
        v["skill"] = s.skill.clone().into();
        v["caller"] = s.caller.clone().into();
        v["agent"] = s.agent.clone().into();
        v["ts"] = s.ts.to_string().into();
        v["entries"] = s.entries.into();
        match &s.sealed {
            Some(seal) => {
                v["status"] = seal.status.as_str().into();
                v["sealed"] = serde_json::json!({"index": seal.index, "ts": seal.ts.to_string()});
            }
            None => {
                v["status"] = "open".into();
                v["sealed"] = serde_json::Value::Null;
            }
        }
    }
    v
}

/// `GET /v1/runs?…` → a listing `{"runs": [{"run", "index", …}], "total", "next"}` or a search
/// `{"runs": [{"run", "index", …}], "cursor", "scan", "examined"}`.
pub async fn get_runs(
    State(l): State<Arc<Ledger>>,
    headers: HeaderMap,
    q: Result<Query<RunsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let who = principal(&l, &headers)?;
    let q = q.map(|Query(q)| q).map_err(|e| bad(e.body_text()))?;
    let limit = q.limit.unwrap_or(DEFAULT_RUNS_PER_PAGE);
    let summary = q.summary == Some(true);
    match q.ask()? {
        RunsAsk::Search(search) => {
            let page = l.search_runs(who, search, q.cursor.clone(), limit).await?;
            let runs: Vec<serde_json::Value> =
                page.runs.iter().map(|r| run_json(&r.run, r.index, summary.then_some(r))).collect();
            Ok(json(serde_json::json!({
                "runs": runs, "cursor": page.cursor, "scan": page.scan.as_str(), "examined": page.examined
            })))
        }
        RunsAsk::Listing(listing) => {
            let page = l.list_runs(who, listing, q.before, limit).await?;
            let summaries = if summary {
                l.summaries(page.runs.iter().map(|r| r.run.clone()).collect()).await?
            } else {
                vec![None; page.runs.len()]
            };
            let runs: Vec<serde_json::Value> =
                page.runs.iter().zip(&summaries).map(|(r, s)| run_json(&r.run, r.index, s.as_ref())).collect();
            Ok(json(serde_json::json!({"runs": runs, "total": page.total, "next": page.next})))
        }
    }
}
