//! The top layer: what callers and agents reach over HTTP. Each module is one resource with its
//! own `router()`; [`router::app`] merges them and adds authentication, the request timeout and
//! the load limits. Surfaces import the engine, the ledger seam and the base, never the other way.
//!
//! - [`router`] — `app(gateway) -> Router`, the middleware, the `ServiceBuilder` limits;
//! - [`state`] — [`state::Gateway`], what every handler shares;
//! - [`error`] — [`error::GatewayError`], every error answered, with its one `IntoResponse`;
//! - [`platform`] — the platform REST (`POST /tasks`, `GET /tasks/{id}`, `GET /sse/{task}`);
//! - [`invoke`] — `POST /invoke/{skill}`;
//! - [`receipts`] — `GET /runs/{id}/receipt`;
//! - [`runs`] — `GET /v1/runs`, the run search;
//! - [`ledger_log`] — the embedded ledger's checkpoint, consistency proofs, entries and packs;
//! - [`a2a`] — A2A 1.0: [`a2a::card`], [`a2a::jsonrpc`], [`a2a::rest`] (HTTP+JSON);
//! - [`mcp`] — MCP at `/mcp`;
//! - [`ops`] — `/healthz`, `/metrics`;
//! - [`workspace`], [`scope`] — the agent's workspace files and scope requests (grant-authorised);
//! - [`approvals`], [`reviews`] — the approvers' inbox; evals and reviews of ended runs.

pub mod a2a;
pub mod approvals;
pub mod browser;
pub mod error;
pub mod invoke;
pub mod ledger_log;
pub mod mcp;
pub mod ops;
pub mod payloads;
pub mod platform;
pub mod receipts;
pub mod reviews;
pub mod router;
pub mod runs;
pub mod scope;
pub mod state;
pub mod workspace;
