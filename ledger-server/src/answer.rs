//! What every HTTP handler shares, below the handler modules ([`crate::http`],
//! [`crate::runs`], [`crate::payloads`]): the request's principal and JSON answers.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::auth::Principal;
use crate::error::ApiError;
use crate::service::Ledger;

/// The principal a request's bearer token names (401 without one, or with an unknown one).
pub fn principal(l: &Ledger, headers: &HeaderMap) -> Result<Arc<Principal>, ApiError> {
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
