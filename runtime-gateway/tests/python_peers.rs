//! The gateway against real peers written in Python: the official A2A client (`a2a-sdk` 1.3) on
//! both bindings, an upstream A2A agent written with `a2a-sdk`, an upstream MCP server written with
//! `mcp`'s MCPServer (ex-FastMCP), and a plain webhook agent. Every
//! run's receipt is verified by the independent Python verifier (inside the client script) and
//! again here by ledger-core. Needs the test venv of ./scripts/test (`A2A_LEDGER_PYTHON`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Proc, assert_run, gateway, gateway_with, kinds, verify};
use ledger_core::RunStatus;
use serde_json::{Value, json};

fn python() -> String {
    std::env::var("A2A_LEDGER_PYTHON")
        .unwrap_or_else(|_| panic!("A2A_LEDGER_PYTHON is not set: run the suite through ./scripts/test"))
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/python").join(name)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_official_a2a_client_works_over_both_bindings() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&dir.path().join("data"), &[]);
    let out = tokio::task::spawn_blocking({
        let (base, token, log) = (gw.base.clone(), gw.token.clone(), gw.data.join("log.json"));
        move || Command::new(python()).arg(script("gateway_client.py")).arg(base).arg(token).arg(log).output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let runs = summary["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 14, "seven runs per binding");
    for r in runs {
        let v = gw.verified_receipt(r["id"].as_str().unwrap()).await;
        assert_eq!(json!(kinds(&v)), r["kinds"], "ledger-core and the Python verifier see the same run");
        assert_eq!(v.status.to_string(), r["status"].as_str().unwrap());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a2a_and_webhook_upstreams_are_relayed_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let (a2a_port, hook_port) = (free_port(), free_port());
    let py = python();
    let upstream = Proc::start(
        Path::new(&py),
        &[script("upstream_a2a_agent.py").to_str().unwrap(), &a2a_port.to_string()],
        "listening",
    );
    let _hooks = Proc::start(
        Path::new(&py),
        &[script("webhook_agent.py").to_str().unwrap(), &hook_port.to_string()],
        "listening",
    );
    let hook = |name: &str, path: &str| {
        format!(
            "[[agent]]\nname = \"{name}\"\nupstream = {{ kind = \"http\", url = \"http://127.0.0.1:{hook_port}{path}\", headers = {{ X-Upstream-Key = \"k1\" }} }}\n\
             [[agent.skill]]\nid = \"{name}\"\nname = \"{name}\"\n"
        )
    };
    // The a2a agent declares no skills: the gateway reads them from the upstream's card.
    let manifest = format!(
        "[gateway]\nname = \"test gateway\"\n\n[[agent]]\nname = \"relay\"\nupstream = {{ kind = \"a2a\", url = \"http://127.0.0.1:{a2a_port}\" }}\n\n{}\n{}\n{}\n{}",
        hook("sum", "/json"),
        hook("steps", "/ndjson"),
        hook("broken", "/broken"),
        hook("garbage", "/garbage"),
    );
    let manifest_path = dir.path().join("agents.toml");
    std::fs::write(&manifest_path, manifest).unwrap();
    let data = dir.path().join("data");
    let gw = gateway_with(
        &data,
        &[
            "--embedded",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--manifest",
            manifest_path.to_str().unwrap(),
        ],
    );
    let card: Value =
        gw.http.get(format!("{}/.well-known/agent-card.json", gw.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(card["name"], "test gateway");
    let skills: Vec<&str> = card["skills"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(skills, ["relay", "sum", "steps", "broken", "garbage"]);

    let msg = |text: &str| json!({ "message": { "messageId": "m", "role": "ROLE_USER", "parts": [{ "text": text }] } });
    // echo: the upstream's artifact comes through.
    let r = gw.rpc("SendMessage", msg("echo via upstream")).await;
    let t = &r["result"]["task"];
    assert_eq!(t["status"]["state"], "TASK_STATE_COMPLETED", "{r}");
    assert_eq!(t["artifacts"][0]["parts"][0]["text"], "via upstream");
    let v = gw.verified_receipt(t["id"].as_str().unwrap()).await;
    assert_run(
        &v,
        RunStatus::Completed,
        &["task.accepted", "task.status", "artifact.added", "task.completed", "receipt.sealed"],
    );

    // slow: the upstream's working updates are relayed and recorded.
    let r = gw.rpc("SendMessage", msg("slow 0.05")).await;
    let v = gw.verified_receipt(r["result"]["task"]["id"].as_str().unwrap()).await;
    let k = kinds(&v);
    assert_eq!(k.iter().filter(|k| *k == "task.status").count(), 3, "working + the upstream's two steps: {k:?}");
    assert_eq!(k.iter().filter(|k| *k == "artifact.added").count(), 1);

    // ask: input_required relayed; the answer goes to the same upstream task.
    let r = gw.rpc("SendMessage", msg("ask")).await;
    let t = &r["result"]["task"];
    assert_eq!(t["status"]["state"], "TASK_STATE_INPUT_REQUIRED", "{r}");
    assert_eq!(t["status"]["message"]["parts"][0]["text"], "what is your answer?");
    let id = t["id"].as_str().unwrap().to_string();
    let r = gw
        .rpc(
            "SendMessage",
            json!({ "message": { "messageId": "m2", "role": "ROLE_USER", "taskId": id, "parts": [{ "text": "42" }] } }),
        )
        .await;
    assert_eq!(r["result"]["task"]["status"]["state"], "TASK_STATE_COMPLETED", "{r}");
    let texts: Vec<&str> = r["result"]["task"]["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["parts"][0]["text"].as_str().unwrap())
        .collect();
    assert!(texts.contains(&"you answered: 42"), "{texts:?}");

    // fail, and cancel forwarded as CancelTask.
    let r = gw.rpc("SendMessage", msg("fail")).await;
    assert_eq!(r["result"]["task"]["status"]["state"], "TASK_STATE_FAILED");
    let v = gw.verified_receipt(r["result"]["task"]["id"].as_str().unwrap()).await;
    assert_eq!(v.status, RunStatus::Failed);
    let r = gw
        .rpc(
            "SendMessage",
            json!({ "message": { "messageId": "m3", "role": "ROLE_USER", "parts": [{ "text": "slow 5" }] }, "configuration": { "returnImmediately": true } }),
        )
        .await;
    let slow = r["result"]["task"]["id"].as_str().unwrap().to_string();
    // Canceled once the agent is working on it (its first step is in the task's events).
    let first_step = |v: &Value| v.to_string().contains("step 1/2");
    let seen = gw.follow_sse(&slow, std::time::Duration::from_secs(30), first_step).await;
    assert!(seen.is_some(), "the agent started the slow task");
    let r = gw.rpc("CancelTask", json!({ "id": slow })).await;
    assert_eq!(r["result"]["status"]["state"], "TASK_STATE_CANCELED", "{r}");
    assert_eq!(gw.verified_receipt(&slow).await.status, RunStatus::Canceled);

    // The upstream never saw the caller's token.
    let seen: Value =
        reqwest::get(format!("http://127.0.0.1:{a2a_port}/seen-headers")).await.unwrap().json().await.unwrap();
    assert!(!seen.as_array().unwrap().is_empty());
    for h in seen.as_array().unwrap() {
        assert!(h.get("authorization").is_none(), "the caller's credentials reached the upstream: {h}");
    }
    // Every call (not the card's GET) says which A2A version it speaks.
    for h in seen.as_array().unwrap().iter().filter(|h| h[":method"] == "POST") {
        assert_eq!(h["a2a-version"], "1.0", "{h}");
    }
    drop(upstream);

    // Webhooks: JSON, NDJSON with progress and an artifact, an error status, a non-JSON body.
    let (status, body) = gw.invoke("sum", json!({ "a": 2, "b": 3 })).await;
    assert_eq!((status, body["result"]["sum"].as_i64()), (200, Some(5)), "{body}");
    let headers = &body["result"]["headers"];
    assert!(headers.get("authorization").is_none(), "the caller's token reached the webhook: {headers}");
    assert_eq!(headers["x-upstream-key"], "k1", "the manifest's headers are sent");
    assert_eq!(headers["x-run-id"], body["run"]);

    let (status, body) = gw.invoke("steps", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["run"], body["run"]);
    assert_eq!(body["artifacts"][0]["name"], "notes.txt");
    let v = gw.verified_receipt(body["run"].as_str().unwrap()).await;
    assert_run(
        &v,
        RunStatus::Completed,
        &[
            "task.accepted",
            "task.status",
            "skill.progress",
            "skill.progress",
            "artifact.added",
            "task.completed",
            "receipt.sealed",
        ],
    );

    let (status, body) = gw.invoke("broken", json!({})).await;
    assert_eq!(status, 502);
    assert!(body["error"].as_str().unwrap().contains("upstream answered 500"), "{body}");
    assert!(body["error"].as_str().unwrap().contains("upstream exploded"), "{body}");
    assert_eq!(gw.verified_receipt(body["run"].as_str().unwrap()).await.status, RunStatus::Failed);
    let (status, body) = gw.invoke("garbage", json!({})).await;
    assert_eq!(status, 502);
    assert!(body["error"].as_str().unwrap().contains("not JSON"), "{body}");

    // A receipt fetched from a file verifies offline too (the descriptor the gateway wrote).
    let r = gw.get(&format!("/runs/{}/receipt", body["run"].as_str().unwrap())).send().await.unwrap();
    let v = verify(&gw.data.join("log.json"), &r.bytes().await.unwrap());
    assert_eq!(v.status, RunStatus::Failed);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_mcp_server_behind_the_gateway_is_called_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let py = python();
    let start_upstream = || {
        Proc::start(
            Path::new(&py),
            &[script("mcp_upstream.py").to_str().unwrap(), &port.to_string(), "k1"],
            "listening",
        )
    };
    let upstream = start_upstream();
    // No skills declared: the gateway learns them from tools/list. The upstream answers 401
    // without its own key, so every call below also proves the key is sent (and the caller's
    // token is not: the two differ).
    let manifest = format!(
        "[[agent]]\nname = \"py\"\nupstream = {{ kind = \"mcp\", url = \"http://127.0.0.1:{port}/mcp\", prefix = \"py.\", headers = {{ Authorization = \"Bearer k1\" }} }}\n"
    );
    let manifest_path = dir.path().join("agents.toml");
    std::fs::write(&manifest_path, manifest).unwrap();
    let data = dir.path().join("data");
    let args = [
        "--embedded",
        data.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--manifest",
        manifest_path.to_str().unwrap(),
    ];
    let gw = gateway_with(&data, &args);
    let card: Value =
        gw.http.get(format!("{}/.well-known/agent-card.json", gw.base)).send().await.unwrap().json().await.unwrap();
    let skills: Vec<&str> = card["skills"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(skills, ["py.add", "py.slow_count", "py.boom", "py.picture", "py.sleepy", "py.write_note"]);

    // Its tools are the gateway's MCP tools, with the upstream's schemas.
    let list = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": { "_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {} } } });
    let r = gw
        .post("/mcp")
        .header("accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2026-07-28")
        .header("Mcp-Method", "tools/list")
        .json(&list)
        .send()
        .await
        .unwrap();
    let tools: Value = r.json().await.unwrap();
    let add = tools["result"]["tools"].as_array().unwrap().iter().find(|t| t["name"] == "py.add").unwrap().clone();
    assert_eq!(add["inputSchema"]["required"], json!(["a", "b"]), "{add}");
    assert_eq!(add["outputSchema"]["required"], json!(["sum", "note"]), "{add}");

    // A structured result.
    let (status, r) = gw.invoke("py.add", json!({ "a": 2, "b": 3 })).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["result"], json!({ "sum": 5, "note": "2+3" }));
    let v = gw.verified_receipt(r["run"].as_str().unwrap()).await;
    assert_run(&v, RunStatus::Completed, &["task.accepted", "task.status", "task.completed", "receipt.sealed"]);
    assert_eq!(v.entries()[0].1.event.attrs_json()["skill"], "py.add");

    // Progress notifications are skill.progress entries.
    let (_, r) = gw.invoke("py.slow_count", json!({ "n": 3 })).await;
    assert_eq!(r["result"], json!({ "counted": 3 }), "{r}");
    let v = gw.verified_receipt(r["run"].as_str().unwrap()).await;
    let progress: Vec<Value> = v
        .entries()
        .iter()
        .filter(|(_, e)| e.kind().as_str() == "skill.progress")
        .map(|(_, e)| e.event.attrs_json()["pct"].clone())
        .collect();
    assert_eq!(progress, [json!(33), json!(66), json!(100)]);

    // isError fails the run with the tool's text.
    let (_, r) = gw.invoke("py.boom", json!({ "reason": "on purpose" })).await;
    assert_eq!(r["status"], "failed", "{r}");
    assert!(r["error"].as_str().unwrap().contains("boom: on purpose"), "{r}");
    let v = gw.verified_receipt(r["run"].as_str().unwrap()).await;
    assert_run(&v, RunStatus::Failed, &["task.accepted", "task.status", "task.failed", "receipt.sealed"]);

    // Non-text content is an artifact, hashed in the run.
    let (_, r) = gw.invoke("py.picture", json!({})).await;
    assert_eq!(r["artifacts"][0]["parts"][0]["mediaType"], "image/png", "{r}");
    let v = gw.verified_receipt(r["run"].as_str().unwrap()).await;
    assert!(kinds(&v).contains(&"artifact.added".to_string()));

    // The tool finds the run's grant in _meta and writes through the workspace API.
    let (_, r) = gw.invoke("py.write_note", json!({ "text": "from the tool" })).await;
    let run = r["run"].as_str().unwrap().to_string();
    let said: Value = serde_json::from_str(r["result"]["text"].as_str().unwrap()).unwrap();
    assert_eq!(said, json!({ "status": 200, "run": run }));
    let v = gw.verified_receipt(&run).await;
    assert_run(
        &v,
        RunStatus::Completed,
        &["task.accepted", "task.status", "workspace.written", "task.completed", "receipt.sealed"],
    );
    assert_eq!(v.entries()[2].1.event.attrs_json()["path"], "out/note.txt");
    assert_eq!(
        std::fs::read_to_string(data.join("workspaces").join(&run).join("out/note.txt")).unwrap(),
        "from the tool"
    );

    // Input the tool's own schema refuses never reaches it: over /invoke a 400 naming where,
    // over the gateway's MCP a tool error the model can act on.
    let (status, r) = gw.invoke("py.add", json!({ "a": "two" })).await;
    assert_eq!(status, 400, "{r}");
    let m = r["error"]["message"].as_str().unwrap();
    assert!(m.contains("/a") && m.contains("\"b\""), "{m}");
    let (status, _) = gw.invoke("py.add", json!([1, 2])).await;
    assert_eq!(status, 400);
    let call = json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "py.add", "arguments": { "a": 1 }, "_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {} } } });
    let r: Value = gw
        .post("/mcp")
        .header("accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2026-07-28")
        .header("Mcp-Method", "tools/call")
        .header("Mcp-Name", "py.add")
        .json(&call)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["result"]["isError"], true, "{r}");
    assert!(r["result"]["content"][0]["text"].as_str().unwrap().contains("\"b\""), "{r}");

    // A cancel reaches a running tool call; the run ends canceled.
    let send = json!({ "message": { "messageId": "m1", "role": "ROLE_USER", "parts": [{ "data": { "secs": 30 } }] },
        "metadata": { "skill": "py.sleepy" }, "configuration": { "returnImmediately": true } });
    let r = gw.rpc("SendMessage", send).await;
    let id = r["result"]["task"]["id"].as_str().unwrap().to_string();
    let r = gw.rpc("CancelTask", json!({ "id": id })).await;
    assert_eq!(r["result"]["status"]["state"], "TASK_STATE_CANCELED", "{r}");
    assert_eq!(gw.verified_receipt(&id).await.status, RunStatus::Canceled);

    // The upstream restarts: a call while it is away fails (and is recorded), the next one after
    // it is back goes through on a new connection.
    upstream.terminate();
    let (_, r) = gw.invoke("py.add", json!({ "a": 1, "b": 1 })).await;
    assert_eq!(r["status"], "failed", "{r}");
    assert_eq!(gw.verified_receipt(r["run"].as_str().unwrap()).await.status, RunStatus::Failed);
    let _upstream = start_upstream();
    let (_, r) = gw.invoke("py.add", json!({ "a": 1, "b": 1 })).await;
    assert_eq!(r["result"]["sum"], 2, "{r}");
}
