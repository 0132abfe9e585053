//! The one error shape of the API: `{"error": {"code", "message", "index"?}}` over HTTP, and the
//! same code, message and index in gRPC (the typed [`ErrorCode`] in the status details).

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ledger_core::Error;
pub use ledger_wire::ErrorCode;

/// What an overloaded or timed-out server asks a client to wait before trying again.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// An API error: a stable machine code (which fixes the HTTP and gRPC status) and a message for
/// people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// Stable code, e.g. [`ErrorCode::SeqGap`].
    pub code: ErrorCode,
    /// What was wrong and what to do.
    pub message: String,
    /// Position in the request's batch of the entry at fault.
    pub index: Option<u64>,
    /// When to try again (`Retry-After`, gRPC `RetryInfo`), for refusals that pass.
    pub retry_after: Option<Duration>,
}

impl ApiError {
    /// An error with no index.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError { code, message: message.into(), index: None, retry_after: None }
    }

    /// 401.
    pub fn unauthenticated(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Unauthenticated, message)
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Forbidden, message)
    }

    /// 500 for what the caller cannot fix; the message still says what failed.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Internal, message)
    }

    /// 503 with `Retry-After`: the server is at its limit of requests in progress.
    pub fn overloaded() -> ApiError {
        ApiError {
            retry_after: Some(RETRY_AFTER),
            ..ApiError::new(
                ErrorCode::Overloaded,
                "the server is at its limit of requests in progress; try again after the Retry-After delay",
            )
        }
    }

    /// 503 with `Retry-After`: no answer started within the request timeout.
    pub fn timeout() -> ApiError {
        ApiError {
            retry_after: Some(RETRY_AFTER),
            ..ApiError::new(
                ErrorCode::Timeout,
                "no answer started within the server's request timeout; try again after the Retry-After \
                 delay (an append that was cut may still commit: resending it is idempotent)",
            )
        }
    }

    /// What a tower layer in front of the handlers refused with: shed for load, timed out, or
    /// (never expected) something else.
    pub fn from_layer(e: tower::BoxError) -> ApiError {
        if e.is::<tower::load_shed::error::Overloaded>() {
            ApiError::overloaded()
        } else if e.is::<tower::timeout::error::Elapsed>() {
            ApiError::timeout()
        } else {
            ApiError::internal(format!("serving the request: {e}"))
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.http_status()).expect("error codes have valid HTTP statuses")
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        let mut e = serde_json::json!({"code": self.code.as_str(), "message": self.message});
        if let Some(i) = self.index {
            e["index"] = i.into();
        }
        serde_json::json!({ "error": e })
    }

    /// The gRPC status of the same error: the code's gRPC status, `"<code>: <message>"`, and
    /// the code, index and retry delay in the details.
    pub fn to_status(&self) -> tonic::Status {
        let detail = ledger_wire::Detail { index: self.index, retry_after: self.retry_after };
        ledger_wire::to_status(self.code, &self.message, detail)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status(), axum::Json(self.body())).into_response();
        if let Some(after) = self.retry_after {
            // Whole seconds, at least one: the header has no finer unit.
            let secs = after.as_secs_f64().ceil().max(1.0) as u64;
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        r
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        ApiError::from(&e)
    }
}

impl From<&Error> for ApiError {
    fn from(e: &Error) -> ApiError {
        match e {
            Error::InBatch { position, source } => ApiError {
                index: Some(*position as u64),
                ..ApiError::new(
                    classify(source),
                    format!("entry {position} of the batch: {source}; nothing of the batch was appended"),
                )
            },
            // The index of the erasure entry travels where a batch's index does.
            Error::PayloadErased { index } => ApiError {
                index: Some(*index),
                ..ApiError::new(
                    ErrorCode::PayloadErased,
                    format!("{e}; read that entry for when, why and who approved it"),
                )
            },
            _ => ApiError::new(classify(e), e.to_string()),
        }
    }
}

/// The code of a core error.
fn classify(e: &Error) -> ErrorCode {
    match e {
        Error::EntryTooLarge { .. } => ErrorCode::EntryTooLarge,
        Error::Truncated { .. }
        | Error::TrailingBytes { .. }
        | Error::NotCanonical { .. }
        | Error::Float { .. }
        | Error::Tag { .. }
        | Error::UnknownKey { .. }
        | Error::MissingKey { .. }
        | Error::DuplicateKey { .. }
        | Error::WrongType { .. }
        | Error::BadValue { .. }
        | Error::UnknownKind(_)
        | Error::UnsupportedVersion(_)
        | Error::BadRunId { .. }
        | Error::BadPublicKey(_) => ErrorCode::InvalidEntry,
        Error::SeqGap { .. } => ErrorCode::SeqGap,
        Error::Conflict { .. } => ErrorCode::Conflict,
        Error::NotPermitted(_) => ErrorCode::ActorNotPermitted,
        Error::UnknownRun(_) => ErrorCode::UnknownRun,
        Error::BadSearch(_) => ErrorCode::BadQuery,
        Error::Unsealed(_) => ErrorCode::RunUnsealed,
        Error::NotYetCheckpointed { .. } => ErrorCode::NotYetCheckpointed,
        Error::UnknownSigner { .. } => ErrorCode::UnknownSigner,
        Error::OutOfRange { .. } => ErrorCode::OutOfRange,
        Error::Poisoned(_) => ErrorCode::LogPoisoned,
        Error::Closed => ErrorCode::ShuttingDown,
        Error::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
        Error::PayloadQuota { .. } => ErrorCode::PayloadQuota,
        Error::PayloadMismatch { .. } => ErrorCode::PayloadMismatch,
        Error::PayloadErased { .. } => ErrorCode::PayloadErased,
        Error::PayloadMissing => ErrorCode::PayloadMissing,
        _ => ErrorCode::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Overload and timeout answer 503 with `Retry-After` and the usual body; other errors
    /// carry no `Retry-After`.
    #[tokio::test]
    async fn passing_refusals_say_when_to_retry() {
        for e in [ApiError::overloaded(), ApiError::timeout()] {
            let code = e.code;
            let r = e.into_response();
            assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(r.headers()[header::RETRY_AFTER], "1");
            let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["error"]["code"], code.as_str());
        }
        let r = ApiError::from(Error::Closed).into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(r.headers().get(header::RETRY_AFTER).is_none());
    }

    /// The gRPC status carries the code and index in its details, the message as before.
    #[test]
    fn grpc_status_is_typed() {
        let e = ApiError::from(Error::InBatch {
            position: 3,
            source: Box::new(Error::SeqGap { run: "r".into(), expected: 1, got: 5 }),
        });
        let s = e.to_status();
        assert_eq!(s.code(), tonic::Code::FailedPrecondition);
        assert!(s.message().starts_with("seq_gap: entry 3 of the batch: "), "{}", s.message());
        assert_eq!(ErrorCode::of(&s), Some(ErrorCode::SeqGap));
        assert_eq!(ledger_wire::Detail::of(&s).index, Some(3));
        let s = ApiError::overloaded().to_status();
        assert_eq!((s.code(), ErrorCode::of(&s)), (tonic::Code::Unavailable, Some(ErrorCode::Overloaded)));
        assert_eq!(ledger_wire::Detail::of(&s).retry_after, Some(RETRY_AFTER));
    }
}
