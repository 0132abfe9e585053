//! `ledger-server --data DIR`: serves a ledger over HTTP and gRPC. `status` prints what a data
//! directory holds. See `ledger-server --help`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
use ledger_core::TreeHash;
use ledger_server::config::{self, Overrides};

#[derive(Parser)]
#[command(
    name = "ledger-server",
    version,
    about = "The a2a-ledger service: ingest over gRPC and HTTP; receipts, proofs, tiles and compliance packs",
    long_about = "The a2a-ledger service.\n\n\
        Serves the log in --data over HTTP (axum) and gRPC (ledger.v1.Ledger). On a first start it creates \
        the log key, DIR/server.toml (principals as token hashes) and DIR/tokens.json (mode 0600: an ingest \
        token for the identity `gateway` and an auditor token, written once).\n\n\
        Example:\n  ledger-server --data /var/lib/a2a-ledger --http 0.0.0.0:7700 --grpc 0.0.0.0:7701",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Data directory (log key, RocksDB, server.toml, tokens.json).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Configuration file (default: DIR/server.toml, created on first start).
    #[arg(long)]
    config: Option<PathBuf>,
    /// HTTP listen address [default: 127.0.0.1:7700].
    #[arg(long)]
    http: Option<SocketAddr>,
    /// gRPC listen address [default: 127.0.0.1:7701].
    #[arg(long)]
    grpc: Option<SocketAddr>,
    /// Origin of a new log (its name in checkpoints); an existing log refuses another.
    #[arg(long)]
    origin: Option<String>,
    /// Tree hash of a new log: blake3 (default) or sha256; an existing log refuses another.
    #[arg(long)]
    hash: Option<TreeHash>,
    /// Milliseconds between checkpoints while the log grows [default: 100].
    #[arg(long)]
    checkpoint_interval_ms: Option<u64>,
    /// Requests in progress at once on each front end before more are refused with 503 /
    /// UNAVAILABLE `overloaded` [default: 1024].
    #[arg(long)]
    max_concurrent_requests: Option<usize>,
    /// Milliseconds a request may take until its answer starts; streams are not cut, receipt
    /// long polls get their wait on top [default: 30000].
    #[arg(long)]
    request_timeout_ms: Option<u64>,
    /// A C2SP tlog-policy file naming witnesses (each with its URL) and a quorum: checkpoints
    /// are submitted to the witnesses and served only once cosigned by the quorum (SPEC §8).
    #[arg(long, value_name = "FILE")]
    witness_policy: Option<PathBuf>,
    /// Milliseconds one round of requests to the witnesses may take [default: 5000].
    #[arg(long)]
    witness_timeout_ms: Option<u64>,
    /// Follow a log on the NATS JetStream bus instead of taking appends (comma-separated server
    /// URLs, e.g. nats://10.0.0.1:4222,nats://10.0.0.2:4222). With the log key in --data the
    /// server is the signer or its standby (whoever holds the lease signs); with
    /// --log-descriptor and no key, a read replica. Appends answer 409 `read_only`.
    #[arg(long, value_name = "URLS")]
    bus: Option<String>,
    /// The log's name on the bus (1 to 32 of a-z, 0-9, '-') [default: main].
    #[arg(long, requires = "bus", default_value = "main")]
    bus_log: String,
    /// This process's name in the lease and on the NATS servers [default: ledger-server-<pid>].
    #[arg(long, requires = "bus")]
    bus_name: Option<String>,
    /// The NATS user to connect as; its password comes from A2A_LEDGER_BUS_PASSWORD.
    #[arg(long, requires = "bus")]
    bus_user: Option<String>,
    /// The descriptor (JSON, as `GET /v1/log` gives it) of the bus log, pinned by the operator.
    /// With no log key in --data the server is a read replica: it serves only checkpoints that
    /// verify under the descriptor's key. With the key, the key must be the descriptor's.
    #[arg(long, value_name = "FILE", requires = "bus")]
    log_descriptor: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// The NATS JetStream bus: `bus init` creates what logs need on it.
    Bus {
        #[command(subcommand)]
        cmd: BusCmd,
    },
    /// Create a log in a new data directory and print its descriptor (serving creates one too).
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
    /// Print the descriptor, tree size and newest checkpoint of a data directory.
    ///
    /// With --check, also check everything the store holds against its entries (leaf hashes,
    /// tiles, run index, checkpoints, the tree's right edge), reading only: exit 0 when all
    /// agrees, 1 with each finding on stderr, 2 when the check could not be made. Best run on a
    /// stopped server (it sees the store as it was when opened).
    ///
    /// Example:
    ///   ledger-server status --data /var/lib/a2a-ledger
    ///   ledger-server status --check --data /var/lib/a2a-ledger
    Status {
        /// Data directory.
        #[arg(long)]
        data: PathBuf,
        /// Check that the log has this tree hash (refused with the reason if not).
        #[arg(long)]
        hash: Option<TreeHash>,
        /// Check the stored log for consistency (fsck), opening it read-only.
        #[arg(long)]
        check: bool,
        /// With --check, for a bus read replica's directory (no key): the descriptor of its log.
        #[arg(long, value_name = "FILE", requires = "check")]
        log_descriptor: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum BusCmd {
    /// Create the streams and the lease bucket that logs need on the bus, or check that what
    /// exists has exactly this configuration (never changing it). Idempotent.
    ///
    /// Example:
    ///   ledger-server bus init --bus nats://127.0.0.1:4222 --log main --replicas 3
    Init {
        /// The NATS servers, comma-separated URLs.
        #[arg(long, value_name = "URLS")]
        bus: String,
        /// A log to provision (repeatable).
        #[arg(long = "log", default_value = "main")]
        logs: Vec<String>,
        /// Servers holding each stream and the lease bucket: 1, 3 or 5.
        #[arg(long, default_value_t = 3)]
        replicas: usize,
        /// Milliseconds a lease lasts after its holder's last renewal: a standby takes over this
        /// long after the signer is gone. Choose at least 3 x the worst renewal round trip.
        #[arg(long, default_value_t = 6000)]
        lease_ttl_ms: u64,
        /// Seconds within which the ingest stream drops a message whose Nats-Msg-Id it has seen.
        #[arg(long, default_value_t = 120)]
        duplicate_window_s: u64,
        /// The NATS user to connect as; its password comes from A2A_LEDGER_BUS_PASSWORD.
        #[arg(long)]
        bus_user: Option<String>,
    },
    /// Print the NATS `permissions` block a gateway needs on the bus, and nothing more: publish
    /// on its own ingest subject, read its own results, replies under `_INBOX_<gateway>`. With
    /// several logs (a gateway with sharded logs), the union of each log's permissions.
    ///
    /// Example:
    ///   ledger-server bus permissions --log main --gateway gw-1
    ///   ledger-server bus permissions --log main --log billing --gateway gw-1
    Permissions {
        /// A log the gateway writes to (repeatable).
        #[arg(long = "log", default_value = "main")]
        logs: Vec<String>,
        /// The gateway's identity (its subject token).
        #[arg(long)]
        gateway: String,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Some(Cmd::Bus { cmd: BusCmd::Init { bus, logs, replicas, lease_ttl_ms, duplicate_window_s, bus_user } }) => {
            let auth = ledger_bus::Auth::from_env(bus_user, None)?;
            return bus_init(&bus, &auth, &logs, replicas, lease_ttl_ms, duplicate_window_s);
        }
        Some(Cmd::Bus { cmd: BusCmd::Permissions { logs, gateway } }) => {
            ledger_bus::publish::check_gateway_name(&gateway)?;
            let logs = logs.iter().map(|l| ledger_bus::LogName::parse(l)).collect::<Result<Vec<_>, _>>()?;
            let (publish, subscribe) = ledger_bus::names::gateway_permissions(&logs, &gateway);
            let quoted = |l: &[String]| l.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ");
            println!(
                "{{ publish: {{ allow: [{}] }}, subscribe: {{ allow: [{}] }} }}",
                quoted(&publish),
                quoted(&subscribe)
            );
            return Ok(());
        }
        Some(Cmd::Status { data, hash, check: true, log_descriptor }) => match check(data, hash, log_descriptor) {
            Ok(true) => return Ok(()),
            Ok(false) => std::process::exit(1),
            Err(e) => {
                eprintln!("error: could not check: {e:#}");
                std::process::exit(2)
            }
        },
        Some(Cmd::Status { data, hash, check: false, .. }) => return status(data, hash),
        Some(Cmd::Init { data, origin, hash }) => return init(data, origin, hash),
        None => {}
    }
    let a = cli.serve;
    let Some(data) = a.data else {
        anyhow::bail!("--data DIR is required: the directory holding (or to hold) the log; see --help");
    };
    let overrides = Overrides {
        config: a.config,
        origin: a.origin,
        hash: a.hash,
        checkpoint_interval_ms: a.checkpoint_interval_ms,
        http: a.http,
        grpc: a.grpc,
        max_concurrent_requests: a.max_concurrent_requests,
        request_timeout_ms: a.request_timeout_ms,
        witness_policy: a.witness_policy,
        witness_timeout_ms: a.witness_timeout_ms,
    };
    let (settings, bootstrap) = config::resolve(&data, &overrides)?;
    let bus = match &a.bus {
        Some(servers) => Some(ledger_server::bus::BusSettings {
            servers: servers.clone(),
            log: ledger_bus::LogName::parse(&a.bus_log)?,
            holder: a.bus_name.clone().unwrap_or_else(|| format!("ledger-server-{}", std::process::id())),
            auth: ledger_bus::Auth::from_env(a.bus_user.clone(), None)?,
            descriptor: match &a.log_descriptor {
                Some(f) => Some(
                    serde_json::from_slice(&std::fs::read(f).with_context(|| format!("reading {}", f.display()))?)
                        .with_context(|| format!("{}: not a log descriptor", f.display()))?,
                ),
                None => None,
            },
        }),
        None => None,
    };
    let (log, signed) = match &bus {
        Some(b) => {
            let opened = ledger_server::open_bus_log(&settings, b)?;
            (opened.log, Some(opened.signed))
        }
        None => (ledger_server::open_log(&settings)?, None),
    };
    let d = log.descriptor().clone();
    let size = log.durable_size();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    // The handlers are installed before the server says it is listening: a SIGTERM that follows
    // that line at once must drain, not kill the process with the signal's default action.
    let shutdown = {
        let _runtime = rt.enter();
        shutdown_signal()?
    };
    let mode = match (&bus, &signed) {
        (Some(b), Some(None)) => format!(", read replica of bus log {}", b.log),
        (Some(b), _) => format!(", signer or standby of bus log {}", b.log),
        _ => String::new(),
    };
    let bus_log = bus.as_ref().map(|b| b.log.clone());
    let ready = |b: ledger_server::Bound| {
        println!("a2a-ledger server: log {} ({}), {size} entries, data in {}{mode}", d.origin, d.hash, data.display());
        println!("listening http http://{}", b.http);
        println!("listening grpc http://{}", b.grpc);
        println!("  GET  http://{}/v1/log            the log descriptor (public)", b.http);
        println!("  GET  http://{}/v1/checkpoint     the newest signed checkpoint (public)", b.http);
        match &bus_log {
            Some(l) => {
                println!("  entries come over the bus on ledger.{l}.in.<gateway>; appends here answer 409 read_only")
            }
            None => println!("  POST http://{}/v1/entries        ingest (ingest token)", b.http),
        }
        println!("  GET  http://{}/runs/<id>/receipt a run's receipt", b.http);
        println!("  GET  http://{}/app               the auditor's dashboard (log in with a token)", b.http);
        if let Some(bs) = &bootstrap {
            println!(
                "first start: tokens written once to {} (mode 0600); the server keeps only their SHA-256 in {}",
                bs.tokens.display(),
                bs.config.display()
            );
        }
    };
    match (bus, signed) {
        (Some(b), Some(signed)) => rt.block_on(ledger_server::serve_bus(
            settings.clone(),
            b,
            ledger_server::bus::Opened { log, signed },
            ready,
            shutdown,
        ))?,
        _ => rt.block_on(ledger_server::serve(settings.clone(), log, ready, shutdown))?,
    }
    eprintln!("a2a-ledger server: stopped; final checkpoint signed");
    Ok(())
}

/// Installs the SIGTERM and SIGINT handlers now (inside a runtime) and returns the future that
/// ends on the first of them.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        eprintln!("a2a-ledger server: shutting down: draining in-flight batches, signing a final checkpoint");
    })
}

fn bus_init(
    servers: &str,
    auth: &ledger_bus::Auth,
    logs: &[String],
    replicas: usize,
    lease_ttl_ms: u64,
    duplicate_window_s: u64,
) -> Result<()> {
    let names = logs.iter().map(|l| ledger_bus::LogName::parse(l)).collect::<Result<Vec<_>, _>>()?;
    let topology = ledger_bus::Topology {
        replicas,
        lease_ttl: std::time::Duration::from_millis(lease_ttl_ms),
        duplicate_window: std::time::Duration::from_secs(duplicate_window_s),
        ..ledger_bus::Topology::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let js =
            ledger_bus::connect(servers, "ledger-server bus init", auth, std::time::Duration::from_secs(30)).await?;
        ledger_bus::provision(&js, &names, &topology).await?;
        anyhow::Ok(())
    })?;
    for n in &names {
        println!(
            "log {n}: streams {} and {}, lease key {n} in {}",
            n.ingest_stream(),
            n.out_stream(),
            ledger_bus::names::LEASE_BUCKET
        );
    }
    Ok(())
}

fn init(data: PathBuf, origin: String, hash: TreeHash) -> Result<()> {
    let dir = ledger_core::DataDir::new(&data);
    if let Some(existing) = dir.existing_origin()? {
        anyhow::bail!("{} already holds the log {existing:?}; refusing to create another", data.display());
    }
    let settings = config::Settings {
        data: data.clone(),
        origin: Some(origin),
        hash: Some(hash),
        checkpoint_interval: std::time::Duration::from_millis(100),
        http: config::DEFAULT_HTTP.parse()?,
        grpc: config::DEFAULT_GRPC.parse()?,
        max_body_bytes: 0,
        limits: ledger_server::limits::Limits::default(),
        principals: vec![],
        payloads: config::PayloadSettings::default(),
        cosigner: None,
    };
    let log = ledger_server::open_log(&settings)?;
    println!("{}", serde_json::to_string_pretty(log.descriptor())?);
    eprintln!("created {} (log key {}, mode 0600)", data.display(), dir.key_path().display());
    log.close()?;
    Ok(())
}

fn status(data: PathBuf, hash: Option<TreeHash>) -> Result<()> {
    let dir = ledger_core::DataDir::new(&data);
    let Some(origin) = dir.existing_origin()? else {
        anyhow::bail!(
            "{} holds no log (no {}); create one with `ledger-server init`",
            data.display(),
            dir.key_path().display()
        );
    };
    let no_seed = || Err(std::io::Error::other("the key exists"));
    let (cfg, rocks) = (ledger_core::LogConfig::default(), ledger_core::RocksConfig::default());
    let log = match hash {
        Some(hash) => dir.open(&origin, ledger_core::LogConfig { hash, ..cfg }, &rocks, no_seed)?,
        None => dir.open_keeping_hash(&origin, cfg, &rocks, no_seed)?,
    };
    let cp = log.checkpoint();
    let status = serde_json::json!({"log": log.descriptor(), "tree_size": log.durable_size(), "checkpoint": cp.note});
    println!("{}", serde_json::to_string_pretty(&status)?);
    log.close()?;
    Ok(())
}

/// `status --check`: the status of the store opened read-only, with fsck's findings. Whether
/// everything agrees.
fn check(data: PathBuf, hash: Option<TreeHash>, descriptor: Option<PathBuf>) -> Result<bool> {
    let dir = ledger_core::DataDir::new(&data);
    let rocks = ledger_core::RocksConfig::default();
    let (key, store) = match descriptor {
        Some(f) => {
            let d: ledger_core::LogDescriptor =
                serde_json::from_slice(&std::fs::read(&f).with_context(|| format!("reading {}", f.display()))?)
                    .with_context(|| format!("{}: not a log descriptor", f.display()))?;
            let store =
                ledger_core::store::RocksStore::open_read_only(&data.join(ledger_core::datadir::STORE_DIR), &rocks)?;
            (d.verifier_key()?, store)
        }
        None => {
            if dir.existing_origin()?.is_none() {
                anyhow::bail!("{} holds no log (no {})", data.display(), dir.key_path().display());
            }
            dir.open_read_only(&rocks)?
        }
    };
    let report = ledger_core::fsck::check(&store, &key)?;
    let stored_hash = report.hash.unwrap_or(TreeHash::Blake3);
    if let Some(h) = hash
        && h != stored_hash
    {
        anyhow::bail!("the log's tree hash is {stored_hash}, not {h}");
    }
    use ledger_core::Store as _;
    let checkpoint = store.latest_checkpoint()?.map(|(_, note)| note);
    let findings: Vec<String> = report.findings.iter().map(ToString::to_string).collect();
    let status = serde_json::json!({
        "log": ledger_core::LogDescriptor::new(&key, stored_hash),
        "tree_size": report.size,
        "checkpoint": checkpoint,
        "check": {"clean": report.is_clean(), "findings": findings, "segments": report.segments, "checkpoints": report.checkpoints, "positions": report.positions, "catalog_keys": report.catalog_keys},
    });
    println!("{}", serde_json::to_string_pretty(&status)?);
    for f in &findings {
        eprintln!("{}: {f}", data.display());
    }
    if !report.is_clean() {
        eprintln!("{}: {} findings", data.display(), findings.len());
    }
    Ok(report.is_clean())
}
