//! What an `mcp` upstream offers beside tools, through the real binary's `/mcp`, with the
//! conformance suite's reference server behind it and the official Python `mcp` client in front,
//! in both protocol generations: resources, templates and prompts listed as the upstream lists
//! them; each resource read and prompt get a run whose receipt verifies and whose artifacts are
//! the bytes the caller got; completion relayed; unknown URIs and prompts refused with their
//! codes; the upstream's log messages recorded in their runs and passed on only to callers whose
//! level admits them.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Gw, Proc, assert_run, free_port, gateway};
use ledger_core::{Entry, RunStatus};
use serde_json::{Value, json};

/// The payload an entry names, as JSON, fetched from the gateway by its hash.
async fn payload_json(gw: &Gw, e: &Entry) -> Value {
    let hash = e.payload.unwrap_or_else(|| panic!("{} names no payload", e.kind().as_str()));
    let r = gw.get(&format!("/v1/payloads/{}", hex::encode(hash))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let bytes = r.bytes().await.unwrap();
    assert_eq!(*blake3::hash(&bytes).as_bytes(), hash, "the payload is the bytes the entry's hash covers");
    serde_json::from_slice(&bytes).unwrap()
}

/// The reference server (with key `k1`) behind a gateway as agent `reference`, prefix `ref.`.
fn reference_behind_gateway(dir: &Path, python: &str) -> (Proc, Gw) {
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/python");
    let port = free_port();
    let upstream = Proc::start(
        Path::new(python),
        &[scripts.join("mcp_reference_upstream.py").to_str().unwrap(), &port.to_string(), "k1"],
        "listening",
    );
    let manifest = format!(
        "[[agent]]\nname = \"reference\"\nupstream = {{ kind = \"mcp\", url = \"http://127.0.0.1:{port}/mcp\", prefix = \"ref.\", headers = {{ Authorization = \"Bearer k1\" }} }}\n"
    );
    let manifest_path = dir.join("agents.toml");
    std::fs::write(&manifest_path, manifest).unwrap();
    let data = dir.join("data");
    let gw = gateway(&data, &["--manifest", manifest_path.to_str().unwrap()]);
    (upstream, gw)
}

/// Runs a client script of tests/python against the gateway; its last line, as JSON.
async fn client(gw: &Gw, python: &str, script: &str, mode: &str) -> Value {
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/python");
    let out = tokio::task::spawn_blocking({
        let (python, script, url, token, mode) =
            (python.to_string(), scripts.join(script), format!("{}/mcp", gw.base), gw.token.clone(), mode.to_string());
        move || Command::new(python).arg(script).arg(url).arg(token).arg(mode).arg("ref.").output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{script} {mode}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

/// Checks a read's or prompt get's run: accepted over MCP as `skill` with `input` as its input
/// payload, one artifact per content (named `names`, each the caller's bytes: `parts` as they
/// must be, their hash the one recorded), completed with the caller's answer kept, sealed.
async fn check_run(gw: &Gw, run: &str, skill: &str, input: Value, names: &[String], parts: &[Value], answer: &Value) {
    let v = gw.verified_receipt(run).await;
    let mut expected = vec!["task.accepted", "task.status"];
    expected.extend(names.iter().map(|_| "artifact.added"));
    expected.extend(["task.completed", "receipt.sealed"]);
    assert_run(&v, RunStatus::Completed, &expected);
    let entries = v.entries();
    let accepted = entries[0].1.event.attrs_json();
    assert_eq!((accepted["protocol"].as_str(), accepted["skill"].as_str()), (Some("mcp"), Some(skill)), "{accepted}");
    let input_bytes = serde_json::to_vec(&input).unwrap();
    assert_eq!(accepted["input_hash"], json!(hex::encode(blake3::hash(&input_bytes).as_bytes())), "{accepted}");
    for (i, (name, part)) in names.iter().zip(parts).enumerate() {
        let added = &entries[2 + i].1;
        let attrs = added.event.attrs_json();
        assert_eq!(attrs["name"], json!(name), "{attrs}");
        let artifact = payload_json(gw, added).await;
        assert_eq!(artifact["parts"], json!([part]), "{skill}: the artifact holds the caller's bytes");
        let canonical = runtime_gateway::base::jcs::jcs(&artifact["parts"]);
        assert_eq!(attrs["hash"], json!(hex::encode(blake3::hash(canonical.as_bytes()).as_bytes())), "{attrs}");
    }
    let end = &entries[entries.len() - 2].1;
    let outcome = payload_json(gw, end).await;
    for (k, v) in answer.as_object().unwrap() {
        assert_eq!(&outcome["mcp"]["result"][k], v, "{skill}: the outcome keeps what the caller got: {outcome}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn resources_prompts_and_completion_of_an_mcp_upstream_are_relayed_and_reads_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let python = std::env::var("A2A_LEDGER_PYTHON").expect("A2A_LEDGER_PYTHON: run the suite through ./scripts/test");
    let (_upstream, gw) = reference_behind_gateway(dir.path(), &python);

    for mode in ["legacy", "2026-07-28"] {
        let out = client(&gw, &python, "mcp_catalog_client.py", mode).await;
        assert_eq!(
            out["refusals"],
            json!({ "resource": if mode == "legacy" { -32002 } else { -32602 }, "prompt": -32602 })
        );

        let text = &out["reads"]["test://static-text"];
        let c = &text["contents"][0];
        check_run(
            &gw,
            text["run"].as_str().unwrap(),
            "reference.resources.read",
            json!({ "uri": "test://static-text" }),
            &["test://static-text".into()],
            &[json!({ "text": c["text"], "mediaType": "text/plain" })],
            &json!({ "contents": text["contents"] }),
        )
        .await;
        let binary = &out["reads"]["test://static-binary"];
        let blob = &binary["contents"][0]["blob"];
        check_run(
            &gw,
            binary["run"].as_str().unwrap(),
            "reference.resources.read",
            json!({ "uri": "test://static-binary" }),
            &["test://static-binary".into()],
            // A2A's raw part is the same bytes in base64: the blob the caller got, unchanged.
            &[json!({ "raw": blob, "mediaType": "image/png" })],
            &json!({ "contents": binary["contents"] }),
        )
        .await;
        let data = &out["reads"]["test://template/42/data"];
        check_run(
            &gw,
            data["run"].as_str().unwrap(),
            "reference.resources.read",
            json!({ "uri": "test://template/42/data" }),
            &["test://template/42/data".into()],
            &[json!({ "text": data["contents"][0]["text"], "mediaType": "application/json" })],
            &json!({ "contents": data["contents"] }),
        )
        .await;

        let args = &out["prompts"]["test_prompt_with_arguments"];
        check_run(
            &gw,
            args["run"].as_str().unwrap(),
            "ref.test_prompt_with_arguments",
            json!({ "name": "ref.test_prompt_with_arguments", "arguments": { "arg1": "a", "arg2": "b" } }),
            &["message-0".into()],
            &[json!({ "text": "Prompt with arguments: arg1='a', arg2='b'", "mediaType": "text/plain" })],
            &json!({ "messages": args["messages"] }),
        )
        .await;
        let image = &out["prompts"]["test_prompt_with_image"];
        let m = &image["messages"];
        check_run(
            &gw,
            image["run"].as_str().unwrap(),
            "ref.test_prompt_with_image",
            json!({ "name": "ref.test_prompt_with_image" }),
            &["message-0".into(), "message-1".into()],
            &[
                json!({ "raw": m[0]["content"]["data"], "mediaType": "image/png" }),
                json!({ "text": m[1]["content"]["text"], "mediaType": "text/plain" }),
            ],
            &json!({ "messages": m }),
        )
        .await;
        let embedded = &out["prompts"]["test_prompt_with_embedded_resource"];
        let m = &embedded["messages"];
        check_run(
            &gw,
            embedded["run"].as_str().unwrap(),
            "ref.test_prompt_with_embedded_resource",
            json!({ "name": "ref.test_prompt_with_embedded_resource", "arguments": { "resourceUri": "test://example-resource" } }),
            &["message-0".into(), "message-1".into()],
            &[
                json!({ "text": m[0]["content"]["resource"]["text"], "mediaType": "text/plain" }),
                json!({ "text": m[1]["content"]["text"], "mediaType": "text/plain" }),
            ],
            &json!({ "messages": m }),
        )
        .await;

        // Over A2A a read's run is a task like any other: its artifacts are the contents.
        let r = gw.rpc("GetTask", json!({ "id": binary["run"] })).await;
        let artifact = &r["result"]["artifacts"][0];
        assert_eq!(artifact["name"], "test://static-binary", "{r}");
        assert_eq!(artifact["parts"][0]["raw"], *blob, "{r}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_mcp_upstreams_log_messages_are_recorded_and_reach_only_callers_whose_level_admits_them() {
    let dir = tempfile::tempdir().unwrap();
    let python = std::env::var("A2A_LEDGER_PYTHON").expect("A2A_LEDGER_PYTHON: run the suite through ./scripts/test");
    let (_upstream, gw) = reference_behind_gateway(dir.path(), &python);
    let steps = ["Tool execution started", "Tool processing data", "Tool execution completed"];
    for mode in ["legacy", "2026-07-28"] {
        let out = client(&gw, &python, "mcp_logging_client.py", mode).await;
        let calls = out["calls"].as_array().unwrap();
        assert_eq!(calls.len(), 3, "{out}");
        // Whatever the caller's level, the run records every message the tool logged.
        for call in calls {
            let v = gw.verified_receipt(call["run"].as_str().unwrap()).await;
            let entries = v.entries();
            let logs: Vec<&Entry> =
                entries.iter().map(|(_, e)| e).filter(|e| e.kind().as_str() == "skill.progress").collect();
            assert_eq!(logs.len(), 3, "{mode} {call}");
            for (e, step) in logs.iter().zip(steps) {
                let attrs = e.event.attrs_json();
                let data = serde_json::to_vec(&json!(step)).unwrap();
                assert_eq!(attrs["stage"], "log.info", "{attrs}");
                assert_eq!(attrs["pct"], 0, "the run's progress as it stands: {attrs}");
                assert_eq!(attrs["message"], json!(String::from_utf8(data.clone()).unwrap()), "{attrs}");
                assert_eq!(e.payload, Some(*blake3::hash(&data).as_bytes()), "the whole data is the payload");
                assert_eq!(payload_json(&gw, e).await, json!(step));
            }
            assert_eq!(v.status, RunStatus::Completed);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn resource_updates_reach_only_the_callers_subscribed_to_the_resource() {
    let dir = tempfile::tempdir().unwrap();
    let python = std::env::var("A2A_LEDGER_PYTHON").expect("A2A_LEDGER_PYTHON: run the suite through ./scripts/test");
    let (_upstream, gw) = reference_behind_gateway(dir.path(), &python);
    for mode in ["legacy", "2026-07-28"] {
        let out = client(&gw, &python, "mcp_subscription_client.py", mode).await;
        assert_eq!(out["a"], json!(["test://watched-resource", "test://watched-resource"]), "{mode}: {out}");
    }
}
