//! The one error shape of the API: `{"error": {"code", "message", "index"?}}` over HTTP, and the
//! same code, message and index in gRPC.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ledger_core::Error;

/// An API error: an HTTP status, a stable machine code and a message for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code, e.g. `seq_gap`.
    pub code: &'static str,
    /// What was wrong and what to do.
    pub message: String,
    /// Position in the request's batch of the entry at fault.
    pub index: Option<u64>,
}

impl ApiError {
    /// An error with no index.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), index: None }
    }

    /// 400 for a malformed request.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 401.
    pub fn unauthenticated(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 500 for what the caller cannot fix; the message still says what failed.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        let mut e = serde_json::json!({"code": self.code, "message": self.message});
        if let Some(i) = self.index {
            e["index"] = i.into();
        }
        serde_json::json!({ "error": e })
    }

    /// The gRPC status of the same error (its code and index go into the message and details).
    pub fn to_status(&self) -> tonic::Status {
        use tonic::Code;
        let code = match self.status {
            StatusCode::UNAUTHORIZED => Code::Unauthenticated,
            StatusCode::FORBIDDEN => Code::PermissionDenied,
            StatusCode::NOT_FOUND => Code::NotFound,
            StatusCode::CONFLICT => Code::FailedPrecondition,
            StatusCode::SERVICE_UNAVAILABLE => Code::Unavailable,
            StatusCode::PAYLOAD_TOO_LARGE => Code::ResourceExhausted,
            s if s.is_client_error() => Code::InvalidArgument,
            _ => Code::Internal,
        };
        tonic::Status::new(code, format!("{}: {}", self.code, self.message))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        match &e {
            Error::InBatch { position, source } => {
                let (status, code) = classify(source);
                ApiError {
                    status,
                    code,
                    message: format!("entry {position} of the batch: {source}; nothing of the batch was appended"),
                    index: Some(*position as u64),
                }
            }
            _ => {
                let (status, code) = classify(&e);
                ApiError { status, code, message: e.to_string(), index: None }
            }
        }
    }
}

/// The status and code of a core error.
fn classify(e: &Error) -> (StatusCode, &'static str) {
    match e {
        Error::EntryTooLarge { .. } => (StatusCode::BAD_REQUEST, "entry_too_large"),
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
        | Error::BadPublicKey(_) => (StatusCode::BAD_REQUEST, "invalid_entry"),
        Error::SeqGap { .. } => (StatusCode::CONFLICT, "seq_gap"),
        Error::Conflict { .. } => (StatusCode::CONFLICT, "conflict"),
        Error::NotPermitted(_) => (StatusCode::FORBIDDEN, "actor_not_permitted"),
        Error::UnknownRun(_) => (StatusCode::NOT_FOUND, "unknown_run"),
        Error::Unsealed(_) => (StatusCode::CONFLICT, "run_unsealed"),
        Error::NotYetCheckpointed { .. } => (StatusCode::CONFLICT, "not_yet_checkpointed"),
        Error::UnknownSigner { .. } => (StatusCode::CONFLICT, "unknown_signer"),
        Error::OutOfRange { .. } => (StatusCode::BAD_REQUEST, "out_of_range"),
        Error::Poisoned(_) => (StatusCode::SERVICE_UNAVAILABLE, "log_poisoned"),
        Error::Closed => (StatusCode::SERVICE_UNAVAILABLE, "shutting_down"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    }
}
