//! A2A push notifications through the real binary: configs over both bindings, delivery of every
//! task event to a receiver served by this test (with a retry after a 503), the webhook rules
//! (private, link-local and loopback targets refused; redirects not followed), and the delivery
//! journal.

mod common;

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use common::{Gw, assert_run, gateway_with};
use ledger_core::RunStatus;
use runtime_gateway::base::config::token_hash_hex;
use serde_json::{Value, json};
use tokio::sync::mpsc;

struct Delivery {
    headers: HeaderMap,
    body: Value,
}

/// A webhook receiver: `/hook` answers 503 to its first request and 204 after; `/redirect`
/// answers 302 to a private address.
async fn receiver() -> (String, mpsc::UnboundedReceiver<Delivery>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let failed_once = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let app = Router::new()
        .route(
            "/hook",
            post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let (tx, failed_once) = (tx.clone(), failed_once.clone());
                async move {
                    if !failed_once.swap(true, std::sync::atomic::Ordering::SeqCst) {
                        return StatusCode::SERVICE_UNAVAILABLE.into_response();
                    }
                    let body = serde_json::from_slice(&body).unwrap();
                    tx.send(Delivery { headers, body }).unwrap();
                    StatusCode::NO_CONTENT.into_response()
                }
            }),
        )
        .route(
            "/redirect",
            post(|| async { (StatusCode::FOUND, [("location", "http://10.0.0.1/steal")]).into_response() }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, rx)
}

fn start(dir: &std::path::Path) -> Gw {
    // Loopback is opened for this receiver only; backoff is short so the retry is quick.
    start_with(dir, "allow_networks = [\"127.0.0.1/32\"]\nbackoff_ms = 20")
}

fn start_with(dir: &std::path::Path, push: &str) -> Gw {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let key = "a2ag_push_test_key";
    std::fs::write(
        data.join("gateway.toml"),
        format!("[[caller]]\nname = \"local-user\"\ntoken_sha256 = \"{}\"\n[push]\n{push}\n", token_hash_hex(key)),
    )
    .unwrap();
    let mut gw = gateway_with(&data, &["--embedded", data.to_str().unwrap(), "--listen", "127.0.0.1:0"]);
    gw.token = key.into();
    gw
}

fn msg(id: &str, text: &str) -> Value {
    json!({ "messageId": id, "role": "ROLE_USER", "parts": [{ "text": text }] })
}

fn journal(gw: &Gw) -> Vec<Value> {
    std::fs::read_to_string(gw.data.join("push-deliveries.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The journal once `done` holds for it (it is written after each attempt's answer).
async fn journal_when(gw: &Gw, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    for _ in 0..400 {
        let j = journal(gw);
        if done(&j) {
            return j;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the journal never got there: {:?}", journal(gw));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_event_is_pushed_in_order_with_a_retry() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path());
    let (base, mut deliveries) = receiver().await;
    let card: Value =
        gw.http.get(format!("{}/.well-known/agent-card.json", gw.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(card["capabilities"]["pushNotifications"], true);

    let config = json!({ "url": format!("{base}/hook"), "token": "tok-1",
        "authentication": { "scheme": "Bearer", "credentials": "hook-secret" } });
    let r = gw
        .rpc(
            "SendMessage",
            json!({ "message": msg("m1", "report"), "configuration": { "taskPushNotificationConfig": config } }),
        )
        .await;
    let task = &r["result"]["task"];
    assert_eq!(task["status"]["state"], "TASK_STATE_COMPLETED", "{r}");
    let id = task["id"].as_str().unwrap().to_string();

    // The receiver sees the task as created, then every update, ending at the terminal one.
    let mut got = Vec::new();
    loop {
        let d = tokio::time::timeout(Duration::from_secs(10), deliveries.recv()).await.expect("a delivery").unwrap();
        let h = |k: &str| d.headers.get(k).unwrap().to_str().unwrap().to_string();
        assert_eq!(h("authorization"), "Bearer hook-secret");
        assert_eq!(h("x-a2a-notification-token"), "tok-1");
        assert_eq!(h("a2a-notification-token"), "tok-1");
        assert_eq!(h("content-type"), "application/a2a+json");
        let end = d.body["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED";
        got.push(d.body);
        if end {
            break;
        }
    }
    assert_eq!(got[0]["task"]["id"], id.as_str());
    let artifacts = got.iter().filter(|b| b.get("artifactUpdate").is_some()).count();
    assert_eq!(artifacts, 2, "the report's two artifacts: {got:?}");
    for b in &got[1..] {
        let t = b.get("statusUpdate").or_else(|| b.get("artifactUpdate")).unwrap();
        assert_eq!(t["taskId"], id.as_str());
    }

    // The first attempt met a 503 and was retried; every attempt is in the journal.
    let delivered = got.len();
    let j = journal_when(&gw, |j| j.iter().filter(|l| l["outcome"] == "delivered").count() == delivered).await;
    assert_eq!(j[0]["status"], 503);
    assert_eq!(j[0]["outcome"], "retrying");
    assert_eq!(
        (j[1]["event"].clone(), j[1]["attempt"].clone(), j[1]["outcome"].clone()),
        (json!(0), json!(2), json!("delivered"))
    );
    assert_eq!(j.iter().filter(|l| l["outcome"] == "delivered").count(), got.len());
    assert!(j.iter().all(|l| l["task"] == id.as_str() && l["host"] == "127.0.0.1"));
    assert!(!std::fs::read_to_string(gw.data.join("push-deliveries.jsonl")).unwrap().contains("hook-secret"));

    // Push changes nothing in the run's record.
    let v = gw.verified_receipt(&id).await;
    assert_run(
        &v,
        RunStatus::Completed,
        &[
            "task.accepted",
            "task.status",
            "skill.progress",
            "artifact.added",
            "artifact.added",
            "task.completed",
            "receipt.sealed",
        ],
    );
    let metrics = gw.get("/metrics").send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains(&format!("gateway_push_deliveries_total{{outcome=\"delivered\"}} {}", got.len())),
        "{metrics}"
    );
    assert!(metrics.contains("gateway_runs_sealed_total{status=\"completed\"} 1\n"), "{metrics}");
    assert!(metrics.contains("gateway_run_duration_seconds_count 1\n"), "{metrics}");
    assert!(metrics.contains("gateway_ledger_lag_seconds 0.0\n"), "embedded: nothing waits: {metrics}");
    assert!(metrics.contains("# TYPE gateway_ledger_append_seconds histogram"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn configs_over_both_bindings_and_the_webhook_rules() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path());
    let (base, _deliveries) = receiver().await;
    let r = gw
        .rpc(
            "SendMessage",
            json!({ "message": msg("m1", "slow"), "metadata": { "skill": "slow" },
                    "configuration": { "returnImmediately": true } }),
        )
        .await;
    let id = r["result"]["task"]["id"].as_str().unwrap().to_string();

    // JSON-RPC: create (an id is given when none is asked for), get, list, delete (idempotent).
    let r = gw.rpc("CreateTaskPushNotificationConfig", json!({ "taskId": id, "url": format!("{base}/hook") })).await;
    let cfg = r["result"].clone();
    let cfg_id = cfg["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_string();
    assert_eq!(cfg["taskId"], id.as_str());
    let r = gw.rpc("GetTaskPushNotificationConfig", json!({ "taskId": id, "id": cfg_id })).await;
    assert_eq!(r["result"], cfg);
    let r = gw
        .rpc("CreateTaskPushNotificationConfig", json!({ "taskId": id, "id": "mine", "url": format!("{base}/hook") }))
        .await;
    assert_eq!(r["result"]["id"], "mine", "{r}");
    let r = gw.rpc("ListTaskPushNotificationConfigs", json!({ "taskId": id, "pageSize": 1 })).await;
    assert_eq!(r["result"]["configs"].as_array().unwrap().len(), 1, "{r}");
    let next = r["result"]["nextPageToken"].as_str().unwrap().to_string();
    let r = gw.rpc("ListTaskPushNotificationConfigs", json!({ "taskId": id, "pageToken": next })).await;
    assert_eq!(r["result"]["configs"][0]["id"], "mine", "{r}");
    for _ in 0..2 {
        let r = gw.rpc("DeleteTaskPushNotificationConfig", json!({ "taskId": id, "id": "mine" })).await;
        assert_eq!(r["result"], json!({}), "{r}");
    }
    let r = gw.rpc("GetTaskPushNotificationConfig", json!({ "taskId": id, "id": "mine" })).await;
    assert_eq!(r["error"]["code"], -32001, "{r}");
    let r = gw.rpc("GetTaskPushNotificationConfig", json!({ "taskId": "no-such-task", "id": "x" })).await;
    assert_eq!(r["error"]["code"], -32001, "{r}");

    // HTTP+JSON: the same operations.
    let rest = |method: reqwest::Method, path: String| {
        gw.http.request(method, format!("{}{path}", gw.base)).bearer_auth(&gw.token).header("A2A-Version", "1.0")
    };
    let path = format!("/tasks/{id}/pushNotificationConfigs");
    let r =
        rest(reqwest::Method::POST, path.clone()).json(&json!({ "url": format!("{base}/hook") })).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let made: Value = r.json().await.unwrap();
    let made_id = made["id"].as_str().unwrap();
    let list: Value = rest(reqwest::Method::GET, path.clone()).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["configs"].as_array().unwrap().len(), 2, "{list}");
    let r = rest(reqwest::Method::GET, format!("{path}/{made_id}")).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), made);
    let r = rest(reqwest::Method::DELETE, format!("{path}/{made_id}")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = rest(reqwest::Method::GET, format!("{path}/{made_id}")).send().await.unwrap();
    assert_eq!(r.status(), 404);

    // Targets push may not reach are refused when the config is made, saying why.
    for (url, why) in [
        ("http://10.0.0.1/hook", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://127.0.0.2:9/hook", "loopback"),
        ("http://[::1]:9/hook", "loopback"),
        ("file:///etc/passwd", "only http and https"),
    ] {
        let r = gw.rpc("CreateTaskPushNotificationConfig", json!({ "taskId": id, "url": url })).await;
        assert_eq!(r["error"]["code"], -32602, "{url}: {r}");
        assert!(r["error"]["message"].as_str().unwrap().contains(why), "{url}: {r}");
        let r = rest(reqwest::Method::POST, path.clone()).json(&json!({ "url": url })).send().await.unwrap();
        assert_eq!(r.status(), 400, "{url}");
    }
    // ... and a SendMessage naming one, or any config that is not well formed, creates no task.
    let before = gw.rpc("ListTasks", json!({})).await["result"]["totalSize"].clone();
    for (config, why) in [
        (json!({ "url": "http://192.168.1.1/hook" }), "private"),
        (json!({ "url": format!("{base}/hook"), "authentication": { "scheme": "Not A Scheme" } }), "scheme"),
        (json!({ "url": format!("{base}/hook"), "token": "line\nbreak" }), "token"),
        (json!({ "url": format!("{base}/hook"), "id": "x".repeat(129) }), "128 bytes"),
    ] {
        let r = gw
            .rpc(
                "SendMessage",
                json!({ "message": msg("m2", "echo x"), "configuration": { "taskPushNotificationConfig": config } }),
            )
            .await;
        assert_eq!(r["error"]["code"], -32602, "{r}");
        assert!(r["error"]["message"].as_str().unwrap().contains(why), "{r}");
    }
    assert_eq!(gw.rpc("ListTasks", json!({})).await["result"]["totalSize"], before);

    // A redirect (here towards a private address) is not followed: the event is given up.
    let r = gw
        .rpc(
            "SendMessage",
            json!({ "message": msg("m3", "echo y"),
                    "configuration": { "taskPushNotificationConfig": { "url": format!("{base}/redirect") } } }),
        )
        .await;
    let echo = r["result"]["task"]["id"].as_str().unwrap().to_string();
    let ended = |l: &Value| l["task"] == echo.as_str() && l["kind"] == "statusUpdate";
    let j = journal_when(&gw, |j| j.iter().filter(|l| ended(l)).count() == 2).await;
    let redirect: Vec<&Value> = j.iter().filter(|l| l["task"] == echo.as_str()).collect();
    assert_eq!(redirect.len(), 4, "task, working, artifact, completed: {redirect:?}");
    assert!(
        redirect.iter().all(|l| l["status"] == 302 && l["outcome"] == "given_up" && l["attempt"] == 1),
        "{redirect:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn push_switched_off_is_said_before_anything_else() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start_with(dir.path(), "enabled = false");
    let card: Value =
        gw.http.get(format!("{}/.well-known/agent-card.json", gw.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(card["capabilities"]["pushNotifications"], false);
    let r = gw
        .rpc("CreateTaskPushNotificationConfig", json!({ "taskId": "no-such-task", "url": "https://example.com/h" }))
        .await;
    assert_eq!(r["error"]["code"], -32003, "{r}");
    let r = gw
        .rpc(
            "SendMessage",
            json!({ "message": msg("m1", "echo x"),
                    "configuration": { "taskPushNotificationConfig": { "url": "https://example.com/h" } } }),
        )
        .await;
    assert_eq!(r["error"]["code"], -32003, "{r}");
    let r = gw.get("/tasks/no-such-task/pushNotificationConfigs").header("A2A-Version", "1.0").send().await.unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_waits_for_deliveries_under_way() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path());
    let (base, mut deliveries) = receiver().await;
    let r = gw
        .rpc(
            "SendMessage",
            json!({ "message": msg("m1", "echo bye"),
                    "configuration": { "taskPushNotificationConfig": { "url": format!("{base}/hook") } } }),
        )
        .await;
    assert_eq!(r["result"]["task"]["status"]["state"], "TASK_STATE_COMPLETED", "{r}");
    // SIGTERM at once: the first delivery is still waiting to be retried.
    assert!(gw.proc.terminate().success());
    let mut last = Value::Null;
    while let Ok(d) = deliveries.try_recv() {
        last = d.body;
    }
    assert_eq!(last["statusUpdate"]["status"]["state"], "TASK_STATE_COMPLETED", "the last event was delivered: {last}");
}
