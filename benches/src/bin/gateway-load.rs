//! Whole-system load on `runtime-gateway` (figures in BENCHMARKS.md), each beside its baseline
//! measured in the same run:
//!
//! - `latency`: the added latency of the gateway (embedded ledger) against calling the same
//!   upstream directly, for A2A SendMessage (an `a2a` upstream) and `/invoke` (an `http`
//!   upstream), one request at a time, interleaved so drift hits both sides alike. The upstreams
//!   are served by this process and answer at once.
//! - `throughput`: runs per second through `/invoke` on the demo agent, each run six entries
//!   (accepted, working, working, progress, completed, sealed), many clients at once; then a
//!   sample of the runs' receipts is fetched and verified; beside it, the same number of entries
//!   written to a raw synced RocksDB in groups of one entry per client.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use a2a_ledger_benches::{Rng, raw_rocksdb};
use anyhow::{Context as _, Result, bail};
use axum::Router;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use clap::{Parser, Subcommand};
use ledger_core::{LogDescriptor, ReceiptVerifier};
use serde_json::{Value, json};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Added latency of the gateway against the upstream called directly.
    Latency {
        /// The runtime-gateway binary.
        #[arg(long)]
        gateway: PathBuf,
        /// Scratch directory.
        #[arg(long)]
        work: PathBuf,
        /// Requests per series.
        #[arg(long, default_value_t = 2000)]
        n: usize,
    },
    /// Sustained runs per second through /invoke, with receipts.
    Throughput {
        /// The runtime-gateway binary.
        #[arg(long)]
        gateway: PathBuf,
        /// Scratch directory.
        #[arg(long)]
        work: PathBuf,
        /// Seconds of load.
        #[arg(long, default_value_t = 10)]
        secs: u64,
        /// Concurrent clients.
        #[arg(long, default_value_t = 64)]
        conns: usize,
        /// Receipts fetched and verified afterwards.
        #[arg(long, default_value_t = 500)]
        receipts: usize,
    },
    /// Runs/s through /invoke with payloads kept, against the same load with `[payloads] keep =
    /// false`, in alternating rounds on fresh data directories.
    Payloads {
        /// The runtime-gateway binary.
        #[arg(long)]
        gateway: PathBuf,
        /// Scratch directory.
        #[arg(long)]
        work: PathBuf,
        /// Seconds of load per round.
        #[arg(long, default_value_t = 10)]
        secs: u64,
        /// Concurrent clients.
        #[arg(long, default_value_t = 64)]
        conns: usize,
        /// Rounds of each.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// A log with `runs` ended runs and `open` unfinished ones: the gateway's start time (the
    /// unfinished ones ended and sealed before it listens), and GetTask of ended tasks that are
    /// not cached, against GetTask of one cached task.
    History {
        /// The runtime-gateway binary.
        #[arg(long)]
        gateway: PathBuf,
        /// Scratch directory.
        #[arg(long)]
        work: PathBuf,
        /// Ended runs in the log.
        #[arg(long, default_value_t = 1_000_000)]
        runs: usize,
        /// Runs left unfinished.
        #[arg(long, default_value_t = 100)]
        open: usize,
        /// GetTask calls timed.
        #[arg(long, default_value_t = 2000)]
        n: usize,
    },
}

struct Gateway {
    child: Child,
    base: String,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

fn start_gateway(bin: &Path, data: &Path, manifest: Option<&Path>) -> Result<Gateway> {
    Ok(start_timed(bin, data, manifest)?.0)
}

/// Starts the gateway; also returns how long it took to say it was ready.
fn start_timed(bin: &Path, data: &Path, manifest: Option<&Path>) -> Result<(Gateway, Duration)> {
    let began = Instant::now();
    use std::io::BufRead as _;
    let mut cmd = Command::new(bin);
    cmd.args(["--embedded", data.to_str().unwrap(), "--listen", "127.0.0.1:0", "--anonymous"]);
    if let Some(m) = manifest {
        cmd.arg("--manifest").arg(m);
    }
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().context("starting the gateway")?;
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut base = None;
    loop {
        let mut line = String::new();
        if out.read_line(&mut line)? == 0 {
            bail!("the gateway exited before it was ready");
        }
        if let Some(a) = line.strip_prefix("listening http ") {
            base = Some(format!("http://{}", a.trim()));
        }
        if line.starts_with("try:") {
            break;
        }
    }
    let took = began.elapsed();
    std::thread::spawn(move || for _ in out.lines() {});
    Ok((Gateway { child, base: base.context("no listening line")? }, took))
}

/// An upstream served by this process: an A2A 1.0 agent (SendMessage and SendStreamingMessage,
/// answering at once) and a JSON webhook.
async fn upstream() -> Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let base = format!("http://{addr}");
    let card = json!({
        "name": "bench upstream", "description": "answers at once", "version": "1.0.0",
        "supportedInterfaces": [{ "url": base, "protocolBinding": "JSONRPC", "protocolVersion": "1.0" }],
        "capabilities": { "streaming": true }, "defaultInputModes": ["text/plain"], "defaultOutputModes": ["text/plain"],
        "skills": [{ "id": "bench", "name": "bench", "description": "answers at once", "tags": [] }]
    });
    let seq = Arc::new(AtomicU64::new(0));
    let rpc = move |body: axum::Json<Value>| {
        let n = seq.fetch_add(1, Ordering::Relaxed);
        async move {
            let (id, ctx) = (format!("up-{n}"), format!("ctx-{n}"));
            let task = |state: &str| json!({ "id": id, "contextId": ctx, "status": { "state": state } });
            let artifact = json!({ "artifactId": format!("a-{n}"), "name": "out", "parts": [{ "text": "ok" }] });
            match body["method"].as_str() {
                Some("SendStreamingMessage") => {
                    let events = [
                        json!({ "task": task("TASK_STATE_SUBMITTED") }),
                        json!({ "artifactUpdate": { "taskId": id, "contextId": ctx, "artifact": artifact } }),
                        json!({ "statusUpdate": { "taskId": id, "contextId": ctx, "status": { "state": "TASK_STATE_COMPLETED" } } }),
                    ];
                    let mut sse = String::new();
                    for e in events {
                        sse.push_str(&format!(
                            "data: {}\n\n",
                            json!({ "jsonrpc": "2.0", "id": body["id"], "result": e })
                        ));
                    }
                    ([("content-type", "text/event-stream")], sse).into_response()
                }
                _ => {
                    let mut t = task("TASK_STATE_COMPLETED");
                    t["artifacts"] = json!([artifact]);
                    axum::Json(json!({ "jsonrpc": "2.0", "id": body["id"], "result": { "task": t } })).into_response()
                }
            }
        }
    };
    let app = Router::new()
        .route("/.well-known/agent-card.json", get(move || async move { axum::Json(card) }))
        .route("/", post(rpc))
        .route("/hook", post(|body: axum::Json<Value>| async move { axum::Json(json!({ "echo": body.0 })) }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn summary(name: &str, mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&v, 0.5), percentile(&v, 0.99));
    println!("{name:<34} p50 {p50:>7.3} ms   p99 {p99:>7.3} ms   (n = {})", v.len());
    (p50, p99)
}

async fn timed(req: reqwest::RequestBuilder) -> Result<f64> {
    let t = Instant::now();
    let r = req.send().await?;
    let status = r.status();
    let body = r.bytes().await?;
    if !status.is_success() {
        bail!("{status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(t.elapsed().as_secs_f64() * 1e3)
}

async fn latency(bin: &Path, work: &Path, n: usize) -> Result<()> {
    let up = upstream().await?;
    let manifest = work.join("agents.toml");
    std::fs::write(
        &manifest,
        format!(
            "[[agent]]\nname = \"relay\"\nupstream = {{ kind = \"a2a\", url = \"http://{up}\" }}\n[[agent.skill]]\nid = \"relay\"\nname = \"relay\"\n\n\
             [[agent]]\nname = \"hook\"\nupstream = {{ kind = \"http\", url = \"http://{up}/hook\" }}\n[[agent.skill]]\nid = \"hook\"\nname = \"hook\"\n"
        ),
    )?;
    let gw = start_gateway(bin, &work.join("gw"), Some(&manifest))?;
    let http = reqwest::Client::new();
    let send = |url: &str, i: usize| {
        let body = json!({ "jsonrpc": "2.0", "id": i, "method": "SendMessage",
            "params": { "message": { "messageId": format!("m{i}"), "role": "ROLE_USER", "parts": [{ "text": "hello" }] } } });
        http.post(url).header("A2A-Version", "1.0").json(&body)
    };
    let (direct_rpc, gw_rpc) = (format!("http://{up}/"), format!("{}/", gw.base));
    let (direct_hook, gw_invoke) = (format!("http://{up}/hook"), format!("{}/invoke/hook", gw.base));
    // Warm up connections and caches.
    for i in 0..200 {
        timed(send(&direct_rpc, i)).await?;
        timed(send(&gw_rpc, i)).await?;
        timed(http.post(&gw_invoke).json(&json!({ "i": i }))).await?;
    }
    let (mut d_rpc, mut g_rpc, mut d_hook, mut g_inv) = (vec![], vec![], vec![], vec![]);
    for i in 0..n {
        d_rpc.push(timed(send(&direct_rpc, i)).await?);
        g_rpc.push(timed(send(&gw_rpc, i)).await?);
        d_hook.push(timed(http.post(&direct_hook).json(&json!({ "i": i }))).await?);
        g_inv.push(timed(http.post(&gw_invoke).json(&json!({ "i": i }))).await?);
    }
    println!("== latency, one request at a time, {n} each, interleaved");
    let (a50, a99) = summary("SendMessage, upstream directly", d_rpc);
    let (b50, b99) = summary("SendMessage through the gateway", g_rpc);
    let (c50, c99) = summary("webhook POST, upstream directly", d_hook);
    let (e50, e99) = summary("/invoke through the gateway", g_inv);
    println!("added by the gateway: SendMessage p50 {:.3} ms, p99 {:.3} ms", b50 - a50, b99 - a99);
    println!("added by the gateway: /invoke     p50 {:.3} ms, p99 {:.3} ms", e50 - c50, e99 - c99);

    // The same SendMessage over the A2A gRPC binding (HTTP/2 on the same listener), against
    // JSON-RPC to the same gateway and upstream, interleaved.
    use runtime_gateway::surface::a2a::grpc::proto as pb;
    let mut grpc = pb::a2a_service_client::A2aServiceClient::connect(gw.base.clone()).await?;
    let grpc_send = |i: usize| {
        let part = pb::Part { content: Some(pb::part::Content::Text("hello".into())), ..Default::default() };
        let message = pb::Message {
            message_id: format!("g{i}"),
            role: pb::Role::User as i32,
            parts: vec![part],
            ..Default::default()
        };
        let mut r = tonic::Request::new(pb::SendMessageRequest { message: Some(message), ..Default::default() });
        r.metadata_mut().insert("a2a-version", tonic::metadata::MetadataValue::from_static("1.0"));
        r
    };
    for i in 0..200 {
        grpc.send_message(grpc_send(i)).await?;
        timed(send(&gw_rpc, i)).await?;
    }
    let (mut over_grpc, mut over_json) = (vec![], vec![]);
    for i in 0..n {
        let t = Instant::now();
        grpc.send_message(grpc_send(i)).await?;
        over_grpc.push(t.elapsed().as_secs_f64() * 1e3);
        over_json.push(timed(send(&gw_rpc, i)).await?);
    }
    println!("== SendMessage through the gateway by binding, {n} each, interleaved");
    let (j50, j99) = summary("SendMessage, JSON-RPC", over_json);
    let (g50, g99) = summary("SendMessage, gRPC", over_grpc);
    println!("gRPC over JSON-RPC: p50 {:+.3} ms, p99 {:+.3} ms (ratio p50 {:.2})", g50 - j50, g99 - j99, g50 / j50);
    drop(gw);

    // MCP tools/call (stateless, protocol 2026-07-28) against /invoke of the same skill on the
    // demo agent, interleaved.
    let gw = start_gateway(bin, &work.join("gw-mcp"), None)?;
    let mcp = format!("{}/mcp", gw.base);
    let invoke = format!("{}/invoke/echo", gw.base);
    let call = |i: usize| {
        let body = json!({ "jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {
            "name": "echo", "arguments": { "text": "hello" },
            "_meta": { "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {} } } });
        http.post(&mcp)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "echo")
            .json(&body)
    };
    for i in 0..200 {
        timed(call(i)).await?;
        timed(http.post(&invoke).json(&json!({ "text": "hello" }))).await?;
    }
    let (mut m, mut inv) = (vec![], vec![]);
    for i in 0..n {
        m.push(timed(call(i)).await?);
        inv.push(timed(http.post(&invoke).json(&json!({ "text": "hello" }))).await?);
    }
    let (i50, i99) = summary("/invoke/echo (demo agent)", inv);
    let (m50, m99) = summary("MCP tools/call echo (2026-07-28)", m);
    println!("added by MCP over /invoke: p50 {:.3} ms, p99 {:.3} ms", m50 - i50, m99 - i99);
    Ok(())
}

/// Runs/s of `/invoke/slow` (one step, no delay) from `conns` clients for `secs` seconds.
async fn load(base: &str, secs: u64, conns: usize) -> Result<f64> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(conns).build()?;
    let url = format!("{base}/invoke/slow");
    let body = json!({ "steps": 1, "delay_ms": 0 });
    let deadline = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..conns {
        let (http, url, body) = (http.clone(), url.clone(), body.clone());
        clients.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                let v: Value = http.post(&url).json(&body).send().await?.json().await?;
                if v["status"] != "completed" {
                    bail!("a run ended {v}");
                }
                n += 1;
            }
            Ok::<_, anyhow::Error>(n)
        }));
    }
    let mut runs = 0;
    for c in clients {
        runs += c.await??;
    }
    Ok(runs as f64 / start.elapsed().as_secs_f64())
}

async fn payloads(bin: &Path, work: &Path, secs: u64, conns: usize, rounds: usize) -> Result<()> {
    println!("== payloads: {conns} clients, {secs} s a round, /invoke/slow, embedded ledger; kept vs hashes only");
    let mut ratios = Vec::new();
    for round in 0..rounds {
        let mut rate = [0.0; 2];
        for (i, keep) in [true, false].into_iter().enumerate() {
            let data = work.join(format!("r{round}-{keep}"));
            std::fs::create_dir_all(&data)?;
            std::fs::write(data.join("gateway.toml"), format!("anonymous = true\n[payloads]\nkeep = {keep}\n"))?;
            let gw = start_gateway(bin, &data, None)?;
            rate[i] = load(&gw.base, secs, conns).await?;
            drop(gw);
        }
        println!(
            "round {round}: payloads kept {:>7.0} runs/s   hashes only {:>7.0} runs/s   ratio {:.2}",
            rate[0],
            rate[1],
            rate[0] / rate[1]
        );
        ratios.push(rate[0] / rate[1]);
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "ratio kept / hashes only: median {:.2} (min {:.2}, max {:.2})",
        ratios[ratios.len() / 2],
        ratios[0],
        ratios[ratios.len() - 1]
    );
    Ok(())
}

/// Fills a gateway's data directory with `runs` ended runs (as the gateway records them: the
/// input kept, `task.accepted` with a context, `working`, `task.completed`, the seal by the
/// gateway's key) and `open` runs left at `working`, as a process killed mid-run leaves them.
fn fill(data: &Path, runs: usize, open: usize) -> Result<Vec<String>> {
    use ledger_core::payload::{PayloadLimits, PayloadStore};
    use ledger_core::seal::seal_event_from_leaves;
    use ledger_core::{Entry, Event, NamedKey, Protocol, RunId, RunStatus};
    let d = ledger_core::DataDir::new(data);
    let origin = d.existing_origin()?.context("no log in the data directory")?;
    let log = d.open_keeping_hash(&origin, ledger_core::LogConfig::default(), &Default::default(), bail_seed)?;
    let key = NamedKey::load_or_create(&data.join("identity-gateway.key"), "gateway", bail_seed)?;
    let payloads = PayloadStore::new(log.store().clone(), PayloadLimits::default());
    let h = log.hash();
    let mut rng = Rng::from_os();
    let mut ids = Vec::with_capacity(runs);
    let ts = 1_790_000_000_000_000_000i64;
    let mut batch: Vec<Vec<u8>> = Vec::new();
    let entry = |run: &RunId, seq: u64, event: Event| {
        Entry { ts: ts + seq as i64, run: run.clone(), seq, actor: "gateway".into(), event, grant: None, payload: None }
            .encode()
    };
    for i in 0..runs + open {
        let id = format!("bench-{i:08}-{:016x}", rng.next_u64());
        let run = RunId::new(&id)?;
        let input = serde_json::to_vec(&json!({ "steps": 1, "n": i }))?;
        let input_hash = *blake3::hash(&input).as_bytes();
        payloads.put(&input_hash, &input)?;
        let accepted = Event::TaskAccepted {
            protocol: Protocol::Https,
            skill: "slow".into(),
            caller: "anonymous".into(),
            input_hash,
            context: Some(format!("ctx-{}", i / 4)),
            parent: None,
        };
        let mut run_entries = vec![
            entry(&run, 0, accepted),
            entry(&run, 1, Event::TaskStatus { state: "working".into(), message: None }),
        ];
        if i < runs {
            run_entries.push(entry(
                &run,
                2,
                Event::TaskEnded { status: RunStatus::Completed, elapsed_ms: 1, artifacts: Vec::new(), error: None },
            ));
            let leaves: Vec<_> = run_entries.iter().map(|e| h.leaf(e)).collect();
            run_entries.push(entry(&run, 3, seal_event_from_leaves(&id, &leaves, RunStatus::Completed, &key)));
            ids.push(id);
        }
        batch.extend(run_entries);
        if batch.len() >= 4000 {
            log.append(std::mem::take(&mut batch))?;
        }
    }
    if !batch.is_empty() {
        log.append(batch)?;
    }
    log.close()?;
    Ok(ids)
}

fn bail_seed() -> std::io::Result<[u8; 32]> {
    Err(std::io::Error::other("the bench fills an existing data directory; it makes no keys"))
}

async fn history(bin: &Path, work: &Path, runs: usize, open: usize, n: usize) -> Result<()> {
    let data = work.join("gw");
    std::fs::create_dir_all(&data)?;
    // One cached task at most: every GetTask below of another task is rebuilt from the ledger.
    std::fs::write(data.join("gateway.toml"), "anonymous = true\ntask_retention = 1\n")?;
    drop(start_gateway(bin, &data, None)?);
    let t = Instant::now();
    let ids = tokio::task::spawn_blocking({
        let data = data.clone();
        move || fill(&data, runs, open)
    })
    .await??;
    println!(
        "== history: {runs} ended runs and {open} unfinished in the log (filled in {:.0} s)",
        t.elapsed().as_secs_f64()
    );
    let (gw, took) = start_timed(bin, &data, None)?;
    println!("gateway start to listening, {open} runs ended and sealed on the way   {:>8.2} s", took.as_secs_f64());
    let http = reqwest::Client::new();
    let get = |id: String| {
        let (http, url) = (http.clone(), format!("{}/", gw.base));
        async move {
            let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": { "id": id } });
            let t = Instant::now();
            let v: Value = http.post(&url).header("A2A-Version", "1.0").json(&body).send().await?.json().await?;
            if v["result"]["status"]["state"] != "TASK_STATE_COMPLETED" {
                bail!("GetTask {id}: {v}");
            }
            Ok::<_, anyhow::Error>(t.elapsed().as_secs_f64() * 1e3)
        }
    };
    let mut rng = Rng::from_os();
    let mut uncached = Vec::with_capacity(n);
    let mut cached = Vec::with_capacity(n);
    let hot = ids[0].clone();
    get(hot.clone()).await?;
    for _ in 0..n {
        uncached.push(get(ids[rng.range(1, ids.len() as u64) as usize].clone()).await?);
        cached.push(get(hot.clone()).await?);
    }
    summary("GetTask of an ended task not cached", uncached);
    summary("baseline: GetTask of a cached task", cached);
    drop(gw);
    Ok(())
}

async fn throughput(bin: &Path, work: &Path, secs: u64, conns: usize, sample: usize) -> Result<()> {
    let data = work.join("gw");
    let gw = start_gateway(bin, &data, None)?;
    let http = reqwest::Client::builder().pool_max_idle_per_host(conns).build()?;
    let url = format!("{}/invoke/slow", gw.base);
    let body = json!({ "steps": 1, "delay_ms": 0 });
    let deadline = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..conns {
        let (http, url, body) = (http.clone(), url.clone(), body.clone());
        clients.push(tokio::spawn(async move {
            let mut runs = Vec::new();
            while Instant::now() < deadline {
                let r = http.post(&url).json(&body).send().await?;
                let v: Value = r.json().await?;
                if v["status"] != "completed" {
                    bail!("a run ended {v}");
                }
                runs.push(v["run"].as_str().unwrap_or_default().to_string());
            }
            Ok::<_, anyhow::Error>(runs)
        }));
    }
    let mut runs = Vec::new();
    for c in clients {
        runs.extend(c.await??);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let rate = runs.len() as f64 / elapsed;
    println!("== throughput: {conns} clients, {secs} s, /invoke/slow (6 entries a run), embedded ledger");
    println!(
        "runs completed and sealed          {:>10}  {rate:>9.0} runs/s  ({:.0} entries/s)",
        runs.len(),
        rate * 6.0
    );

    // Receipts: a random sample, fetched and verified.
    let desc: LogDescriptor = serde_json::from_str(&std::fs::read_to_string(data.join("log.json"))?)?;
    let mut verifier = ReceiptVerifier::new(desc)?;
    let mut rng = Rng::from_os();
    let t = Instant::now();
    for _ in 0..sample.min(runs.len()) {
        let run = &runs[rng.range(0, runs.len() as u64) as usize];
        let bytes = http.get(format!("{}/runs/{run}/receipt?wait=10", gw.base)).send().await?.bytes().await?;
        let v = verifier.verify_json(&bytes).with_context(|| format!("receipt of {run}"))?;
        if v.views().len() != 6 {
            bail!("run {run} has {} entries, not 6", v.views().len());
        }
    }
    println!(
        "receipts fetched and verified      {:>10}  ({:.0}/s, one at a time)",
        sample,
        sample as f64 / t.elapsed().as_secs_f64()
    );
    drop(gw);

    // Baseline: the same number of entries as raw synced RocksDB batches of `conns` entries (with
    // one run in flight per client, a commit group holds about one entry per client).
    let entries = runs.len() * 6;
    let mut rng = Rng::from_os();
    let payload: Vec<Vec<u8>> = (0..entries).map(|_| (0..230).map(|_| rng.next_u64() as u8).collect()).collect();
    let group = conns;
    let raw = raw_rocksdb(&work.join("raw"), &payload, group)?.entries_per_s;
    println!(
        "baseline: raw RocksDB, synced groups of {group:<4} {:>9.0} entries/s  ({:.0} six-entry runs/s)",
        raw,
        raw / 6.0
    );
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        match cli.cmd {
            Cmd::Latency { gateway, work, n } => latency(&gateway, &work, n).await,
            Cmd::Throughput { gateway, work, secs, conns, receipts } => {
                throughput(&gateway, &work, secs, conns, receipts).await
            }
            Cmd::Payloads { gateway, work, secs, conns, rounds } => {
                payloads(&gateway, &work, secs, conns, rounds).await
            }
            Cmd::History { gateway, work, runs, open, n } => history(&gateway, &work, runs, open, n).await,
        }
    })
}
