//! End to end through the real binary on loopback: ingest over HTTP (JSON and CBOR) and gRPC,
//! then receipts, proofs, tiles and packs, each verified by ledger-core and by the independent
//! Python verifier written from SPEC alone.

mod common;

use std::io::Read as _;

use common::*;
use ledger_core::merkle::{verify_consistency, verify_inclusion};
use ledger_core::{Checkpoint, Hash, ReceiptVerifier, TreeHash};
use ledger_wire::{AppendRequest, GetEntriesRequest, GetReceiptRequest, WatchCheckpointsRequest};
use tokio_stream::StreamExt as _;

fn hashes(v: &serde_json::Value) -> Vec<Hash> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|s| B64.decode(s.as_str().expect("str")).expect("b64").try_into().expect("32 bytes"))
        .collect()
}

async fn everything_verifies(hash: TreeHash) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ledger");
    let srv = Server::start(&data, &["--hash", &hash.to_string(), "--checkpoint-interval-ms", "50"]);
    let (ingest, auditor) = (srv.token("gateway"), srv.token("auditor"));
    let key = gateway_key();
    let log = srv.descriptor().await;
    assert_eq!(log.hash, hash);

    // Identity over CBOR, a run over JSON.
    let r = srv.post_cbor(&[identity_entry(&key)], &ingest).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let run_a = run(hash, "run-http", &key, "alice", 4);
    let r = srv.post_json(&run_a, &ingest).await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["indices"], serde_json::json!((1..=run_a.len() as u64).collect::<Vec<_>>()));
    assert!(body["tree_size"].as_u64().unwrap() > run_a.len() as u64);

    // A partial tile read now is cached; wider reads of it later must not be served from that
    // narrower copy.
    srv.wait_checkpoint(1 + run_a.len() as u64).await;
    let early = srv.get(&format!("/tile/0/000.p/{}", 1 + run_a.len()), None).await;
    assert_eq!(early.status(), 200);
    assert_eq!(early.bytes().await.unwrap().len(), 32 * (1 + run_a.len()));

    // An idempotent resend returns the same indices and appends nothing.
    let again: serde_json::Value = srv.post_json(&run_a, &ingest).await.json().await.unwrap();
    assert_eq!(again["indices"], body["indices"]);

    // A run over gRPC, split over three batches on one stream, sent before any is acknowledged.
    let run_b = run(hash, "run-grpc", &key, "bob", 9);
    let mut client = srv.grpc_client().await;
    let mut req = tonic::Request::new(tokio_stream::iter(
        run_b.chunks(4).enumerate().map(|(i, c)| AppendRequest::of(i as u64, c.to_vec())).collect::<Vec<_>>(),
    ));
    req.metadata_mut().insert("authorization", format!("Bearer {ingest}").parse().unwrap());
    let mut acks = client.append(req).await.unwrap().into_inner();
    let mut grpc_indices = Vec::new();
    let mut batch = 0;
    while let Some(ack) = acks.next().await {
        let ack = ack.unwrap();
        assert_eq!(ack.batch, batch, "acknowledgements come in request order");
        assert!(ack.error.is_none(), "{:?}", ack.error);
        batch += 1;
        grpc_indices.extend(ack.indices);
    }
    assert_eq!(grpc_indices.len(), run_b.len());
    let total = 1 + run_a.len() + run_b.len();
    assert_eq!(srv.tree_size().await, total as u64);

    // Receipts: HTTP with long-poll, and gRPC; each verified by ledger-core and by Python.
    let log_file = dir.path().join("log.json");
    std::fs::write(&log_file, serde_json::to_vec(&log).unwrap()).unwrap();
    let mut verifier = ReceiptVerifier::new(log.clone()).unwrap();
    let r = srv.get("/runs/run-http/receipt?wait=10", Some(&auditor)).await;
    assert_eq!(r.status(), 200);
    let receipt_a = r.bytes().await.unwrap();
    let v = verifier.verify_json(&receipt_a).unwrap();
    assert_eq!(v.run(), "run-http");
    let mut req = tonic::Request::new(GetReceiptRequest { run: "run-grpc".into(), wait_ms: 10_000 });
    req.metadata_mut().insert("authorization", format!("Bearer {auditor}").parse().unwrap());
    let receipt_b = client.get_receipt(req).await.unwrap().into_inner().json;
    verifier.verify_json(receipt_b.as_bytes()).unwrap();
    for (name, bytes) in [("a", &receipt_a[..]), ("b", receipt_b.as_bytes())] {
        let f = dir.path().join(format!("receipt-{name}.json"));
        std::fs::write(&f, bytes).unwrap();
        let (out, code) = python_verify(&["receipt", f.to_str().unwrap(), "--log", log_file.to_str().unwrap()]);
        assert_eq!(code, 0, "Python rejected receipt {name}: {out}");
        assert_eq!(out["ok"], true);
    }
    // One flipped byte in the receipt's checkpoint signature: both verifiers refuse it.
    let mut bad: serde_json::Value = serde_json::from_slice(&receipt_a).unwrap();
    let cp = bad["checkpoint"].as_str().unwrap().replace("localhost/a2a-ledger\n", "localhost/a2a-ledgeR\n");
    bad["checkpoint"] = cp.into();
    let f = dir.path().join("bad.json");
    std::fs::write(&f, serde_json::to_vec(&bad).unwrap()).unwrap();
    assert!(ReceiptVerifier::new(log.clone()).unwrap().verify_json(&std::fs::read(&f).unwrap()).is_err());
    let (out, code) = python_verify(&["receipt", f.to_str().unwrap(), "--log", log_file.to_str().unwrap()]);
    assert_eq!((code, out["step"].as_u64()), (1, Some(1)), "{out}");

    // The run as decoded entries.
    let run_json: serde_json::Value = srv.get("/runs/run-grpc", Some(&auditor)).await.json().await.unwrap();
    let items = run_json["entries"].as_array().unwrap();
    assert_eq!(items.len(), run_b.len());
    assert_eq!(items[0]["decoded"]["kind"], "task.accepted");
    assert_eq!(items[0]["decoded"]["attrs"]["caller"], "bob");
    assert_eq!(items.last().unwrap()["decoded"]["kind"], "receipt.sealed");

    // Proofs against the checkpoint.
    let note = srv.get("/v1/checkpoint", None).await.text().await.unwrap();
    let cp = Checkpoint::open(&note, &log.verifier_key().unwrap()).unwrap();
    assert_eq!(cp.size, total as u64);
    for index in [0, 3, total as u64 - 1] {
        let p: serde_json::Value =
            srv.get(&format!("/v1/proof/inclusion?index={index}"), Some(&auditor)).await.json().await.unwrap();
        let entries: serde_json::Value = srv
            .get(&format!("/v1/entries?start={index}&end={}", index + 1), Some(&auditor))
            .await
            .json()
            .await
            .unwrap();
        let bytes = B64.decode(entries["entries"][0].as_str().unwrap()).unwrap();
        verify_inclusion(hash, index, cp.size, &hash.leaf(&bytes), &hashes(&p["proof"]), &cp.root).unwrap();
    }
    let first = Checkpoint::open(&receipt_a_checkpoint(&receipt_a), &log.verifier_key().unwrap()).unwrap();
    let p: serde_json::Value = srv
        .get(&format!("/v1/proof/consistency?from={}&to={}", first.size, cp.size), Some(&auditor))
        .await
        .json()
        .await
        .unwrap();
    verify_consistency(hash, first.size, cp.size, &first.root, &cp.root, &hashes(&p["proof"])).unwrap();

    // Tiles: row 0 is the leaf hashes; the entry bundle is the entries.
    let w = cp.size;
    let tile = srv.get(&format!("/tile/0/000.p/{w}"), None).await.bytes().await.unwrap();
    assert_eq!(tile.len(), 32 * w as usize);
    let bundle = srv.get(&format!("/tile/entries/000.p/{w}"), None).await.bytes().await.unwrap();
    let mut at = 0;
    for i in 0..w as usize {
        let n = u16::from_be_bytes([bundle[at], bundle[at + 1]]) as usize;
        assert_eq!(&tile[32 * i..32 * i + 32], hash.leaf(&bundle[at + 2..at + 2 + n]), "leaf {i}");
        at += 2 + n;
    }
    assert_eq!(at, bundle.len());
    assert_eq!(srv.get(&format!("/tile/0/000.p/{}", w + 1), None).await.status(), 404);

    // gRPC GetEntries and WatchCheckpoints.
    let mut req = tonic::Request::new(GetEntriesRequest { start: 0, end: total as u64 });
    req.metadata_mut().insert("authorization", format!("Bearer {auditor}").parse().unwrap());
    let mut chunks = client.get_entries(req).await.unwrap().into_inner();
    let mut n = 0;
    while let Some(c) = chunks.next().await {
        n += c.unwrap().entries.len();
    }
    assert_eq!(n, total);
    let mut watch = client.watch_checkpoints(WatchCheckpointsRequest {}).await.unwrap().into_inner();
    let now = watch.next().await.unwrap().unwrap();
    assert_eq!(now.tree_size, cp.size);

    // Packs: all of it, and a range cut through runs; verified by ledger-core and by Python.
    let cut = (1 + run_a.len() + 3) as u64;
    for (start, end) in [(0, total as u64), (0, cut), (3, total as u64)] {
        let r = srv.get(&format!("/v1/pack?start={start}&end={end}"), Some(&auditor)).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "application/x-tar");
        let tar_bytes = r.bytes().await.unwrap();
        let tar_path = dir.path().join(format!("pack-{start}-{end}.tar"));
        std::fs::write(&tar_path, &tar_bytes).unwrap();
        let out_dir = dir.path().join(format!("pack-{start}-{end}"));
        tar::Archive::new(&tar_bytes[..]).unpack(&out_dir).unwrap();
        let report = ledger_core::pack::verify_dir(&out_dir, &log).unwrap();
        assert_eq!((report.start, report.end, report.tree_size), (start, end, cp.size));
        let (out, code) = python_verify(&["pack", tar_path.to_str().unwrap(), "--log", log_file.to_str().unwrap()]);
        assert_eq!(code, 0, "Python rejected the pack: {out}");
        let partial: Vec<&str> = report.partial.iter().map(|p| p.run.as_str()).collect();
        match (start, end) {
            (0, e) if e == total as u64 => {
                assert_eq!((report.seals_verified, report.open_runs), (2, 0));
                assert!(partial.is_empty(), "{partial:?}");
            }
            (0, _) => {
                // run-grpc is cut by the end: still open in the pack, not a failure.
                assert_eq!((report.seals_verified, report.open_runs), (1, 1));
                assert!(partial.is_empty(), "{partial:?}");
            }
            _ => {
                // run-http is cut by the start; run-grpc's signer is registered before the range.
                assert_eq!(report.seals_verified, 0);
                assert_eq!(partial, ["run-grpc", "run-http"]);
                assert_eq!(out["seals_verified"], 0, "{out}");
            }
        }
        // One flipped byte of entries.bin: both verifiers refuse the pack.
        let mut entries_bin = std::fs::read(out_dir.join("entries.bin")).unwrap();
        let mid = entries_bin.len() / 2;
        entries_bin[mid] ^= 1;
        std::fs::write(out_dir.join("entries.bin"), &entries_bin).unwrap();
        assert!(ledger_core::pack::verify_dir(&out_dir, &log).is_err());
        let (out, code) = python_verify(&["pack", out_dir.to_str().unwrap(), "--log", log_file.to_str().unwrap()]);
        assert_eq!(code, 1, "{out}");
    }
    let r = srv.get(&format!("/v1/pack?end={}", total + 1), Some(&auditor)).await;
    assert_eq!(r.status(), 400);

    // Metrics count what was ingested.
    let m = srv.get("/metrics", Some(&auditor)).await.text().await.unwrap();
    assert!(m.contains(&format!("ledger_tree_size {total}")), "{m}");
    assert!(m.contains("ledger_ingest_ack_seconds_bucket"), "{m}");

    // SIGTERM drains and signs a final checkpoint covering everything.
    let status = srv.terminate();
    assert!(status.success(), "{status}");
    let st = common::status(&data);
    assert_eq!(st["tree_size"], total);
    let final_cp = Checkpoint::open(st["checkpoint"].as_str().unwrap(), &log.verifier_key().unwrap()).unwrap();
    assert_eq!(final_cp.size, total as u64);
}

fn receipt_a_checkpoint(receipt: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(receipt).unwrap();
    v["checkpoint"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blake3_log_end_to_end() {
    everything_verifies(TreeHash::Blake3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sha256_log_end_to_end() {
    everything_verifies(TreeHash::Sha256).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tree_hash_is_fixed_at_creation() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ledger");
    let srv = Server::start(&data, &["--hash", "sha256"]);
    assert!(srv.terminate().success());
    let err = Server::try_start(&data, &["--hash", "blake3"]).err().expect("a blake3 start of a sha256 log is refused");
    assert!(err.contains("tree hash") && err.contains("sha256"), "{err}");
    // Without --hash the log opens with the hash it was created with.
    let srv = Server::start(&data, &[]);
    assert_eq!(srv.descriptor().await.hash, TreeHash::Sha256);
    let err = {
        drop(srv);
        Server::try_start(&data, &["--origin", "elsewhere.example/log"]).err().expect("another origin is refused")
    };
    assert!(err.contains("origin"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipt_long_poll_waits_for_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    // A slow checkpointer: the receipt is not ready when the run is acknowledged.
    let srv = Server::start(&dir.path().join("l"), &["--checkpoint-interval-ms", "1500"]);
    let (ingest, auditor) = (srv.token("gateway"), srv.token("auditor"));
    let key = gateway_key();
    assert_eq!(srv.post_json(&[identity_entry(&key)], &ingest).await.status(), 200);
    // Wait for the checkpoint over the identity entry: the next one is a full interval away.
    srv.wait_checkpoint(1).await;
    assert_eq!(srv.post_json(&run(TreeHash::Blake3, "slow", &key, "c", 1), &ingest).await.status(), 200);
    let r = srv.get("/runs/slow/receipt", Some(&auditor)).await;
    assert_eq!(r.status(), 409);
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "not_yet_checkpointed");
    let r = srv.get("/runs/slow/receipt?wait=10", Some(&auditor)).await;
    assert_eq!(r.status(), 200);
    let mut body = String::new();
    r.bytes().await.unwrap().as_ref().read_to_string(&mut body).unwrap();
    assert!(body.contains("a2a-ledger/receipt/v1"));
}
