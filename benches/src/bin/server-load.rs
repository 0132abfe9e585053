//! `server-load`: whole-system load against a running `ledger-server`, and the baselines measured
//! beside it (`benches/server-load.sh` runs them all in one go).
//!
//! - `ingest`: realistic runs (5–20 entries of ~300 bytes ending in a seal) over gRPC `Append`
//!   streams or HTTP `POST /v1/entries` from many connections; reports throughput, the
//!   acknowledgement-latency percentiles and, over gRPC, the time from acknowledgement to the
//!   first signed checkpoint covering the batch (from `WatchCheckpoints`). `--rate` paces the
//!   offered load for latency at a given rate.
//! - `receipts`: `GET /runs/{id}/receipt` for runs written by `ingest`, from many connections.
//! - `postgres`: the same entries into PostgreSQL (batched INSERT … UNNEST, one transaction per
//!   batch, `synchronous_commit = on`, a unique (run, seq) index), from the same connections.
//! - `raw`: the same bytes as synced RocksDB WriteBatches of the same size, one writer: the floor.
//!   It also reports the CPU that took per entry, and the CPU per entry of the log's own work
//!   before storing (check, leaf hash, node hashes) on one thread.
//! - `sink`: a gRPC server that acknowledges every `Append` batch with consecutive indices and
//!   does nothing else: `ingest` against it measures what the transport alone costs (both ends).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use a2a_ledger_benches::{Batches, Rng, cpu_time, identity_entry, percentiles};
use anyhow::{Context as _, Result, bail};
use bytes::Bytes;
use clap::{Parser, Subcommand, ValueEnum};
use ledger_core::{NamedKey, TreeHash};
use ledger_wire::ledger_client::LedgerClient;
use ledger_wire::{AppendRequest, WatchCheckpointsRequest};
use tokio_stream::StreamExt as _;

#[derive(Parser)]
#[command(about = "Whole-system load against ledger-server, and its baselines")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Protocol {
    Grpc,
    Http,
}

#[derive(clap::Args, Clone)]
struct Traffic {
    /// Entries to send (whole runs, so slightly more).
    #[arg(long, default_value_t = 1_000_000)]
    entries: usize,
    /// Concurrent connections.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Runs per batch (a gateway batches the runs that end together).
    #[arg(long, default_value_t = 8)]
    runs_per_batch: usize,
    /// Seed of the traffic (the same seed gives the same entries).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Run-id prefix (unique per load run against one log).
    #[arg(long, default_value = "load")]
    prefix: String,
    /// The log's tree hash (the seals' content hashes use it).
    #[arg(long, default_value = "blake3")]
    hash: TreeHash,
}

#[derive(Subcommand)]
enum Cmd {
    /// Ingest over gRPC or HTTP.
    Ingest {
        #[command(flatten)]
        traffic: Traffic,
        /// gRPC or HTTP.
        #[arg(long, value_enum, default_value = "grpc")]
        protocol: Protocol,
        /// The server's gRPC or HTTP address (http://host:port).
        #[arg(long)]
        url: String,
        /// Ingest token bound to the identity `gateway`.
        #[arg(long)]
        token: String,
        /// Batches each gRPC stream keeps in flight.
        #[arg(long, default_value_t = 4)]
        window: usize,
        /// Offered load in entries/s (0: as fast as acknowledgements allow).
        #[arg(long, default_value_t = 0)]
        rate: u64,
        /// Also measure acknowledgement → covering checkpoint (gRPC only), from this gRPC address.
        #[arg(long)]
        watch: Option<String>,
        /// Also report the CPU that process (the server) spent per entry during the run.
        #[arg(long)]
        cpu_of: Option<u32>,
    },
    /// Read receipts of runs written by `ingest` with the same traffic flags.
    Receipts {
        #[command(flatten)]
        traffic: Traffic,
        /// The server's HTTP address.
        #[arg(long)]
        url: String,
        /// A token that may read the runs.
        #[arg(long)]
        token: String,
        /// Receipts to fetch.
        #[arg(long, default_value_t = 100_000)]
        count: usize,
    },
    /// The same entries into PostgreSQL.
    Postgres {
        #[command(flatten)]
        traffic: Traffic,
        /// libpq-style connection string.
        #[arg(long)]
        conn: String,
    },
    /// The same bytes as synced RocksDB WriteBatches of `--group` entries, one writer.
    Raw {
        #[command(flatten)]
        traffic: Traffic,
        /// Entries per WriteBatch (use the server's mean commit group, or the batch size).
        #[arg(long)]
        group: usize,
        /// Where to put the database (a fresh directory).
        #[arg(long)]
        dir: PathBuf,
    },
    /// Serve gRPC `Append` with no log behind it (prints `listening grpc http://ADDR`).
    Sink {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:0")]
        grpc: std::net::SocketAddr,
    },
}

fn gateway_key() -> NamedKey {
    NamedKey::from_seed("gateway", [0x42; 32]).expect("key")
}

/// The traffic: batches of whole runs, each run sealed by the `gateway` key.
fn traffic(t: &Traffic) -> Batches {
    a2a_ledger_benches::traffic(t.hash, &gateway_key(), t.entries, t.runs_per_batch, t.seed, &t.prefix)
}

fn main() -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = match Cli::parse().cmd {
        Cmd::Ingest { traffic: t, protocol, url, token, window, rate, watch, cpu_of } => {
            let b = traffic(&t);
            rt.block_on(ingest(b, protocol, url, token, window.max(1), rate, watch, cpu_of, t.connections))?
        }
        Cmd::Receipts { traffic: t, url, token, count } => {
            let b = traffic(&t);
            rt.block_on(receipts(b.runs, url, token, count, t.connections))?
        }
        Cmd::Postgres { traffic: t, conn } => {
            let b = traffic(&t);
            rt.block_on(postgres(b, conn, t.connections))?
        }
        Cmd::Raw { traffic: t, group, dir } => raw(traffic(&t), t.hash, group, &dir)?,
        Cmd::Sink { grpc } => return rt.block_on(sink::serve(grpc)),
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn ingest(
    b: Batches,
    protocol: Protocol,
    url: String,
    token: String,
    window: usize,
    rate: u64,
    watch: Option<String>,
    cpu_of: Option<u32>,
    connections: usize,
) -> Result<serde_json::Value> {
    // The identity first (idempotent across runs).
    let http = reqwest::Client::new();
    if protocol == Protocol::Http {
        post(&http, &url, &token, &[identity_entry(&gateway_key()).into()]).await?;
    } else {
        let mut c = LedgerClient::connect(url.clone()).await?;
        let mut req =
            tonic::Request::new(tokio_stream::iter(vec![AppendRequest::of(0, [identity_entry(&gateway_key())])]));
        req.metadata_mut().insert("authorization", format!("Bearer {token}").parse()?);
        let ack = c.append(req).await?.into_inner().next().await.context("no ack")??;
        if let Some(e) = ack.error {
            bail!("registering the identity: {}: {}", e.code, e.message);
        }
    }

    // Acknowledged batches waiting for a covering checkpoint: (last index, ack time).
    let pending_cp: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::default();
    let cp_latency: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let watcher = match &watch {
        Some(addr) => {
            let mut c = LedgerClient::connect(addr.clone()).await?;
            let mut s = c.watch_checkpoints(WatchCheckpointsRequest {}).await?.into_inner();
            let (pending, lat) = (pending_cp.clone(), cp_latency.clone());
            Some(tokio::spawn(async move {
                while let Some(Ok(cp)) = s.next().await {
                    let now = Instant::now();
                    let mut p = pending.lock().expect("lock");
                    let mut l = lat.lock().expect("lock");
                    p.retain(|(last, at)| {
                        if *last < cp.tree_size {
                            l.push(now.saturating_duration_since(*at));
                            false
                        } else {
                            true
                        }
                    });
                }
            }))
        }
        None => None,
    };

    let batches = Arc::new(b.batches);
    let next = Arc::new(AtomicUsize::new(0));
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let (server_pid, cpu) = (cpu_of.map(|p| p.to_string()), cpu_time("self"));
    let server_cpu = server_pid.as_deref().map(cpu_time);
    let started = Instant::now();
    // Pacing: batch i may start at started + i * (mean batch entries / rate).
    let per_batch = if rate > 0 {
        Some(Duration::from_secs_f64(b.entries as f64 / batches.len() as f64 / rate as f64))
    } else {
        None
    };
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (batches, next, lat, token, url) =
            (batches.clone(), next.clone(), latencies.clone(), token.clone(), url.clone());
        let (pending, track) = (pending_cp.clone(), watch.is_some());
        let http = http.clone();
        tasks.push(tokio::spawn(async move {
            let take = {
                let (next, batches) = (next.clone(), batches.clone());
                move || {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    (i < batches.len()).then_some(i)
                }
            };
            let pace = move |i: usize| async move {
                if let Some(d) = per_batch {
                    tokio::time::sleep_until((started + d * i as u32).into()).await;
                }
            };
            match protocol {
                Protocol::Http => {
                    while let Some(i) = take() {
                        pace(i).await;
                        let t0 = Instant::now();
                        post(&http, &url, &token, &batches[i]).await?;
                        lat.lock().expect("lock").push(t0.elapsed());
                    }
                }
                Protocol::Grpc => {
                    let mut c = LedgerClient::connect(url).await?;
                    let (tx, rx) = tokio::sync::mpsc::channel::<AppendRequest>(window);
                    let mut req = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
                    req.metadata_mut().insert("authorization", format!("Bearer {token}").parse()?);
                    let sent: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
                    let permits = Arc::new(tokio::sync::Semaphore::new(window));
                    let producer = {
                        let (sent, permits, batches) = (sent.clone(), permits.clone(), batches.clone());
                        tokio::spawn(async move {
                            while let Some(i) = take() {
                                pace(i).await;
                                permits.acquire().await.expect("open").forget();
                                sent.lock().expect("lock").insert(i as u64, Instant::now());
                                if tx
                                    .send(AppendRequest { batch: i as u64, entries: batches[i].clone() })
                                    .await
                                    .is_err()
                                {
                                    return;
                                }
                            }
                        })
                    };
                    let mut acks = c.append(req).await?.into_inner();
                    while let Some(ack) = acks.next().await {
                        let ack = ack?;
                        if let Some(e) = ack.error {
                            bail!("batch {} refused: {}: {}", ack.batch, e.code, e.message);
                        }
                        let t0 = sent.lock().expect("lock").remove(&ack.batch).context("unknown batch")?;
                        let now = Instant::now();
                        lat.lock().expect("lock").push(now - t0);
                        if track {
                            pending.lock().expect("lock").push((*ack.indices.last().unwrap_or(&0), now));
                        }
                        permits.add_permits(1);
                    }
                    producer.await?;
                }
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let elapsed = started.elapsed();
    let per_entry = |d: Duration| (d.as_secs_f64() * 1e6 / b.entries.max(1) as f64 * 1e3).round() / 1e3;
    let client_cpu = per_entry(cpu_time("self").saturating_sub(cpu));
    let server_cpu = server_pid.as_deref().zip(server_cpu).map(|(p, c)| per_entry(cpu_time(p).saturating_sub(c)));
    if let Some(w) = watcher {
        // Let the checkpoint covering the last batches arrive.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !pending_cp.lock().expect("lock").is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        w.abort();
    }
    let lat = latencies.lock().expect("lock").clone();
    let cp = cp_latency.lock().expect("lock").clone();
    Ok(serde_json::json!({
        "protocol": if protocol == Protocol::Grpc { "grpc" } else { "http" },
        "entries": b.entries,
        "batches": batches.len(),
        "mean_entry_bytes": b.bytes / b.entries.max(1),
        "connections": connections,
        "window": window,
        "offered_rate": rate,
        "seconds": elapsed.as_secs_f64(),
        "entries_per_s": (b.entries as f64 / elapsed.as_secs_f64()).round(),
        "ack_latency_ms": percentiles(lat),
        "ack_to_checkpoint_ms": percentiles(cp),
        "client_cpu_us_per_entry": client_cpu,
        "server_cpu_us_per_entry": server_cpu,
    }))
}

async fn post(http: &reqwest::Client, url: &str, token: &str, entries: &[Bytes]) -> Result<()> {
    let mut body = Vec::with_capacity(entries.iter().map(|e| e.len() + 3).sum::<usize>() + 9);
    let mut enc = minicbor::Encoder::new(&mut body);
    enc.array(entries.len() as u64).expect("vec");
    for e in entries {
        enc.bytes(e).expect("vec");
    }
    let r = http
        .post(format!("{url}/v1/entries"))
        .bearer_auth(token)
        .header("content-type", "application/cbor")
        .body(body)
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("POST /v1/entries: {}: {}", r.status(), r.text().await.unwrap_or_default());
    }
    Ok(())
}

async fn receipts(
    runs: Vec<String>,
    url: String,
    token: String,
    count: usize,
    connections: usize,
) -> Result<serde_json::Value> {
    let http = reqwest::Client::new();
    let runs = Arc::new(runs);
    let next = Arc::new(AtomicUsize::new(0));
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let bytes = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (http, runs, next, lat, url, token, bytes) =
            (http.clone(), runs.clone(), next.clone(), latencies.clone(), url.clone(), token.clone(), bytes.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new(next.load(Ordering::Relaxed) as u64 + 17);
            while next.fetch_add(1, Ordering::Relaxed) < count {
                let run = &runs[rng.range(0, runs.len() as u64 - 1) as usize];
                let t0 = Instant::now();
                let r = http.get(format!("{url}/runs/{run}/receipt")).bearer_auth(&token).send().await?;
                if !r.status().is_success() {
                    bail!("receipt of {run}: {}: {}", r.status(), r.text().await.unwrap_or_default());
                }
                let body = r.bytes().await?;
                lat.lock().expect("lock").push(t0.elapsed());
                bytes.fetch_add(body.len(), Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let elapsed = started.elapsed();
    let lat = latencies.lock().expect("lock").clone();
    let n = lat.len();
    Ok(serde_json::json!({
        "receipts": n,
        "connections": connections,
        "mean_receipt_bytes": bytes.load(Ordering::Relaxed) / n.max(1),
        "receipts_per_s": (n as f64 / elapsed.as_secs_f64()).round(),
        "latency_ms": percentiles(lat),
    }))
}

async fn postgres(b: Batches, conn: String, connections: usize) -> Result<serde_json::Value> {
    let (setup, driver) =
        tokio_postgres::connect(&conn, tokio_postgres::NoTls).await.context("connecting to PostgreSQL")?;
    tokio::spawn(driver);
    setup
        .batch_execute(
            "DROP TABLE IF EXISTS entries;
             CREATE TABLE entries (idx bigserial PRIMARY KEY, run text NOT NULL, seq bigint NOT NULL, entry bytea NOT NULL,
                                   UNIQUE (run, seq));",
        )
        .await?;
    // The run and seq of each entry, as the ledger would index them.
    let decoded: Vec<Vec<(String, i64, Vec<u8>)>> = b
        .batches
        .iter()
        .map(|batch| {
            batch
                .iter()
                .map(|e| {
                    let d = ledger_core::Entry::decode(e).expect("valid");
                    (d.run.into_string(), d.seq as i64, e.to_vec())
                })
                .collect()
        })
        .collect();
    let batches = Arc::new(decoded);
    let next = Arc::new(AtomicUsize::new(0));
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (batches, next, lat, conn) = (batches.clone(), next.clone(), latencies.clone(), conn.clone());
        tasks.push(tokio::spawn(async move {
            let (client, driver) = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await?;
            tokio::spawn(driver);
            client.batch_execute("SET synchronous_commit = on").await?;
            let stmt = client
                .prepare(
                    "INSERT INTO entries (run, seq, entry) SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bytea[])",
                )
                .await?;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(batch) = batches.get(i) else { break };
                let runs: Vec<&str> = batch.iter().map(|(r, _, _)| r.as_str()).collect();
                let seqs: Vec<i64> = batch.iter().map(|(_, s, _)| *s).collect();
                let entries: Vec<&[u8]> = batch.iter().map(|(_, _, e)| e.as_slice()).collect();
                let t0 = Instant::now();
                client.execute(&stmt, &[&runs, &seqs, &entries]).await?;
                lat.lock().expect("lock").push(t0.elapsed());
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let elapsed = started.elapsed();
    let lat = latencies.lock().expect("lock").clone();
    Ok(serde_json::json!({
        "baseline": "postgresql",
        "entries": b.entries,
        "connections": connections,
        "entries_per_s": (b.entries as f64 / elapsed.as_secs_f64()).round(),
        "commit_latency_ms": percentiles(lat),
    }))
}

fn raw(b: Batches, hash: TreeHash, group: usize, dir: &std::path::Path) -> Result<serde_json::Value> {
    let all: Vec<Vec<u8>> = b.batches.into_iter().flatten().map(Vec::from).collect();
    let prepare = a2a_ledger_benches::prepare_floor(&all, hash)?;
    let floor = a2a_ledger_benches::raw_rocksdb(dir, &all, group)?;
    let us = |f: f64| (f * 1e3).round() / 1e3;
    Ok(serde_json::json!({
        "floor": "raw synced RocksDB WriteBatches",
        "entries": all.len(),
        "group": group,
        "entries_per_s": floor.entries_per_s.round(),
        "cpu_us_per_entry": us(floor.cpu_us_per_entry),
        "prepare_us_per_entry": us(prepare.cpu_us_per_entry),
    }))
}

/// The transport floor: gRPC `Append` with nothing behind it.
mod sink {
    use std::pin::Pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use anyhow::Result;
    use ledger_wire::ledger_server::{Ledger, LedgerServer};
    use ledger_wire::{
        AppendRequest, AppendResponse, Checkpoint, Entries, GetCheckpointRequest, GetConsistencyProofRequest,
        GetEntriesRequest, GetInclusionProofRequest, GetLogRequest, GetReceiptRequest, GetRunRequest, LogInfo, Proof,
        Receipt, RunEntries, WatchCheckpointsRequest,
    };
    use ledger_wire::{ErasePayloadRequest, ErasePayloadResponse, GetPayloadRequest, PayloadChunk, PutPayloadResponse};
    use tokio_stream::{Stream, StreamExt as _};
    use tonic::{Request, Response, Status, Streaming};

    type Answers<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

    /// Acknowledges every batch at once with the next indices; stores, checks and signs nothing.
    #[derive(Default)]
    struct Sink {
        size: Arc<AtomicU64>,
    }

    fn only_append() -> Status {
        Status::unimplemented("server-load's transport sink answers only Append")
    }

    /// Serves until killed.
    pub async fn serve(addr: std::net::SocketAddr) -> Result<()> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!("listening grpc http://{}", listener.local_addr()?);
        tonic::transport::Server::builder()
            .add_service(LedgerServer::new(Sink::default()).max_decoding_message_size(64 << 20))
            .serve_with_incoming(::ledger_server::grpc_incoming(listener))
            .await?;
        Ok(())
    }

    #[tonic::async_trait]
    impl Ledger for Sink {
        type AppendStream = Answers<AppendResponse>;
        type GetEntriesStream = Answers<Entries>;
        type WatchCheckpointsStream = Answers<Checkpoint>;
        type GetPayloadStream = Answers<PayloadChunk>;

        async fn append(&self, req: Request<Streaming<AppendRequest>>) -> Result<Response<Self::AppendStream>, Status> {
            let size = self.size.clone();
            let acks = req.into_inner().map(move |r| {
                let r = r?;
                let n = r.entries.len() as u64;
                let first = size.fetch_add(n, Ordering::Relaxed);
                Ok(AppendResponse {
                    batch: r.batch,
                    indices: (first..first + n).collect(),
                    tree_size: first + n,
                    error: None,
                })
            });
            Ok(Response::new(Box::pin(acks)))
        }
        async fn get_checkpoint(&self, _: Request<GetCheckpointRequest>) -> Result<Response<Checkpoint>, Status> {
            Err(only_append())
        }
        async fn get_receipt(&self, _: Request<GetReceiptRequest>) -> Result<Response<Receipt>, Status> {
            Err(only_append())
        }
        async fn get_inclusion_proof(&self, _: Request<GetInclusionProofRequest>) -> Result<Response<Proof>, Status> {
            Err(only_append())
        }
        async fn get_consistency_proof(
            &self,
            _: Request<GetConsistencyProofRequest>,
        ) -> Result<Response<Proof>, Status> {
            Err(only_append())
        }
        async fn get_entries(&self, _: Request<GetEntriesRequest>) -> Result<Response<Self::GetEntriesStream>, Status> {
            Err(only_append())
        }
        async fn watch_checkpoints(
            &self,
            _: Request<WatchCheckpointsRequest>,
        ) -> Result<Response<Self::WatchCheckpointsStream>, Status> {
            Err(only_append())
        }
        async fn get_log(&self, _: Request<GetLogRequest>) -> Result<Response<LogInfo>, Status> {
            Err(only_append())
        }
        async fn get_run(&self, _: Request<GetRunRequest>) -> Result<Response<RunEntries>, Status> {
            Err(only_append())
        }
        async fn put_payload(
            &self,
            _: Request<Streaming<PayloadChunk>>,
        ) -> Result<Response<PutPayloadResponse>, Status> {
            Err(only_append())
        }
        async fn get_payload(&self, _: Request<GetPayloadRequest>) -> Result<Response<Self::GetPayloadStream>, Status> {
            Err(only_append())
        }
        async fn erase_payload(
            &self,
            _: Request<ErasePayloadRequest>,
        ) -> Result<Response<ErasePayloadResponse>, Status> {
            Err(only_append())
        }
        async fn list_runs(
            &self,
            _: Request<ledger_wire::ListRunsRequest>,
        ) -> Result<Response<ledger_wire::ListRunsResponse>, Status> {
            Err(only_append())
        }
    }
}
