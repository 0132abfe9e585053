//! OpenTelemetry traces through the real binary: spans arrive at an OTLP/HTTP receiver served by
//! this test (decoded with the OTLP protobuf types), every span names its run, the spans of a
//! run form one trace, and the agent receives the `traceparent` of the gateway's call span.

mod common;

use std::collections::HashMap;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::post;
use common::gateway_with;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use runtime_gateway::base::config::token_hash_hex;
use serde_json::json;
use tokio::sync::mpsc;

/// An OTLP/HTTP trace receiver.
async fn collector() -> (String, mpsc::UnboundedReceiver<Span>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Router::new().route(
        "/v1/traces",
        post(move |body: axum::body::Bytes| {
            let tx = tx.clone();
            async move {
                let req = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf trace request");
                for rs in req.resource_spans {
                    for ss in rs.scope_spans {
                        for s in ss.spans {
                            tx.send(s).unwrap();
                        }
                    }
                }
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, rx)
}

/// A webhook agent that reports the `traceparent` it was called with.
async fn agent() -> (String, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Router::new().route(
        "/agent",
        post(move |headers: HeaderMap| {
            let tx = tx.clone();
            async move {
                let tp = headers.get("traceparent").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
                tx.send(tp).unwrap();
                axum::Json(json!({ "ok": true }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/agent", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

fn attr(s: &Span, key: &str) -> Option<String> {
    s.attributes.iter().find(|kv| kv.key == key).and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
        Any::StringValue(v) => Some(v.clone()),
        Any::IntValue(v) => Some(v.to_string()),
        other => Some(format!("{other:?}")),
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn every_span_names_its_run_and_the_agent_joins_the_trace() {
    let dir = tempfile::tempdir().unwrap();
    let (otlp, mut spans) = collector().await;
    let (hook, mut traceparents) = agent().await;
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let key = "a2ag_trace_test_key";
    std::fs::write(
        data.join("gateway.toml"),
        format!(
            "[[caller]]\nname = \"local-user\"\ntoken_sha256 = \"{}\"\n[telemetry]\notlp_endpoint = \"{otlp}\"\nservice_name = \"gw-under-test\"\n",
            token_hash_hex(key)
        ),
    )
    .unwrap();
    let manifest = dir.path().join("agents.toml");
    std::fs::write(
        &manifest,
        format!("[[agent]]\nname = \"hooked\"\nupstream = {{ kind = \"http\", url = \"{hook}\" }}\n[[agent.skill]]\nid = \"hooked\"\nname = \"Hooked\"\n"),
    )
    .unwrap();
    let mut gw = gateway_with(
        &data,
        &["--embedded", data.to_str().unwrap(), "--listen", "127.0.0.1:0", "--manifest", manifest.to_str().unwrap()],
    );
    gw.token = key.into();
    let mut runs = Vec::new();
    for _ in 0..2 {
        let (status, r) = gw.invoke("hooked", json!({ "x": 1 })).await;
        assert_eq!(status, 200, "{r}");
        runs.push(r["run"].as_str().unwrap().to_string());
    }
    let sent: Vec<String> = vec![traceparents.recv().await.unwrap(), traceparents.recv().await.unwrap()];

    // SIGTERM flushes the batched spans.
    assert!(gw.proc.terminate().success());
    let mut got: Vec<Span> = Vec::new();
    while let Ok(s) = spans.try_recv() {
        got.push(s);
    }
    for (run, tp) in runs.iter().zip(&sent) {
        let of_run: Vec<&Span> = got.iter().filter(|s| attr(s, "a2a_ledger.run").as_deref() == Some(run)).collect();
        let mut names: Vec<&str> = of_run.iter().map(|s| s.name.as_str()).collect();
        names.sort();
        assert_eq!(names, ["ledger.accept", "ledger.seal", "run", "upstream.call"], "spans of {run}");
        let root = of_run.iter().find(|s| s.name == "run").unwrap();
        assert!(root.parent_span_id.is_empty());
        assert_eq!(attr(root, "a2a_ledger.status").as_deref(), Some("completed"));
        assert_eq!(attr(root, "a2a_ledger.skill").as_deref(), Some("hooked"));
        assert_eq!(attr(root, "a2a_ledger.protocol").as_deref(), Some("https"));
        for s in &of_run {
            assert_eq!(s.trace_id, root.trace_id, "one trace per run");
            if s.name != "run" {
                assert_eq!(s.parent_span_id, root.span_id, "{} is a child of the run", s.name);
            }
        }
        // The agent got `00-<trace>-<the call span>-01`.
        let call = of_run.iter().find(|s| s.name == "upstream.call").unwrap();
        let parts: HashMap<usize, &str> = tp.split('-').enumerate().collect();
        assert_eq!(parts[&1], hex::encode(&root.trace_id), "{tp}");
        assert_eq!(parts[&2], hex::encode(&call.span_id), "{tp}");
    }
    assert_ne!(
        got.iter().find(|s| s.name == "run").unwrap().trace_id,
        got.iter().rfind(|s| s.name == "run").unwrap().trace_id
    );
    assert!(got.iter().all(|s| attr(s, "a2a_ledger.run").is_some()), "every span names its run");
}
