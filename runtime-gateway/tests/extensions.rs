//! A2A extensions through the real binary (A2A 1.0 §4.6): the Agent Card declares the receipt
//! extension; a client that activates it with `A2A-Extensions` gets it echoed and finds the
//! run's receipt, verifiable offline, in the metadata of the ended task (SendMessage, GetTask,
//! the final event of a stream); a client that does not, or names an extension the gateway does
//! not know, gets neither; a gateway that requires it refuses requests without it with
//! `ExtensionSupportRequiredError`; a required extension the gateway does not support stops the
//! start.

mod common;

use common::{gateway, gateway_with, sse_events, verify};
use runtime_gateway::base::config::token_hash_hex;
use serde_json::{Value, json};

const RECEIPT: &str = "urn:a2a-ledger:extension:receipt:v1";

fn msg(id: &str, text: &str) -> Value {
    json!({ "messageId": id, "role": "ROLE_USER", "parts": [{ "text": text }] })
}

async fn rpc(gw: &common::Gw, ext: Option<&str>, method: &str, params: Value) -> (reqwest::header::HeaderMap, Value) {
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
    let mut req = gw.post("/").header("A2A-Version", "1.0").json(&body);
    if let Some(e) = ext {
        req = req.header("A2A-Extensions", e);
    }
    let r = req.send().await.unwrap();
    let headers = r.headers().clone();
    (headers, r.json().await.unwrap())
}

fn echoed(h: &reqwest::header::HeaderMap) -> Option<String> {
    h.get("a2a-extensions").map(|v| v.to_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_activated_receipt_extension_returns_the_receipt_inline_and_is_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let gw = gateway(&data, &[]);

    let card: Value = gw.get("/.well-known/agent-card.json").send().await.unwrap().json().await.unwrap();
    let ext = &card["capabilities"]["extensions"][0];
    assert_eq!(ext["uri"], RECEIPT, "{card}");
    assert_eq!(ext["required"], false);
    assert_eq!(ext["params"]["format"], "a2a-ledger/receipt/v1");

    // Activated (with an unknown one beside it, which is ignored and not echoed).
    let (h, r) = rpc(
        &gw,
        Some(&format!("https://example.com/unknown/v1, {RECEIPT}")),
        "SendMessage",
        json!({ "message": msg("e1", "hi") }),
    )
    .await;
    assert_eq!(echoed(&h).as_deref(), Some(RECEIPT));
    let task = &r["result"]["task"];
    assert_eq!(task["status"]["state"], "TASK_STATE_COMPLETED", "{r}");
    let receipt = &task["metadata"][RECEIPT];
    assert_eq!(receipt["format"], "a2a-ledger/receipt/v1", "{r}");
    assert_eq!(receipt["run"], task["id"]);
    verify(&data.join("log.json"), &serde_json::to_vec(receipt).unwrap());
    let id = task["id"].as_str().unwrap().to_string();

    // Not activated: no receipt, nothing echoed; the link stays.
    let (h, r) = rpc(&gw, None, "GetTask", json!({ "id": id })).await;
    assert_eq!(echoed(&h), None);
    assert!(r["result"]["metadata"].get(RECEIPT).is_none(), "{r}");
    assert_eq!(r["result"]["metadata"]["receipt"], format!("{}/runs/{id}/receipt", gw.base));
    let (h, _) = rpc(&gw, Some("https://example.com/unknown/v1"), "GetTask", json!({ "id": id })).await;
    assert_eq!(echoed(&h), None, "an extension the gateway does not support is not echoed");

    // GetTask over HTTP+JSON, activated.
    let r = gw
        .get(&format!("/tasks/{id}"))
        .header("A2A-Version", "1.0")
        .header("A2A-Extensions", RECEIPT)
        .send()
        .await
        .unwrap();
    assert_eq!(echoed(r.headers()).as_deref(), Some(RECEIPT));
    let t: Value = r.json().await.unwrap();
    verify(&data.join("log.json"), &serde_json::to_vec(&t["metadata"][RECEIPT]).unwrap());

    // A stream: the final status update carries it.
    let body = json!({ "jsonrpc": "2.0", "id": "s", "method": "SendStreamingMessage",
        "params": { "message": msg("e2", "slow"), "metadata": { "skill": "slow" } } });
    let resp =
        gw.post("/").header("A2A-Version", "1.0").header("A2A-Extensions", RECEIPT).json(&body).send().await.unwrap();
    assert_eq!(echoed(resp.headers()).as_deref(), Some(RECEIPT));
    let events = sse_events(resp).await;
    let last = &events.last().unwrap().2["result"]["statusUpdate"];
    assert_eq!(last["status"]["state"], "TASK_STATE_COMPLETED");
    verify(&data.join("log.json"), &serde_json::to_vec(&last["metadata"][RECEIPT]).unwrap());
    // Earlier updates carry none.
    assert!(events[events.len() - 2].2["result"]["statusUpdate"]["metadata"].get(RECEIPT).is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_required_extension_not_activated_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let key = "a2ag_extensions_test_key";
    std::fs::write(
        data.join("gateway.toml"),
        format!(
            "required_extensions = [\"{RECEIPT}\"]\n[[caller]]\nname = \"local-user\"\ntoken_sha256 = \"{}\"\n",
            token_hash_hex(key)
        ),
    )
    .unwrap();
    let mut gw = gateway(&data, &[]);
    gw.token = key.into();

    let card: Value = gw.get("/.well-known/agent-card.json").send().await.unwrap().json().await.unwrap();
    assert_eq!(card["capabilities"]["extensions"][0]["required"], true);

    let (_, r) = rpc(&gw, None, "SendMessage", json!({ "message": msg("r1", "hi") })).await;
    assert_eq!(r["error"]["code"], -32008, "{r}");
    assert!(r["error"]["message"].as_str().unwrap().contains(RECEIPT), "{r}");
    let r = gw
        .post("/message:send")
        .header("A2A-Version", "1.0")
        .json(&json!({ "message": msg("r2", "hi") }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert!(e.to_string().contains("EXTENSION_SUPPORT_REQUIRED"), "{e}");
    let r = gw.get("/tasks").header("A2A-Version", "1.0").send().await.unwrap();
    assert_eq!(r.status(), 400, "every A2A operation needs it");

    // With it: served.
    let (h, r) = rpc(&gw, Some(RECEIPT), "SendMessage", json!({ "message": msg("r3", "hi") })).await;
    assert_eq!(echoed(&h).as_deref(), Some(RECEIPT));
    assert_eq!(r["result"]["task"]["status"]["state"], "TASK_STATE_COMPLETED", "{r}");
}

#[test]
fn a_required_extension_the_gateway_does_not_support_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("gateway.toml"), "required_extensions = [\"https://example.com/other/v1\"]\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_runtime-gateway"))
        .args(["--embedded", data.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("https://example.com/other/v1") && err.contains("does not support"), "{err}");
    let _ = gateway_with;
}
