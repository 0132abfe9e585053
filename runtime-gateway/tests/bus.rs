//! The gateway's bus sink against a real nats-server and a small sequencer in the test: the
//! sequencer follows the ingest stream, appends each batch to a `ledger-server` running in this
//! process (the read replica) and publishes the outcome as a result message. Appends are
//! acknowledged as `Streamed` at their stream position, in append order; a batch the ledger
//! refuses lands in `rejected.jsonl` and is counted; reads go to a replica list whose first URL
//! is dead; payload bytes are refused with the reason. And the real thing: the gateway binary
//! with `--bus`, in front of `ledger-server --bus` (a signer and a keyless read replica), serves
//! a run whose receipt verifies under the log's descriptor.

mod common;
#[path = "../../ledger-bus/tests/common/mod.rs"]
mod nats;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer};
use base64::Engine as _;
use futures_util::StreamExt as _;
use ledger_bus::results::{BatchResult, Refusal, result_msg_id};
use ledger_bus::{LogName, Topology, provision};
use ledger_core::{Entry, Event, Log, LogConfig, MemStore, NamedKey, RunId};
use runtime_gateway::ledger::bus::{BusConfig, BusLedger, REJECTED};
use runtime_gateway::ledger::{self, Batch, Durable, LedgerSink};
use tokio::sync::watch;

const TOKEN: &str = "bus-test-token";

fn registration(seq: u64, key: &NamedKey) -> Vec<u8> {
    Entry {
        ts: 1 + seq as i64,
        run: RunId::identity(key.name()).unwrap(),
        seq,
        actor: key.name().into(),
        event: Event::IdentityRegistered { public_key: key.public_key() },
        grant: None,
        payload: None,
    }
    .encode()
}

/// A ledger-server in this process on a fresh in-memory log: its HTTP and gRPC addresses.
async fn replica(dir: &std::path::Path) -> ledger_server::Bound {
    let log = Log::open(
        Arc::new(MemStore::new()),
        NamedKey::from_seed("bus.test/log", [3; 32]).unwrap(),
        LogConfig { checkpoint_interval: Duration::from_millis(50), ..LogConfig::default() },
    )
    .unwrap();
    let principal = ledger_server::auth::Principal {
        name: "gw".into(),
        role: ledger_server::auth::Role::Ingest,
        token_sha256: ledger_server::auth::token_hash_hex(TOKEN),
        identities: vec!["gw-1".into()],
        callers: vec![],
    };
    let settings = ledger_server::config::Settings {
        data: dir.to_path_buf(),
        origin: None,
        hash: None,
        checkpoint_interval: Duration::from_millis(50),
        http: "127.0.0.1:0".parse().unwrap(),
        grpc: "127.0.0.1:0".parse().unwrap(),
        max_body_bytes: 1 << 20,
        limits: ledger_server::limits::Limits::default(),
        principals: vec![principal],
        payloads: Default::default(),
        cosigner: None,
    };
    let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(ledger_server::serve(settings, log, move |b| bound_tx.send(b).unwrap(), std::future::pending()));
    bound_rx.await.unwrap()
}

/// The test's sequencer: every ingest message, in stream order, appended through the replica's
/// HTTP API, its outcome published as the result; `applied` is the last position done.
fn sequencer(js: jetstream::Context, name: LogName, http: std::net::SocketAddr, applied: watch::Sender<u64>) {
    tokio::spawn(async move {
        let stream = js.get_stream(name.ingest_stream()).await.unwrap();
        let c = stream.create_consumer(consumer::pull::OrderedConfig::default()).await.unwrap();
        let mut messages = c.messages().await.unwrap();
        let client = reqwest::Client::new();
        while let Some(m) = messages.next().await {
            let m = m.unwrap();
            let position = m.info().unwrap().stream_sequence;
            let gateway = m.subject.rsplit('.').next().unwrap().to_string();
            // A payload: its bytes checked against the header, nothing appended.
            let payload = m.headers.as_ref().and_then(|h| h.get(ledger_bus::names::PAYLOAD_HEADER));
            if let Some(hash) = payload {
                assert_eq!(hash.as_str(), hex::encode(blake3::hash(&m.payload).as_bytes()));
                let mut h = HeaderMap::new();
                h.insert("Nats-Msg-Id", result_msg_id(position).as_str());
                let result = BatchResult { position, outcome: Ok(Vec::new()) };
                let subject = name.result_subject(&gateway);
                js.publish_with_headers(subject, h, result.to_json().into()).await.unwrap().await.unwrap();
                applied.send_replace(position);
                continue;
            }
            let entries = ledger_core::bus::decode_batch(&m.payload).unwrap();
            let body = serde_json::json!({
                "entries": entries.iter().map(|e| base64::engine::general_purpose::STANDARD.encode(e)).collect::<Vec<_>>()
            });
            let r =
                client.post(format!("http://{http}/v1/entries")).bearer_auth(TOKEN).json(&body).send().await.unwrap();
            let ok = r.status().is_success();
            let v: serde_json::Value = r.json().await.unwrap();
            let outcome = if ok {
                Ok(v["indices"].as_array().unwrap().iter().map(|i| i.as_u64().unwrap()).collect())
            } else {
                Err(Refusal {
                    code: v["error"]["code"].as_str().unwrap().into(),
                    message: v["error"]["message"].as_str().unwrap().into(),
                })
            };
            let mut h = HeaderMap::new();
            h.insert("Nats-Msg-Id", result_msg_id(position).as_str());
            let result = BatchResult { position, outcome };
            js.publish_with_headers(name.result_subject(&gateway), h, result.to_json().into())
                .await
                .unwrap()
                .await
                .unwrap();
            applied.send_replace(position);
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_streamed_refusals_kept_and_reads_fail_over_to_a_live_replica() {
    let dir = tempfile::tempdir().unwrap();
    let nats = nats::Nats::single();
    let js = nats.jetstream().await;
    let name = LogName::parse("main").unwrap();
    provision(&js, std::slice::from_ref(&name), &Topology { replicas: 1, ..Topology::default() }).await.unwrap();
    let bound = replica(&dir.path().join("replica")).await;
    let (applied_tx, mut applied) = watch::channel(0);
    sequencer(js.clone(), name.clone(), bound.http, applied_tx);

    // The first replica is dead (nothing listens there): reads go to the next.
    let dead = format!("http://127.0.0.1:{}", common::free_port());
    let data = dir.path().join("gw");
    let cfg = |gateway: &str| BusConfig {
        servers: nats.urls(),
        log: "main".into(),
        gateway: gateway.into(),
        replicas: vec![dead.clone(), format!("http://{}", bound.grpc)],
        token: TOKEN.into(),
        data: data.clone(),
        user: None,
        max_unacknowledged: 100,
        max_payload_bytes: 64 << 20,
    };
    let e = BusLedger::connect(cfg("gw.1")).await.unwrap_err();
    assert!(format!("{e:#}").contains("one NATS subject token"), "{e:#}");
    let sink = BusLedger::connect(cfg("gw-1")).await.unwrap();
    assert_eq!(sink.descriptor().origin, "bus.test/log", "the descriptor read from the live replica");

    // Three batches in flight at once: the registration, a seq gap (refused), a re-registration.
    let key = NamedKey::from_seed("gw-1", [9; 32]).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for (i, seq) in [0u64, 5, 1].into_iter().enumerate() {
        let tx = tx.clone();
        sink.append(Batch::new(vec![registration(seq, &key)], seq == 0), Box::new(move |r| tx.send((i, r)).unwrap()));
    }
    let mut acks = Vec::new();
    for _ in 0..3 {
        acks.push(rx.recv().await.unwrap());
    }
    let order: Vec<usize> = acks.iter().map(|(i, _)| *i).collect();
    assert_eq!(order, [0, 1, 2], "acknowledged in append order");
    let positions: Vec<u64> = acks
        .into_iter()
        .map(|(_, r)| match r.unwrap() {
            Durable::Streamed { position } => position,
            d => panic!("not streamed: {d:?}"),
        })
        .collect();
    assert_eq!(positions, [1, 2, 3]);
    assert_eq!(sink.acknowledged(), 3);

    // Once the sequencer has applied them: the two registrations are in the log, read through
    // the live replica; the gap is in rejected.jsonl with the ledger's code, and counted.
    applied.wait_for(|&p| p >= 3).await.unwrap();
    let entries = sink.run_entries("id/gw-1").await.unwrap();
    assert_eq!(entries.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [0, 1]);
    assert_eq!(entries[0].1, registration(0, &key));
    let rejected = data.join(REJECTED);
    let deadline = Instant::now() + Duration::from_secs(20);
    while sink.refused_batches() < 1 {
        assert!(Instant::now() < deadline, "the refusal was not recorded in 20 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let text = std::fs::read_to_string(&rejected).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert_eq!(lines[0]["position"], 2);
    assert_eq!(lines[0]["code"], "seq_gap", "{text}");
    let kept = base64::engine::general_purpose::STANDARD.decode(lines[0]["entries"][0].as_str().unwrap()).unwrap();
    assert_eq!(kept, registration(5, &key));

    // Other reads through the list too: an unknown run is empty, open runs answer.
    assert!(sink.run_entries("no-such-run").await.unwrap().is_empty());
    sink.open_runs().await.unwrap();

    // A payload is streamed under its hash (the sequencer checks it); one larger than a message
    // of the server (its max_payload: 8 MB here), or than [payloads] max_bytes, is refused before
    // it is sent, saying which bound.
    let small = bytes::Bytes::from_static(b"an input");
    sink.put_payload(*blake3::hash(&small).as_bytes(), small).await.unwrap();
    let big = bytes::Bytes::from(vec![7u8; 9 << 20]);
    let e = sink.put_payload(*blake3::hash(&big).as_bytes(), big).await.unwrap_err();
    assert!(e.to_string().contains("the bus takes at most 8387584 bytes of payload in one message"), "{e}");
    let capped = BusLedger::connect(BusConfig { max_payload_bytes: 4, ..cfg("gw-3") }).await.unwrap();
    let e = capped.put_payload([1; 32], bytes::Bytes::from_static(b"12345")).await.unwrap_err();
    assert!(matches!(e, ledger_core::Error::PayloadTooLarge { len: 5, max: 4, .. }), "{e}");
    capped.close().await.unwrap();

    // Closed: what was acknowledged stays; nothing more is taken.
    sink.close().await.unwrap();
    let e = ledger::append(&sink, Batch::new(vec![registration(2, &key)], false)).await.unwrap_err();
    assert!(e.to_string().contains("closed"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_bus_away_new_runs_are_refused_once_enough_batches_wait() {
    let dir = tempfile::tempdir().unwrap();
    let mut nats = nats::Nats::single();
    let js = nats.jetstream().await;
    let name = LogName::parse("main").unwrap();
    provision(&js, std::slice::from_ref(&name), &Topology { replicas: 1, ..Topology::default() }).await.unwrap();
    let bound = replica(&dir.path().join("replica")).await;
    let sink = BusLedger::connect(BusConfig {
        servers: nats.urls(),
        log: "main".into(),
        gateway: "gw-1".into(),
        replicas: vec![format!("http://{}", bound.grpc)],
        token: TOKEN.into(),
        data: dir.path().join("gw"),
        user: None,
        max_unacknowledged: 2,
        max_payload_bytes: 64 << 20,
    })
    .await
    .unwrap();
    nats.node("n1").kill();
    let key = NamedKey::from_seed("gw-1", [9; 32]).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    // Two wait (nothing takes them); a third opening a run is refused at once; a batch of a run
    // already accepted still waits, up to twice the bound.
    for (seq, opens) in [(0, true), (1, false), (2, true), (3, false), (4, false)] {
        let tx = tx.clone();
        sink.append(Batch::new(vec![registration(seq, &key)], opens), Box::new(move |r| tx.send((seq, r)).unwrap()));
    }
    assert_eq!(sink.backlog(), 4);
    // The refusal is answered at once (nothing of it is durable, so it waits for nothing).
    let (seq, refused) = rx.recv().await.unwrap();
    assert_eq!(seq, 2);
    let e = refused.unwrap_err();
    assert!(e.to_string().contains("2 batches wait for the bus to take them (at most 2)"), "{e}");
    assert!(rx.try_recv().is_err(), "nothing else is answered while the bus is away");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_without_a_live_replica_does_not_start() {
    let nats = nats::Nats::single();
    let js = nats.jetstream().await;
    let name = LogName::parse("main").unwrap();
    provision(&js, std::slice::from_ref(&name), &Topology { replicas: 1, ..Topology::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dead = format!("http://127.0.0.1:{}", common::free_port());
    let e = BusLedger::connect(BusConfig {
        servers: nats.urls(),
        log: "main".into(),
        gateway: "gw-1".into(),
        replicas: vec![dead],
        token: TOKEN.into(),
        data: dir.path().to_path_buf(),
        user: None,
        max_unacknowledged: 100,
        max_payload_bytes: 64 << 20,
    })
    .await
    .unwrap_err();
    assert!(format!("{e:#}").contains("asking the replicas"), "{e:#}");
    // A log that was never provisioned on the bus: said at start.
    let e = BusLedger::connect(BusConfig {
        servers: nats.urls(),
        log: "other".into(),
        gateway: "gw-1".into(),
        replicas: vec!["http://127.0.0.1:1".into()],
        token: TOKEN.into(),
        data: dir.path().to_path_buf(),
        user: None,
        max_unacknowledged: 100,
        max_payload_bytes: 64 << 20,
    })
    .await
    .unwrap_err();
    assert!(format!("{e:#}").contains("opening log other on the bus"), "{e:#}");
}

/// `ledger-server` with `args`, to completion; its stdout.
fn ledger_server(args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new(common::workspace_bin("ledger-server")).args(args).output().unwrap();
    assert!(out.status.success(), "ledger-server {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_on_a_bus_deployment_serves_runs_with_verified_receipts_and_survives_a_sigkill() {
    let nats = nats::Nats::single();
    let urls = nats.urls().join(",");
    let dir = tempfile::tempdir().unwrap();
    ledger_server(&["bus", "init", "--bus", &urls, "--log", "main", "--replicas", "1", "--lease-ttl-ms", "1500"]);
    let key_dir = dir.path().join("key");
    let descriptor = ledger_server(&["init", "--data", key_dir.to_str().unwrap(), "--origin", "bus.example/main"]);
    let descriptor_file = dir.path().join("main.json");
    std::fs::write(&descriptor_file, &descriptor).unwrap();
    let start = |name: &str| {
        let data = dir.path().join(name);
        std::fs::create_dir_all(&data).unwrap();
        if name == "signer" {
            std::fs::copy(key_dir.join("log.key"), data.join("log.key")).unwrap();
        }
        let data = data.to_str().unwrap().to_owned();
        common::Proc::start(
            &common::workspace_bin("ledger-server"),
            &[
                "--data",
                &data,
                "--http",
                "127.0.0.1:0",
                "--grpc",
                "127.0.0.1:0",
                "--bus",
                &urls,
                "--bus-name",
                name,
                "--checkpoint-interval-ms",
                "50",
                "--log-descriptor",
                descriptor_file.to_str().unwrap(),
            ],
            "listening grpc",
        )
    };
    let _signer = start("signer");
    let replica = start("replica");
    let token: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("replica/tokens.json")).unwrap()).unwrap();
    let token = token["gateway"]["token"].as_str().unwrap().to_owned();

    let gw_data = dir.path().join("gw");
    let dead = format!("http://127.0.0.1:{}", common::free_port());
    let replica_url = replica.addr("listening grpc ");
    let gw = common::gateway_with(
        &gw_data,
        &[
            "--bus",
            &urls,
            "--bus-replica",
            &dead,
            "--bus-replica",
            &replica_url,
            "--ledger-token",
            &token,
            "--data",
            gw_data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
    );
    let (status, body) = gw.invoke("echo", serde_json::json!({ "text": "over the bus" })).await;
    assert_eq!(status, 200, "{body}");
    let run = body["run"].as_str().unwrap().to_string();
    let r = gw.get(&format!("/runs/{run}/receipt?wait=10")).send().await.unwrap();
    assert_eq!(r.status(), 200, "receipt of {run}: {}", r.text().await.unwrap());
    let v = common::verify(&descriptor_file, &r.bytes().await.unwrap());
    assert_eq!(v.status, ledger_core::RunStatus::Completed);
    assert_eq!(common::kinds(&v).last().map(String::as_str), Some("receipt.sealed"));
    let metrics = gw.get("/metrics").send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("gateway_ledger_refused_batches 0\n"), "{metrics}");
    assert!(!gw_data.join(REJECTED).exists(), "nothing was refused");

    // SIGKILL the gateway with a run in flight and runs just completed: after a restart on the
    // same data, every completed run's receipt verifies, and the one in flight is ended and
    // sealed (its entries came back from the replica, issue 22's recovery, over the bus).
    let slow = gw
        .rpc(
            "SendMessage",
            serde_json::json!({ "message": { "messageId": "slow-bus", "role": "ROLE_USER", "parts": [{ "text": "slow" }] },
                                "metadata": { "skill": "slow" }, "configuration": { "returnImmediately": true } }),
        )
        .await;
    let slow = slow["result"]["task"]["id"].as_str().unwrap_or_else(|| panic!("{slow}")).to_string();
    let mut completed = vec![run];
    for i in 0..10 {
        let (status, body) = gw.invoke("echo", serde_json::json!({ "text": format!("before the kill {i}") })).await;
        assert_eq!(status, 200, "{body}");
        completed.push(body["run"].as_str().unwrap().to_string());
    }
    let mut proc = gw.proc;
    proc.child.kill().unwrap();
    proc.child.wait().unwrap();
    drop(proc);
    let gw = common::gateway_with(
        &gw_data,
        &[
            "--bus",
            &urls,
            "--bus-replica",
            &replica_url,
            "--ledger-token",
            &token,
            "--data",
            gw_data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
    );
    for run in &completed {
        let r = gw.get(&format!("/runs/{run}/receipt?wait=10")).send().await.unwrap();
        assert_eq!(r.status(), 200, "receipt of {run} after the kill");
        assert_eq!(
            common::verify(&descriptor_file, &r.bytes().await.unwrap()).status,
            ledger_core::RunStatus::Completed
        );
    }
    let r = common::poll("the run in flight is ended", Duration::from_secs(20), Duration::from_millis(50), || async {
        let r = gw.get(&format!("/runs/{slow}/receipt?wait=1")).send().await.unwrap();
        if r.status() == 200 { Some(r.bytes().await.unwrap()) } else { None }
    })
    .await;
    let v = common::verify(&descriptor_file, &r);
    assert_eq!(v.status, ledger_core::RunStatus::Failed, "the run in flight at the kill ends failed");
    assert_eq!(common::kinds(&v).last().map(String::as_str), Some("receipt.sealed"));
}

/// A manifest of two demo agents: `demo` (echo) and `billing` (report, slow).
const TWO_AGENTS: &str = r#"
[[agent]]
name = "demo"
upstream = { kind = "demo" }
[[agent.skill]]
id = "echo"
name = "Echo"

[[agent]]
name = "billing"
upstream = { kind = "demo" }
[[agent.skill]]
id = "report"
name = "Report"
[[agent.skill]]
id = "slow"
name = "Slow"
"#;

/// The receipt of `run` from `gw` (as `token`), its log's origin, and the receipt verified
/// (ledger-core and the Python verifier) under the descriptor of that origin among `logs`.
async fn receipt_in_its_log(
    gw: &common::Gw,
    token: &str,
    run: &str,
    logs: &[std::path::PathBuf],
) -> (String, ledger_core::RunStatus) {
    let r = gw.http.get(format!("{}/runs/{run}/receipt?wait=10", gw.base)).bearer_auth(token).send().await.unwrap();
    assert_eq!(r.status(), 200, "receipt of {run}");
    let bytes = r.bytes().await.unwrap();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let origin = v["log"]["origin"].as_str().unwrap().to_string();
    let file = logs.iter().find(|f| std::fs::read_to_string(f).unwrap().contains(&origin)).unwrap();
    let status = common::verify(file, &bytes).status;
    // The auditor's CLI, given every descriptor, picks the one the receipt names.
    let receipt = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(receipt.path(), &bytes).unwrap();
    let mut verify = std::process::Command::new(common::workspace_bin("ledger-verify"));
    verify.arg("receipt").arg(receipt.path());
    for l in logs {
        verify.arg("--log").arg(l);
    }
    let out = verify.output().unwrap();
    assert!(out.status.success(), "ledger-verify: {}", String::from_utf8_lossy(&out.stderr));
    (origin, status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_logs_each_run_goes_to_its_agents_or_callers_log_and_verifies_there_after_a_sigkill_too() {
    let nats = nats::Nats::single();
    let urls = nats.urls().join(",");
    let dir = tempfile::tempdir().unwrap();
    let init = ["bus", "init", "--bus", &urls, "--log", "main", "--log", "billing", "--replicas", "1"];
    ledger_server(&[&init[..], &["--lease-ttl-ms", "1500"]].concat());
    // Every ledger-server reads one server.toml: the gateway's ingest token works on all.
    let (ingest, auditor) = ("a2al_sharded-test-ingest-token", "a2al_sharded-test-auditor-token");
    let server_toml = dir.path().join("server.toml");
    std::fs::write(
        &server_toml,
        format!(
            "[[principal]]\nname = \"gateway\"\nrole = \"ingest\"\ntoken_sha256 = \"{}\"\nidentities = [\"gateway\"]\n\n\
             [[principal]]\nname = \"auditor\"\nrole = \"auditor\"\ntoken_sha256 = \"{}\"\n",
            runtime_gateway::base::config::token_hash_hex(ingest),
            runtime_gateway::base::config::token_hash_hex(auditor)
        ),
    )
    .unwrap();
    // Each log its own key, origin, signer and replica.
    let mut procs = Vec::new();
    let mut replicas = Vec::new();
    let mut replica_http = Vec::new();
    let mut logs = Vec::new();
    for log in ["main", "billing"] {
        let key_dir = dir.path().join(format!("{log}-key"));
        let origin = format!("bus.example/{log}");
        let descriptor = ledger_server(&["init", "--data", key_dir.to_str().unwrap(), "--origin", &origin]);
        let descriptor_file = dir.path().join(format!("{log}.json"));
        std::fs::write(&descriptor_file, &descriptor).unwrap();
        for role in ["signer", "replica"] {
            let name = format!("{log}-{role}");
            let data = dir.path().join(&name);
            std::fs::create_dir_all(&data).unwrap();
            if role == "signer" {
                std::fs::copy(key_dir.join("log.key"), data.join("log.key")).unwrap();
            }
            let p = common::Proc::start(
                &common::workspace_bin("ledger-server"),
                &[
                    "--data",
                    data.to_str().unwrap(),
                    "--config",
                    server_toml.to_str().unwrap(),
                    "--http",
                    "127.0.0.1:0",
                    "--grpc",
                    "127.0.0.1:0",
                    "--bus",
                    &urls,
                    "--bus-log",
                    log,
                    "--bus-name",
                    &name,
                    "--checkpoint-interval-ms",
                    "50",
                    "--log-descriptor",
                    descriptor_file.to_str().unwrap(),
                ],
                "listening grpc",
            );
            if role == "replica" {
                replicas.push(p.addr("listening grpc "));
                replica_http.push(p.addr("listening http "));
            }
            procs.push(p);
        }
        logs.push(descriptor_file);
    }

    // The gateway: runs of agent `billing`, and every run of caller `tenant-b`, go to log
    // billing; the rest to main.
    let gw_data = dir.path().join("gw");
    std::fs::create_dir_all(&gw_data).unwrap();
    let (user, tenant) = ("a2al_local-user-token", "a2al_tenant-b-token");
    let hash = runtime_gateway::base::config::token_hash_hex;
    std::fs::write(
        gw_data.join("gateway.toml"),
        format!(
            "admins = [\"local-user\"]\n\n[[caller]]\nname = \"local-user\"\ntoken_sha256 = \"{}\"\n\n[[caller]]\nname = \"tenant-b\"\ntoken_sha256 = \"{}\"\n\n\
             [[bus_log]]\nname = \"billing\"\nreplicas = [\"{}\"]\nagents = [\"billing\"]\ncallers = [\"tenant-b\"]\n",
            hash(user),
            hash(tenant),
            replicas[1]
        ),
    )
    .unwrap();
    std::fs::write(
        gw_data.join("gateway-tokens.json"),
        serde_json::json!({ "local-user": { "token": user } }).to_string(),
    )
    .unwrap();
    let manifest = dir.path().join("agents.toml");
    std::fs::write(&manifest, TWO_AGENTS).unwrap();
    let gw_args = [
        "--bus",
        &urls,
        "--bus-replica",
        &replicas[0],
        "--ledger-token",
        ingest,
        "--manifest",
        manifest.to_str().unwrap(),
        "--data",
        gw_data.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ];
    let gw = common::gateway_with(&gw_data, &gw_args);

    let invoke = async |token: &str, skill: &str| {
        let url = format!("{}/invoke/{skill}", gw.base);
        let r = gw.http.post(url).bearer_auth(token).json(&serde_json::json!({})).send().await.unwrap();
        assert_eq!(r.status(), 200, "{skill}");
        let body: serde_json::Value = r.json().await.unwrap();
        body["run"].as_str().unwrap().to_string()
    };
    let echo = invoke(user, "echo").await;
    let report = invoke(user, "report").await;
    let tenant_echo = invoke(tenant, "echo").await;
    let mut done = Vec::new();
    for (run, token, origin) in [
        (&echo, user, "bus.example/main"),
        (&report, user, "bus.example/billing"),
        (&tenant_echo, tenant, "bus.example/billing"),
    ] {
        let (got, status) = receipt_in_its_log(&gw, token, run, &logs).await;
        assert_eq!(got, origin, "run {run}");
        assert_eq!(status, ledger_core::RunStatus::Completed);
        done.push((run.clone(), token, origin));
    }

    // Payloads travel on the bus: each input is served by its hash through the gateway (from the
    // replicas) and by each log's replica itself; an erasure reaches every replica.
    let http = reqwest::Client::new();
    let input_of = async |run: &str, token: &str| {
        let r = gw.http.get(format!("{}/runs/{run}/receipt", gw.base)).bearer_auth(token).send().await.unwrap();
        let v: serde_json::Value = r.json().await.unwrap();
        let first =
            base64::engine::general_purpose::STANDARD.decode(v["entries"][0]["entry"].as_str().unwrap()).unwrap();
        let Event::TaskAccepted { input_hash, .. } = Entry::decode(&first).unwrap().event else { panic!("{v}") };
        hex::encode(input_hash)
    };
    let from_replica = async |i: usize, hex: &str| {
        http.get(format!("{}/v1/payloads/{hex}", replica_http[i])).bearer_auth(auditor).send().await.unwrap()
    };
    for (run, token) in [(&echo, user), (&report, user), (&tenant_echo, tenant)] {
        let hex = input_of(run, token).await;
        let r = gw.http.get(format!("{}/v1/payloads/{hex}", gw.base)).bearer_auth(token).send().await.unwrap();
        assert_eq!(r.status(), 200, "the input of {run} through the gateway");
        assert_eq!(hex::encode(blake3::hash(&r.bytes().await.unwrap()).as_bytes()), hex);
        for i in 0..2 {
            let r = from_replica(i, &hex).await;
            assert_eq!(r.status(), 200, "the input of {run} from replica {i}");
            assert_eq!(hex::encode(blake3::hash(&r.bytes().await.unwrap()).as_bytes()), hex);
        }
    }
    let erased = input_of(&echo, user).await;
    let r = gw
        .post(&format!("/v1/payloads/{erased}/erase"))
        .json(&serde_json::json!({ "reason": "asked" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let index = r.json::<serde_json::Value>().await.unwrap()["index"].as_u64().unwrap();
    let again = gw
        .post(&format!("/v1/payloads/{erased}/erase"))
        .json(&serde_json::json!({ "reason": "twice" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        again.json::<serde_json::Value>().await.unwrap()["index"],
        index,
        "erasing twice answers the first index"
    );
    assert_eq!(gw.get(&format!("/v1/payloads/{erased}")).send().await.unwrap().status(), 410);
    for i in 0..2 {
        let r = from_replica(i, &erased).await;
        assert_eq!(r.status(), 410, "replica {i} holds the erased input no more");
    }

    // The dashboard is offered every log's descriptor to pin.
    let config: serde_json::Value = gw.get("/app/config.json").send().await.unwrap().json().await.unwrap();
    let offered: Vec<&str> =
        config["suggested_log_descriptors"].as_array().unwrap().iter().map(|d| d["origin"].as_str().unwrap()).collect();
    assert_eq!(offered, ["bus.example/main", "bus.example/billing"]);

    // ListTasks pages across both logs: each of local-user's tasks once, the total over both.
    let mut listed = Vec::new();
    let mut token = String::new();
    loop {
        let r = gw.rpc("ListTasks", serde_json::json!({ "pageSize": 1, "pageToken": token })).await;
        assert_eq!(r["result"]["totalSize"], 2, "{r}");
        listed.extend(r["result"]["tasks"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_string()));
        token = r["result"]["nextPageToken"].as_str().unwrap_or_default().to_string();
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(listed, [echo.clone(), report.clone()], "the default log first, then billing");

    // SIGKILL with a billing run in flight: after the restart the run is found in its log,
    // ended failed and sealed there; every completed receipt still verifies.
    let slow = gw
        .rpc(
            "SendMessage",
            serde_json::json!({ "message": { "messageId": "slow-sharded", "role": "ROLE_USER", "parts": [{ "text": "slow" }] },
                                "metadata": { "skill": "slow" }, "configuration": { "returnImmediately": true } }),
        )
        .await;
    let slow = slow["result"]["task"]["id"].as_str().unwrap_or_else(|| panic!("{slow}")).to_string();
    let mut proc = gw.proc;
    proc.child.kill().unwrap();
    proc.child.wait().unwrap();
    drop(proc);
    let gw = common::gateway_with(&gw_data, &gw_args);
    for (run, token, origin) in &done {
        assert_eq!(receipt_in_its_log(&gw, token, run, &logs).await.0, *origin);
    }
    common::poll("the run in flight is sealed", Duration::from_secs(20), Duration::from_millis(50), || async {
        let r = gw.get(&format!("/runs/{slow}/receipt?wait=1")).send().await.unwrap();
        (r.status() == 200).then_some(())
    })
    .await;
    let (origin, status) = receipt_in_its_log(&gw, user, &slow, &logs).await;
    assert_eq!((origin.as_str(), status), ("bus.example/billing", ledger_core::RunStatus::Failed));
    let metrics = gw.get("/metrics").send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("gateway_ledger_refused_batches 0\n"), "{metrics}");
    drop(procs);
}
