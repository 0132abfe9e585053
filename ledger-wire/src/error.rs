//! Typed error codes, and how they travel in a gRPC status.
//!
//! A refused call's [`tonic::Status`] carries, in its details (`grpc-status-details-bin`), a
//! `google.rpc.ErrorInfo` with `reason` = the code in upper case (`NOT_YET_CHECKPOINTED`),
//! `domain` = [`DOMAIN`] and, when there is one, `metadata["index"]` = the position in the batch
//! of the entry at fault; an overloaded server adds a `google.rpc.RetryInfo`. The status message
//! stays `"<code>: <message>"` for people and logs; clients decide on the details only.

use std::collections::HashMap;
use std::time::Duration;

use tonic::Code;
use tonic_types::{ErrorDetails, StatusExt as _};

/// `ErrorInfo.domain` of every error the ledger sends.
pub const DOMAIN: &str = "a2a-ledger";

/// The `ErrorInfo.metadata` key of [`Detail::index`].
const INDEX: &str = "index";

macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident = $wire:literal, $http:literal, $grpc:ident; )*) => {
        /// The stable machine code of a refusal: the `code` of an HTTP error body, of an
        /// in-band `AppendResponse.error`, and the `ErrorInfo.reason` (in upper case) of a gRPC
        /// status. New codes may be added; a client treats one it does not know by its gRPC or
        /// HTTP status alone.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )*
        }

        impl ErrorCode {
            /// Every code, in the order of the table in `docs/FORMATS.md` §7.
            pub const ALL: &'static [ErrorCode] = &[ $( ErrorCode::$variant, )* ];

            /// The code as the HTTP API and `AppendResponse.error` spell it, e.g. `seq_gap`.
            pub const fn as_str(self) -> &'static str {
                match self { $( ErrorCode::$variant => $wire, )* }
            }

            /// The HTTP status the server answers with.
            pub const fn http_status(self) -> u16 {
                match self { $( ErrorCode::$variant => $http, )* }
            }

            /// The gRPC status code the server answers with.
            pub const fn grpc_code(self) -> Code {
                match self { $( ErrorCode::$variant => Code::$grpc, )* }
            }
        }

        impl std::str::FromStr for ErrorCode {
            type Err = UnknownCode;

            /// Parses the lower-case code (`seq_gap`).
            fn from_str(s: &str) -> Result<ErrorCode, UnknownCode> {
                match s {
                    $( $wire => Ok(ErrorCode::$variant), )*
                    _ => Err(UnknownCode(s.to_string())),
                }
            }
        }
    };
}

codes! {
    /// No bearer token, or one the server does not know.
    Unauthenticated = "unauthenticated", 401, Unauthenticated;
    /// The token's role may not do this (or read this run).
    Forbidden = "forbidden", 403, PermissionDenied;
    /// An entry's actor is not one of the ingest token's identities.
    ActorNotPermitted = "actor_not_permitted", 403, PermissionDenied;
    /// The log holds no entry of the run.
    UnknownRun = "unknown_run", 404, NotFound;
    /// The newest checkpoint does not cover the tile asked for.
    NoSuchTile = "no_such_tile", 404, NotFound;
    /// The path after `/tile/` is not a tlog-tiles path.
    BadTilePath = "bad_tile_path", 404, NotFound;
    /// No such HTTP endpoint.
    NoSuchEndpoint = "no_such_endpoint", 404, NotFound;
    /// An entry's seq is past the run's next one ([`Detail::index`] names the entry).
    SeqGap = "seq_gap", 409, FailedPrecondition;
    /// An entry repeats a run's seq with other bytes ([`Detail::index`] names the entry).
    Conflict = "conflict", 409, FailedPrecondition;
    /// The run has no seal yet: there is no receipt to give.
    RunUnsealed = "run_unsealed", 409, FailedPrecondition;
    /// The run's latest seal is durable but not yet under a signed checkpoint; ask again, or
    /// wait for it (`wait`).
    NotYetCheckpointed = "not_yet_checkpointed", 409, FailedPrecondition;
    /// The seal's actor has no identity registered before the seal.
    UnknownSigner = "unknown_signer", 409, FailedPrecondition;
    /// The request body is over the server's limit.
    BodyTooLarge = "body_too_large", 413, ResourceExhausted;
    /// The request body's media type is not one the endpoint takes.
    UnsupportedMediaType = "unsupported_media_type", 415, InvalidArgument;
    /// An entry is not a valid SPEC §2 entry ([`Detail::index`] names it).
    InvalidEntry = "invalid_entry", 400, InvalidArgument;
    /// An entry is over the size limit for entries ([`Detail::index`] names it).
    EntryTooLarge = "entry_too_large", 400, InvalidArgument;
    /// An entry of 65536 bytes cannot be framed in a tlog-tiles entry bundle.
    EntryTooLargeForBundle = "entry_too_large_for_bundle", 422, InvalidArgument;
    /// The body does not have the shape the endpoint takes.
    MalformedBody = "malformed_body", 400, InvalidArgument;
    /// The body could not be read.
    BodyUnreadable = "body_unreadable", 400, InvalidArgument;
    /// A batch with no entries.
    EmptyBatch = "empty_batch", 400, InvalidArgument;
    /// A query parameter is missing or malformed.
    BadQuery = "bad_query", 400, InvalidArgument;
    /// The run id is not a valid run id.
    BadRunId = "bad_run_id", 400, InvalidArgument;
    /// An index, size or range is not within the log (or the checkpoint asked about).
    OutOfRange = "out_of_range", 400, OutOfRange;
    /// A storage failure stopped the log; it takes no writes until it is reopened.
    LogPoisoned = "log_poisoned", 503, Unavailable;
    /// The server is stopping; send what was not acknowledged to the next one.
    ShuttingDown = "shutting_down", 503, Unavailable;
    /// The server is at its limit of requests in progress; retry after [`Detail::retry_after`].
    Overloaded = "overloaded", 503, Unavailable;
    /// The server did not start an answer within its request timeout; retry after
    /// [`Detail::retry_after`].
    Timeout = "timeout", 503, DeadlineExceeded;
    /// A failure the caller cannot fix; the message says what failed.
    Internal = "internal", 500, Internal;
    /// A payload over the server's size limit for one payload.
    PayloadTooLarge = "payload_too_large", 413, ResourceExhausted;
    /// A payload that would take the payload store over its total quota.
    PayloadQuota = "payload_quota", 507, ResourceExhausted;
    /// Payload bytes whose BLAKE3 is not the hash they were sent under.
    PayloadMismatch = "payload_mismatch", 400, InvalidArgument;
    /// The payload was erased; [`Detail::index`] is the log index of its `payload.erased` entry.
    PayloadErased = "payload_erased", 410, NotFound;
    /// No payload is stored under the hash.
    PayloadMissing = "payload_missing", 404, NotFound;
    /// The server follows a log on the bus and takes no writes: gateways publish on the bus.
    ReadOnly = "read_only", 409, FailedPrecondition;
    /// The server has not applied the bus stream as far as the request needs
    /// (`a2a-ledger-min-position`); ask another server, or again.
    NotCaughtUp = "not_caught_up", 503, Unavailable;
}

/// A code this version of the crate does not know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownCode(pub String);

impl std::fmt::Display for UnknownCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown error code {:?}", self.0)
    }
}

impl std::error::Error for UnknownCode {}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Compares with the lower-case spelling, so `e.code == "seq_gap"` reads as it did when codes
/// were strings.
impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl ErrorCode {
    /// The `ErrorInfo.reason` of the code: its upper-case spelling (`SEQ_GAP`), as
    /// `google.rpc.ErrorInfo` asks.
    pub fn reason(self) -> String {
        self.as_str().to_ascii_uppercase()
    }

    /// The code a status carries in its details, if it carries one of [`DOMAIN`] that this
    /// version knows. A status from elsewhere (a proxy, the transport, an older server), or
    /// with details that do not decode, gives `None`.
    pub fn of(status: &tonic::Status) -> Option<ErrorCode> {
        let info = status.get_details_error_info()?;
        if info.domain != DOMAIN || !info.reason.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
            return None;
        }
        info.reason.to_ascii_lowercase().parse().ok()
    }
}

/// What a refusal carries besides its code and message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Detail {
    /// The position in the request's batch of the entry at fault.
    pub index: Option<u64>,
    /// How long to wait before trying again (an overloaded or timed-out server).
    pub retry_after: Option<Duration>,
}

impl Detail {
    /// The detail a status carries; empty when it carries none (or none of [`DOMAIN`]).
    pub fn of(status: &tonic::Status) -> Detail {
        let details = status.get_error_details();
        let index = details
            .error_info()
            .filter(|i| i.domain == DOMAIN)
            .and_then(|i| i.metadata.get(INDEX))
            .and_then(|v| v.parse().ok());
        let retry_after = details.retry_info().and_then(|r| r.retry_delay);
        Detail { index, retry_after }
    }
}

/// The gRPC status of a refusal: the code's gRPC status code, the message
/// `"<code>: <message>"`, and the details (`ErrorInfo`, and `RetryInfo` when
/// [`Detail::retry_after`] is set).
pub fn to_status(code: ErrorCode, message: impl AsRef<str>, detail: Detail) -> tonic::Status {
    let mut metadata = HashMap::new();
    if let Some(i) = detail.index {
        metadata.insert(INDEX.to_string(), i.to_string());
    }
    let mut details = ErrorDetails::with_error_info(code.reason(), DOMAIN, metadata);
    if let Some(after) = detail.retry_after {
        details.set_retry_info(Some(after));
    }
    tonic::Status::with_error_details(code.grpc_code(), format!("{code}: {}", message.as_ref()), details)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Through a status and back, and through the encoded details as a client receives them
    /// (the `grpc-status-details-bin` header of a real response).
    #[test]
    fn every_code_round_trips() {
        for (n, &code) in ErrorCode::ALL.iter().enumerate() {
            let detail = Detail { index: Some(n as u64 * 1000), retry_after: Some(Duration::from_millis(n as u64)) };
            let status = to_status(code, "what happened", detail.clone());
            assert_eq!(status.code(), code.grpc_code(), "{code}");
            assert_eq!(status.message(), format!("{}: what happened", code.as_str()));
            assert_eq!(ErrorCode::of(&status), Some(code));
            assert_eq!(Detail::of(&status), detail, "{code}");

            // Encoded as a server sends it, decoded as a client reads it.
            let response = status.into_http::<tonic::body::Body>();
            let received = tonic::Status::from_header_map(response.headers()).expect("a status in the headers");
            assert_eq!(received.code(), code.grpc_code());
            assert_eq!(ErrorCode::of(&received), Some(code), "{code} after encoding");
            assert_eq!(Detail::of(&received), detail, "{code} after encoding");

            // The lower-case spelling parses back, and the HTTP status is the server's.
            assert_eq!(code.as_str().parse::<ErrorCode>(), Ok(code));
            assert!((400..600).contains(&code.http_status()), "{code}");
        }
    }

    #[test]
    fn codes_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "{code} twice");
        }
    }

    #[test]
    fn no_detail_is_no_detail() {
        let status = to_status(ErrorCode::Internal, "x", Detail::default());
        assert_eq!(Detail::of(&status), Detail::default());
        assert_eq!(ErrorCode::of(&status), Some(ErrorCode::Internal));
    }

    #[test]
    fn unknown_or_foreign_reasons_are_none() {
        let with = |reason: &str, domain: &str| {
            tonic::Status::with_error_details(
                Code::Unavailable,
                "x",
                ErrorDetails::with_error_info(reason, domain, HashMap::new()),
            )
        };
        assert_eq!(ErrorCode::of(&with("SOMETHING_NEW", DOMAIN)), None);
        assert_eq!(ErrorCode::of(&with("", DOMAIN)), None);
        assert_eq!(ErrorCode::of(&with("seq_gap", DOMAIN)), None, "the reason is upper case");
        assert_eq!(ErrorCode::of(&with("SEQ_GAP", "example.com")), None, "another domain's reason");
        assert_eq!(ErrorCode::of(&with("SEQ_GAP", DOMAIN)), Some(ErrorCode::SeqGap));
        // No details at all, and details that are not a google.rpc.Status.
        assert_eq!(ErrorCode::of(&tonic::Status::unavailable("seq_gap: a message alone")), None);
        let garbage =
            tonic::Status::with_details(Code::Unavailable, "x", bytes::Bytes::from_static(b"\xff\x00garbage"));
        assert_eq!(ErrorCode::of(&garbage), None);
        assert_eq!(Detail::of(&garbage), Detail::default());
        assert_eq!("no_such_code".parse::<ErrorCode>(), Err(UnknownCode("no_such_code".into())));
    }

    #[test]
    fn in_band_errors_carry_the_same_codes() {
        let e = crate::Error::new(ErrorCode::SeqGap, "m", Some(3));
        assert_eq!(e.code, "seq_gap");
        assert_eq!(e.error_code(), Some(ErrorCode::SeqGap));
        assert_eq!(
            crate::Error { code: "new_in_a_later_server".into(), message: String::new(), index: None }.error_code(),
            None
        );
        assert!(ErrorCode::NotYetCheckpointed == "not_yet_checkpointed");
    }
}
