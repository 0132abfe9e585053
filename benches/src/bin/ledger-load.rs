//! `ledger-load`: whole-system load on the durable path of `ledger-core`.
//!
//! `ledger-load durable` pushes realistic runs (5–20 entries of ~300 bytes, ending in a seal)
//! through the sequencer from many concurrent appenders into RocksDB, then writes the very same
//! bytes as raw synced RocksDB WriteBatches of the same mean size (the floor), and reports both.
//!
//! `ledger-load crash-child` appends until it is killed, printing `ACK <index> <blake3>` for each
//! acknowledged entry; the crash test kills it with SIGKILL and checks what survived.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use a2a_ledger_benches::{Rng, identity_entry, realistic_run};
use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
use ledger_core::{DataDir, LogConfig, NamedKey, RocksConfig, TreeHash};

#[derive(Parser)]
#[command(about = "Whole-system load runs for a2a-ledger")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Durable ingest through the sequencer, beside raw synced RocksDB WriteBatches.
    Durable {
        /// Data directory (a fresh temporary one by default).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Entries to append.
        #[arg(long, default_value_t = 1_000_000)]
        entries: usize,
        /// Concurrent appenders, each appending one whole run per call.
        #[arg(long, default_value_t = 64)]
        appenders: usize,
        /// Use the in-memory store instead of RocksDB (isolates the pipeline from the disk).
        #[arg(long)]
        mem: bool,
        /// Batches each appender keeps in flight (a pipelining gRPC stream has several).
        #[arg(long, default_value_t = 1)]
        window: usize,
        /// Tree hash.
        #[arg(long, default_value = "blake3")]
        hash: TreeHash,
    },
    /// Append runs until killed, printing each acknowledged entry (for the crash test).
    CrashChild {
        /// Data directory.
        #[arg(long)]
        data: PathBuf,
        /// Prefix of the run ids, unique per child.
        #[arg(long)]
        prefix: String,
        /// Concurrent appenders.
        #[arg(long, default_value_t = 8)]
        appenders: usize,
        /// RocksDB memtable size in bytes: a small one makes memtables flush to SST files (and
        /// the WAL switch) while the child appends, so kills land around flushes too.
        #[arg(long)]
        write_buffer_bytes: Option<usize>,
    },
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Durable { data, entries, appenders, window, hash, mem } => {
            durable(data, entries, appenders, window.max(1), hash, mem)
        }
        Cmd::CrashChild { data, prefix, appenders, write_buffer_bytes } => {
            crash_child(&data, &prefix, appenders, write_buffer_bytes)
        }
    }
}

fn os_seed() -> std::io::Result<[u8; 32]> {
    let mut s = [0u8; 32];
    getrandom::fill(&mut s).map_err(std::io::Error::other)?;
    Ok(s)
}

const ORIGIN: &str = "load.a2a-ledger.example/log";

fn identity() -> NamedKey {
    NamedKey::from_seed("gateway", [0x42; 32]).expect("valid name")
}

fn durable(
    data: Option<PathBuf>,
    total: usize,
    appenders: usize,
    window: usize,
    hash: TreeHash,
    mem: bool,
) -> Result<()> {
    let tmp = tempdir_under_target()?;
    let root = data.unwrap_or_else(|| tmp.clone());
    let key = identity();

    // Generate every run up front so that only ingest is timed.
    let mut rng = Rng::new(1);
    let mut runs = Vec::new();
    let mut n = 0;
    while n < total {
        let run = realistic_run(hash, &format!("load-{}", runs.len()), &key, &mut rng);
        n += run.len();
        // Shared buffers, as a gateway or the server holds entries: a batch clones references.
        runs.push(run.into_iter().map(bytes::Bytes::from).collect::<Vec<_>>());
    }
    let bytes: usize = runs.iter().flatten().map(bytes::Bytes::len).sum();
    eprintln!("generated {n} entries in {} runs, mean {} bytes", runs.len(), bytes / n);

    let cfg = LogConfig { hash, ..LogConfig::default() };
    let log = Arc::new(if mem {
        let key = NamedKey::from_seed(ORIGIN, os_seed()?)?;
        ledger_core::Log::open(Arc::new(ledger_core::MemStore::new()), key, cfg)?
    } else {
        DataDir::new(root.join("ledger"))
            .open(ORIGIN, cfg, &RocksConfig::default(), os_seed)
            .context("opening the ledger")?
    });
    log.append(vec![identity_entry(&key)])?;
    let before = log.stats();
    let runs = Arc::new(runs);
    let next = Arc::new(AtomicUsize::new(0));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(runs.len())));
    let started = Instant::now();
    let threads: Vec<_> = (0..appenders)
        .map(|_| {
            let (log, runs, next, latencies) = (log.clone(), runs.clone(), next.clone(), latencies.clone());
            std::thread::spawn(move || -> Result<()> {
                let mut mine = Vec::new();
                let (tx, rx) = std::sync::mpsc::channel::<(Duration, ledger_core::Result<Vec<u64>>)>();
                let mut in_flight = 0;
                loop {
                    if in_flight == window {
                        let (lat, r) = rx.recv()?;
                        r?;
                        mine.push(lat);
                        in_flight -= 1;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(run) = runs.get(i) else { break };
                    let (t, tx) = (Instant::now(), tx.clone());
                    log.append_with(run.clone(), move |r| {
                        let _ = tx.send((t.elapsed(), r));
                    });
                    in_flight += 1;
                }
                for _ in 0..in_flight {
                    let (lat, r) = rx.recv()?;
                    r?;
                    mine.push(lat);
                }
                latencies.lock().expect("not poisoned").extend(mine);
                Ok(())
            })
        })
        .collect();
    for t in threads {
        t.join().expect("appender panicked")?;
    }
    let elapsed = started.elapsed();
    let stats = log.stats();
    let batches = stats.batches - before.batches;
    let syncs = stats.syncs - before.syncs;
    let committed = stats.entries - before.entries;
    let mean_group = (committed / batches.max(1)) as usize;
    // One sync covers every group written before it: the floor gets one synced WriteBatch per
    // sync, so both sides make the same number of fsyncs.
    let per_sync = (committed / syncs.max(1)) as usize;
    let rate = committed as f64 / elapsed.as_secs_f64();
    let mut lat = latencies.lock().expect("not poisoned").clone();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    log.close()?;
    drop(log);

    // The floor: the same bytes as raw synced WriteBatches of the entries per sync, one writer.
    let all: Vec<Vec<u8>> =
        Arc::try_unwrap(runs).expect("threads joined").into_iter().flatten().map(Vec::from).collect();
    let raw_rate = a2a_ledger_benches::raw_rocksdb(&root.join("raw"), &all, per_sync)?.entries_per_s;

    let report = serde_json::json!({
        "entries": committed,
        "appenders": appenders,
        "window": window,
        "hash": hash.name(),
        "store": if mem { "memory" } else { "rocksdb" },
        "mean_entry_bytes": bytes / n,
        "mean_group_entries": mean_group,
        "mean_entries_per_sync": per_sync,
        "sequencer_entries_per_s": rate.round(),
        "raw_rocksdb_entries_per_s": raw_rate.round(),
        "ratio_to_raw": (rate / raw_rate * 1000.0).round() / 1000.0,
        "append_latency_ms": {
            "p50": pct(0.50).as_secs_f64() * 1e3,
            "p99": pct(0.99).as_secs_f64() * 1e3,
            "p999": pct(0.999).as_secs_f64() * 1e3,
        },
        "mean_commit_ms": (stats.commit_nanos - before.commit_nanos) as f64 / batches.max(1) as f64 / 1e6,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    if root == tmp {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    Ok(())
}

fn tempdir_under_target() -> Result<PathBuf> {
    let base = std::env::var_os("LOAD_TMPDIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos();
    let dir = base.join(format!("ledger-load-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn crash_child(data: &Path, prefix: &str, appenders: usize, write_buffer_bytes: Option<usize>) -> Result<()> {
    let key = identity();
    let cfg = LogConfig { checkpoint_interval: Duration::from_millis(20), ..LogConfig::default() };
    let mut rocks = RocksConfig::default();
    if let Some(n) = write_buffer_bytes {
        rocks.write_buffer_bytes = n;
    }
    let log = Arc::new(DataDir::new(data).open(ORIGIN, cfg, &rocks, os_seed)?);
    log.append(vec![identity_entry(&key)])?; // idempotent after the first child
    let out = Arc::new(Mutex::new(std::io::stdout()));
    writeln!(out.lock().expect("stdout"), "READY")?;
    let threads: Vec<_> = (0..appenders)
        .map(|t| {
            let (log, out, prefix) = (log.clone(), out.clone(), prefix.to_string());
            std::thread::spawn(move || -> Result<()> {
                let key = identity();
                let mut rng = Rng::from_os();
                for r in 0.. {
                    let run = realistic_run(log.hash(), &format!("{prefix}-{t}-{r}"), &key, &mut rng);
                    // Half the runs go in entry by entry, as a gateway records them live.
                    let batches: Vec<Vec<Vec<u8>>> =
                        if r % 2 == 0 { vec![run] } else { run.into_iter().map(|e| vec![e]).collect() };
                    for batch in batches {
                        let indices = log.append(batch.clone())?;
                        let mut o = out.lock().expect("stdout");
                        for (i, e) in indices.iter().zip(&batch) {
                            writeln!(o, "ACK {i} {}", blake3::hash(e).to_hex())?;
                        }
                        o.flush()?;
                    }
                }
                Ok(())
            })
        })
        .collect();
    for t in threads {
        t.join().expect("appender panicked")?;
    }
    Ok(())
}
