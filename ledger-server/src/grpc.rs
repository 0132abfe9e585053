//! The `ledger.v1.Ledger` gRPC service (tonic): the gateways' ingest path.
//!
//! `Append` keeps at most [`APPEND_IN_FLIGHT`] batches of one stream in the sequencer; it reads
//! the next request only when one of them is acknowledged, so a client that outruns the log is
//! held back by HTTP/2 flow control rather than by buffering in the server. Acknowledgements go
//! out in request order. A client that disconnects mid-stream loses nothing acknowledged, and
//! batches already handed to the log are still committed (a resend is idempotent).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::{FutureExt as _, Stream, StreamExt as _};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::auth::Principal;
use ledger_wire::ledger_server::{Ledger as LedgerRpc, LedgerServer};
use ledger_wire::{
    AppendRequest, AppendResponse, Checkpoint, Entries, GetCheckpointRequest, GetConsistencyProofRequest,
    GetEntriesRequest, GetInclusionProofRequest, GetLogRequest, GetReceiptRequest, GetRunRequest, ListRunsRequest,
    ListRunsResponse, LogInfo, Proof, Receipt, RunEntries, WatchCheckpointsRequest,
};
use ledger_wire::{ErasePayloadRequest, ErasePayloadResponse, GetPayloadRequest, PayloadChunk, PutPayloadResponse};

use crate::error::{ApiError, ErrorCode};
use crate::service::Ledger;

/// Batches of one `Append` stream in the sequencer at once.
pub const APPEND_IN_FLIGHT: usize = 16;
/// Largest gRPC message accepted.
pub const MAX_MESSAGE_BYTES: usize = 16 << 20;

/// The tonic service over `ledger`.
pub fn service(ledger: Arc<Ledger>) -> LedgerServer<Rpc> {
    let max = ledger.max_body_bytes.max(1 << 20);
    LedgerServer::new(Rpc { ledger }).max_decoding_message_size(max).max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// The gRPC front end.
#[derive(Debug, Clone)]
pub struct Rpc {
    ledger: Arc<Ledger>,
}

type RpcStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

fn principal<T>(l: &Ledger, req: &Request<T>) -> Result<Arc<Principal>, Status> {
    let value = match req.metadata().get("authorization") {
        None => None,
        Some(v) => Some(
            v.to_str().map_err(|_| ApiError::unauthenticated("the authorization metadata is not ASCII").to_status())?,
        ),
    };
    l.principals.authenticate(value).map_err(|e| e.to_status())
}

/// Waits, in bus mode, until this server has applied what the request's
/// `a2a-ledger-min-position` metadata asks for.
async fn caught_up<T>(l: &Ledger, req: &Request<T>) -> Result<(), Status> {
    let min = match req.metadata().get(crate::service::MIN_POSITION) {
        None => None,
        Some(v) => Some(v.to_str().map_err(|_| {
            ApiError::new(ErrorCode::BadQuery, format!("{}: not ASCII", crate::service::MIN_POSITION)).to_status()
        })?),
    };
    l.caught_up(min).await.map_err(|e| e.to_status())
}

fn check_run_id(run: &str) -> Result<(), Status> {
    ledger_core::entry::check_run_id(run).map_err(|e| ApiError::new(ErrorCode::BadRunId, e.to_string()).to_status())
}

fn to_checkpoint(cp: &ledger_core::SignedCheckpoint) -> Checkpoint {
    Checkpoint { note: cp.note.clone(), tree_size: cp.checkpoint.size, root: cp.checkpoint.root.to_vec() }
}

fn refused(l: &Ledger, batch: u64, e: &ApiError) -> AppendResponse {
    AppendResponse {
        batch,
        indices: vec![],
        tree_size: l.log.durable_size(),
        error: Some(ledger_wire::Error::new(e.code, &e.message, e.index)),
    }
}

#[tonic::async_trait]
impl LedgerRpc for Rpc {
    type AppendStream = RpcStream<AppendResponse>;
    type GetEntriesStream = RpcStream<Entries>;
    type WatchCheckpointsStream = RpcStream<Checkpoint>;
    type GetPayloadStream = RpcStream<PayloadChunk>;

    async fn append(&self, req: Request<Streaming<AppendRequest>>) -> Result<Response<Self::AppendStream>, Status> {
        let who = principal(&self.ledger, &req)?;
        self.ledger.writable().map_err(|e| e.to_status())?;
        if !matches!(who.role, crate::auth::Role::Ingest) {
            return Err(ApiError::forbidden(format!(
                "principal {:?} has role {:?}; Append needs an ingest token",
                who.name, who.role
            ))
            .to_status());
        }
        let mut incoming = req.into_inner();
        let ledger = self.ledger.clone();
        let mut shutdown = self.ledger.shutdown.clone();
        let (tx, rx) = mpsc::channel::<Result<AppendResponse, Status>>(APPEND_IN_FLIGHT);
        tokio::spawn(async move {
            // Batches in the sequencer, oldest first; each resolves to its acknowledgement.
            let mut in_flight: VecDeque<BoxFuture<'static, AppendResponse>> = VecDeque::new();
            let mut closed = false;
            let mut stopping = false;
            loop {
                if closed && in_flight.is_empty() {
                    if stopping {
                        // Say so: the batches the client sent after this point were not read.
                        let _ = tx
                            .send(Err(ApiError::new(
                                ErrorCode::ShuttingDown,
                                "the server is stopping; every batch acknowledged above is durable, \
                                 later ones were not read: resend them to the next server",
                            )
                            .to_status()))
                            .await;
                    }
                    return;
                }
                let room = !closed && in_flight.len() < APPEND_IN_FLIGHT;
                tokio::select! {
                    biased;
                    ack = async { in_flight.front_mut().expect("non-empty").await }, if !in_flight.is_empty() => {
                        in_flight.pop_front();
                        if tx.send(Ok(ack)).await.is_err() {
                            // The client left; what is in flight still commits.
                            return;
                        }
                    }
                    _ = crate::service::stopped(&mut shutdown), if !closed => {
                        // Shutting down: read no more batches, acknowledge those in flight, end.
                        closed = true;
                        stopping = true;
                    }
                    next = incoming.next(), if room => match next {
                        Some(Ok(batch)) => {
                            let id = batch.batch;
                            // Sequence now, in stream order; keep the acknowledgement in order.
                            let ack = match ledger.submit(who.clone(), batch.entries).await {
                                Ok(pending) => {
                                    let ledger = ledger.clone();
                                    async move {
                                        match pending.await {
                                            Ok((indices, size)) => AppendResponse { batch: id, indices, tree_size: size, error: None },
                                            Err(e) => refused(&ledger, id, &e),
                                        }
                                    }
                                    .boxed()
                                }
                                Err(e) => {
                                    let r = refused(&ledger, id, &e);
                                    async move { r }.boxed()
                                }
                            };
                            in_flight.push_back(ack);
                        }
                        Some(Err(status)) => {
                            // A broken request stream ends the call; in-flight batches still commit.
                            let _ = tx.send(Err(status)).await;
                            closed = true;
                            in_flight.clear();
                        }
                        None => closed = true,
                    },
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn put_payload(&self, req: Request<Streaming<PayloadChunk>>) -> Result<Response<PutPayloadResponse>, Status> {
        let who = principal(&self.ledger, &req)?;
        crate::payloads::may_put(&who).map_err(|e| e.to_status())?;
        let mut incoming = req.into_inner();
        let first = match incoming.next().await {
            Some(m) => m?,
            None => {
                return Err(
                    ApiError::new(ErrorCode::MalformedBody, "PutPayload: the stream held no message").to_status()
                );
            }
        };
        let hash = crate::payloads::hash_from_bytes(&first.hash).map_err(|e| e.to_status())?;
        let l = &self.ledger;
        let mut up = l.payload_upload(&who, hash, first.length).await.map_err(|e| e.to_status())?;
        l.payload_bytes(&mut up, &first.data).await.map_err(|e| e.to_status())?;
        while let Some(m) = incoming.next().await {
            let m = m?;
            if !m.hash.is_empty() && m.hash != first.hash {
                return Err(ApiError::new(
                    ErrorCode::MalformedBody,
                    "PutPayload: only the first message names the hash (a later one named another)",
                )
                .to_status());
            }
            l.payload_bytes(&mut up, &m.data).await.map_err(|e| e.to_status())?;
        }
        let (created, length) = l.payload_finish(up, first.length).await.map_err(|e| e.to_status())?;
        Ok(Response::new(PutPayloadResponse { created, length }))
    }

    async fn get_payload(&self, req: Request<GetPayloadRequest>) -> Result<Response<Self::GetPayloadStream>, Status> {
        caught_up(&self.ledger, &req).await?;
        let who = principal(&self.ledger, &req)?;
        let hash = crate::payloads::hash_from_bytes(&req.get_ref().hash).map_err(|e| e.to_status())?;
        let (len, mut chunks) = self.ledger.payload_chunks(&who, hash).await.map_err(|e| e.to_status())?;
        let stream = async_stream(move |tx: mpsc::Sender<Result<PayloadChunk, Status>>| async move {
            // The first message names the payload and its length, even when it is empty.
            let mut first = Some(PayloadChunk { hash: hash.to_vec(), length: Some(len), data: vec![] });
            while let Some(chunk) = chunks.recv().await {
                let msg = chunk.map_err(|e| e.to_status()).map(|data| match first.take() {
                    Some(f) => PayloadChunk { data: data.to_vec(), ..f },
                    None => PayloadChunk { hash: vec![], length: None, data: data.to_vec() },
                });
                if tx.send(msg).await.is_err() {
                    return;
                }
            }
            if let Some(f) = first {
                let _ = tx.send(Ok(f)).await;
            }
        });
        Ok(Response::new(stream))
    }

    async fn erase_payload(&self, req: Request<ErasePayloadRequest>) -> Result<Response<ErasePayloadResponse>, Status> {
        let who = principal(&self.ledger, &req)?;
        let r = req.into_inner();
        let hash = crate::payloads::hash_from_bytes(&r.hash).map_err(|e| e.to_status())?;
        let index = self.ledger.payload_erase(&who, hash, r.reason).await.map_err(|e| e.to_status())?;
        Ok(Response::new(ErasePayloadResponse { index }))
    }

    async fn get_checkpoint(&self, _req: Request<GetCheckpointRequest>) -> Result<Response<Checkpoint>, Status> {
        Ok(Response::new(to_checkpoint(&self.ledger.checkpoint())))
    }

    async fn get_log(&self, _req: Request<GetLogRequest>) -> Result<Response<LogInfo>, Status> {
        let descriptor_json = serde_json::to_string(self.ledger.log.descriptor()).expect("serialisable");
        Ok(Response::new(LogInfo { descriptor_json }))
    }

    async fn get_run(&self, req: Request<GetRunRequest>) -> Result<Response<RunEntries>, Status> {
        caught_up(&self.ledger, &req).await?;
        let who = principal(&self.ledger, &req)?;
        let r = req.into_inner();
        check_run_id(&r.run)?;
        let run = self.ledger.run_entries(who, r.run).await.map_err(|e| e.to_status())?;
        let (indices, entries) = run.into_iter().map(|(i, bytes, _)| (i, bytes)).unzip();
        Ok(Response::new(RunEntries { indices, entries }))
    }

    async fn list_runs(&self, req: Request<ListRunsRequest>) -> Result<Response<ListRunsResponse>, Status> {
        caught_up(&self.ledger, &req).await?;
        use crate::service::{DEFAULT_RUNS_PER_PAGE, RunListing};
        use ledger_wire::list_runs_request::Key;
        let who = principal(&self.ledger, &req)?;
        let r = req.into_inner();
        let bad = |m: &str| ApiError::new(ErrorCode::BadQuery, m).to_status();
        let limit = if r.limit == 0 { DEFAULT_RUNS_PER_PAGE } else { r.limit as usize };
        let text = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let (skill, agent, status) = (text(&r.skill), text(&r.agent), text(&r.status));
        let all = match r.key {
            Some(Key::All(true)) => true,
            Some(Key::All(false)) => return Err(bad("all=false lists nothing: set all to true for every run")),
            _ => false,
        };
        let caller = match &r.key {
            Some(Key::Caller(c)) => Some(c.as_str()),
            _ => None,
        };
        let terms = ledger_core::store::catalog::SearchTerms {
            all,
            caller,
            skill: skill.as_deref(),
            agent: agent.as_deref(),
            status: status.as_deref(),
            from: r.from,
            until: r.until,
        };
        if terms.is_search() {
            if matches!(r.key, Some(Key::Context(_) | Key::Parent(_) | Key::Open(_) | Key::Payload(_))) {
                return Err(bad(
                    "context, parent, open and payload list by themselves and do not combine with a search",
                ));
            }
            if r.before.is_some() {
                return Err(bad("before pages a listing; a search pages with the cursor its last page answered"));
            }
            let search = terms.search().map_err(|e| ApiError::from(e).to_status())?;
            let cursor = text(&r.cursor);
            let page = self.ledger.search_runs(who, search, cursor, limit).await.map_err(|e| e.to_status())?;
            let runs = page
                .runs
                .iter()
                .map(|s| ledger_wire::RunRef {
                    run: s.run.clone(),
                    index: s.index,
                    summary: r.summary.then(|| wire_summary(s)),
                })
                .collect();
            return Ok(Response::new(ListRunsResponse {
                runs,
                total: 0,
                next: None,
                cursor: page.cursor,
                scan: page.scan.as_str().into(),
            }));
        }
        if !r.cursor.is_empty() {
            return Err(bad("cursor pages a search; a listing pages with before"));
        }
        let payload = |h: Vec<u8>| {
            <[u8; 32]>::try_from(h.as_slice())
                .map(RunListing::Payload)
                .map_err(|_| bad(&format!("payload: give the payload's BLAKE3, 32 bytes, not {} bytes", h.len())))
        };
        let listing = match r.key {
            Some(Key::Caller(c)) => RunListing::Caller(c),
            Some(Key::Context(c)) => RunListing::Context(c),
            Some(Key::Parent(p)) => RunListing::Parent(p),
            Some(Key::Open(true)) => RunListing::Open,
            Some(Key::Payload(h)) => payload(h)?,
            Some(Key::Open(false)) => {
                return Err(bad("open=false lists nothing: set open to true, or a caller, context or parent"));
            }
            Some(Key::All(_)) | None => {
                return Err(bad(
                    "name what to list: one of caller, context, parent, open or payload; or all, or search by skill, agent, status, from, until",
                ));
            }
        };
        let page = self.ledger.list_runs(who, listing, r.before, limit).await.map_err(|e| e.to_status())?;
        let summaries = if r.summary {
            self.ledger.summaries(page.runs.iter().map(|r| r.run.clone()).collect()).await.map_err(|e| e.to_status())?
        } else {
            vec![None; page.runs.len()]
        };
        Ok(Response::new(ListRunsResponse {
            runs: page
                .runs
                .into_iter()
                .zip(summaries)
                .map(|(r, s)| ledger_wire::RunRef { run: r.run, index: r.index, summary: s.as_ref().map(wire_summary) })
                .collect(),
            total: page.total,
            next: page.next,
            cursor: None,
            scan: String::new(),
        }))
    }

    async fn get_receipt(&self, req: Request<GetReceiptRequest>) -> Result<Response<Receipt>, Status> {
        caught_up(&self.ledger, &req).await?;
        let who = principal(&self.ledger, &req)?;
        let r = req.into_inner();
        check_run_id(&r.run)?;
        let json = self
            .ledger
            .receipt(who, r.run, Duration::from_millis(u64::from(r.wait_ms)))
            .await
            .map_err(|e| e.to_status())?;
        Ok(Response::new(Receipt { json }))
    }

    async fn get_inclusion_proof(&self, req: Request<GetInclusionProofRequest>) -> Result<Response<Proof>, Status> {
        let who = principal(&self.ledger, &req)?;
        let r = req.into_inner();
        let size = (r.tree_size != 0).then_some(r.tree_size);
        let (_, proof) = self.ledger.inclusion(&who, r.index, size).await.map_err(|e| e.to_status())?;
        Ok(Response::new(Proof { hashes: proof.iter().map(|h| h.to_vec()).collect() }))
    }

    async fn get_consistency_proof(&self, req: Request<GetConsistencyProofRequest>) -> Result<Response<Proof>, Status> {
        let who = principal(&self.ledger, &req)?;
        let r = req.into_inner();
        let to = (r.to != 0).then_some(r.to);
        let (_, proof) = self.ledger.consistency(&who, r.from, to).await.map_err(|e| e.to_status())?;
        Ok(Response::new(Proof { hashes: proof.iter().map(|h| h.to_vec()).collect() }))
    }

    async fn get_entries(&self, req: Request<GetEntriesRequest>) -> Result<Response<Self::GetEntriesStream>, Status> {
        let who = principal(&self.ledger, &req)?;
        let r = req.into_inner();
        let size = self.ledger.log.durable_size();
        if r.start > r.end || r.end > size {
            return Err(ApiError::new(
                ErrorCode::OutOfRange,
                format!("range [{}, {}) is not within the log's {size} entries", r.start, r.end),
            )
            .to_status());
        }
        crate::service::require_reads_all(&who).map_err(|e| e.to_status())?;
        let ledger = self.ledger.clone();
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            let mut at = r.start;
            while at < r.end {
                let chunk_end = r.end.min(at + crate::service::MAX_ENTRIES_PER_READ);
                let msg = ledger
                    .entries(&who, at, chunk_end)
                    .await
                    .map(|entries| Entries { start: at, entries })
                    .map_err(|e| e.to_status());
                let failed = msg.is_err();
                if tx.send(msg).await.is_err() || failed {
                    return;
                }
                at = chunk_end;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn watch_checkpoints(
        &self,
        _req: Request<WatchCheckpointsRequest>,
    ) -> Result<Response<Self::WatchCheckpointsStream>, Status> {
        let mut rx = self.ledger.checkpoints.clone();
        let mut shutdown = self.ledger.shutdown.clone();
        let stream = async_stream(move |tx: mpsc::Sender<Result<Checkpoint, Status>>| async move {
            let first = to_checkpoint(&rx.borrow_and_update());
            if tx.send(Ok(first)).await.is_err() {
                return;
            }
            loop {
                tokio::select! {
                    changed = rx.changed() => if changed.is_err() { return },
                    _ = crate::service::stopped(&mut shutdown) => return,
                }
                let cp = to_checkpoint(&rx.borrow_and_update());
                if tx.send(Ok(cp)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(stream))
    }
}

/// A stream fed by a task.
fn async_stream<T: Send + 'static, F>(f: impl FnOnce(mpsc::Sender<T>) -> F) -> Pin<Box<dyn Stream<Item = T> + Send>>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(f(tx));
    Box::pin(ReceiverStream::new(rx))
}

/// A run's catalog summary on the wire.
fn wire_summary(s: &ledger_core::RunSummary) -> ledger_wire::RunSummary {
    ledger_wire::RunSummary {
        skill: s.skill.clone(),
        caller: s.caller.clone(),
        agent: s.agent.clone(),
        ts: s.ts,
        status: s.sealed.as_ref().map_or("open", |seal| seal.status.as_str()).into(),
        sealed_index: s.sealed.as_ref().map(|seal| seal.index),
        sealed_ts: s.sealed.as_ref().map(|seal| seal.ts),
        entries: s.entries,
    }
}
