//! The witness over HTTP (axum): `POST /add-checkpoint` and `GET /checkpoint/{*origin}`
//! (docs/FORMATS.md §10). `main.rs` serves [`router`]; tests put it behind fakes.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::{MAX_BODY_BYTES, Refusal, Witness};

/// The witness's two endpoints.
pub fn router(w: Arc<Witness>) -> Router {
    Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .route("/checkpoint/{*origin}", get(checkpoint))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(w)
}

async fn add_checkpoint(State(w): State<Arc<Witness>>, body: Bytes) -> Response {
    answer(w, body).await
}

/// The answer to an `add-checkpoint` request body: 200 with the cosignature line, or the
/// refusal with its C2SP status (a 409 with the `text/x.tlog.size` body).
pub async fn answer(w: Arc<Witness>, body: Bytes) -> Response {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
    // Verification, the per-log lock and the fsyncs block: off the async workers.
    let result = tokio::task::spawn_blocking(move || w.add_checkpoint(&body, now)).await;
    match result {
        Ok(Ok(line)) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], line).into_response(),
        Ok(Err(refusal)) => refusal_response(&refusal),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

fn refusal_response(r: &Refusal) -> Response {
    let status = StatusCode::from_u16(r.status()).expect("a valid status");
    if matches!(r, Refusal::Storage(_)) {
        eprintln!("ledger-witness: {r}");
    }
    match r.latest_size() {
        // C2SP: a 409 carries the latest cosigned size as `text/x.tlog.size`.
        Some(size) => (status, [(header::CONTENT_TYPE, "text/x.tlog.size")], format!("{size}\n")).into_response(),
        None => (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{r}\n")).into_response(),
    }
}

async fn checkpoint(State(w): State<Arc<Witness>>, UrlPath(origin): UrlPath<String>) -> Response {
    match w.latest(&origin) {
        Some(note) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note).into_response(),
        None => (StatusCode::NOT_FOUND, format!("no cosigned checkpoint of {origin:?}\n")).into_response(),
    }
}
