//! A2A extensions (A2A 1.0 §4.6, "Extension Activation"): the ones this gateway supports, which
//! the client activated with `A2A-Extensions`, the refusal when a required one was not
//! activated (`ExtensionSupportRequiredError`, -32008), and the activated ones echoed in the
//! response's `A2A-Extensions`.
//!
//! One extension is ours, [`RECEIPT`]: when a client activates it, a task that has ended comes
//! back (SendMessage, GetTask, and the final event of a stream) with the run's receipt (SPEC §5)
//! inline in its metadata under the extension's URI, so the client holds offline-verifiable
//! evidence of what the gateway recorded without a second request. The placement follows the
//! A2A project's signed-receipts proposal (a2aproject/A2A#2152: a receipt attached to the
//! completed task's metadata, verifiable offline, Ed25519); the object is our receipt, which
//! proves inclusion in the log rather than an issuer's claims.

use std::time::Duration;

use a2a::error_code as code;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::Value;

use crate::engine::tasks::Engine;
use crate::surface::error::GatewayError;
use crate::surface::state::Gateway;

/// The receipt extension's URI (versioned, as A2A asks).
pub const RECEIPT: &str = "urn:a2a-ledger:extension:receipt:v1";

/// Every extension this gateway supports.
pub const SUPPORTED: &[&str] = &[RECEIPT];

/// The request header (and response header) naming extensions.
pub const HEADER: &str = "a2a-extensions";

/// How long a request that activated [`RECEIPT`] waits for the receipt of a task that has just
/// ended (its seal must be under a checkpoint, signed every 100 ms by default).
const RECEIPT_WAIT: Duration = Duration::from_secs(5);

/// The extension URIs a request names in its `A2A-Extensions` headers (comma-separated, any
/// number of headers), in order, each once.
pub fn requested(headers: &HeaderMap) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in headers.get_all(HEADER).iter().filter_map(|v| v.to_str().ok()) {
        for uri in v.split(',').map(str::trim).filter(|u| !u.is_empty()) {
            if !out.iter().any(|u| u == uri) {
                out.push(uri.to_string());
            }
        }
    }
    out
}

/// Of the extension URIs a request names, those this gateway supports.
fn supported(asked: Vec<String>) -> Vec<String> {
    asked.into_iter().filter(|u| SUPPORTED.contains(&u.as_str())).collect()
}

/// The extensions active for a request: those it names that this gateway supports.
#[derive(Clone, Debug, Default)]
pub struct Active(Vec<String>);

impl Active {
    /// Whether `uri` is active.
    pub fn has(&self, uri: &str) -> bool {
        self.0.iter().any(|u| u == uri)
    }
}

/// The active extensions of a request, or `ExtensionSupportRequiredError` naming the first
/// extension the gateway requires (gateway.toml `[a2a] required_extensions`) that the request
/// does not activate.
pub fn activate(gw: &Gateway, headers: &HeaderMap) -> Result<Active, GatewayError> {
    let asked = requested(headers);
    if let Some(missing) = gw.required_extensions.iter().find(|r| !asked.contains(r)) {
        return Err(GatewayError::a2a(
            code::EXTENSION_SUPPORT_REQUIRED,
            format!("this agent requires the extension {missing}: name it in the A2A-Extensions header"),
        ));
    }
    Ok(Active(supported(asked)))
}

/// Response middleware of the A2A bindings: echoes the extensions the request activated in the
/// response's `A2A-Extensions` (those it named that this gateway supports).
pub async fn echo(req: Request, next: Next) -> Response {
    let active: Vec<String> =
        requested(req.headers()).into_iter().filter(|u| SUPPORTED.contains(&u.as_str())).collect();
    let mut r = next.run(req).await;
    if !active.is_empty()
        && let Ok(v) = HeaderValue::from_str(&active.join(", "))
    {
        r.headers_mut().insert(HEADER, v);
    }
    r
}

/// With [`RECEIPT`] active and `task` (an A2A Task as JSON) ended: the run's receipt added to
/// its metadata under the extension's URI. A receipt not ready within the wait (no checkpoint
/// covers the seal yet, say while witnesses are away) is left out; the task keeps its
/// `receipt` link.
pub async fn with_receipt(engine: &Engine, active: &Active, mut task: Value) -> Value {
    if !active.has(RECEIPT) {
        return task;
    }
    let ended =
        serde_json::from_value::<a2a::TaskState>(task["status"]["state"].clone()).is_ok_and(|s| s.is_terminal());
    let Some(id) = task["id"].as_str().filter(|_| ended).map(str::to_string) else {
        return task;
    };
    if let Ok(receipt) = engine.sink().receipt(&id, RECEIPT_WAIT).await
        && let Ok(receipt) = serde_json::from_str::<Value>(&receipt)
    {
        if !task["metadata"].is_object() {
            task["metadata"] = Value::Object(Default::default());
        }
        task["metadata"][RECEIPT] = receipt;
    }
    task
}
