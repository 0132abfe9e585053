//! `ledger-witness --data DIR --listen ADDR --log DESCRIPTOR.json [--log …] [--name NAME]`: a C2SP
//! `tlog-witness` serving `POST /add-checkpoint` and `GET /checkpoint/<origin>` (docs/FORMATS.md §10).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use clap::Parser;
use ledger_core::{LogDescriptor, NamedKey};
use ledger_witness::{MAX_BODY_BYTES, Refusal, Witness};

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
        let app = Router::new()
            .route("/add-checkpoint", post(add_checkpoint))
            .route("/checkpoint/{*origin}", get(checkpoint))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(Arc::new(witness));
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        Ok(())
    })
}

async fn add_checkpoint(State(w): State<Arc<Witness>>, body: Bytes) -> Response {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
    // Verification, the per-log lock and the fsyncs block: off the async workers.
    let result = tokio::task::spawn_blocking(move || w.add_checkpoint(&body, now)).await;
    match result {
        Ok(Ok(line)) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], line).into_response(),
        Ok(Err(refusal)) => refusal_response(&refusal),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

fn refusal_response(r: &Refusal) -> Response {
    let status = StatusCode::from_u16(r.status()).expect("a valid status");
    if matches!(r, Refusal::Storage(_)) {
        eprintln!("ledger-witness: {r}");
    }
    match r.latest_size() {
        // C2SP: a 409 carries the latest cosigned size as `text/x.tlog.size`.
        Some(size) => (status, [(header::CONTENT_TYPE, "text/x.tlog.size")], format!("{size}\n")).into_response(),
        None => (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{r}\n")).into_response(),
    }
}

async fn checkpoint(State(w): State<Arc<Witness>>, UrlPath(origin): UrlPath<String>) -> Response {
    match w.latest(&origin) {
        Some(note) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note).into_response(),
        None => (StatusCode::NOT_FOUND, format!("no cosigned checkpoint of {origin:?}\n")).into_response(),
    }
}
