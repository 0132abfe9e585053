//! `bus-load`: whole-system load on a bus deployment (`ledger-server --bus` on a NATS JetStream
//! cluster; `benches/bus.sh` runs it beside the single-node baseline).
//!
//! - `ingest`: several gateway identities (`gw-1` …) publish realistic sealed runs (the traffic
//!   of `server-load ingest`: 5–20 entries of ~300 bytes, 8 runs a batch) on their subjects
//!   `ledger.<L>.in.<gw>` through `ledger_bus::publish::Publisher`, each with a window of
//!   batches in flight, after publishing its `identity.registered`. Reports entries/s from the
//!   first publish until a replica serves a checkpoint covering every entry (its `/healthz`
//!   `checkpoint_size`), the acknowledgement (publish → `PubAck`) percentiles, and
//!   acknowledgement → checkpoint: from a batch's `PubAck` to the first note on `ledger.<L>.cp`
//!   whose size covers the batch's last index, the index read from the sequencer's result on
//!   `ledger.<L>.result.<gw>`.
//! - `failover`: the same load offered at a modest rate; after a warm-up, SIGKILLs the lease
//!   holder (its pid is in the lease value) and reports the time from the kill to the first
//!   checkpoint on `ledger.<L>.cp` with a higher `A2A-Ledger-Lease` term.
//! - `catch-up`: starts the given command (a fresh `ledger-server --bus` replica on an empty
//!   directory), and times until its `/healthz` `bus.position` reaches the stream's last
//!   sequence: entries applied per second.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use a2a_ledger_benches::{Batches, cpu_time, identity_entry, percentiles};
use anyhow::{Context as _, Result, bail};
use bytes::Bytes;
use clap::{Parser, Subcommand};
use futures_util::StreamExt as _;
use ledger_bus::names::{LEASE_BUCKET, LogName};
use ledger_bus::publish::{Publisher, PublisherConfig};
use ledger_bus::signer::LEASE_HEADER;
use ledger_core::{NamedKey, TreeHash};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(about = "Whole-system load on a bus deployment of the ledger")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Clone)]
struct Bus {
    /// The NATS servers, comma-separated.
    #[arg(long)]
    bus: String,
    /// The log.
    #[arg(long, default_value = "main")]
    log: String,
}

#[derive(clap::Args, Clone)]
struct Traffic {
    /// Entries to send, over all gateways (whole runs, so slightly more).
    #[arg(long, default_value_t = 200_000)]
    entries: usize,
    /// Gateway identities publishing (`gw-1` …), one NATS connection and publisher each.
    #[arg(long, default_value_t = 4)]
    gateways: usize,
    /// Batches each gateway keeps unacknowledged.
    #[arg(long, default_value_t = 16)]
    in_flight: usize,
    /// Runs per batch (a gateway batches the runs that end together).
    #[arg(long, default_value_t = 8)]
    runs_per_batch: usize,
    /// Offered load in entries/s over all gateways (0: as fast as acknowledgements allow).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Seed of the traffic.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Run-id prefix (unique per load run against one log).
    #[arg(long, default_value = "bus")]
    prefix: String,
    /// The log's tree hash (the seals' content hashes use it).
    #[arg(long, default_value = "blake3")]
    hash: TreeHash,
}

#[derive(Subcommand)]
enum Cmd {
    /// Ingest through the bus until a replica serves a checkpoint of everything.
    Ingest {
        #[command(flatten)]
        bus: Bus,
        #[command(flatten)]
        traffic: Traffic,
        /// A read replica's HTTP address, whose `/healthz` must show the covering checkpoint.
        #[arg(long)]
        replica: String,
        /// Also report the CPU this process spent per entry: `NAME=PID`, repeatable.
        #[arg(long)]
        cpu_of: Vec<String>,
    },
    /// Kill the lease holder under load; time until the next term's first checkpoint.
    Failover {
        #[command(flatten)]
        bus: Bus,
        #[command(flatten)]
        traffic: Traffic,
        /// Seconds of load before the kill.
        #[arg(long, default_value_t = 3)]
        warmup_s: u64,
        /// Longest wait for the new term's checkpoint, in seconds.
        #[arg(long, default_value_t = 40)]
        max_s: u64,
    },
    /// Start a fresh replica (the command after `--`) and time its catch-up.
    CatchUp {
        #[command(flatten)]
        bus: Bus,
        /// The replica's command line; it must print `listening http ADDR`.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
}

/// A connection to the deployment's NATS servers (named `name`), once JetStream answers.
async fn connect(bus: &Bus, name: &str) -> Result<async_nats::jetstream::Context> {
    Ok(ledger_bus::connect(&bus.bus, name, &ledger_bus::Auth::default(), Duration::from_secs(10)).await?)
}

fn gateway_key(i: usize) -> NamedKey {
    NamedKey::from_seed(&format!("gw-{}", i + 1), [0x50 + i as u8; 32]).expect("key")
}

/// Checkpoints seen on the checkpoint subject, and the batches waiting for one.
#[derive(Default)]
struct Checkpoints {
    /// Every note seen: (size, lease term, arrival).
    seen: Vec<(u64, u64, Instant)>,
    /// Acknowledged batches with no covering checkpoint yet: (last index, acknowledgement).
    pending: Vec<(u64, Instant)>,
    /// Acknowledgement → covering checkpoint.
    latency: Vec<Duration>,
}

impl Checkpoints {
    /// A note of `size` of `term` arrived at `now`.
    fn note(&mut self, size: u64, term: u64, now: Instant) {
        self.seen.push((size, term, now));
        let latency = &mut self.latency;
        self.pending.retain(|(last, at)| {
            let covered = *last < size;
            if covered {
                latency.push(now.saturating_duration_since(*at));
            }
            !covered
        });
    }

    /// A batch whose last entry got index `last` was acknowledged at `at` (its result may come
    /// after the covering note did: the sequencer applies from the stream, not from the ack).
    fn acknowledged(&mut self, last: u64, at: Instant) {
        match self.seen.iter().find(|(size, _, _)| last < *size) {
            Some((_, _, t)) => self.latency.push(t.saturating_duration_since(at)),
            None => self.pending.push((last, at)),
        }
    }
}

/// Follows the checkpoint subject (a core subscription: every note the stream stores passes
/// through it) into `cps` until `stop`.
async fn watch_checkpoints(
    client: async_nats::Client,
    log: &LogName,
    cps: Arc<Mutex<Checkpoints>>,
    stop: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>> {
    let mut sub = client.subscribe(log.checkpoint_subject()).await?;
    Ok(tokio::spawn(async move {
        loop {
            let m = tokio::select! {
                () = stop.cancelled() => return,
                m = sub.next() => match m { Some(m) => m, None => return },
            };
            let now = Instant::now();
            let text = String::from_utf8_lossy(&m.payload);
            let Some(size) = text.lines().nth(1).and_then(|l| l.parse::<u64>().ok()) else { continue };
            let term =
                m.headers.as_ref().and_then(|h| h.get(LEASE_HEADER)).and_then(|v| v.as_str().parse().ok()).unwrap_or(0);
            cps.lock().expect("lock").note(size, term, now);
        }
    }))
}

/// What one load measured.
#[derive(Default)]
struct Measured {
    /// Publish → `PubAck`, every batch.
    ack: Vec<Duration>,
    /// Each acknowledgement's instant and latency, for the failover window.
    acks_at: Vec<(Instant, Duration)>,
    /// The largest index any batch got.
    last_index: u64,
    /// Entries acknowledged.
    entries: usize,
    /// Batches refused by the sequencer.
    refused: usize,
}

/// Starts one publisher per gateway, registers each identity (waiting for the sequencer's
/// result, so the run timing starts on a log that knows every gateway).
async fn publishers(bus: &Bus, gateways: usize, in_flight: usize) -> Result<Vec<Arc<Publisher>>> {
    let log = LogName::parse(&bus.log)?;
    let mut out = Vec::new();
    for g in 0..gateways {
        let key = gateway_key(g);
        let client = connect(bus, key.name()).await?.client();
        let mut cfg = PublisherConfig::new(log.clone(), key.name());
        cfg.in_flight = in_flight.max(1);
        let p = Arc::new(Publisher::start(client, cfg).await?);
        let acked = p.publish(vec![Bytes::from(identity_entry(&key))])?.wait().await?;
        if let Err(e) = p.result(acked.position).await?.outcome {
            bail!("registering {}: {}: {}", key.name(), e.code, e.message);
        }
        out.push(p);
    }
    Ok(out)
}

/// Publishes every gateway's batches, each gateway with `in_flight` unacknowledged at most,
/// paced to `rate` entries/s over all (0: unpaced), until done or `stop`.
async fn load(
    pubs: &[Arc<Publisher>],
    traffic: Vec<Batches>,
    in_flight: usize,
    rate: u64,
    cps: Arc<Mutex<Checkpoints>>,
    stop: CancellationToken,
) -> Result<Measured> {
    let measured: Arc<Mutex<Measured>> = Arc::default();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (p, t) in pubs.iter().cloned().zip(traffic) {
        let (measured, cps, stop) = (measured.clone(), cps.clone(), stop.clone());
        // Pacing: this gateway's batch i may go at started + i * (mean batch entries / its rate).
        let per_batch = (rate > 0).then(|| {
            Duration::from_secs_f64(t.entries as f64 / t.batches.len() as f64 / (rate as f64 / pubs.len() as f64))
        });
        tasks.push(tokio::spawn(async move {
            let window = Arc::new(tokio::sync::Semaphore::new(in_flight.max(1)));
            let mut waits = tokio::task::JoinSet::new();
            for (i, batch) in t.batches.into_iter().enumerate() {
                if let Some(d) = per_batch {
                    tokio::select! {
                        () = tokio::time::sleep_until((started + d * i as u32).into()) => {}
                        () = stop.cancelled() => break,
                    }
                }
                let permit = tokio::select! {
                    p = window.clone().acquire_owned() => p.expect("open"),
                    () = stop.cancelled() => break,
                };
                let n = batch.len();
                let t0 = Instant::now();
                let pending = p.publish(batch)?;
                let (p, measured, cps) = (p.clone(), measured.clone(), cps.clone());
                waits.spawn(async move {
                    let acked = pending.wait().await?;
                    let at = Instant::now();
                    drop(permit);
                    {
                        let mut m = measured.lock().expect("lock");
                        m.ack.push(at - t0);
                        m.acks_at.push((at, at - t0));
                    }
                    let result = tokio::time::timeout(Duration::from_secs(30), p.result(acked.position))
                        .await
                        .with_context(|| format!("no result for position {} within 30 s", acked.position))??;
                    match result.outcome {
                        Ok(indices) => {
                            let last = *indices.iter().max().context("a result without indices")?;
                            cps.lock().expect("lock").acknowledged(last, at);
                            let mut m = measured.lock().expect("lock");
                            m.last_index = m.last_index.max(last);
                            m.entries += n;
                        }
                        Err(_) => measured.lock().expect("lock").refused += 1,
                    }
                    anyhow::Ok(())
                });
            }
            while let Some(r) = waits.join_next().await {
                r??;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let m = std::mem::take(&mut *measured.lock().expect("lock"));
    Ok(m)
}

/// Every gateway's traffic: `entries` split evenly, each gateway's runs sealed by its own key.
fn traffic_of(t: &Traffic) -> Vec<Batches> {
    let per = t.entries.div_ceil(t.gateways.max(1));
    (0..t.gateways.max(1))
        .map(|g| {
            let key = gateway_key(g);
            a2a_ledger_benches::traffic(
                t.hash,
                &key,
                per,
                t.runs_per_batch,
                t.seed * 100 + g as u64,
                &format!("{}-{}", t.prefix, key.name()),
            )
        })
        .collect()
}

async fn healthz(http: &reqwest::Client, url: &str) -> Result<serde_json::Value> {
    Ok(http.get(format!("{url}/healthz")).send().await?.error_for_status()?.json().await?)
}

async fn ingest(bus: Bus, t: Traffic, replica: String, cpu_of: Vec<String>) -> Result<serde_json::Value> {
    let log = LogName::parse(&bus.log)?;
    let traffic = traffic_of(&t);
    let (entries, bytes, batches): (usize, usize, usize) =
        traffic.iter().fold((0, 0, 0), |(e, b, n), x| (e + x.entries, b + x.bytes, n + x.batches.len()));
    let pubs = publishers(&bus, t.gateways, t.in_flight).await?;
    let cps: Arc<Mutex<Checkpoints>> = Arc::default();
    let stop = CancellationToken::new();
    let watcher = watch_checkpoints(connect(&bus, "bus-load").await?.client(), &log, cps.clone(), stop.clone()).await?;
    let pids: Vec<(String, String)> = cpu_of
        .iter()
        .map(|s| s.split_once('=').map(|(n, p)| (n.to_owned(), p.to_owned())).context("--cpu-of NAME=PID"))
        .collect::<Result<_>>()?;
    let cpu_before: Vec<Duration> = pids.iter().map(|(_, p)| cpu_time(p)).chain([cpu_time("self")]).collect();

    let started = Instant::now();
    let m = load(&pubs, traffic, t.in_flight, t.rate, cps.clone(), stop.clone()).await?;
    // The stream's side: until the last acknowledgement (`load` returns once every result is in).
    let acked = m.acks_at.iter().map(|(at, _)| *at).max().unwrap_or(started) - started;
    let resulted = started.elapsed();
    // Until the replica serves a checkpoint of everything: the last index + 1.
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let h = healthz(&http, &replica).await?;
        if h["checkpoint_size"].as_u64().unwrap_or(0) > m.last_index {
            break;
        }
        if Instant::now() > deadline {
            bail!("the replica serves no checkpoint of size {} within 120 s: {h}", m.last_index + 1);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let covered = started.elapsed();
    let cpu_after: Vec<Duration> = pids.iter().map(|(_, p)| cpu_time(p)).chain([cpu_time("self")]).collect();
    // The checkpoints covering the last batches are in flight to the watcher still.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cps.lock().expect("lock").pending.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.cancel();
    watcher.await?;
    for p in &pubs {
        p.close(Duration::from_secs(5)).await;
    }
    let per_entry = |d: Duration| (d.as_secs_f64() * 1e6 / entries.max(1) as f64 * 1e3).round() / 1e3;
    let mut cpu = serde_json::Map::new();
    for (i, name) in pids.iter().map(|(n, _)| n.as_str()).chain(["load_generator"]).enumerate() {
        cpu.insert(name.into(), per_entry(cpu_after[i].saturating_sub(cpu_before[i])).into());
    }
    let cp = std::mem::take(&mut cps.lock().expect("lock").latency);
    let js = connect(&bus, "bus-load").await?;
    let (lease_holder, _, _) = holder(&js, &log).await?;
    Ok(serde_json::json!({
        "path": "bus",
        "lease_holder": lease_holder,
        "gateways": t.gateways,
        "in_flight_per_gateway": t.in_flight,
        "entries": entries,
        "batches": batches,
        "mean_entry_bytes": bytes / entries.max(1),
        "refused_batches": m.refused,
        "offered_rate": t.rate,
        "seconds_to_last_ack": acked.as_secs_f64(),
        "seconds_to_last_result": resulted.as_secs_f64(),
        "seconds_to_covering_checkpoint": covered.as_secs_f64(),
        "acked_entries_per_s": (entries as f64 / acked.as_secs_f64()).round(),
        "entries_per_s": (entries as f64 / covered.as_secs_f64()).round(),
        "ack_latency_ms": percentiles(m.ack),
        "ack_to_checkpoint_ms": percentiles(cp),
        "cpu_us_per_entry": cpu,
    }))
}

/// The lease holder now: (holder, pid, term), from the lease value and its revision.
async fn holder(js: &async_nats::jetstream::Context, log: &LogName) -> Result<(String, u32, u64)> {
    let kv = js.get_key_value(LEASE_BUCKET).await?;
    let e = kv.entry(log.lease_key()).await?.context("nobody holds the lease")?;
    if e.operation != async_nats::jetstream::kv::Operation::Put {
        bail!("nobody holds the lease (its last operation is {:?})", e.operation);
    }
    let v: serde_json::Value = serde_json::from_slice(&e.value)?;
    let pid = v["pid"].as_u64().context("a lease value without a pid")? as u32;
    Ok((v["holder"].as_str().unwrap_or("").to_owned(), pid, e.revision))
}

async fn failover(bus: Bus, t: Traffic, warmup: Duration, max: Duration) -> Result<serde_json::Value> {
    if t.rate == 0 {
        bail!("failover needs a modest offered --rate");
    }
    let log = LogName::parse(&bus.log)?;
    let traffic = traffic_of(&t);
    let pubs = publishers(&bus, t.gateways, t.in_flight).await?;
    let js = connect(&bus, "bus-load").await?;
    let client = js.client();
    let cps: Arc<Mutex<Checkpoints>> = Arc::default();
    let stop = CancellationToken::new();
    let watcher = watch_checkpoints(client, &log, cps.clone(), stop.clone()).await?;
    let load = {
        let (pubs, cps, stop) = (pubs.clone(), cps.clone(), stop.clone());
        tokio::spawn(async move { load(&pubs, traffic, t.in_flight, t.rate, cps, stop).await })
    };
    tokio::time::sleep(warmup).await;
    let (name, pid, term) = holder(&js, &log).await?;
    let status = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status()?;
    let killed = Instant::now();
    if !status.success() {
        bail!("kill -KILL {pid} ({name}): {status}");
    }
    // The killed holder's term as its notes carry it (the revision it acquired at; `term` is
    // the lease's revision now, the holder's latest renewal), and its last note before the kill.
    let last_old = cps.lock().expect("lock").seen.last().map(|(_, tm, at)| (*tm, *at));
    let (next, next_size) = loop {
        let found =
            cps.lock().expect("lock").seen.iter().find(|(_, tm, _)| *tm > term).map(|(s, tm, at)| (*at, *s, *tm));
        if let Some((at, size, tm)) = found {
            break ((at, tm), size);
        }
        if killed.elapsed() > max {
            bail!("no checkpoint of a term after {term} within {max:?} of killing {name}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let (new_holder, _, _) = holder(&js, &log).await?;
    stop.cancel();
    let m = load.await??;
    watcher.await?;
    for p in &pubs {
        p.close(Duration::from_secs(5)).await;
    }
    // Acknowledgements while no signer signed: the stream takes batches all the same.
    let during: Vec<Duration> =
        m.acks_at.iter().filter(|(at, _)| *at >= killed && *at <= next.0).map(|(_, d)| *d).collect();
    let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
    Ok(serde_json::json!({
        "killed": name,
        "killed_term": last_old.map(|(tm, _)| tm),
        "lease_revision_at_kill": term,
        "new_holder": new_holder,
        "new_term": next.1,
        "offered_rate": t.rate,
        "kill_to_new_term_checkpoint_ms": ms(next.0 - killed),
        "last_old_term_checkpoint_to_new_ms": last_old.map(|(_, l)| ms(next.0 - l)),
        "first_new_term_checkpoint_size": next_size,
        "acks_between_kill_and_new_checkpoint": during.len(),
        "ack_latency_ms_between": percentiles(during),
        "ack_latency_ms_whole_run": percentiles(m.ack),
        "refused_batches": m.refused,
    }))
}

async fn catch_up(bus: Bus, command: Vec<String>) -> Result<serde_json::Value> {
    let log = LogName::parse(&bus.log)?;
    let js = connect(&bus, "bus-load").await?;
    let last = js.get_stream(log.ingest_stream()).await?.get_info().await?.state.last_sequence;
    let started = Instant::now();
    let mut child = std::process::Command::new(&command[0])
        .args(&command[1..])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", command[0]))?;
    let pid = child.id().to_string();
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = tokio::sync::oneshot::channel();
    // Reads the child's stdout to its end (a full pipe would stop it), handing on its address.
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        let mut tx = Some(tx);
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(a) = line.trim().strip_prefix("listening http ")
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(a.to_owned());
            }
        }
    });
    let outcome = async {
        let addr = tokio::time::timeout(Duration::from_secs(30), rx).await.context("the replica did not listen")??;
        let url = if addr.starts_with("http") { addr } else { format!("http://{addr}") };
        let listening = started.elapsed();
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let h = healthz(&http, &url).await?;
            if h["bus"]["position"].as_u64().unwrap_or(0) >= last {
                return anyhow::Ok((listening, started.elapsed(), h["tree_size"].as_u64().unwrap_or(0)));
            }
            if Instant::now() > deadline {
                bail!("the replica did not reach position {last} within 300 s: {h}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    .await;
    let cpu = cpu_time(&pid);
    let _ = child.kill();
    let _ = child.wait();
    let (listening, done, size) = outcome?;
    Ok(serde_json::json!({
        "stream_last_sequence": last,
        "tree_size": size,
        "seconds_to_listen": listening.as_secs_f64(),
        "seconds": done.as_secs_f64(),
        "entries_per_s": (size as f64 / done.as_secs_f64()).round(),
        "messages_per_s": (last as f64 / done.as_secs_f64()).round(),
        "replica_cpu_us_per_entry": (cpu.as_secs_f64() * 1e6 / size.max(1) as f64 * 1e3).round() / 1e3,
    }))
}

fn main() -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = match Cli::parse().cmd {
        Cmd::Ingest { bus, traffic, replica, cpu_of } => rt.block_on(ingest(bus, traffic, replica, cpu_of))?,
        Cmd::Failover { bus, traffic, warmup_s, max_s } => {
            rt.block_on(failover(bus, traffic, Duration::from_secs(warmup_s), Duration::from_secs(max_s)))?
        }
        Cmd::CatchUp { bus, command } => rt.block_on(catch_up(bus, command))?,
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_covered_by_the_first_note_larger_than_its_last_index_whichever_arrives_first() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut c = Checkpoints::default();
        // A note of size 10 arrived before the ack of a batch ending at index 9: covered at once
        // (zero wait: the sequencer got the batch from the stream before its ack came back).
        c.note(10, 1, at(5));
        c.acknowledged(9, at(7));
        assert_eq!(c.latency, vec![Duration::ZERO]);
        // A batch ending at index 10 is not covered by size 10; size 11 covers it.
        c.acknowledged(10, at(8));
        assert_eq!(c.pending, vec![(10, at(8))]);
        c.note(11, 1, at(20));
        assert_eq!(c.latency, vec![Duration::ZERO, Duration::from_millis(12)]);
        assert!(c.pending.is_empty());
    }
}
