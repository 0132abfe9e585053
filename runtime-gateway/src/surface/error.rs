//! [`GatewayError`]: every error a caller surface answers with, and its one [`IntoResponse`].
//!
//! Platform errors are `{"error": {"code", "message"}}` with a stable `code`; an unauthenticated
//! request is AIP-193's `{"error": {"code": 401, "status": "UNAUTHENTICATED", "message"}}` with
//! `WWW-Authenticate: Bearer`. The A2A bindings render the same type their own way, as functions
//! of it: [`GatewayError::jsonrpc`] (JSON-RPC error object, `data` = ErrorInfo) and
//! [`GatewayError::aip193`] (the HTTP+JSON binding's AIP-193 body, with `details`).

use std::time::Duration;

use a2a::error_code as code;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::engine::push::PushError;
use crate::engine::tasks::TaskError;
use crate::ledger::ReceiptError;

/// An error answered to a caller (or to an agent, on its workspace).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// 400: the request is malformed or a parameter is out of range; `code` says which
    /// (`bad_json`, `missing_skill`, `bad_run_id`, …).
    #[error("{message}")]
    BadRequest {
        /// The stable error code.
        code: &'static str,
        /// What to fix.
        message: String,
    },
    /// 401: no valid credentials; answered with `WWW-Authenticate: Bearer`.
    #[error("{0}")]
    Unauthenticated(String),
    /// 401 `no_grant`: an agent called its workspace without presenting its grant (no
    /// `WWW-Authenticate`: the agent side takes no caller token).
    #[error("{0}")]
    NoGrant(String),
    /// 403: known, but not allowed (not an approver; a grant that does not cover the path).
    #[error("{message}")]
    Forbidden {
        /// The stable error code.
        code: &'static str,
        /// Why.
        message: String,
    },
    /// 404: no such skill, run, file or request (or not the caller's).
    #[error("{message}")]
    NotFound {
        /// The stable error code.
        code: &'static str,
        /// What was looked for.
        message: String,
    },
    /// 409: the run or request is in a state that does not allow this (ended, not ended,
    /// unsealed, already decided).
    #[error("{message}")]
    Conflict {
        /// The stable error code.
        code: &'static str,
        /// The state, and what to do.
        message: String,
    },
    /// 413: the body is larger than the gateway takes.
    #[error("{message}")]
    TooLarge {
        /// The stable error code.
        code: &'static str,
        /// The limit.
        message: String,
    },
    /// 500 `internal`: a local failure the caller cannot fix (an I/O error of the workspace).
    #[error("{0}")]
    Internal(String),
    /// 503: the ledger could not record or answer, so nothing was done; `code` is
    /// `recording_unavailable` or `ledger_unavailable`.
    #[error("{message}")]
    Unavailable {
        /// The stable error code.
        code: &'static str,
        /// What could not be done, and why.
        message: String,
    },
    /// 503 `overloaded` with `Retry-After`: as many requests are in flight as the gateway takes
    /// (gateway.toml `[server] concurrency_limit`); nothing was done.
    #[error("the gateway is handling as many requests as it takes; retry in {retry_after} s")]
    Overloaded {
        /// Seconds to wait, as `Retry-After` says.
        retry_after: u64,
    },
    /// 504 `timed_out`: a unary request had no answer within `[server] request_timeout_secs`. A
    /// run it started goes on, and is recorded and sealed as usual.
    #[error("no answer within {} s (gateway.toml [server] request_timeout_secs); a run it started goes on and is recorded", .0.as_secs_f64())]
    TimedOut(Duration),
    /// A task operation failed (the engine's error).
    #[error(transparent)]
    Task(#[from] TaskError),
    /// A receipt could not be served (the ledger seam's error).
    #[error(transparent)]
    Receipt(#[from] ReceiptError),
    /// A push-notification config operation failed (A2A only).
    #[error(transparent)]
    Push(#[from] PushError),
    /// An A2A protocol error with a code of the spec's table (A2A -32001..-32099, JSON-RPC's
    /// -32700..-32600).
    #[error("{message}")]
    A2a {
        /// The JSON-RPC error code.
        code: i32,
        /// What was wrong.
        message: String,
    },
}

/// What push being off is answered with, on both A2A bindings.
pub const PUSH_UNSUPPORTED: &str =
    "push notifications are switched off on this gateway (capabilities.pushNotifications is false)";

impl GatewayError {
    /// An A2A error with the spec's `code`.
    pub fn a2a(code: i32, message: impl Into<String>) -> GatewayError {
        GatewayError::A2a { code, message: message.into() }
    }

    /// A2A `InvalidParams`.
    pub fn invalid_params(message: impl Into<String>) -> GatewayError {
        GatewayError::a2a(code::INVALID_PARAMS, message)
    }

    /// 400 with `code`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> GatewayError {
        GatewayError::BadRequest { code, message: message.into() }
    }

    /// 403 with `code`.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> GatewayError {
        GatewayError::Forbidden { code, message: message.into() }
    }

    /// 404 with `code`.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> GatewayError {
        GatewayError::NotFound { code, message: message.into() }
    }

    /// 409 with `code`.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> GatewayError {
        GatewayError::Conflict { code, message: message.into() }
    }

    /// 503 with `code`.
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> GatewayError {
        GatewayError::Unavailable { code, message: message.into() }
    }

    /// The platform's status and stable code.
    fn platform(&self) -> (StatusCode, &'static str) {
        use GatewayError as G;
        match self {
            G::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            G::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            G::NoGrant(_) => (StatusCode::UNAUTHORIZED, "no_grant"),
            G::Forbidden { code, .. } => (StatusCode::FORBIDDEN, code),
            G::NotFound { code, .. } => (StatusCode::NOT_FOUND, code),
            G::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            G::TooLarge { code, .. } => (StatusCode::PAYLOAD_TOO_LARGE, code),
            G::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            G::Unavailable { code, .. } => (StatusCode::SERVICE_UNAVAILABLE, code),
            G::Overloaded { .. } => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            G::TimedOut(_) => (StatusCode::GATEWAY_TIMEOUT, "timed_out"),
            G::Task(e) => match e {
                TaskError::NotFound(_) => (StatusCode::NOT_FOUND, "task_not_found"),
                TaskError::RecordingUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "recording_unavailable"),
                TaskError::LedgerUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "ledger_unavailable"),
                TaskError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
                TaskError::InvalidInput(_) => (StatusCode::BAD_REQUEST, "invalid_input"),
                _ => (StatusCode::BAD_REQUEST, "bad_request"),
            },
            G::Receipt(e) => match e {
                ReceiptError::UnknownRun(_) => (StatusCode::NOT_FOUND, "unknown_run"),
                ReceiptError::Unsealed(_) => (StatusCode::CONFLICT, "run_unsealed"),
                ReceiptError::NotYetCheckpointed(_) => (StatusCode::CONFLICT, "not_yet_checkpointed"),
                _ => (StatusCode::SERVICE_UNAVAILABLE, "ledger_unavailable"),
            },
            G::Push(_) | G::A2a { .. } => (self.a2a_status().0, "a2a_error"),
        }
    }

    /// The A2A code and message, and the HTTP status when it is not the one the code implies
    /// (401 and 503 are outside the spec's table).
    fn a2a_parts(&self) -> (i32, String, Option<StatusCode>) {
        use GatewayError as G;
        match self {
            G::A2a { code, message } => (*code, message.clone(), None),
            G::Task(e) => {
                let c = match e {
                    TaskError::NotFound(_) => code::TASK_NOT_FOUND,
                    TaskError::NotCancelable(..) => code::TASK_NOT_CANCELABLE,
                    TaskError::Unsupported(_) => code::UNSUPPORTED_OPERATION,
                    TaskError::InvalidParams(_) | TaskError::InvalidInput(_) | TaskError::TooLarge(_) => {
                        code::INVALID_PARAMS
                    }
                    TaskError::RecordingUnavailable(_) | TaskError::LedgerUnavailable(_) => code::INTERNAL_ERROR,
                };
                let http = matches!(e, TaskError::RecordingUnavailable(_) | TaskError::LedgerUnavailable(_))
                    .then_some(StatusCode::SERVICE_UNAVAILABLE);
                (c, e.to_string(), http)
            }
            G::Push(e) => match e {
                PushError::Disabled => (code::PUSH_NOTIFICATION_NOT_SUPPORTED, PUSH_UNSUPPORTED.into(), None),
                PushError::Invalid(m) => (code::INVALID_PARAMS, m.clone(), None),
                e @ PushError::NotFound { .. } => (code::TASK_NOT_FOUND, e.to_string(), None),
                e @ PushError::Storage(_) => {
                    (code::INTERNAL_ERROR, e.to_string(), Some(StatusCode::SERVICE_UNAVAILABLE))
                }
            },
            G::Unauthenticated(m) => (code::INVALID_REQUEST, m.clone(), Some(StatusCode::UNAUTHORIZED)),
            G::BadRequest { message, .. } => (code::INVALID_PARAMS, message.clone(), None),
            G::NotFound { message, .. } => (code::TASK_NOT_FOUND, message.clone(), None),
            other => (code::INTERNAL_ERROR, other.to_string(), Some(other.platform().0)),
        }
    }

    /// HTTP status and gRPC-style status name for the HTTP+JSON binding.
    fn a2a_status(&self) -> (StatusCode, &'static str) {
        let (c, _, http) = self.a2a_parts();
        let s = match c {
            code::TASK_NOT_FOUND | code::METHOD_NOT_FOUND => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            code::CONTENT_TYPE_NOT_SUPPORTED => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "INVALID_ARGUMENT"),
            code::PARSE_ERROR | code::INVALID_REQUEST | code::INVALID_PARAMS => {
                (StatusCode::BAD_REQUEST, "INVALID_ARGUMENT")
            }
            code::INVALID_AGENT_RESPONSE => (StatusCode::BAD_GATEWAY, "INTERNAL"),
            code::INTERNAL_ERROR => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL"),
            _ => (StatusCode::BAD_REQUEST, "FAILED_PRECONDITION"),
        };
        match http {
            Some(StatusCode::UNAUTHORIZED) => (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
            Some(StatusCode::SERVICE_UNAVAILABLE) => (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
            Some(other) => (other, s.1),
            None => s,
        }
    }

    fn error_info(code: i32) -> Value {
        json!({
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": a2a::error_reason(code),
            "domain": "a2a-protocol.org",
            "metadata": { "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true) },
        })
    }

    /// The A2A JSON-RPC error object (`code`, `message`, `data` = `[ErrorInfo]`), and the HTTP
    /// status to answer with when it is not 200 (401, 503).
    pub fn jsonrpc(&self) -> (Value, Option<StatusCode>) {
        let (c, message, http) = self.a2a_parts();
        (json!({ "code": c, "message": message, "data": [GatewayError::error_info(c)] }), http)
    }

    /// The A2A gRPC binding's error: the status code of A2A §5.4 (the gRPC name the HTTP+JSON
    /// binding also reports), the message, and an `ErrorInfo` (reason, domain) in the details.
    pub fn grpc(&self) -> tonic::Status {
        use tonic::Code;
        use tonic_types::{ErrorDetails, StatusExt as _};
        let (c, message, _) = self.a2a_parts();
        let code = match self.a2a_status().1 {
            "NOT_FOUND" => Code::NotFound,
            "INVALID_ARGUMENT" => Code::InvalidArgument,
            "INTERNAL" => Code::Internal,
            "UNAUTHENTICATED" => Code::Unauthenticated,
            "UNAVAILABLE" => Code::Unavailable,
            _ => Code::FailedPrecondition,
        };
        let timestamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let details = ErrorDetails::with_error_info(
            a2a::error_reason(c),
            "a2a-protocol.org",
            std::collections::HashMap::from([("timestamp".to_string(), timestamp)]),
        );
        tonic::Status::with_error_details(code, message, details)
    }

    /// The A2A HTTP+JSON binding's error response (AIP-193).
    pub fn aip193(&self) -> Response {
        let (c, message, _) = self.a2a_parts();
        let (status, name) = self.a2a_status();
        let body = json!({ "error": {
            "code": status.as_u16(),
            "status": name,
            "message": message,
            "details": [GatewayError::error_info(c)],
        }});
        let mut r = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

impl From<GatewayError> for tonic::Status {
    fn from(e: GatewayError) -> tonic::Status {
        e.grpc()
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        match &self {
            GatewayError::Unauthenticated(m) => {
                let body = json!({ "error": { "code": 401, "status": "UNAUTHENTICATED", "message": m } });
                let mut r = (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
                r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                r
            }
            GatewayError::A2a { .. } | GatewayError::Push(_) => self.aip193(),
            _ => {
                let (status, code) = self.platform();
                let body = json!({ "error": { "code": code, "message": self.to_string() } });
                let mut r = (status, axum::Json(body)).into_response();
                if let GatewayError::Overloaded { retry_after } = self {
                    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
                }
                r
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(r: Response) -> (StatusCode, Value) {
        let status = r.status();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn platform_errors_carry_a_stable_code() {
        let (s, v) = body(GatewayError::not_found("unknown_run", "no run \"x\"").into_response()).await;
        assert_eq!(
            (s, v),
            (StatusCode::NOT_FOUND, json!({ "error": { "code": "unknown_run", "message": "no run \"x\"" } }))
        );
        let e = GatewayError::Task(TaskError::RecordingUnavailable("disk full".into()));
        let (s, v) = body(e.into_response()).await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(v["error"]["code"], "recording_unavailable");
        assert_eq!(v["error"]["message"], "the run could not be recorded, so it was not started: disk full");
        let (s, v) = body(GatewayError::Receipt(ReceiptError::Unsealed("r".into())).into_response()).await;
        assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("run_unsealed")));
    }

    #[tokio::test]
    async fn overload_says_when_to_retry() {
        let r = GatewayError::Overloaded { retry_after: 2 }.into_response();
        assert_eq!(r.headers()[header::RETRY_AFTER], "2");
        let (s, v) = body(r).await;
        assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("overloaded")));
        let (s, v) = body(GatewayError::TimedOut(Duration::from_secs(3)).into_response()).await;
        assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::GATEWAY_TIMEOUT, Some("timed_out")));
    }

    #[tokio::test]
    async fn a2a_renderings() {
        let e = GatewayError::Task(TaskError::RecordingUnavailable("down".into()));
        let (obj, http) = e.jsonrpc();
        assert_eq!(
            (obj["code"].as_i64(), http),
            (Some(code::INTERNAL_ERROR as i64), Some(StatusCode::SERVICE_UNAVAILABLE))
        );
        let (s, v) = body(e.aip193()).await;
        assert_eq!((s, v["error"]["status"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("UNAVAILABLE")));
        assert_eq!(v["error"]["details"][0]["@type"], "type.googleapis.com/google.rpc.ErrorInfo");

        let (obj, http) = GatewayError::Task(TaskError::NotFound("t".into())).jsonrpc();
        assert_eq!((obj["code"].as_i64(), http), (Some(code::TASK_NOT_FOUND as i64), None));
        let (obj, _) = GatewayError::Push(PushError::Disabled).jsonrpc();
        assert_eq!(obj["message"], PUSH_UNSUPPORTED);

        let r = GatewayError::Unauthenticated("unauthenticated".into()).aip193();
        assert_eq!(r.headers()[header::WWW_AUTHENTICATE], "Bearer");
        let (s, v) = body(r).await;
        assert_eq!((s, v["error"]["status"].as_str()), (StatusCode::UNAUTHORIZED, Some("UNAUTHENTICATED")));
    }
}
