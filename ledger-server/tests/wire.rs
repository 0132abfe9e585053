//! gRPC refusals carry their typed code (`ledger_wire::ErrorCode`) in the status details,
//! through the real binary; the message text is as before.

mod common;

use common::*;
use ledger_core::TreeHash;
use ledger_wire::{AppendRequest, ErrorCode, GetCheckpointRequest, GetReceiptRequest, GetRunRequest};
use tokio_stream::StreamExt as _;

/// The refusals the gateway tells apart carry their code in the status details; the message
/// text is as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_refusals_carry_typed_codes() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server_with_a_run_to_wait_for(dir.path(), &[]).await;
    let (ingest, auditor) = (srv.token("gateway"), srv.token("auditor"));
    let key = gateway_key();
    let mut client = srv.grpc_client().await;

    let receipt = |run: &str| authorized(GetReceiptRequest { run: run.into(), wait_ms: 0 }, &auditor);
    let s = client.get_receipt(receipt("held")).await.unwrap_err();
    assert_eq!((s.code(), ErrorCode::of(&s)), (tonic::Code::FailedPrecondition, Some(ErrorCode::NotYetCheckpointed)));
    assert!(s.message().starts_with("not_yet_checkpointed: "), "{}", s.message());
    let s = client.get_receipt(receipt("nobody")).await.unwrap_err();
    assert_eq!((s.code(), ErrorCode::of(&s)), (tonic::Code::NotFound, Some(ErrorCode::UnknownRun)));
    // A run with entries and no seal.
    let open = run(TreeHash::Blake3, "open", &key, "c", 1);
    assert_eq!(srv.post_json(&open[..2], &ingest).await.status(), 200);
    let s = client.get_receipt(receipt("open")).await.unwrap_err();
    assert_eq!((s.code(), ErrorCode::of(&s)), (tonic::Code::FailedPrecondition, Some(ErrorCode::RunUnsealed)));
    let s = client.get_receipt(receipt("not a run id!")).await.unwrap_err();
    assert_eq!(ErrorCode::of(&s), Some(ErrorCode::BadRunId), "{s:?}");
    let s = client.get_run(authorized(GetRunRequest { run: "nobody".into() }, &auditor)).await.unwrap_err();
    assert_eq!(ErrorCode::of(&s), Some(ErrorCode::UnknownRun), "{s:?}");
    let s = client.get_checkpoint(GetCheckpointRequest {}).await.map(|_| ()).err();
    assert!(s.is_none(), "public");
    let s = client.get_run(GetRunRequest { run: "held".into() }).await.unwrap_err();
    assert_eq!((s.code(), ErrorCode::of(&s)), (tonic::Code::Unauthenticated, Some(ErrorCode::Unauthenticated)));

    // In band: a seq gap names the entry at fault, with the same code.
    let gap = run(TreeHash::Blake3, "open", &key, "c", 1);
    let acks = client
        .append(authorized(tokio_stream::iter([AppendRequest::of(7, [gap[3].clone()])]), &ingest))
        .await
        .unwrap()
        .into_inner()
        .collect::<Vec<_>>()
        .await;
    let e = acks[0].as_ref().unwrap().error.clone().expect("refused");
    assert_eq!((e.error_code(), e.index), (Some(ErrorCode::SeqGap), Some(0)));
}
