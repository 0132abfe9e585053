//! `ledger-server --bus`: a deployment of real processes on real nats-servers (issue 20).
//!
//! A signer and a standby (both with the log key) and read replicas (the descriptor only) follow
//! one ingest stream; a publisher in the test plays the gateways, publishing sealed runs with its
//! own message ids and publishing again, under the same id, whatever was not acknowledged. After
//! each fault the oracles are:
//! - nothing acknowledged is lost and nothing is in the tree twice: the tree holds exactly the
//!   identity plus every acknowledged run's entries, and every run reads back whole;
//! - every checkpoint ever published verifies, sizes and lease terms never go down, each one's
//!   stream line is where the tree reached its size, and each is consistent with the next (a
//!   consistency proof from a replica, checked here);
//! - receipts served by every replica and the standby verify, with ledger-core's verifier and the
//!   independent Python one;
//! - a replica rebuilt from the stream reaches the signer's root, and every store's fsck is clean.

mod common;
#[path = "../../ledger-bus/tests/common/mod.rs"]
mod nats;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream;
use common::*;
use futures_util::StreamExt;
use ledger_core::{Checkpoint, LogDescriptor, ReceiptVerifier, TreeHash};

/// The lease time of these deployments: short, so that failovers are quick.
const TTL_MS: u64 = 1500;

/// One deployment at a time: each is a nats cluster and four servers sharing two cores, and
/// failover times are asserted.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn ledger_server(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_ledger-server")).args(args).output().expect("ledger-server");
    assert!(out.status.success(), "ledger-server {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// The processes of one log's deployment.
struct Deployment {
    nats: nats::Nats,
    urls: String,
    dir: tempfile::TempDir,
    descriptor: LogDescriptor,
    descriptor_file: PathBuf,
    servers: BTreeMap<String, Server>,
}

impl Deployment {
    /// Provisions the log on `nats`, creates its key, starts the signer, its standby and two
    /// replicas, in that order (so `signer` holds the first term), and registers the test
    /// gateway's identity.
    async fn start(nats: nats::Nats) -> Deployment {
        let urls = nats.urls().join(",");
        let replicas = nats.nodes.len().to_string();
        let ttl = TTL_MS.to_string();
        ledger_server(&[
            "bus",
            "init",
            "--bus",
            &urls,
            "--log",
            "main",
            "--replicas",
            &replicas,
            "--lease-ttl-ms",
            &ttl,
        ]);
        let dir = tempfile::tempdir().unwrap();
        let key_dir = dir.path().join("key");
        let out = ledger_server(&[
            "init",
            "--data",
            key_dir.to_str().unwrap(),
            "--origin",
            "bus.example/main",
            "--hash",
            "sha256",
        ]);
        let descriptor: LogDescriptor = serde_json::from_slice(&out.stdout).unwrap();
        let descriptor_file = dir.path().join("main.json");
        std::fs::write(&descriptor_file, &out.stdout).unwrap();
        let mut d = Deployment { nats, urls, dir, descriptor, descriptor_file, servers: BTreeMap::new() };
        for name in ["signer", "standby"] {
            let data = d.dir.path().join(name);
            std::fs::create_dir_all(&data).unwrap();
            std::fs::copy(key_dir.join("log.key"), data.join("log.key")).unwrap();
            d.start_server(name);
            if name == "signer" {
                d.wait_for_term_of("signer").await;
            }
        }
        for name in ["replica-1", "replica-2"] {
            d.start_server(name);
        }
        // The test gateway's identity, as a gateway registers it before its first run.
        let js = d.nats.jetstream().await;
        let identity = ledger_core::bus::encode_batch(&[identity_entry(&gateway_key())]);
        publish(&js, "ledger.main.in.gateway", "gateway/identity", identity).await;
        d
    }

    fn data(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts (or restarts) the server `name` on its data directory.
    fn start_server(&mut self, name: &str) {
        let s = self.spawn_server(name);
        self.servers.insert(name.to_owned(), s);
    }

    /// The server `name` on its data directory, once it listens.
    fn spawn_server(&self, name: &str) -> Server {
        let data = self.data(name);
        let descriptor = self.descriptor_file.to_str().unwrap();
        let args =
            ["--bus", &self.urls, "--bus-name", name, "--checkpoint-interval-ms", "50", "--log-descriptor", descriptor];
        Server::start(&data, &args)
    }

    fn server(&self, name: &str) -> &Server {
        &self.servers[name]
    }

    /// SIGKILL.
    fn kill(&mut self, name: &str) {
        self.servers.remove(name).expect("running").kill();
    }

    /// The process holding the lease now, and its term's revision.
    async fn holder(&self) -> (String, u64) {
        let js = self.nats.jetstream().await;
        let kv = js.get_key_value("LEDGER_LEASES").await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(e)) = kv.entry("main").await
                && e.operation == jetstream::kv::Operation::Put
            {
                let v: serde_json::Value = serde_json::from_slice(&e.value).unwrap();
                return (v["holder"].as_str().unwrap().to_owned(), e.revision);
            }
            assert!(Instant::now() < deadline, "nobody holds the lease within 20 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `name` holds the lease (its name is the lease value's holder).
    async fn wait_for_term_of(&self, name: &str) -> u64 {
        let js = self.nats.jetstream().await;
        let kv = js.get_key_value("LEDGER_LEASES").await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(e)) = kv.entry("main").await
                && e.operation == jetstream::kv::Operation::Put
            {
                let v: serde_json::Value = serde_json::from_slice(&e.value).unwrap();
                if v["holder"] == name {
                    return e.revision;
                }
            }
            assert!(Instant::now() < deadline, "{name} holds no lease within 20 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn health(&self, name: &str) -> serde_json::Value {
        self.server(name).get("/healthz", None).await.json().await.unwrap()
    }

    /// Waits until every running server has applied the stream to its end and serves a
    /// checkpoint of the whole tree.
    async fn settle(&self) -> (u64, u64) {
        let js = self.nats.jetstream().await;
        let last = js.get_stream("LEDGER_main").await.unwrap().info().await.unwrap().state.last_sequence;
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut sizes = BTreeMap::new();
        for name in self.servers.keys() {
            loop {
                let h = self.health(name).await;
                if h["bus"]["position"].as_u64() == Some(last)
                    && h["checkpoint_size"].as_u64() == h["tree_size"].as_u64()
                {
                    sizes.insert(name.clone(), h["tree_size"].as_u64().unwrap());
                    break;
                }
                assert!(Instant::now() < deadline, "{name} has not settled at position {last}: {h}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let size = *sizes.values().next().unwrap();
        assert!(sizes.values().all(|s| *s == size), "servers disagree on the tree size: {sizes:?}");
        (last, size)
    }
}

/// What the test's gateways published and had acknowledged.
#[derive(Clone, Default)]
struct Published {
    /// Each acknowledged run and its number of entries.
    runs: BTreeMap<String, usize>,
    /// Messages acknowledged.
    acked: u64,
}

/// Publishes a message under `id` until the stream acknowledges it (a lost acknowledgement is
/// answered by publishing again under the same id: the stream stores it once).
async fn publish(js: &jetstream::Context, subject: &str, id: &str, body: Vec<u8>) -> jetstream::publish::PublishAck {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut h = HeaderMap::new();
        h.insert("Nats-Msg-Id", id);
        let sent = tokio::time::timeout(
            Duration::from_secs(2),
            js.publish_with_headers(subject.to_owned(), h, body.clone().into()),
        )
        .await;
        if let Ok(Ok(f)) = sent
            && let Ok(Ok(ack)) = tokio::time::timeout(Duration::from_secs(2), f).await
        {
            return ack;
        }
        assert!(Instant::now() < deadline, "message {id} not acknowledged within 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Publishes sealed runs one message each, as gateway `gateway`, until `stop`.
fn load(
    js: jetstream::Context,
    prefix: &'static str,
    published: Arc<Mutex<Published>>,
    stop: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let key = gateway_key();
        let mut i = 0u64;
        while !stop.is_cancelled() {
            let run = format!("{prefix}-{i}");
            let entries = common::run(TreeHash::Sha256, &run, &key, "alice@example.com", 1 + (i % 3) as usize);
            let body = ledger_core::bus::encode_batch(&entries);
            publish(&js, "ledger.main.in.gateway", &format!("gateway/{prefix}/{i}"), body).await;
            let mut p = published.lock().unwrap();
            p.runs.insert(run, entries.len());
            p.acked += 1;
            i += 1;
        }
    })
}

/// Every message on `subject` of the log's output stream so far.
async fn messages(js: &jetstream::Context, subject: &str) -> Vec<jetstream::Message> {
    let out = js.get_stream("LEDGER_main_OUT").await.unwrap();
    let config = jetstream::consumer::pull::OrderedConfig { filter_subject: subject.into(), ..Default::default() };
    let mut messages = out.create_consumer(config).await.unwrap().messages().await.unwrap();
    let mut all = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(500), messages.next()).await {
        all.push(m.unwrap());
    }
    all
}

/// Every checkpoint message published so far: (term header, note).
async fn checkpoints(js: &jetstream::Context) -> Vec<(u64, String)> {
    let term = |m: &jetstream::Message| m.headers.as_ref()?.get("A2A-Ledger-Lease")?.as_str().parse().ok();
    let all = messages(js, "ledger.main.cp").await;
    all.iter().map(|m| (term(m).expect("a term header"), String::from_utf8(m.payload.to_vec()).unwrap())).collect()
}

/// Every result published to the gateway `gateway`, by stream position.
async fn results(js: &jetstream::Context, gateway: &str) -> BTreeMap<u64, ledger_bus::results::BatchResult> {
    let mut all = BTreeMap::new();
    for m in messages(js, &format!("ledger.main.result.{gateway}")).await {
        let r = ledger_bus::results::BatchResult::from_json(&m.payload).unwrap();
        assert!(all.insert(r.position, r).is_none(), "a result published twice");
    }
    all
}

/// The oracles of the module docs, on the deployment as it stands.
async fn check(d: &Deployment, published: &Published) {
    let (_, size) = d.settle().await;
    let expected: usize = 1 + published.runs.values().sum::<usize>();
    assert_eq!(size, expected as u64, "the tree holds the identity and each acknowledged run once");
    let auditor = d.server("replica-1").token("auditor");

    // Every run reads back whole, from a replica.
    for (run, n) in published.runs.iter().step_by(7) {
        let r: serde_json::Value = d
            .server("replica-2")
            .get(&format!("/runs/{run}"), Some(&auditor_of(d, "replica-2")))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(r["entries"].as_array().map(Vec::len), Some(*n), "run {run}: {r}");
    }

    // Every checkpoint published: verifies, grows, never goes back a term, says where the tree
    // reached its size, and is consistent with the next.
    let js = d.nats.jetstream().await;
    let key = d.descriptor.verifier_key().unwrap();
    let notes = checkpoints(&js).await;
    assert!(!notes.is_empty(), "no checkpoint published");
    let mut last: Option<Checkpoint> = None;
    let mut last_term = 0;
    let replica = d.server("replica-1");
    for (term, note) in &notes {
        let cp = Checkpoint::open(note, &key).expect("every published note verifies under the log key");
        assert_eq!(cp.lease_term(), Some(*term), "lease line and header agree");
        assert!(*term >= last_term, "term {term} after {last_term}");
        let (stream, seq) = cp.stream_position().expect("a stream line");
        assert_eq!(stream, "LEDGER_main");
        assert!(seq >= 1 && seq <= published.acked + 10, "stream line {seq}");
        if let Some(prev) = &last {
            assert!(cp.size >= prev.size, "checkpoint {} after {}", cp.size, prev.size);
            if cp.size == prev.size {
                assert_eq!(cp.root, prev.root, "two notes of size {} with different roots", cp.size);
            } else {
                let p: serde_json::Value = replica
                    .get(&format!("/v1/proof/consistency?from={}&to={}", prev.size, cp.size), Some(&auditor))
                    .await
                    .json()
                    .await
                    .unwrap();
                let proof: Vec<ledger_core::Hash> = p["proof"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| B64.decode(h.as_str().unwrap()).unwrap().try_into().unwrap())
                    .collect();
                ledger_core::merkle::verify_consistency(
                    TreeHash::Sha256,
                    prev.size,
                    cp.size,
                    &prev.root,
                    &cp.root,
                    &proof,
                )
                .unwrap_or_else(|e| panic!("checkpoints {} and {} are not consistent: {e}", prev.size, cp.size));
            }
        }
        last_term = *term;
        last = Some(cp);
    }

    // Receipts from every process but the signer (the standby, the replicas), verified twice.
    let mut verifier = ReceiptVerifier::new(d.descriptor.clone()).unwrap();
    for name in d.servers.keys().filter(|n| *n != "signer") {
        let token = auditor_of(d, name);
        for run in published.runs.keys().rev().step_by(11).take(3) {
            let r = d.server(name).get(&format!("/runs/{run}/receipt?wait=10"), Some(&token)).await;
            assert_eq!(r.status(), 200, "{name}: the receipt of {run}");
            let bytes = r.bytes().await.unwrap();
            verifier.verify_json(&bytes).unwrap_or_else(|e| panic!("{name}'s receipt of {run}: {e}"));
            let f = d.dir.path().join(format!("receipt-{name}-{run}.json"));
            std::fs::write(&f, &bytes).unwrap();
            let (out, code) =
                python_verify(&["receipt", f.to_str().unwrap(), "--log", d.descriptor_file.to_str().unwrap()]);
            assert_eq!((code, &out["ok"]), (0, &serde_json::Value::Bool(true)), "{name}'s receipt of {run}: {out}");
        }
    }
}

fn auditor_of(d: &Deployment, name: &str) -> String {
    d.server(name).token("auditor")
}

/// A replica started on an empty directory reaches the signer's tree, and every store checks
/// clean once stopped.
async fn rebuild_and_fsck(mut d: Deployment) {
    let (_, size) = d.settle().await;
    d.start_server("replica-new");
    let (_, rebuilt) = d.settle().await;
    assert_eq!(rebuilt, size);
    let a = d.server("replica-new").get("/v1/checkpoint", None).await.text().await.unwrap();
    let b = d.server("standby").get("/v1/checkpoint", None).await.text().await.unwrap();
    let (a, b) = (
        Checkpoint::open(&a, &d.descriptor.verifier_key().unwrap()).unwrap(),
        Checkpoint::open(&b, &d.descriptor.verifier_key().unwrap()).unwrap(),
    );
    assert_eq!((a.size, a.root), (b.size, b.root), "the rebuilt replica serves the signer's root");
    let names: Vec<String> = d.servers.keys().cloned().collect();
    for name in names {
        let s = d.servers.remove(&name).unwrap();
        assert!(s.terminate().success(), "{name} did not stop cleanly");
        let mut fsck = Command::new(env!("CARGO_BIN_EXE_ledger-server"));
        fsck.args(["status", "--check", "--data"]).arg(d.data(&name));
        if name.starts_with("replica") {
            // A replica's directory holds no key: the pinned descriptor names the log.
            fsck.arg("--log-descriptor").arg(&d.descriptor_file);
        }
        let out = fsck.output().unwrap();
        assert!(out.status.success(), "fsck of {name}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bus_deployment_answers_gateways_refuses_writes_and_survives_its_signer() {
    let _one = ONE_AT_A_TIME.lock().await;
    let d = Deployment::start(nats::Nats::single()).await;
    let js = d.nats.jetstream().await;
    let key = gateway_key();

    // The gateway's identity, runs, and four refusals, each decided alike everywhere.
    let mut published = Published::default();
    for i in 0..20 {
        let run = format!("run-{i}");
        let entries = common::run(TreeHash::Sha256, &run, &key, "alice@example.com", 2);
        publish(&js, "ledger.main.in.gateway", &format!("gateway/t/{i}"), ledger_core::bus::encode_batch(&entries))
            .await;
        published.runs.insert(run, entries.len());
    }
    let gap = common::run(TreeHash::Sha256, "gap", &key, "alice@example.com", 2);
    let refused = [
        ("gap", ledger_core::bus::encode_batch(&gap[1..]), "seq_gap"),
        (
            "mallory",
            ledger_core::bus::encode_batch(&common::run(
                TreeHash::Sha256,
                "m",
                &ledger_core::NamedKey::from_seed("mallory", [9; 32]).unwrap(),
                "a",
                1,
            )),
            "actor_not_permitted",
        ),
        ("junk", b"\x82\x41a".to_vec(), "malformed_body"),
        ("empty", vec![0x80], "empty_batch"),
    ];
    let mut refused_at = BTreeMap::new();
    for (id, body, code) in &refused {
        let ack = publish(&js, "ledger.main.in.gateway", &format!("gateway/t/{id}"), body.clone()).await;
        refused_at.insert(ack.sequence, *code);
    }
    // The same message id again: the stream keeps the first.
    let again = publish(&js, "ledger.main.in.gateway", "gateway/t/3", b"other bytes".to_vec()).await;
    assert!(again.duplicate);
    published.acked = 25;

    // Every message answered on the gateway's result subject: indices, or the code.
    d.settle().await;
    let answers = results(&js, "gateway").await;
    assert_eq!(answers.len(), 25, "{answers:?}");
    for (position, r) in &answers {
        match (refused_at.get(position), &r.outcome) {
            (Some(code), Err(refusal)) => assert_eq!(refusal.code, *code, "{refusal:?}"),
            (None, Ok(indices)) => assert!(!indices.is_empty()),
            (want, got) => panic!("position {position}: expected {want:?}, got {got:?}"),
        }
    }
    let metrics = d.server("replica-1").get("/metrics", Some(&auditor_of(&d, "replica-1"))).await.text().await.unwrap();
    assert!(metrics.contains("ledger_bus_messages_total{outcome=\"refused\"} 4"), "{metrics}");
    assert!(metrics.contains("ledger_bus_refused_total{code=\"seq_gap\"} 1"), "{metrics}");

    // Writes go over the bus only.
    let signer = d.server("signer");
    let r = signer.post_json(&[identity_entry(&key)], &signer.token("gateway")).await;
    assert_eq!(r.status(), 409);
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "read_only", "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("ledger.main.in.<gateway>"), "{e}");

    // A read that needs more of the stream than a server has applied waits, then says so.
    let replica = d.server("replica-1");
    let token = auditor_of(&d, "replica-1");
    let ask = |min: &str| {
        replica.http_client.get(replica.url("/runs/run-1")).bearer_auth(&token).header("a2a-ledger-min-position", min)
    };
    assert_eq!(ask("3").send().await.unwrap().status(), 200);
    let r = ask("1000000").send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["error"]["code"], "not_caught_up");
    let r = ask("soon").send().await.unwrap();
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["error"]["code"], "bad_query");

    check(&d, &published).await;

    // The signer dies: the standby signs within the lease time, and ingest goes on.
    let mut d = d;
    let first = d.wait_for_term_of("signer").await;
    let before = d.health("standby").await["checkpoint_size"].as_u64().unwrap();
    let killed = Instant::now();
    d.kill("signer");
    let published = Arc::new(Mutex::new(published));
    let stop = tokio_util::sync::CancellationToken::new();
    let loader = load(js.clone(), "after", published.clone(), stop.clone());
    let second = d.wait_for_term_of("standby").await;
    assert!(second > first);
    loop {
        if d.health("standby").await["checkpoint_size"].as_u64().unwrap() > before {
            break;
        }
        assert!(killed.elapsed() < Duration::from_millis(TTL_MS) + Duration::from_secs(2), "no new checkpoint in time");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    d.start_server("signer"); // back, as the standby now
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.cancel();
    loader.await.unwrap();
    let published = std::mem::take(&mut *published.lock().unwrap());
    check(&d, &published).await;
    rebuild_and_fsck(d).await;
}

/// Waits until `published` has `more` acknowledged messages more than now.
async fn wait_for_acks(published: &Mutex<Published>, more: u64) {
    let target = published.lock().unwrap().acked + more;
    let deadline = Instant::now() + Duration::from_secs(60);
    while published.lock().unwrap().acked < target {
        assert!(
            Instant::now() < deadline,
            "ingest stalled at {} acknowledged messages",
            published.lock().unwrap().acked
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_three_node_cluster_each_process_dies_mid_ingest_and_nothing_acknowledged_is_lost() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut d = Deployment::start(nats::Nats::cluster()).await;
    let js = d.nats.jetstream().await;
    let published = Arc::new(Mutex::new(Published::default()));
    let nats_dir = d.nats.dir.path().to_owned();
    for (round, victim) in ["stream leader", "signer", "standby", "replica"].into_iter().enumerate() {
        let stop = tokio_util::sync::CancellationToken::new();
        let prefix: &'static str = ["r0", "r1", "r2", "r3"][round];
        let loader = load(js.clone(), prefix, published.clone(), stop.clone());
        wait_for_acks(&published, 20).await;
        eprintln!("round {round}: killing the {victim}");
        match victim {
            "stream leader" => {
                let leader = nats::stream_leader(&js, "LEDGER_main").await;
                d.nats.node(&leader).kill();
                wait_for_acks(&published, 20).await; // publishes resume under a new leader
                d.nats.node(&leader).restart(&nats_dir);
            }
            "signer" => {
                let (signer, term) = d.holder().await;
                let other = if signer == "signer" { "standby" } else { "signer" };
                let before = d.health(other).await["checkpoint_size"].as_u64().unwrap();
                let killed = Instant::now();
                d.kill(&signer);
                let next = d.wait_for_term_of(other).await;
                assert!(next > term);
                while d.health(other).await["checkpoint_size"].as_u64().unwrap() <= before {
                    let waited = killed.elapsed();
                    assert!(
                        waited < Duration::from_millis(TTL_MS) + Duration::from_secs(3),
                        "no new checkpoint after {waited:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                d.start_server(&signer);
            }
            "standby" => {
                let (signer, _) = d.holder().await;
                let standby = if signer == "signer" { "standby" } else { "signer" };
                d.kill(standby);
                wait_for_acks(&published, 20).await;
                d.start_server(standby);
                assert_eq!(d.holder().await.0, signer, "the signer kept its lease");
            }
            _ => {
                d.kill("replica-1");
                wait_for_acks(&published, 20).await;
                d.start_server("replica-1");
            }
        }
        wait_for_acks(&published, 20).await;
        stop.cancel();
        loader.await.unwrap();
        let snapshot = published.lock().unwrap().clone();
        check(&d, &snapshot).await;
    }
    rebuild_and_fsck(d).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_signers_started_together_never_both_sign() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut d = Deployment::start(nats::Nats::single()).await;
    let js = d.nats.jetstream().await;
    let published = Arc::new(Mutex::new(Published::default()));
    let (mut seen, mut last_term) = (0, 0);
    for round in 0..3 {
        // Both die, and start again at the same instant.
        d.kill("signer");
        d.kill("standby");
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(|| d.spawn_server("signer"));
            let b = s.spawn(|| d.spawn_server("standby"));
            (a.join().unwrap(), b.join().unwrap())
        });
        d.servers.insert("signer".into(), a);
        d.servers.insert("standby".into(), b);
        let stop = tokio_util::sync::CancellationToken::new();
        let loader = load(js.clone(), ["l0", "l1", "l2"][round], published.clone(), stop.clone());
        wait_for_acks(&published, 30).await;
        stop.cancel();
        loader.await.unwrap();
        d.settle().await;
        // The round's checkpoints carry one term: one of the two signed.
        let notes = checkpoints(&js).await;
        let terms: std::collections::BTreeSet<u64> = notes[seen..].iter().map(|(t, _)| *t).collect();
        assert_eq!(terms.len(), 1, "round {round}: checkpoints under terms {terms:?}");
        let term = *terms.first().unwrap();
        assert!(term > last_term, "round {round}: term {term} after {last_term}");
        last_term = term;
        seen = notes.len();
    }
    let snapshot = published.lock().unwrap().clone();
    check(&d, &snapshot).await;
}

/// `ledger-server bus permissions` with two logs (a gateway with sharded logs), on a real
/// nats-server configured with exactly the printed block: the gateway publishes batches to both
/// logs' ingest subjects and has them acknowledged, and still cannot publish as another gateway in
/// either log. A log or gateway name that cannot be one is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_permissions_of_two_logs_let_a_gateway_publish_to_both_and_as_nobody_else() {
    let out = ledger_server(&["bus", "permissions", "--log", "main", "--log", "billing", "--gateway", "gw-1"]);
    let block = String::from_utf8(out.stdout).unwrap();
    assert!(block.starts_with("{ publish: { allow: [") && block.ends_with("] } }\n"), "{block}");
    for subject in ["ledger.main.in.gw-1", "ledger.billing.in.gw-1", "_INBOX_gw-1.>"] {
        assert_eq!(block.matches(&format!("{subject:?}")).count(), 1, "{subject} once in {block}");
    }
    assert_eq!(block.matches("\"$JS.API.INFO\"").count(), 1, "{block}");

    let conf = format!(
        "authorization {{ users: [\n  {{ user: ledger, password: ledger-secret }}\n  \
         {{ user: gw-1, password: gw-secret, permissions: {} }}\n] }}\n",
        block.trim()
    );
    let nats = nats::Nats::single_with(&conf);
    let urls = nats.urls().join(",");
    let init = Command::new(env!("CARGO_BIN_EXE_ledger-server"))
        .args(["bus", "init", "--bus", &urls, "--log", "main", "--log", "billing", "--replicas", "1"])
        .args(["--bus-user", "ledger"])
        .env("A2A_LEDGER_BUS_PASSWORD", "ledger-secret")
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));

    let gw = ledger_bus::Auth {
        user: Some("gw-1".into()),
        password: Some("gw-secret".into()),
        inbox_prefix: Some("_INBOX_gw-1".into()),
    };
    let wait = Duration::from_secs(10);
    let client = ledger_bus::client(&urls, "gw-1", &gw, wait).await.unwrap();
    let batch = ledger_core::bus::encode_batch(&[identity_entry(&gateway_key())]);
    let mut gjs = jetstream::new(client.clone());
    gjs.set_timeout(Duration::from_secs(1));
    for log in ["main", "billing"] {
        let name = ledger_bus::LogName::parse(log).unwrap();
        let config = ledger_bus::PublisherConfig::new(name.clone(), "gw-1");
        let publisher = ledger_bus::Publisher::start(client.clone(), config).await.unwrap();
        let entries = vec![identity_entry(&gateway_key()).into()];
        let acked = tokio::time::timeout(wait, publisher.publish(entries).unwrap().wait()).await.unwrap().unwrap();
        assert_eq!(acked.position, 1, "{log}");
        // As gw-2: the server drops the message (no acknowledgement ever comes) and logs it.
        let acked = match gjs.publish(name.ingest_subject("gw-2"), batch.clone().into()).await {
            Ok(f) => f.await.ok(),
            Err(_) => None,
        };
        assert!(acked.is_none(), "gw-1 published as gw-2 in {log}");
    }
    let log = std::fs::read_to_string(nats.dir.path().join("n1.log")).unwrap();
    for subject in ["ledger.main.in.gw-2", "ledger.billing.in.gw-2"] {
        assert!(
            log.contains(&format!("Publish Violation - Subject \"{subject}\"")),
            "no violation for {subject}: {log}"
        );
    }
    assert!(!log.contains("in.gw-1\""), "the gateway's own subjects were refused: {log}");
    let ledger =
        ledger_bus::Auth { user: Some("ledger".into()), password: Some("ledger-secret".into()), inbox_prefix: None };
    let js = ledger_bus::connect(&urls, "ledger", &ledger, wait).await.unwrap();
    for stream in ["LEDGER_main", "LEDGER_billing"] {
        assert_eq!(js.get_stream(stream).await.unwrap().info().await.unwrap().state.messages, 1, "{stream}");
    }

    for (args, says) in [
        (["--log", "main", "--log", "Billing", "--gateway", "gw-1"], "Billing"),
        (["--log", "main", "--log", "billing", "--gateway", "gw.1"], "gw.1"),
    ] {
        let out =
            Command::new(env!("CARGO_BIN_EXE_ledger-server")).args(["bus", "permissions"]).args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(says),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
