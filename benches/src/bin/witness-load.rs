//! `witness-load`: `add-checkpoint` load against a running `ledger-witness`, and the floor beside
//! it (`benches/witness-load.sh` runs them in one go).
//!
//! - `logs`: writes the descriptors of `--count` test logs (`log-<i>.json`, `sha256`, keys from
//!   fixed seeds) for the witness's `--log` flags.
//! - `load`: one client per log, all concurrent; each submits its log's checkpoints of sizes 1, 2,
//!   3 … in turn, each with the consistency proof from the size before (a growing, consistent log,
//!   as a log asks its witnesses). The bodies are made and signed before the clock starts.
//!   Reports requests/s, latency percentiles and the witness's CPU per request.
//! - `floor`: the signature work one request needs, in process: the log signature of a checkpoint
//!   verified (strict Ed25519, the note parsed) and a `cosignature/v1` signed over it, on one
//!   thread and on two at once; and the durable state write (temporary file, fsync, rename,
//!   directory fsync) one thread can do per second in the same directory as the witness.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use a2a_ledger_benches::cpu_time;
use anyhow::{Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use clap::{Parser, Subcommand};
use ledger_core::witness::Cosignature;
use ledger_core::{Checkpoint, LogDescriptor, MemTree, NamedKey, TreeHash};

#[derive(Parser)]
#[command(about = "add-checkpoint load against ledger-witness, and its Ed25519 floor")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Writes the descriptors of the test logs into a directory.
    Logs {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 16)]
        count: usize,
    },
    /// Submits growing consistent checkpoints of every log, one client per log.
    Load {
        /// The witness (http://host:port).
        #[arg(long)]
        url: String,
        /// Logs (and concurrent clients), as written by `logs`.
        #[arg(long, default_value_t = 16)]
        count: usize,
        /// Requests per log.
        #[arg(long, default_value_t = 500)]
        requests: u64,
        /// The witness's process id, for its CPU time.
        #[arg(long)]
        cpu_of: Option<String>,
    },
    /// The in-process floor: log-signature verify + cosignature sign, one and two threads; and
    /// durable state writes in `dir`.
    Floor {
        #[arg(long)]
        dir: PathBuf,
        /// Seconds per measurement.
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
    },
}

fn origin(i: usize) -> String {
    format!("bench.example/log-{i}")
}

fn log_key(i: usize) -> NamedKey {
    let mut seed = [0x42; 32];
    seed[..8].copy_from_slice(&(i as u64).to_be_bytes());
    NamedKey::from_seed(&origin(i), seed).expect("key")
}

/// The request bodies of log `i`: sizes 1..=n, each from the size before.
fn bodies(i: usize, n: u64) -> Vec<String> {
    let key = log_key(i);
    let mut tree = MemTree::new(TreeHash::Sha256);
    let mut out = Vec::with_capacity(n as usize);
    for size in 1..=n {
        tree.push_entry(format!("entry {size} of log {i}").as_bytes());
        let proof = if size == 1 { vec![] } else { tree.consistency_proof(size - 1, size).expect("proof") };
        let cp = Checkpoint { origin: origin(i), size, root: tree.root(), extensions: vec![] };
        let mut body = format!("old {}\n", size - 1);
        for h in proof {
            body.push_str(&B64.encode(h));
            body.push('\n');
        }
        body.push('\n');
        body.push_str(&cp.sign(&key));
        out.push(body);
    }
    out
}

fn percentiles(mut v: Vec<Duration>) -> serde_json::Value {
    v.sort();
    let p = |q: f64| {
        let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
        (v[i].as_secs_f64() * 1e5).round() / 100.0
    };
    serde_json::json!({"p50": p(0.5), "p90": p(0.9), "p99": p(0.99), "max": p(1.0)})
}

async fn load(url: &str, count: usize, requests: u64, cpu_of: Option<&str>) -> Result<serde_json::Value> {
    let all: Vec<Vec<String>> = (0..count).map(|i| bodies(i, requests)).collect();
    let client = reqwest::Client::builder().pool_max_idle_per_host(count).build()?;
    let target = format!("{url}/add-checkpoint");
    let cpu_before = cpu_of.map(cpu_time);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for mine in all {
        let (client, target) = (client.clone(), target.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(mine.len());
            for body in mine {
                let t = Instant::now();
                let r = client.post(&target).body(body).send().await?;
                let status = r.status();
                let text = r.text().await?;
                if status != 200 || !text.starts_with('\u{2014}') {
                    bail!("witness answered {status}: {text}");
                }
                lat.push(t.elapsed());
            }
            Ok::<_, anyhow::Error>(lat)
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await??);
    }
    let wall = started.elapsed();
    let n = lat.len() as f64;
    let mut out = serde_json::json!({
        "logs": count,
        "requests": lat.len(),
        "seconds": (wall.as_secs_f64() * 1000.0).round() / 1000.0,
        "requests_per_s": (n / wall.as_secs_f64()).round(),
        "latency_ms": percentiles(lat),
    });
    if let (Some(pid), Some(before)) = (cpu_of, cpu_before) {
        let cpu = cpu_time(pid).saturating_sub(before);
        out["witness_cpu_us_per_request"] = ((cpu.as_secs_f64() * 1e6 / n * 10.0).round() / 10.0).into();
    }
    Ok(out)
}

/// One request's signature work, `iterations` times: parse and verify the log's checkpoint, sign
/// a cosignature over it.
fn sign_verify(iterations: u64, note: &str, log: &ledger_core::VerifierKey, witness: &NamedKey) {
    for t in 0..iterations {
        let cp = Checkpoint::open(note, log).expect("verifies");
        let text = ledger_core::Note::parse(note).expect("note");
        let c = Cosignature::sign(text.text(), witness, 1_700_000_000 + t).expect("sign");
        std::hint::black_box((cp, c));
    }
}

fn floor(dir: &std::path::Path, seconds: f64) -> Result<serde_json::Value> {
    let key = log_key(0);
    let note = bodies(0, 3).pop().expect("one");
    let note = note[note.find("\n\n").expect("blank") + 2..].to_string();
    let log = key.verifier();
    let witness = NamedKey::from_seed("bench.example/witness", [9; 32])?;
    // Calibrate, then run for about `seconds`.
    let t = Instant::now();
    sign_verify(200, &note, &log, &witness);
    let per = t.elapsed().as_secs_f64() / 200.0;
    let iterations = ((seconds / per) as u64).max(200);
    let t = Instant::now();
    sign_verify(iterations, &note, &log, &witness);
    let one = iterations as f64 / t.elapsed().as_secs_f64();
    let shared = Arc::new((note, log, witness));
    let t = Instant::now();
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let s = shared.clone();
            std::thread::spawn(move || sign_verify(iterations, &s.0, &s.1, &s.2))
        })
        .collect();
    for th in threads {
        th.join().expect("thread");
    }
    let two = 2.0 * iterations as f64 / t.elapsed().as_secs_f64();

    // The durable write the witness does per request (write_private_file: temp, fsync, rename,
    // directory fsync), one thread, the same note-sized file.
    std::fs::create_dir_all(dir)?;
    let file = dir.join("state.note");
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let (mut writes, t) = (0u64, Instant::now());
    while Instant::now() < deadline {
        ledger_core::keys::write_private_file(&file, shared.0.as_bytes())?;
        writes += 1;
    }
    let durable = writes as f64 / t.elapsed().as_secs_f64();
    Ok(serde_json::json!({
        "sign_verify_per_s_one_thread": one.round(),
        "sign_verify_per_s_two_threads": two.round(),
        "durable_state_writes_per_s_one_thread": durable.round(),
    }))
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let out = match cli.cmd {
        Cmd::Logs { dir, count } => {
            std::fs::create_dir_all(&dir)?;
            for i in 0..count {
                let d = LogDescriptor::new(&log_key(i).verifier(), TreeHash::Sha256);
                std::fs::write(dir.join(format!("log-{i}.json")), serde_json::to_vec(&d)?)?;
            }
            return Ok(());
        }
        Cmd::Load { url, count, requests, cpu_of } => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(load(&url, count, requests, cpu_of.as_deref()))?,
        Cmd::Floor { dir, seconds } => floor(&dir, seconds)?,
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
