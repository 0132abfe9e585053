//! Payloads by BLAKE3 (`ledger_core::payload`): what both front ends share, and the HTTP routes
//! `PUT /v1/payloads/{hex}` (ingest; streamed body), `GET /v1/payloads/{hex}` (streamed) and
//! `POST /v1/payloads/{hex}/erase` (admin).
//!
//! Durability: a `PUT` (and gRPC `PutPayload`) answers only after [`PayloadStore::sync`] returns
//! for its bytes, so an acknowledged payload survives a crash. An erasure answers only after its
//! `payload.erased` entry is durable and the bytes are deleted ([`Log::erase_payload`]).
//!
//! Who reads a payload: auditors and admins any; ingest principals any they could have stored.
//! Owners are refused for now: the rule for them is "a run they may read names the hash", which
//! needs the run catalog's `Log::payload_runs` (the payload references of each entry), not yet
//! in this build.

use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use futures_util::StreamExt as _;
use ledger_core::payload::{PAYLOAD_CHUNK, PayloadWriter};
use ledger_core::{Entry, Hash, Log, PayloadStore};
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::auth::{Principal, Role};
use crate::error::{ApiError, ErrorCode};
use crate::service::{Ledger, blocking};

/// The default actor of the `payload.erased` entries the server appends.
pub const DEFAULT_ERASURE_ACTOR: &str = "ledger-server";
/// Longest erasure reason accepted, bytes (it goes into an entry, whose size is limited).
pub const MAX_REASON_BYTES: usize = 4096;

type Result<T> = std::result::Result<T, ApiError>;

/// The routes, for [`crate::http::router`] to merge.
pub fn routes() -> Router<Arc<Ledger>> {
    Router::new()
        .route("/v1/payloads/{hex}", get(get_payload).put(put_payload))
        .route("/v1/payloads/{hex}/erase", post(post_erase))
}

/// Parses a payload name: 64 lowercase hex digits.
pub fn parse_hash(hex: &str) -> Result<Hash> {
    let bad = || ApiError::new(ErrorCode::BadQuery, format!("{hex:?} is not a payload hash: 64 lowercase hex digits"));
    if hex.len() != 64 || hex.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(bad());
    }
    hex::decode(hex).ok().and_then(|v| v.try_into().ok()).ok_or_else(bad)
}

/// Parses a payload hash sent as bytes (gRPC).
pub fn hash_from_bytes(b: &[u8]) -> Result<Hash> {
    b.try_into().map_err(|_| {
        ApiError::new(ErrorCode::MalformedBody, format!("a payload hash is 32 bytes (BLAKE3), not {}", b.len()))
    })
}

/// 403 unless `who` may store payloads.
pub fn may_put(who: &Principal) -> Result<()> {
    if who.role == Role::Ingest {
        return Ok(());
    }
    Err(ApiError::forbidden(format!(
        "principal {:?} has role {:?}; storing payloads needs an ingest token",
        who.name, who.role
    )))
}

/// 403 unless `who` may read payloads.
///
/// The rule: auditors and admins read every payload; an owner or an ingest principal reads a
/// payload when it may read at least one run that names it (the run catalog's payload
/// references; the read rule of `GET /runs/{id}`). For anyone else the payload does not exist:
/// the answer is the one for a payload never stored, so a hash proves nothing.
pub fn may_get(log: &Log, who: &Principal, hash: &Hash) -> Result<()> {
    if who.reads_all() {
        return Ok(());
    }
    for run in log.payload_runs(hash, RUNS_CHECKED)? {
        let entries = log.run_entries(&run)?;
        let decoded: Vec<Entry> = entries.iter().filter_map(|(_, b)| Entry::decode(b).ok()).collect();
        if who.may_read_run(decoded.iter()) {
            return Ok(());
        }
    }
    Err(ApiError::new(
        ErrorCode::PayloadMissing,
        format!("no payload {} of a run principal {:?} may read is stored here", hex::encode(hash), who.name),
    ))
}

/// Most runs naming a payload checked for a reader's right to it.
const RUNS_CHECKED: usize = 64;

/// 403 unless `who` may erase payloads.
pub fn may_erase(who: &Principal) -> Result<()> {
    if who.role == Role::Admin {
        return Ok(());
    }
    Err(ApiError::forbidden(format!("principal {:?} has role {:?}; erasing needs an admin token", who.name, who.role)))
}

/// A streamed upload in progress: bytes are gathered into chunks and handed to the store's
/// writer on the blocking pool.
#[derive(Debug)]
pub struct Upload {
    writer: Option<PayloadWriter>,
    buf: Vec<u8>,
}

impl Ledger {
    /// Starts the upload of `hash` for `who` (an ingest principal), with its declared length.
    pub async fn payload_upload(&self, who: &Principal, hash: Hash, declared: Option<u64>) -> Result<Upload> {
        may_put(who)?;
        self.writable()?;
        if let Some(e) = self.unavailable() {
            return Err(e);
        }
        let p = self.payloads.clone();
        let writer = blocking(move || Ok(p.writer(&hash, declared)?)).await?;
        Ok(Upload { writer: Some(writer), buf: Vec::with_capacity(PAYLOAD_CHUNK) })
    }

    /// Takes the next bytes of an upload.
    pub async fn payload_bytes(&self, up: &mut Upload, bytes: &[u8]) -> Result<()> {
        up.buf.extend_from_slice(bytes);
        if up.buf.len() >= PAYLOAD_CHUNK {
            self.payload_flush(up).await?;
        }
        Ok(())
    }

    async fn payload_flush(&self, up: &mut Upload) -> Result<()> {
        let mut w = up.writer.take().expect("an upload in progress has its writer");
        let buf = std::mem::take(&mut up.buf);
        let (w, buf) = blocking(move || {
            w.write(&buf)?;
            Ok((w, buf))
        })
        .await?;
        up.writer = Some(w);
        up.buf = buf;
        up.buf.clear();
        Ok(())
    }

    /// Ends an upload: checks the bytes, stores them and syncs, then answers whether they were
    /// newly stored and their length. Durable when it returns `Ok`.
    pub async fn payload_finish(&self, mut up: Upload, declared: Option<u64>) -> Result<(bool, u64)> {
        if !up.buf.is_empty() {
            self.payload_flush(&mut up).await?;
        }
        let w = up.writer.take().expect("an upload in progress has its writer");
        let len = w.len();
        if let Some(d) = declared.filter(|d| *d != len) {
            return Err(ApiError::new(
                ErrorCode::MalformedBody,
                format!("the upload declared {d} bytes and sent {len}; nothing was stored"),
            ));
        }
        let p = self.payloads.clone();
        let created = blocking(move || {
            let created = w.finish()?;
            // The durability rule: the answer waits for a sync that covers the bytes.
            p.sync()?;
            Ok(created)
        })
        .await?;
        self.metrics.payload_put(created, len);
        self.refresh_payload_usage().await;
        Ok((created, len))
    }

    /// The chunks of `hash` for `who`, read on the blocking pool into a channel: the length and
    /// the receiver. Missing and erased payloads are refused before anything is sent.
    pub async fn payload_chunks(
        &self,
        who: &Principal,
        hash: Hash,
    ) -> Result<(u64, mpsc::Receiver<std::result::Result<Bytes, ApiError>>)> {
        let (log, principal) = (self.log.clone(), who.clone());
        blocking(move || may_get(&log, &principal, &hash)).await?;
        let p = self.payloads.clone();
        let reader = blocking(move || Ok(p.read(&hash)?)).await?;
        let len = reader.len();
        let (tx, rx) = mpsc::channel(2);
        tokio::task::spawn_blocking(move || {
            for chunk in reader {
                let msg = chunk.map(Bytes::from).map_err(ApiError::from);
                let failed = msg.is_err();
                if tx.blocking_send(msg).is_err() || failed {
                    return;
                }
            }
        });
        Ok((len, rx))
    }

    /// Erases `hash` for `who` (an admin, recorded as the approver), as the configured erasure
    /// actor: the index of the `payload.erased` entry (the first one's, if already erased).
    pub async fn payload_erase(&self, who: &Principal, hash: Hash, reason: String) -> Result<u64> {
        may_erase(who)?;
        self.writable()?;
        if reason.trim().is_empty() {
            return Err(ApiError::new(ErrorCode::MalformedBody, "an erasure needs a reason"));
        }
        if reason.len() > MAX_REASON_BYTES {
            return Err(ApiError::new(
                ErrorCode::MalformedBody,
                format!("the reason is {} bytes, over the {MAX_REASON_BYTES}-byte limit", reason.len()),
            ));
        }
        if let Some(e) = self.unavailable() {
            return Err(e);
        }
        let (log, p, approver, actor) =
            (self.log.clone(), self.payloads.clone(), who.name.clone(), self.erasure_actor.clone());
        let index = blocking(move || Ok(erase(&log, &p, &hash, &reason, &approver, &actor)?)).await?;
        self.metrics.payload_erased();
        self.refresh_payload_usage().await;
        Ok(index)
    }

    /// Sets the payload-bytes gauge from the store.
    pub async fn refresh_payload_usage(&self) {
        let p = self.payloads.clone();
        if let Ok(used) = blocking(move || Ok(p.usage()?)).await {
            self.metrics.payload_bytes(used);
        }
    }
}

fn erase(
    log: &Log,
    p: &PayloadStore,
    hash: &Hash,
    reason: &str,
    approver: &str,
    actor: &str,
) -> ledger_core::Result<u64> {
    let ts = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    log.erase_payload(p, hash, reason, approver, actor, ts)
}

fn principal_of(l: &Ledger, headers: &axum::http::HeaderMap) -> Result<Arc<Principal>> {
    crate::answer::principal(l, headers)
}

async fn put_payload(State(l): State<Arc<Ledger>>, Path(hex): Path<String>, req: Request) -> Result<Response> {
    let who = principal_of(&l, req.headers())?;
    let hash = parse_hash(&hex)?;
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let mut up = l.payload_upload(&who, hash, declared).await?;
    let mut body = req.into_body().into_data_stream();
    while let Some(frame) = body.next().await {
        let bytes = frame.map_err(|e| ApiError::new(ErrorCode::BodyUnreadable, format!("reading the body: {e}")))?;
        l.payload_bytes(&mut up, &bytes).await?;
    }
    let (created, len) = l.payload_finish(up, declared).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, axum::Json(serde_json::json!({"hash": hex, "length": len, "created": created}))).into_response())
}

async fn get_payload(
    State(l): State<Arc<Ledger>>,
    Path(hex): Path<String>,
    headers: axum::http::HeaderMap,
) -> Result<Response> {
    let who = principal_of(&l, &headers)?;
    let hash = parse_hash(&hex)?;
    let (len, rx) = l.payload_chunks(&who, hash).await?;
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx)
        .map(|r| r.map_err(|e| std::io::Error::other(format!("{}: {}", e.code, e.message))));
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream")),
            (header::CONTENT_LENGTH, HeaderValue::from(len)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EraseBody {
    reason: String,
}

async fn post_erase(State(l): State<Arc<Ledger>>, Path(hex): Path<String>, req: Request) -> Result<Response> {
    let who = principal_of(&l, req.headers())?;
    let hash = parse_hash(&hex)?;
    may_erase(&who)?;
    let body = axum::body::to_bytes(req.into_body(), 64 << 10)
        .await
        .map_err(|e| ApiError::new(ErrorCode::BodyUnreadable, format!("reading the body: {e}")))?;
    let b: EraseBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(ErrorCode::MalformedBody, format!("the body must be {{\"reason\": \"why\"}}: {e}"))
    })?;
    let index = l.payload_erase(&who, hash, b.reason).await?;
    Ok(axum::Json(serde_json::json!({"index": index})).into_response())
}
