//! The embedded ledger's log as the dashboard's log and packs pages read it (the same paths and
//! answers as ledger-server, docs/FORMATS.md §7, §9): `GET /v1/checkpoint` (the served note),
//! `GET /v1/proof/consistency?from=&to=` (any caller: checkpoints and proofs hold hashes only),
//! and for admins (gateway.toml `admins`: they hold every caller's entries) `GET
//! /v1/entries?start=&end=` and `GET /v1/pack?start=&end=&payloads=` (streamed with
//! `ledger_core::pack::write_tar`, as ledger-server streams its packs). With a remote ledger
//! these are the ledger service's: 404 `not_embedded`.

use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

use crate::base::auth::Caller;
use crate::ledger::LocalLog;
use crate::surface::error::GatewayError;
use crate::surface::state::Gateway;

/// Most entries one read of `/v1/entries` returns; clients page.
const MAX_ENTRIES_PER_READ: u64 = 1000;

/// The routes of this module.
pub fn router() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/v1/checkpoint", get(checkpoint))
        .route("/v1/proof/consistency", get(consistency))
        .route("/v1/entries", get(entries))
        .route("/v1/pack", get(pack))
}

fn local(gw: &Gateway) -> Result<LocalLog, GatewayError> {
    gw.engine.sink().local_log().ok_or_else(|| {
        GatewayError::not_found(
            "not_embedded",
            "this gateway writes to a ledger service: read checkpoints, proofs, entries and packs there",
        )
    })
}

fn admin(gw: &Gateway, caller: &Caller) -> Result<(), GatewayError> {
    if gw.admins.contains(&caller.name) {
        Ok(())
    } else {
        Err(GatewayError::forbidden(
            "not_an_admin",
            format!("caller {:?} may not read the whole log (gateway.toml admins)", caller.name),
        ))
    }
}

fn bad(message: impl Into<String>) -> GatewayError {
    GatewayError::bad_request("bad_query", message)
}

fn out_of_range(message: impl Into<String>) -> GatewayError {
    GatewayError::bad_request("out_of_range", message)
}

fn failed(e: impl std::fmt::Display) -> GatewayError {
    GatewayError::unavailable("ledger_unavailable", format!("the log could not be read: {e}"))
}

fn query<T>(q: Result<Query<T>, axum::extract::rejection::QueryRejection>) -> Result<T, GatewayError> {
    q.map(|Query(q)| q).map_err(|e| bad(e.body_text()))
}

async fn checkpoint(State(gw): State<Arc<Gateway>>) -> Result<Response, GatewayError> {
    let note = local(&gw)?.log.checkpoint().note.clone();
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"))], note).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsistencyQuery {
    from: u64,
    to: Option<u64>,
}

async fn consistency(
    State(gw): State<Arc<Gateway>>,
    q: Result<Query<ConsistencyQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, GatewayError> {
    let q = query(q)?;
    let log = local(&gw)?.log;
    let served = log.checkpoint().checkpoint.size;
    let to = q.to.unwrap_or(served);
    if q.from > to || to > served {
        return Err(out_of_range(format!(
            "from {} and to {to} must satisfy from <= to <= {served}, the served checkpoint's size",
            q.from
        )));
    }
    let from = q.from;
    let proof =
        tokio::task::spawn_blocking(move || log.consistency_proof(from, to)).await.map_err(failed)?.map_err(failed)?;
    let proof: Vec<String> = proof.iter().map(|h| B64.encode(h)).collect();
    Ok(axum::Json(json!({ "from": from, "to": to, "proof": proof })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntriesQuery {
    start: u64,
    end: u64,
}

async fn entries(
    State(gw): State<Arc<Gateway>>,
    axum::Extension(caller): axum::Extension<Caller>,
    q: Result<Query<EntriesQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, GatewayError> {
    let q = query(q)?;
    let log = local(&gw)?.log;
    admin(&gw, &caller)?;
    let size = log.durable_size();
    if q.start > q.end || q.end > size {
        return Err(out_of_range(format!("range [{}, {}) is not within the log's {size} entries", q.start, q.end)));
    }
    let (start, end) = (q.start, q.end.min(q.start.saturating_add(MAX_ENTRIES_PER_READ)));
    let read = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        log.scan(start, end, &mut |_, e| {
            out.push(B64.encode(e));
            Ok(())
        })
        .map(|()| out)
    });
    let entries = read.await.map_err(failed)?.map_err(failed)?;
    Ok(axum::Json(json!({ "start": start, "entries": entries })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PackQuery {
    start: Option<u64>,
    end: Option<u64>,
    payloads: Option<bool>,
}

async fn pack(
    State(gw): State<Arc<Gateway>>,
    axum::Extension(caller): axum::Extension<Caller>,
    q: Result<Query<PackQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, GatewayError> {
    let q = query(q)?;
    let LocalLog { log, payloads } = local(&gw)?;
    admin(&gw, &caller)?;
    // Proven against the served checkpoint, as ledger-server's packs.
    let cp = log.checkpoint();
    let n = cp.checkpoint.size;
    let (start, end) = (q.start.unwrap_or(0), q.end.unwrap_or(n));
    if start > end || end > n {
        return Err(out_of_range(format!(
            "range [{start}, {end}) must satisfy start <= end <= {n}, the served checkpoint's size"
        )));
    }
    let with_payloads = q.payloads.unwrap_or(false);
    let (tx, rx) = mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(8);
    tokio::task::spawn_blocking(move || {
        let now = SystemTime::now();
        let created = chrono::DateTime::<chrono::Utc>::from(now).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let mtime = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut send = |chunk| tx.blocking_send(Ok(chunk)).map_err(|_| ledger_core::Error::Closed);
        let sent = ledger_core::pack::write_tar(
            &log,
            with_payloads.then_some(&*payloads),
            &cp.note,
            n,
            (start, end),
            (created, mtime),
            &mut send,
        );
        // A failure part way ends the stream with an error: the client holds a pack that does
        // not verify, never a wrong one.
        if let Err(e) = sent {
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    let name = format!("attachment; filename=\"pack-{start}-{end}.tar\"");
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/x-tar")),
            (header::CONTENT_DISPOSITION, HeaderValue::from_str(&name).expect("ascii")),
        ],
        body,
    )
        .into_response())
}
