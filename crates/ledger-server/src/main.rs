//! `ledger-server`: administers a ledger data directory (`DIR/log.key`, `DIR/rocksdb/`).
//!
//! `ledger-server init --data DIR` creates a log (origin and tree hash are fixed from then on);
//! `ledger-server status --data DIR` prints its descriptor, size and newest checkpoint.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};
use ledger_core::{DataDir, LogConfig, RocksConfig, TreeHash};

#[derive(Parser)]
#[command(name = "ledger-server", version, about = "The a2a-ledger service")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a log in a new data directory and print its descriptor.
    ///
    /// Example:
    ///   ledger-server init --data /var/lib/a2a-ledger --origin ledger.example.com/prod --hash sha256
    Init {
        /// Data directory.
        #[arg(long)]
        data: PathBuf,
        /// Origin: the log's name in checkpoints and its key name (no spaces, no '+').
        #[arg(long)]
        origin: String,
        /// Tree hash: blake3 (default) or sha256 (for RFC 6962 / C2SP tooling and witnesses).
        #[arg(long, default_value = "blake3")]
        hash: TreeHash,
    },
    /// Print the descriptor, tree size and newest checkpoint of an existing log.
    ///
    /// Example:
    ///   ledger-server status --data /var/lib/a2a-ledger
    Status {
        /// Data directory.
        #[arg(long)]
        data: PathBuf,
        /// The log's tree hash (a log refuses to open with another).
        #[arg(long, default_value = "blake3")]
        hash: TreeHash,
    },
}

fn seed() -> std::io::Result<[u8; 32]> {
    let mut s = [0u8; 32];
    getrandom::fill(&mut s).map_err(std::io::Error::other)?;
    Ok(s)
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Init { data, origin, hash } => {
            let dir = DataDir::new(&data);
            if let Some(existing) = dir.existing_origin()? {
                bail!("{} already holds the log {existing:?}; refusing to create another", data.display());
            }
            let log = dir.open(&origin, LogConfig { hash, ..LogConfig::default() }, &RocksConfig::default(), seed)?;
            println!("{}", serde_json::to_string_pretty(log.descriptor())?);
            eprintln!("created {} (log key {}, mode 0600)", data.display(), dir.key_path().display());
            log.close()?;
        }
        Cmd::Status { data, hash } => {
            let dir = DataDir::new(&data);
            let Some(origin) = dir.existing_origin()? else {
                bail!(
                    "{} holds no log (no {}); create one with `ledger-server init`",
                    data.display(),
                    dir.key_path().display()
                );
            };
            let log = dir
                .open(&origin, LogConfig { hash, ..LogConfig::default() }, &RocksConfig::default(), || {
                    unreachable!("the key exists")
                })
                .with_context(|| format!("opening {}", data.display()))?;
            let cp = log.checkpoint();
            let status = serde_json::json!({
                "log": log.descriptor(),
                "tree_size": log.durable_size(),
                "checkpoint": cp.note,
            });
            println!("{}", serde_json::to_string_pretty(&status)?);
            log.close()?;
        }
    }
    Ok(())
}
