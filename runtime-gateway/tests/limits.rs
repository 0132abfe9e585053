//! The listener's limits through the real binary (gateway.toml `[server]`): a request over the
//! concurrency limit is answered at once `503` with `Retry-After`, a unary request whose agent
//! hangs is answered `504` after the request timeout, and a stream outlives the timeout.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Gw, gateway_with};
use futures_util::StreamExt as _;
use runtime_gateway::base::config::token_hash_hex;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt as _;
use tokio::sync::mpsc;

/// An agent that takes every call and never answers; each accepted connection is reported.
async fn hung_upstream() -> (String, mpsc::UnboundedReceiver<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/run", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let _ = tx.send(());
            // Read the request and whatever follows, answer nothing; the connection stays open.
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while conn.read(&mut buf).await.is_ok_and(|n| n > 0) {}
            });
        }
    });
    (url, rx)
}

fn start(dir: &Path, upstream: &str, server: &str) -> Gw {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let key = "a2ag_limits_test_key";
    std::fs::write(
        data.join("gateway.toml"),
        format!("[[caller]]\nname = \"local-user\"\ntoken_sha256 = \"{}\"\n[server]\n{server}\n", token_hash_hex(key)),
    )
    .unwrap();
    let manifest = dir.join("agents.toml");
    std::fs::write(
        &manifest,
        format!("[[agent]]\nname = \"hung\"\nupstream = {{ kind = \"http\", url = \"{upstream}\" }}\n[[agent.skill]]\nid = \"hang\"\nname = \"Hang\"\n"),
    )
    .unwrap();
    let mut gw = gateway_with(
        &data,
        &["--embedded", data.to_str().unwrap(), "--listen", "127.0.0.1:0", "--manifest", manifest.to_str().unwrap()],
    );
    gw.token = key.into();
    gw
}

#[tokio::test]
async fn over_the_concurrency_limit_is_503_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let (upstream, mut calls) = hung_upstream().await;
    let gw = start(dir.path(), &upstream, "concurrency_limit = 1\nretry_after_secs = 2");
    assert_eq!(gw.get("/healthz").send().await.unwrap().status(), 200, "one request at a time is served");

    // A blocking /invoke holds the only slot while its agent hangs.
    let held = gw.post("/invoke/hang").json(&json!({})).send();
    let held = tokio::spawn(held);
    calls.recv().await.expect("the agent was called");

    let started = Instant::now();
    let r = gw.get("/healthz").send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "2");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "overloaded", "{body}");
    assert!(started.elapsed() < Duration::from_secs(5), "refused at once, not queued: {:?}", started.elapsed());
    // Every route is under the same limit, authenticated or not.
    let r = gw.post("/invoke/hang").json(&json!({})).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.headers().contains_key("retry-after")), (503, true));
    held.abort();
}

#[tokio::test]
async fn a_hung_agent_is_answered_504_after_the_timeout_and_streams_are_not_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (upstream, mut calls) = hung_upstream().await;
    let gw = start(dir.path(), &upstream, "request_timeout_secs = 1");

    let started = Instant::now();
    let r = gw.post("/invoke/hang").json(&json!({})).send().await.unwrap();
    let waited = started.elapsed();
    assert_eq!(r.status(), 504);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "timed_out", "{body}");
    assert!(waited >= Duration::from_secs(1) && waited < Duration::from_secs(30), "answered after {waited:?}");
    calls.recv().await.expect("the run went to its agent");

    // The same call as a stream: its response starts at once, and it is still open after the
    // timeout has passed twice over.
    let r = gw.post("/invoke/hang").header("accept", "text/event-stream").json(&json!({})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let mut body = r.bytes_stream();
    let mut first = String::new();
    while !first.contains("\n\n") {
        first.push_str(&String::from_utf8_lossy(&body.next().await.expect("a first event").unwrap()));
    }
    assert!(first.contains("event: task"), "{first:?}");
    let opened = Instant::now();
    loop {
        match tokio::time::timeout_at((opened + Duration::from_secs(2)).into(), body.next()).await {
            Err(_) => break, // still open past the timeout
            Ok(Some(Ok(_))) => continue,
            Ok(other) => panic!("the stream ended after {:?}: {other:?}", opened.elapsed()),
        }
    }
    assert_eq!(gw.get("/healthz").send().await.unwrap().status(), 200);
}
