//! The gateway against real peers written in Python: the official A2A client (`a2a-sdk` 1.3) on
//! both bindings, an upstream A2A agent written with `a2a-sdk`, and a plain webhook agent. Every
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
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/python").join(name)
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
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
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
