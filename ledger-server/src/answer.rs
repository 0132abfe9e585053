//! What every HTTP handler shares, below the handler modules ([`crate::http`],
//! [`crate::runs`], [`crate::payloads`], [`crate::browser`]): the request's principal (bearer
//! token or browser session) and JSON answers.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::auth::Principal;
use crate::error::ApiError;
use crate::service::Ledger;

/// The principal a request's bearer token names, or without an `Authorization` header the one
/// its browser session names (401 without either, or with an unknown one). A session request
/// that changes state has passed the CSRF check of [`crate::http::router`] before it gets here.
pub fn principal(l: &Ledger, headers: &HeaderMap) -> Result<Arc<Principal>, ApiError> {
    match l.sessions.principal(headers, std::time::Instant::now()) {
        Ok(Some(session)) => return Ok(session.principal),
        Ok(None) => {}
        Err(refusal) => return Err(ApiError::unauthenticated(refusal.message())),
    }
    let value = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(v) => Some(v.to_str().map_err(|_| ApiError::unauthenticated("the Authorization header is not ASCII"))?),
    };
    l.principals.authenticate(value)
}

/// A JSON answer any origin may read.
pub fn json(v: serde_json::Value) -> Response {
    let mut r = axum::Json(v).into_response();
    r.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    r
}
