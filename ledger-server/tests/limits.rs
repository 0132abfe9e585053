//! Overload protection through the real binary: a tiny concurrency limit really overloaded
//! answers 503 with `Retry-After` (HTTP) and `UNAVAILABLE` `overloaded` (gRPC), never a hang;
//! streams and long polls outlive the request timeout.

mod common;

use std::time::{Duration, Instant};

use common::*;
use ledger_core::TreeHash;
use ledger_wire::{AppendRequest, Detail, ErrorCode, GetCheckpointRequest, GetReceiptRequest, WatchCheckpointsRequest};
use tokio_stream::StreamExt as _;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_overload_answers_503_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server_with_a_run_to_wait_for(dir.path(), &["--max-concurrent-requests", "1"]).await;
    let auditor = srv.token("auditor");

    // The one slot is taken by a long poll...
    let (client, url) = (srv.http_client.clone(), srv.url("/runs/held/receipt?wait=60"));
    let held = tokio::spawn(async move { client.get(url).bearer_auth(auditor).send().await });
    // ...so once it is in, every other request is refused at once.
    let deadline = Instant::now() + Duration::from_secs(10);
    let refused = loop {
        let r = srv.get("/healthz", None).await;
        if r.status() == 503 {
            break r;
        }
        assert_eq!(r.status(), 200);
        assert!(Instant::now() < deadline, "the long poll never took the slot");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(refused.headers()["retry-after"], "1");
    let e: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(e["error"]["code"], "overloaded", "{e}");
    let r = srv.get("/v1/checkpoint", None).await;
    assert_eq!(r.status(), 503, "any route: the limit is the server's, not the route's");

    // Shutdown ends the long poll (with its answer), and the server stops cleanly.
    let status = tokio::task::spawn_blocking(move || srv.terminate()).await.unwrap();
    assert!(status.success(), "{status}");
    let held = held.await.unwrap().expect("the long poll was answered");
    assert_ne!(held.status(), 503, "the long poll itself was served");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_overload_answers_unavailable_with_the_typed_code() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server_with_a_run_to_wait_for(dir.path(), &["--max-concurrent-requests", "1"]).await;
    let auditor = srv.token("auditor");

    let mut client = srv.grpc_client().await;
    let hold = |mut waiting: ledger_wire::ledger_client::LedgerClient<tonic::transport::Channel>, token: String| {
        tokio::spawn(async move {
            waiting.get_receipt(authorized(GetReceiptRequest { run: "held".into(), wait_ms: 60_000 }, &token)).await
        })
    };
    let mut held = hold(client.clone(), auditor.clone());
    let deadline = Instant::now() + Duration::from_secs(10);
    let refused = loop {
        match client.get_checkpoint(GetCheckpointRequest {}).await {
            Ok(_) => {}
            Err(s) => break s,
        }
        // The long poll can arrive while a probe holds the one slot and be refused itself: then
        // it is sent again, until it holds the slot.
        if held.is_finished() {
            let r = held.await.unwrap();
            assert!(matches!(&r, Err(s) if ErrorCode::of(s) == Some(ErrorCode::Overloaded)), "{r:?}");
            held = hold(client.clone(), auditor.clone());
        }
        assert!(Instant::now() < deadline, "the long poll never took the slot");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    assert_eq!(ErrorCode::of(&refused), Some(ErrorCode::Overloaded), "{refused:?}");
    assert_eq!(Detail::of(&refused).retry_after, Some(Duration::from_secs(1)));

    let status = tokio::task::spawn_blocking(move || srv.terminate()).await.unwrap();
    assert!(status.success(), "{status}");
    if let Err(held) = held.await.unwrap() {
        assert_ne!(ErrorCode::of(&held), Some(ErrorCode::Overloaded), "the long poll itself was served: {held:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_outlive_the_request_timeout() {
    let timeout = Duration::from_millis(200);
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(&dir.path().join("l"), &["--request-timeout-ms", "200", "--checkpoint-interval-ms", "20"]);
    let ingest = srv.token("gateway");
    let key = gateway_key();
    let mut client = srv.grpc_client().await;
    let mut checkpoints = client.clone().watch_checkpoints(WatchCheckpointsRequest {}).await.unwrap().into_inner();

    // One Append stream, batch after batch, for five times the request timeout.
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let mut acks =
        client.append(authorized(tokio_stream::wrappers::ReceiverStream::new(rx), &ingest)).await.unwrap().into_inner();
    let started = Instant::now();
    tx.send(AppendRequest::of(0, [identity_entry(&key)])).await.unwrap();
    let mut batch = 0;
    let size = loop {
        let ack = acks.next().await.expect("the stream is still open").expect("acknowledged");
        assert_eq!((ack.batch, ack.error), (batch, None));
        if started.elapsed() > 5 * timeout {
            break ack.tree_size;
        }
        batch += 1;
        let entries = run(TreeHash::Blake3, &format!("s-{batch}"), &key, "c", 2);
        tx.send(AppendRequest::of(batch, entries)).await.unwrap();
    };
    drop(tx);
    assert!(acks.next().await.is_none(), "the stream ends when the client ends it, not before");

    // The checkpoint stream, opened before all that, still delivers.
    loop {
        let cp = checkpoints.next().await.expect("the watch is still open").expect("a checkpoint");
        if cp.tree_size >= size {
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_polls_wait_past_the_request_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server_with_a_run_to_wait_for(dir.path(), &["--request-timeout-ms", "200"]).await;
    let auditor = srv.token("auditor");
    // A one-second wait is answered after the wait (not cut at 200 ms with `timeout`).
    let started = Instant::now();
    let r = srv.get("/runs/held/receipt?wait=1", Some(&auditor)).await;
    assert_eq!(r.status(), 409);
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "not_yet_checkpointed");
    assert!(started.elapsed() >= Duration::from_secs(1), "{:?}", started.elapsed());

    let mut client = srv.grpc_client().await;
    let started = Instant::now();
    let s = client
        .get_receipt(authorized(GetReceiptRequest { run: "held".into(), wait_ms: 1000 }, &auditor))
        .await
        .unwrap_err();
    assert_eq!(ErrorCode::of(&s), Some(ErrorCode::NotYetCheckpointed), "{s:?}");
    assert!(started.elapsed() >= Duration::from_secs(1), "{:?}", started.elapsed());
}
