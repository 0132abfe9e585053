//! `ledger-server`: the ledger as a service. Gateways append over gRPC (`ledger.v1.Ledger`) or
//! HTTP; dashboards, auditors and monitors read checkpoints, receipts, proofs, tiles and
//! compliance packs. See the README for the API and ARCHITECTURE.md for the invariants.
//!
//! Durability: an append is acknowledged (HTTP 200, gRPC `AppendResponse` with indices) only
//! after the log's synced commit of its batch; the server holds no write state of its own.
//! Shutdown stops the listeners, lets in-flight batches finish, then closes the log, which
//! commits everything sequenced and signs a final checkpoint.

pub mod answer;
pub mod auth;
pub mod browser;
pub mod bus;
pub mod config;
pub mod error;
pub mod grpc;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod packs;
pub mod payloads;
pub mod runs;
pub mod service;
pub mod tiles;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, Result, bail};
use ledger_core::store::RocksStore;
use ledger_core::{DataDir, Log, LogConfig, LogKey, NamedKey, RocksConfig, Store};
use tokio::net::TcpListener;

use crate::auth::Principals;
use crate::config::Settings;
use crate::metrics::Metrics;
use crate::service::Ledger;

/// How long connections may take to finish after shutdown begins.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Addresses the server listens on, once bound.
#[derive(Clone, Copy, Debug)]
pub struct Bound {
    /// HTTP.
    pub http: SocketAddr,
    /// gRPC.
    pub grpc: SocketAddr,
}

/// Sets `TCP_NODELAY` on an accepted connection. Without it, a small write that follows another
/// still unacknowledged one (the second acknowledgement on a gRPC stream, a streamed event) waits
/// for the peer's delayed ACK: about 40 ms on Linux. Failing to set it only costs latency.
fn nodelay(tcp: &mut tokio::net::TcpStream) {
    let _ = tcp.set_nodelay(true);
}

/// The HTTP listener, its connections with `TCP_NODELAY` (axum leaves it off).
pub fn http_incoming(listener: TcpListener) -> axum::serve::TapIo<TcpListener, fn(&mut tokio::net::TcpStream)> {
    use axum::serve::ListenerExt as _;
    listener.tap_io(nodelay as fn(&mut tokio::net::TcpStream))
}

/// The gRPC listener, its connections with `TCP_NODELAY` (tonic's own `tcp_nodelay` setting does
/// not apply to a listener it is handed).
pub fn grpc_incoming(listener: TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true))
}

pub(crate) fn os_seed() -> std::io::Result<[u8; 32]> {
    let mut s = [0u8; 32];
    getrandom::fill(&mut s).map_err(std::io::Error::other)?;
    Ok(s)
}

/// Opens the log of `settings.data`: the existing log's origin and hash unless others are asked
/// for (which is refused with the reason), else a new log.
pub fn open_log(settings: &Settings) -> Result<Log> {
    let dir = DataDir::new(&settings.data);
    let existing = dir.existing_origin()?;
    let origin = match (&existing, &settings.origin) {
        (Some(e), Some(o)) if e != o => anyhow::bail!(
            "{} holds the log {e:?}; refusing to serve it as {o:?} (the origin is fixed when a log is created)",
            settings.data.display()
        ),
        (Some(e), _) => e.clone(),
        (None, Some(o)) => o.clone(),
        (None, None) => config::DEFAULT_ORIGIN.to_string(),
    };
    let cfg = LogConfig {
        checkpoint_interval: settings.checkpoint_interval,
        witnessing: settings.cosigner.as_ref().map(|c| c.witnessing()),
        ..LogConfig::default()
    };
    let log = match settings.hash {
        Some(hash) => dir.open(&origin, LogConfig { hash, ..cfg }, &RocksConfig::default(), os_seed),
        None => dir.open_keeping_hash(&origin, cfg, &RocksConfig::default(), os_seed),
    };
    log.with_context(|| format!("opening the log in {}", settings.data.display()))
}

/// Opens the log of `settings.data` for the bus ([`bus`]): with the key (`log.key` in the directory) it
/// signs (lines of FORMATS §4) but serves only what the lease holder published; without, given
/// the descriptor, it is a read replica and signs nothing.
pub fn open_bus_log(settings: &Settings, bus: &bus::BusSettings) -> Result<bus::Opened> {
    if settings.cosigner.is_some() {
        bail!("a witness policy is not supported with --bus yet: the lease holder would publish uncosigned notes");
    }
    let dir = DataDir::new(&settings.data);
    let existing = dir.existing_origin()?;
    let mut cfg = LogConfig { checkpoint_interval: settings.checkpoint_interval, ..LogConfig::default() };
    if existing.is_none()
        && let Some(d) = &bus.descriptor
    {
        // No key: a read replica of the pinned log.
        let key = d.verifier_key().context("the --log-descriptor's vkey")?;
        std::fs::create_dir_all(&settings.data).with_context(|| format!("creating {}", settings.data.display()))?;
        let store: Arc<dyn Store> =
            Arc::new(RocksStore::open(&settings.data.join(ledger_core::datadir::STORE_DIR), &RocksConfig::default())?);
        cfg.hash = d.hash;
        let log = Log::open(store, LogKey::Verifying(key), cfg)
            .with_context(|| format!("opening the replica of {} in {}", d.origin, settings.data.display()))?;
        return Ok(bus::Opened { log, signed: None });
    }
    let Some(origin) = existing else {
        bail!(
            "{} holds no log key: a signer or standby needs the log's key (copy log.key from where `ledger-server init` created it), a read replica the log's --log-descriptor",
            settings.data.display()
        );
    };
    let signing = ledger_bus::signer::signing(&bus.log);
    cfg.witnessing = Some(signing.witnessing);
    cfg.extensions = Some(signing.extensions);
    let hash = match &bus.descriptor {
        Some(d) => {
            let key = NamedKey::from_private_string(
                &std::fs::read_to_string(dir.key_path())
                    .with_context(|| format!("reading {}", dir.key_path().display()))?,
            )?;
            if key.verifier().to_string() != d.vkey {
                bail!("{} is not the key of the log in --log-descriptor ({})", dir.key_path().display(), d.vkey);
            }
            Some(d.hash)
        }
        None => settings.hash,
    };
    let log = match hash {
        Some(hash) => dir.open(&origin, LogConfig { hash, ..cfg }, &RocksConfig::default(), os_seed),
        None => dir.open_keeping_hash(&origin, cfg, &RocksConfig::default(), os_seed),
    }
    .with_context(|| format!("opening the log in {}", settings.data.display()))?;
    Ok(bus::Opened { log, signed: Some(signing.signed) })
}

/// Runs the server until `shutdown` resolves: binds both listeners, calls `ready` with their
/// addresses, serves, then drains and closes the log (final checkpoint).
pub async fn serve(
    settings: Settings,
    log: Log,
    ready: impl FnOnce(Bound),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    serve_inner(settings, log, None, ready, shutdown).await
}

/// Runs the server as one process of a bus deployment ([`bus`]) until `shutdown` resolves or a
/// bus task fails (its error, after the drain and the close).
pub async fn serve_bus(
    settings: Settings,
    bus: bus::BusSettings,
    opened: bus::Opened,
    ready: impl FnOnce(Bound),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    serve_inner(settings, opened.log, Some((bus, opened.signed)), ready, shutdown).await
}

async fn serve_inner(
    settings: Settings,
    log: Log,
    bus: Option<(bus::BusSettings, Option<ledger_bus::signer::Signed>)>,
    ready: impl FnOnce(Bound),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    // Everything that can fail comes before anything that holds the log.
    let principals = Principals::new(&settings.principals)?;
    let http_listener =
        TcpListener::bind(settings.http).await.with_context(|| format!("binding HTTP to {}", settings.http))?;
    let grpc_listener =
        TcpListener::bind(settings.grpc).await.with_context(|| format!("binding gRPC to {}", settings.grpc))?;
    let bound = Bound { http: http_listener.local_addr()?, grpc: grpc_listener.local_addr()? };

    let log = Arc::new(log);
    let cosigning = match &settings.cosigner {
        Some(c) => Some(c.spawn(log.clone()).context("witness policy")?),
        None => None,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let metrics = Metrics::default();
    // On the bus, payloads come only from the stream, and every follower must keep what every
    // other keeps (a refusal is a decision about the message): this server's limits (for its own
    // PUTs, which a bus server refuses) do not apply to them.
    let payload_limits =
        if bus.is_some() { ledger_core::payload::PayloadLimits::UNLIMITED } else { settings.payloads.limits };
    let payloads = ledger_core::PayloadStore::new(log.store().clone(), payload_limits);
    let running = match bus {
        Some((b, signed)) => Some(bus::start(&b, signed, log.clone(), payloads.clone(), metrics.clone()).await?),
        None => None,
    };
    let checkpoints = service::watch_checkpoints(log.clone(), stop.clone(), metrics.clone());
    let (tx, rx) = tokio::sync::watch::channel(false);
    let ledger = Arc::new(Ledger {
        log: log.clone(),
        principals,
        checkpoints,
        metrics,
        max_body_bytes: settings.max_body_bytes,
        shutdown: rx.clone(),
        payloads,
        erasure_actor: settings.payloads.actor.clone(),
        cosigner: settings.cosigner.clone(),
        sessions: ledger_dashboard::session::Sessions::new(ledger_dashboard::session::Limits::default()),
        bus: running.as_ref().map(|r| r.following.clone()),
    });
    ledger.refresh_payload_usage().await;

    let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move { service::stopped(&mut rx).await };
    let http = axum::serve(http_incoming(http_listener), http::app(ledger.clone(), &settings.limits))
        .with_graceful_shutdown(wait(rx.clone()));
    let grpc = tonic::transport::Server::builder()
        .layer(limits::grpc(&settings.limits))
        .add_service(grpc::service(ledger.clone()))
        .serve_with_incoming_shutdown(grpc_incoming(grpc_listener), wait(rx.clone()));
    ready(bound);
    let tx = Arc::new(tx);
    let trigger = tx.clone();
    tokio::spawn(async move {
        shutdown.await;
        let _ = trigger.send(true);
    });
    // A failed bus task stops the server like a signal does, and is its exit's error. At any stop
    // the bus tasks end first (the lease released, so a standby takes over at once).
    let bus_task = running.map(|mut running| {
        let (trigger, mut stopping) = (tx.clone(), rx.clone());
        tokio::spawn(async move {
            let failed = tokio::select! {
                e = running.failed() => Some(e),
                () = service::stopped(&mut stopping) => None,
            };
            if failed.is_some() {
                let _ = trigger.send(true);
            }
            running.stop().await;
            failed.and_then(Result::err)
        })
    });
    let mut stopping = rx.clone();
    let servers = async {
        let (h, g) = tokio::join!(async { http.await }, grpc);
        h.context("HTTP server")?;
        g.context("gRPC server")
    };
    // Connections get a grace period to finish what they are doing once shutdown begins.
    let deadline = async move {
        service::stopped(&mut stopping).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        r = servers => r?,
        _ = deadline => eprintln!("a2a-ledger server: connections still open after {SHUTDOWN_GRACE:?}; closing them"),
    }

    // A witnessed log signs its final checkpoint now and gives the witnesses one round for it
    // (closing signs nothing more: the tree does not grow after the drain).
    if let (Some(c), Some(task)) = (&settings.cosigner, cosigning) {
        let signing = log.clone();
        if let Ok(Ok(cp)) = tokio::task::spawn_blocking(move || signing.sign_checkpoint()).await
            && !c.settle(cp.checkpoint.size, c.timeout() + std::time::Duration::from_secs(1)).await
        {
            eprintln!("a2a-ledger server: the final checkpoint's witness round did not end in time");
        }
        task.abort();
    }
    let bus_failure = match bus_task {
        Some(t) => t.await.context("the bus task")?,
        None => None,
    };
    stop.store(true, Ordering::Relaxed);
    let closing = log.clone();
    tokio::task::spawn_blocking(move || closing.close()).await?.context("closing the log")?;
    // Requests still finishing may hold the log past the process's exit: the store's background
    // threads stop here, not during the exit (see `Store::quiesce`).
    log.store().quiesce();
    match bus_failure {
        Some(e) => Err(e.context("the bus")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both listeners hand out connections with `TCP_NODELAY` set.
    #[tokio::test]
    async fn accepted_connections_have_nodelay() {
        use axum::serve::Listener as _;
        use tokio_stream::StreamExt as _;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut http = http_incoming(listener);
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (io, _) = http.accept().await;
        assert!(io.nodelay().unwrap(), "HTTP connection without TCP_NODELAY");

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut grpc = grpc_incoming(listener);
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let io = grpc.next().await.unwrap().unwrap();
        assert!(io.nodelay().unwrap(), "gRPC connection without TCP_NODELAY");
    }
}
