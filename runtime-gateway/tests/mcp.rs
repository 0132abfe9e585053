//! MCP at /mcp through the real binary: the official MCP client (`mcp` 2.x, Python) in both
//! protocol generations (2025-11-25 sessions, 2026-07-28 stateless) lists and calls the demo
//! agent's skills as tools, with progress; every call is a run whose receipt verifies. Origin
//! validation and authentication refuse what they must.

mod common;

use std::path::Path;
use std::process::Command;

use common::{assert_run, gateway};
use ledger_core::RunStatus;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread")]
async fn the_official_mcp_client_in_both_protocol_generations() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&dir.path().join("data"), &[]);
    let python = std::env::var("A2A_LEDGER_PYTHON").expect("A2A_LEDGER_PYTHON: run the suite through ./scripts/test");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/python/mcp_client.py");
    for mode in ["legacy", "2026-07-28"] {
        let out = tokio::task::spawn_blocking({
            let (python, script, url, token) =
                (python.clone(), script.clone(), format!("{}/mcp", gw.base), gw.token.clone());
            move || Command::new(python).arg(script).arg(url).arg(token).arg(mode).output().unwrap()
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{mode}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        let summary: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
        let runs = summary["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 3);
        let echo = gw.verified_receipt(runs[0]["id"].as_str().unwrap()).await;
        assert_run(
            &echo,
            RunStatus::Completed,
            &["task.accepted", "task.status", "artifact.added", "task.completed", "receipt.sealed"],
        );
        assert_eq!(echo.entries()[0].1.event.attrs_json()["protocol"], "mcp");
        let slow = gw.verified_receipt(runs[1]["id"].as_str().unwrap()).await;
        assert_eq!(slow.entries().iter().filter(|(_, e)| e.kind().as_str() == "skill.progress").count(), 3);
        assert_eq!(gw.verified_receipt(runs[2]["id"].as_str().unwrap()).await.status, RunStatus::Failed);
    }

    // A browser page of another origin is refused (DNS rebinding); so is a caller without a token.
    let init = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": { "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } } });
    let post = |origin: Option<&str>, token: bool| {
        let mut r = gw
            .http
            .post(format!("{}/mcp", gw.base))
            .header("accept", "application/json, text/event-stream")
            .json(&init);
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        if token {
            r = r.bearer_auth(&gw.token);
        }
        r.send()
    };
    assert_eq!(post(Some("http://evil.example"), true).await.unwrap().status(), 403);
    assert_eq!(post(None, false).await.unwrap().status(), 401);
    assert_eq!(post(Some(&gw.base), true).await.unwrap().status(), 200, "the gateway's own origin is fine");
}
