//! A gateway that forgets nothing, through the real binary: SIGKILL it with tasks in every state
//! (completed, input_required, working with a streaming client attached and a push config) and
//! start it again on the same data. Every task answers GetTask and ListTasks as before (checked
//! by the official A2A client, `tests/python/restart_client.py`), the runs left in flight are
//! ended and sealed, every receipt verifies (ledger-core and the independent Python verifier),
//! the webhook receives every event at least once across the restart, SSE replays from
//! `Last-Event-ID`, payloads are served by hash and erased with the receipts still verifying.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::{Gw, Ledger, gateway_with, poll, sse_events};
use ledger_core::{Entry, Event, RunStatus};
use runtime_gateway::base::config::token_hash_hex;
use serde_json::{Value, json};

const KEY: &str = "a2ag_restart_test_key";
const OTHER: &str = "a2ag_other_caller";
const RESTARTED: &str = "the gateway restarted while the run was in flight";

/// Deliveries as (event id header, body).
type Deliveries = Arc<Mutex<Vec<(String, Value)>>>;

async fn receiver() -> (String, Deliveries) {
    let got: Deliveries = Arc::default();
    let g = got.clone();
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let g = g.clone();
            async move {
                let id = headers.get("a2a-ledger-event-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                g.lock().unwrap().push((id, serde_json::from_slice(&body).unwrap()));
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, got)
}

fn start(data: &Path) -> Gw {
    let mut gw = gateway_with(data, &["--embedded", data.to_str().unwrap(), "--listen", "127.0.0.1:0"]);
    gw.token = KEY.into();
    gw
}

fn python(args: &[&str]) {
    let python = std::env::var("A2A_LEDGER_PYTHON").expect("A2A_LEDGER_PYTHON (set by ./scripts/test)");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/python/restart_client.py");
    let out = Command::new(python).arg(script).args(args).output().unwrap();
    let (o, e) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "restart_client.py {}:\n{o}{e}", args[0]);
}

/// Waits for the webhook to receive task `task`'s end (failed by the restart), then checks it
/// received every event index of the task at least once, each named by its event id.
async fn every_event_delivered(deliveries: &Deliveries, task: &str) {
    let all = poll("the webhook gets the end", Duration::from_secs(20), Duration::from_millis(20), || async {
        let d = deliveries.lock().unwrap().clone();
        d.iter().any(|(_, b)| b["statusUpdate"]["status"]["state"] == "TASK_STATE_FAILED").then_some(d)
    })
    .await;
    let indices: BTreeSet<usize> = all
        .iter()
        .map(|(id, _)| {
            let (t, i) = id.rsplit_once('/').unwrap_or_else(|| panic!("event id {id:?}"));
            assert_eq!(t, task);
            i.parse().unwrap()
        })
        .collect();
    let last = *indices.iter().max().unwrap();
    assert_eq!(indices, (0..=last).collect::<BTreeSet<_>>(), "every event at least once: {indices:?}");
}

fn msg(id: &str, text: &str) -> Value {
    json!({ "messageId": id, "role": "ROLE_USER", "parts": [{ "text": text }] })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_gateway_forgets_no_task_and_leaves_no_run_unsealed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("gateway.toml"),
        format!(
            "admins = [\"local-user\"]\n[[caller]]\nname = \"local-user\"\ntoken_sha256 = \"{}\"\n\
             [[caller]]\nname = \"other\"\ntoken_sha256 = \"{}\"\n\
             [push]\nallow_networks = [\"127.0.0.1/32\"]\nbackoff_ms = 20\n",
            token_hash_hex(KEY),
            token_hash_hex(OTHER)
        ),
    )
    .unwrap();
    let (hook, deliveries) = receiver().await;
    let state = dir.path().join("state.json");
    let gw = start(&data);

    // Tasks in every state: the A2A client makes a completed one, one waiting for input and a
    // two-turn one; here a working one with a push config and a streaming client attached.
    python(&["before", &gw.base, KEY, state.to_str().unwrap()]);
    let config = json!({ "url": format!("{hook}/hook"), "token": "tok" });
    let r = gw
        .rpc(
            "SendMessage",
            json!({ "message": msg("slow-1", "slow"), "metadata": { "skill": "slow" },
                    "configuration": { "returnImmediately": true, "taskPushNotificationConfig": config } }),
        )
        .await;
    let slow = r["result"]["task"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_string();
    let body = json!({ "jsonrpc": "2.0", "id": "sub", "method": "SubscribeToTask", "params": { "id": slow } });
    let stream = gw.post("/").header("A2A-Version", "1.0").json(&body).send().await.unwrap();
    assert_eq!(stream.status(), 200);
    poll("the webhook sees the slow task working", Duration::from_secs(20), Duration::from_millis(20), || async {
        (deliveries.lock().unwrap().len() >= 3).then_some(())
    })
    .await;

    // SIGKILL: nothing is drained, nothing is sealed by a shutdown.
    let mut proc = gw.proc;
    proc.child.kill().unwrap();
    proc.child.wait().unwrap();
    drop(stream);
    drop(proc);

    let gw = start(&data);
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    let log = data.join("log.json");
    python(&["after", &gw.base, KEY, state.to_str().unwrap(), log.to_str().unwrap(), &slow]);

    // The working task was ended and sealed, and says why.
    let r = gw.rpc("GetTask", json!({ "id": slow })).await;
    assert_eq!(r["result"]["status"]["state"], "TASK_STATE_FAILED", "{r}");
    let v = gw.verified_receipt(&slow).await;
    assert_eq!(v.status, RunStatus::Failed);
    let ended = v.views().map(|(_, e)| e.event()).find(|e| matches!(e, Event::TaskEnded { .. })).unwrap();
    assert!(matches!(&ended, Event::TaskEnded { error: Some(e), .. } if e == RESTARTED), "{ended:?}");

    // The webhook got every event of the slow task at least once, the final one included, each
    // named by its event id.
    every_event_delivered(&deliveries, &slow).await;

    // SSE replay of an ended task from Last-Event-ID, after the restart.
    let echo = saved["echo"]["id"].as_str().unwrap();
    let r = gw.get(&format!("/sse/{echo}")).header("Last-Event-ID", "0").send().await.unwrap();
    let events = sse_events(r).await;
    assert_eq!(events.first().and_then(|e| e.0.as_deref()), Some("1"), "{events:?}");
    assert!(events.iter().any(|e| e.2.to_string().contains("TASK_STATE_COMPLETED")), "{events:?}");

    // Payloads: the echo's input is served by its hash, then erased.
    let receipt: Value = gw.get(&format!("/runs/{echo}/receipt")).send().await.unwrap().json().await.unwrap();
    let first = base64_decode(receipt["entries"][0]["entry"].as_str().unwrap());
    let Event::TaskAccepted { input_hash, context, .. } = Entry::decode(&first).unwrap().event else { panic!() };
    assert_eq!(context.as_deref(), saved["context"].as_str(), "task.accepted records the context");
    let hex = hex::encode(input_hash);
    let r = gw.get(&format!("/v1/payloads/{hex}")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(*blake3::hash(&r.bytes().await.unwrap()).as_bytes(), input_hash);
    let other = gw.http.get(format!("{}/v1/payloads/{hex}", gw.base)).bearer_auth(OTHER).send().await.unwrap();
    assert_eq!(other.status(), 404, "another caller does not learn the payload exists");
    let r = gw.post(&format!("/v1/payloads/{hex}/erase")).json(&json!({ "reason": "" })).send().await.unwrap();
    assert_eq!(r.status(), 400, "an erasure needs a reason");
    let r =
        gw.post(&format!("/v1/payloads/{hex}/erase")).json(&json!({ "reason": "GDPR art. 17" })).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let index = r.json::<Value>().await.unwrap()["index"].as_u64().unwrap();
    let r = gw.get(&format!("/v1/payloads/{hex}")).send().await.unwrap();
    assert_eq!(r.status(), 410);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["index"], json!(index));
    let again = gw.post(&format!("/v1/payloads/{hex}/erase")).json(&json!({ "reason": "twice" })).send().await.unwrap();
    assert_eq!(again.json::<Value>().await.unwrap()["index"], json!(index), "erasing twice answers the first index");
    // The receipt still verifies; the task is still served, its input named as erased.
    gw.verified_receipt(echo).await;
    let r = gw.rpc("GetTask", json!({ "id": echo })).await;
    let input = &r["result"]["history"][0];
    assert!(input.to_string().contains(&format!("index {index}")), "the input names its erasure: {r}");

    // The call tree: the run's summary lists its parent and children.
    let r: Value = gw.get(&format!("/runs/{echo}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(r["parent"], Value::Null);
    assert_eq!(r["children"], json!([]));
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

const ADMIN: &str = "a2al_restart_test_admin";

#[tokio::test(flavor = "multi_thread")]
async fn with_a_remote_ledger_killed_too_nothing_is_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::new(dir.path().join("ledger"));
    // The first start writes the server's config; an admin principal is added to it.
    drop(ledger.start());
    let mut cfg = std::fs::read_to_string(ledger.data.join("server.toml")).unwrap();
    cfg.push_str(&format!(
        "\n[[principal]]\nname = \"compliance\"\nrole = \"admin\"\ntoken_sha256 = \"{}\"\n",
        token_hash_hex(ADMIN)
    ));
    std::fs::write(ledger.data.join("server.toml"), cfg).unwrap();
    let server = ledger.start();
    let http = reqwest::Client::new();
    let log_file = dir.path().join("log.json");
    let desc = http.get(ledger.url("/v1/log")).send().await.unwrap().text().await.unwrap();
    std::fs::write(&log_file, &desc).unwrap();

    let data = dir.path().join("gw");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("gateway.toml"),
        format!(
            "task_cache_secs = 0\n[[caller]]\nname = \"local-user\"\ntoken_sha256 = \"{}\"\n[[caller]]\nname = \"other\"\ntoken_sha256 = \"{}\"\n\
             [push]\nallow_networks = [\"127.0.0.1/32\"]\nbackoff_ms = 20\n",
            token_hash_hex(KEY),
            token_hash_hex(OTHER)
        ),
    )
    .unwrap();
    let grpc = format!("http://127.0.0.1:{}", ledger.grpc);
    let ingest = ledger.token("gateway");
    let args =
        ["--ledger", &grpc, "--ledger-token", &ingest, "--data", data.to_str().unwrap(), "--listen", "127.0.0.1:0"];
    let start = || {
        let mut gw = gateway_with(&data, &args);
        gw.token = KEY.into();
        gw
    };
    let (hook, deliveries) = receiver().await;
    let state = dir.path().join("state.json");
    let gw = start();
    python(&["before", &gw.base, KEY, state.to_str().unwrap()]);
    let config = json!({ "url": format!("{hook}/hook") });
    let r = gw
        .rpc(
            "SendMessage",
            json!({ "message": msg("slow-r", "slow"), "metadata": { "skill": "slow" },
                    "configuration": { "returnImmediately": true, "taskPushNotificationConfig": config } }),
        )
        .await;
    let slow = r["result"]["task"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_string();
    poll("the webhook sees the slow task working", Duration::from_secs(20), Duration::from_millis(20), || async {
        (deliveries.lock().unwrap().len() >= 3).then_some(())
    })
    .await;

    // The ledger dies first (the gateway spools), then the gateway; both come back.
    drop(server);
    let mut proc = gw.proc;
    proc.child.kill().unwrap();
    proc.child.wait().unwrap();
    drop(proc);
    let _server = ledger.start();
    let gw = start();
    python(&["after", &gw.base, KEY, state.to_str().unwrap(), log_file.to_str().unwrap(), &slow]);
    let r = gw.rpc("GetTask", json!({ "id": slow })).await;
    assert_eq!(r["result"]["status"]["state"], "TASK_STATE_FAILED", "{r}");
    every_event_delivered(&deliveries, &slow).await;

    // Erasure at the ledger-server: 410 after, and a pack with payloads over every run still
    // verifies and reports the erasure.
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    let echo = saved["echo"]["id"].as_str().unwrap();
    let receipt: Value = gw.get(&format!("/runs/{echo}/receipt")).send().await.unwrap().json().await.unwrap();
    let first = base64_decode(receipt["entries"][0]["entry"].as_str().unwrap());
    let Event::TaskAccepted { input_hash, .. } = Entry::decode(&first).unwrap().event else { panic!() };
    let hex = hex::encode(input_hash);
    let auditor = ledger.token("auditor");
    let r = http.get(ledger.url(&format!("/v1/payloads/{hex}"))).bearer_auth(&auditor).send().await.unwrap();
    assert_eq!(r.status(), 200, "the gateway uploaded the input");
    assert_eq!(*blake3::hash(&r.bytes().await.unwrap()).as_bytes(), input_hash);
    let r = http
        .post(ledger.url(&format!("/v1/payloads/{hex}/erase")))
        .bearer_auth(ADMIN)
        .json(&json!({ "reason": "data subject request" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let index = r.json::<Value>().await.unwrap()["index"].as_u64().unwrap();
    let r = http.get(ledger.url(&format!("/v1/payloads/{hex}"))).bearer_auth(&auditor).send().await.unwrap();
    assert_eq!(r.status(), 410);
    let r = gw.rpc("GetTask", json!({ "id": echo })).await;
    assert!(r["result"]["history"][0].to_string().contains(&format!("index {index}")), "{r}");
    // Every receipt still verifies (ledger-core and the Python verifier).
    for run in [echo, saved["ask"]["id"].as_str().unwrap(), saved["two"]["id"].as_str().unwrap(), &slow] {
        let r = gw.get(&format!("/runs/{run}/receipt?wait=10")).send().await.unwrap();
        assert_eq!(r.status(), 200, "receipt of {run}");
        common::verify(&log_file, &r.bytes().await.unwrap());
    }

    let size = poll("a checkpoint over the erasure", Duration::from_secs(10), Duration::from_millis(50), || async {
        // The note's second line is the tree size (C2SP tlog-checkpoint).
        let note = http.get(ledger.url("/v1/checkpoint")).send().await.unwrap().text().await.unwrap();
        note.lines().nth(1).and_then(|l| l.parse::<u64>().ok()).filter(|s| *s > index)
    })
    .await;
    let pack = http
        .get(ledger.url(&format!("/v1/pack?start=0&end={size}&payloads=true")))
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap();
    assert_eq!(pack.status(), 200);
    let pack_file = dir.path().join("all.tar");
    std::fs::write(&pack_file, pack.bytes().await.unwrap()).unwrap();
    let out = Command::new(common::workspace_bin("ledger-verify"))
        .args(["pack", pack_file.to_str().unwrap(), "--log", log_file.to_str().unwrap()])
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("erased") && text.contains(&hex[..16]), "the pack reports the erasure: {text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_input_over_the_payload_limit_is_refused_and_starts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("gateway.toml"),
        format!(
            "[[caller]]\nname = \"local-user\"\ntoken_sha256 = \"{}\"\n[payloads]\nmax_bytes = 1024\n",
            token_hash_hex(KEY)
        ),
    )
    .unwrap();
    let gw = start(&data);
    let (status, body) = gw.invoke("echo", json!({ "text": "x".repeat(2000) })).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("size limit of 1024 bytes"), "{message}");
    let (status, _) = gw.invoke("echo", json!({ "text": "short" })).await;
    assert_eq!(status, 200, "a small input still runs");
    let r = gw.rpc("ListTasks", json!({})).await;
    assert_eq!(r["result"]["totalSize"], 1, "the refused input started no run: {r}");
}

/// An agent that, for its run, calls the gateway's `echo` with its run's grant in
/// `A2A-Ledger-Parent-Grant` (and once with a forged grant), and answers with what it got.
async fn orchestrator(gateway: Arc<Mutex<String>>) -> String {
    let app = Router::new().route(
        "/run",
        post(move |headers: HeaderMap| {
            let gateway = gateway.clone();
            async move {
                let grant = headers.get("x-grant").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                let base = gateway.lock().unwrap().clone();
                let http = reqwest::Client::new();
                let call = |grant: String| {
                    http.post(format!("{base}/invoke/echo"))
                        .bearer_auth(KEY)
                        .header("A2A-Ledger-Parent-Grant", grant)
                        .json(&json!({ "text": "child" }))
                        .send()
                };
                let child: Value = call(grant.clone()).await.unwrap().json().await.unwrap();
                let forged = call(format!("{grant}x")).await.unwrap();
                let forged = (forged.status().as_u16(), forged.json::<Value>().await.unwrap());
                axum::Json(json!({ "result": { "child": child["run"], "forged": forged.0, "forged_code": forged.1["error"]["code"] } }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/run", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_started_for_another_names_it_as_its_parent() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("gateway.toml"),
        format!("[[caller]]\nname = \"local-user\"\ntoken_sha256 = \"{}\"\n", token_hash_hex(KEY)),
    )
    .unwrap();
    let base = Arc::new(Mutex::new(String::new()));
    let upstream = orchestrator(base.clone()).await;
    let manifest = dir.path().join("agents.toml");
    std::fs::write(
        &manifest,
        format!(
            "[[agent]]\nname = \"orchestrator\"\nupstream = {{ kind = \"http\", url = \"{upstream}\" }}\n\
             [[agent.skill]]\nid = \"orchestrate\"\nname = \"Orchestrate\"\n\
             [[agent]]\nname = \"demo\"\nupstream = {{ kind = \"demo\" }}\n\
             [[agent.skill]]\nid = \"echo\"\nname = \"Echo\"\n"
        ),
    )
    .unwrap();
    let mut gw = gateway_with(
        &data,
        &["--embedded", data.to_str().unwrap(), "--listen", "127.0.0.1:0", "--manifest", manifest.to_str().unwrap()],
    );
    gw.token = KEY.into();
    *base.lock().unwrap() = gw.base.clone();

    let (status, body) = gw.invoke("orchestrate", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let parent = body["run"].as_str().unwrap();
    // The webhook's JSON answer, as the run's result.
    let got = &body["result"]["result"];
    let child = got["child"].as_str().unwrap_or_else(|| panic!("{body}"));
    assert_eq!(got["forged"], 403, "a grant that does not verify is refused: {body}");
    assert_eq!(got["forged_code"], "bad_parent_grant");

    // The child's task.accepted names the parent; the parent lists the child.
    let v = gw.verified_receipt(child).await;
    let accepted = v.views().next().unwrap().1.event();
    assert!(matches!(&accepted, Event::TaskAccepted { parent: Some(p), .. } if p.as_str() == parent), "{accepted:?}");
    let r: Value = gw.get(&format!("/runs/{parent}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(r["children"], json!([{ "run": child, "index": r["children"][0]["index"] }]), "{r}");
    assert_eq!(r["childrenTotal"], 1);
    let r: Value = gw.get(&format!("/runs/{child}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(r["parent"], json!(parent));
    // Once the parent has ended its grant names no run in progress.
    let grantless = gw
        .post("/invoke/echo")
        .header("A2A-Ledger-Parent-Grant", "not-a-jwt")
        .json(&json!({ "text": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(grantless.status(), 403);
}
