//! MCP at /mcp through the real binary: the official MCP client (`mcp` 2.x, Python) in both
//! protocol generations (2025-11-25 sessions, 2026-07-28 stateless) lists and calls the demo
//! agent's skills as tools, with progress; every call is a run whose receipt verifies. Origin
//! validation and authentication refuse what they must. With the conformance suite's reference
//! server behind the gateway as an `mcp` upstream, its answers reach the MCP caller as it gave
//! them (content blocks, progress numbers, JSON-RPC errors), and the runs record them.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Proc, assert_run, free_port, gateway, kinds};
use ledger_core::{Entry, RunStatus};
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

/// The payload an entry names, as JSON, fetched from the gateway by its hash.
async fn payload_json(gw: &common::Gw, e: &Entry) -> Value {
    let hash = e.payload.unwrap_or_else(|| panic!("{} names no payload", e.kind().as_str()));
    let r = gw.get(&format!("/v1/payloads/{}", hex::encode(hash))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let bytes = r.bytes().await.unwrap();
    assert_eq!(*blake3::hash(&bytes).as_bytes(), hash, "the payload is the bytes the entry's hash covers");
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_mcp_upstreams_answers_reach_mcp_callers_as_given_and_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let python = std::env::var("A2A_LEDGER_PYTHON").expect("A2A_LEDGER_PYTHON: run the suite through ./scripts/test");
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/python");
    let port = free_port();
    let _upstream = Proc::start(
        Path::new(&python),
        &[scripts.join("mcp_reference_upstream.py").to_str().unwrap(), &port.to_string(), "k1"],
        "listening",
    );
    let manifest = format!(
        "[[agent]]\nname = \"reference\"\nupstream = {{ kind = \"mcp\", url = \"http://127.0.0.1:{port}/mcp\", prefix = \"ref.\", headers = {{ Authorization = \"Bearer k1\" }} }}\n"
    );
    let manifest_path = dir.path().join("agents.toml");
    std::fs::write(&manifest_path, manifest).unwrap();
    let data = dir.path().join("data");
    let gw = gateway(&data, &["--manifest", manifest_path.to_str().unwrap()]);

    for mode in ["legacy", "2026-07-28"] {
        let out = tokio::task::spawn_blocking({
            let (python, script, url, token) =
                (python.clone(), scripts.join("mcp_relay_client.py"), format!("{}/mcp", gw.base), gw.token.clone());
            move || Command::new(python).arg(script).arg(url).arg(token).arg(mode).arg("ref.").output().unwrap()
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{mode}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        let calls = serde_json::from_str::<Value>(stdout.lines().last().unwrap()).unwrap()["calls"].clone();

        // Each non-text block is an artifact as before, and the outcome payload the terminal entry
        // names holds the result the caller got, block for block.
        for (tool, artifacts) in [
            ("test_image_content", vec!["image/png"]),
            ("test_audio_content", vec!["audio/wav"]),
            ("test_embedded_resource", vec!["text/plain"]),
            ("test_multiple_content_types", vec!["image/png", "application/json"]),
        ] {
            let call = &calls[tool];
            let v = gw.verified_receipt(call["run"].as_str().unwrap()).await;
            let mut expected = vec!["task.accepted", "task.status"];
            expected.extend(artifacts.iter().map(|_| "artifact.added"));
            expected.extend(["task.completed", "receipt.sealed"]);
            assert_run(&v, RunStatus::Completed, &expected);
            let entries = v.entries();
            for (i, media) in artifacts.iter().enumerate() {
                let added = &entries[2 + i].1;
                assert_eq!(added.event.attrs_json()["media_type"], *media, "{mode} {tool}");
                // Named by the tool and the block's place in the content (the mixed result's text is 0).
                let block = if tool == "test_multiple_content_types" { i + 1 } else { i };
                assert_eq!(added.event.attrs_json()["name"], format!("{tool}-{block}"), "{mode}");
            }
            let outcome = payload_json(&gw, &entries[entries.len() - 2].1).await;
            assert_eq!(outcome["mcp"]["result"]["content"], call["content"], "{mode} {tool}: {outcome}");
        }
        let image = &calls["test_image_content"]["content"][0]["data"];
        let v = gw.verified_receipt(calls["test_image_content"]["run"].as_str().unwrap()).await;
        let added = &v.entries()[2].1;
        let parts = payload_json(&gw, added).await;
        assert!(parts.to_string().contains(image.as_str().unwrap()), "the artifact holds the image's bytes: {parts}");

        // isError: failed with the tool's text, the result kept as the caller got it.
        let call = &calls["test_error_handling"];
        let v = gw.verified_receipt(call["run"].as_str().unwrap()).await;
        assert_run(&v, RunStatus::Failed, &["task.accepted", "task.status", "task.failed", "receipt.sealed"]);
        let end = &v.entries()[2].1;
        assert_eq!(end.event.attrs_json()["error"], call["content"][0]["text"], "the error is the tool's text");
        let outcome = payload_json(&gw, end).await;
        assert_eq!(outcome["mcp"]["result"]["isError"], true, "{outcome}");
        assert_eq!(outcome["mcp"]["result"]["content"], call["content"]);

        // Progress 0, 50, 100: all three recorded, the upstream's own numbers relayed.
        let call = &calls["test_tool_with_progress"];
        let v = gw.verified_receipt(call["run"].as_str().unwrap()).await;
        let progress: Vec<(Value, Value)> = v
            .entries()
            .iter()
            .filter(|(_, e)| e.kind().as_str() == "skill.progress")
            .map(|(_, e)| (e.event.attrs_json()["pct"].clone(), e.event.attrs_json()["stage"].clone()))
            .collect();
        let stage = json!("test_tool_with_progress");
        assert_eq!(progress, [(json!(0), stage.clone()), (json!(50), stage.clone()), (json!(100), stage)], "{mode}");
        assert_eq!(v.status, RunStatus::Completed);

        // A JSON-RPC error of the upstream: the caller got it with its code and data; the run
        // failed with the code in `error`, the error kept in the outcome, sealed.
        let call = &calls["test_missing_capability"];
        let v = gw.verified_receipt(call["run"].as_str().unwrap()).await;
        assert_run(&v, RunStatus::Failed, &["task.accepted", "task.status", "task.failed", "receipt.sealed"]);
        let end = &v.entries()[2].1;
        assert_eq!(end.event.attrs_json()["error"], "-32021: This tool requires the client 'sampling' capability");
        let outcome = payload_json(&gw, end).await;
        assert_eq!(
            outcome["mcp"]["error"],
            json!({ "code": -32021, "message": "This tool requires the client 'sampling' capability",
                    "data": { "requiredCapabilities": { "sampling": {} } } }),
            "{outcome}"
        );
    }

    // Over 2026-07-28 that error is an HTTP 400, as the specification maps -32021.
    let call = json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "ref.test_missing_capability", "arguments": {}, "_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {} } } });
    let r = gw
        .post("/mcp")
        .header("accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2026-07-28")
        .header("Mcp-Method", "tools/call")
        .header("Mcp-Name", "ref.test_missing_capability")
        .json(&call)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32021, "{body}");
    assert_eq!(body["error"]["data"]["requiredCapabilities"], json!({ "sampling": {} }), "{body}");

    // The caller's declarations reach the upstream: a caller that declares `sampling` passes the
    // upstream's capability check, as it would calling the upstream directly.
    let declared = json!({ "jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
        "name": "ref.test_missing_capability", "arguments": {}, "_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": { "sampling": {} } } } });
    let r = gw
        .post("/mcp")
        .header("accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2026-07-28")
        .header("Mcp-Method", "tools/call")
        .header("Mcp-Name", "ref.test_missing_capability")
        .json(&declared)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["result"]["content"][0]["text"], "Client declared sampling capability; proceeding.", "{body}");
    let v = gw.verified_receipt(body["result"]["_meta"]["a2a-ledger/run"].as_str().unwrap()).await;
    assert_eq!(v.status, RunStatus::Completed);

    // A2A and /invoke callers keep their shapes: artifacts, and a failure with the error text.
    let (status, r) = gw.invoke("ref.test_image_content", json!({})).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["artifacts"][0]["parts"][0]["mediaType"], "image/png", "{r}");
    assert!(r.get("mcp").is_none(), "{r}");
    let (_, r) = gw.invoke("ref.test_missing_capability", json!({})).await;
    assert_eq!(r["status"], "failed", "{r}");
    assert_eq!(r["error"], "-32021: This tool requires the client 'sampling' capability", "{r}");
    let send = json!({ "message": { "messageId": "m1", "role": "ROLE_USER", "parts": [{ "data": {} }] },
        "metadata": { "skill": "ref.test_tool_with_progress" } });
    let r = gw.rpc("SendMessage", send).await;
    assert_eq!(r["result"]["task"]["status"]["state"], "TASK_STATE_COMPLETED", "{r}");
    let v = gw.verified_receipt(r["result"]["task"]["id"].as_str().unwrap()).await;
    assert_eq!(kinds(&v).iter().filter(|k| *k == "skill.progress").count(), 3);
}

/// An input round's two entries in a verified run: the `input_required` naming the requests it
/// kept (the upstream's, as asked), and the `working` naming the answer (a message whose
/// DataPart holds the responses); both payloads fetched and checked against their hashes.
async fn round_entries(gw: &common::Gw, v: &ledger_core::VerifiedReceipt<'_>) -> Vec<(Value, Value)> {
    let entries = v.entries();
    let mut rounds = Vec::new();
    for (i, (_, e)) in entries.iter().enumerate() {
        if e.event.attrs_json()["state"] != "input_required" {
            continue;
        }
        let asked = payload_json(gw, e).await;
        let next = &entries[i + 1].1;
        assert_eq!(next.event.attrs_json()["state"], "working", "each input_required is answered by a working");
        let answer = payload_json(gw, next).await;
        assert!(
            next.event.attrs_json()["message"].as_str().unwrap().starts_with("input received (blake3 "),
            "{}",
            next.event.attrs_json()
        );
        rounds.push((asked, answer));
    }
    rounds
}

/// The `inputResponses` of an answer message (A2A JSON), from its DataPart.
fn responses_in(message: &Value) -> Value {
    let parts = message["parts"].as_array().unwrap();
    parts.iter().find_map(|p| p["data"]["mcp"].get("inputResponses").cloned()).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upstreams_input_rounds_are_answered_over_mcp_and_a2a_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let python = std::env::var("A2A_LEDGER_PYTHON").expect("A2A_LEDGER_PYTHON: run the suite through ./scripts/test");
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/python");
    let port = free_port();
    let _upstream = Proc::start(
        Path::new(&python),
        &[scripts.join("mcp_reference_upstream.py").to_str().unwrap(), &port.to_string(), "k1"],
        "listening",
    );
    let manifest = format!(
        "[[agent]]\nname = \"reference\"\nupstream = {{ kind = \"mcp\", url = \"http://127.0.0.1:{port}/mcp\", prefix = \"ref.\", headers = {{ Authorization = \"Bearer k1\" }} }}\n\n\
         [[agent]]\nname = \"demo\"\nupstream = {{ kind = \"demo\" }}\n\n[[agent.skill]]\nid = \"ask\"\nname = \"Ask\"\ndescription = \"Asks a name in words.\"\n"
    );
    let manifest_path = dir.path().join("agents.toml");
    std::fs::write(&manifest_path, manifest).unwrap();
    let data = dir.path().join("data");
    let gw = gateway(&data, &["--manifest", manifest_path.to_str().unwrap()]);

    for mode in ["legacy", "2026-07-28"] {
        let out = tokio::task::spawn_blocking({
            let (python, script, url, token) =
                (python.clone(), scripts.join("mcp_rounds_client.py"), format!("{}/mcp", gw.base), gw.token.clone());
            move || {
                Command::new(python).arg(script).arg(url).arg(token).arg(mode).arg("ref.").arg("ask").output().unwrap()
            }
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{mode}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        let summary: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
        let runs = &summary["runs"];

        // A prompt get that needs input: one input_required/working pair in its run, sealed once,
        // the answer's context in the prompt the upstream gave.
        let prompt_runs: &[&str] = if mode == "legacy" { &["prompt"] } else { &["prompt", "prompt_retry"] };
        for (name, context) in prompt_runs.iter().zip(["Ada", "Grace"]) {
            let v = gw.verified_receipt(runs[*name].as_str().unwrap()).await;
            assert_eq!(v.status, RunStatus::Completed, "{mode} {name}");
            assert_eq!(kinds(&v).iter().filter(|k| *k == "receipt.sealed").count(), 1);
            assert_eq!(v.entries()[0].1.event.attrs_json()["skill"], "ref.test_input_required_result_prompt");
            let rounds = round_entries(&gw, &v).await;
            assert_eq!(rounds.len(), 1, "{mode} {name}");
            assert_eq!(rounds[0].0["inputRequests"]["user_context"]["method"], "elicitation/create");
            assert_eq!(responses_in(&rounds[0].1)["user_context"]["content"]["context"], *context);
            let entries = v.entries();
            let outcome = payload_json(&gw, &entries[entries.len() - 2].1).await;
            assert_eq!(
                outcome["mcp"]["result"]["messages"][0]["content"]["text"],
                format!("Use the following context: {context}"),
                "{mode} {name}: {outcome}"
            );
        }

        if mode != "legacy" {
            // One elicitation, answered over MCP: one input_required/working pair, the request as the
            // upstream asked it and the caller's answer each kept under the hash its entry names.
            let v = gw.verified_receipt(runs["elicitation"].as_str().unwrap()).await;
            assert_run(
                &v,
                RunStatus::Completed,
                &["task.accepted", "task.status", "task.status", "task.status", "task.completed", "receipt.sealed"],
            );
            assert_eq!(v.entries()[0].1.event.attrs_json()["protocol"], "mcp");
            let rounds = round_entries(&gw, &v).await;
            assert_eq!(rounds.len(), 1, "{mode}");
            let (asked, answer) = &rounds[0];
            assert_eq!(asked["inputRequests"]["user_name"]["method"], "elicitation/create", "{mode}: {asked}");
            assert_eq!(asked["inputRequests"]["user_name"]["params"]["message"], "What is your name?");
            assert_eq!(v.entries()[2].1.event.attrs_json()["message"], "What is your name?");
            let given = responses_in(answer);
            assert_eq!(given["user_name"]["action"], "accept", "{mode}: {answer}");
            assert_eq!(given["user_name"]["content"]["name"], "Ada");
            let outcome = payload_json(&gw, &v.entries()[4].1).await;
            assert_eq!(outcome["mcp"]["result"]["content"][0]["text"], "Hello, Ada!");

            // Two rounds of one tool: two pairs in one run, sealed once; the upstream's own state rode
            // along in the first round's payload.
            let v = gw.verified_receipt(runs["multi_round"].as_str().unwrap()).await;
            assert_eq!(kinds(&v).iter().filter(|k| *k == "receipt.sealed").count(), 1);
            let rounds = round_entries(&gw, &v).await;
            assert_eq!(rounds.len(), 2, "{mode}");
            assert!(rounds[0].0["requestState"].as_str().is_some_and(|s| !s.is_empty()), "{}", rounds[0].0);
            assert!(rounds[1].0["inputRequests"].get("step2").is_some(), "{}", rounds[1].0);
            assert_eq!(responses_in(&rounds[1].1)["step2"]["content"]["color"], "teal");
            assert_eq!(v.status, RunStatus::Completed);

            // Elicitation, sampling and roots in one round: one pair, all three answered.
            let v = gw.verified_receipt(runs["multiple_inputs"].as_str().unwrap()).await;
            let rounds = round_entries(&gw, &v).await;
            assert_eq!(rounds.len(), 1);
            let given = responses_in(&rounds[0].1);
            assert_eq!(given["greeting"]["content"]["text"], "Paris", "{given}");
            assert_eq!(given["client_roots"]["roots"][0]["uri"], "file:///work", "{given}");
        }

        // An upstream asking in words: its prompt became one elicitation; the answer's text is
        // what it read. The input_required entry names no payload (nothing structured was asked).
        let v = gw.verified_receipt(runs["in_words"].as_str().unwrap()).await;
        assert_eq!(v.status, RunStatus::Completed);
        let entries = v.entries();
        let ask = entries.iter().find(|(_, e)| e.event.attrs_json()["state"] == "input_required").unwrap();
        assert_eq!(ask.1.payload, None);
        assert_eq!(ask.1.event.attrs_json()["message"], "What name should I greet?");
        let outcome = payload_json(&gw, &entries[entries.len() - 2].1).await;
        assert_eq!(outcome["result"]["greeting"], "Hello, Ada!", "{outcome}");

        if mode == "legacy" {
            // A 2025-11-25 server asking back on the call's stream (sampling, elicitation): one
            // round each, the request as it asked it, keyed by its JSON-RPC id.
            for (name, method, answered) in [
                ("back_sampling", "sampling/createMessage", "LLM response: Paris"),
                (
                    "back_elicitation",
                    "elicitation/create",
                    "User response: action=accept, content={\"response\":\"yes\"}",
                ),
            ] {
                let v = gw.verified_receipt(runs[name].as_str().unwrap()).await;
                assert_eq!(v.status, RunStatus::Completed, "{name}");
                let rounds = round_entries(&gw, &v).await;
                assert_eq!(rounds.len(), 1, "{name}");
                let asked = rounds[0].0["inputRequests"].as_object().unwrap();
                assert_eq!(asked.len(), 1, "{name}: {asked:?}");
                let (key, request) = asked.iter().next().unwrap();
                assert_eq!(request["method"], method, "{name}");
                assert!(responses_in(&rounds[0].1).get(key).is_some(), "{name}: answered under the same key");
                let entries = v.entries();
                let outcome = payload_json(&gw, &entries[entries.len() - 2].1).await;
                assert_eq!(outcome["mcp"]["result"]["content"][0]["text"], answered, "{name}");
            }

            // A caller that declared no elicitation was not asked: the server said it could not.
            let v = gw.verified_receipt(runs["lacking"].as_str().unwrap()).await;
            assert_eq!(v.status, RunStatus::Completed);
            assert!(round_entries(&gw, &v).await.is_empty(), "no round");
            continue;
        }

        // The round left open over MCP (its tampered state refused, nothing recorded for it) is
        // answered over A2A: the task shows the upstream's requests as a DataPart, the answer is
        // a message with the inputResponses DataPart.
        let run = summary["waiting"].as_str().unwrap();
        let r = gw.rpc("GetTask", json!({ "id": run })).await;
        let status = &r["result"]["status"];
        assert_eq!(status["state"], "TASK_STATE_INPUT_REQUIRED", "{r}");
        let offered = status["message"]["parts"].as_array().unwrap().iter().find_map(|p| p["data"].get("mcp").cloned());
        assert_eq!(offered.unwrap()["inputRequests"]["user_name"]["method"], "elicitation/create", "{r}");
        let answer = json!({ "message": { "messageId": "a2a-answer", "role": "ROLE_USER", "taskId": run, "parts": [
            { "data": { "mcp": { "inputResponses": { "user_name": { "action": "accept", "content": { "name": "Bob" } } } } } }] } });
        let r = gw.rpc("SendMessage", answer).await;
        assert_eq!(r["result"]["task"]["status"]["state"], "TASK_STATE_COMPLETED", "{r}");
        let v = gw.verified_receipt(run).await;
        assert_run(
            &v,
            RunStatus::Completed,
            &["task.accepted", "task.status", "task.status", "task.status", "task.completed", "receipt.sealed"],
        );
        let rounds = round_entries(&gw, &v).await;
        assert_eq!(responses_in(&rounds[0].1)["user_name"]["content"]["name"], "Bob");
        let outcome = payload_json(&gw, &v.entries()[4].1).await;
        assert_eq!(outcome["mcp"]["result"]["content"][0]["text"], "Hello, Bob!", "{outcome}");

        // A prompt's round left open over MCP, answered over A2A the same way.
        let run = summary["prompt_waiting"].as_str().unwrap();
        let answer = json!({ "message": { "messageId": "a2a-prompt-answer", "role": "ROLE_USER", "taskId": run, "parts": [
            { "data": { "mcp": { "inputResponses": { "user_context": { "action": "accept", "content": { "context": "Bob" } } } } } }] } });
        let r = gw.rpc("SendMessage", answer).await;
        assert_eq!(r["result"]["task"]["status"]["state"], "TASK_STATE_COMPLETED", "{r}");
        let v = gw.verified_receipt(run).await;
        assert_eq!(round_entries(&gw, &v).await.len(), 1);
        let entries = v.entries();
        let outcome = payload_json(&gw, &entries[entries.len() - 2].1).await;
        assert_eq!(outcome["mcp"]["result"]["messages"][0]["content"]["text"], "Use the following context: Bob");
    }

    // A run started over the platform REST waits on the upstream's sampling request, and is
    // answered like any task: a message with the inputResponses DataPart.
    let r = gw
        .post("/tasks")
        .json(&json!({ "skill": "ref.test_input_required_result_sampling", "input": {} }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let run = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let waiting =
        gw.follow_sse(&run, std::time::Duration::from_secs(20), |ev| ev.to_string().contains("INPUT_REQUIRED")).await;
    assert!(waiting.is_some(), "the run waits for input");
    let answer = json!({ "message": { "messageId": "rest-answer", "role": "ROLE_USER", "taskId": run, "parts": [
        { "data": { "mcp": { "inputResponses": { "capital_question": { "role": "assistant", "model": "m",
            "content": { "type": "text", "text": "Lyon" } } } } } }] } });
    let r = gw.rpc("SendMessage", answer).await;
    assert_eq!(r["result"]["task"]["status"]["state"], "TASK_STATE_COMPLETED", "{r}");
    let v = gw.verified_receipt(&run).await;
    let rounds = round_entries(&gw, &v).await;
    assert_eq!(rounds[0].0["inputRequests"]["capital_question"]["method"], "sampling/createMessage");
    let outcome = payload_json(&gw, &v.entries()[4].1).await;
    assert_eq!(outcome["mcp"]["result"]["content"][0]["text"], "Model said: Lyon", "{outcome}");
}
