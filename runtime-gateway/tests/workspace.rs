//! Grants on every workspace operation, scope approvals, evals and reviews, through the real
//! binary. The agent is a webhook served by this test: it receives the run's grant and acts in
//! the workspace with it while the run is open.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::post;
use common::{gateway_with, kinds};
use ledger_core::RunStatus;
use runtime_gateway::base::config::token_hash_hex;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

struct AgentCall {
    grant: String,
    workspace: String,
    scope: String,
    finish: oneshot::Sender<()>,
}

/// A webhook agent that hands its grant to the test and answers when the test says so.
async fn webhook() -> (String, mpsc::Receiver<AgentCall>) {
    let (tx, rx) = mpsc::channel::<AgentCall>(4);
    let app = Router::new().route(
        "/agent",
        post(move |headers: HeaderMap| {
            let tx = tx.clone();
            async move {
                let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                let (finish, done) = oneshot::channel();
                let call = AgentCall { grant: h("x-grant"), workspace: h("x-workspace"), scope: h("x-scope"), finish };
                tx.send(call).await.unwrap();
                let _ = done.await;
                axum::Json(json!({ "done": true }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/agent", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

fn sign(secret_hex: &str, claims: &Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(&hex::decode(secret_hex.trim()).unwrap());
    jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256), claims, &key).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_workspace_operation_is_checked_recorded_and_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let (caller_key, boss_key) = ("a2ag_caller_key_for_the_test", "a2ag_boss_key_for_the_test");
    std::fs::write(
        data.join("gateway.toml"),
        format!(
            "approvers = [\"boss\"]\n[[caller]]\nname = \"local-user\"\ntoken_sha256 = \"{}\"\n[[caller]]\nname = \"boss\"\ntoken_sha256 = \"{}\"\n",
            token_hash_hex(caller_key),
            token_hash_hex(boss_key)
        ),
    )
    .unwrap();
    let (hook, mut calls) = webhook().await;
    let manifest = dir.path().join("agents.toml");
    std::fs::write(
        &manifest,
        format!(
            "[[agent]]\nname = \"writer\"\nupstream = {{ kind = \"http\", url = \"{hook}\" }}\n\
             [[agent.skill]]\nid = \"write\"\nname = \"Write\"\nworkspace = {{ read = [\"in/**\", \"out/**\"], write = [\"out/**\"], out = \"out/\" }}\n"
        ),
    )
    .unwrap();
    let mut gw = gateway_with(
        &data,
        &["--embedded", data.to_str().unwrap(), "--listen", "127.0.0.1:0", "--manifest", manifest.to_str().unwrap()],
    );
    gw.token = caller_key.to_string();
    let http = reqwest::Client::new();

    let r = gw.post("/tasks").json(&json!({ "skill": "write", "input": {} })).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let run = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let call = tokio::time::timeout(Duration::from_secs(10), calls.recv()).await.unwrap().unwrap();
    assert_eq!(call.workspace, format!("{}/workspace/{run}", gw.base));
    let ws = |path: &str| format!("{}/{path}", call.workspace);

    // Allowed: write under the output prefix, read it back, list.
    let r = http.put(ws("out/report.md")).bearer_auth(&call.grant).body("# hello").send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = http.get(ws("out/report.md")).bearer_auth(&call.grant).send().await.unwrap();
    assert_eq!(r.headers()["x-blake3"].to_str().unwrap(), hex::encode(blake3::hash(b"# hello").as_bytes()));
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"# hello");
    let listing: Value = http
        .get(format!("{}?list=out", call.workspace))
        .bearer_auth(&call.grant)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listing["files"], json!([{ "path": "out/report.md", "bytes": 7 }]));

    // Refused, each recorded, nothing written: outside the globs, outside the prefix, no grant,
    // a tampered grant, another agent's grant, an expired grant, a path escaping the workspace.
    let secret = std::fs::read_to_string(data.join("grant.key")).unwrap();
    let claims: Value = {
        use base64::Engine as _;
        let payload = call.grant.split('.').nth(1).unwrap();
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
    };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let mut expired = claims.clone();
    expired["exp"] = json!(now - 10);
    let mut foreign = claims.clone();
    foreign["aud"] = json!("some-other-agent");
    let mut tampered = call.grant.clone().into_bytes();
    let n = tampered.len() - 3;
    tampered[n] = if tampered[n] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let refusals: Vec<(reqwest::RequestBuilder, &str)> = vec![
        (http.get(ws("secret/key.pem")).bearer_auth(&call.grant), "read globs"),
        (http.put(ws("in/overwrite.txt")).bearer_auth(&call.grant).body("x"), "output prefix"),
        (http.put(ws("out/a.txt")).body("x"), "no grant"),
        (http.put(ws("out/b.txt")).bearer_auth(&tampered).body("x"), "signature"),
        (http.put(ws("out/c.txt")).bearer_auth(sign(&secret, &foreign)).body("x"), "not for agent"),
        (http.put(ws("out/d.txt")).bearer_auth(sign(&secret, &expired)).body("x"), "expired"),
        (http.get(ws("out/..%2F..%2Fgateway.toml")).bearer_auth(&call.grant), "'..'"),
    ];
    let mut denied = 0;
    for (req, why) in refusals {
        let r = req.send().await.unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, 403, "{why}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(why), "{why}: {body}");
        denied += 1;
    }
    // A read the grant allows of a file that is not there: 404, and recorded as refused.
    let r = http.get(ws("in/missing.txt")).bearer_auth(&call.grant).send().await.unwrap();
    assert_eq!(r.status(), 404);
    denied += 1;
    for f in ["in/overwrite.txt", "out/a.txt", "out/b.txt", "out/c.txt", "out/d.txt"] {
        assert!(!data.join("workspaces").join(&run).join(f).exists(), "{f} was written");
    }

    // More scope: the task waits in auth_required; an approver sees it and approves; the grant
    // rotates and the old one is dead.
    let r = http
        .post(&call.scope)
        .bearer_auth(&call.grant)
        .json(&json!({ "paths": ["out/extra/**", "ref/**"], "reason": "needs the reference data" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let req: Value = r.json().await.unwrap();
    let t: Value = gw.get(&format!("/tasks/{run}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(t["status"], "auth_required", "{t}");
    let r = gw.get("/approvals").send().await.unwrap();
    assert_eq!(r.status(), 403, "the caller is not an approver");
    let inbox: Value =
        http.get(format!("{}/approvals", gw.base)).bearer_auth(boss_key).send().await.unwrap().json().await.unwrap();
    assert_eq!(inbox["pending"][0]["id"], req["id"]);
    assert_eq!(inbox["pending"][0]["paths"], json!(["out/extra/**", "ref/**"]));
    let r = http
        .post(format!("{}/approvals/{}", gw.base, req["id"].as_str().unwrap()))
        .bearer_auth(boss_key)
        .json(&json!({ "decision": "approve" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let decided: Value = http
        .get(format!("{}?wait=5", req["poll"].as_str().unwrap()))
        .bearer_auth(&call.grant)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(decided["status"], "approved", "{decided}");
    let new_grant = decided["grant"].as_str().unwrap().to_string();
    let r = http.put(ws("out/extra/more.txt")).bearer_auth(&call.grant).body("x").send().await.unwrap();
    assert_eq!(r.status(), 403, "the prior grant was replaced");
    let r = http.put(ws("out/extra/more.txt")).bearer_auth(&new_grant).body("more").send().await.unwrap();
    assert_eq!(r.status(), 200);

    // A second request, denied.
    let r = http
        .post(&call.scope)
        .bearer_auth(&new_grant)
        .json(&json!({ "paths": ["secret/**"], "reason": "curious" }))
        .send()
        .await
        .unwrap();
    let req2: Value = r.json().await.unwrap();
    let r = http
        .post(format!("{}/approvals/{}", gw.base, req2["id"].as_str().unwrap()))
        .bearer_auth(boss_key)
        .json(&json!({ "decision": "deny", "reason": "not needed" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let decided: Value = http
        .get(format!("{}?wait=5", req2["poll"].as_str().unwrap()))
        .bearer_auth(&new_grant)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((decided["status"].as_str(), decided["reason"].as_str()), (Some("denied"), Some("not needed")));

    // The agent answers; the run ends sealed with everything in order.
    call.finish.send(()).unwrap();
    let v = gw.verified_receipt(&run).await;
    assert_eq!(v.status, RunStatus::Completed);
    let mut expected = vec!["task.accepted", "task.status", "workspace.written", "workspace.read", "workspace.read"];
    expected.extend(std::iter::repeat_n("workspace.denied", denied));
    expected.extend([
        "scope.requested",
        "task.status",
        "scope.granted",
        "task.status",
        "workspace.denied",
        "workspace.written",
        "scope.requested",
        "task.status",
        "scope.denied",
        "task.status",
        "task.completed",
        "receipt.sealed",
    ]);
    assert_eq!(kinds(&v), expected);
    let entries = v.entries();
    let granted = entries.iter().find(|(_, e)| e.kind().as_str() == "scope.granted").unwrap();
    let attrs = granted.1.event.attrs_json();
    assert_eq!(attrs["prior_grant"], claims["jti"]);
    assert_eq!(attrs["approver"], "boss");
    assert_eq!(entries[0].1.grant.as_deref(), claims["jti"].as_str(), "entries carry the grant id");
    assert_eq!(entries.last().unwrap().1.grant.as_deref(), attrs["new_grant"].as_str());
    // No token ever reached the log.
    for (_, e) in &entries {
        let text = serde_json::to_string(&e.to_json()).unwrap();
        assert!(!text.contains(&call.grant) && !text.contains(&new_grant), "a token in the log: {text}");
    }
    // After the run, the workspace is closed to its grant.
    let r = http.get(ws("out/report.md")).bearer_auth(&new_grant).send().await.unwrap();
    assert_eq!(r.status(), 409);

    // An eval by the caller and a review by the approver; each seals the run again.
    let r = gw
        .post(&format!("/runs/{run}/eval"))
        .json(&json!({ "rubric": "format", "score_milli": 875, "failures": ["no title"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = gw.post(&format!("/runs/{run}/review")).json(&json!({ "notes": "fine" })).send().await.unwrap();
    assert_eq!(r.status(), 403, "only approvers review");
    let r = http
        .post(format!("{}/runs/{run}/review", gw.base))
        .bearer_auth(boss_key)
        .json(&json!({ "notes": "looks right" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v = gw.verified_receipt(&run).await;
    let k = kinds(&v);
    assert_eq!(
        k[k.len() - 5..],
        ["receipt.sealed", "eval.scored", "receipt.sealed", "review.signed", "receipt.sealed"],
        "the newest seal covers the eval and the review"
    );
    assert_eq!(v.status, RunStatus::Completed);
    let entries = v.entries();
    let review = &entries[entries.len() - 2].1.event.attrs_json();
    assert_eq!((review["approver"].as_str(), review["notes"].as_str()), (Some("boss"), Some("looks right")));
}
