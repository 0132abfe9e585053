//! The HTTP API (axum). Log, checkpoint, tiles and health are public, as in a transparency log;
//! everything else needs a bearer token with the right role. Every error is
//! `{"error": {"code", "message", "index"?}}`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use ledger_core::Hash;
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::error::{ApiError, ErrorCode};
use crate::limits::Limits;
use crate::service::{Ledger, blocking, require_reads_all};
use crate::{packs, tiles};

/// The HTTP front end: [`router`] behind the request limits (load shedding, a concurrency limit,
/// a request timeout; see [`crate::limits`]).
pub fn app(ledger: Arc<Ledger>, limits: &Limits) -> Router {
    router(ledger).layer(crate::limits::http(limits))
}

/// The router over `ledger`, without limits. Every API route takes a bearer token or a browser
/// session's cookie; with the cookie, a request that changes state must carry the session's
/// CSRF token (`session_guard`, as a `route_layer` so unknown paths stay 404).
pub fn router(ledger: Arc<Ledger>) -> Router {
    let api = Router::new()
        .route("/v1/log", get(get_log))
        .route("/v1/checkpoint", get(get_checkpoint))
        .route("/v1/entries", post(post_entries).get(get_entries))
        .route("/v1/proof/inclusion", get(get_inclusion))
        .route("/v1/proof/consistency", get(get_consistency))
        .route("/v1/pack", get(get_pack))
        .route("/runs/{id}", get(get_run))
        .route("/v1/runs", get(crate::runs::get_runs))
        .route("/runs/{id}/receipt", get(get_receipt))
        .route("/tile/{*path}", get(get_tile))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .merge(crate::payloads::routes())
        .route_layer(middleware::from_fn_with_state(ledger.clone(), session_guard))
        .layer(middleware::from_fn(cross_origin_reads));
    Router::new()
        .merge(api)
        .merge(crate::browser::routes())
        .fallback(|| async { ApiError::new(ErrorCode::NoSuchEndpoint, "no such endpoint; see the README for the API") })
        .with_state(ledger)
}

/// Cross-origin reads of the API, for the dashboard opened from disk (`file://`, origin `null`)
/// or from another host: a CORS preflight for a `GET` with an `Authorization` header is
/// answered yes, and every API answer (errors too) may be read by any origin. Nothing else is
/// allowed across origins: a preflight for any other method is answered without consent (the
/// browser then refuses the request), and no answer allows credentials, so a browser session's
/// cookie never travels with a cross-origin request.
async fn cross_origin_reads(req: Request, next: Next) -> Response {
    let preflight = req.method() == axum::http::Method::OPTIONS
        && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        let get_only = req.headers().get(header::ACCESS_CONTROL_REQUEST_METHOD).is_some_and(|m| m == "GET");
        let mut r = StatusCode::NO_CONTENT.into_response();
        if get_only {
            let h = r.headers_mut();
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
            h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET"));
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("authorization"));
            h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        }
        return r;
    }
    let mut r = next.run(req).await;
    r.headers_mut().entry(header::ACCESS_CONTROL_ALLOW_ORIGIN).or_insert(HeaderValue::from_static("*"));
    r
}

type Result<T> = std::result::Result<T, ApiError>;

/// The CSRF rule of browser sessions (`ledger_dashboard::session::Sessions::guard`): 403
/// `csrf_required` / `csrf_mismatch` before any handler runs.
async fn session_guard(State(l): State<Arc<Ledger>>, req: Request, next: Next) -> Response {
    if let Err(refusal) = l.sessions.guard(req.method(), req.headers(), std::time::Instant::now()) {
        return refusal.into_response();
    }
    next.run(req).await
}

use crate::answer::{json, principal};

fn b64_hashes(v: &[Hash]) -> Vec<String> {
    v.iter().map(|h| B64.encode(h)).collect()
}

async fn get_log(State(l): State<Arc<Ledger>>) -> Response {
    json(serde_json::to_value(l.log.descriptor()).expect("serialisable"))
}

/// `GET /v1/checkpoint`: the note served (with its cosignatures, on a witnessed log); with
/// `Accept: application/json`, the note with its size, root and, on a witnessed log, which
/// witnesses of the policy cosigned it and where witnessing stands.
async fn get_checkpoint(State(l): State<Arc<Ledger>>, headers: HeaderMap) -> Response {
    let cp = l.checkpoint();
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim().starts_with("application/json")));
    if wants_json {
        let mut body = serde_json::json!({
            "note": cp.note,
            "size": cp.checkpoint.size,
            "root": B64.encode(cp.checkpoint.root),
        });
        if let Some(c) = &l.cosigner {
            body["witnesses"] = witnessing_json(c, &l.log, &cp.note);
        }
        let mut r = json(body);
        r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        r.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        return r;
    }
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*")),
        ],
        cp.note.clone(),
    )
        .into_response()
}

/// `POST /v1/entries`: a CBOR array of entry byte strings, or `{"entries": [base64…]}`.
async fn post_entries(State(l): State<Arc<Ledger>>, req: Request) -> Result<Response> {
    let who = principal(&l, req.headers())?;
    if let Some(e) = l.unavailable() {
        return Err(e);
    }
    let media = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .unwrap_or_default();
    if media != "application/cbor" && media != "application/json" {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!(
                "Content-Type {media:?}: send application/cbor (an array of entry byte strings) or application/json ({{\"entries\": [base64, …]}})"
            ),
        ));
    }
    let body = read_body(req, l.max_body_bytes).await?;
    let entries = if media == "application/cbor" { parse_cbor_batch(&body)? } else { parse_json_batch(&body)? };
    let (indices, size) = l.append(who, entries).await?;
    Ok(json(serde_json::json!({"indices": indices, "tree_size": size})))
}

/// Reads a body of at most `limit` bytes: a declared length over it is refused before anything
/// is read, and a chunked body is cut off as soon as it passes it.
async fn read_body(req: Request, limit: usize) -> Result<bytes::Bytes> {
    let too_large = |n: Option<u64>| {
        ApiError::new(
            ErrorCode::BodyTooLarge,
            match n {
                Some(n) => format!("the body is {n} bytes, over the {limit}-byte limit; send smaller batches"),
                None => format!("the body is over the {limit}-byte limit; send smaller batches"),
            },
        )
    };
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if let Some(n) = declared.filter(|n| *n > limit as u64) {
        return Err(too_large(Some(n)));
    }
    axum::body::to_bytes(req.into_body(), limit).await.map_err(|e| {
        if std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>()) {
            too_large(None)
        } else {
            ApiError::new(ErrorCode::BodyUnreadable, format!("reading the body: {e}"))
        }
    })
}

/// The entries are slices of `body`, not copies.
fn parse_cbor_batch(body: &Bytes) -> Result<Vec<Bytes>> {
    let bad = |m: String| {
        ApiError::new(ErrorCode::MalformedBody, format!("the CBOR body must be an array of byte strings: {m}"))
    };
    let mut d = minicbor::Decoder::new(body);
    let mut out = Vec::new();
    match d.array().map_err(|e| bad(e.to_string()))? {
        Some(n) => {
            for i in 0..n {
                out.push(body.slice_ref(d.bytes().map_err(|e| bad(format!("item {i}: {e}")))?));
            }
        }
        None => loop {
            if d.datatype().map_err(|e| bad(e.to_string()))? == minicbor::data::Type::Break {
                d.skip().map_err(|e| bad(e.to_string()))?;
                break;
            }
            let i = out.len();
            out.push(body.slice_ref(d.bytes().map_err(|e| bad(format!("item {i}: {e}")))?));
        },
    }
    if d.position() != body.len() {
        return Err(bad(format!("{} bytes follow the array", body.len() - d.position())));
    }
    Ok(out)
}

fn parse_json_batch(body: &[u8]) -> Result<Vec<Bytes>> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Batch {
        entries: Vec<String>,
    }
    let b: Batch = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(ErrorCode::MalformedBody, format!("the JSON body must be {{\"entries\": [base64, …]}}: {e}"))
    })?;
    b.entries
        .iter()
        .enumerate()
        .map(|(i, s)| {
            B64.decode(s).map(Bytes::from).map_err(|e| ApiError {
                index: Some(i as u64),
                ..ApiError::new(ErrorCode::MalformedBody, format!("entry {i} is not standard base64: {e}"))
            })
        })
        .collect()
}

#[derive(Deserialize)]
struct RangeQuery {
    start: Option<u64>,
    end: Option<u64>,
}

fn query<T: serde::de::DeserializeOwned>(
    q: std::result::Result<Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T> {
    q.map(|Query(t)| t).map_err(|e| ApiError::new(ErrorCode::BadQuery, e.body_text()))
}

async fn get_entries(
    State(l): State<Arc<Ledger>>,
    headers: HeaderMap,
    q: std::result::Result<Query<RangeQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response> {
    let who = principal(&l, &headers)?;
    let q = query(q)?;
    let start = q.start.unwrap_or(0);
    let end = q.end.ok_or_else(|| ApiError::new(ErrorCode::BadQuery, "end is required (entries [start, end))"))?;
    let entries = l.entries(&who, start, end).await?;
    let b64: Vec<String> = entries.iter().map(|e| B64.encode(e)).collect();
    Ok(json(serde_json::json!({"start": start, "entries": b64})))
}

#[derive(Deserialize)]
struct InclusionQuery {
    index: u64,
    size: Option<u64>,
}

async fn get_inclusion(
    State(l): State<Arc<Ledger>>,
    headers: HeaderMap,
    q: std::result::Result<Query<InclusionQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response> {
    let who = principal(&l, &headers)?;
    let q = query(q)?;
    let (size, proof) = l.inclusion(&who, q.index, q.size).await?;
    Ok(json(serde_json::json!({"index": q.index, "tree_size": size, "proof": b64_hashes(&proof)})))
}

#[derive(Deserialize)]
struct ConsistencyQuery {
    from: u64,
    to: Option<u64>,
}

async fn get_consistency(
    State(l): State<Arc<Ledger>>,
    headers: HeaderMap,
    q: std::result::Result<Query<ConsistencyQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response> {
    let who = principal(&l, &headers)?;
    let q = query(q)?;
    let (to, proof) = l.consistency(&who, q.from, q.to).await?;
    Ok(json(serde_json::json!({"from": q.from, "to": to, "proof": b64_hashes(&proof)})))
}

async fn get_run(State(l): State<Arc<Ledger>>, headers: HeaderMap, Path(id): Path<String>) -> Result<Response> {
    let who = principal(&l, &headers)?;
    caught_up(&l, &headers).await?;
    ledger_core::entry::check_run_id(&id).map_err(|e| ApiError::new(ErrorCode::BadRunId, e.to_string()))?;
    let entries = l.run_entries(who.clone(), id.clone()).await?;
    let items: Vec<serde_json::Value> = entries
        .iter()
        .map(|(i, bytes, e)| serde_json::json!({"index": i, "entry": B64.encode(bytes), "decoded": e.to_json()}))
        .collect();
    // The call tree: the parent its task.accepted names, and the runs that name it (each one the
    // principal may read).
    let parent = entries.iter().find_map(|(_, _, e)| match &e.event {
        ledger_core::Event::TaskAccepted { parent, .. } if e.seq == 0 => parent.as_ref().map(|p| p.to_string()),
        _ => None,
    });
    let children: Vec<serde_json::Value> = l
        .children(who, id.clone())
        .await?
        .into_iter()
        .map(|r| serde_json::json!({"run": r.run, "index": r.index}))
        .collect();
    Ok(json(serde_json::json!({"run": id, "parent": parent, "children": children, "entries": items})))
}

#[derive(Deserialize)]
struct ReceiptQuery {
    wait: Option<f64>,
}

async fn get_receipt(
    State(l): State<Arc<Ledger>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    q: std::result::Result<Query<ReceiptQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response> {
    let who = principal(&l, &headers)?;
    caught_up(&l, &headers).await?;
    let q = query(q)?;
    ledger_core::entry::check_run_id(&id).map_err(|e| ApiError::new(ErrorCode::BadRunId, e.to_string()))?;
    let wait = match q.wait {
        None => Duration::ZERO,
        Some(w) if w.is_finite() && w >= 0.0 => Duration::from_secs_f64(w.min(60.0)),
        Some(w) => return Err(ApiError::new(ErrorCode::BadQuery, format!("wait={w}: give seconds, 0 to 60"))),
    };
    let receipt = l.receipt(who, id, wait).await?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*")),
        ],
        receipt,
    )
        .into_response())
}

#[derive(Deserialize)]
struct PackQuery {
    start: Option<u64>,
    end: Option<u64>,
    /// Adds `payloads/<hex>` for the payloads the range names that are stored.
    payloads: Option<bool>,
}

async fn get_pack(
    State(l): State<Arc<Ledger>>,
    headers: HeaderMap,
    q: std::result::Result<Query<PackQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response> {
    let who = principal(&l, &headers)?;
    require_reads_all(&who)?;
    let q = query(q)?;
    let cp = l.checkpoint();
    let (start, end) = packs::check_range(&cp, q.start, q.end)?;
    let (tx, rx) = mpsc::channel(8);
    let log = l.log.clone();
    let payloads = q.payloads.unwrap_or(false).then(|| l.payloads.clone());
    tokio::task::spawn_blocking(move || packs::write_pack(log, payloads, cp, start, end, tx));
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

async fn get_tile(State(l): State<Arc<Ledger>>, Path(path): Path<String>) -> Result<Response> {
    let t = tiles::parse(&path)?;
    let size = l.checkpoint().checkpoint.size;
    let log = l.log.clone();
    let bytes = blocking(move || tiles::read(&log, t, size)).await?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream")),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable")),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*")),
        ],
        bytes,
    )
        .into_response())
}

/// Which witnesses of the policy cosigned `note`, and where witnessing stands.
fn witnessing_json(c: &ledger_witness::cosigner::Cosigner, log: &ledger_core::Log, note: &str) -> serde_json::Value {
    let key = log.descriptor().verifier_key().ok();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let served = match c.policy().evaluate(note, key.as_ref(), now) {
        Ok(r) => serde_json::json!({
            "satisfied": r.satisfied,
            "cosigned": r.cosigned(),
            "not_cosigned": r.not_cosigned(),
        }),
        // The empty checkpoint of a log never published has no note to evaluate.
        Err(e) => serde_json::json!({"satisfied": false, "error": e.to_string()}),
    };
    serde_json::json!({"served": served, "status": c.status(log)})
}

/// Waits, in bus mode, until this server has applied what the request's
/// `A2A-Ledger-Min-Position` header asks for.
async fn caught_up(l: &Ledger, headers: &HeaderMap) -> Result<()> {
    let min =
        match headers.get(crate::service::MIN_POSITION) {
            None => None,
            Some(v) => Some(v.to_str().map_err(|_| {
                ApiError::new(ErrorCode::BadQuery, format!("{}: not ASCII", crate::service::MIN_POSITION))
            })?),
        };
    l.caught_up(min).await
}

async fn healthz(State(l): State<Arc<Ledger>>) -> Response {
    let cp = l.checkpoint();
    let witnessing = l.cosigner.as_ref().map(|c| c.status(&l.log));
    let status = match (&l.log.poisoned(), &witnessing) {
        (Some(_), _) => "poisoned",
        (None, Some(st)) if !st.quorum_met() => "degraded",
        _ => "ok",
    };
    let mut body = serde_json::json!({
        "status": status,
        "tree_size": l.log.durable_size(),
        "checkpoint_size": cp.checkpoint.size,
    });
    if let Some(b) = &l.bus {
        body["bus"] = serde_json::json!({"log": b.log.as_str(), "position": *b.position.borrow()});
    }
    // A witnessed log that cannot meet its quorum keeps serving (ingest, and receipts against
    // the last published checkpoint): 200, with why it is degraded.
    if let Some(st) = witnessing {
        if let Some(reason) = st.degraded() {
            body["reason"] = serde_json::Value::String(reason);
        }
        body["witnesses"] = serde_json::to_value(&st).expect("serialisable");
    }
    match l.unavailable() {
        Some(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"error": e.body()["error"], "health": body})),
        )
            .into_response(),
        None => json(body),
    }
}

async fn metrics(State(l): State<Arc<Ledger>>, headers: HeaderMap) -> Result<Response> {
    let who = principal(&l, &headers)?;
    require_reads_all(&who)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        )],
        l.metrics.render(&l.log, l.cosigner.as_ref().map(|c| c.status(&l.log)).as_ref()),
    )
        .into_response())
}
