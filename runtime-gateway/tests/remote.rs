//! The gateway writing to a real `ledger-server` over gRPC: the ledger is killed mid-run and
//! restarted, and nothing the gateway accepted is lost; the gateway itself is killed while its
//! spool holds entries, starts again while the ledger is still away, and replays them once it is
//! back; a full spool refuses new tasks.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Ledger, Proc, free_port, gateway_with, kinds, poll};
use ledger_core::{LogDescriptor, RunStatus};
use serde_json::{Value, json};

/// SIGKILL (dropping a `Proc` kills it).
fn kill(p: Proc) {
    drop(p);
}

/// The run's receipt once the ledger serves it (each ask waits up to 2 s for it there).
async fn receipt_when_forwarded(gw: &common::Gw, run: &str) -> Vec<u8> {
    poll(&format!("the receipt of {run}"), Duration::from_secs(20), Duration::from_millis(100), || async {
        let r = gw.get(&format!("/runs/{run}/receipt?wait=2")).send().await.unwrap();
        match r.status().as_u16() {
            200 => Some(r.bytes().await.unwrap().to_vec()),
            _ => None,
        }
    })
    .await
}

/// The task once it has ended: its event stream ends when its last event is published.
async fn wait_done(gw: &common::Gw, task: &str) -> Value {
    assert_eq!(gw.follow_sse(task, Duration::from_secs(30), |_| false).await, None);
    gw.get(&format!("/tasks/{task}")).send().await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ledger_stopped_mid_run_and_restarted_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger { data: dir.path().join("ledger"), http: free_port(), grpc: free_port() };
    let server = ledger.start();
    let token = ledger.ingest_token();
    let gw_data = dir.path().join("gw");
    let grpc_url = format!("http://127.0.0.1:{}", ledger.grpc);
    let args = |max: &'static str| {
        vec![
            "--ledger".to_string(),
            grpc_url.clone(),
            "--ledger-token".into(),
            token.clone(),
            "--data".into(),
            gw_data.to_str().unwrap().to_string(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--spool-max-bytes".into(),
            max.into(),
        ]
    };
    let a = args("1000000");
    let gw = gateway_with(&gw_data, &a.iter().map(String::as_str).collect::<Vec<_>>());

    // A run in progress when the ledger dies.
    let r = gw
        .post("/tasks")
        .json(&json!({ "skill": "slow", "input": { "steps": 8, "delay_ms": 100 } }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let slow = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    // Killed once the run has made progress (its first steps went to the ledger).
    let progress = |v: &Value| v.to_string().contains("\"progress\"");
    assert!(gw.follow_sse(&slow, Duration::from_secs(30), progress).await.is_some(), "the run made progress");
    kill(server);

    // It finishes, recorded into the spool; a new run is accepted and completes meanwhile too.
    assert_eq!(wait_done(&gw, &slow).await["status"], "completed");
    let (status, body) = gw.invoke("echo", json!({ "text": "while the ledger is down" })).await;
    assert_eq!(status, 200, "{body}");
    let echo = body["run"].as_str().unwrap().to_string();
    let health: Value = gw.get("/healthz").send().await.unwrap().json().await.unwrap();
    assert!(health["spool"].as_u64().unwrap() > 0, "entries wait in the spool: {health}");
    let metrics = gw.get("/metrics").send().await.unwrap().text().await.unwrap();
    let gauge = |name: &str| -> f64 {
        let line = metrics.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("{metrics}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert!(gauge("gateway_spool_batches") > 0.0, "{metrics}");
    assert!(gauge("gateway_ledger_lag_seconds") > 0.0, "the oldest spooled batch has waited: {metrics}");
    let r = gw.get(&format!("/runs/{echo}/receipt?wait=0")).send().await.unwrap();
    assert_eq!(r.status(), 503, "no receipt while the seal waits in the spool");

    // The ledger comes back on the same data: the spool drains in order, both runs are whole.
    let server = ledger.start();
    let desc = ledger.descriptor().await;
    let desc_path = dir.path().join("log.json");
    std::fs::write(&desc_path, serde_json::to_vec(&desc).unwrap()).unwrap();
    let verifier = |bytes: &[u8]| common::verify(&desc_path, bytes);
    let v = verifier(&receipt_when_forwarded(&gw, &slow).await);
    assert_eq!(v.status, RunStatus::Completed);
    let k = kinds(&v);
    assert_eq!(k.iter().filter(|k| *k == "skill.progress").count(), 8, "{k:?}");
    assert_eq!(k.last().unwrap(), "receipt.sealed");
    let v = verifier(&receipt_when_forwarded(&gw, &echo).await);
    assert_eq!(v.status, RunStatus::Completed);
    let health: Value = gw.get("/healthz").send().await.unwrap().json().await.unwrap();
    assert_eq!(health["spool"], 0);

    // Now the gateway dies with entries in its spool; the next start replays them.
    kill(server);
    let (status, body) = gw.invoke("report", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let report = body["run"].as_str().unwrap().to_string();
    let common::Gw { proc, .. } = gw;
    kill(proc);
    // It starts again while the ledger is still away (its descriptor and identity remembered from
    // the last start) and takes new runs into the spool; then the ledger comes back.
    let gw = gateway_with(&gw_data, &a.iter().map(String::as_str).collect::<Vec<_>>());
    let (status, body) = gw.invoke("echo", json!({ "text": "started while the ledger was away" })).await;
    assert_eq!(status, 200, "{body}");
    let offline = body["run"].as_str().unwrap().to_string();
    let server = ledger.start();
    assert_eq!(verifier(&receipt_when_forwarded(&gw, &offline).await).status, RunStatus::Completed);
    let v = verifier(&receipt_when_forwarded(&gw, &report).await);
    assert_eq!(
        kinds(&v),
        [
            "task.accepted",
            "task.status",
            "skill.progress",
            "artifact.added",
            "artifact.added",
            "task.completed",
            "receipt.sealed"
        ]
    );
    drop(gw);

    // A spool that is full refuses new tasks rather than running them unrecorded.
    let small = args("3000");
    let gw = gateway_with(&gw_data, &small.iter().map(String::as_str).collect::<Vec<_>>());
    kill(server);
    let mut refused = None;
    for _ in 0..40 {
        let (status, body) = gw.invoke("echo", json!({ "text": "x".repeat(200) })).await;
        if status == 503 {
            refused = Some(body);
            break;
        }
        assert_eq!(status, 200, "{body}");
    }
    let body = refused.expect("the spool fills up");
    assert_eq!(body["error"]["code"], "recording_unavailable");
    assert!(body["error"]["message"].as_str().unwrap().contains("spool is full"), "{body}");
    assert!(Path::new(&gw_data.join("spool")).is_dir());
}

#[tokio::test(flavor = "multi_thread")]
async fn after_an_offline_start_a_different_ledger_gets_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (http, grpc) = (free_port(), free_port());
    let first = Ledger { data: dir.path().join("first"), http, grpc };
    let server = first.start();
    let token = first.ingest_token();
    let gw_data = dir.path().join("gw");
    let args = [
        "--ledger".to_string(),
        format!("http://127.0.0.1:{grpc}"),
        "--ledger-token".into(),
        token,
        "--data".into(),
        gw_data.to_str().unwrap().to_string(),
        "--listen".into(),
        "127.0.0.1:0".into(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let gw = gateway_with(&gw_data, &args);
    drop(gw);
    kill(server);

    // The gateway starts while the ledger is away and spools a run.
    let gw = gateway_with(&gw_data, &args);
    let (status, body) = gw.invoke("echo", json!({ "text": "for the first log" })).await;
    assert_eq!(status, 200, "{body}");
    let run = body["run"].as_str().unwrap().to_string();

    // Another log comes up at the same address (same principals, its own key).
    let second = Ledger { data: dir.path().join("second"), http, grpc };
    std::fs::create_dir_all(&second.data).unwrap();
    std::fs::copy(first.data.join("server.toml"), second.data.join("server.toml")).unwrap();
    let _server = second.start();
    assert_ne!(second.descriptor().await, first_descriptor(&gw_data));

    // The gateway sees it is not its log: it forwards nothing and takes no new task.
    let body = poll("new tasks are refused", Duration::from_secs(10), Duration::from_millis(50), || async {
        let (status, body) = gw.invoke("echo", json!({ "text": "more" })).await;
        (status == 503).then_some(body)
    })
    .await;
    assert_eq!(body["error"]["code"], "recording_unavailable", "{body}");
    let r = reqwest::get(format!("http://127.0.0.1:{http}/runs/{run}")).await.unwrap();
    assert!(r.status() == 404 || r.status() == 401, "the other log got nothing of the run: {}", r.status());
    let spooled = std::fs::read_dir(gw_data.join("spool"))
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().ends_with(".seg") && e.metadata().unwrap().len() > 0);
    assert!(spooled, "the spool is kept for the operator");
}

fn first_descriptor(gw_data: &Path) -> LogDescriptor {
    let v: Value = serde_json::from_slice(&std::fs::read(gw_data.join("spool/ledger.json")).unwrap()).unwrap();
    serde_json::from_value(v["descriptor"].clone()).unwrap()
}

/// A TLS front for the ledger's plaintext gRPC port, as a TLS-terminating proxy would be: its
/// port, and the PEM of the self-signed certificate it presents for `localhost`.
async fn tls_front(backend: u16) -> (u16, String) {
    use tokio_rustls::rustls;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into());
    let mut cfg = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![made.cert.der().clone()], key)
        .unwrap();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await
                    && let Ok(mut back) = tokio::net::TcpStream::connect(("127.0.0.1", backend)).await
                {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut back).await;
                }
            });
        }
    });
    (port, made.cert.pem())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ledger_behind_tls_is_reached_with_its_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger { data: dir.path().join("ledger"), http: free_port(), grpc: free_port() };
    let _server = ledger.start();
    let (port, ca) = tls_front(ledger.grpc).await;
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, ca).unwrap();
    let gw_data = dir.path().join("gw");
    let url = format!("https://localhost:{port}");
    let token = ledger.ingest_token();
    let base =
        ["--ledger", &url, "--ledger-token", &token, "--data", gw_data.to_str().unwrap(), "--listen", "127.0.0.1:0"];

    // Without the CA the certificate is not trusted, and the gateway says so and does not start.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_runtime-gateway")).args(base).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("asking the ledger at https://localhost"), "{err}");

    let mut args = base.to_vec();
    args.extend(["--ledger-ca", ca_path.to_str().unwrap()]);
    let gw = gateway_with(&gw_data, &args);
    let (status, body) = gw.invoke("echo", json!({ "text": "over TLS" })).await;
    assert_eq!(status, 200, "{body}");
    let desc_path = dir.path().join("log.json");
    std::fs::write(&desc_path, serde_json::to_vec(&ledger.descriptor().await).unwrap()).unwrap();
    let v = common::verify(&desc_path, &receipt_when_forwarded(&gw, body["run"].as_str().unwrap()).await);
    assert_eq!(v.status, RunStatus::Completed);
}

/// The run search (`GET /v1/runs`) of a gateway whose ledger is a `ledger-server`: it asks
/// `ListRuns` with the filters and gets each run's summary; the caller's own runs page by cursor.
#[tokio::test(flavor = "multi_thread")]
async fn the_run_search_reads_the_remote_ledgers_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger { data: dir.path().join("ledger"), http: free_port(), grpc: free_port() };
    let _server = ledger.start();
    let token = ledger.ingest_token();
    let gw_data = dir.path().join("gw");
    let url = format!("http://127.0.0.1:{}", ledger.grpc);
    let args =
        ["--ledger", &url, "--ledger-token", &token, "--data", gw_data.to_str().unwrap(), "--listen", "127.0.0.1:0"];
    let gw = gateway_with(&gw_data, &args);
    let mut runs = Vec::new();
    for (skill, input) in [("echo", json!({ "text": "a" })), ("fail", json!({})), ("echo", json!({ "text": "b" }))] {
        let (_, body) = gw.invoke(skill, input).await;
        let run = body["run"].as_str().unwrap().to_string();
        receipt_when_forwarded(&gw, &run).await;
        runs.push(run);
    }
    let gw = &gw;
    let search = |query: String| async move {
        let r = gw.get(&format!("/v1/runs?{query}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{query}");
        r.json::<Value>().await.unwrap()
    };
    let names = |v: &Value| -> Vec<String> {
        v["runs"].as_array().unwrap().iter().map(|r| r["run"].as_str().unwrap().to_string()).collect()
    };
    let echo = search("skill=echo&summary=true".into()).await;
    assert_eq!(names(&echo), vec![runs[2].clone(), runs[0].clone()]);
    assert_eq!(
        (echo["runs"][0]["status"].as_str(), echo["runs"][0]["skill"].as_str()),
        (Some("completed"), Some("echo"))
    );
    let failed = search("status=failed&summary=true".into()).await;
    assert_eq!(names(&failed), vec![runs[1].clone()]);
    assert!(failed["runs"][0]["sealed"]["index"].is_u64(), "{failed}");
    // Every run of the caller, one per page.
    let (mut seen, mut query) = (Vec::new(), "all=true&limit=1".to_string());
    loop {
        let page = search(query.clone()).await;
        seen.extend(names(&page));
        match page["cursor"].as_str() {
            Some(c) => query = format!("all=true&limit=1&cursor={c}"),
            None => break,
        }
        assert!(seen.len() <= 3, "{seen:?}");
    }
    assert_eq!(seen, vec![runs[2].clone(), runs[1].clone(), runs[0].clone()]);
    // The log itself is the ledger service's: not served here, and not offered to the dashboard.
    let r = gw.get("/v1/checkpoint").send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "not_embedded");
    let config: Value = gw.get("/app/config.json").send().await.unwrap().json().await.unwrap();
    assert!(config["endpoints"]["checkpoint"].is_null() && config["endpoints"]["runs"] == "/v1/runs", "{config}");
}
