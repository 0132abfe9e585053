//! `ledger-witness --data DIR --listen ADDR --log DESCRIPTOR.json [--log …] [--name NAME]`: a C2SP
//! `tlog-witness` serving `POST /add-checkpoint` and `GET /checkpoint/<origin>` (docs/FORMATS.md §10).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result};
use clap::Parser;
use ledger_core::{LogDescriptor, NamedKey};
use ledger_witness::Witness;

/// A C2SP tlog-witness for a2a-ledger logs.
#[derive(Debug, Parser)]
#[command(name = "ledger-witness", version)]
struct Args {
    /// Directory of the witness key (witness.key, mode 0600), witness.vkey, logs/ and evidence/.
    #[arg(long)]
    data: PathBuf,
    /// Address to listen on (port 0: any free port; the address is printed).
    #[arg(long)]
    listen: SocketAddr,
    /// A log descriptor (JSON: origin, hash, vkey) of a log to witness; repeat for more logs.
    #[arg(long = "log", required = true)]
    logs: Vec<PathBuf>,
    /// The witness's key name, when creating its key (default: the stored key's name, else
    /// `ledger-witness`).
    #[arg(long)]
    name: Option<String>,
}

fn os_seed() -> std::io::Result<[u8; 32]> {
    let mut s = [0u8; 32];
    getrandom::fill(&mut s).map_err(std::io::Error::other)?;
    Ok(s)
}

/// Loads `DIR/witness.key` or creates it (mode 0600, written atomically by ledger-core).
fn load_key(data: &Path, name: Option<&str>) -> Result<NamedKey> {
    let path = data.join("witness.key");
    let stored_name = match std::fs::read_to_string(&path) {
        Ok(text) => Some(
            NamedKey::from_private_string(&text).with_context(|| format!("{}", path.display()))?.name().to_string(),
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("{}", path.display())),
    };
    let name = name.map(str::to_string).or(stored_name).unwrap_or_else(|| "ledger-witness".into());
    Ok(NamedKey::load_or_create(&path, &name, os_seed)?)
}

fn main() -> Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.data).with_context(|| format!("{}", args.data.display()))?;
    let mut logs = Vec::new();
    for p in &args.logs {
        let text = std::fs::read_to_string(p).with_context(|| format!("{}", p.display()))?;
        let d: LogDescriptor =
            serde_json::from_str(&text).with_context(|| format!("{}: not a log descriptor", p.display()))?;
        logs.push(d);
    }
    let key = load_key(&args.data, args.name.as_deref())?;
    let witness = Witness::open(&args.data, key, &logs)?;
    let vkey = witness.vkey().to_string();
    let vkey_path = args.data.join("witness.vkey");
    std::fs::write(&vkey_path, format!("{vkey}\n")).with_context(|| format!("{}", vkey_path.display()))?;

    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("{}", args.listen))?;
        println!("witness vkey {vkey}");
        println!("listening on {}", listener.local_addr()?);
        axum::serve(listener, ledger_witness::http::router(Arc::new(witness)))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        Ok(())
    })
}
