//! A `stdio` MCP upstream through the real binary: the gateway starts a local MCP server (the
//! official Python `mcp` package) over stdin/stdout, learns its tools as skills, gives it only
//! the manifest's environment, records its calls like any run, and starts it again when it
//! exits, the exit recorded in the failed run with the server's last stderr lines.

mod common;

use common::gateway;
use serde_json::{Value, json};

async fn call(gw: &common::Gw, skill: &str, input: Value) -> Value {
    let (status, body) = gw.invoke(skill, input).await;
    assert!(status == 200 || status == 502 || status == 500, "{status} {body}");
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stdio_server_is_started_isolated_recorded_and_restarted() {
    let python = std::env::var("A2A_LEDGER_PYTHON")
        .unwrap_or_else(|_| panic!("A2A_LEDGER_PYTHON is not set: run the suite through ./scripts/test"));
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/python/mcp_stdio_upstream.py");
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("agents.toml");
    std::fs::write(
        &manifest,
        format!(
            "[[agent]]\nname = \"local\"\nupstream = {{ kind = \"stdio\", command = [\"{python}\", \"{}\"], env = {{ GREETING = \"hi\" }}, prefix = \"local.\" }}\n",
            script.display()
        ),
    )
    .unwrap();
    let gw = gateway(&dir.path().join("data"), &["--manifest", manifest.to_str().unwrap()]);

    // Its tools became skills; the manifest's variable is there, the gateway's own are not.
    let body = call(&gw, "local.env_value", json!({ "name": "GREETING" })).await;
    assert_eq!(body["status"], "completed", "{body}");
    assert!(body["result"].to_string().contains("hi"), "{body}");
    assert!(std::env::var("HOME").is_ok(), "the test itself has HOME");
    let body = call(&gw, "local.env_value", json!({ "name": "HOME" })).await;
    assert!(body["result"].to_string().contains("<unset>"), "the gateway's environment leaked: {body}");
    gw.verified_receipt(body["run"].as_str().unwrap()).await;
    let first = call(&gw, "local.pid", json!({})).await["result"].to_string();

    // It exits during a call: the run fails, sealed, saying so with the server's stderr.
    let body = call(&gw, "local.crash", json!({})).await;
    assert_eq!(body["status"], "failed", "{body}");
    let error = body["error"].to_string();
    assert!(error.contains("closed during the call") && error.contains("crashing now"), "{error}");
    gw.verified_receipt(body["run"].as_str().unwrap()).await;

    // Started again: the next call is served by a new process.
    let body = call(&gw, "local.pid", json!({})).await;
    assert_eq!(body["status"], "completed", "{body}");
    assert_ne!(body["result"].to_string(), first, "a new process answers");
}
