//! `ledger-wire`: the one wire contract between gateways and the ledger.
//!
//! The `ledger.v1` gRPC service (`proto/ledger/v1/ledger.proto`) compiled once, here, for every
//! side that speaks it: `ledger-server` serves it, `runtime-gateway` appends through it, and the
//! workspace benches drive it. Alongside the generated messages, client and server, the crate
//! holds the typed error codes a refusal carries ([`ErrorCode`]): the server puts them in the
//! gRPC status details as a `google.rpc.ErrorInfo` ([`to_status`]) and a client reads them back
//! ([`ErrorCode::of`], [`Detail::of`]) instead of matching the message text.
//!
//! `AppendRequest.entries` are `bytes::Bytes`: on the server, slices of the received message; in
//! a client, references that a resend clones without copying the entries.
//!
//! # Example
//!
//! A refusal as the server sends it, and what the client makes of it:
//!
//! ```
//! use ledger_wire::{Detail, ErrorCode, to_status};
//!
//! let status = to_status(
//!     ErrorCode::SeqGap,
//!     "entry 2 of the batch: run r expects seq 4, got 6; nothing of the batch was appended",
//!     Detail { index: Some(2), ..Detail::default() },
//! );
//! assert_eq!(status.code(), tonic::Code::FailedPrecondition);
//! assert!(status.message().starts_with("seq_gap: "));
//!
//! // The client side: the code and the entry at fault, from the status details.
//! assert_eq!(ErrorCode::of(&status), Some(ErrorCode::SeqGap));
//! assert_eq!(Detail::of(&status).index, Some(2));
//! ```
//!
//! A client of the service (the gateway's, in short):
//!
//! ```no_run
//! # async fn append() -> Result<(), Box<dyn std::error::Error>> {
//! use ledger_wire::ledger_client::LedgerClient;
//! use ledger_wire::{AppendRequest, ErrorCode};
//!
//! let mut client = LedgerClient::connect("http://127.0.0.1:7701").await?;
//! let batches = tokio_stream::iter([AppendRequest::of(0, [b"canonical CBOR entry".to_vec()])]);
//! match client.append(batches).await {
//!     Ok(acks) => println!("{:?}", acks.into_inner().message().await?),
//!     Err(s) if ErrorCode::of(&s) == Some(ErrorCode::Unauthenticated) => eprintln!("no token"),
//!     Err(s) => return Err(s.into()),
//! }
//! # Ok(()) }
//! ```

mod error;

pub use error::{DOMAIN, Detail, ErrorCode, UnknownCode, to_status};

/// The generated `ledger.v1` messages, client (`ledger_client`) and server (`ledger_server`).
#[allow(missing_docs, missing_debug_implementations, clippy::all, clippy::pedantic)]
mod generated {
    tonic::include_proto!("ledger.v1");
}

pub use generated::*;

impl AppendRequest {
    /// Batch `batch` of `entries`, however the caller holds them (`Vec<u8>` and `Bytes`
    /// convert without a copy).
    pub fn of(batch: u64, entries: impl IntoIterator<Item = impl Into<bytes::Bytes>>) -> Self {
        AppendRequest { batch, entries: entries.into_iter().map(Into::into).collect() }
    }
}

impl Error {
    /// The in-band refusal of a batch (`AppendResponse.error`), from the code and detail a
    /// [`tonic::Status`] would carry.
    pub fn new(code: ErrorCode, message: impl Into<String>, index: Option<u64>) -> Self {
        Error { code: code.as_str().to_string(), message: message.into(), index }
    }

    /// The typed code of an in-band refusal; `None` for a code this version does not know.
    pub fn error_code(&self) -> Option<ErrorCode> {
        self.code.parse().ok()
    }
}
