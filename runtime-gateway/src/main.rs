//! `runtime-gateway`: the protocol edge in front of agents, with the ledger embedded
//! (`--embedded DIR`), remote (`--ledger URL`) or on a NATS JetStream bus (`--bus URLS`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use ledger_core::{DataDir, LogConfig, RocksConfig, TreeHash};
use ledger_witness::cosigner::Cosigner;
use runtime_gateway::base::auth::Authenticator;
use runtime_gateway::base::metrics::latency;
use runtime_gateway::base::{config, now_ns, telemetry};
use runtime_gateway::engine::approvals::Inbox;
use runtime_gateway::engine::files::Files;
use runtime_gateway::engine::grants::Grants;
use runtime_gateway::engine::identity;
use runtime_gateway::engine::manifest::Manifest;
use runtime_gateway::engine::push::Pusher;
use runtime_gateway::engine::reseal::Reseals;
use runtime_gateway::engine::schema::compile_schema;
use runtime_gateway::engine::tasks::Engine;
use runtime_gateway::ledger::bus::{BusConfig, BusLedger};
use runtime_gateway::ledger::metered::MeteredSink;
use runtime_gateway::ledger::remote::{RemoteConfig, RemoteLedger};
use runtime_gateway::ledger::shards::{Route, Shard, Shards};
use runtime_gateway::ledger::{EmbeddedLedger, LedgerSink};
use runtime_gateway::surface::a2a::card::{build_card, card_skill};
use runtime_gateway::surface::ops::Metrics;
use runtime_gateway::surface::router::app;
use runtime_gateway::surface::state::Gateway;

/// The a2a-ledger runtime gateway: A2A 1.0, the platform REST and /invoke in front of agents;
/// every run recorded in the ledger and sealed with the gateway's identity.
///
/// Examples:
///   runtime-gateway --embedded ./data
///   runtime-gateway --ledger http://127.0.0.1:7701 --ledger-token "$TOKEN" --data ./gw --manifest agents.toml
///   runtime-gateway --bus nats://127.0.0.1:4222,nats://127.0.0.1:4223 --bus-replica http://127.0.0.1:7702 \
///       --ledger-token "$TOKEN" --data ./gw
#[derive(Parser)]
#[command(name = "runtime-gateway", version, verbatim_doc_comment)]
struct Cli {
    /// Run the ledger in this process, on RocksDB under DIR (also holds the gateway's key and config).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["ledger", "bus"])]
    embedded: Option<PathBuf>,
    /// Write to a remote ledger-server at this gRPC URL instead (e.g. http://127.0.0.1:7701, or
    /// https://ledger.example.com for one behind TLS).
    #[arg(long, value_name = "URL", requires = "ledger_token", conflicts_with = "bus")]
    ledger: Option<String>,
    /// Publish to a ledger on a NATS JetStream bus: the cluster's servers, comma-separated
    /// (nats://host:port[,nats://host:port…]). Reads go to --bus-replica.
    #[arg(long, value_name = "URLS", value_delimiter = ',', requires = "bus_replica")]
    bus: Vec<String>,
    /// With --bus: the log's name on the bus (the default log; gateway.toml's [[bus_log]] entries
    /// name more logs and the runs they take).
    #[arg(long, value_name = "NAME", default_value = "main", requires = "bus")]
    bus_log: String,
    /// With --bus: the gRPC URL of a read replica of the log (repeatable; tried in order, the
    /// next one when one is unavailable or not caught up). --ledger-token is its read token.
    #[arg(long, value_name = "URL", requires = "bus")]
    bus_replica: Vec<String>,
    /// With --bus: the NATS user to connect as; its password comes from A2A_LEDGER_BUS_PASSWORD.
    #[arg(long, value_name = "USER", requires = "bus")]
    bus_user: Option<String>,
    /// With an https:// --ledger: a PEM CA certificate to trust besides the public web roots.
    #[arg(long, value_name = "FILE", requires = "ledger")]
    ledger_ca: Option<PathBuf>,
    /// Ingest token for the remote ledger (bound to the gateway's identity).
    #[arg(long, env = "LEDGER_TOKEN", hide_env_values = true)]
    ledger_token: Option<String>,
    /// With --ledger or --bus: the gateway's own state (identity key, config, spool, rejected.jsonl).
    #[arg(long, value_name = "DIR", default_value = "gateway-data")]
    data: PathBuf,
    /// The listener (all surfaces).
    #[arg(long, default_value = "127.0.0.1:7800")]
    listen: SocketAddr,
    /// The agents (TOML); without one the built-in demo agent is served.
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,
    /// Gateway config (callers, JWT, identity); default DIR/gateway.toml, created on first start.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Base URL for links (receipts, SSE, card interfaces); default http://<listen>.
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// With --embedded: the log origin when the directory is new.
    #[arg(long, default_value = "localhost/a2a-ledger")]
    origin: String,
    /// With --embedded: the tree hash when the directory is new.
    #[arg(long)]
    hash: Option<TreeHash>,
    /// Most bytes of entries the spool holds while the remote ledger is away.
    #[arg(long, default_value_t = 256 << 20)]
    spool_max_bytes: u64,
    /// Accept requests without a token (as the caller "anonymous"); for local use only.
    #[arg(long)]
    anonymous: bool,
    /// With --embedded: a C2SP tlog-policy file naming witnesses (each with its URL) and a
    /// quorum; checkpoints are submitted to them and receipts use only checkpoints the quorum
    /// cosigned (SPEC §8).
    #[arg(long, value_name = "FILE", requires = "embedded")]
    witness_policy: Option<PathBuf>,
    /// With --witness-policy: milliseconds one round of requests to the witnesses may take.
    #[arg(long, default_value_t = 5000, requires = "witness_policy")]
    witness_timeout_ms: u64,
}

/// An input for the startup example: `{"text": "hello"}` when the skill's schema takes it, else
/// the schema's required properties with a placeholder of their type.
fn example_input(schema: Option<&serde_json::Value>) -> String {
    use serde_json::{Value, json};
    let hello = json!({ "text": "hello" });
    let Some(schema) = schema else { return hello.to_string() };
    if compile_schema(schema).is_ok_and(|v| v.is_valid(&hello)) {
        return hello.to_string();
    }
    let mut out = serde_json::Map::new();
    for name in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        let v = match schema["properties"][name]["type"].as_str() {
            Some("integer" | "number") => json!(1),
            Some("boolean") => json!(true),
            Some("array") => json!([]),
            Some("object") => json!({}),
            _ => json!("hello"),
        };
        out.insert(name.to_string(), v);
    }
    Value::Object(out).to_string()
}

/// Most batches waiting for the bus before new runs are refused (a few seconds of load).
const BUS_MAX_UNACKNOWLEDGED: usize = 10_000;

fn local_token(data: &Path) -> Option<String> {
    let text = std::fs::read_to_string(data.join(config::TOKENS_FILE)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["local-user"]["token"].as_str().map(String::from)
}

async fn run(cli: Cli) -> Result<()> {
    let mut remote_handle: Option<Arc<RemoteLedger>> = None;
    let mut embedded_log: Option<(Arc<ledger_core::Log>, Option<Cosigner>)> = None;
    let mut loaded = None;
    let mut sharded: Option<Shards> = None;
    let (sink, data, ledger_desc): (Arc<dyn LedgerSink>, PathBuf, String) = match (&cli.embedded, &cli.ledger) {
        (None, None) if !cli.bus.is_empty() => {
            // The gateway publishes under its identity's name, which its config names; the
            // config's [[bus_log]] entries name further logs (shards) and the runs they take.
            let (cfg, bootstrap) = config::load_or_create(&cli.data, cli.config.as_deref())?;
            let config_path = config::path(&cli.data, cli.config.as_deref());
            cfg.check_bus_logs(&cli.bus_log).with_context(|| format!("gateway config {}", config_path.display()))?;
            let connect = |log: &str, replicas: &[String]| {
                BusLedger::connect(BusConfig {
                    servers: cli.bus.clone(),
                    log: log.to_string(),
                    gateway: cfg.identity.clone(),
                    replicas: replicas.to_vec(),
                    token: cli.ledger_token.clone().unwrap_or_default(),
                    data: cli.data.clone(),
                    user: cli.bus_user.clone(),
                    max_unacknowledged: BUS_MAX_UNACKNOWLEDGED,
                    max_payload_bytes: cfg.payloads.clone().unwrap_or_default().max_bytes,
                })
            };
            let describe = |name: &str, bus: &BusLedger, replicas: &[String]| {
                let d = bus.descriptor();
                format!("log {name} ({}, {}), read from {}", d.origin, d.hash, replicas.join(", "))
            };
            let main_log = connect(&cli.bus_log, &cli.bus_replica).await?;
            let mut desc =
                format!("on the bus at {}: {}", cli.bus.join(","), describe(&cli.bus_log, &main_log, &cli.bus_replica));
            let sink: Arc<dyn LedgerSink> = if cfg.bus_logs.is_empty() {
                Arc::new(main_log)
            } else {
                let mut shards = vec![Shard { name: cli.bus_log.clone(), sink: Arc::new(main_log) }];
                for l in &cfg.bus_logs {
                    let bus = connect(&l.name, &l.replicas)
                        .await
                        .with_context(|| format!("{}: [[bus_log]] {:?}", config_path.display(), l.name))?;
                    desc.push_str(&format!("; {}", describe(&l.name, &bus, &l.replicas)));
                    shards.push(Shard { name: l.name.clone(), sink: Arc::new(bus) });
                }
                let routes = cfg
                    .bus_logs
                    .iter()
                    .map(|l| Route { log: l.name.clone(), agents: l.agents.clone(), callers: l.callers.clone() })
                    .collect();
                let router =
                    Shards::new(shards, routes).with_context(|| format!("gateway config {}", config_path.display()))?;
                sharded = Some(router.clone());
                Arc::new(router)
            };
            loaded = Some((cfg, bootstrap));
            (sink, cli.data.clone(), desc)
        }
        (Some(dir), None) => {
            let d = DataDir::new(dir);
            let origin = d.existing_origin()?.unwrap_or_else(|| cli.origin.clone());
            let cosigner = match &cli.witness_policy {
                Some(path) => {
                    Some(Cosigner::from_file(path, Some(Duration::from_millis(cli.witness_timeout_ms.max(1))))?)
                }
                None => None,
            };
            let cfg = LogConfig {
                hash: cli.hash.unwrap_or_default(),
                witnessing: cosigner.as_ref().map(|c| c.witnessing()),
                ..LogConfig::default()
            };
            let dir2 = dir.clone();
            let rocks = RocksConfig::default();
            let log = tokio::task::spawn_blocking(move || {
                let d = DataDir::new(&dir2);
                if cli.hash.is_none() {
                    d.open_keeping_hash(&origin, cfg, &rocks, identity::os_seed)
                } else {
                    d.open(&origin, cfg, &rocks, identity::os_seed)
                }
            })
            .await?
            .with_context(|| format!("opening the embedded ledger in {}", dir.display()))?;
            let log = Arc::new(log);
            let desc = format!("embedded in {} ({}, {})", dir.display(), log.descriptor().origin, log.hash());
            let descriptor_path = dir.join("log.json");
            std::fs::write(&descriptor_path, serde_json::to_string_pretty(log.descriptor())?)
                .with_context(|| format!("writing {}", descriptor_path.display()))?;
            embedded_log = Some((log.clone(), cosigner));
            (Arc::new(EmbeddedLedger::new(log)), dir.clone(), desc)
        }
        (None, Some(url)) => {
            std::fs::create_dir_all(&cli.data).with_context(|| format!("creating {}", cli.data.display()))?;
            let remote = RemoteLedger::connect(RemoteConfig {
                url: url.clone(),
                token: cli.ledger_token.clone().unwrap_or_default(),
                spool: cli.data.join("spool"),
                max_bytes: cli.spool_max_bytes,
                in_flight: 16,
                ca: cli.ledger_ca.clone(),
            })
            .await?;
            let d = remote.descriptor();
            let desc =
                format!("remote at {url} ({}, {}), spool in {}", d.origin, d.hash, cli.data.join("spool").display());
            let remote = Arc::new(remote);
            remote_handle = Some(remote.clone());
            (remote, cli.data.clone(), desc)
        }
        _ => bail!(
            "give one of --embedded DIR (ledger in this process), --ledger URL (a ledger-server) or --bus URLS (a NATS JetStream bus)"
        ),
    };

    let (mut cfg, bootstrap) = match loaded {
        Some(loaded) => loaded,
        None => config::load_or_create(&data, cli.config.as_deref())?,
    };
    if !cfg.bus_logs.is_empty() && cli.bus.is_empty() {
        bail!(
            "{}: [[bus_log]] names logs on a bus, but the gateway runs without --bus",
            config::path(&data, cli.config.as_deref()).display()
        );
    }
    // The embedded ledger keeps payloads under the configured limits, and starts asking its
    // witnesses.
    let sink: Arc<dyn LedgerSink> = match embedded_log {
        Some((log, cosigner)) => {
            let limits = cfg.payloads.as_ref().map_or_else(ledger_core::payload::PayloadLimits::default, |p| {
                ledger_core::payload::PayloadLimits { max_bytes: p.max_bytes, quota_bytes: p.quota_bytes }
            });
            let embedded = EmbeddedLedger::with_limits(log, limits);
            Arc::new(match cosigner {
                Some(c) => embedded.witnessed_by(c).context("--witness-policy")?,
                None => embedded,
            })
        }
        None => sink,
    };
    cfg.anonymous |= cli.anonymous;
    let config_path = config::path(&data, cli.config.as_deref());
    let authenticator =
        Authenticator::new(&cfg).with_context(|| format!("gateway config {}", config_path.display()))?;
    let tracing = telemetry::init(cfg.telemetry.as_ref())?;
    let key_path = data.join(format!("identity-{}.key", cfg.identity));
    let key = Arc::new(identity::load_or_create(&key_path, &cfg.identity)?);
    let offline = remote_handle.as_ref().is_some_and(|r| r.started_offline());
    if let Some(r) = &remote_handle {
        r.expect_identity(key.name(), key.public_key());
    }
    identity::register_or_remember(&*sink, &key, &data, offline, now_ns()).await?;
    // A receipt's signer must be registered in the receipt's own log: in every log, not only
    // the default one (which the router's identity run goes to).
    if let Some(router) = &sharded {
        for s in &router.shards()[1..] {
            identity::register_identity(&*s.sink, &key, now_ns())
                .await
                .with_context(|| format!("registering the gateway identity {:?} in log {:?}", key.name(), s.name))?;
        }
    }

    let manifest = match &cli.manifest {
        Some(path) => Manifest::load(path)?,
        None => Manifest::demo(),
    };
    // The stop signals are caught from before the listener is bound: a SIGTERM right after the
    // URLs are printed must drain, not kill the process with the signal's default action.
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let listener =
        tokio::net::TcpListener::bind(cli.listen).await.with_context(|| format!("binding {}", cli.listen))?;
    let addr = listener.local_addr()?;
    let public_url = cli
        .public_url
        .clone()
        .or(cfg.public_url.clone())
        .unwrap_or_else(|| format!("http://{addr}"))
        .trim_end_matches('/')
        .to_string();
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let grants = Arc::new(Grants::load_or_create(&data, Duration::from_secs(cfg.grant_ttl_secs.unwrap_or(3600)))?);
    let appends = latency();
    let sink: Arc<dyn LedgerSink> = Arc::new(MeteredSink::new(sink, appends.clone()));
    let mut engine = Engine::new(
        &manifest,
        sink.clone(),
        key.clone(),
        &http,
        grants.clone(),
        public_url.clone(),
        cfg.task_retention.unwrap_or(10_000),
    );
    engine.set_keep_payloads(cfg.payloads.as_ref().is_none_or(|p| p.keep));
    engine.set_upstream_tasks(data.join("upstream-tasks"));
    engine.set_cache_ttl(Duration::from_secs(cfg.task_cache_secs.unwrap_or(60)));
    let mut manifest = manifest;
    for i in 0..manifest.agents.len() {
        if !manifest.agents[i].skills.is_empty() {
            continue;
        }
        let upstream = engine.agents()[i].upstream.clone();
        let skills = upstream.skills().await.map_err(anyhow::Error::msg).with_context(|| {
            format!("agent {:?} declares no skills and its upstream's could not be read", manifest.agents[i].name)
        })?;
        if skills.is_empty() {
            bail!("agent {:?} declares no skills and its upstream offers none", manifest.agents[i].name);
        }
        manifest.agents[i].skills = skills.clone();
        engine.add_skills(i, skills);
    }
    // Routes by agent: which agent serves each skill (the skills are all known now).
    if let Some(router) = &sharded {
        for l in &cfg.bus_logs {
            if let Some(a) =
                l.agents.iter().find(|a| !a.ends_with('*') && !manifest.agents.iter().any(|m| &m.name == *a))
            {
                bail!(
                    "{}: [[bus_log]] {:?} names agent {a:?}, which the manifest does not have",
                    config::path(&data, cli.config.as_deref()).display(),
                    l.name
                );
            }
        }
        let agents = engine
            .agents()
            .iter()
            .flat_map(|a| a.spec.skills.iter().map(|s| (s.id.clone(), a.spec.name.clone())))
            .collect();
        router.know_agents(agents);
    }
    // MCP agents not connected yet (their manifest names their skills) are connected in the
    // background, so the edge soon declares what their servers declare (resources, prompts,
    // completion, logging) without holding the start for a server that is down.
    for a in engine.agents() {
        if let Some(m) = a.upstream.mcp().filter(|m| m.capabilities().is_none()).cloned() {
            let name = a.spec.name.clone();
            tokio::spawn(async move {
                if let Err(e) = m.open().await {
                    eprintln!("runtime-gateway: agent {name:?}: {e}");
                }
            });
        }
    }
    // Agents whose manifest names card keys: their cards are read and checked now, and the
    // verdict is reported (and kept for /healthz). An agent whose required signature does not
    // verify is refused: each call to it fails with the verdict, recorded in its run.
    for a in engine.agents() {
        match a.upstream.register().await {
            Some(Ok(verdict)) => println!("agent {:?}: upstream card {verdict}", a.spec.name),
            Some(Err(e)) => eprintln!("runtime-gateway: agent {:?}: {e}", a.spec.name),
            None => {}
        }
    }
    let skills = manifest.agents.iter().flat_map(|a| a.skills.iter().map(card_skill)).collect();
    let push = Arc::new(Pusher::new(cfg.push.clone().unwrap_or_default(), &data)?);
    for uri in &cfg.required_extensions {
        if !runtime_gateway::surface::a2a::extensions::SUPPORTED.contains(&uri.as_str()) {
            bail!(
                "{}: required_extensions names {uri:?}, which this gateway does not support (it supports {})",
                config_path.display(),
                runtime_gateway::surface::a2a::extensions::SUPPORTED.join(", ")
            );
        }
    }
    let card =
        build_card(&manifest, skills, &public_url, cfg.anonymous, push.enabled(), &cfg.required_extensions, Some(&key));
    let engine = Arc::new(engine);
    let shutdown_token = tokio_util::sync::CancellationToken::new();
    let gw = Arc::new(Gateway {
        engine: engine.clone(),
        card,
        auth: authenticator,
        metrics: Metrics::new(&engine.counters, &push.counters, appends),
        push: push.clone(),
        files: Files::new(data.join("workspaces")),
        admins: cfg.admins.clone(),
        required_extensions: cfg.required_extensions.clone(),
        inbox: Inbox::new(cfg.approvers.clone()),
        reseals: Reseals::default(),
        server: cfg.server.clone().unwrap_or_default(),
        shutdown: shutdown_token.clone(),
        sessions: ledger_dashboard::session::Sessions::new(ledger_dashboard::session::Limits::default()),
    });

    // Runs the last process left in flight are ended and sealed before anything else is
    // served; in remote mode only once the spool has reached the ledger (a spooled entry of such
    // a run would otherwise race the end appended now). Then stored push configs deliver on.
    // A first attempt before listening; if the ledger cannot answer yet, the attempts go on in
    // the background so the gateway still starts.
    let first = if sink.backlog() == 0 && !offline { Some(engine.recover().await) } else { None };
    let ready = matches!(first, Some(Ok(_)));
    let recovery = {
        let (engine, push, sink) = (engine.clone(), push.clone(), sink.clone());
        let mut first = first;
        async move {
            while sink.backlog() > 0 {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            // Until the ledger answers (a remote one may be away): no run stays unsealed.
            let mut said = false;
            loop {
                let attempt = match first.take() {
                    Some(r) => r,
                    None => engine.recover().await,
                };
                match attempt {
                    Ok(r) => {
                        if !r.ended.is_empty() {
                            eprintln!(
                                "recovered  {} runs left in flight by the last process: ended as failed and sealed",
                                r.ended.len()
                            );
                        }
                        if !r.resumed.is_empty() {
                            eprintln!(
                                "recovered  {} runs left in flight by the last process: following their upstream task again",
                                r.resumed.len()
                            );
                        }
                        break;
                    }
                    Err(e) => {
                        if !said {
                            eprintln!("recovery: the runs left in flight cannot be ended yet, retrying: {e}");
                            said = true;
                        }
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                }
            }
            // The ends just appended reach the ledger before push rebuilds the tasks from it.
            while sink.backlog() > 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let loader = engine.clone();
            match push
                .resume(|id| {
                    // A resumed run is live here: its configs follow the live task.
                    let e = loader.clone();
                    async move {
                        match e.task(&id) {
                            Some(live) => Some(live),
                            None => e.load(&id).await.ok().flatten(),
                        }
                    }
                })
                .await
            {
                Ok(0) => {}
                Ok(n) => eprintln!("push       {n} stored webhook configs deliver on"),
                Err(e) => eprintln!("push: the stored configs could not be read: {e}"),
            }
        }
    };
    if ready {
        recovery.await;
    } else {
        tokio::spawn(recovery);
    }

    let base = public_url.clone();
    println!("listening http {addr}");
    println!("ledger     {ledger_desc}");
    println!("identity   {} ({})", key.name(), key_path.display());
    println!("agent card {base}/.well-known/agent-card.json");
    println!("a2a        {base}/ (JSON-RPC), {base}/message:send (HTTP+JSON), {addr} (gRPC lf.a2a.v1.A2AService)");
    println!("dashboard  {base}/app (log in with the caller token below)");
    println!("invoke     {base}/invoke/{{skill}}");
    println!("mcp        {base}/mcp (streamable HTTP; protocol 2025-11-25 sessions and 2026-07-28)");
    println!("receipts   {base}/runs/{{id}}/receipt (the run and its children: {base}/runs/{{id}})");
    println!("payloads   {base}/v1/payloads/{{blake3}} (erase: POST …/erase, gateway.toml admins)");
    println!("metrics    {base}/metrics");
    if tracing.is_some() {
        let to = cfg.telemetry.as_ref().and_then(|t| t.otlp_endpoint.clone());
        println!("traces     OTLP/HTTP to {}", to.as_deref().unwrap_or("the OTEL_EXPORTER_OTLP_* endpoint"));
    }
    if let Some(b) = &bootstrap {
        println!("caller     local-user, token written to {} (mode 0600)", b.path.display());
    }
    let first = manifest.agents[0].skills.first();
    let skill = first.map(|s| s.id.clone()).unwrap_or_default();
    let example = example_input(first.and_then(|s| s.input_schema.as_ref()));
    let auth_header = if cfg.anonymous {
        String::new()
    } else {
        format!("-H 'Authorization: Bearer {}' ", local_token(&data).unwrap_or_else(|| "<token>".into()))
    };
    println!("try:");
    println!("  curl -s {auth_header}-H 'Content-Type: application/json' -d '{example}' {base}/invoke/{skill}");
    println!("  # then the receipt link from its answer: curl -s {auth_header}{base}/runs/<run>/receipt");

    // On SIGTERM or Ctrl-C: stop accepting connections and, meanwhile, end the tasks (their
    // streams then close, which lets the server finish); then close the ledger.
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let drainer = engine.clone();
    let drained = tokio::spawn(async move {
        if stopping_rx.await.is_ok() {
            drainer.shutdown(Duration::from_secs(30)).await;
        }
    });
    let shutdown = async move {
        tokio::select! {
            _ = sigint.recv() => {}
            _ = sigterm.recv() => {}
        }
        eprintln!("stopping: no new tasks; tasks waiting for input are canceled, working ones get up to 30 s");
        let _ = stopping_tx.send(());
        shutdown_token.cancel();
    };
    // TCP_NODELAY (axum leaves it off), so that a streamed event (SSE) following another is not
    // held back until the client's delayed ACK (~40 ms). Failing to set it only costs latency.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app(gw)).with_graceful_shutdown(shutdown).await?;
    drained.await?;
    push.drain(Duration::from_secs(10)).await;
    sink.close().await.context("closing the ledger")?;
    if let Some(provider) = tracing {
        // Flushes the spans still batched (the exporter's HTTP client is blocking).
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || provider.shutdown()).await {
            eprintln!("traces: the last spans could not be exported: {e}");
        }
    }
    eprintln!("stopped");
    Ok(())
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The MCP client (reqwest 0.13, built without a TLS provider) uses the process default;
    // ring is the provider the rest of the gateway's TLS already uses.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
