//! The gateway binary end to end on an embedded ledger: every demo path over `/invoke`, A2A
//! JSON-RPC and HTTP+JSON, the platform REST with SSE replay, the Agent Card, and the errors of
//! each surface. Every run's receipt is verified by ledger-core with its kinds checked against
//! what happened.

mod common;

use base64::Engine as _;
use common::{assert_run, gateway, sse_events};
use ledger_core::RunStatus;
use serde_json::{Value, json};

const ACCEPT: &str = "task.accepted";
const STATUS: &str = "task.status";
const PROGRESS: &str = "skill.progress";
const ARTIFACT: &str = "artifact.added";
const SEALED: &str = "receipt.sealed";

#[tokio::test(flavor = "multi_thread")]
async fn every_demo_path_over_invoke_is_recorded_and_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&dir.path().join("data"), &[]);

    let (status, body) = gw.invoke("echo", json!({ "text": "hello" })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "completed");
    assert_eq!(body["result"]["echo"]["text"], "hello");
    let run = body["run"].as_str().unwrap();
    assert_eq!(body["receipt"], format!("{}/runs/{run}/receipt", gw.base));
    let v = gw.verified_receipt(run).await;
    assert_run(&v, RunStatus::Completed, &[ACCEPT, STATUS, ARTIFACT, "task.completed", SEALED]);
    assert_eq!(v.actor(), "gateway");

    // An input the skill's schema refuses is a 400 naming each problem and where; no run starts.
    let (status, body) = gw.invoke("slow", json!({ "steps": 0, "delay_ms": "soon" })).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_input", "{body}");
    let m = body["error"]["message"].as_str().unwrap();
    assert!(m.contains("/steps") && m.contains("/delay_ms") && m.contains("\"slow\""), "{m}");
    let metrics = gw.get("/metrics").send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("gateway_tasks_accepted_total 1\n"), "only the echo run: {metrics}");

    let (status, body) = gw.invoke("slow", json!({ "steps": 3, "delay_ms": 10 })).await;
    assert_eq!((status, body["result"]["steps"].as_u64()), (200, Some(3)), "{body}");
    let v = gw.verified_receipt(body["run"].as_str().unwrap()).await;
    assert_run(
        &v,
        RunStatus::Completed,
        &[ACCEPT, STATUS, STATUS, PROGRESS, PROGRESS, PROGRESS, "task.completed", SEALED],
    );

    let (status, body) = gw.invoke("report", json!({ "title": "Q3" })).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = body["artifacts"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["report.md", "data.json"]);
    let v = gw.verified_receipt(body["run"].as_str().unwrap()).await;
    assert_run(&v, RunStatus::Completed, &[ACCEPT, STATUS, PROGRESS, ARTIFACT, ARTIFACT, "task.completed", SEALED]);
    // artifact.added hashes the artifact's parts as served (docs/FORMATS.md §9).
    let served = &body["artifacts"][0];
    let parts = runtime_gateway::base::jcs::jcs(&served["parts"]).into_bytes();
    let recorded = v.entries().into_iter().find(|(_, e)| e.kind().as_str() == ARTIFACT).unwrap();
    assert_eq!(recorded.1.event.attrs_json()["hash"], json!(hex::encode(blake3::hash(&parts).as_bytes())));

    let (status, body) = gw.invoke("fail", json!({})).await;
    assert_eq!(status, 502, "a failed skill is a bad gateway answer: {body}");
    assert_eq!(body["status"], "failed");
    assert!(body["error"].as_str().unwrap().contains("always fails"));
    let v = gw.verified_receipt(body["run"].as_str().unwrap()).await;
    assert_run(&v, RunStatus::Failed, &[ACCEPT, STATUS, STATUS, "task.failed", SEALED]);

    // input_required over /invoke: 202 with the task's links; answered over A2A, it completes.
    let (status, body) = gw.invoke("ask", json!({})).await;
    assert_eq!((status, body["status"].as_str()), (202, Some("input_required")), "{body}");
    let run = body["run"].as_str().unwrap().to_string();
    let answer = gw
        .rpc(
            "SendMessage",
            json!({ "message": { "messageId": "a1", "role": "ROLE_USER", "taskId": run, "parts": [{ "text": "Ada" }] } }),
        )
        .await;
    assert_eq!(answer["result"]["task"]["status"]["state"], "TASK_STATE_COMPLETED", "{answer}");
    assert_eq!(answer["result"]["task"]["status"]["message"]["parts"][0]["text"], "Hello, Ada!");
    let v = gw.verified_receipt(&run).await;
    assert_run(&v, RunStatus::Completed, &[ACCEPT, STATUS, STATUS, STATUS, STATUS, "task.completed", SEALED]);
    let states: Vec<String> =
        v.entries()[1..5].iter().map(|(_, e)| e.event.attrs_json()["state"].as_str().unwrap().to_string()).collect();
    assert_eq!(states, ["working", "input_required", "working", "working"]);

    let r = gw.post("/invoke/nope").json(&json!({})).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "unknown_skill");
    let r = gw.post("/invoke/echo").body("{not json").send().await.unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "bad_json");
    assert!(e["error"]["message"].as_str().unwrap().contains("line 1 column 2"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a2a_jsonrpc_send_stream_get_list_cancel_subscribe() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&dir.path().join("data"), &[]);
    let msg = |id: &str, text: &str| json!({ "messageId": id, "role": "ROLE_USER", "parts": [{ "text": text }] });

    // Blocking send: the task comes back completed, naming its receipt.
    let r = gw.rpc("SendMessage", json!({ "message": msg("m1", "echo hi") })).await;
    let task = &r["result"]["task"];
    assert_eq!(task["status"]["state"], "TASK_STATE_COMPLETED", "{r}");
    let id = task["id"].as_str().unwrap().to_string();
    assert_eq!(task["metadata"]["receipt"], format!("{}/runs/{id}/receipt", gw.base));
    assert_eq!(task["history"][0]["messageId"], "m1");
    let v = gw.verified_receipt(&id).await;
    assert_eq!(v.entries()[0].1.event.attrs_json()["protocol"], "a2a");

    // GetTask with history_length in snake_case (ProtoJSON accepts both spellings).
    let r = gw.rpc("GetTask", json!({ "id": id, "history_length": 0 })).await;
    assert_eq!(r["result"]["id"], json!(id));
    assert!(r["result"].get("history").is_none(), "{r}");

    // Streaming: Task first, then updates in order, ending at the terminal status.
    let body = json!({ "jsonrpc": "2.0", "id": "s1", "method": "SendStreamingMessage",
        "params": { "message": msg("m2", "slow"), "metadata": { "skill": "slow" } } });
    let resp = gw.post("/").header("A2A-Version", "1.0").json(&body).send().await.unwrap();
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let events = sse_events(resp).await;
    assert!(events.iter().all(|(_, _, d)| d["id"] == "s1" && d["jsonrpc"] == "2.0"));
    let kinds: Vec<&str> =
        events.iter().map(|(_, _, d)| d["result"].as_object().unwrap().keys().next().unwrap().as_str()).collect();
    assert_eq!(kinds[0], "task");
    assert_eq!(*kinds.last().unwrap(), "statusUpdate");
    let last = &events.last().unwrap().2["result"]["statusUpdate"];
    assert_eq!(last["status"]["state"], "TASK_STATE_COMPLETED");
    assert_eq!(
        kinds.iter().filter(|k| **k == "statusUpdate").count(),
        1 + 1 + 4 + 1,
        "working, steps, progress x4, end: {kinds:?}"
    );

    // Cancel a running task; a second cancel is refused.
    let r = gw
        .rpc(
            "SendMessage",
            json!({ "message": msg("m3", "x"), "metadata": { "skill": "slow" }, "configuration": { "returnImmediately": true } }),
        )
        .await;
    let slow = r["result"]["task"]["id"].as_str().unwrap().to_string();
    let r = gw.rpc("CancelTask", json!({ "id": slow })).await;
    assert_eq!(r["result"]["status"]["state"], "TASK_STATE_CANCELED", "{r}");
    let r = gw.rpc("CancelTask", json!({ "id": slow })).await;
    assert_eq!(r["error"]["code"], -32002, "{r}");
    let v = gw.verified_receipt(&slow).await;
    assert_eq!(v.status, RunStatus::Canceled);

    // Subscribe to a task waiting for input; answer it; the stream ends at the terminal state.
    let r = gw.rpc("SendMessage", json!({ "message": msg("m4", "ask") })).await;
    let ask = r["result"]["task"]["id"].as_str().unwrap().to_string();
    assert_eq!(r["result"]["task"]["status"]["state"], "TASK_STATE_INPUT_REQUIRED");
    let sub = json!({ "jsonrpc": "2.0", "id": 9, "method": "SubscribeToTask", "params": { "id": ask } });
    let sub = gw.post("/").header("A2A-Version", "1.0").json(&sub).send().await.unwrap();
    let answered = gw
        .rpc("SendMessage", json!({ "message": { "messageId": "m5", "role": "ROLE_USER", "taskId": ask, "parts": [{ "text": "Bo" }] } }))
        .await;
    assert_eq!(answered["result"]["task"]["status"]["state"], "TASK_STATE_COMPLETED", "{answered}");
    let events = sse_events(sub).await;
    assert!(events[0].2["result"].get("task").is_some(), "the first event is the task snapshot");
    assert_eq!(events.last().unwrap().2["result"]["statusUpdate"]["status"]["state"], "TASK_STATE_COMPLETED");
    // A message to an ended task is refused; subscribing to it too.
    let r = gw
        .rpc("SendMessage", json!({ "message": { "messageId": "m6", "role": "ROLE_USER", "taskId": ask, "parts": [{ "text": "again" }] } }))
        .await;
    assert_eq!(r["error"]["code"], -32004, "{r}");
    let r = gw.rpc("SubscribeToTask", json!({ "id": ask })).await;
    assert_eq!(r["error"]["code"], -32004, "{r}");

    // ListTasks: newest first, cursor pagination over all of them exactly once.
    let r = gw.rpc("ListTasks", json!({ "pageSize": 2 })).await;
    assert_eq!(r["result"]["totalSize"], 4, "{r}");
    assert!(r["result"]["tasks"][0].get("artifacts").is_none(), "artifacts only when asked for");
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let r = gw.rpc("ListTasks", json!({ "pageSize": 3, "pageToken": token })).await;
        seen.extend(r["result"]["tasks"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_string()));
        token = r["result"]["nextPageToken"].as_str().unwrap().to_string();
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(seen.len(), 4);
    assert!(seen.contains(&id) && seen.contains(&ask));
    let r = gw.rpc("ListTasks", json!({ "pageSize": 101 })).await;
    assert_eq!(r["error"]["code"], -32602);
    let r = gw.rpc("ListTasks", json!({ "pageToken": "garbage!" })).await;
    assert_eq!(r["error"]["code"], -32602);
}

#[tokio::test(flavor = "multi_thread")]
async fn a2a_errors_have_the_spec_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&dir.path().join("data"), &[]);
    let raw = async |body: &'static str, version: Option<&'static str>| -> Value {
        let mut r = gw.post("/").header("content-type", "application/json").body(body);
        if let Some(v) = version {
            r = r.header("A2A-Version", v);
        }
        r.send().await.unwrap().json().await.unwrap()
    };
    let code = |v: &Value| v["error"]["code"].as_i64().unwrap();

    let r = raw(r#"{"jsonrpc":"2.0","id":1,"method":"GetTask","params":{"id":"x"}}"#, None).await;
    assert_eq!(code(&r), -32009, "no A2A-Version means 0.3: {r}");
    let r = raw(r#"{"jsonrpc":"2.0","id":1,"method":"GetTask","params":{"id":"x"}}"#, Some("99.0")).await;
    assert_eq!(code(&r), -32009);
    let r = raw("{nope", Some("1.0")).await;
    assert_eq!((code(&r), r["id"].clone()), (-32700, Value::Null));
    let r = raw(r#"{"jsonrpc":"2.0","id":2,"method":"message/send","params":{}}"#, Some("1.0")).await;
    assert_eq!(code(&r), -32601);
    let r = raw(r#"{"jsonrpc":"2.0","id":3,"method":"SendMessage","params":{}}"#, Some("1.0")).await;
    assert_eq!(code(&r), -32602);
    let r = raw(r#"{"jsonrpc":"2.0","id":4,"method":"GetTask","params":{"id":"missing"}}"#, Some("1.0")).await;
    assert_eq!(code(&r), -32001);
    assert_eq!(r["id"], 4);
    let keys: Vec<&String> = r["error"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["code", "data", "message"]);
    assert_eq!(r["error"]["data"][0]["reason"], "TASK_NOT_FOUND");
    assert_eq!(r["error"]["data"][0]["domain"], "a2a-protocol.org");
    let r = raw(r#"{"jsonrpc":"2.0","id":5,"method":"CreateTaskPushNotificationConfig","params":{"taskId":"t","url":"http://x"}}"#, Some("1.0")).await;
    assert_eq!(code(&r), -32001, "push is on; the task is unknown");
    let r = gw
        .post("/")
        .header("content-type", "text/plain")
        .header("A2A-Version", "1.0")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], -32005);

    // HTTP+JSON: AIP-193 bodies whose code is the HTTP status.
    let r = gw.get("/tasks/missing").header("A2A-Version", "1.0").send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.headers()["content-type"].to_str().unwrap().contains("application/json"));
    let e: Value = r.json().await.unwrap();
    assert_eq!((e["error"]["code"].as_i64(), e["error"]["status"].as_str()), (Some(404), Some("NOT_FOUND")));
    assert_eq!(e["error"]["details"][0]["reason"], "TASK_NOT_FOUND");
    let r = gw
        .post("/message:send")
        .header("A2A-Version", "1.0")
        .header("content-type", "text/plain")
        .body("hi")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let r = gw.post("/message:send").header("A2A-Version", "99.0").json(&json!({})).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["details"][0]["reason"], "VERSION_NOT_SUPPORTED");
    let r = gw.post("/message:send").header("A2A-Version", "1.0").json(&json!({})).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r = gw
        .post("/tasks/missing:cancel")
        .header("A2A-Version", "1.0")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = gw
        .post("/tasks/t/pushNotificationConfigs")
        .header("A2A-Version", "1.0")
        .json(&json!({"url": "http://x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "push is on; the task is unknown");

    // HTTP+JSON happy path: send, get, cancel-refused on an ended task.
    let r = gw
        .post("/message:send")
        .header("A2A-Version", "1.0")
        .json(&json!({ "message": { "messageId": "r1", "role": "ROLE_USER", "parts": [{ "text": "echo rest" }] } }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    let id = t["task"]["id"].as_str().unwrap();
    let r = gw.get(&format!("/tasks/{id}?historyLength=1")).header("A2A-Version", "1.0").send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["status"]["state"], "TASK_STATE_COMPLETED");
    let r = gw.post(&format!("/tasks/{id}:cancel")).header("A2A-Version", "1.0").send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["details"][0]["reason"], "TASK_NOT_CANCELABLE");

    // Authentication: no token, a wrong token.
    let r = gw.http.post(format!("{}/invoke/echo", gw.base)).json(&json!({})).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let r = gw.http.get(format!("{}/tasks/{id}", gw.base)).bearer_auth("a2ag_wrong").send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["message"], "unknown token");
}

#[tokio::test(flavor = "multi_thread")]
async fn platform_rest_replays_sse_from_last_event_id() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&dir.path().join("data"), &[]);
    let r = gw
        .post("/tasks")
        .json(&json!({ "skill": "slow", "input": { "steps": 3, "delay_ms": 20 } }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let link = r.headers()["link"].to_str().unwrap().to_string();
    let created: Value = r.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    assert_eq!(link, format!("</runs/{id}/receipt>; rel=\"receipt\""));
    assert_eq!(created["sse"], format!("{}/sse/{id}", gw.base));

    // The whole stream, then a reconnect after event 2 replays exactly the rest.
    let all = sse_events(gw.get(&format!("/sse/{id}")).send().await.unwrap()).await;
    let ids: Vec<String> = all.iter().map(|(i, _, _)| i.clone().unwrap()).collect();
    assert_eq!(ids, (1..=all.len()).map(|n| n.to_string()).collect::<Vec<_>>());
    assert_eq!(all[0].1.as_deref(), Some("task"));
    assert_eq!(all.last().unwrap().2["statusUpdate"]["status"]["state"], "TASK_STATE_COMPLETED");
    let rest = sse_events(gw.get(&format!("/sse/{id}")).header("Last-Event-ID", "2").send().await.unwrap()).await;
    assert_eq!(rest, all[2..].to_vec());
    let r = gw.get(&format!("/sse/{id}")).header("Last-Event-ID", "999").send().await.unwrap();
    assert_eq!(r.status(), 400);

    // GET /tasks/{id} without A2A-Version is the platform's view.
    let t: Value = gw.get(&format!("/tasks/{id}")).send().await.unwrap().json().await.unwrap();
    assert_eq!((t["status"].as_str(), t["result"]["steps"].as_u64()), (Some("completed"), Some(3)), "{t}");
    let v = gw.verified_receipt(id).await;
    assert_eq!(v.entries()[0].1.event.attrs_json()["protocol"], "https");

    // /invoke as SSE ends with the result event.
    let r =
        gw.post("/invoke/echo").header("accept", "text/event-stream").json(&json!({"text": "s"})).send().await.unwrap();
    let events = sse_events(r).await;
    let (_, kind, result) = events.last().unwrap();
    assert_eq!(kind.as_deref(), Some("result"));
    assert_eq!(result["status"], "completed");
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_card_is_cacheable_and_signed_by_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&dir.path().join("data"), &[]);
    let r = gw.http.get(format!("{}/.well-known/agent-card.json", gw.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    assert!(r.headers()["cache-control"].to_str().unwrap().contains("max-age="));
    let card: Value = r.json().await.unwrap();
    let r = gw
        .http
        .get(format!("{}/.well-known/agent-card.json", gw.base))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);

    let skills: Vec<&str> = card["skills"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(skills, ["echo", "slow", "ask", "report", "conformance", "fail"]);
    let bindings: Vec<&str> = card["supportedInterfaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["protocolBinding"].as_str().unwrap())
        .collect();
    assert_eq!(bindings, ["JSONRPC", "HTTP+JSON", "GRPC"]);
    assert_eq!(card["supportedInterfaces"][0]["url"], json!(gw.base));
    // gRPC targets are host:port (A2A's AgentInterface for GRPC), on the same listener.
    assert_eq!(card["supportedInterfaces"][2]["url"], json!(gw.base.trim_start_matches("http://")));
    assert_eq!(card["securityRequirements"][0]["schemes"]["bearer"]["list"], json!([]));

    // The JWS: EdDSA by the gateway's identity key over the JCS form of the card without
    // its signatures; checked here with ed25519-dalek via ledger-core's strict verify.
    let sig = &card["signatures"][0];
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header: Value = serde_json::from_slice(&b64.decode(sig["protected"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!((header["alg"].as_str(), header["kid"].as_str()), (Some("EdDSA"), Some("gateway")));
    let mut unsigned = card.clone();
    unsigned.as_object_mut().unwrap().remove("signatures");
    let payload = runtime_gateway::base::jcs::jcs(&unsigned);
    let input = format!("{}.{}", sig["protected"].as_str().unwrap(), b64.encode(payload.as_bytes()));
    let key: [u8; 32] = b64.decode(header["jwk"]["x"].as_str().unwrap()).unwrap().try_into().unwrap();
    let signature: [u8; 64] = b64.decode(sig["signature"].as_str().unwrap()).unwrap().try_into().unwrap();
    let verifier = ledger_core::VerifierKey::new("gateway", &key).unwrap();
    assert!(verifier.verify(input.as_bytes(), &signature));
    // ... and the key is the identity registered in the ledger.
    let id_key = ledger_core::NamedKey::from_private_string(
        &std::fs::read_to_string(gw.data.join("identity-gateway.key")).unwrap(),
    )
    .unwrap();
    assert_eq!(id_key.public_key(), key);
    let mut tampered = input.into_bytes();
    tampered[10] ^= 1;
    assert!(!verifier.verify(&tampered, &signature));
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_ends_every_task_sealed_and_closes_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let gw = gateway(&data, &[]);
    let (status, ask) = gw.invoke("ask", json!({})).await;
    assert_eq!(status, 202);
    let r = gw
        .post("/tasks")
        .json(&json!({ "skill": "slow", "input": { "steps": 4, "delay_ms": 200 } }))
        .send()
        .await
        .unwrap();
    let slow: Value = r.json().await.unwrap();
    let started = std::time::Instant::now();
    let common::Gw { proc, .. } = gw;
    let status = tokio::task::spawn_blocking(move || proc.terminate()).await.unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "a task waiting for input does not hold the shutdown"
    );

    // After a restart on the same data, both runs are sealed: the one waiting for input was
    // canceled, the working one finished.
    let gw = gateway(&data, &[]);
    let v = gw.verified_receipt(ask["run"].as_str().unwrap()).await;
    assert_eq!(v.status, RunStatus::Canceled);
    let v = gw.verified_receipt(slow["id"].as_str().unwrap()).await;
    assert_eq!(v.status, RunStatus::Completed);
}

#[tokio::test(flavor = "multi_thread")]
async fn tasks_outlive_their_streams_and_every_subscriber_sees_the_same_events() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&dir.path().join("data"), &[]);
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "SendStreamingMessage",
        "params": { "message": { "messageId": "d1", "role": "ROLE_USER", "parts": [{ "text": "slow" }] } } });
    // The streaming client reads the first event and hangs up.
    let mut resp = gw.post("/").header("A2A-Version", "1.0").json(&body).send().await.unwrap();
    let first = resp.chunk().await.unwrap().unwrap();
    let first = String::from_utf8_lossy(&first);
    let data: Value = serde_json::from_str(first.trim().strip_prefix("data:").unwrap().trim()).unwrap();
    let id = data["result"]["task"]["id"].as_str().unwrap().to_string();
    drop(resp);

    // Two subscribers join while it runs; each sees the same events in the same order.
    let sub = json!({ "jsonrpc": "2.0", "id": 2, "method": "SubscribeToTask", "params": { "id": id } });
    let (a, b) = tokio::join!(
        gw.post("/").header("A2A-Version", "1.0").json(&sub).send(),
        gw.post("/").header("A2A-Version", "1.0").json(&sub).send()
    );
    let (a, b) = tokio::join!(sse_events(a.unwrap()), sse_events(b.unwrap()));
    let updates = |events: &[(Option<String>, Option<String>, Value)]| -> Vec<Value> {
        events.iter().skip(1).map(|(_, _, d)| d["result"].clone()).collect()
    };
    let (ua, ub) = (updates(&a), updates(&b));
    let shorter = ua.len().min(ub.len());
    assert!(shorter >= 1, "each subscriber saw the end: {ua:?}");
    assert_eq!(ua[ua.len() - shorter..], ub[ub.len() - shorter..], "same events, same order");
    assert_eq!(ua.last().unwrap()["statusUpdate"]["status"]["state"], "TASK_STATE_COMPLETED");

    // The task ran to its end although its first client left: the whole run is sealed.
    let v = gw.verified_receipt(&id).await;
    assert_run(
        &v,
        RunStatus::Completed,
        &[ACCEPT, STATUS, STATUS, PROGRESS, PROGRESS, PROGRESS, PROGRESS, "task.completed", SEALED],
    );
}
