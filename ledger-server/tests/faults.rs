//! Faults through the whole server: SIGKILL under gRPC load then restart, and a storage failure
//! that poisons the log (503 with the reason).

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use ledger_core::merkle::verify_consistency;
use ledger_core::store::CommitBatch;
use ledger_core::{Checkpoint, Log, LogConfig, MemStore, NamedKey, Store, TreeHash};
use ledger_server::config::Settings;
use ledger_wire::{AppendRequest, GetConsistencyProofRequest, GetEntriesRequest, WatchCheckpointsRequest};
use tokio_stream::StreamExt as _;

/// Entries acknowledged so far, with their indices.
type Acked = Arc<Mutex<Vec<(u64, Vec<u8>)>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ledger");
    let key = gateway_key();
    let acked: Acked = Arc::default();
    let mut checkpoints: Vec<String> = Vec::new();
    let next_run = Arc::new(AtomicU64::new(0));
    let mut seed = std::process::id() as u64;
    for round in 0..3 {
        let srv = Server::start(&data, &["--checkpoint-interval-ms", "20"]);
        let ingest = srv.token("gateway");
        if round == 0 {
            assert_eq!(srv.post_json(&[identity_entry(&key)], &ingest).await.status(), 200);
        }
        // Everything acknowledged before is still there, at its index.
        check_acked(&srv, &acked).await;
        // Every checkpoint seen before is consistent with the newest.
        check_consistent(&srv, &checkpoints).await;

        // Load: four streams of sealed runs, one batch per run; a watcher keeps the checkpoints.
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let (grpc, ingest, acked, next_run, stop, key) =
                (srv.grpc.clone(), ingest.clone(), acked.clone(), next_run.clone(), stop.clone(), gateway_key());
            tasks.push(tokio::spawn(async move { load(grpc, ingest, acked, next_run, stop, key).await }));
        }
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let watcher = {
            let (grpc, seen) = (srv.grpc.clone(), seen.clone());
            tokio::spawn(async move {
                let Ok(mut c) = ledger_wire::ledger_client::LedgerClient::connect(grpc).await else { return };
                let Ok(s) = c.watch_checkpoints(WatchCheckpointsRequest {}).await else { return };
                let mut s = s.into_inner();
                while let Some(Ok(cp)) = s.next().await {
                    seen.lock().unwrap().push(cp.note);
                }
            })
        };
        // Kill at a random point of the load: once a random number of further entries is
        // acknowledged, and the watcher has its first checkpoint.
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let target = acked.lock().unwrap().len() + 50 + ((seed >> 33) % 1000) as usize;
        wait_until(Duration::from_secs(60), || {
            acked.lock().unwrap().len() >= target && !seen.lock().unwrap().is_empty()
        })
        .await;
        srv.kill();
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            let _ = t.await;
        }
        let _ = watcher.await;
        checkpoints.extend(seen.lock().unwrap().drain(..));
        assert!(!acked.lock().unwrap().is_empty());
        // The store as the kill left it: everything in it agrees.
        fsck_clean(&data, round);
    }
    let srv = Server::start(&data, &[]);
    check_acked(&srv, &acked).await;
    check_consistent(&srv, &checkpoints).await;
    assert!(checkpoints.len() >= 3, "the watcher saw checkpoints in every round");
}

/// `ledger-server status --check` on `data` (read-only) finds nothing amiss.
fn fsck_clean(data: &std::path::Path, round: usize) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ledger-server"))
        .args(["status", "--check", "--data"])
        .arg(data)
        .output()
        .unwrap();
    assert!(out.status.success(), "round {round}: fsck: {}", String::from_utf8_lossy(&out.stderr));
}

async fn load(
    grpc: String,
    token: String,
    acked: Acked,
    next_run: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    key: NamedKey,
) {
    let Ok(mut client) = ledger_wire::ledger_client::LedgerClient::connect(grpc).await else { return };
    let (tx, rx) = tokio::sync::mpsc::channel::<AppendRequest>(8);
    let mut req = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    req.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    let sent: Arc<Mutex<std::collections::HashMap<u64, Vec<Vec<u8>>>>> = Arc::default();
    let producer = {
        let sent = sent.clone();
        tokio::spawn(async move {
            let mut batch = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let id = next_run.fetch_add(1, Ordering::Relaxed);
                let entries = run(TreeHash::Blake3, &format!("load-{id}"), &key, "load", (id % 6) as usize);
                sent.lock().unwrap().insert(batch, entries.clone());
                if tx.send(AppendRequest::of(batch, entries)).await.is_err() {
                    return;
                }
                batch += 1;
            }
        })
    };
    let Ok(resp) = client.append(req).await else { return };
    let mut acks = resp.into_inner();
    while let Some(Ok(ack)) = acks.next().await {
        assert!(ack.error.is_none(), "{:?}", ack.error);
        let entries = sent.lock().unwrap().remove(&ack.batch).expect("acknowledged batch was sent");
        acked.lock().unwrap().extend(ack.indices.into_iter().zip(entries));
    }
    producer.abort();
}

async fn check_acked(srv: &Server, acked: &Mutex<Vec<(u64, Vec<u8>)>>) {
    let acked = acked.lock().unwrap().clone();
    let size = srv.tree_size().await;
    let mut client = srv.grpc_client().await;
    let mut req = tonic::Request::new(GetEntriesRequest { start: 0, end: size });
    req.metadata_mut().insert("authorization", format!("Bearer {}", srv.token("auditor")).parse().unwrap());
    let mut stream = client.get_entries(req).await.unwrap().into_inner();
    let mut all = Vec::new();
    while let Some(c) = stream.next().await {
        all.extend(c.unwrap().entries);
    }
    assert_eq!(all.len() as u64, size);
    for (index, bytes) in &acked {
        assert_eq!(all.get(*index as usize), Some(bytes), "acknowledged entry {index} lost or changed");
    }
}

async fn check_consistent(srv: &Server, notes: &[String]) {
    let log = srv.descriptor().await;
    let vkey = log.verifier_key().unwrap();
    let newest = Checkpoint::open(&srv.get("/v1/checkpoint", None).await.text().await.unwrap(), &vkey).unwrap();
    let mut client = srv.grpc_client().await;
    for note in notes {
        let old = Checkpoint::open(note, &vkey).unwrap();
        assert!(old.size <= newest.size, "the tree shrank from {} to {}", old.size, newest.size);
        let mut req = tonic::Request::new(GetConsistencyProofRequest { from: old.size, to: newest.size });
        req.metadata_mut().insert("authorization", format!("Bearer {}", srv.token("auditor")).parse().unwrap());
        let proof: Vec<[u8; 32]> = client
            .get_consistency_proof(req)
            .await
            .unwrap()
            .into_inner()
            .hashes
            .into_iter()
            .map(|h| h.try_into().unwrap())
            .collect();
        verify_consistency(log.hash, old.size, newest.size, &old.root, &newest.root, &proof)
            .unwrap_or_else(|e| panic!("checkpoint {} is not consistent with {}: {e}", old.size, newest.size));
    }
}

/// A store whose commits fail once `fail` is set.
#[derive(Debug)]
struct Failing {
    inner: MemStore,
    fail: AtomicBool,
}

impl Store for Failing {
    fn load_meta(&self) -> ledger_core::Result<Option<(ledger_core::store::LogParams, u64)>> {
        self.inner.load_meta()
    }
    fn position(&self) -> ledger_core::Result<Option<u64>> {
        self.inner.position()
    }
    fn position_at(&self, size: u64) -> ledger_core::Result<Option<u64>> {
        self.inner.position_at(size)
    }
    fn scan_positions(&self, f: &mut dyn FnMut(u64, u64) -> ledger_core::Result<()>) -> ledger_core::Result<()> {
        self.inner.scan_positions(f)
    }
    fn quiesce(&self) {
        self.inner.quiesce()
    }
    fn commit(&self, batch: &CommitBatch) -> ledger_core::Result<()> {
        if self.fail.load(Ordering::Relaxed) {
            return Err(ledger_core::Error::Storage("injected: fsync failed (EIO)".into()));
        }
        self.inner.commit(batch)
    }
    fn entry(&self, index: u64) -> ledger_core::Result<Option<Vec<u8>>> {
        self.inner.entry(index)
    }
    fn scan_entries(
        &self,
        s: u64,
        e: u64,
        f: &mut dyn FnMut(u64, &[u8]) -> ledger_core::Result<()>,
    ) -> ledger_core::Result<()> {
        self.inner.scan_entries(s, e, f)
    }
    fn tile(&self, level: u8, index: u64) -> ledger_core::Result<Option<Vec<u8>>> {
        self.inner.tile(level, index)
    }
    fn run_record(&self, run: &str, seq: u64) -> ledger_core::Result<Option<ledger_core::store::RunRecord>> {
        self.inner.run_record(run, seq)
    }
    fn run_last(&self, run: &str) -> ledger_core::Result<Option<(u64, ledger_core::store::RunRecord)>> {
        self.inner.run_last(run)
    }
    fn run_records(&self, run: &str) -> ledger_core::Result<Vec<(u64, ledger_core::store::RunRecord)>> {
        self.inner.run_records(run)
    }
    fn scan_runs(
        &self,
        f: &mut dyn FnMut(ledger_core::store::RunSegment) -> ledger_core::Result<()>,
    ) -> ledger_core::Result<()> {
        self.inner.scan_runs(f)
    }
    fn put_checkpoint(&self, size: u64, note: &str) -> ledger_core::Result<()> {
        self.inner.put_checkpoint(size, note)
    }
    fn latest_checkpoint(&self) -> ledger_core::Result<Option<(u64, String)>> {
        self.inner.latest_checkpoint()
    }
    fn checkpoints(&self) -> ledger_core::Result<Vec<(u64, String)>> {
        self.inner.checkpoints()
    }
    fn catalog_scan(
        &self,
        lo: &[u8],
        hi: &[u8],
        reverse: bool,
        f: ledger_core::store::CatalogVisit<'_>,
    ) -> ledger_core::Result<()> {
        self.inner.catalog_scan(lo, hi, reverse, f)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_sync_poisons_the_log_and_the_server_answers_503() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Failing { inner: MemStore::new(), fail: AtomicBool::new(false) });
    let log =
        Log::open(store.clone(), NamedKey::from_seed("test/poison", [3; 32]).unwrap(), LogConfig::default()).unwrap();
    let token = "poison-test-token";
    let principal = ledger_server::auth::Principal {
        name: "gw".into(),
        role: ledger_server::auth::Role::Ingest,
        token_sha256: ledger_server::auth::token_hash_hex(token),
        identities: vec!["gateway".into()],
        callers: vec![],
    };
    let settings = Settings {
        data: dir.path().to_path_buf(),
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
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ledger_server::serve(settings, log, move |b| bound_tx.send(b).unwrap(), async move {
        let _ = stop_rx.await;
    }));
    let bound = bound_rx.await.unwrap();
    let http = reqwest::Client::new();
    let post = |entries: Vec<Vec<u8>>| {
        let body = serde_json::json!({"entries": entries.iter().map(|e| B64.encode(e)).collect::<Vec<_>>()});
        http.post(format!("http://{}/v1/entries", bound.http)).bearer_auth(token).json(&body).send()
    };
    let key = gateway_key();
    assert_eq!(post(vec![identity_entry(&key)]).await.unwrap().status(), 200);

    store.fail.store(true, Ordering::Relaxed);
    let r = post(run(TreeHash::Blake3, "r", &key, "c", 1)).await.unwrap();
    assert_eq!(r.status(), 503);
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "log_poisoned");
    assert!(e["error"]["message"].as_str().unwrap().contains("injected: fsync failed"), "{e}");
    // Every later append fails fast with the reason, even once storage would work again.
    store.fail.store(false, Ordering::Relaxed);
    let r = post(run(TreeHash::Blake3, "r2", &key, "c", 1)).await.unwrap();
    assert_eq!(r.status(), 503);
    let h = http.get(format!("http://{}/healthz", bound.http)).send().await.unwrap();
    assert_eq!(h.status(), 503);
    let h: serde_json::Value = h.json().await.unwrap();
    assert_eq!(h["error"]["code"], "log_poisoned");
    assert_eq!(h["health"]["tree_size"], 1, "only the acknowledged entry is in the tree");

    stop_tx.send(()).unwrap();
    // Closing a poisoned log reports the poison; the server says so rather than pretending.
    let _ = server.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_mid_stream_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(&dir.path().join("l"), &["--checkpoint-interval-ms", "20"]);
    let (ingest, auditor) = (srv.token("gateway"), srv.token("auditor"));
    let key = gateway_key();
    assert_eq!(srv.post_json(&[identity_entry(&key)], &ingest).await.status(), 200);
    let runs: Vec<Vec<Vec<u8>>> =
        (0..60).map(|i| run(TreeHash::Blake3, &format!("dc-{i}"), &key, "c", 3 + i % 5)).collect();

    // Send every batch, read a few acknowledgements, then drop the call mid-stream.
    let mut client = srv.grpc_client().await;
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    for (i, r) in runs.iter().enumerate() {
        tx.send(AppendRequest::of(i as u64, r.clone())).await.unwrap();
    }
    let mut req = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    req.metadata_mut().insert("authorization", format!("Bearer {ingest}").parse().unwrap());
    let mut acks = client.append(req).await.unwrap().into_inner();
    let mut acked = Vec::new();
    for _ in 0..5 {
        let ack = acks.next().await.unwrap().unwrap();
        assert!(ack.error.is_none());
        acked.push((ack.batch, ack.indices));
    }
    drop(acks);
    drop(tx);
    drop(client);

    // Every batch is in whole or not at all; the acknowledged ones are in at their indices. This
    // holds at every moment, also while batches handed to the log before the disconnect are
    // still committing: each is one atomic write, and reads see only the durable tree.
    let mut present = 0;
    for (i, r) in runs.iter().enumerate() {
        let resp = srv.get(&format!("/runs/dc-{i}"), Some(&auditor)).await;
        match resp.status().as_u16() {
            404 => {}
            200 => {
                let body: serde_json::Value = resp.json().await.unwrap();
                assert_eq!(body["entries"].as_array().unwrap().len(), r.len(), "batch {i} is in only in part");
                present += 1;
            }
            s => panic!("run dc-{i}: status {s}"),
        }
    }
    assert!(present >= acked.len());

    // Resending everything succeeds: the acknowledged batches get the same indices back.
    let mut client = srv.grpc_client().await;
    let mut req = tonic::Request::new(tokio_stream::iter(
        runs.iter().enumerate().map(|(i, r)| AppendRequest::of(i as u64, r.clone())).collect::<Vec<_>>(),
    ));
    req.metadata_mut().insert("authorization", format!("Bearer {ingest}").parse().unwrap());
    let mut acks = client.append(req).await.unwrap().into_inner();
    let mut again = std::collections::HashMap::new();
    while let Some(ack) = acks.next().await {
        let ack = ack.unwrap();
        assert!(ack.error.is_none(), "{:?}", ack.error);
        again.insert(ack.batch, ack.indices);
    }
    assert_eq!(again.len(), runs.len());
    for (batch, indices) in acked {
        assert_eq!(again[&batch], indices, "batch {batch} moved");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_drains_and_signs_a_final_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ledger");
    let key = gateway_key();
    let srv = Server::start(&data, &["--checkpoint-interval-ms", "1000"]);
    let ingest = srv.token("gateway");
    assert_eq!(srv.post_json(&[identity_entry(&key)], &ingest).await.status(), 200);
    let acked: Acked = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let next_run = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (grpc, ingest, acked, next_run, stop) =
                (srv.grpc.clone(), ingest.clone(), acked.clone(), next_run.clone(), stop.clone());
            tokio::spawn(async move { load(grpc, ingest, acked, next_run, stop, gateway_key()).await })
        })
        .collect();
    // SIGTERM once the load is flowing: some hundreds of entries acknowledged.
    wait_until(Duration::from_secs(60), || acked.lock().unwrap().len() >= 300).await;
    let status = tokio::task::spawn_blocking(move || srv.terminate()).await.unwrap();
    assert!(status.success(), "{status}");
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    assert!(!acked.lock().unwrap().is_empty());
    // The final checkpoint covers everything durable, with the slow interval notwithstanding.
    let st = common::status(&data);
    let size = st["tree_size"].as_u64().unwrap();
    assert!(st["checkpoint"].as_str().unwrap().contains(&format!("\n{size}\n")), "{st}");
    let srv = Server::start(&data, &[]);
    check_acked(&srv, &acked).await;
}
