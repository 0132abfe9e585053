//! `runtime-gateway`: today, `runtime-gateway demo --embedded DIR` records a run of the built-in
//! demo agent into an embedded ledger on RocksDB, seals it with the gateway's identity, and
//! prints its verified receipt. The protocol listeners build on the same recorder.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};
use ledger_core::{DataDir, Event, LogConfig, Protocol, ReceiptVerifier, RocksConfig, RunStatus, TreeHash};
use runtime_gateway::{EmbeddedLedger, LedgerSink, RunRecorder, identity, register_identity};

#[derive(Parser)]
#[command(name = "runtime-gateway", version, about = "The a2a-ledger runtime gateway")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Record one run of the demo agent in an embedded ledger and print its verified receipt.
    ///
    /// Example:
    ///   runtime-gateway demo --embedded ./data
    Demo {
        /// Data directory of the embedded ledger (RocksDB, log key, gateway identity).
        #[arg(long)]
        embedded: PathBuf,
        /// Log origin, used when the directory is new.
        #[arg(long, default_value = "localhost/a2a-ledger")]
        origin: String,
        /// Tree hash, fixed when the directory is new.
        #[arg(long, default_value = "blake3")]
        hash: TreeHash,
        /// The gateway's identity name.
        #[arg(long, default_value = "gateway")]
        identity: String,
    },
}

fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}

fn main() -> Result<()> {
    let Cli { cmd: Cmd::Demo { embedded, origin, hash, identity: name } } = Cli::parse();
    let dir = DataDir::new(&embedded);
    let origin = dir.existing_origin()?.unwrap_or(origin);
    let cfg = LogConfig { hash, ..LogConfig::default() };
    let log = dir
        .open(&origin, cfg, &RocksConfig::default(), identity::os_seed)
        .with_context(|| format!("opening the embedded ledger in {}", embedded.display()))?;
    let log = Arc::new(log);
    let sink: Arc<dyn LedgerSink> = Arc::new(EmbeddedLedger::new(log.clone()));
    let key = Arc::new(identity::load_or_create(&embedded.join(format!("identity-{name}.key")), &name)?);
    let registered = register_identity(&*sink, &key, now_ns())?;

    // The demo agent's "summarize" skill: accepted, working, two progress steps, an artifact.
    let run = format!("demo-{:x}", now_ns());
    let input = br#"{"text":"a2a-ledger records every state transition of every agent run."}"#;
    let mut rec = RunRecorder::start(
        sink.clone(),
        key.clone(),
        &run,
        Protocol::Https,
        "summarize",
        "local-user",
        input,
        now_ns(),
    )?;
    rec.record(Event::TaskStatus { state: "working".into(), message: Some("summarizing".into()) }, now_ns())?;
    for (pct, stage) in [(40, "read"), (80, "write")] {
        rec.record(Event::SkillProgress { stage: stage.into(), pct, message: format!("{stage} done") }, now_ns())?;
    }
    let summary = b"Every agent run is recorded and sealed.";
    rec.record(
        Event::ArtifactAdded {
            name: "summary.txt".into(),
            media_type: "text/plain".into(),
            bytes: summary.len() as u64,
            hash: *blake3::hash(summary).as_bytes(),
        },
        now_ns(),
    )?;
    let seal_index = rec.finish(RunStatus::Completed, vec!["summary.txt".into()], None, now_ns())?;

    let receipt = sink.receipt(&run, Duration::from_secs(10)).context("waiting for the checkpoint over the seal")?;
    let verified = ReceiptVerifier::new(sink.descriptor())?.verify(&receipt).context("verifying the receipt")?;
    if verified.status != RunStatus::Completed {
        bail!("the demo run ended {}", verified.status);
    }
    let receipts = embedded.join("receipts");
    std::fs::create_dir_all(&receipts)?;
    let receipt_path = receipts.join(format!("{run}.json"));
    std::fs::write(&receipt_path, receipt.to_json())?;
    let log_path = embedded.join("log.json");
    std::fs::write(&log_path, serde_json::to_string_pretty(&sink.descriptor())?)?;

    println!(
        "ledger     {} ({}), {} entries, checkpoint at size {}",
        origin,
        log.hash(),
        log.durable_size(),
        verified.checkpoint.size
    );
    println!("identity   {} registered at index {registered}", key.name());
    println!("run        {run}: {} entries, sealed at index {seal_index}, receipt verified", verified.entries.len());
    for (index, e) in &verified.entries {
        println!("  {:>2} {:<8} {}", e.seq, index, e.kind());
    }
    println!("receipt    {}", receipt_path.display());
    println!("log        {}", log_path.display());
    println!("verify it offline:");
    println!(
        "  cargo run --release -p verifier-cli -- receipt {} --log {}",
        receipt_path.display(),
        log_path.display()
    );
    log.close()?;
    Ok(())
}
