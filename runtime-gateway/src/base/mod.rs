//! The bottom layer: configuration and what every layer above may use. It imports nothing of
//! the crate's other layers.
//!
//! - [`config`] — `gateway.toml`, read or written at the first start;
//! - [`auth`] — callers and how they authenticate (API keys, JWTs);
//! - [`jcs`] — RFC 8785 canonical JSON (artifact digests, the Agent Card's signature);
//! - [`telemetry`] — OpenTelemetry spans of a run;
//! - [`metrics`] — the counters' building blocks (the registry is the ops surface's);
//! - [`fs`] — atomic file writes.

pub mod auth;
pub mod config;
pub mod fs;
pub mod jcs;
pub mod metrics;
pub mod telemetry;

use std::future::Future;
use std::pin::Pin;
use std::time::{SystemTime, UNIX_EPOCH};

/// A boxed future, so traits with async methods stay object safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Unix nanoseconds now.
pub fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}
